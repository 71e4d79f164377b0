/*
 * tests/integration/test_mus_feed.c: the proxy side of MUS/1 (mus/client.c)
 * against the real mus-headend over loopback TLS. Each test makes its own
 * temporary directory with certificates from the openssl CLI (a CA, a
 * headend certificate for headend.test / 127.0.0.1, an unrelated CA), a
 * password file and a sessions file, starts one or two mus-headend
 * processes, and runs mus_feed in this process, reading the map as a
 * registered reader and the feed's status.
 *
 * Environment: HEADEND_BIN (mus-headend), set by tests/meson.build.
 * MUS_FEED_KEEP_TMP=1 keeps the temporary directories.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "../../common/log.h"
#include "../../mus/client.h"
#include "../../mus/map.h"

#define PASSWORD "correct horse battery staple"
#define RECONNECT_MS 2000u
#define MAX_PROCS 8

/* ---- test-wide state (Criterion runs each test in its own process) ---- */

typedef struct headend_proc {
    pid_t pid;
    int port;
    char name[32];
    char sock[256];
    char sessions[256];
    char log[256];
} headend_proc_t;

static char tmpdir[256];
static headend_proc_t procs[MAX_PROCS];
static size_t n_procs;
static mus_map_t *map;
static mus_map_reader_t *reader;
static mus_feed_t *feed;

static void
pathf(char *out, size_t cap, const char *fmt, ...)
{
    char name[200];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(name, sizeof(name), fmt, ap);
    va_end(ap);
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

    cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
    cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    fchmod(fd, mode);
    close(fd);
}

static char *
read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf;
    long n;

    if (fp == NULL)
        return strdup("");
    fseek(fp, 0, SEEK_END);
    n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    buf = calloc(1, (size_t)n + 1);
    if (fread(buf, 1, (size_t)n, fp) != (size_t)n)
        buf[0] = '\0';
    fclose(fp);
    return buf;
}

static void
run_sh(const char *fmt, ...)
{
    char cmd[4096], full[4400];
    va_list ap;
    int r;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    snprintf(full, sizeof(full), "cd '%s' && (%s) >>openssl.log 2>&1", tmpdir, cmd);
    r = system(full);
    cr_assert(r == 0, "command failed (%d): %s\n%s", r, cmd, read_file("openssl.log"));
}

static uint64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    /* no lookups while asleep: tell the map */
    if (reader != NULL)
        mus_map_reader_offline(reader);
    nanosleep(&ts, NULL);
    if (reader != NULL)
        mus_map_reader_online(reader);
}

/* A free loopback TCP port (bound then released: good enough for tests). */
static int
free_port(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

    cr_assert(fd >= 0);
    cr_assert(bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    cr_assert(getsockname(fd, (struct sockaddr *)&sin, &sl) == 0);
    port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

static bool
port_open(int port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok = connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;

    close(fd);
    return ok;
}

/* ---- certificates, password, sessions ---- */

/* ca.pem/ca.key, headend.pem/headend.key (SAN DNS:headend.test, IP:127.0.0.1,
 * signed by ca), other-ca.pem (unrelated), other.key (an unrelated key). */
static void
make_pki(void)
{
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

    run_sh("openssl req -x509 %s -keyout ca.key -out ca.pem -days 2 -subj /CN=mus-test-ca "
           "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign",
           ec);
    run_sh("openssl req %s -keyout headend.key -out headend.csr -subj /CN=headend.test", ec);
    run_sh("printf 'subjectAltName=DNS:headend.test,IP:127.0.0.1\\n"
           "extendedKeyUsage=serverAuth\\n' > ext.cnf");
    run_sh("openssl x509 -req -in headend.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out headend.pem -days 2 -extfile ext.cnf");
    run_sh("openssl req -x509 %s -keyout other-ca.key -out other-ca.pem -days 2 "
           "-subj /CN=other-ca", ec);
    run_sh("chmod 600 *.key");
}

/* hex SHA-256 of the SubjectPublicKeyInfo of a PEM certificate */
static void
spki_pin(const char *pem_name, char out[65])
{
    char path[512];
    FILE *fp;
    X509 *x;
    unsigned char *der = NULL, md[32];
    int len;

    pathf(path, sizeof(path), "%s", pem_name);
    fp = fopen(path, "r");
    cr_assert(fp != NULL);
    x = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    cr_assert(x != NULL);
    len = i2d_PUBKEY(X509_get0_pubkey(x), &der);
    cr_assert(len > 0);
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    X509_free(x);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static void
write_password(const char *name, const char *pw)
{
    char path[512], text[256];

    pathf(path, sizeof(path), "%s", name);
    snprintf(text, sizeof(text), "%s\n", pw);
    write_file(path, text, 0600);
}

/* One session object of MUS/1. */
static void
session_json(char *out, size_t cap, const char *sid, const char *user, const char *ip4,
             const char *ip6)
{
    if (ip6 != NULL)
        snprintf(out, cap,
                 "{\"sid\":\"%s\",\"ips\":[\"%s\",\"%s\"],\"id\":{\"type\":\"user\","
                 "\"name\":\"%s\",\"domain\":\"CORP\"},\"groups\":[\"eng\"],"
                 "\"started\":%lld,\"client_ip\":\"198.51.100.7\",\"tunnel\":\"ssl\"}",
                 sid, ip4, ip6, user, (long long)time(NULL));
    else
        snprintf(out, cap,
                 "{\"sid\":\"%s\",\"ips\":[\"%s\"],\"id\":{\"type\":\"user\",\"name\":\"%s\"},"
                 "\"started\":%lld,\"tunnel\":\"ipsec\"}",
                 sid, ip4, user, (long long)time(NULL));
}

/* ---- mus-headend processes ---- */

static const char *
headend_bin(void)
{
    const char *b = getenv("HEADEND_BIN");

    cr_assert(b != NULL && b[0] != '\0', "HEADEND_BIN is not set");
    return b;
}

/* Starts (or restarts, same port and files) mus-headend number idx. */
static headend_proc_t *
headend_start(size_t idx, bool standby)
{
    headend_proc_t *p = &procs[idx];
    char port_arg[64], cert[512], key[512], pw[512];
    pid_t pid;

    if (idx >= n_procs)
        n_procs = idx + 1;
    if (p->port == 0) {
        p->port = free_port();
        snprintf(p->name, sizeof(p->name), "he%zu", idx + 1);
        pathf(p->sock, sizeof(p->sock), "%s.sock", p->name);
        pathf(p->sessions, sizeof(p->sessions), "%s.sessions", p->name);
        pathf(p->log, sizeof(p->log), "%s.log", p->name);
        if (access(p->sessions, F_OK) != 0)
            write_file(p->sessions, "", 0644);
    }
    snprintf(port_arg, sizeof(port_arg), "127.0.0.1:%d", p->port);
    pathf(cert, sizeof(cert), "headend.pem");
    pathf(key, sizeof(key), "headend.key");
    pathf(pw, sizeof(pw), "headend.secret");
    pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        int fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        const char *argv[20];
        int n = 0;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        argv[n++] = headend_bin();
        argv[n++] = "--listen";
        argv[n++] = port_arg;
        argv[n++] = "--cert";
        argv[n++] = cert;
        argv[n++] = "--key";
        argv[n++] = key;
        argv[n++] = "--password-file";
        argv[n++] = pw;
        argv[n++] = "--sessions";
        argv[n++] = p->sessions;
        argv[n++] = "--socket";
        argv[n++] = p->sock;
        argv[n++] = "--server-id";
        argv[n++] = p->name;
        if (standby)
            argv[n++] = "--standby";
        argv[n] = NULL;
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    p->pid = pid;
    for (uint64_t end = now_ms() + 10000; !port_open(p->port); sleep_ms(50)) {
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            p->pid = 0;
            cr_assert_fail("mus-headend exited at start:\n%s", read_file(p->log));
        }
        cr_assert(now_ms() < end, "mus-headend does not listen:\n%s", read_file(p->log));
    }
    return p;
}

static void
headend_kill(headend_proc_t *p, int sig)
{
    if (p->pid <= 0)
        return;
    kill(p->pid, sig);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

/* Sends one JSON object to the headend's local feed (a Unix datagram
 * socket; fire and forget). */
static void
headend_feed(headend_proc_t *p, const char *line)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    cr_assert(fd >= 0);
    cr_assert(strlen(p->sock) < sizeof(sun.sun_path));
    memcpy(sun.sun_path, p->sock, strlen(p->sock) + 1);
    cr_assert(sendto(fd, line, strlen(line), MSG_NOSIGNAL, (struct sockaddr *)&sun,
                     sizeof(sun)) == (ssize_t)strlen(line),
              "sendto %s: %s", p->sock, strerror(errno));
    close(fd);
}

/* ---- the feed ---- */

typedef struct he_opts {
    const char *ca;            /* file name in tmpdir, or NULL */
    const char *pin;           /* hex, or NULL */
    const char *cert_name;     /* default "headend.test" */
    const char *password;      /* file name, default "proxy.secret" */
} he_opts_t;

static void
headend_config(mus_headend_config_t *c, const char *name, const int *ports, size_t n,
               const he_opts_t *o)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->name, sizeof(c->name), "%s", name);
    c->n_addrs = n;
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&c->addrs[i];
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)ports[i]);
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        c->addr_lens[i] = sizeof(*sin);
        snprintf(c->addr_text[i], sizeof(c->addr_text[i]), "127.0.0.1:%d", ports[i]);
    }
    if (o->ca != NULL)
        pathf(c->ca_file, sizeof(c->ca_file), "%s", o->ca);
    if (o->pin != NULL)
        snprintf(c->pin_sha256, sizeof(c->pin_sha256), "%s", o->pin);
    snprintf(c->cert_name, sizeof(c->cert_name), "%s",
             o->cert_name != NULL ? o->cert_name : "headend.test");
    pathf(c->password_file, sizeof(c->password_file), "%s",
          o->password != NULL ? o->password : "proxy.secret");
    snprintf(c->client_id, sizeof(c->client_id), "proxy-test");
}

