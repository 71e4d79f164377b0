/*
 * admin/admin.c: the admin UI's daemon (see admin.h): the listening socket,
 * libmicrohttpd in external epoll mode driven by our own thread, and each
 * request's way through: Host check, login, route and method, the CSRF
 * check of the POST, the parameters (admin/query.h), the document
 * (admin/views.h), then JSON, HTML (admin/pages.h) or, with format=csv, one
 * table of a report as CSV (db/reportdoc.h), with the security headers. The request target is taken raw from libmicrohttpd's URI
 * callback so the query string is parsed by our own code only.
 */
#include "admin.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../db/report.h"
#include "../db/reportdoc.h"
#include "../proxy/metrics.h"
#include "auth.h"
#include "pages.h"
#include "query.h"
#include "views.h"

#define SECURITY_CSP "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; " \
                     "frame-ancestors 'none'; base-uri 'none'"

struct admin {
    struct MHD_Daemon *d;
    pthread_t thread;
    int wake_fd;                   /* eventfd: admin_stop wakes the loop */
    atomic_bool stop;
    status_sources_t src;
    mus_map_reader_t *reader;
    auth_t *auth;
    report_t *report;              /* opened on first use, again after a failure */
    char report_err[REPORT_ERR_MAX];
    char store_path[4096];
    char listen[64];
    bool loopback;                 /* listening on loopback: Host must name it */
    unsigned port;
};

/* One request: what the URI callback saw, the body as it arrives. */
typedef struct req {
    bool started;                  /* the handler ran once (headers complete) */
    bool too_long;                 /* target over ADMIN_URI_MAX */
    bool body_too_big;
    size_t body_len;
    char body[QUERY_INPUT_MAX];
    char uri[ADMIN_URI_MAX + 1];
} req_t;

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
    {"/headends", VIEW_HEADENDS, false, true, false},
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
    {"/api/headends", VIEW_HEADENDS, true, true, false},
    {"/api/store", VIEW_STORE, true, true, false},
    {"/api/trace", VIEW_TRACE, true, false, true},
    {"/api/sites", VIEW_SITES, true, true, false},
    {"/api/categories", VIEW_CATEGORIES, true, true, false},
    {"/api/blocked", VIEW_BLOCKED, true, true, false},
    {"/api/timeline", VIEW_TIMELINE, true, true, false},
    {"/api/locations", VIEW_LOCATIONS, true, true, false},
};

/* ---- responses ---- */

