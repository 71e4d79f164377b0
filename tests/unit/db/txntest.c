/*
 * tests/unit/db/txntest.c: see txntest.h.
 */
#include "txntest.h"

#include <criterion/criterion.h>

#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

char txntest_dir[64];

void
txntest_setup(void)
{
    snprintf(txntest_dir, sizeof(txntest_dir), "/tmp/test-txn-XXXXXX");
    cr_assert_not_null(mkdtemp(txntest_dir), "mkdtemp: %s", strerror(errno));
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

void
txntest_teardown(void)
{
    if (txntest_dir[0] != '\0') {
        nftw(txntest_dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        rmdir(txntest_dir);
    }
}

const char *
txntest_path(const char *rel)
{
    static char buf[4][256];
    static int i;

    i = (i + 1) % 4;
    snprintf(buf[i], sizeof(buf[i]), "%s/%s", txntest_dir, rel);
    return buf[i];
}

static int64_t
ms_of(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t txntest_now_ms(void) { return ms_of(CLOCK_REALTIME); }
int64_t txntest_mono_ms(void) { return ms_of(CLOCK_MONOTONIC); }

void
txntest_record(txn_record_t *r, int64_t t, const char *user, const char *host,
               const char *category, bool remote, enum txn_decision d, uint64_t bytes,
               unsigned n)
{
    memset(r, 0, sizeof(*r));
    r->end_ms = t;
    r->elapsed_ms = n % 97;
    snprintf(r->client, sizeof(r->client), remote ? "10.8.0.%u" : "192.168.1.%u", n % 250 + 1);
    r->mode = TXN_MODE_EXPLICIT;
    r->result = d == TXN_DECISION_BLOCK ? TXN_TCP_DENIED : TXN_TCP_MISS;
    r->status = d == TXN_DECISION_BLOCK ? 403 : 200;
    r->bytes_out = bytes;
    txn_copy_str(r->method, sizeof(r->method), "GET");
    r->url_len = (size_t)snprintf(r->url, sizeof(r->url), "http://%s/p/%u?q=%u", host, n, n);
    txn_copy_str(r->user, sizeof(r->user), user);
    r->hier = TXN_HIER_DIRECT;
    txn_copy_str(r->server, sizeof(r->server), "192.0.2.1");
    txn_copy_str(r->mime, sizeof(r->mime), "text/html");
    r->decided = true;
    r->decision = d;
    r->remote = remote;
    txn_copy_str(r->user_source, sizeof(r->user_source), remote ? "headend" : "basic");
    txn_copy_str(r->identity_type, sizeof(r->identity_type), user[0] ? "user" : "");
    txn_copy_str(r->headend, sizeof(r->headend), remote ? "hq" : "");
    txn_copy_str(r->identity_profile, sizeof(r->identity_profile), remote ? "vpn" : "office");
    txn_copy_str(r->access_policy, sizeof(r->access_policy), "default");
    txn_copy_str(r->rule, sizeof(r->rule), d == TXN_DECISION_BLOCK ? "no-arts" : "");
    txn_copy_str(r->category, sizeof(r->category), category);
    txn_copy_str(r->decision_tag, sizeof(r->decision_tag),
                 d == TXN_DECISION_BLOCK ? "BLOCK_CATEGORY" : "ALLOW_DEFAULT");
}

bool
txntest_wait(txnstore_t *s, bool (*pred)(const txnstore_stats_t *, uint64_t), uint64_t arg,
             unsigned timeout_ms)
{
    int64_t end = txntest_mono_ms() + timeout_ms;
    txnstore_stats_t st;

    for (;;) {
        txnstore_stats(s, &st);
        if (pred(&st, arg))
            return true;
        if (txntest_mono_ms() > end)
            return false;
        usleep(10000);
    }
}

bool
txntest_written_at_least(const txnstore_stats_t *st, uint64_t n)
{
    return st->written >= n;
}

long long
txntest_query_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    long long v;

    cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK, "%s: %s", sql,
                 sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s: %s", sql, sqlite3_errmsg(db));
    v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}
