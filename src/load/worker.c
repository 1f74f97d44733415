/* One load worker: a thread with its own libev loop and its share of the connections and of
 * the rate. Requests are the run's pre-rendered bytes; responses are parsed in place from a
 * per-worker read buffer (a connection keeps a small carry buffer only while a head or chunk
 * line is split across reads). Everything here runs on the worker's thread; the run only
 * reaches in through the ev_async watcher and the atomics it reads. */
#include <errno.h>
#include <ev.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/http1.h"
#include "common/timeutil.h"
#include "load/load_int.h"

#define READ_BUF (64 * 1024)
#define CARRY_MAX (READ_BUF + 32 * 1024)
/* A closed-loop connection whose connect failed waits this long before trying again, so that a
 * dead target does not turn the generator into a busy loop. */
#define CONNECT_BACKOFF_US (10 * USEC_PER_MS)

enum cstate { C_CLOSED, C_IDLE, C_CONNECTING, C_WRITING, C_READING, C_BACKOFF };

struct conn {
	struct worker *w;
	ev_io io;
	ev_timer timer;
	int fd;
	enum cstate state;
	bool busy;            /* holds a request */
	bool keep_alive;      /* of the response being read */
	int64_t due_us;       /* absolute monotonic times */
	int64_t sent_us;
	size_t woff;
	struct http1_resp resp;
	struct buf carry;
};

struct worker {
	struct load_run *run;
	int id;
	pthread_t thread;
	bool started;
	struct ev_loop *loop;
	/* The send timer is a timerfd: libev's epoll timers wake up to 1 ms late, which would add
	 * half a millisecond of lag to every request of an open loop. */
	int send_fd;
	ev_io send_io;
	ev_timer tick_timer, end_timer;
	ev_async wake;
	struct conn *conns;
	int nconns;
	int *free_stack;
	int nfree;
	int inflight;
	bool in_dispatch;
	struct load_sched sched;
	bool open_loop;
	bool ending;
	bool finished;
	int64_t end_at_us;   /* relative time the window ended for this worker */
	int64_t second;
	long long rate_seen;
	struct load_counts total, sec;
	struct hist lat, lat_unc, lag, gen_lag, sec_lat;
	char rbuf[READ_BUF];
};

static void dispatch_due(struct worker *w, int64_t now, bool from_timer);
static void begin_end(struct worker *w, int64_t now);

static void count_error(struct worker *w, enum load_err_kind k)
{
	w->total.errors[k]++;
	w->sec.errors[k]++;
}

static enum load_err_kind kind_of(int e, bool connecting)
{
	switch (e) {
	case ECONNREFUSED:
		return LOAD_ERR_REFUSED;
	case ETIMEDOUT:
		return connecting ? LOAD_ERR_CONNECT_TIMEOUT : LOAD_ERR_READ_TIMEOUT;
	case ECONNRESET:
	case EPIPE:
		return LOAD_ERR_RESET;
	case EADDRNOTAVAIL:
		return LOAD_ERR_PORTS;
	case EMFILE:
	case ENFILE:
		return LOAD_ERR_FDS;
	default:
		return LOAD_ERR_OTHER;
	}
}

static void set_events(struct conn *c, int events)
{
	if ((c->io.events & (EV_READ | EV_WRITE)) == events && ev_is_active(&c->io))
		return;
	ev_io_stop(c->w->loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(c->w->loop, &c->io);
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0) {
		ev_io_stop(c->w->loop, &c->io);
		close(c->fd);
		c->fd = -1;
	}
	c->state = C_CLOSED;
	buf_reset(&c->carry);
	http1_resp_init(&c->resp, NULL, NULL, 0);
	c->resp.head_request = c->w->run->head_request;
}

static void push_free(struct worker *w, struct conn *c)
{
	w->free_stack[w->nfree++] = (int)(c - w->conns);
}

static void finish(struct worker *w)
{
	if (w->finished)
		return;
	w->finished = true;
	for (int i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];
		if (c->busy)
			count_error(w, LOAD_ERR_NEVER_COMPLETED);
		c->busy = false;
		ev_timer_stop(w->loop, &c->timer);
		conn_close(c);
	}
	w->inflight = 0;
	ev_io_stop(w->loop, &w->send_io);
	ev_timer_stop(w->loop, &w->tick_timer);
	ev_timer_stop(w->loop, &w->end_timer);
	ev_async_stop(w->loop, &w->wake);
	load_run_publish(w->run, w->second, &w->sec, &w->sec_lat);
	ev_break(w->loop, EVBREAK_ALL);
}

