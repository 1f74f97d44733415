/* `veltrix demo --quick`: both runs complete in seconds, the side-by-side table is printed with
 * what each number means, the HTML report is well-formed and self-contained, the JSON holds both
 * runs, and the story holds even in the short form: round robin over unequal backends fails
 * requests at three times its comfortable rate, capacity-aware Veltrix does not (or far fewer). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"
#include "fx_scenario.h"

static void test_demo_quick(void **state)
{
	(void)state;
	char *dir = fx_tmpdir("demo");
	char *json_path = fx_path(dir, "demo.json"), *html_path = fx_path(dir, "demo.html");
	struct fx_run r;
	fx_veltrix(&r, 180000, "demo", "--quick", "--quiet", "--json", json_path, "--html", html_path, NULL);
	if (r.status != 0)
		fail_msg("exit %d\n%s\n%s", r.status, r.out, r.err);
	static const char *const rows[] = { "static HAProxy", "Veltrix", "failed requests", "p99 latency",
					    "sustained throughput", "degraded service", "HTML report" };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		if (!strstr(r.out, rows[i]))
			fail_msg("\"%s\" missing from:\n%s", rows[i], r.out);
	assert_non_null(strstr(r.out, html_path));
	char *html = fx_read_file(html_path);
	assert_non_null(html);
	const char *why = fx_html_problem(html);
	if (why)
		fail_msg("HTML report: %s", why);
	free(html);
	json_error_t je;
	json_t *doc = json_load_file(json_path, 0, &je);
	assert_non_null(doc);
	json_t *st = json_object_get(json_object_get(doc, "static"), "totals");
	json_t *ve = json_object_get(json_object_get(doc, "veltrix"), "totals");
	assert_non_null(st);
	assert_non_null(ve);
	double st_err = json_real_value(json_object_get(st, "error_rate"));
	double ve_err = json_real_value(json_object_get(ve, "error_rate"));
	print_message("# static: %.2f%% failed, Veltrix: %.2f%% failed\n", st_err * 100, ve_err * 100);
	assert_true(st_err > 0.05);
	assert_true(ve_err * 4 < st_err);
	assert_string_equal(json_string_value(json_object_get(json_object_get(json_object_get(doc, "static"), "scenario"), "stack")),
			    "static");
	json_decref(doc);
	char who[256] = "";
	if (!fx_no_children(10000, who, sizeof(who)))
		fail_msg("a process outlived the demo: %s", who);
	fx_run_free(&r);
	free(json_path);
	free(html_path);
	free(dir);
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
		cmocka_unit_test(test_demo_quick),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
