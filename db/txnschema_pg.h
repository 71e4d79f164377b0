/*
 * db/txnschema_pg.h: the transaction store's schema in PostgreSQL, inside
 * db/ only (the writer, db/txnstore_pg.c, and the readers, db/reportdb_pg.c).
 * It connects with libpq (refusing a conninfo that holds a password: that
 * goes in a password file), creates the tables when the database is empty
 * and runs the forward migrations, and checks that a database is ours and
 * not newer than this build. It holds no state and starts no thread.
 *
 * Tables: those of txnschema.h (txn, sessions, ru_user, ru_category,
 * ru_host, ru_blocked, the same columns and keys) with a `node` column in
 * txn and sessions: the proxy that served the row. The rollups have no node:
 * every proxy of the group adds its rows into the same sums. Text columns
 * sort bytewise (COLLATE "C"), as SQLite's do, so reports order ties alike.
 * The version is the single row of musproxy_schema (version, app).
 */
#ifndef MUS_DB_TXNSCHEMA_PG_H
#define MUS_DB_TXNSCHEMA_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#define TXNSCHEMA_PG_VERSION      1       /* what this build writes and reads */
#define TXNSCHEMA_PG_CONNECT_S    "5"     /* libpq connect_timeout */
#define TXNSCHEMA_PG_LOCK         0x4d555354   /* advisory lock of a migration: "MUST" */

/* Whether conninfo (key=value or a postgresql:// URI) parses and holds no
 * password; 0, or -1 with a message that never shows the password. */
int txnschema_pg_check_conninfo(const char *conninfo, char *err, size_t errlen);

/* Connects (conninfo, then password_file as libpq's passfile unless NULL or
 * "", client_encoding UTF8, application_name musproxy). NULL with libpq's
 * message. */
PGconn *txnschema_pg_connect(const char *conninfo, const char *password_file, char *err,
                             size_t errlen);

/* Creates or migrates the schema to TXNSCHEMA_PG_VERSION in one
 * transaction under an advisory lock (two proxies starting at once
 * migrate once). 0; -1 with err (the connection failed: may work later);
 * -2 with err when the database is refused (a newer or foreign schema). */
int txnschema_pg_migrate(PGconn *c, char *err, size_t errlen);

/* Checks, for a reader, that the database is at TXNSCHEMA_PG_VERSION. */
int txnschema_pg_check(PGconn *c, char *err, size_t errlen);

/* "host=... dbname=..." of a connection, for messages (no password). */
void txnschema_pg_where(PGconn *c, char *buf, size_t cap);

#endif
