/*
 * admin/views.c: the pages' documents (see views.h). Each builder asks the
 * reports or status_request and wraps the answers, unchanged, with the
 * parameters they were asked for; the trace request is built with jansson
 * (never by pasting strings) and sent as "trace {json}".
 */
#include "views.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const page_names[VIEW_PAGES] = {
    "dashboard", "sessions", "user", "search", "headends", "store", "trace",
    "sites", "categories", "blocked", "timeline", "locations", "map", "archive",
};

/* The pages that are reports: their members come from db/reportdoc.h. */
static const struct {
    enum view_page page;
    enum reportdoc_kind kind;
} report_pages[] = {
    {VIEW_DASHBOARD, REPORTDOC_DASHBOARD}, {VIEW_SESSIONS, REPORTDOC_SESSIONS},
    {VIEW_USER, REPORTDOC_USER}, {VIEW_SEARCH, REPORTDOC_SEARCH},
    {VIEW_SITES, REPORTDOC_SITES}, {VIEW_CATEGORIES, REPORTDOC_CATEGORIES},
    {VIEW_BLOCKED, REPORTDOC_BLOCKED}, {VIEW_TIMELINE, REPORTDOC_TIMELINE},
    {VIEW_LOCATIONS, REPORTDOC_LOCATIONS},
};

bool
views_report_kind(enum view_page p, enum reportdoc_kind *k)
{
    for (size_t i = 0; i < sizeof(report_pages) / sizeof(report_pages[0]); i++)
        if (report_pages[i].page == p) {
            *k = report_pages[i].kind;
            return true;
        }
    return false;
}

