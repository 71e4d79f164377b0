/*
 * policy/config_proxy.c: the proxy section (see config.h): the listeners
 * (address, mode, TPROXY), the worker count, who may use the proxy and
 * where it never connects, the CONNECT ports, the connection limit, the
 * tunnel relay, the timeouts, the access log and the visible hostname, and
 * their defaults; proxy.transparent is config_transparent.c. It only parses
 * and validates; proxy/ binds the listeners and applies the rest.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_load.h"

#define MAX_CONNECTIONS_MAX  1000000u

static int
h_workers(struct loader *ld, const struct key_def *def, void *base)
{
    config_t *cfg = base;
    unsigned long v;
    const char *text = NULL;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'workers'", &text) < 0)
        return -1;
    if (strcmp(text, "auto") == 0) {
        cfg->workers = 0;
        return 0;
    }
    if (cl_parse_uint(text, CONFIG_MAX_WORKERS, &v) < 0 || v == 0)
        return cl_fail(ld, ld->ev.start_mark, "invalid workers '%s' (use auto or 1-%d)",
                       cl_show(q, text), CONFIG_MAX_WORKERS);
    cfg->workers = (unsigned)v;
    return 0;
}

static int
h_max_connections(struct loader *ld, const struct key_def *def, void *base)
{
    config_t *cfg = base;
    unsigned long v;
    const char *text = NULL;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'max_connections'", &text) < 0)
        return -1;
    if (cl_parse_uint(text, MAX_CONNECTIONS_MAX, &v) < 0 || v == 0)
        return cl_fail(ld, ld->ev.start_mark, "invalid max_connections '%s' (use 1-%u)",
                       cl_show(q, text), MAX_CONNECTIONS_MAX);
    cfg->max_connections = (unsigned)v;
    return 0;
}

/* Sets a listen entry's address from the current scalar. */
static int
set_listen_address(struct loader *ld, config_listen_t *l)
{
    const char *text = NULL;
    char q[SHOW_LEN];

    if (cl_get_scalar(ld, "listen 'address'", &text) < 0)
        return -1;
    if (strlen(text) >= sizeof(l->text) ||
        config_parse_sockaddr(text, &l->addr, &l->addr_len) < 0)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid listen address '%s' (use 1.2.3.4:port or [::1]:port, numeric)",
                       cl_show(q, text));
    memcpy(l->text, text, strlen(text) + 1);
    ld->addr_mark = ld->ev.start_mark;
    return 0;
}

static int
h_listen_address(struct loader *ld, const struct key_def *def, void *base)
{
    (void)def;
    return set_listen_address(ld, base);
}

const char *
config_listen_mode_str(enum config_listen_mode m)
{
    switch (m) {
    case CONFIG_MODE_EXPLICIT: return "explicit";
    case CONFIG_MODE_TRANSPARENT: return "transparent";
    case CONFIG_MODE_PAC: return "pac";
    case CONFIG_MODE_METRICS: return "metrics";
    }
    return "explicit";
}

static int
h_listen_mode(struct loader *ld, const struct key_def *def, void *base)
{
    config_listen_t *l = base;
    const char *text = NULL;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "listen 'mode'", &text) < 0)
        return -1;
    if (strcmp(text, "explicit") == 0)
        l->mode = CONFIG_MODE_EXPLICIT;
    else if (strcmp(text, "transparent") == 0)
        l->mode = CONFIG_MODE_TRANSPARENT;
    else if (strcmp(text, "pac") == 0)
        l->mode = CONFIG_MODE_PAC;
    else if (strcmp(text, "metrics") == 0)
        l->mode = CONFIG_MODE_METRICS;
    else
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid listen mode '%s' (use explicit, transparent, pac or metrics)",
                       cl_show(q, text));
    return 0;
}

enum { LISTEN_KEY_ADDRESS = 0, LISTEN_KEY_MODE, LISTEN_KEY_TPROXY, LISTEN_KEY_SPOOF };

