#!/usr/bin/env bash
# Issue 14's end-to-end trade-off: the default local job (1 shard, 1 worker,
# default shape) on generated Criteo-schema data (Zipf(1.1) values over
# Criteo-like cardinalities up to 200k: a long tail), with --ev_filter_freq
# 1..5 and with --ps_memory_budget_mb at 25 %, 50 % and 100 % of the
# unbounded table. Prints rows, table bytes, AUC and logloss against the
# unfiltered job. Environment: ROWS (1000000), DATA (./bench_data),
# OUT (/tmp/deepfm_ev_tradeoff), EXTRA (more deepfm train flags). Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
DATA=${DATA:-./bench_data}
OUT=${OUT:-/tmp/deepfm_ev_tradeoff}
EXTRA=${EXTRA:-}
mkdir -p "$OUT"
./scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target deepfm >/dev/null
if [ ! -f "$DATA/train.csv" ]; then
  ./build/launcher/deepfm gen-data --rows "$ROWS" --out "$DATA" | tee "$OUT/gen.log"
fi
run() {  # name, flags...
  local name=$1; shift
  echo "== deepfm train $*" >&2
  rm -rf "${OUT:?}/$name"
  ./build/launcher/deepfm train --data_location="$DATA" --checkpoint="$OUT/$name" $EXTRA "$@" \
      > "$OUT/$name.log" 2>&1 || { tail -30 "$OUT/$name.log"; exit 1; }
}
for ff in 1 2 3 4 5; do run "filter$ff" --ev_filter_freq="$ff"; done
unbounded=$(/usr/bin/python3 -c 'import json, sys
print(sum(t["bytes"] for t in json.load(open(sys.argv[1]))["tables"].values()))' "$OUT/filter1/metrics.json")
for pct in 100 50 25; do
  mb=$(( (unbounded * pct / 100 + 1048575) / 1048576 ))
  run "budget$pct" --ps_memory_budget_mb="$mb"
done
/usr/bin/python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def load(name):
    return json.load(open(os.path.join(out, name, "metrics.json")))
base = load("filter1")
def rows(m): return sum(t["rows"] for t in m["tables"].values())
def mb(m): return sum(t["bytes"] for t in m["tables"].values()) / 1e6
def evicted(m): return sum(t["evicted"] for t in m["tables"].values())
print("| job | rows | vs unfiltered | table MB | AUC | ΔAUC | logloss | samples/s | evicted |")
print("|---|---|---|---|---|---|---|---|---|")
for name in ["filter1", "filter2", "filter3", "filter4", "filter5", "budget100", "budget50", "budget25"]:
    m = load(name)
    label = {"filter1": "--ev_filter_freq=1 (none)"}.get(name, name.replace("filter", "--ev_filter_freq=").replace(
        "budget", "budget ") + ("% of unbounded" if name.startswith("budget") else ""))
    print(f"| {label} | {rows(m):,} | {rows(m) / rows(base) - 1:+.1%} | {mb(m):.1f} | {m['auc']:.4f} | "
          f"{m['auc'] - base['auc']:+.4f} | {m['logloss']:.4f} | {m['train_samples_per_sec']:,.0f} | {evicted(m):,} |")
PY
