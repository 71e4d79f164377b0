/*
 * proxy/gre.h: musproxy's own decapsulation of WCCP GRE, for kernels
 * without ip_gre (containers; the lab machines). One thread of its own
 * (never a worker's loop) reads a raw IPPROTO_GRE socket, keeps packets
 * from the configured routers only (the GRE source is the router ID),
 * strips the outer IPv4 header, GRE and the 4-byte WCCPv2 redirect header
 * (WCCPv1 packets have none: gre_pkt.h decides), and writes the client's
 * IPv4 packet to a TUN device it creates (IFF_TUN | IFF_NO_PI, address and
 * MTU set with ioctl, brought up). From there an nftables rule such as
 *   iifname "wccp0" tcp dport { 80, 443 } redirect to :3129
 * hands the connection to a mode: transparent listener, and the replies
 * leave by the normal routes (the WCCP "GRE return" of declined packets is
 * not done here: see README "Transparent mode and WCCP").
 *
 * MTU: the router adds 28 bytes (outer IPv4 20, GRE 4, redirect header 4)
 * to each client packet, so on a 1500-byte path the inner packets are at
 * most GRE_INNER_MTU (1472) bytes: the TUN gets that MTU so that the
 * interface states what the path carries (and anything sent back into it
 * is sized for it); clients' MSS is clamped by the nftables rules
 * (tools/wccp-gre.sh), larger inner packets still arrive (the kernel
 * reassembles fragmented GRE before the raw socket sees it).
 *
 * Needs CAP_NET_RAW (the socket) and CAP_NET_ADMIN (the TUN device):
 * gre_start() opens both, so it runs before anything drops privileges. It
 * does not speak WCCP (proxy/wccp.c does) and does not touch nftables.
 */
#ifndef MUS_PROXY_GRE_H
#define MUS_PROXY_GRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "../policy/config.h"

#define GRE_BATCH       32          /* packets taken per recvmmsg */
#define GRE_PKT_MAX     65535       /* an IPv4 packet, the outer one included */
#define GRE_RCVBUF      (4 << 20)   /* socket receive buffer asked for (bursts) */
#define GRE_WARN_EVERY_MS 10000     /* at most one log line per reason this often */

typedef struct gre gre_t;

/* Why a packet was not written to the TUN device. */
typedef enum gre_drop {
    GRE_DROP_NONE = 0,
    GRE_DROP_NOT_ROUTER,        /* the source is not a configured router */
    GRE_DROP_BAD_GRE,           /* flags, version, protocol, truncated headers */
    GRE_DROP_BAD_INNER,         /* the payload is not one whole IPv4 packet */
    GRE_DROP_TUN_WRITE,         /* the TUN device refused it */
    GRE_DROP_COUNT
} gre_drop_t;

typedef struct gre_router_stats {
    uint32_t addr;              /* network order */
    uint64_t packets;           /* decapsulated from it */
    int64_t last_ms;            /* wall clock of its last packet, 0 = never */
} gre_router_stats_t;

typedef struct gre_stats {
    uint64_t packets_in, bytes_in;      /* everything the raw socket returned */
    uint64_t decapsulated, bytes_out;   /* inner packets written to the TUN device */
    uint64_t v1_packets;                /* of those, without a redirect header */
    uint64_t dropped[GRE_DROP_COUNT];   /* by reason ([0] unused) */
    uint64_t recv_errors;               /* recvmmsg failures */
    gre_router_stats_t routers[CONFIG_GRE_MAX_ROUTERS];
    size_t n_routers;
    char last_error[160];               /* "" = none */
} gre_stats_t;

/*
 * Decides one packet as the raw socket returned it (outer IPv4 header
 * first) from src (network order): GRE_DROP_NONE with *inner and *inner_len set
 * to the client's packet inside pkt, or the reason to drop it. *router is
 * the index of src in routers (or -1). Pure: no I/O, no state.
 */
gre_drop_t gre_classify(const uint32_t *routers, size_t n_routers, uint32_t src,
                        const uint8_t *pkt, size_t len, const uint8_t **inner,
                        size_t *inner_len, int *router, bool *v1);

/* Opens the socket and the TUN device and starts the thread. NULL with a
 * message in err on failure (nothing is left open). */
gre_t *gre_start(const config_gre_t *cfg, char *err, size_t errlen);

/* Stops the thread, closes the socket (the TUN device disappears) and frees
 * g. NULL is allowed. */
void gre_stop(gre_t *g);

/* A consistent-enough snapshot of the counters (any thread). */
void gre_get_stats(gre_t *g, gre_stats_t *out);

/* {"enabled":true, "tun":"wccp0", "mtu":1472, "packets_in":..., "dropped":{...},
 *  "routers":[...]} ; {"enabled":false} for NULL. */
json_t *gre_status_json(gre_t *g);

const char *gre_drop_name(gre_drop_t d);

#endif