static void dispatch(struct worker *w, struct conn *c, int64_t due, int64_t now);

/* Arms the send timer for the absolute monotonic time at_us (0 disarms it). */
static void arm_send(struct worker *w, int64_t at_us)
{
	struct itimerspec its = { .it_value = { .tv_sec = at_us / USEC_PER_SEC, .tv_nsec = (at_us % USEC_PER_SEC) * 1000 } };
	timerfd_settime(w->send_fd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* The connection is done with its request: hand it to the next one, or to the end. */
static void release(struct worker *w, struct conn *c, int64_t now)
{
	if (w->ending) {
		push_free(w, c);
		if (w->inflight == 0)
			finish(w);
	} else if (w->open_loop) {
		push_free(w, c);
		if (!w->in_dispatch)
			dispatch_due(w, now, false);
	} else {
		dispatch(w, c, now, now);
	}
}

static void end_request(struct worker *w, struct conn *c)
{
	ev_timer_stop(w->loop, &c->timer);
	c->busy = false;
	w->inflight--;
}

static void fail(struct conn *c, enum load_err_kind k)
{
	struct worker *w = c->w;
	bool connecting = c->state == C_CONNECTING || c->fd < 0;
	count_error(w, k);
	end_request(w, c);
	conn_close(c);
	int64_t now = time_mono_us();
	if (!w->open_loop && !w->ending && connecting) {
		c->state = C_BACKOFF;
		ev_timer_set(&c->timer, (double)CONNECT_BACKOFF_US / 1e6, 0);
		ev_timer_start(w->loop, &c->timer);
		return;
	}
	release(w, c, now);
}

static void complete(struct conn *c, bool keep)
{
	struct worker *w = c->w;
	int64_t now = time_mono_us();
	hist_record(&w->lat, now - c->due_us);
	hist_record(&w->lat_unc, now - c->sent_us);
	hist_record(&w->sec_lat, now - c->due_us);
	int cls = c->resp.status / 100;
	if (cls < 1 || cls > 5)
		cls = 0;
	w->total.responses++;
	w->sec.responses++;
	w->total.status[cls]++;
	w->sec.status[cls]++;
	end_request(w, c);
	c->state = C_IDLE;
	if (!keep || w->run->spec.no_keepalive)
		conn_close(c);
	release(w, c, now);
}

static void conn_write(struct conn *c)
{
	struct worker *w = c->w;
	const struct load_run *run = w->run;
	ssize_t n = send(c->fd, run->request + c->woff, run->request_len - c->woff, MSG_NOSIGNAL);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			set_events(c, EV_READ | EV_WRITE);
		else
			fail(c, kind_of(errno, false));
		return;
	}
	c->woff += (size_t)n;
	w->total.bytes_out += (uint64_t)n;
	w->sec.bytes_out += (uint64_t)n;
	c->state = c->woff < run->request_len ? C_WRITING : C_READING;
	set_events(c, c->state == C_WRITING ? EV_READ | EV_WRITE : EV_READ);
}

static void connected(struct conn *c)
{
	int e = 0;
	socklen_t len = sizeof(e);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
		e = errno;
	if (e != 0) {
		fail(c, kind_of(e, true));
		return;
	}
	c->state = C_WRITING;
	conn_write(c);
}

/* Opens the connection; false when it failed at once (the request is already failed). */
static bool conn_open(struct conn *c)
{
	const struct load_target *t = &c->w->run->target;
	int fd = socket(t->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fail(c, kind_of(errno, true));
		return false;
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->fd = fd;
	c->state = C_CONNECTING;
	if (connect(fd, (const struct sockaddr *)&t->addr, t->addrlen) != 0 && errno != EINPROGRESS) {
		fail(c, kind_of(errno, true));
		return false;
	}
	set_events(c, EV_WRITE);
	return true;
}

static void dispatch(struct worker *w, struct conn *c, int64_t due, int64_t now)
{
	c->busy = true;
	c->due_us = due;
	c->sent_us = now;
	c->woff = 0;
	w->inflight++;
	w->total.sent++;
	w->sec.sent++;
	ev_timer_set(&c->timer, (double)w->run->spec.timeout_us / 1e6, 0);
	ev_timer_start(w->loop, &c->timer);
	if (c->fd < 0) {
		conn_open(c);
		return;
	}
	c->state = C_WRITING;
	conn_write(c);
}

/* Sends every request that is due while a connection is free. A request sent late while a
 * connection was free (the loop was busy or the timer fired late) counts as generator lag;
 * one that waited for a busy connection is the server's doing and counts only as schedule lag. */
static void dispatch_due(struct worker *w, int64_t now, bool from_timer)
{
	if (w->ending || !w->open_loop)
		return;
	w->in_dispatch = true;
	while (w->nfree > 0 && !w->ending) {
		double t = w->sched.t_us;
		if (!(t < w->sched.end_us))
			break;
		int64_t due = w->run->t0_us + (int64_t)t;
		if (due > now) {
			arm_send(w, due);
			break;
		}
		bool gen = from_timer || w->nfree > 1;
		struct conn *c = &w->conns[w->free_stack[--w->nfree]];
		hist_record(&w->lag, now - due);
		if (gen)
			hist_record(&w->gen_lag, now - due);
		load_sched_advance(&w->sched);
		dispatch(w, c, due, now);
	}
	w->in_dispatch = false;
}

/* Feeds received bytes to the response parser. */
static void conn_feed(struct conn *c, const char *data, size_t n)
{
	const char *p = data;
	size_t len = n, off = 0;
	if (c->carry.len) {
		if (buf_append(&c->carry, data, n) != 0) {
			fail(c, LOAD_ERR_BAD_RESPONSE);
			return;
		}
		p = c->carry.data;
		len = c->carry.len;
	}
	for (;;) {
		size_t used;
		struct http1_span body;
		enum http1_ev ev = http1_resp_feed(&c->resp, p + off, len - off, &used, &body);
		off += used;
		if (ev == HTTP1_AGAIN)
			break;
		if (ev == HTTP1_ERROR) {
			fail(c, LOAD_ERR_BAD_RESPONSE);
			return;
		}
		if (ev == HTTP1_HEAD)
			c->keep_alive = c->resp.m.keep_alive;
		if (ev == HTTP1_DONE) {
			/* Bytes after a complete response were never asked for: drop the connection. */
			complete(c, c->keep_alive && off == len);
			return;
		}
	}
	if (c->carry.len)
		buf_consume(&c->carry, off);
	else if (off < len && buf_append(&c->carry, p + off, len - off) != 0)
		fail(c, LOAD_ERR_BAD_RESPONSE);
}

static void on_eof(struct conn *c)
{
	if (!c->busy) {
		conn_close(c);
		return;
	}
	if (http1_resp_eof(&c->resp) == HTTP1_DONE)
		complete(c, false);
	else
		fail(c, LOAD_ERR_CLOSED);
}

static void conn_read(struct conn *c)
{
	struct worker *w = c->w;
	ssize_t n = recv(c->fd, w->rbuf, sizeof(w->rbuf), 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		if (c->busy)
			fail(c, kind_of(errno, false));
		else
			conn_close(c);
		return;
	}
	if (n == 0) {
		on_eof(c);
		return;
	}
	w->total.bytes_in += (uint64_t)n;
	w->sec.bytes_in += (uint64_t)n;
	if (!c->busy) { /* unsolicited bytes on an idle connection */
		conn_close(c);
		return;
	}
	conn_feed(c, w->rbuf, (size_t)n);
}

static void on_io(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	struct conn *c = io->data;
	if (c->state == C_CONNECTING) {
		if (revents & (EV_WRITE | EV_READ))
			connected(c);
		return;
	}
	if ((revents & EV_WRITE) && c->state == C_WRITING) {
		conn_write(c);
		if (c->fd < 0 || c->state != C_READING)
			return;
	}
	if (revents & EV_READ)
		conn_read(c);
}

static void on_conn_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct conn *c = t->data;
	struct worker *w = c->w;
	if (c->state == C_BACKOFF) {
		c->state = C_CLOSED;
		release(w, c, time_mono_us());
		return;
	}
	if (c->busy)
		fail(c, c->state == C_CONNECTING ? LOAD_ERR_CONNECT_TIMEOUT : LOAD_ERR_READ_TIMEOUT);
}

static void on_send_timer(struct ev_loop *loop, ev_io *io, int revents)
{
	(void)loop;
	(void)revents;
	struct worker *w = io->data;
	uint64_t expirations;
	if (read(w->send_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		return;
	dispatch_due(w, time_mono_us(), true);
}

/* libev timers count from the loop's cached time, which may be old (at the first arming, it
 * is when the loop was created): refresh it, or the timer fires early by that much. */
static void arm_at(struct worker *w, ev_timer *t, int64_t at_us)
{
	ev_now_update(w->loop);
	int64_t delay = at_us - time_mono_us();
	ev_timer_stop(w->loop, t);
	ev_timer_set(t, delay > 0 ? (double)delay / 1e6 : 0, 0);
	ev_timer_start(w->loop, t);
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct worker *w = t->data;
	int64_t boundary = w->run->t0_us + (w->second + 1) * USEC_PER_SEC;
	if (time_mono_us() < boundary) { /* early by a rounding: wait for the second to end */
		arm_at(w, &w->tick_timer, boundary);
		return;
	}
	load_run_publish(w->run, w->second, &w->sec, &w->sec_lat);
	memset(&w->sec, 0, sizeof(w->sec));
	hist_init(&w->sec_lat);
	w->second++;
	int64_t next = (w->second + 1) * USEC_PER_SEC;
	if (next < w->run->window_us)
		arm_at(w, &w->tick_timer, w->run->t0_us + next);
}

/* Requests that fell due before the end but found no free connection. */
static void count_not_sent(struct worker *w)
{
	if (!w->open_loop)
		return;
	while (w->sched.t_us < (double)w->end_at_us) {
		count_error(w, LOAD_ERR_NOT_SENT);
		if (!load_sched_advance(&w->sched))
			break;
	}
}

static void begin_end(struct worker *w, int64_t now)
{
	if (w->ending)
		return;
	/* What fell due while the loop was late goes out now, on whatever connection is free (its
	 * latency counts from when it was due): only a request that finds none is "never sent". */
	dispatch_due(w, now, true);
	w->ending = true;
	int64_t rel = now - w->run->t0_us;
	w->end_at_us = rel < w->run->window_us ? rel : w->run->window_us;
	arm_send(w, 0);
	ev_timer_stop(w->loop, &w->tick_timer);
	count_not_sent(w);
	for (int i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];
		if (c->state == C_BACKOFF) {
			ev_timer_stop(w->loop, &c->timer);
			c->state = C_CLOSED;
			push_free(w, c);
		}
	}
	if (w->inflight == 0) {
		finish(w);
		return;
	}
	arm_at(w, &w->end_timer, now + w->run->spec.grace_us);
}

static void on_end_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct worker *w = t->data;
	int64_t now = time_mono_us(), end = w->run->t0_us + w->run->window_us;
	if (w->ending)
		finish(w);
	else if (now < end) /* early by a rounding: requests are still due */
		arm_at(w, &w->end_timer, end);
	else
		begin_end(w, now);
}

static void apply_rate(struct worker *w, int64_t now)
{
	long long milli = atomic_load(&w->run->rate_milli);
	if (milli < 0 || milli == w->rate_seen || !w->open_loop)
		return;
	w->rate_seen = milli;
	load_sched_set_rate(&w->sched, (double)milli / 1000.0, (double)(now - w->run->t0_us));
	arm_send(w, 0);
	dispatch_due(w, now, true);
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
	(void)loop;
	(void)revents;
	struct worker *w = a->data;
	int64_t now = time_mono_us();
	if (atomic_load(&w->run->stop)) {
		int64_t at = atomic_load(&w->run->stop_at_us);
		begin_end(w, at >= 0 ? w->run->t0_us + at : now);
		return;
	}
	apply_rate(w, now);
}

static void begin(struct worker *w)
{
	struct load_run *run = w->run;
	int64_t now = time_mono_us();
	if (run->window_us > USEC_PER_SEC)
		arm_at(w, &w->tick_timer, run->t0_us + USEC_PER_SEC);
	arm_at(w, &w->end_timer, run->t0_us + run->window_us);
	if (atomic_load(&run->stop)) {
		begin_end(w, now);
		return;
	}
	if (w->open_loop) {
		apply_rate(w, now);
		dispatch_due(w, now, true);
		return;
	}
	while (w->nfree > 0 && !w->ending)
		dispatch(w, &w->conns[w->free_stack[--w->nfree]], now, now);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	begin(w);
	if (!w->finished)
		ev_run(w->loop, 0);
	load_run_worker_done(w->run);
	return NULL;
}

static void init_conn(struct worker *w, struct conn *c)
{
	c->w = w;
	c->fd = -1;
	ev_io_init(&c->io, on_io, -1, EV_READ);
	c->io.data = c;
	ev_timer_init(&c->timer, on_conn_timer, 0, 0);
	c->timer.data = c;
	buf_init(&c->carry, CARRY_MAX);
	http1_resp_init(&c->resp, NULL, NULL, 0);
	c->resp.head_request = w->run->head_request;
}

struct worker *load_worker_new(struct load_run *run, int id, int nconns)
{
	struct worker *w = xcalloc(1, sizeof(*w));
	w->run = run;
	w->id = id;
	w->loop = ev_loop_new(EVFLAG_AUTO | EVFLAG_NOENV);
	w->nconns = nconns;
	w->conns = xcalloc((size_t)nconns, sizeof(*w->conns));
	w->free_stack = xcalloc((size_t)nconns, sizeof(int));
	for (int i = nconns - 1; i >= 0; i--) {
		init_conn(w, &w->conns[i]);
		push_free(w, &w->conns[i]);
	}
	w->open_loop = run->spec.nphases > 0;
	w->rate_seen = -1;
	double share = 1.0 / run->nworkers;
	double r0 = w->open_loop ? run->phases[0].rps_from : 0;
	double offset = r0 > 0 ? (double)id * 1e6 / r0 : 0; /* interleave the workers' sends */
	load_sched_init(&w->sched, run->phases, run->spec.nphases, share, offset);
	w->send_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	ev_io_init(&w->send_io, on_send_timer, w->send_fd, EV_READ);
	ev_timer_init(&w->tick_timer, on_tick, 0, 0);
	ev_timer_init(&w->end_timer, on_end_timer, 0, 0);
	ev_async_init(&w->wake, on_wake);
	w->send_io.data = w->tick_timer.data = w->end_timer.data = w->wake.data = w;
	if (w->loop) {
		ev_async_start(w->loop, &w->wake);
		if (w->send_fd >= 0)
			ev_io_start(w->loop, &w->send_io);
	}
	return w;
}

int load_worker_start(struct worker *w, struct vxerr *err)
{
	if (!w->loop || w->send_fd < 0)
		return vxerr_set(err, "cannot create an event loop and timer for worker %d", w->id);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* signals go to the caller's threads */
	int rc = pthread_create(&w->thread, NULL, worker_main, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return vxerr_set(err, "cannot start worker thread %d: %s", w->id, strerror(rc));
	w->started = true;
	return 0;
}

void load_worker_join(struct worker *w)
{
	if (w->started)
		pthread_join(w->thread, NULL);
	w->started = false;
}

void load_worker_wake(struct worker *w)
{
	if (w->loop)
		ev_async_send(w->loop, &w->wake);
}

void load_worker_collect(const struct worker *w, struct load_result *r)
{
	load_counts_add(&r->counts, &w->total);
	hist_merge(&r->latency, &w->lat);
	hist_merge(&r->latency_uncorrected, &w->lat_unc);
	hist_merge(&r->schedule_lag, &w->lag);
	hist_merge(&r->generator_lag, &w->gen_lag);
	r->intended += w->total.sent + w->total.errors[LOAD_ERR_NOT_SENT];
}

void load_worker_free(struct worker *w)
{
	if (!w)
		return;
	for (int i = 0; i < w->nconns; i++) {
		if (w->conns[i].fd >= 0)
			close(w->conns[i].fd);
		buf_release(&w->conns[i].carry);
	}
	if (w->loop)
		ev_loop_destroy(w->loop);
	if (w->send_fd >= 0)
		close(w->send_fd);
	free(w->conns);
	free(w->free_stack);
	free(w);
}
