/*
 * tests/unit/db/test_report.c: the report queries (db/report.c) over a store
 * filled by several submitting threads through the real writer: every
 * report is compared, JSON for JSON, with what the test computes from the
 * records it submitted (per range and location), plus web tracking filters
 * and paging, remote sessions, row limits, reading while the writer writes,
 * and the errors for a missing or empty file; the reports of part 2 (web
 * sites, URL categories, blocked, the hourly timeline, user location) the
 * same way; and every table of every report document against the catalog
 * its CSV is written from.
 */
#include <criterion/criterion.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../db/report.h"
#include "../../../db/reportdoc.h"
#include "../../../db/txnstore.h"
#include "txntest.h"

#define ERR_LEN  1024
#define N        6000
#define THREADS  4
#define T0       1700000000000LL
#define STEP_MS  1000

TestSuite(report, .init = txntest_setup, .fini = txntest_teardown, .timeout = 60);

static const char *const users[] = {"ann", "ben", "cid", "dora", "eve", "finn"};
#define N_USERS 6
#define N_REMOTE_USERS 3              /* ann, ben, cid come over the VPN */
static const char *const hosts[] = {"arts.example", "news.example", "www.shop.example",
                                    "cdn.example", "games.example"};
#define N_HOSTS 5
static const char *const cats[] = {"arts", "news", "shopping", ""};
#define N_CATS 4

/* The generated traffic: record i is fully determined by i. */
typedef struct gen {
    int user;                         /* index into users, -1 = unidentified */
    int host, cat;
    bool remote, blocked;
    long long bytes, time;
    const char *policy, *rule;        /* a block without a policy is an ACL denial */
} gen_t;

static gen_t
gen(unsigned i)
{
    gen_t g;

    g.user = i % 13 == 0 ? -1 : (int)(i % N_USERS);
    g.host = (int)((i / 3) % N_HOSTS);
    g.cat = (int)((i * 7) % N_CATS);
    g.remote = g.user >= 0 && g.user < N_REMOTE_USERS;
    g.blocked = i % 5 == 0 || (g.host == 4 && i % 2 == 0);
    g.bytes = (long long)((i * 37) % 1000);
    g.time = T0 + (long long)i * STEP_MS;
    g.policy = g.blocked && i % 7 == 0 ? "" : g.remote ? "vpn" : "office";
    g.rule = !g.blocked || g.policy[0] == '\0' ? "" : g.host == 4 ? "no-games" : "no-arts";
    return g;
}

static void
gen_record(txn_record_t *r, unsigned i)
{
    gen_t g = gen(i);

    txntest_record(r, g.time, g.user < 0 ? "" : users[g.user], hosts[g.host], cats[g.cat],
                   g.remote, g.blocked ? TXN_DECISION_BLOCK : TXN_DECISION_ALLOW,
                   (uint64_t)g.bytes, i);
    txn_copy_str(r->access_policy, sizeof(r->access_policy), g.policy);
    txn_copy_str(r->rule, sizeof(r->rule), g.rule);
}

typedef struct filler {
    txnstore_t *s;
    unsigned k;
} filler_t;

static void *
fill_thread(void *arg)
{
    filler_t *f = arg;
    txn_record_t r;

    for (unsigned i = f->k; i < N; i += THREADS) {
        gen_record(&r, i);
        cr_assert(txnstore_submit(f->s, &r));
    }
    return NULL;
}

static const char *
fill(void)
{
    static txnstore_config_t cfg;
    char err[ERR_LEN] = "";
    txnstore_t *s;
    pthread_t th[THREADS];
    filler_t f[THREADS];

    cfg = (txnstore_config_t){.path = txntest_path("r.db"), .flush_ms = 20};
    s = txnstore_open(&cfg, err, sizeof(err));
    cr_assert_not_null(s, "%s", err);
    for (unsigned k = 0; k < THREADS; k++) {
        f[k] = (filler_t){s, k};
        pthread_create(&th[k], NULL, fill_thread, &f[k]);
    }
    for (unsigned k = 0; k < THREADS; k++)
        pthread_join(th[k], NULL);
    txnstore_close(s);
    return cfg.path;
}

static report_t *
open_report(const char *path)
{
    char err[ERR_LEN] = "";
    report_t *r = report_open(path, err, sizeof(err));

    cr_assert_not_null(r, "report_open: %s", err);
    return r;
}

static bool
in_range(const gen_t *g, const report_range_t *q)
{
    if (g->time < q->from_ms || g->time >= q->to_ms)
        return false;
    return q->loc == REPORT_LOC_ALL || (q->loc == REPORT_LOC_REMOTE) == g->remote;
}

static void
expect_json(json_t *got, json_t *want, const char *what)
{
    char *g, *w;

    cr_assert_not_null(got, "%s: NULL", what);
    g = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
    w = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    cr_expect(json_equal(got, want), "%s:\n got  %.2000s\n want %.2000s", what, g, w);
    free(g);
    free(w);
    json_decref(got);
    json_decref(want);
}

/* ---- expected values, computed from gen() ---- */

