/*
 * mus/client.c: the proxy side of MUS/1 (see client.h and
 * docs/mus-protocol.md). One thread, one epoll loop, one session object per
 * configured headend. The session object lives as long as its headend is
 * configured; each attempt (TCP connect, TLS, Upgrade, auth, subscribe)
 * reuses it, and what it learnt (epoch, seq, the cached key) survives
 * reconnects. OpenSSL runs in the readiness loop as in redis tls.c: the want
 * flags of the last SSL_read/SSL_write decide the epoll interest.
 *
 * Thread model: everything below runs in the MUS thread, except
 * mus_feed_new/start/reconfigure/status/stop/free, which talk to it through a
 * mutex-protected pending configuration and status array plus an eventfd.
 *
 * It never logs the password or the derived key; both are wiped after use.
 *
 * Configuration notes: reconnect_interval_ms 0 means the default (60 s); an
 * empty client_id is sent as "musproxy"; cert_name may be empty only with a
 * pin (the Host header then carries the address). Headends are matched by
 * name on reconfigure; the map's headend index is a slot, not the position
 * in the configuration (the status array follows the configuration order).
 */
#include "client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "../common/grow.h"
#include "../common/hex.h"
#include "../common/log.h"
#include "../common/loop.h"
#include "../common/tlsio.h"
#include "proto.h"

#define SESSION_PHASE_MS       10000u  /* connect, TLS, Upgrade, auth: each */
#define SESSION_TICK_MS        1000u   /* expiry, reclaim, status counters */
#define SESSION_RESUME_WAIT_MS 3000u   /* resume accepted if no pong/snapshot by then */
#define SESSION_UPGRADE_MAX    8192    /* bytes of the 101 response head */
#define SESSION_PASSWORD_MAX   1024
#define SESSION_RBUF_CAP       (MUS_FRAME_MAX + 2)
#define SESSION_TLS12_CIPHERS  "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"

typedef struct feed_session mus_sess_t;

/* The per-headend session. Valid in every state: feed, h, cfg, ctx, the
 * timers, the position (have_pos, epoch, seq) and the key cache. Valid only
 * outside IDLE: fd (>= 0), io registered. Valid from TLS on: ssl. */
struct feed_session {
    mus_feed_t *feed;
    unsigned h;                  /* the map's headend index */
    size_t pos;                  /* index in the configuration (status order) */
    mus_headend_config_t cfg;
    char cfg_error[MUS_ERROR_MAX]; /* non-empty: never attempted */
    uint8_t pin[32];
    bool has_pin;
    SSL_CTX *ctx;

    enum mus_session_state state;
    size_t addr_idx;
    int fd;
    SSL *ssl;
    tlsio_want_t want;           /* what the last SSL_read/SSL_write waits for */
    bool pin_mismatch;           /* set by the verify callback */
    loop_io_t io;
    loop_timer_t timer;          /* phase timeout, or the next attempt when IDLE */
    loop_timer_t ping_timer;     /* PING_AFTER without sending */
    loop_timer_t dead_timer;     /* DEAD_AFTER without a frame */
    loop_timer_t ack_timer;      /* ack of applied events pending */

    char *rbuf;                  /* received bytes not yet consumed */
    size_t rlen;
    char *wbuf;                  /* bytes to send, from woff to wlen */
    size_t wlen, woff, wcap;

    /* authentication of the current attempt */
    char server_id[MUS_ID_MAX];
    uint8_t nonce[MUS_NONCE_LEN], cnonce[MUS_NONCE_LEN], cb[MUS_CB_LEN];
    bool auth_sent;

    /* derived-key cache: one entry, keyed by salt, iterations and a keyed
     * fingerprint of the password (so a changed password file is noticed) */
    bool key_valid;
    uint8_t key[MUS_KEY_LEN];
    uint8_t key_salt[MUS_SALT_MAX];
    size_t key_salt_len;
    uint32_t key_iter;
    uint8_t key_pwfp[32];

    /* synchronisation */
    bool have_pos;               /* epoch/seq describe the entries we hold */
    char epoch[MUS_EPOCH_MAX];
    uint64_t seq;
    uint64_t acked;              /* last seq acked on this connection */
    bool in_snapshot;
    char snap_epoch[MUS_EPOCH_MAX];
    uint64_t snap_seq, snap_count, snap_got;
    bool resubscribed;           /* after a gap: leftovers > seq+1 are ignored */
    uint64_t pings_sent, pongs_got;
    uint64_t barrier;            /* SYNCING ends when pongs_got reaches this (0: none) */

    bool map_connected;          /* headend_connected called, headend_lost not yet */
    int64_t lost_at;             /* unix s of the last loss, 0 if none */
    bool ever_established;
    bool removed;                /* closed for good, waiting for the deferred free */

    mus_headend_status_t st;     /* the thread's copy; published under feed->mu */
};

struct mus_feed {
    mus_map_t *map;
    loop_t *loop;
    int wake_fd;
    loop_io_t wake_io;
    loop_timer_t tick;
    pthread_t thread;
    bool started, joined;
    bool running;                /* MUS thread: leave the loop when false */
    uint8_t fp_secret[32];       /* keys the password fingerprints */

    /* owned by the MUS thread once started */
    uint32_t reconnect_ms, grace_ms;
    mus_sess_t *slots[MUS_MAP_MAX_HEADENDS];  /* indexed by map headend index */

    /* shared with other threads, under mu */
    pthread_mutex_t mu;
    mus_feed_config_t *pending;
    bool stop;
    mus_headend_status_t pub[MUS_MAP_MAX_HEADENDS];
    size_t n_pub;
};

