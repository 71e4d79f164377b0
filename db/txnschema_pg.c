/*
 * db/txnschema_pg.c: connecting to the PostgreSQL store and its schema (see
 * txnschema_pg.h). No state, no threads, no queries beyond the schema's own.
 *
 * Versions: a database without musproxy_schema is empty (created here); one
 * with it is at its version. Each step moves one version forward inside the
 * migration's transaction, which holds pg_advisory_xact_lock(
 * TXNSCHEMA_PG_LOCK): a second proxy starting at the same time waits, then
 * finds the schema current. Steps are never edited once released.
 */
#include "txnschema_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"

#define T " text COLLATE \"C\" NOT NULL,"      /* a text column, bytewise order */
#define I " bigint NOT NULL,"
#define RU_SUMS " requests" I " bytes" I " blocked" I
#define RU_KEY  " span" I " bucket" I " remote integer NOT NULL, \"user\"" T

/* Version 1: SQLite's schema version 2 with the node column. */
static const char schema_v1[] =
    "CREATE TABLE txn("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " node" T
    " time_ms" I " elapsed_ms" I " client" T " mode" T " result" T
    " status integer NOT NULL, bytes_out" I " method" T " host" T " url" T
    " url_cut integer NOT NULL, \"user\"" T " remote integer NOT NULL,"
    " user_source" T " identity_type" T " headend" T " identity_profile" T
    " access_policy" T " rule" T " category" T " decision" T " decision_tag" T
    " blocked integer NOT NULL, server" T " mime text COLLATE \"C\" NOT NULL);"
    "CREATE INDEX txn_time ON txn(time_ms);"
    "CREATE INDEX txn_user ON txn(\"user\", time_ms);"
    "CREATE INDEX txn_category ON txn(category, time_ms);"
    "CREATE INDEX txn_node ON txn(node, time_ms);"
    "CREATE TABLE sessions("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " node" T " \"user\"" T " domain" T " vpn_addr" T " public_addr" T " type" T " headend" T
    " start_ms" I " end_ms" I " end_reason" T
    " UNIQUE(headend, vpn_addr, start_ms));"
    "CREATE INDEX sessions_end ON sessions(end_ms);"
    "CREATE TABLE ru_user(" RU_KEY RU_SUMS
    " PRIMARY KEY(span, bucket, remote, \"user\"));"
    "CREATE TABLE ru_category(" RU_KEY " category" T RU_SUMS
    " PRIMARY KEY(span, bucket, remote, \"user\", category));"
    "CREATE TABLE ru_host(" RU_KEY " host" T RU_SUMS
    " PRIMARY KEY(span, bucket, remote, \"user\", host));"
    "CREATE TABLE ru_blocked(" RU_KEY " host" T " category" T " access_policy" T " rule" T
    RU_SUMS " PRIMARY KEY(span, bucket, remote, \"user\", host, category, access_policy, rule));";

static const struct { int to; const char *sql; } steps[] = {
    {1, schema_v1},
};

int
txnschema_pg_check_conninfo(const char *conninfo, char *err, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", &perr);
    int rc = 0;

    if (opts == NULL) {
        err_set(err, errlen, "postgresql conninfo: %s",
                perr ? perr : "cannot be parsed (out of memory)");
        if (perr != NULL)
            PQfreemem(perr);
        return -1;
    }
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val != NULL && o->val[0] != '\0') {
            err_set(err, errlen, "postgresql conninfo holds a password: put it in a password "
                    "file (store.postgresql.password_file, libpq's passfile format) instead");
            rc = -1;
        }
    PQconninfoFree(opts);
    return rc;
}

PGconn *
txnschema_pg_connect(const char *conninfo, const char *password_file, char *err, size_t errlen)
{
    const char *keys[8], *vals[8];
    int n = 0;
    PGconn *c;

    if (txnschema_pg_check_conninfo(conninfo, err, errlen) < 0)
        return NULL;
    /* dbname first, expanded as a whole conninfo; the rest override it */
    keys[n] = "dbname", vals[n++] = conninfo;
    keys[n] = "connect_timeout", vals[n++] = TXNSCHEMA_PG_CONNECT_S;
    keys[n] = "client_encoding", vals[n++] = "UTF8";
    keys[n] = "application_name", vals[n++] = "musproxy";
    if (password_file != NULL && password_file[0] != '\0')
        keys[n] = "passfile", vals[n++] = password_file;
    keys[n] = NULL, vals[n] = NULL;
    c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL) {
        err_set(err, errlen, "postgresql: out of memory");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = '\0';
        err_set(err, errlen, "postgresql: cannot connect: %s", msg);
        PQfinish(c);
        return NULL;
    }
    return c;
}

