/*
 * tests/integration/test_proxy.c: integration tests that drive the real
 * musproxy binary and mp-origin over loopback with libcurl and raw sockets.
 *
 * Every test starts the processes it needs (temporary directory, its own
 * YAML config, free ports) and the suite .fini kills whatever is left. Short
 * timeouts in the configs keep the file fast. Run with the environment set
 * by meson (MUSPROXY_BIN, ORIGIN_BIN, MP_SRCDIR), e.g.
 *   meson test -C build integration-proxy -v
 * MP_KEEP_TMP=1 keeps the temporary directories (configs, stderr, logs).
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

#include "harness.h"

#define MiB (1024ULL * 1024ULL)
#define BIG_BYTES (300ULL * MiB)
#define HWM_LIMIT_KB (64L * 1024L)

/* ---------- per-test state ---------- */

static mp_proc_t g_origin, g_proxy, g_tls;
static int g_oport = -1, g_pport = -1;
static char g_cfg[MP_PATH_MAX];
static char g_log[MP_PATH_MAX];

static void suite_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
}

static void suite_fini(void)
{
    mp_cleanup();
}

static void start_origin(void)
{
    g_oport = mp_origin_start(&g_origin, "origin", NULL, NULL);
    cr_assert_gt(g_oport, 0, "mp-origin did not start");
}

static void start_proxy(mp_config_t *c)
{
    mp_path(g_log, "access.log");
    cr_assert_eq(mp_config_write(c, "proxy.yaml", g_cfg), 0);
    g_pport = c->listen_port;
    cr_assert_eq(mp_proxy_start(&g_proxy, g_cfg, g_pport), 0,
                 "musproxy did not start listening on %d (see stderr above)", g_pport);
}

/* Origin plus a proxy with the default test configuration. */
static void start_default(void)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);
    start_proxy(&c);
}

/* ---------- libcurl helpers ---------- */

typedef struct xfer {
    CURLcode rc;
    long status;
    char *body;                     /* first BODY_KEEP bytes */
    size_t kept;
    uint64_t total;                 /* all body bytes */
    bool check_pattern;
    bool pattern_ok;
    unsigned pat_idx;
    char headers[16384];            /* response headers of the last response */
    size_t hlen;
    long num_connects;
    long header_size;
    long connect_code;
    double seconds;
} xfer_t;

#define BODY_KEEP (1u << 20)

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = sz * n;
    if (x->kept < BODY_KEEP) {
        size_t take = len < BODY_KEEP - x->kept ? len : BODY_KEEP - x->kept;
        if (!x->body)
            x->body = malloc(BODY_KEEP + 1);
        memcpy(x->body + x->kept, p, take);
        x->kept += take;
        x->body[x->kept] = '\0';
    }
    if (x->check_pattern && x->pattern_ok) {
        unsigned idx = x->pat_idx;
        for (size_t i = 0; i < len; i++) {
            if ((unsigned char)p[i] != idx) {
                x->pattern_ok = false;
                break;
            }
            if (++idx == 251)
                idx = 0;
        }
        x->pat_idx = idx;
    }
    x->total += len;
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    xfer_t *x = ud;
    size_t len = sz * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        x->hlen = 0;                /* a new response (after 100 or CONNECT 200) */
    if (x->hlen + len < sizeof x->headers) {
        memcpy(x->headers + x->hlen, p, len);
        x->hlen += len;
        x->headers[x->hlen] = '\0';
    }
    return len;
}

static CURL *proxied_handle(int proxy_port)
{
    CURL *h = curl_easy_init();
    cr_assert_not_null(h);
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", proxy_port);
    curl_easy_setopt(h, CURLOPT_PROXY, proxy);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    return h;
}

static void xfer_reset(xfer_t *x)
{
    free(x->body);
    memset(x, 0, sizeof *x);
    x->pattern_ok = true;
}

static CURLcode perform(CURL *h, const char *url, xfer_t *x)
{
    bool check = x->check_pattern;
    xfer_reset(x);
    x->check_pattern = check;
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
    x->rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &x->num_connects);
    curl_easy_getinfo(h, CURLINFO_HEADER_SIZE, &x->header_size);
    curl_easy_getinfo(h, CURLINFO_HTTP_CONNECTCODE, &x->connect_code);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &x->seconds);
    return x->rc;
}

/* One GET through the proxy on a fresh handle. */
static void get_via(int proxy_port, const char *url, xfer_t *x)
{
    CURL *h = proxied_handle(proxy_port);
    perform(h, url, x);
    curl_easy_cleanup(h);
}

static char *url_o(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", g_oport, path);
    return buf;
}

/* ---------- raw socket helpers ---------- */

