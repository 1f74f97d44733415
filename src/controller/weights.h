/* Weight policy (pure): capacity sets each server's share of traffic relative to its peers, and
 * HAProxy's own statistics (errors, response time, queue) pull the weight of an overwhelmed server
 * down, damped so weights do not flap. DESIGN principle 7. */
#ifndef VX_CONTROLLER_WEIGHTS_H
#define VX_CONTROLLER_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#define CTL_WEIGHT_MAX 256

/* Base weights from capacities: the largest capacity gets 256, the others proportionally
 * (at least 1). An override (>= 0) replaces the computed weight; -1 means none. */
void ctl_weights_from_capacity(const int64_t *capacity, const int *override, size_t n, int *weight);

/* Feedback state kept per server between statistics samples. */
struct ctl_feedback {
	double factor;          /* 0.1..1, multiplies the base weight */
	uint64_t last_requests; /* cumulative counters at the previous sample */
	uint64_t last_errors;
	int applied;            /* weight last sent to HAProxy, 0 when none yet */
};

/* One statistics sample for one server (cumulative counters, as `show stat` gives them). */
struct ctl_sample {
	uint64_t requests; /* stot */
	uint64_t errors;   /* econ + eresp + hrsp_5xx */
	int rtime_ms;      /* average response time over the last 1024 requests */
	int queue;         /* qcur */
};

void ctl_feedback_init(struct ctl_feedback *fb);
/* Updates every server's factor from its sample against its peers' (one call per interval). */
void ctl_feedback_update(struct ctl_feedback *fb, const struct ctl_sample *s, size_t n);
/* The weight to apply: base x factor, clamped to 1..256 (0 stays 0). Returns the previously
 * applied weight when the change is within the damping band, so small moves cause no command. */
int ctl_feedback_weight(const struct ctl_feedback *fb, int base);

#endif
