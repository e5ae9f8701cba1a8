#!/usr/bin/env bash
# docs/report.png: two stand-alone jobs (fp32 and bf16) on the benchmark
# data, `deepfm report` overlaying them, rendered by Debian's headless
# Chromium. Environment: DATA (./bench_data, generated when missing with
# ROWS rows, 1000000), OUT (/tmp/deepfm_report_shot), PNG (docs/report.png).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
DATA=${DATA:-./bench_data}
OUT=${OUT:-/tmp/deepfm_report_shot}
PNG=${PNG:-docs/report.png}
command -v chromium >/dev/null || {
  sudo_cmd=""; [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends chromium
}
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target deepfm >/dev/null
[ -f "$DATA/train.csv" ] || ./build/launcher/deepfm gen-data --rows "$ROWS" --out "$DATA" >/dev/null
mkdir -p "$OUT"
for m in fp32 bf16; do
  extra=""; [ "$m" = bf16 ] && extra=--bf16
  rm -rf "${OUT:?}/deepfm_$m"
  ./build/launcher/deepfm train --data_location="$DATA" --checkpoint="$OUT/deepfm_$m" --standalone \
      $extra >"$OUT/$m.log" 2>&1 || { tail -20 "$OUT/$m.log"; exit 1; }
done
./build/launcher/deepfm report "$OUT/deepfm_fp32" "$OUT/deepfm_bf16" --report_file="$OUT/report.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1300,1750 \
    --screenshot="$PNG" "file://$(realpath "$OUT/report.html")" 2>/dev/null
echo "wrote $PNG"
