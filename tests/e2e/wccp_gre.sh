#!/usr/bin/env bash
# tests/e2e/wccp_gre.sh: WCCP GRE redirection decapsulated by musproxy
# itself (proxy/gre.c: no ip_gre in the kernel), in network namespaces.
#
#   client gc-$$        router gr-$$                    proxy gp-$$           origin go-$$
#   10.78.1.2  <-> 10.78.1.1 | 10.78.2.1 | 10.78.3.1 <-> 10.78.2.2             10.78.3.2
#                  (router ID 10.78.2.1)          <----------------------->
#
# The router forwards the client's TCP 80/443 (an ip rule) into the TUN
# device genc0, where gre-encap (tests/tools/gre_encap.c) sends each packet
# GRE-encapsulated with a WCCPv2 redirect header (service 0, bucket from
# gre_wccp_bucket) to the cache 10.78.2.2, sourced from the router ID.
# musproxy (gre: enabled) decapsulates into its TUN wccp0 (10.78.9.1/32,
# mtu 1472); nftables there redirects wccp0's 80/443 to the transparent
# listener :3129 and clamps the MSS of those connections to 1432. Replies go
# back by normal routing through the router (asymmetric: rp_filter 0).
#
# Checks (one PASS:/FAIL: line each):
#   1. HTTP: curl (no proxy settings) http://10.78.3.2/size/5000 -> the
#      origin's 5000 bytes, byte for byte; logged for 10.78.1.2, mode transparent;
#   2. HTTPS by SNI: curl https://origin.test/peer with the origin's CA ->
#      verified, served, logged TCP_TUNNEL CONNECT origin.test:443;
#   3. the GRE counters (musctl status --json and its text) count the
#      packets, per router too;
#   4. a valid GRE packet from a non-router address (10.78.1.1) is dropped
#      and counted as not_router;
#   5. malformed GRE from the router (checksum flag set; inner length lying)
#      is dropped as bad_gre / bad_inner, and the next request is served;
#   6. a WCCPv1 packet (no redirect header) is accepted and counted;
#   5b. with wccp0 down a packet is dropped as tun_write with the error kept;
#   7. MTU: 100 KB down and 100 KB up (POST /echo) through the 1472-byte path,
#      the SYN-ACK's MSS clamped to 1432 (seen by tshark on the router, when
#      installed);
#   8. headless Chromium in the client namespace (no proxy settings) loads
#      the HTTP page, the HTTPS page (the origin's certificate verified
#      against our CA, trusted in an NSS database of its own with certutil)
#      and a blocked HTTP site, which renders the block page;
#   9. /metrics (a mode: metrics listener in the proxy's namespace) says what
#      musctl status says of GRE (received, decapsulated, dropped by reason,
#      per router), counts two tls relays per intercepted TLS tunnel of the
#      access log, and passes promtool check metrics (when installed);
#  10. the client is a VPN user mapped by mus-headend (a session for
#      10.78.1.2 as alice): a site blocked for everyone gets the block page
#      over HTTP (logged TCP_DENIED/403 for alice) and a refused handshake
#      over HTTPS by SNI (logged TCP_DENIED/403 CONNECT blocked.test:443);
#  11. a site blocked by the remote policy only is refused to alice with
#      location remote and access policy remote in the extended log.
# Needs root, ip netns, veth, TUN, raw sockets, nft; exits 77 with
# "SKIP: reason" otherwise. CHROMIUM=none skips check 8 (with a SKIP line).
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
MUSPROXY_BIN=${MUSPROXY_BIN:-build/musproxy}
MUSCTL_BIN=${MUSCTL_BIN:-build/musctl}
ORIGIN_BIN=${ORIGIN_BIN:-build/mp-origin}
ENCAP_BIN=${ENCAP_BIN:-build/tests/gre-encap}
HEADEND_BIN=${HEADEND_BIN:-$(dirname "$MUSPROXY_BIN")/mus-headend}
CHROMIUM=${CHROMIUM:-chromium}
e2e_init wccp_gre

skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, raw sockets, TUN)"
for t in nft curl openssl python3 jq; do command -v $t >/dev/null || skip "$t is not installed"; done
for b in "$MUSPROXY_BIN" "$MUSCTL_BIN" "$ORIGIN_BIN" "$ENCAP_BIN" "$HEADEND_BIN"; do
    [[ -x $b ]] || skip "$b not built"
done
[[ -c /dev/net/tun ]] || skip "no /dev/net/tun"

C=gc-$$ R=gr-$$ P=gp-$$ O=go-$$
netns_cleanup() { for ns in "$C" "$R" "$P" "$O"; do ip netns del "$ns" 2>/dev/null; done; }
trap 'e2e_cleanup; netns_cleanup' EXIT
for ns in "$C" "$R" "$P" "$O"; do ip netns add "$ns" || skip "cannot create network namespaces"; done
inC() { ip netns exec "$C" "$@"; }
inR() { ip netns exec "$R" "$@"; }
inP() { ip netns exec "$P" "$@"; }
inO() { ip netns exec "$O" "$@"; }
veth() {   # veth NS1 IF1 ADDR1 NS2 IF2 ADDR2
    ip link add "$2" type veth peer name "$5" || skip "no veth"
    ip link set "$2" netns "$1"; ip link set "$5" netns "$4"
    ip -n "$1" addr add "$3" dev "$2"; ip -n "$4" addr add "$6" dev "$5"
    ip -n "$1" link set "$2" up; ip -n "$4" link set "$5" up
}
for ns in "$C" "$R" "$P" "$O"; do ip -n "$ns" link set lo up; done
veth "$C" c0-$$ 10.78.1.2/24 "$R" rc-$$ 10.78.1.1/24
veth "$R" rp-$$ 10.78.2.1/24 "$P" p0-$$ 10.78.2.2/24
veth "$R" ro-$$ 10.78.3.1/24 "$O" o0-$$ 10.78.3.2/24
ip -n "$C" route add default via 10.78.1.1
ip -n "$P" route add default via 10.78.2.1
ip -n "$O" route add default via 10.78.3.1
inR sysctl -qw net.ipv4.ip_forward=1
inR sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
# the router: the client's web traffic into genc0, read by gre-encap
ip -n "$R" tuntap add dev genc0 mode tun || skip "cannot create a TUN device"
ip -n "$R" link set genc0 mtu 1472 up
for port in 80 443; do
    ip -n "$R" rule add iif rc-$$ ipproto tcp dport $port lookup 100 || skip "ip rule lacks ipproto/dport"
done
ip -n "$R" route add default dev genc0 table 100
start_bg "$TMP/encap.log" ip netns exec "$R" "$ENCAP_BIN" --tun genc0 --local 10.78.2.1 --cache 10.78.2.2
for _ in $(seq 50); do grep -q ready "$TMP/encap.log" && break; sleep 0.1; done
grep -q ready "$TMP/encap.log" || skip "gre-encap cannot run: $(head -2 "$TMP/encap.log")"

# the proxy: redirect what arrives decapsulated on wccp0, clamp its MSS,
# rp_filter off: tools/wccp-gre.sh for real (its kernel-GRE half is only
# checked in --dry-run, by tests/tools/wccp_gre_sh.sh)
inP bash tools/wccp-gre.sh up --userspace --tun wccp0 --port 3129 >"$TMP/wccp-gre.log" 2>&1 ||
    skip "nftables rules cannot be loaded: $(tail -1 "$TMP/wccp-gre.log")"

# origins: HTTP and HTTPS (certificate from our own CA)
start_bg "$TMP/origin.log" ip netns exec "$O" "$ORIGIN_BIN" --listen 10.78.3.2:80
origin_cert DNS:origin.test
start_bg "$TMP/origin-tls.log" ip netns exec "$O" "$ORIGIN_BIN" --listen 10.78.3.2:443 \
    --tls "$TMP/origin.pem" "$TMP/origin.key"