/* Queues body (malloc'd, taken over; NULL = empty) with the security headers. */
static enum MHD_Result
send_body(struct MHD_Connection *c, unsigned status, char *body, size_t len, const char *ctype,
          const char *hname, const char *hvalue)
{
    struct MHD_Response *r;
    enum MHD_Result ok;

    r = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (r == NULL) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Content-Security-Policy", SECURITY_CSP);
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cross-Origin-Resource-Policy", "same-origin");
    if (hname != NULL)
        MHD_add_response_header(r, hname, hvalue);
    ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result
send_json(struct MHD_Connection *c, unsigned status, const json_t *doc, const char *hname,
          const char *hvalue)
{
    char *text = json_dumps(doc, REPORTDOC_JSON_FLAGS);
    size_t n = text ? strlen(text) : 0;
    char *body = text ? realloc(text, n + 2) : NULL;

    if (body == NULL) {
        free(text);
        return MHD_NO;
    }
    body[n] = '\n';
    body[n + 1] = '\0';
    return send_body(c, status, body, n + 1, "application/json; charset=utf-8", hname, hvalue);
}

/* An error as JSON for the API, as a page otherwise. */
static enum MHD_Result
send_error(struct MHD_Connection *c, bool api, unsigned status, const char *msg,
           const char *user, const char *hname, const char *hvalue)
{
    if (api) {
        json_t *j = json_pack("{s:s, s:i}", "error", msg, "status", (int)status);
        enum MHD_Result ok = j ? send_json(c, status, j, hname, hvalue) : MHD_NO;
        json_decref(j);
        return ok;
    } else {
        size_t len = 0;
        char *html = admin_page_error((int)status, msg, user, &len);
        if (html == NULL)
            return MHD_NO;
        return send_body(c, status, html, len, "text/html; charset=utf-8", hname, hvalue);
    }
}

/* ---- checks ---- */

static const char *
header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* On a loopback listener the Host must name a loopback address (or
 * localhost) and our port: a page from elsewhere whose name was made to
 * resolve to 127.0.0.1 (DNS rebinding) cannot talk to the UI. */
static bool
host_ok(const admin_t *a, const char *host)
{
    char name[256];
    const char *colon, *port_s = NULL;
    size_t n;
    unsigned char b[16];

    if (!a->loopback)
        return true;
    if (host == NULL || strlen(host) >= sizeof(name))
        return false;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':'))
            return false;
        n = (size_t)(close - host - 1);
        memcpy(name, host + 1, n);
        name[n] = '\0';
        port_s = close[1] == ':' ? close + 2 : NULL;
        if (inet_pton(AF_INET6, name, b) != 1 || !IN6_IS_ADDR_LOOPBACK((struct in6_addr *)b))
            return false;
    } else {
        colon = strchr(host, ':');
        n = colon ? (size_t)(colon - host) : strlen(host);
        memcpy(name, host, n);
        name[n] = '\0';
        port_s = colon ? colon + 1 : NULL;
        if (strcasecmp(name, "localhost") != 0 &&
            (inet_pton(AF_INET, name, b) != 1 || b[0] != 127))
            return false;
    }
    if (port_s == NULL)
        return a->port == 80;
    return strspn(port_s, "0123456789") == strlen(port_s) && strlen(port_s) <= 5 &&
           (unsigned)atoi(port_s) == a->port;
}

/* The POST must come from the UI's own pages. A browser says so itself in
 * Sec-Fetch-Site (a header pages cannot set), which is what counts when it
 * is there: our Referrer-Policy no-referrer makes browsers send "Origin:
 * null" with a form POST, so Origin cannot be required. Without it (older
 * browsers, scripts), Origin or else Referer must be http://HOST. */
static bool
same_origin(struct MHD_Connection *c)
{
    const char *host = header(c, "Host"), *origin = header(c, "Origin");
    const char *referer = header(c, "Referer"), *site = header(c, "Sec-Fetch-Site");
    char want[300];
    size_t n;

    if (site != NULL)
        return strcmp(site, "same-origin") == 0;
    if (host == NULL || (size_t)snprintf(want, sizeof(want), "http://%s", host) >= sizeof(want))
        return false;
    n = strlen(want);
    if (origin != NULL)
        return strcasecmp(origin, want) == 0;
    return referer != NULL && strncasecmp(referer, want, n) == 0 &&
           (referer[n] == '/' || referer[n] == '\0');
}

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
         const char *table, const char *user)
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
        return send_error(c, api, rc == -2 ? 400 : 500, err, user, NULL, NULL);
    }
    utc_stamp(json_integer_value(json_object_get(doc, "from")), from, sizeof(from));
    utc_stamp(json_integer_value(json_object_get(doc, "to")), to, sizeof(to));
    /* the names are ours ([a-z_]), never the request's bytes */
    snprintf(disp, sizeof(disp), "attachment; filename=\"musproxy-%s-%s-%s-%s.csv\"",
             reportdoc_name(k), table != NULL ? table : t[0].name, from, to);
    return send_body(c, 200, body, len, "text/csv; charset=utf-8", "Content-Disposition", disp);
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

/* ---- the request ---- */

