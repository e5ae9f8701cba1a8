#!/usr/bin/env bash
# One command for the throughput comparison against PyTorch, per preset
# (PRESETS, default "elm elm_exact criteo"):
# - elm, elm_exact: bench/pytorch_elm_deepfm.py, a port of train.py (hash
#   buckets of 10,000, shared tables, mean pooling; elm_exact with batch
#   norm and MSE, elm with the default preset's changes), and this project's
#   1x1 and stand-alone jobs in fp32 and bf16, plus elm_exact with --tf (the
#   port's hash buckets and plain adam), on the same ELM data;
# - criteo: bench/pytorch_deepfm.py and the model-zoo DeepFM (FP32 and BF16,
#   1 and 2 shards, 1 worker), and the GEMM rate of the same build.
# Makes the data if missing and prints one table per preset. Environment:
# ROWS (1000000, Criteo), ELM_ROWS (200000), DATA (./bench_data), ELM_DATA
# (./bench_data_elm), OUT (/tmp/deepfm_bench), SKIP_TORCH=1 to reuse OUT's
# torch*.json, DEEPFM_ISA=avx2 to time the AVX2 path (PyTorch is then held to
# AVX2 too: ATEN_CPU_CAPABILITY=avx2, OPENBLAS_CORETYPE=Haswell).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
DATA=${DATA:-./bench_data}
ELM_ROWS=${ELM_ROWS:-200000}
ELM_DATA=${ELM_DATA:-./bench_data_elm}
PRESETS=${PRESETS:-elm elm_exact criteo}
torch_env=()
if [ "${DEEPFM_ISA:-}" = avx2 ]; then torch_env=(env ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell); fi
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

for preset in $PRESETS; do
  case "$preset" in elm|elm_exact) ;; criteo) continue ;; *) echo "unknown preset $preset"; exit 2 ;; esac
  if [ ! -f "$ELM_DATA/train.csv" ]; then
    ./build/launcher/deepfm gen-data --feature_spec=elm --rows "$ELM_ROWS" --out "$ELM_DATA" |
      tee "$OUT/gen_elm.log"
  fi
  # The port of the preset's network: elm_exact is train.py's; elm the default's changes.
  port=(--loss=mse --numeric=raw --linear=weightless --batch_norm=true)
  [ "$preset" = elm ] && port=(--loss=logloss --numeric=log1p --linear=learned --batch_norm=false)
  if [ "${SKIP_TORCH:-0}" != 1 ]; then
    echo "== PyTorch port of train.py (${port[*]})"
    "${torch_env[@]}" /usr/bin/python3 bench/pytorch_elm_deepfm.py --data_location "$ELM_DATA" \
        --threads 2 "${port[@]}" > "$OUT/torch_$preset.json"
    cat "$OUT/torch_$preset.json"
  fi
  # name, extra flags
  runs=("fp32_ps1|" "bf16_ps1|--bf16" "fp32_sa|--standalone" "bf16_sa|--standalone --bf16")
  [ "$preset" = elm_exact ] && runs+=("tf_ps1|--tf")
  for cfg in "${runs[@]}"; do
    name="${preset}_${cfg%%|*}"
    extra="${cfg#*|}"
    echo "== deepfm train --feature_spec=$preset $extra"
    rm -rf "$OUT/$name"
    # shellcheck disable=SC2086
    ./build/launcher/deepfm train --data_location="$ELM_DATA" --feature_spec="$preset" \
        --checkpoint="$OUT/$name" $extra > "$OUT/$name.log" 2>&1 || { tail -30 "$OUT/$name.log"; exit 1; }
    tail -2 "$OUT/$name.log"
  done
  /usr/bin/python3 bench/report.py --preset "$preset" "$OUT"
done
case " $PRESETS " in *" criteo "*) ;; *) exit 0 ;; esac

if [ ! -f "$DATA/train.csv" ]; then
  ./build/launcher/deepfm gen-data --rows "$ROWS" --out "$DATA" | tee "$OUT/gen.log"
fi

if [ "${SKIP_TORCH:-0}" != 1 ]; then
  echo "== PyTorch reference"
  "${torch_env[@]}" /usr/bin/python3 bench/pytorch_deepfm.py --data_location "$DATA" --threads 2 |
    tee "$OUT/torch.json"
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
