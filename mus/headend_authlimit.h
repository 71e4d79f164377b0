/*
 * mus/headend_authlimit.h: mus-headend's limit on failed authentications,
 * per source address, built so that a proxy with the right password is
 * never turned away because another one at the same address (a NAT, a
 * misconfigured neighbour) keeps failing. Successful authentications never
 * count. Every attempt is checked (the MAC costs one HMAC; the key was
 * derived at start). While an address has fewer than HE_AUTHLIMIT_FREE
 * failures in the window, its answers go out at once. Beyond, every answer
 * to it, auth_ok as well as auth_fail, is held for HE_AUTHLIMIT_DELAY_MS, so
 * that waiting is the only way to learn whether a guess was right; at most
 * HE_AUTHLIMIT_HELD_MAX answers per address are held at once, and an attempt
 * beyond that is refused without being checked (a parallel flood). It does
 * no I/O and knows no connection: the caller holds and sends the answers.
 */
#ifndef MUS_HEADEND_AUTHLIMIT_H
#define MUS_HEADEND_AUTHLIMIT_H

#include <stdint.h>

#define HE_AUTHLIMIT_SLOTS     256     /* source addresses remembered */
#define HE_AUTHLIMIT_FREE      5       /* failures per address per window answered at once */
#define HE_AUTHLIMIT_WINDOW_MS 60000
#define HE_AUTHLIMIT_DELAY_MS  2000    /* beyond: each answer to the address waits this long */
#define HE_AUTHLIMIT_HELD_MAX  4       /* answers held at once per address */

typedef struct he_authlimit he_authlimit_t;

typedef enum he_authlimit_verdict {
    HE_AUTHLIMIT_ANSWER,   /* check and answer now */
    HE_AUTHLIMIT_HOLD,     /* check now, answer after HE_AUTHLIMIT_DELAY_MS; then release */
    HE_AUTHLIMIT_REFUSE,   /* too many answers held for the address: refuse unchecked */
} he_authlimit_verdict_t;

typedef struct he_authlimit_counts {
    unsigned fails;        /* failures of the address in the current window */
    unsigned held;         /* its answers held now */
    uint64_t refused;      /* its attempts refused unchecked (since the slot was made) */
} he_authlimit_counts_t;

he_authlimit_t *he_authlimit_new(void);
void he_authlimit_free(he_authlimit_t *al);   /* NULL allowed */

/* An authentication from addr (16 bytes, IPv4 mapped) at loop time now.
 * HOLD takes a held slot the caller must give back (release) when the
 * answer leaves or the connection dies. counts may be NULL. */
he_authlimit_verdict_t he_authlimit_admit(he_authlimit_t *al, const uint8_t addr[16], uint64_t now,
                                          he_authlimit_counts_t *counts);
void he_authlimit_release(he_authlimit_t *al, const uint8_t addr[16]);
/* Counts a failed authentication (wrong MAC, malformed auth frame). */
void he_authlimit_failed(he_authlimit_t *al, const uint8_t addr[16], uint64_t now,
                         he_authlimit_counts_t *counts);

#endif
