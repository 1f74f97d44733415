/* `veltrix controller` in managed mode, end to end: a real etcd, real HAProxy (started by the
 * controller), `veltrix testserver` backends and real traffic. One stack serves every test in
 * this file; each test uses its own service, so they do not see each other's servers.
 * Covered: registrations written raw with etcdctl and lease-bound (as an agent writes them)
 * appear and serve, deletion and lease revocation remove them; `draining` and `down` are
 * honoured even for the last server; capacity 1:2:4 gives weights and maxconn 1:2:4; a drain
 * under a steady stream of requests fails none, and one that outlasts drain_timeout is cut; the
 * panic threshold keeps 60% of a pool whose keys vanished until `--force-sync`, unless
 * HAProxy's checks see those servers down; an instance that moves keeps its server; hostile
 * registry values are rejected, logged once, counted, and leave HAProxy untouched while valid
 * instances converge. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_agent.h"
#include "fx_haproxy.h"
#include "fx_load.h"
#include "fx_stack.h"

#define WAIT_MS 10000

static struct fx_stack stack;

static int setup(void **state)
{
	(void)state;
	static const struct fx_stack_service svcs[] = {
		{ "reg", "    balance: roundrobin\n", 0 },
		{ "st", NULL, 0 },
		{ "cap", NULL, 0 },
		{ "drn", "    balance: roundrobin\n", 0 },
		{ "pan", NULL, 0 },
		{ "bad", NULL, 0 },
		{ "pdn", NULL, 0 },
		{ "dto", "    health:\n      type: tcp\n      interval: 300ms\n      timeout: 200ms\n"
			 "    drain_timeout: 500ms\n", 0 },
		{ "agt", "    balance: roundrobin\n", 0 },
	};
	static const char *const ts_args[] = { "--service-time", "40ms", "--capacity", "64", NULL };
	struct fx_stack_opts o = { .n_backends = 6, .backend_args = ts_args };
	fx_stack_start(&stack, &o, svcs, (int)(sizeof(svcs) / sizeof(svcs[0])));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_stack_stop(&stack);
	return 0;
}

static const struct fx_srv *find_srv(const struct fx_srv *srv, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(srv[i].name, name) == 0)
			return &srv[i];
	fail_msg("no server %s", name);
	return NULL;
}

/* Which backends (X-Served-By) answer n requests through the frontend; all must be 200. */
static void served_by(const char *service, int n, char *out, size_t cap)
{
	out[0] = '\0';
	for (int i = 0; i < n; i++) {
		char who[64];
		long st = fx_stack_get(fx_stack_url(&stack, service), who, sizeof(who));
		if (st != 200)
			fail_msg("request %d through %s: status %ld", i, service, st);
		char tagged[80];
		snprintf(tagged, sizeof(tagged), "[%s]", who);
		if (!strstr(out, tagged) && strlen(out) + strlen(tagged) < cap)
			strcat(out, tagged);
	}
}

static char *etcdctl(const char *const *args)
{
	char *out = NULL;
	int rc = fx_etcdctl(&stack.etcd, &out, args);
	if (rc != 0)
		fail_msg("etcdctl %s failed (%d): %s", args[0], rc, out ? out : "");
	return out;
}

/* A registration written raw with etcdctl as docs/registry.md shows, and one bound to a lease as
 * the agent writes it, both serve through the frontend; deleting the key and revoking the lease
 * remove them. A third instance keeps each removal under the panic threshold. */
