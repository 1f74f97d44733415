/* `veltrix testserver` as a user sees it: capacity with queueing or rejection, the fail rate,
 * /healthz, the control endpoints, X-Served-By, pipelining, hostile requests and a graceful
 * SIGTERM. Load comes from `veltrix load`; behaviour is asserted with generous bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "fx.h"
#include "fx_load.h"

#define RUN_TIMEOUT_MS 30000

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void test_reject_over_capacity(void **state)
{
	(void)state;
	struct fx_testserver ts;
	const char *ts_args[] = { "--capacity", "2", "--service-time", "50ms", "--overload", "reject", NULL };
	fx_testserver_start(&ts, ts_args);
	struct fx_load l;
	const char *args[] = { "-c", "8", "-t", "1", "-d", "1s", NULL };
	fx_load_run(&l, ts.url, args, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	long long ok = fx_jint(l.json, "status", "2xx", NULL), busy = fx_jint(l.json, "status", "5xx", NULL);
	assert_true(ok >= 10 && ok <= 45); /* at most 2 at a time, 50 ms each: about 40 in a second */
	assert_true(busy > ok);
	json_t *st = fx_testserver_stats(&ts);
	assert_int_equal(fx_jint(st, "rejected", NULL), busy);
	assert_int_equal(fx_jint(st, "served", NULL), ok);
	assert_int_equal(fx_jint(st, "in_flight", NULL), 0);
	json_decref(st);
	fx_load_free(&l);
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
}

