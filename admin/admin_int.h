/*
 * admin/admin_int.h: inside admin/ only: the daemon's state (struct admin),
 * one request as libmicrohttpd hands it over (req_t), who it comes from
 * (who_t), and what the files of the daemon share: responses with the
 * security headers and the Host and same-origin checks (respond.c), the
 * login form, logout and the login gate every other request passes
 * (login.c), the routes to the views, CSV and /metrics (routes.c).
 * admin.c owns the lifecycle, TLS, the thread and the libmicrohttpd
 * callbacks. Every function here runs on the admin thread.
 */
#ifndef MUS_ADMIN_ADMIN_INT_H
#define MUS_ADMIN_ADMIN_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../db/report.h"
#include "../proxy/status.h"
#include "admin.h"
#include "auth.h"
#include "query.h"
#include "session.h"

struct admin {
    config_admin_t cfg;            /* as admin_new was given it */
    struct MHD_Daemon *d;
    pthread_t thread;
    bool started;                  /* the thread runs: admin_stop joins it */
    int wake_fd;                   /* eventfd: admin_stop wakes the loop */
    atomic_bool stop;
    status_sources_t src;
    mus_map_reader_t *reader;
    auth_t *auth;
    session_table_t *sessions;
    report_t *report;              /* opened on first use, again after a failure */
    char report_err[REPORT_ERR_MAX];
    char store_path[4096];         /* "" = no store (store.path: off) */
    bool store_pg;                 /* the reports read PostgreSQL (store_conninfo) */
    char store_conninfo[1024];     /* no password: the config refuses one */
    char store_passfile[4096];
    char store_where[4096 + 16];   /* what the store page names: the file or the conninfo */
    bool loopback;                 /* listening on loopback: Host must name it */
    unsigned port;
    bool tls;                      /* HTTPS: Secure cookies, https:// origins */
    char *tls_cert, *tls_key;      /* PEM from the open step until libmicrohttpd has read them */
    unsigned char tls_digest[32];  /* SHA-256 of cert and key, to see them renewed */
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

/* Who a request comes from, once the gate has let it through. */
typedef struct who {
    char user[AUTH_USER_MAX];
    const session_t *session;      /* its login; NULL: HTTP Basic (API and /metrics only) */
} who_t;

/* ---- respond.c ---- */

/* Queues body like admin_send_body, with the header pairs of hdrs (name,
 * value, ..., NULL; NULL = none) after the security headers. */
enum MHD_Result admin_send_headers(struct MHD_Connection *c, unsigned status, char *body,
                                   size_t len, const char *ctype, const char *const *hdrs);

/* Queues body (malloc'd, taken over; NULL = empty) with the security
 * headers, and one more header if hname is not NULL. */
enum MHD_Result admin_send_body(struct MHD_Connection *c, unsigned status, char *body,
                                size_t len, const char *ctype, const char *hname,
                                const char *hvalue);
enum MHD_Result admin_send_json(struct MHD_Connection *c, unsigned status, const json_t *doc,
                                const char *hname, const char *hvalue);
/* An error as JSON for the API, as a page otherwise (who: who is logged
 * in, or NULL). */
enum MHD_Result admin_send_error(struct MHD_Connection *c, bool api, unsigned status,
                                 const char *msg, const who_t *who, const char *hname,
                                 const char *hvalue);
/* A request header's value, or NULL. */
const char *admin_header(struct MHD_Connection *c, const char *name);
/* On a loopback listener, whether Host names a loopback address and our port. */
bool admin_host_ok(const admin_t *a, const char *host);
/* Whether a POST comes from the UI's own pages (Sec-Fetch-Site, else Origin
 * or Referer naming http://HOST, https://HOST on TLS). */
bool admin_same_origin(const admin_t *a, struct MHD_Connection *c);
/* The checks of every form POST: its origin (403), type (415), size (413),
 * no query string (400); then its fields parsed (query_parse_form; 400).
 * NULL when it is answered already (*ok holds the result), else q. */
query_t *admin_post_form(const admin_t *a, struct MHD_Connection *c, req_t *rq, bool api,
                         const who_t *who, query_t *q, enum MHD_Result *ok);

/* ---- login.c ---- */

/* GET /login: the form (or 303 to / with a live session); POST /login: the
 * login (303 to / with the session cookie). now is Unix ms, mono monotonic. */
enum MHD_Result admin_login(admin_t *a, struct MHD_Connection *c, req_t *rq, const char *method,
                            int64_t now, int64_t mono);
/* POST /logout: ends the session (its CSRF token required), 303 to /login. */
enum MHD_Result admin_logout(admin_t *a, struct MHD_Connection *c, req_t *rq, const char *method,
                             int64_t mono);
/* The gate of every other route: true with *who set if the request has a
 * session (or, for the API and /metrics, Basic credentials); false when it
 * has been answered (*ok holds the result): 303 to /login for a page, 401
 * for the API and /metrics, 429 for an address locked out. */
bool admin_who(admin_t *a, struct MHD_Connection *c, req_t *rq, int64_t now, int64_t mono,
               who_t *who, enum MHD_Result *ok);
/* Whether a form posted by who carries its CSRF token (always true for
 * Basic credentials, which have no session to hold one). */
bool admin_csrf_ok(const who_t *who, const char *token);


/* ---- routes.c ---- */

/* A request that has passed the login: its route, method, parameters and
 * answer (a page, JSON, CSV or /metrics). now is Unix ms. */
enum MHD_Result admin_route(admin_t *a, struct MHD_Connection *c, req_t *rq, const char *method,
                            const who_t *who, int64_t now);

/* ---- archive.c ---- */

struct view_env;
/* GET /archive?file=NAME: that scheduled report as a download (200 with
 * Content-Disposition: attachment), 400 for a name that is not an archive
 * file's (a path above all), 404 when there is no such file. */
enum MHD_Result admin_archive_download(struct MHD_Connection *c, bool api,
                                       const struct view_env *env, const char *name,
                                       const who_t *who);

#endif
