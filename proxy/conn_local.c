/*
 * proxy/conn_local.c: the answers a connection writes itself instead of
 * forwarding: error pages, the block page, the 407 challenge and the
 * VPN client's probe (a TLS alert when the client speaks TLS). The pages'
 * bytes come from proxy/pages.c; this file sends them and ends the
 * transaction's upstream work.
 */
#include "conn_int.h"

#include "metrics.h"
#include "pac.h"

/* ---- generated responses ---- */



/*
 * Sends a response we generated ourselves (error page, block page, 407, the
 * probe) and ends any DNS or upstream activity of the request. With close
 * set, or when the request has a body we did not read, the connection
 * closes once the response is sent; otherwise the next request is read.
 */
void
conn_respond(conn_t *c, int status, enum txn_result tag, const char *ctype,
             const char *extra_headers, const char *body, size_t blen, bool close)
{
    char head[1024];
    int hlen;

    if (c->t.resp_started) {
        /* the client already has part of a response: all we can do is cut it */
        conn_close(c);
        return;
    }
    if (close || (c->t.req_body.kind != HTTP_BODY_NONE && !c->t.req_body.done))
        c->close_after = true;
    if (c->t.tls) {
        /* a TLS client cannot read a page: a fatal alert, then the end */
        hlen = (int)intercept_tls_alert(head, status);
        blen = 0;
        c->close_after = true;
    } else {
        hlen = snprintf(head, sizeof(head),
                        "HTTP/1.1 %d %s\r\nServer: musproxy\r\nContent-Type: %s\r\n"
                        "Content-Length: %zu\r\nCache-Control: %s\r\n%s%s\r\n",
                        status, pages_reason(status), ctype, blen,
                        c->t.cache_control ? c->t.cache_control : "no-store", extra_headers,
                        c->close_after ? "Connection: close\r\n" : "");
    }
    if (c->dnsq != NULL) {
        dns_cancel(c->dnsq);
        c->dnsq = NULL;
    }
    conn_close_upstream(c);
    cbuf_release(&c->cout);
    if (hlen < 0 || (size_t)hlen >= sizeof(head) ||
        cbuf_append(&c->cout, head, (size_t)hlen) < 0 ||
        (blen > 0 && c->t.meth != HTTP_M_HEAD && cbuf_append(&c->cout, body, blen) < 0)) {
        conn_close(c);
        return;
    }
    c->t.status = status;
    c->t.result = tag;
    snprintf(c->t.mime, sizeof(c->t.mime), "%s", ctype);
    if (c->t.method[0] == '\0')
        snprintf(c->t.method, sizeof(c->t.method), "NONE");
    c->t.resp_started = true;
    conn_set_state(c, CONN_S_LOCAL);
    c->c_want = 0;
    c->u_want = 0;
    conn_read_head(c); /* LOCAL: flushes cout */
}

/*
 * Answers the current request with an error page saying what went wrong and
 * closes the connection once it is sent. tag is the access-log result tag.
 */
void
conn_error(conn_t *c, int status, enum txn_result tag, const char *what)
{
    char body[PAGES_ERROR_MAX], extra[64];
    size_t blen = pages_error(body, sizeof(body), status, what, c->t.url, c->t.url ? c->t.url_len : 0,
                              cfg(c)->visible_hostname);

    snprintf(extra, sizeof(extra), "X-Musproxy-Error: %s\r\n",
             tag == TXN_TCP_DENIED ? "denied" : "error");
    log_debug("conn %s: %d %s", c->peer_str, status, what);
    conn_respond(c, status, tag, "text/html; charset=utf-8", extra, body, blen, true);
}

/*
 * The VPN client's probe (mus.probe_host): answered here, never resolved,
 * never forwarded; says whether this client is seen as remote and as whom.
 */
void
conn_answer_probe(conn_t *c, bool remote, const char *source, const mus_identity_t *id)
{
    char body[PAGES_PROBE_MAX];
    pages_probe_t p = {
        .client = c->peer_str,
        .remote = remote,
        .source = source,
        .identified = id != NULL,
    };
    size_t n;

    if (id != NULL) {
        p.user = id->s.name;
        p.type = mus_id_type_str(id->s.type);
        p.domain = id->s.domain;
        p.groups = id->s.groups;
        p.headend = id->headend;
        p.stale = id->stale;
    }
    n = pages_probe(body, sizeof(body), &p);
    probes_count(worker_probes(c->w), c->peer_str, remote);
    conn_respond(c, 200, TXN_TCP_MISS, "text/plain", "", body, n, false);
}

