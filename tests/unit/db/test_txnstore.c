/*
 * tests/unit/db/test_txnstore.c: the transaction store (db/txnstore.c,
 * db/txnschema.c) on real SQLite files in a temporary directory: the URL
 * helpers, every column read back, many submitting threads, a full queue
 * behind a lock held by another connection (submit stays fast, the counts
 * add up exactly), a newer schema refused, the migration mechanism with a
 * fake version 2, reopening, retention by age and by size, a garbage file,
 * a read-only directory, and an I/O error while running (RLIMIT_FSIZE) that
 * the writer survives and recovers from.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../../db/report.h"
#include "../../../db/txnschema.h"
#include "../../../db/txnstore.h"
#include "txntest.h"

#define ERR_LEN 1024

TestSuite(txnstore, .init = txntest_setup, .fini = txntest_teardown, .timeout = 60);

static txnstore_t *
open_store(txnstore_config_t *cfg)
{
    char err[ERR_LEN] = "";
    txnstore_t *s;

    if (cfg->path == NULL)
        cfg->path = txntest_path("t.db");
    s = txnstore_open(cfg, err, sizeof(err));
    cr_assert_not_null(s, "txnstore_open: %s", err);
    return s;
}

static void
submit_n(txnstore_t *s, unsigned n, int64_t t, const char *user)
{
    txn_record_t r;

    for (unsigned i = 0; i < n; i++) {
        txntest_record(&r, t, user, "www.example.com", "news", false, TXN_DECISION_ALLOW, 100,
                       i);
        cr_assert(txnstore_submit(s, &r));
    }
}

/* ---- helpers ---- */

Test(txnstore, url_host_and_query_cut)
{
    static const struct { const char *url, *host; } hosts[] = {
        {"http://WWW.Example.COM/a?b", "www.example.com"},
        {"http://user:pw@h.example:8080/x", "h.example"},
        {"https://[2001:db8::1]:443/", "2001:db8::1"},
        {"example.org:443", "example.org"},
        {"[::1]:8443", "::1"},
        {"/relative/path", ""},
        {"", ""},
        {"http://h.example?q", "h.example"},
        {"ftp://files.example", "files.example"},
    };
    char host[TXNSTORE_HOST_MAX];

    for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
        txnstore_url_host(hosts[i].url, host, sizeof(host));
        cr_expect_str_eq(host, hosts[i].host, "url %s", hosts[i].url);
    }
    cr_expect_eq(txnstore_url_keep("http://a/b?c#d", 14, false), 10);
    cr_expect_eq(txnstore_url_keep("http://a/b#d", 12, false), 10);
    cr_expect_eq(txnstore_url_keep("http://a/b?c#d", 14, true), 14);
    cr_expect_eq(txnstore_url_keep("a.example:443", 13, false), 13);
    txnstore_url_host("http://abcdef/", host, 4);
    cr_expect_str_eq(host, "abc");
}

Test(txnstore, blocked_column)
{
    txn_record_t r;

    txntest_record(&r, 1, "u", "h", "c", false, TXN_DECISION_ALLOW, 0, 0);
    cr_expect(!txnstore_blocked(&r));
    r.decision = TXN_DECISION_BLOCK;
    cr_expect(txnstore_blocked(&r));
    r.decision = TXN_DECISION_REFUSE_UNIDENTIFIED;
    cr_expect(txnstore_blocked(&r));
    r.decision = TXN_DECISION_AUTH;
    r.result = TXN_TCP_DENIED;
    cr_expect(!txnstore_blocked(&r), "a 407 challenge is not a block");
    r.decision = TXN_DECISION_NONE;
    cr_expect(txnstore_blocked(&r), "an ACL denial is a block");
}

/* ---- writing ---- */

