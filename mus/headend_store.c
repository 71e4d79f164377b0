/*
 * mus/headend_store.c: sessions of mus-headend keyed by sid (chained hash),
 * an address index (each address -> the one session holding it), and the
 * journal: a ring of the last journal_cap event lines. See headend_store.h.
 */
#include "headend_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/hash.h"

#define HS_BUCKETS_INITIAL 1024u

typedef struct hs_addr_node {
    mus_addr_t addr;
    hs_entry_t *owner;
    struct hs_addr_node *next;
} hs_addr_node_t;

typedef struct hs_event {
    char *line;
    size_t len;
} hs_event_t;

struct hs_store {
    hs_entry_t **buckets;
    size_t n_buckets, count;
    hs_addr_node_t **abuckets;   /* same size as buckets, resized with them */
    uint64_t gen[HS_ORIGIN_N];   /* per origin */
    size_t n_stale;
    hs_event_t *ring;
    size_t ring_cap, ring_len;   /* ring holds seq (seq - ring_len, seq] */
    uint64_t seq;
    mus_frame_t scratch;         /* event being formatted */
    char line[MUS_FRAME_MAX + 2];
};

static uint64_t sid_hash(const char *sid)
{
    return hash_fnv1a64(HASH_FNV1A64_INIT, sid, strlen(sid));
}

static uint64_t addr_hash(const mus_addr_t *a)
{
    return hash_fnv1a64(HASH_FNV1A64_INIT, a->b, sizeof(a->b));
}

hs_store_t *hs_store_new(size_t journal_cap)
{
    if (journal_cap == 0)
        return NULL;
    hs_store_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->n_buckets = HS_BUCKETS_INITIAL;
    st->buckets = calloc(st->n_buckets, sizeof(*st->buckets));
    st->abuckets = calloc(st->n_buckets, sizeof(*st->abuckets));
    st->ring_cap = journal_cap;
    st->ring = calloc(journal_cap, sizeof(*st->ring));
    if (!st->buckets || !st->abuckets || !st->ring) {
        hs_store_free(st);
        return NULL;
    }
    return st;
}

void hs_store_free(hs_store_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; st->buckets && i < st->n_buckets; i++)
        for (hs_entry_t *e = st->buckets[i], *n; e; e = n) {
            n = e->next;
            free(e);
        }
    for (size_t i = 0; st->abuckets && i < st->n_buckets; i++)
        for (hs_addr_node_t *a = st->abuckets[i], *n; a; a = n) {
            n = a->next;
            free(a);
        }
    for (size_t i = 0; st->ring && i < st->ring_cap; i++)
        free(st->ring[i].line);
    free(st->buckets);
    free(st->abuckets);
    free(st->ring);
    free(st);
}

/* ---- indexes ---- */

static hs_entry_t **sid_slot(hs_store_t *st, const char *sid)
{
    hs_entry_t **pp = &st->buckets[sid_hash(sid) & (st->n_buckets - 1)];
    while (*pp && strcmp((*pp)->s.sid, sid) != 0)
        pp = &(*pp)->next;
    return pp;
}

static hs_addr_node_t **addr_slot(hs_store_t *st, const mus_addr_t *a)
{
    hs_addr_node_t **pp = &st->abuckets[addr_hash(a) & (st->n_buckets - 1)];
    while (*pp && memcmp((*pp)->addr.b, a->b, 16) != 0)
        pp = &(*pp)->next;
    return pp;
}

static hs_entry_t *addr_owner(hs_store_t *st, const mus_addr_t *a)
{
    hs_addr_node_t *n = *addr_slot(st, a);
    return n ? n->owner : NULL;
}

static int addr_set(hs_store_t *st, const mus_addr_t *a, hs_entry_t *owner)
{
    hs_addr_node_t **pp = addr_slot(st, a);
    if (*pp) {
        (*pp)->owner = owner;
        return 0;
    }
    hs_addr_node_t *n = calloc(1, sizeof(*n));
    if (!n)
        return -1;
    n->addr = *a;
    n->owner = owner;
    *pp = n;
    return 0;
}

