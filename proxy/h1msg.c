/*
 * proxy/h1msg.c: head rewriting and upgrade checks (see h1msg.h).
 */
#include "h1msg.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

bool
h1msg_is_hop(const http_header_t *h, const http_framing_t *f, bool keep_upgrade)
{
#define HOP(s) { s, sizeof(s) - 1 }
    static const struct { const char *name; size_t len; } hop[] = {
        HOP("connection"), HOP("keep-alive"), HOP("proxy-connection"), HOP("proxy-authorization"),
        HOP("proxy-authenticate"), HOP("te"), HOP("trailer"), HOP("upgrade"), HOP("http2-settings"),
    };
#undef HOP

    /* lengths first: most fields of a request are none of these (this runs
     * for every field of every head) */
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        if (h->name.len == hop[i].len && strncasecmp(h->name.p, hop[i].name, hop[i].len) == 0) {
            if (keep_upgrade && i == 7)
                return false;  /* "upgrade" */
            return true;
        }
    }
    for (size_t i = 0; i < f->n_conn_tokens; i++) {
        const http_str_t *t = &f->conn_tokens[i];
        if (t->len == h->name.len && strncasecmp(t->p, h->name.p, t->len) == 0) {
            if (keep_upgrade && http_str_eq_nocase(h->name, "upgrade"))
                return false;
            /* Connection may not name the framing headers away */
            if (http_str_eq_nocase(h->name, "transfer-encoding") ||
                http_str_eq_nocase(h->name, "content-length") || http_str_eq_nocase(h->name, "host"))
                return false;
            return true;
        }
    }
    return false;
}

/* Protocols never offered upstream: HTTP/2 by upgrade ("h2c", and "h2", which
 * is TLS-only and never valid in Upgrade). */
static bool
upgrade_forbidden(http_str_t proto)
{
    const char *slash = memchr(proto.p, '/', proto.len);
    http_str_t name = { proto.p, slash ? (size_t)(slash - proto.p) : proto.len };

    return http_str_eq_nocase(name, "h2c") || http_str_eq_nocase(name, "h2");
}

/*
 * Several Content-Length fields or members ("5, 5": RFC 9110 8.6, the
 * parser made sure they agree) are replaced by one: true for each of the
 * received fields then, and append_content_length writes the single value.
 */
static bool
skip_content_length(const http_header_t *h, const http_framing_t *f)
{
    return f->n_content_length > 1 && http_str_eq_nocase(h->name, "content-length");
}

static int
append_content_length(cbuf_t *b, const http_framing_t *f)
{
    if (f->n_content_length <= 1)
        return 0;
    if (cbuf_puts(b, "Content-Length: ") < 0 ||
        cbuf_put_uint(b, (unsigned long long)f->content_length) < 0)
        return -1;
    return cbuf_puts(b, "\r\n");
}

/*
 * The protocols of the request's Upgrade fields that may be offered to the
 * origin, into out (", "-separated, "" if none). h2c is never offered: after
 * its 101 every later request on the connection would be HTTP/2, out of
 * reach of the per-request policy and log (h2c smuggling).
 */
void
h1msg_upgrade_offer(const http_request_t *req, char *out, size_t cap)
{
    size_t off = 0;

    out[0] = '\0';
    for (size_t i = 0; i < req->n_headers; i++) {
        const http_header_t *h = &req->headers[i];
        const char *p = h->value.p, *end = h->value.p + h->value.len;
        http_str_t m;

        if (!http_str_eq_nocase(h->name, "upgrade"))
            continue;
        while (http_list_next(&p, end, &m)) {
            if (upgrade_forbidden(m))
                continue;
            if (off + m.len + 3 > cap)
                return;   /* more than we offer: the rest is dropped */
            if (off > 0) {
                memcpy(out + off, ", ", 2);
                off += 2;
            }
            memcpy(out + off, m.p, m.len);
            off += m.len;
            out[off] = '\0';
        }
    }
}

/* True if every protocol a 101's Upgrade fields name was offered. */
bool
h1msg_upgrade_answer_ok(const char *offered, const http_response_t *resp)
{
    size_t named = 0;

    for (size_t i = 0; i < resp->n_headers; i++) {
        const http_header_t *h = &resp->headers[i];
        const char *p = h->value.p, *end = h->value.p + h->value.len;
        http_str_t m;

        if (!http_str_eq_nocase(h->name, "upgrade"))
            continue;
        while (http_list_next(&p, end, &m)) {
            const char *q = offered, *qend = q + strlen(q);
            http_str_t o;
            bool found = false;

            while (!found && http_list_next(&q, qend, &o))
                found = o.len == m.len && strncasecmp(o.p, m.p, m.len) == 0;
            if (!found || upgrade_forbidden(m))
                return false;
            named++;
        }
    }
    return named > 0;
}

static int
append_header(cbuf_t *b, const http_header_t *h)
{
    if (cbuf_append(b, h->name.p, h->name.len) < 0 || cbuf_puts(b, ": ") < 0 ||
        cbuf_append(b, h->value.p, h->value.len) < 0 || cbuf_puts(b, "\r\n") < 0)
        return -1;
    return 0;
}

