/*
 * policy/config.c: loads and validates musproxy's YAML configuration (see
 * config.h for the keys and their defaults).
 *
 * The file is read with libyaml's event API and validated while it streams:
 * nothing but the config_t is built. Each mapping is described by a table of
 * keys (struct section) and each key by a handler that consumes exactly the
 * events of its value, so a new section (mus:, identity_profiles:, ...) is a
 * new table plus its handlers and one line in top_keys[]; lists of named
 * entries (profiles, policies, time ranges, ...) are described for
 * config_named_list.c's one loop instead of a loop each. The first error
 * stops the load and is reported as "name:line:column: message" with the
 * 1-based position of the offending node.
 *
 * Choices beyond config.h:
 *  - an empty file (nothing, comments only, or a lone "---") gives all the
 *    defaults; so does a section key with an empty value ("proxy:" alone);
 *  - a list key that is present replaces its default entirely; lists never
 *    take an empty value ("clients:" alone is an error; write [] for none);
 *    only listen must not be empty;
 *  - anchors, aliases and tags are refused (no billion-laughs expansion), as
 *    are several documents in one file and keys that are not scalars;
 *  - durations are at most 2147483647 ms (about 24.8 days) so they fit an
 *    int (epoll_wait);
 *  - prefixes with host bits set ("10.1.2.3/8") are accepted, the host bits
 *    cleared (cidr_parse);
 *  - errors about the file as a whole (cannot read it, too large) are
 *    "name: message", without line and column;
 *  - policies: mapping-valued keys (time_ranges, categories, its names,
 *    authentication, a policy's categories) take an empty value as empty;
 *    list-valued ones follow the list rule above. References between
 *    sections (a policy's profiles, a rule's time range, custom vs friendly
 *    category names, auth: basic vs authentication.password_file) are
 *    checked once the whole file is read, so sections may come in any
 *    order; each error still points at the reference. An identity profile
 *    may be named by one policy only (a second one could never match);
 *  - variable-size data (name lists, their strings, subnets) is allocated
 *    from a pool of chunks owned by the config_t (cfg->pool), so a failed
 *    load frees everything with config_free and policy/ frees nothing.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "../common/log.h"
#include "../common/err.h"
#include "config_load.h"

#define DURATION_MAX_MS      2147483647u   /* INT32_MAX: fits an int timeout */
#define MAX_CONNECTIONS_MAX  1000000u
#define READ_CHUNK           (64u << 10)

/* ---- messages ---- */

/* Records "name:line:column: message" (mark is 0-based) and returns -1. */
int
cl_fail(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
{
    char msg[CONFIG_ERR_LEN];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    err_set(ld->err, ld->errlen, "%s:%zu:%zu: %s", ld->name,
            mark.line + 1, mark.column + 1, msg);
    return -1;
}

/* Copies a value from the file into buf (SHOW_LEN bytes) for a message:
 * control characters become '?', long values are cut (on a UTF-8 boundary)
 * and end with "...". */
const char *
cl_show(char *buf, const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0' && i < SHOW_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        buf[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    if (s[i] != '\0') {
        while (i > 0 && ((unsigned char)s[i] & 0xc0) == 0x80)
            i--;
        memcpy(buf + i, "...", 4);
    } else {
        buf[i] = '\0';
    }
    return buf;
}

/* Line and column (0-based, in characters) of a byte offset of the input. */
static yaml_mark_t
offset_mark(const struct loader *ld, size_t offset)
{
    yaml_mark_t m = {0};

    if (offset > ld->len)
        offset = ld->len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char c = (unsigned char)ld->data[i];
        if (c == '\n') {
            m.line++;
            m.column = 0;
        } else if ((c & 0xc0) != 0x80) {
            m.column++;
        }
    }
    m.index = offset;
    return m;
}

/* Turns libyaml's error state into a message. Returns -1. */
static int
syntax_error(struct loader *ld)
{
    const yaml_parser_t *p = &ld->parser;
    const char *problem = p->problem ? p->problem : "invalid YAML";

    switch (p->error) {
    case YAML_MEMORY_ERROR:
        err_set(ld->err, ld->errlen, "%s: out of memory while parsing", ld->name);
        return -1;
    case YAML_READER_ERROR:
        if (p->problem_value != -1)
            return cl_fail(ld, offset_mark(ld, p->problem_offset), "%s (#%X)",
                           problem, (unsigned)p->problem_value);
        return cl_fail(ld, offset_mark(ld, p->problem_offset), "%s", problem);
    case YAML_SCANNER_ERROR:
    case YAML_PARSER_ERROR:
        if (p->context)
            return cl_fail(ld, p->problem_mark, "%s (%s at line %zu column %zu)",
                           problem, p->context, p->context_mark.line + 1,
                           p->context_mark.column + 1);
        return cl_fail(ld, p->problem_mark, "%s", problem);
    default:
        return cl_fail(ld, p->mark, "%s", problem);
    }
}

/* ---- events ---- */

int
cl_next_event(struct loader *ld)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;
    char q[SHOW_LEN];

    if (ld->have_ev) {
        yaml_event_delete(&ld->ev);
        ld->have_ev = false;
    }
    if (!yaml_parser_parse(&ld->parser, &ld->ev))
        return syntax_error(ld);
    ld->have_ev = true;

    switch (ld->ev.type) {
    case YAML_ALIAS_EVENT:
        return cl_fail(ld, ld->ev.start_mark, "aliases are not allowed ('*%s')",
                       cl_show(q, (const char *)ld->ev.data.alias.anchor));
    case YAML_SCALAR_EVENT:
        anchor = ld->ev.data.scalar.anchor;
        tag = ld->ev.data.scalar.tag;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = ld->ev.data.sequence_start.anchor;
        tag = ld->ev.data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = ld->ev.data.mapping_start.anchor;
        tag = ld->ev.data.mapping_start.tag;
        break;
    default:
        break;
    }
    if (anchor)
        return cl_fail(ld, ld->ev.start_mark, "anchors are not allowed ('&%s')",
                       cl_show(q, (const char *)anchor));
    if (tag)
        return cl_fail(ld, ld->ev.start_mark, "tags are not allowed ('%s')",
                       cl_show(q, (const char *)tag));
    return 0;
}

