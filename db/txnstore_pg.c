/*
 * db/txnstore_pg.c: the transaction store's PostgreSQL backend, for a group
 * of proxies that share one database (see txnstore_int.h for the backend
 * interface, txnschema_pg.h for the tables). It writes; the reports read
 * through db/reportdb_pg.c.
 *
 * Writer: one connection (libpq, blocking, in the writer thread). A batch is
 * one transaction: its rows through COPY txn FROM STDIN (text format, every
 * row tagged with this proxy's node), its session events as upserts, then
 * the rollups' sums of the batch COPYed into a temporary table (ru_delta)
 * and added to each ru_* table with one INSERT .. SELECT .. ON CONFLICT DO
 * UPDATE per table, in key order so that two proxies adding to the same
 * keys lock them in the same order; keys whose requests fall to 0 (after
 * retention) are deleted. Text that is not UTF-8 is stored with U+FFFD for
 * each bad byte (PostgreSQL would refuse the whole batch).
 *
 * Failures:
 *   the connection is gone before COMMIT was sent
 *                          the batch is held (TXNSTORE_WRITE_RETRY): the
 *                          writer connects again after 1, 2, 4 .. 30 s and
 *                          sends it then; meanwhile the queue fills and
 *                          submit counts drops; closing, it is lost;
 *   gone while COMMIT was in flight
 *                          the outcome is unknown: counted lost, said so;
 *   a deadlock or serialization failure
 *                          the batch is sent again, up to PG_TXN_RETRIES;
 *   anything else (a constraint, a full disk)
 *                          the batch is lost, the connection kept.
 *
 * Retention (retain_days; retain_mb does not apply: the database's size is
 * its administrator's): chunks of the oldest rows deleted with RETURNING,
 * taken off the rollups in the same transaction. Any node may run it; two at
 * once delete each row once (the second waits for the first's row locks and
 * skips what it deleted).
 */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "txnschema_pg.h"
#include "txnstore_int.h"

#define PG_COPY_FLUSH     (64 * 1024)     /* bytes of COPY data sent at once */
#define PG_TXN_RETRIES    3               /* a deadlocked batch is sent again this often */
#define PG_RETAIN_CHUNK   5000            /* rows per retention DELETE at most */
#define PG_RETAIN_ROUNDS  100000          /* chunks per pass at most */
#define PG_NODE_MAX       256
#define PG_SQL_MAX        1024

typedef struct pg_state {
    PGconn *c;
    char node[PG_NODE_MAX];
    char where[PG_SQL_MAX];           /* host:port/db, for messages */
    char *buf;                        /* COPY data not yet sent */
    size_t len, cap;
    bool commit_sent;                 /* the open transaction's COMMIT was sent */
    char msg[TXNSTORE_ERR_MAX];       /* the last statement's error */
    char sqlstate[6];
    char upsert[TXNROLLUP_TABLES][PG_SQL_MAX], drop[TXNROLLUP_TABLES][PG_SQL_MAX];
    uint64_t db_bytes;                /* under s->mu */
} pg_state_t;

#define PG(s) ((pg_state_t *)(s)->be_st)

static const char copy_txn_sql[] =
    "COPY txn(node, time_ms, elapsed_ms, client, mode, result, status, bytes_out, method, host,"
    " url, url_cut, \"user\", remote, user_source, identity_type, headend, identity_profile,"
    " access_policy, rule, category, decision, decision_tag, blocked, server, mime)"
    " FROM STDIN";

static const char ins_sess_sql[] =
    "INSERT INTO sessions(node, \"user\", domain, vpn_addr, public_addr, type, headend,"
    " start_ms, end_ms, end_reason) VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    " ON CONFLICT(headend, vpn_addr, start_ms) DO UPDATE SET end_ms = excluded.end_ms,"
    " end_reason = excluded.end_reason WHERE excluded.end_ms <> 0";

static const char delta_sql[] =
    "CREATE TEMP TABLE IF NOT EXISTS ru_delta(t integer, span bigint, bucket bigint,"
    " remote integer, k1 text COLLATE \"C\", k2 text COLLATE \"C\", k3 text COLLATE \"C\","
    " k4 text COLLATE \"C\", k5 text COLLATE \"C\", requests bigint, bytes bigint,"
    " blocked bigint, took boolean) ON COMMIT DELETE ROWS";

