/* `veltrix agent` as a user runs it, against a real etcd and a real `veltrix testserver`:
 * bad flags, --once, registration and its value, down and up again, the drain on SIGTERM (and a
 * second signal), a supervised command (SIGTERM only after the drain; exiting on its own), and
 * a hanging check command that is killed while the lease stays alive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/b64.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_agent.h"
#include "fx_load.h"
#include "registry/reg.h"

#define RUN_MS 20000
#define INTERVAL_MS 100
#define RISE 2
#define FALL 2

static struct fx_etcd etcd;

static int setup(void **state)
{
	(void)state;
	fx_etcd_start(&etcd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_etcd_free(&etcd);
	return 0;
}

static char *key_for(const char *service, int port)
{
	return xasprintf("/veltrix/services/%s/127.0.0.1:%d", service, port);
}

/* The flags every agent here shares, then extra (NULL-terminated), into argv[cap]. */
static void agent_args(const char **argv, size_t cap, const char *service, const char *port, const char *const *extra)
{
	const char *base[] = { "--service", service, "--port", port, "--interval", "100ms", "--timeout", "100ms",
			       "--rise", "2", "--fall", "2", "--ttl", "2s", "--etcd", etcd.url, NULL };
	size_t n = 0;
	for (const char *const *p = base; *p && n < cap - 1; p++)
		argv[n++] = *p;
	for (const char *const *p = extra; p && *p && n < cap - 1; p++)
		argv[n++] = *p;
	argv[n] = NULL;
}

static void start_agent(struct fx_agent *a, const char *service, int port, const char *const *extra)
{
	char p[16];
	const char *argv[48];
	snprintf(p, sizeof(p), "%d", port);
	agent_args(argv, 48, service, p, extra);
	fx_agent_start(a, argv);
}

static void expect_state(const struct fx_agent *a, const char *key, const char *state, int timeout_ms)
{
	if (fx_key_wait(etcd.url, key, state, timeout_ms) < 0) {
		fx_agent_dump(a);
		fail_msg("%s: state %s not seen within %d ms (now %s)", key, state ? state : "(absent)", timeout_ms,
			 fx_key_state(etcd.url, key) ? fx_key_state(etcd.url, key) : "(absent)");
	}
}

/* ---- flags ---- */

static void test_bad_flags_exit_2(void **state)
{
	(void)state;
	static const struct {
		const char *args[10];
		const char *why;
	} rows[] = {
		{ { "--port", "8080" }, "--service NAME is required" },
		{ { "--service", "web" }, "--port PORT is required" },
		{ { "--service", "Web", "--port", "80" }, "--service 'Web'" },
		{ { "--service", "web", "--port", "0" }, "--port '0'" },
		{ { "--service", "web", "--port", "http" }, "--port 'http'" },
		{ { "--service", "web", "--port", "80", "--check", "udp" }, "unknown check 'udp'" },
		{ { "--service", "web", "--port", "80", "--check", "http:healthz" }, "must start with '/'" },
		{ { "--service", "web", "--port", "80", "--interval", "1x" }, "--interval '1x'" },
		{ { "--service", "web", "--port", "80", "--interval", "1s", "--timeout", "2s" }, "must not exceed --interval" },
		{ { "--service", "web", "--port", "80", "--ttl", "1s" }, "--ttl must be whole seconds, at least 2s" },
		{ { "--service", "web", "--port", "80", "--ttl", "2500ms" }, "--ttl must be whole seconds" },
		{ { "--service", "web", "--port", "80", "--capacity", "0" }, "--capacity '0'" },
		{ { "--service", "web", "--port", "80", "--rise", "0" }, "--rise '0'" },
		{ { "--service", "web", "--port", "80", "--drain-timeout", "-1s" }, "--drain-timeout '-1s'" },
		{ { "--service", "web", "--port", "80", "--address", "web.local" }, "not an IPv4 or IPv6 literal" },
		{ { "--service", "web", "--port", "80", "--instance", "a b" }, "--instance 'a b'" },
		{ { "--service", "web", "--port", "80", "--bogus" }, "unknown option '--bogus'" },
		{ { "--service", "web", "--port", "80", "--" }, "'--' must be followed by the command" },
		{ { "--service", "web", "--port", "80", "extra" }, "unexpected argument 'extra'" },
		{ { "--once", "--port", "80", "--", "true" }, "--once runs only the check" },
		{ { "--service", "web", "--port", "80" }, "no etcd endpoint" },
		{ { "--service", "web", "--port", "80", "--etcd", "ftp://x" }, "not an http:// or https:// URL" },
		{ { "--service", "web", "--port", "80", "--address", "0.0.0.0", "--etcd", "http://127.0.0.1:9" }, "address" },
		{ { "-c", "/nonexistent/veltrix.yaml", "--service", "web", "--port", "80" }, "/nonexistent/veltrix.yaml" },
	};
	char *dir = fx_tmpdir("agentflags");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *argv[16] = { fx_veltrix_bin(), "agent" };
		size_t n = 2;
		for (size_t j = 0; rows[i].args[j]; j++)
			argv[n++] = rows[i].args[j];
		argv[n] = NULL;
		char *cwd = getcwd(NULL, 0);
		assert_int_equal(chdir(dir), 0); /* no ./veltrix.yaml here */
		struct fx_run r;
		fx_run(&r, RUN_MS, argv);
		assert_int_equal(chdir(cwd), 0);
		free(cwd);
		if (r.status != 2 || !r.err || !strstr(r.err, rows[i].why))
			fail_msg("row %zu: exit %d, stderr '%s' lacks '%s'", i, r.status, r.err ? r.err : "", rows[i].why);
		fx_run_free(&r);
	}
	free(dir);
}

