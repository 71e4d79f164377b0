/*
 * proxy/http.c: strict, incremental, zero-copy HTTP/1.1 message parser (the
 * contract is in http.h).
 *
 * What it does: splits a request or response head into start line and
 * header fields, validates them against RFC 9112 with the extra smuggling
 * rules listed in http.h, derives the message framing (body kind, length,
 * keep-alive, Connection tokens) and, for requests, the target authority
 * and path. It also scans chunked bodies, validating the framing and
 * optionally stripping it.
 *
 * What it does not do: no I/O, no allocation, no copying of the head, no
 * policy (which hosts, ports or methods are allowed is the proxy's
 * business), no decoding of percent-escapes, no header merging or
 * rewriting, and no repair of anything ambiguous: ambiguity is an error.
 *
 * How a head is parsed: the caller hands us everything received so far.
 * A first pass finds the end of the head line by line with memchr() for
 * LF, checking on the way that each LF follows a CR and that the start
 * line and field count are within limits. That pass is all a call on an
 * incomplete head costs (plus a look at the start line), which keeps
 * repeated calls on a slowly growing buffer cheap, and it refuses lone-LF
 * heads at once instead of waiting for a "\r\n\r\n" that never comes. The
 * second pass parses the complete head; field values and targets are
 * validated eight bytes at a time (SWAR) where possible.
 *
 * Where the RFC leaves a choice, we pick the strict one:
 *  - absolute-form "http://host?query" (empty path with a query) is refused
 *    as HTTP_E_TARGET, since the path cannot be rewritten to "/?query"
 *    without copying;
 *  - host names are limited to ALPHA / DIGIT / "-" / "." / "_" / "~" (no
 *    percent-encoding or sub-delims), IP literals to hex digits, ":" and
 *    "."; an explicit port must be 1..65535 (an empty port is refused);
 *  - Content-Length values above INT64_MAX count as overflow;
 *  - a response's Transfer-Encoding with "chunked" twice, or chunked with
 *    parameters, is HTTP_E_SMUGGLING; an HTTP/1.0 response with
 *    Transfer-Encoding is read until close (RFC 9112 section 6.1);
 *  - chunk sizes take no whitespace before ";" or CRLF.
 * HTTP_E_METHOD is never returned here: a method that is a valid token but
 * unknown is HTTP_M_OTHER, and the proxy decides whether to answer 501.
 */
#include "http.h"

#include <string.h>

#include "../common/hex.h"

#define CRLF_LEN            2
#define HEAD_END            "\r\n\r\n"
#define HEAD_END_LEN        4
#define VERSION_LEN         8           /* "HTTP/1.x" */
#define VERSION_PREFIX      "HTTP/1."
#define VERSION_PREFIX_LEN  7
#define HTTP_NAME           "HTTP/"
#define HTTP_NAME_LEN       5
#define STATUS_DIGITS       3
#define STATUS_MIN          100
#define PORT_MAX            65535
#define PORT_MAX_DIGITS     5
#define PORT_HTTP           80
#define PORT_HTTPS          443
#define CONTENT_LENGTH_MAX  ((uint64_t)INT64_MAX)
#define CHUNK_SIZE_MAX      (UINT64_C(1) << 60)
#define CHUNK_SIZE_DIGITS_MAX 32        /* leading zeros included */

/*
 * Character classes, one bit each:
 *   C_TOKEN  tchar (RFC 9110 5.6.2): method, field name, list tokens
 *   C_VALUE  field-vchar / SP / HTAB / obs-text: field values, reasons
 *   C_TARGET VCHAR: the request-target
 *   C_HEX    HEXDIG
 *   C_HOST   ALPHA / DIGIT / "-" / "." / "_" / "~": host names
 */
enum {
    C_TOKEN = 1,
    C_VALUE = 2,
    C_TARGET = 4,
    C_HEX = 8,
    C_HOST = 16,
};

static const uint8_t char_class[256] = {
     0,  0,  0,  0,  0,  0,  0,  0,  0,  2,  0,  0,  0,  0,  0,  0,  /* 0x00 */
     0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  /* 0x10 */
     2,  7,  6,  7,  7,  7,  7,  7,  6,  6,  7,  7,  6, 23, 23,  6,  /* 0x20 */
    31, 31, 31, 31, 31, 31, 31, 31, 31, 31,  6,  6,  6,  6,  6,  6,  /* 0x30 */
     6, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23,  /* 0x40 */
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,  6,  6,  6,  7, 23,  /* 0x50 */
     7, 31, 31, 31, 31, 31, 31, 23, 23, 23, 23, 23, 23, 23, 23, 23,  /* 0x60 */
    23, 23, 23, 23, 23, 23, 23, 23, 23, 23, 23,  6,  7,  6, 23,  0,  /* 0x70 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x80 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0x90 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xa0 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xb0 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xc0 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xd0 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xe0 */
     2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  /* 0xf0 */
};

static inline bool
has_class(char c, unsigned cls)
{
    return (char_class[(unsigned char)c] & cls) != 0;
}

static inline bool
is_ows(char c)
{
    return c == ' ' || c == '\t';
}

static inline bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline unsigned char
to_lower(char c)
{
    unsigned char u = (unsigned char)c;

    return (u >= 'A' && u <= 'Z') ? (unsigned char)(u + ('a' - 'A')) : u;
}

/* Case-insensitive comparison of p[0..n) with lit[0..litlen) (ASCII). */
static bool
eq_nocase(const char *p, size_t n, const char *lit, size_t litlen)
{
    if (n != litlen)
        return false;
    for (size_t i = 0; i < n; i++)
        if (to_lower(p[i]) != to_lower(lit[i]))
            return false;
    return true;
}

#define EQ_LIT(p, n, lit) eq_nocase((p), (n), (lit), sizeof(lit) - 1)

static inline http_str_t
mkstr(const char *p, size_t n)
{
    http_str_t s = { p, n };

    return s;
}

bool
http_str_eq_nocase(http_str_t s, const char *lit)
{
    return eq_nocase(s.p, s.len, lit, strlen(lit));
}

