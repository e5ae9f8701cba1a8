#!/usr/bin/env bash
# deploy/ssh/deepfm-ssh.sh on three hosts made of network namespaces (a
# bridge in a switch namespace, 10.214.0.0/24, a hosts file each). `ssh` is
# replaced by a stand-in that runs the remote command inside the named
# host's namespace, as sshd would run it on that host, and refuses any other
# host. Checks:
#   1. a 2-shard, 2-worker job from a hosts file finishes, every task
#      started on its own host, every row trained once;
#   2. Ctrl-C (SIGINT to the script's process group) stops every task on
#      every host;
#   3. a shard killed on its host stops every other task (no restarts).
# Needs root (CI runs as root); it fails, never skips, without it. It removes
# its namespaces (dfs<pid>*), their hosts files and processes at the end.
#   usage: ssh_job_test.sh DEEPFM_BIN REPO_ROOT
set -uo pipefail
bin="$1"
repo="$2"
[ "$(id -u)" -eq 0 ] || {
  echo "FAIL: this test builds hosts from network namespaces and must run as root; it is not skipped"
  exit 1
}
ip="$(command -v ip)" || {
  echo "FAIL: the ip command (iproute2) is missing; scripts/install_deps.sh installs it"
  exit 1
}
. "$repo/tests/deploy/test_lib.sh"
p="dfs$$"
hosts=("${p}a" "${p}b" "${p}c")
d="$(mktemp -d /tmp/deepfm-ssh.XXXXXX)"
cleanup() {
  for ns in "${p}s" "${hosts[@]}"; do
    "$ip" netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    "$ip" netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  done
  rm -rf "$d"
}
trap cleanup EXIT

set -e
"$ip" netns add "${p}s"
"$ip" -n "${p}s" link add br0 type bridge
"$ip" -n "${p}s" link set br0 up
printf '127.0.0.1 localhost\n' >"$d/hosts"
for i in 0 1 2; do
  h="${hosts[i]}"
  "$ip" netns add "$h"
  "$ip" -n "${p}s" link add "v$i" type veth peer name eth0 netns "$h"
  "$ip" -n "${p}s" link set "v$i" master br0 up
  "$ip" -n "$h" addr add "10.214.0.$((i + 1))/24" dev eth0
  "$ip" -n "$h" link set eth0 up
  "$ip" -n "$h" link set lo up
  printf '10.214.0.%d %s\n' $((i + 1)) "$h" >>"$d/hosts"
done
for h in "${hosts[@]}"; do
  mkdir -p "/etc/netns/$h"
  cp "$d/hosts" "/etc/netns/$h/hosts"
done
set +e

# The ssh stand-in: options, the host, then the command, which runs in that
# host's namespace through sh, as sshd would hand it to the login shell.
mkdir -p "$d/bin"
cat >"$d/bin/ssh" <<STANDIN
#!/usr/bin/env bash
while [ \$# -gt 0 ]; do
  case "\$1" in
    -o | -i | -l | -p | -F) shift 2 ;;
    -*) shift ;;
    *) break ;;
  esac
done
host="\$1"
shift
case " ${hosts[*]} " in *" \$host "*) ;; *) echo "ssh stand-in: \$host is not a host of this test" >&2; exit 255 ;; esac
echo "\$host" >>"$d/ssh.log"
exec "$ip" netns exec "\$host" sh -c "\$*"
STANDIN
chmod +x "$d/bin/ssh"
cat >"$d/hosts.txt" <<HOSTS
# role host[:port]
ps ${hosts[0]}
ps ${hosts[1]}
worker ${hosts[1]}   # gets port 2223: the second task on its host
worker ${hosts[2]}:2300
HOSTS
"$bin" gen-data --rows=100000 --eval_rows=20000 --seed=5 --out="$d/data" >/dev/null 2>&1 || exit 1
model=(--data_location="$d/data" --hidden_units=64,32 --batch_size=256 --learning_rate=0.002
  --seed=7 --staleness=0)
