/*
 * mus/feed_radius.c: the local RADIUS headend of the MUS feed (see
 * feed_radius.h and client_int.h): mus-headend's RADIUS listener
 * (headend_radius.c) and session store (headend_store.c) on the MUS
 * thread's loop, in a map slot of their own. The store's journal is the
 * seam: after each change (before the listener answers the NAS) the events
 * not yet applied are read back as MUS/1 frames and applied to the map
 * exactly as client_proto.c applies a remote headend's add/upd/del; if more
 * changed at once than the journal holds (an Accounting-On for a large
 * NAS), the map's entries of this headend are rebuilt from the store as a
 * snapshot. Also here: the once-a-second stale sweep, the stop (the
 * sockets close, the entries go stale for the feed's grace, then are
 * dropped), reloads of the clients file, and the published status.
 *
 * It runs in the MUS thread, except mus_feed_radius_attach (before the
 * thread starts) and mus_feed_radius_reconfigure/stop/status (any thread,
 * through the feed's mutex and wake-up). It never logs a secret.
 */
#include "client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "headend_store.h"

#define FR_JOURNAL_CAP 4096u   /* store events kept; more at once: rebuilt as a snapshot */

typedef struct feed_radius {
    mus_feed_t *feed;
    unsigned h;                /* the map slot */
    mus_radius_config_t cfg;
    hs_store_t *store;         /* NULL once stopped */
    hr_t *hr;                  /* NULL once stopped */
    uint64_t applied;          /* the last store seq applied to the map */
    bool publish_queued;       /* a publish is deferred to the end of the batch */
    mus_radius_status_t st;    /* the thread's copy; published under feed->mu */
} feed_radius_t;

_Static_assert(MUS_RADIUS_MAX_LISTEN == HR_MAX_SOCKETS, "one socket per listen address");

bool
mus_radius_owns_slot(const mus_feed_t *f, unsigned h)
{
    return f->radius != NULL && f->radius->h == h;
}

/* ---- the store's changes into the map ---- */

static int
snapshot_entry(void *arg, const hs_entry_t *e)
{
    feed_radius_t *r = arg;

    (void)mus_map_snapshot_add(r->feed->map, r->h, &e->s, e->ips, e->n_ips);
    return 0;
}

/* The map's entries of this headend replaced by the store's sessions. */
static void
radius_resync(feed_radius_t *r, const char *why)
{
    mus_map_t *m = r->feed->map;

    mus_map_snapshot_begin(m, r->h);
    hs_store_walk(r->store, snapshot_entry, r);
    mus_map_snapshot_end(m, r->h);
    r->applied = hs_store_seq(r->store);
    r->st.resyncs++;
    r->st.last_event = wall_now();
    log_warn("radius %s: %s: the map's entries rebuilt from the %zu sessions", r->cfg.name, why,
             hs_store_count(r->store));
}

/* Applies the journal's events after r->applied, in order. */
static void
radius_pump(feed_radius_t *r)
{
    static _Thread_local mus_frame_t fr;   /* large: keep it off the stack */
    mus_map_t *m = r->feed->map;
    uint64_t last = hs_store_seq(r->store);
    char err[128];

    if (r->applied == last)
        return;
    if (r->applied + 1 < hs_store_oldest(r->store)) {
        radius_resync(r, "more changes at once than the journal holds");
        return;
    }
    for (uint64_t seq = r->applied + 1; seq <= last; seq++) {
        const char *line;
        size_t len;

        memset(&fr, 0, sizeof(fr));
        if (!hs_store_event(r->store, seq, &line, &len) || len == 0 ||
            mus_frame_parse(line, len - 1, &fr, err, sizeof(err)) < 0) {
            log_error("radius %s: store event %llu unreadable", r->cfg.name,
                      (unsigned long long)seq);
            radius_resync(r, "an unreadable store event");
            return;
        }
        if (fr.type == MUS_F_DEL)
            (void)mus_map_del(m, r->h, fr.session.sid, fr.ips, fr.n_ips);
        else
            (void)mus_map_add(m, r->h, &fr.session, fr.ips, fr.n_ips);
        r->applied = seq;
        r->st.events_applied++;
    }
    r->st.last_event = wall_now();
}

/* ---- status ---- */

static void
radius_publish(feed_radius_t *r)
{
    mus_feed_t *f = r->feed;
    mus_map_counters_t mc;

    if (r->hr != NULL)
        hr_get_counters(r->hr, &r->st.c);
    r->st.sessions = r->store ? hs_store_count(r->store) : 0;
    r->st.stale_sessions = r->store ? hs_store_stale_count(r->store) : 0;
    mus_map_counters(f->map, (int)r->h, &mc);
    r->st.entries = mc.entries;
    r->st.stale_entries = mc.stale_entries;
    pthread_mutex_lock(&f->mu);
    f->radius_pub = r->st;
    pthread_mutex_unlock(&f->mu);
}

static void
radius_publish_deferred(void *arg)
{
    feed_radius_t *r = arg;

    r->publish_queued = false;
    radius_publish(r);
}