static void test_raw_and_lease_registrations_serve_and_leave(void **state)
{
	(void)state;
	char raw[128], raw2[128], leased[128];
	snprintf(raw, sizeof(raw), "{\"address\":\"127.0.0.1\",\"port\":%d,\"capacity\":10}", stack.ts[0].port);
	snprintf(raw2, sizeof(raw2), "{\"address\":\"127.0.0.1\",\"port\":%d}", stack.ts[2].port);
	snprintf(leased, sizeof(leased), "{\"address\":\"127.0.0.1\",\"port\":%d,\"capacity\":10,\"state\":\"up\"}",
		 stack.ts[1].port);
	free(etcdctl((const char *const[]){ "put", "/veltrix/services/reg/raw1", raw, NULL }));
	free(etcdctl((const char *const[]){ "put", "/veltrix/services/reg/raw2", raw2, NULL }));
	char *grant = etcdctl((const char *const[]){ "lease", "grant", "60", NULL });
	/* "lease 694d7b6e1ed8b40a granted with TTL(60s)" */
	char lease[32] = "";
	assert_true(strncmp(grant, "lease ", 6) == 0 && strcspn(grant + 6, " ") < sizeof(lease));
	memcpy(lease, grant + 6, strcspn(grant + 6, " "));
	free(grant);
	char *lease_opt = xasprintf("--lease=%s", lease);
	free(etcdctl((const char *const[]){ "put", lease_opt, "/veltrix/services/reg/agent1", leased, NULL }));
	free(lease_opt);

	assert_true(fx_stack_wait_serving(&stack, "reg", "agent1,raw1,raw2", WAIT_MS));
	struct fx_srv srv[8];
	int n = fx_stack_servers(&stack, "reg", srv, 8);
	assert_int_equal(n, 3);
	for (int i = 0; i < n; i++)
		assert_int_equal(srv[i].admin, 0);
	assert_int_equal(find_srv(srv, n, "agent1")->port, stack.ts[1].port);
	char who[256];
	served_by("reg", 12, who, sizeof(who));
	assert_non_null(strstr(who, "[b0]"));
	assert_non_null(strstr(who, "[b1]"));
	assert_non_null(strstr(who, "[b2]"));

	free(etcdctl((const char *const[]){ "del", "/veltrix/services/reg/raw1", NULL }));
	assert_true(fx_stack_wait_names(&stack, "reg", "agent1,raw2", WAIT_MS));
	free(etcdctl((const char *const[]){ "lease", "revoke", lease, NULL }));
	assert_true(fx_stack_wait_names(&stack, "reg", "raw2", WAIT_MS));
	served_by("reg", 4, who, sizeof(who));
	assert_string_equal(who, "[b2]");
	assert_true(fx_stack_log_count(&stack, "msg=\"server removed\" service=reg") == 2);

	/* The instance moves to another port: the same server follows it, nothing is re-added. */
	fx_stack_put(&stack, "reg", "raw2", fx_stack_value(&stack, 3, NULL));
	int64_t deadline = time_mono_us() + WAIT_MS * 1000LL;
	while ((n = fx_stack_servers(&stack, "reg", srv, 8)) != 1 || srv[0].port != stack.ts[3].port) {
		if (time_mono_us() > deadline)
			fail_msg("raw2 did not move to port %d", stack.ts[3].port);
		time_sleep_us(20000);
	}
	served_by("reg", 4, who, sizeof(who));
	assert_string_equal(who, "[b3]");
	assert_int_equal(fx_stack_log_count(&stack, "msg=\"server added\" service=reg"), 3);
	assert_int_equal(fx_stack_log_count(&stack, "runtime API refused"), 0);
}

/* `draining` is an intention, not a vanishing key: honoured even for the last server of a pool.
 * `down` puts the server in maintenance and keeps it. */
/* The real thing end to end: `veltrix agent` supervising a test backend registers it, the
 * controller puts it in HAProxy and it serves; on SIGTERM the agent marks it draining, the
 * controller drains and removes it, the agent revokes its lease and exits 0. */
static void test_real_agent_registers_serves_and_drains(void **state)
{
	(void)state;
	char port[16], *etcd = xasprintf("%s", stack.etcd.url);
	snprintf(port, sizeof(port), "%d", net_free_port());
	const char *const args[] = { "--etcd", etcd, "--service", "agt", "--port", port, "--address", "127.0.0.1",
				     "--instance", "a1", "--capacity", "8", "--check", "http:/healthz",
				     "--interval", "100ms", "--timeout", "80ms", "--rise", "1", "--ttl", "3s",
				     "--drain-timeout", "1s",
				     "--", fx_veltrix_bin(), "testserver", "--port", port, "--instance", "a1", NULL };
	struct fx_agent a;
	fx_agent_start(&a, args);
	if (!fx_stack_wait_names(&stack, "agt", "a1", WAIT_MS)) {
		fx_agent_dump(&a);
		fail_msg("the agent's instance never reached HAProxy");
	}
	char who[64];
	assert_int_equal(fx_stack_get(fx_stack_url(&stack, "agt"), who, sizeof(who)), 200);
	assert_string_equal(who, "a1");
	fx_agent_signal(&a, SIGTERM);
	assert_true(fx_stack_wait_names(&stack, "agt", "", WAIT_MS));
	assert_int_equal(fx_agent_wait(&a, WAIT_MS), 0);
	assert_int_equal(fx_stack_log_count(&stack, "msg=\"server removed\" service=agt server=a1"), 1);
	fx_agent_free(&a);
	free(etcd);
}

