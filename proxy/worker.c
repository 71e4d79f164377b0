/*
 * proxy/worker.c: worker threads (see worker.h): listeners with
 * SO_REUSEPORT, accept under the process-wide connection limit
 * (proxy/connlimit.h) and a pause on descriptor exhaustion, notifications
 * from the main thread (and limit wakes from other workers) through an
 * eventfd, graceful drain, and the per-worker upstream keep-alive pool
 * (its size, and the resolver's lookups, go to the worker's slot of
 * proxy/metrics.h).
 */
#include "worker.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../common/hash.h"
#include "../common/log.h"
#include "connlimit.h"
#include "intercept.h"
#include "limits.h"

#define LISTEN_BACKLOG  1024
#define POOL_BUCKETS    256
_Static_assert(POOL_MAX_PER_WORKER <= UINT16_MAX, "a bucket length fits pool_len");

enum worker_notify {
    NOTIFY_CONFIG = 1u << 0,
    NOTIFY_REOPEN = 1u << 1,
    NOTIFY_SHUTDOWN = 1u << 2,
    NOTIFY_RESUME = 1u << 3,     /* a connection slot was released */
};

typedef struct listener {
    config_listen_t conf;
    int fd;
    loop_io_t io;
    struct worker *w;
} listener_t;

typedef struct pool_entry {
    struct pool_entry *prev, *next;  /* bucket list, most recent first */
    struct worker *w;
    int fd;
    loop_io_t io;
    loop_timer_t timer;
    uint32_t bucket;
    socklen_t len;
    struct sockaddr_storage addr;
    char host[DNS_MAX_NAME + 1];
} pool_entry_t;

struct worker {
    unsigned id, nworkers;
    pthread_t thread;
    bool started;
    loop_t *loop;
    dns_t *dns;
    alog_t *alog;
    alog_t *extlog;
    relaybuf_pool_t *relaybufs;   /* copy buffers of this worker's tunnels */
    access_surrogates_t *surrogates;
    cfgref_t *cfg;
    proxy_env_t env;
    mus_map_reader_t *reader;  /* registered on the worker's own thread */

    listener_t listeners[CONFIG_MAX_LISTEN];
    size_t n_listeners;
    bool accept_paused;      /* EMFILE/ENFILE or connection limit */
    loop_timer_t accept_timer;
    uint64_t full_logged;    /* loop time of the last "at the limit" warning */

    int efd;                 /* eventfd from the main thread */
    loop_io_t eio;
    atomic_uint notify;
    pthread_mutex_t lock;    /* guards pending_cfg */
    cfgref_t *pending_cfg;

    worker_link_t conns;     /* list head (sentinel) */
    unsigned n_conns;
    bool draining;
    loop_timer_t drain_timer;

    pool_entry_t *pool[POOL_BUCKETS];
    uint16_t pool_len[POOL_BUCKETS];  /* entries in each bucket (<= POOL_MAX_PER_WORKER) */
    unsigned pool_count;
};

/* ---- configuration references ---- */

cfgref_t *
cfgref_new(config_t *cfg, policy_t *policy)
{
    cfgref_t *r = malloc(sizeof(*r));

    if (r == NULL)
        return NULL;
    r->cfg = cfg;
    r->policy = policy;
    atomic_init(&r->refs, 1);
    return r;
}

cfgref_t *
cfgref_get(cfgref_t *r)
{
    atomic_fetch_add(&r->refs, 1);
    return r;
}

void
cfgref_put(cfgref_t *r)
{
    if (r == NULL)
        return;
    if (atomic_fetch_sub(&r->refs, 1) == 1) {
        policy_free(r->policy);
        config_free(r->cfg);
        free(r);
    }
}

void
cfgref_publish(cfgref_t **slot, pthread_mutex_t *lock, cfgref_t *next)
{
    cfgref_t *old;

    cfgref_get(next);
    pthread_mutex_lock(lock);
    old = *slot;
    *slot = next;
    pthread_mutex_unlock(lock);
    cfgref_put(old);
}

