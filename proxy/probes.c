/*
 * proxy/probes.c: per-client probe counters (see probes.h): an
 * open-addressing table of fixed size under one mutex.
 */
#include "probes.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/hash.h"

#define PROBES_SLOTS (PROBES_MAX_CLIENTS * 2)  /* load factor <= 0.5 */

struct probes {
    pthread_mutex_t lock;
    uint64_t total;
    size_t used;
    probe_client_t slot[PROBES_SLOTS];
};

probes_t *
probes_new(void)
{
    probes_t *p = calloc(1, sizeof(*p));

    if (p != NULL)
        pthread_mutex_init(&p->lock, NULL);
    return p;
}

void
probes_free(probes_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_destroy(&p->lock);
    free(p);
}

void
probes_count(probes_t *p, const char *addr, int remote)
{
    size_t i;

    if (strlen(addr) >= sizeof(p->slot[0].addr))
        return;
    pthread_mutex_lock(&p->lock);
    p->total++;
    for (i = hash_fnv1a32_str(HASH_FNV1A32_INIT, addr) % PROBES_SLOTS;; i = (i + 1) % PROBES_SLOTS) {
        probe_client_t *c = &p->slot[i];
        if (c->addr[0] == '\0') {
            if (p->used >= PROBES_MAX_CLIENTS)
                break;
            strcpy(c->addr, addr);
            p->used++;
        }
        if (strcmp(c->addr, addr) == 0) {
            c->count++;
            c->last = (int64_t)time(NULL);
            c->remote = remote;
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

size_t
probes_list(probes_t *p, probe_client_t *out, size_t max, uint64_t *total)
{
    size_t n = 0;

    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < PROBES_SLOTS && n < max; i++)
        if (p->slot[i].addr[0] != '\0')
            out[n++] = p->slot[i];
    *total = p->total;
    pthread_mutex_unlock(&p->lock);
    return n;
}
