/*
 * db/repsched.h: scheduled reports. For each UTC day, ISO week (Monday to
 * Monday) and calendar month that has ended, a fixed set of reports
 * (repsched_reports: totals, users, web sites, categories, blocked, user
 * location) is written as CSV into the archive directory, one file per
 * report per period with a stable name:
 *
 *     DIR/daily/2026-12-03-sites.csv
 *     DIR/weekly/2026-W48-sites.csv
 *     DIR/monthly/2026-11-sites.csv
 *
 * The documents and CSV are those of db/reportdoc.h (the UI's CSV of the
 * same range is the same bytes). A file is written to a temporary name,
 * synced and renamed, so a reader never sees half of one; a file that
 * exists is never written again, so a restart rewrites nothing; and the
 * periods between the newest one in the archive and the one just ended are
 * all produced (a proxy that was down catches up at its next start, up to
 * REPSCHED_CATCHUP_MAX periods of each schedule).
 *
 * The thread (repsched_start) does this off the request path: it reads the
 * store through its own read-only report connection, never waits for the
 * writer and shares nothing with the workers. `musctl report archive`
 * calls repsched_catch_up itself. Listing and opening the archive's files
 * (the admin UI) accept only names of the form above: no other path can be
 * reached through them.
 */
#ifndef MUS_DB_REPSCHED_H
#define MUS_DB_REPSCHED_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "report.h"
#include "reportdoc.h"

#define REPSCHED_DELAY_MS     60000    /* a period is written this long after it ends (late rows are in) */
#define REPSCHED_POLL_MS      60000    /* the thread looks for a period due this often */
#define REPSCHED_CATCHUP_MAX  62       /* periods of one schedule produced at most in one run */
#define REPSCHED_ROWS         REPORT_ROWS_MAX   /* rows of each table */
#define REPSCHED_LIST_MAX     10000    /* files listed at most */
#define REPSCHED_LABEL_MAX    40       /* "2026-12-03", "2026-W48", "2026-11" (room for any int) */
#define REPSCHED_NAME_MAX     128      /* "weekly/2026-W48-categories.csv" */
#define REPSCHED_ERR_MAX      768

enum repsched_kind {
    REPSCHED_DAILY = 0,
    REPSCHED_WEEKLY,
    REPSCHED_MONTHLY,
};
#define REPSCHED_KINDS 3
#define REPSCHED_ALL   ((1u << REPSCHED_KINDS) - 1)   /* a mask of (1u << kind) bits */

/* "daily", "weekly", "monthly" (the sub-directories). */
const char *repsched_kind_name(enum repsched_kind k);
bool repsched_kind_lookup(const char *name, enum repsched_kind *out);

typedef struct repsched_period {
    enum repsched_kind kind;
    int64_t from_ms, to_ms;            /* [from, to), UTC */
    char label[REPSCHED_LABEL_MAX];
} repsched_period_t;

/* The period of kind k that holds t_ms. */
void repsched_period_at(enum repsched_kind k, int64_t t_ms, repsched_period_t *p);
/* The newest period of kind k that has ended by now_ms - REPSCHED_DELAY_MS. */
void repsched_last(enum repsched_kind k, int64_t now_ms, repsched_period_t *p);
/* The period before p (in place). */
void repsched_prev(repsched_period_t *p);
/* The period a label names; false if it names none (exactly as written). */
bool repsched_parse_label(enum repsched_kind k, const char *label, repsched_period_t *p);

/* One scheduled report: its file name part and the table it is. */
typedef struct repsched_report {
    const char *name;                  /* "sites": 2026-12-03-sites.csv */
    enum reportdoc_kind kind;
    const char *table;
} repsched_report_t;
const repsched_report_t *repsched_reports(size_t *n);

/* The files of period p that are missing in dir are written (the
 * directories made); *written counts them. 0, or -1 with the reason (what
 * was written stays). */
int repsched_write(report_t *r, const char *dir, const repsched_period_t *p, unsigned *written,
                   char *err, size_t errlen);

/* For each schedule in kinds (1u << kind bits): the periods from the newest
 * one with a file in dir (or, with none, the one just ended) up to the one
 * just ended at now_ms, each with its missing files written. 0 or -1 (err). */
int repsched_catch_up(report_t *r, const char *dir, unsigned kinds, int64_t now_ms,
                      unsigned *written, char *err, size_t errlen);

/* Whether name is an archive file name as above ("daily/LABEL-REPORT.csv");
 * with out, its parts. */
bool repsched_name_parse(const char *name, repsched_period_t *p, const repsched_report_t **rep);

/* The archive's files, newest period first: {"files": [{"file", "schedule",
 * "period", "report", "from", "to", "bytes", "modified"}], "total"}, at most
 * REPSCHED_LIST_MAX; a missing directory is an empty list. NULL with err. */
json_t *repsched_list(const char *dir, char *err, size_t errlen);

/* Opens file name (repsched_name_parse) of dir for reading: the fd, its
 * size in *size. -2 for a name that is not an archive file's, -1 (errno
 * set) when it cannot be opened (ENOENT: no such file). */
int repsched_open(const char *dir, const char *name, uint64_t *size);

/* The background thread. */
typedef struct repsched repsched_t;

/* Starts the thread ("mp-reports"): at once and then every
 * REPSCHED_POLL_MS, repsched_catch_up on the store (the SQLite file, or the
 * group's PostgreSQL database; copied) for kinds into dir. NULL with the
 * reason. */
repsched_t *repsched_start(const report_store_t *store, const char *dir, unsigned kinds,
                           char *err, size_t errlen);
/* Files written since the start, and the last error ("" if none). */
void repsched_stats(repsched_t *s, uint64_t *written, char *last_error, size_t cap);
/* Stops and joins the thread; NULL allowed. */
void repsched_stop(repsched_t *s);

#endif
