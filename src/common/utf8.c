/* Strict UTF-8 validation. */
#include "common/utf8.h"

#include <stdbool.h>

static bool cont(unsigned char c)
{
	return (c & 0xC0) == 0x80;
}

size_t utf8_seq_len(const char *s, size_t avail)
{
	const unsigned char *p = (const unsigned char *)s;
	if (avail == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	size_t n;
	unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
	if (p[0] >= 0xC2 && p[0] <= 0xDF) {
		n = 2;
	} else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
		n = 3;
		if (p[0] == 0xE0)
			lo = 0xA0; /* overlong */
		if (p[0] == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
		n = 4;
		if (p[0] == 0xF0)
			lo = 0x90; /* overlong */
		if (p[0] == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return 0;
	}
	if (avail < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (!cont(p[i]))
			return 0;
	return n;
}

size_t utf8_check(const char *s, size_t len)
{
	size_t i = 0;
	while (i < len) {
		size_t n = utf8_seq_len(s + i, len - i);
		if (n == 0)
			return i;
		i += n;
	}
	return len;
}
