/*
 * tests/unit/proxy/test_sni.c: tests of the ClientHello / SNI parser
 * (proxy/sni.c) on real ClientHellos: each test runs an OpenSSL client on a
 * pair of memory BIOs and takes the bytes its SSL_connect() writes (and the
 * Chromium and GnuTLS hellos kept in tests/fuzz/corpus/sni/, found through
 * MP_SRCDIR, are checked too). Those hellos are then fed whole, at every
 * prefix (any TCP split), re-framed into records of every size, with extensions added (GREASE, ECH, duplicates,
 * padding up to and past SNI_PEEK_MAX), with each length field the parser
 * reads made wrong, and with hand-made server names. Every input is parsed
 * from a heap copy of its exact size, so the ASan build catches a read past
 * len. The alert bytes are checked by feeding them to the OpenSSL client.
 * Not here: randomised inputs (tests/fuzz/fuzz_sni.c).
 */
#include <criterion/criterion.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../proxy/sni.h"

#define BUF_MAX      (4 * SNI_PEEK_MAX)
#define MODEL_EXTS   64
#define PRE_MAX      512
#define EXT_KEY_SHARE 51
#define EXT_PADDING  21
#define EXT_EMS      23

static const uint8_t alpn_both[] = "\x02h2\x08http/1.1";
static const uint8_t alpn_11[] = "\x08http/1.1";

/* ---- Real hellos and their parts ---- */

/* The first flight of an OpenSSL client; ssl_out is kept if non-NULL. */
static size_t
capture(const char *host, const uint8_t *alpn, size_t alpn_len, int max_version,
        uint8_t *out, SSL **ssl_out)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    cr_assert(ctx != NULL);
    if (max_version != 0)
        cr_assert(SSL_CTX_set_max_proto_version(ctx, max_version) == 1);
    SSL *ssl = SSL_new(ctx);
    cr_assert(ssl != NULL);
    SSL_CTX_free(ctx);   /* ssl holds a reference */
    SSL_set_bio(ssl, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
    if (host != NULL)
        cr_assert(SSL_set_tlsext_host_name(ssl, host) == 1);
    if (alpn != NULL)
        cr_assert(SSL_set_alpn_protos(ssl, alpn, (unsigned)alpn_len) == 0);
    cr_assert(SSL_connect(ssl) == -1);
    cr_assert(SSL_get_error(ssl, -1) == SSL_ERROR_WANT_READ);

    char *p;
    long n = BIO_get_mem_data(SSL_get_wbio(ssl), &p);
    cr_assert(n > 0 && n < BUF_MAX);
    memcpy(out, p, (size_t)n);
    (void)BIO_reset(SSL_get_wbio(ssl));
    if (ssl_out != NULL)
        *ssl_out = ssl;
    else
        SSL_free(ssl);
    return (size_t)n;
}

/*
 * A hello taken apart: the body up to the extensions (pre) and the
 * extensions, whose data point into buffers the test owns.
 */
typedef struct model {
    uint8_t pre[PRE_MAX];
    size_t pre_len;
    bool no_ext_block;
    size_t n_ext;
    struct { uint16_t type; uint8_t *data; size_t len; } ext[MODEL_EXTS];
} model_t;

static size_t
be(const uint8_t *p, size_t w)
{
    size_t v = 0;
    for (size_t i = 0; i < w; i++)
        v = v << 8 | p[i];
    return v;
}

static void
put(uint8_t *p, size_t w, size_t v)
{
    for (size_t i = 0; i < w; i++)
        p[i] = (uint8_t)(v >> (8 * (w - 1 - i)));
}

/*
 * Takes apart a one-record hello in rec (as OpenSSL writes it) and zeroes
 * its random parts (random, session id, key shares) so that the tests that
 * shift fields read the same bytes on every run.
 */
