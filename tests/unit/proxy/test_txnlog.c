/*
 * tests/unit/proxy/test_txnlog.c: the transaction record's log lines: the
 * JSON extended line field by field (parsed back with jansson), nulls for
 * what the policy did not say, the query never logged, control bytes
 * escaped, an overlong line refused whole; the Squid line (query cut too) written through a
 * real access log file; the enum names.
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../../common/txn.h"
#include "../../../proxy/txnlog.h"

static void
sample(txn_record_t *r)
{
    memset(r, 0, sizeof(*r));
    r->end_ms = 1795346083758;
    r->elapsed_ms = 5;
    txn_copy_str(r->client, sizeof(r->client), "10.10.10.50");
    r->result = TXN_TCP_DENIED;
    r->status = 403;
    r->bytes_out = 1234;
    txn_copy_str(r->method, sizeof(r->method), "GET");
    r->url_len = txn_copy_str(r->url, sizeof(r->url), "http://arts.example/a?secret=1");
    txn_copy_str(r->user, sizeof(r->user), "alice");
    r->hier = TXN_HIER_NONE;
    txn_copy_str(r->mime, sizeof(r->mime), "text/html");
    r->decided = true;
    r->decision = TXN_DECISION_BLOCK;
    r->remote = true;
    txn_copy_str(r->user_source, sizeof(r->user_source), "headend");
    txn_copy_str(r->identity_type, sizeof(r->identity_type), "user");
    txn_copy_str(r->headend, sizeof(r->headend), "ocserv-1");
    txn_copy_str(r->identity_profile, sizeof(r->identity_profile), "vpn");
    txn_copy_str(r->access_policy, sizeof(r->access_policy), "remote-staff");
    txn_copy_str(r->rule, sizeof(r->rule), "category");
    txn_copy_str(r->category, sizeof(r->category), "Arts");
    txn_copy_str(r->decision_tag, sizeof(r->decision_tag), "BLOCK_CATEGORY");
}

static json_t *
parse(const txn_record_t *r)
{
    char buf[ALOG_LINE_MAX];
    size_t n = txnlog_json(buf, sizeof(buf), r);
    json_error_t err;
    json_t *j;

    cr_assert_gt(n, 0);
    cr_assert_eq(buf[n - 1], '\n');
    j = json_loadb(buf, n, 0, &err);
    cr_assert_not_null(j, "not JSON: %.*s (%s)", (int)n, buf, err.text);
    return j;
}

#define JSTR(j, k) json_string_value(json_object_get((j), (k)))

Test(txnlog, json_fields)
{
    txn_record_t r;
    json_t *j;

    sample(&r);
    j = parse(&r);
    cr_expect_float_eq(json_real_value(json_object_get(j, "time")), 1795346083.758, 1e-6);
    cr_expect_eq(json_integer_value(json_object_get(j, "elapsed_ms")), 5);
    cr_expect_str_eq(JSTR(j, "client"), "10.10.10.50");
    cr_expect_str_eq(JSTR(j, "result"), "TCP_DENIED");
    cr_expect_eq(json_integer_value(json_object_get(j, "status")), 403);
    cr_expect_eq(json_integer_value(json_object_get(j, "bytes")), 1234);
    cr_expect_str_eq(JSTR(j, "method"), "GET");
    cr_expect_str_eq(JSTR(j, "url"), "http://arts.example/a?"); /* no query */
    cr_expect_str_eq(JSTR(j, "user"), "alice");
    cr_expect_str_eq(JSTR(j, "location"), "remote");
    cr_expect_str_eq(JSTR(j, "user_source"), "headend");
    cr_expect_str_eq(JSTR(j, "identity_type"), "user");
    cr_expect_str_eq(JSTR(j, "headend"), "ocserv-1");
    cr_expect_str_eq(JSTR(j, "identity_profile"), "vpn");
    cr_expect_str_eq(JSTR(j, "access_policy"), "remote-staff");
    cr_expect_str_eq(JSTR(j, "rule"), "category");
    cr_expect_str_eq(JSTR(j, "category"), "Arts");
    cr_expect_str_eq(JSTR(j, "decision"), "BLOCK_CATEGORY");
    cr_expect_str_eq(JSTR(j, "hierarchy"), "HIER_NONE");
    cr_expect(json_is_null(json_object_get(j, "server")));
    json_decref(j);
}

