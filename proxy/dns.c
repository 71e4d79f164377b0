/*
 * proxy/dns.c: c-ares inside the worker's epoll loop, and the per-worker
 * cache (see dns.h). c-ares tells us which sockets it wants watched through
 * its socket-state callback; we mirror them as loop_io_t registrations and
 * keep one timer for ares_timeout(). The cache is a fixed open-addressing
 * table: on a full probe window the oldest entry is replaced.
 */
#include "dns.h"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/hash.h"
#include "../common/log.h"

#define DNS_CACHE_PROBE 8

typedef struct dns_sock {
    loop_io_t io;
    struct dns_sock *next;
    dns_t *dns;
} dns_sock_t;

typedef struct dns_cache_entry {
    char name[DNS_MAX_NAME + 1];  /* lowercase; "" = free slot */
    uint64_t expires;             /* loop ms */
    dns_result_t res;             /* ports zero */
} dns_cache_entry_t;

struct dns_query {
    dns_t *dns;
    dns_cb cb;        /* NULL once cancelled */
    void *arg;
    uint16_t port;
    bool in_call;     /* inside ares_getaddrinfo(): answers are kept, not delivered */
    bool answered;    /* an answer arrived while in_call */
    int status;
    dns_result_t res;
    char name[DNS_MAX_NAME + 1];
};

struct dns {
    loop_t *loop;
    ares_channel channel;
    bool channel_ok;
    bool closing;             /* in dns_free: socket records are freed at once */
    loop_timer_t timer;
    dns_sock_t *socks;
    dns_cache_entry_t *cache;
    dns_observer_fn observe;  /* NULL: nobody counts */
    void *observe_arg;
};

static const char *const outcome_names[DNS_OUTCOMES] = {
    [DNS_OUTCOME_CACHE_HIT] = "cache_hit",
    [DNS_OUTCOME_HOSTS] = "hosts",
    [DNS_OUTCOME_ANSWERED] = "answered",
    [DNS_OUTCOME_NOT_FOUND] = "not_found",
    [DNS_OUTCOME_TIMEOUT] = "timeout",
    [DNS_OUTCOME_ERROR] = "error",
};

const char *
dns_outcome_str(enum dns_outcome o)
{
    return (unsigned)o < DNS_OUTCOMES ? outcome_names[o] : "?";
}

void
dns_set_observer(dns_t *dns, dns_observer_fn fn, void *arg)
{
    dns->observe = fn;
    dns->observe_arg = arg;
}

static void
observed(const dns_t *dns, enum dns_outcome o)
{
    if (dns->observe != NULL)
        dns->observe(dns->observe_arg, o);
}

/* The outcome of a c-ares answer; sync: given inside ares_getaddrinfo(). */
static enum dns_outcome
outcome_of(int status, bool sync)
{
    switch (status) {
    case ARES_SUCCESS: return sync ? DNS_OUTCOME_HOSTS : DNS_OUTCOME_ANSWERED;
    case ARES_ENOTFOUND:
    case ARES_ENODATA: return DNS_OUTCOME_NOT_FOUND;
    case ARES_ETIMEOUT: return DNS_OUTCOME_TIMEOUT;
    default: return DNS_OUTCOME_ERROR;
    }
}

static void dns_arm_timer(dns_t *dns);

static void
dns_sock_free_deferred(void *arg)
{
    free(arg);
}

static void
dns_on_io(loop_t *loop, loop_io_t *io, uint32_t events)
{
    dns_sock_t *s = io->arg;
    dns_t *dns = s->dns;
    int fd = io->fd;

    (void)loop;
    ares_process_fd(dns->channel, (events & (LOOP_READ | LOOP_ERROR)) ? fd : ARES_SOCKET_BAD,
                    (events & LOOP_WRITE) ? fd : ARES_SOCKET_BAD);
    dns_arm_timer(dns);
}

static void
dns_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    dns_t *dns = data;
    dns_sock_t **pp, *s = NULL;
    uint32_t interest = (readable ? LOOP_READ : 0) | (writable ? LOOP_WRITE : 0);

    for (pp = &dns->socks; *pp; pp = &(*pp)->next) {
        if ((*pp)->io.fd == fd) {
            s = *pp;
            break;
        }
    }
    if (interest == 0) {
        if (s) {
            loop_io_stop(dns->loop, &s->io);
            *pp = s->next;
            if (dns->closing || loop_defer(dns->loop, dns_sock_free_deferred, s) < 0)
                free(s); /* no event of this batch can name it: it was stopped */
        }
        return;
    }
    if (s) {
        loop_io_set(dns->loop, &s->io, interest);
        return;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        log_error("dns: out of memory watching a resolver socket");
        return;
    }
    s->dns = dns;
    loop_io_init(&s->io, dns_on_io, s);
    if (loop_io_start(dns->loop, &s->io, fd, interest) < 0) {
        log_error("dns: cannot watch resolver socket %d", fd);
        free(s);
        return;
    }
    s->next = dns->socks;
    dns->socks = s;
}

