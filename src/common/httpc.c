/* Loopback HTTP/1.1 client for operational calls (see httpc.h). */
#include "common/httpc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/timeutil.h"

#define HTTPC_IN_MAX (HTTPC_BODY_MAX + 16 * 1024)

int httpc_start(struct httpc *c, uint16_t port, const char *method, const char *target, int64_t timeout_us,
		struct vxerr *err)
{
	memset(c, 0, sizeof(*c));
	c->deadline_us = time_mono_us() + timeout_us;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return vxerr_set(err, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		c->connected = true;
	else if (errno != EINPROGRESS) {
		int e = errno;
		close(c->fd);
		return vxerr_set(err, "127.0.0.1:%u: %s", (unsigned)port, strerror(e));
	}
	buf_init(&c->out, 1024);
	buf_init(&c->in, HTTPC_IN_MAX);
	buf_init(&c->body, HTTPC_BODY_MAX);
	buf_printf(&c->out, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
		   method, target, (unsigned)port);
	return 0;
}

short httpc_events(const struct httpc *c)
{
	return !c->connected || c->sent < c->out.len ? POLLOUT : POLLIN;
}

int httpc_fd(const struct httpc *c)
{
	return c->fd;
}

/* Parses what arrived; 1 when the answer is whole. eof: the server closed. */
static int parse(struct httpc *c, bool eof, struct vxerr *err)
{
	struct http1_resp r;
	http1_resp_init(&r, NULL, NULL, 0);
	buf_reset(&c->body);
	size_t off = 0;
	for (;;) {
		struct http1_span span;
		size_t used;
		enum http1_ev ev = http1_resp_feed(&r, c->in.data + off, c->in.len - off, &used, &span);
		off += used;
		if (ev == HTTP1_BODY && buf_append(&c->body, span.p, span.len) != 0)
			return vxerr_set(err, "answer body larger than %d bytes", HTTPC_BODY_MAX);
		if (ev == HTTP1_AGAIN && eof)
			ev = http1_resp_eof(&r);
		if (ev == HTTP1_DONE) {
			c->status = r.status;
			return 1;
		}
		if (ev == HTTP1_ERROR)
			return vxerr_set(err, "not a valid HTTP answer: %s", r.m.error ? r.m.error : "?");
		if (ev == HTTP1_AGAIN)
			return eof ? vxerr_set(err, "connection closed before the answer was whole") : 0;
	}
}

static int step_io(struct httpc *c, struct vxerr *err)
{
	if (!c->connected) {
		int e = 0;
		socklen_t len = sizeof(e);
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0 || e)
			return vxerr_set(err, "connect: %s", strerror(e ? e : errno));
		c->connected = true;
	}
	if (c->sent < c->out.len) {
		ssize_t w = send(c->fd, c->out.data + c->sent, c->out.len - c->sent, MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN && errno != EINTR)
			return vxerr_set(err, "send: %s", strerror(errno));
		c->sent += w > 0 ? (size_t)w : 0;
		return 0;
	}
	char chunk[4096];
	ssize_t n = read(c->fd, chunk, sizeof(chunk));
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : vxerr_set(err, "read: %s", strerror(errno));
	if (n > 0 && buf_append(&c->in, chunk, (size_t)n) != 0)
		return vxerr_set(err, "answer larger than %d bytes", HTTPC_IN_MAX);
	/* re-parsed from the start each time: answers are small and the parser keeps no pointers */
	return parse(c, n == 0, err);
}

int httpc_step(struct httpc *c, struct vxerr *err)
{
	struct pollfd p = { c->fd, httpc_events(c), 0 };
	if (poll(&p, 1, 0) > 0) {
		int r = step_io(c, err);
		if (r != 0)
			return r;
	}
	if (time_mono_us() >= c->deadline_us)
		return vxerr_set(err, "no answer in time");
	return 0;
}

void httpc_release(struct httpc *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_release(&c->out);
	buf_release(&c->in);
	buf_release(&c->body);
}

int httpc_request(uint16_t port, const char *method, const char *target, int64_t timeout_us, struct buf *body,
		  struct vxerr *err)
{
	struct httpc c;
	if (httpc_start(&c, port, method, target, timeout_us, err) != 0)
		return -1;
	int r = 0;
	while (r == 0) {
		int64_t left = c.deadline_us - time_mono_us();
		struct pollfd p = { c.fd, httpc_events(&c), 0 };
		if (left > 0)
			poll(&p, 1, (int)(left / 1000) + 1);
		r = httpc_step(&c, err);
	}
	if (r > 0 && body) {
		buf_reset(body);
		buf_append(body, c.body.data ? c.body.data : "", c.body.len);
	}
	int status = c.status;
	httpc_release(&c);
	if (r < 0)
		return vxerr_prefix(err, "%s 127.0.0.1:%u%s: ", method, (unsigned)port, target);
	return status;
}
