/*
 * proxy/tunnel.h: the byte relay of a tunnel (CONNECT, a 101 upgrade, later
 * HTTPS by SNI and bypassed connections): one relay_t per direction moves
 * bytes from a source socket to a destination socket, by splice(2) through
 * a pipe or by copying through a buffer lent by the worker's pool
 * (proxy.tunnel_relay: auto copies towards peers on this host, splices
 * otherwise), with half-close passed on and a burst limit per turn. It
 * knows no connection: it is given the sockets, the bytes already read
 * (pending), the interest to update and the counters to advance.
 */
#ifndef MUS_PROXY_TUNNEL_H
#define MUS_PROXY_TUNNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/loop.h"
#include "../policy/config.h"
#include "cbuf.h"
#include "relaybuf.h"

/* How one direction of a tunnel moves bytes (proxy.tunnel_relay decides). */
enum relay_mode {
    RELAY_SPLICE = 0,     /* socket -> pipe -> socket, no copy */
    RELAY_COPY,           /* recv into a pooled buffer, send from it */
};

/* One direction of a tunnel. */
typedef struct relay {
    enum relay_mode mode;
    int pipe_r, pipe_w;   /* RELAY_SPLICE: the pipe */
    size_t in_pipe;       /* RELAY_SPLICE: bytes in the pipe */
    char *buf;            /* RELAY_COPY: borrowed from the worker while bytes are in it */
    uint32_t cap, start, end; /* RELAY_COPY: buf[start..end) is still to send */
    bool eof;             /* source sent FIN */
    bool shut;            /* FIN passed on to the destination */
} relay_t;

/* What a relay needs from its owner. */
typedef struct relay_env {
    relaybuf_pool_t *pool;       /* copy buffers are lent from here */
    loop_t *loop;
    uint64_t *last_progress;     /* set to loop_now() when bytes move */
} relay_env_t;

/* Prepares the direction that writes to dst (how: proxy.tunnel_relay). */
void relay_init(relay_t *r, enum config_tunnel_relay how, int dst);
/* Closes the pipe and gives the buffer back; r is then empty. */
void relay_reset(relay_t *r, relaybuf_pool_t *pool);

/*
 * Moves bytes src -> dst (pending, bytes already read from src, go first)
 * until one side would block, src ends (then dst's sending side is shut), or
 * the burst limit is reached (LOOP_READ stays in *src_want). counted, if not
 * NULL, grows by the bytes written to dst. An emptied copy buffer goes back
 * to the pool, so an idle tunnel holds none. 0, or -1 on error.
 */
int relay_pump(relay_t *r, const relay_env_t *env, int src, int dst, cbuf_t *pending,
               uint32_t *src_want, uint32_t *dst_want, uint64_t *counted);

/* True if the other end of fd is on this host (loopback or our own address). */
bool relay_peer_on_this_host(int fd);

#endif
