/*
 * musctl/musctl_report.c: `musctl report NAME`: a report straight from the
 * transaction store file, without the daemon or the UI. The document is
 * db/reportdoc.h's, as the admin UI's /api/ route serves it (its "page" and
 * "range" replaced by "report"), printed as JSON or one of its tables as
 * CSV (db/csv.h), so the three cannot disagree. The store is opened
 * read-only (db/report.h: a WAL reader that never blocks musproxy's
 * writer). Exit status: 0, 1 when the store cannot be read, 2 for bad
 * arguments.
 */
#include "musctl.h"

#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/timearg.h"
#include "../db/report.h"
#include "../db/reportdoc.h"
#include "../policy/config.h"

#define REPORT_FROM_DEFAULT "-24h"
#define REPORT_TO_DEFAULT   "now"
#define REPORT_ERR_LEN      1024
#define REPORT_PAGE_MAX     (REPORT_OFFSET_MAX / REPORTDOC_PAGE_ROWS)   /* search pages */

typedef struct report_args {
    enum reportdoc_kind kind;
    report_range_t range;
    reportdoc_params_t p;
    bool csv;
    const char *table;
    const char *db, *config;
    bool by_given;
} report_args_t;

static int
report_usage(FILE *out, int rc)
{
    fprintf(out,
        "usage: musctl report NAME [--from TIME] [--to TIME] [--location remote|local|all]\n"
        "                   [--format json|csv] [--table TABLE] [--db PATH | --config FILE]\n"
        "                   [--by requests|bytes|blocked] [--limit N] [--user NAME]\n"
        "                   [--host H] [--category C] [--client ADDR] [--decision D] [--page N]\n"
        "Prints a report from the transaction store, the same document as the admin UI's\n"
        "/api/NAME (JSON, the default) or one of its tables as CSV.\n"
        "`musctl report archive` writes the scheduled reports (musctl report archive --help).\n"
        "\nReports (NAME):\n");
    for (unsigned k = 0; k < REPORTDOC_KINDS; k++) {
        size_t n;
        const reportdoc_table_t *t = reportdoc_tables((enum reportdoc_kind)k, &n);
        fprintf(out, "  %-11s %s\n  %-11s tables:", reportdoc_name((enum reportdoc_kind)k),
                reportdoc_summary((enum reportdoc_kind)k), "");
        for (size_t i = 0; i < n; i++)
            if (k != REPORTDOC_SESSIONS || strcmp(t[i].name, "connected") != 0)
                fprintf(out, " %s", t[i].name);
        fputc('\n', out);
    }
    fprintf(out,
        "\nTIME: now, -24h, -7d, -30m, -2w (relative to now), 2026-12-04 (local midnight),\n"
        "2026-12-04T13:00[:SS[.fff]] (local time), with Z or +HH:MM for UTC or an offset.\n"
        "The range is [from, to); defaults --from %s --to %s, --location all.\n"
        "--table picks the CSV table (default: the first listed). --db defaults to the\n"
        "store of --config FILE (store.path, or its PostgreSQL database with\n"
        "store.backend: postgresql), else the store's default (store.path).\n"
        "Exit status: 0, 1 if the store cannot be read, 2 for bad arguments.\n",
        REPORT_FROM_DEFAULT, REPORT_TO_DEFAULT);
    return rc;
}

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error: the message, and exit status 2. */
static int
bad(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "musctl report: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (musctl report --help)\n");
    return 2;
}

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* 1..max in decimal, or -1. */
static long
number(const char *s, long max)
{
    char *end;
    long v;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    v = strtol(s, &end, 10);
    return *end != '\0' || v < 1 || v > max ? -1 : v;
}

/* Parses the arguments into a; 0, 1 for --help, or the exit status 2
 * (with the message printed). */
