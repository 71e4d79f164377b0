# shellcheck shell=bash
# Shared helpers for the forward-proxy benchmark. Sourced by proxies.sh.
# Everything listens on / connects to 127.0.0.1 only.
# Adapted for musproxy from the shared harness (/work/shared/bench): {BUILD}
# placeholder, @ACCESS_LOG@ rendering, per-run access log truncation, own WORK.

BENCH_DIR=${BENCH_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)}
REPO_DIR=${REPO_DIR:-$(cd "$BENCH_DIR/../.." && pwd)}
WORK=${WORK:-/tmp/musproxy-bench}        # scratch: rendered configs, logs, pids, data files
BUILD=${BUILD:-$REPO_DIR/build-release}  # musproxy build dir ({BUILD} in proxies.conf)
# musproxy access log in the benchmark: on (default, realistic: it is on in
# production) or off. squid's access log is off in conf/squid.conf.
MUSPROXY_ACCESS_LOG=${MUSPROXY_ACCESS_LOG:-on}
HOST=127.0.0.1                           # never change: loopback only
ORIGIN_PORT=${ORIGIN_PORT:-18080}
WRK_CPUS=${WRK_CPUS:-}                   # optional taskset CPU list for wrk/curl/python clients
SERVER_CPUS=${SERVER_CPUS:-}             # optional taskset CPU list for origin + proxies
HZ=$(getconf CLK_TCK)

STARTED_PIDS=()                          # every process group this run started

