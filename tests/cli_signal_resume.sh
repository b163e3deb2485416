#!/usr/bin/env bash
# SIGTERM / SIGINT during `balora train` (no --save-every): the run finishes its step, writes a
# checkpoint atomically, says how to resume and exits 143 / 130; a bare `--resume` then ends with
# the adapter of an uninterrupted run, byte for byte. Signals land at random moments (several
# trials); a second signal exits at once and leaves the last published checkpoint usable.
. "$(dirname "$0")/shlib.sh"
model="$shared/golden/llama"
need_shared golden/llama
python3 -c "
import json
with open('$tmp/ids.jsonl', 'w') as f:
    for i in range(64): f.write(json.dumps({'input_ids': [(i * 31 + t * 7) % 256 for t in range(32)]}) + '\n')"
STEPS=300
args=(train --model "$model" --data "$tmp/ids.jsonl" --data-format tokens --method ba-lora --max-steps $STEPS
      --batch-size 4 --lr 1e-3 --threads 1 --seed 7)
t0=$(date +%s.%N)
"$CLI" "${args[@]}" --out "$tmp/ref" >"$tmp/ref.log" 2>&1; rc=$?
t1=$(date +%s.%N)
check "uninterrupted run exits 0 (got $rc)" '[ $rc -eq 0 ]'
dur=$(python3 -c "print($t1 - $t0)")
same_adapter() { cmp -s "$tmp/ref/adapter_model.safetensors" "$1/adapter_model.safetensors" &&
                 cmp -s "$tmp/ref/adapter_config.json" "$1/adapter_config.json"; }
# A moment in [0.05 s, 0.8 x the uninterrupted run's time] (at least 0.1 s wide).
moment() { python3 -c "import random; print(round(random.uniform(0.05, max(0.15, 0.8 * $dur)), 3))"; }

trial() { # $1 = name, $2 = signal, $3 = how many signals, $4.. = extra options
  local name=$1 sig=$2 nsig=$3; shift 3
  local out="$tmp/$name" at; at=$(moment)
  "$CLI" "${args[@]}" "$@" --out "$out" >"$out.log" 2>&1 &
  local pid=$!
  sleep "$at"
  kill -"$sig" $pid 2>/dev/null
  [ "$nsig" -gt 1 ] && kill -"$sig" $pid 2>/dev/null
  wait $pid; local rc=$?
  local want=143; [ "$sig" = INT ] && want=130
  if [ $rc -eq 0 ]; then # the run ended before the signal: nothing to resume
    check "$name: finished before the signal at ${at}s: adapter as uninterrupted" 'same_adapter "$out"'
    return
  fi
  check "$name: signal $sig at ${at}s exits $want (got $rc: $(tail -c 300 "$out.log"))" '[ $rc -eq $want ]'
  if [ "$nsig" -eq 1 ]; then
    check "$name: says where the checkpoint is and how to resume" 'grep -q "checkpoint written: .*checkpoint-[0-9]*; hint: run the same command with --resume" "$out.log"'
  fi
  local resumed=0
  for try in 1 2 3; do # a checkpoint exists unless the signal came before the first step
    ls -d "$out"/checkpoint-[0-9]* >/dev/null 2>&1 || break
    "$CLI" "${args[@]}" "$@" --out "$out" --resume >"$out.resume.log" 2>&1; rc=$?
    resumed=1
    [ $rc -eq 0 ] && break
  done
  if [ $resumed -eq 0 ]; then # no checkpoint: the signal came before step 1; a fresh run must then work
    check "$name: no checkpoint only when stopped before step 1" 'grep -q "before step 1 ran\|before the first" "$out.log" || [ "$nsig" -gt 1 ]'
    rm -rf "$out"; "$CLI" "${args[@]}" "$@" --out "$out" >"$out.resume.log" 2>&1; rc=$?
  fi
  check "$name: the rerun exits 0 (got $rc: $(tail -c 300 "$out.resume.log"))" '[ $rc -eq 0 ]'
  check "$name: adapter equals the uninterrupted one, byte for byte" 'same_adapter "$out"'
  check "$name: no unpublished checkpoint folder left" '! ls -d "$out"/*.tmp >/dev/null 2>&1 || [ "$nsig" -gt 1 ]'
}
for i in 1 2 3 4; do trial "term$i" TERM 1; done
trial int1 INT 1
# two signals at once: exits at once; the periodic checkpoints published so far stay usable
trial twice TERM 2 --save-every 25
finish