const http_header_t *
http_find_header(const http_header_t *h, size_t n, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < n; i++)
        if (eq_nocase(h[i].name.p, h[i].name.len, name, len))
            return &h[i];
    return NULL;
}

const char *
http_strerror(int code)
{
    switch (code) {
    case HTTP_INCOMPLETE:
        return "incomplete message";
    case HTTP_E_SYNTAX:
        return "malformed request or header";
    case HTTP_E_REQUEST_LINE_TOO_LONG:
        return "request line too long";
    case HTTP_E_HEAD_TOO_LARGE:
        return "header section too large";
    case HTTP_E_VERSION:
        return "HTTP version not supported";
    case HTTP_E_SMUGGLING:
        return "ambiguous message framing";
    case HTTP_E_TARGET:
        return "unusable request target or Host";
    case HTTP_E_METHOD:
        return "method not implemented";
    case HTTP_E_CHUNK:
        return "malformed chunked body";
    default:
        return code >= 0 ? "no error" : "unknown error";
    }
}

int
http_error_status(int code)
{
    switch (code) {
    case HTTP_E_REQUEST_LINE_TOO_LONG:
        return 414;
    case HTTP_E_HEAD_TOO_LARGE:
        return 431;
    case HTTP_E_VERSION:
        return 505;
    case HTTP_E_METHOD:
        return 501;
    default:
        return 400;
    }
}

/* ------------------------------------------------------------------ */
/* Locating the head                                                  */
/* ------------------------------------------------------------------ */

/*
 * Skips the empty lines (CRLF) allowed before a request line. Sets *start
 * to the first byte of the request line. Returns 0, HTTP_INCOMPLETE, or an
 * error (lone LF, bare CR, too many of them).
 */
static int
skip_empty_lines(const char *buf, size_t len, size_t *start)
{
    size_t i = 0;

    while (i < len) {
        if (buf[i] == '\n')
            return HTTP_E_SYNTAX;
        if (buf[i] != '\r')
            break;
        if (i + 1 == len)
            break;
        if (buf[i + 1] != '\n')
            return HTTP_E_SYNTAX;
        i += CRLF_LEN;
        if (i >= HTTP_MAX_HEAD_BYTES)
            return HTTP_E_HEAD_TOO_LARGE;
    }
    *start = i;
    return i < len ? 0 : HTTP_INCOMPLETE;
}

/* Where the lines of a head are, as far as scan_head() got. */
struct head_scan {
    size_t first_lf;    /* offset of the start line's LF; 0: not received */
    size_t end;         /* offset just past the empty line; 0: not received */
};

/*
 * Looks for the end of the head that begins at buf[start], one line at a
 * time (memchr() for LF, which is fast). On the way it checks that every
 * LF follows a CR, that the start line is at most max_line bytes (414) and
 * that there are at most HTTP_MAX_HEADERS field lines (431). Only the
 * first HTTP_MAX_HEAD_BYTES bytes are looked at: a head ending later is too
 * large anyway, which the caller decides. Returns 0 when the head is
 * complete (hs->end set), HTTP_INCOMPLETE, or an error.
 */
static int
scan_head(const char *buf, size_t start, size_t len, size_t max_line,
          struct head_scan *hs)
{
    size_t lim = len < HTTP_MAX_HEAD_BYTES ? len : HTTP_MAX_HEAD_BYTES;
    size_t p = start, lines = 0;
    const char *nl;

    hs->first_lf = 0;
    hs->end = 0;
    while (p < lim && (nl = memchr(buf + p, '\n', lim - p)) != NULL) {
        size_t at = (size_t)(nl - buf);

        if (at == 0 || buf[at - 1] != '\r')
            return HTTP_E_SYNTAX;   /* lone LF */
        if (lines == 0) {
            if (at - 1 - start > max_line)
                return HTTP_E_REQUEST_LINE_TOO_LONG;
            hs->first_lf = at;
        } else if (at - 1 == p) {
            hs->end = at + 1;
            return 0;
        } else if (lines > HTTP_MAX_HEADERS) {
            return HTTP_E_HEAD_TOO_LARGE;
        }
        lines++;
        p = at + 1;
    }
    return HTTP_INCOMPLETE;
}

/*
 * SWAR helpers: test eight bytes at once. swar_below(x, n) is nonzero if
 * some byte of x is below n (n <= 128); exact as a yes/no answer.
 */
#define SWAR_ONES   UINT64_C(0x0101010101010101)
#define SWAR_HIGHS  UINT64_C(0x8080808080808080)
#define SWAR_WIDTH  8

static inline uint64_t
swar_below(uint64_t x, unsigned n)
{
    return (x - SWAR_ONES * n) & ~x & SWAR_HIGHS;
}

static inline uint64_t
swar_has(uint64_t x, unsigned char c)
{
    return swar_below(x ^ (SWAR_ONES * c), 1);
}

/*
 * Returns the first byte in [p, end) that is not of class cls (C_VALUE or
 * C_TARGET), or end. Whole words that cannot hold such a byte are skipped.
 */
static const char *
skip_class(const char *p, const char *end, unsigned cls)
{
    for (;;) {
        const char *word_end;

        while (end - p >= SWAR_WIDTH) {
            uint64_t x, stop;

            memcpy(&x, p, sizeof(x));
            if (cls == C_VALUE)     /* CTLs but HTAB, DEL */
                stop = swar_below(x, 0x20) | swar_has(x, 0x7f);
            else                    /* not VCHAR */
                stop = swar_below(x, 0x21) | swar_has(x, 0x7f) | (x & SWAR_HIGHS);
            if (stop != 0)
                break;
            p += SWAR_WIDTH;
        }
        /* Byte by byte through the word that stopped us (e.g. an HTAB). */
        word_end = end - p > SWAR_WIDTH ? p + SWAR_WIDTH : end;
        for (; p < word_end; p++)
            if (!has_class(*p, cls))
                return p;
        if (p == end)
            return end;
    }
}

/* ------------------------------------------------------------------ */
/* Start lines                                                        */
/* ------------------------------------------------------------------ */

struct request_line {
    http_str_t method;
    enum http_method meth;
    http_str_t target;
    int version_minor;
};