Test(txnstore, every_column_read_back)
{
    txnstore_config_t cfg = {0};
    txnstore_t *s = open_store(&cfg);
    txn_record_t r;
    sqlite3 *db;
    sqlite3_stmt *st;

    txntest_record(&r, 1700000000123, "alice", "Arts.Example", "arts", true, TXN_DECISION_BLOCK,
                   4321, 7);
    r.mode = TXN_MODE_TRANSPARENT;
    r.url_cut = true;
    cr_assert(txnstore_submit(s, &r));
    txnstore_close(s);

    cr_assert_eq(sqlite3_open_v2(cfg.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT time_ms, elapsed_ms, client, mode, result, status,"
                                    " bytes_out, method, host, url, url_cut, user, remote,"
                                    " user_source, identity_type, headend, identity_profile,"
                                    " access_policy, rule, category, decision, decision_tag,"
                                    " blocked, server, mime FROM txn", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int64(st, 0), 1700000000123);
    cr_expect_eq(sqlite3_column_int64(st, 1), 7);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 2), "10.8.0.8");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 3), "transparent");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 4), "TCP_DENIED");
    cr_expect_eq(sqlite3_column_int(st, 5), 403);
    cr_expect_eq(sqlite3_column_int64(st, 6), 4321);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 7), "GET");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 8), "arts.example");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 9), "http://Arts.Example/p/7",
                     "the query is cut by default");
    cr_expect_eq(sqlite3_column_int(st, 10), 1);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 11), "alice");
    cr_expect_eq(sqlite3_column_int(st, 12), 1);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 13), "headend");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 14), "user");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 15), "hq");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 16), "vpn");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 17), "default");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 18), "no-arts");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 19), "arts");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 20), "block");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 21), "BLOCK_CATEGORY");
    cr_expect_eq(sqlite3_column_int(st, 22), 1);
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 23), "192.0.2.1");
    cr_expect_str_eq((const char *)sqlite3_column_text(st, 24), "text/html");
    cr_expect_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
    cr_expect_eq(txntest_query_int(cfg.path, "PRAGMA journal_mode = WAL") >= 0, 1);
}

Test(txnstore, keep_query_stores_it)
{
    txnstore_config_t cfg = {.keep_query = true};
    txnstore_t *s = open_store(&cfg);

    submit_n(s, 1, 1000, "bob");
    txnstore_close(s);
    cr_expect_eq(txntest_query_int(cfg.path,
                                   "SELECT count(*) FROM txn WHERE url = 'http://www.example.com/p/0?q=0'"),
                 1);
}

typedef struct submitter {
    txnstore_t *s;
    unsigned id, n;
    unsigned accepted;
} submitter_t;

static void *
submit_thread(void *arg)
{
    submitter_t *w = arg;
    char user[16];
    txn_record_t r;

    snprintf(user, sizeof(user), "t%u", w->id);
    for (unsigned i = 0; i < w->n; i++) {
        txntest_record(&r, 1000 + i, user, "h.example", "c", false, TXN_DECISION_ALLOW, i, i);
        w->accepted += txnstore_submit(w->s, &r);
    }
    return NULL;
}

Test(txnstore, many_threads_all_written)
{
    enum { THREADS = 8, EACH = 5000 };
    txnstore_config_t cfg = {.batch_max = 256, .flush_ms = 20};
    txnstore_t *s = open_store(&cfg);
    submitter_t w[THREADS];
    pthread_t th[THREADS];
    txnstore_stats_t st;

    for (unsigned i = 0; i < THREADS; i++) {
        w[i] = (submitter_t){.s = s, .id = i, .n = EACH};
        pthread_create(&th[i], NULL, submit_thread, &w[i]);
    }
    for (unsigned i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(w[i].accepted, EACH);
    }
    cr_assert(txntest_wait(s, txntest_written_at_least, THREADS * EACH, 30000));
    txnstore_stats(s, &st);
    cr_expect_eq(st.submitted, THREADS * EACH);
    cr_expect_eq(st.written, THREADS * EACH);
    cr_expect_eq(st.dropped, 0);
    cr_expect_eq(st.lost, 0);
    cr_expect_eq(st.queued, 0);
    cr_expect_geq(st.batches, THREADS * EACH / 256);
    cr_expect_eq(st.oldest_ms, 1000);
    cr_expect_eq(st.newest_ms, 1000 + EACH - 1);
    cr_expect(st.db_open);
    cr_expect_gt(st.db_bytes, 0);
    txnstore_close(s);
    for (unsigned i = 0; i < THREADS; i++) {
        char sql[128];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM txn WHERE user = 't%u'", i);
        cr_expect_eq(txntest_query_int(cfg.path, sql), EACH);
        snprintf(sql, sizeof(sql), "SELECT sum(bytes_out) FROM txn WHERE user = 't%u'", i);
        cr_expect_eq(txntest_query_int(cfg.path, sql), (long long)EACH * (EACH - 1) / 2);
    }
}

