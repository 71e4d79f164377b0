/*
 * tests/fuzz/fuzz_http_common.h: the invariants both HTTP fuzz targets check
 * (returned strings inside the buffer, header and framing limits) and the
 * chunked-scanner runs (whole, odd pieces, bytewise, both modes) they share.
 * Included by fuzz_http_request.c and fuzz_http_response.c only; every
 * violation calls abort().
 */
#ifndef MUS_TESTS_FUZZ_HTTP_COMMON_H
#define MUS_TESTS_FUZZ_HTTP_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proxy/http.h"

#define CHECK(cond) do { if (!(cond)) abort(); } while (0)

static bool
inside(http_str_t s, const char *buf, size_t len)
{
    uintptr_t p = (uintptr_t)s.p, b = (uintptr_t)buf;

    return s.p != NULL && p >= b && s.len <= len && p - b <= len - s.len;
}

static void
check_headers(const http_header_t *h, size_t n, const char *buf, size_t len)
{
    CHECK(n <= HTTP_MAX_HEADERS);
    for (size_t i = 0; i < n; i++) {
        const http_str_t *v = &h[i].value;

        CHECK(h[i].name.len > 0 && inside(h[i].name, buf, len));
        CHECK(inside(*v, buf, len));
        CHECK(memchr(h[i].name.p, ':', h[i].name.len) == NULL);
        CHECK(memchr(v->p, '\r', v->len) == NULL && memchr(v->p, '\n', v->len) == NULL);
        CHECK(memchr(v->p, '\0', v->len) == NULL);
        if (v->len > 0)
            CHECK(v->p[0] != ' ' && v->p[0] != '\t' &&
                  v->p[v->len - 1] != ' ' && v->p[v->len - 1] != '\t');
    }
}

static void
check_framing(const http_framing_t *f, const char *buf, size_t len)
{
    CHECK(f->body == HTTP_BODY_NONE || f->body == HTTP_BODY_LENGTH ||
          f->body == HTTP_BODY_CHUNKED || f->body == HTTP_BODY_UNTIL_CLOSE);
    if (f->body == HTTP_BODY_LENGTH)
        CHECK(f->content_length <= (uint64_t)INT64_MAX);
    CHECK(f->n_conn_tokens <= HTTP_MAX_CONN_TOKENS);
    for (size_t i = 0; i < f->n_conn_tokens; i++)
        CHECK(f->conn_tokens[i].len > 0 && inside(f->conn_tokens[i], buf, len));
}

/*
 * Feeds buf[0..n) to a fresh scanner in pieces whose sizes cycle through
 * sizes[]. Returns the total consumed, or HTTP_E_CHUNK; *done, and for
 * decode the payload appended to out[0..*out_n).
 */
static ssize_t
chunked_run(char *buf, size_t n, bool decode, const size_t *sizes, size_t nsizes,
            bool *done, char *out, size_t *out_n)
{
    http_chunked_t c;
    size_t at = 0, k = 0;

    http_chunked_init(&c);
    *out_n = 0;
    *done = false;
    while (at < n) {
        size_t piece = sizes[k++ % nsizes], got = (size_t)-1;
        ssize_t r;

        if (piece > n - at)
            piece = n - at;
        r = http_chunked_feed(&c, buf + at, piece, decode, &got);
        if (r < 0) {
            CHECK(r == HTTP_E_CHUNK && c.state == HTTP_CHUNK_ERROR);
            return r;
        }
        CHECK((size_t)r <= piece);
        if (decode) {
            CHECK(got <= (size_t)r);
            memcpy(out + *out_n, buf + at, got);
            *out_n += got;
        } else {
            CHECK(got == (size_t)r);
        }
        at += (size_t)r;
        if (http_chunked_done(&c)) {
            *done = true;
            CHECK(http_chunked_feed(&c, buf + at, n - at, decode, &got) == 0);
            break;
        }
        CHECK((size_t)r == piece);
    }
    return (ssize_t)at;
}

/*
 * The forwarding (filtering) scanner fed as conn.c feeds it: unconsumed
 * bytes stay at the front of pending and go again with the next piece.
 * Returns the consumed total or HTTP_E_CHUNK; kept bytes into out.
 */
static ssize_t
filter_run(const char *data, size_t n, size_t piece, char *pend, char *out, size_t *out_n,
           bool *done)
{
    http_chunked_t c;
    size_t plen = 0, at = 0;

    http_chunked_init_filter(&c);
    *out_n = 0;
    *done = false;
    for (;;) {
        size_t take = n - at < piece ? n - at : piece, kept = (size_t)-1;
        ssize_t r;

        memcpy(pend + plen, data + at, take);
        plen += take;
        at += take;
        r = http_chunked_feed(&c, pend, plen, false, &kept);
        if (r < 0) {
            CHECK(r == HTTP_E_CHUNK && c.state == HTTP_CHUNK_ERROR);
            return r;
        }
        CHECK((size_t)r <= plen && kept <= (size_t)r);
        memcpy(out + *out_n, pend, kept);
        *out_n += kept;
        memmove(pend, pend + r, plen - (size_t)r);
        plen -= (size_t)r;
        if (http_chunked_done(&c)) {
            *done = true;
            break;
        }
        if (take == 0)
            break;
    }
    return (ssize_t)(at - plen);
}

static void
fuzz_chunked(const char *data, size_t n)
{
    static const size_t whole[] = { SIZE_MAX };
    static const size_t odd[] = { 1, 3, 7, 2, 13, 5, 64, 1, 31 };
    static const size_t bytes[] = { 1 };
    char *a, *b, *out_a, *out_b;
    size_t na, nb;
    bool done_a, done_b;
    ssize_t ra, rb;

    if (n == 0)
        return;
    a = malloc(n);
    b = malloc(n);
    out_a = malloc(n);
    out_b = malloc(n);
    CHECK(a && b && out_a && out_b);

    /* Framing only, whole and bytewise, must agree. */
    memcpy(a, data, n);
    ra = chunked_run(a, n, false, whole, 1, &done_a, out_a, &na);
    rb = chunked_run(a, n, false, bytes, 1, &done_b, out_b, &nb);
    CHECK(ra == rb && done_a == done_b);
    CHECK(memcmp(a, data, n) == 0);     /* untouched */

    /* Decoding, whole and in odd pieces, must agree with each other. */
    memcpy(a, data, n);
    memcpy(b, data, n);
    ra = chunked_run(a, n, true, whole, 1, &done_a, out_a, &na);
    rb = chunked_run(b, n, true, odd, sizeof(odd) / sizeof(odd[0]), &done_b, out_b, &nb);
    CHECK(ra == rb && done_a == done_b);
    if (ra >= 0) {
        CHECK(na == nb && memcmp(out_a, out_b, na) == 0);
        CHECK(na <= (size_t)ra);
    }

    /* Filtering (forwarding), whole and bytewise, must agree exactly, and
     * never keep more than it consumed. */
    ra = filter_run(data, n, n, a, out_a, &na, &done_a);
    rb = filter_run(data, n, 1, b, out_b, &nb, &done_b);
    CHECK(ra == rb && done_a == done_b);
    if (ra >= 0)
        CHECK(na == nb && memcmp(out_a, out_b, na) == 0 && na <= (size_t)ra);
    free(a);
    free(b);
    free(out_a);
    free(out_b);
}

#endif
