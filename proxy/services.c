/*
 * proxy/services.c: musproxy's service table (services.h): for each
 * long-lived part, how it opens, starts, takes a new configuration and
 * stops, written against the shared context. The order of the rows is
 * the order of services.h. A setting a part reads only when it opens is
 * reported at reload as changing only at restart, never silently ignored.
 *
 * It does not decide the order of the steps (service.c) or load the
 * configuration (main.c).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/path.h"
#include "../db/txnstore.h"
#include "../mus/client.h"
#include "../mus/feed_radius.h"
#include "../mus/map.h"
#include "conn.h"
#include "gre.h"
#include "metrics.h"
#include "probes.h"
#include "services.h"
#include "wccp.h"

unsigned
proxy_worker_count(const config_t *cfg)
{
    long n;

    if (cfg->workers > 0)
        return cfg->workers;
    n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > CONFIG_MAX_WORKERS)
        n = CONFIG_MAX_WORKERS;
    return n > 0 ? (unsigned)n : 1;
}

/* The configuration in force, for the control and admin threads. */
static cfgref_t *
ctx_get_cfg(void *arg)
{
    proxy_ctx_t *c = arg;
    cfgref_t *r;

    pthread_mutex_lock(&c->lock);
    r = cfgref_get(c->current);
    pthread_mutex_unlock(&c->lock);
    return r;
}

