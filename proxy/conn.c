/*
 * proxy/conn.c: the client connection state machine (see conn.h and
 * conn_int.h).
 *
 * A connection alternates between reading a request head and serving one
 * transaction; pipelined requests wait in the input buffer (we stop reading
 * from the client once the request body is complete) and are answered in
 * order. Both bodies stream through fixed buffers: when a destination would
 * block we stop reading its source, so memory per connection is bounded
 * whatever the body size. Every wait has a deadline, checked lazily by one
 * timer per connection. A connection dies only through conn_close(), which
 * unregisters everything at once and frees the memory after the current
 * batch of events (loop_defer), never inside a callback that may still use it.
 * This file: the life cycle, states and deadlines, reading heads, the
 * admission of a request, the transaction record and the log.
 */
#include "conn_int.h"

/* ---- small helpers ---- */


void
conn_progress(conn_t *c)
{
    c->last_progress = loop_now(c->loop);
}


void
conn_set_state(conn_t *c, enum conn_state s)
{
    log_debug("conn %s: %s -> %s", c->peer_str, conn_state_names[c->state], conn_state_names[s]);
    c->state = s;
    conn_progress(c);
}


/* The deadline of the current wait, from the state and the configuration. */
uint64_t
conn_deadline(const conn_t *c)
{
    const config_timeouts_t *t = &cfg(c)->timeouts;

    switch (c->state) {
    case CONN_S_IDLE:
        return c->last_progress + t->idle;
    case CONN_S_HEAD:
        /* an intercepted ClientHello has a deadline of its own */
        return c->t.start_ms + (c->t.tls ? cfg(c)->transparent.peek_timeout : t->header);
    case CONN_S_RESOLVE:
        return c->last_progress + t->dns;
    case CONN_S_CONNECT:
        return c->last_progress + t->connect;
    case CONN_S_FORWARD:
    case CONN_S_LOCAL:
        return c->last_progress + t->response;
    case CONN_S_TUNNEL:
        return c->last_progress + t->tunnel_idle;
    case CONN_S_CLOSED:
        break;
    }
    return UINT64_MAX;
}

void
conn_arm_timer(conn_t *c)
{
    uint64_t d = conn_deadline(c);

    if (d != UINT64_MAX)
        loop_timer_set_at(c->loop, &c->timer, d);
}

void
conn_update_io(conn_t *c)
{
    if (c->state == CONN_S_CLOSED)
        return;
    if (c->cfd >= 0)
        loop_io_set(c->loop, &c->cio, io_interest(c->c_want));
    if (c->ufd >= 0 && c->uio.fd >= 0)
        loop_io_set(c->loop, &c->uio, io_interest(c->u_want));
}

/* c->ufd is now a socket to the origin: a new one, or reused from the pool. */
void
conn_upstream_taken(conn_t *c, bool reused)
{
    metrics_upstream_take(worker_metrics(c->w), worker_index(c->w), reused);
}

void
conn_close_upstream(conn_t *c)
{
    if (c->ufd < 0)
        return;
    loop_io_stop(c->loop, &c->uio);
    close(c->ufd);
    c->ufd = -1;
    metrics_upstream_release(worker_metrics(c->w), worker_index(c->w));
}


/* ---- the transaction record ---- */

static enum txn_decision
decision_of(enum policy_action a)
{
    switch (a) {
    case POLICY_ALLOW: return TXN_DECISION_ALLOW;
    case POLICY_MONITOR: return TXN_DECISION_MONITOR;
    case POLICY_BLOCK: return TXN_DECISION_BLOCK;
    case POLICY_AUTH_REQUIRED: return TXN_DECISION_AUTH;
    case POLICY_REFUSE_UNIDENTIFIED: return TXN_DECISION_REFUSE_UNIDENTIFIED;
    }
    return TXN_DECISION_NONE;
}

