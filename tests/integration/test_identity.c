/*
 * tests/integration/test_identity.c: remote users end to end, with the real
 * binaries over real sockets: mus-headend (TLS, MUS/1) feeding musproxy's map,
 * musctl notify standing in for ocserv's connect/disconnect scripts, the probe,
 * musctl status/map/trace over the control socket, and the policies that
 * treat the same URL differently for a remote VPN user and a local one.
 *
 * Clients use distinct loopback source addresses (curl's CURLOPT_INTERFACE):
 * 127.0.0.2 is alice (a VPN user, from the headend's sessions file),
 * 127.0.0.4 is a machine tunnel, 127.0.0.3 is a local office machine.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"
#include "../../db/report.h"

#define ALICE "127.0.0.2"
#define OFFICE "127.0.0.3"
#define MACHINE "127.0.0.4"
#define BOB "127.0.0.5"

static mp_proc_t g_headend, g_origin, g_proxy;
static int g_hport, g_oport, g_pport;
static char g_sock[MP_PATH_MAX], g_feed[MP_PATH_MAX], g_cfg[MP_PATH_MAX], g_log[MP_PATH_MAX];
static char g_ext[MP_PATH_MAX], g_ca[MP_PATH_MAX], g_cert[MP_PATH_MAX], g_key[MP_PATH_MAX];
static char g_secret[MP_PATH_MAX], g_sessions[MP_PATH_MAX], g_users[MP_PATH_MAX];

static const char *bin(const char *env)
{
    const char *b = getenv(env);
    cr_assert_not_null(b, "%s is not set (run through meson test)", env);
    return b;
}

static void suite_init(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    signal(SIGPIPE, SIG_IGN);
}

static void suite_fini(void)
{
    mp_cleanup();
}

static void start_headend(void)
{
    char port[32], listen[64];
    g_hport = g_hport ? g_hport : mp_free_port();
    snprintf(port, sizeof port, "%d", g_hport);
    snprintf(listen, sizeof listen, "127.0.0.1:%d", g_hport);
    char *argv[] = {(char *)bin("HEADEND_BIN"), "--cert", g_cert, "--key", g_key,
                    "--password-file", g_secret, "--listen", listen, "--socket", g_feed,
                    "--sessions", g_sessions, "--kdf-iter", "10000", "--server-id", "lab-asa",
                    NULL};
    cr_assert_eq(mp_proc_start(&g_headend, "mus-headend", argv, NULL), 0);
    cr_assert_eq(mp_wait_port(g_hport, 5000), 0, "mus-headend did not listen");
}

/* Writes the musproxy configuration with the given policy sections. */
static char g_store[MP_PATH_MAX] = "off";   /* the store section's path */

static void write_config(const char *policy_yaml)
{
    char text[8192];
    int n = snprintf(text, sizeof text,
        "store: { path: %s }\n"
        "proxy:\n"
        "  listen: [ \"127.0.0.1:%d\" ]\n"
        "  workers: 2\n"
        "  clients: [127.0.0.0/8]\n"
        "  connect_ports: [443, %d]\n"
        "  timeouts: { header: 2s, idle: 10s, connect: 2s, response: 5s }\n"
        "  access_log: %s\n"
        "mus:\n"
        "  reconnect_interval: 2s\n"
        "  grace: 30s\n"
        "  control_socket: %s\n"
        "  headends:\n"
        "    - name: lab-1\n"
        "      addresses: [\"127.0.0.1:%d\"]\n"
        "      ca: %s\n"
        "      password_file: %s\n"
        "%s"
        "log_level: debug\n",
        g_store, g_pport, g_oport, g_log, g_sock, g_hport, g_ca, g_secret, policy_yaml);
    cr_assert(n > 0 && (size_t)n < sizeof text);
    cr_assert_eq(mp_write_file(g_cfg, text), 0);
}

/* The product's classic pair: arts allowed remote, blocked in the office;
 * machine tunnels only reach updates. */
