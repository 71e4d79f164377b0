/*
 * mus/proto.c: the MUS/1 wire format and authentication (see proto.h and
 * docs/mus-protocol.md). Frames are parsed with jansson (duplicate keys
 * rejected, size checked before parsing) into a fixed-size mus_frame_t; every
 * string is length-checked against its field, base64 values must decode to
 * exact lengths, addresses are strict (no "%zone"). The MAC, KDF, randomness
 * and channel binding come from OpenSSL. No socket I/O here.
 *
 * Authentication bytes (plain concatenation, as in the protocol document):
 *   client: HMAC-SHA256(K, "MUS1-C" || nonce[32] || cnonce[32] || server_id || client_id || cb[32])
 *   server: HMAC-SHA256(K, "MUS1-S" || cnonce[32] || nonce[32] || server_id || client_id || cb[32])
 * where nonce/cnonce are the decoded (raw) 32 bytes, the ids are their UTF-8
 * bytes without terminator and K = PBKDF2-HMAC-SHA256(password, salt, iter, 32).
 */
#include "proto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#define CB_LABEL "EXPORTER-Channel-Binding"

static const char *const frame_names[] = {
    [MUS_F_UNKNOWN] = "unknown",     [MUS_F_HELLO] = "hello",
    [MUS_F_AUTH] = "auth",           [MUS_F_AUTH_OK] = "auth_ok",
    [MUS_F_AUTH_FAIL] = "auth_fail", [MUS_F_SUBSCRIBE] = "subscribe",
    [MUS_F_SNAP_BEGIN] = "snap_begin", [MUS_F_SNAP] = "snap",
    [MUS_F_SNAP_END] = "snap_end",   [MUS_F_ADD] = "add",
    [MUS_F_UPD] = "upd",             [MUS_F_DEL] = "del",
    [MUS_F_ACK] = "ack",             [MUS_F_PING] = "ping",
    [MUS_F_PONG] = "pong",           [MUS_F_ERROR] = "error",
};
#define N_FRAME_NAMES (sizeof(frame_names) / sizeof(frame_names[0]))

const char *mus_frame_type_str(enum mus_frame_type t)
{
    if ((unsigned)t >= N_FRAME_NAMES || !frame_names[t])
        return "unknown";
    return frame_names[t];
}

static enum mus_frame_type frame_type_lookup(const char *name)
{
    for (unsigned i = 1; i < N_FRAME_NAMES; i++)
        if (strcmp(frame_names[i], name) == 0)
            return (enum mus_frame_type)i;
    return MUS_F_UNKNOWN;
}

/* ---- small helpers: identity types and addresses ----
 * Local copies on purpose: map.c owns mus_addr_* and mus_id_type_*, and the
 * wire parser must not depend on the map's object being linked in (fuzzer,
 * unit test). The representation is the same (IPv4 as ::ffff:a.b.c.d). */

static const char *const id_type_names[] = {
    [MUS_ID_USER] = "user", [MUS_ID_MACHINE] = "machine", [MUS_ID_DEVICE] = "device",
};

static int id_type_parse(const char *s, enum mus_id_type *out)
{
    for (unsigned i = 0; i < sizeof(id_type_names) / sizeof(id_type_names[0]); i++)
        if (strcmp(s, id_type_names[i]) == 0) {
            *out = (enum mus_id_type)i;
            return 0;
        }
    return -1;
}

static const char *id_type_name(enum mus_id_type t)
{
    if ((unsigned)t >= sizeof(id_type_names) / sizeof(id_type_names[0]))
        return NULL;
    return id_type_names[t];
}

/* Strict: dotted-quad IPv4 or RFC 4291 IPv6 text, no zone, no brackets. */
static int addr_parse(const char *text, mus_addr_t *out)
{
    struct in_addr a4;
    memset(out, 0, sizeof(*out));
    if (inet_pton(AF_INET, text, &a4) == 1) {
        out->b[10] = 0xff;
        out->b[11] = 0xff;
        memcpy(out->b + 12, &a4, 4);
        return 0;
    }
    if (inet_pton(AF_INET6, text, out->b) == 1)
        return 0;
    return -1;
}

