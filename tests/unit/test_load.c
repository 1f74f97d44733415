/* Unit tests for the pure parts of src/load: the histogram against exact percentiles, the
 * ramp and SLO grammars, the open-loop schedule, the URL and request, the verdict and JSON, and
 * the test server's distributions and control query. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "load/hist.h"
#include "load/load.h"
#include "load/load_int.h"
#include "load/testserver.h"
#include "load/ts_int.h"

static uint64_t rng_state = 0x853c49e6748fea9bull;

static double rnd(void)
{
	return ts_rand01(&rng_state);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest rank, the definition hist_percentile promises. */
static int64_t exact_pct(const int64_t *sorted, size_t n, double p)
{
	double want = p / 100.0 * (double)n;
	size_t rank = (size_t)want;
	if ((double)rank < want || rank == 0)
		rank++;
	return sorted[rank - 1];
}

static void check_accuracy(int64_t *v, size_t n, const char *name)
{
	struct hist *h = calloc(1, sizeof(*h));
	for (size_t i = 0; i < n; i++)
		hist_record(h, v[i]);
	qsort(v, n, sizeof(*v), cmp_i64);
	static const double ps[] = { 1, 10, 50, 90, 99, 99.9, 99.99 };
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
		int64_t want = exact_pct(v, n, ps[i]), got = hist_percentile(h, ps[i]);
		double err = fabs((double)(got - want));
		if (err > 0.01 * (double)want + 1)
			fail_msg("%s p%g: got %lld want %lld", name, ps[i], (long long)got, (long long)want);
	}
	assert_int_equal(hist_percentile(h, 100), v[n - 1]);
	assert_int_equal(h->min_us, v[0]);
	assert_int_equal(h->total, n);
	free(h);
}