static void addr_unset(hs_store_t *st, const mus_addr_t *a, const hs_entry_t *owner)
{
    hs_addr_node_t **pp = addr_slot(st, a);
    if (*pp && (*pp)->owner == owner) {
        hs_addr_node_t *n = *pp;
        *pp = n->next;
        free(n);
    }
}

/* Doubles both tables when the sessions outnumber the buckets. Failure is
 * harmless (chains get longer). */
static void maybe_grow(hs_store_t *st)
{
    if (st->count < st->n_buckets)
        return;
    size_t nb = st->n_buckets * 2;
    hs_entry_t **b = calloc(nb, sizeof(*b));
    hs_addr_node_t **ab = calloc(nb, sizeof(*ab));
    if (!b || !ab) {
        free(b);
        free(ab);
        return;
    }
    for (size_t i = 0; i < st->n_buckets; i++) {
        for (hs_entry_t *e = st->buckets[i], *n; e; e = n) {
            n = e->next;
            size_t h = sid_hash(e->s.sid) & (nb - 1);
            e->next = b[h];
            b[h] = e;
        }
        for (hs_addr_node_t *a = st->abuckets[i], *n; a; a = n) {
            n = a->next;
            size_t h = addr_hash(&a->addr) & (nb - 1);
            a->next = ab[h];
            ab[h] = a;
        }
    }
    free(st->buckets);
    free(st->abuckets);
    st->buckets = b;
    st->abuckets = ab;
    st->n_buckets = nb;
}

/* ---- journal ---- */

static int journal_append(hs_store_t *st, mus_frame_t *f)
{
    f->seq = st->seq + 1;
    f->has_seq = true;
    int n = mus_frame_format(f, st->line, sizeof(st->line));
    if (n < 0)
        return -1;
    char *copy = malloc((size_t)n);
    if (!copy)
        return -1;
    memcpy(copy, st->line, (size_t)n);
    size_t slot = (size_t)(f->seq % st->ring_cap);
    free(st->ring[slot].line);
    st->ring[slot].line = copy;
    st->ring[slot].len = (size_t)n;
    st->seq = f->seq;
    if (st->ring_len < st->ring_cap)
        st->ring_len++;
    return 0;
}

static int emit_session(hs_store_t *st, enum mus_frame_type type, const hs_entry_t *e)
{
    mus_frame_t *f = &st->scratch;
    memset(f, 0, sizeof(*f));
    f->type = type;
    f->session = e->s;
    memcpy(f->ips, e->ips, e->n_ips * sizeof(e->ips[0]));
    f->n_ips = e->n_ips;
    return journal_append(st, f);
}

static int emit_del(hs_store_t *st, const char *sid, const mus_addr_t *ips, size_t n,
                    const char *reason)
{
    mus_frame_t *f = &st->scratch;
    memset(f, 0, sizeof(*f));
    f->type = MUS_F_DEL;
    snprintf(f->session.sid, sizeof(f->session.sid), "%s", sid);
    memcpy(f->ips, ips, n * sizeof(ips[0]));
    f->n_ips = n;
    snprintf(f->reason, sizeof(f->reason), "%s", reason ? reason : "");
    return journal_append(st, f);
}

uint64_t hs_store_seq(const hs_store_t *st)
{
    return st->seq;
}

uint64_t hs_store_oldest(const hs_store_t *st)
{
    return st->seq - st->ring_len + 1;
}

bool hs_store_event(const hs_store_t *st, uint64_t seq, const char **line, size_t *len)
{
    if (seq == 0 || seq > st->seq || seq < hs_store_oldest(st))
        return false;
    const hs_event_t *ev = &st->ring[seq % st->ring_cap];
    *line = ev->line;
    *len = ev->len;
    return true;
}

/* ---- sessions ---- */

static bool has_addr(const mus_addr_t *ips, size_t n, const mus_addr_t *a)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(ips[i].b, a->b, 16) == 0)
            return true;
    return false;
}

static void entry_remove(hs_store_t *st, hs_entry_t *e)
{
    if (e->s.stale)
        st->n_stale--;
    for (size_t i = 0; i < e->n_ips; i++)
        addr_unset(st, &e->ips[i], e);
    hs_entry_t **pp = sid_slot(st, e->s.sid);
    if (*pp == e)
        *pp = e->next;
    st->count--;
    free(e);
}

