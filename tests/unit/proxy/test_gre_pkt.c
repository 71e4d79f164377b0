/*
 * tests/unit/proxy/test_gre_pkt.c: GRE with the WCCPv2 redirect header
 * (proxy/gre_pkt.c): build and parse back, WCCPv1 packets without the
 * redirect header, every truncation, flags that must be zero, a foreign
 * protocol, an inner packet whose length field lies, the outer IP header.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../../proxy/gre_pkt.h"

/* A minimal IPv4/TCP SYN-sized packet of n bytes (n >= 20). */
static void
ip_packet(uint8_t *p, size_t n)
{
    memset(p, 0, n);
    p[0] = 0x45;
    p[2] = (uint8_t)(n >> 8);
    p[3] = (uint8_t)n;
    p[8] = 64;
    p[9] = 6;
    memcpy(p + 12, "\x0a\x00\x00\x02", 4);
    memcpy(p + 16, "\xc0\x00\x02\x07", 4);
    for (size_t i = 20; i < n; i++)
        p[i] = (uint8_t)i;
}

Test(gre_pkt, build_parse_roundtrip)
{
    uint8_t inner[60], out[128];
    gre_wccp_t w = { .flags = GRE_WCCP_F_DYNAMIC, .service_id = 70, .alt_bucket = 3,
                     .primary_bucket = 201, .has_redirect_hdr = true }, r;
    long n;

    ip_packet(inner, sizeof(inner));
    n = gre_wccp_build(out, sizeof(out), &w, inner, sizeof(inner));
    cr_assert_eq(n, 8 + 60);
    cr_expect_eq(out[0], 0);
    cr_expect_eq(out[1], 0);
    cr_expect_eq(out[2], 0x88);
    cr_expect_eq(out[3], 0x3e);
    cr_expect_eq(out[4], GRE_WCCP_F_DYNAMIC);
    cr_expect_eq(out[5], 70);
    cr_expect_eq(out[6], 3);
    cr_expect_eq(out[7], 201);
    cr_assert_eq(gre_wccp_parse(out, (size_t)n, &r), GRE_OK);
    cr_expect(r.has_redirect_hdr);
    cr_expect_eq(r.service_id, 70);
    cr_expect_eq(r.primary_bucket, 201);
    cr_expect_eq(r.alt_bucket, 3);
    cr_expect_eq(r.flags, GRE_WCCP_F_DYNAMIC);
    cr_assert_eq(r.inner_len, sizeof(inner));
    cr_expect_arr_eq(r.inner, inner, sizeof(inner));
    cr_expect_eq(r.inner, out + 8, "points into the input");
}

Test(gre_pkt, wccp_v1_without_redirect_header)
{
    uint8_t inner[40], out[64];
    gre_wccp_t w = { .has_redirect_hdr = false }, r;
    long n;

    ip_packet(inner, sizeof(inner));
    n = gre_wccp_build(out, sizeof(out), &w, inner, sizeof(inner));
    cr_assert_eq(n, 44);
    cr_assert_eq(gre_wccp_parse(out, (size_t)n, &r), GRE_OK);
    cr_expect(!r.has_redirect_hdr);
    cr_expect_eq(r.inner_len, 40);
}

Test(gre_pkt, hostile)
{
    uint8_t inner[40], out[64], bad[64];
    gre_wccp_t w = { .service_id = 0, .primary_bucket = 9, .has_redirect_hdr = true }, r;
    long n;

    ip_packet(inner, sizeof(inner));
    n = gre_wccp_build(out, sizeof(out), &w, inner, sizeof(inner));
    cr_assert_eq(n, 48);
    for (size_t cut = 0; cut < (size_t)n; cut++)
        cr_expect_neq(gre_wccp_parse(out, cut, &r), GRE_OK, "cut at %zu", cut);
    for (int bit = 0; bit < 16; bit++) {
        memcpy(bad, out, (size_t)n);
        bad[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
        cr_expect_eq(gre_wccp_parse(bad, (size_t)n, &r), GRE_E_FLAGS, "bit %d", bit);
    }
    memcpy(bad, out, (size_t)n);
    bad[3] = 0x00;   /* 0x8800 */
    cr_expect_eq(gre_wccp_parse(bad, (size_t)n, &r), GRE_E_PROTO);
    memcpy(bad, out, (size_t)n);
    bad[8 + 3] = 41;   /* the inner length says 41: one byte missing */
    cr_expect_eq(gre_wccp_parse(bad, (size_t)n, &r), GRE_E_INNER);
    memcpy(bad, out, (size_t)n);
    bad[8 + 3] = 30;   /* says 30: trailing bytes */
    cr_expect_eq(gre_wccp_parse(bad, (size_t)n, &r), GRE_E_INNER);
    memcpy(bad, out, (size_t)n);
    bad[8] = 0x41;   /* IHL 1 */
    cr_expect_eq(gre_wccp_parse(bad, (size_t)n, &r), GRE_E_INNER);
    cr_expect_eq(gre_wccp_build(out, 47, &w, inner, sizeof(inner)), GRE_E_SPACE);
    inner[3] = 39;
    cr_expect_eq(gre_wccp_build(out, sizeof(out), &w, inner, sizeof(inner)), GRE_E_INNER);
}

Test(gre_pkt, outer_ip_and_bucket)
{
    uint8_t pkt[64];
    size_t off = 0;

    ip_packet(pkt, 64);
    cr_assert_eq(gre_strip_ip(pkt, 64, &off), GRE_OK);
    cr_expect_eq(off, 20);
    pkt[0] = 0x46;
    cr_assert_eq(gre_strip_ip(pkt, 64, &off), GRE_OK);
    cr_expect_eq(off, 24);
    cr_expect_eq(gre_strip_ip(pkt, 19, &off), GRE_E_SHORT);
    pkt[0] = 0x60;
    cr_expect_eq(gre_strip_ip(pkt, 64, &off), GRE_E_INNER);
    /* 192.0.2.7: c0 ^ 00 ^ 02 ^ 07 */
    cr_expect_eq(gre_wccp_bucket(0x070200c0u), (uint8_t)(0xc0 ^ 0x00 ^ 0x02 ^ 0x07));
    cr_expect_str_eq(gre_strerror(GRE_E_PROTO), "GRE protocol is not 0x883E (WCCP)");
}
