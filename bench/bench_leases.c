/* Lease load (issue 9 item 4): N lease-bound registrations against a 3-member etcd cluster on
 * loopback, kept alive by Veltrix's own etcd client, and what that costs etcd and the agents.
 *
 * How one process stands in for N agents: every registration is what `veltrix agent` does
 * (src/agent/agent_reg.c): etcd_lease_grant_async, then etcd_keepalive_start on that lease and
 * a put of /veltrix/services/svcNN/instNNNNN bound to it (the agent writes through a txn; the
 * put is the same raft write for this purpose, and only the steady state is measured). Each
 * lease has its own etcd_keepalive, so the request pattern is the agents' own: one
 * POST /v3/lease/keepalive per lease every TTL/3, each with its own 250 ms check timer. What
 * differs: all of it runs on one libev loop, and leases share clients, so they share HTTP
 * connections. By default there are 3 clients (one per endpoint, the endpoint lists rotated so
 * each client starts on a different member) and lease i uses client i % 3: connections are
 * shared per endpoint (the client's pool keeps at most 4 idle connections per endpoint, more
 * are opened for bursts and closed again). BENCH_LEASES_PER_CLIENT=k gives every k leases
 * their own client instead (k = 1: one client, hence one kept-alive connection, per lease,
 * exactly like N agents; there the keepalive starts once the put is answered, so the two share
 * that connection — an agent starts both at once and keeps two). Registrations are started at N per TTL/3 (or as fast as etcd takes
 * them, at most BENCH_LEASES_CONC in flight), so keepalives are spread over the interval as
 * independently started agents would be, not fired in one burst.
 *
 * Runs (each on a fresh cluster):
 * - idle: the empty cluster, then N keys bound to N leases of TTL 1 h and no keepalive at all
 *   (the baseline: raft heartbeats, the lessor holding N leases, the keys);
 * - one run per TTL in BENCH_LEASES_TTLS, shared connections;
 * - one run at the default agent.ttl (10 s) with one client per lease (BENCH_LEASES_ONECONN);
 * - runs with fewer leases at the default TTL (BENCH_LEASES_SWEEP), to find the largest N
 *   that stays within the target.
 * In every window: keepalives sent (counted by the `renewed` callback), keepalive messages each
 * member's gRPC server received and renewals the leader's lessor applied (etcd's own metrics),
 * each member's CPU (utime+stime from /proc/<pid>/stat) as % of one core, the bench process's
 * CPU and RSS, the machine's total busy CPU (to show how much the other users of this shared
 * machine took), new TCP connections (/proc/net/snmp ActiveOpens, system-wide), and leases lost.
 * The target: etcd spends at most 10% of one core on keepalives; the keepalive share is a run's
 * etcd CPU minus the idle baseline's, reported summed over the members and for the busiest one.
 *
 * Env: BENCH_LEASES_N (10000), BENCH_LEASES_TTLS ("5,10,30,60"), BENCH_LEASES_WINDOW (seconds,
 * 30), BENCH_LEASES_PER_CLIENT (0: shared, one client per endpoint), BENCH_LEASES_ONECONN (1),
 * BENCH_LEASES_SWEEP ("250,500,1000"; "none"), BENCH_LEASES_CONC (64), BENCH_LEASES_SPREAD (1; 0: every client
 * lists the endpoints in the same order, as agents sharing one configuration do, so all
 * traffic goes to the first member), BENCH_LEASES_TARGET (percent of one core, 10),
 * BENCH_LEASES_KEYS (instance keys bound to each lease, 1..100, default 1: with K > 1 the run
 * stands for N hosts of K instances each sharing a lease per host, `veltrix agent
 * --shared-lease`; the keys go in one txn per lease), BENCH_KEEP (keep the data dirs). 127.0.0.1 only; every etcd is stopped at exit. */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <ftw.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/net.h"
#include "common/parse.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "registry/etcd.h"

#define MEMBERS 3
#define DEFAULT_TTL 10 /* agent.ttl's default, src/config/schema.c */
#define IDLE_TTL 3600
#define MAX_RUNS 16
#define SETUP_MAX_US (120 * USEC_PER_SEC)

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_leases: %s: %s\n", what, msg ? msg : "");
	exit(1);
}

static int64_t env_int(const char *name, int64_t def, int64_t min, int64_t max)
{
	const char *s = getenv(name);
	int64_t v;
	return s && *s && parse_i64(s, min, max, &v) == 0 ? v : def;
}

/* ---------------------------------------------------------------- etcd processes */

struct member {
	pid_t pid;
	char name[8];
	char url[64], purl[64];
	uint64_t id;
	bool leader;
};
static struct member mem[MEMBERS];
static char *tmp, *cluster_dir;
static int cluster_seq;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
	if (ud)
		buf_append(ud, p, size * n);
	return size * n;
}

/* GET url into b (NULL: discard); the HTTP status, or -1. */
static long http_get(const char *url, struct buf *b, long timeout_ms)
{
	CURL *c = curl_easy_init();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	long st = -1;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	curl_easy_cleanup(c);
	return st;
}

static bool member_healthy(const struct member *m)
{
	char url[96];
	struct buf b = BUF_INIT(4096);
	snprintf(url, sizeof(url), "%s/health", m->url);
	bool ok = http_get(url, &b, 1000) == 200 && b.data && strstr(b.data, "\"true\"");
	buf_release(&b);
	return ok;
}

static int unique_port(void)
{
	static int used[256];
	static size_t n_used;
	for (;;) {
		int p = net_free_port();
		bool seen = p <= 0;
		for (size_t i = 0; i < n_used && !seen; i++)
			seen = used[i] == p;
		if (!seen) {
			if (n_used < sizeof(used) / sizeof(used[0]))
				used[n_used++] = p;
			return p;
		}
	}
}

