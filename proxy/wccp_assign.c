/*
 * proxy/wccp_assign.c: designated cache and bucket / mask-value sharing (see
 * wccp_assign.h). Shares use the largest-remainder method so that 1:3 gives
 * exactly 64/192 and the rounding never depends on input order.
 */
#include "wccp_assign.h"

#include <string.h>

int
wccp_designated(const uint32_t *ips, size_t n)
{
    int best = -1;

    for (size_t i = 0; i < n; i++)
        if (best < 0 || ips[i] < ips[best])
            best = (int)i;
    return best;
}

/* Copies caches into sorted[] by address; WCCP_E_INVALID on a duplicate. */
static int
sort_members(const wccp_member_t *caches, size_t n, wccp_member_t sorted[WCCP_CACHES_MAX])
{
    if (n > WCCP_CACHES_MAX)
        return WCCP_E_INVALID;
    for (size_t i = 0; i < n; i++) {           /* insertion sort, n <= 32 */
        size_t j = i;
        while (j > 0 && sorted[j - 1].ip > caches[i].ip) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        if (j > 0 && sorted[j - 1].ip == caches[i].ip)
            return WCCP_E_INVALID;
        sorted[j] = caches[i];
    }
    return WCCP_OK;
}

/*
 * count[i] = slots for sorted cache i out of `slots`, in proportion to the
 * weights (all equal when they are all 0). Largest remainder, ties to the
 * lower index.
 */
static void
shares(const wccp_member_t *m, size_t n, uint32_t slots, uint32_t count[WCCP_CACHES_MAX])
{
    uint64_t total = 0, rem[WCCP_CACHES_MAX];
    uint32_t given = 0;

    for (size_t i = 0; i < n; i++)
        total += m[i].weight;
    for (size_t i = 0; i < n; i++) {
        uint64_t w = total ? m[i].weight : 1, t = total ? total : n;
        count[i] = (uint32_t)(w * slots / t);
        rem[i] = w * slots % t;
        given += count[i];
    }
    while (given < slots) {                   /* at most n - 1 rounds */
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (rem[i] > rem[best])
                best = i;
        count[best]++;
        rem[best] = 0;
        given++;
    }
}

int
wccp_assign_hash(const wccp_member_t *caches, size_t n, wccp_assignment_t *a)
{
    wccp_member_t sorted[WCCP_CACHES_MAX];
    uint32_t count[WCCP_CACHES_MAX];

    if (sort_members(caches, n, sorted) != WCCP_OK)
        return WCCP_E_INVALID;
    a->form = WCCP_AF_HASH;
    a->n_caches = (uint32_t)n;
    memset(a->buckets, WCCP_BUCKET_NONE, sizeof(a->buckets));
    if (n == 0)
        return WCCP_OK;
    shares(sorted, n, WCCP_BUCKETS, count);
    uint32_t b = 0;
    for (size_t i = 0; i < n; i++) {
        a->caches[i] = sorted[i].ip;
        for (uint32_t k = 0; k < count[i]; k++)
            a->buckets[b++] = (uint8_t)i;
    }
    return WCCP_OK;
}

wccp_mask_t
wccp_mask_default(uint32_t service_flags)
{
    wccp_mask_t m = {0};

    if (service_flags & WCCP_SF_SRC_IP_HASH)
        m.src_ip = WCCP_MASK_DEFAULT;
    else
        m.dst_ip = WCCP_MASK_DEFAULT;
    return m;
}

unsigned
wccp_mask_bits(const wccp_mask_t *mask)
{
    return (unsigned)(__builtin_popcount(mask->src_ip) + __builtin_popcount(mask->dst_ip) +
                      __builtin_popcount(mask->src_port) + __builtin_popcount(mask->dst_port));
}

/* Spreads the low bits of v over the set bits of mask, lowest first; returns
 * the bits of v not used. */
static uint32_t
deposit(uint32_t v, uint32_t mask, uint32_t *out)
{
    *out = 0;
    for (uint32_t bit = 1; bit != 0 && mask != 0; bit <<= 1) {
        if (mask & bit) {
            if (v & 1)
                *out |= bit;
            v >>= 1;
            mask &= ~bit;
        }
    }
    return v;
}

int
wccp_assign_mask(const wccp_member_t *caches, size_t n, const wccp_mask_t *mask,
                 wccp_mvlist_t *out)
{
    wccp_member_t sorted[WCCP_CACHES_MAX];
    uint32_t count[WCCP_CACHES_MAX];
    unsigned bits = wccp_mask_bits(mask);

    if (n == 0 || bits == 0 || bits > WCCP_MASK_BITS_MAX ||
        sort_members(caches, n, sorted) != WCCP_OK)
        return WCCP_E_INVALID;
    uint32_t slots = 1u << bits;
    shares(sorted, n, slots, count);

    memset(out, 0, sizeof(*out));
    out->n_sets = 1;
    out->sets[0].mask = *mask;
    out->sets[0].first = 0;
    out->sets[0].count = (uint16_t)slots;
    out->n_values = slots;
    size_t c = 0;
    uint32_t used = 0;
    for (uint32_t i = 0; i < slots; i++) {
        wccp_value_t *v = &out->values[i];
        uint32_t rest = i, sp, dp;
        while (used == count[c]) {   /* next cache with slots left */
            c++;
            used = 0;
        }
        rest = deposit(rest, mask->src_ip, &v->src_ip);
        rest = deposit(rest, mask->dst_ip, &v->dst_ip);
        rest = deposit(rest, mask->src_port, &sp);
        deposit(rest, mask->dst_port, &dp);
        v->src_port = (uint16_t)sp;
        v->dst_port = (uint16_t)dp;
        v->cache_ip = sorted[c].ip;
        used++;
    }
    return WCCP_OK;
}
