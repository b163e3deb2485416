#!/usr/bin/env bash
# balora tokenize: plain lines, --jsonl, --pair, --no-special, --decode, errors; against tests/data/tok.
set -uo pipefail
SRC=${BALORA_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
B=${BALORA_CLI:-$SRC/build/balora}
SHARED=${BALORA_SHARED:-$SRC/../shared}
if [ ! -d "$SHARED/tokenizers" ]; then echo "skip: no shared folder at $SHARED"; exit 77; fi
D=$SRC/tests/data/tok
T=$SHARED/tokenizers
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { # name, command result (0 = ok)
  if [ "$2" -eq 0 ]; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi
}

out=$(printf 'Hello world\n' | "$B" tokenize --tokenizer "$T/gpt2")
[ "$out" = "15496 995" ]; check "gpt2 plain line ($out)" $?

out=$(printf '\n' | "$B" tokenize --tokenizer "$T/llama2")
[ "$out" = "1" ]; check "llama2 empty line gives BOS ($out)" $?

out=$(printf 'Hello world\n' | "$B" tokenize --tokenizer "$T/llama2" --no-special)
[ "$out" = "22557 1526" ]; check "llama2 --no-special keeps the leading space marker ($out)" $?

"$B" tokenize --tokenizer "$T/gpt2" --jsonl --input "$D/inputs.jsonl" > "$TMP/g.ids"
cmp -s "$TMP/g.ids" "$D/gpt2.ids"; check "gpt2 --jsonl == gpt2.ids" $?
"$B" tokenize --tokenizer "$T/llama2" --jsonl < "$D/inputs.jsonl" > "$TMP/l.ids"
cmp -s "$TMP/l.ids" "$D/llama2.ids"; check "llama2 --jsonl == llama2.ids" $?
"$B" tokenize --tokenizer "$T/bert-base-uncased" --jsonl --no-special < "$D/inputs.jsonl" > "$TMP/b.ids"
cmp -s "$TMP/b.ids" "$D/bert_nospecial.ids"; check "bert --jsonl --no-special == bert_nospecial.ids" $?

# pairs: JSON objects with "pair", and tab-separated lines
"$B" tokenize --tokenizer "$T/bert-base-uncased" --jsonl < "$D/pairs.jsonl" > "$TMP/p.ids"
cut -f1 "$D/bert_pair.ids" | cmp -s - "$TMP/p.ids"; check "bert pairs (--jsonl objects) == bert_pair.ids" $?
out=$(printf 'Is it so?\tYes, it is.\n' | "$B" tokenize --tokenizer "$T/bert-base-uncased" --pair)
want=$(sed -n 2p "$D/bert_pair.ids" | cut -f1)
[ "$out" = "$want" ]; check "bert --pair tab line ($out)" $?

# decoding: ids back to the same lines (GPT-2 and LLaMA-2 are lossless on valid UTF-8)
head -n 600 "$SHARED/data/text/tinyshakespeare.txt" > "$TMP/s.txt"
for tk in gpt2 llama2; do
  "$B" tokenize --tokenizer "$T/$tk" --input "$TMP/s.txt" | "$B" tokenize --tokenizer "$T/$tk" --decode --no-special > "$TMP/s.back"
  cmp -s "$TMP/s.txt" "$TMP/s.back"; check "$tk encode | decode round trip" $?
done
out=$(printf '"Hello\\nworld \\ud83d\\ude00"\n' | "$B" tokenize --tokenizer "$T/gpt2" --jsonl | "$B" tokenize --tokenizer "$T/gpt2" --decode --jsonl)
[ "$out" = '"Hello\nworld 😀"' ]; check "gpt2 --jsonl | --decode --jsonl ($out)" $?
out=$(printf '101 7592 1010 2088 999 102\n' | "$B" tokenize --tokenizer "$T/bert-base-uncased" --decode)
[ "$out" = "[CLS] hello, world! [SEP]" ]; check "bert --decode ($out)" $?
out=$(printf '101 7592 1010 2088 999 102\n' | "$B" tokenize --tokenizer "$T/bert-base-uncased" --decode --no-special)
[ "$out" = "hello, world!" ]; check "bert --decode --no-special ($out)" $?

# errors: clear message and exit status, never a crash
printf 'fine\nbad \xff byte\n' | "$B" tokenize --tokenizer "$T/gpt2" > /dev/null 2> "$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "line 2" "$TMP/err" && grep -q "not valid UTF-8" "$TMP/err"; check "invalid UTF-8 -> exit 1 naming the line" $?
"$B" tokenize < /dev/null > /dev/null 2>&1; rc=$?
[ $rc -eq 2 ]; check "missing --tokenizer -> exit 2" $?
"$B" tokenize --tokenizer "$TMP/nope" < /dev/null > /dev/null 2> "$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "no such tokenizer" "$TMP/err"; check "missing tokenizer folder -> exit 1" $?
printf '1 2 x\n' | "$B" tokenize --tokenizer "$T/gpt2" --decode > /dev/null 2> "$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "space-separated token ids" "$TMP/err"; check "bad ids -> exit 1" $?
printf '99999999\n' | "$B" tokenize --tokenizer "$T/gpt2" --decode > /dev/null 2> "$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "cannot decode id" "$TMP/err"; check "unknown id -> exit 1" $?
printf 'no tab here\n' | "$B" tokenize --tokenizer "$T/gpt2" --pair > /dev/null 2> "$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "tab" "$TMP/err"; check "--pair without a tab -> exit 1" $?
printf '{"txt": 1}\n' | "$B" tokenize --tokenizer "$T/gpt2" --jsonl > /dev/null 2> "$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "JSON string" "$TMP/err"; check "--jsonl wrong object -> exit 1" $?
printf '{"model": 3}' > "$TMP/tokenizer.json"
"$B" tokenize --tokenizer "$TMP" < /dev/null > /dev/null 2> "$TMP/err"; rc=$?
[ $rc -eq 1 ] && grep -q "field 'model'" "$TMP/err"; check "malformed tokenizer.json -> exit 1" $?
exit $fail
