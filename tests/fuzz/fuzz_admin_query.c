/*
 * tests/fuzz/fuzz_admin_query.c: libFuzzer target for the admin UI's
 * parameter parser (admin/query.c): query strings and form bodies. Any
 * input is parsed or refused without a crash or over-read; what parses
 * holds only known keys, once each, with values that are clean UTF-8 text
 * of the length said; percent-encoding it all again parses to the same
 * pairs; and query_view either refuses it or points only into the parsed
 * buffer, with a table name, order and row limit in their ranges. As a
 * form body (query_parse_form) the same input parses to the same pairs
 * when it parses as a query, and taking "csrf" out leaves the rest in
 * order. Seed corpus: tests/fuzz/corpus/admin_query/.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../admin/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static query_t q, q2, qf;
static char again[3 * QUERY_INPUT_MAX + 64];

static void
check_in(const query_t *p, const char *s)
{
    if (s != NULL && (s < p->buf || s >= p->buf + sizeof(p->buf)))
        abort();
}

static size_t
encode(const char *s, char *out)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;

    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        out[o++] = '%';
        out[o++] = hex[c >> 4];
        out[o++] = hex[c & 15];
    }
    return o;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[QUERY_ERR_MAX];
    query_view_t v;
    size_t n = 0;

    if (query_parse_form((const char *)data, size, &qf, err, sizeof(err)) == 0) {
        size_t before = qf.n;
        const char *tok = query_take(&qf, "csrf");
        if (qf.n != before - (tok != NULL) || query_get(&qf, "csrf") != NULL)
            abort();
        check_in(&qf, tok);
    }
    if (query_parse((const char *)data, size, &q, err, sizeof(err)) < 0) {
        if (memchr(err, '\0', sizeof(err)) == NULL)
            abort();
        return 0;
    }
    if (q.n > QUERY_MAX_PARAMS ||
        query_parse_form((const char *)data, size, &qf, err, sizeof(err)) < 0 || qf.n != q.n)
        abort();
    for (size_t i = 0; i < q.n; i++)
        if (strcmp(q.p[i].key, qf.p[i].key) != 0 || strcmp(q.p[i].value, qf.p[i].value) != 0)
            abort();
    for (size_t i = 0; i < q.n; i++) {
        check_in(&q, q.p[i].key);
        check_in(&q, q.p[i].value);
        if (strlen(q.p[i].value) != q.p[i].value_len || strlen(q.p[i].key) >= QUERY_KEY_MAX)
            abort();
        for (size_t k = 0; k < q.p[i].value_len; k++)
            if ((unsigned char)q.p[i].value[k] < 0x20 || q.p[i].value[k] == 0x7f)
                abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(q.p[k].key, q.p[i].key) == 0)
                abort();
        if (query_get(&q, q.p[i].key) != q.p[i].value)
            abort();
        /* the same pairs, every byte escaped */
        if (i > 0)
            again[n++] = '&';
        memcpy(again + n, q.p[i].key, strlen(q.p[i].key));
        n += strlen(q.p[i].key);
        again[n++] = '=';
        n += encode(q.p[i].value, again + n);
    }
    if (n <= QUERY_INPUT_MAX) {
        if (query_parse(again, n, &q2, err, sizeof(err)) < 0 || q2.n != q.n)
            abort();
        for (size_t i = 0; i < q.n; i++)
            if (strcmp(q.p[i].key, q2.p[i].key) != 0 || q.p[i].value_len != q2.p[i].value_len ||
                memcmp(q.p[i].value, q2.p[i].value, q.p[i].value_len) != 0)
                abort();
    }
    if (query_view(&q, &v, err, sizeof(err)) == 0) {
        const char *ptrs[] = {v.user, v.host, v.category, v.client, v.decision, v.ip, v.url,
                              v.method, v.table};
        for (size_t i = 0; i < sizeof(ptrs) / sizeof(ptrs[0]); i++) {
            check_in(&q, ptrs[i]);
            if (ptrs[i] != NULL && ptrs[i][0] == '\0')
                abort();
        }
        if (v.page < 1 || v.page > QUERY_PAGE_MAX || (unsigned)v.range > QUERY_RANGE_30D ||
            (unsigned)v.loc > QUERY_LOC_LOCAL || (unsigned)v.by > QUERY_BY_BLOCKED ||
            v.limit > QUERY_LIMIT_MAX || (v.table != NULL && strlen(v.table) >= QUERY_TABLE_MAX))
            abort();
    }
    return 0;
}
