/*
 * db/repsched.c: scheduled reports (see repsched.h): the periods (UTC days,
 * ISO weeks, months) and their labels, the catalog of reports each period
 * gets, writing a period's missing files atomically (temporary file, fsync,
 * rename, fsync of the directory), catching up from the archive's newest
 * period, listing and opening the archive's files by strict name, and the
 * thread that does it every minute. It never writes the store and knows
 * nothing of HTTP.
 */
#include "repsched.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/err.h"
#include "../common/log.h"

#define DAY_MS  86400000LL
#define DIR_MODE 0750

static const char *const kind_names[REPSCHED_KINDS] = {"daily", "weekly", "monthly"};

static const repsched_report_t reports[] = {
    {"summary", REPORTDOC_DASHBOARD, "summary"},
    {"users", REPORTDOC_DASHBOARD, "top_users"},
    {"sites", REPORTDOC_SITES, "sites"},
    {"categories", REPORTDOC_CATEGORIES, "categories"},
    {"blocked", REPORTDOC_BLOCKED, "by_category"},
    {"locations", REPORTDOC_LOCATIONS, "locations"},
};
#define N_REPORTS (sizeof(reports) / sizeof(reports[0]))

const char *
repsched_kind_name(enum repsched_kind k)
{
    return (unsigned)k < REPSCHED_KINDS ? kind_names[k] : "?";
}

bool
repsched_kind_lookup(const char *name, enum repsched_kind *out)
{
    for (unsigned k = 0; k < REPSCHED_KINDS; k++)
        if (strcmp(name, kind_names[k]) == 0) {
            *out = (enum repsched_kind)k;
            return true;
        }
    return false;
}

const repsched_report_t *
repsched_reports(size_t *n)
{
    *n = N_REPORTS;
    return reports;
}

/* ---- periods ---- */

static int64_t
floor_div(int64_t a, int64_t b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

static int64_t
days_of(int y, int m, int d)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d};

    return (int64_t)timegm(&tm) / 86400;
}

/* Monday = 0 (1970-01-01 was a Thursday). */
static int
weekday(int64_t day)
{
    return (int)(((day + 3) % 7 + 7) % 7);
}

static void
ymd(int64_t day, struct tm *tm)
{
    time_t t = (time_t)(day * 86400);

    gmtime_r(&t, tm);
}