/* True for an empty plain scalar or "~"/"null": YAML's null. */
bool
cl_is_null(const yaml_event_t *e)
{
    const char *v;

    if (e->type != YAML_SCALAR_EVENT || e->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    v = (const char *)e->data.scalar.value;
    return strcmp(v, "") == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

const char *
cl_kind_name(const yaml_event_t *e)
{
    switch (e->type) {
    case YAML_SCALAR_EVENT:
        return cl_is_null(e) ? "an empty value" : "a scalar";
    case YAML_SEQUENCE_START_EVENT:
        return "a list";
    case YAML_MAPPING_START_EVENT:
        return "a mapping";
    default:
        return "something else";
    }
}

/* The current event as a string; what names it in messages ("'workers'"). */
int
cl_get_scalar(struct loader *ld, const char *what, const char **out)
{
    const yaml_event_t *e = &ld->ev;

    if (e->type != YAML_SCALAR_EVENT)
        return cl_fail(ld, e->start_mark, "%s must be a scalar, got %s", what, cl_kind_name(e));
    if (strlen((const char *)e->data.scalar.value) != e->data.scalar.length)
        return cl_fail(ld, e->start_mark, "%s contains a NUL character", what);
    *out = (const char *)e->data.scalar.value;
    return 0;
}

/* Digits only (no sign, no spaces), value <= max. 0 or -1. */
int
cl_parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    unsigned long v = 0;

    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        unsigned d;
        if (*s < '0' || *s > '9')
            return -1;
        d = (unsigned)(*s - '0');
        if (v > max / 10 || v * 10 > max - d)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* ---- mappings and lists ---- */

/* Parses the mapping starting at the current event (MAPPING_START) with the
 * key table of sec. Sets *seen_out (if not NULL) to the bit mask of the keys
 * present, bit i for sec->keys[i]. */
int
cl_parse_mapping(struct loader *ld, const struct section *sec, void *base, uint64_t *seen_out)
{
    uint64_t seen = 0;
    char q[SHOW_LEN];

    for (;;) {
        const struct key_def *def = NULL;
        const char *key;
        size_t klen, i;
        yaml_mark_t kmark;

        if (cl_next_event(ld) < 0)
            return -1;
        if (ld->ev.type == YAML_MAPPING_END_EVENT)
            break;
        if (ld->ev.type != YAML_SCALAR_EVENT)
            return cl_fail(ld, ld->ev.start_mark, "keys %s must be scalars, got %s",
                           sec->where, cl_kind_name(&ld->ev));
        key = (const char *)ld->ev.data.scalar.value;
        klen = ld->ev.data.scalar.length;
        kmark = ld->ev.start_mark;
        for (i = 0; i < sec->n_keys; i++) {
            if (strlen(sec->keys[i].name) == klen && memcmp(sec->keys[i].name, key, klen) == 0) {
                def = &sec->keys[i];
                break;
            }
        }
        if (def == NULL) {
            char expected[CONFIG_ERR_LEN / 2];
            size_t off = 0;
            expected[0] = '\0';
            for (size_t k = 0; k < sec->n_keys && off < sizeof(expected); k++) {
                int n = snprintf(expected + off, sizeof(expected) - off, "%s%s",
                                 k ? ", " : "", sec->keys[k].name);
                if (n < 0)
                    break;
                off += (size_t)n;
            }
            return cl_fail(ld, kmark, "unknown key '%s' %s (expected one of: %s)",
                           cl_show(q, key), sec->where, expected);
        }
        if (seen & (UINT64_C(1) << i))
            return cl_fail(ld, kmark, "duplicate key '%s' %s", def->name, sec->where);
        seen |= UINT64_C(1) << i;
        ld->key_mark = kmark;
        if (cl_next_event(ld) < 0)
            return -1;
        if (def->fn(ld, def, base) < 0)
            return -1;
    }
    if (seen_out)
        *seen_out = seen;
    return 0;
}

/* A nested section: a mapping parsed with def->sub into base + def->offset.
 * An empty value means an empty section (all defaults). */
int
cl_section(struct loader *ld, const struct key_def *def, void *base)
{
    if (cl_is_null(&ld->ev))
        return 0;
    if (ld->ev.type != YAML_MAPPING_START_EVENT)
        return cl_fail(ld, ld->ev.start_mark, "'%s' must be a mapping, got %s",
                       def->name, cl_kind_name(&ld->ev));
    return cl_parse_mapping(ld, def->sub, (char *)base + def->offset, NULL);
}

/* A list of at most max entries, each handed to fn. */
int
cl_parse_list(struct loader *ld, const struct key_def *def, void *base, size_t max, item_fn fn)
{
    if (ld->ev.type != YAML_SEQUENCE_START_EVENT)
        return cl_fail(ld, ld->ev.start_mark, "'%s' must be a list, got %s%s", def->name,
                    cl_kind_name(&ld->ev), cl_is_null(&ld->ev) ? " (write [] for an empty list)" : "");
    for (size_t i = 0;; i++) {
        if (cl_next_event(ld) < 0)
            return -1;
        if (ld->ev.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (i == max)
            return cl_fail(ld, ld->ev.start_mark, "too many entries in '%s' (at most %zu)",
                           def->name, max);
        if (fn(ld, def, base, i) < 0)
            return -1;
    }
}

/* ---- value handlers ---- */

int
cl_duration(struct loader *ld, const struct key_def *def, void *base)
{
    char what[64], q[SHOW_LEN];
    const char *text = NULL;

    snprintf(what, sizeof(what), "'%s'", def->name);
    if (cl_get_scalar(ld, what, &text) < 0)
        return -1;
    if (config_parse_duration(text, (uint32_t *)(void *)((char *)base + def->offset)) < 0)
        return cl_fail(ld, ld->ev.start_mark, "invalid duration '%s' (use ms, s, m or h)",
                       cl_show(q, text));
    return 0;
}

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

static int
item_cidr(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    cidr_t *list = (cidr_t *)(void *)((char *)base + def->offset);
    size_t *n = (size_t *)(void *)((char *)base + def->count_offset);
    char what[64], q[SHOW_LEN];
    const char *text = NULL;

    snprintf(what, sizeof(what), "'%s' entry", def->name);
    if (cl_get_scalar(ld, what, &text) < 0)
        return -1;
    if (cidr_parse(text, &list[i]) < 0)
        return cl_fail(ld, ld->ev.start_mark,
                       "'%s' entry '%s' is not an address prefix (e.g. 10.0.0.0/8, fc00::/7)",
                       def->name, cl_show(q, text));
    *n = i + 1;
    return 0;
}

int
cl_cidr_list(struct loader *ld, const struct key_def *def, void *base)
{
    *(size_t *)(void *)((char *)base + def->count_offset) = 0;
    return cl_parse_list(ld, def, base, CONFIG_MAX_CIDRS, item_cidr);
}

static int
item_port(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_t *cfg = base;
    unsigned long v;
    const char *text = NULL;
    char q[SHOW_LEN];

    if (cl_get_scalar(ld, "'connect_ports' entry", &text) < 0)
        return -1;
    if (cl_parse_uint(text, 65535, &v) < 0 || v == 0)
        return cl_fail(ld, ld->ev.start_mark, "'%s' entry %s is not a port (1-65535)",
                       def->name, cl_show(q, text));
    cfg->connect_ports[i] = (uint16_t)v;
    cfg->n_connect_ports = i + 1;
    return 0;
}

static int
h_connect_ports(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_t *)base)->n_connect_ports = 0;
    return cl_parse_list(ld, def, base, CONFIG_MAX_PORTS, item_port);
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

/* 127.0.0.0/8 or ::1 (or ::ffff:127.x). */
static bool
is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
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
static const struct section listen_section = {
    "in a proxy.listen entry", listen_keys, sizeof(listen_keys) / sizeof(listen_keys[0]),
};

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
        if (l->mode == CONFIG_MODE_METRICS && !is_loopback(&l->addr))
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

static int
h_log_level(struct loader *ld, const struct key_def *def, void *base)
{
    config_t *cfg = base;
    enum log_level level;
    const char *text = NULL;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'log_level'", &text) < 0)
        return -1;
    if (log_level_parse(text, &level) < 0)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid log_level '%s' (use error, warn, info or debug)", cl_show(q, text));
    cfg->log_level = (int)level;
    return 0;
}

/* ---- the mus section ---- */

/* A path or name stored in a char array of def->count_offset bytes (for
 * strings, count_offset holds the size of the field). Control characters
 * are refused. "off" and "" store "" when def->sub is not NULL (optional). */
int
cl_string(struct loader *ld, const struct key_def *def, void *base)
{
    char *field = (char *)base + def->offset;
    size_t cap = def->count_offset, len;
    const char *text = NULL;
    char what[64];

    snprintf(what, sizeof(what), "'%s'", def->name);
    if (cl_get_scalar(ld, what, &text) < 0)
        return -1;
    if (cl_is_null(&ld->ev))
        return cl_fail(ld, ld->ev.start_mark, "'%s' needs a value", def->name);
    len = strlen(text);
    if (len >= cap)
        return cl_fail(ld, ld->ev.start_mark, "'%s' is too long (at most %zu bytes)", def->name,
                       cap - 1);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
            return cl_fail(ld, ld->ev.start_mark, "'%s' contains a control character", def->name);
    memcpy(field, text, len + 1);
    return 0;
}

/* A name: 1..size-1 letters, digits, '-', '.', '_' (goes into logs and status). */
int
cl_name(struct loader *ld, const struct key_def *def, void *base)
{
    char *field = (char *)base + def->offset;
    char q[SHOW_LEN];

    if (cl_string(ld, def, base) < 0)
        return -1;
    for (const char *p = field; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return cl_fail(ld, ld->ev.start_mark,
                           "invalid %s '%s' (letters, digits, '-', '.' or '_')", def->name,
                           cl_show(q, field));
    }
    if (field[0] == '\0')
        return cl_fail(ld, ld->ev.start_mark, "'%s' must not be empty", def->name);
    return 0;
}

static int
h_remote_users(struct loader *ld, const struct key_def *def, void *base)
{
    config_mus_t *m = base;
    const char *text = NULL;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'remote_users'", &text) < 0)
        return -1;
    if (strcmp(text, "headend") == 0)
        m->remote_users = CONFIG_REMOTE_HEADEND;
    else if (strcmp(text, "ip_ranges") == 0)
        m->remote_users = CONFIG_REMOTE_IP_RANGES;
    else
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid remote_users '%s' (use headend or ip_ranges)", cl_show(q, text));
    return 0;
}

/* A duration that may be 0 ("0", "0s"): grace. */
static int
h_duration0(struct loader *ld, const struct key_def *def, void *base)
{
    const char *text = NULL;

    if (ld->ev.type == YAML_SCALAR_EVENT) {
        text = (const char *)ld->ev.data.scalar.value;
        if (strcmp(text, "0") == 0 || strcmp(text, "0s") == 0 || strcmp(text, "0ms") == 0 ||
            strcmp(text, "0m") == 0) {
            *(uint32_t *)(void *)((char *)base + def->offset) = 0;
            return 0;
        }
    }
    return cl_duration(ld, def, base);
}

static int
h_control_socket(struct loader *ld, const struct key_def *def, void *base)
{
    config_mus_t *m = base;

    if (cl_string(ld, def, base) < 0)
        return -1;
    if (strcmp(m->control_socket, "off") == 0)
        m->control_socket[0] = '\0';
    return 0;
}

static int
h_pin(struct loader *ld, const struct key_def *def, void *base)
{
    config_headend_t *h = base;
    char q[SHOW_LEN];

    if (cl_string(ld, def, base) < 0)
        return -1;
    if (strlen(h->pin_sha256) != 64)
        goto bad;
    for (char *p = h->pin_sha256; *p; p++) {
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p + 32);
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            goto bad;
    }
    return 0;
bad:
    return cl_fail(ld, ld->ev.start_mark,
                "invalid pin_sha256 '%s' (64 hex digits: SHA-256 of the certificate's public key)",
                cl_show(q, h->pin_sha256));
}

static int
item_headend_addr(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_headend_t *h = base;
    const char *text = NULL;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'addresses' entry", &text) < 0)
        return -1;
    if (strlen(text) >= sizeof(h->addr_text[i]) ||
        config_parse_sockaddr(text, &h->addrs[i], &h->addr_lens[i]) < 0)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid headend address '%s' (use 192.0.2.1:11999 or [2001:db8::1]:11999)",
                       cl_show(q, text));
    memcpy(h->addr_text[i], text, strlen(text) + 1);
    h->n_addrs = i + 1;
    return 0;
}

