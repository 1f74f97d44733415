/* Direct registration: the runner plays each backend's agent in etcd (docs/registry.md): one
 * lease per instance, kept alive, the key put under it; "draining" before a graceful stop; the
 * lease revoked after it, or at once when the instance is killed (an agent revokes its lease when
 * its service exits). A lost lease is granted again and the key put again, as an agent does.
 *
 * The etcd client runs on a libev loop in a thread of its own. The director states what it
 * wants per instance (level-triggered, the latest request wins); the thread reconciles each
 * instance toward it, one etcd call at a time, retrying failures every 250 ms. */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "registry/etcd.h"
#include "scenario/scn_int.h"

#define RETRY_S 0.25

enum want { WANT_NONE, WANT_PUT, WANT_REMOVE };

struct reg_inst {
	struct scn_reg *r;
	/* wanted (written by the director under r->mu) */
	enum want want;
	char key[128];
	char value[256];
	uint64_t want_seq;
	/* applied (the thread's) */
	int64_t lease;
	struct etcd_keepalive *ka;
	char applied[256];
	bool busy;
	uint64_t settled_seq;
};

struct scn_reg {
	pthread_t thread;
	struct ev_loop *loop;
	ev_async wake;
	ev_timer retry;
	struct etcd_client *client;
	int64_t ttl_s;
	pthread_mutex_t mu;
	bool stopping;
	struct reg_inst inst[SCN_MAX_BACKENDS];
	char last_error[200];
};

static void reconcile(struct reg_inst *in);

static void note_error(struct scn_reg *r, const char *what, const struct etcd_resp *resp)
{
	pthread_mutex_lock(&r->mu);
	snprintf(r->last_error, sizeof(r->last_error), "%s: %s", what,
		 resp && resp->error ? resp->error : resp ? etcd_code_name(resp->code) : "?");
	pthread_mutex_unlock(&r->mu);
}

static void on_lost(void *arg, const char *reason)
{
	struct reg_inst *in = arg;
	(void)reason;
	etcd_keepalive_free(in->ka);
	in->ka = NULL;
	in->lease = 0;
	in->applied[0] = '\0';
	reconcile(in);
}

static void on_granted(void *arg, struct etcd_resp *resp)
{
	struct reg_inst *in = arg;
	in->busy = false;
	if (resp->code != ETCD_OK || resp->lease_id == 0) {
		note_error(in->r, "lease grant", resp);
		return;
	}
	in->lease = resp->lease_id;
	struct etcd_keepalive_cbs cbs = { .lost = on_lost, .arg = in };
	in->ka = etcd_keepalive_start(in->r->client, in->lease, resp->ttl > 0 ? resp->ttl : in->r->ttl_s, &cbs, NULL);
	reconcile(in);
}

static void on_put(void *arg, struct etcd_resp *resp)
{
	struct reg_inst *in = arg;
	in->busy = false;
	if (resp->code != ETCD_OK) {
		note_error(in->r, "put", resp);
		return;
	}
	pthread_mutex_lock(&in->r->mu);
	snprintf(in->applied, sizeof(in->applied), "%s", in->value);
	pthread_mutex_unlock(&in->r->mu);
	reconcile(in);
}

static void on_revoked(void *arg, struct etcd_resp *resp)
{
	struct reg_inst *in = arg;
	in->busy = false;
	if (resp->code != ETCD_OK && resp->code != ETCD_NOT_FOUND) {
		note_error(in->r, "lease revoke", resp);
		return;
	}
	in->lease = 0;
	in->applied[0] = '\0';
	reconcile(in);
}

static void drop_keepalive(struct reg_inst *in)
{
	etcd_keepalive_free(in->ka);
	in->ka = NULL;
}

/* One step toward what is wanted; an etcd call leaves the instance busy until its callback. */
static void reconcile(struct reg_inst *in)
{
	struct scn_reg *r = in->r;
	if (in->busy)
		return;
	pthread_mutex_lock(&r->mu);
	bool stopping = r->stopping;
	enum want want = in->want;
	uint64_t seq = in->want_seq;
	char key[128], value[256];
	memcpy(key, in->key, sizeof(key));
	memcpy(value, in->value, sizeof(value));
	pthread_mutex_unlock(&r->mu);
	int rc = 0;
	if (stopping)
		return;
	if (want == WANT_PUT && in->lease == 0) {
		in->busy = true;
		rc = etcd_lease_grant_async(r->client, r->ttl_s, 0, on_granted, in, NULL);
	} else if (want == WANT_PUT && strcmp(in->applied, value) != 0) {
		struct etcd_put_req put = { .key = key, .value = value, .lease = in->lease };
		in->busy = true;
		rc = etcd_put_async(r->client, &put, on_put, in, NULL);
	} else if (want == WANT_REMOVE && in->lease != 0) {
		drop_keepalive(in);
		in->busy = true;
		rc = etcd_lease_revoke_async(r->client, in->lease, on_revoked, in, NULL);
	} else if (want == WANT_REMOVE) {
		drop_keepalive(in);
		in->lease = 0;
		in->applied[0] = '\0';
	}
	if (rc != 0)
		in->busy = false;
	if (!in->busy && rc == 0 && (want != WANT_PUT || (in->lease && strcmp(in->applied, value) == 0))) {
		pthread_mutex_lock(&r->mu);
		in->settled_seq = seq;
		pthread_mutex_unlock(&r->mu);
	}
}

