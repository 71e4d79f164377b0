/*
 * policy/policy.c: the compiled policy (see policy.h). policy_build turns
 * cfg->pol plus the list categories of a policy_list_source into immutable
 * tables; policy_evaluate reads them from any number of threads.
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
 */
#include "policy.h"
#include "../common/err.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/grow.h"
#include "../common/log.h"
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

static const char NONE_NAME[] = "(none)";

/* ---- a string pool (arrays grow with common/grow.h) ---- */

typedef struct pool_blk {
    struct pool_blk *next;
    size_t used, cap;
    char data[];
} pool_blk_t;

static char *
pool_strndup(pool_blk_t **pool, const char *s, size_t n)
{
    pool_blk_t *b = *pool;
    if (b == NULL || b->cap - b->used < n + 1) {
        size_t cap = n + 1 > 4096 ? n + 1 : 4096;
        b = malloc(sizeof(*b) + cap);
        if (b == NULL)
            return NULL;
        b->next = *pool;
        b->used = 0;
        b->cap = cap;
        *pool = b;
    }
    char *d = b->data + b->used;
    memcpy(d, s, n);
    d[n] = '\0';
    b->used += n + 1;
    return d;
}

static char *
pool_strdup(pool_blk_t **pool, const char *s)
{
    return pool_strndup(pool, s, strlen(s));
}

static char *
pool_printf(pool_blk_t **pool, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *
pool_printf(pool_blk_t **pool, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    return pool_strndup(pool, buf, strlen(buf));
}

static void
pool_free(pool_blk_t *b)
{
    while (b != NULL) {
        pool_blk_t *n = b->next;
        free(b);
        b = n;
    }
}

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

static uint32_t
hash_fin(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return (uint32_t)h;
}

#define FNV_INIT  0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* FNV-1a over the bytes from last to first: the state after byte i is the
 * hash of s[i..len), which gives every suffix's hash in one pass. */
static uint32_t
hash_rev(const char *s, size_t len)
{
    uint64_t h = FNV_INIT;
    for (size_t i = len; i > 0; i--) {
        h ^= (unsigned char)s[i - 1];
        h *= FNV_PRIME;
    }
    return hash_fin(h);
}

static uint32_t
arena_add(arena_t *a, const char *s, size_t n)
{
    if (a->len == 0) {
        if (grow_array(&a->s, &a->cap, 1, 1) < 0)
            return 0;
        a->s[0] = '\0';
        a->len = 1;
    }
    if (a->len + n + 1 > UINT32_MAX)
        return 0;
    if (grow_array(&a->s, &a->cap, a->len + n + 1, 1) < 0)
        return 0;
    uint32_t off = (uint32_t)a->len;
    memcpy(a->s + off, s, n);
    a->s[off + n] = '\0';
    a->len += n + 1;
    return off;
}

static htab_ent_t *
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

static int
htab_grow(htab_t *t)
{
    size_t ncap = t->cap ? t->cap * 2 : 1024;
    htab_ent_t *ne = calloc(ncap, sizeof(*ne));
    if (ne == NULL)
        return -1;
    for (size_t i = 0; i < t->cap; i++) {
        htab_ent_t *e = &t->e[i];
        if (e->off == 0)
            continue;
        size_t j = e->hash & (ncap - 1);
        while (ne[j].off != 0)
            j = (j + 1) & (ncap - 1);
        ne[j] = *e;
    }
    free(t->e);
    t->e = ne;
    t->cap = ncap;
    return 0;
}

/* Finds or inserts key k; *fresh tells which. NULL on allocation failure. */
static htab_ent_t *
htab_upsert(htab_t *t, arena_t *a, const char *k, size_t n, bool *fresh)
{
    uint32_t h = hash_rev(k, n);
    htab_ent_t *e = htab_find(t, a, k, n, h);
    if (e != NULL) {
        *fresh = false;
        return e;
    }
    if ((t->n + 1) * 10 > t->cap * 7 && htab_grow(t) < 0)
        return NULL;
    uint32_t off = arena_add(a, k, n);
    if (off == 0)
        return NULL;
    size_t mask = t->cap - 1;
    size_t i = h & mask;
    while (t->e[i].off != 0)
        i = (i + 1) & mask;
    t->e[i].hash = h;
    t->e[i].off = off;
    t->e[i].val = 0;
    t->n++;
    *fresh = true;
    return &t->e[i];
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

/* ---- string helpers ---- */

const char *
policy_user_source_str(enum policy_user_source s)
{
    switch (s) {
    case POLICY_SRC_NONE: return "none";
    case POLICY_SRC_HEADEND: return "headend";
    case POLICY_SRC_POOL: return "pool";
    case POLICY_SRC_BASIC: return "basic";
    }
    return "?";
}

const char *
policy_action_str(enum policy_action a)
{
    switch (a) {
    case POLICY_ALLOW: return "allow";
    case POLICY_MONITOR: return "monitor";
    case POLICY_BLOCK: return "block";
    case POLICY_AUTH_REQUIRED: return "auth-required";
    case POLICY_REFUSE_UNIDENTIFIED: return "refuse-unidentified";
    }
    return "?";
}

static enum policy_action
action_of(enum config_action a)
{
    switch (a) {
    case CONFIG_ACT_BLOCK: return POLICY_BLOCK;
    case CONFIG_ACT_MONITOR: return POLICY_MONITOR;
    case CONFIG_ACT_ALLOW: break;
    }
    return POLICY_ALLOW;
}

static const char *
verb_of(enum policy_action a)
{
    return a == POLICY_BLOCK ? "blocked" : a == POLICY_MONITOR ? "monitored" : "allowed";
}



/* ASCII lowercase without locale. */
static inline char
lc(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
}

/* ---- per-thread matching state ---- */

typedef struct tls_state {
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit;
    char *url, *lurl;              /* normalised and fully lowercased URL */
    size_t cap;
} tls_state_t;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void
tls_destroy(void *v)
{
    tls_state_t *t = v;
    if (t == NULL)
        return;
    pcre2_match_data_free(t->md);
    pcre2_match_context_free(t->mctx);
    pcre2_jit_stack_free(t->jit);
    free(t->url);
    free(t->lurl);
    free(t);
}

static void
tls_init_key(void)
{
    (void)pthread_key_create(&tls_key, tls_destroy);
}

/* This thread's state, created on first use; NULL only when out of memory. */
static tls_state_t *
tls_get(void)
{
    pthread_once(&tls_once, tls_init_key);
    tls_state_t *t = pthread_getspecific(tls_key);
    if (t != NULL)
        return t;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->md = pcre2_match_data_create(1, NULL);
    t->mctx = pcre2_match_context_create(NULL);
    t->jit = pcre2_jit_stack_create(32 * 1024, POLICY_JIT_STACK_MAX, NULL);
    if (t->md == NULL || t->mctx == NULL) {
        tls_destroy(t);
        return NULL;
    }
    pcre2_set_match_limit(t->mctx, POLICY_MATCH_LIMIT);
    if (t->jit != NULL)
        pcre2_jit_stack_assign(t->mctx, NULL, t->jit);
    if (pthread_setspecific(tls_key, t) != 0) {
        tls_destroy(t);
        return NULL;
    }
    return t;
}

/* True if code matches subject. Errors (match limit, JIT stack) count as
 * no match. */
static bool
rx_match(const pcre2_code *code, const char *s, size_t n, tls_state_t *t)
{
    int rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, 0, t->md, t->mctx);
    return rc >= 0;
}

/* ---- regex compilation ---- */

/* Compiles pattern; on failure writes "PCRE2 error at offset N: msg". */
static pcre2_code *
rx_compile(const char *pat, size_t len, bool jit, char *msg, size_t msglen)
{
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)pat, len, 0, &ec, &eo, NULL);
    if (c == NULL) {
        PCRE2_UCHAR buf[256];
        if (pcre2_get_error_message(ec, buf, sizeof(buf)) < 0)
            snprintf((char *)buf, sizeof(buf), "error %d", ec);
        err_set(msg, msglen, "PCRE2 error at offset %zu: %s", (size_t)eo, (char *)buf);
        return NULL;
    }
    if (jit)
        (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);  /* falls back to the interpreter */
    return c;
}

