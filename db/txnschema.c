/*
 * db/txnschema.c: opening a transaction store file and its forward
 * migrations (see txnschema.h). No state, no threads, no queries beyond the
 * schema's own.
 *
 * Versions: user_version 0 is an empty file (created here), N > 0 is a store
 * at schema N. Each step of txnschema_steps moves one version forward in one
 * transaction (the script and the new user_version commit together, so a
 * crash leaves the old or the new schema). A file with a user_version newer
 * than the last known step was written by a newer musproxy and is refused:
 * the older code would misread or damage its rows. Adding a version means
 * appending a step {N + 1, "ALTER TABLE ..."}; steps are never edited once
 * released.
 *
 * Indexes: time, (user, time), (category, time). There is no host index on
 * purpose: with 500 distinct hosts it made every batch dirty pages all over
 * the index (measured here: about 8 000 instead of 67 000 rows/s with
 * 512-row batches); host filters scan the time range instead.
 *
 * Threads: connections are opened without SQLite's per-connection mutex
 * (SQLITE_OPEN_NOMUTEX): each is used by one thread at a time (the writer
 * thread; a report_t's caller), and the writer makes some 30 calls per row.
 *
 * Space: a new file is created with auto_vacuum = INCREMENTAL (it can only be
 * chosen before the first table), so the writer's retention can hand freed
 * pages back to the file system with PRAGMA incremental_vacuum.
 */
#include "txnschema.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/err.h"

#define TXNSCHEMA_WAL_LIMIT  (64 * 1024 * 1024)   /* journal_size_limit: WAL kept after a checkpoint */

static const char schema_v1[] =
    "CREATE TABLE txn("
    " id INTEGER PRIMARY KEY,"
    " time_ms INTEGER NOT NULL,"          /* end of the transaction, Unix ms */
    " elapsed_ms INTEGER NOT NULL,"
    " client TEXT NOT NULL,"
    " mode TEXT NOT NULL,"                /* explicit, transparent */
    " result TEXT NOT NULL,"              /* TCP_MISS, TCP_DENIED, ... */
    " status INTEGER NOT NULL,"
    " bytes_out INTEGER NOT NULL,"
    " method TEXT NOT NULL,"
    " host TEXT NOT NULL,"                /* lowercase, no port, no brackets */
    " url TEXT NOT NULL,"                 /* without ?query unless keep_query */
    " url_cut INTEGER NOT NULL,"          /* the proxy kept only TXN_URL_MAX - 1 bytes */
    " user TEXT NOT NULL,"
    " remote INTEGER NOT NULL,"           /* 1 remote (VPN), 0 local */
    " user_source TEXT NOT NULL,"
    " identity_type TEXT NOT NULL,"
    " headend TEXT NOT NULL,"
    " identity_profile TEXT NOT NULL,"
    " access_policy TEXT NOT NULL,"
    " rule TEXT NOT NULL,"
    " category TEXT NOT NULL,"
    " decision TEXT NOT NULL,"            /* txn_decision_str() */
    " decision_tag TEXT NOT NULL,"
    " blocked INTEGER NOT NULL,"          /* txnstore_blocked() */
    " server TEXT NOT NULL,"
    " mime TEXT NOT NULL);"
    "CREATE INDEX txn_time ON txn(time_ms);"
    "CREATE INDEX txn_user ON txn(user, time_ms);"
    "CREATE INDEX txn_category ON txn(category, time_ms);"
    "CREATE TABLE sessions("
    " id INTEGER PRIMARY KEY,"
    " user TEXT NOT NULL,"
    " domain TEXT NOT NULL,"
    " vpn_addr TEXT NOT NULL,"
    " public_addr TEXT NOT NULL,"
    " type TEXT NOT NULL,"                /* user, machine */
    " headend TEXT NOT NULL,"
    " start_ms INTEGER NOT NULL,"
    " end_ms INTEGER NOT NULL,"           /* 0 while open */
    " end_reason TEXT NOT NULL,"
    " UNIQUE(headend, vpn_addr, start_ms));"
    "CREATE INDEX sessions_end ON sessions(end_ms);";

/* Version 2: the rollups (see txnschema.h). Every table is keyed by (span,
 * bucket, remote, ...) where bucket is the start of the UTC-aligned hour or
 * day (floor division, so times before 1970 fall in the right bucket too),
 * and holds the sums of the txn rows of that bucket and key; a key without
 * rows has no row. The step backfills them from the rows already stored:
 * hours from txn, days from the hours. */
#define RU_HOUR "3600000"
#define RU_DAY  "86400000"
#define RU_FLOOR(t, span) "(" t " - ((" t " % " span ") + " span ") % " span ")"
#define RU_SUMS " requests INTEGER NOT NULL, bytes INTEGER NOT NULL, blocked INTEGER NOT NULL,"
#define RU_KEY  " span INTEGER NOT NULL, bucket INTEGER NOT NULL, remote INTEGER NOT NULL," \
                " user TEXT NOT NULL,"
