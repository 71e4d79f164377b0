/*
 * proxy/wccp_parse.c: the strict WCCPv2 parser (wccp_parse, wccp_mvlist_parse;
 * see wccp_pkt.h). Each component must be consumed exactly by its fields;
 * each count is checked against the bytes left and the WCCP_*_MAX limits
 * before anything is read. Unknown component types are skipped; the rev1
 * Address Table (IPv6) is refused. No I/O, no allocation.
 */
#include "wccp_pkt.h"
#include "wccp_pkt_int.h"

#include <string.h>

/* A bounded reader over one item: every get checks the bytes left. */
typedef struct rd {
    const uint8_t *p;
    size_t len, off;
} rd_t;

static bool
rd_has(const rd_t *r, size_t n)
{
    return r->len - r->off >= n;
}

static size_t
rd_left(const rd_t *r)
{
    return r->len - r->off;
}

static bool
get16(rd_t *r, uint16_t *v)
{
    if (!rd_has(r, 2))
        return false;
    *v = wccp_get16(r->p + r->off);
    r->off += 2;
    return true;
}

static bool
get32(rd_t *r, uint32_t *v)
{
    if (!rd_has(r, 4))
        return false;
    *v = wccp_get32(r->p + r->off);
    r->off += 4;
    return true;
}

static bool
get_bytes(rd_t *r, void *out, size_t n)
{
    if (!rd_has(r, n))
        return false;
    memcpy(out, r->p + r->off, n);
    r->off += n;
    return true;
}

/* A count n of items of `each` bytes: within max and within the bytes left. */
static int
get_count(rd_t *r, uint32_t *n, uint32_t max, size_t each)
{
    if (!get32(r, n))
        return WCCP_E_COMPONENT;
    if (*n > max)
        return WCCP_E_TOO_MANY;
    if (rd_left(r) / each < *n)
        return WCCP_E_COMPONENT;
    return WCCP_OK;
}

#define TRY(expr) do { int rc_ = (expr); if (rc_ != WCCP_OK) return rc_; } while (0)
#define NEED(expr) do { if (!(expr)) return WCCP_E_COMPONENT; } while (0)

/* ---- elements ------------------------------------------------------------ */

#define MASK_ELEM_LEN   12
#define VALUE_ELEM_LEN  16

/* Mask/value set list at r; out may be NULL (validate only). */
static int
mvlist_read(rd_t *r, wccp_mvlist_t *out)
{
    uint32_t n_sets, total = 0;

    TRY(get_count(r, &n_sets, WCCP_MVSETS_MAX, MASK_ELEM_LEN + 4));
    if (out != NULL)
        out->n_sets = n_sets;
    for (uint32_t s = 0; s < n_sets; s++) {
        wccp_mask_t m;
        uint32_t n_vals;
        NEED(get32(r, &m.src_ip) && get32(r, &m.dst_ip) && get16(r, &m.src_port) &&
             get16(r, &m.dst_port));
        TRY(get_count(r, &n_vals, WCCP_MV_VALUES_MAX, VALUE_ELEM_LEN));
        if (n_vals > WCCP_MV_VALUES_MAX - total)
            return WCCP_E_TOO_MANY;
        if (out != NULL) {
            out->sets[s].mask = m;
            out->sets[s].first = (uint16_t)total;
            out->sets[s].count = (uint16_t)n_vals;
        }
        for (uint32_t i = 0; i < n_vals; i++) {
            wccp_value_t v;
            NEED(get32(r, &v.src_ip) && get32(r, &v.dst_ip) && get16(r, &v.src_port) &&
                 get16(r, &v.dst_port) && get32(r, &v.cache_ip));
            if (out != NULL)
                out->values[total + i] = v;
        }
        total += n_vals;
    }
    if (out != NULL)
        out->n_values = total;
    return WCCP_OK;
}

int
wccp_mvlist_parse(const uint8_t *p, size_t len, wccp_mvlist_t *out)
{
    rd_t r = {p, len, 0};

    TRY(mvlist_read(&r, out));
    return r.off == len ? WCCP_OK : WCCP_E_COMPONENT;
}

