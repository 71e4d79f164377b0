/*
 * tests/tools/wccp_router.c: a WCCPv2 router emulator for the tests (the
 * router side of the protocol, our own code on the real codec of
 * proxy/wccp_pkt.h). It listens on ADDRESS:2048 (its Router ID is that
 * address), answers every Here_I_Am with an I_See_You (a receive id per
 * cache, its member change number, the assignment key it holds, every cache
 * of the service with its weight and the buckets it has), accepts a
 * Redirect_Assign only from the designated cache (the lowest address in its
 * view) and only when the assignment names its current member change number
 * and the receive id it last sent that cache, sends a Removal_Query to a
 * cache silent for 2.5 intervals and drops it after 3 (its buckets become
 * unassigned), and drops at once a cache whose Here_I_Am carries the
 * shutdown command.
 *
 *   wccp-router --address IP --control PATH [--interval-ms N]
 *               [--password-file F] [--caps none|hash|mask|both] [--tun NAME]
 *
 * --caps: the Capabilities it sends (GRE forwarding and return, and the
 * assignment methods named; none = no component, meaning GRE/hash/GRE).
 * Control: a Unix stream socket; one request line per connection, one
 * answer line back:
 *   assignment [SVC]  key=IP/N form=hash|mask|none IP=COUNT ... none=COUNT
 *   buckets [SVC]     the 256 buckets' caches ("-" = unassigned)
 *   view [SVC]        member_change=N caches=IP,IP,...
 *   stats             in=N bad=N security=N hia=N isy=N ra_accepted=N ...
 *   forwarded         IP=PACKETS ... not_redirected=N errors=N (with --tun)
 * SVC is a service id (default 0).
 *
 * --tun NAME: it also forwards, as a router's data plane does. Every IPv4
 * packet read from the TUN device NAME (it must exist; the test routes the
 * clients' web traffic into it) goes to the cache that holds its bucket in
 * the hash assignment last accepted for the web-cache service 0: the
 * bucket is gre_wccp_bucket() of the destination (proxy/gre_pkt.h), the
 * packet is GRE-encapsulated with the WCCPv2 redirect header and sent from
 * the Router ID (tests/tools/gre_fwd.c). So a change of assignment (a cache
 * removed, a Redirect_Assign accepted) moves the traffic at once. A packet
 * whose bucket is unassigned (no cache yet, its cache removed, or a mask
 * assignment: not forwarded by this emulator) is not redirected: it is
 * written back into the TUN device and the kernel routes it on normally
 * (it arrives from NAME, which the test's redirect rule does not match).
 * Dynamic services are not forwarded, and nothing is decapsulated (the
 * GRE return method is not emulated).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "../../proxy/wccp_pkt.h"
#include "gre_fwd.h"

#define SVCS_MAX      8
#define LINE_MAX_LEN  8192
#define TICK_MS       50
#define FWD_CACHES    (2 * WCCP_CACHES_MAX)   /* caches ever forwarded to (counters) */
#define FWD_BATCH     64                      /* packets read from the TUN per wake-up */

typedef struct rcache {
    uint32_t ip;
    uint16_t weight;
    int64_t last_hia;
    uint32_t receive_id;     /* of our last I_See_You to it */
    bool queried;
} rcache_t;

typedef struct rfwd {
    uint32_t ip;
    unsigned long packets;
} rfwd_t;

typedef struct rsvc {
    bool used;
    wccp_service_t def;
    rcache_t caches[WCCP_CACHES_MAX];
    size_t n_caches;
    uint32_t member_change;
    wccp_assign_key_t key;
    int form;                /* -1 none, WCCP_AF_HASH, WCCP_AF_MASK */
    uint32_t bucket[WCCP_BUCKETS];   /* cache address, 0 = unassigned */
    wccp_mvlist_t mask;
} rsvc_t;

