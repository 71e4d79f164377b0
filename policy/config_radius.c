/*
 * policy/config_radius.c: the radius section (see config.h): musproxy's own
 * RADIUS accounting listener for single-box sites: the UDP addresses it
 * listens on (numeric, port 1813 unless given; none = off), the clients
 * file with the shared secrets (its path only: the secrets never are in the
 * YAML), where groups come from, the machine rules, the interim interval
 * assumed when a packet has none, when a session without refresh is stale
 * and then removed, and the headend name its entries carry in the map. The
 * options are mus-headend's --radius-* ones. It only parses and validates
 * (the machine pattern is compiled once to be checked); proxy/services.c
 * binds the sockets and mus/feed_radius.c runs the listener.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "config_load.h"

#define RADIUS_NAME_DEFAULT    "radius"
#define RADIUS_GROUPS_DEFAULT  "class"
#define RADIUS_STALE_AFTER     3
#define RADIUS_STALE_GRACE_MS  300000u

/* "ADDR", "ADDR:PORT", "[V6]:PORT", "[V6]" or a bare V6 address; 1813 when
 * no port is given. 0 or -1. */
static int
parse_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    char buf[80];
    const char *first = strchr(text, ':');
    size_t n = strlen(text);
    int w;

    if (n == 0 || n >= 64)
        return -1;
    if (text[0] == '[' && text[n - 1] == ']')
        w = snprintf(buf, sizeof(buf), "%s:%d", text, CONFIG_RADIUS_PORT);
    else if (text[0] != '[' && first != NULL && strchr(first + 1, ':') != NULL)
        w = snprintf(buf, sizeof(buf), "[%s]:%d", text, CONFIG_RADIUS_PORT);
    else if (first == NULL)
        w = snprintf(buf, sizeof(buf), "%s:%d", text, CONFIG_RADIUS_PORT);
    else
        w = snprintf(buf, sizeof(buf), "%s", text);
    if (w < 0 || (size_t)w >= sizeof(buf))
        return -1;
    return config_parse_sockaddr(buf, ss, len);
}

static int
item_listen(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_radius_t *r = base;
    const char *text = NULL;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'listen' entry", &text) < 0)
        return -1;
    if (parse_listen(text, &r->listen[i], &r->listen_lens[i]) < 0)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid RADIUS listen address '%s' (numeric: 0.0.0.0, 192.0.2.10:1813, "
                       "[::]:1813)", cl_show(q, text));
    for (size_t k = 0; k < i; k++)
        if (r->listen_lens[k] == r->listen_lens[i] &&
            memcmp(&r->listen[k], &r->listen[i], r->listen_lens[i]) == 0)
            return cl_fail(ld, ld->ev.start_mark, "'listen' lists %s twice", cl_show(q, text));
    memcpy(r->listen_text[i], text, strlen(text) + 1);
    r->n_listen = i + 1;
    return 0;
}

static int
h_listen(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_radius_t *)base)->n_listen = 0;
    return cl_parse_list(ld, def, base, CONFIG_RADIUS_MAX_LISTEN, item_listen);
}

/* class, filter-id, none, avpair or avpair:KEY (KEY without spaces, '=' or
 * '*'), as mus-headend's --radius-groups. */
static int
h_groups(struct loader *ld, const struct key_def *def, void *base)
{
    config_radius_t *r = base;
    const char *text = NULL, *key;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'groups'", &text) < 0)
        return -1;
    key = strncmp(text, "avpair:", 7) == 0 ? text + 7 : NULL;
    if (strcmp(text, "class") != 0 && strcmp(text, "filter-id") != 0 &&
        strcmp(text, "none") != 0 && strcmp(text, "avpair") != 0 &&
        (key == NULL || key[0] == '\0' || strlen(text) >= sizeof(r->groups) ||
         strpbrk(key, " \t=*") != NULL))
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid groups '%s' (use class, filter-id, avpair, avpair:KEY or none)",
                       cl_show(q, text));
    memcpy(r->groups, text, strlen(text) + 1);
    return 0;
}

