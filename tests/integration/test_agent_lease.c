/* The agent's lease against a real etcd: kill -9 of the agent (the key expires with the TTL),
 * etcd stopped for less than the TTL (the same lease goes on) and for longer (a new lease, the
 * key written again), a key held by another process's lease (never overwritten, one clear
 * error, registered once it is free), and a lease revoked behind the agent's back. */
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

static struct fx_etcd etcd;
static struct fx_testserver ts;

static int setup(void **state)
{
	(void)state;
	fx_etcd_start(&etcd);
	fx_testserver_start(&ts, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_testserver_stop(&ts, 5000);
	fx_etcd_free(&etcd);
	return 0;
}

static char *key_for(const char *service)
{
	return xasprintf("/veltrix/services/%s/127.0.0.1:%d", service, ts.port);
}

static void start_agent(struct fx_agent *a, const char *service, const char *ttl)
{
	char port[16];
	snprintf(port, sizeof(port), "%d", ts.port);
	const char *argv[] = { "--service", service, "--port", port, "--interval", "100ms", "--timeout", "100ms",
			       "--rise", "1", "--ttl", ttl, "--drain-timeout", "0s", "--etcd", etcd.url, NULL };
	fx_agent_start(a, argv);
}

static void expect_state(const struct fx_agent *a, const char *key, const char *state, int timeout_ms)
{
	if (fx_key_wait(etcd.url, key, state, timeout_ms) < 0) {
		fx_agent_dump(a);
		fail_msg("%s: state %s not seen within %d ms", key, state ? state : "(absent)", timeout_ms);
	}
}

static bool wait_log(const struct fx_agent *a, const char *needle, int timeout_ms)
{
	int64_t end = time_mono_us() + (int64_t)timeout_ms * 1000;
	while (fx_agent_log_count(a, needle) == 0) {
		if (time_mono_us() > end)
			return false;
		time_sleep_us(20000);
	}
	return true;
}

/* Polls until the key is up under a lease other than old; returns that lease or 0. */
static int64_t wait_new_lease(const char *key, int64_t old, int timeout_ms)
{
	int64_t end = time_mono_us() + (int64_t)timeout_ms * 1000;
	while (time_mono_us() < end) {
		struct fx_key k;
		fx_key_get(etcd.url, key, &k);
		int64_t lease = k.present && k.lease != old && strstr(k.value, "\"state\":\"up\"") ? k.lease : 0;
		fx_key_release(&k);
		if (lease)
			return lease;
		time_sleep_us(50000);
	}
	return 0;
}

static int64_t current_lease(const char *key)
{
	struct fx_key k;
	fx_key_get(etcd.url, key, &k);
	int64_t lease = k.lease;
	fx_key_release(&k);
	return lease;
}

static void test_kill9_key_expires_within_ttl(void **state)
{
	(void)state;
	char *key = key_for("kill9");
	struct fx_agent a;
	start_agent(&a, "kill9", "2s");
	expect_state(&a, key, "up", 3000);
	fx_agent_signal(&a, SIGKILL);
	assert_int_equal(fx_agent_wait(&a, 5000), 128 + SIGKILL);
	expect_state(&a, key, NULL, 2000 + 1000); /* TTL plus 1 s */
	fx_agent_free(&a);
	free(key);
}

static void test_short_etcd_outage_keeps_the_lease(void **state)
{
	(void)state;
	char *key = key_for("short");
	struct fx_agent a;
	start_agent(&a, "short", "5s");
	expect_state(&a, key, "up", 3000);
	int64_t lease = current_lease(key);
	fx_etcd_stop(&etcd);
	time_sleep_us(500 * 1000);
	fx_etcd_restart(&etcd);
	/* two more TTLs: the lease was renewed all along, the key never went */
	time_sleep_us(5000 * 1000);
	assert_int_equal(current_lease(key), lease);
	assert_string_equal(fx_key_state(etcd.url, key), "up");
	assert_int_equal(fx_agent_log_count(&a, "lease lost"), 0);
	assert_int_equal(fx_agent_log_count(&a, "msg=\"lease granted\""), 1);
	fx_agent_free(&a);
	free(key);
}

static void test_long_etcd_outage_registers_again(void **state)
{
	(void)state;
	char *key = key_for("long");
	struct fx_agent a;
	start_agent(&a, "long", "2s");
	expect_state(&a, key, "up", 3000);
	int64_t old = current_lease(key);
	fx_etcd_stop(&etcd);
	if (!wait_log(&a, "lease lost, registering again", 6000)) {
		fx_agent_dump(&a);
		fail_msg("the agent did not notice the lease loss");
	}
	time_sleep_us(500 * 1000);
	fx_etcd_restart(&etcd);
	int64_t lease = wait_new_lease(key, old, 8000);
	if (!lease) {
		fx_agent_dump(&a);
		fail_msg("not registered again under a new lease");
	}
	/* the old lease (revived by the restart, then left to expire) must not take the key along */
	time_sleep_us(3000 * 1000);
	assert_int_equal(current_lease(key), lease);
	assert_string_equal(fx_key_state(etcd.url, key), "up");
	fx_agent_free(&a);
	free(key);
}

static void test_foreign_lease_is_not_overwritten(void **state)
{
	(void)state;
	char *key = key_for("conflict");
	char *foreign = xasprintf("{\"address\":\"127.0.0.1\",\"port\":%d,\"version\":\"other\"}", ts.port);
	int64_t theirs = fx_key_put_leased(etcd.url, key, foreign, 60);
	struct fx_agent a;
	start_agent(&a, "conflict", "2s");
	if (!wait_log(&a, "instance key held by lease", 5000)) {
		fx_agent_dump(&a);
		fail_msg("no conflict reported");
	}
	time_sleep_us(2500 * 1000); /* it retries, quietly, without writing */
	assert_int_equal(fx_agent_log_count(&a, "another agent for the same instance?"), 1);
	struct fx_key k;
	fx_key_get(etcd.url, key, &k);
	assert_string_equal(k.value, foreign);
	assert_int_equal(k.lease, theirs);
	fx_key_release(&k);
	assert_int_equal(fx_lease_revoke(etcd.url, theirs), 200);
	int64_t ours = wait_new_lease(key, theirs, 20000);
	if (!ours) {
		fx_agent_dump(&a);
		fail_msg("not registered once the key was free");
	}
	fx_agent_free(&a);
	free(foreign);
	free(key);
}

static void test_revoked_lease_registers_again(void **state)
{
	(void)state;
	char *key = key_for("revoked");
	struct fx_agent a;
	start_agent(&a, "revoked", "3s");
	expect_state(&a, key, "up", 3000);
	int64_t old = current_lease(key);
	assert_int_equal(fx_lease_revoke(etcd.url, old), 200);
	if (!wait_new_lease(key, old, 5000)) {
		fx_agent_dump(&a);
		fail_msg("not registered again after the lease was revoked");
	}
	assert_int_equal(fx_agent_log_count(&a, "lease lost, registering again"), 1);
	fx_agent_free(&a);
	free(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kill9_key_expires_within_ttl),
		cmocka_unit_test(test_revoked_lease_registers_again),
		cmocka_unit_test(test_foreign_lease_is_not_overwritten),
		cmocka_unit_test(test_short_etcd_outage_keeps_the_lease),
		cmocka_unit_test(test_long_etcd_outage_registers_again),
	};
	return cmocka_run_group_tests_name("agent_lease", tests, setup, teardown);
}
