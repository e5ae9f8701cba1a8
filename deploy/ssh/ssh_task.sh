#!/usr/bin/env bash
# Runs one task of a job on its host over ssh: `ssh_task.sh HOST PROGRAM
# ARGS...`, with the task's TF_CONFIG from the environment (the launcher sets
# it; ssh would not carry it). deploy/ssh/deepfm-ssh.sh passes this as
# `deepfm train --launch_prefix`.
#
# The task must not outlive its ssh connection, or a stopped job would leave
# shards running on other hosts. ssh gives the remote command no signal when
# the client goes, so the remote side watches its standard input, which this
# script holds open for as long as it runs: when the connection closes, the
# input ends and the task is sent SIGTERM. A SIGTERM, SIGINT or SIGHUP here
# ends ssh (and so the task). A task killed on its host exits 75 ("a restart
# may help"), as the launcher expects of a task that died.
#
# DEEPFM_REMOTE_BIN replaces PROGRAM on the host; DEEPFM_SSH (default ssh)
# and DEEPFM_SSH_OPTS (split on spaces) choose the client and its options.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/lib/tf_config.sh
. "$here/../lib/tf_config.sh"
[ $# -ge 2 ] || {
  echo "usage: $0 HOST PROGRAM [ARGS...]" >&2
  exit 2
}
host="$1"
shift
[ -z "${DEEPFM_REMOTE_BIN:-}" ] || set -- "$DEEPFM_REMOTE_BIN" "${@:2}"

# What the host's shell runs: the task in the background with its input
# closed, and a watcher on the connection's input.
watch='exec 3<&0
"$@" </dev/null &
p=$!
trap "kill -TERM $p 2>/dev/null" TERM HUP INT
{ cat >/dev/null; kill -TERM $p 2>/dev/null; } <&3 &
w=$!
exec 3<&-
while :; do
  wait $p && rc=0 || rc=$?
  kill -0 $p 2>/dev/null || break
done
kill $w 2>/dev/null
if [ $rc -gt 128 ]; then exit 75; fi
exit $rc'
remote="cd $(dfm_quote "$PWD") 2>/dev/null; TF_CONFIG=$(dfm_quote "${TF_CONFIG:-}"); export TF_CONFIG; exec sh -c $(dfm_quote "$watch") deepfm-task"
for a in "$@"; do remote+=" $(dfm_quote "$a")"; done

# Standard input for ssh that stays open while this script lives.
exec 3< <(exec sleep 2147483647)
keeper=$!
read -ra opts <<<"${DEEPFM_SSH_OPTS:-}"
"${DEEPFM_SSH:-ssh}" -o BatchMode=yes "${opts[@]}" "$host" "$remote" <&3 3<&- &
child=$!
exec 3<&-
trap 'kill -TERM "$child" 2>/dev/null || true' TERM INT HUP
while :; do
  wait "$child" && rc=0 || rc=$?
  kill -0 "$child" 2>/dev/null || break
done
kill "$keeper" 2>/dev/null || true
exit "$rc"
