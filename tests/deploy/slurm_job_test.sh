#!/usr/bin/env bash
# deploy/slurm/deepfm.sbatch on a real (one-machine) Slurm cluster:
#   1. a 2-shard, 2-worker job submitted with sbatch finishes COMPLETED, with
#      a metrics.json whose AUC is within 0.005 of a local 2x2 job's on the
#      same data and seed;
#   2. a shard killed with SIGKILL fails the Slurm job (state FAILED) when no
#      restart is allowed;
#   3. with one restart allowed, the same kill is recovered: the step runs
#      again from the newest checkpoint and the job COMPLETES.
# Needs root and Debian's slurm-wlm and munge (scripts/install_deps.sh); it
# fails, never skips, without them. Everything lives under a temporary
# folder; the daemons and jobs it starts are stopped at the end.
#   usage: slurm_job_test.sh DEEPFM_BIN REPO_ROOT
set -uo pipefail
bin="$1"
repo="$2"
. "$repo/tests/deploy/slurm_cluster.sh"
[ "$(id -u)" -eq 0 ] || {
  echo "FAIL: the Slurm test runs slurmd as root (CI does); it is not skipped"
  exit 1
}
d="$(mktemp -d /tmp/deepfm-slurm.XXXXXX)"
cleanup() {
  slurm_cluster_stop
  pkill -9 -f -- "--checkpoint=$d/" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$d"
}
trap cleanup EXIT
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
metric() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
job_field() { scontrol -o show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

slurm_cluster_start "$d/cluster" || {
  echo "FAIL: could not start a one-machine Slurm cluster"
  exit 1
}
"$bin" gen-data --rows=100000 --eval_rows=20000 --seed=5 --out="$d/data" >/dev/null || exit 1
model=(--data_location="$d/data" --hidden_units=64,32 --batch_size=256 --learning_rate=0.002
  --seed=7 --staleness=0)
export DEEPFM_BIN="$bin" DEEPFM_DEPLOY_DIR="$repo/deploy"
# Ports of this run only: a concurrent test's shards must not collide.
export DEEPFM_PORT=$((20000 + RANDOM % 20000))

submit() { # NAME MAX_RESTARTS extra flags... -> job id
  local name="$1" restarts="$2"
  shift 2
  DEEPFM_MAX_RESTARTS="$restarts" sbatch --parsable --nodes=1 --ntasks=4 \
    --output="$d/$name.out" --chdir="$d" "$repo/deploy/slurm/deepfm.sbatch" \
    --ps_num=2 --checkpoint="$d/$name" "${model[@]}" "$@"
}
wait_done() { # JOB SECONDS -> 0 once it left PENDING/RUNNING
  local i
  for ((i = 0; i < $2 * 2; i++)); do
    case "$(job_field "$1" JobState)" in PENDING | RUNNING | CONFIGURING | COMPLETING) sleep 0.5 ;; *) return 0 ;; esac
  done
  return 1
}
wait_checkpoint() { # FOLDER SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -s "$1/checkpoint" ] && return 0
    sleep 0.1
  done
  return 1
}
shard_pid() { # FOLDER INDEX -> pid of that job's shard
  local p
  for p in $(pgrep -f -- "task .*--checkpoint=$1( |$)"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -q "\"task\": {\"type\": \"ps\", \"index\": $2}"; then
      echo "$p"
      return 0
    fi
  done
  return 1
}

# 1. The job through Slurm against the same job run locally.
start=$(date +%s.%N)
job=$(submit slurm 0) || exit 1
wait_done "$job" 300 || fail "job $job still $(job_field "$job" JobState) after 300 s"
slurm_s=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
state="$(job_field "$job" JobState)"
[ "$state" = COMPLETED ] || fail "job $job ended $state ($(job_field "$job" ExitCode)): $(tail -30 "$d/slurm.out")"
start=$(date +%s.%N)
"$bin" train --ps_num=2 --worker_num=2 --checkpoint="$d/local" "${model[@]}" >"$d/local.out" 2>&1 ||
  fail "local job failed: $(tail -20 "$d/local.out")"
local_s=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")
if [ -f "$d/slurm/metrics.json" ] && [ -f "$d/local/metrics.json" ]; then
  a=$(metric "$d/slurm/metrics.json" auc)
  b=$(metric "$d/local/metrics.json" auc)
  echo "AUC through Slurm (2 ps + 2 workers as srun tasks): $a in ${slurm_s} s (submit to done); local 2x2 job: $b in ${local_s} s"
  python3 -c "import sys; sys.exit(abs($a - $b) > 0.005)" || fail "Slurm AUC $a is not within 0.005 of the local $b"
  [ "$(metric "$d/slurm/metrics.json" train_rows)" = 100000 ] || fail "the Slurm job did not train every row once"
  [ "$(metric "$d/slurm/metrics.json" workers_reported)" = 2 ] || fail "not every Slurm trainer reported"
  [ "$(metric "$d/slurm/metrics.json" ps)" = 2 ] || fail "the Slurm job did not run 2 shards"
else
  fail "no metrics.json: $(tail -30 "$d/slurm.out")"
fi

# 2. A killed shard fails the Slurm job when no restart is allowed.
job=$(submit kill 0 --num_epochs=1000 --save_steps=20) || exit 1
if wait_checkpoint "$d/kill" 120; then
  pid=$(shard_pid "$d/kill" 1) || fail "no shard 1 process of job $job"
  [ -n "${pid:-}" ] && kill -9 "$pid"
  wait_done "$job" 60 || fail "job $job still $(job_field "$job" JobState) 60 s after its shard was killed"
  state="$(job_field "$job" JobState)"
  echo "job with a killed shard: $state, exit $(job_field "$job" ExitCode)"
  [ "$state" = FAILED ] || fail "job $job with a killed shard ended $state, expected FAILED"
  [ -z "$(pgrep -f -- "--checkpoint=$d/kill( |$)")" ] || fail "tasks of job $job still run"
else
  fail "job $job made no checkpoint within 120 s: $(tail -30 "$d/kill.out")"
fi

# 3. With one restart, the same kill is recovered and the job completes.
job=$(submit recover 1 --num_epochs=3 --save_steps=20) || exit 1
if wait_checkpoint "$d/recover" 120; then
  pid=$(shard_pid "$d/recover" 0) || fail "no shard 0 process of job $job"
  [ -n "${pid:-}" ] && kill -9 "$pid"
  wait_done "$job" 300 || fail "job $job still $(job_field "$job" JobState) after 300 s"
  state="$(job_field "$job" JobState)"
  [ "$state" = COMPLETED ] || fail "job $job with one restart ended $state: $(tail -30 "$d/recover.out")"
  grep -q "restart 1 of 1 from the newest good checkpoint" "$d/recover.out" ||
    fail "job $job did not restart its step: $(tail -30 "$d/recover.out")"
  [ -f "$d/recover/metrics.json" ] || fail "the recovered job wrote no metrics.json"
else
  fail "job $job made no checkpoint within 120 s: $(tail -30 "$d/recover.out")"
fi

if [ "$failures" -eq 0 ]; then
  echo "slurm_job_test: 3 passed, 0 failed"
  exit 0
fi
echo "slurm_job_test: $failures failure(s)"
exit 1
