/*
 * tests/integration/test_radius_proxy.c: musproxy's own RADIUS accounting
 * listener (the radius section, a single-box site without mus-headend),
 * with the real binaries over real sockets: freeradius-utils' radclient
 * sends Accounting-Requests to musproxy on 127.0.0.1 and [::1] (and, where
 * the exact same bytes must go twice, a UDP socket in the test), and after
 * each event the test reads the map (`musctl map --json`), the counters
 * (`musctl status --json`) and what a request through the proxy gets from
 * the client address the event mapped: the remote policy and the user name
 * in the access log. Start, Interim-Update, Stop, Accounting-On, a wrong
 * secret, an unknown client, a retransmission, a late Stop of an old
 * session, IPv6, the stale sweep, the listener stopped by a reload; and
 * the counters after a known mix of packets (a wrong secret, a malformed
 * datagram, a retransmission, an unknown client, Start and Stop), exactly,
 * in `musctl status` and in /metrics (a mode: metrics listener).
 *
 * The Accounting-Response comes only after the event is in the map, so the
 * map is read at once after radclient returns, never polled. Counters are
 * published after each batch and once a second: those are polled. Clients
 * use distinct loopback source addresses (127.0.0.N, a bound socket).
 * Skipped when radclient is not installed (tools/setup.sh installs it).
 * Environment: MUSPROXY_BIN, ORIGIN_BIN, MUSCTL_BIN (tests/meson.build).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "../../mus/radius.h"
#include "harness.h"

#define SECRET "lab-radius-secret"
#define ALICE "127.0.0.2"
#define OFFICE "127.0.0.3"
#define SHARED "127.0.0.5"     /* two sessions in turn */
#define HEADEND "radius-lab"

static mp_proc_t g_origin, g_proxy;
static int g_oport, g_pport, g_rport, g_mport;
static char g_cfg[MP_PATH_MAX], g_sock[MP_PATH_MAX], g_log[MP_PATH_MAX], g_clients[MP_PATH_MAX];

static void suite_init(void)
{
    signal(SIGPIPE, SIG_IGN);
}

static void suite_fini(void)
{
    mp_cleanup();
}

/* A UDP port free on both 127.0.0.1 and ::1 (bound, then released). */
static int udp_port_both(void)
{
    for (int tries = 0; tries < 50; tries++) {
        int v4 = socket(AF_INET, SOCK_DGRAM, 0), v6 = socket(AF_INET6, SOCK_DGRAM, 0), port;
        struct sockaddr_in a = {.sin_family = AF_INET};
        struct sockaddr_in6 b = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        socklen_t al = sizeof(a);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert_eq(bind(v4, (struct sockaddr *)&a, sizeof(a)), 0);
        cr_assert_eq(getsockname(v4, (struct sockaddr *)&a, &al), 0);
        port = ntohs(a.sin_port);
        b.sin6_port = a.sin_port;
        int ok = bind(v6, (struct sockaddr *)&b, sizeof(b)) == 0;
        close(v4);
        close(v6);
        if (ok)
            return port;
    }
    cr_assert_fail("no UDP port free on both loopbacks");
    return -1;
}

/* The configuration with extra radius keys and mus.grace. */
static void write_config(const char *listen, const char *radius_extra, const char *grace)
{
    char text[8192];
    int n = snprintf(text, sizeof(text),
        "store: { path: off }\n"
        "admin: { enabled: false }\n"
        "proxy:\n"
        "  listen: [ \"127.0.0.1:%d\", { address: \"127.0.0.1:%d\", mode: metrics } ]\n"
        "  workers: 2\n"
        "  clients: [127.0.0.0/8]\n"
        "  timeouts: { header: 2s, idle: 10s, connect: 2s, response: 5s }\n"
        "  access_log: %s\n"
        "mus:\n"
        "  grace: %s\n"
        "  control_socket: %s\n"
        "radius:\n"
        "  listen: %s\n"
        "  clients_file: %s\n"
        "  name: " HEADEND "\n"
        "%s"
        "identity_profiles:\n"
        "  - { name: remote-users, location: remote, types: [user] }\n"
        "  - { name: office, location: local }\n"
        "access_policies:\n"
        "  - { name: remote, profiles: [remote-users], categories: { arts: allow }, default: allow }\n"
        "  - { name: office, profiles: [office], categories: { arts: block }, default: allow }\n"
        "  - { name: default, default: allow }\n"
        "custom_categories:\n"
        "  - { name: arts, url_prefixes: [\"http://127.0.0.1:%d/size/7\"] }\n"
        "log_level: debug\n",
        g_pport, g_mport, g_log, grace, g_sock, listen, g_clients, radius_extra, g_oport);
    cr_assert(n > 0 && (size_t)n < sizeof(text));
    cr_assert_eq(mp_write_file(g_cfg, text), 0);
}

