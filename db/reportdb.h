/*
 * db/reportdb.h: the reports' read connection, inside db/ only (report.c
 * is its one user). It opens the store read-only, SQLite (a WAL reader) or
 * PostgreSQL (the database a group of proxies shares), checks its schema
 * version, and runs one statement with its parameters, giving the rows as
 * JSON objects keyed by the column names. The SQL is the same for both:
 * placeholders are ?N (numbered, PostgreSQL gets $N), and report.c keeps
 * to what both dialects read alike (no negative substr, subqueries named,
 * "user" quoted). It knows no report and keeps no cache.
 *
 * Threads: a reportdb_t is used by one thread at a time.
 */
#ifndef MUS_DB_REPORTDB_H
#define MUS_DB_REPORTDB_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REPORTDB_PARAMS 16            /* ?1 .. ?16 */

typedef struct reportdb reportdb_t;

/* A statement's parameters: p[i] is ?i (p[0] unused); unset ones are NULL. */
enum reportdb_kind { REPORTDB_NULL = 0, REPORTDB_INT, REPORTDB_TEXT };
typedef struct reportdb_params {
    struct {
        enum reportdb_kind kind;
        int64_t i;
        const char *s;                /* REPORTDB_TEXT: the caller's, kept until the run ends */
    } p[REPORTDB_PARAMS + 1];
} reportdb_params_t;

void reportdb_int(reportdb_params_t *p, int i, int64_t v);
void reportdb_text(reportdb_params_t *p, int i, const char *v);   /* NULL: NULL */

/* Opens the SQLite file read-only; NULL with a message. */
reportdb_t *reportdb_open_sqlite(const char *path, char *err, size_t errlen);
/* Connects to the PostgreSQL store (conninfo without a password,
 * password_file libpq's passfile or NULL); NULL with a message. */
reportdb_t *reportdb_open_pg(const char *conninfo, const char *password_file, char *err,
                             size_t errlen);
void reportdb_close(reportdb_t *db);

/* Where it reads, for messages: the file, or "postgresql host:port/db". */
const char *reportdb_where(const reportdb_t *db);

/* The rows of sql with p (at most max) as an array of objects; NULL with
 * a message in err. Integers are JSON integers (PostgreSQL's numeric sums
 * too), NULL is null, text a string (not UTF-8: U+FFFD). */
json_t *reportdb_rows(reportdb_t *db, const char *sql, const reportdb_params_t *p, unsigned max,
                      char *err, size_t errlen);

/* ---- the backends' side (reportdb.c, reportdb_pg.c) ---- */

typedef struct reportdb_ops {
    json_t *(*rows)(reportdb_t *db, const char *sql, const reportdb_params_t *p, unsigned max,
                    char *err, size_t errlen);
    void (*close)(reportdb_t *db);
} reportdb_ops_t;

struct reportdb {
    const reportdb_ops_t *ops;
    void *conn;                       /* sqlite3 * or PGconn * */
    char where[512];
};

#endif
