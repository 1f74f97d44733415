/* Weight policy: capacity proportions, overrides, feedback from statistics, damping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "controller/weights.h"

static void test_capacity_proportions(void **state)
{
	(void)state;
	int64_t cap[3] = { 100, 200, 400 };
	int w[3];
	ctl_weights_from_capacity(cap, NULL, 3, w);
	assert_int_equal(w[0], 64);
	assert_int_equal(w[1], 128);
	assert_int_equal(w[2], 256);
	/* tiny next to huge still gets traffic */
	int64_t skew[2] = { 1, 100000 };
	ctl_weights_from_capacity(skew, NULL, 2, w);
	assert_int_equal(w[0], 1);
	assert_int_equal(w[1], 256);
}

static void test_override(void **state)
{
	(void)state;
	int64_t cap[3] = { 100, 100, 100 };
	int ov[3] = { -1, 0, 999 };
	int w[3];
	ctl_weights_from_capacity(cap, ov, 3, w);
	assert_int_equal(w[0], 256);
	assert_int_equal(w[1], 0);
	assert_int_equal(w[2], 256);
}

static void sample_round(struct ctl_feedback *fb, struct ctl_sample *s, int n, int bad, int rounds)
{
	for (int r = 0; r < rounds; r++) {
		for (int i = 0; i < n; i++) {
			s[i].requests += 1000;
			s[i].errors += i == bad ? 200 : 0;
			s[i].rtime_ms = 3;
		}
		ctl_feedback_update(fb, s, (size_t)n);
	}
}

static void test_errors_pull_weight_down_then_recover(void **state)
{
	(void)state;
	struct ctl_feedback fb[4];
	struct ctl_sample s[4] = { 0 };
	for (int i = 0; i < 4; i++)
		ctl_feedback_init(&fb[i]);
	sample_round(fb, s, 4, 2, 3);
	assert_true(fb[2].factor < 0.4);
	assert_true(fb[0].factor == 1.0);
	int w = ctl_feedback_weight(&fb[2], 200);
	assert_true(w < 80 && w >= 1);
	assert_int_equal(ctl_feedback_weight(&fb[0], 200), 200);
	sample_round(fb, s, 4, -1, 10);
	assert_true(fb[2].factor == 1.0);
}

static void test_slow_server_detected_against_peers(void **state)
{
	(void)state;
	struct ctl_feedback fb[3];
	struct ctl_sample s[3] = { { 1000, 0, 10, 0 }, { 1000, 0, 12, 0 }, { 1000, 0, 90, 0 } };
	for (int i = 0; i < 3; i++)
		ctl_feedback_init(&fb[i]);
	ctl_feedback_update(fb, s, 3);
	assert_true(fb[2].factor < 1.0);
	assert_true(fb[0].factor == 1.0 && fb[1].factor == 1.0);
}

static void test_counter_reset_is_not_an_error_burst(void **state)
{
	(void)state;
	struct ctl_feedback fb;
	ctl_feedback_init(&fb);
	fb.last_requests = 5000;
	fb.last_errors = 100;
	struct ctl_sample s = { 10, 50, 1, 0 };
	ctl_feedback_update(&fb, &s, 1);
	assert_true(fb.factor == 1.0);
	assert_int_equal(fb.last_requests, 10);
}

static void test_damping(void **state)
{
	(void)state;
	struct ctl_feedback fb;
	ctl_feedback_init(&fb);
	fb.applied = 100;
	fb.factor = 0.95;
	assert_int_equal(ctl_feedback_weight(&fb, 100), 100);
	fb.factor = 0.5;
	assert_int_equal(ctl_feedback_weight(&fb, 100), 50);
	assert_int_equal(ctl_feedback_weight(&fb, 0), 0);
	/* a base change always goes through */
	fb.factor = 1.0;
	fb.applied = 100;
	assert_int_equal(ctl_feedback_weight(&fb, 105), 105);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_capacity_proportions),
		cmocka_unit_test(test_override),
		cmocka_unit_test(test_errors_pull_weight_down_then_recover),
		cmocka_unit_test(test_slow_server_detected_against_peers),
		cmocka_unit_test(test_counter_reset_is_not_an_error_burst),
		cmocka_unit_test(test_damping),
	};
	return cmocka_run_group_tests_name("ctl_weights", tests, NULL, NULL);
}
