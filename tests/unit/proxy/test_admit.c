/*
 * tests/unit/proxy/test_admit.c: the admission step (proxy/admit.c) over a
 * table of requests against one configuration and its compiled policy:
 * every check in its order (host, clients, probe, PAC, form, scheme, Via
 * loop, CONNECT ports, denied and own destinations, bypass), the policy's
 * verdicts (proceed, block, authenticate, and no 407 for intercepted
 * traffic), the route (resolve or the original destination),
 * the location (vpn_pools), a pattern matched past byte 4,096 of the URL,
 * and the URL the log and the policy see. The end-to-end comparison with
 * musctl trace is tests/integration/test_admission.c.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../policy/config.h"
#include "../../../policy/policy.h"
#include "../../../proxy/admit.h"

static const char YAML[] =
    "proxy:\n"
    "  listen:\n"
    "    - { address: \"127.0.0.1:3128\", mode: explicit }\n"
    "    - { address: \"127.0.0.1:3129\", mode: transparent }\n"
    "  clients: [127.0.0.0/8, 10.8.0.0/16]\n"
    "  connect_ports: [443]\n"
    "  transparent:\n"
    "    bypass: [bank.test, 192.0.2.0/24]\n"
    "mus:\n"
    "  remote_users: ip_ranges\n"
    "  vpn_pools: [10.8.0.0/16]\n"
    "identity_profiles:\n"
    "  - { name: remote-users, location: remote, auth: basic }\n"
    "  - { name: office, location: local }\n"
    "access_policies:\n"
    "  - { name: remote, profiles: [remote-users], categories: { games: block } }\n"
    "  - { name: office, profiles: [office], categories: { games: block, deep: block } }\n"
    "  - { name: default, default: allow }\n"
    "custom_categories:\n"
    "  - { name: games, domains: [games.test] }\n"
    "  - { name: deep, regexes: [\"secret-beyond-4k\"] }\n"
    "authentication:\n"
    "  password_file: %s\n";

static config_t *g_cfg;
static policy_t *g_policy;
static char g_pw[] = "/tmp/test-admit-pw.XXXXXX";

static void
setup(void)
{
    char err[CONFIG_ERR_LEN], perr[POLICY_ERR_LEN], yaml[sizeof(YAML) + sizeof(g_pw)];
    int fd = mkstemp(g_pw);   /* an empty password file: nobody has credentials */

    cr_assert_geq(fd, 0);
    close(fd);
    snprintf(yaml, sizeof(yaml), YAML, g_pw);
    g_cfg = config_load_buffer("admit.yaml", yaml, strlen(yaml), err, sizeof(err));
    cr_assert_not_null(g_cfg, "%s", err);
    g_policy = policy_build(g_cfg, NULL, NULL, perr, sizeof(perr));
    cr_assert_not_null(g_policy, "%s", perr);
}

static void
teardown(void)
{
    policy_free(g_policy);
    config_free(g_cfg);
    unlink(g_pw);
}

TestSuite(admit, .init = setup, .fini = teardown);

static struct sockaddr_in
v4(const char *a, uint16_t port)
{
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};
    cr_assert_eq(inet_pton(AF_INET, a, &s.sin_addr), 1);
    return s;
}

typedef struct row {
    const char *what;
    const char *method;
    enum admit_form form;
    const char *host;
    uint16_t port;
    const char *path;
    enum config_listen_mode mode;
    const char *client;
    const char *orig_dst;           /* "a.b.c.d:port" or NULL */
    bool via_loop;
    /* expected */
    enum admit_verdict verdict;
    enum admit_check failed;
    int status;
    enum admit_route route;
    bool remote;
} row_t;

#define EXPL CONFIG_MODE_EXPLICIT
#define TRAN CONFIG_MODE_TRANSPARENT

