/*
 * policy/config_transparent.c: the proxy.transparent section (see config.h):
 * what to do with intercepted traffic whose Host does not name its original
 * destination, TLS without SNI, the ClientHello deadline, and the bypass
 * list (domain names, each covering its subdomains, and address prefixes in
 * one list). It only parses and validates; proxy/intercept.c applies it.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../common/cidr.h"
#include "config_load.h"

#define PEEK_TIMEOUT_DEFAULT_MS 5000

static const struct word mismatch_words[] = {
    { "log", CONFIG_HOST_MISMATCH_LOG }, { "refuse", CONFIG_HOST_MISMATCH_REFUSE },
};
static const struct word no_sni_words[] = {
    { "allow", CONFIG_NO_SNI_ALLOW }, { "block", CONFIG_NO_SNI_BLOCK },
};
WORD_HANDLER(h_host_mismatch, mismatch_words, enum config_host_mismatch)
WORD_HANDLER(h_no_sni, no_sni_words, enum config_no_sni)

/* A domain for the bypass list: lower-cased, a leading "." or "*." dropped
 * (a domain always covers its subdomains), letters, digits, '-', '_', '.'. */
static bool
bypass_domain(const char *text, char *out, size_t cap)
{
    size_t n = 0;

    if (strncmp(text, "*.", 2) == 0)
        text += 2;
    else if (text[0] == '.')
        text++;
    for (const char *p = text; *p; p++) {
        char c = *p;
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return false;
        if (n + 1 >= cap)
            return false;
        out[n++] = c;
    }
    if (n > 0 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
    return n > 0 && out[0] != '.' && strstr(out, "..") == NULL;
}

static int
item_bypass(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_transparent_t *t = base;
    const char *text = NULL;
    char q[SHOW_LEN];

    (void)def;
    (void)i;
    if (cl_get_scalar(ld, "'bypass' entry", &text) < 0)
        return -1;
    if (strchr(text, '/') != NULL || strchr(text, ':') != NULL) {
        if (t->n_bypass_cidrs == CONFIG_MAX_CIDRS)
            return cl_fail(ld, ld->ev.start_mark, "too many address prefixes in 'bypass' (at most %d)",
                           CONFIG_MAX_CIDRS);
        if (cidr_parse(text, &t->bypass_cidrs[t->n_bypass_cidrs]) < 0)
            return cl_fail(ld, ld->ev.start_mark,
                           "'bypass' entry '%s' is not an address prefix (e.g. 10.0.0.0/8)",
                           cl_show(q, text));
        t->n_bypass_cidrs++;
        return 0;
    }
    if (t->n_bypass_domains == CONFIG_MAX_BYPASS)
        return cl_fail(ld, ld->ev.start_mark, "too many domains in 'bypass' (at most %d)",
                       CONFIG_MAX_BYPASS);
    if (!bypass_domain(text, t->bypass_domains[t->n_bypass_domains], CONFIG_NAME_MAX))
        return cl_fail(ld, ld->ev.start_mark,
                       "'bypass' entry '%s' is neither a domain name nor an address prefix",
                       cl_show(q, text));
    t->n_bypass_domains++;
    return 0;
}

static int
h_bypass(struct loader *ld, const struct key_def *def, void *base)
{
    config_transparent_t *t = base;

    t->n_bypass_cidrs = 0;
    t->n_bypass_domains = 0;
    /* the list bound is checked per kind by item_bypass */
    return cl_parse_list(ld, def, base, CONFIG_MAX_CIDRS + CONFIG_MAX_BYPASS, item_bypass);
}

static const struct key_def transparent_keys[] = {
    { "host_mismatch", h_host_mismatch, offsetof(config_transparent_t, host_mismatch), 0, NULL },
    { "no_sni", h_no_sni, offsetof(config_transparent_t, no_sni), 0, NULL },
    { "peek_timeout", cl_duration, offsetof(config_transparent_t, peek_timeout), 0, NULL },
    { "bypass", h_bypass, 0, 0, NULL },
};

const struct section config_transparent_section = {
    "in proxy.transparent", transparent_keys, sizeof(transparent_keys) / sizeof(transparent_keys[0]),
};

void
config_transparent_defaults(config_transparent_t *t)
{
    memset(t, 0, sizeof(*t));
    t->host_mismatch = CONFIG_HOST_MISMATCH_LOG;
    t->no_sni = CONFIG_NO_SNI_ALLOW;
    t->peek_timeout = PEEK_TIMEOUT_DEFAULT_MS;
}