static void
feed_config_init(mus_feed_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->reconnect_interval_ms = RECONNECT_MS;
    cfg->grace_ms = 60000;
}

static void
feed_start(const mus_feed_config_t *cfg)
{
    char err[256] = "";

    feed = mus_feed_new(map, cfg, err, sizeof(err));
    cr_assert(feed != NULL, "mus_feed_new: %s", err);
    cr_assert(mus_feed_start(feed) == 0);
}

static bool
lookup(const char *ip, mus_identity_t *out)
{
    mus_addr_t a;
    bool found;

    cr_assert(mus_addr_parse(ip, &a) == 0, "bad address %s", ip);
    found = mus_map_lookup(map, &a, out);
    mus_map_reader_quiescent(reader);
    return found;
}

/* Waits until ip maps to user (or, with user NULL, is unmapped), with the
 * given staleness (-1: either); false on timeout. */
static bool
wait_lookup(const char *ip, const char *user, int stale, unsigned timeout_ms)
{
    uint64_t end = now_ms() + timeout_ms;

    for (;;) {
        mus_identity_t id;
        bool found = lookup(ip, &id);
        if (user == NULL ? !found
                         : found && strcmp(id.s.name, user) == 0 &&
                               (stale < 0 || id.stale == (stale != 0)))
            return true;
        if (now_ms() >= end)
            return false;
        sleep_ms(20);
    }
}

static mus_headend_status_t
status_of(size_t i)
{
    mus_headend_status_t st[MUS_MAP_MAX_HEADENDS];
    size_t n = mus_feed_status(feed, st, MUS_MAP_MAX_HEADENDS);

    cr_assert(i < n, "status of headend %zu: only %zu", i, n);
    return st[i];
}

/* Waits until status i satisfies pred; returns the last status seen. */
typedef bool (*status_pred)(const mus_headend_status_t *st, const void *arg);

static bool
wait_status(size_t i, status_pred pred, const void *arg, unsigned timeout_ms,
            mus_headend_status_t *last)
{
    uint64_t end = now_ms() + timeout_ms;

    for (;;) {
        *last = status_of(i);
        if (pred(last, arg))
            return true;
        if (now_ms() >= end)
            return false;
        sleep_ms(20);
    }
}

static bool
is_established(const mus_headend_status_t *st, const void *arg)
{
    (void)arg;
    return st->state == MUS_SESSION_ESTABLISHED;
}

static bool
is_down(const mus_headend_status_t *st, const void *arg)
{
    (void)arg;
    return st->state != MUS_SESSION_ESTABLISHED && st->last_error[0] != '\0';
}

static bool
error_contains(const mus_headend_status_t *st, const void *arg)
{
    return strstr(st->last_error, (const char *)arg) != NULL;
}

