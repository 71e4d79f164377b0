/*
 * tests/unit/proxy/test_wccp_assign.c: designated cache and weighted sharing
 * of hash buckets and mask values (proxy/wccp_assign.c): exact shares for
 * simple weights, the rounding rule, independence from input order, limits,
 * and that an assignment builds into a Redirect_Assign that parses back.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "../../../proxy/wccp_assign.h"
#include "../../../proxy/wccp_pkt.h"

#define IP(a, b, c, d) ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (d))

static wccp_assignment_t asg;

/* buckets of each cache index, and checks that each cache's run is contiguous */
static void
count_buckets(const wccp_assignment_t *a, uint32_t count[WCCP_CACHES_MAX])
{
    memset(count, 0, sizeof(uint32_t) * WCCP_CACHES_MAX);
    for (int b = 0; b < WCCP_BUCKETS; b++) {
        cr_assert_lt(a->buckets[b], a->n_caches);
        if (b > 0)
            cr_assert_geq(a->buckets[b], a->buckets[b - 1], "bucket %d", b);
        count[a->buckets[b]]++;
    }
}

Test(wccp_assign, designated_is_numerically_lowest)
{
    const uint32_t ips[] = {IP(10, 0, 0, 10), IP(10, 0, 0, 9), IP(10, 0, 0, 100)};
    const uint32_t other[] = {IP(192, 168, 1, 1), IP(10, 255, 0, 1), IP(9, 0, 0, 200)};

    cr_assert_eq(wccp_designated(ips, 3), 1);               /* 10.0.0.9 < 10.0.0.10 */
    cr_assert_eq(wccp_designated(other, 3), 2);
    cr_assert_eq(wccp_designated(ips, 1), 0);
    cr_assert_eq(wccp_designated(ips, 0), -1);
}

Test(wccp_assign, equal_weights_split_in_half)
{
    const wccp_member_t m[] = {{IP(10, 0, 0, 10), 100}, {IP(10, 0, 0, 9), 100}};
    uint32_t count[WCCP_CACHES_MAX];

    cr_assert_eq(wccp_assign_hash(m, 2, &asg), WCCP_OK);
    cr_assert_eq(asg.n_caches, 2);
    cr_assert_eq(asg.caches[0], IP(10, 0, 0, 9));           /* address order */
    cr_assert_eq(asg.caches[1], IP(10, 0, 0, 10));
    count_buckets(&asg, count);
    cr_assert_eq(count[0], 128);
    cr_assert_eq(count[1], 128);
    cr_assert_eq(asg.buckets[0], 0);
    cr_assert_eq(asg.buckets[255], 1);
}

Test(wccp_assign, one_to_three)
{
    const wccp_member_t m[] = {{IP(10, 0, 0, 2), 3}, {IP(10, 0, 0, 1), 1}};
    uint32_t count[WCCP_CACHES_MAX];

    cr_assert_eq(wccp_assign_hash(m, 2, &asg), WCCP_OK);
    count_buckets(&asg, count);
    cr_assert_eq(count[0], 64);                             /* 10.0.0.1, weight 1 */
    cr_assert_eq(count[1], 192);
}

Test(wccp_assign, zero_weights)
{
    const wccp_member_t all0[] = {{IP(10, 0, 0, 1), 0}, {IP(10, 0, 0, 2), 0}};
    const wccp_member_t one0[] = {{IP(10, 0, 0, 1), 0}, {IP(10, 0, 0, 2), 5}};
    uint32_t count[WCCP_CACHES_MAX];

    cr_assert_eq(wccp_assign_hash(all0, 2, &asg), WCCP_OK);   /* all 0: equal */
    count_buckets(&asg, count);
    cr_assert_eq(count[0], 128);
    cr_assert_eq(count[1], 128);
    cr_assert_eq(wccp_assign_hash(one0, 2, &asg), WCCP_OK);   /* weight 0: nothing */
    count_buckets(&asg, count);
    cr_assert_eq(count[0], 0);
    cr_assert_eq(count[1], 256);
}

