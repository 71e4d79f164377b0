/*
 * mus/map.h: the IP -> identity map fed by the headends (MUS/1) and read by
 * every proxy worker on every request.
 *
 * Concurrency: exactly one writer thread (the MUS thread) calls the
 * mus_map_* mutators; any number of reader threads call mus_map_lookup()
 * without taking a lock. Readers register once (mus_map_reader_register) and
 * report quiescent states (mus_map_reader_quiescent, e.g. once per event
 * loop iteration, and offline/online around blocking waits): memory the
 * writer unlinks is freed only after every registered reader has passed a
 * quiescent state (QSBR, as in userspace RCU). A lookup copies the identity
 * out, so nothing it returns points into the map.
 *
 * Rules (docs/mus-protocol.md): a delete removes an address only if it still
 * belongs to the same session id of the same headend; two sessions claiming
 * one address: the newest (larger `started`, then the later arrival) wins and
 * the conflict is counted; a headend's snapshot is staged beside the live
 * entries and applied at its end, so the map is never briefly empty; a lost
 * headend's entries are marked stale and dropped after its grace period.
 *
 * It does no I/O, knows nothing of TLS, HTTP or the wire format.
 */
#ifndef MUS_MUS_MAP_H
#define MUS_MUS_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define MUS_MAP_MAX_HEADENDS   32
#define MUS_MAP_MAX_READERS    256
#define MUS_MAP_BUCKETS        (1u << 17)  /* fixed; 100k entries -> short chains */
#define MUS_NAME_MAX           256         /* user/machine name incl. NUL */
#define MUS_DOMAIN_MAX         64
#define MUS_SID_MAX            128
#define MUS_GROUPS_MAX         512         /* all groups, comma-separated, incl. NUL */
#define MUS_HEADEND_NAME_MAX   64

enum mus_id_type {
    MUS_ID_USER = 0,
    MUS_ID_MACHINE,
    MUS_ID_DEVICE,
};

const char *mus_id_type_str(enum mus_id_type t);
/* "user" / "machine" / "device" -> 0, else -1. */
int mus_id_type_parse(const char *s, enum mus_id_type *out);

/* One VPN session as the headend describes it. */
typedef struct mus_session {
    char sid[MUS_SID_MAX];
    enum mus_id_type type;
    char name[MUS_NAME_MAX];
    char domain[MUS_DOMAIN_MAX];
    char groups[MUS_GROUPS_MAX];     /* "eng,sales" */
    int64_t started;                 /* unix seconds */
    char client_ip[48];              /* public address of the VPN client, "" if unknown */
    char tunnel[16];                 /* "ssl", "ipsec", "" */
    bool stale;                      /* the headend marked it: no Interim-Update for too long */
} mus_session_t;

/* What a lookup returns (a copy). */
typedef struct mus_identity {
    mus_session_t s;
    char headend[MUS_HEADEND_NAME_MAX];
    bool stale;                      /* its headend is disconnected (grace period), or
                                      * the headend marked the session stale (s.stale) */
} mus_identity_t;

/* A map address: IPv4 or IPv6, 16 bytes; IPv4 is stored as ::ffff:a.b.c.d. */
typedef struct mus_addr {
    uint8_t b[16];
} mus_addr_t;

int mus_addr_parse(const char *text, mus_addr_t *out);        /* 0 or -1 */
void mus_addr_from_sockaddr(const struct sockaddr *sa, mus_addr_t *out);
void mus_addr_format(const mus_addr_t *a, char *buf, size_t len); /* >= 48 bytes */

typedef struct mus_map mus_map_t;
typedef struct mus_map_reader mus_map_reader_t;

typedef struct mus_map_counters {
    uint64_t entries;        /* addresses mapped now */
    uint64_t stale_entries;  /* of which belong to a disconnected headend */
    uint64_t adds, dels, ignored_dels, conflicts, snapshots, expired;
} mus_map_counters_t;

mus_map_t *mus_map_new(void);
/* Frees everything. No reader may be inside a lookup. NULL allowed. */
void mus_map_free(mus_map_t *m);

/* ---- readers (any thread) ---- */

