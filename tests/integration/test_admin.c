/*
 * tests/integration/test_admin.c: the admin web UI end to end, with the real
 * binaries over real sockets: musproxy with a transaction store, an admin
 * password file written by the real `musctl passwd`, mp-origin behind it.
 *
 * Users log in to the proxy with Basic credentials (a password file of the
 * same format, also from musctl passwd) from their own loopback addresses
 * (curl's CURLOPT_INTERFACE); mus.remote_users: ip_ranges with vpn_pools
 * 127.0.0.2/31 makes alice (127.0.0.2) and bob (127.0.0.3) remote, carol
 * (127.0.0.4) and a user named <script>alert(1)</script> (127.0.0.5) local.
 * One category (games.test) is blocked. After a known mix of requests, and
 * once `musctl status` says the store wrote all of them, the dashboard's
 * JSON and HTML must show exactly the numbers the test counted from what it
 * sent and received, and those the access log says. Also: logins (the
 * form and its session cookie with its attributes, Basic credentials for
 * the API and /metrics only, the failed-login limit and its log lines),
 * logout, the session's idle and absolute expiry and its end when the
 * password changes, the security headers, the CSRF tokens and the origin
 * check, the Host check, HTTPS with a certificate the test makes (openssl
 * CLI) checked by curl against its CA, the trace form against `musctl
 * trace`, the headend page against `musctl status`, escaping, and the
 * start-up refusals.
 *
 * The pages are read with a session (logged in through the form, as a
 * browser does: GET /login for the form's token, POST /login), the API and
 * /metrics with Basic credentials, so both ways in run through every test.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define EVIL "<script>alert(1)</script>"
#define EVIL_ESC "&lt;script&gt;alert(1)&lt;/script&gt;"
#define N_USERS 4

static mp_proc_t g_origin, g_proxy;
static int g_oport, g_pport, g_aport, g_hport;
static char g_cfg[MP_PATH_MAX], g_log[MP_PATH_MAX], g_sock[MP_PATH_MAX], g_apw[MP_PATH_MAX];
static char g_upw[MP_PATH_MAX], g_secret[MP_PATH_MAX];
static char g_admin_ca[MP_PATH_MAX];   /* set: the admin UI is on HTTPS, checked against this CA */

/* A login of the admin UI: the Cookie header value of its session, and the
 * CSRF token its pages carry. */
typedef struct login {
    char cookie[128];
    char csrf[80];
} login_t;
static login_t g_login;                /* admin's, made by admin_get when first needed */
static bool g_for_nobody;              /* run.user nobody: what it reads after the drop is 0644 */

static const struct user {
    const char *name, *addr, *pass;
    bool remote;
    int allowed, blocked;          /* requests the test sends */
} users[N_USERS] = {
    {"alice", "127.0.0.2", "alice-pw", true, 4, 2},
    {"bob", "127.0.0.3", "bob-pw", true, 2, 1},
    {"carol", "127.0.0.4", "carol-pw", false, 3, 0},
    {EVIL, "127.0.0.5", "evil-pw", false, 1, 1},
};

static void suite_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
}

static void suite_fini(void)
{
    mp_cleanup();
}

TestSuite(admin, .init = suite_init, .fini = suite_fini, .timeout = 120);

static const char *bin(const char *env)
{
    const char *b = getenv(env);
    cr_assert_not_null(b, "%s is not set (run through meson test)", env);
    return b;
}

/* musctl passwd USER --file PATH, the password on stdin. */
static void passwd(const char *file, const char *user, const char *pass)
{
    char cmd[2048], *err = NULL;
    snprintf(cmd, sizeof cmd, "printf '%%s\\n' '%s' | '%s' passwd '%s' --file '%s' >/dev/null",
             pass, bin("MUSCTL_BIN"), user, file);
    char *sh[] = {"/bin/sh", "-c", cmd, NULL};
    int rc = mp_run(sh, 10000, &err);
    cr_assert_eq(rc, 0, "musctl passwd %s: exit %d: %s", user, rc, err ? err : "");
    free(err);
}

static char g_ca[MP_PATH_MAX];   /* set: the headend is a real mus-headend (remote_users: headend) */

/* The configuration: admin_yaml replaces the default admin section. */
static void write_config(const char *admin_yaml)
{
    char headend[4 * MP_PATH_MAX + 512];
    mp_config_t c;
    char ports[64], extra[4 * MP_PATH_MAX + 8192];

    mp_path(g_secret, "mus.secret");
    cr_assert_eq(mp_write_file(g_secret, "correct horse battery staple\n"), 0);
    chmod(g_secret, 0600);
    if (g_ca[0] != '\0')
        snprintf(headend, sizeof headend,
                 "  remote_users: headend\n  vpn_pools: [127.0.0.2/31]\n  control_socket: %s\n"
                 "  reconnect_interval: 2s\n  headends:\n"
                 "    - { name: lab-asa, addresses: [\"127.0.0.1:%d\"], ca: %s, password_file: %s }\n",
                 g_sock, g_hport, g_ca, g_secret);
    else
        snprintf(headend, sizeof headend,
                 "  remote_users: ip_ranges\n  vpn_pools: [127.0.0.2/31]\n  control_socket: %s\n"
                 "  reconnect_interval: 60s\n  headends:\n"
                 "    - { name: lab-asa, addresses: [\"127.0.0.1:%d\"], pin_sha256: %s,"
                 " password_file: %s }\n",
                 g_sock, g_hport,
                 "0000000000000000000000000000000000000000000000000000000000000000", g_secret);
    mp_config_defaults(&c);
    snprintf(ports, sizeof ports, "[443, %d]", g_oport);
    c.connect_ports = ports;
    c.workers = "2";
    c.log_level = "info";
    g_pport = c.listen_port;
    cr_assert_eq(mp_config_write(&c, "proxy.yaml", g_cfg), 0);
    snprintf(extra, sizeof extra,
             "mus:\n%s"
             "identity_profiles:\n"
             "  - { name: remote-users, location: remote, auth: basic }\n"
             "  - { name: office, location: local, auth: basic }\n"
             "access_policies:\n"
             "  - { name: remote, profiles: [remote-users], categories: { games: block, news: allow } }\n"
             "  - { name: office, profiles: [office], categories: { games: block, news: allow } }\n"
             "  - { name: default, default: allow }\n"
             "custom_categories:\n"
             "  - { name: games, domains: [games.test] }\n"
             "  - { name: news, url_prefixes: [\"http://127.0.0.1:%d/size/\"] }\n"
             "authentication:\n"
             "  password_file: %s\n"
             "%s",
             headend, g_oport, g_upw, admin_yaml);
    cr_assert_eq(mp_append_file(g_cfg, extra), 0);
}

/* Starts the origin and musproxy; more: extra lines of the admin section. */
static void start_admin(const char *more)
{
    char admin[4 * MP_PATH_MAX];

    g_oport = mp_origin_start(&g_origin, "origin", NULL, NULL);
    cr_assert_gt(g_oport, 0);
    g_aport = mp_free_port();
    if (g_hport == 0)
        g_hport = mp_free_port();  /* nobody listens: the headend session fails */
    mp_path(g_sock, "musproxy.sock");
    mp_path(g_log, "access.log");
    mp_path(g_apw, "admin.passwd");
    mp_path(g_upw, "users.passwd");
    passwd(g_apw, "admin", "correct horse");
    for (int i = 0; i < N_USERS; i++)
        passwd(g_upw, users[i].name, users[i].pass);
    snprintf(admin, sizeof admin, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n%s",
             g_aport, g_apw, more);
    write_config(admin);
    if (g_for_nobody) {
        chmod(g_apw, 0644);
        chmod(g_upw, 0644);
        chmod(g_cfg, 0644);
    }
    memset(&g_login, 0, sizeof g_login);
    cr_assert_eq(mp_proxy_start(&g_proxy, g_cfg, g_pport), 0);
    cr_assert_eq(mp_wait_port(g_aport, 5000), 0, "the admin UI did not listen");
}

static void start(void)
{
    start_admin("");
}

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

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t len = sz * n;
    if (r->len + len + 1 > r->cap) {
        r->cap = (r->len + len + 1) * 2;
        r->body = realloc(r->body, r->cap);
        cr_assert_not_null(r->body);
    }
    memcpy(r->body + r->len, p, len);
    r->len += len;
    r->body[r->len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t len = sz * n;
    if (r->hlen + len < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, len);
        r->hlen += len;
        r->headers[r->hlen] = '\0';
    }
    return len;
}

static void resp_free(resp_t *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

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
static CURLcode perform(const char *url, const req_t *q, resp_t *r)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hs = NULL;
    char proxy[64], line[512];
    CURLcode rc;

    memset(r, 0, sizeof *r);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 15L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (q->from)
        curl_easy_setopt(h, CURLOPT_INTERFACE, q->from);
    if (q->via_proxy) {
        snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", g_pport);
        curl_easy_setopt(h, CURLOPT_PROXY, proxy);
        curl_easy_setopt(h, CURLOPT_NOPROXY, "");
        curl_easy_setopt(h, CURLOPT_PROXYAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_PROXYUSERPWD, q->proxy_userpwd);
    } else {
        curl_easy_setopt(h, CURLOPT_PROXY, "");
    }
    if (q->userpwd) {
        curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(h, CURLOPT_USERPWD, q->userpwd);
    }
    if (q->post) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->post);
    }
    if (q->origin) {
        snprintf(line, sizeof line, "Origin: %s", q->origin);
        hs = curl_slist_append(hs, line);
    }
    if (q->host) {
        snprintf(line, sizeof line, "Host: %s", q->host);
        hs = curl_slist_append(hs, line);
    }
    if (q->extra)
        hs = curl_slist_append(hs, q->extra);
    if (hs)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hs);
    if (q->cookie)
        curl_easy_setopt(h, CURLOPT_COOKIE, q->cookie);
    if (strncmp(url, "https:", 6) == 0) {
        curl_easy_setopt(h, CURLOPT_CAINFO, g_admin_ca);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    }
    rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_getinfo(h, CURLINFO_HEADER_SIZE, &r->header_size);
    curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &r->body_size);
    curl_slist_free_all(hs);
    curl_easy_cleanup(h);
    if (r->body == NULL)
        r->body = strdup("");
    return rc;
}

static long fetch(const char *url, const req_t *q, resp_t *r)
{
    CURLcode rc = perform(url, q, r);

    cr_assert_eq(rc, CURLE_OK, "curl %s: %s", url, curl_easy_strerror(rc));
    return r->status;
}

static char *admin_url(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "%s://127.0.0.1:%d%s", g_admin_ca[0] ? "https" : "http", g_aport, path);
    return buf;
}

/* What a browser sends as Origin from the UI's own pages. */
static const char *admin_origin(void)
{
    static char o[64];
    snprintf(o, sizeof o, "%s://127.0.0.1:%d", g_admin_ca[0] ? "https" : "http", g_aport);
    return o;
}

/* The value of response header name (the first, or the n-th with
 * set_cookie_n) into out: false if absent. */
static bool header_n(const resp_t *r, const char *name, int n, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; (p = strstr(p, name)) != NULL; p += nl) {
        if ((p != r->headers && p[-1] != '\n') || p[nl] != ':')
            continue;
        if (n-- > 0)
            continue;
        p += nl + 1;
        p += strspn(p, " ");
        size_t len = strcspn(p, "\r\n");
        cr_assert_lt(len, cap);
        memcpy(out, p, len);
        out[len] = '\0';
        return true;
    }
    return false;
}

/* The Set-Cookie line that sets cookie name: false if none does. */
static bool set_cookie(const resp_t *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (int i = 0; header_n(r, "Set-Cookie", i, out, cap); i++)
        if (strncmp(out, name, nl) == 0 && out[nl] == '=')
            return true;
    return false;
}

/* Whether a Set-Cookie line has attribute attr ("HttpOnly", "Path=/"),
 * case-insensitively for its name, as its own "; "-separated item. */
static bool cookie_attr(const char *line, const char *attr)
{
    char copy[512], *save = NULL;
    snprintf(copy, sizeof copy, "%s", line);
    strtok_r(copy, ";", &save);                       /* name=value */
    for (char *t; (t = strtok_r(NULL, ";", &save)) != NULL;) {
        t += strspn(t, " ");
        if (strcasecmp(t, attr) == 0)
            return true;
    }
    return false;
}

/* The value of the hidden csrf field on a page ("" if none). */
static void hidden_csrf(const char *html, char *out, size_t cap)
{
    const char *p = strstr(html, "<input type=\"hidden\" name=\"csrf\" value=\"");
    out[0] = '\0';
    if (p == NULL)
        return;
    p += strlen("<input type=\"hidden\" name=\"csrf\" value=\"");
    snprintf(out, cap, "%.*s", (int)strcspn(p, "\""), p);
}

