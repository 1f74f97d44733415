/* Benchmarks of the etcd client against a local etcd it starts itself (or $VX_BENCH_ETCD):
 * - snapshot: list N keys at one revision (time, peak RSS);
 * - watch throughput: events/s when replaying N changes from history (bound by etcd), the
 *   client's own decoding rate for such a message, and live while N keys change (writes in
 *   txns of 100);
 * - latency: put -> watch callback, p50/p99, next to `etcdctl watch` on the same puts.
 * Env: BENCH_KEYS (default 10000), BENCH_LAT_N (300), BENCH_LAT_RATE (500 puts/s).
 * Prints one line per figure; exits non-zero when a step fails. */
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <ftw.h>
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
#include "registry/etcd.h"
#include "registry/etcd_codec.h"

#define SNAP "/bench/snap/"
#define LIVE "/bench/live/"
#define LAT "/bench/lat/"
#define TXN_PUTS 100

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_etcd: %s: %s\n", what, msg);
	exit(1);
}

static int64_t env_int(const char *name, int64_t def, int64_t max)
{
	const char *s = getenv(name);
	int64_t v;
	return s && parse_i64(s, 1, max, &v) == 0 ? v : def;
}

/* VmRSS or VmHWM in KiB. */
static long proc_kib(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static double pct_ms(int64_t *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), fx_cmp_i64);
	return fx_pct_ms(v, n, p);
}

/* ---------------------------------------------------------------- a local etcd */

static char *tmp;
static pid_t etcd_pid;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void stop_etcd(void)
{
	if (etcd_pid > 0)
		proc_stop(etcd_pid, 5000);
	if (tmp)
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(tmp);
}

