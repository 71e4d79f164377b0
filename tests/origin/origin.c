/*
 * tests/origin/origin.c: mp-origin, the HTTP/1.1 test origin server used by
 * musproxy's integration tests and benchmarks.
 *
 *   mp-origin --listen 127.0.0.1:PORT [--tls CERT KEY]
 *
 * PORT 0 picks a free port. Once the socket listens it prints
 * "listening <port>\n" on stdout (flushed) so a test can read the port.
 * One thread per accepted connection; keep-alive and pipelining (requests
 * answered in order, one at a time); request bodies with Content-Length or
 * chunked transfer coding (de-chunked). With --tls every connection does an
 * OpenSSL SSL_accept first and then serves the same endpoints.
 *
 * Endpoints (any method unless noted; HEAD answers headers only with the
 * Content-Length the GET would have):
 *   /                 200 "ok\n" text/plain
 *   /size/N           N bytes, byte at offset i is (i % 251), Content-Length,
 *                     streamed (N may be several GiB)
 *   /chunked/N        the same N bytes with chunked coding and a trailer
 *                     "X-Origin-Trailer: done"
 *   /echo, /expect    reads the body streamed and answers
 *                     {"method":"POST","length":N,"fnv1a64":"<16 hex>","chunked":false}
 *   /headers          the request head exactly as received, text/plain
 *   /sleep/MS         waits MS milliseconds then 200 "slept MS\n"
 *   /status/N         status N; no body for 1xx, 204 and 304
 *   /stats            {"connections":C,"requests":R} since start
 *   /peer             the address the connection came from, "ADDR\n"
 *   /close            200 with Connection: close, then closes
 *   /hang             reads the request and never answers: holds the
 *                     connection until the peer closes it (or IDLE_SECONDS)
 *   /stall/N          a head announcing 2N bytes, N bytes of the /size
 *                     pattern, then nothing more (held as /hang)
 *   /reset            reads the request, then resets the connection (RST,
 *                     SO_LINGER 0) without a byte of response
 *   /reset/N          a head announcing 2N bytes, N bytes, then a reset
 *   /ws               with "Upgrade: websocket": 101 Switching Protocols,
 *                     then every byte received is sent back until EOF
 * A request carrying "Expect: 100-continue" and a body gets "100 Continue"
 * before the body is read. SIGTERM or SIGINT ends the process with status 0.
 * /hang, /stall and /reset are the misbehaving origins of tools/loadfault.sh
 * and the fault tests; over TLS a reset skips the TLS close_notify.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>

#define HEAD_MAX      (64 * 1024)   /* largest request head accepted */
#define IO_BUF        (64 * 1024)   /* per-connection read buffer */
#define PATTERN_MOD   251u          /* /size byte i is i % PATTERN_MOD */
#define PATTERN_REPS  64u
#define CHUNK_MAX     (PATTERN_MOD * PATTERN_REPS)  /* chunk size used by /chunked (must fit g_pattern) */
#define IDLE_SECONDS  120           /* a connection silent this long is closed */

static atomic_ullong g_connections;
static atomic_ullong g_requests;
static volatile sig_atomic_t g_stop;
static SSL_CTX *g_ssl_ctx;
static unsigned char g_pattern[PATTERN_MOD * (PATTERN_REPS + 1)];

typedef struct conn {
    int fd;
    SSL *ssl;
    unsigned char buf[IO_BUF];
    size_t off, len;                 /* unread bytes are buf[off, len) */
    bool reset;                      /* end with a RST (SO_LINGER 0), no shutdown */
} conn_t;

typedef struct request {
    char head[HEAD_MAX + 1];         /* verbatim, NUL-terminated */
    size_t head_len;
    char method[16];
    char path[4096];
    int minor;                       /* HTTP/1.minor */
    bool has_cl, chunked, keep_alive, expect_continue, upgrade_ws;
    uint64_t content_length;
    char ws_key[128];
} request_t;

/* ---------- low-level I/O ---------- */

static ssize_t conn_raw_read(conn_t *c, void *p, size_t n)
{
    if (c->ssl) {
        int r = SSL_read(c->ssl, p, n > INT32_MAX ? INT32_MAX : (int)n);
        return r > 0 ? r : (SSL_get_error(c->ssl, r) == SSL_ERROR_ZERO_RETURN ? 0 : -1);
    }
    for (;;) {
        ssize_t r = recv(c->fd, p, n, 0);
        if (r < 0 && errno == EINTR)
            continue;
        return r;
    }
}

