/*
 * proxy/conn.h: one client connection and the transactions on it: request
 * head parsing, checks (client ACL, destination ACL, CONNECT ports, loops),
 * resolution, upstream connect or reuse, streaming of both bodies with
 * backpressure, CONNECT and Upgrade tunnels (splice or pooled copy), error
 * responses and the access log line. It does not accept connections or own listeners
 * (proxy/worker.c does).
 */
#ifndef MUS_PROXY_CONN_H
#define MUS_PROXY_CONN_H

#include <sys/socket.h>

#include "../policy/config.h"
#include "worker.h"

typedef struct conn conn_t;

/* Takes over the accepted descriptor fd (non-blocking) from peer. Returns
 * NULL (fd closed) on allocation failure. */
conn_t *conn_new(worker_t *w, int fd, const struct sockaddr *peer, socklen_t peer_len,
                 const config_listen_t *listener);

/* conn_new as a worker_accept_fn (proxy_env_t.accept). */
void *conn_accept(worker_t *w, int fd, const struct sockaddr *peer, socklen_t peer_len,
                  const config_listen_t *listener);

/* Graceful shutdown: an idle connection closes now, a busy one after the
 * response in progress (tunnels run until they end or are aborted). */
void conn_drain(conn_t *c);

/* Closes at once (shutdown deadline). */
void conn_abort(conn_t *c);

#endif
