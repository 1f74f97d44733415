/* The load library as the scenario runner uses it, in-process: a test server (the library) in
 * a thread, a run whose per-second callback changes the rate and then stops the run early, and
 * runtime changes to the server. Real sockets on loopback; about four seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "load/load.h"
#include "load/testserver.h"

struct server {
	struct ts_server *ts;
	pthread_t th;
	int rc;
	char url[64];
};

static void *serve(void *arg)
{
	struct server *s = arg;
	struct vxerr err;
	s->rc = ts_server_run(s->ts, &err);
	return NULL;
}

static void server_start(struct server *s, const struct ts_opts *o)
{
	struct vxerr err;
	s->ts = ts_server_new(o, &err);
	if (!s->ts)
		fail_msg("%s", err.msg);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%u/", (unsigned)ts_server_port(s->ts));
	assert_int_equal(pthread_create(&s->th, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	ts_server_stop(s->ts);
	pthread_join(s->th, NULL);
	assert_int_equal(s->rc, 0);
	ts_server_free(s->ts);
}

struct script {
	struct load_run *run;
	int seconds;
	int64_t seen[8];
	double rps[8];
	double target[8];
};

/* Faults and load on one clock: after second 0 the rate doubles, after second 2 the run stops. */
static void on_second(const struct load_second *sec, void *arg)
{
	struct script *sc = arg;
	if (sc->seconds < 8) {
		sc->seen[sc->seconds] = sec->second;
		sc->rps[sc->seconds] = sec->rps;
		sc->target[sc->seconds] = sec->target_rps;
	}
	sc->seconds++;
	if (sec->second == 0)
		load_set_rate(sc->run, 400);
	if (sec->second == 2)
		load_stop(sc->run);
}

static void test_rate_change_and_early_stop(void **state)
{
	(void)state;
	struct ts_opts o = { .capacity = 100, .threads = 2, .max_conns = 1000, .drain_timeout_us = 5 * USEC_PER_SEC };
	struct server srv;
	server_start(&srv, &o);
	struct load_phase phase = { 200, 200, 10 * USEC_PER_SEC };
	struct script sc = { 0 };
	struct load_spec spec = { .url = srv.url, .connections = 8, .threads = 2, .phases = &phase, .nphases = 1,
				  .timeout_us = 2 * USEC_PER_SEC, .grace_us = -1, .on_second = on_second, .arg = &sc };
	struct vxerr err;
	sc.run = load_start(&spec, &err);
	if (!sc.run)
		fail_msg("%s", err.msg);
	int64_t t0 = time_mono_us();
	struct load_result *r = load_wait(sc.run);
	int64_t took = time_mono_us() - t0;
	assert_true(took < 6 * USEC_PER_SEC); /* stopped after about 3 s, not 10 */
	assert_true(r->stopped_early);
	assert_true(sc.seconds >= 3 && sc.seconds <= 4);
	for (int i = 0; i < sc.seconds && i < 8; i++)
		assert_int_equal(sc.seen[i], i);
	if (fabs(sc.rps[0] - 200) > 20 || fabs(sc.rps[1] - 400) > 40 || fabs(sc.rps[2] - 400) > 40)
		fail_msg("per second: %.0f %.0f %.0f req/s", sc.rps[0], sc.rps[1], sc.rps[2]);
	assert_true(sc.target[0] == 200 && sc.target[1] == 400);
	assert_true(r->duration_us > 2900000 && r->duration_us < 3500000);
	assert_int_equal(load_counts_failed(&r->counts), 0);
	assert_int_equal(r->nseconds, (size_t)sc.seconds);
	/* the server saw exactly what the generator got */
	struct ts_stats st;
	ts_server_stats(srv.ts, &st);
	assert_int_equal(st.served, r->counts.responses);
	assert_true(load_result_valid(r, NULL, 0));
	load_result_free(r);
	load_run_free(sc.run);
	server_stop(&srv);
}

static void test_server_runtime_changes(void **state)
{
	(void)state;
	struct ts_opts o = { .capacity = 4, .threads = 1, .max_conns = 100, .drain_timeout_us = 5 * USEC_PER_SEC,
			     .instance = "lib" };
	struct server srv;
	server_start(&srv, &o);
	struct ts_dist slow = { TS_DIST_FIXED, 30000, 0 };
	ts_server_set(srv.ts, &slow, 1.0, -1);
	struct load_spec spec = { .url = srv.url, .connections = 4, .threads = 1, .duration_us = 500 * USEC_PER_MS,
				  .timeout_us = USEC_PER_SEC, .grace_us = -1 };
	struct vxerr err;
	struct load_run *run = load_start(&spec, &err);
	assert_non_null(run);
	struct load_result *r = load_wait(run);
	assert_true(r->counts.responses > 20);
	assert_int_equal(r->counts.status[5], r->counts.responses); /* fail rate 1 */
	assert_true(hist_percentile(&r->latency, 50) >= 29000);
	assert_false(r->open_loop);
	load_result_free(r);
	load_run_free(run);
	/* a run that is freed without waiting stops its threads */
	run = load_start(&spec, &err);
	assert_non_null(run);
	load_run_free(run);
	server_stop(&srv);
}

static void test_bad_specs(void **state)
{
	(void)state;
	struct vxerr err;
	struct load_spec base = { .url = "http://127.0.0.1:9/", .connections = 1, .threads = 1, .duration_us = 1000,
				  .timeout_us = 1000, .grace_us = -1 };
	struct load_spec s = base;
	s.threads = 2;
	assert_null(load_start(&s, &err));
	assert_non_null(strstr(err.msg, "connections"));
	s = base;
	s.url = "http://host.example/";
	assert_null(load_start(&s, &err));
	s = base;
	s.duration_us = 0;
	assert_null(load_start(&s, &err));
	s = base;
	s.timeout_us = 0;
	assert_null(load_start(&s, &err));
	struct load_phase neg = { -1, 5, 1000 };
	s = base;
	s.phases = &neg;
	s.nphases = 1;
	assert_null(load_start(&s, &err));
	struct ts_opts o = { .capacity = 0, .threads = 1, .max_conns = 1 };
	assert_null(ts_server_new(&o, &err));
	o.capacity = 1;
	o.instance = "bad name";
	assert_null(ts_server_new(&o, &err));
	o.instance = NULL;
	o.bind = "example.org";
	assert_null(ts_server_new(&o, &err));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rate_change_and_early_stop),
		cmocka_unit_test(test_server_runtime_changes),
		cmocka_unit_test(test_bad_specs),
	};
	return cmocka_run_group_tests_name("load library", tests, NULL, NULL);
}
