#!/usr/bin/env bash
# tools/run.sh: installs what is missing, builds musproxy (release) and runs it
# in the foreground with the shipped configuration etc/musproxy.yaml
# (explicit proxy on 127.0.0.1:3128, access log in var/access.log), after
# importing the sample category lists into var/categories.db if missing.
# Extra arguments go to musproxy (e.g. -d for debug logging). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
[ -f build-release/build.ninja ] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release musproxy musctl mus-headend
# The shipped policy names list categories: give it the synthetic sample
# lists the first time (import the real UT1 lists with musctl the same way).
if [ ! -f var/categories.db ]; then
  mkdir -p var
  ./build-release/musctl categories import etc/categories --db var/categories.db
fi
exec ./build-release/musproxy -c etc/musproxy.yaml "$@"