/* Builds the owned record of the transaction that just ended. */
static void
txn_build(const conn_t *c, txn_record_t *r)
{
    const access_result_t *a = &c->t.acc;
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    r->end_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    r->elapsed_ms = loop_now(c->loop) - c->t.start_ms;
    txn_copy(r->client, sizeof(r->client), c->peer_str, strlen(c->peer_str));
    r->mode = c->mode == CONFIG_MODE_TRANSPARENT ? TXN_MODE_TRANSPARENT : TXN_MODE_EXPLICIT;
    r->result = c->t.result;
    r->status = c->t.status;
    r->bytes_out = c->t.bytes_out;
    txn_copy(r->method, sizeof(r->method), c->t.method, strlen(c->t.method));
    r->url_len = txn_copy(r->url, sizeof(r->url), c->t.url, c->t.url ? c->t.url_len : 0);
    r->url_cut = c->t.url && c->t.url_len > r->url_len;
    txn_copy(r->user, sizeof(r->user), c->t.user, strlen(c->t.user));
    r->hier = c->t.hier;
    txn_copy(r->server, sizeof(r->server), c->t.peer_ip, strlen(c->t.peer_ip));
    txn_copy(r->mime, sizeof(r->mime), c->t.mime, strlen(c->t.mime));
    r->bypass = c->t.bypass;
    r->host_mismatch = c->t.host_mismatch;
    r->ech = c->t.ech;
    r->decided = c->t.decided;
    if (!c->t.decided) {
        r->decision = TXN_DECISION_NONE;
        r->remote = false;
        r->user_source[0] = r->identity_type[0] = r->headend[0] = '\0';
        r->identity_profile[0] = r->access_policy[0] = r->rule[0] = '\0';
        r->category[0] = r->decision_tag[0] = '\0';
        return;
    }
#define COPY_STR(field, s) txn_copy_str(r->field, sizeof(r->field), (s))
    r->decision = decision_of(a->d.action);
    r->remote = a->remote;
    COPY_STR(user_source, policy_user_source_str(a->source));
    COPY_STR(identity_type, a->has_identity ? mus_id_type_str((enum mus_id_type)a->id_type) : NULL);
    COPY_STR(headend, a->headend);
    COPY_STR(identity_profile, a->d.profile);
    COPY_STR(access_policy, a->d.policy);
    COPY_STR(rule, a->d.rule);
    COPY_STR(category, a->d.category);
    COPY_STR(decision_tag, a->tag);
#undef COPY_STR
}

/* The transaction ended: its record goes to every consumer. */
void
conn_log_transaction(conn_t *c)
{
    alog_t *a = worker_alog(c->w), *x = worker_extlog(c->w);
    txnstore_t *st = worker_store(c->w);
    txn_record_t r;

    if (c->t.unlogged)
        return;
    txn_build(c, &r);
    metrics_txn(worker_metrics(c->w), worker_index(c->w), &r);
    txnlog_squid(a, &r);
    txnlog_extended(x, &r);
    if (st != NULL)
        txnstore_submit(st, &r);   /* never waits; a full queue counts a drop */
}

int
conn_buf_take(conn_t *c, cbuf_t *b)
{
    if (b->data != NULL)
        return 0;
    if ((b->data = relaybuf_get_conn(worker_relaybufs(c->w))) == NULL)
        return -1;
    b->cap = CONN_BUF_SIZE;
    b->start = b->end = 0;
    return 0;
}

void
conn_buf_give(conn_t *c, cbuf_t *b)
{
    if (b->cap != CONN_BUF_SIZE) {
        cbuf_release(b);   /* grown past it (a long head, a streaming body) */
        return;
    }
    relaybuf_put_conn(worker_relaybufs(c->w), b->data);
    b->data = NULL;
    b->cap = b->start = b->end = 0;
}

/* Forgets everything of the finished transaction. */
void
conn_reset_transaction(conn_t *c)
{
    free(c->t.url);
    free(c->t.addrs);
    memset(&c->t, 0, sizeof(c->t));
    cbuf_release(&c->cout);
    cbuf_release(&c->uout);
    conn_buf_give(c, &c->uin);
    cbuf_release(&c->replay);
}

/* ---- teardown ---- */

