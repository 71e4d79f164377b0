/*
 * mus/hetest.h: "test connection" to one headend: a fresh TCP connection,
 * TLS with the configured CA file (or pin) and name, the Upgrade to mus/1
 * and the hello/auth exchange with the configured password, then a polite
 * close before any subscribe. It runs on the caller's thread, blocking, with
 * one deadline for the whole test; it shares nothing with the feed (client.h)
 * and so never disturbs the live session: the headend sees one more proxy
 * connection that authenticates and leaves. The answer says how it went:
 * ok with the round trip and the headend's identity and certificate, or
 * which step failed and why. It never touches the map.
 */
#ifndef MUS_MUS_HETEST_H
#define MUS_MUS_HETEST_H

#include <stdint.h>

#include "client.h"
#include "proto.h"

#define MUS_HETEST_TIMEOUT_MS  5000    /* the whole test, every address included */

enum mus_hetest_outcome {
    MUS_HETEST_OK = 0,
    MUS_HETEST_REFUSED,        /* TCP connect refused: nothing listens there */
    MUS_HETEST_UNREACHABLE,    /* TCP connect failed otherwise (no route, ...) */
    MUS_HETEST_TIMEOUT,        /* no answer within the deadline */
    MUS_HETEST_UNTRUSTED,      /* the certificate: chain, name or pin not accepted */
    MUS_HETEST_TLS,            /* the TLS handshake failed otherwise */
    MUS_HETEST_REJECTED,       /* the Upgrade refused (403, 503 standby, another status) */
    MUS_HETEST_AUTH,           /* authentication failed (auth_fail, or the headend's MAC) */
    MUS_HETEST_PROTOCOL,       /* the answer is not MUS/1 */
    MUS_HETEST_LOCAL,          /* our side: CA or password file, memory, sockets */
};
/* "ok", "connect refused", "unreachable", "timeout", "certificate not
 * trusted", "TLS failed", "rejected", "authentication failed", "protocol
 * error", "local error". */
const char *mus_hetest_outcome_str(enum mus_hetest_outcome o);

typedef struct mus_hetest_result {
    enum mus_hetest_outcome outcome;
    char message[MUS_ERROR_MAX];       /* the precise reason, or what was done */
    char address[64];                  /* the address that answered, or the last one tried */
    uint32_t rtt_ms;                   /* connect to auth_ok (ok), else until the failure */
    uint32_t connect_ms;               /* the TCP connect */
    char server_id[MUS_ID_MAX];        /* the headend's hello */
    char subject[256], issuer[256];    /* its certificate (one-line form), "" before TLS */
    char tls_version[16];
} mus_hetest_result_t;

/* Tests headend c: its addresses in order (the next after a refused
 * connect or a 503 standby) within timeout_ms (0 =
 * MUS_HETEST_TIMEOUT_MS). Always fills *r; 0 for ok, -1 otherwise. */
int mus_hetest_run(const mus_headend_config_t *c, unsigned timeout_ms, mus_hetest_result_t *r);

#endif
