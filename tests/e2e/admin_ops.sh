#!/usr/bin/env bash
# tests/e2e/admin_ops.sh: the admin UI's operator pages in a real browser,
# checked against the access log and a real mus-headend: the scheduled
# reports, the live identity map with its search, and the headends' "test
# connection" action.
#
# A test CA signs mus-headend's certificate; mus-headend serves four VPN
# sessions (vpnuser at 127.0.0.5 among them). musproxy has four headends:
# he-lab (that mus-headend, its CA and password: the live session), and
# three that cannot work, each its own way: he-wrongpw (a wrong password),
# he-wrongca (another CA) and he-dead (a port where nothing listens). It
# stores every transaction and writes daily scheduled reports into
# $TMP/reports. curl sends a known mix through the proxy from vpnuser's
# address (remote, identified by the map) and from 127.0.0.1 (local).
#
# The reports are of the day just ended, so musproxy is then restarted
# under faketime one day ahead (FAKETIME_DONT_FAKE_MONOTONIC=1): at its
# start the reports thread writes the files of "yesterday", the day the
# traffic was sent. Headless Chromium (tests/e2e/cdp.py) logs in and:
#   - the Scheduled reports page lists the six files of that day; the
#     summary and sites files, downloaded through the page's own links with
#     the browser's session, hold the access log's numbers, and come with
#     Content-Disposition; names with a path in them are refused (400);
#   - the Identity map page lists mus-headend's four sessions with vpnuser's
#     address, domain, groups and headend; the search box filters them (a
#     user's substring, an address prefix);
#   - on the Headends page, "Test connection" of he-lab says ok with the
#     round trip and mus-headend's identity and certificate subject; of the
#     other three: authentication failed, certificate not trusted, connect
#     refused; and he-lab's live session is still the same one afterwards
#     (established, no reconnect, its entries).
# A second restart (same clock) rewrites nothing; a third, three days ahead,
# writes exactly the two days missed. Screenshots of the pages go to
# $E2E_ARTIFACTS (default var/e2e-artifacts/admin_ops).
#
# Environment: MUSPROXY_BIN, ORIGIN_BIN, MUSCTL_BIN, HEADEND_BIN (default
# build/...), CHROMIUM (default chromium), KEEP_TMP=1 keeps the temp dir.
# Exit status: 0 pass, 1 fail, 77 skipped (the last line says why).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MUSPROXY_BIN=${MUSPROXY_BIN:-$REPO/build/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-$REPO/build/mp-origin}
MUSCTL_BIN=${MUSCTL_BIN:-$(dirname "$MUSPROXY_BIN")/musctl}
HEADEND_BIN=${HEADEND_BIN:-$(dirname "$MUSPROXY_BIN")/mus-headend}
CHROMIUM=${CHROMIUM:-chromium}
ART=${E2E_ARTIFACTS:-$REPO/var/e2e-artifacts/admin_ops}

skip() { echo "SKIP: $*"; exit 77; }
for t in "$CHROMIUM" curl timeout setsid python3 awk openssl faketime; do
    command -v "$t" >/dev/null 2>&1 || skip "$t not installed (tools/setup.sh installs it)"
done
for b in "$MUSPROXY_BIN" "$ORIGIN_BIN" "$MUSCTL_BIN" "$HEADEND_BIN"; do
    [[ -x $b ]] || { echo "FAIL: binary not found: $b"; exit 1; }
done

# shellcheck source=lib.bash
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
e2e_init admin-ops
mkdir -p "$ART"

# ---- the origin
start_origin
PPORT=$(free_port)
APORT=$(free_port)
HPORT=$(free_port)
DEAD=$(free_port)          # nothing listens there
UI=http://127.0.0.1:$APORT

# ---- mus-headend: a test CA's certificate, the shared password, four sessions
origin_cert "IP:127.0.0.1"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/other.key" -out "$TMP/other-ca.pem" \
    -days 2 -subj "/CN=some other CA" 2>/dev/null
