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

const char *
report_order_str(enum report_order by)
{
    switch (by) {
    case REPORT_BY_REQUESTS: return "requests";
    case REPORT_BY_BYTES: return "bytes";
    case REPORT_BY_BLOCKED: return "blocked";
    }
    return "requests";
}

/* The SQL alias an order sorts on; NULL with the error set. */
static const char *
order_column(report_t *r, enum report_order by)
{
    if ((unsigned)by > REPORT_BY_BLOCKED) {
        seterr(r, "report: unknown order %d", (int)by);
        return NULL;
    }
    return report_order_str(by);
}

#define USERS " count(DISTINCT NULLIF(user, '')) AS users"

/* Rows grouped by one column (user, host, category) with their sums and
 * one more column, ordered by `by`, ties by key; where is more of the
 * WHERE clause. */
static json_t *
grouped(report_t *r, const report_range_t *q, const char *key, const char *more,
        const char *where, enum report_order by, unsigned limit)
{
    const char *order = order_column(r, by);
    char buf[640];

    limit = clamp_limit(limit);
    if (order == NULL)
        return NULL;
    snprintf(buf, sizeof(buf), "SELECT %s," SUMS ",%s FROM txn WHERE" RANGE "%s GROUP BY %s"
             " ORDER BY %s DESC, %s LIMIT ?4", key, more, where, key, order, key);
    return run_rows(r, prepare(r, buf, q, limit), limit);
}

json_t *
report_top_users(report_t *r, const report_range_t *q, enum report_order by, unsigned limit)
{
    return grouped(r, q, "user", " max(remote) AS remote", "AND user <> ''", by, limit);
}

json_t *
report_top_categories(report_t *r, const report_range_t *q, unsigned limit)
{
    return grouped(r, q, "category", USERS, "", REPORT_BY_REQUESTS, limit);
}

json_t *
report_categories(report_t *r, const report_range_t *q, enum report_order by, unsigned limit)
{
    return grouped(r, q, "category", USERS, "", by, limit);
}

json_t *
report_sites(report_t *r, const report_range_t *q, enum report_order by, unsigned limit)
{
    return grouped(r, q, "host", USERS, "", by, limit);
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

/* "summary", "by_category", "by_policy", "by_user" of the blocked rows. */
json_t *
report_blocked(report_t *r, const report_range_t *q, unsigned limit)
{
    static const struct { const char *name, *sql; } parts[] = {
        {"by_category", "SELECT category, count(*) AS blocked,"
                        " count(DISTINCT NULLIF(user, '')) AS users FROM txn WHERE" RANGE
                        "AND txn.blocked = 1 GROUP BY category"
                        " ORDER BY count(*) DESC, category LIMIT ?4"},
        {"by_policy", "SELECT access_policy, rule, count(*) AS blocked,"
                      " count(DISTINCT NULLIF(user, '')) AS users FROM txn WHERE" RANGE
                      "AND txn.blocked = 1 GROUP BY access_policy, rule"
                      " ORDER BY count(*) DESC, access_policy, rule LIMIT ?4"},
        {"by_user", "SELECT user, count(*) AS blocked, max(remote) AS remote,"
                    " count(DISTINCT host) AS hosts FROM txn WHERE" RANGE
                    "AND txn.blocked = 1 GROUP BY user ORDER BY count(*) DESC, user LIMIT ?4"},
    };
    json_t *o = json_object(), *sum;

    limit = clamp_limit(limit);
    sum = run_one(r, prepare(r,
        "SELECT count(*) AS requests, COALESCE(sum(blocked), 0) AS blocked,"
        " count(DISTINCT CASE WHEN blocked = 1 THEN NULLIF(user, '') END) AS users,"
        " count(DISTINCT CASE WHEN blocked = 1 THEN host END) AS hosts"
        " FROM txn WHERE" RANGE, q, 1));
    if (o == NULL || sum == NULL) {
        json_decref(o);
        json_decref(sum);
        return NULL;
    }
    json_object_set_new(o, "summary", sum);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        json_t *part = run_rows(r, prepare(r, parts[i].sql, q, limit), limit);
        if (part == NULL) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, parts[i].name, part);
    }
    return o;
}

/* {k1: a, k2: b}, taking both references; NULL (a freed) when b is NULL. */
static json_t *
pair(const char *k1, json_t *a, const char *k2, json_t *b)
{
    json_t *o = b != NULL ? json_object() : NULL;

    if (o == NULL) {
        json_decref(a);
        json_decref(b);
        return NULL;
    }
    json_object_set_new(o, k1, a);
    json_object_set_new(o, k2, b);
    return o;
}

/* The hour a time falls in (times are after 1970: division truncates down). */
static int64_t
bucket_of(int64_t t)
{
    return t / REPORT_BUCKET_MS * REPORT_BUCKET_MS;
}

/* The members of a timeline row; a bucket without traffic has them all 0. */
static const char *const timeline_cols[] = {
    "time", "requests", "bytes", "blocked", "remote_requests", "local_requests",
    "remote_bytes", "local_bytes", "remote_blocked", "local_blocked",
};

