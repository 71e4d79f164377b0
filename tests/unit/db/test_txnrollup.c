/*
 * tests/unit/db/test_txnrollup.c: the rollups (db/txnrollup.c, kept by the
 * writer in db/txnstore.c, read by db/report.c) on real SQLite files filled
 * through the real writer with random traffic (times out of order, several
 * submitting threads, small batches so that a key spans many of them):
 * every rollup table equals the GROUP BY of the rows it sums, and every
 * report of every document answers the same JSON with and without rollups
 * over aligned, unaligned, sub-hour and empty ranges and each location;
 * the same after retention by age (a bucket cut in the middle) and by size
 * (rows deleted across many buckets), after the migration's backfill of a
 * version 1 file, and with a rollup capacity of a few rows (the sums
 * flushed many times per transaction). The last test proves the reports
 * really read the rollups.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../db/report.h"
#include "../../../db/reportdoc.h"
#include "../../../db/txnschema.h"
#include "../../../db/txnstore.h"
#include "txntest.h"

#define ERR_LEN   1024
#define THREADS   3
#define HOUR      3600000LL
#define DAY       86400000LL
#define T0        (1700000000000LL + 1234567)   /* not aligned to anything */
#define SPAN_MS   (4 * DAY + 5 * HOUR)

TestSuite(txnrollup, .init = txntest_setup, .fini = txntest_teardown, .timeout = 240);

static const char *const users[] = {"ann", "ben", "cid", "dora", "", "Eve"};
static const char *const hosts[] = {"arts.example", "news.example", "www.shop.example",
                                    "shop.example", "cdn.example", "x.games.example", ""};
static const char *const cats[] = {"arts", "news", "shopping", "", "games"};
static const char *const policies[] = {"vpn", "office", ""};
static const char *const rules[] = {"no-arts", "no-games", ""};
#define NELEM(a) (sizeof(a) / sizeof(a[0]))

static uint64_t
rnd(uint64_t *state)
{
    uint64_t x = (*state += 0x9e3779b97f4a7c15ULL);

    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Record i of the random traffic of seed, with a time in [t0, t0 + span). */
static void
random_record(txn_record_t *r, uint64_t seed, unsigned i, int64_t t0, int64_t span)
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
    unsigned k, n;
    int64_t t0, span;
} filler_t;

static void *
fill_thread(void *arg)
{
    filler_t *f = arg;
    txn_record_t r;

    for (unsigned i = f->k; i < f->n; i += THREADS) {
        random_record(&r, f->seed, i, f->t0, f->span);
        while (!txnstore_submit(f->s, &r))
            usleep(1000);
    }
    return NULL;
}

/* Submits n random records from THREADS threads and waits until written. */
static void
fill_store(txnstore_t *s, uint64_t seed, unsigned n, int64_t t0, int64_t span)
{
    pthread_t th[THREADS];
    filler_t f[THREADS];

    for (unsigned k = 0; k < THREADS; k++) {
        f[k] = (filler_t){s, seed, k, n, t0, span};
        pthread_create(&th[k], NULL, fill_thread, &f[k]);
    }
    for (unsigned k = 0; k < THREADS; k++)
        pthread_join(th[k], NULL);
    cr_assert(txntest_wait(s, txntest_written_at_least, n, 60000));
}

static const char *
fill_file(const char *name, uint64_t seed, unsigned n, unsigned batch)
{
    txnstore_config_t cfg = {.path = txntest_path(name), .batch_max = batch, .flush_ms = 5};
    char err[ERR_LEN] = "";
    txnstore_t *s = txnstore_open(&cfg, err, sizeof(err));

    cr_assert_not_null(s, "%s", err);
    fill_store(s, seed, n, T0, SPAN_MS);
    txnstore_close(s);
    return cfg.path;
}

/* ---- the rollups against their rows ---- */

static const struct {
    const char *table, *cols, *where;
} rollups[] = {
    {"ru_user", "user", ""},
    {"ru_category", "user, category", ""},
    {"ru_host", "user, host", ""},
    {"ru_blocked", "user, host, category, access_policy, rule", "WHERE blocked = 1"},
};

