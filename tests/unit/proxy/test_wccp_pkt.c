/*
 * tests/unit/proxy/test_wccp_pkt.c: the WCCPv2 codec (proxy/wccp_pkt.c,
 * proxy/wccp_parse.c). Every sample message (tests/tools/wccp_samples.c) is
 * built and parsed back field by field, with and without MD5; one Here_I_Am
 * is compared byte for byte with the draft's layout written out by hand; MD5
 * signing is checked against an independent digest, and wrong passwords and
 * flipped bytes are refused. Every truncation and every enlarged length or
 * count must be an error, with the input placed right before a PROT_NONE
 * page so that any over-read crashes.
 */
#include <criterion/criterion.h>

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../../../proxy/wccp_assign.h"
#include "../../../proxy/wccp_pkt.h"
#include "../../../proxy/wccp_pkt_int.h"
#include "../../tools/wccp_samples.h"

#define PW WCCP_SAMPLE_PASSWORD

static uint8_t *guard_end;

/* Copies p[0..n) so that its last byte is the last one before a PROT_NONE page. */
static const uint8_t *
guarded(const uint8_t *p, size_t n)
{
    if (guard_end == NULL) {
        size_t pg = (size_t)sysconf(_SC_PAGESIZE);
        uint8_t *base = mmap(NULL, 2 * WCCP_MSG_MAX + pg, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        cr_assert(base != MAP_FAILED);
        cr_assert(mprotect(base + 2 * WCCP_MSG_MAX, pg, PROT_NONE) == 0);
        guard_end = base + 2 * WCCP_MSG_MAX;
    }
    cr_assert(n <= 2 * WCCP_MSG_MAX);
    memcpy(guard_end - n, p, n);
    return guard_end - n;
}

static wccp_msg_t msg;   /* ~12 KB: not on the stack */

static int
parse(const uint8_t *p, size_t n, const char *pw)
{
    return wccp_parse(guarded(p, n), n, pw, &msg);
}

static int
sample(int i, bool md5, uint8_t *buf, wccp_sample_info_t *info)
{
    int n = wccp_sample(i, md5, buf, WCCP_MSG_MAX, info);
    cr_assert(n > 0, "sample %d: %s", i, wccp_strerror(n));
    return n;
}

#define rd16 wccp_get16   /* the codec's own big-endian helpers */
#define wr16 wccp_set16
#define wr32 wccp_set32

/* offsets of the component headers of a message of n bytes */
static int
components(const uint8_t *p, size_t n, size_t at[32])
{
    int k = 0;
    for (size_t off = 8; off + 4 <= n && k < 32; off += 4 + rd16(p + off + 2))
        at[k++] = off;
    return k;
}

/* ---- round trips -------------------------------------------------------- */

static void
check_sample(int i, const wccp_sample_info_t *info, bool md5)
{
    const wccp_msg_t *m = &msg;

    cr_assert_eq(m->type, info->type);
    cr_assert_eq(m->version, WCCP_VERSION);
    cr_assert_eq(m->security, md5 ? WCCP_SEC_MD5 : WCCP_SEC_NONE);
    cr_assert_eq(m->service.id, info->service_id);
    if (m->service.type == WCCP_SVC_DYNAMIC) {
        cr_assert_eq(m->service.priority, 240);
        cr_assert_eq(m->service.protocol, 6);
        cr_assert_eq(m->service.flags, WCCP_SF_SRC_IP_HASH | WCCP_SF_PORTS_DEFINED);
        cr_assert_eq(m->service.ports[0], 443);
        cr_assert_eq(m->service.ports[1], 8443);
        cr_assert_eq(m->service.ports[2], 0);
    } else {
        cr_assert_eq(m->service.flags, 0);
    }
    switch (i) {
    case 0:
    case 1:
        cr_assert_eq(m->cache.ip, 0x0a000009);
        cr_assert_eq(m->cache.weight, 1);
        cr_assert_eq(m->wcview.change_number, 3);
        cr_assert_eq(m->wcview.n_routers, 1);
        cr_assert_eq(m->wcview.routers[0].ip, 0xc0a80a01);
        cr_assert_eq(m->wcview.routers[0].receive_id, 17);
        cr_assert_eq(m->wcview.n_caches, 2);
        cr_assert_eq(m->wcview.caches[1], 0x0a00000a);
        if (i == 0) {
            cr_assert_eq(m->cache.buckets[0], 0xff);
            cr_assert_eq(m->cache.buckets[7], 0xff);
            cr_assert_eq(m->cache.buckets[8], 0);
            cr_assert(!m->caps.present);
            cr_assert_eq(m->caps.forward, WCCP_FWD_GRE);   /* the defaults */
            cr_assert_eq(m->caps.assign, WCCP_ASSIGN_HASH);
            cr_assert_eq(m->cmd, WCCP_CMD_NONE);
        } else {
            wccp_mvlist_t mv;
            cr_assert_eq(m->cache.flags, WCCP_WCF_MASK);
            cr_assert_eq(wccp_mvlist_parse(m->cache.mv_wire, m->cache.mv_wire_len, &mv), WCCP_OK);
            cr_assert_eq(mv.n_sets, 1);
            cr_assert_eq(mv.sets[0].mask.src_ip, WCCP_MASK_DEFAULT);
            cr_assert_eq(mv.n_values, 64);
            cr_assert(m->caps.present);
            cr_assert_eq(m->caps.assign, WCCP_ASSIGN_HASH | WCCP_ASSIGN_MASK);
            cr_assert_eq(m->cmd, WCCP_CMD_SHUTDOWN);
            cr_assert_eq(m->cmd_ip, 0x0a000009);
        }
        break;
    case 2:
    case 3:
        cr_assert_eq(m->router.ip, 0xc0a80a01);
        cr_assert_eq(m->router.receive_id, 18);
        cr_assert_eq(m->sent_to, 0xc0a80a01);
        cr_assert_eq(m->n_received_from, 2);
        cr_assert_eq(m->received_from[1], 0x0a00000a);
        cr_assert_eq(m->rview.member_change, 5);
        cr_assert_eq(m->rview.key.ip, 0x0a000009);
        cr_assert_eq(m->rview.key.change_number, 2);
        cr_assert_eq(m->rview.n_routers, 1);
        cr_assert_eq(m->rview.n_caches, 2);
        cr_assert_eq(m->rview.caches[0].ip, 0x0a000009);
        cr_assert_eq(m->rview.caches[1].ip, 0x0a00000a);
        cr_assert_eq(m->rview.caches[1].weight, 3);
        cr_assert(m->caps.present);
        if (i == 2) {
            cr_assert_eq(m->caps.forward, WCCP_FWD_GRE | WCCP_FWD_L2);
            cr_assert_eq(m->rview.caches[1].buckets[8], 0xff);
            cr_assert_eq(m->rview.caches[1].buckets[7], 0);
        } else {
            cr_assert_eq(m->caps.assign, WCCP_ASSIGN_MASK);
            cr_assert_eq(m->rview.caches[1].flags, WCCP_WCF_MASK);
            cr_assert_eq(m->map.n_values, 64);
            cr_assert_eq(m->map.values[63].cache_ip, 0x0a00000a);
            cr_assert_eq(m->cmd, WCCP_CMD_SHUTDOWN_ACK);
            cr_assert_eq(m->cmd_ip, 0x0a00000a);
        }
        break;
    case 4:
    case 5:
    case 6:
        cr_assert_eq(m->assign.key.ip, 0x0a000009);
        cr_assert_eq(m->assign.key.change_number, 2);
        cr_assert_eq(m->assign.n_routers, 1);
        cr_assert_eq(m->assign.routers[0].ip, 0xc0a80a01);
        cr_assert_eq(m->assign.routers[0].receive_id, 18);
        cr_assert_eq(m->assign.routers[0].change_number, 5);
        cr_assert_eq(m->assign.alternate, i != 4);
        if (i < 6) {
            cr_assert_eq(m->assign.form, WCCP_AF_HASH);
            cr_assert_eq(m->assign.n_caches, 2);
            cr_assert_eq(m->assign.caches[0], 0x0a000009);
            cr_assert_eq(m->assign.buckets[63], 0);
            cr_assert_eq(m->assign.buckets[64], 1);
        } else {
            cr_assert_eq(m->assign.form, WCCP_AF_MASK);
            cr_assert_eq(m->assign.mask.n_values, 64);
            cr_assert_eq(m->assign.mask.values[15].cache_ip, 0x0a000009);
            cr_assert_eq(m->assign.mask.values[16].cache_ip, 0x0a00000a);
        }
        break;
    case 7:
        cr_assert_eq(m->query.router.ip, 0xc0a80a01);
        cr_assert_eq(m->query.router.receive_id, 19);
        cr_assert_eq(m->query.target, 0x0a00000a);
        break;
    }
}

Test(wccp_pkt, every_sample_round_trips)
{
    uint8_t buf[WCCP_MSG_MAX];
    wccp_sample_info_t info;

    for (int i = 0; i < WCCP_SAMPLES; i++) {
        for (int md5 = 0; md5 < 2; md5++) {
            int n = sample(i, md5, buf, &info);
            cr_assert_eq(parse(buf, (size_t)n, md5 ? PW : NULL), WCCP_OK, "%s md5=%d", info.name, md5);
            check_sample(i, &info, md5);
        }
    }
}

/* ---- byte-exact layout -------------------------------------------------- */

Test(wccp_pkt, here_i_am_matches_the_draft_layout)
{
    static const uint8_t want[] = {
        0, 0, 0, 10, 0x02, 0x00, 0, 116,            /* type 10, v2.0, length */
        0, 0, 0, 4, 0, 0, 0, 0,                     /* Security Info: none */
        0, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0,        /* Service Info: standard 0 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 8 ports */
        0, 3, 0, 44, 10, 0, 0, 9, 0, 0, 0, 0,       /* WC Identity: ip, rev, flags */
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,   /* buckets 0-63 */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 1, 0, 0,                                 /* weight 1, status 0 */
        0, 5, 0, 28, 0, 0, 0, 3,                    /* WC View: change 3 */
        0, 0, 0, 1, 192, 168, 10, 1, 0, 0, 0, 17,   /* 1 router + receive id */
        0, 0, 0, 2, 10, 0, 0, 9, 10, 0, 0, 10,      /* 2 caches */
    };
    uint8_t buf[WCCP_MSG_MAX];
    wccp_sample_info_t info;
    int n = sample(0, false, buf, &info);

    cr_assert_eq((size_t)n, sizeof(want));
    cr_assert_arr_eq(buf, want, sizeof(want));
}

/* ---- MD5 ---------------------------------------------------------------- */

Test(wccp_pkt, md5_digest_is_md5_of_padded_password_and_message)
{
    uint8_t buf[WCCP_MSG_MAX], copy[WCCP_MSG_MAX], dig[16];
    unsigned int dn = 0;
    const uint8_t key[8] = {'s', '3', 'c', 'r', 'e', 't', 0, 0};
    wccp_sample_info_t info;
    int n = sample(0, true, buf, &info);

    cr_assert_eq(rd16(buf + 8), WCCP_C_SECURITY);
    cr_assert_eq(rd16(buf + 10), 20);
    cr_assert_eq(buf[15], WCCP_SEC_MD5);
    memcpy(copy, buf, (size_t)n);
    memset(copy + 16, 0, 16);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    cr_assert(EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1);
    cr_assert(EVP_DigestUpdate(ctx, key, 8) == 1);
    cr_assert(EVP_DigestUpdate(ctx, copy, (size_t)n) == 1);
    cr_assert(EVP_DigestFinal_ex(ctx, dig, &dn) == 1);
    EVP_MD_CTX_free(ctx);
    cr_assert_arr_eq(buf + 16, dig, 16);
}

Test(wccp_pkt, md5_refuses_wrong_password_flipped_bytes_and_mismatched_options)
{
    uint8_t buf[WCCP_MSG_MAX], plain[WCCP_MSG_MAX];
    wccp_sample_info_t info;

    for (int i = 0; i < WCCP_SAMPLES; i++) {
        int n = sample(i, true, buf, &info);
        int pn = sample(i, false, plain, &info);
        cr_assert_eq(parse(buf, (size_t)n, PW), WCCP_OK);
        cr_assert_eq(parse(buf, (size_t)n, "s3cre7"), WCCP_E_SECURITY, "%s", info.name);
        cr_assert_eq(parse(buf, (size_t)n, ""), WCCP_E_SECURITY);
        cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_E_SECURITY);
        cr_assert_eq(parse(plain, (size_t)pn, PW), WCCP_E_SECURITY);
        /* any flipped bit, digest included, fails one way or another */
        for (int k = 0; k < n; k++) {
            buf[k] ^= 0x01;
            cr_assert_neq(parse(buf, (size_t)n, PW), WCCP_OK, "%s byte %d", info.name, k);
            buf[k] ^= 0x01;
        }
    }
}

