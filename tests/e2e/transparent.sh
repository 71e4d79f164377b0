#!/usr/bin/env bash
# tests/e2e/transparent.sh: intercepted traffic in network namespaces, with
# nftables REDIRECT (IPv4 and IPv6) and TPROXY, clients with no proxy settings.
#
#   client ns tc-$$            router+proxy ns tp-$$             origin ns to-$$
#   10.77.1.2, fd77:1::2  <->  10.77.1.1 | 10.77.2.1       <->  10.77.2.2, fd77:2::2
#                              fd77:1::1 | fd77:2::1            (.3 a second address)
#
# The proxy namespace routes between the two others; nftables there sends
# port 80 from the client side to musproxy's REDIRECT listener (:3129, IPv4
# and IPv6), port 8080 to its TPROXY listener (:3130, spoof_client_address),
# and port 443 (later: TLS by SNI) to :3129 too. mp-origin listens in the
# origin namespace. Names: /etc/netns/tp-$$/hosts (bind-mounted over
# /etc/hosts by `ip netns exec`, read by c-ares) maps origin.test and
# blocked.test to 10.77.2.2, other.test to 10.77.2.3, bypass.test to 10.77.2.2.
#
# Checks (one PASS:/FAIL: line each):
#   1. REDIRECT IPv4: curl http://10.77.2.2/size/100 -> 100 bytes from the
#      origin; the access log names the client 10.77.1.2; the extended line
#      says mode transparent; the origin saw the proxy's address;
#   2. a Host that names another server is not followed: Host: other.test to
#      10.77.2.2 is served by 10.77.2.2 (the origin's /headers shows the Host
#      it was given) and the extended line has host_mismatch; Host:
#      origin.test has none;
#   3. REDIRECT IPv6: curl http://[fd77:2::2]/peer -> served, logged with the
#      client's IPv6 address;
#   4. the policy by Host: blocked.test gets the block page (403, category);
#   5. the probe host, redirected, is answered by musproxy itself;
#   6. bypass: bypass.test is relayed untouched (TCP_TUNNEL, "bypass":true,
#      the origin sees the request head exactly as curl sent it, no Via);
#   7. a loop: a connection straight to the transparent port is refused;
#   8. TPROXY with spoof_client_address: curl http://10.77.2.2:8080/peer
#      -> the origin saw 10.77.1.2, the client itself;
#   9. host_mismatch: refuse, after SIGHUP: Host: other.test -> 409;
#  10. HTTPS by SNI, no decryption: curl https://origin.test/peer with the
#      origin's CA verified -> the origin's own certificate and answer, logged
#      TCP_TUNNEL/200 CONNECT origin.test:443;
#  11. a blocked SNI: https://blocked.test/ fails with a TLS alert (no page),
#      logged TCP_DENIED/403 CONNECT blocked.test:443;
#  12. no SNI (an IP literal URL): allowed by destination (no_sni: allow),
#      logged CONNECT 10.77.2.2:443;
#  13. a ClientHello sent in 1-byte TCP segments over 300 ms still reaches
#      the origin (its ServerHello comes back);
#  14. a malformed ClientHello is answered with a decode_error alert and the
#      proxy keeps serving;
#  15. remote and local policies in transparent mode: the IPv6 client is in
#      the VPN pool (remote), the IPv4 one is not: remote-only.test is
#      blocked for the first by the remote policy, served to the second.
# Needs root, ip netns, veth, nft; exits 77 with "SKIP: reason" otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
MUSPROXY_BIN=${MUSPROXY_BIN:-build/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-build/mp-origin}
e2e_init transparent

