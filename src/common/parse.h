/* Bounded, checked parsing of numbers from untrusted text (never atoi or sscanf).
 * Each returns 0 and writes *out only on success; -1 when the text is not a whole number of
 * the right form or is outside [min, max]. */
#ifndef VX_COMMON_PARSE_H
#define VX_COMMON_PARSE_H

#include <stddef.h>
#include <stdint.h>

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
/* Same, for a text that is not NUL-terminated. */
int parse_i64_n(const char *s, size_t len, int64_t min, int64_t max, int64_t *out);
int parse_int(const char *s, int min, int max, int *out);
int parse_double(const char *s, double min, double max, double *out);
/* "16KiB", "1MiB", "512", "2GiB", "10kB" (SI) -> bytes, at most max. */
int parse_size(const char *s, uint64_t max, uint64_t *out);
/* "50%" or "0.5%" -> 0.5 or 0.005 as a fraction; the '%' is required. */
int parse_percent(const char *s, double *out_fraction);

#endif