Test(wccp_pkt, password_is_cut_at_eight_bytes)
{
    uint8_t a[WCCP_MSG_MAX], b[WCCP_MSG_MAX];
    wccp_rq_t m = {.password = "12345678", .router = {1, 1}, .target = 2};
    int na = wccp_build_removal_query(a, sizeof(a), &m);
    m.password = "12345678-and-more";
    int nb = wccp_build_removal_query(b, sizeof(b), &m);

    cr_assert(na > 0 && na == nb);
    cr_assert_arr_eq(a, b, (size_t)na);
    cr_assert_eq(parse(a, (size_t)na, "12345678xyz"), WCCP_OK);
    cr_assert_eq(parse(a, (size_t)na, "1234567"), WCCP_E_SECURITY);
}

/* ---- truncation and enlarged lengths ------------------------------------- */

Test(wccp_pkt, every_truncation_is_an_error)
{
    uint8_t buf[WCCP_MSG_MAX], cut[WCCP_MSG_MAX];
    wccp_sample_info_t info;

    for (int i = 0; i < WCCP_SAMPLES; i++) {
        for (int md5 = 0; md5 < 2; md5++) {
            int n = sample(i, md5, buf, &info);
            size_t at[32];
            int k = components(buf, (size_t)n, at);
            cr_assert_eq(parse(buf, (size_t)n, md5 ? PW : NULL), WCCP_OK);
            uint32_t all = msg.components;
            for (int len = 0; len < n; len++) {
                cr_assert_neq(parse(buf, (size_t)len, md5 ? PW : NULL), WCCP_OK);
                if (len < 8)
                    continue;
                /* the header agrees with the cut: the components must not,
                 * unless it drops whole optional components (no MD5 then) */
                memcpy(cut, buf, (size_t)len);
                wr16(cut + 6, (uint16_t)(len - 8));
                bool boundary = false;
                for (int c = 0; c < k; c++)
                    boundary |= at[c] == (size_t)len;
                if (md5 || !boundary) {
                    cr_assert_neq(parse(cut, (size_t)len, md5 ? PW : NULL), WCCP_OK,
                                  "%s cut at %d", info.name, len);
                } else if (parse(cut, (size_t)len, NULL) == WCCP_OK) {
                    cr_assert_neq(msg.components, all);
                    cr_assert(info.type == WCCP_HERE_I_AM || info.type == WCCP_I_SEE_YOU,
                              "%s: a component dropped unnoticed", info.name);
                }
            }
        }
    }
}

