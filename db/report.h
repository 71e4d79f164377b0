/*
 * db/report.h: the report queries over the transaction store, answered as
 * jansson objects (the admin UI renders them, `musctl report` prints them,
 * tests compare them). Each report_t is one read-only connection
 * (db/reportdb.h): an SQLite WAL reader, which never blocks the store's
 * writer, or a PostgreSQL session on the database a group of proxies
 * shares; either sees the rows committed when a query starts. It writes
 * nothing, keeps no cache and knows nothing of HTTP or of the UI.
 *
 * Threads: a report_t is used by one thread at a time (the UI opens one per
 * worker thread, or guards one with a mutex); any number of report_t may be
 * open on the same file alongside the store's writer.
 *
 * Every query takes a time range [from_ms, to_ms) on the transaction's end
 * time and a location filter. Results are new references the caller
 * json_decref()s; NULL means an error, whose text report_error() returns.
 * Row limits are clamped to 1..REPORT_ROWS_MAX (0 = REPORT_ROWS_DEFAULT).
 * Numbers are JSON integers; times are Unix milliseconds. The aggregates
 * read the whole UTC hours and days of a range from the store's rollups
 * and the rest from its rows (db/report.c), so a 30-day report does not
 * read 30 days of rows; web tracking always reads rows.
 */
#ifndef MUS_DB_REPORT_H
#define MUS_DB_REPORT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define REPORT_ROWS_MAX      1000
#define REPORT_ROWS_DEFAULT  20
#define REPORT_OFFSET_MAX    1000000      /* web tracking pages at most this deep */
#define REPORT_ERR_MAX       512
#define REPORT_BUCKET_MS     3600000      /* a timeline bucket: one hour (UTC-aligned) */
#define REPORT_BUCKETS_MAX   (24 * 400)   /* hourly buckets a timeline holds at most */

typedef struct report report_t;

enum report_location {
    REPORT_LOC_ALL = 0,
    REPORT_LOC_REMOTE,
    REPORT_LOC_LOCAL,
};
const char *report_location_str(enum report_location l);

typedef struct report_range {
    int64_t from_ms, to_ms;              /* [from, to) */
    enum report_location loc;
} report_range_t;

/* What top users are ranked by. */
enum report_order {
    REPORT_BY_REQUESTS = 0,
    REPORT_BY_BYTES,
    REPORT_BY_BLOCKED,
};
const char *report_order_str(enum report_order by);   /* "requests", "bytes", "blocked" */

/* Web tracking filters: NULL or "" = any. */
typedef struct report_filter {
    const char *user;                    /* exact */
    const char *host;                    /* the host or any subdomain of it */
    const char *decision;                /* "allow", "block", ... (txn_decision_str) */
    const char *category;                /* exact */
    const char *client;                  /* exact client address */
} report_filter_t;

/* Opens path read-only; NULL with a message (missing file, not a store,
 * another schema version). */
report_t *report_open(const char *path, char *err, size_t errlen);

/* Where the reports read: the SQLite file, or the PostgreSQL database a
 * group of proxies writes (the group's rows, every node's). */
typedef struct report_store {
    bool postgresql;
    const char *path;                    /* SQLite */
    const char *conninfo;                /* PostgreSQL: libpq's, without a password */
    const char *password_file;           /* PostgreSQL: libpq's passfile; NULL or "" = default */
} report_store_t;

/* The same for either database (PostgreSQL: one connection; a query that
 * finds it broken, the server restarted, opens it again and runs once more). */
report_t *report_open_store(const report_store_t *where, char *err, size_t errlen);
void report_close(report_t *r);
const char *report_error(const report_t *r);

/* Whether the aggregate reports read whole hours and days from the
 * store's rollups (the default) or every row of the range: the answers are
 * the same either way, only the time differs (tests and benchmarks
 * compare them). */
void report_set_rollups(report_t *r, bool use);

/* {"from","to","location","requests","blocked","bytes","users",
 *  "remote_requests","local_requests"} */
json_t *report_summary(report_t *r, const report_range_t *q);

