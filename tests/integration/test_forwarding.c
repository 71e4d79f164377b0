/*
 * tests/integration/test_forwarding.c: what musproxy forwards, byte for
 * byte, when a request or response is hostile: request smuggling through
 * chunked bodies, duplicated Content-Length, forbidden trailer fields,
 * fragments, h2c and unasked protocol switches.
 *
 * The origin here is a recorder in this process (a thread on a real
 * loopback socket): it keeps every byte each upstream connection delivered
 * and how the connection ended (FIN or reset), and answers with a scripted
 * response when it has seen a given string. Assertions are on those bytes,
 * so "the origin received nothing" means no connection and no byte at all.
 * The real musproxy binary runs with the test configuration of harness.c.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"

#define REC_CONNS 8
#define REC_BYTES 65536
#define QUIET_MS 400   /* how long "nothing reached the origin" is watched */

typedef struct rec_conn {
    int fd;
    char data[REC_BYTES + 1];
    size_t len;
    unsigned replies;
    bool closed, reset;
} rec_conn_t;

typedef struct rec_origin {
    int lfd, port;
    pthread_t th;
    pthread_mutex_t mu;
    atomic_bool stop;
    const char *reply;        /* sent each time reply_after is seen once more */
    const char *reply_after;
    int n;
    rec_conn_t c[REC_CONNS];
} rec_origin_t;

static rec_origin_t g_rec;
static mp_proc_t g_proxy;
static int g_pport;
static char g_log[MP_PATH_MAX];

static unsigned count_str(const char *hay, const char *needle)
{
    unsigned n = 0;
    size_t nl = strlen(needle);

    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += nl)
        n++;
    return n;
}

