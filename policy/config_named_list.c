/*
 * policy/config_named_list.c: lists of named entries, the shape the policy
 * sections and mus.headends share: entries unique by name, at most a named
 * limit (CONFIG_MAX_*), each parsed into one element of a fixed array of the
 * config_t and counted. Two spellings:
 *   - a list of mappings, each with a 'name' key: identity_profiles,
 *     access_policies, custom_categories, mus.headends;
 *   - a mapping of name: value: time_ranges, categories.names, a policy's
 *     categories.
 * It owns the loop, the limit, the uniqueness test and their messages; what
 * an entry holds, its defaults and its own checks come from the section's
 * struct cl_named_list. It does not resolve names used by other sections
 * (config.c does that once the whole file is read).
 */
#include <string.h>

#include "config_load.h"

/* Where the entries go: the array, its count and their description. */
struct named_ctx {
    const struct cl_named_list *spec;
    char *items;
    size_t *n;
};

static char *
item_at(const struct named_ctx *c, size_t i)
{
    return c->items + i * c->spec->item_size;
}

/* True if one of the first n entries is called name. */
static bool
name_taken(const struct named_ctx *c, size_t n, const char *name)
{
    for (size_t j = 0; j < n; j++)
        if (strcmp(item_at(c, j) + c->spec->name_offset, name) == 0)
            return true;
    return false;
}

/* Entry i, zeroed and given its defaults. */
static char *
fresh_item(const struct named_ctx *c, size_t i)
{
    char *item = item_at(c, i);

    memset(item, 0, c->spec->item_size);
    if (c->spec->init != NULL)
        c->spec->init(item);
    return item;
}

int
cl_entry_name(struct loader *ld, const struct key_def *def, void *base)
{
    if (cl_name(ld, def, base) < 0)
        return -1;
    ld->name_mark = ld->ev.start_mark;
    return 0;
}

/* One entry of a list of mappings: its keys, its name, its own checks. */
static int
item_entry(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    const struct named_ctx *c = base;
    const struct cl_named_list *spec = c->spec;
    char *item = fresh_item(c, i);
    const char *name = item + spec->name_offset;
    yaml_mark_t start = ld->ev.start_mark;
    uint64_t seen;

    if (ld->ev.type != YAML_MAPPING_START_EVENT)
        return cl_fail(ld, start, "'%s' entries must be mappings, got %s", def->name,
                       cl_kind_name(&ld->ev));
    if (cl_parse_mapping(ld, spec->sec, item, &seen) < 0)
        return -1;
    if (!(seen & UINT64_C(1)))
        return cl_fail(ld, start, "%s entry has no 'name'", spec->noun);
    if (spec->unique_at == CL_UNIQUE_AT_NAME && name_taken(c, i, name))
        return cl_fail(ld, ld->name_mark, "duplicate %s name '%s'", spec->noun, name);
    if (spec->check != NULL && spec->check(ld, c->items, i, seen, start) < 0)
        return -1;
    if (spec->unique_at == CL_UNIQUE_AT_ENTRY && name_taken(c, i, name))
        return cl_fail(ld, start, "duplicate %s name '%s'", spec->noun, name);
    *c->n = i + 1;
    return 0;
}

/* A mapping of name: value; an empty value is an empty list. */
static int
named_mapping(struct loader *ld, const struct key_def *def, const struct named_ctx *c)
{
    const struct cl_named_list *spec = c->spec;
    char q[SHOW_LEN];

    if (cl_is_null(&ld->ev))
        return 0;
    if (ld->ev.type != YAML_MAPPING_START_EVENT)
        return cl_fail(ld, ld->ev.start_mark, "'%s' must be a mapping of %s, got %s", def->name,
                       spec->shape, cl_kind_name(&ld->ev));
    for (;;) {
        yaml_mark_t name_mark;
        const char *name;
        char *item;

        if (cl_next_event(ld) < 0)
            return -1;
        if (ld->ev.type == YAML_MAPPING_END_EVENT)
            return 0;
        if (cl_get_name(ld, spec->name_what, &name) < 0)
            return -1;
        name_mark = ld->ev.start_mark;
        if (name_taken(c, *c->n, name)) {
            if (spec->dup_names_key)
                return cl_fail(ld, name_mark, "duplicate %s '%s' in '%s'", spec->noun,
                               cl_show(q, name), def->name);
            return cl_fail(ld, name_mark, "duplicate %s '%s'", spec->noun, cl_show(q, name));
        }
        if (*c->n == spec->limit)
            return cl_fail(ld, name_mark, "too many entries in '%s' (at most %zu)", def->name,
                           spec->limit);
        item = fresh_item(c, *c->n);
        memcpy(item + spec->name_offset, name, strlen(name) + 1);   /* < CONFIG_NAME_LEN */
        ld->key_mark = name_mark;
        if (cl_next_event(ld) < 0)
            return -1;
        if (spec->value(ld, c->items, *c->n) < 0)
            return -1;
        (*c->n)++;
    }
}

int
cl_named_list(struct loader *ld, const struct key_def *def, void *base)
{
    struct named_ctx c = {
        def->list, (char *)base + def->offset,
        (size_t *)(void *)((char *)base + def->count_offset),
    };

    *c.n = 0;
    if (c.spec->sec == NULL)
        return named_mapping(ld, def, &c);
    return cl_parse_list(ld, def, &c, c.spec->limit, item_entry);
}
