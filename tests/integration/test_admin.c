/*
 * tests/integration/test_admin.c: the admin web UI's dashboard and reports
 * end to end, with the real binaries over real sockets (the setup is in
 * admin_harness.h). After a known mix of requests, and once `musctl status`
 * says the store wrote all of them, the dashboard's JSON and HTML must show
 * exactly the numbers the test counted from what it sent and received, and
 * those the access log says; the part-2 reports, their CSV and `musctl
 * report` must agree with them, escaping included. Logins, sessions, CSRF
 * and HTTPS are in test_admin_auth.c; the trace, headend and VPN sessions
 * pages and the start-up and reload of the UI in test_admin_service.c.
 */
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "admin_harness.h"

/* musctl ARGS with stdout to a file: its exit status, the output in *out
 * (caller frees), stderr in *err (caller frees). */
static int musctl_out(const char *args, char **out, char **err)
{
    char cmd[4096], path[MP_PATH_MAX];
    int rc;

    mp_path(path, "musctl.out");
    snprintf(cmd, sizeof cmd, "'%s' %s > '%s'", bin("MUSCTL_BIN"), args, path);
    char *sh[] = {"/bin/sh", "-c", cmd, NULL};
    *err = NULL;
    rc = mp_run(sh, 10000, err);
    *out = mp_read_file(path, NULL);
    cr_assert_not_null(*out);
    return rc;
}

/* Waits until the store has written `want` records (musctl status). */
static void wait_store(long long want)
{
    char args[MP_PATH_MAX + 64];
    long long written = -1, submitted = -1;

    snprintf(args, sizeof args, "status --json --socket '%s'", g_sock);
    for (int i = 0; i < 100; i++) {
        json_t *st = musctl_json(args), *s = json_object_get(st, "store");
        written = json_integer_value(json_object_get(s, "written"));
        submitted = json_integer_value(json_object_get(s, "submitted"));
        json_decref(st);
        if (written == want && submitted == want)
            return;
        mp_sleep_ms(50);
    }
    cr_assert_fail("store: written %lld, submitted %lld, want %lld", written, submitted, want);
}

/* ---- the traffic and its expected figures ---- */

typedef struct counted {
    long long requests, blocked, bytes, remote;
    long long blocked_bytes, remote_bytes, remote_blocked;
    long long u_requests[N_USERS], u_blocked[N_USERS], u_bytes[N_USERS];
} counted_t;

static void send_mix(counted_t *c)
{
    memset(c, 0, sizeof *c);
    for (int i = 0; i < N_USERS; i++) {
        char cred[256], url[256];
        for (int k = 0; k < users[i].allowed + users[i].blocked; k++) {
            bool block = k >= users[i].allowed;
            resp_t r;
            req_t q = {.from = users[i].addr, .via_proxy = true, .proxy_userpwd = cred};
            snprintf(cred, sizeof cred, "%s:%s", users[i].name, users[i].pass);
            if (block)
                snprintf(url, sizeof url, "http://games.test/play/%d", k);
            else
                snprintf(url, sizeof url, "http://127.0.0.1:%d/size/%d", g_oport, 100 + 10 * i + k);
            fetch(url, &q, &r);
            cr_assert_eq(r.status, block ? 403 : 200, "%s as %s: %ld", url, users[i].name, r.status);
            c->requests++;
            c->blocked += block;
            c->remote += users[i].remote;
            c->bytes += r.header_size + (long long)r.body_size;
            c->blocked_bytes += block ? r.header_size + (long long)r.body_size : 0;
            c->remote_bytes += users[i].remote ? r.header_size + (long long)r.body_size : 0;
            c->remote_blocked += users[i].remote && block;
            c->u_requests[i]++;
            c->u_blocked[i] += block;
            c->u_bytes[i] += r.header_size + (long long)r.body_size;
            resp_free(&r);
        }
    }
}

/* The same figures from the access log's lines. */
/* The sum of every sample of one metric family (name, or name{labels}). */
static long long metric_sum(const char *text, const char *name)
{
    size_t n = strlen(name);
    long long sum = 0;

    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, name, n) != 0 || (l[n] != ' ' && l[n] != '{'))
            continue;
        const char *sp = l[n] == '{' ? strchr(l + n, '}') : l + n;
        if (sp != NULL)
            sum += (long long)strtod(sp + 1, NULL);
    }
    return sum;
}

static void count_log(counted_t *c)
{
    char *all = mp_read_file(g_log, NULL), *save = NULL;

    memset(c, 0, sizeof *c);
    cr_assert_not_null(all);
    for (char *line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char client[64], result[64], method[32], url[2048], user[512];
        long long bytes;
        double t;
        long el;
        cr_assert_eq(sscanf(line, "%lf %ld %63s %63s %lld %31s %2047s %511s", &t, &el, client,
                            result, &bytes, method, url, user), 8, "log line: %s", line);
        c->requests++;
        c->blocked += strcmp(result, "TCP_DENIED/403") == 0;
        c->bytes += bytes;
        for (int i = 0; i < N_USERS; i++)
            if (strcmp(user, users[i].name) == 0 || (i == 3 && strstr(user, "script"))) {
                c->u_requests[i]++;
                c->u_blocked[i] += strcmp(result, "TCP_DENIED/403") == 0;
                c->u_bytes[i] += bytes;
                c->remote += users[i].remote;
            }
    }
    free(all);
}