/* ---- --once ---- */

static void test_once(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	char port[16], free_port[16];
	snprintf(port, sizeof(port), "%d", ts.port);
	snprintf(free_port, sizeof(free_port), "%d", net_free_port());
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "agent", "--once", "--port", port, "--check", "http:/healthz", NULL);
	assert_int_equal(r.status, 0);
	char *want = xasprintf("pass: http GET /healthz on 127.0.0.1:%s: 200 (", port);
	assert_non_null(strstr(r.out, want));
	free(want);
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "agent", "--once", "--port", free_port, "--address", "127.0.0.1", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "fail: tcp connect 127.0.0.1:"));
	assert_non_null(strstr(r.out, "refused"));
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "agent", "--once", "--check", "exec:exit 3", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.out, "fail: exec 'exit 3': exit 3"));
	fx_run_free(&r);
	/* the configuration's health section gives the defaults; a flag overrides them */
	char *dir = fx_tmpdir("agentcfg"), *cfg = fx_path(dir, "veltrix.yaml");
	fx_write_file(cfg, "services:\n  - name: web\n    bind: 127.0.0.1:18080\n    health:\n      type: http\n"
			   "      path: /healthz\n      interval: 1s\n      timeout: 500ms\n");
	fx_veltrix(&r, RUN_MS, "agent", "--once", "-c", cfg, "--service", "web", "--port", port, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "http GET /healthz"));
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "agent", "--once", "-c", cfg, "--service", "web", "--port", port, "--check", "tcp", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "pass: tcp connect"));
	fx_run_free(&r);
	free(cfg);
	free(dir);
	fx_testserver_stop(&ts, 5000);
}

/* ---- registration ---- */

static void test_registers_with_contract_value(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	char *key = key_for("reg", ts.port);
	struct fx_agent a;
	const char *extra[] = { "--check", "http:/healthz", "--capacity", "7", "--drain-timeout", "0s", NULL };
	start_agent(&a, "reg", ts.port, extra);
	expect_state(&a, key, "up", RISE * INTERVAL_MS + 1000);
	struct fx_key k;
	fx_key_get(etcd.url, key, &k);
	struct reg_instance in;
	struct reg_fail fail;
	assert_int_equal(reg_value_decode(k.value, strlen(k.value), &in, &fail), 0);
	assert_string_equal(in.address, "127.0.0.1");
	assert_int_equal(in.port, ts.port);
	assert_int_equal(in.capacity, 7);
	assert_int_equal(in.state, REG_STATE_UP);
	assert_false(in.has_weight);
	reg_instance_release(&in);
	assert_true(k.lease != 0);
	int64_t ttl = fx_lease_ttl(etcd.url, k.lease);
	assert_true(ttl >= 1 && ttl <= 2);
	/* writes only on change: a steady instance is not rewritten */
	time_sleep_us(1200 * 1000);
	struct fx_key k2;
	fx_key_get(etcd.url, key, &k2);
	assert_int_equal(k2.mod_revision, k.mod_revision);
	assert_int_equal(k2.lease, k.lease);
	fx_key_release(&k2);
	fx_key_release(&k);
	assert_int_equal(fx_agent_log_count(&a, "msg=\"lease granted\""), 1);
	assert_int_equal(fx_agent_log_count(&a, "msg=registered"), 1);
	fx_agent_free(&a);
	fx_testserver_stop(&ts, 5000);
	free(key);
}