static void stop_cluster(void)
{
	for (int i = 0; i < MEMBERS; i++) /* all at once: a lone member waits for its peers */
		if (mem[i].pid > 0)
			kill(-mem[i].pid, SIGTERM);
	for (int i = 0; i < MEMBERS; i++)
		if (mem[i].pid > 0)
			proc_stop(mem[i].pid, 5000);
	memset(mem, 0, sizeof(mem));
	if (cluster_dir && !getenv("BENCH_KEEP"))
		nftw(cluster_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	free(cluster_dir);
	cluster_dir = NULL;
}

/* Three members with etcd's default heartbeat and election timeouts (production-like CPU). */
static void start_cluster(void)
{
	cluster_dir = xasprintf("%s/cluster%d", tmp, ++cluster_seq);
	if (mkdir(cluster_dir, 0700) != 0)
		die(cluster_dir, strerror(errno));
	struct buf ic = BUF_INIT(4096);
	for (int i = 0; i < MEMBERS; i++) {
		snprintf(mem[i].name, sizeof(mem[i].name), "m%d", i + 1);
		snprintf(mem[i].url, sizeof(mem[i].url), "http://127.0.0.1:%d", unique_port());
		snprintf(mem[i].purl, sizeof(mem[i].purl), "http://127.0.0.1:%d", unique_port());
		buf_printf(&ic, "%s%s=%s", i ? "," : "", mem[i].name, mem[i].purl);
	}
	for (int i = 0; i < MEMBERS; i++) {
		char *data = xasprintf("%s/%s", cluster_dir, mem[i].name);
		char *log = xasprintf("%s/%s.log", cluster_dir, mem[i].name);
		char token[32];
		snprintf(token, sizeof(token), "bench-leases-%d", cluster_seq);
		const char *argv[] = { "etcd", "--name", mem[i].name, "--data-dir", data,
				       "--listen-client-urls", mem[i].url, "--advertise-client-urls", mem[i].url,
				       "--listen-peer-urls", mem[i].purl, "--initial-advertise-peer-urls",
				       mem[i].purl, "--initial-cluster", ic.data, "--initial-cluster-state", "new",
				       "--initial-cluster-token", token, "--logger", "zap", "--log-outputs",
				       "stderr", NULL };
		struct proc_opts o = { .stdout_path = log, .stderr_path = log, .new_pgrp = true,
				       .die_with_parent = true };
		struct vxerr err;
		mem[i].pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
		if (mem[i].pid < 0)
			die("etcd", err.msg);
		free(data);
		free(log);
	}
	buf_release(&ic);
	int64_t deadline = time_mono_us() + 30 * USEC_PER_SEC;
	for (int i = 0; i < MEMBERS; i++)
		while (!member_healthy(&mem[i])) {
			if (time_mono_us() > deadline || !proc_alive(mem[i].pid))
				die(mem[i].name, "not healthy within 30 s (see its log; BENCH_KEEP keeps it)");
			time_sleep_us(50000);
		}
}

/* Member ids and which one leads, through a throwaway client of our own (private loop). */
static void find_leader(void)
{
	const char *eps[MEMBERS];
	for (int i = 0; i < MEMBERS; i++)
		eps[i] = mem[i].url;
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = MEMBERS };
	struct vxerr err;
	struct etcd_client *c = etcd_client_new(NULL, &o, &err);
	if (!c)
		die("etcd client", err.msg);
	uint64_t leader = 0;
	for (int i = 0; i < MEMBERS; i++) {
		struct etcd_resp r;
		if (etcd_endpoint_status(c, (size_t)i, &r, &err) == 0) {
			mem[i].id = r.header.member_id;
			leader = r.leader;
		}
		etcd_resp_release(&r);
	}
	for (int i = 0; i < MEMBERS; i++)
		mem[i].leader = leader != 0 && mem[i].id == leader;
	etcd_client_free(c);
}

/* Sum of the samples of one metric whose line contains `label` (NULL: any). */
static double metric(const struct member *m, const char *name, const char *label)
{
	char url[96];
	struct buf b = BUF_INIT(16u << 20);
	snprintf(url, sizeof(url), "%s/metrics", m->url);
	double sum = 0;
	if (http_get(url, &b, 5000) == 200 && b.data) {
		size_t nl = strlen(name);
		for (char *line = b.data; line && *line;) {
			char *end = strchr(line, '\n');
			if (end)
				*end = '\0';
			if (strncmp(line, name, nl) == 0 && (line[nl] == ' ' || line[nl] == '{') &&
			    (!label || strstr(line, label))) {
				char *sp = strrchr(line, ' ');
				if (sp)
					sum += strtod(sp + 1, NULL);
			}
			line = end ? end + 1 : NULL;
		}
	}
	buf_release(&b);
	return sum;
}

/* ---------------------------------------------------------------- /proc */

static long clk_tck;

/* utime + stime in clock ticks. */
static int64_t proc_cpu_ticks(pid_t pid)
{
	char path[64], line[2048];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = '\0';
	char *p = strrchr(line, ')');
	if (!p)
		return -1;
	p += 2; /* field 3, the state */
	int64_t ut = 0, st = 0;
	for (int field = 3; field <= 15 && p; field++) {
		if (field == 14)
			ut = strtoll(p, NULL, 10);
		if (field == 15)
			st = strtoll(p, NULL, 10);
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return ut + st;
}

static long proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long v = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0)
			v = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static int64_t self_cpu_us(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (int64_t)ru.ru_utime.tv_sec * USEC_PER_SEC + ru.ru_utime.tv_usec +
	       (int64_t)ru.ru_stime.tv_sec * USEC_PER_SEC + ru.ru_stime.tv_usec;
}

