/* Private to the etcd client's files (etcd_*.c): the client object, HTTP transfers and their
 * two transports, deferred frees, authentication waits and the unary call engine.
 *
 * Transports: http:// endpoints use the built-in HTTP/1.1 transport (etcd_http.c) on the
 * client's libev loop; https:// endpoints use libcurl's multi-socket interface (etcd_curl.c),
 * with libcurl loaded by dlopen only when a client has an https endpoint, so processes that
 * talk plain HTTP never map libcurl and its dependencies.
 *
 * Re-entrancy rule: user callbacks never run inside a transport's own callbacks (curl's, or a
 * half-finished read). Transports buffer bytes into x->in, then hand them over through
 * etcd_xfer_deliver() with c->depth > 0. While depth > 0, transfers and streams that get closed
 * are only unlinked from their transport and marked; their memory is freed when depth returns
 * to 0. */
#ifndef VX_REGISTRY_ETCD_INT_H
#define VX_REGISTRY_ETCD_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "registry/etcd.h"
#include "registry/etcd_codec.h"

#define ETCD_WHY_MAX 256

struct etcd_xfer;
struct etcd_hx;
struct etcd_cx;
struct etcd_conn;
struct etcd_curl_multi;

struct etcd_xfer_ops {
	/* New bytes in x->in (streams only). */
	void (*data)(struct etcd_xfer *x);
	/* The transfer ended: ok when a whole answer arrived, else etcd_xfer_why tells why. The
	 * owner closes x. */
	void (*done)(struct etcd_xfer *x, bool ok);
};

/* One HTTP request/response on one endpoint. The request body always goes out whole: etcd's
 * gateway (Go 1.19 net/http) drains a request body before it answers, so a chunked upload
 * that stays open would hold back every reply (see ../../docs/etcd-client.md). */
struct etcd_xfer {
	struct etcd_client *c;
	const struct etcd_xfer_ops *ops;
	void *owner;
	size_t ep;
	bool too_large;  /* the answer passed max_response_bytes */
	bool has_data;   /* bytes arrived since the last dispatch */
	bool finished;   /* the transport reported the end; ok says how */
	bool ok;
	bool dead;       /* closed; freed when depth returns to 0 */
	int64_t timeout_us; /* 0: none (a watch) */
	enum etcd_code why_code; /* when !ok */
	char why[ETCD_WHY_MAX];  /* when !ok: "connection refused" */
	struct buf in;
	struct etcd_hx *hx; /* the built-in transport's state (http://), or NULL */
	struct etcd_cx *cx; /* libcurl's (https://), or NULL */
	struct etcd_xfer *next;
};

/* A user-owned stream object (watch, keepalive) the client must know about: to close it when
 * the client is freed first, and to free it late when it is freed inside a callback. */
struct etcd_obj {
	struct etcd_client *c; /* NULL once the client is gone */
	struct etcd_obj *next;
	void (*detach)(struct etcd_obj *o); /* close transfers and timers */
	void (*destroy)(struct etcd_obj *o); /* free the memory */
	bool zombie;
};

/* A wait for an auth token (see etcd_auth_ready). */
struct etcd_auth_wait {
	void (*ready)(struct etcd_auth_wait *w, const struct etcd_resp *failure);
	struct etcd_auth_wait *next;
	bool queued;
};

struct etcd_call;

/* One endpoint, parsed once: where to connect, and its pool of idle connections. */
struct etcd_ep {
	bool tls;          /* https: goes through libcurl */
	char *host;        /* name or IP literal, without brackets */
	char port[8];
	char *base;        /* path prefix from the URL ("" when none) */
	char *host_header; /* "host:port", IPv6 bracketed */
	struct etcd_conn *idle; /* most recently used first */
	size_t n_idle;
};

struct etcd_client {
	struct ev_loop *loop;
	bool own_loop;
	struct etcd_curl_multi *curl; /* NULL without https endpoints */
	char **endpoints;
	struct etcd_ep *eps;
	size_t n_endpoints;
	size_t preferred; /* the endpoint that answered last */
	int64_t dial_timeout_us;
	int64_t request_timeout_us;
	size_t max_response_bytes;
	int64_t watch_stall_us;
	bool progress_notify;
	int64_t backoff_min_us;
	int64_t backoff_max_us;
	char *tls_ca, *tls_cert, *tls_key;
	char *user, *password;
	char *token;
	bool authing;
	struct etcd_auth_wait *auth_waiters;
	struct etcd_call *calls;
	struct etcd_xfer *xfers;
	struct etcd_obj *objs;
	int depth;
	bool reap_xfers; /* a transfer was closed since the last reap */
	bool reap_objs;  /* a watch or keepalive was freed since the last reap */
	uint64_t rng;
};

#define ETCD_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Transfers. body is copied. timeout_us 0: no deadline for the whole exchange (a watch);
 * ops->data (may be NULL) sees the answer as it arrives. auth: send the token, if any.
 * Never calls ops from inside the call, even when it fails at once. */
