/*
 * db/txnstore_int.h: inside the transaction store only (txnstore.c, the
 * queue and the writer thread; txnstore_sqlite.c and txnstore_pg.c, the
 * backends that write a batch somewhere). It defines the store's struct and
 * the small backend interface the writer calls; callers outside db/ use
 * txnstore.h, which shows neither.
 *
 * A backend owns its connection(s) and whatever state it keeps in s->be_st.
 * The writer thread alone calls connect, write, retain and disconnect; the
 * owner thread calls init (before the writer starts), stop (before it is
 * joined) and fini (after). A backend reports failures with txnstore_error
 * and says its connection is gone with txnstore_conn_lost; the writer then
 * leaves the queue alone (it fills and submit counts drops) and calls
 * connect again after the backend's retry delay.
 */
#ifndef MUS_DB_TXNSTORE_INT_H
#define MUS_DB_TXNSTORE_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "txnrollup.h"
#include "txnstore.h"

#define TXNSTORE_SHORT_MAX     16       /* bytes of a session type incl. NUL */
#define TXNSTORE_BACKOFF_MIN_MS 1000    /* a backend with backoff: first retry */
#define TXNSTORE_BACKOFF_MAX_MS 30000   /* ... doubling up to this */

typedef struct sess_slot {
    char user[TXN_NAME_MAX], domain[TXN_NAME_MAX];
    char vpn_addr[TXN_ADDR_MAX], public_addr[TXN_ADDR_MAX];
    char type[TXNSTORE_SHORT_MAX], headend[TXN_LABEL_MAX], end_reason[TXN_LABEL_MAX];
    int64_t start_ms, end_ms;
} sess_slot_t;

/* What a backend's write did with a batch. */
enum txnstore_write {
    TXNSTORE_WRITE_OK = 0,            /* committed */
    TXNSTORE_WRITE_LOST,              /* not written, and it will not be (counted lost) */
    TXNSTORE_WRITE_RETRY,             /* not sent: the connection is gone (the backend called
                                       * txnstore_conn_lost); the writer sends it again after
                                       * the next connect, or counts it lost when closing */
};

typedef struct txnstore_ops {
    const char *name;                 /* "sqlite", "postgresql" */
    bool backoff;                     /* retry delay doubles from TXNSTORE_BACKOFF_MIN_MS up
                                       * to _MAX_MS; false: cfg.reopen_ms every time */
    /* owner thread: the backend's state and its first connection (sets
     * s->connected when it has one); -1 with err refuses the store (the
     * writer is not started) */
    int (*init)(txnstore_t *s, char *err, size_t errlen);
    /* writer: connect again after a failure; 0, or -1 with err */
    int (*connect)(txnstore_t *s, char *err, size_t errlen);
    /* writer: the batch's n records (s->batch) and ns session events
     * (s->sbatch) in one transaction with their rollups (the caller counts
     * the outcome; the backend set last_error when it is not OK) */
    enum txnstore_write (*write)(txnstore_t *s, size_t n, size_t ns);
    void (*retain)(txnstore_t *s);    /* writer: one retention pass */
    void (*stop)(txnstore_t *s);      /* owner, stopping set: before the writer is joined */
    void (*fini)(txnstore_t *s);      /* owner, after the join: closes, frees s->be_st */
    uint64_t (*bytes)(txnstore_t *s); /* any thread: the store's size, 0 if unknown */
} txnstore_ops_t;

extern const txnstore_ops_t txnstore_sqlite_backend;
extern const txnstore_ops_t txnstore_pg_backend;

struct txnstore {
    txnstore_config_t cfg;            /* defaults filled in; strings point at copies */
    char *path, *conninfo, *password_file, *node;
    const txnstore_ops_t *be;
    void *be_st;                      /* the backend's */

    pthread_mutex_t mu;               /* everything below up to "writer only" */
    pthread_cond_t wake;              /* the writer's: batch full, session, close */
    bool stopping;
    txn_record_t *slots;
    uint32_t *freestk;
    size_t nfree;
    uint32_t *fifo;
    size_t head, count;
    sess_slot_t sess[TXNSTORE_SESSION_QUEUE];
    size_t shead, scount;
    txnstore_stats_t st;              /* counters; db_bytes filled on read */

    /* writer only (after open) */
    pthread_t thread;
    bool started;
    bool connected;                   /* the backend holds a usable connection */
    unsigned conn_failures;           /* consecutive failed connects (backoff) */
    bool close_tried;                 /* closing: the last connect was tried */
    txnrollup_t *ru;                  /* the rollups' sums of the open transaction */
    int64_t reopen_at_ms;
    int64_t next_retain_ms;
    int64_t close_deadline_ms;        /* set when the writer first sees stopping */
    uint32_t *batch;
    sess_slot_t *sbatch;
};

int64_t txnstore_mono_ms(void);
int64_t txnstore_wall_ms(void);
void txnstore_sleep_ms(unsigned ms);

/* Records an error (takes mu): last_error, its time, errors + 1. */
void txnstore_error(txnstore_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writer: the connection is gone; connect is tried again after the
 * backend's retry delay (db_open false meanwhile). */
void txnstore_conn_lost(txnstore_t *s);

/* Writer: the connection is up (db_open true, backoff reset). */
void txnstore_conn_up(txnstore_t *s);

/* Sets the stats' stored time range (takes mu). */
void txnstore_set_range(txnstore_t *s, int64_t oldest_ms, int64_t newest_ms);

/* Adds the retention pass's deleted rows to the stats (takes mu). */
void txnstore_note_retired(txnstore_t *s, uint64_t deleted);

/* Whether the writer has been asked to stop (takes mu). */
bool txnstore_stopping(txnstore_t *s);

/* What a stored row of r is: its host (TXNSTORE_HOST_MAX), the URL's
 * length kept, and the rollups' view of it (pointing into r and host). */
size_t txnstore_row_view(const txnstore_t *s, const txn_record_t *r, char *host,
                         txnrollup_row_t *ru);

#endif
