/*
 * db/txnrollup.c: summing rows per rollup key between flushes (see
 * txnrollup.h; the tables are in txnschema.c). No thread, no transaction.
 *
 * A row counts in up to 8 entries: 4 tables (ru_blocked only when the row
 * is blocked) times 2 spans (hour, day). Entries live in one array found
 * through an open-addressing table; their strings are interned in an arena
 * (one copy per distinct string, so keys compare as offsets). All of it is
 * sized at creation for rows_max rows and reset after every flush by
 * clearing only the slots that were used; only an arena outgrown by
 * unusually long strings is grown.
 */
#include "txnrollup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "txnschema.h"

#define RU_SPANS          2
#define RU_ENTRIES_PER_ROW 8          /* 4 tables x 2 spans */
#define RU_ARENA_PER_ROW  192         /* bytes of new strings a row brings, typically far less */

enum ru_table { RU_USER, RU_CATEGORY, RU_HOST, RU_BLOCKED, RU_TABLES };
enum ru_field { F_USER, F_HOST, F_CATEGORY, F_POLICY, F_RULE, F_FIELDS };

static const struct {
    const char *name, *cols, *where;  /* where: the key, as ?1 span, ?2 bucket, ?3 remote, ?4.. */
    unsigned nfields;
    enum ru_field fields[F_FIELDS];
} tables[RU_TABLES] = {
    [RU_USER] = {"ru_user", "user", "user = ?4", 1, {F_USER}},
    [RU_CATEGORY] = {"ru_category", "user, category", "user = ?4 AND category = ?5", 2,
                     {F_USER, F_CATEGORY}},
    [RU_HOST] = {"ru_host", "user, host", "user = ?4 AND host = ?5", 2, {F_USER, F_HOST}},
    [RU_BLOCKED] = {"ru_blocked", "user, host, category, access_policy, rule",
                    "user = ?4 AND host = ?5 AND category = ?6 AND access_policy = ?7"
                    " AND rule = ?8", 5, {F_USER, F_HOST, F_CATEGORY, F_POLICY, F_RULE}},
};

static const long long spans[RU_SPANS] = {TXNSCHEMA_SPAN_HOUR, TXNSCHEMA_SPAN_DAY};

typedef struct ru_entry {
    long long bucket, requests, bytes, blocked;
    uint32_t str[F_FIELDS];           /* arena offsets of the table's fields, in its order */
    uint32_t slot;                    /* where the table points at it */
    uint8_t table, span;
    bool remote;
    bool took;                        /* a row was taken away: the row may be left empty */
} ru_entry_t;

struct txnrollup {
    size_t rows_max, rows;
    ru_entry_t *entries;
    size_t nentries;
    uint32_t *slots;                  /* entry index + 1, 0 = free */
    size_t slots_mask;
    char *arena;
    size_t arena_used, arena_max;
    uint32_t *strslots;               /* arena offset + 1, 0 = free */
    size_t strslots_mask;
    uint32_t *strused;                /* the strslots in use, to clear them */
    size_t nstrused;
    sqlite3_stmt *upsert[RU_TABLES], *drop[RU_TABLES];
    int (*flush)(void *arg, txnrollup_t *ru);   /* NULL: the SQLite statements */
    void *flush_arg;
};

_Static_assert(RU_TABLES == TXNROLLUP_TABLES && F_FIELDS == TXNROLLUP_KEYS,
               "txnrollup.h's view of the tables");

static size_t
pow2_at_least(size_t n)
{
    size_t p = 64;

    while (p < n)
        p <<= 1;
    return p;
}

txnrollup_t *
txnrollup_new(size_t rows_max)
{
    txnrollup_t *ru = calloc(1, sizeof(*ru));
    size_t nent = (rows_max ? rows_max : 1) * RU_ENTRIES_PER_ROW;
    size_t nstr = (rows_max ? rows_max : 1) * F_FIELDS;

    if (ru == NULL)
        return NULL;
    ru->rows_max = rows_max ? rows_max : 1;
    ru->slots_mask = pow2_at_least(nent * 2) - 1;
    ru->strslots_mask = pow2_at_least(nstr * 2) - 1;
    ru->arena_max = ru->rows_max * RU_ARENA_PER_ROW;
    ru->entries = malloc(nent * sizeof(*ru->entries));
    ru->slots = calloc(ru->slots_mask + 1, sizeof(*ru->slots));
    ru->strslots = calloc(ru->strslots_mask + 1, sizeof(*ru->strslots));
    ru->strused = malloc(nstr * sizeof(*ru->strused));
    ru->arena = malloc(ru->arena_max);
    if (!ru->entries || !ru->slots || !ru->strslots || !ru->strused || !ru->arena) {
        txnrollup_free(ru);
        return NULL;
    }
    return ru;
}

