#!/usr/bin/env bash
# tests/e2e/wccp_tshark.sh: Wireshark's WCCP dissector, an implementation
# independent of ours, decodes every WCCPv2 message proxy/wccp_pkt.c builds.
#
# build/tests/wccp-pcap writes each sample message (Here_I_Am hash and mask
# forms with capabilities and a shutdown command, I_See_You with a Router View
# and an Assignment Map, Redirect_Assign as Assignment Info, Alternate hash
# and Alternate mask, Removal_Query), without and then with MD5, as IPv4/UDP
# 2048 packets with real checksums, and prints what each frame is. Checked:
#   1. every frame is WCCP, of the message type and service id we built, with
#      the security option we built, and IP and UDP checksums tshark finds good;
#   2. the verbose decode has no "Malformed" and no expert info of Warning or
#      Error severity (length checks, missing or misplaced components, a
#      standard service with a priority, a non-zero hash revision, ...);
#   3. field values: the 1:3 hash assignment is 64 buckets to cache 0 then 192
#      to cache 1; the mask assignment gives 16 values to 10.0.0.9 and 48 to
#      10.0.0.10; receive ids, change numbers and the shutdown cache address.
#
# Needs tshark (tools/setup.sh installs it); exits 77 with one line saying why
# when it is missing or the tool is not built.
set -uo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.bash
source "$HERE/lib.bash"

WCCP_PCAP_BIN=${WCCP_PCAP_BIN:-$HERE/../../build/tests/wccp-pcap}
skip() { echo "SKIP: $*"; exit 77; }

command -v tshark >/dev/null || skip "tshark is not installed (tools/setup.sh installs it)"
[[ -x $WCCP_PCAP_BIN ]] || skip "build first ($WCCP_PCAP_BIN)"

e2e_init wccp
"$WCCP_PCAP_BIN" "$TMP/wccp.pcap" >"$TMP/expected" || { fail "wccp-pcap failed"; exit 1; }
FRAMES=$(wc -l <"$TMP/expected")
[[ $FRAMES -eq 16 ]] || fail "wccp-pcap wrote $FRAMES frames, expected 16"

TS=(tshark -n -r "$TMP/wccp.pcap" -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE)
field() {   # field FRAME NAME: the values of one field in one frame, comma-separated
    "${TS[@]}" -Y "frame.number == $1" -T fields -E separator=, -E aggregator=, -e "$2" 2>/dev/null
}

# 1. type, service, security, checksums, frame by frame
"${TS[@]}" -T fields -E separator=' ' -e frame.number -e wccp.message \
    -e wccp.service_info_std_id -e wccp.service_info_dyn_id -e wccp.security_info_option \
    -e ip.checksum.status -e udp.checksum.status 2>"$TMP/tshark.err" >"$TMP/fields" ||
    { fail "tshark failed: $(head -3 "$TMP/tshark.err")"; exit 1; }
while read -r frame type svc md5 name; do
    # std_id and dyn_id: exactly one is printed, so the line has 6 words
    got=$(awk -v f="$frame" '$1 == f {$1 = $1; print}' "$TMP/fields")
    want="$frame $type $svc $md5 1 1"
    if [[ $got == "$want" ]]; then
        pass "frame $frame ($name, md5=$md5): WCCP type $type, service $svc, checksums good"
    else
        fail "frame $frame ($name, md5=$md5): tshark says '$got', expected '$want'"
    fi
done <"$TMP/expected"

# 2. no malformed packet, no warning or error
"${TS[@]}" -V 2>/dev/null >"$TMP/verbose"
[[ $(grep -c '^Frame [0-9]*:' "$TMP/verbose") -eq $FRAMES ]] || fail "tshark -V did not show $FRAMES frames"
[[ $(grep -c '^Web Cache Communication Protocol' "$TMP/verbose") -eq $FRAMES ]] &&
    pass "all $FRAMES frames decoded as WCCP" || fail "not every frame decoded as WCCP"
if grep -n -i 'malformed\|Expert Info (Warning\|Expert Info (Error' "$TMP/verbose" >"$TMP/bad"; then
    fail "tshark reports problems: $(head -5 "$TMP/bad" | tr -s ' ' | tr '\n' ';')"
else
    pass "no Malformed, no expert Warning/Error in $(wc -l <"$TMP/verbose") lines of decode"
fi

# 3. field values
expect() {   # expect FRAME FIELD WANT WHAT
    local got
    got=$(field "$1" "$2")
    if [[ $got == "$3" ]]; then pass "frame $1: $4"; else fail "frame $1: $4: $2 is '${got:0:120}', expected '${3:0:120}'"; fi
}
frame_of() { awk -v n="$1" -v m="$2" '$5 == n && $4 == m {print $1}' "$TMP/expected"; }
rep() { local i out=; for ((i = 0; i < $2; i++)); do out+=${out:+,}$1; done; echo "$out"; }

for md5 in 0 1; do
    f=$(frame_of ra_hash $md5)
    expect "$f" wccp.bucket "$(rep 0 64),$(rep 1 192)" "hash buckets 1:3 (64 / 192)"
    expect "$f" wccp.router_identity.receive_id 18 "router receive id"
    expect "$f" wccp.router_assignment_element.change_num 5 "router member change number"
    f=$(frame_of ra_alt_hash $md5)
    expect "$f" wccp.bucket "$(rep 0 64),$(rep 1 192)" "alternate hash buckets 1:3"
    f=$(frame_of ra_alt_mask $md5)
    expect "$f" wccp.value_element.web_cache_ip.ipv4 "$(rep 10.0.0.9 16),$(rep 10.0.0.10 48)" \
        "mask values 16 / 48"
    expect "$f" wccp.mask_element.src_ip 0x00001741 "mask 0x1741 on the source address"
    f=$(frame_of hia_std_hash $md5)
    expect "$f" wccp.wc_identity_ip_address.ipv4 10.0.0.9 "web-cache identity"
    expect "$f" wccp.wc_view_info.change_num 3 "web-cache view change number"
    expect "$f" wccp.router_identity.receive_id 17 "receive id echoed in the view"
    f=$(frame_of hia_dyn_mask_caps_shutdown $md5)
    expect "$f" wccp.command_element_shudown_ip_address.ipv4 10.0.0.9 "shutdown command"
    expect "$f" wccp.capability_info.assignment_method_flag.mask 1 "mask assignment capability"
    f=$(frame_of isy_std_hash $md5)
    expect "$f" wccp.router_view.member_change_num 5 "router view member change number"
    expect "$f" wccp.assignment_key.change_num 2 "assignment key change number"
done

[[ $FAILED == 0 ]] || exit 1
echo "wccp_tshark: all checks passed"
