/*
 * proxy/control.h: the local control socket musctl talks to (a Unix stream
 * socket, mode 0600, so other local users are kept out). One request line
 * per connection, one JSON document back:
 *   "status"            headend sessions, map counters, probe counters, open
 *                       client connections against max_connections
 *   "map"               every mapped address
 *   "map ip ADDR"       one address;   "map user NAME"   one user's addresses
 *   "trace {JSON}"      the policy decision for {"ip","url","user_agent","port",
 *                       "method"} without sending traffic (same code as requests)
 * It runs in its own thread, a registered reader of the map; the answers
 * are proxy/status.c's, the same the admin UI shows.
 */
#ifndef MUS_PROXY_CONTROL_H
#define MUS_PROXY_CONTROL_H

#include "status.h"

#define CONTROL_REQUEST_MAX  STATUS_REQUEST_MAX
#define CONTROL_IO_TIMEOUT_MS 2000   /* per client read/write */

typedef struct control control_t;

/* Binds path (replacing a stale socket file) and starts the thread, which
 * answers from src (copied). NULL with a message on failure. */
control_t *control_start(const char *path, const status_sources_t *src, char *err, size_t errlen);
/* Stops the thread, removes the socket file. NULL allowed. */
void control_stop(control_t *c);

#endif
