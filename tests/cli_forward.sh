#!/bin/bash
# balora forward: usage and bad input give a clear message and a non-zero exit, never a crash.
set -u
CLI=${BALORA_CLI:-./build/balora}
SRC=${BALORA_SOURCE_DIR:-.}
SHARED=${BALORA_SHARED:-$SRC/../shared}
if [ ! -d "$SHARED/golden" ]; then echo "skip: ../shared (golden data) is absent"; exit 77; fi
G=$SHARED/golden
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
fail=0
# expect RC PATTERN -- command...: the exit code and a message on stderr
expect() {
  local want_rc=$1 pat=$2; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ $rc -ne "$want_rc" ] || { [ -n "$pat" ] && ! grep -q -- "$pat" "$TMP/err" "$TMP/out"; }; then
    echo "FAIL: $* -> rc $rc (want $want_rc), stderr: $(head -c 400 "$TMP/err")"; fail=1
  else echo "ok: rc $rc '$pat'"; fi
}
expect 0 "input_ids" "$CLI" forward --help
expect 2 "required" "$CLI" forward --model "$G/llama"
expect 2 "needs --adapter" "$CLI" forward --model "$G/llama" --batch "$G/llama/io.safetensors" --out "$TMP/o.st" --grads
expect 1 "no such model" "$CLI" forward --model "$TMP/nope" --batch "$G/llama/io.safetensors" --out "$TMP/o.st"
# a truncated batch file
head -c 300 "$G/llama/io.safetensors" > "$TMP/trunc.safetensors"
expect 1 "trunc.safetensors" "$CLI" forward --model "$G/llama" --batch "$TMP/trunc.safetensors" --out "$TMP/o.st"
# a batch without input_ids: use an adapter file (valid safetensors, other tensors)
expect 1 "missing tensor 'input_ids'" "$CLI" forward --model "$G/llama" --batch "$G/llama/lora/adapter_model.safetensors" --out "$TMP/o.st"
# a model folder whose config is bad JSON
mkdir -p "$TMP/badcfg"; echo '{"model_type": "llama",' > "$TMP/badcfg/config.json"; cp "$G/llama/model.safetensors" "$TMP/badcfg/"
expect 1 "config.json" "$CLI" forward --model "$TMP/badcfg" --batch "$G/llama/io.safetensors" --out "$TMP/o.st"
# an unsupported field value is named
mkdir -p "$TMP/rope"; sed 's/"rope_scaling": null/"rope_scaling": {"type": "linear", "factor": 2.0}/' "$G/llama/config.json" > "$TMP/rope/config.json"
cp "$G/llama/model.safetensors" "$TMP/rope/"
expect 1 "rope_scaling" "$CLI" forward --model "$TMP/rope" --batch "$G/llama/io.safetensors" --out "$TMP/o.st"
# weights that do not match the config (gpt2 weights under a llama config)
mkdir -p "$TMP/mix"; cp "$G/llama/config.json" "$TMP/mix/"; cp "$G/gpt2/model.safetensors" "$TMP/mix/"
expect 1 "missing tensor" "$CLI" forward --model "$TMP/mix" --batch "$G/llama/io.safetensors" --out "$TMP/o.st"
# an adapter for another architecture
expect 1 "does not have" "$CLI" forward --model "$G/llama" --adapter "$G/gpt2/lora" --batch "$G/llama/io.safetensors" --out "$TMP/o.st"
# a model folder without weights
mkdir -p "$TMP/nowt"; cp "$G/llama/config.json" "$TMP/nowt/"
expect 1 "model.safetensors" "$CLI" forward --model "$TMP/nowt" --batch "$G/llama/io.safetensors" --out "$TMP/o.st"
# llama2.c checkpoint given as a file works (no labels: logits only)
if [ -f "$SHARED/models/stories260K/stories260K.bin" ]; then
  expect 0 "" "$CLI" forward --model "$SHARED/models/stories260K/stories260K.bin" --batch "$G/stories260K/io.safetensors" --out "$TMP/s.st"
fi
exit $fail
