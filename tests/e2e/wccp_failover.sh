#!/usr/bin/env bash
# tests/e2e/wccp_failover.sh: two musproxy nodes in one WCCP service group
# split the buckets, one is killed, the other takes all of them and the
# traffic continues, on the data plane, in network namespaces.
#
#   client fc-$$      router fr-$$                      node A fa-$$ 10.79.2.2 (weight 100)
#   10.79.1.2 <-> 10.79.1.1 | 10.79.2.1 (router ID) <->  node B fb-$$ 10.79.3.2 (weight 300)
#                           | 10.79.3.1             <->
#                           | 10.79.4.1 <-> origin fo-$$ 10.79.4.2 + the destinations
#
# The router namespace runs wccp-router (tests/tools/wccp_router.c) at the
# router ID 10.79.2.1: WCCPv2 over UDP 2048 with both nodes, and with
# --tun its data plane: the client's TCP 80 (an ip rule) goes into the TUN
# device fwd0, and each packet is GRE-encapsulated to the node holding its
# destination's bucket (gre_wccp_bucket: the address's bytes XORed) in the
# hash assignment the router last accepted; unassigned buckets are routed
# on normally. Each node runs musproxy with wccp: (router 10.79.2.1,
# service 0, its weight) and gre: enabled (userspace decapsulation into its
# own TUN wccp0; tools/wccp-gre.sh up --userspace redirects wccp0's port 80
# to the transparent listener :3129). The origin namespace holds several
# destination addresses whose buckets fall on both nodes; mp-origin's /peer
# answers the address it was connected from: the node that served it.
# Both sides run a 500 ms Here_I_Am interval (MUSPROXY_WCCP_INTERVAL_MS,
# --interval-ms).
#
# Checks (one PASS:/FAIL: line each):
#   0. before any cache joins, the client's request is not redirected (the
#      router routes it on; the origin sees the client's own address);
#   1. both nodes in the view of each other and of the router, and the
#      buckets split by weight 100:300 = 64/192 (the router's assignment and
#      each node's own buckets in musctl status --json);
#   2. every destination is served by the node its bucket belongs to: the
#      origin saw that node, only that node's access log has the request,
#      and the router forwarded packets to both nodes;
#   3. node B is killed (SIGKILL, no goodbye): within the router's timeout
#      (3 intervals) plus two intervals (A hears of it with its next
#      Here_I_Am, then waits one interval for the view to settle), + 1 s for
#      the timer ticks and our polling, from the kill, the router has all
#      256 buckets on A, and A's status says so (and not before 2 intervals:
#      B was really gone);
#   4. then every destination, B's too, is served by A and logged there;
#   5. B joins again and the 64/192 split comes back; node A, the
#      designated cache, leaves cleanly (SIGTERM): it hands every bucket to
#      B before it goes, faster than any router timeout (within one
#      interval), and exits 0;
#   6. then every destination is served by B and logged there.
# Needs root, ip netns, veth, TUN, raw sockets, nft; exits 77 with
# "SKIP: reason" otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/e2e/lib.bash
MUSPROXY_BIN=${MUSPROXY_BIN:-build/musproxy}
MUSCTL_BIN=${MUSCTL_BIN:-$(dirname "$MUSPROXY_BIN")/musctl}
ORIGIN_BIN=${ORIGIN_BIN:-build/mp-origin}
ROUTER_BIN=${ROUTER_BIN:-$(dirname "$MUSPROXY_BIN")/tests/wccp-router}
e2e_init wccp_failover

T=500                                   # Here_I_Am interval (ms), nodes and router
export MUSPROXY_WCCP_INTERVAL_MS=$T
RID=10.79.2.1 A_IP=10.79.2.2 B_IP=10.79.3.2
# destinations: buckets 7, 27, 47 (A's 0-63) and 75, 137, 215 (B's 64-255)
DESTS=(10.79.4.70 10.79.4.90 10.79.4.110 10.79.4.10 10.79.4.200 10.79.4.150)

skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, raw sockets, TUN)"
for t in nft curl python3 jq; do command -v $t >/dev/null || skip "$t is not installed"; done
for b in "$MUSPROXY_BIN" "$MUSCTL_BIN" "$ORIGIN_BIN" "$ROUTER_BIN"; do
    [[ -x $b ]] || skip "$b not built"
done
[[ -c /dev/net/tun ]] || skip "no /dev/net/tun"

