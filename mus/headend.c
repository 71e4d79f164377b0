/*
 * mus/headend.c: mus-headend, a MUS/1 headend (docs/mus-protocol.md) next to
 * ocserv (or fed by anything that can write a datagram). One thread, one
 * common/loop epoll loop, non-blocking OpenSSL TLS server.
 *
 * Usage:
 *   mus-headend --cert FILE --key FILE --password-file FILE [options]
 *     --listen ADDR:PORT      TLS listener (default 127.0.0.1:11999; IPv6 as [::1]:11999)
 *     --allow CIDR            proxy addresses allowed (repeatable; default 127.0.0.0/8, ::1)
 *     --server-id NAME        hello server_id (default "mus-headend")
 *     --socket PATH           local feed socket (Unix datagram; none by default)
 *     --socket-mode MODE      its mode, octal (default 0600)
 *     --sessions FILE         static sessions (JSON lines), loaded at start and on SIGHUP
 *     --occtl-interval SEC    poll `occtl -j show users` every SEC seconds (0 = off, default)
 *     --occtl PATH            the occtl binary (default "occtl", searched in PATH)
 *     --swanctl-interval SEC  poll `swanctl --list-sas` every SEC seconds (0 = off, default)
 *     --swanctl PATH          the swanctl binary (default "swanctl")
 *     --radius ADDR[:PORT]    RADIUS accounting listener, UDP (repeatable; port 1813 by
 *                             default; IPv6 as [::]:1813); needs --radius-clients
 *     --radius-clients FILE   "ADDRESS_OR_PREFIX SECRET" lines, mode 0600; reloaded on SIGHUP
 *     --radius-groups SRC     class (default), filter-id, avpair[:KEY] (Cisco-AVPair
 *                             KEY=group, KEY default "group") or none
 *     --radius-machine-user RE   a User-Name matching this PCRE2 pattern is a machine
 *     --radius-machine-avpair K=V a Cisco-AVPair equal to K=V makes it a machine
 *     --radius-interim SEC    interval assumed when a packet has no Acct-Interim-Interval
 *                             (default 0: such sessions never go stale)
 *     --stale-after N         no refresh for N intervals: stale (default 3)
 *     --stale-grace SEC       stale this long: removed (default 300)
 *     --status-file PATH      JSON counters, rewritten every second when they change
 *     --standby               answer 503 to every upgrade (active/standby pairs)
 *     --journal N             events kept for resume (default 10000)
 *     --kdf-iter N            PBKDF2 iterations announced in hello (default 100000)
 *     --log-level LEVEL       error|warn|info|debug (default info); logs go to stderr
 *
 * Local feed (fire and forget, one JSON object per datagram, optional '\n'):
 *   {"op":"connect","s":{session}}           session as in snap/add frames
 *   {"op":"disconnect","sid":"...","reason":"logout"}
 * The headend never answers. `musctl notify` is the ocserv connect/disconnect
 * script that writes them.
 *
 * Proxy session: TLS 1.2+ -> "GET /mus/v1" with "Upgrade: mus/1" -> 101 (403
 * source not allowed, 400 bad request, 503 standby) immediately followed by
 * the hello frame -> auth -> auth_ok (or auth_fail and close; held 2 s for an
 * address with repeated failures, mus/headend_authlimit.h) -> subscribe ->
 * snapshot or journal replay -> live add/upd/del. The password is read once at
 * start, turned into the PBKDF2 key (random salt per start) and wiped; the key
 * is wiped on exit. Signals: SIGHUP reloads --sessions and --radius-clients,
 * SIGINT/SIGTERM exit. The RADIUS listener is mus/headend_radius.c, the
 * occtl/swanctl polls mus/headend_poll.c.
 *
 * Feed datagrams may name their feed: "feed":"strongswan" (musctl notify run
 * by strongSwan's updown) puts the session in the strongSwan origin, which
 * the swanctl poll reconciles; anything else is ocserv's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../common/cidr.h"
#include "../common/grow.h"
#include "../common/log.h"
#include "../common/loop.h"
#include "../common/tlsio.h"
#include "headend_authlimit.h"
#include "headend_poll.h"
#include "headend_radius.h"
#include "headend_store.h"
#include "proto.h"

#define HE_MAX_CONNS        1024
#define HE_MAX_ALLOW        64
#define HE_HTTP_MAX         8192            /* upgrade request head */
#define HE_PREAUTH_MS       10000           /* TLS + upgrade + auth must fit in this */
#define HE_OUT_LOW          (256u * 1024)   /* pump journal events below this */
#define HE_OUT_SLACK        (4u * 1024 * 1024) /* more unread output than this: disconnect */
#define HE_WRITE_CHUNK      16384
#define HE_SALT_LEN         16
#define HE_DEFAULT_LISTEN   "127.0.0.1:11999"
#define HE_RADIUS_PORT      "1813"
#define HE_TICK_MS          1000            /* stale sweep and status file */

/* Life of a proxy connection. */
enum conn_state {
    CS_TLS,      /* TLS handshake in progress */
    CS_HTTP,     /* reading the upgrade request; in holds the head so far */
    CS_AUTH,     /* 101 + hello sent; waiting for auth */
    CS_HELD,     /* auth checked, its answer held (headend_authlimit.h); timer sends it */
    CS_READY,    /* authenticated; subscribed once subscribe arrived */
    CS_CLOSING,  /* flushing a final answer, then closing */
};

static const char *conn_state_str(enum conn_state s)
{
    static const char *const n[] = {"tls", "http", "auth", "held", "ready", "closing"};
    return (unsigned)s < sizeof(n) / sizeof(n[0]) ? n[s] : "?";
}

struct headend;

typedef struct conn {
    struct conn *prev, *next;
    struct headend *he;
    int fd;
    SSL *ssl;
    loop_io_t io;
    loop_timer_t timer;          /* pre-auth deadline, ping, dead peer */
    enum conn_state state;
    struct sockaddr_storage peer;
    char peer_str[CIDR_STRLEN + 8];
    char client_id[MUS_ID_MAX];
    uint8_t nonce[MUS_NONCE_LEN];
    char *in;                    /* unparsed input */
    size_t in_len;
    char *out;                   /* pending output: out[out_off, out_len) */
    size_t out_off, out_len, out_cap;
    size_t out_limit;            /* pending output above this: too far behind */
    bool subscribed;
    uint64_t next_seq;           /* next journal event to send */
    uint64_t acked;
    uint64_t created, last_rx, last_tx;
    tlsio_want_t want;           /* what the last SSL_read/SSL_write waits for */
    bool held;                   /* holds one of its address's held answers */
    bool held_ok;                /* ... and it is auth_ok (with held_mac) */
    uint8_t held_mac[MUS_MAC_LEN];
    bool dead;                   /* closed; freed by a deferred callback */
} conn_t;

