/*
 * db/reportdoc.c: the report documents and their tables (see reportdoc.h).
 * Each kind is one builder that asks report.h and sets the answers as
 * members, unchanged; the catalog below lists, for each kind, where each
 * table is and its columns in the order the queries answer them (the unit
 * tests hold every row of every table to its list, and csv_write refuses a
 * row with a member the list lacks).
 */
#include "reportdoc.h"

#include <stdio.h>
#include <string.h>

#include "../common/err.h"

static const struct {
    const char *name, *summary;
} kinds[REPORTDOC_KINDS] = {
    [REPORTDOC_DASHBOARD] = {"dashboard", "totals, remote vs local; top users, categories, "
                                          "blocked hosts"},
    [REPORTDOC_SITES] = {"sites", "web sites: the hosts by requests, bytes or blocked (--by)"},
    [REPORTDOC_CATEGORIES] = {"categories", "URL categories: requests, bytes, blocked, users "
                                            "(--by)"},
    [REPORTDOC_BLOCKED] = {"blocked", "blocked requests by category, by policy and rule, "
                                      "by user"},
    [REPORTDOC_TIMELINE] = {"timeline", "overview over time: requests, bytes, blocked per "
                                        "hour, remote vs local"},
    [REPORTDOC_LOCATIONS] = {"locations", "remote vs local share of traffic and blocks; the "
                                          "hosts remote users reached"},
    [REPORTDOC_USER] = {"user", "one user (--user): hosts, categories, blocked requests"},
    [REPORTDOC_SEARCH] = {"search", "transactions, newest first, 50 a --page; --user, --host, "
                                    "--category, ..."},
    [REPORTDOC_SESSIONS] = {"sessions", "remote sessions: open, and ended in the range"},
};

const char *
reportdoc_name(enum reportdoc_kind k)
{
    return (unsigned)k < REPORTDOC_KINDS ? kinds[k].name : "dashboard";
}

const char *
reportdoc_summary(enum reportdoc_kind k)
{
    return (unsigned)k < REPORTDOC_KINDS ? kinds[k].summary : "";
}

bool
reportdoc_lookup(const char *name, enum reportdoc_kind *out)
{
    for (unsigned k = 0; k < REPORTDOC_KINDS; k++)
        if (strcmp(kinds[k].name, name) == 0) {
            *out = (enum reportdoc_kind)k;
            return true;
        }
    return false;
}

/* The message, and rc. */
#define FAIL(rc, err, errlen, ...) (err_set(err, errlen, __VA_ARGS__), (rc))

/* Sets key to a report's answer; -1 (with the report's error) on NULL. */
static int
put(json_t *doc, const char *key, json_t *val, report_t *r, char *err, size_t errlen)
{
    if (val == NULL)
        return FAIL(-1, err, errlen, "report %s: %s", key, report_error(r));
    json_object_set_new(doc, key, val);
    return 0;
}

/* Sets every member of an object answer. */
static int
put_all(json_t *doc, const char *what, json_t *val, report_t *r, char *err, size_t errlen)
{
    if (val == NULL)
        return FAIL(-1, err, errlen, "report %s: %s", what, report_error(r));
    json_object_update(doc, val);
    json_decref(val);
    return 0;
}

static const char *
nz(const char *s)
{
    return s != NULL ? s : "";
}

static int
search(json_t *doc, report_t *r, const report_range_t *q, const reportdoc_params_t *p,
       char *err, size_t errlen)
{
    const report_filter_t *f = &p->filter;
    unsigned page = p->page > 0 ? p->page : 1;

    json_object_set_new(doc, "filters",
                        json_pack("{s:s, s:s, s:s, s:s, s:s}", "user", nz(f->user), "host",
                                  nz(f->host), "decision", nz(f->decision), "category",
                                  nz(f->category), "client", nz(f->client)));
    json_object_set_new(doc, "page_number", json_integer(page));
    json_object_set_new(doc, "page_rows", json_integer(REPORTDOC_PAGE_ROWS));
    return put(doc, "result",
               report_search(r, q, f, REPORTDOC_PAGE_ROWS, (page - 1) * REPORTDOC_PAGE_ROWS),
               r, err, errlen);
}

