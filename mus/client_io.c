/*
 * mus/client_io.c: the connection of one attempt of a MUS/1 feed session
 * (see client_int.h): the non-blocking TCP connect, the TLS client context
 * and certificate verification (the configured CA file and name, or a
 * SHA-256 pin of the public key; the system's CA paths are never used), the
 * handshake, and reading and writing in the readiness loop as in redis
 * tls.c: the want flags of the last SSL_read/SSL_write (common/tlsio.h)
 * decide the epoll interest. Received bytes go to client_proto.c; every
 * failure goes to mus_sess_fail. It does not parse frames, authenticate,
 * touch the map or schedule retries.
 */
#include "client_int.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../common/grow.h"
#include "../common/log.h"

/* ---- helpers ---- */

static bool
is_ip_literal(const char *s)
{
    struct in6_addr a6;
    struct in_addr a4;

    return inet_pton(AF_INET, s, &a4) == 1 || inet_pton(AF_INET6, s, &a6) == 1;
}

/* The text of the OpenSSL error queue's last entry (and clears the queue). */
static void
ssl_err_text(char *buf, size_t len)
{
    unsigned long e = ERR_peek_last_error();

    if (e == 0)
        snprintf(buf, len, "unknown TLS error");
    else
        ERR_error_string_n(e, buf, len);
    ERR_clear_error();
}

/* ---- TLS context and verification ---- */

static bool
pin_matches(const mus_sess_t *s, X509 *cert)
{
    EVP_PKEY *pk = cert != NULL ? X509_get0_pubkey(cert) : NULL;
    unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
    int len;
    bool ok;

    if (pk == NULL)
        return false;
    len = i2d_PUBKEY(pk, &der);
    if (len <= 0)
        return false;
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    ok = CRYPTO_memcmp(md, s->pin, sizeof(md)) == 0;
    return ok;
}

/* With a pin, the pin decides for the leaf (chain errors are ignored unless a
 * CA file is configured too); without one, OpenSSL's verdict stands. */
static int
verify_cb(int ok, X509_STORE_CTX *xs)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    mus_sess_t *s = ssl != NULL ? SSL_get_app_data(ssl) : NULL;

    if (s == NULL || !s->has_pin)
        return ok;
    if (s->cfg.ca_file[0] != '\0' && !ok)
        return 0;
    if (X509_STORE_CTX_get_error_depth(xs) != 0)
        return 1;
    if (!pin_matches(s, X509_STORE_CTX_get_current_cert(xs))) {
        s->pin_mismatch = true;
        X509_STORE_CTX_set_error(xs, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    X509_STORE_CTX_set_error(xs, X509_V_OK);
    return 1;
}

SSL_CTX *
mus_sess_ssl_ctx(const mus_headend_config_t *c, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    char e[256];

    if (ctx == NULL) {
        ssl_err_text(e, sizeof(e));
        snprintf(err, errlen, "headend %s: SSL_CTX_new: %s", c->name, e);
        return NULL;
    }
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, SESSION_TLS12_CIPHERS) != 1) {
        ssl_err_text(e, sizeof(e));
        snprintf(err, errlen, "headend %s: TLS setup: %s", c->name, e);
        goto fail;
    }
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Only the configured CA file: the system's default paths are never used. */
    if (c->ca_file[0] != '\0' && SSL_CTX_load_verify_locations(ctx, c->ca_file, NULL) != 1) {
        ssl_err_text(e, sizeof(e));
        snprintf(err, errlen, "headend %s: cannot load CA file %s: %s", c->name, c->ca_file, e);
        goto fail;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_cb);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

/* ---- connection teardown ---- */