/* hr's changed callback: runs before the Accounting-Response is sent. The
 * status is published after the batch, with the answers counted. */
static void
radius_changed(void *arg)
{
    feed_radius_t *r = arg;

    radius_pump(r);
    if (!r->publish_queued && loop_defer(r->feed->loop, radius_publish_deferred, r) == 0)
        r->publish_queued = true;
}

/* ---- stopping ---- */

/* Closes the sockets and frees the store; the entries stay, stale, for the
 * feed's grace (none: dropped now). Never called from the listener's own
 * callback; a stopped descriptor's pending events are skipped by the loop. */
static void
radius_stop_listener(feed_radius_t *r, const char *why)
{
    mus_feed_t *f = r->feed;
    int64_t now = wall_now();

    if (r->store == NULL)
        return;
    radius_pump(r);
    hr_get_counters(r->hr, &r->st.c);
    hr_free(r->hr);
    hs_store_free(r->store);
    r->hr = NULL;
    r->store = NULL;
    r->st.listening = false;
    mus_map_headend_lost(f->map, r->h, now);
    if (f->grace_ms == 0)
        (void)mus_map_expire(f->map, r->h, now, 0);
    log_warn("radius %s: listener %s; its entries are stale for %u s, then dropped",
             r->cfg.name, why, (unsigned)((f->grace_ms + 999) / 1000));
}

/* ---- the MUS thread's hooks (client_int.h) ---- */

void
mus_radius_tick(mus_feed_t *f, int64_t now)
{
    feed_radius_t *r = f->radius;
    size_t marked = 0, removed = 0;

    if (r == NULL)
        return;
    if (r->store != NULL) {
        hs_store_stale_sweep(r->store, loop_now(f->loop), r->cfg.stale_after,
                             r->cfg.stale_grace_ms, &marked, &removed);
        if (marked > 0 || removed > 0)
            log_info("radius %s: %zu sessions stale (no refresh for %u intervals), %zu removed "
                     "after %u s stale", r->cfg.name, marked, r->cfg.stale_after, removed,
                     (unsigned)(r->cfg.stale_grace_ms / 1000));
        r->st.stale_marked += marked;
        r->st.stale_removed += removed;
        radius_pump(r);
    } else {
        int64_t grace_s = (int64_t)((f->grace_ms + 999) / 1000);
        size_t n = mus_map_expire(f->map, r->h, now, grace_s);
        if (n > 0)
            log_warn("radius %s: stopped for more than %lld s, dropped %zu stale entries",
                     r->cfg.name, (long long)grace_s, n);
    }
    radius_publish(r);
}

void
mus_radius_wake(mus_feed_t *f, mus_radius_config_t *cfg, bool stop)
{
    feed_radius_t *r = f->radius;
    char err[512];

    if (r == NULL || r->store == NULL) {
        free(cfg);
        return;
    }
    if (stop || (cfg != NULL && cfg->n_listen == 0)) {
        radius_stop_listener(r, stop ? "closed (shutting down)" : "removed by a reload");
        radius_publish(r);
        free(cfg);
        return;
    }
    r->cfg.stale_after = cfg->stale_after ? cfg->stale_after : r->cfg.stale_after;
    r->cfg.stale_grace_ms = cfg->stale_grace_ms;
    if (hr_reload_clients(r->hr, err, sizeof(err)) < 0) {
        log_error("radius %s: the clients file was not reloaded, the old list stays: %s",
                  r->cfg.name, err);
        snprintf(r->st.last_error, sizeof(r->st.last_error), "clients file not reloaded: %.*s",
                 (int)sizeof(r->st.last_error) - 32, err);
    } else {
        hr_counters_t c;
        hr_get_counters(r->hr, &c);
        log_info("radius %s: reloaded %s (%llu clients)", r->cfg.name, r->cfg.clients_file,
                 (unsigned long long)c.clients);
        r->st.last_error[0] = '\0';
    }
    radius_publish(r);
    free(cfg);
}

void
mus_radius_close(mus_feed_t *f)
{
    if (f->radius == NULL)
        return;
    radius_stop_listener(f->radius, "closed");
    radius_publish(f->radius);
}

void
mus_radius_free(mus_feed_t *f)
{
    feed_radius_t *r = f->radius;

    if (r == NULL)
        return;
    hr_free(r->hr);   /* never started: still here */
    hs_store_free(r->store);
    free(r);
    f->radius = NULL;
}

/* ---- the public interface (feed_radius.h) ---- */

static void
close_fds(const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
}

/* The checks that need the feed: not started, not attached twice, a name
 * no headend has, a free slot (*h). 0 or -1 with a message. */