/* ---- statements ---- */

/* Keeps the error of the last statement (one line) and its SQLSTATE. */
static void
note_pg_error(pg_state_t *q, const PGresult *r)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;

    snprintf(q->msg, sizeof(q->msg), "%s", PQerrorMessage(q->c));
    q->msg[strcspn(q->msg, "\n")] = '\0';
    snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", state ? state : "");
}

/* Runs sql with text parameters; 0, or -1 with the error noted. */
static int
run(pg_state_t *q, const char *sql, int nparams, const char *const *params)
{
    PGresult *r = PQexecParams(q->c, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;

    if (rc < 0)
        note_pg_error(q, r);
    PQclear(r);
    return rc;
}

/* ---- COPY ---- */

static int
copy_begin(pg_state_t *q, const char *sql)
{
    PGresult *r = PQexec(q->c, sql);
    int rc = PQresultStatus(r) == PGRES_COPY_IN ? 0 : -1;

    if (rc < 0)
        note_pg_error(q, r);
    PQclear(r);
    q->len = 0;
    return rc;
}

static int
copy_send(pg_state_t *q)
{
    if (q->len > 0 && PQputCopyData(q->c, q->buf, (int)q->len) != 1) {
        note_pg_error(q, NULL);
        return -1;
    }
    q->len = 0;
    return 0;
}

/* Ends the COPY (abort: with an error, so the statement fails). */
static int
copy_end(pg_state_t *q, bool abort)
{
    PGresult *r;
    int rc = abort ? -1 : copy_send(q);

    if (PQputCopyEnd(q->c, rc < 0 ? "musproxy: batch abandoned" : NULL) != 1 && rc == 0) {
        note_pg_error(q, NULL);
        rc = -1;
    }
    while ((r = PQgetResult(q->c)) != NULL) {
        if (PQresultStatus(r) != PGRES_COMMAND_OK && rc == 0) {
            note_pg_error(q, r);
            rc = -1;
        }
        PQclear(r);
    }
    return rc;
}

/* Room for n more bytes of COPY data; false when out of memory. */
static bool
reserve(pg_state_t *q, size_t n)
{
    char *b;
    size_t cap;

    if (q->len + n <= q->cap)
        return true;
    cap = q->cap ? q->cap : 2 * PG_COPY_FLUSH;
    while (cap < q->len + n)
        cap *= 2;
    if ((b = realloc(q->buf, cap)) == NULL)
        return false;
    q->buf = b;
    q->cap = cap;
    return true;
}

/* The length of the valid UTF-8 sequence at p (n bytes left), 0 if none. */
static size_t
utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xc2 && p[0] <= 0xdf)
        len = 2;
    else if (p[0] >= 0xe0 && p[0] <= 0xef)
        len = 3;
    else if (p[0] >= 0xf0 && p[0] <= 0xf4)
        len = 4;
    else
        return 0;
    if (p[0] == 0xe0)
        lo = 0xa0;
    else if (p[0] == 0xed)
        hi = 0x9f;
    else if (p[0] == 0xf0)
        lo = 0x90;
    else if (p[0] == 0xf4)
        hi = 0x8f;
    if (n < len || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return len;
}

