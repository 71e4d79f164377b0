/*
 * tests/integration/test_headend.c: the real mus-headend over real sockets,
 * driven by a small blocking OpenSSL MUS/1 client written here (independent
 * of mus/client.c): upgrade, auth (right and wrong password), snapshot of a
 * sessions file, live add/del through `musctl notify`, resume with the same
 * epoch (only the missed events), standby 503, unknown frame -> error.
 * Certificates come from the openssl CLI in a temporary directory.
 * Environment: HEADEND_BIN, MUSCTL_BIN (tests/meson.build).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "../../mus/proto.h"

static char dir[64];
static int port;
static pid_t he_pid;

static void pathf(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

static void write_file(const char *name, const char *data, mode_t mode)
{
    char p[256];
    pathf(p, sizeof(p), name);
    FILE *fp = fopen(p, "w");
    cr_assert_not_null(fp, "%s: %s", p, strerror(errno));
    fputs(data, fp);
    fclose(fp);
    chmod(p, mode);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int tcp_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

static void headend_start(bool standby)
{
    char cmd[1024];
    snprintf(dir, sizeof(dir), "/tmp/test-headend-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout %s/key.pem -out %s/cert.pem -days 2 -subj /CN=headend.test "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1", dir, dir);
    cr_assert_eq(system(cmd), 0, "openssl req failed");
    write_file("pw", "right-password\n", 0600);
    write_file("sessions",
               "{\"sid\":\"f1\",\"ips\":[\"10.9.0.1\"],\"id\":{\"type\":\"user\",\"name\":\"alice\"},"
               "\"groups\":[\"eng\"],\"started\":1763800000}\n"
               "{\"sid\":\"f2\",\"ips\":[\"10.9.0.2\",\"fd00::2\"],\"id\":{\"type\":\"machine\","
               "\"name\":\"PC2$\",\"domain\":\"CORP\"}}\n", 0644);
    port = 20000 + (int)(getpid() % 30000);
    he_pid = fork();
    cr_assert_geq(he_pid, 0);
    if (he_pid == 0) {
        char a[8][256], listen_arg[64];
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        pathf(a[0], 256, "cert.pem");
        pathf(a[1], 256, "key.pem");
        pathf(a[2], 256, "pw");
        pathf(a[3], 256, "sessions");
        pathf(a[4], 256, "feed.sock");
        pathf(a[5], 256, "headend.log");
        snprintf(listen_arg, sizeof(listen_arg), "127.0.0.1:%d", port);
        int fd = open(a[5], O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 2);
        execl(getenv("HEADEND_BIN"), "mus-headend", "--listen", listen_arg, "--cert", a[0],
              "--key", a[1], "--password-file", a[2], "--sessions", a[3], "--socket", a[4],
              "--server-id", "he-test", "--kdf-iter", "10000", "--journal", "100",
              "--log-level", "debug", standby ? "--standby" : NULL, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 600; i++) {   /* 15 s: sanitizer builds on a busy machine */
        int st;
        if (waitpid(he_pid, &st, WNOHANG) == he_pid) {
            he_pid = 0;
            break;
        }
        int fd = tcp_connect();
        if (fd >= 0) {
            close(fd);
            return;
        }
        sleep_ms(25);
    }
    char logp[256], logbuf[4096] = "";
    pathf(logp, sizeof(logp), "headend.log");
    FILE *fp = fopen(logp, "r");
    if (fp) {
        size_t n = fread(logbuf, 1, sizeof(logbuf) - 1, fp);
        logbuf[n] = '\0';
        fclose(fp);
    }
    cr_assert_fail("mus-headend does not listen on %d (%s):\n%s", port,
                   he_pid ? "still running" : "exited", logbuf);
}

