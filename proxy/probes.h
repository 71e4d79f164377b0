/*
 * proxy/probes.h: counts the VPN clients' probes (requests for the probe
 * host, mus.cisco.com by default) per client address, for status and
 * troubleshooting ("has this laptop ever asked?"). Shared by all workers
 * behind one mutex: probes are rare (one per VPN connect), never on the hot
 * path of ordinary requests. Bounded: beyond PROBES_MAX_CLIENTS addresses,
 * new ones are only counted in the total. It does not answer probes
 * (proxy/conn.c does).
 */
#ifndef MUS_PROXY_PROBES_H
#define MUS_PROXY_PROBES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROBES_MAX_CLIENTS 4096

typedef struct probes probes_t;

typedef struct probe_client {
    char addr[52];
    uint64_t count;
    int64_t last;        /* unix seconds */
    int remote;          /* seen as remote at the last probe */
} probe_client_t;

probes_t *probes_new(void);
void probes_free(probes_t *p);
void probes_count(probes_t *p, const char *addr, int remote);
/* Copies up to max clients (most recent first not guaranteed); returns the
 * number copied; *total gets all probes ever counted. */
size_t probes_list(probes_t *p, probe_client_t *out, size_t max, uint64_t *total);

#endif
