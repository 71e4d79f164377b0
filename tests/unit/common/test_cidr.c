/*
 * tests/unit/common/test_cidr.c: address prefixes (common/cidr.c): parsing of valid
 * and invalid text, host bits cleared, matching IPv4, IPv6 and IPv4-mapped
 * IPv6 addresses, the /0, /32 and /128 edges, and formatting.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../../../common/cidr.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A socket address from numeric text (IPv4 if it has no ':'). */
static struct sockaddr_storage
sa_of(const char *text)
{
    struct sockaddr_storage ss;

    memset(&ss, 0, sizeof(ss));
    if (strchr(text, ':') == NULL) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
        sin->sin_family = AF_INET;
        sin->sin_port = htons(80);
        cr_assert_eq(inet_pton(AF_INET, text, &sin->sin_addr), 1, "%s", text);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(80);
        cr_assert_eq(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1, "%s", text);
    }
    return ss;
}

static bool
match(const char *prefix, const char *addr)
{
    cidr_t c;
    struct sockaddr_storage ss = sa_of(addr);

    cr_assert_eq(cidr_parse(prefix, &c), 0, "%s", prefix);
    return cidr_match(&c, (const struct sockaddr *)&ss);
}

Test(cidr, parse_valid_and_format)
{
    static const struct {
        const char *text;
        int family;
        const char *formatted;
    } cases[] = {
        { "10.0.0.0/8", AF_INET, "10.0.0.0/8" },
        { "192.0.2.1", AF_INET, "192.0.2.1/32" },
        { "192.0.2.1/32", AF_INET, "192.0.2.1/32" },
        { "0.0.0.0/0", AF_INET, "0.0.0.0/0" },
        { "172.16.0.0/12", AF_INET, "172.16.0.0/12" },
        { "10.1.2.3/8", AF_INET, "10.0.0.0/8" },           /* host bits cleared */
        { "192.168.255.255/17", AF_INET, "192.168.128.0/17" },
        { "255.255.255.255/1", AF_INET, "128.0.0.0/1" },
        { "1.2.3.4/0", AF_INET, "0.0.0.0/0" },
        { "1.2.3.4/031", AF_INET, "1.2.3.4/31" },          /* leading zero in the length */
        { "fc00::/7", AF_INET6, "fc00::/7" },
        { "fdff:1::1/7", AF_INET6, "fc00::/7" },
        { "::1", AF_INET6, "::1/128" },
        { "::1/128", AF_INET6, "::1/128" },
        { "::/0", AF_INET6, "::/0" },
        { "2001:db8:ffff::1/33", AF_INET6, "2001:db8:8000::/33" },
        { "fe80::1/10", AF_INET6, "fe80::/10" },
        { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127", AF_INET6,
          "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127" },
        { "::ffff:10.0.0.1/128", AF_INET6, "::ffff:10.0.0.1/128" },
        { "0000:0000:0000:0000:0000:ffff:255.255.255.255/128", AF_INET6,
          "::ffff:255.255.255.255/128" },
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        cidr_t c;
        char buf[CIDR_STRLEN];

        memset(&c, 0xa5, sizeof(c));
        cr_assert_eq(cidr_parse(cases[i].text, &c), 0, "'%s' refused", cases[i].text);
        cr_expect_eq(c.family, cases[i].family, "'%s'", cases[i].text);
        cidr_format(&c, buf, sizeof(buf));
        cr_expect_str_eq(buf, cases[i].formatted, "'%s'", cases[i].text);
        if (c.family == AF_INET)   /* the unused bytes are zero */
            for (size_t b = 4; b < sizeof(c.addr); b++)
                cr_expect_eq(c.addr[b], 0, "'%s' byte %zu", cases[i].text, b);
    }
}

Test(cidr, parse_invalid)
{
    static const char *const cases[] = {
        "", "/", "/8", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/-1", "10.0.0.0/+8",
        "10.0.0.0/8 ", " 10.0.0.0/8", "10.0.0.0 /8", "10.0.0.0/ 8", "10.0.0.0/8/8",
        "10.0.0.0/0x8", "10.0.0.0/1000", "10.0.0.0/4294967304", "10.0.0/8", "10.0.0.256",
        "010.0.0.0/8", "10.0.0.0.0", "1.2.3.4:80", "fc00::/129", "fc00::/200", ":::/8",
        "fc00:::1", "[::1]", "::1%lo", "fe80::1%eth0/64", "localhost", "example.com/24",
        "10.0.0.0/8a", "2001:db8::g/32",
        "1234567890123456789012345678901234567890123456789/8",    /* too long */
        "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:1/128",
    };

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        cidr_t c;
        cr_expect_eq(cidr_parse(cases[i], &c), -1, "'%s' accepted", cases[i]);
    }
}

