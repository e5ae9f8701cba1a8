#!/usr/bin/env bash
# The cluster spec deploy/slurm/deepfm.sbatch derives, for allocations a
# one-machine Slurm cannot make: stand-ins for scontrol (a node list, each
# node's NodeAddr) and srun (runs each task in turn with its SLURM_PROCID);
# every task runs `deepfm task --dry_run`, which prints the spec it resolves.
# Checks the block placement over uneven nodes, the ports per node, the
# ps/worker split, the chief's --shutdown_ps, the token the job makes, and
# that bad splits are refused.
#   usage: sbatch_layout_test.sh DEEPFM_BIN REPO_ROOT
set -uo pipefail
bin="$1"
repo="$2"
d="$(mktemp -d /tmp/deepfm-sbatch.XXXXXX)"
trap 'rm -rf "$d"' EXIT
failures=0
passed=0
expect() { # WHAT GOT WANT
  if [ "$2" = "$3" ]; then
    passed=$((passed + 1))
  else
    echo "FAIL: $1: got '$2', want '$3'"
    failures=$((failures + 1))
  fi
}
mkdir -p "$d/bin"
cat >"$d/bin/scontrol" <<'STANDIN'
#!/usr/bin/env bash
# show hostnames n[1-3] -> one a line; -o show node nX -> its NodeAddr.
if [ "$1" = show ] && [ "$2" = hostnames ]; then
  case "$3" in "n[1-3]") printf 'n1\nn2\nn3\n' ;; "n7") echo n7 ;; *) exit 1 ;; esac
elif [ "$1" = -o ] && [ "$2" = show ] && [ "$3" = node ]; then
  echo "NodeName=$4 Arch=x86_64 NodeAddr=10.1.0.${4#n} NodeHostName=$4 State=IDLE"
else
  exit 1
fi
STANDIN
cat >"$d/bin/srun" <<'STANDIN'
#!/usr/bin/env bash
# Runs the step's command once per task, in rank order, as srun would on
# the task's node; the options are srun's and are recorded.
echo "$*" >"$SRUN_LOG.args"
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
for ((r = 0; r < SLURM_NTASKS; r++)); do
  SLURM_PROCID=$r "$@" >"$SRUN_LOG.$r" 2>&1 || exit $?
done
STANDIN
chmod +x "$d/bin/"*

run() { # NODELIST TASKS_PER_NODE NTASKS args... -> exit status
  local nodelist="$1" per="$2" n="$3"
  shift 3
  env PATH="$d/bin:$PATH" SLURM_JOB_ID=7 SLURM_SUBMIT_DIR="$repo" SLURM_JOB_NODELIST="$nodelist" \
    SLURM_TASKS_PER_NODE="$per" SLURM_NTASKS="$n" SRUN_LOG="$d/task" DEEPFM_BIN="$bin" \
    DEEPFM_MAX_RESTARTS=0 bash "$repo/deploy/slurm/deepfm.sbatch" "$@" --dry_run >"$d/out" 2>&1
}
field() { python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }

# 5 tasks over 3 nodes placed 2, 2, 1: shards are ranks 0-1, trainers 2-4.
run "n[1-3]" "2(x2),1" 5 --ps_num=2 --checkpoint="$d/job" --data_location=/shared/data
expect "exit status" "$?" 0
[ -f "$d/task.4" ] || cat "$d/out"
want_ps='["10.1.0.1:2222", "10.1.0.1:2223"]'
want_w='["10.1.0.2:2222", "10.1.0.2:2223", "10.1.0.3:2222"]'
for r in 0 1 2 3 4; do
  expect "rank $r ps list" "$(field "$d/task.$r" 's["cluster"]["ps"]' 2>&1)" "${want_ps//\"/\'}"
  expect "rank $r trainers" "$(field "$d/task.$r" 's["cluster"]["worker"]' 2>&1)" "${want_w//\"/\'}"
done
expect "rank 1 task" "$(field "$d/task.1" 's["task"]["type"], s["task"]["index"]')" "('ps', 1)"
expect "rank 2 task" "$(field "$d/task.2" 's["task"]["type"], s["task"]["index"]')" "('worker', 0)"
expect "rank 4 task" "$(field "$d/task.4" 's["task"]["type"], s["task"]["index"]')" "('worker', 2)"
grep -q -- "--kill-on-bad-exit=1" "$d/task.args" && passed=$((passed + 1)) ||
  { echo "FAIL: srun is not told to end the step when a task fails: $(cat "$d/task.args")"; failures=$((failures + 1)); }
expect "the job's token" "$(stat -c %a "$d/job/auth_token" 2>&1) $(wc -c <"$d/job/auth_token")" "600 64"

# The chief alone asks the shards to stop at the end: --shutdown_ps is a
# trainer's flag, so a shard given it through `deepfm task --dry_run` still
# resolves; a stand-in program shows each rank's arguments.
cat >"$d/bin/deepfm-args" <<'STANDIN'
#!/usr/bin/env bash
echo "$*"
STANDIN
chmod +x "$d/bin/deepfm-args"
env PATH="$d/bin:$PATH" SLURM_JOB_ID=7 SLURM_SUBMIT_DIR="$repo" SLURM_JOB_NODELIST=n7 \
  SLURM_TASKS_PER_NODE=3 SLURM_NTASKS=3 SRUN_LOG="$d/args" DEEPFM_BIN="$d/bin/deepfm-args" \
  bash "$repo/deploy/slurm/deepfm.sbatch" --ps_num=1 --checkpoint="$d/job2" >"$d/out" 2>&1
expect "ps args" "$(grep -c -- --shutdown_ps "$d/args.0")" 0
expect "chief args" "$(grep -c -- --shutdown_ps "$d/args.1")" 1
expect "worker 1 args" "$(grep -c -- --shutdown_ps "$d/args.2")" 0

# Refused before anything starts: no trainer left, no job folder.
run n7 3 3 --ps_num=3 --checkpoint="$d/job3"
expect "--ps_num=ntasks exit" "$?" 2
grep -q "leaves no trainer" "$d/out" && passed=$((passed + 1)) || { echo "FAIL: $(cat "$d/out")"; failures=$((failures + 1)); }
run n7 3 3 --ps_num=1
expect "no --checkpoint exit" "$?" 2
run "n[1-3]" "2(x2)" 4 --ps_num=1 --checkpoint="$d/job4"
expect "tasks per node not matching the nodes exit" "$?" 2

echo "sbatch_layout_test: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
