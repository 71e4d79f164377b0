/*
 * admin/auth.h: who may use the admin UI: the accounts of the admin
 * password file, checked through policy/basicauth.h (the same format and
 * code as the proxy's Basic profiles: `musctl passwd USER --file PATH`),
 * either as the login form's user and password (auth_login) or as HTTP
 * Basic credentials (auth_check: the JSON API and /metrics, for scripts and
 * scrapers). Failed logins of both kinds are counted per client address
 * and logged (never the password); an address with AUTH_FAIL_MAX failures
 * inside AUTH_FAIL_WINDOW_S is refused, unchecked, until that window ends.
 * The file is read again when it changes (a new account or password needs
 * no restart), and the caller hears of every account whose entry changed
 * or went away, to end its sessions.
 *
 * One thread only (the admin thread, which runs every libmicrohttpd
 * callback): no locks. It knows nothing of HTTP beyond the header value,
 * and nothing of sessions.
 */
#ifndef MUS_ADMIN_AUTH_H
#define MUS_ADMIN_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define AUTH_FAIL_MAX        5      /* failed logins from one address ... */
#define AUTH_FAIL_WINDOW_S   60     /* ... within this many seconds lock it out for the rest */
#define AUTH_CLIENTS_MAX     256    /* addresses remembered (the least recent is forgotten) */
#define AUTH_RECHECK_S       2      /* how often the password file's change is looked for */
#define AUTH_USER_MAX        256    /* bytes of a user name incl. NUL */
#define AUTH_ERR_MAX         640

typedef struct auth auth_t;

enum auth_result {
    AUTH_OK = 0,          /* user is set */
    AUTH_MISSING,         /* no Authorization header: ask (401), not counted */
    AUTH_FAILED,          /* wrong credentials: 401, counted */
    AUTH_LIMITED,         /* too many failures from this address: 429, not checked */
};

/* Loads the password file. NULL with a message (cannot be read, malformed,
 * no account in it): the UI must then not start. */
auth_t *auth_new(const char *path, char *err, size_t errlen);
void auth_free(auth_t *a);   /* NULL allowed */

/* Checks the Authorization value (NULL if absent) from client at now (Unix
 * seconds). AUTH_OK copies the user into user (AUTH_USER_MAX bytes);
 * AUTH_LIMITED sets *retry_s to the seconds left. */
enum auth_result auth_check(auth_t *a, const struct sockaddr *client, const char *header,
                            int64_t now, char *user, unsigned *retry_s);

/* The same for a login form: user (NULL or "" = AUTH_MISSING, not counted)
 * and pass (pass_len bytes). A failure is logged with the user name. */
enum auth_result auth_login(auth_t *a, const struct sockaddr *client, const char *user,
                            const char *pass, size_t pass_len, int64_t now, unsigned *retry_s);

/* Told of each account whose entry a reread file changed or dropped. */
typedef void (*auth_changed_fn)(void *arg, const char *user);

/* Reads the file again if it changed since the last look (at most every
 * AUTH_RECHECK_S); changed(arg, user) hears of every account of the old
 * file that the new one drops or gives another password. A file that no
 * longer loads keeps the accounts in force and logs why; a file that is
 * gone drops them all (every login fails, every account is changed). */
void auth_maybe_reload(auth_t *a, int64_t now, auth_changed_fn changed, void *arg);

/* A client address as text for a log line ("?" if none). */
void auth_client_text(const struct sockaddr *client, char *buf, size_t cap);

/* Accounts in force. */
size_t auth_accounts(const auth_t *a);

#endif