C=fc-$$ R=fr-$$ NA=fa-$$ NB=fb-$$ O=fo-$$
netns_cleanup() { for ns in "$C" "$R" "$NA" "$NB" "$O"; do ip netns del "$ns" 2>/dev/null; done; }
trap 'e2e_cleanup; netns_cleanup' EXIT
for ns in "$C" "$R" "$NA" "$NB" "$O"; do ip netns add "$ns" || skip "cannot create network namespaces"; done
veth() {   # veth NS1 IF1 ADDR1 NS2 IF2 ADDR2
    ip link add "$2" type veth peer name "$5" || skip "no veth"
    ip link set "$2" netns "$1"; ip link set "$5" netns "$4"
    ip -n "$1" addr add "$3" dev "$2"; ip -n "$4" addr add "$6" dev "$5"
    ip -n "$1" link set "$2" up; ip -n "$4" link set "$5" up
}
for ns in "$C" "$R" "$NA" "$NB" "$O"; do ip -n "$ns" link set lo up; done
veth "$C" c0-$$ 10.79.1.2/24 "$R" rc-$$ 10.79.1.1/24
veth "$R" ra-$$ $RID/24 "$NA" a0-$$ $A_IP/24
veth "$R" rb-$$ 10.79.3.1/24 "$NB" b0-$$ $B_IP/24
veth "$R" ro-$$ 10.79.4.1/24 "$O" o0-$$ 10.79.4.2/24
for d in "${DESTS[@]}"; do ip -n "$O" addr add "$d/24" dev o0-$$; done
ip -n "$C" route add default via 10.79.1.1
ip -n "$NA" route add default via $RID
ip -n "$NB" route add default via 10.79.3.1
ip -n "$O" route add default via 10.79.4.1
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$R" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
ip -n "$R" tuntap add dev fwd0 mode tun || skip "cannot create a TUN device"
ip -n "$R" link set fwd0 mtu 1472 up
ip -n "$R" rule add iif rc-$$ ipproto tcp dport 80 lookup 100 || skip "ip rule lacks ipproto/dport"
ip -n "$R" route add default dev fwd0 table 100

# the router: WCCP on 10.79.2.1:2048, its data plane reading fwd0
start_bg "$TMP/router.log" ip netns exec "$R" "$ROUTER_BIN" --address $RID \
    --control "$TMP/router.sock" --interval-ms $T --tun fwd0
ROUTER_PID=$BG_PID
for _ in $(seq 50); do [[ -S $TMP/router.sock ]] && break; sleep 0.1; done
if [[ ! -S $TMP/router.sock ]]; then
    grep -q "raw GRE socket\|/dev/net/tun\|TUNSETIFF" "$TMP/router.log" &&
        skip "wccp-router cannot forward: $(head -2 "$TMP/router.log")"
    echo "FAIL: wccp-router did not start"; cat "$TMP/router.log"; exit 1
fi
rask() {   # rask REQUEST: the router's answer line
    python3 - "$TMP/router.sock" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(3)
s.connect(sys.argv[1])
s.sendall((sys.argv[2] + "\n").encode())
out = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    out += d
print(out.decode().strip())
PY
}

start_bg "$TMP/origin.log" ip netns exec "$O" "$ORIGIN_BIN" --listen 0.0.0.0:80

node_conf() {   # node_conf NAME ADDRESS WEIGHT
    cat >"$TMP/$1.yaml" <<EOF
proxy:
  listen:
    - { address: "0.0.0.0:3129", mode: transparent }
  workers: 1
  clients: [10.79.1.0/24]
  access_log: $TMP/$1-access.log
mus:
  control_socket: $TMP/$1.sock
store: { path: off }
log_level: info
wccp:
  routers: [$RID]
  address: $2
  weight: $3
  services: [{ id: 0 }]
gre:
  enabled: true
  tun: wccp0
  address: 10.79.9.1/32
  routers: [$RID]
  mtu: 1472
EOF
}
node_conf a $A_IP 100
node_conf b $B_IP 300
for n in a b; do
    ns=$NA; [[ $n == b ]] && ns=$NB
    ip netns exec "$ns" bash tools/wccp-gre.sh up --userspace --tun wccp0 --port 3129 --ports 80 \
        >"$TMP/wccp-gre-$n.log" 2>&1 ||
        skip "nftables rules cannot be loaded: $(tail -1 "$TMP/wccp-gre-$n.log")"
