/*
 * policy/policy.h: the compiled policy: identity profiles and access
 * policies evaluated on plain facts about one transaction. Built once from a
 * validated configuration (and the category database) and immutable after:
 * workers share it read-only; a reload builds a new one beside it.
 *
 * Evaluation: the first identity profile whose criteria all match (AND)
 * classifies the transaction; then the first access policy listing that
 * profile (or the default policy, the last, listing none) decides: CONNECT
 * port and method checks, then category rules in order (time ranges
 * honoured), then the policy's default. A decision names the profile,
 * policy, rule and category that produced it. Matching cost does not grow
 * with the number of listed domains (hash per domain label suffix); custom
 * regexes are compiled once with PCRE2 JIT.
 *
 * It does no I/O after policy_build, knows nothing of sockets or HTTP
 * parsing, and never calls into proxy/.
 */
#ifndef MUS_POLICY_POLICY_H
#define MUS_POLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "config.h"

#define POLICY_ERR_LEN 512

typedef struct policy policy_t;

/* How the client's identity was learnt. */
enum policy_user_source {
    POLICY_SRC_NONE = 0,     /* unknown user */
    POLICY_SRC_HEADEND,      /* MUS map (SSO_VPN) */
    POLICY_SRC_POOL,         /* inside vpn_pools, remote_users: ip_ranges (STATIC_POOL) */
    POLICY_SRC_BASIC,        /* proxy Basic authentication */
};
const char *policy_user_source_str(enum policy_user_source s);  /* "none", "headend", ... */

/* Everything the policy may look at. Strings need not be NUL-terminated
 * where a length is given; NULL/0 means absent. */
typedef struct policy_facts {
    const struct sockaddr *client;
    bool remote;                      /* location, decided by the caller (mus config) */
    bool in_vpn_pool;                 /* client address inside mus.vpn_pools */
    enum policy_user_source source;
    bool has_identity;                /* an identity from the map (type below valid) */
    int id_type;                      /* enum mus_id_type: 0 user, 1 machine, 2 device */
    const char *user;                 /* identity or Basic user name, NUL-terminated */
    const char *groups;               /* comma-separated, NUL-terminated */
    uint16_t proxy_port;              /* the listener the request came in on */
    enum config_listen_mode mode;
    const char *user_agent;
    size_t user_agent_len;
    const char *method;               /* "GET", NUL-terminated */
    bool is_connect;
    const char *host;                 /* lowercase not required */
    size_t host_len;
    uint16_t port;
    const char *url;                  /* absolute URL "http://h/p" or "h:443" (CONNECT) */
    size_t url_len;
    time_t now;                       /* for time ranges (local time) */
} policy_facts_t;

enum policy_action {
    POLICY_ALLOW = 0,
    POLICY_MONITOR,          /* allowed and flagged in the logs */
    POLICY_BLOCK,            /* 403 block page */
    POLICY_AUTH_REQUIRED,    /* 407: the profile wants Basic credentials (caller checks them) */
    POLICY_REFUSE_UNIDENTIFIED, /* 403: unidentified address inside the VPN pools */
};
const char *policy_action_str(enum policy_action a);  /* "allow", "monitor", "block", ... */

/* The outcome. Strings are static or owned by the policy_t (valid while it lives). */
typedef struct policy_decision {
    enum policy_action action;
    const char *profile;     /* identity profile name, or "(none)" */
    const char *policy;      /* access policy name, or "(none)" */
    const char *rule;        /* "category", "default", "connect-port", "method", "auth", "unidentified" */
    const char *category;    /* matched category (friendly name if any), or NULL */
    const char *reason;      /* one sentence for block pages and the trace */
    bool auth_basic;         /* the matched profile uses Basic authentication */
} policy_decision_t;

/* Kinds of list entries (UT1 layout: domains, urls, expressions files). */
enum policy_list_kind {
    POLICY_LIST_DOMAIN = 0,   /* "example.com": the domain and its subdomains */
    POLICY_LIST_URL,          /* "example.com/path": host + path prefix, no scheme */
    POLICY_LIST_EXPRESSION,   /* PCRE2 pattern against the URL */
};

/* Where list categories come from (the SQLite database, via db/, or a test):
 * the source calls emit once per entry and returns 0, or -1 with a message.
 * emit returns 0, or -1 to abort (its error is then already in err). */
typedef int (*policy_emit_fn)(void *ctx, const char *category, enum policy_list_kind kind,
                              const char *value);
typedef int (*policy_list_source)(void *arg, policy_emit_fn emit, void *ctx, char *err,
                                  size_t errlen);

/* Builds the policy from cfg->pol, with list categories from src (NULL:
 * none). Returns NULL with a message (e.g. a PCRE2 error with its offset, an
 * unknown category name, an unreadable password file) in err
 * (POLICY_ERR_LEN). */
policy_t *policy_build(const config_t *cfg, policy_list_source src, void *src_arg, char *err,
                       size_t errlen);
void policy_free(policy_t *p);   /* NULL allowed */

/* Pure function of p and f; thread-safe (per-thread PCRE2 match data). */
void policy_evaluate(const policy_t *p, const policy_facts_t *f, policy_decision_t *out);

/* Checks a Proxy-Authorization value ("Basic base64(user:pass)") against
 * the password file; on success copies the user name into user (cap
 * bytes) and returns true. Constant-time comparison of the hashes. */
bool policy_check_basic(const policy_t *p, const char *value, size_t len, char *user, size_t cap);
const char *policy_auth_realm(const policy_t *p);

/* Category of a URL/host alone (trace, tests): the friendly name (or list
 * or custom name) of the first category that matches, or NULL. */
const char *policy_categorize(const policy_t *p, const char *host, size_t host_len,
                              const char *url, size_t url_len);

/* Counts for status and benchmarks. */
typedef struct policy_stats {
    size_t domains, url_prefixes, regexes, categories;
    size_t memory_bytes;     /* approximate heap used by the matchers */
} policy_stats_t;
void policy_get_stats(const policy_t *p, policy_stats_t *out);

/* Hashes a password for the password file:
 * "pbkdf2-sha256$ITER$SALT_B64$HASH_B64". 0 or -1. */
int policy_hash_password(const char *password, char *out, size_t cap);

#endif