int
proxy_ctx_init(proxy_ctx_t *c, cfgref_t *current)
{
    memset(c, 0, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    c->current = current;
    c->env.map = mus_map_new();
    c->env.probes = probes_new();
    c->env.connlimit = connlimit_new(current->cfg->max_connections);
    c->env.metrics = metrics_new(proxy_worker_count(current->cfg));
    c->env.accept = conn_accept;
    c->env.status = &c->src;
    c->src = (status_sources_t){
        .map = c->env.map, .probes = c->env.probes, .connlimit = c->env.connlimit,
        .metrics = c->env.metrics, .get_cfg = ctx_get_cfg, .cfg_arg = c,
    };
    if (c->env.map == NULL || c->env.probes == NULL || c->env.connlimit == NULL ||
        c->env.metrics == NULL)
        return -1;
    return 0;
}

void
proxy_ctx_set_config(proxy_ctx_t *c, cfgref_t *next)
{
    cfgref_publish(&c->current, &c->lock, next);
}

void
proxy_ctx_destroy(proxy_ctx_t *c)
{
    wccp_free(c->wccp);   /* stopped by its row; freed once no worker can read it */
    metrics_free(c->env.metrics);
    mus_map_free(c->env.map);
    probes_free(c->env.probes);
    connlimit_free(c->env.connlimit);
    cfgref_put(c->current);
    pthread_mutex_destroy(&c->lock);
    memset(c, 0, sizeof(*c));
}

/* A section read only when its part opens: say so when a reload changes it. */
static void
warn_restart(const void *next, const void *running, size_t len, const char *what)
{
    if (memcmp(next, running, len) != 0)
        log_warn("reload: the %s settings change only at restart", what);
}

/* ---- store: the transaction store and its writer thread ---------------- */

/* The identity map's history goes to the store: every address a remote
 * session gains or loses (called on the MUS thread, inside the change). */
static void
session_to_store(void *arg, enum mus_map_event ev, const mus_addr_t *addr,
                 const mus_identity_t *id, const char *reason)
{
    char vpn[64];
    struct timespec ts;
    txnstore_session_t s;

    mus_addr_format(addr, vpn, sizeof(vpn));
    clock_gettime(CLOCK_REALTIME, &ts);
    s = (txnstore_session_t){
        .user = id->s.name,
        .domain = id->s.domain,
        .vpn_addr = vpn,
        .public_addr = id->s.client_ip,
        .type = mus_id_type_str(id->s.type),
        .headend = id->headend,
        .start_ms = id->s.started * 1000,
        .end_ms = ev == MUS_MAP_END ? (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 : 0,
        .end_reason = reason,
    };
    txnstore_session_event(arg, &s);   /* a full queue counts the loss */
}

/* A store that cannot open is logged and the proxy serves without it (the
 * reports then show nothing new). */
static int
store_open(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    const config_store_t *cs = &cfg->store;
    char why[TXNSTORE_ERR_MAX];
    bool pg = cs->backend == CONFIG_STORE_POSTGRESQL;
    txnstore_config_t tc = {
        .backend = pg ? TXNSTORE_POSTGRESQL : TXNSTORE_SQLITE,
        .path = cs->path,
        .conninfo = cs->conninfo,
        .password_file = cs->password_file,
        .node = cs->node,
        .queue_max = cs->queue,
        .retain_days = cs->retain_days,
        .retain_mb = cs->retain_mb,
        .keep_query = cs->keep_query,
    };
    txnstore_stats_t st;

    if (cs->path[0] == '\0')
        return SERVICE_SKIP;
    if (pg) {
        c->env.store = txnstore_open(&tc, why, sizeof(why));
        if (c->env.store == NULL) {
            snprintf(err, errlen, "%s (transactions are not stored)", why);
            return SERVICE_ERROR;
        }
        c->src.store = c->env.store;
        mus_map_set_observer(c->env.map, session_to_store, c->env.store);
        txnstore_stats(c->env.store, &st);
        if (st.db_open)
            log_info("storing transactions in postgresql (node %s)", cs->node[0] ? cs->node
                                                                             : "= host name");
        else
            log_warn("store: %s (transactions wait in the queue meanwhile)", st.last_error);
        return SERVICE_OK;
    }
    if (path_mkdir_parent(cs->path) < 0) {
        snprintf(err, errlen, "%s: cannot create its directory: %s (transactions are not stored)",
                 cs->path, strerror(errno));
        return SERVICE_ERROR;
    }
    c->env.store = txnstore_open(&tc, why, sizeof(why));
    if (c->env.store == NULL) {
        snprintf(err, errlen, "%s: %s (transactions are not stored)", cs->path, why);
        return SERVICE_ERROR;
    }
    c->src.store = c->env.store;
    mus_map_set_observer(c->env.map, session_to_store, c->env.store);
    log_info("storing transactions in %s", cs->path);
    return SERVICE_OK;
}

static int
store_reconfigure(void *arg, cfgref_t *next, const config_t *running, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    warn_restart(&next->cfg->store, &running->store, sizeof(running->store), "store");
    return SERVICE_OK;
}

/* After the workers: what they submitted is written. */
static void
store_close(void *arg)
{
    proxy_ctx_t *c = arg;

    mus_map_set_observer(c->env.map, NULL, NULL);
    c->src.store = NULL;
    txnstore_close(c->env.store);
    c->env.store = NULL;
}

static const service_ops_t svc_store = {
    .name = "store",
    .required = false,
    .open = store_open,
    .reconfigure = store_reconfigure,
    .close = store_close,
};

/* ---- gre: the raw GRE socket and the TUN device (needs privileges) ----- */

static int
gre_open(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;

    if (!cfg->gre.enabled)
        return SERVICE_SKIP;
    c->gre = gre_start(&cfg->gre, err, errlen);
    if (c->gre == NULL)
        return SERVICE_ERROR;
    c->src.gre = c->gre;
    return SERVICE_OK;
}

static int
gre_reconfigure(void *arg, cfgref_t *next, const config_t *running, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    warn_restart(&next->cfg->gre, &running->gre, sizeof(running->gre), "gre");
    return SERVICE_OK;
}

static void
gre_close(void *arg)
{
    proxy_ctx_t *c = arg;

    c->src.gre = NULL;
    gre_stop(c->gre);
    c->gre = NULL;
}

static const service_ops_t svc_gre = {
    .name = "gre",
    .required = true,
    .open = gre_open,
    .reconfigure = gre_reconfigure,
    .close = gre_close,
};

/* ---- feed: the MUS sessions to the headends ------------------------------ */

/* The MUS feed's view of the configuration (mus/ does not know policy/). */
static mus_feed_config_t *
feed_config(const config_t *cfg)
{
    mus_feed_config_t *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return NULL;
    f->reconnect_interval_ms = cfg->mus.reconnect_interval;
    f->grace_ms = cfg->mus.grace;
    f->n_headends = cfg->mus.n_headends;
    for (size_t i = 0; i < cfg->mus.n_headends; i++)
        status_headend_config(cfg, i, &f->headends[i]);
    return f;
}

/* Before privileges drop: the CA files and password files may be root's. */
static int
feed_open(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    mus_feed_config_t *fc = feed_config(cfg);

    if (fc == NULL) {
        snprintf(err, errlen, "out of memory");
        return SERVICE_ERROR;
    }
    c->feed = mus_feed_new(c->env.map, fc, err, errlen);
    free(fc);
    if (c->feed == NULL)
        return SERVICE_ERROR;
    c->src.feed = c->feed;
    return SERVICE_OK;
}

static int
feed_start(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;

    (void)cfg;
    if (mus_feed_start(c->feed) < 0) {
        snprintf(err, errlen, "cannot start the MUS thread");
        return SERVICE_ERROR;
    }
    return SERVICE_OK;
}

static int
feed_reconfigure(void *arg, cfgref_t *next, const config_t *running, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    mus_feed_config_t *fc;

    (void)running;
    (void)err;
    (void)errlen;
    if (c->feed == NULL)
        return SERVICE_OK;
    fc = feed_config(next->cfg);
    if (fc == NULL) {
        log_error("reload: out of memory: the headends keep their settings");
        return SERVICE_OK;
    }
    mus_feed_reconfigure(c->feed, fc);
    free(fc);
    return SERVICE_OK;
}

static void
feed_close(void *arg)
{
    proxy_ctx_t *c = arg;

    if (c->feed == NULL)
        return;
    c->src.feed = NULL;
    mus_feed_stop(c->feed);
    mus_feed_free(c->feed);
    c->feed = NULL;
}

static const service_ops_t svc_feed = {
    .name = "feed",
    .required = true,
    .open = feed_open,
    .start = feed_start,
    .reconfigure = feed_reconfigure,
    .close = feed_close,
};

/* ---- radius: the RADIUS accounting listener on the MUS thread ------------- */

#define RADIUS_RCVBUF (4 << 20)   /* a burst of Accounting-Requests (an Accounting-On storm) */

_Static_assert(CONFIG_RADIUS_MAX_LISTEN <= MUS_RADIUS_MAX_LISTEN, "a socket per address");

/* The listener's view of the configuration (mus/ does not know policy/). */
static void
radius_config(const config_radius_t *r, mus_radius_config_t *out)
{
    memset(out, 0, sizeof(*out));
    snprintf(out->name, sizeof(out->name), "%s", r->name);
    out->n_listen = r->n_listen;
    for (size_t i = 0; i < r->n_listen; i++)
        snprintf(out->listen[i], sizeof(out->listen[i]), "%s", r->listen_text[i]);
    snprintf(out->clients_file, sizeof(out->clients_file), "%s", r->clients_file);
    snprintf(out->groups, sizeof(out->groups), "%s", r->groups);
    snprintf(out->machine_user, sizeof(out->machine_user), "%s", r->machine_user);
    snprintf(out->machine_avpair, sizeof(out->machine_avpair), "%s", r->machine_avpair);
    out->default_interim_s = (r->interim + 999) / 1000;
    out->stale_after = r->stale_after;
    out->stale_grace_ms = r->stale_grace;
}

/* A UDP socket bound to a numeric address; -1 with errno. */
static int
radius_socket(const struct sockaddr_storage *ss, socklen_t len)
{
    int one = 1, rcv = RADIUS_RCVBUF, saved;
    int fd = socket(ss->ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0)
        return -1;
    if (ss->ss_family == AF_INET6)   /* [::] beside 0.0.0.0 */
        (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    if (bind(fd, (const struct sockaddr *)ss, len) < 0) {
        saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Before privileges drop: the sockets (1813 is privileged) and the clients
 * file (it may be root's); the feed takes both. */
static int
radius_open(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    const config_radius_t *r = &cfg->radius;
    int fds[CONFIG_RADIUS_MAX_LISTEN];
    mus_radius_config_t rc;

    if (r->n_listen == 0)
        return SERVICE_SKIP;
    if (c->feed == NULL) {
        snprintf(err, errlen, "no MUS feed to run it");
        return SERVICE_ERROR;
    }
    for (size_t i = 0; i < r->n_listen; i++) {
        fds[i] = radius_socket(&r->listen[i], r->listen_lens[i]);
        if (fds[i] < 0) {
            snprintf(err, errlen, "radius.listen %s: %s", r->listen_text[i], strerror(errno));
            while (i-- > 0)
                close(fds[i]);
            return SERVICE_ERROR;
        }
    }
    radius_config(r, &rc);
    if (mus_feed_radius_attach(c->feed, &rc, fds, r->n_listen, err, errlen) < 0)
        return SERVICE_ERROR;
    return SERVICE_OK;
}

/* A reload reads the clients file again and takes stale_after and
 * stale_grace; an empty listen stops the listener (its entries stay, stale,
 * for mus.grace). The sockets and the rest change only at restart. */
static int
radius_reconfigure(void *arg, cfgref_t *next, const config_t *running, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    const config_radius_t *n = &next->cfg->radius, *o = &running->radius;
    mus_radius_config_t rc;
    config_radius_t cmp;

    (void)err;
    (void)errlen;
    if (o->n_listen == 0 || c->feed == NULL) {
        if (n->n_listen > 0)
            log_warn("reload: a RADIUS listener starts only at restart (its port may be "
                     "privileged)");
        return SERVICE_OK;
    }
    radius_config(n, &rc);
    if (n->n_listen == 0) {
        log_info("reload: radius.listen is empty: the RADIUS listener stops");
        mus_feed_radius_reconfigure(c->feed, &rc);
        return SERVICE_SKIP;
    }
    cmp = *n;
    cmp.stale_after = o->stale_after;
    cmp.stale_grace = o->stale_grace;
    warn_restart(&cmp, o, sizeof(cmp), "radius listen, clients_file, groups, machine, interim "
                 "and name");
    mus_feed_radius_reconfigure(c->feed, &rc);
    return SERVICE_OK;
}

/* The sockets close now; the feed's thread, stopped after, frees the rest. */
static void
radius_stop(void *arg)
{
    proxy_ctx_t *c = arg;

    if (c->feed != NULL)
        mus_feed_radius_stop(c->feed);
}

static const service_ops_t svc_radius = {
    .name = "radius",
    .required = true,
    .open = radius_open,
    .reconfigure = radius_reconfigure,
    .stop = radius_stop,
};

/* ---- workers: the listeners and the worker threads ------------------------ */

/* Binds every listener (worker_new), before privileges drop. */
static int
workers_open(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    unsigned n = proxy_worker_count(cfg);

    c->workers = calloc(n, sizeof(*c->workers));
    if (c->workers == NULL) {
        snprintf(err, errlen, "out of memory");
        return SERVICE_ERROR;
    }
    for (unsigned i = 0; i < n; i++) {
        c->workers[i] = worker_new(i, n, c->current, &c->env, err, errlen);
        if (c->workers[i] == NULL)
            return SERVICE_ERROR;   /* workers_close frees those made */
        c->n_workers++;
    }
    return SERVICE_OK;
}

static int
workers_start(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;

    for (size_t i = 0; i < cfg->n_listen; i++)
        log_info("listening on %s (%s)", cfg->listen[i].text,
                 config_listen_mode_str(cfg->listen[i].mode));
    for (unsigned i = 0; i < c->n_workers; i++) {
        int r = worker_start(c->workers[i]);
        if (r < 0) {
            snprintf(err, errlen, "cannot start worker %u: %s", i, strerror(-r));
            return SERVICE_ERROR;
        }
        c->n_started++;
    }
    return SERVICE_OK;
}

static int
workers_check(void *arg, const config_t *next, const config_t *running, char *err,
              size_t errlen)
{
    (void)arg;
    return worker_check_listen(next, running, err, errlen);
}

static int
workers_reconfigure(void *arg, cfgref_t *next, const config_t *running, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    unsigned n = proxy_worker_count(next->cfg);

    (void)running;
    (void)err;
    (void)errlen;

    if (n != c->n_workers)
        log_warn("reload: the number of workers (%u -> %u) changes only at restart",
                 c->n_workers, n);
    for (unsigned i = 0; i < c->n_started; i++)
        worker_notify_config(c->workers[i], next);
    connlimit_set_max(c->env.connlimit, next->cfg->max_connections);
    return SERVICE_OK;
}

static void
workers_stop(void *arg)
{
    proxy_ctx_t *c = arg;

    for (unsigned i = 0; i < c->n_started; i++)
        worker_notify_shutdown(c->workers[i]);
}

/* Waits for the requests in flight (at most timeouts.shutdown). */
static void
workers_close(void *arg)
{
    proxy_ctx_t *c = arg;

    for (unsigned i = 0; i < c->n_started; i++)
        worker_join(c->workers[i]);
    for (unsigned i = 0; i < c->n_workers; i++)
        worker_free(c->workers[i]);
    free(c->workers);
    c->workers = NULL;
    c->n_workers = c->n_started = 0;
}

static const service_ops_t svc_workers = {
    .name = "workers",
    .required = true,
    .open = workers_open,
    .start = workers_start,
    .check = workers_check,
    .reconfigure = workers_reconfigure,
    .stop = workers_stop,
    .close = workers_close,
};

/* ---- control: the socket musctl talks to ---------------------------------- */

/* Started after the privilege drop: the socket file belongs to run.user. */
static int
control_open(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    return cfg->mus.control_socket[0] != '\0' ? SERVICE_OK : SERVICE_SKIP;
}

static int
control_start_row(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    char why[SERVICE_ERR_MAX];

    c->control = control_start(cfg->mus.control_socket, &c->src, why, sizeof(why));
    if (c->control == NULL) {
        snprintf(err, errlen, "%s (musctl status/map unavailable)", why);
        return SERVICE_ERROR;
    }
    return SERVICE_OK;
}

static int
control_reconfigure(void *arg, cfgref_t *next, const config_t *running, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    if (strcmp(next->cfg->mus.control_socket, running->mus.control_socket) != 0)
        log_warn("reload: the control socket path changes only at restart");
    return SERVICE_OK;
}

static void
control_close(void *arg)
{
    proxy_ctx_t *c = arg;

    control_stop(c->control);
    c->control = NULL;
}

static const service_ops_t svc_control = {
    .name = "control",
    .required = false,
    .open = control_open,
    .start = control_start_row,
    .reconfigure = control_reconfigure,
    .close = control_close,
};

/* ---- admin: the admin web UI ---------------------------------------------- */

/* Before privileges drop: the TLS key may be readable by root only. */
static int
admin_open(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    char why[ADMIN_ERR_MAX];

    if (!cfg->admin.enabled) {
        log_info("admin UI disabled (admin.enabled: false)");
        return SERVICE_SKIP;
    }
    c->admin = admin_new(&cfg->admin, why, sizeof(why));
    if (c->admin == NULL) {
        snprintf(err, errlen, "not started: %s", why);
        return SERVICE_ERROR;
    }
    return SERVICE_OK;
}

static int
admin_start_row(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    char why[ADMIN_ERR_MAX];
    const config_store_t *cs = &cfg->store;
    report_store_t store = {.postgresql = cs->backend == CONFIG_STORE_POSTGRESQL,
                            .path = cs->path, .conninfo = cs->conninfo,
                            .password_file = cs->password_file};

    if (admin_start(c->admin, &c->src, &store, why, sizeof(why)) < 0) {
        snprintf(err, errlen, "not started: %s", why);
        admin_stop(c->admin);   /* not running: a reload tries again */
        c->admin = NULL;
        return SERVICE_ERROR;
    }
    return SERVICE_OK;
}

/* Opens and starts the UI for cfg at a reload (after the privilege drop:
 * the TLS files must be readable by run.user now). */
static int
admin_restart(proxy_ctx_t *c, const config_t *cfg, char *err, size_t errlen)
{
    admin_stop(c->admin);
    c->admin = NULL;
    if (admin_open(c, cfg, err, errlen) != SERVICE_OK ||
        admin_start_row(c, cfg, err, errlen) != SERVICE_OK)
        return SERVICE_ERROR;
    return SERVICE_STARTED;
}

/* A changed admin section restarts the UI with it (its listener is not
 * privileged: loopback, a high port by default), or turns it on or off;
 * so do a certificate or key renewed on disk, and a reload of a UI that
 * had failed. */
static int
admin_reconfigure(void *arg, cfgref_t *next, const config_t *running, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    const config_t *n = next->cfg;
    char why[ADMIN_ERR_MAX];
    int tls;

    if (!n->admin.enabled) {
        if (c->admin == NULL && !running->admin.enabled)
            return SERVICE_SKIP;
        admin_stop(c->admin);
        c->admin = NULL;
        log_info("reload: admin UI stopped (admin.enabled: false)");
        return SERVICE_SKIP;
    }
    if (c->admin == NULL) {
        log_info("reload: starting the admin UI");
        return admin_restart(c, n, err, errlen);
    }
    if (memcmp(&n->admin, &running->admin, sizeof(running->admin)) != 0 ||
        strcmp(n->store.path, running->store.path) != 0 ||
        n->store.backend != running->store.backend ||
        strcmp(n->store.conninfo, running->store.conninfo) != 0 ||
        strcmp(n->store.password_file, running->store.password_file) != 0) {
        log_info("reload: the admin UI settings changed: restarting it");
        return admin_restart(c, n, err, errlen);
    }
    tls = admin_tls_changed(c->admin, &n->admin, why, sizeof(why));
    if (tls < 0)
        log_warn("reload: %s: the admin UI keeps the certificate it has", why);
    if (tls <= 0)
        return SERVICE_OK;
    log_info("reload: the admin UI's certificate or key changed on disk: restarting it");
    return admin_restart(c, n, err, errlen);
}

static void
admin_close(void *arg)
{
    proxy_ctx_t *c = arg;

    admin_stop(c->admin);
    c->admin = NULL;
}

static const service_ops_t svc_admin = {
    .name = "admin",
    .required = false,
    .open = admin_open,
    .start = admin_start_row,
    .reconfigure = admin_reconfigure,
    .close = admin_close,
};

/* ---- wccp: the WCCP agent ------------------------------------------------- */

/* The agent and its socket are made here, so that status_sources_t is
 * complete before any thread that copies it (control, admin) starts. */
static int
wccp_open(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    char why[WCCP_ERR_MAX];

    if (cfg->wccp.n_routers == 0)
        return SERVICE_SKIP;
    c->wccp = wccp_new(&cfg->wccp, why, sizeof(why));
    if (c->wccp == NULL) {
        snprintf(err, errlen, "%s (WCCP is off)", why);
        return SERVICE_ERROR;
    }
    c->src.wccp = c->wccp;
    return SERVICE_OK;
}

/* After the workers: routers are told we are here only once we serve. */
static int
wccp_start_row(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;

    (void)cfg;
    if (wccp_start(c->wccp) < 0) {
        snprintf(err, errlen, "cannot start its thread (WCCP is off)");
        return SERVICE_ERROR;
    }
    return SERVICE_OK;
}

static int
wccp_reconfigure(void *arg, cfgref_t *next, const config_t *running, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    warn_restart(&next->cfg->wccp, &running->wccp, sizeof(running->wccp), "wccp");
    return SERVICE_OK;
}

/* First of all at shutdown: the routers send new flows to the other caches.
 * Stopping leaves the groups and ends the thread; the agent itself is freed
 * by proxy_ctx_destroy, after the workers, whose /metrics may still read it
 * while they drain. */
static void
wccp_stop_row(void *arg)
{
    proxy_ctx_t *c = arg;

    wccp_stop(c->wccp);
}

static const service_ops_t svc_wccp = {
    .name = "wccp",
    .required = false,
    .open = wccp_open,
    .start = wccp_start_row,
    .reconfigure = wccp_reconfigure,
    .stop = wccp_stop_row,
};

const service_ops_t *const proxy_services[] = {
    &svc_store, &svc_gre, &svc_feed, &svc_radius, &svc_workers, &svc_control, &svc_admin,
    &svc_wccp, &proxy_svc_reports,
};
const size_t proxy_services_count = sizeof(proxy_services) / sizeof(proxy_services[0]);
