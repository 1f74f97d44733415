/* Lease calls (grant, revoke, time-to-live) and keepalives.
 *
 * A keepalive is a logical stream: one POST /v3/lease/keepalive {"ID":..} every TTL/3 on a
 * kept-alive connection, each answer parsed as it arrives. It is not one long-lived chunked
 * upload because etcd 3.4's gateway does not answer a message until the request body ends
 * (measured; see ../../docs/etcd-client.md). An answer without TTL, or NotFound, means the
 * lease is gone. When a request fails or is late, the next one goes to the next endpoint
 * with backoff; the lease is reported lost only once a whole TTL has passed since the last
 * renewal, because until then it may well be alive. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/timeutil.h"
#include "registry/etcd_int.h"

int etcd_lease_grant_async(struct etcd_client *c, int64_t ttl_s, int64_t id, etcd_resp_cb cb, void *arg,
			   struct vxerr *err)
{
	if (ttl_s <= 0 || id < 0)
		return vxerr_set(err, "etcd lease grant: TTL must be positive and the ID not negative");
	/* a grant with a chosen ID can be retried safely: a repeat answers "lease already exists" */
	etcd_call_submit(c, ETCD_CALL_GRANT, "lease grant", "/v3/lease/grant", etcd_enc_grant(ttl_s, id),
				id != 0, -1, cb, arg);
	return 0;
}

int etcd_lease_revoke_async(struct etcd_client *c, int64_t id, etcd_resp_cb cb, void *arg, struct vxerr *err)
{
	if (id == 0)
		return vxerr_set(err, "etcd lease revoke: no lease ID");
	etcd_call_submit(c, ETCD_CALL_REVOKE, "lease revoke", "/v3/lease/revoke", etcd_enc_lease_id(id), true,
				-1, cb, arg);
	return 0;
}

int etcd_lease_ttl_async(struct etcd_client *c, int64_t id, bool keys, etcd_resp_cb cb, void *arg,
			 struct vxerr *err)
{
	if (id == 0)
		return vxerr_set(err, "etcd lease time-to-live: no lease ID");
	etcd_call_submit(c, ETCD_CALL_TTL, "lease time-to-live", "/v3/lease/timetolive", etcd_enc_ttl(id, keys),
				true, -1, cb, arg);
	return 0;
}

int etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, int64_t id, struct etcd_resp *out, struct vxerr *err)
{
	struct etcd_sync s = { 0 };
	return etcd_sync_run(c, &s, etcd_lease_grant_async(c, ttl_s, id, etcd_sync_cb, &s, err), out, err);
}

int etcd_lease_revoke(struct etcd_client *c, int64_t id, struct etcd_resp *out, struct vxerr *err)
{
	struct etcd_sync s = { 0 };
	return etcd_sync_run(c, &s, etcd_lease_revoke_async(c, id, etcd_sync_cb, &s, err), out, err);
}

int etcd_lease_ttl(struct etcd_client *c, int64_t id, bool keys, struct etcd_resp *out, struct vxerr *err)
{
	struct etcd_sync s = { 0 };
	return etcd_sync_run(c, &s, etcd_lease_ttl_async(c, id, keys, etcd_sync_cb, &s, err), out, err);
}

/* ---------------------------------------------------------------- keepalive */

struct etcd_keepalive {
	struct etcd_obj obj;
	struct etcd_keepalive_cbs cbs;
	int64_t id;
	int64_t ttl_s;
	char *ping;           /* {"ID":"<id>"} */
	struct etcd_xfer *x;  /* the keepalive in flight */
	size_t ep;
	bool inert;           /* lost was reported, or freed */
	int64_t deadline_us;  /* with no renewal by then the lease has certainly expired */
	int64_t next_send_us;
	int64_t backoff_us;
	char last_trouble[ETCD_WHY_MAX];
	ev_timer tick;
	struct etcd_auth_wait aw;
};

