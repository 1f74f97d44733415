/* The test backend (see testserver.h). Each thread owns a listener, a libev loop, its
 * connections and a FIFO of requests waiting for capacity; the capacity itself, the counters
 * and the settings are shared through atomics (settings through a generation counter and a
 * mutex, read once per request only when they changed). A connection handles one request at
 * a time: pipelined requests wait in its input buffer until the previous one is answered.
 * Connections are freed only from the top of a callback (conn_settle), never deep inside. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
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
#include "load/testserver.h"
#include "load/ts_int.h"

#define IN_MAX (64 * 1024)
#define OUT_MAX (256 * 1024)
#define READ_BUF (16 * 1024)
#define MAX_THREADS 64
#define ACCEPT_BATCH 64
#define QUERY_MAX 256

/* S_GRANTED: a slot was handed to the queued request; its thread has yet to start it. */
enum { S_READ, S_QUEUED, S_GRANTED, S_SERVING };
enum route { R_WORK, R_HEALTHZ, R_STATS, R_SET, R_CONTROL_UNKNOWN };
enum canned { K_OK, K_FAIL, K_BUSY, K_COUNT };

struct ts_thread;

struct ts_conn {
	struct ts_thread *t;
	ev_io io;
	ev_timer timer;
	int fd;
	int state;
	bool keep_alive;
	bool head_req;
	bool loopback;
	bool close_after; /* close once the output is flushed */
	bool broken;      /* the peer is gone: free at the next settle */
	enum route route;
	bool method_ok;
	char query[QUERY_MAX];
	size_t query_len;
	bool query_long;
	struct http1_req req;
	struct buf in, out;
	struct ts_conn *prev, *next, *qnext;
};

struct ts_thread {
	struct ts_server *srv;
	int id;
	pthread_t th;
	bool started;
	struct ev_loop *loop;
	ev_io accept_io;
	ev_timer accept_retry, drain_timer;
	ev_async wake;
	int lfd;
	struct ts_conn *conns;
	struct ts_conn *ready; /* granted requests to start (under the server's q_mu) */
	uint64_t rng;
	struct ts_dist service;
	double fail_rate;
	unsigned gen;
	bool draining;
	char rbuf[READ_BUF];
};

struct canned_resp {
	struct buf b;
	size_t head_len;
};

struct ts_server {
	struct ts_opts o;
	char instance[64];
	uint16_t port;
	int nthreads;
	struct ts_thread **threads;
	atomic_bool stopping;
	atomic_bool drain_failed;
	atomic_llong in_flight, queued, connections;
	atomic_ullong served, failed, rejected, healthz;
	atomic_int capacity;
	atomic_uint gen;
	/* One FIFO for the whole server, so that no thread's waiting requests starve; it is only
	 * touched at capacity, and the fast path (a free slot, nobody waiting) takes no lock. */
	pthread_mutex_t q_mu;
	struct ts_conn *qhead, *qtail;
	pthread_mutex_t cfg_mu;
	struct ts_dist service;
	double fail_rate;
	struct canned_resp canned[K_COUNT][2]; /* [kind][close] */
};

/* ---- capacity ---- */

static bool try_acquire(struct ts_server *s)
{
	long long cur = atomic_load(&s->in_flight);
	while (cur < atomic_load(&s->capacity))
		if (atomic_compare_exchange_weak(&s->in_flight, &cur, cur + 1))
			return true;
	return false;
}

/* Under q_mu: the oldest waiting request gets a slot that is already counted in in_flight. */
static void grant_head(struct ts_server *s)
{
	struct ts_conn *c = s->qhead;
	s->qhead = c->qnext;
	if (!s->qhead)
		s->qtail = NULL;
	atomic_fetch_sub(&s->queued, 1);
	c->state = S_GRANTED;
	c->qnext = c->t->ready;
	c->t->ready = c;
	ev_async_send(c->t->loop, &c->t->wake);
}

/* Under q_mu: hands free slots to waiting requests. */
static void grant_free_slots(struct ts_server *s)
{
	while (s->qhead && try_acquire(s))
		grant_head(s);
}

/* A finished request's slot goes to the oldest waiting request, else back to the pool. The
 * second look at `queued` closes the race with a request that queued while the slot was being
 * returned (handle_work counts itself in `queued` before it tries for a slot again). */
