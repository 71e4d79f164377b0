/*
 * proxy/wccp_pkt_int.h: what wccp_pkt.c (builders, MD5) and wccp_parse.c
 * (the parser) share. Private to those two files.
 */
#ifndef MUS_PROXY_WCCP_PKT_INT_H
#define MUS_PROXY_WCCP_PKT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wccp_pkt.h"

static inline uint16_t
wccp_get16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t
wccp_get32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void
wccp_set16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static inline void
wccp_set32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* MD5(password padded/cut to 8 || msg[0..len)) with msg[dig_off..+16) read as
 * zeros, into out. 0 or -1 (OpenSSL failed). */
int wccp_md5(const char *password, const uint8_t *msg, size_t len, size_t dig_off,
             uint8_t out[WCCP_MD5_LEN]);
/* true when msg[dig_off..+16) is that digest (constant-time compare) */
bool wccp_md5_verify(const char *password, const uint8_t *msg, size_t len, size_t dig_off);

#endif