/* Takes the addresses in ips away from every other session holding them;
 * a session left without addresses is removed. */
static int steal_addresses(hs_store_t *st, const char *sid, const mus_addr_t *ips, size_t n)
{
    int events = 0;
    for (size_t i = 0; i < n; i++) {
        hs_entry_t *o = addr_owner(st, &ips[i]);
        if (!o || strcmp(o->s.sid, sid) == 0)
            continue;
        mus_addr_t lost[MUS_MAX_IPS];
        size_t nl = 0, keep = 0;
        for (size_t j = 0; j < o->n_ips; j++) {
            if (has_addr(ips, n, &o->ips[j]))
                lost[nl++] = o->ips[j];
            else
                o->ips[keep++] = o->ips[j];
        }
        if (emit_del(st, o->s.sid, lost, nl, "lost") < 0)
            return -1;
        events++;
        for (size_t j = 0; j < nl; j++)
            addr_unset(st, &lost[j], o);
        o->n_ips = keep;
        if (keep == 0)
            entry_remove(st, o);
    }
    return events;
}

static bool same_ips(const hs_entry_t *e, const mus_addr_t *ips, size_t n)
{
    if (e->n_ips != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!has_addr(e->ips, e->n_ips, &ips[i]))
            return false;
    return true;
}

static bool same_session(const mus_session_t *a, const mus_session_t *b)
{
    return a->type == b->type && strcmp(a->name, b->name) == 0 &&
           strcmp(a->domain, b->domain) == 0 && strcmp(a->groups, b->groups) == 0 &&
           a->started == b->started && strcmp(a->client_ip, b->client_ip) == 0 &&
           strcmp(a->tunnel, b->tunnel) == 0 && a->stale == b->stale;
}

int hs_store_connect(hs_store_t *st, const mus_session_t *s, const mus_addr_t *ips, size_t n,
                     enum hs_origin origin, uint64_t now, bool soft)
{
    if (n == 0 || n > MUS_MAX_IPS || s->sid[0] == '\0')
        return -1;
    /* de-duplicate the addresses */
    mus_addr_t uniq[MUS_MAX_IPS];
    size_t nu = 0;
    for (size_t i = 0; i < n; i++)
        if (!has_addr(uniq, nu, &ips[i]))
            uniq[nu++] = ips[i];

    hs_entry_t **pp = sid_slot(st, s->sid), *e = *pp;
    if (e && soft && !e->s.stale && same_ips(e, uniq, nu) && e->s.type == s->type &&
        strcmp(e->s.name, s->name) == 0) {
        e->origin = origin;
        e->touched = now;
        e->gen = st->gen[origin];
        return 0;
    }
    if (e && same_ips(e, uniq, nu) && same_session(&e->s, s)) {
        e->origin = origin;
        e->touched = now;
        e->gen = st->gen[origin];
        return 0;
    }

    int events = steal_addresses(st, s->sid, uniq, nu);
    if (events < 0)
        return -1;
    pp = sid_slot(st, s->sid);   /* the chain may have changed */
    e = *pp;

    enum mus_frame_type type = MUS_F_ADD;
    if (e) {
        /* a different identity on a reused sid (ocserv IDs are PIDs) is a
         * new session: del + add; the same identity is an update, after
         * removing the addresses it no longer has */
        bool same_id = e->s.type == s->type && strcmp(e->s.name, s->name) == 0;
        mus_addr_t gone[MUS_MAX_IPS];
        size_t ng = 0;
        for (size_t i = 0; i < e->n_ips; i++)
            if (!same_id || !has_addr(uniq, nu, &e->ips[i]))
                gone[ng++] = e->ips[i];
        if (ng > 0) {
            if (emit_del(st, e->s.sid, gone, ng, same_id ? "admin" : "logout") < 0)
                return -1;
            events++;
        }
        for (size_t i = 0; i < e->n_ips; i++)
            addr_unset(st, &e->ips[i], e);
        type = same_id ? MUS_F_UPD : MUS_F_ADD;
    } else {
        e = calloc(1, sizeof(*e));
        if (!e)
            return -1;
        e->next = NULL;
        *pp = e;
        st->count++;
    }
    if (e->s.stale)
        st->n_stale--;
    e->s = *s;
    e->s.stale = false;   /* a connect is a refresh */
    e->stale_since = 0;
    memcpy(e->ips, uniq, nu * sizeof(uniq[0]));
    e->n_ips = nu;
    e->origin = origin;
    e->touched = now;
    e->gen = st->gen[origin];
    for (size_t i = 0; i < nu; i++)
        if (addr_set(st, &uniq[i], e) < 0) {
            entry_remove(st, e);
            return -1;
        }
    if (emit_session(st, type, e) < 0) {
        entry_remove(st, e);
        return -1;
    }
    maybe_grow(st);
    return events + 1;
}

