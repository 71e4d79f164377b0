/*
 * tests/integration/test_proxy.c: forwarding through the real musproxy to
 * mp-origin over loopback with libcurl and raw sockets (the setup is in
 * proxy_harness.h): GET and HEAD, request and response bodies (fixed,
 * chunked, large ones in bounded memory), keep-alive to both sides,
 * pipelining, half-close and reset clients, 100-continue, hop-by-hop
 * headers and Via, WebSocket upgrades, CONNECT tunnels (relay modes, TLS),
 * DNS of localhost, and framing on keep-alive connections. Refusals, limits
 * and timeouts are in test_proxy_limits.c; reloads, signals and the access
 * log in test_proxy_reload.c.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proxy_harness.h"

#define MiB (1024ULL * 1024ULL)
#define BIG_BYTES (300ULL * MiB)
#define HWM_LIMIT_KB (64L * 1024L)

static mp_proc_t g_tls;

Test(proxy, get_basic)
{
    start_default();
    char url[256];
    xfer_t x = {0};
    get_via(g_pport, url_o(url, sizeof url, "/"), &x);
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 200);
    cr_assert_str_eq(x.body, "ok\n");
    cr_assert(contains_ci(x.headers, "\nContent-Type: text/plain"), "headers: %s", x.headers);
    cr_assert(contains_ci(x.headers, "\nVia: 1.1 musproxy"), "no Via on the response: %s", x.headers);

    x.check_pattern = true;
    get_via(g_pport, url_o(url, sizeof url, "/size/100000"), &x);
    cr_assert_eq(x.status, 200);
    cr_assert_eq(x.total, 100000);
    cr_assert(x.pattern_ok, "body bytes differ from the origin's pattern");

    get_via(g_pport, url_o(url, sizeof url, "/status/404"), &x);
    cr_assert_eq(x.status, 404, "origin status not relayed");
    free(x.body);
}

Test(proxy, head_then_get_on_same_connection)
{
    start_default();
    char url[256];
    CURL *h = proxied_handle(g_pport);
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    xfer_t x = {0};
    perform(h, url_o(url, sizeof url, "/size/12345"), &x);
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 200);
    curl_off_t cl = -1;
    curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    cr_assert_eq(cl, 12345, "HEAD Content-Length %ld", (long)cl);
    cr_assert_eq(x.total, 0);
    curl_easy_cleanup(h);

    /* raw: HEAD must not make the proxy expect a body; GET follows on the same connection */
    char req[512];
    snprintf(req, sizeof req, "HEAD http://127.0.0.1:%d/size/12345 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
             g_oport, g_oport);
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    mp_send_str(fd, req);
    mp_reader_t *r = reader_new(fd);
    mp_response_t resp;
    cr_assert_eq(mp_read_response(r, &resp, true, 3000), 0);
    cr_assert_eq(resp.status, 200);
    char v[64];
    cr_assert(mp_header(resp.head, "Content-Length", v, sizeof v) && strcmp(v, "12345") == 0,
              "HEAD head: %s", resp.head);
    mp_response_free(&resp);
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/status/201 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
             g_oport, g_oport);
    mp_send_str(fd, req);
    cr_assert_eq(mp_read_response(r, &resp, false, 3000), 0, "no response to the GET after HEAD");
    cr_assert_eq(resp.status, 201, "after HEAD got: %s", resp.head);
    mp_response_free(&resp);
    free(r);
    close(fd);
}

/* expected "length" and "fnv1a64" from an /echo answer */
static void check_echo(const char *body, uint64_t len, uint64_t fnv)
{
    char want[128];
    snprintf(want, sizeof want, "\"length\":%llu,\"fnv1a64\":\"%016llx\"",
             (unsigned long long)len, (unsigned long long)fnv);
    cr_assert_not_null(body, "no echo body");
    cr_assert(strstr(body, want) != NULL, "echo mismatch: want %s got %s", want, body);
}

