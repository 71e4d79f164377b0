/*
 * proxy/pages.c: generated response bodies (see pages.h).
 */
#include "pages.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FIELD_MAX 512   /* one escaped field of the block page */

const char *
pages_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 407: return "Proxy Authentication Required";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 414: return "URI Too Long";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 508: return "Loop Detected";
    default: return "Error";
    }
}

void
pages_html_escape(char *out, size_t cap, const char *s, size_t n)
{
    size_t o = 0;

    if (cap == 0)
        return;
    for (size_t i = 0; i < n && o + 7 < cap; i++) {
        const char *rep = NULL;
        switch (s[i]) {
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '&': rep = "&amp;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default: break;
        }
        if (rep) {
            size_t l = strlen(rep);
            memcpy(out + o, rep, l);
            o += l;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
}

/* snprintf that returns the length kept (cut to cap - 1). */
static size_t fmt(char *out, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));

static size_t
fmt(char *out, size_t cap, const char *f, ...)
{
    va_list ap;
    int n;

    va_start(ap, f);
    n = vsnprintf(out, cap, f, ap);
    va_end(ap);
    if (n < 0) {
        out[0] = '\0';
        return 0;
    }
    return (size_t)n >= cap ? cap - 1 : (size_t)n;
}

static void
escape_str(char *out, size_t cap, const char *s, const char *dflt)
{
    const char *v = s != NULL && s[0] != '\0' ? s : dflt;

    pages_html_escape(out, cap, v, strlen(v));
}

size_t
pages_error(char *out, size_t cap, int status, const char *what, const char *url,
            size_t url_len, const char *server)
{
    char u[1024];
    const char *reason = pages_reason(status);

    pages_html_escape(u, sizeof(u), url ? url : "", url ? url_len : 0);
    return fmt(out, cap,
               "<!DOCTYPE html>\n<html><head><title>%d %s</title></head>\n"
               "<body><h1>%d %s</h1>\n<p>%s</p>\n%s%s%s"
               "<hr><address>%s</address></body></html>\n",
               status, reason, status, reason, what,
               u[0] ? "<p>URL: <code>" : "", u, u[0] ? "</code></p>\n" : "", server);
}

size_t
pages_block(char *out, size_t cap, const pages_block_t *b)
{
    char url[1024], user[FIELD_MAX], cat[FIELD_MAX / 2], pol[FIELD_MAX / 2], reason[FIELD_MAX];

    pages_html_escape(url, sizeof(url), b->url ? b->url : "", b->url ? b->url_len : 0);
    escape_str(user, sizeof(user), b->user, "(not identified)");
    escape_str(cat, sizeof(cat), b->category, "(none)");
    escape_str(pol, sizeof(pol), b->policy, "(none)");
    escape_str(reason, sizeof(reason), b->reason, "");
    return fmt(out, cap,
               "<!DOCTYPE html>\n<html><head><title>Access blocked</title></head>\n<body>\n"
               "<h1>Access to this site is blocked</h1>\n"
               "<p>%s</p>\n<table>\n"
               "<tr><th align=left>URL</th><td><code>%s</code></td></tr>\n"
               "<tr><th align=left>Category</th><td>%s</td></tr>\n"
               "<tr><th align=left>Policy</th><td>%s (identity profile %s, rule %s)</td></tr>\n"
               "<tr><th align=left>User</th><td>%s</td></tr>\n"
               "<tr><th align=left>Location</th><td>%s</td></tr>\n"
               "<tr><th align=left>Decision</th><td>%s</td></tr>\n"
               "</table>\n<p>If you need this site for your work, contact your administrator "
               "and quote the decision and the URL above.</p>\n"
               "<hr><address>%s</address></body></html>\n",
               reason, url, cat, pol, b->profile ? b->profile : "(none)",
               b->rule ? b->rule : "-", user, b->remote ? "remote" : "local", b->decision,
               b->server);
}

size_t
pages_auth(char *out, size_t cap, bool bad, const char *server)
{
    return fmt(out, cap,
               "<!DOCTYPE html>\n<html><head><title>407 Proxy Authentication Required</title>"
               "</head>\n<body><h1>Proxy authentication required</h1>\n<p>%s</p>\n"
               "<hr><address>%s</address></body></html>\n",
               bad ? "The user name or password was not accepted."
                   : "Sign in with your user name and password to use the web from this network.",
               server);
}

size_t
pages_probe(char *out, size_t cap, const pages_probe_t *p)
{
    size_t n = fmt(out, cap, "musproxy probe\nclient: %s\nremote: %s\nsource: %s\n", p->client,
                   p->remote ? "yes" : "no", p->source);

    if (p->identified && n + 1 < cap)
        n += fmt(out + n, cap - n,
                 "user: %s\ntype: %s\ndomain: %s\ngroups: %s\nheadend: %s\nstale: %s\n",
                 p->user, p->type, p->domain, p->groups, p->headend, p->stale ? "yes" : "no");
    return n;
}
