/* Desired servers from registry instances (see desired.h). */
#include "controller/desired.h"

#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "controller/weights.h"

static enum ctl_reg_state want_state(enum reg_state s)
{
	return s == REG_STATE_DRAINING ? CTL_REG_DRAINING : s == REG_STATE_DOWN ? CTL_REG_DOWN : CTL_REG_UP;
}

size_t ctl_desired(const struct reg_service *rs, int64_t default_capacity, ctl_weight_adjust adjust, void *ud,
		   struct ctl_want **out)
{
	size_t n = rs ? rs->n_instances : 0;
	struct ctl_want *w = xcalloc(n ? n : 1, sizeof(*w));
	int64_t *cap = xcalloc(n ? n : 1, sizeof(*cap));
	int *override = xcalloc(n ? n : 1, sizeof(*override));
	int *weight = xcalloc(n ? n : 1, sizeof(*weight));
	for (size_t i = 0; i < n; i++) {
		const struct reg_instance *in = rs->instances[i];
		/* Peers that are not up take no traffic, so they do not set the scale. */
		cap[i] = in->state == REG_STATE_UP ? (in->capacity > 0 ? in->capacity : default_capacity) : 0;
		override[i] = in->has_weight ? in->weight : -1;
	}
	ctl_weights_from_capacity(cap, override, n, weight);
	for (size_t i = 0; i < n; i++) {
		const struct reg_instance *in = rs->instances[i];
		memcpy(w[i].name, in->name, sizeof(in->name));
		memcpy(w[i].addr, in->address, sizeof(w[i].addr));
		w[i].port = in->port;
		w[i].state = want_state(in->state);
		w[i].maxconn = (int)(in->capacity > 0 ? in->capacity : default_capacity);
		w[i].weight = adjust && !in->has_weight ? adjust(ud, in->name, weight[i]) : weight[i];
	}
	free(cap);
	free(override);
	free(weight);
	*out = w;
	return n;
}
