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
    html = admin_page_render(doc, "adm<in>", &len);
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
    free(html);
    json_decref(doc);
}

Test(pages, error_and_unknown_page)
{
    size_t len;
    char *html = admin_page_error(404, "no <such> page", NULL, &len);
    json_t *doc = json_pack("{s:s}", "page", "<nope>");

    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "<p class=\"err\" id=\"error\">no &lt;such&gt; page</p>"));
    cr_expect_not_null(strstr(html, "<title>musproxy: Error 404</title>"));
    free(html);
    html = admin_page_render(doc, "u", &len);
    cr_assert_not_null(html);
    cr_expect_not_null(strstr(html, "unknown page"));
    free(html);
    json_decref(doc);
}
