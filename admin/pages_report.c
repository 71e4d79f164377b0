/*
 * admin/pages_report.c: the report pages' HTML (see pages.h): dashboard,
 * web sites, URL categories, blocked, over time, by location, a user's
 * page and the transaction search, each from its db/reportdoc.h document
 * with the shared tables of pages_int.h (every table links to its CSV);
 * the timeline adds an inline SVG bar chart (no script). No I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pages_int.h"

static void
page_dashboard(hb_t *b, const json_t *doc)
{
    static const col_t sum[] = {
        {"requests", "Requests", COL_INT}, {"blocked", "Blocked", COL_INT},
        {"bytes", "Bytes", COL_INT}, {"users", "Distinct users", COL_INT},
        {"remote_requests", "Remote requests", COL_INT},
        {"local_requests", "Local requests", COL_INT},
    };
    static const col_t users[] = {
        {"user", "User", COL_USER}, {"requests", "Requests", COL_INT},
        {"bytes", "Bytes", COL_INT}, {"blocked", "Blocked", COL_INT},
        {"remote", "Remote", COL_BOOL},
    };
    static const col_t cats[] = {
        {"category", "Category", COL_TEXT}, {"requests", "Requests", COL_INT},
        {"bytes", "Bytes", COL_INT}, {"blocked", "Blocked", COL_INT},
        {"users", "Users", COL_INT},
    };
    static const col_t hosts[] = {
        {"host", "Host", COL_HOST}, {"blocked", "Blocked", COL_INT},
        {"users", "Users", COL_INT}, {"category", "Category", COL_TEXT},
    };

    pages_picker(b, doc, "/", "");
    SUMMARY(b, "summary", json_object_get(doc, "summary"), sum);
    hb_lit(b, "<h2>Top users</h2>\n");
    TABLE(b, "top-users", "top_users", json_object_get(doc, "top_users"), users, doc);
    hb_lit(b, "<h2>Top categories</h2>\n");
    TABLE(b, "top-categories", "top_categories", json_object_get(doc, "top_categories"), cats, doc);
    hb_lit(b, "<h2>Top blocked hosts</h2>\n");
    TABLE(b, "top-blocked-hosts", "top_blocked_hosts", json_object_get(doc, "top_blocked_hosts"), hosts, doc);
}

static void
page_user(hb_t *b, const json_t *doc)
{
    static const col_t sum[] = {
        {"requests", "Requests", COL_INT}, {"bytes", "Bytes", COL_INT},
        {"blocked", "Blocked", COL_INT}, {"first_seen", "First seen", COL_TIME_MS},
        {"last_seen", "Last seen", COL_TIME_MS},
    };
    static const col_t hosts[] = {
        {"host", "Host", COL_HOST}, {"requests", "Requests", COL_INT},
        {"bytes", "Bytes", COL_INT}, {"blocked", "Blocked", COL_INT},
    };
    static const col_t cats[] = {
        {"category", "Category", COL_TEXT}, {"requests", "Requests", COL_INT},
        {"bytes", "Bytes", COL_INT}, {"blocked", "Blocked", COL_INT},
    };
    static const col_t blocks[] = {
        {"time", "Time", COL_TIME_MS}, {"host", "Host", COL_TEXT}, {"url", "URL", COL_URL},
        {"category", "Category", COL_TEXT}, {"rule", "Rule", COL_TEXT},
        {"decision_tag", "Decision", COL_TEXT},
    };
    const json_t *d = json_object_get(doc, "detail");
    hb_t extra = {0};

    hb_lit(&extra, "&amp;name=");
    hb_url(&extra, jstr(d, "user"));
    hb_lit(b, "<p>User <b id=\"user\">");
    hb_esc(b, jstr(d, "user"));
    hb_lit(b, "</b> (<a href=\"/search?user=");
    hb_url(b, jstr(d, "user"));
    hb_lit(b, "&amp;range=");
    hb_url(b, jstr(doc, "range"));
    hb_lit(b, "&amp;loc=");
    hb_url(b, jstr(doc, "location"));
    hb_lit(b, "\">transactions</a>)</p>\n");
    pages_picker(b, doc, "/user", extra.bad || extra.p == NULL ? "" : extra.p);
    free(extra.p);
    SUMMARY(b, "summary", d, sum);
    hb_lit(b, "<h2>Hosts</h2>\n");
    TABLE(b, "hosts", "hosts", json_object_get(d, "hosts"), hosts, doc);
    hb_lit(b, "<h2>Categories</h2>\n");
    TABLE(b, "categories", "categories", json_object_get(d, "categories"), cats, doc);
    hb_lit(b, "<h2>Blocked requests</h2>\n");
    TABLE(b, "blocks", "blocks", json_object_get(d, "blocks"), blocks, doc);
}

static void
page_search(hb_t *b, const json_t *doc)
{
    static const col_t cols[] = {
        {"time", "Time", COL_TIME_MS}, {"client", "Client", COL_TEXT},
        {"user", "User", COL_USER}, {"remote", "Remote", COL_BOOL},
        {"method", "Method", COL_TEXT}, {"url", "URL", COL_URL},
        {"status", "Status", COL_INT}, {"bytes", "Bytes", COL_INT},
        {"decision", "Decision", COL_TEXT}, {"category", "Category", COL_TEXT},
        {"rule", "Rule", COL_TEXT}, {"access_policy", "Policy", COL_TEXT},
    };
    static const char *const decisions[] = {"allow", "block", "monitor", "auth",
                                            "refuse_unidentified", "none"};
    static const char *const keys[] = {"user", "host", "category", "client", "decision"};
    const json_t *f = json_object_get(doc, "filters"), *res = json_object_get(doc, "result");
    long long page = jint(doc, "page_number");
    hb_t extra = {0};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (jstr(f, keys[i])[0] != '\0') {
            hb_lit(&extra, "&amp;");
            hb_lit(&extra, keys[i]);
            hb_lit(&extra, "=");
            hb_url(&extra, jstr(f, keys[i]));
        }
    pages_picker(b, doc, "/search", extra.bad || extra.p == NULL ? "" : extra.p);
    hb_lit(b, "<form method=\"get\" action=\"/search\">");
    pages_input(b, "User", "user", jstr(f, "user"));
    pages_input(b, "Host", "host", jstr(f, "host"));
    pages_input(b, "Category", "category", jstr(f, "category"));
    pages_input(b, "Client", "client", jstr(f, "client"));
    hb_lit(b, "<label>Decision <select name=\"decision\"><option value=\"\">any</option>");
    for (size_t i = 0; i < sizeof(decisions) / sizeof(decisions[0]); i++) {
        hb_lit(b, strcmp(jstr(f, "decision"), decisions[i]) == 0 ? "<option selected>"
                                                                  : "<option>");
        hb_lit(b, decisions[i]);
        hb_lit(b, "</option>");
    }
    hb_lit(b, "</select></label><input type=\"hidden\" name=\"range\" value=\"");
    hb_esc(b, jstr(doc, "range"));
    hb_lit(b, "\"><input type=\"hidden\" name=\"loc\" value=\"");
    hb_esc(b, jstr(doc, "location"));
    hb_lit(b, "\"><button type=\"submit\">Search</button></form>\n");
    TABLE(b, "transactions", "transactions", json_object_get(res, "rows"), cols, doc);
    hb_lit(b, "<p class=\"pick\">Page <span id=\"page\">");
    hb_int(b, page);
    hb_lit(b, "</span> ");
    for (int dir = -1; dir <= 1; dir += 2) {
        bool on = dir < 0 ? page > 1 : json_is_true(json_object_get(res, "more"));
        if (!on)
            continue;
        hb_lit(b, "<a href=\"/search?range=");
        hb_url(b, jstr(doc, "range"));
        hb_lit(b, "&amp;loc=");
        hb_url(b, jstr(doc, "location"));
        if (!extra.bad && extra.p != NULL)
            hb_lit(b, extra.p);
        hb_lit(b, "&amp;page=");
        hb_int(b, page + dir);
        hb_lit(b, dir < 0 ? "\">previous</a> " : "\">next</a>");
    }
    hb_lit(b, "</p>\n");
    free(extra.p);
}

/* "&amp;by=X" when the document is ordered by something else than requests. */
static const char *
by_extra(const json_t *doc, char *buf, size_t cap)
{
    const char *by = jstr(doc, "by");

    if (by[0] == '\0' || strcmp(by, "requests") == 0)
        return "";
    snprintf(buf, cap, "&amp;by=%s", strcmp(by, "bytes") == 0 ? "bytes" : "blocked");
    return buf;
}

