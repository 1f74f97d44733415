/* `veltrix check` as a user runs it: the real binary on the example, on every broken file in
 * tests/fixtures/config/ (each lists its expected findings in `# expect:` comments at its end),
 * on the port-exhaustion case with this machine's port range, and on files that are not
 * configurations at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/parse.h"
#include "fx.h"

#define RUN_MS 30000

static const char *top(void)
{
	const char *t = getenv("VX_TOP");
	return t && *t ? t : ".";
}

static const char *str(const char *s)
{
	return s ? s : "";
}

static size_t count_lines_with(const char *text, const char *needle)
{
	size_t n = 0;
	for (const char *p = str(text); (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return n;
}

static void test_example_is_clean(void **state)
{
	(void)state;
	char *path = xasprintf("%s/examples/veltrix.yaml", top());
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "check", "-c", path, NULL);
	assert_int_equal(r.status, 0);
	char *want = xasprintf("%s: ok (0 errors, 0 warnings)\n", path);
	assert_string_equal(str(r.out), want);
	assert_string_equal(str(r.err), "");
	fx_run_free(&r);
	free(want);
	free(path);
}

/* ---- fixtures ---- */

struct expectation {
	char sev[256];
	int line, col;
	char path[256];
};

static int parse_expect(const char *line, struct expectation *e)
{
	/* "# expect: error 9:17 services[0].expect.peak_rps" */
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", line + strlen("# expect: "));
	buf[strcspn(buf, "\n")] = '\0';
	char *sp1 = strchr(buf, ' '), *colon, *sp2;
	if (!sp1 || !(colon = strchr(sp1, ':')) || !(sp2 = strchr(colon, ' ')))
		return -1;
	*sp1 = *colon = *sp2 = '\0';
	int64_t l, c;
	if (parse_i64(sp1 + 1, 0, 100000, &l) || parse_i64(colon + 1, 0, 100000, &c))
		return -1;
	snprintf(e->sev, sizeof(e->sev), "%s", buf);
	e->line = (int)l;
	e->col = (int)c;
	snprintf(e->path, sizeof(e->path), "%s", sp2 + 1);
	return 0;
}

/* The line a finding prints as, up to its message. */
static char *finding_prefix(const char *file, const struct expectation *e)
{
	char *pos = e->line ? xasprintf("%s:%d:%d: ", file, e->line, e->col) : xasprintf("%s: ", file);
	char *s = strcmp(e->path, "-") == 0 ? xasprintf("%s%s: ", pos, e->sev)
					    : xasprintf("%s%s: %s: ", pos, e->sev, e->path);
	free(pos);
	return s;
}

static void check_fixture(const char *file)
{
	char *text = fx_read_file(file);
	assert_non_null(text);
	struct expectation ex[64];
	size_t n = 0, errors = 0, warnings = 0;
	int64_t exit_code = -1;
	for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		if (strncmp(line, "# expect: ", 10) == 0 && n < 64) {
			if (parse_expect(line, &ex[n]) != 0)
				fail_msg("%s: bad expectation line", file);
			errors += strcmp(ex[n].sev, "error") == 0;
			warnings += strcmp(ex[n].sev, "warning") == 0;
			n++;
		} else if (strncmp(line, "# exit: ", 8) == 0) {
			assert_int_equal(parse_i64_n(line + 8, strcspn(line + 8, "\n"), 0, 3, &exit_code), 0);
		}
	}
	if (exit_code < 0 || n == 0)
		fail_msg("%s: no `# exit:` or `# expect:` lines", file);
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "check", "-c", file, NULL);
	if (r.status != exit_code)
		fail_msg("%s: exit %d, expected %d\n%s", file, r.status, (int)exit_code, str(r.out));
	for (size_t i = 0; i < n; i++) {
		char *prefix = finding_prefix(file, &ex[i]);
		char *at_line_start = xasprintf("\n%s", prefix);
		char *out_nl = xasprintf("\n%s", str(r.out));
		if (!strstr(out_nl, at_line_start))
			fail_msg("%s: missing finding\n  %s\nin:\n%s", file, prefix, str(r.out));
		free(out_nl);
		free(at_line_start);
		free(prefix);
	}
	/* nothing unexpected: exact error count; exact warnings too when the lint (whose warnings
	 * depend on the machine) did not run */
	assert_int_equal(count_lines_with(r.out, ": error: "), errors);
	if (exit_code == 2)
		assert_int_equal(count_lines_with(r.out, ": warning: "), warnings);
	assert_string_equal(str(r.err), "");
	fx_run_free(&r);
	free(text);
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int yaml_only(const struct dirent *e)
{
	size_t n = strlen(e->d_name);
	return n > 5 && strcmp(e->d_name + n - 5, ".yaml") == 0;
}

