/*
 * proxy/admit.c: the admission step (see admit.h). The checks run in one
 * fixed order, the same for live traffic and the trace: a usable host, the
 * client ACL, the probe host, the request form, the Via loop, CONNECT ports,
 * the original destination of an intercepted connection, then the policy.
 */
#include "admit.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/cidr.h"
#include "dns.h"
#include "h1msg.h"
#include "intercept.h"
#include "pac.h"

const char *
admit_verdict_str(enum admit_verdict v)
{
    switch (v) {
    case ADMIT_DENY: return "deny";
    case ADMIT_PROBE: return "probe";
    case ADMIT_BLOCK: return "block";
    case ADMIT_AUTHENTICATE: return "authenticate";
    case ADMIT_PROCEED: return "proceed";
    case ADMIT_BYPASS: return "bypass";
    case ADMIT_PAC: return "pac";
    case ADMIT_METRICS: return "metrics";
    }
    return "deny";
}

void
admit_from_http(admit_request_t *rq, const http_request_t *req, const char *via_name)
{
    const http_header_t *ua = http_find_header(req->headers, req->n_headers, "user-agent");
    const http_header_t *pa = http_find_header(req->headers, req->n_headers, "proxy-authorization");

    switch (req->form) {
    case HTTP_FORM_ABSOLUTE: rq->form = ADMIT_FORM_ABSOLUTE; break;
    case HTTP_FORM_ORIGIN: rq->form = ADMIT_FORM_ORIGIN; break;
    case HTTP_FORM_AUTHORITY: rq->form = ADMIT_FORM_AUTHORITY; break;
    case HTTP_FORM_ASTERISK: rq->form = ADMIT_FORM_ASTERISK; break;
    }
    rq->scheme = req->scheme.p;
    rq->scheme_len = req->scheme.len;
    rq->host = req->host.p;
    rq->host_len = req->host.len;
    rq->port = req->port;
    rq->path = req->form == HTTP_FORM_AUTHORITY ? "" : req->path.p;
    rq->path_len = req->form == HTTP_FORM_AUTHORITY ? 0 : req->path.len;
    rq->user_agent = ua ? ua->value.p : NULL;
    rq->user_agent_len = ua ? ua->value.len : 0;
    rq->proxy_authorization = pa ? pa->value.p : NULL;
    rq->proxy_authorization_len = pa ? pa->value.len : 0;
    rq->via_loop = h1msg_via_loop(req, via_name);
}

static bool
is_tunnel(const admit_request_t *rq)
{
    return rq->form == ADMIT_FORM_AUTHORITY || rq->form == ADMIT_FORM_TLS;
}

/* Appends n bytes to out[0..cap) as far as they fit; counts them all. */
static void
url_put(char *out, size_t cap, size_t *len, const char *p, size_t n)
{
    if (*len < cap) {
        size_t room = cap - *len;
        memcpy(out + *len, p, n < room ? n : room);
    }
    *len += n;
}

/* Built by hand, not with snprintf: it runs twice for every request (the
 * policy's URL and the log's). */
size_t
admit_url(const admit_request_t *rq, char *out, size_t cap)
{
    bool v6 = memchr(rq->host, ':', rq->host_len) != NULL;
    char port[8];
    size_t len = 0, np = 0;

    if (cap == 0)
        return 0;
    if (!is_tunnel(rq))
        url_put(out, cap, &len, "http://", 7);
    if (v6)
        url_put(out, cap, &len, "[", 1);
    url_put(out, cap, &len, rq->host, rq->host_len);
    if (v6)
        url_put(out, cap, &len, "]", 1);
    if (is_tunnel(rq) || rq->port != 80) {
        char digits[6];
        unsigned v = rq->port;
        size_t nd = 0;
        do
            digits[nd++] = (char)('0' + v % 10);
        while ((v /= 10) != 0);
        port[np++] = ':';
        while (nd > 0)
            port[np++] = digits[--nd];
        url_put(out, cap, &len, port, np);
    }
    if (!is_tunnel(rq))
        url_put(out, cap, &len, rq->path, rq->path_len);
    out[len < cap ? len : cap - 1] = '\0';
    return len;
}