static void test_hist_accuracy(void **state)
{
	(void)state;
	size_t n = 200000;
	int64_t *v = malloc(n * sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = 1 + (int64_t)(rnd() * 100000);
	check_accuracy(v, n, "uniform");
	for (size_t i = 0; i < n; i++)
		v[i] = (int64_t)(-5000.0 * log(1 - rnd()));
	check_accuracy(v, n, "exponential");
	for (size_t i = 0; i < n; i++) /* 90% near 1 ms, 10% near 500 ms */
		v[i] = rnd() < 0.9 ? 900 + (int64_t)(rnd() * 200) : 450000 + (int64_t)(rnd() * 100000);
	check_accuracy(v, n, "bimodal");
	for (size_t i = 0; i < n; i++) /* log-uniform over the whole range, 1 us to 1 h */
		v[i] = (int64_t)exp(rnd() * log(3600e6));
	check_accuracy(v, n, "log-uniform");
	free(v);
}

static void test_hist_geometry_and_edges(void **state)
{
	(void)state;
	for (int b = 0; b + 1 < HIST_BUCKETS; b++) {
		assert_true(hist_bucket_low(b) <= hist_bucket_high(b));
		assert_int_equal(hist_bucket_low(b + 1), hist_bucket_high(b) + 1);
		assert_int_equal(hist_bucket_of(hist_bucket_low(b)), b);
		assert_int_equal(hist_bucket_of(hist_bucket_high(b)), b);
		double width = (double)(hist_bucket_high(b) - hist_bucket_low(b) + 1);
		assert_true(width / (double)hist_bucket_low(b > 0 ? b : 1) <= 1.0 / 128 + 1e-12 || b < HIST_SUB);
	}
	assert_true(hist_bucket_high(HIST_BUCKETS - 1) >= 3600 * INT64_C(1000000));
	struct hist *h = calloc(1, sizeof(*h));
	assert_int_equal(hist_percentile(h, 50), 0);
	hist_record(h, -5); /* clamped to 0 */
	hist_record(h, 3600 * INT64_C(1000000) * 10);
	assert_int_equal(hist_percentile(h, 0), 0);
	assert_int_equal(hist_percentile(h, 100), 3600 * INT64_C(1000000) * 10);
	assert_int_equal(hist_count_above(h, 1000), 1);
	free(h);
}

static void test_hist_merge_equals_single(void **state)
{
	(void)state;
	struct hist *all = calloc(1, sizeof(*all)), *part = calloc(4, sizeof(*part)), *merged = calloc(1, sizeof(*merged));
	for (int i = 0; i < 100000; i++) {
		int64_t v = (int64_t)(-2000.0 * log(1 - rnd()));
		hist_record(all, v);
		hist_record(&part[i % 4], v);
	}
	for (int i = 0; i < 4; i++)
		hist_merge(merged, &part[i]);
	assert_memory_equal(all->counts, merged->counts, sizeof(all->counts));
	assert_int_equal(all->total, merged->total);
	assert_int_equal(all->min_us, merged->min_us);
	assert_int_equal(all->max_us, merged->max_us);
	assert_true(fabs(all->sum_us - merged->sum_us) < 1e-6 * all->sum_us);
	assert_int_equal(hist_percentile(all, 99), hist_percentile(merged, 99));
	free(all);
	free(part);
	free(merged);
}

static void test_ramp_grammar(void **state)
{
	(void)state;
	struct load_phase p[LOAD_MAX_PHASES];
	struct vxerr err;
	assert_int_equal(load_ramp_parse("1000:10s,2000:10s", p, LOAD_MAX_PHASES, &err), 2);
	assert_true(p[0].rps_from == 1000 && p[0].rps_to == 1000 && p[0].duration_us == 10 * USEC_PER_SEC);
	assert_true(p[1].rps_from == 2000);
	assert_int_equal(load_ramp_parse("0..5000:30s", p, LOAD_MAX_PHASES, &err), 1);
	assert_true(p[0].rps_from == 0 && p[0].rps_to == 5000 && p[0].duration_us == 30 * USEC_PER_SEC);
	assert_int_equal(load_ramp_parse("0.5..1.5:1m30s,100:500ms,100..0:1s", p, LOAD_MAX_PHASES, &err), 3);
	assert_true(p[0].rps_from == 0.5 && p[0].rps_to == 1.5 && p[0].duration_us == 90 * USEC_PER_SEC);
	assert_int_equal(load_phases_duration(p, 3), 91500000);
	/* area: 1 * 90 + 100 * 0.5 + 50 * 1 */
	assert_true(fabs(load_phases_area(p, 3, 0, 91500000) - 190) < 1e-6);
	static const char *bad[] = { "", "1000", "1000:", ":10s", "x:10s", "1000:10", "-5:1s", "1..:1s",
				     "..5:1s", "1000:0s", "1000:10s,", ",1000:10s", "1e9:1s", "1000:10s,,5:1s",
				     "5...6:1s", "nan:1s", "1000:25h" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		if (load_ramp_parse(bad[i], p, LOAD_MAX_PHASES, &err) >= 0)
			fail_msg("ramp '%s' was accepted", bad[i]);
		assert_true(err.msg[0] != '\0');
	}
	assert_int_equal(load_ramp_parse("1:1s,1:1s,1:1s", p, 2, &err), -1);
}

static size_t count_due(struct load_sched *s, double until_us, double *last_gap)
{
	size_t n = 0;
	double prev = -1;
	while (!s->done && s->t_us < until_us) {
		n++;
		if (prev >= 0 && last_gap)
			*last_gap = s->t_us - prev;
		prev = s->t_us;
		load_sched_advance(s);
	}
	return n;
}

static void test_schedule(void **state)
{
	(void)state;
	struct load_sched s;
	struct load_phase constant = { 1000, 1000, 2 * USEC_PER_SEC };
	double gap = 0;
	load_sched_init(&s, &constant, 1, 1.0, 0);
	assert_int_equal(count_due(&s, 1e12, &gap), 2000);
	assert_true(fabs(gap - 1000) < 1e-6);
	/* two workers with half the rate each, interleaved, add up to the total */
	struct load_sched a, b;
	load_sched_init(&a, &constant, 1, 0.5, 0);
	load_sched_init(&b, &constant, 1, 0.5, 1000);
	assert_true(fabs(b.t_us - 1000) < 1e-9);
	assert_int_equal(count_due(&a, 1e12, NULL) + count_due(&b, 1e12, NULL), 2000);
	/* a linear ramp: the number due is the area under the rate, and the gaps shrink */
	struct load_phase ramp = { 0, 1000, 10 * USEC_PER_SEC };
	load_sched_init(&s, &ramp, 1, 1.0, 0);
	size_t first_half = count_due(&s, 5e6, NULL);
	size_t total = first_half + count_due(&s, 1e12, &gap);
	assert_true(abs((int)first_half - 1250) <= 1);
	assert_true(abs((int)total - 5000) <= 1);
	assert_true(gap < 1010 && gap > 990);
	/* steps with a pause in between */
	struct load_phase steps[] = { { 100, 100, USEC_PER_SEC }, { 0, 0, USEC_PER_SEC }, { 200, 200, USEC_PER_SEC } };
	load_sched_init(&s, steps, 3, 1.0, 0);
	assert_int_equal(count_due(&s, 1e6, NULL), 100);
	assert_true(fabs(s.t_us - 1e6) < 1e-3); /* the 101st falls due as the first phase ends */
	load_sched_advance(&s);
	assert_true(s.t_us > 2e6); /* nothing during the pause */
	assert_int_equal(count_due(&s, 1e12, NULL), 199);
	/* an override: constant from now, 0 pauses, a rate again resumes at once */
	load_sched_init(&s, &constant, 1, 1.0, 0);
	count_due(&s, 500000, NULL);
	load_sched_set_rate(&s, 4000, 500000);
	assert_true(load_sched_rate_at(&s, 600000) == 4000);
	assert_int_equal(count_due(&s, 1e6, NULL), 2000);
	load_sched_set_rate(&s, 0, 1e6);
	assert_false(s.t_us < 2e6);
	assert_false(s.done);
	load_sched_set_rate(&s, 1000, 1.5e6);
	assert_true(fabs(s.t_us - 1.5e6) < 1e-6);
	assert_int_equal(count_due(&s, 1e12, NULL), 500);
}

static void test_slo_grammar(void **state)
{
	(void)state;
	struct load_slo slo;
	struct vxerr err;
	assert_int_equal(load_slo_parse("p99<50ms, p99.9<=200ms,errors<0.1%,errors<10,rps>=1000,mean<5ms,max<1s", &slo, &err), 0);
	assert_int_equal(slo.n, 7);
	assert_int_equal(slo.terms[0].metric, LOAD_SLO_LATENCY);
	assert_true(slo.terms[0].pct == 99 && slo.terms[0].limit == 50000 && slo.terms[0].op == LOAD_SLO_LT);
	assert_string_equal(slo.terms[1].text, "p99.9<=200ms");
	assert_true(slo.terms[1].pct == 99.9 && slo.terms[1].op == LOAD_SLO_LE);
	assert_int_equal(slo.terms[2].metric, LOAD_SLO_ERROR_RATE);
	assert_true(fabs(slo.terms[2].limit - 0.001) < 1e-12);
	assert_int_equal(slo.terms[3].metric, LOAD_SLO_ERROR_COUNT);
	assert_int_equal(slo.terms[4].metric, LOAD_SLO_RPS);
	assert_int_equal(slo.terms[4].op, LOAD_SLO_GE);
	assert_int_equal(slo.terms[6].metric, LOAD_SLO_LATENCY);
	assert_true(slo.terms[6].pct == 100);
	static const char *bad[] = { "", "p99", "p99<", "<50ms", "p99<50", "q99<5ms", "p101<5ms", "errors<x%",
				     "errors<200%", "rps>fast", "p99<50ms,,rps>1", "p99=5ms", "pnan<1ms",
				     "p99<<5ms", "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.msg[0] = '\0';
		if (load_slo_parse(bad[i], &slo, &err) == 0)
			fail_msg("slo '%s' was accepted", bad[i]);
		assert_true(err.msg[0] != '\0');
	}
}

static struct load_result *fake_result(void)
{
	struct load_result *r = calloc(1, sizeof(*r));
	r->open_loop = true;
	r->connections = 4;
	r->threads = 2;
	r->duration_us = 2 * USEC_PER_SEC;
	r->elapsed_us = r->duration_us + 1000;
	for (int i = 1; i <= 1000; i++)
		hist_record(&r->latency, i * 100); /* 100us .. 100ms */
	hist_merge(&r->latency_uncorrected, &r->latency);
	r->counts.sent = r->counts.responses = 1000;
	r->counts.status[2] = 998;
	r->counts.status[5] = 2;
	r->counts.errors[LOAD_ERR_RESET] = 1;
	r->intended = 1001;
	r->intended_rps = 500.5;
	r->achieved_rps = 500;
	r->nseconds = 2;
	r->timeline = calloc(2, sizeof(*r->timeline));
	for (int s = 0; s < 2; s++) {
		r->timeline[s].second = s;
		r->timeline[s].rps = 500;
		r->timeline[s].target_rps = 500;
		r->timeline[s].counts.responses = 500;
		r->timeline[s].latency.p99_us = 99000;
	}
	return r;
}

static void test_slo_check_and_validity(void **state)
{
	(void)state;
	struct load_result *r = fake_result();
	struct load_slo slo;
	struct load_slo_outcome out[LOAD_SLO_MAX_TERMS];
	assert_int_equal(load_slo_parse("p50<=51ms,p99<100ms,errors<0.5%,errors<=3,rps>=500,max<1s", &slo, NULL), 0);
	assert_true(load_slo_check(&slo, r, out));
	assert_true(out[2].value > 0.0029 && out[2].value < 0.0031); /* 3 of 1001 */
	assert_int_equal(load_slo_parse("p99<50ms", &slo, NULL), 0);
	assert_false(load_slo_check(&slo, r, out));
	assert_true(out[0].value > 98000 && out[0].value < 100500);
	assert_int_equal(load_slo_parse("errors<0.1%", &slo, NULL), 0);
	assert_false(load_slo_check(&slo, r, NULL));
	assert_int_equal(load_slo_parse("rps>500", &slo, NULL), 0);
	assert_false(load_slo_check(&slo, r, NULL));
	char why[512];
	assert_true(load_result_valid(r, why, sizeof(why)));
	r->counts.errors[LOAD_ERR_PORTS] = 7;
	assert_false(load_result_valid(r, why, sizeof(why)));
	assert_non_null(strstr(why, "ephemeral ports exhausted"));
	assert_non_null(strstr(why, "EADDRNOTAVAIL"));
	r->counts.errors[LOAD_ERR_PORTS] = 0;
	r->counts.errors[LOAD_ERR_FDS] = 1;
	assert_false(load_result_valid(r, why, sizeof(why)));
	assert_non_null(strstr(why, "EMFILE"));
	r->counts.errors[LOAD_ERR_FDS] = 0;
	for (int i = 0; i < 20; i++) /* 2% of the sends were 20 ms late with a connection free */
		hist_record(&r->generator_lag, 20000);
	r->generator_saturated = true;
	assert_false(load_result_valid(r, why, sizeof(why)));
	assert_non_null(strstr(why, "saturated"));
	load_result_free(r);
}

static void test_json_shape(void **state)
{
	(void)state;
	struct load_result *r = fake_result();
	struct load_slo slo;
	assert_int_equal(load_slo_parse("p99<50ms", &slo, NULL), 0);
	char *doc = load_result_json(r, "http://127.0.0.1:1/", &slo);
	json_error_t jerr;
	json_t *j = json_loads(doc, 0, &jerr);
	assert_non_null(j);
	static const char *keys[] = { "version", "url", "mode", "connections", "threads", "duration_s", "elapsed_s",
				      "stopped_early", "requests", "rate", "latency_us", "schedule_lag_us",
				      "generator_lag_us", "bytes", "status", "errors", "valid", "invalid_reason",
				      "slo", "timeline" };
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!json_object_get(j, keys[i]))
			fail_msg("missing key %s", keys[i]);
	assert_string_equal(json_string_value(json_object_get(j, "mode")), "open");
	json_t *corr = json_object_get(json_object_get(j, "latency_us"), "corrected");
	assert_true(json_integer_value(json_object_get(corr, "p99")) > 98000);
	assert_non_null(json_object_get(corr, "p99_9"));
	json_t *errs = json_object_get(j, "errors");
	assert_int_equal(json_integer_value(json_object_get(errs, "total")), 3);
	assert_int_equal(json_integer_value(json_object_get(errs, "reset")), 1);
	assert_non_null(json_object_get(errs, "ports_exhausted"));
	assert_false(json_boolean_value(json_object_get(json_object_get(j, "slo"), "passed")));
	json_t *tl = json_object_get(j, "timeline");
	assert_int_equal(json_array_size(tl), 2);
	json_t *s0 = json_array_get(tl, 0);
	assert_true(json_real_value(json_object_get(s0, "requests_per_second")) == 500);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(s0, "latency"), "p99")), 99000);
	assert_non_null(json_object_get(json_object_get(s0, "status"), "5xx"));
	assert_non_null(json_object_get(json_object_get(s0, "errors"), "total"));
	json_decref(j);
	free(doc);
	struct buf text = BUF_INIT(1 << 20);
	load_result_text(r, "http://127.0.0.1:1/", &slo, &text);
	assert_non_null(strstr(text.data, "uncorrected"));
	assert_non_null(strstr(text.data, "FAILED"));
	buf_release(&text);
	load_result_free(r);
}

