#!/usr/bin/env bash
# balora inspect / merge / convert from the command line on the golden data and stories260K:
# exit codes, key output lines, --json that parses, and usage errors (exit 2).
set -u
CLI=${BALORA_CLI:-./build/balora}
SRC=${BALORA_SOURCE_DIR:-.}
SHARED=${BALORA_SHARED:-$SRC/../shared}
if [ ! -d "$SHARED/golden" ]; then echo "SKIP: $SHARED not found"; exit 77; fi
TMP=$(mktemp -d /tmp/balora-cli-io-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }
# expect CODE DESCRIPTION -- command...; output in $TMP/out, $TMP/err
expect() {
  local code=$1 what=$2; shift 3
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ "$rc" -eq "$code" ]; then ok "$what"; else bad "$what: exit $rc, expected $code"; cat "$TMP/err"; fi
}
has() { if grep -q -- "$2" "$TMP/$1"; then ok "$1 has '$2'"; else bad "$1 lacks '$2'"; head -20 "$TMP/$1"; fi; }
json_is() { # json_is PYTHON_EXPR EXPECTED: evaluates on the JSON in $TMP/out as `j`
  local got; got=$(python3 -c "import json,sys; j=json.load(open('$TMP/out')); print(repr(($1)))" 2>&1)
  if [ "$got" = "$2" ]; then ok "json $1 == $2"; else bad "json $1: got '$got', expected '$2'"; fi
}

G=$SHARED/golden
expect 0 "inspect model" -- "$CLI" inspect "$G/llama"
has out "model_type llama"; has out "model.layers.\*.self_attn.q_proj.weight"; has out "total parameters: 106,816"
expect 0 "inspect model --json" -- "$CLI" inspect "$G/llama" --json
json_is 'j["kind"], j["config"]["num_key_value_heads"], len(j["tensors"])' "('model', 2, 21)"
json_is 'j["total_params"] == sum(t["params"] for t in j["tensors"])' "True"
expect 0 "inspect adapter" -- "$CLI" inspect "$G/gpt2_cls/lora"
has out "full tensors (modules_to_save): score.weight"; has out "A/B pairs: complete"
expect 0 "inspect adapter --json" -- "$CLI" inspect "$G/gpt2_all/lora" --json
json_is 'j["config"]["scaling"], j["config"]["use_rslora"], j["consistent"], len(j["lora_modules"])' "(4, True, True, 8)"
expect 0 "inspect safetensors" -- "$CLI" inspect "$G/llama/io.safetensors"
has out "logits_lora"

# merge: f32, then the merged folder inspects as a model with the same tensors
expect 0 "merge llama" -- "$CLI" merge --model "$G/llama" --adapter "$G/llama/lora" --out "$TMP/llama_merged" --dtype f32
has out "merged 8 LoRA module(s)"
expect 0 "inspect merged --json" -- "$CLI" inspect "$TMP/llama_merged" --json
json_is 'len(j["tensors"]), j["config"]["torch_dtype"], sorted(set(t["dtype"] for t in j["tensors"]))' "(21, 'float32', ['F32'])"
expect 0 "merge gpt2_cls (modules_to_save)" -- "$CLI" merge --model "$G/gpt2_cls" --adapter "$G/gpt2_cls/lora" --out "$TMP/cls"
has out "replaced 1 tensor(s)"
expect 0 "inspect merged gpt2_cls keeps BF16" -- "$CLI" inspect "$TMP/cls" --json
json_is 'sorted(set(t["dtype"] for t in j["tensors"]))' "['BF16']"

# tokenizer and generation files are copied unchanged
mkdir -p "$TMP/withtok"; cp "$G/gpt2/config.json" "$G/gpt2/model.safetensors" "$G/gpt2/generation_config.json" "$TMP/withtok/"
printf '{"version": "1.0", "model": {"type": "BPE"}}' > "$TMP/withtok/tokenizer.json"
printf 'a b\n' > "$TMP/withtok/merges.txt"
expect 0 "merge copies tokenizer files" -- "$CLI" merge --model "$TMP/withtok" --adapter "$G/gpt2/lora" --out "$TMP/withtok_m"
for f in tokenizer.json merges.txt generation_config.json config.json; do
  if cmp -s "$TMP/withtok/$f" "$TMP/withtok_m/$f"; then ok "$f copied"; else bad "$f not copied unchanged"; fi
done

