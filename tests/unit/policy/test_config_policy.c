/*
 * tests/unit/policy/test_config_policy.c: the policy sections of the
 * configuration (policy/config_*.c): identity profiles, access policies,
 * time ranges, custom and friendly categories and authentication, with every
 * field, references in any order, the string pool's lifetime and the limits
 * of each list. Not the messages of broken files (test_config_errors.c).
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../common/log.h"
#include "../../../policy/config.h"
#include "configtest.h"

Test(config, policies_every_field)
{
    static const char text[] =
        "identity_profiles:\n"
        "  - name: remote-users\n"
        "    location: remote\n"
        "    types: [user]\n"
        "    subnets: [10.10.0.0/16, \"fd00:10::/64\"]\n"
        "    ports: [3128, 8080]\n"
        "    mode: explicit\n"
        "    user_agent: \"^Mozilla/5\\\\.0\"\n"
        "    users: [alice, \"bob@example.com\", \"CORP\\\\carol\"]\n"
        "    groups: [eng, \"Domain Users\"]\n"
        "    auth: none\n"
        "    refuse_unidentified: true\n"
        "  - name: machine-tunnels\n"
        "    location: remote\n"
        "    types: [device, machine]\n"
        "  - name: office\n"
        "    location: local\n"
        "    subnets: [192.168.1.7/16]\n"
        "    mode: any\n"
        "    auth: basic\n"
        "  - { name: kiosk, location: any, mode: transparent, types: [], users: [], ports: [] }\n"
        "access_policies:\n"
        "  - name: remote\n"
        "    profiles: [remote-users]\n"
        "    categories:\n"
        "      arts-entertainment: allow\n"
        "      adult: block\n"
        "      games: { action: block, time: work-hours }\n"
        "      news: { time: weekend, action: monitor }\n"
        "      partner-sites: { action: allow }\n"
        "    default: monitor\n"
        "    connect_ports: [443, 8443]\n"
        "    methods: [GET, HEAD, POST, CONNECT]\n"
        "  - name: machines\n"
        "    profiles: [machine-tunnels, kiosk]\n"
        "    categories: { machine-updates: allow }\n"
        "    default: block\n"
        "  - { name: office, profiles: [office], categories: {} }\n"
        "  - name: default\n"
        "    profiles: []\n"
        "    categories:\n"
        "    default: allow\n"
        "time_ranges:\n"
        "  work-hours: { days: [mon, tue, wed, thu, fri], hours: \"09:00-17:00\" }\n"
        "  weekend:\n"
        "    hours: \"00:00-24:00\"\n"
        "    days: [sun, sat]\n"
        "custom_categories:\n"
        "  - name: partner-sites\n"
        "    domains: [Partner.Example, sub.partner2.example]\n"
        "    url_prefixes: [\"http://intranet.example/wiki/\", \"https://x.example/a?b\"]\n"
        "    regexes: [\"^http://[^/]*\\\\.games\\\\.\"]\n"
        "  - name: machine-updates\n"
        "    domains: [update.example.com]\n"
        "    url_prefixes: []\n"
        "categories:\n"
        "  database: /var/lib/musproxy/categories.db\n"
        "  names:\n"
        "    arts-entertainment: [arts, radio, celebrity]\n"
        "    adult: [adult]\n"
        "authentication:\n"
        "  realm: \"Example Corp proxy\"\n"
        "  password_file: /etc/musproxy/users.passwd\n"
        "  surrogate_ttl: 30m\n"
        "extended_log: /var/log/musproxy/extended.log\n";
    char err[CONFIG_ERR_LEN];
    const config_policies_t *pol;
    const config_profile_t *p;
    const config_policy_t *po;
    config_t *cfg = load_str(text, err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_str_eq(err, "");
    pol = &cfg->pol;

    cr_assert_eq(pol->n_profiles, 4);
    p = &pol->profiles[0];
    cr_expect_str_eq(p->name, "remote-users");
    cr_expect_eq(p->location, CONFIG_LOC_REMOTE);
    cr_expect_eq(p->types, CONFIG_TYPE_USER);
    cr_assert_eq(p->n_subnets, 2);
    expect_cidr(&p->subnets[0], "10.10.0.0/16");
    expect_cidr(&p->subnets[1], "fd00:10::/64");
    cr_assert_eq(p->n_ports, 2);
    cr_expect_eq(p->ports[0], 3128);
    cr_expect_eq(p->ports[1], 8080);
    cr_expect_eq(p->mode, CONFIG_MATCH_EXPLICIT);
    cr_expect_str_eq(p->user_agent, "^Mozilla/5\\.0");
    NAMES(p->users, "alice", "bob@example.com", "CORP\\carol");
    NAMES(p->groups, "eng", "Domain Users");
    cr_expect_eq(p->auth, CONFIG_AUTH_NONE);
    cr_expect(p->refuse_unidentified);
    p = &pol->profiles[1];
    cr_expect_str_eq(p->name, "machine-tunnels");
    cr_expect_eq(p->types, CONFIG_TYPE_MACHINE | CONFIG_TYPE_DEVICE);
    cr_expect_null(p->subnets);
    cr_expect_eq(p->n_subnets, 0);
    cr_expect_eq(p->mode, CONFIG_MATCH_ANY_MODE);
    cr_expect_not(p->refuse_unidentified);
    NO_NAMES(p->users);
    NO_NAMES(p->groups);
    p = &pol->profiles[2];
    cr_expect_str_eq(p->name, "office");
    cr_expect_eq(p->location, CONFIG_LOC_LOCAL);
    cr_expect_eq(p->types, CONFIG_TYPE_ANY);
    cr_assert_eq(p->n_subnets, 1);
    expect_cidr(&p->subnets[0], "192.168.0.0/16");
    cr_expect_eq(p->mode, CONFIG_MATCH_ANY_MODE);
    cr_expect_eq(p->auth, CONFIG_AUTH_BASIC);
    p = &pol->profiles[3];
    cr_expect_str_eq(p->name, "kiosk");
    cr_expect_eq(p->location, CONFIG_LOC_ANY);
    cr_expect_eq(p->mode, CONFIG_MATCH_TRANSPARENT);
    cr_expect_eq(p->types, CONFIG_TYPE_ANY);
    cr_expect_eq(p->n_ports, 0);
    NO_NAMES(p->users);
    cr_expect_eq(p->auth, CONFIG_AUTH_NONE);

    cr_assert_eq(pol->n_time_ranges, 2);
    cr_expect_str_eq(pol->time_ranges[0].name, "work-hours");
    cr_expect_eq(pol->time_ranges[0].days, 0x1f);
    cr_expect_eq(pol->time_ranges[0].from_min, 540);
    cr_expect_eq(pol->time_ranges[0].to_min, 1020);
    cr_expect_str_eq(pol->time_ranges[1].name, "weekend");
    cr_expect_eq(pol->time_ranges[1].days, 0x60);
    cr_expect_eq(pol->time_ranges[1].from_min, 0);
    cr_expect_eq(pol->time_ranges[1].to_min, 1440);

    cr_assert_eq(pol->n_policies, 4);
    po = &pol->policies[0];
    cr_expect_str_eq(po->name, "remote");
    NAMES(po->profiles, "remote-users");
    cr_assert_eq(po->n_rules, 5);
    cr_expect_str_eq(po->rules[0].category, "arts-entertainment");
    cr_expect_eq(po->rules[0].action, CONFIG_ACT_ALLOW);
    cr_expect_eq(po->rules[0].time_range, -1);
    cr_expect_str_eq(po->rules[1].category, "adult");
    cr_expect_eq(po->rules[1].action, CONFIG_ACT_BLOCK);
    cr_expect_eq(po->rules[1].time_range, -1);
    cr_expect_str_eq(po->rules[2].category, "games");
    cr_expect_eq(po->rules[2].action, CONFIG_ACT_BLOCK);
    cr_expect_eq(po->rules[2].time_range, 0);    /* work-hours */
    cr_expect_str_eq(po->rules[3].category, "news");
    cr_expect_eq(po->rules[3].action, CONFIG_ACT_MONITOR);
    cr_expect_eq(po->rules[3].time_range, 1);    /* weekend */
    cr_expect_str_eq(po->rules[4].category, "partner-sites");
    cr_expect_eq(po->rules[4].action, CONFIG_ACT_ALLOW);
    cr_expect_eq(po->rules[4].time_range, -1);
    cr_expect_eq(po->default_action, CONFIG_ACT_MONITOR);
    cr_assert_eq(po->n_connect_ports, 2);
    cr_expect_eq(po->connect_ports[0], 443);
    cr_expect_eq(po->connect_ports[1], 8443);
    NAMES(po->methods, "GET", "HEAD", "POST", "CONNECT");
    po = &pol->policies[1];
    cr_expect_str_eq(po->name, "machines");
    NAMES(po->profiles, "machine-tunnels", "kiosk");
    cr_assert_eq(po->n_rules, 1);
    cr_expect_str_eq(po->rules[0].category, "machine-updates");
    cr_expect_eq(po->default_action, CONFIG_ACT_BLOCK);
    cr_expect_eq(po->n_connect_ports, 0);
    NO_NAMES(po->methods);
    po = &pol->policies[2];
    cr_expect_str_eq(po->name, "office");
    NAMES(po->profiles, "office");
    cr_expect_eq(po->n_rules, 0);
    cr_expect_eq(po->default_action, CONFIG_ACT_ALLOW);
    po = &pol->policies[3];
    cr_expect_str_eq(po->name, "default");
    NO_NAMES(po->profiles);
    cr_expect_eq(po->n_rules, 0);
    cr_expect_eq(po->default_action, CONFIG_ACT_ALLOW);

    cr_assert_eq(pol->n_custom, 2);
    cr_expect_str_eq(pol->custom[0].name, "partner-sites");
    NAMES(pol->custom[0].domains, "partner.example", "sub.partner2.example");  /* lowercased */
    NAMES(pol->custom[0].url_prefixes, "http://intranet.example/wiki/", "https://x.example/a?b");
    NAMES(pol->custom[0].regexes, "^http://[^/]*\\.games\\.");
    cr_expect_str_eq(pol->custom[1].name, "machine-updates");
    NAMES(pol->custom[1].domains, "update.example.com");
    NO_NAMES(pol->custom[1].url_prefixes);
    NO_NAMES(pol->custom[1].regexes);

    cr_expect_str_eq(pol->category_db, "/var/lib/musproxy/categories.db");
    cr_assert_eq(pol->n_friendly, 2);
    cr_expect_str_eq(pol->friendly[0].name, "arts-entertainment");
    NAMES(pol->friendly[0].lists, "arts", "radio", "celebrity");
    cr_expect_str_eq(pol->friendly[1].name, "adult");
    NAMES(pol->friendly[1].lists, "adult");

    cr_expect_str_eq(pol->auth_realm, "Example Corp proxy");
    cr_expect_str_eq(pol->auth_password_file, "/etc/musproxy/users.passwd");
    cr_expect_eq(pol->auth_surrogate_ttl, 30 * 60 * 1000);
    cr_expect_str_eq(pol->extended_log, "/var/log/musproxy/extended.log");

    /* the proxy sections keep their defaults */
    expect_defaults(cfg);
    config_free(cfg);
}

