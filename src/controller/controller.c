/* The controller's lifecycle and clock: services, dirty marks, and the timers that turn them
 * into reconciles (see controller.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/httpd.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "controller/ctl_int.h"

/* HAProxy identity check: a reload or restart behind our back is noticed within this. */
#define PERIODIC_US (250 * USEC_PER_MS)

struct ctl_service *ctl_service_find(struct controller *c, const char *name)
{
	for (size_t i = 0; i < c->n_svcs; i++)
		if (strcmp(c->svcs[i].name, name) == 0)
			return &c->svcs[i];
	return NULL;
}

size_t ctl_name_lower_bound(const void *base, size_t n, size_t size, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp((const char *)base + mid * size, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Memory is kept sorted by name: reconciles look servers up once per server per round, and
 * pools hold thousands. */
static size_t mem_lower_bound(const struct ctl_service *s, const char *name)
{
	return ctl_name_lower_bound(s->mem, s->n_mem, sizeof(*s->mem), name);
}

struct ctl_srv_mem *ctl_mem_get(struct ctl_service *s, const char *name, bool create)
{
	size_t i = mem_lower_bound(s, name);
	if (i < s->n_mem && strcmp(s->mem[i].name, name) == 0)
		return &s->mem[i];
	if (!create)
		return NULL;
	s->mem = xgrow(s->mem, sizeof(*s->mem), &s->cap_mem, s->n_mem + 1);
	memmove(&s->mem[i + 1], &s->mem[i], (s->n_mem - i) * sizeof(*s->mem));
	s->n_mem++;
	struct ctl_srv_mem *m = &s->mem[i];
	memset(m, 0, sizeof(*m));
	snprintf(m->name, sizeof(m->name), "%s", name);
	ctl_feedback_init(&m->fb);
	return m;
}

void ctl_mem_forget(struct ctl_service *s, const char *name)
{
	struct ctl_srv_mem *m = ctl_mem_get(s, name, false);
	if (!m)
		return;
	size_t i = (size_t)(m - s->mem);
	memmove(&s->mem[i], &s->mem[i + 1], (s->n_mem - i - 1) * sizeof(*s->mem));
	s->n_mem--;
}

void ctl_mark_dirty(struct controller *c, const char *service, int64_t since_us)
{
	struct ctl_service *s = ctl_service_find(c, service);
	if (!s)
		return; /* registered, but not a configured service: no backend to fill */
	s->dirty = true;
	if (!s->dirty_since_us || since_us < s->dirty_since_us)
		s->dirty_since_us = since_us;
}

/* Every caller (first snapshot, full resync, reload, restart, new HAProxy identity, forced
 * sync) also wants HAProxy read afresh, not trusted from the cache. */
void ctl_mark_all_dirty(struct controller *c)
{
	for (size_t i = 0; i < c->n_svcs; i++) {
		c->svcs[i].dirty = true;
		c->svcs[i].cache_valid = false;
	}
}

static void service_release(struct ctl_service *s)
{
	free(s->mem);
	free(s->cache);
	ctl_stats_release(s);
}

/* An isolated change is applied at once; under a burst, rounds start at most once per
 * max_batch_delay and each takes everything that arrived meanwhile, so a burst costs a few
 * round trips, not one per event, and no change waits longer than max_batch_delay for its
 * round to start. */
void ctl_schedule_reconcile(struct controller *c)
{
	if (c->stopping || ev_is_active(&c->reconcile_timer))
		return;
	int64_t next = c->last_reconcile_start_us + c->cfg->controller.max_batch_delay_us - time_mono_us();
	ev_timer_set(&c->reconcile_timer, next > 0 ? (double)next / 1e6 : 0, 0);
	ev_timer_start(c->loop, &c->reconcile_timer);
}

void ctl_schedule_followup(struct controller *c)
{
	if (c->stopping || ev_is_active(&c->followup_timer))
		return;
	ev_timer_set(&c->followup_timer, (double)CTL_FOLLOWUP_US / 1e6, 0);
	ev_timer_start(c->loop, &c->followup_timer);
}

static void on_reconcile_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	ctl_reconcile_dirty(w->data);
}

static void on_followup_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	ctl_schedule_reconcile(w->data);
}

static void on_periodic_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct controller *c = w->data;
	int64_t now = time_mono_us();
	if (!ctl_check_ident(c) && c->cfg->haproxy.mode == HAP_MODE_MANAGED)
		ctl_managed_supervise(c);
	if (c->cfg->haproxy.mode == HAP_MODE_MANAGED)
		ctl_managed_refresh_config(c);
	if (now - c->last_full_resync_us >= c->cfg->controller.resync_interval_us) {
		c->last_full_resync_us = now;
		ctl_mark_all_dirty(c);
		ctl_schedule_reconcile(c);
	}
	ctl_metrics_refresh(c);
}

static void on_feedback_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	ctl_feedback_tick(w->data);
}

/* (Re)builds the service table from the configuration, keeping the memory of services that
 * stay (drain clocks, feedback). */
