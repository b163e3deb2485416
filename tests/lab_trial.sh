# Sourced by the lab's interruption tests (cli_lab_resume.sh: the decoder arm; cli_lab_nlu_resume.sh:
# the encoder arm), after shlib.sh. The caller sets:
#   args=(lab --preset P --seeds 16 --threads 1)   the job
#   report=results.json                            its report, compared with $tmp/ref/$report
#   runs_re='^ft_\|^pretrain_'                     the kept-run files in OUT/runs (grep pattern)
#   fingerprint=lab.json                           the fingerprint file in OUT/runs
# and runs the uninterrupted reference into $tmp/ref first (lab_reference).
n_interrupted=0; mismatch_checked=0
same_results() { json_same_but_timings "$tmp/ref/$report" "$1/$report"; }
lab_reference() { # the uninterrupted job; sets dur (its seconds)
  local t0 t1 rc
  t0=$(date +%s.%N)
  "$CLI" "${args[@]}" --out "$tmp/ref" >"$tmp/ref.log" 2>&1; rc=$?
  t1=$(date +%s.%N)
  check "uninterrupted job exits 0 (got $rc)" '[ $rc -eq 0 ]'
  dur=$(python3 -c "print($t1 - $t0)")
}
moment() { python3 -c "import random; print(round(random.uniform(${1:-0.2}, max(0.3, 0.8 * $dur)), 3))"; }
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
  local kept; kept=$(ls "$out/runs" 2>/dev/null | grep -c "$runs_re")
  echo "NOTE: $name: $sig at ${at}s, $kept runs kept"
  if [ $mismatch_checked -eq 0 ] && [ -e "$out/runs/$fingerprint" ]; then
    mismatch_checked=1
    local other=("${args[@]}"); other[4]=15   # --seeds 15
    "$CLI" "${other[@]}" --out "$out" >"$out.mismatch.log" 2>&1; local rc2=$?
    check "$name: another --seeds is refused (got $rc2)" '[ $rc2 -eq 1 ] && grep -q "field .seeds. is 16 there but 15 in this run.*use another --out, or remove" "$out.mismatch.log"'
  fi
  "$CLI" "${args[@]}" --out "$out" >"$out.rerun.log" 2>&1; rc=$?
  check "$name: the rerun exits 0 (got $rc: $(tail -c 300 "$out.rerun.log"))" '[ $rc -eq 0 ]'
  local skipped; skipped=$(grep -c "kept from an earlier job" "$out.rerun.log")
  check "$name: the rerun skipped the $kept kept runs (skipped $skipped)" '[ "$skipped" -eq "$kept" ]'
  check "$name: every metric equals the uninterrupted job's" 'same_results "$out"'
}
