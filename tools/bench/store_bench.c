/*
 * tools/bench/store_bench.c: benchmark of the transaction store (db/txnstore.c)
 * and the report queries (db/report.c) on a real SQLite file.
 *
 *   store-bench writer PATH ROWS [BATCH]
 *       sustained writer rows/s: one submitter keeps the queue fed (when it
 *       is full it yields and tries again, so nothing is dropped) until ROWS
 *       are written; rows/s = ROWS / (last commit - first submit).
 *   store-bench overload PATH RATE SECONDS [QUEUE]
 *       one submitter offers RATE rows/s for SECONDS, as the proxy would
 *       (a full queue drops, never waits): accepted, dropped, written, the
 *       deepest backlog, and the longest submit call.
 *   store-bench load PATH ROWS DAYS
 *       fills PATH through the writer (lossless, as `writer`) with ROWS
 *       transactions spread evenly over the last DAYS days.
 *   store-bench query PATH ROUNDS
 *       latency of the reports over the last 30 days (now - 30 d .. now,
 *       the admin UI's "30d"): the dashboard, sites, blocked, timeline, and
 *       web tracking searches; median and worst of ROUNDS.
 *
 * The traffic: 50 users (2 % unidentified, users 0-19 remote), 500 hosts
 * chosen by a Zipf law (s = 1), a user stays on a host for runs of about 8
 * requests (a page and its objects), 20 categories by host, blocks from two
 * categories and 1 % ACL denials. Records are prebuilt (a pool of 4096 with
 * their own URLs), so the submitter costs what a proxy thread's submit does.
 * Every row is a pure function of its number: two runs write the same file.
 *
 * Not here: the proxy (tools/bench.sh), the UI's HTTP layer (admin/).
 * Build: ninja -C build store-bench (build_by_default: false);
 * tools/bench/store_bench.sh runs the whole set.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../../db/report.h"
#include "../../db/reportdoc.h"
#include "../../db/txnstore.h"

#define N_USERS       50
#define N_REMOTE      20
#define N_HOSTS       500
#define N_CATS        20
#define RUN_LEN       8          /* mean requests per (user, host) run */
#define POOL          4096       /* prebuilt records */
#define DAY_MS        86400000LL
#define ERR_LEN       1024
#define QUERY_DAYS    30
#define QUEUE_DEFAULT TXNSTORE_QUEUE_DEFAULT
#define BACKLOG_MIN   16384      /* the lossless fill keeps 4 batches queued, at least this */

