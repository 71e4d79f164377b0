#!/usr/bin/env bash
# tools/fuzz.sh: long fuzzing runs, not part of the test command (which runs
# each target for FUZZ_SECONDS on a scratch copy of its corpus). Builds the
# libFuzzer targets with clang under ASan+UBSan (build-fuzz/), then runs each
# for MINUTES (default 10) with its dictionary (tests/fuzz/<prefix>.dict),
# new inputs going to var/fuzz/<target>/, crashes to var/fuzz/<target>/crash-*.
# At the end each corpus is minimized with -merge=1 into
# tests/fuzz/corpus/<target>.min/ (review it, then replace the committed
# corpus with it) and a table is printed: target, minutes, executions,
# coverage (cov:), crashes found.
#   tools/fuzz.sh [-m MINUTES | -s SECONDS] [TARGET...]   e.g. tools/fuzz.sh -m 1 sni radius
set -uo pipefail
cd "$(dirname "$0")/.."
SECS=600
while getopts "m:s:" o; do
  case $o in
    m) SECS=$((OPTARG * 60)) ;;
    s) SECS=$OPTARG ;;
    *) echo "usage: $0 [-m MINUTES | -s SECONDS] [TARGET...]" >&2; exit 2 ;;
  esac
done
[ "$SECS" -gt 0 ] 2>/dev/null || { echo "fuzz: the run time must be positive" >&2; exit 2; }
shift $((OPTIND - 1))
bash tools/setup.sh >/dev/null || { echo "fuzz: setup failed"; exit 1; }
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
    -Db_lundef=false >/dev/null || { echo "fuzz: meson setup failed"; exit 1; }
fi
ninja -C build-fuzz >/dev/null || { echo "fuzz: build failed"; exit 1; }
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for t in build-fuzz/tests/fuzz/fuzz-*; do
    [ -f "$t" ] && [ -x "$t" ] && targets+=("$(basename "$t" | sed 's/^fuzz-//; s/-/_/g')")
  done
fi
printf '%-18s %7s %12s %8s %7s\n' target seconds runs cov crashes >var/fuzz-summary.txt 2>/dev/null ||
  { mkdir -p var; printf '%-18s %7s %12s %8s %7s\n' target seconds runs cov crashes >var/fuzz-summary.txt; }
status=0
for c in "${targets[@]}"; do
  bin=build-fuzz/tests/fuzz/fuzz-${c//_/-}
  [ -x "$bin" ] || { echo "fuzz: no target $bin"; status=1; continue; }
  out=var/fuzz/$c; mkdir -p "$out"
  dict=(); [ -f "tests/fuzz/${c%%_*}.dict" ] && dict=(-dict="tests/fuzz/${c%%_*}.dict")
  echo "== $c: $SECS s"
  "$bin" -max_total_time="$SECS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    "${dict[@]}" -artifact_prefix="$out/" "$out" "tests/fuzz/corpus/$c" >"$out/log" 2>&1
  rc=$?
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/log" | awk '{print $2}')
  cov=$(grep -o 'cov: [0-9]*' "$out/log" | tail -1 | awk '{print $2}')
  crashes=$(ls "$out" | grep -c '^\(crash\|leak\|timeout\|oom\)-' || true)
  [ "$rc" -eq 0 ] && [ "$crashes" -eq 0 ] || { status=1; tail -20 "$out/log"; }
  rm -rf "tests/fuzz/corpus/$c.min"; mkdir -p "tests/fuzz/corpus/$c.min"
  "$bin" -merge=1 "tests/fuzz/corpus/$c.min" "tests/fuzz/corpus/$c" "$out" >/dev/null 2>&1
  printf '%-18s %7s %12s %8s %7s\n' "$c" "$SECS" "${runs:-?}" "${cov:-?}" "$crashes" | tee -a var/fuzz-summary.txt
done
echo; cat var/fuzz-summary.txt
exit $status
