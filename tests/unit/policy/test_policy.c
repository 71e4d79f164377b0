/*
 * tests/unit/policy/test_policy.c: the policy engine (policy/policy_*.c) on
 * configurations built in C (no YAML) and synthetic category lists fed
 * through a policy_list_source.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../policy/policy.h"

/* ---- hand-built configurations ---- */

/* Everything a test config allocates besides itself (names arrays, subnets):
 * freed by cfg_free, never by config_free. */
static void *allocs[1024];
static size_t n_allocs;

static void *
track(void *p)
{
    cr_assert(p != NULL);
    cr_assert(n_allocs < sizeof(allocs) / sizeof(allocs[0]));
    allocs[n_allocs++] = p;
    return p;
}

static config_t *
cfg_new(void)
{
    config_t *c = calloc(1, sizeof(*c));
    cr_assert(c != NULL);
    return c;
}

static void
cfg_free(config_t *c)
{
    for (size_t i = 0; i < n_allocs; i++)
        free(allocs[i]);
    n_allocs = 0;
    free(c);
}

/* names(n, "a", "b", ...): a config_names_t over static strings. */
static config_names_t
names(size_t n, ...)
{
    config_names_t v = { .n = n, .names = NULL };
    if (n == 0)
        return v;
    v.names = track(calloc(n, sizeof(char *)));
    va_list ap;
    va_start(ap, n);
    for (size_t i = 0; i < n; i++)
        v.names[i] = (char *)va_arg(ap, const char *);
    va_end(ap);
    return v;
}

static config_profile_t *
add_profile(config_t *c, const char *name)
{
    config_profile_t *p = &c->pol.profiles[c->pol.n_profiles++];
    snprintf(p->name, sizeof(p->name), "%s", name);
    return p;
}

static void
profile_subnet(config_profile_t *p, const char *cidr)
{
    p->subnets = track(calloc(1, sizeof(cidr_t)));
    cr_assert_eq(cidr_parse(cidr, p->subnets), 0);
    p->n_subnets = 1;
}

static config_policy_t *
add_policy(config_t *c, const char *name, config_names_t profiles)
{
    config_policy_t *p = &c->pol.policies[c->pol.n_policies++];
    snprintf(p->name, sizeof(p->name), "%s", name);
    p->profiles = profiles;
    return p;
}

static void
add_rule(config_policy_t *p, const char *cat, enum config_action a, int tr)
{
    config_category_rule_t *r = &p->rules[p->n_rules++];
    snprintf(r->category, sizeof(r->category), "%s", cat);
    r->action = a;
    r->time_range = tr;
}

static config_custom_category_t *
add_custom(config_t *c, const char *name)
{
    config_custom_category_t *k = &c->pol.custom[c->pol.n_custom++];
    snprintf(k->name, sizeof(k->name), "%s", name);
    return k;
}

static void
add_friendly(config_t *c, const char *name, config_names_t lists)
{
    config_friendly_t *f = &c->pol.friendly[c->pol.n_friendly++];
    snprintf(f->name, sizeof(f->name), "%s", name);
    f->lists = lists;
}

static int
add_time_range(config_t *c, const char *name, uint8_t days, unsigned from, unsigned to)
{
    config_time_range_t *t = &c->pol.time_ranges[c->pol.n_time_ranges];
    snprintf(t->name, sizeof(t->name), "%s", name);
    t->days = days;
    t->from_min = (uint16_t)from;
    t->to_min = (uint16_t)to;
    return (int)c->pol.n_time_ranges++;
}

/* ---- synthetic list source ---- */

typedef struct entry {
    const char *cat;
    enum policy_list_kind kind;
    const char *value;
} entry_t;

static const entry_t small_lists[] = {
    { "arts", POLICY_LIST_DOMAIN, "museum.example" },
    { "radio", POLICY_LIST_DOMAIN, "radio.example" },
    { "radio", POLICY_LIST_DOMAIN, ".Stream.Example." },
    { "adult", POLICY_LIST_DOMAIN, "adult.example" },
    { "adult", POLICY_LIST_DOMAIN, "both.example" },
    { "games", POLICY_LIST_DOMAIN, "both.example" },   /* in two lists */
    { "games", POLICY_LIST_DOMAIN, "example.com" },
    { "games", POLICY_LIST_DOMAIN, "10.9.8.7" },
    { "adult", POLICY_LIST_URL, "freehost.example/~bad" },
    { "adult", POLICY_LIST_URL, "www.pages.example/adult/" },
    { "adult", POLICY_LIST_EXPRESSION, "(^|[-/_.])(xxx|porn)([-/_.]|$)" },
    { "adult", POLICY_LIST_EXPRESSION, "nudity[0-9]+" },
    { "adult", POLICY_LIST_EXPRESSION, "(((" },  /* bad: skipped with a warning */
};

typedef struct src_arg {
    const entry_t *e;
    size_t n;
} src_arg_t;

static int
list_source(void *arg, policy_emit_fn emit, void *ctx, char *err, size_t errlen)
{
    const src_arg_t *a = arg;
    (void)err;
    (void)errlen;
    for (size_t i = 0; i < a->n; i++)
        if (emit(ctx, a->e[i].cat, a->e[i].kind, a->e[i].value) < 0)
            return -1;
    return 0;
}