/* ---- accessors ---- */

loop_t *worker_loop(worker_t *w) { return w->loop; }
dns_t *worker_dns(worker_t *w) { return w->dns; }
alog_t *worker_alog(worker_t *w) { return w->alog; }
relaybuf_pool_t *worker_relaybufs(worker_t *w) { return w->relaybufs; }
alog_t *worker_extlog(worker_t *w) { return w->extlog; }
txnstore_t *worker_store(worker_t *w) { return w->env.store; }
metrics_t *worker_metrics(worker_t *w) { return w->env.metrics; }
const struct status_sources *worker_status(worker_t *w) { return w->env.status; }
unsigned worker_index(worker_t *w) { return w->id; }
access_surrogates_t *worker_surrogates(worker_t *w) { return w->surrogates; }
cfgref_t *worker_cfg(worker_t *w) { return w->cfg; }
bool worker_draining(const worker_t *w) { return w->draining; }
probes_t *worker_probes(worker_t *w) { return w->env.probes; }

bool
worker_identity(worker_t *w, const struct sockaddr *sa, mus_identity_t *out)
{
    mus_addr_t a;

    if (w->reader == NULL || w->env.map == NULL)
        return false;
    mus_addr_from_sockaddr(sa, &a);
    return mus_map_lookup(w->env.map, &a, out);
}

void
worker_link_add(worker_t *w, worker_link_t *l, void *owner, const worker_link_ops_t *ops)
{
    l->owner = owner;
    l->ops = ops;
    l->next = w->conns.next;
    l->prev = &w->conns;
    w->conns.next->prev = l;
    w->conns.next = l;
    w->n_conns++;
}

void
worker_link_del(worker_t *w, worker_link_t *l)
{
    if (l->prev == NULL)
        return;
    l->prev->next = l->next;
    l->next->prev = l->prev;
    l->prev = l->next = NULL;
    w->n_conns--;
    connlimit_release(w->env.connlimit);   /* wakes the workers waiting for a slot */
}

/* ---- listeners ---- */

static int
listener_socket(const config_listen_t *conf, char *err, size_t errlen)
{
    const struct sockaddr *sa = (const struct sockaddr *)&conf->addr;
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0)
        goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
        goto fail;
    if (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
        goto fail;
    if (intercept_listener_opts(fd, conf) < 0)
        goto fail;
    if (bind(fd, sa, conf->addr_len) < 0)
        goto fail;
    return fd;
fail:
    snprintf(err, errlen, "cannot listen on %s: %s", conf->text, strerror(errno));
    if (fd >= 0)
        close(fd);
    return -1;
}

static bool same_listen(const config_listen_t *a, const config_listen_t *b);

/* An address the running configuration listens on is kept as it is by the
 * reload (listeners_reconcile): binding it again would fail once the
 * privileges are dropped (SO_REUSEPORT wants the owner of the bound socket). */
static bool
running_listen(const config_t *running, const config_listen_t *l)
{
    for (size_t i = 0; running != NULL && i < running->n_listen; i++)
        if (same_listen(&running->listen[i], l))
            return true;
    return false;
}

int
worker_check_listen(const config_t *cfg, const config_t *running, char *err, size_t errlen)
{
    for (size_t i = 0; i < cfg->n_listen; i++) {
        if (running_listen(running, &cfg->listen[i]))
            continue;
        int fd = listener_socket(&cfg->listen[i], err, errlen);
        if (fd < 0)
            return -1;
        close(fd);
    }
    return 0;
}

static void
accept_pause(worker_t *w)
{
    for (size_t k = 0; k < w->n_listeners; k++)
        loop_io_set(w->loop, &w->listeners[k].io, 0);
    w->accept_paused = true;
}

/* The process is at max_connections: stop accepting until a slot is
 * released anywhere (connlimit wakes us). New connections wait in the
 * kernel's backlog meanwhile; none is accepted only to be closed. */