static char g_listen[128];

/* origin + musproxy with the radius listener on 127.0.0.1 and [::1]. */
static void start(const char *radius_extra, const char *grace)
{
    if (system("command -v radclient >/dev/null 2>&1") != 0)
        cr_skip_test("radclient not installed (apt-get install freeradius-utils)");
    mp_path(g_cfg, "musproxy.yaml");
    mp_path(g_sock, "musproxy.sock");
    mp_path(g_log, "access.log");
    mp_path(g_clients, "radius-clients");
    cr_assert_eq(mp_write_file(g_clients, "# the NAS on this host, both families\n"
                               "127.0.0.1 " SECRET "\n::1/128 " SECRET "\n"), 0);
    cr_assert_eq(chmod(g_clients, 0600), 0);
    g_oport = mp_origin_start(&g_origin, "origin", NULL, NULL);
    cr_assert_gt(g_oport, 0);
    g_pport = mp_free_port();
    g_mport = mp_free_port();
    g_rport = udp_port_both();
    snprintf(g_listen, sizeof(g_listen), "[\"127.0.0.1:%d\", \"[::1]:%d\"]", g_rport, g_rport);
    write_config(g_listen, radius_extra ? radius_extra : "", grace ? grace : "30s");
    cr_assert_eq(mp_proxy_start(&g_proxy, g_cfg, g_pport), 0);
}

/* ---- RADIUS ---- */

/* radclient with "Attr = value" lines to server (127.0.0.1 by default):
 * true if an Accounting-Response came (one try, 1 s). */
static bool acct_to(const char *server, const char *secret, const char *fmt, ...)
{
    char attrs[2048], cmd[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(attrs, sizeof(attrs), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "radclient -r 1 -t 1 '%s:%d' acct '%s' >/dev/null 2>&1",
             server ? server : "127.0.0.1", g_rport, secret);
    FILE *in = popen(cmd, "w");
    cr_assert_not_null(in);
    fputs(attrs, in);
    int st = pclose(in);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* An Accounting-Request of that status for (NAS, session) from user on ip4. */
#define ACCT(status, nas, sid, user, ip4, extra)                                   \
    acct_to(NULL, SECRET, "Acct-Status-Type = " status "\nNAS-IP-Address = %s\n"    \
            "Acct-Session-Id = \"%s\"\nUser-Name = \"%s\"\nFramed-IP-Address = %s\n%s", \
            nas, sid, user, ip4, extra)

/* A Start built here (its exact bytes can go twice): n octets in b->buf. */
static size_t build_start(radius_builder_t *b, uint8_t id, const char *user,
                          const char ip4[4], const char *sid)
{
    radius_build_begin(b, RADIUS_CODE_ACCT_REQUEST, id);
    radius_build_u32(b, RADIUS_A_ACCT_STATUS_TYPE, RADIUS_ST_START);
    radius_build_str(b, RADIUS_A_USER_NAME, user);
    radius_build_attr(b, RADIUS_A_FRAMED_IP_ADDRESS, ip4, 4);
    radius_build_str(b, RADIUS_A_ACCT_SESSION_ID, sid);
    radius_build_attr(b, RADIUS_A_NAS_IP_ADDRESS, "\xc0\x00\x02\x01", 4);   /* 192.0.2.1 */
    int n = radius_build_finish(b, (const uint8_t *)SECRET, strlen(SECRET));
    cr_assert_gt(n, 0);
    return (size_t)n;
}

/* The exact bytes of a packet from src (127.0.0.x); true if a valid answer
 * came within 1 s. */
static bool send_exact(const char *src, const uint8_t *pkt, size_t n)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in from = {.sin_family = AF_INET};
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_rport)};
    struct timeval tv = {1, 0};
    uint8_t resp[64];
    inet_pton(AF_INET, src, &from.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0, "bind %s", src);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(sendto(fd, pkt, n, 0, (struct sockaddr *)&to, sizeof(to)), (ssize_t)n);
    ssize_t got = recv(fd, resp, sizeof(resp), 0);
    close(fd);
    return got == RADIUS_HDR_LEN && resp[1] == pkt[1] &&
           radius_verify_response(resp, (size_t)got, pkt + 4, (const uint8_t *)SECRET,
                                  strlen(SECRET));
}

