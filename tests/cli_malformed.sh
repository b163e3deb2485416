#!/usr/bin/env bash
# Malformed inputs to balora inspect / merge / convert: each must fail with a clear error that
# names the file, a non-zero exit (not a signal), and no sanitizer report. Bad files are
# generated here from the golden data.
set -u
CLI=${BALORA_CLI:-./build/balora}
SRC=${BALORA_SOURCE_DIR:-.}
SHARED=${BALORA_SHARED:-$SRC/../shared}
if [ ! -d "$SHARED/golden" ]; then echo "SKIP: $SHARED not found"; exit 77; fi
TMP=$(mktemp -d /tmp/balora-cli-bad-XXXXXX)
trap 'rm -rf "$TMP"' EXIT
G=$SHARED/golden
fails=0
# fails_clearly DESCRIPTION NEEDLE... -- command...
fails_clearly() {
  local what=$1; shift
  local needles=()
  while [ "$1" != "--" ]; do needles+=("$1"); shift; done
  shift
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  local problem=""
  if [ "$rc" -eq 0 ]; then problem="exit 0"; elif [ "$rc" -ge 128 ]; then problem="killed by a signal (exit $rc)"; fi
  grep -q "balora: error" "$TMP/err" || problem="$problem; no 'balora: error' line"
  grep -q -i -e "Sanitizer" -e "runtime error" "$TMP/err" && problem="$problem; sanitizer report"
  for n in "${needles[@]}"; do grep -q -F -- "$n" "$TMP/err" || problem="$problem; stderr lacks '$n'"; done
  if [ -z "$problem" ]; then echo "ok: $what: $(head -c 200 "$TMP/err")"
  else echo "FAIL: $what: $problem"; cat "$TMP/err"; fails=$((fails + 1)); fi
}
py() { python3 -c "$@"; }

# a model folder to corrupt: llama's config and weights
mkdir -p "$TMP/m"
cp "$G/llama/config.json" "$G/llama/model.safetensors" "$TMP/m/"

# 1. truncated safetensors
head -c 1000 "$G/llama/model.safetensors" > "$TMP/trunc.safetensors"
fails_clearly "truncated safetensors" "$TMP/trunc.safetensors" "truncated" -- "$CLI" inspect "$TMP/trunc.safetensors"
mkdir -p "$TMP/mt"; cp "$G/llama/config.json" "$TMP/mt/"; cp "$TMP/trunc.safetensors" "$TMP/mt/model.safetensors"
fails_clearly "model folder with truncated weights" "$TMP/mt/model.safetensors" -- "$CLI" inspect "$TMP/mt"
fails_clearly "merge into truncated weights" "$TMP/mt/model.safetensors" -- "$CLI" merge --model "$TMP/mt" --adapter "$G/llama/lora" --out "$TMP/o1"
head -c 5 "$G/llama/model.safetensors" > "$TMP/tiny.safetensors"
fails_clearly "5-byte safetensors" "$TMP/tiny.safetensors" -- "$CLI" inspect "$TMP/tiny.safetensors"
: > "$TMP/empty.safetensors"
fails_clearly "empty file" "$TMP/empty.safetensors" -- "$CLI" inspect "$TMP/empty.safetensors"

# 2. inconsistent safetensors: a shape that disagrees with its data_offsets
py "
b = open('$G/llama/model.safetensors', 'rb').read()
n = int.from_bytes(b[:8], 'little')
h = b[8:8 + n].replace(b'\"shape\":[64,128]', b'\"shape\":[64,129]', 1)
assert h != b[8:8 + n]
open('$TMP/incons.safetensors', 'wb').write(b[:8] + h + b[8 + n:])"
fails_clearly "shape disagrees with data_offsets" "$TMP/incons.safetensors" "need" -- "$CLI" inspect "$TMP/incons.safetensors"
cat "$G/llama/model.safetensors" > "$TMP/extra.safetensors"; printf 'xyz' >> "$TMP/extra.safetensors"
fails_clearly "trailing bytes" "$TMP/extra.safetensors" "trailing data" -- "$CLI" inspect "$TMP/extra.safetensors"
py "
b = open('$G/llama/model.safetensors', 'rb').read()
n = int.from_bytes(b[:8], 'little')
h = b[8:8 + n].replace(b'lm_head', b'lm_h\xff\xfed', 1)
open('$TMP/nonutf8.safetensors', 'wb').write(b[:8] + h + b[8 + n:])"
fails_clearly "non-UTF-8 safetensors header" "$TMP/nonutf8.safetensors" "UTF-8" -- "$CLI" inspect "$TMP/nonutf8.safetensors"

# 3. bad JSON config, non-UTF-8 config
mkdir -p "$TMP/badjson"; cp "$G/llama/model.safetensors" "$TMP/badjson/"
printf '{"model_type": "llama", "hidden_size": 64,,}' > "$TMP/badjson/config.json"
fails_clearly "bad JSON config" "$TMP/badjson/config.json" "invalid JSON" -- "$CLI" inspect "$TMP/badjson"
fails_clearly "merge with bad JSON config" "$TMP/badjson/config.json" -- "$CLI" merge --model "$TMP/badjson" --adapter "$G/llama/lora" --out "$TMP/o2"
mkdir -p "$TMP/utf"; cp "$G/llama/model.safetensors" "$TMP/utf/"
printf '{"model_type": "ll\xff\xfema"}' > "$TMP/utf/config.json"
fails_clearly "non-UTF-8 config" "$TMP/utf/config.json" "UTF-8" -- "$CLI" inspect "$TMP/utf"
mkdir -p "$TMP/ad_badcfg"; cp "$G/llama/lora/adapter_model.safetensors" "$TMP/ad_badcfg/"
printf '{"peft_type": "LORA", "lora_alpha": 8}' > "$TMP/ad_badcfg/adapter_config.json"
fails_clearly "adapter config without r" "$TMP/ad_badcfg/adapter_config.json" "'r'" -- "$CLI" inspect "$TMP/ad_badcfg"
printf '{"peft_type": "LORA", "r": 4, "lora_alpha": "eight"}' > "$TMP/ad_badcfg/adapter_config.json"
fails_clearly "adapter lora_alpha not a number" "$TMP/ad_badcfg/adapter_config.json" "lora_alpha" -- "$CLI" merge --model "$G/llama" --adapter "$TMP/ad_badcfg" --out "$TMP/o3"

