#!/usr/bin/env bash
# tests/e2e/chromium.sh: end-to-end test with a real browser.
#
# Headless Chromium loads one page over plain HTTP and one over HTTPS through
# musproxy (explicit proxy: absolute-URI GET, and a CONNECT tunnel), from a
# local nginx origin on 127.0.0.1. Checks that both pages render (their unique
# marker text is in the dumped DOM) and that musproxy's access log recorded
#   TCP_MISS/200 ... GET http://127.0.0.1:<http port>/...
#   TCP_TUNNEL/200 ... CONNECT 127.0.0.1:<tls port>
#
# Builds nothing. Environment:
#   MUSPROXY_BIN  musproxy binary (default build/musproxy, relative to the repo)
#   CHROMIUM      browser (default: chromium)
#   KEEP_TMP=1    keep the temp dir (configs, logs, DOM dumps) for inspection
# The origin is nginx (Debian nginx-light) serving a static page over HTTP and
# over HTTPS with a certificate generated here (own CA + server certificate).
# The C test origin (ORIGIN_BIN, build/mp-origin) is not used: nginx
# keeps this test independent of our own code on the server side.
#
# Chromium details (see /work/shared/docs/lab-notes.md): it never proxies
# loopback URLs unless '--proxy-bypass-list=<-loopback>' is given; the server
# certificate is verified against the test CA, which an NSS database of
# Chromium's own trusts (nss_trust_ca in lib.bash: certutil, HOME pointed at it).
#
# Exit status: 0 all checks passed, 1 a check failed, 77 skipped (a line
# "SKIP: reason" says why). One line per check on stdout.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
MUSPROXY_BIN=${MUSPROXY_BIN:-$REPO/build/musproxy}
CHROMIUM=${CHROMIUM:-chromium}
CHROME_TIMEOUT=30

skip() { echo "SKIP: $*"; exit 77; }
for t in "$CHROMIUM" nginx openssl curl timeout setsid ss base64 python3; do
    command -v "$t" >/dev/null 2>&1 || skip "$t not installed (tools/setup.sh installs it)"
done
[[ -x $MUSPROXY_BIN ]] || skip "musproxy binary not found: $MUSPROXY_BIN (build it or set MUSPROXY_BIN)"

# shellcheck source=lib.bash
source "$(dirname "${BASH_SOURCE[0]}")/lib.bash"
e2e_init chromium

HTTP_PORT=$(free_port)
TLS_PORT=$(free_port)
while [[ $TLS_PORT == "$HTTP_PORT" ]]; do TLS_PORT=$(free_port); done
PROXY_PORT=$(free_port)
while [[ $PROXY_PORT == "$HTTP_PORT" || $PROXY_PORT == "$TLS_PORT" ]]; do PROXY_PORT=$(free_port); done

# ---------------------------------------------------------------- certificates
HOSTNAME_CERT=e2e.musproxy.test
(
    cd "$TMP" || exit 1
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout ca.key -out ca.pem -days 2 -subj "/CN=musproxy e2e test CA" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign &&
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
        -keyout server.key -out server.csr -subj "/CN=$HOSTNAME_CERT" &&
    printf 'subjectAltName=DNS:%s,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
        "$HOSTNAME_CERT" > server.ext &&
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
        -out server.pem -days 2 -extfile server.ext &&
    cat server.pem ca.pem > chain.pem
) >"$TMP/openssl.log" 2>&1 || { fail "certificates: openssl failed: $(tail -3 "$TMP/openssl.log")"; exit 1; }
SPKI=$(openssl x509 -in "$TMP/server.pem" -pubkey -noout | openssl pkey -pubin -outform der \
    | openssl dgst -sha256 -binary | base64)
CHOME=$TMP/chrome-home
nss_trust_ca "$CHOME" "$TMP/ca.pem" ||
    { fail "certificates: certutil could not make Chromium's NSS database (libnss3-tools)"; exit 1; }
pass "certificates: CA + server certificate for $HOSTNAME_CERT/127.0.0.1 (SPKI sha256 $SPKI), the CA trusted in Chromium's NSS database"

# ---------------------------------------------------------------- origin (nginx)
MARK_HTTP="musproxy-e2e-http-$RANDOM$RANDOM"
MARK_TLS="musproxy-e2e-https-$RANDOM$RANDOM"
mkdir -p "$TMP/www-http" "$TMP/www-tls" "$TMP/nginx-tmp"
for d in http tls; do
    m=$MARK_HTTP; [[ $d == tls ]] && m=$MARK_TLS
    cat > "$TMP/www-$d/index.html" <<EOF
