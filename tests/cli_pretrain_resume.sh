#!/usr/bin/env bash
# balora pretrain --save-every / --resume: kill -9 at random moments with --save-every 1, then
# --resume (bare: the latest checkpoint in --out) ends with the model.safetensors of an
# uninterrupted run, byte for byte; SIGTERM without --save-every writes a checkpoint, says how to
# resume and exits 143. Self-contained (the lab's synthetic corpus).
. "$(dirname "$0")/shlib.sh"
args=(pretrain --preset mini --steps 240 --threads 1)
t0=$(date +%s.%N)
"$CLI" "${args[@]}" --out "$tmp/ref" >"$tmp/ref.log" 2>&1; rc=$?
t1=$(date +%s.%N)
check "uninterrupted run exits 0 (got $rc)" '[ $rc -eq 0 ]'
dur=$(python3 -c "print($t1 - $t0)")
same_model() { cmp -s "$tmp/ref/model.safetensors" "$1/model.safetensors" && cmp -s "$tmp/ref/config.json" "$1/config.json"; }
moment() { python3 -c "import random; print(round(random.uniform(0.2, max(0.15, 0.8 * $dur)), 3))"; }

trial() { # $1 = name, $2 = signal, $3.. = extra options
  local name=$1 sig=$2; shift 2
  local out="$tmp/$name" at; at=$(moment)
  "$CLI" "${args[@]}" "$@" --out "$out" >"$out.log" 2>&1 &
  local pid=$!
  sleep "$at"
  kill -"$sig" $pid 2>/dev/null
  wait $pid; local rc=$?
  if [ $rc -eq 0 ]; then
    check "$name: finished before the signal at ${at}s: model as uninterrupted" 'same_model "$out"'
    return
  fi
  local want=137; [ "$sig" = TERM ] && want=143
  n_interrupted=$((n_interrupted + 1))
  check "$name: signal $sig at ${at}s exits $want (got $rc: $(tail -c 300 "$out.log"))" '[ $rc -eq $want ]'
  if [ "$sig" = TERM ]; then
    check "$name: says where the checkpoint is and how to resume" 'grep -q "checkpoint written: .*checkpoint-[0-9]*; hint: run the same command with --resume\|before step 1 ran" "$out.log"'
  fi
  if ls -d "$out"/checkpoint-[0-9]* >/dev/null 2>&1; then
    "$CLI" "${args[@]}" "$@" --out "$out" --resume >"$out.resume.log" 2>&1; rc=$?
    check "$name: --resume says where it continues" 'grep -q "resuming from .*checkpoint-[0-9]*" "$out.resume.log"'
  else # killed before the first checkpoint was published: a fresh run
    rm -rf "$out"; "$CLI" "${args[@]}" "$@" --out "$out" >"$out.resume.log" 2>&1; rc=$?
  fi
  check "$name: the rerun exits 0 (got $rc: $(tail -c 300 "$out.resume.log"))" '[ $rc -eq 0 ]'
  check "$name: model.safetensors equals the uninterrupted one, byte for byte" 'same_model "$out"'
  check "$name: no unpublished checkpoint folder left behind by the resumed run" '! ls -d "$out"/checkpoint-*.tmp >/dev/null 2>&1 || [ "$sig" = KILL ]'
}
n_interrupted=0
for i in 1 2 3 4; do trial "kill$i" KILL --save-every 1 --save-total-limit 3; done
for i in 1 2; do trial "term$i" TERM; done
check "at least one run was interrupted mid-way ($n_interrupted)" '[ $n_interrupted -gt 0 ]'
# --resume DIR (a given checkpoint) works too
out="$tmp/dir"
"$CLI" "${args[@]}" --steps 240 --save-every 100 --out "$out" >/dev/null 2>&1
rm -f "$out/model.safetensors"
"$CLI" "${args[@]}" --save-every 100 --out "$out" --resume "$out/checkpoint-100" >"$out.log" 2>&1; rc=$?
check "--resume DIR exits 0 (got $rc)" '[ $rc -eq 0 ]'
check "--resume DIR: model equals the uninterrupted one" 'same_model "$out"'
"$CLI" "${args[@]}" --out "$tmp/none" --resume >"$tmp/none.log" 2>&1; rc=$?
check "--resume with no checkpoint fails clearly (got $rc)" '[ $rc -ne 0 ] && grep -qi "checkpoint" "$tmp/none.log"'
finish
