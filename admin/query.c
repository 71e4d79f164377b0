/*
 * admin/query.c: query strings and form bodies (see query.h). One pass over
 * the input: each piece between '&' is decoded into query_t.buf (a decoded
 * text is never longer than its source, so the buffer cannot overflow),
 * then the key is checked against the known names and the value against
 * UTF-8 and control characters. query_view types the pieces.
 */
#include "query.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* Every parameter a page accepts. */
static const char *const known_keys[] = {
    "range", "loc", "user", "name", "host", "category", "client", "decision", "page",
    "ip", "url", "method", "by", "limit", "format", "table", "q", "headend", "file",
};

/* What only a posted form may carry (never a link, so never a log line or
 * a Referer): the CSRF token and the login's password. */
static const char *const form_keys[] = {"csrf", "password"};

static const char *const decisions[] = {
    "allow", "monitor", "block", "auth", "refuse_unidentified", "none",
};

static int fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static int
hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes s[0..n) into out ('+' is a space); the decoded length, or -1 for
 * a bad escape. out has room for n bytes. */
static long
decode(const char *s, size_t n, char *out)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi << 4 | lo);
            i += 2;
        }
        out[o++] = (char)c;
    }
    return (long)o;
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF) without C0 controls or DEL. */
static bool
clean_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = s[i];
        size_t k;
        uint32_t cp;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return false;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

static bool
known_key(const char *k, bool form)
{
    for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
        if (strcmp(known_keys[i], k) == 0)
            return true;
    for (size_t i = 0; form && i < sizeof(form_keys) / sizeof(form_keys[0]); i++)
        if (strcmp(form_keys[i], k) == 0)
            return true;
    return false;
}

