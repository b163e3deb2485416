#!/usr/bin/env bash
# The main job: builds balora (installing what it needs) and runs `balora demo` offline.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec ./build/balora demo "$@"
