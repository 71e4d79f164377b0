/*
 * admin/query.h: the admin UI's parameters: an URL query string or an
 * application/x-www-form-urlencoded body split into decoded key/value pairs
 * (query_parse), then checked and typed into what a page asks the reports
 * for (query_view): time range, location, filters, page, order, row
 * limit, CSV format and table, trace request, the map's search, the
 * headend to test, the scheduled report to download.
 * Pure functions over caller-owned memory: no allocation, no I/O, no clock,
 * no HTTP; fuzzed by tests/fuzz/fuzz_admin_query.c.
 *
 * Strict on purpose: a key must be one of the known names (lower-case
 * letters, digits, '_'), appear once, and every value must decode ('%XX',
 * '+' as a space) to valid UTF-8 without control characters, so what
 * reaches the reports, the trace and the HTML is plain text.
 */
#ifndef MUS_ADMIN_QUERY_H
#define MUS_ADMIN_QUERY_H

#include <stdbool.h>
#include <stddef.h>

#define QUERY_INPUT_MAX    16384   /* bytes of a query string or form body */
#define QUERY_MAX_PARAMS   16
#define QUERY_KEY_MAX      16      /* bytes of a key incl. NUL */
#define QUERY_ERR_MAX      160
#define QUERY_NAME_MAX     255     /* bytes of a user, host, category or client filter */
#define QUERY_URL_MAX      8192    /* bytes of a trace URL */
#define QUERY_PAGE_MAX     20000   /* web tracking pages */
#define QUERY_LIMIT_MAX    1000    /* rows of a report's tables (db/report.h's REPORT_ROWS_MAX) */
#define QUERY_TABLE_MAX    32      /* bytes of a table name */
#define QUERY_HEADEND_MAX  64      /* bytes of a headend's name incl. NUL */
#define QUERY_FILE_MAX     128     /* bytes of an archive file's name incl. NUL */

typedef struct query_param {
    const char *key;               /* NUL-terminated, into query_t.buf */
    const char *value;             /* NUL-terminated, into query_t.buf */
    size_t value_len;
} query_param_t;

typedef struct query {
    size_t n;
    query_param_t p[QUERY_MAX_PARAMS];
    char buf[QUERY_INPUT_MAX + 2 * QUERY_MAX_PARAMS];   /* decoding never grows a text */
} query_t;

/* Splits s (len bytes, not NUL-terminated; a leading '?' is skipped) at '&'
 * and decodes each "key=value" ("key" alone is an empty value; empty pieces
 * are skipped). 0, or -1 with a message in err (QUERY_ERR_MAX bytes): too
 * long, too many parameters, an unknown or repeated key, a bad '%' escape,
 * a control character, invalid UTF-8. */
int query_parse(const char *s, size_t len, query_t *out, char *err, size_t errlen);

/* The same for a posted form body, which may also carry the form-only
 * fields "csrf" and "password" (a query string may not: they must never be
 * part of a link). */
int query_parse_form(const char *s, size_t len, query_t *out, char *err, size_t errlen);

/* Removes key's pair from q and returns its value (still in q->buf), or
 * NULL if q has none: what the form handler consumes itself (the CSRF
 * token) never reaches query_view. */
const char *query_take(query_t *q, const char *key);

/* The value of key, or NULL. */
const char *query_get(const query_t *q, const char *key);

enum query_range {
    QUERY_RANGE_TODAY = 0,         /* since local midnight */
    QUERY_RANGE_24H,               /* the default */
    QUERY_RANGE_7D,
    QUERY_RANGE_30D,
};
const char *query_range_str(enum query_range r);   /* "today", "24h", "7d", "30d" */

enum query_loc {
    QUERY_LOC_ALL = 0,
    QUERY_LOC_REMOTE,
    QUERY_LOC_LOCAL,
};
const char *query_loc_str(enum query_loc l);        /* "all", "remote", "local" */

enum query_order {
    QUERY_BY_REQUESTS = 0,         /* the default */
    QUERY_BY_BYTES,
    QUERY_BY_BLOCKED,
};
const char *query_order_str(enum query_order o);    /* "requests", "bytes", "blocked" */

/* Everything a page can be asked; pointers into the query_t (NULL = not
 * given or empty). */
typedef struct query_view {
    enum query_range range;        /* range=today|24h|7d|30d */
    enum query_loc loc;            /* loc=all|remote|local */
    const char *user;              /* user=, name= (a user's page) */
    const char *host;
    const char *category;
    const char *client;            /* a numeric address */
    const char *decision;          /* one of txn_decision_str's names */
    unsigned page;                 /* page=1.. (default 1) */
    const char *ip;                /* trace: the client address */
    const char *url;               /* trace: the URL */
    const char *method;            /* trace: upper-case letters */
    enum query_order by;           /* by=requests|bytes|blocked (sites, categories) */
    unsigned limit;                /* limit=1..QUERY_LIMIT_MAX rows; 0 = not given */
    bool csv;                      /* format=csv: one table as CSV */
    const char *table;             /* table=NAME: which (lower-case letters, digits, '_') */
    const char *search;            /* q=: the identity map's search (a user's substring, an IP prefix) */
    const char *headend;           /* headend=NAME: the headend to test (a name's characters) */
    const char *file;              /* file=: an archive file (letters, digits, - _ . /) */
} query_view_t;

/* Checks and types the parameters. 0, or -1 with a message naming the
 * parameter (an unknown range, a page out of 1..QUERY_PAGE_MAX, an address
 * that is not numeric, a name longer than QUERY_NAME_MAX, ...). */
int query_view(const query_t *q, query_view_t *out, char *err, size_t errlen);

#endif
