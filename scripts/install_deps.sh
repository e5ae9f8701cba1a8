#!/usr/bin/env bash
# Installs what the build and the tests need, and nothing when all is present.
# Idempotent: safe to run on every CI run and before every local job.
#
#   scripts/install_deps.sh           build + tests: also Slurm and munge (the
#                                     Slurm test's cluster), Node.js and the
#                                     Kubernetes manifest checks' node modules
#   scripts/install_deps.sh --build   only what compiling needs (the container)
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=0
[ "${1:-}" = "--build" ] && build_only=1

pkgs=(build-essential cmake pkg-config git
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
      libeigen3-dev libtbb-dev libgoogle-glog-dev libgflags-dev
      libgtest-dev libgmock-dev libbenchmark-dev python3
      nlohmann-json3-dev prometheus-cpp-dev libssl-dev openssl iproute2)
if [ "$build_only" -eq 0 ]; then
  pkgs+=(slurm-wlm munge procps)
  command -v node >/dev/null || pkgs+=(nodejs npm)
  # kubectl renders the Kubernetes manifests (its built-in kustomize); the
  # machine image has a current one. Debian's kubernetes-client is the
  # fallback (its kustomize is too old for replacements: the manifest test
  # then fails saying so).
  command -v kubectl >/dev/null || pkgs+=(kubernetes-client)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#pkgs[@]} packages present"
else
  echo "install_deps: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The manifest checks' node modules, pinned by package-lock.json.
if [ "$build_only" -eq 0 ]; then
  k8s=tests/deploy/k8s
  if ! cmp -s "$k8s/package-lock.json" "$k8s/node_modules/.package-lock.json.installed" 2>/dev/null; then
    echo "install_deps: npm ci in $k8s"
    (cd "$k8s" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$k8s/package-lock.json" "$k8s/node_modules/.package-lock.json.installed"
  fi
fi
