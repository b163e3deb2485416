#!/usr/bin/env bash
# Sequence classification resumes bit for bit: `balora train --task seq-cls` (BA-LoRA on a copy of
# the golden BERT with a vocabulary written here) with --save-every 1 is killed with SIGKILL at
# random moments, restarted with a bare --resume while a checkpoint exists, and must end with the
# adapter of an uninterrupted run, byte for byte (adapter_model.safetensors, adapter_config.json)
# and the same step count in results.json.
. "$(dirname "$0")/shlib.sh"
need_shared golden/bert
model="$tmp/bert"
tiny_bert "$model" "$tmp/train.tsv" 96
args=(train --task seq-cls --model "$model" --data "$tmp/train.tsv" --glue-task sst2 --method ba-lora --batch-size 8
      --max-steps 60 --lr 1e-3 --threads 1 --seed 5 --save-every 1 --save-total-limit 2)
t0=$(date +%s.%N)
"$CLI" "${args[@]}" --out "$tmp/ref" >"$tmp/ref.log" 2>&1; rc=$?
t1=$(date +%s.%N)
check "uninterrupted run exits 0 (got $rc: $(tail -c 300 "$tmp/ref.log"))" '[ $rc -eq 0 ]'
check "uninterrupted run wrote the adapter" '[ -s "$tmp/ref/adapter/adapter_model.safetensors" ]'
dur=$(python3 -c "print($t1 - $t0)")
steps_of() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['steps'])" "$1" 2>&1; }
ref_steps=$(steps_of "$tmp/ref/results.json")
check "results.json records 60 steps (got $ref_steps)" '[ "$ref_steps" = 60 ]'
for trial in 1 2 3 4 5; do
  out="$tmp/run$trial"; kills=0
  while :; do
    flag=(); ls -d "$out"/checkpoint-[0-9]* >/dev/null 2>&1 && flag=(--resume)
    at=$(python3 -c "import random; print(round(random.uniform(0.05, max(0.15, 0.5 * $dur)), 3))")
    "$CLI" "${args[@]}" "${flag[@]}" --out "$out" >"$out.log" 2>&1 &
    pid=$!
    sleep "$at"
    if kill -KILL $pid 2>/dev/null; then wait $pid 2>/dev/null; kills=$((kills + 1)); else wait $pid; rc=$?; break; fi
    [ $kills -lt 30 ] || { rc=99; break; }
  done
  echo "trial $trial: $kills kills"
  check "trial $trial: the run finishes after $kills kills (rc $rc: $(tail -c 300 "$out.log"))" '[ $rc -eq 0 ]'
  check "trial $trial: adapter_model.safetensors equals the uninterrupted one" 'cmp -s "$tmp/ref/adapter/adapter_model.safetensors" "$out/adapter/adapter_model.safetensors"'
  check "trial $trial: adapter_config.json equals the uninterrupted one" 'cmp -s "$tmp/ref/adapter/adapter_config.json" "$out/adapter/adapter_config.json"'
  s=$(steps_of "$out/results.json")
  check "trial $trial: results.json records 60 steps (got $s)" '[ "$s" = 60 ]'
done
finish