/* ---- musctl ---- */

/* `musctl ARGS --socket S --json`, parsed (the test fails if it cannot). */
static json_t *musctl_json(const char *args)
{
    char cmd[MP_PATH_MAX * 2];
    json_error_t jerr;
    const char *bin = getenv("MUSCTL_BIN");
    cr_assert_not_null(bin, "MUSCTL_BIN is not set (run through meson test)");
    snprintf(cmd, sizeof(cmd), "%s %s --socket %s --json", bin, args, g_sock);
    FILE *out = popen(cmd, "r");
    cr_assert_not_null(out);
    json_t *j = json_loadf(out, 0, &jerr);
    cr_assert_eq(pclose(out), 0, "%s failed", cmd);
    cr_assert_not_null(j, "%s: %s", cmd, jerr.text);
    return j;
}

/* The map entry of ip (a new reference), or NULL. */
static json_t *map_entry(const char *ip)
{
    json_t *m = musctl_json("map"), *e, *found = NULL;
    size_t i;
    json_array_foreach(json_object_get(m, "entries"), i, e)
        if (strcmp(json_string_value(json_object_get(e, "ip")), ip) == 0)
            found = json_incref(e);
    json_decref(m);
    return found;
}

static const char *sval(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "(none)";
}

/* A counter of status.radius: path "received" or "dropped.wrong_secret". */
static long long radius_counter(const char *path)
{
    json_t *st = musctl_json("status"), *o = json_object_get(st, "radius");
    char key[64];
    const char *dot = strchr(path, '.');
    if (dot) {
        snprintf(key, sizeof(key), "%.*s", (int)(dot - path), path);
        o = json_object_get(o, key);
        path = dot + 1;
    }
    long long v = json_is_integer(json_object_get(o, path))
                  ? (long long)json_integer_value(json_object_get(o, path)) : -1;
    json_decref(st);
    return v;
}

/* Polls a counter until it is want (3 s); the last value. */
static long long counter_reaches(const char *path, long long want)
{
    long long v = -1;
    for (int i = 0; i < 30 && (v = radius_counter(path)) != want; i++)
        mp_sleep_ms(100);
    return v;
}

/* The value of one sample (name with its labels, exactly as exposed) in
 * a scrape of the metrics listener; -1 if absent. */
static long long metric(const char *sample)
{
    int fd = mp_connect(g_mport);
    mp_response_t resp;
    mp_reader_t *rd = malloc(sizeof(*rd));
    long long v = -1;
    cr_assert_geq(fd, 0);
    cr_assert_not_null(rd);
    cr_assert_eq(mp_send_str(fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Connection: close\r\n\r\n"), 0);
    mp_reader_init(rd, fd);
    cr_assert_eq(mp_read_response(rd, &resp, false, 5000), 0, "no answer from /metrics");
    cr_assert_eq(resp.status, 200);
    size_t sl = strlen(sample);
    for (const char *p = resp.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, sample, sl) == 0 && p[sl] == ' ')
            v = strtoll(p + sl + 1, NULL, 10);
    mp_response_free(&resp);
    free(rd);
    close(fd);
    return v;
}

/* ---- HTTP through the proxy from a chosen loopback address ---- */

/* GET url through musproxy from src; the status (the body is dropped). */
static int get_from(const char *src, const char *url)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    char req[512];
    mp_response_t resp;
    mp_reader_t *rd = malloc(sizeof(*rd));
    cr_assert_not_null(rd);
    inet_pton(AF_INET, src, &a.sin_addr);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s", src);
    a.sin_port = htons((uint16_t)g_pport);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n",
             url, g_oport);
    cr_assert_eq(mp_send_str(fd, req), 0);
    mp_reader_init(rd, fd);
    cr_assert_eq(mp_read_response(rd, &resp, false, 5000), 0, "no response to %s from %s", url, src);
    int status = resp.status;
    mp_response_free(&resp);
    free(rd);
    close(fd);
    return status;
}

