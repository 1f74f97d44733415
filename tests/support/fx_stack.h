/* A whole Veltrix stack for controller tests: a real etcd, `veltrix testserver` backends, a
 * configuration file, and `veltrix controller` as a process, which starts (managed mode) or
 * drives (attach mode) a real HAProxy.
 *
 * The HAProxy a managed controller starts is not our child and outlives the controller on
 * purpose, so the fixture finds its master through the master socket (`show proc`) and stops
 * it (its whole process group: the workers too) in fx_stack_stop, at exit, on SIGTERM/SIGINT/
 * SIGALRM (fx_track), and through a reaper process that kills it when the test process dies
 * in any other way (SIGKILL, a sanitizer's _exit). Setup errors fail the test program. */
#ifndef VX_TESTS_FX_STACK_H
#define VX_TESTS_FX_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "fx.h"
#include "fx_load.h"

struct fx_proxy;

#define FX_STACK_MAX_SERVICES 12
#define FX_STACK_MAX_BACKENDS 8
#define FX_STACK_WAIT_MS 15000 /* default bound of every wait below */

struct fx_stack_service {
	const char *name;
	const char *yaml; /* extra lines for this service, each indented by 4 spaces; may be NULL */
	int port;         /* the frontend port (filled in by the fixture) */
};

struct fx_stack_opts {
	int n_backends;                  /* testservers b0, b1, ... (instance names "b<i>") */
	const char *const *backend_args; /* extra testserver arguments, NULL-terminated, may be NULL */
	const char *controller_yaml;     /* extra lines under `controller:` (2-space indent) */
	const char *haproxy_yaml;        /* extra lines under `haproxy:` (2-space indent; an `nbthread:` here
	                                  * replaces the default of 1) */
	bool etcd_via_proxy;             /* the controller reaches etcd through an fx_proxy */
	/* attach mode: the user's HAProxy and its admin socket (managed mode when NULL) */
	const char *attach_runtime_socket;
};

struct fx_stack {
	struct fx_stack_opts opts;
	struct fx_etcd etcd;
	struct fx_proxy *proxy; /* when opts.etcd_via_proxy */
	struct fx_testserver ts[FX_STACK_MAX_BACKENDS];
	int n_ts;
	struct fx_stack_service svcs[FX_STACK_MAX_SERVICES];
	int n_svcs;
	char *dir, *cfg_path, *state_dir, *runtime_sock, *master_sock, *ctl_log;
	char metrics_url[64]; /* http://127.0.0.1:<port> */
	pid_t ctl_pid;
	pid_t hap_master; /* managed mode, once known */
};

/* Starts etcd and the backends, writes the configuration for svcs[0..n), starts the controller
 * and waits until it has a registry snapshot and HAProxy answers. */
void fx_stack_start(struct fx_stack *s, const struct fx_stack_opts *o, const struct fx_stack_service *svcs,
		    int n);
/* Stops the controller, HAProxy (managed), the backends and etcd; frees everything. */
void fx_stack_stop(struct fx_stack *s);

/* Rewrites the configuration file (after a change to s->svcs / s->n_svcs). */
void fx_stack_write_config(struct fx_stack *s);
/* Adds a service (a free frontend port) and rewrites the configuration; returns its index. */
int fx_stack_add_service(struct fx_stack *s, const char *name, const char *yaml);
/* The frontend URL of service name: http://127.0.0.1:<port>/ (static storage, per call). */
const char *fx_stack_url(const struct fx_stack *s, const char *name);

/* The controller process. start waits for /healthz 200 unless wait_healthy is false (etcd
 * down); kill sends sig and, for terminating signals, waits for the exit. */
void fx_stack_controller_start(struct fx_stack *s, bool wait_healthy);
int fx_stack_controller_kill(struct fx_stack *s, int sig);
/* fx_stack_controller_start (waiting for /healthz 200) that returns false, with the log on
 * stderr, when the controller exits or is not ready within timeout_ms. */
