/* Strict UTF-8 checking (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), for
 * text read from files that must be valid before it reaches a parser or a JSON encoder. */
#ifndef VX_COMMON_UTF8_H
#define VX_COMMON_UTF8_H

#include <stddef.h>

/* Length (1-4) of the valid sequence that starts at s, or 0 when none does. */
size_t utf8_seq_len(const char *s, size_t avail);
/* Offset of the first byte that does not start a valid sequence, or len when all is valid. */
size_t utf8_check(const char *s, size_t len);

#endif