typedef struct headend {
    loop_t *loop;
    SSL_CTX *ctx;
    hs_store_t *store;
    /* options */
    const char *listen, *cert, *key, *pwfile, *socket_path, *sessions_path, *occtl_path;
    const char *swanctl_path, *status_path;
    const char *radius_listen[HR_MAX_SOCKETS];
    size_t n_radius;
    hr_options_t radius_opt;
    unsigned swanctl_interval, stale_after, stale_grace_s;
    char server_id[MUS_ID_MAX];
    cidr_t allow[HE_MAX_ALLOW];
    size_t n_allow;
    mode_t socket_mode;
    unsigned occtl_interval;
    bool standby;
    size_t journal;
    uint32_t kdf_iter;
    /* state */
    char epoch[MUS_EPOCH_MAX];
    uint8_t salt[HE_SALT_LEN];
    uint8_t key_k[MUS_KEY_LEN];
    int lfd, ufd, sfd;
    loop_io_t lio, uio, sio;
    loop_timer_t accept_pause;
    conn_t *conns;
    size_t n_conns;
    he_authlimit_t *authlimit;
    he_poll_t occtl, swanctl;
    hr_t *radius;
    loop_timer_t tick;
    size_t stale_marked, stale_removed;
    char status_last[2048];      /* the status file as last written */
    bool stop;
    mus_frame_t frame;           /* scratch */
    char line[MUS_FRAME_MAX + 2];
} headend_t;

static void conn_close(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_run(conn_t *c);
static int listen_on(const char *spec, int socktype, const char *default_port);

/* ---- helpers ---- */

static const char *ssl_err_str(void)
{
    static char buf[256];
    unsigned long e = ERR_get_error();
    if (!e)
        return "unexpected EOF or I/O error";
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

static void addr16(const struct sockaddr_storage *ss, uint8_t out[16])
{
    memset(out, 0, 16);
    if (ss->ss_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    } else if (ss->ss_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)ss)->sin6_addr, 16);
    }
}

/* ---- failed-authentication limit (mus/headend_authlimit.h) ---- */

static void fail_record(headend_t *he, const conn_t *c, he_authlimit_counts_t *n)
{
    uint8_t a[16];
    addr16(&c->peer, a);
    he_authlimit_failed(he->authlimit, a, loop_now(he->loop), n);
}

static void held_release(conn_t *c)
{
    uint8_t a[16];
    if (!c->held)
        return;
    addr16(&c->peer, a);
    he_authlimit_release(c->he->authlimit, a);
    c->held = false;
    OPENSSL_cleanse(c->held_mac, sizeof(c->held_mac));
}

/* ---- connection output ---- */

static int out_append(conn_t *c, const char *data, size_t len)
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

static size_t out_pending(const conn_t *c)
{
    return c->out_len - c->out_off;
}

/* Queues a control frame; a peer that does not read is dropped. */
static int send_frame(conn_t *c, const mus_frame_t *f)
{
    headend_t *he = c->he;
    int n = mus_frame_format(f, he->line, sizeof(he->line));
    if (n < 0) {
        conn_close(c, "cannot format a %s frame", mus_frame_type_str(f->type));
        return -1;
    }
    if (out_pending(c) > c->out_limit) {
        conn_close(c, "peer does not read (%zu bytes pending)", out_pending(c));
        return -1;
    }
    if (out_append(c, he->line, (size_t)n) < 0) {
        conn_close(c, "out of memory");
        return -1;
    }
    return 0;
}

static int send_simple(conn_t *c, enum mus_frame_type t)
{
    mus_frame_t *f = &c->he->frame;
    memset(f, 0, sizeof(*f));
    f->type = t;
    return send_frame(c, f);
}

static int send_error(conn_t *c, const char *msg)
{
    mus_frame_t *f = &c->he->frame;
    memset(f, 0, sizeof(*f));
    f->type = MUS_F_ERROR;
    snprintf(f->message, sizeof(f->message), "%s", msg);
    return send_frame(c, f);
}

/* Moves journal events into the output while it is short. */
static void conn_pump(conn_t *c)
{
    headend_t *he = c->he;
    if (c->dead || !c->subscribed)
        return;
    uint64_t last = hs_store_seq(he->store);
    while (c->next_seq <= last && out_pending(c) < HE_OUT_LOW) {
        const char *line;
        size_t len;
        if (!hs_store_event(he->store, c->next_seq, &line, &len)) {
            conn_close(c, "fell behind the journal (needs seq %llu, oldest %llu); it will resubscribe",
                       (unsigned long long)c->next_seq,
                       (unsigned long long)hs_store_oldest(he->store));
            return;
        }
        if (out_append(c, line, len) < 0) {
            conn_close(c, "out of memory");
            return;
        }
        c->next_seq++;
    }
}

static void pump_all(headend_t *he)
{
    for (conn_t *c = he->conns, *n; c; c = n) {
        n = c->next;
        if (c->subscribed && !c->dead && c->state == CS_READY)
            conn_run(c);
    }
}

/* ---- connection lifecycle ---- */

static void conn_free_deferred(void *arg)
{
    conn_t *c = arg;
    free(c->in);
    free(c->out);
    free(c);
}

static void conn_close(conn_t *c, const char *fmt, ...)
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
    held_release(c);
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

/* ---- upgrade request ---- */

static bool header_has_token(const char *value, size_t vlen, const char *token)
{
    size_t tl = strlen(token);
    const char *p = value, *end = value + vlen;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == ','))
            p++;
        const char *s = p;
        while (p < end && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return true;
    }
    return false;
}

static void http_reply(conn_t *c, int code, const char *reason)
{
    char buf[256];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code,
                     reason);
    log_info("proxy %s: upgrade refused: %d %s", c->peer_str, code, reason);
    if (out_append(c, buf, (size_t)n) < 0) {
        conn_close(c, "out of memory");
        return;
    }
    c->state = CS_CLOSING;
}

/* Checks the request head (head_len bytes, ending in CRLFCRLF). */
static bool upgrade_request_ok(const char *head, size_t head_len)
{
    static const char rl[] = "GET " MUS_UPGRADE_PATH " HTTP/1.1\r\n";
    if (head_len < sizeof(rl) - 1 || memcmp(head, rl, sizeof(rl) - 1) != 0)
        return false;
    bool upgrade = false, connection = false;
    const char *p = head + sizeof(rl) - 1, *end = head + head_len - 2;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol || eol == p || eol[-1] != '\r')
            return false;
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return false;
        size_t nl = (size_t)(colon - p);
        const char *v = colon + 1;
        size_t vl = (size_t)(eol - 1 - v);
        if (nl == 7 && strncasecmp(p, "Upgrade", 7) == 0)
            upgrade = upgrade || header_has_token(v, vl, MUS_UPGRADE_TOKEN);
        else if (nl == 10 && strncasecmp(p, "Connection", 10) == 0)
            connection = connection || header_has_token(v, vl, "upgrade");
        p = eol + 1;
    }
    return upgrade && connection;
}

