/* The watch stream: one long-lived POST /v3/watch per watch, newline-delimited JSON answers.
 *
 * The client tracks the resume point itself (the last delivered event's revision + 1, or a
 * progress notification's revision + 1) and reconnects there after a connection loss, on the
 * next endpoint with jittered backoff, so the caller sees every change exactly once. What
 * cannot be resumed is reported as "resync needed": a compacted resume point, a cancelled
 * watch, a stalled stream, a revision going backwards, an undecodable message.
 *
 * Stalls: the create_request is the whole request body (etcd 3.4's gateway answers nothing
 * while a request body is still open), so a `progress_request` cannot be sent on the stream
 * later. Instead, after half the stall time without a message, the client probes the same
 * member with a range over the watched keys, modified after the delivered revision. A change
 * the watch still has not delivered half a stall time later means the stream is stalled; a
 * member that does not answer the probe is treated as a lost connection. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/timeutil.h"
#include "registry/etcd_int.h"

struct etcd_watch {
	struct etcd_obj obj;
	struct etcd_watch_cbs cbs;
	struct etcd_watch_req req; /* req.key points to key */
	char *key;
	int64_t next_rev;    /* where the next connection starts (0: from now) */
	int64_t delivered;   /* every change up to here was delivered */
	int64_t conn_header; /* highest header revision seen on this connection */
	struct etcd_xfer *x;
	size_t ep;
	bool created;        /* etcd confirmed the watch on this connection */
	bool inert;          /* resync was reported, or freed */
	bool down;           /* an outage was reported and has not ended */
	size_t scanned;      /* bytes at the start of the buffer known to hold no newline */
	int64_t conn_start_us;
	int64_t last_msg_us;
	struct etcd_call *probe;   /* the liveness probe in flight */
	struct etcd_call *store_check; /* is the store behind what was delivered? (in flight) */
	uint64_t cluster_id;       /* of the first member that answered; 0 until then */
	int64_t last_probe_us;
	int64_t pending_rev;       /* a change the probe saw and the watch has not delivered */
	int64_t pending_until_us;  /* ... by when it must have arrived */
	int64_t backoff_us;
	ev_timer tick;
	ev_timer retry;
	struct etcd_auth_wait aw;
};

const char *etcd_resync_reason_name(enum etcd_resync_reason r)
{
	switch (r) {
	case ETCD_RESYNC_COMPACTED: return "compacted";
	case ETCD_RESYNC_CANCELED: return "canceled";
	case ETCD_RESYNC_STALLED: return "stalled";
	case ETCD_RESYNC_BACKWARDS: return "revision went backwards";
	case ETCD_RESYNC_BROKEN: return "broken stream";
	}
	return "unknown";
}

static const char *w_ep(const struct etcd_watch *w)
{
	return w->obj.c->endpoints[w->ep];
}

static void w_close(struct etcd_watch *w)
{
	etcd_xfer_close(w->x);
	w->x = NULL;
	w->created = false;
	etcd_call_cancel(w->probe);
	w->probe = NULL;
	etcd_call_cancel(w->store_check);
	w->store_check = NULL;
	w->pending_rev = 0;
}

static void w_stop(struct etcd_watch *w)
{
	struct etcd_client *c = w->obj.c;
	w_close(w);
	ev_timer_stop(c->loop, &w->tick);
	ev_timer_stop(c->loop, &w->retry);
	etcd_auth_cancel(c, &w->aw);
}

