/*
 * common/timearg.c: command-line times (see timearg.h). One left-to-right
 * pass with fixed-width digit fields; UTC dates are counted with the civil
 * calendar formula (no timegm), local ones go through mktime.
 */
#include "timearg.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define HINT "use now, -24h, -7d, 2026-12-04, 2026-12-04T13:00[:SS[.fff]] with an optional " \
             "Z or +HH:MM"

static int fail(char *err, size_t errlen, const char *s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "time 'S': " + the message; S shown printable and cut. */
static int
fail(char *err, size_t errlen, const char *s, const char *fmt, ...)
{
    char shown[TIMEARG_LEN_MAX + 4];
    size_t o = 0, n;
    va_list ap;

    if (err == NULL || errlen == 0)
        return -1;
    for (; s != NULL && *s != '\0' && o < TIMEARG_LEN_MAX; s++)
        shown[o++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    if (s != NULL && *s != '\0')
        o += (size_t)snprintf(shown + o, sizeof(shown) - o, "...");
    shown[o] = '\0';
    n = (size_t)snprintf(err, errlen, "time '%s': ", shown);
    if (n < errlen) {
        va_start(ap, fmt);
        vsnprintf(err + n, errlen - n, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int64_t
timearg_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static unsigned
days_in_month(unsigned y, unsigned m)
{
    static const unsigned char dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : dm[m - 1];
}

/* n decimal digits at *p into *v; advances. */
static bool
digits(const char **p, unsigned n, unsigned *v)
{
    unsigned x = 0;

    for (unsigned i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return false;
        x = x * 10 + (unsigned)(c - '0');
    }
    *p += n;
    *v = x;
    return true;
}

static int
relative(const char *s, int64_t now_ms, int64_t *out, char *err, size_t errlen)
{
    const char *p = s + 1;
    int64_t n = 0, unit;
    size_t nd = strspn(p, "0123456789");

    if (nd == 0 || nd > 12 || p[nd] == '\0' || p[nd + 1] != '\0')
        return fail(err, errlen, s, "a relative time is a sign, a number and one of s m h d w");
    for (size_t i = 0; i < nd; i++)
        n = n * 10 + (p[i] - '0');
    switch (p[nd]) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 7 * 86400; break;
    default:
        return fail(err, errlen, s, "unknown unit '%c' (use s, m, h, d or w)",
                    p[nd] >= 0x20 && p[nd] < 0x7f ? p[nd] : '?');
    }
    if (n > TIMEARG_REL_MAX / unit)
        return fail(err, errlen, s, "more than 100 years from now");
    n *= unit * 1000;
    n = s[0] == '-' ? now_ms - n : now_ms + n;
    if (n < 0)
        return fail(err, errlen, s, "before 1970");
    *out = n;
    return 0;
}

/* The zone suffix at p: Z, +HH, +HHMM, +HH:MM (or -); *off_s its offset
 * from UTC in seconds. False if it is not one. */
static bool
zone(const char *p, bool *utc, int64_t *off_s)
{
    unsigned hh, mm = 0;
    int sign;

    *utc = false;
    *off_s = 0;
    if (*p == '\0')
        return true;
    if (p[0] == 'Z' && p[1] == '\0') {
        *utc = true;
        return true;
    }
    if (*p != '+' && *p != '-')
        return false;
    sign = *p++ == '-' ? -1 : 1;
    if (!digits(&p, 2, &hh) || hh > 23)
        return false;
    if (*p == ':')
        p++;
    if (*p != '\0' && (!digits(&p, 2, &mm) || mm > 59))
        return false;
    if (*p != '\0')
        return false;
    *utc = true;
    *off_s = sign * (int64_t)(hh * 3600 + mm * 60);
    return true;
}

int
timearg_parse(const char *s, int64_t now_ms, int64_t *out_ms, char *err, size_t errlen)
{
    const char *p = s;
    unsigned y, mo, d, hh = 0, mi = 0, ss = 0, ms = 0;
    bool utc;
    int64_t off, secs;

    if (s == NULL || s[0] == '\0')
        return fail(err, errlen, "", "empty; " HINT);
    if (strlen(s) > TIMEARG_LEN_MAX)
        return fail(err, errlen, s, "longer than %d bytes", TIMEARG_LEN_MAX);
    if (strcmp(s, "now") == 0) {
        *out_ms = now_ms;
        return 0;
    }
    if (s[0] == '-' || s[0] == '+')
        return relative(s, now_ms, out_ms, err, errlen);
    if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
        !digits(&p, 2, &d))
        return fail(err, errlen, s, HINT);
    if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return fail(err, errlen, s, "no such date (years 1970-9999)");
    if (*p == 'T' || *p == 't' || *p == ' ') {
        p++;
        if (!digits(&p, 2, &hh) || *p++ != ':' || !digits(&p, 2, &mi))
            return fail(err, errlen, s, "the time of day is HH:MM[:SS[.fff]]");
        if (*p == ':') {
            p++;
            if (!digits(&p, 2, &ss))
                return fail(err, errlen, s, "the seconds are two digits");
            if (*p == '.' || *p == ',') {
                size_t nf = strspn(++p, "0123456789");
                if (nf == 0 || nf > 9)
                    return fail(err, errlen, s, "a fraction of a second is 1-9 digits");
                for (size_t i = 0; i < 3; i++)
                    ms = ms * 10 + (i < nf ? (unsigned)(p[i] - '0') : 0);
                p += nf;
            }
        }
        if (hh > 23 || mi > 59 || ss > 59)
            return fail(err, errlen, s, "no such time of day (00:00:00-23:59:59)");
    } else if (*p != '\0') {
        return fail(err, errlen, s, HINT);
    }
    if (!zone(p, &utc, &off))
        return fail(err, errlen, s, "the zone is Z, +HH, +HHMM or +HH:MM");
    if (utc) {
        secs = timearg_days_from_civil(y, mo, d) * 86400 + hh * 3600 + mi * 60 + ss - off;
    } else {
        struct tm tm = {.tm_year = (int)y - 1900, .tm_mon = (int)mo - 1, .tm_mday = (int)d,
                        .tm_hour = (int)hh, .tm_min = (int)mi, .tm_sec = (int)ss,
                        .tm_isdst = -1};
        time_t t = mktime(&tm);
        if (t == (time_t)-1 && !(tm.tm_year == 69 && tm.tm_mon == 11 && tm.tm_mday == 31))
            return fail(err, errlen, s, "not a local time this system can convert");
        secs = (int64_t)t;
    }
    if (secs < 0)
        return fail(err, errlen, s, "before 1970");
    *out_ms = secs * 1000 + ms;
    return 0;
}