static int conn_write(conn_t *c, const void *p, size_t n)
{
    const unsigned char *s = p;
    while (n > 0) {
        ssize_t w;
        if (c->ssl) {
            int r = SSL_write(c->ssl, s, n > (1u << 30) ? (1 << 30) : (int)n);
            if (r <= 0)
                return -1;
            w = r;
        } else {
            w = send(c->fd, s, n, MSG_NOSIGNAL);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int conn_printf(conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int conn_printf(conn_t *c, const char *fmt, ...)
{
    char tmp[8192];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return -1;
    return conn_write(c, tmp, (size_t)n);
}

/* Makes sure at least one unread byte is buffered. 1 ok, 0 EOF, -1 error. */
static int conn_fill(conn_t *c)
{
    if (c->off < c->len)
        return 1;
    c->off = c->len = 0;
    ssize_t r = conn_raw_read(c, c->buf, sizeof c->buf);
    if (r <= 0)
        return (int)(r == 0 ? 0 : -1);
    c->len = (size_t)r;
    return 1;
}

/* Reads one line ending in LF (CRLF stripped) into out. 1 ok, 0 EOF, -1 error. */
static int conn_getline(conn_t *c, char *out, size_t cap)
{
    size_t n = 0;
    for (;;) {
        int f = conn_fill(c);
        if (f <= 0)
            return n == 0 ? f : -1;
        unsigned char ch = c->buf[c->off++];
        if (ch == '\n') {
            if (n > 0 && out[n - 1] == '\r')
                n--;
            out[n] = '\0';
            return 1;
        }
        if (n + 1 >= cap)
            return -1;
        out[n++] = (char)ch;
    }
}

/* ---------- request parsing ---------- */

static bool token_in_list(const char *value, const char *token)
{
    size_t tl = strlen(token);
    const char *p = value;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *s = p;
        while (*p && *p != ',')
            p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, token, tl) == 0)
            return true;
    }
    return false;
}

/* Reads and parses one request head. 1 ok, 0 clean EOF, -1 bad/error. */
static int read_request(conn_t *c, request_t *rq)
{
    rq->method[0] = rq->path[0] = '\0';
    rq->head_len = 0;
    rq->minor = 1;
    rq->keep_alive = false;
    rq->has_cl = rq->chunked = rq->expect_continue = rq->upgrade_ws = false;
    rq->content_length = 0;
    rq->ws_key[0] = '\0';

    /* accumulate bytes until CRLFCRLF (or LFLF); skip leading empty lines */
    size_t n = 0;
    for (;;) {
        int f = conn_fill(c);
        if (f <= 0)
            return n == 0 ? f : -1;
        unsigned char ch = c->buf[c->off++];
        if (n == 0 && (ch == '\r' || ch == '\n'))
            continue;
        if (n >= HEAD_MAX)
            return -1;
        rq->head[n++] = (char)ch;
        if (ch == '\n' && ((n >= 4 && memcmp(rq->head + n - 4, "\r\n\r\n", 4) == 0) ||
                           (n >= 2 && memcmp(rq->head + n - 2, "\n\n", 2) == 0)))
            break;
    }
    rq->head[n] = '\0';
    rq->head_len = n;

    /* request line */
    char line_copy[4096];
    const char *eol = strchr(rq->head, '\n');
    size_t ll = (size_t)(eol - rq->head);
    if (ll >= sizeof line_copy)
        return -1;
    memcpy(line_copy, rq->head, ll);
    line_copy[ll] = '\0';
    if (ll > 0 && line_copy[ll - 1] == '\r')
        line_copy[ll - 1] = '\0';
    char target[4096], version[32];
    if (sscanf(line_copy, "%15s %4095s %31s", rq->method, target, version) != 3)
        return -1;
    if (strncmp(version, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)version[7]))
        return -1;
    rq->minor = version[7] - '0';
    rq->keep_alive = rq->minor >= 1;

    const char *path = target;
    if (strncasecmp(path, "http://", 7) == 0 || strncasecmp(path, "https://", 8) == 0) {
        path = strstr(path, "://") + 3;
        path = strchr(path, '/');
        if (!path)
            path = "/";
    }
    snprintf(rq->path, sizeof rq->path, "%s", path);

    /* header fields */
    char *save = NULL;
    char work[HEAD_MAX + 1];
    memcpy(work, rq->head, n + 1);
    char *line = strtok_r(work, "\n", &save);      /* request line */
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        size_t l = strlen(line);
        if (l > 0 && line[l - 1] == '\r')
            line[--l] = '\0';
        if (l == 0)
            break;
        char *colon = strchr(line, ':');
        if (!colon)
            return -1;
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strcasecmp(line, "Content-Length") == 0) {
            char *end;
            errno = 0;
            unsigned long long cl = strtoull(v, &end, 10);
            if (errno || end == v || !isdigit((unsigned char)*v))
                return -1;
            rq->has_cl = true;
            rq->content_length = cl;
        } else if (strcasecmp(line, "Transfer-Encoding") == 0) {
            if (token_in_list(v, "chunked"))
                rq->chunked = true;
        } else if (strcasecmp(line, "Connection") == 0) {
            if (token_in_list(v, "close"))
                rq->keep_alive = false;
            else if (token_in_list(v, "keep-alive"))
                rq->keep_alive = true;
        } else if (strcasecmp(line, "Expect") == 0) {
            if (strcasecmp(v, "100-continue") == 0)
                rq->expect_continue = true;
        } else if (strcasecmp(line, "Upgrade") == 0) {
            if (token_in_list(v, "websocket"))
                rq->upgrade_ws = true;
        } else if (strcasecmp(line, "Sec-WebSocket-Key") == 0) {
            snprintf(rq->ws_key, sizeof rq->ws_key, "%s", v);
        }
    }
    if (rq->chunked)
        rq->has_cl = false;     /* RFC 9112 6.3: chunked wins */
    return 1;
}

