/*
 * policy/basicauth.h: HTTP Basic authentication against a password file of
 * salted PBKDF2-SHA256 hashes, one "user:pbkdf2-sha256$ITER$SALT$HASH" line
 * per account (what `musctl passwd USER --file PATH` writes; '#' comments
 * and blank lines allowed). The proxy's Basic identity profiles (policy_eval.c,
 * Proxy-Authorization) and the admin UI (admin/auth.c, Authorization) both
 * check credentials here, so there is one parser and one verification.
 *
 * A loaded basicauth_t is immutable but for a small cache of header values
 * already verified (keyed by their SHA-256, under a mutex), so checks from
 * any number of threads are safe. Unknown users cost the same PBKDF2 as
 * known ones and hashes are compared in constant time. It does not rate-limit
 * failures (the caller knows the client address), watch the file for changes
 * or know any HTTP header name.
 */
#ifndef MUS_POLICY_BASICAUTH_H
#define MUS_POLICY_BASICAUTH_H

#include <stdbool.h>
#include <stddef.h>

#define BASICAUTH_ERR_LEN       512
#define BASICAUTH_PBKDF2_ITER   100000      /* what basicauth_hash uses */
#define BASICAUTH_MAX_ITER      10000000u   /* larger counts in a file are refused */
#define BASICAUTH_VALUE_MAX     4096        /* longer header values are refused unread */
#define BASICAUTH_CACHE         256         /* verified header values remembered */
#define BASICAUTH_HASH_MAX      128         /* bytes of a basicauth_hash result incl. NUL */

typedef struct basicauth basicauth_t;

/* Reads the password file. NULL with a message naming the file and, for a
 * bad line, its number ("password file F:3: malformed line ..."; a user
 * listed twice; cannot be opened). A file without accounts loads (count 0;
 * every check then fails). */
basicauth_t *basicauth_load(const char *path, char *err, size_t errlen);
/* Wipes the hashes and frees; NULL allowed. */
void basicauth_free(basicauth_t *a);
/* Accounts in the file. */
size_t basicauth_count(const basicauth_t *a);

/* Checks a header value "Basic base64(user:password)" (the scheme is
 * case-insensitive, blanks around it allowed; len bytes, no NUL needed).
 * On success copies the user name into user (cap bytes) and returns true;
 * false for a wrong password, an unknown user, a malformed value, or a name
 * that does not fit. Thread-safe. */
bool basicauth_check(const basicauth_t *a, const char *value, size_t len, char *user,
                     size_t cap);

/* Checks a user name and password given apart (a login form): true if
 * pass (pass_len bytes, at most BASICAUTH_VALUE_MAX, no NUL) is user's password.
 * Costs one PBKDF2 whether the user exists or not. Thread-safe. */
bool basicauth_verify(const basicauth_t *a, const char *user, const char *pass, size_t pass_len);

/* The name of account i (0 .. count-1, in name order), NULL past the end:
 * to walk the accounts. */
const char *basicauth_user(const basicauth_t *a, size_t i);

/* Whether user has the same entry (iterations, salt, hash) in a and b, as
 * when a password file is read again; false if it is missing in either. */
bool basicauth_same_account(const basicauth_t *a, const basicauth_t *b, const char *user);

/* Hashes a password for the file: "pbkdf2-sha256$ITER$SALT_B64$HASH_B64"
 * with a fresh random salt. 0, or -1 (no randomness, cap too small). */
int basicauth_hash(const char *password, char *out, size_t cap);

#endif
