/*
 * policy/config_names.c: names and lists of names. A name (of a profile, a
 * policy, a time range, a category, a headend, ...) is letters, digits, '-',
 * '.' and '_'; a list of names (users, groups, methods, profiles, list
 * categories, a custom category's domains, url_prefixes and regexes) is
 * checked entry by entry for its kind, optionally for repeats, and stored in
 * the config's pool. It does not know which section a list belongs to, nor
 * whether a name refers to something defined elsewhere (config.c checks
 * references once the whole file is read).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_load.h"

#define IDENTITY_MAX  255     /* user and group names */
#define METHOD_MAX    32
#define DOMAIN_MAX    253
#define URL_PREFIX_MAX 2048
#define REGEX_MAX     (sizeof(((config_profile_t *)0)->user_agent) - 1)

/* True if s is made of letters, digits, '-', '.' and '_' only. */
static bool
name_chars(const char *s)
{
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

static bool
is_name(const char *s)
{
    size_t len = strlen(s);

    return len > 0 && len < CONFIG_NAME_LEN && name_chars(s);
}

static bool
has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

int
cl_get_name(struct loader *ld, const char *what, const char **out)
{
    char q[SHOW_LEN];

    if (cl_get_scalar(ld, what, out) < 0)
        return -1;
    if (!is_name(*out))
        return cl_fail(ld, ld->ev.start_mark, "invalid %s '%s' " CL_NAME_HINT, what,
                       cl_show(q, *out));
    return 0;
}

int
cl_name(struct loader *ld, const struct key_def *def, void *base)
{
    char *field = (char *)base + def->offset;
    char q[SHOW_LEN];

    if (cl_string(ld, def, base) < 0)
        return -1;
    if (!name_chars(field))
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid %s '%s' (letters, digits, '-', '.' or '_')", def->name,
                       cl_show(q, field));
    if (field[0] == '\0')
        return cl_fail(ld, ld->ev.start_mark, "'%s' must not be empty", def->name);
    return 0;
}

/* ---- lists of names ---- */

struct names_ctx {
    enum cl_name_kind kind;
    bool unique;
    size_t n;               /* entries stored in ld->scratch */
};

static char *
pool_strdup(struct loader *ld, const char *s)
{
    size_t len = strlen(s);
    char *p = cl_pool_alloc(ld, len + 1, 1);

    if (p != NULL)
        memcpy(p, s, len + 1);
    return p;
}

/* NULL if text is a valid entry of that kind, else the hint for the message. */
static const char *
check_entry(enum cl_name_kind kind, char *text)
{
    size_t len = strlen(text);

    switch (kind) {
    case CL_NAMES_PLAIN:
        return is_name(text) ? NULL : "is not a valid name " CL_NAME_HINT;
    case CL_NAMES_IDENTITY:
        if (len == 0 || len > IDENTITY_MAX || has_control(text) || strchr(text, ',') ||
            text[0] == ' ' || text[len - 1] == ' ')
            return "is not a valid user or group name (1-255 bytes, no ',', control "
                   "characters or surrounding spaces)";
        return NULL;
    case CL_NAMES_METHOD:
        if (len == 0 || len > METHOD_MAX)
            return "is not a method (1-32 uppercase letters, e.g. GET)";
        for (size_t i = 0; i < len; i++)
            if (text[i] < 'A' || text[i] > 'Z')
                return "is not a method (1-32 uppercase letters, e.g. GET)";
        return NULL;
    case CL_NAMES_DOMAIN:
        if (len == 0 || len > DOMAIN_MAX || text[0] == '.' || text[len - 1] == '.' ||
            strstr(text, "..") != NULL)
            goto bad_domain;
        for (size_t i = 0; i < len; i++) {
            char c = text[i];
            if (c >= 'A' && c <= 'Z')
                text[i] = (char)(c + 32);
            else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                       c == '.' || c == '_'))
                goto bad_domain;
        }
        return NULL;
    bad_domain:
        return "is not a domain name (e.g. example.com; it matches its subdomains too)";
    case CL_NAMES_URL_PREFIX:
        if ((strncmp(text, "http://", 7) != 0 && strncmp(text, "https://", 8) != 0) ||
            len > URL_PREFIX_MAX || len == (text[4] == 's' ? 8u : 7u))
            goto bad_prefix;
        for (size_t i = 0; i < len; i++)
            if ((unsigned char)text[i] <= 0x20 || text[i] == 0x7f)
                goto bad_prefix;
        return NULL;
    bad_prefix:
        return "is not a URL prefix (http://host/path or https://host/path, no spaces, "
               "at most 2048 bytes)";
    case CL_NAMES_REGEX:
        if (len == 0 || len > REGEX_MAX || has_control(text))
            return "is not a valid regex (1-1023 bytes, no control characters)";
        return NULL;
    }
    return "is not valid";
}

static int
item_names(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    struct names_ctx *ctx = base;
    char what[96], q[SHOW_LEN];
    const char *text = NULL, *hint = NULL;
    char *copy;

    snprintf(what, sizeof(what), "'%s' entry", def->name);
    if (cl_get_scalar(ld, what, &text) < 0)
        return -1;
    copy = pool_strdup(ld, text);
    if (copy == NULL)
        return -1;
    hint = check_entry(ctx->kind, copy);
    if (hint != NULL)
        return cl_fail(ld, ld->ev.start_mark, "'%s' entry '%s' %s", def->name, cl_show(q, text), hint);
    if (ctx->unique) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(ld->scratch[j], copy) == 0)
                return cl_fail(ld, ld->ev.start_mark, "duplicate '%s' entry '%s'", def->name,
                               cl_show(q, copy));
        ld->list_marks[i] = ld->ev.start_mark;
    }
    ld->scratch[i] = copy;
    ctx->n = i + 1;
    return 0;
}

int
cl_parse_names(struct loader *ld, const char *name, enum cl_name_kind kind, bool unique,
               config_names_t *out)
{
    const struct key_def def = { name, NULL, 0, 0, NULL };
    struct names_ctx ctx = { kind, unique, 0 };
    size_t max = unique ? CONFIG_MAX_NAMES : CONFIG_MAX_CUSTOM_ENTRIES, n;

    if (ld->scratch == NULL) {
        ld->scratch = calloc(CONFIG_MAX_CUSTOM_ENTRIES, sizeof(*ld->scratch));
        if (ld->scratch == NULL)
            return cl_fail(ld, ld->ev.start_mark, "out of memory");
    }
    out->n = 0;
    out->names = NULL;
    if (cl_parse_list(ld, &def, &ctx, max, item_names) < 0)
        return -1;
    n = ctx.n;
    if (n == 0)
        return 0;
    out->names = cl_pool_alloc(ld, n * sizeof(char *), _Alignof(char *));
    if (out->names == NULL)
        return -1;
    memcpy(out->names, ld->scratch, n * sizeof(char *));
    out->n = n;
    return 0;
}
