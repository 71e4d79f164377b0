/*
 * proxy/status.h: what the proxy can tell about itself, as JSON documents
 * built from its live parts: the headend sessions and map counters, the
 * probe counters, open connections against max_connections, the RADIUS
 * listener's counters, the transaction store's queue and drops, the WCCP
 * service groups ("status"); the identity map ("map");
 * and the policy trace ("trace"), decided by the same code as live traffic;
 * and a connection test of one headend ("test NAME", mus/hetest.h: a fresh
 * connection of its own, blocking the caller up to MUS_HETEST_TIMEOUT_MS,
 * the live session untouched).
 * The control socket (control.c) and the admin UI both answer from here, so
 * they cannot disagree. The caller's thread must be a registered reader of
 * the map (mus_map_reader_register) and quiescent between requests. It
 * writes nothing.
 */
#ifndef MUS_PROXY_STATUS_H
#define MUS_PROXY_STATUS_H

#include <jansson.h>

#include "../db/txnstore.h"
#include "../mus/client.h"
#include "../mus/map.h"
#include "connlimit.h"
#include "gre.h"
#include "probes.h"
#include "wccp.h"
#include "worker.h"

#define STATUS_REQUEST_MAX  16384   /* bytes of a request line (a trace carries a URL of up to 8 KiB) */

/* Returns a reference to the configuration in force (cfgref_put it). */
typedef cfgref_t *(*status_cfg_fn)(void *arg);

/* The parts answers are read from; any pointer but map and get_cfg may be NULL. */
typedef struct status_sources {
    mus_map_t *map;
    mus_feed_t *feed;          /* NULL: no headends */
    probes_t *probes;
    connlimit_t *connlimit;
    txnstore_t *store;         /* NULL: no store */
    wccp_t *wccp;              /* NULL: WCCP off */
    gre_t *gre;                /* NULL: gre not enabled */
    const struct service_table *services;  /* the daemon's parts and their states (service.h) */
    struct metrics *metrics;   /* the counters (metrics.h); NULL: none */
    status_cfg_fn get_cfg;
    void *cfg_arg;
} status_sources_t;

/* {"headends":[...], "map":{...}, "probes":{...}, "connections":{...},
 *  "radius":{...} or null (mus/feed_radius.h), "store":{...},
 *  "wccp":{...} or null (wccp.h), "gre":{...} (gre.h),
 *  "services":[{"name", "state", "required", "error"}] (service.h)} */
json_t *status_json(const status_sources_t *s);
/* args: "" (every entry), "ip ADDR" or "user NAME": {"entries":[...]} or {"error":...} */
json_t *status_map_json(const status_sources_t *s, const char *args);
/* args: a headend's name: {"headend", "ok", "outcome", "message", "address",
 *  "rtt_ms", "connect_ms", "server_id", "subject", "issuer", "tls"} or {"error"} */
json_t *status_test_json(const status_sources_t *s, const char *args);
/* Headend i of cfg as the MUS feed's configuration (mus/ knows no config_t). */
void status_headend_config(const config_t *cfg, size_t i, mus_headend_config_t *h);
/* args: the trace request {JSON} (proxy/trace.h) */
json_t *status_trace_json(const status_sources_t *s, const char *args);
/* The Prometheus exposition text (metrics.h; malloc'd, *len bytes) or NULL. */
char *status_metrics_text(const status_sources_t *s, size_t *len);
/* One request line ("status", "map ...", "trace {...}", "test NAME"): its answer, or
 * {"error":...}. */
json_t *status_request(const status_sources_t *s, const char *line);

#endif
