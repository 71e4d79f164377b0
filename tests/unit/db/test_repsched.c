/*
 * tests/unit/db/test_repsched.c: the scheduled reports (db/repsched.c):
 * the periods and their labels (UTC days, ISO weeks across year ends,
 * months), the archive's file names (anything else, a traversal above all,
 * refused), and over a store filled through the real writer: the files a
 * catch-up writes and their numbers, that a second run writes nothing and
 * touches nothing, that missed periods and a removed file are produced
 * later, and the thread itself producing yesterday's files.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../../../db/report.h"
#include "../../../db/repsched.h"
#include "../../../db/txnstore.h"
#include "txntest.h"

#define ERR_LEN 1024
#define DAY     86400000LL

TestSuite(repsched, .init = txntest_setup, .fini = txntest_teardown, .timeout = 60);

static int64_t
utc(int y, int m, int d, int hh, int mm)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = hh,
                    .tm_min = mm};

    return (int64_t)timegm(&tm) * 1000;
}

Test(repsched, periods)
{
    repsched_period_t p;

    repsched_last(REPSCHED_DAILY, utc(2026, 12, 4, 3, 0), &p);
    cr_expect_str_eq(p.label, "2026-12-03");
    cr_expect_eq(p.from_ms, utc(2026, 12, 3, 0, 0));
    cr_expect_eq(p.to_ms, utc(2026, 12, 4, 0, 0));
    /* within the delay after midnight, the day before is still the last */
    repsched_last(REPSCHED_DAILY, utc(2026, 12, 4, 0, 0) + REPSCHED_DELAY_MS - 1, &p);
    cr_expect_str_eq(p.label, "2026-12-02");
    repsched_last(REPSCHED_WEEKLY, utc(2026, 12, 4, 3, 0), &p);   /* a Friday */
    cr_expect_str_eq(p.label, "2026-W48");
    cr_expect_eq(p.from_ms, utc(2026, 11, 23, 0, 0));
    cr_expect_eq(p.to_ms, utc(2026, 11, 30, 0, 0));
    repsched_period_at(REPSCHED_WEEKLY, utc(2021, 1, 1, 12, 0), &p);
    cr_expect_str_eq(p.label, "2020-W53");
    repsched_period_at(REPSCHED_WEEKLY, utc(2025, 12, 30, 12, 0), &p);
    cr_expect_str_eq(p.label, "2026-W01");
    cr_expect_eq(p.from_ms, utc(2025, 12, 29, 0, 0));
    repsched_last(REPSCHED_MONTHLY, utc(2027, 1, 1, 5, 0), &p);
    cr_expect_str_eq(p.label, "2026-12");
    cr_expect_eq(p.from_ms, utc(2026, 12, 1, 0, 0));
    cr_expect_eq(p.to_ms, utc(2027, 1, 1, 0, 0));
    repsched_prev(&p);
    cr_expect_str_eq(p.label, "2026-11");
    cr_expect_eq(p.to_ms - p.from_ms, 30 * DAY);

    cr_expect(repsched_parse_label(REPSCHED_WEEKLY, "2020-W53", &p));
    cr_expect_eq(p.from_ms, utc(2020, 12, 28, 0, 0));
    cr_expect(repsched_parse_label(REPSCHED_DAILY, "2024-02-29", &p));
    cr_expect_not(repsched_parse_label(REPSCHED_DAILY, "2026-02-29", &p));
    cr_expect_not(repsched_parse_label(REPSCHED_DAILY, "2026-12-3", &p));
    cr_expect_not(repsched_parse_label(REPSCHED_DAILY, "2026-12-03x", &p));
    cr_expect_not(repsched_parse_label(REPSCHED_WEEKLY, "2027-W53", &p));  /* 52 weeks */
    cr_expect(repsched_parse_label(REPSCHED_WEEKLY, "2026-W53", &p));  /* 2026 has 53 */
    cr_expect_not(repsched_parse_label(REPSCHED_MONTHLY, "2026-13", &p));
}

