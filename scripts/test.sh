#!/usr/bin/env bash
# The README's test command: install what is missing, build (Release), run
# every test through ctest. Extra arguments go to ctest (e.g. -R ps_).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" "$@"
