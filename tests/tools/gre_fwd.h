/*
 * tests/tools/gre_fwd.h: the forwarding half of our test routers, shared by
 * gre-encap (one fixed cache) and wccp-router --tun (the cache of each
 * packet's bucket): a TUN device the test routes the clients' web traffic
 * into, a raw IPPROTO_GRE socket bound to the router ID (the outer source
 * the cache checks), and one IPv4 packet sent GRE-encapsulated with the
 * WCCPv2 redirect header (gre_pkt.h) to a cache. Single-threaded tools
 * only (one static output buffer). It does not choose the cache, speak
 * WCCP or decapsulate anything.
 */
#ifndef MUS_TESTS_GRE_FWD_H
#define MUS_TESTS_GRE_FWD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../proxy/gre_pkt.h"

#define GRE_FWD_INNER_MAX 65535     /* the largest IPv4 packet read from the TUN */

/* Attaches to the existing TUN device name (IFF_TUN | IFF_NO_PI); the fd, or
 * -1 with a message on stderr prefixed by who. */
int gre_fwd_tun(const char *name, bool nonblock, const char *who);

/* A raw GRE socket bound to local (network order) that lets the kernel
 * fragment (routers fragment a full-sized client packet plus 28 bytes);
 * the fd, or -1 with a message on stderr. */
int gre_fwd_socket(uint32_t local, const char *who);

/* The destination (network order) of the IPv4 packet pkt[0..len); false if
 * it is not one (IPv6 and the like are not redirected). */
bool gre_fwd_dst(const uint8_t *pkt, size_t len, uint32_t *dst);

/* Sends pkt behind GRE and w's redirect header to cache (network order).
 * 0, or -1 (not one IPv4 packet, or sendto failed). */
int gre_fwd_send(int fd, uint32_t cache, const gre_wccp_t *w, const uint8_t *pkt, size_t len);

#endif