static mp_reader_t *reader_new(int fd)
{
    mp_reader_t *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    mp_reader_init(r, fd);
    return r;
}

/* Connects to the proxy, sends req, reads one response. Returns the fd. */
static int raw_exchange(const char *req, mp_response_t *resp, bool is_head, int timeout_ms)
{
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0, "connect to proxy: %s", strerror(errno));
    cr_assert_eq(mp_send_str(fd, req), 0);
    mp_reader_t *r = reader_new(fd);
    int rc = mp_read_response(r, resp, is_head, timeout_ms);
    free(r);
    cr_assert_eq(rc, 0, "no complete response to: %.80s", req);
    return fd;
}

/* Reads the origin's /stats directly (not through the proxy). */
static void origin_stats(int port, long *conns, long *reqs)
{
    int fd = mp_connect(port);
    cr_assert_geq(fd, 0);
    mp_send_str(fd, "GET /stats HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n");
    mp_reader_t *r = reader_new(fd);
    mp_response_t resp;
    cr_assert_eq(mp_read_response(r, &resp, false, 3000), 0);
    cr_assert_eq(sscanf(resp.body, "{\"connections\":%ld,\"requests\":%ld}", conns, reqs), 2,
                 "stats body: %s", resp.body);
    mp_response_free(&resp);
    free(r);
    close(fd);
}

static bool contains_ci(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

/* The first line of the access log containing needle, waiting up to timeout_ms. */
static char *wait_log_line(const char *path, const char *needle, int timeout_ms)
{
    long long end = mp_now_ms() + timeout_ms;
    do {
        char *all = mp_read_file(path, NULL);
        if (all) {
            for (char *line = strtok(all, "\n"); line; line = strtok(NULL, "\n")) {
                if (strstr(line, needle)) {
                    char *copy = strdup(line);
                    free(all);
                    return copy;
                }
            }
            free(all);
        }
        mp_sleep_ms(50);
    } while (mp_now_ms() < end);
    return NULL;
}

#define LOG_FIELDS 10
/* Splits an access log line on runs of whitespace; returns the field count. */
static int split_fields(char *line, char *f[], int max)
{
    int n = 0;
    for (char *t = strtok(line, " \t"); t; t = strtok(NULL, " \t")) {
        if (n < max)
            f[n] = t;
        n++;
    }
    return n;
}

/* Checks fields 1 and 2 of a native access.log line: "%9ld.%03d %6ld ". */
static void check_time_fields(const char *line)
{
    const char *dot = strchr(line, '.');
    cr_assert_not_null(dot, "no '.' in %s", line);
    size_t secs_len = (size_t)(dot - line);
    cr_assert_geq(secs_len, 9, "seconds too short: %s", line);
    for (size_t i = 0; i < secs_len; i++)
        cr_assert(isdigit((unsigned char)line[i]), "seconds not numeric: %s", line);
    long secs = strtol(line, NULL, 10);
    long now = (long)time(NULL);
    cr_assert(secs >= now - 120 && secs <= now + 5, "timestamp %ld far from now %ld", secs, now);
    for (int i = 1; i <= 3; i++)
        cr_assert(isdigit((unsigned char)dot[i]), "millis not 3 digits: %s", line);
    cr_assert_eq(dot[4], ' ', "field 1 not followed by a space: %s", line);
    /* elapsed right-aligned in width 6 */
    const char *el = dot + 5;
    int i = 0;
    while (i < 6 && el[i] == ' ')
        i++;
    cr_assert_lt(i, 6, "elapsed field empty: %s", line);
    for (; i < 6; i++)
        cr_assert(isdigit((unsigned char)el[i]), "elapsed not right-aligned width 6: '%s'", line);
    cr_assert_eq(el[6], ' ', "elapsed wider than 6 or not followed by space: '%s'", line);
}

/* ================================================================ */

TestSuite(proxy, .init = suite_init, .fini = suite_fini, .timeout = 60);

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

Test(proxy, connect_port_not_allowed_403)
{
    start_default();    /* connect_ports: [443] */
    char req[256];
    snprintf(req, sizeof req, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
             g_oport, g_oport);
    mp_response_t resp;
    int fd = raw_exchange(req, &resp, false, 3000);
    cr_assert_eq(resp.status, 403, "got: %s", resp.head);
    char v[128];
    cr_assert(mp_header(resp.head, "Content-Type", v, sizeof v) && strstr(v, "text/html"),
              "error page not text/html: %s", resp.head);
    cr_assert_gt(resp.body_len, 0, "error page without body");
    mp_response_free(&resp);
    close(fd);
    long conns, reqs;
    origin_stats(g_oport, &conns, &reqs);
    cr_assert_eq(conns, 1, "the proxy connected to the refused CONNECT port");
}

Test(proxy, upstream_refused_502)
{
    start_default();
    int dead = mp_free_port();
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", dead);
    xfer_t x = {0};
    get_via(g_pport, url, &x);
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 502);
    cr_assert(contains_ci(x.headers, "\nContent-Type: text/html"), "%s", x.headers);
    cr_assert(x.body && strstr(x.body, "502"), "error body does not name the status: %s",
              x.body ? x.body : "(none)");
    free(x.body);
}

