/*
 * policy/config_admin.c: the admin section (see config.h): whether the admin
 * web UI runs, where it listens, which password file holds its accounts
 * (the secret itself is never in the YAML), the TLS certificate and key of
 * an HTTPS listener, and how long a login lasts. Secure by default: a
 * listen address other than loopback is an error unless allow_remote: true
 * says it is meant. It parses and validates: tls_cert and tls_key come
 * together, and each must name an existing regular file. Whether the key
 * can be read is found out when the UI's service opens (before privileges
 * drop, so a key only root may read works; admin/admin.c reads both), not
 * here: a reload runs as run.user, and must not be refused for a key it
 * may not read. admin/admin.c serves the UI.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "config_load.h"

#define ADMIN_LISTEN_DEFAULT        "127.0.0.1:8080"
#define ADMIN_PASSWD_DEFAULT        "etc/admin.passwd"
#define ADMIN_SESSION_IDLE_DEFAULT  (30u * 60 * 1000)        /* 30 min */
#define ADMIN_SESSION_MAX_DEFAULT   (12u * 3600 * 1000)      /* 12 h */
#define ADMIN_SESSION_MIN           1000u                    /* 1 s, either limit */
#define ADMIN_SESSION_IDLE_MAX      (24u * 3600 * 1000)      /* 24 h */
#define ADMIN_SESSION_MAX_MAX       (7u * 24 * 3600 * 1000)  /* 7 days */

static int
h_listen(struct loader *ld, const struct key_def *def, void *base)
{
    config_admin_t *a = base;
    const char *text = NULL;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'listen'", &text) < 0)
        return -1;
    if (strlen(text) >= sizeof(a->listen) ||
        config_parse_sockaddr(text, &a->addr, &a->addr_len) < 0)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid listen address '%s' (use 127.0.0.1:port or [::1]:port, numeric)",
                       cl_show(q, text));
    memcpy(a->listen, text, strlen(text) + 1);
    ld->admin_listen_mark = ld->ev.start_mark;
    ld->admin_listen_set = true;
    return 0;
}

/* tls_cert / tls_key: a path (cl_path_off), its position kept for the checks. */
static int
h_tls(struct loader *ld, const struct key_def *def, void *base)
{
    ld->admin_tls_mark[def->offset == offsetof(config_admin_t, tls_key)] = ld->ev.start_mark;
    return cl_path_off(ld, def, base);
}

/* A duration in [ADMIN_SESSION_MIN, def->count_offset] ms. */
static int
h_session(struct loader *ld, const struct key_def *def, void *base)
{
    uint32_t *v = (uint32_t *)(void *)((char *)base + def->offset);

    if (def->offset == offsetof(config_admin_t, session_idle))
        ld->admin_session_mark = ld->ev.start_mark;
    if (cl_duration(ld, def, base) < 0)
        return -1;
    if (*v < ADMIN_SESSION_MIN || *v > def->count_offset)
        return cl_fail(ld, ld->ev.start_mark, "'%s' must be between 1s and %uh", def->name,
                       (unsigned)(def->count_offset / 3600000u));
    return 0;
}

static const struct key_def admin_keys[] = {
    { "enabled", cl_bool, offsetof(config_admin_t, enabled), 0, NULL },
    { "listen", h_listen, 0, 0, NULL },
    { "password_file", cl_path_off, offsetof(config_admin_t, password_file),
      sizeof(((config_admin_t *)0)->password_file), NULL },
    { "allow_remote", cl_bool, offsetof(config_admin_t, allow_remote), 0, NULL },
    { "tls_cert", h_tls, offsetof(config_admin_t, tls_cert),
      sizeof(((config_admin_t *)0)->tls_cert), NULL },
    { "tls_key", h_tls, offsetof(config_admin_t, tls_key),
      sizeof(((config_admin_t *)0)->tls_key), NULL },
    /* count_offset: the longest value allowed, in ms */
    { "session_idle", h_session, offsetof(config_admin_t, session_idle), ADMIN_SESSION_IDLE_MAX,
      NULL },
    { "session_max", h_session, offsetof(config_admin_t, session_max), ADMIN_SESSION_MAX_MAX,
      NULL },
};

static const struct section admin_section = CL_SECTION("in admin", admin_keys);

/* A TLS file must be there and be a regular file. One we may not look at
 * (EACCES: a directory only root enters) is left to the open step. */
static int
check_tls_file(struct loader *ld, const char *key, const char *path, yaml_mark_t mark)
{
    struct stat st;
    char q[SHOW_LEN];

    if (stat(path, &st) != 0) {
        if (errno == EACCES)
            return 0;
        return cl_fail(ld, mark, "admin %s '%s': %s", key, cl_show(q, path), strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return cl_fail(ld, mark, "admin %s '%s' is not a regular file", key, cl_show(q, path));
    return 0;
}

int
config_admin_parse(struct loader *ld, const struct key_def *def, void *base)
{
    config_admin_t *a = (config_admin_t *)(void *)((char *)base + def->offset);
    struct key_def sub = *def;
    char q[SHOW_LEN];
    bool cert, key;

    sub.offset = 0;
    sub.sub = &admin_section;
    ld->admin_listen_set = false;
    ld->admin_tls_mark[0] = ld->admin_tls_mark[1] = ld->admin_session_mark = ld->ev.start_mark;
    if (cl_section(ld, &sub, a) < 0)
        return -1;
    if (a->enabled && !a->allow_remote && ld->admin_listen_set && !cl_is_loopback(&a->addr))
        return cl_fail(ld, ld->admin_listen_mark,
                       "admin listen address '%s' is not a loopback address: the admin UI "
                       "would be reachable from other hosts (set allow_remote: true to allow it)",
                       cl_show(q, a->listen));
    cert = a->tls_cert[0] != '\0';
    key = a->tls_key[0] != '\0';
    if (cert != key)
        return cl_fail(ld, ld->admin_tls_mark[cert ? 0 : 1],
                       "admin %s is set without %s: HTTPS needs both (or neither)",
                       cert ? "tls_cert" : "tls_key", cert ? "tls_key" : "tls_cert");
    if (a->enabled && cert &&
        (check_tls_file(ld, "tls_cert", a->tls_cert, ld->admin_tls_mark[0]) < 0 ||
         check_tls_file(ld, "tls_key", a->tls_key, ld->admin_tls_mark[1]) < 0))
        return -1;
    if (a->session_idle > a->session_max)
        return cl_fail(ld, ld->admin_session_mark,
                       "admin session_idle is longer than session_max: a login would end at "
                       "session_max anyway");
    return 0;
}

void
config_admin_defaults(config_admin_t *a)
{
    memset(a, 0, sizeof(*a));
    a->enabled = true;
    snprintf(a->listen, sizeof(a->listen), "%s", ADMIN_LISTEN_DEFAULT);
    (void)config_parse_sockaddr(a->listen, &a->addr, &a->addr_len);
    snprintf(a->password_file, sizeof(a->password_file), "%s", ADMIN_PASSWD_DEFAULT);
    a->session_idle = ADMIN_SESSION_IDLE_DEFAULT;
    a->session_max = ADMIN_SESSION_MAX_DEFAULT;
}
