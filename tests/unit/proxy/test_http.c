/*
 * tests/unit/proxy/test_http.c: table-driven tests of the HTTP/1.1 parser
 * (proxy/http.c). Valid requests and responses are checked field by field,
 * hostile inputs against the exact error code, and every input is placed
 * right before a PROT_NONE guard page so that any over-read crashes the
 * test (as picohttpparser's test.c does). Also: limits, pipelining,
 * incremental feeding and the chunked-body scanner.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../../../proxy/http.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define S(lit) (lit), (sizeof(lit) - 1)

/* ------------------------------------------------------------------ */
/* Guard page                                                         */
/* ------------------------------------------------------------------ */

#define GUARD_REGION (256 * 1024)   /* largest input we place */

static char *guard_end;  /* first byte of the PROT_NONE page */

/*
 * Copies s[0..n) so that its last byte is the last accessible byte before
 * a PROT_NONE page. The region is mapped once per test process.
 */
static char *
guarded(const char *s, size_t n)
{
    if (guard_end == NULL) {
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        char *base = mmap(NULL, GUARD_REGION + pg, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

        cr_assert(base != MAP_FAILED);
        cr_assert(mprotect(base + GUARD_REGION, pg, PROT_NONE) == 0);
        guard_end = base + GUARD_REGION;
    }
    cr_assert(n <= GUARD_REGION);
    memcpy(guard_end - n, s, n);
    return guard_end - n;
}

static int
parse_req(const char *s, size_t n, http_request_t *req)
{
    return http_parse_request(guarded(s, n), n, req);
}

static int
parse_resp(const char *s, size_t n, enum http_method m, http_response_t *resp)
{
    return http_parse_response(guarded(s, n), n, m, resp);
}

static bool
str_is(http_str_t s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.p, lit, s.len) == 0;
}

static bool
str_inside(http_str_t s, const char *buf, size_t len)
{
    return s.p >= buf && s.p + s.len <= buf + len;
}

/* ------------------------------------------------------------------ */
/* Valid requests                                                     */
/* ------------------------------------------------------------------ */

struct req_case {
    const char *name;
    const char *raw;
    size_t extra;               /* bytes after the head (body, next request) */
    enum http_method meth;
    const char *method;
    enum http_target_form form;
    int minor;
    const char *scheme;
    const char *host;
    uint16_t port;
    const char *path;
    enum http_body_kind body;
    uint64_t content_length;
    bool keep_alive;
    bool expect_continue;
    bool conn_upgrade;
    bool has_upgrade;
    size_t n_conn_tokens;
    size_t n_headers;
};

static const struct req_case valid_requests[] = {
    { .name = "origin-form GET",
      .raw = "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "example.com", .port = 80, .path = "/",
      .keep_alive = true, .n_headers = 1 },
    { .name = "origin-form with Host port and query",
      .raw = "GET /a/b?c=d&e HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: t/1\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "Example.com", .port = 8080, .path = "/a/b?c=d&e",
      .keep_alive = true, .n_headers = 2 },
    { .name = "origin-form Host IPv6 literal",
      .raw = "GET /x HTTP/1.1\r\nHost: [fe80::1]:81\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "fe80::1", .port = 81, .path = "/x",
      .keep_alive = true, .n_headers = 1 },
    { .name = "absolute-form http",
      .raw = "GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ABSOLUTE, .minor = 1,
      .scheme = "http", .host = "example.com", .port = 80, .path = "/x?y",
      .keep_alive = true, .n_headers = 1 },
    { .name = "absolute-form without path, no Host",
      .raw = "GET http://example.com HTTP/1.1\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ABSOLUTE, .minor = 1,
      .scheme = "http", .host = "example.com", .port = 80, .path = "/",
      .keep_alive = true },
    { .name = "absolute-form HTTPS uppercase with port",
      .raw = "GET HTTPS://Example.COM:8443/ HTTP/1.1\r\nHost: other.example\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ABSOLUTE, .minor = 1,
      .scheme = "HTTPS", .host = "Example.COM", .port = 8443, .path = "/",
      .keep_alive = true, .n_headers = 1 },
    { .name = "absolute-form IPv6 with port",
      .raw = "GET http://[2001:db8::1]:8080/p HTTP/1.1\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ABSOLUTE, .minor = 1,
      .scheme = "http", .host = "2001:db8::1", .port = 8080, .path = "/p",
      .keep_alive = true },
    { .name = "absolute-form https IPv6 default port, HTTP/1.0",
      .raw = "GET https://[::1] HTTP/1.0\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ABSOLUTE, .minor = 0,
      .scheme = "https", .host = "::1", .port = 443, .path = "/",
      .keep_alive = false },
    { .name = "absolute-form IPv4, empty Host ignored",
      .raw = "GET http://192.0.2.1:65535/a HTTP/1.1\r\nHost:\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ABSOLUTE, .minor = 1,
      .scheme = "http", .host = "192.0.2.1", .port = 65535, .path = "/a",
      .keep_alive = true, .n_headers = 1 },
    { .name = "CONNECT authority-form",
      .raw = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
      .meth = HTTP_M_CONNECT, .method = "CONNECT", .form = HTTP_FORM_AUTHORITY,
      .minor = 1, .scheme = "", .host = "example.com", .port = 443, .path = "",
      .keep_alive = true, .n_headers = 1 },
    { .name = "CONNECT IPv6",
      .raw = "CONNECT [2001:db8::2]:8443 HTTP/1.1\r\n\r\n",
      .meth = HTTP_M_CONNECT, .method = "CONNECT", .form = HTTP_FORM_AUTHORITY,
      .minor = 1, .scheme = "", .host = "2001:db8::2", .port = 8443, .path = "",
      .keep_alive = true },
    { .name = "OPTIONS asterisk",
      .raw = "OPTIONS * HTTP/1.1\r\nHost: h.example\r\n\r\n",
      .meth = HTTP_M_OPTIONS, .method = "OPTIONS", .form = HTTP_FORM_ASTERISK,
      .minor = 1, .scheme = "", .host = "h.example", .port = 80, .path = "*",
      .keep_alive = true, .n_headers = 1 },
    { .name = "POST with Content-Length and body",
      .raw = "POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
      .extra = 5,
      .meth = HTTP_M_POST, .method = "POST", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/f",
      .body = HTTP_BODY_LENGTH, .content_length = 5, .keep_alive = true,
      .n_headers = 2 },
    { .name = "Content-Length list of identical values",
      .raw = "PUT /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\n\r\n",
      .meth = HTTP_M_PUT, .method = "PUT", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/f",
      .body = HTTP_BODY_LENGTH, .content_length = 5, .keep_alive = true,
      .n_headers = 2 },
    { .name = "two identical Content-Length fields",
      .raw = "POST / HTTP/1.1\r\nContent-Length: 7\r\nHost: h\r\ncontent-length:007 \r\n\r\n",
      .meth = HTTP_M_POST, .method = "POST", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/",
      .body = HTTP_BODY_LENGTH, .content_length = 7, .keep_alive = true,
      .n_headers = 3 },
    { .name = "Content-Length zero",
      .raw = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
      .meth = HTTP_M_POST, .method = "POST", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/",
      .body = HTTP_BODY_LENGTH, .content_length = 0, .keep_alive = true,
      .n_headers = 2 },
    { .name = "Content-Length maximum",
      .raw = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775807\r\n\r\n",
      .meth = HTTP_M_POST, .method = "POST", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/",
      .body = HTTP_BODY_LENGTH, .content_length = INT64_MAX, .keep_alive = true,
      .n_headers = 2 },
    { .name = "Transfer-Encoding chunked, mixed case",
      .raw = "POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ChUnKeD\r\n\r\n",
      .meth = HTTP_M_POST, .method = "POST", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/u",
      .body = HTTP_BODY_CHUNKED, .keep_alive = true, .n_headers = 2 },
    { .name = "HTTP/1.0 with Connection: keep-alive",
      .raw = "GET / HTTP/1.0\r\nHost: h\r\nConnection: Keep-Alive\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ORIGIN, .minor = 0,
      .scheme = "", .host = "h", .port = 80, .path = "/",
      .keep_alive = true, .n_conn_tokens = 1, .n_headers = 2 },
    { .name = "HTTP/1.0 without Host",
      .raw = "GET /old HTTP/1.0\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ORIGIN, .minor = 0,
      .scheme = "", .host = "", .port = 80, .path = "/old",
      .keep_alive = false },
    { .name = "HTTP/1.1 Connection: close",
      .raw = "DELETE /r HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
      .meth = HTTP_M_DELETE, .method = "DELETE", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/r",
      .keep_alive = false, .n_conn_tokens = 1, .n_headers = 2 },
    { .name = "Connection in several fields, upgrade",
      .raw = "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\n"
             "Upgrade: websocket\r\nConnection: ,close,\r\n\r\n",
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/ws",
      .keep_alive = false, .conn_upgrade = true, .has_upgrade = true,
      .n_conn_tokens = 3, .n_headers = 4 },
    { .name = "Expect: 100-continue",
      .raw = "PATCH /p HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 3\r\n\r\n",
      .meth = HTTP_M_PATCH, .method = "PATCH", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/p",
      .body = HTTP_BODY_LENGTH, .content_length = 3, .keep_alive = true,
      .expect_continue = true, .n_headers = 3 },
    { .name = "leading empty lines",
      .raw = "\r\n\r\nHEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
      .meth = HTTP_M_HEAD, .method = "HEAD", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/",
      .keep_alive = true, .n_headers = 1 },
    { .name = "unknown method token",
      .raw = "PROPFIND /dav HTTP/1.1\r\nHost: h\r\n\r\n",
      .meth = HTTP_M_OTHER, .method = "PROPFIND", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/dav",
      .keep_alive = true, .n_headers = 1 },
    { .name = "lowercase method is not GET",
      .raw = "get / HTTP/1.1\r\nHost: h\r\n\r\n",
      .meth = HTTP_M_OTHER, .method = "get", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/",
      .keep_alive = true, .n_headers = 1 },
    { .name = "TRACE, HTAB and obs-text in values, empty value",
      .raw = "TRACE / HTTP/1.1\r\nHost:h_1.example.\r\nX-A: \ta\tb \t\r\nX-B:\r\n"
             "X-C: caf\xc3\xa9\r\n\r\n",
      .meth = HTTP_M_TRACE, .method = "TRACE", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h_1.example.", .port = 80, .path = "/",
      .keep_alive = true, .n_headers = 4 },
    { .name = "pipelined requests: only the first head",
      .raw = "GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n",
      .extra = 28,
      .meth = HTTP_M_GET, .method = "GET", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/1",
      .keep_alive = true, .n_headers = 1 },
    { .name = "pipelined after a body",
      .raw = "POST /1 HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\r\n\r\n",
      .extra = 20,
      .meth = HTTP_M_POST, .method = "POST", .form = HTTP_FORM_ORIGIN, .minor = 1,
      .scheme = "", .host = "h", .port = 80, .path = "/1",
      .body = HTTP_BODY_LENGTH, .content_length = 2, .keep_alive = true,
      .n_headers = 2 },
};

