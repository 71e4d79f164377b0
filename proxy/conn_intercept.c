/*
 * proxy/conn_intercept.c: intercepted (transparent) connections: the
 * upstream is the original destination whatever names are involved, the
 * Host header is only checked against it, bypassed traffic and TLS decided
 * by its SNI are relayed as they came. The kernel side (SO_ORIGINAL_DST,
 * TPROXY options) is proxy/intercept.c; the ClientHello parser proxy/sni.c.
 */
#include "conn_int.h"

/* ---- intercepted traffic: the original destination ---- */

/* Connects to where the client was going, whatever names were involved. */
void
conn_route_original(conn_t *c)
{
    if (c->t.addrs == NULL && (c->t.addrs = malloc(sizeof(*c->t.addrs))) == NULL) {
        conn_error(c, 500, TXN_NONE_NONE, "Out of memory.");
        return;
    }
    c->t.addrs->n = 1;
    memcpy(&c->t.addrs->addr[0], &c->orig_dst, c->orig_dst_len);
    c->t.addrs->len[0] = c->orig_dst_len;
    if (c->state != CONN_S_RESOLVE)
        conn_set_state(c, CONN_S_RESOLVE);
    conn_start_upstream(c);
}

/* The Host check's verdict: res is the name's answer (NULL if it failed).
 * Every address of the answer counts, so a name with many addresses (round
 * robin, a CDN) matches whichever one the client was given among them. */
void
conn_verified(conn_t *c, const dns_result_t *res)
{
    const struct sockaddr *dst = (const struct sockaddr *)&c->orig_dst;
    char dst_str[CIDR_STRLEN];

    c->t.verify_host = false;
    if (res == NULL || !intercept_in_answer(res, dst)) {
        c->t.host_mismatch = true;
        cidr_addr_str(dst, dst_str, sizeof(dst_str));
        log_info("conn %s: Host %s does not name the original destination %s%s", c->peer_str,
                 c->t.host, dst_str, res == NULL ? " (the name does not resolve)" : "");
        if (cfg(c)->transparent.host_mismatch == CONFIG_HOST_MISMATCH_REFUSE) {
            conn_error(c, 409, TXN_NONE_NONE,
                       "The Host of the request does not match the server the connection was "
                       "made to.");
            return;
        }
    }
    conn_route_original(c);
}

/* Intercepted HTTP: the upstream is the original destination; the Host is
 * only compared with it (a literal at once, a name through DNS). */
void
conn_verify_host(conn_t *c)
{
    struct sockaddr_storage lit;
    dns_result_t one;
    int r;

    memset(&lit, 0, sizeof(lit));
    if (inet_pton(AF_INET, c->t.host, &((struct sockaddr_in *)&lit)->sin_addr) == 1 ||
        inet_pton(AF_INET6, c->t.host, &((struct sockaddr_in6 *)&lit)->sin6_addr) == 1) {
        lit.ss_family = strchr(c->t.host, ':') ? AF_INET6 : AF_INET;
        one.n = 1;
        one.addr[0] = lit;
        one.len[0] = sizeof(lit);
        conn_verified(c, &one);
        return;
    }
    c->t.verify_host = true;
    r = dns_resolve(worker_dns(c->w), c->t.host, strlen(c->t.host), c->t.port, c->t.addrs,
                    conn_on_resolved, c, &c->dnsq);
    if (r == DNS_PENDING) {
        c->c_want = 0;
        conn_update_io(c);
        conn_arm_timer(c);
        return;
    }
    conn_verified(c, r == DNS_ERROR ? NULL : c->t.addrs);
}

/* Relays the client's bytes (those in cin first) to the original
 * destination untouched: the bypass list, and TLS decided by its SNI. */
void
conn_raw_tunnel(conn_t *c, bool bypass)
{
    c->t.raw_tunnel = true;
    c->t.bypass = bypass;
    c->t.result = TXN_TCP_TUNNEL;
    c->t.req_body.kind = HTTP_BODY_NONE;
    c->t.req_body.done = true;
    c->close_after = true;
    conn_route_original(c);
}

/*
 * An intercepted connection that is not HTTP: TLS decided by its SNI (sni,
 * NULL if the ClientHello has none), or another protocol (sni NULL). It is
 * admitted exactly like a CONNECT to that host and the original port; with
 * no name the host is the destination address, or proxy.transparent.no_sni
 * blocks it. Proceeding relays the bytes read so far, then the rest.
 */