static void headend_stop(void)
{
    if (he_pid > 0) {
        kill(he_pid, SIGTERM);
        waitpid(he_pid, NULL, 0);
    }
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

/* ---- a minimal blocking client ---- */

typedef struct cli {
    int fd;
    SSL_CTX *ctx;
    SSL *ssl;
    char buf[MUS_FRAME_MAX + 2];
    size_t len;
    mus_frame_t hello;
} cli_t;

static void cli_write(cli_t *c, const char *s)
{
    cr_assert_eq(SSL_write(c->ssl, s, (int)strlen(s)), (int)strlen(s));
}

/* Reads until buf holds the delimiter; returns the length including it, or 0 on EOF. */
static size_t cli_until(cli_t *c, const char *delim)
{
    for (;;) {
        char *p = memmem(c->buf, c->len, delim, strlen(delim));
        if (p)
            return (size_t)(p - c->buf) + strlen(delim);
        if (c->len >= sizeof(c->buf))
            return 0;
        int n = SSL_read(c->ssl, c->buf + c->len, (int)(sizeof(c->buf) - c->len));
        if (n <= 0)
            return 0;
        c->len += (size_t)n;
    }
}

static void cli_consume(cli_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Next frame; false on EOF. */
static bool cli_frame(cli_t *c, mus_frame_t *f)
{
    size_t n = cli_until(c, "\n");
    if (n == 0)
        return false;
    char err[128];
    cr_assert_eq(mus_frame_parse(c->buf, n - 1, f, err, sizeof(err)), 0, "%s: %.*s", err, (int)n,
                 c->buf);
    cli_consume(c, n);
    return true;
}

static void cli_send(cli_t *c, const mus_frame_t *f)
{
    char line[MUS_FRAME_MAX + 2];
    int n = mus_frame_format(f, line, sizeof(line) - 1);
    cr_assert_gt(n, 0);
    line[n] = '\0';
    cli_write(c, line);
}

/* TLS + upgrade; returns the HTTP status. On 101 the hello is in c->hello. */
static int cli_open(cli_t *c)
{
    char ca[256];
    memset(c, 0, sizeof(*c));
    c->fd = tcp_connect();
    cr_assert_geq(c->fd, 0);
    c->ctx = SSL_CTX_new(TLS_client_method());
    pathf(ca, sizeof(ca), "cert.pem");
    cr_assert_eq(SSL_CTX_load_verify_locations(c->ctx, ca, NULL), 1);
    SSL_CTX_set_verify(c->ctx, SSL_VERIFY_PEER, NULL);
    c->ssl = SSL_new(c->ctx);
    SSL_set_fd(c->ssl, c->fd);
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), "127.0.0.1");
    cr_assert_eq(SSL_connect(c->ssl), 1, "TLS handshake failed");
    cli_write(c, "GET /mus/v1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: mus/1\r\n"
                 "Connection: Upgrade\r\n\r\n");
    size_t n = cli_until(c, "\r\n\r\n");
    cr_assert_gt(n, 12, "no HTTP response");
    int status = atoi(c->buf + 9);
    cr_assert(strncmp(c->buf, "HTTP/1.1 ", 9) == 0);
    cli_consume(c, n);
    if (status == 101) {
        cr_assert(cli_frame(c, &c->hello));
        cr_assert_eq(c->hello.type, MUS_F_HELLO);
        cr_assert_str_eq(c->hello.server_id, "he-test");
        cr_assert_str_eq(c->hello.kdf_alg, "pbkdf2-sha256");
    }
    return status;
}

/* Sends the auth frame for password (a, k, cb: what the answer is checked with). */
static void cli_auth_send(cli_t *c, const char *password, mus_frame_t *a, uint8_t *k, uint8_t *cb)
{
    memset(a, 0, sizeof(*a));
    a->type = MUS_F_AUTH;
    strcpy(a->client_id, "proxy-t");
    cr_assert_eq(mus_random(a->cnonce, MUS_NONCE_LEN), 0);
    cr_assert_eq(mus_auth_derive(password, strlen(password), c->hello.salt, c->hello.salt_len,
                                 c->hello.kdf_iter, k), 0);
    cr_assert_eq(mus_tls_channel_binding(c->ssl, cb), 0);
    mus_auth_client_mac(k, c->hello.nonce, a->cnonce, c->hello.server_id, a->client_id, cb, a->mac);
    cli_send(c, a);
}

/* Authenticates; returns the answer type (auth_ok verified). */
static enum mus_frame_type cli_auth(cli_t *c, const char *password)
{
    uint8_t k[MUS_KEY_LEN], cb[MUS_CB_LEN], smac[MUS_MAC_LEN];
    mus_frame_t a, r;
    cli_auth_send(c, password, &a, k, cb);
    cr_assert(cli_frame(c, &r), "connection closed instead of an auth answer");
    if (r.type == MUS_F_AUTH_OK) {
        mus_auth_server_mac(k, c->hello.nonce, a.cnonce, c->hello.server_id, a.client_id, cb, smac);
        cr_assert(mus_auth_mac_equal(smac, r.mac), "server MAC does not verify");
    }
    return r.type;
}

