# Helpers of the deploy tests that run whole jobs (sourced).

failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
# metric FILE KEY -> a value of a metrics.json (written by common/report).
metric() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
# A finished 2-shard, 2-trainer job over the tests' 100,000 rows.
check_2x2_metrics() { # METRICS_JSON WHAT
  [ "$(metric "$1" train_rows)" = 100000 ] || fail "$2: not every row was trained once"
  [ "$(metric "$1" workers_reported)" = 2 ] || fail "$2: not every trainer reported"
  [ "$(metric "$1" ps)" = 2 ] || fail "$2: did not run 2 shards"
}
# wait_checkpoint FOLDER SECONDS: 0 once the job folder has committed one.
wait_checkpoint() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -s "$1/checkpoint" ] && return 0
    sleep 0.1
  done
  return 1
}
# shard_pid PROGRAM FOLDER INDEX -> the pid of that job's shard INDEX: the
# program itself, not a shell around it that shares its TF_CONFIG.
shard_pid() {
  local q prog
  prog="$(readlink -f "$1")"
  for q in $(pgrep -f -- "--checkpoint=$2( |$)"); do
    [ "$(readlink "/proc/$q/exe")" = "$prog" ] &&
      tr '\0' '\n' <"/proc/$q/environ" 2>/dev/null | grep -q "\"task\":[{] *\"index\": *$3, *\"type\": *\"ps\"\|\"task\": *[{] *\"type\": *\"ps\", *\"index\": *$3[ }]" &&
      echo "$q" && return 0
  done
  return 1
}
# finish NAME SCENARIOS: the closing line, and the exit status.
finish() {
  if [ "$failures" -eq 0 ]; then
    echo "$1: $2 passed, 0 failed"
    exit 0
  fi
  echo "$1: $failures failure(s)"
  exit 1
}
