/*
 * db/txnstore.c: the transaction store's queue, writer thread and
 * checkpoint thread (see txnstore.h for threads and ownership; the schema
 * is in txnschema.c, the rollups' sums in txnrollup.c).
 *
 * Queue: `slots` holds queue_max records; `freestk` is a stack of free slot
 * numbers and `fifo` a ring of filled ones in submit order. submit pops a
 * free slot, copies the record in (its URL only up to the NUL) and pushes
 * its number on the fifo, all under `mu`. The writer takes up to batch_max numbers off the fifo, writes
 * those slots without the lock (no submitter touches a slot it does not
 * own), then pushes them back on the free stack. A stack reuses the slots
 * just freed, so the pages touched grow with the deepest backlog only.
 *
 * Writer: wakes when a batch is full, a session event or close arrives, or
 * every flush_ms; writes one BEGIN IMMEDIATE .. COMMIT per batch with
 * prepared statements: the rows, the session events, then the batch's
 * rollup sums (one upsert per key, txnrollup.c), so a reader sees rows and
 * rollups of the same commits. On failure the transaction is rolled back
 * and:
 *   SQLITE_BUSY / LOCKED   the same batch is retried every
 *                          TXNSTORE_RETRY_SLEEP_MS for busy_retry_ms (the
 *                          queue fills meanwhile and submit drops), then lost;
 *   SQLITE_FULL            the batch is lost, the connection kept;
 *   IOERR, CORRUPT, NOTADB, CANTOPEN, READONLY, PROTOCOL
 *                          the batch is lost, the connection closed, and the
 *                          file reopened (create, check, migrate) no sooner
 *                          than reopen_ms later; meanwhile batches are lost;
 *   anything else          the batch is lost.
 * Each failure sets last_error (file, SQLite's message, the code's name and
 * how many records) and counts errors and lost records.
 *
 * Retention (writer thread, at start and every retain_check_s): rows older
 * than retain_days are deleted, then, while the used pages exceed retain_mb,
 * the oldest rows (lowest id, i.e. written first) in chunks sized from how
 * far over the cap it is (at most TXNSTORE_RETAIN_CHUNK rows), each chunk
 * its own short transaction so submitters' batches interleave, in which the
 * chunk's rows are read, taken off the rollups and deleted. Ended sessions
 * older than retain_days go too. The file was created with auto_vacuum = INCREMENTAL, so after a pass
 * that deleted rows PRAGMA incremental_vacuum returns the free pages and a
 * passive checkpoint lets the file shrink; pages not returned are reused by
 * later inserts. The size cap counts used pages (page_count -
 * freelist_count), not the -wal file (journal_size_limit bounds that).
 */
#include "txnstore.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>

#include "../common/threadcaps.h"
#include "txnrollup.h"
#include "txnschema.h"

#define TXNSTORE_RETRY_SLEEP_MS  50       /* between attempts on a locked file */
#define TXNSTORE_RETAIN_CHUNK    5000     /* rows per retention DELETE at most */
#define TXNSTORE_RETAIN_ROUNDS   100000   /* chunks per pass at most (a pass always ends) */
#define TXNSTORE_SESSION_BATCH   64       /* session events per write */
#define TXNSTORE_SHORT_MAX       16       /* bytes of a session type incl. NUL */
#define TXNSTORE_ROLLUP_ROWS     16384    /* rows the rollups sum between two upserts at most */

/* The writer's connection: a page cache that holds the indexes' hot pages.
 * No mmap: a file truncated or damaged under a mapping raises SIGBUS, and
 * the store must not take the proxy down. */
#define WRITER_PRAGMAS "PRAGMA cache_size = -65536"

/* Checkpoints: the writer's commits only append to the WAL; once it holds
 * TXNSTORE_CKPT_PAGES pages the checkpointer thread copies them into the
 * file (PASSIVE, on a connection of its own: it waits for nobody and nobody
 * waits for it, and its fsyncs are not the writer's). Should it fall behind
 * past TXNSTORE_CKPT_INLINE pages, the writer checkpoints itself, as
 * SQLite's automatic checkpoint would. Durability is WAL + NORMAL either
 * way: the WAL is synced before a checkpoint, the file after it. */
#define TXNSTORE_CKPT_PAGES   8192
#define TXNSTORE_CKPT_INLINE  (8 * TXNSTORE_CKPT_PAGES)

typedef struct sess_slot {
    char user[TXN_NAME_MAX], domain[TXN_NAME_MAX];
    char vpn_addr[TXN_ADDR_MAX], public_addr[TXN_ADDR_MAX];
    char type[TXNSTORE_SHORT_MAX], headend[TXN_LABEL_MAX], end_reason[TXN_LABEL_MAX];
    int64_t start_ms, end_ms;
} sess_slot_t;

