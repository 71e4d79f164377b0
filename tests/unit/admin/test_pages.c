/*
 * tests/unit/admin/test_pages.c: the admin UI's HTML (admin/pages.c) from
 * hand-made documents: hostile values come out escaped in text, in
 * attributes and percent-encoded in links; the numbers are where the
 * integration test looks for them.
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <string.h>

#include "../../../admin/pages.h"

#define EVIL "<script>alert('x\")</script>&"

Test(pages, escape)
{
    char out[128];

    cr_assert_eq(admin_page_escape(EVIL, strlen(EVIL), out, sizeof(out)), strlen(out));
    cr_expect_str_eq(out, "&lt;script&gt;alert(&#39;x&quot;)&lt;/script&gt;&amp;");
    /* cut to whole entities */
    cr_expect_eq(admin_page_escape("a<b", 3, out, 5), 1);
    cr_expect_str_eq(out, "a");
}

Test(pages, dashboard_escapes_every_value)
{
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:{s:i, s:i, s:i, s:i, s:i, s:i},"
        " s:[{s:s, s:i, s:i, s:i, s:i}], s:[{s:s, s:i, s:i, s:i, s:i}], s:[{s:s, s:i, s:i, s:s}]}",
        "page", "dashboard", "range", "24h", "location", "all", "from", (json_int_t)1, "to",
        (json_int_t)2, "summary", "requests", 7, "blocked", 3, "bytes", 1234, "users", 2,
        "remote_requests", 4, "local_requests", 3,
        "top_users", "user", EVIL, "requests", 5, "bytes", 1000, "blocked", 1, "remote", 1,
        "top_categories", "category", "<i>cat</i>", "requests", 3, "bytes", 9, "blocked", 3,
        "users", 1,
        "top_blocked_hosts", "host", "a\"b.example", "blocked", 3, "users", 1, "category", "x");
    size_t len = 0;
    char *html;

    cr_assert_not_null(doc);
    html = admin_page_render(doc, "adm<in>", NULL, "range=24h&user=a%22b", &len);
    cr_assert_not_null(html);
    cr_expect_eq(strlen(html), len);
    cr_expect_null(strstr(html, "<script"), "raw script tag in the page");
    cr_expect_null(strstr(html, "<i>cat"));
    cr_expect_null(strstr(html, "adm<in>"));
    cr_expect_not_null(strstr(html, ">&lt;script&gt;alert(&#39;x&quot;)&lt;/script&gt;&amp;</a>"));
    cr_expect_not_null(strstr(html, "href=\"/user?name=%3Cscript%3Ealert%28%27x%22%29%3C%2Fscript%3E%26&amp;range=24h&amp;loc=all\""));
    cr_expect_not_null(strstr(html, "href=\"/search?host=a%22b.example&amp;"));
    cr_expect_not_null(strstr(html, "&lt;i&gt;cat&lt;/i&gt;"));
    cr_expect_not_null(strstr(html, "adm&lt;in&gt;"));
    cr_expect_not_null(strstr(html, "<dd id=\"requests\">7</dd>"));
    cr_expect_not_null(strstr(html, "<dd id=\"blocked\">3</dd>"));
    cr_expect_not_null(strstr(html, "<dd id=\"bytes\">1234</dd>"));
    cr_expect_not_null(strstr(html, "<dd id=\"users\">2</dd>"));
    cr_expect_not_null(strstr(html, "</a></td><td class=\"n\">5</td><td class=\"n\">1000</td>"
                                    "<td class=\"n\">1</td><td>yes</td></tr>"));
    /* each table links to its CSV with the page's own parameters, escaped */
    cr_expect_not_null(strstr(html, "<a id=\"csv-top_users\" href=\"/?range=24h&amp;user=a%22b"
                                    "&amp;format=csv&amp;table=top_users\">CSV</a>"), "%s", html);
    cr_expect_not_null(strstr(html, "id=\"csv-summary\""));
    cr_expect_not_null(strstr(html, "id=\"csv-top_categories\""));
    cr_expect_not_null(strstr(html, "id=\"csv-top_blocked_hosts\""));
    free(html);
    json_decref(doc);
}

/* The new report pages from hand-made documents: figures where the
 * integration test looks, shares with one decimal, the chart's bars, and
 * the CSV links without parameters. */
