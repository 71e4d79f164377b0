/*
 * proxy/tunnel.c: the byte relay of a tunnel (see tunnel.h).
 */
#include "tunnel.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "limits.h"

static bool
would_block(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK;
}

static void
progressed(const relay_env_t *env)
{
    *env->last_progress = loop_now(env->loop);
}

/* True if the other end of fd is on this host: a loopback address, or the
 * socket's own local address. */
bool
relay_peer_on_this_host(int fd)
{
    struct sockaddr_storage me, peer;
    socklen_t me_len = sizeof(me), peer_len = sizeof(peer);

    if (getsockname(fd, (struct sockaddr *)&me, &me_len) < 0 ||
        getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0 || me.ss_family != peer.ss_family)
        return false;
    if (peer.ss_family == AF_INET) {
        const struct sockaddr_in *p4 = (const struct sockaddr_in *)&peer;
        const struct sockaddr_in *m4 = (const struct sockaddr_in *)&me;
        return (ntohl(p4->sin_addr.s_addr) >> 24) == 127 || p4->sin_addr.s_addr == m4->sin_addr.s_addr;
    }
    if (peer.ss_family == AF_INET6) {
        const struct sockaddr_in6 *p6 = (const struct sockaddr_in6 *)&peer;
        const struct sockaddr_in6 *m6 = (const struct sockaddr_in6 *)&me;
        if (IN6_IS_ADDR_LOOPBACK(&p6->sin6_addr) ||
            (IN6_IS_ADDR_V4MAPPED(&p6->sin6_addr) && p6->sin6_addr.s6_addr[12] == 127))
            return true;
        return memcmp(&p6->sin6_addr, &m6->sin6_addr, sizeof(p6->sin6_addr)) == 0;
    }
    return false;
}

/* Prepares the direction that writes to dst. */
void
relay_init(relay_t *r, enum config_tunnel_relay how, int dst)
{
    int p[2];
    bool copy;

    memset(r, 0, sizeof(*r));
    r->pipe_r = r->pipe_w = -1;
    switch (how) {
    case CONFIG_RELAY_COPY: copy = true; break;
    case CONFIG_RELAY_SPLICE: copy = false; break;
    case CONFIG_RELAY_AUTO:
    default: copy = relay_peer_on_this_host(dst); break;
    }
    /* without a pipe (descriptor shortage) the direction copies */
    if (copy || pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
        r->mode = RELAY_COPY;
        return;
    }
    r->mode = RELAY_SPLICE;
    r->pipe_r = p[0];
    r->pipe_w = p[1];
    /* a larger pipe moves a bulk download in fewer splice calls; if the
     * system refuses (pipe-max-size, per-user limits), 64 KiB works too */
    (void)fcntl(p[1], F_SETPIPE_SZ, CONN_TUNNEL_PIPE_SIZE);
}

void
relay_reset(relay_t *r, relaybuf_pool_t *pool)
{
    if (r->pipe_r >= 0)
        close(r->pipe_r);
    if (r->pipe_w >= 0)
        close(r->pipe_w);
    relaybuf_put(pool, r->buf, r->cap);
    memset(r, 0, sizeof(*r));
    r->pipe_r = r->pipe_w = -1;
}

#define IO_RETRY 2   /* io_failed: interrupted, call again */

/* After a send/recv/splice that failed (errno set): IO_RETRY (interrupted),
 * 0 (would block: `flag` added to *want), or -1 (an error). */
static int
io_failed(uint32_t *want, uint32_t flag)
{
    if (errno == EINTR)
        return IO_RETRY;
    if (would_block()) {
        *want |= flag;
        return 0;
    }
    return -1;
}

/* Sends data[*start..end) to dst. Returns 1 once all of it is sent, 0 when
 * dst is full (LOOP_WRITE added to *dst_want), -1 on error. */
static int
relay_send(const relay_env_t *env, int dst, const char *data, uint32_t *start, uint32_t end,
           uint32_t *dst_want, uint64_t *counted)
{
    while (*start < end) {
        ssize_t n = send(dst, data + *start, end - *start, MSG_NOSIGNAL);
        if (n < 0) {
            int rc = io_failed(dst_want, LOOP_WRITE);
            if (rc == IO_RETRY)
                continue;
            return rc;
        }
        *start += (uint32_t)n;
        if (counted != NULL)
            *counted += (uint64_t)n;
        progressed(env);
    }
    return 1;
}

/* Moves bytes from src to dst until one of them would block, the source
 * ends or CONN_TUNNEL_BURST bytes have gone (then LOOP_READ stays wanted, so
 * the loop comes back after the other connections had their turn). Returns
 * 0, or -1 on error. */
static int
relay_move(relay_t *r, const relay_env_t *env, int src, int dst, cbuf_t *pending,
           uint32_t *src_want, uint32_t *dst_want, uint64_t *counted)
{
    size_t moved = 0;
    int sent;

    for (;;) {
        ssize_t n;
        if (cbuf_len(pending) > 0) {
            sent = relay_send(env, dst, pending->data, &pending->start, pending->end, dst_want,
                              counted);
            if (sent <= 0)
                return sent;
            pending->start = pending->end = 0;
            continue;
        }
        if (r->start < r->end) {
            sent = relay_send(env, dst, r->buf, &r->start, r->end, dst_want, counted);
            if (sent <= 0)
                return sent;
            r->start = r->end = 0;
            continue;
        }
        if (r->in_pipe > 0) {
            n = splice(r->pipe_r, NULL, dst, NULL, r->in_pipe, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
            if (n < 0) {
                int rc = io_failed(dst_want, LOOP_WRITE);
                if (rc == IO_RETRY)
                    continue;
                return rc;
            }
            r->in_pipe -= (size_t)n;
            if (counted != NULL)
                *counted += (uint64_t)n;
            progressed(env);
            continue;
        }
        if (r->eof) {
            if (!r->shut) {
                shutdown(dst, SHUT_WR);
                r->shut = true;
            }
            return 0;
        }
        if (moved >= CONN_TUNNEL_BURST) {
            *src_want |= LOOP_READ;
            return 0;
        }
        if (r->mode == RELAY_SPLICE) {
            n = splice(src, NULL, r->pipe_w, NULL, CONN_TUNNEL_PIPE_CHUNK,
                       SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        } else {
            if (r->buf == NULL && (r->buf = relaybuf_get(env->pool, &r->cap)) == NULL)
                return -1;
            n = recv(src, r->buf, r->cap, 0);
            if (n > 0) {
                r->start = 0;
                r->end = (uint32_t)n;
            }
        }
        if (n < 0) {
            int rc = io_failed(src_want, LOOP_READ);
            if (rc == IO_RETRY)
                continue;
            return rc;
        }
        if (n == 0) {
            r->eof = true;
            continue;
        }
        if (r->mode == RELAY_SPLICE)
            r->in_pipe += (size_t)n;
        moved += (size_t)n;
        progressed(env);
    }
}

int
relay_pump(relay_t *r, const relay_env_t *env, int src, int dst, cbuf_t *pending,
           uint32_t *src_want, uint32_t *dst_want, uint64_t *counted)
{
    int rc = relay_move(r, env, src, dst, pending, src_want, dst_want, counted);

    if (r->buf != NULL && r->start == r->end) {
        relaybuf_put(env->pool, r->buf, r->cap);
        r->buf = NULL;
        r->cap = r->start = r->end = 0;
    }
    return rc;
}