typedef struct agg {
    const char *key;
    long long requests, bytes, blocked, remote;
    unsigned users;                   /* bit per user index */
    const char *max_cat;              /* of blocked rows */
} agg_t;

static int order_field;               /* 0 requests, 1 bytes, 2 blocked */

static long long
agg_val(const agg_t *a)
{
    return order_field == 0 ? a->requests : order_field == 1 ? a->bytes : a->blocked;
}

static int
agg_cmp(const void *pa, const void *pb)
{
    const agg_t *a = pa, *b = pb;

    if (agg_val(a) != agg_val(b))
        return agg_val(a) > agg_val(b) ? -1 : 1;
    return strcmp(a->key, b->key);
}

static void
agg_add(agg_t *a, const gen_t *g)
{
    a->requests++;
    a->bytes += g->bytes;
    a->blocked += g->blocked;
    a->remote |= g->remote;
    if (g->user >= 0)
        a->users |= 1u << g->user;
    if (g->blocked && (a->max_cat == NULL || strcmp(cats[g->cat], a->max_cat) > 0))
        a->max_cat = cats[g->cat];
}

static unsigned
popcount(unsigned v)
{
    return (unsigned)__builtin_popcount(v);
}

/* Sorted aggregates by keyfn (0 user, 1 category, 2 host), only_blocked
 * counts blocked rows only; returns how many keys have rows. */
static size_t
aggregate(agg_t *out, int keyfn, const report_range_t *q, bool only_blocked, const char *user)
{
    size_t n = keyfn == 0 ? N_USERS : keyfn == 1 ? N_CATS : N_HOSTS, k = 0;
    agg_t all[8];

    memset(all, 0, sizeof(all));
    for (size_t i = 0; i < n; i++)
        all[i].key = keyfn == 0 ? users[i] : keyfn == 1 ? cats[i] : hosts[i];
    for (unsigned i = 0; i < N; i++) {
        gen_t g = gen(i);
        if (!in_range(&g, q) || (only_blocked && !g.blocked))
            continue;
        if (user != NULL && (g.user < 0 || strcmp(users[g.user], user) != 0))
            continue;
        if (keyfn == 0 && g.user < 0)
            continue;
        agg_add(&all[keyfn == 0 ? g.user : keyfn == 1 ? g.cat : g.host], &g);
    }
    for (size_t i = 0; i < n; i++)
        if (all[i].requests > 0)
            out[k++] = all[i];
    qsort(out, k, sizeof(*out), agg_cmp);
    return k;
}

static json_t *
sums(const agg_t *a, const char *keyname)
{
    return json_pack("{s:s, s:I, s:I, s:I}", keyname, a->key, "requests", (json_int_t)a->requests,
                     "bytes", (json_int_t)a->bytes, "blocked", (json_int_t)a->blocked);
}

static const report_range_t ranges[] = {
    {T0, T0 + (long long)N * STEP_MS, REPORT_LOC_ALL},
    {T0, T0 + (long long)N * STEP_MS, REPORT_LOC_REMOTE},
    {T0, T0 + (long long)N * STEP_MS, REPORT_LOC_LOCAL},
    {T0 + 1000 * STEP_MS, T0 + 2500 * STEP_MS, REPORT_LOC_ALL},   /* [1000, 2500) */
    {T0 + 1000 * STEP_MS + 1, T0 + 2500 * STEP_MS, REPORT_LOC_LOCAL},
    {0, T0, REPORT_LOC_ALL},                                      /* nothing */
};
#define N_RANGES (sizeof(ranges) / sizeof(ranges[0]))

/* ---- tests ---- */

Test(report, summary_matches_what_was_submitted)
{
    report_t *r = open_report(fill());

    for (size_t k = 0; k < N_RANGES; k++) {
        const report_range_t *q = &ranges[k];
        long long req = 0, blk = 0, bytes = 0, rem = 0;
        unsigned um = 0;
        char what[64];
        for (unsigned i = 0; i < N; i++) {
            gen_t g = gen(i);
            if (!in_range(&g, q))
                continue;
            req++;
            blk += g.blocked;
            bytes += g.bytes;
            rem += g.remote;
            if (g.user >= 0)
                um |= 1u << g.user;
        }
        snprintf(what, sizeof(what), "summary of range %zu", k);
        expect_json(report_summary(r, q),
                    json_pack("{s:I, s:I, s:s, s:I, s:I, s:I, s:i, s:I, s:I}", "from",
                              (json_int_t)q->from_ms, "to", (json_int_t)q->to_ms, "location",
                              report_location_str(q->loc), "requests", (json_int_t)req,
                              "blocked", (json_int_t)blk, "bytes", (json_int_t)bytes, "users",
                              (int)popcount(um), "remote_requests", (json_int_t)rem,
                              "local_requests", (json_int_t)(req - rem)),
                    what);
    }
    report_close(r);
}