Test(proxy, post_content_length)
{
    start_default();
    size_t n = 200000;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)(i * 31 + 7);
    char url[256];
    CURL *h = proxied_handle(g_pport);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, data);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    struct curl_slist *hd = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    xfer_t x = {0};
    perform(h, url_o(url, sizeof url, "/echo"), &x);
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 200);
    check_echo(x.body, n, mp_fnv1a64(MP_FNV_INIT, data, n));
    cr_assert(strstr(x.body, "\"method\":\"POST\""), "%s", x.body);

    /* PUT too */
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
    perform(h, url_o(url, sizeof url, "/echo"), &x);
    cr_assert_eq(x.status, 200);
    check_echo(x.body, n, mp_fnv1a64(MP_FNV_INIT, data, n));
    cr_assert(strstr(x.body, "\"method\":\"PUT\""), "%s", x.body);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    free(data);
    free(x.body);
}

/* read callback: the pattern, `remaining` bytes, hashing what it produced */
typedef struct upload {
    uint64_t remaining;
    uint64_t sent;
    uint64_t fnv;
    unsigned idx;
} upload_t;

static size_t on_read(char *buf, size_t sz, size_t n, void *ud)
{
    upload_t *u = ud;
    size_t cap = sz * n;
    if (cap > u->remaining)
        cap = (size_t)u->remaining;
    if (cap > 65536)
        cap = 65536;
    unsigned idx = u->idx;
    for (size_t i = 0; i < cap; i++) {
        buf[i] = (char)idx;
        if (++idx == 251)
            idx = 0;
    }
    u->idx = idx;
    u->fnv = mp_fnv1a64(u->fnv, buf, cap);
    u->remaining -= cap;
    u->sent += cap;
    return cap;
}

Test(proxy, post_chunked_request_body)
{
    start_default();
    char url[256];
    CURL *h = proxied_handle(g_pport);
    upload_t u = { .remaining = 300001, .fnv = MP_FNV_INIT };
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    struct curl_slist *hd = curl_slist_append(NULL, "Transfer-Encoding: chunked");
    hd = curl_slist_append(hd, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    xfer_t x = {0};
    perform(h, url_o(url, sizeof url, "/echo"), &x);
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 200);
    cr_assert_eq(u.sent, 300001);
    check_echo(x.body, u.sent, u.fnv);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    free(x.body);
}

Test(proxy, chunked_response)
{
    start_default();
    char url[256];
    xfer_t x = { .check_pattern = true };
    get_via(g_pport, url_o(url, sizeof url, "/chunked/250000"), &x);
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 200);
    cr_assert_eq(x.total, 250000);
    cr_assert(x.pattern_ok, "chunked body corrupted");

    /* raw: the framing must stay valid so a second response follows on the same connection */
    char req[512];
    snprintf(req, sizeof req,
             "GET http://127.0.0.1:%d/chunked/1000 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
             "GET http://127.0.0.1:%d/status/202 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
             g_oport, g_oport, g_oport, g_oport);
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    mp_send_str(fd, req);
    mp_reader_t *r = reader_new(fd);
    mp_response_t resp;
    cr_assert_eq(mp_read_response(r, &resp, false, 3000), 0);
    cr_assert_eq(resp.status, 200);
    cr_assert_eq(resp.body_len, 1000);
    for (size_t i = 0; i < 1000; i++)
        cr_assert_eq((unsigned char)resp.body[i], mp_pattern_byte(i));
    mp_response_free(&resp);
    cr_assert_eq(mp_read_response(r, &resp, false, 3000), 0, "second response missing");
    cr_assert_eq(resp.status, 202);
    mp_response_free(&resp);
    free(r);
    close(fd);
    free(x.body);
}

