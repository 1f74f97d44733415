/* A whole Veltrix stack for controller tests (see fx_stack.h). */
#include "fx_stack.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/net.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "fx_haproxy.h"
#include "fx_proxy.h"
#include "haproxy/hap.h"

#define REAPER_MAX 16

/* ---- the reaper ----
 * A forked process in its own session that holds the read end of a pipe. The test process
 * sends it the pids of HAProxy masters; when the pipe reaches end of file, the test process is
 * gone however it died, and the reaper kills whatever is still an haproxy among them. */

static int reaper_fd = -1;

static bool is_haproxy(pid_t pid)
{
	char path[64], comm[32] = "";
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, comm, sizeof(comm) - 1);
	close(fd);
	return n >= 7 && strncmp(comm, "haproxy", 7) == 0;
}

static void reaper_main(int rfd) __attribute__((noreturn));
static void reaper_main(int rfd)
{
	pid_t pids[REAPER_MAX] = { 0 };
	int32_t v;
	setsid();
	for (int fd = 3; fd < 1024; fd++)
		if (fd != rfd)
			close(fd);
	while (read(rfd, &v, sizeof(v)) == (ssize_t)sizeof(v)) {
		for (int i = 0; i < REAPER_MAX; i++) {
			if (v > 0 && pids[i] == 0) {
				pids[i] = v;
				break;
			}
			if (v < 0 && pids[i] == -v)
				pids[i] = 0;
		}
	}
	for (int i = 0; i < REAPER_MAX; i++) {
		if (pids[i] > 0 && is_haproxy(pids[i])) {
			kill(-pids[i], SIGKILL);
			kill(pids[i], SIGKILL);
		}
	}
	_exit(0);
}