void
conn_free_deferred(void *arg)
{
    conn_t *c = arg;

    conn_buf_give(c, &c->cin);
    conn_buf_give(c, &c->uin);
    cbuf_release(&c->cout);
    cbuf_release(&c->uout);
    cbuf_release(&c->replay);
    free(c->t.addrs);
    free(c->t.url);
    cfgref_put(c->cfg);
    free(c);
}

/* The only way a connection ends. Logs an unfinished transaction. */
void
conn_close(conn_t *c)
{
    if (c->state == CONN_S_CLOSED)
        return;
    if (c->t.method[0] != '\0') {
        /* the client left (or the body was cut) before the response ended;
         * Squid logs TCP_MISS_ABORTED, with /000 if no response began */
        if (c->state == CONN_S_FORWARD && c->t.result == TXN_TCP_MISS)
            c->t.result = TXN_TCP_MISS_ABORTED;
        conn_log_transaction(c);
    }
    if (c->dnsq != NULL) {
        dns_cancel(c->dnsq);
        c->dnsq = NULL;
    }
    loop_timer_cancel(c->loop, &c->timer);
    loop_io_stop(c->loop, &c->cio);
    close(c->cfd);
    c->cfd = -1;
    conn_close_upstream(c);
    if (c->state == CONN_S_TUNNEL)
        conn_tunnel_ended(c);
    relay_reset(&c->up, worker_relaybufs(c->w));
    relay_reset(&c->down, worker_relaybufs(c->w));
    worker_link_del(c->w, &c->link);
    c->state = CONN_S_CLOSED;
    if (loop_defer(c->loop, conn_free_deferred, c) < 0)
        log_error("conn: cannot defer free: leaking one connection");
}

/* ---- writing ---- */

/* Writes pending bytes of b to fd. Returns 1 if all sent, 0 if blocked,
 * -1 on error. Counts bytes sent to the client. */
int
conn_flush_buf(conn_t *c, int fd, cbuf_t *b)
{
    while (cbuf_len(b) > 0) {
        ssize_t n = send(fd, b->data + b->start, cbuf_len(b), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return would_block() ? 0 : -1;
        }
        b->start += (uint32_t)n;
        if (fd == c->cfd)
            c->t.bytes_out += (uint64_t)n;
        conn_progress(c);
    }
    b->start = b->end = 0;
    return 1;
}

/* ---- request handling ---- */


/* Writes the request head for the origin into uout. */
static int
build_upstream_head(conn_t *c, const http_request_t *req)
{
    h1msg_request_opts_t o = {
        .host = c->t.host,
        .port = c->t.port,
        .via = cfg(c)->visible_hostname,
        .upgrade = c->t.upgrade_requested ? c->t.upgrade_protos : NULL,
    };

    cbuf_release(&c->uout);
    return h1msg_request_head(&c->uout, req, &o);
}


/* Drops the addresses we must not contact; 403 if none is left. */
static int
filter_destinations(conn_t *c)
{
    const config_t *cf = cfg(c);
    size_t kept = 0;
    const char *why = NULL;

    for (size_t i = 0; i < c->t.addrs->n; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&c->t.addrs->addr[i];
        const char *bad = admit_destination(cf, sa);
        if (bad != NULL) {
            why = bad;
            continue;
        }
        if (kept != i) {
            c->t.addrs->addr[kept] = c->t.addrs->addr[i];
            c->t.addrs->len[kept] = c->t.addrs->len[i];
        }
        kept++;
    }
    c->t.addrs->n = kept;
    if (kept == 0) {
        conn_error(c, 403, TXN_TCP_DENIED, why ? why : "No usable destination address.");
        return -1;
    }
    return 0;
}

/* The URL for the log and the pages, cut at CONN_MAX_URL_LOG (the policy
 * gets the whole one from admit_decide). */
void
conn_record_url(conn_t *c, const admit_request_t *rq)
{
    char buf[CONN_MAX_URL_LOG];
    size_t n = admit_url(rq, buf, sizeof(buf));

    if (n >= sizeof(buf))
        n = sizeof(buf) - 1;
    c->t.url = malloc(n + 1);
    if (c->t.url != NULL) {
        memcpy(c->t.url, buf, n + 1);
        c->t.url_len = n;
    }
}


