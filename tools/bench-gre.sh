#!/usr/bin/env bash
# tools/bench-gre.sh: musproxy's userspace GRE decapsulation (proxy/gre.c)
# against plain REDIRECT, in one run, in the namespace lab of
# tests/e2e/wccp_gre.sh (client -> router -> proxy -> origin):
#   gre:   the router sends the client's port 80 GRE-encapsulated (gre-encap)
#          to musproxy, which decapsulates into wccp0; nftables REDIRECT;
#   plain: the router routes the client's port 8080 to the proxy host as next
#          hop (no GRE); nftables REDIRECT on its interface; same listener.
# For each path and direction it runs curl in the client namespace: a
# download of SIZE_MB (GRE carries the client's ACKs) and an upload of
# UP_MB (POST /echo: GRE carries the data), ROUNDS times alternating, and
# prints MiB/s, musproxy's CPU per MiB (all threads, from /proc), the
# mp-gre thread's share and the emulated router's (gre-encap, which competes
# for the same cores), then the medians' GRE/plain ratios. The kernel's TCP
# input of a decapsulated packet runs inside mp-gre's write() to the TUN
# device and is charged to musproxy; on the plain path the same work runs
# in softirq context and is charged to nobody here: the CPU ratio overstates
# what decapsulation itself costs.
#
#   sudo tools/bench-gre.sh            # SIZE_MB=1024 UP_MB=256 ROUNDS=3
# Builds nothing: needs build/musproxy, build/mp-origin and
# build/tests/gre-encap. Exits 77 with "SKIP: reason" when the machine
# cannot (root, namespaces, TUN, nft).
set -uo pipefail
cd "$(dirname "$0")/.."
. tests/e2e/lib.bash
MUSPROXY_BIN=${MUSPROXY_BIN:-build/musproxy}
ORIGIN_BIN=${ORIGIN_BIN:-build/mp-origin}
ENCAP_BIN=${ENCAP_BIN:-build/tests/gre-encap}
SIZE_MB=${SIZE_MB:-1024} UP_MB=${UP_MB:-256} ROUNDS=${ROUNDS:-3}
e2e_init bench_gre

skip() { echo "SKIP: $*"; exit 77; }
[[ $(id -u) == 0 ]] || skip "needs root (network namespaces, raw sockets, TUN)"
for b in "$MUSPROXY_BIN" "$ORIGIN_BIN" "$ENCAP_BIN"; do [[ -x $b ]] || skip "$b not built"; done
command -v nft >/dev/null || skip "nft is not installed"

C=bc-$$ R=br-$$ P=bp-$$ O=bo-$$
trap 'e2e_cleanup; for ns in "$C" "$R" "$P" "$O"; do ip netns del "$ns" 2>/dev/null; done' EXIT
for ns in "$C" "$R" "$P" "$O"; do ip netns add "$ns" || skip "cannot create network namespaces"; done
veth() {   # veth NS1 IF1 ADDR1 NS2 IF2 ADDR2
    ip link add "$2" type veth peer name "$5" || skip "no veth"
    ip link set "$2" netns "$1"; ip link set "$5" netns "$4"
    ip -n "$1" addr add "$3" dev "$2"; ip -n "$4" addr add "$6" dev "$5"
    ip -n "$1" link set "$2" up; ip -n "$4" link set "$5" up
}
for ns in "$C" "$R" "$P" "$O"; do ip -n "$ns" link set lo up; done
veth "$C" c0-$$ 10.79.1.2/24 "$R" rc-$$ 10.79.1.1/24
veth "$R" rp-$$ 10.79.2.1/24 "$P" p0-$$ 10.79.2.2/24
veth "$R" ro-$$ 10.79.3.1/24 "$O" o0-$$ 10.79.3.2/24
ip -n "$C" route add default via 10.79.1.1
ip -n "$P" route add default via 10.79.2.1
ip -n "$O" route add default via 10.79.3.1
ip netns exec "$R" sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
    net.ipv4.conf.default.rp_filter=0
ip -n "$R" tuntap add dev genc0 mode tun || skip "cannot create a TUN device"
ip -n "$R" link set genc0 mtu 1472 up
ip -n "$R" rule add iif rc-$$ ipproto tcp dport 80 lookup 100
ip -n "$R" route add default dev genc0 table 100
ip -n "$R" rule add iif rc-$$ ipproto tcp dport 8080 lookup 101
ip -n "$R" route add default via 10.79.2.2 table 101
start_bg "$TMP/encap.log" ip netns exec "$R" "$ENCAP_BIN" --tun genc0 --local 10.79.2.1 --cache 10.79.2.2
EPID=$BG_PID
ip netns exec "$P" bash tools/wccp-gre.sh up --userspace --tun wccp0 --port 3129 >/dev/null ||
    skip "nftables rules cannot be loaded"
