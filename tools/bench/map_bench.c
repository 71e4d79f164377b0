/*
 * tools/bench/map_bench.c: benchmark of the IP -> identity map (mus/map.c).
 *
 * Measures, and prints as markdown tables:
 *   1. time and memory (RSS delta from /proc/self/status, and bytes in use
 *      per glibc's mallinfo2) to apply a 100 000-session snapshot to an empty
 *      headend, then one over it (every identity changed), then the same
 *      again (nothing changed);
 *   2. lookups/s of one reader on an empty map and on a map of 100 000
 *      entries (random present addresses, absent ones, a hot set);
 *   3. lookups/s from 2 and from 4 reader threads (per thread and total)
 *      while a writer thread applies 10 000 updates/s to the 100 000-entry
 *      map, and the update rate the writer achieved.
 * Random lookups over 100 000 entries are bound by memory latency (bucket,
 * then entry: two dependent cache misses).
 *
 * Usage: mus-map-bench [seconds per concurrent run, default 2]
 * Build: ninja -C <release build dir> mus-map-bench (build_by_default: false).
 * Reader threads are not pinned: on a 2-core machine 4 readers plus the
 * writer share two cores, so per-thread rates fall accordingly.
 */
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../mus/map.h"

#define N_SESSIONS        100000
#define UPDATES_PER_S     10000
#define WRITER_TICK_US    1000      /* writer wakes up this often */
#define LOOKUP_BATCH      256       /* lookups between quiescent states */
#define MAX_READERS       4
#define SINGLE_RUN_S      1.0
#define HOT_SET           1000      /* clients active right now, in cache */

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* VmRSS in KiB, or -1. */
static long
rss_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static size_t
heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();

    return mi.uordblks + mi.hblkhd;
}

/* Address i of the benchmark: 10.a.b.c for the first 3/4, fd00::/64 for the rest. */
static void
bench_addr(unsigned i, mus_addr_t *a)
{
    char ip[48];

    if (i % 4 == 3)
        snprintf(ip, sizeof(ip), "fd00:0:0:1::%x:%x", i >> 16, i & 0xffffu);
    else
        snprintf(ip, sizeof(ip), "10.%u.%u.%u", (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff);
    if (mus_addr_parse(ip, a) != 0)
        abort();
}

/* A realistic session: short names and groups, as a VPN headend sends them. */
static void
bench_session(mus_session_t *s, unsigned i, unsigned gen)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->sid, sizeof(s->sid), "%08x-%u", i, gen);
    s->type = i % 10 == 0 ? MUS_ID_MACHINE : MUS_ID_USER;
    snprintf(s->name, sizeof(s->name), "user%u@corp.example", i);
    snprintf(s->domain, sizeof(s->domain), "CORP");
    snprintf(s->groups, sizeof(s->groups), "vpn-users,dept-%u,gen-%u", i % 40, gen);
    s->started = 1763800000 + gen;
    snprintf(s->client_ip, sizeof(s->client_ip), "198.51.%u.%u", (i >> 8) & 0xff, i & 0xff);
    snprintf(s->tunnel, sizeof(s->tunnel), "ssl");
}

static void
fill(mus_map_t *m, unsigned gen)
{
    mus_session_t s;
    mus_addr_t a;

    for (unsigned i = 0; i < N_SESSIONS; i++) {
        bench_session(&s, i, gen);
        bench_addr(i, &a);
        if (mus_map_add(m, 0, &s, &a, 1) != 1)
            abort();
    }
}

/* ---- readers ---- */

struct reader {
    pthread_t th;
    mus_map_t *m;
    const mus_addr_t *addrs;
    unsigned naddrs;
    atomic_bool *stop;
    unsigned long lookups, hits;
    double seconds;
};

static void *
reader_main(void *arg)
{
    struct reader *rd = arg;
    mus_map_reader_t *r = mus_map_reader_register(rd->m);
    mus_identity_t id;
    unsigned x = (unsigned)(uintptr_t)rd * 2654435761u;
    double t0 = now_s();

    if (r == NULL)
        abort();
    while (!atomic_load_explicit(rd->stop, memory_order_relaxed)) {
        for (unsigned i = 0; i < LOOKUP_BATCH; i++) {
            x = x * 1103515245u + 12345u;
            rd->hits += mus_map_lookup(rd->m, &rd->addrs[(x >> 4) % rd->naddrs], &id);
        }
        rd->lookups += LOOKUP_BATCH;
        mus_map_reader_quiescent(r);
    }
    rd->seconds = now_s() - t0;
    mus_map_reader_unregister(r);
    return NULL;
}

