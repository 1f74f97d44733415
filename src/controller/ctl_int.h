/* The controller's private state, shared by its files: controller.c (lifecycle, timers),
 * ctl_registry.c (snapshot + watch), ctl_reconcile.c (HAProxy side), ctl_managed.c (rendering,
 * starting and reloading HAProxy), ctl_owned.c (attach-mode ownership), ctl_metrics.c. */
#ifndef VX_CONTROLLER_CTL_INT_H
#define VX_CONTROLLER_CTL_INT_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/metrics.h"
#include "controller/controller.h"
#include "controller/diff.h"
#include "controller/weights.h"
#include "haproxy/hap.h"
#include "registry/etcd.h"
#include "registry/reg.h"

#define CTL_FOLLOWUP_US (200 * 1000) /* drains in progress and retried deletes are looked at again */
#define CTL_BATCH_MAX 512            /* commands per pipelined write */
#define CTL_CONFIG_REFRESH_US (1000 * 1000)
/* What the controller remembers about one server between reconciles. */
struct ctl_srv_mem {
	char name[CTL_NAME_MAX];
	int64_t drain_started_us;
	struct ctl_feedback fb;
	bool seen; /* present in HAProxy in the current round */
};

/* What a reconcile needs from one server's `show stat` row (ctl_stats.c). */
struct ctl_stat {
	char name[CTL_NAME_MAX];
	int maxconn;  /* slim; 0 = unlimited */
	int sessions; /* scur */
	bool check_down;
};

struct ctl_service {
	char name[REG_SERVICE_MAX + 1];
	const struct cfg_service *cfg; /* points into controller.cfg */
	bool dirty;
	int64_t dirty_since_us;        /* the oldest registry change not yet applied (0: none) */
	struct ctl_srv_mem *mem;       /* sorted by name */
	size_t n_mem, cap_mem;
	struct ctl_stat *stats;        /* the last `show stat` of the backend, sorted by name */
	size_t n_stats;
	int64_t stats_at_us;           /* when it was read; 0: never, or outdated by an operation */
	size_t held_back;              /* servers the panic threshold keeps */
	size_t conflicts;              /* instance names taken by servers Veltrix does not own */
	bool panic;
	int64_t be_id;                 /* HAProxy's id for the backend, -1 unknown */
	bool unreadable;               /* the last `show servers state` of it failed (no such backend) */
	/* HAProxy's servers as last read, with every operation since applied: what a round diffs
	 * against, so that a registry change costs round trips for the changed servers only. Read
	 * afresh (`show servers state` + `show stat`) when it may be wrong: at start, after a
	 * reload, restart, refused command or lost connection, at every full resync, and while the
	 * panic threshold holds. */
	struct ctl_have *cache;        /* sorted by name */
	size_t n_cache, cap_cache;
	bool cache_valid;
	int64_t next_id;               /* the server id the next added server gets (0: not known) */
};

struct ctl_owned; /* attach mode: servers this controller added */
struct ctl_jobs;  /* managed mode: the off-loop worker (ctl_job.c) */

enum ctl_job_kind {
	CTL_JOB_REFRESH, /* haproxy.cfg rewritten with the servers HAProxy holds */
	CTL_JOB_RELOAD,  /* a new structure: render with the current servers, check, reload */
	CTL_JOB_RESTART, /* HAProxy is gone: render, check, start */
};

/* Servers grouped per backend, for a rendering (managed mode). */
struct ctl_pools {
	struct hap_pool *pools;
	struct hap_server *servers;
	size_t n_pools;
};

/* One job of the worker (ctl_job.c runs its steps; ctl_managed.c says what they do). */
struct ctl_job {
	enum ctl_job_kind kind;
	const struct vx_config *cfg; /* what is rendered: next, or c->cfg */
	struct vx_config *next;      /* a reload's new configuration, the job's until it is done */
	char *candidate;             /* the rendering, written by the prepare step */
	char *skeleton;              /* the same without servers, installed with it */
	int rc;
	struct vxerr err;
};

struct ctl_metrics {
	struct metrics *reg;
	struct metric_family *apply_seconds, *reconcile_seconds, *ops_total, *op_errors_total;
	struct metric_family *rejected, *rejections_total, *staleness, *reloads_total, *restarts_total, *runtime_up;
	struct metric_family *resyncs_total;
	struct metric_family *held_back, *servers, *revision;
};

