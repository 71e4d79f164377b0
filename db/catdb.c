/*
 * db/catdb.c: the URL category database (SQLite), see catdb.h.
 *
 * Import reads a UT1-layout directory: every subfolder whose name is a valid
 * category name (letters, digits, '-', '_', '.'; shorter than
 * CATDB_MAX_CATEGORY) is a category, with up to three list files, each
 * optional: `domains`, `urls` and `expressions`. Lines are one entry each;
 * blank lines and '#' comments are ignored, a trailing CR is tolerated, and
 * lines that are too long or hold spaces or control characters are skipped
 * and counted. Folders with a bad name are skipped and counted in the same
 * `skipped` counter. A folder that is a symbolic link is followed, unless it
 * points at another folder of the same directory (UT1's English aliases such
 * as porn -> adult): those are recorded in the aliases table and not
 * imported twice.
 *
 * Everything is written in one transaction that first empties the tables, so
 * a failed import leaves the previous content and readers (musproxy on a
 * reload) see either the old or the new lists, never a mix. Entries are
 * inserted in (category name, kind, file order) order, so reading them back
 * by rowid is deterministic without an index or a sort.
 *
 * Schema (PRAGMA user_version = CATDB_SCHEMA_VERSION):
 *   categories(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)
 *   entries(category INTEGER NOT NULL, kind INTEGER NOT NULL, value TEXT NOT NULL)
 *   aliases(name TEXT PRIMARY KEY, category INTEGER NOT NULL)
 *   meta(key TEXT PRIMARY KEY, value TEXT NOT NULL)
 *     keys: imported_at (UTC, ISO 8601), source (absolute dir), categories,
 *     domains, urls, expressions, skipped
 * kind is enum policy_list_kind.
 *
 * It keeps nothing in memory between calls and prints nothing.
 */
#include "catdb.h"
#include "../common/err.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CATDB_SCHEMA_VERSION   1
#define CATDB_MAX_FOLDERS      4096          /* subfolders of the import directory */
#define CATDB_DOMAIN_MAX       253           /* bytes of a domain (RFC 1035 text form) */
#define CATDB_BUSY_MS          5000          /* wait for another writer/checkpoint */
#define CATDB_IMPORT_CACHE_KIB 65536         /* page cache during the import */
#define CATDB_READ_BUF         (1u << 20)    /* stdio buffer for list files */

/* The three list files of a category folder, in import (and read) order. */
static const struct {
    const char *file;
    enum policy_list_kind kind;
} list_files[] = {
    {"domains", POLICY_LIST_DOMAIN},
    {"urls", POLICY_LIST_URL},
    {"expressions", POLICY_LIST_EXPRESSION},
};
#define N_LIST_FILES (sizeof(list_files) / sizeof(list_files[0]))

