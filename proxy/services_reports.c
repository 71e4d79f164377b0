/*
 * proxy/services_reports.c: the "reports" row of musproxy's service table
 * (services.h): the scheduled reports' thread (db/repsched.h), started
 * after the privilege drop so that the archive's files belong to run.user,
 * restarted when a reload changes the reports or store section. It is off
 * without a store or an archive directory, or with an empty schedule. The
 * thread reads the store's file through its own read-only connection and
 * never touches a worker.
 */
#include <stdio.h>
#include <string.h>

#include "../common/log.h"
#include "../db/repsched.h"
#include "services.h"

_Static_assert(CONFIG_REPORTS_DAILY == 1u << REPSCHED_DAILY &&
               CONFIG_REPORTS_WEEKLY == 1u << REPSCHED_WEEKLY &&
               CONFIG_REPORTS_MONTHLY == 1u << REPSCHED_MONTHLY,
               "the schedule bits are repsched's kinds");

static bool
reports_on(const config_t *cfg)
{
    return cfg->store.path[0] != '\0' && cfg->reports.archive[0] != '\0' &&
           cfg->reports.schedule != 0;
}

static int
reports_open(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    (void)arg;
    (void)err;
    (void)errlen;
    return reports_on(cfg) ? SERVICE_OK : SERVICE_SKIP;
}

static int
reports_start(void *arg, const config_t *cfg, char *err, size_t errlen)
{
    proxy_ctx_t *c = arg;
    char why[REPSCHED_ERR_MAX];

    const config_store_t *cs = &cfg->store;
    report_store_t store = {.postgresql = cs->backend == CONFIG_STORE_POSTGRESQL,
                            .path = cs->path, .conninfo = cs->conninfo,
                            .password_file = cs->password_file};

    c->reports = repsched_start(&store, cfg->reports.archive, cfg->reports.schedule, why,
                                sizeof(why));
    if (c->reports == NULL) {
        snprintf(err, errlen, "scheduled reports not started: %s", why);
        return SERVICE_ERROR;
    }
    log_info("scheduled reports (%s%s%s) into %s",
             cfg->reports.schedule & CONFIG_REPORTS_DAILY ? "daily " : "",
             cfg->reports.schedule & CONFIG_REPORTS_WEEKLY ? "weekly " : "",
             cfg->reports.schedule & CONFIG_REPORTS_MONTHLY ? "monthly" : "",
             cfg->reports.archive);
    return SERVICE_OK;
}

static int
reports_reconfigure(void *arg, cfgref_t *next, const config_t *running, char *err,
                    size_t errlen)
{
    proxy_ctx_t *c = arg;
    const config_t *n = next->cfg;

    if (c->reports != NULL && memcmp(&n->reports, &running->reports, sizeof(n->reports)) == 0 &&
        strcmp(n->store.path, running->store.path) == 0)
        return SERVICE_OK;
    repsched_stop(c->reports);
    c->reports = NULL;
    if (!reports_on(n))
        return SERVICE_SKIP;
    return reports_start(c, n, err, errlen) == SERVICE_OK ? SERVICE_STARTED : SERVICE_ERROR;
}

static void
reports_close(void *arg)
{
    proxy_ctx_t *c = arg;

    repsched_stop(c->reports);
    c->reports = NULL;
}

const service_ops_t proxy_svc_reports = {
    .name = "reports",
    .required = false,
    .open = reports_open,
    .start = reports_start,
    .reconfigure = reports_reconfigure,
    .close = reports_close,
};