static const row_t rows[] = {
    {"allowed GET", "GET", ADMIT_FORM_ABSOLUTE, "example.test", 80, "/", EXPL, "127.0.0.1", NULL,
     false, ADMIT_PROCEED, ADMIT_CHECK_NONE, 0, ADMIT_ROUTE_RESOLVE, false},
    {"no host", "GET", ADMIT_FORM_ABSOLUTE, "", 80, "/", EXPL, "127.0.0.1", NULL, false,
     ADMIT_DENY, ADMIT_CHECK_HOST, 400, ADMIT_ROUTE_RESOLVE, false},
    {"client not allowed", "GET", ADMIT_FORM_ABSOLUTE, "example.test", 80, "/", EXPL,
     "192.168.7.7", NULL, false, ADMIT_DENY, ADMIT_CHECK_CLIENTS, 403, ADMIT_ROUTE_RESOLVE, false},
    {"the probe", "GET", ADMIT_FORM_ABSOLUTE, "mus.cisco.com", 80, "/", EXPL, "10.8.0.5", NULL,
     false, ADMIT_PROBE, ADMIT_CHECK_NONE, 0, ADMIT_ROUTE_RESOLVE, true},
    {"a tunnel to the probe host", "CONNECT", ADMIT_FORM_AUTHORITY, "mus.cisco.com", 443, "",
     EXPL, "127.0.0.1", NULL, false, ADMIT_DENY, ADMIT_CHECK_PROBE_TUNNEL, 403,
     ADMIT_ROUTE_RESOLVE, false},
    {"the PAC file", "GET", ADMIT_FORM_ORIGIN, "127.0.0.1", 3128, "/proxy.pac?x=1", EXPL,
     "127.0.0.1", NULL, false, ADMIT_PAC, ADMIT_CHECK_NONE, 0, ADMIT_ROUTE_RESOLVE, false},
    {"origin form to the explicit port", "GET", ADMIT_FORM_ORIGIN, "example.test", 80, "/x",
     EXPL, "127.0.0.1", NULL, false, ADMIT_DENY, ADMIT_CHECK_FORM, 400, ADMIT_ROUTE_RESOLVE,
     false},
    {"OPTIONS *", "OPTIONS", ADMIT_FORM_ASTERISK, "example.test", 80, "*", EXPL, "127.0.0.1",
     NULL, false, ADMIT_DENY, ADMIT_CHECK_FORM, 400, ADMIT_ROUTE_RESOLVE, false},
    {"Via names us", "GET", ADMIT_FORM_ABSOLUTE, "example.test", 80, "/", EXPL, "127.0.0.1", NULL,
     true, ADMIT_DENY, ADMIT_CHECK_VIA_LOOP, 403, ADMIT_ROUTE_RESOLVE, false},
    {"CONNECT to port 25", "CONNECT", ADMIT_FORM_AUTHORITY, "mail.test", 25, "", EXPL,
     "127.0.0.1", NULL, false, ADMIT_DENY, ADMIT_CHECK_CONNECT_PORT, 403, ADMIT_ROUTE_RESOLVE,
     false},
    {"CONNECT to 443", "CONNECT", ADMIT_FORM_AUTHORITY, "example.test", 443, "", EXPL,
     "127.0.0.1", NULL, false, ADMIT_PROCEED, ADMIT_CHECK_NONE, 0, ADMIT_ROUTE_RESOLVE, false},
    {"metadata address", "GET", ADMIT_FORM_ABSOLUTE, "169.254.169.254", 80, "/latest", EXPL,
     "127.0.0.1", NULL, false, ADMIT_DENY, ADMIT_CHECK_DESTINATION, 403, ADMIT_ROUTE_RESOLVE,
     false},
    {"ourselves", "GET", ADMIT_FORM_ABSOLUTE, "127.0.0.1", 3128, "/", EXPL, "127.0.0.1", NULL,
     false, ADMIT_DENY, ADMIT_CHECK_DESTINATION, 403, ADMIT_ROUTE_RESOLVE, false},
    {"local user, blocked category", "GET", ADMIT_FORM_ABSOLUTE, "www.games.test", 80, "/",
     EXPL, "127.0.0.1", NULL, false, ADMIT_BLOCK, ADMIT_CHECK_NONE, 0, ADMIT_ROUTE_RESOLVE,
     false},
    {"remote user without credentials", "GET", ADMIT_FORM_ABSOLUTE, "example.test", 80, "/",
     EXPL, "10.8.0.5", NULL, false, ADMIT_AUTHENTICATE, ADMIT_CHECK_NONE, 0,
     ADMIT_ROUTE_RESOLVE, true},
    {"intercepted: the original destination", "GET", ADMIT_FORM_ORIGIN, "example.test", 80,
     "/x", TRAN, "127.0.0.1", "198.51.100.7:80", false, ADMIT_PROCEED, ADMIT_CHECK_NONE, 0,
     ADMIT_ROUTE_ORIGINAL_DST, false},
    /* a profile with auth: basic never matches intercepted traffic (no 407 there) */
    {"intercepted remote user: no 407", "GET", ADMIT_FORM_ORIGIN, "example.test", 80,
     "/", TRAN, "10.8.0.5", "198.51.100.7:80", false, ADMIT_PROCEED, ADMIT_CHECK_NONE, 0,
     ADMIT_ROUTE_ORIGINAL_DST, true},
    {"intercepted, bypassed by name", "TLS", ADMIT_FORM_TLS, "www.bank.test", 443, "", TRAN,
     "127.0.0.1", "198.51.100.7:443", false, ADMIT_BYPASS, ADMIT_CHECK_NONE, 0,
     ADMIT_ROUTE_ORIGINAL_DST, false},
    {"intercepted, bypassed by address", "GET", ADMIT_FORM_ORIGIN, "any.test", 80, "/", TRAN,
     "127.0.0.1", "192.0.2.9:80", false, ADMIT_BYPASS, ADMIT_CHECK_NONE, 0,
     ADMIT_ROUTE_ORIGINAL_DST, false},
    {"intercepted TLS, blocked SNI", "TLS", ADMIT_FORM_TLS, "games.test", 443, "", TRAN,
     "127.0.0.1", "198.51.100.7:443", false, ADMIT_BLOCK, ADMIT_CHECK_NONE, 0,
     ADMIT_ROUTE_ORIGINAL_DST, false},
    {"intercepted, to our own listener", "GET", ADMIT_FORM_ORIGIN, "example.test", 80, "/", TRAN,
     "127.0.0.1", "127.0.0.1:3129", false, ADMIT_DENY, ADMIT_CHECK_DESTINATION, 403,
     ADMIT_ROUTE_RESOLVE, false},
};

