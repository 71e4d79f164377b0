/*
 * mus/client.h: the proxy side of MUS/1. One thread (the MUS thread, the only
 * writer of the map) runs one session per configured headend: TLS client
 * with full certificate verification (CA file and expected name, or a
 * SHA-256 pin of the public key), the HTTP/1.1 Upgrade to mus/1, mutual HMAC
 * authentication bound to the TLS session, subscribe with resume (epoch,
 * seq) or a full snapshot, live events applied to the map, acks, ping/pong
 * and a dead-peer timeout. A session that is lost, refused or fails is
 * retried every reconnect_interval, with the reason logged and kept in the
 * status; an active/standby pair is an ordered address list (503 from a
 * standby: the next address). While a headend is down its entries are stale
 * for `grace`, then dropped. It knows nothing of HTTP proxying.
 */
#ifndef MUS_MUS_CLIENT_H
#define MUS_MUS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "map.h"

#define MUS_FEED_MAX_ADDRS   4
#define MUS_ERROR_MAX        256

typedef struct mus_headend_config {
    char name[MUS_HEADEND_NAME_MAX];           /* e.g. "asa-1" */
    size_t n_addrs;
    struct sockaddr_storage addrs[MUS_FEED_MAX_ADDRS];  /* numeric, in order */
    socklen_t addr_lens[MUS_FEED_MAX_ADDRS];
    char addr_text[MUS_FEED_MAX_ADDRS][64];    /* "192.0.2.1:11999" for logs */
    char ca_file[4096];                        /* "" if pin is used */
    char pin_sha256[65];                       /* hex SHA-256 of the SPKI, "" if ca_file */
    char cert_name[256];                       /* expected DNS name or IP in the certificate */
    char password_file[4096];                  /* read at each connect; never logged */
    char client_id[64];                        /* our name towards the headend */
} mus_headend_config_t;

typedef struct mus_feed_config {
    mus_headend_config_t headends[MUS_MAP_MAX_HEADENDS];
    size_t n_headends;
    uint32_t reconnect_interval_ms;            /* default 60000 */
    uint32_t grace_ms;                         /* default 300000; 0 = drop at once */
} mus_feed_config_t;

enum mus_session_state {
    MUS_SESSION_IDLE = 0,      /* waiting for the next attempt */
    MUS_SESSION_CONNECTING,    /* TCP connect */
    MUS_SESSION_TLS,           /* TLS handshake */
    MUS_SESSION_UPGRADE,       /* GET /mus/v1 sent, waiting for 101 */
    MUS_SESSION_AUTH,          /* hello/auth exchange */
    MUS_SESSION_SYNCING,       /* subscribed, snapshot or replay in progress */
    MUS_SESSION_ESTABLISHED,   /* in sync, live events */
};

const char *mus_session_state_str(enum mus_session_state s);

typedef struct mus_headend_status {
    char name[MUS_HEADEND_NAME_MAX];
    enum mus_session_state state;
    char address[64];          /* address of the current/last attempt */
    int64_t connected_since;   /* unix s, 0 if not established */
    int64_t last_event;        /* unix s of the last add/upd/del/snap applied, 0 if none */
    int64_t last_attempt;      /* unix s */
    int64_t next_attempt;      /* unix s, when IDLE */
    uint64_t events_applied;
    uint64_t reconnects;       /* sessions opened after the first */
    uint64_t snapshots;
    uint64_t resumes;
    char epoch[64];
    uint64_t seq;
    char last_error[MUS_ERROR_MAX];  /* "" if none */
    uint64_t entries;          /* addresses currently mapped from this headend */
    uint64_t stale_entries;
} mus_headend_status_t;

typedef struct mus_feed mus_feed_t;

/* Creates the feed for map (which it will write). No thread yet. */
mus_feed_t *mus_feed_new(mus_map_t *map, const mus_feed_config_t *cfg, char *err, size_t errlen);
/* Starts the MUS thread; 0 or -errno. */
int mus_feed_start(mus_feed_t *f);
/* Thread-safe: applies a new configuration (headends added, removed or
 * changed are reconnected; unchanged sessions stay up). */
void mus_feed_reconfigure(mus_feed_t *f, const mus_feed_config_t *cfg);
/* Thread-safe: copies the status of up to max headends; returns the count. */
size_t mus_feed_status(mus_feed_t *f, mus_headend_status_t *out, size_t max);
/* Stops the thread (sessions closed) and waits for it. */
void mus_feed_stop(mus_feed_t *f);
void mus_feed_free(mus_feed_t *f);   /* after stop; NULL allowed */

#endif
