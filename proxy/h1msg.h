/*
 * proxy/h1msg.h: rewriting HTTP/1.1 heads on their way through the proxy,
 * from parsed messages (proxy/http.h) into byte queues (proxy/cbuf.h): the
 * request head for the origin (Host from the target, hop-by-hop fields
 * removed, one Content-Length, Via, the Upgrade offer) and the response head
 * for the client (the same rules, plus the connection options the client
 * needs). Also the checks on what passes: which Upgrade protocols may be
 * offered and whether a 101 names only those, and Via loops. It knows no
 * connection, does no I/O, and decides nothing about policy.
 */
#ifndef MUS_PROXY_H1MSG_H
#define MUS_PROXY_H1MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cbuf.h"
#include "http.h"

/* True for a field that is not forwarded: hop-by-hop by definition or
 * named in Connection (never the framing fields or Host). keep_upgrade
 * keeps "Upgrade" (a 101's, which the client needs). */
bool h1msg_is_hop(const http_header_t *h, const http_framing_t *f, bool keep_upgrade);

/*
 * The protocols of the request's Upgrade fields that may be offered to the
 * origin, into out (", "-separated, "" if none). h2c is never offered: after
 * its 101 every later request on the connection would be HTTP/2, out of
 * reach of the per-request policy and log (h2c smuggling).
 */
void h1msg_upgrade_offer(const http_request_t *req, char *out, size_t cap);

/* True if a 101 names at least one protocol and only offered ones. */
bool h1msg_upgrade_answer_ok(const char *offered, const http_response_t *resp);

/* True if a Via field names this proxy (name): the request looped. */
bool h1msg_via_loop(const http_request_t *req, const char *name);

typedef struct h1msg_request_opts {
    const char *host;        /* the origin's host (IPv6 without brackets) */
    uint16_t port;
    const char *via;         /* our name in Via */
    const char *upgrade;     /* protocols to offer, NULL or "" for none */
} h1msg_request_opts_t;

/* Appends the request head for the origin. 0, or -1 out of memory. */
int h1msg_request_head(cbuf_t *b, const http_request_t *req, const h1msg_request_opts_t *o);

typedef struct h1msg_response_opts {
    const char *via;
    bool decode;             /* the body is de-chunked for the client: no Transfer-Encoding */
    bool close;              /* the client connection closes after this response */
    bool http10_client;      /* say keep-alive explicitly */
    char *mime;              /* out: Content-Type of a final response, if present */
    size_t mime_cap;
} h1msg_response_opts_t;

/* Appends the response head for the client. 0, or -1 out of memory. */
int h1msg_response_head(cbuf_t *b, const http_response_t *resp, const h1msg_response_opts_t *o);

#endif