static void
check_request(const struct req_case *c, const char *buf, size_t len, int r,
              const http_request_t *req)
{
    size_t head = strlen(c->raw) - c->extra;

    cr_assert_eq(r, (int)head, "%s: returned %d, want %zu", c->name, r, head);
    cr_expect_eq(req->meth, c->meth, "%s: meth", c->name);
    cr_expect(str_is(req->method, c->method), "%s: method", c->name);
    cr_expect_eq(req->form, c->form, "%s: form %d", c->name, req->form);
    cr_expect_eq(req->version_minor, c->minor, "%s: minor", c->name);
    cr_expect(str_is(req->scheme, c->scheme), "%s: scheme '%.*s'", c->name,
              (int)req->scheme.len, req->scheme.p);
    cr_expect(str_is(req->host, c->host), "%s: host '%.*s'", c->name,
              (int)req->host.len, req->host.p);
    cr_expect_eq(req->port, c->port, "%s: port %u", c->name, req->port);
    cr_expect(str_is(req->path, c->path), "%s: path '%.*s'", c->name,
              (int)req->path.len, req->path.p);
    cr_expect_eq(req->framing.body, c->body, "%s: body %d", c->name, req->framing.body);
    if (c->body == HTTP_BODY_LENGTH)
        cr_expect_eq(req->framing.content_length, c->content_length,
                     "%s: content_length", c->name);
    cr_expect_eq(req->framing.keep_alive, c->keep_alive, "%s: keep_alive", c->name);
    cr_expect_eq(req->expect_continue, c->expect_continue, "%s: expect", c->name);
    cr_expect_eq(req->framing.conn_upgrade, c->conn_upgrade, "%s: conn_upgrade", c->name);
    cr_expect_eq(req->framing.has_upgrade, c->has_upgrade, "%s: has_upgrade", c->name);
    cr_expect_eq(req->framing.n_conn_tokens, c->n_conn_tokens, "%s: conn tokens %zu",
                 c->name, req->framing.n_conn_tokens);
    cr_expect_eq(req->n_headers, c->n_headers, "%s: n_headers %zu", c->name,
                 req->n_headers);

    /* Zero-copy: everything points into the head (path may be static "/"). */
    cr_expect(str_inside(req->method, buf, head), "%s: method ptr", c->name);
    cr_expect(str_inside(req->target, buf, head), "%s: target ptr", c->name);
    cr_expect(str_inside(req->host, buf, head), "%s: host ptr", c->name);
    if (!(c->form == HTTP_FORM_ABSOLUTE && str_is(req->path, "/")))
        cr_expect(str_inside(req->path, buf, head), "%s: path ptr", c->name);
    for (size_t i = 0; i < req->n_headers; i++) {
        cr_expect(str_inside(req->headers[i].name, buf, head), "%s: hdr name", c->name);
        cr_expect(str_inside(req->headers[i].value, buf, head), "%s: hdr value", c->name);
        cr_expect(req->headers[i].name.len > 0, "%s: empty name", c->name);
    }
    for (size_t i = 0; i < req->framing.n_conn_tokens; i++)
        cr_expect(str_inside(req->framing.conn_tokens[i], buf, head), "%s: token",
                  c->name);
    (void)len;
}

Test(http_request, valid_table)
{
    for (size_t i = 0; i < ARRAY_LEN(valid_requests); i++) {
        const struct req_case *c = &valid_requests[i];
        size_t len = strlen(c->raw);
        char *buf = guarded(c->raw, len);
        http_request_t req;
        int r = http_parse_request(buf, len, &req);

        check_request(c, buf, len, r, &req);
    }
}

/* Parsing exactly the head (no following bytes) gives the same result. */
Test(http_request, valid_table_head_only)
{
    for (size_t i = 0; i < ARRAY_LEN(valid_requests); i++) {
        const struct req_case *c = &valid_requests[i];
        size_t len = strlen(c->raw) - c->extra;
        http_request_t req;

        cr_expect_eq(parse_req(c->raw, len, &req), (int)len, "%s", c->name);
    }
}

/* Every strict prefix of a valid head is incomplete, never an error. */
Test(http_request, every_prefix_incomplete)
{
    for (size_t i = 0; i < ARRAY_LEN(valid_requests); i++) {
        const struct req_case *c = &valid_requests[i];
        size_t head = strlen(c->raw) - c->extra;

        for (size_t k = 0; k < head; k++) {
            http_request_t req;
            int r = parse_req(c->raw, k, &req);

            cr_assert_eq(r, HTTP_INCOMPLETE, "%s: prefix %zu returned %d (%s)",
                         c->name, k, r, http_strerror(r));
        }
    }
}

Test(http_request, header_values)
{
    static const char raw[] =
        "GET / HTTP/1.1\r\nHost:  h  \r\nX-A: \ta\tb \t\r\nX-B:\r\nx-c: 1\r\n\r\n";
    http_request_t req;
    const http_header_t *h;
    int r = parse_req(S(raw), &req);

    cr_assert_eq(r, (int)sizeof(raw) - 1);
    cr_assert_eq(req.n_headers, 4);
    cr_expect(str_is(req.headers[0].name, "Host"));
    cr_expect(str_is(req.headers[0].value, "h"));
    cr_expect(req.has_host_header);
    cr_expect(str_is(req.host_header, "h"));
    cr_expect(str_is(req.headers[1].value, "a\tb"));
    cr_expect(str_is(req.headers[2].value, ""));
    h = http_find_header(req.headers, req.n_headers, "X-C");
    cr_assert_not_null(h);
    cr_expect(str_is(h->name, "x-c"));
    cr_expect(str_is(h->value, "1"));
    cr_expect_null(http_find_header(req.headers, req.n_headers, "X-D"));
    cr_expect(http_str_eq_nocase(req.headers[0].name, "HOST"));
    cr_expect(!http_str_eq_nocase(req.headers[0].name, "Hos"));
    cr_expect(!req.expect_continue);
}

