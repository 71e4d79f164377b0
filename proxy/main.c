/*
 * proxy/main.c: the musproxy daemon's entry point: command line, loading and
 * checking the configuration, running the service table (services.h: open
 * every part, drop privileges, start them, reload each on SIGHUP, stop them
 * in reverse on SIGTERM/SIGINT) and the signal loop of the main thread
 * (SIGUSR1 reopens the logs). It handles no traffic itself and knows no
 * part's details.
 */
#include <ares.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "../common/log.h"
#include "../db/catdb.h"
#include "../policy/config.h"
#include "../policy/policy.h"
#include "metrics.h"
#include "privdrop.h"
#include "sdnotify.h"
#include "service.h"
#include "services.h"
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

/* Descriptors a connection may hold: the client, the upstream, a splice pipe. */
#define FDS_PER_CONNECTION 4
#define FDS_RESERVED       256   /* listeners, logs, the store, resolvers, headends */

/* Raises the soft open-file limit to the hard one (started by hand, the
 * soft limit is often 1024 while max_connections defaults to 10000), and
 * says when even the hard limit is below what max_connections needs. */
static void
raise_nofile(const config_t *cfg)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)cfg->max_connections * FDS_PER_CONNECTION + FDS_RESERVED;

    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t was = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
            log_debug("open-file limit raised from %llu to %llu", (unsigned long long)was,
                      (unsigned long long)rl.rlim_cur);
        else
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        log_warn("the open-file limit (%llu) is below what max_connections %u may need (%llu): "
                 "raise it (LimitNOFILE=, ulimit -n) or lower max_connections; new connections "
                 "wait while descriptors run out", (unsigned long long)rl.rlim_cur,
                 cfg->max_connections, (unsigned long long)need);
}

/* Returns whether the new configuration was taken: every service is asked
 * first, so a refused reload changes nothing. */
static bool
reload(const char *path, const overrides_t *o, proxy_ctx_t *ctx, service_table_t *services)
{
    char err[CONFIG_ERR_LEN];
    policy_t *policy = NULL;
    config_t *cfg = load(path, o, &policy, err, sizeof(err));
    const config_t *running = ctx->current->cfg;
    cfgref_t *ref;

    if (cfg == NULL) {
        log_error("reload rejected, the running configuration stays: %s", err);
        return false;
    }
    if (service_table_check(services, cfg, running, err, sizeof(err)) < 0) {
        log_error("reload rejected, the running configuration stays: %s", err);
        policy_free(policy);
        config_free(cfg);
        return false;
    }
    ref = cfgref_new(cfg, policy);
    if (ref == NULL) {
        log_error("reload rejected: out of memory");
        policy_free(policy);
        config_free(cfg);
        return false;
    }
    log_set_level((enum log_level)cfg->log_level);
    service_table_reconfigure(services, ref, running);
    proxy_ctx_set_config(ctx, ref);   /* drops the running one */
    cfgref_put(ref);
    log_info("configuration reloaded from %s", path);
    return true;
}

/* The main thread between start and stop: signals only. */
static void
signal_loop(const sigset_t *sigs, const char *path, const overrides_t *o, proxy_ctx_t *ctx,
            service_table_t *services)
{
    for (;;) {
        siginfo_t si;
        int sig = sigwaitinfo(sigs, &si);
        if (sig < 0) {
            if (errno == EINTR)
                continue;
            log_error("sigwaitinfo: %s", strerror(errno));
            return;
        }
        if (sig == SIGHUP) {
            sdnotify_reloading();
            metrics_reload(ctx->env.metrics, reload(path, o, ctx, services));
            sdnotify_ready(NULL);
        } else if (sig == SIGUSR1) {
            log_info("reopening the access log");
            for (unsigned i = 0; i < ctx->n_started; i++)
                worker_notify_reopen(ctx->workers[i]);
        } else {
            sdnotify_stopping();
            log_info("%s: finishing requests in flight (at most %u ms), then exiting",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", ctx->current->cfg->timeouts.shutdown);
            return;
        }
    }
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
    proxy_ctx_t ctx;
    service_table_t *services = NULL;
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
    raise_nofile(cfg);

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
    if (proxy_ctx_init(&ctx, current) < 0 ||
        (services = service_table_new(proxy_services, proxy_services_count, &ctx)) == NULL) {
        fprintf(stderr, "musproxy: out of memory\n");
        status = 1;
        goto out;
    }
    ctx.src.services = services;
    /* listeners bound, devices, store and logs open: then become run.user
     * (before any service thread starts: threads keep the capabilities of
     * the thread that made them) */
    if (service_table_open(services, cfg, err, sizeof(err)) < 0 ||
        privdrop_apply(cfg, err, sizeof(err)) < 0 ||
        service_table_start(services, cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "musproxy: %s\n", err);
        status = 1;
        goto out;
    }
    log_info("musproxy %s ready: %u workers, %zu headends, configuration %s", MUSPROXY_VERSION,
             ctx.n_workers, cfg->mus.n_headends, path);
    sdnotify_ready(NULL);
    signal_loop(&sigs, path, &o, &ctx, services);
out:
    service_table_stop(services);   /* in reverse: wccp first, the store last */
    service_table_free(services);
    proxy_ctx_destroy(&ctx);        /* drops the configuration's reference */
    ares_library_cleanup();
    if (status == 0)
        log_info("stopped");
    return status;
}
