/*
 * common/hash.h: FNV-1a, the non-cryptographic hash the hash tables use
 * (32 bits for the proxy's tables, 64 bits for the headend's store). Calls
 * chain: start from HASH_FNV1A32_INIT (or _64_), feed the result of one call
 * to the next to hash several fields as one. Inline, header only: it
 * allocates nothing and keeps no state. Not for anything an attacker must not
 * be able to collide on purpose (no key, no seed), nor for the policy's
 * right-to-left suffix hash (hash_rev in policy/policy_int.h), which runs
 * the bytes backwards on purpose with the 64-bit constants below.
 */
#ifndef MUS_COMMON_HASH_H
#define MUS_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define HASH_FNV1A32_INIT  2166136261u
#define HASH_FNV1A32_PRIME 16777619u
#define HASH_FNV1A64_INIT  14695981039346656037ull
#define HASH_FNV1A64_PRIME 1099511628211ull

/* h continued over the n bytes at p. */
static inline uint32_t
hash_fnv1a32(uint32_t h, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * HASH_FNV1A32_PRIME;
    return h;
}

/* h continued over the bytes of the string s (without its '\0'). */
static inline uint32_t
hash_fnv1a32_str(uint32_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * HASH_FNV1A32_PRIME;
    return h;
}

/* h continued over the n bytes at p, 64 bits. */
static inline uint64_t
hash_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * HASH_FNV1A64_PRIME;
    return h;
}

#endif