/* ---------- body reading ---------- */

typedef struct body_sum {
    uint64_t length;
    uint64_t fnv;
} body_sum_t;

static void sum_update(body_sum_t *s, const unsigned char *p, size_t n)
{
    uint64_t h = s->fnv;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    s->fnv = h;
    s->length += n;
}

/* Consumes exactly n body bytes from the connection into the sum. */
static int read_exact_into(conn_t *c, uint64_t n, body_sum_t *s)
{
    while (n > 0) {
        if (conn_fill(c) <= 0)
            return -1;
        size_t avail = c->len - c->off;
        size_t take = avail < n ? avail : (size_t)n;
        sum_update(s, c->buf + c->off, take);
        c->off += take;
        n -= take;
    }
    return 0;
}

static int read_body(conn_t *c, const request_t *rq, body_sum_t *s)
{
    s->length = 0;
    s->fnv = 0xcbf29ce484222325ULL;
    if (rq->chunked) {
        char line[1024];
        for (;;) {
            if (conn_getline(c, line, sizeof line) != 1)
                return -1;
            char *end;
            errno = 0;
            unsigned long long sz = strtoull(line, &end, 16);
            if (errno || end == line)
                return -1;
            if (sz == 0)
                break;
            if (read_exact_into(c, sz, s) < 0)
                return -1;
            if (conn_getline(c, line, sizeof line) != 1 || line[0] != '\0')
                return -1;
        }
        /* trailer section up to the empty line */
        for (;;) {
            if (conn_getline(c, line, sizeof line) != 1)
                return -1;
            if (line[0] == '\0')
                break;
        }
        return 0;
    }
    if (rq->has_cl)
        return read_exact_into(c, rq->content_length, s);
    return 0;
}

/* ---------- responses ---------- */

static const char *reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default:  return "Status";
    }
}

/* Sends a complete small response. */
static int send_simple(conn_t *c, const request_t *rq, int status, const char *ctype,
                       const char *body, size_t blen, bool keep_alive)
{
    bool no_body = status < 200 || status == 204 || status == 304;
    char h[1024];
    int n;
    if (no_body)
        n = snprintf(h, sizeof h, "HTTP/1.1 %d %s\r\nServer: mp-origin\r\n%s\r\n",
                     status, reason(status), keep_alive ? "" : "Connection: close\r\n");
    else
        n = snprintf(h, sizeof h,
                     "HTTP/1.1 %d %s\r\nServer: mp-origin\r\nContent-Type: %s\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     status, reason(status), ctype, blen,
                     keep_alive ? "" : "Connection: close\r\n");
    if (conn_write(c, h, (size_t)n) < 0)
        return -1;
    if (!no_body && strcmp(rq->method, "HEAD") != 0 && blen > 0)
        return conn_write(c, body, blen);
    return 0;
}