static void *rec_main(void *arg)
{
    rec_origin_t *o = arg;

    while (!atomic_load(&o->stop)) {
        struct pollfd pf[REC_CONNS + 1];
        int idx[REC_CONNS + 1], np = 0;

        pf[np].fd = o->lfd;
        pf[np].events = POLLIN;
        idx[np++] = -1;
        pthread_mutex_lock(&o->mu);
        for (int i = 0; i < o->n; i++)
            if (!o->c[i].closed) {
                pf[np].fd = o->c[i].fd;
                pf[np].events = POLLIN;
                idx[np++] = i;
            }
        pthread_mutex_unlock(&o->mu);
        if (poll(pf, (nfds_t)np, 50) <= 0)
            continue;
        for (int k = 0; k < np; k++) {
            if (!(pf[k].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            pthread_mutex_lock(&o->mu);
            if (idx[k] < 0) {
                int fd = accept(o->lfd, NULL, NULL);
                if (fd >= 0 && o->n < REC_CONNS) {
                    memset(&o->c[o->n], 0, sizeof(o->c[o->n]));
                    o->c[o->n++].fd = fd;
                } else if (fd >= 0) {
                    close(fd);
                }
            } else if (idx[k] < o->n && o->c[idx[k]].fd == pf[k].fd && !o->c[idx[k]].closed) {
                rec_conn_t *c = &o->c[idx[k]];
                ssize_t r = recv(c->fd, c->data + c->len, REC_BYTES - c->len, 0);
                if (r > 0) {
                    c->len += (size_t)r;
                    c->data[c->len] = '\0';
                    while (o->reply && count_str(c->data, o->reply_after) > c->replies) {
                        c->replies++;
                        (void)send(c->fd, o->reply, strlen(o->reply), MSG_NOSIGNAL);
                    }
                } else {
                    c->reset = r < 0 && errno == ECONNRESET;
                    c->closed = true;
                    close(c->fd);
                }
            }
            pthread_mutex_unlock(&o->mu);
        }
    }
    return NULL;
}

/* Starts the recorder; reply (may be NULL) is sent after each reply_after. */
static void rec_start(const char *reply, const char *reply_after)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t al = sizeof(a);
    int one = 1;

    memset(&g_rec, 0, sizeof(g_rec));
    pthread_mutex_init(&g_rec.mu, NULL);
    g_rec.reply = reply;
    g_rec.reply_after = reply_after;
    g_rec.lfd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(g_rec.lfd, 0);
    setsockopt(g_rec.lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    cr_assert_eq(bind(g_rec.lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    cr_assert_eq(listen(g_rec.lfd, 16), 0);
    getsockname(g_rec.lfd, (struct sockaddr *)&a, &al);
    g_rec.port = ntohs(a.sin_port);
    cr_assert_eq(pthread_create(&g_rec.th, NULL, rec_main, &g_rec), 0);
}

static void rec_stop(void)
{
    atomic_store(&g_rec.stop, true);
    pthread_join(g_rec.th, NULL);
    for (int i = 0; i < g_rec.n; i++)
        if (!g_rec.c[i].closed)
            close(g_rec.c[i].fd);
    close(g_rec.lfd);
}

/* Forgets the recorded connections (closing those still open). */
static void rec_reset(void)
{
    pthread_mutex_lock(&g_rec.mu);
    for (int i = 0; i < g_rec.n; i++)
        if (!g_rec.c[i].closed)
            close(g_rec.c[i].fd);
    g_rec.n = 0;
    pthread_mutex_unlock(&g_rec.mu);
}

/* Copy of what the recorder holds now. */
static void rec_snapshot(int *nconns, size_t *total, char *first, size_t cap, bool *reset, bool *closed)
{
    pthread_mutex_lock(&g_rec.mu);
    *nconns = g_rec.n;
    *total = 0;
    for (int i = 0; i < g_rec.n; i++)
        *total += g_rec.c[i].len;
    if (first) {
        size_t l = g_rec.n ? g_rec.c[0].len : 0;
        if (l >= cap)
            l = cap - 1;
        memcpy(first, g_rec.n ? g_rec.c[0].data : "", l);
        first[l] = '\0';
    }
    if (reset)
        *reset = g_rec.n && g_rec.c[0].reset;
    if (closed)
        *closed = g_rec.n && g_rec.c[0].closed;
    pthread_mutex_unlock(&g_rec.mu);
}

static void suite_init(void)
{
    signal(SIGPIPE, SIG_IGN);
}

static void suite_fini(void)
{
    mp_cleanup();
}

static void start_proxy(void)
{
    mp_config_t c;
    char cfg[MP_PATH_MAX];

    mp_config_defaults(&c);
    mp_path(g_log, "access.log");
    cr_assert_eq(mp_config_write(&c, "proxy.yaml", cfg), 0);
    g_pport = c.listen_port;
    cr_assert_eq(mp_proxy_start(&g_proxy, cfg, g_pport), 0);
}

static void setup(const char *reply, const char *reply_after)
{
    rec_start(reply, reply_after);
    start_proxy();
}

/* Sends pieces (NULL-terminated) with a pause between them; reads one response. */
static int exchange(const char *const *pieces, int pause_ms, mp_response_t *resp)
{
    int fd = mp_connect(g_pport);
    static mp_reader_t rd;

    cr_assert_geq(fd, 0);
    for (size_t i = 0; pieces[i] != NULL; i++) {
        if (i > 0)
            mp_sleep_ms(pause_ms);
        cr_assert_eq(mp_send_str(fd, pieces[i]), 0);
    }
    mp_reader_init(&rd, fd);
    memset(resp, 0, sizeof(*resp));
    if (mp_read_response(&rd, resp, false, 3000) < 0)
        resp->status = -1;
    return fd;
}

/* The origin received no connection and no byte within QUIET_MS. */
static void assert_origin_untouched(const char *what)
{
    int n;
    size_t total;

    mp_sleep_ms(QUIET_MS);
    rec_snapshot(&n, &total, NULL, 0, NULL, NULL);
    cr_assert_eq(n, 0, "%s: the proxy opened %d upstream connection(s), %zu bytes", what, n, total);
}

/* Waits until the access log has a line containing needle. */
static bool log_has(const char *needle)
{
    for (int i = 0; i < 40; i++) {
        char *log = mp_read_file(g_log, NULL);
        bool found = log && strstr(log, needle);
        free(log);
        if (found)
            return true;
        mp_sleep_ms(50);
    }
    return false;
}

TestSuite(forwarding, .init = suite_init, .fini = suite_fini, .timeout = 60);

#define POST_CHUNKED(port) \
    "POST http://127.0.0.1:" port "/ HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"

/* Malformed chunked bodies sent with the head, in one write: a 400, and the
 * origin never sees a connection (the parser's hostile table, plus the two
 * cases found from outside: "-1" and a quoted extension with a CRLF). */
static const char *const bad_bodies[] = {
    "-1\r\nabcd\r\n0\r\n\r\n",
    "1;a=\"x\r\nabc\"\r\n0\r\n\r\n",
    "1;a=\"x\r\n\r\nx\r\n0\r\n\r\n",
    "1;a=\"unterminated\r\nx\r\n0\r\n\r\n",
    "1;\"q\"\r\nx\r\n0\r\n\r\n",
    "1;a=\r\nx\r\n0\r\n\r\n",
    "1;a=b c\r\nx\r\n0\r\n\r\n",
    "g\r\n",
    "\r\n",
    "0x5\r\nhello\r\n0\r\n\r\n",
    " 5\r\nhello\r\n0\r\n\r\n",
    "5 \r\nhello\r\n0\r\n\r\n",
    "5 ;a\r\nhello\r\n0\r\n\r\n",
    "5\nhello\r\n0\r\n\r\n",
    "5\rxhello\r\n0\r\n\r\n",
    "5\r\nhelloX\r\n0\r\n\r\n",
    "5\r\nhello\n0\r\n\r\n",
    "5\r\nhello\r\r\n",
    "3\r\nhello\r\n0\r\n\r\n",
    "5;\x01\r\nhello\r\n0\r\n\r\n",
    "5;a\nhello\r\n0\r\n\r\n",
    "1000000000000001\r\n",
    "10000000000000000000000000005\r\n",
    "000000000000000000000000000000005\r\n",
    "0\r\nA: b\r\n c\r\n\r\n",
    "0\r\nA: b\n\r\n",
    "0\r\n: b\r\n\r\n",
    "0\r\nNoColon\r\n\r\n",
    "0\r\nA : b\r\n\r\n",
    "0\r\n\r\r",
    "0\r\n\n",
};

Test(forwarding, malformed_chunked_in_one_write_never_reaches_origin)
{
    char port[8], head[256];

    setup("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "\r\n\r\n");
    snprintf(port, sizeof port, "%d", g_rec.port);
    snprintf(head, sizeof head, "POST http://127.0.0.1:%s/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Transfer-Encoding: chunked\r\n\r\n", port);
    for (size_t i = 0; i < sizeof bad_bodies / sizeof bad_bodies[0]; i++) {
        size_t hl = strlen(head), bl = strlen(bad_bodies[i]);
        char *req = malloc(hl + bl + 1);
        memcpy(req, head, hl);
        memcpy(req + hl, bad_bodies[i], bl + 1);
        const char *pieces[] = { req, NULL };
        mp_response_t resp;
        int fd = exchange(pieces, 0, &resp);
        cr_expect_eq(resp.status, 400, "case %zu (%s): status %d", i, bad_bodies[i], resp.status);
        mp_response_free(&resp);
        close(fd);
        free(req);
    }
    assert_origin_untouched("malformed chunked bodies");
    cr_assert(!log_has("HIER_DIRECT"), "the access log says an origin was used");
    mp_proc_stop(&g_proxy, SIGTERM, 3000);
    rec_stop();
}

/* The body turns malformed after the head went upstream: the upstream
 * connection is reset, the origin never gets a second request, and the log
 * says the transaction was cut upstream. */
Test(forwarding, malformed_chunked_later_resets_upstream)
{
    char head[512], got[REC_BYTES];
    int n;
    size_t total;
    bool reset = false, closed = false;

    setup(NULL, NULL);
    snprintf(head, sizeof head, "POST http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Transfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n", g_rec.port);
    for (size_t i = 0; i < 3; i++) {
        static const char *const late[] = {
            "-1\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
            "1;a=\"x\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n\"\r\n",
            "5\r\nhelloGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
        };
        const char *pieces[] = { head, late[i], NULL };
        mp_response_t resp;
        int fd;

        rec_reset();
        fd = exchange(pieces, 300, &resp);
        cr_expect_eq(resp.status, 400, "late case %zu: status %d", i, resp.status);
        mp_response_free(&resp);
        close(fd);
        for (int k = 0; k < 40 && !closed; k++) {
            rec_snapshot(&n, &total, got, sizeof got, &reset, &closed);
            mp_sleep_ms(25);
        }
        cr_assert_eq(n, 1, "late case %zu: %d upstream connections", i, n);
        cr_assert(closed && reset, "late case %zu: upstream not reset (closed %d reset %d)", i,
                  closed, reset);
        cr_assert_eq(count_str(got, "POST / HTTP/1.1\r\n"), 1, "late case %zu: %s", i, got);
        cr_assert(strstr(got, "smuggled") == NULL, "late case %zu: origin got: %s", i, got);
        cr_assert(strstr(got, "4\r\nabcd\r\n") != NULL, "late case %zu: first chunk missing: %s", i, got);
        closed = false;
    }
    cr_assert(log_has("TCP_MISS_ABORTED/400"), "the access log does not say the upstream was cut");
    mp_proc_stop(&g_proxy, SIGTERM, 3000);
    rec_stop();
}

/* "Content-Length: 5, 5" and two equal Content-Length lines leave as one. */
Test(forwarding, duplicate_content_length_sent_once)
{
    static const char *const forms[] = {
        "Content-Length: 5, 5\r\n",
        "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5,5\r\nContent-Length: 5\r\n",
    };

    setup("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\nContent-Length: 2, 2\r\n\r\nok",
          "hello");
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char req[512], got[REC_BYTES];
        int n;
        size_t total;
        mp_response_t resp;

        rec_reset();
        snprintf(req, sizeof req, "POST http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "%s\r\nhello", g_rec.port, forms[i]);
        const char *pieces[] = { req, NULL };
        int fd = exchange(pieces, 0, &resp);
        cr_assert_eq(resp.status, 200, "form %zu: status %d", i, resp.status);
        cr_assert_eq(count_str(resp.head, "Content-Length"), 1, "form %zu: client got %s", i, resp.head);
        cr_assert(strstr(resp.head, "Content-Length: 2\r\n"), "%s", resp.head);
        cr_assert_str_eq(resp.body, "ok");
        mp_response_free(&resp);
        close(fd);
        rec_snapshot(&n, &total, got, sizeof got, NULL, NULL);
        cr_assert_eq(count_str(got, "Content-Length"), 1, "form %zu: origin got %s", i, got);
        cr_assert(strstr(got, "\r\nContent-Length: 5\r\n") != NULL, "form %zu: %s", i, got);
        cr_assert(strstr(got, "\r\n\r\nhello") != NULL, "form %zu: %s", i, got);
    }
    mp_proc_stop(&g_proxy, SIGTERM, 3000);
    rec_stop();
}

/* Framing, routing and authentication fields in a trailer are dropped in
 * both directions; other trailer fields pass. */
Test(forwarding, forbidden_trailer_fields_dropped)
{
    char req[512], got[REC_BYTES];
    int n;
    size_t total;
    mp_response_t resp;

    setup("HTTP/1.1 200 OK\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n"
          "Set-Cookie: a=b\r\nX-Resp-Trailer: kept\r\nContent-Length: 99\r\n\r\n",
          "X-Keep: 1\r\n\r\n");
    snprintf(req, sizeof req, "POST http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n"
             "Content-Length: 99\r\nHost: evil.example\r\nAuthorization: Basic eDp5\r\n"
             "Transfer-Encoding: gzip\r\nX-Keep: 1\r\n\r\n", g_rec.port);
    /* once in one write, once split inside a trailer line */
    for (int split = 0; split <= 1; split++) {
        char a[512];
        size_t cut = strstr(req, "Host: evil") - req + 7;
        memcpy(a, req, cut);
        a[cut] = '\0';
        const char *whole[] = { req, NULL }, *parts[] = { a, req + cut, NULL };

        rec_reset();
        int fd = exchange(split ? parts : whole, 200, &resp);
        cr_assert_eq(resp.status, 200, "split %d: status %d", split, resp.status);
        mp_response_free(&resp);
        close(fd);
        rec_snapshot(&n, &total, got, sizeof got, NULL, NULL);
        const char *body = strstr(got, "\r\n\r\n");
        cr_assert_not_null(body);
        cr_assert(strstr(body, "3\r\nabc\r\n0\r\nX-Keep: 1\r\n\r\n") != NULL,
                  "split %d: origin got body %s", split, body);
        cr_assert(strstr(body, "evil") == NULL && strstr(body, "Content-Length") == NULL &&
                  strstr(body, "Authorization") == NULL && strstr(body, "gzip") == NULL,
                  "split %d: %s", split, body);
    }
    /* the response trailer, read raw */
    {
        int fd = mp_connect(g_pport);
        char buf[4096];
        bool closed;
        snprintf(req, sizeof req, "POST http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n0\r\nX-Keep: 1\r\n\r\n",
                 g_rec.port);
        cr_assert_eq(mp_send_str(fd, req), 0);
        mp_read_until_close(fd, buf, sizeof buf, 3000, &closed);
        close(fd);
        cr_assert(strstr(buf, "2\r\nok\r\n0\r\nX-Resp-Trailer: kept\r\n\r\n") != NULL, "client got %s", buf);
        cr_assert(strstr(buf, "Set-Cookie") == NULL && strstr(buf, "99") == NULL, "client got %s", buf);
    }
    mp_proc_stop(&g_proxy, SIGTERM, 3000);
    rec_stop();
}

Test(forwarding, fragment_in_target_400)
{
    char req[256];
    mp_response_t resp;

    setup("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "\r\n\r\n");
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/a#frag HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
             g_rec.port);
    const char *pieces[] = { req, NULL };
    int fd = exchange(pieces, 0, &resp);
    cr_assert_eq(resp.status, 400, "status %d", resp.status);
    mp_response_free(&resp);
    close(fd);
    assert_origin_untouched("fragment");
    mp_proc_stop(&g_proxy, SIGTERM, 3000);
    rec_stop();
}

/* h2c is never offered upstream: the request goes as plain HTTP/1.1, the
 * connection stays HTTP/1.1, and the next request on it is proxied and
 * logged on its own. In a list with websocket only websocket is offered. */
Test(forwarding, h2c_upgrade_stripped)
{
    char req[1024], got[REC_BYTES];
    int n;
    size_t total;
    mp_response_t resp;
    static mp_reader_t rd;

    setup("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", "\r\n\r\n");
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/one HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
             "HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n", g_rec.port);
    int fd = mp_connect(g_pport);
    mp_reader_init(&rd, fd);
    cr_assert_eq(mp_send_str(fd, req), 0);
    cr_assert_eq(mp_read_response(&rd, &resp, false, 3000), 0);
    cr_assert_eq(resp.status, 200);
    mp_response_free(&resp);
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/two HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
             g_rec.port);
    cr_assert_eq(mp_send_str(fd, req), 0);
    cr_assert_eq(mp_read_response(&rd, &resp, false, 3000), 0);
    cr_assert_eq(resp.status, 200);
    mp_response_free(&resp);
    close(fd);
    rec_snapshot(&n, &total, got, sizeof got, NULL, NULL);
    cr_assert(strstr(got, "GET /one HTTP/1.1\r\n") != NULL, "%s", got);
    cr_assert(strcasestr(got, "upgrade") == NULL && strcasestr(got, "HTTP2-Settings") == NULL,
              "origin got %s", got);
    cr_assert(log_has("/one") && log_has("/two"), "both requests are logged");

    /* a list: only websocket is offered */
    rec_reset();
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/ws HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Connection: Upgrade\r\nUpgrade: h2c, websocket\r\nSec-WebSocket-Version: 13\r\n\r\n",
             g_rec.port);
    const char *pieces[] = { req, NULL };
    fd = exchange(pieces, 0, &resp);
    mp_response_free(&resp);
    close(fd);
    rec_snapshot(&n, &total, got, sizeof got, NULL, NULL);
    cr_assert(strstr(got, "\r\nUpgrade: websocket\r\n") != NULL, "origin got %s", got);
    cr_assert(strstr(got, "h2c") == NULL, "origin got %s", got);
    mp_proc_stop(&g_proxy, SIGTERM, 3000);
    rec_stop();
}

/* A 101 naming a protocol the client did not ask for (here h2c after
 * "Upgrade: foo") is refused with 502: no tunnel. */
Test(forwarding, unasked_101_protocol_refused)
{
    char req[512];
    mp_response_t resp;

    setup("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
          "PRI * HTTP/2.0\r\n", "\r\n\r\n");
    snprintf(req, sizeof req, "GET http://127.0.0.1:%d/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
             "Connection: Upgrade\r\nUpgrade: foo\r\n\r\n", g_rec.port);
    const char *pieces[] = { req, NULL };
    int fd = exchange(pieces, 0, &resp);
    cr_assert_eq(resp.status, 502, "status %d (%s)", resp.status, resp.head);
    mp_response_free(&resp);
    close(fd);
    mp_proc_stop(&g_proxy, SIGTERM, 3000);
    rec_stop();
}
