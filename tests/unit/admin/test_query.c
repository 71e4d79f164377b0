/*
 * tests/unit/admin/test_query.c: the admin UI's parameter parser
 * (admin/query.c): decoding, the strictness rules with their messages, and
 * the typed view each page reads.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "../../../admin/query.h"

static query_t q;
static char err[QUERY_ERR_MAX];

static int
parse(const char *s)
{
    err[0] = '\0';
    return query_parse(s, strlen(s), &q, err, sizeof(err));
}

static int
view(const char *s, query_view_t *v)
{
    if (parse(s) < 0)
        return -1;
    return query_view(&q, v, err, sizeof(err));
}

Test(query, decodes_pairs)
{
    cr_assert_eq(parse("?ip=127.0.0.1&url=http%3A%2F%2Fa.example%2Fx+y%3Fq%3D1&&method=GET"), 0,
                 "%s", err);
    cr_assert_eq(q.n, 3);
    cr_expect_str_eq(query_get(&q, "ip"), "127.0.0.1");
    cr_expect_str_eq(query_get(&q, "url"), "http://a.example/x y?q=1");
    cr_expect_eq(q.p[1].value_len, strlen("http://a.example/x y?q=1"));
    cr_expect_str_eq(query_get(&q, "method"), "GET");
    cr_expect_null(query_get(&q, "user"));
    cr_assert_eq(parse("user"), 0);
    cr_expect_str_eq(query_get(&q, "user"), "");
    cr_assert_eq(parse("%75ser=%e2%82%AC"), 0, "%s", err);      /* an escaped key, UTF-8 */
    cr_expect_str_eq(query_get(&q, "user"), "\xe2\x82\xac");
    cr_assert_eq(parse(""), 0);
    cr_expect_eq(q.n, 0);
    /* not NUL-terminated: only len bytes are read */
    cr_assert_eq(query_parse("range=7dXXXX", 8, &q, err, sizeof(err)), 0);
    cr_expect_str_eq(query_get(&q, "range"), "7d");
}

Test(query, refuses_with_a_reason)
{
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"evil=1", "unknown parameter 'evil'"},
        {"<b>=1", "unknown parameter '?b?'"},
        {"=1", "unknown parameter ''"},
        {"range=1&range=2", "parameter 'range' given twice"},
        {"user=%4", "bad %-escape in parameter 'user'"},
        {"user=%zz", "bad %-escape in parameter 'user'"},
        {"us%er=1", "bad %-escape in a parameter name"},
        {"user=a%00b", "parameter 'user' is not UTF-8 text without control characters"},
        {"user=%0d%0aX", "parameter 'user' is not UTF-8 text without control characters"},
        {"user=\xff", "parameter 'user' is not UTF-8 text without control characters"},
        {"url=%C0%AF", "parameter 'url' is not UTF-8 text without control characters"},
        {"url=%ED%A0%80", "parameter 'url' is not UTF-8 text without control characters"},
        {"url=%E2%82", "parameter 'url' is not UTF-8 text without control characters"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(parse(bad[i].in), -1, "%s", bad[i].in);
        cr_expect_str_eq(err, bad[i].msg, "%s", bad[i].in);
    }
    static char big[QUERY_INPUT_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    memcpy(big, "url=", 4);
    cr_expect_eq(parse(big), -1);
    cr_expect_str_eq(err, "parameters too long (at most 16384 bytes)");
}

