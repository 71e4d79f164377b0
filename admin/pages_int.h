/*
 * admin/pages_int.h: inside admin/ only, what the HTML pages share: the
 * page buffer and the three ways to put text in it, the frame's range
 * picker, tables and figure boxes described by column lists, each with a
 * link to its CSV. pages.c has these and the live pages (sessions, store,
 * trace); pages_report.c the report pages; pages_ops.c the headends, the
 * identity map and the scheduled reports. Nothing here
 * does I/O.
 */
#ifndef MUS_ADMIN_PAGES_INT_H
#define MUS_ADMIN_PAGES_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct hb {
    char *p;
    size_t len, cap;
    bool bad;                      /* out of memory or too large: the page fails */
    const char *path;              /* this page's path, for its CSV links */
    const char *self;              /* its parameters, percent-encoded, without format/table */
    const char *csrf;              /* the login's CSRF token for every form; NULL: no forms */
} hb_t;

/* The page's own markup (string literals), an integer, a value from a
 * document (HTML-escaped), a value for a link's query (percent-encoded),
 * a time in ms (local, "-" if 0), any JSON value as text (escaped). */
void hb_put(hb_t *b, const char *s, size_t n);
void hb_lit(hb_t *b, const char *s);
void hb_int(hb_t *b, long long v);
void hb_esc(hb_t *b, const char *s);
void hb_url(hb_t *b, const char *s);
void hb_time(hb_t *b, long long ms);
void hb_value(hb_t *b, const json_t *v);

/* A member of o as a string ("" if not one) or an integer (0). */
const char *jstr(const json_t *o, const char *key);
long long jint(const json_t *o, const char *key);

enum col_kind {
    COL_TEXT = 0,
    COL_INT,
    COL_TIME_MS,
    COL_TIME_S,
    COL_BOOL,          /* JSON true/false or 0/1 */
    COL_USER,          /* a link to the user's page */
    COL_HOST,          /* a link to the transactions of the host */
    COL_URL,           /* long text that may break anywhere */
    COL_PCT,           /* a percentage (a JSON number), one decimal */
};

typedef struct col {
    const char *key, *label;
    enum col_kind kind;
} col_t;

/* Range and location choices as links to path (keeping extra, an already
 * encoded and escaped "&amp;k=v" tail). */
void pages_picker(hb_t *b, const json_t *doc, const char *path, const char *extra);

/* rows (a JSON array) as <table id="id">, "Nothing in this range." when
 * empty; csv names the table for its CSV link (NULL: none). */
void pages_table(hb_t *b, const char *id, const char *csv, const json_t *rows,
                 const col_t *cols, size_t ncols, const json_t *doc);
#define TABLE(b, id, csv, rows, cols, doc) \
    pages_table(b, id, csv, rows, cols, sizeof(cols) / sizeof(cols[0]), doc)

/* Figures of obj as a row of boxes, each <dd id="key">; csv as above. */
void pages_summary(hb_t *b, const char *csv, const json_t *obj, const col_t *cols,
                   size_t ncols);
#define SUMMARY(b, csv, obj, cols) pages_summary(b, csv, obj, cols, sizeof(cols) / sizeof(cols[0]))

/* <p class="csv"><a id="csv-NAME" href="PATH?SELF&format=csv&table=NAME">. */
void pages_csv_link(hb_t *b, const char *csv);

/* The hidden CSRF field every posted form carries (b->csrf). */
void pages_csrf_field(hb_t *b);

/* A text input named key holding value. */
void pages_input(hb_t *b, const char *label, const char *key, const char *value);

/* A page: its "page" name, path, title and renderer. */
typedef struct pages_entry {
    const char *page, *path, *title;
    void (*fn)(hb_t *, const json_t *);
} pages_entry_t;

/* The report pages (pages_report.c). */
extern const pages_entry_t pages_report[];
extern const size_t pages_report_n;
/* The headends (with the connection test), the identity map and the
 * scheduled reports (pages_ops.c). */
extern const pages_entry_t pages_ops[];
extern const size_t pages_ops_n;

#endif