static void test_fixtures_report_expected_findings(void **state)
{
	(void)state;
	char *dir = xasprintf("%s/tests/fixtures/config", top());
	struct dirent **list;
	int n = scandir(dir, &list, yaml_only, by_name);
	assert_true(n >= 15);
	for (int i = 0; i < n; i++) {
		char *file = xasprintf("%s/%s", dir, list[i]->d_name);
		check_fixture(file);
		free(file);
		free(list[i]);
	}
	free(list);
	free(dir);
}

/* ---- the acceptance case: ports / TIME_WAIT, from this machine's range ---- */

static json_t *find_rule(json_t *arr, const char *rule)
{
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		const char *r = json_string_value(json_object_get(v, "rule"));
		if (r && strcmp(r, rule) == 0)
			return v;
	}
	return NULL;
}

static void test_port_exhaustion_arithmetic(void **state)
{
	(void)state;
	char *range = fx_read_file("/proc/sys/net/ipv4/ip_local_port_range");
	assert_non_null(range);
	char *sep = range + strcspn(range, " \t");
	int64_t lo, hi;
	assert_int_equal(parse_i64_n(range, (size_t)(sep - range), 1, 65535, &lo), 0);
	sep += strspn(sep, " \t");
	assert_int_equal(parse_i64_n(sep, strcspn(sep, " \t\n"), lo, 65535, &hi), 0);
	int64_t ports = hi - lo + 1, per_server = ports / 60, need = (20000 * 60 + ports - 1) / ports;
	/* the relation the finding must state: need servers cover 20000/s, need - 1 do not */
	assert_true(need * ports >= 20000 * 60 && (need - 1) * ports < 20000 * 60);

	char *file = xasprintf("%s/tests/fixtures/config/port-exhaustion.yaml", top());
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "check", "-c", file, "--json", NULL);
	assert_int_equal(r.status, 1);
	json_t *arr = json_loads(str(r.out), 0, NULL);
	assert_non_null(arr);
	json_t *f = find_rule(arr, "ephemeral-ports");
	assert_non_null(f);
	assert_string_equal(json_string_value(json_object_get(f, "severity")), "error");
	assert_string_equal(json_string_value(json_object_get(f, "path")), "services[0].expect.peak_rps");
	assert_int_equal(json_integer_value(json_object_get(f, "line")), 9);
	const char *msg = json_string_value(json_object_get(f, "message"));
	const char *hint = json_string_value(json_object_get(f, "hint"));
	char *arith = xasprintf("%lld / 60 = %lld new connections/s per server", (long long)ports, (long long)per_server);
	char *servers = xasprintf("at least %lld backend servers", (long long)need);
	char *range_txt = xasprintf("ip_local_port_range %lld-%lld", (long long)lo, (long long)hi);
	if (!strstr(msg, arith) || !strstr(msg, range_txt) || !strstr(hint, servers) || !strstr(hint, "http_reuse"))
		fail_msg("finding lacks the arithmetic:\n%s\n%s", msg, hint);
	assert_non_null(strstr(msg, "TIME_WAIT"));
	assert_non_null(strstr(str(r.err), "lint failed (1 error"));
	free(range_txt);
	free(servers);
	free(arith);
	json_decref(arr);
	fx_run_free(&r);
	free(file);
	free(range);
}

/* ---- JSON shape, files that are not configurations, usage ---- */

static void test_json_shape(void **state)
{
	(void)state;
	char *file = xasprintf("%s/tests/fixtures/config/health.yaml", top());
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "check", "--json", "-c", file, NULL);
	assert_int_equal(r.status, 2);
	json_t *arr = json_loads(str(r.out), 0, NULL);
	assert_true(json_is_array(arr));
	assert_int_equal(json_array_size(arr), 4);
	size_t i;
	json_t *v;
	json_array_foreach(arr, i, v) {
		assert_int_equal(json_object_size(v), 8);
		assert_true(json_is_string(json_object_get(v, "severity")));
		assert_string_equal(json_string_value(json_object_get(v, "file")), file);
		assert_true(json_integer_value(json_object_get(v, "line")) > 0);
		assert_true(json_integer_value(json_object_get(v, "column")) > 0);
		assert_true(json_is_string(json_object_get(v, "path")));
		assert_true(json_is_string(json_object_get(v, "message")));
		assert_true(json_is_string(json_object_get(v, "hint")));
		assert_true(json_is_null(json_object_get(v, "rule")));
	}
	assert_non_null(strstr(str(r.err), "invalid configuration (3 errors, 1 warning)"));
	json_decref(arr);
	fx_run_free(&r);
	free(file);
}