/* "HTTP/1.0" or "HTTP/1.1"; other "HTTP/<digits and dots>" is 505. */
static int
parse_version(const char *p, size_t n, int *minor)
{
    if (n == VERSION_LEN && memcmp(p, VERSION_PREFIX, VERSION_PREFIX_LEN) == 0 &&
        (p[VERSION_PREFIX_LEN] == '0' || p[VERSION_PREFIX_LEN] == '1')) {
        *minor = p[VERSION_PREFIX_LEN] - '0';
        return 0;
    }
    if (n <= HTTP_NAME_LEN || memcmp(p, HTTP_NAME, HTTP_NAME_LEN) != 0 ||
        !is_digit(p[HTTP_NAME_LEN]))
        return HTTP_E_SYNTAX;
    for (size_t i = HTTP_NAME_LEN; i < n; i++)
        if (!is_digit(p[i]) && p[i] != '.')
            return HTTP_E_SYNTAX;
    return HTTP_E_VERSION;
}

static enum http_method
method_lookup(const char *p, size_t n)
{
    static const struct {
        const char *name;
        size_t len;
        enum http_method meth;
    } methods[] = {
        { "GET", 3, HTTP_M_GET },
        { "HEAD", 4, HTTP_M_HEAD },
        { "POST", 4, HTTP_M_POST },
        { "PUT", 3, HTTP_M_PUT },
        { "DELETE", 6, HTTP_M_DELETE },
        { "CONNECT", 7, HTTP_M_CONNECT },
        { "OPTIONS", 7, HTTP_M_OPTIONS },
        { "TRACE", 5, HTTP_M_TRACE },
        { "PATCH", 5, HTTP_M_PATCH },
    };

    /* Methods are case-sensitive (RFC 9110 9.1). */
    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
        if (n == methods[i].len && memcmp(p, methods[i].name, n) == 0)
            return methods[i].meth;
    return HTTP_M_OTHER;
}

/* method SP request-target SP HTTP-version, CRLF excluded. */
static int
parse_request_line(const char *p, size_t n, struct request_line *rl)
{
    size_t i = 0, t;

    while (i < n && has_class(p[i], C_TOKEN))
        i++;
    if (i == 0 || i == n || p[i] != ' ')
        return HTTP_E_SYNTAX;
    rl->method = mkstr(p, i);
    rl->meth = method_lookup(p, i);

    t = ++i;
    i = (size_t)(skip_class(p + i, p + n, C_TARGET) - p);
    if (i == t || i == n || p[i] != ' ')
        return HTTP_E_SYNTAX;
    rl->target = mkstr(p + t, i - t);
    i++;
    return parse_version(p + i, n - i, &rl->version_minor);
}

/*
 * Validates the start of a request line whose CRLF has not arrived, so
 * that garbage (a TLS hello, a binary protocol) is refused at once. Only
 * characters that can never appear at that position are refused, so a
 * prefix of a valid request line always passes.
 */
static int
check_partial_request_line(const char *p, size_t n)
{
    enum { IN_METHOD, IN_TARGET, IN_VERSION } part = IN_METHOD;
    size_t field_len = 0;

    if (n > 0 && p[n - 1] == '\r')
        n--;    /* the LF may be next */
    for (size_t i = 0; i < n; i++) {
        char c = p[i];

        if (c == ' ' && part != IN_VERSION && field_len > 0) {
            part = part == IN_METHOD ? IN_TARGET : IN_VERSION;
            field_len = 0;
            continue;
        }
        field_len++;
        switch (part) {
        case IN_METHOD:
            if (!has_class(c, C_TOKEN))
                return HTTP_E_SYNTAX;
            break;
        case IN_TARGET:
            if (!has_class(c, C_TARGET))
                return HTTP_E_SYNTAX;
            break;
        case IN_VERSION:
            if (field_len <= HTTP_NAME_LEN ? c != HTTP_NAME[field_len - 1] :
                !is_digit(c) && c != '.')
                return HTTP_E_SYNTAX;
            break;
        }
    }
    return 0;
}

/*
 * HTTP-version SP status-code [SP reason-phrase], CRLF excluded. The SP
 * before an empty reason is optional (common in practice, harmless).
 */
static int
parse_status_line(const char *p, size_t n, int *minor, int *status,
                  http_str_t *reason)
{
    const char *sp = memchr(p, ' ', n);
    size_t i;
    int r;

    if (sp == NULL)
        return HTTP_E_SYNTAX;
    i = (size_t)(sp - p);
    if ((r = parse_version(p, i, minor)) != 0)
        return r;
    i++;
    if (n - i < STATUS_DIGITS)
        return HTTP_E_SYNTAX;
    *status = 0;
    for (size_t k = 0; k < STATUS_DIGITS; k++, i++) {
        if (!is_digit(p[i]))
            return HTTP_E_SYNTAX;
        *status = *status * 10 + (p[i] - '0');
    }
    if (*status < STATUS_MIN)
        return HTTP_E_SYNTAX;
    if (i == n) {
        *reason = mkstr(p + i, 0);
        return 0;
    }
    if (p[i] != ' ')
        return HTTP_E_SYNTAX;
    i++;
    *reason = mkstr(p + i, n - i);
    for (; i < n; i++)
        if (!has_class(p[i], C_VALUE))
            return HTTP_E_SYNTAX;
    return 0;
}

/* ------------------------------------------------------------------ */
/* Header fields                                                      */
/* ------------------------------------------------------------------ */

/* What the field loop learns about framing and routing. */
struct field_scan {
    unsigned n_host;
    http_str_t host;
    unsigned n_content_length;
    uint64_t content_length;
    bool has_te;
    bool te_bad;            /* syntax error, empty member, chunked;params */
    unsigned te_codings;    /* codings listed, over all TE fields */
    unsigned te_chunked;    /* how many of them are "chunked" */
    bool te_chunked_last;   /* the last coding seen is "chunked" */
    bool conn_close;
    bool conn_keep_alive;
    bool expect_continue;
};

/*
 * Content-Length: 1#DIGIT. Every member of every field must have the same
 * value (RFC 9110 8.6 lets us accept "5, 5" as 5). Anything else is
 * smuggling material.
 */
