/* Benchmarks of `veltrix controller` (managed mode) against a local etcd and the HAProxy the
 * controller starts:
 * - latency: a registry change -> visible in `show servers state`, p50/p99 at 100 and 1,000
 *   changes/s. Each change is a put of a new operator weight for one of BENCH_CTL_POOL
 *   instances, sent on schedule by 4 writer threads; it counts from the moment the put is sent
 *   to the moment a poller (its own
 *   thread, polling `show servers state` on the runtime socket in a loop with 100 us pauses)
 *   sees the new weight. A change superseded by the next change to the same server before it was seen is
 *   counted as applied when the later one is.
 * - the same with a "bare watcher" instead of the controller: an etcd watch whose every event
 *   is applied straight to the runtime socket (`set server ... weight`), no validation, no
 *   reconcile: the floor, for the ratio.
 * - cold start: BENCH_CTL_INSTANCES instances over BENCH_CTL_SERVICES services already in etcd;
 *   from starting the controller (which renders the config and starts HAProxy) to every
 *   server present and ready; the controller's RSS then.
 * Env: BENCH_CTL_SECONDS (per rate, default 3), BENCH_CTL_RATES ("100,1000"; "none" skips the
 * latency runs), BENCH_CTL_POOL
 * (100), BENCH_CTL_INSTANCES (10000), BENCH_CTL_SERVICES (100), BENCH_CTL_BATCH_DELAY (the
 * controller's max_batch_delay, e.g. "0ms"; default: the configuration default), VELTRIX_BIN.
 * Health checks are off (`type: none`): the figures are the control plane's, not the checks'. */
#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/net.h"
#include "common/parse.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "fx.h"
#include "haproxy/hap.h"
#include "registry/etcd.h"

#define POLL_PAUSE_US 100 /* between two polls: resolution enough, and less load on 2 cores */
#define WEIGHT_CYCLE 249
#define WRITERS 4 /* weights 1..249 per server; 256 is the starting weight */

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_controller: %s: %s\n", what, msg ? msg : "");
	exit(1);
}

static int64_t env_int(const char *name, int64_t def, int64_t max)
{
	const char *s = getenv(name);
	int64_t v;
	return s && parse_i64(s, 1, max, &v) == 0 ? v : def;
}

static double pct_ms(int64_t *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), fx_cmp_i64);
	return fx_pct_ms(v, n, p);
}

/* ---------------------------------------------------------------- processes and files */

static char *tmp;
static pid_t etcd_pid, ctl_pid, hap_master;
static char etcd_url[64], metrics_port_s[16];
static char *cfg_path, *state_dir, *runtime_sock, *master_sock, *ctl_log;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	if (b)
		buf_append(b, p, size * n);
	return size * n;
}

/* POST body to etcd's gateway on a reused handle; dies on anything but 200. */
static void gateway(CURL *c, const char *path, const char *body)
{
	char url[128];
	snprintf(url, sizeof(url), "%s%s", etcd_url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	long status = 0;
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || status != 200)
		die(path, rc != CURLE_OK ? curl_easy_strerror(rc) : "HTTP status not 200");
}

