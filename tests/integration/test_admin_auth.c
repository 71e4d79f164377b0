/*
 * tests/integration/test_admin_auth.c: who gets into the admin web UI, end
 * to end with the real binaries (the setup is in admin_harness.h): logins
 * (the form and its session cookie with its attributes, Basic credentials
 * for the API and /metrics only, the failed-login limit and its log lines),
 * logout, the session's idle and absolute expiry and its end when the
 * password changes, the security headers, the CSRF tokens and the origin
 * check, the Host check, and HTTPS with a certificate the test makes
 * (openssl CLI) checked by curl against its CA, including a key only root
 * may read. Not what the pages show (test_admin.c, test_admin_service.c).
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
        {
            /* the token with its last digit changed (appending a fixed one
             * would be the token itself when it ends in that digit) */
            char bad[128];
            size_t n = strlen(token);
            snprintf(bad, sizeof bad, "%s", token);
            cr_assert_gt(n, 0);
            bad[n - 1] = bad[n - 1] == '0' ? '1' : '0';
            snprintf(body, sizeof body, "user=admin&password=correct+horse&csrf=%s", bad);
        }
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
