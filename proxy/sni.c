/*
 * proxy/sni.c: strict, stateless TLS ClientHello parser that finds the SNI
 * host name, the ALPN offers and the ECH flag (the contract is in sni.h).
 *
 * What it does: walks the TLS records of content type 22 at the start of the
 * buffer, reassembles the handshake message they carry (fragments of any
 * size, across any number of records) and checks it against the ClientHello
 * grammar of RFC 8446 section 4.1.2 (which TLS 1.0-1.2 hellos also follow),
 * with RFC 6066 for server_name and RFC 7301 for ALPN.
 *
 * What it does not do: no I/O, no allocation, no state between calls, no
 * copying of the hello (only the host name is copied out), no decryption,
 * no look at extensions other than server_name, ALPN and ECH beyond their
 * framing (so not the RFC 8446 rule that pre_shared_key comes last), and no
 * policy (what to do with a name is the caller's business).
 *
 * How: one pass through a reader that reads the handshake stream and steps
 * over record headers as it meets them. Each check is made as soon as the
 * bytes it needs are there and never looks further, so the first error in
 * the byte stream decides, and a prefix of the input either gives
 * SNI_INCOMPLETE or the same result as the whole input. A read first checks
 * the declared bounds of the enclosing block (past them: SNI_E_MALFORMED),
 * then the bytes received (past them: SNI_INCOMPLETE).
 *
 * Checks, in addition to the structure itself:
 *  - records: type 22, version 3.0..3.4 (the first record's major version
 *    not 3: SNI_NOT_TLS), length 1..2^14, and the record must end within
 *    SNI_PEEK_MAX bytes of the start (else SNI_E_TOO_LARGE); the ClientHello
 *    must end exactly where a record ends (nothing else may share its last
 *    record: the next handshake message of a client comes after a key change
 *    or a server reply);
 *  - handshake: type 1 (client_hello), body length at least the smallest
 *    ClientHello (41 bytes) and small enough that the hello fits in
 *    SNI_PEEK_MAX bytes of records;
 *  - body: legacy_version major 3, session id at most 32 bytes, cipher suites
 *    even and non-empty, compression methods non-empty, no extensions at all
 *    (TLS 1.2 allows that: SNI_NONE) or an extensions block that ends exactly
 *    at the end of the body, each extension within it, no extension type
 *    twice (RFC 8446 section 4.2), GREASE types (0x?a?a, both bytes the same)
 *    skipped and left out of that check;
 *  - server_name: exactly one entry, of name_type 0 host_name (RFC 6066
 *    section 3 allows one name per type, and host_name is the only type;
 *    OpenSSL refuses anything else too), all lengths exact, the name a DNS
 *    name (see sni.h for IP literals and the characters);
 *  - ALPN: the list non-empty and exact, each protocol name 1..255 bytes.
 */
#include "sni.h"

#include <string.h>

#define CT_HANDSHAKE      22
#define CT_ALERT          21
#define TLS_MAJOR         3
#define TLS_MINOR_MAX     4       /* 0x0304, TLS 1.3 */
#define REC_HDR_LEN       5
#define REC_LEN_MAX       16384   /* 2^14, RFC 8446 section 5.1 */
#define HS_HDR_LEN        4
#define HS_CLIENT_HELLO   1
/* version 2 + random 32 + session id 1 + 2 + one suite 2 + 1 + one method 1 */
#define HELLO_BODY_MIN    41
#define RANDOM_LEN        32
#define SESSION_ID_MAX    32
#define LABEL_MAX         63

#define EXT_SERVER_NAME   0x0000
#define EXT_ALPN          0x0010
#define EXT_ECH           0xfe0d
#define EXT_TYPES         65536
#define NAME_TYPE_HOST    0

#define ALERT_FATAL       2
#define ALERT_LEN         7

/* The reader: the handshake stream over the records in buf[0..len). */
typedef struct rd {
    const uint8_t *buf;
    size_t len;
    size_t pos;          /* next byte of buf */
    size_t rec_end;      /* end in buf of the current record (may be > len) */
    size_t hs_off;       /* handshake bytes read so far */
    sni_status_t st;     /* why the last read failed */
    uint16_t rec_version;
} rd_t;

static bool
fail(rd_t *r, sni_status_t st)
{
    r->st = st;
    return false;
}

/* Steps over the record header at r->pos, checking each byte as it comes. */
static bool
rd_record(rd_t *r)
{
    const uint8_t *h = r->buf + r->pos;
    size_t have = r->len - r->pos;
    bool first = r->pos == 0;

    /* not even a header and one byte fit: no need to wait for them */
    if (r->pos + REC_HDR_LEN + 1 > SNI_PEEK_MAX)
        return fail(r, SNI_E_TOO_LARGE);
    if (have < 1)
        return fail(r, SNI_INCOMPLETE);
    if (h[0] != CT_HANDSHAKE)
        return fail(r, first ? SNI_NOT_TLS : SNI_E_MALFORMED);
    if (have < 2)
        return fail(r, SNI_INCOMPLETE);
    if (h[1] != TLS_MAJOR)
        return fail(r, first ? SNI_NOT_TLS : SNI_E_MALFORMED);
    if (have < 3)
        return fail(r, SNI_INCOMPLETE);
    if (h[2] > TLS_MINOR_MAX)
        return fail(r, SNI_E_MALFORMED);
    if (have < REC_HDR_LEN)
        return fail(r, SNI_INCOMPLETE);

    size_t n = (size_t)h[3] << 8 | h[4];
    if (n == 0 || n > REC_LEN_MAX)
        return fail(r, SNI_E_MALFORMED);
    if (r->pos + REC_HDR_LEN + n > SNI_PEEK_MAX)
        return fail(r, SNI_E_TOO_LARGE);
    if (first)
        r->rec_version = (uint16_t)(h[1] << 8 | h[2]);
    r->pos += REC_HDR_LEN;
    r->rec_end = r->pos + n;
    return true;
}

