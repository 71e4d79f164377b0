/*
 * proxy/gre.c: the userspace GRE decapsulation thread (see gre.h): the raw
 * socket, the TUN device and its addresses, the receive loop and its
 * counters. The packet formats are gre_pkt.c's.
 */
#include "gre.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/log.h"
#include "gre_pkt.h"

#define TUN_DEV_PATH "/dev/net/tun"

typedef _Atomic uint64_t counter_t;

struct gre {
    config_gre_t cfg;
    int raw_fd;                 /* socket(AF_INET, SOCK_RAW, IPPROTO_GRE) */
    int tun_fd;                 /* /dev/net/tun attached to cfg.tun */
    int stop_fd;                /* eventfd: the thread ends when it is readable */
    pthread_t thread;
    bool started;

    /* written by the thread only, read by any */
    counter_t packets_in, bytes_in, decapsulated, bytes_out, v1_packets, recv_errors;
    counter_t dropped[GRE_DROP_COUNT];
    counter_t router_packets[CONFIG_GRE_MAX_ROUTERS];
    _Atomic int64_t router_last_ms[CONFIG_GRE_MAX_ROUTERS];
    pthread_mutex_t err_lock;   /* last_error */
    char last_error[160];
    int64_t warned_ms[GRE_DROP_COUNT];  /* thread-private: log rate limit */

    uint8_t (*bufs)[GRE_PKT_MAX];       /* GRE_BATCH receive buffers */
};

static const char *const drop_names[GRE_DROP_COUNT] = {
    [GRE_DROP_NONE] = "none",
    [GRE_DROP_NOT_ROUTER] = "not_router",
    [GRE_DROP_BAD_GRE] = "bad_gre",
    [GRE_DROP_BAD_INNER] = "bad_inner",
    [GRE_DROP_TUN_WRITE] = "tun_write",
};

const char *
gre_drop_name(gre_drop_t d)
{
    return (unsigned)d < GRE_DROP_COUNT ? drop_names[d] : "?";
}

/* Single writer: a relaxed load and store, no locked instruction per packet. */
static inline void
bump(counter_t *c, uint64_t n)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