/* Sections may come in any order: references are resolved at the end. */
Test(config, policies_references_in_any_order)
{
    char err[CONFIG_ERR_LEN];
    config_t *cfg = load_str(
        "access_policies:\n"
        "  - { name: p, profiles: [b, a], categories: { x: { action: block, time: t2 } } }\n"
        "  - { name: d }\n"
        "authentication: { password_file: users }\n"
        "time_ranges:\n"
        "  t1: { days: [mon], hours: \"00:00-00:01\" }\n"
        "  t2: { days: [sun], hours: \"23:59-24:00\" }\n"
        "identity_profiles: [{ name: a, auth: basic }, { name: b }]\n"
        "categories: { names: { x: [y] }, database: off }\n", err);

    cr_assert_not_null(cfg, "%s", err);
    cr_expect_eq(cfg->pol.policies[0].rules[0].time_range, 1);
    cr_expect_eq(cfg->pol.time_ranges[1].from_min, 23 * 60 + 59);
    cr_expect_eq(cfg->pol.time_ranges[1].to_min, 1440);
    cr_expect_eq(cfg->pol.time_ranges[1].days, 0x40);
    cr_expect_str_eq(cfg->pol.auth_password_file, "users");
    cr_expect_str_eq(cfg->pol.category_db, "");
    cr_expect_eq(cfg->pol.profiles[0].auth, CONFIG_AUTH_BASIC);
    config_free(cfg);
}

