/* Small string helpers that the C library lacks or gets wrong. */
#ifndef VX_COMMON_STRUTIL_H
#define VX_COMMON_STRUTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Copies src into dst[cap] always NUL-terminated; returns -1 when src did not fit. */
int str_copy(char *dst, size_t cap, const char *src);
bool str_starts_with(const char *s, const char *prefix);
bool str_ends_with(const char *s, const char *suffix);
/* Edit distance (insert, delete, substitute), capped at 255; for "did you mean". */
int str_edit_distance(const char *a, const char *b);
/* True when every byte of s[0..len) is in the set, and len is within [1, max]. */
bool str_all_in(const char *s, size_t len, size_t max, bool (*in_set)(unsigned char c));

#endif
