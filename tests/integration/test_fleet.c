/* The fleet, small: a 3-member etcd cluster and 4 `veltrix controller`s, each managing its own
 * HAProxy; 1,000 instances in 10 services; churn (adds, deletes, weight changes) at 200
 * changes/s for 10 s, written with libcurl to etcd's gateway; the etcd leader killed -9 at 5 s
 * and restarted 3 s later (tests/support/fx_fleet.c, shared with bench/bench_fleet.c).
 * Asserted: every change reaches all 4 HAProxys; at the end each HAProxy equals etcd (nothing
 * lost, nothing duplicated, no deleted server left draining); no change sent within +-2 s of the
 * kill took more than 2 s to reach all 4 (a generous bound: timing figures are the benchmark's
 * business, not this test's). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <unistd.h>

#include "fx.h"
#include "fx_fleet.h"

static struct fx_fleet_report r;

static int teardown(void **state)
{
	(void)state;
	fx_fleet_report_release(&r);
	return 0;
}

static void test_fleet_churn_across_a_leader_kill(void **state)
{
	(void)state;
	struct fx_fleet_opts o;
	fx_fleet_defaults(&o);
	o.services = 10;
	o.instances = 1000;
	o.rate = 200;
	o.seconds = 10;
	o.kill_at_ms = 5000;
	o.restart_after_ms = 3000;
	o.poll_pause_us = 2000;   /* resolution enough against a 2 s bound, and less load */
	o.count_requests = false; /* request counts are the benchmark's */
	o.settle_ms = 20000;      /* bounds the waits at the end (each ends after 10 s without progress) */
	fx_fleet_run(&o, &r);
	fx_fleet_print(&r, stderr);

	struct fx_fleet_stats all, win;
	fx_fleet_stats(&r, -1, FX_FLEET_ALL, &all);
	fx_fleet_stats(&r, -1, FX_FLEET_KILL, &win);
	assert_true(r.leader >= 0);          /* a leader was found and killed */
	assert_int_equal(r.failed, 0);       /* every write got through, across the kill too */
	assert_int_equal(all.unseen, 0);     /* every change reached all 4 HAProxys */
	assert_int_equal(all.n, r.n_ch);
	assert_int_equal(r.model_mismatch, 0); /* etcd holds what was written */
	for (int c = 0; c < o.controllers; c++) {
		const struct fx_fleet_final *x = &r.ctl[c].final;
		if (x->lost || x->dup || x->lingering)
			fprintf(stderr, "# controller %d: lost %d, duplicated %d, lingering %d\n", c, x->lost, x->dup,
				x->lingering);
		assert_int_equal(x->lost, 0);
		assert_int_equal(x->dup, 0);
		assert_int_equal(x->lingering, 0);
		assert_int_equal(x->servers, r.etcd_keys);
	}
	assert_true(win.n > 0);
	assert_int_equal(win.unseen, 0);
	if (win.over_2s)
		fprintf(stderr, "# %lld changes near the kill took over 2 s (max %.0f ms)\n", (long long)win.over_2s, win.max);
	assert_int_equal(win.over_2s, 0);
}

int main(void)
{
	alarm(85); /* the fixtures stop every process on SIGALRM */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_fleet_churn_across_a_leader_kill, teardown),
	};
	return cmocka_run_group_tests_name("fleet", tests, NULL, NULL);
}