printf 'lab-secret-%s\n' "$RANDOM" >"$TMP/mus.secret"
printf 'not-the-secret\n' >"$TMP/wrong.secret"
chmod 600 "$TMP/mus.secret" "$TMP/wrong.secret" "$TMP/origin.key"
NOW=$(date +%s)
cat >"$TMP/sessions" <<EOF
{"sid":"s1","ips":["127.0.0.5"],"id":{"type":"user","name":"vpnuser","domain":"LAB"},"groups":["staff","vpn"],"started":$((NOW - 600))}
{"sid":"s2","ips":["127.0.0.6"],"id":{"type":"user","name":"dora","domain":"LAB"},"groups":["eng"],"started":$((NOW - 300))}
{"sid":"s3","ips":["127.0.0.7"],"id":{"type":"user","name":"erik","domain":"LAB"},"started":$((NOW - 200))}
{"sid":"s4","ips":["127.0.0.16"],"id":{"type":"machine","name":"PC16$","domain":"LAB"},"started":$((NOW - 100))}
EOF
start_bg "$TMP/headend.log" "$HEADEND_BIN" --listen "127.0.0.1:$HPORT" --cert "$TMP/origin.pem" \
    --key "$TMP/origin.key" --password-file "$TMP/mus.secret" --sessions "$TMP/sessions" \
    --server-id lab-headend --kdf-iter 10000
wait_port "$HPORT" || { echo "FAIL: mus-headend did not start"; cat "$TMP/headend.log"; exit 1; }

# ---- the admin account
ADMIN_PASS="e2e-$RANDOM-secret"
printf '%s\n' "$ADMIN_PASS" | "$MUSCTL_BIN" passwd admin --file "$TMP/admin.passwd" >/dev/null ||
    { echo "FAIL: musctl passwd admin"; exit 1; }

cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen: [ "127.0.0.1:$PPORT" ]
  workers: 1
  access_log: $TMP/access.log
store: { path: $TMP/musproxy.db }
reports: { archive: $TMP/reports, schedule: [daily] }
mus:
  remote_users: headend
  control_socket: $TMP/musproxy.sock
  reconnect_interval: 60s
  headends:
    - { name: he-lab, addresses: ["127.0.0.1:$HPORT"], ca: $TMP/ca.pem, password_file: $TMP/mus.secret }
    - { name: he-wrongpw, addresses: ["127.0.0.1:$HPORT"], ca: $TMP/ca.pem, password_file: $TMP/wrong.secret }
    - { name: he-wrongca, addresses: ["127.0.0.1:$HPORT"], ca: $TMP/other-ca.pem, password_file: $TMP/mus.secret }
    - { name: he-dead, addresses: ["127.0.0.1:$DEAD"], ca: $TMP/ca.pem, password_file: $TMP/mus.secret }
identity_profiles:
  - { name: remote-users, location: remote, types: [user] }
  - { name: office, location: local }
access_policies:
  - { name: remote, profiles: [remote-users], categories: { games: block } }
  - { name: default, default: allow }
custom_categories:
  - { name: games, domains: [games.test] }
admin:
  listen: 127.0.0.1:$APORT
  password_file: $TMP/admin.passwd
EOF
MLOG=$TMP/musproxy.log
# start_musproxy [FAKETIME]: musproxy (under faketime if given) until its ports answer
start_musproxy() {
    if [[ -n ${1:-} ]]; then
        start_bg "$MLOG" env FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$1" \
            "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
    else
        start_bg "$MLOG" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
    fi
    MP_PID=$BG_PID
    wait_port "$PPORT" && wait_port "$APORT" ||
        { echo "FAIL: musproxy did not start"; tail -20 "$MLOG"; exit 1; }
}
stop_musproxy() {
    kill -TERM -- "-$MP_PID" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$MP_PID" 2>/dev/null || break; sleep 0.1; done
    wait "$MP_PID" 2>/dev/null
    forget_pid "$MP_PID"
}
status_json() { "$MUSCTL_BIN" status --json --socket "$TMP/musproxy.sock"; }
# he_field NAME FIELD: a field of headend NAME in musctl status
he_field() {
    status_json | python3 -c 'import json,sys
h=[h for h in json.load(sys.stdin)["headends"] if h["name"]==sys.argv[1]][0]; print(h[sys.argv[2]])' "$1" "$2"
}
wait_established() {
    for _ in $(seq 100); do [[ $(he_field he-lab state 2>/dev/null) == established ]] && return 0; sleep 0.1; done
    return 1
}

start_musproxy
wait_established && pass "musproxy's session to mus-headend (he-lab) is established" ||
    fail "he-lab: $(he_field he-lab state) $(he_field he-lab last_error)"

