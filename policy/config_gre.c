/*
 * policy/config_gre.c: the gre section (see config.h): musproxy's own
 * decapsulation of WCCP GRE for kernels without ip_gre: whether it runs,
 * the TUN device it creates (name, IPv4 address, MTU) and the routers whose
 * GRE packets it accepts (numeric IPv4 router IDs, the GRE source
 * addresses). It only parses and validates; proxy/gre.c opens the socket
 * and the device.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_load.h"

#define GRE_TUN_DEFAULT     "wccp0"
#define GRE_MTU_MIN         68      /* the IPv4 minimum */
#define GRE_MTU_MAX         65535

/* A dotted-quad IPv4 address (inet_pton: exactly four decimal parts). */
static int
parse_ipv4(const char *text, uint32_t *out)
{
    struct in_addr a;

    if (inet_pton(AF_INET, text, &a) != 1)
        return -1;
    *out = a.s_addr;
    return 0;
}

static int
h_tun(struct loader *ld, const struct key_def *def, void *base)
{
    config_gre_t *g = base;
    const char *text = NULL;
    char q[SHOW_LEN];
    size_t n;

    (void)def;
    if (cl_get_scalar(ld, "'tun'", &text) < 0)
        return -1;
    n = strlen(text);
    if (n == 0 || n >= CONFIG_GRE_TUN_LEN)
        return cl_fail(ld, ld->ev.start_mark, "'tun' must be 1-%d characters, got '%s'",
                       CONFIG_GRE_TUN_LEN - 1, cl_show(q, text));
    for (size_t i = 0; i < n; i++) {
        char c = text[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return cl_fail(ld, ld->ev.start_mark,
                           "'tun' '%s' is not an interface name (letters, digits, '-', '_', '.')",
                           cl_show(q, text));
    }
    if (strcmp(text, ".") == 0 || strcmp(text, "..") == 0)
        return cl_fail(ld, ld->ev.start_mark, "'tun' cannot be '%s'", text);
    memcpy(g->tun, text, n + 1);
    return 0;
}

/* "A.B.C.D" or "A.B.C.D/LEN"; "" or off: no address. */
static int
h_address(struct loader *ld, const struct key_def *def, void *base)
{
    config_gre_t *g = base;
    const char *text = NULL;
    char buf[32], q[SHOW_LEN], *slash;
    unsigned long len = 32;

    (void)def;
    if (cl_get_scalar(ld, "'address'", &text) < 0)
        return -1;
    if (text[0] == '\0' || strcmp(text, "off") == 0) {
        g->address = 0;
        g->prefix = 32;
        return 0;
    }
    if (strlen(text) >= sizeof(buf))
        goto bad;
    snprintf(buf, sizeof(buf), "%s", text);
    slash = strchr(buf, '/');
    if (slash != NULL) {
        *slash = '\0';
        if (cl_parse_uint(slash + 1, 32, &len) < 0 || len == 0)
            goto bad;
    }
    if (parse_ipv4(buf, &g->address) < 0 || g->address == 0)
        goto bad;
    g->prefix = (uint8_t)len;
    return 0;
bad:
    return cl_fail(ld, ld->ev.start_mark,
                   "'address' '%s' is not an IPv4 address with an optional /length (e.g. 10.255.0.1/32)",
                   cl_show(q, text));
}

static int
item_router(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_gre_t *g = base;
    const char *text = NULL;
    char q[SHOW_LEN];
    uint32_t a;

    (void)def;
    if (cl_get_scalar(ld, "'routers' entry", &text) < 0)
        return -1;
    if (parse_ipv4(text, &a) < 0 || a == 0 || a == INADDR_BROADCAST)
        return cl_fail(ld, ld->ev.start_mark,
                       "'routers' entry '%s' is not a numeric IPv4 address (the router ID)",
                       cl_show(q, text));
    for (size_t k = 0; k < i; k++)
        if (g->routers[k] == a)
            return cl_fail(ld, ld->ev.start_mark, "'routers' lists %s twice", cl_show(q, text));
    g->routers[i] = a;
    g->n_routers = i + 1;
    return 0;
}

static int
h_routers(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_gre_t *)base)->n_routers = 0;
    return cl_parse_list(ld, def, base, CONFIG_GRE_MAX_ROUTERS, item_router);
}

static int
h_mtu(struct loader *ld, const struct key_def *def, void *base)
{
    const char *text = NULL;
    unsigned long v;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'mtu'", &text) < 0)
        return -1;
    if (cl_parse_uint(text, GRE_MTU_MAX, &v) < 0 || v < GRE_MTU_MIN)
        return cl_fail(ld, ld->ev.start_mark, "invalid mtu '%s' (use %d-%d)", cl_show(q, text),
                       GRE_MTU_MIN, GRE_MTU_MAX);
    ((config_gre_t *)base)->mtu = (uint32_t)v;
    return 0;
}

static const struct key_def gre_keys[] = {
    { "enabled", cl_bool, offsetof(config_gre_t, enabled), 0, NULL },
    { "tun", h_tun, 0, 0, NULL },
    { "address", h_address, 0, 0, NULL },
    { "routers", h_routers, 0, 0, NULL },
    { "mtu", h_mtu, 0, 0, NULL },
};

static const struct section gre_section = CL_SECTION("in gre", gre_keys);

/* The section, then what needs the whole of it: enabled needs routers (the
 * WCCP agent's router list could stand in later; for now it is explicit). */
int
config_gre_key(struct loader *ld, const struct key_def *def, void *base)
{
    config_gre_t *g = (config_gre_t *)(void *)((char *)base + def->offset);
    yaml_mark_t start = ld->ev.start_mark;

    if (cl_is_null(&ld->ev))
        return 0;
    if (ld->ev.type != YAML_MAPPING_START_EVENT)
        return cl_fail(ld, start, "'gre' must be a mapping, got %s", cl_kind_name(&ld->ev));
    if (cl_parse_mapping(ld, &gre_section, g, NULL) < 0)
        return -1;
    if (g->enabled && g->n_routers == 0)
        return cl_fail(ld, start, "gre: enabled: true needs 'routers' (the router IDs whose GRE "
                       "is accepted)");
    return 0;
}

void
config_gre_defaults(config_gre_t *g)
{
    memset(g, 0, sizeof(*g));
    snprintf(g->tun, sizeof(g->tun), "%s", GRE_TUN_DEFAULT);
    g->prefix = 32;
    g->mtu = CONFIG_GRE_MTU_DEFAULT;
}
