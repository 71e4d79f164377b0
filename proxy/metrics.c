/*
 * proxy/metrics.c: the counters and their Prometheus text (see metrics.h).
 *
 * Per-worker slots hold the hot counters and gauges; only their worker
 * stores into them (relaxed atomics, so a scrape from another thread reads
 * whole values), and the renderer sums the slots. A gauge of a slot (open
 * relays, upstream connections in use) only moves on its worker, so it is
 * never negative and the sum is the process's. Blocks carry two labels from
 * the configuration (policy, category): a small table under a mutex, taken
 * only when a request is blocked, bounded by METRICS_BLOCK_KEYS so a
 * configuration with many categories cannot grow it without limit.
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/grow.h"
#include "../mus/feed_radius.h"
#include "status.h"
#include "wccp_view.h"

#define N_RESULTS   5     /* enum txn_result */
#define N_LOC       2     /* local, remote */
#define N_MODES     2     /* explicit, transparent */
#define N_KINDS     METRICS_TUNNEL_KINDS
#define N_RELAY     2     /* enum relay_mode: splice, copy */
#define RENDER_FIRST (16u << 10)
#define RENDER_MAX  (8u << 20)

/* Latency buckets in milliseconds (le labels in seconds). */
static const uint64_t le_ms[] = { 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000 };
#define N_LE (sizeof(le_ms) / sizeof(le_ms[0]))

typedef _Atomic uint64_t counter_t;

struct slot {
    counter_t requests[N_RESULTS][N_LOC][N_MODES];
    counter_t bytes[N_LOC];
    counter_t latency[N_LOC][N_LE + 1];   /* not cumulative; +Inf last */
    counter_t latency_sum_ms[N_LOC];
    counter_t latency_count[N_LOC];
    counter_t relays_started[N_KINDS][N_RELAY];
    counter_t relays_open[N_KINDS][N_RELAY];     /* gauge */
    counter_t upstream_in_use, upstream_idle;    /* gauges */
    counter_t upstream_new, upstream_reused;
    counter_t dns[DNS_OUTCOMES];
    char pad[64];
};

_Static_assert(RELAY_SPLICE == 0 && RELAY_COPY == 1, "relay modes index the slots");

struct block_key {
    char policy[TXN_LABEL_MAX];
    char category[TXN_LABEL_MAX];
    uint64_t count;
};

struct metrics {
    unsigned n;
    struct slot *slots;
    pthread_mutex_t mu;                  /* blocks, reloads */
    struct block_key blocks[METRICS_BLOCK_KEYS];
    size_t n_blocks;
    uint64_t blocks_other;
    uint64_t reloads_ok, reloads_failed;
    int64_t start_s;
};

static inline void
inc(counter_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

static inline void
dec(counter_t *c)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - 1,
                          memory_order_relaxed);
}

static inline uint64_t
get(const counter_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

metrics_t *
metrics_new(unsigned nworkers)
{
    metrics_t *m;

    if (nworkers == 0 || nworkers > METRICS_WORKERS_MAX)
        return NULL;
    m = calloc(1, sizeof(*m));
    if (m == NULL)
        return NULL;
    m->slots = calloc(nworkers, sizeof(*m->slots));
    if (m->slots == NULL) {
        free(m);
        return NULL;
    }
    m->n = nworkers;
    pthread_mutex_init(&m->mu, NULL);
    m->start_s = (int64_t)time(NULL);
    return m;
}

void
metrics_free(metrics_t *m)
{
    if (m == NULL)
        return;
    pthread_mutex_destroy(&m->mu);
    free(m->slots);
    free(m);
}

static void
count_block(metrics_t *m, const txn_record_t *r)
{
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->n_blocks; i++) {
        struct block_key *k = &m->blocks[i];
        if (strcmp(k->policy, r->access_policy) == 0 && strcmp(k->category, r->category) == 0) {
            k->count++;
            goto out;
        }
    }
    if (m->n_blocks == METRICS_BLOCK_KEYS) {
        m->blocks_other++;
        goto out;
    }
    txn_copy_str(m->blocks[m->n_blocks].policy, TXN_LABEL_MAX, r->access_policy);
    txn_copy_str(m->blocks[m->n_blocks].category, TXN_LABEL_MAX, r->category);
    m->blocks[m->n_blocks++].count = 1;
out:
    pthread_mutex_unlock(&m->mu);
}

