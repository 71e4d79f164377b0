/*
 * proxy/metrics.h: Prometheus metrics. Workers count every finished
 * transaction here (from the same record the logs and the store get):
 * requests by result, location and mode, bytes, blocks by policy and
 * category, a latency histogram; and, as they happen, their upstream
 * connections (in use, idle in the keep-alive pool, opened, reused), the
 * relays of their tunnels by kind and relay mode, and their DNS lookups by
 * outcome. metrics_render() writes the text exposition format (version
 * 0.0.4) of those counters together with what the status sources know at
 * that moment: open connections, headend sessions, the identity map, the
 * store's queue, reloads, the WCCP service groups and the GRE
 * decapsulation. It serves nothing itself: a listener with mode: metrics
 * (conn_local.c) and the admin UI call the renderer.
 */
#ifndef MUS_PROXY_METRICS_H
#define MUS_PROXY_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/txn.h"
#include "dns.h"
#include "tunnel.h"

#define METRICS_CONTENT_TYPE  "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_BLOCK_KEYS    512   /* distinct (policy, category) pairs counted; then "other" */
#define METRICS_WORKERS_MAX   256

typedef struct metrics metrics_t;
struct status_sources;

metrics_t *metrics_new(unsigned nworkers);
void metrics_free(metrics_t *m);   /* NULL allowed */

/* Counts a finished transaction; worker is the caller's index (each worker
 * writes its own slot, no lock except for a block's labels). */
void metrics_txn(metrics_t *m, unsigned worker, const txn_record_t *r);

/* What a tunnel relays (the kind label of musproxy_tunnel_relays_*). */
enum metrics_tunnel {
    METRICS_TUNNEL_CONNECT = 0,  /* an explicit CONNECT */
    METRICS_TUNNEL_UPGRADE,      /* a 101 Switching Protocols (WebSocket and the like) */
    METRICS_TUNNEL_TLS,          /* intercepted TLS, admitted by its SNI */
    METRICS_TUNNEL_BYPASS,       /* intercepted, relayed untouched (proxy.transparent.bypass) */
    METRICS_TUNNEL_OTHER,        /* intercepted, another protocol (transparent.no_sni: allow) */
    METRICS_TUNNEL_KINDS
};

/*
 * The calls below are made by a worker on its own thread, for its own slot
 * (worker is its index): a relaxed load and store each, no lock.
 */

/* One direction of a tunnel starts relaying in mode (tunnel.h): counted as
 * started, and open until metrics_relay_close with the same arguments. */
void metrics_relay_open(metrics_t *m, unsigned worker, enum metrics_tunnel kind,
                        enum relay_mode mode);
void metrics_relay_close(metrics_t *m, unsigned worker, enum metrics_tunnel kind,
                         enum relay_mode mode);

/* A connection took an upstream socket: a new one (connecting) or, reused,
 * one from the keep-alive pool. In use until metrics_upstream_release
 * (closed, or handed back to the pool). */
void metrics_upstream_take(metrics_t *m, unsigned worker, bool reused);
void metrics_upstream_release(metrics_t *m, unsigned worker);
/* The worker's keep-alive pool holds n idle upstream connections now. */
void metrics_upstream_idle(metrics_t *m, unsigned worker, unsigned n);

/* One lookup of a name ended so (dns.h). */
void metrics_dns(metrics_t *m, unsigned worker, enum dns_outcome outcome);

/* A SIGHUP reload, accepted or refused. */
void metrics_reload(metrics_t *m, bool ok);

/* The exposition text (malloc'd, *len bytes, NUL-terminated) or NULL. The
 * calling thread must be a registered reader of the map if src has one. */
char *metrics_render(metrics_t *m, const struct status_sources *src, size_t *len);

#endif
