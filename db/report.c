/*
 * db/report.c: the report queries (see report.h). Every query is one SQL
 * statement over the store's tables (db/txnschema.c), prepared on the
 * report's read-only connection, with the range and location bound as
 * ?1 from, ?2 to, ?3 location (-1 all, 1 remote, 0 local) and ?4 the row
 * limit; result columns become JSON members under their SQL names, so the
 * names in report.h are the aliases below. Orders are total (ties broken by
 * name or id) so two runs over the same rows give the same JSON.
 *
 * Not here: rollup tables (minute/hour/day) for 30-day reports over tens of
 * millions of rows; today every query scans the time index for its range.
 */
#include "report.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txnschema.h"
#include "txnstore.h"

struct report {
    sqlite3 *db;
    char path[512];
    char err[REPORT_ERR_MAX];
};

#define RANGE " time_ms >= ?1 AND time_ms < ?2 AND (?3 < 0 OR remote = ?3) "
#define SUMS  " count(*) AS requests, COALESCE(sum(bytes_out), 0) AS bytes," \
              " COALESCE(sum(blocked), 0) AS blocked "

static void
seterr(report_t *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
}

const char *
report_location_str(enum report_location l)
{
    switch (l) {
    case REPORT_LOC_ALL: return "all";
    case REPORT_LOC_REMOTE: return "remote";
    case REPORT_LOC_LOCAL: return "local";
    }
    return "all";
}

report_t *
report_open(const char *path, char *err, size_t errlen)
{
    report_t *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        snprintf(err, errlen, "report: out of memory");
        return NULL;
    }
    r->db = txnschema_open_ro(path, err, errlen);
    if (r->db == NULL) {
        free(r);
        return NULL;
    }
    snprintf(r->path, sizeof(r->path), "%s", path);
    return r;
}

void
report_close(report_t *r)
{
    if (r == NULL)
        return;
    sqlite3_close(r->db);
    free(r);
}

const char *
report_error(const report_t *r)
{
    return r->err;
}

static unsigned
clamp_limit(unsigned limit)
{
    if (limit == 0)
        return REPORT_ROWS_DEFAULT;
    return limit > REPORT_ROWS_MAX ? REPORT_ROWS_MAX : limit;
}

/* Prepares sql and binds the range and limit. NULL with the error set. */
static sqlite3_stmt *
prepare(report_t *r, const char *sql, const report_range_t *q, unsigned limit)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(r->db, sql, -1, &st, NULL);

    if (rc != SQLITE_OK) {
        seterr(r, "%s: report query: %s (%s)", r->path, sqlite3_errmsg(r->db),
               txnschema_rc_name(rc));
        sqlite3_finalize(st);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, q->from_ms);
    sqlite3_bind_int64(st, 2, q->to_ms);
    sqlite3_bind_int(st, 3, q->loc == REPORT_LOC_REMOTE ? 1 : q->loc == REPORT_LOC_LOCAL ? 0 : -1);
    sqlite3_bind_int64(st, 4, limit);
    return st;
}

/* Binds a filter string, NULL for "" (matches anything). */
static void
bind_opt(sqlite3_stmt *st, int i, const char *v)
{
    if (v == NULL || v[0] == '\0')
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_text(st, i, v, -1, SQLITE_TRANSIENT);
}

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

/* Steps st to the end into an array of row objects (at most max rows) and
 * finalizes it. NULL with the error set. */