static struct {
    uint32_t self;
    int64_t interval;
    char password[WCCP_PASSWORD_LEN + 1];
    bool md5;
    wccp_caps_t caps;
    int fd;
    rsvc_t svcs[SVCS_MAX];
    unsigned long in, bad, security, hia, isy, ra_accepted, ra_rejected, rq, removed;
    char last_reject[200];
    /* the data plane (--tun): -1 when off */
    int tun_fd, gre_fd;
    rfwd_t fwd[FWD_CACHES];
    size_t n_fwd;
    unsigned long not_redirected, fwd_errors;
    uint8_t pkt[GRE_FWD_INNER_MAX];
    uint8_t buf[WCCP_MSG_MAX];
    wccp_msg_t msg;
    wccp_isy_t isy_m;
} g;

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *
ip_s(uint32_t ip, char *b)
{
    struct in_addr a = {htonl(ip)};

    return inet_ntop(AF_INET, &a, b, INET_ADDRSTRLEN);
}

static void
send_msg(uint32_t to, int len)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(WCCP_PORT),
                              .sin_addr.s_addr = htonl(to)};

    if (len > 0)
        (void)sendto(g.fd, g.buf, (size_t)len, 0, (struct sockaddr *)&sin, sizeof(sin));
}

static rsvc_t *
find_svc(const wccp_service_t *def, bool create)
{
    rsvc_t *free_slot = NULL;

    for (int i = 0; i < SVCS_MAX; i++) {
        rsvc_t *s = &g.svcs[i];
        if (s->used && s->def.type == def->type && s->def.id == def->id)
            return s;
        if (!s->used && free_slot == NULL)
            free_slot = s;
    }
    if (!create || free_slot == NULL)
        return NULL;
    memset(free_slot, 0, sizeof(*free_slot));
    free_slot->used = true;
    free_slot->def = *def;     /* the first cache defines the service */
    free_slot->form = -1;
    free_slot->member_change = 0;
    return free_slot;
}

static rsvc_t *
svc_by_id(int id)
{
    for (int i = 0; i < SVCS_MAX; i++)
        if (g.svcs[i].used && g.svcs[i].def.id == id)
            return &g.svcs[i];
    return NULL;
}

static rcache_t *
find_cache(rsvc_t *s, uint32_t ip)
{
    for (size_t i = 0; i < s->n_caches; i++)
        if (s->caches[i].ip == ip)
            return &s->caches[i];
    return NULL;
}

static void
remove_cache(rsvc_t *s, uint32_t ip, const char *why)
{
    char a[INET_ADDRSTRLEN];

    for (size_t i = 0; i < s->n_caches; i++) {
        if (s->caches[i].ip != ip)
            continue;
        s->caches[i] = s->caches[--s->n_caches];
        s->member_change++;
        g.removed++;
        for (int b = 0; b < WCCP_BUCKETS; b++)
            if (s->bucket[b] == ip)
                s->bucket[b] = 0;
        for (uint32_t v = 0; v < s->mask.n_values; v++)
            if (s->mask.values[v].cache_ip == ip)
                s->mask.values[v].cache_ip = 0;
        fprintf(stderr, "wccp-router: service %u: cache %s removed (%s)\n", s->def.id,
                ip_s(ip, a), why);
        return;
    }
}

static uint32_t
designated(const rsvc_t *s)
{
    uint32_t low = 0;

    for (size_t i = 0; i < s->n_caches; i++)
        if (low == 0 || s->caches[i].ip < low)
            low = s->caches[i].ip;
    return low;
}

static void
send_isy(rsvc_t *s, rcache_t *c)
{
    wccp_isy_t *m = &g.isy_m;

    memset(m, 0, sizeof(*m));
    m->password = g.md5 ? g.password : NULL;
    m->service = s->def;
    m->router = (wccp_router_id_t){g.self, ++c->receive_id};
    m->sent_to = c->ip;
    m->member_change = s->member_change;
    m->key = s->key;
    m->n_routers = 1;
    m->routers[0] = g.self;
    for (size_t i = 0; i < s->n_caches; i++) {
        wccp_cache_id_t *id = &m->caches[m->n_caches++];
        m->received_from[m->n_received_from++] = s->caches[i].ip;
        id->ip = s->caches[i].ip;
        id->weight = s->caches[i].weight;
        for (int b = 0; b < WCCP_BUCKETS; b++)
            if (s->form == WCCP_AF_HASH && s->bucket[b] == id->ip)
                id->buckets[b / 8] |= (uint8_t)(1u << (b % 8));
    }
    m->caps = g.caps;
    if (s->form == WCCP_AF_MASK)
        m->map = &s->mask;
    g.isy++;
    send_msg(c->ip, wccp_build_i_see_you(g.buf, sizeof(g.buf), m));
}

