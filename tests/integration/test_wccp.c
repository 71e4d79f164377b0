/*
 * tests/integration/test_wccp.c: the WCCPv2 agent of the real musproxy
 * against the router emulator (tests/tools/wccp_router.c) on loopback
 * addresses: router 127.20.48.1, caches 127.20.48.10 and .11, all on UDP
 * 2048, with a 400 ms interval on both sides (MUSPROXY_WCCP_INTERVAL_MS and
 * --interval-ms). Checked through the router's own assignment and `musctl
 * wccp`: (a) one node is designated and gets all 256 buckets; (b) two nodes
 * of weight 1 share 128/128, the designated one takes everything when the
 * other is killed, and the other takes over when the designated one is
 * killed; (c) MD5: a wrong password gives no assignment and counted drops
 * (and the right one works); (d) datagrams from an address that is not a
 * configured router are dropped and counted; (e) SIGTERM of the designated
 * node hands its buckets to the other before it stops, faster than any
 * router timeout; (f) tshark decodes a live capture of the exchange with no
 * Malformed and no expert Warning/Error (skipped when tshark is missing or
 * we cannot capture). Each node also has a mode: metrics listener: its
 * /metrics says the same as `musctl wccp` in (a), (b) and (d), and passes
 * `promtool check metrics` (when installed).
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../proxy/wccp_pkt.h"
#include "harness.h"

#define T_MS        400                 /* Here_I_Am interval, both sides */
#define ROUTER      "127.20.48.1"
#define CACHE_A     "127.20.48.10"
#define CACHE_B     "127.20.48.11"
#define STRANGER    "127.20.48.99"
#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

typedef struct node {
    mp_proc_t proc;
    char sock[MP_PATH_MAX];
    char cfg[MP_PATH_MAX];
    const char *addr;
    int port;
    int mport;      /* its mode: metrics listener */
} node_t;

static mp_proc_t g_router;
static char g_rsock[MP_PATH_MAX];
static node_t g_a, g_b;

static void suite_init(void)
{
    char v[16];

    signal(SIGPIPE, SIG_IGN);
    snprintf(v, sizeof v, "%d", T_MS);
    setenv("MUSPROXY_WCCP_INTERVAL_MS", v, 1);
}

static void suite_fini(void)
{
    mp_cleanup();
}

TestSuite(wccp, .init = suite_init, .fini = suite_fini, .timeout = 120);

static const char *bin(const char *env)
{
    const char *b = getenv(env);
    cr_assert(b != NULL && b[0], "%s is not set", env);
    return b;
}

static void router_start(const char *password_file)
{
    char iv[16];
    char *argv[] = {(char *)bin("WCCP_ROUTER_BIN"), "--address", ROUTER, "--control", g_rsock,
                    "--interval-ms", iv, password_file ? "--password-file" : NULL,
                    (char *)password_file, NULL};

    snprintf(iv, sizeof iv, "%d", T_MS);
    mp_path(g_rsock, "router.sock");
    cr_assert_eq(mp_proc_start(&g_router, "router", argv, NULL), 0);
    for (int i = 0; i < 100 && access(g_rsock, F_OK) != 0; i++)
        mp_sleep_ms(20);
    cr_assert_eq(access(g_rsock, F_OK), 0, "the router did not start");
}

/* One request to the router's control socket; its answer line (static). */
static const char *router_ask(const char *req)
{
    static char out[8192];
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    size_t len = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);

    strcpy(sun.sun_path, g_rsock);
    cr_assert(fd >= 0 && connect(fd, (struct sockaddr *)&sun, sizeof sun) == 0);
    cr_assert_eq(mp_send_str(fd, req), 0);
    cr_assert_eq(mp_send_str(fd, "\n"), 0);
    for (;;) {
        ssize_t n = mp_recv_timeout(fd, out + len, sizeof out - 1 - len, 2000);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    out[len] = '\0';
    out[strcspn(out, "\n")] = '\0';
    return out;
}

/* Polls the router's assignment until it contains want; ms waited, or -1. */
static long long wait_assignment(const char *want, int timeout_ms)
{
    long long start = mp_now_ms();

    while (mp_now_ms() - start < timeout_ms) {
        if (strstr(router_ask("assignment"), want) != NULL)
            return mp_now_ms() - start;
        mp_sleep_ms(50);
    }
    return -1;
}

