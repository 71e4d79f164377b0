/*
 * proxy/conn_int.h: the inside of a client connection, shared by the files
 * that implement it and by nothing else: conn.c (life cycle, states,
 * timers, reading heads, admission, the transaction record), conn_forward.c
 * (upstream connect, the two body pumps, tunnels), conn_local.c (answers
 * the proxy writes itself: error, block, 407 and probe pages) and
 * conn_intercept.c (intercepted traffic: the original destination, the
 * Host check, bypass, TLS by SNI). Everyone else uses conn.h.
 */
#ifndef MUS_PROXY_CONN_INT_H
#define MUS_PROXY_CONN_INT_H

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
    const char *cache_control;   /* a local answer's Cache-Control; NULL: no-store */
    bool unlogged;               /* a metrics scrape: not a client transaction */
};

struct conn {
    worker_t *w;
    loop_t *loop;
    cfgref_t *cfg;            /* configuration of the current request; between
                               * requests, always the worker's current one */
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
    bool upstream_readable;   /* ... that the upstream has bytes (or closed) */
    bool client_eof;          /* the client finished sending (recv gave 0) */
    uint16_t local_port;          /* the listener's port */
    bool intercepted;             /* a transparent listener: orig_dst is where the client was going */
    bool spoof;                   /* upstream connections leave from the client's address */
    unsigned n_requests;          /* transactions started on this connection */
    struct sockaddr_storage orig_dst;
    socklen_t orig_dst_len;
    dns_query_t *dnsq;
    relay_t up, down;         /* tunnel: client->upstream, upstream->client */
    enum metrics_tunnel tunnel_kind;  /* TUNNEL: what it relays (counted in metrics.h) */
};


/* ---- shared inside the connection ---- */


static inline uint32_t
io_interest(uint32_t want)
{
    return want & (LOOP_READ | LOOP_WRITE);
}

static inline bool
would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK;
}

static inline const config_t *
cfg(const conn_t *c)
{
    return c->cfg->cfg;
}

void conn_progress(conn_t *c);
void conn_set_state(conn_t *c, enum conn_state s);
uint64_t conn_deadline(const conn_t *c);
void conn_arm_timer(conn_t *c);
void conn_update_io(conn_t *c);
void conn_close_upstream(conn_t *c);
void conn_log_transaction(conn_t *c);
void conn_reset_transaction(conn_t *c);
/* The client-read and upstream-read buffers come from the worker's spares
 * (relaybuf_get_conn) and go back there: take gives an empty b storage if
 * it has none (0, or -1 out of memory), give empties it. */
int conn_buf_take(conn_t *c, cbuf_t *b);
void conn_buf_give(conn_t *c, cbuf_t *b);
void conn_free_deferred(void *arg);
void conn_close(conn_t *c);
int conn_flush_buf(conn_t *c, int fd, cbuf_t *b);
void conn_record_url(conn_t *c, const admit_request_t *rq);
void conn_start_upstream(conn_t *c);
void conn_answer_pac(conn_t *c, bool remote);
void conn_answer_metrics(conn_t *c);
void conn_on_resolved(void *arg, int status, const char *err, const dns_result_t *res);
void conn_decide(conn_t *c, const admit_request_t *rq, admit_result_t *res);
void conn_handle_request(conn_t *c, const http_request_t *req, size_t head_len);
void conn_resume(void *arg);
void conn_next_request(conn_t *c);
void conn_parse_head(conn_t *c);
void conn_read_head(conn_t *c);
void conn_dispatch(conn_t *c);
void conn_on_io(loop_t *loop, loop_io_t *io, uint32_t events);
void conn_on_timer(loop_t *loop, loop_timer_t *t);
void conn_respond(conn_t *c, int status, enum txn_result tag, const char *ctype,
             const char *extra_headers, const char *body, size_t blen, bool close);
void conn_error(conn_t *c, int status, enum txn_result tag, const char *what);
void conn_answer_probe(conn_t *c, bool remote, const char *source, const mus_identity_t *id);
void conn_block_page(conn_t *c);
void conn_auth_required(conn_t *c, const policy_t *policy);
void conn_route_original(conn_t *c);
void conn_verified(conn_t *c, const dns_result_t *res);
void conn_verify_host(conn_t *c);
void conn_raw_tunnel(conn_t *c, bool bypass);
void conn_admit_raw(conn_t *c, const char *sni, size_t sni_len);
bool conn_peek_tls(conn_t *c);
bool conn_other_protocol(conn_t *c);
void conn_upstream_taken(conn_t *c, bool reused);
void conn_tunnel_ended(conn_t *c);
void conn_connect_next(conn_t *c);
void conn_start_tunnel(conn_t *c);
void conn_connected(conn_t *c);
int conn_body_scan(body_t *body, cbuf_t *b);
void conn_finish_transaction(conn_t *c);
void conn_forward(conn_t *c);
void conn_tunnel(conn_t *c);
void conn_on_resolved(void *arg, int status, const char *err, const dns_result_t *res);

#endif
