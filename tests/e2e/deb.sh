#!/usr/bin/env bash
# tests/e2e/deb.sh: the Debian package from build to purge, on this machine
# (a fresh root would need debootstrap and the network: too slow here).
#
# Checks (one PASS:/FAIL: line each):
#   1. tools/build-deb.sh builds musproxy_*.deb; it holds /usr/sbin/musproxy,
#      /usr/bin/musctl and mus-headend, the unit, the logrotate file; the
#      configuration and the logrotate file are conffiles;
#   2. lintian reports no error (warnings are listed);
#   3. systemd-analyze verify accepts the unit, and
#      systemd-analyze security --offline=true rates it below 5.0 (when that
#      systemd has the option);
#   4. dpkg -i: the musproxy system user, /var/lib/musproxy and
#      /var/log/musproxy owned by it, `musproxy -t` (the unit's ExecStartPre)
#      accepts the packaged configuration;
#   5. started as root the way the unit starts it (WorkingDirectory, the
#      packaged file; systemd is not PID 1 in a container, so no systemctl)
#      it switches to musproxy: /proc/PID/status Uid is musproxy's and CapEff
#      empty in every thread; a request through it reaches mp-origin; the
#      PAC file names the proxy; the access log, the store and the control
#      socket belong to musproxy and `musctl status` answers;
#   5b. the README's last step: a browser pointed at the PAC URL. Headless
#      Chromium in a client network namespace (a veth to this host, so no
#      loopback shortcut applies) with --proxy-pac-url=http://PROXY:PORT/proxy.pac
#      loads a page of an origin on the host side through the packaged
#      musproxy (Via in the page, the request in its access log);
#   6. the unit's ExecReload (musproxy -t, then SIGHUP) reloads;
#   7. logrotate -f with the packaged file: the old log is moved aside, its
#      postrotate sends SIGUSR1 (pid file), and the next request lands in a
#      new access.log;
#   8. started directly as the musproxy user with the unit's ambient
#      capabilities (setpriv): it keeps none of them, and proxies;
#   9. dpkg --purge removes the user, /etc/musproxy, /var/lib/musproxy and
#      /var/log/musproxy.
# The proxy listens on a free loopback port (-l) rather than 3128, so that
# nothing else on this machine is disturbed. Needs root and dpkg; exits 77
# with "SKIP: reason" otherwise, or when a musproxy package is already
# installed (it is not ours to remove).
set -uo pipefail
cd "$(dirname "$0")/../.."
top=$(pwd)
. tests/e2e/lib.bash
ORIGIN_BIN=${ORIGIN_BIN:-build/mp-origin}
e2e_init deb

[[ $(id -u) == 0 ]] || { echo "SKIP: needs root (dpkg -i, a system user)"; exit 77; }
command -v dpkg >/dev/null && command -v apt-get >/dev/null ||
    { echo "SKIP: not a Debian system (no dpkg/apt-get)"; exit 77; }
if dpkg-query -W -f='${Status}' musproxy 2>/dev/null | grep -q "ok installed"; then
    echo "SKIP: a musproxy package is already installed on this machine"; exit 77
fi
if getent passwd musproxy >/dev/null; then
    echo "SKIP: a musproxy user already exists on this machine"; exit 77
fi
if [[ ! -x $ORIGIN_BIN ]]; then
    [[ -f build/build.ninja ]] || meson setup build >/dev/null
    ninja -C build mp-origin >/dev/null || { echo "FAIL: cannot build mp-origin"; exit 1; }
fi
ORIGIN_BIN=$(cd "$(dirname "$ORIGIN_BIN")" && pwd)/$(basename "$ORIGIN_BIN")