void
txnschema_pg_where(PGconn *c, char *buf, size_t cap)
{
    const char *host = c ? PQhost(c) : NULL, *port = c ? PQport(c) : NULL;
    const char *db = c ? PQdb(c) : NULL;

    snprintf(buf, cap, "postgresql %s:%s/%s", host ? host : "?", port ? port : "?",
             db ? db : "?");
}

/* Runs sql; 0 or -1 with "postgresql: what: message". */
static int
exec_ok(PGconn *c, const char *sql, const char *what, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType st = PQresultStatus(r);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;

    if (rc < 0) {
        char msg[512];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = '\0';
        err_set(err, errlen, "postgresql: %s: %s", what, msg);
    }
    PQclear(r);
    return rc;
}

/* The database's schema version, 0 if it has none; -1 with err. */
static long
read_version(PGconn *c, char *err, size_t errlen)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('musproxy_schema') IS NOT NULL");
    long v = -1;

    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        bool have = PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (!have)
            return 0;
        r = PQexec(c, "SELECT max(version), bool_and(app = 'musproxy') FROM musproxy_schema");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
            !PQgetisnull(r, 0, 0)) {
            v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
            if (PQgetvalue(r, 0, 1)[0] != 't') {
                err_set(err, errlen, "postgresql: musproxy_schema is not a musproxy store's");
                PQclear(r);
                return -2;
            }
        }
    }
    if (v < 0 && err[0] == '\0')
        err_set(err, errlen, "postgresql: cannot read the schema version: %s",
                PQerrorMessage(c));
    PQclear(r);
    return v;
}

int
txnschema_pg_migrate(PGconn *c, char *err, size_t errlen)
{
    char sql[128];
    long ver;
    int rc = -1;

    err[0] = '\0';
    snprintf(sql, sizeof(sql), "BEGIN; SELECT pg_advisory_xact_lock(%d)", TXNSCHEMA_PG_LOCK);
    if (exec_ok(c, sql, "migration", err, errlen) < 0)
        goto fail;
    if ((ver = read_version(c, err, errlen)) < 0) {
        rc = (int)ver;
        goto fail;
    }
    if (ver > TXNSCHEMA_PG_VERSION) {
        rc = -2;
        err_set(err, errlen, "postgresql: the transaction store has schema version %ld, newer "
                "than version %d that this musproxy knows; refusing to use it", ver,
                TXNSCHEMA_PG_VERSION);
        goto fail;
    }
    if (ver == 0 && exec_ok(c, "CREATE TABLE musproxy_schema(version integer NOT NULL,"
                            " app text NOT NULL); INSERT INTO musproxy_schema"
                            " VALUES(0, 'musproxy')", "creating the schema", err, errlen) < 0)
        goto fail;
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        char what[64];
        if (steps[i].to <= ver)
            continue;
        snprintf(what, sizeof(what), "migration to schema version %d", steps[i].to);
        snprintf(sql, sizeof(sql), "UPDATE musproxy_schema SET version = %d", steps[i].to);
        if (exec_ok(c, steps[i].sql, what, err, errlen) < 0 ||
            exec_ok(c, sql, what, err, errlen) < 0)
            goto fail;
        ver = steps[i].to;
    }
    if (exec_ok(c, "COMMIT", "migration", err, errlen) < 0)
        goto fail;
    return 0;
fail:
    PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}

int
txnschema_pg_check(PGconn *c, char *err, size_t errlen)
{
    long ver;

    err[0] = '\0';
    if ((ver = read_version(c, err, errlen)) < 0)
        return -1;
    if (ver != TXNSCHEMA_PG_VERSION) {
        err_set(err, errlen, "postgresql: the transaction store is at schema version %ld, "
                "reports need %d (musproxy creates or migrates it when its store connects)",
                ver, TXNSCHEMA_PG_VERSION);
        return -1;
    }
    return 0;
}
