/*
 * proxy/dns.h: asynchronous name resolution for one worker, with c-ares
 * driven by the worker's loop (no blocking resolver call ever runs on a
 * worker), and a small per-worker cache that honours the answers' TTLs
 * (clamped to [DNS_MIN_TTL_S, DNS_MAX_TTL_S]). Numeric hosts never reach the
 * resolver. Every lookup of a name ends in one outcome, told to an observer
 * the owner may set (the worker counts them in proxy/metrics.h). It does not
 * decide whether an address may be contacted.
 */
#ifndef MUS_PROXY_DNS_H
#define MUS_PROXY_DNS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "../common/loop.h"

#define DNS_MAX_ADDRS       8      /* addresses kept per name */
#define DNS_MAX_NAME        255    /* longest host name accepted */
#define DNS_CACHE_SLOTS     1024   /* cache entries per worker (power of 2) */
#define DNS_MIN_TTL_S       5
#define DNS_MAX_TTL_S       300
#define DNS_TRIES           2

typedef struct dns dns_t;
typedef struct dns_query dns_query_t;

typedef struct dns_result {
    size_t n;
    struct sockaddr_storage addr[DNS_MAX_ADDRS];  /* port already set */
    socklen_t len[DNS_MAX_ADDRS];
} dns_result_t;

enum dns_status {
    DNS_DONE = 0,     /* *out is filled now; no callback will follow */
    DNS_PENDING = 1,  /* the callback will run later (unless cancelled) */
    DNS_ERROR = -1,   /* bad name or resolver failure; no callback */
};

/* How one lookup of a name ended (numeric hosts are not lookups). */
enum dns_outcome {
    DNS_OUTCOME_CACHE_HIT = 0,  /* from this worker's cache */
    DNS_OUTCOME_HOSTS,          /* answered by c-ares without a query (/etc/hosts) */
    DNS_OUTCOME_ANSWERED,       /* a name server's answer with addresses */
    DNS_OUTCOME_NOT_FOUND,      /* NXDOMAIN, or no address of either family (no data) */
    DNS_OUTCOME_TIMEOUT,        /* no answer within the tries */
    DNS_OUTCOME_ERROR,          /* anything else: refused, server failure, bad name, memory */
    DNS_OUTCOMES
};

/* "cache_hit", "hosts", "answered", "not_found", "timeout", "error". */
const char *dns_outcome_str(enum dns_outcome o);

/* Called on the resolver's thread when a lookup ends, cancelled or not
 * (not for lookups cut short by dns_free). */
typedef void (*dns_observer_fn)(void *arg, enum dns_outcome o);

/* status is 0 on success (res filled), else a c-ares error; err is text. */
typedef void (*dns_cb)(void *arg, int status, const char *err, const dns_result_t *res);

/* timeout_ms bounds one try of one query. NULL on failure. */
dns_t *dns_new(loop_t *loop, uint32_t timeout_ms);
/* Frees the resolver; pending callbacks are dropped. NULL allowed. */
void dns_free(dns_t *dns);

/* fn(arg, outcome) for every lookup from now on; fn NULL: none. */
void dns_set_observer(dns_t *dns, dns_observer_fn fn, void *arg);

/* Resolves host (len bytes, not NUL-terminated) for port. See enum dns_status.
 * On DNS_PENDING *q is set to a handle valid until the callback runs or
 * dns_cancel() is called. */
int dns_resolve(dns_t *dns, const char *host, size_t len, uint16_t port,
                dns_result_t *out, dns_cb cb, void *arg, dns_query_t **q);

/* The callback of q will not run. q must not be used afterwards. */
void dns_cancel(dns_query_t *q);

#endif
