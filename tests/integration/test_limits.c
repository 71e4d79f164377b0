/*
 * tests/integration/test_limits.c: proxy.max_connections is one limit for
 * the whole process, whatever the number of workers. The real musproxy runs
 * with workers: 2 and a small max_connections; idle client connections fill
 * it, connections beyond it are not served (they wait in the kernel's
 * backlog, spread over both workers' SO_REUSEPORT queues) until one closes,
 * then exactly one is served (kept alive) per slot released, and `musctl status` counts
 * the open connections. Started with a low soft open-file limit, musproxy
 * raises it to the hard one and warns when that is below what
 * max_connections needs. It does not test descriptor exhaustion (test_proxy_limits.c).
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define LIMIT      3      /* max_connections; odd, so the old per-worker share
                           * (ceil(3/2) = 2 each) would let 4 in */
#define EXTRA      4      /* connections beyond the limit */
#define QUIET_MS   800    /* how long "not served" is watched */

static mp_proc_t g_origin, g_proxy;
static int g_oport, g_pport;
static char g_sock[MP_PATH_MAX];

static void suite_init(void)
{
    signal(SIGPIPE, SIG_IGN);
}

static void suite_fini(void)
{
    mp_cleanup();
}

TestSuite(limits, .init = suite_init, .fini = suite_fini, .timeout = 120);

static void start(void)
{
    mp_config_t c;
    char cfg[MP_PATH_MAX], extra[MP_PATH_MAX + 64];

    g_oport = mp_origin_start(&g_origin, "origin", NULL, NULL);
    cr_assert_gt(g_oport, 0);
    mp_config_defaults(&c);
    c.workers = "2";
    c.max_connections = "3";
    /* idle clients must stay open for the whole test */
    c.timeouts = "header: 60s, idle: 60s, connect: 2s, response: 5s, tunnel_idle: 5s, "
                 "shutdown: 2s, dns: 2s";
    g_pport = c.listen_port;
    mp_path(g_sock, "musproxy.sock");
    cr_assert_eq(mp_config_write(&c, "proxy.yaml", cfg), 0);
    snprintf(extra, sizeof extra, "mus:\n  control_socket: %s\n", g_sock);
    cr_assert_eq(mp_append_file(cfg, extra), 0);
    cr_assert_eq(mp_proxy_start(&g_proxy, cfg, g_pport), 0);
}

/* `musctl status --json`'s connections.open, -1 if it has none, -2 if
 * musctl failed. */
static long long status_open(void)
{
    char out[MP_PATH_MAX], cmd[3 * MP_PATH_MAX], *err = NULL;
    json_t *j, *o;
    json_error_t je;
    long long v = -1;

    mp_path(out, "status.json");
    snprintf(cmd, sizeof cmd, "'%s' status --socket '%s' --json > '%s'", getenv("MUSCTL_BIN"),
             g_sock, out);
    char *sh[] = { "/bin/sh", "-c", cmd, NULL };
    int rc = mp_run(sh, 5000, &err);
    free(err);
    if (rc != 0)
        return -2;   /* not up yet (the control socket starts after the listeners) */
    j = json_load_file(out, 0, &je);
    cr_assert_not_null(j, "status is not JSON: %s", je.text);
    o = json_object_get(json_object_get(j, "connections"), "open");
    if (json_is_integer(o))
        v = json_integer_value(o);
    json_decref(j);
    return v;
}

/* Waits (at most 3 s) for the status to count want open connections. */
static long long status_wait_open(long long want)
{
    long long v = -1;

    for (int i = 0; i < 30; i++) {
        v = status_open();
        if (v == want)
            break;
        mp_sleep_ms(100);
    }
    return v;
}

/* Indexes of the fds (-1 = skipped) with bytes to read within ms, in
 * ready[]; returns how many. */
static int readable(const int *fds, int n, int ms, int *ready)
{
    struct pollfd p[EXTRA];
    int k = 0;

    for (int i = 0; i < n; i++)
        p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
    if (poll(p, (nfds_t)n, ms) <= 0)
        return 0;
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR)))
            ready[k++] = i;
    return k;
}

/* Reads the origin's keep-alive 200 from fd (the connection stays open). */
static void expect_200(int fd)
{
    mp_reader_t *r = malloc(sizeof(*r));
    mp_response_t resp;

    cr_assert_not_null(r);
    mp_reader_init(r, fd);
    cr_assert_eq(mp_read_response(r, &resp, false, 3000), 0,
                 "no answer on a connection that was accepted");
    cr_assert_eq(resp.status, 200, "unexpected answer: %.80s", resp.head);
    cr_assert(strstr(resp.head, "Connection: close") == NULL, "not kept alive: %s", resp.head);
    mp_response_free(&resp);
    free(r);
}