/* name=value of a Set-Cookie line, for a Cookie header. */
static void cookie_pair(const char *line, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)strcspn(line, ";"), line);
}

/* Logs in through the form from address from (NULL = 127.0.0.1), as a
 * browser does: GET /login (the form and its token cookie), then POST it.
 * The POST's status; on 303 *out holds the session, its CSRF token read
 * from the dashboard. *post_r, if not NULL, gets the POST's response. */
static long login_as(const char *from, const char *user, const char *pass, login_t *out,
                     resp_t *post_r)
{
    char url[256], line[512], token[128], cookie[160], body[512], *u, *pw;
    resp_t r, pr;
    req_t q = {.from = from};
    long status;
    CURL *e = curl_easy_init();

    cr_assert_eq(fetch(admin_url(url, sizeof url, "/login"), &q, &r), 200, "%s", r.body);
    cr_assert(set_cookie(&r, "musproxy_login", line, sizeof line), "%s", r.headers);
    hidden_csrf(r.body, token, sizeof token);
    cr_assert_eq(strlen(token), 64, "the login form's token: '%s'", token);
    cookie_pair(line, cookie, sizeof cookie);
    cr_assert_str_eq(cookie + strlen("musproxy_login="), token, "cookie and field differ");
    resp_free(&r);
    u = curl_easy_escape(e, user, 0);
    pw = curl_easy_escape(e, pass, 0);
    snprintf(body, sizeof body, "user=%s&password=%s&csrf=%s", u, pw, token);
    curl_free(u);
    curl_free(pw);
    curl_easy_cleanup(e);
    q = (req_t){.from = from, .post = body, .cookie = cookie, .origin = admin_origin()};
    status = fetch(url, &q, &pr);
    if (status == 303 && out != NULL) {
        cr_assert(set_cookie(&pr, "musproxy_session", line, sizeof line), "%s", pr.headers);
        cookie_pair(line, out->cookie, sizeof out->cookie);
        q = (req_t){.from = from, .cookie = out->cookie};
        cr_assert_eq(fetch(admin_url(url, sizeof url, "/"), &q, &r), 200, "%s", r.body);
        hidden_csrf(r.body, out->csrf, sizeof out->csrf);
        cr_assert_eq(strlen(out->csrf), 64, "the dashboard's CSRF token: '%s'", out->csrf);
        resp_free(&r);
    }
    if (post_r != NULL)
        *post_r = pr;
    else
        resp_free(&pr);
    return status;
}

/* GET path as the admin: a page with the session (logged in on first
 * use), the API and /metrics with Basic credentials. */
static long admin_get(const char *path, resp_t *r)
{
    char url[1024];
    req_t q = {0};

    if (strncmp(path, "/api/", 5) == 0 || strncmp(path, "/metrics", 8) == 0) {
        q.userpwd = "admin:correct horse";
    } else {
        if (g_login.cookie[0] == '\0')
            cr_assert_eq(login_as(NULL, "admin", "correct horse", &g_login, NULL), 303);
        q.cookie = g_login.cookie;
    }
    return fetch(admin_url(url, sizeof url, path), &q, r);
}

static json_t *admin_json(const char *path)
{
    resp_t r;
    json_error_t je;
    json_t *j;

    cr_assert_eq(admin_get(path, &r), 200, "%s: %ld %s", path, r.status, r.body);
    cr_assert(strstr(r.headers, "Content-Type: application/json") != NULL, "%s", r.headers);
    j = json_loads(r.body, 0, &je);
    cr_assert_not_null(j, "%s: %s in %s", path, je.text, r.body);
    resp_free(&r);
    return j;
}

static json_t *musctl_json(const char *args)
{
    char cmd[4096], out[MP_PATH_MAX], *err = NULL;
    json_error_t je;
    json_t *j;

    mp_path(out, "musctl.json");
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s'", bin("MUSCTL_BIN"), args, out);
    char *sh[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(mp_run(sh, 10000, &err), 0, "musctl %s: %s", args, err ? err : "");
    free(err);
    j = json_load_file(out, 0, &je);
    cr_assert_not_null(j, "musctl %s: %s", args, je.text);
    return j;
}

/* musctl ARGS with stdout to a file: its exit status, the output in *out
 * (caller frees), stderr in *err (caller frees). */
static int musctl_out(const char *args, char **out, char **err)
{
    char cmd[4096], path[MP_PATH_MAX];
    int rc;

    mp_path(path, "musctl.out");
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s'", bin("MUSCTL_BIN"), args, path);
    char *sh[] = {"/bin/sh", "-c", cmd, NULL};
    *err = NULL;
    rc = mp_run(sh, 10000, err);
    *out = mp_read_file(path, NULL);
    cr_assert_not_null(*out);
    return rc;
}

/* Waits until the store has written `want` records (musctl status). */
static void wait_store(long long want)
{
    char args[MP_PATH_MAX + 64];
    long long written = -1, submitted = -1;

    snprintf(args, sizeof args, "status --json --socket '%s'", g_sock);
    for (int i = 0; i < 100; i++) {
        json_t *st = musctl_json(args), *s = json_object_get(st, "store");
        written = json_integer_value(json_object_get(s, "written"));
        submitted = json_integer_value(json_object_get(s, "submitted"));
        json_decref(st);
        if (written == want && submitted == want)
            return;
        mp_sleep_ms(50);
    }
    cr_assert_fail("store: written %lld, submitted %lld, want %lld", written, submitted, want);
}

static void expect_security_headers(const resp_t *r)
{
    static const char *const want[] = {
        "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'",
        "X-Frame-Options: DENY", "X-Content-Type-Options: nosniff", "Cache-Control: no-store",
        "Referrer-Policy: no-referrer",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(r->headers, want[i]) != NULL, "missing %s in\n%s", want[i], r->headers);
}

/* & < > " ' as the pages write them. */
static void html_escape(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        const char *e = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;"
                      : *s == '"' ? "&quot;" : *s == '\'' ? "&#39;" : NULL;
        if (e) {
            memcpy(out + o, e, strlen(e));
            o += strlen(e);
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

/* ---- the traffic and its expected figures ---- */

typedef struct counted {
    long long requests, blocked, bytes, remote;
    long long blocked_bytes, remote_bytes, remote_blocked;
    long long u_requests[N_USERS], u_blocked[N_USERS], u_bytes[N_USERS];
} counted_t;

static void send_mix(counted_t *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_USERS; i++) {
        char cred[256], url[256];
        for (int k = 0; k < users[i].allowed + users[i].blocked; k++) {
            bool block = k >= users[i].allowed;
            resp_t r;
            req_t q = {.from = users[i].addr, .via_proxy = true, .proxy_userpwd = cred};
            snprintf(cred, sizeof cred, "%s:%s", users[i].name, users[i].pass);
            if (block)
                snprintf(url, sizeof url, "http://games.test/play/%d", k);
            else
                snprintf(url, sizeof url, "http://127.0.0.1:%d/size/%d", g_oport, 100 + 10 * i + k);
            fetch(url, &q, &r);
            cr_assert_eq(r.status, block ? 403 : 200, "%s as %s: %ld", url, users[i].name, r.status);
            c->requests++;
            c->blocked += block;
            c->remote += users[i].remote;
            c->bytes += r.header_size + (long long)r.body_size;
            c->blocked_bytes += block ? r.header_size + (long long)r.body_size : 0;
            c->remote_bytes += users[i].remote ? r.header_size + (long long)r.body_size : 0;
            c->remote_blocked += users[i].remote && block;
            c->u_requests[i]++;
            c->u_blocked[i] += block;
            c->u_bytes[i] += r.header_size + (long long)r.body_size;
            resp_free(&r);
        }
    }
}

/* The same figures from the access log's lines. */
/* The sum of every sample of one metric family (name, or name{labels}). */
static long long metric_sum(const char *text, const char *name)
{
    size_t n = strlen(name);
    long long sum = 0;

    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, n) != 0 || (l[n] != ' ' && l[n] != '{'))
            continue;
        const char *sp = l[n] == '{' ? strchr(l + n, '}') : l + n;
        if (sp != NULL)
            sum += (long long)strtod(sp + 1, NULL);
    }
    return sum;
}

static void count_log(counted_t *c)
{
    char *all = mp_read_file(g_log, NULL), *save = NULL;

    memset(c, 0, sizeof *c);
    cr_assert_not_null(all);
    for (char *line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char client[64], result[64], method[32], url[2048], user[512];
        long long bytes;
        double t;
        long el;
        cr_assert_eq(sscanf(line, "%lf %ld %63s %63s %lld %31s %2047s %511s", &t, &el, client,
                            result, &bytes, method, url, user), 8, "log line: %s", line);
        c->requests++;
        c->blocked += strcmp(result, "TCP_DENIED/403") == 0;
        c->bytes += bytes;
        for (int i = 0; i < N_USERS; i++)
            if (strcmp(user, users[i].name) == 0 || (i == 3 && strstr(user, "script"))) {
                c->u_requests[i]++;
                c->u_blocked[i] += strcmp(result, "TCP_DENIED/403") == 0;
                c->u_bytes[i] += bytes;
                c->remote += users[i].remote;
            }
    }
    free(all);
}

static long long summary_int(const json_t *d, const char *key)
{
    return (long long)json_integer_value(json_object_get(json_object_get(d, "summary"), key));
}

/* "<dd id="key">N</dd>" from a page. */
static long long page_figure(const char *html, const char *key)
{
    char needle[64];
    const char *p;

    snprintf(needle, sizeof needle, "<dd id=\"%s\">", key);
    p = strstr(html, needle);
    cr_assert_not_null(p, "no %s on the page", key);
    return atoll(p + strlen(needle));
}

static void expect_dashboard(const counted_t *c, const counted_t *lg)
{
    json_t *d = admin_json("/api/dashboard?range=24h&loc=all"), *tu, *tc, *tb;
    static const int order[N_USERS] = {0, 1, 2, 3};   /* alice 6, bob 3, carol 3 (ties by name), evil 2 */
    resp_t r;
    const char *prev;

    /* the JSON: what the test sent, and what the log says */
    cr_expect_eq(summary_int(d, "requests"), c->requests);
    cr_expect_eq(summary_int(d, "requests"), lg->requests);
    cr_expect_eq(summary_int(d, "blocked"), c->blocked);
    cr_expect_eq(summary_int(d, "blocked"), lg->blocked);
    cr_expect_eq(summary_int(d, "bytes"), c->bytes);
    cr_expect_eq(summary_int(d, "bytes"), lg->bytes);
    cr_expect_eq(summary_int(d, "users"), N_USERS);
    cr_expect_eq(summary_int(d, "remote_requests"), c->remote);
    cr_expect_eq(summary_int(d, "remote_requests"), lg->remote);
    cr_expect_eq(summary_int(d, "local_requests"), c->requests - c->remote);
    tu = json_object_get(d, "top_users");
    cr_assert_eq(json_array_size(tu), N_USERS, "top_users: %zu", json_array_size(tu));
    for (int k = 0; k < N_USERS; k++) {
        const json_t *row = json_array_get(tu, (size_t)k);
        int i = order[k];
        cr_expect_str_eq(json_string_value(json_object_get(row, "user")), users[i].name);
        cr_expect_eq(json_integer_value(json_object_get(row, "requests")), c->u_requests[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "requests")), lg->u_requests[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "blocked")), c->u_blocked[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "bytes")), c->u_bytes[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "bytes")), lg->u_bytes[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "remote")), users[i].remote ? 1 : 0);
    }
    tc = json_object_get(d, "top_categories");
    cr_assert_eq(json_array_size(tc), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(tc, 0), "category")), "news");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tc, 0), "requests")),
                 c->requests - c->blocked);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tc, 0), "blocked")), 0);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(tc, 1), "category")), "games");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tc, 1), "requests")), c->blocked);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tc, 1), "blocked")), c->blocked);
    tb = json_object_get(d, "top_blocked_hosts");
    cr_assert_eq(json_array_size(tb), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(tb, 0), "host")), "games.test");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tb, 0), "blocked")), c->blocked);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tb, 0), "users")), 3);
    json_decref(d);

    /* the HTML shows the same figures */
    cr_assert_eq(admin_get("/?range=24h&loc=all", &r), 200, "%s", r.body);
    expect_security_headers(&r);
    cr_expect(strstr(r.headers, "Content-Type: text/html; charset=utf-8") != NULL);
    cr_expect_eq(page_figure(r.body, "requests"), c->requests);
    cr_expect_eq(page_figure(r.body, "blocked"), c->blocked);
    cr_expect_eq(page_figure(r.body, "bytes"), c->bytes);
    cr_expect_eq(page_figure(r.body, "users"), N_USERS);
    cr_expect_eq(page_figure(r.body, "remote_requests"), c->remote);
    prev = r.body;
    for (int k = 0; k < N_USERS; k++) {
        int i = order[k];
        char row[512];
        const char *at;
        snprintf(row, sizeof row,
                 ">%s</a></td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
                 "<td class=\"n\">%lld</td><td>%s</td></tr>",
                 i == 3 ? EVIL_ESC : users[i].name, c->u_requests[i], c->u_bytes[i],
                 c->u_blocked[i], users[i].remote ? "yes" : "no");
        at = strstr(r.body, row);
        cr_expect_not_null(at, "no row %s on the dashboard", row);
        cr_expect(at == NULL || at > prev, "top users out of order at %s", users[i].name);
        if (at)
            prev = at;
    }
    {
        char row[256];
        snprintf(row, sizeof row, "<tr><td>news</td><td class=\"n\">%lld</td>",
                 c->requests - c->blocked);
        cr_expect(strstr(r.body, row) != NULL, "no %s", row);
        snprintf(row, sizeof row, "<tr><td>games</td><td class=\"n\">%lld</td>", c->blocked);
        cr_expect(strstr(r.body, row) != NULL, "no %s", row);
        snprintf(row, sizeof row, ">games.test</a></td><td class=\"n\">%lld</td><td class=\"n\">3</td>",
                 c->blocked);
        cr_expect(strstr(r.body, row) != NULL, "no %s", row);
    }
    /* the user named <script>...: escaped, in text and in its link */
    cr_expect_null(strstr(r.body, "<script"), "an unescaped <script> on the page");
    cr_expect(strstr(r.body, "href=\"/user?name=%3Cscript%3Ealert%281%29%3C%2Fscript%3E&amp;") != NULL);
    resp_free(&r);
}

