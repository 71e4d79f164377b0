#!/bin/sh
# tools/bench/store_bench.sh: the transaction store's benchmark, on SQLite
# files in a scratch directory under /tmp that is deleted at the end:
#   1. the writer's sustained rows/s (store-bench writer, ROUNDS runs of
#      WRITER_ROWS rows, the default batch and BATCHES others);
#   2. the queue offered more than the writer takes (OVER_RATE rows/s for
#      OVER_S seconds): what is accepted, dropped and written, and the
#      longest submit;
#   3. ROWS transactions over the last 30 days loaded through the writer,
#      then the reports over the last 30 days (the dashboard, the other
#      aggregates and web tracking searches), QUERY_ROUNDS times each.
# It prints the load average around each step: the machine is shared.
# Not here: the proxy (tools/bench.sh). Env: BUILD (default build),
# ROWS (10000000), WRITER_ROWS (2000000), ROUNDS (3), BATCHES ("512 4096"),
# OVER_RATE (200000), OVER_S (10), QUERY_ROUNDS (5), KEEP_DIR=1 keeps the
# files (for a second look; delete them yourself).
set -eu

BUILD=${BUILD:-build}
ROWS=${ROWS:-10000000}
WRITER_ROWS=${WRITER_ROWS:-2000000}
ROUNDS=${ROUNDS:-3}
BATCHES=${BATCHES:-512 4096}
OVER_RATE=${OVER_RATE:-200000}
OVER_S=${OVER_S:-10}
QUERY_ROUNDS=${QUERY_ROUNDS:-5}

cd "$(dirname "$0")/../.."
ninja -C "$BUILD" store-bench >/dev/null
bench="$BUILD/store-bench"
dir=$(mktemp -d /tmp/musproxy-store-bench.XXXXXX)
if [ "${KEEP_DIR:-0}" = 1 ]; then
    echo "files kept in $dir"
else
    trap 'rm -rf "$dir"' EXIT INT TERM
fi

load() { echo "  (load average: $(cut -d' ' -f1-3 /proc/loadavg))"; }

echo "## store-bench, $(git rev-parse --short HEAD 2>/dev/null || echo '?'), $(date -u +%Y-%m-%dT%H:%MZ)"
echo "$(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'),"\
     "SQLite $(sqlite3 --version 2>/dev/null | cut -d' ' -f1 || echo '?'), $dir on" \
     "$(df -T "$dir" | awk 'NR == 2 { print $2 }')"
load

echo "### 1. writer, sustained"
for batch in 0 $BATCHES; do
    i=1
    while [ "$i" -le "$ROUNDS" ]; do
        rm -f "$dir"/w.db*
        "$bench" writer "$dir/w.db" "$WRITER_ROWS" "$batch"
        i=$((i + 1))
    done
    load
done

echo "### 2. queue over capacity"
rm -f "$dir"/o.db*
"$bench" overload "$dir/o.db" "$OVER_RATE" "$OVER_S"
load

echo "### 3. $ROWS transactions over 30 days, then the reports"
rm -f "$dir"/big.db*
"$bench" load "$dir/big.db" "$ROWS" 30
ls -l "$dir"/big.db* | awk '{ s += $5 } END { printf "  file: %.0f MiB\n", s / 1048576 }'
load
"$bench" query "$dir/big.db" "$QUERY_ROUNDS"
load
