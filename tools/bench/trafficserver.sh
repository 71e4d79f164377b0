#!/usr/bin/env bash
# tools/bench/trafficserver.sh PORT WORK: starts Apache Traffic Server (Debian's
# trafficserver package) as a forward-proxy peer for the harness, in the
# foreground. Debian's /etc/trafficserver is copied into WORK/ats/etc and the
# three files of conf/trafficserver/ (one exec thread, cache and logging off,
# forward proxying, CONNECT to any port, runs as the invoking user) are
# rendered over it with @PORT@ and @WORK@. See conf/trafficserver/README.md.
# Loopback only; it does not touch /etc or the system's trafficserver service.
set -euo pipefail
port=$1 work=$2
here=$(cd "$(dirname "$0")" && pwd)
etc=$work/ats/etc
rm -rf "$work/ats"
mkdir -p "$etc" "$work/ats/run" "$work/ats/log" "$work/ats/cache"
cp -r /etc/trafficserver/. "$etc/"
for f in records.config ip_allow.yaml storage.config; do
    sed -e "s|@PORT@|$port|g" -e "s|@WORK@|$work|g" "$here/conf/trafficserver/$f" >"$etc/$f"
done
exec env PROXY_CONFIG_CONFIG_DIR="$etc" traffic_server
