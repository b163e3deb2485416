#!/usr/bin/env bash
# balora eval: scoring completions (GSM8K, HumanEval, MBPP) and GLUE predictions from the command
# line, the JSON report, the --model hook's clear failure, and usage errors.
set -u
CLI=${BALORA_CLI:-./build/balora}
SRC=${BALORA_SOURCE_DIR:-.}
SHARED=${BALORA_SHARED:-$SRC/../shared}
[ -d "$SHARED/data" ] || { echo "SKIP: ../shared (or \$BALORA_SHARED) not found"; exit 77; }
PY=${BALORA_PYTHON:-/usr/bin/python3}
[ -x "$PY" ] || PY=$(command -v python3) || { echo "SKIP: python3 needed"; exit 77; }
T=$(mktemp -d /tmp/balora-cli-eval-XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
check() { if eval "$2"; then :; else echo "FAILED: $1"; fails=$((fails + 1)); fi; }
D=$SHARED/data

# GSM8K: the references' own answers -> 100%; wrong answers -> 0%.
"$PY" - "$D/gsm8k/test.jsonl" "$T" <<'PYEOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
with open(sys.argv[2] + "/right.jsonl", "w") as f, open(sys.argv[2] + "/wrong.jsonl", "w") as g:
    for i, r in enumerate(rows):
        ref = r["answer"].split("####")[-1].strip()
        f.write(json.dumps({"index": i, "completion": "Reasoning...\nThe answer is: " + ref}) + "\n")
        g.write(json.dumps({"index": i, "completion": "The answer is: " + str(int(ref.replace(",", "")) + 7)}) + "\n")
PYEOF
"$CLI" eval --bench gsm8k --data "$D/gsm8k/test.jsonl" --completions "$T/right.jsonl" --out "$T/r.json" > "$T/out.txt"
check "gsm8k references exit 0" "[ $? -eq 0 ]"
check "gsm8k table" "grep -q '100.00%' '$T/out.txt'"
check "gsm8k report accuracy 1" "'$PY' -c \"import json,sys; r=json.load(open('$T/r.json')); sys.exit(0 if r['accuracy']==1 and r['n_problems']==1319 and len(r['problems'])==1319 else 1)\""
"$CLI" eval --bench gsm8k --data "$D/gsm8k/test.jsonl" --completions "$T/wrong.jsonl" --limit 100 --out "$T/w.json" > /dev/null
check "gsm8k wrong answers accuracy 0 over 100" "'$PY' -c \"import json,sys; r=json.load(open('$T/w.json')); sys.exit(0 if r['accuracy']==0 and r['n_problems']==100 else 1)\""

# HumanEval and MBPP: reference solutions pass in the sandbox (first 6 problems each).
"$PY" - "$D" "$T" <<'PYEOF'
import gzip, json, sys
d, t = sys.argv[1], sys.argv[2]
with open(t + "/he.jsonl", "w") as f:
    for l in list(gzip.open(d + "/humaneval/HumanEval.jsonl.gz", "rt"))[:6]:
        r = json.loads(l)
        f.write(json.dumps({"task_id": r["task_id"], "completion": r["canonical_solution"]}) + "\n")
        f.write(json.dumps({"task_id": r["task_id"], "completion": "    return None\n"}) + "\n")
with open(t + "/mbpp.jsonl", "w") as f:
    for l in list(open(d + "/mbpp/mbpp.jsonl"))[:6]:
        r = json.loads(l)
        f.write(json.dumps({"task_id": r["task_id"], "completion": r["code"]}) + "\n")
PYEOF
"$CLI" eval --bench humaneval --data "$D/humaneval/HumanEval.jsonl.gz" --completions "$T/he.jsonl" --limit 6 --k 1,2 --out "$T/he.json" > "$T/out.txt"
check "humaneval exit 0" "[ $? -eq 0 ]"
check "humaneval pass@1 0.5, pass@2 1 (one right, one wrong sample each)" "'$PY' -c \"import json,sys; r=json.load(open('$T/he.json')); sys.exit(0 if r['pass@1']==0.5 and r['pass@2']==1 and r['problems'][0]['n_samples']==2 and 'failure' in r['problems'][0] else 1)\""
"$CLI" eval --bench mbpp --data "$D/mbpp/mbpp.jsonl" --completions "$T/mbpp.jsonl" --limit 6 --out "$T/mbpp.json" > /dev/null
check "mbpp references pass@1 1" "'$PY' -c \"import json,sys; r=json.load(open('$T/mbpp.json')); sys.exit(0 if r['pass@1']==1 and r['n_problems']==6 else 1)\""

# The sandbox sees nothing of the host (issue 17's attack): completions that raise the content of a
# world-readable file made here, and a listing of /. With a minimal root report.json holds neither
# the content nor a host directory; without one it must say plainly that host files are readable.
SF=/tmp/balora-cli-secret-$$.txt
od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$SF"
chmod 644 "$SF"
"$PY" - "$T" "$SF" <<'PYEOF'
import json, sys
with open(sys.argv[1] + "/leak.jsonl", "w") as f:
    f.write(json.dumps({"index": 0, "completion": "    raise RuntimeError(open(%r).read())\n" % sys.argv[2]}) + "\n")
    f.write(json.dumps({"index": 1, "completion": "    import os\n    raise RuntimeError('ROOT ' + ' '.join(sorted(os.listdir('/'))))\n"}) + "\n")
PYEOF
"$CLI" eval --bench humaneval --data "$D/humaneval/HumanEval.jsonl.gz" --completions "$T/leak.jsonl" --limit 2 --out "$T/leak.json" > /dev/null 2>&1
check "a host file read by a completion stays out of report.json" "'$PY' - '$T/leak.json' '$SF' <<'PYEOF'
import json, sys
text = open(sys.argv[1]).read(); r = json.loads(text); secret = open(sys.argv[2]).read()
f0, f1 = r['problems'][0]['failure'], r['problems'][1]['failure']
if 'minimal read-only root' in r['sandbox_isolation']:
    names = set(f1.split('RuntimeError: ROOT ')[-1].split())
    ok = secret not in text and 'FileNotFoundError' in f0 and names and names <= {'dev', 'lib', 'lib64', 'proc', 'tmp', 'usr', 'bin', 'root'} and 'home' not in names
else:
    ok = secret in f0 and 'read every file' in r['sandbox_missing'] and r['sandbox_fallback_reason']
sys.exit(0 if ok else 1)
PYEOF"
rm -f "$SF"

# GLUE predictions: the gold labels score 1; inverted SST-2 labels score 0 with MCC -1.
tail -n +2 "$D/glue/SST-2/dev.tsv" | cut -f2 > "$T/sst2.txt"
awk '{print 1 - $1}' "$T/sst2.txt" > "$T/sst2_inv.txt"
"$CLI" eval --task seq-cls --glue-task sst2 --data "$D/glue/SST-2/dev.tsv" --predictions "$T/sst2.txt" --out "$T/sst.json" > /dev/null
check "sst2 gold accuracy 1" "'$PY' -c \"import json,sys; r=json.load(open('$T/sst.json')); sys.exit(0 if r['accuracy']==1 and r['n']==872 else 1)\""
"$CLI" eval --task seq-cls --glue-task sst2 --data "$D/glue/SST-2/dev.tsv" --predictions "$T/sst2_inv.txt" --out "$T/sst.json" > /dev/null
check "sst2 inverted accuracy 0, mcc -1" "'$PY' -c \"import json,sys; r=json.load(open('$T/sst.json')); sys.exit(0 if r['accuracy']==0 and abs(r['mcc']+1)<1e-12 else 1)\""
"$CLI" eval --task seq-cls --glue-task sst2 --data "$D/glue/SST-2/dev.tsv" --predictions "$T/sst2_inv.txt" --metrics accuracy,mcc --out "$T/sst.json" > /dev/null
check "--metrics accuracy,mcc: score -0.5" "'$PY' -c \"import json,sys; r=json.load(open('$T/sst.json')); sys.exit(0 if abs(r['score']+0.5)<1e-12 and r['task_metrics']==['accuracy','mcc'] else 1)\""
tail -n +2 "$D/glue/STS-B/dev.tsv" | cut -f10 > "$T/stsb.txt"
# --label-col counts from 0 as in train (--label-column: its alias)
printf 'x\tgood\t1\ny\tbad\t0\nz\tok\t1\n' > "$T/gen.tsv"
printf '1\n0\n1\n' > "$T/gen_pred.txt"
"$CLI" eval --task seq-cls --data "$T/gen.tsv" --label-col 2 --predictions "$T/gen_pred.txt" --out "$T/gen.json" > /dev/null
check "eval --label-col 2 is the third column" "[ $? -eq 0 ] && '$PY' -c \"import json,sys; r=json.load(open('$T/gen.json')); sys.exit(0 if r['accuracy']==1 and r['n']==3 else 1)\""
"$CLI" eval --task seq-cls --data "$T/gen.tsv" --label-column 2 --predictions "$T/gen_pred.txt" > /dev/null
check "eval --label-column stays an alias" "[ $? -eq 0 ]"
"$CLI" eval --task seq-cls --data "$T/gen.tsv" --label-col 3 --predictions "$T/gen_pred.txt" > /dev/null 2> "$T/err.txt"
check "eval --label-col 3 is past the last column (0-based)" "[ $? -ne 0 ] && grep -q '0-based' '$T/err.txt'"
"$CLI" eval --task seq-cls --glue-task stsb --data "$D/glue/STS-B/dev.tsv" --predictions "$T/stsb.txt" --out "$T/sts.json" > /dev/null
check "stsb gold pearson 1" "'$PY' -c \"import json,sys; r=json.load(open('$T/sts.json')); sys.exit(0 if abs(r['pearson']-1)<1e-12 and abs(r['spearman']-1)<1e-12 else 1)\""
printf 'index\tprediction\n' > "$T/qnli.tsv"; tail -n +2 "$D/glue/QNLI/dev.tsv" | cut -f1,4 >> "$T/qnli.tsv"
"$CLI" eval --task seq-cls --glue-task qnli --data "$D/glue/QNLI/dev.tsv" --predictions "$T/qnli.tsv" > "$T/out.txt"
check "qnli submission-format predictions (label words)" "[ $? -eq 0 ] && grep -Eq '^ +qnli +5463 +1.0000' '$T/out.txt'"

# Out of domain (GLUE-X style): SST-2 dev beside Adversarial GLUE's sst2, every 4th prediction flipped.
"$PY" - "$D/advglue/dev_ann.json" "$T/adv.txt" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))["sst2"]
open(sys.argv[2], "w").write("".join("%d\n" % (r["label"] if i % 4 else 1 - r["label"]) for i, r in enumerate(rows)))
PYEOF
"$CLI" eval --task seq-cls --glue-task sst2 --data "$D/glue/SST-2/dev.tsv" --predictions "$T/sst2.txt" \
  --ood-data "$D/advglue/dev_ann.json" --ood-predictions "$T/adv.txt" --out "$T/ood.json" > "$T/out.txt"
