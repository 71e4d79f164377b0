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
# Needs build-release (tools/bench.sh builds it) and build/tests/mp-origin.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
B=${BUILD:-$REPO/build-release}
ORIGIN=${ORIGIN_BIN:-$REPO/build/tests/mp-origin}
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
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
: >"$W/results"
for r in $(seq "$ROUNDS"); do
    for v in plain policy map; do
        c0=$(cpu "${PID[$v]}")
        out=$(wrk -t1 -c50 -d5s -s "$W/fwd.lua" "http://127.0.0.1:${PORT[$v]}")
        c1=$(cpu "${PID[$v]}")
        rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
        n=$(awk '/requests in/{print $1}' <<<"$out")
        us=$(python3 -c "print(round(($c1 - $c0) * 1e6 / $(getconf CLK_TCK) / $n, 2))")
        echo "round $r $v req/s $rps cpu_us/req $us" | tee -a "$W/results"
    done
done
python3 - "$W/results" <<'PY'
import statistics, sys
d = {}
for line in open(sys.argv[1]):
    f = line.split()
    d.setdefault(f[2], []).append((float(f[4]), float(f[6])))
m = {v: (statistics.median(x[0] for x in r), statistics.median(x[1] for x in r)) for v, r in d.items()}
print("\n| variant | req/s (median) | x plain | proxy CPU µs/req (median) | x plain |\n|---|---|---|---|---|")
for v in ("plain", "policy", "map"):
    print(f"| {v} | {m[v][0]:,.0f} | {m[v][0] / m['plain'][0]:.3f} | {m[v][1]:.2f} | {m[v][1] / m['plain'][1]:.3f} |")
PY
