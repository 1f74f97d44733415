/* Clocks, sleeping, and duration strings. */
#include "common/timeutil.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t time_mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t time_mono_us(void)
{
	return time_mono_ns() / 1000;
}

int64_t time_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void time_fmt_rfc3339(char *out, size_t cap, int64_t wall_ms)
{
	time_t secs = (time_t)(wall_ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char base[32];
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, cap, "%s.%03dZ", base, (int)(wall_ms % 1000));
}

void time_sleep_us(int64_t us)
{
	if (us <= 0)
		return;
	struct timespec ts = { .tv_sec = us / USEC_PER_SEC, .tv_nsec = (us % USEC_PER_SEC) * 1000 };
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static const struct {
	const char *name;
	int64_t us;
} dur_units[] = {
	{ "us", 1 }, { "ms", USEC_PER_MS }, { "s", USEC_PER_SEC },
	{ "m", 60 * USEC_PER_SEC }, { "h", 3600 * USEC_PER_SEC },
};

static int unit_lookup(const char **p, int64_t *unit_us)
{
	size_t best = 0;
	for (size_t i = 0; i < sizeof(dur_units) / sizeof(dur_units[0]); i++) {
		size_t n = strlen(dur_units[i].name);
		if (n > best && strncmp(*p, dur_units[i].name, n) == 0 && !isalpha((unsigned char)(*p)[n])) {
			best = n;
			*unit_us = dur_units[i].us;
		}
	}
	*p += best;
	return best ? 0 : -1;
}

#define DUR_MAX_US (INT64_C(366) * 24 * 3600 * USEC_PER_SEC)

int dur_parse(const char *s, int64_t *out_us, char *why, size_t whylen)
{
	const char *p = s;
	int64_t total = 0;
	bool any = false;
	while (*p) {
		if (!isdigit((unsigned char)*p)) {
			snprintf(why, whylen, "expected a number at '%s'", p);
			return -1;
		}
		int64_t whole = 0, frac = 0, frac_div = 1;
		for (; isdigit((unsigned char)*p); p++) {
			if (whole > DUR_MAX_US / 10)
				goto too_long;
			whole = whole * 10 + (*p - '0');
		}
		if (*p == '.') {
			p++;
			if (!isdigit((unsigned char)*p)) {
				snprintf(why, whylen, "expected digits after '.'");
				return -1;
			}
			for (; isdigit((unsigned char)*p); p++) {
				if (frac_div < 1000000) {
					frac = frac * 10 + (*p - '0');
					frac_div *= 10;
				}
			}
		}
		int64_t unit;
		if (unit_lookup(&p, &unit) != 0) {
			snprintf(why, whylen, "missing or unknown unit (use us, ms, s, m or h, as in \"250ms\")");
			return -1;
		}
		if (whole > DUR_MAX_US / unit)
			goto too_long;
		total += whole * unit + frac * unit / frac_div;
		if (total > DUR_MAX_US)
			goto too_long;
		any = true;
	}
	if (!any) {
		snprintf(why, whylen, "empty duration (write for example \"2s\")");
		return -1;
	}
	*out_us = total;
	return 0;
too_long:
	snprintf(why, whylen, "duration too long (at most 366 days)");
	return -1;
}

void dur_format(int64_t us, char *out, size_t cap)
{
	if (us == 0) {
		snprintf(out, cap, "0s");
		return;
	}
	if (us % USEC_PER_SEC != 0 || us < 60 * USEC_PER_SEC) {
		if (us % USEC_PER_MS != 0)
			snprintf(out, cap, "%lldus", (long long)us);
		else if (us < USEC_PER_SEC || us % (USEC_PER_SEC / 10) != 0)
			snprintf(out, cap, "%lldms", (long long)(us / USEC_PER_MS));
		else if (us % USEC_PER_SEC == 0)
			snprintf(out, cap, "%llds", (long long)(us / USEC_PER_SEC));
		else
			snprintf(out, cap, "%lld.%llds", (long long)(us / USEC_PER_SEC),
				 (long long)(us % USEC_PER_SEC / (USEC_PER_SEC / 10)));
		return;
	}
	int64_t s = us / USEC_PER_SEC;
	int64_t h = s / 3600, m = s % 3600 / 60, sec = s % 60;
	size_t n = 0;
	if (h)
		n += (size_t)snprintf(out + n, cap - n, "%lldh", (long long)h);
	if (m && n < cap)
		n += (size_t)snprintf(out + n, cap - n, "%lldm", (long long)m);
	if (sec && n < cap)
		snprintf(out + n, cap - n, "%llds", (long long)sec);
}