static int
h_headend_addrs(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_headend_t *)base)->n_addrs = 0;
    return cl_parse_list(ld, def, base, CONFIG_MAX_HEADEND_ADDRS, item_headend_addr);
}

enum {
    HE_KEY_NAME = 0, HE_KEY_ADDRESSES, HE_KEY_CA, HE_KEY_PIN, HE_KEY_CERT_NAME, HE_KEY_PASSWORD,
};
#define HE_STR(name, fn) { #name, fn, offsetof(config_headend_t, name), \
                           sizeof(((config_headend_t *)0)->name), NULL }
static const struct key_def headend_keys[] = {
    [HE_KEY_NAME] = HE_STR(name, cl_name),
    [HE_KEY_ADDRESSES] = { "addresses", h_headend_addrs, 0, 0, NULL },
    [HE_KEY_CA] = HE_STR(ca, cl_string),
    [HE_KEY_PIN] = HE_STR(pin_sha256, h_pin),
    [HE_KEY_CERT_NAME] = HE_STR(cert_name, cl_string),
    [HE_KEY_PASSWORD] = HE_STR(password_file, cl_string),
};
#undef HE_STR
static const struct section headend_section = {
    "in a mus.headends entry", headend_keys, sizeof(headend_keys) / sizeof(headend_keys[0]),
};

/* What needs the whole entry: addresses, the password file and one way to
 * trust the certificate; the certificate's name defaults to the host part
 * of the first address. */
static int
headend_check(struct loader *ld, void *items, size_t i, uint64_t seen, yaml_mark_t start)
{
    config_headend_t *h = (config_headend_t *)items + i;

    if (!(seen & (UINT64_C(1) << HE_KEY_ADDRESSES)) || h->n_addrs == 0)
        return cl_fail(ld, start, "headend '%s' has no 'addresses'", h->name);
    if (!(seen & (UINT64_C(1) << HE_KEY_PASSWORD)))
        return cl_fail(ld, start, "headend '%s' has no 'password_file'", h->name);
    if (!!(seen & (UINT64_C(1) << HE_KEY_CA)) == !!(seen & (UINT64_C(1) << HE_KEY_PIN)))
        return cl_fail(ld, start,
                       "headend '%s' needs exactly one of 'ca' (a CA file) or 'pin_sha256'",
                       h->name);
    if (h->cert_name[0] == '\0') {
        /* the host part of the first address */
        const char *t = h->addr_text[0];
        const char *end = t[0] == '[' ? strchr(t, ']') : strrchr(t, ':');
        size_t off = t[0] == '[' ? 1 : 0;
        size_t n = (size_t)(end - t) - off;
        memcpy(h->cert_name, t + off, n);
        h->cert_name[n] = '\0';
    }
    return 0;
}

/* A duplicate name is reported at the entry, once it is complete. */
static const struct cl_named_list headends_list = {
    CL_NAMED("headend", config_headend_t, name, CONFIG_MAX_HEADENDS),
    .sec = &headend_section, .unique_at = CL_UNIQUE_AT_ENTRY, .check = headend_check,
};

#define MUS_STR(name, fn) { #name, fn, offsetof(config_mus_t, name), \
                            sizeof(((config_mus_t *)0)->name), NULL }
static const struct key_def mus_keys[] = {
    { "remote_users", h_remote_users, 0, 0, NULL },
    { "vpn_pools", cl_cidr_list, offsetof(config_mus_t, vpn_pools),
      offsetof(config_mus_t, n_vpn_pools), NULL },
    MUS_STR(probe_host, cl_name),
    { "reconnect_interval", cl_duration, offsetof(config_mus_t, reconnect_interval), 0, NULL },
    { "grace", h_duration0, offsetof(config_mus_t, grace), 0, NULL },
    MUS_STR(client_id, cl_name),
    MUS_STR(control_socket, h_control_socket),
    { "headends", cl_named_list, offsetof(config_mus_t, headends),
      offsetof(config_mus_t, n_headends), NULL, &headends_list },
};
#undef MUS_STR
static const struct section mus_section = {
    "in mus", mus_keys, sizeof(mus_keys) / sizeof(mus_keys[0]),
};

/* ---- the string pool ---- */

/* Everything of variable size a configuration holds (name lists and their
 * strings, subnet arrays) is carved out of chunks chained from cfg->pool and
 * freed together by config_free, so an error half-way through a list leaks
 * nothing and policy/ never frees a field. */
struct config_pool {
    struct config_pool *next;
    size_t used, cap;
    max_align_t data[];
};

#define POOL_CHUNK   (16u << 10)

/* size bytes aligned to align (a power of two, at most max_align_t's), or
 * NULL with the error set. */
static void *
pool_alloc(struct loader *ld, size_t size, size_t align)
{
    config_t *cfg = ld->cfg;
    struct config_pool *c = cfg->pool;
    size_t off;

    if (size == 0)
        size = 1;
    off = c ? (c->used + align - 1) & ~(align - 1) : 0;
    if (c == NULL || off > c->cap || c->cap - off < size) {
        size_t cap = size > POOL_CHUNK / 4 ? size : POOL_CHUNK;
        struct config_pool *n = malloc(sizeof(*n) + cap);
        if (n == NULL) {
            cl_fail(ld, ld->ev.start_mark, "out of memory");
            return NULL;
        }
        n->used = 0;
        n->cap = cap;
        if (c != NULL && cap != POOL_CHUNK) {
            /* a big block gets its own chunk; keep filling the current one */
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            cfg->pool = n;
        }
        c = n;
        off = 0;
    }
    c->used = off + size;
    return (char *)c->data + off;
}

static char *
pool_strdup(struct loader *ld, const char *s)
{
    size_t len = strlen(s);
    char *p = pool_alloc(ld, len + 1, 1);

    if (p != NULL)
        memcpy(p, s, len + 1);
    return p;
}

/* ---- identity profiles, access policies, categories ---- */