/*
 * Extracts, conservatively, the longest literal run that every match of pat
 * must contain (lowercased into out, at most cap bytes). Only top-level text
 * counts: groups, classes, escapes of letters/digits and quantified
 * characters end a run; a top-level '|' or extended mode gives up.
 * Returns its length (0 if none).
 */
static size_t
rx_literal(const char *pat, char *out, size_t cap)
{
    char run[256];
    size_t rl = 0, best = 0;
    int depth = 0;
    size_t n = strlen(pat);

    for (size_t i = 0; i + 1 < n; i++) {
        if (pat[i] == '(' && pat[i + 1] == '?') {
            for (size_t j = i + 2; j < n && (isalpha((unsigned char)pat[j]) || pat[j] == '-' ||
                                               pat[j] == '^'); j++)
                if (pat[j] == 'x')
                    return 0;
        }
    }
#define END_RUN() do { \
        if (rl > best && rl <= cap) { memcpy(out, run, rl); best = rl; } \
        rl = 0; \
    } while (0)
    for (size_t i = 0; i < n; i++) {
        char c = pat[i];
        if (c == '\\') {
            if (i + 1 >= n)
                return 0;
            char d = pat[i + 1];
            if (d == 'Q')
                return 0;
            i++;
            if (isalnum((unsigned char)d) || (unsigned char)d >= 0x80) {
                /* \d, \x41, \1, \b ...: not a literal; skip simple forms */
                END_RUN();
                continue;
            }
            c = d;
            if (depth > 0)
                continue;
            goto literal;
        }
        if (c == '[') {
            END_RUN();
            size_t j = i + 1;
            if (j < n && pat[j] == '^')
                j++;
            if (j < n && pat[j] == ']')
                j++;
            for (; j < n && pat[j] != ']'; j++) {
                if (pat[j] == '\\')
                    j++;
                else if (pat[j] == '[' && j + 1 < n && pat[j + 1] == ':') {
                    const char *e = strstr(pat + j + 2, ":]");
                    if (e == NULL)
                        return 0;
                    j = (size_t)(e - pat) + 1;
                }
            }
            if (j >= n)
                return 0;
            i = j;
            continue;
        }
        if (c == '(') {
            END_RUN();
            depth++;
            continue;
        }
        if (c == ')') {
            END_RUN();
            depth--;
            continue;
        }
        if (depth > 0)
            continue;
        if (c == '|')
            return 0;
        if (c == '?' || c == '*' || c == '{') {
            if (rl > 0)
                rl--;          /* the quantified character is optional */
            END_RUN();
            if (c == '{') {
                const char *e = strchr(pat + i, '}');
                if (e == NULL)
                    return 0;
                i = (size_t)(e - pat);
            }
            continue;
        }
        if (c == '+') {
            END_RUN();         /* "ab+c": "ab" then "c", not "abc" */
            continue;
        }
        if (c == '.' || c == '^' || c == '$' || (unsigned char)c >= 0x80) {
            END_RUN();
            continue;
        }
literal:
        /* a literal followed by a quantifier is handled when that is seen */
        if (rl < sizeof(run))
            run[rl++] = lc(c);
        else
            END_RUN();
    }
    END_RUN();
#undef END_RUN
    return best;
}

/* ---- building ---- */

typedef struct builder {
    policy_t *p;
    char *err;
    size_t errlen;
    int last_cat;                  /* emit fast path */
    size_t rx_warned;
    bool emitted_any;
} builder_t;

static int
cat_find(const policy_t *p, const char *name, bool custom)
{
    for (size_t i = 0; i < p->n_cats; i++)
        if (p->cats[i].custom == custom && strcmp(p->cats[i].name, name) == 0)
            return (int)i;
    return -1;
}

static int
cat_add(builder_t *b, const char *name, bool custom)
{
    policy_t *p = b->p;
    if (p->n_cats >= POLICY_MAX_CATS) {
        err_set(b->err, b->errlen, "too many categories (more than %d)", POLICY_MAX_CATS);
        return -1;
    }
    if (grow_array(&p->cats, &p->cap_cats, p->n_cats + 1, sizeof(*p->cats)) < 0)
        goto oom;
    category_t *c = &p->cats[p->n_cats];
    memset(c, 0, sizeof(*c));
    c->name = pool_strdup(&p->pool, name);
    if (c->name == NULL)
        goto oom;
    c->display = c->name;
    c->custom = custom;
    return (int)p->n_cats++;
oom:
    err_set(b->err, b->errlen, "out of memory");
    return -1;
}

/* Adds id to the category set of a domain entry. A grown set is copied to
 * the end of the pool (the old run is left unused: sets rarely grow). */
static int
set_add(policy_t *p, htab_ent_t *e, uint16_t id)
{
    uint16_t ids[POLICY_MAX_CATS];
    size_t n;
    if (!(e->val & SETBIT)) {
        if (e->val == id)
            return 0;
        ids[0] = (uint16_t)e->val;
        n = 1;
    } else {
        const uint16_t *s = &p->sets[e->val & ~SETBIT];
        n = s[0];
        for (size_t i = 0; i < n; i++) {
            if (s[1 + i] == id)
                return 0;
            ids[i] = s[1 + i];
        }
    }
    size_t at = p->n_sets;
    if (at + n + 2 >= SETBIT ||
        grow_array(&p->sets, &p->cap_sets, at + n + 2, sizeof(*p->sets)) < 0)
        return -1;
    p->sets[at] = (uint16_t)(n + 1);
    memcpy(&p->sets[at + 1], ids, n * sizeof(ids[0]));
    p->sets[at + 1 + n] = id;
    p->n_sets = at + n + 2;
    e->val = SETBIT | (uint32_t)at;
    return 0;
}

static bool
is_ip_literal(const char *h, size_t n)
{
    if (n > 0 && (h[0] == '[' || memchr(h, ':', n) != NULL))
        return true;
    for (size_t i = 0; i < n; i++)
        if (!(isdigit((unsigned char)h[i]) || h[i] == '.'))
            return false;
    return n > 0;
}

/* Normalises a list host (lowercase, no leading "." or "*.", no trailing
 * dot, no port) into out. Returns its length or 0 if unusable. */
static size_t
norm_list_host(const char *s, size_t n, char *out)
{
    while (n > 0 && isspace((unsigned char)s[0]))
        s++, n--;
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    if (n >= 2 && s[0] == '*' && s[1] == '.')
        s += 2, n -= 2;
    while (n > 0 && s[0] == '.')
        s++, n--;
    if (n > 0 && s[0] != '[') {
        const char *colon = memchr(s, ':', n);
        if (colon != NULL && memchr(colon + 1, ':', n - (size_t)(colon + 1 - s)) == NULL)
            n = (size_t)(colon - s);      /* host:port, not IPv6 */
    }
    while (n > 0 && s[n - 1] == '.')
        n--;
    if (n == 0 || n > POLICY_MAX_HOST)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (isspace((unsigned char)c) || c == '/' || c == '\0')
            return 0;
        out[i] = lc(c);
    }
    return n;
}

/* "www.example.com" -> "example.com" (only if a dot remains). */
static void
strip_www(const char **h, size_t *n)
{
    if (*n > 4 && memcmp(*h, "www.", 4) == 0 && memchr(*h + 4, '.', *n - 4) != NULL) {
        *h += 4;
        *n -= 4;
    }
}

static int
add_domain(builder_t *b, int cat, const char *value)
{
    char host[POLICY_MAX_HOST + 1];
    size_t n = norm_list_host(value, strlen(value), host);
    if (n == 0)
        return 0;                   /* unusable line: skipped */
    bool fresh;
    htab_ent_t *e = htab_upsert(&b->p->domains, &b->p->arena, host, n, &fresh);
    if (e == NULL)
        goto oom;
    if (fresh)
        e->val = (uint32_t)cat;
    else if (set_add(b->p, e, (uint16_t)cat) < 0)
        goto oom;
    b->p->n_domain_entries++;
    return 0;
oom:
    err_set(b->err, b->errlen, "out of memory loading domains");
    return -1;
}

