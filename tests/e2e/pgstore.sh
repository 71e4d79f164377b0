#!/usr/bin/env bash
# tests/e2e/pgstore.sh: two musproxy nodes writing one PostgreSQL store, the
# README's "Several proxies" steps run as written.
#
# A PostgreSQL server of its own: initdb in the temp dir as `nobody` (the
# server refuses root), on a Unix socket only, the superuser trusted on it
# and every other role by password (scram-sha-256). The README's blocks
# (marked "<!-- pgstore.sh runs: NAME -->") are extracted and run: the
# database and its role (psql, PGHOST = the socket), the password file on
# each node, the store section (host=db.example becomes the socket, node a
# becomes b for the second node), musctl report. Then, with mp-origin
# behind both nodes and curl in front (Basic users; 127.0.0.2 is a VPN
# address, so remote):
#   1. rows per node in txn equal each node's access log (count and bytes);
#   2. the dashboard of node a, by `musctl report` and by the admin UI's
#      /api/dashboard (Basic credentials), and node b's API too, count both
#      nodes: requests, blocked, bytes, remote requests, distinct users;
#      the rollups (ru_user) sum to the same; node b's /api/store names the
#      database (its conninfo) and counts its rows; the users and sites reports
#      name both nodes' users and the origin's host;
#   3. PostgreSQL stopped (fast) during traffic on both nodes and started
#      again 3 s later: both writers connect again by themselves (store open,
#      queue empty), so does node a's UI (its dashboard counts every row),
#      and for each node written + dropped + lost equals its
#      access log's lines and its rows equal written; node b (store.queue:
#      16) dropped some while the database was down, node a (the default
#      queue) dropped and lost none;
#   4. config: a conninfo with a password is refused by `musproxy -t`; a node
#      whose database cannot be reached, and one whose conninfo does not
#      parse, log why and serve (a request through each gets its 200).
#
# Environment: MUSPROXY_BIN, ORIGIN_BIN, MUSCTL_BIN (default build/...),
# KEEP_TMP=1 keeps the temp dir. Exit: 0 pass, 1 fail, 77 skipped (why).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MUSPROXY_BIN=${MUSPROXY_BIN:-$REPO/build/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-$REPO/build/mp-origin}
MUSCTL_BIN=${MUSCTL_BIN:-$(dirname "$MUSPROXY_BIN")/musctl}
. "$REPO/tests/e2e/lib.bash"

skip() { echo "SKIP: $*"; exit 77; }
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -n $PGBIN && -x $PGBIN/initdb && -x $PGBIN/pg_ctl ]] ||
    skip "PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin; tools/setup.sh installs postgresql)"
for t in psql runuser curl python3 awk setsid; do
    command -v "$t" >/dev/null 2>&1 || skip "$t not installed (tools/setup.sh installs it)"
done
for b in "$MUSPROXY_BIN" "$ORIGIN_BIN" "$MUSCTL_BIN"; do
    [[ -x $b ]] || skip "$b not built"
done
[[ $(id -u) == 0 ]] || skip "needs root (to run the database server as nobody)"

e2e_init pgstore
chmod 755 "$TMP"

# ---- the database server
PG=$TMP/pg
PGPORT_N=$(free_port)
mkdir -p "$PG/sock" && chown -R nobody "$PG"
pg() { (cd / && runuser -u nobody -- "$@"); }
pg "$PGBIN/initdb" -D "$PG/data" -U pgsuper -A trust -E UTF8 --locale=C.UTF-8 >"$TMP/initdb.log" 2>&1 ||
    { echo "FAIL: initdb"; cat "$TMP/initdb.log"; exit 1; }
