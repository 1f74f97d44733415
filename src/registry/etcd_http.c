/* The built-in HTTP/1.1 transport for http:// endpoints, on the client's libev loop.
 *
 * One exchange per transfer: a nonblocking connect bounded by the dial timeout (or a pooled
 * idle connection), the whole request written at once (etcd's gateway reads the whole body
 * before it answers), and the answer parsed as it arrives by common/http1 (Content-Length,
 * chunked with extensions and trailers, or to EOF); body bytes go to x->in, bounded by
 * max_response_bytes. A connection whose answer ended cleanly and may be kept alive goes back
 * to a small per-endpoint pool, so keepalives and unary calls reuse one connection.
 *
 * A pooled connection may have been closed by the server while idle. It is checked before
 * reuse (a peek at its socket) and watched while idle; should it still die as it is reused,
 * before a single byte of an answer, the request goes once more over a fresh connection. A
 * reset or a failed send shows the server never read the request; a clean close leaves it
 * open, so etcd_http_sent() then stays true and a write is not retried on other endpoints.
 *
 * Host names are resolved when a new connection is made (pooled connections make that rare)
 * with getaddrinfo_a(): glibc's resolver threads do the lookup and the loop polls for its end,
 * so a slow or silent DNS server costs the transfer its dial timeout, never the loop a stall.
 * IP literals are converted at once. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/http1.h"
#include "common/net.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "registry/etcd_int.h"

#define POOL_MAX 4 /* idle connections kept per endpoint */
/* An idle connection older than this is closed rather than reused: a middlebox may have
 * forgotten it (curl's default maximum age for reuse). */
#define POOL_MAX_AGE_US (118 * USEC_PER_SEC)
#define READ_CHUNK (16 * 1024)
#define READS_PER_EVENT 16 /* then let the loop serve others */
/* Unparsed bytes: at most a partial head or trailer section (16 KiB) plus one read. */
#define RAW_MAX (40 * 1024)
#define TCP_KEEPIDLE_S 10
#define TCP_KEEPINTVL_S 5

/* One TCP connection to one endpoint: in use by one exchange, or idle in the pool. */
struct etcd_conn {
	struct etcd_client *c;
	size_t ep;
	int fd;
	ev_io io;
	struct etcd_xfer *x;   /* the transfer using it; NULL while idle */
	unsigned answers;      /* answers carried so far: > 0 means a reused connection */
	int64_t idle_since_us;
	struct etcd_conn *next; /* in the pool */
};

enum hx_phase { HX_CONNECT, HX_SEND, HX_RECV, HX_OVER };

/* The exchange of one transfer. */
/* A host name being looked up. One the transfer no longer wants, and that cannot be cancelled,
 * becomes an orphan, freed once it is over. */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char *host, *port;
	struct lookup *next_orphan;
};

struct etcd_hx {
	struct etcd_xfer *x;
	struct etcd_conn *conn;
	ev_timer timer;
	struct lookup *lookup;
	ev_timer lookup_poll;
	int64_t poll_us;
	enum hx_phase phase;
	struct buf out; /* the whole request */
	size_t out_off;
	struct buf raw; /* received, not parsed yet */
	struct http1_resp resp;
	long status;
	bool keep_alive;
	bool got_bytes;  /* a byte of an answer arrived on this connection */
	bool wrote;      /* request bytes went out on this connection */
	bool maybe_seen; /* an earlier connection may have delivered the request */
	bool retried;    /* already moved to a fresh connection once */
	int64_t start_us;      /* the transfer's start: the request timeout runs from here */
	int64_t dial_start_us; /* the current connect's start */
	int64_t dial_bound_us; /* the bound that applies to it */
	struct addrinfo *addrs;
	struct addrinfo *next_addr;
};

/* ---------------------------------------------------------------- endpoints */

/* Printable ASCII without blanks: nothing that could split a request line or a header. */
static bool url_chars_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* The authority part ("host", "host:port", "[v6]:port") into host and port; the default port
 * when there is none. */
