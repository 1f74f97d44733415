/* Convergence benchmark: how long a registry change takes to become visible in HAProxy, per
 * kind of change, rate and pool size, for `veltrix controller` (a black box: any controller
 * that reads the registry contract of docs/registry.md) and for a "bare watcher" anchor.
 *
 * How it measures:
 * - One local etcd (3.4, its JSON gateway). Changes are written by this program's own raw
 *   client (libcurl, POST /v3/kv/put and /v3/kv/deleterange, base64 keys and values), never
 *   by Veltrix's etcd client, open loop: change i is due at start + i / rate and is sent by one
 *   of several writer threads, so one slow reply does not delay the others. Latency counts from
 *   the moment a put or delete is sent.
 * - A poller (its own thread, a prompt-mode connection to the target's runtime socket) reads
 *   `show servers state conv` in a loop with a 100 us pause and timestamps when each change is
 *   first visible. A change not visible within BENCH_CONV_TIMEOUT_MS of being sent is lost. The
 *   mean time between two polls is reported (the resolution): a dump costs HAProxy about 1 us
 *   per server, so with thousands of servers the poller itself keeps HAProxy's thread busy.
 * - Kinds, each measured alone, on the service `conv` (health type none, so no check interferes):
 *     add     put a new instance key               -> the server is present, admin ready, running
 *     delete  delete an instance key               -> the server is gone
 *     weight  put a new "weight" on a pool server  -> its uweight shows the new value
 *     drain   put "state":"draining"               -> the server no longer ready: drain (or the
 *             maint and removal a controller may do next, once the server is idle)
 *     down    put "state":"down"                   -> the server in maintenance
 *   add, delete, drain and down change each of rate x duration subject servers once (subjects
 *   are extra servers beside the pool: an add cell creates them and the delete cell that follows
 *   removes them; drain and down cells get theirs registered and converged beforehand); weight
 *   cycles through the pool's servers with weights 1..249 (the pool starts at 256), and a weight
 *   superseded by the next one to the same server before it was seen counts as applied when the
 *   later one is.
 * - Before every cell the pool (BENCH_CONV_POOLS servers, registered and converged) is at
 *   weight 256, ready, and only the cell's subjects are present; after it the subjects are
 *   removed and that state is waited for again (neither is measured).
 * - Targets, both in the same run, cell after cell, the order alternating between runs:
 *     veltrix  `$VELTRIX_BIN controller -c CONFIG`, managed mode (it starts its HAProxy), keys
 *              under /veltrix; panic_threshold 100% and weight_feedback off, so the safety net
 *              and the load feedback do not hold back or move what is measured.
 *     bare     its own HAProxy from a static configuration with the same pool, and an etcd watch
 *              (libcurl, keys under /bare) whose events go straight to the runtime socket:
 *              new key -> add server + enable server, delete -> state maint + del server,
 *              "weight" -> set server weight, "state" -> set server state ready/drain/maint.
 *              No validation, no reconcile, no state read: the floor.
 * Output: progress on stderr (per cell, also etcd's own answer time to the writes and the poll
 * interval); on stdout the commit, one row per (target, kind, rate, pool) with p50 / p99 / max
 * in ms (medians over the runs, [range]), changes seen and lost (summed over the runs), the rate
 * the writers achieved, then the same as a tab-separated block for docs.
 * Env: BENCH_CONV_RATES (100,1000,5000), BENCH_CONV_POOLS (10,1000),
 * BENCH_CONV_KINDS (add,delete,weight,drain,down), BENCH_CONV_TARGETS (veltrix,bare),
 * BENCH_CONV_RUNS (3), BENCH_CONV_SECONDS (per cell, 1; decimals allowed),
 * BENCH_CONV_MAX_CHANGES (per cell, 2000: a 5,000/s cell lasts 0.4 s), BENCH_CONV_TIMEOUT_MS
 * (5000), BENCH_CONV_POLL_PAUSE_US (100), BENCH_CONV_BATCH_DELAY (the controller's
 * max_batch_delay; default: its own), VELTRIX_BIN (build/release/veltrix), VX_COMMIT (else
 * `git rev-parse --short HEAD` in VX_TOP or the current directory), TMPDIR, BENCH_KEEP (keep
 * the logs, configurations and etcd data).
 * Everything runs on 127.0.0.1 in a temporary directory; every process is stopped at exit, on
 * SIGINT/SIGTERM, and by a guardian process when this one is killed. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
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

#define SERVICE "conv"
#define WRITERS_MAX 16      /* puts in flight: enough for 5,000/s at ~2 ms a put */
#define WEIGHT_CYCLE 249    /* weights 1..249; the pool's resting weight is BASE_WEIGHT */
#define BASE_WEIGHT 256
#define SETTLE_TIMEOUT_US (120 * USEC_PER_SEC) /* seeding, cleanup, start: converge or die */
#define MAX_RUNS 15
#define MAX_LIST 8
#define TXN_OPS 100         /* etcd's default --max-txn-ops is 128 */

enum kind { K_ADD, K_DELETE, K_WEIGHT, K_DRAIN, K_DOWN, N_KINDS };
static const char *const kind_names[N_KINDS] = { "add", "delete", "weight", "drain", "down" };

enum target_id { T_VELTRIX, T_BARE, N_TARGETS };
static const char *const target_names[N_TARGETS] = { "veltrix", "bare" };

/* What one row of `show servers state` says about a server, as the kinds need it. */
enum view { V_ABSENT, V_READY, V_DRAIN, V_MAINT, V_OTHER };

/* ---------------------------------------------------------------- small helpers */

static void die(const char *what, const char *msg)
{
	fprintf(stderr, "bench_converge: %s: %s\n", what, msg ? msg : "");
	exit(1);
}

static int64_t env_int(const char *name, int64_t def, int64_t min, int64_t max)
{
	const char *s = getenv(name);
	int64_t v;
	if (!s || !*s)
		return def;
	if (parse_i64(s, min, max, &v) != 0)
		die(name, "not an integer in range");
	return v;
}

/* A comma-separated list of words from env name (def when unset), each looked up by lookup. */
static int env_list(const char *name, const char *def, int *out, int (*lookup)(const char *))
{
	const char *s = getenv(name);
	char copy[256];
	int n = 0;
	snprintf(copy, sizeof(copy), "%s", s && *s ? s : def);
	for (char *p = copy; p && *p;) {
		char *comma = strchr(p, ',');
		if (comma)
			*comma = '\0';
		int v = lookup(p);
		if (v < 0 || n == MAX_LIST)
			die(name, "bad or too many items");
		out[n++] = v;
		p = comma ? comma + 1 : NULL;
	}
	return n;
}

static int lookup_number(const char *s)
{
	int64_t v;
	return parse_i64(s, 1, 100000, &v) == 0 ? (int)v : -1;
}

static int lookup_kind(const char *s)
{
	for (int k = 0; k < N_KINDS; k++)
		if (strcmp(s, kind_names[k]) == 0)
			return k;
	return -1;
}

