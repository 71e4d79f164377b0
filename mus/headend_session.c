/*
 * mus/headend_session.c: MUS/1 between mus-headend and one proxy
 * (docs/mus-protocol.md, see headend_int.h): the upgrade request (403 for a
 * source outside --allow, 400 for a bad request, 503 when standby), hello
 * with the PBKDF2 parameters, the auth check bound to the TLS channel with
 * the failed-authentication limit (answers held or refused,
 * headend_authlimit.h), subscribe answered by a journal replay or a
 * snapshot, ack/ping/pong/error frames, moving journal events into the
 * output, and the connection timer (held answer, pre-auth deadline, ping,
 * dead peer). It does no socket or TLS I/O (headend_conn.c) and does not
 * change the store.
 */
#include "headend_int.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "../common/log.h"

/* ---- failed-authentication limit (mus/headend_authlimit.h) ---- */

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

static void fail_record(headend_t *he, const conn_t *c, he_authlimit_counts_t *n)
{
    uint8_t a[16];
    addr16(&c->peer, a);
    he_authlimit_failed(he->authlimit, a, loop_now(he->loop), n);
}

void he_held_release(conn_t *c)
{
    uint8_t a[16];
    if (!c->held)
        return;
    addr16(&c->peer, a);
    he_authlimit_release(c->he->authlimit, a);
    c->held = false;
    OPENSSL_cleanse(c->held_mac, sizeof(c->held_mac));
}

/* ---- frames to the proxy ---- */

/* Queues a control frame; a peer that does not read is dropped. */
static int send_frame(conn_t *c, const mus_frame_t *f)
{
    headend_t *he = c->he;
    int n = mus_frame_format(f, he->line, sizeof(he->line));
    if (n < 0) {
        he_conn_close(c, "cannot format a %s frame", mus_frame_type_str(f->type));
        return -1;
    }
    if (he_out_pending(c) > c->out_limit) {
        he_conn_close(c, "peer does not read (%zu bytes pending)", he_out_pending(c));
        return -1;
    }
    if (he_out_append(c, he->line, (size_t)n) < 0) {
        he_conn_close(c, "out of memory");
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
void he_conn_pump(conn_t *c)
{
    headend_t *he = c->he;
    if (c->dead || !c->subscribed)
        return;
    uint64_t last = hs_store_seq(he->store);
    while (c->next_seq <= last && he_out_pending(c) < HE_OUT_LOW) {
        const char *line;
        size_t len;
        if (!hs_store_event(he->store, c->next_seq, &line, &len)) {
            he_conn_close(c, "fell behind the journal (needs seq %llu, oldest %llu); "
                          "it will resubscribe", (unsigned long long)c->next_seq,
                          (unsigned long long)hs_store_oldest(he->store));
            return;
        }
        if (he_out_append(c, line, len) < 0) {
            he_conn_close(c, "out of memory");
            return;
        }
        c->next_seq++;
    }
}

void he_pump_all(headend_t *he)
{
    for (conn_t *c = he->conns, *n; c; c = n) {
        n = c->next;
        if (c->subscribed && !c->dead && c->state == CS_READY)
            he_conn_run(c);
    }
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
    if (he_out_append(c, buf, (size_t)n) < 0) {
        he_conn_close(c, "out of memory");
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
        he_conn_close(c, "RAND_bytes failed");
        return;
    }
    if (he_out_append(c, resp, sizeof(resp) - 1) < 0) {
        he_conn_close(c, "out of memory");
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
    he_held_release(c);
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
    if (n < 0 || he_out_append(sc->c, he->line, (size_t)n) < 0) {
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
    size_t before = he_out_pending(c);
    if (send_frame(c, b) < 0)
        return;
    snap_ctx_t sc = {c, 0};
    hs_store_walk(he->store, snap_one, &sc);
    if (sc.rc < 0) {
        he_conn_close(c, "cannot queue the snapshot");
        return;
    }
    memset(b, 0, sizeof(*b));
    b->type = MUS_F_SNAP_END;
    b->seq = last;
    /* the snapshot itself may exceed the usual slack */
    c->out_limit = he_out_pending(c) - before + HE_OUT_SLACK;
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

void he_process_input(conn_t *c)
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

/* ---- timers ---- */

void he_conn_timer_cb(loop_t *loop, loop_timer_t *t)
{
    conn_t *c = t->arg;
    uint64_t now = loop_now(loop);
    if (c->state == CS_HELD) {
        held_answer(c);
        if (!c->dead && c->state == CS_READY)
            he_process_input(c);
        he_conn_run(c);
        return;
    }
    if (c->state != CS_READY) {
        if (now - c->created >= HE_PREAUTH_MS) {
            he_conn_close(c, "no authenticated session after %d ms", HE_PREAUTH_MS);
            return;
        }
        loop_timer_set(loop, &c->timer, (uint32_t)(c->created + HE_PREAUTH_MS - now));
        return;
    }
    if (now - c->last_rx >= MUS_DEAD_AFTER_MS) {
        he_conn_close(c, "no frame for %d s: dead", MUS_DEAD_AFTER_MS / 1000);
        return;
    }
    if (now - c->last_tx >= MUS_PING_AFTER_MS) {
        if (send_simple(c, MUS_F_PING) < 0)
            return;
        c->last_tx = now;
        he_conn_run(c);
        if (c->dead)
            return;
    }
    uint64_t next = c->last_rx + MUS_DEAD_AFTER_MS;
    if (c->last_tx + MUS_PING_AFTER_MS < next)
        next = c->last_tx + MUS_PING_AFTER_MS;
    loop_timer_set_at(loop, &c->timer, next > now ? next : now + 1);
}
