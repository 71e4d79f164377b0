/*
 * db/reportdb.c: the reports' read connection (see reportdb.h): the
 * parameters, the dispatch, and the SQLite side (a read-only WAL reader
 * opened by txnschema_open_ro; PostgreSQL's is reportdb_pg.c).
 */
#include "reportdb.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "txnschema.h"

void
reportdb_int(reportdb_params_t *p, int i, int64_t v)
{
    p->p[i].kind = REPORTDB_INT;
    p->p[i].i = v;
}

void
reportdb_text(reportdb_params_t *p, int i, const char *v)
{
    p->p[i].kind = v != NULL ? REPORTDB_TEXT : REPORTDB_NULL;
    p->p[i].s = v;
}

const char *
reportdb_where(const reportdb_t *db)
{
    return db->where;
}

json_t *
reportdb_rows(reportdb_t *db, const char *sql, const reportdb_params_t *p, unsigned max,
              char *err, size_t errlen)
{
    return db->ops->rows(db, sql, p, max, err, errlen);
}

void
reportdb_close(reportdb_t *db)
{
    if (db == NULL)
        return;
    db->ops->close(db);
    free(db);
}

/* ---- SQLite ---- */

/* One row as an object keyed by the column names. */
static json_t *
row_object(sqlite3_stmt *st)
{
    json_t *o = json_object();
    int n = sqlite3_column_count(st);

    for (int i = 0; o != NULL && i < n; i++) {
        const char *name = sqlite3_column_name(st, i);
        json_t *v;
        switch (sqlite3_column_type(st, i)) {
        case SQLITE_INTEGER: v = json_integer(sqlite3_column_int64(st, i)); break;
        case SQLITE_FLOAT: v = json_real(sqlite3_column_double(st, i)); break;
        case SQLITE_NULL: v = json_null(); break;
        default: v = json_stringn((const char *)sqlite3_column_text(st, i),
                                  (size_t)sqlite3_column_bytes(st, i)); break;
        }
        if (v == NULL)       /* text that is not UTF-8: kept, lossy */
            v = json_string("\xef\xbf\xbd");
        json_object_set_new(o, name, v);
    }
    return o;
}

static json_t *
sq_rows(reportdb_t *db, const char *sql, const reportdb_params_t *p, unsigned max, char *err,
        size_t errlen)
{
    sqlite3 *c = db->conn;
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(c, sql, -1, &st, NULL), np;
    json_t *a = NULL;

    if (rc != SQLITE_OK)
        goto fail;
    np = sqlite3_bind_parameter_count(st);
    for (int i = 1; i <= np && i <= REPORTDB_PARAMS; i++)
        switch (p->p[i].kind) {
        case REPORTDB_INT: sqlite3_bind_int64(st, i, p->p[i].i); break;
        case REPORTDB_TEXT: sqlite3_bind_text(st, i, p->p[i].s, -1, SQLITE_TRANSIENT); break;
        case REPORTDB_NULL: sqlite3_bind_null(st, i); break;
        }
    a = json_array();
    while (a != NULL && json_array_size(a) < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(a, row_object(st));
    if (a != NULL && json_array_size(a) < max && rc != SQLITE_DONE)
        goto fail;
    sqlite3_finalize(st);
    return a;
fail:
    snprintf(err, errlen, "%s: report query: %s (%s)", db->where, sqlite3_errmsg(c),
             txnschema_rc_name(rc));
    json_decref(a);
    sqlite3_finalize(st);
    return NULL;
}

static void
sq_close(reportdb_t *db)
{
    sqlite3_close(db->conn);
}

static const reportdb_ops_t sq_ops = {sq_rows, sq_close};

reportdb_t *
reportdb_open_sqlite(const char *path, char *err, size_t errlen)
{
    reportdb_t *db = calloc(1, sizeof(*db));

    if (db == NULL) {
        snprintf(err, errlen, "report: out of memory");
        return NULL;
    }
    db->ops = &sq_ops;
    db->conn = txnschema_open_ro(path, err, errlen);
    if (db->conn == NULL) {
        free(db);
        return NULL;
    }
    snprintf(db->where, sizeof(db->where), "%s", path);
    return db;
}