/* value: "host/path" or "scheme://host/path". */
static int
add_url(builder_t *b, int cat, const char *value)
{
    policy_t *p = b->p;
    const char *s = value;
    const char *sch = strstr(s, "://");
    if (sch != NULL && strchr(s, '/') > sch)
        s = sch + 3;
    const char *slash = strchr(s, '/');
    size_t hl = slash ? (size_t)(slash - s) : strlen(s);
    char host[POLICY_MAX_HOST + 1];
    size_t n = norm_list_host(s, hl, host);
    if (n == 0)
        return 0;
    const char *h = host;
    strip_www(&h, &n);
    const char *path = slash ? slash : "";
    size_t pl = strlen(path);
    while (pl > 0 && isspace((unsigned char)path[pl - 1]))
        pl--;
    char lpath[4096];
    if (pl >= sizeof(lpath))
        return 0;
    for (size_t i = 0; i < pl; i++)
        lpath[i] = lc(path[i]);
    if (pl == 1)                    /* "/" matches the whole host, like "" */
        pl = 0;

    bool fresh;
    htab_ent_t *e = htab_upsert(&p->urls, &p->arena, h, n, &fresh);
    if (e == NULL)
        goto oom;
    if (grow_array(&p->url_ents, &p->cap_url_ents, p->n_url_ents + 1,
                   sizeof(*p->url_ents)) < 0)
        goto oom;
    uint32_t off = pl ? arena_add(&p->arena, lpath, pl) : 0;
    if (pl && off == 0)
        goto oom;
    url_ent_t *u = &p->url_ents[p->n_url_ents];
    u->path_off = off;
    u->path_len = (uint32_t)pl;
    u->cat = (uint16_t)cat;
    u->next = fresh ? NO_NEXT : e->val;
    e->val = (uint32_t)p->n_url_ents++;
    return 0;
oom:
    err_set(b->err, b->errlen, "out of memory loading URL prefixes");
    return -1;
}

static int
lit_index_add(policy_t *p, uint32_t key, uint32_t idx)
{
    if ((p->n_lit_rx + 1) * 2 > p->lit_cap) {
        size_t ncap = p->lit_cap ? p->lit_cap * 2 : 256;
        lit_slot_t *ns = calloc(ncap, sizeof(*ns));
        if (ns == NULL)
            return -1;
        for (size_t i = 0; i < p->lit_cap; i++) {
            if (p->lit_slots[i].head == 0)
                continue;
            size_t j = hash_fin(p->lit_slots[i].key) & (ncap - 1);
            while (ns[j].head != 0)
                j = (j + 1) & (ncap - 1);
            ns[j] = p->lit_slots[i];
        }
        free(p->lit_slots);
        p->lit_slots = ns;
        p->lit_cap = ncap;
    }
    size_t mask = p->lit_cap - 1;
    size_t j = hash_fin(key) & mask;
    while (p->lit_slots[j].head != 0 && p->lit_slots[j].key != key)
        j = (j + 1) & mask;
    if (p->lit_slots[j].head == 0 || p->lit_slots[j].head == LIT_DEAD) {
        p->lit_slots[j].key = key;
        p->lit_rx[idx].next = NO_NEXT;
    } else {
        p->lit_rx[idx].next = p->lit_slots[j].head - 1;
    }
    p->lit_slots[j].head = idx + 1;
    uint32_t bit = (uint32_t)(key * 0x9e3779b1u) >> 16;
    p->lit_bloom[bit >> 6] |= 1ULL << (bit & 63);
    return 0;
}

static uint32_t
key4(const char *s)
{
    return (uint32_t)(unsigned char)s[0] | (uint32_t)(unsigned char)s[1] << 8 |
           (uint32_t)(unsigned char)s[2] << 16 | (uint32_t)(unsigned char)s[3] << 24;
}

/* Validates and files one regex of category cat. what names it in errors.
 * strict: a bad pattern is an error; else it is skipped with a warning. */
static int
add_regex(builder_t *b, int cat, const char *pat, const char *what, bool strict)
{
    policy_t *p = b->p;
    char msg[300];
    pcre2_code *c = rx_compile(pat, strlen(pat), false, msg, sizeof(msg));
    if (c == NULL) {
        if (strict) {
            err_set(b->err, b->errlen, "%s \"%.120s\": %s", what, pat, msg);
            return -1;
        }
        p->warnings++;
        if (b->rx_warned++ < POLICY_MAX_WARN_LOG)
            log_warn("policy: %s \"%.120s\" skipped: %s", what, pat, msg);
        return 0;
    }
    category_t *k = &p->cats[cat];
    k->has_rx = true;
    p->n_regexes++;

    char lit[256];
    size_t ll = rx_literal(pat, lit, sizeof(lit));
    if (ll >= POLICY_LIT_MIN) {
        if (grow_array(&p->lit_rx, &p->cap_lit_rx, p->n_lit_rx + 1, sizeof(*p->lit_rx)) < 0)
            goto oom;
        uint32_t off = arena_add(&p->arena, lit, ll);
        if (off == 0)
            goto oom;
        lit_rx_t *r = &p->lit_rx[p->n_lit_rx];
        memset(r, 0, sizeof(*r));
        r->src = strdup(pat);
        if (r->src == NULL)
            goto oom;
        r->code = c;
        r->lit_off = off;
        r->lit_len = (uint32_t)ll;
        r->cat = (uint16_t)cat;
        p->n_lit_rx++;               /* indexed by index_literals() */
        return 0;
    }

    /* Patterns that cannot sit inside "(?:...)|" safely stay alone:
     * backreferences and names (group numbers shift), leading verbs. */
    uint32_t backmax = 0, names = 0;
    pcre2_pattern_info(c, PCRE2_INFO_BACKREFMAX, &backmax);
    pcre2_pattern_info(c, PCRE2_INFO_NAMECOUNT, &names);
    if (backmax > 0 || names > 0 || strncmp(pat, "(*", 2) == 0 ||
        strlen(pat) > POLICY_RX_CHUNK_BYTES / 2) {
        if (grow_array(&k->codes, &k->cap_codes, k->n_codes + 1, sizeof(*k->codes)) < 0)
            goto oom;
        (void)pcre2_jit_compile(c, PCRE2_JIT_COMPLETE);
        k->codes[k->n_codes++] = c;
        return 0;
    }
    pcre2_code_free(c);
    if (grow_array(&k->pending, &k->cap_pending, k->n_pending + 1, sizeof(*k->pending)) < 0)
        goto oom_nocode;
    k->pending[k->n_pending] = strdup(pat);
    if (k->pending[k->n_pending] == NULL)
        goto oom_nocode;
    k->n_pending++;
    return 0;
oom:
    pcre2_code_free(c);
oom_nocode:
    err_set(b->err, b->errlen, "out of memory compiling regexes");
    return -1;
}

static int
push_code(category_t *k, pcre2_code *c)
{
    if (grow_array(&k->codes, &k->cap_codes, k->n_codes + 1, sizeof(*k->codes)) < 0) {
        pcre2_code_free(c);
        return -1;
    }
    k->codes[k->n_codes++] = c;
    return 0;
}

/* Joins pending[from..to) into one alternation; if PCRE2 refuses it (size),
 * halves the range. */
static int
combine_range(category_t *k, size_t from, size_t to)
{
    size_t len = 0;
    for (size_t i = from; i < to; i++)
        len += strlen(k->pending[i]) + 5;
    char *buf = malloc(len + 1);
    if (buf == NULL)
        return -1;
    size_t o = 0;
    for (size_t i = from; i < to; i++) {
        if (i > from)
            buf[o++] = '|';
        o += (size_t)sprintf(buf + o, "(?:%s)", k->pending[i]);
    }
    char msg[300];
    pcre2_code *c = rx_compile(buf, o, true, msg, sizeof(msg));
    free(buf);
    if (c != NULL)
        return push_code(k, c);
    if (to - from == 1)
        return -1;                  /* compiled alone before: cannot happen */
    size_t mid = from + (to - from) / 2;
    if (combine_range(k, from, mid) < 0)
        return -1;
    return combine_range(k, mid, to);
}