static inline uint64_t
get(counter_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

gre_drop_t
gre_classify(const uint32_t *routers, size_t n_routers, uint32_t src, const uint8_t *pkt,
             size_t len, const uint8_t **inner, size_t *inner_len, int *router, bool *v1)
{
    gre_wccp_t w;
    size_t off;
    gre_status_t s;

    *router = -1;
    for (size_t i = 0; i < n_routers; i++)
        if (routers[i] == src) {
            *router = (int)i;
            break;
        }
    if (*router < 0)
        return GRE_DROP_NOT_ROUTER;
    /* the outer header is the kernel's, already checked by it: a header
     * that does not parse here is a truncated packet */
    if (gre_strip_ip(pkt, len, &off) != GRE_OK)
        return GRE_DROP_BAD_GRE;
    s = gre_wccp_parse(pkt + off, len - off, &w);
    if (s == GRE_E_INNER || (s == GRE_E_SHORT && len - off >= GRE_HDR_LEN + GRE_WCCP_HDR_LEN))
        return GRE_DROP_BAD_INNER;
    if (s != GRE_OK)
        return GRE_DROP_BAD_GRE;
    *inner = w.inner;
    *inner_len = w.inner_len;
    *v1 = !w.has_redirect_hdr;
    return GRE_DROP_NONE;
}

static void
set_error(gre_t *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
set_error(gre_t *g, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&g->err_lock);
    va_start(ap, fmt);
    vsnprintf(g->last_error, sizeof(g->last_error), fmt, ap);
    va_end(ap);
    pthread_mutex_unlock(&g->err_lock);
}

/* Counts a drop; the first of each reason every GRE_WARN_EVERY_MS is logged. */
static void
drop(gre_t *g, gre_drop_t why, uint32_t src, int err)
{
    char ip[INET_ADDRSTRLEN];
    int64_t now;

    bump(&g->dropped[why], 1);
    inet_ntop(AF_INET, &src, ip, sizeof(ip));
    if (why == GRE_DROP_TUN_WRITE)
        set_error(g, "%s: writing a packet from %s: %s", g->cfg.tun, ip, strerror(err));
    else
        set_error(g, "GRE from %s dropped: %s", ip, gre_drop_name(why));
    now = wall_ms();
    if (now - g->warned_ms[why] >= GRE_WARN_EVERY_MS) {
        g->warned_ms[why] = now;
        log_warn("gre: packet from %s dropped (%s; %llu so far)%s", ip, gre_drop_name(why),
                 (unsigned long long)get(&g->dropped[why]),
                 why == GRE_DROP_NOT_ROUTER ? ": not in gre.routers" : "");
    }
}

static void
handle(gre_t *g, const uint8_t *pkt, size_t len, uint32_t src)
{
    const uint8_t *inner = NULL;
    size_t inner_len = 0;
    int router = -1;
    bool v1 = false;
    gre_drop_t why;

    bump(&g->packets_in, 1);
    bump(&g->bytes_in, len);
    why = gre_classify(g->cfg.routers, g->cfg.n_routers, src, pkt, len, &inner, &inner_len,
                       &router, &v1);
    if (why != GRE_DROP_NONE) {
        drop(g, why, src, 0);
        return;
    }
    if (write(g->tun_fd, inner, inner_len) != (ssize_t)inner_len) {
        drop(g, GRE_DROP_TUN_WRITE, src, errno);
        return;
    }
    bump(&g->decapsulated, 1);
    bump(&g->bytes_out, inner_len);
    if (v1)
        bump(&g->v1_packets, 1);
    bump(&g->router_packets[router], 1);
    atomic_store_explicit(&g->router_last_ms[router], wall_ms(), memory_order_relaxed);
}

static void *
gre_thread(void *arg)
{
    gre_t *g = arg;
    struct mmsghdr msgs[GRE_BATCH];
    struct iovec iov[GRE_BATCH];
    struct sockaddr_in from[GRE_BATCH];

    for (;;) {
        struct pollfd p[2] = {{.fd = g->raw_fd, .events = POLLIN},
                              {.fd = g->stop_fd, .events = POLLIN}};
        int n;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            log_error("gre: poll: %s (decapsulation stops)", strerror(errno));
            set_error(g, "poll: %s", strerror(errno));
            break;
        }
        if (p[1].revents)
            break;
        memset(msgs, 0, sizeof(msgs));
        for (int i = 0; i < GRE_BATCH; i++) {
            iov[i] = (struct iovec){.iov_base = g->bufs[i], .iov_len = GRE_PKT_MAX};
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &from[i];
            msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
        }
        n = recvmmsg(g->raw_fd, msgs, GRE_BATCH, MSG_DONTWAIT, NULL);
        if (n < 0) {
            if (errno != EAGAIN && errno != EINTR) {
                bump(&g->recv_errors, 1);
                set_error(g, "recvmmsg: %s", strerror(errno));
            }
            continue;
        }
        for (int i = 0; i < n; i++) {
            uint32_t src = msgs[i].msg_hdr.msg_namelen >= sizeof(from[i]) ?
                           from[i].sin_addr.s_addr : 0;
            /* MSG_TRUNC: longer than an IPv4 packet can be, never a valid one */
            size_t len = msgs[i].msg_len;
            if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC)
                len = 0;
            handle(g, g->bufs[i], len, src);
        }
    }
    return NULL;
}

/* ---- the TUN device ---- */

static int
ifreq_ioctl(int sock, unsigned long req, struct ifreq *ifr, const char *what, char *err,
            size_t errlen)
{
    if (ioctl(sock, req, ifr) == 0)
        return 0;
    snprintf(err, errlen, "gre: %s %s: %s", what, ifr->ifr_name, strerror(errno));
    return -1;
}

static void
set_sockaddr(struct sockaddr *sa, uint32_t addr)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = addr};

    memcpy(sa, &sin, sizeof(sin));
}

/* Address, netmask, MTU, up: the ioctls `ip addr add`, `ip link set mtu
 * ... up` would do. */
