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
. "$repo/tests/deploy/test_lib.sh"
[ "$(id -u)" -eq 0 ] || {
  echo "FAIL: the Slurm test runs slurmd as root (CI does); it is not skipped"
  exit 1
}
d="$(mktemp -d /tmp/deepfm-slurm.XXXXXX)"
cleanup() {
  slurm_cluster_stop
  pkill -9 -f -- "--checkpoint=$d/" 2>/dev/null || true
  # KEEP=1 leaves the folder (daemon logs, job outputs) for a look after a failure.
  [ -n "${KEEP:-}" ] || rm -rf "$d"
}
trap cleanup EXIT
job_field() { scontrol -o show job "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

slurm_cluster_start "$d/cluster" || {
  echo "FAIL: could not start a one-machine Slurm cluster"
  exit 1
}
"$bin" gen-data --rows=100000 --eval_rows=20000 --seed=5 --out="$d/data" >/dev/null || exit 1
model=(--data_location="$d/data" --hidden_units=64,32 --batch_size=256 --learning_rate=0.002
  --seed=7 --staleness=0)
export DEEPFM_BIN="$bin" DEEPFM_DEPLOY_DIR="$repo/deploy"
# Ports of this run only, below the kernel's ephemeral range (where the
# local jobs of concurrent tests get theirs): 20000-32759.
export DEEPFM_PORT=$((20000 + RANDOM % 12760))

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
# kill_shard_during NAME RESTARTS SHARD SECONDS flags...: submits a job,
# kills its shard SHARD once it committed a checkpoint, waits up to SECONDS
# for the Slurm job to end; sets `state` to its state (or "no-checkpoint").
kill_shard_during() {
  local name="$1" restarts="$2" shard="$3" seconds="$4" job pid
  shift 4
  job=$(submit "$name" "$restarts" "$@") || return 1
  if ! wait_checkpoint "$d/$name" 120; then
    state=no-checkpoint
    return 0
  fi
  pid=$(shard_pid "$bin" "$d/$name" "$shard") || fail "no shard $shard process of job $job"
  [ -n "${pid:-}" ] && kill -9 "$pid"
  wait_done "$job" "$seconds" || fail "job $job still $(job_field "$job" JobState) $seconds s after its shard was killed"
  [ -z "$(pgrep -f -- "--checkpoint=$d/$name( |$)")" ] || fail "tasks of job $job still run"
  state=$(job_field "$job" JobState)
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
  check_2x2_metrics "$d/slurm/metrics.json" "the Slurm job"
else
  fail "no metrics.json: $(tail -30 "$d/slurm.out")"
fi

# 2. A killed shard fails the Slurm job when no restart is allowed.
kill_shard_during kill 0 1 60 --num_epochs=1000 --save_steps=20
echo "job with a killed shard: $state"
[ "$state" = FAILED ] || fail "the job with a killed shard ended $state, expected FAILED: $(tail -30 "$d/kill.out")"

# 3. With one restart, the same kill is recovered and the job completes.
kill_shard_during recover 1 0 300 --num_epochs=3 --save_steps=20
[ "$state" = COMPLETED ] || fail "the job with one restart ended $state: $(tail -30 "$d/recover.out")"
grep -q "restart 1 of 1 from the newest good checkpoint" "$d/recover.out" ||
  fail "the job did not restart its step: $(tail -30 "$d/recover.out")"
[ -f "$d/recover/metrics.json" ] || fail "the recovered job wrote no metrics.json"

finish slurm_job_test 3
