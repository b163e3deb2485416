#!/usr/bin/env bash
# balora train --task seq-cls / balora eval --task seq-cls: --help lists the seq-cls options with their
# own defaults, usage errors exit 2 with a message, a missing model exits 1 naming it.
# (Training and evaluating a tiny classifier through the CLI: tests/test_nlu_cli.c.)
set -u
CLI=${BALORA_CLI:-./build/balora}
fail=0
check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; fi; }
help=$("$CLI" train --task seq-cls --help 2>&1)
for o in task dev glue-task text-col text-pair-col label-col labels regression no-header skip-bad-rows num-labels label-noise \
         imbalance imbalance-major max-train data-seed log-every method rank alpha targets lr batch-size grad-accum epochs \
         max-steps max-len seed threads log lambda1 lambda2 lambda3 svd-k; do
  check "seq-cls --help lists --$o" 'echo "$help" | grep -q -- "--$o "'
done
# the seq-cls defaults (batch 32, 3 epochs, 128 tokens, warmup 6%) against causal-LM's (4, 1, 512, 0)
check "seq-cls defaults" 'echo "$help" | grep -Eq -- "--batch-size N .*\(default: 32\)" && echo "$help" | grep -Eq -- "--epochs N .*\(default: 3\)" &&
  echo "$help" | grep -Eq -- "--max-len N .*\(default: 128\)" && echo "$help" | grep -Eq -- "--warmup-ratio X .*\(default: 0.06\)"'
lm=$("$CLI" train --help 2>&1)
check "causal-LM defaults unchanged" 'echo "$lm" | grep -Eq -- "--batch-size N .*\(default: 4\)" && echo "$lm" | grep -Eq -- "--max-len N .*\(default: 512\)"'
t() { "$CLI" "$@" >/dev/null 2>"$tmp/err"; echo $?; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rc=$(t train --task seq-cls --data d --out o); check "missing --model exits 2 ($rc)" '[ $rc -eq 2 ] && grep -q required "$tmp/err"'
rc=$(t train --task seq-cls --model m --data d --out o --glue-task squad); check "unknown --glue-task exits 2 naming it ($rc)" '[ $rc -eq 2 ] && grep -q squad "$tmp/err"'
rc=$(t train --task seq-cls --model m --data d --out o --method dora); check "unknown --method exits 2 ($rc)" '[ $rc -eq 2 ] && grep -q dora "$tmp/err"'
rc=$(t train --task seq-cls --model m --data d --out o --no-shuffle); check "--no-shuffle is causal-LM only ($rc)" '[ $rc -eq 2 ] && grep -q -- --no-shuffle "$tmp/err"'
rc=$(t train --task seq-cls --model m --data d --out o --data-format text); check "--data-format is causal-LM only ($rc)" '[ $rc -eq 2 ] && grep -q -- --data-format "$tmp/err"'
rc=$(t train --task seq-cls --model m --data d --out o --glue-task sst2 --text-col x); check "column options with a GLUE task exit 2 ($rc)" '[ $rc -eq 2 ] && grep -q "generic" "$tmp/err"'
rc=$(t train --task seq-cls --model m --data d --out o --method lora --init pissa); check "--init pissa with lora exits 2 ($rc)" '[ $rc -eq 2 ] && grep -q -- "--init pissa" "$tmp/err"'
rc=$(t train --task seq-cls --model m --data d --out o --schedule steep); check "unknown --schedule exits 2 ($rc)" '[ $rc -eq 2 ] && grep -q steep "$tmp/err"'
rc=$(t train --task regression --model m --data d --out o); check "unknown --task exits 2 ($rc)" '[ $rc -eq 2 ] && grep -q regression "$tmp/err"'
rc=$(t train --model m --data d --out o --dev x.tsv); check "--dev without --task seq-cls exits 2 ($rc)" '[ $rc -eq 2 ] && grep -q "seq-cls" "$tmp/err"'
rc=$(t train --task seq-cls --model "$tmp/nowhere" --data d --out "$tmp/o"); check "missing model exits 1 naming it ($rc)" '[ $rc -eq 1 ] && grep -q nowhere "$tmp/err"'
rc=$(t eval --task seq-cls --model "$tmp/nowhere" --glue-task sst2 --data d.tsv); check "eval: missing model/data exits 1 ($rc)" '[ $rc -eq 1 ]'
rc=$(t eval --task seq-cls --model m --glue-task squad --data d.tsv); check "eval: unknown --glue-task exits 2 ($rc)" '[ $rc -eq 2 ] && grep -q squad "$tmp/err"'
rc=$(t eval --task seq-cls --adapter a --data d.tsv); check "eval: --adapter without --model exits 2 ($rc)" '[ $rc -eq 2 ]'
exit $fail