static int
tun_configure(const config_gre_t *c, char *err, size_t errlen)
{
    struct ifreq ifr;
    int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = -1;

    if (sock < 0) {
        snprintf(err, errlen, "gre: socket: %s", strerror(errno));
        return -1;
    }
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tun);
    if (c->address != 0) {
        uint32_t mask = c->prefix ? htonl(~(uint32_t)0 << (32 - c->prefix)) : 0;
        set_sockaddr(&ifr.ifr_addr, c->address);
        if (ifreq_ioctl(sock, SIOCSIFADDR, &ifr, "setting the address of", err, errlen) < 0)
            goto out;
        set_sockaddr(&ifr.ifr_netmask, mask);
        if (ifreq_ioctl(sock, SIOCSIFNETMASK, &ifr, "setting the netmask of", err, errlen) < 0)
            goto out;
    }
    ifr.ifr_mtu = (int)c->mtu;
    if (ifreq_ioctl(sock, SIOCSIFMTU, &ifr, "setting the MTU of", err, errlen) < 0)
        goto out;
    if (ifreq_ioctl(sock, SIOCGIFFLAGS, &ifr, "reading the flags of", err, errlen) < 0)
        goto out;
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ifreq_ioctl(sock, SIOCSIFFLAGS, &ifr, "bringing up", err, errlen) < 0)
        goto out;
    rc = 0;
out:
    close(sock);
    return rc;
}

/* Decapsulated packets come from client addresses routed elsewhere: strict
 * reverse-path filtering would drop them. The device's own setting is ours
 * to set; "all" is the host's, so only a warning (the kernel uses the
 * larger of the two). */
static void
tun_rp_filter(const char *tun)
{
    char path[128], v[8] = "";
    FILE *f;

    snprintf(path, sizeof(path), "/proc/sys/net/ipv4/conf/%s/rp_filter", tun);
    f = fopen(path, "w");
    if (f == NULL || fputs("0\n", f) < 0)
        log_warn("gre: cannot set %s to 0: %s", path, strerror(errno));
    if (f != NULL)
        fclose(f);
    f = fopen("/proc/sys/net/ipv4/conf/all/rp_filter", "r");
    if (f != NULL) {
        if (fgets(v, sizeof(v), f) != NULL && v[0] == '1')
            log_warn("gre: net.ipv4.conf.all.rp_filter is 1 (strict): decapsulated packets "
                     "from clients are dropped; run sysctl -w net.ipv4.conf.all.rp_filter=0 "
                     "(or 2)");
        fclose(f);
    }
}

static int
tun_open(const config_gre_t *c, char *err, size_t errlen)
{
    struct ifreq ifr;
    int fd = open(TUN_DEV_PATH, O_RDWR | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) {
        snprintf(err, errlen, "gre: %s: %s", TUN_DEV_PATH, strerror(errno));
        return -1;
    }
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", c->tun);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        snprintf(err, errlen, "gre: creating TUN device %s: %s%s", c->tun, strerror(errno),
                 errno == EPERM ? " (needs CAP_NET_ADMIN)" : "");
        close(fd);
        return -1;
    }
    if (tun_configure(c, err, errlen) < 0) {
        close(fd);
        return -1;
    }
    tun_rp_filter(c->tun);
    return fd;
}

static int
raw_open(char *err, size_t errlen)
{
    int fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_GRE), size = GRE_RCVBUF;

    if (fd < 0) {
        snprintf(err, errlen, "gre: raw IPPROTO_GRE socket: %s%s", strerror(errno),
                 errno == EPERM ? " (needs CAP_NET_RAW)" : "");
        return -1;
    }
    /* a larger buffer for bursts; RCVBUFFORCE goes past rmem_max with CAP_NET_ADMIN */
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    return fd;
}

