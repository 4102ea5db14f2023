#!/usr/bin/env bash
# Installs every Debian package that building, testing and comparing tinycached needs.
# Skips what is already present; safe to run repeatedly. Needs root (or sudo).
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev
  libevent-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  memcached libmemcached-tools nutcracker python3 python3-pymemcache python3-pylibmc sasl2-bin gnuplot-nox procps
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Packaged daemons (memcached, nutcracker) must not start a system service on install: the
# tests and experiments start their own servers on free loopback ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
  $SUDO chmod +x /usr/sbin/policy-rc.d
  trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