static char g_policy[4096];
static const char *classic_policy_x(const char *office_arts, const char *extra_custom)
{
    snprintf(g_policy, sizeof g_policy,
        "identity_profiles:\n"
        "  - { name: remote-users, location: remote, types: [user] }\n"
        "  - { name: machine-tunnels, location: remote, types: [machine, device] }\n"
        "  - { name: office, location: local }\n"
        "access_policies:\n"
        "  - { name: remote, profiles: [remote-users], categories: { arts: allow }, default: allow }\n"
        "  - { name: machines, profiles: [machine-tunnels], categories: { updates: allow }, default: block }\n"
        "  - { name: office, profiles: [office], categories: { arts: %s }, default: allow }\n"
        "  - { name: default, default: allow }\n"
        "custom_categories:\n"
        "  - { name: arts, domains: [arts.test], url_prefixes: [\"http://127.0.0.1:%d/size/7\"] }\n"
        "  - { name: updates, url_prefixes: [\"http://127.0.0.1:%d/size/9\"] }\n"
        "%s"
        "extended_log: %s\n",
        office_arts, g_oport, g_oport, extra_custom, g_ext);
    return g_policy;
}

static const char *classic_policy(const char *office_arts)
{
    return classic_policy_x(office_arts, "");
}

static void start_all(const char *policy_yaml)
{
    mp_make_certs(g_ca, g_cert, g_key);
    mp_path(g_sock, "musproxy.sock");
    mp_path(g_feed, "feed.sock");
    mp_path(g_cfg, "musproxy.yaml");
    mp_path(g_log, "access.log");
    mp_path(g_ext, "extended.log");
    mp_path(g_secret, "mus.secret");
    mp_path(g_sessions, "sessions.jsonl");
    mp_path(g_users, "users.passwd");
    cr_assert_eq(mp_write_file(g_secret, "correct horse battery staple\n"), 0);
    chmod(g_secret, 0600);
    char sessions[1024];
    snprintf(sessions, sizeof sessions,
             "{\"sid\":\"s-alice\",\"ips\":[\"" ALICE "\"],\"id\":{\"type\":\"user\",\"name\":\"alice\","
             "\"domain\":\"CORP\"},\"groups\":[\"eng\"],\"started\":1763800000,"
             "\"client_ip\":\"198.51.100.7\",\"tunnel\":\"ssl\"}\n"
             "{\"sid\":\"s-laptop\",\"ips\":[\"" MACHINE "\"],\"id\":{\"type\":\"machine\","
             "\"name\":\"LAPTOP-7$\",\"domain\":\"CORP\"},\"groups\":[],\"started\":1763800001,"
             "\"client_ip\":\"198.51.100.8\",\"tunnel\":\"ssl\"}\n");
    cr_assert_eq(mp_write_file(g_sessions, sessions), 0);
    start_headend();
    g_oport = mp_origin_start(&g_origin, "origin", NULL, NULL);
    cr_assert_gt(g_oport, 0);
    g_pport = mp_free_port();
    write_config(policy_yaml ? policy_yaml : classic_policy("block"));
    cr_assert_eq(mp_proxy_start(&g_proxy, g_cfg, g_pport), 0);
}

/* ---- HTTP through the proxy from a chosen source address ---- */

typedef struct resp {
    long status;
    char body[16384];
    size_t len;
    char headers[8192];
    size_t hlen;
} resp_t;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t len = sz * n, take = len;
    if (r->len + take >= sizeof r->body)
        take = sizeof r->body - 1 - r->len;
    memcpy(r->body + r->len, p, take);
    r->len += take;
    r->body[r->len] = '\0';
    return len;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    resp_t *r = ud;
    size_t len = sz * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        r->hlen = 0;
    if (r->hlen + len < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, len);
        r->hlen += len;
        r->headers[r->hlen] = '\0';
    }
    return len;
}

static CURL *handle_from(const char *src)
{
    CURL *h = curl_easy_init();
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", g_pport);
    curl_easy_setopt(h, CURLOPT_PROXY, proxy);
    curl_easy_setopt(h, CURLOPT_NOPROXY, "");
    curl_easy_setopt(h, CURLOPT_INTERFACE, src);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    return h;
}