INSTALLED=0
purge() { [[ $INSTALLED == 1 ]] && dpkg --purge musproxy >"$TMP/purge.log" 2>&1; INSTALLED=0; }
trap 'e2e_cleanup_all' EXIT
e2e_cleanup_all() { kill_mp; purge; e2e_cleanup; browser_ns_del; }
NS=musdeb$$ NET=10.83.$(($$ % 200)) VH=veth-md$$   # the browser's namespace (5b)
browser_ns_del() { ip netns del "$NS" 2>/dev/null; ip link del "$VH" 2>/dev/null; return 0; }
MP=
kill_mp() {   # stops the musproxy we started (by its pid), if it runs
    [[ -n $MP ]] || return 0
    kill -TERM "$MP" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$MP" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$MP" 2>/dev/null
    wait "$MP" 2>/dev/null
    forget_pid "$MP"
    MP=
}
wait_ready() {   # wait_ready LOG PID: until the log says ready (10 s)
    for _ in $(seq 100); do
        grep -q " ready: " "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}
status_of() {   # status_of PID FIELD: every thread's value of FIELD, unique
    cat /proc/"$1"/task/*/status | awk -v f="$2:" '$1 == f { $1 = ""; print }' | sort -u
}

# ---- 1. build ----
if bash tools/build-deb.sh "$TMP/out" >"$TMP/build-deb.log" 2>&1; then
    DEB=$(ls "$TMP"/out/musproxy_*_*.deb | head -1)
    contents=$(dpkg-deb -c "$DEB" | awk '{print $6}')
    conffiles=$(dpkg-deb -f "$DEB" Package >/dev/null; dpkg-deb --ctrl-tarfile "$DEB" | tar -xOf - ./conffiles)
    ok=1
    for f in ./usr/sbin/musproxy ./usr/bin/musctl ./usr/bin/mus-headend \
             ./lib/systemd/system/musproxy.service ./etc/logrotate.d/musproxy \
             ./etc/musproxy/musproxy.yaml; do
        grep -qx "$f" <<<"$contents" || { ok=0; echo "  missing $f"; }
    done
    for f in /etc/musproxy/musproxy.yaml /etc/logrotate.d/musproxy; do
        grep -qx "$f" <<<"$conffiles" || { ok=0; echo "  not a conffile: $f"; }
    done
    ((ok)) && pass "package built: $(basename "$DEB") with its binaries, unit, conffiles" ||
        fail "package contents"
else
    tail -30 "$TMP/build-deb.log"
    fail "tools/build-deb.sh"
    exit 1
fi

# ---- 2. lintian ----
if ! command -v lintian >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -q \
        --no-install-recommends lintian >/dev/null 2>&1 ||
        { apt-get update -q >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
            --no-install-recommends lintian >/dev/null 2>&1; }
fi
if command -v lintian >/dev/null; then
    lintian --fail-on error --no-tag-display-limit "$TMP"/out/musproxy_*.changes >"$TMP/lintian.log" 2>&1
    rc=$?
    grep -E '^W: ' "$TMP/lintian.log" | sed 's/^/  lintian warning: /'
    if [[ $rc == 0 ]] && ! grep -q '^E: ' "$TMP/lintian.log"; then
        pass "lintian: no error ($(grep -c '^W: ' "$TMP/lintian.log") warnings)"
    else
        grep -E '^E: ' "$TMP/lintian.log"; fail "lintian reports errors (exit $rc)"
    fi
else
    fail "lintian is not installed and could not be"
fi

# ---- 4. install ----
if dpkg -i "$DEB" >"$TMP/dpkg-i.log" 2>&1; then
    INSTALLED=1
else
    cat "$TMP/dpkg-i.log"; fail "dpkg -i"; exit 1
fi
MUID=$(id -u musproxy 2>/dev/null) MGID=$(id -g musproxy 2>/dev/null)
if [[ -n $MUID ]] && ((MUID < 1000)) &&
   [[ $(stat -c %U /var/lib/musproxy) == musproxy && $(stat -c %U /var/log/musproxy) == musproxy ]] &&
   [[ $(getent passwd musproxy | cut -d: -f7) == */nologin ]] &&
   /usr/sbin/musproxy -t -c /etc/musproxy/musproxy.yaml >"$TMP/t.log" 2>&1; then
    pass "installed: system user musproxy (uid $MUID, no shell), its directories, musproxy -t accepts the configuration"
