/* `veltrix scenario` end to end, with the real binary, etcd, HAProxy and test servers: invalid
 * files exit 2 with their position, a short scenario with a kill -9 and a drain passes and its
 * reports are right (JSON, a well-formed self-contained HTML page), an impossible SLO exits 1,
 * and however a run ends (normally, Ctrl-C, a broken stack, the runner itself killed) no
 * process is left behind. Agent registration is tested when `veltrix agent` exists. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/parse.h"
#include "fx.h"
#include "fx_scenario.h"

#define RUN_TIMEOUT_MS 120000

static const char *top(void)
{
	const char *t = getenv("VX_TOP");
	return t && *t ? t : ".";
}

static char *write_scenario(const char *name, const char *yaml)
{
	char *dir = fx_tmpdir("scn");
	char *path = fx_path(dir, name);
	fx_write_file(path, yaml);
	free(dir);
	return path;
}

static void assert_no_children(void)
{
	char who[256] = "";
	if (!fx_no_children(10000, who, sizeof(who)))
		fail_msg("a process outlived the run: %s", who);
}

static void test_invalid_files_exit_2(void **state)
{
	(void)state;
	static const struct {
		const char *file, *where;
	} rows[] = {
		{ "unknown-key", ":5:5: error: backends[0].servce_time: unknown key" },
		{ "bad-duration", ":7:29: error: load.phases[1].duration:" },
		{ "bad-target", ":9:36: error: faults[1].target: no backend named `web-3`; did you mean" },
		{ "wrong-param", ":10:19: error: faults[0].service_time: `service_time` does not apply to `kill`" },
		{ "late-fault", ":8:10: error: faults[0].at: the load ends at 5s" },
		{ "bad-assert", ":7:15: error: load.phases[0].assert:" },
		{ "yaml-syntax", ":4:5: error: YAML syntax error" },
		{ "static-etcd", ":9:22: error: faults[0].action: `etcd_stop` needs the Veltrix stack" },
		{ "missing-load", ":2:1: error: load: missing required key `load`" },
		{ "capacities", ":5:15: error: backends[0].capacity: 3 capacities for 2 instances" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char *path = xasprintf("%s/tests/fixtures/scenario/%s.yaml", top(), rows[i].file);
		char *want = xasprintf("%s%s", path, rows[i].where);
		struct fx_run r;
		fx_veltrix(&r, 30000, "scenario", i % 2 ? "check" : "run", path, NULL);
		assert_int_equal(r.status, 2);
		if (!strstr(r.err, want))
			fail_msg("%s: expected \"%s\" in:\n%s", rows[i].file, want, r.err);
		assert_non_null(strstr(r.err, "invalid scenario"));
		fx_run_free(&r);
		free(want);
		free(path);
	}
}

static void test_usage_errors_exit_2(void **state)
{
	(void)state;
	static const char *const cases[][4] = {
		{ "scenario", NULL }, { "scenario", "run", NULL }, { "scenario", "frob", "x.yaml", NULL },
		{ "scenario", "run", "--stack", "k8s" }, { "scenario", "run", "--time-scale", "0" },
		{ "scenario", "run", "/nonexistent/x.yaml", NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx_run r;
		fx_veltrix(&r, 30000, cases[i][0], cases[i][1], cases[i][2], cases[i][3], NULL);
		assert_int_equal(r.status, 2);
		assert_true(strlen(r.err) > 0);
		fx_run_free(&r);
	}
}

/* A short Veltrix scenario: one backend killed (kill -9), another drained and stopped (term),
 * the killed one started again; the assertions allow for a loaded test machine. */
static const char *kill_and_drain =
	"name: kill-and-drain\n"
	"service: {drain_timeout: 1s}\n"
	"backends:\n"
	"  - {name: web, capacity: [20, 20, 20], service_time: 5ms}\n"
	"load:\n"
	"  connections: 128\n"
	"  phases:\n"
	"    - {name: warm, rate: 200, duration: 2s, assert: 'errors<1%'}\n"
	"    - {name: faults, rate: 200, duration: 6s, assert: [errors<1%, p99<1s, rps>=150]}\n"
	"faults:\n"
	"  - {at: 2.5s, action: kill, target: web-1}\n"
	"  - {at: 3s, action: term, target: web-2}\n"
	"  - {at: 4s, action: start, target: web-1}\n"
	"assert: errors<1%\n";