static void test_down_then_up_key_stays(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	char *key = key_for("updown", ts.port);
	struct fx_agent a;
	const char *extra[] = { "--check", "http:/healthz", "--drain-timeout", "0s", NULL };
	start_agent(&a, "updown", ts.port, extra);
	expect_state(&a, key, "up", RISE * INTERVAL_MS + 1000);
	struct fx_key before;
	fx_key_get(etcd.url, key, &before);
	kill(ts.pid, SIGSTOP); /* connects still succeed (the backlog); requests get no answer */
	expect_state(&a, key, "down", FALL * INTERVAL_MS + 1000);
	struct fx_key down;
	fx_key_get(etcd.url, key, &down);
	assert_int_equal(down.lease, before.lease);
	assert_int_equal(down.create_revision, before.create_revision); /* the key stayed */
	kill(ts.pid, SIGCONT);
	expect_state(&a, key, "up", RISE * INTERVAL_MS + 1000);
	assert_int_equal(fx_agent_log_count(&a, "msg=\"instance down\""), 1);
	assert_true(fx_agent_log_count(&a, "cause=\"http GET /healthz on 127.0.0.1") >= 2);
	assert_true(fx_agent_log_count(&a, "no answer within 100ms") >= 1);
	fx_key_release(&before);
	fx_key_release(&down);
	fx_agent_free(&a);
	fx_testserver_stop(&ts, 5000);
	free(key);
}

/* ---- drain ---- */

static void test_sigterm_drains_then_revokes(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	char *key = key_for("drain", ts.port);
	struct fx_agent a;
	const char *extra[] = { "--drain-timeout", "1s", NULL };
	start_agent(&a, "drain", ts.port, extra);
	expect_state(&a, key, "up", RISE * INTERVAL_MS + 1000);
	int64_t t0 = time_mono_us();
	fx_agent_signal(&a, SIGTERM);
	expect_state(&a, key, "draining", 1000);
	expect_state(&a, key, NULL, 3000);
	int64_t gone_ms = (time_mono_us() - t0) / 1000;
	assert_true(gone_ms >= 900); /* it waited the drain timeout before revoking */
	assert_int_equal(fx_agent_wait(&a, 5000), 0);
	assert_int_equal(fx_agent_log_count(&a, "msg=\"lease revoked: the instance key is deleted\""), 1);
	fx_agent_free(&a);
	fx_testserver_stop(&ts, 5000);
	free(key);
}

static void test_second_signal_skips_the_wait(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	char *key = key_for("drain2", ts.port);
	struct fx_agent a;
	const char *extra[] = { "--drain-timeout", "1m", NULL };
	start_agent(&a, "drain2", ts.port, extra);
	expect_state(&a, key, "up", RISE * INTERVAL_MS + 1000);
	fx_agent_signal(&a, SIGINT);
	expect_state(&a, key, "draining", 1000);
	fx_agent_signal(&a, SIGTERM);
	expect_state(&a, key, NULL, 2000);
	assert_int_equal(fx_agent_wait(&a, 5000), 0);
	assert_int_equal(fx_agent_log_count(&a, "second signal: skipping the drain wait"), 1);
	fx_agent_free(&a);
	fx_testserver_stop(&ts, 5000);
	free(key);
}

/* ---- a supervised command ---- */

static char *b64(const char *s)
{
	size_t cap = b64_encoded_size(strlen(s));
	char *out = xmalloc(cap);
	b64_encode(s, strlen(s), out, cap);
	return out;
}

static bool file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static void test_supervised_gets_sigterm_after_drain(void **state)
{
	(void)state;
	int port = net_free_port();
	char *key = key_for("sup", port), *k64 = b64(key);
	char *dir = fx_tmpdir("sup"), *mark = fx_path(dir, "term"), *seen = fx_path(dir, "range");
	/* On SIGTERM the service notes what etcd holds for its key at that moment. */
	char *script = xasprintf("trap 'curl -s -X POST %s/v3/kv/range -d \"{\\\"key\\\":\\\"%s\\\"}\" > %s; "
				 "echo term > %s; kill $pid 2>/dev/null; wait $pid; exit 0' TERM; "
				 "%s testserver --port %d & pid=$!; wait $pid",
				 etcd.url, k64, seen, mark, fx_veltrix_bin(), port);
	struct fx_agent a;
	const char *extra[] = { "--check", "http:/healthz", "--drain-timeout", "1s", "--", "sh", "-c", script, NULL };
	start_agent(&a, "sup", port, extra);
	expect_state(&a, key, "up", 10000);
	fx_agent_signal(&a, SIGTERM);
	expect_state(&a, key, "draining", 1000);
	assert_false(file_exists(mark)); /* draining is visible, the service has not been told yet */
	time_sleep_us(500 * 1000);
	assert_false(file_exists(mark));
	assert_int_equal(fx_agent_wait(&a, 15000), 0); /* the service's own status */
	char *range = fx_read_file(seen);
	assert_non_null(range);
	assert_non_null(strstr(range, "\"header\""));
	assert_null(strstr(range, "\"kvs\"")); /* the key was gone before SIGTERM reached the service */
	assert_true(file_exists(mark));
	assert_null(fx_key_state(etcd.url, key));
	free(range);
	fx_agent_free(&a);
	free(script);
	free(seen);
	free(mark);
	free(dir);
	free(k64);
	free(key);
}

