/*
 * policy/config_wccp.c: the wccp section (see config.h): the routers musproxy
 * registers with as a WCCPv2 cache engine, its address and weight, the file
 * holding the MD5 group password (the path only: the password itself is
 * read by proxy/wccp.c and never appears here or in a message), the methods
 * it accepts in preference order, and the service groups (the standard
 * web-cache service 0, or dynamic ones with ports, protocol, priority and
 * hash flags). It only parses and validates; proxy/wccp.c runs the protocol.
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_load.h"

#define WCCP_WEIGHT_DEFAULT 100u
#define WCCP_WEIGHT_MAX     65535u

static const struct word method_words[] = {
    { "gre", CONFIG_WCCP_GRE }, { "l2", CONFIG_WCCP_L2 },
};
static const struct word assign_words[] = {
    { "hash", CONFIG_WCCP_HASH }, { "mask", CONFIG_WCCP_MASK },
};
static const struct word protocol_words[] = {
    { "tcp", 6 }, { "udp", 17 },
};
static const struct word flag_words[] = {
    { "src_ip_hash", CONFIG_WCCP_F_SRC_IP_HASH },
    { "dst_ip_hash", CONFIG_WCCP_F_DST_IP_HASH },
    { "src_port_hash", CONFIG_WCCP_F_SRC_PORT_HASH },
    { "dst_port_hash", CONFIG_WCCP_F_DST_PORT_HASH },
    { "ports_source", CONFIG_WCCP_F_PORTS_SOURCE },
    { "src_ip_alt_hash", CONFIG_WCCP_F_SRC_IP_ALT_HASH },
    { "dst_ip_alt_hash", CONFIG_WCCP_F_DST_IP_ALT_HASH },
    { "src_port_alt_hash", CONFIG_WCCP_F_SRC_PORT_ALT_HASH },
    { "dst_port_alt_hash", CONFIG_WCCP_F_DST_PORT_ALT_HASH },
};

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* A numeric IPv4 address (host order), not 0.0.0.0. */
static int
get_ipv4(struct loader *ld, const char *what, uint32_t *out)
{
    const char *text = NULL;
    struct in_addr a;
    char q[SHOW_LEN];

    if (cl_get_scalar(ld, what, &text) < 0)
        return -1;
    if (inet_pton(AF_INET, text, &a) != 1 || a.s_addr == 0)
        return cl_fail(ld, ld->ev.start_mark, "%s '%s' is not a numeric IPv4 address", what,
                       cl_show(q, text));
    *out = ntohl(a.s_addr);
    return 0;
}

static int
item_router(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_wccp_t *w = base;
    uint32_t ip = 0;

    (void)def;
    if (get_ipv4(ld, "'routers' entry", &ip) < 0)
        return -1;
    for (size_t k = 0; k < i; k++)
        if (w->routers[k] == ip)
            return cl_fail(ld, ld->ev.start_mark, "router listed twice in 'routers'");
    w->routers[i] = ip;
    w->n_routers = i + 1;
    return 0;
}

static int
h_routers(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_wccp_t *)base)->n_routers = 0;
    return cl_parse_list(ld, def, base, CONFIG_WCCP_MAX_ROUTERS, item_router);
}

static int
h_address(struct loader *ld, const struct key_def *def, void *base)
{
    (void)def;
    return get_ipv4(ld, "'address'", &((config_wccp_t *)base)->address);
}

/* An unsigned number into a field of 8 or 16 bits at def->offset. */
static int
get_uint(struct loader *ld, const char *name, unsigned long max, unsigned long *v)
{
    const char *text = NULL;
    char what[64], q[SHOW_LEN];

    snprintf(what, sizeof(what), "'%s'", name);
    if (cl_get_scalar(ld, what, &text) < 0)
        return -1;
    if (cl_parse_uint(text, max, v) < 0)
        return cl_fail(ld, ld->ev.start_mark, "invalid %s '%s' (use 0-%lu)", name,
                       cl_show(q, text), max);
    return 0;
}

static int
h_weight(struct loader *ld, const struct key_def *def, void *base)
{
    unsigned long v;

    if (get_uint(ld, def->name, WCCP_WEIGHT_MAX, &v) < 0)
        return -1;
    ((config_wccp_t *)base)->weight = (uint16_t)v;
    return 0;
}