static void
ensure_report(admin_t *a)
{
    if (a->report != NULL)
        return;
    if (a->store_path[0] == '\0') {
        snprintf(a->report_err, sizeof(a->report_err), "no store is configured (store.path)");
        return;
    }
    a->report = report_open(a->store_path, a->report_err, sizeof(a->report_err));
}

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* GET /metrics: the same exposition text as a metrics listener, behind the login. */
static enum MHD_Result
serve_metrics(admin_t *a, struct MHD_Connection *c, bool get, const char *user)
{
    size_t len = 0;
    char *text;

    if (!get)
        return send_error(c, false, 405, "method not allowed here", user, "Allow", "GET, HEAD");
    text = status_metrics_text(&a->src, &len);
    if (text == NULL)
        return send_error(c, false, 500, "the metrics could not be written", user, NULL, NULL);
    return send_body(c, 200, text, len, METRICS_CONTENT_TYPE, NULL, NULL);
}

static enum MHD_Result
serve(admin_t *a, struct MHD_Connection *c, req_t *rq, const char *method)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char user[AUTH_USER_MAX] = "", err[VIEWS_ERR_MAX], retry[16];
    const struct route *rt = NULL;
    const char *qs, *ctype;
    bool post = strcmp(method, "POST") == 0, get = !post && (strcmp(method, "GET") == 0 ||
                                                             strcmp(method, "HEAD") == 0);
    bool api = strncmp(rq->uri, "/api/", 5) == 0;
    size_t plen;
    unsigned retry_s = 0;
    int64_t now = now_ms();
    query_t *q;
    query_view_t v;
    view_env_t env;
    json_t *doc;
    int status;
    enum reportdoc_kind kind = REPORTDOC_DASHBOARD;
    enum MHD_Result ok;

    auth_maybe_reload(a->auth, now / 1000);
    if (!host_ok(a, header(c, "Host")))
        return send_error(c, api, 421, "this server answers to its loopback address only",
                          NULL, NULL, NULL);
    switch (auth_check(a->auth, ci ? ci->client_addr : NULL, header(c, "Authorization"),
                       now / 1000, user, &retry_s)) {
    case AUTH_OK:
        break;
    case AUTH_LIMITED:
        snprintf(retry, sizeof(retry), "%u", retry_s);
        return send_error(c, api, 429, "too many failed logins from this address; try later",
                          NULL, "Retry-After", retry);
    case AUTH_MISSING:
    case AUTH_FAILED:
    default:
        return send_error(c, api, 401, "login required", NULL, "WWW-Authenticate",
                          "Basic realm=\"" ADMIN_REALM "\", charset=\"UTF-8\"");
    }
    if (rq->too_long)
        return send_error(c, api, 414, "request target too long", user, NULL, NULL);
    plen = strcspn(rq->uri, "?#");
    qs = rq->uri + plen;
    if (plen == 8 && strncmp(rq->uri, "/metrics", 8) == 0)
        return serve_metrics(a, c, get, user);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (strlen(routes[i].path) == plen && strncmp(routes[i].path, rq->uri, plen) == 0)
            rt = &routes[i];
    if (rt == NULL)
        return send_error(c, api, 404, "no such page", user, NULL, NULL);
    if ((post && !rt->post) || (get && !rt->get) || (!post && !get))
        return send_error(c, api, 405, "method not allowed here", user, "Allow",
                          rt->post && rt->get ? "GET, HEAD, POST" : rt->post ? "POST" : "GET, HEAD");
    if (post) {
        if (!same_origin(c))
            return send_error(c, api, 403, "cross-site request refused (Origin must be this UI)",
                              user, NULL, NULL);
        ctype = header(c, "Content-Type");
        if (ctype == NULL ||
            strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0 ||
            (ctype[33] != '\0' && ctype[33] != ';'))
            return send_error(c, api, 415, "the form must be application/x-www-form-urlencoded",
                              user, NULL, NULL);
        if (rq->body_too_big)
            return send_error(c, api, 413, "form too large", user, NULL, NULL);
        if (*qs != '\0')
            return send_error(c, api, 400, "a form is posted without a query string", user,
                              NULL, NULL);
    }
    q = malloc(sizeof(*q));
    if (q == NULL)
        return MHD_NO;
    if ((post ? query_parse(rq->body, rq->body_len, q, err, sizeof(err))
              : query_parse(qs, strcspn(qs, "#"), q, err, sizeof(err))) < 0 ||
        query_view(q, &v, err, sizeof(err)) < 0) {
        ok = send_error(c, api, 400, err, user, NULL, NULL);
        free(q);
        return ok;
    }
    if (v.csv && !views_report_kind(rt->page, &kind)) {
        free(q);
        return send_error(c, api, 400, "this page has no tables to export (format=csv)", user,
                          NULL, NULL);
    }
    ensure_report(a);
    env = (view_env_t){
        .report = a->report, .report_err = a->report_err, .src = &a->src,
        .store_path = a->store_path, .now_ms = now,
    };
    doc = views_build(rt->page, &env, &v, post, &status, err, sizeof(err));
    if (doc == NULL) {
        free(q);
        if (status == 500 && a->report != NULL) {
            /* a report connection in trouble is opened afresh next time */
            report_close(a->report);
            a->report = NULL;
        }
        return send_error(c, api, (unsigned)status, err, user, NULL, NULL);
    }
    if (v.csv) {
        ok = send_csv(c, api, doc, kind, v.table, user);
    } else if (rt->api) {
        ok = send_json(c, 200, doc, NULL, NULL);
    } else {
        size_t len = 0;
        char *html, *self = malloc(3 * QUERY_INPUT_MAX + 1);
        if (self != NULL)
            self_query(q, self, 3 * QUERY_INPUT_MAX + 1);
        html = self ? admin_page_render(doc, user, self, &len) : NULL;
        free(self);
        ok = html ? send_body(c, 200, html, len, "text/html; charset=utf-8", NULL, NULL)
                  : send_error(c, false, 500, "page too large", user, NULL, NULL);
    }
    free(q);
    json_decref(doc);
    return ok;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **req_cls)
{
    admin_t *a = cls;
    req_t *rq = *req_cls;

    (void)url;
    (void)version;
    if (rq == NULL)
        return MHD_NO;
    if (!rq->started) {
        rq->started = true;
        return MHD_YES;   /* the body, if any, comes next */
    }
    if (*upload_size > 0) {
        if (rq->body_len + *upload_size > sizeof(rq->body))
            rq->body_too_big = true;
        else {
            memcpy(rq->body + rq->body_len, upload, *upload_size);
            rq->body_len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    return serve(a, c, rq, method);
}

static void *
on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    req_t *rq = calloc(1, sizeof(*rq));
    size_t n = uri ? strlen(uri) : 0;

    (void)cls;
    (void)c;
    if (rq == NULL)
        return NULL;
    if (n > ADMIN_URI_MAX)
        rq->too_long = true;
    else if (n > 0)
        memcpy(rq->uri, uri, n + 1);
    return rq;
}

static void
on_done(void *cls, struct MHD_Connection *c, void **req_cls, enum MHD_RequestTerminationCode tc)
{
    (void)cls;
    (void)c;
    (void)tc;
    free(*req_cls);
    *req_cls = NULL;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_warn("admin: libmicrohttpd: %s", line);
}

/* ---- the thread ---- */

static void *
admin_main(void *arg)
{
    admin_t *a = arg;
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(a->d, MHD_DAEMON_INFO_EPOLL_FD);
    int epfd = di ? di->epoll_fd : -1;

    a->reader = mus_map_reader_register(a->src.map);
    if (a->reader == NULL || epfd < 0) {
        log_error("admin: cannot %s: the UI stops",
                  a->reader == NULL ? "register as a map reader" : "get the epoll descriptor");
        if (a->reader != NULL)
            mus_map_reader_unregister(a->reader);
        return NULL;
    }
    while (!atomic_load(&a->stop)) {
        struct pollfd p[2] = {{.fd = epfd, .events = POLLIN}, {.fd = a->wake_fd, .events = POLLIN}};
        MHD_UNSIGNED_LONG_LONG to;
        int ms = ADMIN_POLL_MS;

        if (MHD_get_timeout(a->d, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG)ms)
            ms = (int)to;
        mus_map_reader_offline(a->reader);
        (void)poll(p, 2, ms);
        mus_map_reader_online(a->reader);
        if (p[1].revents != 0)
            break;
        MHD_run(a->d);
        mus_map_reader_quiescent(a->reader);
    }
    mus_map_reader_unregister(a->reader);
    return NULL;
}

/* A listening socket on cfg->addr; -1 with a message. */
static int
open_listener(const config_admin_t *cfg, char *err, size_t errlen)
{
    int one = 1;
    int fd = socket(cfg->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (const struct sockaddr *)&cfg->addr, cfg->addr_len) < 0 ||
        listen(fd, 64) < 0) {
        snprintf(err, errlen, "%s: %s", cfg->listen, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static bool
addr_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    return ss->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

admin_t *
admin_start(const config_admin_t *cfg, const status_sources_t *src, const char *store_path)
{
    char err[AUTH_ERR_MAX];
    admin_t *a;
    int fd;

    if (!cfg->enabled) {
        log_info("admin UI disabled (admin.enabled: false)");
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        log_error("admin UI not started: out of memory");
        return NULL;
    }
    a->wake_fd = -1;
    a->auth = auth_new(cfg->password_file, err, sizeof(err));
    if (a->auth == NULL) {
        log_warn("admin UI not started: %s (create an account with: musctl passwd admin "
                 "--file %s)", err, cfg->password_file[0] ? cfg->password_file : "etc/admin.passwd");
        goto fail;
    }
    a->src = *src;
    snprintf(a->store_path, sizeof(a->store_path), "%s", store_path ? store_path : "");
    snprintf(a->listen, sizeof(a->listen), "%s", cfg->listen);
    a->loopback = addr_loopback(&cfg->addr);
    a->port = ntohs(cfg->addr.ss_family == AF_INET6
                        ? ((const struct sockaddr_in6 *)&cfg->addr)->sin6_port
                        : ((const struct sockaddr_in *)&cfg->addr)->sin_port);
    atomic_init(&a->stop, false);
    fd = open_listener(cfg, err, sizeof(err));
    if (fd < 0) {
        log_error("admin UI not started: %s", err);
        goto fail;
    }
    a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    a->d = a->wake_fd < 0 ? NULL : MHD_start_daemon(
        MHD_USE_EPOLL | MHD_USE_ERROR_LOG | (cfg->addr.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
        0, NULL, NULL, on_request, a,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a,
        MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, a,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, a,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)ADMIN_CONN_MAX,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)ADMIN_CONN_PER_IP,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)ADMIN_IDLE_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)ADMIN_CONN_MEMORY,
        MHD_OPTION_END);
    if (a->d == NULL) {
        log_error("admin UI not started: libmicrohttpd did not start on %s", cfg->listen);
        close(fd);
        goto fail;
    }
    if (pthread_create(&a->thread, NULL, admin_main, a) != 0) {
        log_error("admin UI not started: cannot start its thread");
        MHD_stop_daemon(a->d);
        goto fail;
    }
    log_info("admin UI on http://%s/ (%zu account%s in %s)", cfg->listen, auth_accounts(a->auth),
             auth_accounts(a->auth) == 1 ? "" : "s", cfg->password_file);
    if (!a->loopback)
        log_warn("admin UI listens on %s, not a loopback address (allow_remote: true): "
                 "logins cross the network in clear text unless TLS is put in front", cfg->listen);
    return a;
fail:
    if (a->wake_fd >= 0)
        close(a->wake_fd);
    auth_free(a->auth);
    free(a);
    return NULL;
}

void
admin_stop(admin_t *a)
{
    uint64_t one = 1;

    if (a == NULL)
        return;
    atomic_store(&a->stop, true);
    (void)!write(a->wake_fd, &one, sizeof(one));
    pthread_join(a->thread, NULL);
    MHD_stop_daemon(a->d);
    close(a->wake_fd);
    report_close(a->report);
    auth_free(a->auth);
    free(a);
}
