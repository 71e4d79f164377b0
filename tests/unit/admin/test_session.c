/*
 * tests/unit/admin/test_session.c: the admin UI's session table
 * (admin/session.c) on its own: ids and tokens as they are handed out, the
 * idle and absolute expiry, the eviction of the oldest login when the table
 * is full, logout and the end of a user's sessions. That ids and tokens are
 * compared in constant time is checked by counting: this file defines
 * CRYPTO_memcmp (a constant-time one), which the executable's own
 * session.c calls instead of libcrypto's, and a lookup must compare with
 * every slot whatever matches.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "../../../admin/session.h"

static size_t memcmp_calls;

int CRYPTO_memcmp(const void *in_a, const void *in_b, size_t len);

int
CRYPTO_memcmp(const void *in_a, const void *in_b, size_t len)
{
    const volatile unsigned char *a = in_a, *b = in_b;
    unsigned char x = 0;

    memcmp_calls++;
    for (size_t i = 0; i < len; i++)
        x |= a[i] ^ b[i];
    return x;
}

static bool
is_token(const char *s)
{
    if (strlen(s) != SESSION_TOKEN_LEN)
        return false;
    for (; *s; s++)
        if (!isdigit((unsigned char)*s) && !(*s >= 'a' && *s <= 'f'))
            return false;
    return true;
}

static const session_t *
find(session_table_t *t, const char *id, int64_t now)
{
    return session_find(t, id, strlen(id), now);
}

Test(session, ids_tokens_and_lookup)
{
    session_table_t *t = session_table_new(60000, 3600000);
    char a[SESSION_TOKEN_LEN + 1], b[SESSION_TOKEN_LEN + 1], bad[SESSION_TOKEN_LEN + 1];
    const session_t *s;

    cr_assert_not_null(t);
    cr_assert_eq(session_create(t, "admin", 1000, a), 0);
    cr_assert_eq(session_create(t, "viewer", 1000, b), 0);
    cr_expect_eq(session_count(t), 2);
    cr_expect(is_token(a), "%s", a);
    cr_expect_str_neq(a, b);
    s = find(t, a, 2000);
    cr_assert_not_null(s);
    cr_expect_str_eq(s->user, "admin");
    cr_expect(is_token(s->csrf), "%s", s->csrf);
    cr_expect_str_neq(s->csrf, a, "the CSRF token is not the id");
    cr_expect(session_csrf_ok(s, s->csrf));
    {
        char tok[SESSION_TOKEN_LEN + 1];
        memcpy(tok, s->csrf, sizeof(tok));
        tok[SESSION_TOKEN_LEN - 1] = tok[SESSION_TOKEN_LEN - 1] == '0' ? '1' : '0';
        cr_expect_not(session_csrf_ok(s, tok));
        tok[SESSION_TOKEN_LEN - 1] = '\0';
        cr_expect_not(session_csrf_ok(s, tok), "a token cut short");
    }
    cr_expect_not(session_csrf_ok(s, NULL));
    cr_expect_not(session_csrf_ok(s, ""));
    cr_expect_str_eq(find(t, b, 2000)->user, "viewer");
    /* one digit off anywhere, cut short, too long, not hex: no session */
    for (size_t i = 0; i < SESSION_TOKEN_LEN; i += 21) {
        memcpy(bad, a, sizeof(bad));
        bad[i] = bad[i] == 'f' ? 'e' : 'f';
        cr_expect_null(find(t, bad, 2000), "digit %zu changed", i);
    }
    cr_expect_null(session_find(t, a, SESSION_TOKEN_LEN - 1, 2000));
    cr_expect_null(find(t, "", 2000));
    memcpy(bad, a, sizeof(bad));
    bad[5] = 'g';
    cr_expect_null(find(t, bad, 2000));
    {
        char longer[SESSION_TOKEN_LEN + 3];
        snprintf(longer, sizeof(longer), "%s00", a);
        cr_expect_null(find(t, longer, 2000));
    }
    cr_expect_not_null(find(t, a, 2000), "failed lookups end nothing");
    cr_expect_eq(session_count(t), 2);
    session_table_free(t);
    session_table_free(NULL);
}

Test(session, compared_in_constant_time)
{
    session_table_t *t = session_table_new(60000, 3600000);
    char ids[3][SESSION_TOKEN_LEN + 1], bad[SESSION_TOKEN_LEN + 1];
    const session_t *s;

    for (int i = 0; i < 3; i++)
        cr_assert_eq(session_create(t, "u", 0, ids[i]), 0);
    /* the first, the last and no session: each lookup compares with every slot */
    for (int i = 0; i < 3; i += 2) {
        memcmp_calls = 0;
        cr_assert_not_null(find(t, ids[i], 1));
        cr_expect_eq(memcmp_calls, SESSION_MAX, "id %d: %zu comparisons", i, memcmp_calls);
    }
    memcpy(bad, ids[1], sizeof(bad));
    bad[0] = bad[0] == '0' ? '1' : '0';
    memcmp_calls = 0;
    cr_expect_null(find(t, bad, 1));
    cr_expect_eq(memcmp_calls, SESSION_MAX);
    /* the logout's lookup too */
    memcmp_calls = 0;
    cr_expect(session_end(t, ids[1], SESSION_TOKEN_LEN));
    cr_expect_eq(memcmp_calls, SESSION_MAX);
    /* and the CSRF token */
    s = find(t, ids[0], 2);
    memcmp_calls = 0;
    cr_expect(session_csrf_ok(s, s->csrf));
    cr_expect_eq(memcmp_calls, 1);
    session_table_free(t);
}

