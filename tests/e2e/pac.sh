#!/usr/bin/env bash
# tests/e2e/pac.sh: the proxy auto-config file, evaluated by real PAC
# engines: pacparser (Debian's python3-pacparser) and headless Chromium with
# --proxy-pac-url, in two network namespaces so no loopback shortcut applies.
#
#   client ns pc-$$: 10.78.1.2           server ns ps-$$: 10.78.1.1 (musproxy :3128, PAC :8081)
#                                                         10.78.2.2 origin (through the proxy)
#                                                         10.78.2.3 origin (DIRECT in the PAC)
# musproxy treats 10.78.1.0/24 as the VPN pool when told so (remote clients
# get remote_proxy); the local answer names 10.78.1.1:3128.
#
# Checks (one PASS:/FAIL: line each):
#   1. /proxy.pac on the explicit port and /wpad.dat on a mode: pac listener:
#      200, Content-Type application/x-ns-proxy-autoconfig, Cache-Control
#      private, max-age=120; HEAD has the length and no body; any other path
#      on the PAC listener is 404;
#   2. pacparser, local client: example.com -> PROXY 10.78.1.1:3128;
#      intranet.example and www.intranet.example -> DIRECT; 10.78.2.3 ->
#      DIRECT (prefix); [fd78::5] -> DIRECT (IPv6 prefix); mus.cisco.com ->
#      PROXY even though a DIRECT rule covers cisco.com; the proxy itself
#      -> DIRECT;
#   3. pacparser, remote client (the VPN pool, after SIGHUP): example.com ->
#      PROXY 10.10.20.1:3128 (remote_proxy);
#   4. Chromium with --proxy-pac-url in the client namespace: the page on
#      10.78.2.2 is fetched through musproxy (the origin saw Via, the access
#      log has it), the page on 10.78.2.3 directly (no Via, not in the log).
# Needs root, ip netns, veth; exits 77 with "SKIP: reason" otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
MUSPROXY_BIN=${MUSPROXY_BIN:-build/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-build/mp-origin}
CHROMIUM=${CHROMIUM:-chromium}
PY=/usr/bin/python3    # Debian's python, where python3-pacparser lives
e2e_init pac

