/*
 * proxy/conn.c: the client connection state machine (see conn.h).
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
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../common/cidr.h"
#include "../common/log.h"
#include "access.h"
#include "admit.h"
#include "cbuf.h"
#include "h1msg.h"
#include "intercept.h"
#include "pages.h"
#include "sni.h"
#include "tunnel.h"
#include "http.h"
#include "limits.h"
#include "txnlog.h"

/*
 * States. The invariants each one keeps:
 *  IDLE     between requests; no upstream; cin may be NULL (no bytes yet).
 *  HEAD     some bytes of a request head are in cin; no upstream.
 *  RESOLVE  a request is accepted; dnsq is pending; no upstream.
 *  CONNECT  ufd is a connecting socket (addrs[addr_idx]); uout holds the head.
 *  FORWARD  ufd is connected; request and response streams are pumped.
 *  TUNNEL   CONNECT or 101 Upgrade: bytes relayed both ways until both ends
 *           closed their sending side (or an error / the idle timeout).
 *  LOCAL    a response we generated (error page) is being written from cout;
 *           the connection closes when it is sent.
 *  CLOSED   conn_close() ran; memory is freed after the batch.
 */
enum conn_state {
    CONN_S_IDLE = 0,
    CONN_S_HEAD,
    CONN_S_RESOLVE,
    CONN_S_CONNECT,
    CONN_S_FORWARD,
    CONN_S_TUNNEL,
    CONN_S_LOCAL,
    CONN_S_CLOSED,
};

static const char *const conn_state_names[] = {
    "idle", "head", "resolve", "connect", "forward", "tunnel", "local", "closed",
};


/* The body being streamed in one direction. */
typedef struct body {
    enum http_body_kind kind;
    uint64_t remaining;   /* HTTP_BODY_LENGTH */
    http_chunked_t chunk; /* HTTP_BODY_CHUNKED */
    bool decode;          /* strip chunked framing (HTTP/1.0 client) */
    bool done;
    uint32_t scan;        /* buffer offset up to which bytes are classified */
} body_t;

enum conn_resp_phase {
    RESP_HEAD = 0,   /* waiting for (another) response head */
    RESP_BODY,       /* streaming the body */
};

/*
 * One transaction: everything that belongs to the current request and its
 * response. Reset in one place (reset_transaction) between keep-alive
 * requests; the record for the logs and the store is built from it.
 */
struct conn_txn {
    uint64_t start_ms;
    enum http_method meth;
    char method[24];
    char *url;                /* for the log: absolute URL or host:port */
    size_t url_len;
    char host[DNS_MAX_NAME + 1];
    uint16_t port;
    int version_minor;
    bool client_keepalive;
    bool upgrade_requested;
    bool req_head_sent;       /* some bytes of the request head went upstream */
    char upgrade_protos[CONN_UPGRADE_MAX]; /* protocols offered upstream, ", "-separated */
    bool upstream_reused;
    bool retried;
    bool resp_started;        /* a response head was sent to the client */
    int status;               /* sent to the client */
    uint64_t bytes_out;       /* sent to the client */
    enum txn_result result;   /* the log's result tag */
    enum txn_hier hier;
    char peer_ip[CIDR_STRLEN];
    char mime[64];
    char user[MUS_NAME_MAX];      /* identity for the log, "" if none */
    bool decided;                 /* acc holds the policy decision of this request */
    access_result_t acc;
    dns_result_t *addrs;      /* the destination's addresses (allocated per transaction) */
    size_t addr_idx;
    body_t req_body, resp_body;
    enum conn_resp_phase resp_phase;
    bool resp_keepalive;      /* upstream may be reused after this response */
    /* intercepted traffic */
    bool raw_tunnel;          /* relay the client's bytes as they are (bypass, TLS by SNI) */
    bool tls;                 /* the client speaks TLS: answers are TLS alerts, not pages */
    bool bypass;              /* in proxy.transparent.bypass */
    bool verify_host;         /* the DNS answer is only compared with the original destination */
    bool host_mismatch;
    bool ech;
};

struct conn {
    worker_t *w;
    loop_t *loop;
    cfgref_t *cfg;            /* configuration of the current request */
    worker_link_t link;
    enum conn_state state;
    enum config_listen_mode mode;

    int cfd;
    loop_io_t cio;
    int ufd;
    loop_io_t uio;
    loop_timer_t timer;
    uint64_t last_progress;   /* loop ms of the last byte moved or state change */
    uint32_t c_want, u_want;  /* interest computed by the pumps */

