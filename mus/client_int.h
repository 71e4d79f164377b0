/*
 * mus/client_int.h: the inside of the MUS/1 feed client (client.h), shared
 * by the files that implement it and by nothing else:
 *   client.c        the feed: configuration checks, the MUS thread and its
 *                   wake-ups, session objects (new, replace, retire), loss
 *                   and retry every reconnect_interval, the stale grace, status;
 *   client_io.c     one attempt's connection: TCP connect, the TLS context,
 *                   certificate verification (CA file or pin) and handshake,
 *                   reading and writing with the TLS want flags, loop interest;
 *   client_proto.c  MUS/1 on that connection (docs/mus-protocol.md): the
 *                   Upgrade, mutual authentication, subscribe, snapshot and
 *                   events applied to the map, ping, ack, dead-peer timers;
 *   feed_radius.c   the local RADIUS headend (feed_radius.h): a listener and
 *                   session store on the MUS thread, in a map slot of its own;
 *   client_test.c   the connection test (hetest.h): one blocking attempt on
 *                   its caller's thread with the parts above (TLS context,
 *                   peer name, pin, Upgrade request), outside the feed.
 * Everyone else uses client.h. Everything here runs in the MUS thread except
 * what client.c says otherwise.
 */
#ifndef MUS_MUS_CLIENT_INT_H
#define MUS_MUS_CLIENT_INT_H

#include "client.h"

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>

#include "../common/loop.h"
#include "../common/tlsio.h"
#include "feed_radius.h"
#include "proto.h"

#define SESSION_PHASE_MS       10000u  /* connect, TLS, Upgrade, auth: each */
#define SESSION_TICK_MS        1000u   /* expiry, reclaim, status counters */
#define SESSION_RESUME_WAIT_MS 3000u   /* resume accepted if no pong/snapshot by then */
#define SESSION_UPGRADE_MAX    8192    /* bytes of the 101 response head */
#define SESSION_PASSWORD_MAX   1024
#define SESSION_RBUF_CAP       (MUS_FRAME_MAX + 2)
#define SESSION_TLS12_CIPHERS  "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"

typedef struct feed_session mus_sess_t;

/* The per-headend session. Valid in every state: feed, h, cfg, ctx, the
 * timers, the position (have_pos, epoch, seq) and the key cache. Valid only
 * outside IDLE: fd (>= 0), io registered. Valid from TLS on: ssl. */
struct feed_session {
    mus_feed_t *feed;
    unsigned h;                  /* the map's headend index */
    size_t pos;                  /* index in the configuration (status order) */
    mus_headend_config_t cfg;
    char cfg_error[MUS_ERROR_MAX]; /* non-empty: never attempted */
    uint8_t pin[32];
    bool has_pin;
    SSL_CTX *ctx;

    enum mus_session_state state;
    size_t addr_idx;
    int fd;
    SSL *ssl;
    tlsio_want_t want;           /* what the last SSL_read/SSL_write waits for */
    bool pin_mismatch;           /* set by the verify callback */
    loop_io_t io;
    loop_timer_t timer;          /* phase timeout, or the next attempt when IDLE */
    loop_timer_t ping_timer;     /* PING_AFTER without sending */
    loop_timer_t dead_timer;     /* DEAD_AFTER without a frame */
    loop_timer_t ack_timer;      /* ack of applied events pending */

    char *rbuf;                  /* received bytes not yet consumed */
    size_t rlen;
    char *wbuf;                  /* bytes to send, from woff to wlen */
    size_t wlen, woff, wcap;

    /* authentication of the current attempt */
    char server_id[MUS_ID_MAX];
    uint8_t nonce[MUS_NONCE_LEN], cnonce[MUS_NONCE_LEN], cb[MUS_CB_LEN];
    bool auth_sent;

    /* derived-key cache: one entry, keyed by salt, iterations and a keyed
     * fingerprint of the password (so a changed password file is noticed) */
    bool key_valid;
    uint8_t key[MUS_KEY_LEN];
    uint8_t key_salt[MUS_SALT_MAX];
    size_t key_salt_len;
    uint32_t key_iter;
    uint8_t key_pwfp[32];

    /* synchronisation */
    bool have_pos;               /* epoch/seq describe the entries we hold */
    char epoch[MUS_EPOCH_MAX];
    uint64_t seq;
    uint64_t acked;              /* last seq acked on this connection */
    bool in_snapshot;
    char snap_epoch[MUS_EPOCH_MAX];
    uint64_t snap_seq, snap_count, snap_got;
    bool resubscribed;           /* after a gap: leftovers > seq+1 are ignored */
    uint64_t pings_sent, pongs_got;
    uint64_t barrier;            /* SYNCING ends when pongs_got reaches this (0: none) */

    bool map_connected;          /* headend_connected called, headend_lost not yet */
    int64_t lost_at;             /* unix s of the last loss, 0 if none */
    bool ever_established;
    bool removed;                /* closed for good, waiting for the deferred free */

    mus_headend_status_t st;     /* the thread's copy; published under feed->mu */
};

