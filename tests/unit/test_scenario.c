/* Unit tests for src/scenario without processes: the scenario loader on good and hostile input
 * (positions, key paths, hints), group expansion and scale-out naming, scaling, the built-in demo
 * scenario, docs/scenarios.md covering every key, the run statistics (degraded seconds,
 * sustained throughput), the SVG charts and the HTML report (well-formed, self-contained). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_scenario.h"
#include "scenario/chart.h"
#include "scenario/scenario.h"

static const char *top(void)
{
	const char *t = getenv("VX_TOP");
	return t && *t ? t : ".";
}

static struct scn *load(const char *yaml, struct cfg_diags *d)
{
	cfg_diags_init(d, 0);
	return scn_load_buffer("t.yaml", yaml, strlen(yaml), d);
}

/* Asserts one finding at path, at line:col (0: any), whose message or hint holds text. */
static void expect(const struct cfg_diags *d, const char *path, int line, int col, const char *text)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct cfg_diag *g = &d->items[i];
		if (!g->path || strcmp(g->path, path) != 0)
			continue;
		if (line) {
			assert_int_equal(g->line, line);
			assert_int_equal(g->col, col);
		}
		if (text && !strstr(g->message, text) && !(g->hint && strstr(g->hint, text)))
			fail_msg("%s: \"%s\" not in \"%s\" / \"%s\"", path, text, g->message, g->hint ? g->hint : "");
		return;
	}
	for (size_t i = 0; i < d->n; i++)
		print_message("finding: %s: %s\n", d->items[i].path ? d->items[i].path : "-", d->items[i].message);
	fail_msg("no finding for %s", path);
}

static const char *good_yaml =
	"name: good\n"
	"stack: veltrix\n"
	"backends:\n"
	"  - name: app\n"
	"    capacity: [5, 10, 20]\n"
	"    service_time: exp:10ms\n"
	"    overload: reject\n"
	"  - {name: big, count: 2, capacity: 40, fail_rate: 1%}\n"
	"load:\n"
	"  connections: 100\n"
	"  phases:\n"
	"    - {name: warm, rate: 100, duration: 2s, assert: 'p99<50ms, errors<1%'}\n"
	"    - {rate: 100..400, duration: 3s, assert: [p99<80ms, rps>=100]}\n"
	"faults:\n"
	"  - {at: 4s, action: scale_out, group: app, count: 2}\n"
	"  - {at: 1s, action: kill, target: app-2}\n"
	"  - {at: 4.5s, action: slow, target: app-5, service_time: 50ms}\n"
	"  - {at: 2s, action: rolling_deploy, targets: [big-1, big-2], interval: 500ms}\n"
	"assert: errors<5%\n";

