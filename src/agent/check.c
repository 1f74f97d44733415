/* Health checks on a libev loop (see check.h). */
#include "agent/check.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/http1.h"
#include "common/proc.h"
#include "common/timeutil.h"

/* A health endpoint's reply head; the body is never read. */
#define HTTP_HEAD_MAX 4096

struct checker {
	struct ev_loop *loop;
	struct check_spec spec;
	char *path, *command;
	check_cb cb;
	void *ud;
	ev_timer tick;     /* next check */
	ev_timer deadline; /* this check's timeout */
	ev_io io;
	ev_child child;
	int fd;
	pid_t pid;
	bool running;
	bool timed_out;
	int64_t started_us;
	struct buf rx;
	struct http1_resp resp;
	int passes, fails;
	enum check_state state;
};

int check_spec_parse(const char *text, struct check_spec *spec, struct vxerr *err)
{
	if (strcmp(text, "tcp") == 0) {
		spec->kind = CHECK_KIND_TCP;
	} else if (strcmp(text, "http") == 0 || strncmp(text, "http:", 5) == 0) {
		spec->kind = CHECK_KIND_HTTP;
		spec->path = text[4] == ':' ? text + 5 : "/";
		if (spec->path[0] != '/')
			return vxerr_set(err, "check '%s': the HTTP path must start with '/' (http:/healthz)", text);
		for (const char *p = spec->path; *p; p++)
			if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f)
				return vxerr_set(err, "check '%s': the HTTP path may not hold spaces or control characters", text);
	} else if (strncmp(text, "exec:", 5) == 0 && text[5]) {
		spec->kind = CHECK_KIND_EXEC;
		spec->command = text + 5;
	} else {
		return vxerr_set(err, "unknown check '%s' (use tcp, http:/PATH or exec:COMMAND)", text);
	}
	return 0;
}

const char *check_state_name(enum check_state st)
{
	return st == CHECK_STATE_UP ? "up" : st == CHECK_STATE_DOWN ? "down" : "unknown";
}

static void schedule_next(struct checker *c)
{
	int64_t next = c->started_us + c->spec.interval_us - time_mono_us();
	ev_timer_set(&c->tick, next > 0 ? (double)next / 1e6 : 0, 0);
	ev_timer_start(c->loop, &c->tick);
}

static void apply_hysteresis(struct checker *c, bool pass, bool *changed)
{
	*changed = false;
	if (pass) {
		c->fails = 0;
		if (++c->passes >= c->spec.rise && c->state != CHECK_STATE_UP) {
			c->state = CHECK_STATE_UP;
			*changed = true;
		}
	} else {
		c->passes = 0;
		if (++c->fails >= c->spec.fall && c->state != CHECK_STATE_DOWN) {
			c->state = CHECK_STATE_DOWN;
			*changed = true;
		}
	}
}

static void finish(struct checker *c, bool pass, const char *detail)
{
	ev_timer_stop(c->loop, &c->deadline);
	ev_io_stop(c->loop, &c->io);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_reset(&c->rx);
	c->running = false;
	struct check_result res = { .pass = pass, .duration_us = time_mono_us() - c->started_us };
	snprintf(res.detail, sizeof(res.detail), "%s", detail);
	bool changed;
	apply_hysteresis(c, pass, &changed);
	schedule_next(c);
	c->cb(c->ud, c->state, changed, &res);
}