else
    cat "$TMP/t.log"; fail "install: user, directories or configuration"
fi

# ---- 3. the unit, checked against the installed binary ----
UNIT=/lib/systemd/system/musproxy.service
if command -v systemd-analyze >/dev/null; then
    # verify loads the unit offline; it works without systemd as PID 1
    if SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$UNIT" >"$TMP/verify.log" 2>&1 &&
       ! grep -i musproxy "$TMP/verify.log" | grep -qv "^$"; then
        pass "systemd-analyze verify: the unit is clean"
    else
        cat "$TMP/verify.log"; fail "systemd-analyze verify"
    fi
    if systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
        systemd-analyze security --offline=true --no-pager "$UNIT" >"$TMP/security.log" 2>&1
        score=$(grep -o 'Overall exposure level for [^:]*: [0-9.]*' "$TMP/security.log" | awk '{print $NF}')
        echo "  $(grep 'Overall exposure' "$TMP/security.log")"
        if [[ -n $score ]] && awk -v s="$score" 'BEGIN { exit !(s < 5.0) }'; then
            pass "systemd-analyze security --offline: exposure $score (< 5.0)"
        else
            tail -20 "$TMP/security.log"; fail "systemd-analyze security: exposure '$score'"
        fi
    else
        echo "  (systemd-analyze security has no --offline here: not rated)"
    fi
else
    echo "  (no systemd-analyze on this machine: the unit is not verified)"
fi
[[ $(ps -o comm= -p 1) == systemd ]] && echo "  (systemd is PID 1 here, but the test starts musproxy itself all the same)"

# ---- 5. root start, switching to musproxy ----
start_bg "$TMP/origin.log" "$ORIGIN_BIN" --listen 127.0.0.1:0
OPID=$BG_PID
for _ in $(seq 50); do OPORT=$(awk '$1 == "listening" { print $2; exit }' "$TMP/origin.log"); [[ -n $OPORT ]] && break; sleep 0.1; done
[[ -n ${OPORT:-} ]] || { cat "$TMP/origin.log"; fail "mp-origin did not start"; exit 1; }
PORT=$(free_port)
# the browser's client namespace (5b): host side .1 (the proxy) and .3 (an
# origin), client .2; without namespaces or Chromium that check is not run
LISTEN_MORE=() BROWSER=0
if command -v chromium >/dev/null && ip netns add "$NS" 2>/dev/null; then
    if ip link add "$VH" type veth peer name vc$$ && ip link set vc$$ netns "$NS" &&
       ip addr add "$NET.1/24" dev "$VH" && ip addr add "$NET.3/24" dev "$VH" &&
       ip link set "$VH" up && ip -n "$NS" addr add "$NET.2/24" dev vc$$ &&
       ip -n "$NS" link set vc$$ up && ip -n "$NS" link set lo up; then
        start_bg "$TMP/origin-browser.log" "$ORIGIN_BIN" --listen "$NET.3:80"
        LISTEN_MORE=(-l "$NET.1:$PORT") BROWSER=1
    fi
fi
start_mp() {   # start_mp LOG [PREFIX...]: the unit's ExecStart (from /var/lib/musproxy)
    local log=$1; shift
    : >"$log"
    # exec all the way (subshell, setsid, setpriv): $! is musproxy itself
    (cd /var/lib/musproxy && exec setsid "$@" /usr/sbin/musproxy -c /etc/musproxy/musproxy.yaml \
        -l "127.0.0.1:$PORT" "${LISTEN_MORE[@]}" </dev/null >>"$log" 2>&1) &
    MP=$! MPID=$!
    PIDS+=("$MP")
    wait_ready "$log" "$MPID"
}
proxied() {   # proxied PATH: the body through the proxy
    curl -s --max-time 5 -x "http://127.0.0.1:$PORT" "http://127.0.0.1:$OPORT$1"
}