Test(report, top_users_by_each_order)
{
    report_t *r = open_report(fill());
    static const enum report_order orders[] = {REPORT_BY_REQUESTS, REPORT_BY_BYTES,
                                               REPORT_BY_BLOCKED};

    for (size_t k = 0; k < N_RANGES; k++)
        for (size_t o = 0; o < 3; o++) {
            agg_t a[8];
            size_t n;
            json_t *want = json_array();
            char what[64];
            order_field = (int)o;
            n = aggregate(a, 0, &ranges[k], false, NULL);
            for (size_t i = 0; i < n && i < 4; i++) {
                json_t *row = sums(&a[i], "user");
                json_object_set_new(row, "remote", json_integer(a[i].remote));
                json_array_append_new(want, row);
            }
            snprintf(what, sizeof(what), "top users range %zu order %zu", k, o);
            expect_json(report_top_users(r, &ranges[k], orders[o], 4), want, what);
        }
    report_close(r);
}

Test(report, top_categories_and_blocked_hosts)
{
    report_t *r = open_report(fill());

    for (size_t k = 0; k < N_RANGES; k++) {
        agg_t a[8];
        size_t n;
        json_t *want = json_array();
        char what[64];

        order_field = 0;
        n = aggregate(a, 1, &ranges[k], false, NULL);
        for (size_t i = 0; i < n; i++) {
            json_t *row = sums(&a[i], "category");
            json_object_set_new(row, "users", json_integer(popcount(a[i].users)));
            json_array_append_new(want, row);
        }
        snprintf(what, sizeof(what), "top categories range %zu", k);
        expect_json(report_top_categories(r, &ranges[k], 10), want, what);

        want = json_array();
        n = aggregate(a, 2, &ranges[k], true, NULL);     /* requests = blocked rows */
        for (size_t i = 0; i < n && i < 3; i++)
            json_array_append_new(want, json_pack("{s:s, s:I, s:i, s:s}", "host", a[i].key,
                                                  "blocked", (json_int_t)a[i].requests, "users",
                                                  (int)popcount(a[i].users), "category",
                                                  a[i].max_cat));
        snprintf(what, sizeof(what), "top blocked hosts range %zu", k);
        expect_json(report_top_blocked_hosts(r, &ranges[k], 3), want, what);
    }
    report_close(r);
}

Test(report, user_detail)
{
    report_t *r = open_report(fill());
    const report_range_t *q = &ranges[3];
    agg_t a[8];
    size_t n;
    long long req = 0, bytes = 0, blk = 0, first = 0, last = 0;
    json_t *want, *hosts_j = json_array(), *cats_j = json_array(), *blocks = json_array();

    for (unsigned i = 0; i < N; i++) {
        gen_t g = gen(i);
        if (!in_range(&g, q) || g.user != 1)
            continue;
        req++;
        bytes += g.bytes;
        blk += g.blocked;
        if (first == 0)
            first = g.time;
        last = g.time;
    }
    for (unsigned i = N; i-- > 0;) {
        gen_t g = gen(i);
        if (in_range(&g, q) && g.user == 1 && g.blocked && json_array_size(blocks) < 5) {
            char url[128];
            snprintf(url, sizeof(url), "http://%s/p/%u", hosts[g.host], i);
            json_array_append_new(blocks, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "time",
                                                    (json_int_t)g.time, "host", hosts[g.host],
                                                    "url", url, "category", cats[g.cat], "rule",
                                                    g.rule, "decision_tag", "BLOCK_CATEGORY"));
        }
    }
    order_field = 0;
    n = aggregate(a, 2, q, false, "ben");
    for (size_t i = 0; i < n && i < 5; i++)
        json_array_append_new(hosts_j, sums(&a[i], "host"));
    n = aggregate(a, 1, q, false, "ben");
    for (size_t i = 0; i < n && i < 5; i++)
        json_array_append_new(cats_j, sums(&a[i], "category"));
    want = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o}", "user", "ben", "requests",
                     (json_int_t)req, "bytes", (json_int_t)bytes, "blocked", (json_int_t)blk,
                     "first_seen", (json_int_t)first, "last_seen", (json_int_t)last, "hosts",
                     hosts_j, "categories", cats_j, "blocks", blocks);
    expect_json(report_user_detail(r, q, "ben", 5), want, "user detail of ben");

    want = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:[], s:[], s:[]}", "user", "nobody",
                     "requests", 0, "bytes", 0, "blocked", 0, "first_seen", 0, "last_seen", 0,
                     "hosts", "categories", "blocks");
    expect_json(report_user_detail(r, q, "nobody", 5), want, "an unknown user");
    report_close(r);
}

/* The ids (1-based submit order is not the id order: threads interleave),
 * so web tracking is checked by time, which is unique per record. */
