# tools/bench/ab_lib.sh: the interleaved rounds and the summary shared by the
# A/B scripts (features_ab.sh, revs_ab.sh); sourced, not run. The caller
# declares the associative arrays PORT (label -> proxy port) and PID (label
# -> musproxy pid) and writes a wrk Lua script for its request.

# ab_rounds ROUNDS RESULTS LUA LABEL...: ROUNDS times, wrk (1 thread, 50
# keep-alive connections, 5 s) on each label in turn; one line per run in
# RESULTS: "round R LABEL req/s N cpu_us/req U" (user+sys of the pid).
ab_rounds() {
    local rounds=$1 results=$2 lua=$3 r label c0 c1 out rps n us
    shift 3
    : >"$results"
    for r in $(seq "$rounds"); do
        for label in "$@"; do
            c0=$(awk '{print $14 + $15}' "/proc/${PID[$label]}/stat")
            out=$(wrk -t1 -c50 -d5s -s "$lua" "http://127.0.0.1:${PORT[$label]}")
            c1=$(awk '{print $14 + $15}' "/proc/${PID[$label]}/stat")
            rps=$(awk '/Requests\/sec/{print $2}' <<<"$out")
            n=$(awk '/requests in/{print $1}' <<<"$out")
            us=$(python3 -c "print(round(($c1 - $c0) * 1e6 / $(getconf CLK_TCK) / $n, 2))")
            echo "round $r $label req/s $rps cpu_us/req $us" | tee -a "$results"
        done
    done
}

# ab_summary RESULTS LABEL...: the medians per label and the ratios to the first, as a table.
ab_summary() {
    python3 - "$@" <<'PY'
import statistics, sys
d = {}
for line in open(sys.argv[1]):
    f = line.split()
    d.setdefault(f[2], []).append((float(f[4]), float(f[6])))
labels = sys.argv[2:]
m = {v: (statistics.median(x[0] for x in r), statistics.median(x[1] for x in r)) for v, r in d.items()}
a = labels[0]
print(f"\n| variant | req/s (median) | x {a} | musproxy CPU µs/req (median) | x {a} |\n|---|---|---|---|---|")
for v in labels:
    print(f"| {v} | {m[v][0]:,.0f} | {m[v][0] / m[a][0]:.3f} | {m[v][1]:.2f} | {m[v][1] / m[a][1]:.3f} |")
PY
}
