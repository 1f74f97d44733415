/* `veltrix controller` in attach mode: the HAProxy is the user's (tests/support/fx_haproxy.h),
 * with a static server in the backend the controller fills, and a frontend of the same name
 * declared first (the case where `show stat <name>` would list the frontend). The controller
 * adds and removes only its own servers and never touches the static one, even when a
 * registered instance claims its name, when the pool empties, when an operator forces a sync,
 * and across a restart (the ownership file in its state directory); a reload of the user's
 * HAProxy (which drops dynamic servers) is noticed and the controller's servers come back. */
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
#include "common/buf.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_haproxy.h"
#include "fx_stack.h"
#include "haproxy/hap.h"

#define WAIT_MS 10000

static struct fx_origin origin;
static struct fx_haproxy user;
static struct fx_stack stack;
static struct fx_srv static_before;
static int user_port;

static int setup(void **state)
{
	(void)state;
	fx_origin_start(&origin, 1);
	user_port = net_free_port();
	char *body = xasprintf("frontend web\n    bind 127.0.0.1:%d\n    default_backend web\n"
			       "backend web\n    balance roundrobin\n    option httpchk GET /healthz\n"
			       "    server static1 127.0.0.1:%d check inter 300ms\n",
			       user_port, origin.ports[0]);
	fx_haproxy_start(&user, body);
	free(body);
	/* "nobe" has no backend in the user's HAProxy: skipped, the rest works. */
	static const struct fx_stack_service svcs[] = { { "web", NULL, 0 }, { "nobe", NULL, 0 } };
	struct fx_stack_opts o = { .n_backends = 3, .attach_runtime_socket = user.runtime_sock };
	fx_stack_start(&stack, &o, svcs, 2);
	struct fx_srv srv[4];
	if (fx_stack_servers(&stack, "web", srv, 4) != 1)
		return -1;
	static_before = srv[0];
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_stack_stop(&stack);
	fx_haproxy_stop(&user);
	fx_origin_stop(&origin);
	return 0;
}

static void assert_static_untouched(void)
{
	struct fx_srv srv[8];
	int n = fx_stack_servers(&stack, "web", srv, 8);
	for (int i = 0; i < n; i++) {
		if (strcmp(srv[i].name, "static1") != 0)
			continue;
		assert_string_equal(srv[i].addr, static_before.addr);
		assert_int_equal(srv[i].port, static_before.port);
		assert_int_equal(srv[i].weight, static_before.weight);
		assert_int_equal(srv[i].admin, 0);
		return;
	}
	fail_msg("static1 is gone");
}

static char *owned_file(void)
{
	char *path = fx_path(stack.state_dir, "owned");
	char *text = fx_read_file(path);
	free(path);
	return text ? text : xstrdup("(none)");
}

/* Own servers come and go; the static one stays as configured, also when a registration
 * claims its name. Traffic reaches both kinds. */