static void start_etcd(char *url, size_t cap)
{
	const char *base = getenv("TMPDIR");
	tmp = xasprintf("%s/vx-bench-etcd-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmp))
		die("mkdtemp", strerror(errno));
	int cp = net_free_port(), pp = net_free_port();
	char *data = xasprintf("%s/data", tmp), *log = xasprintf("%s/etcd.log", tmp);
	char *peer = xasprintf("http://127.0.0.1:%d", pp), *ic = xasprintf("b=%s", peer);
	snprintf(url, cap, "http://127.0.0.1:%d", cp);
	const char *argv[] = { "etcd", "--name", "b", "--data-dir", data, "--listen-client-urls", url,
			       "--advertise-client-urls", url, "--listen-peer-urls", peer, "--initial-advertise-peer-urls",
			       peer, "--initial-cluster", ic, "--log-outputs", "stderr", "--logger", "zap", NULL };
	struct proc_opts o = { .stdout_path = log, .stderr_path = log, .new_pgrp = true, .die_with_parent = true };
	struct vxerr err;
	etcd_pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (etcd_pid < 0)
		die("starting etcd", err.msg);
	atexit(stop_etcd);
	free(data);
	free(log);
	free(peer);
	free(ic);
}

static void wait_ready(struct etcd_client *c)
{
	struct vxerr err;
	for (int i = 0; i < 200; i++) {
		struct etcd_resp r;
		int rc = etcd_endpoint_status(c, 0, &r, &err);
		etcd_resp_release(&r);
		if (rc == 0)
			return;
		time_sleep_us(100 * USEC_PER_MS);
	}
	die("etcd not ready", err.msg);
}

/* ---------------------------------------------------------------- writing N keys */

static const char *instance_value(int i, char *buf, size_t cap)
{
	snprintf(buf, cap,
		 "{\"address\":\"10.%d.%d.%d\",\"port\":8080,\"capacity\":100,\"state\":\"up\",\"zone\":\"zone-%d\","
		 "\"version\":\"1.4.2\",\"tags\":[\"http\",\"canary\"]}",
		 (i >> 16) & 255, (i >> 8) & 255, i & 255, i % 3);
	return buf;
}

/* One txn putting keys [from, from+n) under prefix. */
static int put_batch(struct etcd_client *c, const char *prefix, int from, int n, etcd_resp_cb cb, void *arg)
{
	static char keys[TXN_PUTS][64], vals[TXN_PUTS][256];
	struct etcd_txn_op ops[TXN_PUTS];
	struct vxerr err;
	for (int k = 0; k < n; k++) {
		snprintf(keys[k], sizeof(keys[k]), "%sinstance-%06d", prefix, from + k);
		ops[k] = (struct etcd_txn_op){ .type = ETCD_OP_PUT,
					       .put = { .key = keys[k], .value = instance_value(from + k, vals[k], 256) } };
	}
	struct etcd_txn_req t = { NULL, 0, ops, (size_t)n, NULL, 0 };
	if (cb)
		return etcd_txn_async(c, &t, cb, arg, &err);
	if (etcd_txn(c, &t, NULL, &err) != 0)
		die("populate", err.msg);
	return 0;
}

static int64_t populate(struct etcd_client *c, const char *prefix, int n)
{
	struct etcd_resp r;
	struct vxerr err;
	struct etcd_range_req probe = { .key = prefix, .prefix = true, .count_only = true };
	if (etcd_range(c, &probe, &r, &err) != 0)
		die("range", err.msg);
	int64_t before = r.header.revision;
	etcd_resp_release(&r);
	for (int i = 0; i < n; i += TXN_PUTS)
		put_batch(c, prefix, i, n - i < TXN_PUTS ? n - i : TXN_PUTS, NULL, NULL);
	return before + 1;
}

/* ---------------------------------------------------------------- snapshot */

static void bench_snapshot(struct etcd_client *c, int n)
{
	struct etcd_resp r;
	struct vxerr err;
	long base = proc_kib("VmRSS");
	FILE *cr = fopen("/proc/self/clear_refs", "w"); /* resets VmHWM to the current RSS */
	if (cr) {
		fputs("5", cr);
		fclose(cr);
	}
	int64_t t0 = time_mono_us();
	if (etcd_list(c, SNAP, 0, 1000, &r, &err) != 0)
		die("snapshot", err.msg);
	int64_t us = time_mono_us() - t0;
	long peak = proc_kib("VmHWM");
	if ((int)r.n_kvs != n)
		die("snapshot", "wrong number of keys");
	printf("etcd snapshot: %zu keys at revision %lld in %.1f ms (%.0f keys/s), peak RSS %.1f MiB (+%.1f MiB over %.1f)\n",
	       r.n_kvs, (long long)r.header.revision, (double)us / 1000.0, (double)n * 1e6 / (double)us,
	       (double)peak / 1024.0, (double)(peak - base) / 1024.0, (double)base / 1024.0);
	etcd_resp_release(&r);
}

/* ---------------------------------------------------------------- watch throughput */

struct counter {
	size_t n;
	size_t want;
	int64_t first_us, last_us;
	bool failed;
};

static void count_events(void *arg, const struct etcd_watch_batch *b)
{
	struct counter *k = arg;
	if (b->n_events && !k->first_us)
		k->first_us = time_mono_us();
	k->n += b->n_events;
	if (k->n >= k->want && !k->last_us)
		k->last_us = time_mono_us();
}

static void count_resync(void *arg, enum etcd_resync_reason reason, const char *detail)
{
	struct counter *k = arg;
	fprintf(stderr, "bench_etcd: resync (%s): %s\n", etcd_resync_reason_name(reason), detail);
	k->failed = true;
}

static void run_until_counted(struct etcd_client *c, struct counter *k, int64_t timeout_us)
{
	int64_t deadline = time_mono_us() + timeout_us;
	while (k->n < k->want && !k->failed && time_mono_us() < deadline)
		ev_run(etcd_client_loop(c), EVRUN_ONCE);
	if (k->n < k->want)
		die("watch", "not every event arrived");
}

static void bench_replay(struct etcd_client *c, int64_t from, int n)
{
	struct counter k = { .want = (size_t)n };
	struct etcd_watch_cbs cbs = { count_events, count_resync, NULL, &k };
	struct etcd_watch_req req = { .key = SNAP, .prefix = true, .start_revision = from };
	struct vxerr err;
	int64_t t0 = time_mono_us();
	struct etcd_watch *w = etcd_watch_start(c, &req, &cbs, &err);
	run_until_counted(c, &k, 60 * USEC_PER_SEC);
	double s = (double)(k.last_us - t0) / 1e6;
	printf("etcd watch replay: %zu events from history in %.1f ms (%.0f events/s received; bound by etcd)\n", k.n, s * 1000.0,
	       (double)k.n / s);
	etcd_watch_free(w);
}

/* The client's own cost: one watch message of n events (as etcd batches a replay), decoded. */
static void bench_decode(int n)
{
	struct buf b = BUF_INIT((size_t)1 << 30);
	char val[256], enc[512], key[64], kenc[128];
	buf_puts(&b, "{\"result\":{\"header\":{\"cluster_id\":\"14841639068965178418\",\"member_id\":"
		     "\"10276657743932975437\",\"revision\":\"20001\",\"raft_term\":\"2\"},\"events\":[");
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), SNAP "instance-%06d", i);
		b64_encode(key, strlen(key), kenc, sizeof(kenc));
		instance_value(i, val, sizeof(val));
		b64_encode(val, strlen(val), enc, sizeof(enc));
		buf_printf(&b, "%s{\"kv\":{\"key\":\"%s\",\"create_revision\":\"%d\",\"mod_revision\":\"%d\","
			       "\"version\":\"1\",\"value\":\"%s\"}}", i ? "," : "", kenc, i + 2, i + 2, enc);
	}
	buf_puts(&b, "]}}");
	struct etcd_watch_msg m;
	struct vxerr err;
	int64_t t0 = time_mono_us();
	if (etcd_dec_watch_msg(b.data, b.len, &m, &err) != 0)
		die("decode", err.msg);
	double s = (double)(time_mono_us() - t0) / 1e6;
	printf("etcd watch decode: %zu events (%.1f MiB message) in %.1f ms (%.0f events/s, client CPU only)\n",
	       m.n_events, (double)b.len / 1048576.0, s * 1000.0, (double)m.n_events / s);
	etcd_watch_msg_release(&m);
	buf_release(&b);
}

