/*
 * tests/fuzz/fuzz_radius.c: libFuzzer target for radius_parse(), what
 * mus-headend's RADIUS listener reads from a UDP socket, and for
 * radius_verify_request() with a fixed secret. Any input is parsed or
 * refused without a crash or over-read; what parses must hold only
 * NUL-free, terminated strings within their limits. The User-Name and
 * AVPair splitters run on whatever parsed.
 * Seed corpus: tests/fuzz/corpus/radius/ (secret "testing123").
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../mus/radius.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s)
{
    if (strnlen(s, RADIUS_STR_MAX) >= RADIUS_STR_MAX)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static radius_acct_t a;
    (void)radius_verify_request(data, size, (const uint8_t *)"testing123", 10);
    if (radius_parse(data, size, &a) != RADIUS_OK)
        return 0;
    if (a.length < RADIUS_HDR_LEN || a.length > size || a.code != RADIUS_CODE_ACCT_REQUEST ||
        a.n_classes > RADIUS_MULTI_MAX || a.n_filter_ids > RADIUS_MULTI_MAX ||
        a.n_avpairs > RADIUS_MULTI_MAX || a.framed_prefix_len > 128 || a.n_skipped > a.n_attrs * 64)
        abort();
    check_str(a.user_name);
    check_str(a.session_id);
    check_str(a.calling_station);
    check_str(a.nas_identifier);
    char n[RADIUS_STR_MAX], d[RADIUS_STR_MAX];
    (void)radius_user_split(a.user_name, n, sizeof(n), d, sizeof(d));
    for (size_t i = 0; i < a.n_avpairs; i++) {
        check_str(a.avpairs[i]);
        (void)radius_avpair_split(a.avpairs[i], n, sizeof(n), d, sizeof(d));
    }
    uint8_t resp[RADIUS_HDR_LEN];
    if (radius_build_response(a.identifier, a.authenticator, (const uint8_t *)"s", 1, resp,
                              sizeof(resp)) != RADIUS_HDR_LEN ||
        !radius_verify_response(resp, sizeof(resp), a.authenticator, (const uint8_t *)"s", 1))
        abort();
    return 0;
}
