/* The controller's registry side: one snapshot at one revision, then a watch from the next
 * revision; every event batch updates the view and marks the services it touched dirty. A watch
 * that cannot continue (compaction, cancel, stall, revision going backwards) is replaced by a
 * fresh list and watch: never a partial read (DESIGN principle 2). While etcd is unreachable the
 * view, and so HAProxy, stays as it was (principle 3). */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "controller/ctl_int.h"

#define RELIST_BACKOFF_MIN_US (100 * 1000)
#define RELIST_BACKOFF_MAX_US (5 * USEC_PER_SEC)

static void start_list(struct controller *c);

static void registry_contact(struct controller *c, bool up)
{
	if (up && !c->registry_up)
		log_info("registry reachable", "revision=%lld", (long long)reg_view_revision(c->view));
	if (!up && c->registry_up)
		c->registry_down_since_us = time_mono_us();
	c->registry_up = up;
}

double ctl_registry_staleness_s(const struct controller *c)
{
	if (c->registry_up && c->have_snapshot)
		return 0;
	return c->registry_down_since_us ? (double)(time_mono_us() - c->registry_down_since_us) / 1e6 : 0;
}

/* Logs each newly rejected key once and marks changed services dirty. */
static void take_changes(struct controller *c, int64_t since_us)
{
	struct reg_changes ch;
	reg_view_changes(c->view, &ch);
	for (size_t i = 0; i < ch.n_rejects; i++) {
		const struct reg_reject *r = &ch.rejects[i];
		log_warn("registry value rejected", "key=%s reason=%s detail=%s", log_q(r->key), reg_reason_name(r->reason),
			 log_q(r->message));
		const char *labels[] = { reg_reason_name(r->reason) };
		metric_add(c->m.rejections_total, 1, labels);
	}
	for (size_t i = 0; i < ch.n_services; i++)
		ctl_mark_dirty(c, ch.services[i], since_us);
	reg_view_clear_changes(c->view);
}

static void on_events(void *arg, const struct etcd_watch_batch *b)
{
	struct controller *c = arg;
	registry_contact(c, true);
	if (b->n_events == 0 && b->delivered_revision <= reg_view_revision(c->view))
		return;
	reg_view_apply(c->view, b->events, b->n_events, b->delivered_revision);
	take_changes(c, time_mono_us());
	ctl_schedule_reconcile(c);
}

static void relist_later(struct controller *c)
{
	int64_t b = c->relist_backoff_us ? c->relist_backoff_us : RELIST_BACKOFF_MIN_US;
	int64_t wait = b / 2 + (int64_t)(random() % (b / 2 + 1)); /* jitter: [b/2, b] */
	c->relist_backoff_us = b * 2 > RELIST_BACKOFF_MAX_US ? RELIST_BACKOFF_MAX_US : b * 2;
	ev_timer_stop(c->loop, &c->relist_timer);
	ev_timer_set(&c->relist_timer, (double)wait / 1e6, 0);
	ev_timer_start(c->loop, &c->relist_timer);
}

static void on_resync(void *arg, enum etcd_resync_reason reason, const char *detail)
{
	struct controller *c = arg;
	log_warn("watch needs a resync", "reason=%s detail=%s", etcd_resync_reason_name(reason), log_q(detail));
	const char *labels[] = { etcd_resync_reason_name(reason) };
	metric_add(c->m.resyncs_total, 1, labels);
	etcd_watch_free(c->watch);
	c->watch = NULL;
	start_list(c);
}

static void on_connection(void *arg, bool up, const char *detail)
{
	struct controller *c = arg;
	if (!up)
		log_warn("registry unreachable, keeping the last known pools", "detail=%s", log_q(detail));
	registry_contact(c, up);
}

static void start_watch(struct controller *c, int64_t from_revision)
{
	struct reg_range range;
	struct vxerr err;
	if (reg_range_all(reg_view_prefix(c->view), &range, &err) != 0) {
		log_error("cannot watch the registry", "error=%s", log_q(err.msg));
		return;
	}
	struct etcd_watch_req req = { .key = range.key, .prefix = true, .start_revision = from_revision };
	struct etcd_watch_cbs cbs = { on_events, on_resync, on_connection, c };
	c->watch = etcd_watch_start(c->etcd, &req, &cbs, &err);
	if (!c->watch) {
		log_error("cannot watch the registry", "error=%s", log_q(err.msg));
		relist_later(c);
	}
}

