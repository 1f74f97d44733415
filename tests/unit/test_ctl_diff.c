/* The reconcile diff, exhaustively: every (registry state x HAProxy state x sessions x drain
 * clock x ownership) combination, the panic threshold, updates, ordering, and large pools. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/diff.h"

enum reg { R_ABSENT, R_UP, R_DRAINING, R_DOWN };
enum hap { H_ABSENT, H_READY, H_DRAIN, H_MAINT };

static const struct ctl_diff_params base_params = {
	.now_us = 100000000, .drain_timeout_us = 10000000, .panic_threshold = 1.0, .force = false,
};

static struct ctl_want make_want(const char *name, enum ctl_reg_state st)
{
	struct ctl_want w = { .port = 8080, .state = st, .weight = 10, .maxconn = 100 };
	snprintf(w.name, sizeof(w.name), "%s", name);
	snprintf(w.addr, sizeof(w.addr), "127.0.0.1");
	return w;
}

static struct ctl_have make_have(const char *name, enum ctl_admin admin)
{
	struct ctl_have h = { .port = 8080, .admin = admin, .weight = 10, .maxconn = 100, .owned = true };
	snprintf(h.name, sizeof(h.name), "%s", name);
	snprintf(h.addr, sizeof(h.addr), "127.0.0.1");
	return h;
}

/* Renders the ops as "kind kind ..." for compact expectations. */
static void ops_text(const struct ctl_diff_result *r, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < r->n_ops && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? " " : "", ctl_op_kind_name(r->ops[i].kind));
}

/* The rules of diff.h, written independently of the implementation. */
static const char *expected(enum reg r, enum hap h, int sessions, bool timed_out, bool owned)
{
	if (h == H_ABSENT)
		return r == R_UP ? "add" : "";
	if (!owned)
		return "";
	if (r == R_UP)
		return h == H_READY ? "" : "ready";
	if (r == R_DOWN)
		return h == H_MAINT ? "" : "maint";
	/* absent or draining: leave */
	if (h == H_READY)
		return "drain";
	if (sessions > 0 && !timed_out)
		return "";
	if (h == H_DRAIN)
		return sessions > 0 ? "maint shutdown del" : "maint del";
	return sessions > 0 ? "shutdown del" : "del";
}

static void test_every_combination(void **state)
{
	(void)state;
	static const enum ctl_reg_state reg_map[] = { CTL_REG_UP, CTL_REG_UP, CTL_REG_DRAINING, CTL_REG_DOWN };
	static const enum ctl_admin hap_map[] = { CTL_ADMIN_READY, CTL_ADMIN_READY, CTL_ADMIN_DRAIN, CTL_ADMIN_MAINT };
	int cases = 0;
	for (int r = R_ABSENT; r <= R_DOWN; r++)
		for (int h = H_ABSENT; h <= H_MAINT; h++)
			for (int sessions = 0; sessions <= 3; sessions += 3)
				for (int timed = 0; timed <= 1; timed++)
					for (int owned = 0; owned <= 1; owned++) {
						struct ctl_want w = make_want("a", reg_map[r]);
						struct ctl_have hv = make_have("a", hap_map[h]);
						hv.sessions = sessions;
						hv.owned = owned;
						hv.drain_started_us = timed ? 1 : base_params.now_us - 1000;
						struct ctl_diff_result res;
						ctl_diff(&w, r != R_ABSENT, &hv, h != H_ABSENT, &base_params, &res);
						char got[128];
						ops_text(&res, got, sizeof(got));
						const char *want_ops = expected(r, h, sessions, timed, owned);
						if (strcmp(got, want_ops) != 0)
							fail_msg("reg=%d hap=%d sessions=%d timed_out=%d owned=%d: got '%s' want '%s'",
								 r, h, sessions, timed, owned, got, want_ops);
						assert_false(res.panic);
						ctl_diff_result_release(&res);
						cases++;
					}
	assert_int_equal(cases, 4 * 4 * 2 * 2 * 2);
}