struct txnstore {
    txnstore_config_t cfg;            /* defaults filled in; cfg.path = path */
    char *path;
    char *wal_path;

    pthread_mutex_t mu;               /* everything below up to "writer only" */
    pthread_cond_t wake;              /* the writer's: batch full, session, close */
    pthread_cond_t ckpt_wake;         /* the checkpointer's: WAL long enough, close */
    bool stopping;
    bool ckpt_due;                    /* the writer asks for a checkpoint */
    txn_record_t *slots;
    uint32_t *freestk;
    size_t nfree;
    uint32_t *fifo;
    size_t head, count;
    sess_slot_t sess[TXNSTORE_SESSION_QUEUE];
    size_t shead, scount;
    txnstore_stats_t st;              /* counters; db_bytes filled on read */

    /* writer only (after open) */
    pthread_t thread, ckpt_thread;
    bool started, ckpt_started;
    sqlite3 *ckpt_db;                 /* the checkpointer thread's own */
    sqlite3 *db;
    sqlite3_stmt *ins_txn, *ins_sess, *del_txn;
    txnrollup_t *ru;                  /* the rollups' sums of the open transaction */
    int64_t *retire_ids;              /* the txn rows a retention chunk deletes */
    int64_t reopen_at_ms;
    int64_t next_retain_ms;
    int64_t close_deadline_ms;        /* set when the writer first sees stopping */
    uint32_t *batch;
    sess_slot_t *sbatch;
};

static const char ins_txn_sql[] =
    "INSERT INTO txn(time_ms, elapsed_ms, client, mode, result, status, bytes_out, method, host,"
    " url, url_cut, user, remote, user_source, identity_type, headend, identity_profile,"
    " access_policy, rule, category, decision, decision_tag, blocked, server, mime)"
    " VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)";

static const char ins_sess_sql[] =
    "INSERT INTO sessions(user, domain, vpn_addr, public_addr, type, headend, start_ms, end_ms,"
    " end_reason) VALUES(?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT(headend, vpn_addr, start_ms) DO UPDATE SET end_ms = excluded.end_ms,"
    " end_reason = excluded.end_reason WHERE excluded.end_ms <> 0";

/* ---- small helpers ---- */

static int64_t
clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
static int64_t wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Records an error (under mu): last_error, its time, errors + 1. */
static void
set_error(txnstore_t *s, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&s->mu);
    va_start(ap, fmt);
    vsnprintf(s->st.last_error, sizeof(s->st.last_error), fmt, ap);
    va_end(ap);
    s->st.last_error_ms = wall_ms();
    s->st.errors++;
    pthread_mutex_unlock(&s->mu);
}

static char
lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

size_t
txnstore_url_host(const char *url, char *host, size_t cap)
{
    const char *p = url ? url : "", *end, *at, *h, *he;
    size_t n = 0;

    if (cap == 0)
        return 0;
    for (const char *q = p; *q && *q != '/' && *q != '?' && *q != '#'; q++)
        if (q[0] == ':' && q[1] == '/' && q[2] == '/') {      /* scheme:// */
            p = q + 3;
            break;
        }
    if (*p == '/') {                                          /* origin-form: no host */
        host[0] = '\0';
        return 0;
    }
    end = p + strcspn(p, "/?#");
    at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    h = at ? at + 1 : p;
    if (*h == '[') {
        h++;
        he = memchr(h, ']', (size_t)(end - h));
        if (he == NULL)
            he = end;
    } else {
        he = memchr(h, ':', (size_t)(end - h));
        if (he == NULL)
            he = end;
    }
    while (h < he && n < cap - 1)
        host[n++] = lower(*h++);
    host[n] = '\0';
    return n;
}

size_t
txnstore_url_keep(const char *url, size_t len, bool keep_query)
{
    if (keep_query || url == NULL)
        return url ? len : 0;
    for (size_t i = 0; i < len; i++)
        if (url[i] == '?' || url[i] == '#' || url[i] == '\0')
            return i;
    return len;
}

bool
txnstore_blocked(const txn_record_t *r)
{
    if (r->decision == TXN_DECISION_BLOCK || r->decision == TXN_DECISION_REFUSE_UNIDENTIFIED)
        return true;
    return r->result == TXN_TCP_DENIED && r->decision != TXN_DECISION_AUTH;
}

/* ---- the writer's connection ---- */

static void
db_close(txnstore_t *s)
{
    sqlite3_finalize(s->ins_txn);
    sqlite3_finalize(s->ins_sess);
    sqlite3_finalize(s->del_txn);
    s->ins_txn = s->ins_sess = s->del_txn = NULL;
    if (s->ru != NULL)
        txnrollup_finalize(s->ru);
    if (s->db != NULL)
        sqlite3_close(s->db);
    s->db = NULL;
    pthread_mutex_lock(&s->mu);
    s->st.db_open = false;
    pthread_mutex_unlock(&s->mu);
}