static void session_start_attempt(mus_sess_t *s);
static void session_fail(mus_sess_t *s, bool next_addr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int session_send_frame(mus_sess_t *s, const mus_frame_t *f);
static void session_update_interest(mus_sess_t *s);
static void session_established(mus_sess_t *s, bool resumed);

/* ---- small helpers ---- */

const char *
mus_session_state_str(enum mus_session_state st)
{
    switch (st) {
    case MUS_SESSION_IDLE: return "idle";
    case MUS_SESSION_CONNECTING: return "connecting";
    case MUS_SESSION_TLS: return "tls";
    case MUS_SESSION_UPGRADE: return "upgrade";
    case MUS_SESSION_AUTH: return "auth";
    case MUS_SESSION_SYNCING: return "syncing";
    case MUS_SESSION_ESTABLISHED: return "established";
    }
    return "?";
}

static int64_t
wall_now(void)
{
    return (int64_t)time(NULL);
}

/* 64 hex digits (optionally separated by ':') -> 32 bytes. 0 or -1. */
static int
parse_pin(const char *hex, uint8_t out[32])
{
    size_t n = 0;

    for (const char *p = hex; *p != '\0';) {
        int hi, lo;
        if (*p == ':') {
            p++;
            continue;
        }
        hi = hex_digit(p[0]);
        lo = hi < 0 ? -1 : hex_digit(p[1]);
        if (hi < 0 || lo < 0 || n == 32)
            return -1;
        out[n++] = (uint8_t)(hi << 4 | lo);
        p += 2;
    }
    return n == 32 ? 0 : -1;
}

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

static bool
headend_config_equal(const mus_headend_config_t *a, const mus_headend_config_t *b)
{
    if (strcmp(a->name, b->name) != 0 || a->n_addrs != b->n_addrs ||
        strcmp(a->ca_file, b->ca_file) != 0 || strcmp(a->pin_sha256, b->pin_sha256) != 0 ||
        strcmp(a->cert_name, b->cert_name) != 0 ||
        strcmp(a->password_file, b->password_file) != 0 ||
        strcmp(a->client_id, b->client_id) != 0)
        return false;
    for (size_t i = 0; i < a->n_addrs && i < MUS_FEED_MAX_ADDRS; i++) {
        if (a->addr_lens[i] != b->addr_lens[i] ||
            memcmp(&a->addrs[i], &b->addrs[i], a->addr_lens[i]) != 0)
            return false;
    }
    return true;
}

/* Checks one headend's configuration; 0, or -1 with a message. */
static int
headend_config_check(const mus_headend_config_t *c, char *err, size_t errlen)
{
    uint8_t pin[32];

    if (memchr(c->name, '\0', sizeof(c->name)) == NULL || c->name[0] == '\0') {
        snprintf(err, errlen, "headend without a name");
        return -1;
    }
    if (c->n_addrs == 0 || c->n_addrs > MUS_FEED_MAX_ADDRS) {
        snprintf(err, errlen, "headend %s: %zu addresses (1 to %d)", c->name, c->n_addrs,
                 MUS_FEED_MAX_ADDRS);
        return -1;
    }
    for (size_t i = 0; i < c->n_addrs; i++) {
        int fam = c->addrs[i].ss_family;
        if ((fam != AF_INET && fam != AF_INET6) || c->addr_lens[i] == 0 ||
            c->addr_lens[i] > sizeof(c->addrs[i])) {
            snprintf(err, errlen, "headend %s: address %zu is not an IPv4/IPv6 address",
                     c->name, i + 1);
            return -1;
        }
    }
    if (c->ca_file[0] == '\0' && c->pin_sha256[0] == '\0') {
        snprintf(err, errlen, "headend %s: neither a CA file nor a certificate pin: "
                 "refusing to connect without verifying the headend", c->name);
        return -1;
    }
    if (c->pin_sha256[0] != '\0' && parse_pin(c->pin_sha256, pin) < 0) {
        snprintf(err, errlen, "headend %s: pin_sha256 must be 64 hex digits", c->name);
        return -1;
    }
    if (c->ca_file[0] != '\0' && c->cert_name[0] == '\0') {
        snprintf(err, errlen, "headend %s: a CA file needs the expected certificate name",
                 c->name);
        return -1;
    }
    if (c->password_file[0] == '\0') {
        snprintf(err, errlen, "headend %s: no password file", c->name);
        return -1;
    }
    return 0;
}

static int
feed_config_check(const mus_feed_config_t *cfg, char *err, size_t errlen)
{
    if (cfg->n_headends > MUS_MAP_MAX_HEADENDS) {
        snprintf(err, errlen, "%zu headends (at most %d)", cfg->n_headends,
                 MUS_MAP_MAX_HEADENDS);
        return -1;
    }
    for (size_t i = 0; i < cfg->n_headends; i++) {
        if (headend_config_check(&cfg->headends[i], err, errlen) < 0)
            return -1;
        for (size_t j = 0; j < i; j++) {
            if (strcmp(cfg->headends[i].name, cfg->headends[j].name) == 0) {
                snprintf(err, errlen, "headend %s configured twice", cfg->headends[i].name);
                return -1;
            }
        }
    }
    return 0;
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

static SSL_CTX *
make_ssl_ctx(const mus_headend_config_t *c, char *err, size_t errlen)
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

/* ---- status ---- */

static void
session_publish(mus_sess_t *s)
{
    mus_feed_t *f = s->feed;

    if (s->removed)
        return;
    s->st.state = s->state;
    snprintf(s->st.epoch, sizeof(s->st.epoch), "%s", s->have_pos ? s->epoch : "");
    s->st.seq = s->have_pos ? s->seq : 0;
    pthread_mutex_lock(&f->mu);
    if (s->pos < f->n_pub)
        f->pub[s->pos] = s->st;
    pthread_mutex_unlock(&f->mu);
}

static void
session_refresh_counters(mus_sess_t *s)
{
    mus_map_counters_t c;

    mus_map_counters(s->feed->map, (int)s->h, &c);
    s->st.entries = c.entries;
    s->st.stale_entries = c.stale_entries;
}

/* ---- connection teardown and retry ---- */

/* Closes the connection of the current attempt (nothing else). */
static void
session_close_conn(mus_sess_t *s, bool polite)
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

/* The map side of a loss: entries become stale (once per loss), and with no
 * grace they go at once, together with the position they described. */
static void
session_mark_lost(mus_sess_t *s)
{
    mus_feed_t *f = s->feed;
    int64_t now = wall_now();

    if (!s->map_connected)
        return;
    s->map_connected = false;
    s->lost_at = now;
    mus_map_headend_lost(f->map, s->h, now);
    if (f->grace_ms == 0) {
        mus_map_expire(f->map, s->h, now, 0);
        s->have_pos = false;
    }
}

static void
session_timer_cb(loop_t *loop, loop_timer_t *t)
{
    mus_sess_t *s = t->arg;

    (void)loop;
    if (s->state == MUS_SESSION_IDLE) {
        session_start_attempt(s);
        return;
    }
    switch (s->state) {
    case MUS_SESSION_CONNECTING:
        session_fail(s, true, "connect to %s timed out", s->cfg.addr_text[s->addr_idx]);
        break;
    case MUS_SESSION_TLS:
        session_fail(s, false, "TLS handshake timed out");
        break;
    case MUS_SESSION_UPGRADE:
        session_fail(s, false, "no answer to the Upgrade request");
        break;
    case MUS_SESSION_SYNCING:
        /* the pong after our subscribe is late (or never comes): with a
         * position and no snapshot started, the resume was accepted */
        if (s->in_snapshot)
            break;
        if (s->have_pos)
            session_established(s, true);
        else
            session_fail(s, false, "no snapshot after subscribe");
        session_publish(s);
        break;
    default:
        session_fail(s, false, "authentication timed out");
        break;
    }
}

/* Schedules the next attempt in ms (IDLE). */
static void
session_schedule(mus_sess_t *s, uint32_t ms)
{
    s->state = MUS_SESSION_IDLE;
    s->st.next_attempt = wall_now() + (int64_t)((ms + 999) / 1000);
    loop_timer_set(s->feed->loop, &s->timer, ms);
}

static void
session_fail(mus_sess_t *s, bool next_addr, const char *fmt, ...)
{
    mus_feed_t *f = s->feed;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->st.last_error, sizeof(s->st.last_error), fmt, ap);
    va_end(ap);
    session_close_conn(s, false);
    session_mark_lost(s);
    if (next_addr && s->addr_idx + 1 < s->cfg.n_addrs) {
        log_warn("mus: headend %s (%s): %s; trying the next address", s->cfg.name,
                 s->cfg.addr_text[s->addr_idx], s->st.last_error);
        s->addr_idx++;
        /* via a timer, not directly: events of this batch may still be
         * pending for the old descriptor */
        session_schedule(s, 0);
    } else {
        log_warn("mus: headend %s (%s): %s; next attempt in %u s", s->cfg.name,
                 s->cfg.addr_text[s->addr_idx], s->st.last_error,
                 (unsigned)((f->reconnect_ms + 999) / 1000));
        s->addr_idx = 0;
        session_schedule(s, f->reconnect_ms);
    }
    session_refresh_counters(s);
    session_publish(s);
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
            session_fail(s, false, "write failed: %s", strerror(errno));
            return -1;
        }
        ssl_err_text(e, sizeof(e));
        session_fail(s, false, "write failed: %s", e);
        return -1;
    }
    if (s->woff == s->wlen)
        s->woff = s->wlen = 0;
    session_update_interest(s);
    return 0;
}

