/*
 * tests/tools/gre_fwd.c: TUN in, GRE with the WCCPv2 redirect header out,
 * for the test routers (see gre_fwd.h).
 */
#include "gre_fwd.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define GRE_FWD_BUF (GRE_FWD_INNER_MAX + GRE_HDR_LEN + GRE_WCCP_HDR_LEN)

int
gre_fwd_tun(const char *name, bool nonblock, const char *who)
{
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | (nonblock ? O_NONBLOCK : 0));

    if (fd < 0) {
        fprintf(stderr, "%s: /dev/net/tun: %s\n", who, strerror(errno));
        return -1;
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        fprintf(stderr, "%s: TUNSETIFF %s: %s\n", who, name, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int
gre_fwd_socket(uint32_t local, const char *who)
{
    struct sockaddr_in src = {.sin_family = AF_INET, .sin_addr.s_addr = local};
    int pmtu = IP_PMTUDISC_DONT;
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_GRE);

    if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
        fprintf(stderr, "%s: raw GRE socket: %s\n", who, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    (void)setsockopt(fd, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu, sizeof(pmtu));
    return fd;
}

bool
gre_fwd_dst(const uint8_t *pkt, size_t len, uint32_t *dst)
{
    if (len < 20 || (pkt[0] >> 4) != 4)
        return false;
    memcpy(dst, pkt + 16, 4);
    return true;
}

int
gre_fwd_send(int fd, uint32_t cache, const gre_wccp_t *w, const uint8_t *pkt, size_t len)
{
    static uint8_t out[GRE_FWD_BUF];
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_addr.s_addr = cache};
    long k = gre_wccp_build(out, sizeof(out), w, pkt, len);

    if (k < 0 || sendto(fd, out, (size_t)k, 0, (struct sockaddr *)&dst, sizeof(dst)) < 0)
        return -1;
    return 0;
}