static const char *arts_url(void)
{
    static char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/size/7", g_oport);
    return url;
}

/* The access log's lines from src: how many, and the last (malloc'd) if
 * last is not NULL. */
static size_t log_lines_from(const char *src, char **last)
{
    char needle[64], *all = mp_read_file(g_log, NULL);
    size_t n = 0;
    snprintf(needle, sizeof(needle), " %s TCP_", src);
    for (char *p = all ? strstr(all, needle) : NULL; p; p = strstr(p + 1, needle)) {
        char *s = p, *e = strchr(p, '\n');
        while (s > all && s[-1] != '\n')
            s--;
        n++;
        if (last) {
            free(*last);
            *last = strndup(s, e ? (size_t)(e - s) : strlen(s));
        }
    }
    free(all);
    return n;
}

/* A request from src: its status, and the user in its own log line. */
static void expect_request(const char *src, int status, const char *user)
{
    char want[128], *line = NULL;
    size_t before = log_lines_from(src, NULL);
    int got = get_from(src, arts_url());
    cr_expect_eq(got, status, "from %s: %d, wanted %d", src, got, status);
    for (int i = 0; i < 100 && log_lines_from(src, &line) == before; i++)
        mp_sleep_ms(30);
    cr_assert_not_null(line, "no access-log line from %s", src);
    snprintf(want, sizeof(want), " %s HIER_", user);
    cr_expect(strstr(line, want) != NULL, "from %s, wanted user %s: %s", src, user, line);
    free(line);
}

TestSuite(radius_proxy, .init = suite_init, .fini = suite_fini, .timeout = 120);