void
metrics_txn(metrics_t *m, unsigned worker, const txn_record_t *r)
{
    struct slot *s;
    unsigned res = (unsigned)r->result, loc = r->decided && r->remote ? 1 : 0;
    unsigned mode = r->mode == TXN_MODE_TRANSPARENT ? 1 : 0;
    size_t b = 0;

    if (m == NULL || worker >= m->n)
        return;
    s = &m->slots[worker];
    if (res >= N_RESULTS)
        res = 0;
    inc(&s->requests[res][loc][mode], 1);
    inc(&s->bytes[loc], r->bytes_out);
    while (b < N_LE && r->elapsed_ms > le_ms[b])
        b++;
    inc(&s->latency[loc][b], 1);
    inc(&s->latency_sum_ms[loc], r->elapsed_ms);
    inc(&s->latency_count[loc], 1);
    if (r->decided && (r->decision == TXN_DECISION_BLOCK || r->decision == TXN_DECISION_REFUSE_UNIDENTIFIED))
        count_block(m, r);
}

/* The caller's slot, or NULL for a worker index out of range. */
static inline struct slot *
slot_of(metrics_t *m, unsigned worker)
{
    return m != NULL && worker < m->n ? &m->slots[worker] : NULL;
}

void
metrics_relay_open(metrics_t *m, unsigned worker, enum metrics_tunnel kind, enum relay_mode mode)
{
    struct slot *s = slot_of(m, worker);

    if (s == NULL || (unsigned)kind >= N_KINDS || (unsigned)mode >= N_RELAY)
        return;
    inc(&s->relays_started[kind][mode], 1);
    inc(&s->relays_open[kind][mode], 1);
}

void
metrics_relay_close(metrics_t *m, unsigned worker, enum metrics_tunnel kind, enum relay_mode mode)
{
    struct slot *s = slot_of(m, worker);

    if (s == NULL || (unsigned)kind >= N_KINDS || (unsigned)mode >= N_RELAY)
        return;
    dec(&s->relays_open[kind][mode]);
}

void
metrics_upstream_take(metrics_t *m, unsigned worker, bool reused)
{
    struct slot *s = slot_of(m, worker);

    if (s == NULL)
        return;
    inc(reused ? &s->upstream_reused : &s->upstream_new, 1);
    inc(&s->upstream_in_use, 1);
}

void
metrics_upstream_release(metrics_t *m, unsigned worker)
{
    struct slot *s = slot_of(m, worker);

    if (s != NULL)
        dec(&s->upstream_in_use);
}

void
metrics_upstream_idle(metrics_t *m, unsigned worker, unsigned n)
{
    struct slot *s = slot_of(m, worker);

    if (s != NULL)
        atomic_store_explicit(&s->upstream_idle, n, memory_order_relaxed);
}

void
metrics_dns(metrics_t *m, unsigned worker, enum dns_outcome outcome)
{
    struct slot *s = slot_of(m, worker);

    if (s != NULL && (unsigned)outcome < DNS_OUTCOMES)
        inc(&s->dns[outcome], 1);
}

