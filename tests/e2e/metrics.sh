#!/usr/bin/env bash
# tests/e2e/metrics.sh: the Prometheus metrics during a traffic run, checked
# against the access log of the same run, and by promtool.
#
# musproxy (2 workers, a loopback mode: metrics listener, 127.0.0.2 in the
# VPN pool so it counts as remote, a policy blocking one category, the
# origin's port open to CONNECT) in front of mp-origin; curl sends a known
# mix: local allowed, remote allowed, blocked, a 404 from the origin,
# CONNECT tunnels, requests for localhost (/etc/hosts) and for a name under
# .invalid (which must fail), and one more tunnel held open while scraped.
# Checks (one PASS:/FAIL: line each):
#   1. musproxy_requests_total by result and location equals the access log's
#      counts of the same run (TCP_MISS and TCP_DENIED, local and remote);
#   2. musproxy_blocks_total{policy="office",category="games"} equals the
#      number of blocked requests; the histogram's _count equals all requests;
#   3. musproxy_response_bytes_total equals the sum of the access log's
#      bytes field, per location;
#   4. `promtool check metrics` (Debian's prometheus package) reports no
#      problem with the exposition;
#   5. gauges: open client connections, the store's written records reach
#      the number of requests; a reload shows in musproxy_reloads_total;
#   6. a mode: metrics listener on a non-loopback address is refused at
#      startup with a clear message;
#   7. tunnels: musproxy_tunnel_relays_total{kind="connect"} is twice the
#      access log's CONNECT lines (a relay per direction), mode copy under
#      tunnel_relay: auto (both peers on this host) and, after the reload
#      to tunnel_relay: splice, mode splice for the new ones; the held
#      tunnel shows as 2 open relays and 1 upstream connection in use, and
#      0 once it is closed;
#   8. DNS: musproxy_dns_lookups_total counts exactly the looked-up names of
#      the log (IP literals are not lookups): the .invalid requests as
#      failures (not_found, timeout or error), localhost as hosts or
#      cache_hit (at least one hosts); a name answered by a name server
#      (METRICS_DNS_NAME, default localtest.me, when the machine's resolver
#      gives 127.0.0.1 for it and /etc/hosts does not name it) as answered
#      (else that part is not run, and says so);
#   9. the upstream pool: after the keep-alive requests the idle gauge is
#      > 0 and <= the requests forwarded, nothing is in use, and the
#      connections opened plus reused cover every forwarded request;
#  10. RADIUS (musproxy's own listener, radclient): after a Start, a Stop,
#      one request with a wrong secret and one malformed datagram,
#      musproxy_radius_packets_total{result=...} counts 2 accepted, 1
#      bad_authenticator, 1 malformed, the requests by type 1 start and 1
#      stop, 2 responses, 2 map changes, and promtool accepts that scrape.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
MUSPROXY_BIN=${MUSPROXY_BIN:-build/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-build/mp-origin}
e2e_init metrics