/* The block page: what was blocked, why, for whom, and what to do. */
void
conn_block_page(conn_t *c)
{
    const access_result_t *a = &c->t.acc;
    char extra[256], body[PAGES_BLOCK_MAX];
    pages_block_t b = {
        .url = c->t.url,
        .url_len = c->t.url ? c->t.url_len : 0,
        .user = a->user,
        .category = a->d.category,
        .policy = a->d.policy,
        .profile = a->d.profile,
        .rule = a->d.rule,
        .reason = a->d.reason,
        .decision = a->tag,
        .remote = a->remote,
        .server = cfg(c)->visible_hostname,
    };
    size_t n = pages_block(body, sizeof(body), &b);

    snprintf(extra, sizeof(extra), "X-Musproxy-Decision: %s\r\nX-Musproxy-Error: denied\r\n",
             a->tag);
    conn_respond(c, 403, TXN_TCP_DENIED, "text/html; charset=utf-8", extra, body, n, true);
}

void
conn_auth_required(conn_t *c, const policy_t *policy)
{
    char extra[512], body[PAGES_AUTH_MAX];
    size_t n = pages_auth(body, sizeof(body), c->t.acc.bad_credentials, cfg(c)->visible_hostname);

    snprintf(extra, sizeof(extra),
             "Proxy-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"\r\n"
             "X-Musproxy-Decision: %s\r\n",
             policy_auth_realm(policy), c->t.acc.tag);
    conn_respond(c, 407, TXN_TCP_DENIED, "text/html; charset=utf-8", extra, body, n, true);
}


/*
 * The proxy auto-config file for this client: remote (VPN) clients may be
 * told another proxy address. With no address configured, the one this
 * connection reached and the first explicit listener's port.
 */
void
conn_answer_pac(conn_t *c, bool remote)
{
    const config_t *cf = cfg(c);
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    char addr[CIDR_STRLEN] = "127.0.0.1", def[CIDR_STRLEN + 16], cache[64];
    uint16_t port = c->local_port;
    static _Thread_local char body[PAC_MAX];
    size_t n;

    if (getsockname(c->cfd, (struct sockaddr *)&local, &llen) == 0)
        cidr_addr_str((struct sockaddr *)&local, addr, sizeof(addr));
    for (size_t i = 0; i < cf->n_listen; i++) {
        if (cf->listen[i].mode == CONFIG_MODE_EXPLICIT) {
            const struct sockaddr *l = (const struct sockaddr *)&cf->listen[i].addr;
            port = ntohs(l->sa_family == AF_INET6 ? ((const struct sockaddr_in6 *)l)->sin6_port
                                                  : ((const struct sockaddr_in *)l)->sin_port);
            break;
        }
    }
    snprintf(def, sizeof(def), strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, port);
    n = pac_write(body, sizeof(body), &cf->pac, cf->mus.probe_host, remote, def);
    if (n == 0) {
        conn_error(c, 500, TXN_NONE_NONE, "The proxy auto-config file does not fit.");
        return;
    }
    snprintf(cache, sizeof(cache), "private, max-age=%u", cf->pac.max_age / 1000);
    c->t.cache_control = cache;   /* read by conn_respond below, before we return */
    conn_respond(c, 200, TXN_TCP_MISS, PAC_CONTENT_TYPE, "", body, n, false);
    c->t.cache_control = NULL;
}

/* /metrics on a metrics listener: the counters and the status sources now. */
void
conn_answer_metrics(conn_t *c)
{
    size_t n = 0;
    char *text = metrics_render(worker_metrics(c->w), worker_status(c->w), &n);

    if (text == NULL) {
        conn_error(c, 500, TXN_NONE_NONE, "The metrics could not be written (out of memory).");
        return;
    }
    c->t.unlogged = true;   /* a scraper every few seconds is not traffic */
    conn_respond(c, 200, TXN_TCP_MISS, METRICS_CONTENT_TYPE, "", text, n, false);
    free(text);
}