/* Closes the connection of the current attempt (nothing else). */
void
mus_sess_close_conn(mus_sess_t *s, bool polite)
{
    loop_t *loop = s->feed->loop;

    loop_io_stop(loop, &s->io);
    loop_timer_cancel(loop, &s->timer);
    loop_timer_cancel(loop, &s->ping_timer);
    loop_timer_cancel(loop, &s->dead_timer);
    loop_timer_cancel(loop, &s->ack_timer);
    if (s->in_snapshot) {
        mus_map_snapshot_abort(s->feed->map, s->h);
        s->in_snapshot = false;
    }
    if (s->ssl != NULL) {
        if (polite && SSL_is_init_finished(s->ssl)) {
            ERR_clear_error();
            (void)SSL_shutdown(s->ssl);
        }
        SSL_free(s->ssl);
        s->ssl = NULL;
        ERR_clear_error();
    }
    if (s->fd >= 0) {
        close(s->fd);
        s->fd = -1;
    }
    s->rlen = 0;
    s->wlen = s->woff = 0;
    s->want.read_wants_write = s->want.write_wants_read = false;
    s->pin_mismatch = false;
    s->auth_sent = false;
    s->resubscribed = false;
    s->barrier = 0;
    s->pings_sent = s->pongs_got = 0;
    OPENSSL_cleanse(s->nonce, sizeof(s->nonce));
    OPENSSL_cleanse(s->cnonce, sizeof(s->cnonce));
    OPENSSL_cleanse(s->cb, sizeof(s->cb));
    s->st.connected_since = 0;
}

/* ---- output ---- */

static int
wbuf_reserve(mus_sess_t *s, size_t n)
{
    size_t need, cap;
    char *p;

    if (s->woff > 0 && s->woff == s->wlen)
        s->woff = s->wlen = 0;
    need = s->wlen + n;
    if (need <= s->wcap)
        return 0;
    if (s->woff > 0) {
        memmove(s->wbuf, s->wbuf + s->woff, s->wlen - s->woff);
        s->wlen -= s->woff;
        s->woff = 0;
        need = s->wlen + n;
        if (need <= s->wcap)
            return 0;
    }
    cap = grow_cap(s->wcap, need, 4096, SIZE_MAX);
    p = cap ? realloc(s->wbuf, cap) : NULL;
    if (p == NULL)
        return -1;
    s->wbuf = p;
    s->wcap = cap;
    return 0;
}

/* Writes what is queued. 0, or -1 after the session failed. */
static int
session_flush(mus_sess_t *s)
{
    char e[256];

    s->want.write_wants_read = false;
    while (s->woff < s->wlen) {
        size_t left = s->wlen - s->woff;
        int n, err;

        ERR_clear_error();
        n = SSL_write(s->ssl, s->wbuf + s->woff, left > INT32_MAX ? INT32_MAX : (int)left);
        if (n > 0) {
            s->woff += (size_t)n;
            continue;
        }
        if (tlsio_write_waits(&s->want, s->ssl, n, &err))
            break;
        if (err == SSL_ERROR_SYSCALL && errno != 0) {
            mus_sess_fail(s, false, "write failed: %s", strerror(errno));
            return -1;
        }
        ssl_err_text(e, sizeof(e));
        mus_sess_fail(s, false, "write failed: %s", e);
        return -1;
    }
    if (s->woff == s->wlen)
        s->woff = s->wlen = 0;
    mus_sess_update_interest(s);
    return 0;
}

/* Queues one frame and tries to send it. 0, or -1 after the session failed. */
int
mus_sess_send_frame(mus_sess_t *s, const mus_frame_t *f)
{
    int n;

    if (wbuf_reserve(s, MUS_FRAME_MAX + 2) < 0) {
        mus_sess_fail(s, false, "out of memory");
        return -1;
    }
    n = mus_frame_format(f, s->wbuf + s->wlen, s->wcap - s->wlen);
    if (n < 0) {
        mus_sess_fail(s, false, "cannot format a %s frame", mus_frame_type_str(f->type));
        return -1;
    }
    s->wlen += (size_t)n;
    loop_timer_set(s->feed->loop, &s->ping_timer, MUS_PING_AFTER_MS);
    return session_flush(s);
}

int
mus_sess_send_raw(mus_sess_t *s, const char *data, size_t len)
{
    if (wbuf_reserve(s, len) < 0) {
        mus_sess_fail(s, false, "out of memory");
        return -1;
    }
    memcpy(s->wbuf + s->wlen, data, len);
    s->wlen += len;
    return session_flush(s);
}

