/* Agents of one host sharing one lease (`--shared-lease DIR`) against a real etcd: three agents
 * bind their keys to one lease and only one of them grants it; the keeper killed -9 is
 * replaced within a second (the lease lives on, no key goes), and its own key is deleted by the
 * new keeper within about a second, sooner than any TTL; an agent stopped with SIGTERM deletes
 * only its own key; a lease revoked behind their backs is granted anew by the keeper and every
 * agent registers again under it; two agents that do not share keep a lease each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_agent.h"
#include "fx_load.h"

#define AGENTS 3

static struct fx_etcd etcd;
static struct fx_testserver ts[AGENTS];
static char *dir;

static int setup(void **state)
{
	(void)state;
	fx_etcd_start(&etcd);
	for (int i = 0; i < AGENTS; i++)
		fx_testserver_start(&ts[i], NULL);
	dir = fx_tmpdir("shared-lease");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	for (int i = 0; i < AGENTS; i++)
		fx_testserver_stop(&ts[i], 5000);
	fx_etcd_free(&etcd);
	free(dir);
	return 0;
}

static char *key_for(const char *service, int i)
{
	return xasprintf("/veltrix/services/%s/127.0.0.1:%d", service, ts[i].port);
}

/* shared: the lease directory, or NULL for a lease of its own. */
static void start_agent(struct fx_agent *a, const char *service, int i, const char *shared)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", ts[i].port);
	const char *argv[] = { "--service", service, "--port", port, "--interval", "100ms", "--timeout", "100ms",
			       "--rise", "1", "--ttl", "3s", "--drain-timeout", "0s", "--etcd", etcd.url,
			       shared ? "--shared-lease" : NULL, shared, NULL };
	fx_agent_start(a, argv);
}

static int64_t lease_of(const char *key)
{
	struct fx_key k;
	fx_key_get(etcd.url, key, &k);
	int64_t lease = k.present ? k.lease : 0;
	fx_key_release(&k);
	return lease;
}

/* Waits until key is up and bound to a lease other than not; returns the lease (0: timeout). */
static int64_t wait_up(const struct fx_agent *a, const char *key, int64_t not, int timeout_ms)
{
	int64_t end = time_mono_us() + (int64_t)timeout_ms * 1000;
	while (time_mono_us() < end) {
		const char *st = fx_key_state(etcd.url, key);
		int64_t lease = st && strcmp(st, "up") == 0 ? lease_of(key) : 0;
		if (lease && lease != not)
			return lease;
		time_sleep_us(20000);
	}
	fx_agent_dump(a);
	fail_msg("%s not up under a new lease within %d ms", key, timeout_ms);
	return 0;
}

static int keepers(struct fx_agent *a, int n)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += fx_agent_log_count(&a[i], "msg=\"lease granted\"") + fx_agent_log_count(&a[i], "keeping the host");
	return k;
}

static void test_one_lease_for_the_host(void **state)
{
	(void)state;
	struct fx_agent a[AGENTS];
	char *key[AGENTS];
	int64_t lease = 0;
	for (int i = 0; i < AGENTS; i++) {
		key[i] = key_for("shr", i);
		start_agent(&a[i], "shr", i, dir);
		int64_t l = wait_up(&a[i], key[i], 0, 5000);
		assert_true(lease == 0 || l == lease);
		lease = l;
	}
	assert_int_equal(keepers(a, AGENTS), 1); /* one grant, nobody else keeps it alive */

	/* The keeper dies: another keeps the lease alive, and deletes the dead one's key. */
	int keeper = -1;
	for (int i = 0; i < AGENTS; i++)
		if (fx_agent_log_count(&a[i], "msg=\"lease granted\""))
			keeper = i;
	assert_true(keeper >= 0);
	fx_agent_signal(&a[keeper], SIGKILL);
	assert_int_equal(fx_agent_wait(&a[keeper], 5000), 128 + SIGKILL);
	int took = fx_key_wait(etcd.url, key[keeper], NULL, 2500);
	fprintf(stderr, "# the killed keeper's key was deleted after %d ms (TTL 3 s)\n", took);
	assert_true(took >= 0);
	time_sleep_us(4 * 1000 * 1000); /* more than the TTL: the lease must have been kept alive */
	for (int i = 0; i < AGENTS; i++)
		if (i != keeper)
			assert_int_equal(lease_of(key[i]), lease);
	assert_true(fx_lease_ttl(etcd.url, lease) > 0);

	/* A stop deletes only the stopping agent's key. */
	int stopper = keeper == 0 ? 1 : 0, last = 3 - keeper - stopper;
	fx_agent_signal(&a[stopper], SIGTERM);
	assert_int_equal(fx_agent_wait(&a[stopper], 10000), 0);
	assert_null(fx_key_state(etcd.url, key[stopper]));
	assert_int_equal(lease_of(key[last]), lease);
	assert_true(fx_lease_ttl(etcd.url, lease) > 0);

	/* The lease revoked behind their backs: a new one, the remaining key registered again. */
	struct fx_agent again;
	start_agent(&again, "shr", stopper, dir);
	assert_int_equal(wait_up(&again, key[stopper], 0, 5000), lease);
	assert_int_equal(fx_lease_revoke(etcd.url, lease), 200);
	int64_t renewed = wait_up(&a[last], key[last], lease, 8000);
	assert_int_equal(wait_up(&again, key[stopper], lease, 8000), renewed);
	for (int i = 0; i < AGENTS; i++)
		fx_agent_free(&a[i]);
	fx_agent_free(&again);
	for (int i = 0; i < AGENTS; i++)
		free(key[i]);
}

static void test_without_sharing_a_lease_each(void **state)
{
	(void)state;
	struct fx_agent a[2];
	char *key[2];
	for (int i = 0; i < 2; i++) {
		key[i] = key_for("own", i);
		start_agent(&a[i], "own", i, NULL);
		wait_up(&a[i], key[i], 0, 5000);
	}
	assert_int_not_equal(lease_of(key[0]), lease_of(key[1]));
	for (int i = 0; i < 2; i++) {
		fx_agent_free(&a[i]);
		free(key[i]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_lease_for_the_host),
		cmocka_unit_test(test_without_sharing_a_lease_each),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
