/* The `del server` soak (issue 10): HAProxy 2.6.12 lacks two upstream fixes for crashes when a
 * dynamic server is deleted while streams still use it (95c4d2482, issue #2298; 1b8c5abee).
 * Through the whole stack (etcd, `veltrix controller` in managed mode, HAProxy with two
 * threads, testservers), instances are registered and deregistered in etcd every 50-100 ms,
 * so the controller's own delete sequence (drain, wait for the sessions, maint, del, retried
 * while idle connections hold the server) is what runs, under 2,000 req/s of keep-alive load.
 * Every other churned instance points at a slow backend (0.3-3 s per response), so each delete
 * of one of those finds long responses in flight; the others carry a large share of the
 * traffic and leave idle pooled connections behind.
 *
 * Asserts: HAProxy's worker is the same process throughout (checked every second) and was
 * never reloaded, no request failed, and every registration and deregistration was applied
 * (the controller logged each, and HAProxy's pool ends equal to etcd's keys).
 *
 * VX_SOAK_SECONDS sets the churn time: 20 s by default (`make test`), 300 for `make soak`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_load.h"
#include "fx_stack.h"

#define SOAK_DEFAULT_S 20
#define SOAK_MIN_S 5
#define SOAK_MAX_S 7200
#define RATE "2000"
#define STABLE 2        /* instances registered throughout: s0, s1 */
#define LIVE 6          /* churned instances registered at any time */
#define SLOW_BACKEND 2  /* backends 0 and 1 answer in 1-3 ms */
#define SLOW_TIME "uniform:300ms-3s"
#define FAST_TIME "uniform:1ms-3ms"
#define TAIL_S 5        /* load after the churn: the last slow responses end inside the window */
#define W_STABLE 128
#define W_FAST 64
#define W_SLOW 4        /* about 10 req/s per slow instance: some 15 responses in flight each */
#define GAP_MIN_MS 50
#define GAP_MAX_MS 100
#define SETTLE_MS 20000 /* the last slow responses end, their servers go */
#define MAX_SRV 128

static struct fx_stack stack;
static int soak_s = SOAK_DEFAULT_S;

/* What the churn did and saw. */
struct soak {
	char live[LIVE][16]; /* FIFO of registered churned instances, oldest at head */
	int head;
	long next_id;
	long adds, dels;
	uint32_t rng;
	long long worker;
	int reloads;
	int max_servers;       /* servers in HAProxy's backend at one sample */
	int max_leaving_scur;  /* sessions on draining/maint servers at one sample */
	long long sum_leaving_scur;
	int samples;
};

static int parse_soak_seconds(void)
{
	const char *v = getenv("VX_SOAK_SECONDS");
	if (!v || !*v)
		return SOAK_DEFAULT_S;
	char *end = NULL;
	errno = 0;
	long s = strtol(v, &end, 10);
	if (errno || *end || s < SOAK_MIN_S || s > SOAK_MAX_S)
		fx_die("VX_SOAK_SECONDS=%s: want %d..%d", v, SOAK_MIN_S, SOAK_MAX_S);
	return (int)s;
}

static uint32_t next_rand(struct soak *k)
{
	k->rng ^= k->rng << 13;
	k->rng ^= k->rng >> 17;
	k->rng ^= k->rng << 5;
	return k->rng;
}

static void set_service_time(int backend, const char *dist)
{
	char *url = xasprintf("http://127.0.0.1:%d/_testserver/set?service_time=%s", stack.ts[backend].port, dist);
	if (fx_http("POST", url, "", NULL) != 200)
		fx_die("cannot set backend %d's service time to %s", backend, dist);
	free(url);
}

