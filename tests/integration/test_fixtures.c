/* The fixtures themselves: a real etcd starts, answers, is stopped; the CLI basics hold. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fx.h"

static void test_etcd_starts_and_answers(void **state)
{
	(void)state;
	struct fx_etcd e = { 0 };
	fx_etcd_start(&e);
	char *body = NULL;
	char *url = NULL;
	assert_true(asprintf(&url, "%s/v3/kv/put", e.url) > 0);
	long st = fx_http("POST", url, "{\"key\":\"Zm9v\",\"value\":\"YmFy\"}", &body);
	assert_int_equal(st, 200);
	assert_non_null(strstr(body, "\"revision\""));
	free(body);
	free(url);
	char *out = NULL;
	const char *const args[] = { "get", "foo", "--print-value-only", NULL };
	assert_int_equal(fx_etcdctl(&e, &out, args), 0);
	assert_string_equal(out, "bar\n");
	free(out);
	pid_t pid = e.pid;
	fx_etcd_free(&e);
	assert_int_equal(kill(pid, 0), -1);
}

static void test_cli_basics(void **state)
{
	(void)state;
	struct fx_run r;
	fx_veltrix(&r, 10000, "--version", NULL);
	assert_int_equal(r.status, 0);
	assert_true(strncmp(r.out, "veltrix ", 8) == 0);
	fx_run_free(&r);
	fx_veltrix(&r, 10000, "no-such-command", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "unknown command 'no-such-command'"));
	assert_non_null(strstr(r.err, "Usage: veltrix"));
	fx_run_free(&r);
	fx_veltrix(&r, 10000, "help", "--nope", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, "unknown option '--nope'"));
	fx_run_free(&r);
	fx_veltrix(&r, 10000, "help", "help", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "Usage: veltrix help"));
	fx_run_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_etcd_starts_and_answers),
		cmocka_unit_test(test_cli_basics),
	};
	return cmocka_run_group_tests_name("fixtures", tests, NULL, NULL);
}