/* One text column (n bytes of v) in COPY's text format, then sep. */
static bool
put_text(pg_state_t *q, const char *v, size_t n, char sep)
{
    const unsigned char *p = (const unsigned char *)(v ? v : "");

    if (!reserve(q, n * 3 + 1))
        return false;
    for (size_t i = 0; i < n && p[i] != '\0';) {
        size_t k = utf8_len(p + i, n - i);
        if (k == 0) {                                  /* a bad byte: U+FFFD */
            memcpy(q->buf + q->len, "\xef\xbf\xbd", 3);
            q->len += 3;
            i++;
            continue;
        }
        if (k == 1 && (p[i] == '\\' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r')) {
            q->buf[q->len++] = '\\';
            q->buf[q->len++] = p[i] == '\\' ? '\\' : p[i] == '\t' ? 't' : p[i] == '\n' ? 'n' : 'r';
        } else {
            memcpy(q->buf + q->len, p + i, k);
            q->len += k;
        }
        i += k;
    }
    q->buf[q->len++] = sep;
    return true;
}

static bool
put_str(pg_state_t *q, const char *v, char sep)
{
    return put_text(q, v, v ? strlen(v) : 0, sep);
}

static bool
put_int(pg_state_t *q, long long v, char sep)
{
    if (!reserve(q, 24))
        return false;
    q->len += (size_t)snprintf(q->buf + q->len, 24, "%lld%c", v, sep);
    return true;
}

/* ---- one batch ---- */

/* One txn row into the COPY data. */
static int
put_txn(txnstore_t *s, const txn_record_t *r)
{
    pg_state_t *q = PG(s);
    char host[TXNSTORE_HOST_MAX];
    txnrollup_row_t ru;
    size_t ulen = txnstore_row_view(s, r, host, &ru);
    bool ok = put_str(q, q->node, '\t') && put_int(q, r->end_ms, '\t') &&
              put_int(q, (long long)r->elapsed_ms, '\t') && put_str(q, r->client, '\t') &&
              put_str(q, txn_mode_str(r->mode), '\t') &&
              put_str(q, txn_result_str(r->result), '\t') && put_int(q, r->status, '\t') &&
              put_int(q, (long long)r->bytes_out, '\t') && put_str(q, r->method, '\t') &&
              put_str(q, host, '\t') && put_text(q, r->url, ulen, '\t') &&
              put_int(q, r->url_cut, '\t') && put_str(q, r->user, '\t') &&
              put_int(q, r->remote, '\t') && put_str(q, r->user_source, '\t') &&
              put_str(q, r->identity_type, '\t') && put_str(q, r->headend, '\t') &&
              put_str(q, r->identity_profile, '\t') && put_str(q, r->access_policy, '\t') &&
              put_str(q, r->rule, '\t') && put_str(q, r->category, '\t') &&
              put_str(q, txn_decision_str(r->decided ? r->decision : TXN_DECISION_NONE), '\t') &&
              put_str(q, r->decision_tag, '\t') && put_int(q, ru.blocked, '\t') &&
              put_str(q, r->server, '\t') && put_str(q, r->mime, '\n');

    if (!ok) {
        snprintf(q->msg, sizeof(q->msg), "out of memory");
        return -1;
    }
    return q->len >= PG_COPY_FLUSH ? copy_send(q) : 0;
}

/* The batch's rows into the rollups' sums (after the COPY: an add may
 * flush, which runs statements of its own). */
static int
sum_txn(txnstore_t *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char host[TXNSTORE_HOST_MAX];
        txnrollup_row_t ru;
        txnstore_row_view(s, &s->slots[s->batch[i]], host, &ru);
        if (txnrollup_add(s->ru, &ru, +1) != 0)
            return -1;
    }
    return 0;
}

static int
put_sess(pg_state_t *q, const sess_slot_t *e)
{
    char start[24], end[24];
    const char *v[10] = {q->node, e->user, e->domain, e->vpn_addr, e->public_addr, e->type,
                         e->headend, start, end, e->end_reason};

    snprintf(start, sizeof(start), "%lld", (long long)e->start_ms);
    snprintf(end, sizeof(end), "%lld", (long long)e->end_ms);
    return run(q, ins_sess_sql, 10, v);
}

/* One key's sums as a row of ru_delta. */
static int
put_delta(void *arg, const txnrollup_sum_t *e)
{
    pg_state_t *q = arg;
    bool ok = put_int(q, e->table, '\t') && put_int(q, e->span, '\t') &&
              put_int(q, e->bucket, '\t') && put_int(q, e->remote, '\t');

    for (unsigned k = 0; ok && k < TXNROLLUP_KEYS; k++)
        ok = put_str(q, k < e->nkeys ? e->key[k] : "", '\t');
    ok = ok && put_int(q, e->requests, '\t') && put_int(q, e->bytes, '\t') &&
         put_int(q, e->blocked, '\t') && put_str(q, e->took ? "t" : "f", '\n');
    if (!ok) {
        snprintf(q->msg, sizeof(q->msg), "out of memory");
        return -1;
    }
    return q->len >= PG_COPY_FLUSH ? copy_send(q) : 0;
}

/* The rollups' flush (txnrollup_set_flush): the sums into ru_delta, then
 * added to each table; inside the writer's transaction. */
