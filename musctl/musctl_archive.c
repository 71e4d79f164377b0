/*
 * musctl/musctl_archive.c: `musctl report archive`: the scheduled reports
 * on demand. It writes the archive's missing files for the periods just
 * ended (and any missed ones since the newest in the archive), exactly as
 * musproxy's reports thread does (db/repsched.h: the same function, the
 * same names, the same bytes), from the store file opened read-only. With
 * --now the periods are those ended at that time. It lists what it wrote.
 * Exit status: 0, 1 when the store cannot be read or a file not written,
 * 2 for bad arguments.
 */
#include "musctl.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/timearg.h"
#include "../db/report.h"
#include "../db/repsched.h"
#include "../policy/config.h"

#define ARCHIVE_ERR_LEN 1024

static int
archive_usage(FILE *out, int rc)
{
    fprintf(out,
        "usage: musctl report archive [--config FILE | --db PATH --dir DIR]\n"
        "                             [--schedule daily,weekly,monthly] [--now TIME]\n"
        "Writes the scheduled reports (CSV) of the UTC day, ISO week and month just ended\n"
        "that the archive lacks, and those missed since its newest period, as musproxy\n"
        "does every minute: DIR/daily/2026-12-03-sites.csv, DIR/weekly/2026-W48-sites.csv,\n"
        "DIR/monthly/2026-11-sites.csv. --config takes store.path, reports.archive and\n"
        "reports.schedule from the file; --db and --dir override them. --now (musctl report\n"
        "--help's TIME) picks the moment the periods ended by. Reports:");
    {
        size_t n;
        const repsched_report_t *r = repsched_reports(&n);
        for (size_t i = 0; i < n; i++)
            fprintf(out, " %s", r[i].name);
    }
    fprintf(out, ".\nExit status: 0, 1 if the store cannot be read or a file written, 2 for "
                 "bad arguments.\n");
    return rc;
}

static int
schedule_mask(const char *s, unsigned *out)
{
    char buf[64], *save = NULL, *tok;
    enum repsched_kind k;

    if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
        return -1;
    *out = 0;
    for (tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        if (!repsched_kind_lookup(tok, &k))
            return -1;
        *out |= 1u << k;
    }
    return *out != 0 ? 0 : -1;
}

int
musctl_cmd_report_archive(int argc, char **argv)
{
    enum { O_CONFIG = 1, O_DB, O_DIR, O_SCHEDULE, O_NOW, O_HELP };
    static const struct option opts[] = {
        {"config", required_argument, NULL, O_CONFIG}, {"db", required_argument, NULL, O_DB},
        {"dir", required_argument, NULL, O_DIR},
        {"schedule", required_argument, NULL, O_SCHEDULE},
        {"now", required_argument, NULL, O_NOW}, {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *db = NULL, *dir = NULL, *now_arg = "now";
    char err[ARCHIVE_ERR_LEN];
    unsigned kinds = REPSCHED_ALL, written = 0;
    bool kinds_given = false;
    struct timespec ts;
    int64_t now;
    config_t *cfg = NULL;
    report_t *r = NULL;
    int o, rc = 2;

    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case O_CONFIG: config = optarg; break;
        case O_DB: db = optarg; break;
        case O_DIR: dir = optarg; break;
        case O_SCHEDULE:
            if (schedule_mask(optarg, &kinds) < 0) {
                fprintf(stderr, "musctl report archive: --schedule takes daily, weekly and "
                                "monthly, comma-separated, not '%s'\n", optarg);
                return 2;
            }
            kinds_given = true;
            break;
        case O_NOW: now_arg = optarg; break;
        case O_HELP:
        case 'h': return archive_usage(stdout, 0);
        case ':':
            fprintf(stderr, "musctl report archive: %s needs a value\n", argv[optind - 1]);
            return 2;
        default:
            fprintf(stderr, "musctl report archive: unknown argument '%s'\n", argv[optind - 1]);
            return archive_usage(stderr, 2);
        }
    }
    if (optind < argc) {
        fprintf(stderr, "musctl report archive: unexpected '%s'\n", argv[optind]);
        return 2;
    }
    clock_gettime(CLOCK_REALTIME, &ts);
    if (timearg_parse(now_arg, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, &now, err,
                      sizeof(err)) < 0) {
        fprintf(stderr, "musctl report archive: --now: %s\n", err);
        return 2;
    }
    if (db == NULL || dir == NULL) {
        cfg = config != NULL ? config_load(config, err, sizeof(err))
                             : config_load_buffer("(built-in defaults)", "", 0, err, sizeof(err));
        if (cfg == NULL) {
            fprintf(stderr, "musctl report archive: %s\n", err);
            return config != NULL ? 2 : 1;
        }
        if (db == NULL)
            db = cfg->store.path;
        if (dir == NULL)
            dir = cfg->reports.archive;
        if (!kinds_given)
            kinds = cfg->reports.schedule;
    }
    if (db[0] == '\0' || dir[0] == '\0') {
        fprintf(stderr, "musctl report archive: no %s (store.path or reports.archive is off; "
                        "--db PATH --dir DIR)\n", db[0] == '\0' ? "store" : "archive");
        goto done;
    }
    rc = 1;
    r = report_open(db, err, sizeof(err));
    if (r == NULL) {
        fprintf(stderr, "musctl report archive: %s\n", err);
        goto done;
    }
    if (repsched_catch_up(r, dir, kinds, now, &written, err, sizeof(err)) < 0) {
        fprintf(stderr, "musctl report archive: %s\n", err);
        goto done;
    }
    printf("%u file%s written into %s\n", written, written == 1 ? "" : "s", dir);
    rc = 0;
done:
    report_close(r);
    config_free(cfg);
    return rc;
}