int
reportdoc_fill(json_t *doc, report_t *r, enum reportdoc_kind k, const report_range_t *q,
               const reportdoc_params_t *p, char *err, size_t errlen)
{
    static const reportdoc_params_t none;
    unsigned top, rows;

    if (p == NULL)
        p = &none;
    top = p->limit ? p->limit : REPORTDOC_TOP_ROWS;
    rows = p->limit ? p->limit : REPORTDOC_REPORT_ROWS;
    switch (k) {
    case REPORTDOC_DASHBOARD:
        if (put(doc, "summary", report_summary(r, q), r, err, errlen) < 0 ||
            put(doc, "top_users", report_top_users(r, q, REPORT_BY_REQUESTS, top), r, err,
                errlen) < 0 ||
            put(doc, "top_categories", report_top_categories(r, q, top), r, err, errlen) < 0)
            return -1;
        return put(doc, "top_blocked_hosts", report_top_blocked_hosts(r, q, top), r, err,
                   errlen);
    case REPORTDOC_SITES:
        json_object_set_new(doc, "by", json_string(report_order_str(p->by)));
        return put(doc, "sites", report_sites(r, q, p->by, rows), r, err, errlen);
    case REPORTDOC_CATEGORIES:
        json_object_set_new(doc, "by", json_string(report_order_str(p->by)));
        return put(doc, "categories", report_categories(r, q, p->by, rows), r, err, errlen);
    case REPORTDOC_BLOCKED:
        return put_all(doc, "blocked", report_blocked(r, q, rows), r, err, errlen);
    case REPORTDOC_TIMELINE:
        json_object_set_new(doc, "bucket_ms", json_integer(REPORT_BUCKET_MS));
        return put(doc, "timeline", report_timeline(r, q), r, err, errlen);
    case REPORTDOC_LOCATIONS:
        return put_all(doc, "locations", report_locations(r, q, rows), r, err, errlen);
    case REPORTDOC_USER:
        if (p->user == NULL || p->user[0] == '\0')
            return FAIL(-2, err, errlen, "which user? (name=USER)");
        return put(doc, "detail", report_user_detail(r, q, p->user, top), r, err, errlen);
    case REPORTDOC_SEARCH:
        return search(doc, r, q, p, err, errlen);
    case REPORTDOC_SESSIONS: {
        json_t *s = report_sessions(r, q, p->limit ? p->limit : REPORTDOC_SESSION_ROWS);
        return put_all(doc, "sessions", s, r, err, errlen);
    }
    }
    return FAIL(-2, err, errlen, "no such report");
}

/* ---- the tables ---- */

#define COLS(...) (const char *const[]){__VA_ARGS__}, \
                  sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *)

static const reportdoc_table_t t_dashboard[] = {
    {"summary", "summary", NULL, true, COLS("requests", "bytes", "blocked", "users",
                                             "remote_requests", "local_requests", "from", "to",
                                             "location")},
    {"top_users", "top_users", NULL, false, COLS("user", "requests", "bytes", "blocked",
                                                  "remote")},
    {"top_categories", "top_categories", NULL, false, COLS("category", "requests", "bytes",
                                                            "blocked", "users")},
    {"top_blocked_hosts", "top_blocked_hosts", NULL, false, COLS("host", "blocked", "users",
                                                                  "category")},
};
static const reportdoc_table_t t_sites[] = {
    {"sites", "sites", NULL, false, COLS("host", "requests", "bytes", "blocked", "users")},
};
static const reportdoc_table_t t_categories[] = {
    {"categories", "categories", NULL, false, COLS("category", "requests", "bytes", "blocked",
                                                    "users")},
};
static const reportdoc_table_t t_blocked[] = {
    {"summary", "summary", NULL, true, COLS("requests", "blocked", "users", "hosts")},
    {"by_category", "by_category", NULL, false, COLS("category", "blocked", "users")},
    {"by_policy", "by_policy", NULL, false, COLS("access_policy", "rule", "blocked", "users")},
    {"by_user", "by_user", NULL, false, COLS("user", "blocked", "remote", "hosts")},
};
static const reportdoc_table_t t_timeline[] = {
    {"timeline", "timeline", NULL, false, COLS("time", "requests", "bytes", "blocked",
                                                "remote_requests", "local_requests",
                                                "remote_bytes", "local_bytes",
                                                "remote_blocked", "local_blocked")},
};
static const reportdoc_table_t t_locations[] = {
    {"locations", "locations", NULL, false, COLS("location", "requests", "bytes", "blocked",
                                                  "users", "requests_share", "bytes_share",
                                                  "blocked_share")},
    {"remote_domains", "remote_domains", NULL, false, COLS("host", "requests", "bytes",
                                                            "blocked", "users")},
};
static const reportdoc_table_t t_user[] = {
    {"summary", "detail", NULL, true, COLS("user", "requests", "bytes", "blocked",
                                            "first_seen", "last_seen")},
    {"hosts", "detail", "hosts", false, COLS("host", "requests", "bytes", "blocked")},
    {"categories", "detail", "categories", false, COLS("category", "requests", "bytes",
                                                        "blocked")},
    {"blocks", "detail", "blocks", false, COLS("time", "host", "url", "category", "rule",
                                                "decision_tag")},
};
static const reportdoc_table_t t_search[] = {
    {"transactions", "result", "rows", false,
     COLS("id", "time", "elapsed", "client", "user", "remote", "method", "host", "url",
          "status", "bytes", "result", "decision", "decision_tag", "category", "rule",
          "access_policy", "identity_profile", "headend")},
};
#define SESSION_COLS COLS("user", "domain", "vpn_addr", "public_addr", "type", "headend", \
                          "start", "end", "end_reason")
