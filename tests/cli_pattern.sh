#!/bin/bash
# An adapter with rank_pattern / alpha_pattern (../shared/golden/llama_pattern: rank_pattern
# {"v_proj": 2, "layers.1.mlp.up_proj": 6}, alpha_pattern {"o_proj": 3}, made by PEFT 0.11) through
# the CLI: `balora forward --adapter` reproduces PEFT's logits, loss and every gradient; `balora
# merge` writes a model whose forward without the adapter equals the forward with it (and PEFT's
# logits), all within the golden tolerance; `balora generate --adapter` runs and its greedy tokens
# are those of the merged model. (`balora init` creates new PiSSA adapters and loads none.)
set -u
CLI=${BALORA_CLI:-./build/balora}
SRC=${BALORA_SOURCE_DIR:-.}
SHARED=${BALORA_SHARED:-$SRC/../shared}
if [ ! -d "$SHARED/golden/llama_pattern" ]; then echo "SKIP: ../shared (golden data) is absent"; exit 77; fi
if ! command -v python3 >/dev/null; then echo "SKIP: python3 is needed to read the safetensors outputs"; exit 77; fi
G=$SHARED/golden/llama_pattern
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
fail=0
run() { # name, command...
  local name=$1; shift
  if "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"; then echo "ok: $name"
  else echo "FAIL: $name: $(tail -3 "$TMP/$name.err")"; fail=1; fi
}
run forward "$CLI" forward --threads 1 --model "$G" --adapter "$G/lora" --batch "$G/io.safetensors" --out "$TMP/lora.st" --grads
run merge "$CLI" merge --model "$G" --adapter "$G/lora" --out "$TMP/merged" --dtype f32  # the base is BF16: keep the sum in f32
run forward_merged "$CLI" forward --threads 1 --model "$TMP/merged" --batch "$G/io.safetensors" --out "$TMP/merged.st"
[ $fail -eq 0 ] || exit 1

# compare FILE:TENSOR against FILE:TENSOR within |got - want| <= 1e-4 + 1e-3 |want| (F32/BF16)
python3 - "$TMP" "$G" <<'PY' || fail=1
import json, struct, sys
tmp, g = sys.argv[1], sys.argv[2]
def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])
    out = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]
        raw = b[8 + n + s:8 + n + e]
        if v["dtype"] == "F32": x = struct.unpack(f"<{len(raw) // 4}f", raw)
        elif v["dtype"] == "BF16": x = [struct.unpack("<f", b"\0\0" + raw[i:i + 2])[0] for i in range(0, len(raw), 2)]
        else: continue
        out[k] = x
    return out
ok = True
def close(what, got, want):
    global ok
    if len(got) != len(want):
        print(f"FAIL: {what}: {len(got)} values, want {len(want)}"); ok = False; return
    bad = [i for i, (a, w) in enumerate(zip(got, want)) if not abs(a - w) <= 1e-4 + 1e-3 * abs(w)]
    worst = max((abs(a - w) for a, w in zip(got, want)), default=0.0)
    if bad:
        i = bad[0]; print(f"FAIL: {what}: {len(bad)} of {len(want)} out of tolerance, e.g. [{i}] {got[i]} vs {want[i]}"); ok = False
    else: print(f"ok: {what} ({len(want)} values, max |diff| {worst:.2e})")
io, lora, merged = load(f"{g}/io.safetensors"), load(f"{tmp}/lora.st"), load(f"{tmp}/merged.st")
grads = load(f"{g}/lora/grads.safetensors")
close("forward --adapter: logits = PEFT logits_lora", lora["logits"], io["logits_lora"])
close("forward --adapter: loss = PEFT loss_lora", lora["loss"], io["loss_lora"])
for k in sorted(grads):
    if k not in lora: print(f"FAIL: forward --grads: no {k}"); ok = False; continue
    close(f"grad {k}", lora[k], grads[k])
if len(grads) != 28: print(f"FAIL: {len(grads)} golden gradients, want 28"); ok = False
close("merged model (no adapter) = forward --adapter: logits", merged["logits"], lora["logits"])
close("merged model: loss", merged["loss"], lora["loss"])
close("merged model = PEFT logits_lora", merged["logits"], io["logits_lora"])
sys.exit(0 if ok else 1)
PY

# generate: runs with the patterned adapter; greedy tokens equal the merged model's
run gen_adapter "$CLI" generate --threads 1 --model "$G" --adapter "$G/lora" --prompt-ids "1 5 9" --max-new-tokens 12
run gen_merged "$CLI" generate --threads 1 --model "$TMP/merged" --prompt-ids "1 5 9" --max-new-tokens 12
a=$(tr -s ' \n' ' ' < "$TMP/gen_adapter.out"); m=$(tr -s ' \n' ' ' < "$TMP/gen_merged.out")
if [ -n "$a" ] && [ "$a" = "$m" ]; then echo "ok: generate --adapter = merged model: $a"
else echo "FAIL: generate --adapter '$a' vs merged '$m'"; fail=1; fi
exit $fail
