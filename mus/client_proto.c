/*
 * mus/client_proto.c: MUS/1 over the connection of a feed session
 * (docs/mus-protocol.md, see client_int.h): the HTTP/1.1 Upgrade request
 * and its 101, the hello/auth exchange (PBKDF2 key, cached per salt,
 * iterations and password; mutual HMAC bound to the TLS channel), subscribe
 * with resume or a full snapshot, the seq rule for live add/upd/del, and the
 * frames applied to the identity map, plus the ping, ack and dead-peer
 * timers. It never logs the password or the derived key; both are wiped
 * after use. It does no socket or TLS I/O itself (client_io.c) and does not
 * decide retries (client.c).
 */
#include "client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "../common/log.h"

/* ---- timers ---- */

void
mus_sess_ping_cb(loop_t *loop, loop_timer_t *t)
{
    mus_sess_t *s = t->arg;
    mus_frame_t f = {.type = MUS_F_PING};

    (void)loop;
    s->pings_sent++;
    (void)mus_sess_send_frame(s, &f);
}

void
mus_sess_ack_cb(loop_t *loop, loop_timer_t *t)
{
    mus_sess_t *s = t->arg;
    mus_frame_t f = {.type = MUS_F_ACK};

    (void)loop;
    if (!s->have_pos || s->seq <= s->acked || s->ssl == NULL)
        return;
    f.seq = s->seq;
    s->acked = s->seq;
    (void)mus_sess_send_frame(s, &f);
}

static void
session_arm_ack(mus_sess_t *s)
{
    if (!loop_timer_armed(&s->ack_timer))
        loop_timer_set(s->feed->loop, &s->ack_timer, MUS_ACK_EVERY_MS);
}

void
mus_sess_dead_cb(loop_t *loop, loop_timer_t *t)
{
    mus_sess_t *s = t->arg;

    (void)loop;
    mus_sess_fail(s, false, "no frame from the headend for %u s: session dead",
                  (unsigned)(MUS_DEAD_AFTER_MS / 1000));
}

/* ---- protocol steps ---- */