struct mus_feed {
    mus_map_t *map;
    loop_t *loop;
    int wake_fd;
    loop_io_t wake_io;
    loop_timer_t tick;
    pthread_t thread;
    bool started, joined;
    bool running;                /* MUS thread: leave the loop when false */
    uint8_t fp_secret[32];       /* keys the password fingerprints */

    /* owned by the MUS thread once started */
    uint32_t reconnect_ms, grace_ms;
    mus_sess_t *slots[MUS_MAP_MAX_HEADENDS];  /* indexed by map headend index */
    struct feed_radius *radius;  /* the local RADIUS headend, or NULL (feed_radius.c) */

    /* shared with other threads, under mu */
    pthread_mutex_t mu;
    mus_feed_config_t *pending;
    bool stop;
    mus_headend_status_t pub[MUS_MAP_MAX_HEADENDS];
    size_t n_pub;
    mus_radius_config_t *radius_pending;  /* a reload for the RADIUS listener */
    bool radius_stop;                     /* close its sockets */
    bool has_radius;                      /* radius_pub is meaningful */
    mus_radius_status_t radius_pub;
};

static inline int64_t
wall_now(void)
{
    return (int64_t)time(NULL);
}

/* client.c: status and failure */

/* Any thread: wakes the MUS thread to read what is pending under mu. */
void mus_feed_wake(mus_feed_t *f);

/* Copies the session's status to the published array (under feed->mu). */
void mus_sess_publish(mus_sess_t *s);
/* Reads the session's entry counts from the map into its status. */
void mus_sess_refresh_counters(mus_sess_t *s);
/* Ends the current attempt: the reason goes to the log and the status, the
 * connection is closed, the map told, and the next attempt scheduled (the
 * next address at once with next_addr, if there is one, else after
 * reconnect_interval from the first address). */
void mus_sess_fail(mus_sess_t *s, bool next_addr, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* feed_radius.c: the local RADIUS headend (every one a no-op without it) */

/* True if map slot h is the RADIUS listener's (no session may take it). */
bool mus_radius_owns_slot(const mus_feed_t *f, unsigned h);
/* Once a second: the stale sweep, the grace of a stopped listener, the
 * status. now is unix seconds. */
void mus_radius_tick(mus_feed_t *f, int64_t now);
/* A reload (cfg, taken) or a stop (stop, or cfg->n_listen == 0) asked for
 * by another thread. */
void mus_radius_wake(mus_feed_t *f, mus_radius_config_t *cfg, bool stop);
/* The MUS thread ends: the sockets close, the entries become stale. */
void mus_radius_close(mus_feed_t *f);
/* mus_feed_free: whatever is left. */
void mus_radius_free(mus_feed_t *f);

/* client.c: a pin_sha256 (64 hex digits) as bytes; 0 or -1. */
int mus_sess_parse_pin(const char *hex, uint8_t out[32]);

/* client_io.c: the connection */

/* The name the headend's certificate must carry (cert_name, as DNS name or
 * IP address) and the SNI, on ssl; 0, or -1 (OpenSSL's error queue). */
int mus_sess_ssl_peer(SSL *ssl, const mus_headend_config_t *c);

/* The TLS client context for a headend (its CA file or none, our verify
 * callback); NULL with a message in err. */
SSL_CTX *mus_sess_ssl_ctx(const mus_headend_config_t *c, char *err, size_t errlen);
/* Starts an attempt at the current address (TCP connect, non-blocking). */
void mus_sess_start_attempt(mus_sess_t *s);
/* Closes the connection of the current attempt (nothing else); polite
 * sends a TLS close_notify first if the handshake was done. */
void mus_sess_close_conn(mus_sess_t *s, bool polite);
/* Queues one frame and tries to send it; re-arms the ping timer. 0, or -1
 * after the session failed. */
int mus_sess_send_frame(mus_sess_t *s, const mus_frame_t *f);
/* Queues raw bytes (the Upgrade request) and tries to send them. 0 or -1
 * after the session failed. */
int mus_sess_send_raw(mus_sess_t *s, const char *data, size_t len);
/* Asks the loop for the events the state and the want flags need. */
void mus_sess_update_interest(mus_sess_t *s);
void mus_sess_io_cb(loop_t *loop, loop_io_t *io, uint32_t events);

/* client_proto.c: MUS/1 */

/* The Upgrade request to address addr_idx of c into req: its length, or -1. */
int mus_sess_upgrade_request(const mus_headend_config_t *c, size_t addr_idx, char *req, size_t cap);
/* The TLS handshake is done: sends the Upgrade request (state UPGRADE). */
void mus_sess_send_upgrade(mus_sess_t *s);
/* New bytes in rbuf. 0 (more may come), or -1 after the session failed. */
int mus_sess_on_input(mus_sess_t *s);
/* In sync (a snapshot ended or a resume was accepted): ESTABLISHED. */
void mus_sess_established(mus_sess_t *s, bool resumed);
void mus_sess_ping_cb(loop_t *loop, loop_timer_t *t);
void mus_sess_ack_cb(loop_t *loop, loop_timer_t *t);
void mus_sess_dead_cb(loop_t *loop, loop_timer_t *t);

#endif
