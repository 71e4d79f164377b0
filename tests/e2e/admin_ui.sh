#!/usr/bin/env bash
# tests/e2e/admin_ui.sh: the admin UI in a real browser, checked against the
# access log of the traffic it reports.
#
# musproxy runs with a transaction store, an admin account made with
# `musctl passwd`, remote users by VPN pool (127.0.0.2/31), one blocked
# category, and the admin UI on HTTPS (admin.tls_cert/tls_key: a test CA
# made here, trusted by Chromium through an NSS database of its own). curl
# sends a known mix through the proxy from remote and local source
# addresses, with Basic credentials (alice and bob remote, carol local).
#
# Headless Chromium then does what an administrator does, driven over its
# DevTools pipe by tests/e2e/cdp.py (no page script: the UI allows none):
# opens the UI without a session (it lands on the login form), logs in with
# a wrong password (refused), then through the form with the right one; the
# session cookie it keeps must be HttpOnly, SameSite=Strict, Secure, Path=/
# and end with the browser session. Logged in, it dumps the dashboard's DOM:
# every figure in it (requests, blocked, bytes, users, remote requests,
# each top user's requests, bytes and blocks, the categories) must equal
# what the access log says; the remote view and the store page too. It
# submits the trace form (whose hidden CSRF token the browser sends back)
# and gets the decision `musctl trace` gives; it logs out with the header's
# button and is sent back to the login form.
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
for t in "$CHROMIUM" curl timeout setsid python3 awk openssl certutil; do
    command -v "$t" >/dev/null 2>&1 || skip "$t not installed (tools/setup.sh installs it)"
done
for b in "$MUSPROXY_BIN" "$ORIGIN_BIN" "$MUSCTL_BIN"; do
    [[ -x $b ]] || { echo "FAIL: binary not found: $b"; exit 1; }
done

# shellcheck source=lib.bash
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
e2e_init admin

# ---- the origin
start_origin
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

# ---- the UI's certificate (for 127.0.0.1), its CA trusted by Chromium only
origin_cert "IP:127.0.0.1"
CHOME=$TMP/chrome-home
nss_trust_ca "$CHOME" "$TMP/ca.pem" >/dev/null 2>&1 ||
    { echo "FAIL: certutil could not make the NSS database"; exit 1; }
chmod 600 "$TMP/origin.key"
UI=https://127.0.0.1:$APORT

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
  tls_cert: $TMP/origin.pem
  tls_key: $TMP/origin.key
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

# ---- the browser: one session, step by step (tests/e2e/cdp.py)
WRONG_PASS="not-$ADMIN_PASS"
cat >"$TMP/steps" <<EOF
goto nologin $UI/?range=24h&loc=all
fill input[name=user] admin
fill input[name=password] $WRONG_PASS
submit wrong #login
fill input[name=user] admin
fill input[name=password] $ADMIN_PASS
submit login #login
cookies cookies $UI/
goto dash $UI/?range=24h&loc=all
goto remote $UI/?range=today&loc=remote
goto store $UI/store
goto trace $UI/trace
fill input[name=ip] 127.0.0.2
fill input[name=url] http://games.test/e2e
submit traced form[action="/trace"]
submit logout form.logout
goto afterlogout $UI/store
EOF
P=$TMP/pages
mkdir -p "$P"
HOME=$CHOME cdp_run 90 "$P" "$TMP/steps" "$TMP/cdp.log" ||
    fail "the browser steps did not all run: $(grep '^cdp:' "$TMP/cdp.log" | head -3)"
url_of() { cat "$P/$1.url" 2>/dev/null; }

# ---- without a session: the login form, no figures
if [[ $(url_of nologin) == "$UI/login" ]] && grep -q '<form id="login"' "$P/nologin.html" &&
   ! grep -q 'id="requests"' "$P/nologin.html"; then
    pass "chromium without a session: sent to the login form, no figures"
else
    fail "chromium without a session: at $(url_of nologin): $(head -c 300 "$P/nologin.html" 2>/dev/null)"
fi
# ---- a wrong password: refused, still the form
if [[ $(url_of wrong) == "$UI/login" ]] && grep -q 'Wrong user name or password.' "$P/wrong.html"; then
    pass "chromium: a wrong password is refused"
