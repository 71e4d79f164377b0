/*
 * proxy/gre_pkt.c: GRE and the WCCPv2 redirect header (see gre_pkt.h).
 */
#include "gre_pkt.h"

#include <string.h>

static uint16_t
rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

/* Length of the IPv4 packet at p (n bytes available), 0 if it is not one. */
static size_t
ipv4_total(const uint8_t *p, size_t n)
{
    size_t ihl, tot;

    if (n < 20 || (p[0] >> 4) != 4)
        return 0;
    ihl = (size_t)(p[0] & 0x0f) * 4;
    tot = rd16(p + 2);
    if (ihl < 20 || tot < ihl || tot > n)
        return 0;
    return tot;
}

gre_status_t
gre_strip_ip(const uint8_t *buf, size_t len, size_t *off)
{
    size_t ihl;

    if (len < 20)
        return GRE_E_SHORT;
    if ((buf[0] >> 4) != 4)
        return GRE_E_INNER;
    ihl = (size_t)(buf[0] & 0x0f) * 4;
    if (ihl < 20 || ihl > len)
        return GRE_E_INNER;
    *off = ihl;
    return GRE_OK;
}

gre_status_t
gre_wccp_parse(const uint8_t *buf, size_t len, gre_wccp_t *out)
{
    size_t tot;

    memset(out, 0, sizeof(*out));
    if (len < GRE_HDR_LEN)
        return GRE_E_SHORT;
    /* C, R, K, S, s bits, recursion, flags and version: all zero */
    if (buf[0] != 0 || buf[1] != 0)
        return GRE_E_FLAGS;
    if (rd16(buf + 2) != GRE_PROTO_WCCP)
        return GRE_E_PROTO;
    buf += GRE_HDR_LEN;
    len -= GRE_HDR_LEN;
    if (len > 0 && (buf[0] >> 4) != 4) {
        if (len < GRE_WCCP_HDR_LEN)
            return GRE_E_SHORT;
        out->has_redirect_hdr = true;
        out->flags = buf[0];
        out->service_id = buf[1];
        out->alt_bucket = buf[2];
        out->primary_bucket = buf[3];
        buf += GRE_WCCP_HDR_LEN;
        len -= GRE_WCCP_HDR_LEN;
    }
    tot = ipv4_total(buf, len);
    if (tot == 0 || tot != len)
        return len < 20 ? GRE_E_SHORT : GRE_E_INNER;
    out->inner = buf;
    out->inner_len = tot;
    return GRE_OK;
}

long
gre_wccp_build(uint8_t *out, size_t cap, const gre_wccp_t *w, const uint8_t *inner,
               size_t inner_len)
{
    size_t hdr = GRE_HDR_LEN + (w->has_redirect_hdr ? GRE_WCCP_HDR_LEN : 0);

    if (ipv4_total(inner, inner_len) != inner_len)
        return GRE_E_INNER;
    if (cap < hdr + inner_len)
        return GRE_E_SPACE;
    out[0] = 0;
    out[1] = 0;
    out[2] = (uint8_t)(GRE_PROTO_WCCP >> 8);
    out[3] = (uint8_t)(GRE_PROTO_WCCP & 0xff);
    if (w->has_redirect_hdr) {
        out[4] = w->flags;
        out[5] = w->service_id;
        out[6] = w->alt_bucket;
        out[7] = w->primary_bucket;
    }
    memcpy(out + hdr, inner, inner_len);
    return (long)(hdr + inner_len);
}

uint8_t
gre_wccp_bucket(uint32_t dst)
{
    uint32_t h = dst;

    h ^= h >> 16;
    h ^= h >> 8;
    return (uint8_t)h;
}

const char *
gre_strerror(gre_status_t s)
{
    switch (s) {
    case GRE_OK: return "ok";
    case GRE_E_SHORT: return "packet too short";
    case GRE_E_FLAGS: return "GRE flags or version not zero";
    case GRE_E_PROTO: return "GRE protocol is not 0x883E (WCCP)";
    case GRE_E_INNER: return "payload is not one IPv4 packet";
    case GRE_E_SPACE: return "buffer too small";
    }
    return "error";
}