if start_mp "$TMP/mp1.log"; then
    echo "$MPID" >/run/musproxy/musproxy.pid
    uids=$(status_of "$MPID" Uid) caps=$(status_of "$MPID" CapEff)
    echo "  Uid: $uids  CapEff: $caps  (threads: $(ls /proc/"$MPID"/task | wc -l))"
    if [[ $(wc -l <<<"$uids") == 1 && $(xargs <<<"$uids") == "$MUID $MUID $MUID $MUID" &&
          $(xargs <<<"$caps") == 0000000000000000 ]]; then
        pass "root start: every thread runs as musproxy ($MUID) with no capability"
    else
        fail "root start: Uid '$uids' CapEff '$caps'"
    fi
    body=$(proxied /size/64 | wc -c)
    pac=$(curl -s --max-time 5 "http://127.0.0.1:$PORT/proxy.pac")
    sleep 0.5
    if [[ $body == 64 ]] && grep -q "PROXY 127.0.0.1:$PORT" <<<"$pac" &&
       grep -q "127.0.0.1:$OPORT/size/64" /var/log/musproxy/access.log; then
        pass "proxied a request to mp-origin (access log has it), PAC names PROXY 127.0.0.1:$PORT"
    else
        echo "  body $body bytes; pac: $(head -c 300 <<<"$pac")"; fail "request through the packaged proxy"
    fi
    # ---- 5b. a browser pointed at the PAC URL ----
    if ((BROWSER)); then
        prof=$(mktemp -d "$TMP/chrome.XXXXXX")
        ip netns exec "$NS" timeout 40 chromium --headless --no-sandbox --disable-gpu --disable-quic \
            --no-first-run --disable-background-networking --disable-component-update --disable-sync \
            --disable-extensions --user-data-dir="$prof" \
            --proxy-pac-url="http://$NET.1:$PORT/proxy.pac" --dump-dom "http://$NET.3/headers" \
            >"$TMP/browser.html" 2>"$TMP/browser.err"
        sleep 0.5
        if grep -qi "^Via: 1.1 " "$TMP/browser.html" &&
           grep -q "^[0-9.]* *[0-9]* $NET.2 TCP_MISS/200 .* GET http://$NET.3/headers " \
               /var/log/musproxy/access.log; then
            pass "browser: Chromium with --proxy-pac-url=http://$NET.1:$PORT/proxy.pac loaded http://$NET.3/headers through the packaged musproxy (Via, access log)"
        else
            fail "browser: page '$(head -c 300 "$TMP/browser.html")'"
            tail -3 /var/log/musproxy/access.log; tail -5 "$TMP/browser.err"
        fi
    else
        echo "  (no chromium or no network namespaces here: check 5b not run)"
    fi
    owners=$(stat -c '%U %n' /var/log/musproxy/access.log /var/lib/musproxy/musproxy.db \
             /run/musproxy/musproxy.sock 2>&1)
    if ! grep -qv '^musproxy ' <<<"$owners" &&
       musctl status --socket /run/musproxy/musproxy.sock >"$TMP/status.log" 2>&1; then
        pass "access log, store and control socket belong to musproxy; musctl status answers"
    else
        echo "$owners"; cat "$TMP/status.log"; fail "file owners or musctl status"
    fi

    # ---- 6. ExecReload ----
    if /usr/sbin/musproxy -t -c /etc/musproxy/musproxy.yaml >/dev/null 2>&1 && kill -HUP "$MPID"; then
        for _ in $(seq 50); do grep -q "configuration reloaded" "$TMP/mp1.log" && break; sleep 0.1; done
    fi
    if grep -q "configuration reloaded" "$TMP/mp1.log" && [[ $(proxied /size/10 | wc -c) == 10 ]]; then
        pass "ExecReload (musproxy -t, SIGHUP): reloaded as musproxy, still proxying"
    else
        tail -5 "$TMP/mp1.log"; fail "reload"
    fi

    # ---- 7. logrotate ----
    before=$(wc -l </var/log/musproxy/access.log)
    logrotate -f -s "$TMP/logrotate.state" /etc/logrotate.d/musproxy >"$TMP/logrotate.log" 2>&1
    for _ in $(seq 50); do grep -q "reopening the access log" "$TMP/mp1.log" && break; sleep 0.1; done
    proxied /size/7 >/dev/null
    sleep 0.5
    if [[ -s /var/log/musproxy/access.log.1 ]] && (( $(wc -l </var/log/musproxy/access.log.1) == before )) &&
       grep -q "reopening the access log" "$TMP/mp1.log" &&
       grep -q "/size/7" /var/log/musproxy/access.log &&
       ! grep -q "/size/7" /var/log/musproxy/access.log.1 &&
       [[ $(stat -c %U /var/log/musproxy/access.log) == musproxy ]]; then
        pass "logrotate: access.log.1 kept, SIGUSR1 from postrotate, the next request in a new access.log"
    else
        cat "$TMP/logrotate.log"; ls -l /var/log/musproxy; tail -3 "$TMP/mp1.log"; fail "logrotate and reopen"
    fi
    kill -TERM "$MPID"
    for _ in $(seq 50); do kill -0 "$MPID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$MPID" 2>/dev/null && fail "SIGTERM did not stop it" || grep -q "stopped" "$TMP/mp1.log" ||
        fail "no 'stopped' after SIGTERM"
    kill_mp
    rm -f /run/musproxy/musproxy.pid