static void
session_ping_cb(loop_t *loop, loop_timer_t *t)
{
    mus_sess_t *s = t->arg;
    mus_frame_t f = {.type = MUS_F_PING};

    (void)loop;
    s->pings_sent++;
    (void)session_send_frame(s, &f);
}

/* Queues one frame and tries to send it. 0, or -1 after the session failed. */
static int
session_send_frame(mus_sess_t *s, const mus_frame_t *f)
{
    int n;

    if (wbuf_reserve(s, MUS_FRAME_MAX + 2) < 0) {
        session_fail(s, false, "out of memory");
        return -1;
    }
    n = mus_frame_format(f, s->wbuf + s->wlen, s->wcap - s->wlen);
    if (n < 0) {
        session_fail(s, false, "cannot format a %s frame", mus_frame_type_str(f->type));
        return -1;
    }
    s->wlen += (size_t)n;
    loop_timer_set(s->feed->loop, &s->ping_timer, MUS_PING_AFTER_MS);
    return session_flush(s);
}

static int
session_send_raw(mus_sess_t *s, const char *data, size_t len)
{
    if (wbuf_reserve(s, len) < 0) {
        session_fail(s, false, "out of memory");
        return -1;
    }
    memcpy(s->wbuf + s->wlen, data, len);
    s->wlen += len;
    return session_flush(s);
}

static void
session_update_interest(mus_sess_t *s)
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
        session_fail(s, false, "epoll: %s", strerror(errno));
}

static void
session_ack_cb(loop_t *loop, loop_timer_t *t)
{
    mus_sess_t *s = t->arg;
    mus_frame_t f = {.type = MUS_F_ACK};

    (void)loop;
    if (!s->have_pos || s->seq <= s->acked || s->ssl == NULL)
        return;
    f.seq = s->seq;
    s->acked = s->seq;
    (void)session_send_frame(s, &f);
}

static void
session_arm_ack(mus_sess_t *s)
{
    if (!loop_timer_armed(&s->ack_timer))
        loop_timer_set(s->feed->loop, &s->ack_timer, MUS_ACK_EVERY_MS);
}

/* ---- protocol steps ---- */

static void
session_established(mus_sess_t *s, bool resumed)
{
    s->state = MUS_SESSION_ESTABLISHED;
    loop_timer_cancel(s->feed->loop, &s->timer);
    s->barrier = 0;
    s->resubscribed = false;
    if (s->st.connected_since == 0) {
        s->st.connected_since = wall_now();
        if (s->ever_established)
            s->st.reconnects++;
        s->ever_established = true;
        if (resumed)
            s->st.resumes++;
        s->st.last_error[0] = '\0';
        log_info("mus: headend %s (%s): %s, epoch %s seq %llu", s->cfg.name,
                 s->cfg.addr_text[s->addr_idx], resumed ? "resumed" : "in sync", s->epoch,
                 (unsigned long long)s->seq);
    }
    if (!s->map_connected) {
        mus_map_headend_connected(s->feed->map, s->h);
        s->map_connected = true;
        s->lost_at = 0;
    }
    session_refresh_counters(s);
}

/* subscribe (with our position if we have one) followed by a ping: the pong
 * tells us the headend has handled the subscribe, so a resume with nothing
 * to replay is recognised. */
static int
session_subscribe(mus_sess_t *s)
{
    mus_frame_t f = {.type = MUS_F_SUBSCRIBE};
    mus_frame_t p = {.type = MUS_F_PING};

    if (s->have_pos) {
        f.has_epoch = f.has_seq = true;
        snprintf(f.epoch, sizeof(f.epoch), "%s", s->epoch);
        f.seq = s->seq;
    }
    s->state = MUS_SESSION_SYNCING;
    loop_timer_set(s->feed->loop, &s->timer,
                   s->have_pos ? SESSION_RESUME_WAIT_MS : SESSION_PHASE_MS);
    if (session_send_frame(s, &f) < 0)
        return -1;
    s->pings_sent++;
    s->barrier = s->pings_sent;
    return session_send_frame(s, &p);
}

static int
session_on_hello(mus_sess_t *s, const mus_frame_t *fr)
{
    mus_feed_t *f = s->feed;
    mus_frame_t a = {.type = MUS_F_AUTH};
    char pw[SESSION_PASSWORD_MAX], err[MUS_ERROR_MAX];
    uint8_t fp[32];
    unsigned fplen = sizeof(fp);
    bool hit;

    if (strcmp(fr->kdf_alg, "pbkdf2-sha256") != 0) {
        session_fail(s, false, "protocol error: unsupported kdf \"%s\"", fr->kdf_alg);
        return -1;
    }
    if (fr->kdf_iter < MUS_KDF_ITER_MIN || fr->kdf_iter > MUS_KDF_ITER_MAX) {
        session_fail(s, false, "protocol error: kdf iterations %u out of range",
                     (unsigned)fr->kdf_iter);
        return -1;
    }
    if (fr->salt_len == 0 || fr->salt_len > MUS_SALT_MAX) {
        session_fail(s, false, "protocol error: bad kdf salt");
        return -1;
    }
    if (mus_read_password_file(s->cfg.password_file, pw, sizeof(pw), err, sizeof(err)) < 0) {
        OPENSSL_cleanse(pw, sizeof(pw));
        session_fail(s, false, "password file %s: %s", s->cfg.password_file, err);
        return -1;
    }
    if (HMAC(EVP_sha256(), f->fp_secret, sizeof(f->fp_secret), (const unsigned char *)pw,
             strlen(pw), fp, &fplen) == NULL) {
        OPENSSL_cleanse(pw, sizeof(pw));
        session_fail(s, false, "HMAC failed");
        return -1;
    }
    hit = s->key_valid && s->key_iter == fr->kdf_iter && s->key_salt_len == fr->salt_len &&
          memcmp(s->key_salt, fr->salt, fr->salt_len) == 0 &&
          CRYPTO_memcmp(s->key_pwfp, fp, sizeof(fp)) == 0;
    if (!hit) {
        s->key_valid = false;
        if (mus_auth_derive(pw, strlen(pw), fr->salt, fr->salt_len, fr->kdf_iter, s->key) < 0) {
            OPENSSL_cleanse(pw, sizeof(pw));
            OPENSSL_cleanse(s->key, sizeof(s->key));
            session_fail(s, false, "key derivation failed");
            return -1;
        }
        memcpy(s->key_salt, fr->salt, fr->salt_len);
        s->key_salt_len = fr->salt_len;
        s->key_iter = fr->kdf_iter;
        memcpy(s->key_pwfp, fp, sizeof(fp));
        s->key_valid = true;
        loop_update_time(f->loop); /* PBKDF2 may take a while */
    }
    OPENSSL_cleanse(pw, sizeof(pw));
    OPENSSL_cleanse(fp, sizeof(fp));

    snprintf(s->server_id, sizeof(s->server_id), "%s", fr->server_id);
    memcpy(s->nonce, fr->nonce, sizeof(s->nonce));
    if (mus_tls_channel_binding(s->ssl, s->cb) < 0) {
        session_fail(s, false, "cannot compute the TLS channel binding");
        return -1;
    }
    if (mus_random(s->cnonce, sizeof(s->cnonce)) < 0) {
        session_fail(s, false, "no random bytes");
        return -1;
    }
    snprintf(a.client_id, sizeof(a.client_id), "%s", s->cfg.client_id);
    memcpy(a.cnonce, s->cnonce, sizeof(a.cnonce));
    mus_auth_client_mac(s->key, s->nonce, s->cnonce, s->server_id, a.client_id, s->cb, a.mac);
    s->auth_sent = true;
    return session_send_frame(s, &a);
}