    struct sockaddr_storage peer;
    socklen_t peer_len;
    char peer_str[CIDR_STRLEN];

    cbuf_t cin, uin, cout, uout;
    cbuf_t replay;            /* request head kept while a pooled upstream is unproven */

    struct conn_txn t;        /* the current transaction */
    bool close_after;         /* close the client after this response */
    bool draining;
    bool resume_pending;      /* conn_resume is queued (loop_defer) */
    bool client_readable;     /* the event being handled says the client sent bytes */
    bool client_eof;          /* the client finished sending (recv gave 0) */
    uint16_t local_port;          /* the listener's port */
    bool intercepted;             /* a transparent listener: orig_dst is where the client was going */
    bool spoof;                   /* upstream connections leave from the client's address */
    unsigned n_requests;          /* transactions started on this connection */
    struct sockaddr_storage orig_dst;
    socklen_t orig_dst_len;
    dns_query_t *dnsq;
    relay_t up, down;         /* tunnel: client->upstream, upstream->client */
};

static void conn_close(conn_t *c);
static int body_scan(body_t *body, cbuf_t *b);
static void conn_on_io(loop_t *loop, loop_io_t *io, uint32_t events);
static void conn_on_timer(loop_t *loop, loop_timer_t *t);
static void conn_read_head(conn_t *c);
static void conn_forward(conn_t *c);
static void conn_tunnel(conn_t *c);
static void conn_connect_next(conn_t *c);
static void conn_error(conn_t *c, int status, enum txn_result tag, const char *what);

/* ---- small helpers ---- */

static uint32_t
io_interest(uint32_t want)
{
    return want & (LOOP_READ | LOOP_WRITE);
}

static void
progress(conn_t *c)
{
    c->last_progress = loop_now(c->loop);
}

static bool
would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK;
}

static void
set_state(conn_t *c, enum conn_state s)
{
    log_debug("conn %s: %s -> %s", c->peer_str, conn_state_names[c->state], conn_state_names[s]);
    c->state = s;
    progress(c);
}

static const config_t *
cfg(const conn_t *c)
{
    return c->cfg->cfg;
}

/* The deadline of the current wait, from the state and the configuration. */
static uint64_t
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

static void
arm_timer(conn_t *c)
{
    uint64_t d = conn_deadline(c);

    if (d != UINT64_MAX)
        loop_timer_set_at(c->loop, &c->timer, d);
}

static void
update_io(conn_t *c)
{
    if (c->state == CONN_S_CLOSED)
        return;
    if (c->cfd >= 0)
        loop_io_set(c->loop, &c->cio, io_interest(c->c_want));
    if (c->ufd >= 0 && c->uio.fd >= 0)
        loop_io_set(c->loop, &c->uio, io_interest(c->u_want));
}