void
txnrollup_free(txnrollup_t *ru)
{
    if (ru == NULL)
        return;
    txnrollup_finalize(ru);
    free(ru->entries);
    free(ru->slots);
    free(ru->strslots);
    free(ru->strused);
    free(ru->arena);
    free(ru);
}

void
txnrollup_finalize(txnrollup_t *ru)
{
    for (int t = 0; t < RU_TABLES; t++) {
        sqlite3_finalize(ru->upsert[t]);
        sqlite3_finalize(ru->drop[t]);
        ru->upsert[t] = ru->drop[t] = NULL;
    }
}

int
txnrollup_prepare(txnrollup_t *ru, sqlite3 *db)
{
    txnrollup_finalize(ru);
    for (int t = 0; t < RU_TABLES; t++) {
        char sql[768], params[64] = "";
        size_t n = 0;
        int rc;

        for (unsigned f = 0; f < tables[t].nfields; f++)
            n += (size_t)snprintf(params + n, sizeof(params) - n, ", ?%u", f + 4);
        snprintf(sql, sizeof(sql),
                 "INSERT INTO %s(span, bucket, remote, %s, requests, bytes, blocked)"
                 " VALUES(?1, ?2, ?3%s, ?%u, ?%u, ?%u)"
                 " ON CONFLICT(span, bucket, remote, %s) DO UPDATE SET"
                 " requests = requests + excluded.requests, bytes = bytes + excluded.bytes,"
                 " blocked = blocked + excluded.blocked",
                 tables[t].name, tables[t].cols, params, tables[t].nfields + 4,
                 tables[t].nfields + 5, tables[t].nfields + 6, tables[t].cols);
        rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &ru->upsert[t], NULL);
        if (rc != SQLITE_OK)
            return rc;
        snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE span = ?1 AND bucket = ?2 AND"
                 " remote = ?3 AND %s AND requests <= 0", tables[t].name, tables[t].where);
        rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &ru->drop[t], NULL);
        if (rc != SQLITE_OK)
            return rc;
    }
    return SQLITE_OK;
}

void
txnrollup_reset(txnrollup_t *ru)
{
    for (size_t i = 0; i < ru->nentries; i++)
        ru->slots[ru->entries[i].slot] = 0;
    for (size_t i = 0; i < ru->nstrused; i++)
        ru->strslots[ru->strused[i]] = 0;
    ru->nentries = ru->nstrused = ru->arena_used = ru->rows = 0;
}

static uint64_t
hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;           /* FNV-1a */

    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static uint64_t
mix(uint64_t h, uint64_t v)
{
    h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
}

/* The arena offset of s, copied in when new; false if the arena cannot
 * grow (out of memory). */
static bool
intern(txnrollup_t *ru, const char *s, uint32_t *off)
{
    size_t n = strlen(s), i;
    uint32_t o;

    for (i = hash_bytes(s, n) & ru->strslots_mask; ru->strslots[i] != 0;
         i = (i + 1) & ru->strslots_mask) {
        o = ru->strslots[i] - 1;
        if (strcmp(ru->arena + o, s) == 0) {
            *off = o;
            return true;
        }
    }
    if (ru->arena_used + n + 1 > ru->arena_max) {
        size_t max = ru->arena_max * 2 > ru->arena_used + n + 1 ? ru->arena_max * 2
                                                                : ru->arena_used + n + 1;
        char *a = max <= UINT32_MAX ? realloc(ru->arena, max) : NULL;
        if (a == NULL)
            return false;
        ru->arena = a;
        ru->arena_max = max;
    }
    o = (uint32_t)ru->arena_used;
    memcpy(ru->arena + o, s, n + 1);
    ru->arena_used += n + 1;
    ru->strslots[i] = o + 1;
    ru->strused[ru->nstrused++] = (uint32_t)i;
    *off = o;
    return true;
}

static ru_entry_t *
entry(txnrollup_t *ru, int t, int span, long long bucket, bool remote, const uint32_t *str)
{
    uint64_t h = mix(mix(mix((uint64_t)t, (uint64_t)span), (uint64_t)bucket), remote);
    size_t i;
    ru_entry_t *e;

    for (unsigned f = 0; f < tables[t].nfields; f++)
        h = mix(h, str[tables[t].fields[f]]);
    for (i = h & ru->slots_mask; ru->slots[i] != 0; i = (i + 1) & ru->slots_mask) {
        bool same;
        e = &ru->entries[ru->slots[i] - 1];
        same = e->table == t && e->span == span && e->bucket == bucket && e->remote == remote;
        for (unsigned f = 0; same && f < tables[t].nfields; f++)
            same = e->str[f] == str[tables[t].fields[f]];
        if (same)
            return e;
    }
    e = &ru->entries[ru->nentries++];
    memset(e, 0, sizeof(*e));
    e->table = (uint8_t)t;
    e->span = (uint8_t)span;
    e->bucket = bucket;
    e->remote = remote;
    for (unsigned f = 0; f < tables[t].nfields; f++)
        e->str[f] = str[tables[t].fields[f]];
    e->slot = (uint32_t)i;
    ru->slots[i] = (uint32_t)ru->nentries;
    return e;
}

