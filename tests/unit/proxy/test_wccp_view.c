/*
 * tests/unit/proxy/test_wccp_view.c: the cache engine's view of a service
 * group (proxy/wccp_view.c), fed with I_See_You messages built and parsed by
 * the real codec: router states and the 3-interval timeout, change numbers,
 * designation (lowest address every router reports), the stability wait
 * before Redirect_Assign and its re-sending, weighted buckets, mask when the
 * router only does mask, leaving without ourselves, method negotiation and
 * the Here_I_Am contents.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "../../../proxy/wccp_view.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))
#define R1    IP(10, 0, 0, 1)
#define R2    IP(10, 0, 0, 2)
#define SELF  IP(10, 0, 0, 10)
#define LOW   IP(10, 0, 0, 9)
#define HIGH  IP(10, 0, 0, 100)
#define T     1000

static wccp_view_t v;
static wccp_msg_t msg;
static const uint32_t routers[] = {R1, R2};

static void
init(size_t n_routers)
{
    wccp_view_config_t c = {
        .self = SELF, .weight = 1, .interval_ms = T, .service_flags = WCCP_SF_DST_IP_HASH,
        .routers = routers, .n_routers = n_routers,
        .forwarding = {WCCP_FWD_GRE, WCCP_FWD_L2}, .n_forwarding = 2,
        .ret = {WCCP_RET_GRE}, .n_ret = 1,
        .assignment = {WCCP_ASSIGN_HASH, WCCP_ASSIGN_MASK}, .n_assignment = 2,
    };
    wccp_view_init(&v, &c);
}

/* An I_See_You from router `r` listing caches[0..n) with weight 1 each. */
static const wccp_msg_t *
isy(uint32_t r, uint32_t rid, uint32_t member_change, const uint32_t *caches, size_t n,
    const wccp_caps_t *caps)
{
    static uint8_t buf[WCCP_MSG_MAX];
    wccp_isy_t m;
    int len;

    memset(&m, 0, sizeof(m));
    m.router = (wccp_router_id_t){r, rid};
    m.sent_to = SELF;
    m.member_change = member_change;
    m.n_routers = 1;
    m.routers[0] = r;
    for (size_t i = 0; i < n; i++)
        m.caches[m.n_caches++] = (wccp_cache_id_t){.ip = caches[i], .weight = 1};
    if (caps)
        m.caps = *caps;
    len = wccp_build_i_see_you(buf, sizeof(buf), &m);
    cr_assert_gt(len, 0);
    cr_assert_eq(wccp_parse(buf, (size_t)len, NULL, &msg), WCCP_OK);
    return &msg;
}

Test(wccp_view, router_states_and_timeout)
{
    const uint32_t c[] = {SELF};

    init(1);
    cr_expect_eq(v.routers[0].state, WCCP_RS_SEEKING);
    cr_expect_eq(wccp_view_state(&v, 0), WCCP_SS_SEEKING);
    cr_expect_eq(wccp_view_router(&v, R1), 0);
    cr_expect_eq(wccp_view_router(&v, R2), -1);
    cr_expect_eq(wccp_view_isy(&v, 0, isy(R1, 5, 1, c, 1, NULL), 100), 1);
    cr_expect_eq(v.routers[0].state, WCCP_RS_CONNECTED);
    cr_expect_eq(v.routers[0].receive_id, 5);
    cr_expect_eq(v.routers[0].member_change, 1);
    cr_expect_eq(wccp_view_tick(&v, 100 + 3 * T - 1), 0);        /* not yet */
    cr_expect_eq(v.routers[0].state, WCCP_RS_CONNECTED);
    cr_expect_eq(wccp_view_tick(&v, 100 + 3 * T), 1);            /* 3 silent intervals */
    cr_expect_eq(v.routers[0].state, WCCP_RS_LOST);
    cr_expect_eq(v.routers[0].receive_id, 0);
    cr_expect_eq(wccp_view_designated(&v), 0);
    cr_expect_eq(wccp_view_state(&v, 100 + 3 * T), WCCP_SS_SEEKING);
    /* an I_See_You for another cache is ignored */
    wccp_msg_t *m = (wccp_msg_t *)isy(R1, 6, 1, c, 1, NULL);
    m->sent_to = HIGH;
    cr_expect_eq(wccp_view_isy(&v, 0, m, 5000), -1);
    cr_expect_eq(v.routers[0].state, WCCP_RS_LOST);
}