Test(report, search_filters_order_and_paging)
{
    report_t *r = open_report(fill());
    const report_range_t *q = &ranges[0];
    report_filter_t f = {.user = "dora", .decision = "block"};
    long long want_times[N];
    size_t nwant = 0, seen = 0;
    unsigned offset = 0;

    for (unsigned i = N; i-- > 0;) {
        gen_t g = gen(i);
        if (g.user == 3 && g.blocked)
            want_times[nwant++] = g.time;
    }
    cr_assert_gt(nwant, 100);
    for (;;) {
        json_t *page = report_search(r, q, &f, 100, offset), *rows, *row;
        size_t i;
        cr_assert_not_null(page, "%s", report_error(r));
        rows = json_object_get(page, "rows");
        json_array_foreach(rows, i, row) {
            cr_assert_lt(seen, nwant);
            cr_expect_eq(json_integer_value(json_object_get(row, "time")), want_times[seen]);
            cr_expect_str_eq(json_string_value(json_object_get(row, "user")), "dora");
            cr_expect_str_eq(json_string_value(json_object_get(row, "decision")), "block");
            cr_expect_eq(json_integer_value(json_object_get(row, "status")), 403);
            cr_expect_eq(json_integer_value(json_object_get(row, "remote")), 0);
            seen++;
        }
        cr_expect_eq(json_is_true(json_object_get(page, "more")), seen < nwant,
                     "more at offset %u", offset);
        cr_expect_eq(json_integer_value(json_object_get(page, "limit")), 100);
        offset += 100;
        json_decref(page);
        if (seen >= nwant || offset > N)
            break;
    }
    cr_expect_eq(seen, nwant);

    /* host matches itself and its subdomains, not a suffix of a label */
    {
        report_filter_t fh = {.host = "Shop.Example"};
        report_filter_t fx = {.host = "hop.example"};
        long long shop = 0;
        json_t *page;
        for (unsigned i = 0; i < N; i++)
            shop += gen(i).host == 2;
        page = report_search(r, q, &fh, 1000, 0);
        cr_assert_not_null(page);
        cr_expect_eq((long long)json_array_size(json_object_get(page, "rows")),
                     shop > 1000 ? 1000 : shop);
        cr_expect_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(page, "rows"), 0), "host")),
                         "www.shop.example");
        json_decref(page);
        page = report_search(r, q, &fx, 10, 0);
        cr_expect_eq(json_array_size(json_object_get(page, "rows")), 0);
        json_decref(page);
    }
    /* category + location + client */
    {
        report_range_t rq = {T0, T0 + (long long)N * STEP_MS, REPORT_LOC_REMOTE};
        report_filter_t fc = {.category = "news", .client = "10.8.0.2"};
        long long want = 0;
        json_t *page;
        for (unsigned i = 0; i < N; i++) {
            gen_t g = gen(i);
            want += g.remote && g.cat == 1 && i % 250 + 1 == 2;
        }
        page = report_search(r, &rq, &fc, 1000, 0);
        cr_assert_not_null(page);
        cr_expect_eq((long long)json_array_size(json_object_get(page, "rows")), want);
        json_decref(page);
    }
    cr_expect_null(report_search(r, q, &f, 10, REPORT_OFFSET_MAX + 1));
    cr_expect(strstr(report_error(r), "offset") != NULL);
    report_close(r);
}

Test(report, row_limits_are_clamped)
{
    report_t *r = open_report(fill());
    json_t *page = report_search(r, &ranges[0], NULL, 5000, 0);

    cr_assert_not_null(page);
    cr_expect_eq(json_array_size(json_object_get(page, "rows")), REPORT_ROWS_MAX);
    cr_expect_eq(json_integer_value(json_object_get(page, "limit")), REPORT_ROWS_MAX);
    cr_expect(json_is_true(json_object_get(page, "more")));
    json_decref(page);
    page = report_search(r, &ranges[0], NULL, 0, 0);
    cr_expect_eq(json_array_size(json_object_get(page, "rows")), REPORT_ROWS_DEFAULT);
    json_decref(page);
    report_close(r);
}

Test(report, remote_sessions_open_and_recent)
{
    txnstore_config_t cfg = {.path = txntest_path("s.db"), .flush_ms = 10};
    char err[ERR_LEN] = "";
    txnstore_t *s = txnstore_open(&cfg, err, sizeof(err));
    txnstore_session_t a = {"ann", "CORP", "10.8.0.2", "198.51.100.7", "user", "hq", 1000, 0, NULL};
    txnstore_session_t b = {"ben", NULL, "10.8.0.3", "198.51.100.8", "user", "hq", 2000, 0, NULL};
    txnstore_session_t m = {"LAPTOP-9$", NULL, "10.8.0.4", "203.0.113.5", "machine", "branch",
                            3000, 0, NULL};
    report_range_t q = {5000, 100000, REPORT_LOC_ALL};
    report_t *r;

    cr_assert_not_null(s, "%s", err);
    cr_assert(txnstore_session_event(s, &a));
    cr_assert(txnstore_session_event(s, &b));
    cr_assert(txnstore_session_event(s, &m));
    b.end_ms = 9000;
    b.end_reason = "idle timeout";
    cr_assert(txnstore_session_event(s, &b));
    a.end_ms = 4000;                   /* ended before the range */
    a.end_reason = "logout";
    cr_assert(txnstore_session_event(s, &a));
    txnstore_close(s);

    r = open_report(cfg.path);
    expect_json(report_sessions(r, &q, 10),
                json_pack("{s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s}],"
                          " s:[{s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s}]}",
                          "open", "user", "LAPTOP-9$", "domain", "", "vpn_addr", "10.8.0.4",
                          "public_addr", "203.0.113.5", "type", "machine", "headend", "branch",
                          "start", 3000, "end", 0, "end_reason", "",
                          "recent", "user", "ben", "domain", "", "vpn_addr", "10.8.0.3",
                          "public_addr", "198.51.100.8", "type", "user", "headend", "hq",
                          "start", 2000, "end", 9000, "end_reason", "idle timeout"),
                "sessions");
    q.from_ms = 0;
    {
        json_t *o = report_sessions(r, &q, 10);
        cr_assert_not_null(o);
        cr_expect_eq(json_array_size(json_object_get(o, "recent")), 2);
        cr_expect_str_eq(json_string_value(json_object_get(
                             json_array_get(json_object_get(o, "recent"), 1), "domain")), "CORP");
        json_decref(o);
    }
    report_close(r);
}

