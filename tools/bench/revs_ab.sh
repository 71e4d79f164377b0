#!/usr/bin/env bash
# tools/bench/revs_ab.sh [ROUNDS] LABEL=REV[:EXTRA_YAML] ...: interleaved A/B
# of musproxy builds from different revisions (does a change cost CPU per
# request?). Each REV is built once in release mode into
# /tmp/musproxy-ab/build-<commit> (kept for the next run); EXTRA_YAML, a
# file, is appended to that variant's configuration (e.g. to switch off a
# section a newer revision has and an older one does not). Every variant
# runs as a single-worker musproxy with its access log on
# (tools/bench/conf/musproxy.yaml) against one origin (mp-origin /size/1024),
# side by side, and wrk (1 thread, 50 keep-alive connections, 5 s) hits them
# in turn, ROUNDS times (default 5), so slow phases of a shared machine hit
# every variant. Prints req/s and musproxy CPU µs per request (user+sys of
# its process) per round, then the medians and the ratios to the first
# variant. Loopback only. Needs wrk and build/mp-origin.
#   tools/bench/revs_ab.sh 7 base=b162408 head=HEAD:tools/bench/conf/ab-no-store.yaml
set -euo pipefail
REPO=$(cd "$(dirname "$0")/../.." && pwd)
ORIGIN=${ORIGIN_BIN:-$REPO/build/mp-origin}
ROUNDS=5
if [[ ${1:-} =~ ^[0-9]+$ ]]; then ROUNDS=$1; shift; fi
(($# >= 2)) || { echo "usage: $0 [ROUNDS] LABEL=REV[:EXTRA_YAML] LABEL=REV..." >&2; exit 2; }
CACHE=/tmp/musproxy-ab
W=$(mktemp -d /tmp/musproxy-revs.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$W"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
bg() { setsid "$@" >>"$W/log" 2>&1 </dev/null & PIDS+=("$!"); }

# build REV: prints the musproxy binary of that commit
build() {
    local commit dir
    commit=$(git -C "$REPO" rev-parse --verify "$1^{commit}")
    dir=$CACHE/build-$commit
    if [[ ! -x $dir/musproxy ]]; then
        mkdir -p "$CACHE"
        rm -rf "$CACHE/src-$commit" "$dir"
        git -C "$REPO" worktree add --detach -f "$CACHE/src-$commit" "$commit" >&2
        meson setup "$dir" "$CACHE/src-$commit" --buildtype=release -Dtests=false \
            -Dwerror=false >&2
        ninja -C "$dir" musproxy >&2
        git -C "$REPO" worktree remove --force "$CACHE/src-$commit" >&2
    fi
    echo "$dir/musproxy"
}

OPORT=$(free_port)
bg "$ORIGIN" --listen "127.0.0.1:$OPORT"
LABELS=()
declare -A BIN PORT PID
for spec in "$@"; do
    label=${spec%%=*} rest=${spec#*=}
    rev=${rest%%:*} extra=
    [[ $rest == *:* ]] && extra=${rest#*:}
    LABELS+=("$label")
    BIN[$label]=$(build "$rev")
    PORT[$label]=$(free_port)
    mkdir -p "$W/$label/run"
    sed -e "s|@PORT@|${PORT[$label]}|g" -e "s|@WORK@|$W/$label|g" -e "s|@ORIGIN_PORT@|$OPORT|g" \
        -e "s|@ACCESS_LOG@|$W/$label/access.log|g" "$REPO/tools/bench/conf/musproxy.yaml" \
        >"$W/$label/musproxy.yaml"
    [[ -n $extra ]] && cat "$REPO/$extra" >>"$W/$label/musproxy.yaml"
    # in the variant's directory (relative default paths), and in this shell so PIDS keeps it
    cd "$W/$label" && bg "${BIN[$label]}" -c "$W/$label/musproxy.yaml" && cd "$REPO"
done
for label in "${LABELS[@]}"; do
    for _ in $(seq 100); do
        curl -s -o /dev/null --max-time 1 -x "127.0.0.1:${PORT[$label]}" \
            "http://127.0.0.1:$OPORT/size/1024" && break
        sleep 0.1
    done
    PID[$label]=$(pgrep -f "musproxy -c $W/$label/musproxy.yaml")
    echo "$label: ${BIN[$label]} pid ${PID[$label]} port ${PORT[$label]}"
done
cat >"$W/fwd.lua" <<LUA
wrk.path = "http://127.0.0.1:$OPORT/size/1024"
wrk.headers["Host"] = "127.0.0.1:$OPORT"
LUA
source "$REPO/tools/bench/ab_lib.sh"
ab_rounds "$ROUNDS" "$W/results" "$W/fwd.lua" "${LABELS[@]}"
ab_summary "$W/results" "${LABELS[@]}"