int hs_store_disconnect(hs_store_t *st, const char *sid, const char *reason)
{
    hs_entry_t *e = *sid_slot(st, sid);
    if (!e)
        return 0;
    if (emit_del(st, e->s.sid, e->ips, e->n_ips, reason) < 0)
        return -1;
    entry_remove(st, e);
    return 1;
}

void hs_store_reconcile_begin(hs_store_t *st, enum hs_origin origin)
{
    st->gen[origin]++;
}

size_t hs_store_reconcile_sweep(hs_store_t *st, enum hs_origin origin, uint64_t touched_before)
{
    size_t removed = 0;
    for (size_t i = 0; i < st->n_buckets; i++) {
        hs_entry_t *e = st->buckets[i];
        while (e) {
            hs_entry_t *n = e->next;
            if (e->origin == origin && e->gen != st->gen[origin] && e->touched < touched_before) {
                if (emit_del(st, e->s.sid, e->ips, e->n_ips, "lost") < 0)
                    return removed;
                entry_remove(st, e);
                removed++;
            }
            e = n;
        }
    }
    return removed;
}

const hs_entry_t *hs_store_find(hs_store_t *st, const char *sid)
{
    return *sid_slot(st, sid);
}

int hs_store_set_feed(hs_store_t *st, const char *sid, const char *tag, uint32_t interim_s)
{
    hs_entry_t *e = *sid_slot(st, sid);
    if (!e)
        return -1;
    snprintf(e->tag, sizeof(e->tag), "%s", tag ? tag : "");
    e->interim_s = interim_s;
    return 0;
}

size_t hs_store_disconnect_tag(hs_store_t *st, enum hs_origin origin, const char *tag,
                               const char *reason)
{
    size_t removed = 0;
    for (size_t i = 0; i < st->n_buckets; i++) {
        hs_entry_t *e = st->buckets[i];
        while (e) {
            hs_entry_t *n = e->next;
            if (e->origin == origin && strcmp(e->tag, tag) == 0) {
                if (emit_del(st, e->s.sid, e->ips, e->n_ips, reason) < 0)
                    return removed;
                entry_remove(st, e);
                removed++;
            }
            e = n;
        }
    }
    return removed;
}

void hs_store_stale_sweep(hs_store_t *st, uint64_t now, unsigned factor, uint64_t grace_ms,
                          size_t *marked, size_t *removed)
{
    for (size_t i = 0; i < st->n_buckets; i++) {
        hs_entry_t *e = st->buckets[i];
        while (e) {
            hs_entry_t *n = e->next;
            if (e->s.stale && now - e->stale_since >= grace_ms) {
                if (emit_del(st, e->s.sid, e->ips, e->n_ips, "idle") < 0)
                    return;
                entry_remove(st, e);
                (*removed)++;
            } else if (!e->s.stale && e->interim_s > 0 &&
                       now - e->touched >= (uint64_t)factor * e->interim_s * 1000u) {
                e->s.stale = true;
                e->stale_since = now;
                st->n_stale++;
                if (emit_session(st, MUS_F_UPD, e) < 0)
                    return;
                (*marked)++;
            }
            e = n;
        }
    }
}

size_t hs_store_stale_count(const hs_store_t *st)
{
    return st->n_stale;
}

size_t hs_store_count(const hs_store_t *st)
{
    return st->count;
}

void hs_store_walk(const hs_store_t *st, hs_walk_cb cb, void *arg)
{
    for (size_t i = 0; i < st->n_buckets; i++)
        for (const hs_entry_t *e = st->buckets[i]; e; e = e->next)
            if (cb(arg, e) != 0)
                return;
}
