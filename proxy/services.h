/*
 * proxy/services.h: the rows of musproxy's service table (service.h) and
 * the context they share: what every worker is given (proxy_env_t), what
 * status, metrics and the admin UI read (status_sources_t), and the
 * handle of each long-lived part. In table order:
 *
 *   store    the transaction store's writer thread (optional)
 *   gre      the GRE decapsulator: raw socket and TUN (needs privileges; required if enabled)
 *   feed     the MUS feed to the headends (required)
 *   radius   the RADIUS accounting listener, a local headend on the feed's
 *            MUS thread (required if radius.listen is set): its UDP sockets
 *            are bound when it opens, before the privilege drop (port 1813
 *            is below 1024), and handed to the feed, so it opens after it;
 *            it runs with the feed's thread and stops before it
 *   workers  the listeners and the worker threads (required)
 *   control  the control socket musctl talks to (optional)
 *   admin    the admin web UI (optional)
 *   wccp     the WCCP agent (optional; stopped first, so routers move new
 *            flows to the other caches while the workers drain)
 *
 * Every pointer of status_sources_t is set while the rows open, before any
 * thread starts (control and admin copy it when they start).
 *
 * It does not parse the configuration or handle signals (main.c does).
 */
#ifndef MUS_PROXY_SERVICES_H
#define MUS_PROXY_SERVICES_H

#include <pthread.h>

#include "../admin/admin.h"
#include "control.h"
#include "service.h"
#include "status.h"
#include "worker.h"

typedef struct proxy_ctx {
    proxy_env_t env;            /* map, probes, connlimit, metrics, store */
    status_sources_t src;       /* the same parts, for the status readers */
    pthread_mutex_t lock;       /* guards current for other threads */
    cfgref_t *current;          /* the configuration in force (one reference held) */
    worker_t **workers;
    unsigned n_workers;         /* created */
    unsigned n_started;         /* threads started */
    mus_feed_t *feed;
    gre_t *gre;
    wccp_t *wccp;
    control_t *control;
    admin_t *admin;
    struct repsched *reports;   /* the scheduled reports' thread (services_reports.c) */
} proxy_ctx_t;

/* The table, in order (services.c). */
extern const service_ops_t *const proxy_services[];
extern const size_t proxy_services_count;
/* The scheduled reports' row (services_reports.c). */
extern const service_ops_t proxy_svc_reports;

/* Makes the shared parts (map, probes, connlimit, metrics) for cfg;
 * current takes over the reference. 0, or -1 (out of memory). */
int proxy_ctx_init(proxy_ctx_t *c, cfgref_t *current);
/* Publishes next as the configuration in force (takes a reference). */
void proxy_ctx_set_config(proxy_ctx_t *c, cfgref_t *next);
/* After service_table_stop: frees the shared parts and the reference. */
void proxy_ctx_destroy(proxy_ctx_t *c);

/* Worker threads for a configuration ("auto" = one per core). */
unsigned proxy_worker_count(const config_t *cfg);

#endif
