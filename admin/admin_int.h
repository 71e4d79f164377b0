/*
 * admin/admin_int.h: inside admin/ only: the daemon's state (struct admin),
 * one request as libmicrohttpd hands it over (req_t), and what the files
 * of the daemon share: responses with the security headers and the Host
 * and same-origin checks (respond.c), the routes to the views, CSV and
 * /metrics (routes.c). admin.c owns the lifecycle, the thread and the
 * libmicrohttpd callbacks. Every function here runs on the admin thread.
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

/* ---- respond.c ---- */

/* Queues body (malloc'd, taken over; NULL = empty) with the security
 * headers, and one more header if hname is not NULL. */
enum MHD_Result admin_send_body(struct MHD_Connection *c, unsigned status, char *body,
                                size_t len, const char *ctype, const char *hname,
                                const char *hvalue);
enum MHD_Result admin_send_json(struct MHD_Connection *c, unsigned status, const json_t *doc,
                                const char *hname, const char *hvalue);
/* An error as JSON for the API, as a page otherwise (user: who is logged in, or NULL). */
enum MHD_Result admin_send_error(struct MHD_Connection *c, bool api, unsigned status,
                                 const char *msg, const char *user, const char *hname,
                                 const char *hvalue);
/* A request header's value, or NULL. */
const char *admin_header(struct MHD_Connection *c, const char *name);
/* On a loopback listener, whether Host names a loopback address and our port. */
bool admin_host_ok(const admin_t *a, const char *host);
/* Whether a POST comes from the UI's own pages (Sec-Fetch-Site, else Origin or Referer). */
bool admin_same_origin(struct MHD_Connection *c);

/* ---- routes.c ---- */

/* A request that has passed the login: its route, method, parameters and
 * answer (a page, JSON, CSV or /metrics). now is Unix ms. */
enum MHD_Result admin_route(admin_t *a, struct MHD_Connection *c, req_t *rq, const char *method,
                            const char *user, int64_t now);

#endif
