#!/usr/bin/env bash
# Generation tokens/s with and without the key-value cache: stories260K and a GPT-2-small-shaped
# random model, greedy, batch 1 (cache and no cache) and a batch of B with the cache.
#   bash bench/gen_bench.sh [new_tokens=64] [prompt=16] [threads=2] [batch=8] [gpt2=1 (0: stories260K only)]
# Needs a release build in build/ (cmake -S . -B build && cmake --build build -j2) and ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
NEW=${1:-64}; P=${2:-16}; THREADS=${3:-2}; BATCH=${4:-8}; GPT2=${5:-1}
[ -f build/libbalora.a ] || { echo "build/libbalora.a missing: cmake -S . -B build && cmake --build build -j2" >&2; exit 1; }
SHARED=${BALORA_SHARED:-../shared}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
cc -std=c17 -O2 -march=x86-64-v3 -fopenmp -D_GNU_SOURCE -Iinclude -Isrc bench/gen_bench.c build/libbalora.a \
   $(pkg-config --libs libcjson libpcre2-8 libutf8proc cairo yaml-0.1 zlib openblas) -llapacke -lm -o "$OUT/gen_bench"
echo "# new_tokens=$NEW prompt=$P threads=$THREADS batch=$BATCH ($(nproc) cores, $(date -u +%FT%TZ))"
OMP_NUM_THREADS=$THREADS "$OUT/gen_bench" "$SHARED/models/stories260K/stories260K.bin" "$NEW" "$P" "$THREADS" "$BATCH" "$GPT2"