Test(proxy, big_bodies_bounded_memory, .timeout = 180)
{
    start_default();
    char url[256];
    char path[64];
    snprintf(path, sizeof path, "/size/%llu", BIG_BYTES);

    xfer_t x = { .check_pattern = true };
    get_via(g_pport, url_o(url, sizeof url, path), &x);
    cr_assert_eq(x.rc, CURLE_OK, "download: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 200);
    cr_assert_eq(x.total, BIG_BYTES, "downloaded %llu of %llu", (unsigned long long)x.total,
                 BIG_BYTES);
    cr_assert(x.pattern_ok, "download corrupted");
    long hwm_down = mp_tree_status_kb(g_proxy.pid, "VmHWM");

    CURL *h = proxied_handle(g_pport);
    upload_t u = { .remaining = BIG_BYTES, .fnv = MP_FNV_INIT };
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);      /* PUT */
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)BIG_BYTES);
    struct curl_slist *hd = curl_slist_append(NULL, "Expect:");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    perform(h, url_o(url, sizeof url, "/echo"), &x);
    cr_assert_eq(x.rc, CURLE_OK, "upload: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 200);
    check_echo(x.body, BIG_BYTES, u.fnv);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);

    long hwm = mp_tree_status_kb(g_proxy.pid, "VmHWM");
    cr_log_info("musproxy VmHWM after download %ld KiB, after upload %ld KiB", hwm_down, hwm);
    cr_assert_gt(hwm, 0, "could not read VmHWM");
    cr_assert_lt(hwm, HWM_LIMIT_KB, "proxy VmHWM %ld KiB >= %ld KiB: bodies are buffered", hwm,
                 HWM_LIMIT_KB);
    free(x.body);
}

Test(proxy, client_keepalive_reuse)
{
    start_default();
    char url[256];
    CURL *h = proxied_handle(g_pport);
    xfer_t x = {0};
    perform(h, url_o(url, sizeof url, "/"), &x);
    cr_assert_eq(x.status, 200);
    cr_assert_eq(x.num_connects, 1);
    perform(h, url_o(url, sizeof url, "/size/10"), &x);
    cr_assert_eq(x.status, 200);
    cr_assert_eq(x.num_connects, 0, "the proxy closed the client connection after a response");
    perform(h, url_o(url, sizeof url, "/"), &x);
    cr_assert_eq(x.num_connects, 0);
    curl_easy_cleanup(h);
    free(x.body);
}

Test(proxy, upstream_keepalive_reuse)
{
    start_default();
    char url[256];
    CURL *h = proxied_handle(g_pport);
    xfer_t x = {0};
    for (int i = 0; i < 4; i++) {
        perform(h, url_o(url, sizeof url, i % 2 ? "/" : "/size/1000"), &x);
        cr_assert_eq(x.status, 200);
    }
    /* /stats through the same client connection: counts itself as request 5 */
    perform(h, url_o(url, sizeof url, "/stats"), &x);
    cr_assert_eq(x.status, 200);
    long conns = -1, reqs = -1;
    cr_assert_eq(sscanf(x.body, "{\"connections\":%ld,\"requests\":%ld}", &conns, &reqs), 2,
                 "%s", x.body);
    cr_assert_eq(reqs, 5);
    cr_assert_eq(conns, 1, "upstream connections not reused: %ld connections for 5 requests",
                 conns);
    curl_easy_cleanup(h);
    free(x.body);
}

/* Many clients to one origin at once: every upstream connection they used
 * goes back to the pool, so a second wave of the same size opens none (a
 * per-destination pool limit below the concurrency would reconnect the
 * excess on every wave). */
#define POOL_WAVE 100
static size_t
discard_body(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n;
}

