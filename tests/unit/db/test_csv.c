/*
 * tests/unit/db/test_csv.c: the CSV writer (db/csv.c) through a memory
 * stream: RFC 4180 quoting and CRLF lines, the formula-injection prefix on
 * strings only, UTF-8 passed through byte for byte (a NUL as U+FFFD),
 * every JSON type, reals exactly as jansson dumps them, and the refusals
 * (not a table, a row that is not an object, a member that is no column).
 */
#include <criterion/criterion.h>
#include <jansson.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../../db/csv.h"

/* csv_write into a string (caller frees); rc in *rc. */
static char *
write_csv(const char *const *cols, size_t ncols, json_t *rows, int *rc, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    cr_assert_not_null(f);
    *rc = csv_write(f, cols, ncols, rows, err, errlen);
    fclose(f);
    json_decref(rows);
    return buf;
}

/* One field for v, as a string (caller frees). */
static char *
field(json_t *v)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    cr_assert_not_null(f);
    csv_field(f, v);
    fclose(f);
    json_decref(v);
    return buf;
}

static void
expect_field(json_t *v, const char *want)
{
    char *got = field(v);

    cr_expect_str_eq(got, want);
    free(got);
}

Test(csv, header_rows_and_crlf)
{
    static const char *const cols[] = {"user", "requests", "remote"};
    char err[CSV_ERR_MAX] = "";
    int rc;
    char *out = write_csv(cols, 3, json_pack("[{s:s, s:i, s:i}, {s:s, s:i}, {}]", "user", "ann",
                                             "requests", 12, "remote", 1, "user", "ben",
                                             "requests", 0),
                          &rc, err, sizeof(err));

    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_str_eq(out, "user,requests,remote\r\nann,12,1\r\nben,0,\r\n,,\r\n");
    free(out);
    out = write_csv(cols, 3, json_array(), &rc, err, sizeof(err));
    cr_expect_eq(rc, 0);
    cr_expect_str_eq(out, "user,requests,remote\r\n", "an empty table still has its header");
    free(out);
}

Test(csv, rfc4180_quoting)
{
    expect_field(json_string("plain text"), "plain text");
    expect_field(json_string("a,b"), "\"a,b\"");
    expect_field(json_string("say \"hi\""), "\"say \"\"hi\"\"\"");
    expect_field(json_string("two\nlines"), "\"two\nlines\"");
    expect_field(json_string("cr\rhere"), "\"cr\rhere\"");
    expect_field(json_string("\""), "\"\"\"\"");
    expect_field(json_string(""), "");
    expect_field(json_string(" spaced "), " spaced ");
    expect_field(json_string("semi;colon"), "semi;colon");
}

Test(csv, formula_injection_prefix)
{
    expect_field(json_string("=HYPERLINK(\"http://x\")"), "\"'=HYPERLINK(\"\"http://x\"\")\"");
    expect_field(json_string("=1+2"), "'=1+2");
    expect_field(json_string("+41 22"), "'+41 22");
    expect_field(json_string("-2+3"), "'-2+3");
    expect_field(json_string("@SUM(A1)"), "'@SUM(A1)");
    expect_field(json_string("\tx"), "'\tx");
    expect_field(json_string("\rx"), "\"'\rx\"");
    expect_field(json_string("=a,b"), "\"'=a,b\"");
    expect_field(json_string("a=b"), "a=b");
    expect_field(json_string(" =x"), " =x");
    /* numbers are ours: never prefixed */
    expect_field(json_integer(-5), "-5");
    expect_field(json_real(-2.5), "-2.5");
    /* the header is text too */
    {
        static const char *const cols[] = {"=evil", "ok"};
        char err[CSV_ERR_MAX];
        int rc;
        char *out = write_csv(cols, 2, json_array(), &rc, err, sizeof(err));
        cr_expect_str_eq(out, "'=evil,ok\r\n");
        free(out);
    }
}

Test(csv, utf8_bytes_pass_through)
{
    expect_field(json_string("Zo\xc3\xab M\xc3\xbcller"), "Zo\xc3\xab M\xc3\xbcller");
    expect_field(json_string("\xe6\x97\xa5\xe6\x9c\xac,\xf0\x9f\x98\x80"),
                 "\"\xe6\x97\xa5\xe6\x9c\xac,\xf0\x9f\x98\x80\"");
    /* a multi-byte first character is no formula; a full-width = is not '=' */
    expect_field(json_string("\xef\xbc\x9d" "1+2"), "\xef\xbc\x9d" "1+2");
    /* U+FFFD that report.c puts for text that was not UTF-8 */
    expect_field(json_string("\xef\xbf\xbd"), "\xef\xbf\xbd");
    /* an embedded NUL (json_stringn allows it) cannot cut the line */
    expect_field(json_stringn("a\0b", 3), "a\xef\xbf\xbd" "b");
}

Test(csv, every_json_type)
{
    expect_field(json_integer(0), "0");
    expect_field(json_integer(9007199254740993LL), "9007199254740993");
    expect_field(json_true(), "true");
    expect_field(json_false(), "false");
    expect_field(json_null(), "");
    expect_field(NULL, "");
    expect_field(json_pack("[s, s]", "a", "b"), "\"[\"\"a\"\",\"\"b\"\"]\"");
    expect_field(json_pack("{s:i}", "k", 1), "\"{\"\"k\"\":1}\"");
    expect_field(json_pack("[]"), "[]");
}

Test(csv, reals_as_jansson_dumps_them)
{
    static const double v[] = {66.7, 50.0, 0.0, 100.0, 33.3, 0.1, -0.5, 1e20, 1.5e-7,
                               123456789012.0, 2.5e300, 1234567.125};

    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        char *want = json_dumps(json_real(v[i]), JSON_ENCODE_ANY |
                                JSON_REAL_PRECISION(CSV_REAL_DIGITS));
        json_t *r = json_real(v[i]);
        char *got = field(r);
        cr_expect_str_eq(got, want, "%g", v[i]);
        free(got);
        free(want);
    }
    expect_field(json_real(66.7), "66.7");
    expect_field(json_real(50.0), "50.0");
}

Test(csv, refusals)
{
    static const char *const cols[] = {"a", "b"};
    char err[CSV_ERR_MAX] = "";
    int rc;
    char *out;

    out = write_csv(cols, 2, json_object(), &rc, err, sizeof(err));
    cr_expect_eq(rc, -1);
    cr_expect(strstr(err, "not an array") != NULL, "%s", err);
    cr_expect_str_eq(out, "", "nothing is written for a refused table");
    free(out);
    out = write_csv(cols, 2, json_pack("[{s:i}, i]", "a", 1, 2), &rc, err, sizeof(err));
    cr_expect_eq(rc, -1);
    cr_expect(strstr(err, "row 2 is not an object") != NULL, "%s", err);
    free(out);
    out = write_csv(cols, 2, json_pack("[{s:i, s:i, s:i}]", "a", 1, "b", 2, "c", 3), &rc, err,
                    sizeof(err));
    cr_expect_eq(rc, -1);
    cr_expect(strstr(err, "row 1 has a member 'c' that is not a column") != NULL, "%s", err);
    cr_expect_str_eq(out, "");
    free(out);
}
