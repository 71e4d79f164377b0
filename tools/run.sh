#!/usr/bin/env bash
# tools/run.sh: installs what is missing, builds musproxy (release) and runs it
# in the foreground with the shipped configuration etc/musproxy.yaml
# (explicit proxy on 127.0.0.1:3128, access log in var/access.log), after
# importing the sample category lists into var/categories.db if missing, and
# says how to create the admin UI's account when etc/admin.passwd is missing.
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
# The admin UI (http://127.0.0.1:8080/) needs an account; no default password.
if [ ! -f etc/admin.passwd ]; then
  echo "run.sh: no admin account yet: the admin UI stays off until you create one with"
  echo "          build-release/musctl passwd admin --file etc/admin.passwd"
  echo "        and restart (tools/run.sh); then open http://127.0.0.1:8080/"
fi
exec ./build-release/musproxy -c etc/musproxy.yaml "$@"