Test(query, view_defaults_and_values)
{
    query_view_t v;

    cr_assert_eq(view("", &v), 0, "%s", err);
    cr_expect_eq(v.range, QUERY_RANGE_24H);
    cr_expect_eq(v.loc, QUERY_LOC_ALL);
    cr_expect_eq(v.page, 1);
    cr_expect_null(v.user);
    cr_assert_eq(view("range=30d&loc=remote&user=alice&host=a.example&decision=block"
                      "&category=arts&client=10.0.0.1&page=20000&user=x", &v), -1);
    cr_assert_eq(view("range=30d&loc=remote&user=alice&host=a.example&decision=block"
                      "&category=arts&client=10.0.0.1&page=20000", &v), 0, "%s", err);
    cr_expect_eq(v.range, QUERY_RANGE_30D);
    cr_expect_eq(v.loc, QUERY_LOC_REMOTE);
    cr_expect_str_eq(v.user, "alice");
    cr_expect_str_eq(v.host, "a.example");
    cr_expect_str_eq(v.decision, "block");
    cr_expect_str_eq(v.category, "arts");
    cr_expect_str_eq(v.client, "10.0.0.1");
    cr_expect_eq(v.page, 20000);
    cr_assert_eq(view("name=bob&range=today&loc=local&user=", &v), 0, "%s", err);
    cr_expect_str_eq(v.user, "bob");
    cr_expect_eq(v.range, QUERY_RANGE_TODAY);
    cr_expect_eq(v.loc, QUERY_LOC_LOCAL);
    cr_assert_eq(view("ip=%3A%3A1&url=http%3A%2F%2Fx%2F&method=POST", &v), 0, "%s", err);
    cr_expect_str_eq(v.ip, "::1");
    cr_expect_str_eq(v.method, "POST");
    cr_expect_str_eq(query_range_str(QUERY_RANGE_7D), "7d");
    cr_expect_str_eq(query_loc_str(QUERY_LOC_LOCAL), "local");
}

Test(query, view_refuses_with_a_reason)
{
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"range=1h", "range must be today, 24h, 7d or 30d"},
        {"loc=vpn", "loc must be all, remote or local"},
        {"page=0", "page must be a number from 1 to 20000"},
        {"page=20001", "page must be a number from 1 to 20000"},
        {"page=-1", "page must be a number from 1 to 20000"},
        {"page=99999999999999999999", "page must be a number from 1 to 20000"},
        {"client=host.example", "client must be a numeric IPv4 or IPv6 address"},
        {"ip=1.2.3", "ip must be a numeric IPv4 or IPv6 address"},
        {"decision=maybe", "decision must be allow, monitor, block, auth, refuse_unidentified or none"},
        {"method=get", "method must be 1-20 upper-case letters"},
        {"user=a&name=b", "user and name differ"},
    };
    query_view_t v;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_expect_eq(view(bad[i].in, &v), -1, "%s", bad[i].in);
        cr_expect_str_eq(err, bad[i].msg, "%s", bad[i].in);
    }
    static char name[400];
    memset(name, 'a', sizeof(name) - 1);
    memcpy(name, "host=", 5);
    cr_expect_eq(view(name, &v), -1);
    cr_expect_str_eq(err, "host is longer than 255 bytes");
}

/* A posted form may carry the CSRF token and a password; a link may not. */
Test(query, form_only_fields)
{
    static const char body[] = "user=admin&password=p%26ss+w&csrf=00ff";
    const char *v;

    cr_expect_lt(parse("csrf=00ff"), 0);
    cr_expect_str_eq(err, "unknown parameter 'csrf'");
    cr_expect_lt(parse("password=x"), 0);
    cr_expect_str_eq(err, "unknown parameter 'password'");
    cr_assert_eq(query_parse_form(body, strlen(body), &q, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(q.n, 3);
    cr_expect_str_eq(query_get(&q, "password"), "p&ss w");
    /* taken out: the rest is what query_view sees */
    v = query_take(&q, "csrf");
    cr_assert_not_null(v);
    cr_expect_str_eq(v, "00ff");
    cr_expect_eq(q.n, 2);
    cr_expect_null(query_get(&q, "csrf"));
    cr_expect_null(query_take(&q, "csrf"));
    cr_expect_str_eq(query_get(&q, "user"), "admin");
    cr_expect_str_eq(query_take(&q, "password"), "p&ss w");
    cr_expect_eq(q.n, 1);
    cr_expect_str_eq(q.p[0].key, "user");
    /* the form rules are the query's: once each, known names only */
    cr_expect_lt(query_parse_form("csrf=a&csrf=b", 13, &q, err, sizeof(err)), 0);
    cr_expect_str_eq(err, "parameter 'csrf' given twice");
    cr_expect_lt(query_parse_form("token=a", 7, &q, err, sizeof(err)), 0);
    cr_expect_str_eq(err, "unknown parameter 'token'");
}