/* A PCRE2 pattern on the whole User-Name: compiled here only to be checked. */
static int
h_machine_user(struct loader *ld, const struct key_def *def, void *base)
{
    config_radius_t *r = base;
    pcre2_code *re;
    PCRE2_SIZE off;
    PCRE2_UCHAR msg[128];
    int code;

    if (cl_string(ld, def, base) < 0)
        return -1;
    if (r->machine_user[0] == '\0')
        return 0;
    re = pcre2_compile((PCRE2_SPTR)r->machine_user, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
    if (re == NULL) {
        pcre2_get_error_message(code, msg, sizeof(msg));
        return cl_fail(ld, ld->ev.start_mark, "'machine_user' is not a PCRE2 pattern: %s "
                       "(at offset %zu)", (const char *)msg, (size_t)off);
    }
    pcre2_code_free(re);
    return 0;
}

/* KEY=VALUE: a Cisco-AVPair equal to it makes the session a machine's. */
static int
h_machine_avpair(struct loader *ld, const struct key_def *def, void *base)
{
    config_radius_t *r = base;
    const char *eq;
    char q[SHOW_LEN];

    if (cl_string(ld, def, base) < 0)
        return -1;
    if (r->machine_avpair[0] == '\0')
        return 0;
    eq = strchr(r->machine_avpair, '=');
    if (eq == NULL || eq == r->machine_avpair ||
        strcspn(r->machine_avpair, " \t*") < (size_t)(eq - r->machine_avpair))
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid machine_avpair '%s' (KEY=VALUE, e.g. tunnel-type=machine)",
                       cl_show(q, r->machine_avpair));
    return 0;
}

static int
h_stale_after(struct loader *ld, const struct key_def *def, void *base)
{
    const char *text = NULL;
    unsigned long v;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'stale_after'", &text) < 0)
        return -1;
    if (cl_parse_uint(text, CONFIG_RADIUS_STALE_MAX, &v) < 0 || v == 0)
        return cl_fail(ld, ld->ev.start_mark, "invalid stale_after '%s' (intervals, 1-%d)",
                       cl_show(q, text), CONFIG_RADIUS_STALE_MAX);
    ((config_radius_t *)base)->stale_after = (unsigned)v;
    return 0;
}

/* The name, its position kept for config_radius_check. */
static int
h_name(struct loader *ld, const struct key_def *def, void *base)
{
    ld->radius_mark = ld->ev.start_mark;
    return cl_name(ld, def, base);
}

#define RADIUS_STR(name, fn) { #name, fn, offsetof(config_radius_t, name), \
                               sizeof(((config_radius_t *)0)->name), NULL }
static const struct key_def radius_keys[] = {
    { "listen", h_listen, 0, 0, NULL },
    RADIUS_STR(clients_file, cl_path_off),
    { "groups", h_groups, 0, 0, NULL },
    RADIUS_STR(machine_user, h_machine_user),
    RADIUS_STR(machine_avpair, h_machine_avpair),
    { "interim", cl_duration0, offsetof(config_radius_t, interim), 0, NULL },
    { "stale_after", h_stale_after, 0, 0, NULL },
    { "stale_grace", cl_duration0, offsetof(config_radius_t, stale_grace), 0, NULL },
    RADIUS_STR(name, h_name),
};
#undef RADIUS_STR

static const struct section radius_section = CL_SECTION("in radius", radius_keys);

/* The section, then what needs the whole of it: listen needs clients_file. */
int
config_radius_key(struct loader *ld, const struct key_def *def, void *base)
{
    config_radius_t *r = (config_radius_t *)(void *)((char *)base + def->offset);
    yaml_mark_t start = ld->ev.start_mark;

    ld->radius_mark = start;
    if (cl_is_null(&ld->ev))
        return 0;
    if (ld->ev.type != YAML_MAPPING_START_EVENT)
        return cl_fail(ld, start, "'radius' must be a mapping, got %s", cl_kind_name(&ld->ev));
    if (cl_parse_mapping(ld, &radius_section, r, NULL) < 0)
        return -1;
    if (r->n_listen > 0 && r->clients_file[0] == '\0')
        return cl_fail(ld, start, "radius: 'listen' needs 'clients_file' (the clients and their "
                       "shared secrets)");
    return 0;
}

/* Once the whole file is read: the listener takes a map slot of the
 * headends' and a name none of them has. */
int
config_radius_check(struct loader *ld, const config_t *cfg)
{
    const config_radius_t *r = &cfg->radius;

    if (r->n_listen == 0)
        return 0;
    if (cfg->mus.n_headends >= CONFIG_MAX_HEADENDS)
        return cl_fail(ld, ld->radius_mark, "radius: at most %d mus.headends beside the RADIUS "
                       "listener", CONFIG_MAX_HEADENDS - 1);
    for (size_t i = 0; i < cfg->mus.n_headends; i++)
        if (strcmp(cfg->mus.headends[i].name, r->name) == 0)
            return cl_fail(ld, ld->radius_mark, "radius: name '%s' is also a headend's name in "
                           "mus.headends (set radius.name)", r->name);
    return 0;
}

void
config_radius_defaults(config_radius_t *r)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->groups, sizeof(r->groups), "%s", RADIUS_GROUPS_DEFAULT);
    snprintf(r->name, sizeof(r->name), "%s", RADIUS_NAME_DEFAULT);
    r->stale_after = RADIUS_STALE_AFTER;
    r->stale_grace = RADIUS_STALE_GRACE_MS;
}
