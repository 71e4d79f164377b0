/*
 * policy/policy_int.h: the inside of a compiled policy (policy_t), shared
 * by the three files that implement policy.h and by nothing else:
 * policy_build.c (configuration and list source -> policy_t, and its one
 * destroy path), policy_match.c (the matchers' machinery both sides use:
 * the string arena and hash table, everything PCRE2) and policy_eval.c
 * (request-time evaluation and the read-only queries). Everyone outside
 * policy/ sees only policy.h, where policy_t stays opaque.
 *
 * Categories. Every category gets a small id (custom categories first, in
 * configuration order, then list categories in the order the source emits
 * them). A category rule resolves its name to a set of ids: a friendly name
 * to the ids of its lists, a custom or list name to one id.
 *
 * Matchers, shared by all categories:
 *  - domains: one open-addressing hash table keyed by the domain text (in a
 *    string arena); the value is one category id or an index into a pool of
 *    short id sets (a domain may be in several lists). A host is looked up
 *    once per label suffix, the hashes of all suffixes coming from one
 *    right-to-left pass (FNV-1a run backwards), so the cost depends on the
 *    number of labels, never on the number of listed domains. IP literals are
 *    looked up exactly.
 *  - URL prefixes: a second table keyed by host (a leading "www." stripped on
 *    both sides) whose value heads a chain of (path prefix, category); the
 *    path is compared case-insensitively. Custom "http://host/path" prefixes
 *    lose their scheme and share the table with UT1 "host/path" entries.
 *  - regexes (custom regexes and list expressions), matched against the URL
 *    with its scheme and host lowercased: each pattern is compiled once on
 *    its own (to report errors with their offset). A pattern with a required
 *    literal of POLICY_LIT_MIN bytes or more is indexed by the literal's
 *    first four bytes (lowercased); at match time one pass over the
 *    lowercased URL probes that index (behind a bitmap), and only candidates
 *    whose whole literal is present run their regex. The other patterns are
 *    joined per category into alternations "(?:a)|(?:b)" of bounded size,
 *    compiled with JIT, and run only when a rule needs that category.
 *
 * Per-thread state (PCRE2 match data, match context, JIT stack and URL
 * buffers) hangs off a pthread key; the Basic-auth cache (basicauth.c) is the only shared
 * mutable state and has its own mutex.
 *
 * The small inline helpers below (hashes, table lookup, lowercase) sit on
 * the hot path of both the builder and the evaluator; the functions
 * declared at the end are the internals one file provides to another
 * (policy_ prefix, as for the public API; they are not part of it).
 */
#ifndef MUS_POLICY_POLICY_INT_H
#define MUS_POLICY_POLICY_INT_H

#include "policy.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../common/hash.h"
#include "basicauth.h"

/* ---- limits ---- */
#define POLICY_MAX_CATS          1024      /* custom + list categories */
#define POLICY_CAT_WORDS         (POLICY_MAX_CATS / 64)
#define POLICY_MAX_HOST          255
#define POLICY_LIT_MIN           4         /* prefilter literal length */
#define POLICY_LIT_MAX_CHAIN     32        /* more patterns on one 4-gram: combine them */
#define POLICY_RX_CHUNK_BYTES    16384     /* source bytes of one combined alternation */
#define POLICY_MATCH_LIMIT       1000000   /* PCRE2 match limit (runaway patterns) */
#define POLICY_JIT_STACK_MAX     (1u << 20)
#define POLICY_MAX_WARN_LOG      20        /* list expressions rejected, logged one by one */
#define POLICY_URL_BUF_MAX       (64u << 10) /* longer URLs are cut for regexes */

#define SETBIT 0x80000000u                /* htab value: index into sets, not an id */
#define NO_NEXT UINT32_MAX
#define LIT_DEAD UINT32_MAX               /* lit_slot.head of an emptied chain */

/* The builder's string pool (policy_build.c): names and reasons live there
 * until policy_free. */
