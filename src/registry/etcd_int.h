/* Private to the etcd client's files (etcd_*.c): the client object, HTTP transfers on curl's
 * multi-socket interface, deferred frees, authentication waits and the unary call engine.
 *
 * Re-entrancy rule: user callbacks never run inside a curl callback. Curl's write callback
 * only buffers bytes; the client dispatches them after curl_multi_socket_action() returns,
 * with c->depth > 0. While depth > 0, transfers and streams that get closed are only
 * unlinked from curl and marked; their memory is freed when depth returns to 0. */
#ifndef VX_REGISTRY_ETCD_INT_H
#define VX_REGISTRY_ETCD_INT_H

#include <curl/curl.h>
#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/buf.h"
#include "registry/etcd.h"
#include "registry/etcd_codec.h"

#define ETCD_WHY_MAX 256

struct etcd_xfer;

struct etcd_xfer_ops {
	/* New bytes in x->in (streams only). */
	void (*data)(struct etcd_xfer *x);
	/* The transfer ended (rc from curl); the owner closes x. */
	void (*done)(struct etcd_xfer *x, CURLcode rc);
};

/* One HTTP request/response on one endpoint. The request body always goes out whole: etcd's
 * gateway (Go 1.19 net/http) drains a request body before it answers, so a chunked upload
 * that stays open would hold back every reply (see ../../docs/etcd-client.md). */
struct etcd_xfer {
	struct etcd_client *c;
	CURL *easy;
	struct curl_slist *headers;
	const struct etcd_xfer_ops *ops;
	void *owner;
	size_t ep;
	bool too_large;  /* the answer passed max_response_bytes */
	bool has_data;   /* bytes arrived since the last dispatch */
	bool finished;   /* curl reported the end; result holds its code */
	bool dead;       /* closed; freed when depth returns to 0 */
	CURLcode result;
	int64_t timeout_us; /* 0: none (a watch) */
	struct buf in;
	char errbuf[CURL_ERROR_SIZE];
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

struct etcd_sockw;
struct etcd_call;

struct etcd_client {
	struct ev_loop *loop;
	bool own_loop;
	CURLM *multi;
	ev_timer curl_timer;
	struct etcd_sockw *socks;
	char **endpoints;
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
	uint64_t rng;
};

#define ETCD_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* Transfers. body is copied. timeout_us 0: no deadline for the whole exchange (a watch);
 * ops->data (may be NULL) sees the answer as it arrives. auth: send the token, if any. */
struct etcd_xfer *etcd_xfer_start(struct etcd_client *c, size_t ep, const char *path, const char *body,
				  int64_t timeout_us, bool auth, const struct etcd_xfer_ops *ops, void *owner);
void etcd_xfer_close(struct etcd_xfer *x);
long etcd_xfer_status(struct etcd_xfer *x);
/* True when any part of the request went out (so a write may have been applied). */
bool etcd_xfer_sent(struct etcd_xfer *x);
/* Why a transfer failed, in a few words ("connection refused"), and the matching code. */
enum etcd_code etcd_xfer_why(struct etcd_xfer *x, CURLcode rc, char *out, size_t cap);

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
