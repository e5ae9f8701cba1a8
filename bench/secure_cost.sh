#!/usr/bin/env bash
# What the token and TLS cost per step: the same 1-shard, 1-worker job on the
# same data, on this machine, in one run, three ways:
#   plain      tasks started by hand on loopback, no token, no TLS
#   token      `deepfm train` as users run it (a fresh token on every RPC)
#   tls+token  `deepfm train` with mutual TLS (deploy/tls/make_certs.sh)
# each REPEAT times, interleaved. Prints samples/s (from each job's
# metrics.json), their medians and the ratio to plain. Environment: ROWS (200000), DATA
# (./bench_data_secure), OUT (/tmp/deepfm_secure), REPEAT (2), EXTRA (flags
# for every run, e.g. --bf16).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-200000}
DATA=${DATA:-./bench_data_secure}
OUT=${OUT:-/tmp/deepfm_secure}
REPEAT=${REPEAT:-2}
EXTRA=${EXTRA:-}
DEEPFM=./build/launcher/deepfm
mkdir -p "$OUT"
./scripts/install_deps.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target deepfm >/dev/null
[ -f "$DATA/train.csv" ] || $DEEPFM gen-data --rows "$ROWS" --out "$DATA" >/dev/null
[ -f "$OUT/tls/ca.pem" ] || ./deploy/tls/make_certs.sh "$OUT/tls" localhost >/dev/null
TLS="--tls_cert=$OUT/tls/tls.crt --tls_key=$OUT/tls/tls.key --tls_ca=$OUT/tls/ca.pem"

sps() { /usr/bin/python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["train_samples_per_sec"]))' "$1/metrics.json"; }

run_plain() {
  local job="$1" ports spec
  rm -rf "$job"
  ports=$(/usr/bin/python3 -c 'import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))')
  set -- $ports
  spec="{\"cluster\": {\"ps\": [\"127.0.0.1:$1\"], \"worker\": [\"127.0.0.1:$2\"]}"
  TF_CONFIG="$spec, \"task\": {\"type\": \"ps\", \"index\": 0}}" $DEEPFM ps --checkpoint="$job" $EXTRA_PS \
    > "$job.ps.log" 2>&1 &
  TF_CONFIG="$spec, \"task\": {\"type\": \"worker\", \"index\": 0}}" $DEEPFM worker --checkpoint="$job" \
    --data_location="$DATA" --shutdown_ps $EXTRA > "$job.worker.log" 2>&1
  wait
}

EXTRA_PS=""
declare -A total
for r in $(seq 1 "$REPEAT"); do
  run_plain "$OUT/plain"
  p=$(sps "$OUT/plain"); total[plain]+=" $p"
  rm -rf "$OUT/token"
  $DEEPFM train --data_location="$DATA" --checkpoint="$OUT/token" $EXTRA > "$OUT/token.log" 2>&1
  t=$(sps "$OUT/token"); total[token]+=" $t"
  rm -rf "$OUT/tlsjob"
  $DEEPFM train --data_location="$DATA" --checkpoint="$OUT/tlsjob" $TLS $EXTRA > "$OUT/tls.log" 2>&1
  s=$(sps "$OUT/tlsjob"); total[tls]+=" $s"
  rm -rf "$OUT/tlsjob"
  echo "round $r: plain $p, token $t, tls+token $s samples/s"
done
# Medians: one disturbed round on a shared machine moves a mean a lot.
median() { echo "$@" | tr ' ' '\n' | grep . | sort -n | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
mp=$(median ${total[plain]}); mt=$(median ${total[token]}); ms=$(median ${total[tls]})
echo
printf "%-12s %12s %10s\n" "run" "median s/s" "x plain"
printf "%-12s %12s %10s\n" "plain" "$mp" "1.000"
printf "%-12s %12s %10s\n" "token" "$mt" "$(awk -v a="$mt" -v b="$mp" 'BEGIN {printf "%.3f", a / b}')"
printf "%-12s %12s %10s\n" "tls+token" "$ms" "$(awk -v a="$ms" -v b="$mp" 'BEGIN {printf "%.3f", a / b}')"