void
conn_start_upstream(conn_t *c)
{
    if (filter_destinations(c) < 0)
        return;
    /* an idle pooled connection to the same host and address first */
    if (c->t.meth != HTTP_M_CONNECT && !c->t.upgrade_requested && !c->t.raw_tunnel && !c->spoof) {
        for (size_t i = 0; i < c->t.addrs->n; i++) {
            int fd = worker_pool_take(c->w, c->t.host, (struct sockaddr *)&c->t.addrs->addr[i],
                                      c->t.addrs->len[i], &c->uio);
            if (fd >= 0) {
                c->t.addr_idx = i;
                c->ufd = fd;
                conn_upstream_taken(c, true);
                c->t.upstream_reused = true;
                cidr_addr_str((struct sockaddr *)&c->t.addrs->addr[i], c->t.peer_ip, sizeof(c->t.peer_ip));
                c->t.hier = TXN_HIER_DIRECT;
                /* the origin may have closed it a moment ago: keep the head to replay */
                cbuf_release(&c->replay);
                if (c->t.req_body.kind == HTTP_BODY_NONE &&
                    cbuf_append(&c->replay, c->uout.data + c->uout.start, cbuf_len(&c->uout)) < 0)
                    cbuf_release(&c->replay);
                conn_set_state(c, CONN_S_FORWARD);
                conn_arm_timer(c);
                conn_forward(c);
                return;
            }
        }
    }
    c->t.addr_idx = 0;
    conn_connect_next(c);
}

void
conn_on_resolved(void *arg, int status, const char *err, const dns_result_t *res)
{
    conn_t *c = arg;
    char what[512];

    c->dnsq = NULL;
    if (c->t.verify_host) {
        conn_verified(c, status == 0 ? res : NULL);
        return;
    }
    if (status != 0) {
        snprintf(what, sizeof(what), "The name %s could not be resolved (%s).", c->t.host,
                 err ? err : "error");
        conn_error(c, 502, c->t.meth == HTTP_M_CONNECT ? TXN_NONE_NONE : TXN_TCP_MISS, what);
        return;
    }
    *c->t.addrs = *res;
    conn_start_upstream(c);
}

/* The admission step for the current transaction; the policy's answer and
 * the user it names become the transaction's. */
void
conn_decide(conn_t *c, const admit_request_t *rq, admit_result_t *res)
{
    admit_decide(cfg(c), c->cfg->policy, worker_surrogates(c->w), rq, res, &c->t.acc);
    if (res->decided) {
        c->t.decided = true;
        txn_copy_str(c->t.user, sizeof(c->t.user), c->t.acc.user);
    }
}

/* Takes the worker's current configuration (a request starts, or none is in
 * flight): an old one is released as soon as no request uses it. */
static void
conn_follow_config(conn_t *c)
{
    cfgref_t *cur = worker_cfg(c->w);

    if (cur != c->cfg) {
        cfgref_put(c->cfg);
        c->cfg = cfgref_get(cur);
    }
}