static void
set_label(repsched_period_t *p)
{
    struct tm tm;
    int64_t day = floor_div(p->from_ms, DAY_MS);

    switch (p->kind) {
    case REPSCHED_WEEKLY: {
        /* the ISO year is that of the week's Thursday */
        struct tm th;
        ymd(day + 3, &th);
        snprintf(p->label, sizeof(p->label), "%04d-W%02d", th.tm_year + 1900,
                 th.tm_yday / 7 + 1);
        break;
    }
    case REPSCHED_MONTHLY:
        ymd(day, &tm);
        snprintf(p->label, sizeof(p->label), "%04d-%02d", tm.tm_year + 1900, tm.tm_mon + 1);
        break;
    case REPSCHED_DAILY:
    default:
        ymd(day, &tm);
        snprintf(p->label, sizeof(p->label), "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday);
        break;
    }
}

void
repsched_period_at(enum repsched_kind k, int64_t t_ms, repsched_period_t *p)
{
    int64_t day = floor_div(t_ms, DAY_MS);
    struct tm tm;

    p->kind = k;
    switch (k) {
    case REPSCHED_WEEKLY:
        p->from_ms = (day - weekday(day)) * DAY_MS;
        p->to_ms = p->from_ms + 7 * DAY_MS;
        break;
    case REPSCHED_MONTHLY:
        ymd(day, &tm);
        p->from_ms = days_of(tm.tm_year + 1900, tm.tm_mon + 1, 1) * DAY_MS;
        p->to_ms = (tm.tm_mon == 11 ? days_of(tm.tm_year + 1901, 1, 1)
                                    : days_of(tm.tm_year + 1900, tm.tm_mon + 2, 1)) * DAY_MS;
        break;
    case REPSCHED_DAILY:
    default:
        p->kind = REPSCHED_DAILY;
        p->from_ms = day * DAY_MS;
        p->to_ms = p->from_ms + DAY_MS;
        break;
    }
    set_label(p);
}

void
repsched_last(enum repsched_kind k, int64_t now_ms, repsched_period_t *p)
{
    repsched_period_at(k, now_ms - REPSCHED_DELAY_MS, p);
    repsched_prev(p);
}

void
repsched_prev(repsched_period_t *p)
{
    repsched_period_at(p->kind, p->from_ms - 1, p);
}

bool
repsched_parse_label(enum repsched_kind k, const char *label, repsched_period_t *p)
{
    int y = 0, m = 0, d = 0, w = 0, n = -1;
    int64_t day;

    switch (k) {
    case REPSCHED_DAILY:
        if (sscanf(label, "%4d-%2d-%2d%n", &y, &m, &d, &n) != 3 || m < 1 || m > 12 || d < 1 ||
            d > 31)
            return false;
        day = days_of(y, m, d);
        break;
    case REPSCHED_WEEKLY: {
        int64_t jan4;
        if (sscanf(label, "%4d-W%2d%n", &y, &w, &n) != 2 || w < 1 || w > 53)
            return false;
        jan4 = days_of(y, 1, 4);
        day = jan4 - weekday(jan4) + (int64_t)(w - 1) * 7;
        break;
    }
    case REPSCHED_MONTHLY:
        if (sscanf(label, "%4d-%2d%n", &y, &m, &n) != 2 || m < 1 || m > 12)
            return false;
        day = days_of(y, m, 1);
        break;
    default:
        return false;
    }
    if (n < 0 || label[n] != '\0' || y < 1970 || y > 9999)
        return false;
    repsched_period_at(k, day * DAY_MS, p);
    return strcmp(p->label, label) == 0;   /* 2026-02-30, 2026-W53 of a 52-week year, 2026-1 */
}

/* ---- names ---- */

bool
repsched_name_parse(const char *name, repsched_period_t *p, const repsched_report_t **rep)
{
    char kind[16], label[REPSCHED_LABEL_MAX];
    const char *slash = strchr(name, '/'), *file, *dot;
    enum repsched_kind k;
    repsched_period_t tmp;
    size_t klen, flen;

    if (slash == NULL || (klen = (size_t)(slash - name)) >= sizeof(kind))
        return false;
    memcpy(kind, name, klen);
    kind[klen] = '\0';
    if (!repsched_kind_lookup(kind, &k))
        return false;
    file = slash + 1;
    flen = strlen(file);
    dot = flen > 4 ? file + flen - 4 : NULL;
    if (dot == NULL || strcmp(dot, ".csv") != 0)
        return false;
    for (size_t i = 0; i < N_REPORTS; i++) {
        size_t rlen = strlen(reports[i].name), llen;
        if ((size_t)(dot - file) <= rlen + 1)
            continue;
        llen = (size_t)(dot - file) - rlen - 1;
        if (file[llen] != '-' || strncmp(file + llen + 1, reports[i].name, rlen) != 0 ||
            llen >= sizeof(label))
            continue;
        memcpy(label, file, llen);
        label[llen] = '\0';
        if (!repsched_parse_label(k, label, p != NULL ? p : &tmp))
            return false;
        if (rep != NULL)
            *rep = &reports[i];
        return true;
    }
    return false;
}

static int
file_name(char *out, size_t cap, const char *dir, const repsched_period_t *p,
          const repsched_report_t *rep, const char *prefix, const char *suffix)
{
    int n = snprintf(out, cap, "%s/%s/%s%s-%s.csv%s", dir, kind_names[p->kind], prefix,
                     p->label, rep->name, suffix);

    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---- writing ---- */

static int
mkdir_p(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf))
        return errno = ENAMETOOLONG, -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, DIR_MODE) < 0 && errno != EEXIST)
            return -1;
        buf[i] = i < n ? '/' : '\0';
    }
    return 0;
}