Test(proxy, upstream_response_timeout_504)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);
    c.timeouts = "header: 1s, idle: 5s, connect: 2s, response: 1s, tunnel_idle: 5s, "
                 "shutdown: 5s, dns: 2s";
    start_proxy(&c);
    char url[256];
    long long t0 = mp_now_ms();
    xfer_t x = {0};
    get_via(g_pport, url_o(url, sizeof url, "/sleep/3000"), &x);
    long long el = mp_now_ms() - t0;
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 504, "got %ld after %lld ms", x.status, el);
    cr_assert(el >= 900 && el < 2800, "504 after %lld ms, expected ~1000", el);
    free(x.body);
}

Test(proxy, client_acl_403)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);
    c.clients = "[10.0.0.0/8]";
    start_proxy(&c);
    char url[256];
    xfer_t x = {0};
    get_via(g_pport, url_o(url, sizeof url, "/"), &x);
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 403);
    long conns, reqs;
    origin_stats(g_oport, &conns, &reqs);
    cr_assert_eq(reqs, 1, "a refused client's request reached the origin");
    free(x.body);
}

Test(proxy, destination_acl_and_loop_403)
{
    start_default();
    xfer_t x = {0};
    long long t0 = mp_now_ms();
    get_via(g_pport, "http://169.254.169.254/latest/meta-data/", &x);
    cr_assert_eq(x.rc, CURLE_OK, "curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 403, "metadata address: got %ld", x.status);
    cr_assert_lt(mp_now_ms() - t0, 1500, "denied destination took long: it was contacted?");

    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", g_pport);
    get_via(g_pport, url, &x);
    cr_assert_eq(x.rc, CURLE_OK, "loop: curl: %s", curl_easy_strerror(x.rc));
    cr_assert_eq(x.status, 403, "request to the proxy itself: got %ld", x.status);
    cr_assert(mp_proc_alive(&g_proxy));
    free(x.body);
}

Test(proxy, smuggling_cl_te_400_not_forwarded)
{
    start_default();
    char req[512];
    snprintf(req, sizeof req,
             "POST http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
             "Content-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n"
             "0\r\n\r\nGET /status/299 HTTP/1.1\r\nHost: x\r\n\r\n",
             g_oport, g_oport);
    mp_response_t resp;
    int fd = raw_exchange(req, &resp, false, 3000);
    cr_assert_eq(resp.status, 400, "got: %s", resp.head);
    mp_response_free(&resp);
    bool closed = false;
    char rest[4096];
    mp_read_until_close(fd, rest, sizeof rest, 2000, &closed);
    cr_assert(closed, "connection kept open after a smuggling attempt");
    cr_assert(strstr(rest, "299") == NULL, "smuggled request answered: %s", rest);
    close(fd);
    long conns, reqs;
    origin_stats(g_oport, &conns, &reqs);
    cr_assert_eq(reqs, 1, "the origin saw %ld requests (only /stats expected)", reqs);
    cr_assert_eq(conns, 1, "the proxy opened an upstream connection");
}

Test(proxy, malformed_request_400)
{
    start_default();
    static const char *const bad[] = {
        "THIS IS NOT HTTP\r\n\r\n",
        "GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nNoColonHere\r\n\r\n",
        "GET http://127.0.0.1/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mp_response_t resp;
        int fd = raw_exchange(bad[i], &resp, false, 3000);
        cr_assert_eq(resp.status, 400, "case %zu got: %s", i, resp.head);
        mp_response_free(&resp);
        close(fd);
    }
    long conns, reqs;
    origin_stats(g_oport, &conns, &reqs);
    cr_assert_eq(reqs, 1, "a malformed request reached the origin");
}

Test(proxy, slowloris_header_timeout)
{
    start_default();    /* timeouts.header: 1s */
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    char req[256];
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127.0.", g_oport);
    mp_send_str(fd, req);
    long long t0 = mp_now_ms();
    char buf[4096];
    bool closed = false;
    mp_read_until_close(fd, buf, sizeof buf, 5000, &closed);
    long long el = mp_now_ms() - t0;
    cr_assert(closed, "connection still open after %lld ms with half a header", el);
    cr_assert(el >= 700 && el <= 3000, "closed after %lld ms, expected ~1000", el);
    if (buf[0])
        cr_assert(strncmp(buf, "HTTP/1.1 408", 12) == 0, "unexpected answer: %s", buf);
    close(fd);
}

/* Connects and sends "CONNECT 127.0.0.1:port", returns the status (0 if none). */
static int connect_status(int port, int *fd_out)
{
    char req[256];
    snprintf(req, sizeof req, "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
             port, port);
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    mp_send_str(fd, req);
    mp_reader_t *r = reader_new(fd);
    mp_response_t resp;
    int st = mp_read_head(r, &resp, 3000) == 0 ? resp.status : 0;
    free(r);
    if (fd_out)
        *fd_out = fd;
    else
        close(fd);
    return st;
}

static int keepalive_get(int fd, mp_reader_t *r, const char *path)
{
    char req[512];
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
             g_oport, path, g_oport);
    if (mp_send_str(fd, req) < 0)
        return -1;
    mp_response_t resp;
    if (mp_read_response(r, &resp, false, 3000) < 0)
        return -1;
    mp_response_free(&resp);
    return resp.status;
}

