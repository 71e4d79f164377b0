/*
 * db/txnstore.c: the transaction store's queue and writer thread (see
 * txnstore.h for threads and ownership). The writer hands batches to a
 * backend (txnstore_int.h): SQLite, the default (txnstore_sqlite.c), or
 * PostgreSQL for a group of proxies (txnstore_pg.c); the schema is in
 * txnschema.c, the rollups' sums in txnrollup.c.
 *
 * Queue: `slots` holds queue_max records; `freestk` is a stack of free slot
 * numbers and `fifo` a ring of filled ones in submit order. submit pops a
 * free slot, copies the record in (its URL only up to the NUL) and pushes
 * its number on the fifo, all under `mu`. The writer takes up to batch_max numbers off the fifo, writes
 * those slots without the lock (no submitter touches a slot it does not
 * own), then pushes them back on the free stack. A stack reuses the slots
 * just freed, so the pages touched grow with the deepest backlog only.
 *
 * Writer: wakes when a batch is full, a session event or close arrives, or
 * every flush_ms, and gives the batch to the backend, which writes it in one
 * transaction with its rollups or loses it (counted in `lost`). While the
 * backend has no connection the queue is left alone: it fills and submit
 * counts drops. Connects are retried every reopen_ms (SQLite) or with a
 * doubling delay from TXNSTORE_BACKOFF_MIN_MS to _MAX_MS (PostgreSQL); a
 * batch the backend could not send for want of a connection is kept and
 * sent after the next connect. Retention runs in the writer too, every
 * retain_check_s.
 */
#include "txnstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../common/threadcaps.h"
#include "txnrollup.h"
#include "txnstore_int.h"

#define TXNSTORE_SESSION_BATCH   64       /* session events per write */
#define TXNSTORE_ROLLUP_ROWS     16384    /* rows the rollups sum between two upserts at most */

/* ---- small helpers ---- */

static int64_t
clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t txnstore_mono_ms(void) { return clock_ms(CLOCK_MONOTONIC); }
int64_t txnstore_wall_ms(void) { return clock_ms(CLOCK_REALTIME); }

void
txnstore_sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

void
txnstore_error(txnstore_t *s, const char *fmt, ...)
{
    va_list ap;

    pthread_mutex_lock(&s->mu);
    va_start(ap, fmt);
    vsnprintf(s->st.last_error, sizeof(s->st.last_error), fmt, ap);
    va_end(ap);
    s->st.last_error_ms = txnstore_wall_ms();
    s->st.errors++;
    pthread_mutex_unlock(&s->mu);
}

static char
lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

size_t
txnstore_url_host(const char *url, char *host, size_t cap)
{
    const char *p = url ? url : "", *end, *at, *h, *he;
    size_t n = 0;

    if (cap == 0)
        return 0;
    for (const char *q = p; *q && *q != '/' && *q != '?' && *q != '#'; q++)
        if (q[0] == ':' && q[1] == '/' && q[2] == '/') {      /* scheme:// */
            p = q + 3;
            break;
        }
    if (*p == '/') {                                          /* origin-form: no host */
        host[0] = '\0';
        return 0;
    }
    end = p + strcspn(p, "/?#");
    at = NULL;
    for (const char *q = p; q < end; q++)
        if (*q == '@')
            at = q;
    h = at ? at + 1 : p;
    if (*h == '[') {
        h++;
        he = memchr(h, ']', (size_t)(end - h));
        if (he == NULL)
            he = end;
    } else {
        he = memchr(h, ':', (size_t)(end - h));
        if (he == NULL)
            he = end;
    }
    while (h < he && n < cap - 1)
        host[n++] = lower(*h++);
    host[n] = '\0';
    return n;
}

size_t
txnstore_url_keep(const char *url, size_t len, bool keep_query)
{
    if (keep_query || url == NULL)
        return url ? len : 0;
    for (size_t i = 0; i < len; i++)
        if (url[i] == '?' || url[i] == '#' || url[i] == '\0')
            return i;
    return len;
}