Test(wccp_pkt, every_enlarged_length_is_an_error)
{
    uint8_t buf[WCCP_MSG_MAX], bad[WCCP_MSG_MAX];
    wccp_sample_info_t info;
    static const uint16_t more[] = {1, 2, 4, 8, 0x100, 0xfff0};

    for (int i = 0; i < WCCP_SAMPLES; i++) {
        int n = sample(i, false, buf, &info);
        size_t at[32];
        int k = components(buf, (size_t)n, at);
        cr_assert(k >= 3);
        for (size_t d = 0; d < sizeof(more) / sizeof(more[0]); d++) {
            memcpy(bad, buf, (size_t)n);
            wr16(bad + 6, (uint16_t)(rd16(buf + 6) + more[d]));
            cr_assert_eq(parse(bad, (size_t)n, NULL), WCCP_E_LENGTH);
            for (int c = 0; c < k; c++) {
                memcpy(bad, buf, (size_t)n);
                wr16(bad + at[c] + 2, (uint16_t)(rd16(buf + at[c] + 2) + more[d]));
                cr_assert_neq(parse(bad, (size_t)n, NULL), WCCP_OK,
                              "%s component %d +%u", info.name, c, more[d]);
                /* and with the message length grown to match, zero-padded */
                memset(bad + n, 0, more[d] < 64 ? more[d] : 0);
                if (more[d] < 64) {
                    wr16(bad + 6, (uint16_t)(rd16(buf + 6) + more[d]));
                    cr_assert_neq(parse(bad, (size_t)n + more[d], NULL), WCCP_OK,
                                  "%s component %d +%u padded", info.name, c, more[d]);
                }
            }
        }
    }
}

