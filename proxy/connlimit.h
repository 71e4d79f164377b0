/*
 * proxy/connlimit.h: the process-wide limit on open client connections
 * (proxy.max_connections), shared by every worker through C11 atomics. A
 * worker takes a slot before accept(2) and gives it back when the
 * connection closes. A worker that finds the process at the limit stops
 * accepting (its listeners stay in the kernel, so new connections wait in
 * the backlog, as with HAProxy's global maxconn) and registers as waiting;
 * the next release wakes every waiting worker through its wake callback
 * (an eventfd write: safe from any thread). It knows no socket and no loop.
 */
#ifndef MUS_PROXY_CONNLIMIT_H
#define MUS_PROXY_CONNLIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "../policy/config.h"

#define CONNLIMIT_MAX_WORKERS CONFIG_MAX_WORKERS

typedef struct connlimit connlimit_t;

/* Wakes worker arg: it should try accepting again (any thread may call it). */
typedef void (*connlimit_wake_fn)(void *arg);

typedef struct connlimit_stats {
    unsigned open;         /* client connections holding a slot now */
    unsigned max;          /* the limit in force */
    unsigned waiting;      /* workers that stopped accepting at the limit */
    uint64_t full;         /* times a worker found the process at the limit */
} connlimit_stats_t;

connlimit_t *connlimit_new(unsigned max);
void connlimit_free(connlimit_t *cl);    /* NULL allowed */
/* Before any worker thread runs (or after they all ended: then wake = NULL
 * detaches the worker, which is never called again). */
void connlimit_attach(connlimit_t *cl, unsigned worker, connlimit_wake_fn wake, void *arg);
/* A new limit (reload); raising it wakes the waiting workers. */
void connlimit_set_max(connlimit_t *cl, unsigned max);

/* Takes one slot; false when the process is at the limit. */
bool connlimit_acquire(connlimit_t *cl);
/* Gives a slot back; wakes the workers waiting for one. */
void connlimit_release(connlimit_t *cl);
/* After a failed acquire: registers worker as waiting, then tries once more
 * (a release may have run in between). true: a slot was taken after all and
 * the worker must not pause; false: pause, a wake will follow a release. */
bool connlimit_wait(connlimit_t *cl, unsigned worker);

void connlimit_stats(connlimit_t *cl, connlimit_stats_t *out);

#endif