static int split_authority(const char *url, const char *auth, size_t alen, bool tls, char *host, size_t cap,
			   uint16_t *port, struct vxerr *err)
{
	char hp[300];
	struct vxerr e;
	const char *close = auth[0] == '[' ? memchr(auth, ']', alen) : NULL;
	bool has_port = auth[0] == '[' ? close && close + 1 < auth + alen : memchr(auth, ':', alen) != NULL;
	if (alen + 5 > sizeof(hp))
		return vxerr_set(err, "etcd endpoint '%s': host too long", url);
	snprintf(hp, sizeof(hp), "%.*s%s", (int)alen, auth, has_port ? "" : tls ? ":443" : ":80");
	if (net_hostport_parse(hp, host, cap, port, &e) != 0)
		return vxerr_set(err, "etcd endpoint '%s': %s", url, e.msg);
	if (!host[0])
		return vxerr_set(err, "etcd endpoint '%s': no host", url);
	return 0;
}

int etcd_ep_parse(const char *url, struct etcd_ep *ep, struct vxerr *err)
{
	memset(ep, 0, sizeof(*ep));
	bool tls = str_starts_with(url, "https://");
	if (!tls && !str_starts_with(url, "http://"))
		return vxerr_set(err, "etcd endpoint '%s': must start with http:// or https://", url);
	const char *auth = url + (tls ? 8 : 7);
	size_t alen = strcspn(auth, "/?#");
	if (alen == 0 || !url_chars_ok(url))
		return vxerr_set(err, "etcd endpoint '%s': not a URL", url);
	if (strpbrk(auth, "?#"))
		return vxerr_set(err, "etcd endpoint '%s': a query or fragment has no place in an endpoint", url);
	if (memchr(auth, '@', alen))
		return vxerr_set(err, "etcd endpoint '%s': credentials in the URL are not supported "
				 "(use the user and password options)", url);
	char host[256];
	uint16_t port;
	if (split_authority(url, auth, alen, tls, host, sizeof(host), &port, err) != 0)
		return -1;
	ep->tls = tls;
	ep->host = xstrdup(host);
	snprintf(ep->port, sizeof(ep->port), "%u", (unsigned)port);
	ep->base = xstrdup(auth + alen);
	ep->host_header = xstrndup(auth, alen);
	return 0;
}

void etcd_ep_release(struct etcd_ep *ep)
{
	free(ep->host);
	free(ep->base);
	free(ep->host_header);
	memset(ep, 0, sizeof(*ep));
}

/* ---------------------------------------------------------------- connections and the pool */

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents);

static void conn_watch(struct etcd_conn *k, int events)
{
	ev_io_stop(k->c->loop, &k->io);
	ev_io_set(&k->io, k->fd, events);
	ev_io_start(k->c->loop, &k->io);
}

static void conn_close(struct etcd_conn *k)
{
	ev_io_stop(k->c->loop, &k->io);
	close(k->fd);
	free(k);
}

static struct etcd_conn *conn_new(struct etcd_client *c, size_t ep, int fd)
{
	struct etcd_conn *k = xcalloc(1, sizeof(*k));
	k->c = c;
	k->ep = ep;
	k->fd = fd;
	ev_init(&k->io, on_conn_io);
	return k;
}

static void pool_unlink(struct etcd_ep *e, struct etcd_conn *k)
{
	for (struct etcd_conn **p = &e->idle; *p; p = &(*p)->next) {
		if (*p == k) {
			*p = k->next;
			e->n_idle--;
			return;
		}
	}
}

static void pool_put(struct etcd_conn *k)
{
	struct etcd_ep *e = &k->c->eps[k->ep];
	k->x = NULL;
	k->idle_since_us = time_mono_us();
	k->next = e->idle;
	e->idle = k;
	e->n_idle++;
	conn_watch(k, EV_READ); /* the server closing it shows up as readable */
	if (e->n_idle > POOL_MAX) {
		struct etcd_conn *old = e->idle;
		while (old->next)
			old = old->next;
		pool_unlink(e, old);
		conn_close(old);
	}
}