/* every 32-bit count field of the samples, found by layout, enlarged */
Test(wccp_pkt, every_enlarged_count_is_an_error)
{
    uint8_t buf[WCCP_MSG_MAX], bad[WCCP_MSG_MAX];
    wccp_sample_info_t info;
    struct { int sample; size_t off; } counts[] = {
        {0, 100}, {0, 112},           /* Here_I_Am: WC view routers, caches */
        {2, 60}, {2, 88}, {2, 96},    /* I_See_You: received-from, routers, caches */
        {4, 56}, {4, 72},             /* Redirect_Assign: routers, caches */
        {5, 60}, {5, 76}, {6, 60}, {6, 76},   /* Alternate: routers, caches / mv sets */
    };

    for (size_t c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        int n = sample(counts[c].sample, false, buf, &info);
        size_t off = counts[c].off;
        uint32_t was = (uint32_t)rd16(buf + off) << 16 | rd16(buf + off + 2);
        cr_assert(was >= 1 && was <= 2, "%s: offset %zu holds %u", info.name, off, was);
        const uint32_t to[] = {was + 1, 33, 0x10000, 0xffffffff};
        for (size_t t = 0; t < 4; t++) {
            memcpy(bad, buf, (size_t)n);
            wr32(bad + off, to[t]);
            cr_assert_neq(parse(bad, (size_t)n, NULL), WCCP_OK, "%s offset %zu = %u", info.name,
                          off, to[t]);
        }
    }
}

