/*
 * mus/headend_int.h: the inside of mus-headend, shared by the files of the
 * program and by nothing else:
 *   headend.c          options, set-up, signals, the main loop, teardown;
 *   headend_conn.c     the TLS listener and accept, a proxy connection's
 *                      life (close, deferred free) and its TLS I/O with the
 *                      want flags (common/tlsio.h), loop interest;
 *   headend_session.c  MUS/1 with one proxy (docs/mus-protocol.md): the
 *                      Upgrade request, hello/auth with the failed-auth limit,
 *                      subscribe, snapshot or journal replay, pings, timers;
 *   headend_glue.c     the session store's other ends: the local feed
 *                      socket, the --sessions file, RADIUS set-up, the stale
 *                      sweep and the status file.
 * The store, the RADIUS listener, the polls and the auth limit have their
 * own headers (headend_store.h, headend_radius.h, headend_poll.h,
 * headend_authlimit.h). One thread: nothing here is locked.
 */
#ifndef MUS_MUS_HEADEND_INT_H
#define MUS_MUS_HEADEND_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "../common/cidr.h"
#include "../common/loop.h"
#include "../common/tlsio.h"
#include "headend_authlimit.h"
#include "headend_poll.h"
#include "headend_radius.h"
#include "headend_store.h"
#include "proto.h"

#define HE_MAX_CONNS        1024
#define HE_MAX_ALLOW        64
#define HE_HTTP_MAX         8192            /* upgrade request head */
#define HE_PREAUTH_MS       10000           /* TLS + upgrade + auth must fit in this */
#define HE_OUT_LOW          (256u * 1024)   /* pump journal events below this */
#define HE_OUT_SLACK        (4u * 1024 * 1024) /* more unread output than this: disconnect */
#define HE_WRITE_CHUNK      16384
#define HE_SALT_LEN         16
#define HE_DEFAULT_LISTEN   "127.0.0.1:11999"
#define HE_RADIUS_PORT      "1813"
#define HE_TICK_MS          1000            /* stale sweep and status file */

/* Life of a proxy connection. */
enum conn_state {
    CS_TLS,      /* TLS handshake in progress */
    CS_HTTP,     /* reading the upgrade request; in holds the head so far */
    CS_AUTH,     /* 101 + hello sent; waiting for auth */
    CS_HELD,     /* auth checked, its answer held (headend_authlimit.h); timer sends it */
    CS_READY,    /* authenticated; subscribed once subscribe arrived */
    CS_CLOSING,  /* flushing a final answer, then closing */
};

struct headend;

typedef struct conn {
    struct conn *prev, *next;
    struct headend *he;
    int fd;
    SSL *ssl;
    loop_io_t io;
    loop_timer_t timer;          /* pre-auth deadline, ping, dead peer */
    enum conn_state state;
    struct sockaddr_storage peer;
    char peer_str[CIDR_STRLEN + 8];
    char client_id[MUS_ID_MAX];
    uint8_t nonce[MUS_NONCE_LEN];
    char *in;                    /* unparsed input */
    size_t in_len;
    char *out;                   /* pending output: out[out_off, out_len) */
    size_t out_off, out_len, out_cap;
    size_t out_limit;            /* pending output above this: too far behind */
    bool subscribed;
    uint64_t next_seq;           /* next journal event to send */
    uint64_t acked;
    uint64_t created, last_rx, last_tx;
    tlsio_want_t want;           /* what the last SSL_read/SSL_write waits for */
    bool held;                   /* holds one of its address's held answers */
    bool held_ok;                /* ... and it is auth_ok (with held_mac) */
    uint8_t held_mac[MUS_MAC_LEN];
    bool dead;                   /* closed; freed by a deferred callback */
} conn_t;

typedef struct headend {
    loop_t *loop;
    SSL_CTX *ctx;
    hs_store_t *store;
    /* options */
    const char *listen, *cert, *key, *pwfile, *socket_path, *sessions_path, *occtl_path;
    const char *swanctl_path, *status_path;
    const char *radius_listen[HR_MAX_SOCKETS];
    size_t n_radius;
    hr_options_t radius_opt;
    unsigned swanctl_interval, stale_after, stale_grace_s;
    char server_id[MUS_ID_MAX];
    cidr_t allow[HE_MAX_ALLOW];
    size_t n_allow;
    mode_t socket_mode;
    unsigned occtl_interval;
    bool standby;
    size_t journal;
    uint32_t kdf_iter;
    /* state */
    char epoch[MUS_EPOCH_MAX];
    uint8_t salt[HE_SALT_LEN];
    uint8_t key_k[MUS_KEY_LEN];
    int lfd, ufd, sfd;
    loop_io_t lio, uio, sio;
    loop_timer_t accept_pause;
    conn_t *conns;
    size_t n_conns;
    he_authlimit_t *authlimit;
    he_poll_t occtl, swanctl;
    hr_t *radius;
    loop_timer_t tick;
    size_t stale_marked, stale_removed;
    char status_last[2048];      /* the status file as last written */
    bool stop;
    mus_frame_t frame;           /* scratch */
    char line[MUS_FRAME_MAX + 2];
} headend_t;

static inline size_t he_out_pending(const conn_t *c)
{
    return c->out_len - c->out_off;
}

/* headend_conn.c: listener, connections, TLS I/O */

/* The text of the first OpenSSL error (and clears the queue); a static
 * buffer. */
const char *he_ssl_err_str(void);
/* The TLS server context for --cert and --key; NULL on error (the OpenSSL
 * error queue says why). */
SSL_CTX *he_tls_server_ctx(const char *cert, const char *key);
/* Binds "ADDR:PORT" ("[V6]:PORT"; with a default port also "ADDR" and
 * "[V6]") for TCP (listening) or UDP. -1: bad spec, -2: errno. */
int he_listen_on(const char *spec, int socktype, const char *default_port);
/* Binds --listen and starts accepting. 0, or -1 (a bad or busy --listen is
 * logged). */
int he_listener_start(headend_t *he);
/* Appends to the pending output. 0, or -1 out of memory. */
int he_out_append(conn_t *c, const char *data, size_t len);
/* Closes c (logged with the reason), frees it after the current batch. */
void he_conn_close(conn_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Handshake, read (and process), pump, flush, interest: one I/O round. */
void he_conn_run(conn_t *c);

/* headend_session.c: MUS/1 with a proxy */

/* Processes what c->in holds: the upgrade head, then frames. */
void he_process_input(conn_t *c);
/* Gives back the held-answer slot of c's address, if it holds one. */
void he_held_release(conn_t *c);
/* Moves journal events into c's output while it is short. */
void he_conn_pump(conn_t *c);
/* Runs every subscribed connection (the store has new events). */
void he_pump_all(headend_t *he);
/* Held answer, pre-auth deadline, ping and dead peer. */
void he_conn_timer_cb(loop_t *loop, loop_timer_t *t);

/* headend_glue.c: the store's other ends */

/* Creates the --socket feed socket and starts reading it. 0, or -1 (a
 * socket that cannot be made is logged). */
int he_feed_start(headend_t *he);
/* Loads --sessions. Returns -1 if the file cannot be read (nothing changes). */
int he_sessions_load(headend_t *he);
/* Opens the --radius sockets and starts the listener. 0, or -1 (logged). */
int he_radius_setup(headend_t *he);
/* The store changed outside a proxy connection (a poll): pump. */
void he_changed_cb(void *arg);
/* Starts the once-a-second stale sweep and status file. */
void he_tick_start(headend_t *he);

#endif
