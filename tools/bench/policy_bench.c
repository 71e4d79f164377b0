/*
 * tools/bench/policy_bench.c: cost of the policy engine (policy/policy_*.c).
 * Builds (1) the small example policy and (2) the same policy plus
 * 1 000 000 synthetic list domains (20 categories, fed through a
 * policy_list_source), 10 000 URL prefixes and a custom category of 10 000
 * regexes; reports build time, RSS growth (VmRSS/VmHWM from
 * /proc/self/status) and the single-thread cost of policy_evaluate for hits
 * and misses, as a markdown table.
 *
 *   ninja -C build-policy-rel policy-bench && ./build-policy-rel/policy-bench [domains] [regexes]
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/log.h"
#include "../../policy/policy.h"

#define N_LISTS 20

static unsigned n_domains = 1000000;
static unsigned n_regexes = 10000;
static const unsigned n_urls = 10000;

static const char *const tlds[] = { "com", "net", "org", "example", "fr" };

static uint32_t
mix(uint32_t x)
{
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    x ^= x >> 16;
    return x;
}

static void
domain_of(unsigned i, char *buf, size_t cap)
{
    snprintf(buf, cap, "s%x-%u.%s", mix(i), i, tlds[i % 5]);
}

static long
proc_kib(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- list source ---- */

typedef struct src_cfg {
    unsigned domains, urls;
} src_cfg_t;

static int
source(void *arg, policy_emit_fn emit, void *ctx, char *err, size_t errlen)
{
    const src_cfg_t *s = arg;
    char cat[16], buf[128];
    (void)err;
    (void)errlen;
    /* the small example lists first */
    if (emit(ctx, "arts", POLICY_LIST_DOMAIN, "museum.example") < 0 ||
        emit(ctx, "radio", POLICY_LIST_DOMAIN, "radio.example") < 0 ||
        emit(ctx, "audio-video", POLICY_LIST_DOMAIN, "video.example") < 0 ||
        emit(ctx, "adult", POLICY_LIST_DOMAIN, "adult.example") < 0 ||
        emit(ctx, "adult", POLICY_LIST_EXPRESSION, "(^|[-/_.])(xxx|porn)([-/_.]|$)") < 0 ||
        emit(ctx, "games", POLICY_LIST_DOMAIN, "games.example") < 0)
        return -1;
    for (unsigned c = 0; c < N_LISTS; c++) {
        snprintf(cat, sizeof(cat), "list%02u", c);
        for (unsigned i = c; i < s->domains; i += N_LISTS) {
            domain_of(i, buf, sizeof(buf));
            if (emit(ctx, cat, POLICY_LIST_DOMAIN, buf) < 0)
                return -1;
        }
        for (unsigned i = c; i < s->urls; i += N_LISTS) {
            snprintf(buf, sizeof(buf), "host%u.example/path/%x/", i % 1000, mix(i));
            if (emit(ctx, cat, POLICY_LIST_URL, buf) < 0)
                return -1;
        }
    }
    return 0;
}

/* ---- configuration (built in C, like the unit tests) ---- */

static char **
str_array(size_t n)
{
    char **v = calloc(n ? n : 1, sizeof(char *));
    if (v == NULL)
        abort();
    return v;
}

static config_names_t
one(const char *a)
{
    config_names_t v = { 1, str_array(1) };
    v.names[0] = (char *)a;
    return v;
}

static config_names_t
two(const char *a, const char *b)
{
    config_names_t v = { 2, str_array(2) };
    v.names[0] = (char *)a;
    v.names[1] = (char *)b;
    return v;
}

static void
rule(config_policy_t *p, const char *cat, enum config_action a)
{
    config_category_rule_t *r = &p->rules[p->n_rules++];
    snprintf(r->category, sizeof(r->category), "%s", cat);
    r->action = a;
    r->time_range = -1;
}

/* The example of DESIGN.md: remote users allowed arts & entertainment,
 * blocked in the office; big: + every synthetic list and the regexes. */