static void finishf(struct checker *c, bool pass, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void finishf(struct checker *c, bool pass, const char *fmt, ...)
{
	char detail[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	finish(c, pass, detail);
}

/* ---- tcp and http ---- */

static const char *target(const struct checker *c)
{
	static _Thread_local char hp[NET_HOSTPORT_MAX];
	net_hostport_format(c->spec.address, c->spec.port, hp, sizeof(hp));
	return hp;
}

/* Only the status matters: the check is done when the head has been parsed. */
static void feed_reply(struct checker *c)
{
	size_t used = 0;
	struct http1_span body;
	enum http1_ev ev = http1_resp_feed(&c->resp, c->rx.data, c->rx.len, &used, &body);
	buf_consume(&c->rx, used);
	if (ev == HTTP1_HEAD)
		finishf(c, c->resp.status >= 200 && c->resp.status < 400, "http GET %s on %s: %d", c->path, target(c),
			c->resp.status);
	else if (ev == HTTP1_ERROR)
		finishf(c, false, "http GET %s on %s: bad reply: %s", c->path, target(c), c->resp.m.error);
	else if (ev != HTTP1_AGAIN)
		finishf(c, false, "http GET %s on %s: unexpected reply framing", c->path, target(c));
}

static void on_http_readable(struct checker *c)
{
	char chunk[1024];
	ssize_t n = read(c->fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		finishf(c, false, "http GET %s on %s: %s", c->path, target(c), strerror(errno));
	} else if (n == 0) {
		finishf(c, false, "http GET %s on %s: connection closed before %s", c->path, target(c),
			http1_resp_started(&c->resp) ? "the end of the reply head" : "a status line");
	} else if (buf_append(&c->rx, chunk, (size_t)n) != 0) {
		finishf(c, false, "http GET %s on %s: reply head longer than %d bytes", c->path, target(c), HTTP_HEAD_MAX);
	} else {
		feed_reply(c);
	}
}

static void send_http_request(struct checker *c)
{
	char req[512];
	int n = snprintf(req, sizeof(req),
			 "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: veltrix-agent\r\nConnection: close\r\n\r\n",
			 c->path, target(c));
	if (n < 0 || (size_t)n >= sizeof(req) || write(c->fd, req, (size_t)n) != n) {
		finishf(c, false, "http GET %s on %s: cannot send the request", c->path, target(c));
		return;
	}
	struct http1_limits lim = http1_default_limits;
	lim.max_head = HTTP_HEAD_MAX;
	http1_resp_init(&c->resp, &lim, NULL, 0);
	ev_io_stop(c->loop, &c->io);
	ev_io_set(&c->io, c->fd, EV_READ);
	ev_io_start(c->loop, &c->io);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct checker *c = w->data;
	if (revents & EV_READ) {
		on_http_readable(c);
		return;
	}
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	if (soerr) {
		finishf(c, false, "%s connect %s: %s", c->spec.kind == CHECK_KIND_TCP ? "tcp" : "http", target(c),
			strerror(soerr));
	} else if (c->spec.kind == CHECK_KIND_TCP) {
		finishf(c, true, "tcp connect %s: ok", target(c));
	} else {
		send_http_request(c);
	}
}

static void start_connect(struct checker *c)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sslen;
	if (strchr(c->spec.address, ':')) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons(c->spec.port);
		inet_pton(AF_INET6, c->spec.address, &a->sin6_addr);
		sslen = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(c->spec.port);
		inet_pton(AF_INET, c->spec.address, &a->sin_addr);
		sslen = sizeof(*a);
	}
	c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		finishf(c, false, "socket: %s", strerror(errno));
		return;
	}
	if (connect(c->fd, (struct sockaddr *)&ss, sslen) != 0 && errno != EINPROGRESS) {
		finishf(c, false, "%s connect %s: %s", c->spec.kind == CHECK_KIND_TCP ? "tcp" : "http", target(c),
			strerror(errno));
		return;
	}
	ev_io_set(&c->io, c->fd, EV_WRITE);
	ev_io_start(c->loop, &c->io);
}

/* ---- exec ---- */

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	struct checker *c = w->data;
	ev_child_stop(loop, w);
	c->pid = 0;
	int st = w->rstatus;
	char dur[32];
	dur_format(c->spec.timeout_us, dur, sizeof(dur));
	if (c->timed_out)
		finishf(c, false, "exec '%s': no answer within %s, killed", c->command, dur);
	else if (WIFEXITED(st))
		finishf(c, WEXITSTATUS(st) == 0, "exec '%s': exit %d", c->command, WEXITSTATUS(st));
	else
		finishf(c, false, "exec '%s': killed by signal %d", c->command, WTERMSIG(st));
}