static void test_draining_and_down_are_always_honoured(void **state)
{
	(void)state;
	fx_stack_put(&stack, "st", "only", fx_stack_value(&stack, 0, NULL));
	fx_stack_put(&stack, "st", "sick", fx_stack_value(&stack, 1, NULL));
	assert_true(fx_stack_wait_names(&stack, "st", "only,sick", WAIT_MS));
	fx_stack_put(&stack, "st", "sick", fx_stack_value(&stack, 1, "\"state\":\"down\""));
	struct fx_srv srv[4];
	int64_t deadline = time_mono_us() + WAIT_MS * 1000LL;
	int n;
	while ((n = fx_stack_servers(&stack, "st", srv, 4)) != 2 || find_srv(srv, n, "sick")->admin != 2) {
		if (time_mono_us() > deadline)
			fail_msg("sick did not enter maintenance");
		time_sleep_us(20000);
	}
	fx_stack_put(&stack, "st", "sick", fx_stack_value(&stack, 1, NULL));
	while ((n = fx_stack_servers(&stack, "st", srv, 4)) != 2 || find_srv(srv, n, "sick")->admin != 0) {
		if (time_mono_us() > deadline)
			fail_msg("sick did not come back from maintenance");
		time_sleep_us(20000);
	}
	/* Both draining: 100% of the pool, still honoured. */
	fx_stack_put(&stack, "st", "only", fx_stack_value(&stack, 0, "\"state\":\"draining\""));
	fx_stack_put(&stack, "st", "sick", fx_stack_value(&stack, 1, "\"state\":\"draining\""));
	assert_true(fx_stack_wait_names(&stack, "st", "", WAIT_MS));
	assert_int_equal(fx_stack_metric(&stack, "veltrix_panic_held_servers{service=\"st\"}"), 0);
}

/* Capacity 1:2:4 -> maxconn 10:20:40 and weights 64:128:256; an operator weight overrides. */
static void test_capacity_sets_weight_and_maxconn(void **state)
{
	(void)state;
	fx_stack_put(&stack, "cap", "c1", fx_stack_value(&stack, 0, "\"capacity\":10"));
	fx_stack_put(&stack, "cap", "c2", fx_stack_value(&stack, 1, "\"capacity\":20"));
	fx_stack_put(&stack, "cap", "c4", fx_stack_value(&stack, 2, "\"capacity\":40"));
	assert_true(fx_stack_wait_names(&stack, "cap", "c1,c2,c4", WAIT_MS));
	struct fx_srv srv[4];
	int n = fx_stack_servers(&stack, "cap", srv, 4);
	assert_int_equal(n, 3);
	assert_int_equal(srv[0].maxconn, 10);
	assert_int_equal(srv[1].maxconn, 20);
	assert_int_equal(srv[2].maxconn, 40);
	assert_int_equal(srv[0].weight, 64);
	assert_int_equal(srv[1].weight, 128);
	assert_int_equal(srv[2].weight, 256);

	/* A new peer with twice the largest capacity rescales everyone, without re-adding anyone. */
	fx_stack_put(&stack, "cap", "c8", fx_stack_value(&stack, 3, "\"capacity\":80,\"weight\":7"));
	fx_stack_put(&stack, "cap", "c4", fx_stack_value(&stack, 2, "\"capacity\":80"));
	int64_t deadline = time_mono_us() + WAIT_MS * 1000LL;
	while ((n = fx_stack_servers(&stack, "cap", srv, 4)) != 4 || srv[2].weight != 256 || srv[2].maxconn != 80 ||
	       srv[0].weight != 32 || srv[1].weight != 64) {
		if (time_mono_us() > deadline)
			fail_msg("weights did not follow the capacity change");
		time_sleep_us(20000);
	}
	assert_int_equal(srv[3].weight, 7); /* the operator's override */
	assert_int_equal(srv[3].maxconn, 80);
	assert_int_equal(fx_stack_log_count(&stack, "msg=\"server added\" service=cap"), 4);
}