Test(proxy, upstream_pool_holds_a_concurrent_wave, .timeout = 60)
{
    start_default();
    char url[256];
    CURLM *m = curl_multi_init();
    CURL *h[POOL_WAVE];
    for (int i = 0; i < POOL_WAVE; i++) {
        h[i] = proxied_handle(g_pport);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, discard_body);
    }
    for (int wave = 0; wave < 3; wave++) {
        for (int i = 0; i < POOL_WAVE; i++) {
            curl_easy_setopt(h[i], CURLOPT_URL, url_o(url, sizeof url, "/sleep/200"));
            curl_multi_add_handle(m, h[i]);
        }
        int running = 1;
        while (running) {
            cr_assert_eq(curl_multi_perform(m, &running), CURLM_OK);
            if (running)
                curl_multi_poll(m, NULL, 0, 100, NULL);
        }
        CURLMsg *msg;
        int left, done = 0;
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            long code = 0;
            cr_assert_eq(msg->data.result, CURLE_OK, "wave %d: %s", wave,
                         curl_easy_strerror(msg->data.result));
            curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
            cr_assert_eq(code, 200);
            done++;
        }
        cr_assert_eq(done, POOL_WAVE);
        for (int i = 0; i < POOL_WAVE; i++)
            curl_multi_remove_handle(m, h[i]);
    }
    xfer_t x = {0};
    perform(h[0], url_o(url, sizeof url, "/stats"), &x);
    long conns = -1, reqs = -1;
    cr_assert_eq(sscanf(x.body, "{\"connections\":%ld,\"requests\":%ld}", &conns, &reqs), 2,
                 "%s", x.body);
    cr_assert_eq(reqs, 3 * POOL_WAVE + 1);
    cr_assert_eq(conns, POOL_WAVE, "%ld upstream connections for 3 waves of %d concurrent requests",
                 conns, POOL_WAVE);
    for (int i = 0; i < POOL_WAVE; i++)
        curl_easy_cleanup(h[i]);
    curl_multi_cleanup(m);
    free(x.body);
}

Test(proxy, pipelining_in_order)
{
    start_default();
    char req[1024];
    snprintf(req, sizeof req,
             "GET http://127.0.0.1:%d/sleep/200 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
             "GET http://127.0.0.1:%d/size/10 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
             "GET http://127.0.0.1:%d/status/202 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
             g_oport, g_oport, g_oport, g_oport, g_oport, g_oport);
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    cr_assert_eq(mp_send_str(fd, req), 0);    /* all three in one write */
    mp_reader_t *r = reader_new(fd);
    mp_response_t a, b, c;
    cr_assert_eq(mp_read_response(r, &a, false, 5000), 0, "first response missing");
    cr_assert_eq(a.status, 200);
    cr_assert_str_eq(a.body, "slept 200\n");
    cr_assert_eq(mp_read_response(r, &b, false, 5000), 0, "second response missing");
    cr_assert_eq(b.status, 200);
    cr_assert_eq(b.body_len, 10);
    cr_assert_eq(mp_read_response(r, &c, false, 5000), 0, "third response missing");
    cr_assert_eq(c.status, 202);
    mp_response_free(&a);
    mp_response_free(&b);
    mp_response_free(&c);
    free(r);
    close(fd);
}

/* A client that half-closes after its request still gets the whole
 * response; the proxy then ends the connection. */
Test(proxy, client_half_close_gets_response)
{
    start_default();
    char req[512];
    snprintf(req, sizeof req,
             "GET http://127.0.0.1:%d/sleep/300 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", g_oport,
             g_oport);
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    cr_assert_eq(mp_send_str(fd, req), 0);
    cr_assert_eq(shutdown(fd, SHUT_WR), 0);
    mp_reader_t *r = reader_new(fd);
    mp_response_t a;
    cr_assert_eq(mp_read_response(r, &a, false, 5000), 0, "no response after the half-close");
    cr_assert_eq(a.status, 200);
    cr_assert_str_eq(a.body, "slept 300\n");
    cr_assert_eq(r->len, 0, "bytes after the response");
    bool closed = false;
    char rest[64];
    size_t n = mp_read_until_close(fd, rest, sizeof rest, 3000, &closed);
    cr_assert(closed && n == 0, "connection not ended after the response (%zu more bytes)", n);
    mp_response_free(&a);
    free(r);
    close(fd);
}