/* Handles a complete request head of head_len bytes at cin.start. */
void
conn_handle_request(conn_t *c, const http_request_t *req, size_t head_len)
{
    mus_identity_t id;                     /* the map's answer, for this request only */
    enum admit_route route = ADMIT_ROUTE_RESOLVE;
    const config_t *cf;
    int r;
    char what[512];

    conn_follow_config(c);
    cf = cfg(c);
    c->n_requests++;
    c->cin.start += (uint32_t)head_len;
    c->t.meth = req->meth;
    txn_copy(c->t.method, sizeof(c->t.method), req->method.p, req->method.len);
    c->t.version_minor = req->version_minor;
    c->t.client_keepalive = req->framing.keep_alive;
    c->close_after = !c->t.client_keepalive || c->draining;
    if (req->host.len > 0 && req->host.len <= DNS_MAX_NAME) {
        memcpy(c->t.host, req->host.p, req->host.len);
        c->t.host[req->host.len] = '\0';
        c->t.port = req->port;
    }
    c->t.result = req->meth == HTTP_M_CONNECT ? TXN_TCP_TUNNEL : TXN_TCP_MISS;
    {
        /* Identity is looked up per request, never cached per connection:
         * a machine tunnel replaced by the user tunnel counts at once. */
        bool known = worker_identity(c->w, (struct sockaddr *)&c->peer, &id);
        admit_request_t rq = {
            .method = c->t.method,
            .mode = c->mode,
            .client = (struct sockaddr *)&c->peer,
            .local_port = c->local_port,
            .orig_dst = c->intercepted ? (struct sockaddr *)&c->orig_dst : NULL,
            .identity = known ? &id : NULL,
            .now = time(NULL),
        };
        admit_result_t res;

        if (known)
            txn_copy_str(c->t.user, sizeof(c->t.user), id.s.name);
        admit_from_http(&rq, req, cf->visible_hostname);
        if (c->t.host[0] != '\0')
            conn_record_url(c, &rq);
        conn_decide(c, &rq, &res);
        switch (res.verdict) {
        case ADMIT_DENY:
            conn_error(c, res.status, res.tag, res.why);
            return;
        case ADMIT_PAC:
            conn_answer_pac(c, res.remote);
            return;
        case ADMIT_METRICS:
            conn_answer_metrics(c);
            return;
        case ADMIT_PROBE:
            c->t.req_body.kind = req->framing.body;
            c->t.req_body.done = req->framing.body == HTTP_BODY_NONE ||
                               (req->framing.body == HTTP_BODY_LENGTH &&
                                req->framing.content_length == 0);
            conn_answer_probe(c, res.remote, res.source, known ? &id : NULL);
            return;
        case ADMIT_BLOCK:
            conn_block_page(c);
            return;
        case ADMIT_AUTHENTICATE:
            conn_auth_required(c, c->cfg->policy);
            return;
        case ADMIT_BYPASS:
            /* the head goes as it came, and everything after it */
            c->cin.start -= (uint32_t)head_len;
            conn_raw_tunnel(c, true);
            return;
        case ADMIT_PROCEED:
            break;
        }
        route = res.route;
    }
    if (req->framing.conn_upgrade && req->framing.has_upgrade && req->meth != HTTP_M_CONNECT)
        h1msg_upgrade_offer(req, c->t.upgrade_protos, sizeof(c->t.upgrade_protos));
    c->t.upgrade_requested = c->t.upgrade_protos[0] != '\0';
    c->t.req_body.kind = req->meth == HTTP_M_CONNECT ? HTTP_BODY_NONE : req->framing.body;
    c->t.req_body.remaining = req->framing.content_length;
    http_chunked_init_filter(&c->t.req_body.chunk);
    c->t.req_body.done = c->t.req_body.kind == HTTP_BODY_NONE ||
                       (c->t.req_body.kind == HTTP_BODY_LENGTH && c->t.req_body.remaining == 0);
    c->t.req_body.scan = c->cin.start;
    /* body bytes that came with the head are checked before anything goes
     * upstream: a malformed chunk line is refused here, the head never sent */
    if (conn_body_scan(&c->t.req_body, &c->cin) < 0) {
        conn_error(c, 400, TXN_NONE_NONE, "Malformed chunked request body.");
        return;
    }
    if (req->meth != HTTP_M_CONNECT && build_upstream_head(c, req) < 0) {
        conn_error(c, 500, TXN_NONE_NONE, "Out of memory.");
        return;
    }
    /* the request head is no longer needed: only body bytes stay in cin */
    conn_set_state(c, CONN_S_RESOLVE);
    if (c->t.addrs == NULL && (c->t.addrs = malloc(sizeof(*c->t.addrs))) == NULL) {
        conn_error(c, 500, TXN_NONE_NONE, "Out of memory.");
        return;
    }
    if (route == ADMIT_ROUTE_ORIGINAL_DST) {
        conn_verify_host(c);
        return;
    }
    r = dns_resolve(worker_dns(c->w), c->t.host, strlen(c->t.host), c->t.port, c->t.addrs,
                    conn_on_resolved, c, &c->dnsq);
    if (r == DNS_ERROR) {
        snprintf(what, sizeof(what), "The host name %s could not be resolved.", c->t.host);
        conn_error(c, 502, req->meth == HTTP_M_CONNECT ? TXN_NONE_NONE : TXN_TCP_MISS, what);
        return;
    }
    if (r == DNS_PENDING) {
        c->c_want = 0;
        conn_update_io(c);
        conn_arm_timer(c);
        return;
    }
    conn_start_upstream(c);
}

