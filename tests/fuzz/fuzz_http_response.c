/*
 * tests/fuzz/fuzz_http_response.c: libFuzzer target for
 * http_parse_response() and the chunked-body scanner (proxy/http.c).
 *
 * The first input byte picks the request method the response answers
 * (HEAD and CONNECT change the framing); the rest is the response. For a
 * parsed head, every returned string must lie inside the head, counts must
 * be within limits, the framing must follow the status and method rules,
 * the head parsed alone must give the same length and its prefixes must
 * be incomplete. Then the chunked scanner runs over the bytes after the
 * head (or the whole input), whole and in odd-sized pieces, in both modes.
 * Any violation calls abort().
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proxy/http.h"
#include "fuzz_http_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static bool
known_code(int r)
{
    return r == HTTP_INCOMPLETE || r == HTTP_E_SYNTAX ||
           r == HTTP_E_REQUEST_LINE_TOO_LONG || r == HTTP_E_HEAD_TOO_LARGE ||
           r == HTTP_E_VERSION || r == HTTP_E_SMUGGLING;
}

static void
check_response(const http_response_t *s, enum http_method m, const char *buf, size_t r)
{
    const http_framing_t *f = &s->framing;

    CHECK(s->status >= 100 && s->status <= 999);
    CHECK(s->version_minor == 0 || s->version_minor == 1);
    CHECK(inside(s->reason, buf, r));
    CHECK(memchr(s->reason.p, '\r', s->reason.len) == NULL);
    if (m == HTTP_M_HEAD || s->status < 200 || s->status == 204 || s->status == 304 ||
        (m == HTTP_M_CONNECT && s->status < 300))
        CHECK(f->body == HTTP_BODY_NONE);
    else
        CHECK(f->body != HTTP_BODY_NONE);
    if (f->body == HTTP_BODY_UNTIL_CLOSE)
        CHECK(!f->keep_alive);
    if (f->body == HTTP_BODY_CHUNKED)
        CHECK(s->version_minor == 1);
    check_headers(s->headers, s->n_headers, buf, r);
    check_framing(f, buf, r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *buf = (const char *)d + 1;
    http_response_t *s, *s2;
    enum http_method m;
    int r;

    if (n == 0)
        return 0;
    m = (enum http_method)(d[0] % (HTTP_M_PATCH + 1));
    n--;
    s = malloc(sizeof(*s));
    s2 = malloc(sizeof(*s2));
    CHECK(s != NULL && s2 != NULL);
    r = http_parse_response(buf, n, m, s);
    if (r > 0) {
        size_t head = (size_t)r;

        CHECK(head <= n && head <= HTTP_MAX_HEAD_BYTES);
        check_response(s, m, buf, head);
        CHECK(http_parse_response(buf, head, m, s2) == r);
        CHECK(s2->status == s->status && s2->framing.body == s->framing.body);
        CHECK(http_parse_response(buf, head - 1, m, s2) == HTTP_INCOMPLETE);
        CHECK(http_parse_response(buf, head / 2, m, s2) == HTTP_INCOMPLETE);
        fuzz_chunked(buf + head, n - head);
    } else {
        CHECK(known_code(r));
        CHECK(r != HTTP_INCOMPLETE || n < HTTP_MAX_HEAD_BYTES);
        fuzz_chunked(buf, n);
    }
    free(s);
    free(s2);
    return 0;
}