/* A client that resets the connection while the origin is still thinking
 * ends the transaction at once (logged TCP_MISS_ABORTED/000), not when the
 * origin answers. */
Test(proxy, client_reset_aborts_transaction)
{
    start_default();
    char req[512];
    snprintf(req, sizeof req,
             "GET http://127.0.0.1:%d/sleep/4000 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", g_oport,
             g_oport);
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    cr_assert_eq(mp_send_str(fd, req), 0);
    usleep(300 * 1000);   /* the request is at the origin by now */
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    close(fd);   /* RST */
    char *line = wait_log_line(g_log, "/sleep/4000", 3000);
    gettimeofday(&t1, NULL);
    cr_assert_not_null(line, "no access log line for the aborted request");
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
    cr_assert_lt(ms, 2500, "transaction ended %ld ms after the reset", ms);
    cr_assert(strstr(line, " TCP_MISS_ABORTED/000 ") != NULL, "log line: %s", line);
    free(line);
}

Test(proxy, expect_100_continue)
{
    start_default();
    char req[512];
    snprintf(req, sizeof req,
             "POST http://127.0.0.1:%d/expect HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Length: 11\r\nExpect: 100-continue\r\n\r\n",
             g_oport, g_oport);
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    mp_send_str(fd, req);
    mp_reader_t *r = reader_new(fd);
    mp_response_t resp;
    /* no body sent yet: a 100 Continue must come back first */
    cr_assert_eq(mp_read_head(r, &resp, 2000), 0, "no 100 Continue before the body was sent");
    cr_assert_eq(resp.status, 100, "expected 100 first, got: %s", resp.head);
    mp_send_str(fd, "hello world");
    /* a further 100 (e.g. the origin's, relayed) may precede the final answer */
    do {
        cr_assert_eq(mp_read_response(r, &resp, false, 3000), 0, "no final response");
    } while (resp.status == 100 && (mp_response_free(&resp), true));
    cr_assert_eq(resp.status, 200);
    check_echo(resp.body, 11, mp_fnv1a64(MP_FNV_INIT, "hello world", 11));
    mp_response_free(&resp);
    free(r);
    close(fd);
}

Test(proxy, hop_by_hop_removed_and_via_added)
{
    start_default();
    char url[256];
    CURL *h = proxied_handle(g_pport);
    struct curl_slist *hd = NULL;
    hd = curl_slist_append(hd, "Connection: X-Foo");
    hd = curl_slist_append(hd, "X-Foo: 1");
    hd = curl_slist_append(hd, "Keep-Alive: timeout=5");
    hd = curl_slist_append(hd, "Proxy-Connection: keep-alive");
    hd = curl_slist_append(hd, "Proxy-Authorization: Basic dXNlcjpwYXNz");
    hd = curl_slist_append(hd, "TE: trailers");
    hd = curl_slist_append(hd, "Trailer: X-Bar");
    hd = curl_slist_append(hd, "X-End-To-End: kept");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hd);
    xfer_t x = {0};
    perform(h, url_o(url, sizeof url, "/headers"), &x);
    cr_assert_eq(x.rc, CURLE_OK);
    cr_assert_eq(x.status, 200);
    const char *got = x.body;
    cr_assert_not_null(got);
    cr_log_info("origin received:\n%s", got);
    cr_assert(contains_ci(got, "\nX-End-To-End: kept"), "end-to-end header lost: %s", got);
    static const char *const gone[] = { "\nX-Foo:", "\nKeep-Alive:", "\nProxy-Connection:",
                                        "\nProxy-Authorization:", "\nTE:", "\nTrailer:" };
    for (size_t i = 0; i < sizeof gone / sizeof gone[0]; i++)
        cr_assert(!contains_ci(got, gone[i]), "hop-by-hop %s forwarded: %s", gone[i] + 1, got);
    cr_assert(!contains_ci(got, "X-Foo"), "Connection-listed X-Foo forwarded: %s", got);
    cr_assert(contains_ci(got, "\nVia: 1.1 musproxy"), "no Via: 1.1 musproxy: %s", got);
    cr_assert(contains_ci(x.headers, "\nVia: 1.1 musproxy"), "no Via on response: %s", x.headers);
    curl_slist_free_all(hd);
    curl_easy_cleanup(h);
    free(x.body);
}

