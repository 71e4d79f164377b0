/*
 * proxy/service.c: the runner of the service table (service.h): order,
 * states, required versus optional rows, the two-pass stop. It does not
 * know what any row does.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "service.h"

typedef struct service_row {
    const service_ops_t *ops;
    atomic_int state;                 /* enum service_state */
    char error[SERVICE_ERR_MAX];      /* written before state becomes SERVICE_FAILED */
} service_row_t;

struct service_table {
    service_row_t rows[SERVICE_MAX];
    size_t n;
    void *ctx;
};

const char *
service_state_str(enum service_state s)
{
    switch (s) {
    case SERVICE_NEW: return "new";
    case SERVICE_OFF: return "off";
    case SERVICE_OPEN: return "open";
    case SERVICE_RUNNING: return "running";
    case SERVICE_FAILED: return "failed";
    case SERVICE_STOPPING: return "stopping";
    case SERVICE_STOPPED: return "stopped";
    }
    return "?";
}

service_table_t *
service_table_new(const service_ops_t *const *rows, size_t n, void *ctx)
{
    service_table_t *t;

    if (n > SERVICE_MAX)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        t->rows[i].ops = rows[i];
        atomic_init(&t->rows[i].state, SERVICE_NEW);
    }
    t->n = n;
    t->ctx = ctx;
    return t;
}

static enum service_state
row_state(const service_row_t *r)
{
    return (enum service_state)atomic_load(&r->state);
}

static void
row_set(service_row_t *r, enum service_state s)
{
    atomic_store(&r->state, (int)s);
}

/* A row's open or start failed: fatal for a required row, else logged. */
static int
row_failed(service_row_t *r, const char *step, const char *why, char *err, size_t errlen)
{
    snprintf(r->error, sizeof(r->error), "%s", why[0] ? why : "failed");
    if (r->ops->required) {
        snprintf(err, errlen, "%s", r->error);
        row_set(r, SERVICE_FAILED);
        return -1;
    }
    log_error("%s: cannot %s: %s (musproxy runs without it)", r->ops->name, step, r->error);
    row_set(r, SERVICE_FAILED);
    return 0;
}

int
service_table_open(service_table_t *t, const config_t *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->n; i++) {
        service_row_t *r = &t->rows[i];
        char why[SERVICE_ERR_MAX] = "";
        int rc = r->ops->open ? r->ops->open(t->ctx, cfg, why, sizeof(why)) : SERVICE_OK;

        if (rc == SERVICE_SKIP)
            row_set(r, SERVICE_OFF);
        else if (rc == SERVICE_OK)
            row_set(r, SERVICE_OPEN);
        else if (row_failed(r, "open", why, err, errlen) < 0)
            return -1;
    }
    return 0;
}

int
service_table_start(service_table_t *t, const config_t *cfg, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->n; i++) {
        service_row_t *r = &t->rows[i];
        char why[SERVICE_ERR_MAX] = "";
        int rc;

        if (row_state(r) != SERVICE_OPEN)
            continue;
        rc = r->ops->start ? r->ops->start(t->ctx, cfg, why, sizeof(why)) : SERVICE_OK;
        if (rc == SERVICE_OK)
            row_set(r, SERVICE_RUNNING);
        else if (rc == SERVICE_SKIP)
            row_set(r, SERVICE_OFF);
        else if (row_failed(r, "start", why, err, errlen) < 0)
            return -1;
    }
    return 0;
}

static bool
row_live(const service_row_t *r)
{
    enum service_state s = row_state(r);
    return s == SERVICE_OPEN || s == SERVICE_RUNNING;
}

int
service_table_check(service_table_t *t, const config_t *next, const config_t *running,
                    char *err, size_t errlen)
{
    for (size_t i = 0; i < t->n; i++) {
        const service_ops_t *o = t->rows[i].ops;
        /* every row is asked, live or not: a setting that only takes
         * effect at restart is judged the same whether the row runs */
        if (o->check != NULL && o->check(t->ctx, next, running, err, errlen) < 0)
            return -1;
    }
    return 0;
}

void
service_table_reconfigure(service_table_t *t, cfgref_t *next, const config_t *running)
{
    for (size_t i = 0; i < t->n; i++) {
        service_row_t *r = &t->rows[i];
        enum service_state s = row_state(r);
        char why[SERVICE_ERR_MAX] = "";
        int rc;

        /* a row that is off or failed is told too: it may start now, or say
         * what only a restart would change */
        if (r->ops->reconfigure == NULL || s == SERVICE_NEW || s == SERVICE_STOPPING ||
            s == SERVICE_STOPPED)
            continue;
        rc = r->ops->reconfigure(t->ctx, next, running, why, sizeof(why));
        if (rc == SERVICE_STARTED) {
            r->error[0] = '\0';
            row_set(r, SERVICE_RUNNING);
        } else if (rc == SERVICE_SKIP) {
            row_set(r, SERVICE_OFF);
        } else if (rc == SERVICE_ERROR) {
            snprintf(r->error, sizeof(r->error), "%s", why[0] ? why : "failed");
            log_error("%s: reload: %s (musproxy runs without it)", r->ops->name, r->error);
            row_set(r, SERVICE_FAILED);
        }
    }
}

void
service_table_stop(service_table_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = t->n; i-- > 0;) {
        service_row_t *r = &t->rows[i];
        if (row_live(r)) {
            if (r->ops->stop != NULL)
                r->ops->stop(t->ctx);
            row_set(r, SERVICE_STOPPING);
        }
    }
    for (size_t i = t->n; i-- > 0;) {
        service_row_t *r = &t->rows[i];
        enum service_state s = row_state(r);
        /* a failed row may hold part of what it opened (some workers) */
        if (s == SERVICE_STOPPING || s == SERVICE_FAILED) {
            if (r->ops->close != NULL)
                r->ops->close(t->ctx);
            row_set(r, SERVICE_STOPPED);
        }
    }
}

void
service_table_free(service_table_t *t)
{
    free(t);
}

json_t *
service_table_status_json(const service_table_t *t)
{
    json_t *a = json_array();

    for (size_t i = 0; t != NULL && a != NULL && i < t->n; i++) {
        const service_row_t *r = &t->rows[i];
        enum service_state s = row_state(r);
        json_t *o = json_pack("{s:s, s:s, s:b}", "name", r->ops->name, "state",
                              service_state_str(s), "required", r->ops->required);
        if (o != NULL && s == SERVICE_FAILED)
            json_object_set_new(o, "error", json_string(r->error));
        json_array_append_new(a, o);
    }
    return a;
}