check "ood report side by side" "[ $? -eq 0 ] && grep -q '^out-of-domain' '$T/out.txt' && '$PY' -c \"import json,sys; r=json.load(open('$T/ood.json')); o=r['out_of_domain']; sys.exit(0 if r['accuracy']==1 and o['n']==148 and o['accuracy']==0.75 else 1)\""

# The GLUE average of two task reports: SST-2 inverted (score 0) and STS-B gold (score 1) -> 0.5.
"$CLI" eval --task seq-cls --glue-task sst2 --data "$D/glue/SST-2/dev.tsv" --predictions "$T/sst2_inv.txt" --out "$T/sst_inv.json" > /dev/null
"$CLI" eval --glue-average "$T/sst_inv.json,$T/sts.json" --out "$T/glue.json" > "$T/out.txt"
check "glue average" "[ $? -eq 0 ] && grep -Eq '^GLUE +0.5000' '$T/out.txt' && '$PY' -c \"import json,sys; r=json.load(open('$T/glue.json')); sys.exit(0 if r['glue_average']==0.5 and r['task_scores']['stsb']==1 else 1)\""

# Prompts for generating elsewhere: MBPP's prompt carries the task text and its tests.
"$CLI" eval --bench mbpp --data "$D/mbpp/mbpp.jsonl" --prompts-out "$T/prompts.jsonl" --limit 3 > /dev/null
check "prompts-out" "[ \$(wc -l < '$T/prompts.jsonl') -eq 3 ] && '$PY' -c \"import json,sys; r=[json.loads(l) for l in open('$T/prompts.jsonl')]; p=r[0]['prompt']; sys.exit(0 if r[0]['task_id']=='1' and p.startswith('You are an expert Python programmer, and here is your task: Write a function to find the minimum cost path') and 'Your code should pass these tests:' in p and 'assert min_cost(' in p else 1)\""