static int setup(void **state)
{
	(void)state;
	static const struct fx_stack_service svcs[] = {
		{ "soak", "    balance: roundrobin\n    drain_timeout: 30s\n", 0 },
	};
	static const char *const ts_args[] = { "--service-time", FAST_TIME, "--capacity", "2000", NULL };
	/* The guard against mass deletion is not under test here: a slow round must not hold
	 * servers back and turn into a mismatch at the end. */
	struct fx_stack_opts o = { .n_backends = 3, .backend_args = ts_args, .haproxy_yaml = "  nbthread: 2",
				   .controller_yaml = "  panic_threshold: 100%" };
	fx_stack_start(&stack, &o, svcs, 1);
	set_service_time(SLOW_BACKEND, SLOW_TIME);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_stack_stop(&stack);
	return 0;
}

/* Even ids go to the slow backend with a small weight, odd ones to a fast one. */
static void register_churned(struct soak *k, int slot)
{
	long id = k->next_id++;
	snprintf(k->live[slot], sizeof(k->live[slot]), "c%ld", id);
	char extra[32];
	snprintf(extra, sizeof(extra), "\"weight\":%d", id % 2 ? W_FAST : W_SLOW);
	int backend = id % 2 ? (int)(id / 2 % 2) : SLOW_BACKEND;
	fx_stack_put(&stack, "soak", k->live[slot], fx_stack_value(&stack, backend, extra));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* "c12,c13,...,s0,s1": what should be registered, sorted like fx_stack_names. */
static char *expected_names(const struct soak *k)
{
	const char *names[STABLE + LIVE] = { "s0", "s1" };
	for (int i = 0; i < LIVE; i++)
		names[STABLE + i] = k->live[i];
	qsort(names, STABLE + LIVE, sizeof(names[0]), cmp_str);
	struct buf b = BUF_INIT(4096);
	for (int i = 0; i < STABLE + LIVE; i++)
		buf_printf(&b, "%s%s", i ? "," : "", names[i]);
	return buf_detach(&b, NULL);
}

/* The instance names under the service's prefix in etcd, as etcdctl lists them (sorted). */
static char *etcd_names(void)
{
	const char *args[] = { "get", "--prefix", "--keys-only", "/veltrix/services/soak/", NULL };
	const char *prefix = "/veltrix/services/soak/";
	char *out = NULL;
	if (fx_etcdctl(&stack.etcd, &out, args) != 0)
		fail_msg("etcdctl get failed: %s", out ? out : "");
	struct buf b = BUF_INIT(4096);
	int n = 0;
	for (const char *p = out; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t len = nl ? (size_t)(nl - p) : strlen(p);
		if (len > strlen(prefix) && strncmp(p, prefix, strlen(prefix)) == 0)
			buf_printf(&b, "%s%.*s", n++ ? "," : "", (int)(len - strlen(prefix)), p + strlen(prefix));
		p = nl ? nl + 1 : NULL;
	}
	free(out);
	return buf_detach(&b, NULL);
}

/* What HAProxy's master wrote (the controller sends it to haproxy.log in its state dir): a
 * worker that dies is reported there with its signal. Caller frees. */
static char *hap_log(void)
{
	char *path = fx_path(stack.state_dir, "haproxy.log");
	char *text = fx_read_file(path);
	free(path);
	return text ? text : xstrdup("");
}

/* The worker changed: the controller is stopped so that it starts no other HAProxy, the one it
 * may have started already is tracked (stopped at teardown), and the test fails with what the
 * master logged. */
static void fail_crashed(const struct soak *k, double elapsed_s, long long w, int reloads)
{
	fx_stack_controller_kill(&stack, SIGKILL);
	if (stack.hap_master > 0 && kill(stack.hap_master, 0) != 0)
		stack.hap_master = 0;
	if (stack.hap_master == 0 && fx_stack_worker_pid(&stack) > 0)
		fx_stack_track_haproxy(&stack);
	char *log = hap_log();
	fail_msg("after %.1f s and %ld cycles: HAProxy worker %lld (was %lld), reloads %d (was %d); haproxy.log:\n%s",
		 elapsed_s, k->dels, w, k->worker, reloads, k->reloads, log);
	free(log);
}

/* Once a second: the worker must be the one we started with, and how many servers are on
 * their way out with sessions still open. */
static void sample(struct soak *k, double elapsed_s)
{
	long long w = fx_stack_worker_pid(&stack);
	int reloads = fx_stack_reloads(&stack);
	if (w != k->worker || reloads != k->reloads)
		fail_crashed(k, elapsed_s, w, reloads);
	static struct fx_srv srv[MAX_SRV];
	int n = fx_stack_servers(&stack, "soak", srv, MAX_SRV);
	if (n < 0)
		fail_msg("after %.1f s: HAProxy's runtime API does not answer", elapsed_s);
	int leaving = 0;
	for (int i = 0; i < n; i++)
		if (srv[i].admin != 0)
			leaving += srv[i].scur;
	if (n > k->max_servers)
		k->max_servers = n;
	if (leaving > k->max_leaving_scur)
		k->max_leaving_scur = leaving;
	k->sum_leaving_scur += leaving;
	k->samples++;
}

/* One cycle: deregister the oldest churned instance, register a new one in its place, each
 * after a 50-100 ms pause. */
static void churn(struct soak *k, int64_t until_us, int64_t start_us)
{
	int64_t next_sample = start_us + USEC_PER_SEC;
	while (time_mono_us() < until_us) {
		for (int step = 0; step < 2; step++) {
			time_sleep_us((GAP_MIN_MS + (int64_t)(next_rand(k) % (GAP_MAX_MS - GAP_MIN_MS + 1))) * 1000);
			if (step == 0) {
				fx_stack_del(&stack, "soak", k->live[k->head]);
				k->dels++;
			} else {
				register_churned(k, k->head);
				k->head = (k->head + 1) % LIVE;
				k->adds++;
			}
		}
		if (time_mono_us() >= next_sample) {
			sample(k, (double)(time_mono_us() - start_us) / 1e6);
			next_sample += USEC_PER_SEC;
		}
	}
}

static double metric_kind(const char *name, const char *kind)
{
	char series[128];
	snprintf(series, sizeof(series), "%s{kind=\"%s\"}", name, kind);
	double v = fx_stack_metric(&stack, series);
	return v < 0 ? 0 : v;
}

static void test_del_server_churn_under_load(void **state)
{
	(void)state;
	struct soak k = { .rng = 2463534242u };
	char stable_weight[32];
	snprintf(stable_weight, sizeof(stable_weight), "\"weight\":%d", W_STABLE);
	fx_stack_put(&stack, "soak", "s0", fx_stack_value(&stack, 0, stable_weight));
	fx_stack_put(&stack, "soak", "s1", fx_stack_value(&stack, 1, stable_weight));
	for (int i = 0; i < LIVE; i++)
		register_churned(&k, i);
	char *want = expected_names(&k);
	assert_true(fx_stack_wait_names(&stack, "soak", want, FX_STACK_WAIT_MS));
	free(want);
	k.worker = fx_stack_worker_pid(&stack);
	k.reloads = fx_stack_reloads(&stack);
	assert_true(k.worker > 0);

	char dur[32];
	snprintf(dur, sizeof(dur), "%ds", 1 + soak_s + TAIL_S);
	struct fx_load l;
	const char *args[] = { "-R", RATE, "-c", "256", "-t", "2", "-d", dur, "--timeout", "10s", "--quiet", NULL };
	fx_load_spawn(&l, fx_stack_url(&stack, "soak"), args);
	time_sleep_us(USEC_PER_SEC);
	int64_t start = time_mono_us();
	churn(&k, start + (int64_t)soak_s * USEC_PER_SEC, start);
	double churn_s = (double)(time_mono_us() - start) / 1e6;
	/* A response still running when the load's window ends counts as never completed: the
	 * slow ones stop here, and the last of them end well before the window does. */
	set_service_time(SLOW_BACKEND, FAST_TIME);
	fx_load_wait(&l, (soak_s + 60) * 1000);

	assert_non_null(l.json);
	long long sent = fx_jint(l.json, "requests", "sent", NULL);
	long long ok = fx_jint(l.json, "status", "2xx", NULL);
	long long not_sent = fx_jint(l.json, "errors", "not_sent", NULL);
	long long failed = fx_jint(l.json, "errors", "total", NULL) - not_sent;
	long long p99 = fx_jint(l.json, "latency_us", "uncorrected", "p99", NULL);
	long long max = fx_jint(l.json, "latency_us", "uncorrected", "max", NULL);
	json_t *slow = fx_testserver_stats(&stack.ts[SLOW_BACKEND]);
	long long slow_served = fx_jint(slow, "served", NULL);
	json_decref(slow);
	long long worker = fx_stack_worker_pid(&stack);
	fprintf(stderr,
		"# soak: %.0f s of churn, %ld cycles (%ld adds, %ld deletes, %.1f cycles/s); load %s req/s for %s: "
		"%lld sent, %lld 2xx, %lld failed, %lld never sent, p99 %.1f ms, max %.0f ms; %lld slow responses; "
		"up to %d servers in the backend, up to %d sessions (mean %.1f) on servers being deleted; "
		"del %.0f (refused %.0f), shutdown %.0f; worker pid %lld -> %lld, reloads %d -> %d\n",
		churn_s, k.dels, k.adds, k.dels, (double)k.dels / churn_s, RATE, dur, sent, ok, failed, not_sent,
		(double)p99 / 1000.0, (double)max / 1000.0, slow_served, k.max_servers, k.max_leaving_scur,
		k.samples ? (double)k.sum_leaving_scur / k.samples : 0.0,
		metric_kind("veltrix_runtime_operations_total", "del"), metric_kind("veltrix_runtime_errors_total", "del"),
		metric_kind("veltrix_runtime_operations_total", "shutdown"), k.worker, worker, k.reloads,
		fx_stack_reloads(&stack));
	if (failed != 0 || ok != sent)
		fail_msg("%lld of %lld requests failed (%lld answered 2xx):\n%s", failed, sent, ok, l.out);
	/* never sent: every one of the generator's connections was busy with a slow response (its
	 * own budget, on a loaded machine); no such request reached HAProxy */
	if (not_sent * 1000 > sent)
		fail_msg("%lld of %lld requests never sent: the load generator could not keep up", not_sent, sent);
	assert_true(sent >= (long long)soak_s * 1900);
	fx_load_free(&l);
	sample(&k, churn_s); /* the same worker, never reloaded */
	assert_true(k.dels >= soak_s * 5); /* at most 200 ms per cycle */

	/* Every change applied: each registration added once, each deregistration removed, and
	 * HAProxy's pool equal to what etcd holds. */
	want = expected_names(&k);
	char *in_etcd = etcd_names();
	assert_string_equal(in_etcd, want);
	assert_true(fx_stack_wait_names(&stack, "soak", want, SETTLE_MS));
	free(in_etcd);
	free(want);
	assert_int_equal(fx_stack_log_count(&stack, "msg=\"server added\" service=soak"), STABLE + LIVE + k.adds);
	assert_int_equal(fx_stack_log_count(&stack, "msg=\"server removed\" service=soak"), k.dels);
	assert_int_equal(fx_stack_log_count(&stack, "HAProxy is gone"), 0);
	char *log = hap_log();
	if (strstr(log, "exited with code") || strstr(log, "[ALERT]"))
		fail_msg("haproxy.log reports trouble:\n%s", log);
	free(log);
	sample(&k, churn_s);
}

int main(void)
{
	soak_s = parse_soak_seconds();
	alarm((unsigned)soak_s + 240); /* the fixtures stop every process on SIGALRM */
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_del_server_churn_under_load),
	};
	return cmocka_run_group_tests_name("del_server_soak", tests, setup, teardown);
}
