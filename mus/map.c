/*
 * mus/map.c: the IP -> identity map (see map.h), RCU-style with quiescent
 * state based reclamation (QSBR).
 *
 * Readers: a fixed table of MUS_MAP_BUCKETS bucket heads, each a singly
 * linked chain of entries. An entry (address + packed identity) is immutable
 * once published; the only field that ever changes is its `next` link, and
 * only by the writer. Pointers are published with release stores and read
 * with acquire loads, so a lookup takes no lock and never writes shared
 * memory. A headend's stale mark and name live beside the table, so marking a
 * headend stale is one store, read by each lookup.
 *
 * The writer replaces an entry by building a new one and swapping the link
 * to it, or unlinks it; the old entry goes to the limbo list, tagged with the
 * epoch the writer publishes after the change. Each reader has a cache-line
 * slot holding the global epoch it saw at its last quiescent state (or
 * EPOCH_OFFLINE); a limbo object is freed once every online reader's slot is
 * at least its tag. The ordering arguments are written at reader_online()
 * and mus_map_reclaim(); there is no standalone fence (TSan-friendly).
 *
 * Writer-private state: a (headend, sid) index of sessions, each with the
 * addresses it holds now (a session that holds no address is forgotten),
 * one list of sessions per headend, and a staging list per headend for
 * snapshots. Snapshot end marks the staged sessions, applies each one as an
 * individual replacement/insertion, then removes that headend's unmarked
 * sessions: a reader sees every address that is in both the old and the new
 * set the whole time, and never an empty map.
 *
 * Semantics chosen where map.h is silent:
 * - mus_map_add() sets the session's address list: addresses (h, sid) held
 *   before and not listed now are removed (an `upd` frame carries the whole
 *   session). A session with an empty list is removed.
 * - Conflict: another session (other sid or other headend) owns the address;
 *   the incoming one wins if its `started` is >= (a tie goes to the later
 *   arrival, which is the incoming one). Counted once per address, on the
 *   incoming headend, whichever side wins. Within a snapshot, a live entry of
 *   the same headend that the snapshot does not give to its own session is
 *   simply replaced (the snapshot is authoritative for its headend).
 * - adds: addresses added or updated by mus_map_add; dels: addresses removed
 *   by mus_map_del; ignored_dels: addresses a del named that (h, sid) did not
 *   hold (1 for an n == 0 del of an unknown session); expired: entries
 *   dropped by mus_map_expire; snapshots: snapshots applied.
 * - mus_map_snapshot_add() returns 0, or -1 (no snapshot begun, bad session,
 *   out of memory).
 *
 * It does not: take locks, block, allocate in lookups, do I/O, or know the
 * wire format. Readers must be registered threads that report quiescent
 * states; a reader that stays online without ever reporting one holds back
 * all reclamation (memory grows, nothing breaks).
 */
#include "map.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CACHE_LINE        64
#define EPOCH_OFFLINE     0u       /* reader slot value: holds no reference */
#define EPOCH_FIRST       1u
#define INDEX_INITIAL     1024u    /* writer's (headend, sid) index; doubles at load 1 */
#define INLINE_ADDRS      2        /* addresses a session holds without a heap array */
#define STAGING_INITIAL   256      /* staged sessions; the array doubles */
#define PREFETCH_AHEAD    8        /* snapshot apply: sessions prefetched ahead, per stage */
#define CLIENT_IP_MAX     sizeof(((mus_session_t *)0)->client_ip)
#define TUNNEL_MAX        sizeof(((mus_session_t *)0)->tunnel)
#define PACK_MAX          (MUS_SID_MAX + MUS_NAME_MAX + MUS_DOMAIN_MAX + MUS_GROUPS_MAX + \
                           CLIENT_IP_MAX + TUNNEL_MAX)

/* The strings of a session, packed one after the other, each NUL-terminated. */
enum { STR_SID, STR_NAME, STR_DOMAIN, STR_GROUPS, STR_CLIENT_IP, STR_TUNNEL, N_STR };

/* Fixed part of a packed identity; no padding, so it compares with memcmp. */
struct idhdr {
    int64_t started;
    uint16_t len[N_STR];   /* strlen of each string */
    uint16_t slen;         /* bytes of the packed strings, NULs included */
    uint8_t type;          /* enum mus_id_type */
    uint8_t h;             /* headend index */
    uint8_t flags;         /* ID_F_* */
    uint8_t pad[7];        /* zeroed: the header compares with memcmp */
};

#define ID_F_STALE 1u      /* the headend marked the session stale */

/* Header of everything that goes through limbo; first member of each. */
struct lnode {
    struct lnode *lnext;
    uint64_t tag;          /* freed when every online reader has seen this epoch */
};

struct wsess;

/* One mapped address. Immutable once published except `next`. */
struct entry {
    struct lnode ln;                    /* writer only (limbo) */
    _Atomic(struct entry *) next;       /* bucket chain */
    struct wsess *ws;                   /* writer only: the session holding it */
    mus_addr_t addr;
    struct idhdr id;
    char str[];                         /* id.slen bytes */
};

/* A headend name, replaced as a whole (readers copy it). */
struct hname {
    struct lnode ln;
    char s[];
};

/* A staged snapshot session: nips addresses, then id.slen bytes of strings. */
struct staged {
    struct wsess *ws;                   /* its live session, found at snapshot end */
    uint64_t hash;                      /* of (headend, sid) */
    struct idhdr id;
    uint32_t nips;
    unsigned char data[];
};