static void
accept_pause_full(worker_t *w)
{
    connlimit_stats_t st;

    accept_pause(w);
    if (w->full_logged != 0 && loop_now(w->loop) - w->full_logged < ACCEPT_FULL_LOG_MS)
        return;
    w->full_logged = loop_now(w->loop);
    connlimit_stats(w->env.connlimit, &st);
    log_warn("worker %u: %u connections open in the process, the limit (max_connections %u): "
             "accept paused (%u here)", w->id, st.open, st.max, w->n_conns);
}

static void
worker_on_accept(loop_t *loop, loop_io_t *io, uint32_t events)
{
    listener_t *l = io->arg;
    worker_t *w = l->w;

    (void)loop;
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof(peer);
        int fd;

        if (!connlimit_acquire(w->env.connlimit) && !connlimit_wait(w->env.connlimit, w->id)) {
            accept_pause_full(w);
            return;
        }
        fd = accept4(l->fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            connlimit_release(w->env.connlimit);
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* do not spin on a listener we cannot serve: pause, retry later */
                log_warn("worker %u: accept: %s: pausing accept for %d ms", w->id, strerror(errno),
                         ACCEPT_PAUSE_MS);
                accept_pause(w);
                loop_timer_set(w->loop, &w->accept_timer, ACCEPT_PAUSE_MS);
                return;
            }
            log_error("worker %u: accept on %s: %s", w->id, l->conf.text, strerror(errno));
            return;
        }
        if (w->env.accept(w, fd, (struct sockaddr *)&peer, len, &l->conf) == NULL)
            connlimit_release(w->env.connlimit);   /* the constructor closed fd */
    }
}

static void
accept_resume(worker_t *w)
{
    if (w->draining)
        return;
    w->accept_paused = false;
    for (size_t k = 0; k < w->n_listeners; k++)
        loop_io_set(w->loop, &w->listeners[k].io, LOOP_READ);
}

static void
worker_on_accept_timer(loop_t *loop, loop_timer_t *t)
{
    worker_t *w = t->arg;

    (void)loop;
    accept_resume(w);   /* the accept handler checks the limit again */
}

static int
listener_add(worker_t *w, const config_listen_t *conf, char *err, size_t errlen)
{
    listener_t *l = &w->listeners[w->n_listeners];
    int fd = listener_socket(conf, err, errlen);

    if (fd < 0)
        return -1;
    if (listen(fd, LISTEN_BACKLOG) < 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", conf->text, strerror(errno));
        close(fd);
        return -1;
    }
    l->conf = *conf;
    l->fd = fd;
    l->w = w;
    loop_io_init(&l->io, worker_on_accept, l);
    if (loop_io_start(w->loop, &l->io, fd, w->accept_paused ? 0 : LOOP_READ) < 0) {
        snprintf(err, errlen, "cannot watch listener %s", conf->text);
        close(fd);
        return -1;
    }
    w->n_listeners++;
    return 0;
}

static void
listener_close_all(worker_t *w)
{
    for (size_t i = 0; i < w->n_listeners; i++) {
        loop_io_stop(w->loop, &w->listeners[i].io);
        close(w->listeners[i].fd);
    }
    w->n_listeners = 0;
}

static bool
same_listen(const config_listen_t *a, const config_listen_t *b)
{
    return a->addr_len == b->addr_len && memcmp(&a->addr, &b->addr, a->addr_len) == 0;
}

/* Makes the listeners match cfg: keeps the common ones (with the new mode),
 * closes removed ones, opens new ones. Live connections are untouched. */
