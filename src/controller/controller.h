/* The controller: keeps HAProxy's server pools equal to what is registered in etcd, healthy and
 * able to take traffic (docs/controller.md).
 *
 * Registry side: a snapshot of every instance at one revision, then a watch from the next;
 * compaction, cancelled or stalled watches and revisions going backwards trigger a re-list.
 * Data-plane side: events only mark services dirty; a reconcile reads HAProxy's actual state
 * (`show servers state`, `show stat`), computes the desired state (registry x config x
 * statistics feedback), diffs them (diff.h, pure) and sends the operations pipelined on one
 * Runtime API connection. Level-triggered: missed events, restarts, reloads and external edits
 * all heal the same way. Fail-static: without a registry view nothing is removed; with one, the
 * panic threshold limits removals.
 *
 * The controller runs on a libev loop it does not own (the default loop: `veltrix controller`
 * and `veltrix up` share this code). Signals are the caller's business: it calls
 * ctl_reload_config (SIGHUP), ctl_force_sync (SIGUSR1) and ctl_stop (SIGTERM/SIGINT). */
#ifndef VX_CONTROLLER_CONTROLLER_H
#define VX_CONTROLLER_CONTROLLER_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"
#include "config/config.h"
#include "registry/etcd.h"

struct ev_loop;
struct controller;

struct ctl_opts {
	struct vx_config *cfg;          /* taken over by the controller */
	const char *cfg_path;           /* re-read on ctl_reload_config; NULL: no file */
	const struct etcd_opts *etcd;   /* copied by the etcd client */
	bool force_first_sync;          /* the first reconcile ignores the panic threshold */
	bool stop_haproxy_on_exit;      /* managed mode: stop HAProxy in ctl_free (veltrix up) */
};

/* Prepares everything and, in managed mode, renders the configuration and starts (or adopts)
 * HAProxy. Then the loop drives the rest. */
struct controller *ctl_new(struct ev_loop *loop, const struct ctl_opts *opts, struct vxerr *err);
/* Re-reads the configuration file; a change of services re-renders and reloads HAProxy
 * (managed mode). An invalid file is logged and the running configuration kept. */
void ctl_reload_config(struct controller *c);
/* The next reconcile of every service ignores the panic threshold (an operator's "yes"). */
void ctl_force_sync(struct controller *c);
/* Stops watching and reconciling; the caller then ends its loop. HAProxy keeps serving. */
void ctl_stop(struct controller *c);
void ctl_free(struct controller *c);

/* <haproxy.state_dir>/controller.pid, locked for as long as the controller runs (ctl_pidfile.c):
 * acquire before ctl_new (fails when another controller holds the directory; returns the fd),
 * release at exit. holder: the pid of the running controller, 0 when none runs. */
int ctl_pidfile_acquire(const struct vx_config *cfg, struct vxerr *err);
void ctl_pidfile_release(const struct vx_config *cfg, int fd);
pid_t ctl_pidfile_holder(const struct vx_config *cfg);

/* For `veltrix up` and the tests: where HAProxy's admin socket is. */
const char *ctl_runtime_socket(const struct controller *c);
/* Managed mode: true while the HAProxy master the controller started or adopted runs. */
bool ctl_haproxy_alive(struct controller *c);

#endif