/* The first total bytes of the /size pattern (byte i is i % PATTERN_MOD). */
static int send_pattern(conn_t *c, uint64_t total)
{
    uint64_t off = 0;
    while (off < total) {
        size_t start = (size_t)(off % PATTERN_MOD);
        size_t n = PATTERN_MOD * PATTERN_REPS;
        if (total - off < n)
            n = (size_t)(total - off);
        if (conn_write(c, g_pattern + start, n) < 0)
            return -1;
        off += n;
    }
    return 0;
}

static int send_size(conn_t *c, const request_t *rq, uint64_t total, bool keep_alive)
{
    if (conn_printf(c, "HTTP/1.1 200 OK\r\nServer: mp-origin\r\n"
                       "Content-Type: application/octet-stream\r\n"
                       "Content-Length: %" PRIu64 "\r\n%s\r\n",
                    total, keep_alive ? "" : "Connection: close\r\n") < 0)
        return -1;
    if (strcmp(rq->method, "HEAD") == 0)
        return 0;
    return send_pattern(c, total);
}

static int send_chunked(conn_t *c, const request_t *rq, uint64_t total, bool keep_alive)
{
    if (conn_printf(c, "HTTP/1.1 200 OK\r\nServer: mp-origin\r\n"
                       "Content-Type: application/octet-stream\r\n"
                       "Transfer-Encoding: chunked\r\nTrailer: X-Origin-Trailer\r\n%s\r\n",
                    keep_alive ? "" : "Connection: close\r\n") < 0)
        return -1;
    if (strcmp(rq->method, "HEAD") == 0)
        return 0;
    uint64_t off = 0;
    while (off < total) {
        size_t start = (size_t)(off % PATTERN_MOD);
        size_t n = CHUNK_MAX;
        if (total - off < n)
            n = (size_t)(total - off);
        if (conn_printf(c, "%zx\r\n", n) < 0 || conn_write(c, g_pattern + start, n) < 0 ||
            conn_write(c, "\r\n", 2) < 0)
            return -1;
        off += n;
    }
    return conn_write(c, "0\r\nX-Origin-Trailer: done\r\n\r\n", 29);
}

/* Echoes every byte both ways until either side closes. */
static void ws_echo(conn_t *c)
{
    /* bytes that arrived behind the head first */
    if (c->off < c->len) {
        if (conn_write(c, c->buf + c->off, c->len - c->off) < 0)
            return;
        c->off = c->len = 0;
    }
    unsigned char b[IO_BUF];
    for (;;) {
        ssize_t r = conn_raw_read(c, b, sizeof b);
        if (r <= 0 || conn_write(c, b, (size_t)r) < 0)
            return;
    }
}

static int send_ws_101(conn_t *c, const request_t *rq)
{
    char accept[64] = "";
    if (rq->ws_key[0]) {
        static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
        char cat[256];
        unsigned char md[SHA_DIGEST_LENGTH];
        int n = snprintf(cat, sizeof cat, "%s%s", rq->ws_key, guid);
        SHA1((const unsigned char *)cat, (size_t)n, md);
        EVP_EncodeBlock((unsigned char *)accept, md, SHA_DIGEST_LENGTH);
    }
    return conn_printf(c, "HTTP/1.1 101 Switching Protocols\r\nServer: mp-origin\r\n"
                          "Upgrade: websocket\r\nConnection: Upgrade\r\n%s%s%s\r\n",
                       accept[0] ? "Sec-WebSocket-Accept: " : "", accept,
                       accept[0] ? "\r\n" : "");
}

static bool path_num(const char *path, const char *prefix, uint64_t *out)
{
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0 || !isdigit((unsigned char)path[pl]))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(path + pl, &end, 10);
    if (errno || (*end != '\0' && *end != '?'))
        return false;
    *out = v;
    return true;
}

/* Reads and drops everything until the peer closes (or the idle timeout). */
static void hold_until_eof(conn_t *c)
{
    unsigned char b[4096];
    c->off = c->len = 0;
    while (conn_raw_read(c, b, sizeof b) > 0)
        ;
}