bool
txnstore_blocked(const txn_record_t *r)
{
    if (r->decision == TXN_DECISION_BLOCK || r->decision == TXN_DECISION_REFUSE_UNIDENTIFIED)
        return true;
    return r->result == TXN_TCP_DENIED && r->decision != TXN_DECISION_AUTH;
}

size_t
txnstore_row_view(const txnstore_t *s, const txn_record_t *r, char *host, txnrollup_row_t *ru)
{
    txnstore_url_host(r->url, host, TXNSTORE_HOST_MAX);
    *ru = (txnrollup_row_t){r->end_ms, (int64_t)r->bytes_out, r->remote, txnstore_blocked(r),
                            r->user, host, r->category, r->access_policy, r->rule};
    return txnstore_url_keep(r->url, strnlen(r->url, sizeof(r->url)), s->cfg.keep_query);
}

bool
txnstore_stopping(txnstore_t *s)
{
    bool v;

    pthread_mutex_lock(&s->mu);
    v = s->stopping;
    pthread_mutex_unlock(&s->mu);
    return v;
}

void
txnstore_set_range(txnstore_t *s, int64_t oldest_ms, int64_t newest_ms)
{
    pthread_mutex_lock(&s->mu);
    s->st.oldest_ms = oldest_ms;
    s->st.newest_ms = newest_ms;
    pthread_mutex_unlock(&s->mu);
}

void
txnstore_note_retired(txnstore_t *s, uint64_t deleted)
{
    pthread_mutex_lock(&s->mu);
    s->st.retention_deleted += deleted;
    pthread_mutex_unlock(&s->mu);
}

/* ---- the writer thread ---- */

/* The time range of the batch's n records (writer, without the lock). */
static void
batch_range(const txnstore_t *s, size_t n, int64_t *lo, int64_t *hi)
{
    *lo = *hi = 0;
    for (size_t i = 0; i < n; i++) {
        int64_t t = s->slots[s->batch[i]].end_ms;
        if (i == 0 || t < *lo)
            *lo = t;
        if (i == 0 || t > *hi)
            *hi = t;
    }
}

/* Under mu: the stats' stored range grows by [lo, hi] of n records. */
static void
note_written(txnstore_t *s, size_t n, int64_t lo, int64_t hi)
{
    if (n > 0 && (s->st.oldest_ms == 0 || lo < s->st.oldest_ms))
        s->st.oldest_ms = lo;
    if (n > 0 && hi > s->st.newest_ms)
        s->st.newest_ms = hi;
}

/* Under mu: takes up to max slot numbers off the fifo into the batch (two
 * copies at most: the ring may wrap). */
static size_t
take_batch(txnstore_t *s, size_t max)
{
    size_t n = s->count < max ? s->count : max;
    size_t first = s->cfg.queue_max - s->head < n ? s->cfg.queue_max - s->head : n;

    memcpy(s->batch, s->fifo + s->head, first * sizeof(*s->batch));
    memcpy(s->batch + first, s->fifo, (n - first) * sizeof(*s->batch));
    s->head = (s->head + n) % s->cfg.queue_max;
    s->count -= n;
    return n;
}

static void
wait_ms(txnstore_t *s, int64_t ms)
{
    struct timespec ts;

    if (ms < 1)
        ms = 1;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&s->wake, &s->mu, &ts);
}

/* The delay before the next connect after `failures` failed ones. */
static int64_t
retry_delay_ms(const txnstore_t *s)
{
    int64_t d = TXNSTORE_BACKOFF_MIN_MS;

    if (!s->be->backoff)
        return s->cfg.reopen_ms;
    for (unsigned i = 1; i < s->conn_failures && d < TXNSTORE_BACKOFF_MAX_MS; i++)
        d *= 2;
    return d < TXNSTORE_BACKOFF_MAX_MS ? d : TXNSTORE_BACKOFF_MAX_MS;
}

void
txnstore_conn_lost(txnstore_t *s)
{
    s->connected = false;
    s->conn_failures++;
    s->reopen_at_ms = txnstore_mono_ms() + retry_delay_ms(s);
    pthread_mutex_lock(&s->mu);
    s->st.db_open = false;
    pthread_mutex_unlock(&s->mu);
}

