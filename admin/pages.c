/*
 * admin/pages.c: HTML from the views' documents (see pages.h). One growing
 * buffer per page; three ways to put text in it: hb_lit for the page's own
 * markup (string literals only), hb_esc for any value from a document, and
 * hb_url for a value inside a link's query (percent-encoded, which leaves
 * nothing to escape). Tables are described by column lists, so each page
 * is its columns plus a few headings; each table links to its CSV. Here:
 * the buffer, the frame, tables and figures (pages_int.h), the live pages
 * (sessions, store, trace) and the dispatch; the report pages are in
 * pages_report.c, the headends, identity map and scheduled reports in
 * pages_ops.c.
 */
#include "pages.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/grow.h"
#include "pages_int.h"

void
hb_put(hb_t *b, const char *s, size_t n)
{
    size_t cap;
    char *np;

    if (b->bad)
        return;
    cap = grow_cap(b->cap, b->len + n + 1, 4096, ADMIN_PAGE_MAX_BYTES);
    if (cap == 0) {
        b->bad = true;
        return;
    }
    if (cap != b->cap) {
        np = realloc(b->p, cap);
        if (np == NULL) {
            b->bad = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* The page's own markup. */
void
hb_lit(hb_t *b, const char *s)
{
    hb_put(b, s, strlen(s));
}

void
hb_int(hb_t *b, long long v)
{
    char t[32];
    int n = snprintf(t, sizeof(t), "%lld", v);

    hb_put(b, t, (size_t)n);
}

size_t
admin_page_escape(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;

    if (cap == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = NULL;
        size_t el;
        switch (s[i]) {
        case '&': e = "&amp;"; break;
        case '<': e = "&lt;"; break;
        case '>': e = "&gt;"; break;
        case '"': e = "&quot;"; break;
        case '\'': e = "&#39;"; break;
        default: break;
        }
        el = e ? strlen(e) : 1;
        if (o + el >= cap)
            break;
        if (e != NULL)
            memcpy(out + o, e, el);
        else
            out[o] = s[i];
        o += el;
    }
    out[o] = '\0';
    return o;
}

/* A value from a document, as text or inside a quoted attribute. */
void
hb_esc(hb_t *b, const char *s)
{
    char t[512];
    size_t n = s ? strlen(s) : 0, i = 0;

    while (i < n) {
        size_t take = n - i < 64 ? n - i : 64;   /* 64 bytes escape to at most 384 */
        size_t w = admin_page_escape(s + i, take, t, sizeof(t));
        hb_put(b, t, w);
        i += take;
    }
}

/* A value for a link's query string. */
void
hb_url(hb_t *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";

    for (; s != NULL && *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            hb_put(b, (const char *)&c, 1);
        } else {
            char t[3] = {'%', hex[c >> 4], hex[c & 15]};
            hb_put(b, t, 3);
        }
    }
}

const char *
jstr(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));

    return s != NULL ? s : "";
}

long long
jint(const json_t *o, const char *key)
{
    return (long long)json_integer_value(json_object_get(o, key));
}

void
hb_time(hb_t *b, long long ms)
{
    char t[40];
    time_t s = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0) {
        hb_lit(b, "-");
        return;
    }
    localtime_r(&s, &tm);
    strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S", &tm);
    hb_lit(b, t);
}

/* ---- the frame ---- */