/* The clock id's time in seconds. */
static double
clock_s(clockid_t id)
{
    struct timespec ts = {0, 0};
    return clock_gettime(id, &ts) == 0 ? (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 : 0;
}

#define now_s() clock_s(CLOCK_MONOTONIC)
#define wall_ms() ((int64_t)(clock_s(CLOCK_REALTIME) * 1000))

/* splitmix64: the row generator's randomness. */
static uint64_t
mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static double zipf_cdf[N_HOSTS];

static void
zipf_init(void)
{
    double sum = 0, acc = 0;

    for (int i = 0; i < N_HOSTS; i++)
        sum += 1.0 / (i + 1);
    for (int i = 0; i < N_HOSTS; i++) {
        acc += 1.0 / (i + 1) / sum;
        zipf_cdf[i] = acc;
    }
}

static int
zipf_pick(uint64_t rnd)
{
    double u = (double)(rnd >> 11) / (double)(1ULL << 53);
    int lo = 0, hi = N_HOSTS - 1;

    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The prebuilt pool: record k's user, host and decision are fixed; the
 * generator picks records so users keep their host for runs. */
static txn_record_t *pool;
static int pool_user[POOL];

static void
pool_build(void)
{
    pool = calloc(POOL, sizeof(*pool));
    if (pool == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    zipf_init();
    for (unsigned k = 0; k < POOL; k++) {
        txn_record_t *r = &pool[k];
        uint64_t x = mix(k * 7919 + 1);
        int u = (int)(k % N_USERS), h = zipf_pick(mix(x)), cat = h % N_CATS;
        bool ident = x % 50 != 0, remote = u < N_REMOTE, acl = x % 100 == 7;
        bool block = acl || cat == 3 || cat == 7;

        pool_user[k] = u;
        r->elapsed_ms = x % 3000;
        snprintf(r->client, sizeof(r->client), remote ? "10.8.%u.%u" : "192.168.%u.%u", u / 200,
                 u % 200 + 10);
        r->mode = x % 3 == 0 ? TXN_MODE_TRANSPARENT : TXN_MODE_EXPLICIT;
        r->result = block ? TXN_TCP_DENIED : x % 4 == 0 ? TXN_TCP_TUNNEL : TXN_TCP_MISS;
        r->status = block ? 403 : 200;
        r->bytes_out = block ? 1200 + x % 300 : 300 + (x >> 8) % 200000;
        txn_copy_str(r->method, sizeof(r->method), r->result == TXN_TCP_TUNNEL ? "CONNECT" : "GET");
        if (r->result == TXN_TCP_TUNNEL)
            r->url_len = (size_t)snprintf(r->url, sizeof(r->url), "h%03d.example%d.com:443", h,
                                          h % 7);
        else
            r->url_len = (size_t)snprintf(r->url, sizeof(r->url),
                                          "http://h%03d.example%d.com/static/%llx/asset-%u.js"
                                          "?v=%llu", h, h % 7,
                                          (unsigned long long)(x >> 20) % 100000, k,
                                          (unsigned long long)x % 1000);
        if (ident)
            snprintf(r->user, sizeof(r->user), "user%02d", u);
        r->hier = TXN_HIER_DIRECT;
        snprintf(r->server, sizeof(r->server), "198.51.100.%d", h % 250 + 1);
        txn_copy_str(r->mime, sizeof(r->mime), block ? "text/html" : "application/javascript");
        r->decided = !acl;
        r->decision = acl ? TXN_DECISION_NONE : block ? TXN_DECISION_BLOCK : TXN_DECISION_ALLOW;
        r->remote = remote;
        txn_copy_str(r->user_source, sizeof(r->user_source), remote ? "headend" : "basic");
        txn_copy_str(r->identity_type, sizeof(r->identity_type), ident ? "user" : "");
        txn_copy_str(r->headend, sizeof(r->headend), remote ? "hq-asa" : "");
        txn_copy_str(r->identity_profile, sizeof(r->identity_profile), remote ? "vpn" : "office");
        txn_copy_str(r->access_policy, sizeof(r->access_policy),
                     acl ? "" : remote ? "remote-users" : "office-users");
        snprintf(r->rule, sizeof(r->rule), "%s", acl ? "" : block ? (cat == 3 ? "no-gambling" :
                                                                     "no-malware") : "");
        if (cat != 0)
            snprintf(r->category, sizeof(r->category), "cat-%02d", cat);
        txn_copy_str(r->decision_tag, sizeof(r->decision_tag),
                     acl ? "" : block ? "BLOCK_CATEGORY" : "ALLOW_DEFAULT");
    }
}

/* Row i: a user, who stays on the pool record it had for a run. */
static const txn_record_t *
row(uint64_t i)
{
    static uint32_t last[N_USERS];
    uint64_t x = mix(i);
    unsigned u = (unsigned)(x % N_USERS);

    if ((x >> 32) % RUN_LEN == 0 || last[u] == 0)
        last[u] = (uint32_t)(u + N_USERS * ((x >> 40) % (POOL / N_USERS))) + 1;
    return &pool[last[u] - 1];
}

static txnstore_t *
open_store(const char *path, unsigned batch, size_t queue)
{
    txnstore_config_t cfg = {.path = path, .batch_max = batch, .queue_max = queue};
    char err[ERR_LEN];
    txnstore_t *s = txnstore_open(&cfg, err, sizeof(err));

    if (s == NULL) {
        fprintf(stderr, "store-bench: %s\n", err);
        exit(1);
    }
    return s;
}

/* CPU seconds of this process's threads named name (see txnstore.c). */
static double
thread_cpu_s(const char *name)
{
    char path[300], buf[1024];
    long tick = sysconf(_SC_CLK_TCK);
    double sum = 0;
    DIR *d = opendir("/proc/self/task");
    struct dirent *e;

    while (d != NULL && (e = readdir(d)) != NULL) {
        unsigned long ut, stt;
        FILE *f;
        char *p;
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "/proc/self/task/%s/stat", e->d_name);
        if ((f = fopen(path, "r")) == NULL)
            continue;
        if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL &&
            strncmp(strchr(buf, '(') + 1, name, (size_t)(p - strchr(buf, '(') - 1)) == 0 &&
            strlen(name) == (size_t)(p - strchr(buf, '(') - 1) &&
            sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &stt) == 2)
            sum += (double)(ut + stt) / (double)tick;
        fclose(f);
    }
    if (d != NULL)
        closedir(d);
    return sum;
}

