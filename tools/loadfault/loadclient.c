/*
 * tools/loadfault/loadclient.c: mp-loadclient, the load and fault client of
 * tools/loadfault.sh. One thread, one epoll loop, many non-blocking
 * connections to an HTTP forward proxy that each send absolute-form GETs.
 *
 *   mp-loadclient --proxy ADDR:PORT --url http://HOST:PORT/PATH [options]
 *     --conns N       connections (default 1)
 *     --idle K        K of them make one request, then stay open and idle
 *                     (keep-alive) until the end of the run, when each makes
 *                     one more request: the proof that the proxy kept it
 *     --idle-ramp MS  the idle ones open one every MS ms (the active ones
 *                     first, at once) instead of all at the start
 *     --duration S    the other (active) ones loop requests for S seconds
 *     --think MS      pause between two requests of an active connection
 *     --once          active connections make one request each, then close
 *     --timeout MS    a request without a complete answer by then fails
 *                     (default 30000)
 *     --src A[-B]     source addresses (IPv4, round robin over the range)
 *     --verify        check /size bodies byte by byte (byte i is i % 251)
 *     --pending N     connects in progress at most (default 200)
 *     --slowloris     every connection sends a request line, then one byte
 *                     of a header field every --drip MS (default 1000) and
 *                     never ends the head; records when the proxy ends it
 *                     and whether a 408 came first, and opens a new one in
 *                     its place (the load stays); stops after --duration
 *
 * It prints key=value lines on stdout for the script: its own CPU time
 * (cpu_s), connections and
 * connect errors; requests sent, answered (complete response), cut (a head
 * then fewer body bytes than announced), noresp (closed before a head),
 * timeouts, bad (unparsable, chunked, or --verify mismatches); one
 * status_NNN line per status seen; latency percentiles of the active
 * requests (ms, from the first byte sent to the last byte received) and
 * the median and largest time to a failure (cut, noresp, timeout, bad); the
 * idle connections ready, dropped by the proxy while idle and answered at
 * the end; for --slowloris the connections closed, those that got a 408,
 * those still open at the end and the age of the oldest of them, and the
 * close times (ms after connect).
 *
 * Not here: TLS, chunked responses (counted as bad), pipelining, CONNECT.
 * Timers are checked by a scan of every connection every SCAN_MS, which is
 * cheap at these sizes and keeps the loop simple.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   /* IP_BIND_ADDRESS_NO_PORT, strcasestr (Meson sets it too) */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LC_HEAD_MAX     2048     /* response head kept per connection */
#define LC_READ_BUF     65536    /* shared read buffer */
#define LC_EVENTS       1024     /* epoll events per wait */
#define LC_SCAN_MS      5        /* timer scan period */
#define LC_PATTERN_MOD  251u     /* mp-origin /size: byte i is i % 251 */
#define LC_DRAIN_MS     15000    /* after the run: wait this long for the rest */
#define LC_SLOW_FIELD   "X-Slow-Loris-Header: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n"

enum lc_role { LC_ACTIVE, LC_IDLE, LC_SLOW };

/* What a connection is doing; every state but LC_S_NONE and LC_S_DONE owns fd. */
enum lc_state {
    LC_S_NONE,        /* not opened yet */
    LC_S_CONNECTING,  /* connect() in progress */
    LC_S_SENDING,     /* request bytes left to send */
    LC_S_READING,     /* waiting for / reading the response */
    LC_S_THINKING,    /* active: between two requests (until due) */
    LC_S_HELD,        /* idle: answered once, held open until the end */
    LC_S_DRIPPING,    /* slowloris: next byte at due */
    LC_S_DONE,        /* finished, fd closed */
};

typedef struct lconn {
    int fd;
    enum lc_role role;
    enum lc_state state;
    bool final_req;          /* idle: this is the end-of-run request */
    uint32_t events;         /* epoll interest */
    uint64_t t_start;        /* request start (or connect, slowloris), ns */
    uint64_t due;            /* think end / next drip / request deadline, ns */
    size_t sent;             /* bytes of the request (or drip) sent */
    size_t hlen;
    bool head_done, chunked, close_after, got_any;
    int status;
    int64_t clen;            /* -1: none */
    uint64_t body;           /* body bytes received */
    char head[LC_HEAD_MAX];
} lconn_t;

