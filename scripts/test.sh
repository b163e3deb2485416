#!/usr/bin/env bash
# The test suite: installs what it needs, builds balora twice (release, and
# AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer) and runs every test in both builds.
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
  # LeakSanitizer on: scripts/lsan.supp names only third-party process-lifetime pools (OpenBLAS,
  # fontconfig). The options reach every test and every CLI run a shell test starts (inherited).
  SUPP="$PWD/scripts/lsan.supp"
  (cd build-san && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
     LSAN_OPTIONS="suppressions=$SUPP:print_suppressions=0" \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     BALORA_SANITIZE=1 ctest --output-on-failure -j"$JOBS")
fi
