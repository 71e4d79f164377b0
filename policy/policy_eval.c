/*
 * policy/policy_eval.c: the request-time side of policy.h: policy_evaluate
 * (first matching identity profile, then its access policy: CONNECT ports,
 * methods, category rules in order with their time ranges, the default),
 * policy_categorize, the stats, the names of the enums and the Basic-auth
 * entry points (policy/basicauth.c does the work). A category is looked up
 * lazily per request: domain suffixes and URL prefixes for all categories
 * in one go, then the literal index in one pass over the URL, and only then
 * a category's combined regexes, each at most once.
 *
 * It only reads a built policy_t, from any number of threads (per-thread
 * state from policy_rx_state); it allocates nothing but that state's URL
 * buffers. It does not build or free a policy (policy_build.c), compile
 * patterns (policy_match.c), nor know where the facts come from.
 */
#include "policy_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char NONE_NAME[] = "(none)";

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

/* ---- matching ---- */

/* An IPv6 ("[...]" or with ':') or dotted-digits host: looked up exactly,
 * never by label suffix. */
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

/* True if code matches subject. Errors (match limit, JIT stack) count as
 * no match. */
static bool
rx_match(const pcre2_code *code, const char *s, size_t n, tls_state_t *t)
{
    int rc = pcre2_match(code, (PCRE2_SPTR)s, n, 0, 0, t->md, t->mctx);
    return rc >= 0;
}

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
            uint64_t st = HASH_FNV1A64_INIT;
            for (size_t i = n; i > 0; i--) {
                st ^= (unsigned char)h[i - 1];
                st *= HASH_FNV1A64_PRIME;
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
        uint32_t bit = lit_bloom_bit(key);
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
    tls_state_t *t = policy_rx_state();
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
    ectx_init(&c, p, policy_rx_state(), host, host_len, url, url_len);
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
