/*
 * proxy/relaybuf.h: the copy buffers of tunnel relays, pooled per worker.
 *
 * A tunnel direction that copies (rather than splices) borrows a buffer while
 * bytes are in flight and gives it back as soon as it is empty: an idle
 * tunnel holds none, and a busy worker keeps reusing the same few, which stay
 * warm in the CPU caches. Large buffers (RELAYBUF_BIG) are lent while the
 * worker's large buffers total at most RELAYBUF_BUDGET; past that, small ones
 * (RELAYBUF_SMALL), so memory stays bounded however many tunnels stall on a
 * slow reader. The pool also keeps spare connection buffers
 * (CONN_BUF_SIZE: a request head, a response streaming): a keep-alive
 * request takes and gives back warm ones instead of a malloc and a free
 * each, which at the heap's top also grew and trimmed the heap every time.
 * It does not move bytes (proxy/conn.c does) and is not thread-safe: one
 * pool per worker thread.
 */
#ifndef MUS_PROXY_RELAYBUF_H
#define MUS_PROXY_RELAYBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct relaybuf_pool relaybuf_pool_t;

typedef struct relaybuf_stats {
    size_t big_lent;      /* large buffers held by tunnels now */
    size_t small_lent;    /* small buffers held by tunnels now */
    size_t big_spare;     /* large buffers kept for the next borrower */
    uint64_t over_budget; /* times a small buffer was lent because of the budget */
} relaybuf_stats_t;

/* NULL on allocation failure. */
relaybuf_pool_t *relaybuf_pool_new(void);

/* Frees the spare buffers and the pool; every lent buffer must be back. NULL
 * allowed. */
void relaybuf_pool_free(relaybuf_pool_t *p);

/* Lends a buffer and stores its size in *cap; NULL on allocation failure. */
char *relaybuf_get(relaybuf_pool_t *p, uint32_t *cap);

/* Gives back a buffer lent by relaybuf_get with the size it reported. */
void relaybuf_put(relaybuf_pool_t *p, char *buf, uint32_t cap);

void relaybuf_stats(const relaybuf_pool_t *p, relaybuf_stats_t *out);

/* A connection buffer of CONN_BUF_SIZE bytes (a spare one if there is);
 * NULL on allocation failure. */
char *relaybuf_get_conn(relaybuf_pool_t *p);

/* Takes back a buffer of relaybuf_get_conn (kept as a spare, or freed past
 * RELAYBUF_CONN_SPARE). NULL allowed. */
void relaybuf_put_conn(relaybuf_pool_t *p, char *buf);

#endif