static long long summary_int(const json_t *d, const char *key)
{
    return (long long)json_integer_value(json_object_get(json_object_get(d, "summary"), key));
}

/* "<dd id="key">N</dd>" from a page. */
static long long page_figure(const char *html, const char *key)
{
    char needle[64];
    const char *p;

    snprintf(needle, sizeof needle, "<dd id=\"%s\">", key);
    p = strstr(html, needle);
    cr_assert_not_null(p, "no %s on the page", key);
    return atoll(p + strlen(needle));
}

static void expect_dashboard(const counted_t *c, const counted_t *lg)
{
    json_t *d = admin_json("/api/dashboard?range=24h&loc=all"), *tu, *tc, *tb;
    static const int order[N_USERS] = {0, 1, 2, 3};   /* alice 6, bob 3, carol 3 (ties by name), evil 2 */
    resp_t r;
    const char *prev;

    /* the JSON: what the test sent, and what the log says */
    cr_expect_eq(summary_int(d, "requests"), c->requests);
    cr_expect_eq(summary_int(d, "requests"), lg->requests);
    cr_expect_eq(summary_int(d, "blocked"), c->blocked);
    cr_expect_eq(summary_int(d, "blocked"), lg->blocked);
    cr_expect_eq(summary_int(d, "bytes"), c->bytes);
    cr_expect_eq(summary_int(d, "bytes"), lg->bytes);
    cr_expect_eq(summary_int(d, "users"), N_USERS);
    cr_expect_eq(summary_int(d, "remote_requests"), c->remote);
    cr_expect_eq(summary_int(d, "remote_requests"), lg->remote);
    cr_expect_eq(summary_int(d, "local_requests"), c->requests - c->remote);
    tu = json_object_get(d, "top_users");
    cr_assert_eq(json_array_size(tu), N_USERS, "top_users: %zu", json_array_size(tu));
    for (int k = 0; k < N_USERS; k++) {
        const json_t *row = json_array_get(tu, (size_t)k);
        int i = order[k];
        cr_expect_str_eq(json_string_value(json_object_get(row, "user")), users[i].name);
        cr_expect_eq(json_integer_value(json_object_get(row, "requests")), c->u_requests[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "requests")), lg->u_requests[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "blocked")), c->u_blocked[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "bytes")), c->u_bytes[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "bytes")), lg->u_bytes[i]);
        cr_expect_eq(json_integer_value(json_object_get(row, "remote")), users[i].remote ? 1 : 0);
    }
    tc = json_object_get(d, "top_categories");
    cr_assert_eq(json_array_size(tc), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(tc, 0), "category")), "news");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tc, 0), "requests")),
                 c->requests - c->blocked);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tc, 0), "blocked")), 0);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(tc, 1), "category")), "games");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tc, 1), "requests")), c->blocked);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tc, 1), "blocked")), c->blocked);
    tb = json_object_get(d, "top_blocked_hosts");
    cr_assert_eq(json_array_size(tb), 1);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(tb, 0), "host")), "games.test");
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tb, 0), "blocked")), c->blocked);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(tb, 0), "users")), 3);
    json_decref(d);

    /* the HTML shows the same figures */
    cr_assert_eq(admin_get("/?range=24h&loc=all", &r), 200, "%s", r.body);
    expect_security_headers(&r);
    cr_expect(strstr(r.headers, "Content-Type: text/html; charset=utf-8") != NULL);
    cr_expect_eq(page_figure(r.body, "requests"), c->requests);
    cr_expect_eq(page_figure(r.body, "blocked"), c->blocked);
    cr_expect_eq(page_figure(r.body, "bytes"), c->bytes);
    cr_expect_eq(page_figure(r.body, "users"), N_USERS);
    cr_expect_eq(page_figure(r.body, "remote_requests"), c->remote);
    prev = r.body;
    for (int k = 0; k < N_USERS; k++) {
        int i = order[k];
        char row[512];
        const char *at;
        snprintf(row, sizeof row,
                 ">%s</a></td><td class=\"n\">%lld</td><td class=\"n\">%lld</td>"
                 "<td class=\"n\">%lld</td><td>%s</td></tr>",
                 i == 3 ? EVIL_ESC : users[i].name, c->u_requests[i], c->u_bytes[i],
                 c->u_blocked[i], users[i].remote ? "yes" : "no");
        at = strstr(r.body, row);
        cr_expect_not_null(at, "no row %s on the dashboard", row);
        cr_expect(at == NULL || at > prev, "top users out of order at %s", users[i].name);
        if (at)
            prev = at;
    }
    {
        char row[256];
        snprintf(row, sizeof row, "<tr><td>news</td><td class=\"n\">%lld</td>",
                 c->requests - c->blocked);
        cr_expect(strstr(r.body, row) != NULL, "no %s", row);
        snprintf(row, sizeof row, "<tr><td>games</td><td class=\"n\">%lld</td>", c->blocked);
        cr_expect(strstr(r.body, row) != NULL, "no %s", row);
        snprintf(row, sizeof row, ">games.test</a></td><td class=\"n\">%lld</td><td class=\"n\">3</td>",
                 c->blocked);
        cr_expect(strstr(r.body, row) != NULL, "no %s", row);
    }
    /* the user named <script>...: escaped, in text and in its link */
    cr_expect_null(strstr(r.body, "<script"), "an unescaped <script> on the page");
    cr_expect(strstr(r.body, "href=\"/user?name=%3Cscript%3Ealert%281%29%3C%2Fscript%3E&amp;") != NULL);
    resp_free(&r);
}