static void
listeners_reconcile(worker_t *w, const config_t *cfg)
{
    char err[256];
    listener_t old[CONFIG_MAX_LISTEN];
    size_t n_old = w->n_listeners;

    memcpy(old, w->listeners, sizeof(old[0]) * n_old);
    for (size_t i = 0; i < n_old; i++)
        loop_io_stop(w->loop, &w->listeners[i].io);
    w->n_listeners = 0;
    for (size_t j = 0; j < cfg->n_listen; j++) {
        bool kept = false;
        for (size_t i = 0; i < n_old; i++) {
            if (old[i].fd >= 0 && same_listen(&old[i].conf, &cfg->listen[j])) {
                listener_t *l = &w->listeners[w->n_listeners];
                l->conf = cfg->listen[j];
                l->fd = old[i].fd;
                l->w = w;
                loop_io_init(&l->io, worker_on_accept, l);
                if (loop_io_start(w->loop, &l->io, l->fd, w->accept_paused ? 0 : LOOP_READ) == 0)
                    w->n_listeners++;
                else
                    close(l->fd);
                old[i].fd = -1;
                kept = true;
                break;
            }
        }
        if (!kept && listener_add(w, &cfg->listen[j], err, sizeof(err)) < 0)
            log_error("worker %u: %s", w->id, err);
        else if (!kept && w->id == 0)
            log_info("listening on %s (%s)", cfg->listen[j].text,
                     config_listen_mode_str(cfg->listen[j].mode));
    }
    for (size_t i = 0; i < n_old; i++) {
        if (old[i].fd >= 0) {
            if (w->id == 0)
                log_info("no longer listening on %s", old[i].conf.text);
            close(old[i].fd);
        }
    }
}

/* ---- upstream pool ---- */

static uint32_t
pool_hash(const char *host, const struct sockaddr *addr, socklen_t len)
{
    return hash_fnv1a32(hash_fnv1a32_str(HASH_FNV1A32_INIT, host), addr, len) % POOL_BUCKETS;
}

static void
pool_entry_free_deferred(void *arg)
{
    free(arg);
}

static void
pool_unlink(worker_t *w, pool_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        w->pool[e->bucket] = e->next;
    if (e->next)
        e->next->prev = e->prev;
    loop_io_stop(w->loop, &e->io);   /* no-op when the descriptor was moved away */
    loop_timer_cancel(w->loop, &e->timer);
    w->pool_len[e->bucket]--;
    w->pool_count--;
    metrics_upstream_idle(w->env.metrics, w->id, w->pool_count);
    if (loop_defer(w->loop, pool_entry_free_deferred, e) < 0)
        free(e); /* stopped above: no event of this batch can name it */
}

static void
pool_drop(worker_t *w, pool_entry_t *e)
{
    close(e->fd);
    pool_unlink(w, e);
}

/* An idle upstream connection became readable: the origin closed it (or
 * sent bytes nobody asked for). Either way it cannot be reused. */
static void
pool_on_io(loop_t *loop, loop_io_t *io, uint32_t events)
{
    pool_entry_t *e = io->arg;

    (void)loop;
    (void)events;
    pool_drop(e->w, e);
}

static void
pool_on_timer(loop_t *loop, loop_timer_t *t)
{
    pool_entry_t *e = t->arg;

    (void)loop;
    pool_drop(e->w, e);
}

int
worker_pool_take(worker_t *w, const char *host, const struct sockaddr *addr, socklen_t len,
                 loop_io_t *into)
{
    uint32_t b = pool_hash(host, addr, len);

    for (pool_entry_t *e = w->pool[b]; e; e = e->next) {
        if (e->len == len && memcmp(&e->addr, addr, len) == 0 && strcmp(e->host, host) == 0) {
            int fd = e->fd;
            /* READ, as in the pool: the caller sends at once and asks for
             * WRITE only if that blocks (no epoll_ctl in the usual case) */
            if (loop_io_move(w->loop, &e->io, into, LOOP_READ) < 0) {
                pool_drop(w, e);
                return -1;
            }
            pool_unlink(w, e);
            return fd;
        }
    }
    return -1;
}