#define RU_FILL(table, cols, where) \
    "INSERT INTO " table "(span, bucket, remote, " cols ", requests, bytes, blocked)" \
    " SELECT " RU_HOUR ", " RU_FLOOR("time_ms", RU_HOUR) ", remote, " cols ", count(*)," \
    " sum(bytes_out), sum(blocked) FROM txn " where " GROUP BY 2, 3, " cols ";" \
    "INSERT INTO " table "(span, bucket, remote, " cols ", requests, bytes, blocked)" \
    " SELECT " RU_DAY ", " RU_FLOOR("bucket", RU_DAY) ", remote, " cols ", sum(requests)," \
    " sum(bytes), sum(blocked) FROM " table " WHERE span = " RU_HOUR " GROUP BY 2, 3, " cols ";"

static const char schema_v2[] =
    "CREATE TABLE ru_user(" RU_KEY RU_SUMS
    " PRIMARY KEY(span, bucket, remote, user)) WITHOUT ROWID;"
    "CREATE TABLE ru_category(" RU_KEY " category TEXT NOT NULL," RU_SUMS
    " PRIMARY KEY(span, bucket, remote, user, category)) WITHOUT ROWID;"
    "CREATE TABLE ru_host(" RU_KEY " host TEXT NOT NULL," RU_SUMS
    " PRIMARY KEY(span, bucket, remote, user, host)) WITHOUT ROWID;"
    "CREATE TABLE ru_blocked(" RU_KEY " host TEXT NOT NULL, category TEXT NOT NULL,"
    " access_policy TEXT NOT NULL, rule TEXT NOT NULL," RU_SUMS
    " PRIMARY KEY(span, bucket, remote, user, host, category, access_policy, rule))"
    " WITHOUT ROWID;"
    RU_FILL("ru_user", "user", "")
    RU_FILL("ru_category", "user, category", "")
    RU_FILL("ru_host", "user, host", "")
    RU_FILL("ru_blocked", "user, host, category, access_policy, rule", "WHERE blocked = 1");

const txnschema_step_t txnschema_steps[] = {
    {1, schema_v1},
    {2, schema_v2},
};
const size_t txnschema_nsteps = sizeof(txnschema_steps) / sizeof(txnschema_steps[0]);

const char *
txnschema_rc_name(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK: return "SQLITE_OK";
    case SQLITE_ERROR: return "SQLITE_ERROR";
    case SQLITE_PERM: return "SQLITE_PERM";
    case SQLITE_BUSY: return "SQLITE_BUSY";
    case SQLITE_LOCKED: return "SQLITE_LOCKED";
    case SQLITE_NOMEM: return "SQLITE_NOMEM";
    case SQLITE_READONLY: return "SQLITE_READONLY";
    case SQLITE_IOERR: return "SQLITE_IOERR";
    case SQLITE_CORRUPT: return "SQLITE_CORRUPT";
    case SQLITE_FULL: return "SQLITE_FULL";
    case SQLITE_CANTOPEN: return "SQLITE_CANTOPEN";
    case SQLITE_PROTOCOL: return "SQLITE_PROTOCOL";
    case SQLITE_SCHEMA: return "SQLITE_SCHEMA";
    case SQLITE_CONSTRAINT: return "SQLITE_CONSTRAINT";
    case SQLITE_MISUSE: return "SQLITE_MISUSE";
    case SQLITE_NOTADB: return "SQLITE_NOTADB";
    }
    return "SQLITE_other";
}

/* "path: what: message (SQLITE_X[, errno text])" from the handle's last
 * error; when a file cannot be opened, whether its directory is writable. */
static void
db_err(char *err, size_t errlen, sqlite3 *db, int rc, const char *path, const char *what)
{
    int sys = db ? sqlite3_system_errno(db) : 0;
    char dir[512], hint[600] = "";

    if ((rc & 0xff) == SQLITE_CANTOPEN) {
        const char *slash = strrchr(path, '/');
        if (slash == NULL)
            snprintf(dir, sizeof(dir), ".");
        else
            snprintf(dir, sizeof(dir), "%.*s", (int)(slash == path ? 1 : slash - path), path);
        if (access(dir, W_OK | X_OK) != 0)
            snprintf(hint, sizeof(hint), "; directory %s: %s", dir, strerror(errno));
        sys = 0;                  /* the errno SQLite kept is from an earlier probe */
    }
    err_set(err, errlen, "%s: %s: %s (%s%s%s)%s", path, what,
           db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), txnschema_rc_name(rc), sys ? ", " : "",
           sys ? strerror(sys) : "", hint);
}

/* One integer from a pragma or query; -1 on error (rc in *rcp). */
static long long
query_int(sqlite3 *db, const char *sql, int *rcp)
{
    sqlite3_stmt *st = NULL;
    long long v = -1;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);

    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            v = sqlite3_column_int64(st, 0);
            rc = SQLITE_OK;
        }
    }
    sqlite3_finalize(st);
    *rcp = rc;
    return rc == SQLITE_OK ? v : -1;
}

/* Checks the file's identity and version against `newest`. Returns the
 * file's user_version, or -1 with a message. */
