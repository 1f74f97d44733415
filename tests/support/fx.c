/* Test fixtures (see fx.h). */
#include "fx.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/net.h"
#include "common/proc.h"
#include "common/timeutil.h"

#define MAX_TRACKED 64
#define MAX_TMPDIRS 32

static pid_t tracked[MAX_TRACKED];
static char *tmpdirs[MAX_TMPDIRS];
static bool hooks_installed;

void fx_die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "fixture: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(99); /* atexit hooks stop whatever was started */
}

static void stop_all(void)
{
	for (int i = 0; i < MAX_TRACKED; i++) {
		if (tracked[i] > 0) {
			proc_stop(tracked[i], 3000);
			tracked[i] = 0;
		}
	}
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void cleanup(void)
{
	stop_all();
	const char *keep = getenv("VX_KEEP_TMP");
	for (int i = 0; i < MAX_TMPDIRS; i++) {
		if (!tmpdirs[i])
			continue;
		if (!keep || strcmp(keep, "1") != 0)
			nftw(tmpdirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS);
		free(tmpdirs[i]);
		tmpdirs[i] = NULL;
	}
}

static void on_signal(int sig)
{
	/* Not async-signal-safe in general, but the test is dying anyway and stopping
	 * etcd and HAProxy matters more than the rest. */
	for (int i = 0; i < MAX_TRACKED; i++)
		if (tracked[i] > 0)
			kill(tracked[i], SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

static void install_hooks(void)
{
	if (hooks_installed)
		return;
	hooks_installed = true;
	atexit(cleanup);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGALRM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void fx_track(pid_t pid)
{
	install_hooks();
	for (int i = 0; i < MAX_TRACKED; i++) {
		if (tracked[i] == 0) {
			tracked[i] = pid;
			return;
		}
	}
	fx_die("too many tracked processes");
}

void fx_untrack(pid_t pid)
{
	for (int i = 0; i < MAX_TRACKED; i++)
		if (tracked[i] == pid)
			tracked[i] = 0;
}

char *fx_tmpdir(const char *tag)
{
	install_hooks();
	const char *base = getenv("TMPDIR");
	char *tmpl = xasprintf("%s/vx-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	if (!mkdtemp(tmpl))
		fx_die("mkdtemp %s: %s", tmpl, strerror(errno));
	for (int i = 0; i < MAX_TMPDIRS; i++) {
		if (!tmpdirs[i]) {
			tmpdirs[i] = xstrdup(tmpl);
			return tmpl;
		}
	}
	fx_die("too many temporary directories");
}

const char *fx_veltrix_bin(void)
{
	const char *b = getenv("VELTRIX_BIN");
	return b && *b ? b : "build/asan/veltrix";
}

char *fx_path(const char *dir, const char *name)
{
	return xasprintf("%s/%s", dir, name);
}

char *fx_read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	struct buf b = BUF_INIT(64u << 20);
	char chunk[8192];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&b, chunk, n) != 0)
			break;
	fclose(f);
	return buf_detach(&b, NULL);
}

void fx_write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		fx_die("cannot write %s: %s", path, strerror(errno));
	fputs(content, f);
	fclose(f);
}

static char *temp_file(void)
{
	const char *base = getenv("TMPDIR");
	char *path = xasprintf("%s/vx-out-XXXXXX", base && *base ? base : "/tmp");
	int fd = mkstemp(path);
	if (fd < 0)
		fx_die("mkstemp %s: %s", path, strerror(errno));
	close(fd);
	return path;
}

void fx_run(struct fx_run *r, int timeout_ms, const char *const argv[])
{
	install_hooks();
	char *out = temp_file(), *err = temp_file();
	struct proc_opts o = { .stdout_path = out, .stderr_path = err, .new_pgrp = true, .die_with_parent = true };
	struct vxerr e;
	pid_t pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &e);
	if (pid < 0)
		fx_die("%s", e.msg);
	fx_track(pid);
	int st;
	if (proc_wait(pid, timeout_ms, &st) != 0) {
		proc_stop(pid, 1000);
		r->status = -1;
	} else {
		r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	fx_untrack(pid);
	r->out = fx_read_file(out);
	r->err = fx_read_file(err);
	unlink(out);
	unlink(err);
	free(out);
	free(err);
}

void fx_run_free(struct fx_run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

void fx_veltrix(struct fx_run *r, int timeout_ms, ...)
{
	const char *argv[64];
	int n = 0;
	argv[n++] = fx_veltrix_bin();
	va_list ap;
	va_start(ap, timeout_ms);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && n < 63)
		argv[n++] = a;
	va_end(ap);
	argv[n] = NULL;
	fx_run(r, timeout_ms, argv);
}

bool fx_wait(bool (*cond)(void *arg), void *arg, int timeout_ms)
{
	int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
	for (;;) {
		if (cond(arg))
			return true;
		if (time_mono_us() > deadline)
			return false;
		time_sleep_us(10000);
	}
}

static size_t collect(char *p, size_t size, size_t n, void *userdata)
{
	buf_append(userdata, p, size * n);
	return size * n;
}

long fx_http(const char *method, const char *url, const char *body, char **resp)
{
	install_hooks();
	CURL *c = curl_easy_init();
	struct buf b = BUF_INIT(16u << 20);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	long status = -1;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (resp)
		*resp = buf_detach(&b, NULL);
	else
		buf_release(&b);
	return status;
}

static void etcd_prepare(struct fx_etcd *e, int index)
{
	if (!e->dir)
		e->dir = fx_tmpdir("etcd");
	snprintf(e->name, sizeof(e->name), "m%d", index);
	e->client_port = net_free_port();
	e->peer_port = net_free_port();
	if (e->client_port <= 0 || e->peer_port <= 0 || e->client_port == e->peer_port)
		fx_die("no free loopback port for etcd");
	snprintf(e->url, sizeof(e->url), "%s://127.0.0.1:%d", e->tls_ca ? "https" : "http", e->client_port);
	snprintf(e->peer_url, sizeof(e->peer_url), "http://127.0.0.1:%d", e->peer_port);
}

static void etcd_spawn(struct fx_etcd *e, bool new_cluster)
{
	char *data = fx_path(e->dir, "data"), *log = fx_path(e->dir, "etcd.log");
	const char *argv[48] = {
		"etcd", "--name", e->name, "--data-dir", data,
		"--listen-client-urls", e->url, "--advertise-client-urls", e->url,
		"--listen-peer-urls", e->peer_url, "--initial-advertise-peer-urls", e->peer_url,
		"--initial-cluster", e->initial_cluster,
		"--initial-cluster-state", new_cluster ? "new" : "existing",
		"--initial-cluster-token", "veltrix-test",
		"--logger", "zap", "--log-outputs", "stderr",
		"--heartbeat-interval", "50", "--election-timeout", "500",
	};
	int n = 0;
	while (argv[n])
		n++;
	for (const char *const *x = e->extra_args; x && *x && n < 46; x++)
		argv[n++] = *x;
	argv[n] = NULL;
	struct proc_opts o = { .stdout_path = log, .stderr_path = log, .new_pgrp = true, .die_with_parent = true };
	struct vxerr err;
	e->pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (e->pid < 0)
		fx_die("%s", err.msg);
	fx_track(e->pid);
	free(data);
	free(log);
}

/* GET url/health over https with the member's CA and client certificate. */
static long https_health(const struct fx_etcd *e, const char *url, char **resp)
{
	CURL *c = curl_easy_init();
	struct buf b = BUF_INIT(1 << 20);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CAINFO, e->tls_ca);
	curl_easy_setopt(c, CURLOPT_SSLCERT, e->tls_cert);
	curl_easy_setopt(c, CURLOPT_SSLKEY, e->tls_key);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	long status = -1;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	*resp = buf_detach(&b, NULL);
	return status;
}