ip netns exec "$P" nft -f - <<EOF
table ip plain {
  chain pre_nat {
    type nat hook prerouting priority dstnat;
    iifname "p0-$$" tcp dport 8080 redirect to :3129
  }
}
EOF
for a in 10.79.3.2:80 10.79.3.2:8080; do
    start_bg "$TMP/origin.log" ip netns exec "$O" "$ORIGIN_BIN" --listen "$a"
done
cat >"$TMP/musproxy.yaml" <<EOF
proxy:
  listen: [ { address: "0.0.0.0:3129", mode: transparent } ]
  workers: 1
  clients: [10.79.1.0/24]
  access_log: off
mus: { control_socket: off, remote_users: ip_ranges }
store: { path: off }
gre: { enabled: true, tun: wccp0, address: 10.79.9.1/32, routers: [10.79.2.1] }
EOF
start_bg "$TMP/musproxy.log" ip netns exec "$P" "$MUSPROXY_BIN" -c "$TMP/musproxy.yaml"
MPID=$BG_PID
for _ in $(seq 100); do ip netns exec "$P" ss -Hltn "sport = :3129" | grep -q . && break; sleep 0.1; done
[[ $(cat /proc/$MPID/comm 2>/dev/null) == musproxy ]] || { echo "FAIL: musproxy did not start"; cat "$TMP/musproxy.log"; exit 1; }
GRE_TID=$(grep -l '^mp-gre$' /proc/$MPID/task/*/comm | head -1 | cut -d/ -f5)

ticks() { awk '{print $14 + $15}' "$1"; }   # utime + stime of a /proc stat file
run() {   # run PATH DIR: one transfer; prints "MiB/s cpu_ms/MiB mp-gre_ms/MiB encap_ms/MiB"
    local port=80 out p0 g0 e0 p1 g1 e1 mib
    [[ $1 == plain ]] && port=8080
    p0=$(ticks /proc/$MPID/stat) g0=$(ticks /proc/$MPID/task/$GRE_TID/stat) e0=$(ticks /proc/$EPID/stat)
    if [[ $2 == down ]]; then
        mib=$SIZE_MB
        out=$(ip netns exec "$C" curl -s --noproxy '*' -o /dev/null -w '%{size_download} %{time_total}' \
            "http://10.79.3.2:$port/size/$((SIZE_MB << 20))")
    else
        mib=$UP_MB
        # the origin's count of the body (chunked: curl's own count has the framing)
        out=$(head -c $((UP_MB << 20)) /dev/zero | ip netns exec "$C" curl -s --noproxy '*' \
            -T - -X POST -w " %{time_total}" "http://10.79.3.2:$port/echo" | tr "\n" " " |
            sed -n 's/.*"length":\([0-9]*\).* \([0-9.]*\) *$/\1 \2/p')
    fi
    p1=$(ticks /proc/$MPID/stat) g1=$(ticks /proc/$MPID/task/$GRE_TID/stat) e1=$(ticks /proc/$EPID/stat)
    awk -v o="$out" -v mib="$mib" -v p=$((p1 - p0)) -v g=$((g1 - g0)) -v e=$((e1 - e0)) \
        -v hz="$(getconf CLK_TCK)" 'BEGIN {
        split(o, f, " "); if (f[1] != mib * 1048576) { print "ERR bytes " f[1]; exit }
        k = 1000 / hz / mib
        printf "%.1f %.2f %.2f %.2f\n", mib / f[2], p * k, g * k, e * k }'
}
median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }

echo "userspace GRE vs plain REDIRECT: download ${SIZE_MB} MiB, upload ${UP_MB} MiB, $ROUNDS rounds, 1 worker, $(nproc) cores"
printf '%-6s %-5s %10s %12s %14s %14s\n' path dir MiB/s "cpu ms/MiB" "mp-gre ms/MiB" "encap ms/MiB"
for dir in down up; do
    for ((i = 0; i < ROUNDS; i++)); do
        for path in gre plain; do
            r=$(run $path $dir)
            [[ $r == ERR* ]] && { echo "FAIL: $path $dir: $r"; exit 1; }
            echo "$path $dir $r" >>"$TMP/results"
            printf '%-6s %-5s %10s %12s %14s %14s\n' $path $dir $r
        done
    done
done
echo "medians (GRE / plain):"
for dir in down up; do
    for col in 3 4; do
        for path in gre plain; do
            awk -v p=$path -v d=$dir -v c=$col '$1 == p && $2 == d {print $c}' "$TMP/results" | median >"$TMP/m.$path.$col"
        done
    done
    awk -v d=$dir -v gt="$(cat "$TMP/m.gre.3")" -v pt="$(cat "$TMP/m.plain.3")" \
        -v gc="$(cat "$TMP/m.gre.4")" -v pc="$(cat "$TMP/m.plain.4")" 'BEGIN {
        printf "  %-4s throughput %s vs %s MiB/s = %.2fx; musproxy CPU %s vs %s ms/MiB = %.2fx\n",
               d, gt, pt, gt / pt, gc, pc, (pc > 0 ? gc / pc : 0) }'
done