Test(admin, dashboard_shows_the_traffic)
{
    counted_t c, lg;
    json_t *d;
    resp_t r;

    start();
    send_mix(&c);
    wait_store(c.requests);
    count_log(&lg);
    cr_assert_eq(lg.requests, c.requests, "the access log has %lld lines", lg.requests);
    expect_dashboard(&c, &lg);

    /* the location filter */
    d = admin_json("/api/dashboard?range=today&loc=remote");
    cr_expect_eq(summary_int(d, "requests"), users[0].allowed + users[0].blocked +
                                             users[1].allowed + users[1].blocked);
    cr_expect_eq(summary_int(d, "blocked"), users[0].blocked + users[1].blocked);
    cr_expect_eq(json_array_size(json_object_get(d, "top_users")), 2);
    json_decref(d);
    d = admin_json("/api/dashboard?range=7d&loc=local");
    cr_expect_eq(summary_int(d, "requests"), users[2].allowed + users[3].allowed + users[3].blocked);
    cr_expect_eq(summary_int(d, "blocked"), users[3].blocked);
    json_decref(d);

    /* a user's page, for the hostile name: escaped, with its figures */
    cr_assert_eq(admin_get("/user?name=%3Cscript%3Ealert%281%29%3C%2Fscript%3E", &r), 200, "%s", r.body);
    cr_expect_null(strstr(r.body, "<script"));
    cr_expect(strstr(r.body, "<b id=\"user\">" EVIL_ESC "</b>") != NULL, "%s", r.body);
    cr_expect_eq(page_figure(r.body, "requests"), c.u_requests[3]);
    cr_expect_eq(page_figure(r.body, "blocked"), c.u_blocked[3]);
    cr_expect(strstr(r.body, "games.test") != NULL);
    resp_free(&r);
    d = admin_json("/api/user?name=alice");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "detail"), "requests")),
                 c.u_requests[0]);
    cr_expect_eq(json_array_size(json_object_get(json_object_get(d, "detail"), "blocks")),
                 (size_t)users[0].blocked);
    json_decref(d);

    /* web tracking: the blocked requests of the remote users, paged */
    d = admin_json("/api/search?decision=block&loc=remote");
    cr_expect_eq(json_array_size(json_object_get(json_object_get(d, "result"), "rows")),
                 (size_t)(users[0].blocked + users[1].blocked));
    json_decref(d);
    d = admin_json("/api/search?user=alice&page=1");
    cr_expect_eq(json_array_size(json_object_get(json_object_get(d, "result"), "rows")),
                 (size_t)c.u_requests[0]);
    json_decref(d);
    d = admin_json("/api/search?user=alice&page=2");
    cr_expect_eq(json_array_size(json_object_get(json_object_get(d, "result"), "rows")), 0);
    json_decref(d);
    cr_assert_eq(admin_get("/search?host=games.test", &r), 200);
    cr_expect(strstr(r.body, "http://games.test/play/4") != NULL, "search page lacks alice's block");
    cr_expect(strstr(r.body, EVIL_ESC) != NULL);
    cr_expect_null(strstr(r.body, "<script"));
    resp_free(&r);
    cr_expect_eq(admin_get("/api/search?decision=maybe", &r), 400);
    cr_expect(strstr(r.body, "decision must be") != NULL, "%s", r.body);
    resp_free(&r);

    /* the store page: what musctl status says */
    d = admin_json("/api/store");
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "store"), "written")), c.requests);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(d, "store"), "dropped")), 0);
    json_decref(d);
    cr_assert_eq(admin_get("/store", &r), 200);
    cr_expect_eq(page_figure(r.body, "written"), c.requests);
    cr_expect_eq(page_figure(r.body, "lost"), 0);
    resp_free(&r);

    /* /metrics behind the login: the same counts as the access log */
    cr_assert_eq(admin_get("/metrics", &r), 200, "%s", r.body);
    cr_expect(strstr(r.headers, "Content-Type: text/plain; version=0.0.4") != NULL, "%s", r.headers);
    cr_expect_eq(metric_sum(r.body, "musproxy_requests_total"), lg.requests, "%s", r.body);
    cr_expect_eq(metric_sum(r.body, "musproxy_blocks_total"), lg.blocked, "%s", r.body);
    cr_expect_eq(metric_sum(r.body, "musproxy_store_up"), 1, "%s", r.body);
    resp_free(&r);
    {
        req_t anon = {0};
        char url[1024];
        cr_expect_eq(fetch(admin_url(url, sizeof url, "/metrics"), &anon, &r), 401);
        cr_expect_null(strstr(r.body, "musproxy_requests_total"));
        resp_free(&r);
    }

    /* the sessions page answers (ip_ranges: nobody in the map) */
    d = admin_json("/api/sessions");
    cr_expect_eq(json_array_size(json_object_get(d, "connected")), 0);
    json_decref(d);
}

