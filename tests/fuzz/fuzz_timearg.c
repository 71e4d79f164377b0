/*
 * tests/fuzz/fuzz_timearg.c: libFuzzer target for the command-line time
 * parser (common/timearg.c, `musctl report --from/--to`). Any input is
 * parsed or refused without a crash or over-read; a refusal leaves the
 * output alone and says "time '...': ..." in a terminated message; an
 * accepted time is after 1970, a relative one within 100 years of now, and
 * written back as YYYY-MM-DDTHH:MM:SS.mmmZ it parses to the same
 * millisecond. TZ is UTC so local forms are deterministic. Seed corpus:
 * tests/fuzz/corpus/timearg/.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/timearg.h"

#define NOW 1796389200123LL   /* 2026-12-04T13:00:00.123Z */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char s[2 * TIMEARG_LEN_MAX], err[TIMEARG_ERR_MAX], again[64];
    int64_t t = -7, t2 = -7;
    time_t secs;
    struct tm tm;

    if (size >= sizeof(s))
        size = sizeof(s) - 1;
    memcpy(s, data, size);
    s[size] = '\0';
    memset(err, 'x', sizeof(err));
    if (timearg_parse(s, NOW, &t, err, sizeof(err)) < 0) {
        if (t != -7 || memchr(err, '\0', sizeof(err)) == NULL || strncmp(err, "time '", 6) != 0)
            abort();
        return 0;
    }
    if (t < 0 || strlen(s) > TIMEARG_LEN_MAX)
        abort();
    if ((s[0] == '-' || s[0] == '+') &&
        (t > NOW + TIMEARG_REL_MAX * 1000 || t < NOW - TIMEARG_REL_MAX * 1000))
        abort();
    secs = (time_t)(t / 1000);
    if (gmtime_r(&secs, &tm) == NULL)
        abort();
    snprintf(again, sizeof(again), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(t % 1000));
    if (tm.tm_year + 1900 <= 9999 &&
        (timearg_parse(again, NOW, &t2, err, sizeof(err)) < 0 || t2 != t))
        abort();
    return 0;
}