/* Every string and array of the policy sections lives in the config's pool:
 * valid until config_free, then gone (ASan checks both), including on the
 * error paths, and across several pool chunks. */
Test(config, string_pool_lifetime)
{
    size_t n = CONFIG_MAX_CUSTOM_ENTRIES, cap = 256 + n * 80, off;
    char err[CONFIG_ERR_LEN], *text = malloc(cap);
    config_t *cfg;

    cr_assert_not_null(text);
    off = (size_t)snprintf(text, cap, "custom_categories:\n  - name: big\n    domains:\n");
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(text + off, cap - off,
                                "      - Host-%04zu.a-rather-long-domain-name.example\n", i);
    cfg = load_str(text, err);
    cr_assert_not_null(cfg, "%s", err);
    cr_assert_eq(cfg->pol.custom[0].domains.n, n);
    for (size_t i = 0; i < n; i++) {
        char want[80];
        snprintf(want, sizeof(want), "host-%04zu.a-rather-long-domain-name.example", i);
        cr_assert_str_eq(cfg->pol.custom[0].domains.names[i], want);
    }
    config_free(cfg);

    /* one more: refused, and everything allocated so far is released */
    snprintf(text + off, cap - off, "      - one.too.many\n");
    cfg = load_str(text, err);
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "t.yaml:4100:9: too many entries in 'domains' (at most 4096)");

    /* an error after the pool and the reference table have grown */
    snprintf(text + off, cap - off,
             "    regexes: [\"x\"]\naccess_policies:\n  - { name: p, profiles: [ghost] }\n");
    cfg = load_str(text, err);
    cr_expect_null(cfg);
    cr_expect_str_eq(err, "t.yaml:4102:27: unknown identity profile 'ghost'");
    free(text);

    /* two loads of the same text own separate pools */
    config_t *a = load_str("identity_profiles: [{ name: a, users: [u] }]\n", err);
    config_t *b = load_str("identity_profiles: [{ name: a, users: [u] }]\n", err);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_expect_neq(a->pool, b->pool);
    cr_expect_neq(a->pol.profiles[0].users.names[0], b->pol.profiles[0].users.names[0]);
    config_free(a);
    cr_expect_str_eq(b->pol.profiles[0].users.names[0], "u");
    config_free(b);
}