static void on_list(void *arg, struct etcd_resp *resp)
{
	struct controller *c = arg;
	c->listing = false;
	if (c->stopping)
		return;
	if (resp->code != ETCD_OK) {
		registry_contact(c, false);
		log_warn("registry snapshot failed, keeping the last known pools", "error=%s%s",
			 log_q(resp->error ? resp->error : etcd_code_name(resp->code)),
			 c->have_snapshot ? "" : " pools=untouched_until_first_snapshot");
		relist_later(c);
		return;
	}
	c->relist_backoff_us = 0;
	bool first = !c->have_snapshot;
	reg_view_load_snapshot(c->view, resp->kvs, resp->n_kvs, resp->header.revision);
	c->have_snapshot = true;
	registry_contact(c, true);
	log_info("registry snapshot", "revision=%lld instances=%zu services=%zu rejected=%zu",
		 (long long)resp->header.revision, reg_view_n_instances(c->view), reg_view_n_services(c->view),
		 reg_view_n_rejected(c->view));
	take_changes(c, time_mono_us());
	if (first)
		ctl_mark_all_dirty(c);
	ctl_schedule_reconcile(c);
	start_watch(c, resp->header.revision + 1);
}

static void start_list(struct controller *c)
{
	struct reg_range range;
	struct vxerr err;
	if (c->listing || c->stopping)
		return;
	if (reg_range_all(reg_view_prefix(c->view), &range, &err) != 0) {
		log_error("cannot list the registry", "error=%s", log_q(err.msg));
		return;
	}
	if (etcd_list_async(c->etcd, range.key, strlen(range.key), 0, on_list, c, &err) != 0) {
		log_warn("registry snapshot failed", "error=%s", log_q(err.msg));
		relist_later(c);
		return;
	}
	c->listing = true;
}

static void on_relist_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	start_list(w->data);
}

void ctl_registry_set_policy(struct controller *c)
{
	free(c->allow);
	c->allow = xcalloc(c->cfg->n_services ? c->cfg->n_services : 1, sizeof(*c->allow));
	for (size_t i = 0; i < c->cfg->n_services; i++) {
		const struct cfg_service *s = &c->cfg->services[i];
		c->allow[i] = (struct reg_allow){ s->name, s->allow, s->n_allow };
	}
}

static int make_view(struct controller *c, struct vxerr *err)
{
	ctl_registry_set_policy(c);
	struct reg_policy policy = { c->allow, c->cfg->n_services };
	struct reg_view *v = reg_view_new(c->cfg->etcd.prefix, &policy, err);
	if (!v)
		return -1;
	reg_view_free(c->view);
	c->view = v;
	return 0;
}

int ctl_registry_start(struct controller *c, const struct etcd_opts *opts, struct vxerr *err)
{
	if (make_view(c, err) != 0)
		return -1;
	c->etcd = etcd_client_new(c->loop, opts, err);
	if (!c->etcd)
		return -1;
	ev_timer_init(&c->relist_timer, on_relist_timer, 0, 0);
	c->relist_timer.data = c;
	c->registry_down_since_us = time_mono_us();
	start_list(c);
	return 0;
}

static bool allow_same(const struct cfg_service *a, const struct cfg_service *b)
{
	size_t na = a ? a->n_allow : 0, nb = b ? b->n_allow : 0;
	return na == nb && (na == 0 || memcmp(a->allow, b->allow, na * sizeof(*a->allow)) == 0);
}

/* What the view was built with: the prefix and every service's address allow-list. */
static bool policy_same(const struct vx_config *a, const struct vx_config *b)
{
	if (strcmp(a->etcd.prefix, b->etcd.prefix) != 0)
		return false;
	for (size_t i = 0; i < b->n_services; i++)
		if (!allow_same(cfg_service_find(a, b->services[i].name), &b->services[i]))
			return false;
	for (size_t i = 0; i < a->n_services; i++)
		if (!allow_same(&a->services[i], cfg_service_find(b, a->services[i].name)))
			return false;
	return true;
}

void ctl_registry_reconfigure(struct controller *c, const struct vx_config *old)
{
	if (policy_same(old, c->cfg)) {
		ctl_registry_set_policy(c); /* the same rows, pointing into the new configuration */
		return;
	}
	log_info("registry policy changed, taking a fresh snapshot", "prefix=%s", log_q(c->cfg->etcd.prefix));
	ctl_registry_restart(c);
}

/* A new policy (SIGHUP changed allow-lists) needs a new view and a fresh snapshot. */
void ctl_registry_restart(struct controller *c)
{
	struct vxerr err;
	etcd_watch_free(c->watch);
	c->watch = NULL;
	if (make_view(c, &err) != 0) {
		log_error("cannot rebuild the registry view", "error=%s", log_q(err.msg));
		return;
	}
	c->have_snapshot = false;
	start_list(c);
}

void ctl_registry_stop(struct controller *c)
{
	ev_timer_stop(c->loop, &c->relist_timer);
	etcd_watch_free(c->watch);
	c->watch = NULL;
	etcd_client_free(c->etcd);
	c->etcd = NULL;
	reg_view_free(c->view);
	c->view = NULL;
	free(c->allow);
	c->allow = NULL;
}
