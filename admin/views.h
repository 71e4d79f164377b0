/*
 * admin/views.h: the document behind every admin page, as JSON: the same
 * object is served under /api/... and rendered to HTML by admin/pages.c, so
 * the page and the API cannot disagree. The reports' members come from
 * db/reportdoc.h (the store's file, read-only; the same documents `musctl
 * report` prints, and the tables their CSV is written from); the live state (headend sessions, the
 * identity map, the store's counters, the policy trace) from
 * proxy/status.h's status_request, the very documents `musctl status`,
 * `musctl map` and `musctl trace` print. Nothing here writes, and nothing
 * knows HTTP.
 *
 * Threads: the caller's thread must be a registered reader of the identity
 * map (status.h) and own the report_t.
 */
#ifndef MUS_ADMIN_VIEWS_H
#define MUS_ADMIN_VIEWS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../db/report.h"
#include "../db/reportdoc.h"
#include "../proxy/status.h"
#include "query.h"

#define VIEWS_CONNECTED_MAX 1000   /* map entries listed as connected (all are counted) */
#define VIEWS_MAP_ROWS      50     /* identity map entries a page */
#define VIEWS_ERR_MAX      640

enum view_page {
    VIEW_DASHBOARD = 0,
    VIEW_SESSIONS,
    VIEW_USER,
    VIEW_SEARCH,
    VIEW_HEADENDS,
    VIEW_STORE,
    VIEW_TRACE,
    VIEW_SITES,
    VIEW_CATEGORIES,
    VIEW_BLOCKED,
    VIEW_TIMELINE,
    VIEW_LOCATIONS,
    VIEW_MAP,          /* the identity map, searched and paged (views_ops.c) */
    VIEW_ARCHIVE,      /* the scheduled reports' files (views_ops.c) */
};
#define VIEW_PAGES 14
const char *view_page_name(enum view_page p);   /* "dashboard", "sessions", ... */

typedef struct view_env {
    report_t *report;            /* NULL: the store cannot be read (report_err says why) */
    const char *report_err;
    const status_sources_t *src;
    const char *store_path;      /* "" if the store is off */
    int64_t now_ms;              /* wall clock */
} view_env_t;

/* The [from, to) of a range ending now (today: since local midnight). */
void views_range(enum query_range r, int64_t now_ms, int64_t *from_ms, int64_t *to_ms);

/* Whether page p is a report (its document holds reportdoc.h's tables of
 * kind *k, which ?format=csv writes). */
bool views_report_kind(enum view_page p, enum reportdoc_kind *k);

/* Builds page p's document for the parameters v. run_trace: the form was
 * submitted (POST), so the trace runs, or the headends page tests
 * v->headend's connection (status.h's "test NAME"). NULL with *http_status (400 a
 * missing or wrong parameter, 503 the store cannot be read, 500 otherwise) and a
 * message in err. Every document has "page", and the range pages have
 * "range", "location", "from" and "to". */
json_t *views_build(enum view_page p, const view_env_t *env, const query_view_t *v,
                    bool run_trace, int *http_status, char *err, size_t errlen);

/* ---- views_ops.c: the pages over the live state and the archive ---- */

/* The identity map (status "map"): entries whose user contains v->search
 * (any case) or whose address starts with it, VIEWS_MAP_ROWS a page:
 * {"page", "q", "page_number", "page_rows", "pages", "total", "matched",
 * "entries"}. */
json_t *views_map(const view_env_t *env, const query_view_t *v, char *err, size_t errlen);
/* The scheduled reports of reports.archive (db/repsched.h's list):
 * {"page", "dir", "files", "total"}. */
json_t *views_archive(const view_env_t *env, char *err, size_t errlen);
/* The headend connection test's answer, or NULL with err. */
json_t *views_headend_test(const view_env_t *env, const char *name, char *err, size_t errlen);
/* The archive directory in force ("" = none), into out. */
void views_archive_dir(const view_env_t *env, char *out, size_t cap);

#endif