static void
close_upstream(conn_t *c)
{
    if (c->ufd < 0)
        return;
    loop_io_stop(c->loop, &c->uio);
    close(c->ufd);
    c->ufd = -1;
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
static void
log_transaction(conn_t *c)
{
    alog_t *a = worker_alog(c->w), *x = worker_extlog(c->w);
    txnstore_t *st = worker_store(c->w);
    txn_record_t r;

    if (!alog_enabled(a) && !alog_enabled(x) && st == NULL)
        return;
    txn_build(c, &r);
    txnlog_squid(a, &r);
    txnlog_extended(x, &r);
    if (st != NULL)
        txnstore_submit(st, &r);   /* never waits; a full queue counts a drop */
}

/* Forgets everything of the finished transaction. */
static void
reset_transaction(conn_t *c)
{
    free(c->t.url);
    free(c->t.addrs);
    memset(&c->t, 0, sizeof(c->t));
    cbuf_release(&c->cout);
    cbuf_release(&c->uout);
    cbuf_release(&c->uin);
    cbuf_release(&c->replay);
}

/* ---- teardown ---- */

static void
conn_free_deferred(void *arg)
{
    conn_t *c = arg;

    cbuf_release(&c->cin);
    cbuf_release(&c->uin);
    cbuf_release(&c->cout);
    cbuf_release(&c->uout);
    cbuf_release(&c->replay);
    free(c->t.addrs);
    free(c->t.url);
    cfgref_put(c->cfg);
    free(c);
}

/* The only way a connection ends. Logs an unfinished transaction. */
static void
conn_close(conn_t *c)
{
    if (c->state == CONN_S_CLOSED)
        return;
    if (c->t.method[0] != '\0') {
        /* the client left (or the body was cut) before the response ended;
         * Squid logs TCP_MISS_ABORTED, with /000 if no response began */
        if (c->state == CONN_S_FORWARD && c->t.result == TXN_TCP_MISS)
            c->t.result = TXN_TCP_MISS_ABORTED;
        log_transaction(c);
    }
    if (c->dnsq != NULL) {
        dns_cancel(c->dnsq);
        c->dnsq = NULL;
    }
    loop_timer_cancel(c->loop, &c->timer);
    loop_io_stop(c->loop, &c->cio);
    close(c->cfd);
    c->cfd = -1;
    close_upstream(c);
    relay_reset(&c->up, worker_relaybufs(c->w));
    relay_reset(&c->down, worker_relaybufs(c->w));
    worker_link_del(c->w, &c->link);
    c->state = CONN_S_CLOSED;
    if (loop_defer(c->loop, conn_free_deferred, c) < 0)
        log_error("conn: cannot defer free: leaking one connection");
}

/* ---- generated responses ---- */



/*
 * Sends a response we generated ourselves (error page, block page, 407, the
 * probe) and ends any DNS or upstream activity of the request. With close
 * set, or when the request has a body we did not read, the connection
 * closes once the response is sent; otherwise the next request is read.
 */
static void
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
                        "Content-Length: %zu\r\nCache-Control: no-store\r\n%s%s\r\n",
                        status, pages_reason(status), ctype, blen, extra_headers,
                        c->close_after ? "Connection: close\r\n" : "");
    }
    if (c->dnsq != NULL) {
        dns_cancel(c->dnsq);
        c->dnsq = NULL;
    }
    close_upstream(c);
    cbuf_release(&c->cout);
    if (hlen < 0 || (size_t)hlen >= sizeof(head) ||
        cbuf_append(&c->cout, head, (size_t)hlen) < 0 || (blen > 0 && cbuf_append(&c->cout, body, blen) < 0)) {
        conn_close(c);
        return;
    }
    c->t.status = status;
    c->t.result = tag;
    snprintf(c->t.mime, sizeof(c->t.mime), "%s", ctype);
    if (c->t.method[0] == '\0')
        snprintf(c->t.method, sizeof(c->t.method), "NONE");
    c->t.resp_started = true;
    set_state(c, CONN_S_LOCAL);
    c->c_want = 0;
    c->u_want = 0;
    conn_read_head(c); /* LOCAL: flushes cout */
}

/*
 * Answers the current request with an error page saying what went wrong and
 * closes the connection once it is sent. tag is the access-log result tag.
 */
static void
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
static void
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

/* ---- writing ---- */

/* Writes pending bytes of b to fd. Returns 1 if all sent, 0 if blocked,
 * -1 on error. Counts bytes sent to the client. */
static int
flush_buf(conn_t *c, int fd, cbuf_t *b)
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
        progress(c);
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
static void
record_url(conn_t *c, const admit_request_t *rq)
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

static void conn_on_resolved(void *arg, int status, const char *err, const dns_result_t *res);
static void conn_verified(conn_t *c, const dns_result_t *res);

static void
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
                c->t.upstream_reused = true;
                cidr_addr_str((struct sockaddr *)&c->t.addrs->addr[i], c->t.peer_ip, sizeof(c->t.peer_ip));
                c->t.hier = TXN_HIER_DIRECT;
                /* the origin may have closed it a moment ago: keep the head to replay */
                cbuf_release(&c->replay);
                if (c->t.req_body.kind == HTTP_BODY_NONE &&
                    cbuf_append(&c->replay, c->uout.data + c->uout.start, cbuf_len(&c->uout)) < 0)
                    cbuf_release(&c->replay);
                set_state(c, CONN_S_FORWARD);
                arm_timer(c);
                conn_forward(c);
                return;
            }
        }
    }
    c->t.addr_idx = 0;
    conn_connect_next(c);
}

static void
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

/* ---- intercepted traffic: the original destination ---- */

/* Connects to where the client was going, whatever names were involved. */
static void
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
        set_state(c, CONN_S_RESOLVE);
    conn_start_upstream(c);
}

/* The Host check's verdict: res is the name's answer (NULL if it failed).
 * Every address of the answer counts, so a name with many addresses (round
 * robin, a CDN) matches whichever one the client was given among them. */
static void
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
static void
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
        update_io(c);
        arm_timer(c);
        return;
    }
    conn_verified(c, r == DNS_ERROR ? NULL : c->t.addrs);
}