static long do_get(CURL *h, const char *url, resp_t *r)
{
    memset(r, 0, sizeof *r);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    CURLcode rc = curl_easy_perform(h);
    cr_assert_eq(rc, CURLE_OK, "curl %s: %s", url, curl_easy_strerror(rc));
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    return r->status;
}

static long get_from(const char *src, const char *url, resp_t *r)
{
    CURL *h = handle_from(src);
    long s = do_get(h, url, r);
    curl_easy_cleanup(h);
    return s;
}

static char *origin_url(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", g_oport, path);
    return buf;
}

/* Polls the probe from src until its body contains needle; returns ms or -1. */
static long long probe_until(const char *src, const char *needle, int timeout_ms)
{
    long long start = mp_now_ms();
    resp_t r;
    while (mp_now_ms() - start <= timeout_ms) {
        if (get_from(src, "http://mus.cisco.com/", &r) == 200 && strstr(r.body, needle))
            return mp_now_ms() - start;
        mp_sleep_ms(20);
    }
    return -1;
}

/* Runs musctl with args; returns its stdout (malloc'd), exit code in *rc. */
static char *musctl(int *rc, char *const args[])
{
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)bin("MUSCTL_BIN");
    for (; args[n - 1] && n < 15; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    static int seq;
    char name[32];
    snprintf(name, sizeof name, "musctl%d", ++seq);
    mp_proc_t p;
    cr_assert_eq(mp_proc_start(&p, name, argv, NULL), 0);
    cr_assert_eq(mp_proc_wait(&p, 10000), 0, "musctl hung");
    *rc = WIFEXITED(p.status) ? WEXITSTATUS(p.status) : -1;
    char *out = mp_read_file(p.stdout_path, NULL);
    return out ? out : strdup("");
}

static void notify(const char *reason, const char *id, const char *user, const char *ip)
{
    char env_reason[64], env_id[64], env_user[128], env_ip[64];
    snprintf(env_reason, sizeof env_reason, "REASON=%s", reason);
    snprintf(env_id, sizeof env_id, "ID=%s", id);
    snprintf(env_user, sizeof env_user, "USERNAME=%s", user);
    snprintf(env_ip, sizeof env_ip, "IP_REMOTE=%s", ip);
    char *argv[] = {"/usr/bin/env", "-i", env_reason, env_id, env_user, "GROUPNAME=sales", env_ip,
                    "IP_REAL=192.0.2.50", (char *)bin("MUSCTL_BIN"), "notify", "--socket", g_feed,
                    NULL};
    char *err = NULL;
    cr_assert_eq(mp_run(argv, 5000, &err), 0, "musctl notify failed: %s", err ? err : "");
    free(err);
}

/* The last access-log line containing needle (waits for the flush). */
static char *log_line(const char *path, const char *needle)
{
    for (int i = 0; i < 100; i++) {
        char *all = mp_read_file(path, NULL);
        if (all) {
            char *found = NULL, *p = all;
            while ((p = strstr(p, needle)) != NULL) {
                found = p;
                p++;
            }
            if (found) {
                char *start = found;
                while (start > all && start[-1] != '\n')
                    start--;
                char *end = strchr(found, '\n');
                char *line = strndup(start, end ? (size_t)(end - start) : strlen(start));
                free(all);
                return line;
            }
            free(all);
        }
        mp_sleep_ms(30);
    }
    return NULL;
}

TestSuite(identity, .init = suite_init, .fini = suite_fini, .timeout = 90);