static int
scan_content_length(const char *p, size_t n, struct field_scan *fs)
{
    size_t i = 0;

    for (;;) {
        uint64_t v = 0;
        size_t digits = 0;

        while (i < n && is_ows(p[i]))
            i++;
        for (; i < n && is_digit(p[i]); i++, digits++) {
            unsigned d = (unsigned)(p[i] - '0');

            if (v > (CONTENT_LENGTH_MAX - d) / 10)
                return HTTP_E_SMUGGLING;
            v = v * 10 + d;
        }
        if (digits == 0)
            return HTTP_E_SMUGGLING;
        if (fs->n_content_length++ > 0 && v != fs->content_length)
            return HTTP_E_SMUGGLING;
        fs->content_length = v;
        while (i < n && is_ows(p[i]))
            i++;
        if (i == n)
            return 0;
        if (p[i++] != ',')
            return HTTP_E_SMUGGLING;
    }
}

/*
 * Transfer-Encoding: 1#transfer-coding, where transfer-coding is a token
 * with optional ";" parameters. Empty members and bad syntax mark the
 * field bad; the request/response rules are applied once all fields are in.
 */
static void
scan_transfer_encoding(const char *p, size_t n, struct field_scan *fs)
{
    size_t i = 0;

    fs->has_te = true;
    for (;;) {
        size_t t;
        bool chunked, params = false;

        while (i < n && is_ows(p[i]))
            i++;
        t = i;
        while (i < n && has_class(p[i], C_TOKEN))
            i++;
        if (i == t) {
            fs->te_bad = true;
            return;
        }
        chunked = EQ_LIT(p + t, i - t, "chunked");
        while (i < n && is_ows(p[i]))
            i++;
        if (i < n && p[i] == ';') {
            /* Parameters: we only need to find the next member. */
            params = true;
            while (i < n && p[i] != ',')
                i++;
        }
        fs->te_codings++;
        fs->te_chunked += chunked;
        fs->te_chunked_last = chunked;
        if (chunked && params)
            fs->te_bad = true;
        if (i == n)
            return;
        if (p[i++] != ',') {
            fs->te_bad = true;
            return;
        }
    }
}

/* Connection: #token. Empty members are skipped (RFC 9110 5.6.1.2). */
static int
scan_connection(const char *p, size_t n, http_framing_t *fr, struct field_scan *fs)
{
    size_t i = 0;

    while (i < n) {
        size_t t;

        while (i < n && is_ows(p[i]))
            i++;
        t = i;
        while (i < n && has_class(p[i], C_TOKEN))
            i++;
        if (i > t) {
            http_str_t tok = mkstr(p + t, i - t);

            if (fr->n_conn_tokens == HTTP_MAX_CONN_TOKENS)
                return HTTP_E_HEAD_TOO_LARGE;
            fr->conn_tokens[fr->n_conn_tokens++] = tok;
            if (http_str_eq_nocase(tok, "close"))
                fs->conn_close = true;
            else if (http_str_eq_nocase(tok, "keep-alive"))
                fs->conn_keep_alive = true;
            else if (http_str_eq_nocase(tok, "upgrade"))
                fr->conn_upgrade = true;
        }
        while (i < n && is_ows(p[i]))
            i++;
        if (i < n && p[i++] != ',')
            return HTTP_E_SYNTAX;
    }
    return 0;
}

/* Notes the fields that matter for framing and routing. */
static int
classify_field(const http_header_t *h, http_framing_t *fr, struct field_scan *fs)
{
    const char *n = h->name.p, *v = h->value.p;
    size_t nl = h->name.len, vl = h->value.len;

    switch (nl) {
    case 4:
        if (EQ_LIT(n, nl, "host")) {
            fs->n_host++;
            fs->host = h->value;
        }
        break;
    case 6:
        if (EQ_LIT(n, nl, "expect") && EQ_LIT(v, vl, "100-continue"))
            fs->expect_continue = true;
        break;
    case 7:
        if (EQ_LIT(n, nl, "upgrade"))
            fr->has_upgrade = true;
        break;
    case 10:
        if (EQ_LIT(n, nl, "connection"))
            return scan_connection(v, vl, fr, fs);
        break;
    case 14:
        if (EQ_LIT(n, nl, "content-length"))
            return scan_content_length(v, vl, fs);
        break;
    case 17:
        if (EQ_LIT(n, nl, "transfer-encoding"))
            scan_transfer_encoding(v, vl, fs);
        break;
    }
    return 0;
}

/*
 * Parses the field line at p into *h; end is the end of the head. Sets
 * *next to the start of the next line.
 * field-line = field-name ":" OWS field-value OWS CRLF
 */
static int
parse_field_line(const char *p, const char *end, http_header_t *h,
                 const char **next)
{
    const char *name = p, *v, *ve;

    if (is_ows(*p))
        return HTTP_E_SYNTAX;   /* obs-fold */
    while (p < end && has_class(*p, C_TOKEN))
        p++;
    if (p == end)
        return HTTP_E_SYNTAX;
    if (*p != ':') {
        /* "Name : value" is a classic smuggling vector. */
        const char *k = p;

        while (k < end && is_ows(*k))
            k++;
        return p > name && k > p && k < end && *k == ':' ?
               HTTP_E_SMUGGLING : HTTP_E_SYNTAX;
    }
    if (p == name)
        return HTTP_E_SYNTAX;
    h->name = mkstr(name, (size_t)(p - name));

    p++;
    while (p < end && is_ows(*p))
        p++;
    v = p;
    p = skip_class(p, end, C_VALUE);
    /* The first byte that is not field content must start the CRLF. */
    if (end - p < CRLF_LEN || p[0] != '\r' || p[1] != '\n')
        return HTTP_E_SYNTAX;   /* NUL, CTL, DEL, bare CR */
    ve = p;
    while (ve > v && is_ows(ve[-1]))
        ve--;
    h->value = mkstr(v, (size_t)(ve - v));
    *next = p + CRLF_LEN;
    return 0;
}

/*
 * Parses the field lines from buf[p] to the empty line that ends the head
 * at buf[end - 2].
 */
