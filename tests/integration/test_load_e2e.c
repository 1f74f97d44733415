/* `veltrix load` against real servers: the test server, a closed port, a frozen (SIGSTOP)
 * server, a server that resets connections, and ephemeral-port exhaustion in a private network
 * namespace. Every run is a few seconds at most and asserts on behaviour, not on speed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/net.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_load.h"

#define RUN_TIMEOUT_MS 30000

static long long err_count(json_t *j, const char *kind)
{
	return fx_jint(j, "errors", kind, NULL);
}

static long long errors_except(json_t *j, const char *const *kinds)
{
	static const char *all[] = { "refused", "connect_timeout", "reset", "closed", "read_timeout", "bad_response",
				     "never_completed", "not_sent", "ports_exhausted", "fds_exhausted", "other" };
	long long n = 0;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		bool skip = false;
		for (const char *const *k = kinds; *k; k++)
			skip = skip || strcmp(*k, all[i]) == 0;
		if (!skip)
			n += err_count(j, all[i]);
	}
	return n;
}

static void test_open_loop_rate_within_1pct(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	struct fx_load l;
	const char *args[] = { "-R", "1000", "-c", "10", "-t", "2", "-d", "3s", NULL };
	fx_load_run(&l, ts.url, args, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	assert_non_null(l.json);
	double achieved = fx_jnum(l.json, "rate", "achieved_rps", NULL);
	double intended = fx_jnum(l.json, "rate", "intended_rps", NULL);
	assert_true(fabs(intended - 1000) <= 1);
	if (fabs(achieved - 1000) > 10)
		fail_msg("achieved %.1f req/s, not within 1%% of 1000", achieved);
	long long responses = fx_jint(l.json, "requests", "responses", NULL);
	assert_true(responses >= 2970 && responses <= 3030);
	assert_int_equal(fx_jint(l.json, "status", "2xx", NULL), responses);
	assert_int_equal(fx_jint(l.json, "errors", "total", NULL), 0);
	assert_string_equal(json_string_value(json_object_get(l.json, "mode")), "open");
	assert_true(json_is_true(json_object_get(l.json, "valid")));
	/* the timeline: one record per second with the documented fields */
	json_t *tl = json_object_get(l.json, "timeline");
	assert_int_equal(json_array_size(tl), 3);
	long long sum = 0;
	for (size_t i = 0; i < 3; i++) {
		json_t *s = json_array_get(tl, i);
		assert_int_equal(fx_jint(s, "second", NULL), (long long)i);
		assert_true(fx_jnum(s, "requests_per_second", NULL) > 800);
		assert_true(fabs(fx_jnum(s, "target_rps", NULL) - 1000) < 1);
		assert_true(fx_jint(s, "latency", "p99", NULL) > 0);
		assert_true(fx_jint(s, "latency", "p50", NULL) <= fx_jint(s, "latency", "max", NULL));
		assert_int_equal(fx_jint(s, "errors", "total", NULL), 0);
		sum += fx_jint(s, "status", "2xx", NULL);
	}
	assert_int_equal(sum, responses);
	assert_non_null(strstr(l.out, "achieved of"));
	fx_load_free(&l);
	json_t *st = fx_testserver_stats(&ts);
	assert_int_equal(fx_jint(st, "served", NULL), responses);
	json_decref(st);
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
}