/* Writer-private record of a session (headend, sid). */
struct wsess {
    struct wsess *hnext;                /* index chain */
    struct wsess *prev, *next;          /* its headend's list */
    const struct staged *staged;        /* valid while snap_gen is the current one */
    uint64_t snap_gen;
    mus_addr_t *addrs;                  /* held now: inl or heap */
    uint32_t n, cap;
    uint64_t hash;
    struct idhdr id;
    char *str;
    mus_addr_t inl[INLINE_ADDRS];
};

/* What readers consult per headend; written rarely. */
struct he_read {
    _Atomic(struct hname *) name;
    atomic_bool stale;
};

struct he_counters {
    _Atomic uint64_t entries, adds, dels, ignored_dels, conflicts, snapshots, expired;
};

struct staging {
    bool active;
    struct staged **v;
    size_t n, cap;
};

/* Writer-private per-headend state. */
struct he_write {
    int64_t since;                      /* lost at, when stale */
    struct wsess *list;
    struct staging stg;
};

struct mus_map_reader {
    alignas(CACHE_LINE) _Atomic uint64_t epoch;   /* last observed, or EPOCH_OFFLINE */
    atomic_bool used;
    mus_map_t *m;
};

struct mus_map {
    /* read by lookups */
    _Atomic(struct entry *) *buckets;
    struct he_read he[MUS_MAP_MAX_HEADENDS];
    /* written by the writer once per change, read at quiescent states */
    alignas(CACHE_LINE) _Atomic uint64_t epoch;
    /* reader registration */
    alignas(CACHE_LINE) _Atomic unsigned readers_hw;   /* slots ever used: [0, hw) */
    struct mus_map_reader *readers;
    /* counters: writer stores, anyone may load */
    alignas(CACHE_LINE) struct he_counters cnt[MUS_MAP_MAX_HEADENDS];
    /* writer only */
    alignas(CACHE_LINE) uint64_t epoch_cur;
    bool retired;                       /* something joined limbo since the last bump */
    struct lnode *limbo_head, *limbo_tail;
    size_t limbo_n;
    struct wsess **index;
    size_t index_size, index_count;
    uint64_t snap_gen;
    struct he_write hw[MUS_MAP_MAX_HEADENDS];
    mus_map_observer_fn observer;       /* told of addresses gained and lost */
    void *observer_arg;
    const char *op_reason;              /* why the current operation removes entries */
};

/* ---- small helpers ---- */

static void
cnt_add(_Atomic uint64_t *c, int64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)v,
                          memory_order_relaxed);
}

static inline bool
addr_eq(const mus_addr_t *a, const mus_addr_t *b)
{
    uint64_t a0, a1, b0, b1;

    memcpy(&a0, a->b, 8);
    memcpy(&a1, a->b + 8, 8);
    memcpy(&b0, b->b, 8);
    memcpy(&b1, b->b + 8, 8);
    return ((a0 ^ b0) | (a1 ^ b1)) == 0;
}

/* splitmix64's finaliser over both halves: IPv4-mapped addresses differ
 * only in their last four bytes. */
static inline uint32_t
addr_bucket(const mus_addr_t *a)
{
    uint64_t lo, hi, x;

    memcpy(&lo, a->b, 8);
    memcpy(&hi, a->b + 8, 8);
    x = hi ^ (lo * 0x9e3779b97f4a7c15u);
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9u;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebu;
    x ^= x >> 31;
    return (uint32_t)x & (MUS_MAP_BUCKETS - 1);
}

static uint64_t
sess_hash(unsigned h, const char *sid, size_t len)
{
    uint64_t x = 0xcbf29ce484222325u ^ h;

    for (size_t i = 0; i < len; i++) {
        x ^= (unsigned char)sid[i];
        x *= 0x100000001b3u;
    }
    x ^= x >> 29;
    return x;
}

static bool
addr_in(const mus_addr_t *a, const mus_addr_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (addr_eq(a, &v[i]))
            return true;
    return false;
}

/* ---- types and addresses ---- */

static const char *const id_type_names[] = {
    [MUS_ID_USER] = "user",
    [MUS_ID_MACHINE] = "machine",
    [MUS_ID_DEVICE] = "device",
};
#define N_ID_TYPES (sizeof(id_type_names) / sizeof(id_type_names[0]))

const char *
mus_id_type_str(enum mus_id_type t)
{
    if ((unsigned)t >= N_ID_TYPES)
        return "unknown";
    return id_type_names[t];
}

int
mus_id_type_parse(const char *s, enum mus_id_type *out)
{
    for (unsigned i = 0; i < N_ID_TYPES; i++) {
        if (strcmp(s, id_type_names[i]) == 0) {
            *out = (enum mus_id_type)i;
            return 0;
        }
    }
    return -1;
}

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int
mus_addr_parse(const char *text, mus_addr_t *out)
{
    struct in_addr v4;

    if (inet_pton(AF_INET, text, &v4) == 1) {
        memcpy(out->b, v4mapped_prefix, sizeof(v4mapped_prefix));
        memcpy(out->b + 12, &v4, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->b) == 1)
        return 0;
    return -1;
}

void
mus_addr_from_sockaddr(const struct sockaddr *sa, mus_addr_t *out)
{
    memset(out->b, 0, sizeof(out->b));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        memcpy(out->b, v4mapped_prefix, sizeof(v4mapped_prefix));
        memcpy(out->b + 12, &sin->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(out->b, sin6->sin6_addr.s6_addr, 16);
    }
}

