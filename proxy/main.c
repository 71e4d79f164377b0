/*
 * proxy/main.c: the musproxy daemon's entry point: command line, loading and
 * checking the configuration, starting the worker threads, and the signal
 * loop of the main thread (SIGHUP reload, SIGTERM/SIGINT graceful stop,
 * SIGUSR1 reopen logs). It handles no traffic itself.
 */
#include <ares.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/path.h"
#include "../mus/client.h"
#include "../mus/map.h"
#include "../db/catdb.h"
#include "../db/txnstore.h"
#include "../admin/admin.h"
#include "../policy/config.h"
#include "../policy/policy.h"
#include "conn.h"
#include "control.h"
#include "metrics.h"
#include "gre.h"
#include "privdrop.h"
#include "sdnotify.h"
#include "status.h"
#include "probes.h"
#include "wccp.h"
#include "worker.h"

#define MUSPROXY_VERSION "0.1.0"
#define DEFAULT_CONFIG "etc/musproxy.yaml"
#define MAX_LISTEN_OVERRIDES 8

/* Command-line settings that override the file, re-applied on every reload. */
typedef struct overrides {
    const char *listen[MAX_LISTEN_OVERRIDES];
    size_t n_listen;
    unsigned workers;   /* 0 = from the file */
    int debug;
} overrides_t;

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: musproxy [-c FILE] [-t] [-l ADDR:PORT]... [-w N] [-d] [--version]\n"
            "  -c FILE       configuration file (default %s)\n"
            "  -t            check the configuration file and exit\n"
            "  -l ADDR:PORT  listen here (explicit mode) instead of the file's listen list\n"
            "  -w N          worker threads (default: the file's, auto = one per core)\n"
            "  -d            debug logging\n",
            DEFAULT_CONFIG);
}

static int
apply_overrides(config_t *cfg, const overrides_t *o, char *err, size_t errlen)
{
    if (o->n_listen > 0) {
        cfg->n_listen = 0;
        for (size_t i = 0; i < o->n_listen; i++) {
            config_listen_t *l = &cfg->listen[cfg->n_listen];
            if (config_parse_sockaddr(o->listen[i], &l->addr, &l->addr_len) < 0) {
                snprintf(err, errlen, "-l %s: not a numeric ADDR:PORT", o->listen[i]);
                return -1;
            }
            snprintf(l->text, sizeof(l->text), "%s", o->listen[i]);
            l->mode = CONFIG_MODE_EXPLICIT;
            cfg->n_listen++;
        }
    }
    if (o->workers)
        cfg->workers = o->workers;
    if (o->debug)
        cfg->log_level = LOG_LVL_DEBUG;
    return 0;
}

/* Loads and validates the file, then compiles its policy (regexes, the
 * category database, the password file): a configuration whose policy does
 * not build is as invalid as one that does not parse. */
static config_t *
load(const char *path, const overrides_t *o, policy_t **policy, char *err, size_t errlen)
{
    config_t *cfg = config_load(path, err, errlen);
    const char *db;
    char perr[POLICY_ERR_LEN];

    if (cfg == NULL)
        return NULL;
    if (apply_overrides(cfg, o, err, errlen) < 0) {
        config_free(cfg);
        return NULL;
    }
    db = cfg->pol.category_db;
    if (db[0] != '\0' && access(db, R_OK) != 0) {
        log_warn("category database %s not found: list categories are empty "
                 "(run musctl categories import DIR)", db);
        db = "";
    }
    *policy = policy_build(cfg, db[0] ? catdb_source : NULL, (void *)db, perr, sizeof(perr));
    if (*policy == NULL) {
        snprintf(err, errlen, "%.100s: %.400s", path, perr);
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

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
    for (size_t i = 0; i < cfg->mus.n_headends; i++) {
        const config_headend_t *c = &cfg->mus.headends[i];
        mus_headend_config_t *h = &f->headends[i];
        snprintf(h->name, sizeof(h->name), "%s", c->name);
        h->n_addrs = c->n_addrs < MUS_FEED_MAX_ADDRS ? c->n_addrs : MUS_FEED_MAX_ADDRS;
        for (size_t k = 0; k < h->n_addrs; k++) {
            h->addrs[k] = c->addrs[k];
            h->addr_lens[k] = c->addr_lens[k];
            snprintf(h->addr_text[k], sizeof(h->addr_text[k]), "%s", c->addr_text[k]);
        }
        snprintf(h->ca_file, sizeof(h->ca_file), "%s", c->ca);
        snprintf(h->pin_sha256, sizeof(h->pin_sha256), "%s", c->pin_sha256);
        snprintf(h->cert_name, sizeof(h->cert_name), "%s", c->cert_name);
        snprintf(h->password_file, sizeof(h->password_file), "%s", c->password_file);
        snprintf(h->client_id, sizeof(h->client_id), "%s", cfg->mus.client_id);
    }
    return f;
}

/* The configuration in force, for the control thread (the trace). */
typedef struct cfg_holder {
    pthread_mutex_t lock;
    cfgref_t *current;
} cfg_holder_t;

static cfg_holder_t holder = {PTHREAD_MUTEX_INITIALIZER, NULL};

static cfgref_t *
holder_get(void *arg)
{
    cfg_holder_t *h = arg;
    cfgref_t *r;

    pthread_mutex_lock(&h->lock);
    r = cfgref_get(h->current);
    pthread_mutex_unlock(&h->lock);
    return r;
}

static void
holder_set(cfg_holder_t *h, cfgref_t *r)
{
    pthread_mutex_lock(&h->lock);
    h->current = r;
    pthread_mutex_unlock(&h->lock);
}

static unsigned
worker_count(const config_t *cfg)
{
    long n;

    if (cfg->workers > 0)
        return cfg->workers;
    n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n > CONFIG_MAX_WORKERS)
        n = CONFIG_MAX_WORKERS;
    return n > 0 ? (unsigned)n : 1;
}

