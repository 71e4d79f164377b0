#!/usr/bin/env bash
# tools/test.sh: installs what is missing, then builds and runs the whole test
# suite: the Criterion unit and integration tests in a normal build and in an
# ASan+UBSan build, each libFuzzer target briefly over its corpus (clang), and
# the end-to-end scripts in tests/e2e. Ends with "N passed, N failed" and exits
# non-zero if anything failed. FUZZ_SECONDS (default 20) sets the fuzz time.
set -uo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
# Criterion's runner leaks a little at exit; everything else must be leak-free.
export LSAN_OPTIONS="suppressions=$top/tests/lsan.supp:print_suppressions=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
bash tools/setup.sh || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0 failed=0 skipped=0
failures=()
note() { printf '== %s\n' "$*"; }
pass() { passed=$((passed + 1)); printf 'PASS %s\n' "$1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); printf 'FAIL %s\n' "$1"; }

# meson_suite DIR LABEL [setup args...]: configure, build, run meson test and
# count the individual test cases it reports.
meson_suite() {
  local dir=$1 label=$2; shift 2
  note "build $label ($dir)"
  if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; fail "$label: meson setup"; return; }
  fi
  if ! ninja -C "$dir" >"$dir.build.log" 2>&1; then
    tail -50 "$dir.build.log"; fail "$label: build"; return
  fi
  note "test $label"
  meson test -C "$dir" --print-errorlogs --num-processes 1 >"$dir.test.log" 2>&1
  local rc=$?
  cat "$dir.test.log" | grep -E '^ *[0-9]+/[0-9]+ |^(Ok|Fail|Skipped|Timeout|Expected Fail|Unexpected Pass):' || true
  # count Criterion test cases from the JSON log: one line per meson test
  local counts
  counts=$(python3 - "$dir/meson-logs/testlog.json" <<'PY'
import json, sys, re
ok = bad = 0
for line in open(sys.argv[1]):
    t = json.loads(line)
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    m = re.search(r"Synthesis: Tested: (\d+) \| Passing: (\d+) \| Failing: (\d+) \| Crashing: (\d+)", out)
    if m and t["result"] in ("OK", "FAIL", "ERROR", "TIMEOUT"):
        ok += int(m.group(2)); bad += int(m.group(3)) + int(m.group(4))
        if t["result"] != "OK" and int(m.group(3)) + int(m.group(4)) == 0:
            bad += 1
    elif t["result"] == "OK":
        ok += 1
    elif t["result"] != "SKIP":
        bad += 1
print(ok, bad)
PY
)
  local ok=${counts% *} bad=${counts#* }
  # which tests failed and Criterion's assertion lines, printed again at the
  # very end so that the tail of the output names them
  python3 - "$dir/meson-logs/testlog.json" "$label" >"$dir.failures.txt" <<'PY'
import json, sys, re
for line in open(sys.argv[1]):
    t = json.loads(line)
    if t["result"] in ("OK", "SKIP", "EXPECTEDFAIL"):
        continue
    out = (t.get("stdout") or "") + (t.get("stderr") or "")
    print("%s: %s %s" % (sys.argv[2], t["name"], t["result"]))
    keep = [l for l in out.splitlines()
            if re.search(r"\[FAIL\]|Assertion|Failed|ERROR|runtime error|Sanitizer|SUMMARY|CRASH|signal", l)]
    for l in keep[:12]:
        print("    " + l[:300])
PY
  passed=$((passed + ok)); failed=$((failed + bad))
  printf '%s: %s test cases passed, %s failed\n' "$label" "$ok" "$bad"
  if [ "$rc" -ne 0 ]; then
    failures+=("$label (see $dir/meson-logs/testlog.txt)")
    [ "$bad" -gt 0 ] || { failed=$((failed + 1)); }
  fi
}

# The release build is what tools/run.sh starts: it must compile (-O3 warns more).
note "release build (tools/run.sh)"
if { [ -f build-release/build.ninja ] || meson setup build-release --buildtype=release >build-release.setup.log 2>&1; } &&
   ninja -C build-release musproxy musctl mus-headend >build-release.build.log 2>&1; then
  pass "release build compiles"
else
  tail -30 build-release.build.log 2>/dev/null; fail "release build"
fi

meson_suite build "debug build"
meson_suite build-asan "ASan+UBSan build" -Db_sanitize=address,undefined -Db_lundef=false

# libFuzzer targets, each run briefly on a scratch copy of its corpus
note "fuzz targets (${FUZZ_SECONDS}s each, $(nproc) at a time)"
if [ ! -f build-fuzz/build.ninja ]; then
  CC=clang meson setup build-fuzz -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
    -Db_lundef=false >build-fuzz.setup.log 2>&1 || { cat build-fuzz.setup.log; fail "fuzz: meson setup"; }
fi
# fuzz_one TARGET OUT: runs one target on a scratch copy of its corpus; OUT
# gets "PASS|FAIL line" and, on failure, the log's tail.
fuzz_one() {
  local target=$1 out=$2 name corpus scratch dict=()
  name=$(basename "$target"); corpus=${name#fuzz-}; corpus=${corpus//-/_}
  scratch=$(mktemp -d)
  [ -f "tests/fuzz/${corpus%%_*}.dict" ] && dict=(-dict="tests/fuzz/${corpus%%_*}.dict")
  if "$target" -max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
       -artifact_prefix="$scratch/" "$scratch" "tests/fuzz/corpus/$corpus" >"$scratch/log" 2>&1; then
    echo "PASS fuzz $name ($(grep -c . <(ls "$scratch") ) files, $(grep -o 'stat::number_of_executed_units: [0-9]*' "$scratch/log" | awk '{print $2}') runs)" >"$out"
  else
    { echo "FAIL fuzz $name"; tail -30 "$scratch/log"; } >"$out"
  fi
  rm -rf "$scratch"
}
if [ -f build-fuzz/build.ninja ] && ninja -C build-fuzz >build-fuzz.build.log 2>&1; then
  # one target per core at a time; the results are read in order afterwards
  fuzz_out=$(mktemp -d) jobs_max=$(nproc) i=0
  for target in build-fuzz/tests/fuzz/fuzz-*; do
    [ -f "$target" ] && [ -x "$target" ] || continue
    while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
    i=$((i + 1)); fuzz_one "$target" "$fuzz_out/$(printf %03d $i)" &
  done
  wait
  for r in "$fuzz_out"/*; do
    [ -f "$r" ] || continue
    line=$(head -1 "$r")
    case $line in
      "PASS "*) pass "${line#PASS }" ;;
      *) tail -n +2 "$r"; fail "${line#FAIL }" ;;
    esac
  done
  rm -rf "$fuzz_out"
else
  tail -30 build-fuzz.build.log 2>/dev/null; fail "fuzz: build"
fi

# end-to-end scripts: exit 0 pass, 77 skip (with a reason), anything else fail
note "end-to-end tests"
for t in tests/e2e/*.sh; do
  [ -f "$t" ] || continue
  MUSPROXY_BIN="$top/build/musproxy" ORIGIN_BIN="$top/build/mp-origin" \
    timeout 600 bash "$t" >"build/$(basename "$t").log" 2>&1
  rc=$?
  sed 's/^/    /' "build/$(basename "$t").log" | tail -40
  case $rc in
    0) pass "e2e $(basename "$t")" ;;
    77) skipped=$((skipped + 1)); printf 'SKIP %s: %s\n' "$t" "$(tail -1 "build/$(basename "$t").log")" ;;
    *) fail "e2e $(basename "$t") (exit $rc)" ;;
  esac
done

echo
for f in build build-asan; do [ -s "$f.failures.txt" ] && cat "$f.failures.txt"; done
for f in "${failures[@]}"; do echo "failed: $f"; done
[ "$skipped" -eq 0 ] || echo "$skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