/* Relays the client's bytes (those in cin first) to the original
 * destination untouched: the bypass list, and TLS decided by its SNI. */
static void
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

/* The block page: what was blocked, why, for whom, and what to do. */
static void
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

static void
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

/* The admission step for the current transaction; the policy's answer and
 * the user it names become the transaction's. */
static void
conn_decide(conn_t *c, const admit_request_t *rq, admit_result_t *res)
{
    admit_decide(cfg(c), c->cfg->policy, worker_surrogates(c->w), rq, res, &c->t.acc);
    if (res->decided) {
        c->t.decided = true;
        snprintf(c->t.user, sizeof(c->t.user), "%s", c->t.acc.user);
    }
}

/*
 * An intercepted connection that is not HTTP: TLS decided by its SNI (sni,
 * NULL if the ClientHello has none), or another protocol (sni NULL). It is
 * admitted exactly like a CONNECT to that host and the original port; with
 * no name the host is the destination address, or proxy.transparent.no_sni
 * blocks it. Proceeding relays the bytes read so far, then the rest.
 */
static void
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
    record_url(c, &rq);
    if (sni == NULL && cf->transparent.no_sni == CONFIG_NO_SNI_BLOCK &&
        !intercept_bypassed(&cf->transparent, NULL, 0, dst)) {
        conn_error(c, 403, TXN_TCP_DENIED, "Connections without a server name are not allowed.");
        return;
    }
    conn_decide(c, &rq, &res);
    switch (res.verdict) {
    case ADMIT_DENY:
    case ADMIT_PROBE:   /* not reached: the probe host never tunnels */
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
static bool
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
static bool
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

/* Handles a complete request head of head_len bytes at cin.start. */
static void
conn_handle_request(conn_t *c, const http_request_t *req, size_t head_len)
{
    mus_identity_t id;                     /* the map's answer, for this request only */
    enum admit_route route = ADMIT_ROUTE_RESOLVE;
    const config_t *cf;
    int r;
    char what[512];

    cfgref_t *cur = worker_cfg(c->w);
    if (cur != c->cfg) {
        cfgref_put(c->cfg);
        c->cfg = cfgref_get(cur);
    }
    cf = cfg(c);
    c->n_requests++;
    c->cin.start += (uint32_t)head_len;
    c->t.meth = req->meth;
    snprintf(c->t.method, sizeof(c->t.method), "%.*s", (int)(req->method.len < 23 ? req->method.len : 23),
             req->method.p);
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
            snprintf(c->t.user, sizeof(c->t.user), "%s", id.s.name);
        admit_from_http(&rq, req, cf->visible_hostname);
        if (c->t.host[0] != '\0')
            record_url(c, &rq);
        conn_decide(c, &rq, &res);
        switch (res.verdict) {
        case ADMIT_DENY:
            conn_error(c, res.status, res.tag, res.why);
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
    if (body_scan(&c->t.req_body, &c->cin) < 0) {
        conn_error(c, 400, TXN_NONE_NONE, "Malformed chunked request body.");
        return;
    }
    if (req->meth != HTTP_M_CONNECT && build_upstream_head(c, req) < 0) {
        conn_error(c, 500, TXN_NONE_NONE, "Out of memory.");
        return;
    }
    /* the request head is no longer needed: only body bytes stay in cin */
    set_state(c, CONN_S_RESOLVE);
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
        update_io(c);
        arm_timer(c);
        return;
    }
    conn_start_upstream(c);
}

/* ---- reading request heads ---- */

static void
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
static void
conn_next_request(conn_t *c)
{
    reset_transaction(c);
    if (cbuf_len(&c->cin) > 0) {
        c->t.start_ms = loop_now(c->loop);
        set_state(c, CONN_S_HEAD);
        if (!c->resume_pending) {
            if (loop_defer(c->loop, conn_resume, c) < 0) {
                conn_close(c);
                return;
            }
            c->resume_pending = true;
        }
    } else {
        cbuf_release(&c->cin); /* idle connections hold no buffers */
        set_state(c, CONN_S_IDLE);
    }
    c->c_want = LOOP_READ;
    c->u_want = 0;
    update_io(c);
    arm_timer(c);
}

static void
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
static void
conn_read_head(conn_t *c)
{
    if (c->state == CONN_S_LOCAL) {
        int r = flush_buf(c, c->cfd, &c->cout);
        if (r < 0 || (r > 0 && (c->close_after || c->draining))) {
            conn_close(c);
            return;
        }
        if (r > 0) {
            /* a local answer on a connection that stays open */
            log_transaction(c);
            c->t.method[0] = '\0';
            conn_next_request(c);
            return;
        } else {
            c->c_want = LOOP_WRITE;
            update_io(c);
            arm_timer(c);
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
        if (c->cin.data == NULL && cbuf_reserve(&c->cin, CONN_BUF_SIZE) < 0) {
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
                    cbuf_release(&c->cin);
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
            set_state(c, CONN_S_HEAD);
        }
        c->cin.end += (uint32_t)n;
        conn_parse_head(c);
        if (c->state != CONN_S_HEAD)
            return;
    }
    c->c_want = LOOP_READ;
    update_io(c);
    arm_timer(c);
}

/* ---- upstream connect ---- */

static void
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
        c->c_want = 0;
        c->u_want = LOOP_WRITE;
        update_io(c);
        set_state(c, CONN_S_CONNECT);
        arm_timer(c);
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



static void
conn_start_tunnel(conn_t *c)
{
    relay_init(&c->up, c->cfg->cfg->tunnel_relay, c->ufd);
    relay_init(&c->down, c->cfg->cfg->tunnel_relay, c->cfd);
    /* bytes the client sent after the CONNECT head (e.g. a TLS ClientHello)
     * stay in cin and go first; bytes after a 101 head stay in uin */
    set_state(c, CONN_S_TUNNEL);
    conn_tunnel(c);
}

static void
conn_connected(conn_t *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->ufd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        log_debug("conn %s: connect %s: %s", c->peer_str, c->t.peer_ip, strerror(err));
        close_upstream(c);
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
    set_state(c, CONN_S_FORWARD);
    conn_forward(c);
}

/* ---- forwarding ---- */

/* Classifies new bytes of b as body bytes; returns -1 on a framing error. */
static int
body_scan(body_t *body, cbuf_t *b)
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
        close_upstream(c);
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
        if (body_scan(&c->t.req_body, &c->cin) < 0) {
            request_body_malformed(c);
            return -1;
        }
        if (cbuf_len(&c->uout) > 0) {
            uint32_t pending = cbuf_len(&c->uout);
            r = flush_buf(c, c->ufd, &c->uout);
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
            progress(c);
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
            progress(c);
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
static void
finish_transaction(conn_t *c)
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
    } else {
        close_upstream(c);
    }
    log_transaction(c);
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
        progress(c);
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
    if (body_scan(&c->t.resp_body, &c->uin) == 0)
        return 0;
    log_info("conn %s: malformed chunked response from %s", c->peer_str, c->t.peer_ip);
    conn_close(c);
    return -1;
}

/* Moves response bytes from the upstream to the client. Returns 0, 1 when
 * the transaction ended (or became a tunnel), -1 if the connection ended. */
static int
pump_response(conn_t *c)
{
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
                    r = flush_buf(c, c->cfd, &c->cout);
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
                progress(c);
                continue;
            }
            if (c->t.resp_body.done) {
                finish_transaction(c);
                return 1;
            }
        }
        /* read more from the upstream */
        if (c->uin.data == NULL && cbuf_reserve(&c->uin, CONN_BUF_SIZE) < 0) {
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
                    finish_transaction(c);
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
            c->uin.end += (uint32_t)n;
            progress(c);
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
        if (c->cin.data == NULL && cbuf_reserve(&c->cin, CONN_BUF_SIZE) < 0) {
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
static void
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
        close_upstream(c);
        cbuf_release(&c->uin);
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
    update_io(c);
    arm_timer(c);
}

/* ---- tunnels ---- */

static void
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
        int r = flush_buf(c, c->cfd, &c->cout);
        if (r < 0)
            goto done;
        if (r == 0) {
            c->c_want |= LOOP_WRITE;
            update_io(c);
            arm_timer(c);
            return;
        }
    }
    if (relay_pump(&c->down, &env, c->ufd, c->cfd, &c->uin, &c->u_want, &c->c_want,
                   &c->t.bytes_out) < 0)
        goto done;
    if (c->up.shut && c->down.shut)
        goto done;
    update_io(c);
    arm_timer(c);
    return;
done:
    conn_close(c);
}

/* ---- events ---- */

static void
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
static void
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
    conn_dispatch(c);
}

static void
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
    worker_link_add(w, &c->link, c);
    c->state = CONN_S_IDLE;
    c->t.start_ms = loop_now(c->loop);
    c->last_progress = c->t.start_ms;
    /* a new connection must send its first request within the header timeout */
    c->state = CONN_S_HEAD;
    arm_timer(c);
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
