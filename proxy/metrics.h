/*
 * proxy/metrics.h: Prometheus metrics. Workers count every finished
 * transaction here (from the same record the logs and the store get):
 * requests by result, location and mode, bytes, blocks by policy and
 * category, a latency histogram. metrics_render() writes the text
 * exposition format (version 0.0.4) of those counters together with what
 * the status sources know at that moment: open connections, headend
 * sessions, the identity map, the store's queue, reloads. It serves
 * nothing itself: a listener with mode: metrics (conn_local.c) and the
 * admin UI call the renderer.
 */
#ifndef MUS_PROXY_METRICS_H
#define MUS_PROXY_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "../common/txn.h"

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

/* A SIGHUP reload, accepted or refused. */
void metrics_reload(metrics_t *m, bool ok);

/* The exposition text (malloc'd, *len bytes, NUL-terminated) or NULL. The
 * calling thread must be a registered reader of the map if src has one. */
char *metrics_render(metrics_t *m, const struct status_sources *src, size_t *len);

#endif