Test(admin, dashboard_shows_the_traffic)
{
    counted_t c, lg;
    json_t *d;
    resp_t r;

    start();
    send_mix(&c);
    wait_store(c.requests);
    count_log(&lg);
    cr_assert_eq(lg.requests, c.requests, "the access log has %lld lines", lg.requests);
    expect_dashboard(&c, &lg);

    /* the location filter */
    d = admin_json("/api/dashboard?range=today&loc=remote");
    cr_expect_eq(summary_int(d, "requests"), users[0].allowed + users[0].blocked +
                                             users[1].allowed + users[1].blocked);
    cr_expect_eq(summary_int(d, "blocked"), users[0].blocked + users[1].blocked);
    cr_expect_eq(json_array_size(json_object_get(d, "top_users")), 2);
    json_decref(d);
    d = admin_json("/api/dashboard?range=7d&loc=local");
    cr_expect_eq(summary_int(d, "requests"), users[2].allowed + users[3].allowed + users[3].blocked);
    cr_expect_eq(summary_int(d, "blocked"), users[3].blocked);
    json_decref(d);

    /* a user's page, for the hostile name: escaped, with its figures */
    cr_assert_eq(admin_get("/user?name=%3Cscript%3Ealert%281%29%3C%2Fscript%3E", &r), 200, "%s", r.body);
    cr_expect_null(strstr(r.body, "<script"));
    cr_expect(strstr(r.body, "<b id=\"user\">" EVIL_ESC "</b>") != NULL, "%s", r.body);
    cr_expect_eq(page_figure(r.body, "requests"), c.u_requests[3]);
    cr_expect_eq(page_figure(r.body, "blocked"), c.u_blocked[3]);
    cr_expect(strstr(r.body, "games.test") != NULL);
    resp_free(&r);
    d = admin_json("/api/user?name=alice");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "detail"), "requests")),
                 c.u_requests[0]);
    cr_expect_eq(json_array_size(json_object_get(json_object_get(d, "detail"), "blocks")),
                 (size_t)users[0].blocked);
    json_decref(d);

    /* web tracking: the blocked requests of the remote users, paged */
    d = admin_json("/api/search?decision=block&loc=remote");
    cr_expect_eq(json_array_size(json_object_get(json_object_get(d, "result"), "rows")),
                 (size_t)(users[0].blocked + users[1].blocked));
    json_decref(d);
    d = admin_json("/api/search?user=alice&page=1");
    cr_expect_eq(json_array_size(json_object_get(json_object_get(d, "result"), "rows")),
                 (size_t)c.u_requests[0]);
    json_decref(d);
    d = admin_json("/api/search?user=alice&page=2");
    cr_expect_eq(json_array_size(json_object_get(json_object_get(d, "result"), "rows")), 0);
    json_decref(d);
    cr_assert_eq(admin_get("/search?host=games.test", &r), 200);
    cr_expect(strstr(r.body, "http://games.test/play/4") != NULL, "search page lacks alice's block");
    cr_expect(strstr(r.body, EVIL_ESC) != NULL);
    cr_expect_null(strstr(r.body, "<script"));
    resp_free(&r);
    cr_expect_eq(admin_get("/api/search?decision=maybe", &r), 400);
    cr_expect(strstr(r.body, "decision must be") != NULL, "%s", r.body);
    resp_free(&r);

    /* the store page: what musctl status says */
    d = admin_json("/api/store");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "store"), "written")), c.requests);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "store"), "dropped")), 0);
    json_decref(d);
    cr_assert_eq(admin_get("/store", &r), 200);
    cr_expect_eq(page_figure(r.body, "written"), c.requests);
    cr_expect_eq(page_figure(r.body, "lost"), 0);
    resp_free(&r);

    /* /metrics behind the login: the same counts as the access log */
    cr_assert_eq(admin_get("/metrics", &r), 200, "%s", r.body);
    cr_expect(strstr(r.headers, "Content-Type: text/plain; version=0.0.4") != NULL, "%s", r.headers);
    cr_expect_eq(metric_sum(r.body, "musproxy_requests_total"), lg.requests, "%s", r.body);
    cr_expect_eq(metric_sum(r.body, "musproxy_blocks_total"), lg.blocked, "%s", r.body);
    cr_expect_eq(metric_sum(r.body, "musproxy_store_up"), 1, "%s", r.body);
    resp_free(&r);
    {
        req_t anon = {0};
        char url[1024];
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/metrics"), &anon, &r), 401);
        cr_expect_null(strstr(r.body, "musproxy_requests_total"));
        resp_free(&r);
    }

    /* the sessions page answers (ip_ranges: nobody in the map) */
    d = admin_json("/api/sessions");
    cr_expect_eq(json_array_size(json_object_get(d, "connected")), 0);
    json_decref(d);
}

/* ---- the reports of part 2, their CSV and musctl report ---- */

static json_t *row_of(const json_t *rows, const char *key, const char *value)
{
    size_t i;
    json_t *row;

    json_array_foreach(rows, i, row)
    {
        const char *v = json_string_value(json_object_get(row, key));
        if (v != NULL && strcmp(v, value) == 0)
            return row;
    }
    cr_assert_fail("no row with %s = %s", key, value);
    return NULL;
}

static long long ival(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    cr_assert(json_is_integer(v), "%s is not an integer", key);
    return (long long)json_integer_value(v);
}

/* Splits an RFC 4180 text into cells: rows[r][c], at most 64 x 16. */
typedef struct csv {
    size_t nrows, ncols[64];
    char cell[64][16][512];
} csv_t;

static void csv_parse(const char *s, csv_t *t)
{
    size_t r = 0, c = 0, o = 0;
    bool q = false;

    memset(t, 0, sizeof *t);
    for (; *s; s++) {
        if (q) {
            if (*s == '"' && s[1] == '"')
                t->cell[r][c][o++] = *s++;
            else if (*s == '"')
                q = false;
            else
                t->cell[r][c][o++] = *s;
        } else if (*s == '"') {
            q = true;
        } else if (*s == ',') {
            c++, o = 0;
        } else if (*s == '\r' && s[1] == '\n') {
            t->ncols[r] = c + 1;
            r++, c = 0, o = 0;
            s++;
        } else {
            t->cell[r][c][o++] = *s;
        }
        cr_assert(r < 64 && c < 16 && o < 511, "CSV too large for the test");
    }
    cr_assert(!q && c == 0 && o == 0, "the CSV does not end with CRLF: %s", s);
    t->nrows = r;
}

/* The CSV holds the JSON rows: its header the keys, each cell the value. */
static void expect_csv_rows(const char *text, const json_t *rows, const char *what)
{
    static csv_t t;
    size_t i;
    json_t *row;

    csv_parse(text, &t);
    cr_assert_eq(t.nrows, json_array_size(rows) + 1, "%s: %zu CSV lines for %zu rows\n%s", what,
                 t.nrows, json_array_size(rows), text);
    json_array_foreach(rows, i, row) {
        const char *key;
        json_t *v;
        size_t c = 0;
        json_object_foreach(row, key, v) {
            char want[512];
            cr_assert_str_eq(t.cell[0][c], key, "%s: header column %zu", what, c);
            if (json_is_integer(v))
                snprintf(want, sizeof want, "%lld", (long long)json_integer_value(v));
            else if (json_is_real(v))
                snprintf(want, sizeof want, "%.1f", json_real_value(v));
            else
                snprintf(want, sizeof want, "%s%s", strchr("=+-@", *json_string_value(v)) &&
                         *json_string_value(v) ? "'" : "", json_string_value(v));
            cr_expect_str_eq(t.cell[i + 1][c], want, "%s: row %zu %s", what, i, key);
            c++;
        }
        cr_expect_eq(t.ncols[i + 1], c, "%s: row %zu", what, i);
    }
}

/* GET path (an API or page route with ?format=csv): 200 text/csv as an
 * attachment named musproxy-REPORT-TABLE-...csv; the body (caller frees). */
static char *get_csv(const char *path, const char *report, const char *table)
{
    resp_t r;
    char disp[256];
    char *body;

    cr_assert_eq(admin_get(path, &r), 200, "%s: %ld %s", path, r.status, r.body);
    cr_expect(strstr(r.headers, "Content-Type: text/csv; charset=utf-8\r\n") != NULL, "%s",
              r.headers);
    snprintf(disp, sizeof disp, "Content-Disposition: attachment; filename=\"musproxy-%s-%s-",
             report, table);
    cr_expect(strstr(r.headers, disp) != NULL, "%s: no %s in\n%s", path, disp, r.headers);
    expect_security_headers(&r);
    body = r.body;
    r.body = NULL;
    resp_free(&r);
    return body;
}