/* "Ordered by" choices for path, keeping range and location. */
static void
by_picker(hb_t *b, const json_t *doc, const char *path)
{
    static const char *const bys[] = {"requests", "bytes", "blocked"};
    const char *by = jstr(doc, "by");

    hb_lit(b, "<p class=\"pick\">Ordered by ");
    for (size_t i = 0; i < 3; i++) {
        bool cur = strcmp(by, bys[i]) == 0;
        if (cur) {
            hb_lit(b, "<b>");
        } else {
            hb_lit(b, "<a href=\"");
            hb_lit(b, path);
            hb_lit(b, "?range=");
            hb_url(b, jstr(doc, "range"));
            hb_lit(b, "&amp;loc=");
            hb_url(b, jstr(doc, "location"));
            hb_lit(b, "&amp;by=");
            hb_lit(b, bys[i]);
            hb_lit(b, "\">");
        }
        hb_lit(b, bys[i]);
        hb_lit(b, cur ? "</b> " : "</a> ");
    }
    hb_lit(b, "</p>\n");
}

static void
page_sites(hb_t *b, const json_t *doc)
{
    static const col_t cols[] = {
        {"host", "Host", COL_HOST}, {"requests", "Requests", COL_INT},
        {"bytes", "Bytes", COL_INT}, {"blocked", "Blocked", COL_INT},
        {"users", "Users", COL_INT},
    };
    char extra[32];

    pages_picker(b, doc, "/sites", by_extra(doc, extra, sizeof(extra)));
    by_picker(b, doc, "/sites");
    TABLE(b, "sites", "sites", json_object_get(doc, "sites"), cols, doc);
}

