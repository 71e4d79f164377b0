/*
 * policy/config.c: loads and validates musproxy's YAML configuration (see
 * config.h for the keys and their defaults): the top-level document walk,
 * the primitives every section uses (config_load.h: scalars, lists, nested
 * mappings, the string pool), the checks that need the whole file
 * (references between sections), and config_free. It does not hold any
 * section's keys: each section has a file of its own (config_proxy.c,
 * config_mus.c, config_identity_profiles.c, ...); the event stream and the
 * messages are config_events.c, lists of named entries config_named_list.c,
 * names and lists of names config_names.c.
 *
 * The file is read with libyaml's event API and validated while it streams:
 * nothing but the config_t is built. Each mapping is described by a table of
 * keys (struct section) and each key by a handler that consumes exactly the
 * events of its value, so a new section is a new file with its table and
 * handlers plus one line in top_keys[]. The first error stops the load and
 * is reported as "name:line:column: message" with the 1-based position of
 * the offending node.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <yaml.h>

#include "../common/log.h"
#include "../common/err.h"
#include "config_load.h"

#define DURATION_MAX_MS      2147483647u   /* INT32_MAX: fits an int timeout */
#define READ_CHUNK           (64u << 10)

/* ---- scalars ---- */

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

int
cl_duration0(struct loader *ld, const struct key_def *def, void *base)
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

int
cl_cidr_item(struct loader *ld, const struct key_def *def, void *base, size_t i)
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
    return cl_parse_list(ld, def, base, CONFIG_MAX_CIDRS, cl_cidr_item);
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

int
cl_port_list(struct loader *ld, const struct key_def *def, void *base)
{
    *(size_t *)(void *)((char *)base + def->count_offset) = 0;
    return cl_parse_list(ld, def, base, CONFIG_MAX_PORTS, item_port_any);
}

/* A path or name stored in a char array of def->count_offset bytes (for
 * strings, count_offset holds the size of the field). Control characters
 * and an empty value are refused (cl_path_off takes "off"). */
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

static const struct word bool_words[] = { { "true", 1 }, { "false", 0 } };

int
cl_bool(struct loader *ld, const struct key_def *def, void *base)
{
    int v;

    if (cl_get_word(ld, def->name, bool_words, sizeof(bool_words) / sizeof(bool_words[0]), &v) < 0)
        return -1;
    *(bool *)(void *)((char *)base + def->offset) = v != 0;
    return 0;
}

bool
cl_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return false;
}

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
void *
cl_pool_alloc(struct loader *ld, size_t size, size_t align)
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

/* ---- references between sections, checked once the whole file is read ---- */

int
cl_push_ref(struct loader *ld, int kind, const char *name, yaml_mark_t mark, size_t policy,
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

/* ---- the document ---- */

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

static const struct key_def top_keys[] = {
    { "proxy", cl_section, 0, 0, &config_proxy_section },
    { "log_level", h_log_level, 0, 0, NULL },
    { "mus", cl_section, offsetof(config_t, mus), 0, &config_mus_section },
    { "identity_profiles", cl_named_list, offsetof(config_t, pol.profiles),
      offsetof(config_t, pol.n_profiles), NULL, &config_profiles_list },
    { "access_policies", cl_named_list, offsetof(config_t, pol.policies),
      offsetof(config_t, pol.n_policies), NULL, &config_policies_list },
    { "time_ranges", cl_named_list, offsetof(config_t, pol.time_ranges),
      offsetof(config_t, pol.n_time_ranges), NULL, &config_time_ranges_list },
    { "custom_categories", cl_named_list, offsetof(config_t, pol.custom),
      offsetof(config_t, pol.n_custom), NULL, &config_custom_list },
    { "categories", cl_section, offsetof(config_t, pol), 0, &config_categories_section },
    { "authentication", cl_section, offsetof(config_t, pol), 0, &config_auth_section },
    { "extended_log", cl_path_off, offsetof(config_t, pol.extended_log),
      sizeof(((config_t *)0)->pol.extended_log), NULL },
    { "store", cl_section, offsetof(config_t, store), 0, &config_store_section },
    { "reports", cl_section, offsetof(config_t, reports), 0, &config_reports_section },
    { "pac", cl_section, offsetof(config_t, pac), 0, &config_pac_section },
    { "wccp", config_wccp_parse, offsetof(config_t, wccp), 0, NULL },
    { "gre", config_gre_key, offsetof(config_t, gre), 0, NULL },
    { "radius", config_radius_key, offsetof(config_t, radius), 0, NULL },
    { "admin", config_admin_parse, offsetof(config_t, admin), 0, NULL },
    { "run", cl_section, offsetof(config_t, run), 0, &config_run_section },
};
static const struct section top_section = CL_SECTION("at top level", top_keys);

_Static_assert(sizeof(top_keys) / sizeof(top_keys[0]) <= 64, "duplicate mask is 64 bits");

/* Every section's defaults; the policy sections have none but the
 * authentication realm and surrogate TTL (no profiles, policies, ranges or
 * categories; no database, password file or extended log). */
static int
set_defaults(config_t *cfg)
{
    if (config_proxy_defaults(cfg) < 0)
        return -1;
    cfg->log_level = LOG_LVL_INFO;
    config_mus_defaults(&cfg->mus);
    config_auth_defaults(&cfg->pol);
    config_store_defaults(&cfg->store);
    config_reports_defaults(&cfg->reports);
    config_pac_defaults(&cfg->pac);
    config_wccp_defaults(&cfg->wccp);
    config_gre_defaults(&cfg->gre);
    config_radius_defaults(&cfg->radius);
    config_admin_defaults(&cfg->admin);
    config_run_defaults(&cfg->run);
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
    if (parse_stream(&ld, cfg) < 0 || check_policies(&ld, cfg) < 0 ||
        config_radius_check(&ld, cfg) < 0 || config_reports_check(&ld, cfg) < 0 ||
        config_store_check(&ld, cfg) < 0)
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
