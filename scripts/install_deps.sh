#!/usr/bin/env bash
# Installs the Debian packages the build needs, and nothing when all are present.
# Idempotent: safe to run on every CI run and before every local job.
set -euo pipefail
pkgs=(build-essential cmake pkg-config git
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
      libeigen3-dev libtbb-dev libgoogle-glog-dev libgflags-dev
      libgtest-dev libgmock-dev libbenchmark-dev python3
      nlohmann-json3-dev openssl iproute2)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all ${#pkgs[@]} packages present"
  exit 0
fi
echo "install_deps: installing ${missing[*]}"
sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo_cmd apt-get update -qq
$sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}"