static void
page_categories(hb_t *b, const json_t *doc)
{
    static const col_t cols[] = {
        {"category", "Category", COL_TEXT}, {"requests", "Requests", COL_INT},
        {"bytes", "Bytes", COL_INT}, {"blocked", "Blocked", COL_INT},
        {"users", "Users", COL_INT},
    };
    char extra[32];

    pages_picker(b, doc, "/categories", by_extra(doc, extra, sizeof(extra)));
    by_picker(b, doc, "/categories");
    hb_lit(b, "<p>\"-\" is the traffic no category matched.</p>\n");
    TABLE(b, "categories", "categories", json_object_get(doc, "categories"), cols, doc);
}

static void
page_blocked(hb_t *b, const json_t *doc)
{
    static const col_t sum[] = {
        {"blocked", "Blocked", COL_INT}, {"requests", "Of requests", COL_INT},
        {"users", "Users blocked", COL_INT}, {"hosts", "Hosts blocked", COL_INT},
    };
    static const col_t cats[] = {
        {"category", "Category", COL_TEXT}, {"blocked", "Blocked", COL_INT},
        {"users", "Users", COL_INT},
    };
    static const col_t pols[] = {
        {"access_policy", "Access policy", COL_TEXT}, {"rule", "Rule", COL_TEXT},
        {"blocked", "Blocked", COL_INT}, {"users", "Users", COL_INT},
    };
    static const col_t users[] = {
        {"user", "User", COL_USER}, {"blocked", "Blocked", COL_INT},
        {"remote", "Remote", COL_BOOL}, {"hosts", "Hosts", COL_INT},
    };

    pages_picker(b, doc, "/blocked", "");
    SUMMARY(b, "summary", json_object_get(doc, "summary"), sum);
    hb_lit(b, "<h2>By category</h2>\n");
    TABLE(b, "by-category", "by_category", json_object_get(doc, "by_category"), cats, doc);
    hb_lit(b, "<h2>By policy and rule</h2>\n<p>An empty policy is a request refused before "
              "any policy (an address or port not allowed).</p>\n");
    TABLE(b, "by-policy", "by_policy", json_object_get(doc, "by_policy"), pols, doc);
    hb_lit(b, "<h2>By user</h2>\n");
    TABLE(b, "by-user", "by_user", json_object_get(doc, "by_user"), users, doc);
}

#define CHART_H      120          /* bar area height in SVG units */
#define CHART_BAR    6            /* units per bucket (5 bar + 1 gap) */

