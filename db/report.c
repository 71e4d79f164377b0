/*
 * db/report.c: the report queries (see report.h). Every query is one SQL
 * statement over the store's tables (db/txnschema.c), prepared on the
 * report's read-only connection, with the range and location bound as
 * ?1 from, ?2 to, ?3 location (-1 all, 1 remote, 0 local) and ?4 the row
 * limit; result columns become JSON members under their SQL names, so the
 * names in report.h are the aliases below. Orders are total (ties broken by
 * name or id) so two runs over the same rows give the same JSON.
 *
 * Rollups: every aggregate report reads its rows from a "source", a
 * subquery (named src) of (t, remote, user, ..., requests, bytes, blocked) rows: the
 * txn rows (1 request each) of the range's unaligned edges, [from, h0) and
 * [h1, to), and the rollup rows (txnschema.h) of the whole hours [h0, d0)
 * and [d1, h1) and the whole days [d0, d1) in between (?11 h0, ?12 h1,
 * ?13 d0, ?14 d1). Sums, maxima and distinct counts over those rows are the
 * same as over the txn rows of the range, because each rollup row sums
 * txn rows of one key and the writer keeps them equal at every commit; so
 * the answers do not depend on the split. Without rollups (report_set_rollups
 * false, or a range under an hour) all four are `to` and the source is the
 * txn rows of [from, to). The timeline reads no days (its buckets are
 * hours). Web tracking, a user's blocked requests and sessions read rows.
 */
#include "report.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reportdb.h"
#include "txnschema.h"
#include "txnstore.h"

/* The statement being built: its SQL (the caller's buffer) and parameters. */
typedef struct rq {
    const char *sql;
    reportdb_params_t p;
} rq_t;

struct report {
    reportdb_t *db;
    bool rollups;                     /* read whole hours and days from the rollups */
    rq_t rq;                          /* one statement at a time (one thread uses a report_t) */
    char err[REPORT_ERR_MAX];
};

#define RANGE " time_ms >= ?1 AND time_ms < ?2 AND (?3 < 0 OR remote = ?3) "
#define SUMS  " COALESCE(sum(requests), 0) AS requests, COALESCE(sum(bytes), 0) AS bytes," \
              " COALESCE(sum(blocked), 0) AS blocked "
#define USERS " count(DISTINCT NULLIF(\"user\", '')) AS users"
#define SQL_MAX 4096                  /* bytes of a query built with sources */

/* The rollup tables, and the txn rows each one sums. */
enum src_kind { SRC_USER, SRC_CATEGORY, SRC_HOST, SRC_BLOCKED };
static const struct {
    const char *table, *cols, *rows_where;
} srcs[] = {
    [SRC_USER] = {"ru_user", "remote, \"user\"", ""},
    [SRC_CATEGORY] = {"ru_category", "remote, \"user\", category", ""},
    [SRC_HOST] = {"ru_host", "remote, \"user\", host", ""},
    [SRC_BLOCKED] = {"ru_blocked", "remote, \"user\", host, category, access_policy, rule",
                     " AND blocked = 1"},
};

/* The source of kind k (see the top of this file) as a parenthesized
 * subquery into buf; extra is more of every WHERE (columns every part has:
 * remote, user and the kind's own), "" for none. */
static const char *
src(char *buf, size_t cap, enum src_kind k, const char *extra)
{
    const char *c = srcs[k].cols, *t = srcs[k].table, *w = srcs[k].rows_where;

#define ROWS(lo, hi) "SELECT time_ms / 3600000 * 3600000 AS t, %s, 1 AS requests," \
                     " bytes_out AS bytes, blocked FROM txn WHERE time_ms >= " lo \
                     " AND time_ms < " hi " AND (?3 < 0 OR remote = ?3)%s %s"
#define ROLLED(span, lo, hi) "SELECT bucket, %s, requests, bytes, blocked FROM %s WHERE" \
                             " span = " span " AND bucket >= " lo " AND bucket < " hi \
                             " AND (?3 < 0 OR remote = ?3) %s"
    snprintf(buf, cap, "(" ROWS("?1", "?11") " UNION ALL " ROWS("?12", "?2")
             " UNION ALL " ROLLED("3600000", "?11", "?13")
             " UNION ALL " ROLLED("3600000", "?14", "?12")
             " UNION ALL " ROLLED("86400000", "?13", "?14") ") AS src",
             c, w, extra, c, w, extra, c, t, extra, c, t, extra, c, t, extra);
#undef ROWS
#undef ROLLED
    return buf;
}

