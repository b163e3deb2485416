#!/usr/bin/env bash
# Per-step cost of BA-LoRA's NLG terms (value + gradient) on [B, T, V] logits.
#   bash bench/svd_reg.sh [B=4] [T=128] [V=32000] [k=3] [threads=2]
# Needs a release build in build/ (cmake -S . -B build && cmake --build build -j2).
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-4}; T=${2:-128}; V=${3:-32000}; K=${4:-3}; THREADS=${5:-2}
[ -f build/libbalora.a ] || { echo "build/libbalora.a missing: cmake -S . -B build && cmake --build build -j2" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cc -std=c17 -O2 -march=x86-64-v3 -fopenmp -D_GNU_SOURCE -Iinclude -Isrc bench/svd_reg_bench.c build/libbalora.a \
   $(pkg-config --libs openblas) -llapacke -lm -o "$OUT/svd_reg_bench"
echo "# B=$B T=$T V=$V k=$K threads=$THREADS ($(nproc) cores, $(date -u +%FT%TZ))"
OMP_NUM_THREADS=$THREADS "$OUT/svd_reg_bench" "$B" "$T" "$V" "$K" "$THREADS"