/* Unix ms as 2026-12-04T13:00:05.250Z, the form musctl report takes. */
static void iso_ms(long long ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

/* musctl report NAME over the API document's own range prints the same
 * members, and its CSV of each table the API's CSV. */
static void expect_musctl_report(const char *name, const char *api, const char *const *tables,
                                 size_t ntables, const char *extra)
{
    char path[512], args[2 * MP_PATH_MAX + 512], from[96], to[96], loc[16], *out, *err;
    json_t *d, *m;
    json_error_t je;
    const char *key;
    json_t *v;

    d = admin_json(api);
    iso_ms(json_integer_value(json_object_get(d, "from")), from, sizeof from);
    iso_ms(json_integer_value(json_object_get(d, "to")), to, sizeof to);
    snprintf(loc, sizeof loc, "%s", json_string_value(json_object_get(d, "location")));
    snprintf(args, sizeof args, "report %s --config '%s' --from %s --to %s --location %s %s",
             name, g_cfg, from, to, loc, extra);
    cr_assert_eq(musctl_out(args, &out, &err), 0, "musctl %s: %s", args, err ? err : "");
    free(err);
    m = json_loads(out, 0, &je);
    cr_assert_not_null(m, "musctl %s: %s in %s", args, je.text, out);
    free(out);
    cr_expect_str_eq(json_string_value(json_object_get(m, "report")), name);
    json_object_foreach(d, key, v) {
        if (strcmp(key, "page") == 0 || strcmp(key, "range") == 0)
            continue;
        cr_expect(json_equal(v, json_object_get(m, key)), "musctl report %s: %s differs", name,
                  key);
    }
    cr_expect_eq(json_object_size(m), json_object_size(d) - 1, "report for page and range");
    json_decref(m);
    json_decref(d);
    for (size_t i = 0; i < ntables; i++) {
        char *csv;
        snprintf(path, sizeof path, "%s%sformat=csv&table=%s", api, strchr(api, '?') ? "&" : "?",
                 tables[i]);
        csv = get_csv(path, name, tables[i]);
        snprintf(args, sizeof args, "report %s --db '%s' --from %s --to %s --location %s "
                 "--format csv --table %s %s", name, mp_path(path, "musproxy.db"), from, to, loc,
                 tables[i], extra);
        cr_assert_eq(musctl_out(args, &out, &err), 0, "musctl %s: %s", args, err ? err : "");
        cr_expect_str_eq(out, csv, "musctl report %s --table %s differs from the API's CSV",
                         name, tables[i]);
        free(out);
        free(err);
        free(csv);
    }
}

/* The part-2 reports of a known traffic mix: every figure is counted from
 * what the test sent; each table's CSV holds its JSON rows; every HTML
 * table links to a CSV that is the API's; musctl report on the same store
 * prints the same documents and the same CSV. */
static void expect_reports(const counted_t *c)
{
    long long allowed = c->requests - c->blocked;
    long long remote_req = 0, remote_blocked = 0;
    json_t *d, *rows, *row;
    char *csv;
    resp_t r;

    for (int i = 0; i < N_USERS; i++)
        if (users[i].remote) {
            remote_req += users[i].allowed + users[i].blocked;
            remote_blocked += users[i].blocked;
        }
    cr_assert_eq(remote_blocked, c->remote_blocked);

    /* web sites: the origin (every allowed request) and games.test (every block) */
    d = admin_json("/api/sites?range=24h&loc=all");
    cr_expect_str_eq(json_string_value(json_object_get(d, "by")), "requests");
    rows = json_object_get(d, "sites");
    cr_assert_eq(json_array_size(rows), 2, "sites: %zu", json_array_size(rows));
    row = json_array_get(rows, 0);
    cr_expect_str_eq(json_string_value(json_object_get(row, "host")), "127.0.0.1");
    cr_expect_eq(ival(row, "requests"), allowed);
    cr_expect_eq(ival(row, "bytes"), c->bytes - c->blocked_bytes);
    cr_expect_eq(ival(row, "blocked"), 0);
    cr_expect_eq(ival(row, "users"), N_USERS);
    row = json_array_get(rows, 1);
    cr_expect_str_eq(json_string_value(json_object_get(row, "host")), "games.test");
    cr_expect_eq(ival(row, "requests"), c->blocked);
    cr_expect_eq(ival(row, "bytes"), c->blocked_bytes);
    cr_expect_eq(ival(row, "blocked"), c->blocked);
    cr_expect_eq(ival(row, "users"), 3);
    csv = get_csv("/api/sites?range=24h&loc=all&format=csv", "sites", "sites");
    expect_csv_rows(csv, rows, "sites");
    free(csv);
    json_decref(d);
    d = admin_json("/api/sites?by=blocked");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(d, "sites"),
                                                                      0), "host")), "games.test");
    json_decref(d);
    d = admin_json("/api/sites?loc=local&limit=1");
    rows = json_object_get(d, "sites");
    cr_assert_eq(json_array_size(rows), 1);
    cr_expect_eq(ival(json_array_get(rows, 0), "requests"),
                 users[2].allowed + users[3].allowed);
    json_decref(d);

    /* URL categories: news (the url_prefix) and games */
    d = admin_json("/api/categories?range=24h&loc=all");
    rows = json_object_get(d, "categories");
    cr_assert_eq(json_array_size(rows), 2);
    row = row_of(rows, "category", "news");
    cr_expect_eq(ival(row, "requests"), allowed);
    cr_expect_eq(ival(row, "blocked"), 0);
    cr_expect_eq(ival(row, "bytes"), c->bytes - c->blocked_bytes);
    row = row_of(rows, "category", "games");
    cr_expect_eq(ival(row, "requests"), c->blocked);
    cr_expect_eq(ival(row, "blocked"), c->blocked);
    cr_expect_eq(ival(row, "users"), 3);
    csv = get_csv("/categories?range=24h&loc=all&format=csv&table=categories", "categories",
                  "categories");
    expect_csv_rows(csv, rows, "categories (from the HTML route)");
    free(csv);
    json_decref(d);

    /* blocked: by category, by policy and rule, by user (ties by name: '<' < 'b') */
    d = admin_json("/api/blocked?range=24h&loc=all");
    row = json_object_get(d, "summary");
    cr_expect_eq(ival(row, "requests"), c->requests);
    cr_expect_eq(ival(row, "blocked"), c->blocked);
    cr_expect_eq(ival(row, "users"), 3);
    cr_expect_eq(ival(row, "hosts"), 1);
    rows = json_object_get(d, "by_category");
    cr_assert_eq(json_array_size(rows), 1);
    cr_expect_eq(ival(row_of(rows, "category", "games"), "blocked"), c->blocked);
    rows = json_object_get(d, "by_policy");
    cr_assert_eq(json_array_size(rows), 2);
    row = json_array_get(rows, 0);
    cr_expect_str_eq(json_string_value(json_object_get(row, "access_policy")), "remote");
    cr_expect_str_eq(json_string_value(json_object_get(row, "rule")), "category");
    cr_expect_eq(ival(row, "blocked"), remote_blocked);
    cr_expect_eq(ival(row, "users"), 2);
    row = json_array_get(rows, 1);
    cr_expect_str_eq(json_string_value(json_object_get(row, "access_policy")), "office");
    cr_expect_eq(ival(row, "blocked"), c->blocked - remote_blocked);
    csv = get_csv("/api/blocked?format=csv&table=by_policy", "blocked", "by_policy");
    expect_csv_rows(csv, rows, "blocked by policy");
    free(csv);
    rows = json_object_get(d, "by_user");
    cr_assert_eq(json_array_size(rows), 3);
    {
        static const int order[] = {0, 3, 1};     /* alice 2, <script> 1, bob 1 */
        for (int k = 0; k < 3; k++) {
            row = json_array_get(rows, (size_t)k);
            cr_expect_str_eq(json_string_value(json_object_get(row, "user")),
                             users[order[k]].name);
            cr_expect_eq(ival(row, "blocked"), users[order[k]].blocked);
            cr_expect_eq(ival(row, "remote"), users[order[k]].remote);
            cr_expect_eq(ival(row, "hosts"), 1);
        }
    }
    csv = get_csv("/api/blocked?format=csv&table=by_user", "blocked", "by_user");
    expect_csv_rows(csv, rows, "blocked by user");
    cr_expect(strstr(csv, "\r\n" EVIL ",1,0,1\r\n") != NULL, "%s", csv);
    free(csv);
    csv = get_csv("/api/blocked?format=csv", "blocked", "summary");
    cr_expect(strncmp(csv, "requests,blocked,users,hosts\r\n", 30) == 0, "%s", csv);
    free(csv);
    json_decref(d);

    /* over time: every hour of the day, the sums are the traffic */
    d = admin_json("/api/timeline?range=24h&loc=all");
    {
        long long from = ival(d, "from"), to = ival(d, "to"), sum[5] = {0};
        size_t i, nonzero = 0;
        size_t want = (size_t)((to - from / 3600000 * 3600000 + 3599999) / 3600000);
        rows = json_object_get(d, "timeline");
        cr_expect_eq(ival(d, "bucket_ms"), 3600000);
        cr_expect_eq(json_array_size(rows), want, "%zu hours", json_array_size(rows));
        json_array_foreach(rows, i, row) {
            cr_expect_eq(ival(row, "time"), from / 3600000 * 3600000 + (long long)i * 3600000);
            sum[0] += ival(row, "requests");
            sum[1] += ival(row, "remote_requests");
            sum[2] += ival(row, "blocked");
            sum[3] += ival(row, "bytes");
            sum[4] += ival(row, "remote_bytes");
            nonzero += ival(row, "requests") > 0;
            cr_expect_eq(ival(row, "requests"),
                         ival(row, "remote_requests") + ival(row, "local_requests"));
            cr_expect_eq(ival(row, "blocked"),
                         ival(row, "remote_blocked") + ival(row, "local_blocked"));
        }
        cr_expect_eq(sum[0], c->requests);
        cr_expect_eq(sum[1], c->remote);
        cr_expect_eq(sum[2], c->blocked);
        cr_expect_eq(sum[3], c->bytes);
        cr_expect_eq(sum[4], c->remote_bytes);
        cr_expect(nonzero == 1 || nonzero == 2, "the traffic took seconds: %zu hours", nonzero);
    }
    csv = get_csv("/api/timeline?format=csv", "timeline", "timeline");
    expect_csv_rows(csv, rows, "timeline");
    free(csv);
    json_decref(d);

    /* by user location: 9 of 14 requests remote, 3 of 4 blocks */
    d = admin_json("/api/locations?range=24h&loc=all");
    rows = json_object_get(d, "locations");
    cr_assert_eq(json_array_size(rows), 2);
    row = json_array_get(rows, 0);
    cr_expect_str_eq(json_string_value(json_object_get(row, "location")), "remote");
    cr_expect_eq(ival(row, "requests"), remote_req);
    cr_expect_eq(ival(row, "blocked"), remote_blocked);
    cr_expect_eq(ival(row, "bytes"), c->remote_bytes);
    cr_expect_eq(ival(row, "users"), 2);
    cr_assert_eq(remote_req, 9);
    cr_assert_eq(c->requests, 14);
    cr_expect(json_real_value(json_object_get(row, "requests_share")) == 64.3, "%f",
              json_real_value(json_object_get(row, "requests_share")));
    cr_expect(json_real_value(json_object_get(row, "blocked_share")) == 75.0);
    row = json_array_get(rows, 1);
    cr_expect_str_eq(json_string_value(json_object_get(row, "location")), "local");
    cr_expect_eq(ival(row, "requests"), c->requests - remote_req);
    cr_expect(json_real_value(json_object_get(row, "requests_share")) == 35.7);
    cr_expect(json_real_value(json_object_get(row, "blocked_share")) == 25.0);
    csv = get_csv("/api/locations?format=csv", "locations", "locations");
    expect_csv_rows(csv, rows, "locations");
    cr_expect(strstr(csv, ",64.3,") != NULL && strstr(csv, ",75.0\r\n") != NULL, "%s", csv);
    free(csv);
    rows = json_object_get(d, "remote_domains");
    cr_assert_eq(json_array_size(rows), 2);
    row = row_of(rows, "host", "127.0.0.1");
    cr_expect_eq(ival(row, "requests"), users[0].allowed + users[1].allowed);
    cr_expect_eq(ival(row, "users"), 2);
    row = row_of(rows, "host", "games.test");
    cr_expect_eq(ival(row, "blocked"), remote_blocked);
    json_decref(d);

    /* every HTML table links to its CSV, and the link gives the API's CSV */
    {
        static const struct { const char *page, *api, *tables[4]; } pages[] = {
            {"/sites?range=24h&loc=all", "/api/sites", {"sites"}},
            {"/categories?range=24h&loc=all", "/api/categories", {"categories"}},
            {"/blocked?range=24h&loc=all", "/api/blocked",
             {"summary", "by_category", "by_policy", "by_user"}},
            {"/timeline?range=24h&loc=all", "/api/timeline", {"timeline"}},
            {"/locations?range=24h&loc=all", "/api/locations", {"locations", "remote_domains"}},
            {"/?range=24h&loc=all", "/api/dashboard",
             {"summary", "top_users", "top_categories", "top_blocked_hosts"}},
        };
        for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
            cr_assert_eq(admin_get(pages[i].page, &r), 200, "%s: %s", pages[i].page, r.body);
            cr_expect_null(strstr(r.body, "<script"), "%s", pages[i].page);
            for (size_t k = 0; k < 4 && pages[i].tables[k]; k++) {
                char want[512], link[512], api[512];
                const char *at, *q = strchr(pages[i].page, '?');
                char *from_link, *from_api;
                snprintf(want, sizeof want, "<a id=\"csv-%s\" href=\"%.*s?range=24h&amp;loc=all"
                         "&amp;format=csv&amp;table=%s\">CSV</a>", pages[i].tables[k],
                         (int)(q - pages[i].page), pages[i].page, pages[i].tables[k]);
                at = strstr(r.body, want);
                cr_expect_not_null(at, "%s lacks %s", pages[i].page, want);
                snprintf(link, sizeof link, "%.*s?range=24h&loc=all&format=csv&table=%s",
                         (int)(q - pages[i].page), pages[i].page, pages[i].tables[k]);
                snprintf(api, sizeof api, "%s?range=24h&loc=all&format=csv&table=%s",
                         pages[i].api, pages[i].tables[k]);
                from_link = get_csv(link, pages[i].api + 5, pages[i].tables[k]);
                from_api = get_csv(api, pages[i].api + 5, pages[i].tables[k]);
                if (strcmp(pages[i].tables[k], "summary") != 0 || i != 5)
                    cr_expect_str_eq(from_link, from_api, "%s", link);
                free(from_link);
                free(from_api);
            }
            resp_free(&r);
        }
        cr_assert_eq(admin_get("/sites", &r), 200);
        cr_expect(strstr(r.body, "<a id=\"csv-sites\" href=\"/sites?format=csv&amp;table=sites\">")
                  != NULL, "a page without parameters links to its CSV");
        resp_free(&r);
        cr_assert_eq(admin_get("/timeline?range=24h", &r), 200);
        cr_expect(strstr(r.body, "<svg class=\"chart\"") != NULL && strstr(r.body, "<rect ") != NULL,
                  "the timeline has its chart");
        resp_free(&r);
    }

    /* refusals */
    cr_expect_eq(admin_get("/api/blocked?format=csv&table=nope", &r), 400);
    cr_expect(strstr(r.body, "no table 'nope' (its tables: summary, by_category, by_policy, "
                             "by_user)") != NULL, "%s", r.body);
    resp_free(&r);
    cr_expect_eq(admin_get("/api/headends?format=csv", &r), 400);
    resp_free(&r);
    cr_expect_eq(admin_get("/api/sites?format=xml", &r), 400);
    resp_free(&r);
    cr_expect_eq(admin_get("/api/sites?by=size", &r), 400);
    resp_free(&r);
    cr_expect_eq(admin_get("/api/sites?limit=0", &r), 400);
    resp_free(&r);

    /* musctl report on the same store: the same documents, the same CSV */
    {
        static const char *const t_sites[] = {"sites"}, *const t_cats[] = {"categories"};
        static const char *const t_blocked[] = {"summary", "by_category", "by_policy", "by_user"};
        static const char *const t_time[] = {"timeline"};
        static const char *const t_loc[] = {"locations", "remote_domains"};
        static const char *const t_dash[] = {"top_users", "top_categories", "top_blocked_hosts"};
        expect_musctl_report("sites", "/api/sites?range=24h&loc=all", t_sites, 1, "");
        expect_musctl_report("sites", "/api/sites?range=7d&loc=remote&by=bytes", t_sites, 1,
                             "--by bytes");
        expect_musctl_report("categories", "/api/categories?range=24h&loc=local", t_cats, 1, "");
        expect_musctl_report("blocked", "/api/blocked?range=24h&loc=all", t_blocked, 4, "");
        expect_musctl_report("timeline", "/api/timeline?range=24h&loc=all", t_time, 1, "");
        expect_musctl_report("locations", "/api/locations?range=24h&loc=all", t_loc, 2, "");
        expect_musctl_report("dashboard", "/api/dashboard?range=24h&loc=all", t_dash, 3, "");
    }
}