Test(pages, report_pages)
{
    json_t *doc = json_pack(
        "{s:s, s:s, s:s, s:I, s:I, s:s, s:[{s:s, s:i, s:i, s:i, s:i}]}",
        "page", "sites", "range", "7d", "location", "remote", "from", (json_int_t)1, "to",
        (json_int_t)2, "by", "bytes", "sites", "host", "<b>.example", "requests", 4, "bytes", 99,
        "blocked", 1, "users", 2);
    size_t len = 0;
    char *html = admin_page_render(doc, "u", NULL, "", &len);

    cr_assert_not_null(html);
    cr_expect_null(strstr(html, "<b>.example"));
    cr_expect_not_null(strstr(html, "&lt;b&gt;.example</a></td><td class=\"n\">4</td>"
                                    "<td class=\"n\">99</td>"));
    cr_expect_not_null(strstr(html, "href=\"/sites?format=csv&amp;table=sites\""), "%s", html);
    cr_expect_not_null(strstr(html, "<b>bytes</b>"), "the order in force is shown");
    cr_expect_not_null(strstr(html, "href=\"/sites?range=7d&amp;loc=remote&amp;by=blocked\""));
    cr_expect_not_null(strstr(html, "href=\"/sites?range=24h&amp;loc=remote&amp;by=bytes\""),
                       "the range picker keeps the order");
    free(html);
    json_decref(doc);

    doc = json_pack("{s:s, s:s, s:s, s:I, s:I, s:[{s:s, s:i, s:f, s:i, s:f, s:i, s:f, s:i}],"
                    " s:[]}",
                    "page", "locations", "range", "24h", "location", "all", "from",
                    (json_int_t)1, "to", (json_int_t)2, "locations", "location", "remote",
                    "requests", 2, "requests_share", 66.7, "bytes", 10, "bytes_share", 50.0,
                    "blocked", 0, "blocked_share", 0.0, "users", 1, "remote_domains");
    html = admin_page_render(doc, "u", NULL, "", &len);
    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "<td>remote</td><td class=\"n\">2</td><td class=\"n\">"
                                    "66.7 %</td><td class=\"n\">10</td><td class=\"n\">50.0 %"),
                       "%s", html);
    cr_expect_not_null(strstr(html, "<p id=\"remote-domains\">Nothing in this range.</p>"));
    cr_expect_not_null(strstr(html, "id=\"csv-remote_domains\""), "an empty table has its CSV");
    free(html);
    json_decref(doc);

    doc = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:[{s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i,"
                    " s:i, s:i}, {s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i}]}",
                    "page", "timeline", "range", "24h", "location", "all", "from",
                    (json_int_t)1, "to", (json_int_t)2, "bucket_ms", 3600000, "timeline",
                    "time", (json_int_t)3600000, "requests", 4, "bytes", 8, "blocked", 1,
                    "remote_requests", 3, "local_requests", 1, "remote_bytes", 6, "local_bytes",
                    2, "remote_blocked", 1, "local_blocked", 0,
                    "time", (json_int_t)7200000, "requests", 0, "bytes", 0, "blocked", 0,
                    "remote_requests", 0, "local_requests", 0, "remote_bytes", 0, "local_bytes",
                    0, "remote_blocked", 0, "local_blocked", 0);
    html = admin_page_render(doc, "u", NULL, "range=24h", &len);
    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "viewBox=\"0 0 12 120\""), "%s", html);
    cr_expect_not_null(strstr(html, "<rect x=\"0\" y=\"30\" width=\"5\" height=\"90\" "
                                    "fill=\"#246\"/><rect x=\"0\" y=\"0\" width=\"5\" "
                                    "height=\"30\" fill=\"#8ac\"/>"), "%s", html);
    cr_expect_eq(strstr(strstr(html, "<rect") + 1, "<rect x=\"6\""), NULL,
                 "an hour without traffic has no bar");
    cr_expect_not_null(strstr(html, "<td class=\"n\">4</td><td class=\"n\">3</td>"
                                    "<td class=\"n\">1</td>"));
    free(html);
    json_decref(doc);
}

Test(pages, error_and_unknown_page)
{
    size_t len;
    char *html = admin_page_error(404, "no <such> page", NULL, NULL, &len);
    json_t *doc = json_pack("{s:s}", "page", "<nope>");

    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "<p class=\"err\" id=\"error\">no &lt;such&gt; page</p>"));
    cr_expect_not_null(strstr(html, "<title>musproxy: Error 404</title>"));
    free(html);
    html = admin_page_render(doc, "u", NULL, "", &len);
    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "unknown page"));
    free(html);
    json_decref(doc);
}

