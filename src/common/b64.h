/* Standard base64 (RFC 4648 section 4) with padding, as etcd's JSON gateway requires. */
#ifndef VX_COMMON_B64_H
#define VX_COMMON_B64_H

#include <stddef.h>

/* Output size including the NUL for n input bytes. */
size_t b64_encoded_size(size_t n);
/* Writes the encoding and a NUL into out (cap >= b64_encoded_size(n)); returns its length. */
size_t b64_encode(const void *in, size_t n, char *out, size_t cap);
/* Strict decode: only the standard alphabet, length a multiple of 4, correct padding.
 * Writes at most cap bytes; returns the decoded length, or -1. A NUL is appended when room. */
long b64_decode(const char *in, size_t n, void *out, size_t cap);

#endif
