#!/usr/bin/env bash
# tools/setup.sh: installs every Debian 12 package musproxy needs to build, run,
# test and benchmark. Idempotent; needs root (or sudo). Runs `apt-get update`
# first on every machine where a package is missing. It does not build anything.
set -euo pipefail

PKGS=(
  # build
  build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
  # libraries
  libssl-dev libc-ares-dev libyaml-dev libjansson-dev libpcre2-dev
  libsqlite3-dev libmicrohttpd-dev libcap-dev libsystemd-dev libpq-dev
  # tests
  libcriterion-dev libcurl4-openssl-dev curl openssl nginx-light chromium
  iproute2 procps psmisc python3 sqlite3 ocserv openconnect gnutls-bin
  nftables tshark python3-pacparser prometheus freeradius-utils libnss3-tools
  strongswan-swanctl strongswan-charon libcharon-extra-plugins
  # a clock a day ahead for the scheduled reports (tests/e2e/admin_ops.sh)
  faketime
  # the PostgreSQL store of a group of proxies (tests/e2e/pgstore.sh runs a server)
  postgresql
  # the Debian package test (tests/e2e/deb.sh)
  debhelper fakeroot lintian
  # benchmark
  wrk squid tinyproxy haproxy trafficserver util-linux
)

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update
  # Keep the daemons the packages ship (nginx, squid, tinyproxy, haproxy,
  # trafficserver) from being
  # started by their postinst: tests and the benchmark start their own.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 \
    install -y --no-install-recommends "${missing[@]}"
fi
echo "setup: all packages present"