/*
 * Reads n handshake bytes into dst (NULL: skips them). lim is the end, in
 * handshake bytes, of the block being read: reading past it is malformed.
 */
static bool
rd_bytes(rd_t *r, size_t lim, size_t n, uint8_t *dst)
{
    if (n > lim - r->hs_off)
        return fail(r, SNI_E_MALFORMED);
    while (n > 0) {
        if (r->pos == r->rec_end && !rd_record(r))
            return false;
        size_t end = r->rec_end < r->len ? r->rec_end : r->len;
        if (r->pos == end)
            return fail(r, SNI_INCOMPLETE);
        size_t k = end - r->pos < n ? end - r->pos : n;
        if (dst != NULL) {
            memcpy(dst, r->buf + r->pos, k);
            dst += k;
        }
        r->pos += k;
        r->hs_off += k;
        n -= k;
    }
    return true;
}

/* Reads a big-endian integer of 1..3 bytes. */
static bool
rd_uint(rd_t *r, size_t lim, size_t width, size_t *v)
{
    uint8_t b[3];

    if (!rd_bytes(r, lim, width, b))
        return false;
    *v = 0;
    for (size_t i = 0; i < width; i++)
        *v = *v << 8 | b[i];
    return true;
}

static bool
is_grease(size_t type)
{
    return (type & 0x0f0f) == 0x0a0a && (type >> 8) == (type & 0xff);
}

/*
 * Checks the name in out->host as a DNS name and lower-cases it. Returns
 * false (malformed) for a bad name; sets *ip for an IP literal: a name whose
 * last label starts with a digit (no top-level domain does, and resolvers
 * read "127.1" or "10.0x1" as addresses).
 */
static bool
host_check(sni_hello_t *out, bool *ip)
{
    size_t label = 0, last = 0;

    for (size_t i = 0; i < out->host_len; i++) {
        char c = out->host[i];

        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            last = i + 1;
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
        out->host[i] = c;
        if (++label > LABEL_MAX)
            return false;
    }
    if (label == 0)   /* empty name or trailing dot */
        return false;
    *ip = out->host[last] >= '0' && out->host[last] <= '9';
    return true;
}

/* server_name (RFC 6066 section 3): one host_name, exact lengths. */
static bool
parse_server_name(rd_t *r, size_t lim, sni_hello_t *out)
{
    size_t list, type, n;
    bool ip = false;

    if (!rd_uint(r, lim, 2, &list))
        return false;
    if (list != lim - r->hs_off)
        return fail(r, SNI_E_MALFORMED);
    if (!rd_uint(r, lim, 1, &type))
        return false;
    if (type != NAME_TYPE_HOST)
        return fail(r, SNI_E_MALFORMED);
    if (!rd_uint(r, lim, 2, &n))
        return false;
    /* exactly one entry: the name ends the list */
    if (n == 0 || n > SNI_HOST_MAX || n != lim - r->hs_off)
        return fail(r, SNI_E_MALFORMED);
    if (!rd_bytes(r, lim, n, (uint8_t *)out->host))
        return false;
    out->host_len = n;
    if (!host_check(out, &ip))
        return fail(r, SNI_E_MALFORMED);
    if (ip)
        out->host_len = 0;
    out->host[out->host_len] = '\0';
    return true;
}

/* application_layer_protocol_negotiation (RFC 7301 section 3.1). */
static bool
parse_alpn(rd_t *r, size_t lim, sni_hello_t *out)
{
    size_t list, n;
    uint8_t name[8];

    if (!rd_uint(r, lim, 2, &list))
        return false;
    if (list == 0 || list != lim - r->hs_off)
        return fail(r, SNI_E_MALFORMED);
    while (r->hs_off < lim) {
        if (!rd_uint(r, lim, 1, &n))
            return false;
        if (n == 0)
            return fail(r, SNI_E_MALFORMED);
        if (n == 2 || n == 8) {
            if (!rd_bytes(r, lim, n, name))
                return false;
            if (n == 2 && memcmp(name, "h2", 2) == 0)
                out->alpn_h2 = true;
            if (n == 8 && memcmp(name, "http/1.1", 8) == 0)
                out->alpn_http11 = true;
        } else if (!rd_bytes(r, lim, n, NULL)) {
            return false;
        }
    }
    return true;
}

