/* Prometheus registry: exposition text for counters, gauges, histograms and escaped labels. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "common/metrics.h"

static void test_render(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	struct metric_family *ops = metrics_counter(m, "veltrix_ops_total", "Runtime API operations.", "kind");
	struct metric_family *stale = metrics_gauge(m, "veltrix_registry_staleness_seconds", "Seconds since etcd answered.", NULL);
	static const double b[] = { 0.001, 0.01, 0.1 };
	struct metric_family *lat = metrics_histogram(m, "veltrix_apply_seconds", "Registry to HAProxy latency.", "service", b, 3);
	const char *add[] = { "add" }, *del[] = { "del" }, *web[] = { "we\"b\n" };
	metric_add(ops, 1, add);
	metric_add(ops, 2, add);
	metric_add(ops, 1, del);
	metric_set(stale, 1.5, NULL);
	metric_observe(lat, 0.0005, web);
	metric_observe(lat, 0.05, web);
	metric_observe(lat, 5, web);
	assert_true(metric_value(ops, add) == 3);
	struct buf out = BUF_INIT(1 << 16);
	assert_int_equal(metrics_render(m, &out), 0);
	assert_non_null(strstr(out.data, "# TYPE veltrix_ops_total counter\n"));
	assert_non_null(strstr(out.data, "veltrix_ops_total{kind=\"add\"} 3\n"));
	assert_non_null(strstr(out.data, "veltrix_ops_total{kind=\"del\"} 1\n"));
	assert_non_null(strstr(out.data, "veltrix_registry_staleness_seconds 1.5\n"));
	assert_non_null(strstr(out.data, "veltrix_apply_seconds_bucket{service=\"we\\\"b\\n\",le=\"0.001\"} 1\n"));
	assert_non_null(strstr(out.data, "veltrix_apply_seconds_bucket{service=\"we\\\"b\\n\",le=\"0.1\"} 2\n"));
	assert_non_null(strstr(out.data, "veltrix_apply_seconds_bucket{service=\"we\\\"b\\n\",le=\"+Inf\"} 3\n"));
	assert_non_null(strstr(out.data, "veltrix_apply_seconds_count{service=\"we\\\"b\\n\"} 3\n"));
	buf_release(&out);
	struct buf tiny = BUF_INIT(10);
	assert_int_equal(metrics_render(m, &tiny), -1);
	buf_release(&tiny);
	metrics_free(m);
}

/* A removed service's series go, in every family with a service label; others stay. */
static void test_forget(void **state)
{
	(void)state;
	struct metrics *m = metrics_new();
	struct metric_family *held = metrics_gauge(m, "held", "Held servers.", "service");
	struct metric_family *ops = metrics_counter(m, "ops_total", "Operations.", "service,kind");
	struct metric_family *kinds = metrics_counter(m, "kinds_total", "By kind only.", "kind");
	static const double b[] = { 0.1 };
	struct metric_family *lat = metrics_histogram(m, "lat", "Latency.", "service", b, 1);
	const char *web[] = { "web" }, *api[] = { "api" }, *web_add[] = { "web", "add" }, *api_add[] = { "api", "add" };
	const char *k_web[] = { "web" };
	metric_set(held, 3, web);
	metric_set(held, 1, api);
	metric_add(ops, 2, web_add);
	metric_add(ops, 5, api_add);
	metric_add(kinds, 7, k_web); /* "web" under another label name is not a service */
	metric_observe(lat, 0.05, web);
	metrics_forget(m, "service", "web");
	struct buf out = BUF_INIT(1 << 16);
	assert_int_equal(metrics_render(m, &out), 0);
	assert_null(strstr(out.data, "service=\"web\""));
	assert_non_null(strstr(out.data, "held{service=\"api\"} 1\n"));
	assert_non_null(strstr(out.data, "ops_total{service=\"api\",kind=\"add\"} 5\n"));
	assert_non_null(strstr(out.data, "kinds_total{kind=\"web\"} 7\n"));
	assert_true(metric_value(held, web) == 0);
	metric_set(held, 2, web); /* a service that comes back starts afresh */
	assert_true(metric_value(held, web) == 2);
	buf_release(&out);
	metrics_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_render), cmocka_unit_test(test_forget) };
	return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}