# MT-Bench: judge prompts out for answers, judgments in, averaged.
printf '%s\n' '{"question_id": 81, "category": "writing", "turns": ["Write a haiku.", "Another one."]}' \
  '{"question_id": 111, "category": "math", "turns": ["2+3?", "times 4?"], "reference": ["5", "20"]}' > "$T/q.jsonl"
printf '%s\n' '{"question_id": 81, "turns": ["Rain falls", "Snow falls"]}' '{"question_id": 111, "turns": ["5", "21"]}' > "$T/a.jsonl"
"$CLI" eval --bench mtbench --data "$T/q.jsonl" --completions "$T/a.jsonl" --judge-prompts-out "$T/jp.jsonl" > /dev/null
check "mtbench judge prompts" "[ $? -eq 0 ] && [ \$(wc -l < '$T/jp.jsonl') -eq 4 ] && grep -q 'rating' '$T/jp.jsonl'"
printf '%s\n' '{"question_id": 81, "turn": 1, "judgment": "Rating: [[8]]"}' '{"question_id": 81, "turn": 2, "judgment": "[[6]]"}' \
  '{"question_id": 111, "turn": 1, "judgment": "[[10]]"}' '{"question_id": 111, "turn": 2, "judgment": "no score"}' > "$T/j.jsonl"