/* A head announcing 2n bytes, then n of them (the /size pattern). */
static int send_half(conn_t *c, uint64_t n)
{
    if (conn_printf(c, "HTTP/1.1 200 OK\r\nServer: mp-origin\r\n"
                       "Content-Type: application/octet-stream\r\n"
                       "Content-Length: %" PRIu64 "\r\n\r\n", 2 * n) < 0)
        return -1;
    return send_pattern(c, n);
}

/* Serves one parsed request. Returns 0 to keep the connection, -1 to close. */
static int serve(conn_t *c, request_t *rq)
{
    atomic_fetch_add(&g_requests, 1);
    bool ka = rq->keep_alive;
    bool has_body = rq->chunked || (rq->has_cl && rq->content_length > 0);
    uint64_t num;

    if (rq->expect_continue && has_body && rq->minor >= 1) {
        if (conn_write(c, "HTTP/1.1 100 Continue\r\n\r\n", 25) < 0)
            return -1;
    }

    /* WebSocket before body handling: the rest of the stream is raw */
    if (strcmp(rq->path, "/ws") == 0 && rq->upgrade_ws) {
        if (send_ws_101(c, rq) < 0)
            return -1;
        ws_echo(c);
        return -1;
    }

    body_sum_t sum;
    if (read_body(c, rq, &sum) < 0)
        return -1;

    char body[512];
    int bl;
    if (strcmp(rq->path, "/echo") == 0 || strcmp(rq->path, "/expect") == 0) {
        bl = snprintf(body, sizeof body,
                      "{\"method\":\"%s\",\"length\":%" PRIu64 ",\"fnv1a64\":\"%016" PRIx64
                      "\",\"chunked\":%s}\n",
                      rq->method, sum.length, sum.fnv, rq->chunked ? "true" : "false");
        return send_simple(c, rq, 200, "application/json", body, (size_t)bl, ka) < 0 || !ka ? -1 : 0;
    }
    if (path_num(rq->path, "/size/", &num))
        return send_size(c, rq, num, ka) < 0 || !ka ? -1 : 0;
    if (path_num(rq->path, "/chunked/", &num))
        return send_chunked(c, rq, num, ka) < 0 || !ka ? -1 : 0;
    if (strcmp(rq->path, "/headers") == 0)
        return send_simple(c, rq, 200, "text/plain", rq->head, rq->head_len, ka) < 0 || !ka ? -1 : 0;
    if (path_num(rq->path, "/sleep/", &num)) {
        struct timespec ts = { (time_t)(num / 1000), (long)(num % 1000) * 1000000L };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        bl = snprintf(body, sizeof body, "slept %" PRIu64 "\n", num);
        return send_simple(c, rq, 200, "text/plain", body, (size_t)bl, ka) < 0 || !ka ? -1 : 0;
    }
    if (path_num(rq->path, "/status/", &num) && num >= 100 && num <= 999) {
        bl = snprintf(body, sizeof body, "status %" PRIu64 "\n", num);
        return send_simple(c, rq, (int)num, "text/plain", body, (size_t)bl, ka) < 0 || !ka ? -1 : 0;
    }
    if (strcmp(rq->path, "/stats") == 0) {
        bl = snprintf(body, sizeof body, "{\"connections\":%llu,\"requests\":%llu}\n",
                      (unsigned long long)atomic_load(&g_connections),
                      (unsigned long long)atomic_load(&g_requests));
        return send_simple(c, rq, 200, "application/json", body, (size_t)bl, ka) < 0 || !ka ? -1 : 0;
    }
    if (strcmp(rq->path, "/peer") == 0) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof(peer);
        char addr[INET6_ADDRSTRLEN] = "?";
        if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) == 0) {
            if (peer.ss_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&peer)->sin6_addr, addr, sizeof addr);
            else
                inet_ntop(AF_INET, &((struct sockaddr_in *)&peer)->sin_addr, addr, sizeof addr);
        }
        bl = snprintf(body, sizeof body, "%s\n", addr);
        return send_simple(c, rq, 200, "text/plain", body, (size_t)bl, ka) < 0 || !ka ? -1 : 0;
    }
    if (strcmp(rq->path, "/hang") == 0) {
        hold_until_eof(c);
        return -1;
    }
    if (path_num(rq->path, "/stall/", &num)) {
        if (send_half(c, num) == 0)
            hold_until_eof(c);
        return -1;
    }
    if (strcmp(rq->path, "/reset") == 0 || path_num(rq->path, "/reset/", &num)) {
        if (strcmp(rq->path, "/reset") == 0 || send_half(c, num) == 0)
            c->reset = true;
        return -1;
    }
    if (strcmp(rq->path, "/close") == 0) {
        send_simple(c, rq, 200, "text/plain", "bye\n", 4, false);
        return -1;
    }
    if (strcmp(rq->path, "/") == 0 || strcmp(rq->path, "/ws") == 0)
        return send_simple(c, rq, 200, "text/plain", "ok\n", 3, ka) < 0 || !ka ? -1 : 0;
    return send_simple(c, rq, 404, "text/plain", "not found\n", 10, ka) < 0 || !ka ? -1 : 0;
}