static bool
snapshots_at_least(const mus_headend_status_t *st, const void *arg)
{
    return st->state == MUS_SESSION_ESTABLISHED && st->snapshots >= *(const uint64_t *)arg;
}

static void
dump_status(const mus_headend_status_t *st)
{
    cr_log_info("%s: state %s addr %s attempts(last %lld next %lld) snaps %llu resumes %llu "
                "reconnects %llu events %llu epoch %s seq %llu entries %llu stale %llu err \"%s\"",
                st->name, mus_session_state_str(st->state), st->address,
                (long long)st->last_attempt, (long long)st->next_attempt,
                (unsigned long long)st->snapshots, (unsigned long long)st->resumes,
                (unsigned long long)st->reconnects, (unsigned long long)st->events_applied,
                st->epoch, (unsigned long long)st->seq, (unsigned long long)st->entries,
                (unsigned long long)st->stale_entries, st->last_error);
}

static char *
headend_logs(void)
{
    static char buf[16384];
    size_t off = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n_procs && off < sizeof(buf); i++) {
        char *t = read_file(procs[i].log);
        size_t len = strlen(t);
        if (len > 4000) {
            memmove(t, t + len - 4000, 4001);
        }
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "--- %s ---\n%s", procs[i].name, t);
        free(t);
    }
    return buf;
}

#define ASSERT_STATUS(i, pred, arg, ms)                                                      \
    do {                                                                                     \
        mus_headend_status_t st_;                                                            \
        bool ok_ = wait_status((i), (pred), (arg), (ms), &st_);                              \
        if (!ok_)                                                                            \
            dump_status(&st_);                                                               \
        cr_assert(ok_, "headend %zu: %s not reached in %u ms (state %s, error \"%s\")\n%s",   \
                  (size_t)(i), #pred, (unsigned)(ms), mus_session_state_str(st_.state),      \
                  st_.last_error, headend_logs());                                           \
    } while (0)

/* ---- fixture ---- */

static void
setup(void)
{
    char tmpl[] = "/tmp/mus-feed-XXXXXX";

    log_set_level(getenv("MUS_FEED_DEBUG") != NULL ? LOG_LVL_DEBUG : LOG_LVL_WARN);
    cr_assert(mkdtemp(tmpl) != NULL);
    snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
    make_pki();
    write_password("headend.secret", PASSWORD);
    write_password("proxy.secret", PASSWORD);
    write_password("wrong.secret", "not the password");
    map = mus_map_new();
    cr_assert(map != NULL);
    reader = mus_map_reader_register(map);
    cr_assert(reader != NULL);
}

static void
teardown(void)
{
    mus_feed_stop(feed);
    mus_feed_free(feed);
    feed = NULL;
    for (size_t i = 0; i < n_procs; i++)
        headend_kill(&procs[i], SIGTERM);
    if (reader != NULL)
        mus_map_reader_unregister(reader);
    reader = NULL;
    mus_map_free(map);
    map = NULL;
    if (tmpdir[0] != '\0' && getenv("MUS_FEED_KEEP_TMP") == NULL) {
        char cmd[400];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
        if (system(cmd) != 0)
            fprintf(stderr, "cannot remove %s\n", tmpdir);
    }
}

TestSuite(mus_feed, .init = setup, .fini = teardown, .timeout = 90);

/* Writes sessions file of headend idx (before it starts). */
static void
sessions_file(size_t idx, const char *const *lines, size_t n)
{
    char path[512], buf[8192] = "";
    size_t off = 0;

    pathf(path, sizeof(path), "he%zu.sessions", idx + 1);
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s\n", lines[i]);
    write_file(path, buf, 0644);
}

static void
two_sessions_file(size_t idx, const char *u1, const char *ip1, const char *ip6,
                  const char *u2, const char *ip2)
{
    char a[1024], b[1024];
    const char *lines[2] = {a, b};
    char sid1[64], sid2[64];

    snprintf(sid1, sizeof(sid1), "%s-1", u1);
    snprintf(sid2, sizeof(sid2), "%s-2", u2);
    session_json(a, sizeof(a), sid1, u1, ip1, ip6);
    session_json(b, sizeof(b), sid2, u2, ip2, NULL);
    sessions_file(idx, lines, 2);
}

/* ---- tests ---- */

Test(mus_feed, snapshot_then_live_events)
{
    mus_feed_config_t cfg;
    he_opts_t o = {.ca = "ca.pem"};
    headend_proc_t *he;
    mus_identity_t id;
    mus_headend_status_t st;
    char line[2048], s[1024];
    uint64_t t0;

    two_sessions_file(0, "alice@corp.example", "10.10.0.5", "fd00::5", "bob", "10.10.0.6");
    he = headend_start(0, false);
    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "asa-1", &he->port, 1, &o);
    cfg.n_headends = 1;
    feed_start(&cfg);

    ASSERT_STATUS(0, is_established, NULL, 10000);
    cr_assert(wait_lookup("10.10.0.5", "alice@corp.example", 0, 2000));
    cr_assert(lookup("fd00::5", &id));
    cr_expect_str_eq(id.s.name, "alice@corp.example");
    cr_expect_str_eq(id.s.domain, "CORP");
    cr_expect_str_eq(id.headend, "asa-1");
    cr_expect_eq(id.s.type, MUS_ID_USER);
    cr_expect_not(id.stale);
    cr_assert(lookup("10.10.0.6", &id));
    cr_expect_str_eq(id.s.name, "bob");
    cr_expect_not(lookup("10.10.0.7", &id));
    st = status_of(0);
    cr_expect_eq(st.snapshots, 1);
    cr_expect_str_eq(st.name, "asa-1");
    cr_expect_neq(st.epoch[0], '\0');
    cr_expect_neq(st.connected_since, 0);
    cr_expect_str_eq(st.last_error, "");

    /* live add through the headend's local feed: visible within 1 s */
    session_json(s, sizeof(s), "carol-1", "carol", "10.10.0.9", NULL);
    snprintf(line, sizeof(line), "{\"op\":\"connect\",\"s\":%s}", s);
    t0 = now_ms();
    headend_feed(he, line);
    cr_assert(wait_lookup("10.10.0.9", "carol", 0, 1000), "live add not visible within 1 s");
    cr_log_info("live add visible after %llu ms", (unsigned long long)(now_ms() - t0));

    /* live delete */
    headend_feed(he, "{\"op\":\"disconnect\",\"sid\":\"carol-1\",\"reason\":\"logout\"}");
    cr_assert(wait_lookup("10.10.0.9", NULL, -1, 1000), "live del not applied within 1 s");
    cr_assert(lookup("10.10.0.5", &id), "unrelated entry lost");

    st = status_of(0);
    cr_expect_geq(st.events_applied, 2);
    cr_expect_geq(st.seq, 2);
    cr_expect_eq(st.entries, 3);
    cr_expect_eq(st.state, MUS_SESSION_ESTABLISHED);
}