struct etcd_xfer *etcd_xfer_start(struct etcd_client *c, size_t ep, const char *path, const char *body,
				  int64_t timeout_us, bool auth, const struct etcd_xfer_ops *ops, void *owner);
void etcd_xfer_close(struct etcd_xfer *x);
/* The answer's HTTP status, 0 before its status line arrived. */
long etcd_xfer_status(struct etcd_xfer *x);
/* True when any part of the request may have reached the server (so a write may have been
 * applied). */
bool etcd_xfer_sent(struct etcd_xfer *x);
/* Why a transfer failed, in a few words ("connection refused"), and the matching code; after a
 * complete answer on a stream: "the server ended the stream". */
enum etcd_code etcd_xfer_why(struct etcd_xfer *x, char *out, size_t cap);

/* For transports: record the end of x (why: printf-style, ignored when ok). */
void etcd_xfer_end(struct etcd_xfer *x, bool ok, enum etcd_code code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* For transports: hands new bytes, then the end, to x's owner (inside etcd_enter/leave). */
void etcd_xfer_deliver(struct etcd_xfer *x);
/* Appends answer bytes to x->in; false (and x->too_large) when they pass the bound. A stream
 * owner gets the bytes it has not consumed yet first, so only one message must fit. */
bool etcd_xfer_absorb(struct etcd_xfer *x, const char *p, size_t n);

/* ---- the built-in HTTP/1.1 transport (etcd_http.c) ---- */

/* Parses "http://host[:port][/base]" or "https://..."; fills ep (strings owned by it). */
int etcd_ep_parse(const char *url, struct etcd_ep *ep, struct vxerr *err);
void etcd_ep_release(struct etcd_ep *ep);
/* Starts x on its (http) endpoint; token NULL: no Authorization header. */
void etcd_http_start(struct etcd_xfer *x, const char *path, const char *body, const char *token);
/* Stops x's I/O and timers; a connection in the middle of an exchange is closed. */
void etcd_http_stop(struct etcd_xfer *x);
void etcd_http_free(struct etcd_xfer *x);
long etcd_http_status(const struct etcd_xfer *x);
bool etcd_http_sent(const struct etcd_xfer *x);
/* Closes the idle connections of every endpoint. */
void etcd_http_pool_clear(struct etcd_client *c);

/* ---- libcurl for https:// endpoints (etcd_curl.c), loaded by dlopen on first use ---- */

/* Loads libcurl and sets up c->curl; -1 with err naming the library when it cannot. */
int etcd_curl_init(struct etcd_client *c, struct vxerr *err);
void etcd_curl_cleanup(struct etcd_client *c);
void etcd_curl_start(struct etcd_xfer *x, const char *url, const char *body, const char *token);
void etcd_curl_stop(struct etcd_xfer *x);
void etcd_curl_free(struct etcd_xfer *x);
long etcd_curl_status(const struct etcd_xfer *x);
bool etcd_curl_sent(const struct etcd_xfer *x);

/* Callback entry and exit: frees what was closed inside once the outermost one leaves. */
void etcd_enter(struct etcd_client *c);
void etcd_leave(struct etcd_client *c);
void etcd_obj_add(struct etcd_client *c, struct etcd_obj *o);
/* Called by the user's *_free: detaches and destroys now, or at the outermost etcd_leave. */
void etcd_obj_free(struct etcd_obj *o);

/* True when a token is at hand or none is needed; otherwise w is queued, authentication
 * starts if it is not running, and w->ready runs when it ends (failure NULL on success). */
bool etcd_auth_ready(struct etcd_client *c, struct etcd_auth_wait *w);
void etcd_auth_cancel(struct etcd_client *c, struct etcd_auth_wait *w);
/* etcd said "invalid auth token": forget it, so the next call authenticates again. */
void etcd_auth_invalidate(struct etcd_client *c);

/* The next wait of an exponential backoff, jittered to [cur/2, cur]; doubles *cur_us up to cap. */
int64_t etcd_backoff(struct etcd_client *c, int64_t *cur_us, int64_t cap_us);
void etcd_timer_start(struct etcd_client *c, ev_timer *t, int64_t after_us, int64_t repeat_us);

/* The unary call engine: body is taken over; kind selects the decoder; op names the call in
 * messages ("put", "lease grant"). idempotent: may be retried after being sent. pin >= 0:
 * only that endpoint, no retry. cb runs later, exactly once, unless the call is cancelled. */
struct etcd_call *etcd_call_submit(struct etcd_client *c, enum etcd_call_kind kind, const char *op,
				   const char *path, char *body, bool idempotent, int pin, etcd_resp_cb cb, void *arg);
/* Drops a pending call without calling its callback. NULL is a no-op. */
void etcd_call_cancel(struct etcd_call *call);

/* Synchronous waits on the client's loop. */
struct etcd_sync {
	bool done;
	struct etcd_resp resp;
};
void etcd_sync_cb(void *arg, struct etcd_resp *resp);
/* started: the async call's return value. Runs the loop until done; moves the answer to out. */
int etcd_sync_run(struct etcd_client *c, struct etcd_sync *s, int started, struct etcd_resp *out, struct vxerr *err);

#endif
