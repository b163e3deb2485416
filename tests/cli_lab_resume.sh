#!/usr/bin/env bash
# balora lab / demo: SIGTERM or SIGINT at random moments stops after the current training step or
# run (exit 143 / 130), the finished runs stay in OUT/runs; the same command again skips them and
# writes a results.json whose every metric equals an uninterrupted job's (timings and the start
# time left out). Another --seeds refuses the kept runs, naming the field. Self-contained.
. "$(dirname "$0")/shlib.sh"
args=(lab --preset mini --seeds 16 --threads 1)
report=results.json; runs_re='^ft_\|^pretrain_'; fingerprint=lab.json
. "$(dirname "$0")/lab_trial.sh"
lab_reference
n_runs=$(ls "$tmp/ref/runs" | grep -c "$runs_re")
check "every run is kept in runs/ (got $n_runs)" '[ "$n_runs" -eq $((1 + 7 * 16)) ]'
trial term1 TERM "$(moment)"
trial term2 TERM "$(moment)"
trial int1 INT "$(moment)"
check "at least one job was interrupted mid-way ($n_interrupted)" '[ $n_interrupted -gt 0 ]'
# balora demo goes through the same runner
"$CLI" demo --preset mini --seeds 16 --threads 1 --out "$tmp/demo" >"$tmp/demo.log" 2>&1 &
pid=$!; sleep "$(moment)"; kill -TERM $pid 2>/dev/null; wait $pid; rc=$?
check "demo: interrupted (143) or finished (got $rc)" '[ $rc -eq 143 ] || [ $rc -eq 0 ]'
"$CLI" demo --preset mini --seeds 16 --threads 1 --out "$tmp/demo" >"$tmp/demo.rerun.log" 2>&1; rc=$?
check "demo: the rerun exits 0 (got $rc)" '[ $rc -eq 0 ]'
check "demo: every metric equals the lab job's" 'same_results "$tmp/demo"'
finish
