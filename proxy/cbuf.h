/*
 * proxy/cbuf.h: the byte queue of a connection direction: data[start..end)
 * is pending, start moves as bytes leave, compaction moves the pending
 * bytes to the front. It grows by doubling (common/grow.h) up to 4 GiB and
 * never shrinks except by cbuf_release. It does no I/O.
 */
#ifndef MUS_PROXY_CBUF_H
#define MUS_PROXY_CBUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct cbuf {
    char *data;
    uint32_t cap, start, end;
} cbuf_t;

#define CBUF_FIRST_CAP 1024   /* first allocation of a growing buffer */

/* Makes the capacity at least cap (contents kept). 0, or -1 out of memory. */
int cbuf_reserve(cbuf_t *b, uint32_t cap);
/* Frees the storage; the buffer is empty and usable again. */
void cbuf_release(cbuf_t *b);
/* Appends n bytes, growing as needed. 0 or -1. */
int cbuf_append(cbuf_t *b, const char *p, size_t n);
int cbuf_puts(cbuf_t *b, const char *s);
/* Appends v in decimal (what "%llu" prints). 0 or -1. */
int cbuf_put_uint(cbuf_t *b, unsigned long long v);
/* Moves the pending bytes to the front; *scan (an offset into data that
 * marks how far the bytes were classified), if given, moves along. */
void cbuf_compact(cbuf_t *b, uint32_t *scan);

static inline uint32_t
cbuf_len(const cbuf_t *b)
{
    return b->end - b->start;
}

#endif