[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
command -v nft >/dev/null || { echo "SKIP: nft (nftables) is not installed"; exit 77; }
command -v curl >/dev/null || { echo "SKIP: curl is not installed"; exit 77; }

C=tc-$$ P=tp-$$ O=to-$$
netns_cleanup() {
    ip netns del "$C" 2>/dev/null; ip netns del "$P" 2>/dev/null; ip netns del "$O" 2>/dev/null
    rm -rf "/etc/netns/$P"
}
trap 'e2e_cleanup; netns_cleanup' EXIT
ip netns add "$C" && ip netns add "$P" && ip netns add "$O" ||
    { echo "SKIP: cannot create network namespaces"; exit 77; }
inC() { ip netns exec "$C" "$@"; }
inP() { ip netns exec "$P" "$@"; }
inO() { ip netns exec "$O" "$@"; }
ip link add c0-$$ type veth peer name p0-$$ || { echo "SKIP: no veth"; exit 77; }
ip link add o1-$$ type veth peer name p1-$$
ip link set c0-$$ netns "$C"; ip link set p0-$$ netns "$P"
ip link set p1-$$ netns "$P"; ip link set o1-$$ netns "$O"
for ns in "$C" "$P" "$O"; do ip -n "$ns" link set lo up; done
inC sysctl -qw net.ipv6.conf.all.disable_ipv6=0 2>/dev/null
ip -n "$C" addr add 10.77.1.2/24 dev c0-$$; ip -n "$C" addr add fd77:1::2/64 dev c0-$$ nodad
ip -n "$P" addr add 10.77.1.1/24 dev p0-$$; ip -n "$P" addr add fd77:1::1/64 dev p0-$$ nodad
ip -n "$P" addr add 10.77.2.1/24 dev p1-$$; ip -n "$P" addr add fd77:2::1/64 dev p1-$$ nodad
ip -n "$O" addr add 10.77.2.2/24 dev o1-$$; ip -n "$O" addr add 10.77.2.3/24 dev o1-$$
ip -n "$O" addr add fd77:2::2/64 dev o1-$$ nodad
for l in "$C c0-$$" "$P p0-$$" "$P p1-$$" "$O o1-$$"; do set -- $l; ip -n "$1" link set "$2" up; done
ip -n "$C" route add default via 10.77.1.1; ip -n "$C" -6 route add default via fd77:1::1
ip -n "$O" route add default via 10.77.2.1; ip -n "$O" -6 route add default via fd77:2::1
inP sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
# TPROXY: marked packets are delivered locally (lab-notes.md)
ip -n "$P" rule add fwmark 1 lookup 100; ip -n "$P" route add local 0.0.0.0/0 dev lo table 100
inP nft -f - <<EOF || { echo "SKIP: nftables rules cannot be loaded"; exit 77; }
table inet mp {
  chain pre_nat {
    type nat hook prerouting priority dstnat;
    iifname "p0-$$" tcp dport { 80, 443 } redirect to :3129
  }
  chain pre_mangle {
    type filter hook prerouting priority mangle;
    meta l4proto tcp socket transparent 1 meta mark set 1 accept
    iifname "p0-$$" meta nfproto ipv4 tcp dport 8080 tproxy ip to :3130 meta mark set 1 accept
  }
}
EOF
mkdir -p "/etc/netns/$P"
printf '127.0.0.1 localhost\n10.77.2.2 origin.test blocked.test bypass.test\n10.77.2.3 other.test remote-only.test\n' \
    >"/etc/netns/$P/hosts"

# origins: IPv4 :80 and :8080 on .2, :80 on .3, IPv6 :80; TLS :443 on .2
for a in 10.77.2.2:80 10.77.2.2:8080 10.77.2.3:80 "[fd77:2::2]:80"; do
    start_bg "$TMP/origin.log" ip netns exec "$O" "$ORIGIN_BIN" --listen "$a"
done
origin_cert DNS:origin.test,DNS:blocked.test
start_bg "$TMP/origin-tls.log" ip netns exec "$O" "$ORIGIN_BIN" --listen 10.77.2.2:443 \
    --tls "$TMP/origin.pem" "$TMP/origin.key"

write_config() {   # write_config HOST_MISMATCH
    cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen:
    - { address: "0.0.0.0:3129", mode: transparent }
    - { address: "[::]:3129", mode: transparent }
    - { address: "0.0.0.0:3130", mode: transparent, tproxy: true, spoof_client_address: true }
    - { address: "127.0.0.1:3128", mode: explicit }
  workers: 1
  clients: [10.77.1.0/24, "fd77:1::/64", 127.0.0.0/8]
  access_log: $TMP/access.log
  transparent:
    host_mismatch: $1
    bypass: [bypass.test]
mus:
  control_socket: $TMP/musproxy.sock
  remote_users: ip_ranges
  vpn_pools: ["fd77:1::/64"]
identity_profiles:
  - { name: remote-users, location: remote, mode: transparent }
  - { name: everyone, location: any }
access_policies:
  - { name: remote, profiles: [remote-users], categories: { blocked: block, remote-only: block } }
  - { name: main, profiles: [everyone], categories: { blocked: block } }
  - { name: default, default: allow }
custom_categories:
  - { name: blocked, domains: [blocked.test] }
  - { name: remote-only, domains: [remote-only.test] }
extended_log: $TMP/extended.log
EOF
}
write_config log
start_bg "$TMP/musproxy.log" ip netns exec "$P" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
MPID=$BG_PID
for _ in $(seq 100); do inP ss -Hltn "sport = :3130" | grep -q . && break; sleep 0.1; done
inP ss -Hltn "sport = :3130" | grep -q . || { echo "FAIL: musproxy did not start"; cat "$TMP/musproxy.log"; exit 1; }
for _ in $(seq 50); do inO ss -Hltn | grep -q ':8080' && break; sleep 0.1; done

CURL=(timeout 10 curl -s --noproxy '*' --max-time 8)
last_ext() { tail -1 "$TMP/extended.log" 2>/dev/null; }

# ---- 1. REDIRECT IPv4
got=$(inC "${CURL[@]}" -o "$TMP/body" -w '%{http_code} %{size_download}' http://10.77.2.2/size/100)
peer=$(inC "${CURL[@]}" http://10.77.2.2/peer)
if [[ $got == "200 100" && $peer == 10.77.2.1 ]] &&
   grep -q "^[0-9.]* *[0-9]* 10.77.1.2 TCP_MISS/200 .* GET http://10.77.2.2/size/100 " "$TMP/access.log" &&
   last_ext | grep -q '"mode":"transparent"'; then
    pass "REDIRECT IPv4: 100 bytes from 10.77.2.2, origin saw the proxy ($peer), logged for 10.77.1.2, mode transparent"
else
    fail "REDIRECT IPv4: got '$got', origin saw '$peer'"; tail -3 "$TMP/access.log"; tail -3 "$TMP/musproxy.log"
fi

# ---- 2. Host is not followed; a mismatch is marked
hdrs=$(inC "${CURL[@]}" -H 'Host: other.test' http://10.77.2.2/headers)
line=$(last_ext)
ok=$(inC "${CURL[@]}" -H 'Host: origin.test' http://10.77.2.2/headers)
line2=$(last_ext)
if grep -qi '^Host: other.test' <<<"$hdrs" && grep -q '"host_mismatch":true' <<<"$line" &&
   grep -q '"server":"10.77.2.2"' <<<"$line" &&
   grep -qi '^Host: origin.test' <<<"$ok" && ! grep -q host_mismatch <<<"$line2"; then
    pass "Host: other.test went to 10.77.2.2 (not 10.77.2.3), marked host_mismatch; origin.test matched"
else
    fail "Host check: headers '$(head -c 200 <<<"$hdrs")' line '$line' line2 '$line2'"
fi

# ---- 3. REDIRECT IPv6
peer6=$(inC "${CURL[@]}" -g 'http://[fd77:2::2]/peer')
if [[ $peer6 == fd77:2::1 ]] && grep -q " fd77:1::2 TCP_MISS/200 .* GET http://\[fd77:2::2\]/peer " "$TMP/access.log"; then
    pass "REDIRECT IPv6: served by [fd77:2::2] (origin saw $peer6), logged for fd77:1::2"
else
    fail "REDIRECT IPv6: origin saw '$peer6'"; tail -3 "$TMP/access.log"
fi

# ---- 4. the policy by Host: the block page
code=$(inC "${CURL[@]}" -o "$TMP/block.html" -w '%{http_code}' http://blocked.test/ --resolve blocked.test:80:10.77.2.2)
if [[ $code == 403 ]] && grep -q "Access to this site is blocked" "$TMP/block.html" &&
   grep -q "blocked" "$TMP/block.html" && grep -q " TCP_DENIED/403 .* GET http://blocked.test/ " "$TMP/access.log"; then
    pass "policy: http://blocked.test/ intercepted -> block page (403, category blocked)"
else
    fail "policy: got $code"; head -c 300 "$TMP/block.html"
fi

# ---- 5. the probe host, redirected
probe=$(inC "${CURL[@]}" -w ' %{http_code}' http://mus.cisco.com/ --resolve mus.cisco.com:80:10.77.2.3)
if [[ $probe == *" 200" ]] && grep -qi "musproxy\|remote" <<<"$probe"; then
    pass "probe: http://mus.cisco.com/ (redirected) answered by musproxy"
else
    fail "probe: '$probe'"
fi

# ---- 6. bypass: relayed untouched
head_seen=$(inC "${CURL[@]}" -H 'X-Test: raw' http://bypass.test/headers --resolve bypass.test:80:10.77.2.2)
if grep -qi '^X-Test: raw' <<<"$head_seen" && ! grep -qi '^Via:' <<<"$head_seen" &&
   grep -q " TCP_TUNNEL/200 " "$TMP/access.log" && grep -q '"bypass":true' "$TMP/extended.log"; then
    pass "bypass: bypass.test relayed untouched (no Via), logged TCP_TUNNEL with bypass"
else
    fail "bypass: origin saw '$(head -c 300 <<<"$head_seen")'"; tail -2 "$TMP/access.log"
fi

# ---- 7. straight to the transparent port: a loop
code=$(inC "${CURL[@]}" -o "$TMP/loop.html" -w '%{http_code}' http://10.77.1.1:3129/)
if [[ $code == 403 ]] && grep -q "forwarding loop" "$TMP/loop.html"; then
    pass "loop: a request straight to the transparent port is refused (403)"
else
    fail "loop: got $code $(head -c 200 "$TMP/loop.html")"
fi

# ---- 8. TPROXY with spoof_client_address
peer_t=$(inC "${CURL[@]}" http://10.77.2.2:8080/peer)
if [[ $peer_t == 10.77.1.2 ]] && grep -q " 10.77.1.2 TCP_MISS/200 .* GET http://10.77.2.2:8080/peer " "$TMP/access.log"; then
    pass "TPROXY: served through :3130, the origin saw the client's own address $peer_t"
else
    fail "TPROXY: origin saw '$peer_t'"; tail -3 "$TMP/access.log"; tail -3 "$TMP/musproxy.log"
fi

# ---- 9. host_mismatch: refuse
write_config refuse
kill -HUP "$MPID"
for _ in $(seq 50); do grep -q "configuration reloaded" "$TMP/musproxy.log" && break; sleep 0.1; done
code=$(inC "${CURL[@]}" -o /dev/null -w '%{http_code}' -H 'Host: other.test' http://10.77.2.2/)
code_ok=$(inC "${CURL[@]}" -o /dev/null -w '%{http_code}' -H 'Host: origin.test' http://10.77.2.2/)
if [[ $code == 409 && $code_ok == 200 ]]; then
    pass "host_mismatch: refuse -> Host: other.test to 10.77.2.2 is 409, origin.test is 200"
else
    fail "host_mismatch refuse: got $code / $code_ok"
fi

# ---- 10. HTTPS by SNI
TLS=(--cacert "$TMP/ca.pem" --resolve origin.test:443:10.77.2.2 --resolve blocked.test:443:10.77.2.2)
peer_s=$(inC "${CURL[@]}" "${TLS[@]}" https://origin.test/peer)
if [[ $peer_s == 10.77.2.1 ]] &&
   grep -q " 10.77.1.2 TCP_TUNNEL/200 .* CONNECT origin.test:443 " "$TMP/access.log"; then
    pass "SNI: https://origin.test/ relayed to 10.77.2.2:443 (certificate verified end to end), logged CONNECT origin.test:443"
else
    fail "SNI: got '$peer_s'"; tail -3 "$TMP/access.log"; tail -3 "$TMP/musproxy.log"
fi

# ---- 11. a blocked SNI
inC "${CURL[@]}" "${TLS[@]}" -o "$TMP/blocked-tls.out" https://blocked.test/ 2>"$TMP/blocked-tls.err"
rc=$?
if [[ $rc == 35 ]] && [[ ! -s $TMP/blocked-tls.out ]] &&
   grep -q " TCP_DENIED/403 .* CONNECT blocked.test:443 " "$TMP/access.log"; then
    pass "SNI block: https://blocked.test/ ends in a TLS alert (curl exit 35), logged TCP_DENIED/403 CONNECT blocked.test:443"
else
    fail "SNI block: curl exit $rc"; tail -3 "$TMP/access.log"
fi

# ---- 12. no SNI: decided by destination
code=$(inC "${CURL[@]}" -k -o /dev/null -w '%{http_code}' https://10.77.2.2/)
if [[ $code == 200 ]] && grep -q " TCP_TUNNEL/200 .* CONNECT 10.77.2.2:443 " "$TMP/access.log"; then
    pass "no SNI: https://10.77.2.2/ allowed by destination, logged CONNECT 10.77.2.2:443"
else
    fail "no SNI: got $code"; tail -3 "$TMP/access.log"
fi

# ---- 13. a ClientHello in 1-byte segments
split=$(inC python3 - <<'PY'
import socket, ssl, time
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(inb, outb, server_hostname="origin.test")
try:
    obj.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = outb.read()
s = socket.create_connection(("10.77.2.2", 443), timeout=5)
s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
for i in range(len(hello)):
    s.send(hello[i:i + 1])
    if i % max(1, len(hello) // 30) == 0:
        time.sleep(0.01)
print(len(hello), s.recv(1)[:1].hex())
PY
)
if [[ $split == *" 16" ]]; then
    pass "split ClientHello: ${split% *} bytes sent one per segment, the origin's ServerHello came back"
else
    fail "split ClientHello: '$split'"
fi

# ---- 14. a malformed ClientHello
alert=$(inC python3 -c '
import socket
s = socket.create_connection(("10.77.2.2", 443), timeout=5)
s.sendall(bytes.fromhex("16030100050200000100"))
print(s.recv(16).hex())')
again=$(inC "${CURL[@]}" "${TLS[@]}" https://origin.test/peer)
if [[ $alert == 15030100020232 && $again == 10.77.2.1 ]]; then
    pass "malformed ClientHello: answered with a fatal decode_error alert ($alert); the next connection is served"
else
    fail "malformed ClientHello: got '$alert', then '$again'"
fi

# ---- 15. remote vs local
code6=$(inC "${CURL[@]}" -g -o "$TMP/remote.html" -w '%{http_code}' -H 'Host: remote-only.test' 'http://[fd77:2::2]/')
line6=$(last_ext)
code4=$(inC "${CURL[@]}" -o /dev/null -w '%{http_code}' --resolve remote-only.test:80:10.77.2.3 http://remote-only.test/)
line4=$(last_ext)
if [[ $code6 == 403 && $code4 == 200 ]] && grep -q "remote" "$TMP/remote.html" &&
   grep -q '"location":"remote".*"access_policy":"remote"' <<<"$line6" &&
   grep -q '"location":"local".*"access_policy":"main"' <<<"$line4"; then
    pass "remote/local: remote-only.test blocked for the VPN-pool client (policy remote), served to the local one"
else
    fail "remote/local: $code6 / $code4; $line6; $line4"
fi

[[ ${VERBOSE:-0} == 1 ]] && { tail -20 "$TMP/access.log"; tail -20 "$TMP/musproxy.log"; }
exit $FAILED
