/* The reconcile diff: (desired servers, actual servers) -> operations. Pure: no I/O, no clock
 * (the caller passes `now_us`), no allocation beyond the output array, so it can be tested
 * exhaustively. The controller builds the inputs from the registry view and HAProxy's
 * `show servers state`/`show stat`, and turns the operations into Runtime API commands.
 *
 * Rules (DESIGN principles 3, 4, 6; docs/controller.md):
 * - registered and `up`: present, enabled, with the wanted address, weight and maxconn;
 * - registered and `down`: put in maintenance at once (not deleted: it may come back);
 * - registered and `draining`, or gone from the registry: drain, then when sessions reach 0 or
 *   the drain timeout passes, maintenance and delete (shutting down remaining sessions at the
 *   timeout);
 * - a server the controller does not own (attach mode: from the user's config) is never touched;
 * - panic threshold: when more than `panic_threshold` of the servers taking traffic would vanish
 *   at once because their keys disappeared, only those HAProxy's own checks see down are removed,
 *   unless `force`. Explicit `draining` and `down` states are intentions, not vanishing, and are
 *   always honoured. So the registry alone never empties a pool.
 * - drain_started_us of 0 means the drain clock has not started; the caller starts it when it
 *   issues a DRAIN (or first sees a leaving server that is not ready). */
#ifndef VX_CONTROLLER_DIFF_H
#define VX_CONTROLLER_DIFF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"

#define CTL_NAME_MAX 65

enum ctl_reg_state { CTL_REG_UP, CTL_REG_DRAINING, CTL_REG_DOWN };

/* One instance the registry wants in this backend (already validated). */
struct ctl_want {
	char name[CTL_NAME_MAX];
	char addr[NET_IP_MAX];
	uint16_t port;
	enum ctl_reg_state state;
	int weight;  /* 0..256 */
	int maxconn; /* 0 = unlimited */
};

enum ctl_admin { CTL_ADMIN_READY, CTL_ADMIN_DRAIN, CTL_ADMIN_MAINT };

/* One server HAProxy has in this backend. */
struct ctl_have {
	char name[CTL_NAME_MAX];
	char addr[NET_IP_MAX];
	uint16_t port;
	enum ctl_admin admin;
	int weight;       /* user weight (uweight) */
	int maxconn;      /* 0 = unlimited */
	int sessions;     /* current sessions (scur) */
	bool check_down;  /* HAProxy's own check sees it down */
	bool owned;       /* added by Veltrix (or rendered by it in managed mode) */
	int64_t drain_started_us; /* when Veltrix started draining it; 0 = not known */
	int64_t id;       /* HAProxy's server id, for reading its figures alone (not used here) */
};

enum ctl_op_kind {
	CTL_OP_ADD,       /* add server (disabled), then enable health + enable server */
	CTL_OP_SET_ADDR,
	CTL_OP_SET_WEIGHT,
	CTL_OP_SET_MAXCONN,
	CTL_OP_READY,     /* set server state ready */
	CTL_OP_DRAIN,     /* set server state drain */
	CTL_OP_MAINT,     /* set server state maint */
	CTL_OP_SHUTDOWN,  /* shutdown sessions server (drain timed out) */
	CTL_OP_DEL,       /* del server (after maint) */
};

struct ctl_op {
	enum ctl_op_kind kind;
	char name[CTL_NAME_MAX];
	char addr[NET_IP_MAX]; /* ADD, SET_ADDR */
	uint16_t port;         /* ADD, SET_ADDR */
	int weight;            /* ADD, SET_WEIGHT */
	int maxconn;           /* ADD, SET_MAXCONN */
};

struct ctl_diff_params {
	int64_t now_us;
	int64_t drain_timeout_us;
	double panic_threshold; /* 0..1 */
	bool force;             /* operator confirmed: ignore the panic threshold */
};

struct ctl_diff_result {
	struct ctl_op *ops; /* caller frees */
	size_t n_ops;
	size_t held_back;   /* removals withheld by the panic threshold */
	bool panic;         /* the panic threshold was hit */
	size_t conflicts;   /* wanted names taken by servers Veltrix does not own */
};

/* Computes the operations for one backend. want and have need not be sorted; names are unique
 * within each. Operations come out grouped so that a batch is safe in order: additions and
 * updates first, then drains, then maintenance, shutdowns and deletions. */
void ctl_diff(const struct ctl_want *want, size_t n_want, const struct ctl_have *have, size_t n_have,
	      const struct ctl_diff_params *params, struct ctl_diff_result *out);
void ctl_diff_result_release(struct ctl_diff_result *r);
const char *ctl_op_kind_name(enum ctl_op_kind kind);

#endif