/* ---- the writer ---- */

struct writer {
    pthread_t th;
    mus_map_t *m;
    atomic_bool *stop;
    unsigned long updates;
    double seconds;
};

/* One update, alternating the two kinds the MUS thread applies most: an
 * `upd` that changes a session's identity (one replacement) and a tunnel
 * hand-over (del of the old sid, add of a new one on the same address). */
static void
writer_update(mus_map_t *m, unsigned long k)
{
    unsigned i = (unsigned)((k * 2654435761u) % N_SESSIONS);
    unsigned gen = (unsigned)(k / N_SESSIONS) + 1;
    mus_session_t s;
    mus_addr_t a;

    bench_addr(i, &a);
    if (k % 2 == 0) {
        bench_session(&s, i, gen);
        s.started = 1763800000;   /* same sid on the next update of i: same start */
        mus_map_add(m, 0, &s, &a, 1);
    } else {
        bench_session(&s, i, gen + 1000000);
        mus_map_add(m, 0, &s, &a, 1);
        bench_session(&s, i, gen);
        mus_map_del(m, 0, s.sid, &a, 1);   /* late del of the previous: ignored */
    }
}

static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    double t0 = now_s();

    while (!atomic_load_explicit(w->stop, memory_order_relaxed)) {
        double due = (now_s() - t0) * UPDATES_PER_S;
        while ((double)w->updates < due)
            writer_update(w->m, w->updates++);
        mus_map_reclaim(w->m);
        usleep(WRITER_TICK_US);
    }
    w->seconds = now_s() - t0;
    return NULL;
}

/* ---- runs ---- */

static double
single_reader_rate(mus_map_t *m, const mus_addr_t *addrs, unsigned n, double secs,
                   double *hit_ratio)
{
    atomic_bool stop = false;
    struct reader rd = {.m = m, .addrs = addrs, .naddrs = n, .stop = &stop};

    if (pthread_create(&rd.th, NULL, reader_main, &rd) != 0)
        abort();
    usleep((useconds_t)(secs * 1e6));
    atomic_store(&stop, true);
    pthread_join(rd.th, NULL);
    *hit_ratio = rd.lookups ? (double)rd.hits / (double)rd.lookups : 0;
    return (double)rd.lookups / rd.seconds;
}

static void
concurrent_run(mus_map_t *m, const mus_addr_t *addrs, unsigned nreaders, double secs)
{
    atomic_bool stop = false;
    struct reader rd[MAX_READERS];
    struct writer w = {.m = m, .stop = &stop};
    double total = 0;

    memset(rd, 0, sizeof(rd));
    for (unsigned i = 0; i < nreaders; i++) {
        rd[i] = (struct reader){.m = m, .addrs = addrs, .naddrs = N_SESSIONS, .stop = &stop};
        if (pthread_create(&rd[i].th, NULL, reader_main, &rd[i]) != 0)
            abort();
    }
    if (pthread_create(&w.th, NULL, writer_main, &w) != 0)
        abort();
    usleep((useconds_t)(secs * 1e6));
    atomic_store(&stop, true);
    pthread_join(w.th, NULL);
    for (unsigned i = 0; i < nreaders; i++)
        pthread_join(rd[i].th, NULL);

    printf("| %u readers |", nreaders);
    for (unsigned i = 0; i < MAX_READERS; i++) {
        if (i < nreaders) {
            double r = (double)rd[i].lookups / rd[i].seconds;
            total += r;
            printf(" %.2f M |", r / 1e6);
        } else {
            printf(" - |");
        }
    }
    printf(" %.2f M | %.0f/s | %lu |\n", total / 1e6, (double)w.updates / w.seconds,
           (unsigned long)mus_map_reclaim(m));
}

static void
snapshot_run(mus_map_t *m, unsigned gen, const char *label)
{
    mus_session_t s;
    mus_addr_t a;
    long rss0 = rss_kib();
    size_t heap0 = heap_in_use();
    double t0 = now_s(), t1, t2;
    mus_map_counters_t c;

    mus_map_snapshot_begin(m, 1);
    for (unsigned i = 0; i < N_SESSIONS; i++) {
        bench_session(&s, i, gen);
        bench_addr(i, &a);
        if (mus_map_snapshot_add(m, 1, &s, &a, 1) != 0)
            abort();
    }
    t1 = now_s();
    mus_map_snapshot_end(m, 1);
    t2 = now_s();
    mus_map_reclaim(m);
    mus_map_counters(m, 1, &c);
    printf("| %s | %lu | %.1f ms | %.1f ms | %+.1f MiB | %+.1f MiB |\n", label,
           (unsigned long)c.entries, (t1 - t0) * 1e3, (t2 - t1) * 1e3,
           (double)(rss_kib() - rss0) / 1024.0,
           ((double)heap_in_use() - (double)heap0) / (1024.0 * 1024.0));
}

