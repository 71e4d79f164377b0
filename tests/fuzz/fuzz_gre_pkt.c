/*
 * tests/fuzz/fuzz_gre_pkt.c: libFuzzer target for gre_wccp_parse() and
 * gre_strip_ip(), what the decapsulation reads from a raw GRE socket. Any
 * input is parsed or refused without a crash or over-read; a packet that
 * parses is built again and must come out byte for byte the same.
 * Seed corpus: tests/fuzz/corpus/gre_pkt/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../proxy/gre_pkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[65536 + 64];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    gre_wccp_t w;
    size_t off = 0;

    if (gre_wccp_parse(data, size, &w) == GRE_OK) {
        long n;
        if (w.inner < data || w.inner + w.inner_len != data + size)
            abort();
        n = gre_wccp_build(out, sizeof(out), &w, w.inner, w.inner_len);
        if (n != (long)size || memcmp(out, data, size) != 0)
            abort();
    }
    if (gre_strip_ip(data, size, &off) == GRE_OK) {
        if (off < 20 || off > size)
            abort();
        gre_wccp_parse(data + off, size - off, &w);
    }
    return 0;
}