/* Registers the calling thread as a reader; NULL if MUS_MAP_MAX_READERS are taken. */
mus_map_reader_t *mus_map_reader_register(mus_map_t *m);
void mus_map_reader_unregister(mus_map_reader_t *r);
/* The reader holds no reference into the map now. */
void mus_map_reader_quiescent(mus_map_reader_t *r);
/* Before a blocking wait (no lookups until online) and after it. */
void mus_map_reader_offline(mus_map_reader_t *r);
void mus_map_reader_online(mus_map_reader_t *r);

/* Copies the identity of addr into *out; false if unmapped. Lock-free. The
 * calling thread must be a registered, online reader. */
bool mus_map_lookup(mus_map_t *m, const mus_addr_t *addr, mus_identity_t *out);

/* ---- the writer (one thread) ---- */

/* Declares headend h (index < MUS_MAP_MAX_HEADENDS) with its name. */
int mus_map_headend_set(mus_map_t *m, unsigned h, const char *name);

/* Adds or updates a session on the given addresses. Returns the number of
 * addresses it now holds (a newer session elsewhere may keep some). */
int mus_map_add(mus_map_t *m, unsigned h, const mus_session_t *s, const mus_addr_t *ips, size_t n);

/* Removes the addresses that still belong to (h, sid); with n == 0 every
 * address of that session. Returns how many were removed. */
int mus_map_del(mus_map_t *m, unsigned h, const char *sid, const mus_addr_t *ips, size_t n);

/* Snapshot of headend h: begin, add sessions, end. At end, the staged set
 * replaces everything h had (entries absent from it disappear only then).
 * abort drops the staging area and leaves the live entries as they were. */
void mus_map_snapshot_begin(mus_map_t *m, unsigned h);
int mus_map_snapshot_add(mus_map_t *m, unsigned h, const mus_session_t *s, const mus_addr_t *ips,
                         size_t n);
void mus_map_snapshot_end(mus_map_t *m, unsigned h);
void mus_map_snapshot_abort(mus_map_t *m, unsigned h);

/* Headend h lost its session at now (unix seconds): its entries become
 * stale. connected clears the mark. */
void mus_map_headend_lost(mus_map_t *m, unsigned h, int64_t now);
void mus_map_headend_connected(mus_map_t *m, unsigned h);

/* Drops the entries of headends stale for longer than grace_s (0: at once).
 * Returns the number of entries dropped. Call periodically. */
size_t mus_map_expire(mus_map_t *m, unsigned h, int64_t now, int64_t grace_s);

/* Frees memory no reader can still see. Call periodically (and it is called
 * by the mutators); returns the number of objects still waiting. */
size_t mus_map_reclaim(mus_map_t *m);

/* Counters (writer thread, or approximate from others). h = -1: all headends. */
void mus_map_counters(mus_map_t *m, int h, mus_map_counters_t *out);

/* Calls cb for every entry. Stops early if cb returns non-zero. From the
 * writer thread the walk is a consistent picture; from a registered, online
 * reader (the control socket) it is lock-free like a lookup: every entry it
 * reports was live at some instant of the walk, and the reader must not go
 * quiescent inside it. */
typedef int (*mus_map_walk_cb)(void *arg, const mus_addr_t *addr, const mus_identity_t *id);

/* ---- the history (writer thread) ---- */

enum mus_map_event {
    MUS_MAP_START = 0,   /* an address now belongs to this session */
    MUS_MAP_END,         /* it no longer does; reason says why */
};

/* Told of every address a session gains or loses, on the writer thread,
 * inside the change (it must not call back into the map). reason is NULL
 * for a start; for an end: "logout", "replaced by a newer session", "not
 * in the headend's snapshot", "headend unreachable past the grace period",
 * "address removed". A session whose details change keeps its addresses
 * and causes no event. */
typedef void (*mus_map_observer_fn)(void *arg, enum mus_map_event ev, const mus_addr_t *addr,
                                    const mus_identity_t *id, const char *reason);
void mus_map_set_observer(mus_map_t *m, mus_map_observer_fn fn, void *arg);
void mus_map_walk(mus_map_t *m, mus_map_walk_cb cb, void *arg);

#endif
