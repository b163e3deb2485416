#!/bin/bash
# balora generate and the model-backed eval paths (eval --bench gsm8k|humaneval --model, eval --bench ppl):
#   - stories260K: `generate --prompt-ids 1 --max-new-tokens 40` prints greedy_from_bos (read from
#     golden/stories260K/io.safetensors here with python3's struct/json, no numpy);
#   - --data with batch size 1 and 3 give the same JSON lines (greedy and sampled with a seed); a seed
#     repeats its samples; top-k 1 sampling equals greedy;
#   - a tiny random GPT-2 folder (written here) with the GPT-2 tokenizer: the streamed completion, --stop
#     cuts the text, JSONL fields, --template alpaca; eval gsm8k --limit 2 and humaneval --limit 1 give a
#     finite report of the right structure; eval --bench ppl prints a finite perplexity;
#   - usage errors exit 2 with a message, bad inputs exit 1 with a message.
set -u
CLI=${BALORA_CLI:-./build/balora}
SRC=${BALORA_SOURCE_DIR:-.}
SHARED=${BALORA_SHARED:-$SRC/../shared}
if [ ! -d "$SHARED/golden" ]; then echo "skip: ../shared is absent"; exit 77; fi
PY=$(command -v python3 || true)
if [ -z "$PY" ]; then echo "skip: python3 is absent"; exit 77; fi
TMP=$(mktemp -d); trap 'rm -rf "$TMP"' EXIT
fail=0
ok() { echo "ok: $*"; }
bad() { echo "FAIL: $*"; fail=1; }
expect() {
  local want_rc=$1 pat=$2; shift 2
  "$@" >"$TMP/out" 2>"$TMP/err"; local rc=$?
  if [ $rc -ne "$want_rc" ] || { [ -n "$pat" ] && ! grep -q -- "$pat" "$TMP/err" "$TMP/out"; }; then
    bad "$* -> rc $rc (want $want_rc), stderr: $(head -c 400 "$TMP/err")"
  else ok "rc $rc '$pat'"; fi
}
S260=$SHARED/models/stories260K/stories260K.bin

