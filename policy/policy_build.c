/*
 * policy/policy_build.c: policy_build and policy_free (see policy.h):
 * turns cfg->pol and the entries of a policy_list_source into the immutable
 * tables of policy_int.h. It gives categories their ids, normalises list
 * hosts and files domains (with their id sets) and URL prefixes in the hash
 * tables, hands every regex to policy_rx_add, compiles identity profiles and
 * access policies (rules resolved to category ids, block-page reasons
 * written once), loads the password file, and owns the string pool that
 * holds the names. policy_free is the one destroy path.
 *
 * It does not evaluate anything (policy_eval.c), hold the regex and literal
 * index machinery or the table insertion (policy_match.c), validate the
 * YAML (config.c has done that), or read the category database itself (the
 * list source does, through emit_entry).
 */
#include "policy_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"
#include "../common/grow.h"
#include "../common/log.h"

/* ---- a string pool (arrays grow with common/grow.h) ---- */

struct pool_blk {
    struct pool_blk *next;
    size_t used, cap;
    char data[];
};

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

/* ---- categories and list entries ---- */

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
static int
add_domain(builder_t *b, int cat, const char *value)
{
    char host[POLICY_MAX_HOST + 1];
    size_t n = norm_list_host(value, strlen(value), host);
    if (n == 0)
        return 0;                   /* unusable line: skipped */
    bool fresh;
    htab_ent_t *e = policy_htab_upsert(&b->p->domains, &b->p->arena, host, n, &fresh);
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
    htab_ent_t *e = policy_htab_upsert(&p->urls, &p->arena, h, n, &fresh);
    if (e == NULL)
        goto oom;
    if (grow_array(&p->url_ents, &p->cap_url_ents, p->n_url_ents + 1,
                   sizeof(*p->url_ents)) < 0)
        goto oom;
    uint32_t off = pl ? policy_arena_add(&p->arena, lpath, pl) : 0;
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
        return policy_rx_add(b, id, value, what, false);
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
            pr->ua = policy_rx_compile(cp->user_agent,
                                       strnlen(cp->user_agent, sizeof(cp->user_agent)), true,
                                       msg, sizeof(msg));
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
            if (policy_rx_add(b, id, cc->regexes.names[j], what, true) < 0)
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
    if (policy_rx_finish(&b) < 0)
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
