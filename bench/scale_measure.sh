#!/usr/bin/env bash
# Measures what bench/scale_model.py needs, on this machine, in one run:
#   - a shard's per-key Pull and Push+apply rates and its per-request cost
#     over loopback gRPC (ps_bench --json_out, 10,000-key and 1-key requests);
#   - one DNN step with 1 and 2 threads (dnn_bench): what a second core
#     adds to the DNN on this machine;
#   - the 1x1, 1x2, 2x2 and 2x4 local jobs (workers x shards): samples/s,
#     global steps, every process's CPU seconds (the launcher's rusage,
#     children included), and the worker's step split and bytes per step;
#   - one worker over 4 shards with dense variables sliced and whole: the
#     bytes per step each shard carries.
# Then prints the model's check against those jobs and its projection.
# Environment: ROWS (200000), DATA (./bench_data_scale), OUT (/tmp/deepfm_scale).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-200000}
DATA=${DATA:-./bench_data_scale}
OUT=${OUT:-/tmp/deepfm_scale}
mkdir -p "$OUT"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target deepfm ps_bench dnn_bench >/dev/null
[ -f "$DATA/train.csv" ] || ./build/launcher/deepfm gen-data --rows "$ROWS" --out "$DATA" >/dev/null

echo "== ps_bench (keys/s, 10,000-key requests; then 1-key requests for the per-request cost)"
./build/bench/ps_bench --seconds=1 --json_out="$OUT/ps_bench.json" 2>/dev/null | grep -v '^table fill'
./build/bench/ps_bench --seconds=1 --batch=1 --keys=10000 --json_out="$OUT/ps_bench_req.json" \
  2>/dev/null >/dev/null
for cfg in 1x1 1x2 2x2 2x4; do
  n=${cfg%x*} m=${cfg#*x}
  echo "== deepfm train --worker_num=$n --ps_num=$m"
  rm -rf "${OUT:?}/$cfg"
  /usr/bin/time -f '{"wall_s": %e, "user_s": %U, "sys_s": %S}' -o "$OUT/$cfg.time.json" \
    ./build/launcher/deepfm train --data_location="$DATA" --checkpoint="$OUT/$cfg" \
    --worker_num="$n" --ps_num="$m" --no_eval >"$OUT/$cfg.log" 2>&1 || { tail -20 "$OUT/$cfg.log"; exit 1; }
done
# One worker over 4 shards, with the dense variables cut into slices (the
# default) and whole (as before): what each shard carries per step.
for cfg in 1x4 1x4_whole; do
  slice=64
  [ "$cfg" = 1x4_whole ] && slice=0
  echo "== deepfm train --ps_num=4 --dense_slice_kb=$slice --steps=200"
  rm -rf "${OUT:?}/$cfg"
  ./build/launcher/deepfm train --data_location="$DATA" --checkpoint="$OUT/$cfg" --ps_num=4 \
    --dense_slice_kb=$slice --steps=200 --no_eval >"$OUT/$cfg.log" 2>&1 || { tail -20 "$OUT/$cfg.log"; exit 1; }
done
isa=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["dnn_isa"])' \
  "$OUT/1x1/worker0.json")
echo "== dnn_bench: one training step on the jobs' $isa path with 1 and 2 threads"
./build/bench/dnn_bench --benchmark_filter="^Step/$isa/t[12]" --benchmark_min_time=1 \
  --benchmark_format=json >"$OUT/dnn_step.json" 2>/dev/null
/usr/bin/python3 bench/scale_model.py --measured "$OUT"
