/*
 * tests/unit/proxy/test_h1msg.c: head rewriting from parsed messages, byte
 * for byte: Host from the target, hop-by-hop and Connection-named fields
 * gone, one Content-Length for repeated values, Via, the Upgrade offer
 * without h2c, 101 answers checked against the offer, Via loops; and the
 * generated pages (proxy/pages.c) escaping what came from the client.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>

#include "../../../proxy/cbuf.h"
#include "../../../proxy/h1msg.h"
#include "../../../proxy/http.h"
#include "../../../proxy/pages.h"

static char *
request_head(const char *raw, const char *upgrade_out)
{
    http_request_t rq;
    cbuf_t b = { 0 };
    h1msg_request_opts_t o = { .port = 0, .via = "mp" };
    static char host[256];
    int n = http_parse_request(raw, strlen(raw), &rq);
    char *s;

    cr_assert_gt(n, 0, "%s", raw);
    memcpy(host, rq.host.p, rq.host.len);
    host[rq.host.len] = '\0';
    o.host = host;
    o.port = rq.port;
    o.upgrade = upgrade_out;
    cr_assert_eq(h1msg_request_head(&b, &rq, &o), 0);
    s = strndup(b.data + b.start, cbuf_len(&b));
    cbuf_release(&b);
    return s;
}

Test(h1msg, request_head_rewritten)
{
    char *h = request_head("POST http://Example.com:8080/p?q HTTP/1.1\r\nHost: evil\r\n"
                           "Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\n"
                           "Proxy-Authorization: Basic eDp5\r\nTE: trailers\r\nUser-Agent: t\r\n"
                           "Content-Length: 3, 3\r\nContent-Length: 3\r\n\r\n", NULL);

    cr_expect_str_eq(h, "POST /p?q HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: t\r\n"
                        "Content-Length: 3\r\nVia: 1.1 mp\r\n\r\n");
    free(h);
}

Test(h1msg, ipv6_host_bracketed_default_port_omitted)
{
    char *h = request_head("GET http://[2001:db8::1]/ HTTP/1.1\r\nHost: x\r\n\r\n", NULL);

    cr_expect_str_eq(h, "GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\nVia: 1.1 mp\r\n\r\n");
    free(h);
}

Test(h1msg, upgrade_offer_drops_h2c)
{
    static const char raw[] = "GET http://h/ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
                              "Upgrade: h2c, websocket\r\nUpgrade: H2C/1, foo/2\r\n"
                              "HTTP2-Settings: AAMA\r\n\r\n";
    http_request_t rq;
    char offer[128];
    char *h;

    cr_assert_gt(http_parse_request(raw, strlen(raw), &rq), 0);
    h1msg_upgrade_offer(&rq, offer, sizeof(offer));
    cr_expect_str_eq(offer, "websocket, foo/2");
    h = request_head(raw, offer);
    cr_expect_str_eq(h, "GET /ws HTTP/1.1\r\nHost: h\r\nVia: 1.1 mp\r\n"
                        "Upgrade: websocket, foo/2\r\nConnection: upgrade\r\n\r\n");
    free(h);
    h = request_head("GET http://h/ HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
                     NULL);
    cr_expect(strstr(h, "pgrade") == NULL, "%s", h);
    free(h);
}

static bool
answer_ok(const char *offered, const char *resp_raw)
{
    http_response_t rs;

    cr_assert_gt(http_parse_response(resp_raw, strlen(resp_raw), HTTP_M_GET, &rs), 0);
    return h1msg_upgrade_answer_ok(offered, &rs);
}

Test(h1msg, upgrade_answer_checked)
{
    cr_expect(answer_ok("websocket", "HTTP/1.1 101 S\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\n\r\n"));
    cr_expect(!answer_ok("foo", "HTTP/1.1 101 S\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n"));
    cr_expect(!answer_ok("h2c", "HTTP/1.1 101 S\r\nUpgrade: h2c\r\n\r\n"));
    cr_expect(!answer_ok("websocket", "HTTP/1.1 101 S\r\nConnection: upgrade\r\n\r\n"));
    cr_expect(!answer_ok("websocket", "HTTP/1.1 101 S\r\nUpgrade: websocket, foo\r\n\r\n"));
}

Test(h1msg, response_head_rewritten)
{
    static const char raw[] = "HTTP/1.1 200 OK\r\nConnection: close, X-H\r\nX-H: 1\r\n"
                              "Content-Type: text/html\r\nContent-Length: 2, 2\r\n"
                              "Transfer-Encoding-Not: x\r\n\r\n";
    http_response_t rs;
    cbuf_t b = { 0 };
    char mime[64] = "";
    h1msg_response_opts_t o = { .via = "mp", .close = false, .http10_client = true,
                                .mime = mime, .mime_cap = sizeof(mime) };

    cr_assert_gt(http_parse_response(raw, strlen(raw), HTTP_M_GET, &rs), 0);
    cr_assert_eq(h1msg_response_head(&b, &rs, &o), 0);
    cr_expect_eq(cbuf_len(&b), strlen("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
                                      "Transfer-Encoding-Not: x\r\nContent-Length: 2\r\nVia: 1.1 mp\r\n"
                                      "Connection: keep-alive\r\n\r\n"));
    cr_expect(memcmp(b.data, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding-Not: x\r\n"
                     "Content-Length: 2\r\nVia: 1.1 mp\r\nConnection: keep-alive\r\n\r\n", cbuf_len(&b)) == 0,
              "%.*s", (int)cbuf_len(&b), b.data);
    cr_expect_str_eq(mime, "text/html");
    cbuf_release(&b);
}

Test(h1msg, via_loop)
{
    static const char a[] = "GET http://h/ HTTP/1.1\r\nHost: h\r\nVia: 1.0 other, 1.1 mp\r\n\r\n";
    static const char b[] = "GET http://h/ HTTP/1.1\r\nHost: h\r\nVia: 1.1 mpx, 1.1 xmp\r\n\r\n";
    http_request_t rq;

    cr_assert_gt(http_parse_request(a, strlen(a), &rq), 0);
    cr_expect(h1msg_via_loop(&rq, "mp"));
    cr_assert_gt(http_parse_request(b, strlen(b), &rq), 0);
    cr_expect(!h1msg_via_loop(&rq, "mp"));
}

Test(pages, client_text_escaped)
{
    char out[PAGES_BLOCK_MAX];
    pages_block_t b = { .url = "http://h/<script>\"'&", .url_len = 20, .user = "<u>",
                        .category = "Arts", .decision = "BLOCK_CATEGORY", .remote = true,
                        .server = "mp" };
    size_t n = pages_block(out, sizeof(out), &b);

    cr_assert_gt(n, 0);
    cr_expect(strstr(out, "http://h/&lt;script&gt;&quot;&#39;&amp;") != NULL, "%s", out);
    cr_expect(strstr(out, "&lt;u&gt;") != NULL);
    cr_expect(strstr(out, "<script>") == NULL);
    cr_expect(strstr(out, "remote") != NULL && strstr(out, "BLOCK_CATEGORY") != NULL);
    n = pages_error(out, sizeof(out), 502, "Bad.", "http://h/<x>", 12, "mp");
    cr_expect(strstr(out, "502 Bad Gateway") != NULL && strstr(out, "&lt;x&gt;") != NULL, "%s", out);
    cr_expect_eq(n, strlen(out));
    cr_expect_lt(pages_error(out, 32, 502, "Bad.", NULL, 0, "mp"), (size_t)32);
}