static void test_supervised_exit_revokes_and_passes_status(void **state)
{
	(void)state;
	int port = net_free_port();
	char *key = key_for("supexit", port);
	char *dir = fx_tmpdir("supexit"), *quit = fx_path(dir, "quit");
	char *script = xasprintf("%s testserver --port %d & pid=$!; i=0; "
				 "while [ ! -f %s ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; "
				 "kill $pid; wait $pid; exit 7",
				 fx_veltrix_bin(), port, quit);
	struct fx_agent a;
	const char *extra[] = { "--check", "http:/healthz", "--ttl", "10s", "--", "sh", "-c", script, NULL };
	start_agent(&a, "supexit", port, extra);
	expect_state(&a, key, "up", 10000);
	fx_write_file(quit, "");
	assert_int_equal(fx_agent_wait(&a, 10000), 7);
	/* revoked, not expired: the TTL is 10 s */
	expect_state(&a, key, NULL, 1000);
	assert_int_equal(fx_agent_log_count(&a, "the service exited on its own: deregistering"), 1);
	fx_agent_free(&a);
	free(script);
	free(quit);
	free(dir);
	free(key);
}

static void test_unstartable_command_exits_2(void **state)
{
	(void)state;
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "agent", "--service", "x", "--port", "80", "--address", "127.0.0.1", "--etcd", etcd.url,
		   "--", "/nonexistent/service", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "cannot start the service"));
	fx_run_free(&r);
}

/* ---- a hanging check command ---- */

static int count_procs_with_arg(const char *arg)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)) != NULL) {
		char path[300], buf[256];
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		size_t len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		if (len > 6 && strcmp(buf, "sleep") == 0 && strcmp(buf + 6, arg) == 0)
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

static void test_hanging_check_killed_lease_kept(void **state)
{
	(void)state;
	int port = net_free_port();
	char *key = key_for("hang", port);
	char *dir = fx_tmpdir("hang"), *flag = fx_path(dir, "hang");
	char *check = xasprintf("exec:test -f %s && sleep 29.25; exit 0", flag);
	struct fx_agent a;
	const char *extra[] = { "--address", "127.0.0.1", "--check", check, "--interval", "300ms", "--timeout",
				"200ms", "--drain-timeout", "0s", NULL };
	start_agent(&a, "hang", port, extra);
	expect_state(&a, key, "up", 2 * 300 + 1000);
	struct fx_key up;
	fx_key_get(etcd.url, key, &up);
	fx_write_file(flag, "");
	expect_state(&a, key, "down", 2 * 300 + 1000);
	/* longer than the TTL: the key stays because keepalives never waited for the checks */
	time_sleep_us(3000 * 1000);
	struct fx_key down;
	fx_key_get(etcd.url, key, &down);
	assert_true(down.present);
	assert_int_equal(down.lease, up.lease);
	assert_true(fx_lease_ttl(etcd.url, up.lease) >= 1);
	assert_string_equal(fx_key_state(etcd.url, key), "down");
	assert_true(fx_agent_log_count(&a, "no answer within 200ms, killed") >= 1);
	unlink(flag);
	expect_state(&a, key, "up", 2 * 300 + 1000);
	assert_int_equal(count_procs_with_arg("29.25"), 0); /* every hanging command was killed */
	fx_key_release(&up);
	fx_key_release(&down);
	fx_agent_free(&a);
	free(check);
	free(flag);
	free(dir);
	free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_flags_exit_2),
		cmocka_unit_test(test_once),
		cmocka_unit_test(test_registers_with_contract_value),
		cmocka_unit_test(test_down_then_up_key_stays),
		cmocka_unit_test(test_sigterm_drains_then_revokes),
		cmocka_unit_test(test_second_signal_skips_the_wait),
		cmocka_unit_test(test_supervised_gets_sigterm_after_drain),
		cmocka_unit_test(test_supervised_exit_revokes_and_passes_status),
		cmocka_unit_test(test_unstartable_command_exits_2),
		cmocka_unit_test(test_hanging_check_killed_lease_kept),
	};
	return cmocka_run_group_tests_name("agent", tests, setup, teardown);
}