/* Reads the stored time range into the stats. */
static void
read_range(txnstore_t *s)
{
    sqlite3_stmt *st = NULL;
    int64_t lo = 0, hi = 0;

    if (sqlite3_prepare_v2(s->db, "SELECT min(time_ms), max(time_ms) FROM txn", -1, &st,
                           NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        lo = sqlite3_column_int64(st, 0);
        hi = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    pthread_mutex_lock(&s->mu);
    s->st.oldest_ms = lo;
    s->st.newest_ms = hi;
    pthread_mutex_unlock(&s->mu);
}

/* The WAL hook of the writer's connection, after each commit (writer
 * thread): asks the checkpointer, or checkpoints when it is far behind. */
static int
wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
    txnstore_t *s = arg;

    if (pages >= TXNSTORE_CKPT_INLINE) {
        sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    } else if (pages >= TXNSTORE_CKPT_PAGES) {
        pthread_mutex_lock(&s->mu);
        s->ckpt_due = true;
        pthread_mutex_unlock(&s->mu);
        pthread_cond_signal(&s->ckpt_wake);
    }
    return SQLITE_OK;
}

/* Opens (creating, migrating) and prepares. 0, or -1 with err. */
static int
db_open(txnstore_t *s, char *err, size_t errlen)
{
    int rc;

    s->db = txnschema_open_rw(s->path, true, NULL, 0, err, errlen);
    if (s->db == NULL)
        return -1;
    sqlite3_exec(s->db, WRITER_PRAGMAS, NULL, NULL, NULL);     /* tuning only: errors ignored */
    sqlite3_wal_hook(s->db, wal_hook, s);                      /* replaces the automatic checkpoint */
    if ((rc = sqlite3_prepare_v3(s->db, ins_txn_sql, -1, SQLITE_PREPARE_PERSISTENT, &s->ins_txn,
                                 NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v3(s->db, ins_sess_sql, -1, SQLITE_PREPARE_PERSISTENT,
                                 &s->ins_sess, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v3(s->db, "DELETE FROM txn WHERE id = ?1", -1,
                                 SQLITE_PREPARE_PERSISTENT, &s->del_txn, NULL)) != SQLITE_OK ||
        (rc = txnrollup_prepare(s->ru, s->db)) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot prepare the inserts: %s (%s)", s->path,
                 sqlite3_errmsg(s->db), txnschema_rc_name(rc));
        db_close(s);
        return -1;
    }
    read_range(s);
    pthread_mutex_lock(&s->mu);
    s->st.db_open = true;
    pthread_mutex_unlock(&s->mu);
    return 0;
}

/* Errors after which the connection is not trusted any more. */
static bool
rc_reopen(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_IOERR: case SQLITE_CORRUPT: case SQLITE_NOTADB: case SQLITE_CANTOPEN:
    case SQLITE_READONLY: case SQLITE_PROTOCOL:
        return true;
    }
    return false;
}

static bool
rc_busy(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

static int
step_reset(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int
insert_txn(txnstore_t *s, const txn_record_t *r)
{
    sqlite3_stmt *st = s->ins_txn;
    char host[TXNSTORE_HOST_MAX];
    size_t ulen = strnlen(r->url, sizeof(r->url));
    bool blocked = txnstore_blocked(r);
    txnrollup_row_t ru = {r->end_ms, (int64_t)r->bytes_out, r->remote, blocked, r->user, host,
                          r->category, r->access_policy, r->rule};
    int i = 1, rc;

    txnstore_url_host(r->url, host, sizeof(host));
    ulen = txnstore_url_keep(r->url, ulen, s->cfg.keep_query);
#define BIND_TEXT(v) sqlite3_bind_text(st, i++, (v), -1, SQLITE_STATIC)
    sqlite3_bind_int64(st, i++, r->end_ms);
    sqlite3_bind_int64(st, i++, (sqlite3_int64)r->elapsed_ms);
    BIND_TEXT(r->client);
    BIND_TEXT(txn_mode_str(r->mode));
    BIND_TEXT(txn_result_str(r->result));
    sqlite3_bind_int(st, i++, r->status);
    sqlite3_bind_int64(st, i++, (sqlite3_int64)r->bytes_out);
    BIND_TEXT(r->method);
    BIND_TEXT(host);
    sqlite3_bind_text(st, i++, r->url, (int)ulen, SQLITE_STATIC);
    sqlite3_bind_int(st, i++, r->url_cut);
    BIND_TEXT(r->user);
    sqlite3_bind_int(st, i++, r->remote);
    BIND_TEXT(r->user_source);
    BIND_TEXT(r->identity_type);
    BIND_TEXT(r->headend);
    BIND_TEXT(r->identity_profile);
    BIND_TEXT(r->access_policy);
    BIND_TEXT(r->rule);
    BIND_TEXT(r->category);
    BIND_TEXT(txn_decision_str(r->decided ? r->decision : TXN_DECISION_NONE));
    BIND_TEXT(r->decision_tag);
    sqlite3_bind_int(st, i++, blocked);
    BIND_TEXT(r->server);
    BIND_TEXT(r->mime);
#undef BIND_TEXT
    if ((rc = step_reset(st)) != SQLITE_OK)
        return rc;
    return txnrollup_add(s->ru, &ru, +1);
}

static int
insert_sess(txnstore_t *s, const sess_slot_t *e)
{
    sqlite3_stmt *st = s->ins_sess;
    const char *text[] = {e->user, e->domain, e->vpn_addr, e->public_addr, e->type, e->headend};
    int i = 1;

    for (size_t k = 0; k < sizeof(text) / sizeof(text[0]); k++)
        sqlite3_bind_text(st, i++, text[k], -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, i++, e->start_ms);
    sqlite3_bind_int64(st, i++, e->end_ms);
    sqlite3_bind_text(st, i++, e->end_reason, -1, SQLITE_STATIC);
    return step_reset(st);
}

/* One attempt: the whole batch in one transaction, or nothing. */
/* Ends the transaction begun by the caller: COMMIT when rc is SQLITE_OK,
 * else ROLLBACK (and the rollups' pending sums are dropped). */
static int
end_txn(txnstore_t *s, int rc)
{
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        txnrollup_reset(s->ru);
    return rc;
}

/* One attempt: the whole batch and its rollups in one transaction, or
 * nothing. */
static int
write_once(txnstore_t *s, size_t n, size_t ns)
{
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        return rc;
    txnrollup_reset(s->ru);
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++)
        rc = insert_txn(s, &s->slots[s->batch[i]]);
    for (size_t i = 0; i < ns && rc == SQLITE_OK; i++)
        rc = insert_sess(s, &s->sbatch[i]);
    if (rc == SQLITE_OK)
        rc = txnrollup_flush(s->ru);
    return end_txn(s, rc);
}

/* Writes the taken batch (n records, ns session events): true if it was
 * committed, false if it was lost (counted by the caller). */
static bool
write_batch(txnstore_t *s, size_t n, size_t ns)
{
    int64_t start = mono_ms();
    bool noted_busy = false;
    int rc;

    if (s->db == NULL)            /* closing after a failed reopen */
        return false;
    for (;;) {
        int64_t now;
        bool stopping;

        rc = write_once(s, n, ns);
        if (rc == SQLITE_OK)
            return true;
        now = mono_ms();
        pthread_mutex_lock(&s->mu);
        stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stopping && s->close_deadline_ms == 0)
            s->close_deadline_ms = now + s->cfg.busy_retry_ms;
        if (!rc_busy(rc) || now - start >= s->cfg.busy_retry_ms ||
            (stopping && now >= s->close_deadline_ms))
            break;
        if (!noted_busy) {
            set_error(s, "%s: the transaction store is locked by another connection: %s (%s); "
                      "retrying %zu records for up to %u ms", s->path, sqlite3_errmsg(s->db),
                      txnschema_rc_name(rc), n, s->cfg.busy_retry_ms);
            noted_busy = true;
        }
        sleep_ms(TXNSTORE_RETRY_SLEEP_MS);
    }
    set_error(s, "%s: cannot write the transaction store: %s (%s); %zu records and %zu session "
              "events lost%s", s->path, sqlite3_errmsg(s->db), txnschema_rc_name(rc), n, ns,
              rc_reopen(rc) ? "; the file will be reopened" : "");
    if (rc_reopen(rc)) {
        db_close(s);
        s->reopen_at_ms = mono_ms() + s->cfg.reopen_ms;
    }
    return false;
}

/* ---- retention ---- */

/* Runs one DELETE (?1 = v when has_v, then the row limit) in its own
 * transaction; the number of rows deleted, or -1. */
static long long
delete_chunk(txnstore_t *s, const char *sql, bool has_v, int64_t v, long long limit)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    long long n = -1;

    if (rc == SQLITE_OK) {
        if (has_v)
            sqlite3_bind_int64(st, 1, v);
        sqlite3_bind_int64(st, has_v ? 2 : 1, limit);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            n = sqlite3_changes(s->db);
    }
    sqlite3_finalize(st);
    if (n < 0)
        set_error(s, "%s: retention: %s (%s)", s->path, sqlite3_errmsg(s->db),
                  txnschema_rc_name(rc));
    return n;
}

