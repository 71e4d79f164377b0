#!/usr/bin/env python3
"""Check musproxy's performance targets against a proxies.sh raw.tsv.

Usage: targets.py RESULTS/raw.tsv [PROXY...]   (default PROXY: musproxy)

Targets (from the project plan):
  ka1k      req/s >= 2x squid          (GET /1k keep-alive, 50 connections)
  ka1k      req/s >  tinyproxy
  connect   MiB/s >= 0.8x direct       (CONNECT tunnel bulk, curl -p)
  idle      KB/conn < 8                (idle_bare and idle_req, RSS growth per
                                        idle client connection; must keep >= 90%
                                        of the connections open to count)
  and, when haproxy / trafficserver ran (issue 12, part B):
  ka1m      MiB/s >= 1.1x the better of haproxy and trafficserver
  ka1k      req/s >= 1.1x haproxy
  close1k   req/s >= 1.1x haproxy
  connect   MiB/s >= 0.9x direct
  p99       on ka1k, close1k, ka1m: no worse than the best peer's

Ratios are the median over rounds of the per-round ratio (both sides measured
in the same round), like the summary's "xdirect" columns. Prints one line per
check: PASS / FAIL / N/A (no data, e.g. peer skipped). Exit status 0 if no
check FAILed (N/A is not a failure), 1 otherwise.
"""
import csv
import statistics
import sys
from collections import defaultdict


def load(path):
    d = defaultdict(dict)  # (target, workload, metric) -> {round: value}
    with open(path) as f:
        for row in csv.DictReader(f, delimiter="\t"):
            try:
                v = float(row["value"])
            except ValueError:
                continue
            if v == v:
                d[(row["target"], row["workload"], row["metric"])][int(row["round"])] = v
    return d


def med(v):
    return statistics.median(v) if v else None


def ratio(d, a, b, w, m):
    x, y = d.get((a, w, m), {}), d.get((b, w, m), {})
    rs = [x[r] / y[r] for r in x if r in y and y[r]]
    return med(rs), len(rs)


PEERS = ("haproxy", "trafficserver")


def cpu_note(d, p, w, metric="proxy_cpu_us_per_req"):
    c = med(list(d.get((p, w, metric), {}).values()))
    return f"{c:.1f}" if c else "-"


def speed_targets(d, p, out):
    """Issue 12 part B: ahead of HAProxy and Traffic Server, same rounds."""
    ran = [q for q in PEERS if any(k[0] == q for k in d)]
    if not ran:
        return
    # 1 MiB keep-alive against the better peer of each round
    x = d.get((p, "ka1m", "mib_s"), {})
    rs = []
    for r in x:
        best = max((d.get((q, "ka1m", "mib_s"), {}).get(r, 0) for q in ran), default=0)
        if best:
            rs.append(x[r] / best)
    if rs:
        out("PASS" if med(rs) >= 1.1 else "FAIL",
            f"{p} ka1m MiB/s >= 1.1x the better of {'/'.join(ran)}: {med(rs):.2f}x "
            f"(CPU us/req {p} {cpu_note(d, p, 'ka1m')}, "
            + ", ".join(f"{q} {cpu_note(d, q, 'ka1m')}" for q in ran) + f"; {len(rs)} round(s))")
    for w in ("ka1k", "close1k"):
        r, n = ratio(d, p, "haproxy", w, "req_s")
        if r is None:
            out("N/A", f"{p} {w} req/s >= 1.1x haproxy: no paired data")
            continue
        out("PASS" if r >= 1.1 else "FAIL",
            f"{p} {w} req/s >= 1.1x haproxy: {r:.2f}x (CPU us/req {cpu_note(d, p, w)} vs "
            f"{cpu_note(d, 'haproxy', w)}; {n} round(s))")
    r, n = ratio(d, p, "direct", "connect", "mib_s")
    if r is not None:
        out("PASS" if r >= 0.9 else "FAIL",
            f"{p} CONNECT MiB/s >= 0.9x direct: {r:.2f}x ({n} round(s))")
    for w in ("ka1k", "close1k", "ka1m"):
        mine = med(list(d.get((p, w, "p99_ms"), {}).values()))
        peers = [(med(list(d.get((q, w, "p99_ms"), {}).values())), q) for q in ran]
        peers = [(v, q) for v, q in peers if v is not None]
        if mine is None or not peers:
            continue
        best, who = min(peers)
        out("PASS" if mine <= best else "FAIL",
            f"{p} {w} p99 <= best peer's: {mine:.2f} ms vs {best:.2f} ms ({who})")