/* Under a steady stream of requests, one instance turns `draining` and another's key is
 * deleted: both leave HAProxy, and every request completes. */
static void test_drain_under_traffic_fails_no_request(void **state)
{
	(void)state;
	for (int i = 0; i < 3; i++) {
		char name[16];
		snprintf(name, sizeof(name), "d%d", i);
		fx_stack_put(&stack, "drn", name, fx_stack_value(&stack, i, NULL));
	}
	assert_true(fx_stack_wait_names(&stack, "drn", "d0,d1,d2", WAIT_MS));
	struct fx_load l;
	const char *args[] = { "-R", "150", "-c", "32", "-t", "1", "-d", "4s", "--timeout", "5s", "--quiet", NULL };
	fx_load_spawn(&l, fx_stack_url(&stack, "drn"), args);
	time_sleep_us(1200 * 1000);
	fx_stack_put(&stack, "drn", "d1", fx_stack_value(&stack, 1, "\"state\":\"draining\""));
	time_sleep_us(600 * 1000);
	fx_stack_del(&stack, "drn", "d2");
	assert_true(fx_stack_wait_names(&stack, "drn", "d0", WAIT_MS));
	fx_load_wait(&l, 30000);
	assert_non_null(l.json);
	/* Every request sent got a 2xx. (A request due at the very end of the window may be counted
	 * as never sent by the generator: that one never reached HAProxy.) */
	long long sent = fx_jint(l.json, "requests", "sent", NULL);
	long long ok = fx_jint(l.json, "status", "2xx", NULL);
	long long failed = fx_jint(l.json, "errors", "total", NULL) - fx_jint(l.json, "errors", "not_sent", NULL);
	if (failed != 0 || ok != sent)
		fail_msg("%lld of %lld requests failed (%lld answered 2xx):\n%s", failed, sent, ok, l.out);
	assert_true(sent >= 500);
	assert_true(fx_jint(l.json, "errors", "not_sent", NULL) <= 1);
	fx_load_free(&l);
}

/* 60% of a healthy pool's keys vanish at once: the servers stay, a warning and a metric say so,
 * and an operator's --force-sync applies the change. */
static void test_panic_threshold_holds_until_force_sync(void **state)
{
	(void)state;
	for (int i = 0; i < 5; i++) {
		char name[16];
		snprintf(name, sizeof(name), "p%d", i);
		fx_stack_put(&stack, "pan", name, fx_stack_value(&stack, i, NULL));
	}
	assert_true(fx_stack_wait_serving(&stack, "pan", "p0,p1,p2,p3,p4", WAIT_MS));
	const char *gone[] = { "p0", "p1", "p2" };
	fx_stack_del_many(&stack, "pan", gone, 3);
	int64_t deadline = time_mono_us() + WAIT_MS * 1000LL;
	while (fx_stack_metric(&stack, "veltrix_panic_held_servers{service=\"pan\"}") != 3) {
		if (time_mono_us() > deadline)
			fail_msg("the panic threshold was not reported");
		time_sleep_us(50000);
	}
	time_sleep_us(1000 * 1000); /* several reconciles later, still all there */
	assert_string_equal(fx_stack_names(&stack, "pan"), "p0,p1,p2,p3,p4");
	assert_true(fx_stack_log_count(&stack, "panic threshold: keeping servers whose keys vanished\" service=pan") >= 1);
	char who[256];
	served_by("pan", 10, who, sizeof(who));

	struct fx_run r;
	fx_veltrix(&r, 10000, "controller", "-c", stack.cfg_path, "--force-sync", NULL);
	assert_int_equal(r.status, 0);
	fx_run_free(&r);
	assert_true(fx_stack_wait_names(&stack, "pan", "p3,p4", WAIT_MS));
	assert_int_equal(fx_stack_metric(&stack, "veltrix_panic_held_servers{service=\"pan\"}"), 0);
	assert_true(fx_stack_log_count(&stack, "forced sync") >= 1);
}

/* 60% of a pool's keys vanish, but HAProxy's own checks already see those servers down
 * (crashed instances): the data plane agrees, so they go without an operator. */