Test(repsched, names)
{
    repsched_period_t p;
    const repsched_report_t *rep;

    cr_assert(repsched_name_parse("daily/2026-12-03-sites.csv", &p, &rep));
    cr_expect_str_eq(rep->name, "sites");
    cr_expect_str_eq(p.label, "2026-12-03");
    cr_expect(repsched_name_parse("weekly/2026-W48-categories.csv", &p, &rep));
    cr_expect(repsched_name_parse("monthly/2026-11-summary.csv", &p, &rep));
    static const char *const bad[] = {
        "daily/../2026-12-03-sites.csv", "../daily/2026-12-03-sites.csv",
        "daily/2026-12-03-sites.csv/..", "daily//2026-12-03-sites.csv",
        "/etc/passwd", "daily/..%2f2026-12-03-sites.csv", "hourly/2026-12-03-sites.csv",
        "daily/2026-12-03-nope.csv", "daily/2026-W48-sites.csv", "weekly/2026-12-03-sites.csv",
        "daily/2026-12-03-sites.csv.tmp", "daily/.2026-12-03-sites.csv.1", "daily/", "",
        "daily/2026-12-03-sites", "daily/x/2026-12-03-sites.csv",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint64_t size;
        cr_expect_not(repsched_name_parse(bad[i], NULL, NULL), "%s", bad[i]);
        cr_expect_eq(repsched_open(txntest_dir, bad[i], &size), -2, "%s", bad[i]);
    }
}

/* n records of host at t (every third blocked, 100 bytes each). */
static void
submit(txnstore_t *s, int64_t t, const char *user, const char *host, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        txn_record_t r;
        txntest_record(&r, t + i, user, host, "news", false,
                       i % 3 == 0 ? TXN_DECISION_BLOCK : TXN_DECISION_ALLOW, 100, i);
        cr_assert(txnstore_submit(s, &r));
    }
}

