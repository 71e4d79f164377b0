/*
 * proxy/relaybuf.c: per-worker pool of tunnel copy buffers (see relaybuf.h).
 * Spare large buffers sit on a singly linked free list threaded through
 * their own first bytes; small ones go straight back to malloc. Spare
 * connection buffers sit on a list of their own. It does not
 * know about tunnels or sockets.
 */
#include "relaybuf.h"

#include <stdlib.h>

#include "limits.h"

struct spare {
    struct spare *next;
};

struct relaybuf_pool {
    struct spare *spare;  /* free large buffers */
    size_t n_spare;
    struct spare *conn_spare;  /* free connection buffers (CONN_BUF_SIZE) */
    size_t n_conn_spare;
    size_t big_lent, small_lent;
    uint64_t over_budget;
};

_Static_assert(RELAYBUF_BIG >= sizeof(struct spare), "a spare buffer holds its list link");
_Static_assert(RELAYBUF_BIG > RELAYBUF_SMALL, "large buffers are the large ones");
_Static_assert(RELAYBUF_BUDGET >= RELAYBUF_BIG, "the budget allows one large buffer");
_Static_assert(CONN_BUF_SIZE >= sizeof(struct spare), "a spare buffer holds its list link");

static void
spare_free_all(struct spare *s)
{
    while (s != NULL) {
        struct spare *next = s->next;
        free(s);
        s = next;
    }
}

/* Keeps buf on the list *head (of *n entries), or frees it past max. */
static void
spare_push(struct spare **head, size_t *n, size_t max, char *buf)
{
    if (*n >= max) {
        free(buf);
        return;
    }
    struct spare *s = (struct spare *)(void *)buf;
    s->next = *head;
    *head = s;
    (*n)++;
}

relaybuf_pool_t *
relaybuf_pool_new(void)
{
    return calloc(1, sizeof(relaybuf_pool_t));
}

void
relaybuf_pool_free(relaybuf_pool_t *p)
{
    if (p == NULL)
        return;
    spare_free_all(p->spare);
    spare_free_all(p->conn_spare);
    free(p);
}

char *
relaybuf_get(relaybuf_pool_t *p, uint32_t *cap)
{
    char *buf;

    if ((p->big_lent + 1) * (size_t)RELAYBUF_BIG <= RELAYBUF_BUDGET) {
        if (p->spare != NULL) {
            struct spare *s = p->spare;
            p->spare = s->next;
            p->n_spare--;
            buf = (char *)s;
        } else if ((buf = malloc(RELAYBUF_BIG)) == NULL) {
            goto small;
        }
        p->big_lent++;
        *cap = RELAYBUF_BIG;
        return buf;
    }
    p->over_budget++;
small:
    if ((buf = malloc(RELAYBUF_SMALL)) == NULL)
        return NULL;
    p->small_lent++;
    *cap = RELAYBUF_SMALL;
    return buf;
}

void
relaybuf_put(relaybuf_pool_t *p, char *buf, uint32_t cap)
{
    if (buf == NULL)
        return;
    if (cap != RELAYBUF_BIG) {
        p->small_lent--;
        free(buf);
        return;
    }
    p->big_lent--;
    spare_push(&p->spare, &p->n_spare, RELAYBUF_SPARE, buf);
}

void
relaybuf_stats(const relaybuf_pool_t *p, relaybuf_stats_t *out)
{
    out->big_lent = p->big_lent;
    out->small_lent = p->small_lent;
    out->big_spare = p->n_spare;
    out->over_budget = p->over_budget;
}

char *
relaybuf_get_conn(relaybuf_pool_t *p)
{
    struct spare *s = p->conn_spare;

    if (s == NULL)
        return malloc(CONN_BUF_SIZE);
    p->conn_spare = s->next;
    p->n_conn_spare--;
    return (char *)s;
}

void
relaybuf_put_conn(relaybuf_pool_t *p, char *buf)
{
    if (buf != NULL)
        spare_push(&p->conn_spare, &p->n_conn_spare, RELAYBUF_CONN_SPARE, buf);
}