static void
run(const row_t *r, const char *path, admit_result_t *res, access_result_t *acc)
{
    struct sockaddr_in client = v4(r->client, 40000), dst;
    admit_request_t rq = {
        .method = r->method,
        .form = r->form,
        .scheme = "http",
        .scheme_len = 4,
        .host = r->host,
        .host_len = strlen(r->host),
        .port = r->port,
        .path = path,
        .path_len = strlen(path),
        .via_loop = r->via_loop,
        .mode = r->mode,
        .client = (const struct sockaddr *)&client,
        .local_port = r->mode == EXPL ? 3128 : 3129,
        .now = 1795346083,
    };

    if (r->orig_dst != NULL) {
        char a[32];
        unsigned port;
        cr_assert_eq(sscanf(r->orig_dst, "%31[0-9.]:%u", a, &port), 2);
        dst = v4(a, (uint16_t)port);
        rq.orig_dst = (const struct sockaddr *)&dst;
    }
    admit_decide(g_cfg, g_policy, NULL, &rq, res, acc);
}

Test(admit, table)
{
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const row_t *r = &rows[i];
        admit_result_t res;
        access_result_t acc;

        run(r, r->path, &res, &acc);
        cr_expect_eq(res.verdict, r->verdict, "%s: verdict %s, want %s", r->what,
                     admit_verdict_str(res.verdict), admit_verdict_str(r->verdict));
        cr_expect_eq(res.failed, r->failed, "%s: check %s, want %s", r->what,
                     admit_check_str(res.failed), admit_check_str(r->failed));
        if (r->verdict == ADMIT_DENY)
            cr_expect_eq(res.status, r->status, "%s: status %d", r->what, res.status);
        cr_expect_eq(res.route, r->route, "%s: route %d", r->what, res.route);
        cr_expect_eq(res.remote, r->remote, "%s: remote %d", r->what, res.remote);
        cr_expect_eq(res.decided, r->verdict == ADMIT_PROCEED || r->verdict == ADMIT_BLOCK ||
                                      r->verdict == ADMIT_AUTHENTICATE,
                     "%s: decided %d", r->what, res.decided);
    }
}

/* The policy sees the whole request target: a pattern past byte 4,096. */
Test(admit, pattern_past_4k_is_evaluated)
{
    const row_t r = {"long URL", "GET", ADMIT_FORM_ABSOLUTE, "example.test", 80, NULL, EXPL,
                     "127.0.0.1", NULL, false, 0, 0, 0, 0, false};
    size_t n = 6000;
    char *path = malloc(n + 32);
    admit_result_t res;
    access_result_t acc;

    cr_assert_not_null(path);
    path[0] = '/';
    memset(path + 1, 'a', n);
    strcpy(path + 1 + n, "/secret-beyond-4k");
    run(&r, path, &res, &acc);
    cr_expect_eq(res.verdict, ADMIT_BLOCK, "verdict %s", admit_verdict_str(res.verdict));
    cr_expect_str_eq(acc.d.category ? acc.d.category : "", "deep");
    path[1 + n + 1] = 'S';   /* "Secret-beyond-4k": the regex no longer matches */
    run(&r, path, &res, &acc);
    cr_expect_eq(res.verdict, ADMIT_PROCEED, "verdict %s", admit_verdict_str(res.verdict));
    free(path);
}

Test(admit, url_as_logged)
{
    char out[128];
    admit_request_t rq = {.form = ADMIT_FORM_ABSOLUTE, .host = "example.test", .host_len = 12,
                          .port = 8080, .path = "/a?b", .path_len = 4};

    cr_expect_eq(admit_url(&rq, out, sizeof(out)), strlen("http://example.test:8080/a?b"));
    cr_expect_str_eq(out, "http://example.test:8080/a?b");
    rq.port = 80;
    admit_url(&rq, out, sizeof(out));
    cr_expect_str_eq(out, "http://example.test/a?b");
    rq = (admit_request_t){.form = ADMIT_FORM_AUTHORITY, .host = "2001:db8::1", .host_len = 11,
                           .port = 443, .path = "", .path_len = 0};
    admit_url(&rq, out, sizeof(out));
    cr_expect_str_eq(out, "[2001:db8::1]:443");
    /* cut to the buffer, the full length returned */
    cr_expect_eq(admit_url(&rq, out, 6), strlen("[2001:db8::1]:443"));
    cr_expect_str_eq(out, "[2001");
}