<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>musproxy e2e</title></head>
<body><p id="static">static $m</p>
<script>document.body.insertAdjacentHTML('beforeend', '<p id="js">js-' + '$m</p>');</script>
</body></html>
EOF
done
# nginx workers may run as an unprivileged user: let them read the docroots.
chmod 755 "$TMP" "$TMP/www-http" "$TMP/www-tls"
chmod 644 "$TMP"/www-*/index.html
cat > "$TMP/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/nginx-error.log warn;
events { worker_connections 256; }
http {
    access_log $TMP/nginx-access.log;
    client_body_temp_path $TMP/nginx-tmp/body;
    proxy_temp_path $TMP/nginx-tmp/proxy;
    fastcgi_temp_path $TMP/nginx-tmp/fastcgi;
    default_type text/html;
    server {
        listen 127.0.0.1:$HTTP_PORT;
        root $TMP/www-http;
    }
    server {
        listen 127.0.0.1:$TLS_PORT ssl;
        server_name $HOSTNAME_CERT;
        ssl_certificate $TMP/chain.pem;
        ssl_certificate_key $TMP/server.key;
        root $TMP/www-tls;
    }
}
EOF
start_bg "$TMP/nginx.out" nginx -p "$TMP" -e "$TMP/nginx-error.log" -c "$TMP/nginx.conf"
NGINX_PID=$BG_PID
if ! wait_listen "$HTTP_PORT" "$NGINX_PID" || ! wait_listen "$TLS_PORT" "$NGINX_PID"; then
    fail "origin: nginx did not start: $(tail -3 "$TMP/nginx.out" "$TMP/nginx-error.log" 2>/dev/null | tr '\n' ' ')"
    exit 1
fi
if curl -sf -m 5 --noproxy '*' "http://127.0.0.1:$HTTP_PORT/" | grep -q "$MARK_HTTP" &&
   curl -sf -m 5 --noproxy '*' --cacert "$TMP/ca.pem" --resolve "$HOSTNAME_CERT:$TLS_PORT:127.0.0.1" \
       "https://$HOSTNAME_CERT:$TLS_PORT/" | grep -q "$MARK_TLS"; then
    pass "origin: nginx serves http://127.0.0.1:$HTTP_PORT/ and https://127.0.0.1:$TLS_PORT/ (direct, chain verified by curl)"
else
    fail "origin: nginx does not serve the test pages directly"; exit 1
fi

# ---------------------------------------------------------------- musproxy
ACCESS_LOG=$TMP/musproxy-access.log
cat > "$TMP/musproxy.yaml" <<EOF
proxy:
  listen:
    - { address: "127.0.0.1:$PROXY_PORT", mode: explicit }
  workers: 1
  clients: [127.0.0.0/8]
  connect_ports: [443, $TLS_PORT]
  access_log: "$ACCESS_LOG"
  visible_hostname: musproxy-e2e
mus:
  control_socket: "$TMP/musproxy.sock"   # default is relative (var/)
log_level: info
EOF
start_bg "$TMP/musproxy.out" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
MP_PID=$BG_PID
if ! wait_listen "$PROXY_PORT" "$MP_PID"; then
    fail "musproxy: did not listen on 127.0.0.1:$PROXY_PORT: $(tail -5 "$TMP/musproxy.out" | tr '\n' ' ')"
    exit 1
fi
pass "musproxy: listening on 127.0.0.1:$PROXY_PORT ($("$MUSPROXY_BIN" --version 2>&1 | head -1))"

# ---------------------------------------------------------------- chromium
# chrome URL NAME: dumps the DOM to $TMP/NAME.html; returns chromium's status
chrome() {
    local url=$1 name=$2 rc
    mkdir -p "$TMP/profile-$name"
    HOME=$CHOME setsid timeout -k 5 "$CHROME_TIMEOUT" "$CHROMIUM" --headless --no-sandbox --disable-gpu \
        --disable-quic --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --disable-extensions --user-data-dir="$TMP/profile-$name" \
        --proxy-server="http://127.0.0.1:$PROXY_PORT" '--proxy-bypass-list=<-loopback>' \
        --dump-dom "$url" > "$TMP/$name.html" 2> "$TMP/$name.chromium.log" </dev/null &
    local pid=$!
    PIDS+=("$pid")
    wait "$pid"; rc=$?
    kill -KILL -- "-$pid" 2>/dev/null       # leftover renderer/zygote processes
    forget_pid "$pid"
    return "$rc"
}

check_page() {   # check_page URL NAME MARK
    local url=$1 name=$2 mark=$3 rc
    chrome "$url" "$name"; rc=$?
    if ((rc == 124 || rc == 137)); then
        fail "chromium $name: $url timed out after ${CHROME_TIMEOUT}s"
    elif grep -q "static $mark" "$TMP/$name.html" && grep -q "js-$mark" "$TMP/$name.html"; then
        pass "chromium $name: $url rendered through the proxy (static + script marker in DOM)"
    else
        fail "chromium $name: $url: marker not in DOM (exit $rc; DOM $(wc -c < "$TMP/$name.html") bytes: $(head -c 200 "$TMP/$name.html" | tr '\n' ' '); chromium errors: $(grep -oE 'ERR_[A-Z_]+' "$TMP/$name.chromium.log" | sort -u | tr '\n' ' ')$(grep -qE 'ERR_[A-Z_]+' "$TMP/$name.chromium.log" || echo none logged))"
    fi
}
check_page "http://127.0.0.1:$HTTP_PORT/" http "$MARK_HTTP"
check_page "https://127.0.0.1:$TLS_PORT/" https "$MARK_TLS"

