#!/usr/bin/env bash
# Forward-proxy benchmark: runs the same workloads directly against the origin
# (the ceiling) and through every proxy listed in proxies.conf (or given with
# -p), interleaved round by round, and writes raw figures plus a summary with
# medians and proxy/direct ratios taken from the same round.
#
# Loopback only: origin nginx on 127.0.0.1:$ORIGIN_PORT, proxies on 127.0.0.1.
# See README.md for the workloads and how to add a proxy.
# musproxy's copy of /work/shared/bench/proxies.sh (see tools/bench/README.md
# for what changed); tools/bench.sh is the usual entry point.
set -uo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
source "$BENCH_DIR/lib.sh"

usage() {
    cat <<EOF
Usage: $0 [options] [NAME...]
  NAME...         only these proxies from the list (default: all); 'direct' is always run
  -r N            rounds (default 3; the summary reports medians over rounds)
  -d SECS         duration of each wrk run (default 10)
  -c N            wrk connections for /1k and /64k (default 50)
  -C N            wrk connections for /1m (default 10)
  -w LIST         workloads, comma separated (default: $DEFAULT_WORKLOADS)
                  ka1k close1k ka64k ka1m connect connseq idle
  -n N            idle connections for the idle workload (default 2000)
  -s N            sequential CONNECT+GET count for connseq (default 2000)
  -f FILE         proxy list (default: $BENCH_DIR/proxies.conf)
  -p 'SPEC'       extra proxy, same syntax as a proxies.conf line (repeatable)
  -P OFFSET       add OFFSET to every proxy port from the list (port clashes)
  -o DIR          output directory (default: $REPO_DIR/var/bench/<timestamp>)
  -x              only validate the proxies (correct bytes, CONNECT), no load
Environment: ORIGIN_PORT (18080), WORK (/tmp/musproxy-bench), WRK_CPUS / SERVER_CPUS
(taskset CPU lists for clients / servers; unset = no pinning), WARMUP (2 s),
BUILD (musproxy build dir for {BUILD}, default $REPO_DIR/build-release),
MUSPROXY_ACCESS_LOG (on|off, default on: musproxy logs every request).
EOF
}

DEFAULT_WORKLOADS=ka1k,close1k,ka64k,ka1m,connect,connseq,idle
ROUNDS=3 DUR=10 CONNS=50 CONNS_1M=10 WORKLOADS=$DEFAULT_WORKLOADS IDLE_N=2000 SEQ_N=2000
LIST=$BENCH_DIR/proxies.conf PORT_OFFSET=0 OUT='' VALIDATE_ONLY=0 EXTRA=()
WARMUP=${WARMUP:-2}
# 1 GiB: sustained tunnel throughput. A 100 MiB download lasts ~35 ms here,
# so TCP ramp-up and scheduler placement weigh in it (env CONNECT_FILE=100m).
CONNECT_FILE=${CONNECT_FILE:-1g} CONNECT_REPS=3

while getopts "r:d:c:C:w:n:s:f:p:P:o:xh" opt; do
    case $opt in
        r) ROUNDS=$OPTARG ;; d) DUR=$OPTARG ;; c) CONNS=$OPTARG ;; C) CONNS_1M=$OPTARG ;;
        w) WORKLOADS=$OPTARG ;; n) IDLE_N=$OPTARG ;; s) SEQ_N=$OPTARG ;; f) LIST=$OPTARG ;;
        p) EXTRA+=("$OPTARG") ;; P) PORT_OFFSET=$OPTARG ;; o) OUT=$OPTARG ;; x) VALIDATE_ONLY=1 ;;
        h) usage; exit 0 ;; *) usage; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
ONLY=("$@")

for t in wrk curl nginx python3 ss taskset; do command -v "$t" >/dev/null || die "missing $t (run setup.sh)"; done