#define NAME_HINT     "(1-63 letters, digits, '-', '.' or '_')"
#define ACTION_HINT   "(use allow, block or monitor)"
#define IDENTITY_MAX  255     /* user and group names */
#define METHOD_MAX    32
#define DOMAIN_MAX    253
#define URL_PREFIX_MAX 2048
#define REGEX_MAX     (sizeof(((config_profile_t *)0)->user_agent) - 1)

/* A reference by name, checked once the whole file is read (the sections
 * may come in any order). */
struct ref {
    enum { REF_PROFILE, REF_TIME } kind;
    char name[CONFIG_NAME_LEN];
    yaml_mark_t mark;
    size_t policy;              /* REF_PROFILE: the policy naming it */
    int *time_range;            /* REF_TIME: receives the index */
};

static int
push_ref(struct loader *ld, int kind, const char *name, yaml_mark_t mark, size_t policy,
         int *time_range)
{
    struct ref *r;

    if (ld->n_refs == ld->cap_refs) {
        size_t cap = ld->cap_refs ? ld->cap_refs * 2 : 64;
        struct ref *n = realloc(ld->refs, cap * sizeof(*n));
        if (n == NULL)
            return cl_fail(ld, ld->ev.start_mark, "out of memory");
        ld->refs = n;
        ld->cap_refs = cap;
    }
    r = &ld->refs[ld->n_refs++];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->mark = mark;
    r->policy = policy;
    r->time_range = time_range;
    return 0;
}

static bool
is_name(const char *s)
{
    size_t len = strlen(s);

    if (len == 0 || len >= CONFIG_NAME_LEN)
        return false;
    for (; *s; s++) {
        char c = *s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_'))
            return false;
    }
    return true;
}

static bool
has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return true;
    return false;
}

/* The current scalar as a name (a key of time_ranges, categories, ...). */
int
cl_get_name(struct loader *ld, const char *what, const char **out)
{
    char q[SHOW_LEN];

    if (cl_get_scalar(ld, what, out) < 0)
        return -1;
    if (!is_name(*out))
        return cl_fail(ld, ld->ev.start_mark, "invalid %s '%s' " NAME_HINT, what, cl_show(q, *out));
    return 0;
}

/* The current scalar as one of n words; message "invalid KEY 'x' (use a, b
 * or c)". */
int
cl_get_word(struct loader *ld, const char *key, const struct word *words, size_t n, int *out)
{
    char what[64], use[128], q[SHOW_LEN];
    const char *text = NULL;
    size_t off = 0;

    snprintf(what, sizeof(what), "'%s'", key);
    if (cl_get_scalar(ld, what, &text) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(text, words[i].word) == 0) {
            *out = words[i].value;
            return 0;
        }
    }
    use[0] = '\0';
    for (size_t i = 0; i < n && off < sizeof(use); i++) {
        int k = snprintf(use + off, sizeof(use) - off, "%s%s",
                         i == 0 ? "" : i + 1 == n ? " or " : ", ", words[i].word);
        if (k < 0)
            break;
        off += (size_t)k;
    }
    return cl_fail(ld, ld->ev.start_mark, "invalid %s '%s' (use %s)", key, cl_show(q, text), use);
}

static const struct word action_words[] = {
    { "allow", CONFIG_ACT_ALLOW }, { "block", CONFIG_ACT_BLOCK }, { "monitor", CONFIG_ACT_MONITOR },
};

static const struct word location_words[] = {
    { "remote", CONFIG_LOC_REMOTE }, { "local", CONFIG_LOC_LOCAL }, { "any", CONFIG_LOC_ANY },
};
static const struct word mode_words[] = {
    { "explicit", CONFIG_MATCH_EXPLICIT }, { "transparent", CONFIG_MATCH_TRANSPARENT },
    { "any", CONFIG_MATCH_ANY_MODE },
};
static const struct word auth_words[] = {
    { "none", CONFIG_AUTH_NONE }, { "basic", CONFIG_AUTH_BASIC },
};
static const struct word bool_words[] = { { "true", 1 }, { "false", 0 } };
static const struct word relay_words[] = {
    { "auto", CONFIG_RELAY_AUTO }, { "splice", CONFIG_RELAY_SPLICE }, { "copy", CONFIG_RELAY_COPY },
};
static const struct word type_words[] = {
    { "user", CONFIG_TYPE_USER }, { "machine", CONFIG_TYPE_MACHINE },
    { "device", CONFIG_TYPE_DEVICE },
};
static const struct word day_words[] = {
    { "mon", 1 << 0 }, { "tue", 1 << 1 }, { "wed", 1 << 2 }, { "thu", 1 << 3 },
    { "fri", 1 << 4 }, { "sat", 1 << 5 }, { "sun", 1 << 6 },
};

WORD_HANDLER(h_location, location_words, enum config_location)
WORD_HANDLER(h_match_mode, mode_words, enum config_mode_match)
WORD_HANDLER(h_action, action_words, enum config_action)
int
cl_bool(struct loader *ld, const struct key_def *def, void *base)
{
    int v;

    if (cl_get_word(ld, def->name, bool_words, sizeof(bool_words) / sizeof(bool_words[0]), &v) < 0)
        return -1;
    *(bool *)(void *)((char *)base + def->offset) = v != 0;
    return 0;
}
WORD_HANDLER(h_tunnel_relay, relay_words, enum config_tunnel_relay)

static int
h_auth(struct loader *ld, const struct key_def *def, void *base)
{
    int v;

    if (cl_get_word(ld, def->name, auth_words, sizeof(auth_words) / sizeof(auth_words[0]), &v) < 0)
        return -1;
    ((config_profile_t *)base)->auth = (enum config_auth)v;
    ld->auth_mark = ld->key_mark;
    return 0;
}

/* A path where "off" (or "") means none. */
int
cl_path_off(struct loader *ld, const struct key_def *def, void *base)
{
    char *field = (char *)base + def->offset;

    if (cl_string(ld, def, base) < 0)
        return -1;
    if (strcmp(field, "off") == 0)
        field[0] = '\0';
    return 0;
}

/* Realm: goes into Proxy-Authenticate: Basic realm="...". */
static int
h_realm(struct loader *ld, const struct key_def *def, void *base)
{
    char *field = (char *)base + def->offset;
    const char *text = NULL;
    char q[SHOW_LEN];
    size_t len;
    bool ok;

    if (cl_get_scalar(ld, "'realm'", &text) < 0)
        return -1;
    len = strlen(text);
    ok = len > 0 && len < def->count_offset;
    for (size_t i = 0; ok && i < len; i++)
        ok = text[i] >= 0x20 && text[i] < 0x7f && text[i] != '"' && text[i] != '\\';
    if (!ok)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid realm '%s' (1-%zu printable ASCII characters, no '\"' or '\\')",
                       cl_show(q, text), def->count_offset - 1);
    memcpy(field, text, len + 1);
    return 0;
}

/* ---- lists of names ---- */

enum name_kind {
    NAME_PLAIN,       /* profiles, list categories */
    NAME_IDENTITY,    /* users, groups */
    NAME_METHOD,
    NAME_DOMAIN,
    NAME_URL_PREFIX,
    NAME_REGEX,
};

struct names_ctx {
    enum name_kind kind;
    bool unique;
    size_t n;               /* entries stored in ld->scratch */
};