static json_t *find_fault(json_t *faults, const char *action)
{
	size_t i;
	json_t *f;
	json_array_foreach(faults, i, f)
		if (strcmp(json_string_value(json_object_get(f, "action")), action) == 0)
			return f;
	return NULL;
}

static void test_kill_and_drain_pass(void **state)
{
	(void)state;
	char *path = write_scenario("kill.yaml", kill_and_drain);
	char *dir = fx_tmpdir("out");
	char *json_path = fx_path(dir, "r.json"), *html_path = fx_path(dir, "r.html");
	struct fx_run r;
	fx_veltrix(&r, RUN_TIMEOUT_MS, "scenario", "run", "--json", json_path, path, "--html", html_path, NULL);
	if (r.status != 0)
		fail_msg("exit %d\n%s\n%s", r.status, r.out, r.err);
	assert_non_null(strstr(r.out, "verdict: PASS"));
	assert_non_null(strstr(r.out, "HTML report: "));
	/* the JSON report */
	json_error_t je;
	json_t *doc = json_load_file(json_path, 0, &je);
	assert_non_null(doc);
	assert_string_equal(json_string_value(json_object_get(doc, "verdict")), "pass");
	assert_int_equal(json_integer_value(json_object_get(doc, "exit_code")), 0);
	json_t *faults = json_object_get(doc, "faults");
	assert_int_equal(json_array_size(faults), 3);
	json_t *term = find_fault(faults, "term"), *kill = find_fault(faults, "kill");
	assert_true(json_is_true(json_object_get(term, "ok")));
	assert_non_null(strstr(json_string_value(json_object_get(term, "detail")), "drained and stopped"));
	assert_true(json_is_true(json_object_get(kill, "ok")));
	assert_true(json_is_true(json_object_get(find_fault(faults, "start"), "ok")));
	json_t *tl = json_object_get(doc, "timeline");
	assert_true(json_array_size(tl) >= 7);
	/* the drained backend answered nothing after its stop: its share fell to zero */
	json_t *last = json_array_get(tl, json_array_size(tl) - 1);
	assert_true(json_real_value(json_object_get(json_object_get(last, "served"), "web-2")) == 0);
	assert_true(json_real_value(json_object_get(json_object_get(last, "served"), "web-1")) > 0);
	assert_int_equal(json_array_size(json_object_get(doc, "phases")), 2);
	json_decref(doc);
	/* the HTML report */
	char *html = fx_read_file(html_path);
	assert_non_null(html);
	const char *why = fx_html_problem(html);
	if (why)
		fail_msg("HTML report: %s", why);
	assert_non_null(strstr(html, "kill web-1"));
	assert_non_null(strstr(html, "<svg"));
	free(html);
	fx_run_free(&r);
	assert_no_children();
	free(json_path);
	free(html_path);
	free(dir);
	free(path);
}

static void test_impossible_slo_exits_1(void **state)
{
	(void)state;
	char *path = write_scenario("slo.yaml", "backends: [{name: web, count: 2, capacity: 20, service_time: 5ms}]\n"
						 "load:\n  phases:\n    - {rate: 100, duration: 2s, assert: 'p99<1us'}\n");
	struct fx_run r;
	fx_veltrix(&r, RUN_TIMEOUT_MS, "scenario", "run", "--stack", "static", "--quiet", path, NULL);
	if (r.status != 1)
		fail_msg("exit %d\n%s\n%s", r.status, r.out, r.err);
	assert_non_null(strstr(r.out, "p99<1us FAILED"));
	assert_non_null(strstr(r.out, "verdict: FAIL"));
	assert_non_null(strstr(r.out, "on the static stack"));
	fx_run_free(&r);
	assert_no_children();
	free(path);
}

static const char *long_run = "backends: [{name: web, count: 2, capacity: 20, service_time: 5ms}]\n"
			      "load:\n  phases:\n    - {rate: 100, duration: 60s}\n";

static void test_ctrl_c_tears_down(void **state)
{
	(void)state;
	char *path = write_scenario("long.yaml", long_run);
	const char *args[] = { "scenario", "run", path, NULL };
	struct fx_bg b;
	fx_bg_start(&b, args);
	assert_true(fx_bg_wait_err(&b, "phase phase-1", 60000));
	kill(b.pid, SIGINT);
	fx_bg_wait(&b, 30000);
	assert_int_equal(b.status, 3);
	char *out = fx_bg_out(&b);
	assert_non_null(strstr(out, "verdict: INVALID: interrupted"));
	free(out);
	assert_no_children();
	fx_bg_free(&b);
	free(path);
}

