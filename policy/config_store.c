/*
 * policy/config_store.c: the store section (see config.h): where every
 * transaction is recorded for the reports, how many records may wait for
 * the writer, and how long they are kept. It only parses and validates;
 * db/txnstore.c does the storing.
 */
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

static const struct key_def store_keys[] = {
    { "path", cl_path_off, offsetof(config_store_t, path), sizeof(((config_store_t *)0)->path), NULL },
    { "queue", h_queue, offsetof(config_store_t, queue), 0, NULL },
    { "retain_days", h_days, offsetof(config_store_t, retain_days), 0, NULL },
    { "retain_mb", h_mb, offsetof(config_store_t, retain_mb), 0, NULL },
    { "keep_query", cl_bool, offsetof(config_store_t, keep_query), 0, NULL },
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