static const reportdoc_table_t t_sessions[] = {
    {"connected", "connected", NULL, false, COLS("ip", "name", "type", "domain", "groups",
                                                  "headend", "sid", "started", "client_ip",
                                                  "tunnel", "stale")},
    {"open", "open", NULL, false, SESSION_COLS},
    {"recent", "recent", NULL, false, SESSION_COLS},
};

#define TABLES(t) {t, sizeof(t) / sizeof(t[0])}
static const struct {
    const reportdoc_table_t *t;
    size_t n;
} catalog[REPORTDOC_KINDS] = {
    [REPORTDOC_DASHBOARD] = TABLES(t_dashboard),
    [REPORTDOC_SITES] = TABLES(t_sites),
    [REPORTDOC_CATEGORIES] = TABLES(t_categories),
    [REPORTDOC_BLOCKED] = TABLES(t_blocked),
    [REPORTDOC_TIMELINE] = TABLES(t_timeline),
    [REPORTDOC_LOCATIONS] = TABLES(t_locations),
    [REPORTDOC_USER] = TABLES(t_user),
    [REPORTDOC_SEARCH] = TABLES(t_search),
    [REPORTDOC_SESSIONS] = TABLES(t_sessions),
};

const reportdoc_table_t *
reportdoc_tables(enum reportdoc_kind k, size_t *n)
{
    if ((unsigned)k >= REPORTDOC_KINDS) {
        *n = 0;
        return NULL;
    }
    *n = catalog[k].n;
    return catalog[k].t;
}

/* The rows of table t in doc: a new reference, or NULL. */
static json_t *
table_rows(const json_t *doc, const reportdoc_table_t *t)
{
    json_t *v = json_object_get(doc, t->member), *row, *rows;
    const char *key;
    json_t *m;

    if (t->sub != NULL)
        v = json_object_get(v, t->sub);
    if (!t->one_row)
        return json_is_array(v) ? json_incref(v) : NULL;
    if (!json_is_object(v))
        return NULL;
    row = json_object();
    json_object_foreach(v, key, m)
        if (!json_is_array(m) && !json_is_object(m))
            json_object_set(row, key, m);
    rows = json_array();
    json_array_append_new(rows, row);
    return rows;
}

int
reportdoc_csv(FILE *out, const json_t *doc, enum reportdoc_kind k, const char *table,
              char *err, size_t errlen)
{
    size_t n, used = 0;
    const reportdoc_table_t *t = reportdoc_tables(k, &n), *pick = NULL;
    char names[256] = "";
    json_t *rows;
    int rc;

    for (size_t i = 0; i < n && pick == NULL; i++)
        if (table == NULL || strcmp(t[i].name, table) == 0)
            pick = &t[i];
    if (pick == NULL) {
        for (size_t i = 0; i < n && used < sizeof(names); i++)
            used += (size_t)snprintf(names + used, sizeof(names) - used, "%s%s",
                                     i ? ", " : "", t[i].name);
        return FAIL(-2, err, errlen, "the %s report has no table '%.64s' (its tables: %s)",
                    reportdoc_name(k), table, names);
    }
    rows = table_rows(doc, pick);
    if (rows == NULL)
        return FAIL(-1, err, errlen, "the %s document has no table %s", reportdoc_name(k),
                    pick->name);
    rc = csv_write(out, pick->cols, pick->ncols, rows, err, errlen);
    json_decref(rows);
    return rc;
}
