/*
 * tests/unit/common/test_timearg.c: command-line times (common/timearg.c):
 * a table of accepted forms with their exact milliseconds (UTC, offsets,
 * local time in UTC and in a POSIX TZ with summer time, relative forms),
 * and a table of refusals with the words of their messages.
 */
#include <criterion/criterion.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../../common/timearg.h"

#define NOW 1796389200123LL            /* 2026-12-04T13:00:00.123Z */
#define T13 1796389200000LL            /* 2026-12-04T13:00Z */
#define D_20261204 1796342400000LL     /* 2026-12-04T00:00Z */
#define H (3600LL * 1000)

static void
tz(const char *zone)
{
    setenv("TZ", zone, 1);
    tzset();
}

static void
expect_ms(const char *s, long long want)
{
    char err[TIMEARG_ERR_MAX] = "";
    int64_t got = -1;

    cr_expect_eq(timearg_parse(s, NOW, &got, err, sizeof(err)), 0, "%s: %s", s, err);
    cr_expect_eq(got, want, "%s: got %lld, want %lld", s, (long long)got, want);
}

static void
expect_refused(const char *s, const char *words)
{
    char err[TIMEARG_ERR_MAX] = "";
    int64_t got = 42;

    cr_expect_eq(timearg_parse(s, NOW, &got, err, sizeof(err)), -1, "%s was accepted", s);
    cr_expect_eq(got, 42, "%s: the output changed on a refusal", s);
    cr_expect(strstr(err, words) != NULL, "%s: '%s' lacks '%s'", s, err, words);
    cr_expect(strncmp(err, "time '", 6) == 0, "%s: %s", s, err);
}

Test(timearg, utc_and_offsets)
{
    tz("UTC");
    expect_ms("2026-12-04T13:00Z", T13);
    expect_ms("2026-12-04T13:00:05Z", T13 + 5000);
    expect_ms("2026-12-04T13:00:05.25Z", T13 + 5250);
    expect_ms("2026-12-04T13:00:05,250999Z", T13 + 5250);      /* cut to ms, not rounded */
    expect_ms("2026-12-04 13:00Z", T13);
    expect_ms("2026-12-04t13:00Z", T13);
    expect_ms("2026-12-04T14:00+01:00", T13);
    expect_ms("2026-12-04T14:30+0130", T13);
    expect_ms("2026-12-04T15:00+02", T13);
    expect_ms("2026-12-04T08:00-05:00", T13);
    expect_ms("2026-12-04T00:00Z", D_20261204);
    expect_ms("2024-02-29T00:00Z", 1709164800000LL);
    expect_ms("1970-01-01T00:00Z", 0);
    expect_ms("9999-12-31T23:59:59.999Z", 253402300799999LL);
    cr_expect_eq(timearg_days_from_civil(1970, 1, 1), 0);
    cr_expect_eq(timearg_days_from_civil(2000, 3, 1), 11017);
}

Test(timearg, local_time)
{
    tz("UTC");
    expect_ms("2026-12-04", D_20261204);
    expect_ms("2026-12-04T13:00", T13);
    /* Central European time without tzdata: +1 in winter, +2 in summer */
    tz("CET-1CEST,M3.5.0,M10.5.0/3");
    expect_ms("2026-12-04", D_20261204 - H);
    expect_ms("2026-12-04T13:00", T13 - H);
    expect_ms("2026-07-01T13:00", 1782910800000LL - 2 * H);  /* 2026-07-01T13:00Z - 2 h */
    expect_ms("2026-12-04T13:00Z", T13);                       /* an explicit zone wins */
    tz("UTC");
}

Test(timearg, now_and_relative)
{
    expect_ms("now", NOW);
    expect_ms("-24h", NOW - 24 * H);
    expect_ms("-7d", NOW - 7 * 24 * H);
    expect_ms("-30m", NOW - 30 * 60 * 1000);
    expect_ms("-90s", NOW - 90 * 1000);
    expect_ms("-2w", NOW - 14 * 24 * H);
    expect_ms("+1h", NOW + H);
    expect_ms("-0h", NOW);
    expect_ms("-3660d", NOW - 3660LL * 24 * H);
}

Test(timearg, refusals)
{
    static const struct { const char *s, *words; } bad[] = {
        {"", "empty"},
        {"yesterday", "use now, -24h"},
        {"2026-12-4", "use now, -24h"},
        {"2026/12/04", "use now, -24h"},
        {"26-12-04", "use now, -24h"},
        {" 2026-12-04", "use now, -24h"},
        {"2026-12-04x", "use now, -24h"},
        {"2026-13-01", "no such date"},
        {"2026-00-10", "no such date"},
        {"2023-02-29", "no such date"},
        {"2026-04-31", "no such date"},
        {"1969-12-31", "no such date"},
        {"2026-12-04T13", "HH:MM"},
        {"2026-12-04T1300", "HH:MM"},
        {"2026-12-04T24:00", "no such time of day"},
        {"2026-12-04T13:60", "no such time of day"},
        {"2026-12-04T13:00:60", "no such time of day"},
        {"2026-12-04T13:00:5", "two digits"},
        {"2026-12-04T13:00:05.", "1-9 digits"},
        {"2026-12-04T13:00:05.1234567890", "1-9 digits"},
        {"2026-12-04T13:00z", "the zone"},
        {"2026-12-04T13:00Zjunk", "the zone"},
        {"2026-12-04T13:00+1", "the zone"},
        {"2026-12-04T13:00+24:00", "the zone"},
        {"2026-12-04T13:00+01:60", "the zone"},
        {"2026-12-04T13:00 +01:00", "the zone"},
        {"1970-01-01T00:30+01:00", "before 1970"},
        {"-5x", "unknown unit 'x'"},
        {"-h", "a sign, a number"},
        {"--5h", "a sign, a number"},
        {"-5", "a sign, a number"},
        {"-5hh", "a sign, a number"},
        {"-99999999999d", "more than 100 years"},
        {"-999999999999", "a sign, a number"},
        {"-5000w", "before 1970"},
        {"0123456789012345678901234567890123456789X", "longer than"},
    };

    tz("UTC");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        expect_refused(bad[i].s, bad[i].words);
    {
        char err[TIMEARG_ERR_MAX];
        int64_t t;
        cr_expect_eq(timearg_parse("2026-\x01-04", NOW, &t, err, sizeof(err)), -1);
        cr_expect(strstr(err, "time '2026-?-04'") != NULL, "%s", err);
        cr_expect_eq(timearg_parse(NULL, NOW, &t, NULL, 0), -1);
    }
}
