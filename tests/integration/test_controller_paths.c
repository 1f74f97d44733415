/* `veltrix controller` and the paths HAProxy runs on (real etcd, HAProxy, testservers):
 * issue 10 D5, a SIGHUP that changes `haproxy.state_dir` (and with it the default socket
 * paths) keeps the running paths with a warning, and the structural change made in the same
 * SIGHUP still reloads HAProxy onto the same sockets; D7, a controller restarted with another
 * `haproxy.runtime_socket` adopts the running HAProxy, reads its servers where it serves, and
 * reloads it onto the configured path. Also what a SIGHUP may not do: remove every service, or
 * leave the metric series of a removed one behind (D17). Each test has a stack of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_stack.h"

#define WAIT_MS 10000
#define KEPT "restart-only setting changed, keeping the running value"

static struct fx_stack stack;

static int setup(void **state)
{
	(void)state;
	static const struct fx_stack_service svcs[] = { { "web", "    balance: roundrobin\n", 0 } };
	struct fx_stack_opts o = { .n_backends = 3 };
	fx_stack_start(&stack, &o, svcs, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_stack_stop(&stack);
	return 0;
}

static void assert_serves(const char *service)
{
	char who[64];
	long st = fx_stack_get(fx_stack_url(&stack, service), who, sizeof(who));
	if (st != 200)
		fail_msg("%s answered %ld", service, st);
}

static bool backend_exists(void *arg)
{
	struct fx_srv srv[4];
	return fx_stack_servers(&stack, arg, srv, 4) >= 0;
}

/* The warning about `setting` names both values (paths need no quoting in logfmt). */
static void assert_kept_logged(const char *setting, const char *running, const char *configured)
{
	char *log = fx_stack_log(&stack);
	char *fields = xasprintf("setting=%s running=%s configured=%s\n", setting, running, configured);
	const char *at = strstr(log, fields);
	const char *line = at;
	while (line && line > log && line[-1] != '\n')
		line--;
	if (!at || !strstr(line, KEPT) || strstr(line, KEPT) > at)
		fail_msg("no warning with %s", fields);
	free(fields);
	free(log);
}

/* issue 10 D5: state_dir changed in the file together with a new service, then SIGHUP. The
 * running paths stay (one warning per moved setting, naming both values), the new service is
 * added with one reload onto the same sockets, and the runtime API keeps answering. Before,
 * the reload rendered the new socket paths, waited 15 s for a worker on the old one, reported
 * a failure, and the controller had lost the runtime API for good. */
static void test_sighup_keeps_restart_only_paths(void **state)
{
	(void)state;
	fx_stack_put(&stack, "web", "w0", fx_stack_value(&stack, 0, NULL));
	assert_true(fx_stack_wait_names(&stack, "web", "w0", WAIT_MS));
	int reloads = fx_stack_reloads(&stack);
	char *old_dir = xstrdup(stack.state_dir), *new_dir = fx_path(stack.dir, "state-moved");
	char *old_rt = fx_path(old_dir, "runtime.sock"), *new_rt = fx_path(new_dir, "runtime.sock");
	char *old_ms = fx_path(old_dir, "master.sock"), *new_ms = fx_path(new_dir, "master.sock");
	free(stack.state_dir);
	stack.state_dir = xstrdup(new_dir);
	fx_stack_add_service(&stack, "more", NULL); /* rewrites the file with the new state_dir */
	assert_int_equal(fx_stack_controller_kill(&stack, SIGHUP), 0);

	static char more[] = "more";
	assert_true(fx_wait(backend_exists, more, WAIT_MS));
	fx_stack_put(&stack, "more", "m0", fx_stack_value(&stack, 1, NULL));
	assert_true(fx_stack_wait_names(&stack, "more", "m0", WAIT_MS));
	fx_stack_put(&stack, "web", "w1", fx_stack_value(&stack, 2, NULL));
	assert_true(fx_stack_wait_names(&stack, "web", "w0,w1", WAIT_MS));
	assert_serves("more");
	assert_serves("web");
	assert_int_equal(fx_stack_reloads(&stack), reloads + 1);
	assert_int_equal(fx_stack_log_count(&stack, "HAProxy reload failed"), 0);
	assert_int_equal(fx_stack_log_count(&stack, KEPT), 3);
	assert_kept_logged("haproxy.state_dir", old_dir, new_dir);
	assert_kept_logged("haproxy.runtime_socket", old_rt, new_rt);
	assert_kept_logged("haproxy.master_socket", old_ms, new_ms);
	assert_int_equal(access(new_dir, F_OK), -1); /* nothing was written there */

	free(stack.state_dir); /* the fixture's paths are those that run */
	stack.state_dir = old_dir;
	free(new_dir);
	free(old_rt);
	free(new_rt);
	free(old_ms);
	free(new_ms);
}

/* issue 10 D7: the controller stops (HAProxy keeps serving), the file moves the runtime socket,
 * a controller starts: it adopts the running HAProxy, reads the servers to carry over on the
 * socket HAProxy serves, and reloads it onto the configured path, every server kept (none added
 * again). Before, it read them on the configured path, where nobody answered, and exited 3. */
