/* The agent's registration: a lease (its own, or the host's shared one: agent_share.c), a txn
 * that writes the key only when it is absent or already ours, keepalives, re-registration after
 * a lease loss, and the revoke (or, with a shared lease, the key's delete) at the end.
 *
 * One etcd call is in flight at a time, and every step starts from agent_reg_sync, which
 * compares what etcd should hold with what it holds as far as the agent knows. So a missed or
 * failed step is simply taken again on the next sync, and a burst of changes collapses into one
 * write of the latest value. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent_int.h"
#include "common/log.h"
#include "common/timeutil.h"

#define RETRY_MIN_US (250 * USEC_PER_MS) /* etcd errors and lease re-grants */
#define RETRY_MAX_US (4 * USEC_PER_SEC)
#define CONFLICT_MIN_US (2 * USEC_PER_SEC) /* another process holds the key: do not fight */
#define CONFLICT_MAX_US (30 * USEC_PER_SEC)
#define REVOKE_RETRY_US (200 * USEC_PER_MS)
#define QUICK_RETRIES_MAX 3 /* txn answers that change what to compare, before backing off */

const char *agent_lease_hex(int64_t id, char out[17])
{
	snprintf(out, 17, "%016llx", (unsigned long long)id);
	return out;
}

char *agent_value(const struct agent *a, struct vxerr *err)
{
	struct reg_instance in = { 0 };
	in.family = net_ip_canon(a->check.address, in.address, sizeof(in.address));
	in.port = a->port;
	in.capacity = a->capacity;
	if (a->phase != AGENT_RUNNING)
		in.state = REG_STATE_DRAINING;
	else
		in.state = a->health == CHECK_STATE_UP ? REG_STATE_UP : REG_STATE_DOWN;
	if (a->has_latency) {
		in.has_load = true;
		in.load.has_latency_ms = true;
		in.load.latency_ms = a->latency_ms;
	}
	char *out = NULL;
	size_t len;
	if (in.family < 0)
		vxerr_set(err, "address '%s' is not an IP literal", a->check.address);
	else if (reg_value_encode(&in, &out, &len, err) != 0)
		out = NULL;
	return out;
}

/* ---- timing ---- */

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	agent_reg_sync(w->data);
}

/* The next wait: doubled, within [min, max], jittered to [b/2, b] so that many agents that
 * lost etcd together do not come back in step. */
static void backoff(struct agent *a, int64_t min_us, int64_t max_us)
{
	int64_t b = a->backoff_us * 2;
	b = b < min_us ? min_us : b > max_us ? max_us : b;
	a->backoff_us = b;
	int64_t wait = b / 2 + (int64_t)(random() % (b / 2 + 1));
	ev_timer_set(&a->retry, (double)wait / 1e6, 0);
	ev_timer_start(a->loop, &a->retry);
}

void agent_reg_failed(struct agent *a, const char *call, const struct etcd_resp *r)
{
	const char *why = r->error ? r->error : etcd_code_name((int)r->code);
	if (strcmp(why, a->last_error) != 0) {
		log_warn("etcd call failed, retrying with backoff", "call=%s key=%s error=%s", log_q(call), a->key,
			 log_q(why));
		snprintf(a->last_error, sizeof(a->last_error), "%s", why);
	} else {
		log_debug("etcd call failed again", "call=%s error=%s", log_q(call), log_q(why));
	}
	backoff(a, RETRY_MIN_US, RETRY_MAX_US);
}

static void etcd_answered(struct agent *a)
{
	a->backoff_us = 0;
	if (a->last_error[0])
		log_info("etcd answers again", "key=%s", a->key);
	a->last_error[0] = '\0';
}

/* ---- lease ---- */

bool agent_reg_is_old_lease(const struct agent *a, int64_t id)
{
	for (int i = 0; id && i < AGENT_OLD_LEASES; i++)
		if (a->old_leases[i] == id)
			return true;
	return false;
}