# the VPN headend, in the proxy's namespace: alice's session holds 10.78.1.2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -keyout "$TMP/headend.key" -out "$TMP/headend.pem" -subj /CN=127.0.0.1 \
    -addext "subjectAltName=IP:127.0.0.1" 2>/dev/null
head -c 24 /dev/urandom | base64 >"$TMP/mus.secret"
chmod 600 "$TMP/mus.secret" "$TMP/headend.key"
printf '%s\n' '{"sid": "vpn-1", "ips": ["10.78.1.2"], "id": {"type": "user", "name": "alice", "domain": "LAB"}, "groups": ["staff"], "started": 1795000000, "client_ip": "198.51.100.9", "tunnel": "ssl"}' \
    >"$TMP/sessions.jsonl"
start_bg "$TMP/headend.log" ip netns exec "$P" "$HEADEND_BIN" --listen 127.0.0.1:11999 \
    --cert "$TMP/headend.pem" --key "$TMP/headend.key" --password-file "$TMP/mus.secret" \
    --sessions "$TMP/sessions.jsonl" --kdf-iter 10000

cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen:
    - { address: "0.0.0.0:3129", mode: transparent }
    - { address: "127.0.0.1:9129", mode: metrics }
  workers: 1
  clients: [10.78.1.0/24, 127.0.0.0/8]   # the second: the scrape of check 9
  access_log: $TMP/access.log
mus:
  control_socket: $TMP/musproxy.sock
  remote_users: headend
  reconnect_interval: 1s
  headends:
    - { name: lab-vpn, addresses: ["127.0.0.1:11999"], ca: $TMP/headend.pem, password_file: $TMP/mus.secret }
store: { path: off }
extended_log: $TMP/extended.log
identity_profiles:
  - { name: remote-users, location: remote, mode: transparent }
  - { name: everyone }
access_policies:
  - { name: remote, profiles: [remote-users], categories: { blocked: block, remote-only: block } }
  - { name: office, profiles: [everyone], categories: { blocked: block } }
  - { name: default, default: allow }
custom_categories:
  - { name: blocked, domains: [blocked.test] }
  - { name: remote-only, domains: [remote-only.test] }
gre:
  enabled: true
  tun: wccp0
  address: 10.78.9.1/32
  routers: [10.78.2.1]
  mtu: 1472
EOF
start_bg "$TMP/musproxy.log" ip netns exec "$P" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
for _ in $(seq 100); do [[ -S $TMP/musproxy.sock ]] && break; sleep 0.1; done
if [[ ! -S $TMP/musproxy.sock ]]; then
    grep -q "raw IPPROTO_GRE socket\|TUN device" "$TMP/musproxy.log" &&
        skip "musproxy cannot open its GRE socket or TUN: $(grep gre: "$TMP/musproxy.log" | head -1)"
    echo "FAIL: musproxy did not start"; cat "$TMP/musproxy.log"; exit 1
fi
for _ in $(seq 50); do inO ss -Hltn | grep -q ':443' && break; sleep 0.1; done

CURL=(timeout 20 curl -s --noproxy '*' --max-time 15)
TLS=(--cacert "$TMP/ca.pem" --resolve origin.test:443:10.78.3.2)
gre() { "$MUSCTL_BIN" status --json --socket "$TMP/musproxy.sock" | jq -r ".gre$1"; }
expected() { python3 -c "import sys; n=int(sys.argv[1]); sys.stdout.buffer.write(bytes(i % 251 for i in range(n)))" "$1"; }

