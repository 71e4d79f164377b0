/*
 * proxy/main.c: the musproxy daemon's entry point: command line, loading and
 * checking the configuration, starting the worker threads, and the signal
 * loop of the main thread (SIGHUP reload, SIGTERM/SIGINT graceful stop,
 * SIGUSR1 reopen logs). It handles no traffic itself.
 */
#include <ares.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "../policy/config.h"
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

static config_t *
load(const char *path, const overrides_t *o, char *err, size_t errlen)
{
    config_t *cfg = config_load(path, err, errlen);

    if (cfg == NULL)
        return NULL;
    if (apply_overrides(cfg, o, err, errlen) < 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

static unsigned
worker_count(const config_t *cfg)
{
    long n;

    if (cfg->workers > 0)
        return cfg->workers;
    n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1;
}

static void
reload(const char *path, const overrides_t *o, cfgref_t **current, worker_t **workers,
       unsigned n)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load(path, o, err, sizeof(err));
    cfgref_t *ref;

    if (cfg == NULL) {
        log_error("reload rejected, the running configuration stays: %s", err);
        return;
    }
    if (worker_check_listen(cfg, err, sizeof(err)) < 0) {
        log_error("reload rejected, the running configuration stays: %s", err);
        config_free(cfg);
        return;
    }
    if (worker_count(cfg) != n)
        log_warn("reload: the number of workers (%u -> %u) changes only at restart", n,
                 worker_count(cfg));
    ref = cfgref_new(cfg);
    if (ref == NULL) {
        log_error("reload rejected: out of memory");
        config_free(cfg);
        return;
    }
    log_set_level((enum log_level)cfg->log_level);
    for (unsigned i = 0; i < n; i++)
        worker_notify_config(workers[i], ref);
    cfgref_put(*current);
    *current = ref;
    log_info("configuration reloaded from %s", path);
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
    cfgref_t *current;
    worker_t **workers;
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

    cfg = load(path, &o, err, sizeof(err));
    if (cfg == NULL) {
        fprintf(stderr, "musproxy: %s\n", err);
        return 1;
    }
    if (check_only) {
        printf("musproxy: configuration %s is valid\n", path);
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
        config_free(cfg);
        return 1;
    }
    current = cfgref_new(cfg);
    if (current == NULL) {
        config_free(cfg);
        return 1;
    }
    n = worker_count(cfg);
    workers = calloc(n, sizeof(*workers));
    if (workers == NULL) {
        cfgref_put(current);
        return 1;
    }
    for (unsigned i = 0; i < n; i++) {
        workers[i] = worker_new(i, n, current, err, sizeof(err));
        if (workers[i] == NULL) {
            fprintf(stderr, "musproxy: %s\n", err);
            status = 1;
            n = i;
            goto out;
        }
    }
    for (size_t i = 0; i < cfg->n_listen; i++)
        log_info("listening on %s (%s)", cfg->listen[i].text,
                 cfg->listen[i].mode == CONFIG_MODE_EXPLICIT ? "explicit" : "transparent");
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
    log_info("musproxy %s ready: %u workers, configuration %s", MUSPROXY_VERSION, n, path);

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
            reload(path, &o, &current, workers, n);
        } else if (sig == SIGUSR1) {
            log_info("reopening the access log");
            for (unsigned i = 0; i < n; i++)
                worker_notify_reopen(workers[i]);
        } else {
            log_info("%s: finishing requests in flight (at most %u ms), then exiting",
                     sig == SIGTERM ? "SIGTERM" : "SIGINT", current->cfg->timeouts.shutdown);
            break;
        }
    }
    for (unsigned i = 0; i < n; i++)
        worker_notify_shutdown(workers[i]);
out:
    for (unsigned i = 0; i < n; i++)
        worker_join(workers[i]);
    for (unsigned i = 0; i < n; i++)
        worker_free(workers[i]);
    free(workers);
    cfgref_put(current);
    ares_library_cleanup();
    if (status == 0)
        log_info("stopped");
    return status;
}