/* ---- header, components, limits ------------------------------------------ */

Test(wccp_pkt, header_checks)
{
    uint8_t buf[WCCP_MSG_MAX];
    wccp_sample_info_t info;
    int n = sample(7, false, buf, &info);

    cr_assert_eq(parse(buf, 7, NULL), WCCP_E_SHORT);
    buf[4] = 1;
    cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_E_VERSION);
    buf[4] = 2;
    buf[5] = 1;                                 /* 2.01: accepted */
    cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_OK);
    cr_assert_eq(msg.version, 0x0201);
    buf[3] = 9;                                 /* WCCPv1 I_See_You type */
    cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_E_TYPE);
    buf[3] = 10;                                /* a Removal_Query body as Here_I_Am */
    cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_E_MISSING);
    buf[3] = 13;
    buf[n] = 0;                                 /* a byte after the message */
    cr_assert_eq(parse(buf, (size_t)n + 1, NULL), WCCP_E_LENGTH);
}

/* appends a component (type, len, zero value) and fixes the header length */
static int
append(uint8_t *buf, int n, uint16_t type, uint16_t len)
{
    wr16(buf + n, type);
    wr16(buf + n + 2, len);
    memset(buf + n + 4, 0, len);
    n += 4 + len;
    wr16(buf + 6, (uint16_t)(n - 8));
    return n;
}

Test(wccp_pkt, component_rules)
{
    uint8_t buf[WCCP_MSG_MAX], two[WCCP_MSG_MAX];
    wccp_sample_info_t info;
    int n = sample(7, false, buf, &info);

    cr_assert_eq(parse(buf, (size_t)append(buf, n, 99, 8), NULL), WCCP_OK);   /* unknown: skipped */
    n = sample(7, false, buf, &info);
    cr_assert_eq(parse(buf, (size_t)append(buf, n, WCCP_C_ADDR_TABLE, 8), NULL), WCCP_E_UNSUPPORTED);
    n = sample(7, false, buf, &info);
    cr_assert_eq(parse(buf, (size_t)append(buf, n, WCCP_C_QUERY, 16), NULL), WCCP_E_COMPONENT);
    n = sample(7, false, buf, &info);
    cr_assert_eq(parse(buf, (size_t)append(buf, n, 99, 6), NULL), WCCP_E_COMPONENT);  /* not /4 */
    n = sample(0, false, buf, &info);                   /* Here_I_Am with a Router View */
    cr_assert_eq(parse(buf, (size_t)append(buf, n, WCCP_C_ROUTER_VIEW, 20), NULL), WCCP_E_COMPONENT);

    /* Security Info must come first, Service Info second */
    n = sample(7, false, buf, &info);
    memcpy(two, buf, 8);
    memcpy(two + 8, buf + 16, 28);                      /* service, then security */
    memcpy(two + 36, buf + 8, 8);
    memcpy(two + 44, buf + 44, (size_t)n - 44);
    cr_assert_eq(parse(two, (size_t)n, NULL), WCCP_E_MISSING);

    /* a standard service with type 2 */
    n = sample(7, false, buf, &info);
    buf[20] = 2;
    cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_E_COMPONENT);
}

Test(wccp_pkt, bucket_pointing_past_the_cache_list_is_refused)
{
    uint8_t buf[WCCP_MSG_MAX];
    wccp_sample_info_t info;

    for (int i = 4; i <= 5; i++) {
        int n = sample(i, false, buf, &info);
        buf[n - 1] = 2;                                 /* only caches 0 and 1 exist */
        cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_E_COMPONENT);
        buf[n - 1] = 0x81;                              /* alternate-hash flag, cache 1 */
        cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_OK);
        buf[n - 1] = WCCP_BUCKET_NONE;
        cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_OK);
    }
}

