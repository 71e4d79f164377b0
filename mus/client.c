/*
 * mus/client.c: the proxy side of MUS/1 (see client.h and
 * docs/mus-protocol.md), its feed part: one thread, one epoll loop, one
 * session object per configured headend. The session object lives as long
 * as its headend is configured; each attempt (TCP connect, TLS, Upgrade,
 * auth, subscribe) reuses it, and what it learnt (epoch, seq, the cached
 * key) survives reconnects. Here: the configuration checks, session objects
 * (new, replaced on a changed configuration, retired on removal), the loss
 * of a session (entries stale, dropped after the grace) and the retry timer,
 * the status array, and the MUS thread with its public interface. Not here:
 * the connection and TLS (client_io.c), the MUS/1 exchange that feeds
 * the map (client_proto.c) and the local RADIUS headend (feed_radius.c);
 * mus/client_int.h holds what they share.
 *
 * Thread model: everything below runs in the MUS thread, except
 * mus_feed_new/start/reconfigure/status/stop/free, which talk to it through a
 * mutex-protected pending configuration and status array plus an eventfd.
 *
 * Configuration notes: reconnect_interval_ms 0 means the default (60 s); an
 * empty client_id is sent as "musproxy"; cert_name may be empty only with a
 * pin (the Host header then carries the address). Headends are matched by
 * name on reconfigure; the map's headend index is a slot, not the position
 * in the configuration (the status array follows the configuration order).
 */
#include "client_int.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "../common/hex.h"
#include "../common/log.h"

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

/* 64 hex digits (optionally separated by ':') -> 32 bytes. 0 or -1. */
int
mus_sess_parse_pin(const char *hex, uint8_t out[32])
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
    if (c->pin_sha256[0] != '\0' && mus_sess_parse_pin(c->pin_sha256, pin) < 0) {
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

/* ---- status ---- */

void
mus_sess_publish(mus_sess_t *s)
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

void
mus_sess_refresh_counters(mus_sess_t *s)
{
    mus_map_counters_t c;

    mus_map_counters(s->feed->map, (int)s->h, &c);
    s->st.entries = c.entries;
    s->st.stale_entries = c.stale_entries;
}

/* ---- loss and retry ---- */

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
        mus_sess_start_attempt(s);
        return;
    }
    switch (s->state) {
    case MUS_SESSION_CONNECTING:
        mus_sess_fail(s, true, "connect to %s timed out", s->cfg.addr_text[s->addr_idx]);
        break;
    case MUS_SESSION_TLS:
        mus_sess_fail(s, false, "TLS handshake timed out");
        break;
    case MUS_SESSION_UPGRADE:
        mus_sess_fail(s, false, "no answer to the Upgrade request");
        break;
    case MUS_SESSION_SYNCING:
        /* the pong after our subscribe is late (or never comes): with a
         * position and no snapshot started, the resume was accepted */
        if (s->in_snapshot)
            break;
        if (s->have_pos)
            mus_sess_established(s, true);
        else
            mus_sess_fail(s, false, "no snapshot after subscribe");
        mus_sess_publish(s);
        break;
    default:
        mus_sess_fail(s, false, "authentication timed out");
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

void
mus_sess_fail(mus_sess_t *s, bool next_addr, const char *fmt, ...)
{
    mus_feed_t *f = s->feed;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(s->st.last_error, sizeof(s->st.last_error), fmt, ap);
    va_end(ap);
    mus_sess_close_conn(s, false);
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
    mus_sess_refresh_counters(s);
    mus_sess_publish(s);
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
    loop_io_init(&s->io, mus_sess_io_cb, s);
    loop_timer_init(&s->timer, session_timer_cb, s);
    loop_timer_init(&s->ping_timer, mus_sess_ping_cb, s);
    loop_timer_init(&s->dead_timer, mus_sess_dead_cb, s);
    loop_timer_init(&s->ack_timer, mus_sess_ack_cb, s);
    s->rbuf = malloc(SESSION_RBUF_CAP);
    if (s->rbuf == NULL) {
        free(s);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->st.name, sizeof(s->st.name), "%s", c->name);
    snprintf(s->st.address, sizeof(s->st.address), "%s", c->addr_text[0]);
    if (headend_config_check(c, err, errlen) == 0) {
        s->has_pin = c->pin_sha256[0] != '\0' && mus_sess_parse_pin(c->pin_sha256, s->pin) == 0;
        s->ctx = mus_sess_ssl_ctx(c, err, errlen);
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

    mus_sess_close_conn(s, true);
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

    mus_sess_close_conn(old, true);
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
        mus_sess_refresh_counters(s);
    }
    mus_radius_tick(f, now);
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
        for (h = 0; h < MUS_MAP_MAX_HEADENDS &&
                    (f->slots[h] != NULL || mus_radius_owns_slot(f, h)); h++)
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
    mus_radius_config_t *rcfg;
    uint64_t v;
    bool stop, rstop;

    (void)loop;
    (void)events;
    while (read(f->wake_fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
        ;
    pthread_mutex_lock(&f->mu);
    cfg = f->pending;
    f->pending = NULL;
    rcfg = f->radius_pending;
    f->radius_pending = NULL;
    rstop = f->radius_stop;
    stop = f->stop;
    pthread_mutex_unlock(&f->mu);
    if (stop) {
        f->running = false;
        free(cfg);
        free(rcfg);
        return;
    }
    if (cfg != NULL) {
        feed_apply(f, cfg);
        free(cfg);
    }
    if (rcfg != NULL || rstop)
        mus_radius_wake(f, rcfg, rstop);
}

void
mus_feed_wake(mus_feed_t *f)
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
        mus_sess_close_conn(s, true);
        session_mark_lost(s);
        s->state = MUS_SESSION_IDLE;
        s->st.next_attempt = 0;
    }
    mus_radius_close(f);
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
    mus_feed_wake(f);   /* an eventfd keeps counting until the thread reads it */
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
    mus_feed_wake(f);
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
    mus_radius_free(f);
    free(f->radius_pending);
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