static void build_services(struct controller *c)
{
	struct ctl_service *next = xcalloc(c->cfg->n_services ? c->cfg->n_services : 1, sizeof(*next));
	for (size_t i = 0; i < c->cfg->n_services; i++) {
		const struct cfg_service *cs = &c->cfg->services[i];
		struct ctl_service *old = ctl_service_find(c, cs->name);
		if (old) {
			next[i] = *old;
			old->mem = NULL;
			old->cache = NULL;
			old->stats = NULL;
		} else {
			snprintf(next[i].name, sizeof(next[i].name), "%s", cs->name);
			next[i].be_id = -1;
		}
		next[i].cfg = cs;
		next[i].dirty = true;
	}
	for (size_t i = 0; i < c->n_svcs; i++) {
		if (!cfg_service_find(c->cfg, c->svcs[i].name))
			metrics_forget(c->m.reg, "service", c->svcs[i].name); /* no series for what is gone */
		service_release(&c->svcs[i]);
	}
	free(c->svcs);
	c->svcs = next;
	c->n_svcs = c->cfg->n_services;
}

static void init_timers(struct controller *c)
{
	ev_timer_init(&c->reconcile_timer, on_reconcile_timer, 0, 0);
	ev_timer_init(&c->followup_timer, on_followup_timer, 0, 0);
	ev_timer_init(&c->periodic_timer, on_periodic_timer, (double)PERIODIC_US / 1e6, (double)PERIODIC_US / 1e6);
	double fb = (double)c->cfg->controller.feedback_interval_us / 1e6;
	ev_timer_init(&c->feedback_timer, on_feedback_timer, fb, fb);
	c->reconcile_timer.data = c->followup_timer.data = c->periodic_timer.data = c->feedback_timer.data = c;
	ev_timer_start(c->loop, &c->periodic_timer);
	ctl_feedback_setup(c);
	if (c->cfg->controller.weight_feedback)
		ev_timer_start(c->loop, &c->feedback_timer);
}

static int setup_data_plane(struct controller *c, struct vxerr *err)
{
	const struct cfg_haproxy *h = &c->cfg->haproxy;
	c->runtime_socket = xstrdup(h->runtime_socket);
	if (h->mode == HAP_MODE_ATTACH) {
		c->owned = ctl_owned_load(h->state_dir, err);
		if (!c->owned)
			return -1;
		return 0;
	}
	if (ctl_managed_start(c, err) != 0)
		return -1;
	return ctl_jobs_init(c, err);
}

struct controller *ctl_new(struct ev_loop *loop, const struct ctl_opts *opts, struct vxerr *err)
{
	struct controller *c = xcalloc(1, sizeof(*c));
	c->loop = loop;
	c->cfg = opts->cfg;
	c->cfg_path = opts->cfg_path ? xstrdup(opts->cfg_path) : NULL;
	c->force = opts->force_first_sync;
	c->stop_haproxy_on_exit = opts->stop_haproxy_on_exit;
	srandom((unsigned)time_mono_ns());
	ctl_metrics_init(&c->m);
	build_services(c);
	init_timers(c);
	if (setup_data_plane(c, err) != 0)
		goto fail;
	if (c->cfg->controller.metrics && ctl_metrics_serve(c, c->cfg->controller.metrics, err) != 0)
		goto fail;
	if (ctl_registry_start(c, opts->etcd, err) != 0)
		goto fail;
	log_info("controller started", "mode=%s services=%zu runtime_socket=%s metrics=%s",
		 c->cfg->haproxy.mode == HAP_MODE_MANAGED ? "managed" : "attach", c->n_svcs, log_q(c->runtime_socket),
		 log_q(c->cfg->controller.metrics ? c->cfg->controller.metrics : "off"));
	return c;
fail:
	ctl_free(c);
	return NULL;
}

void ctl_config_swap(struct controller *c, struct vx_config *next)
{
	struct vx_config *old = c->cfg;
	c->cfg = next;
	build_services(c);
	ctl_registry_reconfigure(c, old);
	cfg_free(old);
	log_info("configuration reloaded", "file=%s services=%zu", log_q(c->cfg_path), c->n_svcs);
	ctl_schedule_reconcile(c);
}

/* Settings read at start only (docs/controller.md, SIGHUP): HAProxy keeps its sockets where
 * it started and its master re-reads haproxy.cfg from the same path on every reload, so a new
 * value would reload it onto sockets nobody answers on (issue 10 D5). */
static const struct restart_only {
	const char *name;
	size_t offset; /* of a char * in struct vx_config */
} restart_only[] = {
	{ "haproxy.state_dir", offsetof(struct vx_config, haproxy.state_dir) },
	{ "haproxy.runtime_socket", offsetof(struct vx_config, haproxy.runtime_socket) },
	{ "haproxy.master_socket", offsetof(struct vx_config, haproxy.master_socket) },
};

