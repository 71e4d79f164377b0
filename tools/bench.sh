#!/usr/bin/env bash
# tools/bench.sh: one command for the forward-proxy benchmark.
#
#   1. builds musproxy in release mode (build-release/, created if missing,
#      -Dwerror=false -Dtests=false),
#   2. runs tools/bench/proxies.sh: direct (the ceiling), musproxy, squid,
#      tinyproxy, haproxy, Traffic Server, interleaved round by round, on loopback only,
#   3. writes everything to var/bench/<timestamp>/ (gitignored; var/bench/latest
#      points at the newest run) and prints the overview table plus the
#      performance targets as PASS/FAIL with the measured ratios.
#
# Usage: tools/bench.sh [options] [harness options] [NAME...]
#   --quick          smoke run: 1 round, 3 s wrk runs, 500 idle conns, 300 CONNECTs
#   --store          also run musproxy-store (the transaction store on, as
#                    shipped; the musproxy line has it off, like the peers)
#   --auto           also run musproxy-auto (workers: auto; not comparable 1:1)
#   --features       also run musproxy-policy (the shipped example policy) and
#                    musproxy-map (100 000 VPN users mapped by a mus-headend):
#                    targets >= 0.90x and >= 0.95x musproxy's ka1k req/s
#   --no-access-log  musproxy without access log (default: logging on; squid's is off)
#   --no-build       do not (re)build musproxy; use $BUILD/musproxy as it is
#   --rev REV        benchmark a committed revision instead of the working tree:
#                    `git archive REV` into var/bench/src/<sha>/, built there
#                    (immune to edits in progress; the sha goes into meta.txt)
#   --wait-load X    before starting, wait (max 15 min) until the 1-min load average < X
#   --strict         exit 1 if a target FAILs (default: report only)
#   -h, --help
# Harness options are passed through to tools/bench/proxies.sh (see
# `tools/bench/proxies.sh -h`): -r ROUNDS (default 3), -d SECS, -c N, -C N,
# -w WORKLOADS, -n N, -s N, -P OFFSET, -p SPEC, -o DIR, -x.
# NAMEs select proxies (default: musproxy squid tinyproxy haproxy trafficserver;
# direct always runs).
# Environment: BUILD (default build-release), ORIGIN_PORT (18080),
# WORK (/tmp/musproxy-bench), WRK_CPUS / SERVER_CPUS (taskset pinning).
#
# A full run (3 rounds, 4 targets) takes about 11-14 minutes on 2 cores. Do not
# run two benchmarks at once, and prefer a quiet machine: load average is
# recorded in meta.txt at each round.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH=$REPO/tools/bench
export BUILD=${BUILD:-$REPO/build-release}

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'; }
die() { echo "bench.sh: $*" >&2; exit 2; }

QUICK=0 AUTO=0 STORE=0 FEATURES=0 BUILD_IT=1 STRICT=0 WAIT_LOAD='' OUT='' REV=''
PASS=() NAMES=()
while (($#)); do
    case $1 in
        --quick) QUICK=1 ;;
        --auto) AUTO=1 ;;
        --store) STORE=1 ;;
        --features) FEATURES=1 ;;
        --no-access-log) export MUSPROXY_ACCESS_LOG=off ;;
        --no-build) BUILD_IT=0 ;;
        --strict) STRICT=1 ;;
        --wait-load) WAIT_LOAD=${2:?--wait-load needs a number}; shift ;;
        --rev) REV=${2:?--rev needs a revision}; shift ;;
        -h|--help) usage; exit 0 ;;
        -o) OUT=${2:?-o needs a directory}; shift ;;
        -[rdcCwnsfpP]) PASS+=("$1" "${2:?$1 needs a value}"); shift ;;
        -x) PASS+=("$1") ;;
        -*) die "unknown option $1 (see --help)" ;;
        *) NAMES+=("$1") ;;
    esac
    shift
