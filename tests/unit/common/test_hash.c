/*
 * tests/unit/common/test_hash.c: FNV-1a (common/hash.h): the published test
 * vectors for 32 and 64 bits, chaining (two calls over the halves equal one
 * call over the whole), and the string form equal to the byte form.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "../../../common/hash.h"

/* from the FNV reference (isthe.com/chongo/tech/comp/fnv, test vectors) */
static const struct {
    const char *in;
    uint32_t h32;
    uint64_t h64;
} vectors[] = {
    {"", 0x811c9dc5u, 0xcbf29ce484222325ull},
    {"a", 0xe40c292cu, 0xaf63dc4c8601ec8cull},
    {"foobar", 0xbf9cf968u, 0x85944171f73967e8ull},
};

Test(hash, fnv1a32_vectors)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const char *s = vectors[i].in;
        cr_expect_eq(hash_fnv1a32(HASH_FNV1A32_INIT, s, strlen(s)), vectors[i].h32, "\"%s\"", s);
        cr_expect_eq(hash_fnv1a32_str(HASH_FNV1A32_INIT, s), vectors[i].h32, "\"%s\"", s);
    }
}

Test(hash, fnv1a64_vectors)
{
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        const char *s = vectors[i].in;
        cr_expect_eq(hash_fnv1a64(HASH_FNV1A64_INIT, s, strlen(s)), vectors[i].h64, "\"%s\"", s);
    }
}

Test(hash, chaining_equals_one_pass)
{
    const char host[] = "example.org";
    const unsigned char addr[] = {10, 0, 0, 1, 0x1f, 0x90, 0xff, 0x00};
    unsigned char all[sizeof(host) - 1 + sizeof(addr)];
    uint32_t two;

    memcpy(all, host, sizeof(host) - 1);
    memcpy(all + sizeof(host) - 1, addr, sizeof(addr));
    two = hash_fnv1a32(hash_fnv1a32_str(HASH_FNV1A32_INIT, host), addr, sizeof(addr));
    cr_expect_eq(two, hash_fnv1a32(HASH_FNV1A32_INIT, all, sizeof(all)));
    cr_expect_eq(hash_fnv1a64(hash_fnv1a64(HASH_FNV1A64_INIT, "foo", 3), "bar", 3),
                 0x85944171f73967e8ull);
}

Test(hash, bytes_above_127_are_unsigned)
{
    /* a signed char would sign-extend 0xff into the xor and change the hash */
    const char s[] = "\xff\x80";
    const unsigned char u[] = {0xff, 0x80};

    cr_expect_eq(hash_fnv1a32_str(HASH_FNV1A32_INIT, s), hash_fnv1a32(HASH_FNV1A32_INIT, u, 2));
    cr_expect_neq(hash_fnv1a32(HASH_FNV1A32_INIT, u, 1), hash_fnv1a32(HASH_FNV1A32_INIT, u + 1, 1));
}
