/*
 * tests/unit/common/test_grow.c: capacity growth (common/grow.c): grow_cap
 * keeps a large enough capacity, starts at `first`, doubles, stops at the
 * limit and refuses a need over it without overflowing near SIZE_MAX;
 * grow_array reallocates keeping the contents and refuses an element count
 * whose byte size would overflow, leaving the array as it was.
 */
#include <criterion/criterion.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../../common/grow.h"

Test(grow, cap_kept_when_large_enough)
{
    cr_expect_eq(grow_cap(64, 64, 16, SIZE_MAX), 64);
    cr_expect_eq(grow_cap(64, 1, 16, SIZE_MAX), 64);
}

Test(grow, cap_doubles_from_first)
{
    cr_expect_eq(grow_cap(0, 1, 1024, SIZE_MAX), 1024);
    cr_expect_eq(grow_cap(0, 1025, 1024, SIZE_MAX), 2048);
    cr_expect_eq(grow_cap(1024, 1025, 16, SIZE_MAX), 2048);
    cr_expect_eq(grow_cap(1024, 5000, 16, SIZE_MAX), 8192);
    cr_expect_eq(grow_cap(3, 7, 16, SIZE_MAX), 12);   /* doubles the existing cap */
    cr_expect_eq(grow_cap(0, 3, 0, SIZE_MAX), 4);     /* first 0 starts at 1 */
}

Test(grow, cap_stops_at_max)
{
    cr_expect_eq(grow_cap(1024, 1500, 16, 1200), 0);
    cr_expect_eq(grow_cap(1024, 1100, 16, 1200), 1200);
    cr_expect_eq(grow_cap(0, 10, 4096, 100), 100);     /* first over max */
    cr_expect_eq(grow_cap((size_t)1 << 31, ((size_t)1 << 31) + 1, 1024, UINT32_MAX),
                 UINT32_MAX);
    cr_expect_eq(grow_cap(UINT32_MAX, (size_t)UINT32_MAX + 1, 1024, UINT32_MAX), 0);
}

Test(grow, cap_no_overflow_near_size_max)
{
    size_t half = SIZE_MAX / 2 + 1;

    cr_expect_eq(grow_cap(half, half + 1, 16, SIZE_MAX), SIZE_MAX);
    cr_expect_eq(grow_cap(SIZE_MAX - 1, SIZE_MAX, 16, SIZE_MAX), SIZE_MAX);
}

Test(grow, array_grows_and_keeps_contents)
{
    int *v = NULL;
    size_t cap = 0;

    cr_assert_eq(grow_array(&v, &cap, 1, sizeof(*v)), 0);
    cr_assert_not_null(v);
    cr_expect_eq(cap, GROW_ARRAY_MIN);
    for (int i = 0; i < GROW_ARRAY_MIN; i++)
        v[i] = i * 7;
    cr_assert_eq(grow_array(&v, &cap, GROW_ARRAY_MIN, sizeof(*v)), 0);
    cr_expect_eq(cap, GROW_ARRAY_MIN);
    cr_assert_eq(grow_array(&v, &cap, GROW_ARRAY_MIN + 1, sizeof(*v)), 0);
    cr_expect_eq(cap, 2 * GROW_ARRAY_MIN);
    for (int i = 0; i < GROW_ARRAY_MIN; i++)
        cr_expect_eq(v[i], i * 7);
    v[2 * GROW_ARRAY_MIN - 1] = 1;   /* the whole new capacity is writable (ASan) */
    free(v);
}

Test(grow, array_refuses_overflow_and_leaves_array)
{
    struct big { char b[64]; } *v = NULL;
    size_t cap = 0;
    void *before;

    cr_assert_eq(grow_array(&v, &cap, 3, sizeof(*v)), 0);
    memset(v, 'x', cap * sizeof(*v));
    before = v;
    cr_expect_eq(grow_array(&v, &cap, SIZE_MAX / sizeof(*v) + 1, sizeof(*v)), -1);
    cr_expect_eq((void *)v, before);
    cr_expect_eq(cap, GROW_ARRAY_MIN);
    cr_expect_eq(v[GROW_ARRAY_MIN - 1].b[63], 'x');
    cr_expect_eq(grow_array(&v, &cap, 100, 0), -1);
    cr_expect_eq(cap, GROW_ARRAY_MIN);
    free(v);
}
