/*
 * proxy/access.c: see access.h. The surrogate table maps a client address
 * to the user who last authenticated from it, for auth.surrogate_ttl, so a
 * browser does not have to send credentials on every connection (Squid's
 * authenticate_ip_ttl, WSA's IP surrogates). One table per worker: no lock.
 */
#include "access.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/cidr.h"
#include "../common/hash.h"
#include "../common/txn.h"

typedef struct surrogate {
    mus_addr_t addr;
    time_t expires;          /* 0 = free slot */
    char user[MUS_NAME_MAX];
} surrogate_t;

struct access_surrogates {
    surrogate_t slot[ACCESS_SURROGATES];
};

access_surrogates_t *
access_surrogates_new(void)
{
    return calloc(1, sizeof(access_surrogates_t));
}

void
access_surrogates_free(access_surrogates_t *s)
{
    free(s);
}

static size_t
slot_of(const mus_addr_t *a)
{
    return hash_fnv1a32(HASH_FNV1A32_INIT, a->b, sizeof(a->b)) % ACCESS_SURROGATES;
}

/* Direct-mapped: a collision replaces the older user (who re-authenticates). */
static const char *
surrogate_get(access_surrogates_t *s, const mus_addr_t *a, time_t now)
{
    surrogate_t *e = &s->slot[slot_of(a)];

    if (e->expires > now && memcmp(&e->addr, a, sizeof(*a)) == 0)
        return e->user;
    return NULL;
}

static void
surrogate_put(access_surrogates_t *s, const mus_addr_t *a, const char *user, time_t expires)
{
    surrogate_t *e = &s->slot[slot_of(a)];

    e->addr = *a;
    e->expires = expires;
    txn_copy_str(e->user, sizeof(e->user), user);
}

static void
make_tag(access_result_t *r)
{
    const char *a, *rule = r->d.rule ? r->d.rule : "DEFAULT";
    size_t n, rl;

    switch (r->d.action) {
    case POLICY_AUTH_REQUIRED:
        txn_copy_str(r->tag, sizeof(r->tag), "AUTH_REQUIRED");
        return;
    case POLICY_REFUSE_UNIDENTIFIED:
        txn_copy_str(r->tag, sizeof(r->tag), "BLOCK_UNIDENTIFIED");
        return;
    case POLICY_BLOCK: a = "BLOCK"; break;
    case POLICY_MONITOR: a = "MONITOR"; break;
    default: a = "ALLOW"; break;
    }
    /* "<ACTION>_<RULE>", upper case, '-' as '_', cut to the field (runs for
     * every request: no snprintf) */
    n = txn_copy_str(r->tag, sizeof(r->tag), a);
    if (n + 1 < sizeof(r->tag)) {
        r->tag[n++] = '_';
        rl = strlen(rule);
        if (rl > sizeof(r->tag) - 1 - n)
            rl = sizeof(r->tag) - 1 - n;
        memcpy(r->tag + n, rule, rl);
        n += rl;
        r->tag[n] = '\0';
    }
    for (size_t i = 0; i < n; i++)
        r->tag[i] = r->tag[i] == '-' ? '_' : (char)toupper((unsigned char)r->tag[i]);
}

void
access_decide(const config_t *cfg, const policy_t *policy, access_surrogates_t *surrogates,
              const access_input_t *in, access_result_t *out)
{
    policy_facts_t f;
    mus_addr_t addr;
    char basic_user[MUS_NAME_MAX];
    const char *sur;

    memset(out, 0, sizeof(*out));
    memset(&f, 0, sizeof(f));
    f.client = in->client;
    f.in_vpn_pool = cidr_list_match(cfg->mus.vpn_pools, cfg->mus.n_vpn_pools, in->client);
    if (cfg->mus.remote_users == CONFIG_REMOTE_IP_RANGES) {
        f.remote = f.in_vpn_pool;
        f.source = f.remote ? POLICY_SRC_POOL : POLICY_SRC_NONE;
    } else {
        f.remote = in->identity != NULL;
        f.source = in->identity != NULL ? POLICY_SRC_HEADEND : POLICY_SRC_NONE;
    }
    if (in->identity != NULL) {
        f.has_identity = true;
        f.id_type = (int)in->identity->s.type;
        f.user = in->identity->s.name;
        f.groups = in->identity->s.groups;
        f.source = POLICY_SRC_HEADEND;
        txn_copy_str(out->headend, sizeof(out->headend), in->identity->headend);
    }
    f.proxy_port = in->proxy_port;
    f.mode = in->mode;
    f.user_agent = in->user_agent;
    f.user_agent_len = in->user_agent_len;
    f.method = in->method;
    f.is_connect = in->is_connect;
    f.host = in->host;
    f.host_len = in->host_len;
    f.port = in->port;
    f.url = in->url;
    f.url_len = in->url_len;
    f.now = in->now;

    if (policy == NULL) {
        out->d.action = POLICY_ALLOW;
        out->d.profile = "(none)";
        out->d.policy = "(none)";
        out->d.rule = "default";
        out->d.reason = "No access policies are configured.";
    } else {
        policy_evaluate(policy, &f, &out->d);
        if (out->d.action == POLICY_AUTH_REQUIRED && in->mode == CONFIG_MODE_EXPLICIT) {
            /* Basic credentials, or a surrogate from an earlier success */
            bool ok = false;
            mus_addr_from_sockaddr(in->client, &addr);
            if (in->proxy_authorization != NULL) {
                ok = policy_check_basic(policy, in->proxy_authorization,
                                        in->proxy_authorization_len, basic_user,
                                        sizeof(basic_user));
                if (ok && surrogates != NULL)
                    surrogate_put(surrogates, &addr, basic_user,
                                  in->now + (time_t)(cfg->pol.auth_surrogate_ttl / 1000));
                out->bad_credentials = !ok;
            } else if (surrogates != NULL &&
                       (sur = surrogate_get(surrogates, &addr, in->now)) != NULL) {
                txn_copy_str(basic_user, sizeof(basic_user), sur);
                ok = true;
            }
            if (ok) {
                f.source = POLICY_SRC_BASIC;
                f.user = basic_user;
                f.groups = f.has_identity ? f.groups : "";
                policy_evaluate(policy, &f, &out->d);
            }
        }
    }
    out->remote = f.remote;
    out->source = f.source;
    out->has_identity = f.has_identity;
    out->id_type = f.id_type;
    if (f.user != NULL)
        txn_copy_str(out->user, sizeof(out->user), f.user);
    make_tag(out);
}
