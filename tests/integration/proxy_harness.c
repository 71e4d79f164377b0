/*
 * tests/integration/proxy_harness.c: the helpers of proxy_harness.h for the
 * proxy integration tests (test_proxy*.c): the processes of one test,
 * libcurl transfers through the proxy, raw-socket requests, the origin's
 * /stats and the access log. Test code only: no Test() cases, only the
 * suite's setup.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "proxy_harness.h"

mp_proc_t g_origin, g_proxy;
int g_oport = -1, g_pport = -1;
char g_cfg[MP_PATH_MAX];
char g_log[MP_PATH_MAX];

static void suite_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
}

static void suite_fini(void)
{
    mp_cleanup();
}

TestSuite(proxy, .init = suite_init, .fini = suite_fini, .timeout = 60);

void start_origin(void)
{
    g_oport = mp_origin_start(&g_origin, "origin", NULL, NULL);
    cr_assert_gt(g_oport, 0, "mp-origin did not start");
}

void start_proxy(mp_config_t *c)
{
    mp_path(g_log, "access.log");
    cr_assert_eq(mp_config_write(c, "proxy.yaml", g_cfg), 0);
    g_pport = c->listen_port;
    cr_assert_eq(mp_proxy_start(&g_proxy, g_cfg, g_pport), 0,
                 "musproxy did not start listening on %d (see stderr above)", g_pport);
}

/* Origin plus a proxy with the default test configuration. */
void start_default(void)
{
    start_origin();
    mp_config_t c;
    mp_config_defaults(&c);
    start_proxy(&c);
}

/* ---------- libcurl helpers ---------- */

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

CURL *proxied_handle(int proxy_port)
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

void xfer_reset(xfer_t *x)
{
    free(x->body);
    memset(x, 0, sizeof *x);
    x->pattern_ok = true;
}

CURLcode perform(CURL *h, const char *url, xfer_t *x)
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
void get_via(int proxy_port, const char *url, xfer_t *x)
{
    CURL *h = proxied_handle(proxy_port);
    perform(h, url, x);
    curl_easy_cleanup(h);
}

char *url_o(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", g_oport, path);
    return buf;
}

/* ---------- raw socket helpers ---------- */

mp_reader_t *reader_new(int fd)
{
    mp_reader_t *r = malloc(sizeof *r);
    cr_assert_not_null(r);
    mp_reader_init(r, fd);
    return r;
}

/* Reads the origin's /stats directly (not through the proxy). */
void origin_stats(int port, long *conns, long *reqs)
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

bool contains_ci(const char *hay, const char *needle)
{
    return strcasestr(hay, needle) != NULL;
}

/* The first line of the access log containing needle, waiting up to timeout_ms. */
char *wait_log_line(const char *path, const char *needle, int timeout_ms)
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

/* Connects and sends "CONNECT 127.0.0.1:port", returns the status (0 if none). */
int connect_status(int port, int *fd_out)
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

int keepalive_get(int fd, mp_reader_t *r, const char *path)
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
void assert_closed_within(int fd, long long lo, long long hi, const char *what)
{
    char buf[1024];
    bool closed = false;
    long long t0 = mp_now_ms();
    mp_read_until_close(fd, buf, sizeof buf, 5000, &closed);
    long long el = mp_now_ms() - t0;
    cr_assert(closed, "%s: still open after %lld ms", what, el);
    cr_assert(el >= lo && el <= hi, "%s: closed after %lld ms, expected %lld..%lld", what, el, lo, hi);
}