typedef struct gram_count {
    uint32_t key, n;
} gram_count_t;

static gram_count_t *
gram_slot(gram_count_t *t, size_t cap, uint32_t key)
{
    size_t j = hash_fin(key) & (cap - 1);
    while (t[j].n != 0 && t[j].key != key)
        j = (j + 1) & (cap - 1);
    return &t[j];
}

/*
 * Indexes every literal-bearing pattern by the rarest 4-gram of its literal
 * (counted over all literals), so that patterns sharing a prefix such as
 * "^http://" do not pile onto one key. A key still shared by more than
 * POLICY_LIT_MAX_CHAIN patterns is emptied and its patterns join the
 * combined alternations of their categories.
 */
static int
index_literals(builder_t *b)
{
    policy_t *p = b->p;
    if (p->n_lit_rx == 0)
        return 0;
    size_t grams = 0;
    for (size_t i = 0; i < p->n_lit_rx; i++)
        grams += p->lit_rx[i].lit_len - 3;
    size_t cap = 64;
    while (cap < grams * 2)
        cap *= 2;
    gram_count_t *cnt = calloc(cap, sizeof(*cnt));
    if (cnt == NULL)
        goto oom;
    for (size_t i = 0; i < p->n_lit_rx; i++) {
        const char *l = p->arena.s + p->lit_rx[i].lit_off;
        for (uint32_t o = 0; o + 4 <= p->lit_rx[i].lit_len; o++) {
            gram_count_t *g = gram_slot(cnt, cap, key4(l + o));
            g->key = key4(l + o);
            g->n++;
        }
    }
    for (size_t i = 0; i < p->n_lit_rx; i++) {
        lit_rx_t *r = &p->lit_rx[i];
        const char *l = p->arena.s + r->lit_off;
        uint32_t best = UINT32_MAX;
        for (uint32_t o = 0; o + 4 <= r->lit_len; o++) {
            uint32_t n = gram_slot(cnt, cap, key4(l + o))->n;
            if (n < best) {
                best = n;
                r->gram = o;
            }
        }
        if (lit_index_add(p, key4(l + r->gram), (uint32_t)i) < 0) {
            free(cnt);
            goto oom;
        }
    }
    free(cnt);
    for (size_t j = 0; j < p->lit_cap; j++) {
        lit_slot_t *s = &p->lit_slots[j];
        if (s->head == 0)
            continue;
        size_t n = 0;
        for (uint32_t r = s->head - 1; r != NO_NEXT; r = p->lit_rx[r].next)
            n++;
        if (n <= POLICY_LIT_MAX_CHAIN) {
            for (uint32_t r = s->head - 1; r != NO_NEXT; r = p->lit_rx[r].next)
                (void)pcre2_jit_compile(p->lit_rx[r].code, PCRE2_JIT_COMPLETE);
            continue;
        }
        for (uint32_t r = s->head - 1; r != NO_NEXT; r = p->lit_rx[r].next) {
            lit_rx_t *x = &p->lit_rx[r];
            category_t *k = &p->cats[x->cat];
            if (grow_array(&k->pending, &k->cap_pending, k->n_pending + 1,
                           sizeof(*k->pending)) < 0)
                goto oom;
            k->pending[k->n_pending++] = x->src;
            x->src = NULL;
            pcre2_code_free(x->code);
            x->code = NULL;
        }
        s->head = LIT_DEAD;
    }
    return 0;
oom:
    err_set(b->err, b->errlen, "out of memory indexing regexes");
    return -1;
}

static int
finish_regexes(builder_t *b)
{
    policy_t *p = b->p;
    if (index_literals(b) < 0)
        return -1;
    for (size_t i = 0; i < p->n_lit_rx; i++) {
        free(p->lit_rx[i].src);
        p->lit_rx[i].src = NULL;
    }
    for (size_t ci = 0; ci < p->n_cats; ci++) {
        category_t *k = &p->cats[ci];
        size_t start = 0, bytes = 0;
        for (size_t i = 0; i <= k->n_pending; i++) {
            if (i == k->n_pending ||
                (i > start && bytes + strlen(k->pending[i]) + 5 > POLICY_RX_CHUNK_BYTES)) {
                if (i > start && combine_range(k, start, i) < 0) {
                    err_set(b->err, b->errlen,
                            "category %s: cannot compile its regexes together", k->name);
                    return -1;
                }
                start = i;
                bytes = 0;
            }
            if (i < k->n_pending)
                bytes += strlen(k->pending[i]) + 5;
        }
        for (size_t i = 0; i < k->n_pending; i++)
            free(k->pending[i]);
        free(k->pending);
        k->pending = NULL;
        k->n_pending = k->cap_pending = 0;
    }
    return 0;
}

/* The emit callback of the list source. */
static int
emit_entry(void *ctx, const char *category, enum policy_list_kind kind, const char *value)
{
    builder_t *b = ctx;
    policy_t *p = b->p;
    if (category == NULL || value == NULL || category[0] == '\0') {
        err_set(b->err, b->errlen, "list source: empty category or value");
        return -1;
    }
    int id = b->last_cat;
    if (id < 0 || strcmp(p->cats[id].name, category) != 0) {
        id = cat_find(p, category, false);
        if (id < 0 && (id = cat_add(b, category, false)) < 0)
            return -1;
        b->last_cat = id;
    }
    b->emitted_any = true;
    switch (kind) {
    case POLICY_LIST_DOMAIN:
        return add_domain(b, id, value);
    case POLICY_LIST_URL:
        return add_url(b, id, value);
    case POLICY_LIST_EXPRESSION: {
        char what[128];
        snprintf(what, sizeof(what), "list category %s: expression", category);
        return add_regex(b, id, value, what, false);
    }
    }
    err_set(b->err, b->errlen, "list source: unknown entry kind %d", (int)kind);
    return -1;
}

/* ---- build ---- */

/* Resolves a category name (friendly, custom, list) into ids appended to
 * p->rule_cats. ctx names the place for messages. */
static int
resolve_list_name(builder_t *b, const config_t *cfg, const char *name, bool have_lists,
                  const char *ctx)
{
    policy_t *p = b->p;
    int id = cat_find(p, name, false);
    if (id < 0 && (id = cat_find(p, name, true)) < 0) {
        if (have_lists) {
            err_set(b->err, b->errlen,
                    "%s: unknown category %s (not a friendly, custom or list category)", ctx,
                    name);
            return -1;
        }
        if ((id = cat_add(b, name, false)) < 0)
            return -1;
        p->warnings++;
        log_warn("policy: %s: category %s has no entries (no category database loaded)",
                 ctx, name);
    }
    (void)cfg;
    if (grow_array(&p->rule_cats, &p->cap_rule_cats, p->n_rule_cats + 1,
                   sizeof(*p->rule_cats)) < 0) {
        err_set(b->err, b->errlen, "out of memory");
        return -1;
    }
    p->rule_cats[p->n_rule_cats++] = (uint16_t)id;
    return 0;
}

static int
resolve_rule_name(builder_t *b, const config_t *cfg, const char *name, bool have_lists,
                  const char *ctx)
{
    const config_policies_t *pol = &cfg->pol;
    for (size_t i = 0; i < pol->n_friendly; i++) {
        const config_friendly_t *fr = &pol->friendly[i];
        if (strcmp(fr->name, name) != 0)
            continue;
        char c2[400];
        snprintf(c2, sizeof(c2), "%.200s: friendly name %.64s", ctx, name);
        for (size_t j = 0; j < fr->lists.n; j++) {
            const char *ln = fr->lists.names[j];
            int cid = cat_find(b->p, ln, true);
            if (cid >= 0 && cat_find(b->p, ln, false) < 0) {
                if (grow_array(&b->p->rule_cats, &b->p->cap_rule_cats,
                               b->p->n_rule_cats + 1, sizeof(*b->p->rule_cats)) < 0)
                    return -1;
                b->p->rule_cats[b->p->n_rule_cats++] = (uint16_t)cid;
                continue;
            }
            if (resolve_list_name(b, cfg, ln, have_lists, c2) < 0)
                return -1;
        }
        return 0;
    }
    int cid = cat_find(b->p, name, true);
    if (cid >= 0) {
        if (grow_array(&b->p->rule_cats, &b->p->cap_rule_cats, b->p->n_rule_cats + 1,
                       sizeof(*b->p->rule_cats)) < 0)
            return -1;
        b->p->rule_cats[b->p->n_rule_cats++] = (uint16_t)cid;
        return 0;
    }
    return resolve_list_name(b, cfg, name, have_lists, ctx);
}

