#!/usr/bin/env bash
# balora train --loraplus-lr-ratio R (LoRA+, as PEFT's create_loraplus_optimizer): after one AdamW
# step from B = 0 (A gets no gradient then), every B element has moved R times as far as without
# LoRA+ (Adam's first step is lr * g / (|g| + eps): the same g in both runs), A is unchanged in both,
# and the adapter records the ratio in its metadata. --method full refuses it (exit 2).
. "$(dirname "$0")/shlib.sh"
need_shared golden/llama
python3 -c "
import json
with open('$tmp/ids.jsonl', 'w') as f:
    for i in range(8): f.write(json.dumps({'input_ids': [(i * 31 + t * 7) % 256 for t in range(16)]}) + '\n')"
args=(train --model "$shared/golden/llama" --data "$tmp/ids.jsonl" --data-format tokens --method lora --max-steps 1
      --batch-size 8 --lr 1e-3 --schedule constant --threads 1)
"$CLI" "${args[@]}" --out "$tmp/plain" >"$tmp/plain.log" 2>&1; rc=$?
check "plain LoRA trains (got $rc)" '[ $rc -eq 0 ]'
"$CLI" "${args[@]}" --loraplus-lr-ratio 16 --out "$tmp/plus" >"$tmp/plus.log" 2>&1; rc=$?
check "LoRA+ trains (got $rc: $(tail -c 300 "$tmp/plus.log"))" '[ $rc -eq 0 ]'
out=$(python3 - "$tmp/plain/adapter_model.safetensors" "$tmp/plus/adapter_model.safetensors" <<'PY' 2>&1
import json, struct, sys
def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); t = {}
    for k, v in h.items():
        if k == "__metadata__": continue
        s, e = v["data_offsets"]; t[k] = struct.unpack("<%df" % ((e - s) // 4), b[8 + n + s:8 + n + e])
    return t, h.get("__metadata__", {})
(p, pm), (q, qm) = load(sys.argv[1]), load(sys.argv[2])
ok = True
nb = 0
for k in p:
    if "lora_A" in k:
        ok &= p[k] == q[k]
    else:
        for x, y in zip(p[k], q[k]):
            if x != 0:
                nb += 1
                ok &= abs(y / x - 16) <= 16 * 1e-5
print("ok" if ok and nb > 0 else "bad", nb, qm.get("balora_loraplus_lr_ratio"), pm.get("balora_loraplus_lr_ratio"))
PY
)
check "B moved 16x as far, A equal ($out)" '[ "$(echo "$out" | cut -d" " -f1)" = ok ]'
check "metadata balora_loraplus_lr_ratio = 16, absent without LoRA+ ($out)" '[ "$(echo "$out" | cut -d" " -f3-)" = "16 None" ]'
"$CLI" train --model "$shared/golden/llama" --data "$tmp/ids.jsonl" --data-format tokens --method full --loraplus-lr-ratio 16 \
  --max-steps 1 --out "$tmp/full" >"$tmp/full.log" 2>&1; rc=$?
check "--method full with --loraplus-lr-ratio exits 2 naming it (got $rc)" '[ $rc -eq 2 ] && grep -q -- "--loraplus-lr-ratio" "$tmp/full.log"'
"$CLI" "${args[@]}" --loraplus-lr-ratio -2 --out "$tmp/neg" >"$tmp/neg.log" 2>&1; rc=$?
check "a negative ratio exits 2 (got $rc)" '[ $rc -eq 2 ]'
finish