static void
fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

/* One file: its document for p, CSV into tmp, synced, renamed to final. */
static int
write_one(report_t *r, const repsched_period_t *p, const repsched_report_t *rep,
          const char *tmp, const char *final, char *err, size_t errlen)
{
    report_range_t q = {.from_ms = p->from_ms, .to_ms = p->to_ms, .loc = REPORT_LOC_ALL};
    reportdoc_params_t rp = {.by = REPORT_BY_REQUESTS, .limit = REPSCHED_ROWS};
    char why[REPORTDOC_ERR_MAX];
    json_t *doc = json_pack("{s:s, s:s, s:I, s:I}", "report", reportdoc_name(rep->kind),
                            "period", p->label, "from", (json_int_t)p->from_ms, "to",
                            (json_int_t)p->to_ms);
    FILE *f = NULL;
    int fd = -1, rc = -1;

    if (doc == NULL) {
        err_set(err, errlen, "out of memory");
        goto done;
    }
    if (reportdoc_fill(doc, r, rep->kind, &q, &rp, why, sizeof(why)) < 0) {
        err_set(err, errlen, "%s: %s", final, why);
        goto done;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
        err_set(err, errlen, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    fd = -1;
    if (reportdoc_csv(f, doc, rep->kind, rep->table, why, sizeof(why)) < 0) {
        err_set(err, errlen, "%s: %s", final, why);
        goto done;
    }
    if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
        err_set(err, errlen, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    if (fclose(f) != 0) {
        f = NULL;
        err_set(err, errlen, "%s: %s", tmp, strerror(errno));
        goto done;
    }
    f = NULL;
    if (rename(tmp, final) < 0) {
        err_set(err, errlen, "rename to %s: %s", final, strerror(errno));
        goto done;
    }
    rc = 0;
done:
    if (f != NULL)
        fclose(f);
    if (fd >= 0)
        close(fd);
    if (rc < 0)
        (void)unlink(tmp);
    json_decref(doc);
    return rc;
}

int
repsched_write(report_t *r, const char *dir, const repsched_period_t *p, unsigned *written,
               char *err, size_t errlen)
{
    char sub[4200], final[4300], tmp[4320], suffix[32];
    struct stat st;
    bool any = false;

    if (snprintf(sub, sizeof(sub), "%s/%s", dir, kind_names[p->kind]) >= (int)sizeof(sub)) {
        err_set(err, errlen, "%s: path too long", dir);
        return -1;
    }
    snprintf(suffix, sizeof(suffix), ".%ld", (long)getpid());
    for (size_t i = 0; i < N_REPORTS; i++) {
        if (file_name(final, sizeof(final), dir, p, &reports[i], "", "") < 0 ||
            file_name(tmp, sizeof(tmp), dir, p, &reports[i], ".", suffix) < 0) {
            err_set(err, errlen, "%s: path too long", dir);
            return -1;
        }
        if (stat(final, &st) == 0)
            continue;
        if (!any && mkdir_p(sub) < 0) {
            err_set(err, errlen, "%s: cannot create it: %s", sub, strerror(errno));
            return -1;
        }
        any = true;
        if (write_one(r, p, &reports[i], tmp, final, err, errlen) < 0)
            return -1;
        log_info("reports: wrote %s", final);
        if (written != NULL)
            (*written)++;
    }
    if (any)
        fsync_dir(sub);
    return 0;
}

/* The newest period with a file in dir/kind; false if none. */
static bool
newest_on_disk(const char *dir, enum repsched_kind k, repsched_period_t *out)
{
    char sub[4200], name[REPSCHED_NAME_MAX];
    DIR *d;
    struct dirent *e;
    repsched_period_t p;
    bool found = false;

    snprintf(sub, sizeof(sub), "%s/%s", dir, kind_names[k]);
    d = opendir(sub);
    if (d == NULL)
        return false;
    while ((e = readdir(d)) != NULL) {
        if (snprintf(name, sizeof(name), "%s/%s", kind_names[k], e->d_name) >=
            (int)sizeof(name))
            continue;
        if (repsched_name_parse(name, &p, NULL) && (!found || p.from_ms > out->from_ms)) {
            *out = p;
            found = true;
        }
    }
    closedir(d);
    return found;
}

int
repsched_catch_up(report_t *r, const char *dir, unsigned kinds, int64_t now_ms,
                  unsigned *written, char *err, size_t errlen)
{
    for (unsigned k = 0; k < REPSCHED_KINDS; k++) {
        repsched_period_t p, newest;
        bool have;

        if (!(kinds & (1u << k)))
            continue;
        repsched_last((enum repsched_kind)k, now_ms, &p);
        have = newest_on_disk(dir, (enum repsched_kind)k, &newest);
        for (unsigned n = 0; n < REPSCHED_CATCHUP_MAX; n++) {
            if (have && p.from_ms < newest.from_ms)
                break;
            if (repsched_write(r, dir, &p, written, err, errlen) < 0)
                return -1;
            if (!have)
                break;          /* an empty archive starts with the period just ended */
            repsched_prev(&p);
        }
    }
    return 0;
}

/* ---- listing and opening ---- */

static int
cmp_files(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_int_t fx = json_integer_value(json_object_get(x, "from"));
    json_int_t fy = json_integer_value(json_object_get(y, "from"));

    if (fx != fy)
        return fx > fy ? -1 : 1;
    return strcmp(json_string_value(json_object_get(x, "file")),
                  json_string_value(json_object_get(y, "file")));
}

json_t *
repsched_list(const char *dir, char *err, size_t errlen)
{
    json_t **rows = NULL;
    size_t n = 0, total = 0;
    json_t *files = json_array(), *out = NULL;

    if (files == NULL)
        goto oom;
    rows = calloc(REPSCHED_LIST_MAX, sizeof(*rows));
    if (rows == NULL)
        goto oom;
    for (unsigned k = 0; k < REPSCHED_KINDS; k++) {
        char sub[4200], name[REPSCHED_NAME_MAX], path[4400];
        DIR *d;
        struct dirent *e;

        snprintf(sub, sizeof(sub), "%s/%s", dir, kind_names[k]);
        d = opendir(sub);
        if (d == NULL)
            continue;
        while ((e = readdir(d)) != NULL) {
            repsched_period_t p;
            const repsched_report_t *rep;
            struct stat st;
            if (snprintf(name, sizeof(name), "%s/%s", kind_names[k], e->d_name) >=
                    (int)sizeof(name) ||
                !repsched_name_parse(name, &p, &rep))
                continue;
            snprintf(path, sizeof(path), "%s/%s", dir, name);
            if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                continue;
            total++;
            if (n == REPSCHED_LIST_MAX)
                continue;
            rows[n] = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I}", "file", name,
                                "schedule", kind_names[k], "period", p.label, "report",
                                rep->name, "from", (json_int_t)p.from_ms, "to",
                                (json_int_t)p.to_ms, "bytes", (json_int_t)st.st_size,
                                "modified", (json_int_t)st.st_mtim.tv_sec * 1000 +
                                                st.st_mtim.tv_nsec / 1000000);
            if (rows[n] != NULL)
                n++;
        }
        closedir(d);
    }
    qsort(rows, n, sizeof(*rows), cmp_files);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(files, rows[i]);
    free(rows);
    out = json_pack("{s:o, s:I}", "files", files, "total", (json_int_t)total);
    if (out == NULL)
        err_set(err, errlen, "out of memory");
    return out;
oom:
    json_decref(files);
    free(rows);
    err_set(err, errlen, "out of memory");
    return NULL;
}

int
repsched_open(const char *dir, const char *name, uint64_t *size)
{
    char path[4400];
    struct stat st;
    int fd;

    if (strlen(name) >= REPSCHED_NAME_MAX || !repsched_name_parse(name, NULL, NULL))
        return -2;
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return errno = ENAMETOOLONG, -1;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return errno = ENOENT, -1;
    }
    *size = (uint64_t)st.st_size;
    return fd;
}

