/*
 * common/grow.h: how arrays and byte buffers grow: the capacity doubles
 * (from a first size) until the wanted size fits, checked against a limit so
 * that the doubling and the byte count cannot overflow. grow_cap only
 * computes the capacity (for buffers whose capacity field is not a size_t or
 * that compact before growing); grow_array also reallocates. Neither shrinks,
 * frees or moves contents: a buffer's read offset and compaction stay with
 * its owner.
 */
#ifndef MUS_COMMON_GROW_H
#define MUS_COMMON_GROW_H

#include <stddef.h>

#define GROW_ARRAY_MIN 16   /* grow_array's first capacity, in elements */

/* The capacity to hold need units: cap if it already does, else cap (or
 * first, when cap is 0) doubled until it holds need, at most max. 0 when
 * need is over max. */
size_t grow_cap(size_t cap, size_t need, size_t first, size_t max);

/* ptrp is the address of a pointer to an array of *cap elements of elem
 * bytes each. Makes the array hold at least need elements (the capacity
 * doubles from GROW_ARRAY_MIN). 0, or -1 (out of memory, or need * elem over
 * SIZE_MAX) with the array and *cap untouched. */
int grow_array(void *ptrp, size_t *cap, size_t need, size_t elem);

#endif