Test(mus_feed, headend_restart_stale_then_new_epoch_snapshot)
{
    mus_feed_config_t cfg;
    he_opts_t o = {.ca = "ca.pem"};
    headend_proc_t *he;
    mus_headend_status_t st, st2;
    mus_identity_t id;
    uint64_t two = 2, t_killed;
    char epoch1[64];

    two_sessions_file(0, "alice", "10.20.0.5", NULL, "bob", "10.20.0.6");
    he = headend_start(0, false);
    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "asa-1", &he->port, 1, &o);
    cfg.n_headends = 1;
    feed_start(&cfg);
    ASSERT_STATUS(0, is_established, NULL, 10000);
    cr_assert(wait_lookup("10.20.0.5", "alice", 0, 2000));
    st = status_of(0);
    snprintf(epoch1, sizeof(epoch1), "%s", st.epoch);

    /* killed: entries stay, marked stale; the status says why */
    headend_kill(he, SIGKILL);
    t_killed = now_ms();
    cr_assert(wait_lookup("10.20.0.5", "alice", 1, 3000), "entries not stale after the kill");
    cr_assert(lookup("10.20.0.6", &id) && id.stale);
    /* the map and the status are updated one after the other */
    ASSERT_STATUS(0, is_down, NULL, 2000);
    st = status_of(0);
    cr_expect_neq(st.last_error[0], '\0');
    cr_expect_eq(st.connected_since, 0);
    cr_log_info("after the kill: %s", st.last_error);
    sleep_ms(1200); /* counters are refreshed every second */
    st = status_of(0);
    cr_expect_eq(st.entries, 2);
    cr_expect_eq(st.stale_entries, 2);

    /* restarted with other sessions: new epoch, full snapshot after
     * reconnect_interval; bob is gone, carol is new */
    two_sessions_file(0, "alice", "10.20.0.5", NULL, "carol", "10.20.0.7");
    headend_start(0, false);
    ASSERT_STATUS(0, snapshots_at_least, &two, 10000);
    cr_expect_geq(now_ms() - t_killed, RECONNECT_MS - 200, "reconnected before reconnect_interval");
    st2 = status_of(0);
    cr_expect_str_neq(st2.epoch, epoch1, "same epoch after a restart");
    cr_expect_eq(st2.reconnects, 1);
    cr_expect_eq(st2.snapshots, 2);
    cr_assert(wait_lookup("10.20.0.5", "alice", 0, 1000), "alice not fresh again");
    cr_assert(wait_lookup("10.20.0.7", "carol", 0, 1000));
    cr_assert(wait_lookup("10.20.0.6", NULL, -1, 1000), "bob survived a snapshot without him");
    cr_expect_eq(st2.stale_entries, 0);
}

Test(mus_feed, grace_zero_drops_at_once)
{
    mus_feed_config_t cfg;
    he_opts_t o = {.ca = "ca.pem"};
    headend_proc_t *he;

    two_sessions_file(0, "alice", "10.21.0.5", NULL, "bob", "10.21.0.6");
    he = headend_start(0, false);
    feed_config_init(&cfg);
    cfg.grace_ms = 0;
    headend_config(&cfg.headends[0], "asa-1", &he->port, 1, &o);
    cfg.n_headends = 1;
    feed_start(&cfg);
    ASSERT_STATUS(0, is_established, NULL, 10000);
    cr_assert(wait_lookup("10.21.0.5", "alice", 0, 2000));
    headend_kill(he, SIGTERM);
    cr_assert(wait_lookup("10.21.0.5", NULL, -1, 3000), "entries kept with grace 0");
}

Test(mus_feed, wrong_password_is_reported_and_retried)
{
    mus_feed_config_t cfg;
    he_opts_t o = {.ca = "ca.pem", .password = "wrong.secret"};
    headend_proc_t *he;
    mus_headend_status_t st, st2;
    mus_identity_t id;

    two_sessions_file(0, "alice", "10.30.0.5", NULL, "bob", "10.30.0.6");
    he = headend_start(0, false);
    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "asa-1", &he->port, 1, &o);
    cfg.n_headends = 1;
    feed_start(&cfg);
    ASSERT_STATUS(0, error_contains, "authentication", 10000);
    st = status_of(0);
    cr_log_info("wrong password: %s", st.last_error);
    cr_expect_neq(st.state, MUS_SESSION_ESTABLISHED);
    cr_expect_not(lookup("10.30.0.5", &id));
    /* it retries after reconnect_interval */
    {
        uint64_t end = now_ms() + 3 * RECONNECT_MS + 2000;
        do {
            sleep_ms(100);
            st2 = status_of(0);
        } while (st2.last_attempt <= st.last_attempt && now_ms() < end);
    }
    cr_expect_gt(st2.last_attempt, st.last_attempt, "no second attempt");
    cr_expect(strstr(st2.last_error, "authentication") != NULL, "%s", st2.last_error);

    /* fixing the password file is enough: it is read at each attempt */
    write_password("wrong.secret", PASSWORD);
    ASSERT_STATUS(0, is_established, NULL, 3 * RECONNECT_MS + 5000);
    cr_assert(wait_lookup("10.30.0.5", "alice", 0, 2000));
}

Test(mus_feed, untrusted_ca_names_the_verification_failure)
{
    mus_feed_config_t cfg;
    he_opts_t o = {.ca = "other-ca.pem"};
    headend_proc_t *he;
    mus_headend_status_t st;

    he = headend_start(0, false);
    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "asa-1", &he->port, 1, &o);
    cfg.n_headends = 1;
    feed_start(&cfg);
    ASSERT_STATUS(0, error_contains, "certificate verification failed", 10000);
    st = status_of(0);
    cr_log_info("untrusted CA: %s", st.last_error);
    cr_expect(strstr(st.last_error, "local issuer") != NULL, "reason not named: %s",
              st.last_error);
    cr_expect_neq(st.state, MUS_SESSION_ESTABLISHED);
}