/* NULL if text is a valid entry of that kind, else the hint for the message. */
static const char *
check_entry(enum name_kind kind, char *text)
{
    size_t len = strlen(text);

    switch (kind) {
    case NAME_PLAIN:
        return is_name(text) ? NULL : "is not a valid name " NAME_HINT;
    case NAME_IDENTITY:
        if (len == 0 || len > IDENTITY_MAX || has_control(text) || strchr(text, ',') ||
            text[0] == ' ' || text[len - 1] == ' ')
            return "is not a valid user or group name (1-255 bytes, no ',', control "
                   "characters or surrounding spaces)";
        return NULL;
    case NAME_METHOD:
        if (len == 0 || len > METHOD_MAX)
            return "is not a method (1-32 uppercase letters, e.g. GET)";
        for (size_t i = 0; i < len; i++)
            if (text[i] < 'A' || text[i] > 'Z')
                return "is not a method (1-32 uppercase letters, e.g. GET)";
        return NULL;
    case NAME_DOMAIN:
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
    case NAME_URL_PREFIX:
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
    case NAME_REGEX:
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

/* A list of names into *out (pool storage). name is the key for messages.
 * Unique lists hold at most CONFIG_MAX_NAMES entries and record each
 * entry's position in ld->list_marks. */
static int
parse_names(struct loader *ld, const char *name, enum name_kind kind, bool unique,
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
    out->names = pool_alloc(ld, n * sizeof(char *), _Alignof(char *));
    if (out->names == NULL)
        return -1;
    memcpy(out->names, ld->scratch, n * sizeof(char *));
    out->n = n;
    return 0;
}

/* Handlers for names lists at def->offset (a config_names_t). */
#define NAMES_HANDLER(fn, kind, unique)                                        \
    static int                                                                 \
    fn(struct loader *ld, const struct key_def *def, void *base)               \
    {                                                                          \
        return parse_names(ld, def->name, kind, unique,                       \
                           (config_names_t *)(void *)((char *)base + def->offset)); \
    }
NAMES_HANDLER(h_identities, NAME_IDENTITY, true)
NAMES_HANDLER(h_domains, NAME_DOMAIN, false)
NAMES_HANDLER(h_url_prefixes, NAME_URL_PREFIX, false)
NAMES_HANDLER(h_regexes, NAME_REGEX, false)

/* A list that must not be empty when present. */
static int
not_empty(struct loader *ld, yaml_mark_t start, const char *key, size_t n, const char *absent)
{
    if (n == 0)
        return cl_fail(ld, start, "'%s' must not be empty (omit it %s)", key, absent);
    return 0;
}

static int
h_methods(struct loader *ld, const struct key_def *def, void *base)
{
    config_names_t *m = (config_names_t *)(void *)((char *)base + def->offset);
    yaml_mark_t start = ld->ev.start_mark;

    if (parse_names(ld, def->name, NAME_METHOD, true, m) < 0)
        return -1;
    return not_empty(ld, start, def->name, m->n, "to allow any method");
}

/* ports: uint16_t array at def->offset, size_t count at def->count_offset. */
static int
item_port_any(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    uint16_t *ports = (uint16_t *)(void *)((char *)base + def->offset);
    size_t *n = (size_t *)(void *)((char *)base + def->count_offset);
    char what[64], q[SHOW_LEN];
    unsigned long v;
    const char *text = NULL;

    snprintf(what, sizeof(what), "'%s' entry", def->name);
    if (cl_get_scalar(ld, what, &text) < 0)
        return -1;
    if (cl_parse_uint(text, 65535, &v) < 0 || v == 0)
        return cl_fail(ld, ld->ev.start_mark, "'%s' entry %s is not a port (1-65535)",
                       def->name, cl_show(q, text));
    ports[i] = (uint16_t)v;
    *n = i + 1;
    return 0;
}

static int
h_ports(struct loader *ld, const struct key_def *def, void *base)
{
    *(size_t *)(void *)((char *)base + def->count_offset) = 0;
    return cl_parse_list(ld, def, base, CONFIG_MAX_PORTS, item_port_any);
}

static int
h_policy_ports(struct loader *ld, const struct key_def *def, void *base)
{
    yaml_mark_t start = ld->ev.start_mark;

    if (h_ports(ld, def, base) < 0)
        return -1;
    return not_empty(ld, start, def->name,
                     *(size_t *)(void *)((char *)base + def->count_offset),
                     "to use proxy.connect_ports");
}

/* ---- identity_profiles ---- */

static int
item_type(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_profile_t *p = base;
    char q[SHOW_LEN];
    int v;

    (void)i;
    if (cl_get_word(ld, "type", type_words, sizeof(type_words) / sizeof(type_words[0]), &v) < 0)
        return -1;
    if (p->types & (unsigned)v)
        return cl_fail(ld, ld->ev.start_mark, "duplicate '%s' entry '%s'", def->name,
                       cl_show(q, (const char *)ld->ev.data.scalar.value));
    p->types |= (unsigned)v;
    return 0;
}

static int
h_types(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_profile_t *)base)->types = CONFIG_TYPE_ANY;
    return cl_parse_list(ld, def, base, 3, item_type);
}

static int
h_subnets(struct loader *ld, const struct key_def *def, void *base)
{
    config_profile_t *p = base;
    const struct key_def scratch_def = {
        def->name, NULL, offsetof(struct cidr_scratch, list),
        offsetof(struct cidr_scratch, n), NULL,
    };

    ld->cidrs.n = 0;
    p->subnets = NULL;
    p->n_subnets = 0;
    if (cl_parse_list(ld, &scratch_def, &ld->cidrs, CONFIG_MAX_CIDRS, item_cidr) < 0)
        return -1;
    if (ld->cidrs.n == 0)
        return 0;
    p->subnets = pool_alloc(ld, ld->cidrs.n * sizeof(cidr_t), _Alignof(cidr_t));
    if (p->subnets == NULL)
        return -1;
    memcpy(p->subnets, ld->cidrs.list, ld->cidrs.n * sizeof(cidr_t));
    p->n_subnets = ld->cidrs.n;
    return 0;
}

enum {
    PR_KEY_NAME = 0, PR_KEY_LOCATION, PR_KEY_TYPES, PR_KEY_SUBNETS, PR_KEY_PORTS, PR_KEY_MODE,
    PR_KEY_USER_AGENT, PR_KEY_USERS, PR_KEY_GROUPS, PR_KEY_AUTH, PR_KEY_REFUSE,
};
#define PR_OFF(f) offsetof(config_profile_t, f)
static const struct key_def profile_keys[] = {
    [PR_KEY_NAME] = { "name", cl_entry_name, PR_OFF(name), CONFIG_NAME_LEN, NULL },
    [PR_KEY_LOCATION] = { "location", h_location, PR_OFF(location), 0, NULL },
    [PR_KEY_TYPES] = { "types", h_types, 0, 0, NULL },
    [PR_KEY_SUBNETS] = { "subnets", h_subnets, 0, 0, NULL },
    [PR_KEY_PORTS] = { "ports", h_ports, PR_OFF(ports), PR_OFF(n_ports), NULL },
    [PR_KEY_MODE] = { "mode", h_match_mode, PR_OFF(mode), 0, NULL },
    [PR_KEY_USER_AGENT] = { "user_agent", cl_string, PR_OFF(user_agent),
                            sizeof(((config_profile_t *)0)->user_agent), NULL },
    [PR_KEY_USERS] = { "users", h_identities, PR_OFF(users), 0, NULL },
    [PR_KEY_GROUPS] = { "groups", h_identities, PR_OFF(groups), 0, NULL },
    [PR_KEY_AUTH] = { "auth", h_auth, 0, 0, NULL },
    [PR_KEY_REFUSE] = { "refuse_unidentified", cl_bool, PR_OFF(refuse_unidentified), 0, NULL },
};
#undef PR_OFF
static const struct section profile_section = {
    "in an identity_profiles entry", profile_keys, sizeof(profile_keys) / sizeof(profile_keys[0]),
};

/* auth: basic asks for credentials, which a transparent client cannot give. */
static int
profile_check(struct loader *ld, void *items, size_t i, uint64_t seen, yaml_mark_t start)
{
    config_profile_t *p = (config_profile_t *)items + i;

    (void)start;
    if (seen & (UINT64_C(1) << PR_KEY_AUTH)) {
        ld->profile_auth[i] = ld->auth_mark;
        if (p->auth == CONFIG_AUTH_BASIC && p->mode == CONFIG_MATCH_TRANSPARENT)
            return cl_fail(ld, ld->auth_mark,
                           "auth: basic cannot go with mode: transparent (such clients cannot "
                           "be asked for credentials)");
    }
    return 0;
}

static const struct cl_named_list profiles_list = {
    CL_NAMED("identity profile", config_profile_t, name, CONFIG_MAX_PROFILES),
    .sec = &profile_section, .unique_at = CL_UNIQUE_AT_NAME, .check = profile_check,
};

/* ---- access_policies ---- */

static int
h_rule_time(struct loader *ld, const struct key_def *def, void *base)
{
    config_category_rule_t *r = base;
    const char *text = NULL;

    (void)def;
    if (cl_get_name(ld, "time range name", &text) < 0)
        return -1;
    return push_ref(ld, REF_TIME, text, ld->ev.start_mark, 0, &r->time_range);
}

