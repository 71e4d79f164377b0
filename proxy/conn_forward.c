/*
 * proxy/conn_forward.c: a connection's upstream side: connecting (address
 * by address), streaming the request and response bodies with
 * backpressure (framing checked before anything is forwarded), reusing
 * pooled upstream connections, and tunnels (CONNECT, 101 upgrades,
 * intercepted TLS) through proxy/tunnel.c. The upstream sockets taken and
 * the tunnels' relays are counted in the worker's slot of proxy/metrics.h.
 */
#include "conn_int.h"

/* ---- upstream connect ---- */

void
conn_connect_next(conn_t *c)
{
    for (; c->t.addr_idx < c->t.addrs->n; c->t.addr_idx++) {
        const struct sockaddr *sa = (struct sockaddr *)&c->t.addrs->addr[c->t.addr_idx];
        int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0) {
            conn_error(c, 503, c->t.meth == HTTP_M_CONNECT ? TXN_NONE_NONE : TXN_TCP_MISS,
                       "The proxy is out of sockets.");
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (c->spoof && intercept_spoof_source(fd, (struct sockaddr *)&c->peer, c->peer_len) < 0) {
            log_warn("conn %s: cannot send from the client's address: %s", c->peer_str,
                     strerror(errno));
            close(fd);
            conn_error(c, 503, TXN_TCP_MISS, "The proxy cannot connect on the client's behalf.");
            return;
        }
        cidr_addr_str(sa, c->t.peer_ip, sizeof(c->t.peer_ip));
        c->t.hier = TXN_HIER_DIRECT;
        if (connect(fd, sa, c->t.addrs->len[c->t.addr_idx]) < 0 && errno != EINPROGRESS) {
            log_debug("conn %s: connect %s: %s", c->peer_str, c->t.peer_ip, strerror(errno));
            close(fd);
            continue;
        }
        c->ufd = fd;
        if (loop_io_start(c->loop, &c->uio, fd, LOOP_WRITE) < 0) {
            close(fd);
            c->ufd = -1;
            conn_error(c, 503, TXN_TCP_MISS, "Cannot watch the upstream connection.");
            return;
        }
        conn_upstream_taken(c, false);
        c->c_want = 0;
        c->u_want = LOOP_WRITE;
        conn_update_io(c);
        conn_set_state(c, CONN_S_CONNECT);
        conn_arm_timer(c);
        return;
    }
    {
        char what[512];
        snprintf(what, sizeof(what), "The connection to %s port %u was refused or failed.",
                 c->t.host, c->t.port);
        conn_error(c, 502, c->t.meth == HTTP_M_CONNECT ? TXN_NONE_NONE : TXN_TCP_MISS, what);
    }
}

static const char tunnel_established[] = "HTTP/1.1 200 Connection established\r\n\r\n";

/* What the tunnel about to start relays. */
static enum metrics_tunnel
tunnel_kind(const conn_t *c)
{
    if (!c->t.raw_tunnel)
        return c->t.meth == HTTP_M_CONNECT ? METRICS_TUNNEL_CONNECT : METRICS_TUNNEL_UPGRADE;
    if (c->t.bypass)
        return METRICS_TUNNEL_BYPASS;
    return c->t.tls ? METRICS_TUNNEL_TLS : METRICS_TUNNEL_OTHER;
}

/* The tunnel's two relays are no longer open (conn_close, in CONN_S_TUNNEL). */
void
conn_tunnel_ended(conn_t *c)
{
    metrics_t *m = worker_metrics(c->w);

    metrics_relay_close(m, worker_index(c->w), c->tunnel_kind, c->up.mode);
    metrics_relay_close(m, worker_index(c->w), c->tunnel_kind, c->down.mode);
}

void
conn_start_tunnel(conn_t *c)
{
    metrics_t *m = worker_metrics(c->w);

    relay_init(&c->up, c->cfg->cfg->tunnel_relay, c->ufd);
    relay_init(&c->down, c->cfg->cfg->tunnel_relay, c->cfd);
    c->tunnel_kind = tunnel_kind(c);
    metrics_relay_open(m, worker_index(c->w), c->tunnel_kind, c->up.mode);
    metrics_relay_open(m, worker_index(c->w), c->tunnel_kind, c->down.mode);
    /* bytes the client sent after the CONNECT head (e.g. a TLS ClientHello)
     * stay in cin and go first; bytes after a 101 head stay in uin */
    conn_set_state(c, CONN_S_TUNNEL);
    conn_tunnel(c);
}