void agent_reg_lease_dropped(struct agent *a, const char *reason)
{
	char hex[17];
	memmove(a->old_leases + 1, a->old_leases, sizeof(a->old_leases[0]) * (AGENT_OLD_LEASES - 1));
	a->old_leases[0] = a->lease;
	agent_reg_drop_keepalive(a); /* safe inside the keepalive's own callback */
	if (a->phase == AGENT_RUNNING)
		log_warn("lease lost, registering again", "lease=%s key=%s reason=%s", agent_lease_hex(a->lease, hex),
			 a->key, log_q(reason));
	else
		log_info("lease lost while stopping", "lease=%s reason=%s", agent_lease_hex(a->lease, hex), log_q(reason));
	a->lease = 0;
	a->gen++;
	free(a->written);
	a->written = NULL;
	a->expect = EXPECT_ABSENT;
	a->backoff_us = 0;
	ev_timer_stop(a->loop, &a->retry); /* as soon as etcd answers: try at once */
	agent_reg_sync(a);
}

static void ka_renewed(void *arg, int64_t ttl_s)
{
	struct agent *a = arg;
	char hex[17];
	a->lease_ttl_s = ttl_s;
	if (a->ka_troubled)
		log_info("lease renewals resumed", "lease=%s ttl=%llds", agent_lease_hex(a->lease, hex), (long long)ttl_s);
	a->ka_troubled = false;
}

static void ka_trouble(void *arg, const char *detail)
{
	struct agent *a = arg;
	char hex[17];
	if (!a->ka_troubled)
		log_warn("lease renewal failed, retrying (the lease lives until its TTL runs out)", "lease=%s ttl=%llds detail=%s",
			 agent_lease_hex(a->lease, hex), (long long)a->lease_ttl_s, log_q(detail));
	a->ka_troubled = true;
}

static void ka_lost(void *arg, const char *reason)
{
	agent_reg_lease_dropped(arg, reason);
}

void agent_reg_drop_keepalive(struct agent *a)
{
	etcd_keepalive_free(a->ka);
	a->ka = NULL;
	a->ka_troubled = false;
}

void agent_reg_keep_alive(struct agent *a)
{
	char hex[17];
	struct vxerr err;
	struct etcd_keepalive_cbs cbs = { ka_renewed, ka_lost, ka_trouble, a };
	agent_reg_drop_keepalive(a);
	a->ka = etcd_keepalive_start(a->etcd, a->lease, a->lease_ttl_s, &cbs, &err);
	if (!a->ka)
		log_error("cannot keep the lease alive", "lease=%s error=%s", agent_lease_hex(a->lease, hex), log_q(err.msg));
}

static void on_granted(void *arg, struct etcd_resp *r)
{
	struct agent *a = arg;
	char hex[17];
	a->busy = false;
	if (r->code != ETCD_OK) {
		agent_reg_failed(a, "lease grant", r);
		return;
	}
	etcd_answered(a);
	a->lease = r->lease_id;
	a->lease_ttl_s = r->ttl;
	a->expect = EXPECT_ABSENT;
	a->quick_retries = 0;
	agent_reg_keep_alive(a);
	log_info("lease granted", "lease=%s ttl=%llds%s", agent_lease_hex(a->lease, hex), (long long)r->ttl,
		 a->share_dir ? " shared=true" : "");
	if (a->share_dir)
		agent_share_granted(a); /* the host's other agents bind their keys to it */
	agent_reg_sync(a);
}

void agent_reg_grant(struct agent *a)
{
	struct vxerr err;
	if (etcd_lease_grant_async(a->etcd, a->ttl_s, 0, on_granted, a, &err) != 0) {
		log_error("cannot ask for a lease", "error=%s", log_q(err.msg));
		backoff(a, RETRY_MIN_US, RETRY_MAX_US);
		return;
	}
	a->busy = true;
	a->call_gen = a->gen;
}

/* ---- the registration txn ---- */