static int
session_on_auth_ok(mus_sess_t *s, const mus_frame_t *fr)
{
    uint8_t want[MUS_MAC_LEN];
    bool ok;

    mus_auth_server_mac(s->key, s->nonce, s->cnonce, s->server_id, s->cfg.client_id, s->cb,
                        want);
    ok = mus_auth_mac_equal(want, fr->mac);
    OPENSSL_cleanse(want, sizeof(want));
    if (!ok) {
        session_fail(s, false, "headend failed to authenticate (wrong MAC in auth_ok)");
        return -1;
    }
    log_debug("mus: headend %s: authenticated (server_id %s)", s->cfg.name, s->server_id);
    loop_timer_cancel(s->feed->loop, &s->timer);
    loop_timer_set(s->feed->loop, &s->dead_timer, MUS_DEAD_AFTER_MS);
    s->acked = 0;
    return session_subscribe(s);
}

/* add/upd/del outside a snapshot, with the seq rule. */
static int
session_on_event(mus_sess_t *s, const mus_frame_t *fr)
{
    mus_map_t *m = s->feed->map;

    if (s->in_snapshot) {
        session_fail(s, false, "protocol error: %s inside a snapshot",
                     mus_frame_type_str(fr->type));
        return -1;
    }
    if (!s->have_pos) {
        session_fail(s, false, "protocol error: %s before any snapshot",
                     mus_frame_type_str(fr->type));
        return -1;
    }
    if (fr->seq <= s->seq) {
        log_debug("mus: headend %s: duplicate %s seq %llu ignored", s->cfg.name,
                  mus_frame_type_str(fr->type), (unsigned long long)fr->seq);
        return 0;
    }
    if (fr->seq != s->seq + 1) {
        if (s->resubscribed)
            return 0; /* sent before the headend saw our new subscribe */
        log_warn("mus: headend %s: seq gap (got %llu after %llu); subscribing again",
                 s->cfg.name, (unsigned long long)fr->seq, (unsigned long long)s->seq);
        s->resubscribed = true;
        return session_subscribe(s);
    }
    if (fr->type == MUS_F_DEL)
        (void)mus_map_del(m, s->h, fr->session.sid, fr->ips, fr->n_ips);
    else
        (void)mus_map_add(m, s->h, &fr->session, fr->ips, fr->n_ips);
    s->seq = fr->seq;
    s->st.events_applied++;
    s->st.last_event = wall_now();
    session_arm_ack(s);
    return 0;
}

static int
session_on_frame(mus_sess_t *s, const mus_frame_t *fr)
{
    mus_map_t *m = s->feed->map;
    mus_frame_t out = {0};

    switch (fr->type) {
    case MUS_F_PING:
        out.type = MUS_F_PONG;
        return session_send_frame(s, &out);
    case MUS_F_PONG:
        s->pongs_got++;
        if (s->state == MUS_SESSION_SYNCING && s->barrier != 0 && s->pongs_got >= s->barrier &&
            !s->in_snapshot && s->have_pos)
            session_established(s, true);
        return 0;
    case MUS_F_ERROR:
        log_warn("mus: headend %s reports an error: %s", s->cfg.name, fr->message);
        return 0;
    case MUS_F_UNKNOWN:
        out.type = MUS_F_ERROR;
        snprintf(out.message, sizeof(out.message), "unknown frame type \"%s\"", fr->type_name);
        log_debug("mus: headend %s: unknown frame type \"%s\" ignored", s->cfg.name,
                  fr->type_name);
        return session_send_frame(s, &out);
    default:
        break;
    }

    if (s->state == MUS_SESSION_AUTH) {
        if (fr->type == MUS_F_HELLO && !s->auth_sent)
            return session_on_hello(s, fr);
        if (fr->type == MUS_F_AUTH_OK && s->auth_sent)
            return session_on_auth_ok(s, fr);
        if (fr->type == MUS_F_AUTH_FAIL) {
            session_fail(s, false, "authentication failed (wrong password?)");
            return -1;
        }
        session_fail(s, false, "protocol error: unexpected %s during authentication",
                     mus_frame_type_str(fr->type));
        return -1;
    }

    switch (fr->type) {
    case MUS_F_SNAP_BEGIN:
        if (s->in_snapshot) {
            session_fail(s, false, "protocol error: snap_begin inside a snapshot");
            return -1;
        }
        s->in_snapshot = true;
        snprintf(s->snap_epoch, sizeof(s->snap_epoch), "%s", fr->epoch);
        s->snap_seq = fr->seq;
        s->snap_count = fr->count;
        s->snap_got = 0;
        s->state = MUS_SESSION_SYNCING;
        s->resubscribed = false;
        loop_timer_cancel(s->feed->loop, &s->timer);
        mus_map_snapshot_begin(m, s->h);
        return 0;
    case MUS_F_SNAP:
        if (!s->in_snapshot) {
            session_fail(s, false, "protocol error: snap outside a snapshot");
            return -1;
        }
        (void)mus_map_snapshot_add(m, s->h, &fr->session, fr->ips, fr->n_ips);
        s->snap_got++;
        return 0;
    case MUS_F_SNAP_END:
        if (!s->in_snapshot) {
            session_fail(s, false, "protocol error: snap_end outside a snapshot");
            return -1;
        }
        if (fr->seq != s->snap_seq || s->snap_got != s->snap_count) {
            session_fail(s, false, "protocol error: snapshot of %llu sessions at seq %llu "
                         "ended with %llu at seq %llu", (unsigned long long)s->snap_count,
                         (unsigned long long)s->snap_seq, (unsigned long long)s->snap_got,
                         (unsigned long long)fr->seq);
            return -1;
        }
        mus_map_snapshot_end(m, s->h);
        s->in_snapshot = false;
        snprintf(s->epoch, sizeof(s->epoch), "%s", s->snap_epoch);
        s->seq = s->snap_seq;
        s->have_pos = true;
        s->st.snapshots++;
        s->st.last_event = wall_now();
        s->acked = 0;
        session_arm_ack(s);
        log_info("mus: headend %s: snapshot of %llu sessions, epoch %s seq %llu", s->cfg.name,
                 (unsigned long long)s->snap_count, s->epoch, (unsigned long long)s->seq);
        if (s->state == MUS_SESSION_SYNCING)
            session_established(s, false);
        return 0;
    case MUS_F_ADD:
    case MUS_F_UPD:
    case MUS_F_DEL:
        return session_on_event(s, fr);
    default:
        session_fail(s, false, "protocol error: unexpected %s", mus_frame_type_str(fr->type));
        return -1;
    }
}