# The launcher runs on host 0, as a person would start it on one of the hosts.
job() { # NAME flags...
  local name="$1"
  shift
  "$ip" netns exec "${hosts[0]}" env PATH="$d/bin:$PATH" DEEPFM_BIN="$bin" \
    "$repo/deploy/ssh/deepfm-ssh.sh" "$d/hosts.txt" --checkpoint="$d/$name" "${model[@]}" "$@"
}
tasks_of() { pgrep -f -- "--checkpoint=$d/$1( |$)" | grep -v -x "$$" || true; }
# The exit status of background job PID, killing its process group after
# SECONDS (status 124 then): no wait of this test is unbounded.
bounded_wait() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    if ! kill -0 "$1" 2>/dev/null; then
      wait "$1"
      return $?
    fi
    sleep 0.1
  done
  kill -9 -- "-$1" 2>/dev/null
  wait "$1"
  return 124
}
wait_gone() { # NAME SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    [ -z "$(tasks_of "$1")" ] && return 0
    sleep 0.1
  done
  return 1
}

# 1. A whole job over ssh.
timeout 300 bash -c "$(declare -f job); $(declare -p d bin repo ip hosts model); job ok" >"$d/ok.out" 2>&1
rc=$?
[ "$rc" -eq 0 ] || fail "the ssh job exited $rc: $(tail -30 "$d/ok.out")"
if [ -f "$d/ok/metrics.json" ]; then
  echo "AUC of the 2x2 job over ssh: $(metric "$d/ok/metrics.json" auc)"
  check_2x2_metrics "$d/ok/metrics.json" "the ssh job"
else
  fail "no metrics.json: $(tail -30 "$d/ok.out")"
fi
expect="$(printf '%s\n' "${hosts[0]}" "${hosts[1]}" "${hosts[1]}" "${hosts[2]}")"
got="$(sort "$d/ssh.log" 2>/dev/null)"
[ "$got" = "$expect" ] || fail "tasks were started on: $(echo $got), expected: $(echo $expect)"
grep -q "${hosts[1]}:2223" "$d/ok/cluster.json" 2>/dev/null ||
  fail "the second task on ${hosts[1]} did not get port 2223: $(cat "$d/ok/cluster.json" 2>/dev/null)"

# 2. Ctrl-C stops every task on every host.
setsid bash -c "$(declare -f job); $(declare -p d bin repo ip hosts model); job int --num_epochs=1000 --save_steps=20" >"$d/int.out" 2>&1 &
leader=$!
if wait_checkpoint "$d/int" 60; then
  [ "$(tasks_of int | wc -l)" -ge 4 ] || fail "expected 4 running tasks, saw: $(tasks_of int)"
  kill -INT -- "-$leader"
  wait_gone int 30 || fail "tasks still run 30 s after Ctrl-C: $(tasks_of int | xargs -r ps -o pid,args -p)"
  bounded_wait "$leader" 30
  rc=$?
  [ "$rc" -eq 130 ] || fail "after Ctrl-C the script exited $rc, expected 130"
else
  fail "the job made no checkpoint within 60 s: $(tail -30 "$d/int.out")"
  kill -9 -- "-$leader" 2>/dev/null
fi

# 3. A shard killed on its host stops every task (no restarts).
setsid bash -c "$(declare -f job); $(declare -p d bin repo ip hosts model); job kill --num_epochs=1000 --save_steps=20 --max_restarts=0" >"$d/kill.out" 2>&1 &
leader=$!
if wait_checkpoint "$d/kill" 60; then
  shard=$(shard_pid "$bin" "$d/kill" 1)
  if [ -n "$shard" ]; then
    kill -9 "$shard"
    wait_gone kill 30 || fail "tasks still run 30 s after a shard was killed: $(tasks_of kill | xargs -r ps -o pid,args -p)"
    bounded_wait "$leader" 30
    rc=$?
    [ "$rc" -eq 1 ] || fail "after a shard died the script exited $rc, expected 1"
    grep -q "ps:1 (${hosts[1]}:2222) died" "$d/kill.out" || fail "the launcher did not name the dead shard: $(tail -20 "$d/kill.out")"
  else
    fail "found no process of shard 1"
  fi
else
  fail "the job made no checkpoint within 60 s: $(tail -30 "$d/kill.out")"
fi
kill -9 -- "-$leader" 2>/dev/null

finish ssh_job_test 3
