/*
 * tests/unit/db/test_txnstore_pg.c: the transaction store's PostgreSQL
 * backend (db/txnstore_pg.c) and the reports on it (db/reportdb_pg.c),
 * against a real server started for each test: initdb in the test's
 * temporary directory as `nobody` (the server refuses root), listening on a
 * Unix socket there only, its superuser trusted.
 *   - the same random traffic written in the same order to an SQLite file
 *     and to PostgreSQL: every report of every document answers the same
 *     JSON from both (PostgreSQL with its rollups against SQLite without,
 *     and both with), over aligned, unaligned, sub-hour and empty ranges and
 *     each location; the rollups equal the GROUP BY of the rows; every row
 *     carries the node;
 *   - two stores (nodes a and b) writing the same keys at once from several
 *     threads each: nothing lost, no error (the upserts sum across nodes
 *     and do not deadlock), the rows per node are what each wrote and the
 *     rollups sum both;
 *   - retention by age deletes the old rows and keeps the rollups exact;
 *   - refused: a conninfo holding a password, a database at a newer schema
 *     version (the store and the reports); not refused: a database that
 *     cannot be reached (the store opens, says why, and is not open).
 * Skipped (with the reason) without root or PostgreSQL's server binaries.
 */
#include <criterion/criterion.h>

#include <glob.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../../db/report.h"
#include "../../../db/txnstore.h"
#include "reportcmp.h"
#include "txntest.h"

#define ERR_LEN 1024

static char pgbin[256];
static char conninfo[512];
static bool pg_up;

static void
pg_setup(void)
{
    glob_t g;
    const char *dir;
    char cmd[2048], c0[600];
    PGconn *c;

    txntest_setup();
    if (geteuid() != 0)
        cr_skip_test("needs root (to run the database server as nobody)");
    if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &g) != 0 || g.gl_pathc == 0)
        cr_skip_test("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin; tools/setup.sh)");
    snprintf(pgbin, sizeof(pgbin), "%.*s", (int)(strlen(g.gl_pathv[g.gl_pathc - 1]) - 7),
             g.gl_pathv[g.gl_pathc - 1]);
    globfree(&g);
    dir = txntest_dir;
    chmod(dir, 0755);
    snprintf(cmd, sizeof(cmd), "chown nobody %s && cd / && runuser -u nobody -- %s/initdb -D"
             " %s/data -U pgsuper -A trust -E UTF8 --locale=C.UTF-8 >%s/initdb.log 2>&1", dir,
             pgbin, dir, dir);
    cr_assert_eq(system(cmd), 0, "initdb failed (see %s/initdb.log)", dir);
    snprintf(cmd, sizeof(cmd), "cd / && runuser -u nobody -- %s/pg_ctl -D %s/data -l %s/log"
             " -w -t 30 -o \"-k %s -p 5432 -c listen_addresses='' -c fsync=off\" start"
             " >/dev/null", pgbin, dir, dir, dir);
    cr_assert_eq(system(cmd), 0, "pg_ctl start failed (see %s/log)", dir);
    pg_up = true;
    snprintf(conninfo, sizeof(conninfo), "host=%s port=5432 user=pgsuper dbname=mp", dir);
    snprintf(c0, sizeof(c0), "host=%s port=5432 user=pgsuper dbname=postgres", dir);
    c = PQconnectdb(c0);
    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    PQclear(PQexec(c, "CREATE DATABASE mp"));
    PQfinish(c);
}

static void
pg_teardown(void)
{
    if (pg_up) {
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "cd / && runuser -u nobody -- %s/pg_ctl -D %s/data -m immediate"
                 " -w stop >/dev/null 2>&1", pgbin, txntest_dir);
        (void)system(cmd);
        pg_up = false;
    }
    txntest_teardown();
}

TestSuite(txnstore_pg, .init = pg_setup, .fini = pg_teardown, .timeout = 300);