static void node_start(node_t *n, const char *addr, const char *password_file)
{
    char name[32], text[2048];
    char *argv[] = {(char *)mp_musproxy_bin(), "-c", n->cfg, NULL};

    memset(n, 0, sizeof(*n));
    n->addr = addr;
    n->port = mp_free_port();
    n->mport = mp_free_port();
    snprintf(name, sizeof name, "node-%s", addr + 10);
    snprintf(text, sizeof text, "%s.sock", name);
    mp_path(n->sock, text);
    snprintf(text, sizeof text, "%s.yaml", name);
    mp_path(n->cfg, text);
    snprintf(text, sizeof text,
             "proxy:\n  listen: [\"127.0.0.1:%d\", { address: \"127.0.0.1:%d\", mode: metrics }]\n"
             "  workers: 1\n  access_log: off\n"
             "log_level: info\nstore: { path: off }\nmus: { control_socket: %s }\n"
             "wccp:\n  routers: [%s]\n  address: %s\n  weight: 1\n%s%s%s",
             n->port, n->mport, n->sock, ROUTER, addr, password_file ? "  password_file: " : "",
             password_file ? password_file : "", password_file ? "\n" : "");
    cr_assert_eq(mp_write_file(n->cfg, text), 0);
    cr_assert_eq(mp_proc_start(&n->proc, name, argv, NULL), 0);
    cr_assert_eq(mp_wait_port(n->port, 5000), 0, "musproxy %s did not start", addr);
}

/* `musctl wccp [--json]` of a node: its standard output (malloc'd). popen,
 * not mp_proc_start: the harness must not keep a pointer to a local. */
static char *musctl_wccp(node_t *n, bool json)
{
    char cmd[2 * MP_PATH_MAX], *out = malloc(1 << 20);
    size_t len = 0, k;
    FILE *f;

    cr_assert_not_null(out);
    snprintf(cmd, sizeof cmd, "'%s' wccp --socket '%s'%s", bin("MUSCTL_BIN"), n->sock,
             json ? " --json" : "");
    f = popen(cmd, "r");
    cr_assert_not_null(f);
    while ((k = fread(out + len, 1, (1 << 20) - 1 - len, f)) > 0)
        len += k;
    out[len] = '\0';
    cr_assert_eq(pclose(f), 0, "musctl wccp failed: %s", out);
    return out;
}

/* `musctl wccp --json` of a node, parsed. */
static json_t *node_wccp(node_t *n)
{
    char *text = musctl_wccp(n, true);
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);

    cr_assert_not_null(j, "musctl wccp --json: %s: %s", je.text, text);
    free(text);
    return j;
}

/* The body of the node's /metrics (malloc'd). */
static char *node_metrics(node_t *n)
{
    static char buf[1 << 18];
    int fd = mp_connect(n->mport);
    size_t len;
    char *body;

    cr_assert(fd >= 0, "cannot connect to the metrics listener of %s", n->addr);
    cr_assert_eq(mp_send_str(fd, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                 "Connection: close\r\n\r\n"), 0);
    len = mp_read_until_close(fd, buf, sizeof buf, 3000, NULL);
    close(fd);
    cr_assert_lt(len, sizeof buf - 1, "/metrics is larger than the test's buffer");
    cr_assert(strncmp(buf, "HTTP/1.1 200", 12) == 0, "/metrics: %.200s", buf);
    body = strstr(buf, "\r\n\r\n");
    cr_assert_not_null(body);
    body = strdup(body + 4);
    cr_assert_not_null(body);
    return body;
}

/* The value of one sample ("name{labels}") in an exposition, or -1 if absent. */
static long long metric(const char *text, const char *sample)
{
    size_t k = strlen(sample);

    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, sample, k) == 0 && p[k] == ' ')
            return atoll(p + k + 1);
    return -1;
}

#define SVC0 "{service=\"0\",type=\"standard\""

/* promtool check metrics finds nothing in text (skipped without promtool). */
static void expect_promtool_clean(const char *text)
{
    char path[MP_PATH_MAX], out[MP_PATH_MAX], cmd[3 * MP_PATH_MAX], *err;
    size_t len;

    if (system("command -v promtool >/dev/null 2>&1") != 0)
        return;
    mp_path(path, "metrics.txt");
    mp_path(out, "promtool.out");
    cr_assert_eq(mp_write_file(path, text), 0);
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s' > '%s' 2>&1", path, out);
    cr_expect_eq(system(cmd), 0, "promtool check metrics failed");
    err = mp_read_file(out, &len);
    cr_expect(err != NULL && len == 0, "promtool check metrics: %s", err ? err : "?");
    free(err);
}

