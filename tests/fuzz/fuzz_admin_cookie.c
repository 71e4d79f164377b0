/*
 * tests/fuzz/fuzz_admin_cookie.c: libFuzzer target for the admin UI's
 * Cookie header parser (admin/cookie.c). The input's first byte picks the
 * name looked for (the session's, the login token's, or a one-letter one),
 * the rest is the header. Any input is read without a crash or over-read;
 * every value returned points into the header, is made of RFC 6265 cookie
 * octets only and follows "NAME=" (or "NAME=\"") in it; at most the number
 * asked for come back, in order.
 * Seed corpus: tests/fuzz/corpus/admin_cookie/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../admin/cookie.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char header[COOKIE_HEADER_MAX + 2];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"musproxy_session", "musproxy_login", "a"};
    cookie_value_t v[COOKIE_VALUES_MAX];
    const char *name, *prev = NULL;
    size_t n, max, nlen;

    if (size < 1 || size - 1 > COOKIE_HEADER_MAX + 1)
        return 0;
    name = names[data[0] % 3];
    max = 1 + (data[0] >> 4) % COOKIE_VALUES_MAX;
    nlen = strlen(name);
    memcpy(header, data + 1, size - 1);
    header[size - 1] = '\0';
    n = cookie_values(header, name, v, max);
    if (n > max)
        abort();
    for (size_t i = 0; i < n; i++) {
        const char *p = v[i].p;
        size_t off;
        if (p < header || p + v[i].len > header + strlen(header) || p <= prev)
            abort();
        prev = p;
        for (size_t k = 0; k < v[i].len; k++) {
            unsigned char c = (unsigned char)p[k];
            if (c < 0x21 || c > 0x7e || c == '"' || c == ',' || c == ';' || c == '\\')
                abort();
        }
        off = (size_t)(p - header);
        if (off >= 1 && header[off - 1] == '"')
            off--;
        if (off < nlen + 1 || header[off - 1] != '=' ||
            memcmp(header + off - 1 - nlen, name, nlen) != 0)
            abort();
    }
    return 0;
}