Test(wccp_view, change_number_follows_membership_not_receive_ids)
{
    const uint32_t one[] = {SELF}, two[] = {SELF, HIGH};
    uint32_t cn;

    init(1);
    wccp_view_isy(&v, 0, isy(R1, 1, 1, one, 1, NULL), 0);
    cn = v.change_number;
    cr_expect_eq(wccp_view_isy(&v, 0, isy(R1, 2, 1, one, 1, NULL), 1000), 0);
    cr_expect_eq(v.change_number, cn, "a new receive id is no view change");
    cr_expect_eq(wccp_view_isy(&v, 0, isy(R1, 3, 2, two, 2, NULL), 2000), 1);
    cr_expect_eq(v.change_number, cn + 1);
    cr_expect_eq(v.changed_ms, 2000);
}

Test(wccp_view, designated_is_lowest_reported_by_every_router)
{
    const uint32_t a[] = {HIGH, SELF, LOW}, b[] = {SELF, HIGH};
    wccp_member_t m[WCCP_CACHES_MAX];

    init(2);
    wccp_view_isy(&v, 0, isy(R1, 1, 1, a, 3, NULL), 0);
    cr_expect_eq(wccp_view_designated(&v), LOW);
    cr_expect_eq(wccp_view_state(&v, 0), WCCP_SS_MEMBER);
    /* R2 does not see LOW: it is not a candidate */
    wccp_view_isy(&v, 1, isy(R2, 1, 1, b, 2, NULL), 0);
    cr_expect_eq(wccp_view_caches(&v, m), 2);
    cr_expect_eq(m[0].ip, SELF);
    cr_expect_eq(m[1].ip, HIGH);
    cr_expect_eq(wccp_view_designated(&v), SELF);
}

Test(wccp_view, assignment_waits_for_a_stable_view)
{
    const uint32_t one[] = {SELF}, two[] = {SELF, HIGH};
    wccp_assignment_t a;
    wccp_mvlist_t mv;

    init(1);
    wccp_view_isy(&v, 0, isy(R1, 1, 1, one, 1, NULL), 0);
    cr_expect_eq(wccp_view_state(&v, 0), WCCP_SS_WAITING);
    cr_expect(!wccp_view_assign_due(&v, T - 1));
    cr_expect_eq(wccp_view_assign_next_ms(&v, 10), T);   /* the agent wakes when it turns stable */
    cr_expect(wccp_view_assign_due(&v, T));
    cr_assert_eq(wccp_view_assignment(&v, false, T, &a, &mv), WCCP_OK);
    cr_expect_eq(a.form, WCCP_AF_HASH);
    cr_expect_eq(a.key.ip, SELF);
    cr_expect_eq(a.key.change_number, 1);
    cr_expect_eq(a.n_routers, 1);
    cr_expect_eq(a.routers[0].receive_id, 1);
    cr_expect_eq(a.routers[0].change_number, 1);
    cr_expect_eq(a.n_caches, 1);
    for (int b = 0; b < WCCP_BUCKETS; b++)
        cr_assert_eq(a.buckets[b], 0);
    cr_expect_eq(wccp_view_share(&v), 256);
    cr_expect_eq(wccp_view_state(&v, T), WCCP_SS_DESIGNATED);
    cr_expect(!wccp_view_assign_due(&v, T + 1));
    /* the router does not show our key: resent, but only after an interval */
    wccp_view_isy(&v, 0, isy(R1, 2, 1, one, 1, NULL), T + 10);
    cr_expect(!wccp_view_assign_due(&v, T + 500));
    cr_expect_eq(wccp_view_assign_next_ms(&v, T + 500), 2 * T);   /* the resend */
    cr_expect(wccp_view_assign_due(&v, 2 * T));
    /* a second cache joins: wait one interval again, then 128 / 128 */
    wccp_view_isy(&v, 0, isy(R1, 3, 2, two, 2, NULL), 3 * T);
    cr_expect(!wccp_view_assign_due(&v, 4 * T - 1));
    cr_expect(wccp_view_assign_due(&v, 4 * T));
    cr_assert_eq(wccp_view_assignment(&v, false, 4 * T, &a, &mv), WCCP_OK);
    cr_expect_eq(a.key.change_number, 2);
    cr_expect_eq(a.routers[0].change_number, 2);
    cr_expect_eq(a.n_caches, 2);
    cr_expect_eq(wccp_view_share(&v), 128);
    /* leaving: everything to the other cache */
    cr_assert_eq(wccp_view_assignment(&v, true, 5 * T, &a, &mv), WCCP_OK);
    cr_expect_eq(a.n_caches, 1);
    cr_expect_eq(a.caches[0], HIGH);
    for (int b = 0; b < WCCP_BUCKETS; b++)
        cr_assert_eq(a.buckets[b], 0);
    /* not designated (a lower address in the view): nothing falls due */
    init(1);
    {
        const uint32_t low[] = {LOW, SELF};
        wccp_view_isy(&v, 0, isy(R1, 1, 1, low, 2, NULL), 0);
        cr_expect_eq(wccp_view_assign_next_ms(&v, 0), INT64_MAX);
    }
    /* alone and leaving: nothing to give */
    init(1);
    wccp_view_isy(&v, 0, isy(R1, 1, 1, one, 1, NULL), 0);
    cr_expect_eq(wccp_view_assignment(&v, true, T, &a, &mv), WCCP_E_INVALID);
}