/* ---- the reports of part 2, their CSV and musctl report ---- */

static json_t *row_of(const json_t *rows, const char *key, const char *value)
{
    size_t i;
    json_t *row;

    json_array_foreach(rows, i, row)
    {
        const char *v = json_string_value(json_object_get(row, key));
        if (v != NULL && strcmp(v, value) == 0)
            return row;
    }
    cr_assert_fail("no row with %s = %s", key, value);
    return NULL;
}

static long long ival(const json_t *row, const char *key)
{
    const json_t *v = json_object_get(row, key);
    cr_assert(json_is_integer(v), "%s is not an integer", key);
    return (long long)json_integer_value(v);
}

/* Splits an RFC 4180 text into cells: rows[r][c], at most 64 x 16. */
typedef struct csv {
    size_t nrows, ncols[64];
    char cell[64][16][512];
} csv_t;

static void csv_parse(const char *s, csv_t *t)
{
    size_t r = 0, c = 0, o = 0;
    bool q = false;

    memset(t, 0, sizeof *t);
    for (; *s; s++) {
        if (q) {
            if (*s == '"' && s[1] == '"')
                t->cell[r][c][o++] = *s++;
            else if (*s == '"')
                q = false;
            else
                t->cell[r][c][o++] = *s;
        } else if (*s == '"') {
            q = true;
        } else if (*s == ',') {
            c++, o = 0;
        } else if (*s == '\r' && s[1] == '\n') {
            t->ncols[r] = c + 1;
            r++, c = 0, o = 0;
            s++;
        } else {
            t->cell[r][c][o++] = *s;
        }
        cr_assert(r < 64 && c < 16 && o < 511, "CSV too large for the test");
    }
    cr_assert(!q && c == 0 && o == 0, "the CSV does not end with CRLF: %s", s);
    t->nrows = r;
}

/* The CSV holds the JSON rows: its header the keys, each cell the value. */
static void expect_csv_rows(const char *text, const json_t *rows, const char *what)
{
    static csv_t t;
    size_t i;
    json_t *row;

    csv_parse(text, &t);
    cr_assert_eq(t.nrows, json_array_size(rows) + 1, "%s: %zu CSV lines for %zu rows\n%s", what,
                 t.nrows, json_array_size(rows), text);
    json_array_foreach(rows, i, row) {
        const char *key;
        json_t *v;
        size_t c = 0;
        json_object_foreach(row, key, v) {
            char want[512];
            cr_assert_str_eq(t.cell[0][c], key, "%s: header column %zu", what, c);
            if (json_is_integer(v))
                snprintf(want, sizeof want, "%lld", (long long)json_integer_value(v));
            else if (json_is_real(v))
                snprintf(want, sizeof want, "%.1f", json_real_value(v));
            else
                snprintf(want, sizeof want, "%s%s", strchr("=+-@", *json_string_value(v)) &&
                         *json_string_value(v) ? "'" : "", json_string_value(v));
            cr_expect_str_eq(t.cell[i + 1][c], want, "%s: row %zu %s", what, i, key);
            c++;
        }
        cr_expect_eq(t.ncols[i + 1], c, "%s: row %zu", what, i);
    }
}

/* GET path (an API or page route with ?format=csv): 200 text/csv as an
 * attachment named musproxy-REPORT-TABLE-...csv; the body (caller frees). */
static char *get_csv(const char *path, const char *report, const char *table)
{
    resp_t r;
    char disp[256];
    char *body;

    cr_assert_eq(admin_get(path, &r), 200, "%s: %ld %s", path, r.status, r.body);
    cr_expect(strstr(r.headers, "Content-Type: text/csv; charset=utf-8\r\n") != NULL, "%s",
              r.headers);
    snprintf(disp, sizeof disp, "Content-Disposition: attachment; filename=\"musproxy-%s-%s-",
             report, table);
    cr_expect(strstr(r.headers, disp) != NULL, "%s: no %s in\n%s", path, disp, r.headers);
    expect_security_headers(&r);
    body = r.body;
    r.body = NULL;
    resp_free(&r);
    return body;
}

/* Unix ms as 2026-12-04T13:00:05.250Z, the form musctl report takes. */
static void iso_ms(long long ms, char *buf, size_t cap)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

/* musctl report NAME over the API document's own range prints the same
 * members, and its CSV of each table the API's CSV. */