# ---- the traffic: from vpnuser's address (remote) and from 127.0.0.1 (local)
send() {   # send ADDR N_OK N_BLOCK
    local i
    for ((i = 0; i < $2; i++)); do
        curl -s -o /dev/null --interface "$1" -x "http://127.0.0.1:$PPORT" "http://127.0.0.1:$OPORT/size/$((300 + i))"
    done
    for ((i = 0; i < $3; i++)); do
        curl -s -o /dev/null --interface "$1" -x "http://127.0.0.1:$PPORT" "http://games.test/$i"
    done
}
send 127.0.0.5 6 3
send 127.0.0.1 4 0
SENT=13
for _ in $(seq 100); do
    W=$(status_json | python3 -c 'import json,sys; s=json.load(sys.stdin)["store"]; print(s["written"], s["submitted"])')
    [[ $W == "$SENT $SENT" ]] && break
    sleep 0.1
done
[[ $W == "$SENT $SENT" ]] && pass "store: $SENT written" || fail "store: written/submitted $W, want $SENT"
LOG=$TMP/access.log
L_REQ=$(wc -l <"$LOG")
L_BLOCKED=$(awk '$4 == "TCP_DENIED/403"' "$LOG" | wc -l)
L_BYTES=$(awk '{s += $5} END {print s + 0}' "$LOG")
L_ORIGIN=$(awk -v h="http://127.0.0.1:$OPORT/" 'index($7, h) == 1' "$LOG" | wc -l)
L_ORIGIN_BYTES=$(awk -v h="http://127.0.0.1:$OPORT/" 'index($7, h) == 1 {s += $5} END {print s + 0}' "$LOG")
L_VPN=$(awk '$8 == "vpnuser"' "$LOG" | wc -l)
[[ $L_REQ -eq $SENT && $L_VPN -eq 9 && $L_BLOCKED -eq 3 ]] &&
    pass "access log: $L_REQ lines, $L_VPN of vpnuser (identified by the map), $L_BLOCKED blocked" ||
    fail "access log: $L_REQ lines, $L_VPN of vpnuser, $L_BLOCKED blocked (want $SENT, 9, 3)"
stop_musproxy

# the first start, with an empty archive, wrote the day just ended (no traffic)
PREV=$(date -u -d '-1 day' +%F)
Z=$(sed -n 2p "$TMP/reports/daily/$PREV-summary.csv" 2>/dev/null | cut -d, -f1 | tr -d '\r')
[[ $(ls "$TMP/reports/daily" | wc -l) -eq 6 && $Z == 0 ]] &&
    pass "first start, empty archive: the 6 files of $PREV (0 requests)" ||
    fail "first start: $(ls "$TMP/reports/daily" 2>&1 | head -3), $PREV requests '$Z'"

# ---- a day later: the reports thread writes the day the traffic was sent
DAY=$(date -u +%F)
start_musproxy +1d
for _ in $(seq 100); do [[ $(ls "$TMP/reports/daily" 2>/dev/null | wc -l) -ge 6 ]] && break; sleep 0.1; done
N=$(ls "$TMP/reports/daily" 2>/dev/null | grep -c "^$DAY-.*\.csv$")
[[ $N -eq 6 ]] && pass "reports thread: 6 files of $DAY in reports/daily" ||
    fail "reports thread: $N files of $DAY: $(ls "$TMP/reports/daily" 2>&1 | head)"
wait_established || fail "he-lab not established after the restart"
HE_SINCE=$(he_field he-lab connected_since)
HE_RECONNECTS=$(he_field he-lab reconnects)
HE_ENTRIES=$(he_field he-lab entries)

