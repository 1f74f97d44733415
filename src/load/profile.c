/* Load profiles: the ramp grammar, the rate integral, and the open-loop schedule (all pure). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "common/timeutil.h"
#include "load/load_int.h"

static int parse_rate(const char *s, size_t n, double *out)
{
	char tmp[32];
	if (n == 0 || n >= sizeof(tmp) || s[0] < '0' || s[0] > '9' || s[n - 1] < '0' || s[n - 1] > '9')
		return -1;
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	return parse_double(tmp, 0, LOAD_MAX_RPS, out);
}

/* One "RATE:DURATION" or "FROM..TO:DURATION" phase of n bytes at s. */
static int parse_phase(const char *s, size_t n, struct load_phase *out, struct vxerr *err)
{
	const char *colon = memchr(s, ':', n);
	if (!colon)
		return vxerr_set(err, "'%.*s' needs a duration (write RATE:DURATION, as in 1000:10s)", (int)n, s);
	size_t rlen = (size_t)(colon - s);
	const char *dots = NULL;
	for (size_t i = 0; i + 1 < rlen; i++)
		if (s[i] == '.' && s[i + 1] == '.')
			dots = s + i;
	struct load_phase ph;
	bool bad = dots ? parse_rate(s, (size_t)(dots - s), &ph.rps_from) != 0 ||
				  parse_rate(dots + 2, (size_t)(colon - dots - 2), &ph.rps_to) != 0
			: parse_rate(s, rlen, &ph.rps_from) != 0;
	if (bad)
		return vxerr_set(err, "'%.*s': a rate is a number of requests per second from 0 to %.0f", (int)n, s,
				 LOAD_MAX_RPS);
	if (!dots)
		ph.rps_to = ph.rps_from;
	char dur[32], why[128];
	size_t dlen = n - rlen - 1;
	if (dlen == 0 || dlen >= sizeof(dur))
		return vxerr_set(err, "'%.*s': missing or overlong duration", (int)n, s);
	memcpy(dur, colon + 1, dlen);
	dur[dlen] = '\0';
	if (dur_parse(dur, &ph.duration_us, why, sizeof(why)) != 0)
		return vxerr_set(err, "'%.*s': %s", (int)n, s, why);
	if (ph.duration_us <= 0)
		return vxerr_set(err, "'%.*s': a phase must last longer than 0s", (int)n, s);
	*out = ph;
	return 0;
}

int load_ramp_parse(const char *s, struct load_phase *out, size_t cap, struct vxerr *err)
{
	size_t count = 0;
	const char *p = s;
	if (!*s)
		return vxerr_set(err, "ramp is empty (write for example 1000:10s,2000:10s or 0..5000:30s)");
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (count >= cap)
			return vxerr_set(err, "ramp has more than %zu phases", cap);
		if (parse_phase(p, n, &out[count], err) != 0)
			return vxerr_prefix(err, "ramp phase %zu ", count + 1);
		count++;
		if (!comma)
			break;
		p = comma + 1;
	}
	int64_t total = load_phases_duration(out, count);
	if (total > 24 * 3600 * USEC_PER_SEC)
		return vxerr_set(err, "ramp lasts longer than 24h");
	return (int)count;
}

int64_t load_phases_duration(const struct load_phase *p, size_t n)
{
	int64_t d = 0;
	for (size_t i = 0; i < n; i++)
		d += p[i].duration_us;
	return d;
}

static double rate_in(const struct load_phase *p, double start_us, double t_us)
{
	double f = p->duration_us > 0 ? (t_us - start_us) / (double)p->duration_us : 0;
	return p->rps_from + (p->rps_to - p->rps_from) * f;
}

double load_phases_area(const struct load_phase *p, size_t n, int64_t a_us, int64_t b_us)
{
	double area = 0, start = 0;
	for (size_t i = 0; i < n; i++) {
		double end = start + (double)p[i].duration_us;
		double lo = fmax(start, (double)a_us), hi = fmin(end, (double)b_us);
		if (hi > lo)
			area += (rate_in(&p[i], start, lo) + rate_in(&p[i], start, hi)) / 2 * (hi - lo) / 1e6;
		start = end;
	}
	return area;
}

static double phase_start(const struct load_sched *s, size_t phase)
{
	double t = 0;
	for (size_t i = 0; i < phase && i < s->nphases; i++)
		t += (double)s->phases[i].duration_us;
	return t;
}

void load_sched_init(struct load_sched *s, const struct load_phase *phases, size_t n, double share, double offset_us)
{
	memset(s, 0, sizeof(*s));
	s->phases = phases;
	s->nphases = n;
	s->share = share;
	s->override_rps = -1;
	s->end_us = (double)load_phases_duration(phases, n);
	s->t_us = offset_us;
	double start = 0;
	while (s->phase < n && start + (double)phases[s->phase].duration_us <= offset_us)
		start += (double)phases[s->phase++].duration_us;
	s->done = s->t_us >= s->end_us;
}

/* Walks the phases from t_us until this worker's share of the rate has added up to need
 * requests; the integral of a linear rate a + b*t is solved in closed form. */
static bool advance_profile(struct load_sched *s, double need)
{
	double t = s->t_us;
	while (s->phase < s->nphases) {
		const struct load_phase *p = &s->phases[s->phase];
		double ps = phase_start(s, s->phase), pe = ps + (double)p->duration_us;
		double a = rate_in(p, ps, t) * s->share / 1e6;
		double b = (p->rps_to - p->rps_from) * s->share / 1e6 / (double)p->duration_us;
		double left = a * (pe - t) + b * (pe - t) * (pe - t) / 2;
		if (left >= need && need > 0) {
			double denom = a + sqrt(fmax(a * a + 2 * b * need, 0));
			if (denom > 0) {
				s->t_us = t + 2 * need / denom;
				return s->t_us < s->end_us;
			}
		}
		need -= fmax(left, 0);
		t = pe;
		s->phase++;
	}
	s->t_us = s->end_us;
	return false;
}

bool load_sched_advance(struct load_sched *s)
{
	if (s->done)
		return false;
	if (s->override_rps == 0) {
		s->t_us = HUGE_VAL;
		return true;
	}
	if (s->override_rps > 0) {
		s->t_us += 1e6 / (s->override_rps * s->share);
	} else if (!advance_profile(s, 1.0)) {
		s->done = true;
		return false;
	}
	if (s->t_us >= s->end_us)
		s->done = true;
	return !s->done;
}

void load_sched_set_rate(struct load_sched *s, double rps, double now_us)
{
	s->override_rps = rps < 0 ? 0 : rps;
	if (s->done || rps <= 0) {
		if (!s->done && rps <= 0)
			s->t_us = HUGE_VAL;
		return;
	}
	double next = now_us + 1e6 / (rps * s->share);
	if (!(s->t_us <= next)) /* also when paused (HUGE_VAL) */
		s->t_us = now_us;
	if (s->t_us >= s->end_us)
		s->done = true;
}

double load_sched_rate_at(const struct load_sched *s, double t_us)
{
	if (s->override_rps >= 0)
		return s->override_rps;
	double start = 0;
	for (size_t i = 0; i < s->nphases; i++) {
		double end = start + (double)s->phases[i].duration_us;
		if (t_us < end)
			return rate_in(&s->phases[i], start, t_us);
		start = end;
	}
	return 0;
}