/* Web-Cache Identity element (hash or mask form). */
static int
cache_id_read(rd_t *r, wccp_cache_id_t *c)
{
    memset(c, 0, sizeof(*c));
    NEED(get32(r, &c->ip) && get16(r, &c->hash_rev) && get16(r, &c->flags));
    switch (c->flags & WCCP_WCF_TYPE_BITS) {
    case 0:
        NEED(get_bytes(r, c->buckets, sizeof(c->buckets)));
        break;
    case WCCP_WCF_MASK: {
        size_t start = r->off;
        TRY(mvlist_read(r, NULL));
        c->mv_wire = r->p + start;
        c->mv_wire_len = (uint16_t)(r->off - start);   /* < WCCP_MSG_MAX */
        break;
    }
    default:
        return WCCP_E_UNSUPPORTED;   /* rev1 "not present" / "extended" data */
    }
    NEED(get16(r, &c->weight) && get16(r, &c->status));
    return WCCP_OK;
}

/* Assignment key, the router assignment elements */
static int
router_assigns_read(rd_t *r, wccp_assignment_t *a)
{
    NEED(get32(r, &a->key.ip) && get32(r, &a->key.change_number));
    TRY(get_count(r, &a->n_routers, WCCP_ROUTERS_MAX, 12));
    for (uint32_t i = 0; i < a->n_routers; i++)
        NEED(get32(r, &a->routers[i].ip) && get32(r, &a->routers[i].receive_id) &&
             get32(r, &a->routers[i].change_number));
    return WCCP_OK;
}

/* Cache list and 256 buckets, each an index into that list or unassigned */
static int
hash_table_read(rd_t *r, wccp_assignment_t *a)
{
    TRY(get_count(r, &a->n_caches, WCCP_CACHES_MAX, 4));
    for (uint32_t i = 0; i < a->n_caches; i++)
        NEED(get32(r, &a->caches[i]));
    NEED(get_bytes(r, a->buckets, WCCP_BUCKETS));
    for (int b = 0; b < WCCP_BUCKETS; b++)
        if (a->buckets[b] != WCCP_BUCKET_NONE && (a->buckets[b] & 0x7f) >= a->n_caches)
            return WCCP_E_COMPONENT;
    return WCCP_OK;
}

/* ---- components ---------------------------------------------------------- */

static int
service_read(rd_t *r, wccp_service_t *s)
{
    uint8_t head[4];

    NEED(get_bytes(r, head, 4) && get32(r, &s->flags));
    s->type = head[0];
    s->id = head[1];
    s->priority = head[2];
    s->protocol = head[3];
    for (int i = 0; i < WCCP_PORTS_MAX; i++)
        NEED(get16(r, &s->ports[i]));
    if (s->type != WCCP_SVC_STANDARD && s->type != WCCP_SVC_DYNAMIC)
        return WCCP_E_COMPONENT;
    return WCCP_OK;
}

static int
caps_read(rd_t *r, wccp_caps_t *c)
{
    uint32_t seen = 0;

    c->present = true;
    for (int n = 0; rd_left(r) > 0; n++) {
        uint16_t type, len;
        uint32_t v;
        if (n == WCCP_CAPS_MAX)
            return WCCP_E_TOO_MANY;
        NEED(get16(r, &type) && get16(r, &len) && rd_has(r, len) && type != 0);
        if (type > 3) {
            r->off += len;          /* rev1 Transmit_t, Timer_scale, ... */
            continue;
        }
        if (len != 4 || (seen & (1u << type)))
            return WCCP_E_COMPONENT;
        seen |= 1u << type;
        NEED(get32(r, &v));
        if (type == 1)
            c->forward = v;
        else if (type == 2)
            c->assign = v;
        else
            c->ret = v;
    }
    return WCCP_OK;
}

static int
command_read(rd_t *r, wccp_msg_t *m)
{
    while (rd_left(r) > 0) {
        uint16_t type, len;
        NEED(get16(r, &type) && get16(r, &len) && rd_has(r, len) && type != WCCP_CMD_NONE);
        if (type == WCCP_CMD_SHUTDOWN || type == WCCP_CMD_SHUTDOWN_ACK) {
            if (len != 4)
                return WCCP_E_COMPONENT;
            NEED(get32(r, &m->cmd_ip));
            m->cmd = type;
        } else {
            r->off += len;
        }
    }
    return WCCP_OK;
}

