/*
 * admin/cookie.c: the Cookie header's pairs (see cookie.h). One pass: split
 * at ';', trim blanks, split at the first '=', check the name as an RFC
 * 7230 token and the value as RFC 6265 cookie-octets (optionally quoted),
 * keep the values of the name asked for.
 */
#include "cookie.h"

#include <stdbool.h>
#include <string.h>

/* tchar of RFC 7230: what a cookie name is made of. */
static bool
token_char(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* cookie-octet of RFC 6265: US-ASCII but controls, space, '"', ',', ';', '\'. */
static bool
value_char(unsigned char c)
{
    return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
           (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

size_t
cookie_values(const char *header, const char *name, cookie_value_t *out, size_t max)
{
    size_t n = 0, nlen = name ? strlen(name) : 0, hlen;
    const char *p, *end;

    if (header == NULL || nlen == 0 || (hlen = strlen(header)) > COOKIE_HEADER_MAX)
        return 0;
    p = header;
    end = header + hlen;
    while (p < end && n < max) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *a = p, *b = semi ? semi : end, *eq, *v;
        size_t vlen;
        bool ok = true;

        p = semi ? semi + 1 : end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        eq = memchr(a, '=', (size_t)(b - a));
        if (eq == NULL || eq == a)
            continue;
        for (const char *k = a; k < eq && ok; k++)
            ok = token_char((unsigned char)*k);
        if (!ok || (size_t)(eq - a) != nlen || memcmp(a, name, nlen) != 0)
            continue;
        v = eq + 1;
        vlen = (size_t)(b - v);
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
            v++;
            vlen -= 2;
        }
        for (size_t k = 0; k < vlen && ok; k++)
            ok = value_char((unsigned char)v[k]);
        if (!ok)
            continue;
        out[n].p = v;
        out[n].len = vlen;
        n++;
    }
    return n;
}