typedef struct counts {
    uint64_t connections, connect_errors, sent, answered, cut, noresp, timeouts, bad;
    uint64_t reconnects, closed_by_proxy;
    uint64_t status[1000];
    uint64_t idle_ready, idle_dropped, idle_final, idle_ok;
    uint64_t slow_closed, slow_408, slow_open, slow_oldest_ms;
} counts_t;

typedef struct u32vec {
    uint32_t *v;
    size_t n, cap;
} u32vec_t;

/* options */
static struct sockaddr_in g_proxy;
static const char *g_url;
static char g_req[4096];
static size_t g_req_len;
static unsigned g_conns = 1, g_idle, g_pending_max = 200;
static double g_duration = 10;
static unsigned g_think_ms, g_timeout_ms = 30000, g_drip_ms = 1000, g_idle_ramp_ms;
static bool g_once, g_verify, g_slow;
static uint32_t g_src_lo, g_src_hi;   /* host order; 0 = no bind */

/* state */
static int g_ep = -1;
static lconn_t *g_c;
static counts_t g_n;
static u32vec_t g_lat_us, g_fail_ms, g_slow_ms;
static unsigned g_next_open, g_pending, g_open;
static bool g_ending;          /* the duration is over: no new active requests */
static bool g_finals_sent;
static uint64_t g_t0;
static volatile sig_atomic_t g_stop;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void vec_push(u32vec_t *v, uint32_t x)
{
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4096;
        uint32_t *p = realloc(v->v, cap * sizeof(*p));
        if (p == NULL)
            return;   /* a lost sample, not a wrong one */
        v->v = p;
        v->cap = cap;
    }
    v->v[v->n++] = x;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of a sorted vector, 0 if empty. */
static uint32_t quantile(const u32vec_t *v, double q)
{
    if (v->n == 0)
        return 0;
    size_t i = (size_t)(q * (double)(v->n - 1) + 0.5);
    return v->v[i < v->n ? i : v->n - 1];
}

/* ---- epoll interest ---- */

static void set_events(lconn_t *c, uint32_t ev)
{
    struct epoll_event e = { .events = ev, .data.u32 = (uint32_t)(c - g_c) };
    if (ev == c->events)
        return;
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &e) < 0)
        perror("mp-loadclient: epoll_ctl");
    c->events = ev;
}

static void close_conn(lconn_t *c)
{
    if (c->fd >= 0) {
        close(c->fd);   /* also leaves the epoll set */
        c->fd = -1;
        g_open--;
    }
    c->state = LC_S_DONE;
}

/* ---- opening ---- */

static void start_request(lconn_t *c);
static void drip(lconn_t *c);

static void reset_response(lconn_t *c)
{
    c->hlen = 0;
    c->head_done = c->chunked = c->close_after = c->got_any = false;
    c->status = 0;
    c->clen = -1;
    c->body = 0;
}

/* Opens connection c (non-blocking connect). */
static void open_conn(lconn_t *c, unsigned idx)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    c->fd = -1;
    if (fd < 0) {
        g_n.connect_errors++;
        c->state = LC_S_DONE;
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (g_src_lo != 0) {
        struct sockaddr_in src = { .sin_family = AF_INET };
        src.sin_addr.s_addr = htonl(g_src_lo + idx % (g_src_hi - g_src_lo + 1));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
            g_n.connect_errors++;
            close(fd);
            c->state = LC_S_DONE;
            return;
        }
    }
    if (connect(fd, (struct sockaddr *)&g_proxy, sizeof(g_proxy)) < 0 && errno != EINPROGRESS) {
        g_n.connect_errors++;
        close(fd);
        c->state = LC_S_DONE;
        return;
    }
    struct epoll_event e = { .events = EPOLLOUT, .data.u32 = (uint32_t)(c - g_c) };
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &e) < 0) {
        perror("mp-loadclient: epoll_ctl add");
        close(fd);
        g_n.connect_errors++;
        c->state = LC_S_DONE;
        return;
    }
    c->fd = fd;
    c->events = EPOLLOUT;
    c->state = LC_S_CONNECTING;
    c->due = now_ns() + (uint64_t)g_timeout_ms * 1000000u;
    g_pending++;
    g_open++;
}

