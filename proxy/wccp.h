/*
 * proxy/wccp.h: the WCCPv2 cache-engine agent: one thread of its own (not a
 * worker) with one UDP socket on port 2048 of our address, which every
 * interval sends Here_I_Am to each configured router (unicast) for each
 * configured service, takes the routers' I_See_You into each service's view
 * (wccp_view.h), answers Removal_Query at once, and, when we are the
 * designated cache and the view has been stable for one interval, sends the
 * Redirect_Assign to every router. Datagrams from addresses that are not
 * configured routers are dropped and counted, as are malformed ones and ones
 * failing MD5; none can crash it. wccp_stop leaves cleanly: a designated
 * cache first assigns every bucket to the other caches, then each service
 * says goodbye with a Here_I_Am carrying the shutdown command, and nothing
 * more is sent.
 *
 * It does not decapsulate GRE (proxy/gre.c) or touch the listeners. The
 * password is read from cfg->password_file by wccp_new and is never logged.
 *
 * The interval is 10 s. For tests the environment variable
 * MUSPROXY_WCCP_INTERVAL_MS (100-60000) overrides it; routers and every
 * cache of a group must then use the same.
 */
#ifndef MUS_PROXY_WCCP_H
#define MUS_PROXY_WCCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../policy/config.h"

#define WCCP_INTERVAL_MS        10000
#define WCCP_INTERVAL_ENV       "MUSPROXY_WCCP_INTERVAL_MS"
#define WCCP_ERR_MAX            256

typedef struct wccp wccp_t;

/* One service group as wccp_stats sees it. */
typedef struct wccp_service_stats {
    unsigned id;
    bool dynamic;                /* false: the standard web-cache service */
    unsigned state;              /* enum wccp_service_state (wccp_view.h) */
    bool designated_self;        /* we are the designated cache */
    unsigned routers_connected;  /* configured routers whose I_See_You keeps coming */
    uint32_t share;              /* hash buckets (of 256), or mask values, given to us */
    uint64_t dropped;            /* its messages dropped: unexpected, or not for us */
} wccp_service_stats_t;

/* The agent's counters and its service groups, at one moment. */
typedef struct wccp_stats {
    uint64_t in, out, send_errors;
    uint64_t drop_not_router, drop_malformed, drop_security, drop_unknown_service;
    size_t n_services;
    wccp_service_stats_t services[CONFIG_WCCP_MAX_SERVICES];
} wccp_stats_t;

/* Reads the password, finds our address, binds the socket. NULL with a
 * message in err when cfg has no routers or something fails. */
wccp_t *wccp_new(const config_wccp_t *cfg, char *err, size_t errlen);
/* Starts the thread. 0 or -errno. */
int wccp_start(wccp_t *w);
/* Leaves the service groups cleanly and joins the thread (NULL is allowed). */
void wccp_stop(wccp_t *w);
void wccp_free(wccp_t *w);

/* {"address", "interval_ms", "md5", "packets":{...}, "last_error",
 *  "services":[{"id", "type", "state", "designated", "buckets", "routers":[...],
 *  "caches":[...], "packets":{...}, ...}]}; null for w == NULL. Thread-safe. */
json_t *wccp_status_json(wccp_t *w);

/* The same facts as numbers (for /metrics). Thread-safe; w not NULL. */
void wccp_stats(wccp_t *w, wccp_stats_t *out);

#endif