# ---------------------------------------------------------------- proxy list
declare -A P_PORT P_CMD P_VER P_CONNECT
NAMES=()
add_spec() {
    local line=$1 name port cmd ver
    line=${line%%#*}                       # (a # inside a command is not supported)
    [[ -z ${line//[[:space:]]/} ]] && return 0
    # the last field (version command) keeps any further '|' characters
    IFS='|' read -r name port cmd ver <<<"$line"
    trim() { sed 's/^[[:space:]]*//; s/[[:space:]]*$//' <<<"$1"; }
    name=$(trim "$name"); port=$(trim "$port"); cmd=$(trim "$cmd"); ver=$(trim "$ver")
    [[ -n $name && $port =~ ^[0-9]+$ && -n $cmd ]] || die "bad proxy spec: $1"
    [[ $name == direct ]] && die "'direct' is reserved"
    if ((${#ONLY[@]})); then
        local sel=0 o; for o in "${ONLY[@]}"; do [[ $o == "$name" ]] && sel=1; done
        ((sel)) || return 0
    fi
    P_PORT[$name]=$((port + PORT_OFFSET)); P_CMD[$name]=$cmd; P_VER[$name]=$ver
    NAMES+=("$name")
}
while IFS= read -r l; do add_spec "$l"; done < "$LIST"
for l in "${EXTRA[@]}"; do add_spec "$l"; done
((${#NAMES[@]})) || log "no proxies selected: measuring direct only"

has_wl() { [[ ",$WORKLOADS," == *",$1,"* ]]; }

# ---------------------------------------------------------------- output
TS=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$REPO_DIR/var/bench/$TS}
mkdir -p "$OUT"
RAW=$OUT/raw.tsv
printf 'round\ttarget\tworkload\tmetric\tvalue\n' > "$RAW"
rec() { printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" >> "$RAW"; }
calc() { awk "BEGIN { printf \"%.6g\", $1 }"; }

# Cleanup must survive a dead stdout/stderr pipe (e.g. `| tail` killed first).
cleanup() { trap '' PIPE; stop_all 2>/dev/null; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- proxy control
CUR_PID=
start_proxy() {
    local name=$1 port=${P_PORT[$1]}
    ss -Hltn "sport = :$port" | grep -q . && { log "$name: port $port already in use"; return 1; }
    render_conf "$name" "$port"
    start_bg "$name" "$(expand_cmd "${P_CMD[$name]}" "$port")"
    CUR_PID=$LAST_PID
    if ! wait_port "$port" "$CUR_PID"; then
        log "$name did not start; tail of $WORK/logs/$name.out:"; tail -5 "$WORK/logs/$name.out" >&2
        stop_pid "$CUR_PID"; CUR_PID=; return 1
    fi
    local sid; sid=$(awk '{print $6}' "/proc/$CUR_PID/stat")
    [[ $sid == "$CUR_PID" ]] || log "warning: $name pid $CUR_PID is not its session leader (sid $sid)"
    # ready = serves a proxied GET (give up after ~20 s, not 50 x curl's timeout)
    local t_end=$((SECONDS + 20))
    while ((SECONDS < t_end)); do
        [[ $(GET_TIMEOUT=3 proxied_get "$port" 1k | cut -d' ' -f1) == 200 ]] && return 0
        sleep 0.2
    done
    log "$name listens but does not proxy"; stop_pid "$CUR_PID"; CUR_PID=; return 1
}
stop_proxy() { stop_pid "$CUR_PID"; CUR_PID=; }

validate() {   # validate NAME -> 0 if plain proxying is byte-exact; sets P_CONNECT
    local name=$1 port=${P_PORT[$1]} f got want ok=0
    start_proxy "$name" || return 1
    for f in 1k 64k 1m; do
        got=$(proxied_get "$port" "$f"); want="200 $(file_size "$f") $(file_sha "$f")"
        if [[ $got == "$want" ]]; then echo "$name plain $f ok" >> "$OUT/validation.txt"
        else echo "$name plain $f FAIL got=[$got] want=[$want]" >> "$OUT/validation.txt"; ok=1; fi
    done
    # client-side keep-alive: does a second request reuse the first connection?
    local reuse
    reuse=$(curl -s -m 10 --noproxy '' -x "http://$HOST:$port" -o /dev/null -o /dev/null \
        -w '%{num_connects}\n' "http://$HOST:$ORIGIN_PORT/1k" "http://$HOST:$ORIGIN_PORT/1k" | tail -1)
    if [[ $reuse == 0 ]]; then echo "$name client keep-alive yes" >> "$OUT/validation.txt"
    else echo "$name client keep-alive NO (proxy closes the client connection after each response;" \
        "wrk then counts one socket read error per request)" >> "$OUT/validation.txt"; fi
    got=$(GET_TIMEOUT=5 proxied_get "$port" 1m -p); want="200 $(file_size 1m) $(file_sha 1m)"
    if [[ $got == "$want" ]]; then P_CONNECT[$name]=1; echo "$name CONNECT 1m ok" >> "$OUT/validation.txt"
    else P_CONNECT[$name]=0; echo "$name CONNECT 1m FAIL got=[$got] (CONNECT workloads skipped)" >> "$OUT/validation.txt"; fi
    stop_proxy
    return $ok
}

# ---------------------------------------------------------------- workloads
# Each run_* takes: ROUND TARGET PORT SID (SID = proxy session, empty for direct)

run_wrk() {   # run_wrk ROUND TARGET PORT SID WORKLOAD FILE CONNS CLOSE
    local r=$1 t=$2 port=$3 sid=$4 wl=$5 file=$6 conns=$7 close=$8
    local res=$WORK/tmp/wrk.out target c0=0 c1=0 o0 o1
    if [[ $t == direct ]]; then target=/$file; else target=http://$HOST:$ORIGIN_PORT/$file; fi
    rm -f "$res"
    [[ -n $sid ]] && { reset_hwm "$sid"; c0=$(cpu_ticks "$sid"); }
    o0=$(cpu_ticks "$ORIGIN_PID")
    # shellcheck disable=SC2046
    BENCH_TARGET=$target BENCH_HOST=$HOST:$ORIGIN_PORT BENCH_CLOSE=$close BENCH_OUT=$res \
        $(client_prefix) wrk -t1 -c"$conns" -d"${DUR}s" --latency -s "$BENCH_DIR/wrk/fwd.lua" \
        "http://$HOST:$port" >> "$OUT/wrk.log" 2>&1
    o1=$(cpu_ticks "$ORIGIN_PID")
    [[ -f $res ]] || { log "wrk produced no result ($t $wl)"; return 1; }
    declare -A m; local k v
    while read -r k v; do m[$k]=$v; done < "$res"
    local secs; secs=$(calc "${m[duration_us]} / 1e6")
    local n=${m[requests]}
    rec "$r" "$t" "$wl" req_s "$(calc "$n / $secs")"
    rec "$r" "$t" "$wl" mib_s "$(calc "${m[bytes]} / $secs / 1048576")"
    rec "$r" "$t" "$wl" p50_ms "$(calc "${m[lat_p50_us]} / 1000")"
    rec "$r" "$t" "$wl" p99_ms "$(calc "${m[lat_p99_us]} / 1000")"
    rec "$r" "$t" "$wl" p999_ms "$(calc "${m[lat_p999_us]} / 1000")"
    rec "$r" "$t" "$wl" non2xx "${m[err_status]}"
    rec "$r" "$t" "$wl" sock_errors "$((m[err_connect] + m[err_read] + m[err_write] + m[err_timeout]))"
    ((n > 0)) && rec "$r" "$t" "$wl" hdr_bytes_per_req "$(calc "${m[bytes]} / $n - $(file_size "$file")")"
    ((n > 0)) && rec "$r" "$t" "$wl" origin_cpu_us_per_req "$(calc "($o1 - $o0) * 1e6 / $HZ / $n")"
    if [[ -n $sid ]]; then
        c1=$(cpu_ticks "$sid")
        ((n > 0)) && rec "$r" "$t" "$wl" proxy_cpu_us_per_req "$(calc "($c1 - $c0) * 1e6 / $HZ / $n")"
        rec "$r" "$t" "$wl" proxy_cpu_pct "$(calc "($c1 - $c0) * 100 / $HZ / $secs")"
        rec "$r" "$t" "$wl" peak_rss_mib "$(calc "$(hwm_kb "$sid") / 1024")"
    fi
    log "  $t $wl: $(calc "$n / $secs") req/s, p99 $(calc "${m[lat_p99_us]} / 1000") ms, non2xx ${m[err_status]}"
}

run_connect() {   # CONNECT tunnel bulk throughput (direct: plain download)
    local r=$1 t=$2 port=$3 sid=$4 i line code size tt bytes=0 time=0 bad=0 c0=0 c1
    local -a px=()
    [[ $t != direct ]] && px=(-p -x "http://$HOST:$port")
    # the file back in the page cache first: memory reclaim (DAMON runs on
    # these machines) may have paged it out during the other workloads, and
    # whoever came first in the round would pay the disk reads
    cat "$WORK/www/$CONNECT_FILE" > /dev/null
    [[ -n $sid ]] && { reset_hwm "$sid"; c0=$(cpu_ticks "$sid"); }
    for ((i = 0; i < CONNECT_REPS; i++)); do
        # shellcheck disable=SC2046
        line=$($(client_prefix) curl -s -m 120 --noproxy '' "${px[@]}" -o /dev/null \
            -w '%{http_code} %{size_download} %{time_total}' "http://$HOST:$ORIGIN_PORT/$CONNECT_FILE")
        read -r code size tt <<<"$line"
        if [[ $code != 200 || $size != "$(file_size "$CONNECT_FILE")" ]]; then bad=$((bad + 1)); continue; fi
        bytes=$((bytes + size)); time=$(calc "$time + $tt")
    done
    rec "$r" "$t" connect errors "$bad"
    [[ $bytes -gt 0 ]] && rec "$r" "$t" connect mib_s "$(calc "$bytes / $time / 1048576")"
    if [[ -n $sid ]]; then
        c1=$(cpu_ticks "$sid")
        [[ $bytes -gt 0 ]] && rec "$r" "$t" connect proxy_cpu_us_per_mib "$(calc "($c1 - $c0) * 1e6 / $HZ / ($bytes / 1048576)")"
        rec "$r" "$t" connect peak_rss_mib "$(calc "$(hwm_kb "$sid") / 1024")"
    fi
    [[ $bytes -gt 0 ]] && log "  $t connect: $(calc "$bytes / $time / 1048576") MiB/s ($bad failed)"
}

run_connseq() {   # SEQ_N sequential new-tunnel CONNECT+GET /1k in one curl process
    local r=$1 t=$2 port=$3 sid=$4 cfg=$WORK/conf/seq-$SEQ_N.curl i t0 t1 c0=0 c1
    local -a px=()
    [[ $t != direct ]] && px=(-p -x "http://$HOST:$port")
    if [[ ! -f $cfg ]]; then
        for ((i = 1; i <= SEQ_N; i++)); do
            printf 'url = "http://%s:%s/1k?i=%d"\noutput = "/dev/null"\n' "$HOST" "$ORIGIN_PORT" "$i"
        done > "$cfg"
    fi
    [[ -n $sid ]] && { reset_hwm "$sid"; c0=$(cpu_ticks "$sid"); }
    t0=$(date +%s.%N)
    # "Connection: close" makes the origin end each response's connection, so
    # curl must open a new connection (a new CONNECT tunnel) for every URL.
    # shellcheck disable=SC2046
    $(client_prefix) curl -s -m 300 --noproxy '' "${px[@]}" -H 'Connection: close' \
        -w '%{http_code} %{size_download} %{num_connects}\n' -K "$cfg" > "$WORK/tmp/seq.out" 2>/dev/null
    t1=$(date +%s.%N)
    local ok conns
    ok=$(awk '$1==200 && $2==1024' "$WORK/tmp/seq.out" | wc -l)
    conns=$(awk '{s+=$3} END {print s+0}' "$WORK/tmp/seq.out")
    local el; el=$(calc "$t1 - $t0")
    rec "$r" "$t" connseq req_s "$(calc "$SEQ_N / $el")"
    rec "$r" "$t" connseq mean_ms "$(calc "$el * 1000 / $SEQ_N")"
    rec "$r" "$t" connseq errors "$((SEQ_N - ok))"
    rec "$r" "$t" connseq new_conns "$conns"
    if [[ -n $sid ]]; then
        c1=$(cpu_ticks "$sid")
        rec "$r" "$t" connseq proxy_cpu_us_per_req "$(calc "($c1 - $c0) * 1e6 / $HZ / $SEQ_N")"
        rec "$r" "$t" connseq peak_rss_mib "$(calc "$(hwm_kb "$sid") / 1024")"
    fi
    log "  $t connseq: $(calc "$SEQ_N / $el") req/s, $((SEQ_N - ok)) failed, $conns connections"
}

run_idle() {   # run_idle ROUND TARGET MODE (starts its own fresh server instance)
    local r=$1 t=$2 mode=$3 port sid res=$WORK/tmp/idle.out
    local -a extra=()
    if [[ $t == direct ]]; then
        stop_origin; start_origin          # fresh nginx (reference figure)
        port=$ORIGIN_PORT; sid=$ORIGIN_PID; extra=(--direct)
    else
        start_proxy "$t" || return 1
        port=${P_PORT[$t]}; sid=$CUR_PID
    fi
    # shellcheck disable=SC2046
    $(client_prefix) python3 "$BENCH_DIR/tools/idle_conns.py" --port "$port" --sid "$sid" \
        --n "$IDLE_N" --mode "$mode" --origin-port "$ORIGIN_PORT" "${extra[@]}" > "$res" 2>>"$OUT/idle.log"
    [[ $t != direct ]] && stop_proxy
    declare -A m; local k v
    while read -r k v; do m[$k]=$v; done < "$res"
    rec "$r" "$t" "idle_$mode" kb_per_conn "${m[kb_per_conn]:-nan}"
    rec "$r" "$t" "idle_$mode" opened "${m[opened]:-0}"
    rec "$r" "$t" "idle_$mode" still_open "${m[still_open]:-0}"
    rec "$r" "$t" "idle_$mode" failed "${m[failed]:-$IDLE_N}"
    rec "$r" "$t" "idle_$mode" rss_before_mib "$(calc "${m[rss_before_kb]:-0} / 1024")"
    rec "$r" "$t" "idle_$mode" rss_after_mib "$(calc "${m[rss_after_kb]:-0} / 1024")"
    [[ $mode == req ]] && rec "$r" "$t" "idle_$mode" not_keepalive "${m[not_keepalive]:-0}"
    log "  $t idle_$mode: ${m[kb_per_conn]:-?} KB/conn, ${m[still_open]:-?}/$IDLE_N still open"
}

# ---------------------------------------------------------------- main
prepare_work
{
    echo "date: $(date -Is)"; echo "host: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ {print $2" kB"}' /proc/meminfo)"
    echo "cpu: $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
    echo "args: rounds=$ROUNDS dur=${DUR}s conns=$CONNS conns_1m=$CONNS_1M idle_n=$IDLE_N seq_n=$SEQ_N connect_file=$CONNECT_FILE x$CONNECT_REPS workloads=$WORKLOADS"
    echo "pinning: WRK_CPUS=${WRK_CPUS:-none} SERVER_CPUS=${SERVER_CPUS:-none}"
    echo "musproxy: BUILD=$BUILD access_log=$MUSPROXY_ACCESS_LOG (squid: access_log none)"
    echo "start loadavg: $(cat /proc/loadavg)"
    echo "origin: 127.0.0.1:$ORIGIN_PORT $(nginx -v 2>&1)"
    echo "wrk: $(wrk -v 2>&1 | head -1)"
    echo "curl: $(curl -V | head -1)"
    for n in "${NAMES[@]}"; do
        echo "proxy $n: port ${P_PORT[$n]} cmd: ${P_CMD[$n]}"
        [[ -n ${P_VER[$n]} ]] && echo "  version: $(bash -c "$(expand_cmd "${P_VER[$n]}" "${P_PORT[$n]}")" 2>&1 | head -1)"
    done
} > "$OUT/meta.txt"
cat "$OUT/meta.txt" >&2

start_origin
log "origin nginx pid $ORIGIN_PID on $HOST:$ORIGIN_PORT"

: > "$OUT/validation.txt"
GOOD=()
for n in "${NAMES[@]}"; do
    if validate "$n"; then GOOD+=("$n"); else log "$n: validation failed, skipped (see $OUT/validation.txt)"; fi
done
cat "$OUT/validation.txt" >&2
((VALIDATE_ONLY)) && exit 0

TARGETS=(direct "${GOOD[@]}")
NT=${#TARGETS[@]}
LOAD_WL=()
for w in ka1k close1k ka64k ka1m connect connseq; do has_wl "$w" && LOAD_WL+=("$w"); done

if ((${#LOAD_WL[@]})); then
    for ((r = 1; r <= ROUNDS; r++)); do
        echo "round $r loadavg: $(cat /proc/loadavg)" >> "$OUT/meta.txt"
        for ((i = 0; i < NT; i++)); do
            t=${TARGETS[$(((i + r - 1) % NT))]}      # rotate the order each round
            log "round $r/$ROUNDS: $t"
            if [[ $t == direct ]]; then port=$ORIGIN_PORT; sid=
            else start_proxy "$t" || continue; port=${P_PORT[$t]}; sid=$CUR_PID; fi
            if ((WARMUP > 0)); then
                BENCH_TARGET=$([[ $t == direct ]] && echo /1k || echo "http://$HOST:$ORIGIN_PORT/1k") \
                BENCH_HOST=$HOST:$ORIGIN_PORT $(client_prefix) wrk -t1 -c"$CONNS" -d"${WARMUP}s" \
                    -s "$BENCH_DIR/wrk/fwd.lua" "http://$HOST:$port" > /dev/null 2>&1
            fi
            for w in "${LOAD_WL[@]}"; do
                echo "== round $r $t $w" >> "$OUT/wrk.log"
                case $w in
                    ka1k)    run_wrk "$r" "$t" "$port" "$sid" ka1k 1k "$CONNS" 0 ;;
                    close1k) run_wrk "$r" "$t" "$port" "$sid" close1k 1k "$CONNS" 1 ;;
                    ka64k)   run_wrk "$r" "$t" "$port" "$sid" ka64k 64k "$CONNS" 0 ;;
                    ka1m)    run_wrk "$r" "$t" "$port" "$sid" ka1m 1m "$CONNS_1M" 0 ;;
                    connect) [[ $t == direct || ${P_CONNECT[$t]} == 1 ]] && run_connect "$r" "$t" "$port" "$sid" ;;
                    connseq) [[ $t == direct || ${P_CONNECT[$t]} == 1 ]] && run_connseq "$r" "$t" "$port" "$sid" ;;
                esac
            done
            [[ $t != direct ]] && stop_proxy
        done
    done
fi

if has_wl idle; then
    for ((r = 1; r <= ROUNDS; r++)); do
        echo "idle round $r loadavg: $(cat /proc/loadavg)" >> "$OUT/meta.txt"
        for ((i = 0; i < NT; i++)); do
            t=${TARGETS[$(((i + r - 1) % NT))]}
            log "idle round $r/$ROUNDS: $t"
            run_idle "$r" "$t" bare
            run_idle "$r" "$t" req
        done
    done
fi

stop_origin
python3 "$BENCH_DIR/tools/summarize.py" "$RAW" "$OUT/meta.txt" "$OUT/validation.txt" > "$OUT/summary.md"
cat "$OUT/summary.md"
log "results in $OUT"
