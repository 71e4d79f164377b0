#!/usr/bin/env bash
# tests/e2e/chromium_policy.sh: remote and local users treated differently,
# seen through a real browser, as an administrator would check it.
#
# musproxy runs with the product's classic policy pair: an "arts" category
# allowed for remote users, blocked in the office. Headless Chromium (whose
# connections come from 127.0.0.1) loads an arts page:
#   1. 127.0.0.1 is an office address: the block page renders, naming the
#      category, the policy and "local";
#   2. the administrator edits the file (127.0.0.1 becomes part of the VPN
#      pools, remote_users: ip_ranges) and sends SIGHUP;
#   3. the same URL in the browser now shows the origin's page, and
#      `musctl trace` explains both decisions.
# The origin is our C test server (mp-origin). Builds nothing.
#
# Environment: MUSPROXY_BIN, ORIGIN_BIN, MUSCTL_BIN (default build/...),
# CHROMIUM (default chromium), KEEP_TMP=1 keeps the temp dir.
# Exit status: 0 pass, 1 fail, 77 skipped (the last line says why).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MUSPROXY_BIN=${MUSPROXY_BIN:-$REPO/build/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-$REPO/build/mp-origin}
MUSCTL_BIN=${MUSCTL_BIN:-$(dirname "$MUSPROXY_BIN")/musctl}
CHROMIUM=${CHROMIUM:-chromium}

skip() { echo "SKIP: $*"; exit 77; }
for t in "$CHROMIUM" curl timeout setsid python3; do
    command -v "$t" >/dev/null 2>&1 || skip "$t not installed (tools/setup.sh installs it)"
done
for b in "$MUSPROXY_BIN" "$ORIGIN_BIN" "$MUSCTL_BIN"; do
    [[ -x $b ]] || { echo "FAIL: binary not found: $b"; exit 1; }
done

# shellcheck source=lib.bash
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
e2e_init policy

# ---- the origin
start_origin
ARTS_URL="http://127.0.0.1:$OPORT/"    # categorized "arts" by URL prefix; text/plain "ok"
PPORT=$(free_port)

# ---- musproxy with the classic remote/local pair
write_config() {   # write_config REMOTE_SETTINGS
    cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen: [ "127.0.0.1:$PPORT" ]
  workers: 1
  access_log: $TMP/access.log
mus:
$1
  control_socket: $TMP/musproxy.sock
identity_profiles:
  - { name: remote-users, location: remote }
  - { name: office, location: local, subnets: [127.0.0.0/8] }
access_policies:
  - { name: remote, profiles: [remote-users], categories: { arts: allow } }
  - { name: office, profiles: [office], categories: { arts: block } }
  - { name: default, default: allow }
custom_categories:
  - { name: arts, url_prefixes: ["http://127.0.0.1:$OPORT/"] }
extended_log: $TMP/extended.log
EOF
}
write_config "  remote_users: headend"
start_bg "$TMP/musproxy.log" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
MPID=$BG_PID
wait_port "$PPORT" || { echo "FAIL: musproxy did not start"; cat "$TMP/musproxy.log"; exit 1; }
pass "musproxy: listening on 127.0.0.1:$PPORT with the remote/local policy pair"

browse() {   # browse OUTFILE URL: dump the DOM as headless Chromium renders it
    local prof
    prof=$(mktemp -d "$TMP/chrome.XXXXXX")
    timeout 30 "$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-extensions --user-data-dir="$prof" \
        --proxy-server="http://127.0.0.1:$PPORT" '--proxy-bypass-list=<-loopback>' \
        --dump-dom "$2" >"$1" 2>"$1.err"
}

# ---- 1. local: the block page
browse "$TMP/local.html" "$ARTS_URL"
if grep -q "Access to this site is blocked" "$TMP/local.html" &&
   grep -q "arts" "$TMP/local.html" && grep -q "office" "$TMP/local.html" &&
   grep -q "local" "$TMP/local.html"; then
    pass "chromium (local): the block page renders with category arts, policy office, location local"
else
    fail "chromium (local): no block page; DOM: $(head -c 400 "$TMP/local.html")"
fi
if grep -q " TCP_DENIED/403 .* GET $ARTS_URL " "$TMP/access.log" 2>/dev/null; then
    pass "access log: $(grep " TCP_DENIED/403 " "$TMP/access.log" | head -1)"
else
    fail "access log has no TCP_DENIED/403 line for $ARTS_URL"; cat "$TMP/access.log" 2>/dev/null
fi
TRACE=$("$MUSCTL_BIN" trace --socket "$TMP/musproxy.sock" --ip 127.0.0.1 --url "$ARTS_URL")
if grep -q "Location: *local" <<<"$TRACE" && grep -q "Action: *block" <<<"$TRACE"; then
    pass "trace (local): $(tr '\n' ';' <<<"$TRACE" | tr -s ' ')"
else
    fail "trace (local): $TRACE"
fi

# ---- 2. the administrator makes 127.0.0.1 a VPN address and reloads
write_config "  remote_users: ip_ranges
  vpn_pools: [127.0.0.1/32]"
kill -HUP "$MPID"
for _ in $(seq 50); do grep -q "configuration reloaded" "$TMP/musproxy.log" && break; sleep 0.1; done
if grep -q "configuration reloaded" "$TMP/musproxy.log"; then
    pass "reload: musproxy took the edited file on SIGHUP"
else
    fail "reload: no 'configuration reloaded' in the log"; tail -5 "$TMP/musproxy.log"
fi

# ---- 3. remote: the same URL shows the origin's page
browse "$TMP/remote.html" "$ARTS_URL"
if grep -q "Access to this site is blocked" "$TMP/remote.html" || ! grep -q ">ok" "$TMP/remote.html"; then
    fail "chromium (remote): still blocked or empty; DOM: $(head -c 400 "$TMP/remote.html")"
else
    pass "chromium (remote): the origin's page is shown: $(tr -d '\n' <"$TMP/remote.html" | head -c 120)"
fi
if grep -q " TCP_MISS/200 .* GET $ARTS_URL " "$TMP/access.log"; then
    pass "access log: $(grep " TCP_MISS/200 .* GET $ARTS_URL " "$TMP/access.log" | tail -1)"
else
    fail "access log has no TCP_MISS/200 for $ARTS_URL after the reload"
fi
if grep -q '"location":"remote".*"user_source":"pool".*"decision":"ALLOW_CATEGORY"' "$TMP/extended.log"; then
    pass "extended log: remote, user source pool (the VPN pools), ALLOW_CATEGORY"
else
    fail "extended log lacks the remote decision: $(grep "$OPORT" "$TMP/extended.log")"
fi
TRACE=$("$MUSCTL_BIN" trace --socket "$TMP/musproxy.sock" --ip 127.0.0.1 --url "$ARTS_URL")
if grep -q "Location: *remote" <<<"$TRACE" && grep -q "Access policy: *remote" <<<"$TRACE" &&
   grep -q "Action: *allow" <<<"$TRACE"; then
    pass "trace (remote): $(tr '\n' ';' <<<"$TRACE" | tr -s ' ')"
else
    fail "trace (remote): $TRACE"
fi

if [[ $FAILED -eq 0 ]]; then echo "RESULT: PASS"; else
    echo "--- musproxy log"; tail -20 "$TMP/musproxy.log"; echo "RESULT: FAIL"; fi
exit $FAILED
