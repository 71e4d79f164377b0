/*
 * tests/unit/db/reportcmp.h: random traffic for the store and every report
 * compared between two report_t: test_txnrollup.c compares the rollups
 * against the rows, test_txnstore_pg.c PostgreSQL against SQLite. Test code
 * only.
 */
#ifndef MUS_TESTS_REPORTCMP_H
#define MUS_TESTS_REPORTCMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../../../db/report.h"
#include "../../../db/txnstore.h"

#define HOUR      3600000LL
#define DAY       86400000LL
#define T0        (1700000000000LL + 1234567)   /* not aligned to anything */
#define SPAN_MS   (4 * DAY + 5 * HOUR)
#define REPORTCMP_THREADS_MAX 3

/* Record i of the random traffic of seed, with a time in [t0, t0 + span). */
void reportcmp_record(txn_record_t *r, uint64_t seed, unsigned i, int64_t t0, int64_t span);

/* Submits records 0..n-1 from `threads` threads (1: in order; at most
 * REPORTCMP_THREADS_MAX) and waits until they are written. */
void reportcmp_fill(txnstore_t *s, uint64_t seed, unsigned n, int64_t t0, int64_t span,
                    unsigned threads);

/* report_open(path) with the rollups used or not (asserts success). */
report_t *reportcmp_open(const char *path, bool use);

/* Every document (and every order of the ranked reports, each user's
 * detail) over the ranges of seed (aligned, unaligned, sub-hour, empty;
 * every location), the same JSON from a and b (named na, nb in messages). */
void reportcmp_agree(report_t *a, report_t *b, uint64_t seed, const char *na, const char *nb);

/* Every rollup row is the sum of its rows, and every group of rows has its
 * rollup row, for both spans: query(arg, sql) answers one integer (SQL both
 * SQLite and PostgreSQL read). */
void reportcmp_rollups_match(long long (*query)(void *arg, const char *sql), void *arg);

#endif