Test(mus_feed, wrong_certificate_name_is_refused)
{
    mus_feed_config_t cfg;
    he_opts_t o = {.ca = "ca.pem", .cert_name = "other.test"};
    headend_proc_t *he;
    mus_headend_status_t st;

    he = headend_start(0, false);
    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "asa-1", &he->port, 1, &o);
    cfg.n_headends = 1;
    feed_start(&cfg);
    ASSERT_STATUS(0, error_contains, "hostname mismatch", 10000);
    st = status_of(0);
    cr_log_info("wrong name: %s", st.last_error);
}

Test(mus_feed, ip_as_certificate_name)
{
    mus_feed_config_t cfg;
    he_opts_t o = {.ca = "ca.pem", .cert_name = "127.0.0.1"};
    headend_proc_t *he;

    two_sessions_file(0, "alice", "10.31.0.5", NULL, "bob", "10.31.0.6");
    he = headend_start(0, false);
    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "asa-1", &he->port, 1, &o);
    cfg.n_headends = 1;
    feed_start(&cfg);
    ASSERT_STATUS(0, is_established, NULL, 10000);
    cr_assert(wait_lookup("10.31.0.5", "alice", 0, 2000));
}

Test(mus_feed, pin_match_and_mismatch)
{
    mus_feed_config_t cfg;
    char good[65], bad[65];
    he_opts_t ok = {.pin = good}, ko = {.pin = bad};
    headend_proc_t *he;
    mus_headend_status_t st;

    spki_pin("headend.pem", good);
    spki_pin("other-ca.pem", bad);
    two_sessions_file(0, "alice", "10.40.0.5", NULL, "bob", "10.40.0.6");
    he = headend_start(0, false);
    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "pinned", &he->port, 1, &ok);
    headend_config(&cfg.headends[1], "mispinned", &he->port, 1, &ko);
    cfg.n_headends = 2;
    feed_start(&cfg);
    ASSERT_STATUS(0, is_established, NULL, 10000);
    ASSERT_STATUS(1, error_contains, "certificate pin mismatch", 10000);
    st = status_of(1);
    cr_log_info("pin mismatch: %s", st.last_error);
    cr_expect_neq(st.state, MUS_SESSION_ESTABLISHED);
    cr_assert(wait_lookup("10.40.0.5", "alice", 0, 2000));
}

Test(mus_feed, config_without_ca_or_pin_is_refused)
{
    mus_feed_config_t cfg;
    he_opts_t o = {0};
    int port = 1;
    char err[256] = "";

    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "asa-1", &port, 1, &o);
    cfg.n_headends = 1;
    cr_assert_null(mus_feed_new(map, &cfg, err, sizeof(err)));
    cr_expect(strstr(err, "asa-1") != NULL, "%s", err);
    cr_log_info("no CA/pin: %s", err);
}

Test(mus_feed, two_headends_merged)
{
    mus_feed_config_t cfg;
    he_opts_t o = {.ca = "ca.pem"};
    headend_proc_t *a, *b;
    mus_identity_t id;
    char line[2048], s[1024];

    two_sessions_file(0, "alice", "10.50.0.5", NULL, "bob", "10.50.0.6");
    two_sessions_file(1, "carol", "10.50.1.5", NULL, "dave", "10.50.1.6");
    a = headend_start(0, false);
    b = headend_start(1, false);
    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "asa-a", &a->port, 1, &o);
    headend_config(&cfg.headends[1], "asa-b", &b->port, 1, &o);
    cfg.n_headends = 2;
    feed_start(&cfg);
    ASSERT_STATUS(0, is_established, NULL, 10000);
    ASSERT_STATUS(1, is_established, NULL, 10000);
    cr_assert(wait_lookup("10.50.0.5", "alice", 0, 2000));
    cr_assert(wait_lookup("10.50.1.6", "dave", 0, 2000));
    cr_assert(lookup("10.50.0.6", &id));
    cr_expect_str_eq(id.headend, "asa-a");
    cr_assert(lookup("10.50.1.5", &id));
    cr_expect_str_eq(id.headend, "asa-b");

    session_json(s, sizeof(s), "erin-1", "erin", "10.50.1.9", NULL);
    snprintf(line, sizeof(line), "{\"op\":\"connect\",\"s\":%s}", s);
    headend_feed(b, line);
    cr_assert(wait_lookup("10.50.1.9", "erin", 0, 1000));

    /* one goes down: only its entries become stale */
    headend_kill(a, SIGKILL);
    cr_assert(wait_lookup("10.50.0.5", "alice", 1, 3000));
    cr_assert(lookup("10.50.1.5", &id));
    cr_expect_not(id.stale, "the other headend's entries went stale");
    cr_expect_eq(status_of(1).state, MUS_SESSION_ESTABLISHED);

    /* reconfigure: asa-a removed -> its entries are dropped; asa-b untouched */
    {
        mus_headend_status_t before = status_of(1), after;
        mus_feed_config_t cfg2;
        feed_config_init(&cfg2);
        cfg2.headends[0] = cfg.headends[1];
        cfg2.n_headends = 1;
        mus_feed_reconfigure(feed, &cfg2);
        cr_assert(wait_lookup("10.50.0.5", NULL, -1, 2000), "removed headend's entries kept");
        sleep_ms(300);
        after = status_of(0);
        cr_expect_str_eq(after.name, "asa-b");
        cr_expect_eq(after.state, MUS_SESSION_ESTABLISHED);
        cr_expect_eq(after.connected_since, before.connected_since, "asa-b was reconnected");
        cr_assert(lookup("10.50.1.9", &id) && !id.stale);
    }
}

Test(mus_feed, standby_answers_503_next_address_used)
{
    mus_feed_config_t cfg;
    he_opts_t o = {.ca = "ca.pem"};
    headend_proc_t *sb, *act;
    mus_headend_status_t st;
    int ports[2];
    char want[64];

    two_sessions_file(0, "ghost", "10.60.0.5", NULL, "ghost2", "10.60.0.6");
    two_sessions_file(1, "alice", "10.60.1.5", NULL, "bob", "10.60.1.6");
    sb = headend_start(0, true);
    act = headend_start(1, false);
    ports[0] = sb->port;
    ports[1] = act->port;
    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "asa-pair", ports, 2, &o);
    cfg.n_headends = 1;
    feed_start(&cfg);
    ASSERT_STATUS(0, is_established, NULL, 10000);
    st = status_of(0);
    snprintf(want, sizeof(want), "127.0.0.1:%d", act->port);
    cr_expect_str_eq(st.address, want);
    cr_assert(wait_lookup("10.60.1.5", "alice", 0, 2000));
    cr_expect(!wait_lookup("10.60.0.5", "ghost", -1, 100), "standby's sessions applied");
}

