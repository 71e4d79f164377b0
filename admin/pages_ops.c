/*
 * admin/pages_ops.c: the operator's pages (see pages_int.h): the headend
 * sessions with a "Test connection" form per headend (a POST carrying the
 * CSRF token) and the test's answer; the identity map with its search box
 * and pages; and the scheduled reports' files with their download links.
 * Every value from a document is escaped, every value in a link encoded.
 * No I/O.
 */
#include <stdio.h>
#include <string.h>

#include "pages_int.h"

/* The answer of a connection test: ok with the round trip, or the failure. */
static void
test_result(hb_t *b, const json_t *t)
{
    bool ok = json_is_true(json_object_get(t, "ok"));

    hb_lit(b, ok ? "<h2>Connection test</h2>\n<div id=\"test-result\" class=\"ok\">"
                 : "<h2>Connection test</h2>\n<div id=\"test-result\" class=\"err\">");
    hb_lit(b, "<p><b id=\"test-headend\">");
    hb_esc(b, jstr(t, "headend"));
    hb_lit(b, "</b>: <b id=\"test-outcome\">");
    hb_esc(b, jstr(t, "outcome"));
    hb_lit(b, "</b>");
    if (ok) {
        hb_lit(b, " in <span id=\"test-rtt\">");
        hb_int(b, jint(t, "rtt_ms"));
        hb_lit(b, "</span> ms");
    }
    hb_lit(b, "</p><p id=\"test-message\">");
    hb_esc(b, jstr(t, "message"));
    hb_lit(b, "</p><table><tbody><tr><th>Address</th><td id=\"test-address\">");
    hb_esc(b, jstr(t, "address"));
    hb_lit(b, "</td></tr><tr><th>Headend identity</th><td id=\"test-server\">");
    hb_esc(b, jstr(t, "server_id"));
    hb_lit(b, "</td></tr><tr><th>Certificate subject</th><td id=\"test-subject\">");
    hb_esc(b, jstr(t, "subject"));
    hb_lit(b, "</td></tr><tr><th>Issuer</th><td id=\"test-issuer\">");
    hb_esc(b, jstr(t, "issuer"));
    hb_lit(b, "</td></tr><tr><th>TLS</th><td id=\"test-tls\">");
    hb_esc(b, jstr(t, "tls"));
    hb_lit(b, "</td></tr><tr><th>TCP connect</th><td id=\"test-connect\">");
    hb_int(b, jint(t, "connect_ms"));
    hb_lit(b, " ms</td></tr></tbody></table></div>\n");
}

/* musproxy's own RADIUS listener (status.radius, nested as musctl shows
 * it), as one summary whose ids are "radius-" and the counter's path. */
static void
page_radius(hb_t *b, const json_t *r)
{
    static const col_t cols[] = {
        {"radius-listening", "Listening", COL_BOOL}, {"radius-clients", "Clients", COL_INT},
        {"radius-received", "Packets received", COL_INT},
        {"radius-responses", "Responses sent", COL_INT},
        {"radius-applied", "Map changes", COL_INT}, {"radius-duplicates", "Duplicates", COL_INT},
        {"radius-start", "Start", COL_INT}, {"radius-interim", "Interim-Update", COL_INT},
        {"radius-stop", "Stop", COL_INT}, {"radius-accounting_on", "Accounting-On", COL_INT},
        {"radius-accounting_off", "Accounting-Off", COL_INT},
        {"radius-wrong_secret", "Bad authenticator", COL_INT},
        {"radius-malformed", "Malformed", COL_INT},
        {"radius-unknown_client", "Unknown client", COL_INT},
        {"radius-not_applied", "Not applied", COL_INT},
        {"radius-sessions", "Sessions", COL_INT},
        {"radius-removed_stale", "Stale sessions removed", COL_INT},
        {"radius-last_event", "Last event", COL_TIME_S},
        {"radius-last_error", "Last error", COL_TEXT},
    };
    static const char *const groups[] = {"dropped", "status_types", "sessions"};
    json_t *flat = json_object();
    const char *key;
    json_t *v;
    char id[64];

    if (flat == NULL)
        return;
    json_object_foreach((json_t *)r, key, v) {
        if (json_is_object(v))
            continue;
        snprintf(id, sizeof(id), "radius-%s", key);
        json_object_set(flat, id, v);
    }
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++)
        json_object_foreach(json_object_get(r, groups[g]), key, v) {
            snprintf(id, sizeof(id), "radius-%s", strcmp(key, "now") == 0 ? "sessions" : key);
            json_object_set(flat, id, v);
        }
    hb_lit(b, "<h2>RADIUS accounting <span id=\"radius-name\">");
    hb_esc(b, jstr(r, "name"));
    hb_lit(b, "</span></h2>\n");
    SUMMARY(b, NULL, flat, cols);
    json_decref(flat);
}

