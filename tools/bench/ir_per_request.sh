#!/usr/bin/env bash
# tools/bench/ir_per_request.sh BIN [EXTRA_YAML]: user-space instructions
# musproxy BIN executes per proxied request, counted by valgrind's callgrind
# (deterministic: unlike CPU time it does not move with the load of a shared
# machine; the kernel's share of a request is not in it). One worker,
# tools/bench/conf/musproxy.yaml (+ EXTRA_YAML appended), access log on, a
# keep-alive client sending GET /size/1024 to mp-origin. Two runs, of N1
# and N2 requests (default 500 and 2500); the difference over N2 - N1 cancels
# start-up and shutdown. Prints "instructions/request N". Loopback only.
# Needs valgrind, python3 and build/mp-origin (ORIGIN_BIN). IR_KEEP=PREFIX keeps
# the callgrind files as PREFIX.N1 and PREFIX.N2 (callgrind_annotate them).
#   tools/bench/ir_per_request.sh /tmp/musproxy-ab/build-<commit>/musproxy
# BIN "haproxy" counts Debian's HAProxy instead, with the harness's
# tools/bench/conf/haproxy.cfg (one thread), driven the same way.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$1 EXTRA=${2:-}
ORIGIN=${ORIGIN_BIN:-$REPO/build/mp-origin}
N1=${N1:-500} N2=${N2:-2500}
command -v valgrind >/dev/null || { echo "SKIP: valgrind is not installed"; exit 77; }
[[ ( $BIN == haproxy || -x $BIN ) && -x $ORIGIN ]] || { echo "SKIP: $BIN or $ORIGIN not built"; exit 77; }
[[ -z $EXTRA || $EXTRA == /* ]] || EXTRA=$PWD/$EXTRA
if [[ $BIN == haproxy ]]; then
    command -v haproxy >/dev/null || { echo "SKIP: haproxy is not installed"; exit 77; }
else
    [[ $BIN == /* ]] || BIN=$PWD/$BIN
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# count N: prints the total instructions of one run with N requests
count() {
    local w op pp opid vpid
    w=$(mktemp -d /tmp/musproxy-ir.XXXXXX)
    mkdir -p "$w/run"
    op=$(free_port) pp=$(free_port)
    setsid "$ORIGIN" --listen "127.0.0.1:$op" >/dev/null 2>&1 </dev/null &
    opid=$!
    local conf=musproxy.yaml cmd
    [[ $BIN == haproxy ]] && conf=haproxy.cfg
    sed -e "s|@PORT@|$pp|g" -e "s|@WORK@|$w|g" -e "s|@ORIGIN_PORT@|$op|g" \
        -e "s|@ACCESS_LOG@|$w/access.log|g" "$REPO/tools/bench/conf/$conf" >"$w/$conf"
    [[ -n $EXTRA ]] && cat "$EXTRA" >>"$w/$conf"
    if [[ $BIN == haproxy ]]; then cmd=(haproxy -db -f "$w/$conf"); else cmd=("$BIN" -c "$w/$conf"); fi
    (cd "$w" && exec setsid valgrind --tool=callgrind --callgrind-out-file="$w/cg.out" \
        "${cmd[@]}" >"$w/vg.log" 2>&1 </dev/null) &
    vpid=$!
    for _ in $(seq 300); do
        curl -s -o /dev/null -x "127.0.0.1:$pp" "http://127.0.0.1:$op/size/1024" && break
        sleep 0.2
    done
    python3 - "$pp" "$op" "$1" <<'PY'
import socket, sys
pp, op, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", pp))
req = ("GET http://127.0.0.1:%s/size/1024 HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
       "User-Agent: ir\r\n\r\n" % (op, op)).encode()
buf = b""
for _ in range(n):
    s.sendall(req)
    while True:   # one response: its head and 1024 body bytes
        h = buf.find(b"\r\n\r\n")
        if h >= 0 and len(buf) >= h + 4 + 1024:
            buf = buf[h + 4 + 1024:]
            break
        d = s.recv(65536)
        if not d:
            sys.exit("the proxy closed the connection")
        buf += d
PY
    sleep 0.5
    kill -TERM "$vpid" 2>/dev/null; wait "$vpid" 2>/dev/null || true
    kill "$opid" 2>/dev/null || true
    [[ -n ${IR_KEEP:-} ]] && cp "$w/cg.out" "$IR_KEEP.$1"   # for callgrind_annotate
    awk '/^(summary|totals):/ {print $2; exit}' "$w"/cg.out*
    rm -rf "$w"
}
a=$(count "$N1") b=$(count "$N2")
echo "instructions/request $(( (b - a) / (N2 - N1) ))"
