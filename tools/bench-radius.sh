#!/usr/bin/env bash
# tools/bench-radius.sh: RADIUS accounting into musproxy's decisions, on
# loopback: a real mus-headend with its RADIUS listener feeds musproxy over
# MUS/1 (TLS), while wrk keeps musproxy serving traffic.
#   1. throughput: freeradius-utils' radclient sends N Accounting-Request
#      Starts (distinct users and Framed-IP-Addresses; RADCLIENTS processes at
#      a time, each with CHUNK requests and PARALLEL of them in flight);
#      the rate is N over the time until musproxy's map holds all N entries
#      (end to end: parsed, authenticated, applied, sent over MUS/1, in the
#      map), beside radclient's own time (answered by the headend, which
#      answers only after applying); target >= 5000 events/s.
#   2. latency: for SAMPLES users, one Start (sent from Python) and then
#      requests from that user's address to a URL the remote policy blocks
#      (served while the address is unknown), as fast as they are answered:
#      the time from the Start to the first 403 (the first decision made with
#      that identity); target p99 < 50 ms.
#
#   tools/bench-radius.sh   # N=20000 CHUNK=2000 RADCLIENTS=4 PARALLEL=32 SAMPLES=200
# Needs build-release (or BUILD=DIR) with musproxy and mus-headend,
# build/mp-origin, radclient, wrk, python3, openssl.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
B=${BUILD:-$REPO/build-release}
[[ -d $B ]] && B=$(cd "$B" && pwd)
ORIGIN=${ORIGIN_BIN:-$REPO/build/mp-origin}
N=${N:-20000} PARALLEL=${PARALLEL:-32} SAMPLES=${SAMPLES:-200}
CHUNK=${CHUNK:-2000} RADCLIENTS=${RADCLIENTS:-4}
for t in radclient wrk python3 openssl; do
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
bg "$B/mus-headend" --listen "127.0.0.1:$HPORT" --cert "$W/ca.pem" --key "$W/key.pem" \
    --password-file "$W/mus.secret" --radius "127.0.0.1:$RPORT" --radius-clients "$W/radius-clients" \
    --kdf-iter 10000 --log-level warn
cat >"$W/musproxy.yaml" <<EOF
proxy:
  listen: [ { address: "127.0.0.1:$PPORT", mode: explicit } ]
  workers: 1
  clients: [127.0.0.0/8]
  connect_ports: [443]
  max_connections: 10000
  access_log: $W/access.log
mus:
  control_socket: $W/musproxy.sock
  remote_users: headend
  reconnect_interval: 1s
  headends:
    - { name: radius-bench, addresses: ["127.0.0.1:$HPORT"], ca: $W/ca.pem, password_file: $W/mus.secret }
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
entries() { "$B/musctl" status --json --socket "$W/musproxy.sock" 2>/dev/null |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["map"]["entries"], d["headends"][0]["state"])' 2>/dev/null || echo "0 none"; }
for _ in $(seq 100); do [[ $(entries) == *established ]] && break; sleep 0.1; done
[[ $(entries) == *established ]] || { echo "FAIL: musproxy never reached the headend"; cat "$W/log"; exit 1; }

# traffic while the events arrive: the proxy serving (1 KiB, 20 connections)
cat >"$W/fwd.lua" <<LUA
wrk.path = "http://127.0.0.1:$OPORT/size/1024"
wrk.headers["Host"] = "127.0.0.1:$OPORT"
LUA
bg wrk -t1 -c20 -d600s -s "$W/fwd.lua" "http://127.0.0.1:$PPORT"

# 1. throughput
python3 - "$W/starts" "$N" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    for i in range(int(sys.argv[2])):
        ip = "10.%d.%d.%d" % (100 + (i >> 16), (i >> 8) & 255, i & 255)
        f.write('Acct-Status-Type = Start\nUser-Name = "user%d@bench"\nFramed-IP-Address = %s\n'
                'Acct-Session-Id = "s%d"\nNAS-IP-Address = 192.0.2.1\nClass = "OU=staff;"\n\n' % (i, ip, i))
PY
# radclient's own cost grows with the size of its file: CHUNK requests per
# file, RADCLIENTS of them at a time (as several NASes would send)
split -d -a 4 -l $((CHUNK * 7)) "$W/starts" "$W/part."
HE_PID=$(pgrep -f "mus-headend --listen 127.0.0.1:$HPORT")
MP_PID=$(pgrep -f "musproxy -c $W/musproxy.yaml")
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
he0=$(ticks "$HE_PID") mp0=$(ticks "$MP_PID")
t0=$(date +%s.%N)
ls "$W"/part.* | xargs -P "$RADCLIENTS" -I{} \
    radclient -q -p "$PARALLEL" -r 3 -t 2 -f {} "127.0.0.1:$RPORT" acct "$SECRET" >/dev/null
t1=$(date +%s.%N)
for _ in $(seq 600); do
    e=$(entries); [[ ${e% *} -ge $N ]] && break; sleep 0.05
done
t2=$(date +%s.%N)
he1=$(ticks "$HE_PID") mp1=$(ticks "$MP_PID")
e=$(entries)
[[ ${e% *} -ge $N ]] || { echo "FAIL: the map holds ${e% *} of $N entries"; exit 1; }
python3 -c "
n=$N; a=$t1-$t0; b=$t2-$t0
print(f'throughput: {n} Starts ($RADCLIENTS radclients x $PARALLEL in flight, the proxy serving wrk traffic): answered in {a:.2f} s ({n/a:,.0f}/s), all in musproxy\'s map after {b:.2f} s ({n/b:,.0f} events/s end to end; target >= 5000)')
hz=$(getconf CLK_TCK)
print(f'  CPU per event: mus-headend {($he1-$he0)*1e6/hz/n:.0f} us, musproxy (with the wrk traffic) {($mp1-$mp0)*1e6/hz/n:.0f} us')"

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
