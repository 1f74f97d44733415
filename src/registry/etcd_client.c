/* The etcd client core: transfers (handed to the built-in HTTP/1.1 transport or to libcurl
 * for https), endpoint failover, authentication, and the unary call engine with its sync
 * wrappers. */
#include "registry/etcd_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/timeutil.h"

#define DEFAULT_DIAL_US (2 * USEC_PER_SEC)
#define DEFAULT_REQUEST_US (5 * USEC_PER_SEC)
#define DEFAULT_MAX_RESPONSE ((size_t)32 << 20)
#define DEFAULT_STALL_US (30 * USEC_PER_SEC)
#define DEFAULT_BACKOFF_MIN_US (50 * USEC_PER_MS)
#define DEFAULT_BACKOFF_MAX_US (2 * USEC_PER_SEC)
/* A unary call goes around the endpoints at most twice: a second round rides out a leader
 * election or a member restart without making a one-shot command wait for long. */
#define CALL_ROUNDS 2
#define CALL_PAUSE_US (150 * USEC_PER_MS)

struct etcd_call {
	struct etcd_client *c;
	enum etcd_call_kind kind;
	const char *op;
	const char *path;
	char *body;
	bool idempotent;
	bool auth_retried;
	int pin;
	size_t first_ep;
	unsigned attempt;
	unsigned max_attempts;
	char **why; /* per endpoint: the last failure, or NULL */
	enum etcd_code last_code;
	long last_http;
	struct etcd_xfer *x;
	ev_timer pause;
	struct etcd_auth_wait aw;
	etcd_resp_cb cb;
	void *arg;
	struct etcd_call *next;
};

const char *etcd_code_name(int code)
{
	static const char *const names[] = {
		"OK", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound",
		"AlreadyExists", "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted",
		"OutOfRange", "Unimplemented", "Internal", "Unavailable", "DataLoss", "Unauthenticated",
	};
	if (code >= 0 && code <= 16)
		return names[code];
	return "UnknownCode";
}

/* ---------------------------------------------------------------- responses */

void etcd_resp_release(struct etcd_resp *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_kvs; i++)
		etcd_kv_release(&r->kvs[i]);
	free(r->kvs);
	for (size_t i = 0; i < r->n_ops; i++)
		etcd_resp_release(&r->ops[i]);
	free(r->ops);
	free(r->error);
	free(r->version);
	memset(r, 0, sizeof(*r));
}

void etcd_resp_move(struct etcd_resp *dst, struct etcd_resp *src)
{
	*dst = *src;
	memset(src, 0, sizeof(*src));
}

/* ---------------------------------------------------------------- deferred frees */

static void xfer_destroy(struct etcd_xfer *x)
{
	if (x->hx)
		etcd_http_free(x);
	if (x->cx)
		etcd_curl_free(x);
	buf_release(&x->in);
	free(x);
}

static void reap_xfers(struct etcd_client *c)
{
	for (struct etcd_xfer **p = &c->xfers; *p;) {
		struct etcd_xfer *x = *p;
		if (x->dead) {
			*p = x->next;
			xfer_destroy(x);
		} else {
			p = &x->next;
		}
	}
}

static void reap_objs(struct etcd_client *c)
{
	for (struct etcd_obj **p = &c->objs; *p;) {
		struct etcd_obj *o = *p;
		if (o->zombie) {
			*p = o->next;
			o->destroy(o);
		} else {
			p = &o->next;
		}
	}
}

/* Walks a list only when something in it was closed or freed: every callback ends here, and a
 * client holding many keepalives would otherwise walk all of them on every tick of each (and
 * after every answer). */
static void reap(struct etcd_client *c)
{
	if (c->reap_xfers) {
		c->reap_xfers = false;
		reap_xfers(c);
	}
	if (c->reap_objs) {
		c->reap_objs = false;
		reap_objs(c);
	}
}

void etcd_enter(struct etcd_client *c)
{
	c->depth++;
}

void etcd_leave(struct etcd_client *c)
{
	if (--c->depth == 0)
		reap(c);
}

void etcd_obj_add(struct etcd_client *c, struct etcd_obj *o)
{
	o->c = c;
	o->zombie = false;
	o->next = c->objs;
	c->objs = o;
}

