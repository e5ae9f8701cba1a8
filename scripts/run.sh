#!/usr/bin/env bash
# The README's main-job command: install what is missing, build (Release),
# then `deepfm train` (which makes default data under ./data if there is
# none, trains DeepFM with 1 shard + 1 worker, and evaluates). Arguments are
# passed to `deepfm train`, e.g. ./scripts/run.sh --ps_num=2 --worker_num=2.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install_deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs" --target deepfm
exec ./build/launcher/deepfm train "$@"
