# tests/e2e/lib.bash: helpers shared by the end-to-end scripts (sourced, not
# run; tools/test.sh runs tests/e2e/*.sh only). After `e2e_init NAME`:
# TMP is a fresh temp dir (kept if KEEP_TMP=1), every process started with
# start_bg is in a session of its own and killed as a group on exit, and
# pass/fail print one line per check and set FAILED.

FAILED=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED=1; }

PIDS=()                         # session leaders we started (killed as groups)
e2e_cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    if [[ ${KEEP_TMP:-0} == 1 ]]; then echo "temp dir kept: $TMP"; else rm -rf "$TMP"; fi
}

e2e_init() {   # e2e_init NAME: temp dir and traps
    TMP=$(mktemp -d "/tmp/musproxy-e2e-$1.XXXXXX")
    trap e2e_cleanup EXIT
    trap 'exit 1' INT TERM HUP
}

# start_bg LOGFILE CMD...: own session (PID == SID == PGID) so that the whole
# tree can be killed by group; sets BG_PID.
start_bg() {
    local log=$1; shift
    setsid "$@" </dev/null >>"$log" 2>&1 &
    BG_PID=$!
    PIDS+=("$BG_PID")
}
forget_pid() {
    local keep=() x
    for x in "${PIDS[@]}"; do [[ $x == "$1" ]] || keep+=("$x"); done
    PIDS=("${keep[@]}")
}

# A free loopback TCP port (the kernel picks it; tiny race until we bind it).
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() {   # wait_port PORT: until 127.0.0.1:PORT accepts a connection (5 s)
    for _ in $(seq 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}
wait_listen() {   # wait_listen PORT PID: until PORT listens (10 s), 1 if PID died
    local i
    for ((i = 0; i < 100; i++)); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# origin_cert SAN: a test CA ($TMP/ca.pem) and a certificate for the origin
# ($TMP/origin.pem, origin.key) with subjectAltName SAN (e.g. DNS:origin.test).
origin_cert() {
    openssl req -x509 -newkey rsa:2048 -nodes -keyout "$TMP/ca.key" -out "$TMP/ca.pem" -days 2 \
        -subj "/CN=musproxy test CA" 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout "$TMP/origin.key" -out "$TMP/origin.csr" \
        -subj "/CN=origin.test" 2>/dev/null
    printf 'subjectAltName=%s\n' "$1" >"$TMP/san.ext"
    openssl x509 -req -in "$TMP/origin.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
        -out "$TMP/origin.pem" -days 2 -extfile "$TMP/san.ext" 2>/dev/null
}

# nss_trust_ca HOME CA: an NSS database of its own in HOME/.pki/nssdb with
# the CA trusted for TLS servers; Chromium on Linux trusts those roots when
# run with HOME set to it (nothing pinned, verification on). 0 or 1.
nss_trust_ca() {
    command -v certutil >/dev/null || return 1
    mkdir -p "$1/.pki/nssdb"
    certutil -N -d "sql:$1/.pki/nssdb" --empty-password &&
        certutil -A -d "sql:$1/.pki/nssdb" -n musproxy-e2e-ca -t "C,," -i "$2"
}

# start_origin: mp-origin ($ORIGIN_BIN) on a free loopback port, its log in
# $TMP/origin.log; sets OPORT. Exits the script (status 1) if it does not start.
start_origin() {
    local log=$TMP/origin.log
    start_bg "$log" "$ORIGIN_BIN" --listen 127.0.0.1:0
    for _ in $(seq 100); do grep -q '^listening ' "$log" && break; sleep 0.05; done
    OPORT=$(awk '/^listening /{print $2; exit}' "$log")
    [[ -n $OPORT ]] || { echo "FAIL: mp-origin did not start"; cat "$log"; exit 1; }
}

# cdp_run SECONDS OUTDIR STEPS LOG [CHROMIUM-ARGS...]: headless $CHROMIUM driven
# through tests/e2e/cdp.py (the steps' pages, cookies and shots in OUTDIR);
# its status (0: every step ran).
cdp_run() {
    local secs=$1 out=$2 steps=$3 log=$4
    shift 4
    timeout -k 5 "$secs" python3 "$(dirname "${BASH_SOURCE[0]}")/cdp.py" "$out" "$steps" \
        "$CHROMIUM" --headless --no-sandbox --disable-gpu --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --disable-extensions --user-data-dir="$TMP/chrome-profile" --no-proxy-server \
        "$@" about:blank >"$log" 2>&1
}
