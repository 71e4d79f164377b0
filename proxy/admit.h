/*
 * proxy/admit.h: the admission step, protocol-neutral. Every way a request
 * comes in (an HTTP head, later the TLS ClientHello of a transparent port)
 * and the policy trace (musctl trace) describe it as one admit_request_t,
 * and admit_decide() gives the one answer live traffic gets: deny (with the
 * status, log tag and the sentence for the page), the probe, block, ask for
 * credentials, or proceed, and how to reach the destination (resolve the
 * name, or the original destination of an intercepted connection). The
 * policy sees the full URL (bounded by the parser's own limits), never the
 * one shortened for the log. It does no I/O and keeps no state except the
 * Basic-auth surrogates it is given; the identity lookup is the caller's.
 */
#ifndef MUS_PROXY_ADMIT_H
#define MUS_PROXY_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "../common/txn.h"
#include "access.h"
#include "http.h"

/* The policy's URL: scheme://[host]:port + request-target. */
#define ADMIT_URL_MAX (HTTP_MAX_REQUEST_LINE + 512)

enum admit_form {
    ADMIT_FORM_ABSOLUTE = 0,  /* http(s)://host/path: an explicit proxy request */
    ADMIT_FORM_ORIGIN,        /* /path with Host: an intercepted request */
    ADMIT_FORM_AUTHORITY,     /* CONNECT host:port */
    ADMIT_FORM_ASTERISK,      /* OPTIONS * */
    ADMIT_FORM_TLS,           /* a TLS ClientHello: host is the SNI (may be empty) */
};

typedef struct admit_request {
    const char *method;              /* NUL-terminated: "GET", "CONNECT", "TLS" */
    enum admit_form form;
    const char *scheme;              /* ABSOLUTE: "http"/"https" */
    size_t scheme_len;
    const char *host;                /* not NUL-terminated; IPv6 without brackets */
    size_t host_len;
    uint16_t port;
    const char *path;                /* path + query as received ("" for CONNECT/TLS) */
    size_t path_len;
    const char *user_agent;          /* NULL if absent */
    size_t user_agent_len;
    const char *proxy_authorization; /* NULL if absent */
    size_t proxy_authorization_len;
    bool via_loop;                   /* a Via field names this proxy */
    enum config_listen_mode mode;
    const struct sockaddr *client;
    uint16_t local_port;             /* the listener's port */
    const struct sockaddr *orig_dst; /* intercepted: where the client was going; else NULL */
    const mus_identity_t *identity;  /* the map's answer, NULL if the address is unknown */
    time_t now;
} admit_request_t;

enum admit_verdict {
    ADMIT_DENY = 0,       /* refused before the policy: status, tag and why say how */
    ADMIT_PROBE,          /* the VPN client's probe: answered by the proxy itself */
    ADMIT_BLOCK,          /* the policy blocks: the block page */
    ADMIT_AUTHENTICATE,   /* the policy wants credentials: 407 */
    ADMIT_PROCEED,        /* forward (or tunnel) */
    ADMIT_BYPASS,         /* intercepted and in the bypass list: relayed untouched, no policy */
    ADMIT_PAC,            /* GET /proxy.pac or /wpad.dat: the auto-config file for this client */
    ADMIT_METRICS,        /* GET /metrics on a metrics listener */
};
const char *admit_verdict_str(enum admit_verdict v);

enum admit_route {
    ADMIT_ROUTE_RESOLVE = 0,   /* resolve host, connect to port */
    ADMIT_ROUTE_ORIGINAL_DST,  /* connect to orig_dst, whatever the name says */
};

/* Which check refused a request (ADMIT_DENY), for the trace and tests. */
enum admit_check {
    ADMIT_CHECK_NONE = 0,
    ADMIT_CHECK_HOST,          /* no host, or one too long */
    ADMIT_CHECK_CLIENTS,       /* the client address is not in proxy.clients */
    ADMIT_CHECK_PROBE_TUNNEL,  /* a tunnel to the probe host */
    ADMIT_CHECK_FORM,          /* origin-form to an explicit port, OPTIONS *, not http:// */
    ADMIT_CHECK_VIA_LOOP,
    ADMIT_CHECK_CONNECT_PORT,  /* not in proxy.connect_ports */
    ADMIT_CHECK_DESTINATION,   /* the original destination is denied or ourselves */
    ADMIT_CHECK_PAC_ONLY,      /* a mode: pac or metrics listener serves nothing else */
};
const char *admit_check_str(enum admit_check c);

#define ADMIT_WHY_MAX 160

typedef struct admit_result {
    enum admit_verdict verdict;
    int status;                    /* DENY: the HTTP status of the answer */
    enum txn_result tag;           /* DENY: the log's result tag */
    char why[ADMIT_WHY_MAX];       /* DENY: the sentence on the error page */
    enum admit_check failed;       /* DENY: which check */
    bool remote;                   /* the client's location (also without a policy decision) */
    const char *source;            /* where the location came from: "headend", "vpn_pools", "none" */
    bool decided;                  /* the policy was asked: *acc holds its answer */
    enum admit_route route;
} admit_result_t;

/* Fills the HTTP part of rq from a parsed request head (method, form,
 * target, User-Agent, Proxy-Authorization, Via loop against via_name). */
void admit_from_http(admit_request_t *rq, const http_request_t *req, const char *via_name);

/* Decides. acc receives the policy's answer when res->decided. policy and
 * surrogates may be NULL (no policy; the trace keeps no Basic state). */
void admit_decide(const config_t *cf, const policy_t *policy, access_surrogates_t *surrogates,
                  const admit_request_t *rq, admit_result_t *res, access_result_t *acc);

/* NULL if the proxy may connect to sa, else the sentence why not (a denied
 * destination, or one of our own listening addresses: a loop). */
const char *admit_destination(const config_t *cf, const struct sockaddr *sa);

/* The URL of the request as the log and the policy write it: http://host[:port]/path
 * (port omitted when 80), or host:port for a tunnel; cut to cap (NUL-terminated).
 * Returns the full length it would have. */
size_t admit_url(const admit_request_t *rq, char *out, size_t cap);

#endif