/* musctl report's usage errors: status 2 and a message that says what. */
static void expect_musctl_report_refusals(void)
{
    static const struct { const char *args, *words; bool raw; } bad[] = {
        {"report", "which report?", false},
        {"report nope", "no report named 'nope'"},
        {"report sites extra", "one report at a time"},
        {"report sites --from yesterday", "time 'yesterday'"},
        {"report sites --from 2026-02-30", "no such date"},
        {"report sites --from now --to -1h", "must be before --to"},
        {"report sites --location vpn", "--location must be remote, local or all"},
        {"report sites --format xml", "--format must be json or csv"},
        {"report sites --table sites", "goes with --format csv"},
        {"report blocked --by bytes", "--by applies to the sites and categories"},
        {"report user", "needs --user NAME"},
        {"report sites --limit 0", "--limit must be a number from 1 to 1000"},
        {"report sites --host x", "filter the search report"},
        {"report search --decision maybe", "--decision must be"},
        {"report sites --db a --config b", "give one", true},
        {"report sites --bogus", "unknown option '--bogus'"},
        {"report sites --from", "--from needs a value", true},
        {"report sessions --format csv --table connected", "musctl map"},
        {"report timeline --from 2000-01-01", "the timeline holds at most 9600 hours"},
    };
    char args[2 * MP_PATH_MAX + 256], db[MP_PATH_MAX], *out, *err;

    mp_path(db, "musproxy.db");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i].raw)
            snprintf(args, sizeof args, "%s", bad[i].args);
        else
            snprintf(args, sizeof args, "%s --db '%s'", bad[i].args, db);
        cr_expect_eq(musctl_out(args, &out, &err), 2, "musctl %s", args);
        cr_expect(err != NULL && strstr(err, bad[i].words) != NULL, "musctl %s: %s", args,
                  err ? err : "(no stderr)");
        cr_expect_str_eq(out, "", "musctl %s printed something", args);
        free(out);
        free(err);
    }
    /* an unknown table is a usage error too; a missing store is status 1 */
    snprintf(args, sizeof args, "report blocked --format csv --table nope --config '%s'", g_cfg);
    cr_expect_eq(musctl_out(args, &out, &err), 2);
    cr_expect(err && strstr(err, "no table 'nope'") != NULL, "%s", err ? err : "");
    free(out);
    free(err);
    cr_expect_eq(musctl_out("report sites --db /nonexistent/store.db", &out, &err), 1);
    cr_expect(err && strstr(err, "/nonexistent/store.db: cannot open the transaction store for "
                                "reading") != NULL, "%s", err ? err : "");
    free(out);
    free(err);
    cr_expect_eq(musctl_out("report --help", &out, &err), 0);
    cr_expect(strstr(out, "  locations   ") != NULL && strstr(out, "  timeline    ") != NULL &&
              strstr(out, "TIME: now, -24h") != NULL, "%s", out);
    free(out);
    free(err);
}

Test(admin, reports_csv_and_musctl_report)
{
    counted_t c;

    start();
    send_mix(&c);
    wait_store(c.requests);
    expect_reports(&c);
    expect_musctl_report_refusals();
}

/* A session cookie as the login sets it: 64 hex digits, HttpOnly,
 * SameSite=Strict, Path=/, Secure exactly when on HTTPS, no lifetime of its
 * own (the server ends it). */
static void expect_session_cookie(const resp_t *r, bool secure)
{
    char line[512];
    const char *v;

    cr_assert(set_cookie(r, "musproxy_session", line, sizeof line), "%s", r->headers);
    v = line + strlen("musproxy_session=");
    cr_expect_eq(strcspn(v, ";"), 64, "%s", line);
    cr_expect_eq(strspn(v, "0123456789abcdef"), 64, "%s", line);
    cr_expect(cookie_attr(line, "HttpOnly"), "%s", line);
    cr_expect(cookie_attr(line, "SameSite=Strict"), "%s", line);
    cr_expect(cookie_attr(line, "Path=/"), "%s", line);
    cr_expect_eq(cookie_attr(line, "Secure"), secure, "%s", line);
    cr_expect_null(strcasestr(line, "Max-Age"), "%s", line);
    cr_expect_null(strcasestr(line, "Expires"), "%s", line);
    cr_expect_null(strcasestr(line, "Domain"), "%s", line);
}

/* What a page request without a session gets: 303 to the login form. */
static void expect_to_login(const char *path, const req_t *q)
{
    char url[256], loc[256];
    resp_t r;

    cr_expect_eq(fetch(admin_url(url, sizeof url, path), q, &r), 303, "%s: %ld", path, r.status);
    cr_expect(header_n(&r, "Location", 0, loc, sizeof loc) && strcmp(loc, "/login") == 0,
              "%s: %s", path, r.headers);
    cr_expect_null(strstr(r.body, "id=\"requests\""));
    expect_security_headers(&r);
    resp_free(&r);
}