static long long
check_version(sqlite3 *db, const char *path, int newest, char *err, size_t errlen)
{
    int rc;
    long long ver = query_int(db, "PRAGMA user_version", &rc), app, tables;

    if (ver < 0) {
        db_err(err, errlen, db, rc, path, "cannot read the schema version");
        return -1;
    }
    if (ver > newest) {
        err_set(err, errlen,
               "%s: the transaction store has schema version %lld, newer than version %d that "
               "this musproxy knows; refusing to open it (use a newer musproxy or another file)",
               path, ver, newest);
        return -1;
    }
    app = query_int(db, "PRAGMA application_id", &rc);
    tables = query_int(db, "SELECT count(*) FROM sqlite_master", &rc);
    if (app < 0 || tables < 0) {
        db_err(err, errlen, db, rc, path, "cannot read the file header");
        return -1;
    }
    if ((ver == 0 && tables > 0) || (ver > 0 && app != TXNSCHEMA_APP_ID)) {
        err_set(err, errlen, "%s: an SQLite file that is not a musproxy transaction store "
               "(application_id %lld, user_version %lld); refusing to use it", path, app, ver);
        return -1;
    }
    return ver;
}

static int
exec(sqlite3 *db, const char *sql, const char *path, const char *what, char *err, size_t errlen)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);

    if (rc != SQLITE_OK)
        db_err(err, errlen, db, rc, path, what);
    return rc;
}

static int
migrate(sqlite3 *db, const char *path, long long ver, const txnschema_step_t *steps,
        size_t nsteps, char *err, size_t errlen)
{
    for (size_t i = 0; i < nsteps; i++) {
        char sql[128], what[64];
        int rc;

        if (steps[i].to <= ver)
            continue;
        snprintf(what, sizeof(what), "migration to schema version %d", steps[i].to);
        if ((rc = exec(db, "BEGIN IMMEDIATE", path, what, err, errlen)) != SQLITE_OK)
            return rc;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; PRAGMA application_id = %d",
                 steps[i].to, TXNSCHEMA_APP_ID);
        if ((rc = exec(db, steps[i].sql, path, what, err, errlen)) != SQLITE_OK ||
            (rc = exec(db, sql, path, what, err, errlen)) != SQLITE_OK ||
            (rc = exec(db, "COMMIT", path, what, err, errlen)) != SQLITE_OK) {
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return rc;
        }
        ver = steps[i].to;
    }
    return SQLITE_OK;
}

sqlite3 *
txnschema_open_rw(const char *path, bool create, const txnschema_step_t *steps, size_t nsteps,
                  char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc;
    long long ver;

    if (steps == NULL) {
        steps = txnschema_steps;
        nsteps = txnschema_nsteps;
    }
    rc = sqlite3_open_v2(path, &db, flags, NULL);
    if (rc != SQLITE_OK) {
        db_err(err, errlen, db, rc, path, "cannot open the transaction store");
        goto fail;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, TXNSCHEMA_BUSY_MS);
    ver = check_version(db, path, nsteps ? steps[nsteps - 1].to : 0, err, errlen);
    if (ver < 0)
        goto fail;
    if (ver == 0 && exec(db, "PRAGMA auto_vacuum = INCREMENTAL", path, "cannot set auto_vacuum",
                         err, errlen) != SQLITE_OK)
        goto fail;
    /* journal_mode answers with the mode it got: a read-only file or
     * directory stays in its old mode (or fails to create the WAL). */
    rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *mode = sqlite3_column_text(st, 0);
        if (mode == NULL || strcmp((const char *)mode, "wal") != 0) {
            err_set(err, errlen, "%s: cannot switch the transaction store to WAL (journal mode "
                   "stays \"%s\"): is the file or its directory read-only?", path,
                   mode ? (const char *)mode : "?");
            goto fail;
        }
        rc = SQLITE_OK;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (rc != SQLITE_OK) {
        db_err(err, errlen, db, rc, path, "cannot switch the transaction store to WAL");
        goto fail;
    }
    {
        char sql[128];
        snprintf(sql, sizeof(sql), "PRAGMA synchronous = NORMAL; PRAGMA journal_size_limit = %d",
                 TXNSCHEMA_WAL_LIMIT);
        if (exec(db, sql, path, "cannot set pragmas", err, errlen) != SQLITE_OK)
            goto fail;
    }
    if (migrate(db, path, ver, steps, nsteps, err, errlen) != SQLITE_OK)
        goto fail;
    return db;
fail:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return NULL;
}

sqlite3 *
txnschema_open_ro(const char *path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    long long ver;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);

    if (rc != SQLITE_OK) {
        db_err(err, errlen, db, rc, path, "cannot open the transaction store for reading");
        goto fail;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, TXNSCHEMA_BUSY_MS);
    ver = check_version(db, path, TXNSCHEMA_VERSION, err, errlen);
    if (ver < 0)
        goto fail;
    if (ver < TXNSCHEMA_VERSION) {
        err_set(err, errlen, "%s: transaction store at schema version %lld, reports need %d "
               "(musproxy migrates it when it opens the store)", path, ver, TXNSCHEMA_VERSION);
        goto fail;
    }
    return db;
fail:
    sqlite3_close(db);
    return NULL;
}
