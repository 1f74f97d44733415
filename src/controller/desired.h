/* Desired state of one backend (pure): the registry's instances of a service, with the
 * service's configuration, become the servers HAProxy should have — each instance's capacity
 * giving its maxconn and its weight relative to its peers (DESIGN principle 7). */
#ifndef VX_CONTROLLER_DESIRED_H
#define VX_CONTROLLER_DESIRED_H

#include <stddef.h>
#include <stdint.h>

#include "controller/diff.h"
#include "registry/reg.h"

/* Adjusts a computed base weight (statistics feedback); NULL keeps it as is. */
typedef int (*ctl_weight_adjust)(void *ud, const char *server, int base_weight);

/* Fills *out (caller frees) with one entry per valid instance of rs (which may be NULL: no
 * instances). Capacity falls back to default_capacity; weights come from capacities among the
 * instances that are up, unless an instance carries an operator weight. Returns the count. */
size_t ctl_desired(const struct reg_service *rs, int64_t default_capacity, ctl_weight_adjust adjust, void *ud,
		   struct ctl_want **out);

#endif
