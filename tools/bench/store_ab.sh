#!/usr/bin/env bash
# tools/bench/store_ab.sh [ROUNDS]: what the transaction store costs the
# proxy, in one run. Two single-worker musproxy instances of the same build
# run side by side against one origin (mp-origin, /size/1024), identical but
# for the store:
#   off  store.path: off
#   on   store.path: a file of the run (writer thread, rollups, the
#        scheduled reports' thread), the default everywhere else
# wrk (1 thread, 50 keep-alive connections, 5 s) hits them in turn, ROUNDS
# times (default 7), so slow phases of a shared machine hit both. Prints
# req/s and musproxy CPU µs per request (user+sys of the process: every
# thread, the store's writer included), the medians and the ratios to off;
# then the store's counters (every request written, none dropped) and each
# thread's CPU per request (where the difference goes). Access
# log on in both (as in production). Loopback only. Needs build-release
# (tools/bench.sh builds it) and build/mp-origin.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$REPO/build-release}
ORIGIN=${ORIGIN_BIN:-$REPO/build/mp-origin}
ROUNDS=${1:-7}
W=$(mktemp -d /tmp/musproxy-store-ab.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
bg() { setsid "$@" >>"$W/log" 2>&1 </dev/null & PIDS+=("$!"); }
[[ -x $B/musproxy && -x $ORIGIN ]] || { echo "needs $B/musproxy and $ORIGIN"; exit 1; }

OPORT=$(free_port)
bg "$ORIGIN" --listen "127.0.0.1:$OPORT"
declare -A PORT PID
mkdir -p "$W/conf" "$W/run-on" "$W/run-off"
for v in off on; do
    PORT[$v]=$(free_port)
    sed -e "s|@PORT@|${PORT[$v]}|g" -e "s|@WORK@/run|$W/run-$v|g" -e "s|@ORIGIN_PORT@|$OPORT|g" \
        -e "s|@ACCESS_LOG@|$W/$v-access.log|g" "$REPO/tools/bench/conf/musproxy.yaml" >"$W/conf/$v.yaml"
    printf 'admin: { enabled: false }\n' >>"$W/conf/$v.yaml"
done
printf 'store: { path: off }\n' >>"$W/conf/off.yaml"
printf 'store: { path: %s }\n' "$W/store.db" >>"$W/conf/on.yaml"
for v in off on; do
    bg "$B/musproxy" -c "$W/conf/$v.yaml"
    PID[$v]=$!
done
for v in off on; do
    for _ in $(seq 100); do curl -s -o /dev/null -x "http://127.0.0.1:${PORT[$v]}" \
        "http://127.0.0.1:$OPORT/size/1024" && break; sleep 0.1; done
done
store_line() {   # store_line VARIANT: the store's counters from musctl status
    "$B/musctl" status --json --socket "$W/run-$1/musproxy.sock" | python3 -c 'import json,sys
s=json.load(sys.stdin)["store"]
print("none" if s is None else "open %s submitted %d written %d queued %d dropped %d lost %d" % (
    s["open"], s["submitted"], s["written"], s["queued"], s["dropped"], s["lost"]))'
}
[[ $(store_line on) == "open True "* && $(store_line off) == none ]] ||
    { echo "store on: $(store_line on); off: $(store_line off)"; cat "$W/log"; exit 1; }
cat >"$W/fwd.lua" <<LUA
wrk.path = "http://127.0.0.1:$OPORT/size/1024"
wrk.headers["Host"] = "127.0.0.1:$OPORT"
LUA
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
source "$REPO/tools/bench/ab_lib.sh"
ab_rounds "$ROUNDS" "$W/results" "$W/fwd.lua" off on
ab_summary "$W/results" off on
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
sleep 1
echo "store (on): $(store_line on)"
# where the difference goes: each thread's CPU over the whole run (warm-up
# included)
# per request the proxy served (its access log's lines)
for v in off on; do
    n=$(wc -l <"$W/$v-access.log")
    python3 - "${PID[$v]}" "$n" "$v" <<'PY'
import collections, os, sys
pid, n, v = sys.argv[1], int(sys.argv[2]), sys.argv[3]
hz = os.sysconf("SC_CLK_TCK")
t = collections.Counter()
for tid in os.listdir(f"/proc/{pid}/task"):
    comm = open(f"/proc/{pid}/task/{tid}/comm").read().strip()
    f = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
    t[comm] += int(f[11]) + int(f[12])
print(f"threads ({v}), CPU µs per request over the run:",
      ", ".join(f"{c} {ticks * 1e6 / hz / n:.2f}" for c, ticks in t.most_common() if ticks))
PY
done