Test(proxy, websocket_upgrade_passthrough)
{
    start_default();
    char req[1024];
    snprintf(req, sizeof req,
             "GET http://127.0.0.1:%d/ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Upgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
             g_oport, g_oport);
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    mp_send_str(fd, req);
    mp_reader_t *r = reader_new(fd);
    mp_response_t resp;
    cr_assert_eq(mp_read_head(r, &resp, 3000), 0, "no response to the upgrade");
    cr_assert_eq(resp.status, 101, "got: %s", resp.head);
    char v[128];
    cr_assert(mp_header(resp.head, "Upgrade", v, sizeof v) && strcasecmp(v, "websocket") == 0,
              "Upgrade header missing on 101: %s", resp.head);
    cr_assert(mp_header(resp.head, "Sec-WebSocket-Accept", v, sizeof v) &&
                  strcmp(v, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0,
              "Sec-WebSocket-Accept: %s", resp.head);
    /* echo both ways, small then larger */
    size_t total = 200000;
    char *out = malloc(total), *in = malloc(total + 1);
    for (size_t i = 0; i < total; i++)
        out[i] = (char)(i * 13);
    mp_send_all(fd, "ping", 4);
    size_t got = r->len;
    memcpy(in, r->buf, got);
    while (got < 4) {
        ssize_t n = mp_recv_timeout(fd, in + got, total - got, 3000);
        cr_assert_gt(n, 0, "no echo through the upgraded connection");
        got += (size_t)n;
    }
    cr_assert_eq(memcmp(in, "ping", 4), 0);
    cr_assert_eq(got, 4);
    mp_send_all(fd, out, total);
    got = 0;
    while (got < total) {
        ssize_t n = mp_recv_timeout(fd, in + got, total - got, 3000);
        cr_assert_gt(n, 0, "echo stalled at %zu of %zu", got, total);
        got += (size_t)n;
    }
    cr_assert_eq(memcmp(in, out, total), 0, "echoed bytes differ");
    free(out);
    free(in);
    free(r);
    close(fd);
}

/* Pipes the proxy process holds now (a splicing tunnel direction has one). */
static int proxy_pipe_fds(void)
{
    char dir[64], link[PATH_MAX], target[256];
    snprintf(dir, sizeof dir, "/proc/%d/fd", (int)g_proxy.pid);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot list %s", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        snprintf(link, sizeof link, "%s/%s", dir, e->d_name);
        ssize_t len = readlink(link, target, sizeof target - 1);
        if (len > 0) {
            target[len] = '\0';
            n += strncmp(target, "pipe:", 5) == 0;
        }
    }
    closedir(d);
    return n;
}

/* Sends out[0..total) on fd while reading the echo into in, interleaved so
 * neither side's buffers can deadlock; then half-closes and expects every
 * byte back followed by EOF. in already holds got bytes. */
