#!/usr/bin/env bash
# tools/run.sh: installs what is missing, builds musproxy (release) and runs it
# in the foreground with the shipped configuration etc/musproxy.yaml
# (explicit proxy on 127.0.0.1:3128, access log in var/access.log).
# Extra arguments go to musproxy (e.g. -d for debug logging). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release musproxy
exec ./build-release/musproxy -c etc/musproxy.yaml "$@"