Test(radius_proxy, start_interim_stop_drive_map_and_policy)
{
    start(NULL, NULL);
    /* before: the address is local (arts blocked in the office) */
    expect_request(ALICE, 403, "-");

    cr_assert(ACCT("Start", "192.0.2.1", "s1", "CORP\\\\alice", ALICE,
                   "Class = \"OU=eng;\"\nCalling-Station-Id = \"198.51.100.7\"\n"),
              "no Accounting-Response to the Start");
    json_t *e = map_entry(ALICE);   /* answered: already in the map */
    cr_assert_not_null(e, "the Start was answered before it was in the map");
    cr_expect_str_eq(sval(e, "name"), "alice");
    cr_expect_str_eq(sval(e, "domain"), "CORP");
    cr_expect_str_eq(sval(e, "type"), "user");
    cr_expect_str_eq(sval(e, "groups"), "eng");
    cr_expect_str_eq(sval(e, "headend"), HEADEND);
    cr_expect_str_eq(sval(e, "sid"), "192.0.2.1/s1");
    cr_expect_str_eq(sval(e, "client_ip"), "198.51.100.7");
    cr_expect(json_is_false(json_object_get(e, "stale")));
    json_decref(e);
    expect_request(ALICE, 200, "alice");      /* the remote policy allows arts */
    expect_request(OFFICE, 403, "-");         /* still local */

    cr_assert(ACCT("Interim-Update", "192.0.2.1", "s1", "CORP\\\\alice", ALICE,
                   "Class = \"OU=sales;\"\nCalling-Station-Id = \"198.51.100.7\"\n"));
    e = map_entry(ALICE);
    cr_assert_not_null(e);
    cr_expect_str_eq(sval(e, "groups"), "sales", "the Interim-Update's groups");
    json_decref(e);
    expect_request(ALICE, 200, "alice");

    cr_assert(ACCT("Stop", "192.0.2.1", "s1", "CORP\\\\alice", ALICE, "Acct-Session-Time = 60\n"));
    e = map_entry(ALICE);
    cr_expect_null(e, "the Stop was answered before the entry left the map");
    json_decref(e);
    expect_request(ALICE, 403, "-");

    cr_expect_eq(counter_reaches("status_types.stop", 1), 1);
    cr_expect_eq(radius_counter("received"), 3);
    cr_expect_eq(radius_counter("responses"), 3);
    cr_expect_eq(radius_counter("status_types.start"), 1);
    cr_expect_eq(radius_counter("status_types.interim"), 1);
    cr_expect_eq(radius_counter("applied"), 3, "add, upd, del");
    cr_expect_eq(radius_counter("entries"), 0);

    /* the text form and the service row */
    char *cmd;
    cr_assert(asprintf(&cmd, "%s status --socket %s", getenv("MUSCTL_BIN"), g_sock) > 0);
    FILE *p = popen(cmd, "r");
    char text[8192] = "";
    size_t n = fread(text, 1, sizeof(text) - 1, p);
    text[n] = '\0';
    pclose(p);
    free(cmd);
    cr_expect(strstr(text, "RADIUS " HEADEND ": listening on 127.0.0.1:") != NULL, "%s", text);
    cr_expect(strstr(text, "received: 3   answered: 3   applied: 3 map changes") != NULL, "%s", text);
    cr_expect(strstr(text, "dropped:  0 wrong secret") != NULL, "%s", text);
    cr_expect(strstr(text, "No headends configured") == NULL, "%s", text);
    json_t *st = musctl_json("status"), *row;
    size_t i;
    const char *state = NULL;
    json_array_foreach(json_object_get(st, "services"), i, row)
        if (strcmp(sval(row, "name"), "radius") == 0)
            state = sval(row, "state");
    cr_expect_str_eq(state ? state : "(no row)", "running");
    json_decref(st);
}

Test(radius_proxy, wrong_secret_and_unknown_client_are_dropped_and_counted)
{
    start(NULL, NULL);
    cr_expect(!acct_to(NULL, "not-the-secret", "Acct-Status-Type = Start\nUser-Name = \"mallory\"\n"
                       "Framed-IP-Address = " ALICE "\nAcct-Session-Id = \"evil\"\n"),
              "a wrong secret must get no answer");
    cr_expect_eq(counter_reaches("dropped.wrong_secret", 1), 1);
    json_t *e = map_entry(ALICE);
    cr_expect_null(e, "a request with a wrong secret was mapped");
    json_decref(e);
    expect_request(ALICE, 403, "-");

    /* from 127.0.0.9: not in the clients file (right secret or not) */
    radius_builder_t b;
    size_t n = build_start(&b, 9, "stranger", "\x7f\x00\x00\x02", "x");
    cr_expect(!send_exact("127.0.0.9", b.buf, n), "an unknown client was answered");
    cr_expect_eq(counter_reaches("dropped.unknown_client", 1), 1);
    e = map_entry(ALICE);
    cr_expect_null(e, "an unknown client's request was mapped");
    json_decref(e);

    /* the right secret still works, and nothing else was applied */
    cr_assert(ACCT("Start", "192.0.2.1", "good", "alice", ALICE, ""));
    e = map_entry(ALICE);
    cr_assert_not_null(e);
    cr_expect_str_eq(sval(e, "name"), "alice");
    json_decref(e);
    cr_expect_eq(counter_reaches("responses", 1), 1);
    cr_expect_eq(radius_counter("received"), 3);
    cr_expect_eq(radius_counter("applied"), 1);
    cr_expect_eq(radius_counter("dropped.wrong_secret"), 1);
}