/* Deletes the txn rows sel picks (?1 = v when has_v, then the row limit,
 * at most TXNSTORE_RETAIN_CHUNK) and takes them off the rollups, in one
 * transaction; the number of rows deleted, or -1. */
static long long
retire_chunk(txnstore_t *s, const char *sel, bool has_v, int64_t v, long long limit)
{
    sqlite3_stmt *st = NULL;
    long long n = 0;
    int rc = sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    if (rc == SQLITE_OK) {
        txnrollup_reset(s->ru);
        rc = sqlite3_prepare_v2(s->db, sel, -1, &st, NULL);
    }
    if (rc == SQLITE_OK) {
        if (has_v)
            sqlite3_bind_int64(st, 1, v);
        sqlite3_bind_int64(st, has_v ? 2 : 1, limit);
        while (rc == SQLITE_OK && n < TXNSTORE_RETAIN_CHUNK &&
               (rc = sqlite3_step(st)) == SQLITE_ROW) {
            txnrollup_row_t row = {
                sqlite3_column_int64(st, 1), sqlite3_column_int64(st, 2),
                sqlite3_column_int(st, 3) != 0, sqlite3_column_int(st, 4) != 0,
                (const char *)sqlite3_column_text(st, 5),
                (const char *)sqlite3_column_text(st, 6),
                (const char *)sqlite3_column_text(st, 7),
                (const char *)sqlite3_column_text(st, 8),
                (const char *)sqlite3_column_text(st, 9)};
            s->retire_ids[n++] = sqlite3_column_int64(st, 0);
            rc = txnrollup_add(s->ru, &row, -1);
        }
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    for (long long i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_bind_int64(s->del_txn, 1, s->retire_ids[i]);
        rc = step_reset(s->del_txn);
    }
    if (rc == SQLITE_OK)
        rc = txnrollup_flush(s->ru);
    if ((rc = end_txn(s, rc)) != SQLITE_OK) {
        set_error(s, "%s: retention: %s (%s)", s->path, sqlite3_errmsg(s->db),
                  txnschema_rc_name(rc));
        return -1;
    }
    return n;
}

#define RETIRE_COLS "SELECT id, time_ms, bytes_out, remote, blocked, user, host, category," \
                    " access_policy, rule FROM txn"

/* One integer from the writer's connection, -1 on error or NULL. */
static long long
query_int(txnstore_t *s, const char *sql)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;

    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static long long
used_bytes(txnstore_t *s)
{
    return query_int(s, "SELECT ((SELECT page_count FROM pragma_page_count()) -"
                     " (SELECT freelist_count FROM pragma_freelist_count())) *"
                     " (SELECT page_size FROM pragma_page_size())");
}

static void
retention(txnstore_t *s)
{
    uint64_t deleted = 0;
    long long n;

    if (s->db == NULL)
        return;
    if (s->cfg.retain_days > 0) {
        int64_t cutoff = wall_ms() - (int64_t)s->cfg.retain_days * 86400000;
        for (int i = 0; i < TXNSTORE_RETAIN_ROUNDS; i++) {
            n = retire_chunk(s, RETIRE_COLS " WHERE time_ms < ?1 LIMIT ?2", true, cutoff,
                             TXNSTORE_RETAIN_CHUNK);
            if (n <= 0)
                break;
            deleted += (uint64_t)n;
        }
        delete_chunk(s, "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE"
                     " end_ms <> 0 AND end_ms < ?1 LIMIT ?2)", true, cutoff,
                     TXNSTORE_RETAIN_CHUNK);
    }
    if (s->cfg.retain_mb > 0) {
        /* rows to go: the share of the used bytes over the cap, of the
         * rows held (ids are about contiguous: the oldest go first) */
        long long cap = (long long)(s->cfg.retain_mb * 1024 * 1024), used, span, chunk;
        for (int i = 0; i < TXNSTORE_RETAIN_ROUNDS && (used = used_bytes(s)) > cap; i++) {
            span = query_int(s, "SELECT max(id) - min(id) + 1 FROM txn");
            if (span <= 0)
                break;
            chunk = span * (used - cap) / used + 1;
            if (chunk > TXNSTORE_RETAIN_CHUNK)
                chunk = TXNSTORE_RETAIN_CHUNK;
            n = retire_chunk(s, RETIRE_COLS " ORDER BY id LIMIT ?1", false, 0, chunk);
            if (n <= 0)
                break;
            deleted += (uint64_t)n;
        }
    }
    if (deleted > 0) {
        sqlite3_exec(s->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
        sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        read_range(s);
        pthread_mutex_lock(&s->mu);
        s->st.retention_deleted += deleted;
        pthread_mutex_unlock(&s->mu);
    }
}

/* ---- the writer thread ---- */

/* The time range of the batch's n records (writer, without the lock). */
static void
batch_range(const txnstore_t *s, size_t n, int64_t *lo, int64_t *hi)
{
    *lo = *hi = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t = s->slots[s->batch[i]].end_ms;
        if (i == 0 || t < *lo)
            *lo = t;
        if (i == 0 || t > *hi)
            *hi = t;
    }
}

/* Under mu: the stats' stored range grows by [lo, hi] of n records. */
static void
note_written(txnstore_t *s, size_t n, int64_t lo, int64_t hi)
{
    if (n > 0 && (s->st.oldest_ms == 0 || lo < s->st.oldest_ms))
        s->st.oldest_ms = lo;
    if (n > 0 && hi > s->st.newest_ms)
        s->st.newest_ms = hi;
}

/* Under mu: takes up to max slot numbers off the fifo into the batch (two
 * copies at most: the ring may wrap). */
static size_t
take_batch(txnstore_t *s, size_t max)
{
    size_t n = s->count < max ? s->count : max;
    size_t first = s->cfg.queue_max - s->head < n ? s->cfg.queue_max - s->head : n;

    memcpy(s->batch, s->fifo + s->head, first * sizeof(*s->batch));
    memcpy(s->batch + first, s->fifo, (n - first) * sizeof(*s->batch));
    s->head = (s->head + n) % s->cfg.queue_max;
    s->count -= n;
    return n;
}

static void
wait_ms(txnstore_t *s, int64_t ms)
{
    struct timespec ts;

    if (ms < 1)
        ms = 1;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&s->wake, &s->mu, &ts);
}