static void cli_subscribe(cli_t *c, const char *epoch, bool has_seq, uint64_t seq)
{
    mus_frame_t f;
    memset(&f, 0, sizeof(f));
    f.type = MUS_F_SUBSCRIBE;
    if (epoch) {
        f.has_epoch = true;
        snprintf(f.epoch, sizeof(f.epoch), "%s", epoch);
    }
    f.has_seq = has_seq;
    f.seq = seq;
    cli_send(c, &f);
}

static void cli_close(cli_t *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
}

static void notify(const char *reason, const char *id, const char *user, const char *ip4,
                   const char *ip6)
{
    char sock[256];
    pathf(sock, sizeof(sock), "feed.sock");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        setenv("REASON", reason, 1);
        setenv("ID", id, 1);
        if (user)
            setenv("USERNAME", user, 1);
        setenv("GROUPNAME", "sales", 1);
        if (ip4)
            setenv("IP_REMOTE", ip4, 1);
        if (ip6)
            setenv("IPV6_REMOTE", ip6, 1);
        setenv("IP_REAL", "192.168.77.2", 1);
        execl(getenv("MUSCTL_BIN"), "musctl", "notify", "--socket", sock, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "musctl notify must exit 0");
}

/* Reads the snapshot; returns its seq and the number of sessions. */
static uint64_t read_snapshot(cli_t *c, size_t *count, char *epoch, size_t epoch_cap)
{
    mus_frame_t f;
    cr_assert(cli_frame(c, &f));
    cr_assert_eq(f.type, MUS_F_SNAP_BEGIN, "got %s", mus_frame_type_str(f.type));
    cr_assert_str_eq(f.epoch, c->hello.epoch);
    snprintf(epoch, epoch_cap, "%s", f.epoch);
    uint64_t seq = f.seq, want = f.count;
    *count = 0;
    for (;;) {
        cr_assert(cli_frame(c, &f));
        if (f.type == MUS_F_SNAP_END)
            break;
        cr_assert_eq(f.type, MUS_F_SNAP);
        (*count)++;
    }
    cr_assert_eq(f.seq, seq);
    cr_assert_eq(*count, want);
    return seq;
}

TestSuite(headend, .timeout = 60);

Test(headend, auth_snapshot_live_events, .fini = headend_stop)
{
    headend_start(false);
    cli_t c;
    cr_assert_eq(cli_open(&c), 101);
    cr_assert_eq(cli_auth(&c, "right-password"), MUS_F_AUTH_OK);
    cli_subscribe(&c, NULL, false, 0);
    size_t count;
    char epoch[MUS_EPOCH_MAX];
    uint64_t seq = read_snapshot(&c, &count, epoch, sizeof(epoch));
    cr_expect_eq(count, 2);
    cr_expect_eq(seq, 2);   /* two adds from the sessions file */

    notify("connect", "4242", "bob", "10.10.10.50", "fd00::58ef%3945158656");
    mus_frame_t f;
    cr_assert(cli_frame(&c, &f));
    cr_assert_eq(f.type, MUS_F_ADD, "got %s", mus_frame_type_str(f.type));
    cr_expect_eq(f.seq, seq + 1);
    cr_expect_str_eq(f.session.sid, "4242");
    cr_expect_str_eq(f.session.name, "bob");
    cr_expect_str_eq(f.session.groups, "sales");
    cr_expect_str_eq(f.session.client_ip, "192.168.77.2");
    cr_expect_str_eq(f.session.tunnel, "ssl");
    cr_expect_eq(f.n_ips, 2);

    notify("disconnect", "4242", NULL, NULL, NULL);
    cr_assert(cli_frame(&c, &f));
    cr_assert_eq(f.type, MUS_F_DEL);
    cr_expect_eq(f.seq, seq + 2);
    cr_expect_str_eq(f.session.sid, "4242");
    cr_expect_eq(f.n_ips, 2);

    /* ping -> pong, unknown type -> error, the session survives both */
    cli_write(&c, "{\"t\":\"ping\"}\n{\"t\":\"bogus\"}\n{\"t\":\"ack\",\"seq\":4}\n");
    cr_assert(cli_frame(&c, &f));
    cr_expect_eq(f.type, MUS_F_PONG);
    cr_assert(cli_frame(&c, &f));
    cr_expect_eq(f.type, MUS_F_ERROR);
    cr_expect(strstr(f.message, "bogus") != NULL, "%s", f.message);
    cli_close(&c);
}