static void
take_apart(uint8_t *rec, size_t n, model_t *m)
{
    memset(m, 0, sizeof(*m));
    cr_assert(rec[0] == 22 && be(rec + 3, 2) == n - 5 && rec[5] == 1);
    uint8_t *b = rec + 9, *end = rec + n;
    size_t off = 34 + 1 + b[34];

    memset(b + 2, 0, 32);
    memset(b + 35, 0, b[34]);
    off += 2 + be(b + off, 2);
    off += 1 + b[off];
    cr_assert(off < PRE_MAX);
    memcpy(m->pre, b, off);
    m->pre_len = off;
    cr_assert(be(b + off, 2) == (size_t)(end - b) - off - 2);
    for (uint8_t *e = b + off + 2; e < end; m->n_ext++) {
        cr_assert(m->n_ext < MODEL_EXTS);
        m->ext[m->n_ext].type = (uint16_t)be(e, 2);
        m->ext[m->n_ext].len = be(e + 2, 2);
        m->ext[m->n_ext].data = e + 4;
        if (m->ext[m->n_ext].type == EXT_KEY_SHARE)
            for (uint8_t *k = e + 6; k < e + 4 + be(e + 2, 2); k += 4 + be(k + 2, 2))
                memset(k + 4, 0, be(k + 2, 2));
        e += 4 + m->ext[m->n_ext].len;
    }
}

static int
find_ext(const model_t *m, uint16_t type)
{
    for (size_t i = 0; i < m->n_ext; i++)
        if (m->ext[i].type == type)
            return (int)i;
    return -1;
}

static void
add_ext(model_t *m, size_t at, uint16_t type, uint8_t *data, size_t len)
{
    cr_assert(m->n_ext < MODEL_EXTS && at <= m->n_ext);
    memmove(&m->ext[at + 1], &m->ext[at], (m->n_ext - at) * sizeof(m->ext[0]));
    m->ext[at].type = type;
    m->ext[at].data = data;
    m->ext[at].len = len;
    m->n_ext++;
}

/* The handshake message (header + body) of m. */
static size_t
encode(const model_t *m, uint8_t *out)
{
    size_t n = 4;

    memcpy(out + n, m->pre, m->pre_len);
    n += m->pre_len;
    if (!m->no_ext_block) {
        size_t at = n;
        n += 2;
        for (size_t i = 0; i < m->n_ext; i++) {
            put(out + n, 2, m->ext[i].type);
            put(out + n + 2, 2, m->ext[i].len);
            memcpy(out + n + 4, m->ext[i].data, m->ext[i].len);
            n += 4 + m->ext[i].len;
        }
        put(out + at, 2, n - at - 2);
    }
    out[0] = 1;
    put(out + 1, 3, n - 4);
    return n;
}

/* hs[0..n) in records of rec bytes (the last may be shorter). */
static size_t
frame(const uint8_t *hs, size_t n, size_t rec, uint8_t *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i += rec) {
        size_t k = n - i < rec ? n - i : rec;
        out[o] = 22;
        put(out + o + 1, 2, 0x0301);
        put(out + o + 3, 2, k);
        memcpy(out + o + 5, hs + i, k);
        o += 5 + k;
    }
    return o;
}

static size_t
model_frame(const model_t *m, size_t rec, uint8_t *out)
{
    static uint8_t hs[BUF_MAX];
    size_t n = encode(m, hs);
    return frame(hs, n, rec, out);
}

/* Parses a heap copy of exactly n bytes (ASan sees any read past it). */
static sni_status_t
parse(const uint8_t *buf, size_t n, sni_hello_t *h)
{
    uint8_t *p = malloc(n > 0 ? n : 1);
    cr_assert(p != NULL);
    memcpy(p, buf, n);
    sni_status_t st = sni_parse(p, n, h);
    free(p);
    if (st == SNI_FOUND || st == SNI_NONE)
        cr_assert(h->consumed > 0 && h->consumed <= n);
    return st;
}

static void
expect(const uint8_t *buf, size_t n, sni_status_t want, const char *what)
{
    sni_hello_t h;
    sni_status_t st = parse(buf, n, &h);
    cr_assert(st == want, "%s: %s, want %s", what, sni_status_str(st), sni_status_str(want));
}

static void
expect_host(const uint8_t *buf, size_t n, const char *host)
{
    sni_hello_t h;
    sni_status_t st = parse(buf, n, &h);
    cr_assert(st == SNI_FOUND, "%s: %s", host, sni_status_str(st));
    cr_assert_str_eq(h.host, host);
    cr_assert(h.host_len == strlen(host));
    cr_assert(h.consumed == n);
}

static uint8_t hello[BUF_MAX], work[BUF_MAX];

/* The standard fixture: TLS 1.3-capable OpenSSL, SNI www.example.com, h2 + http/1.1. */
static size_t
std_hello(model_t *m)
{
    size_t n = capture("www.example.com", alpn_both, sizeof(alpn_both) - 1, 0, hello, NULL);
    if (m != NULL)
        take_apart(hello, n, m);
    return n;
}