static src_arg_t small_src = { small_lists, sizeof(small_lists) / sizeof(small_lists[0]) };

static int
failing_source(void *arg, policy_emit_fn emit, void *ctx, char *err, size_t errlen)
{
    (void)arg;
    (void)emit;
    (void)ctx;
    snprintf(err, errlen, "database is corrupt");
    return -1;
}

/* ---- facts ---- */

static struct sockaddr_in client4;

static policy_facts_t
req(const char *url)
{
    policy_facts_t f;
    memset(&f, 0, sizeof(f));
    memset(&client4, 0, sizeof(client4));
    client4.sin_family = AF_INET;
    inet_pton(AF_INET, "192.168.1.10", &client4.sin_addr);
    f.client = (const struct sockaddr *)&client4;
    f.method = "GET";
    f.url = url;
    f.url_len = strlen(url);
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, "/:?#");
    f.host = h;
    f.host_len = n;
    f.port = 80;
    f.proxy_port = 3128;
    f.mode = CONFIG_MODE_EXPLICIT;
    f.now = time(NULL);
    return f;
}

static policy_facts_t
conn(const char *hostport)
{
    policy_facts_t f = req(hostport);
    f.method = "CONNECT";
    f.is_connect = true;
    f.port = (uint16_t)atoi(strchr(hostport, ':') + 1);
    return f;
}

static void
set_client(policy_facts_t *f, const char *ip)
{
    cr_assert_eq(inet_pton(AF_INET, ip, &client4.sin_addr), 1);
    f->client = (const struct sockaddr *)&client4;
}

/* Local time on 2024-01-01 (a Monday) + day_offset, hh:mm. */
static time_t
at(int day_offset, int hh, int mm)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = 2024 - 1900;
    tm.tm_mon = 0;
    tm.tm_mday = 1 + day_offset;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_isdst = -1;
    return mktime(&tm);
}

static policy_t *
build_ok(const config_t *c, policy_list_source src, void *arg)
{
    char err[POLICY_ERR_LEN];
    policy_t *p = policy_build(c, src, arg, err, sizeof(err));
    cr_assert(p != NULL, "policy_build: %s", err);
    return p;
}

static const char *
build_err(const config_t *c, policy_list_source src, void *arg)
{
    static char err[POLICY_ERR_LEN];
    err[0] = '\0';
    policy_t *p = policy_build(c, src, arg, err, sizeof(err));
    cr_assert(p == NULL, "policy_build unexpectedly succeeded");
    cr_assert(err[0] != '\0');
    return err;
}

static policy_decision_t
eval(const policy_t *p, const policy_facts_t *f)
{
    policy_decision_t d;
    memset(&d, 0xa5, sizeof(d));
    policy_evaluate(p, f, &d);
    cr_assert(d.profile != NULL && d.policy != NULL && d.rule != NULL && d.reason != NULL);
    return d;
}

/* One policy "p" (default, no profiles) blocking category cat. */
static config_t *
block_cfg(const char *cat)
{
    config_t *c = cfg_new();
    config_policy_t *p = add_policy(c, "p", names(0));
    add_rule(p, cat, CONFIG_ACT_BLOCK, -1);
    return c;
}

static enum policy_action
act(const policy_t *p, const char *url)
{
    policy_facts_t f = strchr(url, '/') ? req(url) : conn(url);
    return eval(p, &f).action;
}

/* ---- strings ---- */

Test(policy, strings)
{
    cr_assert_str_eq(policy_action_str(POLICY_ALLOW), "allow");
    cr_assert_str_eq(policy_action_str(POLICY_MONITOR), "monitor");
    cr_assert_str_eq(policy_action_str(POLICY_BLOCK), "block");
    cr_assert_str_eq(policy_action_str(POLICY_AUTH_REQUIRED), "auth-required");
    cr_assert_str_eq(policy_action_str(POLICY_REFUSE_UNIDENTIFIED), "refuse-unidentified");
    cr_assert_str_eq(policy_user_source_str(POLICY_SRC_NONE), "none");
    cr_assert_str_eq(policy_user_source_str(POLICY_SRC_HEADEND), "headend");
    cr_assert_str_eq(policy_user_source_str(POLICY_SRC_POOL), "pool");
    cr_assert_str_eq(policy_user_source_str(POLICY_SRC_BASIC), "basic");
}

/* ---- matchers ---- */

