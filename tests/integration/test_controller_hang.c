/* `veltrix controller` with HAProxy's worker hung (SIGSTOP), issue 10 D9 (real etcd, HAProxy,
 * testservers): the loop keeps answering /healthz and /metrics, says HAProxy is unresponsive,
 * and keeps reading the registry; once the worker runs again, what was registered meanwhile is
 * applied. The first exchange with the silent worker still waits its 2 s bound once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "common/timeutil.h"
#include "fx.h"
#include "fx_stack.h"

#define WAIT_MS 10000
#define ANSWER_MS 500 /* a loop that probes HAProxy for 100 ms at most answers well within this */

static struct fx_stack stack;
static pid_t stopped; /* a worker this test stopped: teardown lets it run again */

static int setup(void **state)
{
	(void)state;
	static const struct fx_stack_service svcs[] = { { "web", "    balance: roundrobin\n", 0 } };
	struct fx_stack_opts o = { .n_backends = 2 };
	fx_stack_start(&stack, &o, svcs, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (stopped)
		kill(stopped, SIGCONT);
	stopped = 0;
	fx_stack_stop(&stack);
	return 0;
}

static bool healthy(void *arg)
{
	(void)arg;
	return fx_stack_healthz(&stack, NULL) == 200;
}

/* GET /healthz while the worker is stopped: answered quickly, 503, and says why. */
static void assert_degraded_quickly(void)
{
	char *body = NULL;
	int64_t t0 = time_mono_us();
	long st = fx_stack_healthz(&stack, &body);
	int64_t ms = (time_mono_us() - t0) / 1000;
	if (st != 503 || ms > ANSWER_MS || !body || !strstr(body, "haproxy=unresponsive") || !strstr(body, "registry=up")) {
		char *log = fx_stack_log(&stack), said[256];
		fprintf(stderr, "controller log:\n%s\n", log);
		free(log);
		snprintf(said, sizeof(said), "%s", body ? body : "(no answer)");
		free(body);
		fail_msg("/healthz: status %ld after %lld ms: %s", st, (long long)ms, said);
	}
	free(body);
}

static void test_hung_haproxy_leaves_the_loop_answering(void **state)
{
	(void)state;
	fx_stack_put(&stack, "web", "w0", fx_stack_value(&stack, 0, NULL));
	assert_true(fx_stack_wait_names(&stack, "web", "w0", WAIT_MS));
	assert_int_equal(fx_stack_metric(&stack, "veltrix_haproxy_runtime_up"), 1);
	long long worker = fx_stack_worker_pid(&stack);
	assert_true(worker > 0);
	stopped = (pid_t)worker;
	assert_int_equal(kill(stopped, SIGSTOP), 0);
	fx_stack_put(&stack, "web", "w1", fx_stack_value(&stack, 1, NULL)); /* a round waits on the worker */
	time_sleep_us(4000 * 1000); /* past the one 2 s wait, and past a second without an answer */

	for (int i = 0; i < 10; i++) {
		assert_degraded_quickly();
		int64_t t0 = time_mono_us();
		double instances = fx_stack_metric(&stack, "veltrix_registry_instances{service=\"web\"}");
		int64_t ms = (time_mono_us() - t0) / 1000;
		if (instances != 2 || ms > ANSWER_MS) /* the registry is still read while HAProxy hangs */
			fail_msg("/metrics after %lld ms: %.0f instances, want 2", (long long)ms, instances);
		assert_int_equal(fx_stack_metric(&stack, "veltrix_haproxy_runtime_up"), 0);
		time_sleep_us(200 * 1000);
	}

	assert_int_equal(kill(stopped, SIGCONT), 0);
	stopped = 0;
	assert_true(fx_stack_wait_names(&stack, "web", "w0,w1", WAIT_MS));
	assert_true(fx_wait(healthy, NULL, WAIT_MS));
	assert_int_equal(fx_stack_metric(&stack, "veltrix_haproxy_runtime_up"), 1);
	assert_true(fx_stack_log_count(&stack, "HAProxy's runtime API answers again") >= 1);
	/* logged once per outage, not at every probe (there were more than ten) */
	assert_true(fx_stack_log_count(&stack, "cannot reach HAProxy's runtime API") <= 2);
	assert_int_equal(fx_stack_worker_pid(&stack), worker); /* the same worker: nothing restarted it */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hung_haproxy_leaves_the_loop_answering, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
