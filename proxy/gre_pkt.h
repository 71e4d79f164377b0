/*
 * proxy/gre_pkt.h: GRE packets as WCCP routers send redirected traffic: a
 * 4-byte GRE header (no flags, version 0, protocol 0x883E for WCCPv2 or
 * 0x883E without a redirect header for WCCPv1 routers) followed by the
 * 4-byte WCCPv2 redirect header (flags, service id, alternate bucket,
 * primary bucket) and the original IPv4 packet. Pure functions over
 * buffers, shared by the proxy's decapsulation (proxy/gre.c) and the test
 * router's encapsulation: no sockets, no allocation. The outer IPv4 header
 * is the kernel's (a raw IPPROTO_GRE socket): gre_strip_ip() skips it on
 * receive.
 */
#ifndef MUS_PROXY_GRE_PKT_H
#define MUS_PROXY_GRE_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRE_HDR_LEN         4
#define GRE_WCCP_HDR_LEN    4
#define GRE_PROTO_WCCP      0x883E
#define GRE_OVERHEAD        (20 + GRE_HDR_LEN + GRE_WCCP_HDR_LEN)  /* outer IPv4 + GRE + redirect */
#define GRE_INNER_MTU       1472    /* a 1500-byte path minus GRE_OVERHEAD */

#define GRE_WCCP_F_DYNAMIC  0x01    /* the service is dynamic (not web-cache 0) */
#define GRE_WCCP_F_ALT      0x02    /* the alternate bucket was used */

typedef enum gre_status {
    GRE_OK = 0,
    GRE_E_SHORT = -1,       /* fewer bytes than the headers need */
    GRE_E_FLAGS = -2,       /* checksum, key, sequence or routing bits, or version != 0 */
    GRE_E_PROTO = -3,       /* not 0x883E */
    GRE_E_INNER = -4,       /* the payload is not one whole IPv4 packet */
    GRE_E_SPACE = -5,       /* the output buffer is too small */
} gre_status_t;

typedef struct gre_wccp {
    uint8_t flags;          /* GRE_WCCP_F_* */
    uint8_t service_id;
    uint8_t alt_bucket;
    uint8_t primary_bucket;
    bool has_redirect_hdr;  /* false: a WCCPv1 packet (IPv4 right after GRE) */
    const uint8_t *inner;   /* the original IPv4 packet, inside the input buffer */
    size_t inner_len;       /* its total length (from its header) */
} gre_wccp_t;

/* Parses GRE + redirect header at buf[0..len) (after the outer IP header).
 * A payload whose first nibble is 4 right after GRE is taken as WCCPv1 (no
 * redirect header), as the Linux kernel does. */
gre_status_t gre_wccp_parse(const uint8_t *buf, size_t len, gre_wccp_t *out);

/* Writes GRE + redirect header + inner into out; returns the length, or
 * GRE_E_SPACE / GRE_E_INNER (inner must be one whole IPv4 packet). */
long gre_wccp_build(uint8_t *out, size_t cap, const gre_wccp_t *w, const uint8_t *inner,
                    size_t inner_len);

/* The bytes after an IPv4 header at buf (what a raw socket returns): sets
 * *off to its length; GRE_E_SHORT / GRE_E_INNER if it is not one. */
gre_status_t gre_strip_ip(const uint8_t *buf, size_t len, size_t *off);

/* A bucket for a packet of the web-cache service, which hashes on the
 * destination address: its four bytes folded with XOR into 8 bits (the
 * test router's choice; a real router has its own hash, and the cache only
 * needs the bucket it was given). dst in network byte order. */
uint8_t gre_wccp_bucket(uint32_t dst);

const char *gre_strerror(gre_status_t s);

#endif