/* The controller dies when no fault asked for it: the run stops, invalid, and cleans up. */
static bool cmdline_has(const char *pid, const char *needle)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%s/cmdline", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\0')
			buf[i] = ' ';
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

static pid_t find_process(const char *needle)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;
	int64_t pid;
	while (d && !found && (e = readdir(d)) != NULL)
		if (parse_i64(e->d_name, 1, INT32_MAX, &pid) == 0 && cmdline_has(e->d_name, needle))
			found = (pid_t)pid;
	if (d)
		closedir(d);
	return found;
}

static void test_broken_stack_is_invalid(void **state)
{
	(void)state;
	char *path = write_scenario("broken.yaml", long_run);
	const char *args[] = { "scenario", "run", path, NULL };
	struct fx_bg b;
	fx_bg_start(&b, args);
	assert_true(fx_bg_wait_err(&b, "phase phase-1", 60000));
	char *err = fx_bg_err(&b);
	const char *dir = strstr(err, "stack up in ");
	assert_non_null(dir);
	char yaml[256];
	snprintf(yaml, sizeof(yaml), "%.*s/veltrix.yaml", (int)strcspn(dir + 12, ";"), dir + 12);
	free(err);
	pid_t ctl = find_process(yaml);
	assert_true(ctl > 0);
	kill(ctl, SIGKILL);
	fx_bg_wait(&b, 30000);
	assert_int_equal(b.status, 3);
	char *out = fx_bg_out(&b);
	assert_non_null(strstr(out, "verdict: INVALID: controller"));
	assert_non_null(strstr(out, "the stack broke"));
	free(out);
	assert_no_children();
	fx_bg_free(&b);
	free(path);
}

/* SIGKILL of the runner itself: its children die with it, and the guardian takes the HAProxy
 * the controller started (which is meant to outlive a controller) down too. */
static void test_runner_killed_leaves_nothing(void **state)
{
	(void)state;
	char *path = write_scenario("killed.yaml", long_run);
	const char *args[] = { "scenario", "run", path, NULL };
	struct fx_bg b;
	fx_bg_start(&b, args);
	assert_true(fx_bg_wait_err(&b, "phase phase-1", 60000));
	kill(b.pid, SIGKILL);
	fx_bg_wait(&b, 10000);
	assert_int_equal(b.status, 128 + SIGKILL);
	assert_no_children();
	fx_bg_free(&b);
	free(path);
}

static bool agent_available(void)
{
	struct fx_run r;
	fx_veltrix(&r, 10000, "help", "agent", NULL);
	bool ok = r.status == 0;
	fx_run_free(&r);
	return ok;
}

static void test_agent_registration(void **state)
{
	(void)state;
	if (!agent_available()) {
		/* a TAP comment, so the runner does not count a skip as a failure */
		print_message("# SKIP `veltrix agent` is not a command of this build: agent registration not tested\n");
		return;
	}
	char *path = write_scenario("agent.yaml", "registration: agent\n"
						  "service: {drain_timeout: 1s}\n"
						  "backends: [{name: web, count: 3, capacity: 20, service_time: 5ms}]\n"
						  "load:\n  phases:\n"
						  "    - {rate: 200, duration: 8s, assert: 'errors<1%, p99<1s'}\n"
						  "faults:\n"
						  "  - {at: 2s, action: kill, target: web-1}\n"
						  "  - {at: 3s, action: term, target: web-2}\n"
						  "  - {at: 4s, action: start, target: web-1}\n");
	struct fx_run r;
	fx_veltrix(&r, RUN_TIMEOUT_MS, "scenario", "run", path, NULL);
	if (r.status != 0)
		fail_msg("exit %d\n%s\n%s", r.status, r.out, r.err);
	assert_non_null(strstr(r.out, "agent registration"));
	fx_run_free(&r);
	assert_no_children();
	free(path);
}

static int setup(void **state)
{
	(void)state;
	fx_subreaper();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invalid_files_exit_2),
		cmocka_unit_test(test_usage_errors_exit_2),
		cmocka_unit_test(test_kill_and_drain_pass),
		cmocka_unit_test(test_impossible_slo_exits_1),
		cmocka_unit_test(test_ctrl_c_tears_down),
		cmocka_unit_test(test_broken_stack_is_invalid),
		cmocka_unit_test(test_runner_killed_leaves_nothing),
		cmocka_unit_test(test_agent_registration),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