int
txnrollup_add(txnrollup_t *ru, const txnrollup_row_t *row, int sign)
{
    const char *text[F_FIELDS] = {row->user, row->host, row->category, row->access_policy,
                                  row->rule};
    uint32_t str[F_FIELDS];

    if (ru->rows == ru->rows_max) {
        int rc = txnrollup_flush(ru);
        if (rc != SQLITE_OK)
            return rc;
    }
    for (int f = 0; f < F_FIELDS; f++)
        if (!intern(ru, text[f] ? text[f] : "", &str[f]))
            return SQLITE_NOMEM;
    for (int sp = 0; sp < RU_SPANS; sp++) {
        long long bucket = txnschema_bucket(row->time_ms, spans[sp]);
        for (int t = 0; t < RU_TABLES; t++) {
            ru_entry_t *e;
            if (t == RU_BLOCKED && !row->blocked)
                continue;
            e = entry(ru, t, sp, bucket, row->remote, str);
            e->requests += sign;
            e->bytes += sign * row->bytes;
            e->blocked += sign * (row->blocked ? 1 : 0);
            e->took |= sign < 0;
        }
    }
    ru->rows++;
    return SQLITE_OK;
}

/* Binds the key of e as ?1.. of st; the next parameter's number. */
static int
bind_key(txnrollup_t *ru, sqlite3_stmt *st, const ru_entry_t *e)
{
    int i = 1;

    sqlite3_bind_int64(st, i++, spans[e->span]);
    sqlite3_bind_int64(st, i++, e->bucket);
    sqlite3_bind_int(st, i++, e->remote);
    for (unsigned f = 0; f < tables[e->table].nfields; f++)
        sqlite3_bind_text(st, i++, ru->arena + e->str[f], -1, SQLITE_STATIC);
    return i;
}

static int
run(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The key columns as SQL identifiers ("user" is a keyword in PostgreSQL). */
static const char *const quoted_cols[RU_TABLES] = {
    [RU_USER] = "\"user\"",
    [RU_CATEGORY] = "\"user\", category",
    [RU_HOST] = "\"user\", host",
    [RU_BLOCKED] = "\"user\", host, category, access_policy, rule",
};

const char *
txnrollup_table(int t, const char **cols)
{
    if (t < 0 || t >= RU_TABLES)
        return NULL;
    if (cols != NULL)
        *cols = quoted_cols[t];
    return tables[t].name;
}

int
txnrollup_each(const txnrollup_t *ru, int (*fn)(void *arg, const txnrollup_sum_t *sum), void *arg)
{
    for (size_t k = 0; k < ru->nentries; k++) {
        const ru_entry_t *e = &ru->entries[k];
        txnrollup_sum_t v = {e->table, spans[e->span], e->bucket, e->remote, e->took,
                             tables[e->table].nfields, {NULL}, e->requests, e->bytes,
                             e->blocked};
        int rc;

        if (e->requests == 0 && !e->took)
            continue;
        for (unsigned f = 0; f < v.nkeys; f++)
            v.key[f] = ru->arena + e->str[f];
        if ((rc = fn(arg, &v)) != 0)
            return rc;
    }
    return 0;
}

void
txnrollup_set_flush(txnrollup_t *ru, int (*flush)(void *arg, txnrollup_t *ru), void *arg)
{
    ru->flush = flush;
    ru->flush_arg = arg;
}

int
txnrollup_flush(txnrollup_t *ru)
{
    int rc = SQLITE_OK;

    if (ru->flush != NULL) {
        rc = ru->nentries > 0 ? ru->flush(ru->flush_arg, ru) : 0;
        txnrollup_reset(ru);
        return rc;
    }

    for (size_t k = 0; k < ru->nentries && rc == SQLITE_OK; k++) {
        const ru_entry_t *e = &ru->entries[k];
        sqlite3_stmt *st = ru->upsert[e->table];
        int i;

        if (e->requests == 0 && !e->took)
            continue;
        i = bind_key(ru, st, e);
        sqlite3_bind_int64(st, i++, e->requests);
        sqlite3_bind_int64(st, i++, e->bytes);
        sqlite3_bind_int64(st, i, e->blocked);
        rc = run(st);
        if (rc == SQLITE_OK && e->took) {
            bind_key(ru, ru->drop[e->table], e);
            rc = run(ru->drop[e->table]);
        }
    }
    txnrollup_reset(ru);
    return rc;
}