/* ---- Real hellos ---- */

Test(sni, openssl_hello)
{
    sni_hello_t h;
    size_t n = std_hello(NULL);

    cr_assert(parse(hello, n, &h) == SNI_FOUND);
    cr_assert_str_eq(h.host, "www.example.com");
    cr_assert(h.host_len == 15 && h.consumed == n);
    cr_assert(h.alpn_h2 && h.alpn_http11 && !h.ech);
    cr_assert(h.record_version == 0x0301 && h.client_version == 0x0303);
}

Test(sni, openssl_hello_tls12_upper_case_name)
{
    sni_hello_t h;
    size_t n = capture("Mixed.Example.ORG", alpn_11, sizeof(alpn_11) - 1, TLS1_2_VERSION, hello, NULL);

    cr_assert(parse(hello, n, &h) == SNI_FOUND);
    cr_assert_str_eq(h.host, "mixed.example.org");
    cr_assert(!h.alpn_h2 && h.alpn_http11);
    cr_assert(h.client_version == 0x0303);
}

Test(sni, openssl_hello_without_sni_or_alpn)
{
    sni_hello_t h;
    size_t n = capture(NULL, NULL, 0, 0, hello, NULL);

    cr_assert(parse(hello, n, &h) == SNI_NONE);
    cr_assert(h.host_len == 0 && h.host[0] == '\0' && h.consumed == n);
    cr_assert(!h.alpn_h2 && !h.alpn_http11);
}

/* A hello another client wrote, kept in the fuzz corpus (tests/fuzz/gen_sni_corpus.py). */
static size_t
corpus_hello(const char *name, uint8_t *out)
{
    char path[4096];
    const char *src = getenv("MP_SRCDIR");

    cr_assert(src != NULL, "MP_SRCDIR is not set");
    snprintf(path, sizeof(path), "%s/tests/fuzz/corpus/sni/%s", src, name);
    FILE *f = fopen(path, "rb");
    cr_assert(f != NULL, "%s", path);
    size_t n = fread(out, 1, BUF_MAX, f);
    fclose(f);
    return n;
}

/* Chromium's hello has GREASE extensions (first and last) and a GREASE ECH extension. */
Test(sni, chromium_hello)
{
    sni_hello_t h;
    model_t m;
    size_t n = corpus_hello("chromium", hello);

    cr_assert(parse(hello, n, &h) == SNI_FOUND);
    cr_assert_str_eq(h.host, "chromium.example");
    cr_assert(h.ech && h.alpn_h2 && h.alpn_http11 && h.consumed == n);
    for (size_t k = 0; k < n; k++)
        expect(hello, k, SNI_INCOMPLETE, "chromium prefix");
    take_apart(hello, n, &m);
    cr_assert(m.ext[0].type == (m.ext[0].type & 0xf0f0) + 0x0a0a);   /* GREASE first */
    for (size_t rec = 1; rec < n; rec += 13) {
        size_t k = model_frame(&m, rec, work);
        expect_host(work, k, "chromium.example");
    }
}

Test(sni, gnutls_hello)
{
    sni_hello_t h;
    size_t n = corpus_hello("gnutls-cli", hello);

    cr_assert(parse(hello, n, &h) == SNI_FOUND);
    cr_assert_str_eq(h.host, "gnutls.example");
    cr_assert(!h.ech && h.alpn_h2 && h.alpn_http11 && h.consumed == n);
}

Test(sni, every_prefix_then_found)
{
    size_t n = std_hello(NULL);

    for (size_t k = 0; k < n; k++)
        expect(hello, k, SNI_INCOMPLETE, "prefix");
    expect_host(hello, n, "www.example.com");
}

Test(sni, bytes_after_the_hello_are_not_read)
{
    sni_hello_t h;
    size_t n = std_hello(NULL);

    memcpy(hello + n, "\x14\x03\x03\x00\x01\x01" "\x17\x03\x03\x00\x05" "abcde", 16);
    cr_assert(parse(hello, n + 16, &h) == SNI_FOUND);
    cr_assert(h.consumed == n);
}

/* ---- Records ---- */

Test(sni, every_record_size)
{
    model_t m;
    size_t hs_len = std_hello(&m) - 5;

    for (size_t rec = 1; rec <= hs_len; rec++) {
        size_t n = model_frame(&m, rec, work);
        expect_host(work, n, "www.example.com");
    }
}