static void send_hello(conn_t *c)
{
    headend_t *he = c->he;
    static const char resp[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: " MUS_UPGRADE_TOKEN
                               "\r\nConnection: Upgrade\r\n\r\n";
    if (mus_random(c->nonce, sizeof(c->nonce)) < 0) {
        conn_close(c, "RAND_bytes failed");
        return;
    }
    if (out_append(c, resp, sizeof(resp) - 1) < 0) {
        conn_close(c, "out of memory");
        return;
    }
    mus_frame_t *f = &he->frame;
    memset(f, 0, sizeof(*f));
    f->type = MUS_F_HELLO;
    snprintf(f->server_id, sizeof(f->server_id), "%s", he->server_id);
    snprintf(f->epoch, sizeof(f->epoch), "%s", he->epoch);
    memcpy(f->nonce, c->nonce, MUS_NONCE_LEN);
    snprintf(f->kdf_alg, sizeof(f->kdf_alg), "pbkdf2-sha256");
    f->kdf_iter = he->kdf_iter;
    memcpy(f->salt, he->salt, HE_SALT_LEN);
    f->salt_len = HE_SALT_LEN;
    if (send_frame(c, f) < 0)
        return;
    c->state = CS_AUTH;
}

/* Consumes the upgrade head from c->in; returns false if more is needed. */
static bool handle_http(conn_t *c)
{
    headend_t *he = c->he;
    char *end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end) {
        if (c->in_len >= HE_HTTP_MAX) {
            http_reply(c, 400, "Bad Request");
            c->in_len = 0;
        }
        return false;
    }
    size_t head_len = (size_t)(end - c->in) + 4;
    bool ok = upgrade_request_ok(c->in, head_len);
    memmove(c->in, c->in + head_len, c->in_len - head_len);
    c->in_len -= head_len;
    if (!cidr_list_match(he->allow, he->n_allow, (const struct sockaddr *)&c->peer))
        http_reply(c, 403, "Forbidden");
    else if (!ok)
        http_reply(c, 400, "Bad Request");
    else if (he->standby)
        http_reply(c, 503, "Service Unavailable");
    else
        send_hello(c);
    return true;
}

/* ---- frames from the proxy ---- */

/* Sends auth_ok (mac: the server's proof) and enters CS_READY. */
static void auth_accept(conn_t *c, const uint8_t mac[MUS_MAC_LEN])
{
    mus_frame_t *r = &c->he->frame;
    memset(r, 0, sizeof(*r));
    r->type = MUS_F_AUTH_OK;
    memcpy(r->mac, mac, MUS_MAC_LEN);
    int sent = send_frame(c, r);
    OPENSSL_cleanse(r->mac, sizeof(r->mac));
    if (sent < 0)
        return;
    c->state = CS_READY;
    c->last_rx = c->last_tx = loop_now(c->he->loop);
    log_info("proxy %s %s: authenticated", c->peer_str, c->client_id);
}

/* Every auth is checked; a correct one is never refused for the failures
 * of others at the same address, only held like every answer to an
 * address over the limit (headend_authlimit.h). */
static void handle_auth(conn_t *c, const mus_frame_t *f)
{
    headend_t *he = c->he;
    he_authlimit_counts_t n;
    uint8_t a16[16];
    snprintf(c->client_id, sizeof(c->client_id), "%s", f->client_id);
    addr16(&c->peer, a16);
    he_authlimit_verdict_t v = he_authlimit_admit(he->authlimit, a16, loop_now(he->loop), &n);
    if (v == HE_AUTHLIMIT_REFUSE) {
        log_warn("proxy %s %s: refused without checking: %u failed authentications from this "
                 "address in %d s, %u answers already held, %llu refused", c->peer_str,
                 c->client_id, n.fails, HE_AUTHLIMIT_WINDOW_MS / 1000, n.held,
                 (unsigned long long)n.refused);
        send_simple(c, MUS_F_AUTH_FAIL);
        c->state = CS_CLOSING;
        return;
    }
    c->held = v == HE_AUTHLIMIT_HOLD;
    uint8_t cb[MUS_CB_LEN], mac[MUS_MAC_LEN];
    bool ok = false;
    if (mus_tls_channel_binding(c->ssl, cb) < 0) {
        log_warn("proxy %s %s: no TLS channel binding (TLS 1.2 without extended master secret?)",
                 c->peer_str, c->client_id);
    } else {
        mus_auth_client_mac(he->key_k, c->nonce, f->cnonce, he->server_id, f->client_id, cb, mac);
        ok = mus_auth_mac_equal(mac, f->mac);
        if (!ok) {
            fail_record(he, c, &n);
            log_warn("proxy %s %s: authentication failed (wrong password or a relay): %u failures "
                     "from this address in %d s%s", c->peer_str, c->client_id, n.fails,
                     HE_AUTHLIMIT_WINDOW_MS / 1000, c->held ? ", answer held" : "");
        }
    }
    OPENSSL_cleanse(mac, sizeof(mac));
    if (ok)
        mus_auth_server_mac(he->key_k, c->nonce, f->cnonce, he->server_id, f->client_id, cb,
                            c->held_mac);
    if (c->held) {
        /* the answer, right or wrong, leaves after the same delay */
        c->held_ok = ok;
        c->state = CS_HELD;
        loop_timer_set(he->loop, &c->timer, HE_AUTHLIMIT_DELAY_MS);
        log_info("proxy %s %s: answer held %d ms (%u failures from this address in %d s)",
                 c->peer_str, c->client_id, HE_AUTHLIMIT_DELAY_MS, n.fails,
                 HE_AUTHLIMIT_WINDOW_MS / 1000);
        return;
    }
    if (!ok) {
        send_simple(c, MUS_F_AUTH_FAIL);
        c->state = CS_CLOSING;
        return;
    }
    auth_accept(c, c->held_mac);
    OPENSSL_cleanse(c->held_mac, sizeof(c->held_mac));
}

/* The hold of an answer is over: send it; frames that came meanwhile are
 * processed once authenticated. */
static void held_answer(conn_t *c)
{
    uint8_t mac[MUS_MAC_LEN];
    bool ok = c->held_ok;
    memcpy(mac, c->held_mac, sizeof(mac));
    held_release(c);
    if (ok) {
        auth_accept(c, mac);
        loop_timer_set(c->he->loop, &c->timer, MUS_PING_AFTER_MS);
    } else {
        send_simple(c, MUS_F_AUTH_FAIL);
        c->state = CS_CLOSING;
    }
    OPENSSL_cleanse(mac, sizeof(mac));
}

typedef struct snap_ctx {
    conn_t *c;
    int rc;
} snap_ctx_t;

static int snap_one(void *arg, const hs_entry_t *e)
{
    snap_ctx_t *sc = arg;
    headend_t *he = sc->c->he;
    mus_frame_t *f = &he->frame;
    memset(f, 0, sizeof(*f));
    f->type = MUS_F_SNAP;
    f->session = e->s;
    memcpy(f->ips, e->ips, e->n_ips * sizeof(e->ips[0]));
    f->n_ips = e->n_ips;
    int n = mus_frame_format(f, he->line, sizeof(he->line));
    if (n < 0 || out_append(sc->c, he->line, (size_t)n) < 0) {
        sc->rc = -1;
        return 1;
    }
    return 0;
}