/* Processes the complete lines in rbuf. 0, or -1 after the session failed. */
static int
session_consume_lines(mus_sess_t *s)
{
    size_t off = 0;
    static _Thread_local mus_frame_t fr; /* large: keep it off the stack */
    char err[128];

    while (off < s->rlen) {
        char *nl = memchr(s->rbuf + off, '\n', s->rlen - off);
        size_t len;

        if (nl == NULL)
            break;
        len = (size_t)(nl - (s->rbuf + off));
        if (len > MUS_FRAME_MAX) {
            session_fail(s, false, "protocol error: frame longer than %d bytes", MUS_FRAME_MAX);
            return -1;
        }
        if (len > 0 && s->rbuf[off + len - 1] == '\r')
            len--;
        if (len == 0) {
            off = (size_t)(nl - s->rbuf) + 1;
            continue;
        }
        memset(&fr, 0, sizeof(fr));
        if (mus_frame_parse(s->rbuf + off, len, &fr, err, sizeof(err)) < 0) {
            session_fail(s, false, "protocol error: bad frame: %s", err);
            return -1;
        }
        off = (size_t)(nl - s->rbuf) + 1;
        loop_timer_set(s->feed->loop, &s->dead_timer, MUS_DEAD_AFTER_MS);
        if (session_on_frame(s, &fr) < 0)
            return -1;
        if (s->fd < 0)
            return -1;
    }
    if (off > 0) {
        memmove(s->rbuf, s->rbuf + off, s->rlen - off);
        s->rlen -= off;
    }
    if (s->rlen > MUS_FRAME_MAX) {
        session_fail(s, false, "protocol error: frame longer than %d bytes", MUS_FRAME_MAX);
        return -1;
    }
    return 0;
}

/* The 101 response head in rbuf. 1 when done (leftover bytes are frames),
 * 0 when more is needed, -1 after the session failed. */
static int
session_check_upgrade(mus_sess_t *s)
{
    char *end, *p, *line;
    int code;
    bool upgrade_ok = false;

    end = memmem(s->rbuf, s->rlen, "\r\n\r\n", 4);
    if (end == NULL) {
        if (s->rlen >= SESSION_UPGRADE_MAX) {
            session_fail(s, false, "protocol error: Upgrade response head too long");
            return -1;
        }
        return 0;
    }
    *end = '\0';
    if (strncmp(s->rbuf, "HTTP/1.", 7) != 0 || s->rlen < 12 || s->rbuf[8] != ' ' ||
        sscanf(s->rbuf + 9, "%3d", &code) != 1) {
        session_fail(s, false, "protocol error: not an HTTP response to the Upgrade request");
        return -1;
    }
    if (code == 403) {
        session_fail(s, false, "refused by headend (403)");
        return -1;
    }
    if (code == 503) {
        session_fail(s, true, "standby (503)");
        return -1;
    }
    if (code != 101) {
        session_fail(s, false, "unexpected answer to the Upgrade request (%d)", code);
        return -1;
    }
    /* headers: require Upgrade: mus/1 */
    line = strstr(s->rbuf, "\r\n");
    while (line != NULL) {
        line += 2;
        p = strstr(line, "\r\n");
        if (p != NULL)
            *p = '\0';
        if (strncasecmp(line, "upgrade:", 8) == 0) {
            const char *v = line + 8;
            while (*v == ' ' || *v == '\t')
                v++;
            if (strncasecmp(v, MUS_UPGRADE_TOKEN, strlen(MUS_UPGRADE_TOKEN)) == 0)
                upgrade_ok = true;
        }
        line = p;
    }
    if (!upgrade_ok) {
        session_fail(s, false, "protocol error: 101 without \"Upgrade: " MUS_UPGRADE_TOKEN "\"");
        return -1;
    }
    {
        size_t head = (size_t)(end - s->rbuf) + 4;
        memmove(s->rbuf, s->rbuf + head, s->rlen - head);
        s->rlen -= head;
    }
    s->state = MUS_SESSION_AUTH;
    loop_timer_set(s->feed->loop, &s->timer, SESSION_PHASE_MS);
    return 1;
}

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
            session_fail(s, false, "protocol error: frame longer than %d bytes", MUS_FRAME_MAX);
            return;
        }
        ERR_clear_error();
        n = SSL_read(s->ssl, s->rbuf + s->rlen, (int)room);
        if (n > 0) {
            s->rlen += (size_t)n;
            if (s->state == MUS_SESSION_UPGRADE) {
                int r = session_check_upgrade(s);
                if (r < 0)
                    return;
                if (r == 0)
                    continue;
            }
            if (session_consume_lines(s) < 0)
                return;
            continue;
        }
        if (tlsio_read_waits(&s->want, s->ssl, n, &err))
            break;
        if (err == SSL_ERROR_ZERO_RETURN) {
            session_fail(s, false, "connection closed by headend");
            return;
        }
        if (err == SSL_ERROR_SYSCALL && errno != 0) {
            session_fail(s, false, "connection lost: %s", strerror(errno));
            return;
        }
        if (ERR_GET_REASON(ERR_peek_last_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING ||
            err == SSL_ERROR_SYSCALL) {
            ERR_clear_error();
            session_fail(s, false, "connection closed by headend");
            return;
        }
        ssl_err_text(e, sizeof(e));
        session_fail(s, false, "connection lost: %s", e);
        return;
    }
    session_update_interest(s);
}