void etcd_obj_free(struct etcd_obj *o)
{
	struct etcd_client *c = o->c;
	if (!c) { /* the client went first and already detached it */
		o->destroy(o);
		return;
	}
	o->detach(o);
	o->zombie = true;
	c->reap_objs = true;
	if (c->depth == 0)
		reap(c);
}

/* ---------------------------------------------------------------- transfers */

struct etcd_xfer *etcd_xfer_start(struct etcd_client *c, size_t ep, const char *path, const char *body,
				  int64_t timeout_us, bool auth, const struct etcd_xfer_ops *ops, void *owner)
{
	struct etcd_xfer *x = xcalloc(1, sizeof(*x));
	x->c = c;
	x->ops = ops;
	x->owner = owner;
	x->ep = ep;
	x->timeout_us = timeout_us;
	buf_init(&x->in, c->max_response_bytes);
	x->next = c->xfers;
	c->xfers = x;
	const char *token = auth ? c->token : NULL;
	if (c->eps[ep].tls) {
		char *url = xasprintf("%s%s", c->endpoints[ep], path);
		etcd_curl_start(x, url, body, token);
		free(url);
	} else {
		etcd_http_start(x, path, body, token);
	}
	return x;
}

void etcd_xfer_close(struct etcd_xfer *x)
{
	if (!x || x->dead)
		return;
	x->dead = true;
	x->c->reap_xfers = true;
	if (x->hx)
		etcd_http_stop(x);
	if (x->cx)
		etcd_curl_stop(x);
	if (x->c->depth == 0)
		reap(x->c);
}

long etcd_xfer_status(struct etcd_xfer *x)
{
	return x->cx ? etcd_curl_status(x) : etcd_http_status(x);
}

bool etcd_xfer_sent(struct etcd_xfer *x)
{
	return x->cx ? etcd_curl_sent(x) : etcd_http_sent(x);
}

enum etcd_code etcd_xfer_why(struct etcd_xfer *x, char *out, size_t cap)
{
	if (x->ok) {
		snprintf(out, cap, "the server ended the stream");
		return ETCD_UNAVAILABLE;
	}
	snprintf(out, cap, "%s", x->why);
	return x->why_code;
}

void etcd_xfer_end(struct etcd_xfer *x, bool ok, enum etcd_code code, const char *fmt, ...)
{
	x->finished = true;
	x->ok = ok;
	x->why_code = ok ? ETCD_OK : code;
	x->why[0] = '\0';
	if (!ok) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(x->why, sizeof(x->why), fmt, ap);
		va_end(ap);
	}
}

void etcd_xfer_deliver(struct etcd_xfer *x)
{
	if (!x->dead && x->has_data && x->ops->data) {
		x->has_data = false;
		x->ops->data(x);
	}
	if (!x->dead && x->finished) {
		x->finished = false;
		x->ops->done(x, x->ok);
	}
}

/* ---------------------------------------------------------------- timers and backoff */

void etcd_timer_start(struct etcd_client *c, ev_timer *t, int64_t after_us, int64_t repeat_us)
{
	ev_timer_stop(c->loop, t);
	ev_timer_set(t, (double)after_us / 1e6, (double)repeat_us / 1e6);
	ev_timer_start(c->loop, t);
}

static uint64_t rng_next(struct etcd_client *c)
{
	/* xorshift64*: jitter only needs to decorrelate clients, not to be secret */
	uint64_t x = c->rng;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	c->rng = x;
	return x * 0x2545F4914F6CDD1DULL;
}

int64_t etcd_backoff(struct etcd_client *c, int64_t *cur_us, int64_t cap_us)
{
	if (cap_us > c->backoff_max_us)
		cap_us = c->backoff_max_us;
	if (cap_us < 1000)
		cap_us = 1000;
	int64_t b = *cur_us < c->backoff_min_us ? c->backoff_min_us : *cur_us;
	if (b > cap_us)
		b = cap_us;
	int64_t half = b / 2;
	int64_t wait = half + (int64_t)(rng_next(c) % (uint64_t)(half + 1));
	*cur_us = b * 2 > cap_us ? cap_us : b * 2;
	return wait;
}

/* ---------------------------------------------------------------- client */