/* Requests per hour as stacked bars (remote below, local above). */
static void
chart(hb_t *b, const json_t *rows)
{
    long long max = 1;
    size_t i, n = json_array_size(rows);
    const json_t *row;

    if (n == 0)
        return;
    json_array_foreach(rows, i, row)
        if (jint(row, "requests") > max)
            max = jint(row, "requests");
    hb_lit(b, "<svg class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" "
              "preserveAspectRatio=\"none\" width=\"100%\" height=\"160\" viewBox=\"0 0 ");
    hb_int(b, (long long)(n * CHART_BAR));
    hb_lit(b, " ");
    hb_int(b, CHART_H);
    hb_lit(b, "\"><title>Requests per hour: remote (dark) and local (light); the highest bar is ");
    hb_int(b, max);
    hb_lit(b, "</title>\n");
    json_array_foreach(rows, i, row) {
        long long rem = jint(row, "remote_requests"), loc = jint(row, "local_requests");
        long long hr = rem * CHART_H / max, hl = loc * CHART_H / max;
        if (rem + loc == 0)
            continue;
        hb_lit(b, "<g><title>");
        hb_time(b, jint(row, "time"));
        hb_lit(b, ": ");
        hb_int(b, rem + loc);
        hb_lit(b, " requests (");
        hb_int(b, rem);
        hb_lit(b, " remote), ");
        hb_int(b, jint(row, "blocked"));
        hb_lit(b, " blocked</title>");
        for (int part = 0; part < 2; part++) {
            long long h = part == 0 ? hr : hl, y = CHART_H - hr - (part == 0 ? 0 : hl);
            if (h == 0)
                continue;
            hb_lit(b, "<rect x=\"");
            hb_int(b, (long long)(i * CHART_BAR));
            hb_lit(b, "\" y=\"");
            hb_int(b, y);
            hb_lit(b, "\" width=\"5\" height=\"");
            hb_int(b, h);
            hb_lit(b, part == 0 ? "\" fill=\"#246\"/>" : "\" fill=\"#8ac\"/>");
        }
        hb_lit(b, "</g>\n");
    }
    hb_lit(b, "</svg>\n");
}

static void
page_timeline(hb_t *b, const json_t *doc)
{
    static const col_t cols[] = {
        {"time", "Hour from", COL_TIME_MS}, {"requests", "Requests", COL_INT},
        {"remote_requests", "Remote", COL_INT}, {"local_requests", "Local", COL_INT},
        {"bytes", "Bytes", COL_INT}, {"remote_bytes", "Remote bytes", COL_INT},
        {"local_bytes", "Local bytes", COL_INT}, {"blocked", "Blocked", COL_INT},
        {"remote_blocked", "Remote blocked", COL_INT},
        {"local_blocked", "Local blocked", COL_INT},
    };
    const json_t *rows = json_object_get(doc, "timeline");

    pages_picker(b, doc, "/timeline", "");
    chart(b, rows);
    hb_lit(b, "<p>One row per hour (hours start on the hour, UTC-aligned); the first and last "
              "count only what falls inside the range.</p>\n");
    TABLE(b, "timeline", "timeline", rows, cols, doc);
}

static void
page_locations(hb_t *b, const json_t *doc)
{
    static const col_t locs[] = {
        {"location", "Location", COL_TEXT}, {"requests", "Requests", COL_INT},
        {"requests_share", "Share", COL_PCT}, {"bytes", "Bytes", COL_INT},
        {"bytes_share", "Share", COL_PCT}, {"blocked", "Blocked", COL_INT},
        {"blocked_share", "Share", COL_PCT}, {"users", "Users", COL_INT},
    };
    static const col_t hosts[] = {
        {"host", "Host", COL_HOST}, {"requests", "Requests", COL_INT},
        {"bytes", "Bytes", COL_INT}, {"blocked", "Blocked", COL_INT},
        {"users", "Users", COL_INT},
    };

    pages_picker(b, doc, "/locations", "");
    TABLE(b, "locations", "locations", json_object_get(doc, "locations"), locs, doc);
    hb_lit(b, "<h2>Domains matched by remote users</h2>\n");
    TABLE(b, "remote-domains", "remote_domains", json_object_get(doc, "remote_domains"), hosts,
          doc);
}

const pages_entry_t pages_report[] = {
    {"dashboard", "/", "Dashboard", page_dashboard},
    {"user", "/user", "User", page_user},
    {"search", "/search", "Transactions", page_search},
    {"sites", "/sites", "Web sites", page_sites},
    {"categories", "/categories", "URL categories", page_categories},
    {"blocked", "/blocked", "Blocked requests", page_blocked},
    {"timeline", "/timeline", "Overview over time", page_timeline},
    {"locations", "/locations", "Reports by user location", page_locations},
};
const size_t pages_report_n = sizeof(pages_report) / sizeof(pages_report[0]);
