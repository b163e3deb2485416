#!/usr/bin/env bash
# balora train: --help lists every option with its default; usage errors exit 2 with a message.
# (Training itself, checkpoints and resume through the CLI are in tests/test_train_e2e.c.)
set -u
CLI=${BALORA_CLI:-./build/balora}
fail=0; n_ok=0
check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; else n_ok=$((n_ok + 1)); fi; }
help=$("$CLI" train --help 2>&1)
for o in model data out method targets rank alpha dropout rslora lr schedule warmup-ratio warmup-steps weight-decay \
         batch-size grad-accum epochs max-steps max-len seed threads save-every resume log data-format prompt-field \
         response-field template max-grad-norm rank-pattern alpha-pattern; do
  check "--help lists --$o" 'echo "$help" | grep -q -- "--$o "'
done
check "--help shows defaults" 'echo "$help" | grep -q "(default: 0.0002)" && echo "$help" | grep -q "(default: linear)" && echo "$help" | grep -q "(default: query)"'
"$CLI" train --data x.jsonl --out o >/dev/null 2>&1; rc=$?
check "missing --model exits 2 (got $rc)" '[ $rc -eq 2 ]'
"$CLI" train --model m --data d --out o --bogus 1 >/dev/null 2>&1; rc=$?
check "unknown option exits 2 (got $rc)" '[ $rc -eq 2 ]'
"$CLI" train --model m --data d --out o --rank x >/dev/null 2>&1; rc=$?
check "non-integer --rank exits 2 (got $rc)" '[ $rc -eq 2 ]'
"$CLI" train --model m --data d --out o --method dora >/dev/null 2>&1; rc=$?
check "unknown --method exits 2 (got $rc)" '[ $rc -eq 2 ]'
# --rank-pattern / --alpha-pattern: bad values are usage errors (exit 2) naming the option, before any file is read
for bad in 'q_proj=x' 'q_proj=0' 'q_proj=-2' 'q_proj=2.5' 'q_proj=65537' '=4' '{"": 4}' 'q_proj=4,q_proj=8' '{"q_proj": "4"}' '{bad' 'q_(proj=4'; do
  err=$("$CLI" train --model m --data d --out o --rank-pattern "$bad" 2>&1); rc=$?
  check "--rank-pattern '$bad' exits 2 naming the option (got $rc: $err)" '[ $rc -eq 2 ] && echo "$err" | grep -q -- "--rank-pattern: "'
done
for bad in 'q_proj=inf' 'q_proj=nan' 'q_proj=0' 'q_proj=-1' '{"q_proj": 1e999}' '=2'; do
  err=$("$CLI" train --model m --data d --out o --rank-pattern q_proj=4 --alpha-pattern "$bad" 2>&1); rc=$?
  check "--alpha-pattern '$bad' exits 2 naming the option (got $rc: $err)" '[ $rc -eq 2 ] && echo "$err" | grep -q -- "--alpha-pattern: "'
done
err=$("$CLI" train --model m --data d --out o --method full --rank-pattern q_proj=4 2>&1); rc=$?
check "--rank-pattern with --method full exits 2 (got $rc)" '[ $rc -eq 2 ] && echo "$err" | grep -q "apply to adapters"'
err=$("$CLI" train --task seq-cls --model m --data d.csv --out o --alpha-pattern q_proj=0 2>&1); rc=$?
check "--task seq-cls: a bad --alpha-pattern exits 2 (got $rc: $err)" '[ $rc -eq 2 ] && echo "$err" | grep -q "alpha_pattern"'
tmp=$(mktemp -d)
printf 'bogus_key: 1\nrank: 4\n' > "$tmp/c.yaml"
err=$("$CLI" train --model m --data d --out o --config "$tmp/c.yaml" 2>&1); rc=$?
check "config with an unknown key exits 2 naming it (got $rc: $err)" '[ $rc -eq 2 ] && echo "$err" | grep -q bogus_key'
err=$("$CLI" train --model "$tmp/nowhere" --data d --out "$tmp/o" 2>&1); rc=$?
check "missing model folder exits 1 naming it (got $rc: $err)" '[ $rc -eq 1 ] && echo "$err" | grep -q nowhere'
nlu_help=$("$CLI" train --task nlu --help 2>&1)
check "--task nlu is seq-cls (its defaults in --help)" 'echo "$nlu_help" | grep -q -- "--batch-size N .*(default: 32)"'
"$CLI" train --task foo --model m --data d --out o >/dev/null 2>&1; rc=$?
check "unknown --task exits 2 (got $rc)" '[ $rc -eq 2 ]'
"$CLI" train --model m --data d --out o --method pissa --init gaussian >/dev/null 2>&1; rc=$?
check "--method pissa with a non-PiSSA --init exits 2 (got $rc)" '[ $rc -eq 2 ]'
# --method pissa and ba-lora train a PiSSA adapter and save it converted for the original weights (r' = 2r)
shared=${BALORA_SHARED:-${BALORA_SOURCE_DIR:-.}/../shared}
if [ -d "$shared/golden/llama" ] && command -v python3 >/dev/null; then
  python3 -c "