struct writer {
	struct etcd_client *c;
	int next, n;
};

static void write_next(void *arg, struct etcd_resp *r)
{
	struct writer *wr = arg;
	if (r && r->code != ETCD_OK)
		die("live writes", r->error ? r->error : "failed");
	if (wr->next >= wr->n)
		return;
	int k = wr->n - wr->next < TXN_PUTS ? wr->n - wr->next : TXN_PUTS;
	put_batch(wr->c, LIVE, wr->next, k, write_next, wr);
	wr->next += k;
}

static void bench_live(struct etcd_client *c, int n)
{
	struct counter k = { .want = (size_t)n };
	struct etcd_watch_cbs cbs = { count_events, count_resync, NULL, &k };
	struct etcd_watch_req req = { .key = LIVE, .prefix = true };
	struct vxerr err;
	struct etcd_watch *w = etcd_watch_start(c, &req, &cbs, &err);
	while (etcd_watch_delivered(w) == 0)
		ev_run(etcd_client_loop(c), EVRUN_ONCE);
	struct writer wr = { c, 0, n };
	int64_t t0 = time_mono_us();
	write_next(&wr, NULL);
	run_until_counted(c, &k, 120 * USEC_PER_SEC);
	double s = (double)(k.last_us - t0) / 1e6;
	printf("etcd watch live: %zu events while %d keys changed in %.1f ms (%.0f events/s; bound by the writer)\n", k.n,
	       n, s * 1000.0, (double)k.n / s);
	etcd_watch_free(w);
}