static const char STYLE[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#222;background:#fafafa}"
    "header{background:#234;color:#fff;padding:.5em 1em;display:flex;flex-wrap:wrap;gap:1em;"
    "align-items:baseline}header a{color:#cde;text-decoration:none}header .who{margin-left:auto}"
    "main{padding:1em;max-width:80em}h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.5em}"
    "table{border-collapse:collapse;background:#fff;margin:.5em 0;max-width:100%;"
    "display:block;overflow-x:auto}"
    "th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums}th{background:#eef}"
    ".sum{display:flex;flex-wrap:wrap;gap:.5em;padding:0;margin:.5em 0}"
    ".sum div{background:#fff;border:1px solid #ccc;padding:.4em .8em}"
    ".sum dt{font-size:.85em;color:#555}.sum dd{margin:0;font-size:1.3em}"
    ".pick a,.pick b{margin-right:.6em}.err{color:#a00}"
    "form label{display:inline-block;margin:.2em 1em .2em 0}input[type=text]{width:16em}"
    ".url{word-break:break-all}.csv{margin:.2em 0;font-size:.85em}"
    "svg.chart{background:#fff;border:1px solid #ccc;max-width:100%}"
    "header form{display:inline;margin:0}input[type=password]{width:16em}"
    "#login label{display:block;margin:.5em 0}";

static const struct {
    const char *page, *path, *label;
} NAV[] = {
    {"dashboard", "/", "Dashboard"},
    {"sessions", "/sessions", "Remote sessions"},
    {"search", "/search", "Transactions"},
    {"sites", "/sites", "Web sites"},
    {"categories", "/categories", "URL categories"},
    {"blocked", "/blocked", "Blocked"},
    {"timeline", "/timeline", "Over time"},
    {"locations", "/locations", "By location"},
    {"map", "/map", "Identity map"},
    {"headends", "/headends", "Headends"},
    {"archive", "/archive", "Scheduled reports"},
    {"store", "/store", "Store"},
    {"trace", "/trace", "Policy trace"},
};

static void
frame_open(hb_t *b, const char *page, const char *title, const char *user)
{
    hb_lit(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
              "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
              "<title>musproxy: ");
    hb_esc(b, title);
    hb_lit(b, "</title><style>");
    hb_lit(b, STYLE);
    hb_lit(b, "</style></head><body><header><b>musproxy</b>");
    if (user != NULL && user[0] != '\0') {
        hb_lit(b, "<nav>");
        for (size_t i = 0; i < sizeof(NAV) / sizeof(NAV[0]); i++) {
            hb_lit(b, strcmp(NAV[i].page, page) == 0 ? " <a aria-current=\"page\" href=\""
                                                     : " <a href=\"");
            hb_lit(b, NAV[i].path);
            hb_lit(b, "\">");
            hb_lit(b, NAV[i].label);
            hb_lit(b, "</a>");
        }
        hb_lit(b, "</nav><span class=\"who\">");
        hb_esc(b, user);
        hb_lit(b, "</span>");
        if (b->csrf != NULL) {
            hb_lit(b, "<form class=\"logout\" method=\"post\" action=\"/logout\">");
            pages_csrf_field(b);
            hb_lit(b, "<button type=\"submit\">Log out</button></form>");
        }
    }
    hb_lit(b, "</header><main><h1>");
    hb_esc(b, title);
    hb_lit(b, "</h1>\n");
}

static char *
frame_close(hb_t *b, size_t *len)
{
    hb_lit(b, "</main></body></html>\n");
    if (b->bad) {
        free(b->p);
        return NULL;
    }
    *len = b->len;
    return b->p;
}

/* Range and location choices as links to path (keeping extra, an already
 * encoded "&k=v" tail). */
void
pages_picker(hb_t *b, const json_t *doc, const char *path, const char *extra)
{
    static const char *const ranges[][2] = {
        {"today", "Today"}, {"24h", "24 h"}, {"7d", "7 days"}, {"30d", "30 days"},
    };
    static const char *const locs[][2] = {{"all", "All"}, {"remote", "Remote"}, {"local", "Local"}};
    const char *range = jstr(doc, "range"), *loc = jstr(doc, "location");

    hb_lit(b, "<p class=\"pick\">");
    for (size_t i = 0; i < 4; i++) {
        bool cur = strcmp(range, ranges[i][0]) == 0;
        hb_lit(b, cur ? "<b>" : "<a href=\"");
        if (!cur) {
            hb_lit(b, path);
            hb_lit(b, "?range=");
            hb_lit(b, ranges[i][0]);
            hb_lit(b, "&amp;loc=");
            hb_url(b, loc);
            hb_lit(b, extra);
            hb_lit(b, "\">");
        }
        hb_lit(b, ranges[i][1]);
        hb_lit(b, cur ? "</b>" : "</a>");
    }
    hb_lit(b, " | ");
    for (size_t i = 0; i < 3; i++) {
        bool cur = strcmp(loc, locs[i][0]) == 0;
        hb_lit(b, cur ? "<b>" : "<a href=\"");
        if (!cur) {
            hb_lit(b, path);
            hb_lit(b, "?range=");
            hb_url(b, range);
            hb_lit(b, "&amp;loc=");
            hb_lit(b, locs[i][0]);
            hb_lit(b, extra);
            hb_lit(b, "\">");
        }
        hb_lit(b, locs[i][1]);
        hb_lit(b, cur ? "</b>" : "</a>");
    }
    hb_lit(b, "</p>\n<p>From ");
    hb_time(b, jint(doc, "from"));
    hb_lit(b, " to ");
    hb_time(b, jint(doc, "to"));
    hb_lit(b, "</p>\n");
}

/* ---- tables ---- */

/* A JSON value as text (objects and arrays compactly, escaped). */
void
hb_value(hb_t *b, const json_t *v)
{
    char *t;

    switch (json_typeof(v)) {
    case JSON_STRING: hb_esc(b, json_string_value(v)); break;
    case JSON_INTEGER: hb_int(b, (long long)json_integer_value(v)); break;
    case JSON_TRUE: hb_lit(b, "yes"); break;
    case JSON_FALSE: hb_lit(b, "no"); break;
    case JSON_REAL: {
        char n[48];
        snprintf(n, sizeof(n), "%.3f", json_real_value(v));
        hb_lit(b, n);
        break;
    }
    case JSON_OBJECT:
    case JSON_ARRAY:
        t = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER);
        hb_esc(b, t);
        free(t);
        break;
    default: hb_lit(b, "-"); break;
    }
}

