/* Scripted keep-alive HTTP server (see fx_kaserver.h). */
#include "fx_kaserver.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/http1.h"
#include "common/net.h"
#include "common/timeutil.h"

#define MAX_CONNS 16
#define MAX_REQ 64

struct kconn {
	int fd; /* -1: free */
	struct buf in;
	struct buf body;
	struct http1_req req;
	int64_t close_at_us; /* 0: none */
};

struct fx_kaserver {
	int lfd;
	int wake[2];
	struct fx_ka_step *steps;
	size_t n;
	char url[64];
	pthread_t thread;
	int accepted;
	int requests;
	char *bodies[MAX_REQ];
	struct kconn conns[MAX_CONNS];
};

char *fx_ka_json(const char *body)
{
	return xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
			 strlen(body), body);
}

static void conn_close(struct kconn *k, bool reset)
{
	if (reset) {
		struct linger l = { 1, 0 };
		setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	}
	close(k->fd);
	k->fd = -1;
	buf_release(&k->in);
	buf_release(&k->body);
}

static void conn_add(struct fx_kaserver *s, int fd)
{
	for (int i = 0; i < MAX_CONNS; i++) {
		struct kconn *k = &s->conns[i];
		if (k->fd >= 0)
			continue;
		k->fd = fd;
		buf_init(&k->in, 1 << 20);
		buf_init(&k->body, 1 << 20);
		http1_req_init(&k->req, NULL, NULL, 0);
		k->close_at_us = 0;
		__atomic_add_fetch(&s->accepted, 1, __ATOMIC_SEQ_CST);
		return;
	}
	close(fd);
}

/* Blocking writes without SIGPIPE: the client may give up and close first. */
static int send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static void write_reply(int fd, const struct fx_ka_step *st)
{
	const char *r = st->reply ? st->reply : "";
	size_t len = strlen(r);
	if (st->dribble_us <= 0) {
		send_all(fd, r, len);
		return;
	}
	for (size_t i = 0; i < len; i++) {
		if (send_all(fd, r + i, 1) != 0)
			return;
		time_sleep_us(st->dribble_us);
	}
}

/* A whole request arrived on k: record it, then play the next step. */
static void serve(struct fx_kaserver *s, struct kconn *k)
{
	int i = __atomic_load_n(&s->requests, __ATOMIC_SEQ_CST);
	if (i < MAX_REQ)
		s->bodies[i] = xstrndup(k->body.data ? k->body.data : "", k->body.len);
	buf_reset(&k->body);
	const struct fx_ka_step *st = &s->steps[(size_t)i < s->n ? (size_t)i : s->n - 1];
	/* counted before the reply goes out: a client that has its answer finds it counted */
	__atomic_add_fetch(&s->requests, 1, __ATOMIC_SEQ_CST);
	write_reply(k->fd, st);
	if (st->stop_listening && s->lfd >= 0) {
		close(s->lfd);
		s->lfd = -1;
	}
	if (st->after == FX_KA_CLOSE || st->after == FX_KA_RESET)
		conn_close(k, st->after == FX_KA_RESET);
	else if (st->after == FX_KA_IDLE_CLOSE)
		k->close_at_us = time_mono_us() + st->idle_close_ms * USEC_PER_MS;
}

/* Parses what k holds; false when k was closed. */
static bool parse(struct fx_kaserver *s, struct kconn *k)
{
	for (;;) {
		struct http1_span body;
		size_t used = 0;
		enum http1_ev ev = http1_req_feed(&k->req, k->in.data, k->in.len, &used, &body);
		if (ev == HTTP1_BODY)
			buf_append(&k->body, body.p, body.len);
		buf_consume(&k->in, used);
		if (ev == HTTP1_DONE) {
			serve(s, k);
			if (k->fd < 0)
				return false;
		}
		if (ev == HTTP1_ERROR) {
			conn_close(k, false);
			return false;
		}
		if (ev == HTTP1_AGAIN)
			return true;
	}
}

static void on_readable(struct fx_kaserver *s, struct kconn *k)
{
	char chunk[4096];
	ssize_t n = read(k->fd, chunk, sizeof(chunk));
	if (n <= 0 || buf_append(&k->in, chunk, (size_t)n) != 0) {
		conn_close(k, false);
		return;
	}
	k->close_at_us = 0; /* not idle any more */
	parse(s, k);
}