void
mus_addr_format(const mus_addr_t *a, char *buf, size_t len)
{
    char tmp[INET6_ADDRSTRLEN];

    if (len == 0)
        return;
    if (memcmp(a->b, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0)
        inet_ntop(AF_INET, a->b + 12, tmp, sizeof(tmp));
    else
        inet_ntop(AF_INET6, a->b, tmp, sizeof(tmp));
    snprintf(buf, len, "%s", tmp);
}

/* ---- packed identities ---- */

struct packed {
    struct idhdr id;
    char str[PACK_MAX];
};

/* -1 if a string is unterminated, the sid empty or the type unknown. */
static int
pack_session(unsigned h, const mus_session_t *s, struct packed *p)
{
    const char *src[N_STR] = {s->sid, s->name, s->domain, s->groups, s->client_ip, s->tunnel};
    const size_t cap[N_STR] = {sizeof(s->sid), sizeof(s->name), sizeof(s->domain),
                               sizeof(s->groups), sizeof(s->client_ip), sizeof(s->tunnel)};
    size_t off = 0;

    if ((unsigned)s->type >= N_ID_TYPES || s->sid[0] == '\0')
        return -1;
    memset(&p->id, 0, sizeof(p->id));
    for (int i = 0; i < N_STR; i++) {
        size_t l = strnlen(src[i], cap[i]);
        if (l == cap[i])
            return -1;
        memcpy(p->str + off, src[i], l + 1);
        p->id.len[i] = (uint16_t)l;
        off += l + 1;
    }
    p->id.slen = (uint16_t)off;
    p->id.started = s->started;
    p->id.type = (uint8_t)s->type;
    p->id.h = (uint8_t)h;
    p->id.flags = s->stale ? ID_F_STALE : 0;
    return 0;
}

static void
copy_out(mus_map_t *m, const struct idhdr *id, const char *str, mus_identity_t *out)
{
    char *dst[N_STR] = {out->s.sid, out->s.name, out->s.domain, out->s.groups,
                        out->s.client_ip, out->s.tunnel};
    const struct he_read *he = &m->he[id->h];
    const struct hname *hn;

    for (int i = 0; i < N_STR; i++) {
        memcpy(dst[i], str, (size_t)id->len[i] + 1);
        str += id->len[i] + 1;
    }
    out->s.type = (enum mus_id_type)id->type;
    out->s.started = id->started;
    hn = atomic_load_explicit(&he->name, memory_order_acquire);
    if (hn != NULL)
        memcpy(out->headend, hn->s, strlen(hn->s) + 1);   /* < MUS_HEADEND_NAME_MAX */
    else
        out->headend[0] = '\0';
    out->s.stale = (id->flags & ID_F_STALE) != 0;
    out->stale = out->s.stale || atomic_load_explicit(&he->stale, memory_order_relaxed);
}

/* Tells the observer (if any) that entry e starts or ends its session. */
static void
observe(mus_map_t *m, enum mus_map_event ev, const struct entry *e, const char *reason)
{
    mus_identity_t id;

    if (m->observer == NULL)
        return;
    copy_out(m, &e->id, e->str, &id);
    m->observer(m->observer_arg, ev, &e->addr, &id, reason);
}

void
mus_map_set_observer(mus_map_t *m, mus_map_observer_fn fn, void *arg)
{
    m->observer = fn;
    m->observer_arg = arg;
}

/* ---- limbo and reclamation ---- */

static void
retire(mus_map_t *m, struct lnode *ln)
{
    ln->lnext = NULL;
    ln->tag = m->epoch_cur + 1;     /* published by epoch_publish() */
    if (m->limbo_tail != NULL)
        m->limbo_tail->lnext = ln;
    else
        m->limbo_head = ln;
    m->limbo_tail = ln;
    m->limbo_n++;
    m->retired = true;
}

/* Ends a writer operation: everything unlinked so far is unreachable to a
 * reader that loads the new epoch (release pairs with its acquire). */
static void
epoch_publish(mus_map_t *m)
{
    if (!m->retired)
        return;
    m->retired = false;
    m->epoch_cur++;
    /* an RMW, not a store: see reader_online() (readers add 0) */
    atomic_fetch_add_explicit(&m->epoch, 1, memory_order_acq_rel);
}

/* End of every mutator. */
static void
writer_done(mus_map_t *m)
{
    epoch_publish(m);
    mus_map_reclaim(m);
}

size_t
mus_map_reclaim(mus_map_t *m)
{
    uint64_t min = UINT64_MAX;
    unsigned hw;

    if (m == NULL || m->limbo_head == NULL)
        return 0;
    /*
     * Every object in limbo was unlinked before the epoch RMW that published
     * its tag, and that RMW precedes this scan. A slot read as >= tag: that
     * reader loaded (acquire) an epoch >= tag after the unlink, so it can no
     * longer reach the object, and its earlier loads precede its slot store
     * (release, read here with acquire). A slot read as offline: see
     * reader_online().
     */
    hw = atomic_load_explicit(&m->readers_hw, memory_order_acquire);
    for (unsigned i = 0; i < hw; i++) {
        uint64_t e = atomic_load_explicit(&m->readers[i].epoch, memory_order_acquire);
        if (e != EPOCH_OFFLINE && e < min)
            min = e;
    }
    while (m->limbo_head != NULL && m->limbo_head->tag <= min) {
        struct lnode *ln = m->limbo_head;
        m->limbo_head = ln->lnext;
        free(ln);
        m->limbo_n--;
    }
    if (m->limbo_head == NULL)
        m->limbo_tail = NULL;
    return m->limbo_n;
}

/* ---- readers ---- */

/*
 * Going online is the store-buffering case: we store our slot then load
 * buckets, the writer unlinks then loads our slot; neither may miss the
 * other's store. Instead of two seq_cst fences (which TSan does not model),
 * both sides do an acq_rel RMW on the global epoch after their store (the
 * writer's bump, our fetch_add of 0). RMWs of one location are totally
 * ordered: if ours comes first, the writer's bump synchronises with it and
 * its scan sees our slot; if the writer's comes first, ours synchronises
 * with it and our loads see its unlinks. Costs one atomic RMW on a shared
 * line per online (once per blocking wait), nothing per lookup.
 */
static void
reader_online(mus_map_reader_t *r)
{
    uint64_t e = atomic_load_explicit(&r->m->epoch, memory_order_acquire);

    atomic_store_explicit(&r->epoch, e, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->m->epoch, 0, memory_order_acq_rel);
}

mus_map_reader_t *
mus_map_reader_register(mus_map_t *m)
{
    for (unsigned i = 0; i < MUS_MAP_MAX_READERS; i++) {
        mus_map_reader_t *r = &m->readers[i];
        bool expect = false;
        unsigned hw;

        if (!atomic_compare_exchange_strong(&r->used, &expect, true))
            continue;
        hw = atomic_load(&m->readers_hw);
        while (hw < i + 1 && !atomic_compare_exchange_weak(&m->readers_hw, &hw, i + 1))
            ;
        reader_online(r);
        return r;
    }
    return NULL;
}

void
mus_map_reader_unregister(mus_map_reader_t *r)
{
    if (r == NULL)
        return;
    atomic_store_explicit(&r->epoch, EPOCH_OFFLINE, memory_order_release);
    atomic_store_explicit(&r->used, false, memory_order_release);
}

void
mus_map_reader_quiescent(mus_map_reader_t *r)
{
    /* Earlier loads precede this store (release); later loads follow the
     * epoch load (acquire), so they see what the writer unlinked before it. */
    uint64_t e = atomic_load_explicit(&r->m->epoch, memory_order_acquire);

    atomic_store_explicit(&r->epoch, e, memory_order_release);
}

void
mus_map_reader_offline(mus_map_reader_t *r)
{
    atomic_store_explicit(&r->epoch, EPOCH_OFFLINE, memory_order_release);
}

void
mus_map_reader_online(mus_map_reader_t *r)
{
    reader_online(r);
}

bool
mus_map_lookup(mus_map_t *m, const mus_addr_t *addr, mus_identity_t *out)
{
    const struct entry *e;

    e = atomic_load_explicit(&m->buckets[addr_bucket(addr)], memory_order_acquire);
    while (e != NULL) {
        if (addr_eq(&e->addr, addr)) {
            copy_out(m, &e->id, e->str, out);
            return true;
        }
        e = atomic_load_explicit(&e->next, memory_order_acquire);
    }
    return false;
}

/* ---- the table (writer) ---- */

/* The link that points at addr's entry (or at NULL at the end of its chain). */
static _Atomic(struct entry *) *
find_link(mus_map_t *m, const mus_addr_t *a, struct entry **found)
{
    _Atomic(struct entry *) *link = &m->buckets[addr_bucket(a)];
    struct entry *e;

    while ((e = atomic_load_explicit(link, memory_order_relaxed)) != NULL) {
        if (addr_eq(&e->addr, a))
            break;
        link = &e->next;
    }
    *found = e;
    return link;
}

static struct entry *
entry_new(struct wsess *ws, const mus_addr_t *a)
{
    struct entry *e = malloc(sizeof(*e) + ws->id.slen);

    if (e == NULL)
        return NULL;
    atomic_init(&e->next, NULL);
    e->ws = ws;
    e->addr = *a;
    e->id = ws->id;
    memcpy(e->str, ws->str, ws->id.slen);
    return e;
}

/* Publishes n in place of old (or as a new chain head when old is NULL). */
static void
entry_publish(mus_map_t *m, _Atomic(struct entry *) *link, struct entry *old, struct entry *n)
{
    if (old != NULL) {
        atomic_store_explicit(&n->next, atomic_load_explicit(&old->next, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(link, n, memory_order_release);
        retire(m, &old->ln);
    } else {
        _Atomic(struct entry *) *head = &m->buckets[addr_bucket(&n->addr)];
        atomic_store_explicit(&n->next, atomic_load_explicit(head, memory_order_relaxed),
                              memory_order_relaxed);
        atomic_store_explicit(head, n, memory_order_release);
    }
}

static void
entry_unlink(mus_map_t *m, _Atomic(struct entry *) *link, struct entry *e)
{
    observe(m, MUS_MAP_END, e, m->op_reason ? m->op_reason : "ended");
    atomic_store_explicit(link, atomic_load_explicit(&e->next, memory_order_relaxed),
                          memory_order_release);
    retire(m, &e->ln);
    cnt_add(&m->cnt[e->id.h].entries, -1);
}

/* ---- sessions (writer) ---- */

static struct wsess *
index_find(mus_map_t *m, unsigned h, const char *sid, size_t len, uint64_t hash)
{
    for (struct wsess *ws = m->index[hash & (m->index_size - 1)]; ws != NULL; ws = ws->hnext)
        if (ws->hash == hash && ws->id.h == h && ws->id.len[STR_SID] == len &&
            memcmp(ws->str, sid, len) == 0)
            return ws;
    return NULL;
}

static void
index_grow(mus_map_t *m)
{
    size_t size = m->index_size * 2;
    struct wsess **v = calloc(size, sizeof(*v));

    if (v == NULL)
        return;   /* longer chains, still correct */
    for (size_t i = 0; i < m->index_size; i++) {
        struct wsess *ws = m->index[i], *nx;
        for (; ws != NULL; ws = nx) {
            nx = ws->hnext;
            ws->hnext = v[ws->hash & (size - 1)];
            v[ws->hash & (size - 1)] = ws;
        }
    }
    free(m->index);
    m->index = v;
    m->index_size = size;
}

static struct wsess *
wsess_new(mus_map_t *m, const struct idhdr *id, const char *str, uint64_t hash)
{
    struct wsess *ws = calloc(1, sizeof(*ws));
    struct he_write *hw = &m->hw[id->h];
    size_t b;

    if (ws == NULL)
        return NULL;
    ws->str = malloc(id->slen);
    if (ws->str == NULL) {
        free(ws);
        return NULL;
    }
    memcpy(ws->str, str, id->slen);
    ws->id = *id;
    ws->hash = hash;
    ws->addrs = ws->inl;
    ws->cap = INLINE_ADDRS;
    if (m->index_count >= m->index_size)
        index_grow(m);
    b = hash & (m->index_size - 1);
    ws->hnext = m->index[b];
    m->index[b] = ws;
    m->index_count++;
    ws->next = hw->list;
    if (hw->list != NULL)
        hw->list->prev = ws;
    hw->list = ws;
    return ws;
}

/* The session holds no address any more (ws->n == 0). */
static void
wsess_free(mus_map_t *m, struct wsess *ws)
{
    struct wsess **pp = &m->index[ws->hash & (m->index_size - 1)];
    struct he_write *hw = &m->hw[ws->id.h];

    while (*pp != ws)
        pp = &(*pp)->hnext;
    *pp = ws->hnext;
    m->index_count--;
    if (ws->prev != NULL)
        ws->prev->next = ws->next;
    else
        hw->list = ws->next;
    if (ws->next != NULL)
        ws->next->prev = ws->prev;
    if (ws->addrs != ws->inl)
        free(ws->addrs);
    free(ws->str);
    free(ws);
}

static int
wsess_reserve(struct wsess *ws, size_t n)
{
    mus_addr_t *v;

    if (n <= ws->cap)
        return 0;
    if (n > UINT32_MAX)
        return -1;
    v = malloc(n * sizeof(*v));
    if (v == NULL)
        return -1;
    memcpy(v, ws->addrs, ws->n * sizeof(*v));
    if (ws->addrs != ws->inl)
        free(ws->addrs);
    ws->addrs = v;
    ws->cap = (uint32_t)n;
    return 0;
}

static void
wsess_addr_drop(struct wsess *ws, const mus_addr_t *a)
{
    for (uint32_t i = 0; i < ws->n; i++) {
        if (addr_eq(&ws->addrs[i], a)) {
            ws->addrs[i] = ws->addrs[--ws->n];
            return;
        }
    }
}

/* Unlinks the entry of ws at its i-th address and forgets that address. */
static void
wsess_remove_at(mus_map_t *m, struct wsess *ws, uint32_t i)
{
    struct entry *e;
    _Atomic(struct entry *) *link = find_link(m, &ws->addrs[i], &e);

    if (e != NULL && e->ws == ws)   /* always, by construction */
        entry_unlink(m, link, e);
    ws->addrs[i] = ws->addrs[--ws->n];
}

/* Removes every address of ws and ws itself; returns how many. */
static size_t
wsess_drop(mus_map_t *m, struct wsess *ws)
{
    size_t n = ws->n;

    while (ws->n > 0)
        wsess_remove_at(m, ws, ws->n - 1);
    wsess_free(m, ws);
    return n;
}

static const mus_addr_t *
staged_ips(const struct staged *st)
{
    return (const mus_addr_t *)st->data;
}

static const char *
staged_str(const struct staged *st)
{
    return (const char *)st->data + st->nips * sizeof(mus_addr_t);
}

static bool
staged_has(const struct staged *st, const mus_addr_t *a)
{
    return addr_in(a, staged_ips(st), st->nips);
}

/* Snapshot context of apply_session(); NULL for a live add. While a snapshot
 * is applied no session is freed (a staged record may point to it): pass 3
 * of mus_map_snapshot_end() frees those left without an address. */
struct snapctx {
    uint64_t gen;
    const struct staged *rec;
};

/*
 * Sets session (id->h, sid) to hold the addresses ips (as far as conflicts
 * allow). ws is that session if the caller knows it, else NULL. Returns the
 * number it holds, or -1 (bad argument, out of memory; the map stays
 * consistent, some addresses may be missing).
 */
static int
apply_session(mus_map_t *m, const struct idhdr *id, const char *str, const mus_addr_t *ips,
              size_t n, const struct snapctx *sc, struct wsess *ws)
{
    unsigned h = id->h;
    uint64_t hash = sess_hash(h, str, id->len[STR_SID]);
    bool changed = true;
    int rc = 0, held;

    if (ws == NULL)
        ws = index_find(m, h, str, id->len[STR_SID], hash);
    if (ws == NULL) {
        ws = wsess_new(m, id, str, hash);
        if (ws == NULL)
            return -1;
    } else if (ws->id.slen == id->slen && memcmp(&ws->id, id, sizeof(*id)) == 0 &&
               memcmp(ws->str, str, id->slen) == 0) {
        changed = false;
    } else {
        char *s = malloc(id->slen);
        if (s == NULL)
            return -1;
        memcpy(s, str, id->slen);
        free(ws->str);
        ws->str = s;
        ws->id = *id;
    }
    if (sc != NULL) {
        ws->snap_gen = sc->gen;
        ws->staged = sc->rec;
    }

    /* addresses it held and no longer lists */
    m->op_reason = "address removed";
    for (uint32_t i = 0; i < ws->n;) {
        if (addr_in(&ws->addrs[i], ips, n))
            i++;
        else
            wsess_remove_at(m, ws, i);
    }
    m->op_reason = "no memory";   /* the only other way an entry goes below */
    if (wsess_reserve(ws, n) < 0) {
        rc = -1;
        n = 0;
    }

    for (size_t k = 0; k < n; k++) {
        struct entry *e, *ne;
        _Atomic(struct entry *) *link = find_link(m, &ips[k], &e);
        struct wsess *old = e != NULL ? e->ws : NULL;

        if (old == ws) {
            if (!changed)
                continue;
            ne = entry_new(ws, &ips[k]);
            if (ne != NULL) {
                entry_publish(m, link, e, ne);
            } else {   /* never leave the old identity behind */
                entry_unlink(m, link, e);
                wsess_addr_drop(ws, &ips[k]);
                rc = -1;
            }
            continue;
        }
        if (old != NULL) {
            bool wins;
            if (sc != NULL && old->id.h == h &&
                (old->snap_gen != sc->gen || !staged_has(old->staged, &ips[k]))) {
                wins = true;   /* its own headend's snapshot no longer gives it this */
            } else {
                cnt_add(&m->cnt[h].conflicts, 1);
                wins = id->started >= e->id.started;
            }
            if (!wins)
                continue;
        }
        ne = entry_new(ws, &ips[k]);
        if (ne == NULL) {
            rc = -1;
            continue;
        }
        if (old != NULL)
            observe(m, MUS_MAP_END, e, "replaced by a newer session");
        observe(m, MUS_MAP_START, ne, NULL);
        entry_publish(m, link, e, ne);
        cnt_add(&m->cnt[h].entries, 1);
        ws->addrs[ws->n++] = ips[k];
        if (old != NULL) {
            cnt_add(&m->cnt[old->id.h].entries, -1);
            wsess_addr_drop(old, &ips[k]);
            if (old->n == 0 && (sc == NULL || old->id.h != h || old->snap_gen != sc->gen))
                wsess_free(m, old);   /* no staged record points to it */
        }
    }
    held = (int)ws->n;
    m->op_reason = NULL;
    if (ws->n == 0 && sc == NULL)
        wsess_free(m, ws);
    return rc < 0 ? rc : held;
}

/* ---- map lifetime ---- */

static void
staging_clear(struct staging *stg)
{
    for (size_t i = 0; i < stg->n; i++)
        free(stg->v[i]);
    free(stg->v);
    stg->v = NULL;
    stg->n = stg->cap = 0;
    stg->active = false;
}

mus_map_t *
mus_map_new(void)
{
    size_t size = (sizeof(mus_map_t) + CACHE_LINE - 1) / CACHE_LINE * CACHE_LINE;
    size_t rsize = MUS_MAP_MAX_READERS * sizeof(mus_map_reader_t);
    mus_map_t *m = aligned_alloc(CACHE_LINE, size);

    if (m == NULL)
        return NULL;
    memset(m, 0, size);
    m->buckets = calloc(MUS_MAP_BUCKETS, sizeof(*m->buckets));
    m->readers = aligned_alloc(CACHE_LINE, rsize);
    m->index_size = INDEX_INITIAL;
    m->index = calloc(m->index_size, sizeof(*m->index));
    if (m->buckets == NULL || m->readers == NULL || m->index == NULL)
        goto fail;
    for (size_t i = 0; i < MUS_MAP_BUCKETS; i++)
        atomic_init(&m->buckets[i], NULL);
    for (unsigned i = 0; i < MUS_MAP_MAX_READERS; i++) {
        atomic_init(&m->readers[i].epoch, EPOCH_OFFLINE);
        atomic_init(&m->readers[i].used, false);
        m->readers[i].m = m;
    }
    for (unsigned h = 0; h < MUS_MAP_MAX_HEADENDS; h++) {
        atomic_init(&m->he[h].name, NULL);
        atomic_init(&m->he[h].stale, false);
    }
    m->epoch_cur = EPOCH_FIRST;
    atomic_init(&m->epoch, EPOCH_FIRST);
    atomic_init(&m->readers_hw, 0);
    return m;

fail:
    mus_map_free(m);
    return NULL;
}

void
mus_map_free(mus_map_t *m)
{
    if (m == NULL)
        return;
    for (unsigned h = 0; h < MUS_MAP_MAX_HEADENDS; h++) {
        struct wsess *ws, *nx;
        for (ws = m->hw[h].list; ws != NULL; ws = nx) {
            nx = ws->next;
            if (ws->addrs != ws->inl)
                free(ws->addrs);
            free(ws->str);
            free(ws);
        }
        staging_clear(&m->hw[h].stg);
        free(atomic_load_explicit(&m->he[h].name, memory_order_relaxed));
    }
    if (m->buckets != NULL) {
        for (size_t i = 0; i < MUS_MAP_BUCKETS; i++) {
            struct entry *e = atomic_load_explicit(&m->buckets[i], memory_order_relaxed), *nx;
            for (; e != NULL; e = nx) {
                nx = atomic_load_explicit(&e->next, memory_order_relaxed);
                free(e);
            }
        }
    }
    while (m->limbo_head != NULL) {
        struct lnode *ln = m->limbo_head;
        m->limbo_head = ln->lnext;
        free(ln);
    }
    free(m->index);
    free(m->readers);
    free(m->buckets);
    free(m);
}

/* ---- the writer's operations ---- */

int
mus_map_headend_set(mus_map_t *m, unsigned h, const char *name)
{
    size_t len = strlen(name);
    struct hname *hn, *old;

    if (h >= MUS_MAP_MAX_HEADENDS || len >= MUS_HEADEND_NAME_MAX)
        return -1;
    old = atomic_load_explicit(&m->he[h].name, memory_order_relaxed);
    if (old != NULL && strcmp(old->s, name) == 0)
        return 0;
    hn = malloc(sizeof(*hn) + len + 1);
    if (hn == NULL)
        return -1;
    memcpy(hn->s, name, len + 1);
    atomic_store_explicit(&m->he[h].name, hn, memory_order_release);
    if (old != NULL)
        retire(m, &old->ln);
    writer_done(m);
    return 0;
}

int
mus_map_add(mus_map_t *m, unsigned h, const mus_session_t *s, const mus_addr_t *ips, size_t n)
{
    struct packed p;
    int rc;

    if (h >= MUS_MAP_MAX_HEADENDS || pack_session(h, s, &p) < 0 || (n > 0 && ips == NULL))
        return -1;
    rc = apply_session(m, &p.id, p.str, ips, n, NULL, NULL);
    cnt_add(&m->cnt[h].adds, rc > 0 ? rc : 0);
    writer_done(m);
    return rc;
}

int
mus_map_del(mus_map_t *m, unsigned h, const char *sid, const mus_addr_t *ips, size_t n)
{
    size_t len;
    struct wsess *ws;
    size_t removed = 0, ignored = 0;

    if (h >= MUS_MAP_MAX_HEADENDS || sid == NULL || (n > 0 && ips == NULL))
        return -1;
    len = strnlen(sid, MUS_SID_MAX);
    ws = len < MUS_SID_MAX ? index_find(m, h, sid, len, sess_hash(h, sid, len)) : NULL;
    m->op_reason = "logout";
    if (ws == NULL) {
        ignored = n > 0 ? n : 1;
    } else if (n == 0) {
        removed = wsess_drop(m, ws);
    } else {
        for (size_t k = 0; k < n; k++) {
            uint32_t i = 0;
            while (i < ws->n && !addr_eq(&ws->addrs[i], &ips[k]))
                i++;
            if (i < ws->n) {
                wsess_remove_at(m, ws, i);
                removed++;
            } else {
                ignored++;
            }
        }
        if (ws->n == 0)
            wsess_free(m, ws);
    }
    m->op_reason = NULL;
    cnt_add(&m->cnt[h].dels, (int64_t)removed);
    cnt_add(&m->cnt[h].ignored_dels, (int64_t)ignored);
    writer_done(m);
    return (int)removed;
}

void
mus_map_snapshot_begin(mus_map_t *m, unsigned h)
{
    if (h >= MUS_MAP_MAX_HEADENDS)
        return;
    staging_clear(&m->hw[h].stg);
    m->hw[h].stg.active = true;
}

int
mus_map_snapshot_add(mus_map_t *m, unsigned h, const mus_session_t *s, const mus_addr_t *ips,
                     size_t n)
{
    struct packed p;
    struct staging *stg;
    struct staged *st;

    if (h >= MUS_MAP_MAX_HEADENDS || !m->hw[h].stg.active || n > UINT32_MAX ||
        (n > 0 && ips == NULL) || pack_session(h, s, &p) < 0)
        return -1;
    stg = &m->hw[h].stg;
    if (stg->n == stg->cap) {
        size_t cap = stg->cap ? stg->cap * 2 : STAGING_INITIAL;
        struct staged **v = realloc(stg->v, cap * sizeof(*v));
        if (v == NULL)
            return -1;
        stg->v = v;
        stg->cap = cap;
    }
    st = malloc(sizeof(*st) + n * sizeof(mus_addr_t) + p.id.slen);
    if (st == NULL)
        return -1;
    st->ws = NULL;
    st->hash = sess_hash(h, p.str, p.id.len[STR_SID]);
    st->id = p.id;
    st->nips = (uint32_t)n;
    if (n > 0)
        memcpy(st->data, ips, n * sizeof(mus_addr_t));
    memcpy(st->data + n * sizeof(mus_addr_t), p.str, p.id.slen);
    stg->v[stg->n++] = st;
    return 0;
}

/*
 * Applying 100 000 sessions is bound by memory latency (index, session,
 * bucket and entry are each a cache miss), so both passes prefetch a few
 * sessions ahead, in two stages: first what the record points to directly,
 * then what that points to.
 */
static void
prefetch_mark(mus_map_t *m, struct staging *stg, size_t i)
{
    if (i + 2 * PREFETCH_AHEAD < stg->n)
        __builtin_prefetch(&m->index[stg->v[i + 2 * PREFETCH_AHEAD]->hash & (m->index_size - 1)]);
    if (i + PREFETCH_AHEAD < stg->n) {
        const struct staged *st = stg->v[i + PREFETCH_AHEAD];
        const struct wsess *ws = m->index[st->hash & (m->index_size - 1)];
        if (ws != NULL)
            __builtin_prefetch(ws);
    }
}

static void
prefetch_apply(mus_map_t *m, struct staging *stg, size_t i)
{
    if (i + 2 * PREFETCH_AHEAD < stg->n) {
        const struct staged *st = stg->v[i + 2 * PREFETCH_AHEAD];
        if (st->ws != NULL)
            __builtin_prefetch(st->ws);
        for (uint32_t k = 0; k < st->nips; k++)
            __builtin_prefetch(&m->buckets[addr_bucket(&staged_ips(st)[k])]);
    }
    if (i + PREFETCH_AHEAD < stg->n) {
        const struct staged *st = stg->v[i + PREFETCH_AHEAD];
        if (st->ws != NULL)
            __builtin_prefetch(st->ws->str);
        for (uint32_t k = 0; k < st->nips; k++) {
            const struct entry *e = atomic_load_explicit(
                &m->buckets[addr_bucket(&staged_ips(st)[k])], memory_order_relaxed);
            if (e != NULL)
                __builtin_prefetch(e);
        }
    }
}

void
mus_map_snapshot_end(mus_map_t *m, unsigned h)
{
    struct staging *stg;
    struct snapctx sc;
    struct wsess *ws, *nx;

    if (h >= MUS_MAP_MAX_HEADENDS || !m->hw[h].stg.active)
        return;
    stg = &m->hw[h].stg;
    sc.gen = ++m->snap_gen;
    /* 1. mark the live sessions the snapshot keeps, so conflicts with them
     *    follow the usual rule and the others yield at once */
    for (size_t i = 0; i < stg->n; i++) {
        struct staged *st = stg->v[i];
        prefetch_mark(m, stg, i);
        ws = index_find(m, h, staged_str(st), st->id.len[STR_SID], st->hash);
        st->ws = ws;
        if (ws != NULL) {
            ws->snap_gen = sc.gen;
            ws->staged = st;
        }
    }
    /* 2. apply each session: replacements and insertions, one by one; no
     *    session is freed here, so st->ws stays valid */
    for (size_t i = 0; i < stg->n; i++) {
        struct staged *st = stg->v[i];
        prefetch_apply(m, stg, i);
        sc.rec = st;
        apply_session(m, &st->id, staged_str(st), staged_ips(st), st->nips, &sc, st->ws);
    }
    /* 3. what the snapshot does not have, and sessions left without address */
    m->op_reason = "not in the headend's snapshot";
    for (ws = m->hw[h].list; ws != NULL; ws = nx) {
        nx = ws->next;
        ws->staged = NULL;
        if (ws->snap_gen != sc.gen)
            wsess_drop(m, ws);
        else if (ws->n == 0)
            wsess_free(m, ws);
    }
    m->op_reason = NULL;
    staging_clear(stg);
    cnt_add(&m->cnt[h].snapshots, 1);
    writer_done(m);
}

void
mus_map_snapshot_abort(mus_map_t *m, unsigned h)
{
    if (h >= MUS_MAP_MAX_HEADENDS)
        return;
    staging_clear(&m->hw[h].stg);
}

void
mus_map_headend_lost(mus_map_t *m, unsigned h, int64_t now)
{
    if (h >= MUS_MAP_MAX_HEADENDS)
        return;
    if (!atomic_load_explicit(&m->he[h].stale, memory_order_relaxed))
        m->hw[h].since = now;
    atomic_store_explicit(&m->he[h].stale, true, memory_order_relaxed);
}

void
mus_map_headend_connected(mus_map_t *m, unsigned h)
{
    if (h >= MUS_MAP_MAX_HEADENDS)
        return;
    atomic_store_explicit(&m->he[h].stale, false, memory_order_relaxed);
}

size_t
mus_map_expire(mus_map_t *m, unsigned h, int64_t now, int64_t grace_s)
{
    size_t dropped = 0;
    struct wsess *ws, *nx;

    if (h >= MUS_MAP_MAX_HEADENDS || !atomic_load_explicit(&m->he[h].stale, memory_order_relaxed))
        return 0;
    if (grace_s > 0 && now - m->hw[h].since < grace_s)
        return 0;
    m->op_reason = "headend unreachable past the grace period";
    for (ws = m->hw[h].list; ws != NULL; ws = nx) {
        nx = ws->next;
        dropped += wsess_drop(m, ws);
    }
    m->op_reason = NULL;
    cnt_add(&m->cnt[h].expired, (int64_t)dropped);
    writer_done(m);
    return dropped;
}

/* ---- inspection ---- */

void
mus_map_counters(mus_map_t *m, int h, mus_map_counters_t *out)
{
    memset(out, 0, sizeof(*out));
    for (int i = 0; i < MUS_MAP_MAX_HEADENDS; i++) {
        const struct he_counters *c = &m->cnt[i];
        uint64_t entries;

        if (h >= 0 && h != i)
            continue;
        entries = atomic_load_explicit(&c->entries, memory_order_relaxed);
        out->entries += entries;
        if (atomic_load_explicit(&m->he[i].stale, memory_order_relaxed))
            out->stale_entries += entries;
        out->adds += atomic_load_explicit(&c->adds, memory_order_relaxed);
        out->dels += atomic_load_explicit(&c->dels, memory_order_relaxed);
        out->ignored_dels += atomic_load_explicit(&c->ignored_dels, memory_order_relaxed);
        out->conflicts += atomic_load_explicit(&c->conflicts, memory_order_relaxed);
        out->snapshots += atomic_load_explicit(&c->snapshots, memory_order_relaxed);
        out->expired += atomic_load_explicit(&c->expired, memory_order_relaxed);
    }
}

void
mus_map_walk(mus_map_t *m, mus_map_walk_cb cb, void *arg)
{
    mus_identity_t id;

    for (size_t i = 0; i < MUS_MAP_BUCKETS; i++) {
        /* acquire, as in a lookup: the walk is also safe from an online reader */
        const struct entry *e = atomic_load_explicit(&m->buckets[i], memory_order_acquire);
        for (; e != NULL; e = atomic_load_explicit(&e->next, memory_order_acquire)) {
            copy_out(m, &e->id, e->str, &id);
            if (cb(arg, &e->addr, &id) != 0)
                return;
        }
    }
}
