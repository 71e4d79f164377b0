/*
 * policy/config_run.c: the run section (see config.h): the user and group
 * musproxy switches to when started as root, and the capabilities it keeps
 * after the switch (or after starting unprivileged with ambient
 * capabilities). It only parses and validates the names; it does not look
 * the user up, and proxy/privdrop.c does the switching.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_load.h"

static const struct word cap_words[] = {
    { "net_admin", CONFIG_CAP_NET_ADMIN },
    { "net_raw", CONFIG_CAP_NET_RAW },
    { "net_bind_service", CONFIG_CAP_NET_BIND_SERVICE },
};

/* A user or group name: letters, digits, '_', '-', '.', not starting with
 * '-' (what useradd accepts, and nothing a shell or a log could misread).
 * "" = do not switch (user) or the user's primary group (group). */
static int
h_account(struct loader *ld, const struct key_def *def, void *base)
{
    char *field = (char *)base + def->offset;
    char q[SHOW_LEN];

    if (cl_string(ld, def, base) < 0)
        return -1;
    for (const char *p = field; *p != '\0'; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                  (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || (*p == '-' && p != field);
        if (!ok)
            return cl_fail(ld, ld->ev.start_mark,
                           "invalid %s name '%s' (letters, digits, '_', '-', '.')", def->name,
                           cl_show(q, field));
    }
    return 0;
}

static int
item_cap(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_run_t *r = base;
    int v;

    (void)i;
    if (cl_get_word(ld, def->name, cap_words, sizeof(cap_words) / sizeof(cap_words[0]), &v) < 0)
        return -1;
    r->keep_caps |= (unsigned)v;
    return 0;
}

/* auto (the default: what the listeners need, proxy/privdrop.c) or a list
 * of capability names, [] = none. */
static int
h_keep_caps(struct loader *ld, const struct key_def *def, void *base)
{
    config_run_t *r = base;
    char q[SHOW_LEN];

    r->keep_caps = 0;
    r->caps_auto = false;
    if (ld->ev.type == YAML_SCALAR_EVENT && !cl_is_null(&ld->ev)) {
        const char *text = (const char *)ld->ev.data.scalar.value;
        if (strcmp(text, "auto") == 0) {
            r->caps_auto = true;
            return 0;
        }
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid keep_capabilities '%s' (use auto or a list of net_admin, "
                       "net_raw, net_bind_service)", cl_show(q, text));
    }
    return cl_parse_list(ld, def, base, sizeof(cap_words) / sizeof(cap_words[0]) * 4, item_cap);
}

static const struct key_def run_keys[] = {
    { "user", h_account, offsetof(config_run_t, user), sizeof(((config_run_t *)0)->user), NULL },
    { "group", h_account, offsetof(config_run_t, group), sizeof(((config_run_t *)0)->group), NULL },
    { "keep_capabilities", h_keep_caps, 0, 0, NULL },
};

const struct section config_run_section = CL_SECTION("in run", run_keys);

void
config_run_defaults(config_run_t *r)
{
    memset(r, 0, sizeof(*r));
    r->caps_auto = true;
}

const char *
config_cap_name(unsigned cap)
{
    for (size_t i = 0; i < sizeof(cap_words) / sizeof(cap_words[0]); i++)
        if ((unsigned)cap_words[i].value == cap)
            return cap_words[i].word;
    return "?";
}
