/*
 * tests/integration/test_admission.c: live traffic and `musctl trace` run
 * the same admission code, so they must agree. One table of requests is sent
 * through the real musproxy (raw sockets to mp-origin) and asked of the
 * trace over the control socket; for each, the expected verdict is checked
 * on both sides (the trace's verdict, the live status, decision header and
 * log), so a difference in either fails. Among the cases: a regex rule that
 * matches past byte 4,096 of the URL (the policy sees the whole URL, the log
 * a shortened one).
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define LONG_PATH_A 5000   /* 'A's before the blocked marker: past the log's 4,096 */

static mp_proc_t g_origin, g_proxy;
static int g_oport, g_pport;
static char g_sock[MP_PATH_MAX], g_log[MP_PATH_MAX], g_ext[MP_PATH_MAX];

static void suite_init(void)
{
    signal(SIGPIPE, SIG_IGN);
}

static void suite_fini(void)
{
    mp_cleanup();
}

TestSuite(admission, .init = suite_init, .fini = suite_fini, .timeout = 120);

static void start(void)
{
    mp_config_t c;
    char cfg[MP_PATH_MAX], ports[64], extra[4096];

    g_oport = mp_origin_start(&g_origin, "origin", NULL, NULL);
    cr_assert_gt(g_oport, 0);
    mp_config_defaults(&c);
    snprintf(ports, sizeof ports, "[443, %d]", g_oport);
    c.connect_ports = ports;
    g_pport = c.listen_port;
    mp_path(g_sock, "musproxy.sock");
    mp_path(g_log, "access.log");
    mp_path(g_ext, "extended.log");
    cr_assert_eq(mp_config_write(&c, "proxy.yaml", cfg), 0);
    snprintf(extra, sizeof extra,
             "mus:\n  control_socket: %s\n"
             "identity_profiles:\n  - { name: office, location: local }\n"
             "access_policies:\n"
             "  - { name: office, profiles: [office], categories: { deep: block, arts: block },"
             " default: allow }\n"
             "  - { name: default, default: allow }\n"
             "custom_categories:\n"
             "  - { name: arts, domains: [arts.test] }\n"
             "  - { name: deep, regexes: [\"/long/A{%d}X\"] }\n"
             "extended_log: %s\n",
             g_sock, LONG_PATH_A, g_ext);
    cr_assert_eq(mp_append_file(cfg, extra), 0);
    cr_assert_eq(mp_proxy_start(&g_proxy, cfg, g_pport), 0);
}

typedef struct live {
    int status;
    char decision[64];      /* X-Musproxy-Decision */
    bool generated;         /* X-Musproxy-Error or our probe: musproxy answered itself */
    bool probe;
} live_t;

static void send_live(const char *raw, bool connect, live_t *out)
{
    int fd = mp_connect(g_pport);
    static mp_reader_t rd;
    mp_response_t resp;
    char v[64];

    memset(out, 0, sizeof(*out));
    cr_assert_geq(fd, 0);
    cr_assert_eq(mp_send_str(fd, raw), 0);
    mp_reader_init(&rd, fd);
    if (connect) {
        /* a 200 to CONNECT has no body; the tunnel follows */
        cr_assert_eq(mp_read_head(&rd, &resp, 3000), 0);
        resp.body = NULL;
    } else {
        cr_assert_eq(mp_read_response(&rd, &resp, false, 3000), 0, "no response to %.80s", raw);
    }
    out->status = resp.status;
    if (mp_header(resp.head, "X-Musproxy-Decision", v, sizeof v))
        snprintf(out->decision, sizeof out->decision, "%s", v);
    out->generated = mp_header(resp.head, "X-Musproxy-Error", v, sizeof v);
    out->probe = resp.body && strncmp(resp.body, "musproxy probe", 14) == 0;
    if (resp.body)
        mp_response_free(&resp);
    close(fd);
}

static json_t *ask_trace(const char *url, const char *method, const char *via)
{
    char *err = NULL, out_path[MP_PATH_MAX], cmd[12000];
    int n;
    json_t *j;
    json_error_t je;

    mp_path(out_path, "trace.json");
    n = snprintf(cmd, sizeof cmd, "'%s' trace --socket '%s' --json --ip 127.0.0.1 --url '%s'%s%s%s%s%s%s > '%s'",
                 getenv("MUSCTL_BIN"), g_sock, url, method ? " --method '" : "", method ? method : "",
                 method ? "'" : "", via ? " --via '" : "", via ? via : "", via ? "'" : "", out_path);
    cr_assert(n > 0 && (size_t)n < sizeof cmd);
    char *sh[] = { "/bin/sh", "-c", cmd, NULL };
    cr_assert_eq(mp_run(sh, 5000, &err), 0, "musctl trace failed: %s", err ? err : "");
    free(err);
    j = json_load_file(out_path, 0, &je);
    cr_assert_not_null(j, "trace output is not JSON: %s", je.text);
    return j;
}

struct admission_case {
    const char *name;
    const char *raw;        /* %d: the origin's port (used at most twice) */
    const char *url;        /* for the trace; %d: the origin's port */
    const char *method;
    const char *via;
    const char *verdict;    /* expected on both sides */
    int status;             /* expected live status (and the trace's for deny) */
};