import json
with open('$tmp/ids.jsonl', 'w') as f:
    for i in range(8): f.write(json.dumps({'input_ids': [(i * 31 + t * 7) % 256 for t in range(10)]}) + '\n')"
  # --method full freezes the embeddings and the LM head by default (the paper's baseline)
  for emb in frozen trained; do
    flag=""; [ $emb = trained ] && flag="--train-embeddings"
    "$CLI" train --model "$shared/golden/llama" --data "$tmp/ids.jsonl" --data-format tokens --method full $flag \
      --max-steps 2 --batch-size 4 --lr 1e-2 --out "$tmp/full-$emb" >/dev/null 2>&1; rc=$?
    check "--method full ($emb embeddings) trains (got $rc)" '[ $rc -eq 0 ]'
    python3 - "$shared/golden/llama/model.safetensors" "$tmp/full-$emb/model.safetensors" $emb <<'PY'
import json, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; raw = b[8 + n + s:8 + n + e]
        if v["dtype"] == "BF16": out[k] = [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
        else: out[k] = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    return out
base, ft = load(sys.argv[1]), load(sys.argv[2])
same = lambda k: base[k] == ft[k]
frozen = sys.argv[3] == "frozen"
ok = same("model.embed_tokens.weight") == frozen and same("lm_head.weight") == frozen \
     and not same("model.layers.0.self_attn.q_proj.weight") and not same("model.layers.1.mlp.down_proj.weight")
sys.exit(0 if ok else 1)
PY
    rc=$?
    check "--method full with $emb embeddings: embeddings and LM head $emb, block weights trained" '[ $rc -eq 0 ]'
  done
  # a PiSSA adapter saved as is (on W_res, --save-residual) and converted (on the original model) are the same model
  pissa=(--model "$shared/golden/llama" --data "$tmp/ids.jsonl" --data-format tokens --method pissa --max-steps 2 --batch-size 4 --lr 1e-2)
  "$CLI" train "${pissa[@]}" --pissa-save as-is --save-residual --out "$tmp/asis" >/dev/null 2>&1; rc=$?
  check "--pissa-save as-is --save-residual trains (got $rc)" '[ $rc -eq 0 ] && [ -f "$tmp/asis/residual/model.safetensors" ]'
  check "as-is adapter records init_lora_weights pissa" 'grep -Eq "\"init_lora_weights\":[[:space:]]*\"pissa\"" "$tmp/asis/adapter_config.json"'
  "$CLI" train "${pissa[@]}" --out "$tmp/conv" >/dev/null 2>&1
  "$CLI" forward --model "$tmp/asis/residual" --adapter "$tmp/asis" --batch "$shared/golden/llama/io.safetensors" --out "$tmp/a.st" >/dev/null 2>&1
  "$CLI" forward --model "$shared/golden/llama" --adapter "$tmp/conv" --batch "$shared/golden/llama/io.safetensors" --out "$tmp/b.st" >/dev/null 2>&1
  python3 - "$tmp/a.st" "$tmp/b.st" <<'PY'
import json, struct, sys
def logits(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])["logits"]; s, e = h["data_offsets"]
    return struct.unpack(f"<{(e - s) // 4}f", b[8 + n + s:8 + n + e])
a, b = logits(sys.argv[1]), logits(sys.argv[2])
sys.exit(0 if max(abs(x - y) for x, y in zip(a, b)) <= 1e-4 + 1e-3 * max(abs(x) for x in b) else 1)
PY
  rc=$?
  check "as-is adapter on W_res == converted adapter on the original model" '[ $rc -eq 0 ]'
  err=$("$CLI" train "${pissa[@]}" --method lora --save-residual --out "$tmp/nores" 2>&1); rc=$?
  check "--save-residual without PiSSA is refused (got $rc)" '[ $rc -ne 0 ] && echo "$err" | grep -q "apply to PiSSA"'
  # --rank-pattern / --alpha-pattern: the saved adapter has those patterns and ranks; forward and merge accept it
  pat=(--model "$shared/golden/llama" --data "$tmp/ids.jsonl" --data-format tokens --targets q_proj,v_proj --rank 8 \
       --max-steps 2 --batch-size 4 --lr 5e-2 --seed 7)
  "$CLI" train "${pat[@]}" --rank-pattern 'q_proj=16,v_proj=4' --alpha-pattern 'q_proj=32' --out "$tmp/pat" >/dev/null 2>&1; rc=$?
  check "--rank-pattern q_proj=16,v_proj=4 --alpha-pattern q_proj=32 trains (got $rc)" '[ $rc -eq 0 ]'
  python3 - "$tmp/pat" <<'PY'