static void release_slot(struct ts_server *s)
{
	if (atomic_load(&s->queued) > 0) {
		pthread_mutex_lock(&s->q_mu);
		bool handed = s->qhead != NULL;
		if (handed)
			grant_head(s);
		pthread_mutex_unlock(&s->q_mu);
		if (handed)
			return;
	}
	atomic_fetch_sub(&s->in_flight, 1);
	if (atomic_load(&s->queued) > 0) {
		pthread_mutex_lock(&s->q_mu);
		grant_free_slots(s);
		pthread_mutex_unlock(&s->q_mu);
	}
}

/* ---- output ---- */

static void flush_out(struct ts_conn *c)
{
	while (c->out.len > 0) {
		ssize_t n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EINTR)
				c->broken = true;
			return;
		}
		buf_consume(&c->out, (size_t)n);
	}
}

static void emit(struct ts_conn *c, const char *p, size_t n)
{
	if (buf_append(&c->out, p, n) != 0) {
		c->broken = true;
		return;
	}
	flush_out(c);
}

static bool must_close(const struct ts_conn *c)
{
	return !c->keep_alive || c->t->draining;
}

static void send_canned(struct ts_conn *c, enum canned k)
{
	bool close = must_close(c);
	const struct canned_resp *r = &c->t->srv->canned[k][close];
	emit(c, r->b.data, c->head_req ? r->head_len : r->b.len);
	c->close_after = c->close_after || close;
}