void
conn_connected(conn_t *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        log_debug("conn %s: connect %s: %s", c->peer_str, c->t.peer_ip, strerror(err));
        conn_close_upstream(c);
        c->t.addr_idx++;
        conn_connect_next(c);
        return;
    }
    if (c->t.raw_tunnel) {
        c->t.status = 200;
        conn_start_tunnel(c);
        return;
    }
    if (c->t.meth == HTTP_M_CONNECT) {
        cbuf_release(&c->cout);
        if (cbuf_append(&c->cout, tunnel_established, sizeof(tunnel_established) - 1) < 0) {
            conn_close(c);
            return;
        }
        c->t.status = 200;
        c->t.resp_started = true;
        conn_start_tunnel(c);
        return;
    }
    conn_set_state(c, CONN_S_FORWARD);
    conn_forward(c);
}

/* ---- forwarding ---- */

/* Classifies new bytes of b as body bytes; returns -1 on a framing error. */
int
conn_body_scan(body_t *body, cbuf_t *b)
{
    uint32_t avail;

    if (body->scan < b->start)
        body->scan = b->start;
    avail = b->end - body->scan;
    if (body->done || avail == 0)
        return 0;
    switch (body->kind) {
    case HTTP_BODY_NONE:
        body->done = true;
        break;
    case HTTP_BODY_LENGTH: {
        uint64_t k = avail < body->remaining ? avail : body->remaining;
        body->scan += (uint32_t)k;
        body->remaining -= k;
        if (body->remaining == 0)
            body->done = true;
        break;
    }
    case HTTP_BODY_CHUNKED: {
        size_t out = 0;
        ssize_t n = http_chunked_feed(&body->chunk, b->data + body->scan, avail, body->decode, &out);
        if (n < 0)
            return -1;
        if ((size_t)n != out) {
            /* kept bytes moved to the front of the scanned region (payload
             * when decoding, framing minus dropped trailer fields when
             * filtering); close the gap */
            uint32_t gap = (uint32_t)n - (uint32_t)out;
            memmove(b->data + body->scan + out, b->data + body->scan + n, avail - (size_t)n);
            b->end -= gap;
            body->scan += (uint32_t)out;
        } else {
            body->scan += (uint32_t)n;
        }
        if (http_chunked_done(&body->chunk))
            body->done = true;
        break;
    }
    case HTTP_BODY_UNTIL_CLOSE:
        body->scan = b->end;
        break;
    }
    return 0;
}

/*
 * The client's chunked body broke its framing. If nothing went upstream yet
 * it is a plain 400. Otherwise the origin has a head and part of a body: the
 * upstream connection is reset (never pooled, never finished with bytes the
 * origin could read as a next request), and the log says it was cut there.
 */
static void
request_body_malformed(conn_t *c)
{
    if (c->t.req_head_sent && c->ufd >= 0) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };

        log_info("conn %s: malformed chunked request body after the head went to %s: "
                 "upstream connection reset", c->peer_str, c->t.peer_ip);
        (void)setsockopt(c->ufd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        conn_close_upstream(c);
        conn_error(c, 400, TXN_TCP_MISS_ABORTED, "Malformed chunked request body.");
        return;
    }
    conn_error(c, 400, TXN_NONE_NONE, "Malformed chunked request body.");
}

/*
 * Moves request bytes from the client to the upstream. Returns 0; -1 if the
 * connection was closed or answered with an error; 2 if a pooled upstream
 * turned out closed before any answer (conn_forward retries once).
 */
