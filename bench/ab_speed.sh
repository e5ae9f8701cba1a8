#!/usr/bin/env bash
# Before/after throughput of two `deepfm` binaries on the same data, in
# interleaved rounds on this machine (one run, so both see the same load):
#   bench/ab_speed.sh OLD_BIN NEW_BIN
# Environment: DATA (./bench_data; made with gen-data --feature_spec=$SCHEMA
# when missing), SCHEMA (criteo or elm, for the data), ROWS (1000000),
# ROUNDS (3), MODES ("1x1 standalone"), EXTRA (more train flags, e.g. --bf16),
# OUT (/tmp/deepfm_ab). Prints each job's training samples/s (metrics.json)
# and the mean NEW/OLD ratio per mode.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 OLD_BIN NEW_BIN" >&2; exit 2; }
OLD=$1
NEW=$2
DATA=${DATA:-./bench_data}
SCHEMA=${SCHEMA:-criteo}
ROWS=${ROWS:-1000000}
ROUNDS=${ROUNDS:-3}
MODES=${MODES:-"1x1 standalone"}
EXTRA=${EXTRA:-}
OUT=${OUT:-/tmp/deepfm_ab}
mkdir -p "$OUT"
if [ ! -f "$DATA/train.csv" ]; then
  "$NEW" gen-data --feature_spec="$SCHEMA" --rows="$ROWS" --out="$DATA"
fi
rate() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["train_samples_per_sec"])' "$1"; }
: > "$OUT/rates.txt"
for round in $(seq 1 "$ROUNDS"); do
  for mode in $MODES; do
    flags="--no_eval $EXTRA"
    [ "$mode" = standalone ] && flags="$flags --standalone"
    # The order alternates by round, so neither binary always runs second
    # (after the other's checkpoint writes and page-cache churn).
    order="old new"; [ $((round % 2)) -eq 0 ] && order="new old"
    for which in $order; do
      bin=$OLD; [ $which = new ] && bin=$NEW
      job="$OUT/${mode}_${which}"
      rm -rf "$job"
      "$bin" train --data_location="$DATA" --checkpoint="$job" $flags > "$job.log" 2>&1 ||
        { tail -20 "$job.log"; exit 1; }
      r=$(rate "$job/metrics.json")
      printf 'round %d %-10s %-3s %10.0f samples/s\n' "$round" "$mode" "$which" "$r"
      echo "$mode $which $r" >> "$OUT/rates.txt"
    done
  done
done
/usr/bin/python3 - "$OUT/rates.txt" <<'PY'
import collections, sys
rates = collections.defaultdict(list)
for line in open(sys.argv[1]):
    mode, which, r = line.split()
    rates[(mode, which)].append(float(r))
for mode in dict.fromkeys(m for m, _ in rates):
    old, new = rates[(mode, "old")], rates[(mode, "new")]
    mo, mn = sum(old) / len(old), sum(new) / len(new)
    print(f"{mode:10s} old {mo:10.0f}  new {mn:10.0f}  new/old {mn / mo:.4f} (mean of {len(old)} rounds)")
PY