static json_t *
zero_bucket(int64_t t)
{
    json_t *o = json_object();

    for (size_t i = 0; o != NULL && i < sizeof(timeline_cols) / sizeof(timeline_cols[0]); i++)
        json_object_set_new(o, timeline_cols[i], json_integer(i == 0 ? t : 0));
    return o;
}

json_t *
report_timeline(report_t *r, const report_range_t *q)
{
    int64_t first = bucket_of(q->from_ms), n;
    json_t *rows, *out;
    size_t k = 0;

    if (q->to_ms <= q->from_ms || q->from_ms < 0)
        return json_array();
    n = (q->to_ms - first + REPORT_BUCKET_MS - 1) / REPORT_BUCKET_MS;
    if (n > REPORT_BUCKETS_MAX) {
        seterr(r, "report: a range of %lld hours is over the %d hourly buckets a timeline "
               "holds", (long long)n, REPORT_BUCKETS_MAX);
        return NULL;
    }
    rows = run_rows(r, prepare(r,
        "SELECT time_ms / 3600000 * 3600000 AS time," SUMS ","
        " COALESCE(sum(remote), 0) AS remote_requests,"
        " count(*) - COALESCE(sum(remote), 0) AS local_requests,"
        " COALESCE(sum(remote * bytes_out), 0) AS remote_bytes,"
        " COALESCE(sum(bytes_out) - sum(remote * bytes_out), 0) AS local_bytes,"
        " COALESCE(sum(remote * blocked), 0) AS remote_blocked,"
        " COALESCE(sum(blocked) - sum(remote * blocked), 0) AS local_blocked"
        " FROM txn WHERE" RANGE "GROUP BY 1 ORDER BY 1", q, 1), (unsigned)n + 1);
    if (rows == NULL)
        return NULL;
    out = json_array();
    for (int64_t i = 0; out != NULL && i < n; i++) {
        int64_t t = first + i * REPORT_BUCKET_MS;
        json_t *row = json_array_get(rows, k);
        if (row != NULL && json_integer_value(json_object_get(row, "time")) == t) {
            json_array_append(out, row);
            k++;
        } else {
            json_array_append_new(out, zero_bucket(t));
        }
    }
    json_decref(rows);
    return out;
}

/* part of total in percent, rounded half up to a tenth; 0 when total is 0. */
static double
share(json_int_t part, json_int_t total)
{
    if (total <= 0)
        return 0.0;
    return (double)((part * 1000 + total / 2) / total) / 10.0;
}

json_t *
report_locations(report_t *r, const report_range_t *q, unsigned limit)
{
    static const char *const keys[] = {"requests", "bytes", "blocked"};
    json_t *locs, *domains, *row;
    json_int_t total[3] = {0, 0, 0};
    size_t i;

    limit = clamp_limit(limit);
    locs = run_rows(r, prepare(r,
        "WITH loc(remote, location) AS (VALUES (1, 'remote'), (0, 'local'))"
        " SELECT loc.location AS location, count(txn.id) AS requests,"
        " COALESCE(sum(txn.bytes_out), 0) AS bytes, COALESCE(sum(txn.blocked), 0) AS blocked,"
        " count(DISTINCT NULLIF(txn.user, '')) AS users"
        " FROM loc LEFT JOIN txn ON txn.remote = loc.remote AND txn.time_ms >= ?1"
        " AND txn.time_ms < ?2 AND (?3 < 0 OR txn.remote = ?3)"
        " GROUP BY loc.remote ORDER BY loc.remote DESC", q, 2), 2);
    if (locs == NULL)
        return NULL;
    json_array_foreach(locs, i, row)
        for (size_t k = 0; k < 3; k++)
            total[k] += json_integer_value(json_object_get(row, keys[k]));
    json_array_foreach(locs, i, row)
        for (size_t k = 0; k < 3; k++) {
            char name[32];
            snprintf(name, sizeof(name), "%s_share", keys[k]);
            json_object_set_new(row, name, json_real(share(
                json_integer_value(json_object_get(row, keys[k])), total[k])));
        }
    domains = grouped(r, q, "host", USERS, "AND remote = 1", REPORT_BY_REQUESTS, limit);
    return pair("locations", locs, "remote_domains", domains);
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
    json_t *open, *recent;

    limit = clamp_limit(limit);
    open = run_rows(r, prepare(r, SESSION_COLS " WHERE end_ms = 0 AND start_ms < ?2"
                               " AND ?1 = ?1 AND ?3 = ?3"
                               " ORDER BY start_ms DESC, id DESC LIMIT ?4", q, limit), limit);
    if (open == NULL)
        return NULL;
    recent = run_rows(r, prepare(r, SESSION_COLS " WHERE end_ms <> 0 AND end_ms >= ?1"
                                 " AND end_ms < ?2 AND ?3 = ?3"
                                 " ORDER BY end_ms DESC, id DESC LIMIT ?4", q, limit), limit);
    return pair("open", open, "recent", recent);
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