static json_t *svc0(json_t *w)
{
    return json_array_get(json_object_get(w, "services"), 0);
}

static long long jnum(json_t *o, const char *path1, const char *path2)
{
    json_t *x = json_object_get(o, path1);
    if (path2)
        x = json_object_get(x, path2);
    return json_integer_value(x);
}

static const char *jstr(json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* (a) */
Test(wccp, one_node_is_designated_and_gets_every_bucket)
{
    char *out;
    json_t *w, *s, *r;

    router_start(NULL);
    node_start(&g_a, CACHE_A, NULL);
    cr_assert_geq(wait_assignment("form=hash " CACHE_A "=256 none=0", 10 * T_MS), 0,
                  "router: %s", router_ask("assignment"));
    cr_expect(strstr(router_ask("assignment"), "key=" CACHE_A "/") != NULL);
    w = node_wccp(&g_a);
    s = svc0(w);
    cr_expect_str_eq(jstr(w, "address"), CACHE_A);
    cr_expect_str_eq(jstr(s, "state"), "designated");
    cr_expect_str_eq(jstr(s, "designated"), CACHE_A);
    cr_expect(json_is_true(json_object_get(s, "designated_self")));
    cr_expect_eq(jnum(s, "buckets", NULL), 256);
    cr_expect_str_eq(jstr(s, "assignment"), "hash");
    r = json_array_get(json_object_get(s, "routers"), 0);
    cr_expect_str_eq(jstr(r, "state"), "connected");
    cr_expect_gt(jnum(r, "receive_id", NULL), 0);
    cr_expect_gt(jnum(r, "last_i_see_you", NULL), 0);
    cr_expect_gt(jnum(s, "packets", "in"), 0);
    cr_expect_gt(jnum(s, "packets", "out"), 0);
    json_decref(w);
    /* the text form says the same */
    out = musctl_wccp(&g_a, false);
    free(out);
    /* and so does /metrics */
    out = node_metrics(&g_a);
    cr_expect_eq(metric(out, "musproxy_wccp_service_state" SVC0 ",state=\"designated\"}"), 1, "%s", out);
    cr_expect_eq(metric(out, "musproxy_wccp_service_state" SVC0 ",state=\"seeking\"}"), 0);
    cr_expect_eq(metric(out, "musproxy_wccp_service_state" SVC0 ",state=\"member\"}"), 0);
    cr_expect_eq(metric(out, "musproxy_wccp_service_designated" SVC0 "}"), 1);
    cr_expect_eq(metric(out, "musproxy_wccp_service_routers_connected" SVC0 "}"), 1);
    cr_expect_eq(metric(out, "musproxy_wccp_service_buckets" SVC0 "}"), 256);
    cr_expect_gt(metric(out, "musproxy_wccp_messages_total{direction=\"received\"}"), 0);
    cr_expect_gt(metric(out, "musproxy_wccp_messages_total{direction=\"sent\"}"), 0);
    cr_expect_eq(metric(out, "musproxy_wccp_messages_dropped_total{reason=\"not_router\"}"), 0);
    expect_promtool_clean(out);
    free(out);
}

/* (b) */
Test(wccp, two_nodes_share_and_survive_each_other)
{
    json_t *w;
    long long took;

    router_start(NULL);
    node_start(&g_a, CACHE_A, NULL);
    node_start(&g_b, CACHE_B, NULL);
    cr_assert_geq(wait_assignment(CACHE_A "=128 " CACHE_B "=128 none=0", 15 * T_MS), 0,
                  "router: %s", router_ask("assignment"));
    mp_sleep_ms(2 * T_MS + 100);   /* one Here_I_Am round: B's I_See_You shows its buckets */
    w = node_wccp(&g_b);
    cr_expect_str_eq(jstr(svc0(w), "state"), "member");
    cr_expect_str_eq(jstr(svc0(w), "designated"), CACHE_A);
    cr_expect_eq(jnum(svc0(w), "buckets", NULL), 128, "B's share as the router shows it");
    cr_expect_eq(json_array_size(json_object_get(svc0(w), "caches")), 2);
    json_decref(w);
    {
        char *m = node_metrics(&g_b);
        cr_expect_eq(metric(m, "musproxy_wccp_service_state" SVC0 ",state=\"member\"}"), 1, "%s", m);
        cr_expect_eq(metric(m, "musproxy_wccp_service_state" SVC0 ",state=\"designated\"}"), 0);
        cr_expect_eq(metric(m, "musproxy_wccp_service_designated" SVC0 "}"), 0);
        cr_expect_eq(metric(m, "musproxy_wccp_service_routers_connected" SVC0 "}"), 1);
        cr_expect_eq(metric(m, "musproxy_wccp_service_buckets" SVC0 "}"), 128);
        free(m);
    }
    w = node_wccp(&g_a);
    cr_expect_eq(jnum(svc0(w), "buckets", NULL), 128);
    json_decref(w);

    /* the non-designated node dies: router timeout (3 T) + at most 2 T */
    mp_proc_signal(&g_b.proc, SIGKILL);
    took = wait_assignment("form=hash " CACHE_A "=256 none=0", 3 * T_MS + 2 * T_MS + 1000);
    cr_assert_geq(took, 0, "A did not take B's buckets: %s", router_ask("assignment"));
    cr_expect_geq(took, 3 * T_MS - T_MS, "too fast (%lld ms): B was not really gone?", took);
    w = node_wccp(&g_a);
    cr_expect_eq(jnum(svc0(w), "buckets", NULL), 256);
    cr_expect_eq(json_array_size(json_object_get(svc0(w), "caches")), 1);
    json_decref(w);

    /* B again, then the designated node dies: B takes over */
    mp_proc_wait(&g_b.proc, 2000);
    node_start(&g_b, CACHE_B, NULL);
    cr_assert_geq(wait_assignment(CACHE_A "=128 " CACHE_B "=128 none=0", 15 * T_MS), 0,
                  "router: %s", router_ask("assignment"));
    mp_proc_signal(&g_a.proc, SIGKILL);
    took = wait_assignment("key=" CACHE_B "/", 3 * T_MS + 2 * T_MS + 1000);
    cr_assert_geq(took, 0, "B did not take over: %s", router_ask("assignment"));
    cr_expect(strstr(router_ask("assignment"), CACHE_B "=256 none=0") != NULL, "%s",
              router_ask("assignment"));
    w = node_wccp(&g_b);
    cr_expect_str_eq(jstr(svc0(w), "state"), "designated");
    cr_expect(json_is_true(json_object_get(svc0(w), "designated_self")));
    cr_expect_eq(jnum(svc0(w), "buckets", NULL), 256);
    json_decref(w);
}

/* An I_See_You for cache A from `from`, signed with password (or none). */
static void send_isy(const char *from, const char *password)
{
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET,
                                                             .sin_port = htons(WCCP_PORT)};
    uint8_t buf[WCCP_MSG_MAX];
    wccp_isy_t m;
    int len, fd;

    memset(&m, 0, sizeof m);
    m.password = password;
    m.router = (wccp_router_id_t){ntohl(inet_addr(from)), 77};
    m.sent_to = IP(127, 20, 48, 10);
    m.member_change = 9;
    m.n_routers = 1;
    m.routers[0] = m.router.ip;
    m.n_caches = 2;
    m.caches[0] = (wccp_cache_id_t){.ip = IP(127, 20, 48, 5), .weight = 1};   /* a lower cache */
    m.caches[1] = (wccp_cache_id_t){.ip = IP(127, 20, 48, 10), .weight = 1};
    len = wccp_build_i_see_you(buf, sizeof buf, &m);
    cr_assert_gt(len, 0);
    inet_pton(AF_INET, from, &src.sin_addr);
    inet_pton(AF_INET, CACHE_A, &dst.sin_addr);
    fd = socket(AF_INET, SOCK_DGRAM, 0);
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&src, sizeof src) == 0);
    cr_assert_eq(sendto(fd, buf, (size_t)len, 0, (struct sockaddr *)&dst, sizeof dst), len);
    close(fd);
}