static int64_t ka_interval(const struct etcd_keepalive *ka)
{
	int64_t iv = ka->ttl_s * USEC_PER_SEC / 3;
	return iv < 100 * USEC_PER_MS ? 100 * USEC_PER_MS : iv;
}

/* An answer later than this means the member is stuck: go elsewhere while there is time. */
static int64_t ka_reply_timeout(const struct etcd_keepalive *ka)
{
	int64_t iv = ka_interval(ka);
	int64_t rt = ka->obj.c->request_timeout_us;
	return iv < rt ? iv : rt;
}

static void ka_stop(struct etcd_keepalive *ka)
{
	struct etcd_client *c = ka->obj.c;
	etcd_xfer_close(ka->x);
	ka->x = NULL;
	ev_timer_stop(c->loop, &ka->tick);
	etcd_auth_cancel(c, &ka->aw);
}

static void ka_lost(struct etcd_keepalive *ka, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ka_lost(struct etcd_keepalive *ka, const char *fmt, ...)
{
	char reason[VXERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	ka_stop(ka);
	ka->inert = true;
	if (ka->cbs.lost)
		ka->cbs.lost(ka->cbs.arg, reason);
}

/* Trouble with one endpoint: the next keepalive goes to the next one, after a backoff that
 * stays well inside the renewal interval. */
static void ka_trouble(struct etcd_keepalive *ka, const char *why)
{
	struct etcd_client *c = ka->obj.c;
	snprintf(ka->last_trouble, sizeof(ka->last_trouble), "%s (%s)", c->endpoints[ka->ep], why);
	ka->ep = (ka->ep + 1) % c->n_endpoints;
	ka->next_send_us = time_mono_us() + etcd_backoff(c, &ka->backoff_us, ka_interval(ka) / 2);
	if (ka->cbs.trouble)
		ka->cbs.trouble(ka->cbs.arg, ka->last_trouble);
}

static void ka_renewed(struct etcd_keepalive *ka, int64_t ttl)
{
	ka->ttl_s = ttl;
	ka->deadline_us = time_mono_us() + ttl * USEC_PER_SEC;
	ka->backoff_us = 0;
	ka->last_trouble[0] = '\0';
	ka->obj.c->preferred = ka->ep;
	if (ka->cbs.renewed)
		ka->cbs.renewed(ka->cbs.arg, ttl);
}

static void ka_message(struct etcd_keepalive *ka, const char *line, size_t len)
{
	struct etcd_keepalive_msg m;
	struct vxerr e;
	if (etcd_dec_keepalive_msg(line, len, &m, &e) != 0) {
		ka_trouble(ka, e.msg);
		return;
	}
	if (m.is_error && m.error_code == ETCD_NOT_FOUND) {
		ka_lost(ka, "lease %lld not found: %s", (long long)ka->id, m.error_msg);
	} else if (m.is_error) {
		if (m.error_code == ETCD_UNAUTHENTICATED)
			etcd_auth_invalidate(ka->obj.c);
		ka_trouble(ka, m.error_msg);
	} else if (m.ttl <= 0) {
		ka_lost(ka, "lease %lld expired or was revoked", (long long)ka->id);
	} else {
		ka_renewed(ka, m.ttl);
	}
	etcd_keepalive_msg_release(&m);
}

static void ka_http_error(struct etcd_keepalive *ka, struct etcd_xfer *x, long st)
{
	char why[ETCD_WHY_MAX];
	int code;
	etcd_dec_error(x->in.data, x->in.len, st, &code, why, sizeof(why));
	if (code == ETCD_NOT_FOUND) {
		ka_lost(ka, "lease %lld not found: %s", (long long)ka->id, why);
		return;
	}
	if (code == ETCD_UNAUTHENTICATED)
		etcd_auth_invalidate(ka->obj.c);
	ka_trouble(ka, why);
}

static void ka_done(struct etcd_xfer *x, bool ok)
{
	struct etcd_keepalive *ka = x->owner;
	long st = etcd_xfer_status(x);
	const char *line;
	size_t len, used;
	char why[ETCD_WHY_MAX];
	ka->x = NULL;
	if (!ok) {
		etcd_xfer_why(x, why, sizeof(why));
		ka_trouble(ka, why);
	} else if (st != 200) {
		ka_http_error(ka, x, st);
	} else if (etcd_next_line(&x->in, true, &line, &len, &used)) {
		ka_message(ka, line, len); /* one keepalive, one answer */
	} else {
		ka_trouble(ka, "empty keepalive answer");
	}
	etcd_xfer_close(x);
}

static const struct etcd_xfer_ops ka_ops = { NULL, ka_done };

static void ka_send_now(struct etcd_keepalive *ka)
{
	struct etcd_client *c = ka->obj.c;
	ka->next_send_us = time_mono_us() + ka_interval(ka);
	ka->x = etcd_xfer_start(c, ka->ep, "/v3/lease/keepalive", ka->ping, ka_reply_timeout(ka), true, &ka_ops, ka);
}

static void ka_auth_ready(struct etcd_auth_wait *w, const struct etcd_resp *failure)
{
	struct etcd_keepalive *ka = ETCD_CONTAINER(w, struct etcd_keepalive, aw);
	if (failure)
		ka_trouble(ka, failure->error ? failure->error : "authentication failed");
	else
		ka_send_now(ka);
}

static void ka_check(struct etcd_keepalive *ka)
{
	int64_t now = time_mono_us();
	if (now >= ka->deadline_us) {
		ka_lost(ka, "lease %lld not renewed for %llds: %s", (long long)ka->id, (long long)ka->ttl_s,
			ka->last_trouble[0] ? ka->last_trouble : "no answer");
		return;
	}
	if (ka->x || ka->aw.queued || now < ka->next_send_us)
		return;
	if (etcd_auth_ready(ka->obj.c, &ka->aw))
		ka_send_now(ka);
}

static void ka_on_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct etcd_keepalive *ka = ETCD_CONTAINER(t, struct etcd_keepalive, tick);
	struct etcd_client *c = ka->obj.c;
	etcd_enter(c);
	ka_check(ka);
	etcd_leave(c);
}

static void ka_detach(struct etcd_obj *o)
{
	struct etcd_keepalive *ka = ETCD_CONTAINER(o, struct etcd_keepalive, obj);
	ka_stop(ka);
	ka->inert = true;
}

static void ka_destroy(struct etcd_obj *o)
{
	struct etcd_keepalive *ka = ETCD_CONTAINER(o, struct etcd_keepalive, obj);
	free(ka->ping);
	free(ka);
}

struct etcd_keepalive *etcd_keepalive_start(struct etcd_client *c, int64_t lease_id, int64_t ttl_s,
					    const struct etcd_keepalive_cbs *cbs, struct vxerr *err)
{
	if (lease_id == 0 || ttl_s <= 0) {
		vxerr_set(err, "etcd keepalive: need a lease ID and its TTL");
		return NULL;
	}
	struct etcd_keepalive *ka = xcalloc(1, sizeof(*ka));
	ka->obj.detach = ka_detach;
	ka->obj.destroy = ka_destroy;
	etcd_obj_add(c, &ka->obj);
	ka->cbs = *cbs;
	ka->id = lease_id;
	ka->ttl_s = ttl_s;
	ka->ping = etcd_enc_lease_id(lease_id);
	ka->ep = c->preferred;
	ka->deadline_us = time_mono_us() + ttl_s * USEC_PER_SEC;
	ka->next_send_us = 0; /* the first keepalive goes out at once */
	ka->aw.ready = ka_auth_ready;
	ev_init(&ka->tick, ka_on_tick);
	/* a few checks per renewal interval: sends, retries, the deadline */
	int64_t period = ka_interval(ka) / 4;
	if (period > 250 * USEC_PER_MS)
		period = 250 * USEC_PER_MS;
	etcd_timer_start(c, &ka->tick, 0, period);
	return ka;
}

void etcd_keepalive_free(struct etcd_keepalive *ka)
{
	if (ka)
		etcd_obj_free(&ka->obj);
}