# ---------------------------------------------------------------- access log
RE_GET="TCP_MISS/200 .*GET http://127\.0\.0\.1:$HTTP_PORT/"
RE_CONNECT="TCP_TUNNEL/200 .*CONNECT (127\.0\.0\.1|$HOSTNAME_CERT|localhost):$TLS_PORT( |$)"
have_lines() { [[ -f $ACCESS_LOG ]] && grep -Eq "$RE_GET" "$ACCESS_LOG" && grep -Eq "$RE_CONNECT" "$ACCESS_LOG"; }
# Entries are written when a transaction ends (a tunnel when it closes) and may
# be buffered: wait a little, then stop musproxy cleanly (SIGTERM) to flush.
NOTE=""
for _ in $(seq 30); do have_lines && break; sleep 0.1; done
if ! have_lines; then
    kill -TERM "$MP_PID" 2>/dev/null
    for _ in $(seq 150); do kill -0 "$MP_PID" 2>/dev/null || break; sleep 0.1; done
    NOTE=" (written only after musproxy was stopped)"
fi
if [[ -f $ACCESS_LOG ]] && grep -Eq "$RE_GET" "$ACCESS_LOG"; then
    pass "access log: $(grep -Em1 "$RE_GET" "$ACCESS_LOG" | cut -c1-200)$NOTE"
else
    fail "access log: no 'TCP_MISS/200 ... GET http://127.0.0.1:$HTTP_PORT/' line in $ACCESS_LOG ($(cat "$ACCESS_LOG" 2>/dev/null | wc -l) lines: $(head -3 "$ACCESS_LOG" 2>/dev/null | tr '\n' '|' | cut -c1-300))"
fi
if [[ -f $ACCESS_LOG ]] && grep -Eq "$RE_CONNECT" "$ACCESS_LOG"; then
    pass "access log: $(grep -Em1 "$RE_CONNECT" "$ACCESS_LOG" | cut -c1-200)$NOTE"
else
    fail "access log: no 'TCP_TUNNEL/200 ... CONNECT 127.0.0.1:$TLS_PORT' line in $ACCESS_LOG"
fi

# ---------------------------------------------------------------- diagnosis
# Only when something failed: does a fresh musproxy instance (own port, own
# access log, so nothing here can satisfy the checks above) serve the same
# pages to curl? Separates proxy faults from browser faults.
diagnose() {
    local port code alog=$TMP/diag-access.log
    port=$(free_port)
    sed -e "s|127.0.0.1:$PROXY_PORT|127.0.0.1:$port|" -e "s|$ACCESS_LOG|$alog|" \
        -e "s|$TMP/musproxy.sock|$TMP/musproxy-diag.sock|" \
        "$TMP/musproxy.yaml" > "$TMP/musproxy-diag.yaml"
    start_bg "$TMP/musproxy-diag.out" "$MUSPROXY_BIN" -c "$TMP/musproxy-diag.yaml"
    if ! wait_listen "$port" "$BG_PID"; then
        echo "diag: a second musproxy did not start: $(tail -3 "$TMP/musproxy-diag.out" | tr '\n' ' ')"
        return
    fi
    code=$(curl -s -m 10 --noproxy '' -x "http://127.0.0.1:$port" -o "$TMP/curl-http.html" -w '%{http_code}' \
        "http://127.0.0.1:$HTTP_PORT/")
    echo "diag: curl via a fresh musproxy: GET http://127.0.0.1:$HTTP_PORT/ -> HTTP $code, marker $(grep -q "$MARK_HTTP" "$TMP/curl-http.html" 2>/dev/null && echo found || echo missing)"
    code=$(curl -s -m 10 --noproxy '' -x "http://127.0.0.1:$port" --cacert "$TMP/ca.pem" -o "$TMP/curl-tls.html" \
        -w '%{http_connect} %{http_code}' "https://127.0.0.1:$TLS_PORT/")
    echo "diag: curl via a fresh musproxy: https://127.0.0.1:$TLS_PORT/ (CONNECT; chain verified) -> CONNECT/HTTP status $code, marker $(grep -q "$MARK_TLS" "$TMP/curl-tls.html" 2>/dev/null && echo found || echo missing)"
    sleep 0.5
    echo "diag: its access log: $(tail -3 "$alog" 2>/dev/null | tr '\n' '|' | cut -c1-400)"
    echo "diag: first musproxy's output: $(tail -5 "$TMP/musproxy.out" | tr '\n' ' ' | cut -c1-400)"
}

if ((FAILED)); then
    diagnose
    echo "RESULT: FAIL (logs: rerun with KEEP_TMP=1 to keep $TMP)"
    exit 1
fi
echo "RESULT: PASS"
exit 0
