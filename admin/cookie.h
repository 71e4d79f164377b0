/*
 * admin/cookie.h: the values of one cookie in a Cookie request header
 * (RFC 6265 section 4.2: "name=value; name2=value2"). A browser may send a
 * name more than once (cookies of other paths), so every value is given,
 * in order; the caller tries each. Pure: no allocation, no I/O, the values
 * point into the header; fuzzed by tests/fuzz/fuzz_admin_cookie.c. It does
 * not write Set-Cookie (admin/login.c does) or know what a value means.
 */
#ifndef MUS_ADMIN_COOKIE_H
#define MUS_ADMIN_COOKIE_H

#include <stddef.h>

#define COOKIE_HEADER_MAX  8192   /* a longer Cookie header is not read at all */
#define COOKIE_VALUES_MAX  4      /* values of one name looked at */

typedef struct cookie_value {
    const char *p;                /* into the header; not NUL-terminated */
    size_t len;
} cookie_value_t;

/* The values of the cookies called name (exact, case-sensitive) in header
 * (NUL-terminated; NULL = none), at most max of them into out: how many.
 * A value in double quotes is given without them. A pair without '=', or
 * whose name or value has a byte RFC 6265 does not allow (controls, space
 * inside, '"', ',', ';', '\\', bytes over 0x7e), is skipped; blanks around a
 * pair are not part of it. */
size_t cookie_values(const char *header, const char *name, cookie_value_t *out, size_t max);

#endif