static int
security_read(rd_t *r, wccp_msg_t *m, size_t comp_off, size_t *dig_off)
{
    NEED(get32(r, &m->security));
    if (m->security == WCCP_SEC_MD5) {
        NEED(rd_has(r, WCCP_MD5_LEN));
        *dig_off = comp_off + r->off;
        r->off += WCCP_MD5_LEN;
    } else if (m->security != WCCP_SEC_NONE) {
        return WCCP_E_SECURITY;
    }
    return WCCP_OK;
}

static int
component_read(uint16_t type, rd_t *r, wccp_msg_t *m, size_t comp_off, size_t *dig_off)
{
    switch (type) {
    case WCCP_C_SECURITY:
        return security_read(r, m, comp_off, dig_off);
    case WCCP_C_SERVICE:
        return service_read(r, &m->service);
    case WCCP_C_ROUTER_ID:
        NEED(get32(r, &m->router.ip) && get32(r, &m->router.receive_id) &&
             get32(r, &m->sent_to));
        TRY(get_count(r, &m->n_received_from, WCCP_CACHES_MAX, 4));
        for (uint32_t i = 0; i < m->n_received_from; i++)
            NEED(get32(r, &m->received_from[i]));
        return WCCP_OK;
    case WCCP_C_WC_ID:
        return cache_id_read(r, &m->cache);
    case WCCP_C_ROUTER_VIEW:
        NEED(get32(r, &m->rview.member_change) && get32(r, &m->rview.key.ip) &&
             get32(r, &m->rview.key.change_number));
        TRY(get_count(r, &m->rview.n_routers, WCCP_ROUTERS_MAX, 4));
        for (uint32_t i = 0; i < m->rview.n_routers; i++)
            NEED(get32(r, &m->rview.routers[i]));
        TRY(get_count(r, &m->rview.n_caches, WCCP_CACHES_MAX, 8));
        for (uint32_t i = 0; i < m->rview.n_caches; i++)
            TRY(cache_id_read(r, &m->rview.caches[i]));
        return WCCP_OK;
    case WCCP_C_WC_VIEW:
        NEED(get32(r, &m->wcview.change_number));
        TRY(get_count(r, &m->wcview.n_routers, WCCP_ROUTERS_MAX, 8));
        for (uint32_t i = 0; i < m->wcview.n_routers; i++)
            NEED(get32(r, &m->wcview.routers[i].ip) &&
                 get32(r, &m->wcview.routers[i].receive_id));
        TRY(get_count(r, &m->wcview.n_caches, WCCP_CACHES_MAX, 4));
        for (uint32_t i = 0; i < m->wcview.n_caches; i++)
            NEED(get32(r, &m->wcview.caches[i]));
        return WCCP_OK;
    case WCCP_C_ASSIGN:
        m->assign.form = WCCP_AF_HASH;
        m->assign.alternate = false;
        TRY(router_assigns_read(r, &m->assign));
        return hash_table_read(r, &m->assign);
    case WCCP_C_QUERY:
        NEED(get32(r, &m->query.router.ip) && get32(r, &m->query.router.receive_id) &&
             get32(r, &m->query.sent_to) && get32(r, &m->query.target));
        return WCCP_OK;
    case WCCP_C_CAPS:
        return caps_read(r, &m->caps);
    case WCCP_C_ALT_ASSIGN: {
        uint16_t atype, alen;
        NEED(get16(r, &atype) && get16(r, &alen) && alen == rd_left(r));
        if (atype != WCCP_AF_HASH && atype != WCCP_AF_MASK)
            return WCCP_E_UNSUPPORTED;
        m->assign.form = (uint8_t)atype;
        m->assign.alternate = true;
        TRY(router_assigns_read(r, &m->assign));
        if (atype == WCCP_AF_HASH)
            return hash_table_read(r, &m->assign);
        return mvlist_read(r, &m->assign.mask);
    }
    case WCCP_C_ASSIGN_MAP:
        return mvlist_read(r, &m->map);
    case WCCP_C_COMMAND:
        return command_read(r, m);
    case WCCP_C_ALT_ASSIGN_MAP:
    case WCCP_C_ADDR_TABLE:
        return WCCP_E_UNSUPPORTED;
    default:
        r->off = r->len;            /* unknown: skipped */
        return WCCP_OK;
    }
}

