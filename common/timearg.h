/*
 * common/timearg.h: a point in time given on a command line (`musctl report
 * --from TIME --to TIME`), as Unix milliseconds. Accepted:
 *
 *   now                      the time passed in as now_ms
 *   -24h  -7d  -30m  +1h     now plus or minus N seconds (s), minutes (m),
 *                            hours (h), days (d, 86 400 s) or weeks (w)
 *   2026-12-04               local midnight of that day
 *   2026-12-04T13:00         local time (a space may stand for the T)
 *   2026-12-04T13:00:05.250  seconds and a fraction (1-9 digits, kept to ms)
 *   ...Z  ...+01:00  ...-0500  ...+01   UTC, or that offset from UTC
 *
 * Years 1970-9999; a day must exist in its month; hours 00-23. A pure
 * parser (the clock is the caller's, local time is the C library's): no
 * allocation, no I/O; fuzzed by tests/fuzz/fuzz_timearg.c.
 */
#ifndef MUS_COMMON_TIMEARG_H
#define MUS_COMMON_TIMEARG_H

#include <stddef.h>
#include <stdint.h>

#define TIMEARG_LEN_MAX   40          /* bytes of an argument */
#define TIMEARG_REL_MAX   (100LL * 366 * 86400)   /* a relative time: seconds at most */
#define TIMEARG_ERR_MAX   160

/* Parses s into *out_ms. 0, or -1 with a message quoting the argument. */
int timearg_parse(const char *s, int64_t now_ms, int64_t *out_ms, char *err, size_t errlen);

/* Days since 1970-01-01 of a proleptic Gregorian date (month 1-12). */
int64_t timearg_days_from_civil(int64_t y, unsigned m, unsigned d);

#endif
