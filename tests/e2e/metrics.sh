#!/usr/bin/env bash
# tests/e2e/metrics.sh: the Prometheus metrics during a traffic run, checked
# against the access log of the same run, and by promtool.
#
# musproxy (2 workers, a loopback mode: metrics listener, 127.0.0.2 in the
# VPN pool so it counts as remote, a policy blocking one category) in front
# of mp-origin; curl sends a known mix: local allowed, remote allowed,
# blocked, and a 404 from the origin.
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
#      startup with a clear message.
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/e2e/lib.bash
MUSPROXY_BIN=${MUSPROXY_BIN:-build/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-build/tests/mp-origin}
e2e_init metrics

OPORT=$(free_port) PPORT=$(free_port) MPORT=$(free_port)
start_bg "$TMP/origin.log" "$ORIGIN_BIN" --listen "127.0.0.1:$OPORT"
OPID=$BG_PID
write_config() {   # write_config METRICS_ADDRESS
    cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen:
    - "127.0.0.1:$PPORT"
    - { address: "$1", mode: metrics }
  workers: 2
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
N=15
for _ in $(seq 50); do [[ $(wc -l <"$TMP/access.log" 2>/dev/null) -ge $N ]] && break; sleep 0.1; done

scrape() { curl -s --max-time 5 "http://127.0.0.1:$MPORT/metrics"; }
for _ in $(seq 30); do
    scrape >"$TMP/metrics.txt"
    grep -q "^musproxy_store_records_total{fate=\"written\"} $N\$" "$TMP/metrics.txt" && break
    sleep 0.2
done
val() {   # val METRIC_WITH_LABELS: its value in the scrape (0 if absent)
    awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }' "$TMP/metrics.txt"
}
log_count() {   # log_count CLIENT RESULT
    awk -v c="$1" -v r="$2" '$3 == c && index($4, r "/") == 1' "$TMP/access.log" | wc -l
}

# ---- 1. requests by result and location
lm=$(log_count 127.0.0.1 TCP_MISS) rm=$(log_count 127.0.0.2 TCP_MISS) ld=$(log_count 127.0.0.1 TCP_DENIED)
mm=$(val 'musproxy_requests_total{result="TCP_MISS",location="local",mode="explicit"}')
mr=$(val 'musproxy_requests_total{result="TCP_MISS",location="remote",mode="explicit"}')
md=$(val 'musproxy_requests_total{result="TCP_DENIED",location="local",mode="explicit"}')
if [[ $lm == 8 && $rm == 4 && $ld == 3 && $mm == "$lm" && $mr == "$rm" && $md == "$ld" ]]; then
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

# ---- 5. gauges and reloads
kill -HUP "$MPID"
for _ in $(seq 50); do grep -q "configuration reloaded" "$TMP/musproxy.log" && break; sleep 0.1; done
scrape >"$TMP/metrics2.txt"
cp "$TMP/metrics2.txt" "$TMP/metrics.txt"
if [[ $(val 'musproxy_reloads_total{result="ok"}') == 1 && $(val musproxy_client_connections) -ge 1 &&
      $(val 'musproxy_store_records_total{fate="written"}') -ge $N && $(val musproxy_store_up) == 1 ]]; then
    pass "gauges: a reload counted, $(val musproxy_client_connections) open connection(s), store written $(val 'musproxy_store_records_total{fate="written"}')"
else
    fail "gauges: reloads $(val 'musproxy_reloads_total{result="ok"}'), conns $(val musproxy_client_connections), store $(val 'musproxy_store_records_total{fate="written"}')"
fi
exit $FAILED