static bool same_str(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static void warn_kept(const char *name, const char *running, const char *configured)
{
	log_warn("restart-only setting changed, keeping the running value; restart the controller to apply",
		 "setting=%s running=%s configured=%s", name, log_q(running ? running : "(none)"),
		 log_q(configured ? configured : "(none)"));
}

static void keep_running_value(const char *name, const char *running, char **next)
{
	if (same_str(running, *next))
		return;
	warn_kept(name, running, *next);
	free(*next);
	*next = running ? xstrdup(running) : NULL;
}

static const char *mode_name(enum hap_mode m)
{
	return m == HAP_MODE_MANAGED ? "managed" : "attach";
}

/* next takes the running values of the restart-only settings, with a warning for each change. */
static void keep_restart_only(const struct vx_config *running, struct vx_config *next)
{
	if (running->haproxy.mode != next->haproxy.mode) {
		warn_kept("haproxy.mode", mode_name(running->haproxy.mode), mode_name(next->haproxy.mode));
		next->haproxy.mode = running->haproxy.mode;
	}
	for (size_t i = 0; i < sizeof(restart_only) / sizeof(restart_only[0]); i++) {
		const char *have = *(char *const *)(const void *)((const char *)running + restart_only[i].offset);
		char **want = (char **)(void *)((char *)next + restart_only[i].offset);
		keep_running_value(restart_only[i].name, have, want);
	}
}

void ctl_reload_config(struct controller *c)
{
	if (!c->cfg_path) {
		log_warn("configuration reload ignored", "reason=%s", log_q("no configuration file"));
		return;
	}
	if (ctl_job_busy(c)) { /* the job renders the running configuration: it must stay */
		log_info("configuration reload waits for HAProxy's current job", "file=%s", log_q(c->cfg_path));
		c->reload_pending = true;
		return;
	}
	struct cfg_diags d;
	cfg_diags_init(&d, 0);
	struct vx_config *next = cfg_load(c->cfg_path, &d);
	if (!next) {
		log_error("configuration reload failed, keeping the running one", "file=%s errors=%zu",
			  log_q(c->cfg_path), d.n_errors);
		cfg_diags_print(&d, stderr);
		cfg_diags_release(&d);
		return;
	}
	if (d.n_warnings)
		cfg_diags_print(&d, stderr); /* what `veltrix check` would say, in the controller's log */
	cfg_diags_release(&d);
	if (next->n_services == 0 && c->cfg->n_services > 0) {
		/* a guard like the panic threshold: one bad edit must not remove every frontend */
		log_error("configuration reload refused: it has no services and would remove every frontend",
			  "file=%s running_services=%zu hint=%s", log_q(c->cfg_path), c->cfg->n_services,
			  log_q("restart the controller with this file if that is what you want"));
		cfg_free(next);
		return;
	}
	keep_restart_only(c->cfg, next);
	/* A new structure reloads HAProxy first; the configuration changes when that worked
	 * (ctl_managed_done), and meanwhile registry changes keep flowing. */
	if (c->cfg->haproxy.mode == HAP_MODE_MANAGED && !ctl_services_structurally_equal(c->cfg, next)) {
		if (!ctl_job_start(c, CTL_JOB_RELOAD, next))
			cfg_free(next);
		return;
	}
	ctl_config_swap(c, next);
}

void ctl_force_sync(struct controller *c)
{
	log_warn("forced sync: the next reconcile ignores the panic threshold", "services=%zu", c->n_svcs);
	c->force = true;
	ctl_mark_all_dirty(c);
	ctl_schedule_reconcile(c);
}

void ctl_stop(struct controller *c)
{
	c->stopping = true;
	ev_timer_stop(c->loop, &c->reconcile_timer);
	ev_timer_stop(c->loop, &c->followup_timer);
	ev_timer_stop(c->loop, &c->periodic_timer);
	ev_timer_stop(c->loop, &c->feedback_timer);
	ev_idle_stop(c->loop, &c->feedback_step);
	ctl_registry_stop(c);
	ctl_jobs_stop(c);
	httpd_free(c->httpd);
	c->httpd = NULL;
	ctl_metrics_release(&c->m);
}

const char *ctl_runtime_socket(const struct controller *c)
{
	return c->runtime_socket;
}

bool ctl_haproxy_alive(struct controller *c)
{
	if (ctl_job_busy(c)) /* the worker may be reloading or starting it: c->proc is its own */
		return c->managed_running;
	return c->managed_running && hap_proc_running(&c->proc);
}

void ctl_free(struct controller *c)
{
	if (!c)
		return;
	if (!c->stopping)
		ctl_stop(c);
	ctl_rt_drop(c);
	if (c->cfg->haproxy.mode == HAP_MODE_MANAGED)
		ctl_managed_stop(c);
	ctl_jobs_free(c); /* after the stop: HAProxy started by the worker dies with its thread (tests, up) */
	ctl_owned_free(c->owned);
	for (size_t i = 0; i < c->n_svcs; i++)
		service_release(&c->svcs[i]);
	free(c->svcs);
	free(c->runtime_socket);
	free(c->cfg_path);
	cfg_free(c->cfg);
	free(c);
}
