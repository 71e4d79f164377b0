/*
 * tests/unit/proxy/test_service.c: the service table's runner (proxy/service.c)
 * with rows that record what they were asked: open then start in table
 * order, stop then close in reverse, a not-configured row skipped by every
 * later step, an optional row that fails marked failed while the rest runs,
 * a required one that fails stopping the start (and what was opened still
 * closed), a reload refused by one row's check reaching no row, and the
 * states as the status document shows them.
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <stdio.h>
#include <string.h>

#include "../../../proxy/service.h"

typedef struct trace {
    char log[1024];
    const char *fail_open;    /* the row whose open fails */
    const char *fail_start;
    const char *skip;         /* the row that is not configured */
    const char *refuse;       /* the row whose check refuses */
    const char *reconf_start, *reconf_off, *reconf_fail;   /* what reconfigure answers */
} trace_t;

static trace_t T;

static void
rec(const char *what, const char *name)
{
    size_t n = strlen(T.log);
    snprintf(T.log + n, sizeof(T.log) - n, "%s%s:%s", n ? " " : "", what, name);
}

#define ROW(id, req)                                                                      \
    static int id##_open(void *c, const config_t *cfg, char *e, size_t l)                 \
    {                                                                                     \
        (void)c; (void)cfg;                                                               \
        rec("open", #id);                                                                 \
        if (T.skip && strcmp(T.skip, #id) == 0) return SERVICE_SKIP;                      \
        if (T.fail_open && strcmp(T.fail_open, #id) == 0) {                               \
            snprintf(e, l, "%s cannot open", #id);                                        \
            return SERVICE_ERROR;                                                         \
        }                                                                                 \
        return SERVICE_OK;                                                                \
    }                                                                                     \
    static int id##_start(void *c, const config_t *cfg, char *e, size_t l)                \
    {                                                                                     \
        (void)c; (void)cfg;                                                               \
        rec("start", #id);                                                                \
        if (T.fail_start && strcmp(T.fail_start, #id) == 0) {                             \
            snprintf(e, l, "%s cannot start", #id);                                       \
            return SERVICE_ERROR;                                                         \
        }                                                                                 \
        return SERVICE_OK;                                                                \
    }                                                                                     \
    static int id##_check(void *c, const config_t *n, const config_t *r, char *e, size_t l) \
    {                                                                                     \
        (void)c; (void)n; (void)r;                                                        \
        rec("check", #id);                                                                \
        if (T.refuse && strcmp(T.refuse, #id) == 0) {                                     \
            snprintf(e, l, "%s refuses", #id);                                            \
            return -1;                                                                    \
        }                                                                                 \
        return 0;                                                                         \
    }                                                                                     \
    static int id##_reconf(void *c, cfgref_t *n, const config_t *r, char *e, size_t l)     \
    {                                                                                     \
        (void)c; (void)n; (void)r;                                                        \
        rec("reconf", #id);                                                               \
        if (T.reconf_start && strcmp(T.reconf_start, #id) == 0) return SERVICE_STARTED;   \
        if (T.reconf_off && strcmp(T.reconf_off, #id) == 0) return SERVICE_SKIP;          \
        if (T.reconf_fail && strcmp(T.reconf_fail, #id) == 0) {                           \
            snprintf(e, l, "%s cannot restart", #id);                                     \
            return SERVICE_ERROR;                                                         \
        }                                                                                 \
        return SERVICE_OK;                                                                \
    }                                                                                     \
    static void id##_stop(void *c) { (void)c; rec("stop", #id); }                         \
    static void id##_close(void *c) { (void)c; rec("close", #id); }                       \
    static const service_ops_t id = {#id, req, id##_open, id##_start, id##_check,         \
                                     id##_reconf, id##_stop, id##_close}

ROW(a, true);
ROW(b, false);
ROW(c, true);

static const service_ops_t *const rows[] = {&a, &b, &c};

static void
reset(void)
{
    memset(&T, 0, sizeof(T));
}

static const char *
state_of(service_table_t *t, const char *name)
{
    static char out[64];
    json_t *st = service_table_status_json(t);
    size_t i;
    json_t *v;

    out[0] = '\0';
    json_array_foreach(st, i, v) {
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            snprintf(out, sizeof(out), "%s", json_string_value(json_object_get(v, "state")));
    }
    json_decref(st);
    return out;
}

Test(service, order_open_start_then_reverse_stop_close)
{
    char err[SERVICE_ERR_MAX] = "";
    service_table_t *t;

    reset();
    t = service_table_new(rows, 3, NULL);
    cr_assert_not_null(t);
    cr_assert_str_eq(state_of(t, "a"), "new");
    cr_assert_eq(service_table_open(t, NULL, err, sizeof(err)), 0);
    cr_assert_str_eq(state_of(t, "b"), "open");
    cr_assert_eq(service_table_start(t, NULL, err, sizeof(err)), 0);
    cr_assert_str_eq(state_of(t, "c"), "running");
    service_table_stop(t);
    cr_assert_str_eq(T.log, "open:a open:b open:c start:a start:b start:c "
                            "stop:c stop:b stop:a close:c close:b close:a");
    cr_assert_str_eq(state_of(t, "a"), "stopped");
    service_table_stop(t);   /* a second stop does nothing */
    cr_assert_str_eq(T.log, "open:a open:b open:c start:a start:b start:c "
                            "stop:c stop:b stop:a close:c close:b close:a");
    service_table_free(t);
}

Test(service, not_configured_row_is_skipped_by_every_step)
{
    char err[SERVICE_ERR_MAX] = "";
    service_table_t *t;

    reset();
    T.skip = "b";
    t = service_table_new(rows, 3, NULL);
    cr_assert_eq(service_table_open(t, NULL, err, sizeof(err)), 0);
    cr_assert_eq(service_table_start(t, NULL, err, sizeof(err)), 0);
    cr_assert_str_eq(state_of(t, "b"), "off");
    service_table_stop(t);
    cr_assert_str_eq(T.log, "open:a open:b open:c start:a start:c "
                            "stop:c stop:a close:c close:a");
    service_table_free(t);
}

Test(service, optional_row_that_fails_is_marked_and_the_rest_runs)
{
    char err[SERVICE_ERR_MAX] = "";
    service_table_t *t;
    json_t *st, *row;

    reset();
    T.fail_start = "b";
    t = service_table_new(rows, 3, NULL);
    cr_assert_eq(service_table_open(t, NULL, err, sizeof(err)), 0);
    cr_assert_eq(service_table_start(t, NULL, err, sizeof(err)), 0);
    cr_assert_str_eq(err, "");
    cr_assert_str_eq(state_of(t, "b"), "failed");
    cr_assert_str_eq(state_of(t, "c"), "running");
    st = service_table_status_json(t);
    row = json_array_get(st, 1);
    cr_assert_str_eq(json_string_value(json_object_get(row, "error")), "b cannot start");
    cr_assert(json_is_false(json_object_get(row, "required")));
    cr_assert_null(json_object_get(json_array_get(st, 0), "error"));
    json_decref(st);
    service_table_stop(t);
    /* the failed row is not asked to stop, but closed: it may hold part of what it opened */
    cr_assert_str_eq(T.log, "open:a open:b open:c start:a start:b start:c "
                            "stop:c stop:a close:c close:b close:a");
    service_table_free(t);
}

Test(service, required_row_that_fails_stops_the_start)
{
    char err[SERVICE_ERR_MAX] = "";
    service_table_t *t;

    reset();
    T.fail_open = "c";
    t = service_table_new(rows, 3, NULL);
    cr_assert_eq(service_table_open(t, NULL, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "c cannot open");
    service_table_stop(t);
    /* a and b opened, never started: asked to stop and closed; c closed (partial) */
    cr_assert_str_eq(T.log, "open:a open:b open:c stop:b stop:a close:c close:b close:a");
    service_table_free(t);

    reset();
    T.fail_start = "a";
    t = service_table_new(rows, 3, NULL);
    cr_assert_eq(service_table_open(t, NULL, err, sizeof(err)), 0);
    cr_assert_eq(service_table_start(t, NULL, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "a cannot start");
    service_table_stop(t);
    cr_assert_str_eq(T.log, "open:a open:b open:c start:a stop:c stop:b close:c close:b close:a");
    service_table_free(t);
}

Test(service, refused_reload_reaches_no_row)
{
    char err[SERVICE_ERR_MAX] = "";
    service_table_t *t;

    reset();
    t = service_table_new(rows, 3, NULL);
    cr_assert_eq(service_table_open(t, NULL, err, sizeof(err)), 0);
    cr_assert_eq(service_table_start(t, NULL, err, sizeof(err)), 0);
    T.log[0] = '\0';
    T.refuse = "b";
    cr_assert_eq(service_table_check(t, NULL, NULL, err, sizeof(err)), -1);
    cr_assert_str_eq(err, "b refuses");
    cr_assert_str_eq(T.log, "check:a check:b");
    T.log[0] = '\0';
    T.refuse = NULL;
    cr_assert_eq(service_table_check(t, NULL, NULL, err, sizeof(err)), 0);
    service_table_reconfigure(t, NULL, NULL);
    cr_assert_str_eq(T.log, "check:a check:b check:c reconf:a reconf:b reconf:c");
    service_table_stop(t);
    service_table_free(t);
}

/* A reload can turn a row on, off, or fail it; the states follow. */
Test(service, reconfigure_changes_states)
{
    char err[SERVICE_ERR_MAX] = "";
    service_table_t *t;
    json_t *st;

    reset();
    T.skip = "b";
    t = service_table_new(rows, 3, NULL);
    cr_assert_eq(service_table_open(t, NULL, err, sizeof(err)), 0);
    cr_assert_eq(service_table_start(t, NULL, err, sizeof(err)), 0);
    cr_assert_str_eq(state_of(t, "b"), "off");
    T.reconf_start = "b";
    T.reconf_off = "c";
    T.reconf_fail = "a";
    service_table_reconfigure(t, NULL, NULL);
    cr_assert_str_eq(state_of(t, "b"), "running");   /* an off row asked too, and on now */
    cr_assert_str_eq(state_of(t, "c"), "off");
    cr_assert_str_eq(state_of(t, "a"), "failed");
    st = service_table_status_json(t);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(st, 0), "error")),
                     "a cannot restart");
    json_decref(st);
    T.log[0] = '\0';
    T.reconf_fail = NULL;
    T.reconf_start = "a";
    service_table_reconfigure(t, NULL, NULL);
    cr_assert_str_eq(state_of(t, "a"), "running");   /* failed, then back */
    service_table_stop(t);
    /* b runs now and is stopped; c is off and is not */
    cr_assert_str_eq(T.log, "reconf:a reconf:b reconf:c stop:b stop:a close:b close:a");
    service_table_free(t);
}

Test(service, too_many_rows_refused)
{
    const service_ops_t *many[SERVICE_MAX + 1];

    for (size_t i = 0; i <= SERVICE_MAX; i++)
        many[i] = &a;
    cr_assert_null(service_table_new(many, SERVICE_MAX + 1, NULL));
    cr_assert_str_eq(service_state_str(SERVICE_FAILED), "failed");
}