static bool
attempted(const txnstore_stats_t *st, uint64_t n)
{
    return st->errors >= n;
}

/* A tiny queue, another connection holding the write lock: submit never
 * waits, and after the lock goes every record is either written or dropped. */
Test(txnstore, full_queue_behind_a_lock_drops_and_counts)
{
    enum { QUEUE = 16, OFFERED = 1000 };
    txnstore_config_t cfg = {.queue_max = QUEUE, .batch_max = 4, .flush_ms = 5,
                             .busy_retry_ms = 20000};
    txnstore_t *s = open_store(&cfg);
    sqlite3 *other;
    txnstore_stats_t st;
    txn_record_t r;
    int64_t worst = 0;
    unsigned accepted = 0;

    cr_assert_eq(sqlite3_open(cfg.path, &other), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(other, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    for (unsigned i = 0; i < OFFERED; i++) {
        int64_t t0;
        txntest_record(&r, 5000 + i, "carol", "h.example", "c", false, TXN_DECISION_ALLOW, 1, i);
        t0 = txntest_mono_ms();
        accepted += txnstore_submit(s, &r);
        if (txntest_mono_ms() - t0 > worst)
            worst = txntest_mono_ms() - t0;
        if (i == QUEUE)                       /* let the writer hit the lock */
            cr_assert(txntest_wait(s, attempted, 1, 5000));
    }
    /* a submit that waited on the locked database would take the busy
     * timeout or forever (the lock is never released here); 100 ms leaves
     * room for a preempted thread on a loaded machine */
    cr_expect_leq(worst, 100, "a submit took %lld ms", (long long)worst);
    txnstore_stats(s, &st);
    cr_expect_eq(accepted, QUEUE, "exactly the slots were taken");
    cr_expect_eq(st.submitted, QUEUE);
    cr_expect_eq(st.dropped, OFFERED - QUEUE);
    cr_expect_eq(st.written, 0);
    cr_expect_eq(st.queued, QUEUE);
    cr_expect(strstr(st.last_error, "locked") != NULL, "last_error: %s", st.last_error);
    cr_expect(strstr(st.last_error, "SQLITE_BUSY") != NULL, "last_error: %s", st.last_error);

    cr_assert_eq(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(other);
    cr_assert(txntest_wait(s, txntest_written_at_least, QUEUE, 10000));
    txnstore_stats(s, &st);
    cr_expect_eq(st.written + st.dropped, OFFERED);
    cr_expect_eq(st.lost, 0);
    txnstore_close(s);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM txn"), QUEUE);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT min(time_ms) FROM txn"), 5000,
                 "the first records offered are the ones kept");
}

/* ---- schema ---- */

static void
set_user_version(const char *path, int v)
{
    sqlite3 *db;
    char sql[64];

    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
    cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

Test(txnstore, newer_schema_is_refused)
{
    txnstore_config_t cfg = {0};
    char err[ERR_LEN] = "";

    txnstore_close(open_store(&cfg));
    set_user_version(cfg.path, 7);
    cr_assert_null(txnstore_open(&cfg, err, sizeof(err)));
    cr_expect(strstr(err, "schema version 7") != NULL, "%s", err);
    cr_expect(strstr(err, "version 2 that this musproxy knows") != NULL, "%s", err);
    cr_expect(strstr(err, cfg.path) != NULL, "%s", err);
    err[0] = '\0';
    cr_assert_null(report_open(cfg.path, err, sizeof(err)));
    cr_expect(strstr(err, "schema version 7") != NULL, "%s", err);
    cr_expect_eq(txntest_query_int(cfg.path, "PRAGMA user_version"), 7, "left untouched");
}

Test(txnstore, foreign_sqlite_file_is_refused)
{
    const char *path = txntest_path("other.db");
    sqlite3 *db;
    txnstore_config_t cfg = {.path = path};
    char err[ERR_LEN] = "";

    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db, "CREATE TABLE mine(x)", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    cr_assert_null(txnstore_open(&cfg, err, sizeof(err)));
    cr_expect(strstr(err, "not a musproxy transaction store") != NULL, "%s", err);
}

Test(txnstore, migration_to_a_fake_v3_keeps_rows)
{
    static const char v3[] = "ALTER TABLE txn ADD COLUMN fake TEXT NOT NULL DEFAULT 'three';"
                             "CREATE INDEX txn_fake ON txn(fake);";
    txnschema_step_t steps[] = {txnschema_steps[0], txnschema_steps[1], {3, v3}};
    txnstore_config_t cfg = {0};
    txnstore_t *s = open_store(&cfg);
    char err[ERR_LEN] = "";
    sqlite3 *db;

    submit_n(s, 10, 1000, "dave");
    txnstore_close(s);
    cr_expect_eq(txntest_query_int(cfg.path, "PRAGMA user_version"), 2);

    db = txnschema_open_rw(cfg.path, false, steps, 3, err, sizeof(err));
    cr_assert_not_null(db, "%s", err);
    sqlite3_close(db);
    cr_expect_eq(txntest_query_int(cfg.path, "PRAGMA user_version"), 3);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM txn WHERE fake = 'three'"),
                 10);
    /* once more is a no-op */
    db = txnschema_open_rw(cfg.path, false, steps, 3, err, sizeof(err));
    cr_assert_not_null(db, "%s", err);
    sqlite3_close(db);
    /* this build's store (v2) refuses the v3 file */
    cr_assert_null(txnstore_open(&cfg, err, sizeof(err)));
    cr_expect(strstr(err, "schema version 3, newer than version 2") != NULL, "%s", err);
}

Test(txnstore, failed_migration_leaves_the_old_version)
{
    txnschema_step_t steps[] = {txnschema_steps[0], txnschema_steps[1],
                                {3, "CREATE TABLE half(x); THIS IS NOT SQL"}};
    txnstore_config_t cfg = {0};
    char err[ERR_LEN] = "";

    txnstore_t *s = open_store(&cfg);
    submit_n(s, 3, 1000, "erin");
    txnstore_close(s);
    cr_assert_null(txnschema_open_rw(cfg.path, false, steps, 3, err, sizeof(err)));
    cr_expect(strstr(err, "migration to schema version 3") != NULL, "%s", err);
    cr_expect_eq(txntest_query_int(cfg.path, "PRAGMA user_version"), 2);
    cr_expect_eq(txntest_query_int(cfg.path,
                                   "SELECT count(*) FROM sqlite_master WHERE name = 'half'"), 0);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM txn"), 3);
}

Test(txnstore, reopen_keeps_the_data)
{
    txnstore_config_t cfg = {0};
    txnstore_t *s = open_store(&cfg);
    txnstore_stats_t st;

    submit_n(s, 100, 2000, "frank");
    txnstore_close(s);
    s = open_store(&cfg);
    txnstore_stats(s, &st);
    cr_expect_eq(st.oldest_ms, 2000, "the range is read back at open");
    cr_expect_eq(st.newest_ms, 2000);
    submit_n(s, 50, 3000, "frank");
    txnstore_close(s);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM txn"), 150);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM txn WHERE time_ms = 3000"), 50);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT max(id) FROM txn"), 150);
}