/* Waits up to 5 s for the proxy to close fd; asserts that it did, lo..hi ms from now. */
static void assert_closed_within(int fd, long long lo, long long hi, const char *what)
{
    char buf[1024];
    bool closed = false;
    long long t0 = mp_now_ms();
    mp_read_until_close(fd, buf, sizeof buf, 5000, &closed);
    long long el = mp_now_ms() - t0;
    cr_assert(closed, "%s: still open after %lld ms", what, el);
    cr_assert(el >= lo && el <= hi, "%s: closed after %lld ms, expected %lld..%lld", what, el, lo, hi);
}

Test(proxy, sighup_reload)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);                 /* connect_ports [443] */
    start_proxy(&c);

    int ka = mp_connect(g_pport);
    cr_assert_geq(ka, 0);
    mp_reader_t *r = reader_new(ka);
    cr_assert_eq(keepalive_get(ka, r, "/"), 200);
    cr_assert_eq(connect_status(g_oport, NULL), 403, "CONNECT allowed before the reload");

    /* valid reload: allow CONNECT to the origin port */
    char ports[64], path[MP_PATH_MAX];
    snprintf(ports, sizeof ports, "[443, %d]", g_oport);
    c.connect_ports = ports;
    cr_assert_eq(mp_config_write(&c, "proxy.yaml", path), 0);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    mp_sleep_ms(500);
    cr_assert(mp_proc_alive(&g_proxy), "musproxy died on SIGHUP");
    cr_assert_eq(keepalive_get(ka, r, "/status/201"), 201, "live connection broken by reload");
    int tfd;
    cr_assert_eq(connect_status(g_oport, &tfd), 200, "new connect_ports not in force");
    mp_send_str(tfd, "GET /status/202 HTTP/1.1\r\nHost: x\r\n\r\n");
    mp_reader_t *tr = reader_new(tfd);
    mp_response_t resp;
    cr_assert_eq(mp_read_response(tr, &resp, false, 3000), 0, "nothing through the tunnel");
    cr_assert_eq(resp.status, 202);
    mp_response_free(&resp);
    free(tr);
    close(tfd);

    /* invalid reload: unknown key on line 12, column 3 */
    c.extra_proxy = "  bogus_key: 1\n";
    cr_assert_eq(mp_config_write(&c, "proxy.yaml", path), 0);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    mp_sleep_ms(500);
    cr_assert(mp_proc_alive(&g_proxy), "musproxy died on an invalid config");
    char *err = mp_proc_stderr(&g_proxy);
    int col = 0;
    int line = mp_find_file_line_col(err, "proxy.yaml", &col);
    cr_assert_eq(line, 12, "no proxy.yaml:12:col: error in stderr (line %d):\n%s", line, err);
    cr_assert_eq(col, 3, "column %d", col);
    free(err);
    cr_assert_eq(keepalive_get(ka, r, "/"), 200, "live connection broken by invalid reload");
    cr_assert_eq(connect_status(g_oport, NULL), 200, "old config not kept after invalid reload");
    free(r);
    close(ka);
}

/*
 * Connections between two requests take a new configuration at once: an
 * idle keep-alive connection, and one whose request was in flight during
 * the reload once its response is sent. Before, each kept the configuration
 * (and compiled policy) of its last request until its next one, so a reload
 * storm with many idle clients kept one generation alive per reload
 * (tools/loadfault.sh measured 16 -> 257 MiB RSS). Seen here through the
 * idle timeout: 30 s before the reload, 1 s after.
 */
