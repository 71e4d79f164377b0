/*
 * proxy/connlimit.c: the process-wide connection limit (see connlimit.h).
 * The lost-wakeup race between a worker going to sleep and another
 * releasing is closed by ordering (sequentially consistent atomics): the
 * waiter publishes its flag before it looks at the count again, the
 * releaser lowers the count before it looks at the flags, so at least one
 * of them sees the other. Wakes may be spurious; the woken worker simply
 * tries to acquire again. It does not accept or close anything itself.
 */
#include "connlimit.h"

#include <stdatomic.h>
#include <stdlib.h>

struct connlimit_slot {
    atomic_bool waiting;
    connlimit_wake_fn wake;  /* written only while no worker thread runs */
    void *arg;
};

struct connlimit {
    atomic_uint open;
    atomic_uint max;
    atomic_uint n_waiting;
    atomic_uint_fast64_t full;
    struct connlimit_slot slots[CONNLIMIT_MAX_WORKERS];
};

connlimit_t *
connlimit_new(unsigned max)
{
    connlimit_t *cl = calloc(1, sizeof(*cl));

    if (cl == NULL)
        return NULL;
    atomic_init(&cl->open, 0);
    atomic_init(&cl->max, max);
    atomic_init(&cl->n_waiting, 0);
    atomic_init(&cl->full, 0);
    for (unsigned i = 0; i < CONNLIMIT_MAX_WORKERS; i++)
        atomic_init(&cl->slots[i].waiting, false);
    return cl;
}

void
connlimit_free(connlimit_t *cl)
{
    free(cl);
}

void
connlimit_attach(connlimit_t *cl, unsigned worker, connlimit_wake_fn wake, void *arg)
{
    if (worker >= CONNLIMIT_MAX_WORKERS)
        return;
    if (wake == NULL && atomic_exchange(&cl->slots[worker].waiting, false))
        atomic_fetch_sub(&cl->n_waiting, 1);
    cl->slots[worker].wake = wake;
    cl->slots[worker].arg = arg;
}

static void
wake_waiting(connlimit_t *cl)
{
    if (atomic_load(&cl->n_waiting) == 0)
        return;
    for (unsigned i = 0; i < CONNLIMIT_MAX_WORKERS; i++) {
        struct connlimit_slot *s = &cl->slots[i];
        if (atomic_load(&s->waiting) && atomic_exchange(&s->waiting, false)) {
            atomic_fetch_sub(&cl->n_waiting, 1);
            if (s->wake != NULL)
                s->wake(s->arg);
        }
    }
}

void
connlimit_set_max(connlimit_t *cl, unsigned max)
{
    unsigned old = atomic_exchange(&cl->max, max);

    if (max > old)
        wake_waiting(cl);
}

bool
connlimit_acquire(connlimit_t *cl)
{
    unsigned cur = atomic_load(&cl->open);

    do {
        if (cur >= atomic_load(&cl->max))
            return false;
    } while (!atomic_compare_exchange_weak(&cl->open, &cur, cur + 1));
    return true;
}

void
connlimit_release(connlimit_t *cl)
{
    atomic_fetch_sub(&cl->open, 1);
    wake_waiting(cl);
}

bool
connlimit_wait(connlimit_t *cl, unsigned worker)
{
    struct connlimit_slot *s = &cl->slots[worker];

    atomic_fetch_add(&cl->full, 1);
    /* count first, flag second: a releaser only uncounts a flag it clears */
    atomic_fetch_add(&cl->n_waiting, 1);
    if (atomic_exchange(&s->waiting, true))
        atomic_fetch_sub(&cl->n_waiting, 1);   /* was already waiting */
    if (!connlimit_acquire(cl))
        return false;
    /* got one after all: withdraw (unless a releaser already did, then a
     * spurious wake is on its way, which is harmless) */
    if (atomic_exchange(&s->waiting, false))
        atomic_fetch_sub(&cl->n_waiting, 1);
    return true;
}

void
connlimit_stats(connlimit_t *cl, connlimit_stats_t *out)
{
    out->open = atomic_load(&cl->open);
    out->max = atomic_load(&cl->max);
    out->waiting = atomic_load(&cl->n_waiting);
    out->full = atomic_load(&cl->full);
}