Test(txnlog, json_nulls_when_not_decided)
{
    txn_record_t r;
    json_t *j;
    static const char *const policy_keys[] = {
        "location", "user_source", "identity_type", "headend", "identity_profile",
        "access_policy", "rule", "category", "decision",
    };

    sample(&r);
    r.decided = false;           /* the policy fields are stale: must not show */
    r.method[0] = '\0';
    r.url_len = 0;
    r.url[0] = '\0';
    r.user[0] = '\0';
    j = parse(&r);
    for (size_t i = 0; i < sizeof(policy_keys) / sizeof(policy_keys[0]); i++)
        cr_expect(json_is_null(json_object_get(j, policy_keys[i])), "%s", policy_keys[i]);
    cr_expect_str_eq(JSTR(j, "method"), "NONE");
    cr_expect(json_is_null(json_object_get(j, "url")));
    cr_expect(json_is_null(json_object_get(j, "user")));
    json_decref(j);
}

Test(txnlog, json_escapes_and_refuses_overflow)
{
    txn_record_t r;
    char small[64], buf[ALOG_LINE_MAX];
    json_t *j;

    sample(&r);
    txn_copy_str(r.user, sizeof(r.user), "a\"b\\c\x01\n");
    j = parse(&r);
    cr_expect_str_eq(JSTR(j, "user"), "a\"b\\c\x01\n");
    json_decref(j);
    cr_expect_eq(txnlog_json(small, sizeof(small), &r), 0);
    cr_expect_gt(txnlog_json(buf, sizeof(buf), &r), sizeof(small));
}

Test(txnlog, squid_line_through_the_log_file)
{
    char path[] = "/tmp/mp-txnlog-XXXXXX";
    int fd = mkstemp(path);
    txn_record_t r;
    alog_t *a;
    char line[1024] = "";
    FILE *f;

    cr_assert_geq(fd, 0);
    close(fd);
    a = alog_open(path);
    cr_assert_not_null(a);
    sample(&r);
    r.result = TXN_TCP_MISS;
    r.status = 200;
    r.hier = TXN_HIER_DIRECT;
    txn_copy_str(r.server, sizeof(r.server), "192.0.2.7");
    txnlog_squid(a, &r);
    r.url_len = 0;
    r.url[0] = '\0';
    r.user[0] = '\0';
    r.method[0] = '\0';
    r.result = TXN_NONE_NONE;
    r.status = 400;
    r.hier = TXN_HIER_NONE;
    r.server[0] = '\0';
    txnlog_squid(a, &r);
    alog_close(a);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_expect(strstr(line, " 10.10.10.50 TCP_MISS/200 1234 GET http://arts.example/a? alice "
                           "HIER_DIRECT/192.0.2.7 text/html\n") != NULL, "%s", line);
    cr_assert_not_null(fgets(line, sizeof(line), f));
    cr_expect(strstr(line, " NONE_NONE/400 1234 - error:invalid-request - HIER_NONE/- text/html\n") != NULL,
              "%s", line);
    fclose(f);
    unlink(path);
}

Test(txn, names)
{
    cr_expect_str_eq(txn_result_str(TXN_TCP_MISS_ABORTED), "TCP_MISS_ABORTED");
    cr_expect_str_eq(txn_result_str(TXN_NONE_NONE), "NONE_NONE");
    cr_expect_str_eq(txn_hier_str(TXN_HIER_DIRECT), "HIER_DIRECT");
    cr_expect_str_eq(txn_decision_str(TXN_DECISION_REFUSE_UNIDENTIFIED), "refuse_unidentified");
    cr_expect_str_eq(txn_mode_str(TXN_MODE_TRANSPARENT), "transparent");
}

Test(txn, copy_cuts_and_terminates)
{
    char small[4];

    cr_expect_eq(txn_copy(small, sizeof(small), "abcdef", 6), 3);
    cr_expect_str_eq(small, "abc");
    cr_expect_eq(txn_copy_str(small, sizeof(small), NULL), 0);
    cr_expect_str_eq(small, "");
}

/* The hand-written Squid line against Squid's own format string (the
 * fields already escaped as alog_format escapes them), for short and long
 * values, zero and huge numbers, and a URL that fills the line. */
#include "../../../proxy/accesslog.h"