static bool etcd_healthy(void *arg)
{
	struct fx_etcd *e = arg;
	char *body = NULL, *url = xasprintf("%s/health", e->url);
	long st = e->tls_ca ? https_health(e, url, &body) : fx_http("GET", url, NULL, &body);
	bool ok = st == 200 && strstr(body, "\"true\"");
	free(body);
	free(url);
	return ok;
}

static void etcd_wait(struct fx_etcd *e)
{
	if (!fx_wait(etcd_healthy, e, 20000)) {
		char *log = fx_path(e->dir, "etcd.log");
		char *text = fx_read_file(log);
		fprintf(stderr, "etcd log:\n%s\n", text ? text : "(none)");
		free(text);
		free(log);
		fx_die("etcd %s did not become healthy at %s", e->name, e->url);
	}
}

void fx_etcd_start(struct fx_etcd *e)
{
	fx_etcd_cluster_start(e, 1);
}

void fx_etcd_cluster_start(struct fx_etcd *m, int n)
{
	struct buf ic = BUF_INIT(4096);
	for (int i = 0; i < n; i++) {
		etcd_prepare(&m[i], i + 1);
		buf_printf(&ic, "%s%s=%s", i ? "," : "", m[i].name, m[i].peer_url);
	}
	for (int i = 0; i < n; i++) {
		m[i].initial_cluster = xstrdup(ic.data);
		etcd_spawn(&m[i], true);
	}
	buf_release(&ic);
	for (int i = 0; i < n; i++)
		etcd_wait(&m[i]);
}

