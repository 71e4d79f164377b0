/*
 * admin/routes.c: a request that has passed the login (see admin_int.h):
 * its route and method, the checks of a POST (its origin and, from a
 * session, its CSRF token), the parameters
 * (admin/query.h), the document (admin/views.h), then JSON, HTML
 * (admin/pages.h) or, with format=csv, one table of a report as CSV
 * (db/reportdoc.h); a scheduled report's file (archive.c); and /metrics.
 * It does not log anyone in.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../db/reportdoc.h"
#include "../proxy/metrics.h"
#include "admin_int.h"
#include "pages.h"
#include "views.h"

/* The routes: the page, and whether POST (only) / GET (only) apply. */
static const struct route {
    const char *path;
    enum view_page page;
    bool api;
    bool get, post;
} routes[] = {
    {"/", VIEW_DASHBOARD, false, true, false},
    {"/sessions", VIEW_SESSIONS, false, true, false},
    {"/user", VIEW_USER, false, true, false},
    {"/search", VIEW_SEARCH, false, true, false},
    {"/headends", VIEW_HEADENDS, false, true, true},
    {"/map", VIEW_MAP, false, true, false},
    {"/archive", VIEW_ARCHIVE, false, true, false},
    {"/store", VIEW_STORE, false, true, false},
    {"/trace", VIEW_TRACE, false, true, true},
    {"/sites", VIEW_SITES, false, true, false},
    {"/categories", VIEW_CATEGORIES, false, true, false},
    {"/blocked", VIEW_BLOCKED, false, true, false},
    {"/timeline", VIEW_TIMELINE, false, true, false},
    {"/locations", VIEW_LOCATIONS, false, true, false},
    {"/api/dashboard", VIEW_DASHBOARD, true, true, false},
    {"/api/sessions", VIEW_SESSIONS, true, true, false},
    {"/api/user", VIEW_USER, true, true, false},
    {"/api/search", VIEW_SEARCH, true, true, false},
    {"/api/headends", VIEW_HEADENDS, true, true, true},
    {"/api/map", VIEW_MAP, true, true, false},
    {"/api/archive", VIEW_ARCHIVE, true, true, false},
    {"/api/store", VIEW_STORE, true, true, false},
    {"/api/trace", VIEW_TRACE, true, false, true},
    {"/api/sites", VIEW_SITES, true, true, false},
    {"/api/categories", VIEW_CATEGORIES, true, true, false},
    {"/api/blocked", VIEW_BLOCKED, true, true, false},
    {"/api/timeline", VIEW_TIMELINE, true, true, false},
    {"/api/locations", VIEW_LOCATIONS, true, true, false},
};

/* ---- CSV ---- */

/* A Unix-ms time as 20261204T1300Z, for file names. */
static void
utc_stamp(json_int_t ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y%m%dT%H%MZ", &tm);
}

/* One table of a report page's document as a CSV download: 200, 400 for a
 * table the page does not have, 500 if the document does not hold it. */
static enum MHD_Result
send_csv(struct MHD_Connection *c, bool api, const json_t *doc, enum reportdoc_kind k,
         const char *table, const who_t *user)
{
    char err[REPORTDOC_ERR_MAX], from[32], to[32], disp[256], *body = NULL;
    size_t len = 0, n;
    const reportdoc_table_t *t = reportdoc_tables(k, &n);
    FILE *f = open_memstream(&body, &len);
    int rc;

    if (f == NULL)
        return MHD_NO;
    rc = reportdoc_csv(f, doc, k, table, err, sizeof(err));
    fclose(f);
    if (rc < 0) {
        free(body);
        return admin_send_error(c, api, rc == -2 ? 400 : 500, err, user, NULL, NULL);
    }
    utc_stamp(json_integer_value(json_object_get(doc, "from")), from, sizeof(from));
    utc_stamp(json_integer_value(json_object_get(doc, "to")), to, sizeof(to));
    /* the names are ours ([a-z_]), never the request's bytes */
    snprintf(disp, sizeof(disp), "attachment; filename=\"musproxy-%s-%s-%s-%s.csv\"",
             reportdoc_name(k), table != NULL ? table : t[0].name, from, to);
    return admin_send_body(c, 200, body, len, "text/csv; charset=utf-8", "Content-Disposition", disp);
}

/* The request's parameters again, without format and table, percent-encoded:
 * what a page's links to its CSV tables start from. */
static void
self_query(const query_t *q, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    out[0] = '\0';
    for (size_t i = 0; i < q->n; i++) {
        const char *k = q->p[i].key;
        if (strcmp(k, "format") == 0 || strcmp(k, "table") == 0 || q->p[i].value_len == 0)
            continue;
        if (o + strlen(k) + 3 * q->p[i].value_len + 3 >= cap)
            return;                                /* cannot happen: input is bounded */
        o += (size_t)snprintf(out + o, cap - o, "%s%s=", o ? "&" : "", k);
        for (const unsigned char *v = (const unsigned char *)q->p[i].value; *v; v++) {
            if ((*v >= 'a' && *v <= 'z') || (*v >= 'A' && *v <= 'Z') ||
                (*v >= '0' && *v <= '9') || strchr("-._~", *v) != NULL) {
                out[o++] = (char)*v;
            } else {
                out[o++] = '%';
                out[o++] = hex[*v >> 4];
                out[o++] = hex[*v & 15];
            }
        }
        out[o] = '\0';
    }
}