/* A report connection reads while the writer commits: never an error, and
 * the counts only grow up to everything. */
Test(report, reads_while_the_writer_writes)
{
    txnstore_config_t cfg = {.path = txntest_path("live.db"), .flush_ms = 5, .batch_max = 64};
    char err[ERR_LEN] = "";
    txnstore_t *s = txnstore_open(&cfg, err, sizeof(err));
    report_t *r;
    pthread_t th;
    filler_t f = {s, 0};
    long long prev = 0, now = 0;

    cr_assert_not_null(s, "%s", err);
    r = open_report(cfg.path);
    pthread_create(&th, NULL, fill_thread, &f);      /* every 4th record: N / 4 */
    for (int i = 0; i < 2000 && now < N / THREADS; i++) {
        json_t *o = report_summary(r, &ranges[0]);
        cr_assert_not_null(o, "%s", report_error(r));
        now = json_integer_value(json_object_get(o, "requests"));
        cr_expect_geq(now, prev);
        prev = now;
        json_decref(o);
        usleep(1000);
    }
    pthread_join(th, NULL);
    txnstore_close(s);
    {
        json_t *o = report_summary(r, &ranges[0]);
        cr_expect_eq(json_integer_value(json_object_get(o, "requests")), N / THREADS);
        json_decref(o);
    }
    report_close(r);
}

