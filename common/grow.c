/*
 * common/grow.c: capacity doubling for arrays and byte buffers (see grow.h).
 */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t
grow_cap(size_t cap, size_t need, size_t first, size_t max)
{
    size_t n;

    if (need <= cap)
        return cap;
    if (need > max)
        return 0;
    n = cap ? cap : (first ? first : 1);
    while (n < need)
        n = n > max / 2 ? max : n * 2;
    return n > max ? max : n;
}

int
grow_array(void *ptrp, size_t *cap, size_t need, size_t elem)
{
    void *old, *p;
    size_t n;

    if (need <= *cap)
        return 0;
    if (elem == 0 || (n = grow_cap(*cap, need, GROW_ARRAY_MIN, SIZE_MAX / elem)) == 0)
        return -1;
    /* the pointer is read and written as bytes: *ptrp may be any T * */
    memcpy(&old, ptrp, sizeof(old));
    p = realloc(old, n * elem);
    if (p == NULL)
        return -1;
    memcpy(ptrp, &p, sizeof(p));
    *cap = n;
    return 0;
}
