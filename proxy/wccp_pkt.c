/*
 * proxy/wccp_pkt.c: WCCPv2 message builders and the MD5 security option (see
 * wccp_pkt.h). The parser is in wccp_parse.c. No I/O, no allocation.
 */
#include "wccp_pkt.h"
#include "wccp_pkt_int.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

const char *
wccp_strerror(int code)
{
    switch (code) {
    case WCCP_OK: return "ok";
    case WCCP_E_SHORT: return "message shorter than its fields";
    case WCCP_E_VERSION: return "not WCCP version 2";
    case WCCP_E_LENGTH: return "message length does not match the datagram";
    case WCCP_E_TYPE: return "unknown message type";
    case WCCP_E_COMPONENT: return "malformed or duplicate component";
    case WCCP_E_MISSING: return "a required component is missing";
    case WCCP_E_SECURITY: return "security option or MD5 digest mismatch";
    case WCCP_E_TOO_MANY: return "a count exceeds a limit";
    case WCCP_E_UNSUPPORTED: return "unsupported (IPv6 or rev1) component";
    case WCCP_E_SPACE: return "buffer too small";
    case WCCP_E_INVALID: return "invalid message contents";
    default: return "unknown error";
    }
}

const char *
wccp_msg_type_str(uint32_t type)
{
    switch (type) {
    case WCCP_HERE_I_AM: return "Here_I_Am";
    case WCCP_I_SEE_YOU: return "I_See_You";
    case WCCP_REDIRECT_ASSIGN: return "Redirect_Assign";
    case WCCP_REMOVAL_QUERY: return "Removal_Query";
    default: return "unknown";
    }
}

/* ---- MD5 ---------------------------------------------------------------- */

/*
 * MD5(password[8] || msg) with the 16 digest bytes at msg[dig_off..] taken as
 * zero. Returns 0, or -1 when OpenSSL fails.
 */