static void
page_headends(hb_t *b, const json_t *doc)
{
    static const col_t cols[] = {
        {"name", "Headend", COL_TEXT}, {"state", "State", COL_TEXT},
        {"address", "Address", COL_TEXT}, {"connected_since", "Connected since", COL_TIME_S},
        {"last_event", "Last event", COL_TIME_S}, {"events_applied", "Events", COL_INT},
        {"reconnects", "Reconnects", COL_INT}, {"snapshots", "Snapshots", COL_INT},
        {"entries", "Map entries", COL_INT}, {"stale_entries", "Stale", COL_INT},
        {"last_error", "Last error", COL_TEXT},
    };
    static const col_t map[] = {
        {"entries", "Entries", COL_INT}, {"stale_entries", "Stale entries", COL_INT},
        {"adds", "Adds", COL_INT}, {"dels", "Deletes", COL_INT},
        {"conflicts", "Conflicts", COL_INT}, {"snapshots", "Snapshots", COL_INT},
        {"expired", "Expired", COL_INT},
    };
    const json_t *hs = json_object_get(doc, "headends"), *h, *t = json_object_get(doc, "test");
    size_t i;

    if (!json_is_array(hs) || json_array_size(hs) == 0) {
        hb_lit(b, "<p id=\"headends\">No headend is configured (mus.headends).</p>\n");
    } else {
        TABLE(b, "headends", NULL, hs, cols, doc);
        if (b->csrf != NULL) {
            hb_lit(b, "<p>A test opens a connection of its own (TLS with the configured CA, "
                      "the password, MUS/1 authentication) and leaves the live session "
                      "alone.</p>\n<p class=\"tests\">");
            json_array_foreach(hs, i, h) {
                hb_lit(b, "<form method=\"post\" action=\"/headends\">");
                pages_csrf_field(b);
                hb_lit(b, "<input type=\"hidden\" name=\"headend\" value=\"");
                hb_esc(b, jstr(h, "name"));
                hb_lit(b, "\"><button type=\"submit\" id=\"test-");
                hb_esc(b, jstr(h, "name"));
                hb_lit(b, "\">Test connection: ");
                hb_esc(b, jstr(h, "name"));
                hb_lit(b, "</button></form> ");
            }
            hb_lit(b, "</p>\n");
        }
    }
    if (json_is_object(t))
        test_result(b, t);
    if (json_is_object(json_object_get(doc, "radius")))
        page_radius(b, json_object_get(doc, "radius"));
    hb_lit(b, "<h2>Identity map</h2>\n");
    SUMMARY(b, NULL, json_object_get(doc, "map"), map);
}

/* A link to page n of the map for the same search. */
static void
map_link(hb_t *b, const char *q, long long n, const char *id, const char *label)
{
    hb_lit(b, " <a id=\"");
    hb_lit(b, id);
    hb_lit(b, "\" href=\"/map?q=");
    hb_url(b, q);
    hb_lit(b, "&amp;page=");
    hb_int(b, n);
    hb_lit(b, "\">");
    hb_lit(b, label);
    hb_lit(b, "</a>");
}