/* ---- retention ---- */

static bool
deleted_at_least(const txnstore_stats_t *st, uint64_t n)
{
    return st->retention_deleted >= n;
}

Test(txnstore, retention_by_age_deletes_exactly_the_old_rows)
{
    txnstore_config_t cfg = {.retain_days = 1, .retain_check_s = 1, .flush_ms = 10};
    txnstore_t *s = open_store(&cfg);
    int64_t now = txntest_now_ms();
    txnstore_session_t old_sess = {"u", "", "10.8.0.9", "198.51.100.1", "user", "hq",
                                   now - 4 * 86400000LL, now - 3 * 86400000LL, "logout"};
    txnstore_session_t new_sess = {"u", "", "10.8.0.9", "198.51.100.1", "user", "hq",
                                   now - 3600000, 0, ""};
    txnstore_stats_t st;

    submit_n(s, 100, now - 3 * 86400000LL, "old");
    submit_n(s, 40, now - 86400000LL - 60000, "old");   /* a minute past the limit */
    submit_n(s, 50, now - 3600000, "new");
    cr_assert(txnstore_session_event(s, &old_sess));
    cr_assert(txnstore_session_event(s, &new_sess));
    cr_assert(txntest_wait(s, txntest_written_at_least, 190, 10000));
    cr_assert(txntest_wait(s, deleted_at_least, 140, 10000));
    txnstore_stats(s, &st);
    cr_expect_eq(st.retention_deleted, 140);
    cr_expect_eq(st.oldest_ms, now - 3600000);
    txnstore_close(s);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM txn"), 50);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM txn WHERE user = 'old'"), 0);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM sessions"), 1);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT end_ms FROM sessions"), 0);
}