static int lookup_target(const char *s)
{
	for (int t = 0; t < N_TARGETS; t++)
		if (strcmp(s, target_names[t]) == 0)
			return t;
	return -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* ---------------------------------------------------------------- the guardian */

/* A child forked before anything else that outlives a SIGKILL of this process: it reads
 * "+pgid" / "-pgid" records from a pipe and, when the pipe closes (this process gone, however),
 * kills the process groups still recorded and removes dir, unless a 0 record said that the
 * cleanup was done. The controller's HAProxy is no child of ours, and die_with_parent covers
 * only our own children. */
static int guardian_fd = -1;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void guardian_loop(int fd, const char *dir)
{
	pid_t groups[64];
	size_t n = 0;
	int32_t rec;
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	while (read(fd, &rec, sizeof(rec)) == (ssize_t)sizeof(rec)) {
		if (rec == 0)
			dir = NULL;
		if (rec > 0 && n < sizeof(groups) / sizeof(groups[0]))
			groups[n++] = rec;
		for (size_t i = 0; rec < 0 && i < n; i++)
			if (groups[i] == -rec)
				groups[i--] = groups[--n];
	}
	for (size_t i = 0; i < n; i++)
		kill(-groups[i], SIGKILL);
	if (dir && n > 0)
		time_sleep_us(200000); /* let the killed let go of their files */
	if (dir && !getenv("BENCH_KEEP"))
		nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	_exit(0);
}

static void guardian_start(const char *dir)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		die("guardian", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		die("guardian", strerror(errno));
	if (pid == 0) {
		close(p[1]);
		guardian_loop(p[0], dir);
	}
	close(p[0]);
	guardian_fd = p[1];
}

/* pgid started (alive) or stopped; pgid 0: every stop and the directory were taken care of. */
static void guardian_note(pid_t pgid, bool alive)
{
	int32_t rec = alive ? (int32_t)pgid : -(int32_t)pgid;
	if (guardian_fd >= 0 && pgid >= 0 && write(guardian_fd, &rec, sizeof(rec)) != (ssize_t)sizeof(rec))
		fprintf(stderr, "bench_converge: guardian: %s\n", strerror(errno)); /* not fatal: called from cleanup */
}

/* ---------------------------------------------------------------- processes and files */

static char *tmp;
static pid_t etcd_pid, ctl_pid, ctl_hap_pgid, bare_hap_pid;
static char etcd_url[64];
static bool keep_tmp;

static void write_file(const char *path, const struct buf *b)
{
	FILE *f = fopen(path, "w");
	if (!f || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0)
		die(path, strerror(errno));
}

static pid_t spawn(const char *const *argv, const char *log)
{
	struct proc_opts o = { .stdout_path = log, .stderr_path = log, .new_pgrp = true, .die_with_parent = true };
	struct vxerr err;
	pid_t pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (pid < 0)
		die(argv[0], err.msg);
	guardian_note(pid, true);
	return pid;
}

static void stop_child(pid_t *pid)
{
	if (*pid <= 0)
		return;
	proc_stop(*pid, 5000);
	guardian_note(*pid, false);
	*pid = 0;
}

/* A process group that is not our child (the controller's HAProxy): TERM, wait, KILL. */
static void stop_group(pid_t *pgid)
{
	if (*pgid <= 0)
		return;
	kill(-*pgid, SIGTERM);
	int64_t deadline = time_mono_us() + 5 * USEC_PER_SEC;
	while (kill(*pgid, 0) == 0 && time_mono_us() < deadline)
		time_sleep_us(20000);
	kill(-*pgid, SIGKILL);
	guardian_note(*pgid, false);
	*pgid = 0;
}

static void cleanup(void)
{
	stop_child(&ctl_pid);
	stop_group(&ctl_hap_pgid);
	stop_child(&bare_hap_pid);
	stop_child(&etcd_pid);
	if (tmp && !keep_tmp && !getenv("BENCH_KEEP"))
		nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	else if (tmp)
		fprintf(stderr, "bench_converge: logs kept in %s\n", tmp);
	guardian_note(0, false);
}

static void on_signal(int sig)
{
	pid_t pids[] = { ctl_hap_pgid, bare_hap_pid, ctl_pid, etcd_pid };
	for (size_t i = 0; i < sizeof(pids) / sizeof(pids[0]); i++)
		if (pids[i] > 0)
			kill(-pids[i], SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---------------------------------------------------------------- raw etcd client (libcurl) */

static size_t sink(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	if (b && buf_append(b, p, size * n) != 0)
		return 0;
	return size * n;
}

static CURL *gw_new(void)
{
	static struct curl_slist *headers;
	if (!headers) /* no "Expect: 100-continue" pause before large bodies */
		headers = curl_slist_append(curl_slist_append(NULL, "Expect:"), "Content-Type: application/json");
	CURL *c = curl_easy_init();
	if (!c)
		die("curl", "curl_easy_init failed");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
	return c;
}

/* POSTs body to etcd's gateway path; the reply goes to out when not NULL. 0 on HTTP 200. */
static int gw_post(CURL *c, const char *path, const char *body, struct buf *out)
{
	char url[128];
	long status = 0;
	snprintf(url, sizeof(url), "%s%s", etcd_url, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	return rc == CURLE_OK && status == 200 ? 0 : -1;
}

static void gw_must(CURL *c, const char *path, const char *body)
{
	if (gw_post(c, path, body, NULL) != 0)
		die(path, "etcd gateway request failed");
}

static void b64(const char *s, char *out, size_t cap)
{
	if (b64_encoded_size(strlen(s)) > cap)
		die("b64", "value too long");
	b64_encode(s, strlen(s), out, cap);
}

static int kv_put(CURL *c, const char *key, const char *value)
{
	char k[256], v[512], body[800];
	b64(key, k, sizeof(k));
	b64(value, v, sizeof(v));
	snprintf(body, sizeof(body), "{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
	return gw_post(c, "/v3/kv/put", body, NULL);
}

static int kv_delete(CURL *c, const char *key)
{
	char k[256], body[300];
	b64(key, k, sizeof(k));
	snprintf(body, sizeof(body), "{\"key\":\"%s\"}", k);
	return gw_post(c, "/v3/kv/deleterange", body, NULL);
}

/* The range_end that makes [prefix, end) every key starting with prefix. */
static void prefix_end(const char *prefix, char *out, size_t cap)
{
	snprintf(out, cap, "%s", prefix);
	out[strlen(out) - 1]++;
}

static void kv_delete_prefix(CURL *c, const char *prefix)
{
	char end[256], k[256], e[256], body[600];
	prefix_end(prefix, end, sizeof(end));
	b64(prefix, k, sizeof(k));
	b64(end, e, sizeof(e));
	snprintf(body, sizeof(body), "{\"key\":\"%s\",\"range_end\":\"%s\"}", k, e);
	gw_must(c, "/v3/kv/deleterange", body);
}

/* ---------------------------------------------------------------- keys and values */

static void pool_name(int s, char *out, size_t cap)
{
	snprintf(out, cap, "p%05d", s);
}

/* Subjects of batch b: "s<b>-<i>"; the batch keeps one cell's servers apart from another's. */
static void subject_name(int batch, int64_t i, char *out, size_t cap)
{
	snprintf(out, cap, "s%d-%05lld", batch, (long long)i);
}

/* The index of subject name of batch, or -1. */
static int64_t subject_index(const char *name, int batch)
{
	const char *dash = name[0] == 's' ? strchr(name, '-') : NULL;
	int64_t b, i;
	if (!dash || parse_i64_n(name + 1, (size_t)(dash - name - 1), 0, 1000000, &b) != 0 || b != batch)
		return -1;
	return parse_i64(dash + 1, 0, 10000000, &i) == 0 ? i : -1;
}

static void instance_key(const char *prefix, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/services/" SERVICE "/%s", prefix, name);
}

/* extra: "" or a JSON member list starting with a comma. */
static void instance_value(int port, const char *extra, char *out, size_t cap)
{
	snprintf(out, cap, "{\"address\":\"127.0.0.1\",\"port\":%d%s}", port, extra);
}

static int pool_port(int s)
{
	return 20000 + s;
}

static int subject_port(int64_t i)
{
	return 30000 + (int)(i % 30000);
}

/* Puts count instances in transactions of TXN_OPS: names from name_of(first + k). */
struct bulk {
	const char *prefix;
	int batch;  /* -1: pool servers */
	const char *extra;
};

static void bulk_entry(const struct bulk *bk, int64_t i, struct buf *b, bool first)
{
	char name[64], key[160], value[160], k[256], v[256];
	if (bk->batch < 0)
		pool_name((int)i, name, sizeof(name));
	else
		subject_name(bk->batch, i, name, sizeof(name));
	instance_key(bk->prefix, name, key, sizeof(key));
	instance_value(bk->batch < 0 ? pool_port((int)i) : subject_port(i), bk->extra, value, sizeof(value));
	b64(key, k, sizeof(k));
	b64(value, v, sizeof(v));
	buf_printf(b, "%s{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\"}}", first ? "" : ",", k, v);
}

static void bulk_put(CURL *c, const struct bulk *bk, int64_t count)
{
	for (int64_t off = 0; off < count; off += TXN_OPS) {
		struct buf b = BUF_INIT(1u << 20);
		buf_puts(&b, "{\"success\":[");
		for (int64_t i = off; i < count && i < off + TXN_OPS; i++)
			bulk_entry(bk, i, &b, i == off);
		buf_puts(&b, "]}");
		gw_must(c, "/v3/kv/txn", b.data);
		buf_release(&b);
	}
}

static void put_pool(CURL *c, const char *prefix, int pool)
{
	char extra[32];
	snprintf(extra, sizeof(extra), ",\"weight\":%d", BASE_WEIGHT);
	struct bulk bk = { prefix, -1, extra };
	bulk_put(c, &bk, pool);
}

/* ---------------------------------------------------------------- raw runtime socket client */

/* A bare prompt-mode connection: no `show info` probe before each command (as hap_rt does), so
 * that polling costs HAProxy one command per poll. */
struct raw_cli {
	int fd;
	struct buf in;
};

static size_t count_prompts(const struct buf *b)
{
	size_t n = 0;
	for (const char *p = b->data; p && (p = memmem(p, b->len - (size_t)(p - b->data), "\n> ", 3)); p += 3)
		n++;
	return n;
}

/* Reads until n prompts ended the replies; in->data then holds them all (prompts included). */
static int raw_read(struct raw_cli *r, size_t n)
{
	char chunk[65536];
	buf_reset(&r->in);
	while (count_prompts(&r->in) < n) {
		ssize_t got = read(r->fd, chunk, sizeof(chunk));
		if (got <= 0 || buf_append(&r->in, chunk, (size_t)got) != 0)
			return -1;
	}
	return 0;
}

static int raw_open(struct raw_cli *r, const char *path)
{
	struct timeval tv = { .tv_sec = 5 };
	buf_init(&r->in, 64u << 20);
	r->fd = net_connect_unix(path, NULL);
	if (r->fd < 0)
		return -1;
	setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (net_write_all(r->fd, "prompt\n", 7) != 0 || raw_read(r, 1) != 0) {
		close(r->fd);
		buf_release(&r->in);
		return -1;
	}
	return 0;
}

static void raw_close(struct raw_cli *r)
{
	close(r->fd);
	buf_release(&r->in);
}

/* Sends text holding n commands, one per line, and reads their n replies. */
static int raw_exec(struct raw_cli *r, const char *text, size_t len, size_t n)
{
	if (net_write_all(r->fd, text, len) != 0)
		return -1;
	return raw_read(r, n);
}

static int raw_servers_state(struct raw_cli *r, struct hap_servers_state *st)
{
	static const char cmd[] = "show servers state " SERVICE "\n";
	if (raw_exec(r, cmd, sizeof(cmd) - 1, 1) != 0)
		return -1;
	r->in.len -= 2; /* the final "> " */
	r->in.data[r->in.len] = '\0';
	return hap_parse_servers_state(r->in.data, r->in.len, st, NULL);
}

static enum view row_view(const struct hap_srv_state *row)
{
	enum hap_admin a = hap_admin_from_bits(row->admin_state);
	if (a == HAP_ADMIN_MAINT)
		return V_MAINT;
	if (a == HAP_ADMIN_DRAIN)
		return V_DRAIN;
	return row->op_state == HAP_OP_RUNNING ? V_READY : V_OTHER;
}

/* ---------------------------------------------------------------- targets */

/* The bare watcher's state (its code is further down). */
struct bare {
	const struct target *t;
	atomic_bool stop, created;
	struct buf line;      /* the gateway's stream: one JSON message per line */
	struct raw_cli cli;
	struct buf cmds;
	size_t n_cmds;
	json_t *known;        /* server names HAProxy has: the only state it keeps */
	_Atomic(const char *) failed; /* why the watch ended early; NULL while it runs */
};

struct target {
	enum target_id id;
	const char *prefix;   /* registry prefix of its keys */
	char *runtime_sock;
	int pool;
	int batch;            /* subjects present: batch and count; n_subj -1: unknown, clean up */
	int64_t n_subj;
	struct bare *bare;    /* T_BARE: the watcher */
	pthread_t bare_thread;
};

static CURL *admin_curl; /* main thread's handle for seeding and cleanup */
static int next_batch = 1;

struct census {
	int pool_ok;      /* pool servers ready at BASE_WEIGHT */
	int pool_rows;
	int64_t subj_ready, subj_rows;
	int64_t others;   /* rows that are neither: another batch, unknown names */
};

static int take_census(const struct target *t, int batch, struct census *c)
{
	struct raw_cli r;
	struct hap_servers_state st;
	memset(c, 0, sizeof(*c));
	if (raw_open(&r, t->runtime_sock) != 0)
		return -1;
	int rc = raw_servers_state(&r, &st);
	raw_close(&r);
	if (rc != 0)
		return -1;
	for (size_t i = 0; i < st.n; i++) {
		const struct hap_srv_state *row = &st.rows[i];
		bool ready = row_view(row) == V_READY;
		int64_t s;
		if (row->name[0] == 'p' && parse_i64(row->name + 1, 0, t->pool - 1, &s) == 0) {
			c->pool_rows++;
			c->pool_ok += ready && row->uweight == BASE_WEIGHT;
		} else if (subject_index(row->name, batch) >= 0) {
			c->subj_rows++;
			c->subj_ready += ready;
		} else {
			c->others++;
		}
	}
	hap_servers_state_release(&st);
	return 0;
}

/* Waits until the pool is at rest and exactly n subjects of batch are present and ready. */
static void wait_settled(const struct target *t, int batch, int64_t n, const char *why)
{
	int64_t deadline = time_mono_us() + SETTLE_TIMEOUT_US;
	struct census c = { 0 };
	for (;;) {
		if (take_census(t, batch, &c) == 0 && c.pool_ok == t->pool && c.pool_rows == t->pool &&
		    c.subj_rows == n && c.subj_ready == n && c.others == 0)
			return;
		if (t->bare && t->bare->failed)
			die("bare watcher", t->bare->failed);
		if (time_mono_us() > deadline || (t->id == T_VELTRIX && !proc_alive(ctl_pid))) {
			char msg[256];
			snprintf(msg, sizeof(msg),
				 "%s did not settle within %d s: pool %d/%d ready at weight %d (%d rows), subjects "
				 "%lld/%lld ready (%lld rows), %lld other rows",
				 target_names[t->id], (int)(SETTLE_TIMEOUT_US / USEC_PER_SEC), c.pool_ok, t->pool,
				 BASE_WEIGHT, c.pool_rows, (long long)c.subj_ready, (long long)n, (long long)c.subj_rows,
				 (long long)c.others);
			keep_tmp = true;
			die(why, msg);
		}
		time_sleep_us(20000);
	}
}

static void wait_answering(const char *sock, int64_t timeout_us, pid_t pid)
{
	int64_t deadline = time_mono_us() + timeout_us;
	struct raw_cli r;
	while (raw_open(&r, sock) != 0) {
		if (time_mono_us() > deadline || !proc_alive(pid)) {
			keep_tmp = true;
			die(sock, "HAProxy did not answer (see the logs)");
		}
		time_sleep_us(20000);
	}
	raw_close(&r);
}

/* ---------------------------------------------------------------- the veltrix target */

static void veltrix_config(const char *path, const char *state_dir)
{
	struct buf b = BUF_INIT(1u << 16);
	const char *delay = getenv("BENCH_CONV_BATCH_DELAY");
	buf_printf(&b, "etcd:\n  endpoints: [%s]\n  prefix: /veltrix\nhaproxy:\n  mode: managed\n"
		       "  state_dir: %s\n  maxconn: 4000\n  nbthread: 1\n"
		       "controller:\n  panic_threshold: 100%%\n  weight_feedback: false\n",
		   etcd_url, state_dir);
	if (delay && *delay)
		buf_printf(&b, "  max_batch_delay: %s\n", delay);
	buf_printf(&b, "services:\n  - name: " SERVICE "\n    bind: 127.0.0.1:%d\n    health:\n      type: none\n",
		   fx_unique_port());
	write_file(path, &b);
	buf_release(&b);
}

static void veltrix_start(struct target *t, int run)
{
	const char *bin = getenv("VELTRIX_BIN");
	char *dir = xasprintf("%s/veltrix-%d-%d", tmp, run, t->pool), *cfg = xasprintf("%s.yaml", dir);
	char *log = xasprintf("%s.log", dir), *master = xasprintf("%s/master.sock", dir);
	free(t->runtime_sock);
	t->runtime_sock = xasprintf("%s/runtime.sock", dir);
	put_pool(admin_curl, t->prefix, t->pool);
	veltrix_config(cfg, dir);
	const char *argv[] = { bin && *bin ? bin : "build/release/veltrix", "controller", "-c", cfg, NULL };
	ctl_pid = spawn(argv, log);
	wait_answering(t->runtime_sock, 30 * USEC_PER_SEC, ctl_pid);
	struct hap_proc_list l;
	struct vxerr err;
	if (hap_proc_show(master, 5 * USEC_PER_SEC, &l, &err) != 0)
		die("show proc", err.msg);
	ctl_hap_pgid = (pid_t)l.master_pid;
	guardian_note(ctl_hap_pgid, true);
	wait_settled(t, 0, 0, "controller start");
	free(dir);
	free(cfg);
	free(log);
	free(master);
}

static void veltrix_stop(void)
{
	stop_child(&ctl_pid);
	stop_group(&ctl_hap_pgid); /* the controller leaves its HAProxy running, by design */
}

/* ---------------------------------------------------------------- the bare watcher */


static void bare_cmd(struct bare *w, const char *verb, const char *name, const char *rest)
{
	buf_printf(&w->cmds, "%s " SERVICE "/%s%s\n", verb, name, rest);
	w->n_cmds++;
}

static void bare_put(struct bare *w, const char *name, json_t *v)
{
	json_t *weight = json_object_get(v, "weight");
	const char *state = json_string_value(json_object_get(v, "state"));
	char rest[96];
	if (!json_object_get(w->known, name)) {
		snprintf(rest, sizeof(rest), " %s:%lld", json_string_value(json_object_get(v, "address")),
			 (long long)json_integer_value(json_object_get(v, "port")));
		bare_cmd(w, "add server", name, rest);
		bare_cmd(w, "enable server", name, "");
		json_object_set_new(w->known, name, json_true());
	}
	if (json_is_integer(weight)) {
		snprintf(rest, sizeof(rest), " weight %lld", (long long)json_integer_value(weight));
		bare_cmd(w, "set server", name, rest);
	}
	if (state) {
		const char *s = strcmp(state, "draining") == 0 ? "drain" : strcmp(state, "down") == 0 ? "maint" : "ready";
		snprintf(rest, sizeof(rest), " state %s", s);
		bare_cmd(w, "set server", name, rest);
	}
}

static void bare_delete(struct bare *w, const char *name)
{
	if (!json_object_get(w->known, name))
		return;
	bare_cmd(w, "set server", name, " state maint");
	bare_cmd(w, "del server", name, "");
	json_object_del(w->known, name);
}

/* Decodes the base64 member field of kv into out; its length, or -1. */
static long kv_field(json_t *kv, const char *field, char *out, size_t cap)
{
	const char *s = json_string_value(json_object_get(kv, field));
	return s ? b64_decode(s, strlen(s), out, cap - 1) : -1;
}

static void bare_event(struct bare *w, json_t *e)
{
	json_t *kv = json_object_get(e, "kv");
	const char *type = json_string_value(json_object_get(e, "type")); /* absent: PUT (0) */
	char key[256], value[4096];
	long klen = kv_field(kv, "key", key, sizeof(key));
	const char *name = klen > 0 ? strrchr(key, '/') : NULL;
	if (!name || strspn(name + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-") !=
			     strlen(name + 1))
		return; /* the one check: nothing but a plain name may reach the text protocol */
	if (type && strcmp(type, "DELETE") == 0) {
		bare_delete(w, name + 1);
		return;
	}
	long vlen = kv_field(kv, "value", value, sizeof(value));
	json_t *v = vlen > 0 ? json_loadb(value, (size_t)vlen, 0, NULL) : NULL;
	if (v)
		bare_put(w, name + 1, v);
	json_decref(v);
}

static void bare_message(struct bare *w, const char *text, size_t len)
{
	json_t *j = json_loadb(text, len, 0, NULL);
	json_t *res = json_object_get(j, "result"), *events = json_object_get(res, "events"), *e;
	size_t i;
	if (!res)
		w->failed = "watch stream error";
	if (json_is_true(json_object_get(res, "created")))
		atomic_store(&w->created, true);
	buf_reset(&w->cmds);
	w->n_cmds = 0;
	json_array_foreach(events, i, e)
		bare_event(w, e);
	if (w->n_cmds > 0 && raw_exec(&w->cli, w->cmds.data, w->cmds.len, w->n_cmds) != 0)
		w->failed = "runtime socket failed";
	json_decref(j);
}

static size_t bare_stream(char *p, size_t size, size_t n, void *ud)
{
	struct bare *w = ud;
	char *nl;
	if (buf_append(&w->line, p, size * n) != 0)
		return 0;
	while ((nl = memchr(w->line.data, '\n', w->line.len)) != NULL) {
		size_t len = (size_t)(nl - w->line.data);
		if (len > 0)
			bare_message(w, w->line.data, len);
		buf_consume(&w->line, len + 1);
	}
	return w->failed ? 0 : size * n;
}

static int bare_progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	struct bare *w = ud;
	(void)a;
	(void)b;
	(void)c;
	(void)d;
	return atomic_load(&w->stop) ? 1 : 0;
}

/* The names HAProxy already has (its static pool): the watcher's starting knowledge. */
static void bare_learn(struct bare *w)
{
	struct hap_servers_state st;
	if (raw_servers_state(&w->cli, &st) != 0)
		die("bare watcher", "show servers state failed");
	for (size_t i = 0; i < st.n; i++)
		json_object_set_new(w->known, st.rows[i].name, json_true());
	hap_servers_state_release(&st);
}

static void *bare_main(void *arg)
{
	struct bare *w = arg;
	char prefix[128], end[128], k[256], e[256], body[600], url[128];
	snprintf(prefix, sizeof(prefix), "%s/services/" SERVICE "/", w->t->prefix);
	prefix_end(prefix, end, sizeof(end));
	b64(prefix, k, sizeof(k));
	b64(end, e, sizeof(e));
	snprintf(body, sizeof(body), "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\"}}", k, e);
	snprintf(url, sizeof(url), "%s/v3/watch", etcd_url);
	CURL *c = gw_new();
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, bare_stream);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, bare_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, w);
	curl_easy_perform(c);
	if (!atomic_load(&w->stop) && !w->failed)
		w->failed = "watch stream ended";
	curl_easy_cleanup(c);
	return NULL;
}

static void bare_config(const char *path, const char *sock, int pool)
{
	struct buf b = BUF_INIT(1u << 20);
	buf_printf(&b, "global\n    stats socket %s mode 600 level admin\n    stats timeout 2m\n"
		       "    maxconn 4000\n    nbthread 1\n\ndefaults\n    timeout connect 5s\n"
		       "    timeout client 30s\n    timeout server 30s\n\nfrontend fe." SERVICE "\n    mode http\n"
		       "    bind 127.0.0.1:%d\n    default_backend " SERVICE "\n\nbackend " SERVICE "\n    mode http\n"
		       "    balance leastconn\n    timeout queue 5s\n    retries 3\n    retry-on conn-failure empty-response\n"
		       "    option redispatch 1\n    http-reuse safe\n",
		   sock, fx_unique_port());
	for (int s = 0; s < pool; s++) {
		char name[16];
		pool_name(s, name, sizeof(name));
		buf_printf(&b, "    server %s 127.0.0.1:%d weight %d maxconn 100 pool-max-conn -1 pool-purge-delay 5s\n",
			   name, pool_port(s), BASE_WEIGHT);
	}
	write_file(path, &b);
	buf_release(&b);
}

static void bare_start(struct target *t, int run)
{
	char *dir = xasprintf("%s/bare-%d-%d", tmp, run, t->pool), *cfg = xasprintf("%s.cfg", dir);
	char *log = xasprintf("%s.log", dir);
	free(t->runtime_sock);
	t->runtime_sock = xasprintf("%s.sock", dir);
	put_pool(admin_curl, t->prefix, t->pool);
	bare_config(cfg, t->runtime_sock, t->pool);
	const char *argv[] = { "haproxy", "-db", "-f", cfg, NULL };
	bare_hap_pid = spawn(argv, log);
	wait_answering(t->runtime_sock, 30 * USEC_PER_SEC, bare_hap_pid);
	struct bare *w = xcalloc(1, sizeof(*w));
	w->t = t;
	buf_init(&w->line, 64u << 20);
	buf_init(&w->cmds, 16u << 20);
	w->known = json_object();
	if (raw_open(&w->cli, t->runtime_sock) != 0)
		die("bare watcher", "runtime socket");
	bare_learn(w);
	t->bare = w;
	pthread_create(&t->bare_thread, NULL, bare_main, w);
	int64_t deadline = time_mono_us() + 10 * USEC_PER_SEC;
	while (!atomic_load(&w->created))
		if (time_mono_us() > deadline || w->failed)
			die("bare watcher", w->failed ? w->failed : "watch not created within 10 s");
		else
			time_sleep_us(5000);
	wait_settled(t, 0, 0, "bare start");
	free(dir);
	free(cfg);
	free(log);
}

static void bare_stop(struct target *t)
{
	struct bare *w = t->bare;
	if (!w)
		return;
	atomic_store(&w->stop, true);
	pthread_join(t->bare_thread, NULL);
	raw_close(&w->cli);
	buf_release(&w->line);
	buf_release(&w->cmds);
	json_decref(w->known);
	free(w);
	t->bare = NULL;
	stop_child(&bare_hap_pid);
}

/* ---------------------------------------------------------------- one cell */

struct result {
	double p50, p99, max;
	int64_t seen, lost, errors;
	double achieved;    /* changes/s the writers kept */
	double poll_ms;     /* mean time between two polls: the resolution */
	double put_p50, put_p99; /* etcd's answer to a put or delete, ms: the registry's share */
};

struct cell {
	const struct target *t;
	enum kind kind;
	int rate, pool, batch, writers;
	int64_t n, timeout_us, start_us, poll_pause_us;
	int64_t *sent_us;   /* written by the writers (atomic), read by the poller */
	int64_t *seen_us;   /* written by the poller only */
	int64_t *acked_us;  /* etcd answered, written by the writers */
	atomic_llong n_seen, errors;
	atomic_bool stop;
	int *applied;       /* weight: changes seen so far, per pool server */
	unsigned char *view;
	int64_t polls, poll_span_us;
};

static int weight_of(int64_t k)
{
	return 1 + (int)((k - 1) % WEIGHT_CYCLE);
}

static int64_t sent_at(struct cell *c, int64_t i)
{
	return __atomic_load_n(&c->sent_us[i], __ATOMIC_ACQUIRE);
}

static void mark_seen(struct cell *c, int64_t i, int64_t now)
{
	c->seen_us[i] = now;
	atomic_fetch_add(&c->n_seen, 1);
}

/* Pool server s shows weight w: every change to s up to the one that set w is applied. */
static void saw_weight(struct cell *c, int s, int64_t w, int64_t now)
{
	for (int k = c->applied[s] + 1; k <= c->applied[s] + WEIGHT_CYCLE; k++) {
		int64_t i = (int64_t)(k - 1) * c->pool + s;
		if (i >= c->n || sent_at(c, i) == 0)
			return; /* not sent yet: the weight is an older one */
		if (weight_of(k) != w)
			continue;
		for (int j = c->applied[s] + 1; j <= k; j++)
			mark_seen(c, (int64_t)(j - 1) * c->pool + s, now);
		c->applied[s] = k;
		return;
	}
}

static void observe_weights(struct cell *c, const struct hap_servers_state *st, int64_t now)
{
	for (size_t i = 0; i < st->n; i++) {
		int64_t s;
		if (st->rows[i].name[0] == 'p' && parse_i64(st->rows[i].name + 1, 0, c->pool - 1, &s) == 0)
			saw_weight(c, (int)s, st->rows[i].uweight, now);
	}
}

static bool visible(enum kind k, enum view v)
{
	switch (k) {
	case K_ADD: return v == V_READY;
	case K_DELETE: return v == V_ABSENT;
	case K_DRAIN: return v == V_DRAIN || v == V_MAINT || v == V_ABSENT;
	case K_DOWN: return v == V_MAINT;
	default: return false;
	}
}

static void observe_subjects(struct cell *c, const struct hap_servers_state *st, int64_t now)
{
	memset(c->view, V_ABSENT, (size_t)c->n);
	for (size_t r = 0; r < st->n; r++) {
		int64_t i = subject_index(st->rows[r].name, c->batch);
		if (i >= 0 && i < c->n)
			c->view[i] = (unsigned char)row_view(&st->rows[r]);
	}
	for (int64_t i = 0; i < c->n; i++)
		if (c->seen_us[i] == 0 && sent_at(c, i) != 0 && visible(c->kind, (enum view)c->view[i]))
			mark_seen(c, i, now);
}

static void *poller_main(void *arg)
{
	struct cell *c = arg;
	struct raw_cli cli;
	if (raw_open(&cli, c->t->runtime_sock) != 0)
		die("poller", "cannot open the runtime socket");
	int64_t first = 0, last = 0;
	while (!atomic_load(&c->stop)) {
		struct hap_servers_state st;
		if (raw_servers_state(&cli, &st) != 0)
			die("poller", "show servers state failed");
		int64_t now = time_mono_us();
		if (c->kind == K_WEIGHT)
			observe_weights(c, &st, now);
		else
			observe_subjects(c, &st, now);
		hap_servers_state_release(&st);
		first = first ? first : now;
		last = now;
		c->polls++;
		time_sleep_us(c->poll_pause_us);
	}
	c->poll_span_us = last - first;
	raw_close(&cli);
	return NULL;
}

/* The server a change goes to: weight changes cycle over the pool, the others each take one
 * subject. One server's changes always come from the same writer, in order. */
static int64_t server_of(const struct cell *c, int64_t i)
{
	return c->kind == K_WEIGHT ? i % c->pool : i;
}

static int send_change(CURL *h, const struct cell *c, int64_t i)
{
	char name[64], key[160], value[160], extra[48] = "";
	int64_t s = server_of(c, i);
	if (c->kind == K_WEIGHT)
		pool_name((int)s, name, sizeof(name));
	else
		subject_name(c->batch, s, name, sizeof(name));
	instance_key(c->t->prefix, name, key, sizeof(key));
	if (c->kind == K_DELETE)
		return kv_delete(h, key);
	if (c->kind == K_WEIGHT)
		snprintf(extra, sizeof(extra), ",\"weight\":%d", weight_of(i / c->pool + 1));
	else if (c->kind == K_DRAIN)
		snprintf(extra, sizeof(extra), ",\"state\":\"draining\"");
	else if (c->kind == K_DOWN)
		snprintf(extra, sizeof(extra), ",\"state\":\"down\"");
	instance_value(c->kind == K_WEIGHT ? pool_port((int)s) : subject_port(s), extra, value, sizeof(value));
	return kv_put(h, key, value);
}

struct writer {
	struct cell *c;
	int index;
	int64_t done_us;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	struct cell *c = w->c;
	CURL *h = gw_new();
	for (int64_t i = 0; i < c->n; i++) {
		if (server_of(c, i) % c->writers != w->index)
			continue;
		int64_t due = c->start_us + i * USEC_PER_SEC / c->rate, now = time_mono_us();
		if (due > now)
			time_sleep_us(due - now);
		__atomic_store_n(&c->sent_us[i], time_mono_us(), __ATOMIC_RELEASE);
		if (send_change(h, c, i) != 0)
			atomic_fetch_add(&c->errors, 1);
		c->acked_us[i] = time_mono_us();
	}
	w->done_us = time_mono_us();
	curl_easy_cleanup(h);
	return NULL;
}

/* Starts the writers, waits for them; returns when the last change was sent. */
static int64_t run_writers(struct cell *c)
{
	pthread_t th[WRITERS_MAX];
	struct writer wr[WRITERS_MAX];
	int64_t last = c->start_us;
	for (int i = 0; i < c->writers; i++) {
		wr[i] = (struct writer){ c, i, 0 };
		pthread_create(&th[i], NULL, writer_main, &wr[i]);
	}
	for (int i = 0; i < c->writers; i++) {
		pthread_join(th[i], NULL);
		last = wr[i].done_us > last ? wr[i].done_us : last;
	}
	return last;
}

static void cell_summarize(struct cell *c, int64_t last_sent, struct result *out)
{
	int64_t *lat = xcalloc((size_t)c->n, sizeof(*lat));
	size_t n = 0;
	for (int64_t i = 0; i < c->n; i++) {
		int64_t d = c->seen_us[i] - c->sent_us[i];
		if (c->seen_us[i] > 0 && d <= c->timeout_us)
			lat[n++] = d;
	}
	qsort(lat, n, sizeof(*lat), fx_cmp_i64);
	*out = (struct result){ .p50 = fx_pct_ms(lat, n, 0.50), .p99 = fx_pct_ms(lat, n, 0.99), .max = fx_pct_ms(lat, n, 1.0),
				.seen = (int64_t)n, .lost = c->n - (int64_t)n, .errors = atomic_load(&c->errors) };
	for (int64_t i = 0; i < c->n; i++)
		lat[i] = c->acked_us[i] - c->sent_us[i];
	qsort(lat, (size_t)c->n, sizeof(*lat), fx_cmp_i64);
	out->put_p50 = fx_pct_ms(lat, (size_t)c->n, 0.50);
	out->put_p99 = fx_pct_ms(lat, (size_t)c->n, 0.99);
	int64_t span = last_sent - c->start_us;
	out->achieved = c->n > 1 && span > 0 ? (double)(c->n - 1) * 1e6 / (double)span : c->rate;
	out->poll_ms = c->polls > 1 ? (double)c->poll_span_us / 1000.0 / (double)(c->polls - 1) : -1;
	free(lat);
}

static void cell_run(struct cell *c, struct result *out)
{
	c->sent_us = xcalloc((size_t)c->n, sizeof(*c->sent_us));
	c->seen_us = xcalloc((size_t)c->n, sizeof(*c->seen_us));
	c->acked_us = xcalloc((size_t)c->n, sizeof(*c->acked_us));
	c->applied = xcalloc((size_t)c->pool, sizeof(*c->applied));
	c->view = xcalloc((size_t)c->n, 1);
	c->writers = c->kind == K_WEIGHT && c->pool < WRITERS_MAX ? c->pool : WRITERS_MAX;
	pthread_t poller;
	pthread_create(&poller, NULL, poller_main, c);
	c->start_us = time_mono_us() + 20000; /* the poller connected and polling */
	int64_t last_sent = run_writers(c);
	while (atomic_load(&c->n_seen) < c->n && time_mono_us() < last_sent + c->timeout_us)
		time_sleep_us(2000);
	time_sleep_us(2000);
	atomic_store(&c->stop, true);
	pthread_join(poller, NULL);
	cell_summarize(c, last_sent, out);
	free(c->sent_us);
	free(c->seen_us);
	free(c->acked_us);
	free(c->applied);
	free(c->view);
}

/* ---------------------------------------------------------------- preparing and cleaning */

static char *subjects_prefix(const struct target *t)
{
	return xasprintf("%s/services/" SERVICE "/s", t->prefix);
}

/* Writes what the cell needs: no subjects (add, weight), or n fresh ones, converged (delete
 * keeps the ones an add cell just created). The waits come in prepare_wait, so that both
 * targets settle at the same time. */
static void prepare_write(struct target *t, enum kind k, int64_t n)
{
	bool reuse = k == K_DELETE && t->n_subj == n;
	if (reuse)
		return;
	if (t->n_subj != 0) {
		char *p = subjects_prefix(t);
		kv_delete_prefix(admin_curl, p);
		free(p);
	}
	t->batch = next_batch++;
	t->n_subj = 0;
	if (k == K_DELETE || k == K_DRAIN || k == K_DOWN) {
		struct bulk bk = { t->prefix, t->batch, "" };
		bulk_put(admin_curl, &bk, n);
		t->n_subj = n;
	}
}

static void prepare_wait(struct target *t)
{
	wait_settled(t, t->batch, t->n_subj, "preparing a cell");
}

/* After a cell: what is present now. Weights go back to BASE_WEIGHT. */
static void after_cell(struct target *t, enum kind k, int64_t n, const struct result *r)
{
	if (k == K_WEIGHT)
		put_pool(admin_curl, t->prefix, t->pool);
	else if (k == K_ADD)
		t->n_subj = r->lost == 0 ? n : -1;
	else if (k == K_DELETE)
		t->n_subj = r->lost == 0 ? 0 : -1;
	else
		t->n_subj = -1; /* drained or down: not reusable */
}

/* ---------------------------------------------------------------- the plan and the results */

struct plan {
	int rates[MAX_LIST], n_rates;
	int pools[MAX_LIST], n_pools;
	int kinds[MAX_LIST], n_kinds;
	int targets[MAX_LIST], n_targets;
	int runs;
	double seconds;
	int64_t max_changes, timeout_us, poll_pause_us;
};

/* results[target][kind][rate][pool][run] */
static struct result results[N_TARGETS][N_KINDS][MAX_LIST][MAX_LIST][MAX_RUNS];

static int64_t changes_for(const struct plan *p, int rate)
{
	int64_t n = (int64_t)((double)rate * p->seconds + 0.5);
	n = n < p->max_changes ? n : p->max_changes;
	return n > 0 ? n : 1;
}

static void report_progress(int run, const struct cell *c, const struct result *r)
{
	fprintf(stderr,
		"run %d pool %4d %-7s %-6s %5d/s: n=%lld p50=%.2f p99=%.2f max=%.2f ms lost=%lld errors=%lld "
		"achieved=%.0f/s poll=%.2f ms etcd put p50=%.2f p99=%.2f ms\n",
		run + 1, c->pool, target_names[c->t->id], kind_names[c->kind], c->rate, (long long)c->n, r->p50, r->p99,
		r->max, (long long)r->lost, (long long)r->errors, r->achieved, r->poll_ms, r->put_p50, r->put_p99);
}

static void run_cell(const struct plan *p, struct target *t, int run, int ki, int ri, int pi)
{
	struct cell c = { .t = t, .kind = (enum kind)p->kinds[ki], .rate = p->rates[ri], .pool = t->pool,
			  .batch = t->batch, .n = changes_for(p, p->rates[ri]), .timeout_us = p->timeout_us,
			  .poll_pause_us = p->poll_pause_us };
	struct result *r = &results[t->id][c.kind][ri][pi][run];
	cell_run(&c, r);
	report_progress(run, &c, r);
	after_cell(t, c.kind, c.n, r);
}

/* One pool size in one run: both targets started, then every (rate, kind) cell on each. */
static void run_pool(const struct plan *p, struct target *tg, int run, int pi)
{
	for (int i = 0; i < p->n_targets; i++) {
		struct target *t = &tg[p->targets[i]];
		t->pool = p->pools[pi];
		t->n_subj = 0;
		if (t->id == T_VELTRIX)
			veltrix_start(t, run);
		else
			bare_start(t, run);
	}
	for (int ri = 0; ri < p->n_rates; ri++)
		for (int ki = 0; ki < p->n_kinds; ki++) {
			int64_t n = changes_for(p, p->rates[ri]);
			for (int i = 0; i < p->n_targets; i++)
				prepare_write(&tg[p->targets[i]], (enum kind)p->kinds[ki], n);
			for (int i = 0; i < p->n_targets; i++)
				prepare_wait(&tg[p->targets[i]]);
			for (int i = 0; i < p->n_targets; i++) /* the order alternates between runs */
				run_cell(p, &tg[p->targets[run % 2 ? p->n_targets - 1 - i : i]], run, ki, ri, pi);
		}
	veltrix_stop();
	bare_stop(&tg[T_BARE]);
	kv_delete_prefix(admin_curl, "/veltrix/");
	kv_delete_prefix(admin_curl, "/bare/");
}

/* The median of runs values of field (by offset) and their range. */
struct agg {
	double med, lo, hi;
};

static struct agg aggregate(const struct result *r, int runs, size_t off)
{
	double v[MAX_RUNS];
	int n = 0;
	for (int i = 0; i < runs; i++) {
		double x = *(const double *)(const void *)((const char *)&r[i] + off);
		if (x >= 0)
			v[n++] = x;
	}
	if (n == 0)
		return (struct agg){ -1, -1, -1 };
	qsort(v, (size_t)n, sizeof(v[0]), cmp_double);
	double med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	return (struct agg){ med, v[0], v[n - 1] };
}

struct row_sum {
	struct agg p50, p99, max, achieved, put_p50, put_p99;
	int64_t seen, lost, planned;
};

static struct row_sum summarize(const struct plan *p, int t, int ki, int ri, int pi)
{
	const struct result *r = results[t][p->kinds[ki]][ri][pi];
	struct row_sum s = { aggregate(r, p->runs, offsetof(struct result, p50)),
			     aggregate(r, p->runs, offsetof(struct result, p99)),
			     aggregate(r, p->runs, offsetof(struct result, max)),
			     aggregate(r, p->runs, offsetof(struct result, achieved)),
			     aggregate(r, p->runs, offsetof(struct result, put_p50)),
			     aggregate(r, p->runs, offsetof(struct result, put_p99)), 0, 0, 0 };
	for (int i = 0; i < p->runs; i++) {
		s.seen += r[i].seen;
		s.lost += r[i].lost;
	}
	s.planned = changes_for(p, p->rates[ri]) * p->runs;
	return s;
}

static void print_table(const struct plan *p)
{
	printf("\n%-7s %-6s %5s %5s | %-22s | %-22s | %-9s | %6s %5s | %s\n", "target", "kind", "rate", "pool",
	       "p50 ms [range]", "p99 ms [range]", "max ms", "count", "lost", "achieved/s");
	for (int pi = 0; pi < p->n_pools; pi++)
		for (int ki = 0; ki < p->n_kinds; ki++)
			for (int ri = 0; ri < p->n_rates; ri++)
				for (int i = 0; i < p->n_targets; i++) {
					struct row_sum s = summarize(p, p->targets[i], ki, ri, pi);
					char a[32], b[32];
					snprintf(a, sizeof(a), "%.2f [%.2f-%.2f]", s.p50.med, s.p50.lo, s.p50.hi);
					snprintf(b, sizeof(b), "%.2f [%.2f-%.2f]", s.p99.med, s.p99.lo, s.p99.hi);
					printf("%-7s %-6s %5d %5d | %-22s | %-22s | %9.2f | %6lld %5lld | %.0f\n",
					       target_names[p->targets[i]], kind_names[p->kinds[ki]], p->rates[ri], p->pools[pi],
					       a, b, s.max.med, (long long)s.seen, (long long)s.lost, s.achieved.med);
				}
}

static void print_tsv(const struct plan *p, const char *commit)
{
	printf("\n# BEGIN TSV bench_converge commit=%s runs=%d seconds=%.2f timeout_ms=%lld\n", commit, p->runs,
	       p->seconds, (long long)(p->timeout_us / 1000));
	printf("target\tkind\trate\tpool\tp50_ms\tp50_lo\tp50_hi\tp99_ms\tp99_lo\tp99_hi\tmax_ms\tmax_hi\tcount\tlost\t"
	       "planned\tachieved\tput_p50_ms\tput_p99_ms\n");
	for (int pi = 0; pi < p->n_pools; pi++)
		for (int ki = 0; ki < p->n_kinds; ki++)
			for (int ri = 0; ri < p->n_rates; ri++)
				for (int i = 0; i < p->n_targets; i++) {
					struct row_sum s = summarize(p, p->targets[i], ki, ri, pi);
					printf("%s\t%s\t%d\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%lld\t%lld\t%lld\t%.0f\t"
					       "%.2f\t%.2f\n",
					       target_names[p->targets[i]], kind_names[p->kinds[ki]], p->rates[ri],
					       p->pools[pi], s.p50.med, s.p50.lo, s.p50.hi, s.p99.med, s.p99.lo, s.p99.hi,
					       s.max.med, s.max.hi, (long long)s.seen, (long long)s.lost, (long long)s.planned,
					       s.achieved.med, s.put_p50.med, s.put_p99.med);
				}
	printf("# END TSV\n");
}

/* ---------------------------------------------------------------- setup and main */

static void start_etcd(void)
{
	char purl[64], cluster[96];
	snprintf(etcd_url, sizeof(etcd_url), "http://127.0.0.1:%d", fx_unique_port());
	snprintf(purl, sizeof(purl), "http://127.0.0.1:%d", fx_unique_port());
	snprintf(cluster, sizeof(cluster), "b=%s", purl);
	char *data = xasprintf("%s/etcd", tmp), *log = xasprintf("%s/etcd.log", tmp);
	const char *argv[] = { "etcd", "--name", "b", "--data-dir", data, "--listen-client-urls", etcd_url,
			       "--advertise-client-urls", etcd_url, "--listen-peer-urls", purl,
			       "--initial-advertise-peer-urls", purl, "--initial-cluster", cluster,
			       "--quota-backend-bytes", "4294967296", NULL };
	etcd_pid = spawn(argv, log);
	int64_t deadline = time_mono_us() + 20 * USEC_PER_SEC;
	char key[] = "/bench/ping";
	while (kv_put(admin_curl, key, "1") != 0)
		if (time_mono_us() > deadline || !proc_alive(etcd_pid))
			die("etcd", "not answering within 20 s");
		else
			time_sleep_us(50000);
	free(data);
	free(log);
}

/* One line of a command's output, or "unknown". */
static void command_line(const char *cmd, char *out, size_t cap)
{
	FILE *f = popen(cmd, "r");
	snprintf(out, cap, "unknown");
	if (f && fgets(out, (int)cap, f))
		out[strcspn(out, "\n")] = '\0';
	if (f)
		pclose(f);
}

static void load_plan(struct plan *p)
{
	const char *s = getenv("BENCH_CONV_SECONDS");
	p->n_rates = env_list("BENCH_CONV_RATES", "100,1000,5000", p->rates, lookup_number);
	p->n_pools = env_list("BENCH_CONV_POOLS", "10,1000", p->pools, lookup_number);
	p->n_kinds = env_list("BENCH_CONV_KINDS", "add,delete,weight,drain,down", p->kinds, lookup_kind);
	p->n_targets = env_list("BENCH_CONV_TARGETS", "veltrix,bare", p->targets, lookup_target);
	p->runs = (int)env_int("BENCH_CONV_RUNS", 3, 1, MAX_RUNS);
	p->max_changes = env_int("BENCH_CONV_MAX_CHANGES", 2000, 1, 1000000);
	p->timeout_us = env_int("BENCH_CONV_TIMEOUT_MS", 5000, 10, 600000) * 1000;
	p->poll_pause_us = env_int("BENCH_CONV_POLL_PAUSE_US", 100, 1, 1000000);
	p->seconds = 1.0;
	if (s && *s && parse_double(s, 0.01, 600, &p->seconds) != 0)
		die("BENCH_CONV_SECONDS", "not a number of seconds in 0.01..600");
	for (int i = 0; i < p->n_pools; i++)
		if (p->pools[i] > 99999)
			die("BENCH_CONV_POOLS", "at most 99999 servers");
}

static void print_header(const struct plan *p, char *commit, size_t cap)
{
	const char *env_commit = getenv("VX_COMMIT"), *bin = getenv("VELTRIX_BIN"), *top = getenv("VX_TOP");
	char cmd[600], version[128];
	top = top && *top && !strchr(top, '\'') ? top : ".";
	snprintf(cmd, sizeof(cmd), "git -C '%s' rev-parse --short HEAD 2>/dev/null", top);
	if (env_commit && *env_commit)
		snprintf(commit, cap, "%s", env_commit);
	else
		command_line(cmd, commit, cap);
	bin = bin && *bin ? bin : "build/release/veltrix";
	snprintf(cmd, sizeof(cmd), "'%s' --version 2>/dev/null", strchr(bin, '\'') ? "" : bin);
	command_line(cmd, version, sizeof(version));
	printf("bench_converge: commit %s; controller %s (%s); %d run(s), %.2f s per cell (at most %lld changes), "
	       "lost after %lld ms\n",
	       commit, bin, version, p->runs, p->seconds, (long long)p->max_changes, (long long)(p->timeout_us / 1000));
	fflush(stdout);
}

int main(void)
{
	struct plan p;
	char commit[64];
	const char *base = getenv("TMPDIR");
	load_plan(&p);
	tmp = xasprintf("%s/vx-bench-conv-XXXXXX", base && *base ? base : "/tmp");
	if (!mkdtemp(tmp))
		die("mkdtemp", strerror(errno));
	guardian_start(tmp);
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	print_header(&p, commit, sizeof(commit));
	curl_global_init(CURL_GLOBAL_DEFAULT);
	admin_curl = gw_new();
	start_etcd();
	struct target tg[N_TARGETS] = { { .id = T_VELTRIX, .prefix = "/veltrix" }, { .id = T_BARE, .prefix = "/bare" } };
	for (int run = 0; run < p.runs; run++)
		for (int pi = 0; pi < p.n_pools; pi++)
			run_pool(&p, tg, run, pi);
	print_table(&p);
	print_tsv(&p, commit);
	curl_easy_cleanup(admin_curl);
	free(tg[T_VELTRIX].runtime_sock);
	free(tg[T_BARE].runtime_sock);
	return 0;
}