static void
page_map(hb_t *b, const json_t *doc)
{
    static const col_t cols[] = {
        {"ip", "VPN address", COL_TEXT}, {"name", "User", COL_USER},
        {"domain", "Domain", COL_TEXT}, {"type", "Type", COL_TEXT},
        {"groups", "Groups", COL_TEXT}, {"headend", "Headend", COL_TEXT},
        {"started", "Since", COL_TIME_S}, {"stale", "Stale", COL_BOOL},
    };
    const char *q = jstr(doc, "q");
    long long page = jint(doc, "page_number"), pages = jint(doc, "pages");

    hb_lit(b, "<form method=\"get\" action=\"/map\" id=\"map-search\">");
    pages_input(b, "User or address", "q", q);
    hb_lit(b, "<button type=\"submit\">Search</button></form>\n<p><span id=\"matched\">");
    hb_int(b, jint(doc, "matched"));
    hb_lit(b, "</span> of <span id=\"total\">");
    hb_int(b, jint(doc, "total"));
    hb_lit(b, "</span> addresses match; page <span id=\"page-number\">");
    hb_int(b, page);
    hb_lit(b, "</span> of <span id=\"pages\">");
    hb_int(b, pages > 0 ? pages : 1);
    hb_lit(b, "</span>.");
    if (page > 1)
        map_link(b, q, page - 1, "prev", "Previous");
    if (page < pages)
        map_link(b, q, page + 1, "next", "Next");
    hb_lit(b, "</p>\n");
    TABLE(b, "map", NULL, json_object_get(doc, "entries"), cols, doc);
}

static void
page_archive(hb_t *b, const json_t *doc)
{
    const json_t *files = json_object_get(doc, "files"), *f;
    size_t i;

    if (jstr(doc, "dir")[0] == '\0') {
        hb_lit(b, "<p id=\"archive\">No scheduled reports: the store or reports.archive is "
                  "off.</p>\n");
        return;
    }
    hb_lit(b, "<p>Written after each UTC day, ISO week and month into <code id=\"dir\">");
    hb_esc(b, jstr(doc, "dir"));
    hb_lit(b, "</code>: <span id=\"total\">");
    hb_int(b, jint(doc, "total"));
    hb_lit(b, "</span> files.</p>\n");
    if (!json_is_array(files) || json_array_size(files) == 0) {
        hb_lit(b, "<p id=\"archive\">None yet: the first ones follow the end of the current "
                  "day.</p>\n");
        return;
    }
    hb_lit(b, "<table id=\"archive\"><thead><tr><th>Schedule</th><th>Period</th><th>Report"
              "</th><th>Bytes</th><th>Written</th><th>File</th></tr></thead><tbody>\n");
    json_array_foreach(files, i, f) {
        hb_lit(b, "<tr><td>");
        hb_esc(b, jstr(f, "schedule"));
        hb_lit(b, "</td><td>");
        hb_esc(b, jstr(f, "period"));
        hb_lit(b, "</td><td>");
        hb_esc(b, jstr(f, "report"));
        hb_lit(b, "</td><td class=\"n\">");
        hb_int(b, jint(f, "bytes"));
        hb_lit(b, "</td><td>");
        hb_time(b, jint(f, "modified"));
        hb_lit(b, "</td><td><a href=\"/archive?file=");
        hb_url(b, jstr(f, "file"));
        hb_lit(b, "\">");
        hb_esc(b, jstr(f, "file"));
        hb_lit(b, "</a></td></tr>\n");
    }
    hb_lit(b, "</tbody></table>\n");
}

const pages_entry_t pages_ops[] = {
    {"headends", "/headends", "Headend sessions", page_headends},
    {"map", "/map", "Identity map", page_map},
    {"archive", "/archive", "Scheduled reports", page_archive},
};
const size_t pages_ops_n = sizeof(pages_ops) / sizeof(pages_ops[0]);