Test(proxy, reload_moves_idle_connections)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);
    c.timeouts = "header: 5s, idle: 30s, connect: 2s, response: 5s, tunnel_idle: 5s, "
                 "shutdown: 5s, dns: 2s";
    start_proxy(&c);

    int idle = mp_connect(g_pport), busy = mp_connect(g_pport);
    cr_assert(idle >= 0 && busy >= 0);
    mp_reader_t *ri = reader_new(idle), *rb = reader_new(busy);
    cr_assert_eq(keepalive_get(idle, ri, "/"), 200);
    char req[256];
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/sleep/1500 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
             g_oport, g_oport);
    cr_assert_eq(mp_send_str(busy, req), 0);
    mp_sleep_ms(300);

    char path[MP_PATH_MAX];
    c.timeouts = "header: 5s, idle: 1s, connect: 2s, response: 5s, tunnel_idle: 5s, "
                 "shutdown: 5s, dns: 2s";
    cr_assert_eq(mp_config_write(&c, "proxy.yaml", path), 0);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);

    /* the idle connection: closed by the new idle timeout, not the old one */
    assert_closed_within(idle, 0, 3000, "an idle connection after a reload to idle: 1s (was 30s)");

    /* the busy one: its request finishes, then it idles under the new configuration */
    mp_response_t resp;
    cr_assert_eq(mp_read_response(rb, &resp, false, 5000), 0, "the request in flight was lost");
    cr_assert_eq(resp.status, 200);
    mp_response_free(&resp);
    assert_closed_within(busy, 700, 3000, "a connection idle after its request ran over a reload");
    free(ri);
    free(rb);
    close(idle);
    close(busy);
}

typedef struct bg_get {
    int proxy_port;
    char url[256];
    xfer_t x;
} bg_get_t;

static void *bg_get_run(void *arg)
{
    bg_get_t *b = arg;
    CURL *h = curl_easy_init();
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", b->proxy_port);
    curl_easy_setopt(h, CURLOPT_PROXY, proxy);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    perform(h, b->url, &b->x);
    curl_easy_cleanup(h);
    return NULL;
}

Test(proxy, sigterm_drains_in_flight)
{
    start_default();
    bg_get_t b = { .proxy_port = g_pport };
    url_o(b.url, sizeof b.url, "/sleep/1500");
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, bg_get_run, &b), 0);
    mp_sleep_ms(300);
    long long t0 = mp_now_ms();
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGTERM), 0);
    mp_sleep_ms(300);

    /* during the drain: no new connection is served */
    int fd = mp_connect(g_pport);
    if (fd >= 0) {
        char req[256], buf[1024];
        snprintf(req, sizeof req, "GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n", g_oport);
        mp_send_str(fd, req);
        bool closed;
        mp_read_until_close(fd, buf, sizeof buf, 1000, &closed);
        cr_assert(strncmp(buf, "HTTP/1.1 200", 12) != 0,
                  "a new connection was served while draining: %s", buf);
        close(fd);
    }
    pthread_join(t, NULL);
    cr_assert_eq(b.x.rc, CURLE_OK, "in-flight request failed: %s", curl_easy_strerror(b.x.rc));
    cr_assert_eq(b.x.status, 200);
    cr_assert_str_eq(b.x.body, "slept 1500\n");
    cr_assert_eq(mp_proc_wait(&g_proxy, 5000), 0, "musproxy did not exit after the drain");
    cr_assert(WIFEXITED(g_proxy.status) && WEXITSTATUS(g_proxy.status) == 0,
              "exit status 0x%x", g_proxy.status);
    cr_log_info("exited %lld ms after SIGTERM", mp_now_ms() - t0);
    errno = 0;
    fd = mp_connect(g_pport);
    cr_assert_lt(fd, 0, "the port still accepts after exit");
    free(b.x.body);
}

Test(proxy, config_check_mode)
{
    mp_config_t c;
    mp_config_defaults(&c);
    char good[MP_PATH_MAX], bad[MP_PATH_MAX];
    cr_assert_eq(mp_config_write(&c, "good.yaml", good), 0);
    c.extra_proxy = "  bogus_key: 1\n";                  /* line 12, column 3 */
    cr_assert_eq(mp_config_write(&c, "bad.yaml", bad), 0);

    char *err = NULL;
    char *argv_good[] = { (char *)mp_musproxy_bin(), "-t", "-c", good, NULL };
    int rc = mp_run(argv_good, 10000, &err);
    cr_assert_eq(rc, 0, "-t on a valid file: exit %d, stderr: %s", rc, err);
    free(err);
    cr_assert_neq(mp_wait_port(c.listen_port, 200), 0, "-t opened the listen port");

    char *argv_bad[] = { (char *)mp_musproxy_bin(), "-t", "-c", bad, NULL };
    rc = mp_run(argv_bad, 10000, &err);
    cr_assert(rc > 0, "-t on an invalid file: exit %d", rc);
    int col = 0;
    int line = mp_find_file_line_col(err, "bad.yaml", &col);
    cr_assert_eq(line, 12, "no bad.yaml:12:col: in stderr: %s", err);
    cr_assert_eq(col, 3, "column %d: %s", col, err);
    free(err);

    char *argv_ver[] = { (char *)mp_musproxy_bin(), "--version", NULL };
    rc = mp_run(argv_ver, 5000, NULL);
    cr_assert_eq(rc, 0, "--version exit %d", rc);
}

