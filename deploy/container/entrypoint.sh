#!/usr/bin/env bash
# The image's entrypoint: runs `deepfm task`, which becomes a shard or a
# trainer as the cluster spec says, with the container's arguments as flags.
#
# Where the spec comes from, in order:
#   - TF_CONFIG, when set: Kubeflow's TFJob operator, Slurm or a person wrote it.
#   - DEEPFM_POD_ROLE=ps|worker (plain Kubernetes, deploy/kubernetes/plain):
#     built here from the pod's own facts. A shard is a StatefulSet pod, its
#     index the ordinal at the end of its host name (deepfm-ps-1 -> 1); a
#     trainer is a pod of an Indexed Job, its index JOB_COMPLETION_INDEX
#     (worker 0 is the chief). Every address is a stable DNS name of a
#     headless Service:
#       <DEEPFM_PS_STATEFULSET>-<i>.<DEEPFM_PS_SERVICE>.<POD_NAMESPACE>.svc:<DEEPFM_PORT>
#       <DEEPFM_WORKER_JOB>-<i>.<DEEPFM_WORKER_SERVICE>.<POD_NAMESPACE>.svc:<DEEPFM_PORT>
#     with DEEPFM_PS_NUM and DEEPFM_WORKER_NUM of each.
# Otherwise `deepfm task` reads --cluster_spec or the TF1 flags itself.
#
# DEEPFM_BIN (default: deepfm on PATH) is the program; DEEPFM_DEPLOY_LIB the
# folder of tf_config.sh (default: ../share/deepfm beside this file, as in
# the image, else ../../deploy/lib, as in the source tree).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
lib="${DEEPFM_DEPLOY_LIB:-}"
if [ -z "$lib" ]; then
  for lib in "$here/../share/deepfm" "$here/../lib"; do
    [ -f "$lib/tf_config.sh" ] && break
  done
fi
[ -f "$lib/tf_config.sh" ] || {
  echo "deepfm entrypoint: no tf_config.sh in $lib (set DEEPFM_DEPLOY_LIB)" >&2
  exit 2
}
# shellcheck source=deploy/lib/tf_config.sh
. "$lib/tf_config.sh"
bin="${DEEPFM_BIN:-deepfm}"

die() {
  echo "deepfm entrypoint: $*" >&2
  exit 2
}

# Pod facts -> TF_CONFIG, for plain Kubernetes.
plain_kubernetes_tf_config() {
  local role="$1" index ns port host i
  local ps_num="${DEEPFM_PS_NUM:-}" worker_num="${DEEPFM_WORKER_NUM:-}"
  [ -n "$ps_num" ] && [ -n "$worker_num" ] ||
    die "DEEPFM_PS_NUM (shards) and DEEPFM_WORKER_NUM (trainers) must be set"
  local ps_set="${DEEPFM_PS_STATEFULSET:-deepfm-ps}" ps_svc="${DEEPFM_PS_SERVICE:-deepfm-ps}"
  local worker_job="${DEEPFM_WORKER_JOB:-deepfm-worker}"
  local worker_svc="${DEEPFM_WORKER_SERVICE:-deepfm-workers}"
  port="${DEEPFM_PORT:-2222}"
  ns="${POD_NAMESPACE:+.$POD_NAMESPACE.svc}"
  case "$ps_num$worker_num$port" in *[!0-9]*) die "DEEPFM_PS_NUM, DEEPFM_WORKER_NUM and DEEPFM_PORT must be numbers" ;; esac
  case "$role" in
    ps)
      host="${HOSTNAME:-$(hostname)}"
      index="${host##*-}"
      [ "${host%-*}" = "$ps_set" ] && [ -n "$index" ] && [ -z "${index//[0-9]/}" ] ||
        die "host name '$host' is not a pod of StatefulSet $ps_set (<name>-<ordinal>)"
      [ "$index" -lt "$ps_num" ] || die "$host: ordinal $index, but DEEPFM_PS_NUM is $ps_num"
      ;;
    worker)
      index="${JOB_COMPLETION_INDEX:-}"
      [ -n "$index" ] || die "JOB_COMPLETION_INDEX is not set: the workers must be an Indexed Job"
      [ -z "${index//[0-9]/}" ] || die "JOB_COMPLETION_INDEX '$index' is not a number"
      [ "$index" -lt "$worker_num" ] || die "JOB_COMPLETION_INDEX $index, but DEEPFM_WORKER_NUM is $worker_num"
      ;;
    *) die "DEEPFM_POD_ROLE='$role': expected ps or worker" ;;
  esac
  DFM_PS=() DFM_WORKER=() DFM_CHIEF=()
  for ((i = 0; i < ps_num; i++)); do DFM_PS+=("$ps_set-$i.$ps_svc$ns:$port"); done
  for ((i = 0; i < worker_num; i++)); do DFM_WORKER+=("$worker_job-$i.$worker_svc$ns:$port"); done
  dfm_tf_config "$role" "$index"
}

args=("$@")
if [ -z "${TF_CONFIG:-}" ] && [ -n "${DEEPFM_POD_ROLE:-}" ]; then
  TF_CONFIG="$(plain_kubernetes_tf_config "$DEEPFM_POD_ROLE")"
  export TF_CONFIG
  # The chief tells the shards to stop once every trainer is done, so the
  # Job completes; the StatefulSet then restarts them idle until deleted.
  if [ "$DEEPFM_POD_ROLE" = worker ] && [ "$JOB_COMPLETION_INDEX" = 0 ]; then
    args+=(--shutdown_ps)
  fi
fi
exec "$bin" task "${args[@]}"