static int
flush_rollups(void *arg, txnrollup_t *ru)
{
    txnstore_t *s = arg;
    pg_state_t *q = PG(s);
    int rc = copy_begin(q, "COPY ru_delta FROM STDIN");

    if (rc == 0)
        rc = copy_end(q, txnrollup_each(ru, put_delta, q) != 0);
    for (int t = 0; t < TXNROLLUP_TABLES && rc == 0; t++)
        rc = run(q, q->upsert[t], 0, NULL) < 0 || run(q, q->drop[t], 0, NULL) < 0 ? -1 : 0;
    return rc == 0 ? run(q, "DELETE FROM ru_delta", 0, NULL) : -1;
}

/* Builds the per-table statements of flush_rollups. */
static void
build_rollup_sql(pg_state_t *q)
{
    for (int t = 0; t < TXNROLLUP_TABLES; t++) {
        const char *cols, *name = txnrollup_table(t, &cols);
        char ks[64] = "", eq[256] = "";
        size_t nk = 1, a = 0, b = 0;

        for (const char *p = cols; *p; p++)
            nk += *p == ',';
        const char *c = cols;   /* "a, b, c": the k-th name, walked once */
        for (size_t k = 1; k <= nk; k++) {
            char col[32];
            size_t len = strcspn(c, ",");
            if (len >= sizeof(col))
                len = sizeof(col) - 1;
            memcpy(col, c, len);
            col[len] = '\0';
            c += strcspn(c, ",");
            while (*c == ',' || *c == ' ')
                c++;
            a += (size_t)snprintf(ks + a, sizeof(ks) - a, "%sk%zu", k > 1 ? ", " : "", k);
            b += (size_t)snprintf(eq + b, sizeof(eq) - b, " AND r.%s = d.k%zu", col, k);
        }
        snprintf(q->upsert[t], sizeof(q->upsert[t]),
                 "INSERT INTO %s AS r(span, bucket, remote, %s, requests, bytes, blocked)"
                 " SELECT span, bucket, remote, %s, requests, bytes, blocked FROM ru_delta"
                 " WHERE t = %d ORDER BY span, bucket, remote, %s"
                 " ON CONFLICT(span, bucket, remote, %s) DO UPDATE SET"
                 " requests = r.requests + excluded.requests, bytes = r.bytes + excluded.bytes,"
                 " blocked = r.blocked + excluded.blocked", name, cols, ks, t, ks, cols);
        snprintf(q->drop[t], sizeof(q->drop[t]),
                 "DELETE FROM %s AS r USING ru_delta AS d WHERE d.t = %d AND d.took AND"
                 " r.span = d.span AND r.bucket = d.bucket AND r.remote = d.remote%s AND"
                 " r.requests <= 0", name, t, eq);
    }
}

/* One attempt; 0 committed, -1 with the error noted (the caller looks at
 * the connection and rolls back). */
static int
write_once(txnstore_t *s, size_t n, size_t ns)
{
    pg_state_t *q = PG(s);
    int rc;

    q->commit_sent = false;
    txnrollup_reset(s->ru);
    if (run(q, "BEGIN", 0, NULL) < 0)
        return -1;
    rc = n > 0 ? copy_begin(q, copy_txn_sql) : 0;
    if (n > 0 && rc == 0) {
        for (size_t i = 0; i < n && rc == 0; i++)
            rc = put_txn(s, &s->slots[s->batch[i]]);
        rc = copy_end(q, rc != 0);
    }
    for (size_t i = 0; i < ns && rc == 0; i++)
        rc = put_sess(q, &s->sbatch[i]);
    if (rc == 0)
        rc = sum_txn(s, n);
    if (rc == 0)
        rc = txnrollup_flush(s->ru);
    if (rc != 0)
        return -1;
    q->commit_sent = true;
    return run(q, "COMMIT", 0, NULL);
}

static void
disconnect(txnstore_t *s)
{
    pg_state_t *q = PG(s);

    if (q != NULL && q->c != NULL) {
        PQfinish(q->c);
        q->c = NULL;
    }
}