static void expect_file_refused(const char *path, const char *text)
{
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "check", "-c", path, NULL);
	assert_int_equal(r.status, 2);
	char *want = xasprintf("%s: error: %s", path, text);
	if (!strstr(str(r.out), want))
		fail_msg("expected \"%s\" in:\n%s", want, str(r.out));
	free(want);
	fx_run_free(&r);
}

static void test_not_configurations(void **state)
{
	(void)state;
	char *dir = fx_tmpdir("check");
	char *missing = fx_path(dir, "missing.yaml"), *big = fx_path(dir, "big.yaml"), *bin = fx_path(dir, "bin.yaml");
	int fd = open(big, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 100 * 1024 * 1024), 0);
	close(fd);
	fd = open(bin, O_CREAT | O_WRONLY, 0600);
	assert_int_equal(write(fd, "\x7f" "ELF\x02\x01\x01\0\0\0", 10), 10);
	close(fd);
	expect_file_refused(missing, "cannot open: No such file or directory; pass -c FILE");
	expect_file_refused(dir, "is a directory");
	expect_file_refused(big, "file is larger than the limit of 1048576 bytes");
	char *want = xasprintf("%s:1:8: error: this is not a text file", bin);
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "check", "-c", bin, NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(str(r.out), want));
	fx_run_free(&r);
	free(want);
	free(missing);
	free(big);
	free(bin);
	free(dir);
}

static void test_config_file_resolution(void **state)
{
	(void)state;
	char *dir = fx_tmpdir("resolve");
	char *cfg = fx_path(dir, "veltrix.yaml");
	fx_write_file(cfg, "services: [{name: web, bind: 127.0.0.1:8080}]\n");
	struct fx_run r;
	/* ./veltrix.yaml in the working directory */
	char *script = xasprintf("cd '%s' && exec '%s' check", dir, fx_veltrix_bin());
	const char *argv[] = { "sh", "-c", script, NULL };
	unsetenv("VELTRIX_CONFIG");
	fx_run(&r, RUN_MS, argv);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(str(r.out), "veltrix.yaml: ok"));
	fx_run_free(&r);
	/* $VELTRIX_CONFIG, and -c over it */
	setenv("VELTRIX_CONFIG", cfg, 1);
	fx_veltrix(&r, RUN_MS, "check", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(str(r.out), cfg));
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "check", "-c", "/nonexistent/v.yaml", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(str(r.out), "/nonexistent/v.yaml: error: cannot open"));
	fx_run_free(&r);
	unsetenv("VELTRIX_CONFIG");
	free(script);
	free(cfg);
	free(dir);
}

static void test_usage(void **state)
{
	(void)state;
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "check", "extra.yaml", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(str(r.err), "unexpected argument 'extra.yaml'"));
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "check", "--jsn", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(str(r.err), "unknown option '--jsn'"));
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "check", "--help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(str(r.out), "Usage: veltrix check [-c FILE] [--json]"));
	assert_non_null(strstr(str(r.out), "--print-schema"));
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "help", NULL);
	assert_non_null(strstr(str(r.out), "check "));
	fx_run_free(&r);
}

static void test_docs_match_schema(void **state)
{
	(void)state;
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "check", "--print-schema", NULL);
	assert_int_equal(r.status, 0);
	char *path = xasprintf("%s/docs/config.md", top());
	char *doc = fx_read_file(path);
	assert_non_null(doc);
	const char *begin = strstr(doc, "<!-- BEGIN GENERATED -->\n"), *end = strstr(doc, "<!-- END GENERATED -->");
	assert_non_null(begin);
	assert_non_null(end);
	begin += strlen("<!-- BEGIN GENERATED -->\n");
	size_t len = (size_t)(end - begin);
	if (len != strlen(str(r.out)) || memcmp(begin, r.out, len) != 0)
		fail_msg("docs/config.md is out of date: run scripts/gen-config-doc.sh");
	free(doc);
	free(path);
	fx_run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example_is_clean),
		cmocka_unit_test(test_fixtures_report_expected_findings),
		cmocka_unit_test(test_port_exhaustion_arithmetic),
		cmocka_unit_test(test_json_shape),
		cmocka_unit_test(test_not_configurations),
		cmocka_unit_test(test_config_file_resolution),
		cmocka_unit_test(test_usage),
		cmocka_unit_test(test_docs_match_schema),
	};
	return cmocka_run_group_tests_name("check", tests, NULL, NULL);
}