def main():
    d = load(sys.argv[1])
    proxies = sys.argv[2:] or ["musproxy"]
    failed = 0
    lines = []

    def out(status, text):
        nonlocal failed
        failed += status == "FAIL"
        lines.append(f"{status:4}  {text}")

    # feature variants against plain musproxy, same rounds
    for p, need, what in (("musproxy-policy", 0.90, "the example policy"),
                          ("musproxy-map", 0.95, "100 000 map entries"),
                          ("musproxy-store", 0.95, "the transaction store on")):
        if p not in proxies:
            continue
        r, n = ratio(d, p, "musproxy", "ka1k", "req_s")
        if r is None:
            out("FAIL", f"{p} ({what}) ka1k req/s >= {need:.2f}x musproxy: no paired data")
            continue
        a = med(list(d[(p, "ka1k", "req_s")].values()))
        b = med(list(d[("musproxy", "ka1k", "req_s")].values()))
        cpu_p = med(list(d.get((p, "ka1k", "proxy_cpu_us_per_req"), {}).values()))
        cpu_m = med(list(d.get(("musproxy", "ka1k", "proxy_cpu_us_per_req"), {}).values()))
        cpu = f"; CPU {cpu_p:.1f} vs {cpu_m:.1f} us/req" if cpu_p and cpu_m else ""
        out("PASS" if r >= need else "FAIL",
            f"{p} ({what}) ka1k req/s >= {need:.2f}x musproxy: {r:.2f}x ({a:,.0f} vs {b:,.0f} req/s{cpu}, median of {n} round(s))")
    proxies = [p for p in proxies if p not in ("musproxy-policy", "musproxy-map", "musproxy-store")]
    # musproxy-nolog (access log off) is checked against the peers like musproxy

    for p in proxies:
        if not any(k[0] == p for k in d):
            out("FAIL", f"{p}: no measurements at all (failed validation or did not start? see validation.txt)")
            continue
        for peer, need, strict in (("squid", 2.0, False), ("tinyproxy", 1.0, True)):
            r, n = ratio(d, p, peer, "ka1k", "req_s")
            a, b = med(list(d.get((p, "ka1k", "req_s"), {}).values())), med(list(d.get((peer, "ka1k", "req_s"), {}).values()))
            cond = f"{'>' if strict else '>='} {need:g}x {peer}"
            if r is None:
                out("N/A", f"{p} ka1k req/s {cond}: no paired data")
                continue
            ok = r > need if strict else r >= need
            out("PASS" if ok else "FAIL",
                f"{p} ka1k req/s {cond}: {r:.2f}x ({a:,.0f} vs {b:,.0f} req/s, median of {n} round(s))")
        r, n = ratio(d, p, "direct", "connect", "mib_s")
        if r is None:
            out("N/A" if (p, "connect", "errors") not in d else "FAIL",
                f"{p} CONNECT MiB/s >= 0.8x direct: no throughput measured")
        else:
            a = med(list(d[(p, "connect", "mib_s")].values()))
            b = med(list(d[("direct", "connect", "mib_s")].values()))
            out("PASS" if r >= 0.8 else "FAIL",
                f"{p} CONNECT MiB/s >= 0.8x direct: {r:.2f}x ({a:,.0f} vs {b:,.0f} MiB/s, median of {n} round(s))")
        for mode in ("idle_bare", "idle_req"):
            kb = med(list(d.get((p, mode, "kb_per_conn"), {}).values()))
            if kb is None:
                out("N/A", f"{p} {mode} KB/conn < 8: no data")
                continue
            opened = med(list(d.get((p, mode, "opened"), {}).values())) or 0
            still = med(list(d.get((p, mode, "still_open"), {}).values())) or 0
            if opened == 0 or still < 0.9 * opened:
                out("FAIL", f"{p} {mode} KB/conn < 8: proxy kept only {still:.0f}/{opened:.0f} connections open")
                continue
            out("PASS" if kb < 8 else "FAIL",
                f"{p} {mode} KB/conn < 8: {kb:.2f} KB/conn ({still:.0f}/{opened:.0f} still open)")
        speed_targets(d, p, out)
    print("\n".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