static char **
copy_names(pool_blk_t **pool, const config_names_t *n, size_t *count)
{
    *count = 0;
    if (n->n == 0)
        return NULL;
    char **v = calloc(n->n, sizeof(char *));
    if (v == NULL)
        return NULL;
    for (size_t i = 0; i < n->n; i++) {
        v[i] = pool_strdup(pool, n->names[i] ? n->names[i] : "");
        if (v[i] == NULL) {
            free(v);
            return NULL;
        }
    }
    *count = n->n;
    return v;
}

static int
build_profiles(builder_t *b, const config_t *cfg)
{
    policy_t *p = b->p;
    const config_policies_t *pol = &cfg->pol;
    p->n_profiles = pol->n_profiles;
    if (p->n_profiles == 0)
        return 0;
    p->profiles = calloc(pol->n_profiles, sizeof(*p->profiles));
    if (p->profiles == NULL)
        goto oom;
    for (size_t i = 0; i < pol->n_profiles; i++) {
        const config_profile_t *cp = &pol->profiles[i];
        cprofile_t *pr = &p->profiles[i];
        pr->name = pool_strdup(&p->pool, cp->name);
        if (pr->name == NULL)
            goto oom;
        pr->location = cp->location;
        if (cp->n_subnets > 0) {
            pr->subnets = malloc(cp->n_subnets * sizeof(*pr->subnets));
            if (pr->subnets == NULL)
                goto oom;
            memcpy(pr->subnets, cp->subnets, cp->n_subnets * sizeof(*pr->subnets));
            pr->n_subnets = cp->n_subnets;
        }
        pr->n_ports = cp->n_ports > CONFIG_MAX_PORTS ? CONFIG_MAX_PORTS : cp->n_ports;
        memcpy(pr->ports, cp->ports, pr->n_ports * sizeof(pr->ports[0]));
        pr->mode = cp->mode;
        if (cp->user_agent[0] != '\0') {
            char msg[300];
            pr->ua = rx_compile(cp->user_agent, strnlen(cp->user_agent, sizeof(cp->user_agent)),
                                true, msg, sizeof(msg));
            if (pr->ua == NULL) {
                err_set(b->err, b->errlen, "identity profile %s: user_agent: %s", cp->name, msg);
                return -1;
            }
        }
        pr->types = cp->types;
        pr->users = copy_names(&p->pool, &cp->users, &pr->n_users);
        pr->groups = copy_names(&p->pool, &cp->groups, &pr->n_groups);
        if ((cp->users.n && pr->users == NULL) || (cp->groups.n && pr->groups == NULL))
            goto oom;
        pr->auth_basic = cp->auth == CONFIG_AUTH_BASIC;
        pr->refuse_unidentified = cp->refuse_unidentified;
        pr->policy = -1;
        if (pr->auth_basic && pol->auth_password_file[0] == '\0') {
            err_set(b->err, b->errlen,
                    "identity profile %s uses basic authentication but "
                    "authentication.password_file is not set", cp->name);
            return -1;
        }
    }
    return 0;
oom:
    err_set(b->err, b->errlen, "out of memory");
    return -1;
}

static int
build_policies(builder_t *b, const config_t *cfg, bool have_lists)
{
    policy_t *p = b->p;
    const config_policies_t *pol = &cfg->pol;
    p->default_policy = -1;
    p->n_policies = pol->n_policies;
    if (pol->n_policies == 0)
        return 0;
    p->policies = calloc(pol->n_policies, sizeof(*p->policies));
    if (p->policies == NULL)
        goto oom;
    for (size_t i = 0; i < pol->n_policies; i++) {
        const config_policy_t *cp = &pol->policies[i];
        cpolicy_t *cq = &p->policies[i];
        cq->name = pool_strdup(&p->pool, cp->name);
        if (cq->name == NULL)
            goto oom;
        cq->def = action_of(cp->default_action);
        cq->n_connect_ports = cp->n_connect_ports > CONFIG_MAX_PORTS ? CONFIG_MAX_PORTS
                                                                     : cp->n_connect_ports;
        memcpy(cq->connect_ports, cp->connect_ports,
               cq->n_connect_ports * sizeof(cq->connect_ports[0]));
        cq->methods = copy_names(&p->pool, &cp->methods, &cq->n_methods);
        if (cp->methods.n && cq->methods == NULL)
            goto oom;
        cq->r_default = pool_printf(&p->pool, "%s by the default action of access policy %s.",
                                    cq->def == POLICY_BLOCK ? "Blocked" :
                                    cq->def == POLICY_MONITOR ? "Monitored" : "Allowed",
                                    cp->name);
        cq->r_connect = pool_printf(&p->pool,
                                    "CONNECT to this port is not allowed by access policy %s.",
                                    cp->name);
        cq->r_method = pool_printf(&p->pool,
                                   "This request method is not allowed by access policy %s.",
                                   cp->name);
        if (cq->r_default == NULL || cq->r_connect == NULL || cq->r_method == NULL)
            goto oom;

        if (cp->profiles.n == 0) {
            if (p->default_policy < 0)
                p->default_policy = (int)i;
        }
        for (size_t j = 0; j < cp->profiles.n; j++) {
            const char *pn = cp->profiles.names[j];
            size_t k;
            for (k = 0; k < p->n_profiles; k++)
                if (strcmp(p->profiles[k].name, pn) == 0)
                    break;
            if (k == p->n_profiles) {
                err_set(b->err, b->errlen, "access policy %s: unknown identity profile %s",
                        cp->name, pn);
                return -1;
            }
            if (p->profiles[k].policy < 0)
                p->profiles[k].policy = (int)i;
        }

        if (cp->n_rules > 0) {
            cq->rules = calloc(cp->n_rules, sizeof(*cq->rules));
            if (cq->rules == NULL)
                goto oom;
        }
        cq->n_rules = cp->n_rules > CONFIG_MAX_CATEGORY_RULES ? CONFIG_MAX_CATEGORY_RULES
                                                             : cp->n_rules;
        for (size_t j = 0; j < cq->n_rules; j++) {
            const config_category_rule_t *cr = &cp->rules[j];
            rule_t *r = &cq->rules[j];
            char ctx[200];
            snprintf(ctx, sizeof(ctx), "access policy %s", cp->name);
            r->cats_off = (uint32_t)p->n_rule_cats;
            if (resolve_rule_name(b, cfg, cr->category, have_lists, ctx) < 0) {
                if (b->err && b->err[0] == '\0')
                    err_set(b->err, b->errlen, "out of memory");
                return -1;
            }
            r->n_cats = (uint32_t)(p->n_rule_cats - r->cats_off);
            r->action = action_of(cr->action);
            r->time_range = cr->time_range;
            if (r->time_range >= (int)pol->n_time_ranges || r->time_range < -1) {
                err_set(b->err, b->errlen, "access policy %s: category %s: bad time range %d",
                        cp->name, cr->category, cr->time_range);
                return -1;
            }
            r->name = pool_strdup(&p->pool, cr->category);
            r->reason = r->time_range >= 0
                ? pool_printf(&p->pool, "Category %s is %s by access policy %s during %s.",
                              cr->category, verb_of(r->action), cp->name,
                              pol->time_ranges[r->time_range].name)
                : pool_printf(&p->pool, "Category %s is %s by access policy %s.",
                              cr->category, verb_of(r->action), cp->name);
            if (r->name == NULL || r->reason == NULL)
                goto oom;
        }
    }
    return 0;
oom:
    err_set(b->err, b->errlen, "out of memory");
    return -1;
}