static void conflict(struct agent *a, const struct etcd_kv *kv)
{
	char hex[17], msg[256];
	a->expect = EXPECT_ABSENT;
	a->quick_retries = 0;
	if (kv->lease != a->conflict_lease || kv->create_revision != a->conflict_rev) {
		if (kv->lease)
			snprintf(msg, sizeof(msg), "instance key held by lease %s since revision %lld: another agent for the same instance?",
				 agent_lease_hex(kv->lease, hex), (long long)kv->create_revision);
		else
			snprintf(msg, sizeof(msg), "instance key held without a lease since revision %lld: "
				 "a static registration of the same instance?", (long long)kv->create_revision);
		log_error(msg, "key=%s our_lease=%s action=%s", a->key, agent_lease_hex(a->lease, hex),
			  log_q("not overwriting; retrying slowly until the key is free"));
		a->conflict_lease = kv->lease;
		a->conflict_rev = kv->create_revision;
	}
	backoff(a, CONFLICT_MIN_US, CONFLICT_MAX_US);
}

/* The compare failed: the failure branch read the key. Decide what to compare next. */
static void not_written(struct agent *a, const struct etcd_resp *r)
{
	const struct etcd_kv *kv = r->n_ops == 1 && r->ops[0].n_kvs == 1 ? &r->ops[0].kvs[0] : NULL;
	char hex[17];
	free(a->written);
	a->written = NULL;
	if (!kv) {
		a->expect = EXPECT_ABSENT;
	} else if (kv->lease && kv->lease == a->lease) {
		a->expect = EXPECT_OURS;
	} else if (agent_reg_is_old_lease(a, kv->lease)) {
		log_info("taking the instance key back from a previous lease of this agent", "key=%s old_lease=%s",
			 a->key, agent_lease_hex(kv->lease, hex));
		a->expect = EXPECT_MOD;
		a->expect_mod = kv->mod_revision;
	} else {
		conflict(a, kv);
		return;
	}
	if (++a->quick_retries > QUICK_RETRIES_MAX)
		backoff(a, RETRY_MIN_US, RETRY_MAX_US);
	else
		agent_reg_sync(a);
}

static void written(struct agent *a, char *value)
{
	char hex[17];
	bool first = a->written == NULL;
	free(a->written);
	a->written = value;
	a->expect = EXPECT_OURS;
	a->quick_retries = 0;
	a->conflict_lease = a->conflict_rev = 0;
	log_info(first ? "registered" : "registration updated", "key=%s lease=%s value=%s", a->key,
		 agent_lease_hex(a->lease, hex), log_q(value));
	agent_reg_sync(a);
}

static void on_txn(void *arg, struct etcd_resp *r)
{
	struct agent *a = arg;
	char *value = a->inflight;
	a->inflight = NULL;
	a->busy = false;
	if (a->call_gen != a->gen) { /* written under a lease that is gone since */
		free(value);
		agent_reg_sync(a);
	} else if (r->code == ETCD_NOT_FOUND) {
		free(value);
		etcd_answered(a);
		agent_reg_lease_dropped(a, r->error ? r->error : "lease not found");
	} else if (r->code != ETCD_OK) {
		free(value);
		agent_reg_failed(a, "registration txn", r);
	} else if (r->succeeded) {
		etcd_answered(a);
		written(a, value);
	} else {
		free(value);
		etcd_answered(a);
		not_written(a, r);
	}
}

/* Takes ownership of value. */
static void put_value(struct agent *a, char *value)
{
	struct etcd_compare cmp = { .key = a->key, .result = ETCD_CMP_EQUAL };
	if (a->expect == EXPECT_ABSENT) {
		cmp.target = ETCD_CMP_CREATE; /* create_revision 0: absent */
	} else if (a->expect == EXPECT_OURS) {
		cmp.target = ETCD_CMP_LEASE;
		cmp.number = a->lease;
	} else {
		cmp.target = ETCD_CMP_MOD;
		cmp.number = a->expect_mod;
	}
	struct etcd_txn_op ok = { .type = ETCD_OP_PUT, .put = { .key = a->key, .value = value, .lease = a->lease } };
	struct etcd_txn_op no = { .type = ETCD_OP_RANGE, .range = { .key = a->key } };
	struct etcd_txn_req req = { &cmp, 1, &ok, 1, &no, 1 };
	struct vxerr err;
	if (etcd_txn_async(a->etcd, &req, on_txn, a, &err) != 0) {
		log_error("cannot write the registration", "key=%s error=%s", a->key, log_q(err.msg));
		free(value);
		backoff(a, RETRY_MIN_US, RETRY_MAX_US);
		return;
	}
	a->busy = true;
	a->call_gen = a->gen;
	a->inflight = value;
}