static void
cell(hb_t *b, const json_t *row, const col_t *c, const json_t *doc)
{
    const json_t *v = json_object_get(row, c->key);
    bool num = c->kind == COL_INT || c->kind == COL_PCT;

    hb_lit(b, num ? "<td class=\"n\">" : c->kind == COL_URL ? "<td class=\"url\">" : "<td>");
    if (v == NULL || json_is_null(v)) {
        hb_lit(b, "-");
    } else if (c->kind == COL_TIME_MS) {
        hb_time(b, (long long)json_integer_value(v));
    } else if (c->kind == COL_TIME_S) {
        hb_time(b, (long long)json_integer_value(v) * 1000);
    } else if (c->kind == COL_PCT && json_is_number(v)) {
        char t[32];
        snprintf(t, sizeof(t), "%.1f %%", json_number_value(v));
        hb_lit(b, t);
    } else if (c->kind == COL_BOOL) {
        hb_lit(b, json_is_true(v) || json_integer_value(v) != 0 ? "yes" : "no");
    } else if ((c->kind == COL_USER || c->kind == COL_HOST) && json_is_string(v) &&
               json_string_length(v) > 0) {
        hb_lit(b, c->kind == COL_USER ? "<a href=\"/user?name=" : "<a href=\"/search?host=");
        hb_url(b, json_string_value(v));
        hb_lit(b, "&amp;range=");
        hb_url(b, jstr(doc, "range")[0] ? jstr(doc, "range") : "24h");
        hb_lit(b, "&amp;loc=");
        hb_url(b, jstr(doc, "location")[0] ? jstr(doc, "location") : "all");
        hb_lit(b, "\">");
        hb_esc(b, json_string_value(v));
        hb_lit(b, "</a>");
    } else if (c->kind == COL_TEXT && json_is_string(v) && json_string_length(v) == 0) {
        hb_lit(b, "-");
    } else {
        hb_value(b, v);
    }
    hb_lit(b, "</td>");
}

void
pages_table(hb_t *b, const char *id, const char *csv, const json_t *rows, const col_t *cols,
            size_t ncols, const json_t *doc)
{
    size_t i;
    const json_t *row;

    pages_csv_link(b, csv);
    if (!json_is_array(rows) || json_array_size(rows) == 0) {
        hb_lit(b, "<p id=\"");
        hb_lit(b, id);
        hb_lit(b, "\">Nothing in this range.</p>\n");
        return;
    }
    hb_lit(b, "<table id=\"");
    hb_lit(b, id);
    hb_lit(b, "\"><thead><tr>");
    for (size_t k = 0; k < ncols; k++) {
        hb_lit(b, "<th>");
        hb_lit(b, cols[k].label);
        hb_lit(b, "</th>");
    }
    hb_lit(b, "</tr></thead><tbody>\n");
    json_array_foreach(rows, i, row) {
        hb_lit(b, "<tr>");
        for (size_t k = 0; k < ncols; k++)
            cell(b, row, &cols[k], doc);
        hb_lit(b, "</tr>\n");
    }
    hb_lit(b, "</tbody></table>\n");
}


