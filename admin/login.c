/*
 * admin/login.c: how a request gets in (see admin_int.h): the login form
 * (GET /login), the login (POST /login: the form's own token, the account
 * through admin/auth.h, then a new session in the cookie), the logout
 * (POST /logout with the session's CSRF token), and the gate every other
 * route passes: a session from the musproxy_session cookie or, for the
 * JSON API and /metrics only, HTTP Basic credentials.
 *
 * The login form's token is a double-submit value: GET /login sets it in
 * the cookie musproxy_login (Path=/login) and in the form's hidden field;
 * the POST must carry both, equal. A page elsewhere can neither read nor
 * set our cookies, so it cannot log a browser in to an account of its
 * choosing; the same-origin check applies as to every POST.
 *
 * Cookies are HttpOnly and SameSite=Strict, Secure on HTTPS; the session
 * cookie has no Max-Age (the server ends the session, at session_idle or
 * session_max). It does not render pages (admin/pages.h) or check
 * passwords itself (admin/auth.h).
 */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "admin_int.h"
#include "cookie.h"
#include "pages.h"

#define SESSION_COOKIE  "musproxy_session"
#define LOGIN_COOKIE    "musproxy_login"
#define COOKIE_LINE_MAX 256

/* A Set-Cookie value: name=value for path, Max-Age max_age (-1: none;
 * 0: forget it now). */
static void
cookie_line(const admin_t *a, char *out, size_t cap, const char *name, const char *value,
            const char *path, int max_age)
{
    char age[32] = "";

    if (max_age >= 0)
        snprintf(age, sizeof(age), "; Max-Age=%d", max_age);
    snprintf(out, cap, "%s=%s; Path=%s%s; HttpOnly; SameSite=Strict%s", name, value, path, age,
             a->tls ? "; Secure" : "");
}

/* The live session of the request's session cookies (a browser may send
 * more than one), and which cookie value it came from; NULL if none.
 * *had: a session cookie was sent at all. */
static const session_t *
cookie_session(admin_t *a, struct MHD_Connection *c, int64_t mono, cookie_value_t *from,
               bool *had)
{
    cookie_value_t v[COOKIE_VALUES_MAX];
    size_t n = cookie_values(admin_header(c, "Cookie"), SESSION_COOKIE, v, COOKIE_VALUES_MAX);

    if (had != NULL)
        *had = n > 0;
    for (size_t i = 0; i < n; i++) {
        const session_t *s = session_find(a->sessions, v[i].p, v[i].len, mono);
        if (s != NULL) {
            if (from != NULL)
                *from = v[i];
            return s;
        }
    }
    return NULL;
}

/* 303 to where, forgetting the session cookie if forget. */
static enum MHD_Result
see_other(const admin_t *a, struct MHD_Connection *c, const char *where, bool forget)
{
    char gone[COOKIE_LINE_MAX];
    const char *hdrs[] = {"Location", where, forget ? "Set-Cookie" : NULL, gone, NULL};

    cookie_line(a, gone, sizeof(gone), SESSION_COOKIE, "", "/", 0);
    return admin_send_headers(c, 303, NULL, 0, "text/html; charset=utf-8", hdrs);
}

/* The login form with status and msg (NULL: none). token is the form's
 * token when the browser already holds it in its cookie; NULL makes a new
 * one and sets the cookie. retry: a Retry-After value, or NULL. */
static enum MHD_Result
login_form(const admin_t *a, struct MHD_Connection *c, unsigned status, const char *msg,
           const char *token, const char *retry)
{
    char fresh[SESSION_TOKEN_LEN + 1], set[COOKIE_LINE_MAX];
    const char *hdrs[5] = {NULL};
    size_t h = 0, len = 0;
    char *html;

    if (token == NULL) {
        if (session_random_token(fresh) < 0)
            return admin_send_error(c, false, 500, "no randomness for the login form", NULL, NULL,
                                    NULL);
        token = fresh;
        cookie_line(a, set, sizeof(set), LOGIN_COOKIE, fresh, "/login", ADMIN_LOGIN_FORM_S);
        hdrs[h++] = "Set-Cookie";
        hdrs[h++] = set;
    }
    if (retry != NULL) {
        hdrs[h++] = "Retry-After";
        hdrs[h++] = retry;
    }
    html = admin_page_login(token, msg, &len);
    if (html == NULL)
        return MHD_NO;
    return admin_send_headers(c, status, html, len, "text/html; charset=utf-8", hdrs);
}