static void expect_musctl_report(const char *name, const char *api, const char *const *tables,
                                 size_t ntables, const char *extra)
{
    char path[512], args[2 * MP_PATH_MAX + 512], from[96], to[96], loc[16], *out, *err;
    json_t *d, *m;
    json_error_t je;
    const char *key;
    json_t *v;

    d = admin_json(api);
    iso_ms(json_integer_value(json_object_get(d, "from")), from, sizeof from);
    iso_ms(json_integer_value(json_object_get(d, "to")), to, sizeof to);
    snprintf(loc, sizeof loc, "%s", json_string_value(json_object_get(d, "location")));
    snprintf(args, sizeof args, "report %s --config '%s' --from %s --to %s --location %s %s",
             name, g_cfg, from, to, loc, extra);
    cr_assert_eq(musctl_out(args, &out, &err), 0, "musctl %s: %s", args, err ? err : "");
    free(err);
    m = json_loads(out, 0, &je);
    cr_assert_not_null(m, "musctl %s: %s in %s", args, je.text, out);
    free(out);
    cr_expect_str_eq(json_string_value(json_object_get(m, "report")), name);
    json_object_foreach(d, key, v) {
        if (strcmp(key, "page") == 0 || strcmp(key, "range") == 0)
            continue;
        cr_expect(json_equal(v, json_object_get(m, key)), "musctl report %s: %s differs", name,
                  key);
    }
    cr_expect_eq(json_object_size(m), json_object_size(d) - 1, "report for page and range");
    json_decref(m);
    json_decref(d);
    for (size_t i = 0; i < ntables; i++) {
        char *csv;
        snprintf(path, sizeof path, "%s%sformat=csv&table=%s", api, strchr(api, '?') ? "&" : "?",
                 tables[i]);
        csv = get_csv(path, name, tables[i]);
        snprintf(args, sizeof args, "report %s --db '%s' --from %s --to %s --location %s "
                 "--format csv --table %s %s", name, mp_path(path, "musproxy.db"), from, to, loc,
                 tables[i], extra);
        cr_assert_eq(musctl_out(args, &out, &err), 0, "musctl %s: %s", args, err ? err : "");
        cr_expect_str_eq(out, csv, "musctl report %s --table %s differs from the API's CSV",
                         name, tables[i]);
        free(out);
        free(err);
        free(csv);
    }
}

/* The part-2 reports of a known traffic mix: every figure is counted from
 * what the test sent; each table's CSV holds its JSON rows; every HTML
 * table links to a CSV that is the API's; musctl report on the same store
 * prints the same documents and the same CSV. */