bool fx_stack_controller_try_start(struct fx_stack *s, int timeout_ms);
/* The controller's log so far (caller frees), and how often text occurs in it. */
char *fx_stack_log(const struct fx_stack *s);
int fx_stack_log_count(const struct fx_stack *s, const char *text);

/* Managed mode: SIGKILL to HAProxy's master and workers (a crash); and tracking the master the
 * controller started (again), found through the master socket. */
void fx_stack_haproxy_kill(struct fx_stack *s);
void fx_stack_track_haproxy(struct fx_stack *s);
/* The same for an HAProxy master found by other means (the fleet fixture's controllers): tracked
 * (fx_track and the reaper) until fx_haproxy_master_stop stops it with its workers. */
void fx_haproxy_master_track(pid_t master);
void fx_haproxy_master_stop(pid_t master);

/* Registry writes through etcd's gateway (s->etcd directly, never through the proxy). */
void fx_stack_put(struct fx_stack *s, const char *service, const char *instance, const char *json);
/* Raw key bytes (may hold ';', newline, NUL) and value. */
void fx_stack_put_raw(struct fx_stack *s, const char *key, size_t key_len, const char *value);
void fx_stack_del(struct fx_stack *s, const char *service, const char *instance);
/* Deletes several instances of one service in one transaction (one revision). */
void fx_stack_del_many(struct fx_stack *s, const char *service, const char *const *instances, int n);
/* The current revision; a compaction up to it (physical). */
long long fx_stack_revision(struct fx_stack *s);
void fx_stack_compact(struct fx_stack *s, long long revision);
/* {"address":"127.0.0.1","port":<backend i's port>[,<extra>]} (static storage, per call). */
const char *fx_stack_value(const struct fx_stack *s, int backend, const char *extra);

/* One server of a backend as HAProxy reports it. */
struct fx_srv {
	char name[72];
	char addr[64];
	int port;
	int admin;   /* enum hap_admin: 0 ready, 1 drain, 2 maint */
	int weight;  /* user weight */
	int maxconn; /* 0 when unlimited */
	int scur;
	char status[16]; /* show stat status: UP, DOWN, MAINT, DRAIN, no ... */
};
/* The servers of backend `service` sorted by name; returns the count, or -1 when HAProxy did
 * not answer or has no such backend. */
int fx_stack_servers(const struct fx_stack *s, const char *service, struct fx_srv *out, int max);
/* "a,b,c": the server names of the backend sorted, or "?" when unreadable (static storage). */
const char *fx_stack_names(const struct fx_stack *s, const char *service);
/* Waits until fx_stack_names equals names; false after timeout_ms. */
bool fx_stack_wait_names(const struct fx_stack *s, const char *service, const char *names, int timeout_ms);
/* Waits until the backend holds exactly names and each of them takes traffic (its checks
 * passed, or it has none): a new server starts down until `rise` checks pass. */
bool fx_stack_wait_serving(const struct fx_stack *s, const char *service, const char *names, int timeout_ms);
/* A runtime API command on the stack's socket (caller frees; NULL when no answer). */
char *fx_stack_hap(const struct fx_stack *s, const char *cmd);
/* The pid of HAProxy's current worker, and the master's reload count (-1 when unknown). */
long long fx_stack_worker_pid(const struct fx_stack *s);
int fx_stack_reloads(const struct fx_stack *s);

/* A sample from the controller's /metrics: the line whose series is exactly `series` (name
 * and labels as rendered, e.g. veltrix_watch_resyncs_total{reason="compacted"}); -1 when
 * absent or the endpoint does not answer. */
double fx_stack_metric(const struct fx_stack *s, const char *series);
/* GET /healthz: the status, and the body in *body (may be NULL; caller frees). */
long fx_stack_healthz(const struct fx_stack *s, char **body);

/* GET url; returns the status and copies the X-Served-By header into served_by[cap] ("" if
 * none). */
long fx_stack_get(const char *url, char *served_by, size_t cap);

#endif
