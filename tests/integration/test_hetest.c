/*
 * tests/integration/test_hetest.c: the headend connection test
 * (mus/hetest.h) against the real mus-headend: ok with the headend's
 * identity, certificate and round trip; and each failure with its own
 * outcome and message: a wrong password, a CA that did not sign the
 * headend's certificate, a name the certificate does not carry, a pin
 * that does not match (and one that does), a dead port, a port that
 * accepts but never answers, a standby.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../mus/hetest.h"
#include "headend_cli.h"

TestSuite(hetest, .fini = headend_stop, .timeout = 60);

/* The headend of headend_cli as the proxy's configuration would give it. */
static void
config(mus_headend_config_t *h, int p, const char *ca, const char *pwfile)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&h->addrs[0];

    memset(h, 0, sizeof(*h));
    snprintf(h->name, sizeof(h->name), "he-1");
    h->n_addrs = 1;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)p);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    h->addr_lens[0] = sizeof(*sin);
    snprintf(h->addr_text[0], sizeof(h->addr_text[0]), "127.0.0.1:%d", p);
    if (ca != NULL)
        pathf(h->ca_file, sizeof(h->ca_file), ca);
    snprintf(h->cert_name, sizeof(h->cert_name), "127.0.0.1");
    pathf(h->password_file, sizeof(h->password_file), pwfile);
    snprintf(h->client_id, sizeof(h->client_id), "proxy-test");
}

/* A port on loopback: listening (backlog, never accepted) or closed. */
static int
local_port(bool listening, int *fd_out)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t sl = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    if (listening) {
        cr_assert_eq(listen(fd, 8), 0);
        *fd_out = fd;
    } else {
        close(fd);
    }
    return ntohs(sin.sin_port);
}

Test(hetest, ok_and_each_failure)
{
    mus_headend_config_t h;
    mus_hetest_result_t r;
    char cmd[1024];
    int lfd = -1;

    headend_start(false);
    write_file("pw-wrong", "wrong-password\n", 0600);

    config(&h, port, "cert.pem", "pw");
    cr_expect_eq(mus_hetest_run(&h, 0, &r), 0, "%s", r.message);
    cr_expect_eq(r.outcome, MUS_HETEST_OK);
    cr_expect_str_eq(mus_hetest_outcome_str(r.outcome), "ok");
    cr_expect_str_eq(r.server_id, "he-test");
    cr_expect_not_null(strstr(r.subject, "CN=headend.test"), "%s", r.subject);
    cr_expect_not_null(strstr(r.message, "authenticated by he-test"), "%s", r.message);
    cr_expect_lt(r.rtt_ms, MUS_HETEST_TIMEOUT_MS);
    cr_expect_str_eq(r.tls_version, "TLSv1.3");

    config(&h, port, "cert.pem", "pw-wrong");
    cr_expect_eq(mus_hetest_run(&h, 0, &r), -1);
    cr_expect_eq(r.outcome, MUS_HETEST_AUTH, "%s", r.message);
    cr_expect_str_eq(mus_hetest_outcome_str(r.outcome), "authentication failed");
    cr_expect_not_null(strstr(r.message, "auth_fail"), "%s", r.message);

    /* a CA that did not sign the headend's certificate */
    snprintf(cmd, sizeof(cmd),
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
             "-keyout %s/other-key.pem -out %s/other-ca.pem -days 2 -subj /CN=other "
             ">/dev/null 2>&1", dir, dir);
    cr_assert_eq(system(cmd), 0);
    config(&h, port, "other-ca.pem", "pw");
    cr_expect_eq(mus_hetest_run(&h, 0, &r), -1);
    cr_expect_eq(r.outcome, MUS_HETEST_UNTRUSTED, "%s", r.message);
    cr_expect_not_null(strstr(r.message, "certificate not trusted: self-signed certificate"),
                       "%s", r.message);

    /* the right CA, a name the certificate does not carry */
    config(&h, port, "cert.pem", "pw");
    snprintf(h.cert_name, sizeof(h.cert_name), "he.example");
    cr_expect_eq(mus_hetest_run(&h, 0, &r), -1);
    cr_expect_eq(r.outcome, MUS_HETEST_UNTRUSTED, "%s", r.message);
    cr_expect_not_null(strstr(r.message, "hostname mismatch"), "%s", r.message);

    /* a pin: the certificate's key, then another */
    {
        char pin[80] = "", pinfile[256];
        FILE *f;
        pathf(pinfile, sizeof(pinfile), "pin");
        snprintf(cmd, sizeof(cmd), "openssl x509 -in %s/cert.pem -pubkey -noout | openssl pkey "
                 "-pubin -outform der | sha256sum | cut -c1-64 > %s", dir, pinfile);
        cr_assert_eq(system(cmd), 0);
        f = fopen(pinfile, "r");
        cr_assert_not_null(f);
        cr_assert_not_null(fgets(pin, sizeof(pin), f));
        fclose(f);
        pin[strcspn(pin, "\n")] = '\0';
        config(&h, port, NULL, "pw");
        snprintf(h.pin_sha256, sizeof(h.pin_sha256), "%s", pin);
        cr_expect_eq(mus_hetest_run(&h, 0, &r), 0, "%s", r.message);
        pin[0] = pin[0] == '0' ? '1' : '0';
        snprintf(h.pin_sha256, sizeof(h.pin_sha256), "%s", pin);
        cr_expect_eq(mus_hetest_run(&h, 0, &r), -1);
        cr_expect_eq(r.outcome, MUS_HETEST_UNTRUSTED, "%s", r.message);
        cr_expect_not_null(strstr(r.message, "pin mismatch"), "%s", r.message);
    }

    /* nothing listens */
    config(&h, local_port(false, NULL), "cert.pem", "pw");
    cr_expect_eq(mus_hetest_run(&h, 0, &r), -1);
    cr_expect_eq(r.outcome, MUS_HETEST_REFUSED, "%s", r.message);
    cr_expect_str_eq(mus_hetest_outcome_str(r.outcome), "connect refused");
    cr_expect_not_null(strstr(r.message, "Connection refused"), "%s", r.message);

    /* the TCP connect succeeds (backlog), TLS never answers */
    config(&h, local_port(true, &lfd), "cert.pem", "pw");
    cr_expect_eq(mus_hetest_run(&h, 400, &r), -1);
    cr_expect_eq(r.outcome, MUS_HETEST_TIMEOUT, "%s", r.message);
    cr_expect_not_null(strstr(r.message, "no answer within 400 ms"), "%s", r.message);
    cr_expect_geq(r.rtt_ms, 400);
    close(lfd);
}

Test(hetest, standby)
{
    mus_headend_config_t h;
    mus_hetest_result_t r;

    headend_start(true);
    config(&h, port, "cert.pem", "pw");
    cr_expect_eq(mus_hetest_run(&h, 0, &r), -1);
    cr_expect_eq(r.outcome, MUS_HETEST_REJECTED, "%s", r.message);
    cr_expect_not_null(strstr(r.message, "standby (503)"), "%s", r.message);
}
