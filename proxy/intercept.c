/*
 * proxy/intercept.c: original destinations, TPROXY socket options, the
 * Host-against-destination check and the bypass list (see intercept.h).
 */
#include "intercept.h"

#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>

#include "../common/cidr.h"
#include "sni.h"

int
intercept_listener_opts(int fd, const config_listen_t *l)
{
    int one = 1;

    if (!l->tproxy)
        return 0;
    if (l->addr.ss_family == AF_INET6)
        return setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
    return setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
}

int
intercept_original_dst(int fd, struct sockaddr_storage *out, socklen_t *len)
{
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);

    if (getsockname(fd, (struct sockaddr *)&local, &llen) < 0)
        return -1;
    memset(out, 0, sizeof(*out));
    *len = sizeof(*out);
    if (local.ss_family == AF_INET6) {
        const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)&local;
        /* an IPv4 client on a dual-stack socket has IPv4 conntrack */
        if (!IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr) &&
            getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, out, len) == 0)
            return 0;
    } else if (getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, out, len) == 0) {
        return 0;
    }
    /* no NAT entry: TPROXY (the local address is the destination) or direct */
    memcpy(out, &local, llen);
    *len = llen;
    return 0;
}

int
intercept_spoof_source(int fd, const struct sockaddr *client, socklen_t len)
{
    struct sockaddr_storage src;
    int one = 1;

    if (len > sizeof(src)) {
        errno = EINVAL;
        return -1;
    }
    memcpy(&src, client, len);
    if (src.ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)&src)->sin6_port = 0;
        if (setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one)) < 0)
            return -1;
    } else {
        ((struct sockaddr_in *)&src)->sin_port = 0;
        if (setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one)) < 0)
            return -1;
    }
    /* the port comes from connect(): several connections from one client */
    setsockopt(fd, SOL_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    return bind(fd, (struct sockaddr *)&src, len);
}

/* The address bytes of sa (4 or 16), IPv4-mapped IPv6 reduced to IPv4. */
static const unsigned char *
addr_bytes(const struct sockaddr *sa, size_t *n)
{
    if (sa->sa_family == AF_INET) {
        *n = 4;
        return (const unsigned char *)&((const struct sockaddr_in *)sa)->sin_addr;
    }
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED(a)) {
            *n = 4;
            return a->s6_addr + 12;
        }
        *n = 16;
        return a->s6_addr;
    }
    *n = 0;
    return NULL;
}

bool
intercept_same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
    size_t na, nb;
    const unsigned char *pa = addr_bytes(a, &na), *pb = addr_bytes(b, &nb);

    return pa != NULL && pb != NULL && na == nb && memcmp(pa, pb, na) == 0;
}

bool
intercept_in_answer(const dns_result_t *res, const struct sockaddr *dst)
{
    for (size_t i = 0; i < res->n; i++)
        if (intercept_same_addr((const struct sockaddr *)&res->addr[i], dst))
            return true;
    return false;
}

/* True if host is domain or a name below it (case-insensitive). */
static bool
under_domain(const char *host, size_t host_len, const char *domain)
{
    size_t dn = strlen(domain);

    while (host_len > 0 && host[host_len - 1] == '.')
        host_len--;
    if (host_len < dn || strncasecmp(host + host_len - dn, domain, dn) != 0)
        return false;
    return host_len == dn || host[host_len - dn - 1] == '.';
}

bool
intercept_bypassed(const config_transparent_t *t, const char *host, size_t host_len,
                   const struct sockaddr *dst)
{
    if (dst != NULL && cidr_list_match(t->bypass_cidrs, t->n_bypass_cidrs, dst))
        return true;
    if (host == NULL || host_len == 0)
        return false;
    for (size_t i = 0; i < t->n_bypass_domains; i++)
        if (under_domain(host, host_len, t->bypass_domains[i]))
            return true;
    return false;
}

size_t
intercept_tls_alert(char *out, int status)
{
    uint8_t a[INTERCEPT_ALERT_LEN];
    uint8_t desc = status == 403 ? 49 : status == 400 ? 50 : 80;
    size_t n = sni_alert(a, desc, 0x0301);  /* TLS 1.0 records: what any peer reads first */

    memcpy(out, a, n);
    return n;
}