static void
reject(const char *why, uint32_t from)
{
    char a[INET_ADDRSTRLEN];

    g.ra_rejected++;
    snprintf(g.last_reject, sizeof(g.last_reject), "%s from %s", why, ip_s(from, a));
    fprintf(stderr, "wccp-router: Redirect_Assign refused: %s\n", g.last_reject);
}

static void
on_ra(rsvc_t *s, uint32_t src, const wccp_msg_t *m)
{
    const wccp_assignment_t *a = &m->assign;
    const wccp_router_assign_t *mine = NULL;
    rcache_t *c = find_cache(s, src);

    if (c == NULL || src != designated(s) || a->key.ip != src)
        return reject("not from the designated cache", src);
    for (uint32_t i = 0; i < a->n_routers; i++)
        if (a->routers[i].ip == g.self)
            mine = &a->routers[i];
    if (mine == NULL)
        return reject("no element for this router", src);
    if (mine->change_number != s->member_change)
        return reject("stale member change number", src);
    if (mine->receive_id != c->receive_id)
        return reject("stale receive id", src);
    if (a->form == WCCP_AF_HASH) {
        uint32_t bucket[WCCP_BUCKETS];
        for (uint32_t i = 0; i < a->n_caches; i++)
            if (find_cache(s, a->caches[i]) == NULL)
                return reject("a cache that is not in the view", src);
        for (int b = 0; b < WCCP_BUCKETS; b++)
            bucket[b] = a->buckets[b] == WCCP_BUCKET_NONE ? 0 : a->caches[a->buckets[b] & 0x7f];
        memcpy(s->bucket, bucket, sizeof(bucket));
        s->form = WCCP_AF_HASH;
    } else {
        for (uint32_t v = 0; v < a->mask.n_values; v++)
            if (find_cache(s, a->mask.values[v].cache_ip) == NULL)
                return reject("a mask value for a cache not in the view", src);
        s->mask = a->mask;
        s->form = WCCP_AF_MASK;
    }
    s->key = a->key;
    g.ra_accepted++;
}

static void
on_datagram(const uint8_t *p, size_t len, uint32_t src, int64_t now)
{
    wccp_msg_t *m = &g.msg;
    rsvc_t *s;
    rcache_t *c;
    int rc;

    g.in++;
    rc = wccp_parse(p, len, g.md5 ? g.password : NULL, m);
    if (rc != WCCP_OK) {
        if (rc == WCCP_E_SECURITY)
            g.security++;
        else
            g.bad++;
        return;
    }
    if (m->type == WCCP_HERE_I_AM) {
        g.hia++;
        if (m->cache.ip != src) {
            g.bad++;
            return;
        }
        s = find_svc(&m->service, m->cmd != WCCP_CMD_SHUTDOWN);
        if (s == NULL)
            return;
        if (memcmp(&s->def, &m->service, sizeof(s->def)) != 0) {
            g.bad++;   /* a different definition of the service */
            return;
        }
        if (m->cmd == WCCP_CMD_SHUTDOWN) {
            remove_cache(s, src, "shutdown command");
            return;
        }
        c = find_cache(s, src);
        if (c == NULL) {
            if (s->n_caches == WCCP_CACHES_MAX)
                return;
            c = &s->caches[s->n_caches++];
            memset(c, 0, sizeof(*c));
            c->ip = src;
            s->member_change++;
        }
        if (c->weight != m->cache.weight && c->last_hia != 0)
            s->member_change++;
        c->weight = m->cache.weight;
        c->last_hia = now;
        c->queried = false;
        send_isy(s, c);
    } else if (m->type == WCCP_REDIRECT_ASSIGN) {
        s = find_svc(&m->service, false);
        if (s != NULL)
            on_ra(s, src, m);
    } else {
        g.bad++;
    }
}

