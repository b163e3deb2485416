# Sourced by shell tests (tests/cli_*.sh): the CLI under test, ../shared, check() counting passed
# checks, a temporary folder removed at exit, and finish (a test with no passed check fails).
set -u
CLI=${BALORA_CLI:-./build/balora}
shared=${BALORA_SHARED:-${BALORA_SOURCE_DIR:-.}/../shared}
fail=0; n_ok=0
check() { if ! eval "$2"; then echo "FAILED: $1"; fail=1; else n_ok=$((n_ok + 1)); fi; }
# Skips the test (before any check) when ../shared lacks $1.
need_shared() { if [ ! -e "$shared/$1" ]; then echo "SKIP: $shared/$1 not found (set BALORA_SHARED)"; exit 0; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
finish() { echo "$n_ok checks passed"; [ $n_ok -gt 0 ] || fail=1; exit $fail; }
# json_same_but_timings A B: the two JSON reports are equal but for timings ("seconds" in a key) and
# the start time (started_utc); an empty or missing report is never equal.
json_same_but_timings() {
  python3 - "$1" "$2" <<'PYEOF'
import json, sys
def strip(x):
    if isinstance(x, dict): return {k: strip(v) for k, v in x.items() if "seconds" not in k and k != "started_utc"}
    if isinstance(x, list): return [strip(v) for v in x]
    return x
try:
    a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
except (OSError, ValueError):
    sys.exit(1)
sys.exit(0 if a == b and a else 1)
PYEOF
}
# tiny_bert DIR TSV ROWS [SEED]: a copy of the golden BERT (../shared/golden/bert) with a vocabulary of
# its size written here, and an SST-2-shaped TSV of ROWS sentences whose label is the word good / bad.
tiny_bert() {
  mkdir -p "$1"
  cp "$shared/golden/bert/config.json" "$shared/golden/bert/model.safetensors" "$1/"
  python3 - "$1/vocab.txt" "$2" "$3" "${4:-3}" <<'PY'
import random, sys
words = ["the", "movie", "was", "a", "film", "story", "plot", "good", "bad", "very", "quite", "long", "funny", "dark"]
vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
vocab += ["w%d" % i for i in range(256 - len(vocab))]  # the golden BERT's vocabulary size
open(sys.argv[1], "w").write("\n".join(vocab) + "\n")
r = random.Random(int(sys.argv[4]))
rows = ["sentence\tlabel"]
for i in range(int(sys.argv[3])):
    y = r.randrange(2)
    s = [r.choice(words[:7] + words[9:]) for _ in range(r.randrange(3, 9))]
    s.insert(r.randrange(len(s) + 1), "good" if y else "bad")
    rows.append(" ".join(s) + "\t%d" % y)
open(sys.argv[2], "w").write("\n".join(rows) + "\n")
PY
}