Test(cidr, match_ipv4)
{
    cr_expect(match("10.0.0.0/8", "10.0.0.0"));
    cr_expect(match("10.0.0.0/8", "10.255.255.255"));
    cr_expect_not(match("10.0.0.0/8", "11.0.0.0"));
    cr_expect_not(match("10.0.0.0/8", "9.255.255.255"));
    cr_expect(match("172.16.0.0/12", "172.31.255.1"));
    cr_expect_not(match("172.16.0.0/12", "172.32.0.1"));
    cr_expect(match("192.168.128.0/17", "192.168.200.1"));
    cr_expect_not(match("192.168.128.0/17", "192.168.127.255"));
    /* /32: exactly one address */
    cr_expect(match("192.0.2.1/32", "192.0.2.1"));
    cr_expect(match("192.0.2.1", "192.0.2.1"));
    cr_expect_not(match("192.0.2.1/32", "192.0.2.0"));
    cr_expect_not(match("192.0.2.1/32", "192.0.2.2"));
    /* /0: every IPv4 address, no IPv6 one */
    cr_expect(match("0.0.0.0/0", "0.0.0.0"));
    cr_expect(match("0.0.0.0/0", "255.255.255.255"));
    cr_expect_not(match("0.0.0.0/0", "2001:db8::1"));
    cr_expect_not(match("0.0.0.0/0", "::"));
    /* a prefix given with host bits set matches its whole network */
    cr_expect(match("10.1.2.3/8", "10.200.0.1"));
}

