/*
 * proxy/wccp_view.c: one service group's view, pure (see wccp_view.h).
 */
#include "wccp_view.h"

#include <string.h>

const char *
wccp_router_state_str(enum wccp_router_state s)
{
    switch (s) {
    case WCCP_RS_SEEKING: return "seeking";
    case WCCP_RS_CONNECTED: return "connected";
    case WCCP_RS_LOST: return "lost";
    }
    return "unknown";
}

const char *
wccp_service_state_str(enum wccp_service_state s)
{
    switch (s) {
    case WCCP_SS_SEEKING: return "seeking";
    case WCCP_SS_NO_METHOD: return "no-common-method";
    case WCCP_SS_MEMBER: return "member";
    case WCCP_SS_WAITING: return "designated-waiting";
    case WCCP_SS_DESIGNATED: return "designated";
    }
    return "unknown";
}

void
wccp_view_init(wccp_view_t *v, const wccp_view_config_t *c)
{
    memset(v, 0, sizeof(*v));
    v->c = *c;
    v->c.routers = NULL;
    v->n_routers = c->n_routers < WCCP_ROUTERS_MAX ? c->n_routers : WCCP_ROUTERS_MAX;
    for (size_t i = 0; i < v->n_routers; i++) {
        v->routers[i].addr = c->routers[i];
        v->routers[i].id = c->routers[i];
    }
    v->change_number = 1;
}

int
wccp_view_router(const wccp_view_t *v, uint32_t addr)
{
    for (size_t i = 0; i < v->n_routers; i++)
        if (v->routers[i].addr == addr)
            return (int)i;
    return -1;
}

static unsigned
popcount_buckets(const uint8_t *bits)
{
    unsigned n = 0;

    for (size_t i = 0; i < WCCP_BUCKETS / 8; i++)
        n += (unsigned)__builtin_popcount(bits[i]);
    return n;
}

static uint32_t
mask_share(const wccp_mvlist_t *l, uint32_t self)
{
    uint32_t n = 0;

    for (uint32_t i = 0; i < l->n_values && i < WCCP_MV_VALUES_MAX; i++)
        if (l->values[i].cache_ip == self)
            n++;
    return n;
}

/* What the router shows for us: our identity element's buckets or mask
 * values, or the values of an Assignment Map. */
static uint32_t
share_in(const wccp_msg_t *m, uint32_t self)
{
    static _Thread_local wccp_mvlist_t l;

    if (m->components & (1u << WCCP_C_ASSIGN_MAP))
        return mask_share(&m->map, self);
    for (uint32_t i = 0; i < m->rview.n_caches; i++) {
        const wccp_cache_id_t *c = &m->rview.caches[i];
        if (c->ip != self)
            continue;
        if ((c->flags & WCCP_WCF_TYPE_BITS) == WCCP_WCF_MASK)
            return wccp_mvlist_parse(c->mv_wire, c->mv_wire_len, &l) == WCCP_OK
                       ? mask_share(&l, self) : 0;
        return popcount_buckets(c->buckets);
    }
    return 0;
}

static void
sort_members(wccp_member_t *m, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        wccp_member_t x = m[i];
        size_t k = i;
        while (k > 0 && m[k - 1].ip > x.ip) {
            m[k] = m[k - 1];
            k--;
        }
        m[k] = x;
    }
}

/* Whether what makes the view (membership, not the buckets) differs. */
static bool
router_view_differs(const wccp_vrouter_t *a, const wccp_vrouter_t *b)
{
    return a->state != b->state || a->member_change != b->member_change ||
           a->n_caches != b->n_caches ||
           memcmp(a->caches, b->caches, a->n_caches * sizeof(a->caches[0])) != 0;
}

/* The first preference every connected router accepts (0 if none). */
static uint32_t
negotiate(const wccp_view_t *v, const uint8_t *prefs, size_t n, size_t field)
{
    for (size_t p = 0; p < n; p++) {
        bool ok = true;
        size_t seen = 0;
        for (size_t r = 0; r < v->n_routers && ok; r++) {
            const wccp_vrouter_t *vr = &v->routers[r];
            uint32_t have;
            if (vr->state != WCCP_RS_CONNECTED)
                continue;
            seen++;
            have = field == 0 ? vr->caps.forward : field == 1 ? vr->caps.assign : vr->caps.ret;
            ok = (have & prefs[p]) != 0;
        }
        if (ok && seen > 0)
            return prefs[p];
    }
    return 0;
}

static void
renegotiate(wccp_view_t *v)
{
    v->forward = negotiate(v, v->c.forwarding, v->c.n_forwarding, 0);
    v->assign = negotiate(v, v->c.assignment, v->c.n_assignment, 1);
    v->ret = negotiate(v, v->c.ret, v->c.n_ret, 2);
}

static void
view_changed(wccp_view_t *v, int64_t now_ms)
{
    v->change_number++;
    v->changed_ms = now_ms;
    renegotiate(v);
}

