/*
 * mus/headend_conn.c: the proxy connections of mus-headend (see
 * headend_int.h): the TLS listener (numeric addresses, SO_REUSEADDR,
 * accept paused for 1 s when out of descriptors or memory, at most
 * HE_MAX_CONNS), the server TLS context (TLS 1.2+, ECDHE AEAD suites), the
 * life of a connection (one close path, freed after the batch) and its TLS
 * I/O in the readiness loop: the handshake, reads handed to
 * headend_session.c, writes in HE_WRITE_CHUNK pieces, the want flags of
 * common/tlsio.h and the loop interest. It does not parse the upgrade
 * request or frames, authenticate or decide what is sent
 * (headend_session.c).
 */
#include "headend_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "../common/grow.h"
#include "../common/log.h"

/* ---- helpers ---- */

const char *he_ssl_err_str(void)
{
    static char buf[256];
    unsigned long e = ERR_get_error();
    if (!e)
        return "unexpected EOF or I/O error";
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

static const char *conn_state_str(enum conn_state s)
{
    static const char *const n[] = {"tls", "http", "auth", "held", "ready", "closing"};
    return (unsigned)s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

/* ---- connection output ---- */

int he_out_append(conn_t *c, const char *data, size_t len)
{
    if (c->out_off > 0 && c->out_off == c->out_len)
        c->out_off = c->out_len = 0;
    if (c->out_len + len > c->out_cap) {
        if (c->out_off > 0) {
            memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
            c->out_len -= c->out_off;
            c->out_off = 0;
        }
        if (c->out_len + len > c->out_cap) {
            size_t cap = grow_cap(c->out_cap, c->out_len + len, 16384, SIZE_MAX);
            char *n = cap ? realloc(c->out, cap) : NULL;
            if (!n)
                return -1;
            c->out = n;
            c->out_cap = cap;
        }
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

/* ---- connection lifecycle ---- */

static void conn_free_deferred(void *arg)
{
    conn_t *c = arg;
    free(c->in);
    free(c->out);
    free(c);
}

void he_conn_close(conn_t *c, const char *fmt, ...)
{
    if (c->dead)
        return;
    headend_t *he = c->he;
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    log_info("proxy %s%s%s: closed in state %s: %s", c->peer_str, c->client_id[0] ? " " : "",
             c->client_id, conn_state_str(c->state), why);
    c->dead = true;
    he_held_release(c);
    loop_io_stop(he->loop, &c->io);
    loop_timer_cancel(he->loop, &c->timer);
    if (c->ssl) {
        if (c->state != CS_TLS)
            (void)SSL_shutdown(c->ssl);   /* best effort close_notify, never waits */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    ERR_clear_error();
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        he->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    he->n_conns--;
    if (loop_defer(he->loop, conn_free_deferred, c) < 0)
        log_warn("cannot defer freeing a connection: leaked");
}

/* ---- TLS I/O ---- */

static void conn_read(conn_t *c)
{
    size_t cap = MUS_FRAME_MAX + 2;
    c->want.read_wants_write = false;
    while (!c->dead) {
        if (c->in_len >= cap) {
            he_conn_close(c, "input overflow");
            return;
        }
        int n = SSL_read(c->ssl, c->in + c->in_len, (int)(cap - c->in_len));
        if (n > 0) {
            if (c->state == CS_CLOSING)
                continue;   /* discard */
            c->in_len += (size_t)n;
            he_process_input(c);
            continue;
        }
        int e;
        if (tlsio_read_waits(&c->want, c->ssl, n, &e))
            return;
        if (e == SSL_ERROR_ZERO_RETURN) {
            he_conn_close(c, "closed by the proxy");
            return;
        }
        he_conn_close(c, "read error: %s", e == SSL_ERROR_SYSCALL && errno ? strerror(errno)
                                                                       : he_ssl_err_str());
        return;
    }
}

static void conn_flush(conn_t *c)
{
    c->want.write_wants_read = false;
    while (!c->dead && he_out_pending(c) > 0) {
        size_t chunk = he_out_pending(c) < HE_WRITE_CHUNK ? he_out_pending(c) : HE_WRITE_CHUNK;
        int n = SSL_write(c->ssl, c->out + c->out_off, (int)chunk);
        if (n > 0) {
            c->out_off += (size_t)n;
            c->last_tx = c->last_rx = loop_now(c->he->loop);   /* the peer reads: alive */
            if (he_out_pending(c) == 0)
                c->out_off = c->out_len = 0;
            he_conn_pump(c);
            continue;
        }
        int e;
        if (tlsio_write_waits(&c->want, c->ssl, n, &e))
            return;
        he_conn_close(c, "write error: %s", e == SSL_ERROR_SYSCALL && errno ? strerror(errno)
                                                                        : he_ssl_err_str());
        return;
    }
    if (!c->dead && c->state == CS_CLOSING && he_out_pending(c) == 0)
        he_conn_close(c, "final answer sent");
}

static void conn_update_interest(conn_t *c)
{
    if (c->dead)
        return;
    uint32_t want = LOOP_READ;
    if (he_out_pending(c) > 0 || c->want.read_wants_write)
        want |= LOOP_WRITE;
    if (loop_io_set(c->he->loop, &c->io, want) < 0)
        he_conn_close(c, "epoll: %s", strerror(errno));
}

void he_conn_run(conn_t *c)
{
    if (c->dead)
        return;
    if (c->state == CS_TLS) {
        int r = SSL_accept(c->ssl);
        if (r != 1) {
            int e;
            uint32_t want = tlsio_wait_events(c->ssl, r, &e);
            if (want != 0) {
                loop_io_set(c->he->loop, &c->io, want);
                return;
            }
            he_conn_close(c, "TLS handshake failed: %s",
                          e == SSL_ERROR_SYSCALL && errno ? strerror(errno) : he_ssl_err_str());
            return;
        }
        c->state = CS_HTTP;
        log_debug("proxy %s: TLS %s %s", c->peer_str, SSL_get_version(c->ssl),
                  SSL_get_cipher_name(c->ssl));
    }
    conn_read(c);
    he_conn_pump(c);
    conn_flush(c);
    conn_update_interest(c);
}

static void conn_io_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    (void)loop;
    (void)events;
    he_conn_run(io->arg);
}

/* ---- listening and accepting ---- */

/* Binds "ADDR:PORT" ("[V6]:PORT"; with a default port also "ADDR" and
 * "[V6]") for TCP (listening) or UDP. -1: bad spec, -2: errno. */
int he_listen_on(const char *spec, int socktype, const char *default_port)
{
    char host[256], *port;
    if (snprintf(host, sizeof(host), "%s", spec) >= (int)sizeof(host))
        return -1;
    char *h = host;
    if (h[0] == '[') {
        char *rb = strchr(h, ']');
        if (!rb || (rb[1] != ':' && !(rb[1] == '\0' && default_port)))
            return -1;
        port = rb[1] ? rb + 2 : (char *)default_port;
        *rb = '\0';
        h++;
    } else {
        port = strrchr(h, ':');
        if (port && strchr(h, ':') != port)
            port = NULL;   /* a bare IPv6 address */
        if (!port && !default_port)
            return -1;
        if (port)
            *port++ = '\0';
        else
            port = (char *)default_port;
    }
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                             .ai_socktype = socktype};
    struct addrinfo *ai;
    if (getaddrinfo(*h ? h : NULL, port, &hints, &ai) != 0)
        return -1;
    int fd = socket(ai->ai_family, socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0 && ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));   /* [::] and 0.0.0.0 both */
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        (socktype == SOCK_STREAM && listen(fd, 128) < 0)) {
        int saved = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        errno = saved;
        return -2;
    }
    freeaddrinfo(ai);
    return fd;
}

SSL_CTX *he_tls_server_ctx(const char *cert, const char *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20") != 1 ||
        SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static void accept_resume(loop_t *loop, loop_timer_t *t)
{
    headend_t *he = t->arg;
    loop_io_set(loop, &he->lio, LOOP_READ);
}

static void accept_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    headend_t *he = io->arg;
    (void)events;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int fd = accept4(he->lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("accept: %s; pausing for 1 s", strerror(errno));
                loop_io_set(loop, &he->lio, 0);
                loop_timer_set(loop, &he->accept_pause, 1000);
                return;
            }
            log_error("accept: %s", strerror(errno));
            return;
        }
        char addr[CIDR_STRLEN];
        cidr_addr_str((struct sockaddr *)&ss, addr, sizeof(addr));
        if (he->n_conns >= HE_MAX_CONNS) {
            log_warn("proxy %s: refused, %d connections already", addr, HE_MAX_CONNS);
            close(fd);
            continue;
        }
        conn_t *c = calloc(1, sizeof(*c));
        char *in = malloc(MUS_FRAME_MAX + 2);
        SSL *ssl = SSL_new(he->ctx);
        if (!c || !in || !ssl || SSL_set_fd(ssl, fd) != 1) {
            log_error("proxy %s: out of memory", addr);
            free(c);
            free(in);
            SSL_free(ssl);
            close(fd);
            continue;
        }
        c->he = he;
        c->fd = fd;
        c->ssl = ssl;
        c->in = in;
        c->peer = ss;
        snprintf(c->peer_str, sizeof(c->peer_str), "%s", addr);
        c->state = CS_TLS;
        c->out_limit = HE_OUT_SLACK;
        c->created = c->last_rx = c->last_tx = loop_now(loop);
        SSL_set_accept_state(ssl);
        loop_io_init(&c->io, conn_io_cb, c);
        loop_timer_init(&c->timer, he_conn_timer_cb, c);
        if (loop_io_start(loop, &c->io, fd, LOOP_READ) < 0) {
            log_error("proxy %s: epoll: %s", addr, strerror(errno));
            SSL_free(ssl);
            close(fd);
            free(in);
            free(c);
            continue;
        }
        loop_timer_set(loop, &c->timer, HE_PREAUTH_MS);
        c->next = he->conns;
        if (he->conns)
            he->conns->prev = c;
        he->conns = c;
        he->n_conns++;
        log_debug("proxy %s: connected", addr);
    }
}

/* Binds --listen and starts accepting. 0, or -1 (logged). */
int he_listener_start(headend_t *he)
{
    he->lfd = he_listen_on(he->listen, SOCK_STREAM, NULL);
    if (he->lfd < 0) {
        log_error("--listen %s: %s", he->listen,
                  he->lfd == -1 ? "not a numeric ADDR:PORT" : strerror(errno));
        return -1;
    }
    loop_io_init(&he->lio, accept_cb, he);
    loop_timer_init(&he->accept_pause, accept_resume, he);
    if (loop_io_start(he->loop, &he->lio, he->lfd, LOOP_READ) < 0)
        return -1;
    return 0;
}
