#!/usr/bin/env bash
# A model or data file that changes while balora runs cannot crash it or change its result: balora
# reads every input file whole, once, at load (bl_file_read: fstat, then exactly that many bytes; a
# file that shrinks during the read is a "short read" error), and parses only its own copy. Here the
# model's weights, its config and the training data are truncated in place, overwritten with
# garbage and replaced while `balora train` runs; the run ends with the adapter of an undisturbed
# run, byte for byte. A file truncated before the load is a clear error naming it.
. "$(dirname "$0")/shlib.sh"
need_shared golden/llama
fresh() { rm -rf "$tmp/model"; mkdir -p "$tmp/model"; cp "$shared/golden/llama/config.json" "$shared/golden/llama/model.safetensors" "$tmp/model/"
  python3 -c "
import json
with open('$tmp/ids.jsonl', 'w') as f:
    for i in range(64): f.write(json.dumps({'input_ids': [(i * 31 + t * 7) % 256 for t in range(32)]}) + '\n')"; }
args=(train --model "$tmp/model" --data "$tmp/ids.jsonl" --data-format tokens --method pissa --max-steps 400
      --batch-size 4 --lr 1e-3 --threads 1)
fresh
"$CLI" "${args[@]}" --out "$tmp/ref" >"$tmp/ref.log" 2>&1; rc=$?
check "undisturbed run exits 0 (got $rc)" '[ $rc -eq 0 ]'

fresh
"$CLI" "${args[@]}" --out "$tmp/run" >"$tmp/run.log" 2>&1 &
pid=$!
for i in $(seq 1 400); do grep -q "^step " "$tmp/run.log" 2>/dev/null && break; sleep 0.02; done
running=0; kill -0 $pid 2>/dev/null && running=1
check "the run is still training when its files change" '[ $running -eq 1 ]'
truncate -s 100 "$tmp/model/model.safetensors"                                # in place, same inode
head -c 4096 /dev/urandom | dd of="$tmp/model/model.safetensors" conv=notrunc status=none
printf '{"model_type": "nonsense"' > "$tmp/model/config.json"
head -c 2000 /dev/urandom > "$tmp/ids.new" && mv "$tmp/ids.new" "$tmp/ids.jsonl"  # replaced (new inode)
wait $pid; rc=$?
check "the run exits 0 after its files changed (got $rc: $(tail -c 300 "$tmp/run.log"))" '[ $rc -eq 0 ]'
check "its adapter equals the undisturbed one, byte for byte" 'cmp -s "$tmp/ref/adapter_model.safetensors" "$tmp/run/adapter_model.safetensors"'

# the changed folder is now refused with a clear error, not a crash
fresh
truncate -s 100 "$tmp/model/model.safetensors"
err=$("$CLI" "${args[@]}" --out "$tmp/bad" 2>&1); rc=$?
check "a truncated weights file exits 1 naming it (got $rc: $err)" '[ $rc -eq 1 ] && echo "$err" | grep -q "model.safetensors"'
finish