Test(proxy, access_log_fields)
{
    start_default();
    char url[256];
    xfer_t x = {0};
    get_via(g_pport, url_o(url, sizeof url, "/"), &x);
    cr_assert_eq(x.status, 200);
    long sent = x.header_size + (long)x.total;

    char *line = wait_log_line(g_log, " GET ", 3000);
    cr_assert_not_null(line, "no GET line in %s", g_log);
    cr_log_info("access.log: %s", line);
    check_time_fields(line);
    char *f[LOG_FIELDS + 4];
    char *copy = strdup(line);
    int n = split_fields(copy, f, LOG_FIELDS + 4);
    cr_assert_eq(n, LOG_FIELDS, "%d fields: %s", n, line);
    cr_assert_str_eq(f[2], "127.0.0.1");
    cr_assert_str_eq(f[3], "TCP_MISS/200");
    cr_assert_eq(strtol(f[4], NULL, 10), sent, "bytes %s, client received %ld", f[4], sent);
    cr_assert_str_eq(f[5], "GET");
    cr_assert_str_eq(f[6], url);
    cr_assert_str_eq(f[7], "-");
    cr_assert_str_eq(f[8], "HIER_DIRECT/127.0.0.1");
    cr_assert_str_eq(f[9], "text/plain");
    free(copy);
    free(line);

    /* denied */
    get_via(g_pport, "http://169.254.169.254/x", &x);
    cr_assert_eq(x.status, 403);
    sent = x.header_size + (long)x.total;
    line = wait_log_line(g_log, "169.254.169.254", 3000);
    cr_assert_not_null(line, "no line for the denied request");
    cr_log_info("access.log: %s", line);
    check_time_fields(line);
    copy = strdup(line);
    n = split_fields(copy, f, LOG_FIELDS + 4);
    cr_assert_eq(n, LOG_FIELDS, "%d fields: %s", n, line);
    cr_assert_str_eq(f[3], "TCP_DENIED/403");
    cr_assert_eq(strtol(f[4], NULL, 10), sent, "bytes %s, client received %ld", f[4], sent);
    cr_assert_str_eq(f[5], "GET");
    cr_assert_str_eq(f[6], "http://169.254.169.254/x");
    cr_assert_str_eq(f[8], "HIER_NONE/-");
    cr_assert_str_eq(f[9], "text/html");
    free(copy);
    free(line);
    free(x.body);
}

Test(proxy, access_log_connect_tunnel)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);
    char ports[64];
    snprintf(ports, sizeof ports, "[443, %d]", g_oport);
    c.connect_ports = ports;
    start_proxy(&c);
    int fd;
    cr_assert_eq(connect_status(g_oport, &fd), 200);
    mp_send_str(fd, "GET /size/100 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    char buf[4096];
    bool closed;
    mp_read_until_close(fd, buf, sizeof buf, 3000, &closed);
    cr_assert(closed, "tunnel not closed after the origin closed");
    cr_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0);
    close(fd);

    char needle[64];
    snprintf(needle, sizeof needle, " CONNECT 127.0.0.1:%d ", g_oport);
    char *line = wait_log_line(g_log, needle, 3000);
    cr_assert_not_null(line, "no CONNECT line in the access log");
    cr_log_info("access.log: %s", line);
    check_time_fields(line);
    char *f[LOG_FIELDS + 4];
    int n = split_fields(line, f, LOG_FIELDS + 4);
    cr_assert_eq(n, LOG_FIELDS);
    cr_assert_str_eq(f[2], "127.0.0.1");
    cr_assert_str_eq(f[3], "TCP_TUNNEL/200");
    cr_assert_gt(strtol(f[4], NULL, 10), 100, "tunnel bytes %s", f[4]);
    cr_assert_str_eq(f[7], "-");
    cr_assert_str_eq(f[8], "HIER_DIRECT/127.0.0.1");
    cr_assert_str_eq(f[9], "-");
    free(line);
}