/* Whether token is the value of one of the request's login cookies. */
static bool
login_token_ok(struct MHD_Connection *c, const char *token)
{
    cookie_value_t v[COOKIE_VALUES_MAX];
    size_t n = cookie_values(admin_header(c, "Cookie"), LOGIN_COOKIE, v, COOKIE_VALUES_MAX);
    bool ok = false;

    for (size_t i = 0; token != NULL && strlen(token) == SESSION_TOKEN_LEN && i < n; i++)
        ok |= session_token_eq(v[i].p, v[i].len, token);
    return ok;
}

static const struct sockaddr *
client_of(struct MHD_Connection *c)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    return ci != NULL ? ci->client_addr : NULL;
}

/* A login that passed: a new session (the one the browser had, if any,
 * ends), its cookie, the form's cookie forgotten, and on to the dashboard. */
static enum MHD_Result
logged_in(admin_t *a, struct MHD_Connection *c, const char *user, int64_t mono)
{
    char id[SESSION_TOKEN_LEN + 1], set[COOKIE_LINE_MAX], gone[COOKIE_LINE_MAX];
    char ip[64];
    const char *hdrs[] = {"Location", "/", "Set-Cookie", set, "Set-Cookie", gone, NULL};
    cookie_value_t old;
    enum MHD_Result ok;

    if (cookie_session(a, c, mono, &old, NULL) != NULL)
        session_end(a->sessions, old.p, old.len);
    if (session_create(a->sessions, user, mono, id) < 0)
        return admin_send_error(c, false, 500, "the session could not be made", NULL, NULL, NULL);
    auth_client_text(client_of(c), ip, sizeof(ip));
    log_info("admin: %.64s logged in from %s (%zu session%s)", user, ip,
             session_count(a->sessions), session_count(a->sessions) == 1 ? "" : "s");
    cookie_line(a, set, sizeof(set), SESSION_COOKIE, id, "/", -1);
    cookie_line(a, gone, sizeof(gone), LOGIN_COOKIE, "", "/login", 0);
    ok = admin_send_headers(c, 303, NULL, 0, "text/html; charset=utf-8", hdrs);
    OPENSSL_cleanse(id, sizeof(id));
    OPENSSL_cleanse(set, sizeof(set));
    return ok;
}

enum MHD_Result
admin_login(admin_t *a, struct MHD_Connection *c, req_t *rq, const char *method, int64_t now,
            int64_t mono)
{
    bool post = strcmp(method, "POST") == 0;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    const char *token, *user, *pass;
    char retry[80];
    unsigned retry_s = 0;
    enum MHD_Result ok;
    query_t *q;

    if (!post && !get)
        return admin_send_error(c, false, 405, "method not allowed here", NULL, "Allow",
                                "GET, HEAD, POST");
    if (get)
        return cookie_session(a, c, mono, NULL, NULL) != NULL
                   ? see_other(a, c, "/", false)
                   : login_form(a, c, 200, NULL, NULL, NULL);
    q = malloc(sizeof(*q));
    if (q == NULL)
        return MHD_NO;
    if (admin_post_form(a, c, rq, false, NULL, q, &ok) == NULL)
        goto done;
    token = query_take(q, "csrf");
    user = query_take(q, "user");
    pass = query_take(q, "password");
    if (q->n > 0) {
        ok = admin_send_error(c, false, 400, "the login form has only user and password", NULL,
                              NULL, NULL);
    } else if (!login_token_ok(c, token)) {
        ok = login_form(a, c, 403, "This login form has expired, or the browser does not keep "
                                   "cookies: log in again.", NULL, NULL);
    } else if (user == NULL || user[0] == '\0' || pass == NULL || pass[0] == '\0') {
        ok = login_form(a, c, 400, "User and password are required.", token, NULL);
    } else {
        switch (auth_login(a->auth, client_of(c), user, pass, strlen(pass), now / 1000,
                           &retry_s)) {
        case AUTH_OK:
            ok = logged_in(a, c, user, mono);
            break;
        case AUTH_LIMITED:
            snprintf(retry, sizeof(retry), "%u", retry_s);
            ok = login_form(a, c, 429, "Too many failed logins from this address: try again "
                                       "later.", token, retry);
            break;
        case AUTH_MISSING:
        case AUTH_FAILED:
        default:
            ok = login_form(a, c, 401, "Wrong user name or password.", token, NULL);
            break;
        }
    }
done:
    OPENSSL_cleanse(q, sizeof(*q));   /* the password */
    free(q);
    return ok;
}