Test(wccp_view, member_share_comes_from_the_router)
{
    static uint8_t buf[WCCP_MSG_MAX];
    wccp_isy_t m;
    int len;

    init(1);
    memset(&m, 0, sizeof(m));
    m.router = (wccp_router_id_t){R1, 1};
    m.sent_to = SELF;
    m.member_change = 1;
    m.n_caches = 2;
    m.caches[0] = (wccp_cache_id_t){.ip = LOW, .weight = 1};
    m.caches[1] = (wccp_cache_id_t){.ip = SELF, .weight = 1};
    memset(m.caches[1].buckets + 16, 0xff, 16);   /* buckets 128..255 */
    len = wccp_build_i_see_you(buf, sizeof(buf), &m);
    cr_assert_gt(len, 0);
    cr_assert_eq(wccp_parse(buf, (size_t)len, NULL, &msg), WCCP_OK);
    wccp_view_isy(&v, 0, &msg, 0);
    cr_expect_eq(wccp_view_state(&v, 0), WCCP_SS_MEMBER);
    cr_expect_eq(wccp_view_share(&v), 128);
}

Test(wccp_view, mask_when_the_router_only_does_mask)
{
    const uint32_t two[] = {SELF, HIGH};
    const wccp_caps_t caps = {true, WCCP_FWD_GRE, WCCP_ASSIGN_MASK, WCCP_RET_GRE};
    wccp_assignment_t a;
    wccp_mvlist_t mv;
    wccp_hia_t h;

    init(1);
    wccp_view_isy(&v, 0, isy(R1, 1, 1, two, 2, &caps), 0);
    cr_expect_eq(v.assign, WCCP_ASSIGN_MASK);
    cr_assert_eq(wccp_view_assignment(&v, false, T, &a, &mv), WCCP_OK);
    cr_expect_eq(a.form, WCCP_AF_MASK);
    cr_expect(a.alternate);
    cr_expect_eq(mv.n_values, 64);                 /* the 6-bit default mask */
    cr_expect_eq(wccp_view_share(&v), 32);
    wccp_view_hia(&v, 0, &h);
    cr_expect(h.caps.present);
    cr_expect_eq(h.caps.assign, WCCP_ASSIGN_MASK);
    cr_expect_eq(h.caps.forward, WCCP_FWD_GRE);
}

Test(wccp_view, no_common_method)
{
    const uint32_t one[] = {SELF};
    const wccp_caps_t caps = {true, WCCP_FWD_GRE, WCCP_ASSIGN_HASH, WCCP_RET_L2};

    init(1);      /* we return by GRE only */
    wccp_view_isy(&v, 0, isy(R1, 1, 1, one, 1, &caps), 0);
    cr_expect_eq(v.ret, 0);
    cr_expect_eq(wccp_view_state(&v, 0), WCCP_SS_NO_METHOD);
    cr_expect(!wccp_view_assign_due(&v, 10 * T));
}

Test(wccp_view, here_i_am_contents)
{
    const uint32_t two[] = {LOW, SELF};
    wccp_hia_t h;
    uint8_t buf[WCCP_MSG_MAX];

    init(2);
    wccp_view_hia(&v, 0, &h);
    cr_expect_eq(h.cache.ip, SELF);
    cr_expect_eq(h.cache.weight, 1);
    cr_expect_eq(h.n_routers, 0);
    cr_expect(!h.caps.present, "no capabilities to a router that sent none");
    wccp_view_isy(&v, 0, isy(IP(10, 9, 9, 9), 7, 1, two, 2, NULL), 0);   /* its router id */
    wccp_view_hia(&v, 1, &h);
    cr_expect_eq(h.change_number, v.change_number);
    cr_expect_eq(h.n_routers, 1);
    cr_expect_eq(h.routers[0].ip, IP(10, 9, 9, 9));
    cr_expect_eq(h.routers[0].receive_id, 7);
    cr_expect_eq(h.n_caches, 2);
    cr_expect_eq(h.caches[0], LOW);
    cr_expect_gt(wccp_build_here_i_am(buf, sizeof(buf), &h), 0);
}