/* ---- the thread ---- */

struct repsched {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;                        /* under mu */
    bool postgresql;
    char store_path[4096], conninfo[1024], password_file[4096], dir[4096];
    unsigned kinds;
    uint64_t written;                 /* under mu */
    char last_error[REPSCHED_ERR_MAX];/* under mu */
};

/* One run: its own report connection, opened and closed each time (a
 * minute apart, so it never holds a WAL snapshot for long). */
static void
run_once(repsched_t *s)
{
    char err[REPSCHED_ERR_MAX] = "";
    unsigned written = 0;
    report_store_t where = {.postgresql = s->postgresql, .path = s->store_path,
                            .conninfo = s->conninfo, .password_file = s->password_file};
    report_t *r = report_open_store(&where, err, sizeof(err));
    int rc = -1;

    if (r != NULL) {
        rc = repsched_catch_up(r, s->dir, s->kinds, (int64_t)time(NULL) * 1000, &written, err, sizeof(err));
        report_close(r);
    }
    pthread_mutex_lock(&s->mu);
    s->written += written;
    if (rc < 0 && strcmp(err, s->last_error) != 0)
        log_warn("reports: %s (tried again every %d s)", err, REPSCHED_POLL_MS / 1000);
    snprintf(s->last_error, sizeof(s->last_error), "%s", rc < 0 ? err : "");
    pthread_mutex_unlock(&s->mu);
}

