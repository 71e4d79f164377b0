/*
 * tests/fuzz/fuzz_wccp_pkt.c: libFuzzer target for wccp_parse() (with no
 * password and with the sample password) and wccp_mvlist_parse(). Any input
 * must be parsed or refused without a crash or over-read; a message that
 * parses is built again from the parsed view with the matching builder, and
 * that message must parse to the same main fields (a Redirect_Assign that
 * carries only an Assignment Map has no builder and is not rebuilt).
 * Seed corpus: tests/fuzz/corpus/wccp_pkt/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proxy/wccp_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PASSWORD "s3cret"

static wccp_msg_t a, b;
static uint8_t out[WCCP_MSG_MAX];
static wccp_mvlist_t own_mv, cache_mv[WCCP_CACHES_MAX];
static wccp_hia_t hia;
static wccp_isy_t isy;
static wccp_ra_t ra;

static void
check(bool ok)
{
    if (!ok)
        abort();
}

/* a parsed identity made buildable: its mask list parsed into mv */
static wccp_cache_id_t
buildable(const wccp_cache_id_t *c, wccp_mvlist_t *mv)
{
    wccp_cache_id_t r = *c;

    if (c->flags & WCCP_WCF_MASK) {
        check(wccp_mvlist_parse(c->mv_wire, c->mv_wire_len, mv) == WCCP_OK);
        r.mv = mv;
    }
    return r;
}

static void
same_cache(const wccp_cache_id_t *x, const wccp_cache_id_t *y)
{
    check(x->ip == y->ip && x->hash_rev == y->hash_rev && x->flags == y->flags &&
          x->weight == y->weight && x->status == y->status);
    if (x->flags & WCCP_WCF_MASK)
        check(x->mv_wire_len == y->mv_wire_len &&
              memcmp(x->mv_wire, y->mv_wire, x->mv_wire_len) == 0);
    else
        check(memcmp(x->buckets, y->buckets, sizeof(x->buckets)) == 0);
}

static void
same_mvlist(const wccp_mvlist_t *x, const wccp_mvlist_t *y)
{
    check(x->n_sets == y->n_sets && x->n_values == y->n_values);
    check(memcmp(x->values, y->values, x->n_values * sizeof(x->values[0])) == 0);
}

static int
rebuild(const wccp_msg_t *m, const char *pw)
{
    switch (m->type) {
    case WCCP_HERE_I_AM:
        memset(&hia, 0, sizeof(hia));
        hia.password = pw;
        hia.service = m->service;
        hia.cache = buildable(&m->cache, &own_mv);
        hia.change_number = m->wcview.change_number;
        hia.n_routers = m->wcview.n_routers;
        memcpy(hia.routers, m->wcview.routers, sizeof(hia.routers));
        hia.n_caches = m->wcview.n_caches;
        memcpy(hia.caches, m->wcview.caches, sizeof(hia.caches));
        hia.caps = m->caps;
        return wccp_build_here_i_am(out, sizeof(out), &hia);
    case WCCP_I_SEE_YOU:
        memset(&isy, 0, sizeof(isy));
        isy.password = pw;
        isy.service = m->service;
        isy.router = m->router;
        isy.sent_to = m->sent_to;
        isy.n_received_from = m->n_received_from;
        memcpy(isy.received_from, m->received_from, sizeof(isy.received_from));
        isy.member_change = m->rview.member_change;
        isy.key = m->rview.key;
        isy.n_routers = m->rview.n_routers;
        memcpy(isy.routers, m->rview.routers, sizeof(isy.routers));
        isy.n_caches = m->rview.n_caches;
        for (uint32_t i = 0; i < m->rview.n_caches; i++)
            isy.caches[i] = buildable(&m->rview.caches[i], &cache_mv[i]);
        isy.caps = m->caps;
        if (m->components & (1u << WCCP_C_ASSIGN_MAP))
            isy.map = &m->map;
        return wccp_build_i_see_you(out, sizeof(out), &isy);
    case WCCP_REDIRECT_ASSIGN:
        if (!(m->components & (1u << WCCP_C_ASSIGN | 1u << WCCP_C_ALT_ASSIGN)))
            return 0;
        memset(&ra, 0, sizeof(ra));
        ra.password = pw;
        ra.service = m->service;
        ra.assign = m->assign;
        ra.assign.mv = &m->assign.mask;
        return wccp_build_redirect_assign(out, sizeof(out), &ra);
    case WCCP_REMOVAL_QUERY: {
        wccp_rq_t q = {.password = pw, .service = m->service, .router = m->query.router,
                       .sent_to = m->query.sent_to, .target = m->query.target};
        return wccp_build_removal_query(out, sizeof(out), &q);
    }
    default:
        abort();
    }
}