int
wccp_view_isy(wccp_view_t *v, size_t r, const wccp_msg_t *m, int64_t now_ms)
{
    wccp_vrouter_t *vr, before;

    if (r >= v->n_routers)
        return -1;
    /* sent to us, or to a multicast group (224.0.0.0/4) */
    if (m->sent_to != 0 && m->sent_to != v->c.self && (m->sent_to >> 28) != 0xe)
        return -1;
    vr = &v->routers[r];
    before = *vr;
    vr->state = WCCP_RS_CONNECTED;
    vr->id = m->router.ip;
    vr->last_isy_ms = now_ms;
    vr->receive_id = m->router.receive_id;
    vr->member_change = m->rview.member_change;
    vr->key = m->rview.key;
    vr->caps = m->caps;
    vr->n_caches = 0;
    for (uint32_t i = 0; i < m->rview.n_caches && i < WCCP_CACHES_MAX; i++) {
        bool dup = false;
        for (uint32_t k = 0; k < vr->n_caches; k++)
            dup = dup || vr->caches[k].ip == m->rview.caches[i].ip;
        if (dup)
            continue;
        vr->caches[vr->n_caches].ip = m->rview.caches[i].ip;
        vr->caches[vr->n_caches].weight = m->rview.caches[i].weight;
        vr->n_caches++;
    }
    sort_members(vr->caches, vr->n_caches);
    vr->our_share = share_in(m, v->c.self);
    vr->isy_count++;
    if (router_view_differs(&before, vr) || memcmp(&before.caps, &vr->caps, sizeof(vr->caps))) {
        view_changed(v, now_ms);
        return 1;
    }
    return 0;
}

int
wccp_view_tick(wccp_view_t *v, int64_t now_ms)
{
    int64_t limit = (int64_t)v->c.interval_ms * WCCP_VIEW_SILENT_INTERVALS;
    int dropped = 0;

    for (size_t r = 0; r < v->n_routers; r++) {
        wccp_vrouter_t *vr = &v->routers[r];
        if (vr->state != WCCP_RS_CONNECTED || now_ms - vr->last_isy_ms < limit)
            continue;
        vr->state = WCCP_RS_LOST;
        vr->id = vr->addr;
        vr->receive_id = 0;
        vr->member_change = 0;
        vr->key = (wccp_assign_key_t){0, 0};
        vr->n_caches = 0;
        vr->our_share = 0;
        dropped++;
    }
    if (dropped > 0)
        view_changed(v, now_ms);
    return dropped;
}

size_t
wccp_view_connected(const wccp_view_t *v)
{
    size_t n = 0;

    for (size_t r = 0; r < v->n_routers; r++)
        n += v->routers[r].state == WCCP_RS_CONNECTED;
    return n;
}

size_t
wccp_view_caches(const wccp_view_t *v, wccp_member_t *out)
{
    const wccp_vrouter_t *first = NULL;
    size_t n = 0;

    for (size_t r = 0; r < v->n_routers && first == NULL; r++)
        if (v->routers[r].state == WCCP_RS_CONNECTED)
            first = &v->routers[r];
    if (first == NULL)
        return 0;
    for (uint32_t i = 0; i < first->n_caches; i++) {
        bool everywhere = true;
        for (size_t r = 0; r < v->n_routers && everywhere; r++) {
            const wccp_vrouter_t *vr = &v->routers[r];
            bool found = false;
            if (vr->state != WCCP_RS_CONNECTED || vr == first)
                continue;
            for (uint32_t k = 0; k < vr->n_caches && !found; k++)
                found = vr->caches[k].ip == first->caches[i].ip;
            everywhere = found;
        }
        if (everywhere)
            out[n++] = first->caches[i];
    }
    return n;   /* first->caches is in address order */
}

uint32_t
wccp_view_designated(const wccp_view_t *v)
{
    wccp_member_t m[WCCP_CACHES_MAX];
    uint32_t ips[WCCP_CACHES_MAX];
    size_t n = wccp_view_caches(v, m);
    int d;

    for (size_t i = 0; i < n; i++)
        ips[i] = m[i].ip;
    d = wccp_designated(ips, n);
    return d < 0 ? 0 : ips[d];
}

static bool
negotiated(const wccp_view_t *v)
{
    return v->forward != 0 && v->assign != 0 && v->ret != 0;
}

bool
wccp_view_assign_due(const wccp_view_t *v, int64_t now_ms)
{
    if (wccp_view_connected(v) == 0 || !negotiated(v) || wccp_view_designated(v) != v->c.self)
        return false;
    if (now_ms - v->changed_ms < (int64_t)v->c.interval_ms)
        return false;
    if (!v->assigned || v->assigned_view != v->change_number)
        return true;
    if (now_ms - v->assigned_ms < (int64_t)v->c.interval_ms)
        return false;
    for (size_t r = 0; r < v->n_routers; r++) {
        const wccp_vrouter_t *vr = &v->routers[r];
        if (vr->state == WCCP_RS_CONNECTED &&
            (vr->key.ip != v->c.self || vr->key.change_number != v->key_change))
            return true;
    }
    return false;
}