static void connected(lconn_t *c)
{
    int err = 0;
    socklen_t l = sizeof(err);

    g_pending--;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0 || err != 0) {
        g_n.connect_errors++;
        close_conn(c);
        return;
    }
    g_n.connections++;
    if (c->role == LC_SLOW) {
        c->t_start = now_ns();
        c->sent = 0;
        reset_response(c);
        set_events(c, EPOLLIN | EPOLLRDHUP);
        c->state = LC_S_DRIPPING;
        c->due = c->t_start;
        drip(c);
        return;
    }
    start_request(c);
}

/* An active connection that ended (error or Connection: close) opens anew. */
static void reopen(lconn_t *c, unsigned idx)
{
    close_conn(c);
    if (c->role == LC_ACTIVE && !g_ending && !g_once && !g_stop) {
        g_n.reconnects++;
        open_conn(c, idx);
    }
}

/* ---- requests ---- */

static void send_more(lconn_t *c)
{
    while (c->sent < g_req_len) {
        ssize_t n = send(c->fd, g_req + c->sent, g_req_len - c->sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                set_events(c, EPOLLOUT | EPOLLIN | EPOLLRDHUP);
                return;
            }
            g_n.noresp++;
            reopen(c, (unsigned)(c - g_c));
            return;
        }
        c->sent += (size_t)n;
    }
    c->state = LC_S_READING;
    set_events(c, EPOLLIN | EPOLLRDHUP);
}

static void start_request(lconn_t *c)
{
    reset_response(c);
    c->sent = 0;
    c->t_start = now_ns();
    c->due = c->t_start + (uint64_t)g_timeout_ms * 1000000u;
    c->state = LC_S_SENDING;
    g_n.sent++;
    send_more(c);
}

/* Slowloris: sends one more byte of the never-ending head when due. */
static void drip(lconn_t *c)
{
    static const char field[] = LC_SLOW_FIELD;
    char b;
    size_t line = g_req_len - 2;     /* the request without its final CRLF */
    if (c->sent < line) {
        /* the request line and the first fields go at once */
        ssize_t n = send(c->fd, g_req + c->sent, line - c->sent, MSG_NOSIGNAL);
        if (n > 0)
            c->sent += (size_t)n;
    } else {
        b = field[(c->sent - line) % (sizeof(field) - 1)];
        if (send(c->fd, &b, 1, MSG_NOSIGNAL) == 1)
            c->sent++;
    }
    c->due = now_ns() + (uint64_t)g_drip_ms * 1000000u;
}

/* The proxy ended a slowloris connection. */
static void slow_closed(lconn_t *c)
{
    uint64_t ms = (now_ns() - c->t_start) / 1000000u;
    g_n.slow_closed++;
    if (c->hlen >= 12 && memcmp(c->head, "HTTP/1.1 408", 12) == 0)
        g_n.slow_408++;
    vec_push(&g_slow_ms, (uint32_t)ms);
    close_conn(c);
    if (!g_ending && !g_stop) {
        g_n.reconnects++;   /* the load stays at --conns slow connections */
        open_conn(c, (unsigned)(c - g_c));
    }
}

/* Parses the complete head in c->head. 0 ok, -1 unparsable. */
static int parse_head(lconn_t *c)
{
    char *p = c->head, *end = c->head + c->hlen;
    if (c->hlen < 12 || strncmp(p, "HTTP/1.", 7) != 0)
        return -1;
    c->status = atoi(p + 9);
    if (c->status < 100 || c->status > 999)
        return -1;
    for (p = memchr(p, '\n', (size_t)(end - p)); p != NULL && p + 1 < end;
         p = memchr(p, '\n', (size_t)(end - p))) {
        p++;
        char *eol = memchr(p, '\n', (size_t)(end - p));
        size_t l = eol ? (size_t)(eol - p) : (size_t)(end - p);
        if (l >= 15 && strncasecmp(p, "Content-Length:", 15) == 0)
            c->clen = strtoll(p + 15, NULL, 10);
        else if (l >= 18 && strncasecmp(p, "Transfer-Encoding:", 18) == 0)
            c->chunked = true;
        else if (l >= 11 && strncasecmp(p, "Connection:", 11) == 0) {
            char v[64];
            size_t k = l - 11 < sizeof(v) - 1 ? l - 11 : sizeof(v) - 1;
            memcpy(v, p + 11, k);
            v[k] = '\0';
            if (strcasestr(v, "close") != NULL)
                c->close_after = true;
        }
    }
    return 0;
}