static int
pump_request(conn_t *c)
{
    for (;;) {
        int r;
        /* every body byte is classified before anything more goes upstream */
        if (conn_body_scan(&c->t.req_body, &c->cin) < 0) {
            request_body_malformed(c);
            return -1;
        }
        if (cbuf_len(&c->uout) > 0) {
            uint32_t pending = cbuf_len(&c->uout);
            r = conn_flush_buf(c, c->ufd, &c->uout);
            if (r > 0 || cbuf_len(&c->uout) < pending)
                c->t.req_head_sent = true;
            if (r == 0) {
                c->u_want |= LOOP_WRITE;
                return 0;
            }
            if (r < 0)
                goto upstream_failed;
            continue;
        }
        if (c->t.req_body.done && c->t.req_body.scan <= c->cin.start)
            return 0;
        if (c->t.req_body.scan > c->cin.start) {
            ssize_t n = send(c->ufd, c->cin.data + c->cin.start, c->t.req_body.scan - c->cin.start,
                             MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (would_block()) {
                    c->u_want |= LOOP_WRITE;
                    return 0;
                }
                goto upstream_failed;
            }
            c->cin.start += (uint32_t)n;
            conn_progress(c);
            continue;
        }
        if (c->t.req_body.done)
            return 0;
        /* need more body from the client */
        if (cbuf_len(&c->cin) == 0)
            c->cin.start = c->cin.end = c->t.req_body.scan = 0;
        if (c->cin.end == c->cin.cap)
            cbuf_compact(&c->cin, &c->t.req_body.scan);
        {
            ssize_t n = recv(c->cfd, c->cin.data + c->cin.end, c->cin.cap - c->cin.end, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (would_block()) {
                    c->c_want |= LOOP_READ;
                    return 0;
                }
                conn_close(c);
                return -1;
            }
            if (n == 0) {
                /* client gone in the middle of its body */
                conn_close(c);
                return -1;
            }
            c->cin.end += (uint32_t)n;
            conn_progress(c);
        }
    }
upstream_failed:
    if (!c->t.resp_started && c->t.upstream_reused && !c->t.retried && cbuf_len(&c->uin) == 0) {
        /* a pooled connection the origin had closed: one fresh try */
        return 2;
    }
    conn_error(c, 502, TXN_TCP_MISS, "The connection to the origin server failed while sending the request.");
    return -1;
}

/* Builds the head we send to the client from the origin's response head. */
static int
build_client_head(conn_t *c, const http_response_t *resp)
{
    h1msg_response_opts_t o = {
        .via = cfg(c)->visible_hostname,
        .decode = c->t.resp_body.decode,
        .close = c->close_after,
        .http10_client = c->t.version_minor == 0,
        .mime = c->t.mime,
        .mime_cap = sizeof(c->t.mime),
    };

    return h1msg_response_head(&c->cout, resp, &o);
}

/* A response is complete: recycle or close both ends. */
void
conn_finish_transaction(conn_t *c)
{
    /* a connection from the client's address is that client's alone */
    bool reuse_upstream = c->t.resp_keepalive && c->t.req_body.done && cbuf_len(&c->uin) == 0 &&
                          c->ufd >= 0 && !c->spoof;

    if (!c->t.req_body.done)
        c->close_after = true; /* the rest of the request body is unread */
    if (reuse_upstream) {
        worker_pool_put(c->w, &c->uio, c->t.host, (struct sockaddr *)&c->t.addrs->addr[c->t.addr_idx],
                        c->t.addrs->len[c->t.addr_idx]);
        c->ufd = -1;
        metrics_upstream_release(worker_metrics(c->w), worker_index(c->w));
    } else {
        conn_close_upstream(c);
    }
    conn_log_transaction(c);
    c->t.method[0] = '\0';
    if (c->close_after || c->draining) {
        conn_close(c);
        return;
    }
    conn_next_request(c);
}

/* Sends the response head in cout together with the body bytes already
 * scanned in uin, in one sendmsg: a small response leaves in one segment
 * (one send, one wakeup of the client). Returns like flush_buf. */
static int
flush_head_and_body(conn_t *c)
{
    while (cbuf_len(&c->cout) > 0) {
        uint32_t head = cbuf_len(&c->cout);
        struct iovec iov[2] = {
            { c->cout.data + c->cout.start, head },
            { NULL, 0 },
        };
        struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 1 };
        if (c->t.resp_phase == RESP_BODY && c->t.resp_body.scan > c->uin.start) {
            iov[1].iov_base = c->uin.data + c->uin.start;
            iov[1].iov_len = c->t.resp_body.scan - c->uin.start;
            msg.msg_iovlen = 2;
        }
        ssize_t n = sendmsg(c->cfd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return would_block() ? 0 : -1;
        }
        c->t.bytes_out += (uint64_t)n;
        conn_progress(c);
        if ((size_t)n < head) {
            c->cout.start += (uint32_t)n;
            continue;
        }
        c->cout.start = c->cout.end = 0;
        c->uin.start += (uint32_t)((size_t)n - head);
    }
    return 1;
}