static void
ensure_report(admin_t *a)
{
    if (a->report != NULL)
        return;
    if (a->store_path[0] == '\0') {
        snprintf(a->report_err, sizeof(a->report_err), "no store is configured (store.path)");
        return;
    }
    a->report = report_open_store(&(report_store_t){.postgresql = a->store_pg,
                                                    .path = a->store_path,
                                                    .conninfo = a->store_conninfo,
                                                    .password_file = a->store_passfile},
                                  a->report_err, sizeof(a->report_err));
}

/* GET /metrics: the same exposition text as a metrics listener, behind the login. */
static enum MHD_Result
serve_metrics(admin_t *a, struct MHD_Connection *c, bool get, const who_t *user)
{
    size_t len = 0;
    char *text;

    if (!get)
        return admin_send_error(c, false, 405, "method not allowed here", user, "Allow", "GET, HEAD");
    text = status_metrics_text(&a->src, &len);
    if (text == NULL)
        return admin_send_error(c, false, 500, "the metrics could not be written", user, NULL, NULL);
    return admin_send_body(c, 200, text, len, METRICS_CONTENT_TYPE, NULL, NULL);
}

enum MHD_Result
admin_route(admin_t *a, struct MHD_Connection *c, req_t *rq, const char *method, const who_t *who,
            int64_t now)
{
    char err[VIEWS_ERR_MAX];
    const struct route *rt = NULL;
    const char *qs;
    bool post = strcmp(method, "POST") == 0, get = !post && (strcmp(method, "GET") == 0 ||
                                                             strcmp(method, "HEAD") == 0);
    bool api = strncmp(rq->uri, "/api/", 5) == 0;
    size_t plen = strcspn(rq->uri, "?#");
    query_t *q;
    query_view_t v;
    view_env_t env;
    json_t *doc;
    int status;
    enum reportdoc_kind kind = REPORTDOC_DASHBOARD;
    enum MHD_Result ok;

    qs = rq->uri + plen;
    if (plen == 8 && strncmp(rq->uri, "/metrics", 8) == 0)
        return serve_metrics(a, c, get, who);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strlen(routes[i].path) == plen && strncmp(routes[i].path, rq->uri, plen) == 0)
            rt = &routes[i];
    if (rt == NULL)
        return admin_send_error(c, api, 404, "no such page", who, NULL, NULL);
    if ((post && !rt->post) || (get && !rt->get) || (!post && !get))
        return admin_send_error(c, api, 405, "method not allowed here", who, "Allow",
                                rt->post && rt->get ? "GET, HEAD, POST"
                                : rt->post          ? "POST"
                                                    : "GET, HEAD");
    q = malloc(sizeof(*q));
    if (q == NULL)
        return MHD_NO;
    if (post) {
        if (admin_post_form(a, c, rq, api, who, q, &ok) == NULL)
            goto done;
        if (!admin_csrf_ok(who, query_take(q, "csrf"))) {
            ok = admin_send_error(c, api, 403, "missing or wrong CSRF token (reload the page)",
                                  who, NULL, NULL);
            goto done;
        }
    } else if (query_parse(qs, strcspn(qs, "#"), q, err, sizeof(err)) < 0) {
        ok = admin_send_error(c, api, 400, err, who, NULL, NULL);
        goto done;
    }
    if (query_view(q, &v, err, sizeof(err)) < 0) {
        ok = admin_send_error(c, api, 400, err, who, NULL, NULL);
        goto done;
    }
    if (v.csv && !views_report_kind(rt->page, &kind)) {
        ok = admin_send_error(c, api, 400, "this page has no tables to export (format=csv)", who,
                              NULL, NULL);
        goto done;
    }
    if (rt->page == VIEW_ARCHIVE && v.file != NULL) {
        env = (view_env_t){.src = &a->src, .now_ms = now};
        ok = admin_archive_download(c, api, &env, v.file, who);
        goto done;
    }
    ensure_report(a);
    env = (view_env_t){
        .report = a->report, .report_err = a->report_err, .src = &a->src,
        .store_path = a->store_where, .now_ms = now,
    };
    doc = views_build(rt->page, &env, &v, post, &status, err, sizeof(err));
    if (doc == NULL) {
        if (status == 500 && a->report != NULL) {
            /* a report connection in trouble is opened afresh next time */
            report_close(a->report);
            a->report = NULL;
        }
        ok = admin_send_error(c, api, (unsigned)status, err, who, NULL, NULL);
        goto done;
    }
    if (v.csv) {
        ok = send_csv(c, api, doc, kind, v.table, who);
    } else if (rt->api) {
        ok = admin_send_json(c, 200, doc, NULL, NULL);
    } else {
        size_t len = 0;
        char *html, *self = malloc(3 * QUERY_INPUT_MAX + 1);
        if (self != NULL)
            self_query(q, self, 3 * QUERY_INPUT_MAX + 1);
        html = self ? admin_page_render(doc, who->user, who->session ? who->session->csrf : NULL,
                                        self, &len)
                    : NULL;
        free(self);
        ok = html ? admin_send_body(c, 200, html, len, "text/html; charset=utf-8", NULL, NULL)
                  : admin_send_error(c, false, 500, "page too large", who, NULL, NULL);
    }
    json_decref(doc);
done:
    free(q);
    return ok;
}