done
status() {   # status NODE JQ: a field of its musctl status --json
    "$MUSCTL_BIN" status --json --socket "$TMP/$1.sock" 2>/dev/null | jq -r "$2"
}
A_PID='' B_PID=''
node_start() {   # node_start NAME: starts it, sets <NAME>_PID, waits for its control socket
    local ns=$NA
    [[ $1 == b ]] && ns=$NB
    rm -f "$TMP/$1.sock"
    start_bg "$TMP/$1.log" ip netns exec "$ns" "$MUSPROXY_BIN" -c "$TMP/$1.yaml"
    printf -v "${1^^}_PID" %s "$BG_PID"
    for _ in $(seq 100); do status "$1" .wccp.state >/dev/null && [[ -S $TMP/$1.sock ]] && return 0; sleep 0.1; done
    grep -q "raw IPPROTO_GRE socket\|TUN device" "$TMP/$1.log" &&
        skip "musproxy cannot open its GRE socket or TUN: $(grep gre: "$TMP/$1.log" | head -1)"
    echo "FAIL: musproxy $1 did not start"; tail -20 "$TMP/$1.log"; exit 1
}
now_ms() { date +%s%3N; }
wait_router() {   # wait_router WANT MS [T0]: until the router's assignment contains WANT;
    local t0=${3:-$(now_ms)} now   # ms since T0 (default: now), or -1

    while :; do
        now=$(now_ms)
        grep -qF -- "$1" <<<"$(rask assignment)" && { echo $((now - t0)); return 0; }
        ((now - t0 > $2)) && { echo -1; return 1; }
        sleep 0.05
    done
}
wait_status() {   # wait_status NODE JQ VALUE MS: until the field is VALUE
    local i
    for ((i = 0; i < $4 / 100; i++)); do
        [[ $(status "$1" "$2") == "$3" ]] && return 0
        sleep 0.1
    done
    return 1
}
bucket() { local a b c d; IFS=. read -r a b c d <<<"$1"; echo $((a ^ b ^ c ^ d)); }
CURL=(timeout 15 curl -s --noproxy '*' --max-time 10)
logged() { grep -c " GET http://$2/peer " "$TMP/$1-access.log" 2>/dev/null || true; }
# serve_all WANT_A WANT_B: requests every destination; WANT_x is the list of
# destinations node x must serve (the other node must log nothing for it).
# Prints the mismatches, nothing when all were served as wanted.
serve_all() {
    local d peer want node other before_n before_o bad=""
    for d in "${DESTS[@]}"; do
        if [[ " $1 " == *" $d "* ]]; then want=$A_IP node=a other=b; else want=$B_IP node=b other=a; fi
        before_n=$(logged $node "$d") before_o=$(logged $other "$d")
        peer=$(ip netns exec "$C" "${CURL[@]}" "http://$d/peer")
        if [[ $peer != "$want" || $(logged $node "$d") != $((before_n + 1)) ||
              $(logged $other "$d") != "$before_o" ]]; then
            bad+=" $d(bucket $(bucket "$d"): origin saw '${peer:-nothing}', want $want; logged by $node $before_n->$(logged $node "$d"), by $other $before_o->$(logged $other "$d"))"
        fi
    done
    echo "$bad"
}

# ---- 0. no cache yet: every bucket unassigned, nothing is redirected
for _ in $(seq 50); do ip netns exec "$O" ss -Hltn | grep -q ':80 ' && break; sleep 0.1; done
peer=$(ip netns exec "$C" "${CURL[@]}" "http://${DESTS[0]}/peer")
if [[ $peer == 10.79.1.2 && $(rask forwarded) == *"not_redirected="[1-9]* ]]; then
    pass "no cache yet: http://${DESTS[0]}/ is not redirected, the origin sees the client itself ($(rask forwarded))"
else
    fail "no cache yet: the origin saw '$peer'; router: $(rask forwarded)"
fi

# ---- 1. the group: two caches, buckets by weight
node_start a
node_start b
took=$(wait_router "form=hash $A_IP=64 $B_IP=192 none=0" $((30 * T)))
wait_status a '.wccp.services[0].buckets' 64 $((4 * T))
wait_status b '.wccp.services[0].buckets' 192 $((4 * T))
va=$(status a '[.wccp.services[0].caches[].address] | join(",")')
vb=$(status b '[.wccp.services[0].caches[].address] | join(",")')
if [[ $took -ge 0 && $va == "$A_IP,$B_IP" && $vb == "$A_IP,$B_IP" &&
      $(status a '.wccp.services[0].buckets') == 64 && $(status b '.wccp.services[0].buckets') == 192 &&
      $(status a '.wccp.services[0].designated') == "$A_IP" &&
      $(rask view) == *"caches=$A_IP,$B_IP"* ]]; then
    pass "group: both caches in every view ($va), the buckets split by weight 100:300 = 64/192 (router: $(rask assignment); A's status 64, B's 192; A designated)"
else
    fail "group: router '$(rask assignment)' view '$(rask view)'; A sees '$va' with $(status a '.wccp.services[0].buckets') buckets, B sees '$vb' with $(status b '.wccp.services[0].buckets')"
    tail -n 5 "$TMP/router.log" "$TMP/a.log" "$TMP/b.log"
fi

# the destinations' owners as the router holds them
read -ra BUCKETS <<<"$(rask buckets)"
ON_A=() ON_B=()
for d in "${DESTS[@]}"; do
    case ${BUCKETS[$(bucket "$d")]} in
    "$A_IP") ON_A+=("$d") ;;
    "$B_IP") ON_B+=("$d") ;;
    esac