typedef struct pool_blk pool_blk_t;

/* ---- hash table over a string arena ---- */

typedef struct htab_ent {
    uint32_t hash;
    uint32_t off;      /* key offset in the arena; 0 = empty slot */
    uint32_t val;
} htab_ent_t;

typedef struct htab {
    htab_ent_t *e;
    size_t cap, n;     /* cap: power of two */
} htab_t;

typedef struct arena {
    char *s;
    size_t len, cap;   /* s[0] is a reserved '\0' so that offset 0 means empty */
} arena_t;

/* Final mix of a 64-bit hash into the 32 bits the tables keep. */
static inline uint32_t
hash_fin(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

/* FNV-1a over the bytes from last to first: the state after byte i is the
 * hash of s[i..len), which gives every suffix's hash in one pass. */
static inline uint32_t
hash_rev(const char *s, size_t len)
{
    uint64_t h = HASH_FNV1A64_INIT;
    for (size_t i = len; i > 0; i--) {
        h ^= (unsigned char)s[i - 1];
        h *= HASH_FNV1A64_PRIME;
    }
    return hash_fin(h);
}

/* The entry of key k (n bytes, hash h), or NULL. */
static inline htab_ent_t *
htab_find(const htab_t *t, const arena_t *a, const char *k, size_t n, uint32_t h)
{
    if (t->cap == 0)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        htab_ent_t *e = &t->e[i];
        if (e->off == 0)
            return NULL;
        if (e->hash == h && memcmp(a->s + e->off, k, n) == 0 && a->s[e->off + n] == '\0')
            return e;
    }
}

/* ---- compiled structures ---- */

typedef struct category {
    const char *name;
    const char *display;      /* first friendly name listing it, else name */
    bool custom;
    bool has_rx;              /* any regex (prefiltered or combined) */
    pcre2_code **codes;       /* combined alternations and lone patterns */
    size_t n_codes, cap_codes;
    char **pending;           /* regex sources waiting to be combined */
    size_t n_pending, cap_pending;
} category_t;

typedef struct url_ent {
    uint32_t path_off, path_len;   /* lowercase path prefix in the arena */
    uint32_t next;
    uint16_t cat;
} url_ent_t;

typedef struct lit_rx {
    pcre2_code *code;              /* NULL: moved to the combined patterns */
    char *src;                     /* pattern source, until the build ends */
    uint32_t lit_off, lit_len;     /* lowercase required literal in the arena */
    uint32_t gram;                 /* offset in the literal of its indexed 4 bytes */
    uint32_t next;                 /* next entry with the same 4-byte key */
    uint16_t cat;
} lit_rx_t;

typedef struct lit_slot {
    uint32_t key;
    uint32_t head;                 /* index + 1 into lit_rx; 0 = empty */
} lit_slot_t;

typedef struct rule {
    uint32_t cats_off, n_cats;     /* into policy.rule_cats */
    enum policy_action action;
    int time_range;
    const char *name;              /* as written in the rule */
    const char *reason;
} rule_t;

typedef struct cpolicy {
    const char *name;
    rule_t *rules;
    size_t n_rules;
    enum policy_action def;
    uint16_t connect_ports[CONFIG_MAX_PORTS];
    size_t n_connect_ports;
    char **methods;
    size_t n_methods;
    const char *r_default, *r_connect, *r_method;
} cpolicy_t;

typedef struct cprofile {
    const char *name;
    enum config_location location;
    cidr_t *subnets;
    size_t n_subnets;
    uint16_t ports[CONFIG_MAX_PORTS];
    size_t n_ports;
    enum config_mode_match mode;
    pcre2_code *ua;
    unsigned types;
    char **users;
    size_t n_users;
    char **groups;
    size_t n_groups;
    bool auth_basic;
    bool refuse_unidentified;
    int policy;                    /* index, -1 = the default policy */
} cprofile_t;