Test(identity, probe_snapshot_live_add_and_delete)
{
    start_all(NULL);
    /* the snapshot: alice is remote, the office machine is local */
    cr_assert_geq(probe_until(ALICE, "user: alice", 5000), 0, "alice never appeared");
    resp_t r;
    cr_assert_eq(get_from(ALICE, "http://mus.cisco.com/anything", &r), 200);
    cr_expect(strstr(r.body, "remote: yes") && strstr(r.body, "type: user") &&
              strstr(r.body, "headend: lab-1") && strstr(r.body, "groups: eng"),
              "probe body:\n%s", r.body);
    cr_assert_eq(get_from(OFFICE, "http://mus.cisco.com/", &r), 200);
    cr_expect(strstr(r.body, "remote: no") != NULL, "office probe:\n%s", r.body);
    /* never resolved, never forwarded: logged HIER_NONE with the user */
    char *line = log_line(g_log, "http://mus.cisco.com/anything");
    cr_assert_not_null(line);
    cr_expect(strstr(line, " TCP_MISS/200 ") && strstr(line, " alice HIER_NONE/- "),
              "probe log line: %s", line);
    free(line);

    /* a live add, as ocserv's connect-script would send it: visible within 1 s */
    notify("connect", "4242", "bob", BOB);
    long long ms = probe_until(BOB, "user: bob", 1000);
    cr_assert_geq(ms, 0, "bob's VPN address was not mapped within 1 s");
    cr_log_info("live add visible after %lld ms", ms);
    /* and the delete */
    notify("disconnect", "4242", "bob", BOB);
    ms = probe_until(BOB, "remote: no", 1000);
    cr_assert_geq(ms, 0, "bob's mapping did not go within 1 s of the disconnect");

    /* probes are counted per client */
    int rc;
    char *out = musctl(&rc, (char *[]){"status", "--socket", g_sock, "--json", NULL});
    cr_assert_eq(rc, 0, "musctl status failed");
    cr_expect(strstr(out, "\"" ALICE "\"") != NULL, "probe counters lack alice:\n%s", out);
    free(out);
}

/* The row of rows (a JSON array) whose "user" is user, or NULL. */
static json_t *row_of(json_t *rows, const char *user)
{
    size_t k;
    json_t *row;

    json_array_foreach(rows, k, row)
        if (strcmp(json_string_value(json_object_get(row, "user")), user) == 0)
            return row;
    return NULL;
}

/* The map's history reaches the store: a live login and logout become one
 * remote session row with its start, end and the reason it ended. */
Test(identity, sessions_history_in_the_store)
{
    mp_path(g_store, "musproxy.db");
    start_all(NULL);
    cr_assert_geq(probe_until(ALICE, "user: alice", 5000), 0, "alice never appeared");
    notify("connect", "4242", "bob", BOB);
    cr_assert_geq(probe_until(BOB, "user: bob", 2000), 0);
    notify("disconnect", "4242", "bob", BOB);
    cr_assert_geq(probe_until(BOB, "remote: no", 2000), 0);

    char err[256];
    report_range_t q = { .from_ms = 0, .to_ms = INT64_MAX, .loc = REPORT_LOC_ALL };
    json_t *sess = NULL, *bob = NULL, *alice = NULL;
    for (int i = 0; i < 50 && bob == NULL; i++) {   /* the writer batches every 200 ms */
        usleep(100000);
        report_t *rep = report_open(g_store, err, sizeof err);
        cr_assert_not_null(rep, "%s", err);
        json_decref(sess);
        sess = report_sessions(rep, &q, 100);
        report_close(rep);
        cr_assert_not_null(sess);
        bob = row_of(json_object_get(sess, "recent"), "bob");
    }
    cr_assert_not_null(bob, "no ended session for bob");
    cr_expect_str_eq(json_string_value(json_object_get(bob, "vpn_addr")), BOB);
    cr_expect_str_eq(json_string_value(json_object_get(bob, "end_reason")), "logout");
    cr_expect_str_eq(json_string_value(json_object_get(bob, "headend")), "lab-1");
    cr_expect_gt(json_integer_value(json_object_get(bob, "end")), 0);
    alice = row_of(json_object_get(sess, "open"), "alice");
    cr_assert_not_null(alice, "alice's session is not open in the store");
    cr_expect_str_eq(json_string_value(json_object_get(alice, "public_addr")), "198.51.100.7");
    cr_expect_eq(json_integer_value(json_object_get(alice, "start")), 1763800000LL * 1000);
    json_decref(sess);
    snprintf(g_store, sizeof g_store, "off");
}

