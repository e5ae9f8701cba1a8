#!/usr/bin/env bash
# The image's entrypoint (deploy/container/entrypoint.sh) with a pod's
# environment, as plain Kubernetes gives it: the TF_CONFIG it builds must be
# the one `deepfm task --dry_run` accepts, naming this pod; a pod it cannot
# place is refused with a message saying why; a TF_CONFIG already given (a
# TFJob's) passes through untouched.
#   usage: entrypoint_test.sh DEEPFM_BIN REPO_ROOT
set -uo pipefail
bin="$1"
ep="$2/deploy/container/entrypoint.sh"
passed=0
failures=0
ok() {
  passed=$((passed + 1))
}
bad() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
pod() { # env assignments... -> runs the entrypoint with --dry_run in that environment only
  env -i PATH="$PATH" DEEPFM_BIN="$bin" DEEPFM_PS_NUM=2 DEEPFM_WORKER_NUM=3 POD_NAMESPACE=ml "$@" \
    "$ep" --checkpoint=/shared/job --dry_run 2>&1
}
want_cluster='{"ps":["deepfm-ps-0.deepfm-ps.ml.svc:2222","deepfm-ps-1.deepfm-ps.ml.svc:2222"],"worker":["deepfm-worker-0.deepfm-workers.ml.svc:2222","deepfm-worker-1.deepfm-workers.ml.svc:2222","deepfm-worker-2.deepfm-workers.ml.svc:2222"]}'

out="$(pod DEEPFM_POD_ROLE=ps HOSTNAME=deepfm-ps-1)"
[ "$out" = "{\"cluster\":$want_cluster,\"task\":{\"index\":1,\"type\":\"ps\"}}" ] && ok || bad "shard pod deepfm-ps-1: $out"
out="$(pod DEEPFM_POD_ROLE=worker HOSTNAME=deepfm-worker-0 JOB_COMPLETION_INDEX=0)"
[ "$out" = "{\"cluster\":$want_cluster,\"task\":{\"index\":0,\"type\":\"worker\"}}" ] && ok || bad "worker pod index 0: $out"
out="$(pod DEEPFM_POD_ROLE=worker JOB_COMPLETION_INDEX=2 DEEPFM_PORT=3000 DEEPFM_WORKER_JOB=trainers DEEPFM_WORKER_SERVICE=t)"
case "$out" in *'"trainers-2.t.ml.svc:3000"'*'"task":{"index":2,"type":"worker"}'*) ok ;; *) bad "renamed Job, port 3000: $out" ;; esac
# The chief (index 0) stops the shards when done; another worker does not.
args0="$(env -i PATH="$PATH" DEEPFM_BIN=echo DEEPFM_PS_NUM=1 DEEPFM_WORKER_NUM=2 DEEPFM_POD_ROLE=worker JOB_COMPLETION_INDEX=0 "$ep" --x)"
args1="$(env -i PATH="$PATH" DEEPFM_BIN=echo DEEPFM_PS_NUM=1 DEEPFM_WORKER_NUM=2 DEEPFM_POD_ROLE=worker JOB_COMPLETION_INDEX=1 "$ep" --x)"
[ "$args0" = "task --x --shutdown_ps" ] && [ "$args1" = "task --x" ] && ok || bad "chief args '$args0', worker 1 args '$args1'"

# Pods it cannot place.
for case in "DEEPFM_POD_ROLE=ps HOSTNAME=deepfm-ps-2|ordinal 2, but DEEPFM_PS_NUM is 2" \
  "DEEPFM_POD_ROLE=ps HOSTNAME=web-0|is not a pod of StatefulSet deepfm-ps" \
  "DEEPFM_POD_ROLE=ps HOSTNAME=deepfm-ps-x|is not a pod of StatefulSet deepfm-ps" \
  "DEEPFM_POD_ROLE=worker|JOB_COMPLETION_INDEX is not set" \
  "DEEPFM_POD_ROLE=worker JOB_COMPLETION_INDEX=3|JOB_COMPLETION_INDEX 3, but DEEPFM_WORKER_NUM is 3" \
  "DEEPFM_POD_ROLE=chief JOB_COMPLETION_INDEX=0|expected ps or worker" \
  "DEEPFM_POD_ROLE=ps HOSTNAME=deepfm-ps-0 DEEPFM_PORT=22x|must be numbers"; do
  IFS=' ' read -ra vars <<<"${case%%|*}"
  out="$(pod "${vars[@]}")"
  rc=$?
  [ "$rc" -eq 2 ] && [[ "$out" == *"${case#*|}"* ]] && ok || bad "${case%%|*}: exit $rc, '$out'"
done

# A TFJob's TF_CONFIG wins over pod facts and reaches the program as is.
tf='{"cluster": {"ps": ["a:1"], "chief": ["b:2"]}, "task": {"type": "chief", "index": 0}, "environment": "cloud"}'
out="$(pod TF_CONFIG="$tf" DEEPFM_POD_ROLE=ps HOSTNAME=deepfm-ps-0)"
[ "$out" = '{"cluster":{"chief":["b:2"],"ps":["a:1"]},"task":{"index":0,"type":"chief"}}' ] && ok || bad "TFJob TF_CONFIG: $out"

# The shared library refuses an address that would break the JSON.
. "$2/deploy/lib/tf_config.sh"
out="$(dfm_json_list 'a:1' 'b"c:2' 2>&1)" && bad "a quote in an address was accepted: $out" || ok
DFM_PS=("a:1") DFM_WORKER=("b:2") DFM_CHIEF=()
out="$(dfm_tf_config ps x 2>&1)" && bad "index x accepted: $out" || ok
[ "$(dfm_quote "it's")" = "'it'\\''s'" ] && ok || bad "dfm_quote: $(dfm_quote "it's")"

echo "entrypoint_test: $passed passed, $failures failed"
[ "$failures" -eq 0 ]
