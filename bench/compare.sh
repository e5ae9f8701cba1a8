#!/usr/bin/env bash
# One command for the throughput comparison: makes the data if missing, runs
# the PyTorch reference and this project's local job (FP32 and BF16, 1 and 2
# shards, 1 worker) on it, measures the GEMM rate of the same build, and
# prints one table. Environment: ROWS (1000000), DATA (./bench_data),
# OUT (/tmp/deepfm_bench), SKIP_TORCH=1 to reuse OUT/torch.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
DATA=${DATA:-./bench_data}
OUT=${OUT:-/tmp/deepfm_bench}
mkdir -p "$OUT"

./scripts/install_deps.sh
# The reference needs Debian's torch with OpenBLAS as its BLAS.
missing=()
for p in python3-torch python3-numpy libopenblas0-pthread; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}"
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target deepfm dnn_bench

if [ ! -f "$DATA/train.csv" ]; then
  ./build/launcher/deepfm gen-data --rows "$ROWS" --out "$DATA" | tee "$OUT/gen.log"
fi

if [ "${SKIP_TORCH:-0}" != 1 ]; then
  echo "== PyTorch reference"
  /usr/bin/python3 bench/pytorch_deepfm.py --data_location "$DATA" --threads 2 | tee "$OUT/torch.json"
fi

# name, precision, shards, threads per DNN GEMM (0: deepfm's choice), mode:
# "-" (1 shard process), standalone, or standalone_fp32gemm (bf16 on the fp32
# kernels even where the CPU has AVX512_BF16: the native GEMM's comparison)
for cfg in "fp32_ps1 fp32 1 0 -" "bf16_ps1 bf16 1 0 -" "fp32_sa fp32 1 0 standalone" \
           "bf16_sa bf16 1 0 standalone" "bf16_sa_fp32gemm bf16 1 0 standalone_fp32gemm" \
           "fp32_ps2 fp32 2 0 -" "fp32_ps1_t1 fp32 1 1 -"; do
  set -- $cfg
  name="$1"
  extra=""; [ "$2" = bf16 ] && extra="--bf16"
  native=1
  case "$5" in
    standalone) extra="$extra --standalone" ;;
    standalone_fp32gemm) extra="$extra --standalone"; native=0 ;;
  esac
  echo "== DEEPFM_NATIVE_BF16=$native deepfm train $extra --ps_num=$3 --dnn_threads=$4"
  rm -rf "$OUT/$name"
  DEEPFM_NATIVE_BF16=$native ./build/launcher/deepfm train --data_location="$DATA" \
      --checkpoint="$OUT/$name" --ps_num="$3" --dnn_threads="$4" $extra > "$OUT/$name.log" 2>&1 ||
    { tail -30 "$OUT/$name.log"; exit 1; }
  tail -4 "$OUT/$name.log"
done

isa=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["dnn_isa"])' \
      "$OUT/fp32_ps1/worker0.json")
echo "== GEMM rates of this build's $isa path (three layer shapes, batch 512)"
./build/bench/dnn_bench --benchmark_filter="^Gemm/$isa/.*/t[12]/" --benchmark_format=json \
    --benchmark_repetitions=3 --benchmark_report_aggregates_only=true > "$OUT/gemm.json" 2>"$OUT/gemm.log"
/usr/bin/python3 bench/report.py "$OUT"