/* Every rollup row is the sum of its rows and every group of rows has its
 * rollup row, for both spans. */
static void
expect_rollups_match(const char *path)
{
    static const long long spans[] = {HOUR, DAY};

    for (size_t t = 0; t < NELEM(rollups); t++)
        for (size_t k = 0; k < NELEM(spans); k++) {
            char rolled[512], rows[768], sql[1400];
            long long sp = spans[k];
            snprintf(rolled, sizeof(rolled), "SELECT span, bucket, remote, %s, requests, bytes,"
                     " blocked FROM %s WHERE span = %lld", rollups[t].cols, rollups[t].table, sp);
            snprintf(rows, sizeof(rows), "SELECT %lld, time_ms - ((time_ms %% %lld) + %lld) %% %lld,"
                     " remote, %s, count(*), sum(bytes_out), sum(blocked) FROM txn %s"
                     " GROUP BY 2, 3, %s", sp, sp, sp, sp, rollups[t].cols, rollups[t].where,
                     rollups[t].cols);
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM (%s EXCEPT %s)", rolled, rows);
            cr_expect_eq(txntest_query_int(path, sql), 0, "%s span %lld: rows not summed",
                         rollups[t].table, sp);
            snprintf(sql, sizeof(sql), "SELECT count(*) FROM (%s EXCEPT %s)", rows, rolled);
            cr_expect_eq(txntest_query_int(path, sql), 0, "%s span %lld: sums not rolled up",
                         rollups[t].table, sp);
        }
}

/* ---- every report both ways ---- */

static report_t *
open_report(const char *path, bool use)
{
    char err[ERR_LEN] = "";
    report_t *r = report_open(path, err, sizeof(err));

    cr_assert_not_null(r, "report_open: %s", err);
    report_set_rollups(r, use);
    return r;
}

static void
expect_same(json_t *with, json_t *without, const char *what)
{
    char *a, *b;

    cr_assert_not_null(with, "%s: NULL with rollups", what);
    cr_assert_not_null(without, "%s: NULL without rollups", what);
    a = json_dumps(with, JSON_COMPACT | JSON_PRESERVE_ORDER);
    b = json_dumps(without, JSON_COMPACT | JSON_PRESERVE_ORDER);
    cr_expect_str_eq(a, b, "%s:\n with    %.1500s\n without %.1500s", what, a, b);
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

/* Every document (and every order of the ranked reports) over every range
 * compared with and without rollups. */
static void
expect_reports_agree(const char *path, uint64_t seed)
{
    static const enum report_order orders[] = {REPORT_BY_REQUESTS, REPORT_BY_BYTES,
                                               REPORT_BY_BLOCKED};
    report_t *with = open_report(path, true), *without = open_report(path, false);
    report_range_t q[64];
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
    report_close(with);
    report_close(without);
}

/* ---- tests ---- */

Test(txnrollup, random_traffic_rollups_and_reports_agree)
{
    const char *path = fill_file("a.db", 1, 20000, 128);

    cr_expect_gt(txntest_query_int(path, "SELECT count(*) FROM ru_host WHERE span = 86400000"),
                 50, "day rollups were written");
    expect_rollups_match(path);
    expect_reports_agree(path, 11);
}

Test(txnrollup, a_rollup_capacity_of_a_few_rows)
{
    /* batch_max 3: the rollups' capacity is 3 rows, so they flush every 3
     * rows, and retention takes its chunks off 3 rows at a time */
    const char *path = fill_file("small.db", 2, 3000, 3);

    expect_rollups_match(path);
    expect_reports_agree(path, 12);
}

static bool
deleted_at_least(const txnstore_stats_t *st, uint64_t n)
{
    return st->retention_deleted >= n;
}

Test(txnrollup, retention_by_age_cuts_a_bucket_and_keeps_the_rollups_exact)
{
    int64_t now = txntest_now_ms();
    txnstore_config_t cfg = {.path = txntest_path("age.db"), .flush_ms = 5, .batch_max = 64,
                             .retain_days = 2, .retain_check_s = 1};
    char err[ERR_LEN] = "";
    txnstore_t *s = txnstore_open(&cfg, err, sizeof(err));
    long long left;

    cr_assert_not_null(s, "%s", err);
    /* three days up to now: the cutoff (now - 2 days) falls inside an hour
     * and a day that keep some of their rows */
    fill_store(s, 3, 9000, now - 3 * DAY, 3 * DAY);
    cr_assert(txntest_wait(s, deleted_at_least, 2000, 30000));
    txnstore_close(s);
    left = txntest_query_int(cfg.path, "SELECT count(*) FROM txn");
    cr_expect(left > 4000 && left < 7000, "%lld rows left", left);
    expect_rollups_match(cfg.path);
    {
        long long cut = txntest_query_int(cfg.path, "SELECT min(time_ms) FROM txn");
        char sql[256];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM ru_user WHERE span = 3600000 AND"
                 " bucket = %lld", txnschema_bucket(cut, HOUR));
        cr_expect_gt(txntest_query_int(cfg.path, sql), 0, "the cut hour keeps its rest");
    }
}

