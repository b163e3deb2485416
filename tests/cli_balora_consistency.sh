#!/bin/bash
# BA-LoRA end to end through the CLI on the golden tiny LLaMA: LoRA, PiSSA and BA-LoRA all lower the
# task loss on a learnable task, and the consistency term (L_CR, teacher = the original model) keeps
# the fine-tuned model's predictions measurably closer to the original model's than plain LoRA does,
# on held-out inputs (mean KL(base || fine-tuned) over every position, computed from `balora forward`).
set -u
CLI=${BALORA_CLI:-./build/balora}
SRC=${BALORA_SOURCE_DIR:-.}
SHARED=${BALORA_SHARED:-$SRC/../shared}
if [ ! -d "$SHARED/golden/llama" ]; then echo "SKIP: ../shared (golden data) is absent"; exit 77; fi
if ! command -v python3 >/dev/null; then echo "SKIP: python3 is needed to write batches and read logits"; exit 77; fi
M=$SHARED/golden/llama
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
fail=0

# A learnable task: each sequence counts up by a fixed step from a random start (next = prev + 5 mod 256).
# Training and held-out sequences start at disjoint offsets.
python3 - "$TMP" <<'EOF'
import json, random, struct, sys
tmp = sys.argv[1]
rnd = random.Random(7)
def seq(start, n=16): return [(start + 5 * t) % 256 for t in range(n)]
with open(f"{tmp}/train.jsonl", "w") as f:
    for i in range(64): f.write(json.dumps({"input_ids": seq(rnd.randrange(0, 128))}) + "\n")
held = [seq(rnd.randrange(128, 256)) for _ in range(4)]
ids = [x for s in held for x in s]
hdr = json.dumps({"input_ids": {"dtype": "I64", "shape": [4, 16], "data_offsets": [0, 8 * len(ids)]}}).encode()
hdr += b" " * (-len(hdr) % 8)
with open(f"{tmp}/heldout.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hdr)) + hdr + struct.pack(f"<{len(ids)}q", *ids))
EOF

common=(--model "$M" --data "$TMP/train.jsonl" --data-format tokens --targets q_proj,k_proj,v_proj,o_proj --rank 4 --alpha 8
        --lr 5e-3 --schedule constant --batch-size 8 --max-steps 80 --seed 3 --threads 1)
train() { # name, extra options...
  local name=$1; shift
  "$CLI" train "${common[@]}" --out "$TMP/$name" --log "$TMP/$name.jsonl" "$@" >"$TMP/$name.out" 2>&1 \
    || { echo "FAIL: train $name: $(tail -3 "$TMP/$name.out")"; fail=1; }
}
train lora --method lora
train pissa --method pissa
# BA-LoRA with only the consistency term, large enough to show; the same init as the LoRA run
train cr --method ba-lora --init default --lambda1 2 --lambda2 0 --lambda3 0

"$CLI" forward --model "$M" --batch "$TMP/heldout.safetensors" --out "$TMP/base.st" >/dev/null 2>&1 || { echo "FAIL: base forward"; fail=1; }
for n in lora cr; do
  "$CLI" forward --model "$M" --adapter "$TMP/$n" --batch "$TMP/heldout.safetensors" --out "$TMP/$n.st" >/dev/null 2>&1 \
    || { echo "FAIL: forward $n"; fail=1; }
done
[ $fail -eq 0 ] || exit 1

python3 - "$TMP" <<'EOF' || fail=1
import json, math, struct, sys
tmp = sys.argv[1]
def losses(name):
    rows = [json.loads(l) for l in open(f"{tmp}/{name}.jsonl")]
    key = "task_loss" if "task_loss" in rows[0] else "loss"
    v = [r[key] for r in rows]
    return sum(v[:5]) / 5, sum(v[-5:]) / 5
def logits(name):
    b = open(f"{tmp}/{name}.st", "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    h = json.loads(b[8:8 + n])["logits"]
    s, e = h["data_offsets"]
    B, T, V = h["shape"]
    x = struct.unpack(f"<{B * T * V}f", b[8 + n + s:8 + n + e])
    return [x[i * V:(i + 1) * V] for i in range(B * T)]
def kl(p_logits, q_logits):  # mean over positions of KL(softmax(p) || softmax(q))
    tot = 0.0
    for p, q in zip(p_logits, q_logits):
        mp, mq = max(p), max(q)
        zp = math.log(sum(math.exp(a - mp) for a in p)) + mp
        zq = math.log(sum(math.exp(a - mq) for a in q)) + mq
        tot += sum(math.exp(a - zp) * ((a - zp) - (c - zq)) for a, c in zip(p, q))
    return tot / len(p_logits)
ok = True
for name in ("lora", "pissa", "cr"):
    first, last = losses(name)
    print(f"{name}: task loss {first:.4f} (first 5 steps) -> {last:.4f} (last 5)")
    if not last < 0.8 * first:
        print(f"FAIL: {name} did not lower the task loss"); ok = False
base = logits("base")
kl_lora, kl_cr = kl(base, logits("lora")), kl(base, logits("cr"))
print(f"held-out KL(base || fine-tuned): lora {kl_lora:.4f}, ba-lora (L_CR only) {kl_cr:.4f}")
if not kl_cr < 0.8 * kl_lora:
    print("FAIL: the consistency term did not keep predictions closer to the original model"); ok = False
sys.exit(0 if ok else 1)
EOF
[ $fail -eq 0 ] && echo "1 passed, 0 failed" || echo "0 passed, 1 failed"
exit $fail