static void test_closed_port_is_refused(void **state)
{
	(void)state;
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", net_free_port());
	struct fx_load l;
	const char *args[] = { "-c", "2", "-t", "1", "-d", "1s", NULL };
	fx_load_run(&l, url, args, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	assert_true(err_count(l.json, "refused") > 0);
	const char *only[] = { "refused", NULL };
	assert_int_equal(errors_except(l.json, only), 0);
	assert_int_equal(fx_jint(l.json, "requests", "responses", NULL), 0);
	assert_non_null(strstr(l.out, "connect refused"));
	fx_load_free(&l);
}

static void test_reset_connections(void **state)
{
	(void)state;
	struct fx_resetter r;
	fx_resetter_start(&r);
	struct fx_load l;
	const char *args[] = { "-R", "200", "-c", "4", "-t", "1", "-d", "1s", NULL };
	fx_load_run(&l, r.url, args, RUN_TIMEOUT_MS);
	fx_resetter_stop(&r);
	assert_int_equal(l.status, 0);
	assert_true(err_count(l.json, "reset") > 150);
	const char *only[] = { "reset", NULL };
	assert_int_equal(errors_except(l.json, only), 0);
	assert_true(atomic_load(&r.resets) > 150);
	fx_load_free(&l);
}

static void test_frozen_server(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	kill(ts.pid, SIGSTOP);
	/* A short timeout: every request sent times out while reading. */
	struct fx_load l;
	const char *a1[] = { "-R", "40", "-c", "4", "-t", "1", "-d", "1500ms", "--timeout", "200ms", NULL };
	fx_load_run(&l, ts.url, a1, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	assert_true(err_count(l.json, "read_timeout") >= 10);
	assert_int_equal(fx_jint(l.json, "requests", "responses", NULL), 0);
	const char *k1[] = { "read_timeout", "not_sent", NULL };
	assert_int_equal(errors_except(l.json, k1), 0);
	fx_load_free(&l);
	/* A long timeout: the requests are still waiting when the run ends. */
	const char *a2[] = { "-R", "40", "-c", "4", "-t", "1", "-d", "1s", "--timeout", "20s", NULL };
	fx_load_run(&l, ts.url, a2, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	assert_int_equal(err_count(l.json, "never_completed"), 4);
	assert_true(err_count(l.json, "not_sent") >= 30);
	assert_int_equal(err_count(l.json, "read_timeout"), 0);
	assert_true(fx_jnum(l.json, "errors", "rate", NULL) > 0.99);
	fx_load_free(&l);
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
}

/* The point of the open loop: a 1 s stall shows in the corrected p99, which counts every
 * request that was due during the stall, while the uncorrected one (what a closed-loop tool
 * reports) barely notices it. */
static void test_open_loop_freeze_shows_in_corrected(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	struct fx_load l;
	const char *args[] = { "-R", "200", "-c", "2", "-t", "1", "-d", "3s", "--timeout", "5s", NULL };
	fx_load_spawn(&l, ts.url, args);
	time_sleep_us(1000 * USEC_PER_MS);
	kill(ts.pid, SIGSTOP);
	time_sleep_us(1000 * USEC_PER_MS);
	kill(ts.pid, SIGCONT);
	fx_load_wait(&l, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	long long corr = fx_jint(l.json, "latency_us", "corrected", "p99", NULL);
	long long unc = fx_jint(l.json, "latency_us", "uncorrected", "p99", NULL);
	long long corr_max = fx_jint(l.json, "latency_us", "corrected", "max", NULL);
	if (corr < 500000 || unc > 100000)
		fail_msg("corrected p99 %lld us, uncorrected p99 %lld us", corr, unc);
	assert_true(corr_max >= 800000);
	assert_int_equal(fx_jint(l.json, "errors", "total", NULL), 0);
	assert_true(fx_jint(l.json, "requests", "responses", NULL) >= 590);
	fx_load_free(&l);
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
}

static void test_slo_exit_codes(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	struct fx_load l;
	const char *fail_args[] = { "-R", "100", "-c", "2", "-t", "1", "-d", "1s", "--slo", "p99<1us,errors<1%", NULL };
	fx_load_run(&l, ts.url, fail_args, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 1);
	json_t *slo = json_object_get(l.json, "slo");
	assert_false(json_is_true(json_object_get(slo, "passed")));
	json_t *terms = json_object_get(slo, "terms");
	assert_int_equal(json_array_size(terms), 2);
	assert_false(json_is_true(json_object_get(json_array_get(terms, 0), "passed")));
	assert_true(json_is_true(json_object_get(json_array_get(terms, 1), "passed")));
	assert_non_null(strstr(l.out, "slo           FAILED"));
	fx_load_free(&l);
	const char *ok_args[] = { "-R", "100", "-c", "2", "-t", "1", "-d", "1s", "--slo", "p99<10s,errors<1%,rps>=90", NULL };
	fx_load_run(&l, ts.url, ok_args, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	assert_true(json_is_true(json_object_get(json_object_get(l.json, "slo"), "passed")));
	fx_load_free(&l);
	struct fx_run r;
	fx_veltrix(&r, 10000, "load", "--slo", "p99<50", ts.url, NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "--slo"));
	fx_run_free(&r);
	fx_veltrix(&r, 10000, "load", "--ramp", "100:1s", "-R", "5", ts.url, NULL);
	assert_int_equal(r.status, 2);
	fx_run_free(&r);
	fx_veltrix(&r, 10000, "load", "https://127.0.0.1/", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "only http://"));
	fx_run_free(&r);
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
}

static void test_ramp_and_methods(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	struct fx_load l;
	const char *args[] = { "--ramp", "100:1s,0..400:1s", "-c", "4", "-t", "2", "-m", "POST", "-H", "X-Test: 1",
			       "--body", "hello", NULL };
	fx_load_run(&l, ts.url, args, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	long long n = fx_jint(l.json, "requests", "responses", NULL);
	assert_true(n >= 295 && n <= 305); /* 100 + 200 */
	json_t *tl = json_object_get(l.json, "timeline");
	assert_int_equal(json_array_size(tl), 2);
	assert_true(fabs(fx_jnum(json_array_get(tl, 1), "target_rps", NULL) - 200) < 1);
	assert_true(fx_jint(l.json, "bytes", "written", NULL) > n * 5);
	fx_load_free(&l);
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
}

static bool can_unshare(void)
{
	const char *argv[] = { "unshare", "-n", "true", NULL };
	struct fx_run r;
	fx_run(&r, 5000, argv);
	bool ok = r.status == 0;
	fx_run_free(&r);
	return ok;
}

/* Ephemeral-port exhaustion, for real: in a private network namespace with 10 local ports,
 * a new connection per request runs out of ports at once. The run is invalid: exit 3. */
static void test_eaddrnotavail_in_netns(void **state)
{
	(void)state;
	if (!can_unshare()) {
		fprintf(stderr, "# skipped: cannot create a network namespace (needs root)\n");
		skip();
	}
	char *dir = fx_tmpdir("netns");
	char *json = fx_path(dir, "result.json");
	char *script = NULL;
	const char *bin = fx_veltrix_bin();
	if (asprintf(&script,
		     "ip link set lo up || exit 90\n"
		     "echo '40000 40009' > /proc/sys/net/ipv4/ip_local_port_range || exit 91\n"
		     "%s testserver --port 18080 2>/dev/null & ts=$!\n"
		     "trap 'kill $ts' EXIT\n"
		     "for i in 1 2 3 4 5 6 7 8 9 10; do curl -s -o /dev/null http://127.0.0.1:18080/healthz && break; sleep 0.2; done\n"
		     "%s load --no-keepalive -R 500 -c 20 -t 1 -d 1s --json %s http://127.0.0.1:18080/\n",
		     bin, bin, json) < 0)
		fail();
	const char *argv[] = { "unshare", "-n", "sh", "-c", script, NULL };
	struct fx_run r;
	fx_run(&r, 30000, argv);
	if (r.status != 3)
		fail_msg("exit %d\nstdout:\n%s\nstderr:\n%s", r.status, r.out, r.err);
	assert_non_null(strstr(r.out, "ephemeral ports exhausted"));
	assert_non_null(strstr(r.err, "ephemeral ports exhausted"));
	json_t *j = json_load_file(json, 0, NULL);
	assert_non_null(j);
	assert_true(err_count(j, "ports_exhausted") > 0);
	assert_false(json_is_true(json_object_get(j, "valid")));
	assert_true(fx_jint(j, "status", "2xx", NULL) >= 10);
	json_decref(j);
	fx_run_free(&r);
	free(script);
	free(json);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_loop_rate_within_1pct),
		cmocka_unit_test(test_closed_port_is_refused),
		cmocka_unit_test(test_reset_connections),
		cmocka_unit_test(test_frozen_server),
		cmocka_unit_test(test_open_loop_freeze_shows_in_corrected),
		cmocka_unit_test(test_slo_exit_codes),
		cmocka_unit_test(test_ramp_and_methods),
		cmocka_unit_test(test_eaddrnotavail_in_netns),
	};
	return cmocka_run_group_tests_name("load", tests, NULL, NULL);
}
