#!/usr/bin/env bash
# tools/loadfault.sh: load and fault figures for musproxy, each scenario with
# PASS/FAIL and what it measured. Not a unit test: it takes minutes, wants a
# quiet machine and prints figures for the README ("Load and faults").
#
#   tools/loadfault.sh [--quick] [SCENARIO...]
#
# Scenarios (default: all, one after the other, never two at once):
#   conns      10 000 client connections at once (half idle keep-alive after
#              one request, half looping requests): every request answered,
#              the idle ones still served at the end, RSS bounded
#   slowloris  1 000 slowloris connections (kept at 1 000: each one closed is
#              replaced) ended at timeouts.header with a 408, while normal
#              traffic keeps its latency (p50/p99 against a run without them)
#   origins    origins that accept and never answer (504), stall mid-body
#              (the response is cut, logged TCP_MISS_ABORTED), reset before
#              (502) or during the body (cut): each as documented, and the
#              normal traffic beside them is never held up (no worker stalls)
#   headend    mus-headend up one second, down the next (SIGTERM and SIGKILL
#              in turn) for a minute, traffic from mapped and unmapped
#              addresses: every logged user and every `musctl trace` as
#              expected, map entries and RSS flat
#   sighup     SIGHUP every 100 ms under load on the ASan+UBSan build: no
#              request or idle connection lost, every reload applied, the
#              sanitizers silent at exit (LeakSanitizer's report empty)
#
# --quick: a smoke run with smaller numbers (1 000 connections, 200
# slowloris, 20 s of flapping, 10 s of SIGHUPs).
#
# Builds (in this tree): build-release (`meson setup build-release
# --buildtype=release -Dtests=false` if missing; targets musproxy musctl
# mus-headend mp-origin mp-loadclient) for everything but sighup, which uses
# build-asan (`-Db_sanitize=address,undefined -Db_lundef=false`, target
# musproxy). Everything binds to and connects to 127.0.0.0/8 only; ports
# LF_PORT_BASE+28 (proxy), +80 (origin), +99 (headend), default base 23100.
# Scratch and logs: LF_WORK (default /tmp/musproxy-loadfault); the table of
# the run is $LF_WORK/summary.md. Raises RLIMIT_NOFILE (ulimit -n) for what
# it starts. Exit status: 0 if every scenario passed, 1 otherwise.
set -uo pipefail

REPO_DIR=$(cd "$(dirname "$0")/.." && pwd)
WORK=${LF_WORK:-/tmp/musproxy-loadfault}
BASE=${LF_PORT_BASE:-23100}
PPORT=$((BASE + 28)) OPORT=$((BASE + 80)) HPORT=$((BASE + 99))
REL=$REPO_DIR/build-release
ASAN=$REPO_DIR/build-asan
# process control (own sessions, stop by group), wait_port, log/die
# shellcheck source=tools/bench/lib.sh
source "$REPO_DIR/tools/bench/lib.sh"

QUICK=0
SCENARIOS=()
for a in "$@"; do
    case $a in
        --quick) QUICK=1 ;;
        -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        conns|slowloris|origins|headend|sighup) SCENARIOS+=("$a") ;;
        *) die "unknown argument: $a (see --help)" ;;
    esac
