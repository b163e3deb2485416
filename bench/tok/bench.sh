#!/usr/bin/env bash
# Tokenizer throughput: balora vs JavaScript references on the same text, in the same run.
#   bash bench/tok/bench.sh [FILE]     (default ../shared/data/text/tinyshakespeare.txt; needs build/balora)
# balora's time is `balora tokenize` on the file minus its time on an empty input (the loading), best of 3;
# balora-lib-* is bl_tok_encode alone (bench/tok/bench_tok.c), best of 3 passes.
# The JS side runs when node and bench/tok/node_modules are present (cd bench/tok && npm install).
# The ids of every line are compared between balora and the JS tokenizers.
set -euo pipefail
cd "$(dirname "$0")/../.."
SHARED=${BALORA_SHARED:-../shared}
FILE=${1:-$SHARED/data/text/tinyshakespeare.txt}
B=${BALORA_CLI:-build/balora}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
BYTES=$(stat -c %s "$FILE")
echo "file: $FILE ($BYTES bytes, $(wc -l < "$FILE") lines)"
best() { # best wall time of 3 runs of: $B tokenize --tokenizer $1 --input $2
  local b=999
  for _ in 1 2 3; do
    local t0 t1
    t0=$(date +%s.%N); "$B" tokenize --tokenizer "$1" --input "$2" > "$OUT/cur.ids"; t1=$(date +%s.%N)
    b=$(awk -v a="$t0" -v c="$t1" -v b="$b" 'BEGIN { d = c - a; print (d < b) ? d : b }')
  done
  echo "$b"
}
: > "$OUT/empty.txt"
for tk in gpt2 llama2 bert-base-uncased; do
  full=$(best "$SHARED/tokenizers/$tk" "$FILE"); cp "$OUT/cur.ids" "$OUT/balora-$tk.ids"
  load=$(best "$SHARED/tokenizers/$tk" "$OUT/empty.txt")
  awk -v n="balora-$tk" -v f="$full" -v l="$load" -v by="$BYTES" 'BEGIN { e = f - l; printf "%-28s %.3f s  %.2f MB/s  (load %.3f s)\n", n, e, by / 1e6 / e, l }'
done
# the library alone (no CLI I/O), when the static library is there
if [ -f build/libbalora.a ]; then
  cc -O2 -march=x86-64-v3 -Isrc -Iinclude bench/tok/bench_tok.c build/libbalora.a -o "$OUT/bench_tok" \
     $(pkg-config --libs libcjson libpcre2-8 libutf8proc) -fopenmp -lm
  for tk in gpt2 llama2 bert-base-uncased; do "$OUT/bench_tok" "$SHARED/tokenizers/$tk" "$FILE"; done
fi
if command -v node >/dev/null && [ -d bench/tok/node_modules ]; then
  node bench/tok/bench.mjs "$SHARED" "$FILE" "$OUT"
  cmp -s "$OUT/balora-gpt2.ids" "$OUT/js-gpt-3-encoder.ids" && echo "gpt2: balora ids == gpt-3-encoder ids on every line" || echo "gpt2: IDS DIFFER"
  cmp -s "$OUT/balora-llama2.ids" "$OUT/js-llama-tokenizer-js.ids" && echo "llama2: balora ids == llama-tokenizer-js ids on every line" || echo "llama2: IDS DIFFER"
  cmp -s "$OUT/balora-llama2.ids" "$OUT/js-tokenizers.js-llama2.ids" && echo "llama2: balora ids == tokenizers.js ids on every line" || echo "llama2: IDS DIFFER (tokenizers.js)"
else
  echo "(node or bench/tok/node_modules missing: JS references skipped)"
fi