/* (c) */
Test(wccp, md5_wrong_password_is_dropped_and_counted)
{
    char rpw[MP_PATH_MAX], npw[MP_PATH_MAX];
    json_t *w;
    const char *st;

    mp_path(rpw, "router.secret");
    mp_path(npw, "node.secret");
    cr_assert_eq(mp_write_file(rpw, "s3cret-A\n"), 0);
    cr_assert_eq(mp_write_file(npw, "s3cret-B\n"), 0);
    router_start(rpw);
    node_start(&g_a, CACHE_A, npw);
    mp_sleep_ms(5 * T_MS);
    cr_expect(strstr(router_ask("assignment"), "form=none") != NULL, "%s",
              router_ask("assignment"));
    st = router_ask("stats");
    cr_expect(strstr(st, "security=0 ") == NULL && strstr(st, " isy=0 ") != NULL,
              "the router must drop the node's Here_I_Ams: %s", st);
    /* and the node drops what is signed with another password */
    send_isy(ROUTER, "s3cret-A");
    mp_sleep_ms(T_MS);
    w = node_wccp(&g_a);
    cr_expect_geq(jnum(w, "packets", "dropped_security"), 1);
    cr_expect(json_is_true(json_object_get(w, "md5")));
    cr_expect_str_eq(jstr(svc0(w), "state"), "seeking");
    cr_expect_neq(strstr(jstr(w, "last_error"), "security"), NULL, "%s", jstr(w, "last_error"));
    json_decref(w);
    /* the password itself is nowhere in the log */
    char *log = mp_proc_stderr(&g_a.proc);
    cr_expect_null(strstr(log, "s3cret"));
    free(log);
    /* the right password: the group forms */
    mp_proc_stop(&g_a.proc, SIGTERM, 3000);
    cr_assert_eq(mp_write_file(npw, "s3cret-A\n"), 0);
    node_start(&g_a, CACHE_A, npw);
    cr_assert_geq(wait_assignment(CACHE_A "=256 none=0", 10 * T_MS), 0, "%s",
                  router_ask("assignment"));
}