else
    tail -20 "$TMP/mp1.log"; fail "musproxy did not start as root with run.user musproxy"
fi

# ---- 8. the unit's way: User=musproxy with AmbientCapabilities ----
AMB=+net_admin,+net_raw,+net_bind_service
if start_mp "$TMP/mp2.log" setpriv --reuid=musproxy --regid=musproxy --init-groups \
        --inh-caps="$AMB" --ambient-caps="$AMB"; then
    uids=$(status_of "$MPID" Uid) caps=$(status_of "$MPID" CapEff) amb=$(status_of "$MPID" CapAmb)
    echo "  Uid: $uids  CapEff: $caps  CapAmb: $amb"
    if [[ $(xargs <<<"$uids") == "$MUID $MUID $MUID $MUID" && $(xargs <<<"$caps") == 0000000000000000 &&
          $(xargs <<<"$amb") == 0000000000000000 && $(proxied /size/5 | wc -c) == 5 ]]; then
        pass "started as musproxy with ambient net_admin,net_raw,net_bind_service: keeps none, proxies"
    else
        tail -5 "$TMP/mp2.log"; fail "ambient start: Uid '$uids' CapEff '$caps' CapAmb '$amb'"
    fi
    kill_mp
else
    tail -20 "$TMP/mp2.log"; fail "musproxy did not start as musproxy with ambient capabilities"
fi

# ---- 9. purge ----
purge
if ! getent passwd musproxy >/dev/null && ! getent group musproxy >/dev/null &&
   [[ ! -e /etc/musproxy && ! -e /var/lib/musproxy && ! -e /var/log/musproxy ]] &&
   ! dpkg-query -W -f='${Status}' musproxy 2>/dev/null | grep -q installed; then
    pass "dpkg --purge: user, group, /etc/musproxy, /var/lib/musproxy, /var/log/musproxy gone"
else
    cat "$TMP/purge.log"; ls -d /etc/musproxy /var/lib/musproxy /var/log/musproxy 2>/dev/null
    getent passwd musproxy; fail "purge left something"
fi

[[ $FAILED == 0 ]] && echo "deb: all checks passed" || echo "deb: some checks FAILED"
exit $FAILED
