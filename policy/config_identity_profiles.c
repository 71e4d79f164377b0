/*
 * policy/config_identity_profiles.c: the identity_profiles section (see
 * config.h): an ordered list of named profiles, each matching transactions
 * by location, identity type, client subnets, listening ports, mode, user
 * agent, users and groups, and saying whether explicit clients must
 * authenticate. It only parses and validates each profile; config.c checks
 * what needs other sections (auth: basic needs authentication.password_file,
 * a profile is named by one policy only) and policy/policy.c compiles them.
 */
#include <stddef.h>
#include <string.h>

#include "config_load.h"

static const struct word location_words[] = {
    { "remote", CONFIG_LOC_REMOTE }, { "local", CONFIG_LOC_LOCAL }, { "any", CONFIG_LOC_ANY },
};
static const struct word mode_words[] = {
    { "explicit", CONFIG_MATCH_EXPLICIT }, { "transparent", CONFIG_MATCH_TRANSPARENT },
    { "any", CONFIG_MATCH_ANY_MODE },
};
static const struct word auth_words[] = {
    { "none", CONFIG_AUTH_NONE }, { "basic", CONFIG_AUTH_BASIC },
};
static const struct word type_words[] = {
    { "user", CONFIG_TYPE_USER }, { "machine", CONFIG_TYPE_MACHINE },
    { "device", CONFIG_TYPE_DEVICE },
};

WORD_HANDLER(h_location, location_words, enum config_location)
WORD_HANDLER(h_match_mode, mode_words, enum config_mode_match)
NAMES_HANDLER(h_identities, CL_NAMES_IDENTITY, true)

static int
h_auth(struct loader *ld, const struct key_def *def, void *base)
{
    int v;

    if (cl_get_word(ld, def->name, auth_words, sizeof(auth_words) / sizeof(auth_words[0]), &v) < 0)
        return -1;
    ((config_profile_t *)base)->auth = (enum config_auth)v;
    ld->auth_mark = ld->key_mark;
    return 0;
}

static int
item_type(struct loader *ld, const struct key_def *def, void *base, size_t i)
{
    config_profile_t *p = base;
    char q[SHOW_LEN];
    int v;

    (void)i;
    if (cl_get_word(ld, "type", type_words, sizeof(type_words) / sizeof(type_words[0]), &v) < 0)
        return -1;
    if (p->types & (unsigned)v)
        return cl_fail(ld, ld->ev.start_mark, "duplicate '%s' entry '%s'", def->name,
                       cl_show(q, (const char *)ld->ev.data.scalar.value));
    p->types |= (unsigned)v;
    return 0;
}

static int
h_types(struct loader *ld, const struct key_def *def, void *base)
{
    ((config_profile_t *)base)->types = CONFIG_TYPE_ANY;
    return cl_parse_list(ld, def, base, 3, item_type);
}

static int
h_subnets(struct loader *ld, const struct key_def *def, void *base)
{
    config_profile_t *p = base;
    const struct key_def scratch_def = {
        def->name, NULL, offsetof(struct cidr_scratch, list),
        offsetof(struct cidr_scratch, n), NULL,
    };

    ld->cidrs.n = 0;
    p->subnets = NULL;
    p->n_subnets = 0;
    if (cl_parse_list(ld, &scratch_def, &ld->cidrs, CONFIG_MAX_CIDRS, cl_cidr_item) < 0)
        return -1;
    if (ld->cidrs.n == 0)
        return 0;
    p->subnets = cl_pool_alloc(ld, ld->cidrs.n * sizeof(cidr_t), _Alignof(cidr_t));
    if (p->subnets == NULL)
        return -1;
    memcpy(p->subnets, ld->cidrs.list, ld->cidrs.n * sizeof(cidr_t));
    p->n_subnets = ld->cidrs.n;
    return 0;
}

enum {
    PR_KEY_NAME = 0, PR_KEY_LOCATION, PR_KEY_TYPES, PR_KEY_SUBNETS, PR_KEY_PORTS, PR_KEY_MODE,
    PR_KEY_USER_AGENT, PR_KEY_USERS, PR_KEY_GROUPS, PR_KEY_AUTH, PR_KEY_REFUSE,
};
#define PR_OFF(f) offsetof(config_profile_t, f)
static const struct key_def profile_keys[] = {
    [PR_KEY_NAME] = { "name", cl_entry_name, PR_OFF(name), CONFIG_NAME_LEN, NULL },
    [PR_KEY_LOCATION] = { "location", h_location, PR_OFF(location), 0, NULL },
    [PR_KEY_TYPES] = { "types", h_types, 0, 0, NULL },
    [PR_KEY_SUBNETS] = { "subnets", h_subnets, 0, 0, NULL },
    [PR_KEY_PORTS] = { "ports", cl_port_list, PR_OFF(ports), PR_OFF(n_ports), NULL },
    [PR_KEY_MODE] = { "mode", h_match_mode, PR_OFF(mode), 0, NULL },
    [PR_KEY_USER_AGENT] = { "user_agent", cl_string, PR_OFF(user_agent),
                            sizeof(((config_profile_t *)0)->user_agent), NULL },
    [PR_KEY_USERS] = { "users", h_identities, PR_OFF(users), 0, NULL },
    [PR_KEY_GROUPS] = { "groups", h_identities, PR_OFF(groups), 0, NULL },
    [PR_KEY_AUTH] = { "auth", h_auth, 0, 0, NULL },
    [PR_KEY_REFUSE] = { "refuse_unidentified", cl_bool, PR_OFF(refuse_unidentified), 0, NULL },
};
#undef PR_OFF
_Static_assert(sizeof(profile_keys) / sizeof(profile_keys[0]) <= 64, "duplicate mask is 64 bits");
static const struct section profile_section =
    CL_SECTION("in an identity_profiles entry", profile_keys);

/* auth: basic asks for credentials, which a transparent client cannot give. */
static int
profile_check(struct loader *ld, void *items, size_t i, uint64_t seen, yaml_mark_t start)
{
    config_profile_t *p = (config_profile_t *)items + i;

    (void)start;
    if (seen & (UINT64_C(1) << PR_KEY_AUTH)) {
        ld->profile_auth[i] = ld->auth_mark;
        if (p->auth == CONFIG_AUTH_BASIC && p->mode == CONFIG_MATCH_TRANSPARENT)
            return cl_fail(ld, ld->auth_mark,
                           "auth: basic cannot go with mode: transparent (such clients cannot "
                           "be asked for credentials)");
    }
    return 0;
}

const struct cl_named_list config_profiles_list = {
    CL_NAMED("identity profile", config_profile_t, name, CONFIG_MAX_PROFILES),
    .sec = &profile_section, .unique_at = CL_UNIQUE_AT_NAME, .check = profile_check,
};