void
mus_sess_established(mus_sess_t *s, bool resumed)
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
    mus_sess_refresh_counters(s);
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
    if (mus_sess_send_frame(s, &f) < 0)
        return -1;
    s->pings_sent++;
    s->barrier = s->pings_sent;
    return mus_sess_send_frame(s, &p);
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
        mus_sess_fail(s, false, "protocol error: unsupported kdf \"%s\"", fr->kdf_alg);
        return -1;
    }
    if (fr->kdf_iter < MUS_KDF_ITER_MIN || fr->kdf_iter > MUS_KDF_ITER_MAX) {
        mus_sess_fail(s, false, "protocol error: kdf iterations %u out of range",
                      (unsigned)fr->kdf_iter);
        return -1;
    }
    if (fr->salt_len == 0 || fr->salt_len > MUS_SALT_MAX) {
        mus_sess_fail(s, false, "protocol error: bad kdf salt");
        return -1;
    }
    if (mus_read_password_file(s->cfg.password_file, pw, sizeof(pw), err, sizeof(err)) < 0) {
        OPENSSL_cleanse(pw, sizeof(pw));
        mus_sess_fail(s, false, "password file %s: %s", s->cfg.password_file, err);
        return -1;
    }
    if (HMAC(EVP_sha256(), f->fp_secret, sizeof(f->fp_secret), (const unsigned char *)pw,
             strlen(pw), fp, &fplen) == NULL) {
        OPENSSL_cleanse(pw, sizeof(pw));
        mus_sess_fail(s, false, "HMAC failed");
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
            mus_sess_fail(s, false, "key derivation failed");
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
        mus_sess_fail(s, false, "cannot compute the TLS channel binding");
        return -1;
    }
    if (mus_random(s->cnonce, sizeof(s->cnonce)) < 0) {
        mus_sess_fail(s, false, "no random bytes");
        return -1;
    }
    snprintf(a.client_id, sizeof(a.client_id), "%s", s->cfg.client_id);
    memcpy(a.cnonce, s->cnonce, sizeof(a.cnonce));
    mus_auth_client_mac(s->key, s->nonce, s->cnonce, s->server_id, a.client_id, s->cb, a.mac);
    s->auth_sent = true;
    return mus_sess_send_frame(s, &a);
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
        mus_sess_fail(s, false, "headend failed to authenticate (wrong MAC in auth_ok)");
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
        mus_sess_fail(s, false, "protocol error: %s inside a snapshot",
                      mus_frame_type_str(fr->type));
        return -1;
    }
    if (!s->have_pos) {
        mus_sess_fail(s, false, "protocol error: %s before any snapshot",
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
        return mus_sess_send_frame(s, &out);
    case MUS_F_PONG:
        s->pongs_got++;
        if (s->state == MUS_SESSION_SYNCING && s->barrier != 0 && s->pongs_got >= s->barrier &&
            !s->in_snapshot && s->have_pos)
            mus_sess_established(s, true);
        return 0;
    case MUS_F_ERROR:
        log_warn("mus: headend %s reports an error: %s", s->cfg.name, fr->message);
        return 0;
    case MUS_F_UNKNOWN:
        out.type = MUS_F_ERROR;
        snprintf(out.message, sizeof(out.message), "unknown frame type \"%s\"", fr->type_name);
        log_debug("mus: headend %s: unknown frame type \"%s\" ignored", s->cfg.name,
                  fr->type_name);
        return mus_sess_send_frame(s, &out);
    default:
        break;
    }

    if (s->state == MUS_SESSION_AUTH) {
        if (fr->type == MUS_F_HELLO && !s->auth_sent)
            return session_on_hello(s, fr);
        if (fr->type == MUS_F_AUTH_OK && s->auth_sent)
            return session_on_auth_ok(s, fr);
        if (fr->type == MUS_F_AUTH_FAIL) {
            mus_sess_fail(s, false, "authentication failed (wrong password?)");
            return -1;
        }
        mus_sess_fail(s, false, "protocol error: unexpected %s during authentication",
                      mus_frame_type_str(fr->type));
        return -1;
    }

    switch (fr->type) {
    case MUS_F_SNAP_BEGIN:
        if (s->in_snapshot) {
            mus_sess_fail(s, false, "protocol error: snap_begin inside a snapshot");
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
            mus_sess_fail(s, false, "protocol error: snap outside a snapshot");
            return -1;
        }
        (void)mus_map_snapshot_add(m, s->h, &fr->session, fr->ips, fr->n_ips);
        s->snap_got++;
        return 0;
    case MUS_F_SNAP_END:
        if (!s->in_snapshot) {
            mus_sess_fail(s, false, "protocol error: snap_end outside a snapshot");
            return -1;
        }
        if (fr->seq != s->snap_seq || s->snap_got != s->snap_count) {
            mus_sess_fail(s, false, "protocol error: snapshot of %llu sessions at seq %llu "
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
            mus_sess_established(s, false);
        return 0;
    case MUS_F_ADD:
    case MUS_F_UPD:
    case MUS_F_DEL:
        return session_on_event(s, fr);
    default:
        mus_sess_fail(s, false, "protocol error: unexpected %s", mus_frame_type_str(fr->type));
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
            mus_sess_fail(s, false, "protocol error: frame longer than %d bytes", MUS_FRAME_MAX);
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
            mus_sess_fail(s, false, "protocol error: bad frame: %s", err);
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
        mus_sess_fail(s, false, "protocol error: frame longer than %d bytes", MUS_FRAME_MAX);
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
            mus_sess_fail(s, false, "protocol error: Upgrade response head too long");
            return -1;
        }
        return 0;
    }
    *end = '\0';
    if (strncmp(s->rbuf, "HTTP/1.", 7) != 0 || s->rlen < 12 || s->rbuf[8] != ' ' ||
        sscanf(s->rbuf + 9, "%3d", &code) != 1) {
        mus_sess_fail(s, false, "protocol error: not an HTTP response to the Upgrade request");
        return -1;
    }
    if (code == 403) {
        mus_sess_fail(s, false, "refused by headend (403)");
        return -1;
    }
    if (code == 503) {
        mus_sess_fail(s, true, "standby (503)");
        return -1;
    }
    if (code != 101) {
        mus_sess_fail(s, false, "unexpected answer to the Upgrade request (%d)", code);
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
        mus_sess_fail(s, false, "protocol error: 101 without \"Upgrade: " MUS_UPGRADE_TOKEN "\"");
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

/* New bytes in rbuf: the 101 response head while in UPGRADE, then frames.
 * 0 (more may come), or -1 after the session failed. */
int
mus_sess_on_input(mus_sess_t *s)
{
    if (s->state == MUS_SESSION_UPGRADE) {
        int r = session_check_upgrade(s);
        if (r < 0)
            return -1;
        if (r == 0)
            return 0;
    }
    return session_consume_lines(s);
}

/* The Upgrade request: GET /mus/v1 with Host (the certificate's name, else
 * the address), Upgrade and Connection headers. */
int
mus_sess_upgrade_request(const mus_headend_config_t *c, size_t addr_idx, char *req, size_t cap)
{
    const char *host = c->cert_name[0] != '\0' ? c->cert_name : c->addr_text[addr_idx];
    bool bracket = strchr(host, ':') != NULL && c->cert_name[0] != '\0';
    int len = snprintf(req, cap,
                       "GET " MUS_UPGRADE_PATH " HTTP/1.1\r\nHost: %s%s%s\r\n"
                       "Upgrade: " MUS_UPGRADE_TOKEN "\r\nConnection: Upgrade\r\n\r\n",
                       bracket ? "[" : "", host, bracket ? "]" : "");

    return len < 0 || (size_t)len >= cap ? -1 : len;
}

/* TLS is up: sends the Upgrade request and waits for its 101. */
void
mus_sess_send_upgrade(mus_sess_t *s)
{
    char req[512];
    int len = mus_sess_upgrade_request(&s->cfg, s->addr_idx, req, sizeof(req));

    if (len < 0) {
        mus_sess_fail(s, false, "Upgrade request too long");
        return;
    }
    s->state = MUS_SESSION_UPGRADE;
    loop_timer_set(s->feed->loop, &s->timer, SESSION_PHASE_MS);
    if (mus_sess_send_raw(s, req, (size_t)len) < 0)
        return;
    mus_sess_update_interest(s);
}
