/* HAProxy test fixtures (see fx_haproxy.h). */
#include "fx_haproxy.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/net.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "fx.h"

static int free_port(void)
{
	int p = net_free_port();
	if (p <= 0)
		fx_die("no free loopback port");
	return p;
}

char *fx_haproxy_cmd(const char *sock, const char *cmd)
{
	struct vxerr err;
	int fd = net_connect_unix(sock, &err);
	if (fd < 0)
		return NULL;
	char *line = xasprintf("%s\n", cmd);
	net_write_all(fd, line, strlen(line));
	free(line);
	struct buf b = BUF_INIT(16u << 20);
	char chunk[8192];
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	while (poll(&pfd, 1, 5000) > 0) {
		ssize_t r = read(fd, chunk, sizeof(chunk));
		if (r <= 0 || buf_append(&b, chunk, (size_t)r) != 0)
			break;
	}
	close(fd);
	return buf_detach(&b, NULL);
}

static bool runtime_answers(void *arg)
{
	const struct fx_haproxy *h = arg;
	char *r = fx_haproxy_cmd(h->runtime_sock, "show info");
	bool ok = r && strstr(r, "Pid: ");
	free(r);
	return ok;
}

static pid_t spawn_logged(const char *const argv[], const char *log)
{
	struct proc_opts o = { .stdout_path = log, .stderr_path = log, .new_pgrp = true, .die_with_parent = true };
	struct vxerr err;
	pid_t pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (pid < 0)
		fx_die("%s", err.msg);
	fx_track(pid);
	return pid;
}

static void dump_log_and_die(const char *log, const char *what)
{
	char *text = fx_read_file(log);
	fprintf(stderr, "haproxy log:\n%s\n", text ? text : "(none)");
	free(text);
	fx_die("%s", what);
}

char *fx_haproxy_config(const struct fx_haproxy *h, const char *body)
{
	return xasprintf("global\n"
			 "    stats socket %s mode 600 level admin expose-fd listeners\n"
			 "    stats timeout 2m\n"
			 "    maxconn 2000\n"
			 "defaults\n"
			 "    mode http\n"
			 "    timeout connect 2s\n"
			 "    timeout client 10s\n"
			 "    timeout server 10s\n"
			 "%s",
			 h->runtime_sock, body);
}

void fx_haproxy_start(struct fx_haproxy *h, const char *body)
{
	memset(h, 0, sizeof(*h));
	h->dir = fx_tmpdir("hap");
	h->cfg = fx_path(h->dir, "haproxy.cfg");
	h->runtime_sock = fx_path(h->dir, "runtime.sock");
	h->master_sock = fx_path(h->dir, "master.sock");
	h->log = fx_path(h->dir, "haproxy.log");
	char *text = fx_haproxy_config(h, body);
	fx_write_file(h->cfg, text);
	free(text);
	char *master = xasprintf("%s,mode,600", h->master_sock);
	const char *argv[] = { "haproxy", "-W", "-S", master, "-f", h->cfg, NULL };
	h->pid = spawn_logged(argv, h->log);
	free(master);
	if (!fx_wait(runtime_answers, h, 15000))
		dump_log_and_die(h->log, "haproxy did not answer on its runtime socket");
}

void fx_haproxy_stop(struct fx_haproxy *h)
{
	if (h->pid > 0) {
		proc_stop(h->pid, 5000);
		fx_untrack(h->pid);
	}
	free(h->dir);
	free(h->cfg);
	free(h->runtime_sock);
	free(h->master_sock);
	free(h->log);
	memset(h, 0, sizeof(*h));
}

static bool origin_answers(void *arg)
{
	const struct fx_origin *o = arg;
	char *url = xasprintf("http://127.0.0.1:%d/", o->ports[0]);
	long st = fx_get(url, NULL);
	free(url);
	return st == 200;
}

static char *origin_config(const struct fx_origin *o)
{
	struct buf b = BUF_INIT(1u << 20);
	buf_printf(&b, "global\n    maxconn 2000\ndefaults\n    timeout connect 2s\n"
		       "    timeout client 10s\n    timeout server 10s\n");
	for (int i = 0; i < o->n; i++)
		buf_printf(&b, "frontend o%d\n    mode http\n    bind 127.0.0.1:%d\n"
			       "    http-request return status 200 content-type text/plain string \"ok\\n\" hdr x-origin %d\n",
			   i, o->ports[i], i);
	/* The slow origin holds each connection 1.5 s at the TCP level, then hands it to o0. */
	buf_printf(&b, "frontend slow\n    mode tcp\n    bind 127.0.0.1:%d\n    tcp-request inspect-delay 1500ms\n"
		       "    tcp-request content accept if WAIT_END\n    default_backend to_o0\n"
		       "backend to_o0\n    mode tcp\n    server o0 127.0.0.1:%d\n",
		   o->slow_port, o->ports[0]);
	return buf_detach(&b, NULL);
}

void fx_origin_start(struct fx_origin *o, int n)
{
	memset(o, 0, sizeof(*o));
	if (n < 1 || n > FX_ORIGIN_MAX)
		fx_die("fx_origin_start: 1..%d origins", FX_ORIGIN_MAX);
	o->n = n;
	for (int i = 0; i < n; i++)
		o->ports[i] = free_port();
	o->slow_port = free_port();
	o->dir = fx_tmpdir("origin");
	char *cfg = fx_path(o->dir, "origin.cfg"), *log = fx_path(o->dir, "origin.log");
	char *text = origin_config(o);
	fx_write_file(cfg, text);
	const char *argv[] = { "haproxy", "-f", cfg, NULL };
	o->pid = spawn_logged(argv, log);
	if (!fx_wait(origin_answers, o, 15000))
		dump_log_and_die(log, "the static origin did not answer");
	free(text);
	free(cfg);
	free(log);
}

void fx_origin_stop(struct fx_origin *o)
{
	if (o->pid > 0) {
		proc_stop(o->pid, 5000);
		fx_untrack(o->pid);
	}
	free(o->dir);
	memset(o, 0, sizeof(*o));
}

long fx_get(const char *url, char **body)
{
	return fx_http("GET", url, NULL, body);
}