cat >"$TMP/steps" <<EOF
goto login $UI/login
fill input[name=user] admin
fill input[name=password] $ADMIN_PASS
submit dash #login
cookies cookies $UI/
goto archive $UI/archive
shot archive
goto map $UI/map
shot map
fill input[name=q] VPNus
submit search-user #map-search
shot map-search
fill input[name=q] 127.0.0.1
submit search-ip #map-search
goto headends $UI/headends
submit test-ok form:has(#test-he-lab)
shot test-ok
submit test-wrongpw form:has(#test-he-wrongpw)
shot test-wrongpw
submit test-wrongca form:has(#test-he-wrongca)
shot test-wrongca
submit test-dead form:has(#test-he-dead)
shot test-dead
EOF
P=$TMP/pages
mkdir -p "$P"
cdp_run 120 "$P" "$TMP/steps" "$TMP/cdp.log" --window-size=1280,900 ||
    fail "the browser steps did not all run: $(grep '^cdp:' "$TMP/cdp.log" | head -3)"
cp "$P"/*.png "$ART"/ 2>/dev/null
flat() { tr -d '\n' <"$P/$1.html"; }

# ---- the scheduled reports page: the six files of the day, with their links
ROWS=$(flat archive | grep -o "<tr><td>daily</td><td>$DAY</td><td>[a-z]*</td><td class=\"n\">[0-9]*</td>" | wc -l)
[[ $ROWS -eq 6 ]] && pass "Scheduled reports page: 6 daily files of $DAY listed" ||
    fail "Scheduled reports page: $ROWS rows of $DAY: $(flat archive | head -c 600)"
SESSION=$(python3 -c 'import json,sys; print([c["value"] for c in json.load(open(sys.argv[1])) if c["name"]=="musproxy_session"][0])' "$P/cookies.json")
link() { flat archive | grep -o "href=\"/archive?file=daily%2F$DAY-$1.csv\"" | head -1 | sed 's/href="//; s/"$//'; }
fetch() { curl -s -D "$TMP/$2.head" -o "$TMP/$2.csv" -w '%{http_code}' -b "musproxy_session=$SESSION" "$UI$1"; }
SUMLINK=$(link summary)
CODE=$(fetch "$SUMLINK" summary)
GOT=$(sed -n 2p "$TMP/summary.csv" | cut -d, -f1-3 | tr -d '\r')
if [[ $CODE == 200 && $GOT == "$L_REQ,$L_BYTES,$L_BLOCKED" ]] &&
   grep -qi "^content-disposition: attachment; filename=\"musproxy-daily-$DAY-summary.csv\"" "$TMP/summary.head"; then
    pass "download $SUMLINK: requests,bytes,blocked = $GOT as the access log says, as an attachment"
else
    fail "download summary: HTTP $CODE, '$GOT' (access log: $L_REQ,$L_BYTES,$L_BLOCKED): $(head -3 "$TMP/summary.head")"
fi
CODE=$(fetch "$(link sites)" sites)
ROW=$(grep "^127.0.0.1," "$TMP/sites.csv" | cut -d, -f1-4 | tr -d '\r')
GAMES=$(grep '^games.test,' "$TMP/sites.csv" | cut -d, -f1-4 | tr -d '\r')
if [[ $CODE == 200 && $ROW == "127.0.0.1,$L_ORIGIN,$L_ORIGIN_BYTES,0" && $GAMES == games.test,3,*,3 ]]; then
    pass "download sites: $ROW and $GAMES, as the access log says"
else
    fail "download sites: HTTP $CODE: '$ROW' '$GAMES' (access log: $L_ORIGIN requests, $L_ORIGIN_BYTES bytes)"
fi
BAD=""
for f in "../../etc/passwd" "daily/..%2F..%2F..%2Fetc%2Fpasswd" "daily%2F$DAY-sites.csv%2F.." "/etc/passwd" \
         "daily/.$DAY-sites.csv.1"; do
    c=$(fetch "/archive?file=$f" bad)
    [[ $c == 400 ]] || BAD+=" $f:$c"
done
c=$(fetch "/archive?file=daily%2F2001-01-01-sites.csv" missing)
[[ -z $BAD && $c == 404 ]] && pass "download: names with a path refused (400), a missing period 404" ||
    fail "download: traversal answers:$BAD, missing period $c"
c=$(curl -s -o /dev/null -w '%{http_code}' "$UI$SUMLINK")
[[ $c == 303 ]] && pass "download without a login: 303 to the login" || fail "download without a login: $c"

# ---- the identity map: mus-headend's sessions, searched
row_of() { flat "$1" | grep -o "<tr><td>$2</td><td><a href=\"/user?name=[^\"]*\">[^<]*</a></td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td><td>[^<]*</td>" | head -1; }
VROW=$(row_of map 127.0.0.5)
TOTAL=$(flat map | sed -n 's/.*<span id="total">\([0-9]*\)<\/span>.*/\1/p')
if [[ $VROW == *'>vpnuser</a></td><td>LAB</td><td>user</td><td>staff,vpn</td><td>he-lab</td>' && $TOTAL == 4 ]]; then
    pass "Identity map page: 4 addresses, vpnuser at 127.0.0.5 (LAB, user, staff,vpn, he-lab)"
else
    fail "Identity map page: total '$TOTAL', vpnuser row '$VROW'"
fi
M1=$(flat search-user | sed -n 's/.*<span id="matched">\([0-9]*\)<\/span>.*/\1/p')
N1=$(flat search-user | grep -o '<tr><td>127\.0\.0\.[0-9]*</td>' | wc -l)
M2=$(flat search-ip | sed -n 's/.*<span id="matched">\([0-9]*\)<\/span>.*/\1/p')
N2=$(flat search-ip | grep -o '<tr><td>127\.0\.0\.[0-9]*</td>' | wc -l)
if [[ $M1 == 1 && $N1 == 1 && -n $(row_of search-user 127.0.0.5) && $M2 == 1 && $N2 == 1 &&
      -n $(row_of search-ip 127.0.0.16) ]]; then
    pass "map search: 'VPNus' finds vpnuser alone, '127.0.0.1' (prefix) finds 127.0.0.16 alone"
else
    fail "map search: 'VPNus' $M1 matched/$N1 rows, '127.0.0.1' $M2 matched/$N2 rows"
fi

# ---- the connection tests
field() { flat "$1" | sed -n "s/.*id=\"test-$2\">\([^<]*\)<.*/\1/p" | head -1; }
OUT=$(field test-ok outcome); RTT=$(field test-ok rtt); SRV=$(field test-ok server); SUBJ=$(field test-ok subject)
if [[ $OUT == ok && $RTT =~ ^[0-9]+$ && $RTT -lt 5000 && $SRV == lab-headend && $SUBJ == *CN=origin.test* &&
      $(cat "$P/test-ok.url") == "$UI/headends" ]]; then
    pass "test he-lab: ok in $RTT ms, identity $SRV, certificate $SUBJ"
else
    fail "test he-lab: '$OUT' '$RTT' '$SRV' '$SUBJ': $(field test-ok message)"
fi
expect_test() {   # expect_test PAGE OUTCOME MESSAGE-PART
    local o m
    o=$(field "$1" outcome); m=$(field "$1" message)
    if [[ $o == "$2" && $m == *"$3"* ]]; then pass "$1: $o: $m"
    else fail "$1: '$o' '$m' (want '$2', '$3')"; fi
}
expect_test test-wrongpw "authentication failed" "refused our password"
expect_test test-wrongca "certificate not trusted" "certificate not trusted: unable to get local issuer certificate"
expect_test test-dead "connect refused" "127.0.0.1:$DEAD: Connection refused"
if [[ $(he_field he-lab state) == established && $(he_field he-lab connected_since) == "$HE_SINCE" &&
      $(he_field he-lab reconnects) == "$HE_RECONNECTS" && $(he_field he-lab entries) == "$HE_ENTRIES" ]]; then
    pass "he-lab's live session undisturbed by the tests (same session, $HE_ENTRIES entries)"
else
    fail "he-lab's session changed: $(he_field he-lab state) since $(he_field he-lab connected_since) (was $HE_SINCE)"
fi

# ---- restarts: the same day again rewrites nothing; three days on, the two missed ones
stat -c '%n %i %Y' "$TMP/reports/daily"/*.csv >"$TMP/before"
stop_musproxy
start_musproxy +1d
sleep 1
stat -c '%n %i %Y' "$TMP/reports/daily"/*.csv >"$TMP/after"
cmp -s "$TMP/before" "$TMP/after" && pass "restart: nothing rewritten, nothing added" ||
    fail "restart changed the archive: $(diff "$TMP/before" "$TMP/after" | head -4)"
stop_musproxy
start_musproxy +3d
D1=$(date -u -d '+1 day' +%F); D2=$(date -u -d '+2 days' +%F)
for _ in $(seq 100); do [[ $(ls "$TMP/reports/daily" | wc -l) -ge 24 ]] && break; sleep 0.1; done
NEW=$(ls "$TMP/reports/daily" | grep -c -e "^$D1-" -e "^$D2-")
ZERO=$(sed -n 2p "$TMP/reports/daily/$D1-summary.csv" | cut -d, -f1 | tr -d '\r')
stat -c '%n %i %Y' $(sed 's/ .*//' "$TMP/before") >"$TMP/after3"
# 24: the day before the traffic (written by the first start, an empty
# archive), the traffic's day, the two missed
if [[ $NEW -eq 12 && $(ls "$TMP/reports/daily" | wc -l) -eq 24 && $ZERO == 0 ]] && cmp -s "$TMP/before" "$TMP/after3"; then
    pass "down two days: $D1 and $D2 written at the next start (12 files, no traffic: 0 requests), $DAY untouched"
else
    fail "catch-up: $NEW new files, $(ls "$TMP/reports/daily" | wc -l) in all, $D1 requests '$ZERO'"
fi
stop_musproxy

if [[ $FAILED -eq 0 ]]; then echo "RESULT: PASS"; else
    echo "--- musproxy log"; tail -30 "$MLOG"; echo "RESULT: FAIL"; fi
exit $FAILED
