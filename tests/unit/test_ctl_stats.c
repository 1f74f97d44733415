/* The controller's compact `show stat` figures (ctl_stats.c) and its sorted per-server memory
 * (controller.c), from a capture of HAProxy 2.6.12 (tests/fixtures/haproxy/show_stat_web.csv). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "controller/ctl_int.h"

static char *fixture(const char *name, size_t *len)
{
	const char *top = getenv("VX_TOP");
	char *path = xasprintf("%s/tests/fixtures/haproxy/%s", top && *top ? top : ".", name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	char *text = xmalloc(1u << 20);
	*len = fread(text, 1, (1u << 20) - 1, f);
	text[*len] = '\0';
	fclose(f);
	free(path);
	return text;
}

static void test_extract_sorted_servers_of_one_backend(void **state)
{
	(void)state;
	size_t len;
	char *text = fixture("show_stat_web.csv", &len);
	struct hap_stats st;
	assert_int_equal(hap_parse_stat(text, len, &st, NULL), 0);
	struct ctl_stat *v;
	size_t n = ctl_stats_extract(&st, "web", &v);
	assert_int_equal(n, 7); /* servers only: not the frontend or the BACKEND row */
	for (size_t i = 1; i < n; i++)
		assert_true(strcmp(v[i - 1].name, v[i].name) < 0);
	const struct ctl_stat *s1 = ctl_stats_lookup(v, n, "s1"), *dead = ctl_stats_lookup(v, n, "dead");
	assert_non_null(s1);
	assert_int_equal(s1->maxconn, 50);
	assert_false(s1->check_down);
	assert_int_equal(ctl_stats_lookup(v, n, "s2")->maxconn, 0); /* empty slim: unlimited */
	assert_true(dead->check_down);
	assert_false(ctl_stats_lookup(v, n, "dyn1")->check_down); /* "UP 0/3": the first word counts */
	assert_null(ctl_stats_lookup(v, n, "nope"));
	assert_null(ctl_stats_lookup(v, n, "a-name-longer-than-any-server-name-can-be-which-is-sixty-four-bytes-x"));
	free(v);
	n = ctl_stats_extract(&st, "other", &v);
	assert_int_equal(n, 0);
	assert_null(ctl_stats_lookup(v, n, "s1"));
	free(v);
	hap_stats_release(&st);
	free(text);
}

static void test_store_replaces_and_release_forgets(void **state)
{
	(void)state;
	size_t len;
	char *text = fixture("show_stat_web.csv", &len);
	struct hap_stats st;
	assert_int_equal(hap_parse_stat(text, len, &st, NULL), 0);
	struct ctl_service s = { .name = "web" };
	ctl_stats_store(&s, &st, 42);
	ctl_stats_store(&s, &st, 43); /* no leak: the old figures go */
	assert_int_equal(s.n_stats, 7);
	assert_int_equal(s.stats_at_us, 43);
	ctl_stats_release(&s);
	assert_int_equal(s.n_stats, 0);
	assert_int_equal(s.stats_at_us, 0);
	assert_null(s.stats);
	hap_stats_release(&st);
	free(text);
}

static void test_memory_stays_sorted(void **state)
{
	(void)state;
	struct ctl_service s = { .name = "web" };
	const char *names[] = { "m", "c", "x", "a", "q", "c" };
	for (size_t i = 0; i < 6; i++)
		ctl_mem_get(&s, names[i], true)->drain_started_us = (int64_t)i + 1;
	assert_int_equal(s.n_mem, 5);
	for (size_t i = 1; i < s.n_mem; i++)
		assert_true(strcmp(s.mem[i - 1].name, s.mem[i].name) < 0);
	assert_int_equal(ctl_mem_get(&s, "c", false)->drain_started_us, 6); /* found, not duplicated */
	assert_null(ctl_mem_get(&s, "b", false));
	ctl_mem_forget(&s, "m");
	ctl_mem_forget(&s, "absent");
	assert_int_equal(s.n_mem, 4);
	assert_null(ctl_mem_get(&s, "m", false));
	assert_int_equal(ctl_mem_get(&s, "x", false)->drain_started_us, 3);
	free(s.mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_extract_sorted_servers_of_one_backend),
		cmocka_unit_test(test_store_replaces_and_release_forgets),
		cmocka_unit_test(test_memory_stays_sorted),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