static void test_restart_with_moved_runtime_socket_adopts(void **state)
{
	(void)state;
	fx_stack_put(&stack, "web", "r0", fx_stack_value(&stack, 0, NULL));
	fx_stack_put(&stack, "web", "r1", fx_stack_value(&stack, 1, NULL));
	assert_true(fx_stack_wait_names(&stack, "web", "r0,r1", WAIT_MS));
	long long worker = fx_stack_worker_pid(&stack);
	int reloads = fx_stack_reloads(&stack);
	pid_t master = stack.hap_master;
	assert_int_equal(fx_stack_controller_kill(&stack, SIGTERM), 0);

	char *moved = fx_path(stack.state_dir, "moved.sock"), *old_rt = stack.runtime_sock;
	char *yaml = xasprintf("  runtime_socket: %s", moved);
	stack.opts.haproxy_yaml = yaml;
	fx_stack_write_config(&stack);
	stack.runtime_sock = moved;
	assert_true(fx_stack_controller_try_start(&stack, WAIT_MS));

	assert_int_equal(fx_stack_log_count(&stack, "adopted the running HAProxy"), 1);
	assert_int_equal(fx_stack_log_count(&stack, "serves its runtime API on another path"), 1);
	assert_int_equal(stack.hap_master, master);
	assert_int_equal(fx_stack_reloads(&stack), reloads + 1);
	assert_true(fx_stack_worker_pid(&stack) != worker);
	assert_string_equal(fx_stack_names(&stack, "web"), "r0,r1");
	assert_serves("web");
	fx_stack_put(&stack, "web", "r2", fx_stack_value(&stack, 2, NULL));
	assert_true(fx_stack_wait_names(&stack, "web", "r0,r1,r2", WAIT_MS));
	assert_int_equal(fx_stack_log_count(&stack, "msg=\"server added\" service=web"), 3);
	assert_int_equal(fx_stack_log_count(&stack, "msg=\"server removed\""), 0);

	free(old_rt);
	free(yaml);
	stack.opts.haproxy_yaml = NULL;
}

/* issue 10 (decided): a SIGHUP with `services: []` would remove every frontend; it is refused
 * with an error naming the way to mean it (a restart), and HAProxy keeps serving unchanged. */
static void test_sighup_without_services_is_refused(void **state)
{
	(void)state;
	fx_stack_put(&stack, "web", "w0", fx_stack_value(&stack, 0, NULL));
	assert_true(fx_stack_wait_names(&stack, "web", "w0", WAIT_MS));
	int reloads = fx_stack_reloads(&stack);
	int n = stack.n_svcs;
	stack.n_svcs = 0;
	fx_stack_write_config(&stack);
	assert_int_equal(fx_stack_controller_kill(&stack, SIGHUP), 0);
	int64_t until = time_mono_us() + WAIT_MS * 1000LL;
	while (fx_stack_log_count(&stack, "configuration reload refused: it has no services") == 0) {
		if (time_mono_us() > until)
			fail_msg("the reload without services was not refused");
		time_sleep_us(50000);
	}
	stack.n_svcs = n;
	fx_stack_write_config(&stack);
	assert_serves("web");
	assert_int_equal(fx_stack_reloads(&stack), reloads);
	fx_stack_put(&stack, "web", "w1", fx_stack_value(&stack, 1, NULL));
	assert_true(fx_stack_wait_names(&stack, "web", "w0,w1", WAIT_MS)); /* still managing it */
}

static bool backend_gone(void *arg)
{
	return !backend_exists(arg);
}

/* D17: a service removed by SIGHUP leaves no series in /metrics; the others keep theirs. */
static void test_removed_service_leaves_no_metric_series(void **state)
{
	(void)state;
	static const char gone_instances[] = "veltrix_registry_instances{service=\"gone\"}";
	static const char gone_held[] = "veltrix_panic_held_servers{service=\"gone\"}";
	static const char web_instances[] = "veltrix_registry_instances{service=\"web\"}";
	fx_stack_add_service(&stack, "gone", "    balance: roundrobin\n");
	fx_stack_put(&stack, "gone", "g0", fx_stack_value(&stack, 0, NULL));
	fx_stack_put(&stack, "web", "w0", fx_stack_value(&stack, 1, NULL));
	assert_int_equal(fx_stack_controller_kill(&stack, SIGHUP), 0);
	assert_true(fx_stack_wait_names(&stack, "gone", "g0", WAIT_MS));
	assert_true(fx_stack_wait_names(&stack, "web", "w0", WAIT_MS));
	int64_t until = time_mono_us() + WAIT_MS * 1000LL;
	while (fx_stack_metric(&stack, gone_instances) != 1) {
		if (time_mono_us() > until)
			fail_msg("%s never reached 1", gone_instances);
		time_sleep_us(50000);
	}
	assert_int_equal(fx_stack_metric(&stack, gone_held), 0);

	stack.n_svcs--; /* "gone" was added last */
	fx_stack_write_config(&stack);
	assert_int_equal(fx_stack_controller_kill(&stack, SIGHUP), 0);
	static char gone[] = "gone";
	assert_true(fx_wait(backend_gone, gone, WAIT_MS));
	time_sleep_us(1200 * 1000); /* past a refresh of the gauges (every second) */
	assert_int_equal(fx_stack_metric(&stack, web_instances), 1); /* the endpoint answers */
	assert_int_equal(fx_stack_metric(&stack, gone_instances), -1);
	assert_int_equal(fx_stack_metric(&stack, gone_held), -1);
	assert_serves("web");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sighup_keeps_restart_only_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_with_moved_runtime_socket_adopts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sighup_without_services_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_removed_service_leaves_no_metric_series, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
