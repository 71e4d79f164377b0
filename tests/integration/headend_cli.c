/*
 * tests/integration/headend_cli.c: see headend_cli.h.
 */
#include "headend_cli.h"

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


char dir[64];
int port;
pid_t he_pid;

void pathf(char *buf, size_t cap, const char *name)
{
    snprintf(buf, cap, "%s/%s", dir, name);
}

void write_file(const char *name, const char *data, mode_t mode)
{
    char p[256];
    pathf(p, sizeof(p), name);
    FILE *fp = fopen(p, "w");
    cr_assert_not_null(fp, "%s: %s", p, strerror(errno));
    fputs(data, fp);
    fclose(fp);
    chmod(p, mode);
}

void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int tcp_connect(void)
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

/* A port for the headend's listener, below the kernel's ephemeral range
 * (32768 and up here), so that no outgoing connection of another test can
 * hold it; attempt > 0 picks another after "Address already in use". */
static int pick_port(int attempt)
{
    return 20000 + (int)(((unsigned)getpid() * 7919u + (unsigned)attempt * 1009u) % 12000u);
}

/* Nobody listens on or holds 127.0.0.1:p (else a connect would reach
 * another process and look like our headend). */
static bool port_free(int p)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

void headend_prepare(void)
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
    port = pick_port(0);
}

static bool headend_spawn_once(bool standby, const char *const *extra, char *logbuf, size_t logcap);

/* Starts mus-headend on `port`, moving to another port if that one was
 * taken by another process (tests may run beside other tests). */
void headend_spawn(bool standby, const char *const *extra)
{
    char logbuf[4096] = "";
    for (int attempt = 1; attempt <= 8; attempt++) {
        for (int k = 0; k < 50 && !port_free(port); k++)
            port = pick_port(attempt * 50 + k);
        if (headend_spawn_once(standby, extra, logbuf, sizeof logbuf))
            return;
        if (he_pid != 0 || strstr(logbuf, "Address already in use") == NULL)
            break;
        port = pick_port(attempt);
    }
    cr_assert_fail("mus-headend does not listen on %d (%s):\n%s", port,
                   he_pid ? "still running" : "exited", logbuf);
}

/* true once it listens; false with its log in logbuf (he_pid 0 if it exited) */
static bool headend_spawn_once(bool standby, const char *const *extra, char *logbuf, size_t logcap)
{
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
        const char *argv[64] = {"mus-headend", "--listen", listen_arg, "--cert", a[0],
              "--key", a[1], "--password-file", a[2], "--sessions", a[3], "--socket", a[4],
              "--server-id", "he-test", "--kdf-iter", "10000", "--journal", "100",
              "--log-level", "debug"};
        size_t n = 0;
        while (argv[n])
            n++;
        if (standby)
            argv[n++] = "--standby";
        for (size_t i = 0; extra && extra[i] && n < 63; i++)
            argv[n++] = extra[i];
        execv(getenv("HEADEND_BIN"), (char *const *)argv);
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
            return true;
        }
        sleep_ms(25);
    }
    char logp[256];
    pathf(logp, sizeof(logp), "headend.log");
    logbuf[0] = '\0';
    FILE *fp = fopen(logp, "r");
    if (fp) {
        size_t n = fread(logbuf, 1, logcap - 1, fp);
        logbuf[n] = '\0';
        fclose(fp);
    }
    return false;
}

void headend_stop(void)
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


void cli_write(cli_t *c, const char *s)
{
    cr_assert_eq(SSL_write(c->ssl, s, (int)strlen(s)), (int)strlen(s));
}

/* Reads until buf holds the delimiter; returns the length including it, or 0 on EOF. */
size_t cli_until(cli_t *c, const char *delim)
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

void cli_consume(cli_t *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
}

/* Next frame; false on EOF. */
bool cli_frame(cli_t *c, mus_frame_t *f)
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

void cli_send(cli_t *c, const mus_frame_t *f)
{
    char line[MUS_FRAME_MAX + 2];
    int n = mus_frame_format(f, line, sizeof(line) - 1);
    cr_assert_gt(n, 0);
    line[n] = '\0';
    cli_write(c, line);
}

/* TLS + upgrade; returns the HTTP status. On 101 the hello is in c->hello. */
int cli_open(cli_t *c)
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
void cli_auth_send(cli_t *c, const char *password, mus_frame_t *a, uint8_t *k, uint8_t *cb)
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
enum mus_frame_type cli_auth(cli_t *c, const char *password)
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

void cli_subscribe(cli_t *c, const char *epoch, bool has_seq, uint64_t seq)
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

void cli_close(cli_t *c)
{
    SSL_free(c->ssl);
    SSL_CTX_free(c->ctx);
    close(c->fd);
}

void notify(const char *reason, const char *id, const char *user, const char *ip4,
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
uint64_t read_snapshot(cli_t *c, size_t *count, char *epoch, size_t epoch_cap)
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

void headend_start_args(bool standby, const char *const *extra)
{
    headend_prepare();
    headend_spawn(standby, extra);
}

void headend_start(bool standby)
{
    headend_start_args(standby, NULL);
}