void
metrics_reload(metrics_t *m, bool ok)
{
    if (m == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    if (ok)
        m->reloads_ok++;
    else
        m->reloads_failed++;
    pthread_mutex_unlock(&m->mu);
}

/* ---- rendering ---- */

typedef struct text {
    char *buf;
    size_t len, cap;
    bool failed;
} text_t;

static void put(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(text_t *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    for (;;) {
        if (t->failed)
            return;
        va_start(ap, fmt);
        n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->buf != NULL && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = grow_cap(t->cap, t->len + (size_t)n + 1, RENDER_FIRST, RENDER_MAX);
        char *nb = cap ? realloc(t->buf, cap) : NULL;
        if (nb == NULL) {
            t->failed = true;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
}

/* A label value with \ " and newline escaped (the exposition format's rule). */
static const char *
esc(char *out, size_t cap, const char *s)
{
    size_t o = 0;

    for (; *s && o + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
    return out;
}

static void
family(text_t *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels. */
static void
scalar(text_t *t, const char *name, const char *type, const char *help, uint64_t v)
{
    family(t, name, type, help);
    put(t, "%s %llu\n", name, (unsigned long long)v);
}

/* One sample per row: NAME{LABEL="row's value"} count. */
typedef struct labelled_n {
    const char *value;
    uint64_t n;
} labelled_n_t;

static void
labelled(text_t *t, const char *name, const char *type, const char *help, const char *label,
         const labelled_n_t *rows, size_t n_rows)
{
    family(t, name, type, help);
    for (size_t i = 0; i < n_rows; i++)
        put(t, "%s{%s=\"%s\"} %llu\n", name, label, rows[i].value, (unsigned long long)rows[i].n);
}

static const char *const loc_names[N_LOC] = { "local", "remote" };
static const char *const mode_names[N_MODES] = { "explicit", "transparent" };
static const char *const kind_names[N_KINDS] = {
    [METRICS_TUNNEL_CONNECT] = "connect", [METRICS_TUNNEL_UPGRADE] = "upgrade",
    [METRICS_TUNNEL_TLS] = "tls", [METRICS_TUNNEL_BYPASS] = "bypass",
    [METRICS_TUNNEL_OTHER] = "other",
};
static const char *const relay_names[N_RELAY] = { [RELAY_SPLICE] = "splice", [RELAY_COPY] = "copy" };

/* The sum over the workers of one counter, named by its place in slot 0. */
static uint64_t
sum_slots(const metrics_t *m, const counter_t *in_first)
{
    size_t off = (size_t)((const char *)in_first - (const char *)&m->slots[0]);
    uint64_t v = 0;

    for (unsigned w = 0; w < m->n; w++)
        v += get((const counter_t *)((const char *)&m->slots[w] + off));
    return v;
}

/* A family by tunnel kind and relay mode; in_first: its counters in slot 0. */
static void
relays(text_t *t, const metrics_t *m, const char *name, const char *type, const char *help,
       const counter_t (*in_first)[N_RELAY])
{
    family(t, name, type, help);
    for (unsigned k = 0; k < N_KINDS; k++)
        for (unsigned r = 0; r < N_RELAY; r++)
            put(t, "%s{kind=\"%s\",mode=\"%s\"} %llu\n", name, kind_names[k], relay_names[r],
                (unsigned long long)sum_slots(m, &in_first[k][r]));
}

/* Upstream connections, tunnel relays and DNS lookups, from the slots. */
static void
render_workers(text_t *t, metrics_t *m)
{
    const struct slot *s0 = &m->slots[0];

    family(t, "musproxy_upstream_connections", "gauge",
           "Upstream connections open now: in use by a request or a tunnel (connecting "
           "included), or idle in the workers' keep-alive pools.");
    put(t, "musproxy_upstream_connections{state=\"in_use\"} %llu\n",
        (unsigned long long)sum_slots(m, &s0->upstream_in_use));
    put(t, "musproxy_upstream_connections{state=\"idle\"} %llu\n",
        (unsigned long long)sum_slots(m, &s0->upstream_idle));
    scalar(t, "musproxy_upstream_connects_total", "counter",
           "Upstream connections opened (each address tried counts).",
           sum_slots(m, &s0->upstream_new));
    scalar(t, "musproxy_upstream_reuses_total", "counter",
           "Requests sent on an idle upstream connection taken from the keep-alive pool.",
           sum_slots(m, &s0->upstream_reused));
    relays(t, m, "musproxy_tunnel_relays_total", "counter",
           "Tunnel relays started, one per direction (two per tunnel), by tunnel kind and "
           "relay mode (proxy.tunnel_relay).", s0->relays_started);
    relays(t, m, "musproxy_tunnel_relays_open", "gauge",
           "Tunnel relays open now (two per open tunnel), by tunnel kind and relay mode.",
           s0->relays_open);
    family(t, "musproxy_dns_lookups_total", "counter",
           "Host name lookups by result: cache_hit (the worker's TTL cache), hosts (/etc/hosts, "
           "no query), answered, not_found (NXDOMAIN or no data), timeout, error. IP literals "
           "are not looked up.");
    for (unsigned o = 0; o < DNS_OUTCOMES; o++)
        put(t, "musproxy_dns_lookups_total{result=\"%s\"} %llu\n",
            dns_outcome_str((enum dns_outcome)o), (unsigned long long)sum_slots(m, &s0->dns[o]));
}

static void
render_traffic(text_t *t, metrics_t *m)
{
    family(t, "musproxy_requests_total", "counter",
           "Transactions finished, by Squid result code, client location and listener mode.");
    for (unsigned r = 0; r < N_RESULTS; r++)
        for (unsigned l = 0; l < N_LOC; l++)
            for (unsigned md = 0; md < N_MODES; md++) {
                uint64_t v = 0;
                for (unsigned w = 0; w < m->n; w++)
                    v += get(&m->slots[w].requests[r][l][md]);
                put(t, "musproxy_requests_total{result=\"%s\",location=\"%s\",mode=\"%s\"} %llu\n",
                    txn_result_str((enum txn_result)r), loc_names[l], mode_names[md],
                    (unsigned long long)v);
            }
    family(t, "musproxy_response_bytes_total", "counter", "Bytes sent to clients, by location.");
    for (unsigned l = 0; l < N_LOC; l++) {
        uint64_t v = 0;
        for (unsigned w = 0; w < m->n; w++)
            v += get(&m->slots[w].bytes[l]);
        put(t, "musproxy_response_bytes_total{location=\"%s\"} %llu\n", loc_names[l],
            (unsigned long long)v);
    }
    family(t, "musproxy_request_duration_seconds", "histogram",
           "Time from the first byte of a request to the end of its transaction.");
    for (unsigned l = 0; l < N_LOC; l++) {
        uint64_t cum = 0, sum = 0, count = 0;
        for (size_t b = 0; b <= N_LE; b++) {
            for (unsigned w = 0; w < m->n; w++)
                cum += get(&m->slots[w].latency[l][b]);
            if (b < N_LE)
                put(t, "musproxy_request_duration_seconds_bucket{location=\"%s\",le=\"%g\"} %llu\n",
                    loc_names[l], (double)le_ms[b] / 1000.0, (unsigned long long)cum);
            else
                put(t, "musproxy_request_duration_seconds_bucket{location=\"%s\",le=\"+Inf\"} %llu\n",
                    loc_names[l], (unsigned long long)cum);
        }
        for (unsigned w = 0; w < m->n; w++) {
            sum += get(&m->slots[w].latency_sum_ms[l]);
            count += get(&m->slots[w].latency_count[l]);
        }
        put(t, "musproxy_request_duration_seconds_sum{location=\"%s\"} %.3f\n", loc_names[l],
            (double)sum / 1000.0);
        put(t, "musproxy_request_duration_seconds_count{location=\"%s\"} %llu\n", loc_names[l],
            (unsigned long long)count);
    }
    pthread_mutex_lock(&m->mu);
    family(t, "musproxy_blocks_total", "counter",
           "Requests the access policy blocked, by policy and category (\"\" = not a category rule).");
    for (size_t i = 0; i < m->n_blocks; i++) {
        char p[2 * TXN_LABEL_MAX], c[2 * TXN_LABEL_MAX];
        put(t, "musproxy_blocks_total{policy=\"%s\",category=\"%s\"} %llu\n",
            esc(p, sizeof(p), m->blocks[i].policy), esc(c, sizeof(c), m->blocks[i].category),
            (unsigned long long)m->blocks[i].count);
    }
    if (m->blocks_other > 0)
        put(t, "musproxy_blocks_total{policy=\"other\",category=\"other\"} %llu\n",
            (unsigned long long)m->blocks_other);
    family(t, "musproxy_reloads_total", "counter", "SIGHUP reloads, by outcome.");
    put(t, "musproxy_reloads_total{result=\"ok\"} %llu\n", (unsigned long long)m->reloads_ok);
    put(t, "musproxy_reloads_total{result=\"failed\"} %llu\n", (unsigned long long)m->reloads_failed);
    pthread_mutex_unlock(&m->mu);
    family(t, "musproxy_start_time_seconds", "gauge", "When the process started (Unix time).");
    put(t, "musproxy_start_time_seconds %lld\n", (long long)m->start_s);
    render_workers(t, m);
}

/* The service groups of the WCCP agent and its message counters. */
static void
render_wccp(text_t *t, wccp_t *w)
{
    wccp_stats_t ws;
    char svc[64];

    wccp_stats(w, &ws);
    family(t, "musproxy_wccp_service_state", "gauge",
           "1 for the state each WCCP service group is in (seeking, no-common-method, member, "
           "designated-waiting, designated), 0 for the others.");
    for (size_t i = 0; i < ws.n_services; i++) {
        const wccp_service_stats_t *v = &ws.services[i];
        snprintf(svc, sizeof(svc), "service=\"%u\",type=\"%s\"", v->id,
                 v->dynamic ? "dynamic" : "standard");
        for (unsigned st = 0; st < WCCP_SERVICE_STATES; st++)
            put(t, "musproxy_wccp_service_state{%s,state=\"%s\"} %d\n", svc,
                wccp_service_state_str((enum wccp_service_state)st), v->state == st);
    }
#define PER_SERVICE(name, type, help, fmt, expr)                                          \
    do {                                                                                  \
        family(t, name, type, help);                                                      \
        for (size_t i = 0; i < ws.n_services; i++) {                                      \
            const wccp_service_stats_t *v = &ws.services[i];                              \
            put(t, name "{service=\"%u\",type=\"%s\"} " fmt "\n", v->id,                   \
                v->dynamic ? "dynamic" : "standard", expr);                               \
        }                                                                                 \
    } while (0)
    PER_SERVICE("musproxy_wccp_service_routers_connected", "gauge",
                "Configured routers of the service group that answer (I_See_You within three "
                "intervals).", "%u", v->routers_connected);
    PER_SERVICE("musproxy_wccp_service_designated", "gauge",
                "1 if this cache is the designated cache of the service group.", "%d",
                v->designated_self ? 1 : 0);
    PER_SERVICE("musproxy_wccp_service_buckets", "gauge",
                "Hash buckets (of 256) the service group assigns to this cache; mask values "
                "with mask assignment.", "%u", v->share);
#undef PER_SERVICE
    uint64_t unexpected = 0;
    for (size_t i = 0; i < ws.n_services; i++)
        unexpected += ws.services[i].dropped;
    const labelled_n_t drops[] = {
        { "not_router", ws.drop_not_router }, { "malformed", ws.drop_malformed },
        { "security", ws.drop_security }, { "unknown_service", ws.drop_unknown_service },
        { "unexpected", unexpected },
    };
    family(t, "musproxy_wccp_messages_total", "counter", "WCCP messages received and sent.");
    put(t, "musproxy_wccp_messages_total{direction=\"received\"} %llu\n", (unsigned long long)ws.in);
    put(t, "musproxy_wccp_messages_total{direction=\"sent\"} %llu\n", (unsigned long long)ws.out);
    labelled(t, "musproxy_wccp_messages_dropped_total", "counter",
             "WCCP messages received and dropped, by reason (unexpected: not for us, or a "
             "service defined differently).", "reason", drops, sizeof(drops) / sizeof(drops[0]));
    scalar(t, "musproxy_wccp_send_errors_total", "counter",
           "WCCP messages the socket refused to send.", ws.send_errors);
}

/* musproxy's own GRE decapsulation (gre: enabled). */
static void
render_gre(text_t *t, gre_t *g)
{
    gre_stats_t gs;
    char ip[INET_ADDRSTRLEN];

    gre_get_stats(g, &gs);
    scalar(t, "musproxy_gre_packets_received_total", "counter",
           "Packets the raw GRE socket returned.", gs.packets_in);
    scalar(t, "musproxy_gre_received_bytes_total", "counter",
           "Bytes of those packets, outer headers included.", gs.bytes_in);
    scalar(t, "musproxy_gre_packets_decapsulated_total", "counter",
           "Client packets accepted: decapsulated and written to the TUN device.", gs.decapsulated);
    scalar(t, "musproxy_gre_decapsulated_bytes_total", "counter",
           "Bytes of the client packets written to the TUN device.", gs.bytes_out);
    scalar(t, "musproxy_gre_wccpv1_packets_total", "counter",
           "Accepted packets without a WCCPv2 redirect header (WCCPv1).", gs.v1_packets);
    family(t, "musproxy_gre_packets_dropped_total", "counter",
           "GRE packets dropped, by reason.");
    for (int d = GRE_DROP_NONE + 1; d < GRE_DROP_COUNT; d++)
        put(t, "musproxy_gre_packets_dropped_total{reason=\"%s\"} %llu\n",
            gre_drop_name((gre_drop_t)d), (unsigned long long)gs.dropped[d]);
    scalar(t, "musproxy_gre_receive_errors_total", "counter", "Failed reads of the raw GRE socket.",
           gs.recv_errors);
    family(t, "musproxy_gre_router_packets_total", "counter",
           "Packets decapsulated per configured router (the GRE source).");
    for (size_t i = 0; i < gs.n_routers; i++) {
        struct in_addr a = { .s_addr = gs.routers[i].addr };
        if (inet_ntop(AF_INET, &a, ip, sizeof(ip)) == NULL)
            snprintf(ip, sizeof(ip), "?");
        put(t, "musproxy_gre_router_packets_total{router=\"%s\"} %llu\n", ip,
            (unsigned long long)gs.routers[i].packets);
    }
}

/* musproxy's own RADIUS accounting listener (radius:), if one is attached.
 * Every packet received counts once in musproxy_radius_packets_total, by
 * what became of it; the accepted ones once more by Acct-Status-Type. */
static void
render_radius(text_t *t, mus_feed_t *feed)
{
    mus_radius_status_t st;
    const hr_counters_t *c = &st.c;

    if (!mus_feed_radius_status(feed, &st))
        return;
    uint64_t typed = c->starts + c->interims + c->stops + c->acct_on + c->acct_off + c->other_status;
    const labelled_n_t results[] = {
        { "accepted", typed >= c->store_errors ? typed - c->store_errors : 0 },
        { "duplicate", c->duplicates }, { "unknown_client", c->unknown_client },
        { "bad_authenticator", c->bad_authenticator }, { "malformed", c->malformed },
        { "not_applied", c->store_errors },
    }, types[] = {
        { "start", c->starts }, { "interim", c->interims }, { "stop", c->stops },
        { "accounting_on", c->acct_on }, { "accounting_off", c->acct_off },
        { "other", c->other_status },
    };
    scalar(t, "musproxy_radius_up", "gauge", "1 if the RADIUS accounting listener is open.",
           st.listening ? 1 : 0);
    labelled(t, "musproxy_radius_packets_total", "counter",
             "RADIUS packets received by the accounting listener, by result: accepted (applied "
             "and answered), duplicate (a retransmission: answered again, not applied), "
             "unknown_client (not in the clients file), bad_authenticator (wrong shared secret), "
             "malformed, not_applied (out of memory: not answered). Dropped ones are never "
             "answered.", "result", results, sizeof(results) / sizeof(results[0]));
    labelled(t, "musproxy_radius_requests_total", "counter",
             "Accounting-Requests accepted, by Acct-Status-Type.", "type", types,
             sizeof(types) / sizeof(types[0]));
    scalar(t, "musproxy_radius_responses_total", "counter", "Accounting-Responses sent.",
           c->responses);
    scalar(t, "musproxy_radius_requests_without_address_total", "counter",
           "Starts and Interim-Updates without a usable address, user or session id "
           "(answered, not mapped).", c->no_address);
    scalar(t, "musproxy_radius_map_changes_total", "counter",
           "Identity map changes (add, update, delete) made by the RADIUS listener.",
           st.events_applied);
    scalar(t, "musproxy_radius_sessions", "gauge", "RADIUS sessions known now (stale ones included).",
           st.sessions);
    scalar(t, "musproxy_radius_stale_sessions", "gauge",
           "RADIUS sessions without an Interim-Update for radius.stale_after intervals now.",
           st.stale_sessions);
    const labelled_n_t stale[] = { { "marked", st.stale_marked }, { "removed", st.stale_removed } };
    labelled(t, "musproxy_radius_stale_sessions_total", "counter",
             "RADIUS sessions marked stale by the sweep, and removed after radius.stale_grace.",
             "event", stale, 2);
}

static void
render_sources(text_t *t, const status_sources_t *src)
{
    connlimit_stats_t cs;
    mus_map_counters_t mc;

    if (src->connlimit != NULL) {
        connlimit_stats(src->connlimit, &cs);
        family(t, "musproxy_client_connections", "gauge", "Client connections open now.");
        put(t, "musproxy_client_connections %llu\n", (unsigned long long)cs.open);
        family(t, "musproxy_client_connections_max", "gauge", "proxy.max_connections.");
        put(t, "musproxy_client_connections_max %llu\n", (unsigned long long)cs.max);
        family(t, "musproxy_connection_limit_reached_total", "counter",
               "Times the process reached max_connections and stopped accepting.");
        put(t, "musproxy_connection_limit_reached_total %llu\n", (unsigned long long)cs.full);
    }
    if (src->map != NULL) {
        mus_map_counters(src->map, -1, &mc);
        family(t, "musproxy_identity_map_entries", "gauge", "VPN addresses mapped to an identity.");
        put(t, "musproxy_identity_map_entries %llu\n", (unsigned long long)mc.entries);
        family(t, "musproxy_identity_map_stale_entries", "gauge",
               "Mapped addresses whose headend is disconnected (grace period).");
        put(t, "musproxy_identity_map_stale_entries %llu\n", (unsigned long long)mc.stale_entries);
    }
    if (src->feed != NULL) {
        mus_headend_status_t st[MUS_MAP_MAX_HEADENDS];
        size_t n = mus_feed_status(src->feed, st, MUS_MAP_MAX_HEADENDS);
        char h[2 * MUS_HEADEND_NAME_MAX];
        family(t, "musproxy_headend_up", "gauge", "1 if the MUS/1 session to the headend is established.");
        for (size_t i = 0; i < n; i++)
            put(t, "musproxy_headend_up{headend=\"%s\"} %d\n", esc(h, sizeof(h), st[i].name),
                st[i].state == MUS_SESSION_ESTABLISHED);
        family(t, "musproxy_headend_reconnects_total", "counter",
               "MUS/1 sessions opened after the first, per headend.");
        for (size_t i = 0; i < n; i++)
            put(t, "musproxy_headend_reconnects_total{headend=\"%s\"} %llu\n",
                esc(h, sizeof(h), st[i].name), (unsigned long long)st[i].reconnects);
        family(t, "musproxy_headend_events_total", "counter",
               "Identity events applied from the headend.");
        for (size_t i = 0; i < n; i++)
            put(t, "musproxy_headend_events_total{headend=\"%s\"} %llu\n",
                esc(h, sizeof(h), st[i].name), (unsigned long long)st[i].events_applied);
    }
    if (src->feed != NULL)
        render_radius(t, src->feed);
    if (src->store != NULL) {
        txnstore_stats_t ss;
        txnstore_stats(src->store, &ss);
        family(t, "musproxy_store_queue_depth", "gauge", "Records waiting for the store's writer.");
        put(t, "musproxy_store_queue_depth %llu\n", (unsigned long long)ss.queued);
        family(t, "musproxy_store_records_total", "counter",
               "Transaction records by fate: written, dropped (queue full), lost (not written).");
        put(t, "musproxy_store_records_total{fate=\"written\"} %llu\n", (unsigned long long)ss.written);
        put(t, "musproxy_store_records_total{fate=\"dropped\"} %llu\n", (unsigned long long)ss.dropped);
        put(t, "musproxy_store_records_total{fate=\"lost\"} %llu\n", (unsigned long long)ss.lost);
        family(t, "musproxy_store_up", "gauge", "1 if the store's file is open.");
        put(t, "musproxy_store_up %d\n", ss.db_open ? 1 : 0);
    }
    if (src->wccp != NULL)
        render_wccp(t, src->wccp);
    if (src->gre != NULL)
        render_gre(t, src->gre);
}

char *
metrics_render(metrics_t *m, const status_sources_t *src, size_t *len)
{
    text_t t = {0};

    if (m != NULL)
        render_traffic(&t, m);
    if (src != NULL)
        render_sources(&t, src);
    if (t.failed || t.buf == NULL) {
        free(t.buf);
        return NULL;
    }
    *len = t.len;
    return t.buf;
}
