#!/usr/bin/env bash
# tools/bench/features_ab.sh [ROUNDS]: interleaved A/B of what the identity
# and policy features cost per request. Three single-worker musproxy
# instances run side by side against one origin (mp-origin, /size/1024):
#   plain   no policy, empty map
#   policy  the shipped example policy (musproxy-variant.sh policy)
#   map     100 000 mapped VPN users + the client (musproxy-variant.sh map)
# and wrk (1 thread, 50 keep-alive connections, 5 s) hits them in turn,
# ROUNDS times (default 5), so slow phases of a shared machine hit all
# three. Prints req/s and proxy CPU µs per request (user+sys of the musproxy
# process), then the medians and the ratios to plain. Loopback only.
# Needs build-release (tools/bench.sh builds it) and build/mp-origin.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$REPO/build-release}
ORIGIN=${ORIGIN_BIN:-$REPO/build/mp-origin}
ROUNDS=${1:-5}
W=$(mktemp -d /tmp/musproxy-ab.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
bg() { setsid "$@" >>"$W/log" 2>&1 </dev/null & PIDS+=("$!"); }

OPORT=$(free_port)
bg "$ORIGIN" --listen "127.0.0.1:$OPORT"
declare -A PORT
for v in plain policy map; do PORT[$v]=$(free_port); done
mkdir -p "$W/conf"
render() { sed -e "s|@PORT@|$2|g" -e "s|@WORK@|$W|g" -e "s|@ORIGIN_PORT@|$OPORT|g" \
               -e "s|@ACCESS_LOG@|$W/$1-access.log|g" "$REPO/tools/bench/conf/$1.yaml" >"$W/conf/$1.yaml"; }
render musproxy "${PORT[plain]}"
render musproxy-policy "${PORT[policy]}"
render musproxy-map "${PORT[map]}"
bg "$B/musproxy" -c "$W/conf/musproxy.yaml"
bg "$REPO/tools/bench/musproxy-variant.sh" policy "$B" "$W/conf" "$W"
bg "$REPO/tools/bench/musproxy-variant.sh" map "$B" "$W/conf" "$W"
for _ in $(seq 300); do grep -q "map holds 100001" "$W/log" && break; sleep 0.1; done
grep -q "map holds 100001" "$W/log" || { echo "the map did not load"; cat "$W/log"; exit 1; }
declare -A PID
PID[plain]=$(pgrep -f "musproxy -c $W/conf/musproxy.yaml")
PID[policy]=$(pgrep -f "musproxy -c $W/conf/musproxy-policy.yaml")
PID[map]=$(pgrep -f "musproxy -c $W/conf/musproxy-map.yaml")
cat >"$W/fwd.lua" <<LUA
wrk.path = "http://127.0.0.1:$OPORT/size/1024"
wrk.headers["Host"] = "127.0.0.1:$OPORT"
LUA
source "$REPO/tools/bench/ab_lib.sh"
ab_rounds "$ROUNDS" "$W/results" "$W/fwd.lua" plain policy map
ab_summary "$W/results" plain policy map