static const char schema_sql[] =
    "CREATE TABLE IF NOT EXISTS categories(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
    "CREATE TABLE IF NOT EXISTS entries(category INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " value TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS aliases(name TEXT PRIMARY KEY, category INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "DELETE FROM entries; DELETE FROM categories; DELETE FROM aliases; DELETE FROM meta;";

/* One subfolder found by the directory scan. */
typedef struct folder {
    char name[CATDB_MAX_CATEGORY];
    char real[PATH_MAX];          /* resolved path, to detect sibling aliases */
    bool is_link;
} folder_t;

/* State of one import. */
typedef struct import {
    sqlite3 *db;
    sqlite3_stmt *ins_cat, *ins_entry, *ins_alias, *ins_meta;
    catdb_counts_t counts;
    char *line;                   /* CATDB_LINE_MAX + 2 bytes */
    char *iobuf;                  /* CATDB_READ_BUF bytes */
    char *err;
    size_t errlen;
} import_t;


/* Category (folder) names: letters, digits, '-', '_', '.', not "." or "..",
 * 1 to CATDB_MAX_CATEGORY - 1 bytes. */
static bool
valid_category(const char *name)
{
    size_t n = strlen(name);

    if (n == 0 || n >= CATDB_MAX_CATEGORY || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
            c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

/* A domain after lowercasing: letters, digits, '-', '_' and '.', no empty
 * label, at most CATDB_DOMAIN_MAX bytes. */
static bool
valid_domain(const char *d, size_t n)
{
    if (n == 0 || n > CATDB_DOMAIN_MAX || d[0] == '.' || d[n - 1] == '.')
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.' && d[i + 1] == '.')
            return false;
        if (!(c >= 'a' && c <= 'z') && !(c >= '0' && c <= '9') && c != '-' && c != '_' && c != '.')
            return false;
    }
    return true;
}

static void
lower_ascii(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
}

/* Normalises one line (without its newline) of a list of the given kind in
 * place. Returns the entry, NULL with *skip false for a blank or comment
 * line, or NULL with *skip true for a malformed one. */
static char *
normalise(char *s, size_t n, enum policy_list_kind kind, bool *skip)
{
    size_t i = 0;

    *skip = false;
    if (n > 0 && s[n - 1] == '\r')
        s[--n] = '\0';
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == n || s[i] == '#')
        return NULL;                          /* blank or comment */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c == 0x7f) {          /* spaces, tabs, control characters, NUL */
            *skip = true;
            return NULL;
        }
    }
    switch (kind) {
    case POLICY_LIST_DOMAIN:
        lower_ascii(s, n);
        if (s[0] == '.') {                    /* squidGuard-style ".example.com" */
            s++;
            n--;
        }
        if (n > 0 && s[n - 1] == '.')         /* fully qualified "example.com." */
            s[--n] = '\0';
        if (!valid_domain(s, n)) {
            *skip = true;
            return NULL;
        }
        return s;
    case POLICY_LIST_URL: {
        char *host = s, *slash;
        if (strncmp(s, "http://", 7) == 0)
            host = s + 7;
        else if (strncmp(s, "https://", 8) == 0)
            host = s + 8;
        slash = strchr(host, '/');
        lower_ascii(host, slash ? (size_t)(slash - host) : strlen(host));
        if (host[0] == '\0' || host[0] == '/') {
            *skip = true;
            return NULL;
        }
        return host;
    }
    case POLICY_LIST_EXPRESSION:
        return s;
    }
    *skip = true;
    return NULL;
}

/* Imports one list file. A missing file is not an error. 0 or -1. */
static int
import_file(import_t *im, const char *dir, const folder_t *f, sqlite3_int64 cat_id,
            enum policy_list_kind kind, const char *file)
{
    char path[PATH_MAX];
    uint64_t *counter = kind == POLICY_LIST_DOMAIN ? &im->counts.domains
                        : kind == POLICY_LIST_URL  ? &im->counts.urls
                                                   : &im->counts.expressions;
    FILE *fp = NULL;
    bool too_long = false;
    int rc = -1;

