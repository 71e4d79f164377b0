/*
 * tests/unit/db/reportcmp.c: see reportcmp.h.
 */
#include "reportcmp.h"

#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../../../db/reportdoc.h"
#include "../../../db/txnschema.h"
#include "txntest.h"

#define ERR_LEN   1024

static const char *const users[] = {"ann", "ben", "cid", "dora", "", "Eve"};
static const char *const hosts[] = {"arts.example", "news.example", "www.shop.example",
                                    "shop.example", "cdn.example", "x.games.example", ""};
static const char *const cats[] = {"arts", "news", "shopping", "", "games"};
static const char *const policies[] = {"vpn", "office", ""};
static const char *const rules[] = {"no-arts", "no-games", ""};
#define NELEM(a) (sizeof(a) / sizeof(a[0]))


static const char *names[2];        /* of the two sides expect_same compares */

static uint64_t
rnd(uint64_t *state)
{
    uint64_t x = (*state += 0x9e3779b97f4a7c15ULL);

    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Record i of the random traffic of seed, with a time in [t0, t0 + span). */
void
reportcmp_record(txn_record_t *r, uint64_t seed, unsigned i, int64_t t0, int64_t span)
{
    uint64_t st = seed * 1000003 + i;
    const char *host = hosts[rnd(&st) % NELEM(hosts)];
    enum txn_decision d = rnd(&st) % 4 == 0 ? TXN_DECISION_BLOCK : TXN_DECISION_ALLOW;

    txntest_record(r, t0 + (int64_t)(rnd(&st) % (uint64_t)span), users[rnd(&st) % NELEM(users)],
                   host[0] ? host : "10.0.0.1", cats[rnd(&st) % NELEM(cats)], rnd(&st) % 3 == 0,
                   d, rnd(&st) % 100000, i);
    if (host[0] == '\0')
        r->url_len = (size_t)snprintf(r->url, sizeof(r->url), "/origin-form/%u", i);
    txn_copy_str(r->access_policy, sizeof(r->access_policy),
                 policies[rnd(&st) % NELEM(policies)]);
    txn_copy_str(r->rule, sizeof(r->rule), rules[rnd(&st) % NELEM(rules)]);
    if (rnd(&st) % 17 == 0) {                /* an ACL denial: blocked, no policy */
        r->decided = false;
        r->decision = TXN_DECISION_NONE;
        r->result = TXN_TCP_DENIED;
    }
}

typedef struct filler {
    txnstore_t *s;
    uint64_t seed;
    unsigned k, n, threads;
    int64_t t0, span;
} filler_t;

static void *
fill_thread(void *arg)
{
    filler_t *f = arg;
    txn_record_t r;

    for (unsigned i = f->k; i < f->n; i += f->threads) {
        reportcmp_record(&r, f->seed, i, f->t0, f->span);
        while (!txnstore_submit(f->s, &r))
            usleep(1000);
    }
    return NULL;
}

void
reportcmp_fill(txnstore_t *s, uint64_t seed, unsigned n, int64_t t0, int64_t span,
               unsigned threads)
{
    pthread_t th[REPORTCMP_THREADS_MAX];
    filler_t f[REPORTCMP_THREADS_MAX];

    if (threads == 0 || threads > REPORTCMP_THREADS_MAX)
        threads = REPORTCMP_THREADS_MAX;
    for (unsigned k = 0; k < threads; k++) {
        f[k] = (filler_t){s, seed, k, n, threads, t0, span};
        pthread_create(&th[k], NULL, fill_thread, &f[k]);
    }
    for (unsigned k = 0; k < threads; k++)
        pthread_join(th[k], NULL);
    cr_assert(txntest_wait(s, txntest_written_at_least, n, 60000));
}


report_t *
reportcmp_open(const char *path, bool use)
{
    char err[ERR_LEN] = "";
    report_t *r = report_open(path, err, sizeof(err));

    cr_assert_not_null(r, "report_open: %s", err);
    report_set_rollups(r, use);
    return r;
}

/* a and b dump alike (both freed). */
static void
expect_same(json_t *with, json_t *without, const char *what)
{
    const char *na = names[0], *nb = names[1];
    char *a, *b;

    cr_assert_not_null(with, "%s: NULL from %s", what, na);
    cr_assert_not_null(without, "%s: NULL from %s", what, nb);
    a = json_dumps(with, JSON_COMPACT | JSON_PRESERVE_ORDER);
    b = json_dumps(without, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_expect_str_eq(a, b, "%s:\n %s: %.1500s\n %s: %.1500s", what, na, a, nb, b);
    free(a);
    free(b);
    json_decref(with);
    json_decref(without);
}

static json_t *
doc(report_t *r, enum reportdoc_kind k, const report_range_t *q, const reportdoc_params_t *p)
{
    char err[REPORTDOC_ERR_MAX];
    json_t *d = json_object();

    cr_assert_eq(reportdoc_fill(d, r, k, q, p, err, sizeof(err)), 0, "%s: %s",
                 reportdoc_name(k), err);
    return d;
}

/* The ranges compared: the data's span, whole days, whole hours, and
 * random unaligned ones (seeded), each with every location. */
static size_t
ranges(report_range_t *out, size_t cap, uint64_t seed)
{
    int64_t d0 = txnschema_bucket(T0, DAY) + DAY, h0 = txnschema_bucket(T0, HOUR) + HOUR;
    int64_t fixed[][2] = {
        {T0 - HOUR, T0 + SPAN_MS + HOUR},           /* everything */
        {d0, d0 + 2 * DAY},                          /* whole days */
        {h0 + 5 * HOUR, h0 + 50 * HOUR},             /* whole hours across days */
        {d0 - 3 * HOUR, d0 + DAY + 7 * HOUR},        /* hours, a day, hours */
        {d0 + 1, d0 + 2 * DAY - 1},                  /* a millisecond short of days */
        {h0 + 600000, h0 + 600000 + 1234567},        /* inside an hour */
        {h0 + 3 * HOUR - 1, h0 + 4 * HOUR + 1},      /* just over an hour */
        {T0 + SPAN_MS + DAY, T0 + SPAN_MS + 3 * DAY},/* after the data: empty */
        {0, T0},                                     /* since 1970: nothing */
    };
    size_t n = 0;
    uint64_t st = seed;

    for (size_t i = 0; i < NELEM(fixed) + 6; i++) {
        int64_t from, to;
        if (i < NELEM(fixed)) {
            from = fixed[i][0];
            to = fixed[i][1];
        } else {
            from = T0 - HOUR + (int64_t)(rnd(&st) % (uint64_t)(SPAN_MS + HOUR));
            to = from + 1 + (int64_t)(rnd(&st) % (uint64_t)(3 * DAY));
        }
        for (int l = 0; l < 3 && n < cap; l++)
            out[n++] = (report_range_t){from, to, (enum report_location)l};
    }
    return n;
}

void
reportcmp_agree(report_t *with, report_t *without, uint64_t seed, const char *na,
                const char *nb)
{
    static const enum report_order orders[] = {REPORT_BY_REQUESTS, REPORT_BY_BYTES,
                                               REPORT_BY_BLOCKED};
    report_range_t q[64];

    names[0] = na;
    names[1] = nb;
    size_t nq = ranges(q, NELEM(q), seed);

    for (size_t i = 0; i < nq; i++) {
        char what[160];
        bool too_long = q[i].to_ms - txnschema_bucket(q[i].from_ms, HOUR) >
                        (int64_t)REPORT_BUCKETS_MAX * HOUR;
        for (unsigned k = 0; k < REPORTDOC_KINDS; k++) {
            reportdoc_params_t p = {.user = "ben", .limit = 7};
            if (k == REPORTDOC_TIMELINE && too_long)
                continue;
            snprintf(what, sizeof(what), "%s over [%lld, %lld) %s", reportdoc_name(k),
                     (long long)q[i].from_ms, (long long)q[i].to_ms,
                     report_location_str(q[i].loc));
            expect_same(doc(with, k, &q[i], &p), doc(without, k, &q[i], &p), what);
        }
        for (size_t o = 0; o < NELEM(orders); o++) {
            snprintf(what, sizeof(what), "range %zu order %s", i, report_order_str(orders[o]));
            expect_same(report_top_users(with, &q[i], orders[o], 4),
                        report_top_users(without, &q[i], orders[o], 4), what);
            expect_same(report_sites(with, &q[i], orders[o], 3),
                        report_sites(without, &q[i], orders[o], 3), what);
            expect_same(report_categories(with, &q[i], orders[o], 2),
                        report_categories(without, &q[i], orders[o], 2), what);
        }
        for (size_t u = 0; u < NELEM(users); u++) {
            snprintf(what, sizeof(what), "range %zu user '%s'", i, users[u]);
            expect_same(report_user_detail(with, &q[i], users[u], 50),
                        report_user_detail(without, &q[i], users[u], 50), what);
        }
        snprintf(what, sizeof(what), "range %zu blocked, 1000 rows", i);
        expect_same(report_blocked(with, &q[i], 1000), report_blocked(without, &q[i], 1000),
                    what);
    }
}

void
reportcmp_rollups_match(long long (*query)(void *arg, const char *sql), void *arg)
{
    static const struct { const char *table, *cols, *where; } t[] = {
        {"ru_user", "\"user\"", ""},
        {"ru_category", "\"user\", category", ""},
        {"ru_host", "\"user\", host", ""},
        {"ru_blocked", "\"user\", host, category, access_policy, rule", "WHERE blocked = 1"},
    };
    static const long long spans[] = {HOUR, DAY};

    for (size_t i = 0; i < NELEM(t); i++)
        for (size_t k = 0; k < NELEM(spans); k++) {
            char rolled[512], rows[768], sql[1400];
            long long sp = spans[k];
            snprintf(rolled, sizeof(rolled), "SELECT span, bucket, remote, %s, requests, bytes,"
                     " blocked FROM %s WHERE span = %lld", t[i].cols, t[i].table, sp);
            snprintf(rows, sizeof(rows), "SELECT CAST(%lld AS bigint), time_ms - ((time_ms %% %lld)"
                     " + %lld) %% %lld, remote, %s, count(*), sum(bytes_out), sum(blocked) FROM"
                     " txn %s GROUP BY 2, 3, %s", sp, sp, sp, sp, t[i].cols, t[i].where,
                     t[i].cols);
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM (%s EXCEPT %s) AS d", rolled, rows);
            cr_expect_eq(query(arg, sql), 0, "%s span %lld: rows not summed", t[i].table, sp);
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM (%s EXCEPT %s) AS d", rows, rolled);
            cr_expect_eq(query(arg, sql), 0, "%s span %lld: sums not rolled up", t[i].table, sp);
        }
}