Test(txnrollup, retention_by_size_across_many_buckets)
{
    txnstore_config_t cfg = {.path = txntest_path("size.db"), .flush_ms = 5, .batch_max = 200,
                             .retain_mb = 1, .retain_check_s = 1};
    char err[ERR_LEN] = "";
    txnstore_t *s = txnstore_open(&cfg, err, sizeof(err));

    cr_assert_not_null(s, "%s", err);
    fill_store(s, 4, 12000, T0, SPAN_MS);    /* random times: the oldest ids are everywhere */
    cr_assert(txntest_wait(s, deleted_at_least, 1, 30000));
    txnstore_close(s);
    cr_expect_lt(txntest_query_int(cfg.path, "SELECT count(*) FROM txn"), 12000);
    expect_rollups_match(cfg.path);
    expect_reports_agree(cfg.path, 14);
}

/* A version 1 file (rows, no rollups) is migrated: the backfill sums the
 * rows it holds. */
Test(txnrollup, migration_backfills_a_version_1_file)
{
    const char *src = fill_file("v2.db", 5, 6000, 256), *path = txntest_path("v1.db");
    char err[ERR_LEN] = "", sql[512];
    txnstore_config_t cfg = {.path = path};
    sqlite3 *db = txnschema_open_rw(path, true, txnschema_steps, 1, err, sizeof(err));
    txnstore_t *s;

    cr_assert_not_null(db, "%s", err);
    snprintf(sql, sizeof(sql), "ATTACH '%s' AS o; INSERT INTO txn SELECT * FROM o.txn;", src);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
    sqlite3_close(db);
    cr_assert_eq(txntest_query_int(path, "PRAGMA user_version"), 1);
    cr_assert_eq(txntest_query_int(path, "SELECT count(*) FROM txn"), 6000);
    err[0] = '\0';
    cr_expect_null(report_open(path, err, sizeof(err)), "reports need the migration first");
    cr_expect(strstr(err, "schema version 1, reports need 2") != NULL, "%s", err);

    s = txnstore_open(&cfg, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    txnstore_close(s);
    cr_expect_eq(txntest_query_int(path, "PRAGMA user_version"), 2);
    expect_rollups_match(path);
    expect_reports_agree(path, 15);
}

/* The reports do read the rollups: rows deleted behind the writer's back
 * change the answers of an aligned range with rollups only. */
Test(txnrollup, reports_read_the_rollups)
{
    const char *path = fill_file("b.db", 6, 4000, 256);
    int64_t d0 = txnschema_bucket(T0, DAY) + DAY;
    report_range_t q = {d0, d0 + DAY, REPORT_LOC_ALL};
    report_t *with, *without;
    sqlite3 *db;
    json_t *a, *b;
    long long n;

    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "DELETE FROM txn WHERE id % 2 = 0", NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);
    with = open_report(path, true);
    without = open_report(path, false);
    a = report_summary(with, &q);
    b = report_summary(without, &q);
    n = json_integer_value(json_object_get(a, "requests"));
    cr_expect_gt(n, 0);
    cr_expect_lt(json_integer_value(json_object_get(b, "requests")), n, "rows only: fewer");
    json_decref(a);
    json_decref(b);
    report_close(with);
    report_close(without);
}