static void test_load_good(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct scn *s = load(good_yaml, &d);
	if (!s)
		cfg_diags_print(&d, stderr);
	assert_non_null(s);
	assert_string_equal(s->name, "good");
	assert_int_equal(s->n_groups, 2);
	assert_int_equal(s->groups[0].count, 3); /* from the capacity list */
	assert_int_equal(s->groups[0].overload, TS_OVERLOAD_REJECT);
	assert_int_equal(s->groups[0].service.kind, TS_DIST_EXP);
	assert_true(fabs(s->groups[1].fail_rate - 0.01) < 1e-9);
	/* 3 + 2 initial, then the scale-out's app-4 and app-5 */
	assert_int_equal(s->n_backends, 7);
	const char *names[] = { "app-1", "app-2", "app-3", "big-1", "big-2", "app-4", "app-5" };
	const int64_t caps[] = { 5, 10, 20, 40, 40, 5, 5 };
	for (size_t i = 0; i < 7; i++) {
		assert_string_equal(s->backends[i].name, names[i]);
		assert_int_equal(s->backends[i].capacity, caps[i]);
		assert_int_equal(s->backends[i].initial, i < 5);
	}
	/* faults sorted by time, the file's order kept for equal times */
	assert_int_equal(s->n_faults, 4);
	assert_int_equal(s->faults[0].action, SCN_KILL);
	assert_int_equal(s->faults[1].action, SCN_ROLLING_DEPLOY);
	assert_int_equal(s->faults[1].interval_us, 500 * USEC_PER_MS);
	assert_int_equal(s->faults[1].n_targets, 2);
	assert_int_equal(s->faults[2].action, SCN_SCALE_OUT);
	assert_int_equal(s->faults[3].action, SCN_SLOW);
	assert_int_equal(s->faults[3].service.a_us, 50 * USEC_PER_MS);
	assert_int_equal(s->faults[0].line, 16);
	/* phases: default names, rates, assertions from a string and from a list */
	assert_string_equal(s->phases[1].name, "phase-2");
	assert_true(s->phases[1].rate.from == 100 && s->phases[1].rate.to == 400);
	assert_int_equal(s->phases[0].slo.n, 2);
	assert_int_equal(s->phases[1].slo.n, 2);
	assert_int_equal(s->assert_slo.n, 1);
	assert_int_equal(scn_duration_us(s), 5 * USEC_PER_SEC);
	/* defaults */
	assert_int_equal(s->service.balance, -1);
	assert_int_equal(s->service.retries, 3);
	assert_int_equal(s->slo.p99_us, 100 * USEC_PER_MS);
	assert_string_equal(s->load.path, "/");
	cfg_diags_release(&d);
	scn_free(s);
}

static void test_scale(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct scn *s = load(good_yaml, &d);
	assert_non_null(s);
	scn_scale(s, 0.5, 0.1);
	assert_int_equal(scn_duration_us(s), 2500 * USEC_PER_MS);
	assert_int_equal(s->faults[0].at_us, 500 * USEC_PER_MS);
	assert_true(fabs(s->phases[1].rate.to - 40) < 1e-9);
	assert_int_equal(s->backends[0].capacity, 1); /* 0.5 rounds up to the floor of 1 */
	assert_int_equal(s->backends[3].capacity, 4);
	assert_true(fabs(s->phases[1].slo.terms[1].limit - 10) < 1e-9); /* rps>=100 follows the load */
	assert_int_equal(s->phases[0].slo.terms[0].limit, 50000);      /* latency does not */
	cfg_diags_release(&d);
	scn_free(s);
}

static void test_demo_scenario_loads(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct scn *s = load(scn_demo_yaml, &d);
	assert_non_null(s);
	assert_int_equal(s->n_backends, 4);
	assert_int_equal(s->groups[0].overload, TS_OVERLOAD_REJECT);
	/* the sizing the demo's text promises: 3000 req/s at the peak, 3x of 4 x the smallest */
	double smallest = 1e9, peak = 0;
	for (size_t i = 0; i < s->n_backends; i++)
		smallest = fmin(smallest, (double)s->backends[i].capacity / ((double)s->groups[0].service.a_us / 1e6));
	for (size_t i = 0; i < s->n_phases; i++)
		peak = fmax(peak, s->phases[i].rate.to);
	assert_true(fabs(peak - 3 * 4 * smallest) < 1);
	assert_true(scn_duration_us(s) <= 70 * USEC_PER_SEC);
	cfg_diags_release(&d);
	scn_free(s);
}

static void test_unknown_keys(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct scn *s = load("backends:\n  - name: web\n    servce_time: 20ms\n"
			     "load:\n  phases:\n    - {rate: 10, duration: 1s}\n  interval: 2s\n"
			     "colour: blue\n", &d);
	assert_null(s);
	expect(&d, "backends[0].servce_time", 3, 5, "did you mean `service_time`?");
	expect(&d, "load.interval", 7, 3, "service.health.interval"); /* it exists, elsewhere */
	expect(&d, "colour", 8, 1, "valid keys here");
	cfg_diags_release(&d);
}

