#!/usr/bin/env bash
# What watching a job costs: the same 1-shard, 1-worker job with everything
# off (--log_every=0: no interval logs, no per-interval event records; no
# timeline; no metrics page) against everything on (--log_every=100 event
# records and table sizes, --timeline=100, --metrics_port with every task's
# page scraped once a second, far more often than Prometheus would), run in
# interleaved rounds on the same machine. Prints samples/s of each run, the
# means and the ratio. Environment: ROWS (1000000), DATA (./bench_data),
# OUT (/tmp/deepfm_obs_overhead), ROUNDS (3), FLAGS (extra flags for both).
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${ROWS:-1000000}
DATA=${DATA:-./bench_data}
OUT=${OUT:-/tmp/deepfm_obs_overhead}
ROUNDS=${ROUNDS:-3}
FLAGS=${FLAGS:-}
mkdir -p "$OUT"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target deepfm >/dev/null
if [ ! -f "$DATA/train.csv" ]; then
  ./build/launcher/deepfm gen-data --rows "$ROWS" --out "$DATA" >"$OUT/gen.log"
fi
port=$((20000 + $$ % 20000))

# Scrapes every page of job folder $1 once a second until the job's
# metrics.json appears; counts the scrapes that answered 200.
scrape() {
  /usr/bin/python3 - "$1" "$port" <<'PY'
import base64, os, sys, time, urllib.request
job, base = sys.argv[1], int(sys.argv[2])
ok = 0
while not os.path.exists(os.path.join(job, "metrics.json")):
    time.sleep(1)
    try:
        token = open(os.path.join(job, "auth_token")).read().strip()
    except OSError:
        continue
    auth = base64.b64encode(("deepfm:" + token).encode()).decode()
    for p in (base, base + 1):
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % p,
                                     headers={"Authorization": "Basic " + auth})
        try:
            with urllib.request.urlopen(req, timeout=2) as r:
                r.read()
                ok += r.status == 200
        except Exception:
            pass
print(ok)
PY
}

run() {  # name, flags...
  local name=$1; shift
  rm -rf "${OUT:?}/$name"
  local scraper=""
  if [[ "$*" == *metrics_port* ]]; then
    scrape "$OUT/$name" >"$OUT/$name.scrapes" &
    scraper=$!
  fi
  ./build/launcher/deepfm train --data_location="$DATA" --checkpoint="$OUT/$name" --no_eval \
      $FLAGS "$@" >"$OUT/$name.log" 2>&1 || { tail -20 "$OUT/$name.log"; exit 1; }
  [ -n "$scraper" ] && wait "$scraper"
  /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["train_samples_per_sec"])' \
      "$OUT/$name/metrics.json"
}

off=(); on=()
for r in $(seq 1 "$ROUNDS"); do
  a=$(run "off_$r" --log_every=0)
  b=$(run "on_$r" --log_every=100 --timeline=100 --metrics_port="$port")
  scrapes=$(cat "$OUT/on_$r.scrapes")
  timelines=$(ls "$OUT/on_$r" | grep -c '^timeline-' || true)
  printf 'round %d: off %.0f samples/s, on %.0f samples/s (%d timelines, %d scrapes)\n' \
      "$r" "$a" "$b" "$timelines" "$scrapes"
  off+=("$a"); on+=("$b")
done
/usr/bin/python3 - "${off[*]}" "${on[*]}" <<'PY'
import statistics, sys
off = [float(x) for x in sys.argv[1].split()]
on = [float(x) for x in sys.argv[2].split()]
mo, mn = statistics.mean(off), statistics.mean(on)
print("mean off %.0f, on %.0f samples/s: on/off %.4f (%+.2f %%)" % (mo, mn, mn / mo, 100 * (mn / mo - 1)))
ratios = [b / a for a, b in zip(off, on)]
print("per round on/off: " + ", ".join("%.4f" % r for r in ratios))
PY
