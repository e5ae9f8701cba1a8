#!/usr/bin/env bash
# A DeepFM job on a few bare hosts over ssh, from a hosts file:
#
#   deploy/ssh/deepfm-ssh.sh HOSTS_FILE --checkpoint=/shared/jobs/run1 \
#       --data_location=/shared/criteo [deepfm train flags...]
#
# HOSTS_FILE has one task a line, "ROLE HOST[:PORT]", ROLE being ps, chief or
# worker ('#' starts a comment). Shards are numbered in file order, and so
# are trainers (the chief, or else the first worker, saves and evaluates).
# A task without a port gets DEEPFM_PORT (2222) plus the number of tasks
# listed before it on the same host.
#
# `deepfm train` runs here with that spec and starts every task through
# deploy/ssh/ssh_task.sh, which runs it over ssh with its TF_CONFIG. The
# launcher supervises them as it does a local job: it waits for every shard's
# health check, restarts crashed tasks (--max_restarts), and on Ctrl-C or a
# failure stops every task; a task whose ssh connection goes away is stopped
# on its host. So:
#   - every host must have deepfm at the same path as here (or set
#     DEEPFM_REMOTE_BIN), and see the job folder, the data and the
#     TLS/token files at the same paths (NFS or the like);
#   - ssh must log in without a password (BatchMode); DEEPFM_SSH_OPTS adds
#     options (e.g. "-i key -l user");
#   - this host must reach every shard's address (the launcher checks health).
# Every shard listens beyond loopback, so a token is required: the launcher
# makes one in the job folder unless --auth_token_file names one. Add
# --tls_cert/--tls_key/--tls_ca for TLS (deploy/tls/make_certs.sh).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=deploy/lib/tf_config.sh
. "$here/../lib/tf_config.sh"

die() {
  echo "deepfm-ssh: $*" >&2
  exit 2
}
[ $# -ge 1 ] || die "usage: $0 HOSTS_FILE [deepfm train flags...]"
hosts_file="$1"
shift
[ -r "$hosts_file" ] || die "cannot read hosts file $hosts_file"
base="${DEEPFM_PORT:-2222}"

DFM_PS=() DFM_WORKER=() DFM_CHIEF=()
declare -A on_host=()
line_no=0
while IFS= read -r line || [ -n "$line" ]; do
  line_no=$((line_no + 1))
  line="${line%%#*}"
  read -r role where rest <<<"$line" || true
  [ -n "${role:-}" ] || continue
  [ -z "${rest:-}" ] && [ -n "${where:-}" ] ||
    die "$hosts_file:$line_no: expected 'ROLE HOST[:PORT]', got '$line'"
  host="${where%:*}"
  if [ "$host" = "$where" ]; then
    where="$host:$((base + ${on_host[$host]:-0}))"
  fi
  on_host[$host]=$((${on_host[$host]:-0} + 1))
  case "$role" in
    ps) DFM_PS+=("$where") ;;
    worker) DFM_WORKER+=("$where") ;;
    chief) DFM_CHIEF+=("$where") ;;
    *) die "$hosts_file:$line_no: role '$role' is not ps, chief or worker" ;;
  esac
done <"$hosts_file"
[ "${#DFM_PS[@]}" -gt 0 ] || die "$hosts_file lists no ps task"
[ "$((${#DFM_WORKER[@]} + ${#DFM_CHIEF[@]}))" -gt 0 ] || die "$hosts_file lists no worker or chief"

# The spec without a task: the launcher's view (it gives each task its own).
spec="$(mktemp "${TMPDIR:-/tmp}/deepfm-spec.XXXXXX.json")"
trap 'rm -f "$spec"' EXIT
dfm_cluster_json >"$spec"

bin="$(command -v "${DEEPFM_BIN:-deepfm}")" || die "no deepfm program (put it on PATH or set DEEPFM_BIN)"
# Not exec: the trap removes the spec once the job is over. Ctrl-C reaches
# the launcher too (same process group), which stops every task.
"$bin" train --cluster_spec="$spec" --launch_prefix="$here/ssh_task.sh {host}" "$@"