/* components each message type must carry, and those it must not */
static int
check_components(const wccp_msg_t *m)
{
#define B(c) (1u << (c))
    uint32_t need = B(WCCP_C_SECURITY) | B(WCCP_C_SERVICE), deny = 0;
    uint32_t assigns = B(WCCP_C_ASSIGN) | B(WCCP_C_ALT_ASSIGN) | B(WCCP_C_ASSIGN_MAP);

    switch (m->type) {
    case WCCP_HERE_I_AM:
        need |= B(WCCP_C_WC_ID) | B(WCCP_C_WC_VIEW);
        deny = B(WCCP_C_ROUTER_ID) | B(WCCP_C_ROUTER_VIEW) | B(WCCP_C_QUERY) | assigns;
        break;
    case WCCP_I_SEE_YOU:
        need |= B(WCCP_C_ROUTER_ID) | B(WCCP_C_ROUTER_VIEW);
        deny = B(WCCP_C_WC_ID) | B(WCCP_C_WC_VIEW) | B(WCCP_C_ASSIGN) | B(WCCP_C_QUERY);
        break;
    case WCCP_REDIRECT_ASSIGN:
        if ((m->components & assigns) == 0)
            return WCCP_E_MISSING;
        if ((m->components & B(WCCP_C_ASSIGN)) && (m->components & B(WCCP_C_ALT_ASSIGN)))
            return WCCP_E_COMPONENT;
        deny = B(WCCP_C_ROUTER_ID) | B(WCCP_C_WC_ID) | B(WCCP_C_ROUTER_VIEW) |
               B(WCCP_C_WC_VIEW) | B(WCCP_C_QUERY);
        break;
    case WCCP_REMOVAL_QUERY:
        need |= B(WCCP_C_QUERY);
        deny = B(WCCP_C_ROUTER_ID) | B(WCCP_C_WC_ID) | B(WCCP_C_ROUTER_VIEW) |
               B(WCCP_C_WC_VIEW) | assigns;
        break;
    }
    if ((m->components & need) != need)
        return WCCP_E_MISSING;
    if (m->components & deny)
        return WCCP_E_COMPONENT;
    return WCCP_OK;
#undef B
}

int
wccp_parse(const uint8_t *buf, size_t len, const char *password, wccp_msg_t *m)
{
    size_t dig_off = 0;

    if (len < WCCP_HDR_LEN)
        return WCCP_E_SHORT;
    memset(m, 0, sizeof(*m));
    m->type = wccp_get32(buf);
    m->version = wccp_get16(buf + 4);
    if ((m->version >> 8) != 2)
        return WCCP_E_VERSION;
    if (len > WCCP_MSG_MAX || (size_t)wccp_get16(buf + 6) + WCCP_HDR_LEN != len)
        return WCCP_E_LENGTH;
    if (m->type < WCCP_HERE_I_AM || m->type > WCCP_REMOVAL_QUERY)
        return WCCP_E_TYPE;
    m->caps.forward = WCCP_FWD_GRE;   /* defaults when no Capabilities arrive */
    m->caps.assign = WCCP_ASSIGN_HASH;
    m->caps.ret = WCCP_RET_GRE;

    size_t off = WCCP_HDR_LEN;
    for (int i = 0; off < len; i++) {
        if (len - off < 4)
            return WCCP_E_SHORT;
        uint16_t type = wccp_get16(buf + off), clen = wccp_get16(buf + off + 2);
        off += 4;
        if (clen > len - off)
            return WCCP_E_SHORT;
        if (clen % 4 != 0)
            return WCCP_E_COMPONENT;
        /* Security Info first, Service Info second (as the drafts lay out) */
        if ((i == 0) != (type == WCCP_C_SECURITY) || (i == 1) != (type == WCCP_C_SERVICE))
            return i < 2 ? WCCP_E_MISSING : WCCP_E_COMPONENT;
        if (type < 32) {
            if (m->components & (1u << type))
                return WCCP_E_COMPONENT;
            m->components |= 1u << type;
        }
        rd_t r = {buf + off, clen, 0};
        TRY(component_read(type, &r, m, off, &dig_off));
        if (r.off != clen)
            return WCCP_E_COMPONENT;    /* bytes left over inside the component */
        off += clen;
    }
    TRY(check_components(m));

    if ((password != NULL) != (m->security == WCCP_SEC_MD5))
        return WCCP_E_SECURITY;
    if (password != NULL && !wccp_md5_verify(password, buf, len, dig_off))
        return WCCP_E_SECURITY;
    return WCCP_OK;
}