/* a rounded down / up to a multiple of span */
static int64_t
floor_to(int64_t a, int64_t span)
{
    return (int64_t)txnschema_bucket(a, span);
}

static int64_t
ceil_to(int64_t a, int64_t span)
{
    int64_t f = floor_to(a, span);

    return f == a ? a : f + span;
}

/* Binds the split of q (?11 h0, ?12 h1, ?13 d0, ?14 d1); with days false
 * the whole hours are all read from the hourly rollup. */
static void
bind_split(const report_t *r, rq_t *st, const report_range_t *q, bool days)
{
    int64_t from = q->from_ms, to = q->to_ms, h0 = to, h1 = to, d0 = to, d1 = to;
    const int64_t far = INT64_MAX - 2 * TXNSCHEMA_SPAN_DAY;

    if (r->rollups && from < to && from > -far && to < far) {
        int64_t a = ceil_to(from, TXNSCHEMA_SPAN_HOUR), b = floor_to(to, TXNSCHEMA_SPAN_HOUR);
        if (a < b) {
            h0 = a;
            h1 = b;
            d0 = ceil_to(a, TXNSCHEMA_SPAN_DAY);
            d1 = floor_to(b, TXNSCHEMA_SPAN_DAY);
            if (!days || d0 >= d1)
                d0 = d1 = h1;
        }
    }
    reportdb_int(&st->p, 11, h0);
    reportdb_int(&st->p, 12, h1);
    reportdb_int(&st->p, 13, d0);
    reportdb_int(&st->p, 14, d1);
}

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
report_open_store(const report_store_t *where, char *err, size_t errlen)
{
    report_t *r = calloc(1, sizeof(*r));

    if (r == NULL) {
        snprintf(err, errlen, "report: out of memory");
        return NULL;
    }
    if (where->postgresql)
        r->db = reportdb_open_pg(where->conninfo, where->password_file, err, errlen);
    else
        r->db = reportdb_open_sqlite(where->path, err, errlen);
    if (r->db == NULL) {
        free(r);
        return NULL;
    }
    r->rollups = true;
    return r;
}

report_t *
report_open(const char *path, char *err, size_t errlen)
{
    report_store_t where = {.path = path};

    return report_open_store(&where, err, errlen);
}

void
report_set_rollups(report_t *r, bool use)
{
    r->rollups = use;
}