static int
parse(int argc, char **argv, report_args_t *a)
{
    enum { O_FROM = 1, O_TO, O_LOC, O_FORMAT, O_TABLE, O_DB, O_CONFIG, O_BY, O_LIMIT, O_USER,
           O_HOST, O_CATEGORY, O_CLIENT, O_DECISION, O_PAGE, O_HELP };
    static const struct option opts[] = {
        {"from", required_argument, NULL, O_FROM}, {"to", required_argument, NULL, O_TO},
        {"location", required_argument, NULL, O_LOC},
        {"format", required_argument, NULL, O_FORMAT},
        {"table", required_argument, NULL, O_TABLE}, {"db", required_argument, NULL, O_DB},
        {"config", required_argument, NULL, O_CONFIG}, {"by", required_argument, NULL, O_BY},
        {"limit", required_argument, NULL, O_LIMIT}, {"user", required_argument, NULL, O_USER},
        {"host", required_argument, NULL, O_HOST},
        {"category", required_argument, NULL, O_CATEGORY},
        {"client", required_argument, NULL, O_CLIENT},
        {"decision", required_argument, NULL, O_DECISION},
        {"page", required_argument, NULL, O_PAGE}, {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    const char *from = REPORT_FROM_DEFAULT, *to = REPORT_TO_DEFAULT;
    char err[TIMEARG_ERR_MAX];
    int64_t now = wall_ms();
    bool filters = false;
    long v;
    int o;

    memset(a, 0, sizeof(*a));
    optind = 1;
    opterr = 0;
    while ((o = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (o) {
        case O_FROM: from = optarg; break;
        case O_TO: to = optarg; break;
        case O_LOC:
            if (strcmp(optarg, "all") == 0)
                a->range.loc = REPORT_LOC_ALL;
            else if (strcmp(optarg, "remote") == 0)
                a->range.loc = REPORT_LOC_REMOTE;
            else if (strcmp(optarg, "local") == 0)
                a->range.loc = REPORT_LOC_LOCAL;
            else
                return bad("--location must be remote, local or all, not '%s'", optarg);
            break;
        case O_FORMAT:
            if (strcmp(optarg, "csv") != 0 && strcmp(optarg, "json") != 0)
                return bad("--format must be json or csv, not '%s'", optarg);
            a->csv = strcmp(optarg, "csv") == 0;
            break;
        case O_TABLE: a->table = optarg; break;
        case O_DB: a->db = optarg; break;
        case O_CONFIG: a->config = optarg; break;
        case O_BY:
            a->by_given = true;
            if (strcmp(optarg, "requests") == 0)
                a->p.by = REPORT_BY_REQUESTS;
            else if (strcmp(optarg, "bytes") == 0)
                a->p.by = REPORT_BY_BYTES;
            else if (strcmp(optarg, "blocked") == 0)
                a->p.by = REPORT_BY_BLOCKED;
            else
                return bad("--by must be requests, bytes or blocked, not '%s'", optarg);
            break;
        case O_LIMIT:
            if ((v = number(optarg, REPORT_ROWS_MAX)) < 0)
                return bad("--limit must be a number from 1 to %d, not '%s'", REPORT_ROWS_MAX,
                           optarg);
            a->p.limit = (unsigned)v;
            break;
        case O_USER: a->p.user = a->p.filter.user = optarg; break;
        case O_HOST: a->p.filter.host = optarg; filters = true; break;
        case O_CATEGORY: a->p.filter.category = optarg; filters = true; break;
        case O_CLIENT: a->p.filter.client = optarg; filters = true; break;
        case O_DECISION: a->p.filter.decision = optarg; filters = true; break;
        case O_PAGE:
            if ((v = number(optarg, REPORT_PAGE_MAX)) < 0)
                return bad("--page must be a number from 1 to %d, not '%s'", REPORT_PAGE_MAX,
                           optarg);
            a->p.page = (unsigned)v;
            filters = true;
            break;
        case O_HELP:
        case 'h': return 1;
        case ':': return bad("%s needs a value", argv[optind - 1]);
        default: return bad("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind == 0)
        return bad("which report?");
    if (argc - optind > 1)
        return bad("one report at a time, not also '%s'", argv[optind + 1]);
    if (!reportdoc_lookup(argv[optind], &a->kind))
        return bad("no report named '%s'", argv[optind]);
    if (timearg_parse(from, now, &a->range.from_ms, err, sizeof(err)) < 0 ||
        timearg_parse(to, now, &a->range.to_ms, err, sizeof(err)) < 0)
        return bad("%s", err);
    if (a->range.from_ms >= a->range.to_ms)
        return bad("--from (%s) must be before --to (%s)", from, to);
    if (a->kind == REPORTDOC_TIMELINE &&
        (a->range.to_ms - a->range.from_ms / REPORT_BUCKET_MS * REPORT_BUCKET_MS +
         REPORT_BUCKET_MS - 1) / REPORT_BUCKET_MS > REPORT_BUCKETS_MAX)
        return bad("the timeline holds at most %d hours (%d days); shorten the range",
                   REPORT_BUCKETS_MAX, REPORT_BUCKETS_MAX / 24);
    if (a->db != NULL && a->config != NULL)
        return bad("--db and --config both say where the store is: give one");
    if (a->kind == REPORTDOC_SESSIONS && a->table != NULL && strcmp(a->table, "connected") == 0)
        return bad("who is connected now is the running musproxy's (musctl map), not the "
                   "store's");
    if (a->table != NULL && !a->csv)
        return bad("--table '%s' goes with --format csv", a->table);
    if (a->by_given && a->kind != REPORTDOC_SITES && a->kind != REPORTDOC_CATEGORIES)
        return bad("--by applies to the sites and categories reports, not %s",
                   reportdoc_name(a->kind));
    if (a->kind == REPORTDOC_USER && a->p.user == NULL)
        return bad("the user report needs --user NAME");
    if ((filters || (a->p.user != NULL && a->kind != REPORTDOC_USER)) &&
        a->kind != REPORTDOC_SEARCH)
        return bad("--user, --host, --category, --client, --decision and --page filter the "
                   "search report (and --user names the user report), not %s",
                   reportdoc_name(a->kind));
    if (a->p.filter.decision != NULL) {
        static const char *const d[] = {"allow", "monitor", "block", "auth",
                                        "refuse_unidentified", "none"};
        size_t i = 0;
        while (i < sizeof(d) / sizeof(d[0]) && strcmp(d[i], a->p.filter.decision) != 0)
            i++;
        if (i == sizeof(d) / sizeof(d[0]))
            return bad("--decision must be allow, monitor, block, auth, refuse_unidentified "
                       "or none, not '%s'", a->p.filter.decision);
    }
    return 0;
}

/* Where the store is: --db (an SQLite file), else --config's store
 * (store.path, or its PostgreSQL database with store.backend: postgresql),
 * else the store section's default. -1 with a message (exit 1 or 2 in
 * *rc). */
static int
store_where(const report_args_t *a, config_t **cfg, int *rc, report_store_t *where)
{
    char err[REPORT_ERR_LEN];
    const config_store_t *cs;

    *where = (report_store_t){.path = a->db};
    if (a->db != NULL)
        return 0;
    *cfg = a->config != NULL ? config_load(a->config, err, sizeof(err))
                             : config_load_buffer("(built-in defaults)", "", 0, err,
                                                  sizeof(err));
    if (*cfg == NULL) {
        fprintf(stderr, "musctl report: %s\n", err);
        *rc = a->config != NULL ? 2 : 1;
        return -1;
    }
    cs = &(*cfg)->store;
    if (cs->path[0] == '\0') {
        fprintf(stderr, "musctl report: %s says store.path: off; no store to read (--db PATH)\n",
                a->config);
        *rc = 2;
        return -1;
    }
    *where = (report_store_t){.postgresql = cs->backend == CONFIG_STORE_POSTGRESQL,
                              .path = cs->path, .conninfo = cs->conninfo,
                              .password_file = cs->password_file};
    return 0;
}

int
musctl_cmd_report(int argc, char **argv)
{
    report_args_t a;
    char err[REPORT_ERR_LEN];
    config_t *cfg = NULL;
    report_t *r = NULL;
    json_t *doc = NULL;
    report_store_t where;
    int rc;

    if (argc > 1 && strcmp(argv[1], "archive") == 0)
        return musctl_cmd_report_archive(argc - 1, argv + 1);
    rc = parse(argc, argv, &a);
    if (rc == 1)
        return report_usage(stdout, 0);
    if (rc != 0)
        return rc;
    rc = 1;
    if (store_where(&a, &cfg, &rc, &where) < 0)
        goto done;
    r = report_open_store(&where, err, sizeof(err));
    if (r == NULL) {
        fprintf(stderr, "musctl report: %s\n", err);
        goto done;
    }
    doc = json_pack("{s:s, s:s, s:I, s:I}", "report", reportdoc_name(a.kind), "location",
                    report_location_str(a.range.loc), "from", (json_int_t)a.range.from_ms,
                    "to", (json_int_t)a.range.to_ms);
    if (doc == NULL) {
        fprintf(stderr, "musctl report: out of memory\n");
        goto done;
    }
    rc = reportdoc_fill(doc, r, a.kind, &a.range, &a.p, err, sizeof(err));
    if (rc == 0 && a.csv)
        rc = reportdoc_csv(stdout, doc, a.kind, a.table, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "musctl report: %s\n", err);
        rc = rc == -2 ? 2 : 1;
        goto done;
    }
    if (!a.csv && json_dumpf(doc, stdout, REPORTDOC_JSON_FLAGS) == 0)
        fputc('\n', stdout);
    rc = fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
    if (rc != 0)
        fprintf(stderr, "musctl report: cannot write the output\n");
done:
    json_decref(doc);
    report_close(r);
    config_free(cfg);
    return rc;
}