done

# ---- 2. each destination served by the node of its bucket
bad=$(serve_all "${ON_A[*]}")
fwd=$(rask forwarded)
if [[ ${#ON_A[@]} -ge 2 && ${#ON_B[@]} -ge 2 && -z $bad && $fwd == *"$A_IP="* && $fwd == *"$B_IP="* &&
      $(status a '.gre.decapsulated') -gt 0 && $(status b '.gre.decapsulated') -gt 0 ]]; then
    pass "split traffic: ${ON_A[*]} served by A and logged only by A, ${ON_B[*]} by B only (router forwarded: $fwd)"
else
    fail "split traffic: on A '${ON_A[*]}', on B '${ON_B[*]}';$bad; router forwarded: $fwd"
    tail -n 3 "$TMP/a-access.log" "$TMP/b-access.log"
fi

# ---- 3. B is killed: no goodbye, the router times it out, A takes everything
t_kill=$(now_ms)
kill -KILL -- "-$B_PID"
wait "$B_PID" 2>/dev/null      # its exit takes a while: the kernel removes its TUN device
forget_pid "$B_PID"
limit=$((3 * T + 2 * T))   # + 1 s: the agent's 250 ms timer tick, the router's, our polling
took=$(wait_router "form=hash $A_IP=256 none=0" $((limit + 3000)) "$t_kill")
wait_status a '.wccp.services[0].buckets' 256 $((2 * T))
if [[ $took -ge $((2 * T)) && $took -le $((limit + 1000)) &&
      $(status a '.wccp.services[0].buckets') == 256 &&
      $(status a '.wccp.services[0].caches | length') == 1 &&
      $(status a '.wccp.services[0].state') == designated &&
      $(grep -c "cache $B_IP removed (silent for 3 intervals)" "$TMP/router.log") == 1 ]]; then
    pass "B killed: after $took ms (router timeout $((3 * T)) ms + at most 2 intervals = $limit ms, + 1 s of timer ticks) the router has all 256 buckets on A, which says so itself (1 cache in its view, designated)"
else
    fail "B killed: took $took ms (want $((2 * T))..$((limit + 1000))); router '$(rask assignment)'; A: $(status a '.wccp.services[0] | {state, buckets, caches}' | tr -d ' \n')"
    grep "removed\|refused" "$TMP/router.log" | tail -3
fi

# ---- 4. B's destinations now reach A
bad=$(serve_all "${DESTS[*]}")
if [[ -z $bad ]]; then
    pass "after the failover: all ${#DESTS[@]} destinations (B's ${ON_B[*]} too) served by A and logged there"
else
    fail "after the failover:$bad"
fi

# ---- 5. B joins again; A (designated) leaves cleanly and hands over
node_start b
took=$(wait_router "form=hash $A_IP=64 $B_IP=192 none=0" $((30 * T)))
[[ $took -ge 0 ]] || fail "B joined again but the split did not come back: $(rask assignment)"
t_term=$(now_ms)
kill -TERM "$A_PID"
took=$(wait_router "form=hash $B_IP=256 none=0" $((3 * T)) "$t_term")
a_rc=0
for _ in $(seq 100); do kill -0 "$A_PID" 2>/dev/null || break; sleep 0.1; done
wait "$A_PID"; a_rc=$?
forget_pid "$A_PID"
wait_status b '.wccp.services[0].buckets' 256 $((4 * T))
if [[ $took -ge 0 && $took -le $T && $a_rc == 0 &&
      $(grep -c "cache $A_IP removed (shutdown command)" "$TMP/router.log") == 1 &&
      $(grep -c "Redirect_Assign .* leaving" "$TMP/a.log") -ge 1 &&
      $(status b '.wccp.services[0].buckets') == 256 ]]; then
    pass "A leaves (SIGTERM): its buckets handed to B after $took ms (within one interval, before any timeout), A said goodbye and exited 0, B shows 256 buckets"
else
    fail "A leaves: took $took ms (want <= $T), A exit $a_rc; router '$(rask assignment)'; B has $(status b '.wccp.services[0].buckets'); $(grep "removed" "$TMP/router.log" | tail -2)"
fi

# ---- 6. everything reaches B
bad=$(serve_all "")
if [[ -z $bad ]]; then
    pass "after the clean leave: all ${#DESTS[@]} destinations (A's ${ON_A[*]} too) served by B and logged there"
else
    fail "after the clean leave:$bad"
fi

[[ ${VERBOSE:-0} == 1 ]] && { cat "$TMP/router.log"; tail -20 "$TMP/a.log" "$TMP/b.log"; rask forwarded; }
kill -0 "$ROUTER_PID" 2>/dev/null || fail "wccp-router died: $(tail -2 "$TMP/router.log")"
exit $FAILED
