/*
 * tests/fuzz/fuzz_http_request.c: libFuzzer target for http_parse_request()
 * and the chunked-body scanner (proxy/http.c).
 *
 * For every input: the return value must be a head length or a known
 * code. For a parsed head, every returned string must lie inside the head
 * (the absolute-form path may be the static "/"), counts must be within
 * their limits, the fields must agree with one another, the same head
 * parsed alone must give the same length, and its prefixes must be
 * incomplete, never an error. Then the chunked scanner runs over the bytes
 * after the head (or over the whole input when there is no head), whole
 * and in odd-sized pieces, in both modes, and the runs must agree.
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
           r == HTTP_E_VERSION || r == HTTP_E_SMUGGLING || r == HTTP_E_TARGET;
}

static void
check_request(const http_request_t *q, const char *buf, size_t r)
{
    CHECK(q->method.len > 0 && inside(q->method, buf, r));
    CHECK(q->target.len > 0 && inside(q->target, buf, r));
    CHECK(q->version_minor == 0 || q->version_minor == 1);
    CHECK(inside(q->scheme, buf, r) && inside(q->host, buf, r));
    CHECK(q->port != 0);
    CHECK((q->meth == HTTP_M_CONNECT) == (q->form == HTTP_FORM_AUTHORITY));
    switch (q->form) {
    case HTTP_FORM_ORIGIN:
        CHECK(q->target.p[0] == '/' && q->scheme.len == 0);
        CHECK(q->path.p == q->target.p && q->path.len == q->target.len);
        CHECK(q->host.len > 0 || (q->version_minor == 0 && !q->has_host_header));
        break;
    case HTTP_FORM_ABSOLUTE:
        CHECK(http_str_eq_nocase(q->scheme, "http") || http_str_eq_nocase(q->scheme, "https"));
        CHECK(q->host.len > 0 && q->path.len > 0 && q->path.p[0] == '/');
        CHECK(inside(q->path, buf, r) || (q->path.len == 1));
        break;
    case HTTP_FORM_AUTHORITY:
        CHECK(q->host.len > 0 && q->path.len == 0 && q->scheme.len == 0);
        break;
    case HTTP_FORM_ASTERISK:
        CHECK(q->meth == HTTP_M_OPTIONS && q->target.len == 1);
        CHECK(q->host.len > 0 || q->version_minor == 0);
        break;
    default:
        abort();
    }
    if (q->form != HTTP_FORM_ABSOLUTE)
        CHECK(inside(q->path, buf, r));
    if (q->has_host_header)
        CHECK(inside(q->host_header, buf, r));
    CHECK(q->framing.body != HTTP_BODY_UNTIL_CLOSE);
    if (q->framing.body == HTTP_BODY_CHUNKED)
        CHECK(q->version_minor == 1);
    check_headers(q->headers, q->n_headers, buf, r);
    check_framing(&q->framing, buf, r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
    const char *buf = (const char *)d;
    http_request_t *q = malloc(sizeof(*q)), *q2 = malloc(sizeof(*q2));
    int r;

    CHECK(q != NULL && q2 != NULL);
    r = http_parse_request(buf, n, q);
    if (r > 0) {
        size_t head = (size_t)r;

        CHECK(head <= n && head <= HTTP_MAX_HEAD_BYTES);
        check_request(q, buf, head);
        /* The head alone parses the same; its prefixes are incomplete. */
        CHECK(http_parse_request(buf, head, q2) == r);
        CHECK(q2->n_headers == q->n_headers && q2->framing.body == q->framing.body);
        CHECK(http_parse_request(buf, head - 1, q2) == HTTP_INCOMPLETE);
        CHECK(http_parse_request(buf, head / 2, q2) == HTTP_INCOMPLETE);
        fuzz_chunked(buf + head, n - head);
    } else {
        CHECK(known_code(r));
        CHECK(r != HTTP_INCOMPLETE || n < HTTP_MAX_HEAD_BYTES);
        fuzz_chunked(buf, n);
    }
    free(q);
    free(q2);
    return 0;
}