# ---- 1. HTTP
expected 5000 >"$TMP/want5000"
code=$(inC "${CURL[@]}" -o "$TMP/got5000" -w '%{http_code}' http://10.78.3.2/size/5000)
if [[ $code == 200 ]] && cmp -s "$TMP/want5000" "$TMP/got5000" &&
   grep -q " 10.78.1.2 TCP_MISS/200 .* GET http://10.78.3.2/size/5000 " "$TMP/access.log" &&
   tail -1 "$TMP/extended.log" | grep -q '"mode":"transparent"'; then
    pass "HTTP through GRE: 5000 bytes from 10.78.3.2 byte for byte, logged for 10.78.1.2, mode transparent"
else
    fail "HTTP through GRE: code '$code', $(cmp "$TMP/want5000" "$TMP/got5000" 2>&1)"
    tail -3 "$TMP/access.log"; tail -5 "$TMP/musproxy.log"; cat "$TMP/encap.log"
fi

# ---- 2. HTTPS by SNI
peer=$(inC "${CURL[@]}" "${TLS[@]}" https://origin.test/peer)
if [[ $peer == 10.78.2.2 ]] &&
   grep -q " 10.78.1.2 TCP_TUNNEL/200 .* CONNECT origin.test:443 " "$TMP/access.log"; then
    pass "HTTPS through GRE: https://origin.test/ verified against the origin's CA, relayed by SNI (origin saw $peer), logged CONNECT origin.test:443"
else
    fail "HTTPS through GRE: got '$peer'"; tail -3 "$TMP/access.log"
fi

# ---- 3. the counters
dec=$(gre .decapsulated) pin=$(gre .packets_in) rp=$(gre '.routers[0].packets')
text=$("$MUSCTL_BIN" status --socket "$TMP/musproxy.sock" | grep -A3 '^GRE:')
if [[ $dec -gt 10 && $pin -ge $dec && $rp == "$dec" && $(gre .routers[0].address) == 10.78.2.1 ]] &&
   grep -q "^GRE: wccp0 (mtu 1472): $pin packets in" <<<"$text" &&
   grep -q "router 10.78.2.1: $rp packets" <<<"$text"; then
    pass "counters: $pin GRE packets in, $dec decapsulated, all from router 10.78.2.1 (musctl status shows them)"
else
    fail "counters: in '$pin' decapsulated '$dec' router '$rp'; text: $text"
fi

# raw GRE packets sent by hand: gre_send SRC HEX
gre_send() {
    inR python3 -c '
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_GRE)
s.bind((sys.argv[1], 0))
s.sendto(bytes.fromhex(sys.argv[2]), ("10.78.2.2", 0))' "$1" "$2"
}
# the inner packet of the hand-made ones: an ICMP echo 10.78.1.2 -> 10.78.3.2
# (28 bytes); INNER_LIE is the same with a total length of 1000
ip_packet() {
    python3 -c '
import struct, sys
h = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, int(sys.argv[1]), 1, 0, 64, 1, 0,
                          bytes([10, 78, 1, 2]), bytes([10, 78, 3, 2])))
c = sum(struct.unpack("!10H", h)); c = (c & 0xffff) + (c >> 16); c = (c & 0xffff) + (c >> 16)
h[10:12] = struct.pack("!H", ~c & 0xffff)
print((bytes(h) + bytes.fromhex("0800f7ff00000000")).hex())' "$1"
}
INNER=$(ip_packet 28) INNER_LIE=$(ip_packet 1000)
wait_count() {   # wait_count FIELD N: until .gre FIELD is N (2 s)
    for _ in $(seq 20); do [[ $(gre "$1") == "$2" ]] && return 0; sleep 0.1; done; return 1
}

# ---- 4. not from a router
nr=$(gre .dropped.not_router) d0=$(gre .decapsulated)
gre_send 10.78.1.1 "0000883e00000007$INNER"
if wait_count .dropped.not_router $((nr + 1)) && [[ $(gre .decapsulated) == "$d0" ]] &&
   grep -q "gre: packet from 10.78.1.1 dropped (not_router" "$TMP/musproxy.log"; then
    pass "not a router: a valid GRE packet from 10.78.1.1 is dropped and counted (not_router $((nr + 1)))"