/* Builds n entries of a policy list with fmt(i) (each a line). */
static char *
repeat(const char *head, const char *fmt, size_t n, const char *tail)
{
    size_t cap = strlen(head) + strlen(tail) + 1 + n * 160, off;
    char *s = malloc(cap);

    cr_assert_not_null(s);
    off = (size_t)snprintf(s, cap, "%s", head);
    for (size_t i = 0; i < n; i++)
        off += (size_t)snprintf(s + off, cap - off, fmt, i, i);
    snprintf(s + off, cap - off, "%s", tail);
    return s;
}

Test(config, policy_limits)
{
    static const struct {
        const char *head, *fmt, *tail;
        size_t max;
        const char *message;
    } cases[] = {
        { "identity_profiles:\n", "  - { name: p%zu }\n", "", CONFIG_MAX_PROFILES,
          "t.yaml:66:5: too many entries in 'identity_profiles' (at most 64)" },
        { "access_policies:\n", "  - { name: p%zu, profiles: [x%zu] }\n",
          "identity_profiles:\n  - { name: x0 }\n", CONFIG_MAX_POLICIES,
          "t.yaml:66:5: too many entries in 'access_policies' (at most 64)" },
        { "time_ranges:\n", "  t%zu: { days: [mon], hours: \"09:00-10:00\" }\n", "",
          CONFIG_MAX_TIME_RANGES, "t.yaml:34:3: too many entries in 'time_ranges' (at most 32)" },
        { "custom_categories:\n", "  - { name: c%zu, domains: [d.example] }\n", "",
          CONFIG_MAX_CUSTOM_CATS,
          "t.yaml:66:5: too many entries in 'custom_categories' (at most 64)" },
        { "categories:\n  names:\n", "    f%zu: [l]\n", "", CONFIG_MAX_FRIENDLY,
          "t.yaml:131:5: too many entries in 'names' (at most 128)" },
        { "access_policies:\n  - name: p\n    categories:\n", "      c%zu: block\n", "",
          CONFIG_MAX_CATEGORY_RULES,
          "t.yaml:132:7: too many entries in 'categories' (at most 128)" },
        { "identity_profiles:\n  - name: p\n    users:\n", "      - u%zu\n", "",
          CONFIG_MAX_NAMES, "t.yaml:68:9: too many entries in 'users' (at most 64)" },
        { "categories:\n  names:\n    f:\n", "      - l%zu\n", "", CONFIG_MAX_NAMES,
          "t.yaml:68:9: too many entries in 'f' (at most 64)" },
    };
    char err[CONFIG_ERR_LEN];

    for (size_t i = 0; i < N_ELEMS(cases); i++) {
        char *text = repeat(cases[i].head, cases[i].fmt, cases[i].max, "");
        config_t *cfg;

        /* policies at their limit need the profiles they name */
        if (strstr(cases[i].fmt, "profiles") != NULL) {
            free(text);
            char *profiles = repeat("identity_profiles:\n", "  - { name: x%zu }\n",
                                    cases[i].max, "");
            char *policies = repeat(cases[i].head, cases[i].fmt, cases[i].max, "");
            text = malloc(strlen(profiles) + strlen(policies) + 1);
            cr_assert_not_null(text);
            strcpy(text, policies);
            strcat(text, profiles);
            free(profiles);
            free(policies);
        }
        cfg = load_str(text, err);
        cr_expect_not_null(cfg, "case %zu at its limit: %s", i, err);
        config_free(cfg);
        free(text);

        text = repeat(cases[i].head, cases[i].fmt, cases[i].max + 1, cases[i].tail);
        cfg = load_str(text, err);
        cr_expect_null(cfg, "case %zu", i);
        cr_expect_str_eq(err, cases[i].message, "case %zu", i);
        config_free(cfg);
        free(text);
    }
}
