/*
 * db/reportdoc.h: the report documents: for each report (dashboard, web
 * sites, URL categories, blocked, overview over time, user location, a
 * user's page, transaction search, session history) the JSON members its
 * page, its /api/ route and `musctl report` all show, built from db/report.h
 * in one place; and the catalog of their tables (which member, which
 * columns), from which csv.h writes any table of a document. The admin UI
 * (admin/views.c) puts its "page" and "range" members first, musctl its
 * "report" member, then both call reportdoc_fill; so the three outputs
 * cannot disagree. No HTTP, no status of the running proxy (the sessions
 * page adds the identity map itself), no files beyond the report's own.
 */
#ifndef MUS_DB_REPORTDOC_H
#define MUS_DB_REPORTDOC_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "csv.h"
#include "report.h"

/* How the documents are dumped as JSON (the API and musctl). */
#define REPORTDOC_JSON_FLAGS  (JSON_INDENT(1) | JSON_PRESERVE_ORDER | \
                               JSON_REAL_PRECISION(CSV_REAL_DIGITS))

#define REPORTDOC_TOP_ROWS      10     /* rows of the dashboard's and a user's tables */
#define REPORTDOC_PAGE_ROWS     50     /* transaction search rows per page */
#define REPORTDOC_SESSION_ROWS  100    /* sessions listed */
#define REPORTDOC_REPORT_ROWS   50     /* rows of the sites, categories, blocked, location tables */
#define REPORTDOC_ERR_MAX       640

enum reportdoc_kind {
    REPORTDOC_DASHBOARD = 0,
    REPORTDOC_SITES,
    REPORTDOC_CATEGORIES,
    REPORTDOC_BLOCKED,
    REPORTDOC_TIMELINE,
    REPORTDOC_LOCATIONS,
    REPORTDOC_USER,
    REPORTDOC_SEARCH,
    REPORTDOC_SESSIONS,
};
#define REPORTDOC_KINDS 9

/* "dashboard", "sites", "categories", "blocked", "timeline", "locations",
 * "user", "search", "sessions". */
const char *reportdoc_name(enum reportdoc_kind k);
/* The kind named name; false if none. */
bool reportdoc_lookup(const char *name, enum reportdoc_kind *out);
/* One line saying what the report shows (musctl report --help). */
const char *reportdoc_summary(enum reportdoc_kind k);

typedef struct reportdoc_params {
    enum report_order by;              /* sites, categories */
    unsigned limit;                    /* rows of each table; 0 = the kind's default */
    const char *user;                  /* user: whose page (required) */
    report_filter_t filter;            /* search */
    unsigned page;                     /* search: 1.. (0 = 1) */
} reportdoc_params_t;

/* Adds kind k's members to doc (an object the caller has started) for the
 * range q: dashboard "summary", "top_users", "top_categories",
 * "top_blocked_hosts"; sites "by", "sites"; categories "by", "categories";
 * blocked "summary", "by_category", "by_policy", "by_user"; timeline
 * "bucket_ms", "timeline"; locations "locations", "remote_domains"; user
 * "detail"; search "filters", "page_number", "page_rows", "result";
 * sessions "open", "recent". The members are report.h's answers
 * unchanged. 0; -2 with a message when the parameters are wrong (a user
 * page without a user); -1 with the report's error. */
int reportdoc_fill(json_t *doc, report_t *r, enum reportdoc_kind k, const report_range_t *q,
                   const reportdoc_params_t *p, char *err, size_t errlen);

/* A table of a document: doc[member] (or doc[member][sub]), an array of
 * rows, or with one_row an object whose scalar members are the one row. */
typedef struct reportdoc_table {
    const char *name;                  /* what ?table= and musctl --table say */
    const char *member, *sub;
    bool one_row;
    const char *const *cols;
    size_t ncols;
} reportdoc_table_t;

/* The tables of kind k, the first being the one a CSV gives by default;
 * *n of them. The sessions kind's "connected" is the identity map the UI
 * adds (proxy/status.h's map entries). */
const reportdoc_table_t *reportdoc_tables(enum reportdoc_kind k, size_t *n);

/* Writes table (NULL = the kind's first) of doc as CSV (csv.h). 0; -2 with
 * a message naming the tables when there is no such table; -1 with a
 * message when the document does not hold it as the catalog says. */
int reportdoc_csv(FILE *out, const json_t *doc, enum reportdoc_kind k, const char *table,
                  char *err, size_t errlen);

#endif