static void
dns_on_timer(loop_t *loop, loop_timer_t *t)
{
    dns_t *dns = t->arg;

    (void)loop;
    ares_process_fd(dns->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_arm_timer(dns);
}

static void
dns_arm_timer(dns_t *dns)
{
    struct timeval tv, *tvp = ares_timeout(dns->channel, NULL, &tv);

    if (tvp == NULL) {
        loop_timer_cancel(dns->loop, &dns->timer);
        return;
    }
    loop_timer_set(dns->loop, &dns->timer,
                   (uint32_t)(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) + 1);
}

dns_t *
dns_new(loop_t *loop, uint32_t timeout_ms)
{
    struct ares_options opts;
    dns_t *dns = calloc(1, sizeof(*dns));

    if (dns == NULL)
        return NULL;
    dns->loop = loop;
    loop_timer_init(&dns->timer, dns_on_timer, dns);
    dns->cache = calloc(DNS_CACHE_SLOTS, sizeof(*dns->cache));
    if (dns->cache == NULL)
        goto fail;
    memset(&opts, 0, sizeof(opts));
    opts.sock_state_cb = dns_sock_state;
    opts.sock_state_cb_data = dns;
    opts.timeout = (int)timeout_ms;
    opts.tries = DNS_TRIES;
    if (ares_init_options(&dns->channel, &opts,
                          ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES) != ARES_SUCCESS)
        goto fail;
    dns->channel_ok = true;
    return dns;
fail:
    free(dns->cache);
    free(dns);
    return NULL;
}

void
dns_free(dns_t *dns)
{
    if (dns == NULL)
        return;
    dns->closing = true;
    if (dns->channel_ok)
        ares_destroy(dns->channel);  /* runs callbacks with ARES_EDESTRUCTION */
    loop_timer_cancel(dns->loop, &dns->timer);
    while (dns->socks) {
        dns_sock_t *s = dns->socks;
        dns->socks = s->next;
        loop_io_stop(dns->loop, &s->io);
        free(s);
    }
    free(dns->cache);
    free(dns);
}

/* ---- cache ---- */

static dns_cache_entry_t *
cache_find(dns_t *dns, const char *name)
{
    uint32_t h = hash_fnv1a32_str(HASH_FNV1A32_INIT, name);

    for (unsigned i = 0; i < DNS_CACHE_PROBE; i++) {
        dns_cache_entry_t *e = &dns->cache[(h + i) & (DNS_CACHE_SLOTS - 1)];
        if (e->name[0] != '\0' && strcmp(e->name, name) == 0) {
            if (e->expires <= loop_now(dns->loop)) {
                e->name[0] = '\0';
                return NULL;
            }
            return e;
        }
    }
    return NULL;
}

static void
cache_store(dns_t *dns, const char *name, const dns_result_t *res, uint32_t ttl_s)
{
    uint32_t h = hash_fnv1a32_str(HASH_FNV1A32_INIT, name);
    dns_cache_entry_t *victim = NULL;

    for (unsigned i = 0; i < DNS_CACHE_PROBE; i++) {
        dns_cache_entry_t *e = &dns->cache[(h + i) & (DNS_CACHE_SLOTS - 1)];
        if (e->name[0] == '\0' || strcmp(e->name, name) == 0 ||
            e->expires <= loop_now(dns->loop)) {
            victim = e;
            break;
        }
        if (victim == NULL || e->expires < victim->expires)
            victim = e;
    }
    if (ttl_s < DNS_MIN_TTL_S)
        ttl_s = DNS_MIN_TTL_S;
    if (ttl_s > DNS_MAX_TTL_S)
        ttl_s = DNS_MAX_TTL_S;
    strcpy(victim->name, name);
    victim->expires = loop_now(dns->loop) + (uint64_t)ttl_s * 1000u;
    victim->res = *res;
}

static void
set_port(dns_result_t *res, uint16_t port)
{
    for (size_t i = 0; i < res->n; i++) {
        if (res->addr[i].ss_family == AF_INET)
            ((struct sockaddr_in *)&res->addr[i])->sin_port = htons(port);
        else
            ((struct sockaddr_in6 *)&res->addr[i])->sin6_port = htons(port);
    }
}

/* ---- queries ---- */

static void
dns_on_answer(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    dns_query_t *q = arg;
    dns_result_t res;
    uint32_t ttl = DNS_MAX_TTL_S;

    (void)timeouts;
    memset(&res, 0, sizeof(res));
    if (status == ARES_SUCCESS && ai != NULL) {
        /* IPv4 first, then IPv6: loopback labs and most origins answer on v4. */
        for (int pass = 0; pass < 2; pass++) {
            for (struct ares_addrinfo_node *n = ai->nodes; n && res.n < DNS_MAX_ADDRS; n = n->ai_next) {
                if ((pass == 0) != (n->ai_family == AF_INET))
                    continue;
                if (n->ai_addrlen > sizeof(res.addr[0]))
                    continue;
                memcpy(&res.addr[res.n], n->ai_addr, n->ai_addrlen);
                res.len[res.n] = n->ai_addrlen;
                if (n->ai_ttl >= 0 && (uint32_t)n->ai_ttl < ttl)
                    ttl = (uint32_t)n->ai_ttl;
                res.n++;
            }
        }
        if (res.n == 0)
            status = ARES_ENODATA;
    }
    if (ai != NULL)
        ares_freeaddrinfo(ai);
    if (status != ARES_EDESTRUCTION)   /* dns_free: the resolver ended, not the lookup */
        observed(q->dns, outcome_of(status, q->in_call));
    if (status == ARES_SUCCESS)
        cache_store(q->dns, q->name, &res, ttl);
    if (q->in_call) {
        /* Answered synchronously (hosts file, immediate failure): dns_resolve
         * returns the result itself, the callback never runs. */
        q->answered = true;
        q->status = status;
        q->res = res;
        return;
    }
    if (q->cb != NULL) {
        set_port(&res, q->port);
        q->cb(q->arg, status, status == ARES_SUCCESS ? NULL : ares_strerror(status), &res);
    }
    free(q);
}

static int
parse_numeric(const char *name, uint16_t port, dns_result_t *out)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&out->addr[0];
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&out->addr[0];

    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, name, &sin->sin_addr) == 1) {
        sin->sin_family = AF_INET;
        sin->sin_port = htons(port);
        out->len[0] = sizeof(*sin);
        out->n = 1;
        return 0;
    }
    if (inet_pton(AF_INET6, name, &sin6->sin6_addr) == 1) {
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(port);
        out->len[0] = sizeof(*sin6);
        out->n = 1;
        return 0;
    }
    return -1;
}