static void
check_line_shown(const alog_entry_t *e, int64_t secs, int msec, const char *url_shown,
                 const char *user_shown, const char *mime_shown, size_t size)
{
    char got[ALOG_LINE_MAX], want[ALOG_LINE_MAX];
    size_t n = alog_format(got, size, e, secs, msec);
    int w = snprintf(want, size, "%9ld.%03d %6ld %s %s/%03d %lld %s %s %s %s%s/%s %s\n",
                     (long)secs, msec, (long)e->elapsed_ms, e->client, e->tag, e->status,
                     (long long)e->bytes, e->method ? e->method : "-", url_shown,
                     user_shown, "", e->hier, e->peer ? e->peer : "-", mime_shown);
    size_t wl = (size_t)w;
    if (wl >= size) {     /* cut: the old formatter ended the line at size - 2 */
        want[size - 2] = '\n';
        wl = size - 1;
    }
    cr_assert_eq(n, wl, "length %zu, want %zu:\n%.*s\n%.*s", n, wl, (int)n, got, (int)wl, want);
    cr_assert(memcmp(got, want, n) == 0, "\n%.*s\n%.*s", (int)n, got, (int)wl, want);
}

static void
check_line(const alog_entry_t *e, int64_t secs, int msec, const char *url_shown, size_t size)
{
    check_line_shown(e, secs, msec, url_shown, e->user ? e->user : "-", e->mime ? e->mime : "-",
                     size);
}

Test(txnlog, squid_line_matches_the_format_string)
{
    alog_entry_t e = {.client = "10.10.10.50", .tag = "TCP_MISS", .status = 200, .bytes = 1234,
                      .method = "GET", .url = "http://a.example/p?q=1", .url_len = 22,
                      .user = "alice", .hier = "HIER_DIRECT", .peer = "192.0.2.7",
                      .mime = "text/html; charset=utf-8", .mime_len = 24, .elapsed_ms = 5};
    e.mime = "text/html"; e.mime_len = 9;
    check_line(&e, 1795346083, 7, "http://a.example/p?", ALOG_LINE_MAX);
    e.mime = "text/html; charset=utf-8"; e.mime_len = 24;   /* parameters cut */
    alog_entry_t f = e;
    f.mime = "text/html"; f.mime_len = 9;
    char got[512], want[512];
    size_t a = alog_format(got, sizeof got, &e, 1, 2), b = alog_format(want, sizeof want, &f, 1, 2);
    cr_assert(a == b && memcmp(got, want, a) == 0);
    /* zeros, no user, no peer, no type, unknown method */
    alog_entry_t z = {.client = "::1", .tag = "NONE_NONE", .status = 0, .bytes = 0,
                      .url = "error:invalid-request", .url_len = 21, .hier = "HIER_NONE"};
    check_line(&z, 0, 0, "error:invalid-request", ALOG_LINE_MAX);
    /* wide numbers: more digits than the widths */
    z.elapsed_ms = 12345678; z.bytes = 18446744073709551615ULL; z.status = 599;
    z.tag = "TCP_TUNNEL"; z.method = "CONNECT";
    alog_entry_t zz = z;
    zz.bytes = 9223372036854775807ULL;   /* %lld of the oracle: within long long */
    check_line(&zz, 99999999999LL, 999, "error:invalid-request", ALOG_LINE_MAX);
    /* a URL that fills the line: cut, still one line ending in '\n' */
    static char big[ALOG_LINE_MAX];
    memset(big, 'u', sizeof big - 1);
    memcpy(big, "http://", 7);
    alog_entry_t l = e;
    l.url = big; l.url_len = sizeof big - 1;
    l.mime = "text/plain"; l.mime_len = 10;
    char lg[ALOG_LINE_MAX];
    size_t ln = alog_format(lg, sizeof lg, &l, 1795346083, 7);
    cr_assert_leq(ln, sizeof lg - 1);
    cr_assert_eq(lg[ln - 1], '\n');
    cr_assert_null(memchr(lg, '\n', ln - 1), "one line");
    /* whitespace, control bytes and '%' escaped, in URL, user and type */
    alog_entry_t x = f;
    x.url = "http://a.example/a b%c\t\x7f?q"; x.url_len = strlen(x.url);
    x.user = "CORP\\al ice"; x.mime = "a\001b"; x.mime_len = 3;
    check_line_shown(&x, 1795346083, 7, "http://a.example/a%20b%25c%09%7F?", "CORP\\al%20ice",
                     "a%01b", ALOG_LINE_MAX);
    /* a small buffer: cut as snprintf cut it */
    check_line(&f, 1795346083, 7, "http://a.example/p?", 40);
}