Test(txnstore, retention_by_size_keeps_the_newest)
{
    enum { N = 4000 };
    txnstore_config_t cfg = {.retain_mb = 1, .retain_check_s = 1, .keep_query = true};
    txnstore_t *s = open_store(&cfg);
    txnstore_stats_t st;
    txn_record_t r;
    long long rows, lo;

    for (unsigned i = 0; i < N; i++) {
        txntest_record(&r, 10000 + i, "gina", "h.example", "c", false, TXN_DECISION_ALLOW, 1, i);
        memset(r.url + r.url_len, 'x', 1000);
        r.url_len += 1000;
        r.url[r.url_len] = '\0';
        cr_assert(txnstore_submit(s, &r));
    }
    cr_assert(txntest_wait(s, txntest_written_at_least, N, 20000));
    cr_assert(txntest_wait(s, deleted_at_least, 1, 10000));
    /* a pass may have run between two batches and left the newer ones over
     * the cap until the next pass (retain_check_s later): wait for the file
     * (read live, beside the writer: WAL) to be back under the cap */
    long long bytes = 0;
    for (int i = 0; i < 200; i++) {
        bytes = txntest_query_int(cfg.path, "SELECT (SELECT page_count FROM pragma_page_count())"
                                  " * (SELECT page_size FROM pragma_page_size())");
        if (bytes <= 1024 * 1024)
            break;
        usleep(100000);
    }
    cr_expect_leq(bytes, 1024 * 1024, "under the cap within 20 s of the last write");
    usleep(100000);
    txnstore_stats(s, &st);
    txnstore_close(s);
    rows = txntest_query_int(cfg.path, "SELECT count(*) FROM txn");
    lo = txntest_query_int(cfg.path, "SELECT min(id) FROM txn");
    cr_expect_gt(rows, 0);
    cr_expect_lt(rows, N / 2);
    cr_expect_eq((long long)st.retention_deleted, N - rows);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT max(id) FROM txn"), N, "the newest stay");
    cr_expect_eq(lo + rows - 1, N, "a contiguous run of the newest");
    cr_expect_leq(txntest_query_int(cfg.path, "SELECT (SELECT page_count FROM pragma_page_count())"
                                    " * (SELECT page_size FROM pragma_page_size())"),
                  1024 * 1024, "used pages under the cap, free pages handed back");
    cr_expect_eq(txntest_query_int(cfg.path, "PRAGMA freelist_count"), 0);
}

/* ---- broken files ---- */

Test(txnstore, garbage_file_is_refused_with_a_clear_error)
{
    const char *path = txntest_path("garbage.db");
    txnstore_config_t cfg = {.path = path};
    char junk[8192], err[ERR_LEN] = "";
    FILE *f = fopen(path, "w");

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (char)(i * 7 + 3);
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
    fclose(f);
    cr_assert_null(txnstore_open(&cfg, err, sizeof(err)));
    cr_expect(strstr(err, path) != NULL, "%s", err);
    cr_expect(strstr(err, "not a database") != NULL, "%s", err);
    cr_expect(strstr(err, "SQLITE_NOTADB") != NULL, "%s", err);
    err[0] = '\0';
    cr_assert_null(report_open(path, err, sizeof(err)));
    cr_expect(strstr(err, "not a database") != NULL, "%s", err);
}