static void echo_roundtrip(const char *what, int fd, const char *out, char *in, size_t total,
                           size_t got)
{
    size_t sent = 0;
    bool shut = false;
    for (;;) {
        struct pollfd pfd = { .fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0) };
        cr_assert_gt(poll(&pfd, 1, 5000), 0, "%s: tunnel stalled: sent %zu, echoed %zu of %zu", what,
                     sent, got, total);
        if ((pfd.revents & POLLOUT) && sent < total) {
            ssize_t n = send(fd, out + sent, total - sent > 65536 ? 65536 : total - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            cr_assert(n > 0 || errno == EAGAIN, "send: %s", strerror(errno));
            if (n > 0)
                sent += (size_t)n;
        }
        if (sent == total && !shut) {
            /* half-close: the FIN must reach the origin through the tunnel
             * while the echo keeps flowing back */
            cr_assert_eq(shutdown(fd, SHUT_WR), 0);
            shut = true;
        }
        if (pfd.revents & (POLLIN | POLLHUP)) {
            ssize_t n = recv(fd, in + got, total + 1 - got, MSG_DONTWAIT);
            if (n == 0)
                break;
            cr_assert(n > 0 || errno == EAGAIN, "recv: %s", strerror(errno));
            if (n > 0)
                got += (size_t)n;
        }
    }
    cr_assert_eq(got, total, "%s: echo ended after %zu of %zu bytes", what, got, total);
    cr_assert_eq(memcmp(in, out, total), 0, "%s: echoed bytes differ", what);
}

/* proxy.tunnel_relay: splice moves a tunnel through pipes, copy through
 * pooled buffers, auto copies towards peers on this host (all of them here).
 * Each mode relays 8 MiB both ways through an upgraded connection, with
 * backpressure and half-close, and the proxy's pipes show which one ran. */
Test(proxy, tunnel_relay_modes, .timeout = 90)
{
    static const struct { const char *mode; bool pipes; } modes[] = {
        { "splice", true }, { "copy", false }, { "auto", false },
    };
    size_t total = 8u << 20;
    char *out = malloc(total), *in = malloc(total + 1);
    cr_assert(out != NULL && in != NULL);
    for (size_t i = 0; i < total; i++)
        out[i] = (char)((i * 7) ^ (i >> 13));
    start_origin();
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        mp_config_t c;
        mp_config_defaults(&c);
        char extra[64];
        snprintf(extra, sizeof extra, "  tunnel_relay: %s\n", modes[m].mode);
        c.extra_proxy = extra;
        start_proxy(&c);
        int before = proxy_pipe_fds();

        char req[512];
        snprintf(req, sizeof req,
                 "GET http://127.0.0.1:%d/ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                 "Upgrade: websocket\r\nConnection: Upgrade\r\n\r\n", g_oport, g_oport);
        int fd = mp_connect(g_pport);
        cr_assert_geq(fd, 0);
        mp_send_str(fd, req);
        mp_reader_t *r = reader_new(fd);
        mp_response_t resp;
        cr_assert_eq(mp_read_head(r, &resp, 3000), 0, "%s: no response to the upgrade",
                     modes[m].mode);
        cr_assert_eq(resp.status, 101, "%s: got %s", modes[m].mode, resp.head);
        int during = proxy_pipe_fds();
        /* the proxy sets the relay up right after sending the 101: give it a moment */
        for (int k = 0; k < 50 && modes[m].pipes && during - before != 4; k++) {
            mp_sleep_ms(20);
            during = proxy_pipe_fds();
        }
        if (modes[m].pipes)
            cr_assert_eq(during - before, 4, "%s: %d pipe ends for the tunnel, want 4",
                         modes[m].mode, during - before);
        else
            cr_assert_eq(during, before, "%s: the tunnel opened %d pipe ends", modes[m].mode,
                         during - before);
        memcpy(in, r->buf, r->len);
        echo_roundtrip(modes[m].mode, fd, out, in, total, r->len);
        free(r);
        close(fd);
        mp_proc_stop(&g_proxy, SIGTERM, 3000);
    }
    free(out);
    free(in);
}

