#!/usr/bin/env bash
# tests/e2e/admin_ui.sh: the admin UI in a real browser, checked against the
# access log of the traffic it reports.
#
# musproxy runs with a transaction store, an admin account made with
# `musctl passwd`, remote users by VPN pool (127.0.0.2/31) and one blocked
# category. curl sends a known mix through the proxy from remote and local
# source addresses, with Basic credentials (alice and bob remote, carol
# local). Headless Chromium then logs in to the admin UI and dumps the
# dashboard's DOM; every figure in it (requests, blocked, bytes, users,
# remote requests, each top user's requests, bytes and blocks, the
# categories) must equal what the access log says.
#
# The login: Chromium is given the credentials in the URL
# (http://admin:PASS@127.0.0.1:PORT/...). It sends the first request
# without them, gets the 401 with WWW-Authenticate: Basic, and answers it
# with the URL's credentials, as for a prompt the user filled in; headless
# mode has no prompt, so this is the way that works (checked: a URL without
# credentials dumps the 401 page instead, and that is checked too).
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
for t in "$CHROMIUM" curl timeout setsid python3 awk; do
    command -v "$t" >/dev/null 2>&1 || skip "$t not installed (tools/setup.sh installs it)"
done
for b in "$MUSPROXY_BIN" "$ORIGIN_BIN" "$MUSCTL_BIN"; do
    [[ -x $b ]] || { echo "FAIL: binary not found: $b"; exit 1; }
done

# shellcheck source=lib.bash
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
e2e_init admin

# ---- the origin
OLOG=$TMP/origin.log
setsid "$ORIGIN_BIN" --listen 127.0.0.1:0 >"$OLOG" 2>&1 </dev/null &
PIDS+=("$!")
for _ in $(seq 100); do grep -q '^listening ' "$OLOG" && break; sleep 0.05; done
OPORT=$(awk '/^listening /{print $2; exit}' "$OLOG")
[[ -n $OPORT ]] || { echo "FAIL: mp-origin did not start"; cat "$OLOG"; exit 1; }
PPORT=$(free_port)
APORT=$(free_port)

# ---- accounts: the admin's and the proxy users', with the real musctl
ADMIN_PASS="e2e-$RANDOM-secret"
printf '%s\n' "$ADMIN_PASS" | "$MUSCTL_BIN" passwd admin --file "$TMP/admin.passwd" >/dev/null ||
    { echo "FAIL: musctl passwd admin"; exit 1; }
for u in alice bob carol; do
    printf '%s\n' "$u-pw" | "$MUSCTL_BIN" passwd "$u" --file "$TMP/users.passwd" >/dev/null ||
        { echo "FAIL: musctl passwd $u"; exit 1; }
done

cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen: [ "127.0.0.1:$PPORT" ]
  workers: 1
  access_log: $TMP/access.log
store: { path: $TMP/musproxy.db }
mus:
  remote_users: ip_ranges
  vpn_pools: [127.0.0.2/31]
  control_socket: $TMP/musproxy.sock
identity_profiles:
  - { name: remote-users, location: remote, auth: basic }
  - { name: office, location: local, auth: basic }
access_policies:
  - { name: remote, profiles: [remote-users], categories: { games: block, news: allow } }
  - { name: office, profiles: [office], categories: { games: block, news: allow } }
  - { name: default, default: allow }
custom_categories:
  - { name: games, domains: [games.test] }
  - { name: news, url_prefixes: ["http://127.0.0.1:$OPORT/size/"] }
authentication:
  password_file: $TMP/users.passwd
admin:
  listen: 127.0.0.1:$APORT
  password_file: $TMP/admin.passwd
EOF
start_bg "$TMP/musproxy.log" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
wait_port "$PPORT" && wait_port "$APORT" ||
    { echo "FAIL: musproxy or its admin UI did not start"; cat "$TMP/musproxy.log"; exit 1; }
pass "musproxy: proxy on $PPORT, admin UI on $APORT"

# ---- the traffic: USER ADDR ALLOWED BLOCKED
send() {
    local user=$1 addr=$2 n_ok=$3 n_block=$4 i
    for ((i = 0; i < n_ok; i++)); do
        curl -s -o /dev/null --interface "$addr" -x "http://127.0.0.1:$PPORT" --proxy-basic \
            -U "$user:$user-pw" "http://127.0.0.1:$OPORT/size/$((200 + i))"
    done
    for ((i = 0; i < n_block; i++)); do
        curl -s -o /dev/null --interface "$addr" -x "http://127.0.0.1:$PPORT" --proxy-basic \
            -U "$user:$user-pw" "http://games.test/$i"
    done
}
send alice 127.0.0.2 5 2
send bob 127.0.0.3 1 1
send carol 127.0.0.4 3 1
SENT=13
for _ in $(seq 100); do
    W=$("$MUSCTL_BIN" status --json --socket "$TMP/musproxy.sock" |
        python3 -c 'import json,sys; s=json.load(sys.stdin)["store"]; print(s["written"], s["submitted"])')
    [[ $W == "$SENT $SENT" ]] && break
    sleep 0.1
done
if [[ $W == "$SENT $SENT" ]]; then pass "store: $SENT written of $SENT submitted"
else fail "store: written/submitted $W, want $SENT"; fi