# convert llama2.c -> HF, then adapter -> GGUF
expect 0 "inspect llama2.c" -- "$CLI" inspect "$SHARED/models/stories260K/stories260K.bin"
has out "total parameters: 260,032"
expect 0 "convert llama2c" -- "$CLI" convert --from llama2c "$SHARED/models/stories260K/stories260K.bin" --out "$TMP/stories"
expect 0 "inspect converted" -- "$CLI" inspect "$TMP/stories" --json
json_is 'j["config"]["architectures"], j["config"]["tie_word_embeddings"], j["config"]["rms_norm_eps"], len(j["tensors"])' "(['LlamaForCausalLM'], True, 1e-05, 47)"
expect 0 "convert to gguf (--base)" -- "$CLI" convert --to gguf --adapter "$G/llama/lora" --base "$G/llama" --out "$TMP/a.gguf"
expect 0 "inspect gguf --json" -- "$CLI" inspect "$TMP/a.gguf" --json
json_is 'j["kv"]["general.type"], j["kv"]["adapter.type"], j["kv"]["general.architecture"], len(j["tensors"])' "('adapter', 'lora', 'llama', 16)"
expect 0 "convert to gguf f16 (gpt2)" -- "$CLI" convert --to gguf --adapter "$G/gpt2/lora" --arch gpt2 --dtype f16 --out "$TMP/g.gguf"
expect 0 "inspect gguf f16" -- "$CLI" inspect "$TMP/g.gguf"
has out "blk.1.attn_qkv.weight.lora_b"; has out "F16"
# qwen2: llama.cpp arch qwen2 from --base, and the same file from --arch qwen2 without head counts
expect 0 "convert to gguf qwen2 (--base)" -- "$CLI" convert --to gguf --adapter "$G/qwen2/lora" --base "$G/qwen2" --out "$TMP/q.gguf"
has out "for 'qwen2', 12 tensors"
expect 0 "convert to gguf qwen2 (--arch)" -- "$CLI" convert --to gguf --adapter "$G/qwen2/lora" --arch qwen2 --out "$TMP/q2.gguf"
if cmp -s "$TMP/q.gguf" "$TMP/q2.gguf"; then ok "qwen2 --base and --arch files identical"; else bad "qwen2 --base and --arch files differ"; fi
expect 0 "inspect gguf qwen2 --json" -- "$CLI" inspect "$TMP/q.gguf" --json
json_is 'j["kv"]["general.architecture"], sorted(t["name"] for t in j["tensors"])[:2]' "('qwen2', ['blk.0.attn_q.weight.lora_a', 'blk.0.attn_q.weight.lora_b'])"
# head counts contradicting the shapes are refused, naming the field, the value and the shape; no file is written
expect 1 "convert gguf llama with wrong --n-head/--n-head-kv" -- "$CLI" convert --to gguf --adapter "$G/llama/lora" --arch llama --n-head 2 --n-head-kv 2 --out "$TMP/w.gguf"
has err "\-\-n-head-kv = 2 contradicts module 'model.layers.0.self_attn.k_proj': its lora_B is \[32, 4\]"
if [ -e "$TMP/w.gguf" ]; then bad "refused export left $TMP/w.gguf"; else ok "refused export wrote no file"; fi
mkdir -p "$TMP/badbase"
sed 's/"num_attention_heads": 4/"num_attention_heads": 2/' "$G/llama/config.json" > "$TMP/badbase/config.json"
expect 1 "convert gguf with a config contradicting the shapes" -- "$CLI" convert --to gguf --adapter "$G/llama/lora" --base "$TMP/badbase" --out "$TMP/w.gguf"
has err "config.json field 'num_key_value_heads' = 2 contradicts module"
has err "head_dim from $TMP/badbase/config.json field 'hidden_size' 64 / num_attention_heads 2"
expect 1 "convert gguf qwen2 with wrong heads" -- "$CLI" convert --to gguf --adapter "$G/qwen2/lora" --arch qwen2 --n-head 8 --out "$TMP/w.gguf"
has err "n_head_kv defaults to it) = 8 contradicts"

# usage errors
expect 2 "merge without --out" -- "$CLI" merge --model "$G/llama" --adapter "$G/llama/lora"
expect 2 "merge --dtype q4" -- "$CLI" merge --model "$G/llama" --adapter "$G/llama/lora" --out "$TMP/x" --dtype q4
expect 2 "convert without a direction" -- "$CLI" convert --out "$TMP/x"
expect 2 "convert --to gguf without --arch" -- "$CLI" convert --to gguf --adapter "$G/llama/lora" --out "$TMP/x.gguf"
expect 2 "inspect without a path" -- "$CLI" inspect
expect 0 "inspect --help" -- "$CLI" inspect --help
has out "usage: balora inspect"
expect 1 "convert gguf llama without heads" -- "$CLI" convert --to gguf --adapter "$G/llama/lora" --arch llama --out "$TMP/x.gguf"
has err "head counts"

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