static void w_resync(struct etcd_watch *w, enum etcd_resync_reason reason, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void w_resync(struct etcd_watch *w, enum etcd_resync_reason reason, const char *fmt, ...)
{
	char detail[VXERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	w_stop(w);
	w->inert = true;
	if (w->cbs.resync)
		w->cbs.resync(w->cbs.arg, reason, detail);
}

/* Connection trouble: report the outage once, reconnect on the next endpoint later. */
static void w_trouble(struct etcd_watch *w, const char *why)
{
	struct etcd_client *c = w->obj.c;
	char detail[VXERR_MAX];
	snprintf(detail, sizeof(detail), "%s (%s)", w_ep(w), why);
	w_close(w);
	w->ep = (w->ep + 1) % c->n_endpoints;
	etcd_timer_start(c, &w->retry, etcd_backoff(c, &w->backoff_us, c->backoff_max_us), 0);
	if (!w->down) {
		w->down = true;
		if (w->cbs.connection)
			w->cbs.connection(w->cbs.arg, false, detail);
	}
}

static void w_advance(struct etcd_watch *w, int64_t rev)
{
	w->delivered = rev;
	w->next_rev = rev + 1;
}

/* A member answering below the delivered revision is either a follower a few entries behind or
 * a store that lost history (restored from a snapshot, replaced by a new cluster): there, etcd
 * accepts a watch that starts in the future and stays silent until its revision passes the old
 * one. A linearizable read on the same member tells them apart: it waits until the member has
 * applied everything committed, so its revision is below the delivered one only in the second
 * case (issue 10 D1). */
static void w_on_store_check(void *arg, struct etcd_resp *r)
{
	struct etcd_watch *w = arg;
	w->store_check = NULL;
	if (r->code != ETCD_OK) {
		w_trouble(w, r->error ? r->error : "store check failed");
		return;
	}
	if (r->header.revision < w->delivered)
		w_resync(w, ETCD_RESYNC_BACKWARDS,
			 "%s is at revision %lld, below the %lld already delivered: the store was restored from a "
			 "snapshot or replaced",
			 w_ep(w), (long long)r->header.revision, (long long)w->delivered);
}

static void w_store_check(struct etcd_watch *w)
{
	struct etcd_client *c = w->obj.c;
	struct etcd_range_req req = { .key = w->req.key, .key_len = w->req.key_len, .prefix = w->req.prefix,
				      .keys_only = true, .count_only = true };
	w->store_check = etcd_call_submit(c, ETCD_CALL_RANGE, "watch store check", "/v3/kv/range",
					  etcd_enc_range(&req), true, (int)w->ep, w_on_store_check, w);
}

static void w_created(struct etcd_watch *w, const struct etcd_watch_msg *m)
{
	struct etcd_client *c = w->obj.c;
	w->created = true;
	w->backoff_us = 0;
	c->preferred = w->ep;
	if (w->next_rev == 0) /* a watch "from now" starts after the revision it was created at */
		w_advance(w, m->header.revision);
	else if (m->header.revision && m->header.revision < w->delivered)
		w_store_check(w);
	if (w->down) {
		char detail[VXERR_MAX];
		w->down = false;
		snprintf(detail, sizeof(detail), "%s (resumed after revision %lld)", w_ep(w), (long long)w->delivered);
		if (w->cbs.connection)
			w->cbs.connection(w->cbs.arg, true, detail);
	}
}

static void w_events(struct etcd_watch *w, const struct etcd_watch_msg *m)
{
	int64_t last = w->delivered;
	for (size_t i = 0; i < m->n_events; i++) {
		/* the events of one txn share a revision; a new batch must be past the last one */
		int64_t rev = m->events[i].kv.mod_revision;
		if (i == 0 ? rev <= last : rev < last) {
			w_resync(w, ETCD_RESYNC_BACKWARDS, "%s sent an event at revision %lld after revision %lld",
				 w_ep(w), (long long)rev, (long long)last);
			return;
		}
		last = rev;
	}
	w_advance(w, last);
	struct etcd_watch_batch b = { m->header.revision, w->delivered, m->events, m->n_events };
	w->cbs.events(w->cbs.arg, &b);
}

/* A message without events: a progress notification. etcd only sends one when the watch has
 * caught up, so everything up to its revision has been delivered. */
static void w_progress(struct etcd_watch *w, const struct etcd_watch_msg *m)
{
	if (m->header.revision <= w->delivered)
		return;
	w_advance(w, m->header.revision);
	struct etcd_watch_batch b = { m->header.revision, w->delivered, NULL, 0 };
	w->cbs.events(w->cbs.arg, &b);
}

static void w_canceled(struct etcd_watch *w, const struct etcd_watch_msg *m)
{
	const char *reason = m->cancel_reason && *m->cancel_reason ? m->cancel_reason : "no reason given";
	if (m->compact_revision > 0) {
		w_resync(w, ETCD_RESYNC_COMPACTED, "%s: revision %lld is compacted (oldest kept: %lld)", w_ep(w),
			 (long long)w->next_rev, (long long)m->compact_revision);
	} else if (strstr(reason, "invalid auth token")) {
		etcd_auth_invalidate(w->obj.c);
		w_trouble(w, reason);
	} else {
		w_resync(w, ETCD_RESYNC_CANCELED, "%s cancelled the watch: %s", w_ep(w), reason);
	}
}

static void w_stream_error(struct etcd_watch *w, const struct etcd_watch_msg *m)
{
	switch (m->error_code) {
	case ETCD_UNAUTHENTICATED:
		etcd_auth_invalidate(w->obj.c);
		w_trouble(w, m->error_msg);
		break;
	case ETCD_INVALID_ARGUMENT:
	case ETCD_NOT_FOUND:
	case ETCD_PERMISSION_DENIED:
	case ETCD_FAILED_PRECONDITION:
	case ETCD_OUT_OF_RANGE:
		w_resync(w, ETCD_RESYNC_CANCELED, "%s ended the watch: %s (%s)", w_ep(w), m->error_msg,
			 etcd_code_name(m->error_code));
		break;
	default:
		w_trouble(w, m->error_msg);
	}
}

/* A member never moves its revision backwards on one connection. */
static bool w_header_ok(struct etcd_watch *w, const struct etcd_watch_msg *m)
{
	if (m->header.revision == 0)
		return true; /* absent, as in a cancel after compaction */
	if (w->cluster_id && m->header.cluster_id && m->header.cluster_id != w->cluster_id) {
		w_resync(w, ETCD_RESYNC_BACKWARDS, "%s belongs to another cluster (id %016llx, the watch began on %016llx)",
			 w_ep(w), (unsigned long long)m->header.cluster_id, (unsigned long long)w->cluster_id);
		return false;
	}
	if (!w->cluster_id)
		w->cluster_id = m->header.cluster_id;
	if (m->header.revision < w->conn_header) {
		w_resync(w, ETCD_RESYNC_BACKWARDS, "%s went from revision %lld back to %lld", w_ep(w),
			 (long long)w->conn_header, (long long)m->header.revision);
		return false;
	}
	w->conn_header = m->header.revision;
	return true;
}

static void w_message(struct etcd_watch *w, const char *line, size_t len)
{
	struct etcd_watch_msg m;
	struct vxerr e;
	if (etcd_dec_watch_msg(line, len, &m, &e) != 0) {
		w_resync(w, ETCD_RESYNC_BROKEN, "%s: %s", w_ep(w), e.msg);
		return;
	}
	if (m.is_error)
		w_stream_error(w, &m);
	else if (m.canceled)
		w_canceled(w, &m);
	else if (m.fragment)
		w_resync(w, ETCD_RESYNC_BROKEN, "%s sent a fragmented watch response", w_ep(w));
	else if (!w_header_ok(w, &m))
		; /* reported */
	else if (m.created)
		w_created(w, &m);
	else if (!w->created)
		w_resync(w, ETCD_RESYNC_BROKEN, "%s sent watch data before confirming the watch", w_ep(w));
	else if (m.n_events)
		w_events(w, &m);
	else
		w_progress(w, &m);
	etcd_watch_msg_release(&m);
}

static void w_lines(struct etcd_watch *w, struct etcd_xfer *x, bool eof)
{
	const char *line;
	size_t len, used;
	while (!w->inert && w->x == x) {
		int got = etcd_next_line(&x->in, eof, &line, &len, &used);
		if (!got) {
			buf_consume(&x->in, used);
			return;
		}
		w_message(w, line, len);
		if (w->x == x)
			buf_consume(&x->in, used);
	}
}

static void w_data(struct etcd_xfer *x)
{
	struct etcd_watch *w = x->owner;
	w->last_msg_us = time_mono_us(); /* any byte shows the stream is alive */
	if (etcd_xfer_status(x) != 200)
		return;
	/* a large message arrives in many pieces: look for its end only in the new bytes */
	if (!memchr(x->in.data + w->scanned, '\n', x->in.len - w->scanned)) {
		w->scanned = x->in.len;
		return;
	}
	w_lines(w, x, false);
	w->scanned = 0;
}

static void w_http_error(struct etcd_watch *w, struct etcd_xfer *x, long st)
{
	char msg[VXERR_MAX - 128];
	int code;
	etcd_dec_error(x->in.data, x->in.len, st, &code, msg, sizeof(msg));
	if (code == ETCD_UNAUTHENTICATED)
		etcd_auth_invalidate(w->obj.c);
	if (code == ETCD_UNAUTHENTICATED || code == ETCD_UNAVAILABLE || st >= 500)
		w_trouble(w, msg);
	else
		w_resync(w, ETCD_RESYNC_CANCELED, "%s refused the watch: %s (%s)", w_ep(w), msg, etcd_code_name(code));
}

static void w_done(struct etcd_xfer *x, bool ok)
{
	struct etcd_watch *w = x->owner;
	struct etcd_client *c = w->obj.c;
	long st = etcd_xfer_status(x);
	char why[ETCD_WHY_MAX];
	if (ok && st != 200) {
		w_http_error(w, x, st);
		return;
	}
	if (x->too_large) {
		w_resync(w, ETCD_RESYNC_BROKEN, "%s: watch message larger than %zu bytes", w_ep(w),
			 c->max_response_bytes);
		return;
	}
	if (ok) /* the last message before a shutdown has no newline */
		w_lines(w, x, true);
	if (w->inert || w->x != x)
		return;
	etcd_xfer_why(x, why, sizeof(why));
	w_trouble(w, why);
}

static const struct etcd_xfer_ops watch_ops = { w_data, w_done };

static void w_connect_now(struct etcd_watch *w)
{
	struct etcd_client *c = w->obj.c;
	char *body = etcd_enc_watch_create(&w->req, w->next_rev, c->progress_notify);
	w->x = etcd_xfer_start(c, w->ep, "/v3/watch", body, 0, true, &watch_ops, w);
	free(body);
	w->created = false;
	w->conn_header = 0;
	w->scanned = 0;
	w->conn_start_us = w->last_msg_us = w->last_probe_us = time_mono_us();
}

static void w_auth_ready(struct etcd_auth_wait *aw, const struct etcd_resp *failure)
{
	struct etcd_watch *w = ETCD_CONTAINER(aw, struct etcd_watch, aw);
	if (!failure)
		w_connect_now(w);
	else if (failure->code == ETCD_UNAVAILABLE || failure->code == ETCD_DEADLINE_EXCEEDED)
		w_trouble(w, failure->error ? failure->error : "authentication failed");
	else
		w_resync(w, ETCD_RESYNC_CANCELED, "%s", failure->error ? failure->error : "authentication failed");
}

static void w_connect(struct etcd_watch *w)
{
	if (etcd_auth_ready(w->obj.c, &w->aw))
		w_connect_now(w);
}

static void w_on_retry(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct etcd_watch *w = ETCD_CONTAINER(t, struct etcd_watch, retry);
	struct etcd_client *c = w->obj.c;
	etcd_enter(c);
	w_connect(w);
	etcd_leave(c);
}

static void w_on_probe(void *arg, struct etcd_resp *r)
{
	struct etcd_watch *w = arg;
	w->probe = NULL;
	if (r->code == ETCD_UNAVAILABLE || r->code == ETCD_DEADLINE_EXCEEDED) {
		w_trouble(w, r->error ? r->error : "liveness probe failed");
		return;
	}
	/* other failures (a role that may watch but not read) leave only etcd's progress notes */
	if (r->code == ETCD_OK && r->n_kvs > 0 && r->kvs[0].mod_revision > w->delivered) {
		struct etcd_client *c = w->obj.c;
		w->pending_rev = r->kvs[0].mod_revision;
		w->pending_until_us = time_mono_us() + c->watch_stall_us / 2;
	}
}

/* Asks the watch's own member whether a watched key changed after the delivered revision. */
static void w_probe(struct etcd_watch *w)
{
	struct etcd_client *c = w->obj.c;
	struct etcd_range_req req = { .key = w->req.key, .key_len = w->req.key_len, .prefix = w->req.prefix,
				      .keys_only = true, .limit = 1, .min_mod_revision = w->delivered + 1 };
	w->last_probe_us = time_mono_us();
	w->probe = etcd_call_submit(c, ETCD_CALL_RANGE, "watch liveness probe", "/v3/kv/range", etcd_enc_range(&req),
				    true, (int)w->ep, w_on_probe, w);
}

/* Unconfirmed too long: try elsewhere. Silent for half the stall time: probe. A change the
 * probe saw still undelivered half a stall time later: stalled. */
static void w_check(struct etcd_watch *w)
{
	struct etcd_client *c = w->obj.c;
	int64_t now = time_mono_us();
	if (!w->x || w->probe)
		return;
	if (!w->created) {
		if (now - w->conn_start_us > c->request_timeout_us) {
			char why[64];
			snprintf(why, sizeof(why), "watch not confirmed within %lldms",
				 (long long)(c->request_timeout_us / USEC_PER_MS));
			w_trouble(w, why);
		}
		return;
	}
	if (w->pending_rev && w->delivered >= w->pending_rev)
		w->pending_rev = 0;
	if (w->pending_rev && now >= w->pending_until_us) {
		w_resync(w, ETCD_RESYNC_STALLED, "%s: the watch delivered nothing past revision %lld while revision %lld changed a watched key (silent for %lldms)",
			 w_ep(w), (long long)w->delivered, (long long)w->pending_rev,
			 (long long)((now - w->last_msg_us) / USEC_PER_MS));
		return;
	}
	int64_t half = c->watch_stall_us / 2;
	if (!w->pending_rev && now - w->last_msg_us >= half && now - w->last_probe_us >= half)
		w_probe(w);
}

static void w_on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct etcd_watch *w = ETCD_CONTAINER(t, struct etcd_watch, tick);
	struct etcd_client *c = w->obj.c;
	etcd_enter(c);
	w_check(w);
	etcd_leave(c);
}

static void w_detach(struct etcd_obj *o)
{
	struct etcd_watch *w = ETCD_CONTAINER(o, struct etcd_watch, obj);
	w_stop(w);
	w->inert = true;
}

static void w_destroy(struct etcd_obj *o)
{
	struct etcd_watch *w = ETCD_CONTAINER(o, struct etcd_watch, obj);
	free(w->key);
	free(w);
}

struct etcd_watch *etcd_watch_start(struct etcd_client *c, const struct etcd_watch_req *req,
				    const struct etcd_watch_cbs *cbs, struct vxerr *err)
{
	if (!req->key || !cbs->events || !cbs->resync || req->start_revision < 0) {
		vxerr_set(err, "etcd watch: needs a key, an events and a resync callback");
		return NULL;
	}
	struct etcd_watch *w = xcalloc(1, sizeof(*w));
	w->obj.detach = w_detach;
	w->obj.destroy = w_destroy;
	etcd_obj_add(c, &w->obj);
	w->cbs = *cbs;
	w->req = *req;
	w->req.key_len = req->key_len ? req->key_len : strlen(req->key);
	w->key = xmalloc(w->req.key_len + 1);
	memcpy(w->key, req->key, w->req.key_len);
	w->key[w->req.key_len] = '\0';
	w->req.key = w->key;
	if (req->start_revision > 0)
		w_advance(w, req->start_revision - 1);
	w->ep = c->preferred;
	w->aw.ready = w_auth_ready;
	ev_init(&w->retry, w_on_retry);
	ev_init(&w->tick, w_on_tick);
	int64_t period = c->watch_stall_us / 4;
	if (period > USEC_PER_SEC)
		period = USEC_PER_SEC;
	etcd_timer_start(c, &w->tick, period, period);
	w_connect(w);
	return w;
}

int64_t etcd_watch_delivered(const struct etcd_watch *w)
{
	return w->delivered;
}

void etcd_watch_free(struct etcd_watch *w)
{
	if (w)
		etcd_obj_free(&w->obj);
}