OPORT=$(free_port) PPORT=$(free_port) MPORT=$(free_port)
RPORT=$(python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
RSECRET=metrics-radius-secret
printf '127.0.0.1 %s\n' "$RSECRET" >"$TMP/radius.clients"
chmod 600 "$TMP/radius.clients"
start_bg "$TMP/origin.log" "$ORIGIN_BIN" --listen "127.0.0.1:$OPORT"
OPID=$BG_PID
write_config() {   # write_config METRICS_ADDRESS [TUNNEL_RELAY]
    cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen:
    - "127.0.0.1:$PPORT"
    - { address: "$1", mode: metrics }
  workers: 2
  connect_ports: [443, $OPORT]
  tunnel_relay: ${2:-auto}
  timeouts: { dns: 2s }
  access_log: $TMP/access.log
mus:
  remote_users: ip_ranges
  vpn_pools: [127.0.0.2/32]
identity_profiles:
  - { name: office, location: local }
  - { name: remote, location: remote }
access_policies:
  - { name: office, profiles: [office], categories: { games: block } }
  - { name: road, profiles: [remote] }
  - { name: default, default: allow }
custom_categories:
  - { name: games, url_prefixes: ["http://127.0.0.1:$OPORT/size/3"] }
store: { path: $TMP/musproxy.db }
radius:
  listen: ["127.0.0.1:$RPORT"]
  clients_file: $TMP/radius.clients
EOF
}
write_config "0.0.0.0:$MPORT"
if out=$("$MUSPROXY_BIN" -t -c "$TMP/musproxy.yaml" 2>&1); then
    fail "a non-loopback metrics listener was accepted: $out"
elif grep -q "mode: metrics listens on a loopback address only" <<<"$out"; then
    pass "metrics listener on 0.0.0.0 refused: ${out#*: }"
else
    fail "non-loopback metrics listener: unexpected message: $out"
fi

write_config "127.0.0.1:$MPORT"
start_bg "$TMP/musproxy.log" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
MPID=$BG_PID
wait_listen "$MPORT" "$MPID" || { echo "FAIL: musproxy did not start"; cat "$TMP/musproxy.log"; exit 1; }
wait_listen "$OPORT" "$OPID" || { echo "FAIL: origin did not start"; exit 1; }

P=(-s -o /dev/null -x "http://127.0.0.1:$PPORT" --max-time 5)
for i in $(seq 7); do curl "${P[@]}" "http://127.0.0.1:$OPORT/size/$((100 + i))"; done        # local allowed
for i in $(seq 4); do curl "${P[@]}" --interface 127.0.0.2 "http://127.0.0.1:$OPORT/size/3$i"; done  # remote allowed
for i in $(seq 3); do curl "${P[@]}" "http://127.0.0.1:$OPORT/size/3$i"; done                  # local blocked
curl "${P[@]}" "http://127.0.0.1:$OPORT/nothing"                                              # 404 from the origin
for i in $(seq 3); do curl "${P[@]}" -p "http://127.0.0.1:$OPORT/size/$((200 + i))"; done    # CONNECT tunnels
for i in $(seq 3); do curl "${P[@]}" "http://localhost:$OPORT/size/$((300 + i))"; done       # /etc/hosts
BAD=musproxy-e2e-$$.invalid
for i in $(seq 2); do curl "${P[@]}" "http://$BAD:$OPORT/x$i"; done                          # must not resolve
# A name a name server answers with 127.0.0.1 (not /etc/hosts): only if this machine has one.
DNS_NAME=${METRICS_DNS_NAME:-localtest.me}
NAMED=0
if ! grep -qiw -- "$DNS_NAME" /etc/hosts &&
   [[ $(timeout 5 python3 -c 'import socket, sys
print(" ".join(sorted({a[4][0] for a in socket.getaddrinfo(sys.argv[1], 80, socket.AF_INET)})))' \
        "$DNS_NAME" 2>/dev/null) == 127.0.0.1 ]]; then
    NAMED=2   # two requests on one connection: one worker, answered then cached
    curl "${P[@]}" "http://$DNS_NAME:$OPORT/size/401" -o /dev/null "http://$DNS_NAME:$OPORT/size/402"
fi

scrape() { curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics"; }
val() {   # val METRIC_WITH_LABELS: its value in the scrape (0 if absent)
    awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$TMP/metrics.txt"
}
wait_log() {   # wait_log N: until the access log has N lines (5 s)
    for _ in $(seq 50); do [[ $(wc -l <"$TMP/access.log" 2>/dev/null) -ge $1 ]] && break; sleep 0.1; done
}
connect_lines() { awk '$6 == "CONNECT"' "$TMP/access.log" | wc -l; }

# ---- a tunnel held open while scraped, then closed
wait_log $((23 + NAMED))
exec 3<>"/dev/tcp/127.0.0.1/$PPORT"
printf 'CONNECT 127.0.0.1:%s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n' "$OPORT" "$OPORT" >&3
IFS= read -r -t 5 established <&3
scrape >"$TMP/metrics.txt"
held_relays=$(val 'musproxy_tunnel_relays_open{kind="connect",mode="copy"}')
held_in_use=$(val 'musproxy_upstream_connections{state="in_use"}')
exec 3>&-
N=$((24 + NAMED))
wait_log $N
for _ in $(seq 30); do
    scrape >"$TMP/metrics.txt"
    grep -q "^musproxy_store_records_total{fate=\"written\"} $N\$" "$TMP/metrics.txt" && break
    sleep 0.2
done
log_count() {   # log_count CLIENT RESULT
    awk -v c="$1" -v r="$2" '$3 == c && index($4, r "/") == 1' "$TMP/access.log" | wc -l
}

# ---- 1. requests by result and location
lm=$(log_count 127.0.0.1 TCP_MISS) rm=$(log_count 127.0.0.2 TCP_MISS) ld=$(log_count 127.0.0.1 TCP_DENIED)
mm=$(val 'musproxy_requests_total{result="TCP_MISS",location="local",mode="explicit"}')
mr=$(val 'musproxy_requests_total{result="TCP_MISS",location="remote",mode="explicit"}')
md=$(val 'musproxy_requests_total{result="TCP_DENIED",location="local",mode="explicit"}')
if [[ $lm == $((8 + 3 + 2 + NAMED)) && $rm == 4 && $ld == 3 && $mm == "$lm" && $mr == "$rm" && $md == "$ld" ]]; then
    pass "requests_total matches the access log: local TCP_MISS $mm, remote TCP_MISS $mr, local TCP_DENIED $md"
else
    fail "requests_total: log $lm/$rm/$ld, metrics $mm/$mr/$md"
fi

# ---- 2. blocks and the histogram
blocks=$(val 'musproxy_blocks_total{policy="office",category="games"}')
cnt=$(( $(val 'musproxy_request_duration_seconds_count{location="local"}') + \
        $(val 'musproxy_request_duration_seconds_count{location="remote"}') ))
inf=$(val 'musproxy_request_duration_seconds_bucket{location="local",le="+Inf"}')
if [[ $blocks == 3 && $cnt == "$N" && $inf == $((N - 4)) ]]; then
    pass "blocks_total{office,games} = 3; the latency histogram counted all $cnt requests"
else
    fail "blocks $blocks, histogram count $cnt (+Inf local $inf), want 3 and $N"
fi

# ---- 3. bytes per location
lb=$(awk '$3 == "127.0.0.1" { s += $5 } END { print s + 0 }' "$TMP/access.log")
rb=$(awk '$3 == "127.0.0.2" { s += $5 } END { print s + 0 }' "$TMP/access.log")
if [[ $(val 'musproxy_response_bytes_total{location="local"}') == "$lb" &&
      $(val 'musproxy_response_bytes_total{location="remote"}') == "$rb" && $rb -gt 0 ]]; then
    pass "response_bytes_total equals the access log's bytes: local $lb, remote $rb"
else
    fail "bytes: log $lb/$rb, metrics $(val 'musproxy_response_bytes_total{location="local"}')/$(val 'musproxy_response_bytes_total{location="remote"}')"
fi

# ---- 4. promtool
if command -v promtool >/dev/null; then
    if out=$(promtool check metrics <"$TMP/metrics.txt" 2>&1) && [[ -z $out ]]; then
        pass "promtool check metrics: no problem ($(grep -c '^# TYPE' "$TMP/metrics.txt") families)"
    else
        fail "promtool check metrics: $out"
    fi
else
    echo "promtool not installed (Debian's prometheus package): check 4 not run"
fi

# ---- 8. DNS lookups against the names in the log
ln=$(awk -v h="http://localhost:$OPORT/" 'index($7, h) == 1' "$TMP/access.log" | wc -l)
bn=$(awk -v h="http://$BAD:$OPORT/" 'index($7, h) == 1' "$TMP/access.log" | wc -l)
hits=$(val 'musproxy_dns_lookups_total{result="cache_hit"}') hosts=$(val 'musproxy_dns_lookups_total{result="hosts"}')
answered=$(val 'musproxy_dns_lookups_total{result="answered"}')
failed=$(( $(val 'musproxy_dns_lookups_total{result="not_found"}') + \
           $(val 'musproxy_dns_lookups_total{result="timeout"}') + $(val 'musproxy_dns_lookups_total{result="error"}') ))
if [[ $bn == 2 && $failed == "$bn" && $ln == 3 && $hosts -ge 1 && $((hosts + hits + answered)) == $((ln + NAMED)) &&
      ( $NAMED == 0 || $answered -ge 1 ) ]]; then
    pass "dns_lookups_total: $failed failed for the $bn $BAD requests (not_found $(val 'musproxy_dns_lookups_total{result="not_found"}')), localhost: hosts $hosts + cache_hit $hits for $ln, answered $answered"
else
    fail "dns_lookups_total: failed $failed for $bn .invalid lines; hosts $hosts + cache_hit $hits + answered $answered for $ln localhost + $NAMED $DNS_NAME lines"
fi
if [[ $NAMED == 0 ]]; then
    echo "no name server answers $DNS_NAME with 127.0.0.1 here (METRICS_DNS_NAME sets another name): the answered part of check 8 not run"
fi

# ---- 9. the upstream keep-alive pool
fwd=$(awk '$6 != "CONNECT" && $9 ~ /^HIER_DIRECT\//' "$TMP/access.log" | wc -l)
idle=$(val 'musproxy_upstream_connections{state="idle"}') in_use=$(val 'musproxy_upstream_connections{state="in_use"}')
opened=$(val musproxy_upstream_connects_total) reused=$(val musproxy_upstream_reuses_total)
if [[ $idle -gt 0 && $idle -le $fwd && $in_use == 0 && $reused -ge 1 &&
      $((opened + reused)) -ge $((fwd + $(connect_lines))) ]]; then
    pass "upstream pool: $idle idle after $fwd forwarded requests, 0 in use; $opened opened, $reused reused"
else
    fail "upstream pool: idle $idle, in use $in_use, opened $opened, reused $reused for $fwd forwarded requests and $(connect_lines) tunnels"
fi

# ---- 5. gauges and reloads (the reload switches tunnel_relay to splice)
tunnels_before=$(connect_lines)
copy_before=$(val 'musproxy_tunnel_relays_total{kind="connect",mode="copy"}')
open_before=$(( $(val 'musproxy_tunnel_relays_open{kind="connect",mode="copy"}') + \
                $(val 'musproxy_tunnel_relays_open{kind="connect",mode="splice"}') ))
write_config "127.0.0.1:$MPORT" splice
kill -HUP "$MPID"
for _ in $(seq 50); do grep -q "configuration reloaded" "$TMP/musproxy.log" && break; sleep 0.1; done
for i in $(seq 2); do curl "${P[@]}" -p "http://127.0.0.1:$OPORT/size/$((500 + i))"; done
wait_log $((N + 2))
scrape >"$TMP/metrics2.txt"
cp "$TMP/metrics2.txt" "$TMP/metrics.txt"
if [[ $(val 'musproxy_reloads_total{result="ok"}') == 1 && $(val musproxy_client_connections) -ge 1 &&
      $(val 'musproxy_store_records_total{fate="written"}') -ge $N && $(val musproxy_store_up) == 1 ]]; then
    pass "gauges: a reload counted, $(val musproxy_client_connections) open connection(s), store written $(val 'musproxy_store_records_total{fate="written"}')"
else
    fail "gauges: reloads $(val 'musproxy_reloads_total{result="ok"}'), conns $(val musproxy_client_connections), store $(val 'musproxy_store_records_total{fate="written"}')"
fi

# ---- 7. tunnels: relays against the CONNECT lines, by relay mode; the held one
tunnels_after=$(( $(connect_lines) - tunnels_before ))
splice=$(val 'musproxy_tunnel_relays_total{kind="connect",mode="splice"}')
copy=$(val 'musproxy_tunnel_relays_total{kind="connect",mode="copy"}')
others=$(grep '^musproxy_tunnel_relays_total{' "$TMP/metrics.txt" | grep -v 'kind="connect"' | awk '{ s += $2 } END { print s + 0 }')
open_now=$(grep '^musproxy_tunnel_relays_open{' "$TMP/metrics.txt" | awk '{ s += $2 } END { print s + 0 }')
if [[ $tunnels_before == 4 && $copy_before == $((2 * tunnels_before)) && $copy == "$copy_before" &&
      $tunnels_after == 2 && $splice == $((2 * tunnels_after)) && $others == 0 &&
      $held_relays == 2 && $held_in_use == 1 && ${established:-} == "HTTP/1.1 200"* &&
      $open_before == 0 && $open_now == 0 ]]; then
    pass "tunnel relays: $copy copy for $tunnels_before CONNECT lines (auto, loopback), $splice splice for $tunnels_after after the reload; a held tunnel: $held_relays relays open, $held_in_use upstream in use; none open after"
else
    fail "tunnel relays: CONNECT lines $tunnels_before/$tunnels_after, copy $copy_before/$copy, splice $splice, other kinds $others; held: relays $held_relays, in use $held_in_use (${established:-no answer}); open $open_before/$open_now"
fi
# ---- 10. RADIUS accounting counters
if command -v radclient >/dev/null; then
    acct() {   # acct SECRET ATTRIBUTES: one try, 1 s
        printf '%b' "$2" | radclient -r 1 -t 1 "127.0.0.1:$RPORT" acct "$1" >/dev/null 2>&1
    }
    A='User-Name = "rita"\nFramed-IP-Address = 10.99.0.7\nAcct-Session-Id = "m1"\nNAS-IP-Address = 192.0.2.1\n'
    acct "$RSECRET" "Acct-Status-Type = Start\n$A" || fail "RADIUS: no answer to the Start"
    acct "$RSECRET" "Acct-Status-Type = Stop\n$A" || fail "RADIUS: no answer to the Stop"
    acct wrong-secret "Acct-Status-Type = Start\n$A" && fail "RADIUS: a wrong secret was answered"
    python3 -c 'import socket, sys
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(bytes([4, 9, 0, 48]) + bytes(16), ("127.0.0.1", int(sys.argv[1])))' "$RPORT"
    for _ in $(seq 30); do   # drops are published with the once-a-second status
        scrape >"$TMP/metrics.txt"
        [[ $(val 'musproxy_radius_packets_total{result="malformed"}') == 1 ]] && break
        sleep 0.2
    done
    r() { val "musproxy_radius_$1"; }
    got="accepted $(r 'packets_total{result="accepted"}'), bad_authenticator $(r 'packets_total{result="bad_authenticator"}'), malformed $(r 'packets_total{result="malformed"}'), duplicate $(r 'packets_total{result="duplicate"}'), unknown_client $(r 'packets_total{result="unknown_client"}'); start $(r 'requests_total{type="start"}'), stop $(r 'requests_total{type="stop"}'); responses $(r responses_total), map changes $(r map_changes_total), sessions $(r sessions)"
    want="accepted 2, bad_authenticator 1, malformed 1, duplicate 0, unknown_client 0; start 1, stop 1; responses 2, map changes 2, sessions 0"
    out=$(promtool check metrics <"$TMP/metrics.txt" 2>&1)
    if [[ $got == "$want" && -z $out ]] && grep -q '^# TYPE musproxy_radius_packets_total counter$' "$TMP/metrics.txt"; then
        pass "radius counters: $got; promtool: no problem"
    else
        fail "radius counters: $got (wanted $want); promtool: ${out:-no problem}"
    fi
else
    fail "radclient not installed (tools/setup.sh installs freeradius-utils): check 10 not run"
fi
exit $FAILED
