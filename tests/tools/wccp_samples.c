/*
 * tests/tools/wccp_samples.c: the sample WCCPv2 messages (see wccp_samples.h).
 * Router 192.168.10.1, caches 10.0.0.9 (weight 1) and 10.0.0.10 (weight 3).
 */
#include "wccp_samples.h"

#include <string.h>

#include "../../proxy/wccp_assign.h"
#include "../../proxy/wccp_pkt.h"

#define ROUTER  0xc0a80a01u   /* 192.168.10.1 */
#define CACHE_A 0x0a000009u   /* 10.0.0.9 */
#define CACHE_B 0x0a00000au   /* 10.0.0.10 */

static const wccp_member_t members[2] = {{CACHE_B, 3}, {CACHE_A, 1}};
static wccp_mvlist_t mask_list;   /* the mask assignment of the two caches */

static wccp_service_t
service_std(void)
{
    return (wccp_service_t){.type = WCCP_SVC_STANDARD, .id = WCCP_SVC_WEB_CACHE};
}

static wccp_service_t
service_https(void)
{
    return (wccp_service_t){
        .type = WCCP_SVC_DYNAMIC, .id = 70, .priority = 240, .protocol = 6,
        .flags = WCCP_SF_SRC_IP_HASH | WCCP_SF_PORTS_DEFINED, .ports = {443, 8443}};
}

static void
hash_bitmap(wccp_cache_id_t *c, int from, int to)
{
    for (int b = from; b < to; b++)
        c->buckets[b / 8] |= (uint8_t)(1u << (b % 8));
}

static int
hia(int variant, const char *pw, uint8_t *buf, size_t cap, wccp_sample_info_t *info)
{
    static wccp_hia_t m;

    memset(&m, 0, sizeof(m));
    m.password = pw;
    m.cache.ip = CACHE_A;
    m.cache.weight = 1;
    m.change_number = 3;
    m.n_routers = 1;
    m.routers[0] = (wccp_router_id_t){ROUTER, 17};
    m.n_caches = 2;
    m.caches[0] = CACHE_A;
    m.caches[1] = CACHE_B;
    if (variant == 0) {
        info->name = "hia_std_hash";
        m.service = service_std();
        hash_bitmap(&m.cache, 0, 64);
    } else {
        info->name = "hia_dyn_mask_caps_shutdown";
        m.service = service_https();
        m.cache.flags = WCCP_WCF_MASK;
        m.cache.mv = &mask_list;
        m.caps = (wccp_caps_t){true, WCCP_FWD_GRE, WCCP_ASSIGN_HASH | WCCP_ASSIGN_MASK, WCCP_RET_GRE};
        m.shutdown = true;
    }
    info->type = WCCP_HERE_I_AM;
    info->service_id = m.service.id;
    return wccp_build_here_i_am(buf, cap, &m);
}

static int
isy(int variant, const char *pw, uint8_t *buf, size_t cap, wccp_sample_info_t *info)
{
    static wccp_isy_t m;

    memset(&m, 0, sizeof(m));
    m.password = pw;
    m.router = (wccp_router_id_t){ROUTER, 18};
    m.sent_to = ROUTER;
    m.n_received_from = 2;
    m.received_from[0] = CACHE_A;
    m.received_from[1] = CACHE_B;
    m.member_change = 5;
    m.key = (wccp_assign_key_t){CACHE_A, 2};
    m.n_routers = 1;
    m.routers[0] = ROUTER;
    m.n_caches = 2;
    m.caches[0] = (wccp_cache_id_t){.ip = CACHE_A, .weight = 1};
    m.caches[1] = (wccp_cache_id_t){.ip = CACHE_B, .weight = 3};
    m.caps = (wccp_caps_t){true, WCCP_FWD_GRE | WCCP_FWD_L2, WCCP_ASSIGN_HASH, WCCP_RET_GRE};
    if (variant == 0) {
        info->name = "isy_std_hash";
        m.service = service_std();
        hash_bitmap(&m.caches[0], 0, 64);
        hash_bitmap(&m.caches[1], 64, 256);
    } else {
        info->name = "isy_dyn_mask_map_ack";
        m.service = service_https();
        m.caps.assign = WCCP_ASSIGN_MASK;
        for (int i = 0; i < 2; i++) {
            m.caches[i].flags = WCCP_WCF_MASK;
            m.caches[i].mv = &mask_list;
        }
        m.map = &mask_list;
        m.shutdown_ack = CACHE_B;
    }
    info->type = WCCP_I_SEE_YOU;
    info->service_id = m.service.id;
    return wccp_build_i_see_you(buf, cap, &m);
}

static int
ra(int variant, const char *pw, uint8_t *buf, size_t cap, wccp_sample_info_t *info)
{
    static wccp_ra_t m;

    memset(&m, 0, sizeof(m));
    m.password = pw;
    m.service = variant == 0 ? service_std() : service_https();
    if (wccp_assign_hash(members, 2, &m.assign) != WCCP_OK)
        return WCCP_E_INVALID;
    m.assign.key = (wccp_assign_key_t){CACHE_A, 2};
    m.assign.n_routers = 1;
    m.assign.routers[0] = (wccp_router_assign_t){ROUTER, 18, 5};
    static const char *const names[] = {"ra_hash", "ra_alt_hash", "ra_alt_mask"};
    info->name = names[variant];
    if (variant == 1)
        m.assign.alternate = true;
    if (variant == 2) {
        m.assign.form = WCCP_AF_MASK;
        m.assign.alternate = true;
        m.assign.mv = &mask_list;
    }
    info->type = WCCP_REDIRECT_ASSIGN;
    info->service_id = m.service.id;
    return wccp_build_redirect_assign(buf, cap, &m);
}

static int
rq(const char *pw, uint8_t *buf, size_t cap, wccp_sample_info_t *info)
{
    wccp_rq_t m = {
        .password = pw, .service = service_https(),
        .router = {ROUTER, 19}, .sent_to = ROUTER, .target = CACHE_B};

    info->name = "rq";
    info->type = WCCP_REMOVAL_QUERY;
    info->service_id = m.service.id;
    return wccp_build_removal_query(buf, cap, &m);
}

int
wccp_sample(int i, bool md5, uint8_t *buf, size_t cap, wccp_sample_info_t *info)
{
    const char *pw = md5 ? WCCP_SAMPLE_PASSWORD : NULL;
    wccp_mask_t mask = wccp_mask_default(WCCP_SF_SRC_IP_HASH);

    if (wccp_assign_mask(members, 2, &mask, &mask_list) != WCCP_OK)
        return WCCP_E_INVALID;
    switch (i) {
    case 0: case 1: return hia(i, pw, buf, cap, info);
    case 2: case 3: return isy(i - 2, pw, buf, cap, info);
    case 4: case 5: case 6: return ra(i - 4, pw, buf, cap, info);
    case 7: return rq(pw, buf, cap, info);
    default: return WCCP_E_INVALID;
    }
}