static int poll_timeout_ms(const struct fx_kaserver *s)
{
	int64_t now = time_mono_us(), t = 200;
	for (int i = 0; i < MAX_CONNS; i++) {
		const struct kconn *k = &s->conns[i];
		if (k->fd >= 0 && k->close_at_us > 0) {
			int64_t left = (k->close_at_us - now) / 1000 + 1;
			t = left < t ? (left > 0 ? left : 0) : t;
		}
	}
	return (int)t;
}

static void close_idle(struct fx_kaserver *s)
{
	int64_t now = time_mono_us();
	for (int i = 0; i < MAX_CONNS; i++)
		if (s->conns[i].fd >= 0 && s->conns[i].close_at_us > 0 && s->conns[i].close_at_us <= now)
			conn_close(&s->conns[i], false);
}

static void *run(void *arg)
{
	struct fx_kaserver *s = arg;
	for (;;) {
		struct pollfd p[2 + MAX_CONNS];
		int who[2 + MAX_CONNS], n = 0;
		p[n++] = (struct pollfd){ s->wake[0], POLLIN, 0 };
		if (s->lfd >= 0) {
			who[n] = -1;
			p[n++] = (struct pollfd){ s->lfd, POLLIN, 0 };
		}
		for (int i = 0; i < MAX_CONNS; i++) {
			if (s->conns[i].fd >= 0) {
				who[n] = i;
				p[n++] = (struct pollfd){ s->conns[i].fd, POLLIN, 0 };
			}
		}
		if (poll(p, (nfds_t)n, poll_timeout_ms(s)) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break;
		for (int j = 1; j < n; j++) {
			if (!p[j].revents)
				continue;
			if (who[j] < 0) {
				int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
				if (fd >= 0)
					conn_add(s, fd);
			} else if (s->conns[who[j]].fd == p[j].fd) {
				on_readable(s, &s->conns[who[j]]);
			}
		}
		close_idle(s);
	}
	return NULL;
}

struct fx_kaserver *fx_kaserver_start(const struct fx_ka_step *steps, size_t n)
{
	struct fx_kaserver *s = xcalloc(1, sizeof(*s));
	struct vxerr err;
	int port = net_free_port();
	s->lfd = net_listen_tcp("127.0.0.1", (uint16_t)port, 16, &err);
	if (s->lfd < 0)
		fail_msg("kaserver listen: %s", err.msg);
	if (pipe2(s->wake, O_CLOEXEC) != 0)
		fail_msg("kaserver pipe: %s", strerror(errno));
	s->steps = xcalloc(n, sizeof(*s->steps));
	for (size_t i = 0; i < n; i++) {
		s->steps[i] = steps[i];
		s->steps[i].reply = xstrdup(steps[i].reply ? steps[i].reply : "");
	}
	s->n = n;
	for (int i = 0; i < MAX_CONNS; i++)
		s->conns[i].fd = -1;
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", port);
	if (pthread_create(&s->thread, NULL, run, s) != 0)
		fail_msg("kaserver thread");
	return s;
}

const char *fx_kaserver_url(const struct fx_kaserver *s)
{
	return s->url;
}

int fx_kaserver_accepted(struct fx_kaserver *s)
{
	return __atomic_load_n(&s->accepted, __ATOMIC_SEQ_CST);
}

int fx_kaserver_requests(struct fx_kaserver *s)
{
	return __atomic_load_n(&s->requests, __ATOMIC_SEQ_CST);
}

const char *fx_kaserver_body(struct fx_kaserver *s, int i)
{
	return i >= 0 && i < MAX_REQ && i < fx_kaserver_requests(s) ? s->bodies[i] : NULL;
}

void fx_kaserver_free(struct fx_kaserver *s)
{
	if (!s)
		return;
	if (write(s->wake[1], "x", 1) != 1)
		fail_msg("kaserver wake: %s", strerror(errno));
	pthread_join(s->thread, NULL);
	if (s->lfd >= 0)
		close(s->lfd);
	close(s->wake[0]);
	close(s->wake[1]);
	for (int i = 0; i < MAX_CONNS; i++)
		if (s->conns[i].fd >= 0)
			conn_close(&s->conns[i], false);
	for (int i = 0; i < MAX_REQ; i++)
		free(s->bodies[i]);
	for (size_t i = 0; i < s->n; i++)
		free((char *)(uintptr_t)s->steps[i].reply);
	free(s->steps);
	free(s);
}
