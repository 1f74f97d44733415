/* Every scenario under examples/scenarios/ runs, in a short form (--time-scale 0.3: the same
 * rates for a third of the time), and holds its assertions on the Veltrix stack; the scale-out
 * example on the static stack fails them (a hand-written server list cannot use new instances),
 * which is its point. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/strutil.h"
#include "fx.h"
#include "fx_scenario.h"

#define RUN_TIMEOUT_MS 120000

static const char *top(void)
{
	const char *t = getenv("VX_TOP");
	return t && *t ? t : ".";
}

static void run_short(const char *path, const char *stack, int want)
{
	struct fx_run r;
	fx_veltrix(&r, RUN_TIMEOUT_MS, "scenario", "run", "--quiet", "--time-scale", "0.3", "--stack", stack, path, NULL);
	if (r.status != want)
		fail_msg("%s on %s: exit %d, expected %d\n%s\n%s", path, stack, r.status, want, r.out, r.err);
	char who[256] = "";
	if (!fx_no_children(10000, who, sizeof(who)))
		fail_msg("a process outlived the run: %s", who);
	fx_run_free(&r);
}

static void test_every_example_holds(void **state)
{
	(void)state;
	char *dir = xasprintf("%s/examples/scenarios", top());
	DIR *d = opendir(dir);
	assert_non_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL) {
		if (!str_ends_with(e->d_name, ".yaml"))
			continue;
		char *path = xasprintf("%s/%s", dir, e->d_name);
		print_message("# %s\n", e->d_name);
		run_short(path, "veltrix", 0);
		free(path);
		n++;
	}
	closedir(d);
	assert_true(n >= 5);
	free(dir);
}

static void test_scale_out_needs_veltrix(void **state)
{
	(void)state;
	char *path = xasprintf("%s/examples/scenarios/scale-out.yaml", top());
	run_short(path, "static", 1);
	free(path);
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
		cmocka_unit_test(test_every_example_holds),
		cmocka_unit_test(test_scale_out_needs_veltrix),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