Test(proxy, sigusr1_reopens_access_log)
{
    start_default();
    char url[256];
    xfer_t x = {0};
    get_via(g_pport, url_o(url, sizeof url, "/status/201"), &x);
    char *line = wait_log_line(g_log, "/status/201", 3000);
    cr_assert_not_null(line, "first request not logged");
    free(line);
    char rotated[MP_PATH_MAX];
    mp_path(rotated, "access.log.1");
    cr_assert_eq(rename(g_log, rotated), 0);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGUSR1), 0);
    mp_sleep_ms(300);
    get_via(g_pport, url_o(url, sizeof url, "/status/202"), &x);
    cr_assert_eq(x.status, 202);
    line = wait_log_line(g_log, "/status/202", 3000);
    cr_assert_not_null(line, "request after SIGUSR1 not in a new %s", g_log);
    free(line);
    char *old = mp_read_file(rotated, NULL);
    cr_assert_not_null(old);
    cr_assert(strstr(old, "/status/202") == NULL, "logged into the rotated file after SIGUSR1");
    free(old);
    cr_assert(mp_proc_alive(&g_proxy));
    free(x.body);
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

Test(proxy, idle_and_tunnel_idle_timeouts)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);
    char ports[64];
    snprintf(ports, sizeof ports, "[443, %d]", g_oport);
    c.connect_ports = ports;
    c.timeouts = "header: 1s, idle: 1s, connect: 2s, response: 5s, tunnel_idle: 1s, "
                 "shutdown: 5s, dns: 2s";
    start_proxy(&c);

    /* keep-alive connection idle after a response */
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    mp_reader_t *r = reader_new(fd);
    cr_assert_eq(keepalive_get(fd, r, "/"), 200);
    assert_closed_within(fd, 700, 3000, "idle keep-alive connection");
    free(r);
    close(fd);

    /* silent CONNECT tunnel */
    cr_assert_eq(connect_status(g_oport, &fd), 200);
    assert_closed_within(fd, 700, 3000, "idle tunnel");
    close(fd);
}

/* ---------- listeners, connection limits, descriptor exhaustion ---------- */

/* Seconds of CPU (user + system) pid has used, from /proc/pid/stat. */
static double proc_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long utime = 0, stime = 0;
    /* fields after the command: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

Test(proxy, reload_changes_listeners)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);
    start_proxy(&c);
    int old_port = g_pport;

    int ka = mp_connect(old_port);
    cr_assert_geq(ka, 0);
    mp_reader_t *r = reader_new(ka);
    cr_assert_eq(keepalive_get(ka, r, "/"), 200);

    /* move the listener to a new port */
    char path[MP_PATH_MAX];
    int new_port = mp_free_port();
    c.listen_port = new_port;
    cr_assert_eq(mp_config_write(&c, "proxy.yaml", path), 0);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    cr_assert_eq(mp_wait_port(new_port, 3000), 0, "the new listener did not open");
    mp_sleep_ms(200);
    int fd = mp_connect(old_port);
    cr_assert_lt(fd, 0, "the old listener still accepts after the reload");
    cr_assert_eq(keepalive_get(ka, r, "/status/203"), 203,
                 "a connection accepted on the removed listener was dropped by the reload");
    xfer_t x;
    get_via(new_port, url_o((char[256]){0}, 256, "/size/10"), &x);
    cr_assert_eq(x.status, 200, "request through the new listener failed");
    xfer_reset(&x);
    free(r);
    close(ka);

    /* a listener that cannot be bound: the reload is refused, the old one stays */
    int busy = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(busy, (struct sockaddr *)&sin, sizeof sin), 0);
    socklen_t sl = sizeof sin;
    getsockname(busy, (struct sockaddr *)&sin, &sl);
    cr_assert_eq(listen(busy, 4), 0);
    char extra[128];
    snprintf(extra, sizeof extra, ", { address: \"127.0.0.1:%d\", mode: explicit }",
             ntohs(sin.sin_port));
    c.extra_listen = extra;
    cr_assert_eq(mp_config_write(&c, "proxy.yaml", path), 0);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    mp_sleep_ms(500);
    char *err = mp_proc_stderr(&g_proxy);
    cr_assert(strstr(err, "reload rejected") != NULL && strstr(err, "cannot listen") != NULL,
              "no rejection for an address in use:\n%s", err);
    free(err);
    get_via(new_port, url_o((char[256]){0}, 256, "/size/10"), &x);
    cr_assert_eq(x.status, 200, "the running listener was lost by a rejected reload");
    xfer_reset(&x);
    close(busy);
}