static bool
resumed_once(const mus_headend_status_t *st, const void *arg)
{
    (void)arg;
    return st->state == MUS_SESSION_ESTABLISHED && st->resumes >= 1;
}

/* A changed configuration closes the session; the new one resumes from the
 * old position (same epoch): the events it missed are replayed, no snapshot. */
Test(mus_feed, reconfigured_session_resumes_and_replays)
{
    mus_feed_config_t cfg, bad;
    he_opts_t o = {.ca = "ca.pem"}, ow = {.ca = "ca.pem", .password = "wrong.secret"};
    headend_proc_t *he;
    mus_headend_status_t st, st2;
    mus_identity_t id;
    char line[2048], s[1024];

    two_sessions_file(0, "alice", "10.70.0.5", NULL, "bob", "10.70.0.6");
    he = headend_start(0, false);
    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "asa-1", &he->port, 1, &o);
    cfg.n_headends = 1;
    feed_start(&cfg);
    ASSERT_STATUS(0, is_established, NULL, 10000);
    cr_assert(wait_lookup("10.70.0.5", "alice", 0, 2000));
    st = status_of(0);

    /* a changed password file: the session is replaced and fails to
     * authenticate; the entries stay (stale) */
    feed_config_init(&bad);
    headend_config(&bad.headends[0], "asa-1", &he->port, 1, &ow);
    bad.n_headends = 1;
    mus_feed_reconfigure(feed, &bad);
    ASSERT_STATUS(0, error_contains, "authentication", 5000);
    cr_assert(wait_lookup("10.70.0.5", "alice", 1, 2000), "entries not stale while down");

    /* meanwhile the headend changes: carol arrives, bob leaves */
    session_json(s, sizeof(s), "carol-1", "carol", "10.70.0.9", NULL);
    snprintf(line, sizeof(line), "{\"op\":\"connect\",\"s\":%s}", s);
    headend_feed(he, line);
    headend_feed(he, "{\"op\":\"disconnect\",\"sid\":\"bob-2\",\"reason\":\"logout\"}");
    sleep_ms(200);

    /* back to the right configuration: resume, replay, no new snapshot */
    mus_feed_reconfigure(feed, &cfg);
    ASSERT_STATUS(0, resumed_once, NULL, 5000);
    cr_assert(wait_lookup("10.70.0.9", "carol", 0, 2000), "missed add not replayed");
    cr_assert(wait_lookup("10.70.0.6", NULL, -1, 2000), "missed del not replayed");
    cr_assert(lookup("10.70.0.5", &id) && !id.stale);
    st2 = status_of(0);
    cr_expect_eq(st2.snapshots, 1, "a snapshot instead of a resume");
    cr_expect_str_eq(st2.epoch, st.epoch);
    cr_expect_geq(st2.seq, st.seq + 2);
    cr_expect_eq(st2.reconnects, 1);
    cr_expect_str_eq(st2.last_error, "");
}

/* ---- a scripted headend in the test thread, for what the real one never
 * does (bad MACs, sequence gaps, unknown frames, over-long lines) ---- */

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../../mus/proto.h"

typedef struct fake {
    int lfd, port;
    SSL_CTX *ctx;
    int fd;
    SSL *ssl;
    char in[MUS_FRAME_MAX + 4096];
    size_t in_len;
    uint8_t key[MUS_KEY_LEN], salt[16], nonce[MUS_NONCE_LEN];
} fake_t;