static void render(struct buf *b, size_t *head_len, int status, const char *reason, const char *ctype,
		   const char *body, const char *instance, bool close)
{
	buf_printf(b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n", status, reason, ctype, strlen(body));
	if (instance[0])
		buf_printf(b, "X-Served-By: %s\r\n", instance);
	if (close)
		buf_puts(b, "Connection: close\r\n");
	buf_puts(b, "\r\n");
	*head_len = b->len;
	buf_puts(b, body);
}

static void send_dynamic(struct ts_conn *c, int status, const char *reason, const char *ctype, const char *body)
{
	struct buf b = BUF_INIT(64 * 1024);
	size_t head_len;
	bool close = must_close(c) || status >= 400;
	render(&b, &head_len, status, reason, ctype, body, c->t->srv->instance, close);
	emit(c, b.data, c->head_req ? head_len : b.len);
	buf_release(&b);
	c->close_after = c->close_after || close;
}

/* ---- requests ---- */

static bool path_is(const char *target, size_t len, const char *path)
{
	size_t pl = strlen(path);
	return len >= pl && memcmp(target, path, pl) == 0 && (len == pl || target[pl] == '?');
}

/* Called at HTTP1_HEAD, while the target's bytes are still in place. */
static void classify(struct ts_conn *c)
{
	const struct http1_req *r = &c->req;
	const char *q = memchr(r->target, '?', r->target_len);
	bool get = r->method_len == 3 && memcmp(r->method, "GET", 3) == 0;
	c->head_req = r->method_len == 4 && memcmp(r->method, "HEAD", 4) == 0;
	c->keep_alive = r->m.keep_alive;
	c->query_len = 0;
	c->query_long = false;
	if (q) {
		size_t ql = r->target_len - (size_t)(q + 1 - r->target);
		c->query_long = ql >= QUERY_MAX;
		c->query_len = c->query_long ? 0 : ql;
		memcpy(c->query, q + 1, c->query_len);
	}
	c->route = R_WORK;
	c->method_ok = true;
	if (path_is(r->target, r->target_len, "/healthz")) {
		c->route = R_HEALTHZ;
		c->method_ok = get || c->head_req;
	} else if (path_is(r->target, r->target_len, "/_testserver/stats")) {
		c->route = R_STATS;
		c->method_ok = get;
	} else if (path_is(r->target, r->target_len, "/_testserver/set")) {
		c->route = R_SET;
		c->method_ok = r->method_len == 4 && memcmp(r->method, "POST", 4) == 0;
	} else if (r->target_len >= 12 && memcmp(r->target, "/_testserver", 12) == 0) {
		c->route = R_CONTROL_UNKNOWN;
	}
}

static void stats_body(struct ts_server *s, struct buf *b)
{
	struct ts_stats st;
	ts_server_stats(s, &st);
	pthread_mutex_lock(&s->cfg_mu);
	char dist[64];
	ts_dist_format(&s->service, dist, sizeof(dist));
	double fail = s->fail_rate;
	pthread_mutex_unlock(&s->cfg_mu);
	buf_printf(b,
		   "{\"instance\":\"%s\",\"served\":%llu,\"failed\":%llu,\"rejected\":%llu,\"in_flight\":%lld,"
		   "\"queued\":%lld,\"healthz\":%llu,\"connections\":%lld,\"capacity\":%d,\"service_time\":\"%s\","
		   "\"fail_rate\":%g,\"overload\":\"%s\"}\n",
		   s->instance, (unsigned long long)st.served, (unsigned long long)st.failed,
		   (unsigned long long)st.rejected, (long long)st.in_flight, (long long)st.queued,
		   (unsigned long long)st.healthz, (long long)st.connections, atomic_load(&s->capacity), dist, fail,
		   s->o.overload == TS_OVERLOAD_REJECT ? "reject" : "queue");
}

static void handle_control(struct ts_conn *c)
{
	struct ts_server *s = c->t->srv;
	if (!c->loopback) {
		send_dynamic(c, 403, "Forbidden", "text/plain", "control endpoints answer loopback clients only\n");
		return;
	}
	if (c->route == R_SET) {
		struct ts_change ch;
		struct vxerr err;
		if (c->query_long || ts_query_parse(c->query, c->query_len, &ch, &err) != 0) {
			struct buf b = BUF_INIT(1024);
			buf_printf(&b, "%s\n", c->query_long ? "query too long" : err.msg);
			send_dynamic(c, 400, "Bad Request", "text/plain", b.data);
			buf_release(&b);
			return;
		}
		ts_server_set(s, ch.has_service ? &ch.service : NULL, ch.fail_rate, ch.capacity);
	}
	struct buf b = BUF_INIT(4096);
	stats_body(s, &b);
	send_dynamic(c, 200, "OK", "application/json", b.data);
	buf_release(&b);
}

static void refresh_settings(struct ts_thread *t)
{
	struct ts_server *s = t->srv;
	unsigned g = atomic_load(&s->gen);
	if (g == t->gen)
		return;
	pthread_mutex_lock(&s->cfg_mu);
	t->service = s->service;
	t->fail_rate = s->fail_rate;
	pthread_mutex_unlock(&s->cfg_mu);
	t->gen = g;
}

static void finish_service(struct ts_conn *c)
{
	struct ts_thread *t = c->t;
	struct ts_server *s = t->srv;
	bool fail = t->fail_rate > 0 && ts_rand01(&t->rng) < t->fail_rate;
	atomic_fetch_add(&s->served, 1);
	if (fail)
		atomic_fetch_add(&s->failed, 1);
	c->state = S_READ;
	release_slot(s);
	send_canned(c, fail ? K_FAIL : K_OK);
}

/* inline_ok: a zero service time may answer right here (not while draining the queue). */
static void start_service(struct ts_conn *c, bool inline_ok)
{
	struct ts_thread *t = c->t;
	refresh_settings(t);
	int64_t us = ts_dist_sample(&t->service, &t->rng);
	c->state = S_SERVING;
	if (us == 0 && inline_ok) {
		finish_service(c);
		return;
	}
	ev_timer_set(&c->timer, (double)us / 1e6, 0);
	ev_timer_start(t->loop, &c->timer);
}

/* Starts the requests other threads (or this one) granted a slot to. */
static void start_granted(struct ts_thread *t)
{
	pthread_mutex_lock(&t->srv->q_mu);
	grant_free_slots(t->srv); /* the capacity may have grown */
	struct ts_conn *list = t->ready;
	t->ready = NULL;
	pthread_mutex_unlock(&t->srv->q_mu);
	while (list) {
		struct ts_conn *c = list;
		list = c->qnext;
		c->qnext = NULL;
		start_service(c, false);
	}
}

static void handle_work(struct ts_conn *c)
{
	struct ts_server *s = c->t->srv;
	if (atomic_load(&s->queued) == 0 && try_acquire(s)) {
		start_service(c, true);
		return;
	}
	if (s->o.overload == TS_OVERLOAD_REJECT) {
		atomic_fetch_add(&s->rejected, 1);
		send_canned(c, K_BUSY);
		return;
	}
	pthread_mutex_lock(&s->q_mu);
	c->state = S_QUEUED;
	c->qnext = NULL;
	if (s->qtail)
		s->qtail->qnext = c;
	else
		s->qhead = c;
	s->qtail = c;
	atomic_fetch_add(&s->queued, 1);
	grant_free_slots(s); /* a slot may have been freed since try_acquire failed */
	pthread_mutex_unlock(&s->q_mu);
}

static void handle(struct ts_conn *c)
{
	if (!c->method_ok) {
		send_dynamic(c, 405, "Method Not Allowed", "text/plain", "method not allowed\n");
	} else if (c->route == R_HEALTHZ) {
		atomic_fetch_add(&c->t->srv->healthz, 1);
		send_canned(c, K_OK);
	} else if (c->route == R_CONTROL_UNKNOWN) {
		send_dynamic(c, 404, "Not Found", "text/plain", "unknown control endpoint\n");
	} else if (c->route != R_WORK) {
		handle_control(c);
	} else {
		handle_work(c);
	}
}

static void bad_request(struct ts_conn *c)
{
	static const char *reasons[] = { [400] = "Bad Request", [413] = "Content Too Large",
					 [431] = "Request Header Fields Too Large", [501] = "Not Implemented",
					 [505] = "HTTP Version Not Supported" };
	int st = c->req.m.error_status;
	const char *reason = st > 0 && st <= 505 && reasons[st] ? reasons[st] : "Bad Request";
	c->keep_alive = false;
	c->head_req = false;
	struct buf b = BUF_INIT(256);
	buf_printf(&b, "%s\n", c->req.m.error);
	send_dynamic(c, st > 0 && st <= 505 && reasons[st] ? st : 400, reason, "text/plain", b.data);
	buf_release(&b);
}

/* Parses and handles requests from data (fresh bytes, or NULL to resume what is buffered). */
static void conn_input(struct ts_conn *c, const char *data, size_t n)
{
	const char *p = data;
	size_t len = n, off = 0;
	bool from_in = !data || c->in.len > 0;
	if (data && c->in.len > 0 && buf_append(&c->in, data, n) != 0) {
		c->broken = true;
		return;
	}
	if (from_in) {
		p = c->in.data;
		len = c->in.len;
	}
	while (c->state == S_READ && !c->close_after && !c->broken && c->out.len < OUT_MAX / 2 && p) {
		size_t used;
		struct http1_span body;
		enum http1_ev ev = http1_req_feed(&c->req, p + off, len - off, &used, &body);
		off += used;
		if (ev == HTTP1_AGAIN)
			break;
		if (ev == HTTP1_ERROR)
			bad_request(c);
		else if (ev == HTTP1_HEAD)
			classify(c);
		else if (ev == HTTP1_DONE)
			handle(c);
	}
	if (from_in)
		buf_consume(&c->in, off);
	else if (off < len && buf_append(&c->in, p + off, len - off) != 0)
		c->broken = true;
}

/* ---- connections ---- */

static void update_io(struct ts_conn *c)
{
	int ev = (c->state == S_READ && !c->close_after && c->in.len < IN_MAX ? EV_READ : 0) | (c->out.len ? EV_WRITE : 0);
	if (ev == (c->io.events & (EV_READ | EV_WRITE)) && ev_is_active(&c->io) == (ev != 0))
		return;
	ev_io_stop(c->t->loop, &c->io);
	if (ev) {
		ev_io_set(&c->io, c->fd, ev);
		ev_io_start(c->t->loop, &c->io);
	}
}

/* Removes c from a singly linked list through qnext; returns whether it was there. */
static bool unlink_q(struct ts_conn **head, struct ts_conn **tail, struct ts_conn *c)
{
	struct ts_conn *prev = NULL;
	for (struct ts_conn **pp = head; *pp; prev = *pp, pp = &(*pp)->qnext) {
		if (*pp == c) {
			*pp = c->qnext;
			if (tail && *tail == c)
				*tail = prev;
			return true;
		}
	}
	return false;
}

static void conn_free(struct ts_conn *c)
{
	struct ts_thread *t = c->t;
	struct ts_server *s = t->srv;
	if (c->state == S_QUEUED || c->state == S_GRANTED) {
		pthread_mutex_lock(&s->q_mu);
		if (c->state == S_QUEUED && unlink_q(&s->qhead, &s->qtail, c))
			atomic_fetch_sub(&s->queued, 1);
		bool granted = c->state == S_GRANTED && unlink_q(&t->ready, NULL, c);
		pthread_mutex_unlock(&s->q_mu);
		if (granted)
			release_slot(s);
	} else if (c->state == S_SERVING) {
		ev_timer_stop(t->loop, &c->timer);
		release_slot(s);
	}
	ev_io_stop(t->loop, &c->io);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		t->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	buf_release(&c->in);
	buf_release(&c->out);
	free(c);
	atomic_fetch_sub(&t->srv->connections, 1);
}

static bool idle(const struct ts_conn *c)
{
	return c->state == S_READ && c->out.len == 0;
}

static void maybe_done(struct ts_thread *t)
{
	if (t->draining && !t->conns) {
		ev_timer_stop(t->loop, &t->drain_timer);
		ev_break(t->loop, EVBREAK_ALL);
	}
}

/* The one place a connection is freed (or its watcher updated) after work on it. */
static void conn_settle(struct ts_conn *c)
{
	struct ts_thread *t = c->t;
	if (c->broken || ((c->close_after || t->draining) && idle(c))) {
		conn_free(c);
		maybe_done(t);
		return;
	}
	update_io(c);
}

static void on_conn_io(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	struct ts_conn *c = io->data;
	if (revents & EV_WRITE)
		flush_out(c);
	if ((revents & EV_READ) && !c->broken) {
		ssize_t n = recv(c->fd, c->t->rbuf, sizeof(c->t->rbuf), 0);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			c->broken = true;
		else if (n > 0)
			conn_input(c, c->t->rbuf, (size_t)n);
	} else if (!c->broken && c->state == S_READ && c->in.len > 0) {
		conn_input(c, NULL, 0); /* output drained: resume pipelined requests */
	}
	conn_settle(c);
}

static void on_service_done(struct ev_loop *loop, ev_timer *tm, int revents)
{
	(void)loop;
	(void)revents;
	struct ts_conn *c = tm->data;
	finish_service(c);
	if (c->in.len > 0)
		conn_input(c, NULL, 0);
	conn_settle(c);
}

static bool is_loopback(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss->ss_family != AF_INET6)
		return false;
	const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
	return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
}