static void start_exec(struct checker *c)
{
	char *const argv[] = { (char *)(uintptr_t) "/bin/sh", (char *)(uintptr_t) "-c", c->command, NULL };
	struct proc_opts o = { .stdout_path = "/dev/null", .stderr_path = "/dev/null", .new_pgrp = true,
			       .die_with_parent = true };
	struct vxerr err;
	pid_t pid = proc_spawn(argv, &o, &err);
	if (pid < 0) {
		finishf(c, false, "exec '%s': %s", c->command, err.msg);
		return;
	}
	c->pid = pid;
	ev_child_set(&c->child, pid, 0);
	ev_child_start(c->loop, &c->child);
}

/* ---- scheduling ---- */

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct checker *c = w->data;
	char dur[32];
	dur_format(c->spec.timeout_us, dur, sizeof(dur));
	if (c->spec.kind == CHECK_KIND_EXEC && c->pid > 0) {
		/* The result is reported once the killed command is reaped, so checks never overlap. */
		c->timed_out = true;
		kill(-c->pid, SIGKILL);
		return;
	}
	finishf(c, false, "%s %s: no answer within %s", c->spec.kind == CHECK_KIND_TCP ? "tcp connect" : "http GET",
		target(c), dur);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct checker *c = w->data;
	if (c->running)
		return;
	c->running = true;
	c->timed_out = false;
	c->started_us = time_mono_us();
	ev_timer_set(&c->deadline, (double)c->spec.timeout_us / 1e6, 0);
	ev_timer_start(c->loop, &c->deadline);
	if (c->spec.kind == CHECK_KIND_EXEC)
		start_exec(c);
	else
		start_connect(c);
}

struct checker *checker_new(struct ev_loop *loop, const struct check_spec *spec, check_cb cb, void *ud)
{
	struct checker *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->spec = *spec;
	c->path = xstrdup(spec->path ? spec->path : "/");
	c->command = xstrdup(spec->command ? spec->command : "");
	c->spec.path = c->path;
	c->spec.command = c->command;
	c->cb = cb;
	c->ud = ud;
	c->fd = -1;
	buf_init(&c->rx, 2 * HTTP_HEAD_MAX); /* the parser reports an oversize head first */
	ev_timer_init(&c->tick, on_tick, 0, 0);
	ev_timer_init(&c->deadline, on_deadline, 0, 0);
	ev_io_init(&c->io, on_io, -1, EV_WRITE);
	ev_child_init(&c->child, on_child, 0, 0);
	c->tick.data = c->deadline.data = c->io.data = c->child.data = c;
	return c;
}

void checker_start(struct checker *c)
{
	ev_timer_set(&c->tick, 0, 0);
	ev_timer_start(c->loop, &c->tick);
}

void checker_stop(struct checker *c)
{
	ev_timer_stop(c->loop, &c->tick);
	ev_timer_stop(c->loop, &c->deadline);
	ev_io_stop(c->loop, &c->io);
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	if (c->pid > 0) {
		ev_child_stop(c->loop, &c->child);
		kill(-c->pid, SIGKILL);
		proc_wait(c->pid, 1000, NULL);
		c->pid = 0;
	}
	c->running = false;
}

void checker_free(struct checker *c)
{
	if (!c)
		return;
	checker_stop(c);
	buf_release(&c->rx);
	free(c->path);
	free(c->command);
	free(c);
}

enum check_state checker_state(const struct checker *c)
{
	return c->state;
}

void checker_set_address(struct checker *c, const char *address)
{
	snprintf(c->spec.address, sizeof(c->spec.address), "%s", address);
}
