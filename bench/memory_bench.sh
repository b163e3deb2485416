#!/bin/bash
# Peak resident memory and step time: LoRA vs BA-LoRA (teacher = adapter off) vs PiSSA + BA-LoRA
# (teacher = W_res + s B0 A0), each in its own process, on a GPT-2-small-shaped random model.
# Usage: bash bench/memory_bench.sh [B=4] [T=128] [steps=3] [threads=0 (all)]
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f build/libbalora.a ] || { cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j2 --target balora >/dev/null; }
cc -std=c17 -O2 -march=x86-64-v3 -fopenmp -D_GNU_SOURCE -Iinclude -Isrc bench/memory_bench.c build/libbalora.a \
   $(pkg-config --libs libcjson libpcre2-8 libutf8proc cairo yaml-0.1 zlib openblas) -llapacke -lm -o build/bench_memory
B=${1:-4} T=${2:-128} S=${3:-3} TH=${4:-0}
declare -A peak step
for mode in lora balora pissa-balora; do
  line=$(./build/bench_memory "$mode" "$B" "$T" "$S" "$TH")
  echo "$line"
  peak[$mode]=$(sed 's/.*peak_rss_mib=\([0-9.]*\).*/\1/' <<<"$line")
  step[$mode]=$(sed 's/.*step_s=\([0-9.]*\).*/\1/' <<<"$line")
done
printf '\n%-14s %14s %12s %12s %10s\n' method peak_rss_MiB step_s mem_ratio time_ratio
for mode in lora balora pissa-balora; do
  printf '%-14s %14s %12s %12s %10s\n' "$mode" "${peak[$mode]}" "${step[$mode]}" \
    "$(awk -v a="${peak[$mode]}" -v b="${peak[lora]}" 'BEGIN{printf "%.3fx", a/b}')" \
    "$(awk -v a="${step[$mode]}" -v b="${step[lora]}" 'BEGIN{printf "%.3fx", a/b}')"
done
echo "goal: BA-LoRA peak memory <= 1.1x LoRA's (no second copy of the weights)"