Test(http_request, connection_tokens)
{
    static const char raw[] =
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: Keep-Alive , X-Foo\r\n"
        "Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
    http_request_t req;

    cr_assert_gt(parse_req(S(raw), &req), 0);
    cr_assert_eq(req.framing.n_conn_tokens, 3);
    cr_expect(str_is(req.framing.conn_tokens[0], "Keep-Alive"));
    cr_expect(str_is(req.framing.conn_tokens[1], "X-Foo"));
    cr_expect(str_is(req.framing.conn_tokens[2], "Upgrade"));
    cr_expect(req.framing.conn_upgrade);
    cr_expect(req.framing.has_upgrade);
    cr_expect(req.framing.keep_alive);
}

Test(http_request, method_map)
{
    static const struct {
        const char *m;
        enum http_method e;
    } t[] = {
        { "GET", HTTP_M_GET }, { "HEAD", HTTP_M_HEAD }, { "POST", HTTP_M_POST },
        { "PUT", HTTP_M_PUT }, { "DELETE", HTTP_M_DELETE },
        { "OPTIONS", HTTP_M_OPTIONS }, { "TRACE", HTTP_M_TRACE },
        { "PATCH", HTTP_M_PATCH }, { "GETX", HTTP_M_OTHER }, { "Get", HTTP_M_OTHER },
        { "M-SEARCH", HTTP_M_OTHER }, { "!#$%&'*+-.^_`|~", HTTP_M_OTHER },
    };

    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        char raw[128];
        http_request_t req;
        int n = snprintf(raw, sizeof(raw), "%s / HTTP/1.1\r\nHost: h\r\n\r\n", t[i].m);

        cr_assert_eq(parse_req(raw, (size_t)n, &req), n, "%s", t[i].m);
        cr_expect_eq(req.meth, t[i].e, "%s", t[i].m);
        cr_expect(str_is(req.method, t[i].m), "%s", t[i].m);
    }
}

/* ------------------------------------------------------------------ */
/* Hostile requests                                                   */
/* ------------------------------------------------------------------ */

struct bad_case {
    const char *name;
    const char *raw;
    size_t len;     /* 0: strlen(raw) */
    int err;
};

#define REQ(line, hdrs) line "\r\nHost: h\r\n" hdrs "\r\n"
#define POST(hdrs) REQ("POST / HTTP/1.1", hdrs)

