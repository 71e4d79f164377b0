#!/usr/bin/env bash
# tools/bench-radius.sh: RADIUS accounting into musproxy's decisions, on
# loopback, while wrk keeps musproxy serving HTTP traffic. Two paths:
#   VIA=headend (default): radclient -> a real mus-headend with its RADIUS
#     listener -> MUS/1 over TLS -> musproxy's map;
#   VIA=proxy: radclient -> musproxy's own RADIUS listener (radius: section,
#     on the MUS thread) -> its map.
#   1. sustained throughput: freeradius-utils' radclient sends N distinct
#      Accounting-Request Starts (one user and Framed-IP-Address each),
#      RADCLIENTS streams at once (as several NASes), each running radclient
#      over its files of CHUNK requests one after the other, PARALLEL in
#      flight (-p; radclient sends PARALLEL, then waits for all their
#      answers). radclient's CPU per packet grows with its file (about 100 us
#      at 1000 to 5000 requests, 280 us at 20000): hence the chunks. Counted as applied: the entries of
#      musproxy's own map (musctl status --json, read every second), not the
#      answers. Prints the rate over the whole run and per second (the
#      slowest and median second of the steady part), the CPU per event of
#      each process (radclient, mus-headend, musproxy, wrk, the origin), the
#      HTTP requests musproxy served meanwhile (its access log) and the load
#      average; target >= 5000 events/s sustained for 20 s or more.
#   2. latency: for SAMPLES users, one Start (sent from Python) and then
#      requests from that user's address to a URL the remote policy blocks
#      (served while the address is unknown), as fast as they are answered:
#      the time from the Start to the first 403 (the first decision made with
#      that identity); target p99 < 50 ms.
#
#   tools/bench-radius.sh   # VIA=headend N=150000 RADCLIENTS=4 CHUNK=2500 PARALLEL=100 SAMPLES=200
#                           # WRK_CONNS=20 WRK_DELAY_MS=0 SAMPLES_OUT=FILE (keeps the per-second samples)
# PARALLEL stays below about 150: radclient's socket keeps the default
# receive buffer (212992 bytes, about 160 answers); beyond it answers are
# dropped and that radclient stalls for its 1 s timeout.
# Needs build-release (or BUILD=DIR) with musproxy, musctl and mus-headend,
# build/mp-origin (or ORIGIN_BIN), radclient, wrk, python3, openssl, time.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$REPO/build-release}
[[ -d $B ]] && B=$(cd "$B" && pwd)
ORIGIN=${ORIGIN_BIN:-$REPO/build/mp-origin}
VIA=${VIA:-headend} N=${N:-150000} PARALLEL=${PARALLEL:-100} SAMPLES=${SAMPLES:-200}
RADCLIENTS=${RADCLIENTS:-4} CHUNK=${CHUNK:-2500} WRK_CONNS=${WRK_CONNS:-20} WRK_DELAY_MS=${WRK_DELAY_MS:-0}
[[ $VIA == headend || $VIA == proxy ]] || { echo "VIA is headend or proxy"; exit 2; }
for t in radclient wrk python3 openssl /usr/bin/time; do
    command -v $t >/dev/null || { echo "SKIP: $t is not installed"; exit 77; }
done
for b in "$B/musproxy" "$B/mus-headend" "$B/musctl" "$ORIGIN"; do
    [[ -x $b ]] || { echo "SKIP: $b not built"; exit 77; }