static void handle_subscribe(conn_t *c, const mus_frame_t *f)
{
    headend_t *he = c->he;
    uint64_t last = hs_store_seq(he->store), oldest = hs_store_oldest(he->store);
    if (f->has_epoch && f->has_seq && strcmp(f->epoch, he->epoch) == 0 && f->seq <= last &&
        f->seq + 1 >= oldest) {
        c->next_seq = f->seq + 1;
        c->subscribed = true;
        log_info("proxy %s %s: resumes after seq %llu (%llu events to replay)", c->peer_str,
                 c->client_id, (unsigned long long)f->seq,
                 (unsigned long long)(last - f->seq));
        return;
    }
    mus_frame_t *b = &he->frame;
    memset(b, 0, sizeof(*b));
    b->type = MUS_F_SNAP_BEGIN;
    snprintf(b->epoch, sizeof(b->epoch), "%s", he->epoch);
    b->seq = last;
    b->count = hs_store_count(he->store);
    size_t before = out_pending(c);
    if (send_frame(c, b) < 0)
        return;
    snap_ctx_t sc = {c, 0};
    hs_store_walk(he->store, snap_one, &sc);
    if (sc.rc < 0) {
        conn_close(c, "cannot queue the snapshot");
        return;
    }
    memset(b, 0, sizeof(*b));
    b->type = MUS_F_SNAP_END;
    b->seq = last;
    /* the snapshot itself may exceed the usual slack */
    c->out_limit = out_pending(c) - before + HE_OUT_SLACK;
    if (send_frame(c, b) < 0)
        return;
    c->next_seq = last + 1;
    c->subscribed = true;
    log_info("proxy %s %s: snapshot of %zu sessions at seq %llu%s", c->peer_str, c->client_id,
             hs_store_count(he->store), (unsigned long long)last,
             f->has_epoch ? " (its epoch/seq cannot be resumed)" : "");
}

static void handle_line(conn_t *c, const char *line, size_t len)
{
    headend_t *he = c->he;
    mus_frame_t f;
    char err[128];
    if (len > 0 && line[len - 1] == '\r')
        len--;
    c->last_rx = loop_now(he->loop);
    if (mus_frame_parse(line, len, &f, err, sizeof(err)) < 0) {
        if (c->state == CS_AUTH) {
            log_warn("proxy %s: bad auth frame: %s", c->peer_str, err);
            fail_record(he, c, NULL);
            send_simple(c, MUS_F_AUTH_FAIL);
            c->state = CS_CLOSING;
            return;
        }
        log_warn("proxy %s %s: bad frame ignored: %s", c->peer_str, c->client_id, err);
        char msg[200];
        snprintf(msg, sizeof(msg), "bad frame: %s", err);
        send_error(c, msg);
        return;
    }
    if (c->state == CS_AUTH) {
        if (f.type == MUS_F_AUTH) {
            handle_auth(c, &f);
        } else if (f.type == MUS_F_PING) {
            send_simple(c, MUS_F_PONG);
        } else {
            log_warn("proxy %s: %s before auth", c->peer_str, f.type_name);
            send_simple(c, MUS_F_AUTH_FAIL);
            c->state = CS_CLOSING;
        }
        return;
    }
    switch (f.type) {
    case MUS_F_SUBSCRIBE:
        handle_subscribe(c, &f);
        break;
    case MUS_F_ACK:
        if (f.seq > c->acked)
            c->acked = f.seq;
        log_debug("proxy %s %s: ack %llu", c->peer_str, c->client_id, (unsigned long long)f.seq);
        break;
    case MUS_F_PING:
        send_simple(c, MUS_F_PONG);
        break;
    case MUS_F_PONG:
        break;
    case MUS_F_UNKNOWN: {
        char msg[80];
        snprintf(msg, sizeof(msg), "unknown frame type \"%s\"", f.type_name);
        send_error(c, msg);
        break;
    }
    case MUS_F_ERROR:
        log_warn("proxy %s %s: error frame: %s", c->peer_str, c->client_id, f.message);
        break;
    default: {
        char msg[80];
        snprintf(msg, sizeof(msg), "unexpected frame type \"%s\"", f.type_name);
        send_error(c, msg);
        break;
    }
    }
}

static void process_input(conn_t *c)
{
    if (c->state == CS_HTTP && !handle_http(c))
        return;
    if (c->state == CS_HELD)
        return;   /* kept until the held answer leaves */
    size_t off = 0;
    while (!c->dead && (c->state == CS_AUTH || c->state == CS_READY)) {
        char *nl = memchr(c->in + off, '\n', c->in_len - off);
        if (!nl)
            break;
        size_t len = (size_t)(nl - (c->in + off));
        handle_line(c, c->in + off, len);
        off += len + 1;
    }
    if (c->dead)
        return;
    if (c->state == CS_CLOSING)
        off = c->in_len;   /* ignore whatever follows the final answer */
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    if (c->in_len > MUS_FRAME_MAX) {
        send_error(c, "frame too long");
        if (!c->dead)
            c->state = CS_CLOSING;
        c->in_len = 0;
    }
}

/* ---- TLS I/O ---- */

static void conn_read(conn_t *c)
{
    size_t cap = MUS_FRAME_MAX + 2;
    c->want.read_wants_write = false;
    while (!c->dead) {
        if (c->in_len >= cap) {
            conn_close(c, "input overflow");
            return;
        }
        int n = SSL_read(c->ssl, c->in + c->in_len, (int)(cap - c->in_len));
        if (n > 0) {
            if (c->state == CS_CLOSING)
                continue;   /* discard */
            c->in_len += (size_t)n;
            process_input(c);
            continue;
        }
        int e;
        if (tlsio_read_waits(&c->want, c->ssl, n, &e))
            return;
        if (e == SSL_ERROR_ZERO_RETURN) {
            conn_close(c, "closed by the proxy");
            return;
        }
        conn_close(c, "read error: %s", e == SSL_ERROR_SYSCALL && errno ? strerror(errno)
                                                                       : ssl_err_str());
        return;
    }
}

static void conn_flush(conn_t *c)
{
    c->want.write_wants_read = false;
    while (!c->dead && out_pending(c) > 0) {
        size_t chunk = out_pending(c) < HE_WRITE_CHUNK ? out_pending(c) : HE_WRITE_CHUNK;
        int n = SSL_write(c->ssl, c->out + c->out_off, (int)chunk);
        if (n > 0) {
            c->out_off += (size_t)n;
            c->last_tx = c->last_rx = loop_now(c->he->loop);   /* the peer reads: alive */
            if (out_pending(c) == 0)
                c->out_off = c->out_len = 0;
            conn_pump(c);
            continue;
        }
        int e;
        if (tlsio_write_waits(&c->want, c->ssl, n, &e))
            return;
        conn_close(c, "write error: %s", e == SSL_ERROR_SYSCALL && errno ? strerror(errno)
                                                                        : ssl_err_str());
        return;
    }
    if (!c->dead && c->state == CS_CLOSING && out_pending(c) == 0)
        conn_close(c, "final answer sent");
}

static void conn_update_interest(conn_t *c)
{
    if (c->dead)
        return;
    uint32_t want = LOOP_READ;
    if (out_pending(c) > 0 || c->want.read_wants_write)
        want |= LOOP_WRITE;
    if (loop_io_set(c->he->loop, &c->io, want) < 0)
        conn_close(c, "epoll: %s", strerror(errno));
}