static void test_queue_over_capacity(void **state)
{
	(void)state;
	struct fx_testserver ts;
	const char *ts_args[] = { "--capacity", "1", "--service-time", "20ms", "--threads", "2", NULL };
	fx_testserver_start(&ts, ts_args);
	struct fx_load l;
	const char *args[] = { "-c", "4", "-t", "2", "-d", "1s", NULL };
	fx_load_run(&l, ts.url, args, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	double rps = fx_jnum(l.json, "rate", "achieved_rps", NULL);
	long long p50 = fx_jint(l.json, "latency_us", "corrected", "p50", NULL);
	if (rps < 25 || rps > 55 || p50 < 50000)
		fail_msg("capacity 1 x 20 ms with 4 clients: %.1f req/s, p50 %lld us", rps, p50);
	assert_int_equal(fx_jint(l.json, "status", "5xx", NULL), 0);
	json_t *st = fx_testserver_stats(&ts);
	assert_int_equal(fx_jint(st, "rejected", NULL), 0);
	assert_int_equal(fx_jint(st, "queued", NULL), 0);
	json_decref(st);
	fx_load_free(&l);
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
}

static void test_fail_rate_and_healthz(void **state)
{
	(void)state;
	struct fx_testserver ts;
	const char *ts_args[] = { "--fail-rate", "50%", "--instance", "ts-a", NULL };
	fx_testserver_start(&ts, ts_args);
	struct fx_load l;
	const char *args[] = { "-R", "1000", "-c", "4", "-t", "1", "-d", "1s", NULL };
	fx_load_run(&l, ts.url, args, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	long long ok = fx_jint(l.json, "status", "2xx", NULL), failed = fx_jint(l.json, "status", "5xx", NULL);
	assert_true(ok + failed >= 990);
	double share = (double)failed / (double)(ok + failed);
	if (share < 0.4 || share > 0.6)
		fail_msg("fail rate 50%%: %.3f of the answers were 500", share);
	fx_load_free(&l);
	json_t *before = fx_testserver_stats(&ts);
	for (int i = 0; i < 5; i++) {
		char url[96];
		snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", ts.port);
		assert_int_equal(fx_http("GET", url, NULL, NULL), 200);
	}
	json_t *after = fx_testserver_stats(&ts);
	assert_int_equal(fx_jint(after, "healthz", NULL) - fx_jint(before, "healthz", NULL), 5);
	assert_int_equal(fx_jint(after, "served", NULL), fx_jint(before, "served", NULL));
	assert_string_equal(json_string_value(json_object_get(after, "instance")), "ts-a");
	json_decref(before);
	json_decref(after);
	char *resp = fx_raw_http(ts.port, "GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 5000);
	assert_non_null(strstr(resp, "X-Served-By: ts-a\r\n"));
	assert_non_null(strstr(resp, "Connection: close\r\n"));
	free(resp);
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
}

static void test_control_endpoint(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	char url[128];
	char *body = NULL;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_testserver/set?service_time=50ms&fail_rate=0", ts.port);
	assert_int_equal(fx_http("POST", url, "", &body), 200);
	assert_non_null(strstr(body, "\"service_time\":\"50ms\""));
	free(body);
	assert_int_equal(fx_http("GET", url, NULL, NULL), 405);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_testserver/set?service_time=fast", ts.port);
	assert_int_equal(fx_http("POST", url, "", NULL), 400);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_testserver/nope", ts.port);
	assert_int_equal(fx_http("GET", url, NULL, NULL), 404);
	struct fx_load l;
	const char *args[] = { "-c", "1", "-t", "1", "-d", "1s", NULL };
	fx_load_run(&l, ts.url, args, RUN_TIMEOUT_MS);
	assert_int_equal(l.status, 0);
	long long p50 = fx_jint(l.json, "latency_us", "corrected", "p50", NULL);
	assert_true(p50 >= 45000 && p50 < 500000);
	fx_load_free(&l);
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
}

static void test_pipelining_and_hostile_requests(void **state)
{
	(void)state;
	struct fx_testserver ts;
	fx_testserver_start(&ts, NULL);
	char *resp = fx_raw_http(ts.port,
				 "GET /a HTTP/1.1\r\nHost: a\r\n\r\n"
				 "POST /b HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
				 "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
				 5000);
	assert_int_equal(count(resp, "HTTP/1.1 200 OK\r\n"), 3);
	free(resp);
	resp = fx_raw_http(ts.port, "GET / HTTP/1.1\r\nBad Header\r\n\r\n", 5000);
	assert_true(strncmp(resp, "HTTP/1.1 400 ", 13) == 0);
	free(resp);
	resp = fx_raw_http(ts.port, "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 5000);
	assert_true(strncmp(resp, "HTTP/1.1 501 ", 13) == 0);
	free(resp);
	char *big = malloc(40000);
	memset(big, 'a', 39999);
	big[39999] = '\0';
	memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
	resp = fx_raw_http(ts.port, big, 5000);
	assert_true(strncmp(resp, "HTTP/1.1 431 ", 13) == 0);
	free(resp);
	free(big);
	/* the server is still fine */
	char url[96];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", ts.port);
	assert_int_equal(fx_http("GET", url, NULL, NULL), 200);
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
}

struct slow_req {
	int port;
	char *resp;
};

static void *slow_request(void *arg)
{
	struct slow_req *s = arg;
	s->resp = fx_raw_http(s->port, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n", 5000);
	return NULL;
}

static void test_graceful_sigterm(void **state)
{
	(void)state;
	struct fx_testserver ts;
	const char *ts_args[] = { "--service-time", "600ms", NULL };
	fx_testserver_start(&ts, ts_args);
	struct slow_req s = { .port = ts.port };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, slow_request, &s), 0);
	time_sleep_us(200 * USEC_PER_MS);
	int port = ts.port;
	int64_t t0 = time_mono_us();
	assert_int_equal(fx_testserver_stop(&ts, 10000), 0);
	int64_t took = time_mono_us() - t0;
	pthread_join(th, NULL);
	/* the request in flight was answered, with Connection: close, before the exit */
	assert_non_null(s.resp);
	assert_true(strncmp(s.resp, "HTTP/1.1 200 OK\r\n", 17) == 0);
	assert_non_null(strstr(s.resp, "Connection: close\r\n"));
	assert_true(took >= 200 * USEC_PER_MS);
	free(s.resp);
	char *after = fx_raw_http(port, "GET / HTTP/1.1\r\n\r\n", 1000);
	assert_null(after); /* nothing listens any more */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reject_over_capacity),
		cmocka_unit_test(test_queue_over_capacity),
		cmocka_unit_test(test_fail_rate_and_healthz),
		cmocka_unit_test(test_control_endpoint),
		cmocka_unit_test(test_pipelining_and_hostile_requests),
		cmocka_unit_test(test_graceful_sigterm),
	};
	return cmocka_run_group_tests_name("testserver", tests, NULL, NULL);
}