Test(radius_proxy, retransmission_is_answered_and_applied_once)
{
    start(NULL, NULL);
    radius_builder_t b;
    size_t n = build_start(&b, 77, "dave@corp.example", "\x7f\x00\x00\x04", "dup-1");
    cr_assert(send_exact("127.0.0.1", b.buf, n));
    json_t *e = map_entry("127.0.0.4");
    cr_assert_not_null(e);
    cr_expect_str_eq(sval(e, "name"), "dave");
    cr_expect_str_eq(sval(e, "domain"), "corp.example");
    json_decref(e);
    expect_request("127.0.0.4", 200, "dave");

    /* the session ends; then the NAS's retransmission of the Start (it
     * never saw our answer) arrives late: answered again, not applied */
    cr_assert(ACCT("Stop", "192.0.2.1", "dup-1", "dave@corp.example", "127.0.0.4", ""));
    e = map_entry("127.0.0.4");
    cr_expect_null(e);
    json_decref(e);
    cr_assert(send_exact("127.0.0.1", b.buf, n), "a retransmission must be answered");
    e = map_entry("127.0.0.4");
    cr_expect_null(e, "the retransmitted Start was applied again");
    json_decref(e);
    cr_expect_eq(counter_reaches("duplicates", 1), 1);
    cr_expect_eq(radius_counter("status_types.start"), 1);
    cr_expect_eq(radius_counter("applied"), 2, "one add, one del");
    cr_expect_eq(radius_counter("responses"), 3);
    expect_request("127.0.0.4", 403, "-");
}

Test(radius_proxy, late_stop_of_an_old_session_keeps_the_newer_one)
{
    start(NULL, NULL);
    cr_assert(ACCT("Start", "192.0.2.1", "old", "bob", SHARED, ""));
    expect_request(SHARED, 200, "bob");
    /* the address goes to a new session before the old one's Stop */
    cr_assert(ACCT("Start", "192.0.2.1", "new", "carol", SHARED, ""));
    json_t *e = map_entry(SHARED);
    cr_assert_not_null(e);
    cr_expect_str_eq(sval(e, "name"), "carol");
    cr_expect_str_eq(sval(e, "sid"), "192.0.2.1/new");
    json_decref(e);
    cr_assert(ACCT("Stop", "192.0.2.1", "old", "bob", SHARED, "Acct-Session-Time = 300\n"));
    e = map_entry(SHARED);
    cr_assert_not_null(e, "the late Stop of the old session removed the new one");
    cr_expect_str_eq(sval(e, "name"), "carol");
    json_decref(e);
    expect_request(SHARED, 200, "carol");
    /* the new session's own Stop removes it */
    cr_assert(ACCT("Stop", "192.0.2.1", "new", "carol", SHARED, ""));
    e = map_entry(SHARED);
    cr_expect_null(e);
    json_decref(e);
}

Test(radius_proxy, accounting_on_clears_the_sessions_of_that_nas)
{
    start(NULL, NULL);
    cr_assert(ACCT("Start", "192.0.2.7", "a", "erin", "127.0.0.6", ""));
    cr_assert(ACCT("Start", "192.0.2.7", "b", "frank", "127.0.0.7", ""));
    cr_assert(ACCT("Start", "192.0.2.8", "c", "grace", "127.0.0.8", ""));
    json_t *m = musctl_json("map");
    cr_expect_eq(json_array_size(json_object_get(m, "entries")), 3);
    json_decref(m);
    /* the NAS 192.0.2.7 rebooted */
    cr_assert(acct_to(NULL, SECRET, "Acct-Status-Type = Accounting-On\nNAS-IP-Address = 192.0.2.7\n"
                      "Acct-Session-Id = \"0\"\n"));
    json_t *e6 = map_entry("127.0.0.6"), *e7 = map_entry("127.0.0.7"), *e8 = map_entry("127.0.0.8");
    cr_expect_null(e6);
    cr_expect_null(e7);
    cr_expect_not_null(e8, "another NAS's session went too");
    json_decref(e6);
    json_decref(e7);
    json_decref(e8);
    expect_request("127.0.0.6", 403, "-");
    expect_request("127.0.0.8", 200, "grace");
    cr_expect_eq(counter_reaches("status_types.accounting_on", 1), 1);
}

