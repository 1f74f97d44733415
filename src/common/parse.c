/* Checked number parsing. */
#include "common/parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int parse_i64_n(const char *s, size_t len, int64_t min, int64_t max, int64_t *out)
{
	char tmp[32];
	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	return parse_i64(tmp, min, max, out);
}

int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
	if (!s || !*s || isspace((unsigned char)*s) || *s == '+')
		return -1;
	errno = 0;
	char *end;
	long long v = strtoll(s, &end, 10);
	if (errno || *end || end == s || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_int(const char *s, int min, int max, int *out)
{
	int64_t v;
	if (parse_i64(s, min, max, &v) != 0)
		return -1;
	*out = (int)v;
	return 0;
}

int parse_double(const char *s, double min, double max, double *out)
{
	if (!s || !*s || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	char *end;
	double v = strtod(s, &end);
	if (errno || *end || end == s || !isfinite(v) || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static const struct {
	const char *suffix;
	uint64_t mult;
} size_units[] = {
	{ "", 1 }, { "B", 1 }, { "k", 1000 }, { "kB", 1000 }, { "KiB", 1024 },
	{ "M", 1000000 }, { "MB", 1000000 }, { "MiB", 1024 * 1024 },
	{ "G", 1000000000 }, { "GB", 1000000000 }, { "GiB", 1024ull * 1024 * 1024 },
};

int parse_size(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	char *end;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	for (size_t i = 0; i < sizeof(size_units) / sizeof(size_units[0]); i++) {
		if (strcmp(end, size_units[i].suffix) != 0)
			continue;
		if (v > max / size_units[i].mult)
			return -1;
		*out = v * size_units[i].mult;
		return 0;
	}
	return -1;
}

int parse_percent(const char *s, double *out_fraction)
{
	size_t n = s ? strlen(s) : 0;
	if (n < 2 || s[n - 1] != '%' || n > 30)
		return -1;
	char tmp[32];
	memcpy(tmp, s, n - 1);
	tmp[n - 1] = '\0';
	double v;
	if (parse_double(tmp, 0, 100, &v) != 0)
		return -1;
	*out_fraction = v / 100.0;
	return 0;
}