static void
timers(int64_t now)
{
    for (int i = 0; i < SVCS_MAX; i++) {
        rsvc_t *s = &g.svcs[i];
        if (!s->used)
            continue;
        for (size_t k = 0; k < s->n_caches; k++) {
            rcache_t *c = &s->caches[k];
            if (now - c->last_hia >= 3 * g.interval) {
                remove_cache(s, c->ip, "silent for 3 intervals");
                k--;
            } else if (now - c->last_hia >= g.interval * 5 / 2 && !c->queried) {
                wccp_rq_t q = {.password = g.md5 ? g.password : NULL, .service = s->def,
                               .router = {g.self, c->receive_id}, .sent_to = c->ip,
                               .target = c->ip};
                c->queried = true;
                g.rq++;
                send_msg(c->ip, wccp_build_removal_query(g.buf, sizeof(g.buf), &q));
            }
        }
    }
}

/* ---- the data plane ---- */

static void
count_forwarded(uint32_t ip)
{
    size_t i;

    for (i = 0; i < g.n_fwd && g.fwd[i].ip != ip; i++)
        ;
    if (i == g.n_fwd) {
        if (g.n_fwd == FWD_CACHES)
            return;
        g.fwd[g.n_fwd++] = (rfwd_t){ip, 0};
    }
    g.fwd[i].packets++;
}

/* The cache (host order) holding the bucket of dst (network order) in
 * service 0's hash assignment; 0 when none. */
static uint32_t
cache_for(uint32_t dst, uint8_t *bucket)
{
    rsvc_t *s = svc_by_id(0);

    *bucket = gre_wccp_bucket(dst);
    if (s == NULL || s->def.type != WCCP_SVC_STANDARD || s->form != WCCP_AF_HASH)
        return 0;
    return s->bucket[*bucket];
}

static void
forward(void)
{
    for (int i = 0; i < FWD_BATCH; i++) {
        ssize_t n = read(g.tun_fd, g.pkt, sizeof(g.pkt));
        gre_wccp_t w = {.has_redirect_hdr = true};
        uint32_t dst, cache;

        if (n < 0)
            return;
        if (!gre_fwd_dst(g.pkt, (size_t)n, &dst))
            continue;                   /* IPv6 and the like: not ours */
        cache = cache_for(dst, &w.primary_bucket);
        if (cache == 0) {
            g.not_redirected++;
            if (write(g.tun_fd, g.pkt, (size_t)n) != n)
                g.fwd_errors++;
        } else if (gre_fwd_send(g.gre_fd, htonl(cache), &w, g.pkt, (size_t)n) < 0) {
            g.fwd_errors++;
        } else {
            count_forwarded(cache);
        }
    }
}

/* ---- control ---- */