/* Returns whether the new configuration was taken. */
static bool
reload(const char *path, const overrides_t *o, cfgref_t **current, worker_t **workers,
       unsigned n, mus_feed_t *feed, connlimit_t *connlimit)
{
    char err[CONFIG_ERR_LEN];
    policy_t *policy = NULL;
    config_t *cfg = load(path, o, &policy, err, sizeof(err));
    mus_feed_config_t *fc;
    cfgref_t *ref;

    if (cfg == NULL) {
        log_error("reload rejected, the running configuration stays: %s", err);
        return false;
    }
    if (worker_check_listen(cfg, (*current)->cfg, err, sizeof(err)) < 0) {
        log_error("reload rejected, the running configuration stays: %s", err);
        policy_free(policy);
        config_free(cfg);
        return false;
    }
    if (worker_count(cfg) != n)
        log_warn("reload: the number of workers (%u -> %u) changes only at restart", n,
                 worker_count(cfg));
    ref = cfgref_new(cfg, policy);
    if (ref == NULL) {
        log_error("reload rejected: out of memory");
        policy_free(policy);
        config_free(cfg);
        return false;
    }
    if (strcmp(cfg->mus.control_socket, (*current)->cfg->mus.control_socket) != 0)
        log_warn("reload: the control socket path changes only at restart");
    if (memcmp(&cfg->store, &(*current)->cfg->store, sizeof(cfg->store)) != 0)
        log_warn("reload: the store settings change only at restart");
    if (memcmp(&cfg->wccp, &(*current)->cfg->wccp, sizeof(cfg->wccp)) != 0)
        log_warn("reload: the wccp settings change only at restart");
    if (memcmp(&cfg->gre, &(*current)->cfg->gre, sizeof(cfg->gre)) != 0)
        log_warn("reload: the gre settings change only at restart");
    if (memcmp(&cfg->admin, &(*current)->cfg->admin, sizeof(cfg->admin)) != 0)
        log_warn("reload: the admin UI settings change only at restart");
    fc = feed_config(cfg);
    if (fc == NULL) {
        log_error("reload rejected: out of memory");
        cfgref_put(ref);
        return false;
    }
    log_set_level((enum log_level)cfg->log_level);
    mus_feed_reconfigure(feed, fc);
    free(fc);
    for (unsigned i = 0; i < n; i++)
        worker_notify_config(workers[i], ref);
    connlimit_set_max(connlimit, cfg->max_connections);
    holder_set(&holder, ref);
    cfgref_put(*current);
    *current = ref;
    log_info("configuration reloaded from %s", path);
    return true;
}

/* The transaction store, if configured. A store that cannot open is logged
 * and the proxy serves without it (the reports then show nothing new). */