[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (network namespaces)"; exit 77; }
$PY -c 'import pacparser' 2>/dev/null ||
    { echo "SKIP: python3-pacparser is not installed (tools/setup.sh installs it)"; exit 77; }

C=pc-$$ S=ps-$$
trap 'e2e_cleanup; ip netns del "$C" 2>/dev/null; ip netns del "$S" 2>/dev/null' EXIT
ip netns add "$C" && ip netns add "$S" || { echo "SKIP: cannot create network namespaces"; exit 77; }
ip link add pc0-$$ type veth peer name ps0-$$ || { echo "SKIP: no veth"; exit 77; }
ip link set pc0-$$ netns "$C"; ip link set ps0-$$ netns "$S"
ip -n "$C" link set lo up; ip -n "$S" link set lo up
ip -n "$C" addr add 10.78.1.2/24 dev pc0-$$
ip -n "$S" addr add 10.78.1.1/24 dev ps0-$$
ip -n "$S" addr add 10.78.2.2/32 dev lo; ip -n "$S" addr add 10.78.2.3/32 dev lo
ip -n "$C" link set pc0-$$ up; ip -n "$S" link set ps0-$$ up
ip -n "$C" route add 10.78.2.0/24 via 10.78.1.1

start_bg "$TMP/origin.log" ip netns exec "$S" "$ORIGIN_BIN" --listen 10.78.2.2:80
start_bg "$TMP/origin.log" ip netns exec "$S" "$ORIGIN_BIN" --listen 10.78.2.3:80

write_config() {   # write_config VPN_POOLS
    cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen:
    - "10.78.1.1:3128"
    - { address: "10.78.1.1:8081", mode: pac }
  workers: 1
  clients: [10.78.1.0/24]
  access_log: $TMP/access.log
mus:
  remote_users: ip_ranges
  vpn_pools: $1
pac:
  remote_proxy: "10.10.20.1:3128"
  direct: [intranet.example, cisco.com, 10.78.2.3/32, "fd78::/16"]
  max_age: 2m
store: { path: off }
EOF
}
write_config "[]"
start_bg "$TMP/musproxy.log" ip netns exec "$S" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
MPID=$BG_PID
for _ in $(seq 100); do ip netns exec "$S" ss -Hltn "sport = :8081" | grep -q . && break; sleep 0.1; done
for _ in $(seq 50); do [[ $(ip netns exec "$S" ss -Hltn | grep -c ':80 ') -ge 2 ]] && break; sleep 0.1; done
inC() { ip netns exec "$C" "$@"; }
CURL=(timeout 10 curl -s --noproxy '*' --max-time 8)

# ---- 1. serving
inC "${CURL[@]}" -D "$TMP/h1" -o "$TMP/local.pac" http://10.78.1.1:3128/proxy.pac
inC "${CURL[@]}" -D "$TMP/h2" -o "$TMP/wpad.dat" http://10.78.1.1:8081/wpad.dat
head_len=$(inC "${CURL[@]}" -I http://10.78.1.1:8081/wpad.dat | tr -d '\r' | awk -F': ' 'tolower($1)=="content-length"{print $2}')
code404=$(inC "${CURL[@]}" -o /dev/null -w '%{http_code}' http://10.78.1.1:8081/index.html)
if grep -qi '^HTTP/1.1 200' "$TMP/h1" && grep -qi '^Content-Type: application/x-ns-proxy-autoconfig' "$TMP/h1" &&
   grep -qi '^Cache-Control: private, max-age=120' "$TMP/h2" && cmp -s "$TMP/local.pac" "$TMP/wpad.dat" &&
   [[ $head_len == "$(stat -c %s "$TMP/wpad.dat")" && $code404 == 404 ]]; then
    pass "PAC served on the proxy port and a pac listener (type, caching, HEAD length $head_len, 404 elsewhere)"
else
    fail "PAC serving: $(tr -d '\r' <"$TMP/h1" | head -5 | tr '\n' ';') HEAD=$head_len 404=$code404"
fi

evaluate() {   # evaluate PACFILE URL...: one "URL -> ANSWER" line each
    $PY - "$@" <<'PY'
import sys, pacparser
pacparser.init()
pacparser.enable_microsoft_extensions()
pacparser.parse_pac_file(sys.argv[1])
for u in sys.argv[2:]:
    print(u, "->", pacparser.find_proxy(u))
pacparser.cleanup()
PY
}
expect() {   # expect OUTPUT URL ANSWER
    grep -qxF "$2 -> $3" <<<"$1"
}

# ---- 2. local answers
out=$(evaluate "$TMP/local.pac" http://example.com/ http://intranet.example/ http://www.intranet.example/x \
      http://10.78.2.3/ 'http://[fd78::5]/' http://mus.cisco.com/ http://www.cisco.com/ http://10.78.1.1/ http://10.78.2.2/)
if expect "$out" http://example.com/ "PROXY 10.78.1.1:3128" && expect "$out" http://intranet.example/ DIRECT &&
   expect "$out" http://www.intranet.example/x DIRECT && expect "$out" http://10.78.2.3/ DIRECT &&
   expect "$out" 'http://[fd78::5]/' DIRECT && expect "$out" http://mus.cisco.com/ "PROXY 10.78.1.1:3128" &&
   expect "$out" http://www.cisco.com/ DIRECT && expect "$out" http://10.78.1.1/ DIRECT &&
   expect "$out" http://10.78.2.2/ "PROXY 10.78.1.1:3128"; then
    pass "pacparser (local): proxy for the web, DIRECT for the domains, prefixes (IPv4, IPv6) and the proxy itself, the probe host through the proxy"
else
    fail "pacparser (local):"; echo "$out"
fi

# ---- 3. remote answers
write_config "[10.78.1.0/24]"
kill -HUP "$MPID"
for _ in $(seq 50); do grep -q "configuration reloaded" "$TMP/musproxy.log" && break; sleep 0.1; done
inC "${CURL[@]}" -o "$TMP/remote.pac" http://10.78.1.1:3128/proxy.pac
out=$(evaluate "$TMP/remote.pac" http://example.com/ http://intranet.example/)
if expect "$out" http://example.com/ "PROXY 10.10.20.1:3128" && expect "$out" http://intranet.example/ DIRECT &&
   grep -q "remote (VPN) clients" "$TMP/remote.pac"; then
    pass "pacparser (remote): a VPN client is told the remote_proxy 10.10.20.1:3128"
else
    fail "pacparser (remote):"; echo "$out"
fi
write_config "[]"
kill -HUP "$MPID"
sleep 0.5

# ---- 4. Chromium
if command -v "$CHROMIUM" >/dev/null; then
    browse() {   # browse OUT URL
        local prof; prof=$(mktemp -d "$TMP/chrome.XXXXXX")
        inC timeout 40 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
            --disable-background-networking --disable-component-update --disable-sync \
            --disable-extensions --user-data-dir="$prof" \
            --proxy-pac-url=http://10.78.1.1:8081/wpad.dat --dump-dom "$2" >"$1" 2>"$1.err"
    }
    browse "$TMP/via.html" http://10.78.2.2/headers
    browse "$TMP/direct.html" http://10.78.2.3/headers
    if grep -qi "Via: 1.1 musproxy" "$TMP/via.html" && grep -q "GET http://10.78.2.2/headers" "$TMP/access.log" &&
       grep -qi "^Host: 10.78.2.3" "$TMP/direct.html" && ! grep -qi "Via:" "$TMP/direct.html" &&
       ! grep -q "10.78.2.3" "$TMP/access.log"; then
        pass "chromium --proxy-pac-url: 10.78.2.2 went through musproxy (Via, access log), 10.78.2.3 went DIRECT"
    else
        fail "chromium: via='$(head -c 300 "$TMP/via.html")' direct='$(head -c 300 "$TMP/direct.html")'"
        tail -3 "$TMP/access.log" 2>/dev/null; tail -5 "$TMP/via.html.err"
    fi
else
    echo "chromium not installed: check 4 not run"
fi
exit $FAILED
