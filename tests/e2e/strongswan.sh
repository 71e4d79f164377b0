#!/usr/bin/env bash
# tests/e2e/strongswan.sh: end-to-end test with a real IKEv2 VPN (Debian's
# strongSwan charon + swanctl, PSK, a virtual IP pool) feeding musproxy.
#
#   charon (client, netns swc-$$) --IKEv2/ESP-in-UDP over a veth pair--> charon
#     (server, netns sws-$$) --updown: tools/strongswan-updown.sh--> `musctl notify`
#     --Unix socket--> mus-headend --MUS/1 on 127.0.0.1--> musproxy
#   and: curl (client netns) --through the tunnel--> musproxy's probe
#
# Each charon runs in its own network namespace and, through `unshare -m`, its
# own /run (the pid file is compiled in); STRONGSWAN_CONF points it at a
# config in the temp dir with its vici socket there. The kernel here may have
# no ESP (XFRM "Protocol not supported"): charon then uses kernel-libipsec
# (ESP in user space over a TUN device, package libcharon-extra-plugins);
# with a kernel that has ESP, kernel-netlink does it. The server pushes
# 10.30.0.1 (pool 10.30.0.0/24); musproxy's address 10.40.0.1/32 is on the
# server's loopback and is the only traffic selector.
#
# Checks (PASS:/FAIL: lines):
#   0. musproxy's MUS/1 session to mus-headend is established;
#   1. the client's IKE_SA and CHILD_SA come up and it gets 10.30.0.1;
#   2. within 2 s, `musctl map --ip 10.30.0.1` shows alice@corp.example, tunnel
#      ipsec, from headend strongswan-1 (the updown path);
#   3. through the tunnel, the probe http://mus.cisco.com/ answers 200 with
#      "remote: yes" and the user;
#   4. mus-headend restarted (empty store, new epoch): the swanctl poll
#      (`--swanctl-interval 1`) maps the user again from `swanctl --list-sas`;
#   5. `swanctl --terminate` on the client: the mapping is gone within 3 s.
#
# Environment: MUSPROXY_BIN, HEADEND_BIN, MUSCTL_BIN (defaults: build/), KEEP_TMP=1.
# Needs root, network namespaces, veth, /dev/net/tun, charon and swanctl;
# exits 77 with "SKIP: reason" otherwise. Exit status: 0 passed, 1 failed.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MUSPROXY_BIN=${MUSPROXY_BIN:-$REPO/build/musproxy}
HEADEND_BIN=${HEADEND_BIN:-$(dirname "$MUSPROXY_BIN")/mus-headend}
MUSCTL_BIN=${MUSCTL_BIN:-$(dirname "$MUSPROXY_BIN")/musctl}
for v in MUSPROXY_BIN HEADEND_BIN MUSCTL_BIN; do
    [[ ${!v} == /* ]] || printf -v "$v" '%s/%s' "$PWD" "${!v}"
done
CHARON=${CHARON:-/usr/lib/ipsec/charon}

NSS=sws-$$ NSC=swc-$$ VS=sws$$ VC=swc$$
SRV_ADDR=192.168.78.1 CLI_ADDR=192.168.78.2
VIP=10.30.0.1 PROXY_ADDR=10.40.0.1 PROXY_PORT=3128 HEADEND_PORT=11999
VPN_ID=alice@corp.example
PSK="e2e-psk-$RANDOM$RANDOM"

FAILED=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED=1; }
info() { echo "INFO: $*"; }
skip() {
    declare -F cleanup >/dev/null && { KEEP_TMP=0; cleanup >/dev/null 2>&1; }
    echo "SKIP: $*"
    exit 77
}
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces)"
for t in swanctl ip ss openssl curl setsid unshare; do
    command -v "$t" >/dev/null 2>&1 || skip "$t not installed (tools/setup.sh installs it)"
done
[[ -x $CHARON ]] || skip "$CHARON missing (apt-get install strongswan-charon)"
[[ -c /dev/net/tun ]] || skip "/dev/net/tun is missing"
KERNEL_IF=kernel-netlink
if [[ -e /usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so ]]; then
    KERNEL_IF="kernel-libipsec kernel-netlink"
fi

TMP=$(mktemp -d /tmp/musproxy-e2e-swan.XXXXXX)
PIDS=()
NS_MADE=()
cleanup() {
    local p ns
    trap - EXIT
    trap '' INT TERM HUP
    for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 30); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    for ns in "${NS_MADE[@]}"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'echo "FAIL: interrupted"; exit 1' INT TERM HUP

start_bg() {   # start_bg LOG NS CMD...: in its own session; sets BG_PID
    local log=$1 ns=$2; shift 2
    setsid ip netns exec "$ns" "$@" </dev/null >>"$log" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}
stop_bg() {
    local p=$1 keep=() x
    kill -TERM -- "-$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null
    wait "$p" 2>/dev/null
    for x in "${PIDS[@]}"; do [[ $x == "$p" ]] || keep+=("$x"); done
    PIDS=("${keep[@]}")
}
wait_listen() {   # wait_listen NS PORT PID
    for _ in $(seq 100); do
        ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
        kill -0 "$3" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
tail_log() { tail -n "${2:-5}" "$1" 2>/dev/null | tr '\n' ' ' | cut -c1-600; }
now() { date +%s.%N; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%d", (b - a) * 1000 }'; }
map_name() {   # the name musproxy maps $1 to, or nothing
    "$MUSCTL_BIN" map --socket "$MP_SOCK" --ip "$1" --json 2>/dev/null >"$TMP/map.json"
    sed -n 's/^ *"name": *"\(.*\)",\{0,1\} *$/\1/p' "$TMP/map.json" | head -1
}
wait_map() {   # wait_map IP WANT SECONDS: until map_name IP == WANT
    local end=$(( $(date +%s%N) + $3 * 1000000000 ))
    while (( $(date +%s%N) < end )); do
        [[ $(map_name "$1") == "$2" ]] && return 0
        sleep 0.05
    done
    return 1
}
swan() {   # swan srv|cli ARGS...: swanctl on that charon's vici socket
    local who=$1; shift
    swanctl "$@" --uri "unix://$TMP/$who.vici" 2>>"$TMP/swanctl.err"
}

# ---------------------------------------------------------------- namespaces
NS_MADE+=("$NSS" "$NSC")
ip netns add "$NSS" 2>"$TMP/ns.err" || skip "cannot create network namespaces: $(head -1 "$TMP/ns.err")"
ip netns add "$NSC" 2>"$TMP/ns.err" || skip "cannot create network namespaces: $(head -1 "$TMP/ns.err")"
ip link add "$VS" netns "$NSS" type veth peer name "$VC" netns "$NSC" 2>"$TMP/ns.err" ||
    skip "cannot create a veth pair: $(head -1 "$TMP/ns.err")"
{
    ip -n "$NSS" link set lo up && ip -n "$NSC" link set lo up &&
    ip -n "$NSS" addr add "$SRV_ADDR/24" dev "$VS" && ip -n "$NSC" addr add "$CLI_ADDR/24" dev "$VC" &&
    ip -n "$NSS" link set "$VS" up && ip -n "$NSC" link set "$VC" up &&
    ip -n "$NSS" addr add "$PROXY_ADDR/32" dev lo
} 2>"$TMP/ip.err" || { fail "namespaces: $(tail_log "$TMP/ip.err")"; exit 1; }
for v in MUSPROXY_BIN HEADEND_BIN MUSCTL_BIN; do
    [[ -x ${!v} ]] || { fail "binaries: $v=${!v} not found (build first)"; exit 1; }
done

# ---------------------------------------------------------------- headend + proxy
(
    cd "$TMP" || exit 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
        -out ca.pem -days 2 -subj "/CN=e2e swan CA" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout headend.key \
        -out headend.csr -subj "/CN=127.0.0.1" &&
    printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > headend.ext &&
    openssl x509 -req -in headend.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out headend.pem \
        -days 2 -extfile headend.ext
    chmod 600 ./*.key
) >"$TMP/openssl.log" 2>&1 || { fail "certificates: $(tail_log "$TMP/openssl.log")"; exit 1; }
( umask 077; openssl rand -base64 24 > "$TMP/mus.secret" )

HE_SOCK=$TMP/headend.sock
cat > "$TMP/swanctl-poll" <<EOF
#!/bin/sh
exec swanctl "\$@" --uri unix://$TMP/srv.vici 2>/dev/null
EOF
chmod 755 "$TMP/swanctl-poll"
start_headend() {
    start_bg "$TMP/headend.out" "$NSS" "$HEADEND_BIN" --listen "127.0.0.1:$HEADEND_PORT" \
        --cert "$TMP/headend.pem" --key "$TMP/headend.key" --password-file "$TMP/mus.secret" \
        --socket "$HE_SOCK" --swanctl "$TMP/swanctl-poll" --swanctl-interval "$1" \
        --kdf-iter 10000 --log-level debug
    HE_PID=$BG_PID
    wait_listen "$NSS" "$HEADEND_PORT" "$HE_PID"
}
start_headend 0 || { fail "mus-headend: $(tail_log "$TMP/headend.out")"; exit 1; }

MP_SOCK=$TMP/musproxy.sock
cat > "$TMP/musproxy.yaml" <<EOF
proxy:
  listen:
    - { address: "0.0.0.0:$PROXY_PORT", mode: explicit }
  workers: 1
  clients: [127.0.0.0/8, 10.0.0.0/8]
  access_log: "$TMP/access.log"
mus:
  reconnect_interval: 1s
  control_socket: "$MP_SOCK"
  probe_host: mus.cisco.com
  headends:
    - name: strongswan-1
      addresses: ["127.0.0.1:$HEADEND_PORT"]
      ca: "$TMP/ca.pem"
      password_file: "$TMP/mus.secret"
log_level: debug
EOF
start_bg "$TMP/musproxy.out" "$NSS" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
MP_PID=$BG_PID
wait_listen "$NSS" "$PROXY_PORT" "$MP_PID" || { fail "musproxy: $(tail_log "$TMP/musproxy.out")"; exit 1; }
established() {
    "$MUSCTL_BIN" status --socket "$MP_SOCK" --json 2>/dev/null | grep -q '"state": *"established"'
}
for _ in $(seq 100); do established && break; sleep 0.1; done
if established; then pass "feed: musproxy's MUS/1 session to mus-headend is established"
else fail "feed: not established: $(tail_log "$TMP/musproxy.out")"; fi

# ---------------------------------------------------------------- charon x 2
# charon's updown gets only PLUTO_* variables: the wrapper names everything.
cat > "$TMP/updown.sh" <<EOF
#!/bin/sh
{ date +%s.%N; env | grep '^PLUTO_' | sort; } >> "$TMP/updown.log"
MUSCTL=$MUSCTL_BIN MUS_HEADEND_SOCKET=$HE_SOCK exec $REPO/tools/strongswan-updown.sh "\$@" >> "$TMP/updown.out" 2>&1
EOF
chmod 755 "$TMP/updown.sh"
for who in srv cli; do
    cat > "$TMP/$who.conf" <<EOF
charon {
  load_modular = no
  load = random nonce aes sha1 sha2 md5 hmac gmp kdf pem pkcs1 x509 pubkey attr $KERNEL_IF socket-default vici updown
  plugins {
    vici {
      socket = unix://$TMP/$who.vici
    }
  }
  filelog {
    log {
      path = $TMP/charon-$who.log
      default = 1
      ike = 2
      knl = 2
      flush_line = yes
    }
  }
}
EOF
done
cat > "$TMP/srv-swanctl.conf" <<EOF
connections {
  rw {
    local_addrs = $SRV_ADDR
    pools = pool4
    proposals = aes128-sha256-modp2048
    local {
      auth = psk
      id = vpn.e2e.test
    }
    remote {
      auth = psk
      id = %any
    }
    children {
      rw {
        local_ts = $PROXY_ADDR/32
        esp_proposals = aes128-sha256
        updown = $TMP/updown.sh
      }
    }
  }
}
pools {
  pool4 {
    addrs = 10.30.0.0/24
  }
}
secrets {
  ike-alice {
    id = $VPN_ID
    secret = "$PSK"
  }
}
EOF
cat > "$TMP/cli-swanctl.conf" <<EOF
connections {
  home {
    remote_addrs = $SRV_ADDR
    vips = 0.0.0.0
    proposals = aes128-sha256-modp2048
    local {
      auth = psk
      id = $VPN_ID
    }
    remote {
      auth = psk
      id = vpn.e2e.test
    }
    children {
      home {
        remote_ts = $PROXY_ADDR/32
        esp_proposals = aes128-sha256
      }
    }
  }
}
secrets {
  ike-alice {
    id = $VPN_ID
    secret = "$PSK"
  }
}
EOF
chmod 600 "$TMP"/*-swanctl.conf
for who in srv:$NSS cli:$NSC; do
    n=${who%%:*} ns=${who#*:}
    start_bg "$TMP/charon-$n.out" "$ns" unshare -m --propagation private sh -c \
        "mount -t tmpfs none /run && STRONGSWAN_CONF=$TMP/$n.conf exec $CHARON"
    for _ in $(seq 50); do [[ -S $TMP/$n.vici ]] && break; sleep 0.1; done
    [[ -S $TMP/$n.vici ]] || { fail "charon $n: no vici socket: $(tail_log "$TMP/charon-$n.out") $(tail_log "$TMP/charon-$n.log")"; exit 1; }
    swan "$n" --load-all --file "$TMP/$n-swanctl.conf" >"$TMP/load-$n.out" ||
        { fail "swanctl --load-all ($n): $(tail_log "$TMP/load-$n.out")"; exit 1; }
done
info "charon x2 up ($KERNEL_IF)"

T_UP=$(now)
if ip netns exec "$NSC" swanctl --initiate --child home --timeout 15 --uri "unix://$TMP/cli.vici" \
        >"$TMP/initiate.out" 2>&1 && grep -q "CHILD_SA home{.*} established" "$TMP/initiate.out"; then
    pass "ikev2: IKE_SA and CHILD_SA established, virtual IP $(grep -o 'installing new virtual IP [0-9.]*' "$TMP/initiate.out" | awk '{print $NF}')"
else
    fail "ikev2: initiate failed: $(grep -E 'fail|error|NO_PROP|TS_UN' "$TMP/initiate.out" | head -3 | tr '\n' ' ') $(tail_log "$TMP/charon-srv.log" 4)"
fi

if wait_map "$VIP" "$VPN_ID" 2; then
    pass "updown -> musctl notify -> mus-headend -> musproxy: $VIP mapped to $VPN_ID after $(ms_since "$T_UP") ms from initiate"
    grep -q '"tunnel": *"ipsec"' "$TMP/map.json" && grep -q '"headend": *"strongswan-1"' "$TMP/map.json" &&
        pass "map entry: tunnel ipsec, headend strongswan-1" || fail "map entry: $(tr '\n' ' ' < "$TMP/map.json")"
else
    fail "map: $VIP not mapped to $VPN_ID: map=$(tr '\n' ' ' < "$TMP/map.json") updown=$(tail_log "$TMP/updown.out") headend=$(tail_log "$TMP/headend.out" 3)"
fi

BODY=$(ip netns exec "$NSC" curl -s -m 5 --interface "$VIP" -x "http://$PROXY_ADDR:$PROXY_PORT" http://mus.cisco.com/ 2>"$TMP/curl.err")
if grep -q "remote: yes" <<<"$BODY" && grep -q "$VPN_ID" <<<"$BODY"; then
    pass "probe through the IPsec tunnel: remote: yes, $VPN_ID"
else
    fail "probe through the tunnel: '$BODY' $(tail_log "$TMP/curl.err" 2)"
fi

# ---------------------------------------------------------------- swanctl poll
stop_bg "$HE_PID"
start_headend 1 || fail "mus-headend restart: $(tail_log "$TMP/headend.out")"
T_RE=$(now)
if wait_map "$VIP" "$VPN_ID" 8 && grep -q "swanctl: session 1 user $VPN_ID" "$TMP/headend.out"; then
    pass "swanctl --list-sas reconciliation: a restarted mus-headend maps $VIP again after $(ms_since "$T_RE") ms"
else
    fail "swanctl poll: $(grep swanctl "$TMP/headend.out" | tail -3 | tr '\n' ' ') map=$(tr '\n' ' ' < "$TMP/map.json")"
fi

# ---------------------------------------------------------------- down
T_DOWN=$(now)
swan cli --terminate --ike home --timeout 10 >"$TMP/terminate.out" 2>&1
gone=0
for _ in $(seq 60); do [[ -z $(map_name "$VIP") ]] && { gone=1; break; }; sleep 0.05; done
if ((gone)); then pass "terminate: mapping of $VIP gone after $(ms_since "$T_DOWN") ms"
else fail "terminate: $VIP still mapped: $(tr '\n' ' ' < "$TMP/map.json") updown=$(tail_log "$TMP/updown.log" 3)"; fi

if ((FAILED)); then
    echo "diag: headend: $(tail_log "$TMP/headend.out" 8)"
    echo "diag: updown: $(tail_log "$TMP/updown.out" 4)"
    exit 1
fi
exit 0