void
worker_pool_put(worker_t *w, loop_io_t *from, const char *host, const struct sockaddr *addr,
                socklen_t len)
{
    uint32_t b = pool_hash(host, addr, len);
    unsigned same = 0;
    int fd = from->fd;
    pool_entry_t *e;

    if (w->draining || w->pool_count >= POOL_MAX_PER_WORKER || strlen(host) > DNS_MAX_NAME ||
        len > sizeof(e->addr))
        goto drop;
    /* a bucket shorter than the limit cannot hold too many to one
     * destination: the walk is only needed past that */
    if (w->pool_len[b] >= POOL_MAX_PER_DEST) {
        for (e = w->pool[b]; e; e = e->next)
            if (e->len == len && memcmp(&e->addr, addr, len) == 0 && strcmp(e->host, host) == 0)
                same++;
        if (same >= POOL_MAX_PER_DEST)
            goto drop;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        goto drop;
    e->w = w;
    e->fd = fd;
    e->bucket = b;
    e->len = len;
    memcpy(&e->addr, addr, len);
    strcpy(e->host, host);
    loop_io_init(&e->io, pool_on_io, e);
    loop_timer_init(&e->timer, pool_on_timer, e);
    if (loop_io_move(w->loop, from, &e->io, LOOP_READ) < 0) {
        free(e);
        goto drop;
    }
    loop_timer_set(w->loop, &e->timer, POOL_IDLE_MS);
    e->next = w->pool[b];
    if (e->next)
        e->next->prev = e;
    w->pool[b] = e;
    w->pool_len[b]++;
    w->pool_count++;
    metrics_upstream_idle(w->env.metrics, w->id, w->pool_count);
    return;
drop:
    loop_io_stop(w->loop, from);
    close(fd);
}

static void
pool_close_all(worker_t *w)
{
    for (unsigned b = 0; b < POOL_BUCKETS; b++)
        while (w->pool[b])
            pool_drop(w, w->pool[b]);
}

/* ---- notifications and drain ---- */

static void
worker_on_drain_deadline(loop_t *loop, loop_timer_t *t)
{
    worker_t *w = t->arg;

    (void)loop;
    if (w->n_conns > 0)
        log_warn("worker %u: shutdown deadline: closing %u connections", w->id, w->n_conns);
    while (w->conns.next != &w->conns)
        w->conns.next->ops->abort(w->conns.next->owner);
}

static void
worker_start_drain(worker_t *w)
{
    worker_link_t *l, *next;

    if (w->draining)
        return;
    w->draining = true;
    listener_close_all(w);
    pool_close_all(w);
    for (l = w->conns.next; l != &w->conns; l = next) {
        next = l->next;
        l->ops->drain(l->owner);
    }
    loop_timer_set(w->loop, &w->drain_timer, w->cfg->cfg->timeouts.shutdown);
}

static void
worker_apply_config(worker_t *w, cfgref_t *next)
{
    cfgref_t *old = w->cfg;

    if (strcmp(old->cfg->access_log, next->cfg->access_log) != 0) {
        alog_t *a = alog_open(next->cfg->access_log);
        if (a == NULL) {
            log_error("worker %u: access log %s: %s (keeping %s)", w->id, next->cfg->access_log,
                      strerror(errno), old->cfg->access_log);
        } else {
            alog_close(w->alog);
            w->alog = a;
        }
    }
    if (strcmp(old->cfg->pol.extended_log, next->cfg->pol.extended_log) != 0) {
        alog_t *a = alog_open(next->cfg->pol.extended_log);
        if (a == NULL) {
            log_error("worker %u: extended log %s: %s (keeping %s)", w->id,
                      next->cfg->pol.extended_log, strerror(errno), old->cfg->pol.extended_log);
        } else {
            alog_close(w->extlog);
            w->extlog = a;
        }
    }
    w->cfg = next;
    if (!w->draining)
        listeners_reconcile(w, next->cfg);
    /* connections between two requests move to the new configuration now:
     * an idle one must not keep an old generation (and its compiled policy)
     * alive until its next request; requests in flight keep theirs */
    for (worker_link_t *l = w->conns.next; l != &w->conns; l = l->next)
        if (l->ops->reconfigure != NULL)
            l->ops->reconfigure(l->owner);
    cfgref_put(old);
}

static void
worker_on_notify(loop_t *loop, loop_io_t *io, uint32_t events)
{
    worker_t *w = io->arg;
    uint64_t v;
    unsigned what;

    (void)loop;
    (void)events;
    if (read(w->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
        log_error("worker %u: eventfd read: %s", w->id, strerror(errno));
    what = atomic_exchange(&w->notify, 0);
    if (what & NOTIFY_CONFIG) {
        cfgref_t *next;
        pthread_mutex_lock(&w->lock);
        next = w->pending_cfg;
        w->pending_cfg = NULL;
        pthread_mutex_unlock(&w->lock);
        if (next != NULL)
            worker_apply_config(w, next);
    }
    if (what & NOTIFY_REOPEN) {
        alog_reopen(w->alog);
        alog_reopen(w->extlog);
    }
    if (what & NOTIFY_SHUTDOWN)
        worker_start_drain(w);
    if ((what & NOTIFY_RESUME) && w->accept_paused && !loop_timer_armed(&w->accept_timer))
        accept_resume(w);
}

static void
worker_notify(worker_t *w, unsigned what)
{
    uint64_t one = 1;

    atomic_fetch_or(&w->notify, what);
    if (write(w->efd, &one, sizeof(one)) < 0)
        log_error("worker %u: eventfd write: %s", w->id, strerror(errno));
}

void
worker_notify_config(worker_t *w, cfgref_t *cfg)
{
    cfgref_publish(&w->pending_cfg, &w->lock, cfg);
    worker_notify(w, NOTIFY_CONFIG);
}

void
worker_notify_reopen(worker_t *w)
{
    worker_notify(w, NOTIFY_REOPEN);
}

void
worker_notify_shutdown(worker_t *w)
{
    worker_notify(w, NOTIFY_SHUTDOWN);
}

/* connlimit's wake, from whichever thread released a slot */
static void
worker_wake(void *arg)
{
    worker_notify(arg, NOTIFY_RESUME);
}

/* ---- life cycle ---- */

/* The resolver's lookups, counted in the worker's slot. */
static void
worker_dns_observed(void *arg, enum dns_outcome o)
{
    worker_t *w = arg;

    metrics_dns(w->env.metrics, w->id, o);
}

worker_t *
worker_new(unsigned id, unsigned nworkers, cfgref_t *cfg, const proxy_env_t *env, char *err,
           size_t errlen)
{
    worker_t *w = calloc(1, sizeof(*w));

    if (w == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->id = id;
    w->nworkers = nworkers ? nworkers : 1;
    w->env = *env;
    w->efd = -1;
    w->conns.next = w->conns.prev = &w->conns;
    pthread_mutex_init(&w->lock, NULL);
    atomic_init(&w->notify, 0);
    w->cfg = cfgref_get(cfg);
    loop_timer_init(&w->accept_timer, worker_on_accept_timer, w);
    loop_timer_init(&w->drain_timer, worker_on_drain_deadline, w);
    w->loop = loop_new();
    if (w->loop == NULL) {
        snprintf(err, errlen, "cannot create the event loop: %s", strerror(errno));
        goto fail;
    }
    w->dns = dns_new(w->loop, cfg->cfg->timeouts.dns);
    if (w->dns == NULL) {
        snprintf(err, errlen, "cannot initialise the resolver (c-ares)");
        goto fail;
    }
    dns_set_observer(w->dns, worker_dns_observed, w);
    w->alog = alog_open(cfg->cfg->access_log);
    if (w->alog == NULL) {
        snprintf(err, errlen, "cannot open access log %s: %s", cfg->cfg->access_log, strerror(errno));
        goto fail;
    }
    w->extlog = alog_open(cfg->cfg->pol.extended_log);
    if (w->extlog == NULL) {
        snprintf(err, errlen, "cannot open extended log %s: %s", cfg->cfg->pol.extended_log,
                 strerror(errno));
        goto fail;
    }
    w->surrogates = access_surrogates_new();
    w->relaybufs = relaybuf_pool_new();
    if (w->surrogates == NULL || w->relaybufs == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        goto fail;
    }
    loop_io_init(&w->eio, worker_on_notify, w);
    if (loop_io_start(w->loop, &w->eio, w->efd, LOOP_READ) < 0) {
        snprintf(err, errlen, "cannot watch the eventfd");
        goto fail;
    }
    for (size_t i = 0; i < cfg->cfg->n_listen; i++) {
        if (listener_add(w, &cfg->cfg->listen[i], err, errlen) < 0)
            goto fail;
    }
    connlimit_attach(env->connlimit, id, worker_wake, w);
    return w;
fail:
    worker_free(w);
    return NULL;
}

/* The map's readers hold no reference while the loop sleeps. */
static void
worker_before_wait(void *arg)
{
    worker_t *w = arg;

    mus_map_reader_offline(w->reader);
}

static void
worker_after_wait(void *arg)
{
    worker_t *w = arg;

    mus_map_reader_online(w->reader);
}

static void *
worker_main(void *arg)
{
    worker_t *w = arg;

    if (w->env.map != NULL) {
        w->reader = mus_map_reader_register(w->env.map);
        if (w->reader == NULL)
            log_error("worker %u: cannot register as a map reader: identities unavailable", w->id);
        else
            loop_set_wait_hooks(w->loop, worker_before_wait, worker_after_wait, w);
    }
    uint64_t last_trim = 0;
    bool busy_since_trim = false;

    while (!(w->draining && w->n_conns == 0)) {
        int r = loop_run_once(w->loop, WORKER_WAKE_MS);
        if (r > 0) {
            busy_since_trim = true;
        } else if (r == 0 && busy_since_trim && loop_now(w->loop) - last_trim >= WORKER_TRIM_MS) {
            /* A burst is over (a whole wait without events): hand the body
             * buffers freed since back to the system, so idle connections
             * cost their small struct, not the high-water mark. */
            malloc_trim(0);
            last_trim = loop_now(w->loop);
            busy_since_trim = false;
        }
        if (w->reader != NULL)
            mus_map_reader_quiescent(w->reader);
        alog_flush(w->alog);
        alog_flush(w->extlog);
        if (r < 0) {
            log_error("worker %u: epoll: %s", w->id, strerror(-r));
            break;
        }
    }
    alog_flush(w->alog);
    if (w->reader != NULL) {
        loop_set_wait_hooks(w->loop, NULL, NULL, NULL);
        mus_map_reader_unregister(w->reader);
        w->reader = NULL;
    }
    return NULL;
}

int
worker_start(worker_t *w)
{
    int r = pthread_create(&w->thread, NULL, worker_main, w);

    if (r != 0)
        return -r;
    w->started = true;
    return 0;
}

void
worker_join(worker_t *w)
{
    if (w->started) {
        pthread_join(w->thread, NULL);
        w->started = false;
    }
}

void
worker_free(worker_t *w)
{
    if (w == NULL)
        return;
    connlimit_attach(w->env.connlimit, w->id, NULL, NULL);  /* no wake after this */
    while (w->conns.next != &w->conns)
        w->conns.next->ops->abort(w->conns.next->owner);
    listener_close_all(w);
    pool_close_all(w);
    if (w->loop != NULL) {
        loop_timer_cancel(w->loop, &w->accept_timer);
        loop_timer_cancel(w->loop, &w->drain_timer);
        loop_io_stop(w->loop, &w->eio);
        /* run the deferred frees of the connections and pool entries */
        loop_run_once(w->loop, 0);
    }
    if (w->efd >= 0)
        close(w->efd);
    dns_free(w->dns);
    alog_close(w->alog);
    alog_close(w->extlog);
    access_surrogates_free(w->surrogates);
    relaybuf_pool_free(w->relaybufs);
    loop_free(w->loop);
    cfgref_put(w->pending_cfg);
    cfgref_put(w->cfg);
    pthread_mutex_destroy(&w->lock);
    free(w);
}
