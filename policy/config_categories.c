/*
 * policy/config_categories.c: the categories section (see config.h): the
 * category database musctl imports, and the friendly category names
 * (categories.names), each standing for one or more list categories of that
 * database. It only parses and validates; config.c checks that no friendly
 * name is also a custom category, and policy/ opens the database and checks
 * the list category names against it.
 */
#include <stddef.h>

#include "config_load.h"

/* A friendly name's list categories: at least one. */
static int
friendly_value(struct loader *ld, void *items, size_t i)
{
    config_friendly_t *f = (config_friendly_t *)items + i;
    yaml_mark_t vstart = ld->ev.start_mark;

    ld->friendly_marks[i] = ld->key_mark;
    if (cl_parse_names(ld, f->name, CL_NAMES_PLAIN, true, &f->lists) < 0)
        return -1;
    if (f->lists.n == 0)
        return cl_fail(ld, vstart, "category '%s' must name at least one list category",
                       f->name);
    return 0;
}

/* names: { friendly: [list, ...], ... } */
static const struct cl_named_list friendly_list = {
    CL_NAMED("category name", config_friendly_t, name, CONFIG_MAX_FRIENDLY),
    .shape = "name: [list categories]", .name_what = "category name", .dup_names_key = true,
    .value = friendly_value,
};

#define PS_OFF(f) offsetof(config_policies_t, f)
static const struct key_def categories_keys[] = {
    { "database", cl_path_off, PS_OFF(category_db), sizeof(((config_policies_t *)0)->category_db),
      NULL },
    { "names", cl_named_list, PS_OFF(friendly), PS_OFF(n_friendly), NULL, &friendly_list },
};
#undef PS_OFF

const struct section config_categories_section = CL_SECTION("in categories", categories_keys);
