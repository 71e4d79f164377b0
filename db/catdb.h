/*
 * db/catdb.h: the URL category database (SQLite). `musctl categories import
 * DIR` reads a UT1-layout blacklist directory (one folder per category with
 * `domains`, `urls` and optional `expressions` files) into it; musproxy reads
 * it back at start and on reload through catdb_source(), a
 * policy_list_source. It keeps no state in memory and is never called on a
 * request path.
 */
#ifndef MUS_DB_CATDB_H
#define MUS_DB_CATDB_H

#include <stddef.h>
#include <stdint.h>

#include "../policy/policy.h"

#define CATDB_LINE_MAX      4096     /* longer lines in list files are skipped (counted) */
#define CATDB_MAX_CATEGORY  64       /* bytes of a category (folder) name */

typedef struct catdb_counts {
    uint64_t categories, domains, urls, expressions;
    uint64_t skipped;                /* malformed or too long lines */
} catdb_counts_t;

/* Replaces the database's content with the lists under dir, in one
 * transaction (a failed import leaves the old content). 0, or -1 with a
 * message. */
int catdb_import(const char *db_path, const char *dir, catdb_counts_t *out, char *err,
                 size_t errlen);

/* A policy_list_source: arg is the database path (const char *). */
int catdb_source(void *arg, policy_emit_fn emit, void *ctx, char *err, size_t errlen);

/* Counts per kind in the database (status, tests). 0 or -1. */
int catdb_counts(const char *db_path, catdb_counts_t *out, char *err, size_t errlen);

#endif