import json, struct, sys
d = sys.argv[1]
c = json.load(open(d + "/adapter_config.json"))
b = open(d + "/adapter_model.safetensors", "rb").read(); n = struct.unpack("<Q", b[:8])[0]
h = {k: v for k, v in json.loads(b[8:8 + n]).items() if k != "__metadata__"}
ok = c["rank_pattern"] == {"q_proj": 16, "v_proj": 4} and c["alpha_pattern"] == {"q_proj": 32} and c["r"] == 8 and c["lora_alpha"] == 8
if not ok: print("FAILED: adapter_config.json:", c.get("r"), c.get("lora_alpha"), c.get("rank_pattern"), c.get("alpha_pattern"))
want = {"q_proj": 16, "v_proj": 4}
for l in range(2):
    for m, r in want.items():
        pre = f"base_model.model.model.layers.{l}.self_attn.{m}."
        a, bb = h.get(pre + "lora_A.weight"), h.get(pre + "lora_B.weight")
        out = 64 if m == "q_proj" else 32
        if not a or not bb or a["shape"] != [r, 64] or bb["shape"] != [out, r]:
            print("FAILED: shapes of", pre, a and a["shape"], bb and bb["shape"]); ok = False
        elif not any(b[8 + n + bb["data_offsets"][0]:8 + n + bb["data_offsets"][1]]):
            print("FAILED:", pre + "lora_B.weight is still zero"); ok = False
if len(h) != 8: print("FAILED:", len(h), "tensors, want 8"); ok = False
sys.exit(0 if ok else 1)
PY
  rc=$?
  check "the adapter's config has the patterns and its tensors those ranks (q_proj 16, v_proj 4)" '[ $rc -eq 0 ]'
  "$CLI" train "${pat[@]}" --rank-pattern '{"q_proj": 16, "v_proj": 4}' --alpha-pattern '{"q_proj": 32}' --out "$tmp/patj" >/dev/null 2>&1; rc=$?
  check "the JSON object form trains the same adapter byte for byte (got $rc)" \
    '[ $rc -eq 0 ] && cmp -s "$tmp/pat/adapter_model.safetensors" "$tmp/patj/adapter_model.safetensors"'
  io="$shared/golden/llama/io.safetensors"
  "$CLI" forward --model "$shared/golden/llama" --adapter "$tmp/pat" --batch "$io" --out "$tmp/pat_fwd.st" >/dev/null 2>&1; rc=$?
  check "balora forward accepts the patterned adapter (got $rc)" '[ $rc -eq 0 ]'
  "$CLI" merge --model "$shared/golden/llama" --adapter "$tmp/pat" --out "$tmp/pat_merged" --dtype f32 >/dev/null 2>&1; rc=$?
  check "balora merge accepts the patterned adapter (got $rc)" '[ $rc -eq 0 ]'
  "$CLI" forward --model "$tmp/pat_merged" --batch "$io" --out "$tmp/pat_mfwd.st" >/dev/null 2>&1
  "$CLI" forward --model "$shared/golden/llama" --batch "$io" --out "$tmp/pat_base.st" >/dev/null 2>&1
  python3 - "$tmp/pat_fwd.st" "$tmp/pat_mfwd.st" "$tmp/pat_base.st" <<'PY'
import json, struct, sys
def logits(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])["logits"]; s, e = h["data_offsets"]
    return struct.unpack(f"<{(e - s) // 4}f", b[8 + n + s:8 + n + e])
a, m, base = logits(sys.argv[1]), logits(sys.argv[2]), logits(sys.argv[3])
same = len(a) == len(m) and all(abs(x - y) <= 1e-4 + 1e-3 * abs(y) for x, y in zip(a, m))
moved = max(abs(x - y) for x, y in zip(a, base))
if not same: print("FAILED: merged logits differ from forward --adapter")
if not moved > 1e-3: print("FAILED: the adapter does not change the logits (max |diff| %g)" % moved)
sys.exit(0 if same and moved > 1e-3 else 1)
PY
  rc=$?
  check "merge of the patterned adapter == forward with it (and differs from the base)" '[ $rc -eq 0 ]'
  for m in pissa ba-lora; do
    "$CLI" train --model "$shared/golden/llama" --data "$tmp/ids.jsonl" --data-format tokens --method $m --rank 4 --alpha 8 \
      --max-steps 2 --batch-size 4 --out "$tmp/$m" >/dev/null 2>&1; rc=$?
    check "--method $m trains (got $rc)" '[ $rc -eq 0 ]'
    check "--method $m saves r = 8, alpha = 16" 'python3 -c "import json,sys; c=json.load(open(\"$tmp/$m/adapter_config.json\")); sys.exit(not (c[\"r\"] == 8 and c[\"lora_alpha\"] == 16))"'
  done
fi
rm -rf "$tmp"
echo "cli_train: $n_ok checks passed"; exit $fail