/* No byte and no end of stream waiting: the server has not closed it (yet). */
static bool conn_quiet(const struct etcd_conn *k)
{
	char b;
	ssize_t n = recv(k->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

static struct etcd_conn *pool_take(struct etcd_client *c, size_t ep)
{
	struct etcd_ep *e = &c->eps[ep];
	int64_t now = time_mono_us();
	while (e->idle) {
		struct etcd_conn *k = e->idle;
		pool_unlink(e, k);
		if (now - k->idle_since_us <= POOL_MAX_AGE_US && conn_quiet(k))
			return k;
		conn_close(k);
	}
	return NULL;
}

void etcd_http_pool_clear(struct etcd_client *c)
{
	for (size_t i = 0; i < c->n_endpoints; i++) {
		struct etcd_ep *e = &c->eps[i];
		while (e->idle) {
			struct etcd_conn *k = e->idle;
			pool_unlink(e, k);
			conn_close(k);
		}
	}
}

/* An idle connection became readable: the server closed it (or sent bytes nobody asked for). */
static void idle_event(struct etcd_conn *k)
{
	pool_unlink(&k->c->eps[k->ep], k);
	conn_close(k);
}

/* ---------------------------------------------------------------- the exchange */

static void hx_arm_timer(struct etcd_xfer *x)
{
	struct etcd_hx *hx = x->hx;
	int64_t at = INT64_MAX;
	if (x->timeout_us > 0)
		at = hx->start_us + x->timeout_us;
	if (hx->phase == HX_CONNECT && hx->dial_start_us + hx->dial_bound_us < at)
		at = hx->dial_start_us + hx->dial_bound_us;
	ev_timer_stop(x->c->loop, &hx->timer);
	if (at == INT64_MAX)
		return;
	int64_t left = at - time_mono_us();
	ev_timer_set(&hx->timer, left > 0 ? (double)left / 1e6 : 0.0, 0.0);
	ev_timer_start(x->c->loop, &hx->timer);
}

/* Lets go of the connection: back to the pool when it can carry another exchange. */
static void hx_release_conn(struct etcd_hx *hx, bool reusable)
{
	struct etcd_conn *k = hx->conn;
	if (!k)
		return;
	hx->conn = NULL;
	if (reusable)
		pool_put(k);
	else
		conn_close(k);
}

static void lookup_abandon(struct lookup *l);

static void hx_stop(struct etcd_xfer *x, bool reusable)
{
	struct etcd_hx *hx = x->hx;
	ev_timer_stop(x->c->loop, &hx->timer);
	ev_timer_stop(x->c->loop, &hx->lookup_poll);
	if (hx->lookup)
		lookup_abandon(hx->lookup);
	hx->lookup = NULL;
	hx_release_conn(hx, reusable);
	if (hx->addrs)
		freeaddrinfo(hx->addrs);
	hx->addrs = hx->next_addr = NULL;
	hx->phase = HX_OVER;
}

static void hx_fail(struct etcd_xfer *x, enum etcd_code code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void hx_fail(struct etcd_xfer *x, enum etcd_code code, const char *fmt, ...)
{
	char why[ETCD_WHY_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	hx_stop(x, false);
	etcd_xfer_end(x, false, code, "%s", why);
}

static void hx_succeed(struct etcd_xfer *x)
{
	struct etcd_hx *hx = x->hx;
	/* bytes past the answer: the connection is out of step, so it is not reused */
	bool reusable = hx->keep_alive && hx->raw.len == 0;
	hx->conn->answers++;
	hx_stop(x, reusable);
	etcd_xfer_end(x, true, ETCD_OK, "%s", "");
}

static void hx_write(struct etcd_xfer *x);

/* The kernel's words for errno, with a lowercase first letter as in every etcd message. */
static void errno_words(int e, char *out, size_t cap)
{
	snprintf(out, cap, "%s", e ? strerror(e) : "connection closed");
	if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z'))
		out[0] = (char)(out[0] - 'A' + 'a');
}

static bool set_tcp_options(int fd)
{
	int on = 1, idle = TCP_KEEPIDLE_S, intvl = TCP_KEEPINTVL_S;
	/* the request goes out in one write; no Nagle delay for a second segment of a big one */
	return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) == 0 &&
	       /* an idle watch sends nothing: keepalive probes find a peer that vanished */
	       setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) == 0 &&
	       setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) == 0 &&
	       setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) == 0;
}

/* ---------------------------------------------------------------- name lookups */

#define LOOKUP_POLL_MIN_US 500
#define LOOKUP_POLL_MAX_US (10 * USEC_PER_MS)

static struct lookup *orphans;
static pthread_mutex_t orphans_mu = PTHREAD_MUTEX_INITIALIZER; /* clients may run on several loops */

static void lookup_free(struct lookup *l)
{
	if (l->cb.ar_result)
		freeaddrinfo(l->cb.ar_result);
	free(l->host);
	free(l->port);
	free(l);
}

