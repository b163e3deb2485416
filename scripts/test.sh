#!/usr/bin/env bash
# The test suite: installs what it needs, builds balora twice (release, and
# AddressSanitizer + UndefinedBehaviorSanitizer) and runs every test in both builds.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
JOBS=$(nproc)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"
(cd build && ctest --output-on-failure -j"$JOBS")
if [ "${BALORA_SKIP_SANITIZE:-0}" != 1 ]; then
  cmake -S . -B build-san -DCMAKE_BUILD_TYPE=Debug -DBALORA_SANITIZE=ON -DCMAKE_C_FLAGS_DEBUG="-O1 -g" >/dev/null
  cmake --build build-san -j"$JOBS"
  # detect_leaks=0: OpenBLAS keeps its thread pool for the life of the process.
  (cd build-san && ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     BALORA_SANITIZE=1 ctest --output-on-failure -j"$JOBS")
fi