/* ---- reading request heads ---- */

void
conn_resume(void *arg)
{
    conn_t *c = arg;

    c->resume_pending = false;
    if (c->state == CONN_S_HEAD || c->state == CONN_S_IDLE)
        conn_read_head(c);
}

/*
 * The transaction is over and the connection stays: wait for the next
 * request. A pipelined request already in the buffer is parsed from a
 * deferred callback, after this batch of events, never by calling back into
 * the parser from here: a client pipelining thousands of requests to a fast
 * origin would otherwise grow the stack by one transaction each.
 */
void
conn_next_request(conn_t *c)
{
    conn_reset_transaction(c);
    conn_follow_config(c);   /* a reload during the transaction applies from here */
    if (cbuf_len(&c->cin) > 0) {
        c->t.start_ms = loop_now(c->loop);
        conn_set_state(c, CONN_S_HEAD);
        if (!c->resume_pending) {
            if (loop_defer(c->loop, conn_resume, c) < 0) {
                conn_close(c);
                return;
            }
            c->resume_pending = true;
        }
    } else {
        conn_buf_give(c, &c->cin); /* idle connections hold no buffers */
        conn_set_state(c, CONN_S_IDLE);
    }
    c->c_want = LOOP_READ;
    c->u_want = 0;
    conn_update_io(c);
    conn_arm_timer(c);
}

void
conn_parse_head(conn_t *c)
{
    http_request_t req;
    int r;

    if (cbuf_len(&c->cin) == 0)
        return;
    if (c->intercepted && c->n_requests == 0 && conn_peek_tls(c))
        return;
    r = http_parse_request(c->cin.data + c->cin.start, cbuf_len(&c->cin), &req);
    if (r == HTTP_INCOMPLETE)
        return;
    if (r < 0 && conn_other_protocol(c))
        return;
    if (r < 0) {
        c->t.start_ms = c->t.start_ms ? c->t.start_ms : loop_now(c->loop);
        conn_error(c, http_error_status(r), TXN_NONE_NONE, http_strerror(r));
        return;
    }
    conn_handle_request(c, &req, (size_t)r);
}

/*
 * IDLE/HEAD: reads and parses the next request head; LOCAL: flushes the
 * generated response.
 */