int64_t
wccp_view_assign_next_ms(const wccp_view_t *v, int64_t now_ms)
{
    int64_t stable, resend;

    if (wccp_view_connected(v) == 0 || !negotiated(v) || wccp_view_designated(v) != v->c.self)
        return INT64_MAX;
    stable = v->changed_ms + (int64_t)v->c.interval_ms;
    if (stable > now_ms)
        return stable;
    resend = v->assigned ? v->assigned_ms + (int64_t)v->c.interval_ms : stable;
    return resend > now_ms ? resend : INT64_MAX;
}

enum wccp_service_state
wccp_view_state(const wccp_view_t *v, int64_t now_ms)
{
    if (wccp_view_connected(v) == 0)
        return WCCP_SS_SEEKING;
    if (!negotiated(v))
        return WCCP_SS_NO_METHOD;
    if (wccp_view_designated(v) != v->c.self)
        return WCCP_SS_MEMBER;
    if (v->assigned && v->assigned_view == v->change_number)
        return WCCP_SS_DESIGNATED;
    (void)now_ms;
    return WCCP_SS_WAITING;
}

uint32_t
wccp_view_share(const wccp_view_t *v)
{
    if (wccp_view_state(v, 0) == WCCP_SS_DESIGNATED)
        return v->assigned_share;
    for (size_t r = 0; r < v->n_routers; r++)
        if (v->routers[r].state == WCCP_RS_CONNECTED)
            return v->routers[r].our_share;
    return 0;
}

int
wccp_view_assignment(wccp_view_t *v, bool without_self, int64_t now_ms,
                     wccp_assignment_t *out, wccp_mvlist_t *mv)
{
    wccp_member_t all[WCCP_CACHES_MAX], m[WCCP_CACHES_MAX];
    size_t n_all = wccp_view_caches(v, all), n = 0;
    uint32_t share = 0;
    int rc;

    for (size_t i = 0; i < n_all; i++)
        if (!(without_self && all[i].ip == v->c.self))
            m[n++] = all[i];
    if (n == 0)
        return WCCP_E_INVALID;
    memset(out, 0, sizeof(*out));
    if (v->assign == WCCP_ASSIGN_MASK) {
        wccp_mask_t mask = wccp_mask_default(v->c.service_flags);
        rc = wccp_assign_mask(m, n, &mask, mv);
        if (rc != WCCP_OK)
            return rc;
        out->form = WCCP_AF_MASK;
        out->alternate = true;
        out->mv = mv;
        share = mask_share(mv, v->c.self);
    } else {
        rc = wccp_assign_hash(m, n, out);
        if (rc != WCCP_OK)
            return rc;
        for (int b = 0; b < WCCP_BUCKETS; b++)
            if (out->buckets[b] != WCCP_BUCKET_NONE && out->caches[out->buckets[b]] == v->c.self)
                share++;
    }
    out->key = (wccp_assign_key_t){v->c.self, ++v->key_change};
    for (size_t r = 0; r < v->n_routers; r++) {
        const wccp_vrouter_t *vr = &v->routers[r];
        if (vr->state != WCCP_RS_CONNECTED)
            continue;
        out->routers[out->n_routers++] =
            (wccp_router_assign_t){vr->id, vr->receive_id, vr->member_change};
    }
    v->assigned = true;
    v->assigned_view = v->change_number;
    v->assigned_ms = now_ms;
    v->assigned_share = share;
    return WCCP_OK;
}

void
wccp_view_hia(const wccp_view_t *v, size_t r, wccp_hia_t *out)
{
    wccp_member_t m[WCCP_CACHES_MAX];
    size_t n = wccp_view_caches(v, m);
    const wccp_vrouter_t *to = r < v->n_routers ? &v->routers[r] : NULL;
    uint32_t fwd = 0, asg = 0, ret = 0;

    memset(out, 0, sizeof(*out));
    out->cache.ip = v->c.self;
    out->cache.weight = v->c.weight;
    out->change_number = v->change_number;
    for (size_t i = 0; i < v->n_routers; i++) {
        const wccp_vrouter_t *vr = &v->routers[i];
        if (vr->state == WCCP_RS_CONNECTED)
            out->routers[out->n_routers++] = (wccp_router_id_t){vr->id, vr->receive_id};
    }
    for (size_t i = 0; i < n; i++)
        out->caches[out->n_caches++] = m[i].ip;
    /* Capabilities only to a router that sent its own (what routers expect) */
    if (to != NULL && to->caps.present) {
        for (size_t i = 0; i < v->c.n_forwarding; i++)
            fwd |= v->c.forwarding[i];
        for (size_t i = 0; i < v->c.n_assignment; i++)
            asg |= v->c.assignment[i];
        for (size_t i = 0; i < v->c.n_ret; i++)
            ret |= v->c.ret[i];
        out->caps = (wccp_caps_t){true, v->forward ? v->forward : fwd,
                                  v->assign ? v->assign : asg, v->ret ? v->ret : ret};
    }
}
