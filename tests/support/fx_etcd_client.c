/* Test helpers for the etcd client (see fx_etcd_client.h). */
#include "fx_etcd_client.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/timeutil.h"

struct etcd_client *fxc_client_on(struct ev_loop *loop, const char *endpoints, const struct etcd_opts *base)
{
	struct etcd_opts o = { 0 };
	if (base)
		o = *base;
	char *copy = xstrdup(endpoints);
	const char *eps[16];
	size_t n = 0;
	for (char *save = NULL, *p = strtok_r(copy, ",", &save); p && n < 16; p = strtok_r(NULL, ",", &save))
		eps[n++] = p;
	o.endpoints = eps;
	o.n_endpoints = n;
	if (!o.dial_timeout_us)
		o.dial_timeout_us = USEC_PER_SEC;
	if (!o.request_timeout_us)
		o.request_timeout_us = 3 * USEC_PER_SEC;
	struct vxerr err;
	struct etcd_client *c = etcd_client_new(loop, &o, &err);
	free(copy);
	if (!c)
		fail_msg("etcd_client_new: %s", err.msg);
	return c;
}

struct etcd_client *fxc_client(const char *endpoints, const struct etcd_opts *base)
{
	return fxc_client_on(NULL, endpoints, base);
}

static void on_deadline(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	*(bool *)t->data = true;
}

bool fxc_run_until(struct etcd_client *c, bool (*cond)(void *arg), void *arg, int timeout_ms)
{
	struct ev_loop *loop = etcd_client_loop(c);
	bool expired = false;
	ev_timer t;
	ev_timer_init(&t, on_deadline, timeout_ms / 1000.0, 0);
	t.data = &expired;
	ev_timer_start(loop, &t);
	bool ok;
	while (!(ok = cond(arg)) && !expired)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &t);
	return ok;
}

static bool never(void *arg)
{
	(void)arg;
	return false;
}

void fxc_run_for(struct etcd_client *c, int ms)
{
	fxc_run_until(c, never, NULL, ms);
}

static char *dup_n(const char *p, size_t n)
{
	return p ? xstrndup(p, n) : NULL;
}

static void on_events(void *arg, const struct etcd_watch_batch *b)
{
	struct fxc_watch *fw = arg;
	fw->batches++;
	if (b->n_events == 0)
		fw->progress++;
	fw->last_batch_revision = b->revision;
	for (size_t i = 0; i < b->n_events; i++) {
		const struct etcd_event *e = &b->events[i];
		fw->ev = xgrow(fw->ev, sizeof(*fw->ev), &fw->cap, fw->n + 1);
		struct fxc_event *o = &fw->ev[fw->n++];
		o->type = (int)e->type;
		o->key = dup_n(e->kv.key, e->kv.key_len);
		o->value = dup_n(e->kv.value, e->kv.value_len);
		o->mod_revision = e->kv.mod_revision;
		o->has_prev = e->has_prev;
		o->prev_value = e->has_prev ? dup_n(e->prev_kv.value, e->prev_kv.value_len) : NULL;
	}
}

static void on_resync(void *arg, enum etcd_resync_reason reason, const char *detail)
{
	struct fxc_watch *fw = arg;
	fw->resynced = true;
	fw->resync_reason = (int)reason;
	snprintf(fw->resync_detail, sizeof(fw->resync_detail), "%s", detail);
	if (fw->free_on_resync) {
		etcd_watch_free(fw->w);
		fw->w = NULL;
	}
}

static void on_connection(void *arg, bool up, const char *detail)
{
	struct fxc_watch *fw = arg;
	if (up) {
		fw->ups++;
	} else {
		fw->downs++;
		snprintf(fw->last_down, sizeof(fw->last_down), "%s", detail);
	}
}

void fxc_watch_cbs(struct fxc_watch *fw, struct etcd_watch_cbs *cbs)
{
	cbs->events = on_events;
	cbs->resync = on_resync;
	cbs->connection = on_connection;
	cbs->arg = fw;
}

void fxc_watch_release(struct fxc_watch *fw)
{
	etcd_watch_free(fw->w);
	for (size_t i = 0; i < fw->n; i++) {
		free(fw->ev[i].key);
		free(fw->ev[i].value);
		free(fw->ev[i].prev_value);
	}
	free(fw->ev);
	memset(fw, 0, sizeof(*fw));
}

bool fxc_has_events(void *arg)
{
	struct fxc_watch_wait *w = arg;
	return w->fw->n >= w->n || w->fw->resynced;
}

bool fxc_has_downs(void *arg)
{
	struct fxc_watch_wait *w = arg;
	return w->fw->downs >= (int)w->n;
}

bool fxc_has_resync(void *arg)
{
	struct fxc_watch_wait *w = arg;
	return w->fw->resynced;
}

static bool watch_confirmed(void *arg)
{
	struct fxc_watch *fw = arg;
	return fw->w && etcd_watch_delivered(fw->w) > 0;
}

void fxc_watch_ready(struct etcd_client *c, struct fxc_watch *fw)
{
	if (!fxc_run_until(c, watch_confirmed, fw, 10000))
		fail_msg("watch not confirmed within 10 s (%d downs: %s)", fw->downs, fw->last_down);
}
