#!/usr/bin/env bash
# tools/wccp-gre.sh: the host side of WCCP GRE redirection for musproxy, per
# ../shared/docs/wccp.md 1.10: the kernel GRE tunnel from the router (for
# hosts WITH ip_gre), rp_filter off for the asymmetric path, and the
# nftables rules that hand the decapsulated port 80/443 traffic to a
# transparent listener (REDIRECT, or TPROXY with its policy route) and clamp
# the MSS of those connections to the tunnel's MTU.
#
#   tools/wccp-gre.sh [--dry-run] up --router-id ADDR --local ADDR [options]
#   tools/wccp-gre.sh [--dry-run] up --userspace [options]
#   tools/wccp-gre.sh [--dry-run] down [--userspace] [--mode M] [--tun NAME]
#
#   --router-id ADDR   the router's ID: the GRE source (a loopback, or on an ASA
#                      the highest interface address), not necessarily the
#                      address WCCP talks to
#   --local ADDR       this host's address the router sends GRE to
#   --dev IF           bind the tunnel to this interface (optional)
#   --tun NAME         the tunnel device (default wccp0)
#   --address A/LEN    its address (default 10.255.0.1/32; REDIRECT needs one)
#   --mtu N            its MTU (default 1472: 1500 minus 28 bytes of GRE)
#   --ports LIST       redirected TCP ports (default 80,443)
#   --mode redirect|tproxy   (default redirect)
#   --port N           musproxy's transparent listener (default 3129; tproxy:
#                      a listener with tproxy: true)
#   --mark N --table N TPROXY's fwmark and routing table (default 1 and 100)
#   --userspace        the kernel has no ip_gre: musproxy (gre: enabled)
#                      creates the TUN device itself, so only rp_filter and
#                      nftables are set up here
#   --dry-run          print the commands instead of running them
#
# `up` then `down` with the same options removes everything again. The
# nftables rules live in their own table (ip musproxy_wccp). It does not
# speak WCCP (musproxy does) and does not set up GRE return: packets
# musproxy declines are routed normally, which needs the router to accept
# them from the cache (the WCCP "return" method is not implemented).
set -euo pipefail

DRY=0 ACTION= RID= LOCAL= DEV= TUN=wccp0 ADDR=10.255.0.1/32 MTU=1472 PORTS=80,443
MODE=redirect PORT=3129 MARK=1 TABLE=100 USERSPACE=0
TABLE_NAME=musproxy_wccp CT_MARK=0x47

die() { echo "wccp-gre.sh: $*" >&2; exit 2; }
usage() { sed -n '9,29p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
is_ipv4() { [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] &&
    (( BASH_REMATCH[1] < 256 && BASH_REMATCH[2] < 256 && BASH_REMATCH[3] < 256 && BASH_REMATCH[4] < 256 )); }
is_num() { [[ $1 =~ ^[0-9]+$ ]] && (( $1 >= $2 && $1 <= $3 )); }

while (($#)); do
    case $1 in
    --dry-run) DRY=1 ;;
    up|down) ACTION=$1 ;;
    --router-id) RID=${2:?}; shift ;;
    --local) LOCAL=${2:?}; shift ;;
    --dev) DEV=${2:?}; shift ;;
    --tun) TUN=${2:?}; shift ;;
    --address) ADDR=${2:?}; shift ;;
    --mtu) MTU=${2:?}; shift ;;
    --ports) PORTS=${2:?}; shift ;;
    --mode) MODE=${2:?}; shift ;;
    --port) PORT=${2:?}; shift ;;
    --mark) MARK=${2:?}; shift ;;
    --table) TABLE=${2:?}; shift ;;
    --userspace) USERSPACE=1 ;;
    -h|--help) usage ;;
    *) die "unknown argument '$1' (--help)" ;;
    esac
    shift