/* Every form that posts carries the session's CSRF token; the login page
 * has its own, and no navigation. */
Test(pages, forms_carry_the_csrf_token)
{
    static const char tok[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    json_t *doc = json_pack("{s:s, s:{s:s, s:s, s:s}}", "page", "trace", "request", "ip",
                            "127.0.0.2", "url", "http://a/", "method", "GET");
    size_t len = 0;
    char *html = admin_page_render(doc, "admin", tok, NULL, &len);
    const char *trace, *field = "<input type=\"hidden\" name=\"csrf\" value=\"" "00112233445566778899"
                                "aabbccddeeff00112233445566778899aabbccddeeff\">";

    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "<form class=\"logout\" method=\"post\" action=\"/logout\">"),
                       "%s", html);
    trace = strstr(html, "<form method=\"post\" action=\"/trace\">");
    cr_assert_not_null(trace, "%s", html);
    cr_expect_eq(strncmp(trace + strlen("<form method=\"post\" action=\"/trace\">"), field,
                         strlen(field)), 0, "%s", trace);
    cr_expect_not_null(strstr(strstr(html, "action=\"/logout\""), field));
    free(html);
    /* Basic credentials (no session): no form that posts without a token */
    html = admin_page_render(doc, "admin", NULL, NULL, &len);
    cr_assert_not_null(html);
    cr_expect_null(strstr(html, "/logout"));
    cr_expect_null(strstr(html, "name=\"csrf\""));
    free(html);
    json_decref(doc);
    /* an error page of a logged-in user keeps the logout button */
    html = admin_page_error(400, "bad", "admin", tok, &len);
    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, field));
    free(html);

    html = admin_page_login("ab\"cd", "Wrong <user> or password.", &len);
    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "<form id=\"login\" method=\"post\" action=\"/login\">"
                                    "<input type=\"hidden\" name=\"csrf\" value=\"ab&quot;cd\">"),
                       "%s", html);
    cr_expect_not_null(strstr(html, "name=\"user\""));
    cr_expect_not_null(strstr(html, "type=\"password\" name=\"password\""));
    cr_expect_not_null(strstr(html, "id=\"error\">Wrong &lt;user&gt; or password.</p>"));
    cr_expect_null(strstr(html, "<nav>"), "no navigation before the login");
    free(html);
}

/* The headends page with musproxy's own RADIUS listener: its counters
 * under "radius-" ids, its name escaped. */
