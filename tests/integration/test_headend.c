/*
 * tests/integration/test_headend.c: the real mus-headend over real sockets,
 * driven by the small blocking OpenSSL MUS/1 client of headend_cli.h
 * (independent of mus/client.c): upgrade, auth (right and wrong password),
 * snapshot of a sessions file, live add/del through `musctl notify` with
 * ocserv's and with strongSwan's updown environment, resume with the same
 * epoch (only the missed events), standby 503, unknown frame -> error, a
 * taken listen port -> exit 1 with the reason.
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
#include "headend_cli.h"

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

/* musctl notify as strongSwan's updown runs it: only PLUTO_* variables. */
static void swan_notify(const char *verb, const char *uniqueid, const char *peer_id,
                        const char *xauth, const char *vip4, const char *vip6)
{
    char sock[256];
    pathf(sock, sizeof(sock), "feed.sock");
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    const char *bin = getenv("MUSCTL_BIN");
    if (pid == 0) {
        clearenv();
        setenv("PLUTO_VERSION", "1.1", 1);
        setenv("PLUTO_VERB", verb, 1);
        setenv("PLUTO_UNIQUEID", uniqueid, 1);
        setenv("PLUTO_PEER", "198.51.100.20", 1);
        setenv("PLUTO_PEER_ID", peer_id, 1);
        if (xauth)
            setenv("PLUTO_XAUTH_ID", xauth, 1);
        if (vip4) {
            setenv("PLUTO_PEER_SOURCEIP4_1", vip4, 1);
            setenv("PLUTO_PEER_SOURCEIP", vip4, 1);
            setenv("PLUTO_PEER_CLIENT", "10.99.99.99/32", 1);   /* a vip wins */
        }
        if (vip6)
            setenv("PLUTO_PEER_SOURCEIP6_1", vip6, 1);
        if (!vip4 && !vip6)
            setenv("PLUTO_PEER_CLIENT", "10.31.0.7/32", 1);
        execl(bin, "musctl", "notify", "--socket", sock, (char *)NULL);
        _exit(127);
    }
    int st;
    waitpid(pid, &st, 0);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "musctl notify must exit 0");
}

Test(headend, strongswan_updown_environment, .fini = headend_stop)
{
    headend_start(false);
    cli_t c;
    cr_assert_eq(cli_open(&c), 101);
    cr_assert_eq(cli_auth(&c, "right-password"), MUS_F_AUTH_OK);
    cli_subscribe(&c, NULL, false, 0);
    size_t count;
    char epoch[MUS_EPOCH_MAX];
    read_snapshot(&c, &count, epoch, sizeof(epoch));
    mus_frame_t f;

    swan_notify("up-client", "5", "C=CH, O=Corp, CN=carol", NULL, "10.30.0.5", "fd00:30::5");
    cr_assert(cli_frame(&c, &f));
    cr_assert_eq(f.type, MUS_F_ADD, "got %s", mus_frame_type_str(f.type));
    cr_expect_str_eq(f.session.sid, "5");
    cr_expect_str_eq(f.session.name, "carol", "a DN is reduced to its CN");
    cr_expect_str_eq(f.session.tunnel, "ipsec");
    cr_expect_str_eq(f.session.client_ip, "198.51.100.20");
    cr_expect_eq(f.n_ips, 2, "the v4 and v6 virtual IPs, not PLUTO_PEER_CLIENT");
    /* the -v6 call for the same IKE_SA changes nothing; other verbs are ignored */
    swan_notify("up-client-v6", "5", "C=CH, O=Corp, CN=carol", NULL, "10.30.0.5", "fd00:30::5");
    swan_notify("up-host", "6", "x", NULL, "10.30.0.6", NULL);
    /* XAuth identity wins; no virtual IP: a single-address PLUTO_PEER_CLIENT */
    swan_notify("up-client", "7", "PC7", "dave", NULL, NULL);
    cr_assert(cli_frame(&c, &f));
    cr_assert_eq(f.type, MUS_F_ADD, "got %s (sid %s)", mus_frame_type_str(f.type), f.session.sid);
    cr_expect_str_eq(f.session.sid, "7");
    cr_expect_str_eq(f.session.name, "dave");
    cr_expect_eq(f.n_ips, 1);
    swan_notify("down-client", "5", "C=CH, O=Corp, CN=carol", NULL, "10.30.0.5", NULL);
    cr_assert(cli_frame(&c, &f));
    cr_assert_eq(f.type, MUS_F_DEL);
    cr_expect_str_eq(f.session.sid, "5");
    cr_expect_eq(f.n_ips, 2);
    cli_close(&c);
}

/* A listener that cannot bind ends mus-headend with status 1 and a clear
 * message: the teardown of a half-made setup must not touch what setup
 * never started (it once cancelled a timer that was never armed: SEGV). */
Test(headend, listen_port_taken_exits_cleanly, .fini = headend_stop)
{
    headend_prepare();
    int hold = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    cr_assert_eq(bind(hold, (struct sockaddr *)&sin, sizeof sin), 0);
    cr_assert_eq(listen(hold, 1), 0);
    cr_assert_eq(getsockname(hold, (struct sockaddr *)&sin, &len), 0);
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "\"$HEADEND_BIN\" --listen 127.0.0.1:%d --cert %s/cert.pem --key %s/key.pem "
             "--password-file %s/pw --sessions %s/sessions --server-id he-test "
             "2>%s/taken.log", ntohs(sin.sin_port), dir, dir, dir, dir, dir);
    int st = system(cmd);
    close(hold);
    cr_assert(WIFEXITED(st), "mus-headend did not exit normally (status 0x%x)", st);
    cr_assert_eq(WEXITSTATUS(st), 1);
    char path[256], log[4096] = "";
    pathf(path, sizeof path, "taken.log");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t n = fread(log, 1, sizeof log - 1, f);
    log[n] = '\0';
    fclose(f);
    cr_assert(strstr(log, "Address already in use") != NULL, "%s", log);
    cr_assert(strstr(log, "Sanitizer") == NULL, "%s", log);
}
