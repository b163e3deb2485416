#!/usr/bin/env bash
# balora eval --task seq-cls --model M --out R (and --ood-data): SIGTERM or SIGINT at random moments
# stops after the current batch, keeps the predictions so far in R.progress.jsonl (the out-of-domain
# file's in R.ood.progress.jsonl), exits 143 / 130; the same command again predicts only the rest and
# writes the report of an uninterrupted run (equal but "seconds"), then removes the journals. Other
# options refuse the kept predictions, naming the field.
. "$(dirname "$0")/shlib.sh"
need_shared golden/bert
model="$tmp/bert"
tiny_bert "$model" "$tmp/dev.tsv" 3000 7
python3 - "$tmp/dev.tsv" "$tmp/ood.tsv" <<'PY'
import sys
rows = open(sys.argv[1]).read().splitlines()
open(sys.argv[2], "w").write("\n".join([rows[0]] + [r.replace("movie", "plot") for r in rows[1:1501]]) + "\n")
PY
args=(eval --task seq-cls --glue-task sst2 --model "$model" --data "$tmp/dev.tsv" --ood-data "$tmp/ood.tsv" --batch-size 4)
t0=$(date +%s.%N)
"$CLI" "${args[@]}" --out "$tmp/ref.json" >"$tmp/ref.log" 2>&1; rc=$?
t1=$(date +%s.%N)
check "uninterrupted evaluation exits 0 (got $rc: $(tail -c 300 "$tmp/ref.log"))" '[ $rc -eq 0 ]'
check "its report has both files' results" 'python3 -c "import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r[\"n\"] == 3000 and r[\"out_of_domain\"][\"n\"] == 1500 else 1)" "$tmp/ref.json"'
check "the journals are removed once the report is written" '[ ! -e "$tmp/ref.json.progress.jsonl" ] && [ ! -e "$tmp/ref.json.ood.progress.jsonl" ]'
dur=$(python3 -c "print($t1 - $t0)")
n_interrupted=0; n_kept=0; mismatch_checked=0
for i in 1 2 3 4; do
  sig=TERM; [ $i -eq 2 ] && sig=INT
  out="$tmp/r$i.json"
  at=$(python3 -c "import random; print(round(random.uniform(0.1, max(0.2, 0.9 * $dur)), 3))")
  "$CLI" "${args[@]}" --out "$out" >"$tmp/r$i.log" 2>&1 &
  pid=$!; sleep "$at"; kill -$sig $pid 2>/dev/null; wait $pid; rc=$?
  if [ $rc -ne 0 ]; then
    want=143; [ $sig = INT ] && want=130
    n_interrupted=$((n_interrupted + 1))
    check "r$i: $sig at ${at}s exits $want (got $rc: $(tail -c 300 "$tmp/r$i.log"))" '[ $rc -eq $want ]'
    check "r$i: says the predictions are kept and how to continue" 'grep -q "predictions made are kept; hint: run the same command again" "$tmp/r$i.log"'
    kept=$(cat "$out.progress.jsonl" "$out.ood.progress.jsonl" 2>/dev/null | grep -c '"prediction"')
    echo "NOTE: r$i: $sig at ${at}s, $kept predictions kept"
    [ "$kept" -gt 0 ] && n_kept=$((n_kept + 1))
    if [ $mismatch_checked -eq 0 ] && [ -s "$out.progress.jsonl" ]; then
      mismatch_checked=1
      other=("${args[@]}"); other[12]=5   # --batch-size 5
      "$CLI" "${other[@]}" --out "$out" >"$tmp/r$i.mismatch.log" 2>&1; rc2=$?
      check "r$i: another --batch-size is refused (got $rc2)" '[ $rc2 -ne 0 ] && grep -q "field .fingerprint.batch_size. is 4 there but 5 in this run" "$tmp/r$i.mismatch.log"'
    fi
    "$CLI" "${args[@]}" --out "$out" >"$tmp/r$i.rerun.log" 2>&1; rc=$?
    check "r$i: the rerun exits 0 (got $rc: $(tail -c 300 "$tmp/r$i.rerun.log"))" '[ $rc -eq 0 ]'
  fi
  check "r$i: the report equals the uninterrupted one" 'json_same_but_timings "$tmp/ref.json" "$out"'
  check "r$i: no journal is left" '[ ! -e "$out.progress.jsonl" ] && [ ! -e "$out.ood.progress.jsonl" ]'
done
check "at least one evaluation was interrupted with predictions kept ($n_interrupted interrupted, $n_kept with kept predictions)" '[ $n_kept -gt 0 ]'
check "the comparison can fail (a report on other data differs)" \
  '"$CLI" eval --task seq-cls --glue-task sst2 --model "$model" --data "$tmp/ood.tsv" --batch-size 4 --out "$tmp/other.json" >/dev/null 2>&1 && ! json_same_but_timings "$tmp/ref.json" "$tmp/other.json"'
finish