/* One integer from the store's database (asserts success). */
static long long
pg_int(const char *sql)
{
    PGconn *c = PQconnectdb(conninfo);
    PGresult *r;
    long long v;

    cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
    r = PQexec(c, sql);
    cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
    v = PQgetisnull(r, 0, 0) ? -1 : strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(c);
    return v;
}

static txnstore_t *
open_pg(const char *node, unsigned batch, unsigned retain_days)
{
    txnstore_config_t cfg = {.backend = TXNSTORE_POSTGRESQL, .conninfo = conninfo, .node = node,
                             .batch_max = batch, .flush_ms = 5, .retain_days = retain_days,
                             .retain_check_s = 1};
    char err[ERR_LEN] = "";
    txnstore_t *s = txnstore_open(&cfg, err, sizeof(err));
    txnstore_stats_t st;

    cr_assert_not_null(s, "%s", err);
    txnstore_stats(s, &st);
    cr_assert(st.db_open, "not connected: %s", st.last_error);
    return s;
}

static report_t *
open_pg_report(bool use)
{
    report_store_t where = {.postgresql = true, .conninfo = conninfo};
    char err[ERR_LEN] = "";
    report_t *r = report_open_store(&where, err, sizeof(err));

    cr_assert_not_null(r, "report_open_store: %s", err);
    report_set_rollups(r, use);
    return r;
}

static long long
query_pg(void *arg, const char *sql)
{
    (void)arg;
    return pg_int(sql);
}

static void
expect_rollups_match(void)
{
    reportcmp_rollups_match(query_pg, NULL);
}

static void
expect_clean(txnstore_t *s, uint64_t written)
{
    txnstore_stats_t st;

    txnstore_stats(s, &st);
    cr_expect_eq(st.written, written);
    cr_expect_eq(st.lost, 0, "lost %llu: %s", (unsigned long long)st.lost, st.last_error);
    cr_expect_eq(st.errors, 0, "errors %llu: %s", (unsigned long long)st.errors, st.last_error);
}

Test(txnstore_pg, reports_answer_as_on_sqlite)
{
    txnstore_config_t scfg = {.path = txntest_path("same.db"), .batch_max = 128, .flush_ms = 5};
    char err[ERR_LEN] = "";
    txnstore_t *sq = txnstore_open(&scfg, err, sizeof(err)), *pg;
    report_t *rs, *rp;
    const unsigned n = 6000;

    cr_assert_not_null(sq, "%s", err);
    pg = open_pg("a", 128, 0);
    reportcmp_fill(sq, 21, n, T0, SPAN_MS, 1);     /* one thread: the same order, the same ids */
    reportcmp_fill(pg, 21, n, T0, SPAN_MS, 1);
    expect_clean(pg, n);
    txnstore_close(sq);
    txnstore_close(pg);
    cr_expect_eq(pg_int("SELECT count(*) FROM txn WHERE node = 'a'"), n);
    cr_expect_gt(pg_int("SELECT count(*) FROM ru_host WHERE span = 86400000"), 50);
    expect_rollups_match();

    rs = reportcmp_open(scfg.path, false);
    rp = open_pg_report(true);
    reportcmp_agree(rp, rs, 31, "postgresql with rollups", "sqlite without");
    report_close(rs);
    rs = reportcmp_open(scfg.path, true);
    report_set_rollups(rp, false);
    reportcmp_agree(rp, rs, 32, "postgresql without rollups", "sqlite with");
    report_close(rs);
    report_close(rp);
}

typedef struct node_fill {
    txnstore_t *s;
    uint64_t seed;
    unsigned n;
} node_fill_t;

static void *
node_thread(void *arg)
{
    node_fill_t *f = arg;

    reportcmp_fill(f->s, f->seed, f->n, T0, SPAN_MS, 3);
    return NULL;
}

