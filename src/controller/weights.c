/* Capacity-relative weights and damped statistics feedback. */
#include "controller/weights.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#define FACTOR_MIN 0.1
#define FACTOR_CUT 0.7      /* multiplicative decrease when a server looks overwhelmed */
#define FACTOR_RECOVER 0.1  /* additive increase per healthy sample */
#define ERROR_RATE_BAD 0.05
#define RTIME_RATIO_BAD 2.0 /* response time this many times the peers' median */
#define RTIME_FLOOR_MS 5    /* below this, response-time differences are noise */
#define DAMPING 0.10        /* weight changes under 10% are not sent */

void ctl_weights_from_capacity(const int64_t *capacity, const int *override, size_t n, int *weight)
{
	int64_t max = 0;
	for (size_t i = 0; i < n; i++)
		if (capacity[i] > max)
			max = capacity[i];
	for (size_t i = 0; i < n; i++) {
		if (override && override[i] >= 0) {
			weight[i] = override[i] > CTL_WEIGHT_MAX ? CTL_WEIGHT_MAX : override[i];
			continue;
		}
		long w = max > 0 ? lround((double)CTL_WEIGHT_MAX * (double)capacity[i] / (double)max) : 1;
		weight[i] = w < 1 ? 1 : (int)w;
	}
}

void ctl_feedback_init(struct ctl_feedback *fb)
{
	fb->factor = 1.0;
	fb->last_requests = fb->last_errors = 0;
	fb->applied = 0;
}

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

static int median_rtime(const struct ctl_sample *s, size_t n)
{
	int *v = malloc(sizeof(*v) * (n ? n : 1));
	if (!v)
		return 0;
	for (size_t i = 0; i < n; i++)
		v[i] = s[i].rtime_ms;
	qsort(v, n, sizeof(*v), cmp_int);
	int m = n ? v[n / 2] : 0;
	free(v);
	return m;
}

static bool overwhelmed(const struct ctl_feedback *fb, const struct ctl_sample *s, int median)
{
	uint64_t req = s->requests >= fb->last_requests ? s->requests - fb->last_requests : 0;
	uint64_t err = s->errors >= fb->last_errors ? s->errors - fb->last_errors : 0;
	if (req > 0 && (double)err / (double)req > ERROR_RATE_BAD)
		return true;
	int floor = median > RTIME_FLOOR_MS ? median : RTIME_FLOOR_MS;
	return s->rtime_ms > (int)(RTIME_RATIO_BAD * floor) && req > 0;
}

void ctl_feedback_update(struct ctl_feedback *fb, const struct ctl_sample *s, size_t n)
{
	int median = median_rtime(s, n);
	for (size_t i = 0; i < n; i++) {
		/* Counters going backwards mean HAProxy reloaded or the server was re-added. */
		bool reset = s[i].requests < fb[i].last_requests || s[i].errors < fb[i].last_errors;
		if (!reset && overwhelmed(&fb[i], &s[i], median))
			fb[i].factor = fmax(FACTOR_MIN, fb[i].factor * FACTOR_CUT);
		else
			fb[i].factor = fmin(1.0, fb[i].factor + FACTOR_RECOVER);
		fb[i].last_requests = s[i].requests;
		fb[i].last_errors = s[i].errors;
	}
}

int ctl_feedback_weight(const struct ctl_feedback *fb, int base)
{
	if (base <= 0)
		return 0;
	long w = lround((double)base * fb->factor);
	int target = w < 1 ? 1 : w > CTL_WEIGHT_MAX ? CTL_WEIGHT_MAX : (int)w;
	if (fb->applied > 0 && target != base && abs(target - fb->applied) < (int)ceil(DAMPING * fb->applied))
		return fb->applied;
	return target;
}