/* One response finished (complete); what next for this connection. */
static void answered(lconn_t *c, unsigned idx)
{
    g_n.answered++;
    if (c->role == LC_ACTIVE)
        vec_push(&g_lat_us, (uint32_t)((now_ns() - c->t_start) / 1000u));
    if (c->role == LC_IDLE) {
        if (c->final_req) {
            g_n.idle_ok++;
            close_conn(c);
            return;
        }
        if (c->close_after) {
            g_n.closed_by_proxy++;
            g_n.idle_dropped++;
            close_conn(c);
            return;
        }
        g_n.idle_ready++;
        c->state = LC_S_HELD;
        set_events(c, EPOLLIN | EPOLLRDHUP);
        return;
    }
    if (c->close_after) {
        g_n.closed_by_proxy++;
        reopen(c, idx);
        return;
    }
    if (g_once || g_ending || g_stop) {
        close_conn(c);
        return;
    }
    if (g_think_ms > 0) {
        c->state = LC_S_THINKING;
        c->due = now_ns() + (uint64_t)g_think_ms * 1000000u;
        set_events(c, EPOLLIN | EPOLLRDHUP);
        return;
    }
    start_request(c);
}

/* Body bytes: counted, and checked against the /size pattern with --verify. */
static bool body_bytes(lconn_t *c, const unsigned char *p, size_t n)
{
    if (g_verify && c->status == 200) {
        for (size_t i = 0; i < n; i++)
            if (p[i] != (unsigned char)((c->body + i) % LC_PATTERN_MOD))
                return false;
    }
    c->body += n;
    return true;
}

/* A failed request: counted by how it failed, then the connection goes. */
static void failed(lconn_t *c, unsigned idx, uint64_t *counter)
{
    (*counter)++;
    if (c->state == LC_S_SENDING || c->state == LC_S_READING)
        vec_push(&g_fail_ms, (uint32_t)((now_ns() - c->t_start) / 1000000u));
    reopen(c, idx);
}

static void on_readable(lconn_t *c, unsigned idx)
{
    static unsigned char buf[LC_READ_BUF];

    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            /* the peer ended the connection (EOF or reset) */
            if (c->role == LC_SLOW) {
                slow_closed(c);
                return;
            }
            if (c->state == LC_S_HELD) {
                g_n.idle_dropped++;
                close_conn(c);
                return;
            }
            if (c->state == LC_S_THINKING) {
                g_n.closed_by_proxy++;   /* keep-alive ended between requests */
                reopen(c, idx);
                return;
            }
            if (c->head_done) {
                if (c->clen < 0) {
                    c->close_after = true;   /* body until close: complete */
                    answered(c, idx);
                    return;
                }
                failed(c, idx, &g_n.cut);
            } else {
                failed(c, idx, &g_n.noresp);
            }
            return;
        }
        size_t off = 0, len = (size_t)n;
        if (c->role == LC_SLOW || c->state == LC_S_HELD || c->state == LC_S_THINKING) {
            /* nothing was asked: keep the first bytes (a 408 page) */
            size_t k = len < LC_HEAD_MAX - c->hlen ? len : LC_HEAD_MAX - c->hlen;
            memcpy(c->head + c->hlen, buf, k);
            c->hlen += k;
            if (c->role != LC_SLOW) {
                g_n.bad++;
                if (c->state == LC_S_HELD)
                    g_n.idle_dropped++;
                reopen(c, idx);
                return;
            }
            continue;
        }
        while (off < len && !c->head_done) {
            /* copy up to the end of the head */
            unsigned char ch = buf[off++];
            if (c->hlen >= LC_HEAD_MAX - 1) {
                failed(c, idx, &g_n.bad);
                return;
            }
            c->head[c->hlen++] = (char)ch;
            if (ch == '\n' && c->hlen >= 4 && memcmp(c->head + c->hlen - 4, "\r\n\r\n", 4) == 0) {
                c->head[c->hlen] = '\0';
                c->head_done = true;
                if (parse_head(c) < 0 || c->chunked) {
                    failed(c, idx, &g_n.bad);
                    return;
                }
                g_n.status[c->status]++;
            }
        }
        if (!c->head_done)
            continue;
        if (off < len) {
            size_t take = len - off;
            if (c->clen >= 0 && c->body + take > (uint64_t)c->clen) {
                failed(c, idx, &g_n.bad);   /* more than announced: not pipelined here */
                return;
            }
            if (!body_bytes(c, buf + off, take)) {
                failed(c, idx, &g_n.bad);
                return;
            }
        }
        if (c->clen >= 0 && c->body == (uint64_t)c->clen) {
            answered(c, idx);
            return;
        }
    }
}