static void test_unknown_drain_start_never_times_out(void **state)
{
	(void)state;
	struct ctl_have h = make_have("a", CTL_ADMIN_DRAIN);
	h.sessions = 5;
	h.drain_started_us = 0;
	struct ctl_diff_result res;
	ctl_diff(NULL, 0, &h, 1, &base_params, &res);
	assert_int_equal(res.n_ops, 0);
	ctl_diff_result_release(&res);
}

static void test_updates_in_place(void **state)
{
	(void)state;
	struct ctl_want w = make_want("a", CTL_REG_UP);
	snprintf(w.addr, sizeof(w.addr), "::1");
	w.port = 9090;
	w.weight = 200;
	w.maxconn = 0;
	struct ctl_have h = make_have("a", CTL_ADMIN_MAINT);
	struct ctl_diff_result res;
	ctl_diff(&w, 1, &h, 1, &base_params, &res);
	char got[128];
	ops_text(&res, got, sizeof(got));
	assert_string_equal(got, "set_addr set_weight set_maxconn ready");
	assert_string_equal(res.ops[0].addr, "::1");
	assert_int_equal(res.ops[0].port, 9090);
	assert_int_equal(res.ops[1].weight, 200);
	assert_int_equal(res.ops[2].maxconn, 0);
	ctl_diff_result_release(&res);
}

static void test_add_carries_fields(void **state)
{
	(void)state;
	struct ctl_want w = make_want("web-1", CTL_REG_UP);
	w.weight = 64;
	w.maxconn = 7;
	struct ctl_diff_result res;
	ctl_diff(&w, 1, NULL, 0, &base_params, &res);
	assert_int_equal(res.n_ops, 1);
	assert_int_equal(res.ops[0].kind, CTL_OP_ADD);
	assert_string_equal(res.ops[0].name, "web-1");
	assert_string_equal(res.ops[0].addr, "127.0.0.1");
	assert_int_equal(res.ops[0].port, 8080);
	assert_int_equal(res.ops[0].weight, 64);
	assert_int_equal(res.ops[0].maxconn, 7);
	ctl_diff_result_release(&res);
}

static void test_not_owned_conflict_is_counted(void **state)
{
	(void)state;
	struct ctl_want w = make_want("static1", CTL_REG_UP);
	w.weight = 99;
	struct ctl_have h = make_have("static1", CTL_ADMIN_READY);
	h.owned = false;
	struct ctl_diff_result res;
	ctl_diff(&w, 1, &h, 1, &base_params, &res);
	assert_int_equal(res.n_ops, 0);
	assert_int_equal(res.conflicts, 1);
	ctl_diff_result_release(&res);
}

/* Pool of n ready owned servers; the registry keeps `kept` of them. */
static void run_pool(int n, int kept, int check_down, double threshold, bool force, struct ctl_diff_result *res)
{
	struct ctl_want *w = calloc((size_t)n, sizeof(*w));
	struct ctl_have *h = calloc((size_t)n, sizeof(*h));
	for (int i = 0; i < n; i++) {
		char name[16];
		snprintf(name, sizeof(name), "s%d", i);
		w[i] = make_want(name, CTL_REG_UP);
		h[i] = make_have(name, CTL_ADMIN_READY);
		h[i].check_down = i >= kept && i < kept + check_down;
	}
	struct ctl_diff_params p = base_params;
	p.panic_threshold = threshold;
	p.force = force;
	ctl_diff(w, (size_t)kept, h, (size_t)n, &p, res);
	free(w);
	free(h);
}

static size_t count_kind(const struct ctl_diff_result *r, enum ctl_op_kind k)
{
	size_t n = 0;
	for (size_t i = 0; i < r->n_ops; i++)
		n += r->ops[i].kind == k;
	return n;
}

