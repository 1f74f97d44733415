/* Allocation that never returns NULL: running out of memory aborts here, in one place,
 * so callers never carry an out-of-memory path they cannot test. */
#ifndef VX_COMMON_ALLOC_H
#define VX_COMMON_ALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Grow an array of `size`-byte elements to at least `need` elements, doubling. */
void *xgrow(void *p, size_t size, size_t *cap, size_t need);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