enum { RULE_KEY_ACTION = 0 };
static const struct key_def rule_keys[] = {
    [RULE_KEY_ACTION] = { "action", h_action, offsetof(config_category_rule_t, action), 0, NULL },
    { "time", h_rule_time, 0, 0, NULL },
};
static const struct section rule_section = {
    "in a category rule", rule_keys, sizeof(rule_keys) / sizeof(rule_keys[0]),
};

static void
rule_init(void *item)
{
    ((config_category_rule_t *)item)->time_range = -1;
}

/* A category's action: a word, or a mapping { action, time }. */
static int
rule_value(struct loader *ld, void *items, size_t i)
{
    config_category_rule_t *r = (config_category_rule_t *)items + i;
    yaml_mark_t vstart = ld->ev.start_mark;
    int v;

    if (ld->ev.type == YAML_MAPPING_START_EVENT) {
        uint64_t seen;
        if (cl_parse_mapping(ld, &rule_section, r, &seen) < 0)
            return -1;
        if (!(seen & (UINT64_C(1) << RULE_KEY_ACTION)))
            return cl_fail(ld, vstart, "category '%s' needs an 'action'", r->category);
        return 0;
    }
    if (ld->ev.type != YAML_SCALAR_EVENT || cl_is_null(&ld->ev))
        return cl_fail(ld, vstart,
                       "category '%s' needs an action " ACTION_HINT
                       " or a mapping { action, time }, got %s", r->category,
                       cl_kind_name(&ld->ev));
    if (cl_get_word(ld, "action", action_words, sizeof(action_words) / sizeof(action_words[0]),
                    &v) < 0)
        return -1;
    r->action = (enum config_action)v;
    return 0;
}

/* categories: { name: action | { action: ..., time: ... }, ... } */
static const struct cl_named_list rules_list = {
    CL_NAMED("category", config_category_rule_t, category, CONFIG_MAX_CATEGORY_RULES),
    .init = rule_init, .shape = "category: action", .name_what = "category name",
    .dup_names_key = true, .value = rule_value,
};

static int
h_policy_profiles(struct loader *ld, const struct key_def *def, void *base)
{
    config_policy_t *pol = base;
    size_t index = (size_t)(pol - ld->cfg->pol.policies);

    if (parse_names(ld, def->name, NAME_PLAIN, true, &pol->profiles) < 0)
        return -1;
    for (size_t i = 0; i < pol->profiles.n; i++)
        if (push_ref(ld, REF_PROFILE, pol->profiles.names[i], ld->list_marks[i], index, NULL) < 0)
            return -1;
    return 0;
}

enum { PO_KEY_NAME = 0 };
#define PO_OFF(f) offsetof(config_policy_t, f)
static const struct key_def policy_keys[] = {
    [PO_KEY_NAME] = { "name", cl_entry_name, PO_OFF(name), CONFIG_NAME_LEN, NULL },
    { "profiles", h_policy_profiles, 0, 0, NULL },
    { "categories", cl_named_list, PO_OFF(rules), PO_OFF(n_rules), NULL, &rules_list },
    { "default", h_action, PO_OFF(default_action), 0, NULL },
    { "connect_ports", h_policy_ports, PO_OFF(connect_ports), PO_OFF(n_connect_ports), NULL },
    { "methods", h_methods, PO_OFF(methods), 0, NULL },
};
#undef PO_OFF
static const struct section policy_section = {
    "in an access_policies entry", policy_keys, sizeof(policy_keys) / sizeof(policy_keys[0]),
};

static void
policy_init(void *item)
{
    ((config_policy_t *)item)->default_action = CONFIG_ACT_ALLOW;
}

/* The default policy (no profiles) must be the last one. */
static int
policy_check(struct loader *ld, void *items, size_t i, uint64_t seen, yaml_mark_t start)
{
    const config_policy_t *pol = items;

    (void)seen;
    (void)start;
    if (i > 0 && pol[i - 1].profiles.n == 0)
        return cl_fail(ld, ld->name_mark, "policy '%s' comes after the default policy '%s'",
                       pol[i].name, pol[i - 1].name);
    return 0;
}

static const struct cl_named_list policies_list = {
    CL_NAMED("access policy", config_policy_t, name, CONFIG_MAX_POLICIES),
    .init = policy_init, .sec = &policy_section, .unique_at = CL_UNIQUE_AT_NAME,
    .check = policy_check,
};

/* ---- time_ranges ---- */

static int
item_day(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_time_range_t *t = base;
    char q[SHOW_LEN];
    int v;

    (void)i;
    if (cl_get_word(ld, "day", day_words, sizeof(day_words) / sizeof(day_words[0]), &v) < 0)
        return -1;
    if (t->days & v)
        return cl_fail(ld, ld->ev.start_mark, "duplicate '%s' entry '%s'", def->name,
                       cl_show(q, (const char *)ld->ev.data.scalar.value));
    t->days = (uint8_t)(t->days | v);
    return 0;
}

static int
h_days(struct loader *ld, const struct key_def *def, void *base)
{
    config_time_range_t *t = base;
    yaml_mark_t start = ld->ev.start_mark;

    t->days = 0;
    if (cl_parse_list(ld, def, base, 7, item_day) < 0)
        return -1;
    if (t->days == 0)
        return cl_fail(ld, start, "'days' must not be empty");
    return 0;
}

/* "HH:MM" at s (5 characters); end allows 24:00. Minutes or -1. */
static int
hhmm(const char *s, bool end)
{
    int h, m;

    for (int i = 0; i < 5; i++)
        if (i == 2 ? s[i] != ':' : (s[i] < '0' || s[i] > '9'))
            return -1;
    h = (s[0] - '0') * 10 + (s[1] - '0');
    m = (s[3] - '0') * 10 + (s[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && (!end || m != 0)))
        return -1;
    return h * 60 + m;
}

static int
h_hours(struct loader *ld, const struct key_def *def, void *base)
{
    config_time_range_t *t = base;
    const char *text = NULL;
    char q[SHOW_LEN];
    int from, to;

    (void)def;
    if (cl_get_scalar(ld, "'hours'", &text) < 0)
        return -1;
    if (strlen(text) != 11 || text[5] != '-' || (from = hhmm(text, false)) < 0 ||
        (to = hhmm(text + 6, true)) < 0)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid hours '%s' (use HH:MM-HH:MM, e.g. 09:00-17:00; 24:00 ends the day)",
                       cl_show(q, text));
    if (from >= to)
        return cl_fail(ld, ld->ev.start_mark,
                       "hours '%s' must start before they end (a range cannot cross midnight)",
                       cl_show(q, text));
    t->from_min = (uint16_t)from;
    t->to_min = (uint16_t)to;
    return 0;
}

enum { TR_KEY_DAYS = 0, TR_KEY_HOURS };
static const struct key_def time_range_keys[] = {
    [TR_KEY_DAYS] = { "days", h_days, 0, 0, NULL },
    [TR_KEY_HOURS] = { "hours", h_hours, 0, 0, NULL },
};
static const struct section time_range_section = {
    "in a time range", time_range_keys, sizeof(time_range_keys) / sizeof(time_range_keys[0]),
};

/* A range's value: { days, hours }, both required. */
static int
time_range_value(struct loader *ld, void *items, size_t i)
{
    config_time_range_t *t = (config_time_range_t *)items + i;
    yaml_mark_t vstart = ld->ev.start_mark;
    uint64_t seen;

    if (ld->ev.type != YAML_MAPPING_START_EVENT)
        return cl_fail(ld, vstart, "time range '%s' must be a mapping { days, hours }, got %s",
                       t->name, cl_kind_name(&ld->ev));
    if (cl_parse_mapping(ld, &time_range_section, t, &seen) < 0)
        return -1;
    if (!(seen & (UINT64_C(1) << TR_KEY_DAYS)))
        return cl_fail(ld, vstart, "time range '%s' has no 'days'", t->name);
    if (!(seen & (UINT64_C(1) << TR_KEY_HOURS)))
        return cl_fail(ld, vstart, "time range '%s' has no 'hours'", t->name);
    return 0;
}

/* time_ranges: { name: { days: [...], hours: "HH:MM-HH:MM" }, ... } */
static const struct cl_named_list time_ranges_list = {
    CL_NAMED("time range", config_time_range_t, name, CONFIG_MAX_TIME_RANGES),
    .shape = "name: { days, hours }", .name_what = "time range name", .value = time_range_value,
};