static int
build_custom(builder_t *b, const config_t *cfg)
{
    const config_policies_t *pol = &cfg->pol;
    for (size_t i = 0; i < pol->n_custom; i++) {
        const config_custom_category_t *cc = &pol->custom[i];
        if (cat_find(b->p, cc->name, true) >= 0) {
            err_set(b->err, b->errlen, "custom category %s defined twice", cc->name);
            return -1;
        }
        int id = cat_add(b, cc->name, true);
        if (id < 0)
            return -1;
        for (size_t j = 0; j < cc->domains.n; j++)
            if (add_domain(b, id, cc->domains.names[j]) < 0)
                return -1;
        for (size_t j = 0; j < cc->url_prefixes.n; j++)
            if (add_url(b, id, cc->url_prefixes.names[j]) < 0)
                return -1;
        for (size_t j = 0; j < cc->regexes.n; j++) {
            char what[160];
            snprintf(what, sizeof(what), "custom category %s: regex %zu", cc->name, j + 1);
            if (add_regex(b, id, cc->regexes.names[j], what, true) < 0)
                return -1;
        }
    }
    b->p->n_custom = b->p->n_cats;
    return 0;
}

/* Display names: the first friendly name listing the category. */
static void
set_display_names(policy_t *p, const config_t *cfg)
{
    const config_policies_t *pol = &cfg->pol;
    for (size_t i = pol->n_friendly; i > 0; i--) {
        const config_friendly_t *fr = &pol->friendly[i - 1];
        const char *dn = NULL;
        for (size_t j = 0; j < fr->lists.n; j++) {
            int id = cat_find(p, fr->lists.names[j], false);
            if (id < 0)
                id = cat_find(p, fr->lists.names[j], true);
            if (id < 0)
                continue;
            if (dn == NULL && (dn = pool_strdup(&p->pool, fr->name)) == NULL)
                return;      /* keeps the list name */
            p->cats[id].display = dn;
        }
    }
}

policy_t *
policy_build(const config_t *cfg, policy_list_source src, void *src_arg, char *err,
             size_t errlen)
{
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (cfg == NULL) {
        err_set(err, errlen, "no configuration");
        return NULL;
    }
    policy_t *p = calloc(1, sizeof(*p));
    if (p == NULL) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    builder_t b = { .p = p, .err = err, .errlen = errlen, .last_cat = -1 };
    const config_policies_t *pol = &cfg->pol;

    p->realm = pool_strdup(&p->pool, pol->auth_realm[0] ? pol->auth_realm : "musproxy");
    if (p->realm == NULL) {
        err_set(err, errlen, "out of memory");
        goto fail;
    }
    if (pol->auth_password_file[0] != '\0' &&
        (p->auth = basicauth_load(pol->auth_password_file, err, errlen)) == NULL)
        goto fail;

    if (build_profiles(&b, cfg) < 0)
        goto fail;
    if (build_custom(&b, cfg) < 0)
        goto fail;

    bool have_lists = false;
    if (src != NULL) {
        char serr[POLICY_ERR_LEN] = "";
        if (src(src_arg, emit_entry, &b, serr, sizeof(serr)) < 0) {
            if (err != NULL && err[0] == '\0')
                err_set(err, errlen, "category lists: %s", serr[0] ? serr : "source failed");
            goto fail;
        }
        have_lists = b.emitted_any;
        if (!have_lists) {
            p->warnings++;
            log_warn("policy: the category database holds no lists");
        }
    }
    for (size_t i = 0; i < pol->n_time_ranges && i < CONFIG_MAX_TIME_RANGES; i++)
        p->time_ranges[i] = pol->time_ranges[i];
    p->n_time_ranges = pol->n_time_ranges;

    if (build_policies(&b, cfg, have_lists) < 0)
        goto fail;
    /* friendly names that no rule uses must still name known lists */
    for (size_t i = 0; i < pol->n_friendly; i++) {
        const config_friendly_t *fr = &pol->friendly[i];
        for (size_t j = 0; j < fr->lists.n; j++) {
            const char *ln = fr->lists.names[j];
            if (cat_find(p, ln, false) >= 0 || cat_find(p, ln, true) >= 0)
                continue;
            if (have_lists) {
                err_set(err, errlen, "friendly name %s: unknown list category %s", fr->name,
                        ln);
                goto fail;
            }
            if (cat_add(&b, ln, false) < 0)
                goto fail;
            p->warnings++;
            log_warn("policy: friendly name %s: category %s has no entries "
                     "(no category database loaded)", fr->name, ln);
        }
    }
    if (finish_regexes(&b) < 0)
        goto fail;
    set_display_names(p, cfg);
    return p;
fail:
    if (err != NULL && errlen > 0 && err[0] == '\0')
        err_set(err, errlen, "policy build failed");
    policy_free(p);
    return NULL;
}

void
policy_free(policy_t *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->n_cats; i++) {
        category_t *k = &p->cats[i];
        for (size_t j = 0; j < k->n_codes; j++)
            pcre2_code_free(k->codes[j]);
        free(k->codes);
        for (size_t j = 0; j < k->n_pending; j++)
            free(k->pending[j]);
        free(k->pending);
    }
    free(p->cats);
    free(p->arena.s);
    free(p->domains.e);
    free(p->sets);
    free(p->urls.e);
    free(p->url_ents);
    for (size_t i = 0; i < p->n_lit_rx; i++) {
        pcre2_code_free(p->lit_rx[i].code);
        free(p->lit_rx[i].src);
    }
    free(p->lit_rx);
    free(p->lit_slots);
    for (size_t i = 0; i < p->n_profiles && p->profiles; i++) {
        free(p->profiles[i].subnets);
        pcre2_code_free(p->profiles[i].ua);
        free(p->profiles[i].users);
        free(p->profiles[i].groups);
    }
    free(p->profiles);
    for (size_t i = 0; i < p->n_policies && p->policies; i++) {
        free(p->policies[i].rules);
        free(p->policies[i].methods);
    }
    free(p->policies);
    free(p->rule_cats);
    basicauth_free(p->auth);
    pool_free(p->pool);
    free(p);
}

/* ---- matching ---- */

typedef struct ectx {
    const policy_t *p;
    tls_state_t *t;
    char host[POLICY_MAX_HOST + 1];
    size_t host_len;               /* 0 = no usable host */
    bool host_ip;
    const char *url, *lurl;        /* normalised / lowercased URL (may be NULL) */
    size_t url_len;
    const char *path;              /* into lurl; NULL = no path (CONNECT) */
    size_t path_len;
    bool lists_done, lit_done;
    uint64_t matched[POLICY_CAT_WORDS], known[POLICY_CAT_WORDS];
} ectx_t;

static inline void
bit_set(uint64_t *v, unsigned i)
{
    v[i >> 6] |= 1ULL << (i & 63);
}

static inline bool
bit_get(const uint64_t *v, unsigned i)
{
    return (v[i >> 6] >> (i & 63)) & 1;
}

/* Host normalisation: lowercase, no trailing dot; hosts longer than
 * POLICY_MAX_HOST are not categorised by domain. */
static void
ectx_host(ectx_t *c, const char *h, size_t n)
{
    while (n > 0 && h[n - 1] == '.')
        n--;
    if (n == 0 || n > POLICY_MAX_HOST) {
        c->host_len = 0;
        return;
    }
    for (size_t i = 0; i < n; i++)
        c->host[i] = lc(h[i]);
    c->host[n] = '\0';
    c->host_len = n;
    c->host_ip = is_ip_literal(c->host, n);
}

/* Splits url into the authority and the rest; builds the normalised copies
 * in the thread's buffers. */