static const char *
fill(void (*what)(txnstore_t *))
{
    static txnstore_config_t cfg;
    char err[ERR_LEN] = "";
    txnstore_t *s;

    cfg = (txnstore_config_t){.path = txntest_path("s.db"), .flush_ms = 10};
    s = txnstore_open(&cfg, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    what(s);
    txnstore_close(s);
    return cfg.path;
}

static void
fill_days(txnstore_t *s)
{
    submit(s, utc(2026, 11, 20, 10, 0), "ann", "old.example", 4);     /* W47, November */
    submit(s, utc(2026, 11, 25, 10, 0), "ann", "week.example", 6);    /* W48 */
    submit(s, utc(2026, 12, 3, 9, 0), "ann", "a.example", 30);        /* yesterday */
    submit(s, utc(2026, 12, 3, 23, 59), "ben", "b.example", 12);
    submit(s, utc(2026, 12, 4, 0, 0), "ben", "today.example", 5);     /* not yesterday */
    submit(s, utc(2026, 12, 5, 12, 0), "ben", "sat.example", 7);
}

static char *
slurp(const char *rel)
{
    FILE *f = fopen(txntest_path(rel), "r");
    static char buf[8192];
    size_t n;

    cr_assert_not_null(f, "%s: %s", rel, strerror(errno));
    n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static unsigned
count_files(const char *dir)
{
    char err[ERR_LEN];
    json_t *l = repsched_list(dir, err, sizeof(err));
    unsigned n;

    cr_assert_not_null(l, "%s", err);
    n = (unsigned)json_integer_value(json_object_get(l, "total"));
    json_decref(l);
    return n;
}

Test(repsched, catch_up)
{
    const char *db = fill(fill_days);
    char err[ERR_LEN] = "", dir[256];
    report_t *r = report_open(db, err, sizeof(err));
    unsigned written = 0;
    size_t nrep;
    struct stat st1, st2;
    json_t *l;

    repsched_reports(&nrep);
    cr_assert_not_null(r, "%s", err);
    snprintf(dir, sizeof(dir), "%s", txntest_path("archive"));
    /* an empty archive: the day, week and month just ended */
    cr_assert_eq(repsched_catch_up(r, dir, REPSCHED_ALL, utc(2026, 12, 4, 0, 5), &written, err,
                                   sizeof(err)), 0, "%s", err);
    cr_expect_eq(written, 3 * nrep);
    cr_expect_str_eq(slurp("archive/daily/2026-12-03-sites.csv"),
                     "host,requests,bytes,blocked,users\r\n"
                     "a.example,30,3000,10,1\r\nb.example,12,1200,4,1\r\n");
    cr_expect_str_eq(slurp("archive/daily/2026-12-03-summary.csv"),
                     "requests,bytes,blocked,users,remote_requests,local_requests,from,to,"
                     "location\r\n42,4200,14,2,0,42,1796256000000,1796342400000,all\r\n");
    cr_expect_str_eq(slurp("archive/weekly/2026-W48-sites.csv"),
                     "host,requests,bytes,blocked,users\r\nweek.example,6,600,2,1\r\n");
    cr_expect(strstr(slurp("archive/monthly/2026-11-sites.csv"), "old.example,4,400,2,1\r\n"));
    cr_expect(strstr(slurp("archive/monthly/2026-11-sites.csv"), "a.example") == NULL);

    /* again: nothing written, nothing touched */
    cr_assert_eq(stat(txntest_path("archive/daily/2026-12-03-sites.csv"), &st1), 0);
    written = 0;
    cr_assert_eq(repsched_catch_up(r, dir, REPSCHED_ALL, utc(2026, 12, 4, 9, 0), &written, err,
                                   sizeof(err)), 0, "%s", err);
    cr_expect_eq(written, 0);
    cr_assert_eq(stat(txntest_path("archive/daily/2026-12-03-sites.csv"), &st2), 0);
    cr_expect_eq(st1.st_ino, st2.st_ino);
    cr_expect_eq(st1.st_mtim.tv_nsec, st2.st_mtim.tv_nsec);

    /* down for two days: both are produced, and only the daily ones */
    written = 0;
    cr_assert_eq(repsched_catch_up(r, dir, REPSCHED_ALL, utc(2026, 12, 6, 8, 0), &written, err,
                                   sizeof(err)), 0, "%s", err);
    cr_expect_eq(written, 2 * nrep);
    cr_expect_str_eq(slurp("archive/daily/2026-12-04-sites.csv"),
                     "host,requests,bytes,blocked,users\r\ntoday.example,5,500,2,1\r\n");
    cr_expect_str_eq(slurp("archive/daily/2026-12-05-sites.csv"),
                     "host,requests,bytes,blocked,users\r\nsat.example,7,700,3,1\r\n");
    /* a file gone (or never finished) is written again, alone */
    cr_assert_eq(unlink(txntest_path("archive/daily/2026-12-05-users.csv")), 0);
    written = 0;
    cr_assert_eq(repsched_catch_up(r, dir, REPSCHED_ALL, utc(2026, 12, 6, 9, 0), &written, err,
                                   sizeof(err)), 0, "%s", err);
    cr_expect_eq(written, 1);
    cr_expect_str_eq(slurp("archive/daily/2026-12-05-users.csv"),
                     "user,requests,bytes,blocked,remote\r\nben,7,700,3,0\r\n");
    cr_expect_eq(count_files(dir), 5 * nrep);

    /* the list: newest period first, with sizes */
    l = repsched_list(dir, err, sizeof(err));
    cr_assert_not_null(l, "%s", err);
    {
        json_t *first = json_array_get(json_object_get(l, "files"), 0);
        uint64_t size;
        int fd;
        cr_expect_str_eq(json_string_value(json_object_get(first, "period")), "2026-12-05");
        cr_expect_str_eq(json_string_value(json_object_get(first, "schedule")), "daily");
        fd = repsched_open(dir, json_string_value(json_object_get(first, "file")), &size);
        cr_assert_geq(fd, 0);
        cr_expect_eq((json_int_t)size, json_integer_value(json_object_get(first, "bytes")));
        close(fd);
    }
    json_decref(l);
    cr_expect_eq(repsched_open(dir, "daily/2020-01-01-sites.csv", &(uint64_t){0}), -1);
    cr_expect_eq(errno, ENOENT);
    report_close(r);
}

static int64_t yesterday_noon;

static void
fill_yesterday(txnstore_t *s)
{
    submit(s, yesterday_noon, "cid", "y.example", 9);
}

Test(repsched, thread)
{
    struct timespec ts;
    const char *db;
    char err[ERR_LEN] = "", dir[256], rel[128], last[REPSCHED_ERR_MAX];
    repsched_period_t p;
    repsched_t *s;
    uint64_t written = 0;
    size_t nrep;

    repsched_reports(&nrep);
    clock_gettime(CLOCK_REALTIME, &ts);
    repsched_last(REPSCHED_DAILY, (int64_t)ts.tv_sec * 1000, &p);
    yesterday_noon = p.from_ms + DAY / 2;
    db = fill(fill_yesterday);
    snprintf(dir, sizeof(dir), "%s", txntest_path("arch"));
    s = repsched_start(&(report_store_t){.path = db}, dir, 1u << REPSCHED_DAILY, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    for (int i = 0; i < 200 && written < nrep; i++) {
        usleep(20000);
        repsched_stats(s, &written, last, sizeof(last));
    }
    repsched_stop(s);
    cr_expect_eq(written, nrep, "%s", last);
    cr_expect_str_eq(last, "");
    snprintf(rel, sizeof(rel), "arch/daily/%s-sites.csv", p.label);
    cr_expect_str_eq(slurp(rel), "host,requests,bytes,blocked,users\r\ny.example,9,900,3,1\r\n");
    cr_expect_eq(count_files(dir), nrep);   /* daily only */
}
