/*
 * policy/config_store.c: the store section (see config.h): where every
 * transaction is recorded for the reports, how many records may wait for
 * the writer, and how long they are kept; which database: one SQLite file
 * (the default) or, for a group of proxies, PostgreSQL (a conninfo without
 * a password, a password file, this proxy's node name). It only parses and
 * validates; db/txnstore.c does the storing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_load.h"

#define STORE_PATH_DEFAULT      "var/musproxy.db"
#define STORE_QUEUE_DEFAULT     65536u
#define STORE_RETAIN_DAYS_DEFAULT 30u
#define STORE_RETAIN_DAYS_MAX   36500u
#define STORE_RETAIN_MB_DEFAULT 1024u
#define STORE_RETAIN_MB_MAX     (1u << 24)   /* 16 TiB */

/* An unsigned count at def->offset (uint32_t), 0..max (min 1 if !zero_ok). */
static int
h_count(struct loader *ld, const struct key_def *def, void *base, unsigned long max, bool zero_ok)
{
    const char *text = NULL;
    unsigned long v;
    char what[64], q[SHOW_LEN];

    snprintf(what, sizeof(what), "'%s'", def->name);
    if (cl_get_scalar(ld, what, &text) < 0)
        return -1;
    if (cl_parse_uint(text, max, &v) < 0 || (v == 0 && !zero_ok))
        return cl_fail(ld, ld->ev.start_mark, "invalid %s '%s' (use %lu-%lu)", def->name,
                       cl_show(q, text), zero_ok ? 0ul : 1ul, max);
    *(uint32_t *)(void *)((char *)base + def->offset) = (uint32_t)v;
    return 0;
}

static int
h_queue(struct loader *ld, const struct key_def *def, void *base)
{
    return h_count(ld, def, base, CONFIG_STORE_QUEUE_MAX, false);
}

static int
h_days(struct loader *ld, const struct key_def *def, void *base)
{
    return h_count(ld, def, base, STORE_RETAIN_DAYS_MAX, true);
}

static int
h_mb(struct loader *ld, const struct key_def *def, void *base)
{
    return h_count(ld, def, base, STORE_RETAIN_MB_MAX, true);
}

static const struct word backend_words[] = {
    {"sqlite", CONFIG_STORE_SQLITE},
    {"postgresql", CONFIG_STORE_POSTGRESQL},
};
WORD_HANDLER(h_backend_word, backend_words, enum config_store_backend)

static int
h_backend(struct loader *ld, const struct key_def *def, void *base)
{
    ld->store_backend_mark = ld->ev.start_mark;
    return h_backend_word(ld, def, base);
}

/* Whether a libpq conninfo names a password: a password= keyword, or a
 * URI with user:password@ or ?password= / &password=. A plain scan (policy/
 * does not link libpq; the store refuses it again with libpq's parser). */
static bool
conninfo_has_password(const char *s)
{
    if (strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0) {
        const char *auth = strstr(s, "://") + 3, *end = auth + strcspn(auth, "/?");
        const char *at = memchr(auth, '@', (size_t)(end - auth));
        const char *q = strchr(s, '?');
        if (at != NULL && memchr(auth, ':', (size_t)(at - auth)) != NULL)
            return true;
        for (; q != NULL; q = strchr(q + 1, '&'))
            if (strncmp(q + 1, "password=", 9) == 0)
                return true;
        return false;
    }
    while (*s) {
        size_t klen;
        bool pw;
        s += strspn(s, " \t");
        klen = strcspn(s, "= \t");
        pw = klen == 8 && strncmp(s, "password", 8) == 0;
        s += klen;
        s += strspn(s, " \t");
        if (*s != '=')
            return false;                     /* libpq refuses it; the store says why */
        s++;
        s += strspn(s, " \t");
        if (pw)
            return true;
        if (*s == '\'') {                      /* a quoted value, \' and \\ escaped */
            for (s++; *s && *s != '\''; s++)
                if (*s == '\\' && s[1] != '\0')
                    s++;
            if (*s)
                s++;
        } else {
            s += strcspn(s, " \t");
        }
    }
    return false;
}

static int
h_conninfo(struct loader *ld, const struct key_def *def, void *base)
{
    yaml_mark_t at = ld->ev.start_mark;

    if (cl_string(ld, def, base) < 0)
        return -1;
    if (conninfo_has_password((char *)base + def->offset))
        return cl_fail(ld, at, "'conninfo' must not hold a password: put it in "
                       "'password_file' (libpq's passfile format, mode 0600)");
    return 0;
}

static const struct key_def pg_keys[] = {
    { "conninfo", h_conninfo, offsetof(config_store_t, conninfo),
      sizeof(((config_store_t *)0)->conninfo), NULL },
    { "password_file", cl_path_off, offsetof(config_store_t, password_file),
      sizeof(((config_store_t *)0)->password_file), NULL },
};

static const struct section pg_section = CL_SECTION("in store.postgresql", pg_keys);

static const struct key_def store_keys[] = {
    { "path", cl_path_off, offsetof(config_store_t, path), sizeof(((config_store_t *)0)->path), NULL },
    { "queue", h_queue, offsetof(config_store_t, queue), 0, NULL },
    { "retain_days", h_days, offsetof(config_store_t, retain_days), 0, NULL },
    { "retain_mb", h_mb, offsetof(config_store_t, retain_mb), 0, NULL },
    { "keep_query", cl_bool, offsetof(config_store_t, keep_query), 0, NULL },
    { "backend", h_backend, offsetof(config_store_t, backend), 0, NULL },
    { "node", cl_name, offsetof(config_store_t, node), sizeof(((config_store_t *)0)->node), NULL },
    { "postgresql", cl_section, 0, 0, &pg_section },
};

const struct section config_store_section = CL_SECTION("in store", store_keys);

void
config_store_defaults(config_store_t *s)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->path, sizeof(s->path), "%s", STORE_PATH_DEFAULT);
    s->queue = STORE_QUEUE_DEFAULT;
    s->retain_days = STORE_RETAIN_DAYS_DEFAULT;
    s->retain_mb = STORE_RETAIN_MB_DEFAULT;
}

int
config_store_check(struct loader *ld, const config_t *cfg)
{
    const config_store_t *s = &cfg->store;

    if (s->backend == CONFIG_STORE_POSTGRESQL && s->path[0] != '\0' && s->conninfo[0] == '\0')
        return cl_fail(ld, ld->store_backend_mark, "store: backend: postgresql needs "
                       "postgresql: conninfo (the database; its password goes in "
                       "password_file)");
    return 0;
}
