/*
 * proxy/cbuf.c: the connection byte queue (see cbuf.h).
 */
#include "cbuf.h"

#include <stdlib.h>
#include <string.h>

#include "../common/dec.h"
#include "../common/grow.h"

int
cbuf_reserve(cbuf_t *b, uint32_t cap)
{
    char *d;

    if (b->cap >= cap)
        return 0;
    d = realloc(b->data, cap);
    if (d == NULL)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

void
cbuf_release(cbuf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->cap = b->start = b->end = 0;
}

int
cbuf_append(cbuf_t *b, const char *p, size_t n)
{
    if (b->end + n > b->cap) {
        size_t cap = grow_cap(b->cap, b->end + n, CBUF_FIRST_CAP, UINT32_MAX);
        if (cap == 0 || cbuf_reserve(b, (uint32_t)cap) < 0)
            return -1;
    }
    memcpy(b->data + b->end, p, n);
    b->end += (uint32_t)n;
    return 0;
}

int
cbuf_puts(cbuf_t *b, const char *s)
{
    return cbuf_append(b, s, strlen(s));
}

int
cbuf_put_uint(cbuf_t *b, unsigned long long v)
{
    char tmp[DEC_U64_MAX];

    return cbuf_append(b, tmp, dec_u64(tmp, v));
}

void
cbuf_compact(cbuf_t *b, uint32_t *scan)
{
    if (b->start == 0)
        return;
    memmove(b->data, b->data + b->start, cbuf_len(b));
    if (scan != NULL)
        *scan -= b->start;
    b->end -= b->start;
    b->start = 0;
}