Test(identity, musctl_status_map_and_control_socket_mode)
{
    start_all(NULL);
    cr_assert_geq(probe_until(ALICE, "user: alice", 5000), 0);
    int rc;
    char *out = musctl(&rc, (char *[]){"status", "--socket", g_sock, NULL});
    cr_assert_eq(rc, 0);
    cr_expect(strstr(out, "Headend lab-1: established since") != NULL, "status:\n%s", out);
    cr_expect(strstr(out, "entries:        2 (stale 0)") != NULL, "status:\n%s", out);
    cr_expect(strstr(out, "last error:     -") != NULL, "status:\n%s", out);
    free(out);
    out = musctl(&rc, (char *[]){"map", "--socket", g_sock, NULL});
    cr_assert_eq(rc, 0);
    cr_expect(strstr(out, ALICE) && strstr(out, "alice") && strstr(out, "LAPTOP-7$") &&
              strstr(out, "machine") && strstr(out, "2 entries"), "map:\n%s", out);
    free(out);
    out = musctl(&rc, (char *[]){"map", "--socket", g_sock, "--user", "alice", NULL});
    cr_expect(strstr(out, "1 entries") && !strstr(out, "LAPTOP"), "map --user:\n%s", out);
    free(out);
    out = musctl(&rc, (char *[]){"map", "--socket", g_sock, "--ip", MACHINE, NULL});
    cr_expect(strstr(out, "LAPTOP-7$") && strstr(out, "1 entries"), "map --ip:\n%s", out);
    free(out);
    /* other local users are kept out: the socket is 0600 */
    struct stat st;
    cr_assert_eq(stat(g_sock, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "control socket mode %o", st.st_mode & 0777);
}

Test(identity, headend_lost_entries_stale_then_reconnect_with_new_epoch)
{
    start_all(NULL);
    cr_assert_geq(probe_until(ALICE, "stale: no", 5000), 0);
    int rc;
    char *before = musctl(&rc, (char *[]){"status", "--socket", g_sock, "--json", NULL});
    mp_proc_stop(&g_headend, SIGKILL, 2000);
    /* kept for the grace period, marked stale */
    cr_assert_geq(probe_until(ALICE, "stale: yes", 3000), 0, "entries not marked stale");
    char *out = musctl(&rc, (char *[]){"status", "--socket", g_sock, NULL});
    cr_expect(strstr(out, "last error:     -") == NULL, "no error after the loss:\n%s", out);
    free(out);
    /* restarted: a new epoch, a full snapshot, within reconnect_interval (2 s) */
    long long t0 = mp_now_ms();
    start_headend();
    long long ms = probe_until(ALICE, "stale: no", 6000);
    cr_assert_geq(ms, 0, "no reconnect after the headend came back");
    cr_log_info("reconnected %lld ms after the restart", mp_now_ms() - t0);
    char *after = musctl(&rc, (char *[]){"status", "--socket", g_sock, "--json", NULL});
    cr_assert(strstr(after, "\"snapshots\": 2") != NULL, "no second snapshot:\n%s", after);
    cr_assert(strstr(after, "\"reconnects\": 1") != NULL, "reconnect not counted:\n%s", after);
    /* the epochs differ */
    char *e1 = strstr(before, "\"epoch\": \""), *e2 = strstr(after, "\"epoch\": \"");
    cr_assert(e1 && e2);
    cr_expect(strncmp(e1, e2, 40) != 0, "same epoch after a restart");
    free(before);
    free(after);
}

Test(identity, same_url_allowed_remote_blocked_local)
{
    start_all(NULL);
    cr_assert_geq(probe_until(ALICE, "user: alice", 5000), 0);
    char url[256];
    resp_t r;
    origin_url(url, sizeof url, "/size/7");
    cr_assert_eq(get_from(ALICE, url, &r), 200, "arts blocked for the remote user");
    cr_assert_eq(get_from(OFFICE, url, &r), 403, "arts not blocked in the office");
    cr_expect(strstr(r.body, "Access to this site is blocked") && strstr(r.body, "arts") &&
              strstr(r.body, "office") && strstr(r.body, "local"),
              "block page lacks category/policy/location:\n%s", r.body);
    cr_expect(strcasestr(r.headers, "X-Musproxy-Decision: BLOCK_CATEGORY") != NULL,
              "decision header missing:\n%s", r.headers);
    /* the office still reaches uncategorized sites */
    cr_assert_eq(get_from(OFFICE, origin_url(url, sizeof url, "/size/5"), &r), 200);

    char *line = log_line(g_log, " " OFFICE " TCP_DENIED/403 ");
    cr_assert_not_null(line, "no TCP_DENIED/403 line for the office client");
    cr_expect(strstr(line, "/size/7 - HIER_NONE/- text/html") != NULL, "line: %s", line);
    free(line);
    line = log_line(g_log, " " ALICE " TCP_MISS/200 ");
    cr_assert_not_null(line);
    cr_expect(strstr(line, "/size/7 alice HIER_DIRECT/127.0.0.1 ") != NULL, "line: %s", line);
    free(line);
    /* the extended log names the profile, policy, rule and category */
    line = log_line(g_ext, "\"decision\":\"BLOCK_CATEGORY\"");
    cr_assert_not_null(line, "no extended log line");
    cr_expect(strstr(line, "\"client\":\"" OFFICE "\"") && strstr(line, "\"location\":\"local\"") && strstr(line, "\"identity_profile\":\"office\"") &&
              strstr(line, "\"access_policy\":\"office\"") && strstr(line, "\"category\":\"arts\"") &&
              strstr(line, "\"decision\":\"BLOCK_CATEGORY\""), "extended: %s", line);
    free(line);
    line = log_line(g_ext, "\"client\":\"" ALICE "\"");
    cr_assert_not_null(line);
    cr_expect(strstr(line, "\"location\":\"remote\"") && strstr(line, "\"user_source\":\"headend\"") &&
              strstr(line, "\"identity_type\":\"user\"") && strstr(line, "\"headend\":\"lab-1\""),
              "extended: %s", line);
    free(line);
}

Test(identity, machine_tunnel_then_user_tunnel_on_one_address)
{
    start_all(NULL);
    cr_assert_geq(probe_until(MACHINE, "LAPTOP-7$", 5000), 0);
    char arts[256], upd[256];
    origin_url(arts, sizeof arts, "/size/7");
    origin_url(upd, sizeof upd, "/size/9");
    CURL *h = handle_from(MACHINE);   /* one client connection throughout */
    resp_t r;
    cr_assert_eq(do_get(h, upd, &r), 200, "machine tunnel cannot reach updates");
    cr_assert_eq(do_get(h, arts, &r), 403, "machine tunnel reached a non-update site");
    cr_expect(strstr(r.body, "machines") != NULL, "not the machine policy:\n%s", r.body);
    /* the user logs in: the machine tunnel is replaced on the same address */
    notify("connect", "s-carol", "carol", MACHINE);
    char *out = NULL;
    cr_assert_geq(probe_until(MACHINE, "user: carol", 1000), 0, "user tunnel not mapped");
    /* identity is looked up per request: the next request gets the user's policy */
    cr_assert_eq(do_get(h, upd, &r), 200);
    cr_assert_eq(do_get(h, arts, &r), 200, "still the machine policy after the switch");
    /* and back: the user logs out, the machine tunnel comes back */
    notify("disconnect", "s-carol", "carol", MACHINE);
    mp_sleep_ms(300);
    int rc;
    out = musctl(&rc, (char *[]){"map", "--socket", g_sock, "--ip", MACHINE, NULL});
    cr_expect(strstr(out, "carol") == NULL, "carol still mapped:\n%s", out);
    free(out);
    curl_easy_cleanup(h);
}

Test(identity, trace_explains_decisions)
{
    start_all(NULL);
    cr_assert_geq(probe_until(ALICE, "user: alice", 5000), 0);
    char url[256];
    origin_url(url, sizeof url, "/size/7");
    int rc;
    char *out = musctl(&rc, (char *[]){"trace", "--socket", g_sock, "--ip", OFFICE, "--url", url,
                                       NULL});
    cr_assert_eq(rc, 0);
    cr_expect(strstr(out, "Location:         local") && strstr(out, "Identity profile: office") &&
              strstr(out, "Category:         arts") && strstr(out, "Access policy:    office") &&
              strstr(out, "Rule:             category") && strstr(out, "Action:           block"),
              "trace (office):\n%s", out);
    free(out);
    out = musctl(&rc, (char *[]){"trace", "--socket", g_sock, "--ip", ALICE, "--url", url, NULL});
    cr_expect(strstr(out, "Location:         remote") && strstr(out, "alice (user") &&
              strstr(out, "Identity profile: remote-users") && strstr(out, "Action:           allow"),
              "trace (alice):\n%s", out);
    free(out);
    out = musctl(&rc, (char *[]){"trace", "--socket", g_sock, "--ip", OFFICE, "--url",
                                 "https://arts.test/", NULL});
    cr_expect(strstr(out, "CONNECT arts.test:443") && strstr(out, "Action:           block"),
              "trace (CONNECT):\n%s", out);
    free(out);
    /* the trace sent no traffic: no access-log line for arts.test */
    mp_sleep_ms(200);
    char *all = mp_read_file(g_log, NULL);
    cr_expect(all == NULL || strstr(all, "arts.test") == NULL, "the trace sent traffic");
    free(all);
}

Test(identity, blocked_connect_by_host_category)
{
    start_all(NULL);
    char req[256];
    int fd = mp_connect(g_pport);
    cr_assert_geq(fd, 0);
    /* from 127.0.0.1 (local, not mapped): arts.test is blocked, never resolved */
    snprintf(req, sizeof req, "CONNECT arts.test:443 HTTP/1.1\r\nHost: arts.test:443\r\n\r\n");
    mp_send_str(fd, req);
    char buf[4096];
    bool closed;
    size_t n = mp_read_until_close(fd, buf, sizeof buf, 3000, &closed);
    close(fd);
    cr_assert_gt(n, 0);
    cr_expect(strncmp(buf, "HTTP/1.1 403", 12) == 0, "answer: %.200s", buf);
    cr_expect(strstr(buf, "arts") != NULL, "no category on the block page");
    char *line = log_line(g_log, "CONNECT arts.test:443");
    cr_assert_not_null(line);
    cr_expect(strstr(line, "TCP_DENIED/403") != NULL, "line: %s", line);
    free(line);
}

Test(identity, reload_changes_decision_and_invalid_reload_keeps_policy)
{
    start_all(NULL);
    char arts[256], other[256];
    origin_url(arts, sizeof arts, "/size/7");
    origin_url(other, sizeof other, "/size/5");
    CURL *h = handle_from(OFFICE);
    resp_t r;
    cr_assert_eq(do_get(h, other, &r), 200);
    cr_assert_eq(get_from(OFFICE, arts, &r), 403);
    /* allow arts in the office; the open connection stays and sees the new policy */
    write_config(classic_policy("allow"));
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    mp_sleep_ms(700);
    cr_assert_eq(do_get(h, arts, &r), 200, "the reloaded policy is not in force");
    long conns = -1;
    curl_easy_getinfo(h, CURLINFO_NUM_CONNECTS, &conns);
    cr_expect_eq(conns, 0, "the client connection was dropped by the reload");
    /* an invalid policy (a bad regex): rejected, the running one stays */
    write_config(classic_policy_x("block", "  - { name: broken, regexes: [\"(unclosed\"] }\n"));
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    mp_sleep_ms(700);
    char *err = mp_proc_stderr(&g_proxy);
    cr_assert(strstr(err, "reload rejected") != NULL, "no rejection logged:\n%s", err);
    free(err);
    cr_assert_eq(do_get(h, arts, &r), 200, "the old policy was not kept");
    curl_easy_cleanup(h);
}

Test(identity, basic_authentication_407)
{
    mp_make_certs(g_ca, g_cert, g_key);
    mp_path(g_users, "users.passwd");
    /* a password file written by musctl passwd */
    char *argv[] = {"/bin/sh", "-c", NULL, NULL};
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "printf 'letmein\\n' | '%s' passwd dave --file '%s'",
             bin("MUSCTL_BIN"), g_users);
    argv[2] = cmd;
    char *err = NULL;
    cr_assert_eq(mp_run(argv, 20000, &err), 0, "musctl passwd failed: %s", err ? err : "");
    free(err);
    char *pw = mp_read_file(g_users, NULL);
    cr_assert(pw && strncmp(pw, "dave:pbkdf2-sha256$", 19) == 0, "password file: %s", pw);
    cr_assert(strstr(pw, "letmein") == NULL, "plain text password in the file");
    free(pw);
    char pol[2048];
    snprintf(pol, sizeof pol,
             "identity_profiles:\n"
             "  - { name: office, location: local, auth: basic }\n"
             "access_policies:\n"
             "  - { name: default, default: allow }\n"
             "authentication: { realm: \"Corp proxy\", password_file: %s, surrogate_ttl: 1s }\n",
             g_users);
    start_all(pol);
    char url[256];
    origin_url(url, sizeof url, "/size/5");
    resp_t r;
    cr_assert_eq(get_from(OFFICE, url, &r), 407, "no 407 without credentials");
    cr_expect(strcasestr(r.headers, "Proxy-Authenticate: Basic realm=\"Corp proxy\"") != NULL,
              "headers:\n%s", r.headers);
    CURL *h = handle_from(OFFICE);
    curl_easy_setopt(h, CURLOPT_PROXYUSERPWD, "dave:wrong");
    cr_assert_eq(do_get(h, url, &r), 407, "a wrong password was accepted");
    curl_easy_setopt(h, CURLOPT_PROXYUSERPWD, "dave:letmein");
    cr_assert_eq(do_get(h, url, &r), 200, "the right password was refused");
    curl_easy_cleanup(h);
    char *line = log_line(g_log, " TCP_DENIED/407 ");
    cr_assert_not_null(line, "no TCP_DENIED/407 in the access log");
    free(line);
    line = log_line(g_log, "/size/5 dave HIER_DIRECT");
    cr_assert_not_null(line, "the Basic user is not in the access log's user field");
    free(line);
}

