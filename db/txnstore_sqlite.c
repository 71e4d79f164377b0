/*
 * db/txnstore_sqlite.c: the transaction store's SQLite backend (the
 * default): the writer's connection to one file in WAL mode, its batches,
 * retention and the checkpoint thread (see txnstore_int.h for the backend
 * interface; the queue and the writer thread are in txnstore.c, the schema
 * in txnschema.c, the rollups' sums in txnrollup.c).
 *
 * Writer: one BEGIN IMMEDIATE .. COMMIT per batch with prepared
 * statements: the rows, the session events, then the batch's rollup sums
 * (one upsert per key, txnrollup.c), so a reader sees rows and rollups of
 * the same commits. On failure the transaction is rolled back and:
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
#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/threadcaps.h"
#include "txnschema.h"
#include "txnstore_int.h"

#define TXNSTORE_RETRY_SLEEP_MS  50       /* between attempts on a locked file */
#define TXNSTORE_RETAIN_CHUNK    5000     /* rows per retention DELETE at most */
#define TXNSTORE_RETAIN_ROUNDS   100000   /* chunks per pass at most (a pass always ends) */

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

typedef struct sq_state {
    char *wal_path;
    pthread_cond_t ckpt_wake;         /* the checkpointer's: WAL long enough, close (with s->mu) */
    bool ckpt_due;                    /* the writer asks for a checkpoint (under s->mu) */
    pthread_t ckpt_thread;
    bool ckpt_started;
    sqlite3 *ckpt_db;                 /* the checkpointer thread's own */
    sqlite3 *db;                      /* the writer's */
    sqlite3_stmt *ins_txn, *ins_sess, *del_txn;
    int64_t *retire_ids;              /* the txn rows a retention chunk deletes */
} sq_state_t;

#define SQ(s) ((sq_state_t *)(s)->be_st)

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

/* ---- the writer's connection ---- */

static void
db_close(txnstore_t *s)
{
    sqlite3_finalize(SQ(s)->ins_txn);
    sqlite3_finalize(SQ(s)->ins_sess);
    sqlite3_finalize(SQ(s)->del_txn);
    SQ(s)->ins_txn = SQ(s)->ins_sess = SQ(s)->del_txn = NULL;
    if (s->ru != NULL)
        txnrollup_finalize(s->ru);
    if (SQ(s)->db != NULL)
        sqlite3_close(SQ(s)->db);
    SQ(s)->db = NULL;
}