/* (d) */
Test(wccp, datagrams_from_strangers_are_dropped_and_counted)
{
    json_t *w;

    router_start(NULL);
    node_start(&g_a, CACHE_A, NULL);
    cr_assert_geq(wait_assignment(CACHE_A "=256 none=0", 10 * T_MS), 0);
    send_isy(STRANGER, NULL);
    send_isy(STRANGER, NULL);
    mp_sleep_ms(2 * T_MS);
    w = node_wccp(&g_a);
    cr_expect_eq(jnum(w, "packets", "dropped_not_router"), 2);
    cr_expect_neq(strstr(jstr(w, "last_error"), STRANGER), NULL, "%s", jstr(w, "last_error"));
    /* its view (listing a lower cache, 127.20.48.5) was not taken */
    cr_expect_str_eq(jstr(svc0(w), "designated"), CACHE_A);
    cr_expect_eq(json_array_size(json_object_get(svc0(w), "caches")), 1);
    json_decref(w);
    cr_expect(strstr(router_ask("assignment"), CACHE_A "=256 none=0") != NULL);
    /* garbage from the router's own address: counted as malformed, no crash */
    {
        struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET,
                                                                 .sin_port = htons(WCCP_PORT)};
        const char junk[] = "\x00\x00\x00\x0b\x02\x00\xff\xffjunk";
        int fd = socket(AF_INET, SOCK_DGRAM, 0);
        inet_pton(AF_INET, ROUTER, &src.sin_addr);
        inet_pton(AF_INET, CACHE_A, &dst.sin_addr);
        cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&src, sizeof src) == 0);
        sendto(fd, junk, sizeof junk - 1, 0, (struct sockaddr *)&dst, sizeof dst);
        close(fd);
    }
    mp_sleep_ms(T_MS);
    w = node_wccp(&g_a);
    cr_expect_geq(jnum(w, "packets", "dropped_malformed"), 1);
    {
        char *m = node_metrics(&g_a);
        cr_expect_eq(metric(m, "musproxy_wccp_messages_dropped_total{reason=\"not_router\"}"), 2,
                     "%s", m);
        cr_expect_eq(metric(m, "musproxy_wccp_messages_dropped_total{reason=\"malformed\"}"),
                     jnum(w, "packets", "dropped_malformed"));
        free(m);
    }
    json_decref(w);
    cr_expect(mp_proc_alive(&g_a.proc));
}

