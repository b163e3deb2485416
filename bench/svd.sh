#!/usr/bin/env bash
# PiSSA SVD benchmark: balora (exact sgesdd, randomized niter K) beside PyTorch
# (torch.linalg.svd, torch.svd_lowrank) on one N x N layer, in one run, same thread count.
#   bash bench/svd.sh [N=4096] [niter=4] [ranks=16,128] [threads=2]
# Needs a release build in build/ (cmake -S . -B build && cmake --build build -j2)
# and Debian's python3-torch (/usr/bin/python3).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-4096}; NITER=${2:-4}; RANKS=${3:-16,128}; THREADS=${4:-2}
[ -f build/libbalora.a ] || { echo "build/libbalora.a missing: cmake -S . -B build && cmake --build build -j2" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cc -std=c17 -O2 -march=x86-64-v3 -fopenmp -D_GNU_SOURCE -Iinclude -Isrc bench/svd_bench.c build/libbalora.a \
   $(pkg-config --libs openblas) -llapacke -lm -o "$OUT/svd_bench"
PY=/usr/bin/python3
echo "# N=$N niter=$NITER ranks=$RANKS threads=$THREADS ($(nproc) cores, $(date -u +%FT%TZ))"
OMP_NUM_THREADS=$THREADS "$OUT/svd_bench" "$N" "$NITER" "$RANKS" "$THREADS" | tee "$OUT/balora.csv"
OMP_NUM_THREADS=$THREADS "$PY" bench/svd_torch.py "$N" "$NITER" "$RANKS" "$THREADS" | tee "$OUT/torch.csv"
"$PY" - "$OUT/balora.csv" "$OUT/torch.csv" <<'PY'
import sys
rows = {}
for path in sys.argv[1:]:
    for line in open(path):
        impl, method, r, sec, err = line.strip().split(",")
        rows.setdefault((int(r), method), {})[impl] = (float(sec), err)
print()
print(f"{'r':>5} {'method':>9} | {'balora s':>9} {'err':>9} | {'torch s':>9} {'err':>9} | {'torch/balora':>12}")
print("-" * 75)
for (r, method), v in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] != "exact")):
    b, t = v.get("balora", (float("nan"), "-")), v.get("torch", (float("nan"), "-"))
    tm = "torch.linalg.svd" if method == "exact" else "svd_lowrank"
    print(f"{r:>5} {method:>9} | {b[0]:>9.3f} {b[1]:>9} | {t[0]:>9.3f} {t[1]:>9} | {t[0] / b[0]:>12.2f}  ({tm})")
PY