cat >"$PG/data/pg_hba.conf" <<EOF
local all pgsuper trust
local all all scram-sha-256
EOF
pg_start() {
    pg "$PGBIN/pg_ctl" -D "$PG/data" -l "$PG/server.log" -w -t 30 \
        -o "-k $PG/sock -p $PGPORT_N -c listen_addresses='' -c fsync=off" start >/dev/null
}
pg_stop() { pg "$PGBIN/pg_ctl" -D "$PG/data" -m fast -w -t 30 stop >/dev/null; }
pg_start || { echo "FAIL: the database server did not start"; cat "$PG/server.log"; exit 1; }
trap 'pg_stop 2>/dev/null; e2e_cleanup' EXIT
pass "PostgreSQL $("$PGBIN/postgres" -V | awk '{print $3}') on $PG/sock port $PGPORT_N"
export PGHOST=$PG/sock PGPORT=$PGPORT_N PGUSER=pgsuper PGDATABASE=postgres
export PATH="$(dirname "$MUSCTL_BIN"):$PATH"     # the README's steps say musctl
sql() { psql -X -At -d musproxy -c "$1"; }   # as the superuser, in musproxy's database

# ---- the README's blocks
block() {   # block NAME: the fenced block after "<!-- pgstore.sh runs: NAME -->"
    awk -v m="<!-- pgstore.sh runs: $1 -->" '
        $0 == m { want = 1; next }
        want && /^```/ { if (inside) exit; inside = 1; next }
        inside { print }' "$REPO/README.md"
}
for b in database password store report; do
    [[ -n $(block "$b") ]] || { echo "FAIL: README has no block '$b'"; exit 1; }
done
bash -euo pipefail -c "$(block database)" >"$TMP/database.log" 2>&1 &&
    pass "README step 1 (database and role) ran" ||
    { fail "README step 1: $(cat "$TMP/database.log")"; exit 1; }

OPORT=$(free_port)
start_bg "$TMP/origin.log" "$ORIGIN_BIN" --listen "127.0.0.1:$OPORT"
OPID=$BG_PID
printf '%s\n' "admin-pw" | "$MUSCTL_BIN" passwd admin --file "$TMP/admin.passwd" >/dev/null &&
    printf '%s\n' "alice-pw" | "$MUSCTL_BIN" passwd alice --file "$TMP/users.passwd" >/dev/null &&
    printf '%s\n' "bob-pw" | "$MUSCTL_BIN" passwd bob --file "$TMP/users.passwd" >/dev/null ||
    { echo "FAIL: musctl passwd"; exit 1; }

declare -A PPORT APORT
node_config() {   # node_config NODE [QUEUE]: NODE/etc/musproxy.yaml, the README's store block in it
    local n=$1 dir=$TMP/$1
    PPORT[$n]=$(free_port) APORT[$n]=$(free_port)
    mkdir -p "$dir"
    (cd "$dir" && bash -euo pipefail -c "$(block password)") ||
        { echo "FAIL: README step 2 (password file) on node $n"; exit 1; }
    cat >"$dir/etc/musproxy.yaml" <<EOF
proxy:
  listen: [ "127.0.0.1:${PPORT[$n]}" ]
  workers: 1
  access_log: $dir/access.log
mus:
  remote_users: ip_ranges
  vpn_pools: [127.0.0.2/32]
  control_socket: $dir/musproxy.sock
identity_profiles:
  - { name: remote-users, location: remote, auth: basic }
  - { name: office, location: local, auth: basic }
access_policies:
  - { name: all, profiles: [remote-users, office], categories: { games: block } }
  - { name: default, default: allow }
custom_categories:
  - { name: games, url_prefixes: ["http://127.0.0.1:$OPORT/size/9"] }
authentication:
  password_file: $TMP/users.passwd
admin:
  listen: 127.0.0.1:${APORT[$n]}
  password_file: $TMP/admin.passwd
EOF
    block store | sed -e "s|host=db.example|host=$PG/sock port=$PGPORT_N|" -e "s|node: a|node: $n|" \
        >>"$dir/etc/musproxy.yaml"
    [[ -n ${2:-} ]] && echo "  queue: $2" >>"$dir/etc/musproxy.yaml"
    return 0
}
declare -A MPID
start_node() {   # start_node NODE
    local dir=$TMP/$1
    (cd "$dir" && start_bg "$dir/musproxy.log" "$MUSPROXY_BIN" -c etc/musproxy.yaml &&
        echo "$BG_PID" >"$dir/pid")
    MPID[$1]=$(cat "$dir/pid")
    PIDS+=("${MPID[$1]}")
    wait_listen "${PPORT[$1]}" "${MPID[$1]}" && wait_port "${APORT[$1]}" ||
        { echo "FAIL: node $1 did not start"; cat "$dir/musproxy.log"; exit 1; }
}
node_config a
node_config b 16
start_node a
start_node b
wait_listen "$OPORT" "$OPID" || { echo "FAIL: origin did not start"; exit 1; }
pass "nodes a (proxy ${PPORT[a]}) and b (proxy ${PPORT[b]}, store.queue 16) on one database"

# ---- traffic: send NODE USER ADDR ALLOWED BLOCKED
send() {
    local n=$1 user=$2 addr=$3 i
    for ((i = 0; i < $4; i++)); do
        curl -s -o /dev/null --max-time 5 --interface "$addr" -x "http://127.0.0.1:${PPORT[$n]}" \
            --proxy-basic -U "$user:$user-pw" "http://127.0.0.1:$OPORT/size/$((100 + i))"
    done
    for ((i = 0; i < $5; i++)); do
        curl -s -o /dev/null --max-time 5 --interface "$addr" -x "http://127.0.0.1:${PPORT[$n]}" \
            --proxy-basic -U "$user:$user-pw" "http://127.0.0.1:$OPORT/size/9$i"
    done
}
status() {   # status NODE FIELD...: the store's fields from musctl status --json
    "$MUSCTL_BIN" status --json --socket "$TMP/$1/musproxy.sock" | python3 -c '
import json, sys
s = json.load(sys.stdin)["store"]
print(" ".join(str(s[k]).lower() if isinstance(s[k], bool) else str(s[k]) for k in sys.argv[1:]))' \
        "${@:2}"
}
lines() { wc -l <"$TMP/$1/access.log"; }
settle() {   # settle NODE: until every logged line was written or dropped (or 60 s)
    local n=$1 i open queued submitted dropped
    for ((i = 0; i < 600; i++)); do
        read -r open queued submitted dropped <<<"$(status "$n" open queued submitted dropped)"
        [[ $open == true && $queued == 0 && $((submitted + dropped)) == $(lines "$n") ]] &&
            return 0
        sleep 0.1
    done
    return 1
}
send a alice 127.0.0.1 7 3
send b bob 127.0.0.2 5 2
send b alice 127.0.0.1 2 0
settle a && settle b || fail "the stores did not settle: a $(status a open queued submitted written), b $(status b open queued submitted written)"

# ---- 1. rows per node = access log
LOG_BYTES() { awk '{ s += $5 } END { print s + 0 }' "$TMP/$1/access.log"; }
LOG_DENIED() { awk 'index($4, "TCP_DENIED/") == 1' "$TMP/$1/access.log" | wc -l; }
LOG_REMOTE() { awk '$3 == "127.0.0.2"' "$TMP/$1/access.log" | wc -l; }
for n in a b; do
    got=$(sql "SELECT count(*), COALESCE(sum(bytes_out), 0) FROM txn WHERE node = '$n'")
    want="$(lines $n)|$(LOG_BYTES $n)"
    [[ $got == "$want" ]] && pass "node $n: $got rows|bytes in txn, as its access log" ||
        fail "node $n: txn has $got (rows|bytes), its access log $want"
done

# ---- 2. the group's dashboard from node a (and b)
TOTAL=$(($(lines a) + $(lines b)))
BYTES=$(($(LOG_BYTES a) + $(LOG_BYTES b)))
DENIED=$(($(LOG_DENIED a) + $(LOG_DENIED b)))
REMOTE=$(($(LOG_REMOTE a) + $(LOG_REMOTE b)))
WANT="$TOTAL $DENIED $BYTES $REMOTE 2"
summary() { python3 -c 'import json, sys
s = json.load(sys.stdin)["summary"]
print(s["requests"], s["blocked"], s["bytes"], s["remote_requests"], s["users"])'; }
(cd "$TMP/a" && bash -euo pipefail -c "$(block report)") >"$TMP/report.out" 2>&1 ||
    fail "README step 4 failed: $(head -5 "$TMP/report.out")"
got=$(python3 -c 'import json, sys
t = open(sys.argv[1]).read(); print(t[:t.rindex("}") + 1])' "$TMP/report.out" 2>/dev/null | summary)
[[ $got == "$WANT" ]] && pass "README step 4: musctl report dashboard on node a: requests blocked bytes remote users = $got" ||
    fail "musctl report dashboard on node a: $got, the access logs say $WANT"
grep -q "^a|$(lines a)\$" <(sed 's/ *| */|/g; s/^ *//' "$TMP/report.out") &&
    grep -q "^b|$(lines b)\$" <(sed 's/ *| */|/g; s/^ *//' "$TMP/report.out") &&
    pass "README step 4: psql counts the rows per node" ||
    fail "README step 4: psql's counts per node: $(tail -6 "$TMP/report.out" | tr '\n' ' ')"
for n in a b; do
    got=$(curl -s --max-time 10 -u admin:admin-pw "http://127.0.0.1:${APORT[$n]}/api/dashboard" | summary)
    [[ $got == "$WANT" ]] && pass "node $n's /api/dashboard counts both nodes: $got" ||
        fail "node $n's /api/dashboard: $got, the access logs say $WANT"
done
got=$(curl -s --max-time 10 -u admin:admin-pw "http://127.0.0.1:${APORT[b]}/api/store" | python3 -c '
import json, sys
d = json.load(sys.stdin); print(d["path"], d["store"]["open"], d["store"]["written"])')
want="postgresql: host=$PG/sock port=$PGPORT_N dbname=musproxy user=musproxy True $(lines b)"
[[ $got == "$want" ]] && pass "node b's /api/store: $got" || fail "node b's /api/store: $got, want $want"
got=$(sql "SELECT sum(requests), sum(blocked), sum(bytes) FROM ru_user WHERE span = 3600000")
[[ $got == "$TOTAL|$DENIED|$BYTES" ]] && pass "the rollups sum both nodes: $got" ||
    fail "ru_user hours: $got, want $TOTAL|$DENIED|$BYTES"
got=$(cd "$TMP/b" && musctl report dashboard --config etc/musproxy.yaml | python3 -c 'import json, sys
d = json.load(sys.stdin); print(" ".join("%s:%s" % (u["user"], u["requests"]) for u in d["top_users"]))')
want="alice:$((10 + 2)) bob:7"
[[ $got == "$want" ]] && pass "top users on node b: $got (alice through both nodes)" ||
    fail "top users on node b: $got, want $want"
got=$(cd "$TMP/a" && musctl report sites --config etc/musproxy.yaml | python3 -c 'import json, sys
print(" ".join("%s:%s:%s" % (s["host"], s["requests"], s["users"]) for s in json.load(sys.stdin)["sites"]))')
[[ $got == "127.0.0.1:$TOTAL:2" ]] && pass "sites: $got" || fail "sites: $got, want 127.0.0.1:$TOTAL:2"

# ---- 3. the database stopped and started again during traffic
burst() {   # burst NODE USER N: N requests, 20 ms apart
    local i
    for ((i = 0; i < $3; i++)); do
        curl -s -o /dev/null --max-time 5 -x "http://127.0.0.1:${PPORT[$1]}" --proxy-basic \
            -U "$2:$2-pw" "http://127.0.0.1:$OPORT/size/$((300 + i % 50))"
        sleep 0.02
    done
}
burst a alice 150 & BA=$!
burst b bob 150 & BB=$!
sleep 1
pg_stop && pass "database stopped during traffic" || fail "pg_ctl stop"
sleep 3
for n in a b; do
    err=$(status $n last_error)
    [[ $(status $n open) == false && $err =~ connection\ was\ lost|cannot\ connect ]] &&
        pass "node $n: while the database is down its store is not open, last error: ${err:0:100}" ||
        fail "node $n: while the database is down: open=$(status $n open), last error: $err"
done
pg_start && pass "database started again" || fail "pg_ctl start"
wait $BA $BB
for n in a b; do
    settle $n && pass "node $n: the writer connected again by itself: $(status $n open queued)" ||
        fail "node $n: did not reconnect or drain: $(status $n open queued submitted written last_error)"
done
for n in a b; do
    read -r written dropped lost <<<"$(status $n written dropped lost)"
    rows=$(sql "SELECT count(*) FROM txn WHERE node = '$n'")
    [[ $((written + dropped + lost)) == $(lines $n) ]] &&
        pass "node $n: written $written + dropped $dropped + lost $lost = $(lines $n) access log lines" ||
        fail "node $n: written $written + dropped $dropped + lost $lost, the access log has $(lines $n)"
    [[ $rows == "$written" ]] && pass "node $n: $rows rows in txn = written" ||
        fail "node $n: $rows rows in txn, written says $written"
done
rows=$(sql "SELECT count(*) FROM txn")
got=$(curl -s --max-time 10 -u admin:admin-pw "http://127.0.0.1:${APORT[a]}/api/dashboard" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["summary"]["requests"])')
[[ $got == "$rows" ]] && pass "node a's UI after the restart (its report connection opened again): $got requests, as the rows" ||
    fail "node a's /api/dashboard after the restart: $got requests, txn has $rows rows"
read -r dropped lost <<<"$(status a dropped lost)"
[[ $dropped == 0 && $lost == 0 ]] && pass "node a (queue 65536) kept everything through the outage" ||
    fail "node a dropped $dropped and lost $lost"
dropped=$(status b dropped)
((dropped > 0)) && pass "node b (queue 16) counted $dropped drops while the database was down" ||
    fail "node b dropped nothing: the outage did not fill its queue"

# ---- 4. configuration
cp "$TMP/a/etc/musproxy.yaml" "$TMP/pw.yaml"
sed -i 's|conninfo: "\(.*\)"|conninfo: "\1 password=change-me"|' "$TMP/pw.yaml"
out=$("$MUSPROXY_BIN" -t -c "$TMP/pw.yaml" 2>&1)
grep -q "'conninfo' must not hold a password" <<<"$out" && ! grep -q "change-me" <<<"$out" &&
    pass "a password in the YAML is refused: ${out#*: }" ||
    fail "a conninfo with a password: $out"
bad_node() {   # bad_node NAME CONNINFO WANT_IN_LOG
    node_config "$1"
    sed -i "s|conninfo: \".*\"|conninfo: \"$2\"|" "$TMP/$1/etc/musproxy.yaml"
    start_node "$1"
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -x "http://127.0.0.1:${PPORT[$1]}" \
        --proxy-basic -U alice:alice-pw "http://127.0.0.1:$OPORT/size/10")
    for _ in $(seq 50); do grep -q "$3" "$TMP/$1/musproxy.log" && break; sleep 0.1; done
    msg=$(grep -m1 "$3" "$TMP/$1/musproxy.log")
    [[ $code == 200 && -n $msg ]] && pass "$1: serves ($code) and logs: ${msg#* * }" ||
        fail "$1: answered $code; log: $(grep -i 'store\|postgres' "$TMP/$1/musproxy.log" | head -3)"
}
bad_node unreachable "host=$PG/sock port=1 dbname=musproxy user=musproxy" "postgresql: cannot connect"
bad_node unparsable "host=$PG/sock dbname" "postgresql conninfo: "

[[ $FAILED == 0 ]] && echo "pgstore: all checks passed" || echo "pgstore: FAILED"
exit "$FAILED"