/* Submits rows [0, n) with times t0 + i * step_ms, keeping at most 4
 * batches (BACKLOG_MIN at least) queued (the submitter sleeps meanwhile, so the writer
 * has a core and the queue's pages are not all touched); returns the
 * seconds from the first submit until every row is written, and in
 * writer_cpu[0] and [1] the CPU seconds of the writer and checkpoint
 * threads. */
static double
fill(txnstore_t *s, uint64_t n, int64_t t0, double step_ms, unsigned batch, double *writer_cpu)
{
    txn_record_t r;
    txnstore_stats_t st;
    double start = now_s();
    uint64_t backlog = 4 * (uint64_t)(batch ? batch : TXNSTORE_BATCH_DEFAULT);

    if (backlog < BACKLOG_MIN)
        backlog = BACKLOG_MIN;

    for (uint64_t i = 0; i < n; i++) {
        memcpy(&r, row(i), sizeof(r));
        r.end_ms = t0 + (int64_t)(i * step_ms);
        if (i % 256 == 0)
            for (;;) {
                txnstore_stats(s, &st);
                if (st.queued < backlog)
                    break;
                usleep(500);
            }
        while (!txnstore_submit(s, &r))
            usleep(500);
        if (i % 1000000 == 999999)
            fprintf(stderr, "  %llu rows submitted, %.1f s\n", (unsigned long long)i + 1,
                    now_s() - start);
    }
    for (;;) {
        txnstore_stats(s, &st);
        if (st.written + st.lost >= n)
            break;
        usleep(1000);
    }
    writer_cpu[0] = thread_cpu_s("mp-store");
    writer_cpu[1] = thread_cpu_s("mp-store-ckpt");
    if (st.lost > 0)
        fprintf(stderr, "store-bench: %llu rows lost: %s\n", (unsigned long long)st.lost,
                st.last_error);
    return now_s() - start;
}

static int
cmd_writer(const char *path, uint64_t n, unsigned batch)
{
    txnstore_t *s = open_store(path, batch, QUEUE_DEFAULT);
    double cpu[2], secs = fill(s, n, wall_ms() - 3600000, 1.0, batch, cpu);

    txnstore_close(s);
    printf("writer: %llu rows in %.2f s = %.0f rows/s (batch %u); CPU: writer thread %.2f s"
           " (%.0f rows per CPU second), checkpoint thread %.2f s\n", (unsigned long long)n,
           secs, (double)n / secs, batch ? batch : TXNSTORE_BATCH_DEFAULT, cpu[0],
           (double)n / cpu[0], cpu[1]);
    return 0;
}

/* Submits timed, in windows of SUBMIT_WINDOW calls between two looks at
 * what the scheduler did to this thread (getrusage is a system call: one
 * per call would slow the submitter down). */
#define SUBMIT_WINDOW 64

typedef struct submit_times {
    double worst, worst_running;      /* all calls; calls in windows without a switch or fault */
    uint64_t preempted, blocked;      /* windows with an involuntary / only voluntary switches */
    uint64_t faulted;                 /* windows with page faults (a slot's first use) */
    double window_worst;
    unsigned in_window;
    struct rusage ru;
} submit_times_t;

