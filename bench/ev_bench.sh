#!/usr/bin/env bash
# Issue 14's stream benchmark: 50M Zipf(1.1) key draws through one shard
# under each admission / eviction policy and under memory budgets (recent
# then frequent, and plain LRU), one process per run so each peak RSS is
# its own. The unbounded table of this stream is about 1.8 GB, so the 2 GiB
# budget does not bind; 1 GiB and 512 MiB do. Prints a table. Environment:
# KEYS (50000000), BUDGETS_MB ("2048 1024 512"), OUT (/tmp/deepfm_ev_bench).
# Not a test.
set -euo pipefail
cd "$(dirname "$0")/.."
KEYS=${KEYS:-50000000}
BUDGETS_MB=${BUDGETS_MB:-2048 1024 512}
OUT=${OUT:-/tmp/deepfm_ev_bench}
mkdir -p "$OUT"
./scripts/install_deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target ev_bench >/dev/null
: > "$OUT/results.jsonl"
runs=(none counter2 bloom2 ttl l2)
for b in $BUDGETS_MB; do runs+=("budget:$b" "budget_lru:$b"); done
for run in "${runs[@]}"; do
  p=${run%%:*}
  b=0; [ "$p" != "$run" ] && b=${run#*:}
  echo "== ev_bench --policy=$p --budget_mb=$b --keys=$KEYS" >&2
  ./build/bench/ev_bench --policy="$p" --keys="$KEYS" --budget_mb="$b" | tee -a "$OUT/results.jsonl" >&2
done
/usr/bin/python3 - "$OUT/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print(f"| policy | budget MB | rows kept | table MB | peak RSS MB | push keys/s | hit rate | longest push ms | sweeps | longest sweep lock ms | evicted | filtered grads |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    ev = r["evicted_ttl"] + r["evicted_l2"] + r["evicted_budget"]
    budget = r["budget_mb"] or "-"
    print(f"| {r['policy']} | {budget} | {r['rows']:,} | {r['table_mb']:.0f} | {r['peak_rss_mb']:.0f} | "
          f"{r['push_keys_per_sec']:,.0f} | {r['hit_rate']:.4f} | {r['longest_push_ms']:.1f} | {r['sweeps']} | {r['longest_sweep_hold_ms']:.2f} | {ev:,} | "
          f"{r['filtered_grads']:,} |")
PY
