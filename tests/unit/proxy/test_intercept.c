/*
 * tests/unit/proxy/test_intercept.c: the pure parts of proxy/intercept.c:
 * address comparison (IPv4-mapped IPv6 equals IPv4, ports ignored), the
 * Host check against a whole DNS answer, the bypass list (a domain covers
 * its subdomains and nothing that merely ends with the same letters), and
 * the TLS alert records. The socket parts run in tests/e2e/transparent.sh.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <string.h>

#include "../../../common/cidr.h"
#include "../../../proxy/intercept.h"

static struct sockaddr_storage
addr(const char *s, uint16_t port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (inet_pton(AF_INET, s, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
        ss.ss_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_port = htons(port);
    } else {
        cr_assert(inet_pton(AF_INET6, s, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1, "%s", s);
        ss.ss_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_port = htons(port);
    }
    return ss;
}
#define SA(x) ((const struct sockaddr *)&(x))

Test(intercept, same_addr)
{
    struct sockaddr_storage a = addr("192.0.2.1", 80), b = addr("192.0.2.1", 443),
                            m = addr("::ffff:192.0.2.1", 1), c = addr("192.0.2.2", 80),
                            v6 = addr("2001:db8::1", 80), v6b = addr("2001:db8::1", 8080);

    cr_expect(intercept_same_addr(SA(a), SA(b)));
    cr_expect(intercept_same_addr(SA(a), SA(m)));
    cr_expect(intercept_same_addr(SA(m), SA(a)));
    cr_expect(!intercept_same_addr(SA(a), SA(c)));
    cr_expect(intercept_same_addr(SA(v6), SA(v6b)));
    cr_expect(!intercept_same_addr(SA(v6), SA(a)));
}

Test(intercept, host_check_uses_every_address)
{
    dns_result_t r = { .n = 3 };
    struct sockaddr_storage dst = addr("198.51.100.7", 80), other = addr("198.51.100.8", 80);

    r.addr[0] = addr("198.51.100.5", 80);
    r.addr[1] = addr("2001:db8::7", 80);
    r.addr[2] = addr("198.51.100.7", 80);
    cr_expect(intercept_in_answer(&r, SA(dst)), "the third address matches");
    cr_expect(!intercept_in_answer(&r, SA(other)));
    r.n = 2;
    cr_expect(!intercept_in_answer(&r, SA(dst)), "only n addresses count");
    r.n = 0;
    cr_expect(!intercept_in_answer(&r, SA(dst)));
}

Test(intercept, bypass_list)
{
    static config_transparent_t t;
    struct sockaddr_storage in = addr("10.9.1.2", 443), out = addr("10.10.1.2", 443);

    memset(&t, 0, sizeof(t));
    strcpy(t.bypass_domains[0], "bank.example");
    strcpy(t.bypass_domains[1], "pay.example.org");
    t.n_bypass_domains = 2;
    cr_assert_eq(cidr_parse("10.9.0.0/16", &t.bypass_cidrs[0]), 0);
    t.n_bypass_cidrs = 1;

#define B(h) intercept_bypassed(&t, (h), strlen(h), NULL)
    cr_expect(B("bank.example"));
    cr_expect(B("www.bank.example"));
    cr_expect(B("WWW.Bank.Example"));
    cr_expect(B("bank.example."), "a trailing dot is the same name");
    cr_expect(!B("evilbank.example"), "a suffix of letters is not a subdomain");
    cr_expect(!B("bank.example.evil"));
    cr_expect(!B("example"));
    cr_expect(B("a.b.pay.example.org"));
    cr_expect(!B("example.org"));
#undef B
    cr_expect(intercept_bypassed(&t, NULL, 0, SA(in)));
    cr_expect(!intercept_bypassed(&t, NULL, 0, SA(out)));
    cr_expect(!intercept_bypassed(&t, NULL, 0, NULL));
    cr_expect(intercept_bypassed(&t, "x.test", 6, SA(in)), "either matches");
}

Test(intercept, tls_alerts)
{
    char a[INTERCEPT_ALERT_LEN];
    static const char denied[] = { 21, 3, 1, 0, 2, 2, 49 };
    static const char decode[] = { 21, 3, 1, 0, 2, 2, 50 };
    static const char internal[] = { 21, 3, 1, 0, 2, 2, 80 };

    cr_assert_eq(intercept_tls_alert(a, 403), INTERCEPT_ALERT_LEN);
    cr_expect_arr_eq(a, denied, sizeof(denied));
    intercept_tls_alert(a, 400);
    cr_expect_arr_eq(a, decode, sizeof(decode));
    intercept_tls_alert(a, 502);
    cr_expect_arr_eq(a, internal, sizeof(internal));
    intercept_tls_alert(a, 504);
    cr_expect_arr_eq(a, internal, sizeof(internal));
}