void
txnstore_conn_up(txnstore_t *s)
{
    s->connected = true;
    s->conn_failures = 0;
    pthread_mutex_lock(&s->mu);
    s->st.db_open = true;
    pthread_mutex_unlock(&s->mu);
}

/* Tries to connect again after a failure (writer thread). */
static void
reopen(txnstore_t *s)
{
    char err[TXNSTORE_ERR_MAX];

    if (s->be->connect(s, err, sizeof(err)) == 0) {
        txnstore_conn_up(s);
        return;
    }
    txnstore_conn_lost(s);
    txnstore_error(s, "%s; will retry in %lld ms", err,
                   (long long)(s->reopen_at_ms - txnstore_mono_ms()));
}

/* The loop: while the connection is down after an error the queue is left
 * alone (it fills and submit drops, counted) until the next connect
 * attempt; a batch the backend could not send for want of a connection
 * (TXNSTORE_WRITE_RETRY) is kept and sent again after it. On close one last
 * attempt is made and what still cannot be written is lost. */
static void *
writer_main(void *arg)
{
    txnstore_t *s = arg;
    size_t n = 0, ns = 0;                  /* the batch taken, kept while it is retried */

    /* writes the store only; may start before the privilege drop */
    (void)threadcaps_drop_unless_root();
    for (;;) {
        int64_t lo, hi;
        enum txnstore_write rc;
        bool stopping, held = n + ns > 0;

        stopping = txnstore_stopping(s);
        if (!s->connected && (stopping ? !s->close_tried : txnstore_mono_ms() >= s->reopen_at_ms)) {
            reopen(s);                     /* closing: one last attempt, not one per batch */
            s->close_tried = stopping;
        }

        pthread_mutex_lock(&s->mu);
        if (!s->stopping && !s->connected)
            wait_ms(s, s->reopen_at_ms - txnstore_mono_ms());
        else if (!held && !s->stopping && s->count < s->cfg.batch_max && s->scount == 0)
            wait_ms(s, s->cfg.flush_ms);
        if (!held && (s->connected || s->stopping)) {
            n = take_batch(s, s->cfg.batch_max);
            while (ns < TXNSTORE_SESSION_BATCH && s->scount > 0) {
                s->sbatch[ns++] = s->sess[s->shead];
                s->shead = (s->shead + 1) % TXNSTORE_SESSION_QUEUE;
                s->scount--;
            }
        }
        stopping = s->stopping;
        if (n == 0 && ns == 0 && stopping) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        pthread_mutex_unlock(&s->mu);
        if (!s->connected && !stopping)
            continue;                      /* wait for the connection, the batch held */

        if (n == 0 && ns == 0)
            rc = TXNSTORE_WRITE_OK;
        else if (!s->connected)
            rc = TXNSTORE_WRITE_LOST;      /* closing, and the last connect failed */
        else
            rc = s->be->write(s, n, ns);
        if (rc == TXNSTORE_WRITE_RETRY && !stopping)
            continue;                      /* the backend called txnstore_conn_lost */
        batch_range(s, n, &lo, &hi);

        pthread_mutex_lock(&s->mu);
        if (rc == TXNSTORE_WRITE_OK) {
            s->st.written += n;
            s->st.sessions_written += ns;
            if (n + ns > 0)
                s->st.batches++;
            note_written(s, n, lo, hi);
        } else {
            s->st.lost += n;
            s->st.sessions_lost += ns;
        }
        memcpy(s->freestk + s->nfree, s->batch, n * sizeof(*s->batch));
        s->nfree += n;
        s->st.queued -= n;
        pthread_mutex_unlock(&s->mu);
        n = ns = 0;

        if (s->connected && txnstore_mono_ms() >= s->next_retain_ms) {
            s->be->retain(s);
            s->next_retain_ms = txnstore_mono_ms() + (int64_t)s->cfg.retain_check_s * 1000;
        }
    }
    return NULL;
}

/* ---- the public side ---- */

/* The queue's slots: anonymous memory mapped directly, so pages no record
 * ever used are never touched, whatever the allocator does (calloc under
 * MALLOC_PERTURB_ writes every byte). NULL if it cannot be mapped. */