done
((${#NAMES[@]})) || NAMES=(musproxy squid tinyproxy haproxy trafficserver)
((STORE)) && NAMES+=(musproxy-store)
((AUTO)) && NAMES+=(musproxy-auto)
((FEATURES)) && NAMES+=(musproxy-policy musproxy-map)
# --quick first, so that explicit harness options given after it still win
((QUICK)) && PASS=(-r 1 -d 3 -n 500 -s 300 "${PASS[@]}")

want_musproxy=0
for n in "${NAMES[@]}"; do [[ $n == musproxy* ]] && want_musproxy=1; done

# ---------------------------------------------------------------- build
SRC=$REPO
if [[ -n $REV ]]; then
    sha=$(git -C "$REPO" rev-parse --verify "$REV^{commit}") || die "unknown revision $REV"
    SRC=$REPO/var/bench/src/$sha
    if [[ ! -f $SRC/meson.build ]]; then
        mkdir -p "$SRC" && git -C "$REPO" archive "$sha" | tar -x -C "$SRC" || die "git archive $sha failed"
    fi
    export BUILD=$SRC/build-release
    echo "bench.sh: revision $(git -C "$REPO" log -1 --format='%h %s' "$sha" | cut -c1-100)" >&2
fi
if ((want_musproxy)); then
    if ((BUILD_IT)); then
        if [[ ! -f $BUILD/build.ninja ]]; then
            # werror off: at -O3 GCC 12 emits -Wmaybe-uninitialized warnings
            # the debugoptimized build does not see; they must not stop a benchmark.
            echo "bench.sh: meson setup $BUILD --buildtype=release -Dtests=false -Dwerror=false" >&2
            meson setup "$BUILD" "$SRC" --buildtype=release -Dtests=false -Dwerror=false >&2 \
                || die "meson setup failed"
        fi
        ninja -C "$BUILD" musproxy musctl mus-headend >&2 || die "building musproxy failed"
    fi
    [[ -x $BUILD/musproxy ]] || die "$BUILD/musproxy missing (build it, or select only other proxies: tools/bench.sh squid tinyproxy)"
    echo "bench.sh: $("$BUILD"/musproxy --version 2>&1 | head -1) ($BUILD, $(meson introspect "$BUILD" --buildoptions 2>/dev/null \
        | python3 -c 'import json,sys; print("buildtype=" + next(o["value"] for o in json.load(sys.stdin) if o["name"]=="buildtype"))' 2>/dev/null))" >&2
fi

# ---------------------------------------------------------------- load
load1() { cut -d' ' -f1 /proc/loadavg; }
if [[ -n $WAIT_LOAD ]]; then
    for ((i = 0; i < 90; i++)); do
        awk -v l="$(load1)" -v m="$WAIT_LOAD" 'BEGIN { exit !(l < m) }' && break
        ((i % 6 == 0)) && echo "bench.sh: load average $(load1) >= $WAIT_LOAD, waiting" >&2
        sleep 10
    done
fi
echo "bench.sh: load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)" >&2
awk -v l="$(load1)" 'BEGIN { exit !(l > 1.0) }' \
    && echo "bench.sh: WARNING: the machine is busy; absolute numbers will be low, compare ratios" >&2

# ---------------------------------------------------------------- run
TS=$(date +%Y%m%d-%H%M%S)
OUT=${OUT:-$REPO/var/bench/$TS}
mkdir -p "$OUT"
ln -sfn "$OUT" "$REPO/var/bench/latest" 2>/dev/null || true
echo "bench.sh: tools/bench/proxies.sh ${PASS[*]} -o $OUT ${NAMES[*]}" | tee "$OUT/command.txt" >&2

# progress (stderr) to the terminal and run.log; the summary (stdout) to a file
"$BENCH/proxies.sh" "${PASS[@]}" -o "$OUT" "${NAMES[@]}" \
    > "$OUT/proxies.stdout" 2> >(tee "$OUT/run.log" >&2)
rc=$?
sleep 0.2
((rc == 0)) || die "proxies.sh failed (exit $rc); see $OUT/run.log"
[[ -f $OUT/summary.md ]] || exit 0        # -x: validation only

echo
echo "== validation"
cat "$OUT/validation.txt"
echo
sed -n '/^## Overview/,$p' "$OUT/summary.md"
echo "Load average at each round:"
grep 'loadavg' "$OUT/meta.txt" | sed 's/^/  /'
grep -q '^musproxy: .*access_log=on' "$OUT/meta.txt" \
    && [[ -f ${WORK:-/tmp/musproxy-bench}/logs/musproxy-access.log ]] \
    && echo "musproxy access log (last run only): $(wc -l < "${WORK:-/tmp/musproxy-bench}/logs/musproxy-access.log") lines"
echo
echo "== targets"
PROXIES=()
for n in "${NAMES[@]}"; do [[ $n == musproxy* ]] && PROXIES+=("$n"); done
trc=0
if ((${#PROXIES[@]})); then
    python3 "$BENCH/tools/targets.py" "$OUT/raw.tsv" "${PROXIES[@]}" | tee "$OUT/targets.txt"
    trc=${PIPESTATUS[0]}
else
    echo "(musproxy not selected: no targets to check)"
fi
echo
echo "Full summary: $OUT/summary.md (raw: raw.tsv, meta.txt, wrk.log)"
((STRICT && trc)) && exit 1
exit 0