Test(proxy, max_connections_pauses_accept)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);
    c.workers = "1";
    c.max_connections = "4";
    start_proxy(&c);

    int fds[4];
    mp_reader_t *rs[4];
    for (int i = 0; i < 4; i++) {
        fds[i] = mp_connect(g_pport);
        cr_assert_geq(fds[i], 0);
        rs[i] = reader_new(fds[i]);
        cr_assert_eq(keepalive_get(fds[i], rs[i], "/"), 200, "connection %d not served", i);
    }
    /* the fifth connection waits in the kernel's backlog: no answer yet */
    int extra = mp_connect(g_pport);
    cr_assert_geq(extra, 0);
    mp_send_str(extra, "GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: x\r\n\r\n");
    char buf[256];
    cr_assert_eq(mp_recv_timeout(extra, buf, sizeof buf, 600), -2,
                 "a connection beyond max_connections was served");
    char *err = mp_proc_stderr(&g_proxy);
    cr_assert(strstr(err, "accept paused") != NULL, "no log of the paused accept:\n%s", err);
    free(err);
    /* one leaves: the waiting one is accepted and answered */
    close(fds[0]);
    ssize_t n = mp_recv_timeout(extra, buf, sizeof buf - 1, 3000);
    cr_assert_gt(n, 0, "the waiting connection was not served after one closed");
    buf[n] = '\0';
    cr_assert(strncmp(buf, "HTTP/1.1 502", 12) == 0, "unexpected answer: %s", buf);
    close(extra);
    for (int i = 1; i < 4; i++) {
        free(rs[i]);
        close(fds[i]);
    }
    free(rs[0]);
}

Test(proxy, emfile_pauses_instead_of_spinning, .timeout = 60)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);
    c.workers = "1";
    char cfg[MP_PATH_MAX];
    cr_assert_eq(mp_config_write(&c, "proxy.yaml", cfg), 0);
    g_pport = c.listen_port;
    /* 40 descriptors: a few for the daemon itself, then accept hits EMFILE */
    char *argv[] = {"/usr/bin/prlimit", "--nofile=40:40", (char *)mp_musproxy_bin(), "-c", cfg, NULL};
    cr_assert_eq(mp_proc_start(&g_proxy, "musproxy", argv, NULL), 0);
    cr_assert_eq(mp_wait_port(g_pport, 5000), 0, "musproxy did not start under prlimit");

    enum { N = 60 };
    int fds[N];
    for (int i = 0; i < N; i++)
        fds[i] = mp_connect(g_pport);
    mp_sleep_ms(300);
    double before = proc_cpu_seconds(g_proxy.pid);
    mp_sleep_ms(1000);
    double after = proc_cpu_seconds(g_proxy.pid);
    cr_assert_geq(before, 0);
    cr_assert_lt(after - before, 0.3, "musproxy spun on EMFILE: %.2f s of CPU in 1 s",
                 after - before);
    char *err = mp_proc_stderr(&g_proxy);
    cr_assert(strstr(err, "pausing accept") != NULL, "no EMFILE pause logged:\n%s", err);
    free(err);
    for (int i = 0; i < N; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    mp_sleep_ms(300);
    cr_assert(mp_proc_alive(&g_proxy), "musproxy died on EMFILE");
    xfer_t x;
    get_via(g_pport, url_o((char[256]){0}, 256, "/size/10"), &x);
    cr_assert_eq(x.status, 200, "not serving again after the descriptors were freed");
    xfer_reset(&x);
}

/* Thousands of pipelined requests in one write: all answered, in order, and
 * the proxy survives (each finished transaction used to parse the next one
 * from inside its own call chain, growing the stack per request). */
Test(proxy, deep_pipelining_in_order, .timeout = 60)
{
    start_default();
    enum { N = 3000 };
    size_t cap = (size_t)N * 128, len = 0;
    char *req = malloc(cap);
    cr_assert_not_null(req);
    for (int i = 0; i < N; i++)
        len += (size_t)snprintf(req + len, cap - len,
                                "GET http://127.0.0.1:%d/size/%d HTTP/1.1\r\nHost: x\r\n\r\n",
                                g_oport, i % 50 + 1);
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    cr_assert_eq(mp_send_all(fd, req, len), 0);
    free(req);
    mp_reader_t *r = reader_new(fd);
    for (int i = 0; i < N; i++) {
        mp_response_t resp;
        cr_assert_eq(mp_read_response(r, &resp, false, 10000), 0, "response %d missing", i);
        cr_assert_eq(resp.status, 200, "response %d: status %d", i, resp.status);
        cr_assert_eq(resp.body_len, (size_t)(i % 50 + 1), "response %d out of order", i);
        mp_response_free(&resp);
    }
    free(r);
    close(fd);
    cr_assert(mp_proc_alive(&g_proxy), "musproxy died");
}