/* Reads the stored time range into the stats. */
static void
read_range(txnstore_t *s)
{
    sqlite3_stmt *st = NULL;
    int64_t lo = 0, hi = 0;

    if (sqlite3_prepare_v2(SQ(s)->db, "SELECT min(time_ms), max(time_ms) FROM txn", -1, &st,
                           NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
        lo = sqlite3_column_int64(st, 0);
        hi = sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    txnstore_set_range(s, lo, hi);
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
        SQ(s)->ckpt_due = true;
        pthread_mutex_unlock(&s->mu);
        pthread_cond_signal(&SQ(s)->ckpt_wake);
    }
    return SQLITE_OK;
}

/* Opens (creating, migrating) and prepares. 0, or -1 with err. */
static int
db_open(txnstore_t *s, char *err, size_t errlen)
{
    int rc;

    SQ(s)->db = txnschema_open_rw(s->path, true, NULL, 0, err, errlen);
    if (SQ(s)->db == NULL)
        return -1;
    sqlite3_exec(SQ(s)->db, WRITER_PRAGMAS, NULL, NULL, NULL);  /* tuning only: errors ignored */
    sqlite3_wal_hook(SQ(s)->db, wal_hook, s);                   /* replaces the automatic checkpoint */
    if ((rc = sqlite3_prepare_v3(SQ(s)->db, ins_txn_sql, -1, SQLITE_PREPARE_PERSISTENT,
                                 &SQ(s)->ins_txn, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v3(SQ(s)->db, ins_sess_sql, -1, SQLITE_PREPARE_PERSISTENT,
                                 &SQ(s)->ins_sess, NULL)) != SQLITE_OK ||
        (rc = sqlite3_prepare_v3(SQ(s)->db, "DELETE FROM txn WHERE id = ?1", -1,
                                 SQLITE_PREPARE_PERSISTENT, &SQ(s)->del_txn, NULL)) != SQLITE_OK ||
        (rc = txnrollup_prepare(s->ru, SQ(s)->db)) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot prepare the inserts: %s (%s)", s->path,
                 sqlite3_errmsg(SQ(s)->db), txnschema_rc_name(rc));
        db_close(s);
        return -1;
    }
    read_range(s);
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
    sqlite3_stmt *st = SQ(s)->ins_txn;
    char host[TXNSTORE_HOST_MAX];
    txnrollup_row_t ru;
    size_t ulen = txnstore_row_view(s, r, host, &ru);
    int i = 1, rc;

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
    sqlite3_bind_int(st, i++, ru.blocked);
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
    sqlite3_stmt *st = SQ(s)->ins_sess;
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
        rc = sqlite3_exec(SQ(s)->db, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK && !sqlite3_get_autocommit(SQ(s)->db))
        sqlite3_exec(SQ(s)->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        txnrollup_reset(s->ru);
    return rc;
}

/* One attempt: the whole batch and its rollups in one transaction, or
 * nothing. */
static int
write_once(txnstore_t *s, size_t n, size_t ns)
{
    int rc = sqlite3_exec(SQ(s)->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

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
    int64_t start = txnstore_mono_ms();
    bool noted_busy = false;
    int rc;

    if (SQ(s)->db == NULL)            /* closing after a failed reopen */
        return false;
    for (;;) {
        int64_t now;
        bool stopping;

        rc = write_once(s, n, ns);
        if (rc == SQLITE_OK)
            return true;
        now = txnstore_mono_ms();
        stopping = txnstore_stopping(s);
        if (stopping && s->close_deadline_ms == 0)
            s->close_deadline_ms = now + s->cfg.busy_retry_ms;
        if (!rc_busy(rc) || now - start >= s->cfg.busy_retry_ms ||
            (stopping && now >= s->close_deadline_ms))
            break;
        if (!noted_busy) {
            txnstore_error(s, "%s: the transaction store is locked by another connection: %s "
                      "(%s); retrying %zu records for up to %u ms", s->path, sqlite3_errmsg(SQ(s)->db),
                      txnschema_rc_name(rc), n, s->cfg.busy_retry_ms);
            noted_busy = true;
        }
        txnstore_sleep_ms(TXNSTORE_RETRY_SLEEP_MS);
    }
    txnstore_error(s, "%s: cannot write the transaction store: %s (%s); %zu records and %zu "
              "session events lost%s", s->path, sqlite3_errmsg(SQ(s)->db), txnschema_rc_name(rc), n, ns,
              rc_reopen(rc) ? "; the file will be reopened" : "");
    if (rc_reopen(rc)) {
        db_close(s);
        txnstore_conn_lost(s);
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
    int rc = sqlite3_prepare_v2(SQ(s)->db, sql, -1, &st, NULL);
    long long n = -1;

    if (rc == SQLITE_OK) {
        if (has_v)
            sqlite3_bind_int64(st, 1, v);
        sqlite3_bind_int64(st, has_v ? 2 : 1, limit);
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
            n = sqlite3_changes(SQ(s)->db);
    }
    sqlite3_finalize(st);
    if (n < 0)
        txnstore_error(s, "%s: retention: %s (%s)", s->path, sqlite3_errmsg(SQ(s)->db),
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
    int rc = sqlite3_exec(SQ(s)->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

    if (rc == SQLITE_OK) {
        txnrollup_reset(s->ru);
        rc = sqlite3_prepare_v2(SQ(s)->db, sel, -1, &st, NULL);
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
            SQ(s)->retire_ids[n++] = sqlite3_column_int64(st, 0);
            rc = txnrollup_add(s->ru, &row, -1);
        }
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
            rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    for (long long i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_bind_int64(SQ(s)->del_txn, 1, SQ(s)->retire_ids[i]);
        rc = step_reset(SQ(s)->del_txn);
    }
    if (rc == SQLITE_OK)
        rc = txnrollup_flush(s->ru);
    if ((rc = end_txn(s, rc)) != SQLITE_OK) {
        txnstore_error(s, "%s: retention: %s (%s)", s->path, sqlite3_errmsg(SQ(s)->db),
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

    if (sqlite3_prepare_v2(SQ(s)->db, sql, -1, &st, NULL) == SQLITE_OK &&
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

    if (SQ(s)->db == NULL)
        return;
    if (s->cfg.retain_days > 0) {
        int64_t cutoff = txnstore_wall_ms() - (int64_t)s->cfg.retain_days * 86400000;
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
        sqlite3_exec(SQ(s)->db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
        sqlite3_wal_checkpoint_v2(SQ(s)->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        read_range(s);
        txnstore_note_retired(s, deleted);
    }
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
        while (!SQ(s)->ckpt_due && !s->stopping)
            pthread_cond_wait(&SQ(s)->ckpt_wake, &s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        SQ(s)->ckpt_due = false;
        pthread_mutex_unlock(&s->mu);
        if (SQ(s)->ckpt_db == NULL) {
            rc = sqlite3_open_v2(s->path, &SQ(s)->ckpt_db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
            if (rc == SQLITE_OK)
                rc = sqlite3_exec(SQ(s)->ckpt_db, "PRAGMA synchronous = NORMAL", NULL, NULL, NULL);
        } else {
            rc = SQLITE_OK;
        }
        if (rc == SQLITE_OK)
            rc = sqlite3_wal_checkpoint_v2(SQ(s)->ckpt_db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL,
                                           NULL);
        if (rc != SQLITE_OK && !rc_busy(rc)) {
            txnstore_error(s, "%s: checkpoint: %s (%s); the WAL keeps the pages", s->path,
                      SQ(s)->ckpt_db ? sqlite3_errmsg(SQ(s)->ckpt_db) : sqlite3_errstr(rc),
                      txnschema_rc_name(rc));
            sqlite3_close(SQ(s)->ckpt_db);
            SQ(s)->ckpt_db = NULL;
        }
    }
    sqlite3_close(SQ(s)->ckpt_db);
    SQ(s)->ckpt_db = NULL;
    return NULL;
}

/* ---- the backend's entry points ---- */

static int
sq_init(txnstore_t *s, char *err, size_t errlen)
{
    size_t plen = strlen(s->path);
    sq_state_t *q = calloc(1, sizeof(*q));

    if (q == NULL)
        goto oom;
    s->be_st = q;
    pthread_cond_init(&q->ckpt_wake, NULL);
    q->wal_path = malloc(plen + 5);
    q->retire_ids = malloc(TXNSTORE_RETAIN_CHUNK * sizeof(*q->retire_ids));
    if (q->wal_path == NULL || q->retire_ids == NULL)
        goto oom;
    snprintf(q->wal_path, plen + 5, "%s-wal", s->path);
    if (db_open(s, err, errlen) < 0)
        return -1;
    s->connected = true;
    if (pthread_create(&q->ckpt_thread, NULL, ckpt_main, s) != 0) {
        snprintf(err, errlen, "%s: cannot start the checkpoint thread: %s", s->path,
                 strerror(errno));
        return -1;
    }
    q->ckpt_started = true;
    pthread_setname_np(q->ckpt_thread, "mp-store-ckpt");
    return 0;
oom:
    snprintf(err, errlen, "transaction store: out of memory");
    return -1;
}

static enum txnstore_write
sq_write(txnstore_t *s, size_t n, size_t ns)
{
    return write_batch(s, n, ns) ? TXNSTORE_WRITE_OK : TXNSTORE_WRITE_LOST;
}

static int
sq_connect(txnstore_t *s, char *err, size_t errlen)
{
    return db_open(s, err, errlen);
}

/* First the checkpointer: the writer's close is the last checkpoint. */
static void
sq_stop(txnstore_t *s)
{
    sq_state_t *q = SQ(s);

    if (q != NULL && q->ckpt_started) {
        pthread_cond_signal(&q->ckpt_wake);
        pthread_join(q->ckpt_thread, NULL);
        q->ckpt_started = false;
    }
}

static void
sq_fini(txnstore_t *s)
{
    sq_state_t *q = SQ(s);

    if (q == NULL)
        return;
    sq_stop(s);
    db_close(s);
    pthread_cond_destroy(&q->ckpt_wake);
    free(q->wal_path);
    free(q->retire_ids);
    free(q);
    s->be_st = NULL;
}

static uint64_t
file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
}

static uint64_t
sq_bytes(txnstore_t *s)
{
    return file_size(s->path) + (SQ(s) ? file_size(SQ(s)->wal_path) : 0);
}

const txnstore_ops_t txnstore_sqlite_backend = {
    .name = "sqlite",
    .backoff = false,
    .init = sq_init,
    .connect = sq_connect,
    .write = sq_write,
    .retain = retention,
    .stop = sq_stop,
    .fini = sq_fini,
    .bytes = sq_bytes,
};
