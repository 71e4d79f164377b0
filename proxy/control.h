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
 * It runs in its own thread, reads the map as a registered reader and the
 * feed's status through mus_feed_status; it never writes either.
 */
#ifndef MUS_PROXY_CONTROL_H
#define MUS_PROXY_CONTROL_H

#include "../mus/client.h"
#include "../mus/map.h"
#include "connlimit.h"
#include "probes.h"
#include "worker.h"

#define CONTROL_REQUEST_MAX  16384   /* bytes of a request line (a trace carries a URL of up to 8 KiB) */
#define CONTROL_IO_TIMEOUT_MS 2000   /* per client read/write */

typedef struct control control_t;

/* Returns a reference to the configuration in force (cfgref_put it). */
typedef cfgref_t *(*control_cfg_fn)(void *arg);

/* Binds path (replacing a stale socket file) and starts the thread. NULL
 * with a message on failure. feed may be NULL (no headends). */
control_t *control_start(const char *path, mus_map_t *map, mus_feed_t *feed, probes_t *probes,
                         connlimit_t *connlimit, control_cfg_fn get_cfg, void *cfg_arg, char *err, size_t errlen);
/* Stops the thread, removes the socket file. NULL allowed. */
void control_stop(control_t *c);

#endif
