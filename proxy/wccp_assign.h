/*
 * proxy/wccp_assign.h: what the designated web cache decides for a service
 * group: who is designated (the lowest cache address), and how the 256 hash
 * buckets or the 2^n mask values are shared between the caches in proportion
 * to their weights. Pure functions: deterministic for a given set of caches
 * whatever order they are given in (caches are ordered by address), no I/O.
 *
 * It does not build or send the Redirect_Assign (wccp_pkt.h does the former,
 * the agent the latter) and knows nothing of views or timers. Addresses are
 * IPv4 in host order (see wccp_pkt.h).
 */
#ifndef MUS_PROXY_WCCP_ASSIGN_H
#define MUS_PROXY_WCCP_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "wccp_pkt.h"

#define WCCP_MASK_BITS_MAX  8        /* 2^8 = 256 values = WCCP_MV_VALUES_MAX */
#define WCCP_MASK_DEFAULT   0x1741u  /* Squid's fixed mask: 6 bits, 64 values */

typedef struct wccp_member {
    uint32_t ip;
    uint16_t weight;     /* share; 0 = none unless every weight is 0 */
} wccp_member_t;

/*
 * Index of the designated cache among ips[0..n): the lowest address compared
 * as a number (10.0.0.9 < 10.0.0.10). -1 when n == 0.
 */
int wccp_designated(const uint32_t *ips, size_t n);

/*
 * Hash assignment for caches[0..n) (n <= WCCP_CACHES_MAX, addresses distinct).
 * Writes the caches in address order to a->caches (a->n_caches = n) and
 * a->buckets[b] = index into that list: each cache gets a contiguous run of
 * buckets, in address order, of length 256 * weight / total rounded by the
 * largest remainder (ties to the lower address). When every weight is 0 the
 * caches share equally; n == 0 leaves every bucket WCCP_BUCKET_NONE. Sets
 * a->form = WCCP_AF_HASH; key and routers are left to the caller.
 * Returns WCCP_OK or WCCP_E_INVALID (too many caches, a duplicate address).
 */
int wccp_assign_hash(const wccp_member_t *caches, size_t n, wccp_assignment_t *a);

/* The default mask: WCCP_MASK_DEFAULT on the source address when the service
 * hashes on the source (WCCP_SF_SRC_IP_HASH), else on the destination. */
wccp_mask_t wccp_mask_default(uint32_t service_flags);

/* Number of bits set in a mask (all four fields). */
unsigned wccp_mask_bits(const wccp_mask_t *mask);

/*
 * Mask assignment: one mask/value set with all 2^bits values of mask (value
 * i spreads the bits of i over the mask's bits, source address first, lowest
 * bit first), each value given a cache as wccp_assign_hash shares buckets.
 * Returns WCCP_OK, or WCCP_E_INVALID (no cache, too many, a duplicate, a mask
 * of 0 or more than WCCP_MASK_BITS_MAX bits).
 */
int wccp_assign_mask(const wccp_member_t *caches, size_t n, const wccp_mask_t *mask,
                     wccp_mvlist_t *out);

#endif