static fake_t *
fake_new(void)
{
    fake_t *f = calloc(1, sizeof(*f));
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    char cert[512], key[512];

    cr_assert(f != NULL);
    f->fd = -1;
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert(bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    cr_assert(listen(f->lfd, 8) == 0);
    cr_assert(getsockname(f->lfd, (struct sockaddr *)&sin, &sl) == 0);
    f->port = ntohs(sin.sin_port);
    f->ctx = SSL_CTX_new(TLS_server_method());
    pathf(cert, sizeof(cert), "headend.pem");
    pathf(key, sizeof(key), "headend.key");
    cr_assert(SSL_CTX_use_certificate_chain_file(f->ctx, cert) == 1);
    cr_assert(SSL_CTX_use_PrivateKey_file(f->ctx, key, SSL_FILETYPE_PEM) == 1);
    memset(f->salt, 0x5a, sizeof(f->salt));
    cr_assert(mus_auth_derive(PASSWORD, strlen(PASSWORD), f->salt, sizeof(f->salt),
                              MUS_KDF_ITER_MIN, f->key) == 0);
    return f;
}

static void
fake_close(fake_t *f)
{
    if (f->ssl != NULL)
        SSL_free(f->ssl);
    if (f->fd >= 0)
        close(f->fd);
    f->ssl = NULL;
    f->fd = -1;
    f->in_len = 0;
}

static void
fake_free(fake_t *f)
{
    fake_close(f);
    close(f->lfd);
    SSL_CTX_free(f->ctx);
    free(f);
}

/* Accepts the next connection and does the TLS handshake (blocking, 10 s). */
static void
fake_accept(fake_t *f)
{
    struct timeval tv = {.tv_sec = 10};

    fake_close(f);
    setsockopt(f->lfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (reader != NULL)
        mus_map_reader_offline(reader);
    f->fd = accept4(f->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (reader != NULL)
        mus_map_reader_online(reader);
    cr_assert(f->fd >= 0, "no connection from the feed: %s", strerror(errno));
    setsockopt(f->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    f->ssl = SSL_new(f->ctx);
    SSL_set_fd(f->ssl, f->fd);
    cr_assert(SSL_accept(f->ssl) == 1, "fake headend: TLS handshake failed");
}

static void
fake_send(fake_t *f, const char *data, size_t len)
{
    cr_assert(SSL_write(f->ssl, data, (int)len) == (int)len);
}

static void
fake_send_frame(fake_t *f, const mus_frame_t *fr)
{
    char buf[MUS_FRAME_MAX + 2];
    int n = mus_frame_format(fr, buf, sizeof(buf));

    cr_assert(n > 0);
    fake_send(f, buf, (size_t)n);
}

/* One line (without '\n') into out; false on EOF/timeout. */
static bool
fake_read_line(fake_t *f, char *out, size_t cap)
{
    for (;;) {
        char *nl = memchr(f->in, '\n', f->in_len);
        int n;
        if (nl != NULL) {
            size_t len = (size_t)(nl - f->in);
            cr_assert(len < cap);
            memcpy(out, f->in, len);
            out[len] = '\0';
            memmove(f->in, nl + 1, f->in_len - len - 1);
            f->in_len -= len + 1;
            return true;
        }
        cr_assert(f->in_len < sizeof(f->in));
        n = SSL_read(f->ssl, f->in + f->in_len, (int)(sizeof(f->in) - f->in_len));
        if (n <= 0)
            return false;
        f->in_len += (size_t)n;
    }
}

static void
fake_read_frame(fake_t *f, mus_frame_t *fr)
{
    char line[MUS_FRAME_MAX + 1], err[128];

    cr_assert(fake_read_line(f, line, sizeof(line)), "fake headend: no frame from the feed");
    cr_assert(mus_frame_parse(line, strlen(line), fr, err, sizeof(err)) == 0,
              "fake headend: bad frame from the feed: %s: %s", err, line);
}

/* Reads frames until one of type t (acks and pongs in between are skipped,
 * pings answered, as a headend does). */
static void
fake_expect(fake_t *f, enum mus_frame_type t, mus_frame_t *fr)
{
    for (;;) {
        fake_read_frame(f, fr);
        if (fr->type == MUS_F_PING)
            fake_send(f, "{\"t\":\"pong\"}\n", 13);
        if (fr->type == t)
            return;
        cr_assert(fr->type == MUS_F_ACK || fr->type == MUS_F_PONG || fr->type == MUS_F_PING,
                  "fake headend: expected %s, got %s", mus_frame_type_str(t),
                  mus_frame_type_str(fr->type));
    }
}

/* The Upgrade request; answers with status (101 + hello when 101). */
static void
fake_upgrade(fake_t *f, int status, uint32_t iter)
{
    char line[4096];
    bool get = false, upgrade = false, host = false;
    mus_frame_t h = {.type = MUS_F_HELLO};

    while (fake_read_line(f, line, sizeof(line))) {
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        if (len == 0)
            break;
        get |= strcmp(line, "GET /mus/v1 HTTP/1.1") == 0;
        upgrade |= strcasecmp(line, "Upgrade: mus/1") == 0;
        host |= strcasecmp(line, "Host: headend.test") == 0;
    }
    cr_assert(get && upgrade && host, "bad Upgrade request");
    if (status != 101) {
        snprintf(line, sizeof(line), "HTTP/1.1 %d No\r\nContent-Length: 0\r\n\r\n", status);
        fake_send(f, line, strlen(line));
        return;
    }
    snprintf(line, sizeof(line),
             "HTTP/1.1 101 Switching Protocols\r\nUpgrade: mus/1\r\nConnection: Upgrade\r\n\r\n");
    fake_send(f, line, strlen(line));
    snprintf(h.server_id, sizeof(h.server_id), "fake");
    snprintf(h.epoch, sizeof(h.epoch), "e-fake-1");
    memset(f->nonce, 0x11, sizeof(f->nonce));
    memcpy(h.nonce, f->nonce, sizeof(h.nonce));
    snprintf(h.kdf_alg, sizeof(h.kdf_alg), "pbkdf2-sha256");
    h.kdf_iter = iter;
    memcpy(h.salt, f->salt, sizeof(f->salt));
    h.salt_len = sizeof(f->salt);
    fake_send_frame(f, &h);
}

/* Reads auth, checks the proxy's MAC, answers auth_ok (with a bad MAC if asked). */
static void
fake_auth(fake_t *f, bool bad_mac)
{
    mus_frame_t a, ok = {.type = MUS_F_AUTH_OK};
    uint8_t cb[MUS_CB_LEN], mac[MUS_MAC_LEN];

    fake_expect(f, MUS_F_AUTH, &a);
    cr_assert(mus_tls_channel_binding(f->ssl, cb) == 0);
    mus_auth_client_mac(f->key, f->nonce, a.cnonce, "fake", a.client_id, cb, mac);
    cr_assert(mus_auth_mac_equal(mac, a.mac), "the feed's auth MAC is wrong");
    cr_expect_str_eq(a.client_id, "proxy-test");
    mus_auth_server_mac(f->key, f->nonce, a.cnonce, "fake", a.client_id, cb, ok.mac);
    if (bad_mac)
        ok.mac[0] ^= 1;
    fake_send_frame(f, &ok);
}

static void
fake_feed_start(fake_t *f)
{
    mus_feed_config_t cfg;
    he_opts_t o = {.ca = "ca.pem"};

    feed_config_init(&cfg);
    headend_config(&cfg.headends[0], "fake", &f->port, 1, &o);
    cfg.n_headends = 1;
    feed_start(&cfg);
}

static void
fake_event(fake_t *f, enum mus_frame_type t, uint64_t seq, const char *sid, const char *user,
           const char *ip)
{
    mus_frame_t e = {.type = t, .seq = seq, .n_ips = 1};

    snprintf(e.session.sid, sizeof(e.session.sid), "%s", sid);
    snprintf(e.session.name, sizeof(e.session.name), "%s", user);
    e.session.type = MUS_ID_USER;
    e.session.started = 1700000000 + (int64_t)seq;
    cr_assert(mus_addr_parse(ip, &e.ips[0]) == 0);
    if (t == MUS_F_DEL)
        snprintf(e.reason, sizeof(e.reason), "logout");
    fake_send_frame(f, &e);
}

Test(mus_feed, fake_bad_server_mac_is_refused)
{
    fake_t *f = fake_new();

    fake_feed_start(f);
    fake_accept(f);
    fake_upgrade(f, 101, MUS_KDF_ITER_MIN);
    fake_auth(f, true);
    ASSERT_STATUS(0, error_contains, "headend failed to authenticate", 5000);
    fake_free(f);
}

Test(mus_feed, fake_403_and_kdf_out_of_range)
{
    fake_t *f = fake_new();

    fake_feed_start(f);
    fake_accept(f);
    fake_upgrade(f, 403, 0);
    ASSERT_STATUS(0, error_contains, "refused by headend (403)", 5000);
    /* next attempt after reconnect_interval: a hello asking for too few iterations */
    fake_accept(f);
    fake_upgrade(f, 101, MUS_KDF_ITER_MIN - 1);
    ASSERT_STATUS(0, error_contains, "iter", 5000);
    fake_free(f);
}

Test(mus_feed, fake_unknown_frames_gaps_acks_and_long_lines)
{
    fake_t *f = fake_new();
    mus_frame_t fr, sb = {.type = MUS_F_SNAP_BEGIN, .seq = 5, .count = 1};
    mus_frame_t se = {.type = MUS_F_SNAP_END, .seq = 5};
    mus_identity_t id;
    char *big;
    uint64_t end;

    fake_feed_start(f);
    fake_accept(f);
    fake_upgrade(f, 101, MUS_KDF_ITER_MIN);
    fake_auth(f, false);
    fake_expect(f, MUS_F_SUBSCRIBE, &fr);
    cr_expect_not(fr.has_epoch, "first contact must subscribe without an epoch");
    snprintf(sb.epoch, sizeof(sb.epoch), "e-fake-1");
    fake_send_frame(f, &sb);
    fake_event(f, MUS_F_SNAP, 0, "s1", "alice", "10.80.0.1");
    fake_send_frame(f, &se);
    cr_assert(wait_lookup("10.80.0.1", "alice", 0, 2000));
    ASSERT_STATUS(0, is_established, NULL, 2000);

    /* an unknown frame type: answered with an error frame, then ignored */
    fake_send(f, "{\"t\":\"bogus\",\"x\":1}\n", 20);
    fake_expect(f, MUS_F_ERROR, &fr);
    cr_expect(strstr(fr.message, "bogus") != NULL, "%s", fr.message);
    /* a ping is answered */
    fake_send(f, "{\"t\":\"ping\"}\n", 13);
    fake_expect(f, MUS_F_PONG, &fr);

    /* in sequence: applied, then acked within a second or so */
    fake_event(f, MUS_F_ADD, 6, "s2", "bob", "10.80.0.2");
    cr_assert(wait_lookup("10.80.0.2", "bob", 0, 1000));
    end = now_ms() + 2500;
    do {
        fake_read_frame(f, &fr);
    } while (!(fr.type == MUS_F_ACK && fr.seq == 6) && now_ms() < end);
    cr_assert(fr.type == MUS_F_ACK && fr.seq == 6, "no ack of seq 6");

    /* a gap (8 after 6): not applied; the feed subscribes again from 6 */
    fake_event(f, MUS_F_ADD, 8, "s4", "dave", "10.80.0.4");
    fake_expect(f, MUS_F_SUBSCRIBE, &fr);
    cr_assert(fr.has_epoch && fr.has_seq);
    cr_expect_str_eq(fr.epoch, "e-fake-1");
    cr_expect_eq(fr.seq, 6);
    cr_expect_not(lookup("10.80.0.4", &id), "an event after a gap was applied");
    /* the replay from 7 on, and a duplicate that must be ignored */
    fake_event(f, MUS_F_ADD, 7, "s3", "carol", "10.80.0.3");
    fake_event(f, MUS_F_ADD, 8, "s4", "dave", "10.80.0.4");
    fake_event(f, MUS_F_DEL, 8, "s1", "alice", "10.80.0.1");
    fake_expect(f, MUS_F_PING, &fr);   /* the feed's barrier after subscribe */
    cr_assert(wait_lookup("10.80.0.4", "dave", 0, 1000));
    cr_assert(wait_lookup("10.80.0.3", "carol", 0, 1000));
    cr_assert(lookup("10.80.0.1", &id), "a duplicate seq was applied");
    ASSERT_STATUS(0, is_established, NULL, 2000);
    cr_expect_eq(status_of(0).seq, 8);

    /* a line longer than MUS_FRAME_MAX: protocol error, session closed */
    big = malloc(MUS_FRAME_MAX + 100);
    memset(big, 'x', MUS_FRAME_MAX + 100);
    fake_send(f, big, MUS_FRAME_MAX + 100);
    free(big);
    ASSERT_STATUS(0, error_contains, "longer than", 5000);
    cr_assert(wait_lookup("10.80.0.3", "carol", 1, 1000), "entries not stale after the error");

    /* the reconnect resumes from (e-fake-1, 8) */
    fake_accept(f);
    fake_upgrade(f, 101, MUS_KDF_ITER_MIN);
    fake_auth(f, false);
    fake_expect(f, MUS_F_SUBSCRIBE, &fr);
    cr_assert(fr.has_epoch && fr.has_seq);
    cr_expect_str_eq(fr.epoch, "e-fake-1");
    cr_expect_eq(fr.seq, 8);
    fake_expect(f, MUS_F_PING, &fr);
    cr_assert(wait_lookup("10.80.0.3", "carol", 0, 2000), "not fresh after the resume");
    ASSERT_STATUS(0, resumed_once, NULL, 2000);
    fake_free(f);
}

/* A headend that never answers the ping after a resuming subscribe: the
 * resume is still accepted (after SESSION_RESUME_WAIT_MS), entries fresh. */
Test(mus_feed, fake_resume_without_pong)
{
    fake_t *f = fake_new();
    mus_frame_t fr, sb = {.type = MUS_F_SNAP_BEGIN, .seq = 3, .count = 1};
    mus_frame_t se = {.type = MUS_F_SNAP_END, .seq = 3};

    fake_feed_start(f);
    fake_accept(f);
    fake_upgrade(f, 101, MUS_KDF_ITER_MIN);
    fake_auth(f, false);
    fake_expect(f, MUS_F_SUBSCRIBE, &fr);
    snprintf(sb.epoch, sizeof(sb.epoch), "e-fake-2");
    fake_send_frame(f, &sb);
    fake_event(f, MUS_F_SNAP, 0, "s1", "alice", "10.81.0.1");
    fake_send_frame(f, &se);
    cr_assert(wait_lookup("10.81.0.1", "alice", 0, 2000));
    fake_close(f);
    cr_assert(wait_lookup("10.81.0.1", "alice", 1, 2000));

    fake_accept(f);
    fake_upgrade(f, 101, MUS_KDF_ITER_MIN);
    fake_auth(f, false);
    fake_read_frame(f, &fr);
    cr_assert_eq(fr.type, MUS_F_SUBSCRIBE);
    cr_assert(fr.has_epoch && fr.seq == 3);
    /* no pong, no events */
    cr_assert(wait_lookup("10.81.0.1", "alice", 0, 5000), "resume never accepted");
    ASSERT_STATUS(0, resumed_once, NULL, 1000);
    fake_free(f);
}