static void test_only_own_servers_are_managed(void **state)
{
	(void)state;
	fx_stack_put(&stack, "web", "a0", fx_stack_value(&stack, 0, NULL));
	fx_stack_put(&stack, "web", "a1", fx_stack_value(&stack, 1, NULL));
	assert_true(fx_stack_wait_serving(&stack, "web", "a0,a1,static1", WAIT_MS));
	assert_static_untouched();
	char url[64], who[64], seen[128] = "";
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", user_port);
	for (int i = 0; i < 9; i++) {
		assert_int_equal(fx_stack_get(url, who, sizeof(who)), 200);
		char tag[72];
		snprintf(tag, sizeof(tag), "[%s]", who); /* the origin sends no X-Served-By: "[]" */
		if (!strstr(seen, tag))
			strcat(seen, tag);
	}
	assert_non_null(strstr(seen, "[b0]"));
	assert_non_null(strstr(seen, "[b1]"));
	assert_non_null(strstr(seen, "[]"));

	fx_stack_put(&stack, "web", "static1", fx_stack_value(&stack, 2, "\"weight\":200"));
	int64_t deadline = time_mono_us() + WAIT_MS * 1000LL;
	while (fx_stack_log_count(&stack, "instance names taken by servers Veltrix does not own") < 1) {
		if (time_mono_us() > deadline)
			fail_msg("the name conflict was not reported");
		time_sleep_us(50000);
	}
	assert_static_untouched();
	char *owned = owned_file();
	assert_string_equal(owned, "web a0\nweb a1\n");
	free(owned);

	fx_stack_del(&stack, "web", "a0");
	assert_true(fx_stack_wait_names(&stack, "web", "a1,static1", WAIT_MS));
	assert_static_untouched();

	fx_stack_put(&stack, "nobe", "n0", fx_stack_value(&stack, 0, NULL));
	time_sleep_us(500 * 1000);
	assert_int_equal(fx_stack_log_count(&stack, "cannot read the backend, skipping the service\" service=nobe"), 1);
	assert_int_equal(fx_stack_log_count(&stack, "runtime API refused"), 0);
}

/* A controller killed with SIGKILL and started again still knows its own servers: it removes
 * them when their keys go, adds new ones, and still leaves the static server alone, even when
 * every key is gone and an operator forces the sync. */
static void test_ownership_survives_restart(void **state)
{
	(void)state;
	assert_int_equal(fx_stack_controller_kill(&stack, SIGKILL), 128 + SIGKILL);
	fx_stack_put(&stack, "web", "a2", fx_stack_value(&stack, 2, NULL));
	fx_stack_controller_start(&stack, true);
	assert_true(fx_stack_wait_names(&stack, "web", "a1,a2,static1", WAIT_MS));
	fx_stack_del(&stack, "web", "a1");
	assert_true(fx_stack_wait_names(&stack, "web", "a2,static1", WAIT_MS));
	assert_static_untouched();

	/* The user reloads HAProxy: every dynamic server is gone; the controller, reading from the
	 * new worker, adds its own back. */
	static const char readded[] = "msg=\"server added\" service=web server=a2";
	int added = fx_stack_log_count(&stack, readded);
	struct buf out = BUF_INIT(1 << 16);
	struct vxerr err;
	assert_int_equal(hap_master_cmd(user.master_sock, "reload", 5 * USEC_PER_SEC, &out, &err), 0);
	buf_release(&out);
	int64_t deadline = time_mono_us() + WAIT_MS * 1000LL;
	while (fx_stack_log_count(&stack, readded) == added) {
		if (time_mono_us() > deadline)
			fail_msg("the controller did not add its server back after the reload");
		time_sleep_us(50000);
	}
	assert_true(fx_stack_wait_serving(&stack, "web", "a2,static1", WAIT_MS));
	assert_static_untouched();
	char *owned = owned_file();
	assert_string_equal(owned, "web a2\n");
	free(owned);

	const char *all[] = { "a2", "static1" };
	fx_stack_del_many(&stack, "web", all, 2);
	time_sleep_us(800 * 1000); /* the last own server's key vanished: the panic threshold keeps it */
	assert_string_equal(fx_stack_names(&stack, "web"), "a2,static1");
	struct fx_run r;
	fx_veltrix(&r, 10000, "controller", "-c", stack.cfg_path, "--force-sync", NULL);
	assert_int_equal(r.status, 0);
	fx_run_free(&r);
	assert_true(fx_stack_wait_names(&stack, "web", "static1", WAIT_MS));
	time_sleep_us(500 * 1000);
	assert_string_equal(fx_stack_names(&stack, "web"), "static1");
	assert_static_untouched();
	owned = owned_file();
	assert_string_equal(owned, "");
	free(owned);
	char url[64], who[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", user_port);
	assert_int_equal(fx_stack_get(url, who, sizeof(who)), 200);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_only_own_servers_are_managed),
		cmocka_unit_test(test_ownership_survives_restart),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