static txnstore_t *
open_store(const config_store_t *cs)
{
    char err[TXNSTORE_ERR_MAX];
    txnstore_config_t tc = {
        .path = cs->path,
        .queue_max = cs->queue,
        .retain_days = cs->retain_days,
        .retain_mb = cs->retain_mb,
        .keep_query = cs->keep_query,
    };
    txnstore_t *st;

    if (cs->path[0] == '\0')
        return NULL;
    if (path_mkdir_parent(cs->path) < 0) {
        log_error("store %s: cannot create its directory: %s (transactions are not stored)",
                  cs->path, strerror(errno));
        return NULL;
    }
    st = txnstore_open(&tc, err, sizeof(err));
    if (st == NULL)
        log_error("store %s: %s (transactions are not stored)", cs->path, err);
    else
        log_info("storing transactions in %s", cs->path);
    return st;
}

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

/* The WCCP agent, if routers are configured. One that cannot start is
 * logged and the proxy serves on (without redirected traffic). */
static wccp_t *
start_wccp(const config_wccp_t *cw)
{
    char err[WCCP_ERR_MAX];
    wccp_t *w;

    if (cw->n_routers == 0)
        return NULL;
    w = wccp_new(cw, err, sizeof(err));
    if (w == NULL) {
        log_error("%s (WCCP is off)", err);
        return NULL;
    }
    if (wccp_start(w) < 0) {
        log_error("wccp: cannot start its thread (WCCP is off)");
        wccp_free(w);
        return NULL;
    }
    return w;
}

