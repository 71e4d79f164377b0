#!/usr/bin/env bash
# tools/bench-transparent.sh: transparent mode against explicit mode and
# against no proxy at all, in one run, in a namespace lab
# (client -> proxy host (router + musproxy) -> origin):
#   http:  1 KiB keep-alive requests (wrk, 1 thread, 50 connections, 5 s):
#          explicit (wrk to musproxy's explicit port with absolute URLs)
#          against transparent (wrk to the origin's address, nftables
#          REDIRECT to the transparent listener); target transparent >= 0.95x;
#   https: one large download over TLS (curl, SIZE_MB): CONNECT through the
#          explicit port, intercepted by SNI (REDIRECT of 443; musproxy peeks
#          the ClientHello and relays), and direct (port 8443: routed, not
#          redirected); target SNI >= 0.9x CONNECT.
# Rounds alternate the variants (ROUNDS, default 5); it prints each run,
# then the medians and their ratios, with musproxy's CPU (user+sys of the
# process, /proc) per request or per MiB beside each figure. One worker,
# access log on (as deployed). Loopback and namespaces only.
#
#   sudo tools/bench-transparent.sh            # SIZE_MB=512 ROUNDS=5
# Needs build-release/musproxy (or MUSPROXY_BIN), build/mp-origin, wrk,
# curl, nft, root; exits 77 with "SKIP: reason" otherwise.
set -uo pipefail
cd "$(dirname "$0")/.."
. tests/e2e/lib.bash
MUSPROXY_BIN=${MUSPROXY_BIN:-build-release/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-build/mp-origin}
SIZE_MB=${SIZE_MB:-512} ROUNDS=${ROUNDS:-5}
e2e_init bench_transparent

skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces)"
for b in "$MUSPROXY_BIN" "$ORIGIN_BIN"; do [[ -x $b ]] || skip "$b not built"; done
for t in nft wrk curl openssl; do command -v $t >/dev/null || skip "$t is not installed"; done

C=xc-$$ P=xp-$$ O=xo-$$
trap 'e2e_cleanup; for ns in "$C" "$P" "$O"; do ip netns del "$ns" 2>/dev/null; done; rm -rf "/etc/netns/$P"' EXIT
for ns in "$C" "$P" "$O"; do ip netns add "$ns" || skip "cannot create network namespaces"; done
veth() {   # veth NS1 IF1 ADDR1 NS2 IF2 ADDR2
    ip link add "$2" type veth peer name "$5" || skip "no veth"
    ip link set "$2" netns "$1"; ip link set "$5" netns "$4"
    ip -n "$1" addr add "$3" dev "$2"; ip -n "$4" addr add "$6" dev "$5"
    ip -n "$1" link set "$2" up; ip -n "$4" link set "$5" up
}
for ns in "$C" "$P" "$O"; do ip -n "$ns" link set lo up; done
veth "$C" c0-$$ 10.76.1.2/24 "$P" p0-$$ 10.76.1.1/24
veth "$P" p1-$$ 10.76.2.1/24 "$O" o0-$$ 10.76.2.2/24
ip -n "$C" route add default via 10.76.1.1
ip -n "$O" route add default via 10.76.2.1
ip netns exec "$P" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$P" nft -f - <<EOF || skip "nftables rules cannot be loaded"
table ip bench {
  chain pre_nat {
    type nat hook prerouting priority dstnat;
    iifname "p0-$$" tcp dport { 80, 443 } redirect to :3129
  }
}
EOF
# the proxy resolves origin.test for CONNECT (ip netns exec reads /etc/netns/NS/hosts)
mkdir -p "/etc/netns/$P"
printf '127.0.0.1 localhost\n10.76.2.2 origin.test\n' >"/etc/netns/$P/hosts"
start_bg "$TMP/origin.log" ip netns exec "$O" "$ORIGIN_BIN" --listen 10.76.2.2:80
origin_cert DNS:origin.test
for port in 443 8443; do
    start_bg "$TMP/origin-tls.log" ip netns exec "$O" "$ORIGIN_BIN" --listen 10.76.2.2:$port \
        --tls "$TMP/origin.pem" "$TMP/origin.key"
done
cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen:
    - { address: "0.0.0.0:3129", mode: transparent }
    - { address: "10.76.1.1:3128", mode: explicit }
  workers: 1
  clients: [10.76.1.0/24]
  connect_ports: [443]
  max_connections: 10000
  access_log: $TMP/access.log
  timeouts: { shutdown: 1s }
mus: { control_socket: off, remote_users: ip_ranges }
store: { path: off }
admin: { enabled: false }
EOF
start_bg "$TMP/musproxy.log" ip netns exec "$P" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
MPID=$BG_PID
for _ in $(seq 100); do ip netns exec "$P" ss -Hltn "sport = :3129" | grep -q . && break; sleep 0.1; done
for _ in $(seq 50); do ip netns exec "$O" ss -Hltn | grep -q ':8443' && break; sleep 0.1; done
[[ $(cat /proc/$MPID/comm 2>/dev/null) == musproxy ]] ||
    { echo "FAIL: musproxy did not start"; cat "$TMP/musproxy.log"; exit 1; }