static void on_event(unsigned idx, uint32_t ev)
{
    lconn_t *c = &g_c[idx];

    if (c->fd < 0)
        return;
    switch (c->state) {
    case LC_S_CONNECTING:
        if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
            connected(c);
        return;
    case LC_S_SENDING:
        if (ev & EPOLLOUT)
            send_more(c);
        if (c->fd >= 0 && c->state == LC_S_READING && (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
            on_readable(c, idx);
        else if (c->fd >= 0 && (ev & (EPOLLERR | EPOLLHUP)))
            failed(c, idx, &g_n.noresp);
        return;
    case LC_S_READING:
    case LC_S_THINKING:
    case LC_S_HELD:
    case LC_S_DRIPPING:
        if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
            on_readable(c, idx);
        return;
    case LC_S_NONE:
    case LC_S_DONE:
        return;
    }
}

/* ---- timers: one scan over every connection ---- */

static void scan(uint64_t now)
{
    for (unsigned i = 0; i < g_conns; i++) {
        lconn_t *c = &g_c[i];
        if (c->fd < 0 || now < c->due)
            continue;
        switch (c->state) {
        case LC_S_CONNECTING:
            g_pending--;
            g_n.connect_errors++;
            close_conn(c);
            break;
        case LC_S_SENDING:
        case LC_S_READING:
            failed(c, i, &g_n.timeouts);
            break;
        case LC_S_THINKING:
            if (g_ending || g_stop)
                close_conn(c);
            else
                start_request(c);
            break;
        case LC_S_DRIPPING:
            drip(c);
            break;
        case LC_S_HELD:
        case LC_S_NONE:
        case LC_S_DONE:
            break;
        }
    }
}

/* Opens more connections while fewer than g_pending_max connects are in
 * progress. Connection i is idle if i < g_idle. With --idle-ramp the active
 * ones open first and idle connection k at t0 + k * ramp. Returns true once
 * every connection not ramped is open (the duration counts from then). */
static bool open_more(uint64_t now)
{
    if (g_ending)
        return true;   /* what is not open by now never opens */
    while (g_next_open < g_conns && g_pending < g_pending_max) {
        unsigned i = g_next_open;
        if (g_idle_ramp_ms > 0) {
            /* actives: g_idle .. g_conns-1, then the idle ones on their schedule */
            unsigned k = g_next_open < g_conns - g_idle ? g_idle + g_next_open
                                                        : g_next_open - (g_conns - g_idle);
            if (k < g_idle && now < g_t0 + (uint64_t)k * g_idle_ramp_ms * 1000000u)
                break;
            i = k;
        }
        lconn_t *c = &g_c[i];
        c->role = g_slow ? LC_SLOW : (i < g_idle ? LC_IDLE : LC_ACTIVE);
        open_conn(c, i);
        g_next_open++;
    }
    return g_next_open >= (g_idle_ramp_ms > 0 ? g_conns - g_idle : g_conns);
}

/* The end of the run: every idle connection makes its final request. */
static void send_finals(void)
{
    for (unsigned i = 0; i < g_conns; i++) {
        lconn_t *c = &g_c[i];
        if (c->role == LC_IDLE && c->state == LC_S_HELD && c->fd >= 0) {
            c->final_req = true;
            g_n.idle_final++;
            start_request(c);
        }
    }
    g_finals_sent = true;
}

/* ---- options ---- */

static void usage(void)
{
    fprintf(stderr,
            "usage: mp-loadclient --proxy ADDR:PORT --url http://HOST:PORT/PATH [--conns N]\n"
            "         [--idle K] [--idle-ramp MS] [--duration S] [--think MS] [--once] [--timeout MS]\n"
            "         [--src A[-B]] [--verify] [--pending N] [--slowloris [--drip MS]]\n");
    exit(2);
}

static int parse_addr(const char *s, struct sockaddr_in *out)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= sizeof(host))
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)atoi(colon + 1));
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static int parse_src(const char *s)
{
    char a[32], b[32];
    struct in_addr x, y;
    const char *dash = strchr(s, '-');
    if (dash == NULL) {
        snprintf(a, sizeof(a), "%s", s);
        snprintf(b, sizeof(b), "%s", s);
    } else {
        snprintf(a, sizeof(a), "%.*s", (int)(dash - s), s);
        snprintf(b, sizeof(b), "%s", dash + 1);
    }
    if (inet_pton(AF_INET, a, &x) != 1 || inet_pton(AF_INET, b, &y) != 1)
        return -1;
    g_src_lo = ntohl(x.s_addr);
    g_src_hi = ntohl(y.s_addr);
    return g_src_lo <= g_src_hi ? 0 : -1;
}