Test(identity, unidentified_vpn_address_refused)
{
    /* 127.0.0.6 is inside the VPN pool but no headend knows it */
    start_all("identity_profiles:\n"
              "  - { name: vpn-unknown, location: local, subnets: [127.0.0.6/32], refuse_unidentified: true }\n"
              "  - { name: everyone, location: any }\n"
              "access_policies:\n"
              "  - { name: default, default: allow }\n");
    /* the pool is part of the mus section: reload with it */
    char text[8192];
    char *cfg = mp_read_file(g_cfg, NULL);
    cr_assert_not_null(cfg);
    char *at = strstr(cfg, "mus:\n");
    cr_assert_not_null(at);
    at += 5;
    snprintf(text, sizeof text, "%.*s  vpn_pools: [127.0.0.6/32]\n%s", (int)(at - cfg), cfg, at);
    free(cfg);
    cr_assert_eq(mp_write_file(g_cfg, text), 0);
    cr_assert_eq(mp_proc_signal(&g_proxy, SIGHUP), 0);
    mp_sleep_ms(700);
    char url[256];
    resp_t r;
    origin_url(url, sizeof url, "/size/5");
    cr_assert_eq(get_from("127.0.0.6", url, &r), 403, "an unidentified VPN address was let through");
    cr_expect(strcasestr(r.headers, "X-Musproxy-Decision: BLOCK_UNIDENTIFIED") != NULL,
              "headers:\n%s", r.headers);
    /* a mapped VPN address in the same pool is fine once the headend knows it */
    notify("connect", "s-erin", "erin", "127.0.0.6");
    cr_assert_geq(probe_until("127.0.0.6", "user: erin", 2000), 0);
    cr_assert_eq(get_from("127.0.0.6", url, &r), 200, "the identified VPN user was refused");
    /* outside the pool nothing changes */
    cr_assert_eq(get_from(OFFICE, url, &r), 200);
}
