/*
 * policy/config_load.h: the configuration loader's internals, shared by the
 * files that describe one section each (config_proxy.c, config_mus.c,
 * config_identity_profiles.c, config_access_policies.c, config_time_ranges.c,
 * config_custom_categories.c, config_categories.c, config_authentication.c,
 * config_transparent.c, config_store.c, config_reports.c, config_pac.c, config_wccp.c,
 * config_gre.c, config_radius.c, config_admin.c, config_run.c). A section is a table of keys
 * (struct section), each key a handler that consumes exactly the events of
 * its value. config_events.c reads the events and words the messages
 * ("name:line:column: message"), config.c's primitives read scalars, lists
 * and nested mappings, config_names.c names and lists of names,
 * config_named_list.c lists of named entries.
 * Not a public API: only policy/ includes it, and config.h stays the one
 * interface for everyone else.
 */
#ifndef MUS_POLICY_CONFIG_LOAD_H
#define MUS_POLICY_CONFIG_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <yaml.h>

#include "config.h"

#define SHOW_MAX             60            /* bytes of a value quoted in a message */
#define SHOW_LEN             (SHOW_MAX + 4)

struct loader;
struct key_def;
struct cl_named_list;

/* Consumes the value whose first event is ld->ev, leaving ld->ev on its last
 * event (the scalar, or the end of the list or mapping). base is the struct
 * the section fills; def->offset locates the field inside it. 0 or -1. */
typedef int (*key_fn)(struct loader *ld, const struct key_def *def, void *base);

/* Same contract, for entry i of a list. */
typedef int (*item_fn)(struct loader *ld, const struct key_def *def, void *base, size_t i);

struct section {
    const char *where;              /* "at top level", "in proxy", ... */
    const struct key_def *keys;
    size_t n_keys;                  /* at most 64 (the duplicate mask) */
};

/* A section's initializer from its key table. */
#define CL_SECTION(where, keys) { (where), (keys), sizeof(keys) / sizeof((keys)[0]) }

struct key_def {
    const char *name;
    key_fn fn;
    size_t offset;                  /* of the field (or array) in base */
    size_t count_offset;            /* lists: of the size_t entry count */
    const struct section *sub;      /* cl_section: the nested mapping */
    const struct cl_named_list *list;   /* cl_named_list: its entries */
};

/* A reference by name, checked once the whole file is read (the sections
 * may come in any order). */
struct ref {
    enum { REF_PROFILE, REF_TIME } kind;
    char name[CONFIG_NAME_LEN];
    yaml_mark_t mark;
    size_t policy;              /* REF_PROFILE: the policy naming it */
    int *time_range;            /* REF_TIME: receives the index */
};

struct loader {
    yaml_parser_t parser;
    yaml_event_t ev;                /* current event, valid if have_ev */
    bool have_ev;
    const char *name;               /* file name for messages */
    const char *data;
    size_t len;
    char *err;
    size_t errlen;
    yaml_mark_t addr_mark;          /* of the last listen address parsed */
    yaml_mark_t admin_listen_mark;  /* of admin.listen's value, if given */
    bool admin_listen_set;
    yaml_mark_t admin_tls_mark[2];  /* of admin.tls_cert's and tls_key's values, if given */
    yaml_mark_t admin_session_mark; /* of admin.session_idle's value, if given */
    yaml_mark_t radius_mark;        /* of radius.name's value, else of the section */
    yaml_mark_t store_backend_mark; /* of store.backend's value, if given */

    /* policies: */
    config_t *cfg;                  /* being built; owns the string pool */
    yaml_mark_t key_mark;           /* of the key whose value is being parsed */
    yaml_mark_t name_mark;          /* of the last entry 'name' value parsed */
    yaml_mark_t auth_mark;          /* of the last profile 'auth' key parsed */
    yaml_mark_t profile_auth[CONFIG_MAX_PROFILES];  /* auth key of each profile */
    yaml_mark_t custom_marks[CONFIG_MAX_CUSTOM_CATS];
    yaml_mark_t friendly_marks[CONFIG_MAX_FRIENDLY];
    yaml_mark_t list_marks[CONFIG_MAX_NAMES];       /* entries of the names list parsed */
    char **scratch;                 /* entries of the names list parsed (heap) */
    struct cidr_scratch {
        cidr_t list[CONFIG_MAX_CIDRS];
        size_t n;
    } cidrs;                        /* the subnets list parsed */
    struct ref *refs;               /* names to resolve once the file is read (heap) */
    size_t n_refs, cap_refs;
};

struct word {
    const char *word;
    int value;
};

/* ---- events and messages (config_events.c) ---- */

