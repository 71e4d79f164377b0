/*
 * mus/radius.c: RADIUS accounting packets (see radius.h): the attribute
 * walk with its length checks, the MD5 authenticators, a request builder,
 * User-Name and AVPair splitting. No I/O, no allocation.
 */
#include "radius.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

const char *radius_status_str(uint32_t status)
{
    switch (status) {
    case RADIUS_ST_START: return "start";
    case RADIUS_ST_STOP: return "stop";
    case RADIUS_ST_INTERIM: return "interim-update";
    case RADIUS_ST_ACCT_ON: return "accounting-on";
    case RADIUS_ST_ACCT_OFF: return "accounting-off";
    default: return "other";
    }
}

const char *radius_err_str(enum radius_err e)
{
    static const char *const s[] = {
        "ok",
        "truncated packet",
        "bad Length field",
        "not an Accounting-Request",
        "bad attribute length",
        "bad attribute value",
        "bad Cisco vendor-specific attribute",
        "no Acct-Status-Type",
    };
    return (unsigned)e < sizeof(s) / sizeof(s[0]) ? s[e] : "?";
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Copies a text value; false if it holds a NUL. */
static bool copy_text(char dst[RADIUS_STR_MAX], const uint8_t *v, size_t n)
{
    if (memchr(v, '\0', n))
        return false;
    memcpy(dst, v, n);
    dst[n] = '\0';
    return true;
}

/* A text attribute that may repeat: kept if there is room. */
static bool copy_multi(char (*dst)[RADIUS_STR_MAX], size_t *count, const uint8_t *v, size_t n,
                       size_t *skipped)
{
    if (memchr(v, '\0', n))
        return false;
    if (*count >= RADIUS_MULTI_MAX) {
        (*skipped)++;
        return true;
    }
    return copy_text(dst[(*count)++], v, n);
}

/* Cisco's Vendor-Specific: vendor id 9, then sub-attributes (type,
 * length >= 2, value). Only AVPair (1) is kept. */
static enum radius_err parse_vsa(const uint8_t *v, size_t n, radius_acct_t *out)
{
    if (n < 4 + 1)   /* RFC 2865 5.26: Length >= 7 */
        return RADIUS_E_ATTR_VALUE;
    if (get32(v) != RADIUS_VENDOR_CISCO) {
        out->n_skipped++;
        return RADIUS_OK;
    }
    size_t off = 4;
    while (off < n) {
        if (n - off < 2)
            return RADIUS_E_VSA;
        uint8_t st = v[off], sl = v[off + 1];
        if (sl < 2 || sl > n - off)
            return RADIUS_E_VSA;
        if (st == RADIUS_CISCO_AVPAIR) {
            if (!copy_multi(out->avpairs, &out->n_avpairs, v + off + 2, sl - 2u, &out->n_skipped))
                return RADIUS_E_VSA;
        } else {
            out->n_skipped++;
        }
        off += sl;
    }
    return RADIUS_OK;
}

static enum radius_err parse_attr(uint8_t type, const uint8_t *v, size_t n, radius_acct_t *out)
{
    switch (type) {
    case RADIUS_A_USER_NAME:
        return n > 0 && copy_text(out->user_name, v, n) ? RADIUS_OK : RADIUS_E_ATTR_VALUE;
    case RADIUS_A_ACCT_SESSION_ID:
        return n > 0 && copy_text(out->session_id, v, n) ? RADIUS_OK : RADIUS_E_ATTR_VALUE;
    case RADIUS_A_CALLING_STATION_ID:
        return copy_text(out->calling_station, v, n) ? RADIUS_OK : RADIUS_E_ATTR_VALUE;
    case RADIUS_A_NAS_IDENTIFIER:
        return copy_text(out->nas_identifier, v, n) ? RADIUS_OK : RADIUS_E_ATTR_VALUE;
    case RADIUS_A_CLASS:
        return copy_multi(out->classes, &out->n_classes, v, n, &out->n_skipped)
                   ? RADIUS_OK : RADIUS_E_ATTR_VALUE;
    case RADIUS_A_FILTER_ID:
        return copy_multi(out->filter_ids, &out->n_filter_ids, v, n, &out->n_skipped)
                   ? RADIUS_OK : RADIUS_E_ATTR_VALUE;
    case RADIUS_A_ACCT_STATUS_TYPE:
        if (n != 4)
            return RADIUS_E_ATTR_VALUE;
        out->status = get32(v);
        return RADIUS_OK;
    case RADIUS_A_ACCT_INTERIM_INTERVAL:
        if (n != 4)
            return RADIUS_E_ATTR_VALUE;
        out->interim_interval = get32(v);
        out->has_interim = true;
        return RADIUS_OK;
    case RADIUS_A_NAS_IP_ADDRESS:
    case RADIUS_A_FRAMED_IP_ADDRESS:
        if (n != 4)
            return RADIUS_E_ATTR_VALUE;
        memcpy(type == RADIUS_A_NAS_IP_ADDRESS ? out->nas_ip : out->framed_ip, v, 4);
        *(type == RADIUS_A_NAS_IP_ADDRESS ? &out->has_nas_ip : &out->has_framed_ip) = true;
        return RADIUS_OK;
    case RADIUS_A_NAS_IPV6_ADDRESS:
    case RADIUS_A_FRAMED_IPV6_ADDRESS:
        if (n != 16)
            return RADIUS_E_ATTR_VALUE;
        memcpy(type == RADIUS_A_NAS_IPV6_ADDRESS ? out->nas_ipv6 : out->framed_ipv6, v, 16);
        *(type == RADIUS_A_NAS_IPV6_ADDRESS ? &out->has_nas_ipv6 : &out->has_framed_ipv6) = true;
        return RADIUS_OK;
    case RADIUS_A_FRAMED_IPV6_PREFIX: {
        /* RFC 3162: reserved octet, prefix length, 0..16 prefix octets */
        if (n < 2 || n > 18 || v[1] > 128 || (size_t)(v[1] + 7) / 8 > n - 2)
            return RADIUS_E_ATTR_VALUE;
        uint8_t plen = v[1];
        memset(out->framed_prefix, 0, 16);
        memcpy(out->framed_prefix, v + 2, n - 2);
        for (unsigned bit = plen; bit < 128; bit++)
            out->framed_prefix[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
        out->framed_prefix_len = plen;
        out->has_framed_prefix = true;
        return RADIUS_OK;
    }
    case RADIUS_A_VENDOR_SPECIFIC:
        return parse_vsa(v, n, out);
    default:
        out->n_skipped++;
        return RADIUS_OK;
    }
}

enum radius_err radius_parse(const uint8_t *pkt, size_t len, radius_acct_t *out)
{
    memset(out, 0, sizeof(*out));
    if (len < RADIUS_HDR_LEN)
        return RADIUS_E_SHORT;
    size_t plen = (size_t)pkt[2] << 8 | pkt[3];
    if (plen < RADIUS_HDR_LEN || plen > RADIUS_PKT_MAX)
        return RADIUS_E_LENGTH;
    if (plen > len)
        return RADIUS_E_SHORT;
    out->code = pkt[0];
    out->identifier = pkt[1];
    out->length = (uint16_t)plen;
    memcpy(out->authenticator, pkt + 4, RADIUS_AUTH_LEN);
    if (out->code != RADIUS_CODE_ACCT_REQUEST)
        return RADIUS_E_CODE;
    bool has_status = false;
    size_t off = RADIUS_HDR_LEN;
    while (off < plen) {
        if (plen - off < 2)
            return RADIUS_E_ATTR_LEN;
        uint8_t type = pkt[off], alen = pkt[off + 1];
        if (alen < 2 || alen > plen - off)
            return RADIUS_E_ATTR_LEN;
        enum radius_err e = parse_attr(type, pkt + off + 2, alen - 2u, out);
        if (e != RADIUS_OK)
            return e;
        if (type == RADIUS_A_ACCT_STATUS_TYPE)
            has_status = true;
        out->n_attrs++;
        off += alen;
    }
    return has_status ? RADIUS_OK : RADIUS_E_NO_STATUS;
}

/* ---- authenticators ---- */

/* MD5(a | b | c | d) into md; any part may be empty. */
static bool md5_4(const void *a, size_t al, const void *b, size_t bl, const void *c, size_t cl,
                  const void *d, size_t dl, uint8_t md[16])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int mdlen = 0;
    bool ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1 &&
              EVP_DigestUpdate(ctx, a, al) == 1 && EVP_DigestUpdate(ctx, b, bl) == 1 &&
              EVP_DigestUpdate(ctx, c, cl) == 1 && EVP_DigestUpdate(ctx, d, dl) == 1 &&
              EVP_DigestFinal_ex(ctx, md, &mdlen) == 1 && mdlen == 16;
    EVP_MD_CTX_free(ctx);
    return ok;
}

static const uint8_t zero16[RADIUS_AUTH_LEN];

bool radius_verify_request(const uint8_t *pkt, size_t len, const uint8_t *secret,
                           size_t secret_len)
{
    if (len < RADIUS_HDR_LEN)
        return false;
    size_t plen = (size_t)pkt[2] << 8 | pkt[3];
    if (plen < RADIUS_HDR_LEN || plen > len || plen > RADIUS_PKT_MAX)
        return false;
    uint8_t md[16];
    if (!md5_4(pkt, 4, zero16, RADIUS_AUTH_LEN, pkt + RADIUS_HDR_LEN, plen - RADIUS_HDR_LEN,
               secret, secret_len, md))
        return false;
    return CRYPTO_memcmp(md, pkt + 4, RADIUS_AUTH_LEN) == 0;
}

int radius_build_response(uint8_t identifier, const uint8_t req_auth[RADIUS_AUTH_LEN],
                          const uint8_t *secret, size_t secret_len, uint8_t *out, size_t cap)
{
    if (cap < RADIUS_HDR_LEN)
        return -1;
    out[0] = RADIUS_CODE_ACCT_RESPONSE;
    out[1] = identifier;
    out[2] = 0;
    out[3] = RADIUS_HDR_LEN;
    if (!md5_4(out, 4, req_auth, RADIUS_AUTH_LEN, NULL, 0, secret, secret_len, out + 4))
        return -1;
    return RADIUS_HDR_LEN;
}

bool radius_verify_response(const uint8_t *pkt, size_t len, const uint8_t req_auth[RADIUS_AUTH_LEN],
                            const uint8_t *secret, size_t secret_len)
{
    if (len < RADIUS_HDR_LEN || pkt[0] != RADIUS_CODE_ACCT_RESPONSE)
        return false;
    size_t plen = (size_t)pkt[2] << 8 | pkt[3];
    if (plen < RADIUS_HDR_LEN || plen > len)
        return false;
    uint8_t md[16];
    if (!md5_4(pkt, 4, req_auth, RADIUS_AUTH_LEN, pkt + RADIUS_HDR_LEN, plen - RADIUS_HDR_LEN,
               secret, secret_len, md))
        return false;
    return CRYPTO_memcmp(md, pkt + 4, RADIUS_AUTH_LEN) == 0;
}

/* ---- builder ---- */

void radius_build_begin(radius_builder_t *b, uint8_t code, uint8_t identifier)
{
    memset(b->buf, 0, RADIUS_HDR_LEN);
    b->buf[0] = code;
    b->buf[1] = identifier;
    b->len = RADIUS_HDR_LEN;
    b->overflow = false;
}

void radius_build_attr(radius_builder_t *b, uint8_t type, const void *val, size_t len)
{
    if (len > RADIUS_ATTR_VAL_MAX || b->len + 2 + len > RADIUS_PKT_MAX) {
        b->overflow = true;
        return;
    }
    b->buf[b->len] = type;
    b->buf[b->len + 1] = (uint8_t)(len + 2);
    if (len)
        memcpy(b->buf + b->len + 2, val, len);
    b->len += 2 + len;
}

void radius_build_u32(radius_builder_t *b, uint8_t type, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    radius_build_attr(b, type, x, 4);
}

void radius_build_str(radius_builder_t *b, uint8_t type, const char *s)
{
    radius_build_attr(b, type, s, strlen(s));
}

void radius_build_cisco_avpair(radius_builder_t *b, const char *avpair)
{
    size_t n = strlen(avpair);
    uint8_t v[RADIUS_ATTR_VAL_MAX];
    if (n + 6 > sizeof(v)) {
        b->overflow = true;
        return;
    }
    v[0] = v[1] = v[2] = 0;
    v[3] = RADIUS_VENDOR_CISCO;
    v[4] = RADIUS_CISCO_AVPAIR;
    v[5] = (uint8_t)(n + 2);
    memcpy(v + 6, avpair, n);
    radius_build_attr(b, RADIUS_A_VENDOR_SPECIFIC, v, n + 6);
}

int radius_build_finish(radius_builder_t *b, const uint8_t *secret, size_t secret_len)
{
    if (b->overflow)
        return -1;
    b->buf[2] = (uint8_t)(b->len >> 8);
    b->buf[3] = (uint8_t)b->len;
    if (!md5_4(b->buf, 4, zero16, RADIUS_AUTH_LEN, b->buf + RADIUS_HDR_LEN,
               b->len - RADIUS_HDR_LEN, secret, secret_len, b->buf + 4))
        return -1;
    return (int)b->len;
}

/* ---- values ---- */

static int copy_part(char *dst, size_t cap, const char *s, size_t n)
{
    if (n == 0 || n >= cap)
        return -1;
    memcpy(dst, s, n);
    dst[n] = '\0';
    return 0;
}

int radius_user_split(const char *user, char *name, size_t name_cap, char *domain,
                      size_t domain_cap)
{
    size_t n = strlen(user);
    const char *bs = strchr(user, '\\'), *at = strrchr(user, '@');
    if (domain_cap == 0)
        return -1;
    domain[0] = '\0';
    if (bs) {
        if (copy_part(domain, domain_cap, user, (size_t)(bs - user)) < 0 ||
            copy_part(name, name_cap, bs + 1, n - (size_t)(bs - user) - 1) < 0) {
            domain[0] = '\0';
            return -1;
        }
        return 0;
    }
    if (at) {
        if (copy_part(name, name_cap, user, (size_t)(at - user)) < 0 ||
            copy_part(domain, domain_cap, at + 1, n - (size_t)(at - user) - 1) < 0) {
            domain[0] = '\0';
            return -1;
        }
        return 0;
    }
    return copy_part(name, name_cap, user, n);
}

int radius_avpair_split(const char *avpair, char *key, size_t key_cap, char *value,
                        size_t value_cap)
{
    size_t kl = strcspn(avpair, "=*");
    if (avpair[kl] == '\0' || kl == 0 || kl >= key_cap)
        return -1;
    for (size_t i = 0; i < kl; i++)
        if (avpair[i] == ' ' || avpair[i] == '\t')
            return -1;
    size_t vl = strlen(avpair + kl + 1);
    if (vl >= value_cap)
        return -1;
    memcpy(key, avpair, kl);
    key[kl] = '\0';
    memcpy(value, avpair + kl + 1, vl + 1);
    return 0;
}
