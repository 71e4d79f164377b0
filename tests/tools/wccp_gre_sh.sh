#!/usr/bin/env bash
# tests/tools/wccp_gre_sh.sh: tools/wccp-gre.sh --dry-run, whose commands this
# kernel (no ip_gre) cannot run: the kernel-GRE setup printed exactly (the
# tunnel from the router ID, MTU, address, rp_filter, the nftables table),
# TPROXY's policy route and rule, `down` undoing `up`, --userspace leaving
# the device to musproxy, bad arguments refused; each printed ruleset is
# checked by `nft -c` in a scratch network namespace when that can run
# (root with nft), and applied for real there with --userspace.
set -uo pipefail
cd "$(dirname "$0")/../.."
S=tools/wccp-gre.sh
FAILED=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILED=1; }
NFT_NS=
if [[ $(id -u) == 0 ]] && command -v nft >/dev/null && ip netns add "wgt-$$" 2>/dev/null; then
    NFT_NS=wgt-$$
    trap 'ip netns del "$NFT_NS"' EXIT
fi
# the ruleset between the heredoc markers of a dry run, checked by nft -c
nft_check() {
    [[ -n $NFT_NS ]] || return 0
    sed -n "/^nft -f - <<'EOF'$/,/^EOF$/p" <<<"$1" | sed '1d;$d' |
        ip netns exec "$NFT_NS" nft -c -f - 2>&1
}

# ---- kernel GRE, REDIRECT
out=$(bash $S --dry-run up --router-id 192.0.2.1 --local 192.0.2.10 --dev eth0 --port 3129)
want="modprobe ip_gre
ip tunnel add wccp0 mode gre remote 192.0.2.1 local 192.0.2.10 dev eth0
ip link set wccp0 mtu 1472 up
ip addr add 10.255.0.1/32 dev wccp0
sysctl -w net.ipv4.conf.all.rp_filter=0
sysctl -w net.ipv4.conf.wccp0.rp_filter=0
nft -f - <<'EOF'
table ip musproxy_wccp {
  chain pre_nat {
    type nat hook prerouting priority dstnat;
    iifname \"wccp0\" tcp dport { 80, 443 } redirect to :3129
  }
  chain pre_mangle {
    type filter hook prerouting priority mangle;
    iifname \"wccp0\" ct state new ct mark set 0x47
  }
  chain out_mss {
    type filter hook output priority mangle;
    ct mark 0x47 tcp flags & (syn | ack) == syn | ack tcp option maxseg size set 1432
  }
}
EOF"
if [[ $out == "$want" ]] && err=$(nft_check "$out"); then
    pass "redirect: tunnel from the router ID, mtu 1472, address, rp_filter 0, REDIRECT + MSS 1432${NFT_NS:+ (nft -c accepts it)}"
else
    fail "redirect: got
$out
${err:-}"
fi

# ---- TPROXY, other ports and MTU
out=$(bash $S --dry-run up --router-id 10.1.1.1 --local 10.1.1.2 --mode tproxy --port 3130 \
      --ports 80,443,8080 --mtu 1400 --tun gre9 --mark 7 --table 77)
if grep -qx "ip rule add fwmark 7 lookup 77" <<<"$out" &&
   grep -qx "ip route add local 0.0.0.0/0 dev lo table 77" <<<"$out" &&
   grep -qx '    iifname "gre9" tcp dport { 80, 443, 8080 } tproxy to :3130 meta mark set 7 accept' <<<"$out" &&
   grep -qx "    meta l4proto tcp socket transparent 1 meta mark set 7 accept" <<<"$out" &&
   grep -q "maxseg size set 1360$" <<<"$out" && ! grep -q redirect <<<"$out" &&
   grep -qx "ip link set gre9 mtu 1400 up" <<<"$out" && err=$(nft_check "$out"); then
    pass "tproxy: fwmark 7 -> table 77 local route, tproxy to :3130 for 80/443/8080, MSS 1360 for mtu 1400"
else
    fail "tproxy: got
$out
${err:-}"
fi

# ---- down undoes up
out=$(bash $S --dry-run down --mode tproxy --tun gre9 --mark 7 --table 77)
want="nft delete table ip musproxy_wccp
ip rule del fwmark 7 lookup 77
ip route del local 0.0.0.0/0 dev lo table 77
ip tunnel del gre9"
if [[ $out == "$want" ]]; then pass "down: the table, the policy route and the tunnel are removed"
else fail "down: got
$out"; fi

# ---- userspace: no tunnel, musproxy makes the TUN device
out=$(bash $S --dry-run up --userspace --port 3129)
if ! grep -q "ip tunnel\|ip addr\|modprobe\|conf.wccp0" <<<"$out" &&
   grep -qx "sysctl -w net.ipv4.conf.all.rp_filter=0" <<<"$out" &&
   grep -q 'iifname "wccp0" tcp dport { 80, 443 } redirect to :3129' <<<"$out" &&
   [[ $(bash $S --dry-run down --userspace) == "nft delete table ip musproxy_wccp" ]]; then
    pass "userspace: only rp_filter and nftables (musproxy creates wccp0)"
else
    fail "userspace: got
$out"
fi
if [[ -n $NFT_NS ]]; then
    ip netns exec "$NFT_NS" bash $S up --userspace --port 3129 >/dev/null &&
        listed=$(ip netns exec "$NFT_NS" nft list table ip musproxy_wccp) &&
        ip netns exec "$NFT_NS" bash $S down --userspace &&
        ! ip netns exec "$NFT_NS" nft list table ip musproxy_wccp >/dev/null 2>&1 &&
        grep -q 'redirect to :3129' <<<"$listed" &&
        pass "userspace: applied for real in a scratch namespace and removed again" ||
        fail "userspace for real: $listed"
fi

# ---- refused
bad=0
for args in "up" "up --router-id 192.0.2.300 --local 192.0.2.10" "up --router-id 192.0.2.1" \
            "up --userspace --ports 80,x" "up --userspace --mode dnat" "up --userspace --tun ../x" \
            "up --userspace --mtu 40" "sideways"; do
    if bash $S --dry-run $args >/dev/null 2>&1 || [[ $? != 2 ]]; then
        fail "refused: '$args' was accepted"; bad=1
    fi
done
((bad)) || pass "refused: no action, bad router ID, missing --local, bad ports, mode, name, mtu"
exit $FAILED