static void
answer(const char *req, char *out, size_t cap)
{
    char a[INET_ADDRSTRLEN];
    int id = 0;
    size_t off = 0;
    rsvc_t *s;

#define PUT(...) do { int k_ = snprintf(out + off, cap - off, __VA_ARGS__); \
                      if (k_ > 0 && (size_t)k_ < cap - off) off += (size_t)k_; } while (0)
    if (strncmp(req, "stats", 5) == 0) {
        PUT("in=%lu bad=%lu security=%lu hia=%lu isy=%lu ra_accepted=%lu ra_rejected=%lu "
            "rq=%lu removed=%lu last_reject=%s", g.in, g.bad, g.security, g.hia, g.isy,
            g.ra_accepted, g.ra_rejected, g.rq, g.removed, g.last_reject[0] ? g.last_reject : "-");
        return;
    }
    if (strncmp(req, "forwarded", 9) == 0) {
        for (size_t i = 0; i < g.n_fwd; i++)
            PUT("%s=%lu ", ip_s(g.fwd[i].ip, a), g.fwd[i].packets);
        PUT("not_redirected=%lu errors=%lu", g.not_redirected, g.fwd_errors);
        return;
    }
    const char *sp = strchr(req, ' ');
    if (sp != NULL)
        id = atoi(sp + 1);
    s = svc_by_id(id);
    if (strncmp(req, "view", 4) == 0) {
        PUT("member_change=%u caches=", s ? s->member_change : 0);
        for (size_t i = 0; s && i < s->n_caches; i++)
            PUT("%s%s", i ? "," : "", ip_s(s->caches[i].ip, a));
    } else if (strncmp(req, "buckets", 7) == 0) {
        for (int b = 0; b < WCCP_BUCKETS; b++)
            PUT("%s%s", b ? " " : "", s && s->form == WCCP_AF_HASH && s->bucket[b]
                                          ? ip_s(s->bucket[b], a) : "-");
    } else if (strncmp(req, "assignment", 10) == 0) {
        uint32_t ips[WCCP_CACHES_MAX + 1], counts[WCCP_CACHES_MAX + 1] = {0}, none = 0;
        size_t n = 0, total = 0;
        if (s == NULL || s->form < 0) {
            PUT("key=-/0 form=none none=256");
            return;
        }
        total = s->form == WCCP_AF_HASH ? WCCP_BUCKETS : s->mask.n_values;
        for (size_t i = 0; i < total; i++) {
            uint32_t ip = s->form == WCCP_AF_HASH ? s->bucket[i] : s->mask.values[i].cache_ip;
            size_t k;
            if (ip == 0) {
                none++;
                continue;
            }
            for (k = 0; k < n && ips[k] != ip; k++)
                ;
            if (k == n && n < WCCP_CACHES_MAX)
                ips[n++] = ip;
            if (k < n)
                counts[k]++;
        }
        for (size_t i = 1; i < n; i++)   /* address order */
            for (size_t k = i; k > 0 && ips[k - 1] > ips[k]; k--) {
                uint32_t t = ips[k]; ips[k] = ips[k - 1]; ips[k - 1] = t;
                t = counts[k]; counts[k] = counts[k - 1]; counts[k - 1] = t;
            }
        PUT("key=%s/%u form=%s", ip_s(s->key.ip, a), s->key.change_number,
            s->form == WCCP_AF_HASH ? "hash" : "mask");
        for (size_t i = 0; i < n; i++)
            PUT(" %s=%u", ip_s(ips[i], a), counts[i]);
        PUT(" none=%u", none);
    } else {
        PUT("error unknown request (assignment, buckets, view, stats, forwarded)");
    }
#undef PUT
}

static void
control(int lfd)
{
    char req[256], out[LINE_MAX_LEN];
    size_t len = 0;
    int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

    if (fd < 0)
        return;
    while (len + 1 < sizeof(req)) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        ssize_t n;
        if (poll(&p, 1, 1000) <= 0)
            break;
        n = read(fd, req + len, sizeof(req) - 1 - len);
        if (n <= 0)
            break;
        len += (size_t)n;
        if (memchr(req, '\n', len))
            break;
    }
    req[len] = '\0';
    req[strcspn(req, "\r\n")] = '\0';
    out[0] = '\0';
    answer(req, out, sizeof(out) - 1);
    strcat(out, "\n");
    if (write(fd, out, strlen(out)) < 0)
        perror("wccp-router: control");
    close(fd);
}

