/*
 * tests/unit/admin/test_cookie.c: the Cookie header parser (admin/cookie.c):
 * the values of one name among others, quoted values, every value of a name
 * sent twice, and the pairs that are skipped.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <string.h>

#include "../../../admin/cookie.h"

static cookie_value_t v[COOKIE_VALUES_MAX];

static bool
value_is(size_t i, const char *want)
{
    return v[i].len == strlen(want) && memcmp(v[i].p, want, v[i].len) == 0;
}

Test(cookie, finds_the_name_among_others)
{
    const char *h = "theme=dark; musproxy_session=0a1b; other=x=y";

    cr_assert_eq(cookie_values(h, "musproxy_session", v, COOKIE_VALUES_MAX), 1);
    cr_expect(value_is(0, "0a1b"));
    cr_expect(v[0].p > h && v[0].p < h + strlen(h), "a pointer into the header");
    cr_assert_eq(cookie_values(h, "other", v, COOKIE_VALUES_MAX), 1);
    cr_expect(value_is(0, "x=y"), "only the first '=' splits");
    cr_expect_eq(cookie_values(h, "musproxy", v, COOKIE_VALUES_MAX), 0, "a prefix is no name");
    cr_expect_eq(cookie_values(h, "MUSPROXY_SESSION", v, COOKIE_VALUES_MAX), 0);
    cr_expect_eq(cookie_values(NULL, "a", v, COOKIE_VALUES_MAX), 0);
    cr_expect_eq(cookie_values(h, "", v, COOKIE_VALUES_MAX), 0);
}

Test(cookie, blanks_quotes_and_repeats)
{
    cr_assert_eq(cookie_values("  a=1 ;\ta=\"2\";a=;a=4;a=5", "a", v, COOKIE_VALUES_MAX), 4);
    cr_expect(value_is(0, "1"));
    cr_expect(value_is(1, "2"), "quotes are not part of the value");
    cr_expect(value_is(2, ""));
    cr_expect(value_is(3, "4"), "at most COOKIE_VALUES_MAX values");
    cr_assert_eq(cookie_values("a=1;a=2", "a", v, 1), 1);
    cr_expect(value_is(0, "1"));
}

Test(cookie, malformed_pairs_are_skipped)
{
    static const char *const bad[] = {
        "a", "=1", "a =1", "a=1 2", "a=\"1", "a=1,2", "a=\\1", "a=\x01", "a=\xc3\xa9",
        "a(=1", "a=\"1\"\"",
    };
    char h[64];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(h, sizeof(h), "%s; a=ok", bad[i]);
        cr_assert_eq(cookie_values(h, "a", v, COOKIE_VALUES_MAX), 1, "%s", bad[i]);
        cr_expect(value_is(0, "ok"), "%s", bad[i]);
    }
    /* a header too long is not read */
    {
        static char big[COOKIE_HEADER_MAX + 8];
        memset(big, 'x', sizeof(big) - 1);
        memcpy(big, "a=1;", 4);
        cr_expect_eq(cookie_values(big, "a", v, COOKIE_VALUES_MAX), 0);
    }
}
