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
#include "reportcmp.h"
#include "txntest.h"

#define ERR_LEN   1024
#define THREADS   3

TestSuite(txnrollup, .init = txntest_setup, .fini = txntest_teardown, .timeout = 240);

static const char *
fill_file(const char *name, uint64_t seed, unsigned n, unsigned batch)
{
    txnstore_config_t cfg = {.path = txntest_path(name), .batch_max = batch, .flush_ms = 5};
    char err[ERR_LEN] = "";
    txnstore_t *s = txnstore_open(&cfg, err, sizeof(err));

    cr_assert_not_null(s, "%s", err);
    reportcmp_fill(s, seed, n, T0, SPAN_MS, THREADS);
    txnstore_close(s);
    return cfg.path;
}

/* ---- the rollups against their rows ---- */

static long long
query_file(void *path, const char *sql)
{
    return txntest_query_int(path, sql);
}

static void
expect_rollups_match(const char *path)
{
    reportcmp_rollups_match(query_file, (void *)path);
}

/* ---- every report both ways ---- */

static void
expect_reports_agree(const char *path, uint64_t seed)
{
    report_t *with = reportcmp_open(path, true), *without = reportcmp_open(path, false);

    reportcmp_agree(with, without, seed, "with rollups", "without");
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
    reportcmp_fill(s, 3, 9000, now - 3 * DAY, 3 * DAY, THREADS);
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
    reportcmp_fill(s, 4, 12000, T0, SPAN_MS, THREADS);  /* random times: the oldest ids everywhere */
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
    with = reportcmp_open(path, true);
    without = reportcmp_open(path, false);
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