static int
usage(void)
{
    fprintf(stderr, "usage: wccp-router --address IP --control PATH [--interval-ms N] "
                    "[--password-file F] [--caps none|hash|mask|both] [--tun NAME]\n");
    return 2;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"address", required_argument, NULL, 'a'}, {"control", required_argument, NULL, 'c'},
        {"interval-ms", required_argument, NULL, 'i'},
        {"password-file", required_argument, NULL, 'p'}, {"caps", required_argument, NULL, 'C'},
        {"tun", required_argument, NULL, 't'}, {NULL, 0, NULL, 0},
    };
    const char *addr = NULL, *ctl = NULL, *tun = NULL;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(WCCP_PORT)};
    struct in_addr ia;
    int o, lfd;

    signal(SIGPIPE, SIG_IGN);
    g.interval = 10000;
    g.tun_fd = g.gre_fd = -1;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'a': addr = optarg; break;
        case 'c': ctl = optarg; break;
        case 't': tun = optarg; break;
        case 'i': g.interval = atoi(optarg); break;
        case 'p': {
            FILE *f = fopen(optarg, "r");
            char line[256] = "";
            if (f == NULL || fgets(line, sizeof(line), f) == NULL) {
                fprintf(stderr, "wccp-router: cannot read %s\n", optarg);
                return 1;
            }
            fclose(f);
            line[strcspn(line, "\r\n")] = '\0';
            memcpy(g.password, line, strnlen(line, WCCP_PASSWORD_LEN));
            g.md5 = true;
            break;
        }
        case 'C':
            if (strcmp(optarg, "none") == 0)
                break;
            g.caps = (wccp_caps_t){true, WCCP_FWD_GRE, 0, WCCP_RET_GRE};
            if (strcmp(optarg, "hash") == 0 || strcmp(optarg, "both") == 0)
                g.caps.assign |= WCCP_ASSIGN_HASH;
            if (strcmp(optarg, "mask") == 0 || strcmp(optarg, "both") == 0)
                g.caps.assign |= WCCP_ASSIGN_MASK;
            if (g.caps.assign == 0)
                return usage();
            break;
        default:
            return usage();
        }
    }
    if (addr == NULL || ctl == NULL || inet_pton(AF_INET, addr, &ia) != 1 || g.interval < 10 ||
        strlen(ctl) >= sizeof(sun.sun_path))
        return usage();
    g.self = ntohl(ia.s_addr);
    sin.sin_addr = ia;
    g.fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (g.fd < 0 || bind(g.fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        fprintf(stderr, "wccp-router: bind %s:%d: %s\n", addr, WCCP_PORT, strerror(errno));
        return 1;
    }
    if (tun != NULL) {
        g.tun_fd = gre_fwd_tun(tun, true, "wccp-router");
        g.gre_fd = g.tun_fd < 0 ? -1 : gre_fwd_socket(ia.s_addr, "wccp-router");
        if (g.gre_fd < 0)
            return 1;
        fprintf(stderr, "wccp-router: forwarding from %s by service 0's buckets\n", tun);
    }
    strcpy(sun.sun_path, ctl);
    unlink(ctl);
    lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sun, sizeof(sun)) < 0 || listen(lfd, 16) < 0) {
        fprintf(stderr, "wccp-router: control %s: %s\n", ctl, strerror(errno));
        return 1;
    }
    fprintf(stderr, "wccp-router: %s:%d, interval %lld ms%s\n", addr, WCCP_PORT,
            (long long)g.interval, g.md5 ? ", MD5" : "");
    for (;;) {
        struct pollfd p[3] = {{.fd = g.fd, .events = POLLIN}, {.fd = lfd, .events = POLLIN},
                              {.fd = g.tun_fd, .events = POLLIN}};
        static uint8_t dgram[WCCP_MSG_MAX + 1];
        if (poll(p, g.tun_fd < 0 ? 2 : 3, TICK_MS) < 0 && errno != EINTR)
            return 1;
        if (p[0].revents & POLLIN) {
            for (;;) {
                struct sockaddr_in from;
                socklen_t fl = sizeof(from);
                ssize_t n = recvfrom(g.fd, dgram, sizeof(dgram), 0, (struct sockaddr *)&from, &fl);
                if (n < 0)
                    break;
                on_datagram(dgram, (size_t)n, ntohl(from.sin_addr.s_addr), now_ms());
            }
        }
        if (p[1].revents & POLLIN)
            control(lfd);
        if (g.tun_fd >= 0 && (p[2].revents & POLLIN))
            forward();
        timers(now_ms());
    }
}
