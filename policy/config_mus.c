/*
 * policy/config_mus.c: the mus section (see config.h): how remote users are
 * recognised (a headend's map or the VPN pools), the probe host, the
 * reconnect interval and grace, musproxy's client id and control socket,
 * and the headends (a list of named entries: addresses, how to trust the
 * certificate, the password file's path), with their defaults. It only
 * parses and validates; mus/client.c runs the sessions and reads the
 * password file.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "config_load.h"

static const struct word remote_words[] = {
    { "headend", CONFIG_REMOTE_HEADEND }, { "ip_ranges", CONFIG_REMOTE_IP_RANGES },
};
WORD_HANDLER(h_remote_users, remote_words, enum config_remote_source)

static int
h_pin(struct loader *ld, const struct key_def *def, void *base)
{
    config_headend_t *h = base;
    char q[SHOW_LEN];

    if (cl_string(ld, def, base) < 0)
        return -1;
    if (strlen(h->pin_sha256) != 64)
        goto bad;
    for (char *p = h->pin_sha256; *p; p++) {
        if (*p >= 'A' && *p <= 'F')
            *p = (char)(*p + 32);
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            goto bad;
    }
    return 0;
bad:
    return cl_fail(ld, ld->ev.start_mark,
                "invalid pin_sha256 '%s' (64 hex digits: SHA-256 of the certificate's public key)",
                cl_show(q, h->pin_sha256));
}

static int
item_headend_addr(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_headend_t *h = base;
    const char *text = NULL;
    char q[SHOW_LEN];

    (void)def;
    if (cl_get_scalar(ld, "'addresses' entry", &text) < 0)
        return -1;
    if (strlen(text) >= sizeof(h->addr_text[i]) ||
        config_parse_sockaddr(text, &h->addrs[i], &h->addr_lens[i]) < 0)
        return cl_fail(ld, ld->ev.start_mark,
                       "invalid headend address '%s' (use 192.0.2.1:11999 or [2001:db8::1]:11999)",
                       cl_show(q, text));
    memcpy(h->addr_text[i], text, strlen(text) + 1);
    h->n_addrs = i + 1;
    return 0;
}

static int
h_headend_addrs(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_headend_t *)base)->n_addrs = 0;
    return cl_parse_list(ld, def, base, CONFIG_MAX_HEADEND_ADDRS, item_headend_addr);
}

enum {
    HE_KEY_NAME = 0, HE_KEY_ADDRESSES, HE_KEY_CA, HE_KEY_PIN, HE_KEY_CERT_NAME, HE_KEY_PASSWORD,
};
#define HE_STR(name, fn) { #name, fn, offsetof(config_headend_t, name), \
                           sizeof(((config_headend_t *)0)->name), NULL }
static const struct key_def headend_keys[] = {
    [HE_KEY_NAME] = HE_STR(name, cl_name),
    [HE_KEY_ADDRESSES] = { "addresses", h_headend_addrs, 0, 0, NULL },
    [HE_KEY_CA] = HE_STR(ca, cl_string),
    [HE_KEY_PIN] = HE_STR(pin_sha256, h_pin),
    [HE_KEY_CERT_NAME] = HE_STR(cert_name, cl_string),
    [HE_KEY_PASSWORD] = HE_STR(password_file, cl_string),
};
#undef HE_STR
static const struct section headend_section = CL_SECTION("in a mus.headends entry", headend_keys);

/* What needs the whole entry: addresses, the password file and one way to
 * trust the certificate; the certificate's name defaults to the host part
 * of the first address. */
static int
headend_check(struct loader *ld, void *items, size_t i, uint64_t seen, yaml_mark_t start)
{
    config_headend_t *h = (config_headend_t *)items + i;

    if (!(seen & (UINT64_C(1) << HE_KEY_ADDRESSES)) || h->n_addrs == 0)
        return cl_fail(ld, start, "headend '%s' has no 'addresses'", h->name);
    if (!(seen & (UINT64_C(1) << HE_KEY_PASSWORD)))
        return cl_fail(ld, start, "headend '%s' has no 'password_file'", h->name);
    if (!!(seen & (UINT64_C(1) << HE_KEY_CA)) == !!(seen & (UINT64_C(1) << HE_KEY_PIN)))
        return cl_fail(ld, start,
                       "headend '%s' needs exactly one of 'ca' (a CA file) or 'pin_sha256'",
                       h->name);
    if (h->cert_name[0] == '\0') {
        /* the host part of the first address */
        const char *t = h->addr_text[0];
        const char *end = t[0] == '[' ? strchr(t, ']') : strrchr(t, ':');
        size_t off = t[0] == '[' ? 1 : 0;
        size_t n = (size_t)(end - t) - off;
        memcpy(h->cert_name, t + off, n);
        h->cert_name[n] = '\0';
    }
    return 0;
}

/* A duplicate name is reported at the entry, once it is complete. */
static const struct cl_named_list headends_list = {
    CL_NAMED("headend", config_headend_t, name, CONFIG_MAX_HEADENDS),
    .sec = &headend_section, .unique_at = CL_UNIQUE_AT_ENTRY, .check = headend_check,
};

#define MUS_STR(name, fn) { #name, fn, offsetof(config_mus_t, name), \
                            sizeof(((config_mus_t *)0)->name), NULL }
static const struct key_def mus_keys[] = {
    { "remote_users", h_remote_users, offsetof(config_mus_t, remote_users), 0, NULL },
    { "vpn_pools", cl_cidr_list, offsetof(config_mus_t, vpn_pools),
      offsetof(config_mus_t, n_vpn_pools), NULL },
    MUS_STR(probe_host, cl_name),
    { "reconnect_interval", cl_duration, offsetof(config_mus_t, reconnect_interval), 0, NULL },
    { "grace", cl_duration0, offsetof(config_mus_t, grace), 0, NULL },
    MUS_STR(client_id, cl_name),
    MUS_STR(control_socket, cl_path_off),
    { "headends", cl_named_list, offsetof(config_mus_t, headends),
      offsetof(config_mus_t, n_headends), NULL, &headends_list },
};
#undef MUS_STR

const struct section config_mus_section = CL_SECTION("in mus", mus_keys);

/* On a zeroed config_mus_t: no headends, no VPN pools. */
void
config_mus_defaults(config_mus_t *m)
{
    m->remote_users = CONFIG_REMOTE_HEADEND;
    snprintf(m->probe_host, sizeof(m->probe_host), "mus.cisco.com");
    m->reconnect_interval = 60000;
    m->grace = 300000;
    snprintf(m->client_id, sizeof(m->client_id), "musproxy");
    snprintf(m->control_socket, sizeof(m->control_socket), "var/musproxy.sock");
}
