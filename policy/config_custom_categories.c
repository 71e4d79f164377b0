/*
 * policy/config_custom_categories.c: the custom_categories section (see
 * config.h): a list of named categories defined in the file itself, each by
 * domains (and their subdomains), URL prefixes and regexes, at least one of
 * them. It only parses and validates each category; config.c checks that no
 * custom category shares a name with categories.names, and policy/policy.c
 * compiles the lists (the regexes with PCRE2).
 */
#include <stddef.h>

#include "config_load.h"

NAMES_HANDLER(h_domains, CL_NAMES_DOMAIN, false)
NAMES_HANDLER(h_url_prefixes, CL_NAMES_URL_PREFIX, false)
NAMES_HANDLER(h_regexes, CL_NAMES_REGEX, false)

enum { CC_KEY_NAME = 0 };
#define CC_OFF(f) offsetof(config_custom_category_t, f)
static const struct key_def custom_keys[] = {
    [CC_KEY_NAME] = { "name", cl_entry_name, CC_OFF(name), CONFIG_NAME_LEN, NULL },
    { "domains", h_domains, CC_OFF(domains), 0, NULL },
    { "url_prefixes", h_url_prefixes, CC_OFF(url_prefixes), 0, NULL },
    { "regexes", h_regexes, CC_OFF(regexes), 0, NULL },
};
#undef CC_OFF
static const struct section custom_section =
    CL_SECTION("in a custom_categories entry", custom_keys);

/* Something to match; the name's position is kept for the clash with
 * categories.names. */
static int
custom_check(struct loader *ld, void *items, size_t i, uint64_t seen, yaml_mark_t start)
{
    const config_custom_category_t *c = (const config_custom_category_t *)items + i;

    (void)seen;
    if (c->domains.n == 0 && c->url_prefixes.n == 0 && c->regexes.n == 0)
        return cl_fail(ld, start, "custom category '%s' has no domains, url_prefixes or regexes",
                       c->name);
    ld->custom_marks[i] = ld->name_mark;
    return 0;
}

const struct cl_named_list config_custom_list = {
    CL_NAMED("custom category", config_custom_category_t, name, CONFIG_MAX_CUSTOM_CATS),
    .sec = &custom_section, .unique_at = CL_UNIQUE_AT_NAME, .check = custom_check,
};