static void test_url_and_request(void **state)
{
	(void)state;
	struct load_target t;
	struct vxerr err;
	assert_int_equal(load_url_parse("http://127.0.0.1:8080/a/b?c=d", &t, &err), 0);
	assert_string_equal(t.authority, "127.0.0.1:8080");
	assert_string_equal(t.path, "/a/b?c=d");
	assert_int_equal(t.addr.ss_family, AF_INET);
	assert_int_equal(load_url_parse("http://[::1]:9/", &t, &err), 0);
	assert_int_equal(t.addr.ss_family, AF_INET6);
	assert_int_equal(load_url_parse("HTTP://localhost", &t, &err), 0);
	assert_string_equal(t.path, "/");
	static const char *bad[] = { "https://127.0.0.1/", "127.0.0.1:80/", "http://example.com/", "http://127.0.0.1:0/",
				     "http://127.0.0.1:99999/", "http://[::1/", "http://::1:80/", "http://127.0.0.1/a b",
				     "http:///x", "http://127.0.0.1/#frag", "http://[::1]x/" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (load_url_parse(bad[i], &t, &err) == 0)
			fail_msg("url '%s' was accepted", bad[i]);
	assert_int_equal(load_url_parse("http://127.0.0.1:8080/x", &t, &err), 0);
	const char *hdrs[] = { "X-Test: 1", "Host: other" };
	struct load_spec spec = { .method = "POST", .headers = hdrs, .nheaders = 2, .body = "abc", .body_len = 3 };
	char *req;
	size_t len;
	assert_int_equal(load_request_render(&spec, &t, &req, &len, &err), 0);
	assert_string_equal(req, "POST /x HTTP/1.1\r\nUser-Agent: veltrix-load\r\nX-Test: 1\r\nHost: other\r\n"
				 "Content-Length: 3\r\n\r\nabc");
	assert_int_equal(len, strlen(req));
	free(req);
	static const char *bad_headers[] = { "NoColon", "Bad Name: x", "X: a\r\nInjected: 1", "Content-Length: 5",
					     ": empty" };
	for (size_t i = 0; i < sizeof(bad_headers) / sizeof(bad_headers[0]); i++) {
		struct load_spec s2 = { .headers = &bad_headers[i], .nheaders = 1 };
		if (load_request_render(&s2, &t, &req, &len, &err) == 0)
			fail_msg("header '%s' was accepted", bad_headers[i]);
	}
	struct load_spec s3 = { .method = "GE T" };
	assert_int_equal(load_request_render(&s3, &t, &req, &len, &err), -1);
}

static void test_ts_dist_and_query(void **state)
{
	(void)state;
	struct ts_dist d;
	struct vxerr err;
	char text[64];
	assert_int_equal(ts_dist_parse("5ms", &d, &err), 0);
	assert_int_equal(d.kind, TS_DIST_FIXED);
	assert_int_equal(ts_dist_sample(&d, &rng_state), 5000);
	assert_int_equal(ts_dist_parse("uniform:2ms-8ms", &d, &err), 0);
	ts_dist_format(&d, text, sizeof(text));
	assert_string_equal(text, "uniform:2ms-8ms");
	double sum = 0;
	for (int i = 0; i < 100000; i++) {
		int64_t v = ts_dist_sample(&d, &rng_state);
		assert_true(v >= 2000 && v <= 8000);
		sum += (double)v;
	}
	assert_true(fabs(sum / 100000 - 5000) < 50);
	assert_int_equal(ts_dist_parse("exp:5ms", &d, &err), 0);
	sum = 0;
	for (int i = 0; i < 100000; i++)
		sum += (double)ts_dist_sample(&d, &rng_state);
	assert_true(fabs(sum / 100000 - 5000) < 150);
	static const char *bad[] = { "", "5", "exp:", "exp:x", "uniform:8ms-2ms", "uniform:2ms", "normal:5ms", "-5ms", "2h" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (ts_dist_parse(bad[i], &d, &err) == 0)
			fail_msg("service time '%s' was accepted", bad[i]);
	struct ts_change ch;
	const char *q = "service_time=exp:200ms&fail_rate=0.25&capacity=8";
	assert_int_equal(ts_query_parse(q, strlen(q), &ch, &err), 0);
	assert_true(ch.has_service && ch.service.kind == TS_DIST_EXP && ch.service.a_us == 200000);
	assert_true(ch.fail_rate == 0.25 && ch.capacity == 8);
	q = "fail_rate=0";
	assert_int_equal(ts_query_parse(q, strlen(q), &ch, &err), 0);
	assert_false(ch.has_service);
	assert_true(ch.fail_rate == 0 && ch.capacity == 0);
	static const char *badq[] = { "", "x=1", "fail_rate=2", "fail_rate=0.1&fail_rate=0.2", "capacity=0",
				      "service_time=%35ms", "service_time", "=5", "service_time=5ms&", "capacity=1x" };
	for (size_t i = 0; i < sizeof(badq) / sizeof(badq[0]); i++)
		if (ts_query_parse(badq[i], strlen(badq[i]), &ch, &err) == 0)
			fail_msg("query '%s' was accepted", badq[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hist_accuracy),
		cmocka_unit_test(test_hist_geometry_and_edges),
		cmocka_unit_test(test_hist_merge_equals_single),
		cmocka_unit_test(test_ramp_grammar),
		cmocka_unit_test(test_schedule),
		cmocka_unit_test(test_slo_grammar),
		cmocka_unit_test(test_slo_check_and_validity),
		cmocka_unit_test(test_json_shape),
		cmocka_unit_test(test_url_and_request),
		cmocka_unit_test(test_ts_dist_and_query),
	};
	return cmocka_run_group_tests_name("load", tests, NULL, NULL);
}
