/*
 * tests/integration/test_proxy_reload.c: the real musproxy's life under
 * signals and configuration changes (the setup is in proxy_harness.h):
 * SIGHUP reloads (connections moved to the new configuration, listeners
 * changed), SIGTERM draining requests in flight, the configuration check
 * mode, the access log's fields for requests and tunnels, and SIGUSR1
 * reopening it. Not forwarding itself (test_proxy.c) nor refusals and
 * limits (test_proxy_limits.c).
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