gre_t *
gre_start(const config_gre_t *cfg, char *err, size_t errlen)
{
    gre_t *g = calloc(1, sizeof(*g));
    int rc;

    if (g == NULL || (g->bufs = calloc(GRE_BATCH, sizeof(*g->bufs))) == NULL) {
        snprintf(err, errlen, "gre: out of memory");
        free(g);
        return NULL;
    }
    g->cfg = *cfg;
    g->raw_fd = g->tun_fd = g->stop_fd = -1;
    pthread_mutex_init(&g->err_lock, NULL);
    g->raw_fd = raw_open(err, errlen);
    if (g->raw_fd < 0)
        goto fail;
    g->tun_fd = tun_open(cfg, err, errlen);
    if (g->tun_fd < 0)
        goto fail;
    g->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (g->stop_fd < 0) {
        snprintf(err, errlen, "gre: eventfd: %s", strerror(errno));
        goto fail;
    }
    rc = pthread_create(&g->thread, NULL, gre_thread, g);
    if (rc != 0) {
        snprintf(err, errlen, "gre: cannot start the thread: %s", strerror(rc));
        goto fail;
    }
    g->started = true;
    pthread_setname_np(g->thread, "mp-gre");
    log_info("gre: decapsulating WCCP GRE from %zu router(s) into %s (mtu %u)", cfg->n_routers,
             cfg->tun, cfg->mtu);
    return g;
fail:
    gre_stop(g);
    return NULL;
}

void
gre_stop(gre_t *g)
{
    uint64_t one = 1;

    if (g == NULL)
        return;
    if (g->started) {
        if (write(g->stop_fd, &one, sizeof(one)) < 0)
            log_error("gre: cannot signal the thread: %s", strerror(errno));
        pthread_join(g->thread, NULL);
    }
    if (g->raw_fd >= 0)
        close(g->raw_fd);
    if (g->tun_fd >= 0)
        close(g->tun_fd);
    if (g->stop_fd >= 0)
        close(g->stop_fd);
    pthread_mutex_destroy(&g->err_lock);
    free(g->bufs);
    free(g);
}

void
gre_get_stats(gre_t *g, gre_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    out->packets_in = get(&g->packets_in);
    out->bytes_in = get(&g->bytes_in);
    out->decapsulated = get(&g->decapsulated);
    out->bytes_out = get(&g->bytes_out);
    out->v1_packets = get(&g->v1_packets);
    out->recv_errors = get(&g->recv_errors);
    for (int i = 0; i < GRE_DROP_COUNT; i++)
        out->dropped[i] = get(&g->dropped[i]);
    out->n_routers = g->cfg.n_routers;
    for (size_t i = 0; i < g->cfg.n_routers; i++) {
        out->routers[i].addr = g->cfg.routers[i];
        out->routers[i].packets = get(&g->router_packets[i]);
        out->routers[i].last_ms = atomic_load_explicit(&g->router_last_ms[i],
                                                       memory_order_relaxed);
    }
    pthread_mutex_lock(&g->err_lock);
    memcpy(out->last_error, g->last_error, sizeof(out->last_error));
    pthread_mutex_unlock(&g->err_lock);
}

json_t *
gre_status_json(gre_t *g)
{
    gre_stats_t s;
    json_t *routers, *dropped, *out;
    char ip[INET_ADDRSTRLEN];
    uint64_t total = 0;

    if (g == NULL)
        return json_pack("{s:b}", "enabled", 0);
    gre_get_stats(g, &s);
    routers = json_array();
    for (size_t i = 0; i < s.n_routers; i++) {
        inet_ntop(AF_INET, &s.routers[i].addr, ip, sizeof(ip));
        json_array_append_new(routers, json_pack("{s:s, s:I, s:I}", "address", ip, "packets",
                                                 (json_int_t)s.routers[i].packets, "last",
                                                 (json_int_t)(s.routers[i].last_ms / 1000)));
    }
    dropped = json_object();
    for (int i = 1; i < GRE_DROP_COUNT; i++) {
        json_object_set_new(dropped, drop_names[i], json_integer((json_int_t)s.dropped[i]));
        total += s.dropped[i];
    }
    json_object_set_new(dropped, "total", json_integer((json_int_t)total));
    out = json_pack("{s:b, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:s}",
                    "enabled", 1, "tun", g->cfg.tun, "mtu", (json_int_t)g->cfg.mtu,
                    "packets_in", (json_int_t)s.packets_in, "bytes_in", (json_int_t)s.bytes_in,
                    "decapsulated", (json_int_t)s.decapsulated,
                    "bytes_out", (json_int_t)s.bytes_out, "wccpv1", (json_int_t)s.v1_packets,
                    "recv_errors", (json_int_t)s.recv_errors, "dropped", dropped,
                    "routers", routers, "last_error", s.last_error);
    return out;
}
