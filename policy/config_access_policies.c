/*
 * policy/config_access_policies.c: the access_policies section (see
 * config.h): an ordered list of named policies, each naming the identity
 * profiles it applies to and deciding by category (category: action, or
 * { action, time }), CONNECT port and method, with a default action; the
 * default policy (no profiles) comes last. It only parses and validates
 * each policy; config.c resolves the profiles and time ranges it names once
 * the whole file is read, and policy/policy.c compiles them.
 */
#include <stddef.h>
#include <string.h>

#include "config_load.h"

#define ACTION_HINT   "(use allow, block or monitor)"

static const struct word action_words[] = {
    { "allow", CONFIG_ACT_ALLOW }, { "block", CONFIG_ACT_BLOCK }, { "monitor", CONFIG_ACT_MONITOR },
};
WORD_HANDLER(h_action, action_words, enum config_action)

/* A list that must not be empty when present. */
static int
not_empty(struct loader *ld, yaml_mark_t start, const char *key, size_t n, const char *absent)
{
    if (n == 0)
        return cl_fail(ld, start, "'%s' must not be empty (omit it %s)", key, absent);
    return 0;
}

static int
h_methods(struct loader *ld, const struct key_def *def, void *base)
{
    config_names_t *m = (config_names_t *)(void *)((char *)base + def->offset);
    yaml_mark_t start = ld->ev.start_mark;

    if (cl_parse_names(ld, def->name, CL_NAMES_METHOD, true, m) < 0)
        return -1;
    return not_empty(ld, start, def->name, m->n, "to allow any method");
}

static int
h_policy_ports(struct loader *ld, const struct key_def *def, void *base)
{
    yaml_mark_t start = ld->ev.start_mark;

    if (cl_port_list(ld, def, base) < 0)
        return -1;
    return not_empty(ld, start, def->name,
                     *(size_t *)(void *)((char *)base + def->count_offset),
                     "to use proxy.connect_ports");
}

/* ---- a policy's categories ---- */

static int
h_rule_time(struct loader *ld, const struct key_def *def, void *base)
{
    config_category_rule_t *r = base;
    const char *text = NULL;

    (void)def;
    if (cl_get_name(ld, "time range name", &text) < 0)
        return -1;
    return cl_push_ref(ld, REF_TIME, text, ld->ev.start_mark, 0, &r->time_range);
}

enum { RULE_KEY_ACTION = 0 };
static const struct key_def rule_keys[] = {
    [RULE_KEY_ACTION] = { "action", h_action, offsetof(config_category_rule_t, action), 0, NULL },
    { "time", h_rule_time, 0, 0, NULL },
};
static const struct section rule_section = CL_SECTION("in a category rule", rule_keys);

static void
rule_init(void *item)
{
    ((config_category_rule_t *)item)->time_range = -1;
}

/* A category's action: a word, or a mapping { action, time }. */
static int
rule_value(struct loader *ld, void *items, size_t i)
{
    config_category_rule_t *r = (config_category_rule_t *)items + i;
    yaml_mark_t vstart = ld->ev.start_mark;
    int v;

    if (ld->ev.type == YAML_MAPPING_START_EVENT) {
        uint64_t seen;
        if (cl_parse_mapping(ld, &rule_section, r, &seen) < 0)
            return -1;
        if (!(seen & (UINT64_C(1) << RULE_KEY_ACTION)))
            return cl_fail(ld, vstart, "category '%s' needs an 'action'", r->category);
        return 0;
    }
    if (ld->ev.type != YAML_SCALAR_EVENT || cl_is_null(&ld->ev))
        return cl_fail(ld, vstart,
                       "category '%s' needs an action " ACTION_HINT
                       " or a mapping { action, time }, got %s", r->category,
                       cl_kind_name(&ld->ev));
    if (cl_get_word(ld, "action", action_words, sizeof(action_words) / sizeof(action_words[0]),
                    &v) < 0)
        return -1;
    r->action = (enum config_action)v;
    return 0;
}

/* categories: { name: action | { action: ..., time: ... }, ... } */
static const struct cl_named_list rules_list = {
    CL_NAMED("category", config_category_rule_t, category, CONFIG_MAX_CATEGORY_RULES),
    .init = rule_init, .shape = "category: action", .name_what = "category name",
    .dup_names_key = true, .value = rule_value,
};

/* ---- a policy ---- */

static int
h_policy_profiles(struct loader *ld, const struct key_def *def, void *base)
{
    config_policy_t *pol = base;
    size_t index = (size_t)(pol - ld->cfg->pol.policies);

    if (cl_parse_names(ld, def->name, CL_NAMES_PLAIN, true, &pol->profiles) < 0)
        return -1;
    for (size_t i = 0; i < pol->profiles.n; i++)
        if (cl_push_ref(ld, REF_PROFILE, pol->profiles.names[i], ld->list_marks[i], index,
                        NULL) < 0)
            return -1;
    return 0;
}

enum { PO_KEY_NAME = 0 };
#define PO_OFF(f) offsetof(config_policy_t, f)
static const struct key_def policy_keys[] = {
    [PO_KEY_NAME] = { "name", cl_entry_name, PO_OFF(name), CONFIG_NAME_LEN, NULL },
    { "profiles", h_policy_profiles, 0, 0, NULL },
    { "categories", cl_named_list, PO_OFF(rules), PO_OFF(n_rules), NULL, &rules_list },
    { "default", h_action, PO_OFF(default_action), 0, NULL },
    { "connect_ports", h_policy_ports, PO_OFF(connect_ports), PO_OFF(n_connect_ports), NULL },
    { "methods", h_methods, PO_OFF(methods), 0, NULL },
};
#undef PO_OFF
static const struct section policy_section = CL_SECTION("in an access_policies entry", policy_keys);

static void
policy_init(void *item)
{
    ((config_policy_t *)item)->default_action = CONFIG_ACT_ALLOW;
}

/* The default policy (no profiles) must be the last one. */
static int
policy_check(struct loader *ld, void *items, size_t i, uint64_t seen, yaml_mark_t start)
{
    const config_policy_t *pol = items;

    (void)seen;
    (void)start;
    if (i > 0 && pol[i - 1].profiles.n == 0)
        return cl_fail(ld, ld->name_mark, "policy '%s' comes after the default policy '%s'",
                       pol[i].name, pol[i - 1].name);
    return 0;
}

const struct cl_named_list config_policies_list = {
    CL_NAMED("access policy", config_policy_t, name, CONFIG_MAX_POLICIES),
    .init = policy_init, .sec = &policy_section, .unique_at = CL_UNIQUE_AT_NAME,
    .check = policy_check,
};