static void conn_new(struct ts_thread *t, int fd, const struct sockaddr_storage *ss)
{
	struct ts_conn *c = xcalloc(1, sizeof(*c));
	c->t = t;
	c->fd = fd;
	c->loopback = is_loopback(ss);
	buf_init(&c->in, IN_MAX + READ_BUF);
	buf_init(&c->out, OUT_MAX);
	http1_req_init(&c->req, NULL, NULL, 0);
	c->req.m.lim.max_body = 1u << 20;
	ev_io_init(&c->io, on_conn_io, fd, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->timer, on_service_done, 0, 0);
	c->timer.data = c;
	c->next = t->conns;
	if (t->conns)
		t->conns->prev = c;
	t->conns = c;
	ev_io_start(t->loop, &c->io);
}

static void on_accept(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)revents;
	struct ts_thread *t = io->data;
	struct ts_server *s = t->srv;
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		int fd = accept4(t->lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) { /* try again soon rather than spin */
				ev_io_stop(loop, &t->accept_io);
				ev_timer_set(&t->accept_retry, 0.1, 0);
				ev_timer_start(loop, &t->accept_retry);
			}
			return;
		}
		if (atomic_fetch_add(&s->connections, 1) >= s->o.max_conns) {
			atomic_fetch_sub(&s->connections, 1);
			close(fd);
			continue;
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		conn_new(t, fd, &ss);
	}
}

