/*
 * policy/config_hosts.c: lists that mix domain names and address prefixes
 * (proxy.transparent.bypass, pac.direct): one scalar parsed into one or the
 * other, with the same messages everywhere.
 */
#include <stdio.h>
#include <string.h>

#include "../common/cidr.h"
#include "config_load.h"

/* text as a domain into out (cap bytes); false if it is not one. */
static bool
domain_name(const char *text, char *out, size_t cap)
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

int
cl_domain_or_prefix(struct loader *ld, const char *key, const cl_hosts_t *h)
{
    const char *text = NULL;
    char what[64], q[SHOW_LEN];

    snprintf(what, sizeof(what), "'%s' entry", key);
    if (cl_get_scalar(ld, what, &text) < 0)
        return -1;
    if (strchr(text, '/') != NULL || strchr(text, ':') != NULL) {
        if (*h->n_cidrs == h->max_cidrs)
            return cl_fail(ld, ld->ev.start_mark, "too many address prefixes in '%s' (at most %zu)",
                           key, h->max_cidrs);
        if (cidr_parse(text, &h->cidrs[*h->n_cidrs]) < 0)
            return cl_fail(ld, ld->ev.start_mark,
                           "'%s' entry '%s' is not an address prefix (e.g. 10.0.0.0/8)", key,
                           cl_show(q, text));
        (*h->n_cidrs)++;
        return 0;
    }
    if (*h->n_domains == h->max_domains)
        return cl_fail(ld, ld->ev.start_mark, "too many domains in '%s' (at most %zu)", key,
                       h->max_domains);
    if (!domain_name(text, h->domains[*h->n_domains], CONFIG_NAME_MAX))
        return cl_fail(ld, ld->ev.start_mark,
                       "'%s' entry '%s' is neither a domain name nor an address prefix", key,
                       cl_show(q, text));
    (*h->n_domains)++;
    return 0;
}