static config_t *
make_config(bool big, bool hard, char ***patterns_out)
{
    config_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        abort();
    config_policies_t *pol = &c->pol;
    config_profile_t *pr = &pol->profiles[pol->n_profiles++];
    snprintf(pr->name, sizeof(pr->name), "remote-users");
    pr->location = CONFIG_LOC_REMOTE;
    pr->types = CONFIG_TYPE_USER;
    pr = &pol->profiles[pol->n_profiles++];
    snprintf(pr->name, sizeof(pr->name), "office");
    pr->location = CONFIG_LOC_LOCAL;

    config_friendly_t *fr = &pol->friendly[pol->n_friendly++];
    snprintf(fr->name, sizeof(fr->name), "arts-entertainment");
    fr->lists = two("arts", "radio");

    config_custom_category_t *cc = &pol->custom[pol->n_custom++];
    snprintf(cc->name, sizeof(cc->name), "partner-sites");
    cc->domains = one("partner.example");
    cc->url_prefixes = one("http://intranet.example/wiki/");
    cc->regexes = one("^http://[^/]*\\.games\\.");
    *patterns_out = NULL;
    if (big) {
        cc = &pol->custom[pol->n_custom++];
        snprintf(cc->name, sizeof(cc->name), "trackers");
        char **pats = str_array(n_regexes);
        for (unsigned i = 0; i < n_regexes; i++) {
            char buf[128];
            switch (i % 10) {
            case 0: case 1: case 2: case 3:   /* literal: host name */
                snprintf(buf, sizeof(buf), "^https?://([a-z0-9-]+\\.)*tracker%u\\.example/", i);
                break;
            case 4: case 5: case 6:           /* literal: path */
                snprintf(buf, sizeof(buf), "/ads/banner%u[0-9]*\\.(gif|png)", i);
                break;
            case 7: case 8:                   /* literal: query */
                snprintf(buf, sizeof(buf), "[?&]campaign=%u(&|$)", i);
                break;
            default:
                if (hard)                     /* only a shared literal: combined */
                    snprintf(buf, sizeof(buf), "^http://[a-z]+%u[.]", i);
                else
                    snprintf(buf, sizeof(buf), "^http://[a-z]+\\.shop%u\\.", i);
                break;
            }
            pats[i] = strdup(buf);
        }
        cc->regexes.n = n_regexes;
        cc->regexes.names = pats;
        *patterns_out = pats;
    }

    config_policy_t *p = &pol->policies[pol->n_policies++];
    snprintf(p->name, sizeof(p->name), "remote");
    p->profiles = one("remote-users");
    rule(p, "arts-entertainment", CONFIG_ACT_ALLOW);
    rule(p, "adult", CONFIG_ACT_BLOCK);
    p = &pol->policies[pol->n_policies++];
    snprintf(p->name, sizeof(p->name), "office");
    p->profiles = one("office");
    rule(p, "partner-sites", CONFIG_ACT_ALLOW);
    rule(p, "arts-entertainment", CONFIG_ACT_BLOCK);
    rule(p, "adult", CONFIG_ACT_BLOCK);
    rule(p, "games", CONFIG_ACT_MONITOR);
    if (big) {
        rule(p, "trackers", CONFIG_ACT_BLOCK);
        for (unsigned i = 0; i < N_LISTS; i++) {
            char cat[16];
            snprintf(cat, sizeof(cat), "list%02u", i);
            rule(p, cat, CONFIG_ACT_BLOCK);
        }
    }
    p = &pol->policies[pol->n_policies++];
    snprintf(p->name, sizeof(p->name), "default");
    return c;
}

static void
free_config(config_t *c, char **pats)
{
    config_policies_t *pol = &c->pol;
    if (pats != NULL)          /* pats is also the trackers category's names array */
        for (unsigned i = 0; i < n_regexes; i++)
            free(pats[i]);
    for (size_t i = 0; i < pol->n_custom; i++) {
        free(pol->custom[i].domains.names);
        free(pol->custom[i].url_prefixes.names);
        free(pol->custom[i].regexes.names);
    }
    for (size_t i = 0; i < pol->n_friendly; i++)
        free(pol->friendly[i].lists.names);
    for (size_t i = 0; i < pol->n_policies; i++)
        free(pol->policies[i].profiles.names);
    free(c);
}

/* ---- evaluation ---- */

typedef struct sample {
    char url[256];
    size_t host_len;
    bool remote;
} sample_t;

enum { N_SAMPLES = 4096 };

static double
run(const policy_t *p, const sample_t *s, unsigned iters, unsigned *blocked)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(0xc0a8010a);
    policy_facts_t f;
    memset(&f, 0, sizeof(f));
    f.client = (const struct sockaddr *)&sin;
    f.method = "GET";
    f.proxy_port = 3128;
    f.now = time(NULL);
    f.has_identity = true;
    f.source = POLICY_SRC_HEADEND;
    f.user = "alice";
    *blocked = 0;
    double t0 = now_s();
    for (unsigned i = 0; i < iters; i++) {
        const sample_t *x = &s[i % N_SAMPLES];
        f.url = x->url;
        f.url_len = strlen(x->url);
        f.host = x->url + 7;
        f.host_len = x->host_len;
        f.remote = x->remote;
        policy_decision_t d;
        policy_evaluate(p, &f, &d);
        *blocked += d.action == POLICY_BLOCK;
    }
    return (now_s() - t0) * 1e9 / iters;
}