struct policy {
    pool_blk_t *pool;
    category_t *cats;
    size_t n_cats, cap_cats, n_custom;

    arena_t arena;
    htab_t domains;
    uint16_t *sets;                /* [count, id, id ...] runs */
    size_t n_sets, cap_sets;
    size_t n_domain_entries;       /* (domain, category) pairs */

    htab_t urls;
    url_ent_t *url_ents;
    size_t n_url_ents, cap_url_ents;

    lit_rx_t *lit_rx;
    size_t n_lit_rx, cap_lit_rx;
    lit_slot_t *lit_slots;
    size_t lit_cap;                /* power of two */
    uint64_t lit_bloom[1024];      /* 65536 bits over the 4-byte keys */
    size_t n_regexes;

    cprofile_t *profiles;
    size_t n_profiles;
    cpolicy_t *policies;
    size_t n_policies;
    int default_policy;            /* -1 = none */
    uint16_t *rule_cats;
    size_t n_rule_cats, cap_rule_cats;
    config_time_range_t time_ranges[CONFIG_MAX_TIME_RANGES];
    size_t n_time_ranges;

    const char *realm;
    basicauth_t *auth;             /* the password file; NULL if none */
    size_t warnings;
};

/* ---- per-thread matching state ---- */

typedef struct tls_state {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    char *url, *lurl;              /* normalised and fully lowercased URL */
    size_t cap;
} tls_state_t;

/* ---- building (policy_build.c, with policy_rx_add/finish) ---- */

/* One policy_build call: the policy under construction and where errors go. */
typedef struct builder {
    policy_t *p;
    char *err;
    size_t errlen;
    int last_cat;                  /* emit fast path */
    size_t rx_warned;
    bool emitted_any;
} builder_t;

/* ASCII lowercase without locale. */
static inline char
lc(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* The literal index's key: 4 bytes, little-endian. */
static inline uint32_t
key4(const char *s)
{
    return (uint32_t)(unsigned char)s[0] | (uint32_t)(unsigned char)s[1] << 8 |
           (uint32_t)(unsigned char)s[2] << 16 | (uint32_t)(unsigned char)s[3] << 24;
}

/* The bit of policy.lit_bloom that a literal key sets (and a probe tests). */
static inline uint32_t
lit_bloom_bit(uint32_t key)
{
    return (uint32_t)(key * 0x9e3779b1u) >> 16;
}

/* "www.example.com" -> "example.com" (only if a dot remains). */
static inline void
strip_www(const char **h, size_t *n)
{
    if (*n > 4 && memcmp(*h, "www.", 4) == 0 && memchr(*h + 4, '.', *n - 4) != NULL) {
        *h += 4;
        *n -= 4;
    }
}

/* ---- policy_match.c: the string table ---- */

/* Copies n bytes of s (and a '\0') into the arena; returns the offset, or 0
 * when out of memory (or past 4 GiB). */
uint32_t policy_arena_add(arena_t *a, const char *s, size_t n);

/* Finds or inserts key k; *fresh tells which. NULL on allocation failure. */
htab_ent_t *policy_htab_upsert(htab_t *t, arena_t *a, const char *k, size_t n, bool *fresh);

/* ---- policy_match.c: PCRE2 ---- */

/* Compiles pattern; on failure writes "PCRE2 error at offset N: msg". */
pcre2_code *policy_rx_compile(const char *pat, size_t len, bool jit, char *msg, size_t msglen);

/* Validates and files one regex of category cat. what names it in errors.
 * strict: a bad pattern is an error; else it is skipped with a warning. */
int policy_rx_add(builder_t *b, int cat, const char *pat, const char *what, bool strict);

/* Once every regex is added: indexes the literal-bearing patterns and
 * compiles the rest into per-category alternations. 0, or -1 with b->err. */
int policy_rx_finish(builder_t *b);

/* This thread's match state, created on first use; NULL only when out of
 * memory. Freed when the thread exits. */
tls_state_t *policy_rx_state(void);

#endif
