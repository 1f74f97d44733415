/* Nothing blocks the controller's loop (issue 9): HAProxy here is a wrapper whose `haproxy -c`
 * takes 2 s, so every haproxy.cfg refresh after membership changes, and every reload, spends
 * seconds in its check. Registry changes made while a check runs must still reach HAProxy at
 * once: the test writes a change every 100 ms, times each one until `show servers state` shows
 * it, and asserts that changes made and applied entirely inside a check window were applied in
 * well under the check's 2 s (a loop waiting for the check would hold them for up to 2 s).
 * Also: a SIGHUP that adds a service reloads HAProxy through the same slow check while changes
 * keep flowing, and the new service and every existing server are there afterwards. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/timeutil.h"
#include "fx.h"
#include "fx_stack.h"

#define CHANGES 30
#define CHANGE_EVERY_MS 100
#define APPLIED_WITHIN_MS 1000 /* half the check's 2 s */

static struct fx_stack stack;
static char *dir, *checks_log;

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* haproxy, but `-c` sleeps 2 s first; each check's start and end go to checks.log (wall ms). */
static char *write_wrapper(void)
{
	char *path = fx_path(dir, "slow-haproxy");
	char script[1024];
	snprintf(script, sizeof(script),
		 "#!/bin/sh\n"
		 "case \" $* \" in *\" -c \"*)\n"
		 "  echo \"start $(date +%%s%%3N)\" >>%s\n"
		 "  sleep 2\n"
		 "  haproxy \"$@\"; rc=$?\n"
		 "  echo \"end $(date +%%s%%3N)\" >>%s\n"
		 "  exit $rc;;\n"
		 "esac\n"
		 "exec haproxy \"$@\"\n",
		 checks_log, checks_log);
	fx_write_file(path, script);
	chmod(path, 0755);
	return path;
}

static int setup(void **state)
{
	(void)state;
	static const struct fx_stack_service svcs[] = { { "slow", "    health:\n      type: none\n", 0 } };
	static char haproxy_yaml[512];
	dir = fx_tmpdir("offloop");
	checks_log = fx_path(dir, "checks.log");
	char *wrapper = write_wrapper();
	snprintf(haproxy_yaml, sizeof(haproxy_yaml), "  binary: %s", wrapper);
	free(wrapper);
	struct fx_stack_opts o = { .n_backends = 2, .haproxy_yaml = haproxy_yaml };
	fx_stack_start(&stack, &o, svcs, 1);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_stack_stop(&stack);
	free(checks_log);
	free(dir);
	return 0;
}

struct window {
	int64_t start, end;
};

/* The check windows logged so far (a check still running ends "now + 2 s" at the latest). */
static int read_windows(struct window *w, int max)
{
	char *text = fx_read_file(checks_log);
	int n = 0;
	for (char *line = text ? strtok(text, "\n") : NULL; line && n < max; line = strtok(NULL, "\n")) {
		long long t;
		if (sscanf(line, "start %lld", &t) == 1)
			w[n++] = (struct window){ t, INT64_MAX };
		else if (sscanf(line, "end %lld", &t) == 1 && n > 0)
			w[n - 1].end = t;
	}
	free(text);
	return n;
}

static bool has_server(const char *service, const char *name)
{
	struct fx_srv srv[64];
	int n = fx_stack_servers(&stack, service, srv, 64);
	for (int i = 0; i < n; i++)
		if (strcmp(srv[i].name, name) == 0)
			return true;
	return false;
}

struct change {
	int64_t put_ms, seen_ms;
};

/* Registers prefix0..prefix<n-1> of service one every CHANGE_EVERY_MS, timing each until seen. */
static void churn(const char *service, const char *prefix, struct change *ch, int n)
{
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "%s%d", prefix, i);
		int64_t next = wall_ms() + CHANGE_EVERY_MS;
		ch[i].put_ms = wall_ms();
		fx_stack_put(&stack, service, name, fx_stack_value(&stack, i % 2, NULL));
		while (!has_server(service, name)) {
			if (wall_ms() - ch[i].put_ms > 10000)
				fail_msg("%s never reached HAProxy", name);
			time_sleep_us(2000);
		}
		ch[i].seen_ms = wall_ms();
		if (wall_ms() < next)
			time_sleep_us((uint64_t)(next - wall_ms()) * 1000);
	}
}

/* How many changes were made and applied inside a check window; fails on a slow one. */
static int inside_checks(const struct change *ch, int n)
{
	struct window w[64];
	int n_w = read_windows(w, 64), inside = 0;
	int64_t worst = 0;
	for (int i = 0; i < n; i++) {
		int64_t took = ch[i].seen_ms - ch[i].put_ms;
		worst = took > worst ? took : worst;
		for (int k = 0; k < n_w; k++)
			if (ch[i].put_ms >= w[k].start && ch[i].seen_ms <= w[k].end) {
				inside++;
				break;
			}
	}
	fprintf(stderr, "# %d checks so far; %d of %d changes made and applied during one; slowest %lld ms\n", n_w,
		inside, n, (long long)worst);
	assert_true(worst < APPLIED_WITHIN_MS);
	return inside;
}

static void test_changes_flow_while_the_refresh_checks(void **state)
{
	(void)state;
	struct change ch[CHANGES];
	churn("slow", "r", ch, CHANGES);
	/* Membership changed all along: a refresh (2 s of check) ran for most of the 3 s. */
	assert_true(inside_checks(ch, CHANGES) >= 5);
	assert_int_equal(fx_stack_log_count(&stack, "cannot refresh haproxy.cfg"), 0);
}

static void test_changes_flow_while_a_reload_checks(void **state)
{
	(void)state;
	struct change ch[CHANGES];
	int reloads = fx_stack_reloads(&stack);
	fx_stack_add_service(&stack, "added", "    health:\n      type: none\n");
	fx_stack_controller_kill(&stack, SIGHUP);
	churn("slow", "h", ch, CHANGES);
	assert_true(inside_checks(ch, CHANGES) >= 5);
	/* The reload went through: the new service serves, and no server was lost on the way. */
	fx_stack_put(&stack, "added", "a0", fx_stack_value(&stack, 0, NULL));
	assert_true(fx_stack_wait_names(&stack, "added", "a0", 15000));
	assert_true(fx_stack_reloads(&stack) > reloads);
	for (int i = 0; i < CHANGES; i++) {
		char r[16], h[16];
		snprintf(r, sizeof(r), "r%d", i);
		snprintf(h, sizeof(h), "h%d", i);
		assert_true(has_server("slow", r));
		assert_true(has_server("slow", h));
	}
	assert_int_equal(fx_stack_log_count(&stack, "HAProxy reload failed"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_changes_flow_while_the_refresh_checks),
		cmocka_unit_test(test_changes_flow_while_a_reload_checks),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