/* Classifies the response body bytes read so far; a malformed chunked body
 * ends the connection (the client must see the response cut). 0 or -1. */
static int
scan_response_body(conn_t *c)
{
    if (conn_body_scan(&c->t.resp_body, &c->uin) == 0)
        return 0;
    log_info("conn %s: malformed chunked response from %s", c->peer_str, c->t.peer_ip);
    conn_close(c);
    return -1;
}

/* A body that streams faster than one buffer per wakeup (a recv filled all
 * the room there was) gets a larger buffer, up to CONN_BODY_BUF_MAX: fewer
 * system calls per MiB. The buffer goes back at the end of the transaction,
 * so only responses in flight hold one. Called before the bytes are counted
 * in (the reserve keeps what is pending). */
static void
grow_body_buffer(conn_t *c, bool filled)
{
    if (!filled || c->t.resp_phase != RESP_BODY || c->uin.cap >= CONN_BODY_BUF_MAX)
        return;
    if (c->t.resp_body.kind == HTTP_BODY_LENGTH && c->t.resp_body.remaining <= c->uin.cap)
        return;
    (void)cbuf_reserve(&c->uin, c->uin.cap * 2);   /* out of memory: keep the one we have */
}

/* Moves response bytes from the upstream to the client. Returns 0, 1 when
 * the transaction ended (or became a tunnel), -1 if the connection ended. */