void
mus_sess_update_interest(mus_sess_t *s)
{
    uint32_t want;

    if (s->fd < 0)
        return;
    if (s->state == MUS_SESSION_CONNECTING)
        want = LOOP_WRITE;
    else if (s->state == MUS_SESSION_TLS)
        return; /* set by the handshake step from its want */
    else {
        want = LOOP_READ;
        if ((s->woff < s->wlen && !s->want.write_wants_read) || s->want.read_wants_write)
            want |= LOOP_WRITE;
    }
    if (loop_io_set(s->feed->loop, &s->io, want) < 0)
        mus_sess_fail(s, false, "epoll: %s", strerror(errno));
}

/* ---- input, handshake, connect ---- */

/* Reads until the TLS layer has nothing more, processing what arrives. */
static void
session_read(mus_sess_t *s)
{
    char e[256];

    s->want.read_wants_write = false;
    for (;;) {
        size_t room = SESSION_RBUF_CAP - s->rlen;
        int n, err;

        if (room == 0) {
            mus_sess_fail(s, false, "protocol error: frame longer than %d bytes", MUS_FRAME_MAX);
            return;
        }
        ERR_clear_error();
        n = SSL_read(s->ssl, s->rbuf + s->rlen, (int)room);
        if (n > 0) {
            s->rlen += (size_t)n;
            if (mus_sess_on_input(s) < 0)
                return;
            continue;
        }
        if (tlsio_read_waits(&s->want, s->ssl, n, &err))
            break;
        if (err == SSL_ERROR_ZERO_RETURN) {
            mus_sess_fail(s, false, "connection closed by headend");
            return;
        }
        if (err == SSL_ERROR_SYSCALL && errno != 0) {
            mus_sess_fail(s, false, "connection lost: %s", strerror(errno));
            return;
        }
        if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
            err == SSL_ERROR_SYSCALL) {
            ERR_clear_error();
            mus_sess_fail(s, false, "connection closed by headend");
            return;
        }
        ssl_err_text(e, sizeof(e));
        mus_sess_fail(s, false, "connection lost: %s", e);
        return;
    }
    mus_sess_update_interest(s);
}

/* The TLS handshake step; on completion, the Upgrade request follows
 * (client_proto.c). */
static void
session_handshake(mus_sess_t *s)
{
    char e[256];
    int r, err;

    ERR_clear_error();
    r = SSL_connect(s->ssl);
    if (r != 1) {
        long vr;
        uint32_t want = tlsio_wait_events(s->ssl, r, &err);
        if (want != 0) {
            if (loop_io_set(s->feed->loop, &s->io, want) < 0)
                mus_sess_fail(s, false, "epoll: %s", strerror(errno));
            return;
        }
        /* pin only: chain errors were overridden, the verdict is the pin's */
        vr = s->cfg.ca_file[0] != '\0' ? SSL_get_verify_result(s->ssl) : X509_V_OK;
        if (s->pin_mismatch) {
            ERR_clear_error();
            mus_sess_fail(s, false, "certificate verification failed: certificate pin mismatch");
        } else if (vr != X509_V_OK) {
            ERR_clear_error();
            mus_sess_fail(s, false, "certificate verification failed: %s",
                          X509_verify_cert_error_string(vr));
        } else if (err == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
            mus_sess_fail(s, false, "TLS handshake failed: %s",
                          errno != 0 ? strerror(errno) : "connection closed");
        } else {
            ssl_err_text(e, sizeof(e));
            mus_sess_fail(s, false, "TLS handshake failed: %s", e);
        }
        return;
    }
    /* belt and braces: the callback has run, check the outcome again */
    if (s->cfg.ca_file[0] != '\0' && SSL_get_verify_result(s->ssl) != X509_V_OK) {
        mus_sess_fail(s, false, "certificate verification failed: %s",
                      X509_verify_cert_error_string(SSL_get_verify_result(s->ssl)));
        return;
    }
    if (s->has_pin) {
        X509 *peer = SSL_get1_peer_certificate(s->ssl);
        bool ok = pin_matches(s, peer);
        X509_free(peer);
        if (!ok) {
            mus_sess_fail(s, false, "certificate verification failed: certificate pin mismatch");
            return;
        }
    }
    log_debug("mus: headend %s (%s): %s, %s", s->cfg.name, s->cfg.addr_text[s->addr_idx],
              SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl));
    mus_sess_send_upgrade(s);
}

