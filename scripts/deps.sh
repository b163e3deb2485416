#!/usr/bin/env bash
# Installs the Debian packages balora needs, where missing (Debian 12; run as root).
set -euo pipefail
PKGS="build-essential cmake pkg-config libopenblas-dev liblapacke-dev libcjson-dev libpcre2-dev
libutf8proc-dev libcairo2-dev libyaml-dev zlib1g-dev python3
clang libclang-rt-14-dev libomp-dev ${BALORA_EXTRA_PKGS:-}"
# clang, libclang-rt-14-dev (libclang_rt.fuzzer-x86_64.a, the ASan/UBSan runtimes) and libomp-dev
# (clang's OpenMP): the fuzz harnesses (scripts/fuzz.sh), whose smoke runs in CI.
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "balora: installing Debian packages:$missing" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