done
[[ -n $ACTION ]] || die "say up or down"
if ((!USERSPACE)) && [[ $ACTION == up ]]; then
    is_ipv4 "$RID" || die "--router-id must be a numeric IPv4 address"
    is_ipv4 "$LOCAL" || die "--local must be a numeric IPv4 address"
    is_ipv4 "${ADDR%/*}" && { [[ $ADDR != */* ]] || is_num "${ADDR#*/}" 1 32; } ||
        die "--address must be A.B.C.D or A.B.C.D/LEN"
fi
[[ $TUN =~ ^[A-Za-z0-9._-]{1,15}$ ]] || die "--tun must be an interface name (1-15 characters)"
is_num "$MTU" 68 65535 || die "--mtu must be 68-65535"
is_num "$PORT" 1 65535 || die "--port must be 1-65535"
is_num "$MARK" 1 4294967295 && is_num "$TABLE" 1 4294967295 || die "--mark and --table must be numbers"
[[ $MODE == redirect || $MODE == tproxy ]] || die "--mode is redirect or tproxy"
for p in ${PORTS//,/ }; do is_num "$p" 1 65535 || die "--ports: '$p' is not a port"; done
[[ -n ${PORTS//,/} ]] || die "--ports is empty"
NFT_PORTS="{ ${PORTS//,/, } }"
MSS=$((MTU - 40))

run() {   # run CMD...: prints it (dry run) or runs it
    if ((DRY)); then printf '%s\n' "$*"; else "$@"; fi
}
nft_apply() {   # the ruleset on stdin
    local rules
    rules=$(cat)
    if ((DRY)); then printf "nft -f - <<'EOF'\n%s\nEOF\n" "$rules"; else nft -f - <<<"$rules"; fi
}

ruleset() {
    echo "table ip $TABLE_NAME {"
    if [[ $MODE == redirect ]]; then
        cat <<EOF
  chain pre_nat {
    type nat hook prerouting priority dstnat;
    iifname "$TUN" tcp dport $NFT_PORTS redirect to :$PORT
  }
EOF
    fi
    cat <<EOF
  chain pre_mangle {
    type filter hook prerouting priority mangle;
    iifname "$TUN" ct state new ct mark set $CT_MARK
EOF
    if [[ $MODE == tproxy ]]; then
        cat <<EOF
    meta l4proto tcp socket transparent 1 meta mark set $MARK accept
    iifname "$TUN" tcp dport $NFT_PORTS tproxy to :$PORT meta mark set $MARK accept
EOF
    fi
    cat <<EOF
  }
  chain out_mss {
    type filter hook output priority mangle;
    ct mark $CT_MARK tcp flags & (syn | ack) == syn | ack tcp option maxseg size set $MSS
  }
}
EOF
}

if [[ $ACTION == up ]]; then
    if ((!USERSPACE)); then
        run modprobe ip_gre
        run ip tunnel add "$TUN" mode gre remote "$RID" local "$LOCAL" ${DEV:+dev "$DEV"}
        run ip link set "$TUN" mtu "$MTU" up
        run ip addr add "$ADDR" dev "$TUN"
    fi
    # decapsulated packets carry client sources routed elsewhere
    run sysctl -w net.ipv4.conf.all.rp_filter=0
    ((USERSPACE)) || run sysctl -w "net.ipv4.conf.$TUN.rp_filter=0"
    if [[ $MODE == tproxy ]]; then
        run ip rule add fwmark "$MARK" lookup "$TABLE"
        run ip route add local 0.0.0.0/0 dev lo table "$TABLE"
    fi
    ruleset | nft_apply
else
    set +e      # remove whatever is there
    run nft delete table ip "$TABLE_NAME"
    if [[ $MODE == tproxy ]]; then
        run ip rule del fwmark "$MARK" lookup "$TABLE"
        run ip route del local 0.0.0.0/0 dev lo table "$TABLE"
    fi
    ((USERSPACE)) || run ip tunnel del "$TUN"
fi