static txn_record_t *
slots_map(size_t n)
{
    void *p = mmap(NULL, n * sizeof(txn_record_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static void
slots_unmap(txn_record_t *slots, size_t n)
{
    if (slots != NULL)
        munmap(slots, n * sizeof(txn_record_t));
}

/* A copy of a config string, "" for NULL; false when out of memory. */
static bool
dup_str(char **dst, const char *v)
{
    *dst = strdup(v ? v : "");
    return *dst != NULL;
}

const char *
txnstore_backend_str(enum txnstore_backend b)
{
    return b == TXNSTORE_POSTGRESQL ? "postgresql" : "sqlite";
}

txnstore_t *
txnstore_open(const txnstore_config_t *cfg, char *err, size_t errlen)
{
    txnstore_t *s;
    pthread_condattr_t ca;
    bool pg = cfg != NULL && cfg->backend == TXNSTORE_POSTGRESQL;

    if (cfg == NULL || (!pg && (cfg->path == NULL || cfg->path[0] == '\0'))) {
        snprintf(err, errlen, "transaction store: no path");
        return NULL;
    }
    if (pg && (cfg->conninfo == NULL || cfg->conninfo[0] == '\0')) {
        snprintf(err, errlen, "transaction store: postgresql without a conninfo");
        return NULL;
    }
    if (cfg->queue_max > TXNSTORE_QUEUE_MAX) {
        snprintf(err, errlen, "transaction store: queue_max %zu is over %u", cfg->queue_max,
                 TXNSTORE_QUEUE_MAX);
        return NULL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "transaction store: out of memory");
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    s->be = pg ? &txnstore_pg_backend : &txnstore_sqlite_backend;
    s->cfg = *cfg;
    if (s->cfg.queue_max == 0)
        s->cfg.queue_max = TXNSTORE_QUEUE_DEFAULT;
    if (s->cfg.batch_max == 0) {
        /* at most about a quarter of the queue, so that submits find free
         * slots while a batch is being written */
        size_t quarter = s->cfg.queue_max / 4 + 1;
        s->cfg.batch_max = quarter < TXNSTORE_BATCH_DEFAULT ? (unsigned)quarter
                                                            : TXNSTORE_BATCH_DEFAULT;
    }
    if (s->cfg.flush_ms == 0)
        s->cfg.flush_ms = TXNSTORE_FLUSH_MS_DEFAULT;
    if (s->cfg.retain_check_s == 0)
        s->cfg.retain_check_s = TXNSTORE_RETAIN_CHECK_S;
    if (s->cfg.reopen_ms == 0)
        s->cfg.reopen_ms = TXNSTORE_REOPEN_MS;
    if (s->cfg.busy_retry_ms == 0)
        s->cfg.busy_retry_ms = TXNSTORE_BUSY_RETRY_MS;
    if (s->cfg.batch_max > s->cfg.queue_max)
        s->cfg.batch_max = (unsigned)s->cfg.queue_max;
    s->slots = slots_map(s->cfg.queue_max);
    s->freestk = malloc(s->cfg.queue_max * sizeof(*s->freestk));
    s->fifo = malloc(s->cfg.queue_max * sizeof(*s->fifo));
    s->batch = malloc(s->cfg.batch_max * sizeof(*s->batch));
    s->sbatch = malloc(TXNSTORE_SESSION_BATCH * sizeof(*s->sbatch));
    s->ru = txnrollup_new(s->cfg.batch_max < TXNSTORE_ROLLUP_ROWS ? s->cfg.batch_max
                                                                  : TXNSTORE_ROLLUP_ROWS);
    if (!dup_str(&s->path, cfg->path) || !dup_str(&s->conninfo, cfg->conninfo) ||
        !dup_str(&s->password_file, cfg->password_file) || !dup_str(&s->node, cfg->node) ||
        !s->slots || !s->freestk || !s->fifo || !s->batch || !s->sbatch || !s->ru)
        goto oom;
    s->cfg.path = s->path;
    s->cfg.conninfo = s->conninfo;
    s->cfg.password_file = s->password_file;
    s->cfg.node = s->node;
    for (size_t i = 0; i < s->cfg.queue_max; i++)        /* slot 0 on top */
        s->freestk[i] = (uint32_t)(s->cfg.queue_max - 1 - i);
    s->nfree = s->cfg.queue_max;
    if (s->be->init(s, err, errlen) < 0)
        goto fail;
    if (s->connected)
        txnstore_conn_up(s);
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        snprintf(err, errlen, "%s: cannot start the writer thread: %s",
                 pg ? "postgresql" : s->path, strerror(errno));
        goto fail;
    }
    s->started = true;
    pthread_setname_np(s->thread, "mp-store");
    return s;
oom:
    snprintf(err, errlen, "transaction store: out of memory");
fail:
    txnstore_close(s);
    return NULL;
}

/* *r into a slot, the URL only up to its NUL: a typical record is some
 * 1.2 KiB of its 5 KiB, and the slot's untouched pages stay untouched. */
static void
copy_record(txn_record_t *dst, const txn_record_t *r)
{
    size_t ulen = strnlen(r->url, sizeof(r->url) - 1);
    size_t tail = offsetof(txn_record_t, url_len);

    memcpy(dst, r, offsetof(txn_record_t, url));
    memcpy(dst->url, r->url, ulen);
    dst->url[ulen] = '\0';
    memcpy((char *)dst + tail, (const char *)r + tail, sizeof(*r) - tail);
}

bool
txnstore_submit(txnstore_t *s, const txn_record_t *r)
{
    uint32_t slot;
    bool full_batch;

    pthread_mutex_lock(&s->mu);
    if (s->nfree == 0 || s->stopping) {
        s->st.dropped++;
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    slot = s->freestk[--s->nfree];
    copy_record(&s->slots[slot], r);
    s->fifo[(s->head + s->count) % s->cfg.queue_max] = slot;
    s->count++;
    s->st.queued++;
    s->st.submitted++;
    full_batch = s->count == s->cfg.batch_max;
    pthread_mutex_unlock(&s->mu);
    if (full_batch)
        pthread_cond_signal(&s->wake);
    return true;
}

bool
txnstore_session_event(txnstore_t *s, const txnstore_session_t *ev)
{
    sess_slot_t *e;

    pthread_mutex_lock(&s->mu);
    if (s->scount == TXNSTORE_SESSION_QUEUE || s->stopping) {
        s->st.sessions_dropped++;
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    e = &s->sess[(s->shead + s->scount) % TXNSTORE_SESSION_QUEUE];
    txn_copy_str(e->user, sizeof(e->user), ev->user);
    txn_copy_str(e->domain, sizeof(e->domain), ev->domain);
    txn_copy_str(e->vpn_addr, sizeof(e->vpn_addr), ev->vpn_addr);
    txn_copy_str(e->public_addr, sizeof(e->public_addr), ev->public_addr);
    txn_copy_str(e->type, sizeof(e->type), ev->type);
    txn_copy_str(e->headend, sizeof(e->headend), ev->headend);
    txn_copy_str(e->end_reason, sizeof(e->end_reason), ev->end_reason);
    e->start_ms = ev->start_ms;
    e->end_ms = ev->end_ms;
    s->scount++;
    pthread_mutex_unlock(&s->mu);
    pthread_cond_signal(&s->wake);
    return true;
}

void
txnstore_stats(txnstore_t *s, txnstore_stats_t *out)
{
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
    if (s->be->bytes != NULL)
        out->db_bytes = s->be->bytes(s);
}

void
txnstore_close(txnstore_t *s)
{
    if (s == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    s->stopping = true;
    pthread_mutex_unlock(&s->mu);
    s->be->stop(s);
    if (s->started) {
        pthread_cond_signal(&s->wake);
        pthread_join(s->thread, NULL);
    }
    s->be->fini(s);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->wake);
    slots_unmap(s->slots, s->cfg.queue_max);
    free(s->freestk);
    free(s->fifo);
    free(s->batch);
    free(s->sbatch);
    txnrollup_free(s->ru);
    free(s->path);
    free(s->conninfo);
    free(s->password_file);
    free(s->node);
    free(s);
}