log() { printf '%s %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "FATAL: $*"; exit 1; }

client_prefix() { [[ -n $WRK_CPUS ]] && printf 'taskset -c %s ' "$WRK_CPUS"; }
server_prefix() { [[ -n $SERVER_CPUS ]] && printf 'taskset -c %s ' "$SERVER_CPUS"; }

# ---------------------------------------------------------------- scratch dir
prepare_work() {
    mkdir -p "$WORK"/{conf,logs,run,tmp/nginx-body,www}
    # squid/tinyproxy drop privileges (proxy / nobody) and must still write here.
    chmod 1777 "$WORK/logs" "$WORK/run" "$WORK/tmp"
    chmod 755 "$WORK" "$WORK/www"
    local f size
    for f in 1k:1024 64k:65536 1m:1048576 100m:104857600 1g:1073741824; do
        size=${f#*:}; f=${f%%:*}
        if [[ ! -f $WORK/www/$f || $(stat -c %s "$WORK/www/$f") != "$size" ]]; then
            head -c "$size" /dev/urandom > "$WORK/www/$f"
        fi
        chmod 644 "$WORK/www/$f"
    done
    # (1g, the CONNECT download, is checked by size: hashing it every run costs seconds)
    (cd "$WORK/www" && sha256sum 1k 64k 1m 100m > "$WORK/www.sha256")
}

file_size() { stat -c %s "$WORK/www/$1"; }
file_sha() { awk -v f="$1" '$2==f {print $1}' "$WORK/www.sha256"; }

# Render $BENCH_DIR/conf/<name>.* into $WORK/conf/ substituting @PORT@ @WORK@
# @ORIGIN_PORT@ and @ACCESS_LOG@ ($WORK/logs/<name>-access.log, or "off" when
# MUSPROXY_ACCESS_LOG=off). The access log of the previous run is deleted so
# that it cannot fill the disk over many rounds.
render_conf() {
    local name=$1 port=$2 t alog
    alog=$WORK/logs/$name-access.log
    rm -f "$alog"
    [[ $MUSPROXY_ACCESS_LOG == off ]] && alog=off
    for t in "$BENCH_DIR"/conf/"$name".*; do
        [[ -f $t ]] || continue
        sed -e "s|@PORT@|$port|g" -e "s|@WORK@|$WORK|g" -e "s|@ORIGIN_PORT@|$ORIGIN_PORT|g" \
            -e "s|@ACCESS_LOG@|$alog|g" "$t" > "$WORK/conf/$(basename "$t")"
    done
}

# Expand {PORT} {WORK} {CONF} {BENCH} {ORIGIN_PORT} {BUILD} in a proxy start command.
expand_cmd() {
    local cmd=$1 port=$2
    cmd=${cmd//\{BUILD\}/$BUILD}
    cmd=${cmd//\{PORT\}/$port}
    cmd=${cmd//\{WORK\}/$WORK}
    cmd=${cmd//\{CONF\}/$WORK/conf}
    cmd=${cmd//\{BENCH\}/$BENCH_DIR}
    cmd=${cmd//\{ORIGIN_PORT\}/$ORIGIN_PORT}
    printf '%s' "$cmd"
}

# ---------------------------------------------------------------- processes
# start_bg NAME CMD -> sets LAST_PID. The command must stay in the foreground.
# (Not meant for $(...): the process must be a child of this shell.)
# It runs in its own session (setsid without fork: PID == SID == PGID), so the
# whole tree it spawns can be found by session id and stopped by group id.
start_bg() {
    local name=$1 cmd=$2
    # shellcheck disable=SC2046
    setsid $(server_prefix) bash -c "ulimit -n \$(ulimit -Hn); exec $cmd" \
        </dev/null >>"$WORK/logs/$name.out" 2>&1 &
    LAST_PID=$!
    STARTED_PIDS+=("$LAST_PID")
}

proc_state() { sed -n 's/^[0-9]* (.*) \([A-Z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null; }
alive() { local s; s=$(proc_state "$1"); [[ -n $s && $s != Z ]]; }

# stop_pid PID: SIGTERM to its process group, SIGKILL after 10 s, then reap.
stop_pid() {
    local pid=$1 i
    [[ -n $pid ]] || return 0
    if alive "$pid"; then
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
        for ((i = 0; i < 100; i++)); do alive "$pid" || break; sleep 0.1; done
        if alive "$pid"; then
            log "pid $pid ignored SIGTERM; SIGKILL"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null
        fi
    fi
    # leftover members of its process group (helpers) that outlived the leader
    local p
    for p in $(ps -o pid= -g "$pid" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    wait "$pid" 2>/dev/null
    local keep=() x
    for x in "${STARTED_PIDS[@]}"; do [[ $x == "$pid" ]] || keep+=("$x"); done
    STARTED_PIDS=("${keep[@]}")
    return 0
}

stop_all() {
    local p
    for p in "${STARTED_PIDS[@]}"; do stop_pid "$p"; done
}

# PIDs of all processes in session SID (threads are accounted in their process).
sess_pids() { ps -o pid= --sid "$1" 2>/dev/null | tr -s ' \n' ' '; }

# Sum of utime+stime (clock ticks) over the session.
cpu_ticks() {
    local p t=0 s
    for p in $(sess_pids "$1"); do
        s=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null) || continue
        # after "pid (comm) ": $1=state ... $12=utime $13=stime
        t=$((t + $(awk '{print $12 + $13}' <<<"$s")))
    done
    echo "$t"
}

_status_sum() {   # _status_sum SID FIELD -> kB summed over the session
    local p t=0 v
    for p in $(sess_pids "$1"); do
        v=$(awk -v k="$2:" '$1==k {print $2}' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
rss_kb() { _status_sum "$1" VmRSS; }
hwm_kb() { _status_sum "$1" VmHWM; }
# Reset the peak-RSS high-water mark (VmHWM) of every process in the session.
reset_hwm() {
    local p
    for p in $(sess_pids "$1"); do echo 5 > "/proc/$p/clear_refs" 2>/dev/null; done
}

# ---------------------------------------------------------------- readiness
# wait_port PORT PID: until PORT accepts connections (or PID dies / 30 s).
wait_port() {
    local port=$1 pid=$2 i
    for ((i = 0; i < 300; i++)); do
        if ss -Hltn "sport = :$port" | grep -q .; then return 0; fi
        alive "$pid" || return 1
        sleep 0.1
    done
    return 1
}

# proxied_get PORT PATH [extra curl args...] -> "code size sha256"
proxied_get() {
    local port=$1 path=$2; shift 2
    local tmp; tmp=$(mktemp "$WORK/tmp/get.XXXXXX")
    local code
    code=$(curl -s -m "${GET_TIMEOUT:-10}" -o "$tmp" -w '%{http_code}' --noproxy '' -x "http://$HOST:$port" "$@" \
        "http://$HOST:$ORIGIN_PORT/$path" 2>/dev/null)
    printf '%s %s %s\n' "${code:-000}" "$(stat -c %s "$tmp")" "$(sha256sum < "$tmp" | cut -d' ' -f1)"
    rm -f "$tmp"
}

# ---------------------------------------------------------------- origin
ORIGIN_PID=
start_origin() {
    render_conf nginx-origin "$ORIGIN_PORT"
    if ss -Hltn "sport = :$ORIGIN_PORT" | grep -q .; then
        die "port $ORIGIN_PORT already in use (another benchmark running?)"
    fi
    start_bg nginx-origin \
        "nginx -p $WORK -e $WORK/logs/nginx-origin.error.log -c $WORK/conf/nginx-origin.conf"
    ORIGIN_PID=$LAST_PID
    wait_port "$ORIGIN_PORT" "$ORIGIN_PID" || die "origin nginx did not start (see $WORK/logs/nginx-origin.*)"
    local got; got=$(curl -s -m 5 --noproxy '*' "http://$HOST:$ORIGIN_PORT/1k" | sha256sum | cut -d' ' -f1)
    [[ $got == "$(file_sha 1k)" ]] || die "origin serves wrong /1k"
}
stop_origin() { stop_pid "$ORIGIN_PID"; ORIGIN_PID=; }

# ---------------------------------------------------------------- stats
median() { sort -g | awk '{a[NR]=$1} END {if (NR==0) print "nan"; else if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