/* ---- custom_categories ---- */

enum { CC_KEY_NAME = 0 };
#define CC_OFF(f) offsetof(config_custom_category_t, f)
static const struct key_def custom_keys[] = {
    [CC_KEY_NAME] = { "name", cl_entry_name, CC_OFF(name), CONFIG_NAME_LEN, NULL },
    { "domains", h_domains, CC_OFF(domains), 0, NULL },
    { "url_prefixes", h_url_prefixes, CC_OFF(url_prefixes), 0, NULL },
    { "regexes", h_regexes, CC_OFF(regexes), 0, NULL },
};
#undef CC_OFF
static const struct section custom_section = {
    "in a custom_categories entry", custom_keys, sizeof(custom_keys) / sizeof(custom_keys[0]),
};

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

static const struct cl_named_list custom_list = {
    CL_NAMED("custom category", config_custom_category_t, name, CONFIG_MAX_CUSTOM_CATS),
    .sec = &custom_section, .unique_at = CL_UNIQUE_AT_NAME, .check = custom_check,
};

/* ---- categories ---- */

/* A friendly name's list categories: at least one. */
static int
friendly_value(struct loader *ld, void *items, size_t i)
{
    config_friendly_t *f = (config_friendly_t *)items + i;
    yaml_mark_t vstart = ld->ev.start_mark;

    ld->friendly_marks[i] = ld->key_mark;
    if (parse_names(ld, f->name, NAME_PLAIN, true, &f->lists) < 0)
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

#define PS_STR(key, field, fn) { key, fn, offsetof(config_policies_t, field), \
                                 sizeof(((config_policies_t *)0)->field), NULL }
static const struct key_def categories_keys[] = {
    PS_STR("database", category_db, cl_path_off),
    { "names", cl_named_list, offsetof(config_policies_t, friendly),
      offsetof(config_policies_t, n_friendly), NULL, &friendly_list },
};
static const struct section categories_section = {
    "in categories", categories_keys, sizeof(categories_keys) / sizeof(categories_keys[0]),
};

static const struct key_def auth_keys[] = {
    PS_STR("realm", auth_realm, h_realm),
    PS_STR("password_file", auth_password_file, cl_string),
    { "surrogate_ttl", cl_duration, offsetof(config_policies_t, auth_surrogate_ttl), 0, NULL },
};
#undef PS_STR
static const struct section auth_section = {
    "in authentication", auth_keys, sizeof(auth_keys) / sizeof(auth_keys[0]),
};

/* ---- checks once the whole file is read ---- */

static int
check_policies(struct loader *ld, config_t *cfg)
{
    config_policies_t *pol = &cfg->pol;
    int used_by[CONFIG_MAX_PROFILES];

    for (size_t i = 0; i < CONFIG_MAX_PROFILES; i++)
        used_by[i] = -1;
    for (size_t i = 0; i < ld->n_refs; i++) {
        const struct ref *r = &ld->refs[i];
        size_t j;

        if (r->kind == REF_TIME) {
            for (j = 0; j < pol->n_time_ranges; j++)
                if (strcmp(pol->time_ranges[j].name, r->name) == 0)
                    break;
            if (j == pol->n_time_ranges)
                return cl_fail(ld, r->mark, "unknown time range '%s'", r->name);
            *r->time_range = (int)j;
            continue;
        }
        for (j = 0; j < pol->n_profiles; j++)
            if (strcmp(pol->profiles[j].name, r->name) == 0)
                break;
        if (j == pol->n_profiles)
            return cl_fail(ld, r->mark, "unknown identity profile '%s'", r->name);
        if (used_by[j] >= 0)
            return cl_fail(ld, r->mark,
                           "identity profile '%s' is already in policy '%s' (the first match wins)",
                           r->name, pol->policies[used_by[j]].name);
        used_by[j] = (int)r->policy;
    }
    for (size_t i = 0; i < pol->n_custom; i++) {
        for (size_t j = 0; j < pol->n_friendly; j++) {
            if (strcmp(pol->custom[i].name, pol->friendly[j].name) != 0)
                continue;
            return cl_fail(ld, ld->custom_marks[i].index > ld->friendly_marks[j].index
                           ? ld->custom_marks[i] : ld->friendly_marks[j],
                           "'%s' is both a custom category and a category name in categories.names",
                           pol->custom[i].name);
        }
    }
    if (pol->auth_password_file[0] == '\0') {
        for (size_t i = 0; i < pol->n_profiles; i++)
            if (pol->profiles[i].auth == CONFIG_AUTH_BASIC)
                return cl_fail(ld, ld->profile_auth[i],
                               "auth: basic needs authentication.password_file");
    }
    return 0;
}

/* ---- the schema ---- */

#define TIMEOUT(name) { #name, cl_duration, offsetof(config_timeouts_t, name), 0, NULL }
static const struct key_def timeout_keys[] = {
    TIMEOUT(header), TIMEOUT(idle), TIMEOUT(connect), TIMEOUT(response),
    TIMEOUT(tunnel_idle), TIMEOUT(shutdown), TIMEOUT(dns),
};
#undef TIMEOUT
static const struct section timeouts_section = {
    "in proxy.timeouts", timeout_keys, sizeof(timeout_keys) / sizeof(timeout_keys[0]),
};

static const struct key_def proxy_keys[] = {
    { "listen", h_listen, 0, 0, NULL },
    { "workers", h_workers, 0, 0, NULL },
    { "clients", cl_cidr_list, offsetof(config_t, clients), offsetof(config_t, n_clients), NULL },
    { "deny_destinations", cl_cidr_list, offsetof(config_t, deny_destinations),
      offsetof(config_t, n_deny_destinations), NULL },
    { "connect_ports", h_connect_ports, 0, 0, NULL },
    { "max_connections", h_max_connections, 0, 0, NULL },
    { "tunnel_relay", h_tunnel_relay, offsetof(config_t, tunnel_relay), 0, NULL },
    { "timeouts", cl_section, offsetof(config_t, timeouts), 0, &timeouts_section },
    { "access_log", h_access_log, 0, 0, NULL },
    { "visible_hostname", h_visible_hostname, 0, 0, NULL },
    { "transparent", cl_section, offsetof(config_t, transparent), 0, &config_transparent_section },
};
static const struct section proxy_section = {
    "in proxy", proxy_keys, sizeof(proxy_keys) / sizeof(proxy_keys[0]),
};

static const struct key_def top_keys[] = {
    { "proxy", cl_section, 0, 0, &proxy_section },
    { "log_level", h_log_level, 0, 0, NULL },
    { "mus", cl_section, offsetof(config_t, mus), 0, &mus_section },
    { "identity_profiles", cl_named_list, offsetof(config_t, pol.profiles),
      offsetof(config_t, pol.n_profiles), NULL, &profiles_list },
    { "access_policies", cl_named_list, offsetof(config_t, pol.policies),
      offsetof(config_t, pol.n_policies), NULL, &policies_list },
    { "time_ranges", cl_named_list, offsetof(config_t, pol.time_ranges),
      offsetof(config_t, pol.n_time_ranges), NULL, &time_ranges_list },
    { "custom_categories", cl_named_list, offsetof(config_t, pol.custom),
      offsetof(config_t, pol.n_custom), NULL, &custom_list },
    { "categories", cl_section, offsetof(config_t, pol), 0, &categories_section },
    { "authentication", cl_section, offsetof(config_t, pol), 0, &auth_section },
    { "extended_log", cl_path_off, offsetof(config_t, pol.extended_log),
      sizeof(((config_t *)0)->pol.extended_log), NULL },
    { "store", cl_section, offsetof(config_t, store), 0, &config_store_section },
    { "pac", cl_section, offsetof(config_t, pac), 0, &config_pac_section },
    { "wccp", config_wccp_parse, offsetof(config_t, wccp), 0, NULL },
    { "gre", config_gre_key, offsetof(config_t, gre), 0, NULL },
    { "admin", config_admin_parse, offsetof(config_t, admin), 0, NULL },
    { "run", cl_section, offsetof(config_t, run), 0, &config_run_section },
};
static const struct section top_section = {
    "at top level", top_keys, sizeof(top_keys) / sizeof(top_keys[0]),
};