Test(proxy, connect_tls_tunnel_verified)
{
    char ca[MP_PATH_MAX], cert[MP_PATH_MAX], key[MP_PATH_MAX];
    cr_assert_eq(mp_make_certs(ca, cert, key), 0);
    int tport = mp_origin_start(&g_tls, "tls-origin", cert, key);
    cr_assert_gt(tport, 0);
    mp_config_t c;
    mp_config_defaults(&c);
    char ports[64];
    snprintf(ports, sizeof ports, "[443, %d]", tport);
    c.connect_ports = ports;
    start_proxy(&c);

    const char *hosts[] = { "127.0.0.1", "localhost" };
    for (int i = 0; i < 2; i++) {
        char url[256];
        snprintf(url, sizeof url, "https://%s:%d/size/100000", hosts[i], tport);
        CURL *h = proxied_handle(g_pport);
        curl_easy_setopt(h, CURLOPT_HTTPPROXYTUNNEL, 1L);
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        xfer_t x = { .check_pattern = true };
        perform(h, url, &x);
        cr_assert_eq(x.rc, CURLE_OK, "%s: %s", url, curl_easy_strerror(x.rc));
        cr_assert_eq(x.connect_code, 200, "CONNECT answered %ld", x.connect_code);
        cr_assert_eq(x.status, 200);
        cr_assert_eq(x.total, 100000);
        cr_assert(x.pattern_ok);
        /* second request reuses the tunnel */
        perform(h, url, &x);
        cr_assert_eq(x.rc, CURLE_OK);
        cr_assert_eq(x.status, 200);
        cr_assert_eq(x.num_connects, 0, "tunnel not kept open");
        curl_easy_cleanup(h);
        free(x.body);
    }
}

Test(proxy, dns_localhost)
{
    start_default();
    char url[256];
    snprintf(url, sizeof url, "http://localhost:%d/size/1000", g_oport);
    xfer_t x = { .check_pattern = true };
    get_via(g_pport, url, &x);
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 200, "localhost not resolved/connected: %ld", x.status);
    cr_assert_eq(x.total, 1000);
    cr_assert(x.pattern_ok);

    /* a name that cannot resolve is an error answer, not a hang */
    get_via(g_pport, "http://no-such-host.invalid/", &x);
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert(x.status >= 500 && x.status <= 504, "unresolvable host: %ld", x.status);
    free(x.body);
}

Test(proxy, keepalive_framing_no_body_and_origin_close)
{
    start_default();
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    mp_reader_t *r = reader_new(fd);
    /* responses without a body must not leave the proxy waiting for one */
    cr_assert_eq(keepalive_get(fd, r, "/status/204"), 204);
    cr_assert_eq(keepalive_get(fd, r, "/status/304"), 304);
    cr_assert_eq(keepalive_get(fd, r, "/size/0"), 200);
    cr_assert_eq(keepalive_get(fd, r, "/status/202"), 202,
                 "client connection stuck after a 200 with Content-Length: 0");
    /* the origin closes after this one: the client connection stays usable */
    cr_assert_eq(keepalive_get(fd, r, "/close"), 200);
    cr_assert_eq(keepalive_get(fd, r, "/status/201"), 201,
                 "client connection unusable after the origin closed its side");
    free(r);
    close(fd);
    long conns, reqs;
    origin_stats(g_oport, &conns, &reqs);
    cr_assert_eq(reqs, 7);
    cr_assert_eq(conns, 3, "expected 2 upstream connections (one closed by /close) + stats");
}

Test(proxy, http10_client_gets_close)
{
    start_default();
    char req[256];
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/size/50 HTTP/1.0\r\n\r\n", g_oport);
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    mp_send_str(fd, req);
    char buf[4096];
    bool closed = false;
    size_t n = mp_read_until_close(fd, buf, sizeof buf, 3000, &closed);
    cr_assert(closed, "HTTP/1.0 request without keep-alive: connection left open");
    cr_assert(strncmp(buf, "HTTP/1.", 7) == 0 && strncmp(buf + 8, " 200", 4) == 0, "got: %s", buf);
    char *body = strstr(buf, "\r\n\r\n");
    cr_assert_not_null(body);
    cr_assert_eq(n - (size_t)(body + 4 - buf), 50, "HTTP/1.0 body length");
    close(fd);
}
