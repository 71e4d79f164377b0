/*
 * admin/auth.c: the admin UI's logins (see auth.h). The failure table is a
 * small array searched linearly (AUTH_CLIENTS_MAX entries, one thread); when
 * it is full the entry seen least recently is reused, and an entry that is
 * still locked out is never chosen before an unlocked one. Form and Basic
 * logins share it: a lockout holds for both.
 */
#include "auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/log.h"
#include "../policy/basicauth.h"

typedef struct fail_entry {
    uint8_t addr[16];             /* IPv4 as ::ffff:a.b.c.d */
    bool used;
    unsigned fails;               /* within the window */
    int64_t window_start;         /* first failure of the window */
    int64_t last_seen;
} fail_entry_t;

struct auth {
    char path[4096];
    basicauth_t *ba;              /* NULL: no accounts (the file went away) */
    struct stat st;               /* of the file as loaded */
    bool have_st;
    int64_t next_check;
    fail_entry_t fails[AUTH_CLIENTS_MAX];
};

static void
addr_key(const struct sockaddr *sa, uint8_t out[16])
{
    memset(out, 0, 16);
    if (sa == NULL)
        return;
    if (sa->sa_family == AF_INET) {
        out[10] = out[11] = 0xff;
        memcpy(out + 12, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
    } else if (sa->sa_family == AF_INET6) {
        memcpy(out, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, 16);
    }
}

static void
addr_text(const uint8_t a[16], char *buf, size_t cap)
{
    static const uint8_t v4pfx[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (memcmp(a, v4pfx, sizeof(v4pfx)) == 0)
        inet_ntop(AF_INET, a + 12, buf, (socklen_t)cap);
    else
        inet_ntop(AF_INET6, a, buf, (socklen_t)cap);
}

void
auth_client_text(const struct sockaddr *client, char *buf, size_t cap)
{
    uint8_t key[16];

    if (client == NULL) {
        snprintf(buf, cap, "?");
        return;
    }
    addr_key(client, key);
    addr_text(key, buf, cap);
}

auth_t *
auth_new(const char *path, char *err, size_t errlen)
{
    auth_t *a;
    char berr[BASICAUTH_ERR_LEN];

    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "no admin.password_file is set");
        return NULL;
    }
    a = calloc(1, sizeof(*a));
    if (a == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(a->path, sizeof(a->path), "%s", path);
    a->have_st = stat(path, &a->st) == 0;
    a->ba = basicauth_load(path, berr, sizeof(berr));
    if (a->ba == NULL) {
        snprintf(err, errlen, "%s", berr);
        goto fail;
    }
    if (basicauth_count(a->ba) == 0) {
        snprintf(err, errlen, "password file %.512s has no account", path);
        goto fail;
    }
    return a;
fail:
    auth_free(a);
    return NULL;
}

void
auth_free(auth_t *a)
{
    if (a == NULL)
        return;
    basicauth_free(a->ba);
    free(a);
}

size_t
auth_accounts(const auth_t *a)
{
    return a != NULL ? basicauth_count(a->ba) : 0;
}

/* The entry of addr, or a fresh one (the least recently seen unlocked
 * entry when the table is full). */
static fail_entry_t *
entry_for(auth_t *a, const uint8_t addr[16], int64_t now)
{
    fail_entry_t *free_e = NULL, *victim = NULL;

    for (size_t i = 0; i < AUTH_CLIENTS_MAX; i++) {
        fail_entry_t *e = &a->fails[i];
        bool locked;
        if (e->used && memcmp(e->addr, addr, 16) == 0)
            return e;
        if (!e->used) {
            if (free_e == NULL)
                free_e = e;
            continue;
        }
        locked = e->fails >= AUTH_FAIL_MAX && now - e->window_start < AUTH_FAIL_WINDOW_S;
        if (victim == NULL || (!locked && victim->fails >= AUTH_FAIL_MAX) ||
            (locked == (victim->fails >= AUTH_FAIL_MAX) && e->last_seen < victim->last_seen))
            victim = e;
    }
    if (free_e == NULL)
        free_e = victim;
    memset(free_e, 0, sizeof(*free_e));
    memcpy(free_e->addr, addr, 16);
    free_e->used = true;
    free_e->last_seen = now;
    return free_e;
}

/* The failure entry of client, or NULL with *retry_s set if it is locked out. */
static fail_entry_t *
limit_enter(auth_t *a, const struct sockaddr *client, int64_t now, unsigned *retry_s)
{
    uint8_t key[16];
    fail_entry_t *e;

    addr_key(client, key);
    e = entry_for(a, key, now);
    e->last_seen = now;
    if (e->fails > 0 && now - e->window_start >= AUTH_FAIL_WINDOW_S)
        e->fails = 0;
    if (e->fails >= AUTH_FAIL_MAX) {
        int64_t left = AUTH_FAIL_WINDOW_S - (now - e->window_start);
        *retry_s = left > 0 ? (unsigned)left : 1;
        return NULL;
    }
    return e;
}

/* Counts and logs the outcome of a check (user: the name tried, NULL if unknown). */
static enum auth_result
limit_result(fail_entry_t *e, bool ok, const char *user, int64_t now)
{
    char ip[INET6_ADDRSTRLEN], as[96] = "";

    if (ok) {
        e->fails = 0;
        return AUTH_OK;
    }
    if (e->fails == 0)
        e->window_start = now;
    e->fails++;
    addr_text(e->addr, ip, sizeof(ip));
    /* a form's user name is UTF-8 text without controls (admin/query.h); cut short */
    if (user != NULL)
        snprintf(as, sizeof(as), " as '%.64s'", user);
    if (e->fails >= AUTH_FAIL_MAX)
        log_warn("admin: %u failed logins from %s: refused for %d s", e->fails, ip,
                 AUTH_FAIL_WINDOW_S);
    else
        log_info("admin: failed login%s from %s (%u of %d)", as, ip, e->fails, AUTH_FAIL_MAX);
    return AUTH_FAILED;
}

enum auth_result
auth_check(auth_t *a, const struct sockaddr *client, const char *header, int64_t now,
           char *user, unsigned *retry_s)
{
    fail_entry_t *e = limit_enter(a, client, now, retry_s);

    if (e == NULL)
        return AUTH_LIMITED;
    if (header == NULL)
        return AUTH_MISSING;
    return limit_result(e, a->ba != NULL && basicauth_check(a->ba, header, strlen(header), user,
                                                            AUTH_USER_MAX),
                        NULL, now);
}

enum auth_result
auth_login(auth_t *a, const struct sockaddr *client, const char *user, const char *pass,
           size_t pass_len, int64_t now, unsigned *retry_s)
{
    fail_entry_t *e = limit_enter(a, client, now, retry_s);

    if (e == NULL)
        return AUTH_LIMITED;
    if (user == NULL || user[0] == '\0')
        return AUTH_MISSING;
    return limit_result(e, a->ba != NULL && pass != NULL &&
                               basicauth_verify(a->ba, user, pass, pass_len),
                        user, now);
}

/* Tells changed of every account of old that now (NULL: none) lacks or changed. */
static void
tell_changed(const basicauth_t *old, const basicauth_t *now, auth_changed_fn changed, void *arg)
{
    const char *u;

    for (size_t i = 0; changed != NULL && (u = basicauth_user(old, i)) != NULL; i++)
        if (!basicauth_same_account(old, now, u))
            changed(arg, u);
}

void
auth_maybe_reload(auth_t *a, int64_t now, auth_changed_fn changed, void *arg)
{
    struct stat st;
    char err[BASICAUTH_ERR_LEN];
    basicauth_t *ba;

    if (now < a->next_check)
        return;
    a->next_check = now + AUTH_RECHECK_S;
    if (stat(a->path, &st) != 0) {
        if (a->ba != NULL) {
            log_warn("admin: password file %s: %s: every login now fails", a->path,
                     strerror(errno));
            tell_changed(a->ba, NULL, changed, arg);
            basicauth_free(a->ba);
            a->ba = NULL;
        }
        a->have_st = false;
        return;
    }
    if (a->have_st && st.st_ino == a->st.st_ino && st.st_dev == a->st.st_dev &&
        st.st_size == a->st.st_size && st.st_mtim.tv_sec == a->st.st_mtim.tv_sec &&
        st.st_mtim.tv_nsec == a->st.st_mtim.tv_nsec)
        return;
    a->st = st;
    a->have_st = true;
    ba = basicauth_load(a->path, err, sizeof(err));
    if (ba == NULL) {
        log_error("admin: %s (the accounts loaded before stay)", err);
        return;
    }
    tell_changed(a->ba, ba, changed, arg);
    basicauth_free(a->ba);
    a->ba = ba;
    log_info("admin: password file %s read again: %zu accounts", a->path, basicauth_count(ba));
}