static void test_panic_threshold_yields_to_failing_checks(void **state)
{
	(void)state;
	for (int i = 0; i < 5; i++) {
		char name[16], dead[96];
		snprintf(name, sizeof(name), "p%d", i);
		snprintf(dead, sizeof(dead), "{\"address\":\"127.0.0.1\",\"port\":%d}", net_free_port());
		fx_stack_put(&stack, "pdn", name, i < 3 ? dead : fx_stack_value(&stack, i, NULL));
	}
	assert_true(fx_stack_wait_names(&stack, "pdn", "p0,p1,p2,p3,p4", WAIT_MS));
	struct fx_srv srv[8];
	int64_t deadline = time_mono_us() + WAIT_MS * 1000LL;
	for (;;) {
		int n = fx_stack_servers(&stack, "pdn", srv, 8), down = 0;
		for (int i = 0; i < n; i++)
			down += strcmp(srv[i].status, "DOWN") == 0;
		if (down == 3)
			break;
		if (time_mono_us() > deadline)
			fail_msg("HAProxy's checks did not see the 3 dead instances down");
		time_sleep_us(50000);
	}
	const char *gone[] = { "p0", "p1", "p2" };
	fx_stack_del_many(&stack, "pdn", gone, 3);
	assert_true(fx_stack_wait_names(&stack, "pdn", "p3,p4", WAIT_MS));
	assert_int_equal(fx_stack_metric(&stack, "veltrix_panic_held_servers{service=\"pdn\"}"), 0);
}

/* Hostile keys and values: rejected, logged once each, counted by reason; HAProxy never sees
 * them (no refused command, the valid server untouched), and a valid instance written among
 * them converges. */
static void test_hostile_values_are_rejected_and_counted(void **state)
{
	(void)state;
	fx_stack_put(&stack, "bad", "v0", fx_stack_value(&stack, 0, "\"capacity\":10"));
	assert_true(fx_stack_wait_names(&stack, "bad", "v0", WAIT_MS));
	struct fx_srv before[2], after[2];
	assert_int_equal(fx_stack_servers(&stack, "bad", before, 2), 1);

	static const char semi[] = "/veltrix/services/bad/x;show info";
	static const char nl[] = "/veltrix/services/bad/y\nshow info";
	static const char sp[] = "/veltrix/services/bad/z set weight 0";
	fx_stack_put_raw(&stack, semi, strlen(semi), fx_stack_value(&stack, 1, NULL));
	fx_stack_put_raw(&stack, nl, strlen(nl), fx_stack_value(&stack, 1, NULL));
	fx_stack_put_raw(&stack, sp, strlen(sp), fx_stack_value(&stack, 1, NULL));
	fx_stack_put(&stack, "bad", "h1", "{\"address\":\"127.0.0.1;show info\",\"port\":80}");
	fx_stack_put(&stack, "bad", "h2", "{\"address\":\"999.0.0.1\",\"port\":80}");
	fx_stack_put(&stack, "bad", "h3", "{\"address\":\"127.0.0.1\",\"port\":\"80\"}");
	fx_stack_put(&stack, "bad", "h4", "{\"address\":\"127.0.0.1\",\"port\":80,\"capacity\":[1]}");
	fx_stack_put(&stack, "bad", "h5", "{\"address\":\"127.0.0.1\",\"port\":80");
	fx_stack_put(&stack, "bad", "v0", "{\"address\":\"127.0.0.1\",\"port\":99999}"); /* an update */
	fx_stack_put(&stack, "bad", "v1", fx_stack_value(&stack, 1, "\"capacity\":10"));

	assert_true(fx_stack_wait_names(&stack, "bad", "v0,v1", WAIT_MS));
	int64_t deadline = time_mono_us() + WAIT_MS * 1000LL;
	while (fx_stack_metric(&stack, "veltrix_registry_rejections_total{reason=\"bad_port\"}") < 1) {
		if (time_mono_us() > deadline)
			fail_msg("rejections were not counted");
		time_sleep_us(50000);
	}
	assert_int_equal(fx_stack_metric(&stack, "veltrix_registry_rejections_total{reason=\"bad_name\"}"), 3);
	assert_int_equal(fx_stack_metric(&stack, "veltrix_registry_rejections_total{reason=\"bad_address\"}"), 2);
	assert_int_equal(fx_stack_metric(&stack, "veltrix_registry_rejections_total{reason=\"bad_type\"}"), 2);
	assert_int_equal(fx_stack_metric(&stack, "veltrix_registry_rejections_total{reason=\"bad_json\"}"), 1);
	assert_int_equal(fx_stack_metric(&stack, "veltrix_registry_rejected_keys{reason=\"bad_name\"}"), 3);
	time_sleep_us(500 * 1000); /* more reconciles: each rejection is still logged once */
	assert_int_equal(fx_stack_log_count(&stack, "msg=\"registry value rejected\""), 9);
	assert_int_equal(fx_stack_log_count(&stack, "runtime API refused"), 0);
	assert_true(fx_stack_metric(&stack, "veltrix_runtime_errors_total{kind=\"add\"}") <= 0);

	assert_int_equal(fx_stack_servers(&stack, "bad", after, 2), 2);
	assert_string_equal(after[0].name, "v0"); /* its last valid value stays in use */
	assert_int_equal(after[0].port, before[0].port);
	assert_int_equal(after[0].weight, before[0].weight);
	assert_int_equal(after[0].maxconn, 10);
	char who[256];
	served_by("bad", 6, who, sizeof(who));
}

