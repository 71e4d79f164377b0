/*
 * tests/integration/proxy_harness.h: what the proxy integration tests
 * (test_proxy*.c) share: the processes of one test, starting mp-origin and
 * musproxy, transfers through the proxy with libcurl, raw-socket requests,
 * the origin's /stats and the access log. Test code only; it holds no
 * Test() cases (proxy_harness.c declares TestSuite(proxy) for every file
 * that links it).
 *
 * Every test starts the processes it needs (temporary directory, its own
 * YAML config, free ports) and the suite .fini kills whatever is left. Short
 * timeouts in the configs keep the files fast. Run with the environment set
 * by meson (MUSPROXY_BIN, ORIGIN_BIN, MP_SRCDIR), e.g.
 *   meson test -C build integration-proxy -v
 * MP_KEEP_TMP=1 keeps the temporary directories (configs, stderr, logs).
 */
#ifndef MUS_TESTS_PROXY_HARNESS_H
#define MUS_TESTS_PROXY_HARNESS_H

#include <curl/curl.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

/* ---------- per-test state ---------- */

extern mp_proc_t g_origin, g_proxy;
extern int g_oport, g_pport;
extern char g_cfg[MP_PATH_MAX];
extern char g_log[MP_PATH_MAX];

void start_origin(void);
/* musproxy with configuration c (written as proxy.yaml), its log in g_log. */
void start_proxy(mp_config_t *c);
/* Origin plus a proxy with the default test configuration. */
void start_default(void);

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

/* A handle that goes through the proxy on proxy_port. */
CURL *proxied_handle(int proxy_port);
void xfer_reset(xfer_t *x);
/* url on h into x (reset first, check_pattern kept): curl's result. */
CURLcode perform(CURL *h, const char *url, xfer_t *x);
/* One GET through the proxy on a fresh handle. */
void get_via(int proxy_port, const char *url, xfer_t *x);
/* http://127.0.0.1:<origin port><path> into buf. */
char *url_o(char *buf, size_t cap, const char *path);

/* ---------- raw socket helpers ---------- */

/* A reader of fd (caller frees). */
mp_reader_t *reader_new(int fd);
/* Reads the origin's /stats directly (not through the proxy). */
void origin_stats(int port, long *conns, long *reqs);
bool contains_ci(const char *hay, const char *needle);
/* The first line of the access log containing needle, waiting up to timeout_ms. */
char *wait_log_line(const char *path, const char *needle, int timeout_ms);

/* Connects and sends "CONNECT 127.0.0.1:port", returns the status (0 if none). */
int connect_status(int port, int *fd_out);
/* GET path from the origin on the keep-alive connection fd: the status, -1 if none. */
int keepalive_get(int fd, mp_reader_t *r, const char *path);
/* Waits up to 5 s for the proxy to close fd; asserts that it did, lo..hi ms from now. */
void assert_closed_within(int fd, long long lo, long long hi, const char *what);

#endif