/* The TLS handshake step; on completion, sends the Upgrade request. */
static void
session_handshake(mus_sess_t *s)
{
    char e[256], req[512];
    int r, err, len;
    const char *host = s->cfg.cert_name[0] != '\0' ? s->cfg.cert_name : NULL;

    ERR_clear_error();
    r = SSL_connect(s->ssl);
    if (r != 1) {
        long vr;
        uint32_t want = tlsio_wait_events(s->ssl, r, &err);
        if (want != 0) {
            if (loop_io_set(s->feed->loop, &s->io, want) < 0)
                session_fail(s, false, "epoll: %s", strerror(errno));
            return;
        }
        /* pin only: chain errors were overridden, the verdict is the pin's */
        vr = s->cfg.ca_file[0] != '\0' ? SSL_get_verify_result(s->ssl) : X509_V_OK;
        if (s->pin_mismatch) {
            ERR_clear_error();
            session_fail(s, false, "certificate verification failed: certificate pin mismatch");
        } else if (vr != X509_V_OK) {
            ERR_clear_error();
            session_fail(s, false, "certificate verification failed: %s",
                         X509_verify_cert_error_string(vr));
        } else if (err == SSL_ERROR_SYSCALL && ERR_peek_last_error() == 0) {
            session_fail(s, false, "TLS handshake failed: %s",
                         errno != 0 ? strerror(errno) : "connection closed");
        } else {
            ssl_err_text(e, sizeof(e));
            session_fail(s, false, "TLS handshake failed: %s", e);
        }
        return;
    }
    /* belt and braces: the callback has run, check the outcome again */
    if (s->cfg.ca_file[0] != '\0' && SSL_get_verify_result(s->ssl) != X509_V_OK) {
        session_fail(s, false, "certificate verification failed: %s",
                     X509_verify_cert_error_string(SSL_get_verify_result(s->ssl)));
        return;
    }
    if (s->has_pin) {
        X509 *peer = SSL_get1_peer_certificate(s->ssl);
        bool ok = pin_matches(s, peer);
        X509_free(peer);
        if (!ok) {
            session_fail(s, false, "certificate verification failed: certificate pin mismatch");
            return;
        }
    }
    log_debug("mus: headend %s (%s): %s, %s", s->cfg.name, s->cfg.addr_text[s->addr_idx],
              SSL_get_version(s->ssl), SSL_get_cipher_name(s->ssl));
    if (host == NULL)
        host = s->cfg.addr_text[s->addr_idx];
    len = snprintf(req, sizeof(req),
                   "GET " MUS_UPGRADE_PATH " HTTP/1.1\r\nHost: %s%s%s\r\n"
                   "Upgrade: " MUS_UPGRADE_TOKEN "\r\nConnection: Upgrade\r\n\r\n",
                   strchr(host, ':') != NULL && s->cfg.cert_name[0] != '\0' ? "[" : "", host,
                   strchr(host, ':') != NULL && s->cfg.cert_name[0] != '\0' ? "]" : "");
    if (len < 0 || (size_t)len >= sizeof(req)) {
        session_fail(s, false, "Upgrade request too long");
        return;
    }
    s->state = MUS_SESSION_UPGRADE;
    loop_timer_set(s->feed->loop, &s->timer, SESSION_PHASE_MS);
    if (session_send_raw(s, req, (size_t)len) < 0)
        return;
    session_update_interest(s);
}

static int
session_tls_begin(mus_sess_t *s)
{
    const char *name = s->cfg.cert_name;

    s->ssl = SSL_new(s->ctx);
    if (s->ssl == NULL || SSL_set_fd(s->ssl, s->fd) != 1)
        goto fail;
    SSL_set_app_data(s->ssl, s);
    if (name[0] != '\0') {
        bool ip = is_ip_literal(name);
        if (!ip && SSL_set_tlsext_host_name(s->ssl, name) != 1)
            goto fail;
        if (s->cfg.ca_file[0] != '\0') {
            X509_VERIFY_PARAM *vp = SSL_get0_param(s->ssl);
            if (ip) {
                if (X509_VERIFY_PARAM_set1_ip_asc(vp, name) != 1)
                    goto fail;
            } else {
                X509_VERIFY_PARAM_set_hostflags(vp, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
                if (SSL_set1_host(s->ssl, name) != 1)
                    goto fail;
            }
        }
    }
    SSL_set_connect_state(s->ssl);
    s->state = MUS_SESSION_TLS;
    loop_timer_set(s->feed->loop, &s->timer, SESSION_PHASE_MS);
    return 0;
fail:
    {
        char e[256];
        ssl_err_text(e, sizeof(e));
        session_fail(s, false, "TLS setup failed: %s", e);
    }
    return -1;
}

static void
session_io_cb(loop_t *loop, loop_io_t *io, uint32_t events)
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
            session_fail(s, true, "connect to %s: %s", s->cfg.addr_text[s->addr_idx],
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
        session_update_interest(s);
        break;
    }
    session_publish(s);
}

static void
session_dead_cb(loop_t *loop, loop_timer_t *t)
{
    mus_sess_t *s = t->arg;

    (void)loop;
    session_fail(s, false, "no frame from the headend for %u s: session dead",
                 (unsigned)(MUS_DEAD_AFTER_MS / 1000));
}

static void
session_start_attempt(mus_sess_t *s)
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
        session_fail(s, false, "socket: %s", strerror(errno));
        return;
    }
    (void)setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    s->state = MUS_SESSION_CONNECTING;
    r = connect(s->fd, sa, s->cfg.addr_lens[s->addr_idx]);
    if (r < 0 && errno != EINPROGRESS) {
        session_fail(s, true, "connect to %s: %s", s->cfg.addr_text[s->addr_idx],
                     strerror(errno));
        return;
    }
    r = loop_io_start(s->feed->loop, &s->io, s->fd, LOOP_WRITE);
    if (r < 0) {
        session_fail(s, false, "epoll: %s", strerror(-r));
        return;
    }
    loop_timer_set(s->feed->loop, &s->timer, SESSION_PHASE_MS);
    log_debug("mus: headend %s: connecting to %s", s->cfg.name, s->cfg.addr_text[s->addr_idx]);
    session_publish(s);
}

/* ---- session objects ---- */

static void
session_free(mus_sess_t *s)
{
    if (s == NULL)
        return;
    SSL_free(s->ssl);
    if (s->fd >= 0)
        close(s->fd);
    SSL_CTX_free(s->ctx);
    free(s->rbuf);
    free(s->wbuf);
    OPENSSL_cleanse(s, sizeof(*s));
    free(s);
}

static void
session_free_deferred(void *arg)
{
    session_free(arg);
}

/* A session for configuration c in map slot h (declared to the map if
 * declare). A configuration error (or a CA file that cannot be loaded) is
 * returned in err and, if keep_bad, the session is still created, with the
 * error in its status and no attempts. */
static mus_sess_t *
session_new(mus_feed_t *f, unsigned h, size_t pos, const mus_headend_config_t *c, bool keep_bad,
            bool declare, char *err, size_t errlen)
{
    mus_sess_t *s = calloc(1, sizeof(*s));

    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->feed = f;
    s->h = h;
    s->pos = pos;
    s->cfg = *c;
    s->fd = -1;
    if (s->cfg.client_id[0] == '\0')
        snprintf(s->cfg.client_id, sizeof(s->cfg.client_id), "musproxy");
    loop_io_init(&s->io, session_io_cb, s);
    loop_timer_init(&s->timer, session_timer_cb, s);
    loop_timer_init(&s->ping_timer, session_ping_cb, s);
    loop_timer_init(&s->dead_timer, session_dead_cb, s);
    loop_timer_init(&s->ack_timer, session_ack_cb, s);
    s->rbuf = malloc(SESSION_RBUF_CAP);
    if (s->rbuf == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->st.name, sizeof(s->st.name), "%s", c->name);
    snprintf(s->st.address, sizeof(s->st.address), "%s", c->addr_text[0]);
    if (headend_config_check(c, err, errlen) == 0) {
        s->has_pin = c->pin_sha256[0] != '\0' && parse_pin(c->pin_sha256, s->pin) == 0;
        s->ctx = make_ssl_ctx(c, err, errlen);
    }
    if (s->ctx == NULL) {
        if (!keep_bad) {
            session_free(s);
            return NULL;
        }
        snprintf(s->cfg_error, sizeof(s->cfg_error), "configuration error: %s", err);
        snprintf(s->st.last_error, sizeof(s->st.last_error), "%s", s->cfg_error);
    }
    if (declare && mus_map_headend_set(f->map, h, c->name) < 0) {
        snprintf(err, errlen, "headend %s: map slot %u refused", c->name, h);
        session_free(s);
        return NULL;
    }
    return s;
}

