/* A growable byte buffer with a hard maximum.
 *
 * Invariants: data[len] is always '\0' (when data is not NULL), so the contents can be used as
 * a C string when they hold no NUL; len <= max. Every append that would pass max fails with -1
 * and leaves the buffer unchanged: this is how every network or file input stays bounded. */
#ifndef VX_COMMON_BUF_H
#define VX_COMMON_BUF_H

#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t cap;
	size_t max;
};

#define BUF_INIT(maximum) { NULL, 0, 0, (maximum) }

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len). */
void buf_consume(struct buf *b, size_t n);
/* Hands the contents to the caller (who frees them) and leaves the buffer empty. */
char *buf_detach(struct buf *b, size_t *len);

#endif