    if ((size_t)snprintf(path, sizeof(path), "%s/%s/%s", dir, f->name, file) >= sizeof(path)) {
        err_set(im->err, im->errlen, "%s/%s/%s: path too long", dir, f->name, file);
        return -1;
    }
    fp = fopen(path, "re");
    if (fp == NULL) {
        if (errno == ENOENT)
            return 0;
        err_set(im->err, im->errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    setvbuf(fp, im->iobuf, _IOFBF, CATDB_READ_BUF);

    /* The buffer holds CATDB_LINE_MAX bytes, the newline and the NUL: a
     * read that ends without a newline before EOF is an overlong line,
     * whose remaining pieces are discarded up to the next newline. */
    while (fgets(im->line, CATDB_LINE_MAX + 2, fp) != NULL) {
        size_t n = strlen(im->line);
        bool nl = n > 0 && im->line[n - 1] == '\n', skip;
        char *v;

        if (too_long) {
            too_long = !nl;
            continue;
        }
        if (nl)
            im->line[--n] = '\0';
        else if (!feof(fp)) {
            too_long = true;
            im->counts.skipped++;
            continue;
        }
        if (n > CATDB_LINE_MAX || strlen(im->line) != n) {   /* over the limit, or a NUL byte */
            im->counts.skipped++;
            continue;
        }
        v = normalise(im->line, n, kind, &skip);
        if (v == NULL) {
            if (skip)
                im->counts.skipped++;
            continue;
        }
        sqlite3_bind_int64(im->ins_entry, 1, cat_id);
        sqlite3_bind_int(im->ins_entry, 2, (int)kind);
        sqlite3_bind_text(im->ins_entry, 3, v, -1, SQLITE_STATIC);
        if (sqlite3_step(im->ins_entry) != SQLITE_DONE) {
            err_set(im->err, im->errlen, "%s: cannot insert: %s", path, sqlite3_errmsg(im->db));
            sqlite3_reset(im->ins_entry);
            goto cleanup;
        }
        sqlite3_reset(im->ins_entry);
        (*counter)++;
    }
    if (ferror(fp)) {
        err_set(im->err, im->errlen, "cannot read %s: %s", path, strerror(errno));
        goto cleanup;
    }
    rc = 0;
cleanup:
    fclose(fp);
    return rc;
}

static int
folder_cmp(const void *a, const void *b)
{
    return strcmp(((const folder_t *)a)->name, ((const folder_t *)b)->name);
}

/* Lists the category folders of dir, sorted by name, in *out (caller
 * frees). Bad names are counted in im->counts.skipped; plain files and
 * hidden entries are ignored. 0 or -1. */
static int
scan_dir(import_t *im, const char *dir, folder_t **out, size_t *nout)
{
    folder_t *v = NULL;
    size_t n = 0, cap = 0;
    DIR *d = opendir(dir);
    struct dirent *de;
    int rc = -1;

    if (d == NULL) {
        err_set(im->err, im->errlen, "cannot open directory %s: %s", dir, strerror(errno));
        return -1;
    }
    while ((errno = 0, de = readdir(d)) != NULL) {
        char path[PATH_MAX];
        struct stat st, lst;

        if (de->d_name[0] == '.')
            continue;                         /* ".", "..", hidden */
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= sizeof(path))
            continue;
        if (stat(path, &st) < 0 || !S_ISDIR(st.st_mode))
            continue;                         /* files (global_usage, README), dangling links */
        if (!valid_category(de->d_name)) {
            im->counts.skipped++;
            continue;
        }
        if (n == cap) {
            folder_t *nv;
            if (cap >= CATDB_MAX_FOLDERS) {
                err_set(im->err, im->errlen, "%s: more than %d folders", dir, CATDB_MAX_FOLDERS);
                goto cleanup;
            }
            cap = cap ? cap * 2 : 64;
            nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) {
                err_set(im->err, im->errlen, "out of memory");
                goto cleanup;
            }
            v = nv;
        }
        memset(&v[n], 0, sizeof(v[n]));
        strcpy(v[n].name, de->d_name);        /* valid_category bounded it */
        v[n].is_link = lstat(path, &lst) == 0 && S_ISLNK(lst.st_mode);
        if (realpath(path, v[n].real) == NULL) {
            err_set(im->err, im->errlen, "cannot resolve %s: %s", path, strerror(errno));
            goto cleanup;
        }
        n++;
    }
    if (errno != 0) {
        err_set(im->err, im->errlen, "cannot read directory %s: %s", dir, strerror(errno));
        goto cleanup;
    }
    if (n > 0)
        qsort(v, n, sizeof(*v), folder_cmp);
    *out = v;
    *nout = n;
    v = NULL;
    rc = 0;
cleanup:
    free(v);
    closedir(d);
    return rc;
}