/* The key as it may be quoted in a message: the known-key alphabet only. */
static const char *
show_key(const char *k, char *buf, size_t cap)
{
    size_t o = 0;

    for (; *k != '\0' && o + 1 < cap; k++)
        buf[o++] = ((*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') || *k == '_') ? *k : '?';
    buf[o] = '\0';
    return buf;
}

static int
parse(const char *s, size_t len, bool form, query_t *out, char *err, size_t errlen)
{
    size_t i = 0, used = 0;

    out->n = 0;
    if (len > QUERY_INPUT_MAX)
        return fail(err, errlen, "parameters too long (at most %d bytes)", QUERY_INPUT_MAX);
    if (len > 0 && s[0] == '?')
        i = 1;
    while (i < len) {
        const char *piece = s + i, *eq;
        size_t plen, klen, vlen;
        char *key, *val, shown[QUERY_KEY_MAX];
        long kd, vd;
        const char *amp = memchr(piece, '&', len - i);

        plen = amp ? (size_t)(amp - piece) : len - i;
        i += plen + 1;
        if (plen == 0)
            continue;
        if (out->n == QUERY_MAX_PARAMS)
            return fail(err, errlen, "too many parameters (at most %d)", QUERY_MAX_PARAMS);
        eq = memchr(piece, '=', plen);
        klen = eq ? (size_t)(eq - piece) : plen;
        vlen = eq ? plen - klen - 1 : 0;
        key = out->buf + used;
        kd = decode(piece, klen, key);
        if (kd < 0)
            return fail(err, errlen, "bad %%-escape in a parameter name");
        key[kd] = '\0';
        used += (size_t)kd + 1;
        if (kd == 0 || (size_t)kd >= QUERY_KEY_MAX || !known_key(key, form))
            return fail(err, errlen, "unknown parameter '%s'",
                        show_key(key, shown, sizeof(shown)));
        for (size_t k = 0; k < out->n; k++)
            if (strcmp(out->p[k].key, key) == 0)
                return fail(err, errlen, "parameter '%s' given twice", key);
        val = out->buf + used;
        vd = eq ? decode(eq + 1, vlen, val) : 0;
        if (vd < 0)
            return fail(err, errlen, "bad %%-escape in parameter '%s'", key);
        val[vd] = '\0';
        used += (size_t)vd + 1;
        if (!clean_utf8((const unsigned char *)val, (size_t)vd))
            return fail(err, errlen,
                        "parameter '%s' is not UTF-8 text without control characters", key);
        out->p[out->n].key = key;
        out->p[out->n].value = val;
        out->p[out->n].value_len = (size_t)vd;
        out->n++;
    }
    return 0;
}

int
query_parse(const char *s, size_t len, query_t *out, char *err, size_t errlen)
{
    return parse(s, len, false, out, err, errlen);
}

int
query_parse_form(const char *s, size_t len, query_t *out, char *err, size_t errlen)
{
    return parse(s, len, true, out, err, errlen);
}

const char *
query_take(query_t *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++) {
        if (strcmp(q->p[i].key, key) == 0) {
            const char *v = q->p[i].value;
            memmove(&q->p[i], &q->p[i + 1], (q->n - i - 1) * sizeof(q->p[0]));
            q->n--;
            return v;
        }
    }
    return NULL;
}

const char *
query_get(const query_t *q, const char *key)
{
    for (size_t i = 0; i < q->n; i++)
        if (strcmp(q->p[i].key, key) == 0)
            return q->p[i].value;
    return NULL;
}

const char *
query_range_str(enum query_range r)
{
    switch (r) {
    case QUERY_RANGE_TODAY: return "today";
    case QUERY_RANGE_24H: return "24h";
    case QUERY_RANGE_7D: return "7d";
    case QUERY_RANGE_30D: return "30d";
    }
    return "24h";
}

const char *
query_loc_str(enum query_loc l)
{
    switch (l) {
    case QUERY_LOC_ALL: return "all";
    case QUERY_LOC_REMOTE: return "remote";
    case QUERY_LOC_LOCAL: return "local";
    }
    return "all";
}

const char *
query_order_str(enum query_order o)
{
    switch (o) {
    case QUERY_BY_REQUESTS: return "requests";
    case QUERY_BY_BYTES: return "bytes";
    case QUERY_BY_BLOCKED: return "blocked";
    }
    return "requests";
}

/* A decimal number 1..max of at most 5 digits; false if it is not one. */
static bool
small_number(const char *v, unsigned long max, unsigned *out)
{
    unsigned long p = 0;
    size_t n = strlen(v);

    if (n > 5 || strspn(v, "0123456789") != n)
        return false;
    for (size_t i = 0; i < n; i++)
        p = p * 10 + (unsigned long)(v[i] - '0');
    if (p < 1 || p > max)
        return false;
    *out = (unsigned)p;
    return true;
}

/* A non-empty value, or NULL (given empty = not given). */
static const char *
opt(const query_t *q, const char *key)
{
    const char *v = query_get(q, key);

    return v != NULL && v[0] != '\0' ? v : NULL;
}

static bool
numeric_addr(const char *s)
{
    unsigned char b[16];

    return inet_pton(AF_INET, s, b) == 1 || inet_pton(AF_INET6, s, b) == 1;
}

int
query_view(const query_t *q, query_view_t *out, char *err, size_t errlen)
{
    static const char *const names[] = { "user", "host", "category" };
    const char *v;

    memset(out, 0, sizeof(*out));
    out->range = QUERY_RANGE_24H;
    out->page = 1;
    if ((v = opt(q, "range")) != NULL) {
        enum query_range r;
        for (r = QUERY_RANGE_TODAY; r <= QUERY_RANGE_30D; r++)
            if (strcmp(v, query_range_str(r)) == 0)
                break;
        if (r > QUERY_RANGE_30D)
            return fail(err, errlen, "range must be today, 24h, 7d or 30d");
        out->range = r;
    }
    if ((v = opt(q, "loc")) != NULL) {
        enum query_loc l;
        for (l = QUERY_LOC_ALL; l <= QUERY_LOC_LOCAL; l++)
            if (strcmp(v, query_loc_str(l)) == 0)
                break;
        if (l > QUERY_LOC_LOCAL)
            return fail(err, errlen, "loc must be all, remote or local");
        out->loc = l;
    }
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if ((v = opt(q, names[i])) != NULL && strlen(v) > QUERY_NAME_MAX)
            return fail(err, errlen, "%s is longer than %d bytes", names[i], QUERY_NAME_MAX);
    out->user = opt(q, "user");
    if ((v = opt(q, "name")) != NULL) {
        if (strlen(v) > QUERY_NAME_MAX)
            return fail(err, errlen, "name is longer than %d bytes", QUERY_NAME_MAX);
        if (out->user != NULL && strcmp(out->user, v) != 0)
            return fail(err, errlen, "user and name differ");
        out->user = v;
    }
    out->host = opt(q, "host");
    out->category = opt(q, "category");
    if ((v = opt(q, "client")) != NULL) {
        if (!numeric_addr(v))
            return fail(err, errlen, "client must be a numeric IPv4 or IPv6 address");
        out->client = v;
    }
    if ((v = opt(q, "decision")) != NULL) {
        size_t i;
        for (i = 0; i < sizeof(decisions) / sizeof(decisions[0]); i++)
            if (strcmp(v, decisions[i]) == 0)
                break;
        if (i == sizeof(decisions) / sizeof(decisions[0]))
            return fail(err, errlen,
                        "decision must be allow, monitor, block, auth, refuse_unidentified or none");
        out->decision = v;
    }
    if ((v = opt(q, "page")) != NULL && !small_number(v, QUERY_PAGE_MAX, &out->page))
        return fail(err, errlen, "page must be a number from 1 to %d", QUERY_PAGE_MAX);
    if ((v = opt(q, "limit")) != NULL && !small_number(v, QUERY_LIMIT_MAX, &out->limit))
        return fail(err, errlen, "limit must be a number from 1 to %d", QUERY_LIMIT_MAX);
    if ((v = opt(q, "by")) != NULL) {
        enum query_order o;
        for (o = QUERY_BY_REQUESTS; o <= QUERY_BY_BLOCKED; o++)
            if (strcmp(v, query_order_str(o)) == 0)
                break;
        if (o > QUERY_BY_BLOCKED)
            return fail(err, errlen, "by must be requests, bytes or blocked");
        out->by = o;
    }
    if ((v = opt(q, "format")) != NULL) {
        if (strcmp(v, "csv") != 0)
            return fail(err, errlen, "format must be csv (the page is HTML, /api/ is JSON)");
        out->csv = true;
    }
    if ((v = opt(q, "table")) != NULL) {
        size_t n = strlen(v);
        if (n >= QUERY_TABLE_MAX || strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_") != n)
            return fail(err, errlen, "table must be a table name (lower-case letters, digits, "
                        "'_')");
        out->table = v;
    }
    if ((v = opt(q, "ip")) != NULL) {
        if (!numeric_addr(v))
            return fail(err, errlen, "ip must be a numeric IPv4 or IPv6 address");
        out->ip = v;
    }
    if ((v = opt(q, "url")) != NULL) {
        if (strlen(v) > QUERY_URL_MAX)
            return fail(err, errlen, "url is longer than %d bytes", QUERY_URL_MAX);
        out->url = v;
    }
    if ((v = opt(q, "q")) != NULL) {
        if (strlen(v) > QUERY_NAME_MAX)
            return fail(err, errlen, "q is longer than %d bytes", QUERY_NAME_MAX);
        out->search = v;
    }
    if ((v = opt(q, "headend")) != NULL) {
        size_t n = strlen(v);
        if (n >= QUERY_HEADEND_MAX ||
            strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != n)
            return fail(err, errlen, "headend must be a headend's name");
        out->headend = v;
    }
    if ((v = opt(q, "file")) != NULL) {
        size_t n = strlen(v);
        if (n >= QUERY_FILE_MAX ||
            strspn(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./") != n)
            return fail(err, errlen, "file must be a scheduled report's name");
        out->file = v;
    }
    if ((v = opt(q, "method")) != NULL) {
        size_t n = strlen(v);
        if (n > 20 || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != n)
            return fail(err, errlen, "method must be 1-20 upper-case letters");
        out->method = v;
    }
    return 0;
}
