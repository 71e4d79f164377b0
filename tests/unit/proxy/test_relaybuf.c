/*
 * tests/unit/proxy/test_relaybuf.c: the per-worker pool of tunnel copy
 * buffers (proxy/relaybuf.c): large buffers within the budget, small ones
 * beyond it, spares kept and lent again.
 */
#include <criterion/criterion.h>

#include <string.h>

#include "../../../proxy/limits.h"
#include "../../../proxy/relaybuf.h"

Test(relaybuf, big_buffers_within_budget_then_small)
{
    relaybuf_pool_t *p = relaybuf_pool_new();
    cr_assert_not_null(p);
    enum { NBIG = RELAYBUF_BUDGET / RELAYBUF_BIG };
    static char *bufs[NBIG + 2];
    uint32_t caps[NBIG + 2];
    for (size_t i = 0; i < NBIG + 2; i++) {
        bufs[i] = relaybuf_get(p, &caps[i]);
        cr_assert_not_null(bufs[i]);
        memset(bufs[i], (int)i, caps[i]);   /* the whole buffer is usable */
        cr_assert_eq(caps[i], i < NBIG ? RELAYBUF_BIG : RELAYBUF_SMALL, "buffer %zu: %u", i,
                     caps[i]);
    }
    relaybuf_stats_t st;
    relaybuf_stats(p, &st);
    cr_assert_eq(st.big_lent, NBIG);
    cr_assert_eq(st.small_lent, 2);
    cr_assert_eq(st.over_budget, 2);
    for (size_t i = 0; i < NBIG + 2; i++)
        relaybuf_put(p, bufs[i], caps[i]);
    relaybuf_stats(p, &st);
    cr_assert_eq(st.big_lent, 0);
    cr_assert_eq(st.small_lent, 0);
    cr_assert_eq(st.big_spare, RELAYBUF_SPARE, "spares kept: %zu", st.big_spare);
    relaybuf_pool_free(p);
}

Test(relaybuf, spare_is_reused)
{
    relaybuf_pool_t *p = relaybuf_pool_new();
    uint32_t cap;
    char *a = relaybuf_get(p, &cap);
    cr_assert_eq(cap, RELAYBUF_BIG);
    relaybuf_put(p, a, cap);
    char *b = relaybuf_get(p, &cap);
    cr_assert_eq(b, a, "the spare large buffer was not lent again");
    relaybuf_put(p, b, cap);
    relaybuf_put(p, NULL, 0);   /* nothing borrowed: no-op */
    relaybuf_pool_free(p);
    relaybuf_pool_free(NULL);
}

/* Connection buffers: the ones given back are lent again (most recent
 * first), up to RELAYBUF_CONN_SPARE of them; past that they are freed. */
Test(relaybuf, connection_buffers_are_kept_up_to_the_spare_count)
{
    enum { N = RELAYBUF_CONN_SPARE + 3 };
    relaybuf_pool_t *p = relaybuf_pool_new();
    static char *bufs[N], *again[N];
    for (size_t i = 0; i < N; i++) {
        bufs[i] = relaybuf_get_conn(p);
        cr_assert_not_null(bufs[i]);
        memset(bufs[i], 0x5a, CONN_BUF_SIZE);   /* the whole size is usable (ASan) */
    }
    for (size_t i = 0; i < N; i++)
        relaybuf_put_conn(p, bufs[i]);
    /* the kept ones come back newest first; the rest are fresh (malloc may
     * hand out a freed address again, so those are not compared) */
    for (size_t i = 0; i < N; i++) {
        again[i] = relaybuf_get_conn(p);
        cr_assert_not_null(again[i]);
        if (i < RELAYBUF_CONN_SPARE)
            cr_assert_eq(again[i], bufs[RELAYBUF_CONN_SPARE - 1 - i], "spare %zu", i);
    }
    for (size_t i = 0; i < N; i++)
        relaybuf_put_conn(p, again[i]);
    relaybuf_put_conn(p, NULL);
    relaybuf_pool_free(p);   /* frees the spares (LSan would see a leak) */
}
