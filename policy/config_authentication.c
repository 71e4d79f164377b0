/*
 * policy/config_authentication.c: the authentication section (see
 * config.h): the Basic realm, the password file of the proxy users (its
 * path only: policy/basicauth.c reads the salted hashes) and how long an
 * authenticated client address stays known, with their defaults. It only
 * parses and validates; config.c checks that auth: basic profiles have a
 * password file.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_load.h"

#define AUTH_REALM_DEFAULT          "musproxy"
#define AUTH_SURROGATE_TTL_DEFAULT  (15u * 60 * 1000)

/* Realm: goes into Proxy-Authenticate: Basic realm="...". */
static int
h_realm(struct loader *ld, const struct key_def *def, void *base)
{
    char *field = (char *)base + def->offset;
    const char *text = NULL;
    char q[SHOW_LEN];
    size_t len;
    bool ok;

    if (cl_get_scalar(ld, "'realm'", &text) < 0)
        return -1;
    len = strlen(text);
    ok = len > 0 && len < def->count_offset;
    for (size_t i = 0; ok && i < len; i++)
        ok = text[i] >= 0x20 && text[i] < 0x7f && text[i] != '"' && text[i] != '\\';
    if (!ok)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid realm '%s' (1-%zu printable ASCII characters, no '\"' or '\\')",
                       cl_show(q, text), def->count_offset - 1);
    memcpy(field, text, len + 1);
    return 0;
}

#define PS_STR(key, field, fn) { key, fn, offsetof(config_policies_t, field), \
                                 sizeof(((config_policies_t *)0)->field), NULL }
static const struct key_def auth_keys[] = {
    PS_STR("realm", auth_realm, h_realm),
    PS_STR("password_file", auth_password_file, cl_string),
    { "surrogate_ttl", cl_duration, offsetof(config_policies_t, auth_surrogate_ttl), 0, NULL },
};
#undef PS_STR

const struct section config_auth_section = CL_SECTION("in authentication", auth_keys);

void
config_auth_defaults(config_policies_t *pol)
{
    snprintf(pol->auth_realm, sizeof(pol->auth_realm), "%s", AUTH_REALM_DEFAULT);
    pol->auth_surrogate_ttl = AUTH_SURROGATE_TTL_DEFAULT;
}