Test(txnstore_pg, two_nodes_write_the_same_keys_at_once)
{
    /* small batches and a narrow span: the two writers' transactions add
     * to the same rollup keys over and over */
    txnstore_t *a = open_pg("a", 64, 0), *b = open_pg("b", 48, 0);
    node_fill_t fa = {a, 41, 8000}, fb = {b, 42, 7000};
    pthread_t ta, tb;
    char sql[256];

    pthread_create(&ta, NULL, node_thread, &fa);
    pthread_create(&tb, NULL, node_thread, &fb);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    expect_clean(a, fa.n);
    expect_clean(b, fb.n);
    txnstore_close(a);
    txnstore_close(b);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM txn WHERE node = 'a'");
    cr_expect_eq(pg_int(sql), fa.n);
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM txn WHERE node = 'b'");
    cr_expect_eq(pg_int(sql), fb.n);
    cr_expect_eq(pg_int("SELECT sum(requests) FROM ru_user WHERE span = 86400000"),
                 (long long)(fa.n + fb.n));
    expect_rollups_match();
}

static bool
deleted_at_least(const txnstore_stats_t *st, uint64_t n)
{
    return st->retention_deleted >= n;
}

Test(txnstore_pg, retention_by_age_keeps_the_rollups_exact)
{
    int64_t now = txntest_now_ms();
    txnstore_t *s = open_pg("a", 64, 2);
    char sql[256];
    long long old;

    reportcmp_fill(s, 51, 5000, now - 3 * DAY, 3 * DAY, 3);
    cr_assert(txntest_wait(s, deleted_at_least, 1000, 30000), "retention did not run");
    /* the passes run every second: one after the last rows deletes the rest */
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM txn WHERE time_ms < %lld",
             (long long)(now - 2 * DAY - 60000));
    for (int i = 0; i < 100 && (old = pg_int(sql)) > 0; i++)
        usleep(100000);
    txnstore_close(s);
    cr_expect_eq(old, 0, "%lld rows older than 2 days are left", old);
    cr_expect_gt(pg_int("SELECT count(*) FROM txn"), 2000);
    expect_rollups_match();
}

Test(txnstore_pg, what_is_refused_and_what_is_not)
{
    char err[ERR_LEN] = "", ci[600];
    txnstore_config_t cfg = {.backend = TXNSTORE_POSTGRESQL, .conninfo = ci, .node = "a"};
    report_store_t where = {.postgresql = true, .conninfo = conninfo};
    txnstore_t *s;
    txnstore_stats_t st;
    PGconn *c;

    snprintf(ci, sizeof(ci), "%s password=s3cret", conninfo);
    cr_expect_null(txnstore_open(&cfg, err, sizeof(err)));
    cr_expect(strstr(err, "holds a password") != NULL && strstr(err, "s3cret") == NULL, "%s",
              err);

    snprintf(ci, sizeof(ci), "host=%s port=1 user=pgsuper dbname=mp", txntest_dir);
    s = txnstore_open(&cfg, err, sizeof(err));
    cr_assert_not_null(s, "an unreachable database must not refuse the store: %s", err);
    txnstore_stats(s, &st);
    cr_expect(!st.db_open);
    cr_expect(strstr(st.last_error, "cannot connect") != NULL, "%s", st.last_error);
    cr_expect(txnstore_submit(s, &(txn_record_t){.end_ms = 1}), "the queue takes records");
    txnstore_close(s);

    txnstore_close(open_pg("a", 0, 0));                  /* creates the schema */
    c = PQconnectdb(conninfo);
    PQclear(PQexec(c, "UPDATE musproxy_schema SET version = 99"));
    PQfinish(c);
    snprintf(ci, sizeof(ci), "%s", conninfo);
    cr_expect_null(txnstore_open(&cfg, err, sizeof(err)));
    cr_expect(strstr(err, "schema version 99, newer than version 1") != NULL, "%s", err);
    cr_expect_null(report_open_store(&where, err, sizeof(err)));
    cr_expect(strstr(err, "schema version 99") != NULL, "%s", err);
}
