/*
 * db/txnstore.h: the transaction store. The proxy hands every finished
 * transaction (common/txn.h's txn_record_t) and every remote-session event
 * to txnstore_submit / txnstore_session_event; one writer thread owned by
 * the store writes them in batched transactions, to an SQLite file (WAL,
 * the default) or to a PostgreSQL database a group of proxies shares
 * (cfg.backend; db/txnstore_pg.c), and enforces retention by age (and, on
 * SQLite, size). It does not read reports (db/report.h
 * opens its own read-only connections) and never calls into proxy/ or mus/.
 *
 * Threads and ownership:
 *   - txnstore_open and txnstore_close run on the owner's thread (the main
 *     thread). Between them, txnstore_submit, txnstore_session_event and
 *     txnstore_stats may be called from any number of threads at once.
 *   - submit copies the record into a preallocated slot under a short mutex
 *     and returns; it never touches SQLite, never allocates and never waits
 *     for the writer. A full queue drops the record and counts it (dropped).
 *   - A checkpoint thread ("mp-store-ckpt", its own connection) copies
 *     the WAL into the file when the writer ("mp-store") asks; it never
 *     writes rows and nobody waits for it.
 *   - The writer thread alone owns the writing connection. Records it had
 *     accepted but could not write (disk full, I/O error, corruption, a lock
 *     held longer than busy_retry_ms) are counted in `lost`, with the reason
 *     in last_error; after an I/O or corruption error it closes the file and
 *     tries to reopen it every reopen_ms. On PostgreSQL a lost connection
 *     holds the batch and connects again after 1, 2, 4 .. 30 s, sending it
 *     then (a batch whose COMMIT was in flight is lost: its outcome is
 *     unknown). It never exits before close.
 *   So at any time: submitted = written + lost + queued, and every record
 *   offered is either submitted or dropped.
 *
 * Memory: queue_max slots of sizeof(txn_record_t) (about 5 KiB) are reserved
 * up front, but free slots are reused last-in first-out, so only as many
 * pages are ever touched as the deepest backlog needed.
 */
#ifndef MUS_DB_TXNSTORE_H
#define MUS_DB_TXNSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/txn.h"

#define TXNSTORE_QUEUE_DEFAULT     65536
#define TXNSTORE_QUEUE_MAX         (1u << 22)   /* slots at most */
#define TXNSTORE_BATCH_DEFAULT     16384
#define TXNSTORE_FLUSH_MS_DEFAULT  200
#define TXNSTORE_RETAIN_CHECK_S    60           /* default interval of the retention pass */
#define TXNSTORE_REOPEN_MS         5000         /* default wait before reopening a failed file */
#define TXNSTORE_BUSY_RETRY_MS     5000         /* default: a locked file is retried this long */
#define TXNSTORE_SESSION_QUEUE     1024         /* pending session events */
#define TXNSTORE_HOST_MAX          256          /* bytes of the host column incl. NUL */
#define TXNSTORE_ERR_MAX           512

typedef struct txnstore txnstore_t;

/* Where the rows go: one SQLite file (the default) or a PostgreSQL
 * database several proxies share (db/txnstore_pg.c). */
enum txnstore_backend {
    TXNSTORE_SQLITE = 0,
    TXNSTORE_POSTGRESQL,
};
const char *txnstore_backend_str(enum txnstore_backend b);   /* "sqlite", "postgresql" */

