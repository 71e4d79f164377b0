/*
 * db/csv.h: CSV from the report documents' tables (RFC 4180): a header line
 * of column names, then one line per row, CRLF line ends, a field quoted
 * ("...", quotes doubled) when it holds a comma, a quote, CR or LF. The rows
 * are the very JSON objects the API serves (db/reportdoc.h picks them out of
 * a document), so the admin UI's CSV and `musctl report --format csv` are
 * the JSON written another way and cannot disagree with it.
 *
 * Cells: a string as its UTF-8 bytes (jansson strings are valid UTF-8; a
 * NUL byte becomes U+FFFD), an integer in decimal, a real as jansson prints
 * it with JSON_REAL_PRECISION(CSV_REAL_DIGITS), true/false as those words,
 * null or a missing member as an empty field, an object or array as its
 * compact JSON. Against formula injection (a spreadsheet running "=cmd|..."
 * from a user name or URL), a string cell that starts with = + - @, a tab
 * or CR gets a leading ' (numbers are written by us and never prefixed).
 *
 * It writes to a caller's FILE (a file, stdout, or open_memstream for a
 * response body) and keeps no state. It knows nothing of SQL, HTTP or files.
 */
#ifndef MUS_DB_CSV_H
#define MUS_DB_CSV_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

#define CSV_REAL_DIGITS  10     /* significant digits of a real, as the JSON is dumped */
#define CSV_ERR_MAX      256

/* Writes the header (cols) and one line per element of rows, each a JSON
 * object whose members are among cols (a missing one is an empty field).
 * 0, or -1 with a message: rows is not an array, a row is not an object or
 * has a member that is not a column (the columns list is out of date), or
 * the FILE reports a write error. */
int csv_write(FILE *out, const char *const *cols, size_t ncols, const json_t *rows, char *err,
              size_t errlen);

/* One field for v (NULL = missing), quoted and prefixed as above. */
void csv_field(FILE *out, const json_t *v);

#endif
