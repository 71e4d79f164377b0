/*
 * proxy/service.h: the long-lived parts of the daemon as a table. Each part
 * (workers, the MUS feed, the store writer, WCCP, GRE, the control socket,
 * the admin UI) is a row of operations; the runner opens every row in
 * order (before privileges drop: sockets, devices, files), starts them in
 * order (threads, after the drop: capabilities are per thread), checks and
 * reconfigures each on a reload, and stops them in reverse order in two
 * passes (ask every row to stop, then wait for each and free it), so that
 * nothing is freed while a later row may still use it. A row's state is
 * kept here and reported in the status document.
 *
 * It knows nothing of what the rows are (proxy/services.c defines them)
 * and runs on one thread (the main thread); only service_status_json may
 * be called from another (it reads states atomically).
 */
#ifndef MUS_PROXY_SERVICE_H
#define MUS_PROXY_SERVICE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "worker.h"

#define SERVICE_MAX     16    /* rows in one table */
#define SERVICE_ERR_MAX 256   /* bytes of a row's last error */

enum service_state {
    SERVICE_NEW = 0,     /* not opened yet */
    SERVICE_OFF,         /* not configured: every later step skips it */
    SERVICE_OPEN,        /* opened, not started */
    SERVICE_RUNNING,     /* started */
    SERVICE_FAILED,      /* an optional row that could not open or start: musproxy runs without it */
    SERVICE_STOPPING,    /* asked to stop */
    SERVICE_STOPPED,     /* closed and freed */
};

const char *service_state_str(enum service_state s);

/* Results of open, start and reconfigure. */
#define SERVICE_OK      0     /* done (reconfigure: the state stays as it was) */
#define SERVICE_SKIP    1     /* not configured (open), or off now (reconfigure) */
#define SERVICE_STARTED 2     /* reconfigure: running now (restarted or turned on) */
#define SERVICE_ERROR  (-1)   /* err says why */

/*
 * One row. Every operation but name may be NULL (nothing to do at that
 * step); ctx is the table's context, shared by every row.
 */
typedef struct service_ops {
    const char *name;
    /* true: a row that cannot open or start stops musproxy from starting;
     * false: it is logged, marked failed, and the rest runs without it */
    bool required;
    /* before privileges drop; SERVICE_OK, SERVICE_SKIP or SERVICE_ERROR */
    int (*open)(void *ctx, const config_t *cfg, char *err, size_t errlen);
    /* after privileges drop: the row's threads; SERVICE_OK or SERVICE_ERROR */
    int (*start)(void *ctx, const config_t *cfg, char *err, size_t errlen);
    /* may refuse a reload before any row has changed: 0, or -1 with err */
    int (*check)(void *ctx, const config_t *next, const config_t *running, char *err,
                 size_t errlen);
    /* takes the new configuration (borrowed: cfgref_get to keep it); also
     * called for a row that is off or failed, which may start now. Returns
     * SERVICE_OK, SERVICE_STARTED, SERVICE_SKIP or SERVICE_ERROR (err says
     * why: the row is then failed, and musproxy runs on without it) */
    int (*reconfigure)(void *ctx, cfgref_t *next, const config_t *running, char *err,
                       size_t errlen);
    /* asks the row to stop, without waiting */
    void (*stop)(void *ctx);
    /* waits for the row to end and frees it (also after a failed start) */
    void (*close)(void *ctx);
} service_ops_t;

typedef struct service_table service_table_t;

/* rows: n (at most SERVICE_MAX) pointers that outlive the table. */
service_table_t *service_table_new(const service_ops_t *const *rows, size_t n, void *ctx);

/* Opens, then (after the caller's privilege drop) starts every row in
 * order. 0, or -1 with err naming the required row that failed; the rows
 * already opened are left for service_table_stop. */
int service_table_open(service_table_t *t, const config_t *cfg, char *err, size_t errlen);
int service_table_start(service_table_t *t, const config_t *cfg, char *err, size_t errlen);

/* Asks every open or running row whether it can take next (0), else -1
 * with err; then hands it to each of them in order. */
int service_table_check(service_table_t *t, const config_t *next, const config_t *running,
                        char *err, size_t errlen);
void service_table_reconfigure(service_table_t *t, cfgref_t *next, const config_t *running);

/* Stops every row in reverse order (stop each, then close each). Idempotent. */
void service_table_stop(service_table_t *t);
/* After service_table_stop; NULL allowed. */
void service_table_free(service_table_t *t);

/* [{"name":..., "state":..., "error":...}] (any thread) */
json_t *service_table_status_json(const service_table_t *t);

#endif