static void *conn_thread(void *arg)
{
    conn_t *c = arg;
    request_t *rq = malloc(sizeof *rq);
    if (!rq)
        goto out;
    if (g_ssl_ctx) {
        c->ssl = SSL_new(g_ssl_ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_accept(c->ssl) != 1)
            goto out;
    }
    for (;;) {
        int r = read_request(c, rq);
        if (r == 0)
            break;
        if (r < 0) {
            send_simple(c, rq, 400, "text/plain", "bad request\n", 12, false);
            break;
        }
        if (serve(c, rq) < 0)
            break;
    }
out:
    if (c->reset) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    } else if (c->ssl) {
        SSL_shutdown(c->ssl);
    }
    SSL_free(c->ssl);
    close(c->fd);
    free(rq);
    free(c);
    return NULL;
}

static void on_stop(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void usage(void)
{
    fprintf(stderr, "usage: mp-origin --listen ADDR:PORT [--tls CERT KEY]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen_at = NULL, *cert = NULL, *key = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen_at = argv[++i];
        else if (strcmp(argv[i], "--tls") == 0 && i + 2 < argc) {
            cert = argv[++i];
            key = argv[++i];
        } else
            usage();
    }
    if (!listen_at)
        usage();

    char host[256];
    const char *colon = strrchr(listen_at, ':');
    if (!colon || (size_t)(colon - listen_at) >= sizeof host)
        usage();
    memcpy(host, listen_at, (size_t)(colon - listen_at));
    host[colon - listen_at] = '\0';
    int port = atoi(colon + 1);

    for (size_t i = 0; i < sizeof g_pattern; i++)
        g_pattern[i] = (unsigned char)(i % PATTERN_MOD);

    if (cert) {
        g_ssl_ctx = SSL_CTX_new(TLS_server_method());
        if (!g_ssl_ctx || SSL_CTX_use_certificate_chain_file(g_ssl_ctx, cert) != 1 ||
            SSL_CTX_use_PrivateKey_file(g_ssl_ctx, key, SSL_FILETYPE_PEM) != 1) {
            ERR_print_errors_fp(stderr);
            return 1;
        }
        SSL_CTX_set_mode(g_ssl_ctx, SSL_MODE_AUTO_RETRY);
    }

    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int fd;
    struct sockaddr_storage ss;
    socklen_t sl;
    memset(&ss, 0, sizeof ss);
    const char *h = host;
    char h6[256];
    if (host[0] == '[') {
        snprintf(h6, sizeof h6, "%s", host + 1);
        char *rb = strchr(h6, ']');
        if (rb)
            *rb = '\0';
        h = h6;
    }
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        sl = sizeof *s4;
    } else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        sl = sizeof *s6;
    } else {
        fprintf(stderr, "mp-origin: bad address %s\n", host);
        return 2;
    }
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 1024) < 0) {
        perror("mp-origin: bind/listen");
        return 1;
    }
    sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    int bound = ntohs(ss.ss_family == AF_INET ? s4->sin_port : s6->sin6_port);
    printf("listening %d\n", bound);
    fflush(stdout);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 512 * 1024);

    while (!g_stop) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        int pr = poll(&p, 1, 200);
        if (pr <= 0)
            continue;
        int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (cfd < 0)
            continue;
        atomic_fetch_add(&g_connections, 1);
        setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct timeval tv = { IDLE_SECONDS, 0 };
        setsockopt(cfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        conn_t *c = calloc(1, sizeof *c);
        pthread_t t;
        if (!c) {
            close(cfd);
            continue;
        }
        c->fd = cfd;
        if (pthread_create(&t, &attr, conn_thread, c) != 0) {
            close(cfd);
            free(c);
        }
    }
    close(fd);
    return 0;
}