static int
pump_response(conn_t *c)
{
    uint64_t out_at_entry = c->t.bytes_out;

    for (;;) {
        int r;
        if (cbuf_len(&c->cout) > 0) {
            r = flush_head_and_body(c);
            if (r == 0) {
                c->c_want |= LOOP_WRITE;
                return 0;
            }
            if (r < 0) {
                conn_close(c);
                return -1;
            }
            continue;
        }
        if (c->t.resp_phase == RESP_HEAD && cbuf_len(&c->uin) > 0) {
            http_response_t resp;
            int h = http_parse_response(c->uin.data + c->uin.start, cbuf_len(&c->uin), c->t.meth, &resp);
            if (h < 0 && h != HTTP_INCOMPLETE) {
                conn_error(c, 502, TXN_TCP_MISS, "The origin server sent an invalid response.");
                return -1;
            }
            if (h > 0) {
                c->uin.start += (uint32_t)h;
                if (resp.status >= 200 && resp.status != 101) {
                    c->t.resp_body.kind = resp.framing.body;
                    c->t.resp_body.remaining = resp.framing.content_length;
                    c->t.resp_body.decode = resp.framing.body == HTTP_BODY_CHUNKED && c->t.version_minor == 0;
                    if (c->t.resp_body.decode)
                        http_chunked_init(&c->t.resp_body.chunk);
                    else
                        http_chunked_init_filter(&c->t.resp_body.chunk);
                    c->t.resp_body.done = resp.framing.body == HTTP_BODY_NONE ||
                                        (resp.framing.body == HTTP_BODY_LENGTH &&
                                         resp.framing.content_length == 0);
                    c->t.resp_body.scan = c->uin.start;
                    c->t.resp_keepalive = resp.framing.keep_alive &&
                                        resp.framing.body != HTTP_BODY_UNTIL_CLOSE;
                    if (resp.framing.body == HTTP_BODY_UNTIL_CLOSE || c->t.resp_body.decode)
                        c->close_after = true;
                    c->t.status = resp.status;
                    c->t.resp_phase = RESP_BODY;
                }
                if (resp.status == 101 && (!c->t.upgrade_requested || !h1msg_upgrade_answer_ok(c->t.upgrade_protos, &resp))) {
                    conn_error(c, 502, TXN_TCP_MISS,
                               "The origin server switched to a protocol the client did not ask for.");
                    return -1;
                }
                if (build_client_head(c, &resp) < 0) {
                    conn_close(c);
                    return -1;
                }
                c->t.resp_started = true;
                /* classify the body bytes behind the head, so that they
                 * leave with it */
                if (c->t.resp_phase == RESP_BODY && scan_response_body(c) < 0)
                    return -1;
                if (resp.status == 101) {
                    c->t.status = 101;
                    r = conn_flush_buf(c, c->cfd, &c->cout);
                    if (r < 0) {
                        conn_close(c);
                        return -1;
                    }
                    conn_start_tunnel(c);
                    return 1;
                }
                continue;
            }
        }
        if (c->t.resp_phase == RESP_BODY) {
            if (scan_response_body(c) < 0)
                return -1;
            if (c->t.resp_body.scan > c->uin.start) {
                ssize_t n = send(c->cfd, c->uin.data + c->uin.start,
                                 c->t.resp_body.scan - c->uin.start, MSG_NOSIGNAL);
                if (n < 0) {
                    if (errno == EINTR)
                        continue;
                    if (would_block()) {
                        c->c_want |= LOOP_WRITE;
                        return 0;
                    }
                    conn_close(c);
                    return -1;
                }
                c->uin.start += (uint32_t)n;
                c->t.bytes_out += (uint64_t)n;
                conn_progress(c);
                continue;
            }
            if (c->t.resp_body.done) {
                conn_finish_transaction(c);
                return 1;
            }
        }
        /* read more from the upstream, unless this wakeup has moved a
         * burst already: the others' turn (the upstream stays readable, so
         * level-triggered epoll brings it back in the next batch) */
        if (c->t.bytes_out - out_at_entry >= CONN_BODY_BURST) {
            c->u_want |= LOOP_READ;
            return 0;
        }
        /* the request has just gone out (this is not the upstream's
         * readiness): its answer cannot be there yet, or hardly ever, and a
         * recv would cost a system call to learn EAGAIN; the upstream is
         * watched for reading, so epoll says when it comes */
        if (c->t.resp_phase == RESP_HEAD && cbuf_len(&c->uin) == 0 && !c->upstream_readable) {
            c->u_want |= LOOP_READ;
            return 0;
        }
        if (conn_buf_take(c, &c->uin) < 0) {
            conn_close(c);
            return -1;
        }
        if (cbuf_len(&c->uin) == 0) {
            c->uin.start = c->uin.end = 0;
            c->t.resp_body.scan = 0;
        }
        if (c->uin.end == c->uin.cap) {
            cbuf_compact(&c->uin, c->t.resp_phase == RESP_BODY ? &c->t.resp_body.scan : NULL);
            if (c->uin.end == c->uin.cap) {
                uint32_t cap = c->uin.cap * 2;
                if (c->t.resp_phase != RESP_HEAD || cap > CONN_HEAD_BUF_MAX ||
                    cbuf_reserve(&c->uin, cap) < 0) {
                    conn_error(c, 502, TXN_TCP_MISS, "The origin server's response head is too large.");
                    return -1;
                }
            }
        }
        {
            ssize_t n = recv(c->ufd, c->uin.data + c->uin.end, c->uin.cap - c->uin.end, 0);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                if (would_block()) {
                    c->u_want |= LOOP_READ;
                    return 0;
                }
                if (!c->t.resp_started && c->t.upstream_reused && !c->t.retried)
                    return 2;
                conn_error(c, 502, TXN_TCP_MISS, "The origin server reset the connection.");
                return -1;
            }
            if (n == 0) {
                if (c->t.resp_phase == RESP_BODY && c->t.resp_body.kind == HTTP_BODY_UNTIL_CLOSE) {
                    c->t.resp_body.done = true;
                    c->t.resp_keepalive = false;
                    conn_finish_transaction(c);
                    return 1;
                }
                if (!c->t.resp_started && c->t.upstream_reused && !c->t.retried && cbuf_len(&c->uin) == 0)
                    return 2;
                if (!c->t.resp_started) {
                    conn_error(c, 502, TXN_TCP_MISS,
                               "The origin server closed the connection without a complete response.");
                    return -1;
                }
                /* truncated body: the client must see the connection end */
                conn_close(c);
                return -1;
            }
            grow_body_buffer(c, (size_t)n == (size_t)(c->uin.cap - c->uin.end));
            c->uin.end += (uint32_t)n;
            conn_progress(c);
        }
    }
}