Test(admin, logins_headers_and_csrf)
{
    char url[256], line[512], body[512];
    resp_t r;
    login_t s;
    req_t none = {0}, wrong = {.userpwd = "admin:wrong"}, nobody = {.userpwd = "root:correct horse"};
    req_t basic = {.userpwd = "admin:correct horse"};

    start();
    /* no page without a session, whatever else comes along */
    expect_to_login("/", &none);
    expect_to_login("/sites?range=24h", &none);
    expect_to_login("/trace", &none);
    expect_to_login("/", &basic);                       /* Basic is for the API only */
    {
        req_t forged = {.cookie = "musproxy_session=00112233445566778899aabbccddeeff"
                                  "00112233445566778899aabbccddeeff"};
        expect_to_login("/", &forged);
        forged.cookie = "musproxy_session=not-a-session";
        expect_to_login("/", &forged);
    }
    /* no API without a session or Basic credentials: 401 JSON */
    cr_expect_eq(fetch(admin_url(url, sizeof url, "/api/dashboard"), &none, &r), 401);
    cr_expect(strstr(r.body, "\"error\": \"login required\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.headers, "Content-Type: application/json") != NULL, "%s", r.headers);
    cr_expect(strstr(r.headers, "WWW-Authenticate: Basic realm=\"musproxy admin\"") != NULL,
              "%s", r.headers);
    expect_security_headers(&r);
    resp_free(&r);
    cr_expect_eq(fetch(url, &wrong, &r), 401);
    resp_free(&r);
    cr_expect_eq(fetch(url, &nobody, &r), 401);
    resp_free(&r);
    cr_expect_eq(fetch(url, &basic, &r), 200);
    resp_free(&r);

    /* the login form needs no session; its token cookie is HttpOnly too */
    cr_assert_eq(fetch(admin_url(url, sizeof url, "/login"), &none, &r), 200);
    cr_expect(strstr(r.body, "<form id=\"login\" method=\"post\" action=\"/login\">") != NULL,
              "%s", r.body);
    cr_assert(set_cookie(&r, "musproxy_login", line, sizeof line), "%s", r.headers);
    cr_expect(cookie_attr(line, "HttpOnly") && cookie_attr(line, "SameSite=Strict") &&
              cookie_attr(line, "Path=/login") && !cookie_attr(line, "Secure"), "%s", line);
    expect_security_headers(&r);
    resp_free(&r);

    /* the right password: 303 to the dashboard with the session cookie */
    cr_assert_eq(login_as(NULL, "admin", "correct horse", &s, &r), 303, "%s", r.body);
    cr_expect(header_n(&r, "Location", 0, line, sizeof line) && strcmp(line, "/") == 0, "%s",
              r.headers);
    expect_session_cookie(&r, false);
    cr_expect(set_cookie(&r, "musproxy_login", line, sizeof line) &&
              cookie_attr(line, "Max-Age=0"), "the login form's cookie is dropped: %s", r.headers);
    resp_free(&r);
    {
        req_t q = {.cookie = s.cookie};
        cr_assert_eq(fetch(admin_url(url, sizeof url, "/"), &q, &r), 200);
        cr_expect(strstr(r.body, "<span class=\"who\">admin</span>") != NULL, "%s", r.body);
        cr_expect(strstr(r.body, "action=\"/logout\"") != NULL);
        cr_expect_null(strstr(r.body, s.cookie + strlen("musproxy_session=")),
                      "the session id is not on the page");
        resp_free(&r);
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/api/dashboard"), &q, &r), 200,
                     "the API takes the session too");
        resp_free(&r);
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/login"), &q, &r), 303,
                     "logged in already: on to the dashboard");
        resp_free(&r);
    }

    /* a wrong password: refused, no session, logged without the password */
    cr_expect_eq(login_as(NULL, "admin", "Tr0ub4dor&3", NULL, &r), 401);
    cr_expect_not(set_cookie(&r, "musproxy_session", line, sizeof line), "%s", r.headers);
    cr_expect(strstr(r.body, "Wrong user name or password.") != NULL, "%s", r.body);
    resp_free(&r);
    cr_expect_eq(login_as(NULL, "nobody", "correct horse", NULL, NULL), 401);
    {
        char *log = mp_proc_stderr(&g_proxy);
        cr_expect(strstr(log, "admin: failed login as 'admin' from 127.0.0.1 (1 of 5)") != NULL,
                  "%s", log);
        cr_expect(strstr(log, "admin: failed login as 'nobody' from 127.0.0.1 (2 of 5)") != NULL,
                  "%s", log);
        cr_expect(strstr(log, "admin: admin logged in from 127.0.0.1") != NULL, "%s", log);
        cr_expect_null(strstr(log, "Tr0ub4dor"), "the password is in the log");
        cr_expect_null(strstr(log, "correct horse"), "the password is in the log");
        free(log);
    }

    /* the login form's own token: missing, wrong, or without its cookie: 403 */
    {
        char cookie[160], token[128];
        req_t q = {0};
        cr_assert_eq(fetch(admin_url(url, sizeof url, "/login"), &q, &r), 200);
        cr_assert(set_cookie(&r, "musproxy_login", line, sizeof line));
        cookie_pair(line, cookie, sizeof cookie);
        hidden_csrf(r.body, token, sizeof token);
        resp_free(&r);
        q = (req_t){.origin = admin_origin(), .cookie = cookie,
                    .post = "user=admin&password=correct+horse"};
        cr_expect_eq(fetch(url, &q, &r), 403, "no token");
        cr_expect_not(set_cookie(&r, "musproxy_session", line, sizeof line));
        resp_free(&r);
        snprintf(body, sizeof body, "user=admin&password=correct+horse&csrf=%.63s0", token);
        q.post = body;
        cr_expect_eq(fetch(url, &q, &r), 403, "a wrong token");
        resp_free(&r);
        snprintf(body, sizeof body, "user=admin&password=correct+horse&csrf=%s", token);
        q.cookie = NULL;
        cr_expect_eq(fetch(url, &q, &r), 403, "the token without its cookie");
        resp_free(&r);
        q.cookie = cookie;
        q.origin = "http://evil.example";
        cr_expect_eq(fetch(url, &q, &r), 403, "a cross-site login");
        resp_free(&r);
        q.origin = admin_origin();
        q.extra = "Sec-Fetch-Site: cross-site";
        cr_expect_eq(fetch(url, &q, &r), 403, "a cross-site login (the browser says)");
        resp_free(&r);
        q.extra = NULL;
        cr_expect_eq(fetch(url, &q, &r), 303, "the same form, right");
        resp_free(&r);
    }

    /* the failed-login limit, from an address of its own: 5 failures lock it,
     * form and Basic alike, and it is logged */
    {
        req_t bad = {.from = "127.0.0.9", .userpwd = "admin:guess"};
        req_t good = {.from = "127.0.0.9", .userpwd = "admin:correct horse"};
        for (int i = 0; i < 4; i++)
            cr_expect_eq(login_as("127.0.0.9", "admin", "guess", NULL, NULL), 401, "failure %d",
                         i + 1);
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/api/dashboard"), &bad, &r), 401,
                     "failure 5 (Basic)");
        resp_free(&r);
        cr_expect_eq(login_as("127.0.0.9", "admin", "guess", NULL, &r), 429);
        cr_expect(strstr(r.headers, "Retry-After: ") != NULL, "%s", r.headers);
        resp_free(&r);
        cr_expect_eq(login_as("127.0.0.9", "admin", "correct horse", NULL, &r), 429,
                     "the right password gets through a lockout");
        cr_expect_not(set_cookie(&r, "musproxy_session", line, sizeof line));
        resp_free(&r);
        cr_expect_eq(fetch(url, &good, &r), 429, "nor do Basic credentials");
        resp_free(&r);
        cr_expect_eq(login_as(NULL, "admin", "correct horse", NULL, NULL), 303,
                     "another address is not locked out");
        char *log = mp_proc_stderr(&g_proxy);
        cr_expect(strstr(log, "admin: failed login as 'admin' from 127.0.0.9 (4 of 5)") != NULL,
                  "%s", log);
        cr_expect(strstr(log, "admin: 5 failed logins from 127.0.0.9: refused for 60 s") != NULL,
                  "%s", log);
        free(log);
    }

    /* the Host check: a name that resolves to us but is not ours */
    {
        req_t q = {.cookie = s.cookie, .host = "evil.example:80"};
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/"), &q, &r), 421);
        resp_free(&r);
        q.host = "localhost";
        cr_expect_eq(fetch(url, &q, &r), 421, "localhost without our port");
        resp_free(&r);
        q.cookie = NULL;
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/login"), &q, &r), 421, "nor the login");
        resp_free(&r);
    }

    /* CSRF: the trace POST needs the session's token and our origin */
    {
        char origin[64], post[512];
        req_t q = {.cookie = s.cookie, .origin = admin_origin(),
                   .post = "ip=127.0.0.2&url=http%3A%2F%2Fgames.test%2F"};
        snprintf(origin, sizeof origin, "%s", admin_origin());
        snprintf(post, sizeof post, "ip=127.0.0.2&url=http%%3A%%2F%%2Fgames.test%%2F&csrf=%s",
                 s.csrf);
        admin_url(url, sizeof url, "/trace");
        cr_expect_eq(fetch(url, &q, &r), 403, "no CSRF token");
        cr_expect(strstr(r.body, "CSRF token") != NULL, "%s", r.body);
        resp_free(&r);
        snprintf(body, sizeof body, "ip=127.0.0.2&url=http%%3A%%2F%%2Fgames.test%%2F&csrf=%.63s%c",
                 s.csrf, s.csrf[63] == '0' ? '1' : '0');
        q.post = body;
        cr_expect_eq(fetch(url, &q, &r), 403, "a wrong CSRF token");
        resp_free(&r);
        {
            login_t other;
            cr_assert_eq(login_as(NULL, "admin", "correct horse", &other, NULL), 303);
            cr_expect_str_neq(other.csrf, s.csrf, "each login has its own token");
            snprintf(body, sizeof body, "ip=127.0.0.2&url=http%%3A%%2F%%2Fgames.test%%2F&csrf=%s",
                     other.csrf);
            cr_expect_eq(fetch(url, &q, &r), 403, "another session's token");
            resp_free(&r);
        }
        q.post = post;
        q.origin = NULL;
        cr_expect_eq(fetch(url, &q, &r), 403, "a POST without Origin or Referer");
        resp_free(&r);
        q.origin = "http://evil.example";
        cr_expect_eq(fetch(url, &q, &r), 403, "a cross-site POST, even with the token");
        resp_free(&r);
        q.origin = origin;
        cr_expect_eq(fetch(url, &q, &r), 200, "%s", r.body);
        cr_expect(strstr(r.body, "<td id=\"trace-action\">") != NULL, "%s", r.body);
        expect_security_headers(&r);
        resp_free(&r);
        /* a browser's own word: Origin null (no-referrer) from our page is
         * same-origin; cross-site is refused whatever Origin says */
        q.origin = "null";
        cr_expect_eq(fetch(url, &q, &r), 403, "Origin null without Sec-Fetch-Site");
        resp_free(&r);
        q.extra = "Sec-Fetch-Site: same-origin";
        cr_expect_eq(fetch(url, &q, &r), 200, "a browser's same-origin form POST: %s", r.body);
        resp_free(&r);
        q.origin = origin;
        q.extra = "Sec-Fetch-Site: cross-site";
        cr_expect_eq(fetch(url, &q, &r), 403, "Sec-Fetch-Site: cross-site");
        resp_free(&r);
        q.extra = NULL;
        snprintf(body, sizeof body, "ip=127.0.0.2&url=x&evil=1&csrf=%s", s.csrf);
        q.post = body;
        cr_expect_eq(fetch(url, &q, &r), 400, "an unknown form field");
        resp_free(&r);
        /* the token never goes in a link */
        snprintf(body, sizeof body, "/trace?csrf=%s", s.csrf);
        cr_expect_eq(admin_get(body, &r), 400);
        resp_free(&r);
        /* the API with Basic credentials has no session and no token: the
         * origin check alone stands */
        {
            req_t b = {.userpwd = "admin:correct horse", .origin = origin,
                       .post = "ip=127.0.0.2&url=http%3A%2F%2Fgames.test%2F"};
            cr_expect_eq(fetch(admin_url(url, sizeof url, "/api/trace"), &b, &r), 200, "%s",
                         r.body);
            resp_free(&r);
            b.origin = "http://evil.example";
            cr_expect_eq(fetch(url, &b, &r), 403);
            resp_free(&r);
            /* and the API with the session needs the token like a page */
            req_t j = {.cookie = s.cookie, .origin = origin,
                       .post = "ip=127.0.0.2&url=http%3A%2F%2Fgames.test%2F"};
            cr_expect_eq(fetch(url, &j, &r), 403);
            cr_expect(strstr(r.body, "\"status\": 403") != NULL, "%s", r.body);
            resp_free(&r);
            j.post = post;
            cr_expect_eq(fetch(url, &j, &r), 200, "%s", r.body);
            resp_free(&r);
        }
        /* GET cannot run the API's trace; unknown pages and methods */
        cr_expect_eq(admin_get("/api/trace?ip=127.0.0.2&url=x", &r), 405);
        resp_free(&r);
        q.post = post;
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/api/dashboard"), &q, &r), 405);
        resp_free(&r);
        cr_expect_eq(admin_get("/etc/passwd", &r), 404);
        resp_free(&r);
        cr_expect_eq(admin_get("/?evil=1", &r), 400);
        cr_expect(strstr(r.body, "unknown parameter &#39;evil&#39;") != NULL, "%s", r.body);
        resp_free(&r);
    }

    /* logout: needs the token; then the old cookie is refused everywhere */
    {
        char logout[128];
        req_t q = {.cookie = s.cookie, .origin = admin_origin(), .post = "csrf=0"};
        admin_url(url, sizeof url, "/logout");
        cr_expect_eq(fetch(url, &q, &r), 403, "a logout without the token");
        resp_free(&r);
        q.post = NULL;
        cr_expect_eq(fetch(url, &q, &r), 405, "GET /logout");
        resp_free(&r);
        snprintf(logout, sizeof logout, "csrf=%s", s.csrf);
        q.post = logout;
        q.origin = "http://evil.example";
        cr_expect_eq(fetch(url, &q, &r), 403, "a cross-site logout");
        resp_free(&r);
        q.origin = admin_origin();
        cr_expect_eq(fetch(url, &q, &r), 303);
        cr_expect(header_n(&r, "Location", 0, line, sizeof line) && strcmp(line, "/login") == 0,
                  "%s", r.headers);
        cr_expect(set_cookie(&r, "musproxy_session", line, sizeof line) &&
                  cookie_attr(line, "Max-Age=0") && strncmp(line, "musproxy_session=;", 18) == 0,
                  "the cookie is cleared: %s", r.headers);
        resp_free(&r);
        q = (req_t){.cookie = s.cookie};
        expect_to_login("/", &q);
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/api/dashboard"), &q, &r), 401,
                     "the old cookie on the API");
        resp_free(&r);
        char *log = mp_proc_stderr(&g_proxy);
        cr_expect(strstr(log, "admin: admin logged out") != NULL, "%s", log);
        free(log);
    }
}

/* admin.session_idle and session_max: a login ends after the idle time
 * without a request, and at the absolute limit however busy; a password
 * changed in the file ends that account's sessions, not the others'. */
Test(admin, sessions_expire_and_end)
{
    char admin[2048], url[256];
    login_t s, v;
    resp_t r;

    g_oport = mp_origin_start(&g_origin, "origin", NULL, NULL);
    cr_assert_gt(g_oport, 0);
    g_aport = mp_free_port();
    g_hport = mp_free_port();
    mp_path(g_sock, "musproxy.sock");
    mp_path(g_log, "access.log");
    mp_path(g_apw, "admin.passwd");
    mp_path(g_upw, "users.passwd");
    passwd(g_apw, "admin", "correct horse");
    passwd(g_apw, "viewer", "viewer-pw");
    passwd(g_upw, "alice", "alice-pw");
    snprintf(admin, sizeof admin, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n"
             "  session_idle: 2s\n  session_max: 5s\n", g_aport, g_apw);
    write_config(admin);
    cr_assert_eq(mp_proxy_start(&g_proxy, g_cfg, g_pport), 0);
    cr_assert_eq(mp_wait_port(g_aport, 5000), 0, "the admin UI did not listen");

    /* idle: used within 2 s it lives; left alone 2 s it ends */
    cr_assert_eq(login_as(NULL, "admin", "correct horse", &s, NULL), 303);
    for (int i = 0; i < 2; i++) {
        mp_sleep_ms(1200);
        req_t q = {.cookie = s.cookie};
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/store"), &q, &r), 200, "request %d", i);
        resp_free(&r);
    }
    mp_sleep_ms(2300);
    {
        req_t q = {.cookie = s.cookie};
        expect_to_login("/store", &q);
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/api/store"), &q, &r), 401);
        resp_free(&r);
    }

    /* absolute: a request every second keeps it from idling, not past 5 s */
    {
        long long t0 = mp_now_ms();
        int ok = 0;
        cr_assert_eq(login_as(NULL, "admin", "correct horse", &s, NULL), 303);
        for (;;) {
            req_t q = {.cookie = s.cookie};
            mp_sleep_ms(900);
            long st = fetch(admin_url(url, sizeof url, "/store"), &q, &r);
            resp_free(&r);
            if (st != 200)
                break;
            ok++;
            cr_assert_lt(mp_now_ms() - t0, 7000, "the session outlived session_max");
        }
        cr_expect_geq(ok, 3, "the busy session ended early (%d requests)", ok);
        cr_expect_geq(mp_now_ms() - t0, 4500, "ended before session_max");
    }

    /* a new password for admin ends admin's sessions; viewer's stays */
    cr_assert_eq(login_as(NULL, "admin", "correct horse", &s, NULL), 303);
    cr_assert_eq(login_as(NULL, "viewer", "viewer-pw", &v, NULL), 303);
    passwd(g_apw, "admin", "new horse");
    {
        bool gone = false;
        for (int i = 0; i < 15 && !gone; i++) {
            req_t q = {.cookie = s.cookie}, w = {.cookie = v.cookie};
            mp_sleep_ms(300);
            long st = fetch(admin_url(url, sizeof url, "/store"), &q, &r);
            resp_free(&r);
            gone = st == 303;
            cr_assert_eq(fetch(admin_url(url, sizeof url, "/store"), &w, &r), 200,
                         "viewer's session ended too");
            resp_free(&r);
        }
        cr_expect(gone, "admin's session outlived the password change");
    }
    cr_expect_eq(login_as(NULL, "admin", "correct horse", NULL, NULL), 401, "the old password");
    cr_expect_eq(login_as(NULL, "admin", "new horse", NULL, NULL), 303, "the new one");
    {
        char *log = mp_proc_stderr(&g_proxy);
        cr_expect(strstr(log, "admin: the password of admin changed or was removed: 1 session "
                              "ended") != NULL, "%s", log);
        free(log);
    }
}