static json_t *
run_rows(report_t *r, sqlite3_stmt *st, unsigned max)
{
    json_t *a;
    int rc;

    if (st == NULL)
        return NULL;
    a = json_array();
    while (a != NULL && json_array_size(a) < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
        json_array_append_new(a, row_object(st));
    if (a != NULL && json_array_size(a) < max && rc != SQLITE_DONE) {
        seterr(r, "%s: report query: %s (%s)", r->path, sqlite3_errmsg(r->db),
               txnschema_rc_name(rc));
        json_decref(a);
        a = NULL;
    }
    sqlite3_finalize(st);
    return a;
}

/* The single row of an aggregate query, as an object. */
static json_t *
run_one(report_t *r, sqlite3_stmt *st)
{
    json_t *a = run_rows(r, st, 1), *o = NULL;

    if (a != NULL && json_array_size(a) == 1)
        o = json_incref(json_array_get(a, 0));
    else if (a != NULL)
        seterr(r, "%s: report query returned no row", r->path);
    json_decref(a);
    return o;
}

json_t *
report_summary(report_t *r, const report_range_t *q)
{
    json_t *o = run_one(r, prepare(r,
        "SELECT" SUMS ", count(DISTINCT NULLIF(user, '')) AS users,"
        " COALESCE(sum(remote), 0) AS remote_requests,"
        " count(*) - COALESCE(sum(remote), 0) AS local_requests"
        " FROM txn WHERE" RANGE, q, 1));

    if (o == NULL)
        return NULL;
    json_object_set_new(o, "from", json_integer(q->from_ms));
    json_object_set_new(o, "to", json_integer(q->to_ms));
    json_object_set_new(o, "location", json_string(report_location_str(q->loc)));
    return o;
}

json_t *
report_top_users(report_t *r, const report_range_t *q, enum report_order by, unsigned limit)
{
    static const char *const sql[] = {
        [REPORT_BY_REQUESTS] = "requests", [REPORT_BY_BYTES] = "bytes",
        [REPORT_BY_BLOCKED] = "blocked"};
    char buf[512];

    limit = clamp_limit(limit);
    if ((unsigned)by >= sizeof(sql) / sizeof(sql[0])) {
        seterr(r, "report: unknown order %d", (int)by);
        return NULL;
    }
    snprintf(buf, sizeof(buf), "SELECT user," SUMS ", max(remote) AS remote FROM txn"
             " WHERE" RANGE "AND user <> '' GROUP BY user ORDER BY %s DESC, user LIMIT ?4",
             sql[by]);
    return run_rows(r, prepare(r, buf, q, limit), limit);
}

json_t *
report_top_categories(report_t *r, const report_range_t *q, unsigned limit)
{
    limit = clamp_limit(limit);
    return run_rows(r, prepare(r,
        "SELECT category," SUMS ", count(DISTINCT NULLIF(user, '')) AS users FROM txn"
        " WHERE" RANGE "GROUP BY category ORDER BY requests DESC, category LIMIT ?4",
        q, limit), limit);
}

json_t *
report_top_blocked_hosts(report_t *r, const report_range_t *q, unsigned limit)
{
    limit = clamp_limit(limit);
    return run_rows(r, prepare(r,
        "SELECT host, count(*) AS blocked, count(DISTINCT NULLIF(user, '')) AS users,"
        " max(category) AS category FROM txn WHERE" RANGE "AND txn.blocked = 1"
        " GROUP BY host ORDER BY count(*) DESC, host LIMIT ?4", q, limit), limit);
}

/* A query with ?5 bound to the user. */
static sqlite3_stmt *
prepare_user(report_t *r, const char *sql, const report_range_t *q, unsigned limit,
             const char *user)
{
    sqlite3_stmt *st = prepare(r, sql, q, limit);

    if (st != NULL)
        sqlite3_bind_text(st, 5, user, -1, SQLITE_TRANSIENT);
    return st;
}

json_t *
report_user_detail(report_t *r, const report_range_t *q, const char *user, unsigned limit)
{
    static const struct { const char *name, *sql; } parts[] = {
        {"hosts", "SELECT host," SUMS "FROM txn WHERE" RANGE "AND user = ?5"
                  " GROUP BY host ORDER BY requests DESC, host LIMIT ?4"},
        {"categories", "SELECT category," SUMS "FROM txn WHERE" RANGE "AND user = ?5"
                       " GROUP BY category ORDER BY requests DESC, category LIMIT ?4"},
        {"blocks", "SELECT time_ms AS time, host, url, category, rule, decision_tag FROM txn"
                   " WHERE" RANGE "AND user = ?5 AND txn.blocked = 1"
                   " ORDER BY time_ms DESC, id DESC LIMIT ?4"},
    };
    json_t *o;

    limit = clamp_limit(limit);
    if (user == NULL)
        user = "";
    o = run_one(r, prepare_user(r,
        "SELECT ?5 AS user," SUMS ", COALESCE(min(time_ms), 0) AS first_seen,"
        " COALESCE(max(time_ms), 0) AS last_seen FROM txn WHERE" RANGE "AND user = ?5",
        q, 1, user));
    for (size_t i = 0; o != NULL && i < sizeof(parts) / sizeof(parts[0]); i++) {
        json_t *part = run_rows(r, prepare_user(r, parts[i].sql, q, limit, user), limit);
        if (part == NULL) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, parts[i].name, part);
    }
    return o;
}

