#!/usr/bin/env bash
# Runs a real 2-shard, 2-worker job from a built image, each task started by
# the image's own entrypoint with the TF_CONFIG a TFJob would give it, as
# the image's user (10001), with the image's program and libraries: a check
# that the image works, for machines where `podman run` cannot (the tasks
# run chrooted into the mounted image, sharing this host's network, as
# `podman build --isolation=chroot` runs its steps). Not part of CI: the
# image takes about 15 minutes to build on two cores.
#
#   deploy/container/run_image_job.sh IMAGE DATA_DIR
#
# DATA_DIR holds train.csv and eval.csv (`deepfm gen-data --out DIR`). Prints
# the job's metrics.json and exits non-zero if the job failed. Needs root.
set -euo pipefail
image="$1"
data="$(cd "$2" && pwd)"
# A container made from the image (not started), mounted read-write, so the
# job's folders can be bound into it.
ctr="$(podman create "$image")"
mnt="$(podman mount "$ctr")"
work="$(mktemp -d /tmp/deepfm-image.XXXXXX)"
shared="$mnt/shared"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  umount "$shared/data" "$shared/jobs" 2>/dev/null || true
  rmdir "$shared/data" "$shared/jobs" "$shared" 2>/dev/null || true
  podman unmount "$ctr" >/dev/null || true
  podman rm "$ctr" >/dev/null || true
}
trap cleanup EXIT
mkdir -p "$shared/data" "$shared/jobs" "$work/jobs"
mount --bind "$data" "$shared/data"
mount --bind "$work/jobs" "$shared/jobs"
chown 10001 "$work/jobs"
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$work/jobs/token")
chown 10001 "$work/jobs/token"

base=$((20000 + RANDOM % 12760))  # below the kernel's ephemeral ports
cluster="{\"ps\": [\"127.0.0.1:$base\", \"127.0.0.1:$((base + 1))\"], \"worker\": [\"127.0.0.1:$((base + 2))\", \"127.0.0.1:$((base + 3))\"]}"
flags=(--checkpoint=/shared/jobs/run --data_location=/shared/data --auth_token_file=/shared/jobs/token
  --hidden_units=64,32 --batch_size=256 --learning_rate=0.002 --seed=7 --staleness=0)
task() { # TYPE INDEX extra flags...
  local type="$1" index="$2"
  shift 2
  chroot --userspec=10001:10001 "$mnt" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin \
    HOME=/nonexistent TF_CONFIG="{\"cluster\": $cluster, \"task\": {\"type\": \"$type\", \"index\": $index}}" \
    /usr/local/bin/deepfm-entrypoint "${flags[@]}" "$@"
}
start=$(date +%s.%N)
task ps 0 >"$work/ps0.log" 2>&1 &
pids+=($!)
task ps 1 >"$work/ps1.log" 2>&1 &
pids+=($!)
task worker 1 >"$work/worker1.log" 2>&1 &
pids+=($!)
rc=0
task worker 0 --shutdown_ps >"$work/worker0.log" 2>&1 || rc=$?
for p in "${pids[@]}"; do wait "$p" || rc=$((rc ? rc : $?)); done
pids=()
echo "image $image: 2x2 job exited $rc in $(python3 -c "import time; print(f'{time.time() - $start:.1f}')") s"
cat "$work/jobs/run/metrics.json" 2>/dev/null || for f in "$work"/*.log; do echo "== $f"; tail -n 20 "$f"; done
[ "$rc" -eq 0 ]