static enum txnstore_write
pg_write(txnstore_t *s, size_t n, size_t ns)
{
    pg_state_t *q = PG(s);

    for (int attempt = 0;; attempt++) {
        if (write_once(s, n, ns) == 0)
            return TXNSTORE_WRITE_OK;
        txnrollup_reset(s->ru);
        if (PQstatus(q->c) == CONNECTION_BAD) {
            disconnect(s);
            txnstore_conn_lost(s);
            if (q->commit_sent) {
                txnstore_error(s, "%s (node %s): the connection was lost during COMMIT: %s; "
                               "%zu records and %zu session events counted lost (their outcome "
                               "is unknown)", q->where, q->node, q->msg, n, ns);
                return TXNSTORE_WRITE_LOST;
            }
            txnstore_error(s, "%s (node %s): the connection was lost: %s; %zu records and %zu "
                           "session events held, connecting again in %lld ms", q->where,
                           q->node, q->msg, n, ns,
                           (long long)(s->reopen_at_ms - txnstore_mono_ms()));
            return TXNSTORE_WRITE_RETRY;
        }
        PQclear(PQexec(q->c, "ROLLBACK"));
        if (strncmp(q->sqlstate, "40", 2) != 0 || attempt + 1 >= PG_TXN_RETRIES)
            break;
    }
    txnstore_error(s, "%s (node %s): cannot write the transaction store: %s (SQLSTATE %s); "
                   "%zu records and %zu session events lost", q->where, q->node, q->msg,
                   q->sqlstate, n, ns);
    return TXNSTORE_WRITE_LOST;
}

/* ---- retention ---- */

/* The stored time range and the database's size into the stats. */
static void
read_range(txnstore_t *s)
{
    pg_state_t *q = PG(s);
    PGresult *r = PQexec(q->c, "SELECT COALESCE(min(time_ms), 0), COALESCE(max(time_ms), 0),"
                         " pg_database_size(current_database()) FROM txn");

    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        txnstore_set_range(s, strtoll(PQgetvalue(r, 0, 0), NULL, 10),
                           strtoll(PQgetvalue(r, 0, 1), NULL, 10));
        pthread_mutex_lock(&s->mu);
        q->db_bytes = strtoull(PQgetvalue(r, 0, 2), NULL, 10);
        pthread_mutex_unlock(&s->mu);
    }
    PQclear(r);
}

/* Deletes up to PG_RETAIN_CHUNK rows older than cutoff and takes them off
 * the rollups, in one transaction: the rows deleted, or -1. */
static long long
retire_chunk(txnstore_t *s, const char *cutoff)
{
    pg_state_t *q = PG(s);
    char limit[24];
    const char *params[2] = {cutoff, limit};
    PGresult *r = NULL;
    long long n = -1;

    snprintf(limit, sizeof(limit), "%d", PG_RETAIN_CHUNK);
    if (run(q, "BEGIN", 0, NULL) < 0)
        goto done;
    txnrollup_reset(s->ru);
    r = PQexecParams(q->c, "DELETE FROM txn WHERE id IN (SELECT id FROM txn WHERE time_ms < $1"
                     " ORDER BY id LIMIT $2) RETURNING time_ms, bytes_out, remote, blocked,"
                     " \"user\", host, category, access_policy, rule", 2, NULL, params, NULL,
                     NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        note_pg_error(q, r);
        goto done;
    }
    n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        txnrollup_row_t row = {
            strtoll(PQgetvalue(r, i, 0), NULL, 10), strtoll(PQgetvalue(r, i, 1), NULL, 10),
            PQgetvalue(r, i, 2)[0] == '1', PQgetvalue(r, i, 3)[0] == '1', PQgetvalue(r, i, 4),
            PQgetvalue(r, i, 5), PQgetvalue(r, i, 6), PQgetvalue(r, i, 7),
            PQgetvalue(r, i, 8)};
        if (txnrollup_add(s->ru, &row, -1) != 0) {
            n = -1;
            goto done;
        }
    }
    if (txnrollup_flush(s->ru) != 0 || run(q, "COMMIT", 0, NULL) < 0)
        n = -1;
done:
    PQclear(r);
    if (n < 0) {
        txnrollup_reset(s->ru);
        txnstore_error(s, "%s (node %s): retention: %s", q->where, q->node, q->msg);
        if (PQstatus(q->c) == CONNECTION_BAD) {
            disconnect(s);
            txnstore_conn_lost(s);
        } else {
            PQclear(PQexec(q->c, "ROLLBACK"));
        }
    }
    return n;
}