int
mus_sess_ssl_peer(SSL *ssl, const mus_headend_config_t *c)
{
    const char *name = c->cert_name;
    bool ip;

    if (name[0] == '\0')
        return 0;
    ip = is_ip_literal(name);
    if (!ip && SSL_set_tlsext_host_name(ssl, name) != 1)
        return -1;
    if (c->ca_file[0] != '\0') {
        X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
        if (ip)
            return X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1 ? 0 : -1;
        X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(ssl, name) != 1)
            return -1;
    }
    return 0;
}

static int
session_tls_begin(mus_sess_t *s)
{
    s->ssl = SSL_new(s->ctx);
    if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
        goto fail;
    SSL_set_app_data(s->ssl, s);
    if (mus_sess_ssl_peer(s->ssl, &s->cfg) < 0)
        goto fail;
    SSL_set_connect_state(s->ssl);
    s->state = MUS_SESSION_TLS;
    loop_timer_set(s->feed->loop, &s->timer, SESSION_PHASE_MS);
    return 0;
fail:
    {
        char e[256];
        ssl_err_text(e, sizeof(e));
        mus_sess_fail(s, false, "TLS setup failed: %s", e);
    }
    return -1;
}

void
mus_sess_io_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    mus_sess_t *s = io->arg;

    (void)loop;
    switch (s->state) {
    case MUS_SESSION_CONNECTING: {
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (soerr != 0) {
            mus_sess_fail(s, true, "connect to %s: %s", s->cfg.addr_text[s->addr_idx],
                          strerror(soerr));
            return;
        }
        if (!(events & (LOOP_WRITE | LOOP_ERROR)))
            return;
        if (session_tls_begin(s) < 0)
            return;
        session_handshake(s);
        break;
    }
    case MUS_SESSION_TLS:
        session_handshake(s);
        break;
    case MUS_SESSION_IDLE:
        return;
    default:
        if ((events & LOOP_WRITE) && s->want.read_wants_write) {
            session_read(s);
            if (s->fd < 0)
                break;
        }
        if ((events & (LOOP_READ | LOOP_ERROR)) && s->want.write_wants_read) {
            if (session_flush(s) < 0)
                break;
        }
        if (events & (LOOP_READ | LOOP_ERROR)) {
            session_read(s);
            if (s->fd < 0)
                break;
        }
        if ((events & LOOP_WRITE) && s->woff < s->wlen) {
            if (session_flush(s) < 0)
                break;
        }
        mus_sess_update_interest(s);
        break;
    }
    mus_sess_publish(s);
}

void
mus_sess_start_attempt(mus_sess_t *s)
{
    const struct sockaddr *sa = (const struct sockaddr *)&s->cfg.addrs[s->addr_idx];
    int one = 1, r;

    if (s->cfg_error[0] != '\0' || s->removed)
        return;
    s->st.last_attempt = wall_now();
    s->st.next_attempt = 0;
    snprintf(s->st.address, sizeof(s->st.address), "%s", s->cfg.addr_text[s->addr_idx]);
    s->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        mus_sess_fail(s, false, "socket: %s", strerror(errno));
        return;
    }
    (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    s->state = MUS_SESSION_CONNECTING;
    r = connect(s->fd, sa, s->cfg.addr_lens[s->addr_idx]);
    if (r < 0 && errno != EINPROGRESS) {
        mus_sess_fail(s, true, "connect to %s: %s", s->cfg.addr_text[s->addr_idx],
                      strerror(errno));
        return;
    }
    r = loop_io_start(s->feed->loop, &s->io, s->fd, LOOP_WRITE);
    if (r < 0) {
        mus_sess_fail(s, false, "epoll: %s", strerror(-r));
        return;
    }
    loop_timer_set(s->feed->loop, &s->timer, SESSION_PHASE_MS);
    log_debug("mus: headend %s: connecting to %s", s->cfg.name, s->cfg.addr_text[s->addr_idx]);
    mus_sess_publish(s);
}