int cl_fail(struct loader *ld, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* s quoted for a message, cut at SHOW_MAX bytes; buf has SHOW_LEN bytes. */
const char *cl_show(char *buf, const char *s);
/* Advances ld->ev to the next event; refuses aliases, anchors and tags. */
int cl_next_event(struct loader *ld);
bool cl_is_null(const yaml_event_t *e);
const char *cl_kind_name(const yaml_event_t *e);

/* ---- primitives (config.c) ---- */

/* The current event as a scalar; "what must be a scalar" otherwise. */
int cl_get_scalar(struct loader *ld, const char *what, const char **out);
int cl_parse_uint(const char *s, unsigned long max, unsigned long *out);
int cl_parse_mapping(struct loader *ld, const struct section *sec, void *base, uint64_t *seen_out);
int cl_parse_list(struct loader *ld, const struct key_def *def, void *base, size_t max, item_fn fn);
int cl_get_word(struct loader *ld, const char *key, const struct word *words, size_t n, int *out);
/* 127.0.0.0/8, ::1 and ::ffff:127.0.0.0/104. */
bool cl_is_loopback(const struct sockaddr_storage *ss);
/* size bytes aligned to align from the config's pool (freed by config_free),
 * or NULL with the error set. */
void *cl_pool_alloc(struct loader *ld, size_t size, size_t align);
/* A name to resolve once the whole file is read (config.c checks them all). */
int cl_push_ref(struct loader *ld, int kind, const char *name, yaml_mark_t mark, size_t policy,
                int *time_range);

/* ---- handlers any section can use (config.c) ---- */

int cl_section(struct loader *ld, const struct key_def *def, void *base);   /* def->sub */
int cl_bool(struct loader *ld, const struct key_def *def, void *base);
int cl_duration(struct loader *ld, const struct key_def *def, void *base);
/* The same, 0 allowed ("0", "0s", "0ms", "0m"). */
int cl_duration0(struct loader *ld, const struct key_def *def, void *base);
/* cidr_t array at def->offset, size_t count at def->count_offset. */
int cl_cidr_list(struct loader *ld, const struct key_def *def, void *base);
/* The same for one entry (item i of such a list). */
int cl_cidr_item(struct loader *ld, const struct key_def *def, void *base, size_t i);
/* uint16_t port array at def->offset, size_t count at def->count_offset. */
int cl_port_list(struct loader *ld, const struct key_def *def, void *base);
/* A string into a char array of def->count_offset bytes (no control characters). */
int cl_string(struct loader *ld, const struct key_def *def, void *base);
/* The same, "off" stored as "" (a feature switched off). */
int cl_path_off(struct loader *ld, const struct key_def *def, void *base);

/* A handler storing one of the words of table into the field at def->offset. */
#define WORD_HANDLER(fn, table, type)                                          \
    static int                                                                 \
    fn(struct loader *ld, const struct key_def *def, void *base)               \
    {                                                                          \
        int v;                                                                 \
        if (cl_get_word(ld, def->name, table, sizeof(table) / sizeof(table[0]), &v) < 0) \
            return -1;                                                         \
        *(type *)(void *)((char *)base + def->offset) = (type)v;              \
        return 0;                                                              \
    }

/* ---- names and lists of names (config_names.c) ---- */

#define CL_NAME_HINT  "(1-63 letters, digits, '-', '.' or '_')"

/* The current scalar as a name (1..CONFIG_NAME_LEN-1 letters, digits, '-',
 * '.', '_'); what names it in messages ("time range name"). */
int cl_get_name(struct loader *ld, const char *what, const char **out);
/* A name into a char array of def->count_offset bytes: letters, digits, '-',
 * '.', '_', not empty (it goes into logs and status). */
int cl_name(struct loader *ld, const struct key_def *def, void *base);

enum cl_name_kind {
    CL_NAMES_PLAIN,       /* profiles, list categories */
    CL_NAMES_IDENTITY,    /* users, groups */
    CL_NAMES_METHOD,
    CL_NAMES_DOMAIN,
    CL_NAMES_URL_PREFIX,
    CL_NAMES_REGEX,
};

/* A list of names of that kind into *out (pool storage); key names it in
 * messages. Unique lists hold at most CONFIG_MAX_NAMES entries and record
 * each entry's position in ld->list_marks; the others hold at most
 * CONFIG_MAX_CUSTOM_ENTRIES. */
int cl_parse_names(struct loader *ld, const char *key, enum cl_name_kind kind, bool unique,
                   config_names_t *out);

/* A handler for a names list at def->offset (a config_names_t). */
#define NAMES_HANDLER(fn, kind, unique)                                        \
    static int                                                                 \
    fn(struct loader *ld, const struct key_def *def, void *base)               \
    {                                                                          \
        return cl_parse_names(ld, def->name, kind, unique,                     \
                              (config_names_t *)(void *)((char *)base + def->offset)); \
    }

/* A list that mixes domain names and address prefixes (config_hosts.c):
 * the current scalar goes to one or the other. A domain is lower-cased, a
 * leading "." or "*." dropped (it always covers its subdomains). */
typedef struct cl_hosts {
    char (*domains)[CONFIG_NAME_MAX];
    size_t *n_domains;
    size_t max_domains;
    cidr_t *cidrs;
    size_t *n_cidrs;
    size_t max_cidrs;
} cl_hosts_t;
int cl_domain_or_prefix(struct loader *ld, const char *key, const cl_hosts_t *h);

/* ---- lists of named entries (config_named_list.c) ---- */

/* Where a list of mappings reports a name used twice. */
enum cl_unique_at {
    CL_UNIQUE_AT_NAME = 0,  /* at the 'name' value (its key's handler is cl_entry_name),
                             * before spec->check */
    CL_UNIQUE_AT_ENTRY,     /* at the entry, once spec->check has accepted it */
};

/* Entries unique by name, at most limit, each one element of a fixed array
 * (def->offset) with its count (size_t, def->count_offset); the key's
 * handler is cl_named_list and def->list this description. Written either
 * as a list of mappings, each with a 'name' key (sec set), or as a mapping
 * of name: value (value set). */
struct cl_named_list {
    const char *noun;           /* an entry in messages: "time range", "headend" */
    size_t item_size;           /* of one element */
    size_t name_offset;         /* of its name, a char[CONFIG_NAME_LEN] */
    size_t limit;               /* elements at most: the array's CONFIG_MAX_* */
    void (*init)(void *item);   /* defaults of a zeroed element, or NULL */

    /* a list of mappings: "- { name: a, ... }" */
    const struct section *sec;  /* the keys of an entry; keys[0] is "name" */
    enum cl_unique_at unique_at;
    /* What needs the whole of entry i of items: seen has bit k for
     * sec->keys[k], start is the entry's position. NULL: nothing. */
    int (*check)(struct loader *ld, void *items, size_t i, uint64_t seen, yaml_mark_t start);

    /* a mapping of name: value, when sec is NULL: "a: ..." */
    const char *shape;          /* what the names map to, "name: { days, hours }" */
    const char *name_what;      /* a name in messages, "time range name" */
    bool dup_names_key;         /* "duplicate NOUN 'a' in 'KEY'", not "duplicate NOUN 'a'" */
    /* Consumes the value (the current event) into entry i of items, whose
     * name is set; ld->key_mark is the name's position. */
    int (*value)(struct loader *ld, void *items, size_t i);
};

/* The fields every list sets, from the element type and its name field. */
#define CL_NAMED(noun_, type, name_field, max)                                 \
    .noun = (noun_), .item_size = sizeof(type), .name_offset = offsetof(type, name_field), \
    .limit = (max)

int cl_named_list(struct loader *ld, const struct key_def *def, void *base);
/* The 'name' key of an entry (cl_name), its position remembered for
 * CL_UNIQUE_AT_NAME. */
int cl_entry_name(struct loader *ld, const struct key_def *def, void *base);

/* ---- sections in other files ---- */

extern const struct section config_proxy_section;          /* config_proxy.c */
int config_proxy_defaults(config_t *cfg);                  /* -1: bad built-in defaults */
extern const struct section config_mus_section;            /* config_mus.c */
void config_mus_defaults(config_mus_t *m);                 /* on a zeroed config_mus_t */
/* The policy sections (cfg->pol): named lists for top_keys[], and the mappings. */
extern const struct cl_named_list config_profiles_list;    /* config_identity_profiles.c */
extern const struct cl_named_list config_policies_list;    /* config_access_policies.c */
extern const struct cl_named_list config_time_ranges_list; /* config_time_ranges.c */
extern const struct cl_named_list config_custom_list;      /* config_custom_categories.c */
extern const struct section config_categories_section;     /* config_categories.c */
extern const struct section config_auth_section;           /* config_authentication.c */
void config_auth_defaults(config_policies_t *pol);
extern const struct section config_transparent_section;   /* config_transparent.c */
void config_transparent_defaults(config_transparent_t *t);
extern const struct section config_store_section;         /* config_store.c */
void config_store_defaults(config_store_t *s);
extern const struct section config_reports_section;       /* config_reports.c */
void config_reports_defaults(config_reports_t *r);
/* Once the whole file is read: the default archive beside the store. */
int config_reports_check(struct loader *ld, config_t *cfg);
/* After the whole file: the postgresql backend has a conninfo. */
int config_store_check(struct loader *ld, const config_t *cfg);
extern const struct section config_pac_section;           /* config_pac.c */
void config_pac_defaults(config_pac_t *p);
/* wccp: (config_wccp.c): def->offset is that of the config_wccp_t */
int config_wccp_parse(struct loader *ld, const struct key_def *def, void *base);
void config_wccp_defaults(config_wccp_t *w);
int config_gre_key(struct loader *ld, const struct key_def *def, void *base);   /* config_gre.c */
void config_gre_defaults(config_gre_t *g);
/* radius: (config_radius.c); the check needs the whole file (mus.headends). */
int config_radius_key(struct loader *ld, const struct key_def *def, void *base);
void config_radius_defaults(config_radius_t *r);
int config_radius_check(struct loader *ld, const config_t *cfg);
/* The admin section: parses the mapping, then checks the listen address
 * against allow_remote, the TLS files and the session limits (config_admin.c). */
int config_admin_parse(struct loader *ld, const struct key_def *def, void *base);
void config_admin_defaults(config_admin_t *a);
extern const struct section config_run_section;           /* config_run.c */
void config_run_defaults(config_run_t *r);

#endif