/* A symbolic link to another folder of the same directory: its index, or -1. */
static ssize_t
alias_target(const folder_t *v, size_t n, size_t i)
{
    if (!v[i].is_link)
        return -1;
    for (size_t j = 0; j < n; j++)
        if (j != i && !v[j].is_link && strcmp(v[i].real, v[j].real) == 0)
            return (ssize_t)j;
    return -1;
}

static int
exec_sql(sqlite3 *db, const char *sql, const char *what, char *err, size_t errlen)
{
    char *msg = NULL;

    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        err_set(err, errlen, "%s: %s", what, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static int
prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errlen)
{
    if (sqlite3_prepare_v2(db, sql, -1, st, NULL) != SQLITE_OK) {
        err_set(err, errlen, "cannot prepare \"%s\": %s", sql, sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static int
put_meta(import_t *im, const char *key, const char *value)
{
    sqlite3_bind_text(im->ins_meta, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(im->ins_meta, 2, value, -1, SQLITE_STATIC);
    if (sqlite3_step(im->ins_meta) != SQLITE_DONE) {
        err_set(im->err, im->errlen, "cannot write meta %s: %s", key, sqlite3_errmsg(im->db));
        sqlite3_reset(im->ins_meta);
        return -1;
    }
    sqlite3_reset(im->ins_meta);
    return 0;
}

static int
put_meta_u64(import_t *im, const char *key, uint64_t value)
{
    char buf[32];

    snprintf(buf, sizeof(buf), "%" PRIu64, value);
    return put_meta(im, key, buf);
}

/* Writes all folders and the meta rows; inside the open transaction. */
static int
import_folders(import_t *im, const char *dir, const folder_t *v, size_t n)
{
    char when[32], source[PATH_MAX];
    time_t now = time(NULL);
    struct tm tm;

    for (size_t i = 0; i < n; i++) {
        sqlite3_int64 id;

        if (alias_target(v, n, i) >= 0)
            continue;                         /* written after its target */
        sqlite3_bind_text(im->ins_cat, 1, v[i].name, -1, SQLITE_STATIC);
        if (sqlite3_step(im->ins_cat) != SQLITE_DONE) {
            err_set(im->err, im->errlen, "cannot insert category %s: %s", v[i].name,
                   sqlite3_errmsg(im->db));
            sqlite3_reset(im->ins_cat);
            return -1;
        }
        sqlite3_reset(im->ins_cat);
        id = sqlite3_last_insert_rowid(im->db);
        im->counts.categories++;
        for (size_t k = 0; k < N_LIST_FILES; k++)
            if (import_file(im, dir, &v[i], id, list_files[k].kind, list_files[k].file) < 0)
                return -1;
    }
    for (size_t i = 0; i < n; i++) {
        ssize_t t = alias_target(v, n, i);
        if (t < 0)
            continue;
        sqlite3_bind_text(im->ins_alias, 1, v[i].name, -1, SQLITE_STATIC);
        sqlite3_bind_text(im->ins_alias, 2, v[t].name, -1, SQLITE_STATIC);
        if (sqlite3_step(im->ins_alias) != SQLITE_DONE) {
            err_set(im->err, im->errlen, "cannot insert alias %s: %s", v[i].name,
                   sqlite3_errmsg(im->db));
            sqlite3_reset(im->ins_alias);
            return -1;
        }
        sqlite3_reset(im->ins_alias);
    }

    gmtime_r(&now, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (realpath(dir, source) == NULL)
        snprintf(source, sizeof(source), "%s", dir);
    if (put_meta(im, "imported_at", when) < 0 || put_meta(im, "source", source) < 0 ||
        put_meta_u64(im, "categories", im->counts.categories) < 0 ||
        put_meta_u64(im, "domains", im->counts.domains) < 0 ||
        put_meta_u64(im, "urls", im->counts.urls) < 0 ||
        put_meta_u64(im, "expressions", im->counts.expressions) < 0 ||
        put_meta_u64(im, "skipped", im->counts.skipped) < 0)
        return -1;
    return 0;
}

int
catdb_import(const char *db_path, const char *dir, catdb_counts_t *out, char *err, size_t errlen)
{
    import_t im = {.err = err, .errlen = errlen};
    folder_t *folders = NULL;
    size_t nfolders = 0;
    bool in_tx = false;
    char pragmas[160];
    int rc = -1;

    /* Read the directory before touching the database: a wrong path must
     * not cost the current lists. */
    if (scan_dir(&im, dir, &folders, &nfolders) < 0)
        goto cleanup;
    if (nfolders == 0) {
        err_set(err, errlen, "no category folders in %s (expected %s/<category>/domains, "
               "e.g. the blacklists/ folder of the UT1 archive)", dir, dir);
        goto cleanup;
    }
    im.line = malloc(CATDB_LINE_MAX + 2);
    im.iobuf = malloc(CATDB_READ_BUF);
    if (im.line == NULL || im.iobuf == NULL) {
        err_set(err, errlen, "out of memory");
        goto cleanup;
    }

    if (sqlite3_open_v2(db_path, &im.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        err_set(err, errlen, "cannot open category database %s: %s", db_path,
               im.db ? sqlite3_errmsg(im.db) : "out of memory");
        goto cleanup;
    }
    sqlite3_busy_timeout(im.db, CATDB_BUSY_MS);
    /* WAL: musproxy may read the old lists while this runs. synchronous=OFF
     * while importing: the import can simply be run again after a crash,
     * and WAL keeps the file consistent. */
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=OFF; PRAGMA cache_size=-%d;"
             " PRAGMA temp_store=MEMORY;", CATDB_IMPORT_CACHE_KIB);
    if (exec_sql(im.db, pragmas, db_path, err, errlen) < 0)
        goto cleanup;
    if (exec_sql(im.db, "BEGIN IMMEDIATE", db_path, err, errlen) < 0)
        goto cleanup;
    in_tx = true;
    if (exec_sql(im.db, schema_sql, db_path, err, errlen) < 0)
        goto cleanup;
    {
        char uv[48];
        snprintf(uv, sizeof(uv), "PRAGMA user_version=%d", CATDB_SCHEMA_VERSION);
        if (exec_sql(im.db, uv, db_path, err, errlen) < 0)
            goto cleanup;
    }
    if (prepare(im.db, "INSERT INTO categories(name) VALUES(?)", &im.ins_cat, err, errlen) < 0 ||
        prepare(im.db, "INSERT INTO entries(category, kind, value) VALUES(?, ?, ?)",
                &im.ins_entry, err, errlen) < 0 ||
        prepare(im.db, "INSERT INTO aliases(name, category) "
                "SELECT ?, id FROM categories WHERE name = ?", &im.ins_alias, err, errlen) < 0 ||
        prepare(im.db, "INSERT INTO meta(key, value) VALUES(?, ?)", &im.ins_meta, err,
                errlen) < 0)
        goto cleanup;

    if (import_folders(&im, dir, folders, nfolders) < 0)
        goto cleanup;

    if (exec_sql(im.db, "COMMIT", db_path, err, errlen) < 0)
        goto cleanup;
    in_tx = false;
    /* Fold the WAL into the main file so that it stands alone; failing
     * here (a reader holds a snapshot) is harmless. */
    sqlite3_exec(im.db, "PRAGMA synchronous=NORMAL; PRAGMA wal_checkpoint(TRUNCATE);", NULL,
                 NULL, NULL);
    if (out != NULL)
        *out = im.counts;
    rc = 0;
cleanup:
    sqlite3_finalize(im.ins_cat);
    sqlite3_finalize(im.ins_entry);
    sqlite3_finalize(im.ins_alias);
    sqlite3_finalize(im.ins_meta);
    if (in_tx)
        sqlite3_exec(im.db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(im.db);
    free(im.line);
    free(im.iobuf);
    free(folders);
    return rc;
}

/* Opens an imported database read-only, or fails with a message that says
 * how to create it. */
static sqlite3 *
open_ro(const char *db_path, char *err, size_t errlen)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    struct stat sb;
    int version = -1;

    if (db_path == NULL || db_path[0] == '\0') {
        err_set(err, errlen, "no category database configured");
        return NULL;
    }
    if (stat(db_path, &sb) < 0) {
        if (errno == ENOENT)
            err_set(err, errlen, "category database %s not found: run musctl categories import DIR",
                   db_path);
        else
            err_set(err, errlen, "category database %s: %s", db_path, strerror(errno));
        return NULL;
    }
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        err_set(err, errlen, "cannot open category database %s: %s", db_path,
               db ? sqlite3_errmsg(db) : "out of memory");
        goto fail;
    }
    sqlite3_busy_timeout(db, CATDB_BUSY_MS);
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        err_set(err, errlen, "category database %s: %s", db_path, sqlite3_errmsg(db));
        goto fail;
    }
    version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (version != CATDB_SCHEMA_VERSION) {
        err_set(err, errlen, "%s is not a category database of this version (schema %d, want %d): "
               "run musctl categories import DIR", db_path, version, CATDB_SCHEMA_VERSION);
        goto fail;
    }
    return db;
fail:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return NULL;
}

int
catdb_source(void *arg, policy_emit_fn emit, void *ctx, char *err, size_t errlen)
{
    const char *db_path = arg;
    sqlite3 *db = open_ro(db_path, err, errlen);
    sqlite3_stmt *st = NULL;
    int rc = -1, step;

    if (db == NULL)
        return -1;
    /* One read transaction: a concurrent import is invisible. */
    if (exec_sql(db, "BEGIN", db_path, err, errlen) < 0)
        goto cleanup;
    if (prepare(db, "SELECT c.name, e.kind, e.value FROM entries e "
                "JOIN categories c ON c.id = e.category ORDER BY e.rowid", &st, err, errlen) < 0)
        goto cleanup;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        const char *cat = (const char *)sqlite3_column_text(st, 0);
        int kind = sqlite3_column_int(st, 1);
        const char *value = (const char *)sqlite3_column_text(st, 2);

        if (cat == NULL || value == NULL || kind < POLICY_LIST_DOMAIN ||
            kind > POLICY_LIST_EXPRESSION) {
            err_set(err, errlen, "category database %s: malformed entry", db_path);
            goto cleanup;
        }
        if (emit(ctx, cat, (enum policy_list_kind)kind, value) < 0)
            goto cleanup;                     /* emit's message is in err */
    }
    if (step != SQLITE_DONE) {
        err_set(err, errlen, "category database %s: %s", db_path, sqlite3_errmsg(db));
        goto cleanup;
    }
    rc = 0;
cleanup:
    sqlite3_finalize(st);
    sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

int
catdb_counts(const char *db_path, catdb_counts_t *out, char *err, size_t errlen)
{
    static const char *const keys[] = {"categories", "domains", "urls", "expressions", "skipped"};
    catdb_counts_t c = {0};
    uint64_t *fields[] = {&c.categories, &c.domains, &c.urls, &c.expressions, &c.skipped};
    sqlite3 *db = open_ro(db_path, err, errlen);
    sqlite3_stmt *st = NULL;
    int rc = -1;

    if (db == NULL)
        return -1;
    if (prepare(db, "SELECT value FROM meta WHERE key = ?", &st, err, errlen) < 0)
        goto cleanup;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
        if (sqlite3_step(st) != SQLITE_ROW) {
            err_set(err, errlen, "category database %s: no %s count: %s", db_path, keys[i],
                   sqlite3_errmsg(db));
            goto cleanup;
        }
        *fields[i] = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    *out = c;
    rc = 0;
cleanup:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}
