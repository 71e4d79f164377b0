/*
 * mus/headend_swanctl.h: reads the text that `swanctl --list-sas` prints
 * (strongSwan's vici client) into one record per IKE_SA: its unique id,
 * state, remote identity (and EAP/XAuth identity), remote host and the
 * virtual IPs given to the peer. mus-headend reconciles its strongSwan
 * sessions with it, like the occtl poll for ocserv. Tolerant: unknown lines
 * are skipped, a record lacking a field has it empty, a malformed line is
 * ignored, never fatal. Pure: no I/O, no allocation.
 */
#ifndef MUS_MUS_HEADEND_SWANCTL_H
#define MUS_MUS_HEADEND_SWANCTL_H

#include <stddef.h>

#define SWANCTL_STR_MAX   256
#define SWANCTL_VIPS_MAX  4

typedef struct swanctl_sa {
    char uniqueid[32];                  /* the "#N" after the connection name */
    char state[32];                     /* ESTABLISHED, CONNECTING, ... */
    char remote_id[SWANCTL_STR_MAX];
    char remote_eap_id[SWANCTL_STR_MAX];
    char remote_xauth_id[SWANCTL_STR_MAX];
    char remote_host[64];
    char vips[SWANCTL_VIPS_MAX][64];    /* remote virtual IPs, as printed */
    size_t n_vips;
} swanctl_sa_t;

/* Calls cb once per IKE_SA found in the len bytes of text (after its
 * "remote" line, or at the next SA if that line is missing). cb returning
 * non-zero stops. Returns the number of SAs reported. */
typedef int (*swanctl_cb)(void *arg, const swanctl_sa_t *sa);
size_t swanctl_parse(const char *text, size_t len, swanctl_cb cb, void *arg);

/* The name to show for an SA: the EAP identity, else XAuth, else the remote
 * IKE identity, with a DN reduced to its CN ("C=CH, O=x, CN=alice" ->
 * "alice"). Empty if none. */
void swanctl_sa_name(const swanctl_sa_t *sa, char *buf, size_t cap);

#endif