/* [{"user","requests","bytes","blocked","remote"}...] best first, ties by
 * user name; "remote" is 1 if any of the user's rows was remote. Rows with
 * no user are not listed. */
json_t *report_top_users(report_t *r, const report_range_t *q, enum report_order by,
                         unsigned limit);

/* [{"category","requests","bytes","blocked","users"}...] by requests;
 * "" is the uncategorised traffic. */
json_t *report_top_categories(report_t *r, const report_range_t *q, unsigned limit);

/* [{"category","requests","bytes","blocked","users"}...] ordered by `by`,
 * ties by name: the URL categories report. */
json_t *report_categories(report_t *r, const report_range_t *q, enum report_order by,
                          unsigned limit);

/* [{"host","requests","bytes","blocked","users"}...] ordered by `by`, ties
 * by host: the web sites report. */
json_t *report_sites(report_t *r, const report_range_t *q, enum report_order by,
                     unsigned limit);

/* The blocked requests: {"summary":{"requests","blocked","users","hosts"},
 *  "by_category":[{"category","blocked","users"}],
 *  "by_policy":[{"access_policy","rule","blocked","users"}],
 *  "by_user":[{"user","blocked","remote","hosts"}]}, each list by blocked
 * requests, ties by name. Unidentified requests are the user "" and
 * requests no policy judged (ACL denials) the access_policy "", so every
 * list sums to summary.blocked when it is not cut by the limit. */
json_t *report_blocked(report_t *r, const report_range_t *q, unsigned limit);

/* Traffic per hour: [{"time","requests","bytes","blocked","remote_requests",
 * "local_requests","remote_bytes","local_bytes","remote_blocked",
 * "local_blocked"}...], one row per REPORT_BUCKET_MS bucket from the one
 * holding from_ms to the one holding to_ms - 1, hours without traffic
 * included (zeros); "time" is the bucket's start, and the first and last
 * buckets count only rows inside [from, to). NULL past REPORT_BUCKETS_MAX
 * buckets. */
json_t *report_timeline(report_t *r, const report_range_t *q);

/* Remote against local: {"locations":[{"location":"remote"|"local",
 * "requests","bytes","blocked","users","requests_share","bytes_share",
 * "blocked_share"}] (both rows always, remote first; a share is the row's
 * percentage of the column's total, a JSON real rounded half up to a tenth,
 * 0 when the total is 0), "remote_domains":[{"host","requests","bytes",
 * "blocked","users"}] (the hosts remote users reached, by requests)}. */
json_t *report_locations(report_t *r, const report_range_t *q, unsigned limit);

/* [{"host","blocked","users","category"}...] by blocked requests. */
json_t *report_top_blocked_hosts(report_t *r, const report_range_t *q, unsigned limit);

/* {"user","requests","bytes","blocked","first_seen","last_seen",
 *  "hosts":[{"host","requests","bytes","blocked"}],
 *  "categories":[{"category","requests","bytes","blocked"}],
 *  "blocks":[{"time","host","url","category","rule","decision_tag"}] newest first}
 * first/last_seen are 0 when the user has no rows in range. */
json_t *report_user_detail(report_t *r, const report_range_t *q, const char *user,
                           unsigned limit);

/* {"open":[...sessions started before to and not ended],
 *  "recent":[...sessions ended in [from, to)] newest end first}, each
 * {"user","domain","vpn_addr","public_addr","type","headend","start","end",
 * "end_reason"}. The location filter does not apply (sessions are remote). */
json_t *report_sessions(report_t *r, const report_range_t *q, unsigned limit);

/* Web tracking: {"rows":[{"id","time","elapsed","client","user","remote","method",
 * "host","url","status","bytes","result","decision","decision_tag","category",
 * "rule","access_policy","identity_profile","headend"}...], "offset",
 * "limit", "more": true if further rows exist}, newest first. */
json_t *report_search(report_t *r, const report_range_t *q, const report_filter_t *f,
                      unsigned limit, unsigned offset);

#endif
