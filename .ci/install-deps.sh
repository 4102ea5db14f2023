#!/usr/bin/env bash
# Installs every Debian package that building, testing and comparing tinycached needs, on a
# minimal Debian 12. Skips what is already present; safe to run repeatedly. Runs as root (no
# sudo needed), or as a user with sudo.
set -euo pipefail

pkgs=(
  # build
  build-essential cmake ninja-build pkg-config clang libclang-rt-14-dev clang-format
  libevent-dev libabsl-dev libgtest-dev libgmock-dev libbenchmark-dev
  # what the tests and experiments start or load: memcached 1.6.18 for comparison,
  # memccapable, nutcracker (twemproxy), the Python clients, saslpasswd2 and SASL's PLAIN
  # plugin (libsasl2-modules: only a Recommends of libsasl2), ps, taskset, gnuplot, and git
  # (experiments stamp results with the commit)
  memcached libmemcached-tools nutcracker python3 python3-pymemcache python3-pylibmc
  sasl2-bin libsasl2-modules procps util-linux gnuplot-nox git
)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps.sh: run as root, or install sudo" >&2; exit 1; }
  as_root=(sudo)
fi
# Packaged daemons (memcached, nutcracker) must not start a system service on install: the
# tests and experiments start their own servers on free loopback ports.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | "${as_root[@]}" tee /usr/sbin/policy-rc.d >/dev/null
  "${as_root[@]}" chmod +x /usr/sbin/policy-rc.d
  trap '"${as_root[@]}" rm -f /usr/sbin/policy-rc.d' EXIT
fi
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