static void
make(sample_t *s, const char *host, const char *path)
{
    snprintf(s->url, sizeof(s->url), "http://%s%s", host, path);
    s->host_len = strlen(host);
    s->remote = false;
}

/* kind: 0 list-domain hits, 1 misses, 2 regex hits, 3 mix */
static void
samples(sample_t *s, int kind, bool big)
{
    char host[160], dom[128];
    for (unsigned i = 0; i < N_SAMPLES; i++) {
        unsigned r = mix(i * 7919 + (unsigned)kind);
        int k = kind == 3 ? (int)(r % 3) : kind;
        if (k == 0 && big) {
            domain_of(r % n_domains, dom, sizeof(dom));
            snprintf(host, sizeof(host), "%s%s", r & 1 ? "www." : "", dom);
            make(&s[i], host, "/index.html");
        } else if (k == 0) {
            make(&s[i], r & 1 ? "www.radio.example" : "adult.example", "/index.html");
        } else if (k == 1) {
            snprintf(host, sizeof(host), "www.miss%u.nowhere-%u.com", r, i);
            make(&s[i], host, "/some/path/page.html?id=12345&lang=en");
        } else {
            unsigned j = (r % (n_regexes / 10)) * 10;
            if (!big) {
                make(&s[i], "xxx.example", "/");
            } else if (r & 1) {
                snprintf(host, sizeof(host), "cdn.tracker%u.example", j + (r >> 8) % 4);
                make(&s[i], host, "/pixel.gif");
            } else {
                snprintf(host, sizeof(host), "www.news%u.example", r);
                char path[64];
                snprintf(path, sizeof(path), "/ads/banner%u7.png", j + 4);
                make(&s[i], host, path);
            }
        }
    }
}

static void
scenario(const char *name, bool big, bool hard)
{
    char err[POLICY_ERR_LEN];
    char **pats;
    config_t *c = make_config(big, hard, &pats);
    src_cfg_t sc = { big ? n_domains : 0, big ? n_urls : 0 };
    long rss0 = proc_kib("VmRSS");
    double t0 = now_s();
    policy_t *p = policy_build(c, source, &sc, err, sizeof(err));
    double build = now_s() - t0;
    long rss1 = proc_kib("VmRSS");
    if (p == NULL) {
        fprintf(stderr, "policy_build: %s\n", err);
        exit(1);
    }
    policy_stats_t st;
    policy_get_stats(p, &st);

    static sample_t s[N_SAMPLES];
    const char *kinds[] = { "list-domain hits", "misses (every rule tried)", "regex hits",
                            "mix 1/3 each" };
    printf("\n### %s\n\n", name);
    printf("| measure | value |\n|---|---|\n");
    printf("| domains / url prefixes / regexes / categories | %zu / %zu / %zu / %zu |\n",
           st.domains, st.url_prefixes, st.regexes, st.categories);
    printf("| build time | %.2f s |\n", build);
    printf("| RSS growth (VmRSS after - before build) | %.1f MiB |\n", (rss1 - rss0) / 1024.0);
    printf("| matcher heap (policy_get_stats) | %.1f MiB |\n", st.memory_bytes / 1048576.0);
    for (int k = 0; k < 4; k++) {
        samples(s, k, big);
        unsigned blocked;
        unsigned iters = 400000;
        run(p, s, N_SAMPLES, &blocked);               /* warm up (thread state, caches) */
        double ns = run(p, s, iters, &blocked);
        printf("| evaluate, %s (office profile) | %.0f ns (%.0f%% blocked/monitored) |\n",
               kinds[k], ns, 100.0 * blocked / iters);
    }
    policy_free(p);
    free_config(c, pats);
}

int
main(int argc, char **argv)
{
    if (argc > 1)
        n_domains = (unsigned)strtoul(argv[1], NULL, 10);
    if (argc > 2)
        n_regexes = (unsigned)strtoul(argv[2], NULL, 10);
    if (n_regexes < 10)
        n_regexes = 10;
    log_set_level(LOG_LVL_ERROR);
    printf("## policy engine benchmark (single thread)\n");
    scenario("small example policy", false, false);
    char title[200];
    snprintf(title, sizeof(title), "%u list domains + %u URL prefixes + %u custom regexes, "
             "each with a distinctive literal", n_domains, n_urls, n_regexes);
    scenario(title, true, false);
    snprintf(title, sizeof(title), "%u list domains + %u URL prefixes + %u custom regexes, "
             "10%% of them with no distinctive literal (^http://[a-z]+N[.])",
             n_domains, n_urls, n_regexes);
    scenario(title, true, true);
    printf("\nVmHWM (peak RSS of the whole run): %.1f MiB\n", proc_kib("VmHWM") / 1024.0);
    return 0;
}
