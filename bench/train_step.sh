#!/bin/bash
# Builds and runs bench/train_step.c against build/libbalora.a (release build), then the PyTorch
# comparison. Usage: bash bench/train_step.sh [steps=3] [threads=0 (all)]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/libbalora.a ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target balora >/dev/null; }
cc -std=c17 -O2 -march=x86-64-v3 -fopenmp -D_GNU_SOURCE -Iinclude -Isrc bench/train_step.c build/libbalora.a \
   $(pkg-config --libs libcjson libpcre2-8 libutf8proc cairo yaml-0.1 zlib openblas) -llapacke -lm -o build/bench_train_step
BALORA_SOURCE_DIR=$PWD ./build/bench_train_step "${1:-3}" "${2:-0}"