Test(limits, max_connections_is_global_across_workers)
{
    int idle[LIMIT], extra[EXTRA], ready[EXTRA];
    char req[256];

    start();
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/size/10 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n",
             g_oport, g_oport);
    for (int i = 0; i < LIMIT; i++) {
        idle[i] = mp_connect(g_pport);
        cr_assert_geq(idle[i], 0);
    }
    cr_assert_eq(status_wait_open(LIMIT), LIMIT,
                 "musctl status does not count %d open client connections", LIMIT);
    /* beyond the limit: connected by the kernel, but nobody reads them */
    for (int i = 0; i < EXTRA; i++) {
        extra[i] = mp_connect(g_pport);
        cr_assert_geq(extra[i], 0);
        cr_assert_eq(mp_send_str(extra[i], req), 0);
    }
    cr_assert_eq(readable(extra, EXTRA, QUIET_MS, ready), 0,
                 "a connection beyond max_connections %d (2 workers) was served", LIMIT);
    cr_assert_eq(status_open(), LIMIT, "more than max_connections open");
    char *err = mp_proc_stderr(&g_proxy);
    cr_assert(strstr(err, "accept paused") != NULL, "no log of the paused accept:\n%s", err);
    free(err);

    /* each slot released lets exactly one waiting connection in, whichever
     * worker's queue it waits in; a served one keeps its slot (keep-alive) */
    close(idle[0]);
    for (int round = 0; round < EXTRA; round++) {
        int n = readable(extra, EXTRA, 3000, ready);
        cr_assert_geq(n, 1, "round %d: no waiting connection served after a slot was released",
                      round);
        expect_200(extra[ready[0]]);
        int served = ready[0];
        n = readable(extra, EXTRA, 300, ready);
        for (int k = 0; k < n; k++)
            cr_assert_eq(ready[k], served, "round %d: two connections in for one slot", round);
        cr_assert_eq(status_open(), LIMIT, "round %d: open connections != max_connections", round);
        close(extra[served]);
        extra[served] = -1;
    }
    cr_assert_eq(status_wait_open(LIMIT - 1), LIMIT - 1,
                 "the count does not go down when connections close");
    for (int i = 1; i < LIMIT; i++)
        close(idle[i]);
    cr_assert_eq(status_wait_open(0), 0, "connections still counted after all closed");
}

/* The soft open-file limit of the running proxy, from /proc (-1 if unread). */
static long long soft_nofile(pid_t pid)
{
    char path[64], line[256];
    long long soft = -1;
    FILE *f;

    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (strncmp(line, "Max open files", 14) == 0)
            sscanf(line + 14, "%lld", &soft);
    fclose(f);
    return soft;
}

/* Started with a soft limit below its hard one, musproxy raises it; with a
 * hard limit below what max_connections needs, it says so. */
Test(limits, open_file_limit_raised_or_warned)
{
    mp_config_t c;
    char cfg[MP_PATH_MAX], cmd[2 * MP_PATH_MAX + 128], *err;
    int port;

    mp_config_defaults(&c);
    c.max_connections = "1000";   /* needs 1000 * 4 + 256 descriptors */
    port = c.listen_port;
    cr_assert_eq(mp_config_write(&c, "nofile.yaml", cfg), 0);
    snprintf(cmd, sizeof cmd, "ulimit -Sn 200 && ulimit -Hn 3000 && exec '%s' -c '%s'",
             mp_musproxy_bin(), cfg);
    char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    cr_assert_eq(mp_proc_start(&g_proxy, "musproxy", argv, NULL), 0);
    cr_assert_eq(mp_wait_port(port, 5000), 0, "musproxy did not listen");
    cr_expect_eq(soft_nofile(g_proxy.pid), 3000, "the soft limit was not raised to the hard one");
    err = mp_proc_stderr(&g_proxy);
    cr_expect(strstr(err, "the open-file limit (3000) is below what max_connections 1000 may "
                          "need (4256)") != NULL, "%s", err);
    free(err);
    mp_proc_stop(&g_proxy, SIGTERM, 5000);

    /* with enough room: raised, no warning */
    snprintf(cmd, sizeof cmd, "ulimit -Sn 200 && ulimit -Hn 8000 && exec '%s' -c '%s'",
             mp_musproxy_bin(), cfg);
    cr_assert_eq(mp_proc_start(&g_proxy, "musproxy", argv, NULL), 0);
    cr_assert_eq(mp_wait_port(port, 5000), 0, "musproxy did not listen");
    cr_expect_eq(soft_nofile(g_proxy.pid), 8000);
    err = mp_proc_stderr(&g_proxy);
    cr_expect_null(strstr(err, "is below what max_connections"), "%s", err);
    free(err);
    mp_proc_stop(&g_proxy, SIGTERM, 5000);
}
