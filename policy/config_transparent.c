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

static int
item_bypass(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_transparent_t *t = base;
    cl_hosts_t h = {
        .domains = t->bypass_domains, .n_domains = &t->n_bypass_domains,
        .max_domains = CONFIG_MAX_BYPASS, .cidrs = t->bypass_cidrs,
        .n_cidrs = &t->n_bypass_cidrs, .max_cidrs = CONFIG_MAX_CIDRS,
    };

    (void)i;
    return cl_domain_or_prefix(ld, def->name, &h);
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

const struct section config_transparent_section =
    CL_SECTION("in proxy.transparent", transparent_keys);

void
config_transparent_defaults(config_transparent_t *t)
{
    memset(t, 0, sizeof(*t));
    t->host_mismatch = CONFIG_HOST_MISMATCH_LOG;
    t->no_sni = CONFIG_NO_SNI_ALLOW;
    t->peek_timeout = PEEK_TIMEOUT_DEFAULT_MS;
}