/* What the trace form answers, next to `musctl trace` for the same request. */
static void expect_same_trace(const char *ip, const char *url_enc, const char *url)
{
    char origin[64], body[512], args[4096], u[256];
    req_t q = {.userpwd = "admin:correct horse", .origin = origin, .post = body};
    json_t *ui, *cli, *ans;
    json_error_t je;
    resp_t r;
    const char *key;
    json_t *v;

    snprintf(origin, sizeof origin, "http://127.0.0.1:%d", g_aport);
    snprintf(body, sizeof body, "ip=%s&url=%s", ip, url_enc);
    cr_assert_eq(fetch(admin_url(u, sizeof u, "/api/trace"), &q, &r), 200, "%s", r.body);
    ui = json_loads(r.body, 0, &je);
    cr_assert_not_null(ui, "%s", je.text);
    resp_free(&r);
    snprintf(args, sizeof args, "trace --socket '%s' --json --ip %s --url '%s'", g_sock, ip, url);
    cli = musctl_json(args);
    ans = json_object_get(ui, "answer");
    cr_assert(json_is_object(ans));
    cr_expect(json_equal(ans, cli), "the UI's trace differs from musctl trace for %s %s", ip, url);
    cr_expect_str_eq(json_string_value(json_object_get(ans, "action")),
                     json_string_value(json_object_get(cli, "action")));
    /* and the HTML form shows each field of it (a page: the session and its token) */
    if (g_login.cookie[0] == '\0')
        cr_assert_eq(login_as(NULL, "admin", "correct horse", &g_login, NULL), 303);
    snprintf(body, sizeof body, "ip=%s&url=%s&csrf=%s", ip, url_enc, g_login.csrf);
    q = (req_t){.cookie = g_login.cookie, .origin = origin, .post = body};
    cr_assert_eq(fetch(admin_url(u, sizeof u, "/trace"), &q, &r), 200, "%s", r.body);
    json_object_foreach(cli, key, v) {
        if (!json_is_string(v))
            continue;
        char cellv[600];
        snprintf(cellv, sizeof cellv, "<td id=\"trace-%s\">%s</td>", key, json_string_value(v));
        cr_expect(strstr(r.body, cellv) != NULL, "the trace page lacks %s", cellv);
    }
    resp_free(&r);
    json_decref(ui);
    json_decref(cli);
}

Test(admin, trace_form_answers_like_musctl)
{
    start();
    expect_same_trace("127.0.0.2", "http%3A%2F%2Fgames.test%2Fx", "http://games.test/x");
    expect_same_trace("127.0.0.4", "http%3A%2F%2Fgames.test%2Fx", "http://games.test/x");
    {
        char u[128], enc[256];
        snprintf(u, sizeof u, "http://127.0.0.1:%d/size/5", g_oport);
        snprintf(enc, sizeof enc, "http%%3A%%2F%%2F127.0.0.1%%3A%d%%2Fsize%%2F5", g_oport);
        expect_same_trace("127.0.0.3", enc, u);
    }
}

Test(admin, headend_page_shows_the_status)
{
    char args[MP_PATH_MAX + 64];
    json_t *st, *h, *d, *ph;
    resp_t r;

    start();
    snprintf(args, sizeof args, "status --json --socket '%s'", g_sock);
    /* the session to the (absent) headend has failed once and waits 60 s */
    for (int i = 0; i < 100; i++) {
        st = musctl_json(args);
        h = json_array_get(json_object_get(st, "headends"), 0);
        if (h && json_string_length(json_object_get(h, "last_error")) > 0 &&
            strcmp(json_string_value(json_object_get(h, "state")), "idle") == 0)
            break;
        json_decref(st);
        st = NULL;
        mp_sleep_ms(50);
    }
    cr_assert_not_null(st, "the headend session never failed");
    d = admin_json("/api/headends");
    ph = json_array_get(json_object_get(d, "headends"), 0);
    cr_assert_not_null(ph);
    static const char *const keys[] = {"name", "state", "address", "last_error"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_expect_str_eq(json_string_value(json_object_get(ph, keys[i])),
                         json_string_value(json_object_get(h, keys[i])), "%s", keys[i]);
    cr_expect_eq(json_integer_value(json_object_get(ph, "reconnects")),
                 json_integer_value(json_object_get(h, "reconnects")));
    cr_expect_eq(json_integer_value(json_object_get(ph, "entries")), 0);
    cr_assert_eq(admin_get("/headends", &r), 200);
    {
        char row[1024], esc[1024];
        snprintf(row, sizeof row, "<tr><td>lab-asa</td><td>%s</td><td>%s</td>",
                 json_string_value(json_object_get(h, "state")),
                 json_string_value(json_object_get(h, "address")));
        cr_expect(strstr(r.body, row) != NULL, "no %s in\n%s", row, r.body);
        html_escape(json_string_value(json_object_get(h, "last_error")), esc, sizeof esc);
        cr_expect(strstr(r.body, esc) != NULL, "the page lacks the last error %s", esc);
    }
    resp_free(&r);
    json_decref(d);
    json_decref(st);
}

/* Remote users from a real mus-headend: who is connected now, on the page
 * and in the API, is what `musctl map` says. */
Test(admin, sessions_page_shows_the_vpn_users)
{
    static mp_proc_t headend;
    char cert[MP_PATH_MAX], key[MP_PATH_MAX], feed[MP_PATH_MAX], sessions[MP_PATH_MAX];
    char listen[64], args[MP_PATH_MAX + 64];
    json_t *d, *m, *row, *mrow;
    resp_t r;

    cr_assert_eq(mp_make_certs(g_ca, cert, key), 0);
    mp_path(g_secret, "mus.secret");
    cr_assert_eq(mp_write_file(g_secret, "correct horse battery staple\n"), 0);
    chmod(g_secret, 0600);
    mp_path(feed, "feed.sock");
    mp_path(sessions, "sessions.jsonl");
    cr_assert_eq(mp_write_file(sessions,
        "{\"sid\":\"s-alice\",\"ips\":[\"127.0.0.2\"],\"id\":{\"type\":\"user\",\"name\":\"alice\","
        "\"domain\":\"CORP\"},\"groups\":[\"eng\"],\"started\":1763800000,"
        "\"client_ip\":\"198.51.100.7\",\"tunnel\":\"ssl\"}\n"), 0);
    g_hport = mp_free_port();
    snprintf(listen, sizeof listen, "127.0.0.1:%d", g_hport);
    char *argv[] = {(char *)bin("HEADEND_BIN"), "--cert", cert, "--key", key, "--password-file",
                    g_secret, "--listen", listen, "--socket", feed, "--sessions", sessions,
                    "--kdf-iter", "10000", "--server-id", "lab-asa", NULL};
    cr_assert_eq(mp_proc_start(&headend, "mus-headend", argv, NULL), 0);
    cr_assert_eq(mp_wait_port(g_hport, 5000), 0, "mus-headend did not listen");
    start();
    snprintf(args, sizeof args, "map --json --socket '%s'", g_sock);
    m = NULL;
    for (int i = 0; i < 100; i++) {
        m = musctl_json(args);
        if (json_array_size(json_object_get(m, "entries")) == 1)
            break;
        json_decref(m);
        m = NULL;
        mp_sleep_ms(50);
    }
    cr_assert_not_null(m, "alice never reached the map");
    mrow = json_array_get(json_object_get(m, "entries"), 0);
    d = admin_json("/api/sessions");
    cr_expect_eq(json_integer_value(json_object_get(d, "connected_total")), 1);
    row = json_array_get(json_object_get(d, "connected"), 0);
    cr_assert_not_null(row);
    cr_expect(json_equal(row, mrow), "the page's entry differs from musctl map");
    cr_expect_str_eq(json_string_value(json_object_get(row, "name")), "alice");
    cr_expect_str_eq(json_string_value(json_object_get(row, "ip")), "127.0.0.2");
    cr_expect_str_eq(json_string_value(json_object_get(row, "client_ip")), "198.51.100.7");
    cr_expect_str_eq(json_string_value(json_object_get(row, "headend")), "lab-asa");
    json_decref(d);
    json_decref(m);
    cr_assert_eq(admin_get("/sessions", &r), 200);
    cr_expect(strstr(r.body, ">alice</a></td><td>CORP</td><td>user</td><td>127.0.0.2</td>"
                             "<td>198.51.100.7</td><td>lab-asa</td>") != NULL, "%s", r.body);
    resp_free(&r);
    /* and the headend page says the session is up */
    d = admin_json("/api/headends");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(d, "headends"), 0),
                                                       "state")), "established");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(json_object_get(d, "headends"), 0),
                                                    "entries")), 1);
    json_decref(d);
}

/* Until musproxy's log has want (5 s). */
static void wait_log(const char *want)
{
    for (int i = 0; i < 100; i++) {
        char *log = mp_proc_stderr(&g_proxy);
        bool found = strstr(log, want) != NULL;
        free(log);
        if (found)
            return;
        mp_sleep_ms(50);
    }
    char *log = mp_proc_stderr(&g_proxy);
    cr_assert_fail("no '%s' in the log:\n%s", want, log);
}

static void wait_service(const char *name, const char *want);
static const char *service_state(json_t *st, const char *name, const char **error);

/* A reload with the admin section yaml leaves the admin row failed, its
 * reason containing why, while the proxy serves on. */
static void reload_fails(const char *yaml, const char *why_part)
{
    char args[MP_PATH_MAX + 64];
    const char *why;
    json_t *st;

    write_config(yaml);
    if (g_for_nobody)
        chmod(g_cfg, 0644);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    wait_service("admin", "failed");
    snprintf(args, sizeof args, "status --json --socket '%s'", g_sock);
    st = musctl_json(args);
    service_state(st, "admin", &why);
    cr_expect(strstr(why, why_part) != NULL, "%s", why);
    cr_expect_str_eq(service_state(st, "workers", &why), "running");
    json_decref(st);
}

/* admin.tls_cert and tls_key: HTTPS with a certificate made here (openssl
 * CLI, for 127.0.0.1), checked by curl against its CA; Secure cookies,
 * https:// origins; plain HTTP to the port gets no answer; a certificate
 * renewed on disk is taken at a reload; a key that is not the
 * certificate's leaves the UI failed with the reason. */
