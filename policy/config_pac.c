/*
 * policy/config_pac.c: the pac section (see config.h): what the generated
 * proxy auto-config file tells browsers: the proxy address for local and
 * for remote clients, the hosts that go DIRECT, how long it may be cached.
 * It only parses and validates; proxy/pac.c writes the file.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_load.h"

#define PAC_MAX_AGE_DEFAULT_MS 300000u

/* "host:port" (a name or an address, "[v6]:port"): what a PAC's PROXY takes. */
static int
h_proxy_addr(struct loader *ld, const struct key_def *def, void *base)
{
    char *field = (char *)base + def->offset;
    const char *colon;
    char q[SHOW_LEN];

    if (cl_string(ld, def, base) < 0)
        return -1;
    if (field[0] == '\0')
        return 0;
    colon = strrchr(field, ':');
    for (const char *p = field; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '.' || *p == '_' || *p == ':' || *p == '[' || *p == ']'))
            colon = NULL;
    if (colon == NULL || colon == field || colon[1] == '\0' ||
        strspn(colon + 1, "0123456789") != strlen(colon + 1) || strlen(colon + 1) > 5)
        return cl_fail(ld, ld->ev.start_mark, "invalid %s '%s' (use host:port)", def->name,
                       cl_show(q, field));
    return 0;
}

static int
item_direct(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_pac_t *p = base;
    cl_hosts_t h = {
        .domains = p->direct_domains, .n_domains = &p->n_direct_domains,
        .max_domains = CONFIG_PAC_DIRECT_MAX, .cidrs = p->direct_cidrs,
        .n_cidrs = &p->n_direct_cidrs, .max_cidrs = CONFIG_MAX_CIDRS,
    };

    (void)i;
    return cl_domain_or_prefix(ld, def->name, &h);
}

static int
h_direct(struct loader *ld, const struct key_def *def, void *base)
{
    config_pac_t *p = base;

    p->n_direct_domains = 0;
    p->n_direct_cidrs = 0;
    return cl_parse_list(ld, def, base, CONFIG_PAC_DIRECT_MAX + CONFIG_MAX_CIDRS, item_direct);
}

#define PAC_STR(key, field) { key, h_proxy_addr, offsetof(config_pac_t, field), \
                              sizeof(((config_pac_t *)0)->field), NULL }
static const struct key_def pac_keys[] = {
    { "enabled", cl_bool, offsetof(config_pac_t, enabled), 0, NULL },
    PAC_STR("proxy", proxy),
    PAC_STR("remote_proxy", remote_proxy),
    { "direct", h_direct, 0, 0, NULL },
    { "max_age", cl_duration, offsetof(config_pac_t, max_age), 0, NULL },
    { "fallback_direct", cl_bool, offsetof(config_pac_t, fallback_direct), 0, NULL },
};
#undef PAC_STR

const struct section config_pac_section = CL_SECTION("in pac", pac_keys);

void
config_pac_defaults(config_pac_t *p)
{
    memset(p, 0, sizeof(*p));
    p->enabled = true;
    p->max_age = PAC_MAX_AGE_DEFAULT_MS;
}