static void
pg_retain(txnstore_t *s)
{
    uint64_t deleted = 0;
    char cutoff[24];
    const char *params[2] = {cutoff, NULL};
    char limit[24];

    if (s->cfg.retain_days > 0) {
        long long n;
        snprintf(cutoff, sizeof(cutoff), "%lld",
                 (long long)(txnstore_wall_ms() - (int64_t)s->cfg.retain_days * 86400000));
        for (int i = 0; i < PG_RETAIN_ROUNDS && s->connected; i++) {
            if ((n = retire_chunk(s, cutoff)) <= 0)
                break;
            deleted += (uint64_t)n;
        }
        snprintf(limit, sizeof(limit), "%d", PG_RETAIN_CHUNK);
        params[1] = limit;
        if (s->connected &&
            run(PG(s), "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE"
                " end_ms <> 0 AND end_ms < $1 LIMIT $2)", 2, params) < 0)
            txnstore_error(s, "%s: retention of sessions: %s", PG(s)->where, PG(s)->msg);
    }
    if (s->connected) {
        read_range(s);
        txnstore_note_retired(s, deleted);
    }
}

/* ---- connecting ---- */

/* Connects, migrates, prepares: 0; -1 (with err) when it may work later;
 * -2 when the database is refused (newer or foreign schema). */
static int
pg_connect(txnstore_t *s, char *err, size_t errlen)
{
    pg_state_t *q = PG(s);
    int rc = -1;

    disconnect(s);
    q->c = txnschema_pg_connect(s->cfg.conninfo, s->cfg.password_file, err, errlen);
    if (q->c == NULL)
        return -1;
    txnschema_pg_where(q->c, q->where, sizeof(q->where));
    if ((rc = txnschema_pg_migrate(q->c, err, errlen)) < 0)
        goto fail;
    if (run(q, delta_sql, 0, NULL) < 0) {
        snprintf(err, errlen, "%s: cannot create ru_delta: %s", q->where, q->msg);
        goto fail;
    }
    read_range(s);
    return 0;
fail:
    disconnect(s);
    return rc;
}

/* Refuses a conninfo that does not parse or holds a password; a database
 * that cannot be reached now is not refused: the writer keeps connecting
 * (a group's proxies may start before their database). */
static int
pg_init(txnstore_t *s, char *err, size_t errlen)
{
    pg_state_t *q;
    char why[TXNSTORE_ERR_MAX];
    int rc;

    if (txnschema_pg_check_conninfo(s->cfg.conninfo, err, errlen) < 0)
        return -1;
    if ((q = calloc(1, sizeof(*q))) == NULL) {
        snprintf(err, errlen, "transaction store: out of memory");
        return -1;
    }
    s->be_st = q;
    if (s->cfg.node != NULL && s->cfg.node[0] != '\0')
        snprintf(q->node, sizeof(q->node), "%s", s->cfg.node);
    else if (gethostname(q->node, sizeof(q->node) - 1) != 0 || q->node[0] == '\0')
        snprintf(q->node, sizeof(q->node), "musproxy");
    snprintf(q->where, sizeof(q->where), "postgresql");
    build_rollup_sql(q);
    txnrollup_set_flush(s->ru, flush_rollups, s);
    if ((rc = pg_connect(s, why, sizeof(why))) == 0) {
        s->connected = true;
        return 0;
    }
    if (rc == -2) {
        snprintf(err, errlen, "%s", why);
        return -1;
    }
    txnstore_conn_lost(s);
    txnstore_error(s, "%s (node %s); connecting again in %lld ms", why, q->node,
                   (long long)(s->reopen_at_ms - txnstore_mono_ms()));
    return 0;
}

static void
pg_stop(txnstore_t *s)
{
    (void)s;
}

static void
pg_fini(txnstore_t *s)
{
    pg_state_t *q = PG(s);

    if (q == NULL)
        return;
    disconnect(s);
    free(q->buf);
    free(q);
    s->be_st = NULL;
}

static uint64_t
pg_bytes(txnstore_t *s)
{
    uint64_t v;

    pthread_mutex_lock(&s->mu);
    v = PG(s) ? PG(s)->db_bytes : 0;
    pthread_mutex_unlock(&s->mu);
    return v;
}

const txnstore_ops_t txnstore_pg_backend = {
    .name = "postgresql",
    .backoff = true,
    .init = pg_init,
    .connect = pg_connect,
    .write = pg_write,
    .retain = pg_retain,
    .stop = pg_stop,
    .fini = pg_fini,
    .bytes = pg_bytes,
};