/* Figures as a row of boxes, each <dd id="key">. */
void
pages_summary(hb_t *b, const char *csv, const json_t *obj, const col_t *cols, size_t ncols)
{
    hb_lit(b, "<dl class=\"sum\">");
    for (size_t k = 0; k < ncols; k++) {
        const json_t *v = json_object_get(obj, cols[k].key);
        hb_lit(b, "<div><dt>");
        hb_lit(b, cols[k].label);
        hb_lit(b, "</dt><dd id=\"");
        hb_lit(b, cols[k].key);
        hb_lit(b, "\">");
        if (cols[k].kind == COL_TIME_MS)
            hb_time(b, (long long)json_integer_value(v));
        else if (cols[k].kind == COL_TIME_S)
            hb_time(b, (long long)json_integer_value(v) * 1000);
        else if (v == NULL || json_is_null(v))
            hb_lit(b, "-");
        else
            hb_value(b, v);
        hb_lit(b, "</dd></div>");
    }
    hb_lit(b, "</dl>\n");
    pages_csv_link(b, csv);
}


/* A link to table csv of this page as CSV (nothing if csv is NULL). */
void
pages_csv_link(hb_t *b, const char *csv)
{
    if (csv == NULL || b->path == NULL)
        return;
    hb_lit(b, "<p class=\"csv\"><a id=\"csv-");
    hb_lit(b, csv);
    hb_lit(b, "\" href=\"");
    hb_lit(b, b->path);
    hb_lit(b, "?");
    hb_esc(b, b->self);
    hb_lit(b, b->self != NULL && b->self[0] != '\0' ? "&amp;format=csv&amp;table="
                                                   : "format=csv&amp;table=");
    hb_lit(b, csv);
    hb_lit(b, "\">CSV</a></p>\n");
}

/* ---- the pages ---- */

static void
page_sessions(hb_t *b, const json_t *doc)
{
    static const col_t now[] = {
        {"name", "User", COL_USER}, {"domain", "Domain", COL_TEXT}, {"type", "Type", COL_TEXT},
        {"ip", "VPN address", COL_TEXT}, {"client_ip", "Public address", COL_TEXT},
        {"headend", "Headend", COL_TEXT}, {"started", "Since", COL_TIME_S},
        {"tunnel", "Tunnel", COL_TEXT}, {"stale", "Stale", COL_BOOL},
    };
    static const col_t hist[] = {
        {"user", "User", COL_USER}, {"domain", "Domain", COL_TEXT}, {"type", "Type", COL_TEXT},
        {"vpn_addr", "VPN address", COL_TEXT}, {"public_addr", "Public address", COL_TEXT},
        {"headend", "Headend", COL_TEXT}, {"start", "Start", COL_TIME_MS},
        {"end", "End", COL_TIME_MS}, {"end_reason", "End reason", COL_TEXT},
    };
    const char *serr = jstr(doc, "store_error");

    hb_lit(b, "<h2>Connected now</h2>\n<p>From the identity map the headends feed: "
              "<span id=\"connected_total\">");
    hb_int(b, jint(doc, "connected_total"));
    hb_lit(b, "</span> addresses.</p>\n");
    TABLE(b, "connected", "connected", json_object_get(doc, "connected"), now, doc);
    pages_picker(b, doc, "/sessions", "");
    if (serr[0] != '\0') {
        hb_lit(b, "<p class=\"err\">Session history unavailable: ");
        hb_esc(b, serr);
        hb_lit(b, "</p>\n");
    }
    hb_lit(b, "<h2>Open sessions (store)</h2>\n");
    TABLE(b, "open-sessions", "open", json_object_get(doc, "open"), hist, doc);
    hb_lit(b, "<h2>Recent sessions</h2>\n");
    TABLE(b, "recent-sessions", "recent", json_object_get(doc, "recent"), hist, doc);
}

void
pages_csrf_field(hb_t *b)
{
    if (b->csrf == NULL)
        return;
    hb_lit(b, "<input type=\"hidden\" name=\"csrf\" value=\"");
    hb_esc(b, b->csrf);
    hb_lit(b, "\">");
}

/* A text input named key holding the filter's value. */
void
pages_input(hb_t *b, const char *label, const char *key, const char *value)
{
    hb_lit(b, "<label>");
    hb_lit(b, label);
    hb_lit(b, " <input type=\"text\" name=\"");
    hb_lit(b, key);
    hb_lit(b, "\" value=\"");
    hb_esc(b, value);
    hb_lit(b, "\"></label>");
}