static void reconcile_all(struct scn_reg *r)
{
	for (size_t i = 0; i < SCN_MAX_BACKENDS; i++)
		reconcile(&r->inst[i]);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	(void)revents;
	struct scn_reg *r = w->data;
	pthread_mutex_lock(&r->mu);
	bool stop = r->stopping;
	pthread_mutex_unlock(&r->mu);
	if (stop)
		ev_break(loop, EVBREAK_ALL);
	else
		reconcile_all(r);
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	reconcile_all(w->data);
}

static void *thread_main(void *arg)
{
	struct scn_reg *r = arg;
	ev_run(r->loop, 0);
	for (size_t i = 0; i < SCN_MAX_BACKENDS; i++)
		drop_keepalive(&r->inst[i]);
	return NULL;
}

struct scn_reg *scn_reg_start(const char *etcd_url, int64_t ttl_s, struct vxerr *err)
{
	struct scn_reg *r = xcalloc(1, sizeof(*r));
	const char *eps[] = { etcd_url };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 1, .dial_timeout_us = 500000, .request_timeout_us = 1000000 };
	r->ttl_s = ttl_s;
	r->loop = ev_loop_new(EVFLAG_AUTO);
	pthread_mutex_init(&r->mu, NULL);
	for (size_t i = 0; i < SCN_MAX_BACKENDS; i++)
		r->inst[i].r = r;
	r->client = etcd_client_new(r->loop, &o, err);
	if (!r->client)
		goto fail;
	ev_async_init(&r->wake, on_wake);
	r->wake.data = r;
	ev_async_start(r->loop, &r->wake);
	ev_timer_init(&r->retry, on_retry, RETRY_S, RETRY_S);
	r->retry.data = r;
	ev_timer_start(r->loop, &r->retry);
	if (pthread_create(&r->thread, NULL, thread_main, r) != 0) {
		vxerr_set(err, "cannot start the registration thread");
		etcd_client_free(r->client);
		goto fail;
	}
	return r;
fail:
	ev_loop_destroy(r->loop);
	pthread_mutex_destroy(&r->mu);
	free(r);
	return NULL;
}

static void want(struct scn_reg *r, size_t idx, enum want w, const char *value)
{
	if (!r || idx >= SCN_MAX_BACKENDS)
		return;
	pthread_mutex_lock(&r->mu);
	r->inst[idx].want = w;
	if (value)
		snprintf(r->inst[idx].value, sizeof(r->inst[idx].value), "%s", value);
	r->inst[idx].want_seq++;
	pthread_mutex_unlock(&r->mu);
	ev_async_send(r->loop, &r->wake);
}

void scn_reg_put(struct scn_reg *r, size_t idx, const char *instance, uint16_t port, int64_t capacity,
		 const char *state)
{
	char value[256];
	if (!r || idx >= SCN_MAX_BACKENDS)
		return;
	pthread_mutex_lock(&r->mu);
	snprintf(r->inst[idx].key, sizeof(r->inst[idx].key), "%s/services/%s/%s", SCN_PREFIX, SCN_SERVICE, instance);
	pthread_mutex_unlock(&r->mu);
	snprintf(value, sizeof(value), "{\"address\":\"127.0.0.1\",\"port\":%u,\"capacity\":%lld,\"state\":\"%s\"}",
		 (unsigned)port, (long long)capacity, state);
	want(r, idx, WANT_PUT, value);
}

void scn_reg_remove(struct scn_reg *r, size_t idx)
{
	want(r, idx, WANT_REMOVE, NULL);
}

bool scn_reg_settled(struct scn_reg *r, size_t idx)
{
	if (!r || idx >= SCN_MAX_BACKENDS)
		return true;
	pthread_mutex_lock(&r->mu);
	bool done = r->inst[idx].settled_seq == r->inst[idx].want_seq;
	pthread_mutex_unlock(&r->mu);
	return done;
}

void scn_reg_last_error(struct scn_reg *r, char *out, size_t cap)
{
	if (!r) {
		snprintf(out, cap, "%s", "");
		return;
	}
	pthread_mutex_lock(&r->mu);
	snprintf(out, cap, "%s", r->last_error);
	pthread_mutex_unlock(&r->mu);
}

void scn_reg_stop(struct scn_reg *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->stopping = true;
	pthread_mutex_unlock(&r->mu);
	ev_async_send(r->loop, &r->wake);
	pthread_join(r->thread, NULL);
	etcd_client_free(r->client);
	ev_loop_destroy(r->loop);
	pthread_mutex_destroy(&r->mu);
	free(r);
}