static void reap_orphans(void)
{
	pthread_mutex_lock(&orphans_mu);
	for (struct lookup **p = &orphans; *p;) {
		struct lookup *l = *p;
		if (gai_error(&l->cb) == EAI_INPROGRESS) {
			p = &l->next_orphan;
			continue;
		}
		*p = l->next_orphan;
		lookup_free(l);
	}
	pthread_mutex_unlock(&orphans_mu);
}

static void lookup_abandon(struct lookup *l)
{
	if (gai_cancel(&l->cb) == EAI_NOTCANCELED) {
		pthread_mutex_lock(&orphans_mu);
		l->next_orphan = orphans;
		orphans = l;
		pthread_mutex_unlock(&orphans_mu);
		return;
	}
	lookup_free(l);
}

static struct lookup *lookup_start(const char *host, const char *port, int *rc)
{
	reap_orphans();
	struct lookup *l = xcalloc(1, sizeof(*l));
	l->host = xstrdup(host);
	l->port = xstrdup(port);
	l->hints = (struct addrinfo){ .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	l->cb.ar_name = l->host;
	l->cb.ar_service = l->port;
	l->cb.ar_request = &l->hints;
	struct gaicb *list[1] = { &l->cb };
	*rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (*rc != 0) {
		lookup_free(l);
		return NULL;
	}
	return l;
}

static void hx_connect_next(struct etcd_xfer *x);

static void hx_lookup_done(struct etcd_xfer *x, int rc)
{
	struct etcd_hx *hx = x->hx;
	struct lookup *l = hx->lookup;
	const struct etcd_ep *ep = &x->c->eps[x->ep];
	ev_timer_stop(x->c->loop, &hx->lookup_poll);
	hx->lookup = NULL;
	if (rc != 0) {
		lookup_free(l);
		hx_fail(x, ETCD_UNAVAILABLE, "cannot resolve %s: %s", ep->host, gai_strerror(rc));
		return;
	}
	hx->addrs = hx->next_addr = l->cb.ar_result;
	l->cb.ar_result = NULL;
	lookup_free(l);
	hx_connect_next(x);
}

static void on_lookup_poll(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct etcd_hx *hx = ETCD_CONTAINER(t, struct etcd_hx, lookup_poll);
	struct etcd_xfer *x = hx->x;
	struct etcd_client *c = x->c;
	int rc = gai_error(&hx->lookup->cb);
	if (rc == EAI_INPROGRESS) {
		hx->poll_us = hx->poll_us * 2 < LOOKUP_POLL_MAX_US ? hx->poll_us * 2 : LOOKUP_POLL_MAX_US;
		ev_timer_set(t, (double)hx->poll_us / 1e6, 0);
		ev_timer_start(c->loop, t);
		return;
	}
	etcd_enter(c);
	hx_lookup_done(x, rc);
	etcd_xfer_deliver(x);
	etcd_leave(c);
}

/* 0: addresses ready; 1: a lookup is under way (the dial timeout runs meanwhile); -1: failed. */
static int hx_resolve(struct etcd_xfer *x)
{
	struct etcd_hx *hx = x->hx;
	const struct etcd_ep *ep = &x->c->eps[x->ep];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
	if (hx->addrs)
		freeaddrinfo(hx->addrs);
	hx->addrs = hx->next_addr = NULL;
	int rc = getaddrinfo(ep->host, ep->port, &hints, &hx->addrs); /* a literal: never blocks */
	if (rc == EAI_NONAME) {
		hx->lookup = lookup_start(ep->host, ep->port, &rc);
		if (hx->lookup) {
			hx->phase = HX_CONNECT;
			hx_arm_timer(x);
			hx->poll_us = LOOKUP_POLL_MIN_US;
			ev_timer_init(&hx->lookup_poll, on_lookup_poll, (double)hx->poll_us / 1e6, 0);
			ev_timer_start(x->c->loop, &hx->lookup_poll);
			return 1;
		}
	}
	if (rc != 0) {
		hx->addrs = NULL;
		hx_fail(x, ETCD_UNAVAILABLE, "cannot resolve %s: %s", ep->host, gai_strerror(rc));
		return -1;
	}
	hx->next_addr = hx->addrs;
	return 0;
}

/* A fresh connection: resolve, then connect to each address in turn. */
static void hx_connect(struct etcd_xfer *x)
{
	struct etcd_hx *hx = x->hx;
	struct etcd_client *c = x->c;
	hx->dial_start_us = time_mono_us();
	hx->dial_bound_us = c->dial_timeout_us;
	if (x->timeout_us > 0 && x->timeout_us < hx->dial_bound_us)
		hx->dial_bound_us = x->timeout_us;
	if (hx_resolve(x) == 0)
		hx_connect_next(x);
}

static void hx_connect_next(struct etcd_xfer *x)
{
	struct etcd_hx *hx = x->hx;
	int last = ECONNREFUSED;
	while (hx->next_addr) {
		struct addrinfo *ai = hx->next_addr;
		hx->next_addr = ai->ai_next;
		int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd < 0 || !set_tcp_options(fd)) {
			last = errno;
			if (fd >= 0)
				close(fd);
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 || errno == EINPROGRESS) {
			hx->conn = conn_new(x->c, x->ep, fd);
			hx->conn->x = x;
			hx->phase = HX_CONNECT;
			conn_watch(hx->conn, EV_WRITE);
			hx_arm_timer(x);
			return;
		}
		last = errno;
		close(fd);
	}
	char why[128];
	errno_words(last, why, sizeof(why));
	hx_fail(x, ETCD_UNAVAILABLE, "%s", why);
}

