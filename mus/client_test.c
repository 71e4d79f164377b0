/*
 * mus/client_test.c: the headend connection test (see hetest.h). One
 * blocking attempt on the caller's thread, built from the feed's own parts
 * (client_int.h: the TLS context and its verify callback, the peer name,
 * the pin, the Upgrade request; proto.h: frames and the auth MACs), so it
 * checks exactly what the live session would: every step waits with poll
 * against one deadline. It keeps no state and touches no feed, no map and
 * no loop.
 */
#include "hetest.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "client_int.h"

static const char *const outcome_names[] = {
    [MUS_HETEST_OK] = "ok",
    [MUS_HETEST_REFUSED] = "connect refused",
    [MUS_HETEST_UNREACHABLE] = "unreachable",
    [MUS_HETEST_TIMEOUT] = "timeout",
    [MUS_HETEST_UNTRUSTED] = "certificate not trusted",
    [MUS_HETEST_TLS] = "TLS failed",
    [MUS_HETEST_REJECTED] = "rejected",
    [MUS_HETEST_AUTH] = "authentication failed",
    [MUS_HETEST_PROTOCOL] = "protocol error",
    [MUS_HETEST_LOCAL] = "local error",
};

const char *
mus_hetest_outcome_str(enum mus_hetest_outcome o)
{
    return (unsigned)o < sizeof(outcome_names) / sizeof(outcome_names[0]) ? outcome_names[o]
                                                                           : "?";
}

/* One test: the connection of the current address. */
typedef struct ht {
    const mus_headend_config_t *c;
    mus_hetest_result_t *r;
    int64_t t0, deadline;              /* monotonic ms */
    unsigned timeout_ms;
    SSL_CTX *ctx;
    mus_sess_t *vs;                    /* what the feed's verify callback reads (pin) */
    int fd;
    SSL *ssl;
    char buf[SESSION_RBUF_CAP];
    size_t len;
    uint8_t key[MUS_KEY_LEN], nonce[MUS_NONCE_LEN], cnonce[MUS_NONCE_LEN], cb[MUS_CB_LEN];
} ht_t;

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int fail(ht_t *t, enum mus_hetest_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records the outcome; -1. */
static int
fail(ht_t *t, enum mus_hetest_outcome o, const char *fmt, ...)
{
    va_list ap;

    t->r->outcome = o;
    va_start(ap, fmt);
    vsnprintf(t->r->message, sizeof(t->r->message), fmt, ap);
    va_end(ap);
    t->r->rtt_ms = (uint32_t)(mono_ms() - t->t0);
    ERR_clear_error();
    return -1;
}

static void
ssl_err_text(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        snprintf(buf, len, "%s", errno != 0 ? strerror(errno) : "connection closed");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

/* Waits until fd has events or the deadline: 1, 0 (timeout), -1 (errno). */
static int
wait_fd(ht_t *t, short events)
{
    struct pollfd p = {.fd = t->fd, .events = events};
    int64_t left = t->deadline - mono_ms();
    int n;

    if (left <= 0)
        return 0;
    do
        n = poll(&p, 1, (int)left);
    while (n < 0 && errno == EINTR);
    return n;
}

/* After an SSL call returned rc: 1 when it should be called again (the
 * socket is ready), 0 when it failed or timed out (recorded, naming what). */
static int
ssl_again(ht_t *t, int rc, const char *what)
{
    int e = SSL_get_error(t->ssl, rc), w;
    char text[256];

    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0))
            fail(t, MUS_HETEST_PROTOCOL, "the headend closed the connection during %s", what);
        else {
            ssl_err_text(text, sizeof(text));
            fail(t, MUS_HETEST_PROTOCOL, "%s: %s", what, text);
        }
        return 0;
    }
    w = wait_fd(t, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
    if (w == 0)
        fail(t, MUS_HETEST_TIMEOUT, "no answer to the %s within %u ms", what, t->timeout_ms);
    else if (w < 0)
        fail(t, MUS_HETEST_LOCAL, "poll: %s", strerror(errno));
    return w > 0;
}

static int
ssl_send(ht_t *t, const char *data, size_t len, const char *what)
{
    size_t off = 0;

    while (off < len) {
        int n = SSL_write(t->ssl, data + off, (int)(len - off));
        if (n > 0)
            off += (size_t)n;
        else if (!ssl_again(t, n, what))
            return -1;
    }
    return 0;
}