static void on_accept_retry(struct ev_loop *loop, ev_timer *tm, int revents)
{
	(void)revents;
	struct ts_thread *t = tm->data;
	if (!t->draining)
		ev_io_start(loop, &t->accept_io);
}

static void begin_drain(struct ts_thread *t)
{
	if (t->draining)
		return;
	t->draining = true;
	ev_io_stop(t->loop, &t->accept_io);
	ev_timer_stop(t->loop, &t->accept_retry);
	if (t->lfd >= 0)
		close(t->lfd);
	t->lfd = -1;
	for (struct ts_conn *c = t->conns, *next; c; c = next) {
		next = c->next;
		conn_settle(c);
	}
	ev_timer_set(&t->drain_timer, (double)t->srv->o.drain_timeout_us / 1e6, 0);
	ev_timer_start(t->loop, &t->drain_timer);
	maybe_done(t);
}

static void on_drain_timeout(struct ev_loop *loop, ev_timer *tm, int revents)
{
	(void)revents;
	struct ts_thread *t = tm->data;
	atomic_store(&t->srv->drain_failed, true);
	while (t->conns)
		conn_free(t->conns);
	ev_break(loop, EVBREAK_ALL);
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)loop;
	(void)revents;
	struct ts_thread *t = a->data;
	start_granted(t);
	if (atomic_load(&t->srv->stopping))
		begin_drain(t);
}