static void build_request(void)
{
    const char *h = strstr(g_url, "://");
    char host[256];
    size_t hl;
    if (h == NULL)
        usage();
    h += 3;
    hl = strcspn(h, "/");
    if (hl == 0 || hl >= sizeof(host))
        usage();
    memcpy(host, h, hl);
    host[hl] = '\0';
    int n = snprintf(g_req, sizeof(g_req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: mp-loadclient\r\n\r\n",
                     g_url, host);
    if (n < 0 || (size_t)n >= sizeof(g_req))
        usage();
    g_req_len = (size_t)n;
}

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void report(double elapsed)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("elapsed_s=%.2f\n", elapsed);
    printf("cpu_s=%.2f\n", (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                               (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    printf("connections=%" PRIu64 "\nconnect_errors=%" PRIu64 "\n", g_n.connections,
           g_n.connect_errors);
    printf("sent=%" PRIu64 "\nanswered=%" PRIu64 "\ncut=%" PRIu64 "\nnoresp=%" PRIu64
           "\ntimeouts=%" PRIu64 "\nbad=%" PRIu64 "\n",
           g_n.sent, g_n.answered, g_n.cut, g_n.noresp, g_n.timeouts, g_n.bad);
    printf("reconnects=%" PRIu64 "\nclosed_by_proxy=%" PRIu64 "\n", g_n.reconnects,
           g_n.closed_by_proxy);
    for (unsigned s = 0; s < 1000; s++)
        if (g_n.status[s])
            printf("status_%03u=%" PRIu64 "\n", s, g_n.status[s]);
    qsort(g_lat_us.v, g_lat_us.n, sizeof(uint32_t), cmp_u32);
    printf("latency_samples=%zu\n", g_lat_us.n);
    printf("p50_ms=%.3f\np90_ms=%.3f\np99_ms=%.3f\nmax_ms=%.3f\n",
           quantile(&g_lat_us, 0.50) / 1000.0, quantile(&g_lat_us, 0.90) / 1000.0,
           quantile(&g_lat_us, 0.99) / 1000.0, quantile(&g_lat_us, 1.0) / 1000.0);
    printf("rate_per_s=%.1f\n", elapsed > 0 ? (double)g_lat_us.n / elapsed : 0.0);
    qsort(g_fail_ms.v, g_fail_ms.n, sizeof(uint32_t), cmp_u32);
    printf("fail_ms_p50=%u\nfail_ms_max=%u\n", quantile(&g_fail_ms, 0.5), quantile(&g_fail_ms, 1.0));
    if (g_idle) {
        printf("idle=%u\nidle_ready=%" PRIu64 "\nidle_dropped=%" PRIu64 "\nidle_final=%" PRIu64
               "\nidle_ok=%" PRIu64 "\n",
               g_idle, g_n.idle_ready, g_n.idle_dropped, g_n.idle_final, g_n.idle_ok);
    }
    if (g_slow) {
        qsort(g_slow_ms.v, g_slow_ms.n, sizeof(uint32_t), cmp_u32);
        printf("slow_closed=%" PRIu64 "\nslow_408=%" PRIu64 "\nslow_open=%" PRIu64
               "\nslow_oldest_ms=%" PRIu64 "\n",
               g_n.slow_closed, g_n.slow_408, g_n.slow_open, g_n.slow_oldest_ms);
        printf("slow_close_ms_min=%u\nslow_close_ms_p50=%u\nslow_close_ms_max=%u\n",
               quantile(&g_slow_ms, 0.0), quantile(&g_slow_ms, 0.5), quantile(&g_slow_ms, 1.0));
    }
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--once") == 0) {
            g_once = true;
            continue;
        }
        if (strcmp(a, "--verify") == 0) {
            g_verify = true;
            continue;
        }
        if (strcmp(a, "--slowloris") == 0) {
            g_slow = true;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (strcmp(a, "--proxy") == 0) {
            if (parse_addr(v, &g_proxy) < 0)
                usage();
        } else if (strcmp(a, "--src") == 0) {
            if (parse_src(v) < 0)
                usage();
        } else if (strcmp(a, "--url") == 0) {
            g_url = v;
        } else if (strcmp(a, "--conns") == 0) {
            g_conns = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--idle") == 0) {
            g_idle = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--duration") == 0) {
            g_duration = strtod(v, NULL);
        } else if (strcmp(a, "--think") == 0) {
            g_think_ms = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--timeout") == 0) {
            g_timeout_ms = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--drip") == 0) {
            g_drip_ms = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--idle-ramp") == 0) {
            g_idle_ramp_ms = (unsigned)strtoul(v, NULL, 10);
        } else if (strcmp(a, "--pending") == 0) {
            g_pending_max = (unsigned)strtoul(v, NULL, 10);
        } else {
            usage();
        }
    }
    if (g_url == NULL || g_proxy.sin_family != AF_INET || g_conns == 0 || g_idle > g_conns ||
        g_pending_max == 0 || g_timeout_ms == 0 || g_drip_ms == 0)
        usage();
    build_request();

    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    g_c = calloc(g_conns, sizeof(*g_c));
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_c == NULL || g_ep < 0) {
        perror("mp-loadclient");
        return 1;
    }
    for (unsigned i = 0; i < g_conns; i++)
        g_c[i].fd = -1;

    struct epoll_event evs[LC_EVENTS];
    uint64_t t_end = 0, t_drain = 0, next_scan = 0;
    g_t0 = now_ns();
    for (;;) {
        uint64_t now = now_ns();
        bool opened = open_more(now);
        if (t_end == 0 && (g_once || opened))
            t_end = (g_once ? now : g_t0) + (uint64_t)(g_duration * 1e9);
        if (!g_ending && (g_stop || (!g_once && t_end != 0 && now >= t_end))) {
            g_ending = true;
            t_drain = now + (uint64_t)LC_DRAIN_MS * 1000000u;
        }
        if (g_slow && g_ending)
            break;
        if (g_ending && !g_finals_sent) {
            /* the finals go once no active request is left in flight */
            bool busy = false;
            for (unsigned i = 0; i < g_conns && !busy; i++)
                busy = g_c[i].role == LC_ACTIVE && g_c[i].fd >= 0 &&
                       g_c[i].state != LC_S_THINKING;
            if (!busy || now >= t_drain)
                send_finals();
        }
        if (g_open == 0 && (g_next_open == g_conns || g_ending) && (g_ending || g_once))
            break;
        if (g_ending && now >= t_drain + (uint64_t)g_timeout_ms * 1000000u)
            break;
        if (now >= next_scan) {
            scan(now);
            next_scan = now + LC_SCAN_MS * 1000000u;
        }
        int n = epoll_wait(g_ep, evs, LC_EVENTS, LC_SCAN_MS);
        if (n < 0 && errno != EINTR) {
            perror("mp-loadclient: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++)
            on_event(evs[i].data.u32, evs[i].events);
    }
    double elapsed = (double)(now_ns() - g_t0) / 1e9;
    for (unsigned i = 0; i < g_conns; i++) {
        lconn_t *c = &g_c[i];
        if (c->fd < 0)
            continue;
        if (c->role == LC_SLOW && c->state == LC_S_DRIPPING) {
            uint64_t age = (now_ns() - c->t_start) / 1000000u;
            g_n.slow_open++;
            if (age > g_n.slow_oldest_ms)
                g_n.slow_oldest_ms = age;
        }
        else if (c->state == LC_S_READING || c->state == LC_S_SENDING)
            g_n.timeouts++;
        close_conn(c);
    }
    report(elapsed);
    free(g_c);
    free(g_lat_us.v);
    free(g_fail_ms.v);
    free(g_slow_ms.v);
    close(g_ep);
    return 0;
}
