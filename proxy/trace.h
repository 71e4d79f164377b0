/*
 * proxy/trace.h: the policy trace (musctl trace): what the proxy would do
 * with a request from an address, and why. The request is written as an
 * HTTP head and goes through the same parser (proxy/http.h) and the same
 * admission step (proxy/admit.h) as live traffic, with the identity the map
 * holds now, so the answer is the one a real request gets. It sends no
 * traffic, resolves no name and keeps no Basic-auth state.
 */
#ifndef MUS_PROXY_TRACE_H
#define MUS_PROXY_TRACE_H

#include <jansson.h>

#include "../mus/map.h"
#include "../policy/config.h"
#include "../policy/policy.h"

/*
 * args is the JSON object {"ip":ADDR, "url":URL[, "user_agent":UA][, "method":M]
 * [, "port":P][, "mode":"explicit"|"transparent"][, "via":VIA]}. URL is
 * http://host[:port]/path, https://host[:port]/ (a CONNECT) or host:port.
 * Returns the answer (or {"error":...}); the caller owns it.
 */
json_t *trace_run(const config_t *cfg, const policy_t *policy, mus_map_t *map,
                  const char *args);

#endif