done
W=$(mktemp -d /tmp/musproxy-radius.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done; sleep 0.3; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c "import socket; s=socket.socket(socket.AF_INET, socket.$1); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
bg() { setsid "$@" >>"$W/log" 2>&1 </dev/null & PIDS+=("$!"); }

SECRET=bench-radius-secret
OPORT=$(free_port SOCK_STREAM) PPORT=$(free_port SOCK_STREAM) HPORT=$(free_port SOCK_STREAM)
RPORT=$(free_port SOCK_DGRAM)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$W/key.pem" -out "$W/ca.pem" -subj /CN=127.0.0.1 -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
head -c 24 /dev/urandom | base64 >"$W/mus.secret"
printf '127.0.0.1 %s\n' "$SECRET" >"$W/radius-clients"
chmod 600 "$W/mus.secret" "$W/radius-clients" "$W/key.pem"
bg "$ORIGIN" --listen "127.0.0.1:$OPORT"
if [[ $VIA == headend ]]; then
    bg "$B/mus-headend" --listen "127.0.0.1:$HPORT" --cert "$W/ca.pem" --key "$W/key.pem" \
        --password-file "$W/mus.secret" --radius "127.0.0.1:$RPORT" --radius-clients "$W/radius-clients" \
        --journal 200000 --kdf-iter 10000 --log-level warn
    FEED="mus:
  control_socket: $W/musproxy.sock
  remote_users: headend
  reconnect_interval: 1s
  headends:
    - { name: radius-bench, addresses: [\"127.0.0.1:$HPORT\"], ca: $W/ca.pem, password_file: $W/mus.secret }"
else
    FEED="mus:
  control_socket: $W/musproxy.sock
  remote_users: headend
radius:
  listen: [\"127.0.0.1:$RPORT\"]
  clients_file: $W/radius-clients
  name: radius-bench"
fi
cat >"$W/musproxy.yaml" <<EOF
proxy:
  listen: [ { address: "127.0.0.1:$PPORT", mode: explicit } ]
  workers: 1
  clients: [127.0.0.0/8]
  connect_ports: [443]
  max_connections: 10000
  access_log: $W/access.log
$FEED
store: { path: off }
admin: { enabled: false }
identity_profiles:
  - { name: vpn, location: remote }
access_policies:
  - { name: vpn, profiles: [vpn], categories: { blocked: block } }
  - { name: default, default: allow }
custom_categories:
  - { name: blocked, url_prefixes: ["http://127.0.0.1:$OPORT/size/7"] }
log_level: warn
EOF
sleep 0.5
(cd "$W" && exec setsid "$B/musproxy" -c "$W/musproxy.yaml" >>"$W/log" 2>&1 </dev/null) &
PIDS+=("$!")
# "ENTRIES READY": the map's entries, and whether the feed is up (awk on
# musctl's text: a python3 per sample costs seconds on a loaded machine)
entries() { "$B/musctl" status --socket "$W/musproxy.sock" 2>/dev/null | awk '
    /^Map: / { n = $2 } / established since | listening on / { up = 1 }
    END { print (n == "" ? 0 : n), (up ? "ready" : "down") }'; }
for _ in $(seq 100); do [[ $(entries) == *ready ]] && break; sleep 0.1; done
[[ $(entries) == *ready ]] || { echo "FAIL: musproxy's feed is not up"; cat "$W/log"; exit 1; }

# traffic while the events arrive: the proxy serving (1 KiB, WRK_CONNS connections)
cat >"$W/fwd.lua" <<LUA
wrk.path = "http://127.0.0.1:$OPORT/size/1024"
wrk.headers["Host"] = "127.0.0.1:$OPORT"
LUA
# WRK_DELAY_MS > 0: each connection waits that long between requests (a
# steady load, at most WRK_CONNS * 1000 / WRK_DELAY_MS requests/s), rather
# than as fast as the proxy answers (which takes every idle cycle)
[[ $WRK_DELAY_MS -gt 0 ]] && echo "function delay() return $WRK_DELAY_MS end" >>"$W/fwd.lua"
bg wrk -t1 -c"$WRK_CONNS" -d900s -s "$W/fwd.lua" "http://127.0.0.1:$PPORT"
WRK_PID=${PIDS[-1]}
sleep 1

# 1. sustained throughput
python3 - "$W/part" "$N" "$RADCLIENTS" "$CHUNK" <<'PY'
import sys
base, n, k, chunk = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
files = {}
for i in range(n):
    j = i % k                      # the stream (a NAS), then its chunk
    key = "%s.%d.%06d" % (base, j, (i // k) // chunk)
    f = files.get(key) or files.setdefault(key, open(key, "w"))
    ip = "10.%d.%d.%d" % (100 + (i >> 16), (i >> 8) & 255, i & 255)
    f.write('Acct-Status-Type = Start\nUser-Name = "user%d@bench"\nFramed-IP-Address = %s\n'
            'Acct-Session-Id = "s%d"\nNAS-IP-Address = 192.0.2.1\nClass = "OU=staff;"\n\n'
            % (i, ip, i))
for f in files.values():
    f.close()
PY
MP_PID=$(pgrep -f "musproxy -c $W/musproxy.yaml")
HE_PID=$MP_PID
[[ $VIA == headend ]] && HE_PID=$(pgrep -f "mus-headend --listen 127.0.0.1:$HPORT")
OR_PID=$(pgrep -f -- "--listen 127.0.0.1:$OPORT" | head -1)
WRK_REAL=$(pgrep -f "wrk -t1 -c$WRK_CONNS -d900s -s $W/fwd.lua")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
he0=$(ticks "$HE_PID") mp0=$(ticks "$MP_PID") wk0=$(ticks "$WRK_REAL") or0=$(ticks "$OR_PID")
http0=$(wc -l <"$W/access.log")
load0=$(cut -d' ' -f1-3 /proc/loadavg)
(while :; do echo "$(date +%s.%N) $(entries)"; sleep 1; done) >"$W/samples" &
SAMPLER=$!
t0=$(date +%s.%N)
/usr/bin/time -o "$W/rc.time" -f "%U %S" bash -c '
    for j in $(seq 0 $(('"$RADCLIENTS"' - 1))); do
        (for f in "'"$W"'"/part.$j.*; do
            radclient -q -p '"$PARALLEL"' -r 3 -t 1 -f "$f" "127.0.0.1:'"$RPORT"'" acct '"$SECRET"' >/dev/null
        done) &
    done
    wait'
t1=$(date +%s.%N)
for _ in $(seq 600); do
    e=$(entries); [[ ${e%% *} -ge $N ]] && break; sleep 0.05
done
t2=$(date +%s.%N)
he1=$(ticks "$HE_PID") mp1=$(ticks "$MP_PID") wk1=$(ticks "$WRK_REAL") or1=$(ticks "$OR_PID")
http1=$(wc -l <"$W/access.log")
load1=$(cut -d' ' -f1-3 /proc/loadavg)
kill "$SAMPLER"; [[ -n ${SAMPLES_OUT:-} ]] && cp "$W/samples" "$SAMPLES_OUT"
echo "$t2 $(entries)" >>"$W/samples"
e=$(entries)
[[ ${e%% *} -ge $N ]] || { echo "FAIL: the map holds ${e%% *} of $N entries"; exit 1; }
python3 - "$W/samples" <<PY
import sys
n, a, b, hz = $N, $t1 - $t0, $t2 - $t0, $(getconf CLK_TCK)
rc = sum(float(x) for x in open("$W/rc.time").read().split())
cpu = lambda t: t * 1e6 / hz / n
pts = [(float(l.split()[0]), int(l.split()[1])) for l in open(sys.argv[1]) if l.split()[1].isdigit()]
rates = [(e1 - e0) / (s1 - s0) for (s0, e0), (s1, e1) in zip(pts, pts[1:]) if 0 < e0 and e1 < n]
rates.sort()
print(f"throughput via $VIA: {n} Starts from $RADCLIENTS radclient streams (files of $CHUNK) x $PARALLEL in flight, the proxy serving "
      f"wrk ($WRK_CONNS connections, {'as fast as answered' if $WRK_DELAY_MS == 0 else '$WRK_DELAY_MS ms between requests'}): answered in {a:.1f} s ({n/a:,.0f}/s), all in musproxy's map after "
      f"{b:.1f} s ({n/b:,.0f} events/s end to end; target >= 5000 sustained)")
if rates:
    print(f"  per second in the map (steady part, {len(rates)} s): slowest {rates[0]:,.0f}, "
          f"median {rates[len(rates)//2]:,.0f}, fastest {rates[-1]:,.0f} events/s")
print(f"  HTTP through musproxy meanwhile: {($http1 - $http0) / b:,.0f} requests/s; "
      f"load average {'$load0'} before, {'$load1'} after")
print(f"  CPU per event: radclient {rc * 1e6 / n:.0f} us, "
      + ("mus-headend %.0f us, " % cpu($he1 - $he0) if "$VIA" == "headend" else "")
      + f"musproxy (with the HTTP traffic) {cpu($mp1 - $mp0):.0f} us, wrk {cpu($wk1 - $wk0):.0f} us, "
      f"origin {cpu($or1 - $or0):.0f} us")
PY

# 2. latency: Start -> first request decided with that identity
python3 - "$RPORT" "$SECRET" "$PPORT" "$SAMPLES" "$OPORT" <<'PY'
import hashlib, os, socket, struct, sys, time
rport, secret, pport, samples = int(sys.argv[1]), sys.argv[2].encode(), int(sys.argv[3]), int(sys.argv[4])
target = ("GET http://127.0.0.1:%s/size/7 HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n"
          "Connection: close\r\n\r\n" % (sys.argv[5], sys.argv[5])).encode()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.settimeout(2)
def attr(t, v): return struct.pack("!BB", t, len(v) + 2) + v
def start(ident, user, ip, sid):
    a = (attr(40, struct.pack("!I", 1)) + attr(1, user.encode()) + attr(8, socket.inet_aton(ip)) +
         attr(44, sid.encode()) + attr(4, socket.inet_aton("192.0.2.2")))
    length = 20 + len(a)
    auth = hashlib.md5(struct.pack("!BBH", 4, ident, length) + b"\0" * 16 + a + secret).digest()
    u.sendto(struct.pack("!BBH", 4, ident, length) + auth + a, ("127.0.0.1", rport))
def status_from(ip):
    s = socket.create_connection(("127.0.0.1", pport), source_address=(ip, 0))
    s.sendall(target)
    line = s.recv(64)
    s.close()
    return int(line.split()[1])
lat = []
for i in range(samples):
    ip = "127.77.%d.%d" % (i // 250, i % 250 + 1)
    t0 = time.monotonic()
    start(i & 255, "probe%d@bench" % i, ip, "p%d" % i)
    while True:
        st = status_from(ip)
        if st == 403:
            break
        if time.monotonic() - t0 > 5:
            sys.exit("FAIL: %s still answered %d after 5 s" % (ip, st))
    lat.append((time.monotonic() - t0) * 1000)
    try:
        u.recv(64)
    except socket.timeout:
        sys.exit("FAIL: no Accounting-Response")
lat.sort()
pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
print("latency: Start to the first request decided with that identity, %d users: p50 %.1f ms, p90 %.1f ms, p99 %.1f ms, max %.1f ms (target p99 < 50 ms)"
      % (len(lat), pct(0.5), pct(0.9), pct(0.99), lat[-1]))
PY
