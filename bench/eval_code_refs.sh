#!/usr/bin/env bash
# Scores the reference solutions of ALL HumanEval (164) and MBPP (974) problems through
# `balora eval` and its Python sandbox, and the GSM8K test set's own answers: each should be
# 100% (MBPP task 123's reference needs about 15 s, hence --timeout 60). Prints the tables and
# the wall time. Not a test (it takes about a minute on 2 cores).
#   usage: bash bench/eval_code_refs.sh [path/to/balora] [jobs]
set -euo pipefail
cd "$(dirname "$0")/.."
CLI=${1:-./build/balora}
JOBS=${2:-2}
D=${BALORA_SHARED:-../shared}/data
PY=${BALORA_PYTHON:-/usr/bin/python3}
T=$(mktemp -d /tmp/balora-bench-eval-XXXXXX)
trap 'rm -rf "$T"' EXIT
"$PY" - "$D" "$T" <<'PYEOF'
import gzip, json, sys
d, t = sys.argv[1], sys.argv[2]
with open(t + "/humaneval.jsonl", "w") as f:
    for l in gzip.open(d + "/humaneval/HumanEval.jsonl.gz", "rt"):
        r = json.loads(l)
        f.write(json.dumps({"task_id": r["task_id"], "completion": r["canonical_solution"]}) + "\n")
with open(t + "/mbpp.jsonl", "w") as f:
    for l in open(d + "/mbpp/mbpp.jsonl"):
        r = json.loads(l)
        f.write(json.dumps({"task_id": r["task_id"], "completion": r["code"]}) + "\n")
with open(t + "/gsm8k.jsonl", "w") as f:
    for i, l in enumerate(open(d + "/gsm8k/test.jsonl")):
        f.write(json.dumps({"index": i, "completion": "The answer is: " + json.loads(l)["answer"].split("####")[-1].strip()}) + "\n")
PYEOF
for b in humaneval mbpp gsm8k; do
  case $b in humaneval) data=$D/humaneval/HumanEval.jsonl.gz;; mbpp) data=$D/mbpp/mbpp.jsonl;; gsm8k) data=$D/gsm8k/test.jsonl;; esac
  /usr/bin/time -f "$b: %e s wall" "$CLI" eval --bench $b --data "$data" --completions "$T/$b.jsonl" --jobs "$JOBS" --timeout 60 --out "$T/$b.json"
done
