/* Desired state from registry instances: capacity -> maxconn and relative weights, operator
 * overrides, states, and the default capacity. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "controller/desired.h"

static struct reg_view *view_of(const char *const *keys, const char *const *values, size_t n)
{
	struct etcd_kv *kvs = calloc(n, sizeof(*kvs));
	for (size_t i = 0; i < n; i++) {
		kvs[i].key = (char *)(uintptr_t)keys[i];
		kvs[i].key_len = strlen(keys[i]);
		kvs[i].value = (char *)(uintptr_t)values[i];
		kvs[i].value_len = strlen(values[i]);
		kvs[i].mod_revision = kvs[i].create_revision = (int64_t)i + 2;
	}
	struct reg_view *v = reg_view_new(NULL, NULL, NULL);
	reg_view_load_snapshot(v, kvs, n, (int64_t)n + 2);
	free(kvs);
	return v;
}

static const struct ctl_want *find(const struct ctl_want *w, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(w[i].name, name) == 0)
			return &w[i];
	return NULL;
}

static int halve(void *ud, const char *server, int base)
{
	(void)ud;
	return strcmp(server, "b") == 0 ? base / 2 : base;
}

static void test_capacities_and_states(void **state)
{
	(void)state;
	static const char *const keys[] = { "/veltrix/services/web/a", "/veltrix/services/web/b", "/veltrix/services/web/c",
					    "/veltrix/services/web/d", "/veltrix/services/web/e", "/veltrix/services/web/f" };
	static const char *const vals[] = {
		"{\"address\":\"127.0.0.1\",\"port\":8001,\"capacity\":10}",
		"{\"address\":\"127.0.0.1\",\"port\":8002,\"capacity\":20}",
		"{\"address\":\"::1\",\"port\":8003,\"capacity\":40}",
		"{\"address\":\"127.0.0.1\",\"port\":8004,\"capacity\":400,\"state\":\"down\"}",
		"{\"address\":\"127.0.0.1\",\"port\":8005,\"state\":\"draining\"}",
		"{\"address\":\"127.0.0.1\",\"port\":8006,\"weight\":7}",
	};
	struct reg_view *v = view_of(keys, vals, 6);
	struct ctl_want *w;
	size_t n = ctl_desired(reg_view_find_service(v, "web"), 5, NULL, NULL, &w);
	assert_int_equal(n, 6);
	const struct ctl_want *a = find(w, n, "a"), *b = find(w, n, "b"), *c = find(w, n, "c");
	assert_int_equal(a->weight, 64);
	assert_int_equal(b->weight, 128);
	assert_int_equal(c->weight, 256); /* the down instance with capacity 400 does not set the scale */
	assert_int_equal(a->maxconn, 10);
	assert_int_equal(c->maxconn, 40);
	assert_string_equal(c->addr, "::1");
	assert_int_equal(c->port, 8003);
	assert_int_equal(find(w, n, "d")->state, CTL_REG_DOWN);
	assert_int_equal(find(w, n, "e")->state, CTL_REG_DRAINING);
	assert_int_equal(find(w, n, "e")->maxconn, 5); /* default capacity */
	assert_int_equal(find(w, n, "f")->weight, 7);   /* operator override */
	free(w);
	n = ctl_desired(reg_view_find_service(v, "web"), 5, halve, NULL, &w);
	assert_int_equal(find(w, n, "b")->weight, 64);
	assert_int_equal(find(w, n, "a")->weight, 64);
	free(w);
	n = ctl_desired(NULL, 5, NULL, NULL, &w);
	assert_int_equal(n, 0);
	free(w);
	reg_view_free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_capacities_and_states) };
	return cmocka_run_group_tests_name("ctl_desired", tests, NULL, NULL);
}