int
h1msg_request_head(cbuf_t *b, const http_request_t *req, const h1msg_request_opts_t *o)
{
    if (cbuf_append(b, req->method.p, req->method.len) < 0 || cbuf_puts(b, " ") < 0)
        return -1;
    if (cbuf_append(b, req->path.p, req->path.len) < 0 || cbuf_puts(b, " HTTP/1.1\r\n") < 0)
        return -1;
    /* Host: from the absolute URL (RFC 9112 3.2.2: the proxy ignores the received Host) */
    if (cbuf_puts(b, "Host: ") < 0)
        return -1;
    if (memchr(o->host, ':', strlen(o->host)) != NULL) {
        if (cbuf_puts(b, "[") < 0 || cbuf_puts(b, o->host) < 0 || cbuf_puts(b, "]") < 0)
            return -1;
    } else if (cbuf_puts(b, o->host) < 0) {
        return -1;
    }
    if (o->port != 80 && (cbuf_puts(b, ":") < 0 || cbuf_put_uint(b, o->port) < 0))
        return -1;
    if (cbuf_puts(b, "\r\n") < 0)
        return -1;
    for (size_t i = 0; i < req->n_headers; i++) {
        const http_header_t *h = &req->headers[i];
        if (http_str_eq_nocase(h->name, "host") || h1msg_is_hop(h, &req->framing, false) ||
            skip_content_length(h, &req->framing))
            continue;
        if (append_header(b, h) < 0)
            return -1;
    }
    if (append_content_length(b, &req->framing) < 0)
        return -1;
    if (cbuf_puts(b, "Via: 1.1 ") < 0 || cbuf_puts(b, o->via) < 0 ||
        cbuf_puts(b, "\r\n") < 0)
        return -1;
    if (o->upgrade != NULL && o->upgrade[0] != '\0' &&
        (cbuf_puts(b, "Upgrade: ") < 0 || cbuf_puts(b, o->upgrade) < 0 ||
         cbuf_puts(b, "\r\nConnection: upgrade\r\n") < 0))
        return -1;
    return cbuf_puts(b, "\r\n");
}


/* True if the Via headers show that this request already passed us. */
bool
h1msg_via_loop(const http_request_t *req, const char *name)
{
    size_t nl = strlen(name);

    for (size_t i = 0; i < req->n_headers; i++) {
        const http_header_t *h = &req->headers[i];
        if (!http_str_eq_nocase(h->name, "via"))
            continue;
        for (size_t j = 0; j + nl <= h->value.len; j++) {
            if (strncasecmp(h->value.p + j, name, nl) == 0 &&
                (j == 0 || h->value.p[j - 1] == ' ') &&
                (j + nl == h->value.len || h->value.p[j + nl] == ',' || h->value.p[j + nl] == ' '))
                return true;
        }
    }
    return false;
}

int
h1msg_response_head(cbuf_t *b, const http_response_t *resp, const h1msg_response_opts_t *o)
{
    bool upgrade = resp->status == 101;

    /* the parser took exactly three digits: 100..999 */
    if (cbuf_puts(b, "HTTP/1.1 ") < 0 || cbuf_put_uint(b, (unsigned)resp->status) < 0 ||
        cbuf_puts(b, " ") < 0 || cbuf_append(b, resp->reason.p, resp->reason.len) < 0 ||
        cbuf_puts(b, "\r\n") < 0)
        return -1;
    for (size_t i = 0; i < resp->n_headers; i++) {
        const http_header_t *h = &resp->headers[i];
        if (h1msg_is_hop(h, &resp->framing, upgrade))
            continue;
        if (o->decode && http_str_eq_nocase(h->name, "transfer-encoding"))
            continue;
        if (skip_content_length(h, &resp->framing))
            continue;
        if (http_str_eq_nocase(h->name, "content-type") && resp->status >= 200) {
            size_t l = h->value.len < o->mime_cap - 1 ? h->value.len : o->mime_cap - 1;
            memcpy(o->mime, h->value.p, l);
            o->mime[l] = '\0';
        }
        if (append_header(b, h) < 0)
            return -1;
    }
    if (append_content_length(b, &resp->framing) < 0)
        return -1;
    if (cbuf_puts(b, "Via: 1.1 ") < 0 || cbuf_puts(b, o->via) < 0 ||
        cbuf_puts(b, "\r\n") < 0)
        return -1;
    if (upgrade) {
        if (cbuf_puts(b, "Connection: upgrade\r\n") < 0)
            return -1;
    } else if (resp->status >= 200) {
        if (o->close) {
            if (cbuf_puts(b, "Connection: close\r\n") < 0)
                return -1;
        } else if (o->http10_client) {
            if (cbuf_puts(b, "Connection: keep-alive\r\n") < 0)
                return -1;
        }
    }
    return cbuf_puts(b, "\r\n");
}