int
dns_resolve(dns_t *dns, const char *host, size_t len, uint16_t port,
            dns_result_t *out, dns_cb cb, void *arg, dns_query_t **qp)
{
    char name[DNS_MAX_NAME + 1];
    struct ares_addrinfo_hints hints;
    dns_cache_entry_t *e;
    dns_query_t *q;

    if (len == 0 || len > DNS_MAX_NAME)
        goto refused;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)host[i];
        /* letters, digits, '-', '.', '_' and ':' (IPv6 literals) only */
        if (!(ch >= 'a' && ch <= 'z') && !(ch >= 'A' && ch <= 'Z') &&
            !(ch >= '0' && ch <= '9') && ch != '-' && ch != '.' && ch != '_' && ch != ':')
            goto refused;
        name[i] = (char)((ch >= 'A' && ch <= 'Z') ? ch + 32 : ch);
    }
    name[len] = '\0';
    if (parse_numeric(name, port, out) == 0)
        return DNS_DONE;
    if (memchr(name, ':', len) != NULL)
        goto refused;
    e = cache_find(dns, name);
    if (e != NULL) {
        observed(dns, DNS_OUTCOME_CACHE_HIT);
        *out = e->res;
        set_port(out, port);
        return DNS_DONE;
    }
    q = calloc(1, sizeof(*q));
    if (q == NULL)
        goto refused;
    q->dns = dns;
    q->cb = cb;
    q->arg = arg;
    q->port = port;
    memcpy(q->name, name, len + 1);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_flags = ARES_AI_NOSORT;
    q->in_call = true;
    ares_getaddrinfo(dns->channel, name, NULL, &hints, dns_on_answer, q);
    q->in_call = false;
    if (q->answered) {
        int status = q->status;
        if (status == ARES_SUCCESS) {
            *out = q->res;
            set_port(out, port);
        }
        free(q);
        return status == ARES_SUCCESS ? DNS_DONE : DNS_ERROR;
    }
    *qp = q;
    dns_arm_timer(dns);
    return DNS_PENDING;
refused:
    /* a name we cannot ask for (or no memory to ask): a failed lookup */
    observed(dns, DNS_OUTCOME_ERROR);
    return DNS_ERROR;
}

void
dns_cancel(dns_query_t *q)
{
    if (q != NULL)
        q->cb = NULL;
}