Test(report, missing_or_empty_file)
{
    char err[ERR_LEN] = "";
    FILE *f;

    cr_expect_null(report_open(txntest_path("none.db"), err, sizeof(err)));
    cr_expect(strstr(err, "cannot open the transaction store for reading") != NULL, "%s", err);
    cr_expect(strstr(err, "none.db") != NULL, "%s", err);
    f = fopen(txntest_path("empty.db"), "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_expect_null(report_open(txntest_path("empty.db"), err, sizeof(err)));
    cr_expect(strstr(err, "schema version 0") != NULL, "%s", err);
}

/* ---- part 2: sites, categories, blocked, timeline, locations ---- */

Test(report, sites_and_categories_by_each_order)
{
    report_t *r = open_report(fill());
    static const enum report_order orders[] = {REPORT_BY_REQUESTS, REPORT_BY_BYTES,
                                               REPORT_BY_BLOCKED};

    for (size_t k = 0; k < N_RANGES; k++)
        for (size_t o = 0; o < 3; o++)
            for (int keyfn = 1; keyfn <= 2; keyfn++) {
                agg_t a[8];
                size_t n;
                json_t *want = json_array();
                char what[80];
                order_field = (int)o;
                n = aggregate(a, keyfn, &ranges[k], false, NULL);
                for (size_t i = 0; i < n && i < 3; i++) {
                    json_t *row = sums(&a[i], keyfn == 1 ? "category" : "host");
                    json_object_set_new(row, "users", json_integer(popcount(a[i].users)));
                    json_array_append_new(want, row);
                }
                snprintf(what, sizeof(what), "%s range %zu order %zu",
                         keyfn == 1 ? "categories" : "sites", k, o);
                expect_json(keyfn == 1 ? report_categories(r, &ranges[k], orders[o], 3)
                                       : report_sites(r, &ranges[k], orders[o], 3),
                            want, what);
            }
    /* the dashboard's top categories are the categories report by requests */
    expect_json(report_top_categories(r, &ranges[0], 10),
                report_categories(r, &ranges[0], REPORT_BY_REQUESTS, 10), "top categories");
    cr_expect_null(report_sites(r, &ranges[0], (enum report_order)7, 3));
    cr_expect(strstr(report_error(r), "unknown order 7") != NULL, "%s", report_error(r));
    report_close(r);
}

/* One group of blocked rows: count, users, hosts, remote. */
typedef struct bgroup {
    const char *k1, *k2;
    long long blocked;
    unsigned users, hosts;
    int remote;
} bgroup_t;

static int
bgroup_cmp(const void *pa, const void *pb)
{
    const bgroup_t *a = pa, *b = pb;
    int c;

    if (a->blocked != b->blocked)
        return a->blocked > b->blocked ? -1 : 1;
    c = strcmp(a->k1, b->k1);
    return c != 0 ? c : strcmp(a->k2, b->k2);
}

/* The blocked rows of q grouped by (k1, k2) of kind 0 category, 1 policy
 * and rule, 2 user (unidentified: ""); sorted; their count. */
static size_t
bgroups(bgroup_t *out, int kind, const report_range_t *q)
{
    size_t n = 0;

    for (unsigned i = 0; i < N; i++) {
        gen_t g = gen(i);
        const char *k1, *k2 = "";
        size_t j;
        if (!in_range(&g, q) || !g.blocked)
            continue;
        k1 = kind == 0 ? cats[g.cat] : kind == 1 ? g.policy : g.user < 0 ? "" : users[g.user];
        if (kind == 1)
            k2 = g.rule;
        for (j = 0; j < n; j++)
            if (strcmp(out[j].k1, k1) == 0 && strcmp(out[j].k2, k2) == 0)
                break;
        if (j == n)
            out[n++] = (bgroup_t){.k1 = k1, .k2 = k2};
        out[j].blocked++;
        if (g.user >= 0)
            out[j].users |= 1u << g.user;
        out[j].hosts |= 1u << g.host;
        out[j].remote |= g.remote;
    }
    qsort(out, n, sizeof(*out), bgroup_cmp);
    return n;
}

Test(report, blocked_by_category_policy_and_user)
{
    report_t *r = open_report(fill());

    for (size_t k = 0; k < N_RANGES; k++) {
        const report_range_t *q = &ranges[k];
        bgroup_t b[32];
        long long req = 0, blk = 0;
        unsigned um = 0, hm = 0;
        json_t *want, *bc = json_array(), *bp = json_array(), *bu = json_array();
        size_t n;
        char what[64];

        for (unsigned i = 0; i < N; i++) {
            gen_t g = gen(i);
            if (!in_range(&g, q))
                continue;
            req++;
            if (!g.blocked)
                continue;
            blk++;
            hm |= 1u << g.host;
            if (g.user >= 0)
                um |= 1u << g.user;
        }
        n = bgroups(b, 0, q);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(bc, json_pack("{s:s, s:I, s:i}", "category", b[i].k1,
                                                "blocked", (json_int_t)b[i].blocked, "users",
                                                (int)popcount(b[i].users)));
        n = bgroups(b, 1, q);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(bp, json_pack("{s:s, s:s, s:I, s:i}", "access_policy", b[i].k1,
                                                "rule", b[i].k2, "blocked",
                                                (json_int_t)b[i].blocked, "users",
                                                (int)popcount(b[i].users)));
        n = bgroups(b, 2, q);
        for (size_t i = 0; i < n; i++)
            json_array_append_new(bu, json_pack("{s:s, s:I, s:i, s:i}", "user", b[i].k1,
                                                "blocked", (json_int_t)b[i].blocked, "remote",
                                                b[i].remote, "hosts",
                                                (int)popcount(b[i].hosts)));
        want = json_pack("{s:{s:I, s:I, s:i, s:i}, s:o, s:o, s:o}", "summary", "requests",
                         (json_int_t)req, "blocked", (json_int_t)blk, "users", (int)popcount(um),
                         "hosts", (int)popcount(hm), "by_category", bc, "by_policy", bp,
                         "by_user", bu);
        snprintf(what, sizeof(what), "blocked range %zu", k);
        expect_json(report_blocked(r, q, 100), want, what);
    }
    /* the ACL denials are there, under no policy; and the limit cuts each list */
    {
        json_t *o = report_blocked(r, &ranges[0], 2);
        cr_assert_not_null(o);
        cr_expect_eq(json_array_size(json_object_get(o, "by_policy")), 2);
        cr_expect_eq(json_array_size(json_object_get(o, "by_user")), 2);
        json_decref(o);
        o = report_blocked(r, &ranges[0], 100);
        cr_expect_eq(json_array_size(json_object_get(o, "by_policy")), 5, "vpn and office "
                     "times two rules, and the denials");
        json_decref(o);
    }
    report_close(r);
}

static json_t *
bucket_json(int64_t t, const report_range_t *q)
{
    long long c[9] = {0};

    for (unsigned i = 0; i < N; i++) {
        gen_t g = gen(i);
        if (!in_range(&g, q) || g.time / REPORT_BUCKET_MS * REPORT_BUCKET_MS != t)
            continue;
        c[0]++;
        c[1] += g.bytes;
        c[2] += g.blocked;
        c[g.remote ? 3 : 4]++;
        c[g.remote ? 5 : 6] += g.bytes;
        c[g.remote ? 7 : 8] += g.blocked;
    }
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "time", (json_int_t)t,
                     "requests", c[0], "bytes", c[1], "blocked", c[2], "remote_requests", c[3],
                     "local_requests", c[4], "remote_bytes", c[5], "local_bytes", c[6],
                     "remote_blocked", c[7], "local_blocked", c[8]);
}

