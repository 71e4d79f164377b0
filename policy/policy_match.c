/*
 * policy/policy_match.c: the matchers' machinery, shared by the builder
 * (policy_build.c) and the evaluator (policy_eval.c): the string arena and
 * its open-addressing hash table (insertion here; hashing and lookup are
 * inline in policy_int.h), and everything PCRE2: compiling a pattern with
 * an admin-readable error, extracting a pattern's required literal, filing
 * each regex either in the literal index (by its rarest 4-gram) or in its
 * category's combined alternations, and the per-thread match state.
 *
 * It does not read the configuration or the list source, resolve category
 * names, or decide anything about a request: the builder calls in with
 * patterns already attached to a category id, the evaluator runs the
 * compiled codes (policy_eval.c) with the state policy_rx_state gives it.
 */
#include "policy_int.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "../common/grow.h"
#include "../common/log.h"

/* ---- the string table ---- */

uint32_t
policy_arena_add(arena_t *a, const char *s, size_t n)
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
htab_ent_t *
policy_htab_upsert(htab_t *t, arena_t *a, const char *k, size_t n, bool *fresh)
{
    uint32_t h = hash_rev(k, n);
    htab_ent_t *e = htab_find(t, a, k, n, h);
    if (e != NULL) {
        *fresh = false;
        return e;
    }
    if ((t->n + 1) * 10 > t->cap * 7 && htab_grow(t) < 0)
        return NULL;
    uint32_t off = policy_arena_add(a, k, n);
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

/* ---- per-thread matching state ---- */

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
tls_state_t *
policy_rx_state(void)
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

/* ---- regex compilation ---- */

/* Compiles pattern; on failure writes "PCRE2 error at offset N: msg". */
pcre2_code *
policy_rx_compile(const char *pat, size_t len, bool jit, char *msg, size_t msglen)
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

/* ---- the literal index and the combined alternations ---- */

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
    uint32_t bit = lit_bloom_bit(key);
    p->lit_bloom[bit >> 6] |= 1ULL << (bit & 63);
    return 0;
}

/* Validates and files one regex of category cat. what names it in errors.
 * strict: a bad pattern is an error; else it is skipped with a warning. */
int
policy_rx_add(builder_t *b, int cat, const char *pat, const char *what, bool strict)
{
    policy_t *p = b->p;
    char msg[300];
    pcre2_code *c = policy_rx_compile(pat, strlen(pat), false, msg, sizeof(msg));
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
        uint32_t off = policy_arena_add(&p->arena, lit, ll);
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
    pcre2_code *c = policy_rx_compile(buf, o, true, msg, sizeof(msg));
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

int
policy_rx_finish(builder_t *b)
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