static void test_panic_threshold(void **state)
{
	(void)state;
	struct ctl_diff_result res;
	/* 60% of 10 vanish with 50% threshold: held, nothing drained */
	run_pool(10, 4, 0, 0.5, false, &res);
	assert_true(res.panic);
	assert_int_equal(res.held_back, 6);
	assert_int_equal(res.n_ops, 0);
	ctl_diff_result_release(&res);
	/* exactly 50%: allowed */
	run_pool(10, 5, 0, 0.5, false, &res);
	assert_false(res.panic);
	assert_int_equal(count_kind(&res, CTL_OP_DRAIN), 5);
	ctl_diff_result_release(&res);
	/* over the threshold, but HAProxy sees 2 of them down: those go, the rest stay */
	run_pool(10, 4, 2, 0.5, false, &res);
	assert_true(res.panic);
	assert_int_equal(res.held_back, 4);
	assert_int_equal(count_kind(&res, CTL_OP_DRAIN), 2);
	ctl_diff_result_release(&res);
	/* forced by the operator */
	run_pool(10, 0, 0, 0.5, true, &res);
	assert_false(res.panic);
	assert_int_equal(count_kind(&res, CTL_OP_DRAIN), 10);
	ctl_diff_result_release(&res);
	/* the last server of a pool is never removed by the registry alone */
	run_pool(1, 0, 0, 0.5, false, &res);
	assert_true(res.panic);
	assert_int_equal(res.n_ops, 0);
	ctl_diff_result_release(&res);
}

static void test_explicit_drain_ignores_panic(void **state)
{
	(void)state;
	struct ctl_want w[4];
	struct ctl_have h[4];
	for (int i = 0; i < 4; i++) {
		char name[16];
		snprintf(name, sizeof(name), "s%d", i);
		w[i] = make_want(name, i < 3 ? CTL_REG_DRAINING : CTL_REG_UP);
		h[i] = make_have(name, CTL_ADMIN_READY);
	}
	struct ctl_diff_params p = base_params;
	p.panic_threshold = 0.5;
	struct ctl_diff_result res;
	ctl_diff(w, 4, h, 4, &p, &res);
	assert_false(res.panic);
	assert_int_equal(count_kind(&res, CTL_OP_DRAIN), 3);
	ctl_diff_result_release(&res);
}

static void test_order_is_phase_grouped(void **state)
{
	(void)state;
	struct ctl_want w[3] = { make_want("new", CTL_REG_UP), make_want("keep", CTL_REG_UP),
				 make_want("down", CTL_REG_DOWN) };
	w[1].weight = 50;
	struct ctl_have h[4] = { make_have("gone", CTL_ADMIN_DRAIN), make_have("down", CTL_ADMIN_READY),
				 make_have("keep", CTL_ADMIN_READY), make_have("leaving", CTL_ADMIN_READY) };
	struct ctl_diff_result res;
	ctl_diff(w, 3, h, 4, &base_params, &res);
	char got[256];
	ops_text(&res, got, sizeof(got));
	assert_string_equal(got, "add set_weight drain maint maint del");
	assert_string_equal(res.ops[0].name, "new");
	assert_string_equal(res.ops[2].name, "leaving");
	ctl_diff_result_release(&res);
}

static void test_large_pool_converged_is_empty(void **state)
{
	(void)state;
	enum { N = 10000 };
	struct ctl_want *w = calloc(N, sizeof(*w));
	struct ctl_have *h = calloc(N, sizeof(*h));
	for (int i = 0; i < N; i++) {
		char name[16];
		snprintf(name, sizeof(name), "i%05d", (i * 7919) % N);
		w[i] = make_want(name, CTL_REG_UP);
		snprintf(name, sizeof(name), "i%05d", i);
		h[i] = make_have(name, CTL_ADMIN_READY);
	}
	struct ctl_diff_result res;
	ctl_diff(w, N, h, N, &base_params, &res);
	assert_int_equal(res.n_ops, 0);
	ctl_diff_result_release(&res);
	ctl_diff(w, N, NULL, 0, &base_params, &res);
	assert_int_equal(res.n_ops, N);
	ctl_diff_result_release(&res);
	free(w);
	free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_combination),
		cmocka_unit_test(test_unknown_drain_start_never_times_out),
		cmocka_unit_test(test_updates_in_place),
		cmocka_unit_test(test_add_carries_fields),
		cmocka_unit_test(test_not_owned_conflict_is_counted),
		cmocka_unit_test(test_panic_threshold),
		cmocka_unit_test(test_explicit_drain_ignores_panic),
		cmocka_unit_test(test_order_is_phase_grouped),
		cmocka_unit_test(test_large_pool_converged_is_empty),
	};
	return cmocka_run_group_tests_name("ctl_diff", tests, NULL, NULL);
}
