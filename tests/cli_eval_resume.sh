#!/usr/bin/env bash
# balora eval --out R: SIGTERM (to the process) or SIGINT (to its process group, as a terminal's
# Ctrl-C) at random moments stops after the current problems, keeps the outcomes so far in
# R.progress.jsonl, says how to go on and exits 143 / 130; rerunning the same command skips what is
# done and writes the report of an uninterrupted run, byte for byte but the "seconds" line. A rerun
# with other options refuses the kept results, naming the field.
set -u
CLI=${BALORA_CLI:-./build/balora}
SRC=${BALORA_SOURCE_DIR:-.}
SHARED=${BALORA_SHARED:-$SRC/../shared}
D=$SHARED/data
[ -f "$D/humaneval/HumanEval.jsonl.gz" ] || { echo "SKIP: $D/humaneval not found (set BALORA_SHARED)"; exit 77; }
PY=${BALORA_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3) || { echo "SKIP: python3 needed"; exit 77; }
fail=0; n_ok=0
check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; else n_ok=$((n_ok + 1)); fi; }
T=$(mktemp -d /tmp/balora-eval-resume-XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
N=16
# two samples per problem: the reference (made slow so that signals land mid-run) and a wrong one
"$PY" - "$D" "$T" $N <<'PYEOF'
import gzip, json, sys
d, t, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(t + "/he.jsonl", "w") as f:
    for l in list(gzip.open(d + "/humaneval/HumanEval.jsonl.gz", "rt"))[:n]:
        r = json.loads(l)
        f.write(json.dumps({"task_id": r["task_id"], "completion": "    import time; time.sleep(0.05)\n" + r["canonical_solution"]}) + "\n")
        f.write(json.dumps({"task_id": r["task_id"], "completion": "    return None\n"}) + "\n")
PYEOF
args=(eval --bench humaneval --data "$D/humaneval/HumanEval.jsonl.gz" --completions "$T/he.jsonl" --limit $N --k 1,2 --jobs 2)
t0=$(date +%s.%N)
"$CLI" "${args[@]}" --out "$T/ref.json" >"$T/ref.log" 2>&1; rc=$?
t1=$(date +%s.%N)
check "uninterrupted run exits 0 (got $rc)" '[ $rc -eq 0 ]'
check "no progress file left after a finished run" '[ ! -e "$T/ref.json.progress.jsonl" ]'
dur=$("$PY" -c "print($t1 - $t0)")
same_report() { cmp -s <(grep -v '"seconds":' "$T/ref.json") <(grep -v '"seconds":' "$1"); }
# Runs the command in its own session, sends $1 after $2 s (INT: to the whole process group), prints the exit status.
signal_run() {
  local sig=$1 at=$2 log=$3; shift 3
  "$PY" - "$sig" "$at" "$log" "$@" <<'PYEOF'
import os, signal, subprocess, sys, time
sig, at, log, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
signal.signal(signal.SIGINT, signal.SIG_DFL)  # children start with the default disposition
with open(log, "w") as f:
    p = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)
    time.sleep(at)
    if sig == "INT":
        try: os.killpg(p.pid, signal.SIGINT)
        except ProcessLookupError: pass
    else:
        try: p.send_signal(signal.SIGTERM)
        except ProcessLookupError: pass
    print(p.wait())
PYEOF
}
moment() { "$PY" -c "import random; print(round(random.uniform(0.05, max(0.15, 0.8 * $dur)), 3))"; }

mismatch_checked=0; n_interrupted=0
trial() { # $1 = name, $2 = TERM | INT
  local name=$1 sig=$2 out="$T/$1.json" at; at=$(moment)
  rc=$(signal_run "$sig" "$at" "$T/$name.log" "$CLI" "${args[@]}" --out "$out")
  local want=143; [ "$sig" = INT ] && want=130
  if [ "$rc" -eq 0 ]; then
    check "$name: finished before the signal at ${at}s: report as uninterrupted" 'same_report "$out"'
    return
  fi
  n_interrupted=$((n_interrupted + 1))
  check "$name: signal $sig at ${at}s exits $want (got $rc: $(tail -c 300 "$T/$name.log"))" '[ "$rc" -eq $want ]'
  check "$name: says where the results are and how to continue" 'grep -q "kept in .*$name.json.progress.jsonl; hint: run the same command again" "$T/$name.log"'
  check "$name: the progress file exists" '[ -s "$out.progress.jsonl" ]'
  local kept; kept=$(($(wc -l <"$out.progress.jsonl") - 1))
  if [ $mismatch_checked -eq 0 ]; then # other options: the kept results are refused, the file is left alone
    mismatch_checked=1
    cp "$out.progress.jsonl" "$T/before"
    "$CLI" "${args[@]}" --k 1 --out "$out" >"$T/$name.mismatch.log" 2>&1; local rc2=$?
    check "$name: a rerun with another --k fails (got $rc2)" '[ $rc2 -eq 1 ]'
    check "$name: ... naming the field and the way out" 'grep -q "fingerprint.k.*another evaluation.*use another --out, or remove" "$T/$name.mismatch.log"'
    check "$name: ... and leaves the progress file as it was" 'cmp -s "$T/before" "$out.progress.jsonl"'
    # a torn last line (a process killed while writing it) is dropped, the rest kept
    printf '{"index": 0, "id": "HumanEval/0", "outc' >>"$out.progress.jsonl"
  fi
  "$CLI" "${args[@]}" --out "$out" >"$T/$name.rerun.log" 2>&1; rc=$?
  check "$name: the rerun exits 0 (got $rc: $(tail -c 300 "$T/$name.rerun.log"))" '[ $rc -eq 0 ]'
  if [ "$kept" -gt 0 ]; then
    check "$name: the rerun skipped the $kept problems kept" 'grep -q "$kept of $N problems already scored" "$T/$name.rerun.log"'
  fi
  check "$name: report equals the uninterrupted one (but seconds)" 'same_report "$out"'
  check "$name: progress file removed once the report is written" '[ ! -e "$out.progress.jsonl" ]'
}
for i in 1 2 3; do trial "term$i" TERM; done
for i in 1 2; do trial "int$i" INT; done

check "at least one run was interrupted mid-way ($n_interrupted)" '[ $n_interrupted -gt 0 ]'
echo "$n_ok checks passed"
[ $n_ok -gt 0 ] || fail=1
exit $fail
