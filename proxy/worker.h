/*
 * proxy/worker.h: a worker thread: its own epoll loop, its own SO_REUSEPORT
 * listeners (accepting under the process-wide connlimit), its own resolver, access-log writer and upstream keep-alive
 * pool, and the copy buffers of its tunnels. Connections accepted by a worker live their whole life on it. The
 * main thread talks to workers only through the worker_notify_*() calls
 * (an eventfd). Also the reference-counted configuration every worker and
 * request holds (cfgref). It does not parse HTTP (proxy/conn.c does).
 */
#ifndef MUS_PROXY_WORKER_H
#define MUS_PROXY_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "../mus/map.h"
#include "../policy/config.h"
#include "../policy/policy.h"
#include "access.h"
#include "accesslog.h"
#include "../db/txnstore.h"
#include "connlimit.h"
#include "metrics.h"
#include "dns.h"
#include "probes.h"
#include "relaybuf.h"
#include "../common/loop.h"

/* A configuration shared by reference: the main thread publishes a new one
 * on reload; requests in flight keep the one they started with. */
typedef struct cfgref {
    config_t *cfg;
    policy_t *policy;        /* compiled from cfg; NULL = allow everything */
    atomic_uint refs;
} cfgref_t;

/* Takes ownership of cfg and policy; refs = 1. */
cfgref_t *cfgref_new(config_t *cfg, policy_t *policy);
cfgref_t *cfgref_get(cfgref_t *r);       /* adds a reference, returns r */
void cfgref_put(cfgref_t *r);            /* drops one; frees at zero; NULL ok */
/* Stores a new reference to next in *slot under lock and drops the old one. */
void cfgref_publish(cfgref_t **slot, pthread_mutex_t *lock, cfgref_t *next);

typedef struct worker worker_t;

/* What a worker does with an accepted socket: the connection module's
 * constructor, given by main, so the worker never names it. NULL if the
 * connection could not be set up (fd closed). */
typedef void *(*worker_accept_fn)(worker_t *w, int fd, const struct sockaddr *peer,
                                  socklen_t peer_len, const config_listen_t *listener);

/* What all workers share, owned by main: the identity map (workers are
 * readers), the probe counters and the process-wide connection limit. */
typedef struct proxy_env {
    mus_map_t *map;
    probes_t *probes;
    connlimit_t *connlimit;
    txnstore_t *store;          /* NULL: transactions are not stored */
    metrics_t *metrics;         /* counters every transaction adds to */
    const struct status_sources *status;  /* what /metrics reports besides the counters */
    worker_accept_fn accept;    /* makes a connection of an accepted socket */
} proxy_env_t;

/* What a worker may ask of a connection it holds (its owner's operations). */
typedef struct worker_link_ops {
    void (*drain)(void *owner);   /* finish what is in progress, then close */
    void (*abort)(void *owner);   /* close now (the shutdown deadline) */
    /* the worker's configuration changed (worker_cfg is the new one); may
     * be NULL; must not close the connection (the worker is walking its list) */
    void (*reconfigure)(void *owner);
} worker_link_ops_t;

/* Intrusive list node for the connections of a worker. */
typedef struct worker_link {
    struct worker_link *prev, *next;
    void *owner;
    const worker_link_ops_t *ops;
} worker_link_t;

/* Creates worker id with cfg (a reference is taken) and binds its listeners.
 * NULL with a message in err on failure. */
worker_t *worker_new(unsigned id, unsigned nworkers, cfgref_t *cfg, const proxy_env_t *env,
                     char *err, size_t errlen);
/* Checks (main thread, before a reload is accepted) that every listen
 * address of cfg that running (NULL = none) does not already listen on can
 * be bound. 0, or -1 with a message in err. */
int worker_check_listen(const config_t *cfg, const config_t *running, char *err, size_t errlen);
int worker_start(worker_t *w);           /* starts the thread; 0 or -errno */
void worker_join(worker_t *w);           /* waits for the thread to end */
void worker_free(worker_t *w);           /* after join; NULL allowed */

/* Thread-safe requests from the main thread. */
void worker_notify_config(worker_t *w, cfgref_t *cfg);  /* takes a reference */
void worker_notify_reopen(worker_t *w);
void worker_notify_shutdown(worker_t *w);

/* For connections running on the worker's own thread. */
loop_t *worker_loop(worker_t *w);
dns_t *worker_dns(worker_t *w);
alog_t *worker_alog(worker_t *w);
alog_t *worker_extlog(worker_t *w);      /* the extended (JSON lines) log */
txnstore_t *worker_store(worker_t *w);   /* NULL if none */
metrics_t *worker_metrics(worker_t *w);
const struct status_sources *worker_status(worker_t *w);
unsigned worker_index(worker_t *w);
relaybuf_pool_t *worker_relaybufs(worker_t *w);  /* tunnel copy buffers */
access_surrogates_t *worker_surrogates(worker_t *w);
cfgref_t *worker_cfg(worker_t *w);       /* borrowed: take a ref to keep it */
bool worker_draining(const worker_t *w);
/* The identity the map holds for the address now (lock-free); false if none. */
bool worker_identity(worker_t *w, const struct sockaddr *sa, mus_identity_t *out);
probes_t *worker_probes(worker_t *w);
void worker_link_add(worker_t *w, worker_link_t *l, void *owner, const worker_link_ops_t *ops);
void worker_link_del(worker_t *w, worker_link_t *l);

/* Upstream keep-alive pool, keyed by host name and address. take returns an
 * idle connected descriptor, already registered on into (interest
 * LOOP_READ), or -1. put hands over the descriptor registered on from (from
 * ends unregistered; the pool may close the descriptor). Handing over moves
 * the epoll registration instead of deleting and adding it. */
int worker_pool_take(worker_t *w, const char *host, const struct sockaddr *addr, socklen_t len,
                     loop_io_t *into);
void worker_pool_put(worker_t *w, loop_io_t *from, const char *host, const struct sockaddr *addr,
                     socklen_t len);

#endif