Test(report, timeline_every_hour_of_the_range)
{
    report_t *r = open_report(fill());
    static const report_range_t more[] = {
        /* three empty hours first, then the traffic's first 1000 s */
        {T0 - 3 * REPORT_BUCKET_MS, T0 + 1000 * STEP_MS, REPORT_LOC_ALL},
        {T0 - 3 * REPORT_BUCKET_MS, T0 + (long long)N * STEP_MS + 2 * REPORT_BUCKET_MS,
         REPORT_LOC_REMOTE},
        /* one millisecond, inside a bucket */
        {T0 + 5 * STEP_MS, T0 + 5 * STEP_MS + 1, REPORT_LOC_ALL},
    };

    for (size_t k = 0; k < N_RANGES + 3; k++) {
        const report_range_t *q = k < N_RANGES ? &ranges[k] : &more[k - N_RANGES];
        json_t *want = json_array();
        char what[64];
        if (q->to_ms - q->from_ms > (int64_t)REPORT_BUCKETS_MAX * REPORT_BUCKET_MS) {
            json_decref(want);
            continue;                 /* since 1970: too long, below */
        }
        for (int64_t t = q->from_ms / REPORT_BUCKET_MS * REPORT_BUCKET_MS; t < q->to_ms;
             t += REPORT_BUCKET_MS)
            json_array_append_new(want, bucket_json(t, q));
        snprintf(what, sizeof(what), "timeline range %zu", k);
        expect_json(report_timeline(r, q), want, what);
    }
    {
        /* the totals of the buckets are the summary's */
        json_t *tl = report_timeline(r, &ranges[0]), *sum = report_summary(r, &ranges[0]), *row;
        long long req = 0, rem = 0;
        size_t i;
        cr_assert_not_null(tl);
        cr_expect_eq(json_array_size(tl), 2, "6000 s from 22:13:20 UTC span two hours");
        json_array_foreach(tl, i, row) {
            req += json_integer_value(json_object_get(row, "requests"));
            rem += json_integer_value(json_object_get(row, "remote_requests"));
        }
        cr_expect_eq(req, json_integer_value(json_object_get(sum, "requests")));
        cr_expect_eq(rem, json_integer_value(json_object_get(sum, "remote_requests")));
        json_decref(tl);
        json_decref(sum);
    }
    {
        report_range_t big = {T0, T0 + (long long)(REPORT_BUCKETS_MAX + 1) * REPORT_BUCKET_MS,
                              REPORT_LOC_ALL};
        cr_expect_null(report_timeline(r, &big));
        cr_expect(strstr(report_error(r), "hourly buckets") != NULL, "%s", report_error(r));
    }
    report_close(r);
}

/* The percentage rounded half up to a tenth, as report.c documents it. */
static double
pct(long long part, long long total)
{
    return total ? (double)((part * 1000 + total / 2) / total) / 10.0 : 0.0;
}

Test(report, locations_remote_against_local)
{
    report_t *r = open_report(fill());

    for (size_t k = 0; k < N_RANGES; k++) {
        const report_range_t *q = &ranges[k];
        long long c[2][3] = {{0}};
        unsigned um[2] = {0, 0};
        json_t *locs = json_array(), *doms = json_array(), *want;
        report_range_t rq = *q;
        agg_t a[8];
        size_t n;
        char what[64];

        for (unsigned i = 0; i < N; i++) {
            gen_t g = gen(i);
            int l = g.remote ? 0 : 1;
            if (!in_range(&g, q))
                continue;
            c[l][0]++;
            c[l][1] += g.bytes;
            c[l][2] += g.blocked;
            if (g.user >= 0)
                um[l] |= 1u << g.user;
        }
        for (int l = 0; l < 2; l++)
            json_array_append_new(locs, json_pack(
                "{s:s, s:I, s:I, s:I, s:i, s:f, s:f, s:f}", "location", l ? "local" : "remote",
                "requests", (json_int_t)c[l][0], "bytes", (json_int_t)c[l][1], "blocked",
                (json_int_t)c[l][2], "users", (int)popcount(um[l]), "requests_share",
                pct(c[l][0], c[0][0] + c[1][0]), "bytes_share", pct(c[l][1], c[0][1] + c[1][1]),
                "blocked_share", pct(c[l][2], c[0][2] + c[1][2])));
        order_field = 0;
        if (q->loc != REPORT_LOC_LOCAL) {
            rq.loc = REPORT_LOC_REMOTE;
            n = aggregate(a, 2, &rq, false, NULL);
            for (size_t i = 0; i < n; i++) {
                json_t *row = sums(&a[i], "host");
                json_object_set_new(row, "users", json_integer(popcount(a[i].users)));
                json_array_append_new(doms, row);
            }
        }
        want = json_pack("{s:o, s:o}", "locations", locs, "remote_domains", doms);
        snprintf(what, sizeof(what), "locations range %zu", k);
        expect_json(report_locations(r, q, 10), want, what);
    }
    /* literal shares: all remote, and nothing at all */
    {
        json_t *o = report_locations(r, &ranges[1], 10), *rem, *loc;
        cr_assert_not_null(o);
        rem = json_array_get(json_object_get(o, "locations"), 0);
        loc = json_array_get(json_object_get(o, "locations"), 1);
        cr_expect(json_real_value(json_object_get(rem, "requests_share")) == 100.0);
        cr_expect(json_real_value(json_object_get(loc, "requests_share")) == 0.0);
        json_decref(o);
        o = report_locations(r, &ranges[5], 10);
        rem = json_array_get(json_object_get(o, "locations"), 0);
        cr_expect_eq(json_integer_value(json_object_get(rem, "requests")), 0);
        cr_expect(json_real_value(json_object_get(rem, "blocked_share")) == 0.0);
        json_decref(o);
    }
    cr_expect_eq(pct(2, 3), 66.7);
    cr_expect_eq(pct(1, 8), 12.5);
    cr_expect_eq(pct(1, 16), 6.3, "half up");
    report_close(r);
}

