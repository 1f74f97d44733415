/* Load and test-server fixtures (see fx_load.h). */
#include "fx_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/net.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "fx.h"

static bool healthy(void *arg)
{
	struct fx_testserver *t = arg;
	char url[96];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/healthz", t->port);
	return fx_http("GET", url, NULL, NULL) == 200;
}

void fx_testserver_start(struct fx_testserver *t, const char *const *args)
{
	memset(t, 0, sizeof(*t));
	t->dir = fx_tmpdir("ts");
	t->log = fx_path(t->dir, "testserver.log");
	t->port = net_free_port();
	snprintf(t->url, sizeof(t->url), "http://127.0.0.1:%d/", t->port);
	char port[16];
	snprintf(port, sizeof(port), "%d", t->port);
	const char *argv[40] = { fx_veltrix_bin(), "testserver", "--port", port };
	int n = 4;
	for (const char *const *a = args; a && *a && n < 38; a++)
		argv[n++] = *a;
	argv[n] = NULL;
	struct proc_opts o = { .stdout_path = t->log, .stderr_path = t->log, .new_pgrp = true, .die_with_parent = true };
	struct vxerr err;
	t->pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (t->pid < 0)
		fx_die("%s", err.msg);
	fx_track(t->pid);
	if (!fx_wait(healthy, t, 10000)) {
		char *log = fx_read_file(t->log);
		fprintf(stderr, "testserver log:\n%s\n", log ? log : "");
		free(log);
		fx_die("testserver did not answer /healthz");
	}
}

int fx_testserver_stop(struct fx_testserver *t, int timeout_ms)
{
	int rc = -1;
	if (t->pid > 0) {
		kill(t->pid, SIGCONT);
		kill(t->pid, SIGTERM);
		int st;
		if (proc_wait(t->pid, timeout_ms, &st) == 0)
			rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		else
			proc_stop(t->pid, 1000);
		fx_untrack(t->pid);
		t->pid = 0;
	}
	free(t->dir);
	free(t->log);
	t->dir = t->log = NULL;
	return rc;
}

json_t *fx_testserver_stats(const struct fx_testserver *t)
{
	char url[96];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/_testserver/stats", t->port);
	char *body = NULL;
	long st = fx_http("GET", url, NULL, &body);
	json_t *j = st == 200 ? json_loads(body, 0, NULL) : NULL;
	free(body);
	return j;
}

static void *resetter_main(void *arg)
{
	struct fx_resetter *r = arg;
	while (!atomic_load(&r->stop)) {
		struct pollfd p = { .fd = r->fd, .events = POLLIN };
		if (poll(&p, 1, 50) <= 0)
			continue;
		int c = accept(r->fd, NULL, NULL);
		if (c < 0)
			continue;
		char buf[4096];
		struct pollfd pc = { .fd = c, .events = POLLIN };
		if (poll(&pc, 1, 1000) > 0)
			(void)!read(c, buf, sizeof(buf));
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c);
		atomic_fetch_add(&r->resets, 1);
	}
	return NULL;
}

void fx_resetter_start(struct fx_resetter *r)
{
	memset(r, 0, sizeof(*r));
	r->port = net_free_port();
	struct vxerr err;
	r->fd = net_listen_tcp("127.0.0.1", (uint16_t)r->port, 128, &err);
	if (r->fd < 0)
		fx_die("%s", err.msg);
	snprintf(r->url, sizeof(r->url), "http://127.0.0.1:%d/", r->port);
	atomic_init(&r->stop, false);
	if (pthread_create(&r->th, NULL, resetter_main, r) != 0)
		fx_die("cannot start the resetter thread");
}

void fx_resetter_stop(struct fx_resetter *r)
{
	atomic_store(&r->stop, true);
	pthread_join(r->th, NULL);
	close(r->fd);
}

char *fx_raw_http(int port, const char *request, int timeout_ms)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	net_write_all(fd, request, strlen(request));
	struct buf b = BUF_INIT(1 << 20);
	int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
	for (;;) {
		int left = (int)((deadline - time_mono_us()) / 1000);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (left <= 0 || poll(&p, 1, left) <= 0)
			break;
		char chunk[4096];
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n <= 0)
			break;
		buf_append(&b, chunk, (size_t)n);
	}
	close(fd);
	return buf_detach(&b, NULL);
}

void fx_load_spawn(struct fx_load *l, const char *url, const char *const *args)
{
	memset(l, 0, sizeof(*l));
	char *dir = fx_tmpdir("load");
	l->out_path = fx_path(dir, "out");
	l->err_path = fx_path(dir, "err");
	l->json_path = fx_path(dir, "result.json");
	free(dir);
	const char *argv[48] = { fx_veltrix_bin(), "load" };
	int n = 2;
	for (const char *const *a = args; a && *a && n < 44; a++)
		argv[n++] = *a;
	argv[n++] = "--json";
	argv[n++] = l->json_path;
	argv[n++] = url;
	argv[n] = NULL;
	struct proc_opts o = { .stdout_path = l->out_path, .stderr_path = l->err_path, .new_pgrp = true,
			       .die_with_parent = true };
	struct vxerr err;
	l->pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (l->pid < 0)
		fx_die("%s", err.msg);
	fx_track(l->pid);
}

void fx_load_wait(struct fx_load *l, int timeout_ms)
{
	int st;
	if (proc_wait(l->pid, timeout_ms, &st) != 0) {
		proc_stop(l->pid, 1000);
		l->status = -1;
	} else {
		l->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	fx_untrack(l->pid);
	l->out = fx_read_file(l->out_path);
	l->err = fx_read_file(l->err_path);
	l->json = json_load_file(l->json_path, 0, NULL);
	if (l->status != 0)
		fprintf(stderr, "veltrix load exit %d\nstdout:\n%s\nstderr:\n%s\n", l->status, l->out ? l->out : "",
			l->err ? l->err : "");
}

void fx_load_run(struct fx_load *l, const char *url, const char *const *args, int timeout_ms)
{
	fx_load_spawn(l, url, args);
	fx_load_wait(l, timeout_ms);
}

void fx_load_free(struct fx_load *l)
{
	free(l->out_path);
	free(l->err_path);
	free(l->json_path);
	free(l->out);
	free(l->err);
	json_decref(l->json);
	memset(l, 0, sizeof(*l));
}

static json_t *walk(json_t *j, va_list ap)
{
	const char *k;
	while (j && (k = va_arg(ap, const char *)) != NULL)
		j = json_object_get(j, k);
	return j;
}

long long fx_jint(json_t *j, ...)
{
	va_list ap;
	va_start(ap, j);
	json_t *v = walk(j, ap);
	va_end(ap);
	if (!json_is_integer(v))
		fx_die("json: expected an integer");
	return json_integer_value(v);
}

double fx_jnum(json_t *j, ...)
{
	va_list ap;
	va_start(ap, j);
	json_t *v = walk(j, ap);
	va_end(ap);
	if (!json_is_number(v))
		fx_die("json: expected a number");
	return json_number_value(v);
}
