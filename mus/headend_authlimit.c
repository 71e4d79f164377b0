/*
 * mus/headend_authlimit.c: the failed-authentication limit of mus-headend
 * (see headend_authlimit.h). A fixed table of source addresses; when it is
 * full the oldest window without held answers is reused (an address that
 * is holding answers is never forgotten, so releases always find it). It
 * sends nothing and logs nothing: mus/headend_session.c does both.
 */
#include "headend_authlimit.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct he_authlimit_slot {
    uint8_t addr[16];
    uint64_t window_start;
    unsigned fails;
    unsigned held;
    uint64_t refused;
    bool used;
};

struct he_authlimit {
    struct he_authlimit_slot slots[HE_AUTHLIMIT_SLOTS];
};

he_authlimit_t *
he_authlimit_new(void)
{
    return calloc(1, sizeof(he_authlimit_t));
}

void
he_authlimit_free(he_authlimit_t *al)
{
    free(al);
}

/* The slot of addr (its window renewed if over), made if create; NULL if
 * absent or if every slot is holding answers. */
static struct he_authlimit_slot *
slot_find(he_authlimit_t *al, const uint8_t addr[16], uint64_t now, bool create)
{
    struct he_authlimit_slot *s = NULL, *free_slot = NULL, *oldest = NULL;

    for (size_t i = 0; i < HE_AUTHLIMIT_SLOTS && s == NULL; i++) {
        struct he_authlimit_slot *t = &al->slots[i];
        if (!t->used) {
            if (free_slot == NULL)
                free_slot = t;
        } else if (memcmp(t->addr, addr, 16) == 0) {
            s = t;
        } else if (t->held == 0 && (oldest == NULL || t->window_start < oldest->window_start)) {
            oldest = t;
        }
    }
    struct he_authlimit_slot *victim = free_slot != NULL ? free_slot : oldest;
    if (s == NULL) {
        if (!create || victim == NULL)
            return NULL;
        memset(victim, 0, sizeof(*victim));
        memcpy(victim->addr, addr, 16);
        victim->used = true;
        victim->window_start = now;
        return victim;
    }
    if (now - s->window_start >= HE_AUTHLIMIT_WINDOW_MS) {
        s->window_start = now;
        s->fails = 0;
    }
    return s;
}

static void
counts_of(const struct he_authlimit_slot *s, he_authlimit_counts_t *counts)
{
    if (counts == NULL)
        return;
    memset(counts, 0, sizeof(*counts));
    if (s != NULL) {
        counts->fails = s->fails;
        counts->held = s->held;
        counts->refused = s->refused;
    }
}

he_authlimit_verdict_t
he_authlimit_admit(he_authlimit_t *al, const uint8_t addr[16], uint64_t now,
                   he_authlimit_counts_t *counts)
{
    struct he_authlimit_slot *s = slot_find(al, addr, now, false);
    he_authlimit_verdict_t v = HE_AUTHLIMIT_ANSWER;

    if (s != NULL && s->fails >= HE_AUTHLIMIT_FREE) {
        if (s->held >= HE_AUTHLIMIT_HELD_MAX) {
            s->refused++;
            v = HE_AUTHLIMIT_REFUSE;
        } else {
            s->held++;
            v = HE_AUTHLIMIT_HOLD;
        }
    }
    counts_of(s, counts);
    return v;
}

void
he_authlimit_release(he_authlimit_t *al, const uint8_t addr[16])
{
    for (size_t i = 0; i < HE_AUTHLIMIT_SLOTS; i++) {
        struct he_authlimit_slot *s = &al->slots[i];
        if (s->used && s->held > 0 && memcmp(s->addr, addr, 16) == 0) {
            s->held--;
            return;
        }
    }
}

void
he_authlimit_failed(he_authlimit_t *al, const uint8_t addr[16], uint64_t now,
                    he_authlimit_counts_t *counts)
{
    struct he_authlimit_slot *s = slot_find(al, addr, now, true);

    if (s != NULL)
        s->fails++;
    counts_of(s, counts);
}