/* Every table of every report document holds rows whose members are the
 * catalog's columns, in that order, and its CSV has their header and one
 * line per row. */
Test(report, documents_match_their_catalog)
{
    report_t *r = open_report(fill());
    char err[REPORTDOC_ERR_MAX];

    for (unsigned k = 0; k < REPORTDOC_KINDS; k++) {
        reportdoc_params_t p = {.user = "ben", .limit = 5};
        json_t *doc = json_object();
        size_t n;
        const reportdoc_table_t *t = reportdoc_tables((enum reportdoc_kind)k, &n);
        const char *name = reportdoc_name((enum reportdoc_kind)k);
        enum reportdoc_kind back;

        cr_assert(reportdoc_lookup(name, &back) && back == k, "%s", name);
        cr_assert_eq(reportdoc_fill(doc, r, (enum reportdoc_kind)k, &ranges[0], &p, err,
                                    sizeof(err)), 0, "%s: %s", name, err);
        if (k == REPORTDOC_SESSIONS)
            json_object_set_new(doc, "connected", json_array());    /* the UI's part */
        for (size_t i = 0; i < n; i++) {
            json_t *rows = json_object_get(doc, t[i].member), *row;
            size_t j, lines = 0;
            char *csv = NULL, header[1024] = "";
            size_t len = 0, hl = 0;
            FILE *f;

            if (t[i].sub != NULL)
                rows = json_object_get(rows, t[i].sub);
            cr_assert(t[i].one_row ? json_is_object(rows) : json_is_array(rows), "%s.%s", name,
                      t[i].name);
            if (!t[i].one_row && k != REPORTDOC_SESSIONS)
                cr_expect_gt(json_array_size(rows), 0, "%s.%s is empty", name, t[i].name);
            json_array_foreach(t[i].one_row ? NULL : rows, j, row) {
                const char *key;
                json_t *v;
                size_t c = 0;
                json_object_foreach(row, key, v) {
                    cr_assert_lt(c, t[i].ncols, "%s.%s: member %s past the columns", name,
                                 t[i].name, key);
                    cr_expect_str_eq(key, t[i].cols[c], "%s.%s column %zu", name, t[i].name, c);
                    c++;
                }
                cr_expect_eq(c, t[i].ncols, "%s.%s row %zu", name, t[i].name, j);
            }
            f = open_memstream(&csv, &len);
            cr_assert_eq(reportdoc_csv(f, doc, (enum reportdoc_kind)k, t[i].name, err,
                                       sizeof(err)), 0, "%s.%s: %s", name, t[i].name, err);
            fclose(f);
            for (size_t c = 0; c < t[i].ncols; c++)
                hl += (size_t)snprintf(header + hl, sizeof(header) - hl, "%s%s", c ? "," : "",
                                       t[i].cols[c]);
            cr_expect(strncmp(csv, header, hl) == 0 && strncmp(csv + hl, "\r\n", 2) == 0,
                      "%s.%s header: %.200s", name, t[i].name, csv);
            for (const char *s = csv; (s = strstr(s, "\r\n")) != NULL; s += 2)
                lines++;
            cr_expect_eq(lines, 1 + (t[i].one_row ? 1 : json_array_size(rows)), "%s.%s lines",
                         name, t[i].name);
            free(csv);
        }
        {
            char *csv = NULL;
            size_t len = 0;
            FILE *f = open_memstream(&csv, &len);
            cr_expect_eq(reportdoc_csv(f, doc, (enum reportdoc_kind)k, "nope", err,
                                       sizeof(err)), -2);
            cr_expect(strstr(err, "no table 'nope' (its tables: ") != NULL, "%s", err);
            fclose(f);
            free(csv);
        }
        json_decref(doc);
    }
    {
        json_t *doc = json_object();
        cr_expect_eq(reportdoc_fill(doc, r, REPORTDOC_USER, &ranges[0], NULL, err, sizeof(err)),
                     -2, "a user page without a user");
        json_decref(doc);
    }
    report_close(r);
}