static void expect_reports(const counted_t *c)
{
    long long allowed = c->requests - c->blocked;
    long long remote_req = 0, remote_blocked = 0;
    json_t *d, *rows, *row;
    char *csv;
    resp_t r;

    for (int i = 0; i < N_USERS; i++)
        if (users[i].remote) {
            remote_req += users[i].allowed + users[i].blocked;
            remote_blocked += users[i].blocked;
        }
    cr_assert_eq(remote_blocked, c->remote_blocked);

    /* web sites: the origin (every allowed request) and games.test (every block) */
    d = admin_json("/api/sites?range=24h&loc=all");
    cr_expect_str_eq(json_string_value(json_object_get(d, "by")), "requests");
    rows = json_object_get(d, "sites");
    cr_assert_eq(json_array_size(rows), 2, "sites: %zu", json_array_size(rows));
    row = json_array_get(rows, 0);
    cr_expect_str_eq(json_string_value(json_object_get(row, "host")), "127.0.0.1");
    cr_expect_eq(ival(row, "requests"), allowed);
    cr_expect_eq(ival(row, "bytes"), c->bytes - c->blocked_bytes);
    cr_expect_eq(ival(row, "blocked"), 0);
    cr_expect_eq(ival(row, "users"), N_USERS);
    row = json_array_get(rows, 1);
    cr_expect_str_eq(json_string_value(json_object_get(row, "host")), "games.test");
    cr_expect_eq(ival(row, "requests"), c->blocked);
    cr_expect_eq(ival(row, "bytes"), c->blocked_bytes);
    cr_expect_eq(ival(row, "blocked"), c->blocked);
    cr_expect_eq(ival(row, "users"), 3);
    csv = get_csv("/api/sites?range=24h&loc=all&format=csv", "sites", "sites");
    expect_csv_rows(csv, rows, "sites");
    free(csv);
    json_decref(d);
    d = admin_json("/api/sites?by=blocked");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(json_object_get(d, "sites"),
                                                                      0), "host")), "games.test");
    json_decref(d);
    d = admin_json("/api/sites?loc=local&limit=1");
    rows = json_object_get(d, "sites");
    cr_assert_eq(json_array_size(rows), 1);
    cr_expect_eq(ival(json_array_get(rows, 0), "requests"),
                 users[2].allowed + users[3].allowed);
    json_decref(d);

    /* URL categories: news (the url_prefix) and games */
    d = admin_json("/api/categories?range=24h&loc=all");
    rows = json_object_get(d, "categories");
    cr_assert_eq(json_array_size(rows), 2);
    row = row_of(rows, "category", "news");
    cr_expect_eq(ival(row, "requests"), allowed);
    cr_expect_eq(ival(row, "blocked"), 0);
    cr_expect_eq(ival(row, "bytes"), c->bytes - c->blocked_bytes);
    row = row_of(rows, "category", "games");
    cr_expect_eq(ival(row, "requests"), c->blocked);
    cr_expect_eq(ival(row, "blocked"), c->blocked);
    cr_expect_eq(ival(row, "users"), 3);
    csv = get_csv("/categories?range=24h&loc=all&format=csv&table=categories", "categories",
                  "categories");
    expect_csv_rows(csv, rows, "categories (from the HTML route)");
    free(csv);
    json_decref(d);

    /* blocked: by category, by policy and rule, by user (ties by name: '<' < 'b') */
    d = admin_json("/api/blocked?range=24h&loc=all");
    row = json_object_get(d, "summary");
    cr_expect_eq(ival(row, "requests"), c->requests);
    cr_expect_eq(ival(row, "blocked"), c->blocked);
    cr_expect_eq(ival(row, "users"), 3);
    cr_expect_eq(ival(row, "hosts"), 1);
    rows = json_object_get(d, "by_category");
    cr_assert_eq(json_array_size(rows), 1);
    cr_expect_eq(ival(row_of(rows, "category", "games"), "blocked"), c->blocked);
    rows = json_object_get(d, "by_policy");
    cr_assert_eq(json_array_size(rows), 2);
    row = json_array_get(rows, 0);
    cr_expect_str_eq(json_string_value(json_object_get(row, "access_policy")), "remote");
    cr_expect_str_eq(json_string_value(json_object_get(row, "rule")), "category");
    cr_expect_eq(ival(row, "blocked"), remote_blocked);
    cr_expect_eq(ival(row, "users"), 2);
    row = json_array_get(rows, 1);
    cr_expect_str_eq(json_string_value(json_object_get(row, "access_policy")), "office");
    cr_expect_eq(ival(row, "blocked"), c->blocked - remote_blocked);
    csv = get_csv("/api/blocked?format=csv&table=by_policy", "blocked", "by_policy");
    expect_csv_rows(csv, rows, "blocked by policy");
    free(csv);
    rows = json_object_get(d, "by_user");
    cr_assert_eq(json_array_size(rows), 3);
    {
        static const int order[] = {0, 3, 1};     /* alice 2, <script> 1, bob 1 */
        for (int k = 0; k < 3; k++) {
            row = json_array_get(rows, (size_t)k);
            cr_expect_str_eq(json_string_value(json_object_get(row, "user")),
                             users[order[k]].name);
            cr_expect_eq(ival(row, "blocked"), users[order[k]].blocked);
            cr_expect_eq(ival(row, "remote"), users[order[k]].remote);
            cr_expect_eq(ival(row, "hosts"), 1);
        }
    }
    csv = get_csv("/api/blocked?format=csv&table=by_user", "blocked", "by_user");
    expect_csv_rows(csv, rows, "blocked by user");
    cr_expect(strstr(csv, "\r\n" EVIL ",1,0,1\r\n") != NULL, "%s", csv);
    free(csv);
    csv = get_csv("/api/blocked?format=csv", "blocked", "summary");
    cr_expect(strncmp(csv, "requests,blocked,users,hosts\r\n", 30) == 0, "%s", csv);
    free(csv);
    json_decref(d);

    /* over time: every hour of the day, the sums are the traffic */
    d = admin_json("/api/timeline?range=24h&loc=all");
    {
        long long from = ival(d, "from"), to = ival(d, "to"), sum[5] = {0};
        size_t i, nonzero = 0;
        size_t want = (size_t)((to - from / 3600000 * 3600000 + 3599999) / 3600000);
        rows = json_object_get(d, "timeline");
        cr_expect_eq(ival(d, "bucket_ms"), 3600000);
        cr_expect_eq(json_array_size(rows), want, "%zu hours", json_array_size(rows));
        json_array_foreach(rows, i, row) {
            cr_expect_eq(ival(row, "time"), from / 3600000 * 3600000 + (long long)i * 3600000);
            sum[0] += ival(row, "requests");
            sum[1] += ival(row, "remote_requests");
            sum[2] += ival(row, "blocked");
            sum[3] += ival(row, "bytes");
            sum[4] += ival(row, "remote_bytes");
            nonzero += ival(row, "requests") > 0;
            cr_expect_eq(ival(row, "requests"),
                         ival(row, "remote_requests") + ival(row, "local_requests"));
            cr_expect_eq(ival(row, "blocked"),
                         ival(row, "remote_blocked") + ival(row, "local_blocked"));
        }
        cr_expect_eq(sum[0], c->requests);
        cr_expect_eq(sum[1], c->remote);
        cr_expect_eq(sum[2], c->blocked);
        cr_expect_eq(sum[3], c->bytes);
        cr_expect_eq(sum[4], c->remote_bytes);
        cr_expect(nonzero == 1 || nonzero == 2, "the traffic took seconds: %zu hours", nonzero);
    }
    csv = get_csv("/api/timeline?format=csv", "timeline", "timeline");
    expect_csv_rows(csv, rows, "timeline");
    free(csv);
    json_decref(d);

    /* by user location: 9 of 14 requests remote, 3 of 4 blocks */
    d = admin_json("/api/locations?range=24h&loc=all");
    rows = json_object_get(d, "locations");
    cr_assert_eq(json_array_size(rows), 2);
    row = json_array_get(rows, 0);
    cr_expect_str_eq(json_string_value(json_object_get(row, "location")), "remote");
    cr_expect_eq(ival(row, "requests"), remote_req);
    cr_expect_eq(ival(row, "blocked"), remote_blocked);
    cr_expect_eq(ival(row, "bytes"), c->remote_bytes);
    cr_expect_eq(ival(row, "users"), 2);
    cr_assert_eq(remote_req, 9);
    cr_assert_eq(c->requests, 14);
    cr_expect(json_real_value(json_object_get(row, "requests_share")) == 64.3, "%f",
              json_real_value(json_object_get(row, "requests_share")));
    cr_expect(json_real_value(json_object_get(row, "blocked_share")) == 75.0);
    row = json_array_get(rows, 1);
    cr_expect_str_eq(json_string_value(json_object_get(row, "location")), "local");
    cr_expect_eq(ival(row, "requests"), c->requests - remote_req);
    cr_expect(json_real_value(json_object_get(row, "requests_share")) == 35.7);
    cr_expect(json_real_value(json_object_get(row, "blocked_share")) == 25.0);
    csv = get_csv("/api/locations?format=csv", "locations", "locations");
    expect_csv_rows(csv, rows, "locations");
    cr_expect(strstr(csv, ",64.3,") != NULL && strstr(csv, ",75.0\r\n") != NULL, "%s", csv);
    free(csv);
    rows = json_object_get(d, "remote_domains");
    cr_assert_eq(json_array_size(rows), 2);
    row = row_of(rows, "host", "127.0.0.1");
    cr_expect_eq(ival(row, "requests"), users[0].allowed + users[1].allowed);
    cr_expect_eq(ival(row, "users"), 2);
    row = row_of(rows, "host", "games.test");
    cr_expect_eq(ival(row, "blocked"), remote_blocked);
    json_decref(d);

    /* every HTML table links to its CSV, and the link gives the API's CSV */
    {
        static const struct { const char *page, *api, *tables[4]; } pages[] = {
            {"/sites?range=24h&loc=all", "/api/sites", {"sites"}},
            {"/categories?range=24h&loc=all", "/api/categories", {"categories"}},
            {"/blocked?range=24h&loc=all", "/api/blocked",
             {"summary", "by_category", "by_policy", "by_user"}},
            {"/timeline?range=24h&loc=all", "/api/timeline", {"timeline"}},
            {"/locations?range=24h&loc=all", "/api/locations", {"locations", "remote_domains"}},
            {"/?range=24h&loc=all", "/api/dashboard",
             {"summary", "top_users", "top_categories", "top_blocked_hosts"}},
        };
        for (size_t i = 0; i < sizeof pages / sizeof pages[0]; i++) {
            cr_assert_eq(admin_get(pages[i].page, &r), 200, "%s: %s", pages[i].page, r.body);
            cr_expect_null(strstr(r.body, "<script"), "%s", pages[i].page);
            for (size_t k = 0; k < 4 && pages[i].tables[k]; k++) {
                char want[512], link[512], api[512];
                const char *at, *q = strchr(pages[i].page, '?');
                char *from_link, *from_api;
                snprintf(want, sizeof want, "<a id=\"csv-%s\" href=\"%.*s?range=24h&amp;loc=all"
                         "&amp;format=csv&amp;table=%s\">CSV</a>", pages[i].tables[k],
                         (int)(q - pages[i].page), pages[i].page, pages[i].tables[k]);
                at = strstr(r.body, want);
                cr_expect_not_null(at, "%s lacks %s", pages[i].page, want);
                snprintf(link, sizeof link, "%.*s?range=24h&loc=all&format=csv&table=%s",
                         (int)(q - pages[i].page), pages[i].page, pages[i].tables[k]);
                snprintf(api, sizeof api, "%s?range=24h&loc=all&format=csv&table=%s",
                         pages[i].api, pages[i].tables[k]);
                from_link = get_csv(link, pages[i].api + 5, pages[i].tables[k]);
                from_api = get_csv(api, pages[i].api + 5, pages[i].tables[k]);
                if (strcmp(pages[i].tables[k], "summary") != 0 || i != 5)
                    cr_expect_str_eq(from_link, from_api, "%s", link);
                free(from_link);
                free(from_api);
            }
            resp_free(&r);
        }
        cr_assert_eq(admin_get("/sites", &r), 200);
        cr_expect(strstr(r.body, "<a id=\"csv-sites\" href=\"/sites?format=csv&amp;table=sites\">")
                  != NULL, "a page without parameters links to its CSV");
        resp_free(&r);
        cr_assert_eq(admin_get("/timeline?range=24h", &r), 200);
        cr_expect(strstr(r.body, "<svg class=\"chart\"") != NULL && strstr(r.body, "<rect ") != NULL,
                  "the timeline has its chart");
        resp_free(&r);
    }

    /* refusals */
    cr_expect_eq(admin_get("/api/blocked?format=csv&table=nope", &r), 400);
    cr_expect(strstr(r.body, "no table 'nope' (its tables: summary, by_category, by_policy, "
                             "by_user)") != NULL, "%s", r.body);
    resp_free(&r);
    cr_expect_eq(admin_get("/api/headends?format=csv", &r), 400);
    resp_free(&r);
    cr_expect_eq(admin_get("/api/sites?format=xml", &r), 400);
    resp_free(&r);
    cr_expect_eq(admin_get("/api/sites?by=size", &r), 400);
    resp_free(&r);
    cr_expect_eq(admin_get("/api/sites?limit=0", &r), 400);
    resp_free(&r);

    /* musctl report on the same store: the same documents, the same CSV */
    {
        static const char *const t_sites[] = {"sites"}, *const t_cats[] = {"categories"};
        static const char *const t_blocked[] = {"summary", "by_category", "by_policy", "by_user"};
        static const char *const t_time[] = {"timeline"};
        static const char *const t_loc[] = {"locations", "remote_domains"};
        static const char *const t_dash[] = {"top_users", "top_categories", "top_blocked_hosts"};
        expect_musctl_report("sites", "/api/sites?range=24h&loc=all", t_sites, 1, "");
        expect_musctl_report("sites", "/api/sites?range=7d&loc=remote&by=bytes", t_sites, 1,
                             "--by bytes");
        expect_musctl_report("categories", "/api/categories?range=24h&loc=local", t_cats, 1, "");
        expect_musctl_report("blocked", "/api/blocked?range=24h&loc=all", t_blocked, 4, "");
        expect_musctl_report("timeline", "/api/timeline?range=24h&loc=all", t_time, 1, "");
        expect_musctl_report("locations", "/api/locations?range=24h&loc=all", t_loc, 2, "");
        expect_musctl_report("dashboard", "/api/dashboard?range=24h&loc=all", t_dash, 3, "");
    }
}