static void
ectx_url(ectx_t *c, const char *url, size_t len, bool need_host)
{
    tls_state_t *t = c->t;
    if (len > POLICY_URL_BUF_MAX)
        len = POLICY_URL_BUF_MAX;
    if (len + 1 > t->cap) {
        size_t ncap = t->cap ? t->cap : 1024;
        while (ncap < len + 1)
            ncap *= 2;
        char *u = realloc(t->url, ncap);
        if (u == NULL)
            return;
        t->url = u;
        char *l = realloc(t->lurl, ncap);
        if (l == NULL)
            return;
        t->lurl = l;
        t->cap = ncap;
    }
    size_t auth_start = 0;
    for (size_t i = 0; i + 2 < len; i++) {
        if (url[i] == ':' && url[i + 1] == '/' && url[i + 2] == '/') {
            auth_start = i + 3;
            break;
        }
        if (url[i] == '/' || url[i] == '?' || url[i] == '#')
            break;
    }
    size_t auth_end = auth_start;
    while (auth_end < len && url[auth_end] != '/' && url[auth_end] != '?' &&
           url[auth_end] != '#')
        auth_end++;
    for (size_t i = 0; i < len; i++) {
        t->lurl[i] = lc(url[i]);
        t->url[i] = i < auth_end ? t->lurl[i] : url[i];
    }
    t->url[len] = t->lurl[len] = '\0';
    c->url = t->url;
    c->lurl = t->lurl;
    c->url_len = len;
    if (auth_start > 0 || auth_end < len) {
        c->path = t->lurl + auth_end;
        c->path_len = len - auth_end;
    }
    if (need_host) {
        const char *a = url + auth_start;
        size_t an = auth_end - auth_start;
        const char *at = memrchr(a, '@', an);
        if (at != NULL) {
            an -= (size_t)(at + 1 - a);
            a = at + 1;
        }
        if (an > 0 && a[0] == '[') {
            const char *rb = memchr(a, ']', an);
            if (rb != NULL)
                an = (size_t)(rb + 1 - a);
        } else {
            const char *colon = memchr(a, ':', an);
            if (colon != NULL)
                an = (size_t)(colon - a);
        }
        ectx_host(c, a, an);
    }
}

static void
ectx_init(ectx_t *c, const policy_t *p, tls_state_t *t, const char *host, size_t host_len,
          const char *url, size_t url_len)
{
    memset(c, 0, offsetof(ectx_t, host));
    c->host_len = 0;
    c->host_ip = false;
    c->url = c->lurl = c->path = NULL;
    c->url_len = c->path_len = 0;
    c->lists_done = c->lit_done = false;
    memset(c->matched, 0, sizeof(c->matched));
    memset(c->known, 0, sizeof(c->known));
    c->p = p;
    c->t = t;
    if (host != NULL && host_len > 0)
        ectx_host(c, host, host_len);
    if (url != NULL && url_len > 0 && t != NULL)
        ectx_url(c, url, url_len, host == NULL || host_len == 0);
}

static void
mark_val(ectx_t *c, uint32_t val)
{
    if (!(val & SETBIT)) {
        bit_set(c->matched, val);
        return;
    }
    const uint16_t *s = &c->p->sets[val & ~SETBIT];
    for (unsigned i = 0; i < s[0]; i++)
        bit_set(c->matched, s[1 + i]);
}

/* Domain suffixes and URL prefixes: all categories at once. */
static void
lookup_lists(ectx_t *c)
{
    const policy_t *p = c->p;
    c->lists_done = true;
    if (c->host_len == 0)
        return;
    const char *h = c->host;
    size_t n = c->host_len;
    if (p->domains.n > 0) {
        if (c->host_ip) {
            htab_ent_t *e = htab_find(&p->domains, &p->arena, h, n, hash_rev(h, n));
            if (e != NULL)
                mark_val(c, e->val);
        } else {
            uint64_t st = FNV_INIT;
            for (size_t i = n; i > 0; i--) {
                st ^= (unsigned char)h[i - 1];
                st *= FNV_PRIME;
                if (i - 1 == 0 || h[i - 2] == '.') {
                    const char *k = h + i - 1;
                    htab_ent_t *e = htab_find(&p->domains, &p->arena, k, n - (i - 1),
                                              hash_fin(st));
                    if (e != NULL)
                        mark_val(c, e->val);
                }
            }
        }
    }
    if (p->urls.n > 0) {
        const char *uh = h;
        size_t un = n;
        strip_www(&uh, &un);
        htab_ent_t *e = htab_find(&p->urls, &p->arena, uh, un, hash_rev(uh, un));
        if (e == NULL)
            return;
        const char *path = c->path;
        size_t pl = c->path_len;
        for (uint32_t i = e->val; i != NO_NEXT; i = p->url_ents[i].next) {
            const url_ent_t *u = &p->url_ents[i];
            if (u->path_len == 0 ||
                (path != NULL && pl >= u->path_len &&
                 memcmp(path, p->arena.s + u->path_off, u->path_len) == 0))
                bit_set(c->matched, u->cat);
        }
    }
}

/* One pass over the lowercased URL through the literal index. */
static void
lookup_literals(ectx_t *c)
{
    const policy_t *p = c->p;
    c->lit_done = true;
    if (p->n_lit_rx == 0 || c->lurl == NULL || c->url_len < POLICY_LIT_MIN)
        return;
    const char *s = c->lurl;
    size_t mask = p->lit_cap - 1;
    for (size_t i = 0; i + POLICY_LIT_MIN <= c->url_len; i++) {
        uint32_t key = key4(s + i);
        uint32_t bit = (uint32_t)(key * 0x9e3779b1u) >> 16;
        if (!((p->lit_bloom[bit >> 6] >> (bit & 63)) & 1))
            continue;
        size_t j = hash_fin(key) & mask;
        while (p->lit_slots[j].head != 0 && p->lit_slots[j].key != key)
            j = (j + 1) & mask;
        if (p->lit_slots[j].head == 0 || p->lit_slots[j].head == LIT_DEAD)
            continue;
        for (uint32_t r = p->lit_slots[j].head - 1; r != NO_NEXT; r = p->lit_rx[r].next) {
            const lit_rx_t *x = &p->lit_rx[r];
            if (bit_get(c->matched, x->cat) || i < x->gram)
                continue;
            size_t start = i - x->gram;
            if (x->lit_len > c->url_len - start ||
                memcmp(s + start, p->arena.s + x->lit_off, x->lit_len) != 0)
                continue;
            if (rx_match(x->code, c->url, c->url_len, c->t))
                bit_set(c->matched, x->cat);
        }
    }
}

static bool
cat_match(ectx_t *c, unsigned id)
{
    if (!c->lists_done)
        lookup_lists(c);
    if (bit_get(c->matched, id))
        return true;
    const category_t *k = &c->p->cats[id];
    if (!k->has_rx || c->url == NULL || c->t == NULL)
        return false;
    if (!c->lit_done) {
        lookup_literals(c);
        if (bit_get(c->matched, id))
            return true;
    }
    if (bit_get(c->known, id))
        return false;
    bit_set(c->known, id);
    for (size_t i = 0; i < k->n_codes; i++)
        if (rx_match(k->codes[i], c->url, c->url_len, c->t)) {
            bit_set(c->matched, id);
            return true;
        }
    return false;
}

static bool
in_time_range(const config_time_range_t *tr, time_t now, struct tm *tm, bool *have_tm)
{
    if (!*have_tm) {
        if (localtime_r(&now, tm) == NULL)
            return false;
        *have_tm = true;
    }
    unsigned day = (unsigned)(tm->tm_wday + 6) % 7;    /* 0 = Monday */
    if (!(tr->days & (1u << day)))
        return false;
    unsigned m = (unsigned)(tm->tm_hour * 60 + tm->tm_min);
    return m >= tr->from_min && m < tr->to_min;
}

static bool
name_in(char *const *v, size_t n, const char *s, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(v[i]) == len && strncasecmp(v[i], s, len) == 0)
            return true;
    return false;
}

/* Any group of the comma-separated list g in v (spaces around names ignored). */
static bool
groups_match(char *const *v, size_t n, const char *g)
{
    if (g == NULL)
        return false;
    while (*g != '\0') {
        while (*g == ' ' || *g == ',')
            g++;
        const char *e = g;
        while (*e != '\0' && *e != ',')
            e++;
        size_t len = (size_t)(e - g);
        while (len > 0 && g[len - 1] == ' ')
            len--;
        if (len > 0 && name_in(v, n, g, len))
            return true;
        g = e;
    }
    return false;
}

/* users/groups as a criterion (or, for Basic profiles, as authorisation
 * after the login): every non-empty list must be satisfied (AND, like the
 * other criteria): the user is listed, one of its groups is listed. */