int
main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = DEFAULT_CONFIG;
    overrides_t o = {0};
    bool check_only = false;
    char err[CONFIG_ERR_LEN];
    config_t *cfg;
    policy_t *policy = NULL;
    cfgref_t *current;
    worker_t **workers = NULL;
    proxy_env_t env = {0};
    mus_feed_config_t *fc = NULL;
    mus_feed_t *feed = NULL;
    control_t *control = NULL;
    status_sources_t src = {0};
    wccp_t *wccp = NULL;
    gre_t *gre = NULL;
    admin_t *admin = NULL;
    unsigned n;
    sigset_t sigs;
    int opt, status = 0;

    while ((opt = getopt_long(argc, argv, "c:tl:w:dh", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            path = optarg;
            break;
        case 't':
            check_only = true;
            break;
        case 'l':
            if (o.n_listen == MAX_LISTEN_OVERRIDES) {
                fprintf(stderr, "musproxy: at most %d -l options\n", MAX_LISTEN_OVERRIDES);
                return 2;
            }
            o.listen[o.n_listen++] = optarg;
            break;
        case 'w': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end != '\0' || v == 0 || v > CONFIG_MAX_WORKERS) {
                fprintf(stderr, "musproxy: -w wants 1..%d\n", CONFIG_MAX_WORKERS);
                return 2;
            }
            o.workers = (unsigned)v;
            break;
        }
        case 'd':
            o.debug = 1;
            break;
        case 'V':
            printf("musproxy %s\n", MUSPROXY_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }

    cfg = load(path, &o, &policy, err, sizeof(err));
    if (cfg == NULL) {
        fprintf(stderr, "musproxy: %s\n", err);
        return 1;
    }
    if (check_only) {
        printf("musproxy: configuration %s is valid\n", path);
        policy_free(policy);
        config_free(cfg);
        return 0;
    }
    log_set_level((enum log_level)cfg->log_level);

    /* Signals go to the main thread only (sigwaitinfo below); workers
     * inherit the blocked mask. */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        fprintf(stderr, "musproxy: c-ares initialisation failed\n");
        policy_free(policy);
        config_free(cfg);
        return 1;
    }
    current = cfgref_new(cfg, policy);
    if (current == NULL) {
        policy_free(policy);
        config_free(cfg);
        return 1;
    }
    n = 0;
    env.map = mus_map_new();
    env.probes = probes_new();
    env.connlimit = connlimit_new(cfg->max_connections);
    fc = feed_config(cfg);
    if (env.map == NULL || env.probes == NULL || env.connlimit == NULL || fc == NULL) {
        fprintf(stderr, "musproxy: out of memory\n");
        status = 1;
        goto out;
    }
    feed = mus_feed_new(env.map, fc, err, sizeof(err));
    free(fc);
    if (feed == NULL) {
        fprintf(stderr, "musproxy: %s\n", err);
        status = 1;
        goto out;
    }
    env.accept = conn_accept;
    env.store = open_store(&cfg->store);
    if (env.store != NULL)
        mus_map_set_observer(env.map, session_to_store, env.store);
    /* the raw socket and the TUN device need privileges: before anything else runs */
    if (cfg->gre.enabled && (gre = gre_start(&cfg->gre, err, sizeof(err))) == NULL) {
        fprintf(stderr, "musproxy: %s\n", err);
        status = 1;
        goto out;
    }
    src = (status_sources_t){
        .map = env.map, .feed = feed, .probes = env.probes, .connlimit = env.connlimit,
        .store = env.store, .gre = gre, .get_cfg = holder_get, .cfg_arg = &holder,
    };
    env.status = &src;
    env.metrics = metrics_new(worker_count(cfg));
    if (env.metrics == NULL) {
        fprintf(stderr, "musproxy: out of memory\n");
        status = 1;
        goto out;
    }
    n = worker_count(cfg);
    workers = calloc(n, sizeof(*workers));
    if (workers == NULL) {
        n = 0;
        status = 1;
        goto out;
    }
    for (unsigned i = 0; i < n; i++) {
        workers[i] = worker_new(i, n, current, &env, err, sizeof(err));
        if (workers[i] == NULL) {
            fprintf(stderr, "musproxy: %s\n", err);
            status = 1;
            n = i;
            goto out;
        }
    }
    /* listeners bound, store and logs open: become run.user (before the
     * worker threads start: they inherit the capabilities kept) */
    if (privdrop_apply(cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "musproxy: %s\n", err);
        status = 1;
        goto out;
    }
    for (size_t i = 0; i < cfg->n_listen; i++)
        log_info("listening on %s (%s)", cfg->listen[i].text,
                 config_listen_mode_str(cfg->listen[i].mode));
    for (unsigned i = 0; i < n; i++) {
        int r = worker_start(workers[i]);
        if (r < 0) {
            log_error("cannot start worker %u: %s", i, strerror(-r));
            status = 1;
            for (unsigned k = 0; k < i; k++)
                worker_notify_shutdown(workers[k]);
            goto out;
        }
    }
    if (mus_feed_start(feed) < 0) {
        log_error("cannot start the MUS thread");
        status = 1;
        for (unsigned k = 0; k < n; k++)
            worker_notify_shutdown(workers[k]);
        goto out;
    }
    holder_set(&holder, current);   /* status_sources_t.get_cfg reads it */
    wccp = start_wccp(&cfg->wccp);
    src.wccp = wccp;
    if (cfg->mus.control_socket[0] != '\0') {
        control = control_start(cfg->mus.control_socket, &src, err, sizeof(err));
        if (control == NULL)
            log_error("%s (musctl status/map unavailable)", err);
    }
    admin = admin_start(&cfg->admin, &src, cfg->store.path);
    log_info("musproxy %s ready: %u workers, %zu headends, configuration %s", MUSPROXY_VERSION,
             n, cfg->mus.n_headends, path);
    sdnotify_ready(NULL);

    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(&sigs, &si);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            log_error("sigwaitinfo: %s", strerror(errno));
            break;
        }
        if (sig == SIGHUP) {
            sdnotify_reloading();
            metrics_reload(env.metrics, reload(path, &o, &current, workers, n, feed, env.connlimit));
            sdnotify_ready(NULL);
        } else if (sig == SIGUSR1) {
            log_info("reopening the access log");
            for (unsigned i = 0; i < n; i++)
                worker_notify_reopen(workers[i]);
        } else {
            sdnotify_stopping();
            log_info("%s: finishing requests in flight (at most %u ms), then exiting",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", current->cfg->timeouts.shutdown);
            break;
        }
    }
    wccp_stop(wccp);   /* first: the routers send new flows to the other caches */
    for (unsigned i = 0; i < n; i++)
        worker_notify_shutdown(workers[i]);
out:
    admin_stop(admin);
    control_stop(control);
    wccp_free(wccp);
    gre_stop(gre);
    for (unsigned i = 0; i < n; i++)
        worker_join(workers[i]);
    for (unsigned i = 0; i < n; i++)
        worker_free(workers[i]);
    free(workers);
    if (feed != NULL) {
        mus_feed_stop(feed);
        mus_feed_free(feed);
    }
    txnstore_close(env.store);   /* after the workers: what they submitted is written */
    metrics_free(env.metrics);
    mus_map_free(env.map);
    probes_free(env.probes);
    connlimit_free(env.connlimit);
    cfgref_put(current);
    ares_library_cleanup();
    if (status == 0)
        log_info("stopped");
    return status;
}