static int check_opts(const struct etcd_opts *o, struct vxerr *err)
{
	if (!o || o->n_endpoints == 0)
		return vxerr_set(err, "etcd: no endpoints given");
	for (size_t i = 0; i < o->n_endpoints; i++)
		if (!o->endpoints[i])
			return vxerr_set(err, "etcd: endpoint %zu is missing", i);
	if (!o->tls_cert != !o->tls_key)
		return vxerr_set(err, "etcd: a TLS client certificate needs both cert and key");
	if (!o->user != !o->password)
		return vxerr_set(err, "etcd: auth needs both a user and a password");
	if (o->dial_timeout_us < 0 || o->request_timeout_us < 0 || o->watch_stall_us < 0 || o->backoff_min_us < 0 ||
	    o->backoff_max_us < 0)
		return vxerr_set(err, "etcd: negative timeout");
	return 0;
}

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static int64_t or_default(int64_t v, int64_t def)
{
	return v > 0 ? v : def;
}

/* The endpoints, without trailing slashes, and parsed; -1 on the first bad one. */
static int copy_endpoints(struct etcd_client *c, const struct etcd_opts *o, struct vxerr *err)
{
	c->endpoints = xcalloc(o->n_endpoints, sizeof(char *));
	c->eps = xcalloc(o->n_endpoints, sizeof(struct etcd_ep));
	for (size_t i = 0; i < o->n_endpoints; i++) {
		c->endpoints[i] = xstrdup(o->endpoints[i]);
		c->n_endpoints = i + 1;
		size_t n = strlen(c->endpoints[i]);
		while (n > 0 && c->endpoints[i][n - 1] == '/')
			c->endpoints[i][--n] = '\0';
		if (etcd_ep_parse(c->endpoints[i], &c->eps[i], err) != 0)
			return -1;
	}
	return 0;
}

static bool any_tls(const struct etcd_client *c)
{
	for (size_t i = 0; i < c->n_endpoints; i++)
		if (c->eps[i].tls)
			return true;
	return false;
}

static void copy_opts(struct etcd_client *c, const struct etcd_opts *o)
{
	c->dial_timeout_us = or_default(o->dial_timeout_us, DEFAULT_DIAL_US);
	c->request_timeout_us = or_default(o->request_timeout_us, DEFAULT_REQUEST_US);
	c->max_response_bytes = o->max_response_bytes ? o->max_response_bytes : DEFAULT_MAX_RESPONSE;
	c->watch_stall_us = or_default(o->watch_stall_us, DEFAULT_STALL_US);
	c->progress_notify = o->progress_notify;
	c->backoff_min_us = or_default(o->backoff_min_us, DEFAULT_BACKOFF_MIN_US);
	c->backoff_max_us = or_default(o->backoff_max_us, DEFAULT_BACKOFF_MAX_US);
	if (c->backoff_max_us < c->backoff_min_us)
		c->backoff_max_us = c->backoff_min_us;
	c->tls_ca = dup_or_null(o->tls_ca);
	c->tls_cert = dup_or_null(o->tls_cert);
	c->tls_key = dup_or_null(o->tls_key);
	c->user = dup_or_null(o->user);
	c->password = dup_or_null(o->password);
}

struct etcd_client *etcd_client_new(struct ev_loop *loop, const struct etcd_opts *opts, struct vxerr *err)
{
	if (check_opts(opts, err) != 0)
		return NULL;
	struct etcd_client *c = xcalloc(1, sizeof(*c));
	c->own_loop = loop == NULL;
	c->loop = loop ? loop : ev_loop_new(EVFLAG_AUTO);
	if (!c->loop)
		abort();
	copy_opts(c, opts);
	c->rng = (uint64_t)time_mono_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
	if (c->rng == 0)
		c->rng = 0x9E3779B97F4A7C15ULL;
	/* libcurl is loaded only for https endpoints, and then at once: a missing library is a
	 * start-up error, not a failure of every later call */
	if (copy_endpoints(c, opts, err) != 0 || (any_tls(c) && etcd_curl_init(c, err) != 0)) {
		etcd_client_free(c);
		return NULL;
	}
	return c;
}

struct ev_loop *etcd_client_loop(struct etcd_client *c)
{
	return c->loop;
}

static void call_destroy(struct etcd_call *call);