Test(wccp_assign, one_cache_and_none)
{
    const wccp_member_t m[] = {{IP(10, 1, 2, 3), 7}};

    cr_assert_eq(wccp_assign_hash(m, 1, &asg), WCCP_OK);
    for (int b = 0; b < WCCP_BUCKETS; b++)
        cr_assert_eq(asg.buckets[b], 0);
    cr_assert_eq(wccp_assign_hash(m, 0, &asg), WCCP_OK);
    cr_assert_eq(asg.n_caches, 0);
    for (int b = 0; b < WCCP_BUCKETS; b++)
        cr_assert_eq(asg.buckets[b], WCCP_BUCKET_NONE);
}

Test(wccp_assign, thirty_two_caches_rounding_is_stable)
{
    wccp_member_t m[WCCP_CACHES_MAX + 1], rev[WCCP_CACHES_MAX];
    uint32_t count[WCCP_CACHES_MAX];
    static wccp_assignment_t again;

    for (int i = 0; i < WCCP_CACHES_MAX; i++)
        m[i] = (wccp_member_t){IP(10, 0, 1, 200 - i), 1};
    cr_assert_eq(wccp_assign_hash(m, WCCP_CACHES_MAX, &asg), WCCP_OK);
    count_buckets(&asg, count);
    for (int i = 0; i < WCCP_CACHES_MAX; i++)
        cr_assert_eq(count[i], 8);

    /* 3 equal caches: 86/85/85, the extra bucket to the lowest address */
    cr_assert_eq(wccp_assign_hash(m, 3, &asg), WCCP_OK);
    count_buckets(&asg, count);
    cr_assert_eq(asg.caches[0], IP(10, 0, 1, 198));
    cr_assert_eq(count[0], 86);
    cr_assert_eq(count[1], 85);
    cr_assert_eq(count[2], 85);

    /* mixed weights: same result whatever the input order; shares within 1 */
    for (int i = 0; i < WCCP_CACHES_MAX; i++)
        m[i].weight = (uint16_t)(1 + (i * 7919) % 1000);
    for (int i = 0; i < WCCP_CACHES_MAX; i++)
        rev[i] = m[WCCP_CACHES_MAX - 1 - i];
    cr_assert_eq(wccp_assign_hash(m, WCCP_CACHES_MAX, &asg), WCCP_OK);
    cr_assert_eq(wccp_assign_hash(rev, WCCP_CACHES_MAX, &again), WCCP_OK);
    cr_assert_arr_eq(asg.buckets, again.buckets, WCCP_BUCKETS);
    cr_assert_arr_eq(asg.caches, again.caches, sizeof(asg.caches));
    count_buckets(&asg, count);
    uint64_t total = 0;
    for (int i = 0; i < WCCP_CACHES_MAX; i++)
        total += m[i].weight;
    for (int i = 0; i < WCCP_CACHES_MAX; i++) {
        uint16_t w = 0;
        for (int j = 0; j < WCCP_CACHES_MAX; j++)
            if (m[j].ip == asg.caches[i])
                w = m[j].weight;
        double exact = 256.0 * w / (double)total;
        cr_assert(count[i] + 1.0 > exact && count[i] < exact + 1.0, "cache %d: %u vs %f", i,
                  count[i], exact);
    }

    m[WCCP_CACHES_MAX] = (wccp_member_t){IP(10, 0, 2, 1), 1};
    cr_assert_eq(wccp_assign_hash(m, WCCP_CACHES_MAX + 1, &asg), WCCP_E_INVALID);
    m[1].ip = m[0].ip;
    cr_assert_eq(wccp_assign_hash(m, 2, &asg), WCCP_E_INVALID);   /* duplicate */
}

Test(wccp_assign, default_mask)
{
    wccp_mask_t s = wccp_mask_default(WCCP_SF_SRC_IP_HASH);
    wccp_mask_t d = wccp_mask_default(WCCP_SF_DST_IP_HASH);

    cr_assert_eq(s.src_ip, 0x1741);
    cr_assert_eq(s.dst_ip, 0);
    cr_assert_eq(d.dst_ip, 0x1741);
    cr_assert_eq(d.src_ip, 0);
    cr_assert_eq(wccp_mask_bits(&s), 6);
}