static const struct bad_case bad_requests[] = {
    /* Content-Length / Transfer-Encoding smuggling. */
    { "CL then TE", POST("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE then CL", POST("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE then CL 0", POST("Transfer-Encoding: chunked\r\nContent-Length: 0\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL list differs", POST("Content-Length: 5, 6\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL fields differ", POST("Content-Length: 5\r\nContent-Length: 6\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL negative", POST("Content-Length: -5\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL plus sign", POST("Content-Length: +5\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL hex", POST("Content-Length: 0x5\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL trailing junk", POST("Content-Length: 5a\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL decimal", POST("Content-Length: 5.0\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL empty", POST("Content-Length:\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL space inside", POST("Content-Length: 5 5\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL trailing comma", POST("Content-Length: 5,\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL leading comma", POST("Content-Length: ,5\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL empty member", POST("Content-Length: 5,,5\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL overflow u64", POST("Content-Length: 18446744073709551616\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL above int64", POST("Content-Length: 9223372036854775808\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL huge", POST("Content-Length: 99999999999999999999999999999\r\n"), 0, HTTP_E_SMUGGLING },
    { "CL quoted", POST("Content-Length: \"5\"\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE chunked twice", POST("Transfer-Encoding: chunked, chunked\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE gzip, chunked", POST("Transfer-Encoding: gzip, chunked\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE chunked, gzip", POST("Transfer-Encoding: chunked, gzip\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE gzip", POST("Transfer-Encoding: gzip\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE identity", POST("Transfer-Encoding: identity\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE chunked with parameter", POST("Transfer-Encoding: chunked;q=1\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE empty", POST("Transfer-Encoding:\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE trailing comma", POST("Transfer-Encoding: chunked,\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE leading comma", POST("Transfer-Encoding: , chunked\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE quoted", POST("Transfer-Encoding: \"chunked\"\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE prefix", POST("Transfer-Encoding: chunk\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE suffix", POST("Transfer-Encoding: chunkedx\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE fields gzip + chunked", POST("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE fields chunked twice", POST("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"), 0, HTTP_E_SMUGGLING },
    { "TE in HTTP/1.0", REQ("POST / HTTP/1.0", "Transfer-Encoding: chunked\r\n"), 0, HTTP_E_SMUGGLING },
    { "space before colon (TE)", POST("Transfer-Encoding : chunked\r\n"), 0, HTTP_E_SMUGGLING },
    { "tab before colon (CL)", POST("Content-Length\t: 5\r\n"), 0, HTTP_E_SMUGGLING },
    { "space before colon (Host)", "GET / HTTP/1.1\r\nHost : h\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "TE with vertical tab", POST("Transfer-Encoding: \vchunked\r\n"), 0, HTTP_E_SYNTAX },
    { "TE obs-fold", POST("Transfer-Encoding:\r\n chunked\r\n"), 0, HTTP_E_SYNTAX },

    /* Line structure. */
    { "obs-fold", POST("X: a\r\n b\r\n"), 0, HTTP_E_SYNTAX },
    { "obs-fold with tab", POST("X: a\r\n\tb\r\n"), 0, HTTP_E_SYNTAX },
    { "first field folded", "GET / HTTP/1.1\r\n Host: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "bare CR in value", POST("X: a\rb\r\n"), 0, HTTP_E_SYNTAX },
    { "bare CR at value end", POST("X: a\r\r\n"), 0, HTTP_E_SYNTAX },
    { "bare CR in request line", "GET /\r HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "bare CR line end", "GET / HTTP/1.1\rHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "lone LF everywhere", "GET / HTTP/1.1\nHost: h\n\n", 0, HTTP_E_SYNTAX },
    { "lone LF after a field", "GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "lone LF ends the head", "GET / HTTP/1.1\r\nHost: h\r\n\n", 0, HTTP_E_SYNTAX },
    { "lone LF ends the head 2", "GET / HTTP/1.1\r\nHost: h\n\r\n", 0, HTTP_E_SYNTAX },
    { "lone LF before request", "\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "bare CR before request", "\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "NUL in value", POST("X: a\0b\r\n"), sizeof(POST("X: a\0b\r\n")) - 1, HTTP_E_SYNTAX },
    { "NUL in name", POST("X\0: b\r\n"), sizeof(POST("X\0: b\r\n")) - 1, HTTP_E_SYNTAX },
    { "NUL in target", "GET /\0 HTTP/1.1\r\n\r\n", sizeof("GET /\0 HTTP/1.1\r\n\r\n") - 1, HTTP_E_SYNTAX },
    { "CTL in value", POST("X: a\x01" "b\r\n"), 0, HTTP_E_SYNTAX },
    { "ESC in value", POST("X: \x1b[31m\r\n"), 0, HTTP_E_SYNTAX },
    { "DEL in value", POST("X: a\x7f\r\n"), 0, HTTP_E_SYNTAX },
    { "bracket in name", POST("X[y]: 1\r\n"), 0, HTTP_E_SYNTAX },
    { "at-sign in name", POST("X@y: 1\r\n"), 0, HTTP_E_SYNTAX },
    { "quote in name", POST("X\"y: 1\r\n"), 0, HTTP_E_SYNTAX },
    { "slash in name", POST("X/y: 1\r\n"), 0, HTTP_E_SYNTAX },
    { "space inside name", POST("X y: 1\r\n"), 0, HTTP_E_SYNTAX },
    { "obs-text in name", POST("X\xc3\xa9: 1\r\n"), 0, HTTP_E_SYNTAX },
    { "empty name", POST(": v\r\n"), 0, HTTP_E_SYNTAX },
    { "no colon", POST("NoColon\r\n"), 0, HTTP_E_SYNTAX },
    { "no colon with space", POST("Host h\r\n"), 0, HTTP_E_SYNTAX },

    /* Request line. */
    { "double space", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "trailing space", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "leading space", " GET / HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "tab separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "HTTP/0.9 request", "GET /\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "no target", "GET HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "space in target", "GET /a b HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "obs-text in target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "non-token method", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "lowercase version", "GET / http/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "TLS client hello", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 0, HTTP_E_SYNTAX },
    { "binary garbage", "\x01\x02\x03", 0, HTTP_E_SYNTAX },
    { "garbage in partial line", "GET /\x01", 0, HTTP_E_SYNTAX },
    { "garbage in partial version", "GET / HTTX", 0, HTTP_E_SYNTAX },

    /* Versions. */
    { "HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n", 0, HTTP_E_VERSION },
    { "HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n", 0, HTTP_E_VERSION },
    { "HTTP/0.9", "GET / HTTP/0.9\r\nHost: h\r\n\r\n", 0, HTTP_E_VERSION },
    { "HTTP/1.10", "GET / HTTP/1.10\r\nHost: h\r\n\r\n", 0, HTTP_E_VERSION },
    { "HTTP/3", "GET / HTTP/3\r\nHost: h\r\n\r\n", 0, HTTP_E_VERSION },
    { "h2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, HTTP_E_VERSION },
    { "HTTP/2.0 line only", "GET / HTTP/2.0\r\n", 0, HTTP_E_VERSION },

    /* Host and targets. */
    { "HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "two Host fields", "GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 0, HTTP_E_TARGET },
    { "two Host, absolute-form", "GET http://a/ HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 0, HTTP_E_TARGET },
    { "Host userinfo", "GET / HTTP/1.1\r\nHost: u@h\r\n\r\n", 0, HTTP_E_TARGET },
    { "Host port 0", "GET / HTTP/1.1\r\nHost: h:0\r\n\r\n", 0, HTTP_E_TARGET },
    { "Host port 65536", "GET / HTTP/1.1\r\nHost: h:65536\r\n\r\n", 0, HTTP_E_TARGET },
    { "Host port letters", "GET / HTTP/1.1\r\nHost: h:8o\r\n\r\n", 0, HTTP_E_TARGET },
    { "Host empty port", "GET / HTTP/1.1\r\nHost: h:\r\n\r\n", 0, HTTP_E_TARGET },
    { "Host empty", "GET / HTTP/1.1\r\nHost:\r\n\r\n", 0, HTTP_E_TARGET },
    { "Host with space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 0, HTTP_E_TARGET },
    { "Host with path", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 0, HTTP_E_TARGET },
    { "Host open bracket", "GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", 0, HTTP_E_TARGET },
    { "Host percent", "GET / HTTP/1.1\r\nHost: a%2eb\r\n\r\n", 0, HTTP_E_TARGET },
    { "bad Host, absolute-form", "GET http://a/ HTTP/1.1\r\nHost: u@b\r\n\r\n", 0, HTTP_E_TARGET },
    { "scheme ftp", "GET ftp://h/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "scheme httpx", "GET httpx://h/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "no host", "GET http:///x HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "empty authority", "GET http:// HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "userinfo", "GET http://user@h/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "userinfo with password", "GET http://u:pw@h/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "port too big", "GET http://h:99999/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "port 65536", "GET http://h:65536/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "port 0", "GET http://h:0/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "empty port", "GET http://h:/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "long port", "GET http://h:0000080/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "open IPv6", "GET http://[::1/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "empty IPv6", "GET http://[]/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "IPv6 zone", "GET http://[fe80::1%25eth0]/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "IPvFuture", "GET http://[v1.x]/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "junk after IPv6", "GET http://[::1]x/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "missing colon", "GET http//h/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "missing slashes", "GET http:h/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "query without path", "GET http://h?q HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "fragment without path", "GET http://h#f HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "backslash host", "GET http://h\\@evil/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "authority-form for GET", "GET h:80 HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_TARGET },
    { "CONNECT origin-form", "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_TARGET },
    { "CONNECT without port", "CONNECT h HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "CONNECT empty port", "CONNECT h: HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "CONNECT port 0", "CONNECT h:0 HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "CONNECT absolute-form", "CONNECT http://h:443/ HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "CONNECT userinfo", "CONNECT u@h:443 HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "CONNECT asterisk", "CONNECT * HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "CONNECT IPv6 without port", "CONNECT [::1] HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },
    { "asterisk for GET", "GET * HTTP/1.1\r\nHost: h\r\n\r\n", 0, HTTP_E_TARGET },
    { "asterisk, no Host", "OPTIONS * HTTP/1.1\r\n\r\n", 0, HTTP_E_TARGET },

    /* Connection. */
    { "Connection quoted", POST("Connection: \"close\"\r\n"), 0, HTTP_E_SYNTAX },
    { "Connection semicolon", POST("Connection: close;x\r\n"), 0, HTTP_E_SYNTAX },
    { "17 Connection tokens",
      POST("Connection: a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\r\n"), 0, HTTP_E_HEAD_TOO_LARGE },
    { "17 Connection tokens in two fields",
      POST("Connection: a,b,c,d,e,f,g,h\r\nConnection: i,j,k,l,m,n,o,p,q\r\n"), 0,
      HTTP_E_HEAD_TOO_LARGE },
};

Test(http_request, hostile_table)
{
    for (size_t i = 0; i < ARRAY_LEN(bad_requests); i++) {
        const struct bad_case *c = &bad_requests[i];
        size_t len = c->len ? c->len : strlen(c->raw);
        http_request_t req;
        int r = parse_req(c->raw, len, &req);

        cr_expect_eq(r, c->err, "%s: returned %d (%s), want %d (%s)", c->name, r,
                     http_strerror(r), c->err, http_strerror(c->err));
    }
}

/* An error never turns into success with more bytes; prefixes never lie. */
Test(http_request, hostile_prefixes)
{
    for (size_t i = 0; i < ARRAY_LEN(bad_requests); i++) {
        const struct bad_case *c = &bad_requests[i];
        size_t len = c->len ? c->len : strlen(c->raw);

        for (size_t k = 0; k < len; k++) {
            http_request_t req;
            int r = parse_req(c->raw, k, &req);

            cr_assert(r == HTTP_INCOMPLETE || r == c->err,
                      "%s: prefix %zu returned %d", c->name, k, r);
        }
    }
}

/* Sixteen Connection tokens are fine. */
Test(http_request, sixteen_connection_tokens)
{
    static const char raw[] =
        POST("Connection: a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,close\r\n");
    http_request_t req;

    cr_assert_eq(parse_req(S(raw), &req), (int)sizeof(raw) - 1);
    cr_expect_eq(req.framing.n_conn_tokens, HTTP_MAX_CONN_TOKENS);
    cr_expect(!req.framing.keep_alive);
}

/* ------------------------------------------------------------------ */
/* Limits                                                             */
/* ------------------------------------------------------------------ */

/* Builds "GET /aaaa... HTTP/1.1" with a request line of exactly n bytes. */
static size_t
build_request_line(char *buf, size_t n)
{
    static const char pre[] = "GET /", post[] = " HTTP/1.1";
    size_t fill = n - (sizeof(pre) - 1) - (sizeof(post) - 1);

    memcpy(buf, pre, sizeof(pre) - 1);
    memset(buf + sizeof(pre) - 1, 'a', fill);
    memcpy(buf + sizeof(pre) - 1 + fill, post, sizeof(post) - 1);
    return n;
}

Test(http_limits, request_line)
{
    static char buf[HTTP_MAX_REQUEST_LINE + 64];
    static const char tail[] = "\r\nHost: h\r\n\r\n";
    http_request_t req;
    size_t n;

    /* Exactly the limit: fine. */
    n = build_request_line(buf, HTTP_MAX_REQUEST_LINE);
    memcpy(buf + n, tail, sizeof(tail) - 1);
    cr_expect_eq(parse_req(buf, n + sizeof(tail) - 1, &req), (int)(n + sizeof(tail) - 1));
    cr_expect_eq(req.path.len, HTTP_MAX_REQUEST_LINE - 13);
    /* Without the CRLF yet, and with only the CR: still waiting. */
    cr_expect_eq(parse_req(buf, n, &req), HTTP_INCOMPLETE);
    cr_expect_eq(parse_req(buf, n + 1, &req), HTTP_INCOMPLETE);

    /* One more byte: 414, with or without the rest of the head. */
    n = build_request_line(buf, HTTP_MAX_REQUEST_LINE + 1);
    memcpy(buf + n, tail, sizeof(tail) - 1);
    cr_expect_eq(parse_req(buf, n + sizeof(tail) - 1, &req), HTTP_E_REQUEST_LINE_TOO_LONG);
    cr_expect_eq(parse_req(buf, n + 2, &req), HTTP_E_REQUEST_LINE_TOO_LONG);
    cr_expect_eq(parse_req(buf, n + 1, &req), HTTP_E_REQUEST_LINE_TOO_LONG);
    cr_expect_eq(parse_req(buf, n, &req), HTTP_E_REQUEST_LINE_TOO_LONG);

    /* A request line that never ends. */
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "GET /", 5);
    cr_expect_eq(parse_req(buf, sizeof(buf), &req), HTTP_E_REQUEST_LINE_TOO_LONG);
}

static size_t
build_headers(char *buf, size_t count)
{
    size_t n = (size_t)sprintf(buf, "GET / HTTP/1.1\r\nHost: h\r\n");

    for (size_t i = 1; i < count; i++)
        n += (size_t)sprintf(buf + n, "X-H%zu: %zu\r\n", i, i);
    return n;
}

Test(http_limits, header_count)
{
    static char buf[8192];
    http_request_t req;
    size_t n;

    n = build_headers(buf, HTTP_MAX_HEADERS);
    memcpy(buf + n, "\r\n", 2);
    cr_expect_eq(parse_req(buf, n + 2, &req), (int)(n + 2));
    cr_expect_eq(req.n_headers, HTTP_MAX_HEADERS);

    n = build_headers(buf, HTTP_MAX_HEADERS + 1);
    memcpy(buf + n, "\r\n", 2);
    cr_expect_eq(parse_req(buf, n + 2, &req), HTTP_E_HEAD_TOO_LARGE);
    /* Detected before the head is complete. */
    cr_expect_eq(parse_req(buf, n, &req), HTTP_E_HEAD_TOO_LARGE);
}

/* A request head of exactly n bytes, padded with one long field. */
static void
build_head(char *buf, size_t n)
{
    static const char pre[] = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
    size_t fill = n - (sizeof(pre) - 1) - 4;

    memcpy(buf, pre, sizeof(pre) - 1);
    memset(buf + sizeof(pre) - 1, 'p', fill);
    memcpy(buf + n - 4, "\r\n\r\n", 4);
}

Test(http_limits, head_size)
{
    static char buf[HTTP_MAX_HEAD_BYTES + 1024];
    http_request_t req;
    http_response_t resp;

    build_head(buf, HTTP_MAX_HEAD_BYTES);
    cr_expect_eq(parse_req(buf, HTTP_MAX_HEAD_BYTES, &req), HTTP_MAX_HEAD_BYTES);
    cr_expect_eq(parse_req(buf, HTTP_MAX_HEAD_BYTES - 1, &req), HTTP_INCOMPLETE);

    build_head(buf, HTTP_MAX_HEAD_BYTES + 1);
    cr_expect_eq(parse_req(buf, HTTP_MAX_HEAD_BYTES + 1, &req), HTTP_E_HEAD_TOO_LARGE);
    /* No end in sight after the limit. */
    cr_expect_eq(parse_req(buf, HTTP_MAX_HEAD_BYTES, &req), HTTP_E_HEAD_TOO_LARGE);
    cr_expect_eq(parse_req(buf, HTTP_MAX_HEAD_BYTES - 1, &req), HTTP_INCOMPLETE);

    /* Endless empty lines before the request line. */
    for (size_t i = 0; i + 1 < sizeof(buf); i += 2)
        memcpy(buf + i, "\r\n", 2);
    cr_expect_eq(parse_req(buf, sizeof(buf), &req), HTTP_E_HEAD_TOO_LARGE);
    cr_expect_eq(parse_req(buf, 1000, &req), HTTP_INCOMPLETE);

    /* Responses. */
    memcpy(buf, "HTTP/1.1 200 OK\r\nX: ", 20);
    memset(buf + 20, 'p', sizeof(buf) - 20);
    cr_expect_eq(parse_resp(buf, sizeof(buf), HTTP_M_GET, &resp), HTTP_E_HEAD_TOO_LARGE);
    cr_expect_eq(parse_resp(buf, 1000, HTTP_M_GET, &resp), HTTP_INCOMPLETE);
}

/* ------------------------------------------------------------------ */
/* Responses                                                          */
/* ------------------------------------------------------------------ */

struct resp_case {
    const char *name;
    const char *raw;
    size_t extra;
    enum http_method req_method;
    int status;
    int minor;
    const char *reason;
    enum http_body_kind body;
    uint64_t content_length;
    bool keep_alive;
    size_t n_headers;
};

static const struct resp_case valid_responses[] = {
    { "200 with Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 5,
      HTTP_M_GET, 200, 1, "OK", HTTP_BODY_LENGTH, 5, true, 1 },
    { "200 to HEAD has no body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n", 0,
      HTTP_M_HEAD, 200, 1, "OK", HTTP_BODY_NONE, 0, true, 1 },
    { "200 to HEAD, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
      HTTP_M_HEAD, 200, 1, "OK", HTTP_BODY_NONE, 0, true, 1 },
    { "204", "HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n", 0,
      HTTP_M_POST, 204, 1, "No Content", HTTP_BODY_NONE, 0, true, 1 },
    { "304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 100\r\nETag: \"x\"\r\n\r\n", 0,
      HTTP_M_GET, 304, 1, "Not Modified", HTTP_BODY_NONE, 0, true, 2 },
    { "100 Continue", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\r\n", 19,
      HTTP_M_POST, 100, 1, "Continue", HTTP_BODY_NONE, 0, true, 0 },
    { "101 Switching Protocols",
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
      0, HTTP_M_GET, 101, 1, "Switching Protocols", HTTP_BODY_NONE, 0, true, 2 },
    { "103 Early Hints", "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n", 0,
      HTTP_M_GET, 103, 1, "Early Hints", HTTP_BODY_NONE, 0, true, 1 },
    { "200 to CONNECT: tunnel", "HTTP/1.1 200 Connection established\r\n\r\n", 0,
      HTTP_M_CONNECT, 200, 1, "Connection established", HTTP_BODY_NONE, 0, true, 0 },
    { "200 to CONNECT with CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 0,
      HTTP_M_CONNECT, 200, 1, "OK", HTTP_BODY_NONE, 0, true, 1 },
    { "407 to CONNECT has a body",
      "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 4\r\n\r\n", 0,
      HTTP_M_CONNECT, 407, 1, "Proxy Authentication Required", HTTP_BODY_LENGTH, 4, true, 1 },
    { "until close", "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nabc", 3,
      HTTP_M_GET, 200, 1, "OK", HTTP_BODY_UNTIL_CLOSE, 0, false, 1 },
    { "chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
      HTTP_M_GET, 200, 1, "OK", HTTP_BODY_CHUNKED, 0, true, 1 },
    { "gzip, chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n", 0,
      HTTP_M_GET, 200, 1, "OK", HTTP_BODY_CHUNKED, 0, true, 1 },
    { "gzip then chunked fields",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
      HTTP_M_GET, 200, 1, "OK", HTTP_BODY_CHUNKED, 0, true, 2 },
    { "TE gzip only: until close", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0,
      HTTP_M_GET, 200, 1, "OK", HTTP_BODY_UNTIL_CLOSE, 0, false, 1 },
    { "chunked, gzip: until close",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 0,
      HTTP_M_GET, 200, 1, "OK", HTTP_BODY_UNTIL_CLOSE, 0, false, 1 },
    { "HTTP/1.0 with TE: until close",
      "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 0,
      HTTP_M_GET, 200, 0, "OK", HTTP_BODY_UNTIL_CLOSE, 0, false, 1 },
    { "empty reason with SP", "HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n", 0,
      HTTP_M_GET, 200, 1, "", HTTP_BODY_LENGTH, 0, true, 1 },
    { "empty reason without SP", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n", 0,
      HTTP_M_GET, 404, 1, "", HTTP_BODY_LENGTH, 0, true, 1 },
    { "HTTP/1.0 default close", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 2,
      HTTP_M_GET, 200, 0, "OK", HTTP_BODY_LENGTH, 2, false, 1 },
    { "HTTP/1.0 keep-alive",
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n", 0,
      HTTP_M_GET, 200, 0, "OK", HTTP_BODY_LENGTH, 2, true, 2 },
    { "HTTP/1.1 close", "HTTP/1.1 500 Oops\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0,
      HTTP_M_GET, 500, 1, "Oops", HTTP_BODY_LENGTH, 0, false, 2 },
    { "reason with obs-text and tab", "HTTP/1.1 200 \xc3\x93K\tfine\r\nContent-Length: 0\r\n\r\n", 0,
      HTTP_M_GET, 200, 1, "\xc3\x93K\tfine", HTTP_BODY_LENGTH, 0, true, 1 },
    { "status 999", "HTTP/1.1 999 Weird\r\nContent-Length: 0\r\n\r\n", 0,
      HTTP_M_GET, 999, 1, "Weird", HTTP_BODY_LENGTH, 0, true, 1 },
    { "CL list", "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n", 0,
      HTTP_M_GET, 200, 1, "OK", HTTP_BODY_LENGTH, 3, true, 1 },
};

Test(http_response, valid_table)
{
    for (size_t i = 0; i < ARRAY_LEN(valid_responses); i++) {
        const struct resp_case *c = &valid_responses[i];
        size_t len = strlen(c->raw), head = len - c->extra;
        char *buf = guarded(c->raw, len);
        http_response_t resp;
        int r = http_parse_response(buf, len, c->req_method, &resp);

        cr_assert_eq(r, (int)head, "%s: returned %d (%s), want %zu", c->name, r,
                     http_strerror(r), head);
        cr_expect_eq(resp.status, c->status, "%s: status", c->name);
        cr_expect_eq(resp.version_minor, c->minor, "%s: minor", c->name);
        cr_expect(str_is(resp.reason, c->reason), "%s: reason", c->name);
        cr_expect(str_inside(resp.reason, buf, head), "%s: reason ptr", c->name);
        cr_expect_eq(resp.framing.body, c->body, "%s: body %d", c->name, resp.framing.body);
        if (c->body == HTTP_BODY_LENGTH)
            cr_expect_eq(resp.framing.content_length, c->content_length, "%s: CL", c->name);
        cr_expect_eq(resp.framing.keep_alive, c->keep_alive, "%s: keep_alive", c->name);
        cr_expect_eq(resp.n_headers, c->n_headers, "%s: n_headers", c->name);
        for (size_t k = 0; k < resp.n_headers; k++) {
            cr_expect(str_inside(resp.headers[k].name, buf, head), "%s: name", c->name);
            cr_expect(str_inside(resp.headers[k].value, buf, head), "%s: value", c->name);
        }
    }
}

Test(http_response, every_prefix_incomplete)
{
    for (size_t i = 0; i < ARRAY_LEN(valid_responses); i++) {
        const struct resp_case *c = &valid_responses[i];
        size_t head = strlen(c->raw) - c->extra;

        for (size_t k = 0; k < head; k++) {
            http_response_t resp;
            int r = parse_resp(c->raw, k, c->req_method, &resp);

            cr_assert_eq(r, HTTP_INCOMPLETE, "%s: prefix %zu returned %d", c->name, k, r);
        }
    }
}

static const struct bad_case bad_responses[] = {
    { "CL + TE", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "TE + CL on 304", "HTTP/1.1 304 NM\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "CL list differs", "HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "CL fields differ", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "CL not digits", "HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "CL overflow", "HTTP/1.1 200 OK\r\nContent-Length: 18446744073709551617\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "chunked twice", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "chunked with parameter", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "TE empty member", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip,,chunked\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "space before colon", "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n", 0, HTTP_E_SMUGGLING },
    { "obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "lone LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", 0, HTTP_E_SYNTAX },
    { "bare CR", "HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "NUL in value", "HTTP/1.1 200 OK\r\nX: \0\r\n\r\n", sizeof("HTTP/1.1 200 OK\r\nX: \0\r\n\r\n") - 1, HTTP_E_SYNTAX },
    { "two-digit status", "HTTP/1.1 20 OK\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "four-digit status", "HTTP/1.1 2000 OK\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "status below 100", "HTTP/1.1 099 X\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "status letters", "HTTP/1.1 abc OK\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "no status", "HTTP/1.1\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "HTTP/2.0", "HTTP/2.0 200 OK\r\n\r\n", 0, HTTP_E_VERSION },
    { "HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n", 0, HTTP_E_VERSION },
    { "lowercase", "http/1.1 200 OK\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "garbage start", "<html>", 0, HTTP_E_SYNTAX },
    { "leading CRLF", "\r\nHTTP/1.1 200 OK\r\n\r\n", 0, HTTP_E_SYNTAX },
    { "17 Connection tokens", "HTTP/1.1 200 OK\r\nConnection: a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q\r\n\r\n", 0, HTTP_E_HEAD_TOO_LARGE },
};

Test(http_response, hostile_table)
{
    for (size_t i = 0; i < ARRAY_LEN(bad_responses); i++) {
        const struct bad_case *c = &bad_responses[i];
        size_t len = c->len ? c->len : strlen(c->raw);
        http_response_t resp;
        int r = parse_resp(c->raw, len, HTTP_M_GET, &resp);

        cr_expect_eq(r, c->err, "%s: returned %d (%s), want %d", c->name, r,
                     http_strerror(r), c->err);
        for (size_t k = 0; k < len; k++) {
            r = parse_resp(c->raw, k, HTTP_M_GET, &resp);
            cr_assert(r == HTTP_INCOMPLETE || r == c->err, "%s: prefix %zu returned %d",
                      c->name, k, r);
        }
    }
}

Test(http_response, too_many_headers)
{
    static char buf[8192];
    http_response_t resp;
    size_t n = (size_t)sprintf(buf, "HTTP/1.1 200 OK\r\n");

    for (size_t i = 0; i < HTTP_MAX_HEADERS; i++)
        n += (size_t)sprintf(buf + n, "X-%zu: v\r\n", i);
    memcpy(buf + n, "\r\n", 2);
    cr_expect_eq(parse_resp(buf, n + 2, HTTP_M_GET, &resp), (int)(n + 2));
    n += (size_t)sprintf(buf + n, "X-last: v\r\n");
    memcpy(buf + n, "\r\n", 2);
    cr_expect_eq(parse_resp(buf, n + 2, HTTP_M_GET, &resp), HTTP_E_HEAD_TOO_LARGE);
}

/* ------------------------------------------------------------------ */
/* Error helpers                                                      */
/* ------------------------------------------------------------------ */

Test(http_errors, status_and_text)
{
    cr_expect_eq(http_error_status(HTTP_E_SYNTAX), 400);
    cr_expect_eq(http_error_status(HTTP_E_REQUEST_LINE_TOO_LONG), 414);
    cr_expect_eq(http_error_status(HTTP_E_HEAD_TOO_LARGE), 431);
    cr_expect_eq(http_error_status(HTTP_E_VERSION), 505);
    cr_expect_eq(http_error_status(HTTP_E_SMUGGLING), 400);
    cr_expect_eq(http_error_status(HTTP_E_TARGET), 400);
    cr_expect_eq(http_error_status(HTTP_E_METHOD), 501);
    cr_expect_eq(http_error_status(HTTP_E_CHUNK), 400);
    for (int e = HTTP_E_CHUNK; e <= HTTP_INCOMPLETE; e++) {
        cr_expect_not_null(http_strerror(e));
        cr_expect_gt(strlen(http_strerror(e)), 0);
    }
    cr_expect_not_null(http_strerror(-1000));
}

/* ------------------------------------------------------------------ */
/* Chunked bodies                                                     */
/* ------------------------------------------------------------------ */

struct chunk_case {
    const char *name;
    const char *raw;
    size_t extra;           /* bytes after the body */
    const char *payload;
};

static const struct chunk_case valid_chunks[] = {
    { "one chunk", "5\r\nhello\r\n0\r\n\r\n", 0, "hello" },
    { "extensions and trailers",
      "5;name=value;x\r\nhello\r\n6;q=\"a b\"\r\n world\r\n0;last\r\n"
      "Expires: never\r\nX-T: a\tb\r\n\r\n", 0, "hello world" },
    { "uppercase hex", "A\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n", 0,
      "0123456789abcdefghij" },
    { "empty body", "0\r\n\r\n", 0, "" },
    { "leading zeros", "00000005\r\nhello\r\n000\r\n\r\n", 0, "hello" },
    { "CRLF inside data", "4\r\n\r\n\r\n\r\n0\r\n\r\n", 0, "\r\n\r\n" },
    { "followed by the next request",
      "3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\n\r\n", 18, "abc" },
    { "followed by garbage", "1\r\nz\r\n0\r\nT: 1\r\n\r\n\x01\x02", 2, "z" },
};

/*
 * Feeds raw[0..n) in pieces cut at the given offsets (in order). Returns
 * the total consumed, or a negative error; the decoded payload (decode
 * mode) goes to out[0..*out_n).
 */
static ssize_t
feed_pieces(const char *raw, size_t n, const size_t *cuts, size_t ncuts, bool decode,
            http_chunked_t *c, char *out, size_t *out_n)
{
    char *buf = guarded(raw, n);
    size_t at = 0, total = 0;

    *out_n = 0;
    http_chunked_init(c);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : n, got;
        ssize_t r;

        if (end < at)
            continue;
        r = http_chunked_feed(c, buf + at, end - at, decode, &got);
        if (r < 0)
            return r;
        cr_assert_leq((size_t)r, end - at);
        if (decode) {
            cr_assert_leq(got, (size_t)r);
            memcpy(out + *out_n, buf + at, got);
            *out_n += got;
        } else {
            cr_assert_eq(got, (size_t)r);
        }
        total += (size_t)r;
        if (http_chunked_done(c))
            break;
        cr_assert_eq((size_t)r, end - at, "stopped early without being done");
        at = end;
    }
    return (ssize_t)total;
}

static void
check_chunk_case(const struct chunk_case *c, const size_t *cuts, size_t ncuts,
                 const char *what)
{
    size_t n = strlen(c->raw), body = n - c->extra, out_n;
    char out[512];
    http_chunked_t st;
    ssize_t r;

    for (int decode = 0; decode <= 1; decode++) {
        r = feed_pieces(c->raw, n, cuts, ncuts, decode, &st, out, &out_n);
        cr_assert_eq(r, (ssize_t)body, "%s (%s, decode=%d): consumed %zd, want %zu",
                     c->name, what, decode, r, body);
        cr_assert(http_chunked_done(&st), "%s (%s): not done", c->name, what);
        if (decode) {
            cr_assert_eq(out_n, strlen(c->payload), "%s (%s): payload length %zu",
                         c->name, what, out_n);
            cr_assert(memcmp(out, c->payload, out_n) == 0, "%s (%s): payload",
                      c->name, what);
        }
    }
}

Test(http_chunked, valid_whole)
{
    for (size_t i = 0; i < ARRAY_LEN(valid_chunks); i++)
        check_chunk_case(&valid_chunks[i], NULL, 0, "whole");
}

Test(http_chunked, valid_split_everywhere)
{
    for (size_t i = 0; i < ARRAY_LEN(valid_chunks); i++) {
        size_t n = strlen(valid_chunks[i].raw);

        for (size_t k = 0; k <= n; k++)
            check_chunk_case(&valid_chunks[i], &k, 1, "split");
    }
}

Test(http_chunked, valid_byte_by_byte)
{
    size_t cuts[512];

    for (size_t i = 0; i < ARRAY_LEN(valid_chunks); i++) {
        size_t n = strlen(valid_chunks[i].raw);

        cr_assert_lt(n, ARRAY_LEN(cuts));
        for (size_t k = 0; k < n; k++)
            cuts[k] = k + 1;
        check_chunk_case(&valid_chunks[i], cuts, n, "bytewise");
    }
}

Test(http_chunked, done_consumes_nothing_more)
{
    char buf[] = "0\r\n\r\nmore";
    http_chunked_t c;
    size_t got;

    http_chunked_init(&c);
    cr_assert_eq(http_chunked_feed(&c, buf, sizeof(buf) - 1, false, &got), 5);
    cr_assert(http_chunked_done(&c));
    cr_expect_eq(http_chunked_feed(&c, buf + 5, 4, false, &got), 0);
    cr_expect_eq(got, 0);
}

Test(http_chunked, size_limit)
{
    http_chunked_t c;
    char ok[] = "1000000000000000\r\n";        /* 2^60 */
    char leading[] = "00001000000000000000\r\n";
    size_t got;

    http_chunked_init(&c);
    cr_expect_eq(http_chunked_feed(&c, ok, sizeof(ok) - 1, false, &got),
                 (ssize_t)sizeof(ok) - 1);
    cr_expect_eq(c.state, HTTP_CHUNK_DATA);
    cr_expect_eq(c.remaining, UINT64_C(1) << 60);

    http_chunked_init(&c);
    cr_expect_eq(http_chunked_feed(&c, leading, sizeof(leading) - 1, false, &got),
                 (ssize_t)sizeof(leading) - 1);
    cr_expect_eq(c.remaining, UINT64_C(1) << 60);
}

static const struct bad_case bad_chunks[] = {
    { "bad hex digit", "g\r\n", 0, HTTP_E_CHUNK },
    { "empty size", "\r\n", 0, HTTP_E_CHUNK },
    { "negative size", "-1\r\n", 0, HTTP_E_CHUNK },
    { "0x prefix", "0x5\r\nhello\r\n", 0, HTTP_E_CHUNK },
    { "space before size", " 5\r\nhello\r\n", 0, HTTP_E_CHUNK },
    { "space after size", "5 \r\nhello\r\n", 0, HTTP_E_CHUNK },
    { "BWS before extension", "5 ;a\r\nhello\r\n", 0, HTTP_E_CHUNK },
    { "lone LF after size", "5\nhello\r\n", 0, HTTP_E_CHUNK },
    { "CR then junk after size", "5\rxhello\r\n", 0, HTTP_E_CHUNK },
    { "missing CRLF after data", "5\r\nhelloX\r\n0\r\n\r\n", 0, HTTP_E_CHUNK },
    { "LF only after data", "5\r\nhello\n0\r\n\r\n", 0, HTTP_E_CHUNK },
    { "CR CR after data", "5\r\nhello\r\r\n", 0, HTTP_E_CHUNK },
    { "data longer than size", "3\r\nhello\r\n", 0, HTTP_E_CHUNK },
    { "CTL in extension", "5;\x01\r\nhello\r\n", 0, HTTP_E_CHUNK },
    { "lone LF in extension", "5;a\nhello\r\n", 0, HTTP_E_CHUNK },
    { "size above 2^60", "1000000000000001\r\n", 0, HTTP_E_CHUNK },
    { "size overflows 64 bits", "10000000000000001\r\n", 0, HTTP_E_CHUNK },
    { "size wraps to small", "10000000000000000000000000005\r\n", 0, HTTP_E_CHUNK },
    { "too many leading zeros", "000000000000000000000000000000005\r\n", 0, HTTP_E_CHUNK },
    { "trailer obs-fold", "0\r\nA: b\r\n c\r\n\r\n", 0, HTTP_E_CHUNK },
    { "trailer lone LF", "0\r\nA: b\n\r\n", 0, HTTP_E_CHUNK },
    { "trailer starts with colon", "0\r\n: b\r\n\r\n", 0, HTTP_E_CHUNK },
    { "trailer NUL", "0\r\nA: \0\r\n\r\n", sizeof("0\r\nA: \0\r\n\r\n") - 1, HTTP_E_CHUNK },
    { "final CR without LF", "0\r\n\r\r", 0, HTTP_E_CHUNK },
    { "final lone LF", "0\r\n\n", 0, HTTP_E_CHUNK },
};

Test(http_chunked, hostile_table)
{
    for (size_t i = 0; i < ARRAY_LEN(bad_chunks); i++) {
        const struct bad_case *c = &bad_chunks[i];
        size_t len = c->len ? c->len : strlen(c->raw), out_n;
        char out[256];
        http_chunked_t st;

        for (int decode = 0; decode <= 1; decode++) {
            ssize_t r = feed_pieces(c->raw, len, NULL, 0, decode, &st, out, &out_n);

            cr_expect_eq(r, HTTP_E_CHUNK, "%s: returned %zd", c->name, r);
            cr_expect_eq(st.state, HTTP_CHUNK_ERROR, "%s: state", c->name);
            /* The error state is sticky. */
            cr_expect_eq(http_chunked_feed(&st, out, 1, false, &out_n), HTTP_E_CHUNK);
        }
    }
}

Test(http_chunked, extension_limit)
{
    static char buf[HTTP_MAX_CHUNK_EXT + 64];
    http_chunked_t c;
    size_t n, got;

    /* ";" plus 1023 bytes: exactly the limit. */
    buf[0] = '1';
    buf[1] = ';';
    memset(buf + 2, 'e', HTTP_MAX_CHUNK_EXT - 1);
    n = 2 + HTTP_MAX_CHUNK_EXT - 1;
    memcpy(buf + n, "\r\nx\r\n0\r\n\r\n", 10);
    http_chunked_init(&c);
    cr_expect_eq(http_chunked_feed(&c, guarded(buf, n + 10), n + 10, false, &got),
                 (ssize_t)(n + 10));
    cr_expect(http_chunked_done(&c));

    /* One more. */
    memset(buf + 2, 'e', HTTP_MAX_CHUNK_EXT);
    n = 2 + HTTP_MAX_CHUNK_EXT;
    memcpy(buf + n, "\r\nx\r\n0\r\n\r\n", 10);
    http_chunked_init(&c);
    cr_expect_eq(http_chunked_feed(&c, guarded(buf, n + 10), n + 10, false, &got),
                 HTTP_E_CHUNK);
}

Test(http_chunked, trailer_limit)
{
    static char buf[HTTP_MAX_TRAILER_BYTES * 2];
    http_chunked_t c;
    size_t n = 0, got;

    n += (size_t)sprintf(buf, "0\r\n");
    while (n < HTTP_MAX_TRAILER_BYTES + 100)
        n += (size_t)sprintf(buf + n, "X-Trailer-Field: some value here\r\n");
    memcpy(buf + n, "\r\n", 2);
    n += 2;
    http_chunked_init(&c);
    cr_expect_eq(http_chunked_feed(&c, guarded(buf, n), n, false, &got), HTTP_E_CHUNK);

    /* A few trailers are fine. */
    n = (size_t)sprintf(buf, "0\r\nA: 1\r\nB: 2\r\n\r\n");
    http_chunked_init(&c);
    cr_expect_eq(http_chunked_feed(&c, guarded(buf, n), n, false, &got), (ssize_t)n);
}

/* A large chunk fed in pieces keeps `remaining` right. */
Test(http_chunked, large_chunk_pieces)
{
    static char buf[70000];
    static const char pre[] = "10000\r\n";    /* 65536 bytes */
    http_chunked_t c;
    size_t n = 0, got, total_out = 0;

    memcpy(buf, pre, sizeof(pre) - 1);
    n = sizeof(pre) - 1;
    memset(buf + n, 'd', 65536);
    n += 65536;
    memcpy(buf + n, "\r\n0\r\n\r\n", 7);
    n += 7;
    http_chunked_init(&c);
    for (size_t at = 0; at < n; at += 4093) {
        size_t piece = n - at < 4093 ? n - at : 4093;
        ssize_t r = http_chunked_feed(&c, buf + at, piece, true, &got);

        cr_assert_eq(r, (ssize_t)piece);
        for (size_t k = 0; k < got; k++)
            cr_assert_eq(buf[at + k], 'd');
        total_out += got;
    }
    cr_expect(http_chunked_done(&c));
    cr_expect_eq(total_out, 65536);
}

/* ------------------------------------------------------------------ */
/* Forwarding rules: fragments, repeated Content-Length, chunk-ext     */
/* grammar, the trailer filter, list members                           */
/* ------------------------------------------------------------------ */

Test(http_request, fragment_refused)
{
    static const char *const reqs[] = {
        "GET http://h/a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a?q=1#f HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET http://h/# HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    http_request_t rq;

    for (size_t i = 0; i < ARRAY_LEN(reqs); i++)
        cr_expect_eq(http_parse_request(reqs[i], strlen(reqs[i]), &rq), HTTP_E_TARGET,
                     "%s", reqs[i]);
}

Test(http_request, repeated_content_length_counted)
{
    static const struct { const char *hdrs; unsigned n; } t[] = {
        { "Content-Length: 5\r\n", 1 },
        { "Content-Length: 5, 5\r\n", 2 },
        { "Content-Length: 5\r\nContent-Length: 5\r\n", 2 },
        { "Content-Length: 5,5\r\nContent-Length: 5\r\n", 3 },
    };
    char buf[256];
    http_request_t rq;

    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        int n = snprintf(buf, sizeof buf, "POST / HTTP/1.1\r\nHost: h\r\n%s\r\n", t[i].hdrs);
        cr_assert_eq(http_parse_request(buf, (size_t)n, &rq), n, "%s", t[i].hdrs);
        cr_expect_eq(rq.framing.body, HTTP_BODY_LENGTH);
        cr_expect_eq(rq.framing.content_length, 5);
        cr_expect_eq(rq.framing.n_content_length, t[i].n, "%s", t[i].hdrs);
    }
}

Test(http_chunked, extension_grammar)
{
    static const char *const good[] = {
        "5;a\r\nhello\r\n0\r\n\r\n",
        "5;a=b\r\nhello\r\n0\r\n\r\n",
        "5;a=b;c\r\nhello\r\n0\r\n\r\n",
        "5; a = b ;c=\"d\"\r\nhello\r\n0\r\n\r\n",
        "5;a=\"x y\\\"z;\"\r\nhello\r\n0\r\n\r\n",
        "5;a=\"\"\r\nhello\r\n0\r\n\r\n",
    };
    static const char *const bad[] = {
        "5;a=\"x\r\nhello\"\r\n0\r\n\r\n",   /* CRLF inside a quoted string */
        "5;a=\"x\r\n",
        "5;\"q\"\r\nhello\r\n0\r\n\r\n",     /* no name */
        "5;=b\r\nhello\r\n0\r\n\r\n",
        "5;a=\r\nhello\r\n0\r\n\r\n",        /* "=" without a value */
        "5;a=b c\r\nhello\r\n0\r\n\r\n",
        "5;a=\"x\"y\r\nhello\r\n0\r\n\r\n",
        "5;a=\"x\\\r\nhello\r\n0\r\n\r\n",   /* quoted-pair of CR */
        "5;\r\nhello\r\n0\r\n\r\n",          /* ";" alone */
    };
    char out[256];
    size_t out_n;
    http_chunked_t st;

    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        for (int decode = 0; decode <= 1; decode++)
            cr_expect_eq(feed_pieces(good[i], strlen(good[i]), NULL, 0, decode, &st, out, &out_n),
                         (ssize_t)strlen(good[i]), "good %zu", i);
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        for (int decode = 0; decode <= 1; decode++)
            cr_expect_eq(feed_pieces(bad[i], strlen(bad[i]), NULL, 0, decode, &st, out, &out_n),
                         HTTP_E_CHUNK, "bad %zu", i);
}

/*
 * Filtering scanner fed the way conn.c does: bytes it does not consume stay
 * at the front of the pending buffer and are fed again with the next piece.
 * Returns the kept bytes (framing minus dropped trailer fields) in out.
 */
static ssize_t
filter_run(const char *raw, size_t n, size_t piece, char *out, size_t *out_n, bool *done)
{
    char pend[1024];
    size_t plen = 0, at = 0;
    http_chunked_t c;

    http_chunked_init_filter(&c);
    *out_n = 0;
    *done = false;
    while (at < n || plen > 0) {
        size_t take = n - at < piece ? n - at : piece, kept;
        ssize_t r;

        memcpy(pend + plen, raw + at, take);
        plen += take;
        at += take;
        r = http_chunked_feed(&c, pend, plen, false, &kept);
        if (r < 0)
            return r;
        memcpy(out + *out_n, pend, kept);
        *out_n += kept;
        memmove(pend, pend + r, plen - (size_t)r);
        plen -= (size_t)r;
        if (http_chunked_done(&c)) {
            *done = true;
            return (ssize_t)(at - plen);
        }
        if (take == 0)
            break;   /* nothing more to give: incomplete */
    }
    return (ssize_t)(at - plen);
}

Test(http_chunked, trailer_filter_drops_forbidden_fields)
{
    static const char raw[] =
        "3\r\nabc\r\n0\r\nContent-Length: 99\r\nX-Keep: 1\r\nHost: evil\r\n"
        "transfer-encoding: chunked\r\nAuthorization: Basic eDp5\r\nContent-Type: a/b\r\n"
        "If-None-Match: x\r\nX-Also: 2\r\n\r\nNEXT";
    static const char want[] = "3\r\nabc\r\n0\r\nX-Keep: 1\r\nX-Also: 2\r\n\r\n";
    char out[512];
    size_t out_n;
    bool done;

    for (size_t piece = 1; piece <= sizeof(raw); piece++) {
        ssize_t r = filter_run(raw, sizeof(raw) - 1, piece, out, &out_n, &done);

        cr_assert(done, "piece %zu: not done (%zd)", piece, r);
        cr_assert_eq(r, (ssize_t)(sizeof(raw) - 1 - 4), "piece %zu: consumed %zd", piece, r);
        out[out_n] = '\0';
        cr_assert_str_eq(out, want, "piece %zu", piece);
    }
}

Test(http_chunked, trailer_filter_refuses_malformed_lines)
{
    static const char *const bad[] = {
        "0\r\nNoColon\r\n\r\n",
        "0\r\nA : b\r\n\r\n",
        "0\r\nA: b\r\n c\r\n\r\n",
    };
    char out[256];
    size_t out_n;
    bool done;

    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        for (size_t piece = 1; piece <= strlen(bad[i]); piece++)
            cr_expect_eq(filter_run(bad[i], strlen(bad[i]), piece, out, &out_n, &done),
                         HTTP_E_CHUNK, "%zu piece %zu", i, piece);
    /* the unfiltered scanner lets a colon-less line through (it only checks
     * characters); the filter is what forwarding uses */
    cr_expect_eq(http_trailer_forbidden("content-md5", 11), true);
    cr_expect_eq(http_trailer_forbidden("X-Checksum", 10), false);
}

Test(http_list, members)
{
    static const char v[] = " h2c ,, websocket/13 ,foo,";
    const char *p = v, *end = v + sizeof(v) - 1;
    http_str_t m;

    cr_assert(http_list_next(&p, end, &m));
    cr_expect_eq(m.len, 3);
    cr_expect(strncmp(m.p, "h2c", 3) == 0);
    cr_assert(http_list_next(&p, end, &m));
    cr_expect(m.len == 12 && strncmp(m.p, "websocket/13", 12) == 0);
    cr_assert(http_list_next(&p, end, &m));
    cr_expect(m.len == 3 && strncmp(m.p, "foo", 3) == 0);
    cr_expect(!http_list_next(&p, end, &m));
}