# ---- stories260K greedy from BOS
want=$("$PY" - "$SHARED/golden/stories260K/io.safetensors" <<'PYEOF'
import json, struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", b[:8])[0]
h = json.loads(b[8:8 + n])
t = h["greedy_from_bos"]
assert t["dtype"] == "I64"
s, e = t["data_offsets"]
ids = struct.unpack("<%dq" % ((e - s) // 8), b[8 + n + s:8 + n + e])
print(" ".join(str(i) for i in ids[1:]))
PYEOF
)
got=$("$CLI" generate --model "$S260" --prompt-ids 1 --max-new-tokens 40 2>"$TMP/err" | tr -s ' ' | sed 's/^ //')
[ "$got" = "$want" ] && ok "stories260K greedy from BOS = greedy_from_bos" || bad "stories260K greedy: got '$got' want '$want'"
grep -q "40 new tokens" "$TMP/err" && ok "token count on stderr" || bad "no token count: $(cat "$TMP/err")"

# ---- batches give what one-by-one gives
printf '{"prompt": [1]}\n{"prompt": [1, 306, 463]}\n\n{"prompt": [1, 401, 13, 431, 293, 430]}\n{"prompt": [1, 22]}\n' > "$TMP/ids.jsonl"
for args in "" "--temperature 0.9 --top-p 0.9 --seed 7" "--temperature 1.2 --top-k 30 --seed 8"; do
  "$CLI" generate --model "$S260" --data "$TMP/ids.jsonl" --max-new-tokens 25 --batch-size 1 $args --out "$TMP/b1.jsonl" 2>/dev/null
  "$CLI" generate --model "$S260" --data "$TMP/ids.jsonl" --max-new-tokens 25 --batch-size 3 $args 2>/dev/null > "$TMP/b3.jsonl"
  strip() { "$PY" -c 'import json,sys
for l in open(sys.argv[1]):
    d = json.loads(l); d.pop("seconds"); print(json.dumps(d, sort_keys=True))' "$1"; }
  if [ "$(wc -l < "$TMP/b1.jsonl")" = 4 ] && [ "$(strip "$TMP/b1.jsonl")" = "$(strip "$TMP/b3.jsonl")" ]; then ok "batch 3 = batch 1 ($args)"
  else bad "batch 3 differs from batch 1 ($args)"; fi
  cp "$TMP/b1.jsonl" "$TMP/last.jsonl"
done
"$CLI" generate --model "$S260" --data "$TMP/ids.jsonl" --max-new-tokens 25 --temperature 1.2 --top-k 30 --seed 8 --out "$TMP/again.jsonl" 2>/dev/null
[ "$(strip "$TMP/again.jsonl")" = "$(strip "$TMP/last.jsonl")" ] && ok "a seed repeats" || bad "same seed, other samples"
"$CLI" generate --model "$S260" --data "$TMP/ids.jsonl" --max-new-tokens 25 --temperature 1.2 --top-k 30 --seed 9 --out "$TMP/other.jsonl" 2>/dev/null
[ "$(strip "$TMP/other.jsonl")" != "$(strip "$TMP/last.jsonl")" ] && ok "another seed differs" || bad "another seed gave the same samples"
"$CLI" generate --model "$S260" --data "$TMP/ids.jsonl" --max-new-tokens 25 --out "$TMP/greedy.jsonl" 2>/dev/null
"$CLI" generate --model "$S260" --data "$TMP/ids.jsonl" --max-new-tokens 25 --temperature 3 --top-k 1 --seed 4 --out "$TMP/k1.jsonl" 2>/dev/null
[ "$(strip "$TMP/k1.jsonl")" = "$(strip "$TMP/greedy.jsonl")" ] && ok "top-k 1 = greedy" || bad "top-k 1 differs from greedy"
"$PY" -c 'import json,sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert [r["index"] for r in rows] == [0, 1, 2, 3]
for r in rows:
    assert set(r) == {"index", "prompt_ids", "completion", "completion_ids", "prompt_tokens", "completion_tokens", "finish_reason", "seconds"}, r
    assert r["completion"] is None and r["completion_tokens"] == len(r["completion_ids"]) == 25 and r["finish_reason"] == "length"
    assert r["prompt_tokens"] == len(r["prompt_ids"]) and r["seconds"] >= 0' "$TMP/greedy.jsonl" && ok "JSONL fields (ids)" || bad "JSONL fields (ids)"

# ---- a tiny random GPT-2 with the GPT-2 tokenizer
mkdir -p "$TMP/tiny"
"$PY" - "$TMP/tiny" <<'PYEOF'
import array, json, random, struct, sys
out = sys.argv[1]
V, C, L, P = 50257, 8, 1, 512
rnd = random.Random(5)
T = {}
def t(name, shape, kind="rand"):
    n = 1
    for s in shape: n *= s
    T[name] = (shape, array.array("f", [1.0] * n) if kind == "one" else array.array("f", bytes(4 * n)) if kind == "zero"
               else array.array("f", [rnd.gauss(0, 0.5) for _ in range(n)]))
t("transformer.wte.weight", [V, C]); t("transformer.wpe.weight", [P, C])
h = "transformer.h.0."
for n, s, k in [("ln_1.weight", [C], "one"), ("ln_1.bias", [C], "zero"), ("attn.c_attn.weight", [C, 3 * C], "r"),
                ("attn.c_attn.bias", [3 * C], "zero"), ("attn.c_proj.weight", [C, C], "r"), ("attn.c_proj.bias", [C], "zero"),
                ("ln_2.weight", [C], "one"), ("ln_2.bias", [C], "zero"), ("mlp.c_fc.weight", [C, 4 * C], "r"),
                ("mlp.c_fc.bias", [4 * C], "zero"), ("mlp.c_proj.weight", [4 * C, C], "r"), ("mlp.c_proj.bias", [C], "zero")]:
    t(h + n, s, k)
t("transformer.ln_f.weight", [C], "one"); t("transformer.ln_f.bias", [C], "zero")
hdr, off, blobs = {}, 0, []
for name in sorted(T):
    shape, a = T[name]; b = a.tobytes()
    hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + len(b)]}; off += len(b); blobs.append(b)
hb = json.dumps(hdr).encode(); hb += b" " * ((8 - len(hb) % 8) % 8)
with open(out + "/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(hb))); f.write(hb); [f.write(b) for b in blobs]
json.dump({"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V, "n_embd": C, "n_layer": L, "n_head": 2,
           "n_positions": P, "n_inner": None, "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5,
           "bos_token_id": 50256, "eos_token_id": 50256, "tie_word_embeddings": True}, open(out + "/config.json", "w"))
PYEOF
TOK=$SHARED/tokenizers/gpt2
TINY=$TMP/tiny
"$CLI" generate --model "$TINY" --tokenizer "$TOK" --prompt "Once upon a time" --max-new-tokens 30 --temperature 1 --seed 3 \
  --out "$TMP/one.jsonl" > "$TMP/stream.txt" 2>"$TMP/err" || bad "tiny generate failed: $(cat "$TMP/err")"
"$PY" -c 'import json,sys
r = json.loads(open(sys.argv[1]).readline())
s = open(sys.argv[2], encoding="utf-8").read()
assert s == r["completion"] + "\n", (s, r["completion"])
assert r["prompt"] == "Once upon a time" and r["prompt_tokens"] == 4 and r["completion_tokens"] == 30, r
print(r["completion"][10:13])' "$TMP/one.jsonl" "$TMP/stream.txt" > "$TMP/stop.txt" && ok "streamed text = completion" || bad "streamed text differs from the completion"
STOP=$(cat "$TMP/stop.txt")
"$CLI" generate --model "$TINY" --tokenizer "$TOK" --prompt "Once upon a time" --max-new-tokens 30 --temperature 1 --seed 3 \
  --stop "zzzqqq" --stop "$STOP" --out "$TMP/cut.jsonl" > "$TMP/stream2.txt" 2>"$TMP/err" || bad "generate --stop failed: $(cat "$TMP/err")"
"$PY" -c 'import json,sys
full = json.loads(open(sys.argv[1]).readline())["completion"]
r = json.loads(open(sys.argv[2]).readline())
stop = sys.argv[3]
assert r["finish_reason"] == "stop" and r["completion"] == full[:full.index(stop)], (r, full, stop)
assert open(sys.argv[4], encoding="utf-8").read() == r["completion"] + "\n"' "$TMP/one.jsonl" "$TMP/cut.jsonl" "$STOP" "$TMP/stream2.txt" \
  && ok "--stop cuts before the stop string ('$STOP')" || bad "--stop"
printf '{"question": "What is 1+1?"}\n{"question": "Name a colour."}\n' > "$TMP/q.jsonl"
"$CLI" generate --model "$TINY" --tokenizer "$TOK" --data "$TMP/q.jsonl" --prompt-field question --template alpaca --max-new-tokens 5 \
  --out "$TMP/q.out" 2>"$TMP/err" || bad "alpaca generate failed: $(cat "$TMP/err")"
"$PY" -c 'import json,sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert len(rows) == 2 and rows[0]["prompt"] == "What is 1+1?" and rows[0]["prompt_tokens"] > 30 and isinstance(rows[0]["completion"], str), rows' \
  "$TMP/q.out" && ok "alpaca template" || bad "alpaca template"

# ---- eval with a model
expect 0 "gsm8k" "$CLI" eval --bench gsm8k --model "$TINY" --tokenizer "$TOK" --data "$SHARED/data/gsm8k/test.jsonl" --limit 2 \
  --max-new-tokens 8 --out "$TMP/gsm.json"
"$PY" -c 'import json,math,sys
r = json.load(open(sys.argv[1]))
assert r["bench"] == "gsm8k" and r["n_problems"] == 2 and len(r["problems"]) == 2 and math.isfinite(r["accuracy"]), r
assert 0 <= r["accuracy"] <= 1 and all("answer" in p and "reference" in p for p in r["problems"])' "$TMP/gsm.json" \
  && ok "gsm8k report structure" || bad "gsm8k report"
expect 0 "humaneval" "$CLI" eval --bench humaneval --model "$TINY" --tokenizer "$TOK" --data "$SHARED/data/humaneval/HumanEval.jsonl.gz" \
  --limit 1 --max-new-tokens 6 --samples 2 --temperature 0.8 --k 1,2 --out "$TMP/he.json"
"$PY" -c 'import json,sys
r = json.load(open(sys.argv[1]))
assert r["n_problems"] == 1 and r["n_samples"] == 2 and r["pass@1"] is not None, r' "$TMP/he.json" && ok "humaneval report" || bad "humaneval report"
head -c 4000 "$SHARED/data/text/tinyshakespeare.txt" > "$TMP/t.txt"
expect 0 "perplexity" "$CLI" eval --bench ppl --model "$TINY" --tokenizer "$TOK" --data "$TMP/t.txt" --window 128 --stride 64
grep -Eq "perplexity [0-9]+\.[0-9]+ over [0-9]+ tokens" "$TMP/out" && ok "ppl line" || bad "ppl line: $(cat "$TMP/out")"

# ---- errors
expect 2 "--model" "$CLI" generate --prompt-ids 1
expect 2 "exactly one" "$CLI" generate --model "$S260" --prompt-ids 1 --prompt hi
expect 2 "alpaca or none" "$CLI" generate --model "$S260" --prompt-ids 1 --template foo
expect 2 "top-p" "$CLI" generate --model "$S260" --prompt-ids 1 --top-p 0
expect 2 "temperature" "$CLI" generate --model "$S260" --prompt-ids 1 --temperature -1
expect 2 "needs a value" "$CLI" generate --model "$S260" --prompt-ids 1 --stop
expect 1 "no tokenizer" "$CLI" generate --model "$S260" --prompt hello
expect 1 "no tokenizer" "$CLI" generate --model "$S260" --prompt-ids 1 --stop x
expect 1 "not a list" "$CLI" generate --model "$S260" --prompt-ids "1 x 3"
expect 1 "outside the model's vocabulary" "$CLI" generate --model "$S260" --prompt-ids "1 600"
printf '{"prompt": [1]}\n{"text": "x"}\n' > "$TMP/bad.jsonl"
expect 1 "bad.jsonl:2: missing field 'prompt'" "$CLI" generate --model "$S260" --data "$TMP/bad.jsonl"
printf '{"prompt": [1]}\nnot json\n' > "$TMP/bad2.jsonl"
expect 1 "bad2.jsonl:2: not a JSON object" "$CLI" generate --model "$S260" --data "$TMP/bad2.jsonl"
expect 1 "n_positions" "$CLI" generate --model "$SHARED/golden/gpt2" --prompt-ids "1 2 3" --max-new-tokens 100
expect 1 "does not have" "$CLI" generate --model "$SHARED/golden/llama" --adapter "$SHARED/golden/gpt2/lora" --prompt-ids 1
expect 1 "tokenizer" "$CLI" eval --bench gsm8k --model "$SHARED/golden/llama" --data "$SHARED/data/gsm8k/test.jsonl" --limit 1
expect 1 "temperature" "$CLI" eval --bench mbpp --model "$TINY" --tokenizer "$TOK" --data "$SHARED/data/mbpp/mbpp.jsonl" --limit 1 --samples 3
exit $fail