# 4. missing tensors: a shard index naming a tensor its shard lacks; an adapter for another model
mkdir -p "$TMP/shard"; cp "$G/llama/config.json" "$TMP/shard/"; cp "$G/llama/model.safetensors" "$TMP/shard/model-00001-of-00001.safetensors"
printf '{"weight_map": {"model.norm.weight": "model-00001-of-00001.safetensors", "model.extra.weight": "model-00001-of-00001.safetensors"}}' > "$TMP/shard/model.safetensors.index.json"
fails_clearly "shard lacks a mapped tensor" "model.safetensors.index.json" "model.extra.weight" -- "$CLI" inspect "$TMP/shard"
fails_clearly "adapter module missing from the base" "adapter_model.safetensors" "matches no tensor" -- "$CLI" merge --model "$G/gpt2" --adapter "$G/llama/lora" --out "$TMP/o4"
mkdir -p "$TMP/noweights"; cp "$G/llama/lora/adapter_config.json" "$TMP/noweights/"
fails_clearly "adapter without weights" "$TMP/noweights" "adapter_model.safetensors" -- "$CLI" merge --model "$G/llama" --adapter "$TMP/noweights" --out "$TMP/o5"

# 5. wrong shapes: mistral's adapter (1 kv head, k_proj 16 rows) on the llama base (32 rows)
fails_clearly "adapter shape mismatch" "adapter_model.safetensors" "maybe wrong base model?" -- "$CLI" merge --model "$G/llama" --adapter "$G/mistral/lora" --out "$TMP/o6"
# DoRA: refused by merge and by the GGUF export; inspect reports it and exits 1
mkdir -p "$TMP/dora"; cp "$G/llama/lora/adapter_model.safetensors" "$TMP/dora/"
py "
import json; c = json.load(open('$G/llama/lora/adapter_config.json')); c['use_dora'] = True
json.dump(c, open('$TMP/dora/adapter_config.json', 'w'))"
fails_clearly "DoRA merge" "$TMP/dora" "DoRA" -- "$CLI" merge --model "$G/llama" --adapter "$TMP/dora" --out "$TMP/o7"
fails_clearly "DoRA gguf" "$TMP/dora" "DoRA" -- "$CLI" convert --to gguf --adapter "$TMP/dora" --base "$G/llama" --out "$TMP/d.gguf"
fails_clearly "DoRA inspect" "DoRA" -- "$CLI" inspect "$TMP/dora"
grep -q "NOT consistent" "$TMP/out" && echo "ok: inspect printed the report" || { echo "FAIL: inspect report"; fails=$((fails + 1)); }

# 6. truncated llama2.c checkpoint and a garbage header
head -c 5000 "$SHARED/models/stories260K/stories260K.bin" > "$TMP/trunc.bin"
fails_clearly "truncated llama2.c" "$TMP/trunc.bin" "truncated" -- "$CLI" convert --from llama2c "$TMP/trunc.bin" --out "$TMP/o8"
head -c 12 /dev/zero > "$TMP/zero.bin"
fails_clearly "12-byte llama2.c" "$TMP/zero.bin" -- "$CLI" convert --from llama2c "$TMP/zero.bin" --out "$TMP/o9"
printf '\x40\x00\x00\x00\xac\x00\x00\x00\x05\x00\x00\x00\x07\x00\x00\x00\x04\x00\x00\x00\x00\x02\x00\x00\x00\x02\x00\x00' > "$TMP/heads.bin"
fails_clearly "llama2.c dim not divisible by n_heads" "$TMP/heads.bin" "n_heads" -- "$CLI" convert --from llama2c "$TMP/heads.bin" --out "$TMP/o10"

# 7. truncated GGUF
"$CLI" convert --to gguf --adapter "$G/llama/lora" --base "$G/llama" --out "$TMP/ok.gguf" >/dev/null
head -c 700 "$TMP/ok.gguf" > "$TMP/trunc.gguf"
fails_clearly "truncated GGUF" "$TMP/trunc.gguf" -- "$CLI" inspect "$TMP/trunc.gguf"
head -c 40 "$TMP/ok.gguf" > "$TMP/trunc2.gguf"
fails_clearly "GGUF cut in its first key" "$TMP/trunc2.gguf" "truncated" -- "$CLI" inspect "$TMP/trunc2.gguf"

# 8. paths that are not what they claim
fails_clearly "missing path" "/nonexistent/dir" -- "$CLI" inspect /nonexistent/dir
mkdir -p "$TMP/emptydir"
fails_clearly "folder with neither config" "$TMP/emptydir" -- "$CLI" inspect "$TMP/emptydir"

echo "$fails failure(s)"
[ "$fails" -eq 0 ]