static void hx_connected(struct etcd_xfer *x)
{
	struct etcd_hx *hx = x->hx;
	int e = 0;
	socklen_t len = sizeof(e);
	if (getsockopt(hx->conn->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
		e = errno;
	if (e == 0) {
		hx->phase = HX_SEND;
		hx_arm_timer(x);
		hx_write(x);
		return;
	}
	hx_release_conn(hx, false);
	if (hx->next_addr) {
		hx_connect_next(x);
		return;
	}
	char why[128];
	errno_words(e, why, sizeof(why));
	hx_fail(x, ETCD_UNAVAILABLE, "%s", why);
}

/* Back to the state of an exchange that has sent nothing. */
static void hx_reset(struct etcd_hx *hx)
{
	hx->out_off = 0;
	hx->wrote = false;
	hx->got_bytes = false;
	hx->status = 0;
	hx->keep_alive = false;
	buf_reset(&hx->raw);
	struct http1_limits lim = http1_default_limits;
	lim.max_body = UINT64_MAX; /* x->in holds the bound (a watch's body never ends) */
	http1_resp_init(&hx->resp, &lim, NULL, 0);
}

/* The connection died: e is errno, 0 for a clean close. */
static void hx_lost(struct etcd_xfer *x, int e)
{
	struct etcd_hx *hx = x->hx;
	char words[128];
	if (hx->conn->answers > 0 && !hx->got_bytes && !hx->retried) {
		/* a pooled connection the server closed while it was idle: once more, fresh; a
		 * clean close may have come after the server read the request, a reset not */
		if (e == 0 && hx->wrote)
			hx->maybe_seen = true;
		hx->retried = true;
		hx_release_conn(hx, false);
		hx_reset(hx);
		hx_connect(x);
		return;
	}
	errno_words(e, words, sizeof(words));
	if (hx->phase == HX_SEND)
		hx_fail(x, ETCD_UNAVAILABLE, "connection lost while sending the request: %s", words);
	else if (!hx->got_bytes)
		hx_fail(x, ETCD_UNAVAILABLE, e ? "connection lost before an answer: %s" : "connection closed without an answer",
			words);
	else
		hx_fail(x, ETCD_UNAVAILABLE, "connection lost mid-answer: %s", e ? words : "closed by the server");
}

static void hx_write(struct etcd_xfer *x)
{
	struct etcd_hx *hx = x->hx;
	while (hx->out_off < hx->out.len) {
		ssize_t n = send(hx->conn->fd, hx->out.data + hx->out_off, hx->out.len - hx->out_off, MSG_NOSIGNAL);
		if (n > 0) {
			hx->wrote = true;
			hx->out_off += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			conn_watch(hx->conn, EV_WRITE);
			return;
		} else {
			hx_lost(x, n < 0 ? errno : 0);
			return;
		}
	}
	hx->phase = HX_RECV;
	conn_watch(hx->conn, EV_READ);
}

/* Answer bytes into x->in. A unary answer must fit whole; a stream's owner is handed what
 * it holds whenever the bound is reached, so only each single message has to fit. */
static bool hx_absorb(struct etcd_xfer *x, const char *p, size_t n)
{
	if (!x->ops->data) {
		if (buf_append(&x->in, p, n) != 0)
			return false;
		x->has_data = true;
		return true;
	}
	while (n > 0 && !x->dead) {
		size_t room = x->in.max - x->in.len;
		if (room == 0) {
			if (!x->has_data) /* the owner took nothing: one message passes the bound */
				return false;
			x->has_data = false;
			x->ops->data(x);
			continue;
		}
		size_t k = room < n ? room : n;
		buf_append(&x->in, p, k);
		x->has_data = true;
		p += k;
		n -= k;
	}
	return true;
}

static void hx_too_large(struct etcd_xfer *x)
{
	x->too_large = true;
	hx_fail(x, ETCD_RESOURCE_EXHAUSTED, "answer larger than %zu bytes", x->c->max_response_bytes);
}

/* One parser event; false when the exchange ended or x was closed. */
static bool hx_event(struct etcd_xfer *x, enum http1_ev ev, const struct http1_span *body)
{
	struct etcd_hx *hx = x->hx;
	switch (ev) {
	case HTTP1_HEAD:
		hx->status = hx->resp.status;
		hx->keep_alive = hx->resp.m.keep_alive;
		if (hx->resp.m.content_length > 0 && (uint64_t)hx->resp.m.content_length > x->c->max_response_bytes) {
			hx_too_large(x);
			return false;
		}
		return true;
	case HTTP1_BODY:
		if (!hx_absorb(x, body->p, body->len)) {
			hx_too_large(x);
			return false;
		}
		return !x->dead;
	case HTTP1_DONE:
		hx_succeed(x);
		return false;
	case HTTP1_ERROR:
		hx_fail(x, ETCD_UNAVAILABLE, "not an HTTP answer: %s", hx->resp.m.error);
		return false;
	default:
		return true;
	}
}

/* Feeds hx->raw to the parser; false when the exchange ended or x was closed. */
static bool hx_parse(struct etcd_xfer *x)
{
	struct etcd_hx *hx = x->hx;
	size_t off = 0;
	for (;;) {
		struct http1_span body = { NULL, 0 };
		size_t used = 0;
		enum http1_ev ev = http1_resp_feed(&hx->resp, hx->raw.data + off, hx->raw.len - off, &used, &body);
		off += used;
		if (ev == HTTP1_AGAIN)
			break;
		if (ev == HTTP1_DONE) /* what follows the answer decides whether the connection is reusable */
			buf_consume(&hx->raw, off);
		if (!hx_event(x, ev, &body))
			return false;
	}
	buf_consume(&hx->raw, off);
	return true;
}

static void hx_eof(struct etcd_xfer *x)
{
	struct etcd_hx *hx = x->hx;
	enum http1_ev ev = http1_resp_eof(&hx->resp);
	if (ev == HTTP1_DONE) /* an answer without length runs to the end of the connection */
		hx_succeed(x);
	else
		hx_lost(x, 0);
}

/* A TLS alert, an SSH banner, a gRPC frame: say so at once rather than wait for a blank line
 * that never comes. */
static bool hx_looks_like_http(struct etcd_xfer *x)
{
	static const char want[] = "HTTP/1.";
	struct etcd_hx *hx = x->hx;
	size_t n = hx->raw.len < sizeof(want) - 1 ? hx->raw.len : sizeof(want) - 1;
	if (http1_resp_started(&hx->resp) || memcmp(hx->raw.data, want, n) == 0)
		return true;
	char shown[80];
	size_t o = 0;
	for (size_t i = 0; i < hx->raw.len && i < 16 && o + 5 < sizeof(shown); i++) {
		unsigned char ch = (unsigned char)hx->raw.data[i];
		if (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\')
			shown[o++] = (char)ch;
		else
			o += (size_t)snprintf(shown + o, sizeof(shown) - o, "\\x%02x", ch);
	}
	shown[o] = '\0';
	hx_fail(x, ETCD_UNAVAILABLE, "not an HTTP answer: it starts with \"%s\"", shown);
	return false;
}

static void hx_read(struct etcd_xfer *x)
{
	struct etcd_hx *hx = x->hx;
	char chunk[READ_CHUNK];
	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = recv(hx->conn->fd, chunk, sizeof(chunk), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			hx_lost(x, errno);
			return;
		}
		if (n == 0) {
			hx_eof(x);
			return;
		}
		hx->got_bytes = true;
		if (buf_append(&hx->raw, chunk, (size_t)n) != 0) {
			hx_fail(x, ETCD_UNAVAILABLE, "not an HTTP answer: head or trailers too large");
			return;
		}
		if (!hx_looks_like_http(x) || !hx_parse(x))
			return;
	}
}

static void on_conn_io(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct etcd_conn *k = ETCD_CONTAINER(w, struct etcd_conn, io);
	struct etcd_xfer *x = k->x;
	if (!x) {
		idle_event(k);
		return;
	}
	/* k may be gone once the exchange moved on: only x is used from here */
	struct etcd_client *c = x->c;
	etcd_enter(c);
	switch (x->hx->phase) {
	case HX_CONNECT:
		hx_connected(x);
		break;
	case HX_SEND:
		hx_write(x);
		break;
	case HX_RECV:
		hx_read(x);
		break;
	default:
		break;
	}
	etcd_xfer_deliver(x);
	etcd_leave(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct etcd_hx *hx = ETCD_CONTAINER(t, struct etcd_hx, timer);
	struct etcd_xfer *x = hx->x;
	struct etcd_client *c = x->c;
	etcd_enter(c);
	if (!x->finished && hx->lookup)
		hx_fail(x, ETCD_DEADLINE_EXCEEDED, "cannot resolve %s within %lldms", x->c->eps[x->ep].host,
			(long long)(hx->dial_bound_us / USEC_PER_MS));
	else if (!x->finished && hx->phase == HX_CONNECT)
		hx_fail(x, ETCD_DEADLINE_EXCEEDED, "connect timed out after %lldms", (long long)(hx->dial_bound_us / USEC_PER_MS));
	else if (!x->finished)
		hx_fail(x, ETCD_DEADLINE_EXCEEDED, "no answer within %lldms", (long long)(x->timeout_us / USEC_PER_MS));
	etcd_xfer_deliver(x);
	etcd_leave(c);
}

/* ---------------------------------------------------------------- transfers */

static void build_request(struct etcd_xfer *x, const char *path, const char *body, const char *token)
{
	const struct etcd_ep *ep = &x->c->eps[x->ep];
	struct buf *b = &x->hx->out;
	size_t n = strlen(body);
	buf_printf(b, "POST %s%s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n",
		   ep->base, path, ep->host_header, n);
	if (token) /* etcd wants the raw token, not "Bearer <token>" */
		buf_printf(b, "Authorization: %s\r\n", token);
	buf_puts(b, "\r\n");
	buf_append(b, body, n);
}

void etcd_http_start(struct etcd_xfer *x, const char *path, const char *body, const char *token)
{
	struct etcd_hx *hx = xcalloc(1, sizeof(*hx));
	x->hx = hx;
	hx->x = x;
	hx->start_us = time_mono_us();
	ev_init(&hx->timer, on_timer);
	ev_init(&hx->lookup_poll, on_lookup_poll);
	buf_init(&hx->out, SIZE_MAX / 2); /* our own bytes: the request body is already bounded */
	buf_init(&hx->raw, RAW_MAX);
	hx_reset(hx);
	build_request(x, path, body, token);
	if (token && strpbrk(token, "\r\n")) {
		hx_fail(x, ETCD_UNAUTHENTICATED, "the auth token holds a line break");
	} else {
		hx->conn = pool_take(x->c, x->ep);
		if (hx->conn) {
			hx->conn->x = x;
			hx->phase = HX_SEND;
			hx_arm_timer(x);
			hx_write(x);
		} else {
			hx_connect(x);
		}
	}
	/* a failure at once is reported from the loop, never from inside the call */
	if (x->finished) {
		ev_timer_set(&hx->timer, 0.0, 0.0);
		ev_timer_start(x->c->loop, &hx->timer);
	}
}

void etcd_http_stop(struct etcd_xfer *x)
{
	if (x->hx->phase != HX_OVER)
		hx_stop(x, false);
	ev_timer_stop(x->c->loop, &x->hx->timer);
}

void etcd_http_free(struct etcd_xfer *x)
{
	buf_release(&x->hx->out);
	buf_release(&x->hx->raw);
	free(x->hx);
	x->hx = NULL;
}

long etcd_http_status(const struct etcd_xfer *x)
{
	return x->hx->status;
}

bool etcd_http_sent(const struct etcd_xfer *x)
{
	return x->hx->maybe_seen || x->hx->wrote;
}