static void *thread_main(void *arg)
{
	struct ts_thread *t = arg;
	if (atomic_load(&t->srv->stopping))
		begin_drain(t);
	if (!t->draining || t->conns)
		ev_run(t->loop, 0);
	return NULL;
}

/* ---- setup ---- */

static int bind_listener(const char *ip, uint16_t port, struct vxerr *err)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ip, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, ip, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		len = sizeof(*sin6);
	} else {
		return vxerr_set(err, "--bind '%s' is not an IP address", ip);
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return vxerr_set(err, "socket: %s", strerror(errno));
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 4096) != 0) {
		int e = errno;
		close(fd);
		return vxerr_set(err, "cannot listen on %s port %u: %s", ip, (unsigned)port, strerror(e));
	}
	return fd;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

static bool instance_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
	       c == ':' || c == '-';
}

static int check_opts(const struct ts_opts *o, struct vxerr *err)
{
	if (o->capacity < 1 || o->capacity > TS_MAX_CAPACITY)
		return vxerr_set(err, "capacity must be 1 to %d", TS_MAX_CAPACITY);
	if (o->threads < 1 || o->threads > MAX_THREADS)
		return vxerr_set(err, "threads must be 1 to %d", MAX_THREADS);
	if (!(o->fail_rate >= 0 && o->fail_rate <= 1))
		return vxerr_set(err, "fail rate must be a fraction from 0 to 1");
	if (o->max_conns < 1)
		return vxerr_set(err, "max connections must be at least 1");
	size_t n = o->instance ? strlen(o->instance) : 0;
	for (size_t i = 0; i < n; i++)
		if (!instance_char((unsigned char)o->instance[i]) || n > 63)
			return vxerr_set(err, "instance name '%s' must be 1-63 of [A-Za-z0-9._:-]", o->instance);
	return 0;
}

static void render_canned(struct ts_server *s)
{
	static const struct {
		int status;
		const char *reason, *body;
	} k[K_COUNT] = { [K_OK] = { 200, "OK", "ok\n" },
			 [K_FAIL] = { 500, "Internal Server Error", "failed (fail rate)\n" },
			 [K_BUSY] = { 503, "Service Unavailable", "over capacity\n" } };
	for (int i = 0; i < K_COUNT; i++) {
		for (int close = 0; close < 2; close++) {
			struct canned_resp *r = &s->canned[i][close];
			buf_init(&r->b, 4096);
			render(&r->b, &r->head_len, k[i].status, k[i].reason, "text/plain", k[i].body, s->instance, close);
		}
	}
}

static struct ts_thread *thread_new(struct ts_server *s, int id, int lfd)
{
	struct ts_thread *t = xcalloc(1, sizeof(*t));
	t->srv = s;
	t->id = id;
	t->lfd = lfd;
	t->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	t->rng = (uint64_t)time_mono_ns() * 2654435761u + (uint64_t)id * 0x9E3779B97F4A7C15ull + 1;
	t->service = s->service;
	t->fail_rate = s->fail_rate;
	t->gen = atomic_load(&s->gen);
	ev_io_init(&t->accept_io, on_accept, lfd, EV_READ);
	ev_timer_init(&t->accept_retry, on_accept_retry, 0, 0);
	ev_timer_init(&t->drain_timer, on_drain_timeout, 0, 0);
	ev_async_init(&t->wake, on_wake);
	t->accept_io.data = t->accept_retry.data = t->drain_timer.data = t->wake.data = t;
	if (t->loop) {
		ev_io_start(t->loop, &t->accept_io);
		ev_async_start(t->loop, &t->wake);
	}
	return t;
}