static void reaper_send(int32_t v)
{
	if (reaper_fd < 0) {
		int p[2];
		if (pipe2(p, O_CLOEXEC) != 0)
			fx_die("pipe: %s", strerror(errno));
		pid_t pid = fork();
		if (pid < 0)
			fx_die("fork: %s", strerror(errno));
		if (pid == 0)
			reaper_main(p[0]);
		close(p[0]);
		reaper_fd = p[1];
	}
	if (write(reaper_fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		fx_die("reaper: %s", strerror(errno));
}

/* Gone: no such process, or a zombie nobody reaps (an orphan's parent may not be an init). */
static bool pid_gone(pid_t pid)
{
	char path[64], text[512];
	if (kill(pid, 0) != 0)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return true;
	ssize_t n = read(fd, text, sizeof(text) - 1);
	close(fd);
	text[n > 0 ? n : 0] = '\0';
	const char *paren = strrchr(text, ')');
	return paren && paren[1] == ' ' && paren[2] == 'Z';
}

/* ---- configuration ---- */

static bool has_key(const char *yaml, const char *key)
{
	return yaml && strstr(yaml, key);
}

static void service_yaml(struct buf *b, const struct fx_stack_service *sv)
{
	buf_printf(b, "  - name: %s\n    bind: 127.0.0.1:%d\n", sv->name, sv->port);
	if (!has_key(sv->yaml, "health:"))
		buf_printf(b, "    health:\n      type: http\n      path: /healthz\n      interval: 300ms\n"
			      "      timeout: 200ms\n      rise: 1\n      fall: 2\n");
	if (!has_key(sv->yaml, "drain_timeout:"))
		buf_printf(b, "    drain_timeout: 10s\n");
	if (!has_key(sv->yaml, "timeouts:"))
		buf_printf(b, "    timeouts:\n      server: 10s\n");
	if (sv->yaml)
		buf_printf(b, "%s%s", sv->yaml, sv->yaml[strlen(sv->yaml) - 1] == '\n' ? "" : "\n");
}

void fx_stack_write_config(struct fx_stack *s)
{
	struct buf b = BUF_INIT(1u << 20);
	const struct fx_stack_opts *o = &s->opts;
	buf_printf(&b, "etcd:\n  endpoints: [%s]\n  dial_timeout: 500ms\n  request_timeout: 1s\n",
		   s->proxy ? fx_proxy_url(s->proxy) : s->etcd.url);
	buf_printf(&b, "haproxy:\n  mode: %s\n  state_dir: %s\n  maxconn: 2000\n",
		   o->attach_runtime_socket ? "attach" : "managed", s->state_dir);
	if (!has_key(o->haproxy_yaml, "nbthread:"))
		buf_printf(&b, "  nbthread: 1\n");
	if (o->attach_runtime_socket)
		buf_printf(&b, "  runtime_socket: %s\n", o->attach_runtime_socket);
	if (o->haproxy_yaml)
		buf_printf(&b, "%s\n", o->haproxy_yaml);
	buf_printf(&b, "controller:\n  metrics: %s\n", s->metrics_url + strlen("http://"));
	if (o->controller_yaml)
		buf_printf(&b, "%s\n", o->controller_yaml);
	buf_printf(&b, "services:\n");
	for (int i = 0; i < s->n_svcs; i++)
		service_yaml(&b, &s->svcs[i]);
	char *tmp = xasprintf("%s.tmp", s->cfg_path);
	fx_write_file(tmp, b.data);
	if (rename(tmp, s->cfg_path) != 0)
		fx_die("rename %s: %s", tmp, strerror(errno));
	free(tmp);
	buf_release(&b);
}

int fx_stack_add_service(struct fx_stack *s, const char *name, const char *yaml)
{
	if (s->n_svcs >= FX_STACK_MAX_SERVICES)
		fx_die("too many services");
	struct fx_stack_service *sv = &s->svcs[s->n_svcs];
	sv->name = name;
	sv->yaml = yaml;
	sv->port = fx_unique_port();
	s->n_svcs++;
	fx_stack_write_config(s);
	return s->n_svcs - 1;
}

const char *fx_stack_url(const struct fx_stack *s, const char *name)
{
	static char url[64];
	for (int i = 0; i < s->n_svcs; i++) {
		if (strcmp(s->svcs[i].name, name) == 0) {
			snprintf(url, sizeof(url), "http://127.0.0.1:%d/", s->svcs[i].port);
			return url;
		}
	}
	fx_die("no service %s", name);
}

/* ---- HAProxy ---- */

char *fx_stack_hap(const struct fx_stack *s, const char *cmd)
{
	return fx_haproxy_cmd(s->runtime_sock, cmd);
}

static bool hap_answers(const struct fx_stack *s)
{
	char *r = fx_stack_hap(s, "show info");
	bool ok = r && strstr(r, "Pid: ");
	free(r);
	return ok;
}

void fx_stack_track_haproxy(struct fx_stack *s)
{
	struct hap_proc_list l;
	if (s->opts.attach_runtime_socket || s->hap_master > 0)
		return;
	if (hap_proc_show(s->master_sock, 2 * USEC_PER_SEC, &l, NULL) != 0 || l.master_pid <= 0)
		fx_die("no HAProxy master answers on %s", s->master_sock);
	s->hap_master = (pid_t)l.master_pid;
	fx_haproxy_master_track(s->hap_master);
}

void fx_haproxy_master_track(pid_t master)
{
	fx_track(master);
	reaper_send((int32_t)master);
}

void fx_haproxy_master_stop(pid_t m)
{
	if (m <= 0)
		return;
	kill(-m, SIGTERM);
	int64_t deadline = time_mono_us() + 5 * USEC_PER_SEC;
	while (!pid_gone(m) && time_mono_us() < deadline)
		time_sleep_us(10000);
	kill(-m, SIGKILL);
	kill(m, SIGKILL);
	fx_untrack(m);
	reaper_send(-(int32_t)m);
}

static void stop_haproxy(struct fx_stack *s)
{
	fx_haproxy_master_stop(s->hap_master);
	s->hap_master = 0;
}

void fx_stack_haproxy_kill(struct fx_stack *s)
{
	pid_t m = s->hap_master;
	if (m <= 0)
		return;
	kill(-m, SIGKILL);
	int64_t deadline = time_mono_us() + 5 * USEC_PER_SEC;
	while (!pid_gone(m) && time_mono_us() < deadline)
		time_sleep_us(10000);
	fx_untrack(m);
	reaper_send(-(int32_t)m);
	s->hap_master = 0;
}

long long fx_stack_worker_pid(const struct fx_stack *s)
{
	struct hap_proc_list l;
	if (hap_proc_show(s->master_sock, 2 * USEC_PER_SEC, &l, NULL) != 0)
		return -1;
	return (long long)hap_proc_current_worker(&l);
}

int fx_stack_reloads(const struct fx_stack *s)
{
	struct hap_proc_list l;
	if (hap_proc_show(s->master_sock, 2 * USEC_PER_SEC, &l, NULL) != 0)
		return -1;
	return (int)l.master_reloads;
}

static int cmp_srv(const void *a, const void *b)
{
	return strcmp(((const struct fx_srv *)a)->name, ((const struct fx_srv *)b)->name);
}

static void fill_srv(struct fx_srv *f, const struct hap_srv_state *row, const struct hap_stats *stats)
{
	memset(f, 0, sizeof(*f));
	snprintf(f->name, sizeof(f->name), "%s", row->name);
	snprintf(f->addr, sizeof(f->addr), "%s", row->addr);
	f->port = (int)row->port;
	f->admin = (int)hap_admin_from_bits(row->admin_state);
	f->weight = (int)row->uweight;
	const struct hap_stat_row *st = hap_stats_find(stats, row->backend, row->name);
	if (st) {
		f->maxconn = st->slim > 0 ? (int)st->slim : 0;
		f->scur = st->scur > 0 ? (int)st->scur : 0;
		snprintf(f->status, sizeof(f->status), "%s", st->status);
	}
}

int fx_stack_servers(const struct fx_stack *s, const char *service, struct fx_srv *out, int max)
{
	char *cmd = xasprintf("show servers state %s", service);
	char *state = fx_stack_hap(s, cmd), *stat = fx_stack_hap(s, "show stat");
	struct hap_servers_state st = { 0 };
	struct hap_stats stats = { 0 };
	int n = -1;
	if (!state || !stat || hap_parse_servers_state(state, strlen(state), &st, NULL) != 0 ||
	    hap_parse_stat(stat, strlen(stat), &stats, NULL) != 0)
		goto out;
	n = 0;
	for (size_t i = 0; i < st.n && n < max; i++)
		fill_srv(&out[n++], &st.rows[i], &stats);
	qsort(out, (size_t)n, sizeof(*out), cmp_srv);
out:
	hap_servers_state_release(&st);
	hap_stats_release(&stats);
	free(cmd);
	free(state);
	free(stat);
	return n;
}

const char *fx_stack_names(const struct fx_stack *s, const char *service)
{
	static char names[4096];
	struct fx_srv srv[64];
	int n = fx_stack_servers(s, service, srv, 64);
	if (n < 0)
		return "?";
	size_t k = 0;
	names[0] = '\0';
	for (int i = 0; i < n && k < sizeof(names) - 80; i++)
		k += (size_t)snprintf(names + k, sizeof(names) - k, "%s%s", i ? "," : "", srv[i].name);
	return names;
}

bool fx_stack_wait_names(const struct fx_stack *s, const char *service, const char *names, int timeout_ms)
{
	int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
	for (;;) {
		const char *now = fx_stack_names(s, service);
		if (strcmp(now, names) == 0)
			return true;
		if (time_mono_us() > deadline) {
			fprintf(stderr, "# backend %s: have [%s], want [%s]\n", service, now, names);
			return false;
		}
		time_sleep_us(20000);
	}
}

static bool all_serving(const struct fx_stack *s, const char *service)
{
	struct fx_srv srv[64];
	int n = fx_stack_servers(s, service, srv, 64);
	for (int i = 0; i < n; i++)
		if (strncmp(srv[i].status, "UP", 2) != 0 && strcmp(srv[i].status, "no check") != 0)
			return false;
	return n >= 0;
}

bool fx_stack_wait_serving(const struct fx_stack *s, const char *service, const char *names, int timeout_ms)
{
	int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
	if (!fx_stack_wait_names(s, service, names, timeout_ms))
		return false;
	while (!all_serving(s, service)) {
		if (time_mono_us() > deadline) {
			fprintf(stderr, "# backend %s: not every server of [%s] passed its checks\n", service, names);
			return false;
		}
		time_sleep_us(20000);
	}
	return strcmp(fx_stack_names(s, service), names) == 0;
}

/* ---- the controller ---- */

double fx_stack_metric(const struct fx_stack *s, const char *series)
{
	char *url = xasprintf("%s/metrics", s->metrics_url), *body = NULL;
	double v = -1;
	size_t n = strlen(series);
	if (fx_http("GET", url, NULL, &body) == 200 && body) {
		for (const char *line = body; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
			if (strncmp(line, series, n) == 0 && line[n] == ' ') {
				v = strtod(line + n + 1, NULL);
				break;
			}
		}
	}
	free(body);
	free(url);
	return v;
}

long fx_stack_healthz(const struct fx_stack *s, char **body)
{
	char *url = xasprintf("%s/healthz", s->metrics_url);
	long st = fx_http("GET", url, NULL, body);
	free(url);
	return st;
}

static bool ctl_ready(void *arg)
{
	struct fx_stack *s = arg;
	return fx_stack_healthz(s, NULL) == 200 && hap_answers(s);
}

static bool ctl_serving(void *arg)
{
	struct fx_stack *s = arg;
	return fx_stack_healthz(s, NULL) > 0 && hap_answers(s);
}

char *fx_stack_log(const struct fx_stack *s)
{
	char *t = fx_read_file(s->ctl_log);
	return t ? t : xstrdup("");
}

int fx_stack_log_count(const struct fx_stack *s, const char *text)
{
	char *log = fx_stack_log(s);
	int n = 0;
	for (const char *p = log; (p = strstr(p, text)) != NULL; p += strlen(text))
		n++;
	free(log);
	return n;
}

void fx_stack_controller_start(struct fx_stack *s, bool wait_healthy)
{
	const char *argv[] = { fx_veltrix_bin(), "controller", "-c", s->cfg_path, NULL };
	struct proc_opts o = { .stdout_path = s->ctl_log, .stderr_path = s->ctl_log, .new_pgrp = true,
			       .die_with_parent = true };
	struct vxerr err;
	s->ctl_pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (s->ctl_pid < 0)
		fx_die("%s", err.msg);
	fx_track(s->ctl_pid);
	if (!fx_wait(wait_healthy ? ctl_ready : ctl_serving, s, FX_STACK_WAIT_MS)) {
		char *log = fx_stack_log(s);
		fprintf(stderr, "controller log:\n%s\n", log);
		free(log);
		fx_die("the controller did not become ready");
	}
	fx_stack_track_haproxy(s);
}

int fx_stack_controller_kill(struct fx_stack *s, int sig)
{
	int st = 0, rc = -1;
	if (s->ctl_pid <= 0)
		return -1;
	kill(s->ctl_pid, sig);
	if (sig == SIGHUP || sig == SIGUSR1)
		return 0;
	if (proc_wait(s->ctl_pid, 10000, &st) == 0)
		rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	else
		proc_stop(s->ctl_pid, 1000);
	fx_untrack(s->ctl_pid);
	s->ctl_pid = 0;
	return rc;
}

/* ---- the registry ---- */

static char *b64(const char *p, size_t n)
{
	size_t cap = b64_encoded_size(n);
	char *out = xmalloc(cap);
	b64_encode(p, n, out, cap);
	return out;
}

static char *key_of(const char *service, const char *instance)
{
	return xasprintf("/veltrix/services/%s/%s", service, instance);
}

static char *gateway(struct fx_stack *s, const char *path, const char *body)
{
	char *url = xasprintf("%s%s", s->etcd.url, path), *resp = NULL;
	long st = fx_http("POST", url, body, &resp);
	if (st != 200)
		fx_die("etcd %s %s: HTTP %ld %s", path, body, st, resp ? resp : "");
	free(url);
	return resp;
}

void fx_stack_put_raw(struct fx_stack *s, const char *key, size_t key_len, const char *value)
{
	char *k = b64(key, key_len), *v = b64(value, strlen(value));
	char *body = xasprintf("{\"key\":\"%s\",\"value\":\"%s\"}", k, v);
	free(gateway(s, "/v3/kv/put", body));
	free(body);
	free(k);
	free(v);
}

void fx_stack_put(struct fx_stack *s, const char *service, const char *instance, const char *json)
{
	char *key = key_of(service, instance);
	fx_stack_put_raw(s, key, strlen(key), json);
	free(key);
}

void fx_stack_del(struct fx_stack *s, const char *service, const char *instance)
{
	fx_stack_del_many(s, service, &instance, 1);
}

void fx_stack_del_many(struct fx_stack *s, const char *service, const char *const *instances, int n)
{
	struct buf b = BUF_INIT(1u << 20);
	buf_printf(&b, "{\"success\":[");
	for (int i = 0; i < n; i++) {
		char *key = key_of(service, instances[i]), *k = b64(key, strlen(key));
		buf_printf(&b, "%s{\"request_delete_range\":{\"key\":\"%s\"}}", i ? "," : "", k);
		free(key);
		free(k);
	}
	buf_printf(&b, "]}");
	free(gateway(s, "/v3/kv/txn", b.data));
	buf_release(&b);
}

long long fx_stack_revision(struct fx_stack *s)
{
	char *resp = gateway(s, "/v3/kv/range", "{\"key\":\"AA==\",\"count_only\":true}");
	const char *r = strstr(resp, "\"revision\":\"");
	long long rev = r ? strtoll(r + 12, NULL, 10) : -1;
	free(resp);
	return rev;
}

void fx_stack_compact(struct fx_stack *s, long long revision)
{
	char *body = xasprintf("{\"revision\":\"%lld\",\"physical\":true}", revision);
	free(gateway(s, "/v3/kv/compaction", body));
	free(body);
}

const char *fx_stack_value(const struct fx_stack *s, int backend, const char *extra)
{
	static char v[512];
	snprintf(v, sizeof(v), "{\"address\":\"127.0.0.1\",\"port\":%d%s%s}", s->ts[backend].port,
		 extra ? "," : "", extra ? extra : "");
	return v;
}

/* ---- traffic ---- */

struct hdr_capture {
	char *out;
	size_t cap;
};

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct hdr_capture *h = ud;
	size_t len = size * n;
	static const char name[] = "x-served-by:";
	if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
		const char *v = p + sizeof(name) - 1;
		size_t vl = len - (sizeof(name) - 1);
		while (vl && (*v == ' '))
			v++, vl--;
		while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		snprintf(h->out, h->cap, "%.*s", (int)vl, v);
	}
	return len;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

long fx_stack_get(const char *url, char *served_by, size_t cap)
{
	CURL *c = curl_easy_init();
	struct hdr_capture h = { served_by, cap };
	long status = -1;
	served_by[0] = '\0';
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	return status;
}

/* ---- the whole stack ---- */

void fx_stack_start(struct fx_stack *s, const struct fx_stack_opts *o, const struct fx_stack_service *svcs,
		    int n)
{
	memset(s, 0, sizeof(*s));
	s->opts = *o;
	if (n > FX_STACK_MAX_SERVICES || o->n_backends > FX_STACK_MAX_BACKENDS)
		fx_die("fx_stack_start: too many services or backends");
	s->dir = fx_tmpdir("stack");
	s->cfg_path = fx_path(s->dir, "veltrix.yaml");
	s->state_dir = fx_path(s->dir, "state");
	s->runtime_sock = o->attach_runtime_socket ? xstrdup(o->attach_runtime_socket)
						  : fx_path(s->state_dir, "runtime.sock");
	s->master_sock = fx_path(s->state_dir, "master.sock");
	s->ctl_log = fx_path(s->dir, "controller.log");
	snprintf(s->metrics_url, sizeof(s->metrics_url), "http://127.0.0.1:%d", fx_unique_port());
	fx_etcd_start(&s->etcd);
	if (o->etcd_via_proxy)
		s->proxy = fx_proxy_start(s->etcd.client_port);
	for (int i = 0; i < o->n_backends; i++) {
		char inst[16];
		snprintf(inst, sizeof(inst), "b%d", i);
		const char *args[24] = { "--instance", inst };
		int k = 2;
		for (const char *const *a = o->backend_args; a && *a && k < 23; a++)
			args[k++] = *a;
		fx_testserver_start(&s->ts[i], args);
		s->n_ts++;
	}
	for (int i = 0; i < n; i++) {
		s->svcs[i] = svcs[i];
		s->svcs[i].port = fx_unique_port();
	}
	s->n_svcs = n;
	fx_stack_write_config(s);
	fx_stack_controller_start(s, true);
}

void fx_stack_stop(struct fx_stack *s)
{
	if (s->ctl_pid > 0)
		fx_stack_controller_kill(s, SIGTERM);
	if (!s->hap_master && !s->opts.attach_runtime_socket) {
		struct hap_proc_list l; /* a controller killed before it was tracked */
		if (hap_proc_show(s->master_sock, USEC_PER_SEC, &l, NULL) == 0 && l.master_pid > 0)
			s->hap_master = (pid_t)l.master_pid;
	}
	stop_haproxy(s);
	for (int i = 0; i < s->n_ts; i++)
		fx_testserver_stop(&s->ts[i], 3000);
	fx_proxy_free(s->proxy);
	fx_etcd_free(&s->etcd);
	free(s->dir);
	free(s->cfg_path);
	free(s->state_dir);
	free(s->runtime_sock);
	free(s->master_sock);
	free(s->ctl_log);
	memset(s, 0, sizeof(*s));
}

/* ---- a start that may fail ---- */

struct try_start {
	struct fx_stack *s;
	int status; /* the controller's wait status once it exited */
	bool exited;
};

static bool ctl_ready_or_exited(void *arg)
{
	struct try_start *t = arg;
	t->exited = proc_wait(t->s->ctl_pid, 0, &t->status) == 0;
	return t->exited || ctl_ready(t->s);
}

bool fx_stack_controller_try_start(struct fx_stack *s, int timeout_ms)
{
	const char *argv[] = { fx_veltrix_bin(), "controller", "-c", s->cfg_path, NULL };
	struct proc_opts o = { .stdout_path = s->ctl_log, .stderr_path = s->ctl_log, .new_pgrp = true,
			       .die_with_parent = true };
	struct vxerr err;
	struct try_start t = { .s = s };
	s->ctl_pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (s->ctl_pid < 0)
		fx_die("%s", err.msg);
	fx_track(s->ctl_pid);
	bool ready = fx_wait(ctl_ready_or_exited, &t, timeout_ms) && !t.exited;
	if (!ready) {
		char *log = fx_stack_log(s);
		fprintf(stderr, "controller %s; its log:\n%s\n", t.exited ? "exited" : "not ready in time", log);
		free(log);
		if (!t.exited)
			proc_stop(s->ctl_pid, 1000);
		fx_untrack(s->ctl_pid);
		s->ctl_pid = 0;
		return false;
	}
	fx_stack_track_haproxy(s);
	return true;
}