static void conn_run(conn_t *c)
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
            conn_close(c, "TLS handshake failed: %s",
                       e == SSL_ERROR_SYSCALL && errno ? strerror(errno) : ssl_err_str());
            return;
        }
        c->state = CS_HTTP;
        log_debug("proxy %s: TLS %s %s", c->peer_str, SSL_get_version(c->ssl),
                  SSL_get_cipher_name(c->ssl));
    }
    conn_read(c);
    conn_pump(c);
    conn_flush(c);
    conn_update_interest(c);
}

static void conn_io_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    (void)loop;
    (void)events;
    conn_run(io->arg);
}

static void conn_timer_cb(loop_t *loop, loop_timer_t *t)
{
    conn_t *c = t->arg;
    uint64_t now = loop_now(loop);
    if (c->state == CS_HELD) {
        held_answer(c);
        if (!c->dead && c->state == CS_READY)
            process_input(c);
        conn_run(c);
        return;
    }
    if (c->state != CS_READY) {
        if (now - c->created >= HE_PREAUTH_MS) {
            conn_close(c, "no authenticated session after %d ms", HE_PREAUTH_MS);
            return;
        }
        loop_timer_set(loop, &c->timer, (uint32_t)(c->created + HE_PREAUTH_MS - now));
        return;
    }
    if (now - c->last_rx >= MUS_DEAD_AFTER_MS) {
        conn_close(c, "no frame for %d s: dead", MUS_DEAD_AFTER_MS / 1000);
        return;
    }
    if (now - c->last_tx >= MUS_PING_AFTER_MS) {
        if (send_simple(c, MUS_F_PING) < 0)
            return;
        c->last_tx = now;
        conn_run(c);
        if (c->dead)
            return;
    }
    uint64_t next = c->last_rx + MUS_DEAD_AFTER_MS;
    if (c->last_tx + MUS_PING_AFTER_MS < next)
        next = c->last_tx + MUS_PING_AFTER_MS;
    loop_timer_set_at(loop, &c->timer, next > now ? next : now + 1);
}

/* ---- accepting ---- */

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
        loop_timer_init(&c->timer, conn_timer_cb, c);
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

/* ---- sessions: feed, file ---- */

static void feed_message(headend_t *he, const char *buf, size_t len)
{
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        log_warn("feed: not JSON: %s", jerr.text);
        return;
    }
    const char *op = json_string_value(json_object_get(root, "op"));
    char err[160];
    if (op && strcmp(op, "connect") == 0) {
        mus_session_t s;
        mus_addr_t ips[MUS_MAX_IPS];
        size_t n;
        json_t *sobj = json_object_get(root, "s");
        const char *feed = json_string_value(json_object_get(root, "feed"));
        enum hs_origin origin = feed && strcmp(feed, "strongswan") == 0 ? HS_ORIGIN_STRONGSWAN
                                                                        : HS_ORIGIN_OCSERV;
        if (!sobj || he_session_from_json(sobj, &s, ips, &n, err, sizeof(err)) < 0) {
            log_warn("feed: bad connect: %s", sobj ? err : "missing \"s\"");
        } else {
            int ev = hs_store_connect(he->store, &s, ips, n, origin, loop_now(he->loop), false);
            if (ev < 0)
                log_error("feed: cannot store session %s", s.sid);
            else
                he_log_change(origin == HS_ORIGIN_STRONGSWAN ? "strongswan feed connect"
                                                             : "feed connect", &s, ev);
        }
    } else if (op && strcmp(op, "disconnect") == 0) {
        const char *sid = json_string_value(json_object_get(root, "sid"));
        const char *reason = json_string_value(json_object_get(root, "reason"));
        if (!reason || !*reason || strlen(reason) >= 32)
            reason = "logout";
        if (!sid || !*sid || strlen(sid) >= MUS_SID_MAX) {
            log_warn("feed: bad disconnect: missing or bad \"sid\"");
        } else {
            int r = hs_store_disconnect(he->store, sid, reason);
            if (r > 0)
                log_info("feed disconnect: session %s (%s)", sid, reason);
            else if (r == 0)
                log_info("feed disconnect: session %s unknown, ignored", sid);
            else
                log_error("feed: cannot record the end of session %s", sid);
        }
    } else {
        log_warn("feed: unknown or missing \"op\"");
    }
    json_decref(root);
    pump_all(he);
}

static void feed_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    headend_t *he = io->arg;
    (void)loop;
    (void)events;
    static char buf[MUS_FRAME_MAX + 2];
    for (int i = 0; i < 256; i++) {
        ssize_t n = recv(he->ufd, buf, sizeof(buf), MSG_TRUNC);
        if (n < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                log_warn("feed: recv: %s", strerror(errno));
            return;
        }
        if ((size_t)n > sizeof(buf) - 1) {
            log_warn("feed: datagram of %zd bytes ignored", n);
            continue;
        }
        size_t len = (size_t)n;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
            len--;
        feed_message(he, buf, len);
    }
}