static void test_bad_values(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct scn *s = load("stack: statik\n"
			     "backends:\n  - {name: Web, capacity: 0, service_time: fast, overload: drop, fail_rate: 2}\n"
			     "load:\n  connections: -1\n  timeout: 10\n  path: api\n"
			     "  phases:\n    - {rate: 5..x, duration: 1s, assert: 'p99<'}\n", &d);
	assert_null(s);
	expect(&d, "stack", 1, 8, "did you mean `static`?");
	expect(&d, "backends[0].name", 3, 12, "group name");
	expect(&d, "backends[0].capacity", 3, 27, "1 to 100000");
	expect(&d, "backends[0].service_time", 3, 44, "exp:20ms");
	expect(&d, "backends[0].overload", 3, 60, "queue, reject");
	expect(&d, "backends[0].fail_rate", 3, 77, "0 to 1");
	expect(&d, "load.connections", 5, 16, "1 to 20000");
	expect(&d, "load.timeout", 6, 12, "unit");
	expect(&d, "load.path", 7, 9, "absolute path");
	expect(&d, "load.phases[0].rate", 9, 14, "ramp");
	expect(&d, "load.phases[0].assert", 9, 43, "p99<100ms");
	cfg_diags_release(&d);
}

static void test_structure_errors(void **state)
{
	(void)state;
	struct cfg_diags d;
	assert_null(load("", &d));
	assert_true(d.n_errors == 1 && strstr(d.items[0].message, "empty"));
	cfg_diags_release(&d);
	assert_null(load("- a\n- b\n", &d));
	assert_true(d.n_errors == 1 && strstr(d.items[0].message, "top level must be a mapping"));
	cfg_diags_release(&d);
	assert_null(load("backends: web\nload:\n  phases: []\n", &d));
	expect(&d, "backends", 1, 11, "expected a list");
	expect(&d, "load.phases", 3, 11, "empty");
	cfg_diags_release(&d);
	assert_null(load("backends:\n  - {name: a}\n  - {name: a}\nbackends: []\nload: {phases: [{rate: 1}]}\n", &d));
	expect(&d, "backends[1]", 3, 5, "second group");
	expect(&d, "backends", 4, 1, "duplicate key");
	expect(&d, "load.phases[0].duration", 5, 17, "missing required key");
	cfg_diags_release(&d);
	assert_null(load("backends: [{name: a}]\nload: {phases: [{rate: 1, duration: 1s}]}\nname: &x n\nx: *x\n", &d));
	assert_true(d.n_errors >= 1 && strstr(d.items[0].message, "alias"));
	cfg_diags_release(&d);
	assert_null(load("backends: [{name: a, count: 40}]\nload: {phases: [{rate: 1, duration: 1s}]}\n", &d));
	expect(&d, "backends[0].count", 1, 29, "1 to 32");
	cfg_diags_release(&d);
}

static void test_fault_errors(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct scn *s = load("stack: static\n"
			     "backends: [{name: web, count: 2}]\n"
			     "load: {phases: [{rate: 10, duration: 5s}]}\n"
			     "faults:\n"
			     "  - {at: 1s, action: kil, target: web-1}\n"
			     "  - {at: 1s, action: kill, target: wbe-1}\n"
			     "  - {at: 1s, action: slow, target: web-1}\n"
			     "  - {at: 1s, action: term, target: web-1, fail_rate: 1%}\n"
			     "  - {at: 6s, action: kill, target: web-2}\n"
			     "  - {at: 1s, action: controller_kill}\n"
			     "  - {at: 1s, action: scale_out, group: nope}\n"
			     "  - {at: 1s, action: rolling_deploy, targets: [web-1, web-9]}\n", &d);
	assert_null(s);
	expect(&d, "faults[0].action", 5, 22, "did you mean `kill`?");
	expect(&d, "faults[1].target", 6, 36, "did you mean `web-1`?");
	expect(&d, "faults[2]", 7, 5, "`slow` needs `service_time:`");
	expect(&d, "faults[3].fail_rate", 8, 54, "only to `fail`");
	expect(&d, "faults[4].at", 9, 10, "the load ends at 5s");
	expect(&d, "faults[5].action", 10, 22, "needs the Veltrix stack");
	expect(&d, "faults[6].group", 11, 40, "no backend group named `nope`");
	expect(&d, "faults[7].targets[1]", 12, 55, "no backend named `web-9`");
	cfg_diags_release(&d);
}

