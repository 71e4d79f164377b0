/*
 * tests/fuzz/fuzz_sni.c: libFuzzer target for sni_parse(). Any input must be
 * parsed or refused without a crash or over-read, and the result must obey
 * the contract in proxy/sni.h:
 *  - consumed <= len, a host only with SNI_FOUND, lower-case DNS characters,
 *    host_len == strlen(host) <= SNI_HOST_MAX;
 *  - never SNI_INCOMPLETE once len >= SNI_PEEK_MAX;
 *  - fed as a prefix (any TCP split), the input gives SNI_INCOMPLETE or the
 *    same result as the whole input (same host, same consumed), and a
 *    complete hello is SNI_INCOMPLETE on every prefix shorter than consumed.
 * Each prefix is parsed from a heap copy of exactly its length, so ASan sees
 * a read past it. Seed corpus: tests/fuzz/corpus/sni/ (tests/fuzz/gen_sni_corpus.sh).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proxy/sni.h"

#define ALL_PREFIXES_MAX 512    /* longer inputs: a sample of the prefixes */
#define SAMPLE_STEPS     64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_one(const sni_hello_t *h, sni_status_t st, size_t len)
{
    if (st == SNI_FOUND || st == SNI_NONE) {
        if (h->consumed == 0 || h->consumed > len)
            abort();
    } else if (h->consumed != 0) {
        abort();
    }
    if (h->host_len > SNI_HOST_MAX || strlen(h->host) != h->host_len)
        abort();
    if ((st == SNI_FOUND) != (h->host_len > 0))
        abort();
    for (size_t i = 0; i < h->host_len; i++) {
        char c = h->host[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'))
            abort();
    }
    if (st == SNI_INCOMPLETE && len >= SNI_PEEK_MAX)
        abort();
}

static void
check_prefix(const uint8_t *data, size_t k, sni_status_t st, const sni_hello_t *whole)
{
    sni_hello_t h;
    uint8_t *p = malloc(k > 0 ? k : 1);

    if (p == NULL)
        abort();
    memcpy(p, data, k);
    sni_status_t ps = sni_parse(p, k, &h);
    free(p);
    check_one(&h, ps, k);
    if (ps == SNI_INCOMPLETE) {
        if ((st == SNI_FOUND || st == SNI_NONE) && k >= whole->consumed)
            abort();
        return;
    }
    if (ps != st)
        abort();
    if ((st == SNI_FOUND || st == SNI_NONE) &&
        (h.consumed != whole->consumed || strcmp(h.host, whole->host) != 0 ||
         h.ech != whole->ech || h.alpn_h2 != whole->alpn_h2 ||
         h.alpn_http11 != whole->alpn_http11 || h.client_version != whole->client_version ||
         h.record_version != whole->record_version))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sni_hello_t whole;
    sni_status_t st = sni_parse(data, size, &whole);

    check_one(&whole, st, size);
    if (size <= ALL_PREFIXES_MAX) {
        for (size_t k = 0; k < size; k++)
            check_prefix(data, k, st, &whole);
    } else {
        size_t step = size / SAMPLE_STEPS;
        for (size_t k = 0; k < size; k += step)
            check_prefix(data, k, st, &whole);
        for (size_t k = 0; k < ALL_PREFIXES_MAX / 8; k++)
            check_prefix(data, k, st, &whole);
        for (size_t k = size - SAMPLE_STEPS; k < size; k++)
            check_prefix(data, k, st, &whole);
        if (st == SNI_FOUND || st == SNI_NONE)
            for (size_t k = whole.consumed - 1; k <= whole.consumed; k++)
                check_prefix(data, k, st, &whole);
    }
    return 0;
}