Test(headend, wrong_password_gets_auth_fail, .fini = headend_stop)
{
    headend_start(false);
    cli_t c;
    cr_assert_eq(cli_open(&c), 101);
    cr_assert_eq(cli_auth(&c, "wrong-password"), MUS_F_AUTH_FAIL);
    mus_frame_t f;
    cr_expect(!cli_frame(&c, &f), "the headend must close after auth_fail");
    cli_close(&c);
    /* the right password still works (below the failure limit) */
    cr_assert_eq(cli_open(&c), 101);
    cr_assert_eq(cli_auth(&c, "right-password"), MUS_F_AUTH_OK);
    cli_close(&c);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Authenticates and returns the answer type; *ms gets how long it took. */
static enum mus_frame_type cli_auth_timed(cli_t *c, const char *password, long long *ms)
{
    long long t0 = now_ms();
    enum mus_frame_type t = cli_auth(c, password);
    *ms = now_ms() - t0;
    return t;
}

static char *headend_log(void)
{
    static char buf[1 << 16];
    char p[256];
    pathf(p, sizeof(p), "headend.log");
    FILE *fp = fopen(p, "r");
    cr_assert_not_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    buf[n] = '\0';
    fclose(fp);
    return buf;
}

#define FLOOD_PARALLEL 6   /* 4 answers held (HE_AUTHLIMIT_HELD_MAX), 2 refused unchecked */

/* A neighbour at the same address (here the same client_id too) floods
 * wrong passwords: the proxy with the right one still gets in, while the
 * flood is slowed (answers held 2 s) and, in parallel, refused unchecked. */
Test(headend, failed_auth_flood_does_not_lock_out_the_right_password, .fini = headend_stop)
{
    headend_start(false);
    cli_t c, p[FLOOD_PARALLEL];
    long long ms;
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(cli_open(&c), 101);
        cr_assert_eq(cli_auth_timed(&c, "wrong-password", &ms), MUS_F_AUTH_FAIL);
        cr_expect_lt(ms, 1000, "failure %d (below the limit) answered after %lld ms", i + 1, ms);
        cli_close(&c);
    }
    /* over the limit: the right password is checked and accepted, held like
     * every answer to this address now */
    cr_assert_eq(cli_open(&c), 101);
    cr_assert_eq(cli_auth_timed(&c, "right-password", &ms), MUS_F_AUTH_OK,
                 "the right password was refused after others' failures at the same address");
    cr_expect_geq(ms, 1500, "an answer to an address over the limit was not held (%lld ms)", ms);
    cli_subscribe(&c, NULL, false, 0);
    size_t count;
    char epoch[MUS_EPOCH_MAX];
    read_snapshot(&c, &count, epoch, sizeof(epoch));
    cr_expect_eq(count, 2, "the held session does not work once authenticated");
    cli_close(&c);

    /* a parallel flood of wrong passwords: held up to 4, the rest refused */
    uint8_t k[MUS_KEY_LEN], cb[MUS_CB_LEN];
    mus_frame_t a, r;
    long long sent[FLOOD_PARALLEL];
    for (int i = 0; i < FLOOD_PARALLEL; i++) {
        cr_assert_eq(cli_open(&p[i]), 101);
        cli_auth_send(&p[i], "wrong-password", &a, k, cb);
        sent[i] = now_ms();
    }
    /* the last ones sent are the refused ones: read them first, at once */
    int held = 0, refused = 0;
    for (int i = FLOOD_PARALLEL - 1; i >= 0; i--) {
        cr_assert(cli_frame(&p[i], &r), "flood %d: closed without an answer", i);
        cr_assert_eq(r.type, MUS_F_AUTH_FAIL, "flood %d: a wrong password got %s", i,
                     mus_frame_type_str(r.type));
        ms = now_ms() - sent[i];
        if (ms >= 1500)
            held++;
        else if (ms < 1000)
            refused++;
        cli_close(&p[i]);
    }
    cr_expect_eq(held, 4, "flood answers held: %d of %d", held, FLOOD_PARALLEL);
    cr_expect_eq(refused, FLOOD_PARALLEL - 4, "flood answers refused at once: %d", refused);
    char *log = headend_log();
    int logged = 0;
    for (const char *q = log; (q = strstr(q, "refused without checking")) != NULL; q++)
        logged++;
    cr_expect_eq(logged, FLOOD_PARALLEL - 4, "refusals logged: %d\n%s", logged, log);
    cr_expect(strstr(log, "4 answers already held") != NULL, "no counts in the refusal:\n%s", log);
    cr_expect(strstr(log, "failures from this address in 60 s") != NULL, "no counts logged");
    cr_expect(strstr(log, "password\n") == NULL && strstr(log, "right-password") == NULL &&
              strstr(log, "wrong-password") == NULL, "a secret in the log");

    /* the right password still gets in after the flood */
    cr_assert_eq(cli_open(&c), 101);
    cr_assert_eq(cli_auth_timed(&c, "right-password", &ms), MUS_F_AUTH_OK,
                 "the right password was refused after a parallel flood");
    cli_close(&c);
}