static void test_cross_field(void **state)
{
	(void)state;
	struct cfg_diags d;
	assert_null(load("service:\n  health: {interval: 1s, timeout: 1s}\n  lease_ttl: 2500ms\nstack: static\n"
			 "registration: agent\nbackends: [{name: a, capacity: [1, 2], count: 3}]\n"
			 "load: {phases: [{rate: 1, duration: 1s}]}\n", &d));
	expect(&d, "service.health.timeout", 2, 35, "shorter");
	expect(&d, "service.lease_ttl", 3, 14, "whole seconds");
	expect(&d, "registration", 5, 15, "Veltrix stack");
	expect(&d, "backends[0].capacity", 6, 32, "2 capacities for 3 instances");
	cfg_diags_release(&d);
}

static void test_hostile_inputs(void **state)
{
	(void)state;
	struct cfg_diags d;
	char *big = xcalloc(1, SCN_MAX_FILE_BYTES + 2);
	memset(big, '#', SCN_MAX_FILE_BYTES + 1);
	assert_null(load(big, &d));
	assert_true(strstr(d.items[0].message, "larger than the limit") != NULL);
	cfg_diags_release(&d);
	free(big);
	static const char bin[] = "backends: [{name: a}]\nload: x\0yz";
	cfg_diags_init(&d, 0);
	assert_null(scn_load_buffer("t.yaml", bin, sizeof(bin) - 1, &d));
	assert_true(strstr(d.items[0].message, "not a text file") != NULL);
	cfg_diags_release(&d);
	/* deep nesting is bounded by the YAML reader */
	struct buf deep = BUF_INIT(1 << 16);
	for (int i = 0; i < 40; i++)
		buf_puts(&deep, "[");
	assert_null(load(deep.data, &d));
	assert_true(d.n_errors >= 1);
	cfg_diags_release(&d);
	buf_release(&deep);
	/* control characters in a name are refused, and quoted values are cut */
	assert_null(load("name: \"a\\u0001b\"\nbackends: [{name: a}]\nload: {phases: [{rate: 1, duration: 1s}]}\n", &d));
	expect(&d, "name", 1, 8, "control characters");
	cfg_diags_release(&d);
}

static void test_fixture_files(void **state)
{
	(void)state;
	/* every broken fixture is refused with a position, the good examples load */
	static const char *const broken[] = { "unknown-key", "bad-duration", "bad-target", "wrong-param", "late-fault",
					      "bad-assert", "yaml-syntax", "static-etcd", "missing-load", "capacities" };
	for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++) {
		char *path = xasprintf("%s/tests/fixtures/scenario/%s.yaml", top(), broken[i]);
		struct cfg_diags d;
		cfg_diags_init(&d, 0);
		assert_null(scn_load(path, &d));
		assert_true(d.n_errors >= 1);
		assert_true(d.items[0].line > 0);
		cfg_diags_release(&d);
		free(path);
	}
}

static void test_docs_cover_every_key(void **state)
{
	(void)state;
	char *path = xasprintf("%s/docs/scenarios.md", top());
	char *doc = fx_read_file(path);
	assert_non_null(doc);
	for (size_t i = 0; i < scn_schema_count(); i++) {
		struct scn_key_doc k;
		scn_schema_doc(i, &k);
		char *needle = xasprintf("`%s`", k.path);
		if (!strstr(doc, needle))
			fail_msg("docs/scenarios.md does not document %s", k.path);
		assert_non_null(k.doc);
		free(needle);
	}
	for (int a = 0; a < SCN_ACTION_COUNT; a++) {
		char *needle = xasprintf("`%s`", scn_action_name((enum scn_action)a));
		if (!strstr(doc, needle))
			fail_msg("docs/scenarios.md does not document the fault %s", scn_action_name((enum scn_action)a));
		free(needle);
	}
	free(doc);
	free(path);
}