/* ---------------------------------------------------------------- latency vs etcdctl */

struct lat {
	struct etcd_client *c;
	int n, sent;
	int64_t *t0, *ours, *ctl;
	size_t got_ours, got_ctl;
	ev_timer tick;
	ev_io pipe;
	int fd;
	char line[512];
	size_t line_len;
	int ctl_state; /* 0: expect event type, 1: key, 2: value */
	bool ctl_warm;
};

static void record(int64_t *t0, int64_t *arr, size_t *got, const char *val, size_t len, int n)
{
	int64_t i;
	if (parse_i64_n(val, len, 0, n - 1, &i) == 0 && t0[i] && !arr[i]) {
		arr[i] = time_mono_us() - t0[i];
		(*got)++;
	}
}

static void lat_events(void *arg, const struct etcd_watch_batch *b)
{
	struct lat *l = arg;
	for (size_t i = 0; i < b->n_events; i++)
		if (b->events[i].kv.value)
			record(l->t0, l->ours, &l->got_ours, b->events[i].kv.value, b->events[i].kv.value_len, l->n);
}

/* etcdctl prints each event as three lines: PUT, the key, the value. */
static void ctl_line(struct lat *l, const char *s, size_t n)
{
	if (l->ctl_state == 0 && (n == 3 && memcmp(s, "PUT", 3) == 0)) {
		l->ctl_state = 1;
	} else if (l->ctl_state == 1) {
		l->ctl_state = 2;
	} else if (l->ctl_state == 2) {
		l->ctl_state = 0;
		if (n == 4 && memcmp(s, "warm", 4) == 0)
			l->ctl_warm = true;
		else
			record(l->t0, l->ctl, &l->got_ctl, s, n, l->n);
	}
}

static void on_pipe(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct lat *l = w->data;
	char buf[4096];
	ssize_t got = read(l->fd, buf, sizeof(buf));
	for (ssize_t i = 0; i < got; i++) {
		if (buf[i] == '\n') {
			ctl_line(l, l->line, l->line_len);
			l->line_len = 0;
		} else if (l->line_len < sizeof(l->line)) {
			l->line[l->line_len++] = buf[i];
		}
	}
}

static void lat_put_done(void *arg, struct etcd_resp *r)
{
	(void)arg;
	if (r->code != ETCD_OK)
		die("latency put", r->error ? r->error : "failed");
}

static void put_one(struct lat *l, const char *key, const char *val)
{
	struct etcd_put_req p = { .key = key, .value = val };
	struct vxerr err;
	etcd_put_async(l->c, &p, lat_put_done, l, &err);
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct lat *l = t->data;
	char key[64], val[16];
	if (l->sent >= l->n) {
		ev_timer_stop(etcd_client_loop(l->c), t);
		return;
	}
	snprintf(key, sizeof(key), LAT "k%06d", l->sent);
	snprintf(val, sizeof(val), "%d", l->sent);
	l->t0[l->sent++] = time_mono_us();
	put_one(l, key, val);
}

static pid_t start_etcdctl(const char *url, struct lat *l)
{
	char *fifo = xasprintf("%s/ctl.fifo", tmp);
	if (mkfifo(fifo, 0600) != 0)
		die("mkfifo", strerror(errno));
	l->fd = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC); /* a reader first, so the writer's open returns */
	const char *argv[] = { "etcdctl", "--endpoints", url, "watch", "--prefix", LAT, NULL };
	struct proc_opts o = { .stdout_path = fifo, .new_pgrp = true, .die_with_parent = true };
	setenv("ETCDCTL_API", "3", 1);
	struct vxerr err;
	pid_t pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (pid < 0)
		die("starting etcdctl", err.msg);
	free(fifo);
	return pid;
}

static void run_loop_ms(struct etcd_client *c, int64_t ms, bool (*done)(struct lat *), struct lat *l)
{
	int64_t deadline = time_mono_us() + ms * USEC_PER_MS;
	while (!done(l) && time_mono_us() < deadline)
		ev_run(etcd_client_loop(c), EVRUN_ONCE);
}

