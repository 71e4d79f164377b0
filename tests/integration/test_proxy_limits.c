/*
 * tests/integration/test_proxy_limits.c: what the real musproxy refuses and
 * where it stops (the setup is in proxy_harness.h): CONNECT ports, refused
 * and slow upstreams (502, 504), client and destination ACLs and loops,
 * request smuggling and malformed requests, slowloris, the idle and tunnel
 * idle timeouts, proxy.max_connections pausing accept, descriptor
 * exhaustion (EMFILE) without spinning, and thousands of pipelined requests
 * in one write. Forwarding is in test_proxy.c, reloads in
 * test_proxy_reload.c.
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