static void wipe(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* Drops calls, detaches streams and closes transfers; user-owned stream objects not freed yet
 * outlive the client, detached. */
static void close_everything(struct etcd_client *c)
{
	c->depth++; /* nothing below may free what it walks */
	while (c->calls) {
		struct etcd_call *call = c->calls;
		c->calls = call->next;
		call_destroy(call);
	}
	for (struct etcd_obj *o = c->objs; o; o = o->next)
		if (!o->zombie)
			o->detach(o);
	for (struct etcd_xfer *x = c->xfers; x; x = x->next)
		etcd_xfer_close(x);
	c->depth = 0;
	c->reap_xfers = c->reap_objs = true;
	reap(c);
	for (struct etcd_obj *o = c->objs, *n; o; o = n) {
		n = o->next;
		o->next = NULL;
		o->c = NULL;
	}
	c->objs = NULL;
}

void etcd_client_free(struct etcd_client *c)
{
	if (!c)
		return;
	close_everything(c);
	etcd_http_pool_clear(c);
	etcd_curl_cleanup(c);
	if (c->own_loop)
		ev_loop_destroy(c->loop);
	for (size_t i = 0; i < c->n_endpoints; i++) {
		free(c->endpoints[i]);
		etcd_ep_release(&c->eps[i]);
	}
	free(c->endpoints);
	free(c->eps);
	free(c->tls_ca);
	free(c->tls_cert);
	free(c->tls_key);
	free(c->user);
	wipe(c->password);
	wipe(c->token);
	free(c);
}

/* ---------------------------------------------------------------- authentication */

static void on_auth_done(void *arg, struct etcd_resp *resp)
{
	struct etcd_client *c = arg;
	struct etcd_auth_wait *list = c->auth_waiters;
	c->auth_waiters = NULL;
	c->authing = false;
	while (list) {
		struct etcd_auth_wait *w = list;
		list = w->next;
		w->queued = false;
		w->next = NULL;
		w->ready(w, resp->code == ETCD_OK ? NULL : resp);
	}
}

static void auth_start(struct etcd_client *c)
{
	c->authing = true;
	char *body = etcd_enc_auth(c->user, c->password);
	etcd_call_submit(c, ETCD_CALL_AUTH, "authenticate", "/v3/auth/authenticate", body, true, -1, on_auth_done, c);
}

bool etcd_auth_ready(struct etcd_client *c, struct etcd_auth_wait *w)
{
	if (!c->user || c->token)
		return true;
	if (!w->queued) {
		w->queued = true;
		w->next = c->auth_waiters;
		c->auth_waiters = w;
	}
	if (!c->authing)
		auth_start(c);
	return false;
}

void etcd_auth_cancel(struct etcd_client *c, struct etcd_auth_wait *w)
{
	if (!w->queued)
		return;
	for (struct etcd_auth_wait **p = &c->auth_waiters; *p; p = &(*p)->next) {
		if (*p == w) {
			*p = w->next;
			break;
		}
	}
	w->queued = false;
}

void etcd_auth_invalidate(struct etcd_client *c)
{
	wipe(c->token);
	c->token = NULL;
}

/* ---------------------------------------------------------------- unary calls */

static void call_attempt(struct etcd_call *call);

static void call_unlink(struct etcd_call *call)
{
	for (struct etcd_call **p = &call->c->calls; *p; p = &(*p)->next) {
		if (*p == call) {
			*p = call->next;
			return;
		}
	}
}

static void call_destroy(struct etcd_call *call)
{
	struct etcd_client *c = call->c;
	ev_timer_stop(c->loop, &call->pause);
	etcd_auth_cancel(c, &call->aw);
	etcd_xfer_close(call->x);
	for (size_t i = 0; i < c->n_endpoints; i++)
		free(call->why[i]);
	free(call->why);
	free(call->body);
	free(call);
}

/* Delivers resp (moved from) and frees the call. */
static void call_finish(struct etcd_call *call, struct etcd_resp *resp)
{
	call_unlink(call);
	etcd_resp_cb cb = call->cb;
	void *arg = call->arg;
	call_destroy(call);
	cb(arg, resp);
	etcd_resp_release(resp);
}

static void call_fail(struct etcd_call *call, enum etcd_code code, long http, char *msg)
{
	struct etcd_resp r = { .code = code, .http_status = http, .error = msg };
	call_finish(call, &r);
}

/* "etcd unreachable: tried http://a (connection refused), http://b (...)" */
static char *unreachable_msg(struct etcd_call *call)
{
	struct etcd_client *c = call->c;
	struct buf b = BUF_INIT(VXERR_MAX - 1);
	buf_puts(&b, "etcd unreachable: tried ");
	bool first = true;
	for (size_t k = 0; k < c->n_endpoints; k++) {
		size_t i = (call->first_ep + k) % c->n_endpoints;
		if (!call->why[i])
			continue;
		if (buf_printf(&b, "%s%s (%s)", first ? "" : ", ", c->endpoints[i], call->why[i]) != 0)
			break;
		first = false;
	}
	return buf_detach(&b, NULL);
}

static void on_call_pause(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct etcd_call *call = ETCD_CONTAINER(t, struct etcd_call, pause);
	struct etcd_client *c = call->c;
	etcd_enter(c);
	call_attempt(call);
	etcd_leave(c);
}

/* A failure on endpoint ep: try the next endpoint (after a pause between rounds), or give up. */
static void call_retry(struct etcd_call *call, size_t ep, enum etcd_code code, long http, const char *why,
		       bool may_retry)
{
	struct etcd_client *c = call->c;
	free(call->why[ep]);
	call->why[ep] = xstrdup(why);
	call->last_code = code;
	call->last_http = http;
	if (may_retry && ++call->attempt < call->max_attempts) {
		if (call->attempt % c->n_endpoints == 0) {
			int64_t b = CALL_PAUSE_US;
			etcd_timer_start(c, &call->pause, etcd_backoff(c, &b, CALL_PAUSE_US), 0);
		} else {
			call_attempt(call);
		}
		return;
	}
	/* an answer over the bound came from a member that works: say what happened, not "unreachable" */
	if (code == ETCD_RESOURCE_EXHAUSTED)
		call_fail(call, code, http, xasprintf("etcd %s: %s: %s", c->endpoints[ep], call->op, why));
	else
		call_fail(call, code, http, unreachable_msg(call));
}

static void auth_wait_ready(struct etcd_auth_wait *w, const struct etcd_resp *failure)
{
	struct etcd_call *call = ETCD_CONTAINER(w, struct etcd_call, aw);
	if (failure) {
		call_fail(call, failure->code, failure->http_status, xstrdup(failure->error ? failure->error : "authentication failed"));
		return;
	}
	call_attempt(call);
}

/* A 200 answer: decode it (an authenticate answer feeds the client's token). */
static void call_success(struct etcd_call *call, struct etcd_xfer *x)
{
	struct etcd_client *c = call->c;
	struct etcd_resp r = { 0 };
	struct vxerr e;
	int rc;
	if (call->kind == ETCD_CALL_AUTH) {
		char *token = NULL;
		rc = etcd_dec_token(x->in.data, x->in.len, &token, &e);
		if (rc == 0) {
			wipe(c->token);
			c->token = token;
		}
	} else {
		rc = etcd_dec_resp(call->kind, x->in.data, x->in.len, &r, &e);
	}
	if (rc != 0) {
		call_fail(call, ETCD_INTERNAL, 200,
			  xasprintf("etcd %s: %s: malformed answer: %s", c->endpoints[x->ep], call->op, e.msg));
		return;
	}
	c->preferred = x->ep;
	r.http_status = 200;
	call_finish(call, &r);
}

/* etcd refused before doing anything, so a write may go to another member. */
static bool not_applied(const char *msg)
{
	return strstr(msg, "no leader") || strstr(msg, "not capable") || strstr(msg, "too many requests") ||
	       strstr(msg, "transport is closing");
}

static void call_server_error(struct etcd_call *call, struct etcd_xfer *x, long st)
{
	struct etcd_client *c = call->c;
	char msg[VXERR_MAX - 128];
	int code;
	etcd_dec_error(x->in.data, x->in.len, st, &code, msg, sizeof(msg));
	if (code == ETCD_UNAUTHENTICATED && c->user && !call->auth_retried) {
		/* tokens expire (and die with a restarted member): authenticate again, once */
		call->auth_retried = true;
		etcd_auth_invalidate(c);
		call_attempt(call);
		return;
	}
	if (code == ETCD_UNAVAILABLE && call->pin < 0) {
		char why[VXERR_MAX - 64];
		snprintf(why, sizeof(why), "%s: %s", call->op, msg);
		call_retry(call, x->ep, ETCD_UNAVAILABLE, st, why, call->idempotent || not_applied(msg));
		return;
	}
	call_fail(call, (enum etcd_code)code, st,
		  xasprintf("etcd %s: %s: %s (%s)", c->endpoints[x->ep], call->op, msg, etcd_code_name(code)));
}

/* A 200 whose body carries an error `code` (the gateway's error shape) is a failure too. */
static bool body_has_error(const struct buf *in)
{
	return in->len > 0 && memmem(in->data, in->len, "\"code\"", 6) && memmem(in->data, in->len, "\"error\"", 7) &&
	       !memmem(in->data, in->len, "\"header\"", 8);
}

static void call_xfer_done(struct etcd_xfer *x, bool ok)
{
	struct etcd_call *call = x->owner;
	long st = etcd_xfer_status(x);
	call->x = NULL;
	if (!ok) {
		char why[ETCD_WHY_MAX];
		enum etcd_code code = etcd_xfer_why(x, why, sizeof(why));
		bool may = call->idempotent || !etcd_xfer_sent(x);
		if (!may && code == ETCD_DEADLINE_EXCEEDED)
			strncat(why, " (it may have been applied)", sizeof(why) - strlen(why) - 1);
		if (code == ETCD_RESOURCE_EXHAUSTED)
			may = false;
		call_retry(call, x->ep, code, st, why, may && call->pin < 0);
	} else if (st != 200 || body_has_error(&x->in)) {
		call_server_error(call, x, st);
	} else {
		call_success(call, x);
	}
	etcd_xfer_close(x);
}

static const struct etcd_xfer_ops call_ops = { NULL, call_xfer_done };

static void call_attempt(struct etcd_call *call)
{
	struct etcd_client *c = call->c;
	if (call->kind != ETCD_CALL_AUTH && !etcd_auth_ready(c, &call->aw))
		return;
	size_t ep = call->pin >= 0 ? (size_t)call->pin : (call->first_ep + call->attempt) % c->n_endpoints;
	call->x = etcd_xfer_start(c, ep, call->path, call->body, c->request_timeout_us, call->kind != ETCD_CALL_AUTH,
				  &call_ops, call);
}

struct etcd_call *etcd_call_submit(struct etcd_client *c, enum etcd_call_kind kind, const char *op,
				   const char *path, char *body, bool idempotent, int pin, etcd_resp_cb cb, void *arg)
{
	struct etcd_call *call = xcalloc(1, sizeof(*call));
	call->c = c;
	call->kind = kind;
	call->op = op;
	call->path = path;
	call->body = body;
	call->idempotent = idempotent;
	call->pin = pin;
	call->first_ep = c->preferred;
	call->max_attempts = pin >= 0 ? 1 : (unsigned)(CALL_ROUNDS * c->n_endpoints);
	call->why = xcalloc(c->n_endpoints, sizeof(char *));
	call->cb = cb;
	call->arg = arg;
	call->aw.ready = auth_wait_ready;
	ev_init(&call->pause, on_call_pause);
	call->next = c->calls;
	c->calls = call;
	call_attempt(call);
	return call;
}

void etcd_call_cancel(struct etcd_call *call)
{
	if (!call)
		return;
	call_unlink(call);
	call_destroy(call);
}

/* ---------------------------------------------------------------- synchronous wrappers */

void etcd_sync_cb(void *arg, struct etcd_resp *resp)
{
	struct etcd_sync *s = arg;
	etcd_resp_move(&s->resp, resp);
	s->done = true;
}

int etcd_sync_run(struct etcd_client *c, struct etcd_sync *s, int started, struct etcd_resp *out, struct vxerr *err)
{
	int rc = 0;
	if (started != 0) {
		if (out) {
			memset(out, 0, sizeof(*out));
			out->code = ETCD_INVALID_ARGUMENT;
		}
		return -1;
	}
	while (!s->done)
		ev_run(c->loop, EVRUN_ONCE);
	if (s->resp.code != ETCD_OK) {
		vxerr_set(err, "%s", s->resp.error ? s->resp.error : etcd_code_name(s->resp.code));
		rc = -1;
	}
	if (out)
		etcd_resp_move(out, &s->resp);
	else
		etcd_resp_release(&s->resp);
	return rc;
}

int etcd_endpoint_status(struct etcd_client *c, size_t endpoint, struct etcd_resp *out, struct vxerr *err)
{
	struct etcd_sync s = { 0 };
	int started = 0;
	if (endpoint >= c->n_endpoints)
		started = vxerr_set(err, "etcd: no endpoint %zu", endpoint);
	else
		etcd_call_submit(c, ETCD_CALL_STATUS, "status", "/v3/maintenance/status", xstrdup("{}"), true,
				 (int)endpoint, etcd_sync_cb, &s);
	return etcd_sync_run(c, &s, started, out, err);
}