struct slow_request {
	const char *url;
	long status;
	int64_t took_us;
};

static void *slow_get(void *arg)
{
	struct slow_request *r = arg;
	char who[64];
	int64_t t0 = time_mono_us();
	r->status = fx_stack_get(r->url, who, sizeof(who));
	r->took_us = time_mono_us() - t0;
	return NULL;
}

/* A request that outlasts drain_timeout: at the timeout the server's sessions are shut down
 * and it is deleted, instead of waiting for the request. */
static void test_drain_timeout_cuts_what_is_left(void **state)
{
	(void)state;
	struct fx_origin origin;
	fx_origin_start(&origin, 1); /* its slow port holds each connection 1.5 s, then answers */
	char value[96];
	snprintf(value, sizeof(value), "{\"address\":\"127.0.0.1\",\"port\":%d}", origin.slow_port);
	fx_stack_put(&stack, "dto", "slow", value);
	assert_true(fx_stack_wait_names(&stack, "dto", "slow", WAIT_MS));
	struct slow_request req = { .url = fx_stack_url(&stack, "dto") };
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, slow_get, &req), 0);
	struct fx_srv srv[2];
	int64_t deadline = time_mono_us() + WAIT_MS * 1000LL;
	while (fx_stack_servers(&stack, "dto", srv, 2) != 1 || srv[0].scur < 1) {
		if (time_mono_us() > deadline)
			fail_msg("the request never reached the server");
		time_sleep_us(10000);
	}
	int64_t t0 = time_mono_us();
	snprintf(value, sizeof(value), "{\"address\":\"127.0.0.1\",\"port\":%d,\"state\":\"draining\"}", origin.slow_port);
	fx_stack_put(&stack, "dto", "slow", value);
	assert_true(fx_stack_wait_names(&stack, "dto", "", WAIT_MS));
	int64_t removed_after = time_mono_us() - t0;
	pthread_join(th, NULL);
	fx_origin_stop(&origin);
	if (removed_after < 400 * 1000 || req.took_us >= 1400 * 1000 || req.status == 200)
		fail_msg("removed after %lld ms; the request took %lld ms and got %ld", (long long)(removed_after / 1000),
			 (long long)(req.took_us / 1000), req.status);
	assert_true(fx_stack_metric(&stack, "veltrix_runtime_operations_total{kind=\"shutdown\"}") >= 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_raw_and_lease_registrations_serve_and_leave),
		cmocka_unit_test(test_real_agent_registers_serves_and_drains),
		cmocka_unit_test(test_draining_and_down_are_always_honoured),
		cmocka_unit_test(test_capacity_sets_weight_and_maxconn),
		cmocka_unit_test(test_drain_under_traffic_fails_no_request),
		cmocka_unit_test(test_panic_threshold_holds_until_force_sync),
		cmocka_unit_test(test_panic_threshold_yields_to_failing_checks),
		cmocka_unit_test(test_hostile_values_are_rejected_and_counted),
		cmocka_unit_test(test_drain_timeout_cuts_what_is_left),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