void
conn_read_head(conn_t *c)
{
    if (c->state == CONN_S_LOCAL) {
        int r = conn_flush_buf(c, c->cfd, &c->cout);
        if (r < 0 || (r > 0 && (c->close_after || c->draining))) {
            conn_close(c);
            return;
        }
        if (r > 0) {
            /* a local answer on a connection that stays open */
            conn_log_transaction(c);
            c->t.method[0] = '\0';
            conn_next_request(c);
            return;
        } else {
            c->c_want = LOOP_WRITE;
            conn_update_io(c);
            conn_arm_timer(c);
            return;
        }
    }
    /* a pipelined request may already be buffered */
    if (c->state == CONN_S_HEAD && cbuf_len(&c->cin) > 0) {
        conn_parse_head(c);
        if (c->state != CONN_S_HEAD)
            return;
    }
    for (;;) {
        ssize_t n;
        if (conn_buf_take(c, &c->cin) < 0) {
            conn_close(c);
            return;
        }
        if (c->cin.end == c->cin.cap) {
            cbuf_compact(&c->cin, NULL);
            if (c->cin.end == c->cin.cap) {
                uint32_t cap = c->cin.cap * 2;
                if (cap > CONN_HEAD_BUF_MAX)
                    cap = CONN_HEAD_BUF_MAX;
                if (cap == c->cin.cap || cbuf_reserve(&c->cin, cap) < 0) {
                    conn_error(c, 431, TXN_NONE_NONE, "The request head is too large.");
                    return;
                }
            }
        }
        n = recv(c->cfd, c->cin.data + c->cin.end, c->cin.cap - c->cin.end, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (would_block()) {
                /* nothing of a next request yet: an idle connection keeps
                 * no buffer (it is allocated again when bytes arrive) */
                if (cbuf_len(&c->cin) == 0)
                    conn_buf_give(c, &c->cin);
                break;
            }
            conn_close(c);
            return;
        }
        if (n == 0) {
            /* the client closed: between requests this is the normal end */
            if (c->state == CONN_S_HEAD && cbuf_len(&c->cin) > 0)
                log_debug("conn %s: closed in the middle of a request head", c->peer_str);
            conn_close(c);
            return;
        }
        if (c->state == CONN_S_IDLE) {
            c->t.start_ms = loop_now(c->loop);
            conn_set_state(c, CONN_S_HEAD);
        }
        c->cin.end += (uint32_t)n;
        conn_parse_head(c);
        if (c->state != CONN_S_HEAD)
            return;
    }
    c->c_want = LOOP_READ;
    conn_update_io(c);
    conn_arm_timer(c);
}

/* ---- events ---- */

void
conn_dispatch(conn_t *c)
{
    switch (c->state) {
    case CONN_S_IDLE:
    case CONN_S_HEAD:
    case CONN_S_LOCAL:
        conn_read_head(c);
        break;
    case CONN_S_CONNECT:
        conn_connected(c);
        break;
    case CONN_S_FORWARD:
        conn_forward(c);
        break;
    case CONN_S_TUNNEL:
        conn_tunnel(c);
        break;
    case CONN_S_RESOLVE:
    case CONN_S_CLOSED:
        break;
    }
}

/* Readiness of either socket (client or upstream): the state decides. */
void
conn_on_io(loop_t *loop, loop_io_t *io, uint32_t events)
{
    conn_t *c = io->arg;

    (void)loop;
    if ((events & LOOP_ERROR) && io->interest == 0) {
        /* reset while we were not waiting on it: nothing else would notice */
        conn_close(c);
        return;
    }
    c->client_readable = c->state == CONN_S_FORWARD && io == &c->cio && (events & LOOP_READ);
    c->upstream_readable = io == &c->uio && (events & (LOOP_READ | LOOP_ERROR));
    conn_dispatch(c);
}

void
conn_on_timer(loop_t *loop, loop_timer_t *t)
{
    conn_t *c = t->arg;
    uint64_t d = conn_deadline(c);

    if (d > loop_now(loop)) {
        /* progress was made since the timer was armed */
        loop_timer_set_at(loop, t, d);
        return;
    }
    switch (c->state) {
    case CONN_S_IDLE:
        conn_close(c);
        break;
    case CONN_S_HEAD:
        if (cbuf_len(&c->cin) == 0) {
            conn_close(c);  /* connected but never sent a byte */
            break;
        }
        log_debug("conn %s: request head not complete in time", c->peer_str);
        conn_error(c, 408, TXN_NONE_NONE, "The request head did not arrive in time.");
        break;
    case CONN_S_RESOLVE:
        conn_error(c, 504, c->t.meth == HTTP_M_CONNECT ? TXN_NONE_NONE : TXN_TCP_MISS,
                   "The name could not be resolved in time.");
        break;
    case CONN_S_CONNECT:
        conn_error(c, 504, c->t.meth == HTTP_M_CONNECT ? TXN_NONE_NONE : TXN_TCP_MISS,
                   "The connection to the origin server timed out.");
        break;
    case CONN_S_FORWARD:
        conn_error(c, 504, TXN_TCP_MISS, "The origin server did not answer in time.");
        break;
    case CONN_S_TUNNEL:
    case CONN_S_LOCAL:
        conn_close(c);
        break;
    case CONN_S_CLOSED:
        break;
    }
}