done
((${#SCENARIOS[@]})) || SCENARIOS=(conns slowloris origins headend sighup)

# ---------------------------------------------------------------- sizes
if ((QUICK)); then
    CONNS=1000 CONNS_SECONDS=10
    SLOW_CONNS=200 SLOW_SECONDS=8
    FAULT_CONNS=50 FAULT_WAVES=1
    FLAP_SECONDS=20 FLAP_SESSIONS=1000
    HUP_SECONDS=10
else
    CONNS=10000 CONNS_SECONDS=30
    SLOW_CONNS=1000 SLOW_SECONDS=20
    FAULT_CONNS=200 FAULT_WAVES=3
    FLAP_SECONDS=60 FLAP_SESSIONS=10000
    HUP_SECONDS=60
fi
HEADER_TIMEOUT_S=5        # slowloris: timeouts.header
RESPONSE_TIMEOUT_S=3      # origins: timeouts.response
NORMAL=(--conns 20 --think 10)   # "normal traffic": 20 connections, 10 ms between requests
SOCK=$WORK/run/musproxy.sock
ALOG=                     # the access log of the scenario running (set by each)
RESULTS=()                # "scenario|PASS or FAIL|figures" rows
FAILED=0

# ---------------------------------------------------------------- helpers
CLIENT_PIDS=()            # load clients running in the background
cleanup() {
    local p
    for p in "${CLIENT_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
    stop_all
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT TERM

kv() { awk -F= -v k="$2" '$1 == k {print $2; f = 1} END {if (!f) print 0}' "$1"; }
status_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }
cpu_pct() { awk -v t="$1" -v s="$2" -v hz="$HZ" 'BEGIN {printf "%.0f%%", s ? 100 * t / hz / s : 0}'; }  # TICKS SECONDS
musctl_() { "$REL/musctl" "$@" --socket "$SOCK"; }
open_conns() { musctl_ status 2>/dev/null | awk '/^Connections:/ {print $2}'; }

# The kernel's count of connections dropped because a listen queue was full
# (machine-wide: a burst the proxy or an origin did not accept fast enough).
listen_overflows() {
    awk '$1 == "TcpExt:" {if (!c) {for (i = 2; i <= NF; i++) if ($i == "ListenOverflows") c = i} else {print $c; exit}}' /proc/net/netstat
}
LO0=0                     # listen_overflows when the scenario started

# result NAME OK FIGURES: one PASS/FAIL line, kept for the summary table.
result() {
    local name=$1 ok=$2 figures=$3 verdict=PASS lo
    lo=$(($(listen_overflows) - LO0))
    ((lo == 0)) || figures="$figures; kernel listen-queue overflows during the run: $lo"
    ((ok)) || { verdict=FAIL; FAILED=$((FAILED + 1)); }
    printf '%s %s: %s\n' "$verdict" "$name" "$figures"
    RESULTS+=("$name|$verdict|$figures")
}

# check COND-TEXT EXPR: records a failed condition in WHY (for the result line).
WHY=()
check() {
    local what=$1; shift
    if ! "$@"; then WHY+=("$what"); fi
}
le() { awk -v a="$1" -v b="$2" 'BEGIN {exit !(a + 0 <= b + 0)}'; }
eq() { [[ $1 == "$2" ]]; }

need_ports_free() {
    local p
    for p in "$@"; do
        ss -Hltn "sport = :$p" | grep -q . && die "port $p is in use (another run? LF_PORT_BASE moves them)"
    done
    return 0
}

build() {
    log "building build-release"
    if [[ ! -f $REL/build.ninja ]]; then
        meson setup "$REL" --buildtype=release -Dtests=false >"$WORK/logs/build-release.setup.log" 2>&1 ||
            die "meson setup build-release failed: $WORK/logs/build-release.setup.log"
    fi
    ninja -j2 -C "$REL" musproxy musctl mus-headend mp-origin mp-loadclient \
        >"$WORK/logs/build-release.log" 2>&1 || die "build-release failed: $WORK/logs/build-release.log"
    if [[ " ${SCENARIOS[*]} " == *" sighup "* ]]; then
        log "building build-asan (musproxy)"
        if [[ ! -f $ASAN/build.ninja ]]; then
            meson setup "$ASAN" -Db_sanitize=address,undefined -Db_lundef=false \
                >"$WORK/logs/build-asan.setup.log" 2>&1 ||
                die "meson setup build-asan failed: $WORK/logs/build-asan.setup.log"
        fi
        ninja -j2 -C "$ASAN" musproxy >"$WORK/logs/build-asan.log" 2>&1 ||
            die "build-asan failed: $WORK/logs/build-asan.log"
    fi
}

# Descriptors: every process started from here inherits the raised limit
# (start_bg sets the soft limit to the hard one). The proxy needs the most:
# every client connection, an upstream one per active client, and its own.
raise_nofile() {
    local need=$((CONNS + CONNS / 2 + 1024))
    if (($(ulimit -Hn) < need)); then
        ulimit -Hn "$need" 2>/dev/null || die "RLIMIT_NOFILE: need $need descriptors, the hard limit is $(ulimit -Hn) (run as root, or --quick)"
    fi
    ulimit -n "$(ulimit -Hn)"
    log "RLIMIT_NOFILE $(ulimit -n)"
}

# write_conf FILE MAXCONN TIMEOUTS [MUS_YAML] [POLICY_YAML]
write_conf() {
    local file=$1 maxconn=$2 timeouts=$3 mus=${4:-} policy=${5:-}
    cat >"$file" <<EOF
# written by tools/loadfault.sh
proxy:
  listen: [ "127.0.0.1:$PPORT" ]
  workers: auto
  clients: [127.0.0.0/8]
  max_connections: $maxconn
  timeouts: { $timeouts, shutdown: 2s }
  access_log: $ALOG
log_level: info
store: { path: "off" }
admin: { enabled: false }
mus:
  control_socket: $SOCK
$mus
$policy
EOF
}

ORIGIN_PID=
start_origin() {
    start_bg mp-origin "$REL/mp-origin --listen 127.0.0.1:$OPORT"
    ORIGIN_PID=$LAST_PID
    wait_port "$OPORT" "$ORIGIN_PID" || die "mp-origin did not start ($WORK/logs/mp-origin.out)"
}

# start_nginx: the origin of the conns scenario where nginx is installed
# (tools/setup.sh installs nginx-light): one worker, event-driven, so that
# 5 000 busy upstream connections measure the proxy rather than mp-origin's
# thread per connection. It serves /size/1024 with mp-origin's bytes.
start_nginx() {
    local d=$WORK/nginx
    mkdir -p "$d/www/size" "$d/tmp" "$d/logs"
    LC_ALL=C awk 'BEGIN {for (i = 0; i < 1024; i++) printf "%c", i % 251}' >"$d/www/size/1024"
    cat >"$d/nginx.conf" <<EOF
# written by tools/loadfault.sh
worker_processes 1;
worker_rlimit_nofile $(ulimit -Hn);
error_log $d/logs/error.log;
pid $d/nginx.pid;
daemon off;
events { worker_connections $((CONNS + 1024)); }
http {
    access_log off;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    default_type application/octet-stream;
    client_body_temp_path $d/tmp; proxy_temp_path $d/tmp; fastcgi_temp_path $d/tmp;
    uwsgi_temp_path $d/tmp; scgi_temp_path $d/tmp;
    server { listen 127.0.0.1:$OPORT backlog=4096; root $d/www; }
}
EOF
    start_bg nginx "nginx -p $d -c $d/nginx.conf"
    ORIGIN_PID=$LAST_PID
    wait_port "$OPORT" "$ORIGIN_PID" || die "nginx did not start ($WORK/logs/nginx.out)"
}

# start_proxy BINARY CONF NAME: starts musproxy, truncating its log and the access log.
PROXY_PID=
start_proxy() {
    local bin=$1 conf=$2 name=$3
    : >"$WORK/logs/$name.out"
    : >"$ALOG"
    "$bin" -t -c "$conf" >"$WORK/logs/$name.check" 2>&1 || die "configuration refused: $(cat "$WORK/logs/$name.check")"
    start_bg "$name" "$bin -c $conf"
    PROXY_PID=$LAST_PID
    wait_port "$PPORT" "$PROXY_PID" || die "musproxy did not start ($WORK/logs/$name.out)"
}

# client_start NAME ARGS...: mp-loadclient through the proxy in the background
# (CPID), key=value lines to $WORK/out/NAME.kv; client NAME ARGS...: the same, waited for.
CPID=
client_start() {
    local name=$1; shift
    "$REL/mp-loadclient" --proxy "127.0.0.1:$PPORT" "$@" >"$WORK/out/$name.kv" 2>"$WORK/out/$name.err" &
    CPID=$!
    CLIENT_PIDS+=("$CPID")
}
client() {
    client_start "$@"
    wait "$CPID"
}

# failures FILE: requests of a client that did not get a complete answer
failures() {
    local f=$1
    echo $(($(kv "$f" cut) + $(kv "$f" noresp) + $(kv "$f" timeouts) + $(kv "$f" bad) + $(kv "$f" connect_errors)))
}

# log_count PATTERN: access-log lines whose result/status field ($4) and URL ($7) match
log_count() { awk -v r="$1" -v u="$2" '$4 == r && $7 ~ u {n++} END {print n + 0}' "$ALOG"; }

stop_proxy() { stop_pid "$PROXY_PID"; PROXY_PID=; }

# ---------------------------------------------------------------- conns
scenario_conns() {
    ALOG=$WORK/logs/access-conns.log
    local n=$CONNS idle=$((CONNS / 2)) conf=$WORK/conf/conns.yaml
    log "conns: $n connections ($idle idle), ${CONNS_SECONDS} s"
    write_conf "$conf" $((n + 64)) "header: 10s, idle: 300s, connect: 5s, response: 60s"
    local origin=mp-origin
    if command -v nginx >/dev/null; then origin=nginx; start_nginx; else start_origin; fi
    start_proxy "$REL/musproxy" "$conf" musproxy-conns
    sleep 1
    local rss0 peak_open=0 o
    rss0=$(status_kb "$PROXY_PID" VmRSS)
    echo 5 >"/proc/$PROXY_PID/clear_refs"      # VmHWM from here
    local pcpu0 ocpu0 t0=$SECONDS
    pcpu0=$(cpu_ticks "$PROXY_PID") ocpu0=$(cpu_ticks "$ORIGIN_PID")
    client_start conns --url "http://127.0.0.1:$OPORT/size/1024" --conns "$n" --idle "$idle" \
        --duration "$CONNS_SECONDS" --verify --src 127.0.0.10-127.0.0.59 --timeout 60000
    local cpid=$CPID rss_load=0 r
    while kill -0 "$cpid" 2>/dev/null; do
        sleep 2
        o=$(open_conns); o=${o:-0}
        ((o > peak_open)) && peak_open=$o
        r=$(status_kb "$PROXY_PID" VmRSS); ((r > rss_load)) && rss_load=$r
    done
    wait "$cpid"
    local secs=$((SECONDS - t0)) pcpu ocpu
    pcpu=$(($(cpu_ticks "$PROXY_PID") - pcpu0)) ocpu=$(($(cpu_ticks "$ORIGIN_PID") - ocpu0))
    sleep 1
    local rss_after hwm_kb
    rss_after=$(status_kb "$PROXY_PID" VmRSS)
    hwm_kb=$(status_kb "$PROXY_PID" VmHWM)
    local open_after; open_after=$(open_conns)
    stop_proxy
    stop_pid "$ORIGIN_PID"
    local f=$WORK/out/conns.kv sent answered fails logged
    sent=$(kv "$f" sent) answered=$(kv "$f" answered) fails=$(failures "$f")
    logged=$(log_count TCP_MISS/200 /size/1024)
    # bound: the documented per-connection costs with room (idle < 8 KiB,
    # active: two 16 KiB buffers and the upstream side < 48 KiB) plus 32 MiB
    local bound=$((rss0 + idle * 8 + (n - idle) * 48 + 32768))
    WHY=()
    check "connections $(kv "$f" connections)/$n" eq "$(kv "$f" connections)" "$n"
    check "proxy saw $peak_open open" le "$n" "$peak_open"
    check "$fails failed requests" eq "$fails" 0
    check "answered $answered of $sent" eq "$answered" "$sent"
    check "only 200s" eq "$(kv "$f" status_200)" "$answered"
    check "idle held $(kv "$f" idle_ok)/$idle" eq "$(kv "$f" idle_ok)" "$idle"
    check "idle dropped $(kv "$f" idle_dropped)" eq "$(kv "$f" idle_dropped)" 0
    check "logged $logged of $answered" eq "$logged" "$answered"
    check "peak RSS $(mib "$hwm_kb") MiB > bound $(mib "$bound") MiB" le "$hwm_kb" "$bound"
    check "open after the run: $open_after" eq "${open_after:-x}" 0
    result conns $((${#WHY[@]} == 0)) \
        "$n connections ($idle idle, $((n - idle)) active ${CONNS_SECONDS} s), proxy saw $peak_open open; $answered/$sent answered ($(kv "$f" rate_per_s) req/s, p50 $(kv "$f" p50_ms) ms, p99 $(kv "$f" p99_ms) ms; CPU over ${secs} s: proxy $(cpu_pct "$pcpu" "$secs"), origin ($origin) $(cpu_pct "$ocpu" "$secs"), client $(awk -v c="$(kv "$f" cpu_s)" -v s="$secs" 'BEGIN {printf "%.0f%%", 100 * c / s}')), $fails failed, idle served at the end $(kv "$f" idle_ok)/$idle; RSS $(mib "$rss0") MiB before, $(mib "$hwm_kb") MiB peak ($(awk -v a="$hwm_kb" -v b="$rss0" -v n="$n" 'BEGIN {printf "%.1f", (a - b) / n}') KiB/conn), $(mib "$rss_after") MiB after${WHY:+; FAILED: ${WHY[*]}}"
}

# ---------------------------------------------------------------- slowloris
scenario_slowloris() {
    ALOG=$WORK/logs/access-slowloris.log
    local conf=$WORK/conf/slowloris.yaml url="http://127.0.0.1:$OPORT/size/1024"
    log "slowloris: $SLOW_CONNS slow connections, header timeout ${HEADER_TIMEOUT_S}s, normal traffic ${SLOW_SECONDS}s without and with"
    write_conf "$conf" $((SLOW_CONNS + 1000)) "header: ${HEADER_TIMEOUT_S}s, idle: 60s, connect: 5s, response: 60s"
    start_origin
    start_proxy "$REL/musproxy" "$conf" musproxy-slowloris
    client warm --url "$url" "${NORMAL[@]}" --duration 2
    client base --url "$url" "${NORMAL[@]}" --duration "$SLOW_SECONDS" --verify
    client_start slow --url "$url" --conns "$SLOW_CONNS" --slowloris \
        --drip 1000 --src 127.0.0.100-127.0.0.109 --duration $((SLOW_SECONDS + HEADER_TIMEOUT_S + 2))
    local spid=$CPID
    sleep $((HEADER_TIMEOUT_S / 2 + 1))     # the slow ones are open (and the first ones about to go)
    local open_mid; open_mid=$(open_conns)
    client with --url "$url" "${NORMAL[@]}" --duration "$SLOW_SECONDS" --verify
    wait "$spid"
    stop_proxy
    stop_pid "$ORIGIN_PID"
    local b=$WORK/out/base.kv w=$WORK/out/with.kv s=$WORK/out/slow.kv
    local tmo=$((HEADER_TIMEOUT_S * 1000)) logged408
    logged408=$(awk '$4 == "NONE_NONE/408" {n++} END {print n + 0}' "$ALOG")
    WHY=()
    check "slowloris closed $(kv "$s" slow_closed) < $SLOW_CONNS" le "$SLOW_CONNS" "$(kv "$s" slow_closed)"
    check "408 on $(kv "$s" slow_408) of $(kv "$s" slow_closed)" eq "$(kv "$s" slow_408)" "$(kv "$s" slow_closed)"
    check "closed as early as $(kv "$s" slow_close_ms_min) ms" le $((tmo - 250)) "$(kv "$s" slow_close_ms_min)"
    check "closed as late as $(kv "$s" slow_close_ms_max) ms" le "$(kv "$s" slow_close_ms_max)" $((tmo + 1500))
    check "one open $(kv "$s" slow_oldest_ms) ms at the end" le "$(kv "$s" slow_oldest_ms)" $((tmo + 1500))
    check "408 logged $logged408" le "$(kv "$s" slow_408)" "$logged408"
    check "$(failures "$b") + $(failures "$w") normal requests failed" eq $(($(failures "$b") + $(failures "$w"))) 0
    # "keeps its latency": p50 within 2x + 1 ms, p99 within 3x + 5 ms of the run without
    check "p50 $(kv "$w" p50_ms) vs $(kv "$b" p50_ms) ms" le "$(kv "$w" p50_ms)" "$(awk -v x="$(kv "$b" p50_ms)" 'BEGIN {print 2 * x + 1}')"
    check "p99 $(kv "$w" p99_ms) vs $(kv "$b" p99_ms) ms" le "$(kv "$w" p99_ms)" "$(awk -v x="$(kv "$b" p99_ms)" 'BEGIN {print 3 * x + 5}')"
    result slowloris $((${#WHY[@]} == 0)) \
        "$SLOW_CONNS slowloris (1 byte/s, replaced when closed; proxy had $open_mid open): $(kv "$s" slow_closed) closed after $(kv "$s" slow_close_ms_min)-$(kv "$s" slow_close_ms_max) ms (header ${HEADER_TIMEOUT_S} s), $(kv "$s" slow_408) with a 408 ($logged408 logged NONE_NONE/408); normal traffic (20 conns, 10 ms think, ${SLOW_SECONDS} s): p50/p99 $(kv "$b" p50_ms)/$(kv "$b" p99_ms) ms without, $(kv "$w" p50_ms)/$(kv "$w" p99_ms) ms with ($(kv "$b" answered) and $(kv "$w" answered) answered, $(($(failures "$b") + $(failures "$w"))) failed)${WHY:+; FAILED: ${WHY[*]}}"
}

# ---------------------------------------------------------------- origins
# The misbehaving origins are mp-origin endpoints: /hang (accepts, reads the
# request, never answers), /stall/N (head for 2N bytes, N bytes, silence),
# /reset (RST instead of an answer), /reset/N (N bytes, then RST).
scenario_origins() {
    ALOG=$WORK/logs/access-origins.log
    local conf=$WORK/conf/origins.yaml url="http://127.0.0.1:$OPORT/size/1024" wave k
    local -a kinds=(hang stall reset resetmid)
    declare -A path=([hang]=/hang [stall]=/stall/65536 [reset]=/reset [resetmid]=/reset/65536)
    log "origins: $FAULT_WAVES waves of ${FAULT_CONNS}x hang, stall, reset, reset mid-body; response timeout ${RESPONSE_TIMEOUT_S}s"
    write_conf "$conf" 4000 "header: 10s, idle: 60s, connect: ${RESPONSE_TIMEOUT_S}s, response: ${RESPONSE_TIMEOUT_S}s"
    start_origin
    start_proxy "$REL/musproxy" "$conf" musproxy-origins
    client warm --url "$url" "${NORMAL[@]}" --duration 2
    local span=$((FAULT_WAVES * (RESPONSE_TIMEOUT_S + 2) + 2))
    client_start normal --url "$url" "${NORMAL[@]}" --duration "$span" --verify
    local npid=$CPID pids=()
    sleep 1
    for ((wave = 1; wave <= FAULT_WAVES; wave++)); do
        pids=()
        for k in "${kinds[@]}"; do
            client_start "$k-$wave" --url "http://127.0.0.1:$OPORT${path[$k]}" --conns "$FAULT_CONNS" \
                --once --timeout $(((RESPONSE_TIMEOUT_S + 5) * 1000)) --src 127.0.0.20-127.0.0.29
            pids+=("$CPID")
        done
        wait "${pids[@]}"
        sleep 1
    done
    wait "$npid"
    sleep 1
    local open_after; open_after=$(open_conns)
    stop_proxy
    stop_pid "$ORIGIN_PID"
    declare -A st=() an=() cu=() fl=()
    for k in "${kinds[@]}"; do
        st[$k]="" an[$k]=0 cu[$k]=0 fl[$k]=0
        for ((wave = 1; wave <= FAULT_WAVES; wave++)); do
            local f=$WORK/out/$k-$wave.kv
            an[$k]=$((an[$k] + $(kv "$f" answered)))
            cu[$k]=$((cu[$k] + $(kv "$f" cut)))
            fl[$k]=$((fl[$k] + $(kv "$f" noresp) + $(kv "$f" timeouts) + $(kv "$f" bad)))
            st[$k]="${st[$k]} $(grep -o '^status_[0-9]*=[0-9]*' "$f" | tr '\n' ' ')"
        done
    done
    local total=$((FAULT_CONNS * FAULT_WAVES)) n=$WORK/out/normal.kv
    local l_hang l_stall l_reset l_resetmid
    l_hang=$(log_count TCP_MISS/504 '/hang$')
    l_stall=$(log_count TCP_MISS_ABORTED/200 '/stall/')
    l_reset=$(log_count TCP_MISS/502 '/reset$')
    l_resetmid=$(log_count TCP_MISS_ABORTED/200 '/reset/')
    local hang_ms stall_ms
    hang_ms=$(kv "$WORK/out/hang-1.kv" p50_ms) stall_ms=$(kv "$WORK/out/stall-1.kv" fail_ms_p50)
    WHY=()
    check "hang: ${an[hang]}/$total answered, ${st[hang]}" eq "$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^status_504=/) {split($i, a, "="); s += a[2]}} END {print s + 0}' <<<"${st[hang]}")" "$total"
    check "hang logged 504 $l_hang" eq "$l_hang" "$total"
    check "hang answered after $hang_ms ms" le $((RESPONSE_TIMEOUT_S * 1000)) "$hang_ms"
    check "stall cut ${cu[stall]}/$total" eq "${cu[stall]}" "$total"
    check "stall logged aborted $l_stall" eq "$l_stall" "$total"
    check "stall cut after $stall_ms ms" le $((RESPONSE_TIMEOUT_S * 1000)) "$stall_ms"
    check "reset: ${st[reset]}" eq "$(awk '{for (i = 1; i <= NF; i++) if ($i ~ /^status_502=/) {split($i, a, "="); s += a[2]}} END {print s + 0}' <<<"${st[reset]}")" "$total"
    check "reset logged 502 $l_reset" eq "$l_reset" "$total"
    check "reset mid-body cut ${cu[resetmid]}/$total" eq "${cu[resetmid]}" "$total"
    check "reset mid-body logged aborted $l_resetmid" eq "$l_resetmid" "$total"
    check "other failures ${fl[hang]} ${fl[stall]} ${fl[reset]} ${fl[resetmid]}" eq $((fl[hang] + fl[stall] + fl[reset] + fl[resetmid])) 0
    check "normal traffic: $(failures "$n") failed" eq "$(failures "$n")" 0
    check "normal traffic waited up to $(kv "$n" max_ms) ms" le "$(kv "$n" max_ms)" 1000
    check "open after the run: $open_after" eq "${open_after:-x}" 0
    # on a failure, what the log says about each endpoint (result/status by path)
    ((${#WHY[@]} == 0)) || WHY+=("log: $(awk '{split($7, u, "/"); n[$4 " /" u[4]]++} END {for (k in n) printf "%s=%d, ", k, n[k]}' "$ALOG")")
    result origins $((${#WHY[@]} == 0)) \
        "$total requests to each misbehaving origin ($FAULT_WAVES waves of $FAULT_CONNS at once, response timeout ${RESPONSE_TIMEOUT_S} s): never answers -> 504 after $hang_ms ms (${st[hang]# }), $l_hang logged TCP_MISS/504; stalls mid-body -> cut after $stall_ms ms (${cu[stall]} cut), $l_stall logged TCP_MISS_ABORTED/200; resets -> 502 ($l_reset logged TCP_MISS/502); resets mid-body -> cut (${cu[resetmid]}), $l_resetmid logged TCP_MISS_ABORTED/200; normal traffic beside them: $(kv "$n" answered) answered, $(failures "$n") failed, p50/p99/max $(kv "$n" p50_ms)/$(kv "$n" p99_ms)/$(kv "$n" max_ms) ms${WHY:+; FAILED: ${WHY[*]}}"
}

# ---------------------------------------------------------------- headend
make_certs() {
    local d=$WORK/pki
    mkdir -p "$d"
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$d/server.ext"
    if ! { openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/ca.key" \
               -out "$d/ca.pem" -days 2 -subj "/CN=loadfault CA" -addext "basicConstraints=critical,CA:TRUE" \
               -addext "keyUsage=critical,keyCertSign,cRLSign" &&
           openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$d/server.key" \
               -out "$d/server.csr" -subj "/CN=127.0.0.1" &&
           openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
               -out "$d/server.pem" -days 2 -extfile "$d/server.ext"; } >"$WORK/logs/openssl.log" 2>&1; then
        die "openssl failed: $WORK/logs/openssl.log"
    fi
}

# sessions FILE N: alice (127.0.0.2), bob (127.0.0.3), a machine tunnel
# (127.0.0.5) and N other users in 10.200.0.0/16; 127.0.0.4 stays unmapped.
write_sessions() {
    local file=$1 n=$2
    {
        printf '{"sid":"s-alice","ips":["127.0.0.2"],"id":{"type":"user","name":"alice","domain":"CORP"},"groups":["eng"],"started":1763800000}\n'
        printf '{"sid":"s-bob","ips":["127.0.0.3"],"id":{"type":"user","name":"bob","domain":"CORP"},"groups":["sales"],"started":1763800000}\n'
        printf '{"sid":"s-laptop","ips":["127.0.0.5"],"id":{"type":"machine","name":"LAPTOP-7$","domain":"CORP"},"groups":[],"started":1763800000}\n'
        awk -v n="$n" 'BEGIN {for (i = 0; i < n; i++)
            printf "{\"sid\":\"s-%d\",\"ips\":[\"10.200.%d.%d\"],\"id\":{\"type\":\"user\",\"name\":\"user%d\",\"domain\":\"CORP\"},\"groups\":[],\"started\":1763800000}\n", i, int(i / 250), i % 250 + 1, i}'
    } >"$file"
}

HEADEND_PID=
start_headend() {
    start_bg mus-headend "$REL/mus-headend --cert $WORK/pki/server.pem --key $WORK/pki/server.key --password-file $WORK/conf/mus.secret --listen 127.0.0.1:$HPORT --sessions $WORK/conf/sessions.jsonl --server-id loadfault"
    HEADEND_PID=$LAST_PID
}

# kill_headend SIG: the headend goes down (SIGTERM: an orderly exit; SIGKILL: a crash)
kill_headend() {
    kill "-$1" -- "-$HEADEND_PID" 2>/dev/null
    wait "$HEADEND_PID" 2>/dev/null
    stop_pid "$HEADEND_PID"
    HEADEND_PID=
}

scenario_headend() {
    ALOG=$WORK/logs/access-headend.log
    local conf=$WORK/conf/headend.yaml url="http://127.0.0.1:$OPORT/size/512"
    log "headend: up 1 s / down 1 s for ${FLAP_SECONDS}s, $FLAP_SESSIONS + 3 sessions"
    make_certs
    echo "loadfault shared secret $$" >"$WORK/conf/mus.secret"
    chmod 600 "$WORK/conf/mus.secret"
    write_sessions "$WORK/conf/sessions.jsonl" "$FLAP_SESSIONS"
    local expected=$((FLAP_SESSIONS + 3))
    write_conf "$conf" 4000 "header: 10s, idle: 60s, connect: 5s, response: 60s" \
"  reconnect_interval: 500ms
  grace: 60s
  headends:
    - name: lab
      addresses: [\"127.0.0.1:$HPORT\"]
      ca: $WORK/pki/ca.pem
      password_file: $WORK/conf/mus.secret" \
"identity_profiles:
  - { name: remote-users, location: remote }
  - { name: office, location: local }
access_policies:
  - { name: default, default: allow }"
    start_origin
    start_headend
    wait_port "$HPORT" "$HEADEND_PID" || die "mus-headend did not start ($WORK/logs/mus-headend.out)"
    start_proxy "$REL/musproxy" "$conf" musproxy-headend
    local i
    for ((i = 0; i < 100; i++)); do
        musctl_ status 2>/dev/null | grep -q "^Headend lab: established" && break
        sleep 0.1
    done
    ((i < 100)) || die "the headend session did not establish"
    # traffic from alice, bob, the unmapped address and the machine, all along
    client_start flap --url "$url" --conns 8 --think 20 --src 127.0.0.2-127.0.0.5 \
        --duration $((FLAP_SECONDS + 2)) --verify
    local cpid=$CPID t rss=() traces=0 bad_traces=0 sig=TERM up=1
    for ((t = 0; t < FLAP_SECONDS; t++)); do
        if ((up)); then
            kill_headend "$sig"
            [[ $sig == TERM ]] && sig=KILL || sig=TERM
            up=0
        else
            start_headend
            up=1
        fi
        # the decision for alice, as musctl trace gives it, whatever the headend does
        traces=$((traces + 1))
        musctl_ trace --ip 127.0.0.2 --url "$url" 2>/dev/null | grep -q '^Identity: *alice (user' ||
            bad_traces=$((bad_traces + 1))
        rss+=("$(status_kb "$PROXY_PID" VmRSS)")
        sleep 1
    done
    ((up)) || start_headend
    sleep 1.5
    wait "$cpid"
    local st; st=$(musctl_ status 2>/dev/null)
    local reconnects entries snapshots
    reconnects=$(awk '/reconnects:/ {print $5; exit}' <<<"$st")
    snapshots=$(awk '/reconnects:/ {print $7; exit}' <<<"$st")
    entries=$(awk '/^  entries:/ {print $2; exit}' <<<"$st")
    local rss_warm=${rss[3]:-0} rss_end=${rss[-1]:-0}
    stop_proxy
    kill_headend TERM
    stop_pid "$ORIGIN_PID"
    # every logged request: the user expected for its source address
    local f=$WORK/out/flap.kv check_log
    check_log=$(awk '
        BEGIN {want["127.0.0.2"] = "alice"; want["127.0.0.3"] = "bob"; want["127.0.0.4"] = "-"; want["127.0.0.5"] = "LAPTOP-7$"}
        $7 ~ /\/size\/512$/ {n[$3]++; if ($8 != want[$3]) {bad++; if (!(($3, $8) in seen)) {seen[$3, $8]; ex = ex " " $3 "=" $8}}}
        END {printf "%d %d %d %d %d%s\n", n["127.0.0.2"], n["127.0.0.3"], n["127.0.0.4"], n["127.0.0.5"], bad, ex}' "$ALOG")
    read -r n_alice n_bob n_anon n_machine n_wrong wrong_ex <<<"$check_log"
    local growth=$((rss_end - rss_warm))
    WHY=()
    check "$n_wrong wrong or missing users in the log:$wrong_ex" eq "$n_wrong" 0
    check "logged $((n_alice + n_bob + n_anon + n_machine)) of $(kv "$f" answered)" eq $((n_alice + n_bob + n_anon + n_machine)) "$(kv "$f" answered)"
    check "$(failures "$f") requests failed" eq "$(failures "$f")" 0
    check "$bad_traces of $traces traces without alice" eq "$bad_traces" 0
    check "map has $entries entries, expected $expected" eq "$entries" "$expected"
    check "only $reconnects reconnects" le $((FLAP_SECONDS / 2 - 2)) "${reconnects:-0}"
    check "RSS grew $growth KiB after warm-up" le "$growth" 2048
    result headend $((${#WHY[@]} == 0)) \
        "headend up 1 s / down 1 s (SIGTERM and SIGKILL in turn) for ${FLAP_SECONDS} s: $reconnects reconnects, $snapshots snapshots of $expected sessions; $(kv "$f" answered) requests answered ($(failures "$f") failed): alice $n_alice, bob $n_bob, machine $n_machine, unmapped $n_anon, $n_wrong with a wrong or missing user; $traces musctl traces, $bad_traces without alice; map $entries entries at the end; RSS $(mib "$rss_warm") MiB after warm-up, $(mib "$rss_end") MiB at the end${WHY:+; FAILED: ${WHY[*]}}"
}

# ---------------------------------------------------------------- sighup
# hup_storm BINARY NAME: SIGHUP every 100 ms for HUP_SECONDS under load,
# alternating two configurations (a timeout and 48 000 policy domains
# differ). The load: 100 active connections (5 ms between requests) and
# 200 idle ones opened one by one through the storm (so their only request
# ran under many different configurations), all kept until the end. Sets H_* with what it saw; the kv is out/NAME.kv.
hup_storm() {
    local bin=$1 name=$2 conf=$WORK/conf/sighup.yaml url="http://127.0.0.1:$OPORT/size/2048" v c
    ALOG=$WORK/logs/access-$name.log
    for v in a b; do
        write_conf "$WORK/conf/sighup-$v.yaml" 4000 \
            "header: 10s, idle: $([[ $v == a ]] && echo 300s || echo 301s), connect: 5s, response: 30s" "" \
"identity_profiles:
  - { name: office, location: local }
access_policies:
  - { name: office, profiles: [office], categories: { $(for c in $(seq 0 11); do printf 'big%d: block, ' "$c"; done)monitored: monitor }, default: allow }
  - { name: default, default: allow }"
        {
            echo "custom_categories:"
            echo "  - { name: monitored, url_prefixes: [\"http://127.0.0.1:$OPORT/size/\"] }"
            awk -v v="$v" 'BEGIN {for (c = 0; c < 12; c++) {printf "  - name: big%d\n    domains: [", c
                for (i = 0; i < 4000; i++) printf "%s%s%d-%d.invalid", (i ? ", " : ""), v, c, i; print "]"}}'
        } >>"$WORK/conf/sighup-$v.yaml"
    done
    cp "$WORK/conf/sighup-a.yaml" "$conf"
    start_origin
    start_proxy "$bin" "$conf" "$name"
    client warm --url "$url" --conns 10 --duration 2
    local n=$((HUP_SECONDS * 10)) i
    H_RSS0=$(status_kb "$PROXY_PID" VmRSS)
    echo 5 >"/proc/$PROXY_PID/clear_refs"      # VmHWM from here
    client_start "$name" --url "$url" --conns 300 --idle 200 --think 5 --duration $((HUP_SECONDS + 2)) \
        --idle-ramp $((HUP_SECONDS * 1000 / 200)) --verify
    local cpid=$CPID
    sleep 1
    H_SENT=0 H_RSS_MID=0
    for ((i = 0; i < n; i++)); do
        cp "$WORK/conf/sighup-$([[ $((i % 2)) == 0 ]] && echo b || echo a).yaml" "$conf.tmp" && mv "$conf.tmp" "$conf"
        kill -HUP "$PROXY_PID" && H_SENT=$((H_SENT + 1))
        ((i == n / 2)) && H_RSS_MID=$(status_kb "$PROXY_PID" VmRSS)
        sleep 0.1
    done
    H_RSS_END=$(status_kb "$PROXY_PID" VmRSS)
    H_HWM=$(status_kb "$PROXY_PID" VmHWM)
    wait "$cpid"
    kill -TERM "$PROXY_PID"
    H_RC=0
    wait "$PROXY_PID" || H_RC=$?
    stop_pid "$PROXY_PID"
    PROXY_PID=
    stop_pid "$ORIGIN_PID"
    local out=$WORK/logs/$name.out
    H_RELOADED=$(grep -c 'configuration reloaded from' "$out")
    H_REJECTED=$(grep -c 'reload rejected' "$out")
    H_SAN=$(grep -cE '(Address|Leak|Undefined)Sanitizer|runtime error:' "$out")
    H_LOGGED=$(log_count TCP_MISS/200 /size/2048)
}

# hup_checks NAME: the conditions both runs share (into WHY)
hup_checks() {
    local f=$WORK/out/$1.kv
    check "$1: $(failures "$f") requests failed" eq "$(failures "$f")" 0
    check "$1: answered $(kv "$f" answered) of $(kv "$f" sent)" eq "$(kv "$f" answered)" "$(kv "$f" sent)"
    check "$1: $(kv "$f" closed_by_proxy) connections closed by the proxy" eq "$(kv "$f" closed_by_proxy)" 0
    check "$1: idle kept $(kv "$f" idle_ok)/200" eq "$(kv "$f" idle_ok)" 200
    check "$1: $H_RELOADED reloads applied" le 1 "$H_RELOADED"
    check "$1: $H_REJECTED reloads rejected" eq "$H_REJECTED" 0
    check "$1: exit status $H_RC" eq "$H_RC" 0
    check "$1: logged $H_LOGGED" le "$(kv "$f" answered)" "$H_LOGGED"
}

scenario_sighup() {
    log "sighup: SIGHUP every 100 ms for ${HUP_SECONDS}s under load, release build (RSS) then ASan+UBSan (sanitizers)"
    WHY=()
    hup_storm "$REL/musproxy" hup-release
    hup_checks hup-release
    local rel_figs rel_growth=$((H_HWM - H_RSS0)) f=$WORK/out/hup-release.kv
    # flat: 300 connections and the configurations being swapped (one
    # generation of this one is ~2.5 MiB; one kept per reload was +200 MiB)
    check "release: peak RSS $(mib "$rel_growth") MiB above the start" le "$rel_growth" 32768
    rel_figs="release: $H_SENT SIGHUPs, $H_RELOADED reloads applied, $H_REJECTED rejected; $(kv "$f" answered)/$(kv "$f" sent) answered, $(failures "$f") failed, $(kv "$f" closed_by_proxy) closed by the proxy, idle served at the end $(kv "$f" idle_ok)/200; RSS $(mib "$H_RSS0") / $(mib "$H_RSS_MID") / $(mib "$H_RSS_END") MiB at start / half-way / end, peak $(mib "$H_HWM") MiB"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0
    export LSAN_OPTIONS="suppressions=$REPO_DIR/tests/lsan.supp:print_suppressions=0"
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=0
    hup_storm "$ASAN/musproxy" hup-asan
    unset ASAN_OPTIONS LSAN_OPTIONS UBSAN_OPTIONS
    hup_checks hup-asan
    check "asan: $H_SAN sanitizer reports (see $WORK/logs/hup-asan.out)" eq "$H_SAN" 0
    f=$WORK/out/hup-asan.kv
    result sighup $((${#WHY[@]} == 0)) \
        "SIGHUP every 100 ms for ${HUP_SECONDS} s, two configurations in turn (48 000 policy domains each; signals during a reload coalesce), 100 active + 200 idle connections (opened one by one during the storm); $rel_figs. ASan+UBSan: $H_SENT SIGHUPs, $H_RELOADED reloads applied, $(kv "$f" answered)/$(kv "$f" sent) answered, $(failures "$f") failed, $(kv "$f" closed_by_proxy) closed by the proxy, idle served $(kv "$f" idle_ok)/200, $H_SAN sanitizer reports, LeakSanitizer at exit: $( ((H_SAN == 0)) && echo empty || echo 'see log'), exit $H_RC${WHY:+; FAILED: ${WHY[*]}}"
}

# ---------------------------------------------------------------- main
mkdir -p "$WORK"/{conf,logs,run,out,tmp}
need_ports_free "$PPORT" "$OPORT" "$HPORT"
build
raise_nofile
log "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for s in "${SCENARIOS[@]}"; do
    LO0=$(listen_overflows)
    "scenario_$s"
    log "load average $(cut -d' ' -f1-3 /proc/loadavg)"
done
{
    printf '# tools/loadfault.sh%s, %s, %s, %s cores, load average at the end %s\n\n' \
        "$( ((QUICK)) && echo ' --quick')" "$(date -u '+%Y-%m-%d %H:%M UTC')" \
        "$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null)" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
    printf '| scenario | result | measured |\n|---|---|---|\n'
    for r in "${RESULTS[@]}"; do
        IFS='|' read -r a b c <<<"$r"
        printf '| %s | %s | %s |\n' "$a" "$b" "$c"
    done
} >"$WORK/summary.md"
echo
cat "$WORK/summary.md"
((FAILED == 0))
