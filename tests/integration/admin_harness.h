/*
 * tests/integration/admin_harness.h: what the admin web UI tests
 * (test_admin*.c) share: the processes and files of one test, the users,
 * starting mp-origin and musproxy with an admin section, HTTP requests with
 * libcurl (a login through the form, the API with Basic credentials), musctl
 * and the states of status.services. Test code only; it holds no Test()
 * cases (admin_harness.c declares TestSuite(admin) for every file that
 * links it).
 *
 * The setup: musproxy with a transaction store, an admin password file
 * written by the real `musctl passwd`, mp-origin behind it. Users log in to
 * the proxy with Basic credentials (a password file of the same format, also
 * from musctl passwd) from their own loopback addresses (curl's
 * CURLOPT_INTERFACE); mus.remote_users: ip_ranges with vpn_pools
 * 127.0.0.2/31 makes alice (127.0.0.2) and bob (127.0.0.3) remote, carol
 * (127.0.0.4) and a user named <script>alert(1)</script> (127.0.0.5) local.
 * One category (games.test) is blocked.
 *
 * The pages are read with a session (logged in through the form, as a
 * browser does: GET /login for the form's token, POST /login), the API and
 * /metrics with Basic credentials, so both ways in run through every test.
 */
#ifndef MUS_TESTS_ADMIN_HARNESS_H
#define MUS_TESTS_ADMIN_HARNESS_H

#include <curl/curl.h>
#include <jansson.h>

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"

#define EVIL "<script>alert(1)</script>"
#define EVIL_ESC "&lt;script&gt;alert(1)&lt;/script&gt;"
#define N_USERS 4

extern mp_proc_t g_origin, g_proxy;
extern int g_oport, g_pport, g_aport, g_hport;
extern char g_cfg[MP_PATH_MAX], g_log[MP_PATH_MAX], g_sock[MP_PATH_MAX], g_apw[MP_PATH_MAX];
extern char g_upw[MP_PATH_MAX], g_secret[MP_PATH_MAX];
extern char g_admin_ca[MP_PATH_MAX];   /* set: the admin UI is on HTTPS, checked against this CA */
extern char g_ca[MP_PATH_MAX];   /* set: the headend is a real mus-headend (remote_users: headend) */

/* A login of the admin UI: the Cookie header value of its session, and the
 * CSRF token its pages carry. */
typedef struct login {
    char cookie[128];
    char csrf[80];
} login_t;
extern login_t g_login;                /* admin's, made by admin_get when first needed */
extern bool g_for_nobody;              /* run.user nobody: what it reads after the drop is 0644 */

extern const struct user {
    const char *name, *addr, *pass;
    bool remote;
    int allowed, blocked;          /* requests the test sends */
} users[N_USERS];

/* The path in the environment variable env (set by meson test). */
const char *bin(const char *env);
/* musctl passwd USER --file PATH, the password on stdin. */
void passwd(const char *file, const char *user, const char *pass);
/* The configuration: admin_yaml replaces the default admin section. */
void write_config(const char *admin_yaml);
/* Starts the origin and musproxy; more: extra lines of the admin section. */
void start_admin(const char *more);
void start(void);

/* ---- HTTP ---- */

typedef struct resp {
    long status;
    char *body;
    size_t len, cap;
    char headers[8192];
    size_t hlen;
    long header_size;
    curl_off_t body_size;
} resp_t;

void resp_free(resp_t *r);

typedef struct req {
    const char *from;              /* source address, NULL = 127.0.0.1 */
    const char *userpwd;           /* Basic credentials for the admin UI */
    const char *post;              /* form body: a POST */
    const char *origin;            /* Origin header */
    const char *host;              /* Host header */
    const char *extra;             /* one more header line */
    const char *cookie;            /* Cookie header value */
    bool via_proxy;
    const char *proxy_userpwd;
} req_t;

/* Runs q against url into r: curl's result (r->status is 0 without an answer). */
CURLcode perform(const char *url, const req_t *q, resp_t *r);
/* perform, asserting that curl got an answer: its status. */
long fetch(const char *url, const req_t *q, resp_t *r);
/* http(s)://127.0.0.1:<admin port><path> into buf. */
char *admin_url(char *buf, size_t cap, const char *path);
/* What a browser sends as Origin from the UI's own pages. */
const char *admin_origin(void);
/* The value of response header name (the first, or the n-th with
 * set_cookie_n) into out: false if absent. */
bool header_n(const resp_t *r, const char *name, int n, char *out, size_t cap);
/* The Set-Cookie line that sets cookie name: false if none does. */
bool set_cookie(const resp_t *r, const char *name, char *out, size_t cap);
/* Whether a Set-Cookie line has attribute attr ("HttpOnly", "Path=/"),
 * case-insensitively for its name, as its own "; "-separated item. */
bool cookie_attr(const char *line, const char *attr);
/* The value of the hidden csrf field on a page ("" if none). */
void hidden_csrf(const char *html, char *out, size_t cap);
/* name=value of a Set-Cookie line, for a Cookie header. */
void cookie_pair(const char *line, char *out, size_t cap);
/* Logs in through the form from address from (NULL = 127.0.0.1), as a
 * browser does: GET /login (the form and its token cookie), then POST it.
 * The POST's status; on 303 *out holds the session, its CSRF token read
 * from the dashboard. *post_r, if not NULL, gets the POST's response. */
long login_as(const char *from, const char *user, const char *pass, login_t *out,
              resp_t *post_r);
/* GET path as the admin: a page with the session (logged in on first
 * use), the API and /metrics with Basic credentials. */
long admin_get(const char *path, resp_t *r);
/* admin_get of a JSON route, asserting 200 application/json: the document. */
json_t *admin_json(const char *path);
/* musctl ARGS, asserting exit 0: its JSON output. */
json_t *musctl_json(const char *args);
/* The headers every admin UI answer carries (CSP, framing, caching). */
void expect_security_headers(const resp_t *r);

/* ---- musproxy's log and its services ---- */

/* Until musproxy's log has want (5 s). */
void wait_log(const char *want);
/* The state of one row of status.services (proxy/service.h), and its error ("" if none). */
const char *service_state(json_t *st, const char *name, const char **error);
/* Polls musctl status until the row `name` is in state `want` (5 s). */
void wait_service(const char *name, const char *want);
/* A reload with the admin section yaml leaves the admin row failed, its
 * reason containing why, while the proxy serves on. */
void reload_fails(const char *yaml, const char *why_part);

#endif
