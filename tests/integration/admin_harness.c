/*
 * tests/integration/admin_harness.c: the helpers of admin_harness.h for the
 * admin web UI tests (test_admin*.c): the state of one test, the
 * configuration and start of mp-origin and musproxy, libcurl requests and
 * the form login, musctl, and waiting for musproxy's log and services.
 * Test code only: no Test() cases, only the suite's setup.
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

#include "admin_harness.h"

mp_proc_t g_origin, g_proxy;
int g_oport, g_pport, g_aport, g_hport;
char g_cfg[MP_PATH_MAX], g_log[MP_PATH_MAX], g_sock[MP_PATH_MAX], g_apw[MP_PATH_MAX];
char g_upw[MP_PATH_MAX], g_secret[MP_PATH_MAX];
char g_admin_ca[MP_PATH_MAX];
char g_ca[MP_PATH_MAX];
login_t g_login;
bool g_for_nobody;

const struct user users[N_USERS] = {
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

const char *bin(const char *env)
{
    const char *b = getenv(env);
    cr_assert_not_null(b, "%s is not set (run through meson test)", env);
    return b;
}

/* musctl passwd USER --file PATH, the password on stdin. */
void passwd(const char *file, const char *user, const char *pass)
{
    char cmd[2048], *err = NULL;
    snprintf(cmd, sizeof cmd, "printf '%%s\\n' '%s' | '%s' passwd '%s' --file '%s' >/dev/null",
             pass, bin("MUSCTL_BIN"), user, file);
    char *sh[] = {"/bin/sh", "-c", cmd, NULL};
    int rc = mp_run(sh, 10000, &err);
    cr_assert_eq(rc, 0, "musctl passwd %s: exit %d: %s", user, rc, err ? err : "");
    free(err);
}

/* The configuration: admin_yaml replaces the default admin section. */
void write_config(const char *admin_yaml)
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
void start_admin(const char *more)
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

void start(void)
{
    start_admin("");
}

/* ---- HTTP ---- */

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

void resp_free(resp_t *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* Runs q against url into r: curl's result (r->status is 0 without an answer). */
CURLcode perform(const char *url, const req_t *q, resp_t *r)
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

long fetch(const char *url, const req_t *q, resp_t *r)
{
    CURLcode rc = perform(url, q, r);

    cr_assert_eq(rc, CURLE_OK, "curl %s: %s", url, curl_easy_strerror(rc));
    return r->status;
}

char *admin_url(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "%s://127.0.0.1:%d%s", g_admin_ca[0] ? "https" : "http", g_aport, path);
    return buf;
}

/* What a browser sends as Origin from the UI's own pages. */
const char *admin_origin(void)
{
    static char o[64];
    snprintf(o, sizeof o, "%s://127.0.0.1:%d", g_admin_ca[0] ? "https" : "http", g_aport);
    return o;
}

/* The value of response header name (the first, or the n-th with
 * set_cookie_n) into out: false if absent. */
bool header_n(const resp_t *r, const char *name, int n, char *out, size_t cap)
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
bool set_cookie(const resp_t *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (int i = 0; header_n(r, "Set-Cookie", i, out, cap); i++)
        if (strncmp(out, name, nl) == 0 && out[nl] == '=')
            return true;
    return false;
}

/* Whether a Set-Cookie line has attribute attr ("HttpOnly", "Path=/"),
 * case-insensitively for its name, as its own "; "-separated item. */
bool cookie_attr(const char *line, const char *attr)
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
void hidden_csrf(const char *html, char *out, size_t cap)
{
    const char *p = strstr(html, "<input type=\"hidden\" name=\"csrf\" value=\"");
    out[0] = '\0';
    if (p == NULL)
        return;
    p += strlen("<input type=\"hidden\" name=\"csrf\" value=\"");
    snprintf(out, cap, "%.*s", (int)strcspn(p, "\""), p);
}

/* name=value of a Set-Cookie line, for a Cookie header. */
void cookie_pair(const char *line, char *out, size_t cap)
{
    snprintf(out, cap, "%.*s", (int)strcspn(line, ";"), line);
}

/* Logs in through the form from address from (NULL = 127.0.0.1), as a
 * browser does: GET /login (the form and its token cookie), then POST it.
 * The POST's status; on 303 *out holds the session, its CSRF token read
 * from the dashboard. *post_r, if not NULL, gets the POST's response. */
long login_as(const char *from, const char *user, const char *pass, login_t *out,
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
long admin_get(const char *path, resp_t *r)
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

json_t *admin_json(const char *path)
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

json_t *musctl_json(const char *args)
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

void expect_security_headers(const resp_t *r)
{
    static const char *const want[] = {
        "Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'",
        "X-Frame-Options: DENY", "X-Content-Type-Options: nosniff", "Cache-Control: no-store",
        "Referrer-Policy: no-referrer",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_expect(strstr(r->headers, want[i]) != NULL, "missing %s in\n%s", want[i], r->headers);
}

/* Until musproxy's log has want (5 s). */
void wait_log(const char *want)
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

/* The state of one row of status.services (proxy/service.h), and its error ("" if none). */
const char *service_state(json_t *st, const char *name, const char **error)
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

/* Polls musctl status until the row `name` is in state `want` (5 s). */
void wait_service(const char *name, const char *want)
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

/* A reload with the admin section yaml leaves the admin row failed, its
 * reason containing why, while the proxy serves on. */
void reload_fails(const char *yaml, const char *why_part)
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
