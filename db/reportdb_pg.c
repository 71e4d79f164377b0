/*
 * db/reportdb_pg.c: the reports' read connection to the PostgreSQL store
 * (see reportdb.h): report.c's SQL with ?N turned into $N (outside quotes),
 * run with typed parameters (bigint, text), each statement in its own
 * snapshot; the rows by column type (integers and numeric sums as JSON
 * integers, text as strings). A connection found broken by a query (the
 * server restarted) is opened again and the query sent once more.
 */
#include "reportdb.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txnschema_pg.h"

#define PG_SQL_MAX   16384            /* bytes of a rewritten statement */
#define PG_INT8_OID  20
#define PG_INT2_OID  21
#define PG_INT4_OID  23
#define PG_TEXT_OID  25
#define PG_FLOAT4_OID 700
#define PG_FLOAT8_OID 701
#define PG_NUMERIC_OID 1700

typedef struct pg_conn {
    PGconn *c;
    char *conninfo, *password_file;
} pg_conn_t;

/* sql with ?N as $N (not inside '...' or "..."); false if it does not fit. */
static bool
rewrite(const char *sql, char *out, size_t cap)
{
    size_t n = 0;
    char quote = 0;

    for (const char *s = sql; *s; s++) {
        char ch = *s;
        if (quote != 0 && ch == quote)
            quote = 0;
        else if (quote == 0 && (ch == '\'' || ch == '"'))
            quote = ch;
        else if (quote == 0 && ch == '?' && s[1] >= '0' && s[1] <= '9')
            ch = '$';
        if (n + 1 >= cap)
            return false;
        out[n++] = ch;
    }
    out[n] = '\0';
    return true;
}

static json_t *
value(const PGresult *r, int row, int col)
{
    const char *v = PQgetvalue(r, row, col);
    json_t *j;

    if (PQgetisnull(r, row, col))
        return json_null();
    switch (PQftype(r, col)) {
    case PG_INT2_OID: case PG_INT4_OID: case PG_INT8_OID:
        return json_integer(strtoll(v, NULL, 10));
    case PG_NUMERIC_OID:
        if (strchr(v, '.') == NULL)
            return json_integer(strtoll(v, NULL, 10));
        return json_real(strtod(v, NULL));
    case PG_FLOAT4_OID: case PG_FLOAT8_OID:
        return json_real(strtod(v, NULL));
    }
    j = json_stringn(v, (size_t)PQgetlength(r, row, col));
    return j != NULL ? j : json_string("\xef\xbf\xbd");
}

static int
pg_reconnect(reportdb_t *db, char *err, size_t errlen)
{
    pg_conn_t *pc = db->conn;

    if (pc->c != NULL && PQstatus(pc->c) == CONNECTION_OK)
        return 0;
    PQfinish(pc->c);
    pc->c = txnschema_pg_connect(pc->conninfo, pc->password_file, err, errlen);
    if (pc->c == NULL)
        return -1;
    txnschema_pg_where(pc->c, db->where, sizeof(db->where));
    if (txnschema_pg_check(pc->c, err, errlen) < 0) {
        PQfinish(pc->c);
        pc->c = NULL;
        return -1;
    }
    return 0;
}

static json_t *
pg_rows(reportdb_t *db, const char *sql, const reportdb_params_t *p, unsigned max, char *err,
        size_t errlen)
{
    pg_conn_t *pc = db->conn;
    char *q = malloc(PG_SQL_MAX), nums[REPORTDB_PARAMS][24];
    const char *vals[REPORTDB_PARAMS];
    unsigned types[REPORTDB_PARAMS];
    PGresult *r = NULL;
    json_t *a = NULL;

    if (q == NULL || !rewrite(sql, q, PG_SQL_MAX)) {
        snprintf(err, errlen, "%s: report query too long", db->where);
        goto done;
    }
    if (pg_reconnect(db, err, errlen) < 0)
        goto done;
    for (int i = 0; i < REPORTDB_PARAMS; i++) {
        types[i] = p->p[i + 1].kind == REPORTDB_INT ? PG_INT8_OID : PG_TEXT_OID;
        vals[i] = NULL;
        if (p->p[i + 1].kind == REPORTDB_INT) {
            snprintf(nums[i], sizeof(nums[i]), "%lld", (long long)p->p[i + 1].i);
            vals[i] = nums[i];
        } else if (p->p[i + 1].kind == REPORTDB_TEXT) {
            vals[i] = p->p[i + 1].s;
        }
    }
    r = PQexecParams(pc->c, q, REPORTDB_PARAMS, types, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQstatus(pc->c) == CONNECTION_BAD) {
        /* the server went away since the last query (restarted): once more
         * on a new connection */
        PQclear(r);
        r = NULL;
        if (pg_reconnect(db, err, errlen) < 0)
            goto done;
        r = PQexecParams(pc->c, q, REPORTDB_PARAMS, types, vals, NULL, NULL, 0);
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char msg[400];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(pc->c));
        msg[strcspn(msg, "\n")] = '\0';
        snprintf(err, errlen, "%s: report query: %s", db->where, msg);
        goto done;
    }
    a = json_array();
    for (int row = 0; a != NULL && row < PQntuples(r) && json_array_size(a) < max; row++) {
        json_t *o = json_object();
        for (int col = 0; o != NULL && col < PQnfields(r); col++)
            json_object_set_new(o, PQfname(r, col), value(r, row, col));
        json_array_append_new(a, o);
    }
done:
    PQclear(r);
    free(q);
    return a;
}

static void
pg_close(reportdb_t *db)
{
    pg_conn_t *pc = db->conn;

    if (pc == NULL)
        return;
    PQfinish(pc->c);
    free(pc->conninfo);
    free(pc->password_file);
    free(pc);
}

static const reportdb_ops_t pg_ops = {pg_rows, pg_close};

reportdb_t *
reportdb_open_pg(const char *conninfo, const char *password_file, char *err, size_t errlen)
{
    reportdb_t *db = calloc(1, sizeof(*db));
    pg_conn_t *pc = calloc(1, sizeof(*pc));

    if (db == NULL || pc == NULL)
        goto oom;
    db->ops = &pg_ops;
    db->conn = pc;
    snprintf(db->where, sizeof(db->where), "postgresql");
    pc->conninfo = strdup(conninfo ? conninfo : "");
    pc->password_file = strdup(password_file ? password_file : "");
    if (pc->conninfo == NULL || pc->password_file == NULL)
        goto oom;
    if (pg_reconnect(db, err, errlen) < 0) {
        reportdb_close(db);
        return NULL;
    }
    return db;
oom:
    snprintf(err, errlen, "report: out of memory");
    if (db == NULL || db->conn == NULL)
        free(pc);
    reportdb_close(db);
    return NULL;
}
