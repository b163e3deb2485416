#!/bin/bash
# balora init: usage and bad input give a clear message and the right exit code, never a crash;
# the happy path writes OUT/adapter and OUT/residual that `balora inspect` and `balora forward` read.
set -u
CLI=${BALORA_CLI:-./build/balora}
SRC=${BALORA_SOURCE_DIR:-.}
SHARED=${BALORA_SHARED:-$SRC/../shared}
if [ ! -d "$SHARED/golden" ]; then echo "skip: ../shared (golden data) is absent"; exit 77; fi
G=$SHARED/golden
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
fail=0
expect() {
  local want_rc=$1 pat=$2; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ $rc -ne "$want_rc" ] || { [ -n "$pat" ] && ! grep -q -- "$pat" "$TMP/err" "$TMP/out"; }; then
    echo "FAIL: $* -> rc $rc (want $want_rc), stderr: $(head -c 400 "$TMP/err")"; fail=1
  else echo "ok: rc $rc '$pat'"; fi
}
expect 0 "pissa_niter_K" "$CLI" init --help
expect 2 "required" "$CLI" init --model "$G/llama"
expect 2 "rank" "$CLI" init --method pissa --model "$G/llama" --out "$TMP/o" --rank -3
expect 1 "not a PiSSA initialisation" "$CLI" init --method lora --model "$G/llama" --out "$TMP/o"
expect 1 "power iterations" "$CLI" init --method pissa_niter_-1 --model "$G/llama" --out "$TMP/o"
expect 1 "no such model folder" "$CLI" init --method pissa --model "$TMP/none" --out "$TMP/o"
expect 1 "exceeds min(in, out)" "$CLI" init --method pissa --model "$G/llama" --targets q_proj --rank 999 --out "$TMP/o"
expect 1 "nothing_here" "$CLI" init --method pissa --model "$G/llama" --targets nothing_here --out "$TMP/o"
mkdir -p "$TMP/badcfg"; echo '{"model_type": "llama",' > "$TMP/badcfg/config.json"
expect 1 "config.json" "$CLI" init --method pissa --model "$TMP/badcfg" --out "$TMP/o"
# happy path: gpt2 (Conv1D), randomized SVD
expect 0 "wrote" "$CLI" init --method pissa_niter_3 --model "$G/gpt2" --targets c_attn --rank 4 --alpha 8 --out "$TMP/p"
for f in adapter/adapter_config.json adapter/adapter_model.safetensors residual/config.json residual/model.safetensors residual/generation_config.json; do
  [ -f "$TMP/p/$f" ] || { echo "FAIL: $TMP/p/$f missing"; fail=1; }
done
grep -q '"init_lora_weights":[[:space:]]*true' "$TMP/p/adapter/adapter_config.json" || { echo "FAIL: init_lora_weights not true"; fail=1; }
expect 0 "lora_A" "$CLI" inspect "$TMP/p/adapter"
expect 0 "loss" "$CLI" forward --model "$TMP/p/residual" --adapter "$TMP/p/adapter" --batch "$G/gpt2/io.safetensors" --out "$TMP/f.st"
exit $fail