struct controller {
	struct ev_loop *loop;
	struct vx_config *cfg;
	char *cfg_path;
	bool stop_haproxy_on_exit;
	bool stopping;

	/* registry */
	struct etcd_client *etcd;
	struct etcd_watch *watch;
	struct reg_view *view;
	struct reg_allow *allow; /* policy rows, one per configured service */
	bool have_snapshot;
	bool listing;
	bool registry_up;
	int64_t registry_down_since_us;
	int64_t relist_backoff_us;
	ev_timer relist_timer;

	/* data plane */
	char *runtime_socket;
	struct hap_rt *rt;
	/* HAProxy stopped answering (0: it answers): the loop then only probes it, with a short
	 * bound and a growing pause, so a hung HAProxy cannot take the loop (issue 10 D9). */
	int64_t rt_down_since_us;
	int64_t rt_next_probe_us;
	int64_t rt_backoff_us;
	bool rt_down_logged;
	bool have_ident;
	struct hap_ident ident;
	struct hap_proc proc;
	bool managed_running;
	int hap_restart_failures;  /* managed: failed starts since HAProxy was last seen running */
	int64_t hap_restart_at_us; /* managed: no new start attempt before this */
	/* managed: the servers the dead HAProxy had, as the cache knew them, taken on the loop for
	 * the restart job to render (the job's while it runs) */
	struct ctl_pools restart_carry;
	struct ctl_owned *owned;
	struct ctl_jobs *jobs;
	bool reload_pending;          /* SIGHUP while a job ran: reload when it is done */
	struct ctl_service *svcs;
	size_t n_svcs;
	bool force;
	int64_t last_reconcile_start_us;
	int64_t last_full_resync_us;
	bool membership_changed;      /* servers added, moved or removed since haproxy.cfg was written */
	int64_t config_written_us;     /* when the last refresh started */
	int64_t refresh_took_us;       /* how long it took: the next waits ten times that at least */
	ev_timer reconcile_timer;
	ev_timer periodic_timer; /* full resync and HAProxy identity */
	ev_timer feedback_timer;
	ev_idle feedback_step;   /* the statistics of one backend per loop iteration */
	size_t feedback_next;
	ev_timer followup_timer;

	struct ctl_metrics m;
	struct httpd *httpd;
};

/* controller.c */
/* In an array of n structs of `size` bytes that start with their name, sorted by it: the index
 * of the first one not below name. */
size_t ctl_name_lower_bound(const void *base, size_t n, size_t size, const char *name);
struct ctl_service *ctl_service_find(struct controller *c, const char *name);
struct ctl_srv_mem *ctl_mem_get(struct ctl_service *s, const char *server, bool create);
void ctl_mem_forget(struct ctl_service *s, const char *server);
void ctl_mark_dirty(struct controller *c, const char *service, int64_t since_us);
void ctl_mark_all_dirty(struct controller *c);
void ctl_schedule_reconcile(struct controller *c);
void ctl_schedule_followup(struct controller *c);

/* ctl_registry.c */
int ctl_registry_start(struct controller *c, const struct etcd_opts *opts, struct vxerr *err);
void ctl_registry_stop(struct controller *c);
void ctl_registry_set_policy(struct controller *c);
void ctl_registry_restart(struct controller *c);
/* After a configuration reload (c->cfg is the new one): a fresh view and snapshot only when
 * the prefix or an allow-list changed; otherwise the view, and the service of a new service
 * already registered, are there at once. */
void ctl_registry_reconfigure(struct controller *c, const struct vx_config *old);
double ctl_registry_staleness_s(const struct controller *c);

/* ctl_reconcile.c */
void ctl_reconcile_dirty(struct controller *c);
/* Copies sessions, maxconn and check verdicts from the service's last `show stat` into its cache. */
void ctl_cache_take_stats(struct ctl_service *s);
/* A runtime connection in c->rt, or -1 with why. While HAProxy is down, fails at once between
 * probes; a probe waits CTL_RT_PROBE_US at most. */
