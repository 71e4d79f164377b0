#!/usr/bin/env bash
# tests/e2e/tunnel_relay.sh: which way a CONNECT tunnel moves bytes
# (proxy.tunnel_relay: auto) when the client is across a real network path.
#
#   curl (netns rlyc-$$, 192.168.79.2) --veth--> musproxy (netns rlys-$$,
#   listening on 192.168.79.1:3128) --loopback--> mp-origin (127.0.0.1 in rlys)
#
# auto copies towards a peer on this host and splices towards the others:
#   1. a client in the other namespace: the upstream direction copies (the
#      origin is on loopback), the downstream one splices: musproxy holds
#      exactly one pipe (2 descriptors) while the download runs;
#   2. a client on musproxy's own loopback: both directions copy, no pipe;
#   3. tunnel_relay: splice for the same local client: two pipes (4);
# and every download (96 MiB, rate-limited by curl so that the tunnel is
# sampled mid-flight) arrives complete, byte for byte (mp-origin's pattern).
#
# Needs root, network namespaces and veth; exits 77 with one line saying why
# when the machine cannot. Everything it creates is removed on exit.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.bash
source "$HERE/lib.bash"

MUSPROXY_BIN=${MUSPROXY_BIN:-$HERE/../../build/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-$HERE/../../build/mp-origin}
NSS=rlys-$$ NSC=rlyc-$$ VS=rs-$$ VC=rc-$$
SIZE=$((96 << 20))    # more than the socket buffers and the pipe can absorb

skip() { echo "SKIP: $*"; exit 77; }

e2e_init relay
cleanup_ns() {
    local ns p
    for ns in "$NSS" "$NSC"; do
        for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
        ip netns del "$ns" 2>/dev/null
    done
}
trap 'e2e_cleanup; cleanup_ns' EXIT

[[ $(id -u) == 0 ]] || skip "needs root (network namespaces)"
[[ -x $MUSPROXY_BIN && -x $ORIGIN_BIN ]] || skip "build first ($MUSPROXY_BIN, $ORIGIN_BIN)"
ip netns add "$NSS" 2>"$TMP/netns.err" || skip "cannot create network namespaces: $(head -1 "$TMP/netns.err")"
ip netns add "$NSC" 2>"$TMP/netns.err" || skip "cannot create network namespaces: $(head -1 "$TMP/netns.err")"
ip link add "$VS" netns "$NSS" type veth peer name "$VC" netns "$NSC" 2>"$TMP/veth.err" ||
    skip "cannot create a veth pair: $(head -1 "$TMP/veth.err")"
ip -n "$NSS" addr add 192.168.79.1/24 dev "$VS"
ip -n "$NSC" addr add 192.168.79.2/24 dev "$VC"
for ns in "$NSS" "$NSC"; do ip -n "$ns" link set lo up; done
ip -n "$NSS" link set "$VS" up
ip -n "$NSC" link set "$VC" up

# the origin, on the server namespace's loopback
start_bg "$TMP/origin.out" ip netns exec "$NSS" "$ORIGIN_BIN" --listen 127.0.0.1:0
ORIGIN_PID=$BG_PID
for _ in $(seq 100); do grep -q '^listening' "$TMP/origin.out" 2>/dev/null && break; sleep 0.1; done
OPORT=$(awk '/^listening/ {print $2; exit}' "$TMP/origin.out")
[[ -n $OPORT ]] || { fail "mp-origin did not start: $(tail -2 "$TMP/origin.out")"; exit 1; }
kill -0 "$ORIGIN_PID" || exit 1

# the expected bytes: byte i of /size/N is i % 251
python3 -c "
import sys
n = $SIZE
pat = bytes(i % 251 for i in range(251))
out = sys.stdout.buffer
full, rest = divmod(n, 251)
out.write(pat * full + pat[:rest])" >"$TMP/expected"
WANT=$(sha256sum <"$TMP/expected" | cut -d' ' -f1)

MP_PID=
start_proxy() {   # start_proxy MODE
    [[ -n $MP_PID ]] && { kill -TERM -- "-$MP_PID" 2>/dev/null; wait "$MP_PID" 2>/dev/null; forget_pid "$MP_PID"; }
    cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen:
    - { address: "192.168.79.1:3128", mode: explicit }
    - { address: "127.0.0.1:3128", mode: explicit }
  workers: 1
  clients: [192.168.79.0/24, 127.0.0.0/8]
  connect_ports: [$OPORT]
  tunnel_relay: $1
  access_log: off
mus:
  control_socket: off
log_level: warn
EOF
    start_bg "$TMP/musproxy-$1.err" ip netns exec "$NSS" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
    MP_PID=$BG_PID
    for _ in $(seq 100); do
        ip netns exec "$NSS" ss -Hltn "sport = :3128" | grep -q . && return 0
        kill -0 "$MP_PID" 2>/dev/null || break
        sleep 0.1
    done
    fail "musproxy ($1) did not start: $(tail -3 "$TMP/musproxy-$1.err")"
    exit 1
}

pipes() {   # pipe descriptors musproxy holds now (`ip netns exec` execs it: same pid)
    find "/proc/$MP_PID/fd" -lname 'pipe:*' 2>/dev/null | wc -l
}

# download NS PROXY_ADDR LABEL WANT_PIPES: 96 MiB through CONNECT at 24 MiB/s,
# pipes counted after 1.5 s (beyond those held before), bytes checked at the end
download() {
    local ns=$1 addr=$2 label=$3 want=$4 n got base
    base=$(pipes)
    ip netns exec "$ns" curl -s --noproxy '' -p -x "http://$addr:3128" --limit-rate 24M \
        -o "$TMP/got" "http://127.0.0.1:$OPORT/size/$SIZE" &
    local cpid=$!
    sleep 1.5
    n=$(($(pipes) - base))
    wait "$cpid"; local rc=$?
    got=$(sha256sum <"$TMP/got" | cut -d' ' -f1)
    if [[ $rc == 0 && $got == "$WANT" ]]; then
        pass "$label: 96 MiB through the tunnel, byte for byte"
    else
        fail "$label: curl exit $rc, $(stat -c %s "$TMP/got" 2>/dev/null) bytes, sha256 $got"
    fi
    if [[ $n == "$want" ]]; then
        pass "$label: musproxy held $n pipe descriptors mid-transfer"
    else
        fail "$label: musproxy held $n pipe descriptors mid-transfer, want $want"
    fi
}

start_proxy auto
download "$NSC" 192.168.79.1 "auto, client across the veth" 2
download "$NSS" 127.0.0.1 "auto, client on loopback" 0
start_proxy splice
download "$NSS" 127.0.0.1 "splice, client on loopback" 4

exit "$FAILED"