#define SESSION_COLS "SELECT user, domain, vpn_addr, public_addr, type, headend," \
                     " start_ms AS start, end_ms AS \"end\", end_reason FROM sessions"

json_t *
report_sessions(report_t *r, const report_range_t *q, unsigned limit)
{
    json_t *o, *open, *recent;

    limit = clamp_limit(limit);
    open = run_rows(r, prepare(r, SESSION_COLS " WHERE end_ms = 0 AND start_ms < ?2"
                               " AND ?1 = ?1 AND ?3 = ?3"
                               " ORDER BY start_ms DESC, id DESC LIMIT ?4", q, limit), limit);
    if (open == NULL)
        return NULL;
    recent = run_rows(r, prepare(r, SESSION_COLS " WHERE end_ms <> 0 AND end_ms >= ?1"
                                 " AND end_ms < ?2 AND ?3 = ?3"
                                 " ORDER BY end_ms DESC, id DESC LIMIT ?4", q, limit), limit);
    if (recent == NULL) {
        json_decref(open);
        return NULL;
    }
    o = json_object();
    json_object_set_new(o, "open", open);
    json_object_set_new(o, "recent", recent);
    return o;
}

json_t *
report_search(report_t *r, const report_range_t *q, const report_filter_t *f, unsigned limit,
              unsigned offset)
{
    static const report_filter_t none;
    char host[TXNSTORE_HOST_MAX];
    sqlite3_stmt *st;
    json_t *rows, *o;
    bool more;

    limit = clamp_limit(limit);
    if (offset > REPORT_OFFSET_MAX) {
        seterr(r, "report: offset %u is over %u", offset, REPORT_OFFSET_MAX);
        return NULL;
    }
    if (f == NULL)
        f = &none;
    st = prepare(r,
        "SELECT id, time_ms AS time, elapsed_ms AS elapsed, client, user, remote, method, host,"
        " url, status, bytes_out AS bytes, result, decision, decision_tag, category, rule,"
        " access_policy, identity_profile, headend FROM txn WHERE" RANGE
        " AND (?5 IS NULL OR user = ?5)"
        " AND (?6 IS NULL OR host = ?6 OR (length(host) > length(?6)"
        "      AND substr(host, -length(?6) - 1) = '.' || ?6))"
        " AND (?7 IS NULL OR decision = ?7) AND (?8 IS NULL OR category = ?8)"
        " AND (?9 IS NULL OR client = ?9)"
        " ORDER BY time_ms DESC, id DESC LIMIT ?4 OFFSET ?10", q, limit + 1);
    if (st == NULL)
        return NULL;
    bind_opt(st, 5, f->user);
    if (f->host != NULL && f->host[0] != '\0') {
        txnstore_url_host(f->host, host, sizeof(host));
        bind_opt(st, 6, host);
    } else {
        sqlite3_bind_null(st, 6);
    }
    bind_opt(st, 7, f->decision);
    bind_opt(st, 8, f->category);
    bind_opt(st, 9, f->client);
    sqlite3_bind_int64(st, 10, offset);
    rows = run_rows(r, st, limit + 1);
    if (rows == NULL)
        return NULL;
    more = json_array_size(rows) > limit;
    if (more)
        json_array_remove(rows, limit);
    o = json_object();
    json_object_set_new(o, "rows", rows);
    json_object_set_new(o, "offset", json_integer(offset));
    json_object_set_new(o, "limit", json_integer(limit));
    json_object_set_new(o, "more", json_boolean(more));
    return o;
}
