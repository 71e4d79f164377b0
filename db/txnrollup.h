/*
 * db/txnrollup.h: the rollups' bookkeeping in the store's writer thread
 * (inside db/ only; the tables are in txnschema.h). The writer hands every
 * row it inserts (+1) and every row retention deletes (-1) to
 * txnrollup_add, which sums them per rollup key in memory; txnrollup_flush
 * then applies the sums with one prepared upsert per key, inside the
 * writer's open transaction, so the rollups commit (or roll back) with the
 * rows. Memory is allocated once, for a bounded number of rows: past it,
 * add flushes by itself (still inside the transaction). It never opens a
 * transaction, reads no report and is used by one thread.
 */
#ifndef MUS_DB_TXNROLLUP_H
#define MUS_DB_TXNROLLUP_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct txnrollup txnrollup_t;

/* What the rollups read of a txn row; strings are copied by add. */
typedef struct txnrollup_row {
    int64_t time_ms;
    int64_t bytes;
    bool remote, blocked;
    const char *user, *host, *category, *access_policy, *rule;
} txnrollup_row_t;

/* One key's sums, as txnrollup_each shows them: table t of
 * TXNROLLUP_TABLES (txnrollup_table names it and its key columns after
 * remote), the span and bucket, and the key's strings in that order. took:
 * a row was taken away, so the key's row may now be empty (requests 0). */
#define TXNROLLUP_TABLES  4
#define TXNROLLUP_KEYS    5           /* key strings of a table at most */
typedef struct txnrollup_sum {
    int table;
    long long span, bucket;
    bool remote, took;
    unsigned nkeys;
    const char *key[TXNROLLUP_KEYS];
    long long requests, bytes, blocked;
} txnrollup_sum_t;

/* The name of rollup table t ("ru_user", ...) and, in *cols, its key
 * columns after remote ("user, category"; "user" is spelled as the SQL
 * identifier it is, quoted). */
const char *txnrollup_table(int t, const char **cols);

/* Calls fn for each key with sums not yet flushed (stopping at the first
 * nonzero return, which it returns). */
int txnrollup_each(const txnrollup_t *ru, int (*fn)(void *arg, const txnrollup_sum_t *sum),
                   void *arg);

/* Another database's flush: txnrollup_flush (and an add that must flush)
 * calls flush(arg, ru) instead of the SQLite statements, then forgets the
 * sums; flush returns 0 or nonzero for an error. */
void txnrollup_set_flush(txnrollup_t *ru, int (*flush)(void *arg, txnrollup_t *ru), void *arg);

/* Sums of up to rows_max rows between flushes; NULL when out of memory. */
txnrollup_t *txnrollup_new(size_t rows_max);
void txnrollup_free(txnrollup_t *ru);

/* Prepares the statements on db (the writer's connection, at schema
 * TXNSCHEMA_VERSION). SQLITE_OK or the error; finalize before closing db. */
int txnrollup_prepare(txnrollup_t *ru, sqlite3 *db);
void txnrollup_finalize(txnrollup_t *ru);

/* Forgets the sums not yet flushed (the transaction was rolled back). */
void txnrollup_reset(txnrollup_t *ru);

/* Adds row (sign +1) or takes it away (-1). SQLITE_OK, or the error of
 * the flush it had to do. */
int txnrollup_add(txnrollup_t *ru, const txnrollup_row_t *row, int sign);

/* Writes the sums (rows whose requests fall to 0 are deleted) and forgets
 * them. SQLITE_OK or the error (the caller rolls back). */
int txnrollup_flush(txnrollup_t *ru);

#endif