void
conn_admit_raw(conn_t *c, const char *sni, size_t sni_len)
{
    const config_t *cf = cfg(c);
    const struct sockaddr *dst = (const struct sockaddr *)&c->orig_dst;
    mus_identity_t id;
    bool known;
    admit_result_t res;

    c->n_requests++;
    c->t.meth = HTTP_M_CONNECT;
    snprintf(c->t.method, sizeof(c->t.method), "CONNECT");
    c->t.result = TXN_TCP_TUNNEL;
    c->t.port = ntohs(dst->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)dst)->sin6_port
                                                 : ((const struct sockaddr_in *)dst)->sin_port);
    if (sni != NULL) {
        memcpy(c->t.host, sni, sni_len);
        c->t.host[sni_len] = '\0';
    } else {
        cidr_addr_str(dst, c->t.host, sizeof(c->t.host));
    }
    known = worker_identity(c->w, (struct sockaddr *)&c->peer, &id);
    if (known)
        snprintf(c->t.user, sizeof(c->t.user), "%s", id.s.name);
    admit_request_t rq = {
        .method = c->t.method,
        .form = ADMIT_FORM_TLS,
        .host = c->t.host,
        .host_len = strlen(c->t.host),
        .port = c->t.port,
        .mode = c->mode,
        .client = (struct sockaddr *)&c->peer,
        .local_port = c->local_port,
        .orig_dst = dst,
        .identity = known ? &id : NULL,
        .now = time(NULL),
    };
    conn_record_url(c, &rq);
    if (sni == NULL && cf->transparent.no_sni == CONFIG_NO_SNI_BLOCK &&
        !intercept_bypassed(&cf->transparent, NULL, 0, dst)) {
        conn_error(c, 403, TXN_TCP_DENIED, "Connections without a server name are not allowed.");
        return;
    }
    conn_decide(c, &rq, &res);
    switch (res.verdict) {
    case ADMIT_DENY:
    case ADMIT_PROBE:   /* not reached: the probe host never tunnels */
    case ADMIT_PAC:     /* not reached: no path in a tunnel */
    case ADMIT_METRICS:
        conn_error(c, res.verdict == ADMIT_DENY ? res.status : 403,
                   res.verdict == ADMIT_DENY ? res.tag : TXN_TCP_DENIED, res.why);
        return;
    case ADMIT_BLOCK:
    case ADMIT_AUTHENTICATE:   /* not reached: intercepted traffic is never asked */
        conn_block_page(c);
        return;
    case ADMIT_BYPASS:
        conn_raw_tunnel(c, true);
        return;
    case ADMIT_PROCEED:
        conn_raw_tunnel(c, false);
        return;
    }
}

/*
 * The first bytes of an intercepted connection: a TLS ClientHello is read
 * whole (bounded by SNI_PEEK_MAX bytes and peek_timeout), then admitted by
 * its SNI. Returns false if the bytes are not TLS (the HTTP parser takes
 * them), true if they were handled or more are awaited.
 */
bool
conn_peek_tls(conn_t *c)
{
    sni_hello_t h;
    sni_status_t st = sni_parse((const uint8_t *)c->cin.data + c->cin.start, cbuf_len(&c->cin), &h);

    switch (st) {
    case SNI_NOT_TLS:
        return false;
    case SNI_INCOMPLETE:
        c->t.tls = true;   /* the peek deadline applies */
        return true;
    case SNI_E_MALFORMED:
    case SNI_E_TOO_LARGE:
        c->t.tls = true;
        c->n_requests++;
        log_info("conn %s: intercepted TLS refused: %s", c->peer_str, sni_status_str(st));
        conn_error(c, 400, TXN_NONE_NONE, "Malformed TLS ClientHello.");
        return true;
    case SNI_FOUND:
    case SNI_NONE:
        c->t.tls = true;
        c->t.ech = h.ech;
        conn_admit_raw(c, st == SNI_FOUND ? h.host : NULL, h.host_len);
        return true;
    }
    return true;
}

/* True if an intercepted connection's first bytes, which are not HTTP,
 * are relayed by destination (proxy.transparent.no_sni: allow); port 80
 * always speaks HTTP. */
bool
conn_other_protocol(conn_t *c)
{
    const struct sockaddr *dst = (const struct sockaddr *)&c->orig_dst;
    uint16_t port = ntohs(dst->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)dst)->sin6_port
                                                     : ((const struct sockaddr_in *)dst)->sin_port);

    if (!c->intercepted || c->n_requests > 0 || port == 80 ||
        cfg(c)->transparent.no_sni != CONFIG_NO_SNI_ALLOW)
        return false;
    conn_admit_raw(c, NULL, 0);
    return true;
}