static int
ssl_recv(ht_t *t, const char *what)
{
    int n;

    if (t->len >= sizeof(t->buf))
        return fail(t, MUS_HETEST_PROTOCOL, "%s: more than %zu bytes in one line", what,
                    sizeof(t->buf));
    for (;;) {
        n = SSL_read(t->ssl, t->buf + t->len, (int)(sizeof(t->buf) - t->len));
        if (n > 0) {
            t->len += (size_t)n;
            return 0;
        }
        if (!ssl_again(t, n, what))
            return -1;
    }
}

/* The next frame (ping, pong and error frames skipped). */
static int
next_frame(ht_t *t, mus_frame_t *f, const char *what)
{
    char err[128];

    for (;;) {
        char *nl = memchr(t->buf, '\n', t->len);
        if (nl == NULL) {
            if (ssl_recv(t, what) < 0)
                return -1;
            continue;
        }
        if (mus_frame_parse(t->buf, (size_t)(nl - t->buf), f, err, sizeof(err)) < 0)
            return fail(t, MUS_HETEST_PROTOCOL, "%s: bad frame: %s", what, err);
        t->len -= (size_t)(nl + 1 - t->buf);
        memmove(t->buf, nl + 1, t->len);
        if (f->type != MUS_F_PING && f->type != MUS_F_PONG && f->type != MUS_F_ERROR)
            return 0;
    }
}

static int
send_frame(ht_t *t, const mus_frame_t *f, const char *what)
{
    char line[1024];
    int n = mus_frame_format(f, line, sizeof(line));

    if (n < 0)
        return fail(t, MUS_HETEST_LOCAL, "%s: frame too long", what);
    return ssl_send(t, line, (size_t)n, what);
}