else
    fail "not a router: not_router $(gre .dropped.not_router) (was $nr), decapsulated $(gre .decapsulated) (was $d0)"
fi

# ---- 5. malformed: checksum flag; the inner length lying (says 1000, 28 there)
bg=$(gre .dropped.bad_gre) bi=$(gre .dropped.bad_inner)
gre_send 10.78.2.1 "8000883e0000000000000007$INNER"
gre_send 10.78.2.1 "0000883e00000007$INNER_LIE"
wait_count .dropped.bad_gre $((bg + 1)); wait_count .dropped.bad_inner $((bi + 1))
again=$(inC "${CURL[@]}" http://10.78.3.2/peer)
if [[ $(gre .dropped.bad_gre) == $((bg + 1)) && $(gre .dropped.bad_inner) == $((bi + 1)) &&
      $again == 10.78.2.2 ]]; then
    pass "malformed GRE: checksum flag -> bad_gre, inner length 1000 of 28 -> bad_inner; the next request is served"
else
    fail "malformed GRE: bad_gre $(gre .dropped.bad_gre) (was $bg), bad_inner $(gre .dropped.bad_inner) (was $bi), then '$again'"
fi

# ---- 5b. the TUN device refuses: down (an operator's mistake) -> tun_write, counted
tw=$(gre .dropped.tun_write)
ip -n "$P" link set wccp0 down
gre_send 10.78.2.1 "0000883e00000007$INNER"
wait_count .dropped.tun_write $((tw + 1))
got_tw=$(gre .dropped.tun_write) le=$(gre .last_error)
ip -n "$P" link set wccp0 up
ip -n "$P" addr replace 10.78.9.1/32 dev wccp0
again=$(inC "${CURL[@]}" http://10.78.3.2/peer)
if [[ $got_tw == $((tw + 1)) && $le == *"wccp0: writing"* && $again == 10.78.2.2 ]]; then
    pass "TUN write error: with wccp0 down the packet is dropped as tun_write ($le); up again, served"
else
    fail "TUN write error: tun_write $got_tw (was $tw), last error '$le', then '$again'"
fi

# ---- 6. WCCPv1: no redirect header
v1=$(gre .wccpv1)
gre_send 10.78.2.1 "0000883e$INNER"
if wait_count .wccpv1 $((v1 + 1)); then
    pass "WCCPv1: a GRE packet without a redirect header is decapsulated (wccpv1 $((v1 + 1)))"
else
    fail "WCCPv1: wccpv1 $(gre .wccpv1) (was $v1); last error $(gre .last_error)"
fi

# ---- 7. MTU: 100 KB each way; the SYN-ACK's MSS is clamped to 1472 - 40
expected 102400 >"$TMP/want100k"
mss=none
if command -v tshark >/dev/null; then
    inR timeout 15 tshark -q -i rc-$$ -f "tcp src port 80 and tcp[13] & 18 == 18" -c 1 \
        -T fields -e tcp.options.mss_val >"$TMP/mss.txt" 2>"$TMP/tshark.log" &
    TSHARK=$!
    for _ in $(seq 50); do grep -q "Capturing on" "$TMP/tshark.log" && break; sleep 0.1; done
fi
code=$(inC "${CURL[@]}" -o "$TMP/got100k" -w '%{http_code}' http://10.78.3.2/size/102400)
echo_out=$(inC "${CURL[@]}" --data-binary @"$TMP/want100k" -H 'Content-Type: application/octet-stream' \
    http://10.78.3.2/echo)
fnv=$(python3 -c '
import sys
h = 0xcbf29ce484222325
for b in open(sys.argv[1], "rb").read():
    h = ((h ^ b) * 0x100000001b3) & 0xffffffffffffffff
print("%016x" % h)' "$TMP/want100k")
if [[ -n ${TSHARK:-} ]]; then wait "$TSHARK"; mss=$(head -1 "$TMP/mss.txt"); fi
if [[ $code == 200 ]] && cmp -s "$TMP/want100k" "$TMP/got100k" &&
   grep -q "\"length\":102400,\"fnv1a64\":\"$fnv\"" <<<"$echo_out" && [[ $mss == 1432 || $mss == none ]]; then
    pass "MTU: 100 KB downloaded byte for byte and 100 KB uploaded (origin's FNV-1a matches) through the 1472-byte GRE path; SYN-ACK MSS $mss"
else
    fail "MTU: download $code $(cmp "$TMP/want100k" "$TMP/got100k" 2>&1); upload '$echo_out' want $fnv; MSS '$mss'"
fi

# ---- 8. headless Chromium in the client namespace
if [[ $CHROMIUM == none ]] || ! command -v "$CHROMIUM" >/dev/null; then
    echo "SKIP: chromium check: $CHROMIUM is not installed"
else
    # Chromium on Linux trusts the roots of the user's NSS database
    # ($HOME/.pki/nssdb): one of its own holds our CA, nothing is pinned
    CHOME=$TMP/chrome-home
    nss_trust_ca "$CHOME" "$TMP/ca.pem" || fail "certutil could not make the NSS database"
    chrome() {   # chrome NAME URL
        inC env HOME="$CHOME" timeout -k 5 40 "$CHROMIUM" --headless --no-sandbox --disable-gpu \
            --disable-quic --no-first-run --disable-background-networking \
            --disable-component-update --disable-sync --disable-extensions \
            --user-data-dir="$TMP/profile-$1" \
            --host-resolver-rules="MAP origin.test 10.78.3.2, MAP blocked.test 10.78.3.2" \
            --dump-dom "$2" >"$TMP/$1.html" 2>"$TMP/$1.chromium.log" </dev/null
    }
    chrome http http://10.78.3.2/headers
    chrome https https://origin.test/headers
    chrome blocked http://blocked.test/
    if grep -q "Host: 10.78.3.2" "$TMP/http.html" && grep -q "Host: origin.test" "$TMP/https.html" &&
       grep -q "Access to this site is blocked" "$TMP/blocked.html" &&
       grep -q " 10.78.1.2 TCP_MISS/200 .* GET http://10.78.3.2/headers " "$TMP/access.log" &&
       [[ $(grep -c " 10.78.1.2 TCP_TUNNEL/200 .* CONNECT origin.test:443 " "$TMP/access.log") -ge 2 ]]; then
        pass "chromium (no proxy settings): http://10.78.3.2/headers, https://origin.test/headers (certificate verified against our CA) and the block page of http://blocked.test/ rendered through GRE, all logged"
    else
        fail "chromium: http DOM '$(head -c 200 "$TMP/http.html")' https DOM '$(head -c 200 "$TMP/https.html")' blocked DOM '$(head -c 200 "$TMP/blocked.html")'; $(grep -oE 'ERR_[A-Z_]+' "$TMP"/*.chromium.log | sort -u | tr '\n' ' ')"
    fi
fi

# ---- 9. /metrics against musctl status and the access log
inP curl -s --max-time 5 http://127.0.0.1:9129/metrics >"$TMP/metrics.txt"
mval() { awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print "absent" }' "$TMP/metrics.txt"; }
bad=""
[[ $(mval musproxy_gre_packets_received_total) == $(gre .packets_in) ]] || bad+=" received"
[[ $(mval musproxy_gre_packets_decapsulated_total) == $(gre .decapsulated) ]] || bad+=" decapsulated"
[[ $(mval musproxy_gre_wccpv1_packets_total) == $(gre .wccpv1) ]] || bad+=" wccpv1"
for r in not_router bad_gre bad_inner tun_write; do
    [[ $(mval "musproxy_gre_packets_dropped_total{reason=\"$r\"}") == $(gre ".dropped.$r") ]] || bad+=" $r"
done
[[ $(mval 'musproxy_gre_router_packets_total{router="10.78.2.1"}') == $(gre '.routers[0].packets') ]] || bad+=" router"
tls_lines=$(grep -c " TCP_TUNNEL/200 .* CONNECT origin.test:443 " "$TMP/access.log")
tls_relays=$(awk '/^musproxy_tunnel_relays_total[{]kind="tls",/ { s += $2; f = 1 }
                  END { print f ? s : "absent" }' "$TMP/metrics.txt")
[[ $tls_relays == $((2 * tls_lines)) ]] || bad+=" tls relays $tls_relays for $tls_lines tunnels"
if command -v promtool >/dev/null; then
    out=$(promtool check metrics <"$TMP/metrics.txt" 2>&1) && [[ -z $out ]] || bad+=" promtool: $out"
fi
if [[ -z $bad ]]; then
    pass "/metrics: GRE $(mval musproxy_gre_packets_received_total) received, $(mval musproxy_gre_packets_decapsulated_total) decapsulated, drops by reason as musctl status; $tls_relays tls relays for $tls_lines TLS tunnels"
else
    fail "/metrics disagrees:$bad"
fi

# ---- 10. a VPN user from mus-headend: blocked sites over HTTP and HTTPS
mapped=
for _ in $(seq 100); do
    "$MUSCTL_BIN" map --ip 10.78.1.2 --json --socket "$TMP/musproxy.sock" 2>/dev/null |
        grep -q '"alice"' && { mapped=1; break; }
    sleep 0.1
done
[[ -n $mapped ]] || fail "mus-headend: 10.78.1.2 never mapped to alice: $(tail -3 "$TMP/headend.log")"
code=$(inC "${CURL[@]}" -o "$TMP/block.html" -w '%{http_code}' -H 'Host: blocked.test' http://10.78.3.2/)
inC "${CURL[@]}" --cacert "$TMP/ca.pem" --resolve blocked.test:443:10.78.3.2 -o /dev/null \
    https://blocked.test/ 2>"$TMP/blocked-tls.err"
tls_rc=$?
if [[ $code == 403 ]] && grep -q "Access to this site is blocked" "$TMP/block.html" &&
   grep -q " 10.78.1.2 TCP_DENIED/403 .* GET http://blocked.test/ alice" "$TMP/access.log" &&
   [[ $tls_rc != 0 ]] &&
   grep -q " 10.78.1.2 TCP_DENIED/403 .* CONNECT blocked.test:443 alice" "$TMP/access.log"; then
    pass "VPN user alice (mus-headend) through GRE: blocked.test gets the block page over HTTP and a refused handshake over HTTPS (curl exit $tls_rc), both logged TCP_DENIED/403 for alice"
else
    fail "blocked sites: HTTP $code, HTTPS curl exit $tls_rc; $(grep blocked.test "$TMP/access.log" | tail -2)"
fi

# ---- 11. the remote policy applies to the VPN user
code=$(inC "${CURL[@]}" -o /dev/null -w '%{http_code}' -H 'Host: remote-only.test' http://10.78.3.2/)
line=$(grep 'remote-only.test' "$TMP/extended.log" | tail -1)
if [[ $code == 403 ]] && grep -q '"location":"remote"' <<<"$line" &&
   grep -q '"access_policy":"remote"' <<<"$line" && grep -q '"user":"alice"' <<<"$line"; then
    pass "remote policy in transparent mode: remote-only.test refused to alice (location remote, policy remote)"
else
    fail "remote policy: $code; $line"
fi

[[ ${VERBOSE:-0} == 1 ]] && { tail -20 "$TMP/access.log"; tail -20 "$TMP/musproxy.log";
    "$MUSCTL_BIN" status --socket "$TMP/musproxy.sock" | grep -A4 '^GRE'; }
exit $FAILED