Test(sni, every_prefix_over_many_records)
{
    model_t m;
    std_hello(&m);
    size_t n = model_frame(&m, 7, work);

    for (size_t k = 0; k < n; k++)
        expect(work, k, SNI_INCOMPLETE, "prefix of 7-byte records");
    expect_host(work, n, "www.example.com");
}

Test(sni, uneven_records)
{
    static uint8_t hs[BUF_MAX];
    model_t m;
    std_hello(&m);
    size_t hs_n = encode(&m, hs), n = 0;
    unsigned seed = 1;

    for (size_t i = 0, k; i < hs_n; i += k) {
        seed = seed * 1103515245u + 12345u;
        k = 1 + (seed >> 16) % 40;
        if (k > hs_n - i)
            k = hs_n - i;
        n += frame(hs + i, k, k, work + n);
    }
    expect_host(work, n, "www.example.com");
}

Test(sni, record_headers)
{
    model_t m;
    std_hello(&m);
    size_t n = model_frame(&m, 100, work);

    memcpy(hello, work, n);
    hello[105] = 21;                        /* an alert inside the hello */
    expect(hello, n, SNI_E_MALFORMED, "second record not a handshake");
    memcpy(hello, work, n);
    hello[106] = 2;
    expect(hello, n, SNI_E_MALFORMED, "second record version 2.x");
    memcpy(hello, work, n);
    hello[2] = 5;
    expect(hello, n, SNI_E_MALFORMED, "record version 3.5");
    expect(hello, 3, SNI_E_MALFORMED, "record version 3.5, 3 bytes");
    memcpy(hello, work, n);
    hello[1] = 3, hello[2] = 0;
    expect_host(hello, n, "www.example.com");  /* record version 3.0 */
    put(hello + 3, 2, 0);
    expect(hello, n, SNI_E_MALFORMED, "empty record");
    put(hello + 3, 2, 16385);
    expect(hello, 5, SNI_E_MALFORMED, "record over 2^14");
}

