/*
 * tests/unit/db/txntest.h: helpers shared by the store and report tests: a
 * temporary directory per test, building transaction records, waiting for
 * the writer, and one-number queries on the file through a connection of
 * the test's own. Test code only.
 */
#ifndef MUS_TESTS_TXNTEST_H
#define MUS_TESTS_TXNTEST_H

#include <stdbool.h>
#include <stdint.h>

#include "../../../db/txnstore.h"

extern char txntest_dir[64];

void txntest_setup(void);
void txntest_teardown(void);
/* tmp dir + "/" + rel, in one of four rotating buffers */
const char *txntest_path(const char *rel);

int64_t txntest_now_ms(void);
int64_t txntest_mono_ms(void);

/* A complete record: url "http://HOST/p/N?q=N", the rest from the args. */
void txntest_record(txn_record_t *r, int64_t t, const char *user, const char *host,
                    const char *category, bool remote, enum txn_decision d, uint64_t bytes,
                    unsigned n);

/* Polls the store's stats until pred(stats) or timeout_ms; true if met. */
bool txntest_wait(txnstore_t *s, bool (*pred)(const txnstore_stats_t *, uint64_t), uint64_t arg,
                  unsigned timeout_ms);
bool txntest_written_at_least(const txnstore_stats_t *st, uint64_t n);

/* The first column of the first row of sql on path (asserts success). */
long long txntest_query_int(const char *path, const char *sql);

#endif
