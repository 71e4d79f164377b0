/*
 * mus/headend_store.h: the session store and event journal of mus-headend.
 * Sessions are keyed by sid; every address belongs to at most one session (a
 * session that claims an address held by another takes it: the other loses
 * it with a "del", then the claimant gets its "add"/"upd", so del+add work in
 * either order). Each change is appended to a ring journal of formatted
 * MUS/1 event lines (add/upd/del with consecutive seq) that subscribed
 * proxies read at their own pace. No I/O, single-threaded.
 */
#ifndef MUS_MUS_HEADEND_STORE_H
#define MUS_MUS_HEADEND_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Where a session came from; a reconciliation (sessions file reload, occtl
 * poll) only removes sessions of its own origin. */
enum hs_origin {
    HS_ORIGIN_FILE = 1,      /* --sessions file */
    HS_ORIGIN_OCSERV = 2,    /* connect-script feed and occtl polls */
    HS_ORIGIN_RADIUS = 3,    /* RADIUS accounting (mus/headend_radius.c) */
    HS_ORIGIN_STRONGSWAN = 4, /* updown feed and swanctl polls */
    HS_ORIGIN_N
};

#define HS_TAG_MAX 64        /* a feed's grouping of sessions (the RADIUS NAS) */

typedef struct hs_store hs_store_t;

/* One stored session; read-only for callers. */
typedef struct hs_entry {
    mus_session_t s;
    mus_addr_t ips[MUS_MAX_IPS];
    size_t n_ips;
    enum hs_origin origin;
    uint64_t touched;        /* caller's clock at the last connect */
    uint64_t gen;            /* reconciliation generation that last saw it */
    char tag[HS_TAG_MAX];    /* hs_store_set_feed: e.g. the NAS; "" if none */
    uint32_t interim_s;      /* expected refresh interval; 0: never goes stale */
    uint64_t stale_since;    /* caller's clock when marked stale (s.stale) */
    struct hs_entry *next;   /* hash chain (private) */
} hs_entry_t;

/* journal_cap: events kept for resume (>= 1). NULL on allocation failure. */
hs_store_t *hs_store_new(size_t journal_cap);
void hs_store_free(hs_store_t *st);

/* Adds or updates a session. soft: if the sid exists with the same
 * addresses, type and name, nothing is emitted (occtl polls carry slightly
 * different details than the connect-script). Returns the number of events
 * appended, or -1 (allocation or formatting failure; the store is unchanged
 * for that session). */
int hs_store_connect(hs_store_t *st, const mus_session_t *s, const mus_addr_t *ips, size_t n,
                     enum hs_origin origin, uint64_t now, bool soft);

/* Removes a session: one "del" with all its addresses. 1 if it existed, 0 if
 * unknown, -1 on failure. */
int hs_store_disconnect(hs_store_t *st, const char *sid, const char *reason);

/* Reconciliation: begin() starts a generation for origin; connects of that
 * origin made afterwards mark their sessions; sweep() deletes (reason
 * "lost") the sessions of that origin not marked and last touched before
 * touched_before. Returns the number of sessions deleted. */
void hs_store_reconcile_begin(hs_store_t *st, enum hs_origin origin);
size_t hs_store_reconcile_sweep(hs_store_t *st, enum hs_origin origin, uint64_t touched_before);

/* The session with that sid, or NULL; valid until the next change. */
const hs_entry_t *hs_store_find(hs_store_t *st, const char *sid);

/* Feed details of an existing session (no event): its tag and the interval
 * at which the feed refreshes it (0 = no refresh expected). -1 if unknown. */
int hs_store_set_feed(hs_store_t *st, const char *sid, const char *tag, uint32_t interim_s);

/* Removes every session of origin whose tag is tag (one "del" each, with
 * reason). Returns the number removed. */
size_t hs_store_disconnect_tag(hs_store_t *st, enum hs_origin origin, const char *tag,
                               const char *reason);

/* Idle sessions: a session with an interval that was not refreshed (a
 * connect) for factor x interval is marked stale (an "upd" with
 * "stale":true); one stale for grace_ms is removed ("del", reason "idle").
 * A connect that refreshes a stale session clears the mark (an "upd").
 * Adds to *marked and *removed. */
void hs_store_stale_sweep(hs_store_t *st, uint64_t now, unsigned factor, uint64_t grace_ms,
                          size_t *marked, size_t *removed);

/* Sessions marked stale now. */
size_t hs_store_stale_count(const hs_store_t *st);

size_t hs_store_count(const hs_store_t *st);

/* Calls cb for every session; stops early if cb returns non-zero. The store
 * must not change during the walk. */
typedef int (*hs_walk_cb)(void *arg, const hs_entry_t *e);
void hs_store_walk(const hs_store_t *st, hs_walk_cb cb, void *arg);

/* The last seq (0 before any event), and the oldest seq still in the
 * journal (last + 1 when it is empty). */
uint64_t hs_store_seq(const hs_store_t *st);
uint64_t hs_store_oldest(const hs_store_t *st);

/* The formatted line of event seq (with its '\n'); false if not in the
 * journal any more (or not yet). */
bool hs_store_event(const hs_store_t *st, uint64_t seq, const char **line, size_t *len);

#endif