void
report_close(report_t *r)
{
    if (r == NULL)
        return;
    reportdb_close(r->db);
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

/* Starts the statement sql with the range and limit bound (?1 from, ?2 to,
 * ?3 location, ?4 limit, ?11-?14 the split); more may be bound before
 * run_rows. sql must live until then. */
static rq_t *
prepare(report_t *r, const char *sql, const report_range_t *q, unsigned limit)
{
    rq_t *st = &r->rq;

    memset(&st->p, 0, sizeof(st->p));
    st->sql = sql;
    reportdb_int(&st->p, 1, q->from_ms);
    reportdb_int(&st->p, 2, q->to_ms);
    reportdb_int(&st->p, 3, q->loc == REPORT_LOC_REMOTE ? 1 : q->loc == REPORT_LOC_LOCAL ? 0 : -1);
    reportdb_int(&st->p, 4, limit);
    bind_split(r, st, q, true);
    return st;
}

/* Binds a filter string, NULL for "" (matches anything). */
static void
bind_opt(rq_t *st, int i, const char *v)
{
    reportdb_text(&st->p, i, v != NULL && v[0] != '\0' ? v : NULL);
}

/* Runs st into an array of row objects (at most max rows). NULL with the
 * error set. */
static json_t *
run_rows(report_t *r, rq_t *st, unsigned max)
{
    return reportdb_rows(r->db, st->sql, &st->p, max, r->err, sizeof(r->err));
}

/* The single row of an aggregate query, as an object. */
static json_t *
run_one(report_t *r, rq_t *st)
{
    json_t *a = run_rows(r, st, 1), *o = NULL;

    if (a != NULL && json_array_size(a) == 1)
        o = json_incref(json_array_get(a, 0));
    else if (a != NULL)
        seterr(r, "%s: report query returned no row", reportdb_where(r->db));
    json_decref(a);
    return o;
}

json_t *
report_summary(report_t *r, const report_range_t *q)
{
    char sql[SQL_MAX * 2], from[SQL_MAX];   /* the query around a FROM of up to SQL_MAX */
    json_t *o;

    snprintf(sql, sizeof(sql), "SELECT" SUMS "," USERS ","
             " COALESCE(sum(remote * requests), 0) AS remote_requests,"
             " COALESCE(sum(requests), 0) - COALESCE(sum(remote * requests), 0) AS local_requests"
             " FROM %s", src(from, sizeof(from), SRC_USER, ""));
    o = run_one(r, prepare(r, sql, q, 1));

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

/* Rows of source k grouped by one column (user, host, category) with
 * their sums and one more column, ordered by `by`, ties by key; extra is
 * more of the source's WHERE. */
static json_t *
grouped(report_t *r, const report_range_t *q, enum src_kind k, const char *key, const char *more,
        const char *extra, enum report_order by, unsigned limit)
{
    const char *order = order_column(r, by);
    char sql[SQL_MAX * 2], from[SQL_MAX];   /* the query around a FROM of up to SQL_MAX */

    limit = clamp_limit(limit);
    if (order == NULL)
        return NULL;
    snprintf(sql, sizeof(sql), "SELECT %s," SUMS ",%s FROM %s GROUP BY %s"
             " ORDER BY %s DESC, %s LIMIT ?4", key, more, src(from, sizeof(from), k, extra), key,
             order, key);
    return run_rows(r, prepare(r, sql, q, limit), limit);
}

json_t *
report_top_users(report_t *r, const report_range_t *q, enum report_order by, unsigned limit)
{
    return grouped(r, q, SRC_USER, "\"user\"", " max(remote) AS remote", "AND \"user\" <> ''", by,
                   limit);
}

json_t *
report_top_categories(report_t *r, const report_range_t *q, unsigned limit)
{
    return grouped(r, q, SRC_CATEGORY, "category", USERS, "", REPORT_BY_REQUESTS, limit);
}

json_t *
report_categories(report_t *r, const report_range_t *q, enum report_order by, unsigned limit)
{
    return grouped(r, q, SRC_CATEGORY, "category", USERS, "", by, limit);
}

json_t *
report_sites(report_t *r, const report_range_t *q, enum report_order by, unsigned limit)
{
    return grouped(r, q, SRC_HOST, "host", USERS, "", by, limit);
}

/* The blocked rows (source SRC_BLOCKED) grouped by keys; cols are the
 * result columns after the keys. */
static json_t *
blocked_by(report_t *r, const report_range_t *q, const char *keys, const char *cols,
           unsigned limit)
{
    char sql[SQL_MAX * 2], from[SQL_MAX];   /* the query around a FROM of up to SQL_MAX */

    snprintf(sql, sizeof(sql), "SELECT %s, %s FROM %s GROUP BY %s ORDER BY sum(blocked) DESC,"
             " %s LIMIT ?4", keys, cols, src(from, sizeof(from), SRC_BLOCKED, ""), keys, keys);
    return run_rows(r, prepare(r, sql, q, limit), limit);
}

json_t *
report_top_blocked_hosts(report_t *r, const report_range_t *q, unsigned limit)
{
    return blocked_by(r, q, "host", "sum(blocked) AS blocked," USERS ", max(category) AS category",
                      clamp_limit(limit));
}

/* "summary", "by_category", "by_policy", "by_user" of the blocked rows. */
json_t *
report_blocked(report_t *r, const report_range_t *q, unsigned limit)
{
    static const struct { const char *name, *keys, *cols; } parts[] = {
        {"by_category", "category", "sum(blocked) AS blocked," USERS},
        {"by_policy", "access_policy, rule", "sum(blocked) AS blocked," USERS},
        {"by_user", "\"user\"", "sum(blocked) AS blocked, max(remote) AS remote,"
                            " count(DISTINCT host) AS hosts"},
    };
    char sql[SQL_MAX * 3], all[SQL_MAX], blk[SQL_MAX];
    json_t *o = json_object(), *sum;

    limit = clamp_limit(limit);
    snprintf(sql, sizeof(sql), "SELECT (SELECT COALESCE(sum(requests), 0) FROM %s) AS requests,"
             " COALESCE(sum(blocked), 0) AS blocked," USERS ", count(DISTINCT host) AS hosts"
             " FROM %s", src(all, sizeof(all), SRC_USER, ""),
             src(blk, sizeof(blk), SRC_BLOCKED, ""));
    sum = run_one(r, prepare(r, sql, q, 1));
    if (o == NULL || sum == NULL) {
        json_decref(o);
        json_decref(sum);
        return NULL;
    }
    json_object_set_new(o, "summary", sum);
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
        json_t *part = blocked_by(r, q, parts[i].keys, parts[i].cols, limit);
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
    char sql[SQL_MAX * 2], from[SQL_MAX];   /* the query around a FROM of up to SQL_MAX */
    rq_t *st;
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
    snprintf(sql, sizeof(sql), "SELECT t AS time," SUMS ","
             " COALESCE(sum(remote * requests), 0) AS remote_requests,"
             " COALESCE(sum(requests) - sum(remote * requests), 0) AS local_requests,"
             " COALESCE(sum(remote * bytes), 0) AS remote_bytes,"
             " COALESCE(sum(bytes) - sum(remote * bytes), 0) AS local_bytes,"
             " COALESCE(sum(remote * blocked), 0) AS remote_blocked,"
             " COALESCE(sum(blocked) - sum(remote * blocked), 0) AS local_blocked"
             " FROM %s GROUP BY 1 ORDER BY 1", src(from, sizeof(from), SRC_USER, ""));
    st = prepare(r, sql, q, 1);
    bind_split(r, st, q, false);                 /* hourly buckets: no days */
    rows = run_rows(r, st, (unsigned)n + 1);
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
    char sql[SQL_MAX * 2], from[SQL_MAX];   /* the query around a FROM of up to SQL_MAX */
    size_t i;

    limit = clamp_limit(limit);
    snprintf(sql, sizeof(sql),
             "WITH loc(remote, location) AS (VALUES (1, 'remote'), (0, 'local'))"
             " SELECT loc.location AS location, COALESCE(a.requests, 0) AS requests,"
             " COALESCE(a.bytes, 0) AS bytes, COALESCE(a.blocked, 0) AS blocked,"
             " COALESCE(a.users, 0) AS users FROM loc LEFT JOIN (SELECT remote," SUMS ","
             USERS " FROM %s GROUP BY remote) AS a ON a.remote = loc.remote"
             " ORDER BY loc.remote DESC", src(from, sizeof(from), SRC_USER, ""));
    locs = run_rows(r, prepare(r, sql, q, 2), 2);
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
    domains = grouped(r, q, SRC_HOST, "host", USERS, "AND remote = 1", REPORT_BY_REQUESTS, limit);
    return pair("locations", locs, "remote_domains", domains);
}

/* A query with ?5 bound to the user. */
static rq_t *
prepare_user(report_t *r, const char *sql, const report_range_t *q, unsigned limit,
             const char *user)
{
    rq_t *st = prepare(r, sql, q, limit);

    reportdb_text(&st->p, 5, user);
    return st;
}

json_t *
report_user_detail(report_t *r, const report_range_t *q, const char *user, unsigned limit)
{
    static const struct { const char *name, *key; enum src_kind k; } parts[] = {
        {"hosts", "host", SRC_HOST},
        {"categories", "category", SRC_CATEGORY},
        {"blocks", NULL, SRC_USER},
    };
    char sql[SQL_MAX * 2], from[SQL_MAX];   /* the query around a FROM of up to SQL_MAX */
    json_t *o;

    limit = clamp_limit(limit);
    if (user == NULL)
        user = "";
    /* first and last seen: the ends of the user's run of the (user, time)
     * index */
    snprintf(sql, sizeof(sql), "SELECT ?5 AS \"user\"," SUMS ","
             " COALESCE((SELECT min(time_ms) FROM txn WHERE" RANGE "AND \"user\" = ?5), 0)"
             " AS first_seen,"
             " COALESCE((SELECT max(time_ms) FROM txn WHERE" RANGE "AND \"user\" = ?5), 0)"
             " AS last_seen FROM %s", src(from, sizeof(from), SRC_USER, "AND \"user\" = ?5"));
    o = run_one(r, prepare_user(r, sql, q, 1, user));
    for (size_t i = 0; o != NULL && i < sizeof(parts) / sizeof(parts[0]); i++) {
        json_t *part;
        if (parts[i].key != NULL)
            snprintf(sql, sizeof(sql), "SELECT %s," SUMS "FROM %s GROUP BY %s"
                     " ORDER BY requests DESC, %s LIMIT ?4", parts[i].key,
                     src(from, sizeof(from), parts[i].k, "AND \"user\" = ?5"), parts[i].key,
                     parts[i].key);
        else
            snprintf(sql, sizeof(sql), "SELECT time_ms AS time, host, url, category, rule,"
                     " decision_tag FROM txn WHERE" RANGE "AND \"user\" = ?5 AND txn.blocked = 1"
                     " ORDER BY time_ms DESC, id DESC LIMIT ?4");
        part = run_rows(r, prepare_user(r, sql, q, limit, user), limit);
        if (part == NULL) {
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, parts[i].name, part);
    }
    return o;
}

#define SESSION_COLS "SELECT \"user\", domain, vpn_addr, public_addr, type, headend," \
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
    rq_t *st;
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
        "SELECT id, time_ms AS time, elapsed_ms AS elapsed, client, \"user\", remote, method,"
        " host,"
        " url, status, bytes_out AS bytes, result, decision, decision_tag, category, rule,"
        " access_policy, identity_profile, headend FROM txn WHERE" RANGE
        " AND (?5 IS NULL OR \"user\" = ?5)"
        " AND (?6 IS NULL OR host = ?6 OR (length(host) > length(?6)"
        "      AND substr(host, length(host) - length(?6)) = '.' || ?6))"
        " AND (?7 IS NULL OR decision = ?7) AND (?8 IS NULL OR category = ?8)"
        " AND (?9 IS NULL OR client = ?9)"
        " ORDER BY time_ms DESC, id DESC LIMIT ?4 OFFSET ?10", q, limit + 1);
    bind_opt(st, 5, f->user);
    if (f->host != NULL && f->host[0] != '\0') {
        txnstore_url_host(f->host, host, sizeof(host));
        bind_opt(st, 6, host);
    } else {
        bind_opt(st, 6, NULL);
    }
    bind_opt(st, 7, f->decision);
    bind_opt(st, 8, f->category);
    bind_opt(st, 9, f->client);
    reportdb_int(&st->p, 10, offset);
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
