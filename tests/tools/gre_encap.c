/*
 * tests/tools/gre_encap.c: gre-encap, the forwarding half of a WCCP router
 * for the namespace tests: every IPv4 packet read from a TUN device (the
 * test routes the clients' port 80/443 traffic into it) is sent to the
 * cache GRE-encapsulated as a WCCPv2 router does: GRE protocol 0x883E, the
 * 4-byte redirect header (service 0 unless told, the bucket from
 * gre_wccp_bucket() of the destination), over a raw IPPROTO_GRE socket
 * bound to the router ID (the outer source the cache checks).
 *
 *   gre-encap --tun NAME --local ROUTER_ID --cache ADDR [--service N] [--v1]
 *
 * The TUN device must exist (ip tuntap add dev NAME mode tun) and is
 * brought up by the test (ip link set NAME up mtu 1472). --v1 sends WCCPv1
 * packets (no redirect header). Prints "ready" once it reads, and the
 * packet count on SIGTERM/SIGINT. It does not speak WCCP (no I_See_You),
 * decapsulate, or return anything: replies reach the client by routing.
 * The TUN and GRE plumbing is gre_fwd.c's, shared with wccp-router --tun,
 * which picks the cache by bucket from the assignment it accepted.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gre_fwd.h"

static volatile sig_atomic_t stopping;

static void
on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void
usage(void)
{
    fprintf(stderr, "usage: gre-encap --tun NAME --local ROUTER_ID --cache ADDR "
                    "[--service N] [--v1]\n");
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"tun", required_argument, NULL, 't'}, {"local", required_argument, NULL, 'l'},
        {"cache", required_argument, NULL, 'c'}, {"service", required_argument, NULL, 's'},
        {"v1", no_argument, NULL, '1'}, {NULL, 0, NULL, 0},
    };
    const char *tun = NULL, *local = NULL, *cache = NULL;
    struct in_addr src, dst;
    gre_wccp_t w = {.has_redirect_hdr = true};
    static uint8_t in[GRE_FWD_INNER_MAX];
    unsigned long long sent = 0, errors = 0;
    int opt, tfd, rfd;
    struct sigaction sa = {.sa_handler = on_signal};

    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 't': tun = optarg; break;
        case 'l': local = optarg; break;
        case 'c': cache = optarg; break;
        case 's': w.service_id = (uint8_t)atoi(optarg);
                  w.flags = w.service_id ? GRE_WCCP_F_DYNAMIC : 0; break;
        case '1': w.has_redirect_hdr = false; break;
        default: usage(); return 2;
        }
    }
    if (tun == NULL || local == NULL || cache == NULL || inet_pton(AF_INET, local, &src) != 1 ||
        inet_pton(AF_INET, cache, &dst) != 1) {
        usage();
        return 2;
    }
    tfd = gre_fwd_tun(tun, false, "gre-encap");
    if (tfd < 0)
        return 1;
    rfd = gre_fwd_socket(src.s_addr, "gre-encap");
    if (rfd < 0)
        return 1;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("ready\n");
    fflush(stdout);
    while (!stopping) {
        ssize_t n = read(tfd, in, sizeof(in));
        uint32_t d;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("gre-encap: read");
            break;
        }
        if (!gre_fwd_dst(in, (size_t)n, &d))
            continue;                   /* IPv6 and the like: not redirected */
        w.primary_bucket = gre_wccp_bucket(d);
        if (gre_fwd_send(rfd, dst.s_addr, &w, in, (size_t)n) < 0) {
            errors++;
            continue;
        }
        sent++;
    }
    printf("gre-encap: %llu packets sent, %llu errors\n", sent, errors);
    return 0;
}