/* Loads --sessions. Returns -1 if the file cannot be read (nothing changes). */
static int sessions_load(headend_t *he)
{
    FILE *fp = fopen(he->sessions_path, "re");
    if (!fp) {
        log_error("sessions %s: %s", he->sessions_path, strerror(errno));
        return -1;
    }
    hs_store_reconcile_begin(he->store, HS_ORIGIN_FILE);
    char *line = NULL;
    size_t cap = 0, lineno = 0, loaded = 0, bad = 0;
    ssize_t len;
    int events = 0;
    while ((len = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            len--;
        size_t sp = 0;
        while (sp < (size_t)len && (line[sp] == ' ' || line[sp] == '\t'))
            sp++;
        if (sp == (size_t)len || line[sp] == '#')
            continue;
        mus_session_t s;
        mus_addr_t ips[MUS_MAX_IPS];
        size_t n;
        char err[160];
        if (mus_session_parse(line + sp, (size_t)len - sp, &s, ips, &n, err, sizeof(err)) < 0) {
            log_warn("sessions %s:%zu: %s", he->sessions_path, lineno, err);
            bad++;
            continue;
        }
        int ev = hs_store_connect(he->store, &s, ips, n, HS_ORIGIN_FILE, loop_now(he->loop), false);
        if (ev < 0) {
            log_error("sessions %s:%zu: cannot store session %s", he->sessions_path, lineno, s.sid);
            bad++;
            continue;
        }
        events += ev;
        loaded++;
    }
    free(line);
    fclose(fp);
    size_t removed = hs_store_reconcile_sweep(he->store, HS_ORIGIN_FILE, UINT64_MAX);
    log_info("sessions %s: %zu loaded, %zu rejected, %zu removed, %d events, now seq %llu",
             he->sessions_path, loaded, bad, removed, events + (int)removed,
             (unsigned long long)hs_store_seq(he->store));
    pump_all(he);
    return 0;
}

/* ---- RADIUS, stale sessions, status file ---- */

static void changed_cb(void *arg)
{
    pump_all(arg);
}

static int radius_setup(headend_t *he)
{
    int fds[HR_MAX_SOCKETS];
    char err[256];
    for (size_t i = 0; i < he->n_radius; i++) {
        fds[i] = listen_on(he->radius_listen[i], SOCK_DGRAM, HE_RADIUS_PORT);
        if (fds[i] < 0) {
            log_error("--radius %s: %s", he->radius_listen[i],
                      fds[i] == -1 ? "not a numeric ADDR[:PORT]" : strerror(errno));
            while (i-- > 0)
                close(fds[i]);
            return -1;
        }
        int rcv = 4 << 20;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    }
    he->radius = hr_new(he->loop, he->store, &he->radius_opt, fds, he->n_radius, changed_cb, he,
                        err, sizeof(err));
    if (!he->radius) {
        log_error("RADIUS: %s", err);
        return -1;
    }
    hr_counters_t c;
    hr_get_counters(he->radius, &c);
    for (size_t i = 0; i < he->n_radius; i++)
        log_info("RADIUS accounting on %s (%llu clients in %s, groups from %s)",
                 he->radius_listen[i], (unsigned long long)c.clients, he->radius_opt.clients_path,
                 he->radius_opt.groups == HR_GROUPS_CLASS ? "Class"
                 : he->radius_opt.groups == HR_GROUPS_FILTER_ID ? "Filter-Id"
                 : he->radius_opt.groups == HR_GROUPS_AVPAIR ? "Cisco-AVPair" : "nowhere");
    return 0;
}

/* The status document: sessions, stale counts, RADIUS counters (never
 * a secret). */
static json_t *status_json(headend_t *he)
{
    json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:b}", "server_id",
                          he->server_id, "epoch", he->epoch, "seq",
                          (json_int_t)hs_store_seq(he->store), "sessions",
                          (json_int_t)hs_store_count(he->store), "stale_sessions",
                          (json_int_t)hs_store_stale_count(he->store), "stale_marked",
                          (json_int_t)he->stale_marked, "stale_removed",
                          (json_int_t)he->stale_removed, "proxies", (json_int_t)he->n_conns,
                          "standby", he->standby);
    if (o && he->radius) {
        hr_counters_t c;
        hr_get_counters(he->radius, &c);
        json_object_set_new(o, "radius", json_pack(
            "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
            "received", (json_int_t)c.received, "responses", (json_int_t)c.responses,
            "duplicates", (json_int_t)c.duplicates, "unknown_client", (json_int_t)c.unknown_client,
            "bad_authenticator", (json_int_t)c.bad_authenticator, "malformed",
            (json_int_t)c.malformed, "starts", (json_int_t)c.starts, "interims",
            (json_int_t)c.interims, "stops", (json_int_t)c.stops, "accounting_on",
            (json_int_t)c.acct_on, "accounting_off", (json_int_t)c.acct_off, "other_status",
            (json_int_t)c.other_status, "no_address", (json_int_t)c.no_address, "store_errors",
            (json_int_t)c.store_errors, "clients", (json_int_t)c.clients));
    }
    return o;
}

/* Rewrites --status-file (temporary file + rename) when it changed. */
static void status_write(headend_t *he)
{
    json_t *o = status_json(he);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return;
    if (strcmp(text, he->status_last) != 0) {
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", he->status_path);
        FILE *fp = fopen(tmp, "we");
        if (fp && fprintf(fp, "%s\n", text) > 0 && fclose(fp) == 0 && rename(tmp, he->status_path) == 0)
            snprintf(he->status_last, sizeof(he->status_last), "%s", text);
        else {
            if (fp)
                unlink(tmp);
            log_warn("--status-file %s: cannot write: %s", he->status_path, strerror(errno));
        }
    }
    free(text);
}

static void tick_cb(loop_t *loop, loop_timer_t *t)
{
    headend_t *he = t->arg;
    size_t marked = 0, removed = 0;
    uint64_t seq = hs_store_seq(he->store);
    hs_store_stale_sweep(he->store, loop_now(loop), he->stale_after,
                         (uint64_t)he->stale_grace_s * 1000u, &marked, &removed);
    if (marked || removed)
        log_info("stale sessions: %zu marked (no refresh for %u intervals), %zu removed after "
                 "%u s", marked, he->stale_after, removed, he->stale_grace_s);
    he->stale_marked += marked;
    he->stale_removed += removed;
    if (hs_store_seq(he->store) != seq)
        pump_all(he);
    if (he->status_path)
        status_write(he);
    loop_timer_set(loop, t, HE_TICK_MS);
}

/* ---- signals ---- */

static void signal_cb(loop_t *loop, loop_io_t *io, uint32_t events)
{
    headend_t *he = io->arg;
    (void)loop;
    (void)events;
    struct signalfd_siginfo si;
    while (read(he->sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGHUP) {
            if (he->sessions_path) {
                log_info("SIGHUP: reloading %s", he->sessions_path);
                sessions_load(he);
            } else {
                log_info("SIGHUP: no --sessions file to reload");
            }
            char err[256];
            if (he->radius && hr_reload_clients(he->radius, err, sizeof(err)) < 0)
                log_error("SIGHUP: --radius-clients not reloaded, the old list stays: %s", err);
            else if (he->radius)
                log_info("SIGHUP: reloaded %s", he->radius_opt.clients_path);
        } else {
            log_info("signal %u: exiting", si.ssi_signo);
            he->stop = true;
        }
    }
}

/* ---- setup ---- */

/* Binds "ADDR:PORT" ("[V6]:PORT"; with a default port also "ADDR" and
 * "[V6]") for TCP (listening) or UDP. -1: bad spec, -2: errno. */
static int listen_on(const char *spec, int socktype, const char *default_port)
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

static int feed_socket(const char *path, mode_t mode)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(sun.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            errno = EEXIST;
            return -1;
        }
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0 || chmod(path, mode) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    int rcv = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    return fd;
}

static SSL_CTX *tls_server_ctx(const char *cert, const char *key)
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