/* ---- statistics ---- */

static struct scn_result *synthetic(const struct scn *s, size_t n)
{
	struct scn_result *r = xcalloc(1, sizeof(*r));
	r->scn = s;
	r->n_seconds = n;
	r->seconds = xcalloc(n, sizeof(*r->seconds));
	r->n_backends = s->n_backends;
	for (size_t k = 0; k < n; k++) {
		struct scn_second *sec = &r->seconds[k];
		sec->counts.responses = 100 + 10 * k; /* a rising rate */
		sec->covered_s = 1;
		sec->counts.status[2] = sec->counts.responses;
		sec->has_latency = true;
		sec->latency.p99_us = 20 * USEC_PER_MS;
		for (size_t b = 0; b < r->n_backends; b++)
			sec->served[b] = (double)(b + 1) * 10;
	}
	return r;
}

static void test_degraded_and_sustained(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct scn *s = load("backends: [{name: a, count: 2}]\nload: {phases: [{rate: 1, duration: 10s}]}\n"
			     "slo: {p99: 50ms, errors: 1%, sustain: 3s}\n", &d);
	assert_non_null(s);
	struct scn_result *r = synthetic(s, 10);
	/* second 4: 2% failed (5xx); second 7: p99 above the SLO */
	r->seconds[4].counts.status[5] = 3;
	r->seconds[4].counts.status[2] -= 3;
	r->seconds[7].latency.p99_us = 60 * USEC_PER_MS;
	assert_false(scn_second_degraded(s, &r->seconds[3]));
	assert_true(scn_second_degraded(s, &r->seconds[4]));
	assert_true(scn_second_degraded(s, &r->seconds[7]));
	struct scn_totals t;
	scn_totals_compute(r, &t);
	assert_int_equal(t.seconds, 10);
	assert_int_equal(t.degraded_s, 2);
	/* healthy runs of 3: 0-2 (min 100), 1-3 (110), 5-6 too short, 8-9 too short */
	assert_true(fabs(t.sustained_rps - 110) < 1e-9);
	/* exactly at the error limit is not degraded */
	r->seconds[4].counts.status[5] = 1;
	r->seconds[4].counts.responses = 100;
	assert_false(scn_second_degraded(s, &r->seconds[4]));
	assert_true(fabs(scn_target_rps(s, 3) - 1) < 1e-9);
	/* a second the load covered only half of counts at its rate */
	r->seconds[2].covered_s = 0.5;
	assert_true(fabs(scn_second_good_rps(&r->seconds[2]) - 240) < 1e-9);
	free(r->seconds);
	free(r);
	cfg_diags_release(&d);
	scn_free(s);
}

/* ---- charts and HTML ---- */

static void check_html(const char *html)
{
	const char *why = fx_html_problem(html);
	if (why)
		fail_msg("HTML: %s", why);
}