/* The whole machine: busy and total jiffies over every CPU. */
static void machine_jiffies(int64_t *busy, int64_t *total)
{
	FILE *f = fopen("/proc/stat", "r");
	long long v[10] = { 0 };
	*busy = *total = 0;
	if (f && fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3],
			&v[4], &v[5], &v[6], &v[7], &v[8], &v[9]) >= 8) {
		for (int i = 0; i < 8; i++)
			*total += v[i];
		*busy = *total - v[3] - v[4]; /* minus idle and iowait */
	}
	if (f)
		fclose(f);
}

/* TCP ActiveOpens (connect() calls that got a SYN out), system-wide. */
static int64_t tcp_active_opens(void)
{
	FILE *f = fopen("/proc/net/snmp", "r");
	char head[1024], vals[1024];
	int64_t v = -1;
	while (f && fgets(head, sizeof(head), f)) {
		if (strncmp(head, "Tcp:", 4) != 0 || !fgets(vals, sizeof(vals), f))
			continue;
		char *hs, *vs, *h = strtok_r(head, " \n", &hs), *x = strtok_r(vals, " \n", &vs);
		while (h && x) {
			if (strcmp(h, "ActiveOpens") == 0)
				v = strtoll(x, NULL, 10);
			h = strtok_r(NULL, " \n", &hs);
			x = strtok_r(NULL, " \n", &vs);
		}
		break;
	}
	if (f)
		fclose(f);
	return v;
}