static bool addr_is_v4(const mus_addr_t *a)
{
    static const uint8_t pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    return memcmp(a->b, pfx, sizeof(pfx)) == 0;
}

static void addr_format(const mus_addr_t *a, char *buf, size_t len)
{
    const char *r = addr_is_v4(a) ? inet_ntop(AF_INET, a->b + 12, buf, (socklen_t)len)
                                   : inet_ntop(AF_INET6, a->b, buf, (socklen_t)len);
    if (!r && len)
        buf[0] = '\0';
}

/* ---- base64 (standard alphabet, padded, no whitespace) ---- */

static bool b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '+' || c == '/';
}

/* Decodes text into out; the decoded length must be between min and max.
 * Returns the decoded length or -1. */
static int b64_decode(const char *text, size_t tlen, uint8_t *out, size_t min, size_t max)
{
    if (tlen == 0 || tlen % 4 != 0 || tlen / 4 * 3 > 3 * ((max + 2) / 3))
        return -1;
    size_t pad = 0;
    if (text[tlen - 1] == '=')
        pad++;
    if (text[tlen - 2] == '=')
        pad++;
    for (size_t i = 0; i < tlen - pad; i++)
        if (!b64_char((unsigned char)text[i]))
            return -1;
    size_t n = tlen / 4 * 3 - pad;
    if (n < min || n > max)
        return -1;
    uint8_t tmp[3 * ((MUS_SALT_MAX + 2) / 3) + 3];
    if (tlen / 4 * 3 > sizeof(tmp))
        return -1;
    if (EVP_DecodeBlock(tmp, (const unsigned char *)text, (int)tlen) != (int)(tlen / 4 * 3))
        return -1;
    memcpy(out, tmp, n);
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return (int)n;
}