/* True if sa is one of our listening addresses (a request to ourselves). */
static bool
is_own_address(const config_t *cf, const struct sockaddr *sa)
{
    uint16_t port;

    if (sa->sa_family == AF_INET)
        port = ntohs(((const struct sockaddr_in *)sa)->sin_port);
    else if (sa->sa_family == AF_INET6)
        port = ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    else
        return false;
    for (size_t i = 0; i < cf->n_listen; i++) {
        const struct sockaddr *l = (const struct sockaddr *)&cf->listen[i].addr;
        cidr_t any;

        if (l->sa_family == AF_INET) {
            const struct sockaddr_in *lin = (const struct sockaddr_in *)l;
            if (ntohs(lin->sin_port) != port)
                continue;
            if (lin->sin_addr.s_addr == htonl(INADDR_ANY))
                return true;
            any.family = AF_INET;
            memcpy(any.addr, &lin->sin_addr, 4);
            any.prefix = 32;
        } else {
            const struct sockaddr_in6 *lin6 = (const struct sockaddr_in6 *)l;
            if (ntohs(lin6->sin6_port) != port)
                continue;
            if (IN6_IS_ADDR_UNSPECIFIED(&lin6->sin6_addr))
                return true;
            any.family = AF_INET6;
            memcpy(any.addr, &lin6->sin6_addr, 16);
            any.prefix = 128;
        }
        if (cidr_match(&any, sa))
            return true;
    }
    return false;
}

const char *
admit_destination(const config_t *cf, const struct sockaddr *sa)
{
    if (cidr_list_match(cf->deny_destinations, cf->n_deny_destinations, sa))
        return "The destination address is not allowed (link-local, metadata or another "
               "address the administrator has denied).";
    if (is_own_address(cf, sa))
        return "The request is addressed to this proxy itself (a forwarding loop).";
    return NULL;
}

const char *
admit_check_str(enum admit_check c)
{
    switch (c) {
    case ADMIT_CHECK_NONE: return "none";
    case ADMIT_CHECK_HOST: return "host";
    case ADMIT_CHECK_CLIENTS: return "clients";
    case ADMIT_CHECK_PROBE_TUNNEL: return "probe_tunnel";
    case ADMIT_CHECK_FORM: return "form";
    case ADMIT_CHECK_VIA_LOOP: return "via_loop";
    case ADMIT_CHECK_CONNECT_PORT: return "connect_ports";
    case ADMIT_CHECK_DESTINATION: return "destination";
    case ADMIT_CHECK_PAC_ONLY: return "pac_only";
    }
    return "none";
}

static void
deny(admit_result_t *res, enum admit_check check, int status, enum txn_result tag,
     const char *why)
{
    res->verdict = ADMIT_DENY;
    res->failed = check;
    res->status = status;
    res->tag = tag;
    txn_copy_str(res->why, sizeof(res->why), why);
}

/* Where the client is: remote (VPN) or local, and how we know. */
static void
locate(const config_t *cf, const admit_request_t *rq, admit_result_t *res)
{
    if (cf->mus.remote_users == CONFIG_REMOTE_IP_RANGES) {
        res->remote = cidr_list_match(cf->mus.vpn_pools, cf->mus.n_vpn_pools, rq->client);
        res->source = res->remote ? "vpn_pools" : "none";
    } else {
        res->remote = rq->identity != NULL;
        res->source = rq->identity != NULL ? "headend" : "none";
    }
}

static bool
port_allowed(const config_t *cf, uint16_t port)
{
    for (size_t i = 0; i < cf->n_connect_ports; i++)
        if (cf->connect_ports[i] == port)
            return true;
    return false;
}