static int
parse_fields(const char *buf, size_t p, size_t end, http_header_t *hdrs,
             size_t *n_headers, http_framing_t *fr, struct field_scan *fs)
{
    const char *q = buf + p, *stop = buf + end - CRLF_LEN;
    size_t n = 0;
    int r;

    while (q < stop) {
        if (n == HTTP_MAX_HEADERS)
            return HTTP_E_HEAD_TOO_LARGE;
        if ((r = parse_field_line(q, buf + end, &hdrs[n], &q)) != 0)
            return r;
        if ((r = classify_field(&hdrs[n], fr, fs)) != 0)
            return r;
        n++;
    }
    *n_headers = n;
    return q == stop ? 0 : HTTP_E_SYNTAX;
}

static void
init_framing(http_framing_t *fr)
{
    fr->body = HTTP_BODY_NONE;
    fr->content_length = 0;
    fr->keep_alive = false;
    fr->conn_upgrade = false;
    fr->has_upgrade = false;
    fr->n_content_length = 0;
    fr->n_conn_tokens = 0;
}

static bool
keep_alive(int version_minor, const struct field_scan *fs)
{
    if (fs->conn_close)
        return false;
    return version_minor >= 1 || fs->conn_keep_alive;
}

/* ------------------------------------------------------------------ */
/* Request targets                                                    */
/* ------------------------------------------------------------------ */

/*
 * authority = host [ ":" port ] without userinfo; host is a reg-name or
 * IPv4 address (C_HOST characters) or an IP literal in brackets, returned
 * without them. *port is 0 when there is no port.
 */