"$CLI" eval --bench mtbench --data "$T/q.jsonl" --judgments "$T/j.jsonl" --out "$T/mt.json" > "$T/out.txt"
check "mtbench judgments averaged" "[ $? -eq 0 ] && '$PY' -c \"import json,sys; r=json.load(open('$T/mt.json')); sys.exit(0 if r['score']==8 and r['turn_1']==9 and r['turn_2']==6 and r['n_unscored']==1 else 1)\""
"$CLI" eval --bench mtbench --data "$T/q.jsonl" --completions "$T/a.jsonl" --judge /nonexistent --out "$T/jj.jsonl" 2> "$T/err.txt"
check "mtbench --judge: names the missing judge (judging with a model: cli_generate.sh)" "[ $? -eq 1 ] && grep -q '/nonexistent' '$T/err.txt'"

"$CLI" eval --bench gsm8k --data "$D/gsm8k/test.jsonl" --prompts-out "$T/prompts.jsonl" --limit 2 --template alpaca > /dev/null
check "prompts-out alpaca" "'$PY' -c \"import json,sys; r=[json.loads(l) for l in open('$T/prompts.jsonl')]; p=r[1]['prompt']; sys.exit(0 if len(r)==2 and p.startswith('Below is an instruction') and 'A robe takes 2 bolts' in p and p.endswith('### Response:') else 1)\""

# A missing model fails clearly (the model-backed paths are tested in cli_generate.sh); usage errors exit 2; bad files exit 1 naming the line.
"$CLI" eval --bench gsm8k --data "$D/gsm8k/test.jsonl" --model /nonexistent 2> "$T/err.txt"
check "--model: exit 1, names the missing model" "[ $? -eq 1 ] && grep -q '/nonexistent' '$T/err.txt'"
"$CLI" eval --bench ppl --model /nonexistent --data x 2> "$T/err.txt"
check "--bench ppl: names the missing model" "[ $? -eq 1 ] && grep -q '/nonexistent' '$T/err.txt'"
"$CLI" eval --bench gsm8k --completions "$T/right.jsonl" 2> /dev/null
check "missing --data: exit 2" "[ $? -eq 2 ]"
"$CLI" eval --bench nope --data x --completions y 2> /dev/null
check "unknown bench: exit 2" "[ $? -eq 2 ]"
"$CLI" eval --bench humaneval --data x --completions y --k 1,zero 2> /dev/null
check "bad --k: exit 2" "[ $? -eq 2 ]"
echo '{"index": 99999, "completion": "x"}' > "$T/bad.jsonl"
"$CLI" eval --bench gsm8k --data "$D/gsm8k/test.jsonl" --completions "$T/bad.jsonl" 2> "$T/err.txt"
check "bad completions: exit 1 with the line" "[ $? -eq 1 ] && grep -q 'line 1' '$T/err.txt'"
head -5 "$T/sst2.txt" > "$T/short.txt"
"$CLI" eval --task seq-cls --glue-task sst2 --data "$D/glue/SST-2/dev.tsv" --predictions "$T/short.txt" 2> "$T/err.txt"
check "too few predictions: exit 1" "[ $? -eq 1 ] && grep -q 'has 5 predictions' '$T/err.txt'"

[ $fails -eq 0 ] && echo "cli_eval: all checks passed" || echo "cli_eval: $fails check(s) failed"
[ $fails -eq 0 ]