struct ts_server *ts_server_new(const struct ts_opts *o, struct vxerr *err)
{
	if (check_opts(o, err) != 0)
		return NULL;
	const char *ip = o->bind && *o->bind ? o->bind : "127.0.0.1";
	if (strcmp(ip, "localhost") == 0)
		ip = "127.0.0.1";
	struct ts_server *s = xcalloc(1, sizeof(*s));
	s->o = *o;
	s->o.bind = NULL;
	s->o.instance = NULL;
	snprintf(s->instance, sizeof(s->instance), "%s", o->instance ? o->instance : "");
	s->service = o->service;
	s->fail_rate = o->fail_rate;
	atomic_init(&s->capacity, o->capacity);
	pthread_mutex_init(&s->cfg_mu, NULL);
	pthread_mutex_init(&s->q_mu, NULL);
	s->threads = xcalloc((size_t)o->threads, sizeof(*s->threads));
	for (int i = 0; i < o->threads; i++) {
		int fd = bind_listener(ip, i ? s->port : o->port, err);
		if (fd < 0) {
			ts_server_free(s);
			return NULL;
		}
		s->port = bound_port(fd);
		if (i == 0) {
			/* Unnamed, the backend still says who answered: its address, as an agent names it. */
			if (!o->instance)
				net_hostport_format(ip, s->port, s->instance, sizeof(s->instance));
			render_canned(s);
		}
		s->threads[i] = thread_new(s, i, fd);
		s->nthreads++;
		if (!s->threads[i]->loop) {
			ts_server_free(s);
			vxerr_set(err, "cannot create an event loop");
			return NULL;
		}
	}
	return s;
}

uint16_t ts_server_port(const struct ts_server *s)
{
	return s->port;
}

int ts_server_run(struct ts_server *s, struct vxerr *err)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = 0;
	for (int i = 0; i < s->nthreads && rc == 0; i++) {
		rc = pthread_create(&s->threads[i]->th, NULL, thread_main, s->threads[i]);
		s->threads[i]->started = rc == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		ts_server_stop(s);
		vxerr_set(err, "cannot start a server thread: %s", strerror(rc));
	}
	for (int i = 0; i < s->nthreads; i++)
		if (s->threads[i]->started)
			pthread_join(s->threads[i]->th, NULL);
	if (rc == 0 && atomic_load(&s->drain_failed))
		return vxerr_set(err, "requests were still in flight when the drain timeout passed");
	return rc == 0 ? 0 : -1;
}

void ts_server_stop(struct ts_server *s)
{
	atomic_store(&s->stopping, true);
	for (int i = 0; i < s->nthreads; i++)
		ev_async_send(s->threads[i]->loop, &s->threads[i]->wake);
}

void ts_server_stats(struct ts_server *s, struct ts_stats *out)
{
	out->served = atomic_load(&s->served);
	out->failed = atomic_load(&s->failed);
	out->rejected = atomic_load(&s->rejected);
	out->in_flight = atomic_load(&s->in_flight);
	out->queued = atomic_load(&s->queued);
	out->healthz = atomic_load(&s->healthz);
	out->connections = atomic_load(&s->connections);
}

void ts_server_set(struct ts_server *s, const struct ts_dist *service, double fail_rate, int capacity)
{
	pthread_mutex_lock(&s->cfg_mu);
	if (service)
		s->service = *service;
	if (fail_rate >= 0 && fail_rate <= 1)
		s->fail_rate = fail_rate;
	pthread_mutex_unlock(&s->cfg_mu);
	if (capacity > 0)
		atomic_store(&s->capacity, capacity);
	atomic_fetch_add(&s->gen, 1);
	for (int i = 0; i < s->nthreads; i++) /* more capacity may let queued requests go */
		ev_async_send(s->threads[i]->loop, &s->threads[i]->wake);
}

void ts_server_free(struct ts_server *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nthreads; i++) {
		struct ts_thread *t = s->threads[i];
		while (t->conns) {
			struct ts_conn *c = t->conns;
			t->conns = c->next;
			close(c->fd);
			buf_release(&c->in);
			buf_release(&c->out);
			free(c);
		}
		if (t->lfd >= 0)
			close(t->lfd);
		if (t->loop)
			ev_loop_destroy(t->loop);
		free(t);
	}
	for (int i = 0; i < K_COUNT; i++)
		for (int close = 0; close < 2; close++)
			buf_release(&s->canned[i][close].b);
	free(s->threads);
	pthread_mutex_destroy(&s->cfg_mu);
	pthread_mutex_destroy(&s->q_mu);
	free(s);
}
