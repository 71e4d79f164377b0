/*
 * admin/respond.c: how the admin UI answers (see admin_int.h): every
 * response carries the security headers (CSP without scripts, no framing,
 * no sniffing, no caching, no referrer); errors are JSON for the API and a
 * page otherwise. And the checks made before a request is trusted: the
 * Host of a loopback listener (DNS rebinding), and the origin, type and
 * shape of a posted form. It knows nothing of logins or routes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../db/reportdoc.h"
#include "admin_int.h"
#include "pages.h"

#define SECURITY_CSP "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; " \
                     "frame-ancestors 'none'; base-uri 'none'"

enum MHD_Result
admin_send_headers(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                   const char *ctype, const char *const *hdrs)
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
    for (size_t i = 0; hdrs != NULL && hdrs[i] != NULL; i += 2)
        MHD_add_response_header(r, hdrs[i], hdrs[i + 1]);
    ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

enum MHD_Result
admin_send_body(struct MHD_Connection *c, unsigned status, char *body, size_t len,
                const char *ctype, const char *hname, const char *hvalue)
{
    const char *hdrs[] = {hname, hvalue, NULL};

    return admin_send_headers(c, status, body, len, ctype, hname != NULL ? hdrs : NULL);
}

enum MHD_Result
admin_send_json(struct MHD_Connection *c, unsigned status, const json_t *doc, const char *hname,
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
    return admin_send_body(c, status, body, n + 1, "application/json; charset=utf-8", hname,
                           hvalue);
}

enum MHD_Result
admin_send_error(struct MHD_Connection *c, bool api, unsigned status, const char *msg,
                 const who_t *who, const char *hname, const char *hvalue)
{
    if (api) {
        json_t *j = json_pack("{s:s, s:i}", "error", msg, "status", (int)status);
        enum MHD_Result ok = j ? admin_send_json(c, status, j, hname, hvalue) : MHD_NO;
        json_decref(j);
        return ok;
    } else {
        size_t len = 0;
        char *html = admin_page_error((int)status, msg, who ? who->user : NULL,
                                      who && who->session ? who->session->csrf : NULL, &len);
        if (html == NULL)
            return MHD_NO;
        return admin_send_body(c, status, html, len, "text/html; charset=utf-8", hname, hvalue);
    }
}

const char *
admin_header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* On a loopback listener the Host must name a loopback address (or
 * localhost) and our port: a page from elsewhere whose name was made to
 * resolve to 127.0.0.1 (DNS rebinding) cannot talk to the UI. */
bool
admin_host_ok(const admin_t *a, const char *host)
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
        return a->port == (a->tls ? 443u : 80u);
    return strspn(port_s, "0123456789") == strlen(port_s) && strlen(port_s) <= 5 &&
           (unsigned)atoi(port_s) == a->port;
}

/* The POST must come from the UI's own pages. A browser says so itself in
 * Sec-Fetch-Site (a header pages cannot set), which is what counts when it
 * is there: our Referrer-Policy no-referrer makes browsers send "Origin:
 * null" with a form POST, so Origin cannot be required. Without it (older
 * browsers, scripts), Origin or else Referer must be http://HOST (https://
 * on TLS). */
bool
admin_same_origin(const admin_t *a, struct MHD_Connection *c)
{
    const char *host = admin_header(c, "Host"), *origin = admin_header(c, "Origin");
    const char *referer = admin_header(c, "Referer"), *site = admin_header(c, "Sec-Fetch-Site");
    char want[300];
    size_t n;

    if (site != NULL)
        return strcmp(site, "same-origin") == 0;
    if (host == NULL || (size_t)snprintf(want, sizeof(want), "%s://%s", a->tls ? "https" : "http", host) >=
                            sizeof(want))
        return false;
    n = strlen(want);
    if (origin != NULL)
        return strcasecmp(origin, want) == 0;
    return referer != NULL && strncasecmp(referer, want, n) == 0 &&
           (referer[n] == '/' || referer[n] == '\0');
}

query_t *
admin_post_form(const admin_t *a, struct MHD_Connection *c, req_t *rq, bool api,
                const who_t *who, query_t *q, enum MHD_Result *ok)
{
    const char *ctype = admin_header(c, "Content-Type");
    char err[QUERY_ERR_MAX];

    if (!admin_same_origin(a, c)) {
        *ok = admin_send_error(c, api, 403, "cross-site request refused (Origin must be this UI)",
                               who, NULL, NULL);
        return NULL;
    }
    if (ctype == NULL || strncasecmp(ctype, "application/x-www-form-urlencoded", 33) != 0 ||
        (ctype[33] != '\0' && ctype[33] != ';')) {
        *ok = admin_send_error(c, api, 415, "the form must be application/x-www-form-urlencoded",
                               who, NULL, NULL);
        return NULL;
    }
    if (rq->body_too_big) {
        *ok = admin_send_error(c, api, 413, "form too large", who, NULL, NULL);
        return NULL;
    }
    if (rq->uri[strcspn(rq->uri, "?#")] != '\0') {
        *ok = admin_send_error(c, api, 400, "a form is posted without a query string", who, NULL,
                               NULL);
        return NULL;
    }
    if (query_parse_form(rq->body, rq->body_len, q, err, sizeof(err)) < 0) {
        *ok = admin_send_error(c, api, 400, err, who, NULL, NULL);
        return NULL;
    }
    return q;
}