/* A method list (words of def->sub's table): at least one, no repeats. The
 * table is chosen by name: assignment takes hash/mask, the others gre/l2. */
static int
item_method(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    uint8_t *list = (uint8_t *)base + def->offset;
    bool assign = strcmp(def->name, "assignment") == 0;
    int v;

    if (cl_get_word(ld, def->name, assign ? assign_words : method_words,
                    assign ? N_OF(assign_words) : N_OF(method_words), &v) < 0)
        return -1;
    for (size_t k = 0; k < i; k++)
        if (list[k] == v)
            return cl_fail(ld, ld->ev.start_mark, "method listed twice in '%s'", def->name);
    list[i] = (uint8_t)v;
    *(size_t *)(void *)((char *)base + def->count_offset) = i + 1;
    return 0;
}

static int
h_methods(struct loader *ld, const struct key_def *def, void *base)
{
    yaml_mark_t start = ld->ev.start_mark;

    *(size_t *)(void *)((char *)base + def->count_offset) = 0;
    if (cl_parse_list(ld, def, base, CONFIG_WCCP_METHODS, item_method) < 0)
        return -1;
    if (*(size_t *)(void *)((char *)base + def->count_offset) == 0)
        return cl_fail(ld, start, "'%s' needs at least one method", def->name);
    return 0;
}

/* ---- a service ---- */

/* A number 0-255 into the uint8_t at def->offset (id, priority). */
static int
h_u8(struct loader *ld, const struct key_def *def, void *base)
{
    unsigned long v;

    if (get_uint(ld, def->name, 255, &v) < 0)
        return -1;
    *((uint8_t *)base + def->offset) = (uint8_t)v;
    return 0;
}

WORD_HANDLER(h_svc_protocol, protocol_words, uint8_t)

static int
item_port(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_wccp_service_t *s = base;
    unsigned long v;

    (void)def;
    if (get_uint(ld, "port", 65535, &v) < 0)
        return -1;
    if (v == 0)
        return cl_fail(ld, ld->ev.start_mark, "port 0 in 'ports'");
    s->ports[i] = (uint16_t)v;
    s->n_ports = i + 1;
    return 0;
}

static int
h_svc_ports(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_wccp_service_t *)base)->n_ports = 0;
    return cl_parse_list(ld, def, base, CONFIG_WCCP_PORTS, item_port);
}

static int
item_flag(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    int v;

    (void)i;
    if (cl_get_word(ld, def->name, flag_words, N_OF(flag_words), &v) < 0)
        return -1;
    ((config_wccp_service_t *)base)->flags |= (uint32_t)v;
    return 0;
}

static int
h_svc_flags(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_wccp_service_t *)base)->flags = 0;
    return cl_parse_list(ld, def, base, N_OF(flag_words), item_flag);
}

enum { SVC_ID = 0, SVC_PORTS, SVC_PROTOCOL, SVC_PRIORITY, SVC_FLAGS };

static const struct key_def service_keys[] = {
    [SVC_ID] = { "id", h_u8, offsetof(config_wccp_service_t, id), 0, NULL },
    [SVC_PORTS] = { "ports", h_svc_ports, 0, 0, NULL },
    [SVC_PROTOCOL] = { "protocol", h_svc_protocol, offsetof(config_wccp_service_t, protocol), 0,
                       NULL },
    [SVC_PRIORITY] = { "priority", h_u8, offsetof(config_wccp_service_t, priority), 0, NULL },
    [SVC_FLAGS] = { "flags", h_svc_flags, 0, 0, NULL },
};
static const struct section service_section = CL_SECTION("in a wccp.services entry", service_keys);