Test(policy, domain_suffix)
{
    config_t *c = block_cfg("partners");
    config_custom_category_t *k = add_custom(c, "partners");
    k->domains = names(2, "example.com", "Other.Example.");
    policy_t *p = build_ok(c, NULL, NULL);

    cr_assert_eq(act(p, "http://example.com/"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://a.b.example.com/x"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://WWW.EXAMPLE.COM./"), POLICY_BLOCK);
    cr_assert_eq(act(p, "example.com:443"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://x.other.example/"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://notexample.com/"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://example.com.evil.net/"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://com/"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://xample.com/"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://evil.net/example.com"), POLICY_ALLOW);

    policy_facts_t f = req("http://a.example.com/");
    policy_decision_t d = eval(p, &f);
    cr_assert_str_eq(d.rule, "category");
    cr_assert_str_eq(d.category, "partners");
    cr_assert_str_eq(d.policy, "p");
    cr_assert_str_eq(d.profile, "(none)");
    policy_free(p);
    cfg_free(c);
}

Test(policy, ip_hosts_exact)
{
    policy_t *p;
    config_t *c = block_cfg("games");
    p = build_ok(c, list_source, &small_src);
    cr_assert_eq(act(p, "http://10.9.8.7/"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://1.10.9.8.7/"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://[::1]/"), POLICY_ALLOW);
    policy_free(p);
    cfg_free(c);
}

Test(policy, url_prefixes)
{
    config_t *c = block_cfg("wiki");
    config_custom_category_t *k = add_custom(c, "wiki");
    k->url_prefixes = names(2, "http://intranet.example/wiki/", "https://whole.example/");
    config_policy_t *pol = &c->pol.policies[0];
    add_rule(pol, "adult", CONFIG_ACT_BLOCK, -1);
    policy_t *p = build_ok(c, list_source, &small_src);

    cr_assert_eq(act(p, "http://intranet.example/wiki/Page"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://intranet.example/WIKI/page"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://INTRANET.example/wiki/"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://intranet.example/wik"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://intranet.example/other/wiki/"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://sub.intranet.example/wiki/"), POLICY_ALLOW);
    cr_assert_eq(act(p, "intranet.example:443"), POLICY_ALLOW);   /* no path */
    /* a prefix "/" covers the whole host, CONNECT included */
    cr_assert_eq(act(p, "whole.example:443"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://whole.example"), POLICY_BLOCK);
    /* UT1 urls: host/path without scheme, leading www. ignored both ways */
    cr_assert_eq(act(p, "http://freehost.example/~bad/x.html"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://www.freehost.example/~bad"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://freehost.example/~good"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://pages.example/adult/a"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://pages.example/kids/a"), POLICY_ALLOW);
    policy_free(p);
    cfg_free(c);
}

Test(policy, regexes)
{
    config_t *c = block_cfg("rx");
    config_custom_category_t *k = add_custom(c, "rx");
    k->regexes = names(4, "^http://[^/]*\\.games\\.", "casino[0-9]+\\.html",
                       "(?i)/banner/", "^http://(ab)\\1\\.example/");
    policy_t *p = build_ok(c, NULL, NULL);

    cr_assert_eq(act(p, "http://www.games.example/"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://WWW.GAMES.example/"), POLICY_BLOCK);   /* host lowercased */
    cr_assert_eq(act(p, "https://www.games.example/"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://x.example/casino12.html"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://x.example/CASINO12.html"), POLICY_ALLOW); /* path case kept */
    cr_assert_eq(act(p, "http://x.example/casino.html"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://x.example/img/BANNER/1.gif"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://abab.example/"), POLICY_BLOCK);          /* backreference */
    cr_assert_eq(act(p, "http://abcd.example/"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://games.example/"), POLICY_ALLOW);

    policy_stats_t st;
    policy_get_stats(p, &st);
    cr_assert_eq(st.regexes, 4);
    cr_assert_eq(st.categories, 1);
    policy_free(p);
    cfg_free(c);
}

Test(policy, many_regexes_combined)
{
    enum { N = 3000 };
    static char pats[N][64];
    config_t *c = block_cfg("many");
    config_custom_category_t *k = add_custom(c, "many");
    k->regexes.n = N;
    k->regexes.names = track(calloc(N, sizeof(char *)));
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0)          /* a literal: prefiltered */
            snprintf(pats[i], sizeof(pats[i]), "/path%d/[a-z]+\\.cgi", i);
        else if (i % 3 == 1)     /* no literal: combined */
            snprintf(pats[i], sizeof(pats[i]), "^http://h%d[.]", i);
        else                     /* top-level alternation: combined */
            snprintf(pats[i], sizeof(pats[i]), "q=%da|q=%db", i, i);
        k->regexes.names[i] = pats[i];
    }
    policy_t *p = build_ok(c, NULL, NULL);
    cr_assert_eq(act(p, "http://x.example/path2997/abc.cgi"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://x.example/path2997/ABC.cgi"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://h2998.example/"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://h2999.example/"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://x.example/?q=2999b"), POLICY_BLOCK);
    cr_assert_eq(act(p, "http://x.example/?q=2999c"), POLICY_ALLOW);
    cr_assert_eq(act(p, "http://x.example/nothing"), POLICY_ALLOW);
    policy_free(p);
    cfg_free(c);
}

Test(policy, user_agent)
{
    config_t *c = cfg_new();
    add_profile(c, "curl")->mode = CONFIG_MATCH_ANY_MODE;
    snprintf(c->pol.profiles[0].user_agent, sizeof(c->pol.profiles[0].user_agent),
             "^curl/[0-9.]+$");
    config_policy_t *pc = add_policy(c, "curl-pol", names(1, "curl"));
    pc->default_action = CONFIG_ACT_BLOCK;
    add_policy(c, "default", names(0));
    policy_t *p = build_ok(c, NULL, NULL);

    policy_facts_t f = req("http://x.example/");
    f.user_agent = "curl/8.1.2 trailing";
    f.user_agent_len = 10;                  /* length honoured, no NUL needed */
    policy_decision_t d = eval(p, &f);
    cr_assert_str_eq(d.profile, "curl");
    cr_assert_eq(d.action, POLICY_BLOCK);
    f.user_agent = "Mozilla/5.0";
    f.user_agent_len = strlen(f.user_agent);
    d = eval(p, &f);
    cr_assert_str_eq(d.profile, "(none)");
    cr_assert_str_eq(d.policy, "default");
    f.user_agent = NULL;
    f.user_agent_len = 0;
    cr_assert_str_eq(eval(p, &f).profile, "(none)");
    policy_free(p);
    cfg_free(c);
}

Test(policy, time_ranges)
{
    config_t *c = cfg_new();
    int work = add_time_range(c, "work-hours", 0x1f, 9 * 60, 17 * 60);   /* Mon-Fri */
    int mon_early = add_time_range(c, "monday-early", 0x01, 0, 30);
    int sun_late = add_time_range(c, "sunday-late", 0x40, 23 * 60, 24 * 60);
    config_policy_t *pol = add_policy(c, "p", names(0));
    add_rule(pol, "games", CONFIG_ACT_BLOCK, work);
    add_rule(pol, "games", CONFIG_ACT_MONITOR, mon_early);
    add_rule(pol, "games", CONFIG_ACT_BLOCK, sun_late);
    add_custom(c, "games")->domains = names(1, "games.example");
    policy_t *p = build_ok(c, NULL, NULL);

    policy_facts_t f = req("http://games.example/");
    struct { int day, hh, mm; enum policy_action a; } cases[] = {
        { 0, 9, 0, POLICY_BLOCK },      /* Monday 09:00: inside */
        { 0, 8, 59, POLICY_ALLOW },
        { 0, 16, 59, POLICY_BLOCK },
        { 0, 17, 0, POLICY_ALLOW },     /* end is exclusive */
        { 4, 12, 0, POLICY_BLOCK },     /* Friday */
        { 5, 12, 0, POLICY_ALLOW },     /* Saturday */
        { 6, 12, 0, POLICY_ALLOW },     /* Sunday noon */
        { 6, 23, 59, POLICY_BLOCK },    /* Sunday 23:59 */
        { 7, 0, 0, POLICY_MONITOR },    /* next Monday 00:00 */
        { 7, 0, 29, POLICY_MONITOR },
        { 7, 0, 30, POLICY_ALLOW },
        { 1, 0, 0, POLICY_ALLOW },      /* Tuesday 00:00 is not Monday */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f.now = at(cases[i].day, cases[i].hh, cases[i].mm);
        policy_decision_t d = eval(p, &f);
        cr_assert_eq(d.action, cases[i].a, "case %zu: got %s", i, policy_action_str(d.action));
    }
    f.now = at(0, 10, 0);
    cr_assert_str_eq(eval(p, &f).reason, "Category games is blocked by access policy p "
                                         "during work-hours.");
    policy_free(p);
    cfg_free(c);
}

Test(policy, methods_and_connect_ports)
{
    config_t *c = cfg_new();
    config_policy_t *pol = add_policy(c, "p", names(0));
    pol->methods = names(3, "GET", "HEAD", "CONNECT");
    pol->connect_ports[0] = 443;
    pol->connect_ports[1] = 8443;
    pol->n_connect_ports = 2;
    add_rule(pol, "blocked", CONFIG_ACT_BLOCK, -1);
    add_custom(c, "blocked")->domains = names(1, "blocked.example");
    policy_t *p = build_ok(c, NULL, NULL);

    policy_facts_t f = req("http://x.example/");
    cr_assert_eq(eval(p, &f).action, POLICY_ALLOW);
    f.method = "POST";
    policy_decision_t d = eval(p, &f);
    cr_assert_eq(d.action, POLICY_BLOCK);
    cr_assert_str_eq(d.rule, "method");
    f = conn("x.example:443");
    cr_assert_eq(eval(p, &f).action, POLICY_ALLOW);
    f = conn("x.example:8443");
    cr_assert_eq(eval(p, &f).action, POLICY_ALLOW);
    f = conn("x.example:22");
    d = eval(p, &f);
    cr_assert_eq(d.action, POLICY_BLOCK);
    cr_assert_str_eq(d.rule, "connect-port");
    /* the port check comes before the category rules */
    f = conn("blocked.example:22");
    cr_assert_str_eq(eval(p, &f).rule, "connect-port");
    f = conn("blocked.example:443");
    cr_assert_str_eq(eval(p, &f).rule, "category");
    policy_free(p);
    cfg_free(c);

    /* no connect_ports in the policy: allowed (proxy.connect_ports is the proxy's job) */
    c = cfg_new();
    add_policy(c, "p", names(0));
    p = build_ok(c, NULL, NULL);
    f = conn("x.example:22");
    cr_assert_eq(eval(p, &f).action, POLICY_ALLOW);
    f = req("http://x.example/");
    f.method = "PROPFIND";
    cr_assert_eq(eval(p, &f).action, POLICY_ALLOW);
    policy_free(p);
    cfg_free(c);
}

/* ---- profiles ---- */

Test(policy, profile_first_match_and_criteria)
{
    config_t *c = cfg_new();
    config_profile_t *a = add_profile(c, "lab-3129");
    profile_subnet(a, "192.168.1.0/24");
    a->ports[0] = 3129;
    a->n_ports = 1;
    config_profile_t *b = add_profile(c, "lab");
    profile_subnet(b, "192.168.1.0/24");
    config_profile_t *t = add_profile(c, "transparent");
    t->mode = CONFIG_MATCH_TRANSPARENT;
    add_profile(c, "everyone");
    add_policy(c, "p-lab3129", names(1, "lab-3129"))->default_action = CONFIG_ACT_MONITOR;
    add_policy(c, "p-lab", names(1, "lab"))->default_action = CONFIG_ACT_BLOCK;
    add_policy(c, "p-rest", names(2, "transparent", "everyone"));
    policy_t *p = build_ok(c, NULL, NULL);

    policy_facts_t f = req("http://x.example/");
    f.proxy_port = 3129;
    policy_decision_t d = eval(p, &f);
    cr_assert_str_eq(d.profile, "lab-3129");
    cr_assert_str_eq(d.policy, "p-lab3129");
    cr_assert_eq(d.action, POLICY_MONITOR);
    f.proxy_port = 3128;                    /* port fails: AND -> next profile */
    d = eval(p, &f);
    cr_assert_str_eq(d.profile, "lab");
    cr_assert_eq(d.action, POLICY_BLOCK);
    set_client(&f, "192.168.2.10");         /* subnet fails too */
    cr_assert_str_eq(eval(p, &f).profile, "everyone");
    f.mode = CONFIG_MODE_TRANSPARENT;
    d = eval(p, &f);
    cr_assert_str_eq(d.profile, "transparent");
    cr_assert_str_eq(d.policy, "p-rest");
    f.client = NULL;                        /* no address: subnet criteria fail */
    f.mode = CONFIG_MODE_EXPLICIT;
    cr_assert_str_eq(eval(p, &f).profile, "everyone");
    policy_free(p);
    cfg_free(c);
}

Test(policy, identity_types_users_groups)
{
    config_t *c = cfg_new();
    add_profile(c, "machines")->types = CONFIG_TYPE_MACHINE | CONFIG_TYPE_DEVICE;
    config_profile_t *eng = add_profile(c, "eng-users");
    eng->types = CONFIG_TYPE_USER;
    eng->groups = names(2, "eng", "ops");
    config_profile_t *boss = add_profile(c, "boss");
    boss->users = names(1, "Alice");
    add_profile(c, "users")->types = CONFIG_TYPE_USER;
    add_profile(c, "any");
    add_policy(c, "default", names(0));
    policy_t *p = build_ok(c, NULL, NULL);

    policy_facts_t f = req("http://x.example/");
    f.has_identity = true;
    f.source = POLICY_SRC_HEADEND;
    f.id_type = 1;                          /* machine */
    cr_assert_str_eq(eval(p, &f).profile, "machines");
    f.id_type = 2;                          /* device */
    cr_assert_str_eq(eval(p, &f).profile, "machines");
    f.id_type = 0;                          /* user */
    f.user = "bob";
    f.groups = "sales, eng";
    cr_assert_str_eq(eval(p, &f).profile, "eng-users");
    f.groups = "engineering,sales";         /* no partial group matches */
    cr_assert_str_eq(eval(p, &f).profile, "users");
    f.user = "alice";                       /* users: case-insensitive */
    cr_assert_str_eq(eval(p, &f).profile, "boss");
    f.user = "alicex";
    cr_assert_str_eq(eval(p, &f).profile, "users");
    f.has_identity = false;                 /* type criteria need an identity */
    f.source = POLICY_SRC_NONE;
    f.user = NULL;
    f.groups = NULL;
    cr_assert_str_eq(eval(p, &f).profile, "any");
    f.has_identity = true;                  /* out-of-range type */
    f.id_type = 40;
    cr_assert_str_eq(eval(p, &f).profile, "any");
    policy_free(p);
    cfg_free(c);
}

/* The product's point: the same URL allowed remotely, blocked in the office. */
Test(policy, location_remote_vs_local)
{
    config_t *c = cfg_new();
    add_profile(c, "remote-users")->location = CONFIG_LOC_REMOTE;
    add_profile(c, "office")->location = CONFIG_LOC_LOCAL;
    add_friendly(c, "arts-entertainment", names(2, "arts", "radio"));
    config_policy_t *r = add_policy(c, "remote", names(1, "remote-users"));
    add_rule(r, "arts-entertainment", CONFIG_ACT_ALLOW, -1);
    add_rule(r, "adult", CONFIG_ACT_BLOCK, -1);
    config_policy_t *o = add_policy(c, "office", names(1, "office"));
    add_rule(o, "arts-entertainment", CONFIG_ACT_BLOCK, -1);
    add_rule(o, "adult", CONFIG_ACT_BLOCK, -1);
    add_policy(c, "default", names(0));
    policy_t *p = build_ok(c, list_source, &small_src);

    policy_facts_t f = req("http://live.stream.example/listen");
    f.remote = true;
    policy_decision_t d = eval(p, &f);
    cr_assert_eq(d.action, POLICY_ALLOW);
    cr_assert_str_eq(d.profile, "remote-users");
    cr_assert_str_eq(d.policy, "remote");
    cr_assert_str_eq(d.rule, "category");
    cr_assert_str_eq(d.category, "arts-entertainment");
    f.remote = false;
    d = eval(p, &f);
    cr_assert_eq(d.action, POLICY_BLOCK);
    cr_assert_str_eq(d.profile, "office");
    cr_assert_str_eq(d.category, "arts-entertainment");
    cr_assert_str_eq(d.reason, "Category arts-entertainment is blocked by access policy office.");
    f = req("http://adult.example/");
    f.remote = true;
    cr_assert_eq(eval(p, &f).action, POLICY_BLOCK);
    /* a domain in two lists: the first rule that matches decides */
    f = req("http://www.both.example/");
    cr_assert_str_eq(eval(p, &f).category, "adult");
    policy_free(p);
    cfg_free(c);
}

Test(policy, default_policy_and_no_policies)
{
    config_t *c = cfg_new();
    add_profile(c, "office")->location = CONFIG_LOC_LOCAL;
    add_profile(c, "orphan")->location = CONFIG_LOC_REMOTE;   /* in no policy */
    add_policy(c, "office", names(1, "office"))->default_action = CONFIG_ACT_MONITOR;
    add_policy(c, "default", names(0))->default_action = CONFIG_ACT_BLOCK;
    policy_t *p = build_ok(c, NULL, NULL);
    policy_facts_t f = req("http://x.example/");
    policy_decision_t d = eval(p, &f);
    cr_assert_str_eq(d.policy, "office");
    cr_assert_eq(d.action, POLICY_MONITOR);
    cr_assert_str_eq(d.rule, "default");
    f.remote = true;
    d = eval(p, &f);
    cr_assert_str_eq(d.profile, "orphan");
    cr_assert_str_eq(d.policy, "default");
    cr_assert_eq(d.action, POLICY_BLOCK);
    cr_assert_null(d.category);
    policy_free(p);
    cfg_free(c);

    c = cfg_new();
    p = build_ok(c, NULL, NULL);
    f = req("http://x.example/");
    d = eval(p, &f);
    cr_assert_eq(d.action, POLICY_ALLOW);
    cr_assert_str_eq(d.profile, "(none)");
    cr_assert_str_eq(d.policy, "(none)");
    cr_assert_str_eq(d.rule, "default");
    cr_assert_eq(d.auth_basic, false);
    policy_free(p);
    cfg_free(c);
}

Test(policy, refuse_unidentified)
{
    config_t *c = cfg_new();
    add_profile(c, "remote")->location = CONFIG_LOC_REMOTE;
    c->pol.profiles[0].refuse_unidentified = true;
    add_policy(c, "default", names(0));
    policy_t *p = build_ok(c, NULL, NULL);
    policy_facts_t f = req("http://x.example/");
    f.remote = true;
    f.in_vpn_pool = true;
    policy_decision_t d = eval(p, &f);
    cr_assert_eq(d.action, POLICY_REFUSE_UNIDENTIFIED);
    cr_assert_str_eq(d.rule, "unidentified");
    cr_assert_str_eq(d.profile, "remote");
    f.has_identity = true;
    f.source = POLICY_SRC_HEADEND;
    f.user = "alice";
    cr_assert_eq(eval(p, &f).action, POLICY_ALLOW);
    f.has_identity = false;
    f.in_vpn_pool = false;                  /* remote but outside the pools */
    cr_assert_eq(eval(p, &f).action, POLICY_ALLOW);
    policy_free(p);
    cfg_free(c);
}

/* ---- Basic authentication ---- */

static char pwfile[64];

static void
write_pwfile(const char *extra)
{
    char h1[256], h2[256];
    cr_assert_eq(policy_hash_password("s3cret", h1, sizeof(h1)), 0);
    cr_assert_eq(policy_hash_password("hunter2", h2, sizeof(h2)), 0);
    snprintf(pwfile, sizeof(pwfile), "/tmp/test-policy-pw.XXXXXX");
    int fd = mkstemp(pwfile);
    cr_assert(fd >= 0);
    FILE *fp = fdopen(fd, "w");
    fprintf(fp, "# users\n\nalice:%s\n  bob:%s\n%s", h1, h2, extra ? extra : "");
    fclose(fp);
}

static const char *
basic(const char *userpass)
{
    static char buf[256];
    unsigned char b64[200];
    EVP_EncodeBlock(b64, (const unsigned char *)userpass, (int)strlen(userpass));
    snprintf(buf, sizeof(buf), "Basic %s", (char *)b64);
    return buf;
}

Test(policy, hash_password_format)
{
    char h[256], h2[256];
    cr_assert_eq(policy_hash_password("x", h, sizeof(h)), 0);
    cr_assert_eq(strncmp(h, "pbkdf2-sha256$100000$", 21), 0, "%s", h);
    cr_assert_eq(policy_hash_password("x", h2, sizeof(h2)), 0);
    cr_assert_str_neq(h, h2);               /* random salt */
    cr_assert_eq(policy_hash_password("x", h, 20), -1);
}

Test(policy, auth_basic_flow)
{
    write_pwfile(NULL);
    config_t *c = cfg_new();
    snprintf(c->pol.auth_password_file, sizeof(c->pol.auth_password_file), "%s", pwfile);
    snprintf(c->pol.auth_realm, sizeof(c->pol.auth_realm), "corp");
    config_profile_t *pr = add_profile(c, "office-auth");
    pr->location = CONFIG_LOC_LOCAL;
    pr->auth = CONFIG_AUTH_BASIC;
    pr->users = names(1, "alice");          /* authorisation after the login */
    config_policy_t *pol = add_policy(c, "office", names(1, "office-auth"));
    add_rule(pol, "adult", CONFIG_ACT_BLOCK, -1);
    add_policy(c, "default", names(0));
    policy_t *p = build_ok(c, list_source, &small_src);
    unlink(pwfile);
    cr_assert_str_eq(policy_auth_realm(p), "corp");

    policy_facts_t f = req("http://x.example/");
    policy_decision_t d = eval(p, &f);
    cr_assert_eq(d.action, POLICY_AUTH_REQUIRED);
    cr_assert_str_eq(d.rule, "auth");
    cr_assert_str_eq(d.profile, "office-auth");
    cr_assert(d.auth_basic);

    char user[64];
    const char *v = basic("alice:s3cret");
    cr_assert(policy_check_basic(p, v, strlen(v), user, sizeof(user)));
    cr_assert_str_eq(user, "alice");
    cr_assert(policy_check_basic(p, v, strlen(v), user, sizeof(user)));   /* cached */
    cr_assert_not(policy_check_basic(p, v, strlen(v), user, 3));          /* too small */
    v = basic("alice:wrong");
    cr_assert_not(policy_check_basic(p, v, strlen(v), user, sizeof(user)));
    v = basic("nobody:s3cret");
    cr_assert_not(policy_check_basic(p, v, strlen(v), user, sizeof(user)));
    const char *bad[] = { "Basic", "Basic !!!!", "Digest abc", "Basic YWxpY2U=", /* no colon */
                          "Basic Ogo=", "", "basicYWxpY2U6czNjcmV0" };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_not(policy_check_basic(p, bad[i], strlen(bad[i]), user, sizeof(user)),
                      "%s", bad[i]);
    v = basic("alice:s3cret");
    char lower[300];
    snprintf(lower, sizeof(lower), "  bAsIc   %s  ", v + 6);
    cr_assert(policy_check_basic(p, lower, strlen(lower), user, sizeof(user)));

    /* re-evaluation after the login: same profile, the policy decides */
    f.source = POLICY_SRC_BASIC;
    f.user = "alice";
    d = eval(p, &f);
    cr_assert_eq(d.action, POLICY_ALLOW);
    cr_assert_str_eq(d.profile, "office-auth");
    cr_assert_str_eq(d.policy, "office");
    cr_assert(d.auth_basic);
    f = req("http://adult.example/");
    f.source = POLICY_SRC_BASIC;
    f.user = "alice";
    cr_assert_eq(eval(p, &f).action, POLICY_BLOCK);
    /* bob has a valid password but is not in the profile's users */
    v = basic("bob:hunter2");
    cr_assert(policy_check_basic(p, v, strlen(v), user, sizeof(user)));
    f.user = "bob";
    d = eval(p, &f);
    cr_assert_eq(d.action, POLICY_AUTH_REQUIRED);
    cr_assert_str_eq(d.profile, "office-auth");
    /* transparent traffic cannot answer a 407: the profile does not apply */
    f = req("http://x.example/");
    f.mode = CONFIG_MODE_TRANSPARENT;
    d = eval(p, &f);
    cr_assert_str_eq(d.profile, "(none)");
    cr_assert_str_eq(d.policy, "default");
    /* remote users are not asked */
    f = req("http://x.example/");
    f.remote = true;
    cr_assert_eq(eval(p, &f).action, POLICY_ALLOW);
    policy_free(p);
    cfg_free(c);
}

Test(policy, auth_without_password_file_is_an_error)
{
    config_t *c = cfg_new();
    add_profile(c, "a")->auth = CONFIG_AUTH_BASIC;
    cr_assert(strstr(build_err(c, NULL, NULL), "password_file") != NULL);
    cfg_free(c);
}

Test(policy, malformed_password_file)
{
    write_pwfile("carol:pbkdf2-sha256$0$AAAA$AAAA\n");
    config_t *c = cfg_new();
    snprintf(c->pol.auth_password_file, sizeof(c->pol.auth_password_file), "%s", pwfile);
    const char *e = build_err(c, NULL, NULL);
    cr_assert(strstr(e, ":5: malformed") != NULL, "%s", e);
    unlink(pwfile);

    write_pwfile("no-colon-here\n");
    snprintf(c->pol.auth_password_file, sizeof(c->pol.auth_password_file), "%s", pwfile);
    e = build_err(c, NULL, NULL);
    cr_assert(strstr(e, ":5: malformed") != NULL, "%s", e);
    unlink(pwfile);

    snprintf(c->pol.auth_password_file, sizeof(c->pol.auth_password_file),
             "/nonexistent/users.passwd");
    e = build_err(c, NULL, NULL);
    cr_assert(strstr(e, "/nonexistent/users.passwd") != NULL, "%s", e);
    cfg_free(c);
}

/* ---- build errors and warnings ---- */

Test(policy, bad_regex_errors)
{
    config_t *c = block_cfg("rx");
    add_custom(c, "rx")->regexes = names(2, "fine", "abc(def");
    const char *e = build_err(c, NULL, NULL);
    cr_assert(strstr(e, "custom category rx: regex 2") != NULL, "%s", e);
    cr_assert(strstr(e, "offset 7") != NULL, "%s", e);
    cr_assert(strstr(e, "missing closing parenthesis") != NULL, "%s", e);
    cfg_free(c);

    c = cfg_new();
    snprintf(add_profile(c, "ua")->user_agent, 1024, "[a-");
    e = build_err(c, NULL, NULL);
    cr_assert(strstr(e, "identity profile ua: user_agent: PCRE2 error at offset") != NULL,
              "%s", e);
    cfg_free(c);
}

Test(policy, unknown_category_with_lists)
{
    config_t *c = block_cfg("no-such-list");
    const char *e = build_err(c, list_source, &small_src);
    cr_assert(strstr(e, "unknown category no-such-list") != NULL, "%s", e);
    cfg_free(c);

    c = block_cfg("ok");
    add_friendly(c, "ok", names(2, "arts", "nope"));
    e = build_err(c, list_source, &small_src);
    cr_assert(strstr(e, "nope") != NULL, "%s", e);
    cfg_free(c);

    c = block_cfg("adult");
    add_policy(c, "q", names(1, "ghost-profile"));
    e = build_err(c, list_source, &small_src);
    cr_assert(strstr(e, "unknown identity profile ghost-profile") != NULL, "%s", e);
    cfg_free(c);

    c = block_cfg("adult");
    e = build_err(c, failing_source, NULL);
    cr_assert(strstr(e, "database is corrupt") != NULL, "%s", e);
    cfg_free(c);
}

Test(policy, unknown_category_without_lists_warns, .init = cr_redirect_stderr)
{
    config_t *c = block_cfg("adult");
    add_friendly(c, "fun", names(1, "games"));
    policy_t *p = build_ok(c, NULL, NULL);
    cr_assert_eq(act(p, "http://adult.example/"), POLICY_ALLOW);
    policy_free(p);
    cfg_free(c);
    fflush(stderr);
    char buf[4096] = "";
    FILE *f = cr_get_redirected_stderr();
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    cr_assert(strstr(buf, "category adult has no entries") != NULL, "%s", buf);
    cr_assert(strstr(buf, "friendly name fun: category games has no entries") != NULL, "%s",
              buf);
}

/* ---- lists and policy_categorize ---- */

Test(policy, list_source_and_categorize)
{
    config_t *c = cfg_new();
    add_friendly(c, "arts-entertainment", names(2, "arts", "radio"));
    add_custom(c, "partner")->domains = names(1, "museum.example");   /* custom first */
    policy_t *p = build_ok(c, list_source, &small_src);

    struct { const char *host, *url, *want; } cases[] = {
        { "museum.example", "http://museum.example/", "partner" },
        { "radio.example", "http://radio.example/", "arts-entertainment" },
        { "a.stream.example", NULL, "arts-entertainment" },
        { "adult.example", NULL, "adult" },
        { NULL, "http://x.example/xxx/index.html", "adult" },
        { NULL, "http://x.example/page-porn.html", "adult" },
        { NULL, "http://x.example/pornography", NULL },
        { NULL, "http://x.example/nudity42", "adult" },
        { NULL, "http://freehost.example/~bad/", "adult" },
        { "EXAMPLE.COM", NULL, "games" },
        { "nothing.example", "http://nothing.example/", NULL },
        { NULL, NULL, NULL },
        { "", NULL, NULL },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *got = policy_categorize(p, cases[i].host,
                                            cases[i].host ? strlen(cases[i].host) : 0,
                                            cases[i].url, cases[i].url ? strlen(cases[i].url) : 0);
        if (cases[i].want == NULL)
            cr_assert_null(got, "case %zu: %s", i, got);
        else
            cr_assert(got != NULL && strcmp(got, cases[i].want) == 0, "case %zu: %s", i,
                      got ? got : "(null)");
    }
    policy_stats_t st;
    policy_get_stats(p, &st);
    cr_assert_eq(st.domains, 7);            /* distinct (museum.example twice) */
    cr_assert_eq(st.url_prefixes, 2);
    cr_assert_eq(st.regexes, 2);            /* the bad expression was skipped */
    cr_assert_eq(st.categories, 5);         /* partner + arts, radio, adult, games */
    cr_assert(st.memory_bytes > 0);
    policy_free(p);
    cfg_free(c);
}

Test(policy, empty_source_is_like_no_source, .init = cr_redirect_stderr)
{
    src_arg_t empty = { NULL, 0 };
    config_t *c = block_cfg("adult");
    policy_t *p = build_ok(c, list_source, &empty);
    cr_assert_eq(act(p, "http://adult.example/"), POLICY_ALLOW);
    policy_free(p);
    cfg_free(c);
}

/* ---- threads ---- */

static policy_t *shared;

static void *
worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 2000; i++) {
        policy_facts_t f = req(i % 2 ? "http://x.example/xxx/" : "http://radio.example/");
        policy_decision_t d;
        policy_evaluate(shared, &f, &d);
        if (d.action != POLICY_BLOCK)
            return (void *)1;
    }
    return NULL;
}

Test(policy, concurrent_evaluation)
{
    config_t *c = block_cfg("adult");
    add_rule(&c->pol.policies[0], "radio", CONFIG_ACT_BLOCK, -1);
    shared = build_ok(c, list_source, &small_src);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, worker, NULL), 0);
    for (int i = 0; i < 4; i++) {
        void *rv;
        pthread_join(th[i], &rv);
        cr_assert_null(rv);
    }
    policy_free(shared);
    cfg_free(c);
}