void fx_etcd_restart(struct fx_etcd *e)
{
	etcd_spawn(e, true); /* the data dir already holds the cluster, so "new" is ignored */
	etcd_wait(e);
}

void fx_etcd_kill(struct fx_etcd *e)
{
	if (e->pid > 0) {
		kill(e->pid, SIGKILL);
		proc_wait(e->pid, -1, NULL);
		fx_untrack(e->pid);
		e->pid = 0;
	}
}

void fx_etcd_stop(struct fx_etcd *e)
{
	if (e->pid > 0) {
		proc_stop(e->pid, 5000);
		fx_untrack(e->pid);
		e->pid = 0;
	}
}

void fx_etcd_free(struct fx_etcd *e)
{
	fx_etcd_stop(e);
	free(e->dir);
	free(e->initial_cluster);
	e->dir = e->initial_cluster = NULL;
}

char *fx_etcd_endpoints(const struct fx_etcd *m, int n)
{
	struct buf b = BUF_INIT(4096);
	for (int i = 0; i < n; i++)
		buf_printf(&b, "%s%s", i ? "," : "", m[i].url);
	return buf_detach(&b, NULL);
}

int fx_etcdctl(const struct fx_etcd *e, char **out, const char *const args[])
{
	const char *argv[32] = { "etcdctl", "--endpoints", e->url, "--dial-timeout", "3s" };
	int n = 5;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	const char *env_api = getenv("ETCDCTL_API");
	if (!env_api)
		setenv("ETCDCTL_API", "3", 1);
	struct fx_run r;
	fx_run(&r, 15000, argv);
	if (out)
		*out = r.out;
	else
		free(r.out);
	free(r.err);
	return r.status;
}

int fx_unique_port(void)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	static int used[8192];
	static size_t n_used;
	pthread_mutex_lock(&mu);
	for (int attempt = 0; attempt < 1000; attempt++) {
		int p = net_free_port();
		bool seen = p <= 0;
		for (size_t i = 0; i < n_used && !seen; i++)
			seen = used[i] == p;
		if (seen)
			continue;
		used[n_used++ % (sizeof(used) / sizeof(used[0]))] = p;
		pthread_mutex_unlock(&mu);
		return p;
	}
	pthread_mutex_unlock(&mu);
	fx_die("no free loopback port");
}

int fx_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

double fx_pct_ms(const int64_t *v, size_t n, double p)
{
	if (n == 0)
		return -1;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)v[i] / 1000.0;
}