/* (e) */
Test(wccp, sigterm_of_the_designated_node_hands_its_buckets_over)
{
    long long took, t0;

    router_start(NULL);
    node_start(&g_a, CACHE_A, NULL);
    node_start(&g_b, CACHE_B, NULL);
    cr_assert_geq(wait_assignment(CACHE_A "=128 " CACHE_B "=128 none=0", 15 * T_MS), 0,
                  "router: %s", router_ask("assignment"));
    t0 = mp_now_ms();
    mp_proc_signal(&g_a.proc, SIGTERM);
    /* well before the router could notice A's silence (3 T) */
    took = wait_assignment("form=hash " CACHE_B "=256 none=0", 2 * T_MS);
    cr_assert_geq(took, 0, "no hand-over: %s", router_ask("assignment"));
    cr_expect(strstr(router_ask("assignment"), "key=" CACHE_A "/") != NULL,
              "the leaving designated cache made this assignment: %s", router_ask("assignment"));
    cr_assert_eq(mp_proc_wait(&g_a.proc, 5000), 0);
    cr_expect(WIFEXITED(g_a.proc.status) && WEXITSTATUS(g_a.proc.status) == 0);
    cr_expect(strstr(router_ask("view"), "caches=" CACHE_B) != NULL,
              "A's shutdown command removed it at once: %s", router_ask("view"));
    /* B becomes designated and keeps everything */
    cr_expect_geq(wait_assignment("key=" CACHE_B "/", 5 * T_MS), 0, "%s", router_ask("assignment"));
    cr_expect(strstr(router_ask("assignment"), CACHE_B "=256 none=0") != NULL);
    (void)t0;
}

/* (f) */
Test(wccp, tshark_decodes_the_live_exchange)
{
    char pcap[MP_PATH_MAX], verbose[MP_PATH_MAX], *text, *p;
    char *cap[] = {"tshark", "-i", "lo", "-f", "udp port 2048", "-a", "duration:8", "-w", pcap,
                   NULL};
    static mp_proc_t cp;          /* static: the harness keeps a pointer to it */
    int n_msgs[14] = {0};

    if (system("command -v tshark >/dev/null 2>&1") != 0)
        cr_skip_test("tshark is not installed (tools/setup.sh installs it)");
    if (geteuid() != 0)
        cr_skip_test("capturing on lo needs root");
    mp_path(pcap, "wccp.pcap");
    mp_path(verbose, "wccp.txt");
    cap[0] = "/usr/bin/tshark";
    cr_assert_eq(mp_proc_start(&cp, "tshark-capture", cap, NULL), 0);
    mp_sleep_ms(2000);            /* until it captures */
    router_start(NULL);
    node_start(&g_a, CACHE_A, NULL);
    node_start(&g_b, CACHE_B, NULL);
    cr_assert_geq(wait_assignment(CACHE_A "=128 " CACHE_B "=128 none=0", 15 * T_MS), 0);
    mp_proc_signal(&g_a.proc, SIGTERM);   /* the hand-over and the shutdown command */
    cr_assert_eq(mp_proc_wait(&cp, 15000), 0, "tshark did not stop");
    {
        char cmd[3 * MP_PATH_MAX];
        snprintf(cmd, sizeof cmd, "tshark -n -r '%s' -V > '%s' 2>/dev/null", pcap, verbose);
        cr_assert_eq(system(cmd), 0, "tshark -r failed");
    }
    text = mp_read_file(verbose, NULL);
    cr_assert_not_null(text);
    cr_expect_null(strstr(text, "Malformed"), "tshark found a malformed packet");
    cr_expect_null(strstr(text, "Expert Info (Warning"), "%s",
                   strstr(text, "Expert Info (Warning") ? strstr(text, "Expert Info (Warning") : "");
    cr_expect_null(strstr(text, "Expert Info (Error"));
    for (p = text; (p = strstr(p, "Message Type: ")) != NULL; p += 14) {
        const char *q = strchr(p, '(');
        int t = q ? atoi(q + 1) : 0;
        if (t >= 10 && t <= 13)
            n_msgs[t]++;
    }
    cr_expect_gt(n_msgs[10], 0, "no Here_I_Am decoded");
    cr_expect_gt(n_msgs[11], 0, "no I_See_You decoded");
    cr_expect_gt(n_msgs[12], 0, "no Redirect_Assign decoded");
    free(text);
}
