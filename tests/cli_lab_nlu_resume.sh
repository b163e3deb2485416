#!/usr/bin/env bash
# balora lab, encoder arm (--preset nlu-mini): SIGTERM or SIGINT at random moments stops after the
# current training step or run (exit 143 / 130); the masked-LM pre-training and each finished
# fine-tuning run stay in OUT/runs; the same command again skips them and writes an nlu_results.json
# whose every metric, loss curve and t-SNE map equals an uninterrupted job's (timings and the start
# time left out). Another --seeds refuses the kept runs, naming the field. Self-contained.
. "$(dirname "$0")/shlib.sh"
args=(lab --preset nlu-mini --seeds 16 --threads 1)
t0=$(date +%s.%N)
"$CLI" "${args[@]}" --out "$tmp/ref" >"$tmp/ref.log" 2>&1; rc=$?
t1=$(date +%s.%N)
check "uninterrupted job exits 0 (got $rc)" '[ $rc -eq 0 ]'
dur=$(python3 -c "print($t1 - $t0)")
n_runs=$(ls "$tmp/ref/runs" | grep -c '^nlu_ft_\|^nlu_pretrain')
check "every run is kept in runs/ (got $n_runs)" '[ "$n_runs" -eq $((1 + 4 * 16)) ]'
same_results() {
  python3 - "$tmp/ref/nlu_results.json" "$1/nlu_results.json" <<'PYEOF'
import json, sys
def strip(x):  # timings and the start time are the only fields allowed to differ
    if isinstance(x, dict): return {k: strip(v) for k, v in x.items() if "seconds" not in k and k != "started_utc"}
    if isinstance(x, list): return [strip(v) for v in x]
    return x
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
sys.exit(0 if a == b and a else 1)
PYEOF
}
check "the comparison can fail (the reference against the report of another --seeds)" \
  '"$CLI" lab --preset nlu-mini --seeds 2 --threads 1 --out "$tmp/two" >/dev/null 2>&1 && ! same_results "$tmp/two"'
n_interrupted=0; mismatch_checked=0
trial() { # $1 = name, $2 = signal, $3 = moment (s)
  local name=$1 sig=$2 at=$3 out="$tmp/$1"
  "$CLI" "${args[@]}" --out "$out" >"$out.log" 2>&1 &
  local pid=$!
  sleep "$at"
  kill -"$sig" $pid 2>/dev/null
  wait $pid; local rc=$?
  if [ $rc -eq 0 ]; then
    check "$name: finished before the signal at ${at}s: results as uninterrupted" 'same_results "$out"'
    return
  fi
  local want=143; [ "$sig" = INT ] && want=130
  n_interrupted=$((n_interrupted + 1))
  check "$name: signal $sig at ${at}s exits $want (got $rc: $(tail -c 300 "$out.log"))" '[ $rc -eq $want ]'
  check "$name: says what is kept and how to continue" 'grep -q "run(s) are kept in .*runs; hint: run the same command again" "$out.log"'
  local kept; kept=$(ls "$out/runs" 2>/dev/null | grep -c '^nlu_ft_\|^nlu_pretrain')
  echo "NOTE: $name: $sig at ${at}s, $kept of 65 runs kept"
  if [ $mismatch_checked -eq 0 ] && [ -e "$out/runs/nlu.json" ]; then
    mismatch_checked=1
    "$CLI" lab --preset nlu-mini --seeds 15 --threads 1 --out "$out" >"$out.mismatch.log" 2>&1; local rc2=$?
    check "$name: another --seeds is refused (got $rc2)" '[ $rc2 -eq 1 ] && grep -q "field .seeds. is 16 there but 15 in this run.*use another --out, or remove" "$out.mismatch.log"'
  fi
  "$CLI" "${args[@]}" --out "$out" >"$out.rerun.log" 2>&1; rc=$?
  check "$name: the rerun exits 0 (got $rc: $(tail -c 300 "$out.rerun.log"))" '[ $rc -eq 0 ]'
  local skipped; skipped=$(grep -c "kept from an earlier job" "$out.rerun.log")
  check "$name: the rerun skipped the $kept kept runs (skipped $skipped)" '[ "$skipped" -eq "$kept" ]'
  check "$name: every metric, curve and map equals the uninterrupted job's" 'same_results "$out"'
}
# moments spread over the job: early ones land in the pre-training, later ones among the fine-tuning runs
for i in 1 2 3 4 5; do
  sig=TERM; [ $i -eq 3 ] && sig=INT
  trial "t$i" $sig "$(python3 -c "import random; print(round(random.uniform(0.05, max(0.1, 0.9 * $dur)), 3))")"
done
check "at least one job was interrupted mid-way ($n_interrupted)" '[ $n_interrupted -gt 0 ]'
finish
