/*
 * common/cidr.c: parsing, matching and formatting of address prefixes
 * (see cidr.h).
 */
#include "cidr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int
cidr_parse(const char *text, cidr_t *out)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    unsigned maxlen;
    unsigned long plen;

    if (alen == 0 || alen >= sizeof(addr))
        return -1;
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, addr, out->addr) == 1) {
        out->family = AF_INET;
        maxlen = 32;
    } else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
        out->family = AF_INET6;
        maxlen = 128;
    } else {
        return -1;
    }
    if (slash) {
        char *end;
        const char *p = slash + 1;
        if (*p < '0' || *p > '9' || strlen(p) > 3)
            return -1;
        plen = strtoul(p, &end, 10);
        if (*end != '\0' || plen > maxlen)
            return -1;
    } else {
        plen = maxlen;
    }
    out->prefix = (uint8_t)plen;
    for (unsigned bit = (unsigned)plen; bit < maxlen; bit++)
        out->addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
    return 0;
}

static bool
prefix_equal(const uint8_t *a, const uint8_t *b, unsigned bits)
{
    unsigned bytes = bits / 8, rest = bits % 8;

    if (memcmp(a, b, bytes) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xffu << (8 - rest));
    return (a[bytes] & mask) == (b[bytes] & mask);
}

bool
cidr_match(const cidr_t *c, const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        if (c->family != AF_INET)
            return false;
        return prefix_equal((const uint8_t *)&sin->sin_addr, c->addr, c->prefix);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *a = sin6->sin6_addr.s6_addr;
        if (c->family == AF_INET6)
            return prefix_equal(a, c->addr, c->prefix);
        if (memcmp(a, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0)
            return prefix_equal(a + 12, c->addr, c->prefix);
    }
    return false;
}

bool
cidr_list_match(const cidr_t *list, size_t n, const struct sockaddr *sa)
{
    for (size_t i = 0; i < n; i++)
        if (cidr_match(&list[i], sa))
            return true;
    return false;
}

void
cidr_format(const cidr_t *c, char *buf, size_t len)
{
    char a[INET6_ADDRSTRLEN];

    if (inet_ntop(c->family, c->addr, a, sizeof(a)) == NULL)
        snprintf(a, sizeof(a), "?");   /* not a parsed prefix (family 0) */
    snprintf(buf, len, "%s/%u", a, c->prefix);
}

/* Dotted quad, as inet_ntop writes it (it formats through sprintf, which
 * costs a request's worth of parsing: this runs on every transaction). */
static void
format_v4(const uint8_t b[4], char *buf, size_t len)
{
    char tmp[INET_ADDRSTRLEN];
    size_t n = 0;

    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100)
            tmp[n++] = (char)('0' + v / 100);
        if (v >= 10)
            tmp[n++] = (char)('0' + v / 10 % 10);
        tmp[n++] = (char)('0' + v % 10);
        if (i < 3)
            tmp[n++] = '.';
    }
    if (n >= len)
        return;   /* too small: left empty, as when inet_ntop fails */
    memcpy(buf, tmp, n);
    buf[n] = '\0';
}

void
cidr_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    if (len == 0)
        return;
    buf[0] = '\0';   /* left empty if inet_ntop fails (buf too small) */
    if (sa->sa_family == AF_INET) {
        format_v4((const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr, buf, len);
    } else if (sa->sa_family == AF_INET6) {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v4mapped_prefix, sizeof(v4mapped_prefix)) == 0)
            format_v4(a + 12, buf, len);
        else
            inet_ntop(AF_INET6, a, buf, (socklen_t)len);
    } else {
        snprintf(buf, len, "-");
    }
}