/* TCP connect to address i: 0, 1 to try the next address, -1. */
static int
tcp_connect(ht_t *t, size_t i)
{
    const struct sockaddr *sa = (const struct sockaddr *)&t->c->addrs[i];
    int soerr = 0, w;
    socklen_t sl = sizeof(soerr);
    int64_t start = mono_ms();

    snprintf(t->r->address, sizeof(t->r->address), "%s", t->c->addr_text[i]);
    t->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (t->fd < 0)
        return fail(t, MUS_HETEST_LOCAL, "socket: %s", strerror(errno));
    if (connect(t->fd, sa, t->c->addr_lens[i]) < 0) {
        if (errno != EINPROGRESS)
            soerr = errno;
        else if ((w = wait_fd(t, POLLOUT)) == 0)
            return fail(t, MUS_HETEST_TIMEOUT, "connect to %s: no answer within %u ms",
                        t->c->addr_text[i], t->timeout_ms);
        else if (w < 0 || getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
    }
    t->r->connect_ms = (uint32_t)(mono_ms() - start);
    if (soerr == 0)
        return 0;
    fail(t, soerr == ECONNREFUSED ? MUS_HETEST_REFUSED : MUS_HETEST_UNREACHABLE,
         "connect to %s: %s", t->c->addr_text[i], strerror(soerr));
    return 1;
}

static int
tls_handshake(ht_t *t)
{
    char text[256];
    X509 *peer;
    long vr;

    t->ssl = SSL_new(t->ctx);
    if (t->ssl == NULL || SSL_set_fd(t->ssl, t->fd) != 1 ||
        mus_sess_ssl_peer(t->ssl, t->c) < 0) {
        ssl_err_text(text, sizeof(text));
        return fail(t, MUS_HETEST_LOCAL, "TLS setup: %s", text);
    }
    SSL_set_app_data(t->ssl, t->vs);
    for (;;) {
        int rc = SSL_connect(t->ssl), e = SSL_get_error(t->ssl, rc);
        if (rc == 1)
            break;
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            int w = wait_fd(t, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
            if (w == 0)
                return fail(t, MUS_HETEST_TIMEOUT, "TLS handshake with %s: no answer within %u ms",
                            t->r->address, t->timeout_ms);
            if (w < 0)
                return fail(t, MUS_HETEST_LOCAL, "poll: %s", strerror(errno));
            continue;
        }
        vr = t->c->ca_file[0] != '\0' ? SSL_get_verify_result(t->ssl) : X509_V_OK;
        if (t->vs->pin_mismatch)
            return fail(t, MUS_HETEST_UNTRUSTED, "certificate not trusted: certificate pin mismatch");
        if (vr != X509_V_OK)
            return fail(t, MUS_HETEST_UNTRUSTED, "certificate not trusted: %s",
                        X509_verify_cert_error_string(vr));
        ssl_err_text(text, sizeof(text));
        return fail(t, MUS_HETEST_TLS, "TLS handshake with %s failed: %s", t->r->address, text);
    }
    peer = SSL_get1_peer_certificate(t->ssl);
    if (peer != NULL) {
        X509_NAME_oneline(X509_get_subject_name(peer), t->r->subject, sizeof(t->r->subject));
        X509_NAME_oneline(X509_get_issuer_name(peer), t->r->issuer, sizeof(t->r->issuer));
        X509_free(peer);
    }
    snprintf(t->r->tls_version, sizeof(t->r->tls_version), "%s", SSL_get_version(t->ssl));
    if (t->c->ca_file[0] != '\0' && SSL_get_verify_result(t->ssl) != X509_V_OK)
        return fail(t, MUS_HETEST_UNTRUSTED, "certificate not trusted: %s",
                    X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
    if (t->vs->has_pin && t->vs->pin_mismatch)
        return fail(t, MUS_HETEST_UNTRUSTED, "certificate not trusted: certificate pin mismatch");
    return 0;
}

/* The Upgrade: 0, 1 for a standby (the next address), -1. */
static int
upgrade(ht_t *t, size_t i)
{
    char req[512], *end;
    int n = mus_sess_upgrade_request(t->c, i, req, sizeof(req)), code = 0;
    size_t head;

    if (n < 0)
        return fail(t, MUS_HETEST_LOCAL, "Upgrade request too long");
    if (ssl_send(t, req, (size_t)n, "Upgrade request") < 0)
        return -1;
    while ((end = memmem(t->buf, t->len, "\r\n\r\n", 4)) == NULL) {
        if (t->len >= SESSION_UPGRADE_MAX)
            return fail(t, MUS_HETEST_PROTOCOL, "the answer to the Upgrade is too long");
        if (ssl_recv(t, "Upgrade request") < 0)
            return -1;
    }
    *end = '\0';
    if (strncmp(t->buf, "HTTP/1.", 7) != 0 || sscanf(t->buf + 8, " %3d", &code) != 1)
        return fail(t, MUS_HETEST_PROTOCOL, "not an HTTP answer to the Upgrade request");
    if (code == 503) {
        fail(t, MUS_HETEST_REJECTED, "%s is a standby (503)", t->r->address);
        return 1;
    }
    if (code == 403)
        return fail(t, MUS_HETEST_REJECTED, "refused by the headend (403)");
    if (code != 101)
        return fail(t, MUS_HETEST_REJECTED, "unexpected answer to the Upgrade request (%d)", code);
    if (strcasestr(t->buf, "\r\nupgrade: " MUS_UPGRADE_TOKEN) == NULL)
        return fail(t, MUS_HETEST_PROTOCOL, "101 without \"Upgrade: " MUS_UPGRADE_TOKEN "\"");
    head = (size_t)(end - t->buf) + 4;
    t->len -= head;
    memmove(t->buf, t->buf + head, t->len);
    return 0;
}

/* hello, auth, auth_ok. */
static int
authenticate(ht_t *t)
{
    mus_frame_t f, a = {.type = MUS_F_AUTH};
    char pw[SESSION_PASSWORD_MAX], err[MUS_ERROR_MAX];
    uint8_t want[MUS_MAC_LEN];
    bool ok;
    int rc;

    if (next_frame(t, &f, "hello") < 0)
        return -1;
    if (f.type != MUS_F_HELLO)
        return fail(t, MUS_HETEST_PROTOCOL, "%s instead of hello", mus_frame_type_str(f.type));
    snprintf(t->r->server_id, sizeof(t->r->server_id), "%s", f.server_id);
    if (strcmp(f.kdf_alg, "pbkdf2-sha256") != 0 || f.kdf_iter < MUS_KDF_ITER_MIN ||
        f.kdf_iter > MUS_KDF_ITER_MAX || f.salt_len == 0 || f.salt_len > MUS_SALT_MAX)
        return fail(t, MUS_HETEST_PROTOCOL, "unsupported kdf in hello (%s, %u iterations)",
                    f.kdf_alg, (unsigned)f.kdf_iter);
    if (mus_read_password_file(t->c->password_file, pw, sizeof(pw), err, sizeof(err)) < 0) {
        OPENSSL_cleanse(pw, sizeof(pw));
        return fail(t, MUS_HETEST_LOCAL, "password file %s: %s", t->c->password_file, err);
    }
    rc = mus_auth_derive(pw, strlen(pw), f.salt, f.salt_len, f.kdf_iter, t->key);
    OPENSSL_cleanse(pw, sizeof(pw));
    memcpy(t->nonce, f.nonce, sizeof(t->nonce));
    if (rc < 0 || mus_tls_channel_binding(t->ssl, t->cb) < 0 ||
        mus_random(t->cnonce, sizeof(t->cnonce)) < 0)
        return fail(t, MUS_HETEST_LOCAL, "key derivation or channel binding failed");
    snprintf(a.client_id, sizeof(a.client_id), "%s", t->c->client_id);
    memcpy(a.cnonce, t->cnonce, sizeof(a.cnonce));
    mus_auth_client_mac(t->key, t->nonce, t->cnonce, t->r->server_id, a.client_id, t->cb, a.mac);
    if (send_frame(t, &a, "auth") < 0 || next_frame(t, &f, "auth") < 0)
        return -1;
    if (f.type == MUS_F_AUTH_FAIL)
        return fail(t, MUS_HETEST_AUTH, "authentication failed: the headend refused our "
                                        "password (auth_fail)");
    if (f.type != MUS_F_AUTH_OK)
        return fail(t, MUS_HETEST_PROTOCOL, "%s instead of auth_ok", mus_frame_type_str(f.type));
    mus_auth_server_mac(t->key, t->nonce, t->cnonce, t->r->server_id, t->c->client_id, t->cb,
                        want);
    ok = mus_auth_mac_equal(want, f.mac);
    OPENSSL_cleanse(want, sizeof(want));
    if (!ok)
        return fail(t, MUS_HETEST_AUTH, "authentication failed: the headend does not know our "
                                        "password (wrong MAC in auth_ok)");
    return 0;
}

static void
close_conn(ht_t *t)
{
    if (t->ssl != NULL) {
        (void)SSL_shutdown(t->ssl);   /* close_notify, not waited for */
        SSL_free(t->ssl);
        t->ssl = NULL;
    }
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    t->len = 0;
}

int
mus_hetest_run(const mus_headend_config_t *c, unsigned timeout_ms, mus_hetest_result_t *r)
{
    char err[MUS_ERROR_MAX];
    ht_t *t = calloc(1, sizeof(*t));
    int rc = -1;

    memset(r, 0, sizeof(*r));
    r->outcome = MUS_HETEST_LOCAL;
    if (t == NULL || (t->vs = calloc(1, sizeof(*t->vs))) == NULL) {
        snprintf(r->message, sizeof(r->message), "out of memory");
        free(t);
        return -1;
    }
    t->c = c;
    t->r = r;
    t->fd = -1;
    t->timeout_ms = timeout_ms ? timeout_ms : MUS_HETEST_TIMEOUT_MS;
    t->t0 = mono_ms();
    t->deadline = t->t0 + t->timeout_ms;
    t->vs->cfg = *c;
    t->vs->has_pin = c->pin_sha256[0] != '\0' && mus_sess_parse_pin(c->pin_sha256, t->vs->pin) == 0;
    t->ctx = mus_sess_ssl_ctx(c, err, sizeof(err));
    if (t->ctx == NULL) {
        fail(t, MUS_HETEST_LOCAL, "%s", err);
        goto done;
    }
    if (c->n_addrs == 0) {
        fail(t, MUS_HETEST_LOCAL, "headend %s has no address", c->name);
        goto done;
    }
    for (size_t i = 0; i < c->n_addrs; i++) {
        int step = tcp_connect(t, i);
        if (step == 0 && tls_handshake(t) == 0)
            step = upgrade(t, i);
        else if (step == 0)
            step = -1;
        if (step == 0) {
            if (authenticate(t) == 0) {
                r->outcome = MUS_HETEST_OK;
                r->rtt_ms = (uint32_t)(mono_ms() - t->t0);
                snprintf(r->message, sizeof(r->message), "authenticated by %s at %s (%s)",
                         r->server_id, r->address, r->tls_version);
                rc = 0;
            }
            break;
        }
        close_conn(t);
        if (step < 0)
            break;
    }
done:
    close_conn(t);
    SSL_CTX_free(t->ctx);
    OPENSSL_cleanse(t->key, sizeof(t->key));
    free(t->vs);
    free(t);
    return rc;
}