static void
page_store(hb_t *b, const json_t *doc)
{
    static const col_t cols[] = {
        {"open", "Open", COL_BOOL}, {"submitted", "Submitted", COL_INT},
        {"written", "Written", COL_INT}, {"queued", "Queued", COL_INT},
        {"dropped", "Dropped (queue full)", COL_INT}, {"lost", "Lost", COL_INT},
        {"errors", "Errors", COL_INT}, {"sessions_written", "Sessions written", COL_INT},
        {"retention_deleted", "Deleted by retention", COL_INT},
        {"db_bytes", "File bytes", COL_INT}, {"last_error_ms", "Last error at", COL_TIME_MS},
        {"last_error", "Last error", COL_TEXT},
    };
    const json_t *st = json_object_get(doc, "store");

    hb_lit(b, "<p>File <code id=\"path\">");
    hb_esc(b, jstr(doc, "path"));
    hb_lit(b, "</code></p>\n");
    if (!json_is_object(st))
        hb_lit(b, "<p id=\"store\">No transaction store is configured (store.path).</p>\n");
    else
        SUMMARY(b, NULL, st, cols);
}

static void
page_trace(hb_t *b, const json_t *doc)
{
    const json_t *rq = json_object_get(doc, "request"), *ans = json_object_get(doc, "answer");
    const char *key;
    const json_t *v;

    hb_lit(b, "<p>What the proxy would do with a request from this address, decided by the "
              "same code as live traffic (<code>musctl trace</code>).</p>\n"
              "<form method=\"post\" action=\"/trace\">");
    pages_csrf_field(b);
    pages_input(b, "Client address", "ip", jstr(rq, "ip"));
    pages_input(b, "URL", "url", jstr(rq, "url"));
    pages_input(b, "Method", "method", jstr(rq, "method"));
    hb_lit(b, "<button type=\"submit\">Trace</button></form>\n");
    if (!json_is_object(ans))
        return;
    hb_lit(b, "<h2>Decision</h2>\n<table id=\"trace\"><tbody>\n");
    json_object_foreach((json_t *)ans, key, v) {
        hb_lit(b, "<tr><th>");
        hb_esc(b, key);
        hb_lit(b, "</th><td id=\"trace-");
        hb_esc(b, key);
        hb_lit(b, "\">");
        hb_value(b, v);
        hb_lit(b, "</td></tr>\n");
    }
    hb_lit(b, "</tbody></table>\n");
}

/* The live pages; the reports' are in pages_report.c. */
static const pages_entry_t live_pages[] = {
    {"sessions", "/sessions", "Remote sessions", page_sessions},
    {"store", "/store", "Transaction store", page_store},
    {"trace", "/trace", "Policy trace", page_trace},
};

char *
admin_page_render(const json_t *doc, const char *user, const char *csrf, const char *self,
                  size_t *len)
{
    const char *page = jstr(doc, "page");
    hb_t b = {.self = self, .csrf = csrf};
    const pages_entry_t *e = NULL;

    for (size_t i = 0; i < sizeof(live_pages) / sizeof(live_pages[0]); i++)
        if (strcmp(page, live_pages[i].page) == 0)
            e = &live_pages[i];
    for (size_t i = 0; e == NULL && i < pages_report_n; i++)
        if (strcmp(page, pages_report[i].page) == 0)
            e = &pages_report[i];
    for (size_t i = 0; e == NULL && i < pages_ops_n; i++)
        if (strcmp(page, pages_ops[i].page) == 0)
            e = &pages_ops[i];
    if (e == NULL)
        return admin_page_error(500, "unknown page", user, csrf, len);
    b.path = e->path;
    frame_open(&b, page, e->title, user);
    e->fn(&b, doc);
    return frame_close(&b, len);
}

char *
admin_page_error(int status, const char *msg, const char *user, const char *csrf, size_t *len)
{
    hb_t b = {.csrf = csrf};
    char title[32];

    snprintf(title, sizeof(title), "Error %d", status);
    frame_open(&b, "", title, user);
    hb_lit(&b, "<p class=\"err\" id=\"error\">");
    hb_esc(&b, msg);
    hb_lit(&b, "</p>\n");
    return frame_close(&b, len);
}

char *
admin_page_login(const char *token, const char *msg, size_t *len)
{
    hb_t b = {.csrf = token};

    frame_open(&b, "", "Log in", NULL);
    if (msg != NULL) {
        hb_lit(&b, "<p class=\"err\" id=\"error\">");
        hb_esc(&b, msg);
        hb_lit(&b, "</p>\n");
    }
    hb_lit(&b, "<form id=\"login\" method=\"post\" action=\"/login\">");
    pages_csrf_field(&b);
    hb_lit(&b, "<label>User <input type=\"text\" name=\"user\" autocomplete=\"username\" "
               "required autofocus></label><label>Password <input type=\"password\" "
               "name=\"password\" autocomplete=\"current-password\" required></label>"
               "<button type=\"submit\">Log in</button></form>\n");
    return frame_close(&b, len);
}