Test(wccp_pkt, limits_when_building)
{
    uint8_t buf[WCCP_MSG_MAX];
    static wccp_hia_t m;
    static wccp_ra_t ra;

    m.n_caches = WCCP_CACHES_MAX;
    for (uint32_t i = 0; i < WCCP_CACHES_MAX; i++)
        m.caches[i] = 0x0a000001 + i;
    int n = wccp_build_here_i_am(buf, sizeof(buf), &m);
    cr_assert(n > 0);
    cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_OK);
    cr_assert_eq(msg.wcview.n_caches, WCCP_CACHES_MAX);
    for (int cap = 0; cap < n; cap++)
        cr_assert_eq(wccp_build_here_i_am(buf, (size_t)cap, &m), WCCP_E_SPACE);
    m.n_caches = WCCP_CACHES_MAX + 1;
    cr_assert_eq(wccp_build_here_i_am(buf, sizeof(buf), &m), WCCP_E_INVALID);
    m.n_caches = 0;
    m.n_routers = WCCP_ROUTERS_MAX + 1;
    cr_assert_eq(wccp_build_here_i_am(buf, sizeof(buf), &m), WCCP_E_INVALID);
    m.n_routers = 0;
    m.service.type = 7;
    cr_assert_eq(wccp_build_here_i_am(buf, sizeof(buf), &m), WCCP_E_INVALID);

    ra.assign.n_caches = 1;
    memset(ra.assign.buckets, 1, sizeof(ra.assign.buckets));   /* cache 1 of 1 */
    cr_assert_eq(wccp_build_redirect_assign(buf, sizeof(buf), &ra), WCCP_E_INVALID);
    ra.assign.form = WCCP_AF_MASK;
    ra.assign.alternate = true;
    cr_assert(wccp_build_redirect_assign(buf, sizeof(buf), &ra) > 0);   /* empty mask list */
    ra.assign.form = 5;
    cr_assert_eq(wccp_build_redirect_assign(buf, sizeof(buf), &ra), WCCP_E_INVALID);
}

Test(wccp_pkt, thirty_three_caches_are_too_many)
{
    uint8_t buf[WCCP_MSG_MAX];
    static wccp_hia_t m;

    m.n_caches = WCCP_CACHES_MAX;
    int n = wccp_build_here_i_am(buf, sizeof(buf), &m);
    cr_assert(n > 0);
    /* the Web-Cache View is last: one more cache, counts and lengths fixed */
    size_t at[32];
    int k = components(buf, (size_t)n, at);
    size_t view = at[k - 1], ncache = view + 4 + 4 + 4 + 4 * 0;
    cr_assert_eq(rd16(buf + view), WCCP_C_WC_VIEW);
    wr32(buf + ncache, WCCP_CACHES_MAX + 1);
    wr32(buf + n, 0x0a0000ff);
    wr16(buf + view + 2, (uint16_t)(rd16(buf + view + 2) + 4));
    wr16(buf + 6, (uint16_t)(n + 4 - 8));
    cr_assert_eq(parse(buf, (size_t)n + 4, NULL), WCCP_E_TOO_MANY);
}

Test(wccp_pkt, capabilities_rules)
{
    uint8_t buf[WCCP_MSG_MAX];
    wccp_sample_info_t info;
    int n = sample(2, false, buf, &info);
    size_t at[32];
    int k = components(buf, (size_t)n, at);
    size_t caps = at[k - 1];

    cr_assert_eq(rd16(buf + caps), WCCP_C_CAPS);
    wr16(buf + caps + 4, 7);                            /* unknown type: skipped */
    cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_OK);
    cr_assert_eq(msg.caps.forward, WCCP_FWD_GRE);       /* the default stays */
    wr16(buf + caps + 4, 2);                            /* assignment method twice */
    cr_assert_eq(parse(buf, (size_t)n, NULL), WCCP_E_COMPONENT);
    wr16(buf + caps + 4, 1);
    wr16(buf + caps + 6, 8);                            /* value length 8 */
    cr_assert_neq(parse(buf, (size_t)n, NULL), WCCP_OK);
}

Test(wccp_pkt, strerror_names_every_code)
{
    for (int c = WCCP_E_INVALID; c <= WCCP_OK; c++)
        cr_assert_str_neq(wccp_strerror(c), "unknown error");
    cr_assert_str_eq(wccp_msg_type_str(WCCP_REDIRECT_ASSIGN), "Redirect_Assign");
}
