#!/usr/bin/env bash
# balora demo / lab / pretrain on the miniature preset: exit codes, the printed table, the report
# folder, a loadable pre-trained model (llama and gpt2), and clear errors on bad input.
set -uo pipefail
SRC=${BALORA_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
B=${BALORA_CLI:-$SRC/build/balora}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
fail=0
check() { # name, command result (0 = ok)
  if [ "$2" -eq 0 ]; then echo "ok: $1"; else echo "FAIL: $1"; fail=1; fi
}

"$B" demo --preset mini --seeds 2 --out "$TMP/demo" > "$TMP/demo.out" 2> "$TMP/demo.err"
check "demo --preset mini exits 0" $?
grep -q '^| ba-lora |' "$TMP/demo.out"; check "the table is printed" $?
grep -q '^| pre-trained (no fine-tuning) |' "$TMP/demo.out"; check "the pre-trained row is printed" $?
grep -q 'report: .*report.md' "$TMP/demo.out"; check "the report path is printed" $?
grep -q '\[run 15/15\]' "$TMP/demo.err"; check "progress shows run i of n (15 runs)" $?
grep -q 'ETA' "$TMP/demo.err"; check "progress shows an ETA" $?
for f in report.md results.json loss.png scores.png tsne.png loss.svg scores.svg tsne.svg models/mini/config.json \
         models/mini/model.safetensors models/mini/tokenizer.json models/mini/corpus/corpus.json logs/pretrain_mini.jsonl \
         logs/ft_mini_lora_seed1.jsonl logs/ft_mini_ba-lora_seed2.jsonl; do
  [ -s "$TMP/demo/$f" ]; check "demo wrote $f" $?
done
"$B" inspect "$TMP/demo/models/mini" > /dev/null 2>&1; check "balora inspect reads the pre-trained folder" $?

"$B" lab --list > "$TMP/list.out"; check "lab --list exits 0" $?
for p in demo grid rank-sweep ablation mini; do grep -q "^$p " "$TMP/list.out"; check "lab --list shows $p" $?; done
"$B" lab --preset nope > /dev/null 2> "$TMP/err"; [ $? -eq 2 ] && grep -q 'unknown' "$TMP/err"; check "lab --preset nope: usage error" $?
"$B" lab > /dev/null 2> "$TMP/err"; [ $? -eq 2 ]; check "lab without --preset: usage error" $?
"$B" demo --seeds 1000 --out "$TMP/x" > /dev/null 2> "$TMP/err"; [ $? -eq 2 ]; check "demo --seeds 1000: usage error" $?

"$B" demo --preset mini --methods lora,ba-lora --seeds 2 --out "$TMP/m2" > "$TMP/m2.out" 2> /dev/null
check "demo --methods lora,ba-lora exits 0" $?
grep -q '^| ba-lora |' "$TMP/m2.out" && ! grep -q '^| pissa |' "$TMP/m2.out"; check "--methods selects the methods" $?
"$B" demo --methods lora,bogus --out "$TMP/x" > /dev/null 2> "$TMP/err"; [ $? -eq 2 ] && grep -q "'bogus'" "$TMP/err"
check "demo --methods bogus: usage error naming it" $?

for arch in llama gpt2; do
  "$B" pretrain --preset mini --arch $arch --layers 1 --hidden 16 --heads 2 --steps 3 --out "$TMP/pt_$arch" > "$TMP/pt.out" 2>&1
  check "pretrain --arch $arch exits 0" $?
  grep -Eq '"model_type":[[:space:]]*"'$arch'"' "$TMP/pt_$arch/config.json"; check "pretrain --arch $arch: config.json model_type" $?
  "$B" inspect "$TMP/pt_$arch" > /dev/null 2>&1; check "pretrain --arch $arch: folder loads" $?
done
echo '{"noise": 0.1, "seed": 9}' > "$TMP/cc.json"
"$B" pretrain --preset mini --corpus-config "$TMP/cc.json" --steps 2 --out "$TMP/pt_cc" > /dev/null 2>&1
check "pretrain --corpus-config exits 0" $?
grep -Eq '"noise":[[:space:]]*0.1,' "$TMP/pt_cc/corpus/corpus.json"; check "pretrain --corpus-config is applied" $?
echo '{"noise": 0.1, "bogus": 1}' > "$TMP/bad.json"
"$B" pretrain --preset mini --corpus-config "$TMP/bad.json" --out "$TMP/pt_bad" > /dev/null 2> "$TMP/err"
[ $? -ne 0 ] && grep -q 'bogus' "$TMP/err"; check "pretrain: unknown corpus key is named" $?
"$B" pretrain --preset mini --heads 3 --steps 2 --out "$TMP/pt_bad2" > /dev/null 2> "$TMP/err"
[ $? -ne 0 ] && grep -q 'heads' "$TMP/err"; check "pretrain --heads 3 (hidden 16): clear error" $?
"$B" pretrain --preset mini > /dev/null 2> "$TMP/err"; [ $? -eq 2 ]; check "pretrain without --out: usage error" $?
exit $fail