static void *
thread_main(void *arg)
{
    repsched_t *s = arg;
    struct timespec until;

    pthread_setname_np(pthread_self(), "mp-reports");
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        run_once(s);
        pthread_mutex_lock(&s->mu);
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += REPSCHED_POLL_MS / 1000;
        while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Copies src (NULL = "") into dst[cap]; false if it does not fit. */
static bool
copy_in(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strlen(src) : 0;

    if (n >= cap)
        return false;
    memcpy(dst, src ? src : "", n + 1);
    return true;
}

repsched_t *
repsched_start(const report_store_t *store, const char *dir, unsigned kinds, char *err,
               size_t errlen)
{
    repsched_t *s = calloc(1, sizeof(*s));
    pthread_condattr_t ca;
    int rc;

    if (s == NULL) {
        err_set(err, errlen, "out of memory");
        return NULL;
    }
    s->postgresql = store->postgresql;
    if (!copy_in(s->store_path, sizeof(s->store_path), store->path) ||
        !copy_in(s->conninfo, sizeof(s->conninfo), store->conninfo) ||
        !copy_in(s->password_file, sizeof(s->password_file), store->password_file) ||
        !copy_in(s->dir, sizeof(s->dir), dir)) {
        free(s);
        err_set(err, errlen, "path too long");
        return NULL;
    }
    s->kinds = kinds & REPSCHED_ALL;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    rc = pthread_create(&s->thread, NULL, thread_main, s);
    if (rc != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        free(s);
        err_set(err, errlen, "cannot start its thread: %s", strerror(rc));
        return NULL;
    }
    return s;
}

void
repsched_stats(repsched_t *s, uint64_t *written, char *last_error, size_t cap)
{
    pthread_mutex_lock(&s->mu);
    *written = s->written;
    snprintf(last_error, cap, "%s", s->last_error);
    pthread_mutex_unlock(&s->mu);
}

void
repsched_stop(repsched_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