int
main(int argc, char **argv)
{
    double secs = argc > 1 ? atof(argv[1]) : 2.0;
    mus_addr_t *addrs = malloc(N_SESSIONS * sizeof(*addrs));
    mus_addr_t *absent = malloc(N_SESSIONS * sizeof(*absent));
    mus_map_t *m;
    double empty_rate, full_rate, miss_rate, hot_rate, hr_e, hr_f, hr_m, hr_h;
    long rss0;
    size_t heap0;

    if (addrs == NULL || absent == NULL || secs <= 0)
        return 1;
    for (unsigned i = 0; i < N_SESSIONS; i++) {
        bench_addr(i, &addrs[i]);
        bench_addr(i + N_SESSIONS * 2, &absent[i]);
    }
    printf("# mus map benchmark (%ld CPUs online, MUS_MAP_BUCKETS %u)\n\n",
           sysconf(_SC_NPROCESSORS_ONLN), MUS_MAP_BUCKETS);

    /* 1. snapshots of 100 000 sessions, first: a fresh heap, so the RSS
     *    delta is not hidden by memory freed earlier */
    m = mus_map_new();
    if (m == NULL || mus_map_headend_set(m, 1, "asa-1") != 0)
        return 1;
    printf("## Snapshot of 100 000 sessions (1 address each)\n\n");
    printf("| snapshot | entries after | staging (begin+add) | apply (end) | RSS delta | heap "
           "delta |\n|---|---|---|---|---|---|\n");
    snapshot_run(m, 1, "into an empty headend");
    snapshot_run(m, 2, "over the first (all identities changed)");
    snapshot_run(m, 2, "same again (nothing changed)");
    mus_map_free(m);

    /* 2. one reader, empty vs full */
    rss0 = rss_kib();
    heap0 = heap_in_use();
    m = mus_map_new();
    if (m == NULL || mus_map_headend_set(m, 0, "asa-0") != 0 ||
        mus_map_headend_set(m, 1, "asa-1") != 0)
        return 1;
    empty_rate = single_reader_rate(m, addrs, N_SESSIONS, SINGLE_RUN_S, &hr_e);
    fill(m, 1);
    mus_map_reclaim(m);
    printf("Memory: empty map + 100 000 sessions via mus_map_add: heap %+.1f MiB (RSS %+.1f "
           "MiB, low: it reuses pages the snapshot runs freed)\n\n",
           ((double)heap_in_use() - (double)heap0) / (1024.0 * 1024.0),
           (double)(rss_kib() - rss0) / 1024.0);
    full_rate = single_reader_rate(m, addrs, N_SESSIONS, SINGLE_RUN_S, &hr_f);
    miss_rate = single_reader_rate(m, absent, N_SESSIONS, SINGLE_RUN_S, &hr_m);
    hot_rate = single_reader_rate(m, addrs, HOT_SET, SINGLE_RUN_S, &hr_h);
    printf("## One reader, no writer\n\n| map | lookups/s | hit ratio |\n|---|---|---|\n");
    printf("| empty | %.2f M | %.2f |\n", empty_rate / 1e6, hr_e);
    printf("| 100 000 entries, present addresses | %.2f M | %.2f |\n", full_rate / 1e6, hr_f);
    printf("| 100 000 entries, absent addresses | %.2f M | %.2f |\n", miss_rate / 1e6, hr_m);
    printf("| 100 000 entries, %u hot addresses | %.2f M | %.2f |\n\n", HOT_SET,
           hot_rate / 1e6, hr_h);

    /* 3. readers + writer at 10 000 updates/s */
    printf("## Readers while the writer applies %u updates/s (100 000 entries, %.1f s)\n\n",
           UPDATES_PER_S, secs);
    printf("| run | reader 1 | reader 2 | reader 3 | reader 4 | total lookups/s | writer "
           "updates/s | limbo at end |\n|---|---|---|---|---|---|---|---|\n");
    concurrent_run(m, addrs, 2, secs);
    concurrent_run(m, addrs, 4, secs);
    printf("\n");

    mus_map_free(m);
    free(addrs);
    free(absent);
    return 0;
}