int ctl_rt_ensure(struct controller *c, struct vxerr *err);
/* Closes the connection of an HAProxy that was (re)started or reloaded: the next call asks at once. */
void ctl_rt_drop(struct controller *c);
/* Closes the connection after an exchange failed: HAProxy is down until a probe answers, and
 * the pause before the next probe grows. Without a connection while down: nothing new failed. */
void ctl_rt_failed(struct controller *c);
/* HAProxy has not answered for long enough to say so on /healthz. */
bool ctl_rt_unresponsive(const struct controller *c);
void ctl_feedback_setup(struct controller *c);
/* Starts a pass over every backend's statistics, one backend per loop iteration. */
void ctl_feedback_tick(struct controller *c);
/* Returns false when HAProxy did not answer. */
bool ctl_check_ident(struct controller *c);

/* Installs a new configuration (after its reload, if it needed one). */
void ctl_config_swap(struct controller *c, struct vx_config *next);

/* ctl_job.c */
int ctl_jobs_init(struct controller *c, struct vxerr *err);
/* False when a job runs already (or the controller stops); next is then still the caller's. */
bool ctl_job_start(struct controller *c, enum ctl_job_kind kind, struct vx_config *next);
bool ctl_job_busy(const struct controller *c);
void ctl_jobs_stop(struct controller *c);
void ctl_jobs_free(struct controller *c);

/* ctl_managed.c */
int ctl_managed_start(struct controller *c, struct vxerr *err);
/* The steps of a job: prepare and apply run on the worker thread (they touch only the job,
 * c->proc and files, and read the configuration), install and done on the loop. */
int ctl_managed_prepare(struct controller *c, struct ctl_job *j);
int ctl_managed_install(struct controller *c, struct ctl_job *j);
int ctl_managed_apply(struct controller *c, struct ctl_job *j);
void ctl_managed_done(struct controller *c, struct ctl_job *j);
void ctl_managed_discard(struct controller *c, struct ctl_job *j);
bool ctl_services_structurally_equal(const struct vx_config *a, const struct vx_config *b);
/* Every second: HAProxy's process gone (a crash, a kill) -> start it again; the reconcile
 * that follows puts every server back. */
void ctl_managed_supervise(struct controller *c);
void ctl_managed_stop(struct controller *c);
/* At most once per CTL_CONFIG_REFRESH_US (or ten times the last refresh's duration), after
 * servers were added, moved or removed: rewrites
 * haproxy.cfg with the servers HAProxy holds, so a reload nobody told us about (an operator, a
 * package upgrade) starts with the current pools instead of empty ones. */
void ctl_managed_refresh_config(struct controller *c);

/* ctl_stats.c */
/* The server rows of `backend` in st, sorted by name (*out: caller frees); returns the count. */
size_t ctl_stats_extract(const struct hap_stats *st, const char *backend, struct ctl_stat **out);
const struct ctl_stat *ctl_stats_lookup(const struct ctl_stat *v, size_t n, const char *name);
/* Replaces the service's cached statistics with its rows of st, read at now. */
void ctl_stats_store(struct ctl_service *s, const struct hap_stats *st, int64_t now);
void ctl_stats_release(struct ctl_service *s);

/* ctl_owned.c */
struct ctl_owned *ctl_owned_load(const char *state_dir, struct vxerr *err);
bool ctl_owned_has(const struct ctl_owned *o, const char *backend, const char *server);
void ctl_owned_set(struct ctl_owned *o, const char *backend, const char *server, bool owned);
/* Forgets the servers of backend that HAProxy no longer has (present() says which it has): a
 * reload of the user's HAProxy drops every dynamic server, and a name once ours must not make
 * a server the user configures later look like ours. */
void ctl_owned_prune(struct ctl_owned *o, const char *backend, bool (*present)(const void *ud, const char *server),
		     const void *ud);
int ctl_owned_save(struct ctl_owned *o, struct vxerr *err);
void ctl_owned_free(struct ctl_owned *o);

/* ctl_metrics.c */
void ctl_metrics_init(struct ctl_metrics *m);
void ctl_metrics_release(struct ctl_metrics *m);
int ctl_metrics_serve(struct controller *c, const char *hostport, struct vxerr *err);
void ctl_metrics_refresh(struct controller *c);

#endif
