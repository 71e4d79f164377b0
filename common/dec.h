/*
 * common/dec.h: an unsigned number in decimal, what "%llu" prints, for the
 * writers on the request path (access log line, HTTP heads) that avoid
 * snprintf. Inline, header only: no locale, no allocation, no padding
 * (callers pad).
 */
#ifndef MUS_COMMON_DEC_H
#define MUS_COMMON_DEC_H

#include <stddef.h>
#include <string.h>

#define DEC_U64_MAX 20   /* digits of 18446744073709551615 */

/* Writes the digits of v to out (room for DEC_U64_MAX), returns how many. */
static inline size_t
dec_u64(char *out, unsigned long long v)
{
    char tmp[DEC_U64_MAX];
    size_t i = sizeof tmp;

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    memcpy(out, tmp + i, sizeof tmp - i);
    return sizeof tmp - i;
}

#endif