else
    fail "chromium with a wrong password: at $(url_of wrong)"
fi
# ---- the right one: the dashboard, with the session cookie as it must be
if [[ $(url_of login) == "$UI/" ]] && grep -q 'id="requests"' "$P/login.html"; then
    pass "chromium logged in through the form and was sent to the dashboard"
else
    fail "chromium did not log in: at $(url_of login): $(head -c 400 "$P/login.html" 2>/dev/null)"
fi
COOKIE=$(python3 -c '
import json, sys
cs = {c["name"]: c for c in json.load(open(sys.argv[1]))}
s = cs.get("musproxy_session")
if s is None:
    print("no musproxy_session cookie: %s" % sorted(cs))
else:
    print("value=%d httpOnly=%s sameSite=%s secure=%s path=%s session=%s login_cookie=%s" % (
        len(s["value"]), s["httpOnly"], s.get("sameSite"), s["secure"], s["path"],
        s["session"], "musproxy_login" in cs))
' "$P/cookies.json" 2>&1)
if [[ $COOKIE == "value=64 httpOnly=True sameSite=Strict secure=True path=/ session=True login_cookie=False" ]]; then
    pass "session cookie: 64 hex digits, HttpOnly, SameSite=Strict, Secure, Path=/, ends with the browser; the login form's cookie is gone"
else
    fail "session cookie: $COOKIE"
fi
cp "$P/dash.html" "$TMP/dash.html" 2>/dev/null
figure() { sed -n "s/.*<dd id=\"$1\">\([0-9]*\)<\/dd>.*/\1/p" "$TMP/dash.html" | head -1; }
check() {   # check NAME PAGE_VALUE LOG_VALUE
    if [[ -n $2 && $2 == "$3" ]]; then pass "dashboard $1 = $2 (access log: $3)"
    else fail "dashboard $1 = '${2}', access log says $3"; fi
}
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
R=$(sed -n 's/.*<dd id="requests">\([0-9]*\)<\/dd>.*/\1/p' "$P/remote.html" | head -1)
check "requests (remote only)" "$R" "$L_REMOTE"
S=$(sed -n 's/.*<dd id="written">\([0-9]*\)<\/dd>.*/\1/p' "$P/store.html" | head -1)
check "store written" "$S" "$L_REQ"

# ---- the trace form (its CSRF token sent back by the browser): musctl trace's answer
WANT=$("$MUSCTL_BIN" trace --socket "$TMP/musproxy.sock" --json --ip 127.0.0.2 --url http://games.test/e2e |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["action"])')
GOT=$(sed -n 's/.*<td id="trace-action">\([a-z_-]*\)<\/td>.*/\1/p' "$P/traced.html" | head -1)
if [[ -n $WANT && $GOT == "$WANT" && $(url_of traced) == "$UI/trace" ]]; then
    pass "trace form from the browser: $GOT, as musctl trace says"
else
    fail "trace form from the browser: '$GOT' at $(url_of traced), musctl trace says '$WANT'"
fi

# ---- logout: back to the login form, and the UI wants a login again
if [[ $(url_of logout) == "$UI/login" && $(url_of afterlogout) == "$UI/login" ]] &&
   ! grep -q 'id="written"' "$P/afterlogout.html"; then
    pass "chromium logged out with the header's button: pages need a login again"
else
    fail "logout: at $(url_of logout), then $(url_of afterlogout)"
fi

# ---- what musproxy logged: the failed login, the login, the logout, never the password
MLOG=$TMP/musproxy.log
if grep -q "admin: failed login as 'admin' from 127.0.0.1" "$MLOG" &&
   grep -q 'admin: admin logged in from 127.0.0.1' "$MLOG" && grep -q 'admin: admin logged out' "$MLOG" &&
   ! grep -qF -- "$ADMIN_PASS" "$MLOG"; then
    pass "log: the failed login, the login and the logout, no password"
else
    fail "log lacks the login lines or has the password: $(grep 'admin: ' "$MLOG" | tail -5)"
fi

if [[ $FAILED -eq 0 ]]; then echo "RESULT: PASS"; else
    echo "--- musproxy log"; tail -20 "$TMP/musproxy.log"; echo "RESULT: FAIL"; fi
exit $FAILED