/* The extensions block, from its length field to the end of the body (lim). */
static bool
parse_extensions(rd_t *r, size_t lim, sni_hello_t *out)
{
    uint64_t seen[EXT_TYPES / 64];
    size_t total, type, n;

    memset(seen, 0, sizeof(seen));
    if (!rd_uint(r, lim, 2, &total))
        return false;
    if (total != lim - r->hs_off)
        return fail(r, SNI_E_MALFORMED);
    while (r->hs_off < lim) {
        if (!rd_uint(r, lim, 2, &type) || !rd_uint(r, lim, 2, &n))
            return false;
        if (n > lim - r->hs_off)
            return fail(r, SNI_E_MALFORMED);
        size_t end = r->hs_off + n;
        bool ok;

        if (is_grease(type)) {
            ok = rd_bytes(r, end, n, NULL);
        } else if (seen[type / 64] & (UINT64_C(1) << (type % 64))) {
            return fail(r, SNI_E_MALFORMED);
        } else {
            seen[type / 64] |= UINT64_C(1) << (type % 64);
            switch (type) {
            case EXT_SERVER_NAME:
                ok = parse_server_name(r, end, out);
                break;
            case EXT_ALPN:
                ok = parse_alpn(r, end, out);
                break;
            case EXT_ECH:
                out->ech = true;
                ok = rd_bytes(r, end, n, NULL);
                break;
            default:
                ok = rd_bytes(r, end, n, NULL);
                break;
            }
        }
        if (!ok)
            return false;
        if (r->hs_off != end)    /* the parsers above end at end; kept as a guard */
            return fail(r, SNI_E_MALFORMED);
    }
    return true;
}

/* The ClientHello body (RFC 8446 section 4.1.2), lim = its end. */
static bool
parse_body(rd_t *r, size_t lim, sni_hello_t *out)
{
    size_t v, n;

    if (!rd_uint(r, lim, 2, &v))
        return false;
    if (v >> 8 != TLS_MAJOR)
        return fail(r, SNI_E_MALFORMED);
    out->client_version = (uint16_t)v;
    if (!rd_bytes(r, lim, RANDOM_LEN, NULL) || !rd_uint(r, lim, 1, &n))
        return false;
    if (n > SESSION_ID_MAX)
        return fail(r, SNI_E_MALFORMED);
    if (!rd_bytes(r, lim, n, NULL) || !rd_uint(r, lim, 2, &n))
        return false;
    if (n == 0 || n % 2 != 0)
        return fail(r, SNI_E_MALFORMED);
    if (!rd_bytes(r, lim, n, NULL) || !rd_uint(r, lim, 1, &n))
        return false;
    if (n == 0)
        return fail(r, SNI_E_MALFORMED);
    if (!rd_bytes(r, lim, n, NULL))
        return false;
    if (r->hs_off == lim)     /* no extensions block */
        return true;
    return parse_extensions(r, lim, out);
}

sni_status_t
sni_parse(const uint8_t *buf, size_t len, sni_hello_t *out)
{
    rd_t r = {.buf = buf, .len = len};
    size_t type, n;

    memset(out, 0, sizeof(*out));
    if (!rd_uint(&r, HS_HDR_LEN, 1, &type))
        return r.st;
    if (type != HS_CLIENT_HELLO)
        return SNI_E_MALFORMED;
    if (!rd_uint(&r, HS_HDR_LEN, 3, &n))
        return r.st;
    if (n < HELLO_BODY_MIN)
        return SNI_E_MALFORMED;
    /* the fewest records the hello can travel in, each with its header */
    size_t hs = HS_HDR_LEN + n;
    if (hs + REC_HDR_LEN * ((hs + REC_LEN_MAX - 1) / REC_LEN_MAX) > SNI_PEEK_MAX)
        return SNI_E_TOO_LARGE;
    if (!parse_body(&r, hs, out)) {
        sni_status_t st = r.st;

        memset(out, 0, sizeof(*out));
        return st;
    }
    if (r.pos != r.rec_end) {   /* something else shares the last record */
        memset(out, 0, sizeof(*out));
        return SNI_E_MALFORMED;
    }
    out->record_version = r.rec_version;
    out->consumed = r.pos;
    return out->host_len > 0 ? SNI_FOUND : SNI_NONE;
}

const char *
sni_status_str(sni_status_t s)
{
    switch (s) {
    case SNI_FOUND:
        return "server name found";
    case SNI_NONE:
        return "no server name";
    case SNI_INCOMPLETE:
        return "incomplete ClientHello";
    case SNI_NOT_TLS:
        return "not TLS";
    case SNI_E_MALFORMED:
        return "malformed ClientHello";
    case SNI_E_TOO_LARGE:
        return "ClientHello too large";
    }
    return "unknown SNI status";
}

size_t
sni_alert(uint8_t out[7], uint8_t description, uint16_t record_version)
{
    out[0] = CT_ALERT;
    out[1] = (uint8_t)(record_version >> 8);
    out[2] = (uint8_t)record_version;
    out[3] = 0;
    out[4] = 2;                 /* length: level + description */
    out[5] = ALERT_FATAL;
    out[6] = description;
    return ALERT_LEN;
}
