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
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../proxy/gre_pkt.h"

#define INNER_MAX 65535
#define ENCAP_BUF (INNER_MAX + GRE_HDR_LEN + GRE_WCCP_HDR_LEN)

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

static int
tun_attach(const char *name)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

    if (fd < 0) {
        perror("gre-encap: /dev/net/tun");
        return -1;
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        fprintf(stderr, "gre-encap: TUNSETIFF %s: %s\n", name, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
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
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    gre_wccp_t w = {.has_redirect_hdr = true};
    static uint8_t in[INNER_MAX], out[ENCAP_BUF];
    unsigned long long sent = 0, errors = 0;
    int opt, tfd, rfd, pmtu = IP_PMTUDISC_DONT;
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
    if (tun == NULL || local == NULL || cache == NULL ||
        inet_pton(AF_INET, local, &src.sin_addr) != 1 ||
        inet_pton(AF_INET, cache, &dst.sin_addr) != 1) {
        usage();
        return 2;
    }
    tfd = tun_attach(tun);
    if (tfd < 0)
        return 1;
    rfd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_GRE);
    if (rfd < 0 || bind(rfd, (struct sockaddr *)&src, sizeof(src)) < 0) {
        perror("gre-encap: raw GRE socket");
        return 1;
    }
    /* a full-sized client packet plus 28 bytes is fragmented, as routers do */
    setsockopt(rfd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("ready\n");
    fflush(stdout);
    while (!stopping) {
        ssize_t n = read(tfd, in, sizeof(in));
        uint32_t d;
        long k;

        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("gre-encap: read");
            break;
        }
        if (n < 20 || (in[0] >> 4) != 4)
            continue;                   /* IPv6 and the like: not redirected */
        memcpy(&d, in + 16, 4);
        w.primary_bucket = gre_wccp_bucket(d);
        k = gre_wccp_build(out, sizeof(out), &w, in, (size_t)n);
        if (k < 0 || sendto(rfd, out, (size_t)k, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
            errors++;
            continue;
        }
        sent++;
    }
    printf("gre-encap: %llu packets sent, %llu errors\n", sent, errors);
    return 0;
}