typedef struct txnstore_config {
    enum txnstore_backend backend;
    const char *path;             /* SQLite: the file; created if missing */
    const char *conninfo;         /* PostgreSQL: libpq's connection string, no password in it */
    const char *password_file;    /* PostgreSQL: libpq's passfile; NULL or "" = libpq's default */
    const char *node;             /* PostgreSQL: this proxy's name in the rows; NULL or "" = */
                                  /* the host name */
    size_t queue_max;             /* 0 = TXNSTORE_QUEUE_DEFAULT */
    unsigned batch_max;           /* rows per transaction, 0 = TXNSTORE_BATCH_DEFAULT or a */
                                  /* quarter of queue_max if less */
    unsigned flush_ms;            /* a partial batch waits at most this, 0 = default */
    unsigned retain_days;         /* 0 = keep forever */
    uint64_t retain_mb;           /* 0 = no size cap (MiB of used pages) */
    bool keep_query;              /* store ?query; default false: the URL is cut at '?' */
    unsigned retain_check_s;      /* retention pass interval, 0 = TXNSTORE_RETAIN_CHECK_S */
    unsigned reopen_ms;           /* 0 = TXNSTORE_REOPEN_MS */
    unsigned busy_retry_ms;       /* 0 = TXNSTORE_BUSY_RETRY_MS */
} txnstore_config_t;

/* A remote session event from the identity map. A start has end_ms 0; the
 * end of the same session (same headend, vpn_addr and start_ms) fills in
 * end_ms and end_reason. Strings are copied (cut to their field sizes). */
typedef struct txnstore_session {
    const char *user;
    const char *domain;           /* NULL or "" if none */
    const char *vpn_addr;
    const char *public_addr;
    const char *type;             /* "user" or "machine" */
    const char *headend;
    int64_t start_ms;
    int64_t end_ms;               /* 0 = still open */
    const char *end_reason;       /* NULL or "" while open */
} txnstore_session_t;

typedef struct txnstore_stats {
    uint64_t queued;              /* accepted, not yet written (includes the batch in flight) */
    uint64_t submitted;           /* accepted by txnstore_submit */
    uint64_t written;             /* committed rows */
    uint64_t dropped;             /* refused: queue full */
    uint64_t lost;                /* accepted but not written (see last_error) */
    uint64_t batches;             /* committed transactions */
    uint64_t errors;              /* failed write attempts, opens and retention passes */
    uint64_t sessions_written, sessions_dropped, sessions_lost;
    uint64_t retention_deleted;   /* rows removed by age or size */
    uint64_t db_bytes;            /* the file plus its -wal */
    int64_t oldest_ms, newest_ms; /* time range of stored rows, 0 if none */
    bool db_open;                 /* the writer holds an open connection */
    int64_t last_error_ms;        /* wall clock of last_error, 0 if none */
    char last_error[TXNSTORE_ERR_MAX];
} txnstore_stats_t;

/* Opens or creates the file, WAL, migrates it, starts the writer. NULL with
 * a message (missing directory, read-only, not a database, a newer schema). */
txnstore_t *txnstore_open(const txnstore_config_t *cfg, char *err, size_t errlen);

/* Queues a copy of r. Never blocks on SQLite. false = queue full: dropped
 * and counted. Safe from any thread. */
bool txnstore_submit(txnstore_t *s, const txn_record_t *r);

/* Queues a session event (own small queue). false = full: counted. */
bool txnstore_session_event(txnstore_t *s, const txnstore_session_t *ev);

void txnstore_stats(txnstore_t *s, txnstore_stats_t *out);

/* Writes what is queued (a locked file is retried for busy_retry_ms, then
 * counted lost), stops and joins the writer, frees everything. NULL is ok. */
void txnstore_close(txnstore_t *s);

/* What the store writes, exposed for tests and for the UI's wording:
 * the host of a URL (absolute or CONNECT host:port), lowercase, without
 * port, userinfo or IPv6 brackets, into host (cap bytes); and the length of
 * url to keep (up to '?' or '#' unless keep_query). */
size_t txnstore_url_host(const char *url, char *host, size_t cap);
size_t txnstore_url_keep(const char *url, size_t len, bool keep_query);
/* The blocked column: the policy blocked or refused it, or an ACL denied it
 * (TCP_DENIED other than an authentication challenge). */
bool txnstore_blocked(const txn_record_t *r);

#endif
