/*
 * proxy/access.h: the glue between a request and the policy: works out the
 * location (remote/local), the identity and where it came from (headend map,
 * VPN pool, Basic authentication or its IP surrogate), asks the compiled
 * policy (policy/policy.h) and returns one outcome with a decision tag. The
 * same function serves live requests (proxy/conn.c) and the policy trace
 * (proxy/control.c), so the trace can never disagree with the proxy. It does
 * no I/O and keeps no state except the Basic-auth surrogate table it is given.
 */
#ifndef MUS_PROXY_ACCESS_H
#define MUS_PROXY_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "../mus/map.h"
#include "../policy/config.h"
#include "../policy/policy.h"

#define ACCESS_SURROGATES 1024   /* Basic-auth surrogates kept per worker */
#define ACCESS_TAG_LEN 48

typedef struct access_surrogates access_surrogates_t;

access_surrogates_t *access_surrogates_new(void);
void access_surrogates_free(access_surrogates_t *s);

/* One transaction, as the proxy sees it. */
typedef struct access_input {
    const struct sockaddr *client;
    uint16_t proxy_port;
    enum config_listen_mode mode;
    const mus_identity_t *identity;   /* from the map, NULL if none */
    const char *proxy_authorization;  /* raw header value, or NULL */
    size_t proxy_authorization_len;
    const char *user_agent;
    size_t user_agent_len;
    const char *method;
    bool is_connect;
    const char *host;
    size_t host_len;
    uint16_t port;
    const char *url;
    size_t url_len;
    time_t now;
} access_input_t;

typedef struct access_result {
    policy_decision_t d;
    bool remote;
    enum policy_user_source source;
    bool has_identity;
    int id_type;                      /* enum mus_id_type when has_identity */
    char user[MUS_NAME_MAX];          /* for logs: identity or Basic user, "" if none */
    char headend[MUS_HEADEND_NAME_MAX];
    bool bad_credentials;             /* Proxy-Authorization present but wrong */
    char tag[ACCESS_TAG_LEN];         /* e.g. BLOCK_CATEGORY, ALLOW_DEFAULT, AUTH_REQUIRED */
} access_result_t;

/* Decides. policy may be NULL (no policy: allow). surrogates may be NULL
 * (the trace: no Basic state). */
void access_decide(const config_t *cfg, const policy_t *policy, access_surrogates_t *surrogates,
                   const access_input_t *in, access_result_t *out);

#endif