/*
 * Once the request is sent, the client stays watched for reading while the
 * response is awaited or streams, so a keep-alive request costs no epoll_ctl
 * on the client side: bytes it pipelines wait in cin (up to its size), a
 * reset ends the transaction at once, an orderly close (recv gives 0, and
 * keeps giving it) lets the response finish and ends the connection when
 * the next request is read. Returns 0, or -1 if the connection was closed.
 */
static int
watch_client(conn_t *c)
{
    if (!c->t.req_body.done || c->client_eof)
        return 0;    /* pump_request reads the body; after an EOF nothing comes */
    if (c->client_readable) {
        c->client_readable = false;
        if (cbuf_len(&c->cin) == 0)
            c->cin.start = c->cin.end = c->t.req_body.scan = 0;
        if (c->cin.end == c->cin.cap)
            cbuf_compact(&c->cin, &c->t.req_body.scan);
        if (conn_buf_take(c, &c->cin) < 0) {
            conn_close(c);
            return -1;
        }
        if (c->cin.end < c->cin.cap) {
            ssize_t n = recv(c->cfd, c->cin.data + c->cin.end, c->cin.cap - c->cin.end, 0);
            if (n > 0) {
                c->cin.end += (uint32_t)n;   /* not progress: the deadline is the origin's */
            } else if (n == 0) {
                c->client_eof = true;
                return 0;
            } else if (errno != EINTR && !would_block()) {
                conn_close(c);
                return -1;
            }
        }
    }
    if (c->cin.end < c->cin.cap || c->cin.start > 0)
        c->c_want |= LOOP_READ;
    return 0;
}

/*
 * Pumps both directions of a forwarded transaction. A pooled upstream that
 * turns out to be closed before any response byte (the origin's keep-alive
 * timeout raced with us) is replaced once by a fresh connection, replaying
 * the kept request head; requests with a body are not replayed.
 */
void
conn_forward(conn_t *c)
{
    int r;

    c->c_want = 0;
    c->u_want = 0;
    r = pump_request(c);
    if (r == 0)
        r = pump_response(c);
    if (r == 2) {
        if (cbuf_len(&c->replay) == 0) {
            conn_error(c, 502, TXN_TCP_MISS, "The origin server closed a reused connection.");
            return;
        }
        log_debug("conn %s: pooled upstream was closed, retrying", c->peer_str);
        conn_close_upstream(c);
        conn_buf_give(c, &c->uin);
        cbuf_release(&c->uout);
        c->uout = c->replay;
        c->replay = (cbuf_t){0};
        c->t.retried = true;
        c->t.upstream_reused = false;
        c->t.addr_idx = 0;
        conn_connect_next(c);
        return;
    }
    if (r != 0 || c->state != CONN_S_FORWARD)
        return;
    if (c->t.resp_started)
        cbuf_release(&c->replay);
    if (watch_client(c) < 0)
        return;
    conn_update_io(c);
    conn_arm_timer(c);
}

/* ---- tunnels ---- */

void
conn_tunnel(conn_t *c)
{
    relay_env_t env = { .pool = worker_relaybufs(c->w), .loop = c->loop,
                        .last_progress = &c->last_progress };

    c->c_want = 0;
    c->u_want = 0;
    /* client -> upstream: leftovers in cin first; upstream -> client: cout then uin */
    if (relay_pump(&c->up, &env, c->cfd, c->ufd, &c->cin, &c->c_want, &c->u_want, NULL) < 0)
        goto done;
    if (cbuf_len(&c->cout) > 0) {
        int r = conn_flush_buf(c, c->cfd, &c->cout);
        if (r < 0)
            goto done;
        if (r == 0) {
            c->c_want |= LOOP_WRITE;
            conn_update_io(c);
            conn_arm_timer(c);
            return;
        }
    }
    if (relay_pump(&c->down, &env, c->ufd, c->cfd, &c->uin, &c->u_want, &c->c_want,
                   &c->t.bytes_out) < 0)
        goto done;
    if (c->up.shut && c->down.shut)
        goto done;
    conn_update_io(c);
    conn_arm_timer(c);
    return;
done:
    conn_close(c);
}