static bool ctl_is_warm(struct lat *l)
{
	return l->ctl_warm;
}

static bool all_seen(struct lat *l)
{
	return l->got_ours == (size_t)l->n && l->got_ctl == (size_t)l->n;
}

static void bench_latency(struct etcd_client *c, const char *url, int n, int rate)
{
	struct lat l = { .c = c, .n = n };
	l.t0 = xcalloc((size_t)n, sizeof(int64_t));
	l.ours = xcalloc((size_t)n, sizeof(int64_t));
	l.ctl = xcalloc((size_t)n, sizeof(int64_t));
	struct etcd_watch_cbs cbs = { lat_events, count_resync, NULL, &l };
	struct etcd_watch_req req = { .key = LAT, .prefix = true };
	struct vxerr err;
	struct etcd_watch *w = etcd_watch_start(c, &req, &cbs, &err);
	pid_t ctl = start_etcdctl(url, &l);
	struct ev_loop *loop = etcd_client_loop(c);
	ev_io_init(&l.pipe, on_pipe, l.fd, EV_READ);
	l.pipe.data = &l;
	ev_io_start(loop, &l.pipe);
	for (int i = 0; i < 100 && !l.ctl_warm; i++) { /* both watchers ready before measuring */
		put_one(&l, LAT "warm", "warm");
		run_loop_ms(c, 100, ctl_is_warm, &l);
	}
	if (!l.ctl_warm || etcd_watch_delivered(w) == 0)
		die("latency", "etcdctl watch or the client watch did not start");
	ev_timer_init(&l.tick, on_tick, 0, 1.0 / rate);
	l.tick.data = &l;
	ev_timer_start(loop, &l.tick);
	run_loop_ms(c, (int64_t)n * 1000 / rate + 10000, all_seen, &l);
	ev_timer_stop(loop, &l.tick);
	ev_io_stop(loop, &l.pipe);
	printf("etcd put->watch latency, veltrix client (%d puts at %d/s): p50 %.2f ms p99 %.2f ms (%zu seen)\n", n, rate,
	       pct_ms(l.ours, l.got_ours ? (size_t)n : 0, 0.50), pct_ms(l.ours, l.got_ours ? (size_t)n : 0, 0.99),
	       l.got_ours);
	printf("etcd put->watch latency, etcdctl watch (same puts): p50 %.2f ms p99 %.2f ms (%zu seen)\n",
	       pct_ms(l.ctl, l.got_ctl ? (size_t)n : 0, 0.50), pct_ms(l.ctl, l.got_ctl ? (size_t)n : 0, 0.99), l.got_ctl);
	proc_stop(ctl, 2000);
	close(l.fd);
	etcd_watch_free(w);
	free(l.t0);
	free(l.ours);
	free(l.ctl);
}

int main(void)
{
	int keys = (int)env_int("BENCH_KEYS", 10000, 1000000);
	int lat_n = (int)env_int("BENCH_LAT_N", 300, 100000);
	int rate = (int)env_int("BENCH_LAT_RATE", 500, 100000);
	char url[64];
	const char *given = getenv("VX_BENCH_ETCD");
	if (given && *given)
		snprintf(url, sizeof(url), "%s", given);
	else
		start_etcd(url, sizeof(url));
	const char *eps[] = { url };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 1, .request_timeout_us = 30 * USEC_PER_SEC };
	struct vxerr err;
	struct etcd_client *c = etcd_client_new(NULL, &o, &err);
	if (!c)
		die("client", err.msg);
	wait_ready(c);
	int64_t from = populate(c, SNAP, keys);
	bench_snapshot(c, keys);
	bench_replay(c, from, keys);
	bench_decode(keys);
	bench_live(c, keys);
	bench_latency(c, url, lat_n, rate);
	etcd_client_free(c);
	return 0;
}