int
wccp_md5(const char *password, const uint8_t *msg, size_t len, size_t dig_off,
         uint8_t out[WCCP_MD5_LEN])
{
    static const uint8_t zero[WCCP_MD5_LEN];
    uint8_t key[WCCP_PASSWORD_LEN] = {0};
    unsigned int n = 0;
    int rc = -1;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (ctx == NULL)
        return -1;
    size_t plen = strnlen(password, sizeof(key));   /* NUL-padded, cut at 8 */
    memcpy(key, password, plen);
    if (EVP_DigestInit_ex(ctx, EVP_md5(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, key, sizeof(key)) != 1 ||
        EVP_DigestUpdate(ctx, msg, dig_off) != 1 ||
        EVP_DigestUpdate(ctx, zero, sizeof(zero)) != 1 ||
        EVP_DigestUpdate(ctx, msg + dig_off + WCCP_MD5_LEN, len - dig_off - WCCP_MD5_LEN) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &n) != 1 || n != WCCP_MD5_LEN)
        goto cleanup;
    rc = 0;
cleanup:
    EVP_MD_CTX_free(ctx);
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

bool
wccp_md5_verify(const char *password, const uint8_t *msg, size_t len, size_t dig_off)
{
    uint8_t want[WCCP_MD5_LEN];

    if (wccp_md5(password, msg, len, dig_off, want) != 0)
        return false;
    return CRYPTO_memcmp(want, msg + dig_off, WCCP_MD5_LEN) == 0;
}

/* ---- writer ------------------------------------------------------------- */

typedef struct wr {
    uint8_t *p;
    size_t cap, len;
    bool full;          /* something did not fit */
    bool bad;           /* the input broke a rule */
} wr_t;

static uint8_t *
wr_take(wr_t *w, size_t n)
{
    if (w->full || w->cap - w->len < n) {
        w->full = true;
        return NULL;
    }
    uint8_t *q = w->p + w->len;
    w->len += n;
    return q;
}

static void
put8(wr_t *w, uint8_t v)
{
    uint8_t *q = wr_take(w, 1);
    if (q)
        q[0] = v;
}

static void
put16(wr_t *w, uint16_t v)
{
    uint8_t *q = wr_take(w, 2);
    if (q)
        wccp_set16(q, v);
}

static void
put32(wr_t *w, uint32_t v)
{
    uint8_t *q = wr_take(w, 4);
    if (q)
        wccp_set32(q, v);
}

static void
put_bytes(wr_t *w, const void *b, size_t n)
{
    uint8_t *q = wr_take(w, n);
    if (q)
        memcpy(q, b, n);
}

/* Starts a component (or any u16 type + u16 length item): returns the offset
 * of its header, to be passed to comp_end. */
static size_t
comp_begin(wr_t *w, uint16_t type)
{
    size_t at = w->len;
    put16(w, type);
    put16(w, 0);
    return at;
}

static void
comp_end(wr_t *w, size_t at)
{
    if (w->full)
        return;
    size_t n = w->len - at - 4;
    if (n > UINT16_MAX) {
        w->full = true;
        return;
    }
    wccp_set16(w->p + at + 2, (uint16_t)n);
}

static void
check_count(wr_t *w, uint32_t n, uint32_t max)
{
    if (n > max)
        w->bad = true;
}

/* Starts a message: header and Security Info. Returns the digest offset, or 0
 * without security. */
static size_t
msg_begin(wr_t *w, uint8_t *buf, size_t cap, uint32_t type, const char *password)
{
    w->p = buf;
    w->cap = cap < WCCP_MSG_MAX ? cap : WCCP_MSG_MAX;
    w->len = 0;
    w->full = w->bad = false;
    put32(w, type);
    put16(w, WCCP_VERSION);
    put16(w, 0);
    size_t at = comp_begin(w, WCCP_C_SECURITY);
    size_t dig = 0;
    if (password != NULL) {
        put32(w, WCCP_SEC_MD5);
        dig = w->len;
        put_bytes(w, (const uint8_t[WCCP_MD5_LEN]){0}, WCCP_MD5_LEN);
    } else {
        put32(w, WCCP_SEC_NONE);
    }
    comp_end(w, at);
    return dig;
}

static int
msg_end(wr_t *w, const char *password, size_t dig)
{
    if (w->bad)
        return WCCP_E_INVALID;
    if (w->full || w->len - WCCP_HDR_LEN > UINT16_MAX)
        return WCCP_E_SPACE;
    wccp_set16(w->p + 6, (uint16_t)(w->len - WCCP_HDR_LEN));
    if (password != NULL && wccp_md5(password, w->p, w->len, dig, w->p + dig) != 0)
        return WCCP_E_INVALID;
    return (int)w->len;
}

/* ---- components --------------------------------------------------------- */

static void
put_service(wr_t *w, const wccp_service_t *s)
{
    size_t at = comp_begin(w, WCCP_C_SERVICE);
    bool dyn = s->type == WCCP_SVC_DYNAMIC;

    if (s->type != WCCP_SVC_STANDARD && !dyn)
        w->bad = true;
    put8(w, s->type);
    put8(w, s->id);
    /* standard services: priority, protocol, flags and ports are zero */
    put8(w, dyn ? s->priority : 0);
    put8(w, dyn ? s->protocol : 0);
    put32(w, dyn ? s->flags : 0);
    for (int i = 0; i < WCCP_PORTS_MAX; i++)
        put16(w, dyn ? s->ports[i] : 0);
    comp_end(w, at);
}

static void
put_mvlist(wr_t *w, const wccp_mvlist_t *mv)
{
    if (mv == NULL) {
        put32(w, 0);
        return;
    }
    check_count(w, mv->n_sets, WCCP_MVSETS_MAX);
    check_count(w, mv->n_values, WCCP_MV_VALUES_MAX);
    if (w->bad)
        return;
    put32(w, mv->n_sets);
    for (uint32_t s = 0; s < mv->n_sets; s++) {
        const wccp_mvset_t *set = &mv->sets[s];
        if ((uint32_t)set->first + set->count > mv->n_values) {
            w->bad = true;
            return;
        }
        put32(w, set->mask.src_ip);
        put32(w, set->mask.dst_ip);
        put16(w, set->mask.src_port);
        put16(w, set->mask.dst_port);
        put32(w, set->count);
        for (uint32_t i = set->first; i < (uint32_t)set->first + set->count; i++) {
            const wccp_value_t *v = &mv->values[i];
            put32(w, v->src_ip);
            put32(w, v->dst_ip);
            put16(w, v->src_port);
            put16(w, v->dst_port);
            put32(w, v->cache_ip);
        }
    }
}

/* Web-Cache Identity element: hash form, or mask form when WCCP_WCF_MASK. */
static void
put_cache_id(wr_t *w, const wccp_cache_id_t *c)
{
    uint16_t type = c->flags & WCCP_WCF_TYPE_BITS;

    if (type != 0 && type != WCCP_WCF_MASK)
        w->bad = true;   /* rev1 "none" / "extended" forms are not built */
    put32(w, c->ip);
    put16(w, c->hash_rev);
    put16(w, c->flags);
    if (type == WCCP_WCF_MASK)
        put_mvlist(w, c->mv);
    else
        put_bytes(w, c->buckets, sizeof(c->buckets));
    put16(w, c->weight);
    put16(w, c->status);
}

static void
put_caps(wr_t *w, const wccp_caps_t *c)
{
    if (!c->present)
        return;
    size_t at = comp_begin(w, WCCP_C_CAPS);
    const uint32_t v[3] = {c->forward, c->assign, c->ret};
    for (uint16_t t = 1; t <= 3; t++) {
        put16(w, t);
        put16(w, 4);
        put32(w, v[t - 1]);
    }
    comp_end(w, at);
}

static void
put_command(wr_t *w, uint16_t cmd, uint32_t ip)
{
    size_t at = comp_begin(w, WCCP_C_COMMAND);
    put16(w, cmd);
    put16(w, 4);
    put32(w, ip);
    comp_end(w, at);
}

static void
put_router_assigns(wr_t *w, const wccp_assignment_t *a)
{
    put32(w, a->key.ip);
    put32(w, a->key.change_number);
    check_count(w, a->n_routers, WCCP_ROUTERS_MAX);
    if (w->bad)
        return;
    put32(w, a->n_routers);
    for (uint32_t i = 0; i < a->n_routers; i++) {
        put32(w, a->routers[i].ip);
        put32(w, a->routers[i].receive_id);
        put32(w, a->routers[i].change_number);
    }
}

static void
put_hash_table(wr_t *w, const wccp_assignment_t *a)
{
    check_count(w, a->n_caches, WCCP_CACHES_MAX);
    if (w->bad)
        return;
    put32(w, a->n_caches);
    for (uint32_t i = 0; i < a->n_caches; i++)
        put32(w, a->caches[i]);
    for (int b = 0; b < WCCP_BUCKETS; b++) {
        uint8_t v = a->buckets[b];
        if (v != WCCP_BUCKET_NONE && (v & 0x7f) >= a->n_caches)
            w->bad = true;
    }
    put_bytes(w, a->buckets, WCCP_BUCKETS);
}

/* ---- messages ----------------------------------------------------------- */

int
wccp_build_here_i_am(uint8_t *buf, size_t cap, const wccp_hia_t *m)
{
    wr_t w;
    size_t dig = msg_begin(&w, buf, cap, WCCP_HERE_I_AM, m->password);

    put_service(&w, &m->service);

    size_t at = comp_begin(&w, WCCP_C_WC_ID);
    put_cache_id(&w, &m->cache);
    comp_end(&w, at);

    at = comp_begin(&w, WCCP_C_WC_VIEW);
    put32(&w, m->change_number);
    check_count(&w, m->n_routers, WCCP_ROUTERS_MAX);
    check_count(&w, m->n_caches, WCCP_CACHES_MAX);
    if (w.bad)
        return WCCP_E_INVALID;
    put32(&w, m->n_routers);
    for (uint32_t i = 0; i < m->n_routers; i++) {
        put32(&w, m->routers[i].ip);
        put32(&w, m->routers[i].receive_id);
    }
    put32(&w, m->n_caches);
    for (uint32_t i = 0; i < m->n_caches; i++)
        put32(&w, m->caches[i]);
    comp_end(&w, at);

    put_caps(&w, &m->caps);
    if (m->shutdown)
        put_command(&w, WCCP_CMD_SHUTDOWN, m->cache.ip);
    return msg_end(&w, m->password, dig);
}

int
wccp_build_i_see_you(uint8_t *buf, size_t cap, const wccp_isy_t *m)
{
    wr_t w;
    size_t dig = msg_begin(&w, buf, cap, WCCP_I_SEE_YOU, m->password);

    put_service(&w, &m->service);

    check_count(&w, m->n_received_from, WCCP_CACHES_MAX);
    check_count(&w, m->n_routers, WCCP_ROUTERS_MAX);
    check_count(&w, m->n_caches, WCCP_CACHES_MAX);
    if (w.bad)
        return WCCP_E_INVALID;

    size_t at = comp_begin(&w, WCCP_C_ROUTER_ID);
    put32(&w, m->router.ip);
    put32(&w, m->router.receive_id);
    put32(&w, m->sent_to);
    put32(&w, m->n_received_from);
    for (uint32_t i = 0; i < m->n_received_from; i++)
        put32(&w, m->received_from[i]);
    comp_end(&w, at);

    at = comp_begin(&w, WCCP_C_ROUTER_VIEW);
    put32(&w, m->member_change);
    put32(&w, m->key.ip);
    put32(&w, m->key.change_number);
    put32(&w, m->n_routers);
    for (uint32_t i = 0; i < m->n_routers; i++)
        put32(&w, m->routers[i]);
    put32(&w, m->n_caches);
    for (uint32_t i = 0; i < m->n_caches; i++)
        put_cache_id(&w, &m->caches[i]);
    comp_end(&w, at);

    put_caps(&w, &m->caps);
    if (m->map != NULL) {
        at = comp_begin(&w, WCCP_C_ASSIGN_MAP);
        put_mvlist(&w, m->map);
        comp_end(&w, at);
    }
    if (m->shutdown_ack != 0)
        put_command(&w, WCCP_CMD_SHUTDOWN_ACK, m->shutdown_ack);
    return msg_end(&w, m->password, dig);
}

int
wccp_build_redirect_assign(uint8_t *buf, size_t cap, const wccp_ra_t *m)
{
    wr_t w;
    const wccp_assignment_t *a = &m->assign;
    size_t dig = msg_begin(&w, buf, cap, WCCP_REDIRECT_ASSIGN, m->password);

    put_service(&w, &m->service);
    if (a->form == WCCP_AF_HASH && !a->alternate) {
        size_t at = comp_begin(&w, WCCP_C_ASSIGN);
        put_router_assigns(&w, a);
        put_hash_table(&w, a);
        comp_end(&w, at);
    } else if (a->form == WCCP_AF_HASH || a->form == WCCP_AF_MASK) {
        /* Alternate Assignment: type, length of what follows, then the body */
        size_t at = comp_begin(&w, WCCP_C_ALT_ASSIGN);
        size_t inner = comp_begin(&w, a->form);
        put_router_assigns(&w, a);
        if (a->form == WCCP_AF_HASH)
            put_hash_table(&w, a);
        else
            put_mvlist(&w, a->mv);
        comp_end(&w, inner);
        comp_end(&w, at);
    } else {
        return WCCP_E_INVALID;
    }
    return msg_end(&w, m->password, dig);
}

int
wccp_build_removal_query(uint8_t *buf, size_t cap, const wccp_rq_t *m)
{
    wr_t w;
    size_t dig = msg_begin(&w, buf, cap, WCCP_REMOVAL_QUERY, m->password);

    put_service(&w, &m->service);
    size_t at = comp_begin(&w, WCCP_C_QUERY);
    put32(&w, m->router.ip);
    put32(&w, m->router.receive_id);
    put32(&w, m->sent_to);
    put32(&w, m->target);
    comp_end(&w, at);
    return msg_end(&w, m->password, dig);
}