Test(radius_proxy, ipv6_listener_and_addresses)
{
    start(NULL, NULL);
    cr_assert(acct_to("[::1]", SECRET, "Acct-Status-Type = Start\nUser-Name = \"heidi\"\n"
                      "Framed-IP-Address = 127.0.0.10\nFramed-IPv6-Address = fd00::10\n"
                      "Acct-Session-Id = \"v6\"\nNAS-IPv6-Address = 2001:db8::1\n"),
              "no answer on [::1]");
    json_t *e4 = map_entry("127.0.0.10"), *e6 = map_entry("fd00::10");
    cr_assert_not_null(e4);
    cr_assert_not_null(e6);
    cr_expect_str_eq(sval(e6, "name"), "heidi");
    cr_expect_str_eq(sval(e6, "sid"), "2001:db8::1/v6");
    json_decref(e4);
    json_decref(e6);
    expect_request("127.0.0.10", 200, "heidi");
}

/* The idle sweep: no Interim-Update for stale_after intervals marks the
 * session stale (still mapped), stale_grace later it is removed. */
Test(radius_proxy, sessions_without_refresh_go_stale_then_away)
{
    start("  stale_after: 1\n  stale_grace: 2s\n", NULL);
    cr_assert(ACCT("Start", "192.0.2.1", "idle", "ivan", "127.0.0.11",
                   "Acct-Interim-Interval = 1\n"));
    long long t0 = mp_now_ms(), stale_at = -1, gone_at = -1;
    while (mp_now_ms() - t0 < 8000 && gone_at < 0) {
        json_t *e = map_entry("127.0.0.11");
        if (e == NULL)
            gone_at = mp_now_ms() - t0;
        else if (json_is_true(json_object_get(e, "stale")) && stale_at < 0)
            stale_at = mp_now_ms() - t0;
        json_decref(e);
        mp_sleep_ms(100);
    }
    cr_expect_geq(stale_at, 500, "stale after one 1 s interval, not at once (%lld ms)", stale_at);
    cr_expect_gt(gone_at, stale_at, "removed after being stale (%lld, %lld ms)", stale_at, gone_at);
    cr_expect_geq(gone_at - stale_at, 1000, "stale for the 2 s grace (%lld ms)", gone_at - stale_at);
    cr_expect_eq(counter_reaches("sessions.removed_stale", 1), 1);
    cr_expect_eq(radius_counter("sessions.marked_stale"), 1);
    cr_expect_eq(metric("musproxy_radius_stale_sessions_total{event=\"marked\"}"), 1);
    cr_expect_eq(metric("musproxy_radius_stale_sessions_total{event=\"removed\"}"), 1);
    cr_expect_eq(metric("musproxy_radius_sessions"), 0);
}

/* A reload with listen: [] stops the listener: no more answers, its
 * entries stale for mus.grace, then dropped. */
Test(radius_proxy, listener_stopped_by_a_reload_leaves_stale_entries_for_the_grace)
{
    start(NULL, "2s");
    cr_assert(ACCT("Start", "192.0.2.1", "r1", "judy", "127.0.0.12", ""));
    write_config("[]", "", "2s");
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    long long t0 = mp_now_ms(), stale_at = -1, gone_at = -1;
    while (mp_now_ms() - t0 < 8000 && gone_at < 0) {
        json_t *e = map_entry("127.0.0.12");
        if (e == NULL)
            gone_at = mp_now_ms() - t0;
        else if (json_is_true(json_object_get(e, "stale")) && stale_at < 0) {
            stale_at = mp_now_ms() - t0;
            expect_request("127.0.0.12", 200, "judy");   /* stale, still the user's */
        }
        json_decref(e);
        mp_sleep_ms(100);
    }
    cr_assert_geq(stale_at, 0, "the entry never went stale");
    cr_expect_gt(gone_at, stale_at, "never dropped after the grace");
    cr_expect_geq(gone_at - stale_at, 1000, "dropped before the 2 s grace (%lld ms)",
                  gone_at - stale_at);
    cr_expect(!ACCT("Start", "192.0.2.1", "r2", "judy", "127.0.0.12", ""),
              "a stopped listener answered");
    json_t *st = musctl_json("status"), *r = json_object_get(st, "radius");
    cr_expect(json_is_false(json_object_get(r, "listening")));
    json_decref(st);
}

