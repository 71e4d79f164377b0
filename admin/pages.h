/*
 * admin/pages.h: the admin UI's HTML. Each page is rendered from the JSON
 * document admin/views.h builds (the same one /api/... serves), so what a
 * page shows is what the API says. Every value that comes from the
 * document is HTML-escaped (text and attributes) and every value put into
 * a link is percent-encoded first; the pages use a small inline style
 * sheet and no script (the timeline's chart is inline SVG). Each table
 * links to its CSV (?format=csv&table=NAME); every form that posts carries
 * the session's CSRF token. It does no I/O and knows no HTTP beyond link
 * paths and form fields.
 */
#ifndef MUS_ADMIN_PAGES_H
#define MUS_ADMIN_PAGES_H

#include <jansson.h>
#include <stddef.h>

#define ADMIN_PAGE_MAX_BYTES  (8u << 20)   /* a page larger than this is an error */

/* The page for doc (its "page" member says which), as a malloc'd,
 * NUL-terminated text (length in *len); user is the logged-in account and
 * csrf its session's CSRF token, which every form on the page carries
 * (the logout button in the header, the trace form; NULL: logged in by
 * Basic credentials, no forms that post); self is the request's
 * parameters, percent-encoded, without format and table ("" if none; NULL:
 * no CSV links), which every table's CSV link repeats. NULL if out of
 * memory or over ADMIN_PAGE_MAX_BYTES. */
char *admin_page_render(const json_t *doc, const char *user, const char *csrf, const char *self,
                        size_t *len);

/* An error page: status and message (escaped); user and csrf as above
 * (NULL: nobody is logged in, no navigation). */
char *admin_page_error(int status, const char *msg, const char *user, const char *csrf,
                       size_t *len);

/* The login form (user, password, and token in a hidden field: the login's
 * own CSRF token), with msg (escaped) above it if not NULL. */
char *admin_page_login(const char *token, const char *msg, size_t *len);

/* HTML-escapes s (n bytes) into out (cap bytes, NUL-terminated, cut to
 * whole entities); the length written. & < > " ' become entities. */
size_t admin_page_escape(const char *s, size_t n, char *out, size_t cap);

#endif