static void usage(FILE *fp)
{
    fprintf(fp,
            "usage: mus-headend --cert FILE --key FILE --password-file FILE [options]\n"
            "  --listen ADDR:PORT     TLS listener (default " HE_DEFAULT_LISTEN ", IPv6 [::1]:PORT)\n"
            "  --allow CIDR           proxy addresses allowed, repeatable (default loopback)\n"
            "  --server-id NAME       server_id in hello (default mus-headend)\n"
            "  --socket PATH          local feed socket (Unix datagram)\n"
            "  --socket-mode MODE     its mode in octal (default 0600)\n"
            "  --sessions FILE        static sessions, JSON lines; reloaded on SIGHUP\n"
            "  --occtl-interval SEC   reconcile with `occtl -j show users` (0 = off)\n"
            "  --occtl PATH           occtl binary (default occtl)\n"
            "  --swanctl-interval SEC reconcile with `swanctl --list-sas` (0 = off)\n"
            "  --swanctl PATH         swanctl binary (default swanctl)\n"
            "  --radius ADDR[:PORT]   RADIUS accounting on UDP (repeatable, port " HE_RADIUS_PORT ")\n"
            "  --radius-clients FILE  ADDRESS_OR_PREFIX SECRET lines (mode 0600)\n"
            "  --radius-groups SRC    class|filter-id|avpair[:KEY]|none (default class)\n"
            "  --radius-machine-user RE    User-Name pattern (PCRE2) of machine tunnels\n"
            "  --radius-machine-avpair K=V Cisco-AVPair of machine tunnels\n"
            "  --radius-interim SEC   interval when a packet has none (default 0)\n"
            "  --stale-after N        stale after N intervals without refresh (default 3)\n"
            "  --stale-grace SEC      then removed after SEC (default 300)\n"
            "  --status-file PATH     JSON counters, rewritten when they change\n"
            "  --standby              answer 503 to upgrades\n"
            "  --journal N            events kept for resume (default 10000)\n"
            "  --kdf-iter N           PBKDF2 iterations (default 100000)\n"
            "  --log-level LEVEL      error|warn|info|debug (default info)\n"
            "feed datagrams: {\"op\":\"connect\",\"s\":{session}} | "
            "{\"op\":\"disconnect\",\"sid\":\"...\",\"reason\":\"logout\"}\n");
}

static bool parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out,
                        int base)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, base);
    if (errno || end == s || *end || s[0] == '-' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

static int parse_args(headend_t *he, int argc, char **argv)
{
    enum { O_LISTEN = 256, O_CERT, O_KEY, O_PW, O_ALLOW, O_SID, O_SOCK, O_SOCKMODE, O_SESS,
           O_OCI, O_OCCTL, O_STANDBY, O_JOURNAL, O_KDF, O_LOG, O_HELP, O_SWI, O_SWANCTL,
           O_RADIUS, O_RCLIENTS, O_RGROUPS, O_RMUSER, O_RMAVP, O_RINTERIM, O_STALE_AFTER,
           O_STALE_GRACE, O_STATUS };
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"password-file", required_argument, NULL, O_PW},
        {"allow", required_argument, NULL, O_ALLOW},
        {"server-id", required_argument, NULL, O_SID},
        {"socket", required_argument, NULL, O_SOCK},
        {"socket-mode", required_argument, NULL, O_SOCKMODE},
        {"sessions", required_argument, NULL, O_SESS},
        {"occtl-interval", required_argument, NULL, O_OCI},
        {"occtl", required_argument, NULL, O_OCCTL},
        {"standby", no_argument, NULL, O_STANDBY},
        {"journal", required_argument, NULL, O_JOURNAL},
        {"kdf-iter", required_argument, NULL, O_KDF},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, O_HELP},
        {"swanctl-interval", required_argument, NULL, O_SWI},
        {"swanctl", required_argument, NULL, O_SWANCTL},
        {"radius", required_argument, NULL, O_RADIUS},
        {"radius-clients", required_argument, NULL, O_RCLIENTS},
        {"radius-groups", required_argument, NULL, O_RGROUPS},
        {"radius-machine-user", required_argument, NULL, O_RMUSER},
        {"radius-machine-avpair", required_argument, NULL, O_RMAVP},
        {"radius-interim", required_argument, NULL, O_RINTERIM},
        {"stale-after", required_argument, NULL, O_STALE_AFTER},
        {"stale-grace", required_argument, NULL, O_STALE_GRACE},
        {"status-file", required_argument, NULL, O_STATUS},
        {NULL, 0, NULL, 0},
    };
    he->listen = HE_DEFAULT_LISTEN;
    he->occtl_path = "occtl";
    he->swanctl_path = "swanctl";
    he->stale_after = 3;
    he->stale_grace_s = 300;
    snprintf(he->radius_opt.group_key, sizeof(he->radius_opt.group_key), "group");
    he->socket_mode = 0600;
    he->journal = 10000;
    he->kdf_iter = 100000;
    snprintf(he->server_id, sizeof(he->server_id), "mus-headend");
    int o;
    unsigned long v;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_LISTEN: he->listen = optarg; break;
        case O_CERT: he->cert = optarg; break;
        case O_KEY: he->key = optarg; break;
        case O_PW: he->pwfile = optarg; break;
        case O_SOCK: he->socket_path = optarg; break;
        case O_SESS: he->sessions_path = optarg; break;
        case O_OCCTL: he->occtl_path = optarg; break;
        case O_SWANCTL: he->swanctl_path = optarg; break;
        case O_RCLIENTS: he->radius_opt.clients_path = optarg; break;
        case O_RMUSER: he->radius_opt.machine_user_re = optarg; break;
        case O_RMAVP: he->radius_opt.machine_avpair = optarg; break;
        case O_STATUS: he->status_path = optarg; break;
        case O_RADIUS:
            if (he->n_radius >= HR_MAX_SOCKETS) {
                fprintf(stderr, "mus-headend: at most %d --radius\n", HR_MAX_SOCKETS);
                return -1;
            }
            he->radius_listen[he->n_radius++] = optarg;
            break;
        case O_RGROUPS:
            if (hr_group_source_parse(optarg, &he->radius_opt.groups, he->radius_opt.group_key,
                                      sizeof(he->radius_opt.group_key)) < 0) {
                fprintf(stderr, "mus-headend: --radius-groups: class, filter-id, avpair, "
                                "avpair:KEY or none, not %s\n", optarg);
                return -1;
            }
            break;
        case O_SWI:
        case O_RINTERIM:
        case O_STALE_GRACE:
            if (!parse_ulong(optarg, 0, 86400, &v, 10)) {
                fprintf(stderr, "mus-headend: bad --%s: %s\n", o == O_SWI ? "swanctl-interval"
                        : o == O_RINTERIM ? "radius-interim" : "stale-grace", optarg);
                return -1;
            }
            *(o == O_SWI ? &he->swanctl_interval : o == O_RINTERIM
              ? &he->radius_opt.default_interim_s : &he->stale_grace_s) = (unsigned)v;
            break;
        case O_STALE_AFTER:
            if (!parse_ulong(optarg, 1, 1000, &v, 10)) {
                fprintf(stderr, "mus-headend: --stale-after must be 1..1000\n");
                return -1;
            }
            he->stale_after = (unsigned)v;
            break;
        case O_STANDBY: he->standby = true; break;
        case O_ALLOW:
            if (he->n_allow >= HE_MAX_ALLOW || cidr_parse(optarg, &he->allow[he->n_allow]) < 0) {
                fprintf(stderr, "mus-headend: bad or too many --allow: %s\n", optarg);
                return -1;
            }
            he->n_allow++;
            break;
        case O_SID:
            if (!*optarg || strlen(optarg) >= sizeof(he->server_id)) {
                fprintf(stderr, "mus-headend: --server-id must be 1..%d bytes\n", MUS_ID_MAX - 1);
                return -1;
            }
            snprintf(he->server_id, sizeof(he->server_id), "%s", optarg);
            break;
        case O_SOCKMODE:
            if (!parse_ulong(optarg, 0, 0777, &v, 8)) {
                fprintf(stderr, "mus-headend: bad --socket-mode: %s\n", optarg);
                return -1;
            }
            he->socket_mode = (mode_t)v;
            break;
        case O_OCI:
            if (!parse_ulong(optarg, 0, 86400, &v, 10)) {
                fprintf(stderr, "mus-headend: bad --occtl-interval: %s\n", optarg);
                return -1;
            }
            he->occtl_interval = (unsigned)v;
            break;
        case O_JOURNAL:
            if (!parse_ulong(optarg, 1, 10000000, &v, 10)) {
                fprintf(stderr, "mus-headend: bad --journal: %s\n", optarg);
                return -1;
            }
            he->journal = v;
            break;
        case O_KDF:
            if (!parse_ulong(optarg, MUS_KDF_ITER_MIN, MUS_KDF_ITER_MAX, &v, 10)) {
                fprintf(stderr, "mus-headend: --kdf-iter must be %d..%d\n", MUS_KDF_ITER_MIN,
                        MUS_KDF_ITER_MAX);
                return -1;
            }
            he->kdf_iter = (uint32_t)v;
            break;
        case O_LOG: {
            enum log_level lv;
            if (log_level_parse(optarg, &lv) < 0) {
                fprintf(stderr, "mus-headend: bad --log-level: %s\n", optarg);
                return -1;
            }
            log_set_level(lv);
            break;
        }
        case 'h':
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (he->n_radius > 0 && !he->radius_opt.clients_path) {
        fprintf(stderr, "mus-headend: --radius needs --radius-clients FILE\n");
        return -1;
    }
    if (optind != argc || !he->cert || !he->key || !he->pwfile) {
        usage(stderr);
        return -1;
    }
    if (he->n_allow == 0) {
        cidr_parse("127.0.0.0/8", &he->allow[he->n_allow++]);
        cidr_parse("::1", &he->allow[he->n_allow++]);
    }
    return 0;
}