static void
same_msg(const wccp_msg_t *x, const wccp_msg_t *y)
{
    check(x->type == y->type && x->security == y->security &&
          x->service.type == y->service.type && x->service.id == y->service.id);
    if (x->service.type == WCCP_SVC_DYNAMIC)
        check(memcmp(&x->service, &y->service, sizeof(x->service)) == 0);
    /* Capabilities are rebuilt only where the builders send them (Here_I_Am,
     * I_See_You); the parser tolerates them in the other messages */
    if (x->type == WCCP_HERE_I_AM || x->type == WCCP_I_SEE_YOU)
        check(x->caps.present == y->caps.present && x->caps.forward == y->caps.forward &&
              x->caps.assign == y->caps.assign && x->caps.ret == y->caps.ret);
    switch (x->type) {
    case WCCP_HERE_I_AM:
        same_cache(&x->cache, &y->cache);
        check(memcmp(&x->wcview, &y->wcview, sizeof(x->wcview)) == 0);
        break;
    case WCCP_I_SEE_YOU:
        check(x->router.ip == y->router.ip && x->router.receive_id == y->router.receive_id &&
              x->sent_to == y->sent_to && x->n_received_from == y->n_received_from &&
              x->rview.member_change == y->rview.member_change &&
              x->rview.key.ip == y->rview.key.ip && x->rview.n_routers == y->rview.n_routers &&
              x->rview.n_caches == y->rview.n_caches);
        for (uint32_t i = 0; i < x->rview.n_caches; i++)
            same_cache(&x->rview.caches[i], &y->rview.caches[i]);
        same_mvlist(&x->map, &y->map);
        break;
    case WCCP_REDIRECT_ASSIGN:
        check(x->assign.form == y->assign.form && x->assign.alternate == y->assign.alternate &&
              x->assign.key.ip == y->assign.key.ip &&
              x->assign.key.change_number == y->assign.key.change_number &&
              x->assign.n_routers == y->assign.n_routers &&
              memcmp(x->assign.routers, y->assign.routers,
                     x->assign.n_routers * sizeof(x->assign.routers[0])) == 0);
        if (x->assign.form == WCCP_AF_HASH)
            check(x->assign.n_caches == y->assign.n_caches &&
                  memcmp(x->assign.buckets, y->assign.buckets, WCCP_BUCKETS) == 0);
        else
            same_mvlist(&x->assign.mask, &y->assign.mask);
        break;
    case WCCP_REMOVAL_QUERY:
        check(memcmp(&x->query, &y->query, sizeof(x->query)) == 0);
        break;
    }
}

static void
round_trip(const uint8_t *data, size_t size, const char *pw)
{
    if (wccp_parse(data, size, pw, &a) != WCCP_OK)
        return;
    int n = rebuild(&a, pw);
    if (n == 0)
        return;
    check(n > 0);
    check(wccp_parse(out, (size_t)n, pw, &b) == WCCP_OK);
    same_msg(&a, &b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    round_trip(data, size, NULL);
    round_trip(data, size, PASSWORD);
    wccp_mvlist_parse(data, size, &own_mv);
    return 0;
}
