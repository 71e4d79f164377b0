/*
 * mus/headend_radius.h: the RADIUS accounting listener of mus-headend (RFC
 * 2866). It reads Accounting-Requests from UDP sockets the caller bound,
 * finds the client's shared secret (--radius-clients file), verifies the
 * Request Authenticator, applies the event to the headend's session store
 * (mus/headend_store.h, origin HS_ORIGIN_RADIUS) and only then sends the
 * Accounting-Response. Retransmissions (same client address, identifier and
 * authenticator within HR_DUP_WINDOW_MS) are answered again, applied once.
 *
 * Events: Start and Interim-Update add or refresh the session
 * "NAS/Acct-Session-Id" on Framed-IP-Address, Framed-IPv6-Address and a
 * Framed-IPv6-Prefix of length 128; Stop removes that session id only (a
 * late Stop of an old session never touches a newer one that took its
 * address); Accounting-On/Off removes every session of that NAS (NAS-IP-
 * Address, else NAS-IPv6-Address, else NAS-Identifier, else the packet's
 * source address). The session's refresh interval is the packet's
 * Acct-Interim-Interval (else the configured default) for the stale sweep.
 *
 * Dropped and counted, never answered: a packet from an address not in the
 * clients file, a malformed packet, a wrong authenticator. Secrets are never
 * logged. It does not bind sockets, parse command lines or talk MUS/1.
 */
#ifndef MUS_MUS_HEADEND_RADIUS_H
#define MUS_MUS_HEADEND_RADIUS_H

#include <stddef.h>
#include <stdint.h>

#include "../common/loop.h"
#include "headend_store.h"

#define HR_MAX_SOCKETS    8
#define HR_MAX_CLIENTS    1024
#define HR_DUP_WINDOW_MS  30000
#define HR_KEY_MAX        64      /* --radius-groups avpair:KEY, machine AVPair */

/* Where groups come from. */
enum hr_group_source {
    HR_GROUPS_CLASS = 0,     /* Class ("OU=eng;" -> "eng") */
    HR_GROUPS_FILTER_ID,     /* Filter-Id */
    HR_GROUPS_AVPAIR,        /* Cisco-AVPair KEY=value (KEY default "group") */
    HR_GROUPS_NONE,
};

typedef struct hr_options {
    const char *clients_path;            /* ADDRESS_OR_PREFIX SECRET lines */
    enum hr_group_source groups;
    char group_key[HR_KEY_MAX];          /* for HR_GROUPS_AVPAIR */
    const char *machine_user_re;         /* PCRE2 on the whole User-Name, or NULL */
    const char *machine_avpair;          /* "key=value": a Cisco-AVPair equal to it, or NULL */
    uint32_t default_interim_s;          /* when a packet has no Acct-Interim-Interval */
} hr_options_t;

typedef struct hr_counters {
    uint64_t received, responses, duplicates;
    uint64_t unknown_client, bad_authenticator, malformed;
    uint64_t starts, interims, stops, acct_on, acct_off, other_status;
    uint64_t no_address;     /* Start/Interim without a usable address: answered, not mapped */
    uint64_t store_errors;   /* not applied (allocation): not answered, the NAS retries */
    uint64_t clients;        /* entries in the clients file */
} hr_counters_t;

typedef struct hr hr_t;

/* Parses "class", "filter-id", "avpair", "avpair:KEY" or "none". 0 or -1. */
int hr_group_source_parse(const char *text, enum hr_group_source *src, char *key, size_t key_cap);

/* Takes the n bound UDP sockets (closed by hr_free, or here on failure),
 * loads the clients file, compiles the machine rule. changed(arg) runs
 * after every event that changed the store, before the answer. NULL with a
 * message in err on failure. */
hr_t *hr_new(loop_t *loop, hs_store_t *store, const hr_options_t *opt, const int *fds, size_t n,
             void (*changed)(void *arg), void *arg, char *err, size_t errlen);
void hr_free(hr_t *r);

/* Reloads the clients file; the old list stays on failure. 0 or -1. */
int hr_reload_clients(hr_t *r, char *err, size_t errlen);

void hr_get_counters(const hr_t *r, hr_counters_t *out);

#endif
