/*
 * admin/session.h: the admin UI's logins, kept on the server: a bounded
 * table of sessions, each found by a 256-bit random id (OpenSSL RAND_bytes;
 * the browser holds it in a cookie) and carrying its user and its own CSRF
 * token (random as well, so not derivable from the cookie). A session ends
 * at logout, after idle_ms without a request, max_ms after the login in any
 * case, when its user's password changes (session_end_user), or, when the
 * table is full and someone logs in, if it is the oldest.
 *
 * Ids and tokens travel as SESSION_TOKEN_LEN lower-case hex digits; an id
 * is compared with every live session's, and a token with the session's,
 * in constant time (CRYPTO_memcmp). Times are the caller's monotonic
 * milliseconds, so a clock step neither ends nor extends a login.
 *
 * One thread only (the admin thread): no locks. It knows nothing of HTTP,
 * cookies or passwords.
 */
#ifndef MUS_ADMIN_SESSION_H
#define MUS_ADMIN_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SESSION_ID_BYTES   32                       /* 256 random bits */
#define SESSION_TOKEN_LEN  (2 * SESSION_ID_BYTES)   /* hex digits of an id or CSRF token */
#define SESSION_MAX        128                      /* at once; a new login ends the oldest */
#define SESSION_USER_MAX   256                      /* bytes of a user name incl. NUL */

typedef struct session_table session_table_t;

/* What a found session says (valid until the table next changes). */
typedef struct session {
    char user[SESSION_USER_MAX];
    char csrf[SESSION_TOKEN_LEN + 1];   /* the token every form of this login carries */
} session_t;

/* An empty table whose sessions last idle_ms without a request and max_ms
 * at most (both > 0). NULL if out of memory. */
session_table_t *session_table_new(int64_t idle_ms, int64_t max_ms);
/* Wipes the ids and tokens and frees; NULL allowed. */
void session_table_free(session_table_t *t);

/* Logs user in at now: a fresh id into id (SESSION_TOKEN_LEN + 1 bytes,
 * the cookie's value) and the session's CSRF token. A full table first
 * ends the session logged in earliest (logged). 0, or -1 (no randomness,
 * a user name that does not fit). */
int session_create(session_table_t *t, const char *user, int64_t now, char *id);

/* The live session whose id is text (len bytes), or NULL: text must be
 * SESSION_TOKEN_LEN hex digits. Sessions past their time are ended on the
 * way. A session found starts its idle time again. */
const session_t *session_find(session_table_t *t, const char *text, size_t len, int64_t now);

/* A fresh random token of SESSION_TOKEN_LEN hex digits into out
 * (SESSION_TOKEN_LEN + 1 bytes), as ids and CSRF tokens are made: for
 * other one-time values (the login form's token). 0, or -1 (no randomness). */
int session_random_token(char *out);

/* Whether a (alen bytes) is the token b (SESSION_TOKEN_LEN digits), in
 * constant time; false for any other length. */
bool session_token_eq(const char *a, size_t alen, const char *b);

/* Whether token (NUL-terminated; NULL = none) is s's CSRF token. */
bool session_csrf_ok(const session_t *s, const char *token);

/* Ends the session whose id is text (logout): true if there was one. */
bool session_end(session_table_t *t, const char *text, size_t len);

/* Ends every session of user: how many. */
size_t session_end_user(session_table_t *t, const char *user);

/* Sessions in the table (one past its time counts until it is looked at). */
size_t session_count(const session_table_t *t);

#endif