static bool
who_matches(const cprofile_t *pr, const policy_facts_t *f)
{
    if (pr->n_users > 0 &&
        (f->user == NULL || !name_in(pr->users, pr->n_users, f->user, strlen(f->user))))
        return false;
    if (pr->n_groups > 0 && !groups_match(pr->groups, pr->n_groups, f->groups))
        return false;
    return true;
}

static bool
profile_matches(const cprofile_t *pr, const policy_facts_t *f, tls_state_t *t)
{
    if (pr->location == CONFIG_LOC_REMOTE && !f->remote)
        return false;
    if (pr->location == CONFIG_LOC_LOCAL && f->remote)
        return false;
    if (pr->n_subnets > 0 &&
        (f->client == NULL || !cidr_list_match(pr->subnets, pr->n_subnets, f->client)))
        return false;
    if (pr->n_ports > 0) {
        size_t i;
        for (i = 0; i < pr->n_ports; i++)
            if (pr->ports[i] == f->proxy_port)
                break;
        if (i == pr->n_ports)
            return false;
    }
    if (pr->mode == CONFIG_MATCH_EXPLICIT && f->mode != CONFIG_MODE_EXPLICIT)
        return false;
    if (pr->mode == CONFIG_MATCH_TRANSPARENT && f->mode != CONFIG_MODE_TRANSPARENT)
        return false;
    /* a 407 is meaningless to intercepted traffic */
    if (pr->auth_basic && f->mode == CONFIG_MODE_TRANSPARENT)
        return false;
    if (pr->types != CONFIG_TYPE_ANY) {
        if (!f->has_identity || f->id_type < 0 || f->id_type >= 32 ||
            !(pr->types & (1u << f->id_type)))
            return false;
    }
    if (pr->ua != NULL) {
        if (f->user_agent == NULL || t == NULL ||
            !rx_match(pr->ua, f->user_agent, f->user_agent_len, t))
            return false;
    }
    /* Basic profiles check users/groups after authentication (below) */
    if (!pr->auth_basic && !who_matches(pr, f))
        return false;
    return true;
}

static void
decide(policy_decision_t *out, enum policy_action a, const char *profile, const char *policy,
       const char *rule, const char *category, const char *reason, bool auth_basic)
{
    out->action = a;
    out->profile = profile;
    out->policy = policy;
    out->rule = rule;
    out->category = category;
    out->reason = reason;
    out->auth_basic = auth_basic;
}

void
policy_evaluate(const policy_t *p, const policy_facts_t *f, policy_decision_t *out)
{
    tls_state_t *t = tls_get();
    const cprofile_t *pr = NULL;
    for (size_t i = 0; i < p->n_profiles; i++)
        if (profile_matches(&p->profiles[i], f, t)) {
            pr = &p->profiles[i];
            break;
        }
    const char *pname = pr ? pr->name : NONE_NAME;
    bool basic = pr ? pr->auth_basic : false;

    if (pr != NULL && pr->refuse_unidentified && f->in_vpn_pool && !f->has_identity) {
        decide(out, POLICY_REFUSE_UNIDENTIFIED, pname, NONE_NAME, "unidentified", NULL,
               "This address belongs to the VPN pools but no user is known for it.", basic);
        return;
    }
    if (pr != NULL && pr->auth_basic) {
        if (f->source != POLICY_SRC_BASIC) {
            decide(out, POLICY_AUTH_REQUIRED, pname, NONE_NAME, "auth", NULL,
                   "Proxy authentication is required.", true);
            return;
        }
        if (!who_matches(pr, f)) {
            decide(out, POLICY_AUTH_REQUIRED, pname, NONE_NAME, "auth", NULL,
                   "This user is not permitted by the identity profile; "
                   "log in as someone else.", true);
            return;
        }
    }

    int pi = pr ? pr->policy : -1;
    if (pi < 0)
        pi = p->default_policy;
    if (pi < 0) {
        decide(out, POLICY_ALLOW, pname, NONE_NAME, "default", NULL,
               "Allowed: no access policy applies.", basic);
        return;
    }
    const cpolicy_t *q = &p->policies[pi];

    if (f->is_connect && q->n_connect_ports > 0) {
        size_t i;
        for (i = 0; i < q->n_connect_ports; i++)
            if (q->connect_ports[i] == f->port)
                break;
        if (i == q->n_connect_ports) {
            decide(out, POLICY_BLOCK, pname, q->name, "connect-port", NULL, q->r_connect, basic);
            return;
        }
    }
    if (q->n_methods > 0) {
        const char *m = f->method ? f->method : (f->is_connect ? "CONNECT" : "");
        if (!name_in(q->methods, q->n_methods, m, strlen(m))) {
            decide(out, POLICY_BLOCK, pname, q->name, "method", NULL, q->r_method, basic);
            return;
        }
    }
    if (q->n_rules > 0) {
        ectx_t c;
        ectx_init(&c, p, t, f->host, f->host_len, f->url, f->url_len);
        struct tm tm;
        bool have_tm = false;
        for (size_t i = 0; i < q->n_rules; i++) {
            const rule_t *r = &q->rules[i];
            if (r->time_range >= 0 &&
                !in_time_range(&p->time_ranges[r->time_range], f->now, &tm, &have_tm))
                continue;
            for (uint32_t j = 0; j < r->n_cats; j++) {
                if (cat_match(&c, p->rule_cats[r->cats_off + j])) {
                    decide(out, r->action, pname, q->name, "category", r->name, r->reason,
                           basic);
                    return;
                }
            }
        }
    }
    decide(out, q->def, pname, q->name, "default", NULL, q->r_default, basic);
}

const char *
policy_categorize(const policy_t *p, const char *host, size_t host_len, const char *url,
                  size_t url_len)
{
    if (p == NULL)
        return NULL;
    ectx_t c;
    ectx_init(&c, p, tls_get(), host, host_len, url, url_len);
    for (size_t i = 0; i < p->n_cats; i++)   /* custom categories come first */
        if (cat_match(&c, (unsigned)i))
            return p->cats[i].display;
    return NULL;
}

const char *
policy_auth_realm(const policy_t *p)
{
    return p ? p->realm : "musproxy";
}

void
policy_get_stats(const policy_t *p, policy_stats_t *out)
{
    memset(out, 0, sizeof(*out));
    if (p == NULL)
        return;
    out->domains = p->domains.n;
    out->url_prefixes = p->n_url_ents;
    out->regexes = p->n_regexes;
    out->categories = p->n_cats;
    size_t m = p->arena.cap + p->domains.cap * sizeof(htab_ent_t) +
               p->cap_sets * sizeof(uint16_t) + p->urls.cap * sizeof(htab_ent_t) +
               p->cap_url_ents * sizeof(url_ent_t) + p->cap_lit_rx * sizeof(lit_rx_t) +
               p->lit_cap * sizeof(lit_slot_t) + p->cap_cats * sizeof(category_t);
    for (size_t i = 0; i < p->n_lit_rx; i++) {
        size_t sz = 0;
        if (p->lit_rx[i].code == NULL)
            continue;
        pcre2_pattern_info(p->lit_rx[i].code, PCRE2_INFO_SIZE, &sz);
        m += sz;
        sz = 0;
        pcre2_pattern_info(p->lit_rx[i].code, PCRE2_INFO_JITSIZE, &sz);
        m += sz;
    }
    for (size_t i = 0; i < p->n_cats; i++)
        for (size_t j = 0; j < p->cats[i].n_codes; j++) {
            size_t sz = 0;
            pcre2_pattern_info(p->cats[i].codes[j], PCRE2_INFO_SIZE, &sz);
            m += sz;
            sz = 0;
            pcre2_pattern_info(p->cats[i].codes[j], PCRE2_INFO_JITSIZE, &sz);
            m += sz;
        }
    out->memory_bytes = m;
}

/* ---- Basic authentication (policy/basicauth.c) ---- */

bool
policy_check_basic(const policy_t *p, const char *value, size_t len, char *user, size_t cap)
{
    return p != NULL && basicauth_check(p->auth, value, len, user, cap);
}

int
policy_hash_password(const char *password, char *out, size_t cap)
{
    return basicauth_hash(password, out, cap);
}