Test(wccp_assign, mask_values_cover_every_combination_once)
{
    const wccp_member_t m[] = {{IP(10, 0, 0, 2), 3}, {IP(10, 0, 0, 1), 1}};
    static wccp_mvlist_t mv;
    wccp_mask_t mask = wccp_mask_default(0);

    cr_assert_eq(wccp_assign_mask(m, 2, &mask, &mv), WCCP_OK);
    cr_assert_eq(mv.n_sets, 1);
    cr_assert_eq(mv.n_values, 64);
    cr_assert_eq(mv.sets[0].count, 64);
    uint8_t seen[0x1742] = {0};
    unsigned to_first = 0;
    for (uint32_t i = 0; i < mv.n_values; i++) {
        const wccp_value_t *v = &mv.values[i];
        cr_assert_eq(v->src_ip, 0);
        cr_assert_eq(v->dst_ip & ~0x1741u, 0, "value %u outside the mask", v->dst_ip);
        cr_assert_eq(seen[v->dst_ip]++, 0, "value %#x twice", v->dst_ip);
        if (v->cache_ip == IP(10, 0, 0, 1))
            to_first++;
        else
            cr_assert_eq(v->cache_ip, IP(10, 0, 0, 2));
    }
    cr_assert_eq(to_first, 16);                              /* 1:3 of 64 */

    /* a 2-bit mask across fields: ports too */
    wccp_mask_t two = {.src_ip = 0x1, .dst_port = 0x8000};
    cr_assert_eq(wccp_assign_mask(m, 2, &two, &mv), WCCP_OK);
    cr_assert_eq(mv.n_values, 4);
    cr_assert_eq(mv.values[3].src_ip, 1);
    cr_assert_eq(mv.values[3].dst_port, 0x8000);
    cr_assert_eq(mv.values[2].src_ip, 0);
    cr_assert_eq(mv.values[2].dst_port, 0x8000);
    cr_assert_eq(mv.values[0].cache_ip, IP(10, 0, 0, 1));   /* 1 of 4 */
    cr_assert_eq(mv.values[1].cache_ip, IP(10, 0, 0, 2));

    wccp_mask_t none = {0}, nine = {.src_ip = 0x1ff};
    cr_assert_eq(wccp_assign_mask(m, 2, &none, &mv), WCCP_E_INVALID);
    cr_assert_eq(wccp_assign_mask(m, 2, &nine, &mv), WCCP_E_INVALID);
    cr_assert_eq(wccp_assign_mask(m, 0, &mask, &mv), WCCP_E_INVALID);
    wccp_mask_t eight = {.src_ip = 0xff};
    cr_assert_eq(wccp_assign_mask(m, 2, &eight, &mv), WCCP_OK);
    cr_assert_eq(mv.n_values, WCCP_MV_VALUES_MAX);
}

Test(wccp_assign, assignment_builds_and_parses_back)
{
    const wccp_member_t m[] = {{IP(10, 0, 0, 3), 2}, {IP(10, 0, 0, 1), 1}, {IP(10, 0, 0, 2), 1}};
    static wccp_ra_t ra;
    static wccp_msg_t out;
    uint8_t buf[WCCP_MSG_MAX];

    cr_assert_eq(wccp_assign_hash(m, 3, &ra.assign), WCCP_OK);
    ra.assign.key = (wccp_assign_key_t){IP(10, 0, 0, 1), 1};
    int n = wccp_build_redirect_assign(buf, sizeof(buf), &ra);
    cr_assert(n > 0);
    cr_assert_eq(wccp_parse(buf, (size_t)n, NULL, &out), WCCP_OK);
    cr_assert_arr_eq(out.assign.buckets, ra.assign.buckets, WCCP_BUCKETS);
    cr_assert_eq(out.assign.n_caches, 3);
    cr_assert_eq(out.assign.caches[2], IP(10, 0, 0, 3));
    cr_assert_eq(out.assign.buckets[255], 2);                /* 128 to 10.0.0.3 */
    cr_assert_eq(out.assign.buckets[128], 2);
    cr_assert_eq(out.assign.buckets[127], 1);
}
