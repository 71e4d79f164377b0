#!/usr/bin/env bash
# tests/e2e/vpn.sh: end-to-end test with a real VPN (ocserv + openconnect).
#
# The chain under test:
#
#   openconnect (netns vpnc-$$) --TLS over a veth pair--> ocserv (netns vpns-$$)
#     --connect/disconnect-script--> `musctl notify --socket SOCK`
#     --Unix socket--> mus-headend --MUS/1 over TLS on 127.0.0.1--> musproxy
#   and: curl (netns vpnc-$$) --through the tunnel--> musproxy --> mp-origin
#
# Everything on the server side (ocserv, mus-headend, musproxy, mp-origin)
# runs in the server namespace vpns-$$, so its loopback, ports and addresses
# belong to this test alone. The client namespace vpnc-$$ holds openconnect
# and curl. The only link between the two namespaces is the veth pair
#   vs-$$ 192.168.77.1/24 (server)  <->  vc-$$ 192.168.77.2/24 (client)
# musproxy listens on 0.0.0.0:3128 in the server namespace; the address the
# client uses for it, 10.10.20.1/32, lives on the server's loopback and is
# pushed by ocserv as the only route (`route = 10.10.20.1/32`), so requests to
# the proxy travel through the tunnel and arrive from the VPN address
# (10.10.10.x, predictable-ips). Unix sockets (mus-headend's notify socket,
# musproxy's control socket) are files in the temp dir and reachable from any
# namespace.
#
# Checks (one PASS:/FAIL: line each):
#   0. musproxy's MUS/1 session to mus-headend (CA-verified TLS, shared
#      password) is established before any VPN user connects (10 s at most);
#   1. openconnect logs in with a password (plain ocpasswd-format file, server
#      certificate pinned with --servercert pin-sha256:...) and gets its VPN
#      address on tun0;
#   2. within 1 s of the address appearing on tun0, `musctl map --ip VPNADDR`
#      on musproxy's control socket shows the user (delay measured), and the
#      tunnel's IPv6 address (ocserv's ipv6-network) is mapped too;
#   3. from the client namespace, through the tunnel: a GET via musproxy to
#      mp-origin /size/100 (100 bytes, checked) whose access-log line has the
#      VPN address as client (field 3) and the user as field 8; and the probe
#      http://mus.cisco.com/ answered 200 by musproxy with "remote: yes" and
#      the user name;
#   4. SIGINT to openconnect (logout) -> the mapping is gone from `musctl map`
#      within 3 s (delay measured);
#   5. with mus-headend stopped, a second login still succeeds (ocserv does not
#      refuse users because the identity feed is down) and gets the same
#      predictable address (musctl notify reports the failure and exits 0);
#   6. the host's /etc/resolv.conf is unchanged.
# Typical run: ~2 s. Every wait is bounded (feed 10 s, login 10 s, map 1 s,
# requests 5 s, logout 3 s), so a failing run ends within about a minute.
#
# Environment:
#   MUSPROXY_BIN  musproxy (default build/musproxy, relative to the repo)
#   ORIGIN_BIN    mp-origin (default build/mp-origin)
#   HEADEND_BIN   mus-headend (default: mus-headend next to MUSPROXY_BIN)
#   MUSCTL_BIN    musctl (default: musctl next to MUSPROXY_BIN)
#   KEEP_TMP=1    keep the temp dir (configs, logs) for inspection
#   VERBOSE=1     print the tails of all logs at the end even on success
#
# Needs root, network namespaces, veth and /dev/net/tun; exits 77 with one
# last line "SKIP: reason" when the machine cannot provide them or ocserv /
# openconnect are not installed (tools/setup.sh installs them).
# Lab facts this relies on: /work/shared/docs/lab-notes.md (ocserv work dir
# 0755; openconnect's tun0 appears some time after login; no DNS is pushed, and
# /etc/netns/vpnc-$$/resolv.conf shields the host's resolv.conf from
# vpnc-script anyway; ocserv waits for the connect-script; disconnect-script
# runs ~0.1 s after logout).
#
# Exit status: 0 all checks passed, 1 a check failed, 77 skipped.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MUSPROXY_BIN=${MUSPROXY_BIN:-$REPO/build/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-$REPO/build/mp-origin}
HEADEND_BIN=${HEADEND_BIN:-$(dirname "$MUSPROXY_BIN")/mus-headend}
MUSCTL_BIN=${MUSCTL_BIN:-$(dirname "$MUSPROXY_BIN")/musctl}
for v in MUSPROXY_BIN ORIGIN_BIN HEADEND_BIN MUSCTL_BIN; do
    [[ ${!v} == /* ]] || printf -v "$v" '%s/%s' "$PWD" "${!v}"
done

T0=$(date +%s.%N)
NSS=vpns-$$                 # server namespace
NSC=vpnc-$$                 # client namespace
VS=vs-$$                    # veth end in the server namespace
VC=vc-$$                    # veth end in the client namespace
SRV_ADDR=192.168.77.1
CLI_ADDR=192.168.77.2
POOL=10.10.10.0             # ocserv's IPv4 pool (/24)
POOL6=fd00:e2e:10::/48      # ocserv's IPv6 pool
PROXY_ADDR=10.10.20.1       # musproxy's address as the VPN client sees it
PROXY_PORT=3128
VPN_PORT=4443
HEADEND_PORT=11999
ORIGIN_PORT=8080
VPN_USER=alice
VPN_GROUP=sales
VPN_PASS="e2e-$RANDOM$RANDOM-pw"

FAILED=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED=1; }
info() { echo "INFO: $*"; }
now() { date +%s.%N; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# ---------------------------------------------------------------- skip checks
skip() {
    declare -F cleanup >/dev/null && { KEEP_TMP=0; cleanup >/dev/null 2>&1; }
    echo "SKIP: $*"
    exit 77
}
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, TUN)"
for t in ocserv openconnect ip ss openssl curl setsid awk python3 base64 sha256sum cmp; do
    command -v "$t" >/dev/null 2>&1 || skip "$t not installed (tools/setup.sh installs it)"
done
[[ -c /dev/net/tun ]] || skip "/dev/net/tun is missing (no TUN device on this machine)"

PY=python3
[[ -x /usr/bin/python3 ]] && PY=/usr/bin/python3   # not a pyenv shim: faster

# ---------------------------------------------------------------- cleanup
TMP=$(mktemp -d /tmp/musproxy-e2e-vpn.XXXXXX)
PIDS=()                         # session leaders we started (killed as groups)
NS_MADE=()
VPNC_RUNDIR_EXISTED=0
[[ -e /run/vpnc ]] && VPNC_RUNDIR_EXISTED=1
cleanup() {
    local p ns
    trap - EXIT
    trap '' INT TERM HUP        # a second signal must not cut the cleanup short
    # openconnect first, with SIGINT: it logs out and runs vpnc-script's
    # disconnect inside its namespace.
    if [[ -n ${OC_PID:-} ]]; then
        kill -INT "$OC_PID" 2>/dev/null
        for _ in $(seq 20); do kill -0 "$OC_PID" 2>/dev/null || break; sleep 0.1; done
    fi
    for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    # Anything still inside our namespaces was started by this test.
    for ns in "${NS_MADE[@]}"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    done
    for ns in "${NS_MADE[@]}"; do
        ip netns del "$ns" 2>/dev/null     # removes the veth ends and tun devices in it
        rm -rf "/etc/netns/$ns"
    done
    rmdir /etc/netns 2>/dev/null
    # vpnc-script does `mkdir -p /var/run/vpnc`: remove it if we caused it.
    ((VPNC_RUNDIR_EXISTED)) || rmdir /run/vpnc 2>/dev/null
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted by a signal; cleaning up"; exit 1' INT TERM HUP

# start_bg LOGFILE NS CMD...: runs CMD in namespace NS in its own session
# (PID == SID == PGID, so the whole tree can be killed by group); sets BG_PID.
start_bg() {
    local log=$1 ns=$2; shift 2
    setsid ip netns exec "$ns" "$@" </dev/null >>"$log" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}
forget_pid() {
    local keep=() x
    for x in "${PIDS[@]}"; do [[ $x == "$1" ]] || keep+=("$x"); done
    PIDS=("${keep[@]}")
}
# stop_bg PID [SIGNAL]: signal the group, wait up to 5 s, then SIGKILL.
stop_bg() {
    local p=$1 sig=${2:-TERM}
    kill "-$sig" -- "-$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null
    wait "$p" 2>/dev/null
    forget_pid "$p"
}
# wait_listen NS PORT PID: until PORT listens in NS (10 s); 1 if PID died.
wait_listen() {
    local i
    for ((i = 0; i < 100; i++)); do
        ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
tail_log() { tail -n "${2:-5}" "$1" 2>/dev/null | tr '\n' ' ' | cut -c1-600; }

# ---------------------------------------------------------------- namespaces
NS_MADE+=("$NSS" "$NSC")
ip netns add "$NSS" 2>"$TMP/netns.err" || skip "cannot create network namespaces: $(head -1 "$TMP/netns.err")"
ip netns add "$NSC" 2>"$TMP/netns.err" || skip "cannot create network namespaces: $(head -1 "$TMP/netns.err")"
if ! ip link add "$VS" netns "$NSS" type veth peer name "$VC" netns "$NSC" 2>"$TMP/veth.err"; then
    skip "cannot create a veth pair: $(head -1 "$TMP/veth.err")"
fi
# TUN inside a namespace (openconnect needs it; ocserv creates one per user).
if ! ip -n "$NSC" tuntap add dev tuntest mode tun 2>"$TMP/tun.err"; then
    skip "cannot create a TUN device in a network namespace: $(head -1 "$TMP/tun.err")"
fi
ip -n "$NSC" link del tuntest
{
    ip -n "$NSS" link set lo up &&
    ip -n "$NSC" link set lo up &&
    ip -n "$NSS" addr add "$SRV_ADDR/24" dev "$VS" &&
    ip -n "$NSC" addr add "$CLI_ADDR/24" dev "$VC" &&
    ip -n "$NSS" link set "$VS" up &&
    ip -n "$NSC" link set "$VC" up &&
    ip -n "$NSS" addr add "$PROXY_ADDR/32" dev lo
} 2>"$TMP/ip.err" || { fail "namespaces: cannot configure: $(tail_log "$TMP/ip.err")"; exit 1; }
# The machine can run the test; are our binaries there?
for v in MUSPROXY_BIN ORIGIN_BIN HEADEND_BIN MUSCTL_BIN; do
    [[ -x ${!v} ]] || { fail "binaries: $v=${!v} not found (build first)"; exit 1; }
done

# vpnc-script writes /etc/resolv.conf when DNS is pushed (none is); inside
# `ip netns exec` this file is bind-mounted over it, so the host's stays intact.
mkdir -p "/etc/netns/$NSC" && echo "# musproxy e2e vpn test: client namespace" > "/etc/netns/$NSC/resolv.conf"
RESOLV_SUM=$(sha256sum /etc/resolv.conf 2>/dev/null)

# ---------------------------------------------------------------- certificates
# One CA signs ocserv's certificate and mus-headend's (CN/SAN IP:127.0.0.1).
# openconnect pins ocserv's key (pin-sha256), musproxy trusts the CA.
chmod 755 "$TMP"   # ocserv's workers (user nobody) must reach its sockets here
(
    cd "$TMP" || exit 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj "/CN=musproxy e2e vpn CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
    for n in ocserv headend; do
        case $n in
            ocserv) san="IP:$SRV_ADDR,DNS:vpn.e2e.test" ;;
            headend) san="IP:127.0.0.1,DNS:localhost" ;;
        esac
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -keyout "$n.key" -out "$n.csr" -subj "/CN=${san#IP:}" || exit 1
        printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$san" > "$n.ext"
        openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
            -out "$n.pem" -days 2 -extfile "$n.ext" || exit 1
    done
    chmod 600 ./*.key
) >"$TMP/openssl.log" 2>&1 || { fail "certificates: openssl failed: $(tail_log "$TMP/openssl.log" 3)"; exit 1; }
PIN=$(openssl x509 -in "$TMP/ocserv.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)

# ---------------------------------------------------------------- secrets
# ocserv's plain password file (the format ocpasswd writes: user:group:crypt).
printf '%s:%s:%s\n' "$VPN_USER" "$VPN_GROUP" "$(openssl passwd -6 "$VPN_PASS")" > "$TMP/ocpasswd"
chmod 600 "$TMP/ocpasswd"
# MUS/1 shared access password (same file for both ends).
( umask 077; openssl rand -base64 24 > "$TMP/mus.secret" )
printf '%s\n' "$VPN_PASS" > "$TMP/vpn.pass"; chmod 600 "$TMP/vpn.pass"

# ---------------------------------------------------------------- origin
start_bg "$TMP/origin.out" "$NSS" "$ORIGIN_BIN" --listen "127.0.0.1:$ORIGIN_PORT"
ORIGIN_PID=$BG_PID
wait_listen "$NSS" "$ORIGIN_PORT" "$ORIGIN_PID" ||
    { fail "origin: mp-origin did not listen on 127.0.0.1:$ORIGIN_PORT: $(tail_log "$TMP/origin.out")"; exit 1; }

# ---------------------------------------------------------------- mus-headend
HE_SOCK=$TMP/headend.sock
start_headend() {
    start_bg "$TMP/headend.out" "$NSS" "$HEADEND_BIN" --listen "127.0.0.1:$HEADEND_PORT" \
        --cert "$TMP/headend.pem" --key "$TMP/headend.key" --password-file "$TMP/mus.secret" \
        --socket "$HE_SOCK" --allow 127.0.0.0/8 --log-level debug
    HE_PID=$BG_PID
    wait_listen "$NSS" "$HEADEND_PORT" "$HE_PID"
}
if start_headend; then
    for _ in $(seq 50); do [[ -S $HE_SOCK ]] && break; sleep 0.1; done
    if [[ -S $HE_SOCK ]]; then
        info "mus-headend listening on 127.0.0.1:$HEADEND_PORT, notify socket $HE_SOCK"
    else
        fail "mus-headend: no notify socket at $HE_SOCK: $(tail_log "$TMP/headend.out")"
    fi
else
    fail "mus-headend: did not listen on 127.0.0.1:$HEADEND_PORT: $(tail_log "$TMP/headend.out")"
fi

# ---------------------------------------------------------------- musproxy
ACCESS_LOG=$TMP/access.log
MP_SOCK=$TMP/musproxy.sock
cat > "$TMP/musproxy.yaml" <<EOF
proxy:
  listen:
    - { address: "0.0.0.0:$PROXY_PORT", mode: explicit }
  workers: 1
  clients: [127.0.0.0/8, 10.0.0.0/8, 192.168.0.0/16]
  access_log: "$ACCESS_LOG"
  visible_hostname: musproxy-e2e-vpn
mus:
  reconnect_interval: 2s
  control_socket: "$MP_SOCK"
  probe_host: mus.cisco.com
  headends:
    - name: ocserv-1
      addresses: ["127.0.0.1:$HEADEND_PORT"]
      ca: "$TMP/ca.pem"
      password_file: "$TMP/mus.secret"
log_level: debug
EOF
start_bg "$TMP/musproxy.out" "$NSS" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
MP_PID=$BG_PID
if wait_listen "$NSS" "$PROXY_PORT" "$MP_PID"; then
    info "musproxy listening on 0.0.0.0:$PROXY_PORT in $NSS (reached as $PROXY_ADDR through the VPN)"
else
    fail "musproxy: did not listen on :$PROXY_PORT: $(tail_log "$TMP/musproxy.out")"
fi

# ---------------------------------------------------------------- ocserv
cat > "$TMP/notify.sh" <<EOF
#!/bin/sh
# ocserv connect-script and disconnect-script: log the event, then hand it to
# mus-headend exactly as a deployment would.
{ printf '%s ' "\$(date +%s.%N)"; env | grep -E '^(REASON|ID|USERNAME|GROUPNAME|IP_REAL|IP_LOCAL|IP_REMOTE|IPV6_REMOTE)=' | tr '\n' ' '; echo; } >> "$TMP/events.log"
"$MUSCTL_BIN" notify --socket "$HE_SOCK" >> "$TMP/notify.out" 2>&1
rc=\$?
echo "\$(date +%s.%N) \$REASON musctl notify exit \$rc" >> "$TMP/events.log"
exit \$rc
EOF
chmod 755 "$TMP/notify.sh"
cat > "$TMP/ocserv.conf" <<EOF
auth = "plain[passwd=$TMP/ocpasswd]"
listen-host = $SRV_ADDR
tcp-port = $VPN_PORT
run-as-user = nobody
run-as-group = nogroup
socket-file = $TMP/ocserv.sock
occtl-socket-file = $TMP/occtl.sock
use-occtl = true
pid-file = $TMP/ocserv.pid
server-cert = $TMP/ocserv.pem
server-key = $TMP/ocserv.key
isolate-workers = true
max-clients = 16
max-same-clients = 4
rate-limit-ms = 0
max-ban-score = 0
keepalive = 300
dpd = 60
mobile-dpd = 300
try-mtu-discovery = false
auth-timeout = 60
min-reauth-time = 1
cookie-timeout = 60
deny-roaming = false
rekey-time = 172800
rekey-method = ssl
device = vpns
predictable-ips = true
ipv4-network = $POOL
ipv4-netmask = 255.255.255.0
ipv6-network = $POOL6
ipv6-subnet-prefix = 128
route = $PROXY_ADDR/255.255.255.255
connect-script = $TMP/notify.sh
disconnect-script = $TMP/notify.sh
cisco-client-compat = true
EOF
start_bg "$TMP/ocserv.out" "$NSS" ocserv -f -d 2 -c "$TMP/ocserv.conf"
OCSERV_PID=$BG_PID
wait_listen "$NSS" "$VPN_PORT" "$OCSERV_PID" ||
    { fail "ocserv: did not listen on $SRV_ADDR:$VPN_PORT: $(tail_log "$TMP/ocserv.out")"; exit 1; }
info "ocserv listening on $SRV_ADDR:$VPN_PORT in $NSS (server key pin-sha256:$PIN)"

# ---------------------------------------------------------------- openconnect
# vpn_connect LOG: starts openconnect in the client namespace; sets OC_PID.
vpn_connect() {
    setsid ip netns exec "$NSC" openconnect --non-inter --passwd-on-stdin \
        --user "$VPN_USER" --servercert "pin-sha256:$PIN" --interface tun0 \
        "https://$SRV_ADDR:$VPN_PORT/" <"$TMP/vpn.pass" >>"$1" 2>&1 &
    OC_PID=$!
    PIDS+=("$OC_PID")
}
# wait_tun SECONDS: polls tun0's IPv4 address every ~10 ms; sets VPN_IP, TUN_T.
wait_tun() {
    local end a
    end=$(awk -v t="$(now)" -v s="$1" 'BEGIN { printf "%.3f", t + s }')
    VPN_IP= TUN_T=
    while :; do
        a=$(ip -n "$NSC" -4 -o addr show dev tun0 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }')
        if [[ -n $a ]]; then
            TUN_T=$(now); VPN_IP=$a
            return 0
        fi
        kill -0 "$OC_PID" 2>/dev/null || return 1
        awk -v t="$(now)" -v e="$end" 'BEGIN { exit !(t < e) }' || return 1
        sleep 0.01
    done
}
# vpn_disconnect: SIGINT (openconnect logs out, like a user quitting), waits.
vpn_disconnect() {
    kill -INT "$OC_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$OC_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$OC_PID" 2>/dev/null
    wait "$OC_PID" 2>/dev/null
    forget_pid "$OC_PID"
    OC_PID=
}

# map_lookup IP: prints the name musproxy maps IP to (nothing if unmapped);
# returns 2 when musctl could not get an answer from musproxy. The answer
# (`musctl map --ip IP --json`: {"entries": [ ... ]}, at most one entry) is
# kept in $TMP/musctl-map.out. grep, not python: this runs in tight loops.
map_lookup() {
    "$MUSCTL_BIN" map --socket "$MP_SOCK" --ip "$1" --json >"$TMP/musctl-map.out" 2>"$TMP/musctl-map.err" || return 2
    grep -q '"entries"' "$TMP/musctl-map.out" || return 2
    sed -n 's/^ *"name": *"\(.*\)",\{0,1\} *$/\1/p' "$TMP/musctl-map.out" | head -1
}
# before T: true while now < T (T from deadline)
deadline() { awk -v t="$(now)" -v s="$1" 'BEGIN { printf "%.3f", t + s }'; }
before() { awk -v t="$(now)" -v e="$1" 'BEGIN { exit !(t < e) }'; }
# headend_state: the state of musproxy's session to ocserv-1 ("established", ...).
headend_state() {
    "$MUSCTL_BIN" status --socket "$MP_SOCK" --json 2>/dev/null | "$PY" -c '
import json, sys
try:
    d = json.load(sys.stdin)
    h = [h for h in d.get("headends", []) if h.get("name") == "ocserv-1"][0]
    print(h.get("state", "?"), "|", h.get("last_error", ""))
except Exception:
    print("unknown | musctl status gave no answer")
'
}

# ---------------------------------------------------------------- feed up?
# The VPN checks below measure the notify -> headend -> proxy path, so first
# let musproxy's MUS/1 session to mus-headend come up (TLS, auth, snapshot).
HS=
END=$(deadline 10)
while :; do
    HS=$(headend_state)
    [[ $HS == established* ]] && break
    before "$END" || break
    sleep 0.1
done
if [[ $HS == established* ]]; then
    pass "mus feed: musproxy's session to mus-headend (ocserv-1, 127.0.0.1:$HEADEND_PORT, CA-verified) is established, $(ms_since "$T0") ms after the test started"
else
    fail "mus feed: musproxy's session to ocserv-1 not established within 10 s (state | last error: $HS)"
fi

OC_LOG=$TMP/openconnect-1.log
T_START=$(now)
vpn_connect "$OC_LOG"
if wait_tun 10; then
    pass "vpn login: openconnect logged in as $VPN_USER (password, pinned server key) and got $VPN_IP on tun0 $(ms_between "$T_START" "$TUN_T") ms after start"
else
    fail "vpn login: no address on tun0 within 10 s (openconnect: $(tail_log "$OC_LOG" 4); ocserv: $(tail_log "$TMP/ocserv.out" 4))"
fi

# ---------------------------------------------------------------- 2. mapping
# ocserv runs the connect-script (-> musctl notify -> mus-headend -> musproxy)
# before it hands out the address, so the user should be mapped at once.
if [[ -n $VPN_IP ]]; then
    END=$(awk -v t="$TUN_T" 'BEGIN { printf "%.3f", t + 1.0 }')
    NAME= RC=0 N=0
    while :; do
        NAME=$(map_lookup "$VPN_IP"); RC=$?; N=$((N + 1))
        T=$(now)
        [[ $NAME == "$VPN_USER" ]] && break
        before "$END" || break
        sleep 0.01
    done
    if [[ $NAME == "$VPN_USER" ]]; then
        ENTRY=$("$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["entries"][0], sort_keys=True))' "$TMP/musctl-map.out" 2>&1)
        T_EV=$(grep -m1 'REASON=connect' "$TMP/events.log" 2>/dev/null | cut -d' ' -f1)
        if ((N == 1)); then WHEN="already mapped at the first query (answered $(ms_between "$TUN_T" "$T") ms after tun0 got the address)"
        else WHEN="mapped $(ms_between "$TUN_T" "$T") ms after tun0 got the address (query $N)"; fi
        pass "map: musctl map --ip $VPN_IP shows $VPN_USER: $WHEN; ocserv ran the connect-script $(ms_between "${T_EV:-$TUN_T}" "$TUN_T") ms before the address appeared; entry $ENTRY"
        if ! grep -q '"headend": *"ocserv-1"' "$TMP/musctl-map.out"; then
            fail "map: the entry for $VPN_IP does not name headend ocserv-1"
        fi
    elif ((RC == 2)); then
        fail "map: musctl map --ip $VPN_IP got no answer from musproxy ($(tail_log "$TMP/musctl-map.err" 2))"
    else
        fail "map: $VPN_IP not mapped to $VPN_USER within 1 s of tun0 getting it ($N queries; last answer: $(tail_log "$TMP/musctl-map.out" 20); events: $(tail_log "$TMP/events.log" 2); notify: $(tail_log "$TMP/notify.out" 2))"
    fi
    # ocserv also hands out an IPv6 address (ipv6-network); vpnc-script sets it
    # after the IPv4 one.
    VPN_IP6=
    END=$(deadline 2)
    while :; do
        VPN_IP6=$(ip -n "$NSC" -6 -o addr show dev tun0 scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }')
        [[ -n $VPN_IP6 ]] && break
        before "$END" || break
        sleep 0.02
    done
    if [[ -z $VPN_IP6 ]]; then
        fail "map: tun0 got no IPv6 address from the pool $POOL6 ($(grep -m1 'Configured as' "$OC_LOG"))"
    elif [[ $(map_lookup "$VPN_IP6") == "$VPN_USER" ]]; then
        pass "map: the tunnel's IPv6 address $VPN_IP6 is mapped to $VPN_USER too"
    else
        fail "map: the tunnel's IPv6 address $VPN_IP6 is not mapped to $VPN_USER (answer: $(tail_log "$TMP/musctl-map.out" 20))"
    fi
else
    fail "map: not checked (no VPN address)"
fi

# ---------------------------------------------------------------- 3. requests
# From the client namespace, to musproxy at $PROXY_ADDR: the only route there
# is the one ocserv pushed, so the request enters musproxy from the VPN address.
cli_curl() { ip netns exec "$NSC" curl -sS -m 5 --noproxy '' -x "http://$PROXY_ADDR:$PROXY_PORT" "$@"; }
if [[ -n $VPN_IP ]]; then
    ROUTE=$(ip -n "$NSC" -4 route get "$PROXY_ADDR" 2>&1 | head -1 | sed 's/ *$//; s/  */ /g')
    [[ $ROUTE == *"dev tun0"* ]] || fail "route: $PROXY_ADDR is not routed through tun0 in $NSC: $ROUTE"
    URL="http://127.0.0.1:$ORIGIN_PORT/size/100"
    "$PY" -c 'import sys; sys.stdout.buffer.write(bytes(i % 251 for i in range(100)))' > "$TMP/size100.expected"
    CODE=$(cli_curl -o "$TMP/size100.body" -w '%{http_code}' "$URL" 2>"$TMP/curl1.err")
    if [[ $CODE == 200 ]] && cmp -s "$TMP/size100.body" "$TMP/size100.expected"; then
        pass "request: GET $URL via http://$PROXY_ADDR:$PROXY_PORT through the tunnel ($ROUTE) -> 200, 100 bytes as expected"
    else
        fail "request: GET $URL via the proxy through the tunnel -> HTTP ${CODE:-none}, $(wc -c < "$TMP/size100.body" 2>/dev/null || echo 0) bytes ($(tail_log "$TMP/curl1.err" 2))"
    fi
    LINE=
    for _ in $(seq 30); do
        LINE=$(grep -F " $URL " "$ACCESS_LOG" 2>/dev/null | tail -1)
        [[ -n $LINE ]] && break
        sleep 0.1
    done
    read -r -a F <<<"$LINE"
    if [[ -n $LINE && ${F[2]:-} == "$VPN_IP" && ${F[7]:-} == "$VPN_USER" ]]; then
        pass "access log: client ${F[2]} (the VPN address), user ${F[7]} (field 8): $LINE"
    elif [[ -n $LINE ]]; then
        fail "access log: expected client $VPN_IP and user $VPN_USER in fields 3 and 8, got client '${F[2]:-}' user '${F[7]:-}': $LINE"
    else
        fail "access log: no line for $URL in $ACCESS_LOG within 3 s ($(wc -l < "$ACCESS_LOG" 2>/dev/null || echo 0) lines: $(tail_log "$ACCESS_LOG" 3))"
    fi
    CODE=$(cli_curl -o "$TMP/probe.body" -w '%{http_code}' "http://mus.cisco.com/" 2>"$TMP/curl2.err")
    BODY=$(tr '\r\n' '  ' < "$TMP/probe.body" 2>/dev/null | cut -c1-300)
    if [[ $CODE == 200 ]] && grep -qi 'remote: *yes' "$TMP/probe.body" && grep -qF "$VPN_USER" "$TMP/probe.body"; then
        pass "probe: http://mus.cisco.com/ from the tunnel -> 200 '$BODY'"
    else
        fail "probe: http://mus.cisco.com/ from the tunnel -> HTTP ${CODE:-none}, want 200 with 'remote: yes' and '$VPN_USER': '$BODY' $(tail_log "$TMP/curl2.err" 2)"
    fi
else
    fail "request: not checked (no VPN address)"
fi

# ---------------------------------------------------------------- 4. logout
if [[ -n ${OC_PID:-} ]]; then
    T_INT=$(now)
    vpn_disconnect
    T_GONE=$(now)
    if [[ -n $VPN_IP ]]; then
        NAME=$VPN_USER RC=0
        END=$(awk -v t="$T_INT" 'BEGIN { printf "%.3f", t + 3.0 }')
        while :; do
            NAME=$(map_lookup "$VPN_IP"); RC=$?
            T=$(now)
            [[ $RC == 0 && -z $NAME ]] && break
            before "$END" || break
            sleep 0.01
        done
        if [[ $RC == 0 && -z $NAME ]]; then
            pass "logout: after SIGINT to openconnect (exited in $(ms_between "$T_INT" "$T_GONE") ms) $VPN_IP left musctl map in $(ms_between "$T_INT" "$T") ms"
        else
            fail "logout: $VPN_IP still mapped ($NAME) or map unanswered (rc $RC) 3 s after SIGINT to openconnect (events: $(tail_log "$TMP/events.log" 2))"
        fi
    fi
fi

# ---------------------------------------------------------------- 5. feed down
# ocserv must not refuse users because mus-headend is down: musctl notify
# (the connect-script) has to succeed without it.
if [[ -n ${HE_PID:-} ]]; then
    stop_bg "$HE_PID"
    HE_PID=
fi
for _ in $(seq 50); do ip -n "$NSC" link show dev tun0 >/dev/null 2>&1 || break; sleep 0.1; done
OC_LOG=$TMP/openconnect-2.log
T_START=$(now)
vpn_connect "$OC_LOG"
FIRST_IP=$VPN_IP
if wait_tun 10; then
    pass "headend down: login still succeeds, $VPN_IP on tun0 $(ms_between "$T_START" "$TUN_T") ms after start$([[ -n $FIRST_IP && $VPN_IP == "$FIRST_IP" ]] && echo ", the same predictable address as before") (notify: $(grep ' connect musctl notify exit' "$TMP/events.log" | tail -1 | cut -d' ' -f2-))"
    [[ -z $FIRST_IP || $VPN_IP == "$FIRST_IP" ]] || fail "predictable-ips: second login got $VPN_IP, first got $FIRST_IP"
else
    fail "headend down: no address on tun0 within 10 s: ocserv refused the user? (openconnect: $(tail_log "$OC_LOG" 3); events: $(tail_log "$TMP/events.log" 2); notify: $(tail_log "$TMP/notify.out" 2))"
fi
vpn_disconnect

# ---------------------------------------------------------------- host hygiene
if [[ $(sha256sum /etc/resolv.conf 2>/dev/null) == "$RESOLV_SUM" ]]; then
    pass "host: /etc/resolv.conf untouched by vpnc-script"
else
    fail "host: /etc/resolv.conf changed during the test"
fi

# ---------------------------------------------------------------- result
if ((FAILED)) || [[ ${VERBOSE:-0} == 1 ]]; then
    echo "diag: musctl status: $("$MUSCTL_BIN" status --socket "$MP_SOCK" 2>&1 | tr '\n' ' ' | cut -c1-700)"
    for f in events.log notify.out headend.out musproxy.out ocserv.out openconnect-1.log access.log; do
        echo "diag: $f: $(tail_log "$TMP/$f" 8)"
    done
fi
echo "timing: $(ms_since "$T0") ms in all"
if ((FAILED)); then
    echo "RESULT: FAIL (rerun with KEEP_TMP=1 to keep the configs and logs)"
    exit 1
fi
echo "RESULT: PASS"
exit 0
