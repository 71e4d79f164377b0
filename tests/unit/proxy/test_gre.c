/*
 * tests/unit/proxy/test_gre.c: the decision the decapsulation thread
 * (proxy/gre.c) makes for each packet the raw socket returns: from a
 * configured router or dropped as not_router, a GRE header it cannot take
 * (flags, protocol, truncation) as bad_gre, an inner packet whose length
 * lies as bad_inner, WCCPv2 and WCCPv1 accepted with the client's packet
 * found inside the buffer; and the status document of no decapsulation.
 * The socket and TUN device are exercised by tests/e2e/wccp_gre.sh.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <string.h>

#include "../../../proxy/gre.h"
#include "../../../proxy/gre_pkt.h"

#define OUTER 20

static const uint32_t routers_host[] = { 0x0a4e0201u, 0xc0000201u };   /* 10.78.2.1, 192.0.2.1 */
static uint32_t routers[2];

static void
setup(void)
{
    for (size_t i = 0; i < 2; i++)
        routers[i] = htonl(routers_host[i]);
}

/* outer IPv4 (20 bytes) + GRE [+ redirect] + an inner IPv4 packet of n bytes */
static size_t
packet(uint8_t *p, size_t n, bool redirect)
{
    uint8_t inner[1600];
    gre_wccp_t w = { .service_id = 0, .primary_bucket = 7, .has_redirect_hdr = redirect };
    long k;

    memset(inner, 0, n);
    inner[0] = 0x45;
    inner[2] = (uint8_t)(n >> 8);
    inner[3] = (uint8_t)n;
    inner[9] = 6;
    memset(p, 0, OUTER);
    p[0] = 0x45;
    p[9] = 47;
    k = gre_wccp_build(p + OUTER, 1600, &w, inner, n);
    cr_assert_gt(k, 0);
    return OUTER + (size_t)k;
}

static gre_drop_t
classify(uint32_t src, const uint8_t *p, size_t len, size_t *inner_off, size_t *inner_len,
         int *router, bool *v1)
{
    const uint8_t *inner = NULL;
    gre_drop_t d = gre_classify(routers, 2, src, p, len, &inner, inner_len, router, v1);

    *inner_off = inner ? (size_t)(inner - p) : 0;
    return d;
}

Test(gre, accepts_wccpv2_and_v1_from_routers, .init = setup)
{
    uint8_t p[1700];
    size_t off, ilen, n = packet(p, 1472, true);
    int router;
    bool v1;

    cr_assert_eq(classify(routers[1], p, n, &off, &ilen, &router, &v1), GRE_DROP_NONE);
    cr_expect_eq(off, OUTER + 8);
    cr_expect_eq(ilen, 1472);
    cr_expect_eq(router, 1);
    cr_expect(!v1);

    n = packet(p, 40, false);
    cr_assert_eq(classify(routers[0], p, n, &off, &ilen, &router, &v1), GRE_DROP_NONE);
    cr_expect_eq(off, OUTER + 4);
    cr_expect_eq(ilen, 40);
    cr_expect_eq(router, 0);
    cr_expect(v1);
}

Test(gre, drops_by_reason, .init = setup)
{
    uint8_t p[1700];
    size_t off, ilen, n = packet(p, 60, true);
    int router;
    bool v1;

    /* a valid packet, but from elsewhere */
    cr_expect_eq(classify(htonl(0x0a4e0102u), p, n, &off, &ilen, &router, &v1),
                 GRE_DROP_NOT_ROUTER);
    cr_expect_eq(router, -1);
    /* the checksum bit */
    p[OUTER] = 0x80;
    cr_expect_eq(classify(routers[0], p, n, &off, &ilen, &router, &v1), GRE_DROP_BAD_GRE);
    p[OUTER] = 0;
    /* version 1 (PPTP) */
    p[OUTER + 1] = 0x01;
    cr_expect_eq(classify(routers[0], p, n, &off, &ilen, &router, &v1), GRE_DROP_BAD_GRE);
    p[OUTER + 1] = 0;
    /* not 0x883E: a transparent-bridging frame */
    p[OUTER + 2] = 0x65;
    p[OUTER + 3] = 0x58;
    cr_expect_eq(classify(routers[0], p, n, &off, &ilen, &router, &v1), GRE_DROP_BAD_GRE);
    n = packet(p, 60, true);
    /* the inner length says 1000, 60 bytes are there */
    p[OUTER + 8 + 2] = 0x03;
    p[OUTER + 8 + 3] = 0xe8;
    cr_expect_eq(classify(routers[0], p, n, &off, &ilen, &router, &v1), GRE_DROP_BAD_INNER);
    /* ... or 40 with 60 there (trailing bytes) */
    p[OUTER + 8 + 2] = 0;
    p[OUTER + 8 + 3] = 40;
    cr_expect_eq(classify(routers[0], p, n, &off, &ilen, &router, &v1), GRE_DROP_BAD_INNER);
    /* truncations: the outer header, GRE, a redirect header with nothing after it */
    n = packet(p, 60, true);
    cr_expect_eq(classify(routers[0], p, 10, &off, &ilen, &router, &v1), GRE_DROP_BAD_GRE);
    cr_expect_eq(classify(routers[0], p, OUTER + 2, &off, &ilen, &router, &v1), GRE_DROP_BAD_GRE);
    cr_expect_eq(classify(routers[0], p, OUTER + 8, &off, &ilen, &router, &v1), GRE_DROP_BAD_INNER);
    cr_expect_eq(classify(routers[0], p, OUTER + 8 + 30, &off, &ilen, &router, &v1),
                 GRE_DROP_BAD_INNER);
    /* an empty read (what a truncated datagram becomes) */
    cr_expect_eq(classify(routers[0], p, 0, &off, &ilen, &router, &v1), GRE_DROP_BAD_GRE);
}

Test(gre, status_of_no_decapsulation)
{
    json_t *j = gre_status_json(NULL);

    cr_assert_not_null(j);
    cr_expect(json_is_false(json_object_get(j, "enabled")));
    json_decref(j);
    cr_expect_str_eq(gre_drop_name(GRE_DROP_NOT_ROUTER), "not_router");
    cr_expect_str_eq(gre_drop_name(GRE_DROP_TUN_WRITE), "tun_write");
}
