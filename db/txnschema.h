/*
 * db/txnschema.h: the transaction store's schema, inside db/ only (the
 * writer, db/txnstore.c, and the readers, db/report.c). It opens a store
 * file with the pragmas both sides need, checks that the file is ours and
 * not newer than this build, and runs the forward migrations. It holds no
 * state and never starts a thread; callers outside db/ use txnstore.h and
 * report.h, which never show a sqlite3 handle.
 *
 * Tables (schema version TXNSCHEMA_VERSION, PRAGMA user_version):
 *   txn       one row per transaction (columns: see txnschema.c)
 *   sessions  remote session history, one row per (headend, vpn_addr, start_ms)
 *   rollups (version 2): the sums requests, bytes, blocked of the txn rows of
 *   one UTC-aligned hour or day (span TXNSCHEMA_SPAN_HOUR or _DAY, bucket =
 *   its start) per key, WITHOUT ROWID, primary key (span, bucket, remote,
 *   user, ...):
 *     ru_user      (remote, user)
 *     ru_category  (remote, user, category)
 *     ru_host      (remote, user, host)
 *     ru_blocked   (remote, user, host, category, access_policy, rule), of
 *                  the blocked rows only
 *   The writer keeps them equal to the txn rows at every commit (it adds a
 *   batch's rows and subtracts what retention deletes in the same
 *   transaction; a key whose requests reach 0 loses its row), so a report
 *   may read a whole bucket from a rollup instead of its rows.
 */
#ifndef MUS_DB_TXNSCHEMA_H
#define MUS_DB_TXNSCHEMA_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>

#define TXNSCHEMA_VERSION   2            /* what this build writes and reads */
#define TXNSCHEMA_APP_ID    0x4d555354   /* PRAGMA application_id: "MUST" */
#define TXNSCHEMA_BUSY_MS   200          /* busy_timeout of every connection */
#define TXNSCHEMA_SPAN_HOUR 3600000LL    /* the rollups' spans, ms */
#define TXNSCHEMA_SPAN_DAY  86400000LL

/* The start of the span-long bucket holding t (floor, also before 1970). */
static inline long long
txnschema_bucket(long long t, long long span)
{
    return t - ((t % span) + span) % span;
}

/* One forward migration: from version (to - 1) to `to`, as one SQL script
 * run in one transaction with the new user_version. */
typedef struct txnschema_step {
    int to;
    const char *sql;
} txnschema_step_t;

/* Opens path for writing (creating it when create is true), WAL, the
 * store's pragmas, then migrates to the last of steps (NULL = the built-in
 * steps, up to TXNSCHEMA_VERSION). A file whose user_version is newer than
 * the last step, or that holds tables but is not a store, is refused. Returns
 * the handle, or NULL with a message naming the file. */
sqlite3 *txnschema_open_rw(const char *path, bool create, const txnschema_step_t *steps,
                           size_t nsteps, char *err, size_t errlen);

/* Opens path read-only (a WAL reader) and checks its version: missing,
 * empty, foreign or newer files are refused. NULL with a message. */
sqlite3 *txnschema_open_ro(const char *path, char *err, size_t errlen);

/* The built-in migrations (tests run them with extra fake steps). */
extern const txnschema_step_t txnschema_steps[];
extern const size_t txnschema_nsteps;

/* "SQLITE_BUSY" etc. for a (possibly extended) result code. */
const char *txnschema_rc_name(int rc);

#endif