/* Runs txnstore_open as an unprivileged user (root ignores permissions) in a
 * child and returns its error text. */
static void
open_as_nobody(const char *path, char *err, size_t errlen)
{
    int fd[2];
    pid_t pid;
    ssize_t n;

    cr_assert_eq(pipe(fd), 0);
    pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        txnstore_config_t cfg = {.path = path};
        char e[ERR_LEN] = "";
        txnstore_t *s;
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(2);
        s = txnstore_open(&cfg, e, sizeof(e));
        if (s != NULL)
            snprintf(e, sizeof(e), "OPENED");
        if (write(fd[1], e, strlen(e)) < 0)
            _exit(3);
        _exit(0);
    }
    close(fd[1]);
    n = read(fd[0], err, errlen - 1);
    err[n > 0 ? n : 0] = '\0';
    close(fd[0]);
    waitpid(pid, NULL, 0);
}

Test(txnstore, read_only_directory_gives_a_clear_error)
{
    char err[ERR_LEN];
    const char *dir = txntest_path("ro"), *path = txntest_path("ro/t.db");

    cr_assert_eq(chmod(txntest_dir, 0755), 0);
    cr_assert_eq(mkdir(dir, 0555), 0);
    open_as_nobody(path, err, sizeof(err));
    cr_expect(strstr(err, path) != NULL, "%s", err);
    cr_expect(strstr(err, "unable to open database file") != NULL, "%s", err);
    cr_expect(strstr(err, "SQLITE_CANTOPEN") != NULL, "%s", err);
    cr_expect(strstr(err, "Permission denied") != NULL, "%s", err);
}

static bool
lost_at_least(const txnstore_stats_t *st, uint64_t n)
{
    return st->lost >= n;
}

/* Writes fail while running (RLIMIT_FSIZE 0: every write() to a file gets
 * EFBIG): the batch is counted lost with the reason, the writer keeps going,
 * reopens the file and writes again once the limit is lifted. */
Test(txnstore, io_error_while_running_is_counted_and_survived)
{
    txnstore_config_t cfg = {.flush_ms = 10, .reopen_ms = 50, .batch_max = 64};
    txnstore_t *s = open_store(&cfg);
    struct rlimit old, zero;
    txnstore_stats_t st;

    signal(SIGXFSZ, SIG_IGN);
    submit_n(s, 20, 1000, "hank");
    cr_assert(txntest_wait(s, txntest_written_at_least, 20, 5000));
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
    zero = old;
    zero.rlim_cur = 0;
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &zero), 0);
    submit_n(s, 30, 2000, "hank");
    cr_assert(txntest_wait(s, lost_at_least, 30, 5000));
    txnstore_stats(s, &st);
    cr_expect_eq(st.lost, 30);
    cr_expect_eq(st.written, 20);
    cr_expect(strstr(st.last_error, "SQLITE_IOERR") != NULL || strstr(st.last_error, "SQLITE_FULL") != NULL,
              "last_error: %s", st.last_error);
    cr_expect(strstr(st.last_error, "30 records") != NULL || strstr(st.last_error, "will retry") != NULL,
              "last_error: %s", st.last_error);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &old), 0);
    submit_n(s, 40, 3000, "hank");
    cr_assert(txntest_wait(s, txntest_written_at_least, 60, 10000), "the writer came back");
    txnstore_stats(s, &st);
    cr_expect(st.db_open);
    cr_expect_eq(st.submitted, st.written + st.lost);
    txnstore_close(s);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM txn"), 60);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM txn WHERE time_ms = 2000"), 0);
}

Test(txnstore, close_flushes_and_null_is_ok)
{
    txnstore_config_t cfg = {.flush_ms = 10000, .batch_max = 100000};
    txnstore_t *s = open_store(&cfg);

    submit_n(s, 777, 1000, "ivy");
    txnstore_close(s);
    txnstore_close(NULL);
    cr_expect_eq(txntest_query_int(cfg.path, "SELECT count(*) FROM txn"), 777);
}