static bool
timed_submit(txnstore_t *s, const txn_record_t *r, submit_times_t *t)
{
    double t0 = now_s(), dt;
    bool ok = txnstore_submit(s, r);
    struct rusage b;

    dt = now_s() - t0;
    if (dt > t->worst)
        t->worst = dt;
    if (dt > t->window_worst)
        t->window_worst = dt;
    if (++t->in_window == SUBMIT_WINDOW) {
        getrusage(RUSAGE_THREAD, &b);
        if (b.ru_nivcsw != t->ru.ru_nivcsw)
            t->preempted++;
        else if (b.ru_nvcsw != t->ru.ru_nvcsw)
            t->blocked++;
        else if (b.ru_minflt != t->ru.ru_minflt || b.ru_majflt != t->ru.ru_majflt)
            t->faulted++;
        else if (t->window_worst > t->worst_running)
            t->worst_running = t->window_worst;
        t->ru = b;
        t->in_window = 0;
        t->window_worst = 0;
    }
    return ok;
}

static int
cmd_overload(const char *path, double rate, double seconds, size_t queue)
{
    txnstore_t *s = open_store(path, 0, queue);
    txnstore_stats_t st;
    txn_record_t r;
    uint64_t offered = 0, accepted = 0, deepest = 0;
    submit_times_t tm = {0};
    double start = now_s(), end;

    getrusage(RUSAGE_THREAD, &tm.ru);

    for (;;) {
        double t = now_s() - start;
        uint64_t due = (uint64_t)(t * rate);
        if (t >= seconds)
            break;
        while (offered < due) {
            memcpy(&r, row(offered), sizeof(r));
            r.end_ms = wall_ms();
            accepted += timed_submit(s, &r, &tm);
            offered++;
        }
        txnstore_stats(s, &st);
        if (st.queued > deepest)
            deepest = st.queued;
        usleep(200);          /* a switch too: the window starts afresh */
        getrusage(RUSAGE_THREAD, &tm.ru);
        tm.in_window = 0;
        tm.window_worst = 0;
    }
    end = now_s();
    txnstore_stats(s, &st);
    printf("overload: offered %llu at %.0f rows/s for %.0f s (queue %zu): accepted %llu, "
           "dropped %llu (%.1f %%), written %llu during the run (%.0f rows/s), deepest backlog "
           "%llu; longest submit %.1f us, %.1f us in the windows of %d calls without a switch "
           "or a page fault (%llu windows preempted, %llu with a wait for the lock, %llu with "
           "page faults)\n", (unsigned long long)offered,
           rate, seconds, queue, (unsigned long long)accepted, (unsigned long long)st.dropped,
           100.0 * (double)st.dropped / (double)offered, (unsigned long long)st.written,
           (double)st.written / (end - start), (unsigned long long)deepest, tm.worst * 1e6,
           tm.worst_running * 1e6, SUBMIT_WINDOW, (unsigned long long)tm.preempted,
           (unsigned long long)tm.blocked, (unsigned long long)tm.faulted);
    txnstore_close(s);
    return 0;
}

static int
cmd_load(const char *path, uint64_t n, unsigned days)
{
    txnstore_t *s = open_store(path, 0, QUEUE_DEFAULT);
    int64_t now = wall_ms(), t0 = now - (int64_t)days * DAY_MS;
    double cpu[2], secs = fill(s, n, t0, (double)days * DAY_MS / (double)n, 0, cpu);

    txnstore_close(s);
    printf("load: %llu rows over %u days in %.1f s = %.0f rows/s (writer thread %.0f rows per"
           " CPU second, checkpoint thread %.1f CPU s)\n", (unsigned long long)n, days, secs,
           (double)n / secs, (double)n / cpu[0], cpu[1]);
    return 0;
}

static int
dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

typedef struct qcase {
    const char *name;
    enum reportdoc_kind kind;
    reportdoc_params_t p;
} qcase_t;