static int setup(headend_t *he)
{
    char err[256];
    char pw[1024];
    if (mus_read_password_file(he->pwfile, pw, sizeof(pw), err, sizeof(err)) < 0) {
        log_error("password file: %s", err);
        return -1;
    }
    uint8_t eb[16];
    int rc = mus_random(he->salt, sizeof(he->salt));
    if (rc == 0)
        rc = mus_random(eb, sizeof(eb));
    if (rc == 0)
        rc = mus_auth_derive(pw, strlen(pw), he->salt, sizeof(he->salt), he->kdf_iter, he->key_k);
    OPENSSL_cleanse(pw, sizeof(pw));
    if (rc < 0) {
        log_error("cannot derive the key (RAND_bytes or PBKDF2 failed)");
        return -1;
    }
    for (size_t i = 0; i < sizeof(eb); i++)
        snprintf(he->epoch + 2 * i, 3, "%02x", eb[i]);

    he->ctx = tls_server_ctx(he->cert, he->key);
    if (!he->ctx) {
        log_error("TLS: cannot use --cert %s / --key %s: %s", he->cert, he->key, ssl_err_str());
        return -1;
    }
    he->store = hs_store_new(he->journal);
    he->loop = loop_new();
    he->authlimit = he_authlimit_new();
    if (!he->store || !he->loop || !he->authlimit) {
        log_error("out of memory");
        return -1;
    }
    he->lfd = listen_on(he->listen, SOCK_STREAM, NULL);
    if (he->lfd < 0) {
        log_error("--listen %s: %s", he->listen,
                  he->lfd == -1 ? "not a numeric ADDR:PORT" : strerror(errno));
        return -1;
    }
    loop_io_init(&he->lio, accept_cb, he);
    loop_timer_init(&he->accept_pause, accept_resume, he);
    if (loop_io_start(he->loop, &he->lio, he->lfd, LOOP_READ) < 0)
        return -1;

    if (he->socket_path) {
        he->ufd = feed_socket(he->socket_path, he->socket_mode);
        if (he->ufd < 0) {
            log_error("--socket %s: %s", he->socket_path, strerror(errno));
            return -1;
        }
        loop_io_init(&he->uio, feed_cb, he);
        if (loop_io_start(he->loop, &he->uio, he->ufd, LOOP_READ) < 0)
            return -1;
    }

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    signal(SIGPIPE, SIG_IGN);
    he->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (he->sfd < 0)
        return -1;
    loop_io_init(&he->sio, signal_cb, he);
    if (loop_io_start(he->loop, &he->sio, he->sfd, LOOP_READ) < 0)
        return -1;

    if (he->sessions_path && sessions_load(he) < 0)
        return -1;
    if (he->n_radius > 0 && radius_setup(he) < 0)
        return -1;
    he->occtl = (he_poll_t){.name = "occtl", .argv = {he->occtl_path, "-j", "show", "users"},
                            .interval_s = he->occtl_interval, .apply = he_poll_apply_occtl,
                            .store = he->store, .changed = changed_cb, .arg = he};
    he->swanctl = (he_poll_t){.name = "swanctl", .argv = {he->swanctl_path, "--list-sas"},
                              .interval_s = he->swanctl_interval, .apply = he_poll_apply_swanctl,
                              .store = he->store, .changed = changed_cb, .arg = he};
    he_poll_start(&he->occtl, he->loop);
    he_poll_start(&he->swanctl, he->loop);
    loop_timer_init(&he->tick, tick_cb, he);
    loop_timer_set(he->loop, &he->tick, HE_TICK_MS);
    log_info("mus-headend %s listening on %s, epoch %s, %zu sessions%s%s%s", he->server_id,
             he->listen, he->epoch, hs_store_count(he->store), he->standby ? ", STANDBY" : "",
             he->socket_path ? ", feed " : "", he->socket_path ? he->socket_path : "");
    return 0;
}

static void teardown(headend_t *he)
{
    while (he->conns)
        conn_close(he->conns, "shutting down");
    if (he->loop)
        loop_run_once(he->loop, 0);   /* runs the deferred frees */
    he_poll_stop(&he->occtl);
    he_poll_stop(&he->swanctl);
    hr_free(he->radius);
    if (he->loop)
        loop_timer_cancel(he->loop, &he->tick);
    if (he->socket_path && he->ufd >= 0) {
        close(he->ufd);
        unlink(he->socket_path);
    }
    if (he->lfd >= 0)
        close(he->lfd);
    if (he->sfd >= 0)
        close(he->sfd);
    SSL_CTX_free(he->ctx);
    hs_store_free(he->store);
    he_authlimit_free(he->authlimit);
    loop_free(he->loop);
    OPENSSL_cleanse(he->key_k, sizeof(he->key_k));
}

int main(int argc, char **argv)
{
    static headend_t he;   /* large (scratch buffers): not on the stack */
    he.lfd = he.ufd = he.sfd = -1;
    if (parse_args(&he, argc, argv) < 0)
        return 2;
    int rc = 0;
    if (setup(&he) < 0) {
        rc = 1;
    } else {
        while (!he.stop) {
            int n = loop_run_once(he.loop, 1000);
            if (n < 0 && n != -EINTR) {
                log_error("epoll: %s", strerror(-n));
                rc = 1;
                break;
            }
        }
    }
    teardown(&he);
    return rc;
}