const char *
view_page_name(enum view_page p)
{
    return (unsigned)p < VIEW_PAGES ? page_names[p] : "dashboard";
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void
views_range(enum query_range r, int64_t now_ms, int64_t *from_ms, int64_t *to_ms)
{
    static const int64_t day = 86400000;
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;

    *to_ms = now_ms + 1;
    switch (r) {
    case QUERY_RANGE_TODAY:
        localtime_r(&t, &tm);
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        tm.tm_isdst = -1;
        *from_ms = (int64_t)mktime(&tm) * 1000;
        break;
    case QUERY_RANGE_7D: *from_ms = now_ms - 7 * day; break;
    case QUERY_RANGE_30D: *from_ms = now_ms - 30 * day; break;
    case QUERY_RANGE_24H:
    default: *from_ms = now_ms - day; break;
    }
}

static enum report_location
report_loc(enum query_loc l)
{
    return l == QUERY_LOC_REMOTE ? REPORT_LOC_REMOTE
         : l == QUERY_LOC_LOCAL ? REPORT_LOC_LOCAL : REPORT_LOC_ALL;
}

/* {"page", "range", "location", "from", "to"} and the report range. */
static json_t *
doc_new(enum view_page p, const view_env_t *env, const query_view_t *v, report_range_t *q)
{
    views_range(v->range, env->now_ms, &q->from_ms, &q->to_ms);
    q->loc = report_loc(v->loc);
    return json_pack("{s:s, s:s, s:s, s:I, s:I}", "page", view_page_name(p), "range",
                     query_range_str(v->range), "location", query_loc_str(v->loc), "from",
                     (json_int_t)q->from_ms, "to", (json_int_t)q->to_ms);
}

static const char *
nz(const char *s)
{
    return s != NULL ? s : "";
}

static enum report_order
report_order(enum query_order o)
{
    return o == QUERY_BY_BYTES ? REPORT_BY_BYTES
         : o == QUERY_BY_BLOCKED ? REPORT_BY_BLOCKED : REPORT_BY_REQUESTS;
}

/* A report page: the frame, then db/reportdoc.h's members for kind k. */
static json_t *
report_page(enum view_page p, enum reportdoc_kind k, const view_env_t *env,
            const query_view_t *v, int *status, char *err, size_t errlen)
{
    report_range_t q;
    reportdoc_params_t rp = {
        .by = report_order(v->by), .limit = v->limit, .user = v->user, .page = v->page,
        .filter = {.user = v->user, .host = v->host, .decision = v->decision,
                   .category = v->category, .client = v->client},
    };
    json_t *doc = doc_new(p, env, v, &q);
    int rc;

    if (doc == NULL)
        return NULL;
    rc = reportdoc_fill(doc, env->report, k, &q, &rp, err, errlen);
    if (rc < 0) {
        if (rc == -2)
            *status = 400;
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static json_t *
sessions(const view_env_t *env, const query_view_t *v, char *err, size_t errlen)
{
    report_range_t q;
    json_t *doc = doc_new(VIEW_SESSIONS, env, v, &q);
    json_t *map = status_request(env->src, "map"), *entries;

    if (doc == NULL || map == NULL) {
        json_decref(doc);
        json_decref(map);
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    entries = json_object_get(map, "entries");
    if (!json_is_array(entries))
        entries = NULL;
    json_object_set_new(doc, "connected_total",
                        json_integer(entries ? (json_int_t)json_array_size(entries) : 0));
    while (entries != NULL && json_array_size(entries) > VIEWS_CONNECTED_MAX)
        json_array_remove(entries, json_array_size(entries) - 1);
    json_object_set_new(doc, "connected", entries ? json_incref(entries) : json_array());
    json_decref(map);
    if (env->report == NULL) {
        /* the live part still answers */
        json_object_set_new(doc, "open", json_array());
        json_object_set_new(doc, "recent", json_array());
        json_object_set_new(doc, "store_error", json_string(nz(env->report_err)));
    } else if (reportdoc_fill(doc, env->report, REPORTDOC_SESSIONS, &q,
                              &(reportdoc_params_t){.limit = v->limit}, err, errlen) < 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* The "status" document, or NULL. */
static json_t *
status_doc(const view_env_t *env, char *err, size_t errlen)
{
    json_t *st = status_request(env->src, "status");

    if (st == NULL || json_object_get(st, "error") != NULL) {
        seterr(err, errlen, "status: %s",
               st ? nz(json_string_value(json_object_get(st, "error"))) : "out of memory");
        json_decref(st);
        return NULL;
    }
    return st;
}

/* The headend sessions; with test, also that headend's connection test. */
static json_t *
headends(const view_env_t *env, const char *test, int *status, char *err, size_t errlen)
{
    json_t *st, *doc, *t = NULL;

    if (test != NULL && (t = views_headend_test(env, test, err, errlen)) == NULL)
        return NULL;
    if (t != NULL && json_object_get(t, "ok") == NULL) {
        *status = 400;
        seterr(err, errlen, "%s: %s", test, nz(json_string_value(json_object_get(t, "error"))));
        json_decref(t);
        return NULL;
    }
    st = status_doc(env, err, errlen);
    if (st == NULL) {
        json_decref(t);
        return NULL;
    }
    doc = json_pack("{s:s, s:O, s:O, s:O, s:o}", "page", "headends", "headends",
                    json_object_get(st, "headends"), "map", json_object_get(st, "map"),
                    "radius", json_object_get(st, "radius") ? json_object_get(st, "radius")
                                                           : json_null(),
                    "test", t != NULL ? t : json_null());
    json_decref(st);
    return doc;
}

static json_t *
store(const view_env_t *env, char *err, size_t errlen)
{
    json_t *st = status_doc(env, err, errlen), *doc, *s;

    if (st == NULL)
        return NULL;
    s = json_object_get(st, "store");
    doc = json_pack("{s:s, s:s, s:O}", "page", "store", "path", nz(env->store_path), "store",
                    s != NULL ? s : json_null());
    json_decref(st);
    return doc;
}

static json_t *
trace(const view_env_t *env, const query_view_t *v, bool run, int *status, char *err,
      size_t errlen)
{
    json_t *req, *doc, *answer = json_null();
    char *text, line[STATUS_REQUEST_MAX];
    int n;

    req = json_pack("{s:s, s:s}", "ip", nz(v->ip), "url", nz(v->url));
    if (req == NULL) {
        seterr(err, errlen, "out of memory");
        return NULL;
    }
    if (v->method != NULL)
        json_object_set_new(req, "method", json_string(v->method));
    if (run) {
        if (v->ip == NULL || v->url == NULL) {
            json_decref(req);
            *status = 400;
            seterr(err, errlen, "the trace needs ip and url");
            return NULL;
        }
        text = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
        n = text ? snprintf(line, sizeof(line), "trace %s", text) : -1;
        free(text);
        if (n < 0 || (size_t)n >= sizeof(line)) {
            json_decref(req);
            *status = 400;
            seterr(err, errlen, "the trace request is too long");
            return NULL;
        }
        answer = status_request(env->src, line);
        if (answer == NULL)
            answer = json_pack("{s:s}", "error", "out of memory");
    }
    doc = json_pack("{s:s, s:o, s:o}", "page", "trace", "request", req, "answer", answer);
    return doc;
}

json_t *
views_build(enum view_page p, const view_env_t *env, const query_view_t *v, bool run_trace,
            int *http_status, char *err, size_t errlen)
{
    json_t *doc = NULL;
    enum reportdoc_kind k = REPORTDOC_DASHBOARD;
    bool report = views_report_kind(p, &k);

    *http_status = 500;
    err[0] = '\0';
    if (report && p != VIEW_SESSIONS && env->report == NULL) {
        *http_status = 503;
        seterr(err, errlen, "the transaction store cannot be read: %s", nz(env->report_err));
        return NULL;
    }
    switch (p) {
    case VIEW_SESSIONS: doc = sessions(env, v, err, errlen); break;
    case VIEW_HEADENDS:
        if (run_trace && v->headend == NULL) {
            *http_status = 400;
            seterr(err, errlen, "which headend? (headend=NAME)");
            return NULL;
        }
        doc = headends(env, run_trace ? v->headend : NULL, http_status, err, errlen);
        break;
    case VIEW_MAP: doc = views_map(env, v, err, errlen); break;
    case VIEW_ARCHIVE: doc = views_archive(env, err, errlen); break;
    case VIEW_STORE: doc = store(env, err, errlen); break;
    case VIEW_TRACE: doc = trace(env, v, run_trace, http_status, err, errlen); break;
    default:
        if (report)
            doc = report_page(p, k, env, v, http_status, err, errlen);
        break;
    }
    if (doc == NULL && err[0] == '\0')
        seterr(err, errlen, "out of memory");
    if (doc != NULL)
        *http_status = 200;
    return doc;
}