Test(admin, https_listener)
{
    char cert[MP_PATH_MAX], key[MP_PATH_MAX], more[2 * MP_PATH_MAX + 64], url[256], line[512];
    char body[512], yaml[4 * MP_PATH_MAX], cakey[MP_PATH_MAX];
    login_t s;
    resp_t r;

    cr_assert_eq(mp_make_certs(g_admin_ca, cert, key), 0);
    snprintf(more, sizeof more, "  tls_cert: %s\n  tls_key: %s\n", cert, key);
    start_admin(more);
    wait_log("admin UI on https://127.0.0.1:");

    /* the login over HTTPS: every cookie Secure */
    {
        req_t q = {0};
        cr_assert_eq(fetch(admin_url(url, sizeof url, "/login"), &q, &r), 200);
        cr_assert(set_cookie(&r, "musproxy_login", line, sizeof line), "%s", r.headers);
        cr_expect(cookie_attr(line, "Secure"), "%s", line);
        resp_free(&r);
    }
    cr_assert_eq(login_as(NULL, "admin", "correct horse", &s, &r), 303, "%s", r.body);
    expect_session_cookie(&r, true);
    resp_free(&r);
    {
        req_t q = {.cookie = s.cookie};
        cr_assert_eq(fetch(admin_url(url, sizeof url, "/store"), &q, &r), 200);
        cr_expect(strstr(r.body, "id=\"written\"") != NULL, "%s", r.body);
        resp_free(&r);
        /* the origin a browser sends is https://; http:// is another origin */
        snprintf(body, sizeof body, "ip=127.0.0.2&url=http%%3A%%2F%%2Fgames.test%%2F&csrf=%s",
                 s.csrf);
        q = (req_t){.cookie = s.cookie, .post = body, .origin = admin_origin()};
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/trace"), &q, &r), 200, "%s", r.body);
        resp_free(&r);
        snprintf(line, sizeof line, "http://127.0.0.1:%d", g_aport);
        q.origin = line;
        cr_expect_eq(fetch(url, &q, &r), 403, "an http:// origin on the HTTPS UI");
        resp_free(&r);
        req_t b = {.userpwd = "admin:correct horse"};
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/metrics"), &b, &r), 200);
        resp_free(&r);
    }
    /* plain HTTP to the TLS port: no HTTP answer */
    {
        req_t q = {0};
        snprintf(url, sizeof url, "http://127.0.0.1:%d/login", g_aport);
        CURLcode rc = perform(url, &q, &r);
        cr_expect_neq(rc, CURLE_OK, "plain HTTP got an answer: %ld", r.status);
        cr_expect_eq(r.status, 0);
        resp_free(&r);
    }
    /* curl checks the certificate: against the system's CAs it fails */
    {
        char ca[MP_PATH_MAX];
        req_t q = {0};
        snprintf(ca, sizeof ca, "%s", g_admin_ca);
        snprintf(g_admin_ca, sizeof g_admin_ca, "/etc/ssl/certs/ca-certificates.crt");
        CURLcode rc = perform(admin_url(url, sizeof url, "/login"), &q, &r);
        cr_expect_eq(rc, CURLE_PEER_FAILED_VERIFICATION, "%s", curl_easy_strerror(rc));
        resp_free(&r);
        snprintf(g_admin_ca, sizeof g_admin_ca, "%s", ca);
    }

    /* renewed on disk (a new CA and certificate): a reload serves the new one */
    cr_assert_eq(mp_make_certs(g_admin_ca, cert, key), 0);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    wait_log("reload: the admin UI's certificate or key changed on disk: restarting it");
    wait_service("admin", "running");
    cr_expect_eq(login_as(NULL, "admin", "correct horse", NULL, NULL), 303,
                 "the new certificate, checked against the new CA");

    /* a key that is not the certificate's: failed, with the reason */
    mp_path(cakey, "ca.key");
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n"
             "  tls_cert: %s\n  tls_key: %s\n", g_aport, g_apw, cert, cakey);
    reload_fails(yaml, "is not the key of the certificate in");
    cr_expect_neq(mp_wait_port(g_aport, 300), 0, "the admin UI still listens");
    /* and the key put right: back */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n"
             "  tls_cert: %s\n  tls_key: %s\n", g_aport, g_apw, cert, key);
    write_config(yaml);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    wait_service("admin", "running");
    cr_expect_eq(login_as(NULL, "admin", "correct horse", NULL, NULL), 303);
    mp_proc_stop(&g_proxy, SIGTERM, 5000);
    mp_proc_stop(&g_origin, SIGTERM, 5000);
}

/* A key only root may read works: musproxy started as root with run.user
 * nobody reads it before the privilege drop and serves HTTPS as nobody.
 * A reload that must read it again (its section changed) cannot, and the
 * UI is failed with the reason while the proxy serves on. Needs root. */
Test(admin, https_key_only_root_reads)
{
    char cert[MP_PATH_MAX], key[MP_PATH_MAX], more[2 * MP_PATH_MAX + 64], yaml[4 * MP_PATH_MAX];

    if (getuid() != 0)
        cr_skip_test("needs root");
    cr_assert_eq(chmod(mp_tmpdir(), 01777), 0);   /* nobody makes the control socket here */
    cr_assert_eq(mp_make_certs(g_admin_ca, cert, key), 0);
    cr_assert_eq(chmod(key, 0600), 0);
    snprintf(more, sizeof more, "  tls_cert: %s\n  tls_key: %s\nrun: { user: nobody }\n", cert,
             key);
    g_for_nobody = true;
    start_admin(more);
    wait_log("admin UI on https://127.0.0.1:");
    {
        char status[MP_PATH_MAX], *text;
        snprintf(status, sizeof status, "/proc/%d/status", (int)g_proxy.pid);
        text = mp_read_file(status, NULL);
        cr_assert_not_null(text);
        cr_expect_null(strstr(text, "\nUid:\t0\t"), "musproxy still runs as root");
        free(text);
    }
    cr_expect_eq(login_as(NULL, "admin", "correct horse", NULL, NULL), 303,
                 "HTTPS with the key read before the drop");

    /* a reload that must read the key again, as nobody */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n"
             "  tls_cert: %s\n  tls_key: %s\n  session_idle: 10m\nrun: { user: nobody }\n",
             g_aport, g_apw, cert, key);
    reload_fails(yaml, "server.key: Permission denied");
    mp_proc_stop(&g_proxy, SIGTERM, 5000);
    mp_proc_stop(&g_origin, SIGTERM, 5000);
}

/* musproxy with the given admin section: its exit status (or -2 while it
 * still runs after 2 s), its stderr in *err. */
static int run_with_admin(const char *admin_yaml, char **err)
{
    g_oport = g_oport ? g_oport : 1;
    g_hport = g_hport ? g_hport : mp_free_port();
    mp_path(g_sock, "musproxy.sock");
    mp_path(g_upw, "users.passwd");
    mp_path(g_apw, "admin.passwd");
    if (access(g_upw, R_OK) != 0)
        passwd(g_upw, "alice", "alice-pw");
    write_config(admin_yaml);
    char *argv[] = {(char *)mp_musproxy_bin(), "-c", g_cfg, NULL};
    cr_assert_eq(mp_proc_start(&g_proxy, "musproxy", argv, NULL), 0);
    if (mp_proc_wait(&g_proxy, 2000) == 0) {
        *err = mp_proc_stderr(&g_proxy);
        return WIFEXITED(g_proxy.status) ? WEXITSTATUS(g_proxy.status) : -1;
    }
    *err = mp_proc_stderr(&g_proxy);
    return -2;
}

/* The state of one row of status.services (proxy/service.h), and its error ("" if none). */
static const char *service_state(json_t *st, const char *name, const char **error)
{
    size_t i;
    json_t *v;

    json_array_foreach(json_object_get(st, "services"), i, v) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0) {
            const char *e = json_string_value(json_object_get(v, "error"));
            *error = e ? e : "";
            return json_string_value(json_object_get(v, "state"));
        }
    }
    *error = "";
    return "(absent)";
}

Test(admin, startup_refusals)
{
    char yaml[2048], *err = NULL, url[128], args[MP_PATH_MAX + 64];
    const char *why;
    json_t *st;
    int port = mp_free_port();
    resp_t r;
    req_t q = {.userpwd = "admin:correct horse"};

    /* a non-loopback listen address without allow_remote: not started at all */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 0.0.0.0:%d\n  password_file: %s\n", port,
             mp_path(g_apw, "admin.passwd"));
    cr_expect_eq(run_with_admin(yaml, &err), 1, "%s", err);
    cr_expect(strstr(err, "admin listen address '0.0.0.0:") != NULL &&
              strstr(err, "is not a loopback address: the admin UI would be reachable from "
                          "other hosts (set allow_remote: true to allow it)") != NULL, "%s", err);
    cr_expect(strstr(err, "proxy.yaml:") != NULL, "no file:line in %s", err);
    free(err);

    /* no password file: the proxy serves, the UI does not start, and says why */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n", port,
             mp_path(g_apw, "missing.passwd"));
    cr_expect_eq(run_with_admin(yaml, &err), -2, "musproxy exited: %s", err);
    free(err);
    mp_sleep_ms(300);
    err = mp_proc_stderr(&g_proxy);
    cr_expect(strstr(err, "admin: cannot start: not started: password file ") != NULL &&
              strstr(err, "missing.passwd: No such file or directory (create an account with: "
                          "musctl passwd admin --file ") != NULL, "%s", err);
    free(err);
    cr_expect_neq(mp_wait_port(port, 300), 0, "something listens on the admin port");
    /* and the status says so, beside the services that run */
    snprintf(args, sizeof args, "status --json --socket '%s'", g_sock);
    st = musctl_json(args);
    cr_expect_str_eq(service_state(st, "admin", &why), "failed");
    cr_expect(strstr(why, "not started") != NULL, "%s", why);
    cr_expect_str_eq(service_state(st, "workers", &why), "running");
    cr_expect_str_eq(service_state(st, "feed", &why), "running");
    cr_expect_str_eq(service_state(st, "control", &why), "running");
    cr_expect_str_eq(service_state(st, "wccp", &why), "off");
    cr_expect_str_eq(service_state(st, "gre", &why), "off");
    json_decref(st);
    mp_proc_stop(&g_proxy, SIGTERM, 5000);

    /* allow_remote: true serves on every address, with a warning */
    passwd(mp_path(g_apw, "admin.passwd"), "admin", "correct horse");
    snprintf(yaml, sizeof yaml,
             "admin:\n  listen: 0.0.0.0:%d\n  password_file: %s\n  allow_remote: true\n", port,
             g_apw);
    cr_expect_eq(run_with_admin(yaml, &err), -2, "musproxy exited: %s", err);
    free(err);
    cr_assert_eq(mp_wait_port(port, 3000), 0);
    err = mp_proc_stderr(&g_proxy);
    cr_expect(strstr(err, "not a loopback address (allow_remote: true)") != NULL, "%s", err);
    free(err);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/store", port);
    cr_expect_eq(fetch(url, &q, &r), 200, "%s", r.body);
    resp_free(&r);
    mp_proc_stop(&g_proxy, SIGTERM, 5000);
}

/* Polls musctl status until the row `name` is in state `want` (5 s). */
static void wait_service(const char *name, const char *want)
{
    char args[MP_PATH_MAX + 64];
    const char *why;
    char got[32] = "";

    snprintf(args, sizeof args, "status --json --socket '%s'", g_sock);
    for (int i = 0; i < 100; i++) {
        json_t *st = musctl_json(args);
        snprintf(got, sizeof got, "%s", service_state(st, name, &why));
        json_decref(st);
        if (strcmp(got, want) == 0)
            return;
        mp_sleep_ms(50);
    }
    cr_assert_fail("service %s: %s, want %s", name, got, want);
}

/* SIGHUP with a changed admin section restarts the UI on its new address;
 * a broken one leaves it failed (with the reason) while the proxy serves,
 * and a good one brings it back. */
Test(admin, reload_restarts_the_admin_ui)
{
    char yaml[2048], *err = NULL, url[128], args[MP_PATH_MAX + 64];
    int p1 = mp_free_port(), p2 = mp_free_port();
    const char *why;
    json_t *st;
    resp_t r;
    req_t q = {.userpwd = "admin:correct horse"};

    passwd(mp_path(g_apw, "admin.passwd"), "admin", "correct horse");
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n", p1, g_apw);
    cr_assert_eq(run_with_admin(yaml, &err), -2, "musproxy exited: %s", err);
    free(err);
    cr_assert_eq(mp_wait_port(p1, 3000), 0);

    /* a new port: served there, not on the old one */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n", p2, g_apw);
    write_config(yaml);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    cr_assert_eq(mp_wait_port(p2, 3000), 0, "the admin UI did not move to its new port");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/store", p2);
    cr_expect_eq(fetch(url, &q, &r), 200, "%s", r.body);
    resp_free(&r);
    cr_expect_neq(mp_wait_port(p1, 300), 0, "the old admin port still listens");
    wait_service("admin", "running");

    /* a missing password file: failed, with the reason; the proxy serves on */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n", p1,
             mp_path(args, "nobody.passwd"));
    write_config(yaml);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    wait_service("admin", "failed");
    snprintf(args, sizeof args, "status --json --socket '%s'", g_sock);
    st = musctl_json(args);
    cr_expect(strstr(service_state(st, "admin", &why), "failed") != NULL);
    cr_expect(strstr(why, "not started") != NULL, "%s", why);
    cr_expect_str_eq(service_state(st, "workers", &why), "running");
    json_decref(st);
    cr_expect_neq(mp_wait_port(p2, 300), 0, "the admin UI still listens after a failed restart");

    /* fixed: back on p1 */
    snprintf(yaml, sizeof yaml, "admin:\n  listen: 127.0.0.1:%d\n  password_file: %s\n", p1, g_apw);
    write_config(yaml);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    wait_service("admin", "running");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/api/store", p1);
    cr_expect_eq(fetch(url, &q, &r), 200, "%s", r.body);
    resp_free(&r);

    /* turned off */
    write_config("admin:\n  enabled: false\n");
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    wait_service("admin", "off");
    cr_expect_neq(mp_wait_port(p1, 300), 0, "a disabled admin UI still listens");
    mp_proc_stop(&g_proxy, SIGTERM, 5000);
}