static int count_sockets(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;
	char path[300], target[64];
	while (d && (de = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/self/fd/%s", de->d_name);
		ssize_t len = readlink(path, target, sizeof(target) - 1);
		if (len > 7 && strncmp(target, "socket:", 7) == 0)
			n++;
	}
	if (d)
		closedir(d);
	return n;
}

/* ---------------------------------------------------------------- registrations */

struct reg {
	struct bench *b;
	int idx;
	struct etcd_client *c;
	int64_t lease, ttl;
	struct etcd_keepalive *ka;
};

struct bench {
	struct ev_loop *loop;
	int n;
	int64_t ttl;
	bool keepalive;
	struct etcd_client **clients;
	int n_clients;
	struct reg *regs;
	int next;        /* next registration to start */
	int inflight;
	int done, failed, unfinished;
	bool in_setup;
	bool put_first; /* keepalive after the put, so both share one connection */
	int conc;
	int64_t t0_us, pace_us;
	ev_timer pump_timer, stop_timer;
	int64_t renewals, lost, trouble;
	char first_lost[256], first_trouble[256], first_failure[256];
};

static void on_renewed(void *arg, int64_t ttl_s)
{
	(void)ttl_s;
	struct reg *r = arg;
	r->b->renewals++;
}

static void on_lost(void *arg, const char *reason)
{
	struct reg *r = arg;
	if (r->b->lost++ == 0)
		snprintf(r->b->first_lost, sizeof(r->b->first_lost), "%s", reason);
}

static void on_trouble(void *arg, const char *detail)
{
	struct reg *r = arg;
	if (r->b->trouble++ == 0)
		snprintf(r->b->first_trouble, sizeof(r->b->first_trouble), "%s", detail);
}

static void pump(struct bench *b);

#define KEYS_PER_LEASE_MAX 100
static int keys_per_lease = 1; /* BENCH_LEASES_KEYS: instance keys bound to each lease */

static void reg_failed(struct reg *r, const char *what, const struct etcd_resp *resp)
{
	struct bench *b = r->b;
	if (b->failed++ == 0)
		snprintf(b->first_failure, sizeof(b->first_failure), "%s: %s", what,
			 resp->error ? resp->error : etcd_code_name(resp->code));
	b->inflight--;
	pump(b);
}

static void start_keepalive(struct reg *r)
{
	struct etcd_keepalive_cbs cbs = { on_renewed, on_lost, on_trouble, r };
	struct vxerr err;
	r->ka = etcd_keepalive_start(r->c, r->lease, r->ttl, &cbs, &err);
	if (!r->ka)
		die("keepalive", err.msg);
}

static void put_done(void *arg, struct etcd_resp *resp)
{
	struct reg *r = arg;
	if (resp->code != ETCD_OK) {
		reg_failed(r, "put", resp);
		return;
	}
	if (r->b->keepalive && r->b->put_first)
		start_keepalive(r);
	r->b->done++;
	r->b->inflight--;
	pump(r->b);
}

static void grant_done(void *arg, struct etcd_resp *resp)
{
	struct reg *r = arg;
	struct bench *b = r->b;
	struct vxerr err;
	if (resp->code != ETCD_OK) {
		reg_failed(r, "lease grant", resp);
		return;
	}
	r->lease = resp->lease_id;
	r->ttl = resp->ttl > 0 ? resp->ttl : b->ttl;
	if (b->keepalive && !b->put_first)
		start_keepalive(r);
	/* keys_per_lease > 1: the instances of one host on the host's shared lease (one txn) */
	char key[KEYS_PER_LEASE_MAX][96], value[KEYS_PER_LEASE_MAX][96];
	struct etcd_txn_op ops[KEYS_PER_LEASE_MAX];
	for (int k = 0; k < keys_per_lease; k++) {
		int inst = r->idx * keys_per_lease + k;
		snprintf(key[k], sizeof(key[k]), "/veltrix/services/svc%02d/inst%06d", inst / 100 % 100, inst);
		snprintf(value[k], sizeof(value[k]), "{\"address\":\"127.0.0.1\",\"port\":%d}", 10000 + inst % 50000);
		ops[k] = (struct etcd_txn_op){ .type = ETCD_OP_PUT, .put = { .key = key[k], .value = value[k], .lease = r->lease } };
	}
	struct etcd_txn_req t = { NULL, 0, ops, (size_t)keys_per_lease, NULL, 0 };
	if (keys_per_lease == 1 && etcd_put_async(r->c, &ops[0].put, put_done, r, &err) != 0)
		die("put", err.msg);
	if (keys_per_lease > 1 && etcd_txn_async(r->c, &t, put_done, r, &err) != 0)
		die("put", err.msg);
}

/* Starts registrations on schedule (N per TTL/3) with at most conc in flight. */
static void pump(struct bench *b)
{
	if (!b->in_setup) /* a late completion after the setup deadline */
		return;
	int64_t now = time_mono_us();
	struct vxerr err;
	while (b->next < b->n && b->inflight < b->conc && now >= b->t0_us + (int64_t)b->next * b->pace_us) {
		struct reg *r = &b->regs[b->next++];
		b->inflight++;
		if (etcd_lease_grant_async(r->c, b->ttl, 0, grant_done, r, &err) != 0)
			die("lease grant", err.msg);
	}
	if (b->done + b->failed == b->n)
		ev_break(b->loop, EVBREAK_ONE);
}

static void on_pump(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	pump(t->data);
}

static void on_stop(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(loop, EVBREAK_ONE);
}

static void run_for(struct bench *b, int64_t us)
{
	ev_now_update(b->loop); /* the loop may not have run for a while (sleeps, blocking reads) */
	ev_timer_init(&b->stop_timer, on_stop, (double)us / 1e6, 0);
	ev_timer_start(b->loop, &b->stop_timer);
	ev_run(b->loop, 0);
	ev_timer_stop(b->loop, &b->stop_timer);
}

/* clients: 0 = one per endpoint (shared connections), else one per `per_client` leases. */
static void bench_setup(struct bench *b, struct ev_loop *loop, int n, int64_t ttl, bool keepalive, int per_client,
			bool spread, int conc)
{
	memset(b, 0, sizeof(*b));
	b->loop = loop;
	b->n = n;
	b->ttl = ttl;
	b->keepalive = keepalive;
	b->conc = conc;
	/* With a client per lease the agent's order (keepalive and put at once) leaves two pooled
	 * connections per client: 2N sockets, past this machine's open-file limit at N = 10,000.
	 * Keepalive after the put keeps one; the steady state is the same. */
	b->put_first = per_client == 1;
	b->n_clients = per_client > 0 ? (n + per_client - 1) / per_client : MEMBERS;
	b->clients = xcalloc((size_t)b->n_clients, sizeof(*b->clients));
	for (int j = 0; j < b->n_clients; j++) {
		const char *eps[MEMBERS];
		for (int i = 0; i < MEMBERS; i++)
			eps[i] = mem[(i + (spread ? j : 0)) % MEMBERS].url;
		struct etcd_opts o = { .endpoints = eps, .n_endpoints = MEMBERS };
		struct vxerr err;
		b->clients[j] = etcd_client_new(loop, &o, &err);
		if (!b->clients[j])
			die("etcd client", err.msg);
	}
	b->regs = xcalloc((size_t)n, sizeof(*b->regs));
	for (int i = 0; i < n; i++) {
		b->regs[i].b = b;
		b->regs[i].idx = i;
		b->regs[i].c = b->clients[per_client > 0 ? i / per_client : i % MEMBERS];
	}
	/* spread the starts over one renewal interval; the 1 h idle leases go as fast as they can */
	b->pace_us = keepalive ? ttl * USEC_PER_SEC / 3 / n : 0;
	b->t0_us = time_mono_us();
	ev_timer_init(&b->pump_timer, on_pump, 0.001, 0.001);
	b->pump_timer.data = b;
	ev_timer_start(loop, &b->pump_timer);
	b->in_setup = true;
	/* bounded: an overloaded cluster is measured as it is, with the registrations it took */
	run_for(b, SETUP_MAX_US);
	ev_timer_stop(loop, &b->pump_timer);
	b->in_setup = false;
	b->unfinished = b->n - b->done - b->failed;
	if (b->unfinished)
		printf("    setup: %d of %d registrations still unfinished after %llds; measuring anyway\n",
		       b->unfinished, b->n, (long long)(SETUP_MAX_US / USEC_PER_SEC));
}

static void bench_teardown(struct bench *b)
{
	for (int i = 0; i < b->n; i++)
		etcd_keepalive_free(b->regs[i].ka);
	for (int j = 0; j < b->n_clients; j++)
		etcd_client_free(b->clients[j]);
	free(b->regs);
	free(b->clients);
	malloc_trim(0);
}

/* ---------------------------------------------------------------- one measured window */

struct result {
	char name[32];
	int n;
	int ttl;
	int clients;
	double setup_s;
	int setup_failed;
	double window_s;
	double ka_rate;       /* renewals/s the bench saw */
	double expected_rate; /* n / (ttl/3) */
	double recv_rate[MEMBERS]; /* LeaseKeepAlive messages each member's gRPC server received */
	double renew_rate;    /* renewals the leader's lessor applied (sum of etcd_debugging_lease_renewed_total) */
	double cpu[MEMBERS];  /* % of one core */
	bool leader[MEMBERS];
	long etcd_rss_kib[MEMBERS];
	double cpu_sum, cpu_max;
	double share_sum, share_max; /* minus the idle baseline (runs with keepalives) */
	double bench_cpu;
	double machine_busy;  /* % of one core, whole machine */
	long rss_kib, rss_delta_kib;
	int sockets;
	double new_conns_s;
	int64_t lost, trouble;
	char first_lost[256], first_trouble[256], first_failure[256];
};

struct snap {
	int64_t t_us, ticks[MEMBERS], self_us, busy, total, opens;
	double recv[MEMBERS], renewed;
	int64_t renewals, lost, trouble;
};

static void snap_metrics(struct snap *s)
{
	s->renewed = 0;
	for (int i = 0; i < MEMBERS; i++) {
		s->recv[i] = metric(&mem[i], "grpc_server_msg_received_total", "grpc_method=\"LeaseKeepAlive\"");
		s->renewed += metric(&mem[i], "etcd_debugging_lease_renewed_total", NULL);
	}
}

/* The CPU readings together; etcd's metrics are read outside the CPU window (before it starts,
 * after it ends), so serving /metrics is not counted as keepalive work. */
static void take_snap(struct snap *s, const struct bench *b, bool start)
{
	if (start)
		snap_metrics(s);
	s->t_us = time_mono_us();
	for (int i = 0; i < MEMBERS; i++)
		s->ticks[i] = proc_cpu_ticks(mem[i].pid);
	s->self_us = self_cpu_us();
	machine_jiffies(&s->busy, &s->total);
	s->opens = tcp_active_opens();
	s->renewals = b ? b->renewals : 0;
	s->lost = b ? b->lost : 0;
	s->trouble = b ? b->trouble : 0;
	if (!start)
		snap_metrics(s);
}

static struct bench idle_bench; /* a loop runner when there are no registrations */

static void measure(struct result *r, struct bench *b, struct ev_loop *loop, int64_t window_us, long base_rss)
{
	if (!b) {
		b = &idle_bench;
		memset(b, 0, sizeof(*b));
		b->loop = loop;
	}
	struct snap s0, s1;
	find_leader();
	take_snap(&s0, b, true);
	run_for(b, window_us);
	take_snap(&s1, b, false);
	double sec = (double)(s1.t_us - s0.t_us) / 1e6;
	r->window_s = sec;
	r->ka_rate = (double)(s1.renewals - s0.renewals) / sec;
	r->renew_rate = (s1.renewed - s0.renewed) / sec;
	r->cpu_sum = r->cpu_max = 0;
	for (int i = 0; i < MEMBERS; i++) {
		r->recv_rate[i] = (s1.recv[i] - s0.recv[i]) / sec;
		r->cpu[i] = 100.0 * (double)(s1.ticks[i] - s0.ticks[i]) / (double)clk_tck / sec;
		r->leader[i] = mem[i].leader;
		r->etcd_rss_kib[i] = proc_rss_kib(mem[i].pid);
		r->cpu_sum += r->cpu[i];
		if (r->cpu[i] > r->cpu_max)
			r->cpu_max = r->cpu[i];
	}
	r->bench_cpu = 100.0 * (double)(s1.self_us - s0.self_us) / 1e6 / sec;
	int64_t total = s1.total - s0.total;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	r->machine_busy = total > 0 ? 100.0 * (double)ncpu * (double)(s1.busy - s0.busy) / (double)total : -1;
	r->rss_kib = proc_rss_kib(getpid());
	r->rss_delta_kib = r->rss_kib - base_rss;
	r->sockets = count_sockets();
	r->new_conns_s = (double)(s1.opens - s0.opens) / sec;
	r->lost = s1.lost;          /* over the whole run, setup included */
	r->trouble = s1.trouble - s0.trouble;
	snprintf(r->first_lost, sizeof(r->first_lost), "%s", b->first_lost);
	snprintf(r->first_trouble, sizeof(r->first_trouble), "%s", b->first_trouble);
	snprintf(r->first_failure, sizeof(r->first_failure), "%s", b->first_failure);
}

/* ---------------------------------------------------------------- runs */

static struct result results[MAX_RUNS];
static int n_results;
static int64_t window_us;
static int conc, spread;

static struct result *new_result(const char *name, int n, int ttl, int clients)
{
	if (n_results == MAX_RUNS)
		die("runs", "too many");
	struct result *r = &results[n_results++];
	memset(r, 0, sizeof(*r));
	snprintf(r->name, sizeof(r->name), "%s", name);
	r->n = n;
	r->ttl = ttl;
	r->clients = clients;
	return r;
}

static long fresh_rss(void)
{
	malloc_trim(0);
	return proc_rss_kib(getpid());
}

static void print_row(struct result *r);

/* The idle baselines: an empty cluster, then n keys on n leases of 1 h without keepalives. */
static void run_idle(struct ev_loop *loop, int n)
{
	start_cluster();
	struct result *e = new_result("idle-empty", 0, 0, 0);
	time_sleep_us(2 * USEC_PER_SEC);
	measure(e, NULL, loop, window_us, fresh_rss());
	print_row(e);
	struct bench b;
	long base = fresh_rss();
	int64_t t = time_mono_us();
	bench_setup(&b, loop, n, IDLE_TTL, false, 0, spread != 0, conc);
	struct result *r = new_result("idle-keys", n, IDLE_TTL, b.n_clients);
	r->setup_s = (double)(time_mono_us() - t) / 1e6;
	r->setup_failed = b.failed;
	run_for(&b, 2 * USEC_PER_SEC);
	measure(r, &b, loop, window_us, base);
	print_row(r);
	bench_teardown(&b);
	stop_cluster();
}

static struct result *run_ttl(struct ev_loop *loop, const char *name, int n, int ttl, int per_client)
{
	start_cluster();
	struct bench b;
	long base = fresh_rss();
	int64_t t = time_mono_us();
	bench_setup(&b, loop, n, ttl, true, per_client, spread != 0, conc);
	struct result *r = new_result(name, n, ttl, b.n_clients);
	r->setup_s = (double)(time_mono_us() - t) / 1e6;
	r->setup_failed = b.failed;
	r->expected_rate = (double)(n - b.failed - b.unfinished) * 3.0 / (double)ttl;
	/* settle: the starts took at least TTL/3 (paced), so when they end every lease already
	 * renews on its own cadence; a few seconds let the last answers and pool churn pass */
	run_for(&b, 3 * USEC_PER_SEC);
	measure(r, &b, loop, window_us, base);
	print_row(r);
	bench_teardown(&b);
	stop_cluster();
	return r;
}

/* ---------------------------------------------------------------- output */

static const struct result *idle_keys(void)
{
	for (int i = 0; i < n_results; i++)
		if (strcmp(results[i].name, "idle-keys") == 0)
			return &results[i];
	return NULL;
}

/* The keepalive share: etcd CPU minus the idle baseline's, summed over the members, and for the
 * busiest member against the baseline member of the same role (the leader sends the heartbeats,
 * so it idles higher than a follower). */
static void shares(struct result *r)
{
	const struct result *base = idle_keys();
	r->share_sum = r->share_max = 0;
	if (!base || r->ttl == IDLE_TTL || r->ttl == 0)
		return;
	double base_leader = 0, base_follower = 0;
	int n_followers = 0;
	for (int i = 0; i < MEMBERS; i++)
		if (base->leader[i])
			base_leader = base->cpu[i];
		else {
			base_follower += base->cpu[i];
			n_followers++;
		}
	if (n_followers)
		base_follower /= n_followers;
	for (int i = 0; i < MEMBERS; i++) {
		double s = r->cpu[i] - (r->leader[i] ? base_leader : base_follower);
		if (i == 0 || s > r->share_max)
			r->share_max = s;
	}
	r->share_sum = r->cpu_sum - base->cpu_sum;
}

static void print_header(void)
{
	printf("\n%-11s %6s %4s %5s %9s %9s %9s %-22s %7s %7s %7s %7s %7s %6s %5s %7s %5s %5s\n", "run", "N", "ttl",
	       "cli", "ka/s", "expect/s", "etcd-rx/s", "etcd cpu% m1/m2/m3", "sum%", "ka-sum%", "ka-max%", "bench%",
	       "b%/1k", "KiB/1k", "socks", "conn/s", "lost", "other%");
}

static void print_row(struct result *r)
{
	shares(r);
	char cpus[64];
	snprintf(cpus, sizeof(cpus), "%.1f%s/%.1f%s/%.1f%s", r->cpu[0], r->leader[0] ? "L" : "", r->cpu[1],
		 r->leader[1] ? "L" : "", r->cpu[2], r->leader[2] ? "L" : "");
	double rx = r->recv_rate[0] + r->recv_rate[1] + r->recv_rate[2];
	double other = r->machine_busy - r->cpu_sum - r->bench_cpu;
	if (n_results == 1)
		print_header();
	printf("%-11s %6d %4d %5d %9.0f %9.0f %9.0f %-22s %7.1f %7.1f %7.1f %7.1f %7.2f %6.0f %5d %7.0f %5lld %5.0f\n",
	       r->name, r->n, r->ttl, r->clients, r->ka_rate, r->expected_rate, rx, cpus, r->cpu_sum, r->share_sum,
	       r->share_max, r->bench_cpu, r->n ? r->bench_cpu * 1000.0 / r->n : 0.0,
	       r->n ? (double)r->rss_delta_kib * 1000.0 / r->n : 0.0, r->sockets, r->new_conns_s,
	       (long long)r->lost, other);
	if (r->setup_failed)
		printf("    setup: %d of %d registrations failed (first: %s)\n", r->setup_failed, r->n, r->first_failure);
	if (r->lost)
		printf("    lost: %lld leases (first: %s)\n", (long long)r->lost, r->first_lost);
	if (r->trouble)
		printf("    trouble in the window: %lld (first: %s)\n", (long long)r->trouble, r->first_trouble);
	fflush(stdout);
}

static void git_commit(char *out, size_t cap)
{
	const char *top = getenv("VX_TOP");
	char cmd[512];
	snprintf(cmd, sizeof(cmd), "git %s%s%s rev-parse HEAD 2>/dev/null; git %s%s%s status --porcelain "
				   "--untracked-files=no 2>/dev/null | head -c1",
		 top ? "-C '" : "", top ? top : "", top ? "'" : "", top ? "-C '" : "", top ? top : "", top ? "'" : "");
	FILE *p = popen(cmd, "r");
	snprintf(out, cap, "unknown");
	if (p) {
		char line[128] = "", dirty[8] = "";
		if (fgets(line, sizeof(line), p)) {
			line[strcspn(line, "\n")] = '\0';
			if (fgets(dirty, sizeof(dirty), p) && dirty[0])
				snprintf(out, cap, "%s (with uncommitted changes)", line);
			else if (line[0])
				snprintf(out, cap, "%s", line);
		}
		pclose(p);
	}
}

static void cleanup(void)
{
	stop_cluster();
	if (tmp && !getenv("BENCH_KEEP"))
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void on_signal(int sig)
{
	(void)sig;
	exit(1); /* runs cleanup: stops every etcd */
}

int main(void)
{
	int n = (int)env_int("BENCH_LEASES_N", 10000, 1, 100000);
	int64_t window_s = env_int("BENCH_LEASES_WINDOW", 30, 1, 3600);
	keys_per_lease = (int)env_int("BENCH_LEASES_KEYS", 1, 1, KEYS_PER_LEASE_MAX);
	int per_client = (int)env_int("BENCH_LEASES_PER_CLIENT", 0, 0, 100000);
	int oneconn = (int)env_int("BENCH_LEASES_ONECONN", 1, 0, 1);
	const char *sweep_s = getenv("BENCH_LEASES_SWEEP");
	if (!sweep_s || !*sweep_s)
		sweep_s = "250,500,1000";
	int sweep_ns[8], n_sweep_ns = 0;
	if (strcmp(sweep_s, "none") != 0) {
		char *sc = xstrdup(sweep_s), *ss, *st;
		for (st = strtok_r(sc, ",", &ss); st && n_sweep_ns < 8; st = strtok_r(NULL, ",", &ss)) {
			int64_t v;
			if (parse_i64(st, 1, 100000, &v) != 0)
				die("BENCH_LEASES_SWEEP", "lease counts separated by commas, or none");
			sweep_ns[n_sweep_ns++] = (int)v;
		}
		free(sc);
	}
	double target = (double)env_int("BENCH_LEASES_TARGET", 10, 1, 100);
	conc = (int)env_int("BENCH_LEASES_CONC", 64, 1, 10000);
	spread = (int)env_int("BENCH_LEASES_SPREAD", 1, 0, 1);
	const char *ttls_s = getenv("BENCH_LEASES_TTLS");
	if (!ttls_s || !*ttls_s)
		ttls_s = "5,10,30,60";
	int ttls[8], n_ttls = 0;
	char *copy = xstrdup(ttls_s), *save, *tok;
	for (tok = strtok_r(copy, ",", &save); tok && n_ttls < 8; tok = strtok_r(NULL, ",", &save)) {
		int64_t v;
		if (parse_i64(tok, 2, 3600, &v) != 0)
			die("BENCH_LEASES_TTLS", "whole seconds, 2..3600, separated by commas");
		ttls[n_ttls++] = (int)v;
	}
	free(copy);
	window_us = window_s * USEC_PER_SEC;
	clk_tck = sysconf(_SC_CLK_TCK);

	/* one client per lease holds one connection per lease: raise the limit when allowed */
	struct rlimit rl;
	rlim_t need = (rlim_t)n + 2048;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
		struct rlimit want = { need, rl.rlim_max > need ? rl.rlim_max : need };
		if (setrlimit(RLIMIT_NOFILE, &want) != 0) {
			rl.rlim_cur = rl.rlim_max;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need)
		printf("warning: open files limited to %llu; one client per lease needs %llu\n",
		       (unsigned long long)rl.rlim_cur, (unsigned long long)need);
	char tmpl[] = "/tmp/bench-leases-XXXXXX";
	tmp = mkdtemp(tmpl);
	if (!tmp)
		die("mkdtemp", strerror(errno));
	tmp = xstrdup(tmp);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	signal(SIGPIPE, SIG_IGN);

	char commit[192], etcd_ver[128] = "?";
	git_commit(commit, sizeof(commit));
	FILE *p = popen("etcd --version 2>/dev/null | head -n1", "r");
	if (p) {
		if (fgets(etcd_ver, sizeof(etcd_ver), p))
			etcd_ver[strcspn(etcd_ver, "\n")] = '\0';
		pclose(p);
	}
	double load1 = 0;
	FILE *la = fopen("/proc/loadavg", "r");
	if (la) {
		if (fscanf(la, "%lf", &load1) != 1)
			load1 = 0;
		fclose(la);
	}
	printf("bench_leases: commit %s\n", commit);
	printf("%s, 3 members on 127.0.0.1 (default heartbeat 100 ms, election 1 s), %ld CPUs, load average %.2f at start\n",
	       etcd_ver, sysconf(_SC_NPROCESSORS_ONLN), load1);
	printf("N=%d leases, %d instance key(s) each (%d instances%s), TTLs %s s, window %lld s, target: etcd spends "
	       "<= %.0f%% of one core on keepalives\n", n, keys_per_lease, n * keys_per_lease,
	       keys_per_lease > 1 ? ": N hosts sharing a lease per host" : "", ttls_s, (long long)window_s, target);
	printf("stand-in for N agents: one process, one libev loop, Veltrix's etcd client; every lease its own\n"
	       "etcd_keepalive (one POST /v3/lease/keepalive every TTL/3, a 250 ms check timer each), registrations\n"
	       "started at N per TTL/3 so renewals are spread as independent agents' would be. Connections: %s.\n"
	       "Endpoints: %s.\n",
	       per_client ? "one client per BENCH_LEASES_PER_CLIENT leases, each with its own pool"
			  : "SHARED, 3 clients (one per endpoint), each pooling at most 4 idle connections per endpoint",
	       spread ? "each client starts on a different member (lists rotated)"
		      : "every client lists them in the same order (all traffic to m1, like agents sharing one config)");
	printf("columns: ka/s = keepalives answered with a TTL (bench count); etcd-rx/s = LeaseKeepAlive messages the\n"
	       "members' gRPC servers received; etcd cpu%% per member (L = leader), %% of one core; ka-sum%%/ka-max%% =\n"
	       "minus the idle-keys baseline (sum of members / busiest member vs the baseline member of its role); bench%% = this\n"
	       "process (all N 'agents'); b%%/1k and KiB/1k per 1,000 leases; socks = sockets this process holds;\n"
	       "conn/s = new TCP connections system-wide; other%% = CPU used by everything else on the machine (noise).\n");
	printf("The machine is shared with other users: treat CPU figures as noisy (see other%%).\n");
	fflush(stdout);

	struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
	run_idle(loop, n);
	struct result *def = NULL;
	for (int i = 0; i < n_ttls; i++) {
		char name[32];
		snprintf(name, sizeof(name), "ttl%d", ttls[i]);
		struct result *r = run_ttl(loop, name, n, ttls[i], per_client);
		if (ttls[i] == DEFAULT_TTL)
			def = r;
	}
	if (oneconn && per_client != 1) {
		char name[32];
		snprintf(name, sizeof(name), "ttl%d-1conn", DEFAULT_TTL);
		run_ttl(loop, name, n, DEFAULT_TTL, 1);
	}

	/* The linear model: CPU per keepalive from each run, then how many leases fit the target. */
	printf("\ncost per keepalive (etcd CPU minus the idle baseline, divided by keepalives/s), and a linear model\n"
	       "from it (optimistic at low rates: the cost per keepalive grows as the rate falls):\n");
	double c_sum_def = 0, c_max_def = 0;
	for (int i = 0; i < n_results; i++) {
		struct result *r = &results[i];
		if (r->expected_rate <= 0 || r->ka_rate <= 0)
			continue;
		double c_sum = r->share_sum / 100.0 / r->ka_rate * 1e6; /* core-us per keepalive */
		double c_max = r->share_max / 100.0 / r->ka_rate * 1e6;
		double nmax_sum = target / 100.0 / (c_sum / 1e6) * DEFAULT_TTL / 3.0;
		double nmax_max = target / 100.0 / (c_max / 1e6) * DEFAULT_TTL / 3.0;
		double ttl_sum = 3.0 * n * (c_sum / 1e6) / (target / 100.0);
		double ttl_max = 3.0 * n * (c_max / 1e6) / (target / 100.0);
		printf("  %-11s %6.0f core-us/keepalive summed (%5.0f busiest member); at ttl %ds the target holds %6.0f leases "
		       "(%6.0f per member); %d leases need ttl >= %4.0f s (%4.0f s per member)\n",
		       r->name, c_sum, c_max, DEFAULT_TTL, nmax_sum, nmax_max, n, ttl_sum, ttl_max);
		if (r == def) {
			c_sum_def = c_sum;
			c_max_def = c_max;
		}
	}
	/* Where it breaks, measured: smaller N at the default TTL until the target holds (the cost
	 * per keepalive is not constant: it grows as the rate falls, so the linear model above is
	 * optimistic at low rates). */
	int within_sum = 0, within_max = 0, n_sweep = 0;
	for (int i = 0; i < n_sweep_ns; i++) {
		char name[32];
		snprintf(name, sizeof(name), "sweep%d", sweep_ns[i]);
		if (n_sweep++ == 0)
			printf("\nsweep: smaller N at ttl %ds (the default agent.ttl)\n", DEFAULT_TTL);
		struct result *r = run_ttl(loop, name, sweep_ns[i], DEFAULT_TTL, per_client);
		if (r->lost == 0 && r->share_sum <= target && r->n > within_sum)
			within_sum = r->n;
		if (r->lost == 0 && r->share_max <= target && r->n > within_max)
			within_max = r->n;
	}
	for (int i = 0; i < n_results; i++) { /* the main runs at the default TTL count too */
		const struct result *r = &results[i];
		if (r->ttl != DEFAULT_TTL || r->lost)
			continue;
		if (r->share_sum <= target && r->n > within_sum)
			within_sum = r->n;
		if (r->share_max <= target && r->n > within_max)
			within_max = r->n;
	}
	if (n_sweep || def)
		printf("largest N measured within %.0f%% of one core at ttl %ds: %d summed over the members, %d per member "
		       "(0: none of the Ns tried)\n",
		       target, DEFAULT_TTL, within_sum, within_max);

	printf("\nBEGIN bench_leases machine-readable\n");
	printf("{\"bench\":\"leases\",\"commit\":\"%s\",\"n\":%d,\"window_s\":%lld,\"target_pct\":%.0f,"
	       "\"cost_us_per_ka_sum_default_ttl\":%.1f,\"cost_us_per_ka_max_member_default_ttl\":%.1f,"
	       "\"largest_n_within_target_default_ttl_sum\":%d,\"largest_n_within_target_default_ttl_per_member\":%d}\n",
	       commit, n, (long long)window_s, target, c_sum_def, c_max_def, within_sum, within_max);
	for (int i = 0; i < n_results; i++) {
		const struct result *r = &results[i];
		printf("{\"run\":\"%s\",\"n\":%d,\"ttl_s\":%d,\"clients\":%d,\"setup_s\":%.2f,\"setup_failed\":%d,"
		       "\"window_s\":%.2f,\"ka_per_s\":%.1f,\"expected_per_s\":%.1f,\"etcd_rx_per_s\":[%.1f,%.1f,%.1f],"
		       "\"etcd_renewed_per_s\":%.1f,\"etcd_cpu_pct\":[%.2f,%.2f,%.2f],\"leader\":[%d,%d,%d],"
		       "\"etcd_cpu_sum_pct\":%.2f,\"ka_share_sum_pct\":%.2f,\"ka_share_max_member_pct\":%.2f,"
		       "\"etcd_rss_kib\":[%ld,%ld,%ld],\"bench_cpu_pct\":%.2f,\"bench_rss_kib\":%ld,"
		       "\"bench_rss_delta_kib\":%ld,\"bench_sockets\":%d,\"new_tcp_conns_per_s\":%.1f,\"machine_busy_pct\":%.1f,"
		       "\"leases_lost\":%lld,\"keepalive_trouble\":%lld}\n",
		       r->name, r->n, r->ttl, r->clients, r->setup_s, r->setup_failed, r->window_s, r->ka_rate,
		       r->expected_rate, r->recv_rate[0], r->recv_rate[1], r->recv_rate[2], r->renew_rate, r->cpu[0],
		       r->cpu[1], r->cpu[2], r->leader[0], r->leader[1], r->leader[2], r->cpu_sum, r->share_sum,
		       r->share_max, r->etcd_rss_kib[0], r->etcd_rss_kib[1], r->etcd_rss_kib[2], r->bench_cpu, r->rss_kib,
		       r->rss_delta_kib, r->sockets, r->new_conns_s, r->machine_busy, (long long)r->lost,
		       (long long)r->trouble);
	}
	printf("END bench_leases machine-readable\n");
	ev_loop_destroy(loop);
	return 0;
}