static int
parse_authority(const char *p, size_t n, http_str_t *host, uint16_t *port)
{
    size_t i, rest;
    unsigned v = 0;

    *port = 0;
    if (n == 0)
        return HTTP_E_TARGET;
    if (p[0] == '[') {
        const char *rb = memchr(p, ']', n);
        bool colon = false;

        if (rb == NULL || rb == p + 1)
            return HTTP_E_TARGET;
        for (const char *c = p + 1; c < rb; c++) {
            if (*c == ':')
                colon = true;
            else if (*c != '.' && !has_class(*c, C_HEX))
                return HTTP_E_TARGET;
        }
        if (!colon)
            return HTTP_E_TARGET;
        *host = mkstr(p + 1, (size_t)(rb - p) - 1);
        rest = (size_t)(rb - p) + 1;
    } else {
        for (i = 0; i < n && has_class(p[i], C_HOST); i++)
            ;
        if (i == 0)
            return HTTP_E_TARGET;
        *host = mkstr(p, i);
        rest = i;
    }
    if (rest == n)
        return 0;
    if (p[rest] != ':' || n - rest - 1 == 0 || n - rest - 1 > PORT_MAX_DIGITS)
        return HTTP_E_TARGET;   /* userinfo, junk, empty or long port */
    for (i = rest + 1; i < n; i++) {
        if (!is_digit(p[i]))
            return HTTP_E_TARGET;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (v == 0 || v > PORT_MAX)
        return HTTP_E_TARGET;
    *port = (uint16_t)v;
    return 0;
}

/* absolute-form: ("http" / "https") "://" authority [ path-abempty ]. */
static int
parse_absolute_form(http_request_t *out)
{
    static const char root[] = "/";
    const char *t = out->target.p;
    size_t n = out->target.len, i = 0, a;
    uint16_t default_port;

    while (i < n && t[i] != ':')
        i++;
    if (EQ_LIT(t, i, "http"))
        default_port = PORT_HTTP;
    else if (EQ_LIT(t, i, "https"))
        default_port = PORT_HTTPS;
    else
        return HTTP_E_TARGET;
    out->scheme = mkstr(t, i);
    if (n - i < 3 || t[i + 1] != '/' || t[i + 2] != '/')
        return HTTP_E_TARGET;
    a = i += 3;
    while (i < n && t[i] != '/' && t[i] != '?' && t[i] != '#')
        i++;
    if (i < n && t[i] != '/')
        return HTTP_E_TARGET;   /* "http://h?q" or "http://h#f" */
    if (parse_authority(t + a, i - a, &out->host, &out->port) != 0)
        return HTTP_E_TARGET;
    if (out->port == 0)
        out->port = default_port;
    out->path = i < n ? mkstr(t + i, n - i) : mkstr(root, 1);
    return 0;
}

/*
 * Works out form, scheme, host, port and path from the target and the
 * Host field, and enforces the target/Host rules of http.h.
 */
static int
resolve_target(http_request_t *out, const struct field_scan *fs)
{
    const char *t = out->target.p;
    size_t n = out->target.len;
    http_str_t hh = { NULL, 0 };
    uint16_t hport = 0;
    int r;

    out->scheme = mkstr(t, 0);
    out->host = mkstr(t, 0);
    out->path = mkstr(t, 0);
    out->port = 0;
    out->has_host_header = fs->n_host > 0;
    out->host_header = fs->n_host > 0 ? fs->host : mkstr(t, 0);

    if (fs->n_host > 1)
        return HTTP_E_TARGET;
    /* a fragment is never part of a request-target (RFC 9112 3.2) */
    if (memchr(t, '#', n) != NULL)
        return HTTP_E_TARGET;
    if (out->meth == HTTP_M_CONNECT) {
        out->form = HTTP_FORM_AUTHORITY;
        if (parse_authority(t, n, &out->host, &out->port) != 0 || out->port == 0)
            return HTTP_E_TARGET;
    } else if (t[0] == '/') {
        out->form = HTTP_FORM_ORIGIN;
        out->path = out->target;
    } else if (n == 1 && t[0] == '*') {
        if (out->meth != HTTP_M_OPTIONS)
            return HTTP_E_TARGET;
        out->form = HTTP_FORM_ASTERISK;
        out->path = out->target;
    } else {
        out->form = HTTP_FORM_ABSOLUTE;
        if ((r = parse_absolute_form(out)) != 0)
            return r;
    }

    /*
     * A Host field must be well formed. It may be empty only when the
     * target carries the authority (it is then ignored, RFC 9112 3.2.2).
     */
    if (fs->n_host == 1 &&
        (fs->host.len > 0 || out->form == HTTP_FORM_ORIGIN ||
         out->form == HTTP_FORM_ASTERISK) &&
        parse_authority(fs->host.p, fs->host.len, &hh, &hport) != 0)
        return HTTP_E_TARGET;
    if (out->form == HTTP_FORM_ORIGIN || out->form == HTTP_FORM_ASTERISK) {
        if (fs->n_host == 0) {
            if (out->version_minor >= 1)
                return HTTP_E_TARGET;
            out->port = PORT_HTTP;  /* HTTP/1.0 without Host: no host */
        } else {
            out->host = hh;
            out->port = hport != 0 ? hport : PORT_HTTP;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

static int
request_framing(http_request_t *out, const struct field_scan *fs)
{
    http_framing_t *fr = &out->framing;

    if (fs->has_te) {
        if (fs->n_content_length > 0 || out->version_minor == 0 || fs->te_bad ||
            fs->te_codings != 1 || fs->te_chunked != 1)
            return HTTP_E_SMUGGLING;
        fr->body = HTTP_BODY_CHUNKED;
    } else if (fs->n_content_length > 0) {
        fr->body = HTTP_BODY_LENGTH;
        fr->content_length = fs->content_length;
        fr->n_content_length = fs->n_content_length;
    }
    fr->keep_alive = keep_alive(out->version_minor, fs);
    return 0;
}

/*
 * The request head is incomplete: check what we have so that garbage,
 * oversized request lines and wrong versions are refused at once.
 */
static int
request_incomplete(const char *buf, size_t start, size_t len,
                   const struct head_scan *hs)
{
    struct request_line rl;
    int r;

    if (hs->first_lf == 0) {
        size_t line = len - start;

        if (line > HTTP_MAX_REQUEST_LINE + 1 ||
            (line == HTTP_MAX_REQUEST_LINE + 1 && buf[len - 1] != '\r'))
            return HTTP_E_REQUEST_LINE_TOO_LONG;
        if ((r = check_partial_request_line(buf + start, line)) != 0)
            return r;
    } else if ((r = parse_request_line(buf + start, hs->first_lf - 1 - start,
                                       &rl)) != 0) {
        return r;
    }
    return len >= HTTP_MAX_HEAD_BYTES ? HTTP_E_HEAD_TOO_LARGE : HTTP_INCOMPLETE;
}

int
http_parse_request(const char *buf, size_t len, http_request_t *out)
{
    struct field_scan fs;
    struct request_line rl;
    struct head_scan hs;
    size_t start;
    int r;

    if ((r = skip_empty_lines(buf, len, &start)) != 0)
        return r;
    r = scan_head(buf, start, len, HTTP_MAX_REQUEST_LINE, &hs);
    if (r == HTTP_INCOMPLETE)
        return request_incomplete(buf, start, len, &hs);
    if (r != 0)
        return r;

    if ((r = parse_request_line(buf + start, hs.first_lf - 1 - start, &rl)) != 0)
        return r;
    out->method = rl.method;
    out->meth = rl.meth;
    out->target = rl.target;
    out->version_minor = rl.version_minor;

    memset(&fs, 0, sizeof(fs));
    init_framing(&out->framing);
    out->n_headers = 0;
    if ((r = parse_fields(buf, hs.first_lf + 1, hs.end, out->headers,
                          &out->n_headers, &out->framing, &fs)) != 0)
        return r;
    out->expect_continue = fs.expect_continue;
    if ((r = request_framing(out, &fs)) != 0)
        return r;
    if ((r = resolve_target(out, &fs)) != 0)
        return r;
    return (int)hs.end;
}

/* ------------------------------------------------------------------ */
/* Responses                                                          */
/* ------------------------------------------------------------------ */

static bool
response_has_no_body(enum http_method req_method, int status)
{
    return req_method == HTTP_M_HEAD || status < 200 || status == 204 ||
           status == 304 || (req_method == HTTP_M_CONNECT && status < 300);
}

/* RFC 9112 section 6.3, with the smuggling rules of http.h. */
static int
response_framing(http_response_t *out, enum http_method req_method,
                 const struct field_scan *fs)
{
    http_framing_t *fr = &out->framing;

    if (fs->has_te && (fs->n_content_length > 0 || fs->te_bad || fs->te_chunked > 1))
        return HTTP_E_SMUGGLING;
    fr->keep_alive = keep_alive(out->version_minor, fs);
    fr->n_content_length = fs->n_content_length;
    fr->content_length = fs->content_length; /* also for HEAD, 304: the size announced */
    if (response_has_no_body(req_method, out->status)) {
        fr->body = HTTP_BODY_NONE;
    } else if (fs->has_te) {
        /* An HTTP/1.0 message with Transfer-Encoding has faulty framing. */
        fr->body = fs->te_chunked_last && out->version_minor >= 1 ?
                   HTTP_BODY_CHUNKED : HTTP_BODY_UNTIL_CLOSE;
    } else if (fs->n_content_length > 0) {
        fr->body = HTTP_BODY_LENGTH;
        fr->content_length = fs->content_length;
    } else {
        fr->body = HTTP_BODY_UNTIL_CLOSE;
    }
    if (fr->body == HTTP_BODY_UNTIL_CLOSE)
        fr->keep_alive = false;
    return 0;
}

/* The response head is incomplete: refuse what cannot become valid. */
static int
response_incomplete(const char *buf, size_t len, const struct head_scan *hs)
{
    int r;

    for (size_t i = 0; i < len && i < HTTP_NAME_LEN; i++)
        if (buf[i] != HTTP_NAME[i])
            return HTTP_E_SYNTAX;
    if (hs->first_lf != 0) {
        http_str_t reason;
        int minor, status;

        if ((r = parse_status_line(buf, hs->first_lf - 1, &minor, &status,
                                   &reason)) != 0)
            return r;
    }
    return len >= HTTP_MAX_HEAD_BYTES ? HTTP_E_HEAD_TOO_LARGE : HTTP_INCOMPLETE;
}

int
http_parse_response(const char *buf, size_t len, enum http_method req_method,
                    http_response_t *out)
{
    struct field_scan fs;
    struct head_scan hs;
    int r;

    r = scan_head(buf, 0, len, HTTP_MAX_HEAD_BYTES, &hs);
    if (r == HTTP_INCOMPLETE)
        return response_incomplete(buf, len, &hs);
    if (r != 0)
        return r;
    if ((r = parse_status_line(buf, hs.first_lf - 1, &out->version_minor,
                               &out->status, &out->reason)) != 0)
        return r;

    memset(&fs, 0, sizeof(fs));
    init_framing(&out->framing);
    out->n_headers = 0;
    if ((r = parse_fields(buf, hs.first_lf + 1, hs.end, out->headers,
                          &out->n_headers, &out->framing, &fs)) != 0)
        return r;
    if ((r = response_framing(out, req_method, &fs)) != 0)
        return r;
    return (int)hs.end;
}

/* ------------------------------------------------------------------ */
/* Chunked bodies                                                     */
/* ------------------------------------------------------------------ */

/* Where a chunk-ext is in its grammar (RFC 9112 7.1.1):
 *   chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )
 *   ext-val   = token / quoted-string */
enum chunk_ext_state {
    EXT_BEFORE_NAME = 0,  /* after ";": BWS, then the name */
    EXT_NAME,             /* in the name */
    EXT_AFTER_NAME,       /* BWS, then "=", ";" or CR */
    EXT_BEFORE_VALUE,     /* after "=": BWS, then token or quote */
    EXT_TOKEN,            /* in a token value */
    EXT_QUOTED,           /* in a quoted-string */
    EXT_QUOTED_PAIR,      /* after a backslash in a quoted-string */
    EXT_AFTER_VALUE,      /* BWS, then ";" or CR */
};

void
http_chunked_init(http_chunked_t *c)
{
    c->state = HTTP_CHUNK_SIZE;
    c->remaining = 0;
    c->size_digits = 0;
    c->ext_state = EXT_BEFORE_NAME;
    c->ext_bytes = 0;
    c->trailer_bytes = 0;
    c->filter = false;
}

void
http_chunked_init_filter(http_chunked_t *c)
{
    http_chunked_init(c);
    c->filter = true;
}

bool
http_trailer_forbidden(const char *name, size_t len)
{
    /* RFC 9110 6.5.1: fields needed before the content is processed */
    static const char *const names[] = {
        "transfer-encoding", "trailer", "host", "te", "connection", "keep-alive",
        "proxy-connection", "upgrade", "via", "max-forwards", "forwarded",
        "authorization", "proxy-authorization", "www-authenticate",
        "proxy-authenticate", "cookie", "set-cookie", "expect", "range",
        "cache-control", "pragma", "age", "expires", "vary", "location",
        "retry-after", "date",
    };
    static const char *const prefixes[] = { "content-", "if-", "x-forwarded-" };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (eq_nocase(name, len, names[i], strlen(names[i])))
            return true;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t pl = strlen(prefixes[i]);
        if (len >= pl && eq_nocase(name, pl, prefixes[i], pl))
            return true;
    }
    return false;
}

bool
http_list_next(const char **p, const char *end, http_str_t *member)
{
    const char *s = *p;

    for (;;) {
        const char *m, *e;

        while (s < end && (is_ows(*s) || *s == ','))
            s++;
        if (s == end) {
            *p = s;
            return false;
        }
        m = s;
        while (s < end && *s != ',')
            s++;
        e = s;
        while (e > m && is_ows(e[-1]))
            e--;
        if (e > m) {
            *member = mkstr(m, (size_t)(e - m));
            *p = s;
            return true;
        }
    }
}

/* One byte of a chunk extension; false if it breaks the grammar. */
static bool
chunk_ext_step(http_chunked_t *c, char ch)
{
    if (++c->ext_bytes > HTTP_MAX_CHUNK_EXT)
        return false;
    switch (c->ext_state) {
    case EXT_BEFORE_NAME:
        if (is_ows(ch))
            return true;
        if (!has_class(ch, C_TOKEN))
            return false;
        c->ext_state = EXT_NAME;
        return true;
    case EXT_NAME:
        if (has_class(ch, C_TOKEN))
            return true;
        c->ext_state = EXT_AFTER_NAME;
        /* fall through */
    case EXT_AFTER_NAME:
        if (is_ows(ch))
            return true;
        if (ch == '=')
            c->ext_state = EXT_BEFORE_VALUE;
        else if (ch == ';')
            c->ext_state = EXT_BEFORE_NAME;
        else
            return false;
        return true;
    case EXT_BEFORE_VALUE:
        if (is_ows(ch))
            return true;
        if (ch == '"')
            c->ext_state = EXT_QUOTED;
        else if (has_class(ch, C_TOKEN))
            c->ext_state = EXT_TOKEN;
        else
            return false;
        return true;
    case EXT_TOKEN:
        if (has_class(ch, C_TOKEN))
            return true;
        c->ext_state = EXT_AFTER_VALUE;
        /* fall through */
    case EXT_AFTER_VALUE:
        if (is_ows(ch))
            return true;
        if (ch != ';')
            return false;
        c->ext_state = EXT_BEFORE_NAME;
        return true;
    case EXT_QUOTED:
        /* qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text */
        if (ch == '"')
            c->ext_state = EXT_AFTER_VALUE;
        else if (ch == '\\')
            c->ext_state = EXT_QUOTED_PAIR;
        else if (!has_class(ch, C_VALUE))
            return false;   /* CR, LF, NUL, other CTLs */
        return true;
    case EXT_QUOTED_PAIR:
        if (!has_class(ch, C_VALUE))
            return false;
        c->ext_state = EXT_QUOTED;
        return true;
    }
    return false;
}

/* True if a chunk extension may end here (at the CR of the size line). */
static bool
chunk_ext_complete(const http_chunked_t *c)
{
    return c->ext_state == EXT_NAME || c->ext_state == EXT_AFTER_NAME ||
           c->ext_state == EXT_TOKEN || c->ext_state == EXT_AFTER_VALUE;
}

/*
 * One byte of framing (everything but chunk data). Returns false on a
 * framing error.
 */
static bool
chunked_step(http_chunked_t *c, char ch)
{
    int d;

    switch (c->state) {
    case HTTP_CHUNK_SIZE:
        if ((d = hex_digit(ch)) >= 0) {
            if (c->size_digits == CHUNK_SIZE_DIGITS_MAX ||
                c->remaining > (CHUNK_SIZE_MAX - (unsigned)d) >> 4)
                return false;
            c->remaining = (c->remaining << 4) | (unsigned)d;
            c->size_digits++;
            return true;
        }
        if (c->size_digits == 0)
            return false;
        if (ch == ';') {
            c->state = HTTP_CHUNK_EXT;
            c->ext_state = EXT_BEFORE_NAME;
            c->ext_bytes = 1;
            return true;
        }
        if (ch != '\r')
            return false;
        c->state = HTTP_CHUNK_SIZE_LF;
        return true;
    case HTTP_CHUNK_EXT:
        if (ch == '\r' && chunk_ext_complete(c)) {
            c->state = HTTP_CHUNK_SIZE_LF;
            return true;
        }
        return chunk_ext_step(c, ch);
    case HTTP_CHUNK_SIZE_LF:
        if (ch != '\n')
            return false;
        c->state = c->remaining > 0 ? HTTP_CHUNK_DATA : HTTP_CHUNK_TRAILER;
        return true;
    case HTTP_CHUNK_DATA_CR:
        if (ch != '\r')
            return false;
        c->state = HTTP_CHUNK_DATA_LF;
        return true;
    case HTTP_CHUNK_DATA_LF:
        if (ch != '\n')
            return false;
        c->state = HTTP_CHUNK_SIZE;
        c->size_digits = 0;
        c->ext_bytes = 0;
        return true;
    case HTTP_CHUNK_TRAILER:
        if (ch == '\r') {
            c->state = HTTP_CHUNK_FINAL_LF;
            return true;
        }
        /* A field line starts with a name: no obs-fold, no ":". */
        if (!has_class(ch, C_TOKEN))
            return false;
        c->state = HTTP_CHUNK_TRAILER_LINE;
        return ++c->trailer_bytes <= HTTP_MAX_TRAILER_BYTES;
    case HTTP_CHUNK_TRAILER_LINE:
        if (ch == '\r')
            c->state = HTTP_CHUNK_TRAILER_LF;
        else if (!has_class(ch, C_VALUE))
            return false;
        return ++c->trailer_bytes <= HTTP_MAX_TRAILER_BYTES;
    case HTTP_CHUNK_TRAILER_LF:
        if (ch != '\n')
            return false;
        c->state = HTTP_CHUNK_TRAILER;
        return ++c->trailer_bytes <= HTTP_MAX_TRAILER_BYTES;
    case HTTP_CHUNK_FINAL_LF:
        if (ch != '\n')
            return false;
        c->state = HTTP_CHUNK_DONE;
        return true;
    case HTTP_CHUNK_DATA:
    case HTTP_CHUNK_DONE:
    case HTTP_CHUNK_ERROR:
        break;
    }
    return false;
}

/*
 * A filtering scanner at the start of a trailer line line[0..len) (CRLF
 * included): is it a well-formed field line (name ":" value) to keep? Sets
 * *keep; false if the line is malformed.
 */
static bool
trailer_line_check(const char *line, size_t len, bool *keep)
{
    size_t i = 0;

    while (i < len && has_class(line[i], C_TOKEN))
        i++;
    if (i == 0 || i == len || line[i] != ':')
        return false;   /* no name, or whitespace/junk before the colon */
    *keep = !http_trailer_forbidden(line, i);
    return true;
}

ssize_t
http_chunked_feed(http_chunked_t *c, char *buf, size_t len, bool decode,
                  size_t *out_len)
{
    size_t i = 0, w = 0;
    size_t line = 0, line_w = 0, line_trailer = 0; /* filter: current trailer line */

    if (out_len != NULL)
        *out_len = 0;
    if (c->state == HTTP_CHUNK_ERROR)
        return HTTP_E_CHUNK;
    while (i < len && c->state != HTTP_CHUNK_DONE) {
        if (c->state == HTTP_CHUNK_DATA) {
            size_t n = len - i;

            if (n > c->remaining)
                n = (size_t)c->remaining;
            if (decode && w != i)
                memmove(buf + w, buf + i, n);
            w += n;
            i += n;
            c->remaining -= n;
            if (c->remaining == 0)
                c->state = HTTP_CHUNK_DATA_CR;
            continue;
        }
        enum http_chunk_state prev = c->state;

        if (c->filter && !decode && prev == HTTP_CHUNK_TRAILER) {
            line = i;
            line_w = w;
            line_trailer = c->trailer_bytes;
        }
        if (!chunked_step(c, buf[i])) {
            c->state = HTTP_CHUNK_ERROR;
            return HTTP_E_CHUNK;
        }
        i++;
        if (decode || !c->filter)
            continue;
        /* forwarding the framing: keep the byte, unless it ends a trailer
         * line we drop (the line's bytes are then taken back) */
        if (w != i - 1)
            buf[w] = buf[i - 1];
        w++;
        if (prev == HTTP_CHUNK_TRAILER_LF) {
            bool keep;

            if (!trailer_line_check(buf + line_w, w - line_w, &keep)) {
                c->state = HTTP_CHUNK_ERROR;
                return HTTP_E_CHUNK;
            }
            if (!keep)
                w = line_w;
        }
    }
    if (c->filter && !decode &&
        (c->state == HTTP_CHUNK_TRAILER_LINE || c->state == HTTP_CHUNK_TRAILER_LF)) {
        /* a trailer line cut by the end of buf: not consumed, fed again;
         * its bytes go back where the caller expects them (buf + line) */
        if (line_w != line)
            memmove(buf + line, buf + line_w, w - line_w);
        c->state = HTTP_CHUNK_TRAILER;
        c->trailer_bytes = line_trailer;
        i = line;
        w = line_w;
    }
    if (out_len != NULL)
        *out_len = decode || c->filter ? w : i;
    return (ssize_t)i;
}
