/* String helpers. */
#include "common/strutil.h"

#include <string.h>

int str_copy(char *dst, size_t cap, const char *src)
{
	size_t n = strlen(src);
	if (cap == 0)
		return -1;
	if (n >= cap) {
		memcpy(dst, src, cap - 1);
		dst[cap - 1] = '\0';
		return -1;
	}
	memcpy(dst, src, n + 1);
	return 0;
}

bool str_starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && memcmp(s + n - m, suffix, m) == 0;
}

int str_edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return 255;
	unsigned char prev[65], cur[65];
	for (size_t j = 0; j <= lb; j++)
		prev[j] = (unsigned char)j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = (unsigned char)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			unsigned del = prev[j] + 1u, ins = cur[j - 1] + 1u;
			unsigned m = sub < del ? sub : del;
			cur[j] = (unsigned char)(m < ins ? m : ins);
		}
		memcpy(prev, cur, lb + 1);
	}
	return prev[lb];
}

bool str_all_in(const char *s, size_t len, size_t max, bool (*in_set)(unsigned char c))
{
	if (len == 0 || len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!in_set((unsigned char)s[i]))
			return false;
	return true;
}