enum MHD_Result
admin_logout(admin_t *a, struct MHD_Connection *c, req_t *rq, const char *method, int64_t mono)
{
    cookie_value_t from;
    const session_t *s;
    const char *token;
    who_t who = {.user = ""};
    enum MHD_Result ok;
    query_t *q;

    if (strcmp(method, "POST") != 0)
        return admin_send_error(c, false, 405, "method not allowed here", NULL, "Allow", "POST");
    s = cookie_session(a, c, mono, &from, NULL);
    if (s == NULL)
        return see_other(a, c, "/login", true);   /* logged out already */
    snprintf(who.user, sizeof(who.user), "%s", s->user);
    who.session = s;
    q = malloc(sizeof(*q));
    if (q == NULL)
        return MHD_NO;
    if (admin_post_form(a, c, rq, false, &who, q, &ok) == NULL)
        goto done;
    token = query_take(q, "csrf");
    if (q->n > 0) {
        ok = admin_send_error(c, false, 400, "the logout form has no fields", &who, NULL, NULL);
    } else if (!session_csrf_ok(s, token)) {
        ok = admin_send_error(c, false, 403, "missing or wrong CSRF token (reload the page)",
                              &who, NULL, NULL);
    } else {
        log_info("admin: %.64s logged out", who.user);
        session_end(a->sessions, from.p, from.len);
        ok = see_other(a, c, "/login", true);
    }
done:
    free(q);
    return ok;
}

bool
admin_who(admin_t *a, struct MHD_Connection *c, req_t *rq, int64_t now, int64_t mono,
          who_t *who, enum MHD_Result *ok)
{
    size_t plen = strcspn(rq->uri, "?#");
    bool api = strncmp(rq->uri, "/api/", 5) == 0;
    bool basic_ok = api || (plen == 8 && strncmp(rq->uri, "/metrics", 8) == 0);
    const session_t *s;
    char retry[16];
    unsigned retry_s = 0;
    bool had = false;

    memset(who, 0, sizeof(*who));
    s = cookie_session(a, c, mono, NULL, &had);
    if (s != NULL) {
        snprintf(who->user, sizeof(who->user), "%s", s->user);
        who->session = s;
        return true;
    }
    if (!basic_ok) {
        *ok = see_other(a, c, "/login", had);
        return false;
    }
    switch (auth_check(a->auth, client_of(c), admin_header(c, "Authorization"), now / 1000,
                       who->user, &retry_s)) {
    case AUTH_OK:
        return true;
    case AUTH_LIMITED:
        snprintf(retry, sizeof(retry), "%u", retry_s);
        *ok = admin_send_error(c, api, 429, "too many failed logins from this address; try later",
                               NULL, "Retry-After", retry);
        return false;
    case AUTH_MISSING:
    case AUTH_FAILED:
    default:
        *ok = admin_send_error(c, api, 401, "login required", NULL, "WWW-Authenticate",
                               "Basic realm=\"" ADMIN_REALM "\", charset=\"UTF-8\"");
        return false;
    }
}

bool
admin_csrf_ok(const who_t *who, const char *token)
{
    return who->session == NULL || session_csrf_ok(who->session, token);
}