/* ---- revoke ---- */

static void on_revoked(void *arg, struct etcd_resp *r)
{
	struct agent *a = arg;
	char hex[17];
	a->busy = false;
	if (a->revoke_given_up)
		return;
	if (r->code == ETCD_OK || r->code == ETCD_NOT_FOUND) {
		log_info(r->code == ETCD_OK ? "lease revoked: the instance key is deleted" : "lease already gone",
			 "lease=%s key=%s", agent_lease_hex(a->lease, hex), a->key);
		a->lease = 0;
		free(a->written);
		a->written = NULL;
		agent_stopped(a);
		return;
	}
	log_warn("lease revoke failed, retrying", "lease=%s error=%s", agent_lease_hex(a->lease, hex),
		 log_q(r->error ? r->error : etcd_code_name((int)r->code)));
	ev_timer_set(&a->retry, (double)REVOKE_RETRY_US / 1e6, 0);
	ev_timer_start(a->loop, &a->retry);
}

static void stop_step(struct agent *a)
{
	struct vxerr err;
	if (a->revoke_given_up)
		return;
	if (!a->lease) {
		agent_stopped(a);
		return;
	}
	if (a->share_dir) { /* the lease is the host's: only the key is ours to delete */
		agent_share_leave(a);
		return;
	}
	agent_reg_drop_keepalive(a);
	if (etcd_lease_revoke_async(a->etcd, a->lease, on_revoked, a, &err) != 0) {
		log_error("cannot revoke the lease", "error=%s", log_q(err.msg));
		agent_reg_give_up(a);
		return;
	}
	a->busy = true;
	a->call_gen = a->gen;
}

void agent_reg_give_up(struct agent *a)
{
	char hex[17];
	if (a->revoke_given_up)
		return;
	a->revoke_given_up = true;
	ev_timer_stop(a->loop, &a->retry);
	if (a->lease)
		log_warn("could not revoke the lease in time: the key expires with it", "lease=%s ttl=%llds key=%s",
			 agent_lease_hex(a->lease, hex), (long long)a->lease_ttl_s, a->key);
	agent_stopped(a);
}

/* ---- the step function ---- */

void agent_reg_sync(struct agent *a)
{
	struct vxerr err;
	if (a->busy || ev_is_active(&a->retry) || a->phase == AGENT_DONE)
		return;
	if (a->phase == AGENT_STOPPING) {
		stop_step(a);
		return;
	}
	if (!a->risen || (a->phase == AGENT_DRAINING && !a->written))
		return; /* nothing registered yet: nothing to write, and nothing to drain */
	if (!a->lease) {
		if (a->share_dir)
			agent_share_join(a);
		else
			agent_reg_grant(a);
		return;
	}
	char *want = agent_value(a, &err);
	if (!want) {
		log_error("cannot encode the registration", "key=%s error=%s", a->key, log_q(err.msg));
		return;
	}
	if (a->written && strcmp(want, a->written) == 0)
		free(want);
	else
		put_value(a, want);
}

int agent_reg_init(struct agent *a, const struct agent_opts *o, struct vxerr *err)
{
	a->etcd = etcd_client_new(a->loop, o->etcd, err);
	if (!a->etcd)
		return -1;
	ev_init(&a->retry, on_retry);
	a->retry.data = a;
	return agent_share_init(a, o->shared_lease, err);
}

void agent_reg_release(struct agent *a)
{
	if (a->loop)
		ev_timer_stop(a->loop, &a->retry);
	agent_reg_drop_keepalive(a);
	agent_share_release(a);
	etcd_client_free(a->etcd);
	a->etcd = NULL;
	free(a->written);
	free(a->inflight);
	a->written = a->inflight = NULL;
}