static const struct admission_case cases[] = {
    { "allowed GET", "GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\n\r\n",
      "http://127.0.0.1:%d/", NULL, NULL, "proceed", 200 },
    { "allowed CONNECT", "CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n",
      "127.0.0.1:%d", NULL, NULL, "proceed", 200 },
    { "CONNECT to a port not allowed", "CONNECT 127.0.0.1:25 HTTP/1.1\r\nHost: x\r\n\r\n",
      "127.0.0.1:25", NULL, NULL, "deny", 403 },
    { "Via loop", "GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: x\r\nVia: 1.1 musproxy\r\n\r\n",
      "http://127.0.0.1:%d/", NULL, "1.1 musproxy", "deny", 403 },
    { "probe", "GET http://mus.cisco.com/ HTTP/1.1\r\nHost: mus.cisco.com\r\n\r\n",
      "http://mus.cisco.com/", NULL, NULL, "probe", 200 },
    { "probe by CONNECT", "CONNECT mus.cisco.com:443 HTTP/1.1\r\nHost: x\r\n\r\n",
      "mus.cisco.com:443", NULL, NULL, "deny", 403 },
    { "category by domain", "GET http://arts.test/ HTTP/1.1\r\nHost: arts.test\r\n\r\n",
      "http://arts.test/", NULL, NULL, "block", 403 },
    { "denied destination", "GET http://169.254.169.254/ HTTP/1.1\r\nHost: x\r\n\r\n",
      "http://169.254.169.254/", NULL, NULL, "deny", 403 },
    { "POST allowed", "POST http://127.0.0.1:%d/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
      "http://127.0.0.1:%d/echo", "POST", NULL, "proceed", 200 },
};

static void check_case(const char *name, const char *raw, const char *url, const char *method,
                       const char *via, const char *verdict, int status, bool connect)
{
    live_t l;
    json_t *t;
    const char *tv;

    send_live(raw, connect, &l);
    t = ask_trace(url, method, via);
    tv = json_string_value(json_object_get(t, "verdict"));
    cr_assert_not_null(tv, "%s: trace has no verdict", name);
    cr_expect_str_eq(tv, verdict, "%s: trace says %s", name, tv);
    if (status != 0)   /* 0: whatever the origin answers (it is not ours) */
        cr_expect_eq(l.status, status, "%s: live status %d", name, l.status);
    if (strcmp(verdict, "proceed") == 0) {
        cr_expect(!l.generated && !l.probe, "%s: live answer generated by the proxy", name);
    } else if (strcmp(verdict, "deny") == 0) {
        cr_expect(l.generated, "%s: live answer not an error page", name);
        cr_expect_eq(json_integer_value(json_object_get(t, "status")), l.status,
                     "%s: trace status differs from live %d", name, l.status);
    } else if (strcmp(verdict, "block") == 0) {
        cr_expect_str_eq(json_string_value(json_object_get(t, "decision")), l.decision,
                         "%s: decisions differ (live %s)", name, l.decision);
    } else if (strcmp(verdict, "probe") == 0) {
        cr_expect(l.probe, "%s: no probe answer", name);
    }
    json_decref(t);
}

Test(admission, live_and_trace_agree)
{
    start();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct admission_case *c = &cases[i];
        char raw[1024], url[512];

        snprintf(raw, sizeof raw, c->raw, g_oport, g_oport);
        snprintf(url, sizeof url, c->url, g_oport);
        check_case(c->name, raw, url, c->method, c->via, c->verdict, c->status,
                   strncmp(raw, "CONNECT", 7) == 0);
    }
}

/* The policy sees the whole URL: a regex that matches past byte 4,096 blocks
 * the request; the same URL without the marker is forwarded. */
Test(admission, policy_sees_url_past_4096)
{
    size_t cap = LONG_PATH_A + 256;
    char *path = malloc(cap), *raw = malloc(cap + 256), *url = malloc(cap + 64);
    char *log;

    start();
    for (int marked = 1; marked >= 0; marked--) {
        int n = snprintf(path, cap, "/long/");
        memset(path + n, 'A', LONG_PATH_A);
        snprintf(path + n + LONG_PATH_A, cap - (size_t)n - LONG_PATH_A, "%s", marked ? "X" : "Y");
        snprintf(raw, cap + 256, "GET http://127.0.0.1:%d%s HTTP/1.1\r\nHost: x\r\n\r\n", g_oport, path);
        snprintf(url, cap + 64, "http://127.0.0.1:%d%s", g_oport, path);
        check_case(marked ? "regex past 4096" : "no marker", raw, url, NULL, NULL,
                   marked ? "block" : "proceed", marked ? 403 : 0, false);
    }
    mp_sleep_ms(300);
    log = mp_read_file(g_log, NULL);
    cr_assert_not_null(log);
    cr_expect(strstr(log, "TCP_DENIED/403") != NULL, "no blocked line in\n%.300s", log);
    free(log);
    free(path);
    free(raw);
    free(url);
}
