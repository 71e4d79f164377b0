/*
 * proxy/txnlog.c: the access and extended log lines of a transaction record
 * (see txnlog.h). The JSON writer is a bounded appender: an overflow marks
 * the line and the whole line is dropped, never written past the buffer.
 */
#include "txnlog.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "../common/log.h"

#define URL_INVALID "error:invalid-request"

void
txnlog_squid(alog_t *a, const txn_record_t *r)
{
    alog_entry_t e = {
        .client = r->client,
        .tag = txn_result_str(r->result),
        .status = r->status,
        .bytes = r->bytes_out,
        .method = r->method[0] ? r->method : "-",
        .url = r->url_len ? r->url : URL_INVALID,
        .url_len = r->url_len ? r->url_len : strlen(URL_INVALID),
        .user = r->user[0] ? r->user : NULL,
        .hier = txn_hier_str(r->hier),
        .peer = r->server[0] ? r->server : NULL,
        .mime = r->mime[0] ? r->mime : NULL,
        .mime_len = strlen(r->mime),
        .elapsed_ms = r->elapsed_ms,
    };

    if (alog_enabled(a))
        alog_write(a, &e);
}

/* A bounded line being built. */
typedef struct jline {
    char *buf;
    size_t cap, off;
    bool overflow;
} jline_t;

static void
jl_raw(jline_t *j, const char *s, size_t n)
{
    if (j->overflow || n > j->cap - j->off) {
        j->overflow = true;
        return;
    }
    memcpy(j->buf + j->off, s, n);
    j->off += n;
}

static void jl_fmt(jline_t *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
jl_fmt(jline_t *j, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        j->overflow = true;
        return;
    }
    jl_raw(j, tmp, (size_t)n);
}

/* ,"key":"escaped value" (or null when s is NULL) */
static void
jl_str(jline_t *j, const char *key, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";

    jl_fmt(j, ",\"%s\":", key);
    if (s == NULL) {
        jl_raw(j, "null", 4);
        return;
    }
    jl_raw(j, "\"", 1);
    for (size_t i = 0; i < n && !j->overflow; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\') {
            char e[2] = {'\\', (char)ch};
            jl_raw(j, e, 2);
        } else if (ch < 0x20 || ch == 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            jl_raw(j, e, 6);
        } else {
            jl_raw(j, (const char *)&ch, 1);
        }
    }
    jl_raw(j, "\"", 1);
}

/* A record field: "" is written as null. */
static void
jl_field(jline_t *j, const char *key, const char *s)
{
    jl_str(j, key, s[0] ? s : NULL, strlen(s));
}

/* A policy field: null when the policy was not asked or the field is empty. */
static void
jl_policy(jline_t *j, const txn_record_t *r, const char *key, const char *s)
{
    jl_field(j, key, r->decided ? s : "");
}

size_t
txnlog_json(char *buf, size_t cap, const txn_record_t *r)
{
    jline_t j = { .buf = buf, .cap = cap };
    const char *q = memchr(r->url, '?', r->url_len);
    size_t url_len = q ? (size_t)(q - r->url) + 1 : r->url_len;  /* the query is never logged */

    jl_fmt(&j, "{\"time\":%lld.%03lld,\"elapsed_ms\":%llu", (long long)(r->end_ms / 1000),
           (long long)(r->end_ms % 1000), (unsigned long long)r->elapsed_ms);
    jl_field(&j, "client", r->client);
    jl_field(&j, "result", txn_result_str(r->result));
    jl_fmt(&j, ",\"status\":%d,\"bytes\":%llu", r->status, (unsigned long long)r->bytes_out);
    jl_field(&j, "method", r->method[0] ? r->method : "NONE");
    jl_str(&j, "url", r->url_len ? r->url : NULL, url_len);
    jl_field(&j, "user", r->user);
    jl_policy(&j, r, "location", r->remote ? "remote" : "local");
    jl_policy(&j, r, "user_source", r->user_source);
    jl_policy(&j, r, "identity_type", r->identity_type);
    jl_policy(&j, r, "headend", r->headend);
    jl_policy(&j, r, "identity_profile", r->identity_profile);
    jl_policy(&j, r, "access_policy", r->access_policy);
    jl_policy(&j, r, "rule", r->rule);
    jl_policy(&j, r, "category", r->category);
    jl_policy(&j, r, "decision", r->decision_tag);
    jl_field(&j, "hierarchy", txn_hier_str(r->hier));
    jl_field(&j, "server", r->server);
    jl_field(&j, "mode", txn_mode_str(r->mode));
    if (r->bypass)
        jl_raw(&j, ",\"bypass\":true", 14);
    if (r->host_mismatch)
        jl_raw(&j, ",\"host_mismatch\":true", 21);
    if (r->ech)
        jl_raw(&j, ",\"ech\":true", 11);
    jl_raw(&j, "}\n", 2);
    return j.overflow ? 0 : j.off;
}

void
txnlog_extended(alog_t *x, const txn_record_t *r)
{
    char line[ALOG_LINE_MAX];
    size_t n;

    if (!alog_enabled(x))
        return;
    n = txnlog_json(line, sizeof(line), r);
    if (n == 0) {
        log_warn("txnlog %s: extended log line too long, not written", r->client);
        return;
    }
    alog_write_line(x, line, n);
}