/* True if the host is an IP address literal: *ss is it, with the port. */
static bool
literal_address(const admit_request_t *rq, struct sockaddr_storage *ss)
{
    char h[INET6_ADDRSTRLEN];
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

    if (rq->host_len == 0 || rq->host_len >= sizeof(h))
        return false;
    /* a name (the common case) is no literal: skip inet_pton */
    if (!(rq->host[0] >= '0' && rq->host[0] <= '9') && memchr(rq->host, ':', rq->host_len) == NULL)
        return false;
    memcpy(h, rq->host, rq->host_len);
    h[rq->host_len] = '\0';
    memset(ss, 0, sizeof(*ss));
    if (inet_pton(AF_INET, h, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(rq->port);
        return true;
    }
    if (inet_pton(AF_INET6, h, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(rq->port);
        return true;
    }
    return false;
}

/* GET or HEAD of the PAC file's path (the query is ignored). */
static bool
is_pac_request(const admit_request_t *rq)
{
    const char *q = memchr(rq->path, '?', rq->path_len);
    size_t n = q ? (size_t)(q - rq->path) : rq->path_len;

    return (strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0) &&
           pac_path(rq->path, n);
}

/* The checks before the policy; false when the request is answered. */
static bool
admit_prechecks(const config_t *cf, const admit_request_t *rq, admit_result_t *res)
{
    char why[ADMIT_WHY_MAX];
    struct sockaddr_storage lit;

    if (rq->host_len == 0 && rq->form != ADMIT_FORM_TLS) {
        deny(res, ADMIT_CHECK_HOST, 400, TXN_NONE_NONE, "The request names no host.");
        return false;
    }
    if (rq->host_len > DNS_MAX_NAME) {
        deny(res, ADMIT_CHECK_HOST, 400, TXN_NONE_NONE, "The host name is too long.");
        return false;
    }
    if (!cidr_list_match(cf->clients, cf->n_clients, rq->client)) {
        deny(res, ADMIT_CHECK_CLIENTS, 403, TXN_TCP_DENIED,
             "Your address is not allowed to use this proxy.");
        return false;
    }
    if (rq->host_len == strlen(cf->mus.probe_host) &&
        strncasecmp(rq->host, cf->mus.probe_host, rq->host_len) == 0) {
        if (is_tunnel(rq))
            deny(res, ADMIT_CHECK_PROBE_TUNNEL, 403, TXN_TCP_DENIED,
                 "The probe host answers plain HTTP requests only.");
        else
            res->verdict = ADMIT_PROBE;
        return false;
    }
    if (rq->form == ADMIT_FORM_ORIGIN && rq->mode != CONFIG_MODE_TRANSPARENT && cf->pac.enabled &&
        is_pac_request(rq)) {
        res->verdict = ADMIT_PAC;
        return false;
    }
    if (rq->mode == CONFIG_MODE_METRICS) {
        const char *q = memchr(rq->path, '?', rq->path_len);
        size_t n = q ? (size_t)(q - rq->path) : rq->path_len;
        if (rq->form == ADMIT_FORM_ORIGIN && n == 8 && memcmp(rq->path, "/metrics", 8) == 0 &&
            (strcmp(rq->method, "GET") == 0 || strcmp(rq->method, "HEAD") == 0)) {
            res->verdict = ADMIT_METRICS;
        } else {
            deny(res, ADMIT_CHECK_PAC_ONLY, 404, TXN_NONE_NONE, "Only /metrics is served here.");
        }
        return false;
    }
    if (rq->mode == CONFIG_MODE_PAC) {
        deny(res, ADMIT_CHECK_PAC_ONLY, 404, TXN_NONE_NONE,
             "Only the proxy auto-config file (/proxy.pac, /wpad.dat) is served here.");
        return false;
    }
    if (rq->form == ADMIT_FORM_ORIGIN && rq->mode == CONFIG_MODE_EXPLICIT) {
        deny(res, ADMIT_CHECK_FORM, 400, TXN_NONE_NONE,
             "This is a proxy: requests must carry an absolute URL (http://host/path).");
        return false;
    }
    if (rq->form == ADMIT_FORM_ASTERISK) {
        deny(res, ADMIT_CHECK_FORM, 400, TXN_NONE_NONE, "OPTIONS * cannot be forwarded.");
        return false;
    }
    if (rq->form == ADMIT_FORM_ABSOLUTE &&
        !(rq->scheme_len == 4 && strncasecmp(rq->scheme, "http", 4) == 0)) {
        deny(res, ADMIT_CHECK_FORM, 501, TXN_NONE_NONE,
             "Only http:// URLs are proxied; https:// goes through a CONNECT tunnel.");
        return false;
    }
    if (rq->via_loop) {
        deny(res, ADMIT_CHECK_VIA_LOOP, 403, TXN_TCP_DENIED,
             "Forwarding loop detected (Via names this proxy).");
        return false;
    }
    if (rq->form == ADMIT_FORM_AUTHORITY && !port_allowed(cf, rq->port)) {
        snprintf(why, sizeof(why), "CONNECT to port %u is not allowed.", rq->port);
        deny(res, ADMIT_CHECK_CONNECT_PORT, 403, TXN_TCP_DENIED, why);
        return false;
    }
    if (literal_address(rq, &lit)) {
        /* an address in the request: checked now, the same for the trace */
        const char *bad = admit_destination(cf, (struct sockaddr *)&lit);
        if (bad != NULL) {
            deny(res, ADMIT_CHECK_DESTINATION, 403, TXN_TCP_DENIED, bad);
            return false;
        }
    }
    if (rq->orig_dst != NULL) {
        const char *bad = admit_destination(cf, rq->orig_dst);
        if (bad != NULL) {
            deny(res, ADMIT_CHECK_DESTINATION, 403, TXN_TCP_DENIED, bad);
            return false;
        }
        res->route = ADMIT_ROUTE_ORIGINAL_DST;
        if (intercept_bypassed(&cf->transparent, rq->host, rq->host_len, rq->orig_dst)) {
            res->verdict = ADMIT_BYPASS;
            return false;
        }
    }
    return true;
}

void
admit_decide(const config_t *cf, const policy_t *policy, access_surrogates_t *surrogates,
             const admit_request_t *rq, admit_result_t *res, access_result_t *acc)
{
    char url[ADMIT_URL_MAX];
    size_t url_len;
    access_input_t in;

    memset(res, 0, sizeof(*res));
    res->route = ADMIT_ROUTE_RESOLVE;
    locate(cf, rq, res);
    if (!admit_prechecks(cf, rq, res))
        return;
    url_len = admit_url(rq, url, sizeof(url));
    if (url_len >= sizeof(url))
        url_len = sizeof(url) - 1;   /* cannot happen within the parser's limits */
    in = (access_input_t){
        .client = rq->client,
        .proxy_port = rq->local_port,
        .mode = rq->mode,
        .identity = rq->identity,
        .proxy_authorization = rq->proxy_authorization,
        .proxy_authorization_len = rq->proxy_authorization_len,
        .user_agent = rq->user_agent,
        .user_agent_len = rq->user_agent_len,
        .method = rq->method,
        .is_connect = is_tunnel(rq),
        .host = rq->host,
        .host_len = rq->host_len,
        .port = rq->port,
        .url = url,
        .url_len = url_len,
        .now = rq->now,
    };
    access_decide(cf, policy, surrogates, &in, acc);
    res->decided = true;
    switch (acc->d.action) {
    case POLICY_ALLOW:
    case POLICY_MONITOR:
        res->verdict = ADMIT_PROCEED;
        break;
    case POLICY_AUTH_REQUIRED:
        /* no 407 for intercepted traffic: the browser did not choose a proxy */
        res->verdict = rq->mode == CONFIG_MODE_EXPLICIT ? ADMIT_AUTHENTICATE : ADMIT_BLOCK;
        break;
    case POLICY_BLOCK:
    case POLICY_REFUSE_UNIDENTIFIED:
        res->verdict = ADMIT_BLOCK;
        break;
    }
}
