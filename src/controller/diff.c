/* The reconcile diff (see diff.h for the rules). */
#include "controller/diff.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

/* The order operations leave in: a batch in this order is always valid. */
static const enum ctl_op_kind phase_order[] = {
	CTL_OP_ADD, CTL_OP_SET_ADDR, CTL_OP_SET_WEIGHT, CTL_OP_SET_MAXCONN, CTL_OP_READY,
	CTL_OP_DRAIN, CTL_OP_MAINT, CTL_OP_SHUTDOWN, CTL_OP_DEL,
};

const char *ctl_op_kind_name(enum ctl_op_kind kind)
{
	static const char *const names[] = {
		[CTL_OP_ADD] = "add", [CTL_OP_SET_ADDR] = "set_addr", [CTL_OP_SET_WEIGHT] = "set_weight",
		[CTL_OP_SET_MAXCONN] = "set_maxconn", [CTL_OP_READY] = "ready", [CTL_OP_DRAIN] = "drain",
		[CTL_OP_MAINT] = "maint", [CTL_OP_SHUTDOWN] = "shutdown", [CTL_OP_DEL] = "del",
	};
	return (unsigned)kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

struct op_list {
	struct ctl_op *ops;
	size_t n, cap;
};

static struct ctl_op *push(struct op_list *l, enum ctl_op_kind kind, const char *name)
{
	l->ops = xgrow(l->ops, sizeof(*l->ops), &l->cap, l->n + 1);
	struct ctl_op *op = &l->ops[l->n++];
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	memcpy(op->name, name, CTL_NAME_MAX);
	return op;
}

/* Name-sorted views of the inputs so lookups stay O(log n) for pools of thousands. Both structs
 * start with their name, so one comparator serves both. */
struct index {
	const void **items;
	size_t n;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The controller passes both inputs sorted already (the registry view and its cache are):
 * then one pass checks it and no sort is needed. */
static void index_build(struct index *ix, const void *base, size_t size, size_t n)
{
	bool sorted = true;
	ix->items = xmalloc(sizeof(*ix->items) * (n ? n : 1));
	ix->n = n;
	for (size_t i = 0; i < n; i++) {
		ix->items[i] = (const char *)base + i * size;
		if (i > 0 && sorted && by_name(&ix->items[i - 1], &ix->items[i]) > 0)
			sorted = false;
	}
	if (!sorted)
		qsort(ix->items, n, sizeof(*ix->items), by_name);
}

static const void *index_find(const struct index *ix, const char *name)
{
	const char *key = name;
	const void **hit = bsearch(&key, ix->items, ix->n, sizeof(*ix->items), by_name);
	return hit ? *hit : NULL;
}

static void add_server(struct op_list *l, const struct ctl_want *w)
{
	struct ctl_op *op = push(l, CTL_OP_ADD, w->name);
	memcpy(op->addr, w->addr, sizeof(op->addr));
	op->port = w->port;
	op->weight = w->weight;
	op->maxconn = w->maxconn;
}

/* Registered and up: converge address, weight, maxconn and admin state. */
static void keep_serving(struct op_list *l, const struct ctl_want *w, const struct ctl_have *h)
{
	if (strcmp(w->addr, h->addr) != 0 || w->port != h->port) {
		struct ctl_op *op = push(l, CTL_OP_SET_ADDR, w->name);
		memcpy(op->addr, w->addr, sizeof(op->addr));
		op->port = w->port;
	}
	if (w->weight != h->weight)
		push(l, CTL_OP_SET_WEIGHT, w->name)->weight = w->weight;
	if (w->maxconn != h->maxconn)
		push(l, CTL_OP_SET_MAXCONN, w->name)->maxconn = w->maxconn;
	if (h->admin != CTL_ADMIN_READY)
		push(l, CTL_OP_READY, w->name);
}

static bool drain_timed_out(const struct ctl_have *h, const struct ctl_diff_params *p)
{
	return h->drain_started_us > 0 && p->now_us - h->drain_started_us >= p->drain_timeout_us;
}

/* Draining, or gone from the registry: drain, then maint and delete once idle or timed out. */
static void let_go(struct op_list *l, const struct ctl_have *h, const struct ctl_diff_params *p)
{
	if (h->admin == CTL_ADMIN_READY) {
		push(l, CTL_OP_DRAIN, h->name);
		return;
	}
	bool idle = h->sessions == 0;
	if (!idle && !drain_timed_out(h, p))
		return;
	if (h->admin == CTL_ADMIN_DRAIN)
		push(l, CTL_OP_MAINT, h->name);
	if (!idle)
		push(l, CTL_OP_SHUTDOWN, h->name);
	push(l, CTL_OP_DEL, h->name);
}

static bool vanished(const struct ctl_have *h, const struct ctl_want *w)
{
	return h->owned && !w && h->admin == CTL_ADMIN_READY;
}

/* How many ready servers lost their keys, against how many are ready: the panic test. */
static bool panic_hit(const struct index *want, const struct ctl_have *have, size_t n_have, double threshold)
{
	size_t ready = 0, gone = 0;
	for (size_t i = 0; i < n_have; i++) {
		if (!have[i].owned || have[i].admin != CTL_ADMIN_READY)
			continue;
		ready++;
		if (!index_find(want, have[i].name))
			gone++;
	}
	return gone > 0 && (double)gone > threshold * (double)ready + 1e-9;
}

static void diff_have(struct op_list *l, const struct index *want, const struct ctl_have *h,
		      const struct ctl_diff_params *p, struct ctl_diff_result *out)
{
	const struct ctl_want *w = index_find(want, h->name);
	if (!h->owned) {
		if (w)
			out->conflicts++;
		return;
	}
	if (w && w->state == CTL_REG_UP) {
		keep_serving(l, w, h);
	} else if (w && w->state == CTL_REG_DOWN) {
		if (h->admin != CTL_ADMIN_MAINT)
			push(l, CTL_OP_MAINT, h->name);
	} else if (out->panic && vanished(h, w) && !h->check_down) {
		out->held_back++;
	} else {
		let_go(l, h, p);
	}
}

static void sort_by_phase(struct op_list *l)
{
	struct ctl_op *sorted = xmalloc(sizeof(*sorted) * (l->n ? l->n : 1));
	size_t k = 0;
	for (size_t ph = 0; ph < sizeof(phase_order) / sizeof(phase_order[0]); ph++)
		for (size_t i = 0; i < l->n; i++)
			if (l->ops[i].kind == phase_order[ph])
				sorted[k++] = l->ops[i];
	free(l->ops);
	l->ops = sorted;
	l->cap = l->n;
}

void ctl_diff(const struct ctl_want *want, size_t n_want, const struct ctl_have *have, size_t n_have,
	      const struct ctl_diff_params *p, struct ctl_diff_result *out)
{
	struct op_list l = { 0 };
	struct index wants, haves;
	index_build(&wants, want, sizeof(*want), n_want);
	index_build(&haves, have, sizeof(*have), n_have);
	memset(out, 0, sizeof(*out));
	out->panic = !p->force && panic_hit(&wants, have, n_have, p->panic_threshold);
	for (size_t i = 0; i < n_have; i++)
		diff_have(&l, &wants, &have[i], p, out);
	for (size_t i = 0; i < n_want; i++)
		if (want[i].state == CTL_REG_UP && !index_find(&haves, want[i].name))
			add_server(&l, &want[i]);
	free(wants.items);
	free(haves.items);
	sort_by_phase(&l);
	out->ops = l.ops;
	out->n_ops = l.n;
}

void ctl_diff_result_release(struct ctl_diff_result *r)
{
	free(r->ops);
	memset(r, 0, sizeof(*r));
}
