#!/usr/bin/env bash
# libFuzzer campaign over every parser harness (fuzz/fuzz_NAME.c; docs/DEVELOPING.md, Fuzzing).
#
#   scripts/fuzz.sh [SECONDS_PER_HARNESS] [HARNESS...]   # default 60 s each, every harness
#   scripts/fuzz.sh smoke [HARNESS...]                   # CI: 3 s each on the committed corpus only
#
# Builds build-fuzz with clang (-DBALORA_FUZZ=ON: ASan + UBSan + float-cast-overflow, leaks on),
# then runs the harnesses one after the other on one core: -max_total_time, -timeout=10,
# -rss_limit_mb=2048, -detect_leaks=1. A campaign grows build-fuzz/corpus/NAME (seeded from the
# committed fuzz/corpus/NAME); the smoke reads the committed seeds and keeps nothing. Crashing
# inputs go to build-fuzz/artifacts/, each harness's log to build-fuzz/logs/NAME.log.
# Prints one line per harness (name, executions, exec/s, result) and exits 1 if any harness
# crashed, leaked, hung or ran out of memory. BALORA_FUZZ_JOBS sets the build's -j (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=60
SMOKE=0
if [ "${1:-}" = smoke ]; then SMOKE=1; SECONDS_EACH=3; shift
elif [[ "${1:-}" =~ ^[0-9]+$ ]]; then SECONDS_EACH=$1; shift
elif [ -n "${1:-}" ] && [ ! -f "fuzz/fuzz_$1.c" ]; then
  echo "usage: scripts/fuzz.sh [SECONDS_PER_HARNESS | smoke] [HARNESS...]" >&2; exit 2
fi
if [ $# -gt 0 ]; then HARNESSES="$*"
else HARNESSES=$(cd fuzz && ls fuzz_*.c | sed 's/^fuzz_//; s/\.c$//'); fi
for h in $HARNESSES; do
  [ -f "fuzz/fuzz_$h.c" ] || { echo "scripts/fuzz.sh: no harness fuzz/fuzz_$h.c" >&2; exit 2; }
done

CC=${BALORA_FUZZ_CC:-clang}
command -v "$CC" >/dev/null || { echo "scripts/fuzz.sh: $CC not found; hint: apt-get install clang libclang-rt-14-dev libomp-dev (scripts/deps.sh)" >&2; exit 2; }
B=build-fuzz
mkdir -p "$B"
cmake -S . -B "$B" -DCMAKE_C_COMPILER="$CC" -DBALORA_FUZZ=ON -DCMAKE_BUILD_TYPE=Debug \
  -DCMAKE_C_FLAGS_DEBUG="-O1 -g" >"$B/cmake.log" 2>&1 || { cat "$B/cmake.log" >&2; exit 1; }
targets=""
for h in $HARNESSES; do targets="$targets --target fuzz_$h"; done
# shellcheck disable=SC2086
cmake --build "$B" -j"${BALORA_FUZZ_JOBS:-2}" $targets >"$B/build.log" 2>&1 || { tail -40 "$B/build.log" >&2; exit 1; }

mkdir -p "$B/logs" "$B/artifacts"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/balora-fuzz.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
# the harnesses' temporary files: one folder per process under this one (fuzz/fuzz_util.h)
if [ -d /dev/shm ] && [ -w /dev/shm ]; then export BALORA_FUZZ_TMP=$(mktemp -d /dev/shm/balora-fuzz.XXXXXX)
else export BALORA_FUZZ_TMP="$TMP"; fi
trap 'rm -rf "$TMP" "$BALORA_FUZZ_TMP"' EXIT
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:allocator_may_return_null=1
export LSAN_OPTIONS="suppressions=$ROOT/scripts/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1

if [ "$SMOKE" = 1 ]; then echo "fuzz smoke: ${SECONDS_EACH} s per harness on fuzz/corpus"
else echo "fuzz campaign: ${SECONDS_EACH} s per harness, corpora in $B/corpus"; fi
printf '%-20s %14s %10s  %s\n' harness executions exec/s result
failed=0
total=0
for h in $HARNESSES; do
  seeds="fuzz/corpus/$h"
  mkdir -p "$seeds"
  if [ "$SMOKE" = 1 ]; then work="$TMP/corpus-$h"; else work="$B/corpus/$h"; fi
  mkdir -p "$work"
  log="$B/logs/$h.log"
  rc=0
  "$B/fuzz_$h" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -detect_leaks=1 \
    -print_final_stats=1 -artifact_prefix="$B/artifacts/$h-" "$work" "$seeds" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # no final stats after a crash: the last status line's count
  [ -n "$execs" ] || execs=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#')
  if [ "$rc" = 0 ]; then result=ok
  elif grep -q 'ERROR: LeakSanitizer' "$log"; then result=LEAK
  elif grep -q 'ERROR: libFuzzer: timeout' "$log"; then result=TIMEOUT
  elif grep -qE 'ERROR: libFuzzer: (out-of-memory|malloc)' "$log"; then result=OOM
  elif grep -q 'runtime error:' "$log"; then result=UBSAN
  elif grep -q 'ERROR: AddressSanitizer' "$log"; then result=ASAN
  else result="FAILED (exit $rc)"; fi
  [ "$rc" = 0 ] || { failed=1; result="$result: $log $(grep -o "$B/artifacts/[^ ]*" "$log" | tail -1)"; }
  printf '%-20s %14s %10s  %s\n' "$h" "${execs:-?}" "${rate:-?}" "$result"
  total=$((total + ${execs:-0}))
done
echo "total executions: $total"
exit $failed