Test(session, idle_and_absolute_expiry)
{
    session_table_t *t = session_table_new(1000, 5000);
    char a[SESSION_TOKEN_LEN + 1], b[SESSION_TOKEN_LEN + 1];

    cr_assert_eq(session_create(t, "admin", 0, a), 0);
    cr_assert_eq(session_create(t, "idle", 0, b), 0);
    /* requests every 900 ms keep a alive; b, left alone, ends at 1000 ms */
    cr_expect_not_null(find(t, a, 900));
    cr_expect_not_null(find(t, b, 999));
    cr_expect_not_null(find(t, a, 1800));
    cr_expect_null(find(t, b, 1999), "idle for 1000 ms");
    cr_expect_eq(session_count(t), 1, "an expired session found is ended");
    cr_expect_null(find(t, b, 2000));
    cr_expect_not_null(find(t, a, 2700));
    cr_expect_not_null(find(t, a, 3600));
    cr_expect_not_null(find(t, a, 4500));
    cr_expect_not_null(find(t, a, 4999));
    cr_expect_null(find(t, a, 5000), "5000 ms after the login, however busy");
    cr_expect_eq(session_count(t), 0);
    session_table_free(t);
}

Test(session, a_full_table_ends_the_oldest)
{
    session_table_t *t = session_table_new(3600000, 3600000);
    static char ids[SESSION_MAX + 1][SESSION_TOKEN_LEN + 1];
    char user[32];

    for (int i = 0; i < SESSION_MAX; i++) {
        snprintf(user, sizeof(user), "u%d", i);
        cr_assert_eq(session_create(t, user, 1000 + i, ids[i]), 0);
    }
    cr_expect_eq(session_count(t), SESSION_MAX);
    /* the oldest was used a moment ago: still the first to go */
    cr_expect_not_null(find(t, ids[0], 5000));
    cr_assert_eq(session_create(t, "new", 6000, ids[SESSION_MAX]), 0);
    cr_expect_eq(session_count(t), SESSION_MAX);
    cr_expect_null(find(t, ids[0], 6001), "the oldest login was ended");
    cr_expect_str_eq(find(t, ids[1], 6001)->user, "u1");
    cr_expect_str_eq(find(t, ids[SESSION_MAX], 6001)->user, "new");
    /* an expired slot is reused before anyone is evicted */
    session_table_free(t);
    t = session_table_new(1000, 3600000);
    for (int i = 0; i < SESSION_MAX; i++)
        cr_assert_eq(session_create(t, "x", i == 5 ? 0 : 2000, ids[i]), 0);
    cr_assert_eq(session_create(t, "y", 2500, ids[SESSION_MAX]), 0);
    cr_expect_not_null(find(t, ids[0], 2600), "nobody live was evicted");
    cr_expect_null(find(t, ids[5], 2600));
    session_table_free(t);
}

Test(session, logout_and_a_users_sessions)
{
    session_table_t *t = session_table_new(60000, 60000);
    char a1[SESSION_TOKEN_LEN + 1], a2[SESSION_TOKEN_LEN + 1], v[SESSION_TOKEN_LEN + 1];

    cr_assert_eq(session_create(t, "admin", 0, a1), 0);
    cr_assert_eq(session_create(t, "admin", 0, a2), 0);
    cr_assert_eq(session_create(t, "viewer", 0, v), 0);
    cr_expect(session_end(t, a1, SESSION_TOKEN_LEN));
    cr_expect_not(session_end(t, a1, SESSION_TOKEN_LEN), "ended once");
    cr_expect_null(find(t, a1, 1));
    cr_expect_not_null(find(t, a2, 1));
    cr_assert_eq(session_create(t, "admin", 2, a1), 0);
    cr_expect_eq(session_end_user(t, "admin"), 2);
    cr_expect_null(find(t, a1, 3));
    cr_expect_null(find(t, a2, 3));
    cr_expect_not_null(find(t, v, 3));
    cr_expect_eq(session_end_user(t, "nobody"), 0);
    cr_expect_eq(session_count(t), 1);
    /* a name that does not fit is refused */
    {
        char longname[SESSION_USER_MAX + 1];
        memset(longname, 'a', SESSION_USER_MAX);
        longname[SESSION_USER_MAX] = '\0';
        cr_expect_eq(session_create(t, longname, 4, a1), -1);
        cr_expect_eq(session_count(t), 1);
    }
    session_table_free(t);
}