/* Closes a session for good and frees it after the current batch. With
 * drop_entries (a removed headend) its entries leave the map at once. */
static void
session_retire(mus_sess_t *s, bool drop_entries)
{
    mus_feed_t *f = s->feed;
    int64_t now = wall_now();

    session_close_conn(s, true);
    if (drop_entries) {
        mus_map_headend_lost(f->map, s->h, now);
        (void)mus_map_expire(f->map, s->h, now, 0);
        s->map_connected = false;
    } else {
        session_mark_lost(s);
    }
    s->removed = true;
    if (f->slots[s->h] == s)
        f->slots[s->h] = NULL;
    if (loop_defer(f->loop, session_free_deferred, s) < 0)
        log_error("mus: cannot defer a free: leaking one session object");
}

/* A changed configuration for old's headend (same name): a new session in
 * the same map slot that inherits what it can resume from (position, the
 * key cache, which checks the password anyway, and the counters); the
 * entries stay, stale, until the new session is in sync. */
static mus_sess_t *
session_replace(mus_sess_t *old, size_t pos, const mus_headend_config_t *c)
{
    mus_feed_t *f = old->feed;
    char err[MUS_ERROR_MAX];
    mus_sess_t *ns;

    session_close_conn(old, true);
    session_mark_lost(old);
    ns = session_new(f, old->h, pos, c, true, false, err, sizeof(err));
    if (ns == NULL) {
        log_error("mus: headend %s: %s", c->name, err);
        session_retire(old, true);
        return NULL;
    }
    ns->have_pos = old->have_pos;
    memcpy(ns->epoch, old->epoch, sizeof(ns->epoch));
    ns->seq = old->seq;
    ns->lost_at = old->lost_at;
    ns->ever_established = old->ever_established;
    ns->key_valid = old->key_valid;
    memcpy(ns->key, old->key, sizeof(ns->key));
    memcpy(ns->key_salt, old->key_salt, sizeof(ns->key_salt));
    ns->key_salt_len = old->key_salt_len;
    ns->key_iter = old->key_iter;
    memcpy(ns->key_pwfp, old->key_pwfp, sizeof(ns->key_pwfp));
    ns->st.reconnects = old->st.reconnects;
    ns->st.snapshots = old->st.snapshots;
    ns->st.resumes = old->st.resumes;
    ns->st.events_applied = old->st.events_applied;
    ns->st.last_event = old->st.last_event;
    session_retire(old, false);
    f->slots[ns->h] = ns;
    return ns;
}

/* ---- the feed ---- */

static void
feed_publish_all(mus_feed_t *f, size_t n)
{
    pthread_mutex_lock(&f->mu);
    f->n_pub = n;
    for (unsigned h = 0; h < MUS_MAP_MAX_HEADENDS; h++) {
        mus_sess_t *s = f->slots[h];
        if (s != NULL && s->pos < n) {
            s->st.state = s->state;
            snprintf(s->st.epoch, sizeof(s->st.epoch), "%s", s->have_pos ? s->epoch : "");
            s->st.seq = s->have_pos ? s->seq : 0;
            f->pub[s->pos] = s->st;
        }
    }
    pthread_mutex_unlock(&f->mu);
}

static void
feed_tick_cb(loop_t *loop, loop_timer_t *t)
{
    mus_feed_t *f = t->arg;
    int64_t now = wall_now();
    int64_t grace_s = (int64_t)((f->grace_ms + 999) / 1000);

    for (unsigned h = 0; h < MUS_MAP_MAX_HEADENDS; h++) {
        mus_sess_t *s = f->slots[h];
        if (s == NULL)
            continue;
        if (!s->map_connected) {
            size_t n = mus_map_expire(f->map, h, now, grace_s);
            if (n > 0)
                log_warn("mus: headend %s: disconnected for more than %lld s, dropped %zu "
                         "stale entries", s->cfg.name, (long long)grace_s, n);
            /* entries are gone: our position no longer describes the map */
            if (s->have_pos && s->lost_at != 0 && now - s->lost_at >= grace_s)
                s->have_pos = false;
        }
        session_refresh_counters(s);
    }
    (void)mus_map_reclaim(f->map);
    feed_publish_all(f, f->n_pub);
    loop_timer_set(loop, t, SESSION_TICK_MS);
}

/* MUS thread: applies a new configuration. Headends are matched by name:
 * an identical configuration keeps its session, a changed one is replaced
 * (same map slot), a removed one is closed and its entries dropped. */
static void
feed_apply(mus_feed_t *f, const mus_feed_config_t *cfg)
{
    mus_sess_t *by_pos[MUS_MAP_MAX_HEADENDS] = {0};
    bool fresh[MUS_MAP_MAX_HEADENDS] = {0};
    size_t n = cfg->n_headends < MUS_MAP_MAX_HEADENDS ? cfg->n_headends : MUS_MAP_MAX_HEADENDS;
    char err[MUS_ERROR_MAX];

    f->reconnect_ms = cfg->reconnect_interval_ms ? cfg->reconnect_interval_ms : 60000u;
    f->grace_ms = cfg->grace_ms;
    for (unsigned h = 0; h < MUS_MAP_MAX_HEADENDS; h++) {
        mus_sess_t *s = f->slots[h];
        size_t i;
        if (s == NULL)
            continue;
        for (i = 0; i < n; i++)
            if (by_pos[i] == NULL && strcmp(s->cfg.name, cfg->headends[i].name) == 0)
                break;
        if (i == n) {
            log_info("mus: headend %s removed", s->cfg.name);
            session_retire(s, true);
            continue;
        }
        mus_headend_config_t c = cfg->headends[i];
        if (c.client_id[0] == '\0')
            snprintf(c.client_id, sizeof(c.client_id), "musproxy");
        if (s->cfg_error[0] == '\0' && headend_config_equal(&s->cfg, &c)) {
            s->pos = i;
            by_pos[i] = s;
            continue;
        }
        log_info("mus: headend %s reconfigured", s->cfg.name);
        by_pos[i] = session_replace(s, i, &cfg->headends[i]);
        fresh[i] = by_pos[i] != NULL;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned h;
        mus_sess_t *s;
        if (by_pos[i] != NULL)
            continue;
        for (h = 0; h < MUS_MAP_MAX_HEADENDS && f->slots[h] != NULL; h++)
            ;
        if (h == MUS_MAP_MAX_HEADENDS) {
            log_error("mus: headend %s: no free slot", cfg->headends[i].name);
            continue;
        }
        s = session_new(f, h, i, &cfg->headends[i], true, true, err, sizeof(err));
        if (s == NULL) {
            log_error("mus: headend %s: %s", cfg->headends[i].name, err);
            continue;
        }
        log_info("mus: headend %s added", s->cfg.name);
        f->slots[h] = s;
        by_pos[i] = s;
        fresh[i] = true;
    }
    for (size_t i = 0; i < n; i++) {
        mus_sess_t *s = by_pos[i];
        if (s == NULL || !fresh[i])
            continue;
        if (s->cfg_error[0] != '\0')
            log_error("mus: headend %s: %s", s->cfg.name, s->cfg_error);
        else
            session_schedule(s, 0);
    }
    pthread_mutex_lock(&f->mu);
    memset(f->pub, 0, sizeof(f->pub));
    for (size_t i = 0; i < n; i++)   /* headends that could not be created */
        if (by_pos[i] == NULL) {
            snprintf(f->pub[i].name, sizeof(f->pub[i].name), "%s", cfg->headends[i].name);
            snprintf(f->pub[i].last_error, sizeof(f->pub[i].last_error),
                     "could not be started (see the log)");
        }
    pthread_mutex_unlock(&f->mu);
    feed_publish_all(f, n);
}