/* musctl report's usage errors: status 2 and a message that says what. */
static void expect_musctl_report_refusals(void)
{
    static const struct { const char *args, *words; bool raw; } bad[] = {
        {"report", "which report?", false},
        {"report nope", "no report named 'nope'"},
        {"report sites extra", "one report at a time"},
        {"report sites --from yesterday", "time 'yesterday'"},
        {"report sites --from 2026-02-30", "no such date"},
        {"report sites --from now --to -1h", "must be before --to"},
        {"report sites --location vpn", "--location must be remote, local or all"},
        {"report sites --format xml", "--format must be json or csv"},
        {"report sites --table sites", "goes with --format csv"},
        {"report blocked --by bytes", "--by applies to the sites and categories"},
        {"report user", "needs --user NAME"},
        {"report sites --limit 0", "--limit must be a number from 1 to 1000"},
        {"report sites --host x", "filter the search report"},
        {"report search --decision maybe", "--decision must be"},
        {"report sites --db a --config b", "give one", true},
        {"report sites --bogus", "unknown option '--bogus'"},
        {"report sites --from", "--from needs a value", true},
        {"report sessions --format csv --table connected", "musctl map"},
        {"report timeline --from 2000-01-01", "the timeline holds at most 9600 hours"},
    };
    char args[2 * MP_PATH_MAX + 256], db[MP_PATH_MAX], *out, *err;

    mp_path(db, "musproxy.db");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (bad[i].raw)
            snprintf(args, sizeof args, "%s", bad[i].args);
        else
            snprintf(args, sizeof args, "%s --db '%s'", bad[i].args, db);
        cr_expect_eq(musctl_out(args, &out, &err), 2, "musctl %s", args);
        cr_expect(err != NULL && strstr(err, bad[i].words) != NULL, "musctl %s: %s", args,
                  err ? err : "(no stderr)");
        cr_expect_str_eq(out, "", "musctl %s printed something", args);
        free(out);
        free(err);
    }
    /* an unknown table is a usage error too; a missing store is status 1 */
    snprintf(args, sizeof args, "report blocked --format csv --table nope --config '%s'", g_cfg);
    cr_expect_eq(musctl_out(args, &out, &err), 2);
    cr_expect(err && strstr(err, "no table 'nope'") != NULL, "%s", err ? err : "");
    free(out);
    free(err);
    cr_expect_eq(musctl_out("report sites --db /nonexistent/store.db", &out, &err), 1);
    cr_expect(err && strstr(err, "/nonexistent/store.db: cannot open the transaction store for "
                                "reading") != NULL, "%s", err ? err : "");
    free(out);
    free(err);
    cr_expect_eq(musctl_out("report --help", &out, &err), 0);
    cr_expect(strstr(out, "  locations   ") != NULL && strstr(out, "  timeline    ") != NULL &&
              strstr(out, "TIME: now, -24h") != NULL, "%s", out);
    free(out);
    free(err);
}

Test(admin, reports_csv_and_musctl_report)
{
    counted_t c;

    start();
    send_mix(&c);
    wait_store(c.requests);
    expect_reports(&c);
    expect_musctl_report_refusals();
}