static void test_chart_svg(void **state)
{
	(void)state;
	double a[] = { 1, 2, NAN, 4, 1000 }, b[] = { 0.5, 10, 100, 50, 20 };
	struct chart_series se[] = { { "a <&> \"b\"", "#123456", a, 5, 0 }, { "b", "red\" onload=\"x", b, 5, 1 } };
	struct chart_mark m[] = { { 2.5, "kill <web-1>" } };
	struct chart_band bands[] = { { 1, 3 } };
	struct chart c = { .title = "T & <t>", .y_label = "ms", .series = se, .n_series = 2, .marks = m, .n_marks = 1,
			   .bands = bands, .n_bands = 1 };
	struct buf out = BUF_INIT(1 << 20);
	assert_int_equal(chart_svg(&out, &c), 0);
	check_html(out.data);
	assert_non_null(strstr(out.data, "T &amp; &lt;t&gt;"));
	assert_non_null(strstr(out.data, "a &lt;&amp;&gt; &quot;b&quot;"));
	assert_non_null(strstr(out.data, "kill &lt;web-1&gt;"));
	assert_null(strstr(out.data, "onload")); /* a color that is not a color is replaced */
	assert_non_null(strstr(out.data, "class=\"b\""));
	/* NaN splits the first series in two polylines; the dashed one is whole */
	size_t polylines = 0;
	for (const char *p = strstr(out.data, "<polyline"); p; p = strstr(p + 1, "<polyline"))
		polylines++;
	assert_int_equal(polylines, 3);
	assert_null(strstr(out.data, "e+")); /* tick labels never in exponent form */
	assert_non_null(strstr(out.data, ">1.5k<")); /* 1000 x 1.05 / 4 rounds up to steps of 500 */
	/* log axis: decades */
	buf_reset(&out);
	c.log_y = 1;
	assert_int_equal(chart_svg(&out, &c), 0);
	assert_non_null(strstr(out.data, ">100<"));
	assert_non_null(strstr(out.data, ">1k<"));
	/* a full buffer is an error */
	struct buf tiny = BUF_INIT(64);
	assert_int_equal(chart_svg(&tiny, &c), -1);
	buf_release(&tiny);
	buf_release(&out);
}

static void test_html_report(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct scn *s = load("name: \"<b>x</b>\"\ndescription: 'a & b'\nbackends: [{name: a, count: 2}]\n"
			     "load: {phases: [{name: p<1>, rate: 1, duration: 10s, assert: p99<1ms}]}\n"
			     "faults: [{at: 1s, action: kill, target: a-1}]\n", &d);
	assert_non_null(s);
	struct scn_result *r1 = synthetic(s, 10), *r2 = synthetic(s, 10);
	r1->stack = SCN_STACK_STATIC;
	r1->n_faults = r2->n_faults = 1;
	r1->faults[0] = (struct scn_fault_result){ &s->faults[0], 1.0, 1.1, true, "SIGKILL <1>" };
	r2->faults[0] = r1->faults[0];
	r1->n_phases = 1;
	r1->phases[0].phase = &s->phases[0];
	r1->verdict = SCN_VERDICT_INVALID;
	snprintf(r1->invalid_reason, sizeof(r1->invalid_reason), "broke <here>");
	r1->seconds[3].served[1] = NAN;
	scn_totals_compute(r1, &r1->totals);
	scn_totals_compute(r2, &r2->totals);
	const struct scn_result *both[] = { r1, r2 };
	struct buf out = BUF_INIT(16 << 20);
	assert_int_equal(scn_report_html(both, 2, "demo & <co>", &out), 0);
	check_html(out.data);
	assert_non_null(strstr(out.data, "<!DOCTYPE html>"));
	assert_non_null(strstr(out.data, "&lt;b&gt;x&lt;/b&gt;"));
	assert_non_null(strstr(out.data, "broke &lt;here&gt;"));
	assert_non_null(strstr(out.data, "static HAProxy"));
	size_t svgs = 0;
	for (const char *p = strstr(out.data, "<svg"); p; p = strstr(p + 1, "<svg"))
		svgs++;
	assert_int_equal(svgs, 3 + 2 * 4); /* overlays, then four charts per run */
	char *json = scn_report_json(r2);
	assert_non_null(strstr(json, "\"sustained_rps\""));
	free(json);
	free(r1->seconds);
	free(r2->seconds);
	free(r1);
	free(r2);
	buf_release(&out);
	cfg_diags_release(&d);
	scn_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_good),
		cmocka_unit_test(test_scale),
		cmocka_unit_test(test_demo_scenario_loads),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_structure_errors),
		cmocka_unit_test(test_fault_errors),
		cmocka_unit_test(test_cross_field),
		cmocka_unit_test(test_hostile_inputs),
		cmocka_unit_test(test_fixture_files),
		cmocka_unit_test(test_docs_cover_every_key),
		cmocka_unit_test(test_degraded_and_sustained),
		cmocka_unit_test(test_chart_svg),
		cmocka_unit_test(test_html_report),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