/* Encodes n bytes (n <= MUS_SALT_MAX) as a NUL-terminated string in out. */
static void b64_encode(const uint8_t *in, size_t n, char out[4 * ((MUS_SALT_MAX + 2) / 3) + 1])
{
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

/* ---- parsing ---- */

struct perr {
    char *buf;
    size_t len;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct perr *e, const char *fmt, ...)
{
    if (e->buf && e->len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->buf, e->len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* Copies a required (or, with optional, possibly absent) string member into
 * dst; rejects the wrong type and strings that do not fit. allow_empty: "" ok. */
static int get_str(json_t *obj, const char *key, char *dst, size_t cap, bool optional,
                   bool allow_empty, struct perr *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        if (optional) {
            dst[0] = '\0';
            return 0;
        }
        return fail(e, "missing \"%s\"", key);
    }
    if (!json_is_string(v))
        return fail(e, "\"%s\" is not a string", key);
    size_t n = json_string_length(v);
    if (n >= cap)
        return fail(e, "\"%s\" too long", key);
    if (n == 0 && !allow_empty)
        return fail(e, "\"%s\" is empty", key);
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return 0;
}

/* A non-negative integer member. present (may be NULL) tells whether it was
 * there; without present the member is required. */
static int get_uint(json_t *obj, const char *key, uint64_t *out, bool *present, struct perr *e)
{
    json_t *v = json_object_get(obj, key);
    if (present)
        *present = v != NULL;
    if (!v) {
        if (present)
            return 0;
        return fail(e, "missing \"%s\"", key);
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return fail(e, "\"%s\" is not a non-negative integer", key);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int get_b64(json_t *obj, const char *key, uint8_t *dst, size_t min, size_t max,
                   size_t *outlen, struct perr *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return fail(e, "missing \"%s\"", key);
    if (!json_is_string(v))
        return fail(e, "\"%s\" is not a string", key);
    int n = b64_decode(json_string_value(v), json_string_length(v), dst, min, max);
    if (n < 0)
        return fail(e, "\"%s\": bad base64 or length", key);
    if (outlen)
        *outlen = (size_t)n;
    return 0;
}

static int get_ips(json_t *obj, const char *key, mus_addr_t *ips, size_t *n, bool optional,
                   struct perr *e)
{
    json_t *arr = json_object_get(obj, key);
    *n = 0;
    if (!arr) {
        if (optional)
            return 0;
        return fail(e, "missing \"%s\"", key);
    }
    if (!json_is_array(arr))
        return fail(e, "\"%s\" is not an array", key);
    if (json_array_size(arr) > MUS_MAX_IPS)
        return fail(e, "too many addresses (max %d)", MUS_MAX_IPS);
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) {
        if (!json_is_string(v))
            return fail(e, "address %zu is not a string", i);
        if (json_string_length(v) >= 48 || addr_parse(json_string_value(v), &ips[i]) < 0)
            return fail(e, "address %zu is not an IP address", i);
    }
    *n = json_array_size(arr);
    return 0;
}

/* The session object of snap/add/upd. Required: sid, ips (1..MUS_MAX_IPS),
 * id.type, id.name. Optional: id.domain, groups, started, client_ip, tunnel. */
static int parse_session(json_t *s, mus_session_t *ss, mus_addr_t *ips, size_t *n_ips,
                         struct perr *e)
{
    if (!json_is_object(s))
        return fail(e, "\"s\" is not an object");
    if (get_str(s, "sid", ss->sid, sizeof(ss->sid), false, false, e) < 0)
        return -1;
    if (get_ips(s, "ips", ips, n_ips, false, e) < 0)
        return -1;
    if (*n_ips == 0)
        return fail(e, "session without addresses");

    json_t *id = json_object_get(s, "id");
    if (!id)
        return fail(e, "missing \"id\"");
    if (!json_is_object(id))
        return fail(e, "\"id\" is not an object");
    char type[16];
    if (get_str(id, "type", type, sizeof(type), false, false, e) < 0)
        return -1;
    if (id_type_parse(type, &ss->type) < 0)
        return fail(e, "unknown identity type");
    if (get_str(id, "name", ss->name, sizeof(ss->name), false, false, e) < 0 ||
        get_str(id, "domain", ss->domain, sizeof(ss->domain), true, true, e) < 0)
        return -1;

    json_t *groups = json_object_get(s, "groups");
    ss->groups[0] = '\0';
    if (groups) {
        if (!json_is_array(groups))
            return fail(e, "\"groups\" is not an array");
        size_t used = 0, i;
        json_t *g;
        json_array_foreach(groups, i, g) {
            if (!json_is_string(g))
                return fail(e, "group %zu is not a string", i);
            size_t gl = json_string_length(g);
            const char *gv = json_string_value(g);
            if (gl == 0 || memchr(gv, ',', gl))
                return fail(e, "group %zu is empty or contains ','", i);
            if (used + (used ? 1 : 0) + gl >= sizeof(ss->groups))
                return fail(e, "\"groups\" too long");
            if (used)
                ss->groups[used++] = ',';
            memcpy(ss->groups + used, gv, gl);
            used += gl;
            ss->groups[used] = '\0';
        }
    }

    json_t *st = json_object_get(s, "started");
    ss->started = 0;
    if (st) {
        if (!json_is_integer(st) || json_integer_value(st) < 0)
            return fail(e, "\"started\" is not a non-negative integer");
        ss->started = (int64_t)json_integer_value(st);
    }
    if (get_str(s, "client_ip", ss->client_ip, sizeof(ss->client_ip), true, true, e) < 0 ||
        get_str(s, "tunnel", ss->tunnel, sizeof(ss->tunnel), true, true, e) < 0)
        return -1;
    if (ss->client_ip[0]) {
        mus_addr_t tmp;
        if (addr_parse(ss->client_ip, &tmp) < 0)
            return fail(e, "\"client_ip\" is not an IP address");
    }
    json_t *stale = json_object_get(s, "stale");
    if (stale && !json_is_boolean(stale))
        return fail(e, "\"stale\" is not a boolean");
    ss->stale = json_is_true(stale);
    return 0;
}

static int parse_members(json_t *root, mus_frame_t *f, struct perr *e)
{
    json_t *v;
    switch (f->type) {
    case MUS_F_HELLO: {
        v = json_object_get(root, "v");
        if (v && !json_is_integer(v))
            return fail(e, "\"v\" is not an integer");
        if (get_str(root, "server_id", f->server_id, sizeof(f->server_id), false, false, e) < 0 ||
            get_str(root, "epoch", f->epoch, sizeof(f->epoch), false, false, e) < 0 ||
            get_b64(root, "nonce", f->nonce, MUS_NONCE_LEN, MUS_NONCE_LEN, NULL, e) < 0)
            return -1;
        json_t *kdf = json_object_get(root, "kdf");
        if (!kdf)
            return fail(e, "missing \"kdf\"");
        if (!json_is_object(kdf))
            return fail(e, "\"kdf\" is not an object");
        uint64_t iter = 0;
        if (get_str(kdf, "alg", f->kdf_alg, sizeof(f->kdf_alg), false, false, e) < 0 ||
            get_uint(kdf, "iter", &iter, NULL, e) < 0 ||
            get_b64(kdf, "salt", f->salt, 1, MUS_SALT_MAX, &f->salt_len, e) < 0)
            return -1;
        if (iter < MUS_KDF_ITER_MIN || iter > MUS_KDF_ITER_MAX)
            return fail(e, "\"iter\" out of range");
        f->kdf_iter = (uint32_t)iter;
        return 0;
    }
    case MUS_F_AUTH:
        if (get_str(root, "client_id", f->client_id, sizeof(f->client_id), false, false, e) < 0 ||
            get_b64(root, "cnonce", f->cnonce, MUS_NONCE_LEN, MUS_NONCE_LEN, NULL, e) < 0 ||
            get_b64(root, "mac", f->mac, MUS_MAC_LEN, MUS_MAC_LEN, NULL, e) < 0)
            return -1;
        return 0;
    case MUS_F_AUTH_OK:
        return get_b64(root, "mac", f->mac, MUS_MAC_LEN, MUS_MAC_LEN, NULL, e);
    case MUS_F_SUBSCRIBE:
        v = json_object_get(root, "epoch");
        f->has_epoch = v != NULL;
        if (v && get_str(root, "epoch", f->epoch, sizeof(f->epoch), false, false, e) < 0)
            return -1;
        return get_uint(root, "seq", &f->seq, &f->has_seq, e);
    case MUS_F_SNAP_BEGIN:
        if (get_str(root, "epoch", f->epoch, sizeof(f->epoch), false, false, e) < 0 ||
            get_uint(root, "seq", &f->seq, NULL, e) < 0 ||
            get_uint(root, "count", &f->count, NULL, e) < 0)
            return -1;
        f->has_epoch = f->has_seq = true;
        return 0;
    case MUS_F_SNAP:
        v = json_object_get(root, "s");
        if (!v)
            return fail(e, "missing \"s\"");
        return parse_session(v, &f->session, f->ips, &f->n_ips, e);
    case MUS_F_SNAP_END:
    case MUS_F_ACK:
        if (get_uint(root, "seq", &f->seq, NULL, e) < 0)
            return -1;
        f->has_seq = true;
        return 0;
    case MUS_F_ADD:
    case MUS_F_UPD:
        if (get_uint(root, "seq", &f->seq, NULL, e) < 0)
            return -1;
        f->has_seq = true;
        v = json_object_get(root, "s");
        if (!v)
            return fail(e, "missing \"s\"");
        return parse_session(v, &f->session, f->ips, &f->n_ips, e);
    case MUS_F_DEL:
        /* required: seq, sid; optional: ips (absent or [] = every address
         * of the session), reason */
        if (get_uint(root, "seq", &f->seq, NULL, e) < 0 ||
            get_str(root, "sid", f->session.sid, sizeof(f->session.sid), false, false, e) < 0 ||
            get_ips(root, "ips", f->ips, &f->n_ips, true, e) < 0 ||
            get_str(root, "reason", f->reason, sizeof(f->reason), true, true, e) < 0)
            return -1;
        f->has_seq = true;
        return 0;
    case MUS_F_ERROR:
        /* the message is informative only: optional, truncated if long */
        v = json_object_get(root, "message");
        if (v) {
            if (!json_is_string(v))
                return fail(e, "\"message\" is not a string");
            /* cut at a character boundary so that it formats again */
            const char *m = json_string_value(v);
            size_t n = json_string_length(v);
            if (n >= sizeof(f->message)) {
                n = sizeof(f->message) - 1;
                while (n > 0 && ((unsigned char)m[n] & 0xc0) == 0x80)
                    n--;
            }
            memcpy(f->message, m, n);
            f->message[n] = '\0';
        }
        return 0;
    case MUS_F_AUTH_FAIL:
    case MUS_F_PING:
    case MUS_F_PONG:
    case MUS_F_UNKNOWN:
        return 0;
    }
    return 0;
}

int mus_frame_parse(const char *line, size_t len, mus_frame_t *out, char *err, size_t errlen)
{
    struct perr e = {err, errlen};
    memset(out, 0, sizeof(*out));
    if (err && errlen)
        err[0] = '\0';
    if (len > MUS_FRAME_MAX)
        return fail(&e, "frame longer than %d bytes", MUS_FRAME_MAX);

    json_error_t jerr;
    json_t *root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(&e, "not JSON: %s", jerr.text);
    int rc = -1;
    if (!json_is_object(root)) {
        fail(&e, "not a JSON object");
        goto done;
    }
    json_t *t = json_object_get(root, "t");
    if (!t) {
        fail(&e, "missing \"t\"");
        goto done;
    }
    if (!json_is_string(t) || json_string_length(t) == 0 ||
        json_string_length(t) >= sizeof(out->type_name)) {
        fail(&e, "\"t\" is not a short string");
        goto done;
    }
    memcpy(out->type_name, json_string_value(t), json_string_length(t) + 1);
    out->type = frame_type_lookup(out->type_name);
    rc = parse_members(root, out, &e);
done:
    json_decref(root);
    return rc;
}

/* ---- formatting ---- */

/* json_object_set_new that records failure (NULL value or OOM). */
static void set(json_t *obj, const char *key, json_t *v, bool *ok)
{
    if (!v || json_object_set_new(obj, key, v) < 0)
        *ok = false;
}

static json_t *b64_json(const uint8_t *in, size_t n)
{
    char tmp[4 * ((MUS_SALT_MAX + 2) / 3) + 1];
    if (n > MUS_SALT_MAX)
        return NULL;
    b64_encode(in, n, tmp);
    return json_string(tmp);
}

static json_t *ips_json(const mus_addr_t *ips, size_t n)
{
    json_t *arr = json_array();
    if (!arr || n > MUS_MAX_IPS) {
        json_decref(arr);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        addr_format(&ips[i], buf, sizeof(buf));
        if (json_array_append_new(arr, json_string(buf)) < 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

static json_t *session_json(const mus_session_t *s, const mus_addr_t *ips, size_t n)
{
    bool ok = true;
    const char *tname = id_type_name(s->type);
    json_t *o = json_object(), *id = json_object(), *groups = json_array();
    if (!o || !id || !groups || !tname) {
        json_decref(o);
        json_decref(id);
        json_decref(groups);
        return NULL;
    }
    set(o, "sid", json_string(s->sid), &ok);
    set(o, "ips", ips_json(ips, n), &ok);
    set(id, "type", json_string(tname), &ok);
    set(id, "name", json_string(s->name), &ok);
    if (s->domain[0])
        set(id, "domain", json_string(s->domain), &ok);
    set(o, "id", id, &ok);
    for (const char *p = s->groups; *p;) {
        const char *c = strchr(p, ',');
        size_t gl = c ? (size_t)(c - p) : strlen(p);
        if (gl && json_array_append_new(groups, json_stringn(p, gl)) < 0)
            ok = false;
        p += gl + (c ? 1 : 0);
    }
    set(o, "groups", groups, &ok);
    set(o, "started", json_integer(s->started), &ok);
    if (s->client_ip[0])
        set(o, "client_ip", json_string(s->client_ip), &ok);
    if (s->tunnel[0])
        set(o, "tunnel", json_string(s->tunnel), &ok);
    if (s->stale)
        set(o, "stale", json_true(), &ok);   /* only when true: older proxies ignore it */
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static json_t *frame_json(const mus_frame_t *f)
{
    bool ok = true;
    json_t *o = json_object();
    if (!o)
        return NULL;
    set(o, "t", json_string(mus_frame_type_str(f->type)), &ok);
    switch (f->type) {
    case MUS_F_UNKNOWN:
        ok = false;
        break;
    case MUS_F_HELLO: {
        json_t *kdf = json_object();
        set(o, "v", json_integer(1), &ok);
        set(o, "server_id", json_string(f->server_id), &ok);
        set(o, "epoch", json_string(f->epoch), &ok);
        set(o, "nonce", b64_json(f->nonce, MUS_NONCE_LEN), &ok);
        if (kdf) {
            set(kdf, "alg", json_string(f->kdf_alg), &ok);
            set(kdf, "iter", json_integer(f->kdf_iter), &ok);
            set(kdf, "salt", b64_json(f->salt, f->salt_len), &ok);
        }
        set(o, "kdf", kdf, &ok);
        break;
    }
    case MUS_F_AUTH:
        set(o, "client_id", json_string(f->client_id), &ok);
        set(o, "cnonce", b64_json(f->cnonce, MUS_NONCE_LEN), &ok);
        set(o, "mac", b64_json(f->mac, MUS_MAC_LEN), &ok);
        break;
    case MUS_F_AUTH_OK:
        set(o, "mac", b64_json(f->mac, MUS_MAC_LEN), &ok);
        break;
    case MUS_F_SUBSCRIBE:
        if (f->has_epoch)
            set(o, "epoch", json_string(f->epoch), &ok);
        if (f->has_seq)
            set(o, "seq", json_integer((json_int_t)f->seq), &ok);
        break;
    case MUS_F_SNAP_BEGIN:
        set(o, "epoch", json_string(f->epoch), &ok);
        set(o, "seq", json_integer((json_int_t)f->seq), &ok);
        set(o, "count", json_integer((json_int_t)f->count), &ok);
        break;
    case MUS_F_SNAP:
        set(o, "s", session_json(&f->session, f->ips, f->n_ips), &ok);
        break;
    case MUS_F_SNAP_END:
    case MUS_F_ACK:
        set(o, "seq", json_integer((json_int_t)f->seq), &ok);
        break;
    case MUS_F_ADD:
    case MUS_F_UPD:
        set(o, "seq", json_integer((json_int_t)f->seq), &ok);
        set(o, "s", session_json(&f->session, f->ips, f->n_ips), &ok);
        break;
    case MUS_F_DEL:
        set(o, "seq", json_integer((json_int_t)f->seq), &ok);
        set(o, "sid", json_string(f->session.sid), &ok);
        set(o, "ips", ips_json(f->ips, f->n_ips), &ok);
        if (f->reason[0])
            set(o, "reason", json_string(f->reason), &ok);
        break;
    case MUS_F_ERROR:
        set(o, "message", json_string(f->message), &ok);
        break;
    case MUS_F_AUTH_FAIL:
    case MUS_F_PING:
    case MUS_F_PONG:
        break;
    }
    if (!ok) {
        json_decref(o);
        return NULL;
    }
    return o;
}

int mus_frame_format(const mus_frame_t *f, char *buf, size_t cap)
{
    if (f->seq > (uint64_t)INT64_MAX || f->count > (uint64_t)INT64_MAX)
        return -1;
    json_t *o = frame_json(f);
    if (!o)
        return -1;
    size_t n = json_dumpb(o, buf, cap, JSON_COMPACT);
    json_decref(o);
    /* the line plus '\n' must fit; the line alone must respect the limit */
    if (n == 0 || n >= cap || n > MUS_FRAME_MAX)
        return -1;
    buf[n] = '\n';
    return (int)(n + 1);
}

int mus_session_parse(const char *json, size_t len, mus_session_t *s, mus_addr_t ips[MUS_MAX_IPS],
                      size_t *n_ips, char *err, size_t errlen)
{
    struct perr e = {err, errlen};
    memset(s, 0, sizeof(*s));
    *n_ips = 0;
    if (err && errlen)
        err[0] = '\0';
    if (len > MUS_FRAME_MAX)
        return fail(&e, "session longer than %d bytes", MUS_FRAME_MAX);
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return fail(&e, "not JSON: %s", jerr.text);
    int rc = parse_session(root, s, ips, n_ips, &e);
    json_decref(root);
    return rc;
}

int mus_session_format(const mus_session_t *s, const mus_addr_t *ips, size_t n_ips, char *buf,
                       size_t cap)
{
    json_t *o = session_json(s, ips, n_ips);
    if (!o)
        return -1;
    size_t n = json_dumpb(o, buf, cap, JSON_COMPACT);
    json_decref(o);
    if (n == 0 || n >= cap)
        return -1;
    buf[n] = '\0';
    return (int)n;
}

/* ---- authentication ---- */

int mus_auth_derive(const char *password, size_t pwlen, const uint8_t *salt, size_t salt_len,
                    uint32_t iter, uint8_t key[MUS_KEY_LEN])
{
    if (iter < MUS_KDF_ITER_MIN || iter > MUS_KDF_ITER_MAX || pwlen > INT32_MAX ||
        salt_len == 0 || salt_len > MUS_SALT_MAX)
        return -1;
    if (PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)salt_len, (int)iter, EVP_sha256(),
                          MUS_KEY_LEN, key) != 1)
        return -1;
    return 0;
}

static void auth_mac(const char *label, const uint8_t key[MUS_KEY_LEN], const uint8_t *n1,
                     const uint8_t *n2, const char *server_id, const char *client_id,
                     const uint8_t cb[MUS_CB_LEN], uint8_t mac[MUS_MAC_LEN])
{
    uint8_t msg[6 + 2 * MUS_NONCE_LEN + 2 * MUS_ID_MAX + MUS_CB_LEN];
    size_t sl = strnlen(server_id, MUS_ID_MAX - 1), cl = strnlen(client_id, MUS_ID_MAX - 1);
    size_t p = 0;
    memcpy(msg + p, label, 6);
    p += 6;
    memcpy(msg + p, n1, MUS_NONCE_LEN);
    p += MUS_NONCE_LEN;
    memcpy(msg + p, n2, MUS_NONCE_LEN);
    p += MUS_NONCE_LEN;
    memcpy(msg + p, server_id, sl);
    p += sl;
    memcpy(msg + p, client_id, cl);
    p += cl;
    memcpy(msg + p, cb, MUS_CB_LEN);
    p += MUS_CB_LEN;
    unsigned int ml = 0;
    if (!HMAC(EVP_sha256(), key, MUS_KEY_LEN, msg, p, mac, &ml) || ml != MUS_MAC_LEN) {
        /* only on allocation failure; a zero MAC must never be compared */
        fprintf(stderr, "mus: HMAC-SHA256 failed\n");
        abort();
    }
}

void mus_auth_client_mac(const uint8_t key[MUS_KEY_LEN], const uint8_t nonce[MUS_NONCE_LEN],
                         const uint8_t cnonce[MUS_NONCE_LEN], const char *server_id,
                         const char *client_id, const uint8_t cb[MUS_CB_LEN],
                         uint8_t mac[MUS_MAC_LEN])
{
    auth_mac("MUS1-C", key, nonce, cnonce, server_id, client_id, cb, mac);
}

void mus_auth_server_mac(const uint8_t key[MUS_KEY_LEN], const uint8_t nonce[MUS_NONCE_LEN],
                         const uint8_t cnonce[MUS_NONCE_LEN], const char *server_id,
                         const char *client_id, const uint8_t cb[MUS_CB_LEN],
                         uint8_t mac[MUS_MAC_LEN])
{
    auth_mac("MUS1-S", key, cnonce, nonce, server_id, client_id, cb, mac);
}

bool mus_auth_mac_equal(const uint8_t a[MUS_MAC_LEN], const uint8_t b[MUS_MAC_LEN])
{
    return CRYPTO_memcmp(a, b, MUS_MAC_LEN) == 0;
}

int mus_random(uint8_t *buf, size_t n)
{
    if (n > INT32_MAX)
        return -1;
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

int mus_tls_channel_binding(void *ssl, uint8_t cb[MUS_CB_LEN])
{
    SSL *s = ssl;
    if (!s)
        return -1;
    /* RFC 9266 §2: with TLS 1.2 the exporter is only unique with the
     * extended master secret (RFC 7627) */
    if (SSL_version(s) < TLS1_3_VERSION && SSL_get_extms_support(s) != 1)
        return -1;
    if (SSL_export_keying_material(s, cb, MUS_CB_LEN, CB_LABEL, strlen(CB_LABEL), NULL, 0, 0) != 1)
        return -1;
    return 0;
}

int mus_read_password_file(const char *path, char *pw, size_t cap, char *err, size_t errlen)
{
    struct perr e = {err, errlen};
    if (cap < 2)
        return fail(&e, "buffer too small");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return fail(&e, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int saved = errno;
        close(fd);
        return fail(&e, "%s: %s", path, strerror(saved));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fail(&e, "%s: not a regular file", path);
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        close(fd);
        return fail(&e, "%s: permissions too open (mode %03o; use chmod 600)", path,
                    (unsigned)(st.st_mode & 0777));
    }
    char tmp[1024];
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, tmp + got, sizeof(tmp) - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int saved = errno;
            close(fd);
            OPENSSL_cleanse(tmp, sizeof(tmp));
            return fail(&e, "%s: %s", path, strerror(saved));
        }
        if (r == 0 || memchr(tmp + got, '\n', (size_t)r)) {
            got += (size_t)r;
            break;
        }
        got += (size_t)r;
        if (got == sizeof(tmp))
            break;
    }
    close(fd);
    size_t n = 0;
    while (n < got && tmp[n] != '\n')
        n++;
    if (n == got && got == sizeof(tmp)) {
        OPENSSL_cleanse(tmp, sizeof(tmp));
        return fail(&e, "%s: first line too long", path);
    }
    if (n > 0 && tmp[n - 1] == '\r')
        n--;
    int rc = 0;
    if (n == 0)
        rc = fail(&e, "%s: empty password", path);
    else if (n >= cap || memchr(tmp, '\0', n))
        rc = fail(&e, "%s: password too long or contains NUL", path);
    else {
        memcpy(pw, tmp, n);
        pw[n] = '\0';
    }
    OPENSSL_cleanse(tmp, sizeof(tmp));
    return rc;
}