static bool etcd_healthy(void)
{
	CURL *c = curl_easy_init();
	char url[128];
	struct buf b = BUF_INIT(4096);
	snprintf(url, sizeof(url), "%s/health", etcd_url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
	bool ok = curl_easy_perform(c) == CURLE_OK && b.data && strstr(b.data, "true");
	curl_easy_cleanup(c);
	buf_release(&b);
	return ok;
}

static void start_etcd(void)
{
	int cport = fx_unique_port(), pport = fx_unique_port();
	char curl_s[64], purl[64], cluster[96];
	snprintf(etcd_url, sizeof(etcd_url), "http://127.0.0.1:%d", cport);
	snprintf(curl_s, sizeof(curl_s), "%s", etcd_url);
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", pport);
	snprintf(cluster, sizeof(cluster), "b=%s", purl);
	char *data = xasprintf("%s/etcd", tmp), *log = xasprintf("%s/etcd.log", tmp);
	const char *argv[] = { "etcd", "--name", "b", "--data-dir", data, "--listen-client-urls", curl_s,
			       "--advertise-client-urls", curl_s, "--listen-peer-urls", purl,
			       "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster,
			       "--quota-backend-bytes", "4294967296", NULL };
	struct proc_opts o = { .stdout_path = log, .stderr_path = log, .new_pgrp = true, .die_with_parent = true };
	struct vxerr err;
	etcd_pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (etcd_pid < 0)
		die("etcd", err.msg);
	int64_t deadline = time_mono_us() + 20 * USEC_PER_SEC;
	while (!etcd_healthy())
		if (time_mono_us() > deadline)
			die("etcd", "not healthy within 20 s");
		else
			time_sleep_us(50000);
	free(data);
	free(log);
}

static void write_config(int n_services, const char *svc_prefix)
{
	struct buf b = BUF_INIT(1u << 20);
	const char *delay = getenv("BENCH_CTL_BATCH_DELAY");
	buf_printf(&b, "etcd:\n  endpoints: [%s]\nhaproxy:\n  mode: managed\n  state_dir: %s\n  maxconn: 4000\n"
		       "  nbthread: 1\ncontroller:\n  metrics: 127.0.0.1:%s\n",
		   etcd_url, state_dir, metrics_port_s);
	if (delay && *delay)
		buf_printf(&b, "  max_batch_delay: %s\n", delay);
	buf_printf(&b, "services:\n");
	for (int i = 0; i < n_services; i++)
		buf_printf(&b, "  - name: %s%03d\n    bind: 127.0.0.1:%d\n    health:\n      type: none\n", svc_prefix,
			   i, fx_unique_port());
	FILE *f = fopen(cfg_path, "w");
	if (!f || fwrite(b.data, 1, b.len, f) != b.len || fclose(f) != 0)
		die(cfg_path, strerror(errno));
	buf_release(&b);
}

static bool hap_answers(void)
{
	struct hap_rt_opts o = { .timeout_us = 200000 };
	struct hap_rt *rt = hap_rt_open(runtime_sock, &o, NULL);
	hap_rt_close(rt);
	return rt != NULL;
}

static void start_controller(void)
{
	const char *bin = getenv("VELTRIX_BIN");
	const char *argv[] = { bin && *bin ? bin : "build/release/veltrix", "controller", "-c", cfg_path, NULL };
	struct proc_opts o = { .stdout_path = ctl_log, .stderr_path = ctl_log, .new_pgrp = true, .die_with_parent = true };
	struct vxerr err;
	ctl_pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (ctl_pid < 0)
		die("controller", err.msg);
}

static void wait_controller(void)
{
	int64_t deadline = time_mono_us() + 30 * USEC_PER_SEC;
	while (!hap_answers()) {
		if (!proc_alive(ctl_pid) || time_mono_us() > deadline)
			die("controller", "HAProxy did not answer (see the controller log)");
		time_sleep_us(20000);
	}
	struct hap_proc_list l;
	struct vxerr err;
	if (hap_proc_show(master_sock, 5 * USEC_PER_SEC, &l, &err) != 0)
		die("show proc", err.msg);
	hap_master = (pid_t)l.master_pid;
}

static void stop_controller(void)
{
	if (ctl_pid > 0)
		proc_stop(ctl_pid, 5000);
	ctl_pid = 0;
}

static void stop_haproxy(void)
{
	if (hap_master <= 0)
		return;
	kill(-hap_master, SIGTERM);
	int64_t deadline = time_mono_us() + 5 * USEC_PER_SEC;
	while (kill(hap_master, 0) == 0 && time_mono_us() < deadline)
		time_sleep_us(20000);
	kill(-hap_master, SIGKILL);
	hap_master = 0;
}

static void cleanup(void)
{
	stop_controller();
	stop_haproxy();
	if (etcd_pid > 0)
		proc_stop(etcd_pid, 5000);
	etcd_pid = 0;
	if (tmp && !getenv("BENCH_KEEP"))
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static long status_kib(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

/* ---------------------------------------------------------------- registry writes */

static char *put_body(const char *key, const char *value)
{
	char k[512], v[512];
	b64_encode(key, strlen(key), k, sizeof(k));
	b64_encode(value, strlen(value), v, sizeof(v));
	return xasprintf("{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
}

static void put_weight(CURL *c, int server, int weight)
{
	char key[128], value[128];
	snprintf(key, sizeof(key), "/veltrix/services/lat000/i%04d", server);
	snprintf(value, sizeof(value), "{\"address\":\"127.0.0.1\",\"port\":%d,\"weight\":%d}", 20000 + server, weight);
	char *body = put_body(key, value);
	gateway(c, "/v3/kv/put", body);
	free(body);
}

/* Puts n instances of service svc in transactions of 100 puts. */
static void put_bulk(CURL *c, const char *svc, int first, int n)
{
	for (int off = 0; off < n; off += 100) {
		struct buf b = BUF_INIT(1u << 20);
		buf_printf(&b, "{\"success\":[");
		for (int i = off; i < n && i < off + 100; i++) {
			char key[128], value[128], k[256], v[256];
			snprintf(key, sizeof(key), "/veltrix/services/%s/i%05d", svc, first + i);
			snprintf(value, sizeof(value), "{\"address\":\"127.0.0.1\",\"port\":%d}", 10000 + (first + i) % 50000);
			b64_encode(key, strlen(key), k, sizeof(k));
			b64_encode(value, strlen(value), v, sizeof(v));
			buf_printf(&b, "%s{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}}", i > off ? "," : "", k, v);
		}
		buf_printf(&b, "]}");
		gateway(c, "/v3/kv/txn", b.data);
		buf_release(&b);
	}
}

/* ---------------------------------------------------------------- one latency run */

struct run {
	int pool;
	int64_t n;              /* changes planned */
	int rate;
	int64_t start_us;
	int64_t *sent_us;       /* send time of change i (atomic: writers store, the poller loads) */
	int64_t *seen_us;       /* first time its effect was seen */
	atomic_bool stop;
	int *applied;           /* per server: changes seen so far */
	int64_t polls;
};

/* Change i sets server i % pool to weight_of(i / pool + 1): successive weights of one server
 * always differ, and none is the starting 256. */
static int weight_of(int64_t k)
{
	return 1 + (int)((k - 1) % WEIGHT_CYCLE);
}

/* Server s shows weight w: every change to s up to the one that set w is applied. */
static void saw(struct run *r, int s, int w, int64_t now)
{
	for (int k = r->applied[s] + 1; k <= r->applied[s] + WEIGHT_CYCLE; k++) {
		int64_t i = (int64_t)(k - 1) * r->pool + s;
		if (i >= r->n || __atomic_load_n(&r->sent_us[i], __ATOMIC_ACQUIRE) == 0)
			return; /* not sent yet: the weight is an older one */
		if (weight_of(k) != w)
			continue;
		for (int j = r->applied[s] + 1; j <= k; j++)
			r->seen_us[(int64_t)(j - 1) * r->pool + s] = now;
		r->applied[s] = k;
		return;
	}
}

/* A bare prompt-mode connection: `hap_rt` asks `show info` before every batch, which would
 * double the poller's load on HAProxy, itself part of what is measured. */
struct raw_cli {
	int fd;
	struct buf in;
};

static void raw_read_prompt(struct raw_cli *r)
{
	r->in.len = 0;
	char chunk[65536];
	while (r->in.len < 3 || memcmp(r->in.data + r->in.len - 3, "\n> ", 3) != 0) {
		ssize_t n = read(r->fd, chunk, sizeof(chunk));
		if (n <= 0 || buf_append(&r->in, chunk, (size_t)n) != 0)
			die("poller", "runtime socket closed or reply too large");
	}
	r->in.len -= 2; /* drop "> " */
	r->in.data[r->in.len] = '\0';
}

static void raw_open(struct raw_cli *r)
{
	struct vxerr err;
	buf_init(&r->in, 16u << 20);
	r->fd = net_connect_unix(runtime_sock, &err);
	if (r->fd < 0)
		die("poller", err.msg);
	if (net_write_all(r->fd, "prompt\n", 7) != 0)
		die("poller", strerror(errno));
	raw_read_prompt(r);
}

static void *poller(void *arg)
{
	struct run *r = arg;
	struct raw_cli cli;
	struct vxerr err;
	static const char cmd[] = "show servers state lat000\n";
	raw_open(&cli);
	while (!atomic_load(&r->stop)) {
		struct hap_servers_state st;
		if (net_write_all(cli.fd, cmd, sizeof(cmd) - 1) != 0)
			die("poller", strerror(errno));
		raw_read_prompt(&cli);
		int64_t now = time_mono_us();
		if (hap_parse_servers_state(cli.in.data, cli.in.len, &st, &err) != 0)
			die("poller", err.msg);
		for (size_t i = 0; i < st.n; i++) {
			int64_t s;
			if (st.rows[i].name[0] == 'i' && parse_i64(st.rows[i].name + 1, 0, r->pool - 1, &s) == 0)
				saw(r, (int)s, (int)st.rows[i].uweight, now);
		}
		hap_servers_state_release(&st);
		r->polls++;
		time_sleep_us(POLL_PAUSE_US);
	}
	close(cli.fd);
	buf_release(&cli.in);
	return NULL;
}

static bool all_at(int pool, int weight)
{
	struct hap_rt *rt = hap_rt_open(runtime_sock, NULL, NULL);
	struct hap_cmd cmd;
	struct hap_reply reply;
	struct hap_servers_state st;
	int n = 0;
	hap_cmd_show_servers_state(&cmd, "lat000", NULL);
	if (rt && hap_rt_exec(rt, &cmd, &reply, NULL) == 0) {
		if (hap_parse_servers_state(reply.text, reply.len, &st, NULL) == 0) {
			for (size_t i = 0; i < st.n; i++)
				n += st.rows[i].uweight == weight;
			hap_servers_state_release(&st);
		}
		hap_replies_release(&reply, 1);
	}
	hap_rt_close(rt);
	return n == pool;
}

/* Every server at weight 256, HAProxy showing it: the state each run starts from. */
static void reset_pool(CURL *c, int pool)
{
	for (int attempt = 0; attempt < 10; attempt++) {
		/* Again after a while: a watcher that just started may have missed the first round. */
		for (int s = 0; s < pool; s++)
			put_weight(c, s, 256);
		int64_t deadline = time_mono_us() + 2 * USEC_PER_SEC;
		while (time_mono_us() < deadline) {
			if (all_at(pool, 256))
				return;
			time_sleep_us(20000);
		}
	}
	die("reset", "the pool did not reach weight 256 (is a controller or watcher running?)");
}

/* Writer w sends changes w, w + WRITERS, ... on their schedule, on its own connection: one
 * sequential writer cannot keep 1,000 puts/s when a put takes a millisecond. With a pool that is
 * a multiple of WRITERS, all changes of one server come from one writer, in order. */
struct writer {
	struct run *r;
	int index;
	int64_t done_us;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct run *r = w->r;
	CURL *c = curl_easy_init();
	for (int64_t i = w->index; i < r->n; i += WRITERS) {
		int64_t due = r->start_us + i * USEC_PER_SEC / r->rate, now = time_mono_us();
		if (due > now)
			time_sleep_us(due - now);
		__atomic_store_n(&r->sent_us[i], time_mono_us(), __ATOMIC_RELEASE);
		put_weight(c, (int)(i % r->pool), weight_of(i / r->pool + 1));
	}
	w->done_us = time_mono_us();
	curl_easy_cleanup(c);
	return NULL;
}

static void latency_run(CURL *c, const char *who, int pool, int rate, int seconds)
{
	struct run r = { .pool = pool, .rate = rate, .n = (int64_t)rate * seconds };
	r.sent_us = xcalloc((size_t)r.n, sizeof(*r.sent_us));
	r.seen_us = xcalloc((size_t)r.n, sizeof(*r.seen_us));
	r.applied = xcalloc((size_t)pool, sizeof(*r.applied));
	reset_pool(c, pool);
	pthread_t th, wth[WRITERS];
	struct writer wr[WRITERS];
	pthread_create(&th, NULL, poller, &r);
	r.start_us = time_mono_us();
	for (int i = 0; i < WRITERS; i++) {
		wr[i] = (struct writer){ &r, i, 0 };
		pthread_create(&wth[i], NULL, writer_main, &wr[i]);
	}
	int64_t sent_for = 0;
	for (int i = 0; i < WRITERS; i++) {
		pthread_join(wth[i], NULL);
		if (wr[i].done_us - r.start_us > sent_for)
			sent_for = wr[i].done_us - r.start_us;
	}
	int64_t deadline = time_mono_us() + 5 * USEC_PER_SEC;
	while (time_mono_us() < deadline && r.seen_us[r.n - 1] == 0)
		time_sleep_us(10000);
	time_sleep_us(20000);
	atomic_store(&r.stop, true);
	pthread_join(th, NULL);
	int64_t *lat = xcalloc((size_t)r.n, sizeof(*lat));
	size_t n = 0, missing = 0;
	for (int64_t i = 0; i < r.n; i++) {
		if (r.seen_us[i] > 0)
			lat[n++] = r.seen_us[i] - r.sent_us[i];
		else
			missing++;
	}
	double achieved = (double)r.n * 1e6 / (double)sent_for;
	double p50 = pct_ms(lat, n, 0.50), p99 = pct_ms(lat, n, 0.99), max = pct_ms(lat, n, 1.0);
	printf("latency %-12s %5d changes/s (achieved %6.0f): n=%zu p50=%.2f ms p99=%.2f ms max=%.2f ms "
	       "unseen=%zu polls=%lld\n",
	       who, rate, achieved, n, p50, p99, max, missing, (long long)r.polls);
	fflush(stdout);
	free(lat);
	free(r.sent_us);
	free(r.seen_us);
	free(r.applied);
}

/* ---------------------------------------------------------------- the bare watcher */

struct bare {
	struct ev_loop *loop;
	struct hap_rt *rt;
	atomic_bool stop;
	ev_timer tick;
};

static void bare_events(void *arg, const struct etcd_watch_batch *b)
{
	struct bare *w = arg;
	for (size_t i = 0; i < b->n_events; i++) {
		const struct etcd_event *e = &b->events[i];
		const char *slash = strrchr(e->kv.key, '/');
		json_t *j = e->type == ETCD_EVENT_PUT && slash ? json_loadb(e->kv.value, e->kv.value_len, 0, NULL) : NULL;
		json_t *wt = j ? json_object_get(j, "weight") : NULL;
		struct hap_cmd cmd;
		struct hap_reply reply;
		if (wt && hap_cmd_set_weight(&cmd, "lat000", slash + 1, (int)json_integer_value(wt), NULL) == 0 &&
		    hap_rt_exec(w->rt, &cmd, &reply, NULL) == 0)
			hap_replies_release(&reply, 1);
		json_decref(j);
	}
}

static void bare_resync(void *arg, enum etcd_resync_reason reason, const char *detail)
{
	(void)arg;
	(void)reason;
	die("bare watcher", detail);
}

static void bare_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)revents;
	struct bare *w = t->data;
	if (atomic_load(&w->stop))
		ev_break(loop, EVBREAK_ALL);
}

static void *bare_main(void *arg)
{
	struct bare *w = arg;
	struct vxerr err;
	const char *eps[] = { etcd_url };
	struct etcd_opts eo = { .endpoints = eps, .n_endpoints = 1 };
	w->loop = ev_loop_new(EVFLAG_AUTO);
	struct etcd_client *c = etcd_client_new(w->loop, &eo, &err);
	w->rt = hap_rt_open(runtime_sock, NULL, &err);
	if (!c || !w->rt)
		die("bare watcher", err.msg);
	static const char prefix[] = "/veltrix/services/lat000/";
	struct etcd_watch_req req = { .key = prefix, .prefix = true };
	struct etcd_watch_cbs cbs = { bare_events, bare_resync, NULL, w };
	struct etcd_watch *watch = etcd_watch_start(c, &req, &cbs, &err);
	if (!watch)
		die("bare watcher", err.msg);
	ev_timer_init(&w->tick, bare_tick, 0.02, 0.02);
	w->tick.data = w;
	ev_timer_start(w->loop, &w->tick);
	ev_run(w->loop, 0);
	etcd_watch_free(watch);
	etcd_client_free(c);
	hap_rt_close(w->rt);
	ev_loop_destroy(w->loop);
	return NULL;
}

/* ---------------------------------------------------------------- cold start */

static size_t ready_servers(void)
{
	struct hap_rt_opts o = { .timeout_us = 2 * USEC_PER_SEC, .max_reply = 64u << 20 };
	struct hap_rt *rt = hap_rt_open(runtime_sock, &o, NULL);
	struct hap_cmd cmd;
	struct hap_reply reply;
	struct hap_servers_state st;
	size_t n = 0;
	hap_cmd_show_servers_state(&cmd, NULL, NULL);
	if (rt && hap_rt_exec(rt, &cmd, &reply, NULL) == 0) {
		if (hap_parse_servers_state(reply.text, reply.len, &st, NULL) == 0) {
			for (size_t i = 0; i < st.n; i++)
				n += hap_admin_from_bits(st.rows[i].admin_state) == HAP_ADMIN_READY;
			hap_servers_state_release(&st);
		}
		hap_replies_release(&reply, 1);
	}
	hap_rt_close(rt);
	return n;
}

static void cold_start(CURL *c, int instances, int services)
{
	int per = instances / services;
	for (int s = 0; s < services; s++) {
		char svc[16];
		snprintf(svc, sizeof(svc), "cold%03d", s);
		put_bulk(c, svc, s * per, per);
	}
	free(state_dir);
	state_dir = xasprintf("%s/state-cold", tmp);
	free(runtime_sock);
	runtime_sock = xasprintf("%s/runtime.sock", state_dir);
	free(master_sock);
	master_sock = xasprintf("%s/master.sock", state_dir);
	write_config(services, "cold");
	int64_t t0 = time_mono_us();
	start_controller();
	wait_controller();
	int64_t t_hap = time_mono_us();
	size_t want = (size_t)per * (size_t)services, have = 0;
	int64_t deadline = t0 + 120 * USEC_PER_SEC;
	while ((have = ready_servers()) < want) {
		if (time_mono_us() > deadline || !proc_alive(ctl_pid))
			die("cold start", "not converged within 120 s");
		time_sleep_us(10000);
	}
	int64_t t1 = time_mono_us();
	long rss = status_kib(ctl_pid, "VmRSS"), hwm = status_kib(ctl_pid, "VmHWM");
	time_sleep_us(3 * USEC_PER_SEC); /* a few feedback rounds over every service */
	long rss3 = status_kib(ctl_pid, "VmRSS"), hwm3 = status_kib(ctl_pid, "VmHWM");
	printf("cold start %d instances / %d services: converged in %.0f ms (HAProxy answering after %.0f ms); "
	       "controller RSS %.1f MiB (peak %.1f MiB), after 3 s %.1f MiB (peak %.1f MiB)\n",
	       (int)want, services, (double)(t1 - t0) / 1000.0, (double)(t_hap - t0) / 1000.0, rss / 1024.0,
	       hwm / 1024.0, rss3 / 1024.0, hwm3 / 1024.0);
	fflush(stdout);
}

/* The mean of a histogram of the controller's /metrics, in ms (-1 when absent). */
static double metric_mean_ms(const char *name)
{
	CURL *c = curl_easy_init();
	char url[128], key[128];
	struct buf b = BUF_INIT(8u << 20);
	snprintf(url, sizeof(url), "http://127.0.0.1:%s/metrics", metrics_port_s);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 2000L);
	double sum = -1, count = 0;
	if (curl_easy_perform(c) == CURLE_OK && b.data) {
		snprintf(key, sizeof(key), "\n%s_sum ", name);
		const char *p = strstr(b.data, key);
		sum = p ? strtod(p + strlen(key), NULL) : -1;
		snprintf(key, sizeof(key), "\n%s_count ", name);
		p = strstr(b.data, key);
		count = p ? strtod(p + strlen(key), NULL) : 0;
	}
	curl_easy_cleanup(c);
	buf_release(&b);
	return sum >= 0 && count > 0 ? sum * 1000 / count : -1;
}

/* The controller at each rate, then the bare watcher on the same HAProxy and pool. */
static void latency_phases(CURL *c, int pool, const int *rates, int n_rates, int seconds)
{
	write_config(1, "lat");
	start_controller();
	wait_controller();
	for (int i = 0; i < n_rates; i++)
		latency_run(c, "controller", pool, rates[i], seconds);
	printf("controller's own view over these runs: reconcile mean %.2f ms, registry change -> HAProxy "
	       "acknowledged mean %.2f ms\n",
	       metric_mean_ms("veltrix_reconcile_seconds"), metric_mean_ms("veltrix_registry_apply_seconds"));
	stop_controller(); /* HAProxy keeps serving with the pool */
	struct bare w = { 0 };
	pthread_t th;
	pthread_create(&th, NULL, bare_main, &w);
	for (int i = 0; i < n_rates; i++)
		latency_run(c, "bare-watcher", pool, rates[i], seconds);
	atomic_store(&w.stop, true);
	pthread_join(th, NULL);
	stop_haproxy();
}

/* run-bench.sh's timeout sends SIGTERM: HAProxy is no child of ours, stop it here too. */
static void on_signal(int sig)
{
	if (hap_master > 0)
		kill(-hap_master, SIGKILL);
	if (ctl_pid > 0)
		kill(ctl_pid, SIGKILL);
	if (etcd_pid > 0)
		kill(etcd_pid, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---------------------------------------------------------------- main */

static int parse_rates(int *rates, int max)
{
	const char *s = getenv("BENCH_CTL_RATES");
	char copy[128];
	int n = 0;
	if (s && strcmp(s, "none") == 0)
		return 0;
	snprintf(copy, sizeof(copy), "%s", s && *s ? s : "100,1000");
	for (char *p = copy; p && *p && n < max;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		int64_t v;
		if (parse_i64(p, 1, 100000, &v) == 0)
			rates[n++] = (int)v;
		p = comma ? comma + 1 : NULL;
	}
	return n;
}

int main(void)
{
	int seconds = (int)env_int("BENCH_CTL_SECONDS", 3, 3600);
	int pool = (int)env_int("BENCH_CTL_POOL", 100, 1000);
	pool = (pool + WRITERS - 1) / WRITERS * WRITERS; /* see struct writer */
	int instances = (int)env_int("BENCH_CTL_INSTANCES", 10000, 1000000);
	int services = (int)env_int("BENCH_CTL_SERVICES", 100, 1000);
	int rates[8], n_rates = parse_rates(rates, 8);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const char *base = getenv("TMPDIR");
	tmp = xasprintf("%s/vx-bench-ctl-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmp))
		die("mkdtemp", strerror(errno));
	atexit(cleanup);
	cfg_path = xasprintf("%s/veltrix.yaml", tmp);
	ctl_log = xasprintf("%s/controller.log", tmp);
	state_dir = xasprintf("%s/state", tmp);
	runtime_sock = xasprintf("%s/runtime.sock", state_dir);
	master_sock = xasprintf("%s/master.sock", state_dir);
	snprintf(metrics_port_s, sizeof(metrics_port_s), "%d", fx_unique_port());
	start_etcd();
	CURL *c = curl_easy_init();

	if (n_rates > 0)
		latency_phases(c, pool, rates, n_rates, seconds);
	cold_start(c, instances, services);
	curl_easy_cleanup(c);
	printf("(logs: %s%s)\n", tmp, getenv("BENCH_KEEP") ? "" : ", removed; BENCH_KEEP=1 keeps them");
	return 0;
}