static const struct key_def listen_keys[] = {
    [LISTEN_KEY_ADDRESS] = { "address", h_listen_address, 0, 0, NULL },
    [LISTEN_KEY_MODE] = { "mode", h_listen_mode, 0, 0, NULL },
    [LISTEN_KEY_TPROXY] = { "tproxy", cl_bool, offsetof(config_listen_t, tproxy), 0, NULL },
    [LISTEN_KEY_SPOOF] = { "spoof_client_address", cl_bool,
                           offsetof(config_listen_t, spoof_client), 0, NULL },
};
static const struct section listen_section = CL_SECTION("in a proxy.listen entry", listen_keys);

/* A listen entry: "ADDR:PORT" or { address: ..., mode: ... }. */
static int
item_listen(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_t *cfg = base;
    config_listen_t *l = &cfg->listen[i];
    yaml_mark_t start = ld->ev.start_mark;

    (void)def;
    memset(l, 0, sizeof(*l));
    l->mode = CONFIG_MODE_EXPLICIT;
    if (ld->ev.type == YAML_MAPPING_START_EVENT) {
        uint64_t seen;
        if (cl_parse_mapping(ld, &listen_section, l, &seen) < 0)
            return -1;
        if (!(seen & (UINT64_C(1) << LISTEN_KEY_ADDRESS)))
            return cl_fail(ld, start, "listen entry has no 'address'");
        if (l->tproxy && l->mode != CONFIG_MODE_TRANSPARENT)
            return cl_fail(ld, start, "tproxy: true needs mode: transparent");
        if (l->spoof_client && !l->tproxy)
            return cl_fail(ld, start, "spoof_client_address: true needs tproxy: true");
        if (l->mode == CONFIG_MODE_METRICS && !cl_is_loopback(&l->addr))
            return cl_fail(ld, start, "mode: metrics listens on a loopback address only "
                           "(remote scrapers use the admin UI's authenticated /metrics)");
    } else if (ld->ev.type == YAML_SCALAR_EVENT) {
        if (set_listen_address(ld, l) < 0)
            return -1;
    } else {
        return cl_fail(ld, start, "'listen' entries must be an address or a mapping, got %s",
                       cl_kind_name(&ld->ev));
    }
    for (size_t j = 0; j < i; j++) {
        if (cfg->listen[j].addr_len == l->addr_len &&
            memcmp(&cfg->listen[j].addr, &l->addr, l->addr_len) == 0)
            return cl_fail(ld, ld->addr_mark, "duplicate listen address '%s'", l->text);
    }
    cfg->n_listen = i + 1;
    return 0;
}

static int
h_listen(struct loader *ld, const struct key_def *def, void *base)
{
    config_t *cfg = base;
    yaml_mark_t start = ld->ev.start_mark;

    cfg->n_listen = 0;
    if (cl_parse_list(ld, def, base, CONFIG_MAX_LISTEN, item_listen) < 0)
        return -1;
    if (cfg->n_listen == 0)
        return cl_fail(ld, start, "'listen' must have at least one address");
    return 0;
}

static int
h_access_log(struct loader *ld, const struct key_def *def, void *base)
{
    config_t *cfg = base;
    const char *text = NULL;
    size_t len;

    (void)def;
    if (cl_get_scalar(ld, "'access_log'", &text) < 0)
        return -1;
    if (cl_is_null(&ld->ev))
        return cl_fail(ld, ld->ev.start_mark, "'access_log' needs a value (a path, or off)");
    if (strcmp(text, "off") == 0)
        text = "";
    len = strlen(text);
    if (len >= sizeof(cfg->access_log))
        return cl_fail(ld, ld->ev.start_mark, "'access_log' is too long (at most %zu bytes)",
                       sizeof(cfg->access_log) - 1);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return cl_fail(ld, ld->ev.start_mark, "'access_log' contains a control character");
    memcpy(cfg->access_log, text, len + 1);
    return 0;
}

/* It goes into Via headers and error pages: letters, digits, '-', '.', '_'. */
static int
h_visible_hostname(struct loader *ld, const struct key_def *def, void *base)
{
    config_t *cfg = base;
    const char *text = NULL;
    char q[SHOW_LEN];
    size_t len;
    bool ok;

    (void)def;
    if (cl_get_scalar(ld, "'visible_hostname'", &text) < 0)
        return -1;
    len = strlen(text);
    ok = len > 0 && len < sizeof(cfg->visible_hostname);
    for (size_t i = 0; ok && i < len; i++) {
        char c = text[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
             c == '-' || c == '.' || c == '_';
    }
    if (!ok)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid visible_hostname '%s' (1-%zu letters, digits, '-', '.' or '_')",
                       cl_show(q, text), sizeof(cfg->visible_hostname) - 1);
    memcpy(cfg->visible_hostname, text, len + 1);
    return 0;
}