static int
attach_check(const mus_feed_t *f, const mus_radius_config_t *cfg, size_t n, unsigned *h,
             char *err, size_t errlen)
{
    if (f->started || f->radius != NULL) {
        snprintf(err, errlen, "%s", f->started ? "the MUS thread runs already"
                                               : "a RADIUS listener is attached already");
        return -1;
    }
    if (n == 0 || n > MUS_RADIUS_MAX_LISTEN || n != cfg->n_listen) {
        snprintf(err, errlen, "%zu sockets for %zu listen addresses (1 to %d)", n,
                 cfg->n_listen, MUS_RADIUS_MAX_LISTEN);
        return -1;
    }
    if (cfg->name[0] == '\0' || memchr(cfg->name, '\0', sizeof(cfg->name)) == NULL) {
        snprintf(err, errlen, "no headend name for the RADIUS listener");
        return -1;
    }
    if (cfg->stale_after == 0) {
        snprintf(err, errlen, "stale_after must be at least 1");
        return -1;
    }
    *h = MUS_MAP_MAX_HEADENDS;
    for (unsigned i = MUS_MAP_MAX_HEADENDS; i-- > 0;) {
        const mus_sess_t *s = f->slots[i];
        if (s == NULL)
            *h = i;
        else if (strcmp(s->cfg.name, cfg->name) == 0) {
            snprintf(err, errlen, "the RADIUS listener's name %s is also a headend's", cfg->name);
            return -1;
        }
    }
    if (*h == MUS_MAP_MAX_HEADENDS) {
        snprintf(err, errlen, "no map slot left for the RADIUS listener (%d headends)",
                 MUS_MAP_MAX_HEADENDS);
        return -1;
    }
    return 0;
}

int
mus_feed_radius_attach(mus_feed_t *f, const mus_radius_config_t *cfg, const int *fds, size_t n,
                       char *err, size_t errlen)
{
    hr_options_t opt = {0};
    feed_radius_t *r;
    hr_counters_t c;
    unsigned h;

    if (attach_check(f, cfg, n, &h, err, errlen) < 0) {
        close_fds(fds, n);
        return -1;
    }
    if (hr_group_source_parse(cfg->groups, &opt.groups, opt.group_key, sizeof(opt.group_key)) < 0) {
        snprintf(err, errlen, "groups: '%s' is not class, filter-id, avpair[:KEY] or none",
                 cfg->groups);
        close_fds(fds, n);
        return -1;
    }
    r = calloc(1, sizeof(*r));
    if (r != NULL)
        r->store = hs_store_new(FR_JOURNAL_CAP);
    if (r == NULL || r->store == NULL) {
        snprintf(err, errlen, "out of memory");
        free(r);
        close_fds(fds, n);
        return -1;
    }
    r->feed = f;
    r->h = h;
    r->cfg = *cfg;
    opt.clients_path = cfg->clients_file;
    opt.machine_user_re = cfg->machine_user[0] ? cfg->machine_user : NULL;
    opt.machine_avpair = cfg->machine_avpair[0] ? cfg->machine_avpair : NULL;
    opt.default_interim_s = cfg->default_interim_s;
    r->hr = hr_new(f->loop, r->store, &opt, fds, n, radius_changed, r, err, errlen);
    if (r->hr == NULL || mus_map_headend_set(f->map, h, cfg->name) < 0) {
        if (r->hr != NULL)
            snprintf(err, errlen, "map slot %u refused", h);
        hr_free(r->hr);
        hs_store_free(r->store);
        free(r);
        return -1;
    }
    mus_map_headend_connected(f->map, h);
    snprintf(r->st.name, sizeof(r->st.name), "%s", cfg->name);
    r->st.listening = true;
    r->st.n_listen = n;
    memcpy(r->st.listen, cfg->listen, sizeof(r->st.listen));
    f->radius = r;
    pthread_mutex_lock(&f->mu);
    f->has_radius = true;
    pthread_mutex_unlock(&f->mu);
    radius_publish(r);
    hr_get_counters(r->hr, &c);
    for (size_t i = 0; i < n; i++)
        log_info("radius %s: accounting on %s (%llu clients in %s, groups from %s)", cfg->name,
                 cfg->listen[i], (unsigned long long)c.clients, cfg->clients_file, cfg->groups);
    return 0;
}

/* Hands a request to the MUS thread. */
static void
radius_request(mus_feed_t *f, mus_radius_config_t *cfg, bool stop)
{
    pthread_mutex_lock(&f->mu);
    if (cfg != NULL) {
        free(f->radius_pending);
        f->radius_pending = cfg;
    }
    f->radius_stop = f->radius_stop || stop;
    pthread_mutex_unlock(&f->mu);
    mus_feed_wake(f);
}

void
mus_feed_radius_reconfigure(mus_feed_t *f, const mus_radius_config_t *cfg)
{
    mus_radius_config_t *copy = malloc(sizeof(*copy));

    if (copy == NULL) {
        log_error("radius: reload: out of memory: the listener keeps its settings");
        return;
    }
    *copy = *cfg;
    radius_request(f, copy, false);
}

void
mus_feed_radius_stop(mus_feed_t *f)
{
    radius_request(f, NULL, true);
}

bool
mus_feed_radius_status(mus_feed_t *f, mus_radius_status_t *out)
{
    bool has;

    pthread_mutex_lock(&f->mu);
    has = f->has_radius;
    if (has)
        *out = f->radius_pub;
    pthread_mutex_unlock(&f->mu);
    return has;
}
