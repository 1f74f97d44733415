/* The test server's pure parts: service-time distributions and the control query. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "common/timeutil.h"
#include "load/testserver.h"
#include "load/ts_int.h"

static const char dist_help[] = "write a duration (5ms), exp:MEAN (exp:5ms) or uniform:LOW-HIGH (uniform:2ms-8ms)";

static int parse_dur(const char *s, size_t n, int64_t *out)
{
	char tmp[32], why[128];
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	if (dur_parse(tmp, out, why, sizeof(why)) != 0 || *out < 0 || *out > TS_DIST_MAX_US)
		return -1;
	return 0;
}

int ts_dist_parse(const char *s, struct ts_dist *out, struct vxerr *err)
{
	struct ts_dist d = { TS_DIST_FIXED, 0, 0 };
	size_t n = strlen(s);
	if (strncmp(s, "exp:", 4) == 0) {
		d.kind = TS_DIST_EXP;
		if (parse_dur(s + 4, n - 4, &d.a_us) != 0)
			return vxerr_set(err, "service time '%s': %s", s, dist_help);
	} else if (strncmp(s, "uniform:", 8) == 0) {
		d.kind = TS_DIST_UNIFORM;
		const char *dash = strchr(s + 8, '-');
		if (!dash || parse_dur(s + 8, (size_t)(dash - s - 8), &d.a_us) != 0 ||
		    parse_dur(dash + 1, strlen(dash + 1), &d.b_us) != 0)
			return vxerr_set(err, "service time '%s': %s", s, dist_help);
		if (d.b_us < d.a_us)
			return vxerr_set(err, "service time '%s': the upper bound is below the lower one", s);
	} else if (parse_dur(s, n, &d.a_us) != 0) {
		return vxerr_set(err, "service time '%s': %s", s, dist_help);
	}
	*out = d;
	return 0;
}

void ts_dist_format(const struct ts_dist *d, char *out, size_t cap)
{
	char a[32], b[32];
	dur_format(d->a_us, a, sizeof(a));
	dur_format(d->b_us, b, sizeof(b));
	if (d->kind == TS_DIST_EXP)
		snprintf(out, cap, "exp:%s", a);
	else if (d->kind == TS_DIST_UNIFORM)
		snprintf(out, cap, "uniform:%s-%s", a, b);
	else
		snprintf(out, cap, "%s", a);
}

double ts_rand01(uint64_t *rng)
{
	uint64_t x = *rng; /* xorshift64* */
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*rng = x;
	return (double)((x * UINT64_C(2685821657736338717)) >> 11) / 9007199254740992.0;
}

int64_t ts_dist_sample(const struct ts_dist *d, uint64_t *rng)
{
	double v;
	switch (d->kind) {
	case TS_DIST_EXP:
		v = -(double)d->a_us * log(1.0 - ts_rand01(rng));
		break;
	case TS_DIST_UNIFORM:
		v = (double)d->a_us + ts_rand01(rng) * (double)(d->b_us - d->a_us);
		break;
	default:
		return d->a_us;
	}
	return v > (double)TS_DIST_MAX_US ? TS_DIST_MAX_US : (int64_t)(v + 0.5);
}

static int apply_pair(const char *k, size_t kl, const char *v, struct ts_change *c, struct vxerr *err)
{
	if (kl == 12 && memcmp(k, "service_time", 12) == 0) {
		if (c->has_service)
			return vxerr_set(err, "service_time given twice");
		c->has_service = true;
		return ts_dist_parse(v, &c->service, err);
	}
	if (kl == 9 && memcmp(k, "fail_rate", 9) == 0) {
		if (c->fail_rate >= 0 || parse_double(v, 0, 1, &c->fail_rate) != 0)
			return vxerr_set(err, "fail_rate '%s' must be given once, as a fraction from 0 to 1", v);
		return 0;
	}
	if (kl == 8 && memcmp(k, "capacity", 8) == 0) {
		if (c->capacity > 0 || parse_int(v, 1, TS_MAX_CAPACITY, &c->capacity) != 0)
			return vxerr_set(err, "capacity '%s' must be given once, from 1 to %d", v, TS_MAX_CAPACITY);
		return 0;
	}
	return vxerr_set(err, "unknown setting '%.*s' (service_time, fail_rate, capacity)", (int)kl, k);
}

int ts_query_parse(const char *q, size_t n, struct ts_change *out, struct vxerr *err)
{
	struct ts_change c = { .has_service = false, .fail_rate = -1, .capacity = 0 };
	size_t i = 0;
	if (n == 0)
		return vxerr_set(err, "nothing to set (service_time, fail_rate, capacity)");
	for (;;) {
		const char *amp = memchr(q + i, '&', n - i);
		size_t end = amp ? (size_t)(amp - q) : n;
		const char *eq = memchr(q + i, '=', end - i);
		char v[64];
		size_t vl = eq ? end - (size_t)(eq - q) - 1 : 0;
		if (!eq || eq == q + i || vl == 0 || vl >= sizeof(v) || memchr(q + i, '%', end - i))
			return vxerr_set(err, "bad setting '%.*s' (write key=value, without %%-escapes)", (int)(end - i), q + i);
		memcpy(v, eq + 1, vl);
		v[vl] = '\0';
		if (apply_pair(q + i, (size_t)(eq - q) - i, v, &c, err) != 0)
			return -1;
		if (!amp)
			break;
		i = end + 1;
	}
	*out = c;
	return 0;
}