Test(headend, resume_replays_only_missed_events, .fini = headend_stop)
{
    headend_start(false);
    cli_t c;
    cr_assert_eq(cli_open(&c), 101);
    cr_assert_eq(cli_auth(&c, "right-password"), MUS_F_AUTH_OK);
    cli_subscribe(&c, NULL, false, 0);
    size_t count;
    char epoch[MUS_EPOCH_MAX];
    uint64_t seq = read_snapshot(&c, &count, epoch, sizeof(epoch));
    cli_close(&c);

    notify("connect", "100", "carol", "10.10.10.60", NULL);
    notify("connect", "101", "dave", "10.10.10.61", NULL);
    /* the machine tunnel f2 loses 10.9.0.2 to a user tunnel: del then add */
    notify("connect", "102", "erin", "10.9.0.2", NULL);
    sleep_ms(200);

    cr_assert_eq(cli_open(&c), 101);
    cr_assert_str_eq(c.hello.epoch, epoch);
    cr_assert_eq(cli_auth(&c, "right-password"), MUS_F_AUTH_OK);
    cli_subscribe(&c, epoch, true, seq);
    mus_frame_t f;
    cr_assert(cli_frame(&c, &f));
    cr_assert_eq(f.type, MUS_F_ADD, "resume must not send a snapshot (got %s)",
                 mus_frame_type_str(f.type));
    cr_expect_eq(f.seq, seq + 1);
    cr_expect_str_eq(f.session.name, "carol");
    cr_assert(cli_frame(&c, &f));
    cr_expect_eq(f.seq, seq + 2);
    cr_expect_str_eq(f.session.name, "dave");
    cr_assert(cli_frame(&c, &f));
    cr_expect_eq(f.type, MUS_F_DEL);
    cr_expect_eq(f.seq, seq + 3);
    cr_expect_str_eq(f.session.sid, "f2");
    cr_expect_eq(f.n_ips, 1);
    cr_assert(cli_frame(&c, &f));
    cr_expect_eq(f.type, MUS_F_ADD);
    cr_expect_eq(f.seq, seq + 4);
    cr_expect_str_eq(f.session.name, "erin");
    cli_close(&c);

    /* another epoch: a full snapshot (f1, f2 with fd00::2 left, 100, 101, 102) */
    cr_assert_eq(cli_open(&c), 101);
    cr_assert_eq(cli_auth(&c, "right-password"), MUS_F_AUTH_OK);
    cli_subscribe(&c, "0000", true, seq);
    uint64_t seq2 = read_snapshot(&c, &count, epoch, sizeof(epoch));
    cr_expect_eq(seq2, seq + 4);
    cr_expect_eq(count, 5);
    cli_close(&c);
}

Test(headend, standby_answers_503, .fini = headend_stop)
{
    headend_start(true);
    cli_t c;
    cr_assert_eq(cli_open(&c), 503);
    cli_close(&c);
}

Test(headend, bad_upgrade_answers_400, .fini = headend_stop)
{
    headend_start(false);
    cli_t c;
    memset(&c, 0, sizeof(c));
    c.fd = tcp_connect();
    c.ctx = SSL_CTX_new(TLS_client_method());
    c.ssl = SSL_new(c.ctx);
    SSL_set_fd(c.ssl, c.fd);
    cr_assert_eq(SSL_connect(c.ssl), 1);
    cli_write(&c, "GET /mus/v1 HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_gt(cli_until(&c, "\r\n\r\n"), 0);
    cr_expect(strncmp(c.buf, "HTTP/1.1 400 ", 13) == 0, "%.40s", c.buf);
    cli_close(&c);
}