Test(sni, not_tls)
{
    static const uint8_t sslv2[] = {0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15};

    expect((const uint8_t *)"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 27, SNI_NOT_TLS, "HTTP");
    expect((const uint8_t *)"G", 1, SNI_NOT_TLS, "one byte of HTTP");
    expect(sslv2, sizeof(sslv2), SNI_NOT_TLS, "SSLv2-compatible hello");
    expect((const uint8_t *)"\x15\x03\x03\x00\x02\x02\x28", 7, SNI_NOT_TLS, "alert record");
    expect((const uint8_t *)"\x16\x00", 2, SNI_NOT_TLS, "handshake type, major 0");
    expect((const uint8_t *)"", 0, SNI_INCOMPLETE, "nothing yet");
    expect((const uint8_t *)"\x16", 1, SNI_INCOMPLETE, "one byte of TLS");
    expect((const uint8_t *)"\x16\x03\x01\x00\x30\x02", 6, SNI_E_MALFORMED, "server_hello");
}

/* ---- Sizes ---- */

static uint8_t pad[2 * SNI_PEEK_MAX];

/* The standard hello padded so that its handshake message has hs_len bytes. */
static void
padded(model_t *m, size_t hs_len)
{
    static uint8_t hs[BUF_MAX];
    size_t base;

    std_hello(m);
    add_ext(m, m->n_ext, EXT_PADDING, pad, 0);
    base = encode(m, hs);
    cr_assert(hs_len >= base);
    m->ext[m->n_ext - 1].len = hs_len - base;
}

Test(sni, largest_hello_fits)
{
    model_t m;

    padded(&m, SNI_PEEK_MAX - 5);
    size_t n = model_frame(&m, SNI_PEEK_MAX, work);
    cr_assert(n == SNI_PEEK_MAX);
    expect_host(work, n, "www.example.com");
    expect(work, n - 1, SNI_INCOMPLETE, "largest, one byte short");
}

Test(sni, too_large)
{
    model_t m;

    padded(&m, SNI_PEEK_MAX - 4);         /* needs two records */
    size_t n = model_frame(&m, SNI_PEEK_MAX, work);
    expect(work, 9, SNI_E_TOO_LARGE, "handshake length, header only");
    expect(work, n, SNI_E_TOO_LARGE, "handshake length");

    padded(&m, SNI_PEEK_MAX - 5);         /* fits one record, not two */
    n = model_frame(&m, SNI_PEEK_MAX - 100, work);
    expect(work, n, SNI_E_TOO_LARGE, "second record past SNI_PEEK_MAX");
    expect(work, SNI_PEEK_MAX - 100 + 10, SNI_E_TOO_LARGE, "second record header");

    std_hello(&m);                        /* small hello, tiny records */
    padded(&m, 3000);
    n = model_frame(&m, 1, work);
    expect(work, n, SNI_E_TOO_LARGE, "3000 one-byte records");
    expect(work, SNI_PEEK_MAX, SNI_E_TOO_LARGE, "3000 one-byte records, first 16 KiB");
}

/* ---- Extensions ---- */

Test(sni, grease)
{
    static uint8_t one[] = {0};
    model_t m;
    std_hello(&m);

    add_ext(&m, 0, 0x0a0a, one, 0);
    add_ext(&m, m.n_ext, 0xfafa, one, 1);
    add_ext(&m, m.n_ext, 0xfafa, one, 1);   /* GREASE is not duplicate-checked */
    size_t n = model_frame(&m, SNI_PEEK_MAX, work);
    expect_host(work, n, "www.example.com");
    m.ext[0].type = 0x0a1a;                 /* not GREASE: an unknown type */
    n = model_frame(&m, SNI_PEEK_MAX, work);
    expect_host(work, n, "www.example.com");
    m.ext[m.n_ext - 1].type = m.ext[m.n_ext - 2].type = 0x0a1a;
    n = model_frame(&m, SNI_PEEK_MAX, work);
    expect(work, n, SNI_E_MALFORMED, "0x0a1a twice (not GREASE)");
}

Test(sni, ech_outer_name)
{
    static uint8_t ech[] = {0, 0, 1, 0, 1, 7, 0, 2, 0xaa, 0xbb, 0, 1, 0xcc};
    sni_hello_t h;
    model_t m;
    std_hello(&m);

    add_ext(&m, 3, 0xfe0d, ech, sizeof(ech));
    size_t n = model_frame(&m, SNI_PEEK_MAX, work);
    cr_assert(parse(work, n, &h) == SNI_FOUND);
    cr_assert(h.ech && strcmp(h.host, "www.example.com") == 0);
}

Test(sni, duplicates)
{
    static uint8_t none[1];
    model_t m;
    std_hello(&m);
    int sni = find_ext(&m, 0);
    cr_assert(sni >= 0);

    add_ext(&m, m.n_ext, 0, m.ext[sni].data, m.ext[sni].len);
    size_t n = model_frame(&m, SNI_PEEK_MAX, work);
    expect(work, n, SNI_E_MALFORMED, "server_name twice");

    std_hello(&m);
    add_ext(&m, 0, EXT_EMS, none, 0);
    add_ext(&m, m.n_ext, EXT_EMS, none, 0);
    n = model_frame(&m, SNI_PEEK_MAX, work);
    expect(work, n, SNI_E_MALFORMED, "extended_master_secret twice");
}

Test(sni, no_extensions)
{
    model_t m;
    std_hello(&m);

    m.n_ext = 0;
    size_t n = model_frame(&m, SNI_PEEK_MAX, work);
    expect(work, n, SNI_NONE, "empty extensions block");
    m.no_ext_block = true;
    n = model_frame(&m, SNI_PEEK_MAX, work);
    expect(work, n, SNI_NONE, "no extensions block");
    expect(work, n - 1, SNI_INCOMPLETE, "no extensions block, short");
}

/* A hello whose server_name extension data is ext[0..len). */
static size_t
with_sni_ext(uint8_t *ext, size_t len)
{
    model_t m;
    std_hello(&m);
    int i = find_ext(&m, 0);
    cr_assert(i >= 0);
    m.ext[i].data = ext;
    m.ext[i].len = len;
    return model_frame(&m, SNI_PEEK_MAX, work);
}

static size_t
with_name(const char *name, size_t len)
{
    static uint8_t ext[300];
    put(ext, 2, len + 3);
    ext[2] = 0;
    put(ext + 3, 2, len);
    memcpy(ext + 5, name, len);
    return with_sni_ext(ext, len + 5);
}

#define NAME(s) (s), (sizeof(s) - 1)

Test(sni, server_names)
{
    static const struct { const char *name; size_t len; sni_status_t st; const char *host; } c[] = {
        {NAME("a"), SNI_FOUND, "a"},
        {NAME("_srv.Under_Score.example"), SNI_FOUND, "_srv.under_score.example"},
        {NAME("xn--bcher-kva.example"), SNI_FOUND, "xn--bcher-kva.example"},
        {NAME("-lead.example"), SNI_FOUND, "-lead.example"},
        {NAME("1e100.net"), SNI_FOUND, "1e100.net"},
        {NAME("192.0.2.1"), SNI_NONE, ""},
        {NAME("127.1"), SNI_NONE, ""},
        {NAME("10.0x1"), SNI_NONE, ""},
        {NAME("2001:db8::1"), SNI_E_MALFORMED, NULL},
        {NAME("[::1]"), SNI_E_MALFORMED, NULL},
        {NAME("example.com."), SNI_E_MALFORMED, NULL},
        {NAME(".example.com"), SNI_E_MALFORMED, NULL},
        {NAME("a..b"), SNI_E_MALFORMED, NULL},
        {NAME("."), SNI_E_MALFORMED, NULL},
        {NAME("exa mple.com"), SNI_E_MALFORMED, NULL},
        {NAME("a\0b"), SNI_E_MALFORMED, NULL},
        {NAME("caf\xc3\xa9.example"), SNI_E_MALFORMED, NULL},
        {NAME("a*.example"), SNI_E_MALFORMED, NULL},
        {NAME("host:443"), SNI_E_MALFORMED, NULL},
        {NAME(""), SNI_E_MALFORMED, NULL},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        sni_hello_t h;
        size_t n = with_name(c[i].name, c[i].len);
        sni_status_t st = parse(work, n, &h);
        cr_assert(st == c[i].st, "case %zu: %s", i, sni_status_str(st));
        if (c[i].host != NULL)
            cr_assert_str_eq(h.host, c[i].host, "case %zu", i);
    }
}

Test(sni, name_and_label_limits)
{
    char name[300];

    memset(name, 'a', sizeof(name));
    for (size_t i = 63; i < sizeof(name); i += 64)
        name[i] = '.';
    size_t n = with_name(name, SNI_HOST_MAX);
    expect(work, n, SNI_FOUND, "255 bytes, labels of 63");
    n = with_name(name, SNI_HOST_MAX + 1);
    expect(work, n, SNI_E_MALFORMED, "256 bytes");
    memset(name, 'a', 64);
    n = with_name(name, 64);
    expect(work, n, SNI_E_MALFORMED, "label of 64");
    n = with_name(name, 63);
    expect(work, n, SNI_FOUND, "label of 63");
}

Test(sni, server_name_list)
{
    static uint8_t two[] = {0, 8, 0, 0, 1, 'a', 0, 0, 1, 'b'};
    static uint8_t type1[] = {0, 4, 1, 0, 1, 'a'};
    static uint8_t empty_list[] = {0, 0};
    static uint8_t trailing[] = {0, 5, 0, 0, 1, 'a', 0};
    /* a short name followed by what reads as an empty extension */
    static uint8_t smuggled[] = {0, 8, 0, 0, 1, 'a', 0, EXT_EMS, 0, 0};

    size_t n = with_sni_ext(two, sizeof(two));
    expect(work, n, SNI_E_MALFORMED, "two host names");
    n = with_sni_ext(type1, sizeof(type1));
    expect(work, n, SNI_E_MALFORMED, "name_type 1");
    n = with_sni_ext(empty_list, sizeof(empty_list));
    expect(work, n, SNI_E_MALFORMED, "empty list");
    n = with_sni_ext(empty_list, 0);
    expect(work, n, SNI_E_MALFORMED, "empty extension");
    n = with_sni_ext(trailing, sizeof(trailing));
    expect(work, n, SNI_E_MALFORMED, "a byte after the name");
    n = with_sni_ext(smuggled, sizeof(smuggled));
    expect(work, n, SNI_E_MALFORMED, "an extension inside server_name");
}

Test(sni, alpn_lists)
{
    static uint8_t h2_only[] = {0, 3, 2, 'h', '2'};
    static uint8_t odd[] = {0, 12, 3, 'h', '2', 'c', 7, 'h', 't', 't', 'p', '/', '1', '.'};
    static uint8_t empty_name[] = {0, 4, 0, 2, 'h', '2'};
    static uint8_t empty_list[] = {0, 0};
    static const struct { uint8_t *d; size_t len; sni_status_t st; bool h2, h11; } c[] = {
        {h2_only, sizeof(h2_only), SNI_FOUND, true, false},
        {odd, sizeof(odd), SNI_FOUND, false, false},
        {empty_name, sizeof(empty_name), SNI_E_MALFORMED, false, false},
        {empty_list, sizeof(empty_list), SNI_E_MALFORMED, false, false},
        {empty_list, 0, SNI_E_MALFORMED, false, false},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
        sni_hello_t h;
        model_t m;
        std_hello(&m);
        int a = find_ext(&m, 16);
        cr_assert(a >= 0);
        m.ext[a].data = c[i].d;
        m.ext[a].len = c[i].len;
        size_t n = model_frame(&m, SNI_PEEK_MAX, work);
        cr_assert(parse(work, n, &h) == c[i].st, "case %zu", i);
        if (c[i].st == SNI_FOUND)
            cr_assert(h.alpn_h2 == c[i].h2 && h.alpn_http11 == c[i].h11, "case %zu", i);
    }
}

/* ---- Every length field the parser reads, made wrong ---- */

typedef struct field { size_t off, width; const char *what; } field_t;

/* The length fields of the one-record hello rec[0..n), as the parser sees them. */
static size_t
length_fields(const uint8_t *rec, size_t n, field_t *f)
{
    size_t k = 0, o;

    f[k++] = (field_t){3, 2, "record"};
    f[k++] = (field_t){6, 3, "handshake"};
    o = 9 + 34;
    f[k++] = (field_t){o, 1, "session id"};
    o += 1 + rec[o];
    f[k++] = (field_t){o, 2, "cipher suites"};
    o += 2 + be(rec + o, 2);
    f[k++] = (field_t){o, 1, "compression"};
    o += 1 + rec[o];
    f[k++] = (field_t){o, 2, "extensions"};
    for (o += 2; o < n; o += 4 + be(rec + o + 2, 2)) {
        size_t type = be(rec + o, 2), d = o + 4;
        f[k++] = (field_t){o + 2, 2, "one extension"};
        if (type == 0) {
            f[k++] = (field_t){d, 2, "server name list"};
            f[k++] = (field_t){d + 3, 2, "host name"};
        } else if (type == 16) {
            f[k++] = (field_t){d, 2, "ALPN list"};
            for (size_t a = d + 2; a < d + 2 + be(rec + d, 2); a += 1 + rec[a])
                f[k++] = (field_t){a, 1, "protocol name"};
        }
    }
    return k;
}

Test(sni, hostile_lengths)
{
    model_t m;
    field_t f[128];
    std_hello(&m);
    size_t n = model_frame(&m, SNI_PEEK_MAX, hello);
    size_t nf = length_fields(hello, n, f);

    cr_assert(nf >= 12);
    for (size_t i = 0; i < nf; i++) {
        size_t orig = be(hello + f[i].off, f[i].width);
        size_t max = ((size_t)1 << (8 * f[i].width)) - 1;
        size_t vals[] = {orig + 1, orig - 1, 0, max};

        for (size_t v = 0; v < sizeof(vals) / sizeof(vals[0]); v++) {
            if (vals[v] == orig || vals[v] > max)
                continue;
            memcpy(work, hello, n);
            put(work + f[i].off, f[i].width, vals[v]);
            sni_hello_t h;
            sni_status_t st = parse(work, n, &h);

            if (i == 0 && (vals[v] == orig + 1 || vals[v] == orig - 1)) {
                /* the record ends elsewhere: wait, or read a bad header; more bytes settle it */
                cr_assert(st == SNI_INCOMPLETE || st == SNI_E_MALFORMED, "record %zu: %s", vals[v],
                          sni_status_str(st));
                memset(work + n, 0, 8);
                st = parse(work, n + 8, &h);
                cr_assert(st == SNI_E_MALFORMED, "record %zu + padding", vals[v]);
            } else if (i == 1 && v == 3) {
                cr_assert(st == SNI_E_TOO_LARGE, "handshake length 2^24-1: %s", sni_status_str(st));
            } else {
                cr_assert(st == SNI_E_MALFORMED, "%s length %zu (was %zu): %s", f[i].what,
                          vals[v], orig, sni_status_str(st));
            }
            /* and no prefix claims anything else */
            for (size_t k = 0; k < n; k += 17) {
                sni_status_t p = parse(work, k, &h);
                cr_assert(p == SNI_INCOMPLETE || p == st, "%s %zu prefix %zu", f[i].what, vals[v], k);
            }
        }
    }
}

/* The standard hello with session id, cipher suites and compression methods replaced. */
static size_t
with_pre(const uint8_t *sid, size_t sid_len, const uint8_t *cs, size_t cs_len,
         const uint8_t *comp, size_t comp_len)
{
    model_t m;
    size_t o = 34;

    std_hello(&m);
    m.pre[o++] = (uint8_t)sid_len;
    memcpy(m.pre + o, sid, sid_len);
    o += sid_len;
    put(m.pre + o, 2, cs_len);
    memcpy(m.pre + o + 2, cs, cs_len);
    o += 2 + cs_len;
    m.pre[o++] = (uint8_t)comp_len;
    memcpy(m.pre + o, comp, comp_len);
    m.pre_len = o + comp_len;
    return model_frame(&m, SNI_PEEK_MAX, work);
}

Test(sni, body_lists)
{
    static const uint8_t z[64], cs[] = {0x13, 0x01, 0x13, 0x02, 0x13};

    expect_host(work, with_pre(z, 0, cs, 2, z, 1), "www.example.com");
    expect_host(work, with_pre(z, 32, cs, 4, z, 3), "www.example.com");
    expect(work, with_pre(z, 33, cs, 2, z, 1), SNI_E_MALFORMED, "session id of 33");
    expect(work, with_pre(z, 0, cs, 3, z, 1), SNI_E_MALFORMED, "odd cipher suites");
    expect(work, with_pre(z, 0, cs, 0, z, 1), SNI_E_MALFORMED, "no cipher suites");
    expect(work, with_pre(z, 0, cs, 2, z, 0), SNI_E_MALFORMED, "no compression methods");
}

Test(sni, body_fields)
{
    model_t m;
    size_t n;

    std_hello(&m);
    m.pre[0] = 2;
    n = model_frame(&m, SNI_PEEK_MAX, work);
    expect(work, n, SNI_E_MALFORMED, "legacy_version 2.3");
    std_hello(&m);
    n = model_frame(&m, SNI_PEEK_MAX, work);
    work[5] = 2;
    expect(work, 6, SNI_E_MALFORMED, "handshake type 2, first byte");
    work[5] = 1;
    put(work + 6, 3, 40);
    expect(work, 9, SNI_E_MALFORMED, "body of 40 bytes");
}

/* ---- Alerts ---- */

/* The alert as an OpenSSL client sees it right after its hello. */
static unsigned long
client_error_for(uint8_t description)
{
    uint8_t a[7];
    SSL *ssl;

    capture("www.example.com", NULL, 0, 0, hello, &ssl);
    cr_assert(sni_alert(a, description, 0x0303) == 7);
    cr_assert(BIO_write(SSL_get_rbio(ssl), a, 7) == 7);
    ERR_clear_error();
    cr_assert(SSL_connect(ssl) <= 0);
    cr_assert(SSL_get_error(ssl, -1) == SSL_ERROR_SSL);
    unsigned long e = ERR_GET_REASON(ERR_peek_error());
    SSL_free(ssl);
    return e;
}

Test(sni, alert_bytes)
{
    uint8_t a[7];

    cr_assert(sni_alert(a, 112, 0x0301) == 7);
    cr_assert(memcmp(a, "\x15\x03\x01\x00\x02\x02\x70", 7) == 0);
    cr_assert(sni_alert(a, 49, 0x0303) == 7);
    cr_assert(memcmp(a, "\x15\x03\x03\x00\x02\x02\x31", 7) == 0);
    expect(a, 7, SNI_NOT_TLS, "our own alert");
}

Test(sni, alert_seen_by_openssl)
{
    cr_assert(client_error_for(112) == SSL_R_TLSV1_UNRECOGNIZED_NAME);
    cr_assert(client_error_for(49) == SSL_R_TLSV1_ALERT_ACCESS_DENIED);
}

Test(sni, status_strings)
{
    for (int s = SNI_FOUND; s <= SNI_E_TOO_LARGE; s++)
        cr_assert(strcmp(sni_status_str((sni_status_t)s), "unknown SNI status") != 0);
    cr_assert_str_eq(sni_status_str((sni_status_t)99), "unknown SNI status");
}