Test(cidr, match_ipv6)
{
    cr_expect(match("fc00::/7", "fc00::1"));
    cr_expect(match("fc00::/7", "fdff:ffff::1"));
    cr_expect_not(match("fc00::/7", "fe00::1"));
    cr_expect_not(match("fc00::/7", "fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_expect(match("fe80::/10", "febf::1"));
    cr_expect_not(match("fe80::/10", "fec0::1"));
    cr_expect(match("2001:db8::/33", "2001:db8:7fff::1"));
    cr_expect_not(match("2001:db8::/33", "2001:db8:8000::1"));
    /* /128 */
    cr_expect(match("::1/128", "::1"));
    cr_expect(match("::1", "::1"));
    cr_expect_not(match("::1/128", "::2"));
    cr_expect_not(match("::1/128", "::"));
    cr_expect(match("fd00:ec2::254/128", "fd00:ec2::254"));
    cr_expect_not(match("fd00:ec2::254/128", "fd00:ec2::255"));
    /* /0: every IPv6 address, no IPv4 one */
    cr_expect(match("::/0", "::"));
    cr_expect(match("::/0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"));
    cr_expect_not(match("::/0", "10.0.0.1"));
    /* an IPv6 prefix never matches a plain IPv4 address */
    cr_expect_not(match("::ffff:0:0/96", "10.0.0.1"));
}

/* IPv4-mapped IPv6 addresses (dual-stack sockets) match IPv4 prefixes. */
Test(cidr, match_v4_mapped)
{
    cr_expect(match("10.0.0.0/8", "::ffff:10.1.2.3"));
    cr_expect_not(match("10.0.0.0/8", "::ffff:11.1.2.3"));
    cr_expect(match("127.0.0.0/8", "::ffff:127.0.0.1"));
    cr_expect(match("169.254.169.254/32", "::ffff:169.254.169.254"));
    cr_expect_not(match("169.254.169.254/32", "::ffff:169.254.169.253"));
    cr_expect(match("0.0.0.0/0", "::ffff:1.2.3.4"));
    /* not mapped: IPv4-compatible (::a.b.c.d) and NAT64 addresses */
    cr_expect_not(match("10.0.0.0/8", "::10.1.2.3"));
    cr_expect_not(match("10.0.0.0/8", "64:ff9b::10.1.2.3"));
    cr_expect_not(match("0.0.0.0/0", "::1"));
    /* ::ffff:0:0/96 as an IPv6 prefix matches mapped addresses */
    cr_expect(match("::ffff:0:0/96", "::ffff:10.0.0.1"));
}

Test(cidr, match_other_family)
{
    cidr_t c;
    struct sockaddr sa;

    cr_assert_eq(cidr_parse("0.0.0.0/0", &c), 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    cr_expect_not(cidr_match(&c, &sa));
    cr_assert_eq(cidr_parse("::/0", &c), 0);
    cr_expect_not(cidr_match(&c, &sa));
}

Test(cidr, list_match)
{
    static const char *const texts[] = { "10.0.0.0/8", "192.168.0.0/16", "fc00::/7" };
    cidr_t list[N_ELEMS(texts)];

    for (size_t i = 0; i < N_ELEMS(texts); i++)
        cr_assert_eq(cidr_parse(texts[i], &list[i]), 0);

    struct sockaddr_storage a = sa_of("192.168.1.1"), b = sa_of("fd12::1"),
                            c = sa_of("8.8.8.8"), d = sa_of("::ffff:10.9.9.9");
    cr_expect(cidr_list_match(list, N_ELEMS(list), (struct sockaddr *)&a));
    cr_expect(cidr_list_match(list, N_ELEMS(list), (struct sockaddr *)&b));
    cr_expect_not(cidr_list_match(list, N_ELEMS(list), (struct sockaddr *)&c));
    cr_expect(cidr_list_match(list, N_ELEMS(list), (struct sockaddr *)&d));
    cr_expect_not(cidr_list_match(list, 0, (struct sockaddr *)&a));
    cr_expect_not(cidr_list_match(list, 1, (struct sockaddr *)&a));   /* only the first */
}

Test(cidr, format_small_buffer_and_unset)
{
    cidr_t c;
    char buf[CIDR_STRLEN];

    cr_assert_eq(cidr_parse("192.168.100.0/24", &c), 0);
    memset(buf, 'x', sizeof(buf));
    cidr_format(&c, buf, 8);
    cr_expect_str_eq(buf, "192.168");           /* truncated, terminated */
    cr_expect_eq(buf[8], 'x');

    memset(&c, 0, sizeof(c));                    /* family 0: not a prefix */
    cidr_format(&c, buf, sizeof(buf));
    cr_expect_str_eq(buf, "?/0");
}

Test(cidr, addr_str)
{
    static const struct {
        const char *addr, *shown;
    } cases[] = {
        { "192.0.2.1", "192.0.2.1" },
        { "2001:db8::1", "2001:db8::1" },
        { "::ffff:10.1.2.3", "10.1.2.3" },      /* mapped shown as IPv4 */
        { "::1", "::1" },
        { "::", "::" },
    };
    char buf[CIDR_STRLEN];

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        struct sockaddr_storage ss = sa_of(cases[i].addr);
        cidr_addr_str((struct sockaddr *)&ss, buf, sizeof(buf));
        cr_expect_str_eq(buf, cases[i].shown);
    }

    struct sockaddr sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_family = AF_UNIX;
    cidr_addr_str(&sa, buf, sizeof(buf));
    cr_expect_str_eq(buf, "-");

    /* too small for the address: empty, never garbage */
    struct sockaddr_storage v6 = sa_of("2001:db8:1:2:3:4:5:6");
    memset(buf, 'x', sizeof(buf));
    cidr_addr_str((struct sockaddr *)&v6, buf, 8);
    cr_expect_str_eq(buf, "");
}

/* The hand-written dotted quad is what inet_ntop writes, for every digit
 * count in every position, also v4-mapped; a buffer one byte short is left
 * empty, as inet_ntop leaves it. */
Test(cidr, addr_str_v4_matches_inet_ntop)
{
    static const uint8_t v[] = {0, 1, 9, 10, 42, 99, 100, 199, 200, 255};
    struct sockaddr_in sin = {.sin_family = AF_INET};
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6};
    char got[64], want[INET_ADDRSTRLEN];
    size_t n = sizeof(v);

    for (size_t a = 0; a < n; a++)
        for (size_t b = 0; b < n; b++)
            for (size_t c = 0; c < n; c++)
                for (size_t d = 0; d < n; d += 3) {
                    uint8_t q[4] = {v[a], v[b], v[c], v[d]};
                    memcpy(&sin.sin_addr, q, 4);
                    cr_assert_not_null(inet_ntop(AF_INET, q, want, sizeof(want)));
                    cidr_addr_str((struct sockaddr *)&sin, got, sizeof(got));
                    cr_assert_str_eq(got, want);
                    memset(&sin6.sin6_addr, 0, 16);
                    sin6.sin6_addr.s6_addr[10] = sin6.sin6_addr.s6_addr[11] = 0xff;
                    memcpy(sin6.sin6_addr.s6_addr + 12, q, 4);
                    cidr_addr_str((struct sockaddr *)&sin6, got, sizeof(got));
                    cr_assert_str_eq(got, want);
                    strcpy(got, "x");
                    cidr_addr_str((struct sockaddr *)&sin, got, strlen(want));
                    cr_assert_str_eq(got, "");
                    cidr_addr_str((struct sockaddr *)&sin, got, strlen(want) + 1);
                    cr_assert_str_eq(got, want);
                }
}
