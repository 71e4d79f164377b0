/*
 * db/csv.c: the CSV writer (see csv.h). A field is formatted into text
 * first (numbers, words, compact JSON) or taken as the string's bytes, then
 * written quoted or not by one function, so every kind of cell gets the same
 * quoting and injection rules.
 */
#include "csv.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../common/err.h"

/* s[0..n) as one field; formula: may be taken for a formula (strings). */
static void
put_text(FILE *out, const char *s, size_t n, bool formula)
{
    bool quote = false;

    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == ',' || s[i] == '"' || s[i] == '\r' || s[i] == '\n';
    if (quote)
        fputc('"', out);
    if (formula && n > 0 && strchr("=+-@\t\r", s[0]) != NULL)
        fputc('\'', out);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            fputs("\"\"", out);
        else if (s[i] == '\0')
            fputs("\xef\xbf\xbd", out);      /* U+FFFD */
        else
            fputc(s[i], out);
    }
    if (quote)
        fputc('"', out);
}

/* A real as jansson dumps it with JSON_REAL_PRECISION(CSV_REAL_DIGITS):
 * "%.*g", ".0" added to what would read as an integer, no '+' and no
 * leading zeros in the exponent. */
static size_t
format_real(double v, char *buf, size_t cap)
{
    char t[64], *e;
    size_t n, o = 0;

    snprintf(t, sizeof(t), "%.*g", CSV_REAL_DIGITS, v);
    if (strpbrk(t, ".eEni") == NULL)          /* not inf/nan either */
        strcat(t, ".0");
    e = strchr(t, 'e');
    n = e != NULL ? (size_t)(e - t) + 1 : strlen(t);
    memcpy(buf, t, n < cap ? n : cap - 1);
    o = n < cap ? n : cap - 1;
    if (e != NULL) {
        const char *p = e + 1;
        if (*p == '-' && o + 1 < cap)
            buf[o++] = *p++;
        else if (*p == '+')
            p++;
        while (*p == '0' && p[1] != '\0')
            p++;
        while (*p != '\0' && o + 1 < cap)
            buf[o++] = *p++;
    }
    buf[o] = '\0';
    return o;
}

void
csv_field(FILE *out, const json_t *v)
{
    char t[64];
    char *dump;
    int n;

    switch (v == NULL ? JSON_NULL : json_typeof(v)) {
    case JSON_STRING:
        put_text(out, json_string_value(v), json_string_length(v), true);
        break;
    case JSON_INTEGER:
        n = snprintf(t, sizeof(t), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        put_text(out, t, (size_t)n, false);
        break;
    case JSON_REAL:
        put_text(out, t, format_real(json_real_value(v), t, sizeof(t)), false);
        break;
    case JSON_TRUE: fputs("true", out); break;
    case JSON_FALSE: fputs("false", out); break;
    case JSON_OBJECT:
    case JSON_ARRAY:
        dump = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
        if (dump != NULL)
            put_text(out, dump, strlen(dump), true);
        free(dump);
        break;
    case JSON_NULL:
    default:
        break;
    }
}

static bool
is_column(const char *key, const char *const *cols, size_t ncols)
{
    for (size_t i = 0; i < ncols; i++)
        if (strcmp(cols[i], key) == 0)
            return true;
    return false;
}

int
csv_write(FILE *out, const char *const *cols, size_t ncols, const json_t *rows, char *err,
          size_t errlen)
{
    const json_t *row;
    size_t i;

    if (!json_is_array(rows)) {
        err_set(err, errlen, "csv: the table is not an array of rows");
        return -1;
    }
    json_array_foreach(rows, i, row) {
        const char *key;
        json_t *v;
        if (!json_is_object(row)) {
            err_set(err, errlen, "csv: row %zu is not an object", i + 1);
            return -1;
        }
        json_object_foreach((json_t *)row, key, v)
            if (!is_column(key, cols, ncols)) {
                err_set(err, errlen, "csv: row %zu has a member '%.64s' that is not a column",
                        i + 1, key);
                return -1;
            }
    }
    for (size_t k = 0; k < ncols; k++) {
        if (k > 0)
            fputc(',', out);
        put_text(out, cols[k], strlen(cols[k]), true);
    }
    fputs("\r\n", out);
    json_array_foreach(rows, i, row) {
        for (size_t k = 0; k < ncols; k++) {
            if (k > 0)
                fputc(',', out);
            csv_field(out, json_object_get(row, cols[k]));
        }
        fputs("\r\n", out);
    }
    if (fflush(out) != 0 || ferror(out)) {
        err_set(err, errlen, "csv: write error");
        return -1;
    }
    return 0;
}