_Static_assert(sizeof(proxy_keys) / sizeof(proxy_keys[0]) <= 64, "duplicate mask is 64 bits");
_Static_assert(sizeof(top_keys) / sizeof(top_keys[0]) <= 64, "duplicate mask is 64 bits");
_Static_assert(sizeof(profile_keys) / sizeof(profile_keys[0]) <= 64, "duplicate mask is 64 bits");

static const char *const default_clients[] = {
    "127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::1/128", "fc00::/7",
};
static const char *const default_deny[] = {
    "169.254.0.0/16", "fe80::/10", "0.0.0.0/8", "100.100.100.200/32", "fd00:ec2::254/128",
};

static int
set_defaults(config_t *cfg)
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
    config_transparent_defaults(&cfg->transparent);
    config_store_defaults(&cfg->store);
    config_pac_defaults(&cfg->pac);
    config_wccp_defaults(&cfg->wccp);
    config_gre_defaults(&cfg->gre);
    config_admin_defaults(&cfg->admin);
    config_run_defaults(&cfg->run);
    cfg->timeouts = (config_timeouts_t){
        .header = 10000, .idle = 60000, .connect = 10000, .response = 60000,
        .tunnel_idle = 300000, .shutdown = 10000, .dns = 5000,
    };
    cfg->max_connections = 10000;
    snprintf(cfg->access_log, sizeof(cfg->access_log), "var/access.log");
    snprintf(cfg->visible_hostname, sizeof(cfg->visible_hostname), "musproxy");
    cfg->log_level = LOG_LVL_INFO;
    cfg->mus.remote_users = CONFIG_REMOTE_HEADEND;
    snprintf(cfg->mus.probe_host, sizeof(cfg->mus.probe_host), "mus.cisco.com");
    cfg->mus.reconnect_interval = 60000;
    cfg->mus.grace = 300000;
    snprintf(cfg->mus.client_id, sizeof(cfg->mus.client_id), "musproxy");
    snprintf(cfg->mus.control_socket, sizeof(cfg->mus.control_socket), "var/musproxy.sock");
    /* policies: no profiles, policies, ranges or categories; no database,
     * no password file, no extended log */
    snprintf(cfg->pol.auth_realm, sizeof(cfg->pol.auth_realm), "musproxy");
    cfg->pol.auth_surrogate_ttl = 15 * 60 * 1000;
    return 0;
}

/* The whole stream: no document, or one whose root is a mapping or null. */
static int
parse_stream(struct loader *ld, config_t *cfg)
{
    if (cl_next_event(ld) < 0)                  /* STREAM_START */
        return -1;
    if (cl_next_event(ld) < 0)
        return -1;
    if (ld->ev.type == YAML_STREAM_END_EVENT)   /* empty file: defaults */
        return 0;
    if (cl_next_event(ld) < 0)                  /* the root node */
        return -1;
    if (ld->ev.type == YAML_MAPPING_START_EVENT) {
        if (cl_parse_mapping(ld, &top_section, cfg, NULL) < 0)
            return -1;
    } else if (!cl_is_null(&ld->ev)) {
        return cl_fail(ld, ld->ev.start_mark, "the top level must be a mapping, got %s",
                       cl_kind_name(&ld->ev));
    }
    if (cl_next_event(ld) < 0)                  /* DOCUMENT_END */
        return -1;
    if (cl_next_event(ld) < 0)
        return -1;
    if (ld->ev.type != YAML_STREAM_END_EVENT)
        return cl_fail(ld, ld->ev.start_mark, "only one YAML document is allowed");
    return 0;
}

/* ---- public ---- */

config_t *
config_load_buffer(const char *name, const char *data, size_t len, char *err, size_t errlen)
{
    struct loader ld = {0};
    bool parser_ready = false;
    config_t *cfg = NULL;

    err_set(err, errlen, "%s", "");
    if (name == NULL)
        name = "<config>";
    ld.name = name;
    ld.data = data ? data : "";
    ld.len = data ? len : 0;
    ld.err = err;
    ld.errlen = errlen;

    if (ld.len > CONFIG_MAX_FILE_BYTES) {
        err_set(err, errlen, "%s: file is larger than %u bytes", name, CONFIG_MAX_FILE_BYTES);
        goto fail;
    }
    cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL) {
        err_set(err, errlen, "%s: out of memory", name);
        goto fail;
    }
    if (strlen(name) >= sizeof(cfg->path)) {
        err_set(err, errlen, "configuration path is too long");
        goto fail;
    }
    memcpy(cfg->path, name, strlen(name) + 1);
    ld.cfg = cfg;
    if (set_defaults(cfg) < 0) {
        err_set(err, errlen, "%s: internal error: bad built-in defaults", name);
        goto fail;
    }
    if (!yaml_parser_initialize(&ld.parser)) {
        err_set(err, errlen, "%s: out of memory", name);
        goto fail;
    }
    parser_ready = true;
    yaml_parser_set_input_string(&ld.parser, (const unsigned char *)ld.data, ld.len);
    if (parse_stream(&ld, cfg) < 0 || check_policies(&ld, cfg) < 0)
        goto fail;
    goto done;

fail:
    config_free(cfg);
    cfg = NULL;
done:
    if (ld.have_ev)
        yaml_event_delete(&ld.ev);
    if (parser_ready)
        yaml_parser_delete(&ld.parser);
    free(ld.scratch);
    free(ld.refs);
    return cfg;
}

config_t *
config_load(const char *path, char *err, size_t errlen)
{
    const size_t limit = (size_t)CONFIG_MAX_FILE_BYTES + 1;
    config_t *cfg = NULL;
    size_t len = 0, cap = 0;
    char *buf = NULL;
    int fd;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        err_set(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    while (len < limit) {
        ssize_t n;
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : READ_CHUNK;
            char *nbuf;
            if (ncap > limit)
                ncap = limit;
            nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                err_set(err, errlen, "%s: out of memory", path);
                goto out;
            }
            buf = nbuf;
            cap = ncap;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err_set(err, errlen, "%s: cannot read: %s", path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > CONFIG_MAX_FILE_BYTES) {
        err_set(err, errlen, "%s: file is larger than %u bytes", path, CONFIG_MAX_FILE_BYTES);
        goto out;
    }
    cfg = config_load_buffer(path, buf ? buf : "", len, err, errlen);
out:
    free(buf);
    close(fd);
    return cfg;
}

void
config_free(config_t *cfg)
{
    struct config_pool *c, *next;

    if (cfg == NULL)
        return;
    for (c = cfg->pool; c != NULL; c = next) {
        next = c->next;
        free(c);
    }
    free(cfg);
}

int
config_parse_duration(const char *text, uint32_t *out_ms)
{
    uint64_t v = 0, mult;
    const char *p = text;

    if (text == NULL || *p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > DURATION_MAX_MS)
            return -1;
    }
    if (strcmp(p, "ms") == 0)
        mult = 1;
    else if (strcmp(p, "s") == 0 || *p == '\0')
        mult = 1000;
    else if (strcmp(p, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(p, "h") == 0)
        mult = 3600 * 1000;
    else
        return -1;
    if (v == 0 || v > DURATION_MAX_MS / mult)
        return -1;
    *out_ms = (uint32_t)(v * mult);
    return 0;
}

int
config_parse_sockaddr(const char *text, struct sockaddr_storage *out, socklen_t *out_len)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *port;
    unsigned long pnum;
    size_t hlen;
    bool v6;

    if (text == NULL)
        return -1;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (close == NULL || close[1] != ':')
            return -1;
        hlen = (size_t)(close - text - 1);
        memcpy(host, text + 1, hlen < sizeof(host) ? hlen : 0);
        port = close + 2;
        v6 = true;
    } else {
        const char *colon = strchr(text, ':');
        if (colon == NULL || strchr(colon + 1, ':') != NULL)
            return -1;
        hlen = (size_t)(colon - text);
        memcpy(host, text, hlen < sizeof(host) ? hlen : 0);
        port = colon + 1;
        v6 = false;
    }
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    host[hlen] = '\0';
    if (strlen(port) > 5 || cl_parse_uint(port, 65535, &pnum) < 0 || pnum == 0)
        return -1;

    memset(out, 0, sizeof(*out));
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)pnum);
        *out_len = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)out;
        if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)pnum);
        *out_len = sizeof(*sin);
    }
    return 0;
}