static const struct word relay_words[] = {
    { "auto", CONFIG_RELAY_AUTO }, { "splice", CONFIG_RELAY_SPLICE }, { "copy", CONFIG_RELAY_COPY },
};
WORD_HANDLER(h_tunnel_relay, relay_words, enum config_tunnel_relay)

#define TIMEOUT(name) { #name, cl_duration, offsetof(config_timeouts_t, name), 0, NULL }
static const struct key_def timeout_keys[] = {
    TIMEOUT(header), TIMEOUT(idle), TIMEOUT(connect), TIMEOUT(response),
    TIMEOUT(tunnel_idle), TIMEOUT(shutdown), TIMEOUT(dns),
};
#undef TIMEOUT
static const struct section timeouts_section = CL_SECTION("in proxy.timeouts", timeout_keys);

static const struct key_def proxy_keys[] = {
    { "listen", h_listen, 0, 0, NULL },
    { "workers", h_workers, 0, 0, NULL },
    { "clients", cl_cidr_list, offsetof(config_t, clients), offsetof(config_t, n_clients), NULL },
    { "deny_destinations", cl_cidr_list, offsetof(config_t, deny_destinations),
      offsetof(config_t, n_deny_destinations), NULL },
    { "connect_ports", cl_port_list, offsetof(config_t, connect_ports),
      offsetof(config_t, n_connect_ports), NULL },
    { "max_connections", h_max_connections, 0, 0, NULL },
    { "tunnel_relay", h_tunnel_relay, offsetof(config_t, tunnel_relay), 0, NULL },
    { "timeouts", cl_section, offsetof(config_t, timeouts), 0, &timeouts_section },
    { "access_log", h_access_log, 0, 0, NULL },
    { "visible_hostname", h_visible_hostname, 0, 0, NULL },
    { "transparent", cl_section, offsetof(config_t, transparent), 0, &config_transparent_section },
};
_Static_assert(sizeof(proxy_keys) / sizeof(proxy_keys[0]) <= 64, "duplicate mask is 64 bits");

const struct section config_proxy_section = CL_SECTION("in proxy", proxy_keys);

static const char *const default_clients[] = {
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7",
};
static const char *const default_deny[] = {
    "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "100.100.100.200/32", "fd00:ec2::254/128",
};

int
config_proxy_defaults(config_t *cfg)
{
    config_listen_t *l = &cfg->listen[0];

    snprintf(l->text, sizeof(l->text), "127.0.0.1:3128");
    if (config_parse_sockaddr(l->text, &l->addr, &l->addr_len) < 0)
        return -1;
    l->mode = CONFIG_MODE_EXPLICIT;
    cfg->n_listen = 1;
    cfg->workers = 0;
    for (size_t i = 0; i < sizeof(default_clients) / sizeof(default_clients[0]); i++)
        if (cidr_parse(default_clients[i], &cfg->clients[cfg->n_clients++]) < 0)
            return -1;
    for (size_t i = 0; i < sizeof(default_deny) / sizeof(default_deny[0]); i++)
        if (cidr_parse(default_deny[i], &cfg->deny_destinations[cfg->n_deny_destinations++]) < 0)
            return -1;
    cfg->connect_ports[0] = 443;
    cfg->n_connect_ports = 1;
    cfg->timeouts = (config_timeouts_t){
        .header = 10000, .idle = 60000, .connect = 10000, .response = 60000,
        .tunnel_idle = 300000, .shutdown = 10000, .dns = 5000,
    };
    cfg->max_connections = 10000;
    snprintf(cfg->access_log, sizeof(cfg->access_log), "var/access.log");
    snprintf(cfg->visible_hostname, sizeof(cfg->visible_hostname), "musproxy");
    config_transparent_defaults(&cfg->transparent);
    return 0;
}