static int
cmd_query(const char *path, unsigned rounds)
{
    static const qcase_t cases[] = {
        {"dashboard (overview)", REPORTDOC_DASHBOARD, {0}},
        {"sites by requests", REPORTDOC_SITES, {0}},
        {"categories by bytes", REPORTDOC_CATEGORIES, {.by = REPORT_BY_BYTES}},
        {"blocked", REPORTDOC_BLOCKED, {0}},
        {"timeline", REPORTDOC_TIMELINE, {0}},
        {"locations", REPORTDOC_LOCATIONS, {0}},
        {"user user07", REPORTDOC_USER, {.user = "user07"}},
        {"search, no filter, page 1", REPORTDOC_SEARCH, {0}},
        {"search host h042.example0.com", REPORTDOC_SEARCH,
         {.filter = {.host = "h042.example0.com"}}},
        {"search user user07, blocked", REPORTDOC_SEARCH,
         {.filter = {.user = "user07", .decision = "block"}}},
        {"search host example3.com, page 20", REPORTDOC_SEARCH,
         {.filter = {.host = "example3.com"}, .page = 20}},
    };
    char err[ERR_LEN];
    report_t *r = report_open(path, err, sizeof(err));
    int64_t now = wall_ms();
    report_range_t q = {now - QUERY_DAYS * DAY_MS, now, REPORT_LOC_ALL};
    double *t = calloc(rounds, sizeof(*t));

    if (r == NULL || t == NULL) {
        fprintf(stderr, "store-bench: %s\n", r == NULL ? err : "out of memory");
        return 1;
    }
    printf("| report over the last %d days | median ms | worst ms |\n|---|---|---|\n",
           QUERY_DAYS);
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (unsigned k = 0; k < rounds; k++) {
            json_t *doc = json_object();
            double t0 = now_s();
            if (reportdoc_fill(doc, r, cases[c].kind, &q, &cases[c].p, err, sizeof(err)) != 0) {
                fprintf(stderr, "store-bench: %s: %s\n", cases[c].name, err);
                return 1;
            }
            t[k] = now_s() - t0;
            json_decref(doc);
        }
        qsort(t, rounds, sizeof(*t), dbl_cmp);
        printf("| %s | %.1f | %.1f |\n", cases[c].name, t[rounds / 2] * 1e3,
               t[rounds - 1] * 1e3);
    }
    {
        /* the dashboard once more from the rows alone, and the same answer */
        json_t *with = json_object(), *without = json_object();
        double t0;
        char *a, *b;
        int same;
        reportdoc_fill(with, r, REPORTDOC_DASHBOARD, &q, NULL, err, sizeof(err));
        report_set_rollups(r, false);
        t0 = now_s();
        if (reportdoc_fill(without, r, REPORTDOC_DASHBOARD, &q, NULL, err, sizeof(err)) != 0) {
            fprintf(stderr, "store-bench: %s\n", err);
            return 1;
        }
        t0 = now_s() - t0;
        a = json_dumps(with, JSON_COMPACT | JSON_PRESERVE_ORDER);
        b = json_dumps(without, JSON_COMPACT | JSON_PRESERVE_ORDER);
        same = a != NULL && b != NULL && strcmp(a, b) == 0;
        printf("| dashboard from the rows alone (no rollups), once | %.1f | %s answer |\n",
               t0 * 1e3, same ? "same" : "DIFFERENT");
        free(a);
        free(b);
        json_decref(with);
        json_decref(without);
        if (!same)
            return 1;
    }
    free(t);
    report_close(r);
    return 0;
}

static void
usage(void)
{
    fprintf(stderr, "usage: store-bench writer PATH ROWS [BATCH]\n"
                    "       store-bench overload PATH RATE SECONDS [QUEUE]\n"
                    "       store-bench load PATH ROWS DAYS\n"
                    "       store-bench query PATH ROUNDS\n");
    exit(2);
}

int
main(int argc, char **argv)
{
    if (argc < 4)
        usage();
    pool_build();
    if (strcmp(argv[1], "writer") == 0)
        return cmd_writer(argv[2], strtoull(argv[3], NULL, 10),
                          argc > 4 ? (unsigned)atoi(argv[4]) : 0);
    if (strcmp(argv[1], "overload") == 0 && argc >= 5)
        return cmd_overload(argv[2], atof(argv[3]), atof(argv[4]),
                            argc > 5 ? strtoull(argv[5], NULL, 10) : TXNSTORE_QUEUE_DEFAULT);
    if (strcmp(argv[1], "load") == 0 && argc >= 5)
        return cmd_load(argv[2], strtoull(argv[3], NULL, 10), (unsigned)atoi(argv[4]));
    if (strcmp(argv[1], "query") == 0)
        return cmd_query(argv[2], (unsigned)atoi(argv[3]));
    usage();
    return 2;
}
