#!/bin/bash
# cmake --install into a temporary prefix, then a program that includes only <balora.h> is built with
# pkg-config against the installed copy and run: load a model, tokenize, forward, generate, train a
# LoRA adapter 3 steps and save it. The core library's link line must not carry cairo or libyaml.
set -u
CLI=${BALORA_CLI:-./build/balora}
SRC=${BALORA_SOURCE_DIR:-.}
SHARED=${BALORA_SHARED:-$SRC/../shared}
BUILD=$(cd "$(dirname "$CLI")" && pwd)
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
P=$TMP/prefix
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }

cmake --install "$BUILD" --prefix "$P" >"$TMP/install.log" 2>&1 || { cat "$TMP/install.log"; echo "FAIL: cmake --install"; exit 1; }
for f in lib/libbalora.a include/balora.h lib/pkgconfig/balora.pc bin/balora; do
  if [ -e "$P/$f" ]; then ok "installed $f"; else bad "$f not installed"; fi
done
if grep -qi 'cairo\|yaml' "$P/lib/pkgconfig/balora.pc"; then bad "balora.pc names cairo or yaml"; else ok "balora.pc has no cairo / yaml"; fi
if nm -u "$P/lib/libbalora.a" 2>/dev/null | grep -q 'cairo_\|yaml_'; then bad "libbalora.a needs cairo or yaml symbols"; else ok "libbalora.a needs no cairo / yaml symbol"; fi
export PKG_CONFIG_PATH=$P/lib/pkgconfig
# a static-only install needs --static (Libs.private); with libbalora.so plain --libs is enough
STATIC=--static; [ -e "$P/lib/libbalora.so" ] && STATIC=
FLAGS=$(pkg-config $STATIC --cflags --libs balora) || { bad "pkg-config balora"; exit 1; }
case "$FLAGS" in *"$SRC/src"*|*cairo*|*yaml*) bad "pkg-config flags name the source tree, cairo or yaml: $FLAGS";; *) ok "pkg-config: $FLAGS";; esac
SAN=; [ "${BALORA_SANITIZE:-0}" = 1 ] && SAN="-fsanitize=address,undefined"
if cc -std=c17 -Wall -Wextra -Werror $SAN "$SRC/tests/data/api/embed.c" -o "$TMP/embed" $FLAGS 2>"$TMP/cc.log"; then ok "embed.c compiled against the installed copy"
else cat "$TMP/cc.log"; bad "embed.c does not compile"; exit 1; fi

# the model: stories260K when ../shared has it, else a small one pre-trained with the CLI
MODEL=$SHARED/models/stories260K/stories260K.bin
if [ ! -f "$MODEL" ]; then
  MODEL=$TMP/model
  "$CLI" pretrain --preset mini --steps 2 --out "$MODEL" --threads 1 >"$TMP/pretrain.log" 2>&1 || { cat "$TMP/pretrain.log"; bad "balora pretrain"; exit 1; }
  echo "model: $MODEL (pretrained here: ../shared has no stories260K)"
else echo "model: $MODEL"; fi
# a WordPiece tokenizer (ids < 512) and token-id training data
{ printf '[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nthe\ncat\nsat\non\nmat\n'; for i in $(seq 10 300); do echo "w$i"; done; } > "$TMP/vocab.txt"
mkdir -p "$TMP/tok" && mv "$TMP/vocab.txt" "$TMP/tok/"
for e in 0 1 2 3 4 5; do echo "{\"input_ids\": [1, $((e + 5)), $((e * 3 + 7)), 42, $((e * 11 + 2)), 9]}"; done > "$TMP/train.jsonl"
if OMP_NUM_THREADS=1 "$TMP/embed" "$MODEL" "$TMP/tok" "$TMP/train.jsonl" "$TMP/adapter" >"$TMP/run.log" 2>&1; then ok "embed ran"; else bad "embed failed"; fi
cat "$TMP/run.log"
grep -q '^forward: 8 tokens x ' "$TMP/run.log" && ok "forward shape" || bad "forward line"
grep -q '^trained 3 steps' "$TMP/run.log" && ok "3 steps trained" || bad "training line"
grep -q 'nonexistent/balora-model' "$TMP/run.log" && ok "the missing model is named" || bad "error message"
for f in adapter_config.json adapter_model.safetensors; do
  [ -s "$TMP/adapter/$f" ] && ok "adapter $f written" || bad "adapter $f missing"
done
exit $fail