static void
feed_wake_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    mus_feed_t *f = io->arg;
    mus_feed_config_t *cfg;
    uint64_t v;
    bool stop;

    (void)loop;
    (void)events;
    while (read(f->wake_fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        ;
    pthread_mutex_lock(&f->mu);
    cfg = f->pending;
    f->pending = NULL;
    stop = f->stop;
    pthread_mutex_unlock(&f->mu);
    if (stop) {
        f->running = false;
        free(cfg);
        return;
    }
    if (cfg != NULL) {
        feed_apply(f, cfg);
        free(cfg);
    }
}

static void
feed_wake(mus_feed_t *f)
{
    uint64_t one = 1;

    while (write(f->wake_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static void *
feed_thread(void *arg)
{
    mus_feed_t *f = arg;

    for (unsigned h = 0; h < MUS_MAP_MAX_HEADENDS; h++) {
        mus_sess_t *s = f->slots[h];
        if (s != NULL && s->cfg_error[0] == '\0')
            session_schedule(s, 0);
    }
    loop_timer_set(f->loop, &f->tick, SESSION_TICK_MS);
    while (f->running) {
        int r = loop_run_once(f->loop, -1);
        if (r < 0) {
            log_error("mus: event loop: %s", strerror(-r));
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    for (unsigned h = 0; h < MUS_MAP_MAX_HEADENDS; h++) {
        mus_sess_t *s = f->slots[h];
        if (s == NULL)
            continue;
        session_close_conn(s, true);
        session_mark_lost(s);
        s->state = MUS_SESSION_IDLE;
        s->st.next_attempt = 0;
    }
    loop_timer_cancel(f->loop, &f->tick);
    loop_run_once(f->loop, 0); /* runs the deferred frees */
    feed_publish_all(f, f->n_pub);
    OPENSSL_thread_stop();
    return NULL;
}

mus_feed_t *
mus_feed_new(mus_map_t *map, const mus_feed_config_t *cfg, char *err, size_t errlen)
{
    mus_feed_t *f;
    size_t n;

    if (feed_config_check(cfg, err, errlen) < 0)
        return NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    f->map = map;
    f->wake_fd = -1;
    f->running = true;
    f->reconnect_ms = cfg->reconnect_interval_ms ? cfg->reconnect_interval_ms : 60000u;
    f->grace_ms = cfg->grace_ms;
    pthread_mutex_init(&f->mu, NULL);
    loop_timer_init(&f->tick, feed_tick_cb, f);
    loop_io_init(&f->wake_io, feed_wake_cb, f);
    if (RAND_bytes(f->fp_secret, sizeof(f->fp_secret)) != 1) {
        snprintf(err, errlen, "no random bytes");
        goto fail;
    }
    f->loop = loop_new();
    if (f->loop == NULL) {
        snprintf(err, errlen, "cannot create the event loop: %s", strerror(errno));
        goto fail;
    }
    f->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (f->wake_fd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    if (loop_io_start(f->loop, &f->wake_io, f->wake_fd, LOOP_READ) < 0) {
        snprintf(err, errlen, "epoll: %s", strerror(errno));
        goto fail;
    }
    n = cfg->n_headends;
    for (size_t i = 0; i < n; i++) {
        mus_sess_t *s = session_new(f, (unsigned)i, i, &cfg->headends[i], false, true, err,
                                    errlen);
        if (s == NULL)
            goto fail;
        f->slots[i] = s;
    }
    feed_publish_all(f, n);
    return f;
fail:
    mus_feed_free(f);
    return NULL;
}

int
mus_feed_start(mus_feed_t *f)
{
    sigset_t all, old;
    int r;

    if (f->started)
        return -EALREADY;
    /* the MUS thread takes no signals (SIGPIPE from a write included) */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    r = pthread_create(&f->thread, NULL, feed_thread, f);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (r != 0)
        return -r;
    f->started = true;
    return 0;
}

void
mus_feed_reconfigure(mus_feed_t *f, const mus_feed_config_t *cfg)
{
    mus_feed_config_t *copy = malloc(sizeof(*copy));

    if (copy == NULL) {
        log_error("mus: reconfigure: out of memory");
        return;
    }
    *copy = *cfg;
    if (copy->n_headends > MUS_MAP_MAX_HEADENDS) {
        log_error("mus: reconfigure: %zu headends, only the first %d are used",
                  copy->n_headends, MUS_MAP_MAX_HEADENDS);
        copy->n_headends = MUS_MAP_MAX_HEADENDS;
    }
    pthread_mutex_lock(&f->mu);
    free(f->pending);
    f->pending = copy;
    pthread_mutex_unlock(&f->mu);
    feed_wake(f);   /* an eventfd keeps counting until the thread reads it */
}

size_t
mus_feed_status(mus_feed_t *f, mus_headend_status_t *out, size_t max)
{
    size_t n;

    pthread_mutex_lock(&f->mu);
    n = f->n_pub < max ? f->n_pub : max;
    memcpy(out, f->pub, n * sizeof(*out));
    pthread_mutex_unlock(&f->mu);
    return n;
}

void
mus_feed_stop(mus_feed_t *f)
{
    if (f == NULL || !f->started || f->joined)
        return;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_mutex_unlock(&f->mu);
    feed_wake(f);
    pthread_join(f->thread, NULL);
    f->joined = true;
}

void
mus_feed_free(mus_feed_t *f)
{
    if (f == NULL)
        return;
    mus_feed_stop(f);
    for (unsigned h = 0; h < MUS_MAP_MAX_HEADENDS; h++) {
        mus_sess_t *s = f->slots[h];
        if (s == NULL)
            continue;
        if (s->fd >= 0 && f->loop != NULL)
            loop_io_stop(f->loop, &s->io);
        session_free(s);
        f->slots[h] = NULL;
    }
    if (f->loop != NULL && f->wake_fd >= 0)
        loop_io_stop(f->loop, &f->wake_io);
    if (f->wake_fd >= 0)
        close(f->wake_fd);
    loop_free(f->loop);
    free(f->pending);
    pthread_mutex_destroy(&f->mu);
    OPENSSL_cleanse(f->fp_secret, sizeof(f->fp_secret));
    free(f);
}