Test(pages, headends_show_the_radius_counters)
{
    json_t *doc = json_pack(
        "{s:s, s:[], s:{s:i}, s:{s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:{s:i, s:i, s:i, s:i},"
        " s:{s:i, s:i, s:i, s:i, s:i, s:i}, s:{s:i, s:i, s:i, s:i}, s:s}}",
        "page", "headends", "headends", "map", "entries", 1,
        "radius", "name", EVIL, "listening", 1, "clients", 2, "received", 7, "responses", 4,
        "applied", 3, "duplicates", 1,
        "dropped", "unknown_client", 1, "wrong_secret", 1, "malformed", 1, "not_applied", 0,
        "status_types", "start", 2, "interim", 0, "stop", 1, "accounting_on", 0,
        "accounting_off", 0, "other", 0,
        "sessions", "now", 1, "stale", 0, "marked_stale", 5, "removed_stale", 6,
        "last_error", "");
    size_t len = 0;
    char *html;

    cr_assert_not_null(doc);
    html = admin_page_render(doc, "admin", NULL, "", &len);
    cr_assert_not_null(html);
    cr_expect_null(strstr(html, "<script"), "raw script tag in the page");
    cr_expect_not_null(strstr(html, "<span id=\"radius-name\">&lt;script&gt;"));
    static const char *const want[] = {
        "<dd id=\"radius-received\">7</dd>", "<dd id=\"radius-responses\">4</dd>",
        "<dd id=\"radius-applied\">3</dd>", "<dd id=\"radius-duplicates\">1</dd>",
        "<dd id=\"radius-start\">2</dd>", "<dd id=\"radius-stop\">1</dd>",
        "<dd id=\"radius-wrong_secret\">1</dd>", "<dd id=\"radius-malformed\">1</dd>",
        "<dd id=\"radius-unknown_client\">1</dd>", "<dd id=\"radius-sessions\">1</dd>",
        "<dd id=\"radius-removed_stale\">6</dd>", "<dd id=\"entries\">1</dd>",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        cr_expect_not_null(strstr(html, want[i]), "%s not in the page", want[i]);
    free(html);
    json_decref(doc);

    /* no listener: no section */
    doc = json_pack("{s:s, s:[], s:{s:i}, s:n}", "page", "headends", "headends", "map",
                    "entries", 0, "radius");
    html = admin_page_render(doc, "admin", NULL, "", &len);
    cr_assert_not_null(html);
    cr_expect_null(strstr(html, "radius-received"));
    free(html);
    json_decref(doc);
}

/* The operator's pages (pages_ops.c): the map's numbers and pager keep the
 * search (encoded), the archive's links are the files' names (encoded),
 * each headend has a test form with the CSRF token, and a test's answer
 * shows its outcome, round trip and certificate, escaped. */
Test(pages, map_archive_and_headend_test)
{
    static const char tok[] = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    json_t *doc = json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:[{s:s, s:s, s:s, s:s, s:s, "
                            "s:s, s:i, s:b}]}", "page", "map", "q", "a&b", "page_number", 2,
                            "page_rows", 50, "pages", 3, "total", 160, "matched", 120, "entries",
                            "ip", "10.10.0.7", "name", EVIL, "domain", "CORP", "type", "user",
                            "groups", "vpn", "headend", "he-1", "started", 1700000000, "stale", 0);
    size_t len = 0;
    char *html = admin_page_render(doc, "admin", tok, NULL, &len);

    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "<span id=\"matched\">120</span> of <span id=\"total\">160"));
    cr_expect_not_null(strstr(html, "id=\"prev\" href=\"/map?q=a%26b&amp;page=1\""), "%s", html);
    cr_expect_not_null(strstr(html, "id=\"next\" href=\"/map?q=a%26b&amp;page=3\""));
    cr_expect_not_null(strstr(html, "value=\"a&amp;b\""));
    cr_expect_not_null(strstr(html, "<td>10.10.0.7</td>"));
    cr_expect_null(strstr(html, "<script>"));
    free(html);
    json_decref(doc);

    doc = json_pack("{s:s, s:s, s:i, s:[{s:s, s:s, s:s, s:s, s:i, s:i}]}", "page", "archive",
                    "dir", "var/reports", "total", 1, "files", "file",
                    "daily/2026-12-03-sites.csv", "schedule", "daily", "period", "2026-12-03",
                    "report", "sites", "bytes", 321, "modified", 0);
    html = admin_page_render(doc, "admin", tok, NULL, &len);
    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "<a href=\"/archive?file=daily%2F2026-12-03-sites.csv\">"
                                    "daily/2026-12-03-sites.csv</a>"), "%s", html);
    cr_expect_not_null(strstr(html, "<td class=\"n\">321</td>"));
    free(html);
    json_decref(doc);

    doc = json_pack("{s:s, s:[{s:s, s:s}], s:{s:i}, s:{s:s, s:b, s:s, s:s, s:s, s:i, s:i, s:s, "
                    "s:s, s:s, s:s}}", "page", "headends", "headends", "name", "he-1", "state",
                    "established", "map", "entries", 1, "test", "headend", "he-1", "ok", 1,
                    "outcome", "ok", "message", "authenticated by lab-he", "address",
                    "127.0.0.1:11999", "rtt_ms", 42, "connect_ms", 1, "server_id", "lab-he",
                    "subject", "/CN=<he>", "issuer", "/CN=ca", "tls", "TLSv1.3");
    html = admin_page_render(doc, "admin", tok, NULL, &len);
    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "<form method=\"post\" action=\"/headends\"><input "
                                    "type=\"hidden\" name=\"csrf\" value=\"0011"), "%s", html);
    cr_expect_not_null(strstr(html, "name=\"headend\" value=\"he-1\"><button type=\"submit\" "
                                    "id=\"test-he-1\">"));
    cr_expect_not_null(strstr(html, "<b id=\"test-outcome\">ok</b> in <span id=\"test-rtt\">42"
                                    "</span> ms"));
    cr_expect_not_null(strstr(html, "id=\"test-subject\">/CN=&lt;he&gt;</td>"));
    free(html);
    json_decref(doc);
}