/* ---- life cycle ---- */

static void
link_drain(void *owner)
{
    conn_drain(owner);
}

static void
link_abort(void *owner)
{
    conn_abort(owner);
}

/* A reload: a connection with no request in flight (idle, or connected
 * with nothing read yet) takes the new configuration and its deadlines. */
static void
link_reconfigure(void *owner)
{
    conn_t *c = owner;

    if (c->state == CONN_S_IDLE || (c->state == CONN_S_HEAD && cbuf_len(&c->cin) == 0)) {
        conn_follow_config(c);
        conn_arm_timer(c);
    }
}

/* What the worker may ask of a connection (worker.c never names conn.c). */
static const worker_link_ops_t conn_link_ops = {
    .drain = link_drain, .abort = link_abort, .reconfigure = link_reconfigure,
};

void *
conn_accept(worker_t *w, int fd, const struct sockaddr *peer, socklen_t peer_len,
            const config_listen_t *listener)
{
    return conn_new(w, fd, peer, peer_len, listener);
}

conn_t *
conn_new(worker_t *w, int fd, const struct sockaddr *peer, socklen_t peer_len,
         const config_listen_t *listener)
{
    conn_t *c = calloc(1, sizeof(*c));
    int one = 1;

    if (c == NULL) {
        close(fd);
        return NULL;
    }
    c->w = w;
    c->loop = worker_loop(w);
    c->cfg = cfgref_get(worker_cfg(w));
    c->cfd = fd;
    c->ufd = -1;
    c->mode = listener->mode;
    if (listener->mode == CONFIG_MODE_TRANSPARENT) {
        c->orig_dst_len = sizeof(c->orig_dst);
        if (intercept_original_dst(fd, &c->orig_dst, &c->orig_dst_len) < 0) {
            /* never route an intercepted connection by what it says */
            log_warn("conn: no original destination for an intercepted connection: %s",
                     strerror(errno));
            close(fd);
            cfgref_put(c->cfg);
            free(c);
            return NULL;
        }
        c->intercepted = true;
        c->spoof = listener->spoof_client;
    }
    if (listener->addr.ss_family == AF_INET)
        c->local_port = ntohs(((const struct sockaddr_in *)&listener->addr)->sin_port);
    else
        c->local_port = ntohs(((const struct sockaddr_in6 *)&listener->addr)->sin6_port);
    c->up.pipe_r = c->up.pipe_w = c->down.pipe_r = c->down.pipe_w = -1;
    if (peer_len > sizeof(c->peer))
        peer_len = sizeof(c->peer);
    memcpy(&c->peer, peer, peer_len);
    c->peer_len = peer_len;
    cidr_addr_str(peer, c->peer_str, sizeof(c->peer_str));
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    loop_io_init(&c->cio, conn_on_io, c);
    loop_io_init(&c->uio, conn_on_io, c);
    loop_timer_init(&c->timer, conn_on_timer, c);
    if (loop_io_start(c->loop, &c->cio, fd, LOOP_READ) < 0) {
        close(fd);
        cfgref_put(c->cfg);
        free(c);
        return NULL;
    }
    c->c_want = LOOP_READ;
    worker_link_add(w, &c->link, c, &conn_link_ops);
    c->state = CONN_S_IDLE;
    c->t.start_ms = loop_now(c->loop);
    c->last_progress = c->t.start_ms;
    /* a new connection must send its first request within the header timeout */
    c->state = CONN_S_HEAD;
    conn_arm_timer(c);
    return c;
}

void
conn_drain(conn_t *c)
{
    c->draining = true;
    if (c->state == CONN_S_IDLE || (c->state == CONN_S_HEAD && cbuf_len(&c->cin) == 0))
        conn_close(c);
}

void
conn_abort(conn_t *c)
{
    conn_close(c);
}