/* Every kind of packet once (the Start twice, as a retransmission), then
 * the exact counters in musctl status and in /metrics. */
Test(radius_proxy, counters_count_each_kind_of_packet)
{
    start(NULL, NULL);
    /* 1 accepted: a Start (add) */
    cr_assert(ACCT("Start", "192.0.2.1", "c1", "kim", "127.0.0.13", ""));
    /* 1 bad authenticator */
    cr_expect(!acct_to(NULL, "not-the-secret", "Acct-Status-Type = Start\nUser-Name = \"eve\"\n"
                       "Framed-IP-Address = 127.0.0.14\nAcct-Session-Id = \"e\"\n"));
    /* 1 malformed: the Length field says 48, the datagram has 20 octets */
    uint8_t bad[RADIUS_HDR_LEN] = {RADIUS_CODE_ACCT_REQUEST, 5, 0, 48};
    cr_expect(!send_exact("127.0.0.1", bad, sizeof(bad)), "a malformed packet was answered");
    /* 1 accepted and its retransmission: 1 duplicate (answered, not applied) */
    radius_builder_t b;
    size_t n = build_start(&b, 42, "lee", "\x7f\x00\x00\x0f", "c2");
    cr_assert(send_exact("127.0.0.1", b.buf, n));
    cr_assert(send_exact("127.0.0.1", b.buf, n), "the retransmission was not answered");
    /* 1 unknown client */
    cr_expect(!send_exact("127.0.0.9", b.buf, n), "an unknown client was answered");
    /* 1 accepted: the first session's Stop (del) */
    cr_assert(ACCT("Stop", "192.0.2.1", "c1", "kim", "127.0.0.13", ""));

    cr_assert_eq(counter_reaches("received", 7), 7);
    cr_expect_eq(counter_reaches("dropped.unknown_client", 1), 1);
    cr_expect_eq(radius_counter("responses"), 4, "Start, Start, its retransmission, Stop");
    cr_expect_eq(radius_counter("applied"), 3, "add, add, del");
    cr_expect_eq(radius_counter("duplicates"), 1);
    cr_expect_eq(radius_counter("dropped.wrong_secret"), 1);
    cr_expect_eq(radius_counter("dropped.malformed"), 1);
    cr_expect_eq(radius_counter("dropped.not_applied"), 0);
    cr_expect_eq(radius_counter("status_types.start"), 2);
    cr_expect_eq(radius_counter("status_types.stop"), 1);
    cr_expect_eq(radius_counter("status_types.interim"), 0);
    cr_expect_eq(radius_counter("sessions.now"), 1);

    static const struct { const char *sample; long long want; } m[] = {
        {"musproxy_radius_up", 1},
        {"musproxy_radius_packets_total{result=\"accepted\"}", 3},
        {"musproxy_radius_packets_total{result=\"duplicate\"}", 1},
        {"musproxy_radius_packets_total{result=\"unknown_client\"}", 1},
        {"musproxy_radius_packets_total{result=\"bad_authenticator\"}", 1},
        {"musproxy_radius_packets_total{result=\"malformed\"}", 1},
        {"musproxy_radius_packets_total{result=\"not_applied\"}", 0},
        {"musproxy_radius_requests_total{type=\"start\"}", 2},
        {"musproxy_radius_requests_total{type=\"interim\"}", 0},
        {"musproxy_radius_requests_total{type=\"stop\"}", 1},
        {"musproxy_radius_requests_total{type=\"accounting_on\"}", 0},
        {"musproxy_radius_requests_total{type=\"accounting_off\"}", 0},
        {"musproxy_radius_responses_total", 4},
        {"musproxy_radius_map_changes_total", 3},
        {"musproxy_radius_sessions", 1},
        {"musproxy_radius_stale_sessions_total{event=\"removed\"}", 0},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        cr_expect_eq(metric(m[i].sample), m[i].want, "%s: %lld, wanted %lld", m[i].sample,
                     metric(m[i].sample), m[i].want);
}