ticks() { awk '{print $14 + $15}' /proc/$MPID/stat; }
cat >"$TMP/explicit.lua" <<'LUA'
wrk.path = "http://10.76.2.2/size/1024"
wrk.headers["Host"] = "10.76.2.2"
LUA
http_run() {   # http_run VARIANT: prints "req/s cpu_us/req"
    local url out t0 t1 n rps
    if [[ $1 == explicit ]]; then
        url=(-s "$TMP/explicit.lua" http://10.76.1.1:3128)
    else
        url=(http://10.76.2.2/size/1024)
    fi
    t0=$(ticks)
    out=$(ip netns exec "$C" wrk -t1 -c50 -d5s "${url[@]}")
    t1=$(ticks)
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    n=$(awk '/requests in/ {print $1}' <<<"$out")
    grep -q 'Non-2xx' <<<"$out" && { echo "ERR non-2xx answers"; return; }
    awk -v r="$rps" -v n="$n" -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" \
        'BEGIN { printf "%.0f %.2f\n", r, d * 1e6 / hz / n }'
}
https_run() {   # https_run VARIANT: prints "MiB/s cpu_ms/MiB"
    local port=443 extra=() out t0 t1
    case $1 in
    connect) extra=(-x http://10.76.1.1:3128) ;;
    direct) port=8443 ;;
    esac
    t0=$(ticks)
    out=$(ip netns exec "$C" curl -s --noproxy "$([[ $1 == connect ]] && echo '' || echo '*')" \
        "${extra[@]}" --cacert "$TMP/ca.pem" --resolve "origin.test:$port:10.76.2.2" \
        -o /dev/null -w '%{size_download} %{time_total}' \
        "https://origin.test:$port/size/$((SIZE_MB << 20))")
    t1=$(ticks)
    awk -v o="$out" -v mib="$SIZE_MB" -v d=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" 'BEGIN {
        split(o, f, " "); if (f[1] != mib * 1048576) { print "ERR bytes " f[1]; exit }
        printf "%.1f %.2f\n", mib / f[2], d * 1000 / hz / mib }'
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

# the paths work before they are timed
[[ $(http_run explicit) != ERR* && $(http_run transparent) != ERR* ]] ||
    { echo "FAIL: a HTTP path does not answer 2xx"; tail -3 "$TMP/access.log"; exit 1; }
grep -q ' TCP_MISS/200 .* GET http://10.76.2.2/size/1024 ' "$TMP/access.log" ||
    { echo "FAIL: nothing logged"; exit 1; }

echo "transparent vs explicit vs direct: $ROUNDS rounds, 1 worker, access log on, $(nproc) cores, HTTPS ${SIZE_MB} MiB"
printf '%-12s %-12s %10s %14s\n' workload variant figure "musproxy CPU"
: >"$TMP/results"
for ((i = 0; i < ROUNDS; i++)); do
    for v in explicit transparent; do
        r=$(http_run $v); [[ $r == ERR* ]] && { echo "FAIL: http $v: $r"; exit 1; }
        echo "http $v $r" >>"$TMP/results"
        printf '%-12s %-12s %10s %14s\n' http $v "${r% *} req/s" "${r#* } us/req"
    done
    for v in connect sni direct; do
        r=$(https_run $v); [[ $r == ERR* ]] && { echo "FAIL: https $v: $r"; exit 1; }
        echo "https $v $r" >>"$TMP/results"
        printf '%-12s %-12s %10s %14s\n' https $v "${r% *} MiB/s" "${r#* } ms/MiB"
    done
done
grep -q ' TCP_TUNNEL/200 .* CONNECT origin.test:443 ' "$TMP/access.log" ||
    { echo "FAIL: the SNI path was not relayed by musproxy"; exit 1; }
m() { awk -v w="$1" -v v="$2" -v c="$3" '$1 == w && $2 == v {print $c}' "$TMP/results" | median; }
echo "medians:"
awk -v t="$(m http transparent 3)" -v e="$(m http explicit 3)" -v tc="$(m http transparent 4)" \
    -v ec="$(m http explicit 4)" 'BEGIN {
    printf "  http   transparent %s vs explicit %s req/s = %.3fx (target >= 0.95); CPU %s vs %s us/req = %.3fx\n",
           t, e, t / e, tc, ec, tc / ec }'
awk -v s="$(m https sni 3)" -v c="$(m https connect 3)" -v d="$(m https direct 3)" \
    -v sc="$(m https sni 4)" -v cc="$(m https connect 4)" 'BEGIN {
    printf "  https  SNI %s vs CONNECT %s MiB/s = %.3fx (target >= 0.9), vs direct %s = %.3fx; CPU %s vs %s ms/MiB\n",
           s, c, s / c, d, s / d, sc, cc }'
