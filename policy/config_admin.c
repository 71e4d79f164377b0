/*
 * policy/config_admin.c: the admin section (see config.h): whether the admin
 * web UI runs, where it listens and which password file holds its accounts
 * (the secret itself is never in the YAML). Secure by default: a listen
 * address other than loopback is an error unless allow_remote: true says it
 * is meant. It only parses and validates; admin/admin.c serves the UI (and
 * refuses to start without a password file).
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_load.h"

#define ADMIN_LISTEN_DEFAULT    "127.0.0.1:8080"
#define ADMIN_PASSWD_DEFAULT    "etc/admin.passwd"

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

static const struct key_def admin_keys[] = {
    { "enabled", cl_bool, offsetof(config_admin_t, enabled), 0, NULL },
    { "listen", h_listen, 0, 0, NULL },
    { "password_file", cl_path_off, offsetof(config_admin_t, password_file),
      sizeof(((config_admin_t *)0)->password_file), NULL },
    { "allow_remote", cl_bool, offsetof(config_admin_t, allow_remote), 0, NULL },
};

static const struct section admin_section = CL_SECTION("in admin", admin_keys);

int
config_admin_parse(struct loader *ld, const struct key_def *def, void *base)
{
    config_admin_t *a = (config_admin_t *)(void *)((char *)base + def->offset);
    struct key_def sub = *def;
    char q[SHOW_LEN];

    sub.offset = 0;
    sub.sub = &admin_section;
    ld->admin_listen_set = false;
    if (cl_section(ld, &sub, a) < 0)
        return -1;
    if (a->enabled && !a->allow_remote && ld->admin_listen_set && !cl_is_loopback(&a->addr))
        return cl_fail(ld, ld->admin_listen_mark,
                       "admin listen address '%s' is not a loopback address: the admin UI "
                       "would be reachable from other hosts (set allow_remote: true to allow it)",
                       cl_show(q, a->listen));
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
}