# ---- what the access log says (time elapsed client result bytes method url user ...)
LOG=$TMP/access.log
L_REQ=$(wc -l <"$LOG")
L_BLOCKED=$(awk '$4 == "TCP_DENIED/403"' "$LOG" | wc -l)
L_BYTES=$(awk '{s += $5} END {print s + 0}' "$LOG")
L_USERS=$(awk '{print $8}' "$LOG" | sort -u | wc -l)
L_REMOTE=$(awk '$3 == "127.0.0.2" || $3 == "127.0.0.3"' "$LOG" | wc -l)
[[ $L_REQ -eq $SENT ]] && pass "access log: $L_REQ lines" || fail "access log: $L_REQ lines, sent $SENT"

browse() {   # browse OUTFILE URL: the DOM as headless Chromium renders it
    local prof
    prof=$(mktemp -d "$TMP/chrome.XXXXXX")
    timeout 30 "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-extensions --user-data-dir="$prof" --no-proxy-server \
        --dump-dom "$2" >"$1" 2>"$1.err"
}

# ---- without credentials: the login is refused (headless Chromium has no
# prompt to show: it gives up on the 401 with ERR_INVALID_AUTH_CREDENTIALS)
browse "$TMP/nologin.html" "http://127.0.0.1:$APORT/"
if ! grep -q 'id="requests"' "$TMP/nologin.html" &&
   { grep -q 'id="error">login required<' "$TMP/nologin.html" ||
     grep -q 'ERR_INVALID_AUTH_CREDENTIALS' "$TMP/nologin.html.err"; }; then
    pass "chromium without credentials: refused (401), no figures"
else
    fail "chromium without credentials: $(head -c 300 "$TMP/nologin.html")"
fi

# ---- logged in: the dashboard
browse "$TMP/dash.html" "http://admin:$ADMIN_PASS@127.0.0.1:$APORT/?range=24h&loc=all"
figure() { sed -n "s/.*<dd id=\"$1\">\([0-9]*\)<\/dd>.*/\1/p" "$TMP/dash.html" | head -1; }
check() {   # check NAME PAGE_VALUE LOG_VALUE
    if [[ -n $2 && $2 == "$3" ]]; then pass "dashboard $1 = $2 (access log: $3)"
    else fail "dashboard $1 = '${2}', access log says $3"; fi
}
if ! grep -q 'id="requests"' "$TMP/dash.html"; then
    fail "chromium did not log in: $(head -c 400 "$TMP/dash.html")"
else
    pass "chromium logged in with the URL's credentials and rendered the dashboard"
fi
check requests "$(figure requests)" "$L_REQ"
check blocked "$(figure blocked)" "$L_BLOCKED"
check bytes "$(figure bytes)" "$L_BYTES"
check users "$(figure users)" "$L_USERS"
check remote_requests "$(figure remote_requests)" "$L_REMOTE"

# each user's row: requests, bytes, blocked as the log counts them
for u in alice bob carol; do
    want_req=$(awk -v u="$u" '$8 == u' "$LOG" | wc -l)
    want_bytes=$(awk -v u="$u" '$8 == u {s += $5} END {print s + 0}' "$LOG")
    want_blk=$(awk -v u="$u" '$8 == u && $4 == "TCP_DENIED/403"' "$LOG" | wc -l)
    row=$(tr -d '\n' <"$TMP/dash.html" | grep -o ">$u</a></td><td class=\"n\">[0-9]*</td><td class=\"n\">[0-9]*</td><td class=\"n\">[0-9]*</td>" | head -1)
    got=$(sed 's/[^0-9]/ /g' <<<"$row" | xargs)
    if [[ $got == "$want_req $want_bytes $want_blk" ]]; then
        pass "top users: $u requests $want_req, bytes $want_bytes, blocked $want_blk"
    else
        fail "top users: $u shows '$got', the log says '$want_req $want_bytes $want_blk'"
    fi
done
# the order: alice (7) before carol (4) before bob (2)
order=$(tr -d '\n' <"$TMP/dash.html" | grep -o '>\(alice\|bob\|carol\)</a></td><td class="n">' | sed 's/[^a-z]*\([a-z]*\).*/\1/' | head -3 | xargs)
[[ $order == "alice carol bob" ]] && pass "top users in order: $order" || fail "top users order: $order"
# the categories: news = allowed requests, games = blocked ones
want_news=$((L_REQ - L_BLOCKED))
if tr -d '\n' <"$TMP/dash.html" | grep -q "<tr><td>news</td><td class=\"n\">$want_news</td>" &&
   tr -d '\n' <"$TMP/dash.html" | grep -q "<tr><td>games</td><td class=\"n\">$L_BLOCKED</td><td class=\"n\">[0-9]*</td><td class=\"n\">$L_BLOCKED</td>"; then
    pass "top categories: news $want_news, games $L_BLOCKED (all blocked)"
else
    fail "top categories not as the log says (news $want_news, games $L_BLOCKED)"
fi

# ---- the remote view and the store page, through the browser too
browse "$TMP/remote.html" "http://admin:$ADMIN_PASS@127.0.0.1:$APORT/?range=today&loc=remote"
R=$(sed -n 's/.*<dd id="requests">\([0-9]*\)<\/dd>.*/\1/p' "$TMP/remote.html" | head -1)
check "requests (remote only)" "$R" "$L_REMOTE"
browse "$TMP/store.html" "http://admin:$ADMIN_PASS@127.0.0.1:$APORT/store"
S=$(sed -n 's/.*<dd id="written">\([0-9]*\)<\/dd>.*/\1/p' "$TMP/store.html" | head -1)
check "store written" "$S" "$L_REQ"

if [[ $FAILED -eq 0 ]]; then echo "RESULT: PASS"; else
    echo "--- musproxy log"; tail -20 "$TMP/musproxy.log"; echo "RESULT: FAIL"; fi
exit $FAILED
