/* Minimal operational HTTP server (see httpd.h). */
#include "common/httpd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/http1.h"
#include "common/net.h"

#define HTTPD_MAX_CONNS 64
#define HTTPD_HEAD_MAX (16 * 1024)
#define HTTPD_BODY_MAX (64 * 1024)
#define HTTPD_TIMEOUT_S 5.0
#define HTTPD_RESPONSE_MAX (64u << 20)

struct conn {
	struct httpd *h;
	ev_io io;
	ev_timer timer;
	struct buf in, out;
	size_t sent;
	struct http1_req req;
	struct conn *next;
};

struct httpd {
	struct ev_loop *loop;
	ev_io accept_io;
	int port;
	httpd_handler handler;
	void *ud;
	struct conn *conns;
	size_t n_conns;
};

static const struct http1_limits limits = { HTTPD_HEAD_MAX, 64, 256, HTTPD_BODY_MAX };

static void conn_close(struct conn *c)
{
	struct httpd *h = c->h;
	ev_io_stop(h->loop, &c->io);
	ev_timer_stop(h->loop, &c->timer);
	close(c->io.fd);
	for (struct conn **p = &h->conns; *p; p = &(*p)->next) {
		if (*p == c) {
			*p = c->next;
			break;
		}
	}
	h->n_conns--;
	buf_release(&c->in);
	buf_release(&c->out);
	free(c);
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 413: return "Payload Too Large";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	default: return "Status";
	}
}

static void respond(struct conn *c, int status, const char *type, const struct buf *body)
{
	buf_printf(&c->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
		   status, reason(status), type, body->len);
	buf_append(&c->out, body->data, body->len);
	ev_io_stop(c->h->loop, &c->io);
	ev_io_set(&c->io, c->io.fd, EV_WRITE);
	ev_io_start(c->h->loop, &c->io);
}

static void copy_span(char *dst, size_t cap, const char *p, size_t n)
{
	if (n >= cap)
		n = cap - 1;
	memcpy(dst, p, n);
	dst[n] = '\0';
}

static void dispatch(struct conn *c)
{
	struct httpd_request req = { 0 };
	struct httpd_response resp = { .status = 200, .content_type = "text/plain; charset=utf-8" };
	buf_init(&resp.body, HTTPD_RESPONSE_MAX);
	copy_span(req.method, sizeof(req.method), c->req.method, c->req.method_len);
	const char *q = memchr(c->req.target, '?', c->req.target_len);
	size_t plen = q ? (size_t)(q - c->req.target) : c->req.target_len;
	copy_span(req.path, sizeof(req.path), c->req.target, plen);
	if (q)
		copy_span(req.query, sizeof(req.query), q + 1, c->req.target_len - plen - 1);
	c->h->handler(c->h->ud, &req, &resp);
	respond(c, resp.status, resp.content_type, &resp.body);
	buf_release(&resp.body);
}

static void on_readable(struct conn *c)
{
	char chunk[4096];
	ssize_t n = read(c->io.fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || buf_append(&c->in, chunk, (size_t)n) != 0) {
		conn_close(c);
		return;
	}
	size_t used;
	struct http1_span body;
	const char *p = c->in.data;
	size_t left = c->in.len;
	for (;;) {
		enum http1_ev ev = http1_req_feed(&c->req, p, left, &used, &body);
		p += used;
		left -= used;
		if (ev == HTTP1_AGAIN)
			return;
		if (ev == HTTP1_DONE) {
			dispatch(c);
			return;
		}
		if (ev == HTTP1_ERROR) {
			struct buf msg = BUF_INIT(256);
			buf_printf(&msg, "%s\n", c->req.m.error ? c->req.m.error : "bad request");
			respond(c, c->req.m.error_status ? c->req.m.error_status : 400, "text/plain; charset=utf-8", &msg);
			buf_release(&msg);
			return;
		}
	}
}

static void on_writable(struct conn *c)
{
	ssize_t n = write(c->io.fd, c->out.data + c->sent, c->out.len - c->sent);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->sent += (size_t)n;
	if (c->sent == c->out.len)
		conn_close(c);
}

static void on_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	struct conn *c = w->data;
	if (revents & EV_WRITE)
		on_writable(c);
	else
		on_readable(c);
}

static void on_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	conn_close(w->data);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)revents;
	struct httpd *h = w->data;
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (h->n_conns >= HTTPD_MAX_CONNS) {
		close(fd);
		return;
	}
	struct conn *c = xcalloc(1, sizeof(*c));
	c->h = h;
	buf_init(&c->in, HTTPD_HEAD_MAX + HTTPD_BODY_MAX);
	buf_init(&c->out, HTTPD_RESPONSE_MAX + 512);
	http1_req_init(&c->req, &limits, NULL, 0);
	ev_io_init(&c->io, on_io, fd, EV_READ);
	ev_timer_init(&c->timer, on_timeout, HTTPD_TIMEOUT_S, 0);
	c->io.data = c->timer.data = c;
	ev_io_start(loop, &c->io);
	ev_timer_start(loop, &c->timer);
	c->next = h->conns;
	h->conns = c;
	h->n_conns++;
}

struct httpd *httpd_start(struct ev_loop *loop, const char *hostport, httpd_handler handler, void *ud,
			  struct vxerr *err)
{
	char host[NET_IP_MAX];
	uint16_t port = 0;
	const char *colon = strrchr(hostport, ':');
	if (colon && strcmp(colon, ":0") == 0) {
		snprintf(host, sizeof(host), "%.*s", (int)(colon - hostport), hostport);
	} else if (net_hostport_parse(hostport, host, sizeof(host), &port, err) != 0) {
		return NULL;
	}
	int fd = net_listen_tcp(host, port, 64, err);
	if (fd < 0)
		return NULL;
	struct httpd *h = xcalloc(1, sizeof(*h));
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(fd, (struct sockaddr *)&ss, &len);
	h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
						  : ((struct sockaddr_in *)&ss)->sin_port);
	h->loop = loop;
	h->handler = handler;
	h->ud = ud;
	ev_io_init(&h->accept_io, on_accept, fd, EV_READ);
	h->accept_io.data = h;
	ev_io_start(loop, &h->accept_io);
	return h;
}

int httpd_port(const struct httpd *h)
{
	return h->port;
}

void httpd_free(struct httpd *h)
{
	if (!h)
		return;
	while (h->conns)
		conn_close(h->conns);
	ev_io_stop(h->loop, &h->accept_io);
	close(h->accept_io.fd);
	free(h);
}