/* Tries to open the file again after a failure (writer thread). */
static void
reopen(txnstore_t *s)
{
    char err[TXNSTORE_ERR_MAX];

    if (db_open(s, err, sizeof(err)) == 0)
        return;
    set_error(s, "%s; will retry in %u ms", err, s->cfg.reopen_ms);
    s->reopen_at_ms = mono_ms() + s->cfg.reopen_ms;
}

/* The loop: while the file is closed after an error the queue is left alone
 * (it fills and submit drops, counted) until the next reopen attempt; on
 * close one last attempt is made and what still cannot be written is lost. */
static void *
writer_main(void *arg)
{
    txnstore_t *s = arg;

    (void)threadcaps_drop_unless_root();   /* writes SQLite only; may start before the privilege drop */
    for (;;) {
        size_t n = 0, ns = 0;
        int64_t lo, hi;
        bool ok, stopping;

        pthread_mutex_lock(&s->mu);
        stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (s->db == NULL && (stopping || mono_ms() >= s->reopen_at_ms))
            reopen(s);

        pthread_mutex_lock(&s->mu);
        if (!s->stopping && s->db == NULL)
            wait_ms(s, s->reopen_at_ms - mono_ms());
        else if (!s->stopping && s->count < s->cfg.batch_max && s->scount == 0)
            wait_ms(s, s->cfg.flush_ms);
        if (s->db != NULL || s->stopping) {
            n = take_batch(s, s->cfg.batch_max);
            while (ns < TXNSTORE_SESSION_BATCH && s->scount > 0) {
                s->sbatch[ns++] = s->sess[s->shead];
                s->shead = (s->shead + 1) % TXNSTORE_SESSION_QUEUE;
                s->scount--;
            }
        }
        if (n == 0 && ns == 0 && s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        pthread_mutex_unlock(&s->mu);

        ok = (n == 0 && ns == 0) || write_batch(s, n, ns);
        batch_range(s, n, &lo, &hi);

        pthread_mutex_lock(&s->mu);
        if (ok) {
            s->st.written += n;
            s->st.sessions_written += ns;
            if (n + ns > 0)
                s->st.batches++;
            note_written(s, n, lo, hi);
        } else {
            s->st.lost += n;
            s->st.sessions_lost += ns;
        }
        memcpy(s->freestk + s->nfree, s->batch, n * sizeof(*s->batch));
        s->nfree += n;
        s->st.queued -= n;
        pthread_mutex_unlock(&s->mu);

        if (s->db != NULL && mono_ms() >= s->next_retain_ms) {
            retention(s);
            s->next_retain_ms = mono_ms() + (int64_t)s->cfg.retain_check_s * 1000;
        }
    }
    return NULL;
}

/* The checkpointer thread: one PASSIVE checkpoint each time the writer
 * asks, on its own connection (opened when first needed, closed after an
 * error and opened again next time). A checkpoint that fails loses nothing:
 * the WAL keeps the pages and the next one copies them. */
static void *
ckpt_main(void *arg)
{
    txnstore_t *s = arg;

    (void)threadcaps_drop_unless_root();
    for (;;) {
        int rc;

        pthread_mutex_lock(&s->mu);
        while (!s->ckpt_due && !s->stopping)
            pthread_cond_wait(&s->ckpt_wake, &s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        s->ckpt_due = false;
        pthread_mutex_unlock(&s->mu);
        if (s->ckpt_db == NULL) {
            rc = sqlite3_open_v2(s->path, &s->ckpt_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                                 NULL);
            if (rc == SQLITE_OK)
                rc = sqlite3_exec(s->ckpt_db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        } else {
            rc = SQLITE_OK;
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_wal_checkpoint_v2(s->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                           NULL);
        if (rc != SQLITE_OK && !rc_busy(rc)) {
            set_error(s, "%s: checkpoint: %s (%s); the WAL keeps the pages", s->path,
                      s->ckpt_db ? sqlite3_errmsg(s->ckpt_db) : sqlite3_errstr(rc),
                      txnschema_rc_name(rc));
            sqlite3_close(s->ckpt_db);
            s->ckpt_db = NULL;
        }
    }
    sqlite3_close(s->ckpt_db);
    s->ckpt_db = NULL;
    return NULL;
}

/* ---- the public side ---- */

/* The queue's slots: anonymous memory mapped directly, so pages no record
 * ever used are never touched, whatever the allocator does (calloc under
 * MALLOC_PERTURB_ writes every byte). NULL if it cannot be mapped. */
static txn_record_t *
slots_map(size_t n)
{
    void *p = mmap(NULL, n * sizeof(txn_record_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static void
slots_unmap(txn_record_t *slots, size_t n)
{
    if (slots != NULL)
        munmap(slots, n * sizeof(txn_record_t));
}

txnstore_t *
txnstore_open(const txnstore_config_t *cfg, char *err, size_t errlen)
{
    txnstore_t *s;
    pthread_condattr_t ca;
    size_t plen;

    if (cfg == NULL || cfg->path == NULL || cfg->path[0] == '\0') {
        snprintf(err, errlen, "transaction store: no path");
        return NULL;
    }
    if (cfg->queue_max > TXNSTORE_QUEUE_MAX) {
        snprintf(err, errlen, "transaction store: queue_max %zu is over %u", cfg->queue_max,
                 TXNSTORE_QUEUE_MAX);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "transaction store: out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_cond_init(&s->ckpt_wake, NULL);
    pthread_condattr_destroy(&ca);
    s->cfg = *cfg;
    if (s->cfg.queue_max == 0)
        s->cfg.queue_max = TXNSTORE_QUEUE_DEFAULT;
    if (s->cfg.batch_max == 0) {
        /* at most about a quarter of the queue, so that submits find free
         * slots while a batch is being written */
        size_t quarter = s->cfg.queue_max / 4 + 1;
        s->cfg.batch_max = quarter < TXNSTORE_BATCH_DEFAULT ? (unsigned)quarter
                                                            : TXNSTORE_BATCH_DEFAULT;
    }
    if (s->cfg.flush_ms == 0)
        s->cfg.flush_ms = TXNSTORE_FLUSH_MS_DEFAULT;
    if (s->cfg.retain_check_s == 0)
        s->cfg.retain_check_s = TXNSTORE_RETAIN_CHECK_S;
    if (s->cfg.reopen_ms == 0)
        s->cfg.reopen_ms = TXNSTORE_REOPEN_MS;
    if (s->cfg.busy_retry_ms == 0)
        s->cfg.busy_retry_ms = TXNSTORE_BUSY_RETRY_MS;
    if (s->cfg.batch_max > s->cfg.queue_max)
        s->cfg.batch_max = (unsigned)s->cfg.queue_max;
    plen = strlen(cfg->path);
    s->path = strdup(cfg->path);
    s->wal_path = malloc(plen + 5);
    s->slots = slots_map(s->cfg.queue_max);
    s->freestk = malloc(s->cfg.queue_max * sizeof(*s->freestk));
    s->fifo = malloc(s->cfg.queue_max * sizeof(*s->fifo));
    s->batch = malloc(s->cfg.batch_max * sizeof(*s->batch));
    s->sbatch = malloc(TXNSTORE_SESSION_BATCH * sizeof(*s->sbatch));
    s->retire_ids = malloc(TXNSTORE_RETAIN_CHUNK * sizeof(*s->retire_ids));
    s->ru = txnrollup_new(s->cfg.batch_max < TXNSTORE_ROLLUP_ROWS ? s->cfg.batch_max
                                                                  : TXNSTORE_ROLLUP_ROWS);
    if (!s->path || !s->wal_path || !s->slots || !s->freestk || !s->fifo || !s->batch ||
        !s->sbatch || !s->retire_ids || !s->ru)
        goto oom;
    s->cfg.path = s->path;
    snprintf(s->wal_path, plen + 5, "%s-wal", s->path);
    for (size_t i = 0; i < s->cfg.queue_max; i++)        /* slot 0 on top */
        s->freestk[i] = (uint32_t)(s->cfg.queue_max - 1 - i);
    s->nfree = s->cfg.queue_max;
    if (db_open(s, err, errlen) < 0)
        goto fail;
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        snprintf(err, errlen, "%s: cannot start the writer thread: %s", s->path, strerror(errno));
        goto fail;
    }
    s->started = true;
    pthread_setname_np(s->thread, "mp-store");
    if (pthread_create(&s->ckpt_thread, NULL, ckpt_main, s) != 0) {
        snprintf(err, errlen, "%s: cannot start the checkpoint thread: %s", s->path,
                 strerror(errno));
        goto fail;
    }
    s->ckpt_started = true;
    pthread_setname_np(s->ckpt_thread, "mp-store-ckpt");
    return s;
oom:
    snprintf(err, errlen, "transaction store: out of memory");
fail:
    txnstore_close(s);
    return NULL;
}

/* *r into a slot, the URL only up to its NUL: a typical record is some
 * 1.2 KiB of its 5 KiB, and the slot's untouched pages stay untouched. */
static void
copy_record(txn_record_t *dst, const txn_record_t *r)
{
    size_t ulen = strnlen(r->url, sizeof(r->url) - 1);
    size_t tail = offsetof(txn_record_t, url_len);

    memcpy(dst, r, offsetof(txn_record_t, url));
    memcpy(dst->url, r->url, ulen);
    dst->url[ulen] = '\0';
    memcpy((char *)dst + tail, (const char *)r + tail, sizeof(*r) - tail);
}

bool
txnstore_submit(txnstore_t *s, const txn_record_t *r)
{
    uint32_t slot;
    bool full_batch;

    pthread_mutex_lock(&s->mu);
    if (s->nfree == 0 || s->stopping) {
        s->st.dropped++;
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    slot = s->freestk[--s->nfree];
    copy_record(&s->slots[slot], r);
    s->fifo[(s->head + s->count) % s->cfg.queue_max] = slot;
    s->count++;
    s->st.queued++;
    s->st.submitted++;
    full_batch = s->count == s->cfg.batch_max;
    pthread_mutex_unlock(&s->mu);
    if (full_batch)
        pthread_cond_signal(&s->wake);
    return true;
}

bool
txnstore_session_event(txnstore_t *s, const txnstore_session_t *ev)
{
    sess_slot_t *e;

    pthread_mutex_lock(&s->mu);
    if (s->scount == TXNSTORE_SESSION_QUEUE || s->stopping) {
        s->st.sessions_dropped++;
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    e = &s->sess[(s->shead + s->scount) % TXNSTORE_SESSION_QUEUE];
    txn_copy_str(e->user, sizeof(e->user), ev->user);
    txn_copy_str(e->domain, sizeof(e->domain), ev->domain);
    txn_copy_str(e->vpn_addr, sizeof(e->vpn_addr), ev->vpn_addr);
    txn_copy_str(e->public_addr, sizeof(e->public_addr), ev->public_addr);
    txn_copy_str(e->type, sizeof(e->type), ev->type);
    txn_copy_str(e->headend, sizeof(e->headend), ev->headend);
    txn_copy_str(e->end_reason, sizeof(e->end_reason), ev->end_reason);
    e->start_ms = ev->start_ms;
    e->end_ms = ev->end_ms;
    s->scount++;
    pthread_mutex_unlock(&s->mu);
    pthread_cond_signal(&s->wake);
    return true;
}

static uint64_t
file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

void
txnstore_stats(txnstore_t *s, txnstore_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
    out->db_bytes = file_size(s->path) + file_size(s->wal_path);
}

void
txnstore_close(txnstore_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    if (s->ckpt_started) {                /* first: the writer's close is the last checkpoint */
        pthread_cond_signal(&s->ckpt_wake);
        pthread_join(s->ckpt_thread, NULL);
    }
    if (s->started) {
        pthread_cond_signal(&s->wake);
        pthread_join(s->thread, NULL);
    }
    db_close(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    pthread_cond_destroy(&s->ckpt_wake);
    slots_unmap(s->slots, s->cfg.queue_max);
    free(s->freestk);
    free(s->fifo);
    free(s->batch);
    free(s->sbatch);
    free(s->retire_ids);
    txnrollup_free(s->ru);
    free(s->path);
    free(s->wal_path);
    free(s);
}