static int
item_service(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_wccp_t *w = base;
    config_wccp_service_t *s = &w->services[i];
    yaml_mark_t start = ld->ev.start_mark;
    uint64_t seen = 0;

    (void)def;
    if (ld->ev.type != YAML_MAPPING_START_EVENT)
        return cl_fail(ld, start, "'services' entries must be mappings ({ id: 0 }), got %s",
                       cl_kind_name(&ld->ev));
    memset(s, 0, sizeof(*s));
    s->protocol = 6;
    s->flags = CONFIG_WCCP_F_DST_IP_HASH;
    if (cl_parse_mapping(ld, &service_section, s, &seen) < 0)
        return -1;
    if (!(seen & (UINT64_C(1) << SVC_ID)))
        return cl_fail(ld, start, "wccp service entry has no 'id'");
    if (s->id == 0) {
        if (seen != (UINT64_C(1) << SVC_ID))
            return cl_fail(ld, start, "service 0 is the standard web-cache service: it takes "
                                      "no ports, protocol, priority or flags");
        s->dynamic = false;
        s->protocol = 0;
        s->flags = 0;
    } else {
        s->dynamic = true;
        if (s->n_ports > 0)
            s->flags |= CONFIG_WCCP_F_PORTS_DEFINED;
        else if (s->flags & CONFIG_WCCP_F_PORTS_SOURCE)
            return cl_fail(ld, start, "flag ports_source needs 'ports'");
        if ((s->flags & 0x0f0fu) == 0)
            return cl_fail(ld, start, "a dynamic service needs at least one *_hash flag");
    }
    for (size_t k = 0; k < i; k++)
        if (w->services[k].id == s->id)
            return cl_fail(ld, start, "service %u listed twice in 'services'", s->id);
    w->n_services = i + 1;
    return 0;
}

static int
h_services(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_wccp_t *)base)->n_services = 0;
    return cl_parse_list(ld, def, base, CONFIG_WCCP_MAX_SERVICES, item_service);
}

enum { K_ROUTERS = 0, K_ADDRESS, K_WEIGHT, K_PASSWORD, K_FWD, K_RET, K_ASSIGN, K_SERVICES };

static const struct key_def wccp_keys[] = {
    [K_ROUTERS] = { "routers", h_routers, 0, 0, NULL },
    [K_ADDRESS] = { "address", h_address, 0, 0, NULL },
    [K_WEIGHT] = { "weight", h_weight, 0, 0, NULL },
    [K_PASSWORD] = { "password_file", cl_path_off, offsetof(config_wccp_t, password_file),
                     sizeof(((config_wccp_t *)0)->password_file), NULL },
    [K_FWD] = { "forwarding", h_methods, offsetof(config_wccp_t, forwarding),
                offsetof(config_wccp_t, n_forwarding), NULL },
    [K_RET] = { "return", h_methods, offsetof(config_wccp_t, ret),
                offsetof(config_wccp_t, n_ret), NULL },
    [K_ASSIGN] = { "assignment", h_methods, offsetof(config_wccp_t, assignment),
                   offsetof(config_wccp_t, n_assignment), NULL },
    [K_SERVICES] = { "services", h_services, 0, 0, NULL },
};
static const struct section wccp_section = CL_SECTION("in wccp", wccp_keys);

int
config_wccp_parse(struct loader *ld, const struct key_def *def, void *base)
{
    config_wccp_t *w = (config_wccp_t *)(void *)((char *)base + def->offset);
    yaml_mark_t start = ld->ev.start_mark;
    uint64_t seen = 0;

    if (cl_is_null(&ld->ev))
        return 0;
    if (ld->ev.type != YAML_MAPPING_START_EVENT)
        return cl_fail(ld, start, "'wccp' must be a mapping, got %s", cl_kind_name(&ld->ev));
    if (cl_parse_mapping(ld, &wccp_section, w, &seen) < 0)
        return -1;
    if (w->n_routers == 0 && (seen & ~(UINT64_C(1) << K_ROUTERS)) != 0)
        return cl_fail(ld, start, "wccp settings without 'routers' (list at least one router, "
                                  "or remove the section)");
    if (w->n_routers > 0 && w->n_services == 0) {
        if (seen & (UINT64_C(1) << K_SERVICES))
            return cl_fail(ld, start, "'services' must list at least one service");
        w->services[0] = (config_wccp_service_t){.id = 0, .dynamic = false};
        w->n_services = 1;
    }
    return 0;
}

void
config_wccp_defaults(config_wccp_t *w)
{
    memset(w, 0, sizeof(*w));
    w->weight = WCCP_WEIGHT_DEFAULT;
    w->forwarding[0] = CONFIG_WCCP_GRE;
    w->forwarding[1] = CONFIG_WCCP_L2;
    w->n_forwarding = 2;
    w->ret[0] = CONFIG_WCCP_GRE;
    w->ret[1] = CONFIG_WCCP_L2;
    w->n_ret = 2;
    w->assignment[0] = CONFIG_WCCP_HASH;
    w->assignment[1] = CONFIG_WCCP_MASK;
    w->n_assignment = 2;
}
