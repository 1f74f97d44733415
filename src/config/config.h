/* The Veltrix configuration: one YAML file, sections etcd, haproxy, controller, agent, services.
 *
 * This header is the face of src/config: the typed structs every component reads, and the
 * loader. The schema (key path, type, default, bounds, doc) is a table in schema.c; docs and
 * `veltrix check` come from the same rows. All durations are microseconds (int64_t, _us).
 * A loaded config is immutable; components keep pointers into it while it lives. */
#ifndef VX_CONFIG_CONFIG_H
#define VX_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/net.h"

enum hap_mode { HAP_MODE_MANAGED, HAP_MODE_ATTACH };
enum svc_mode { SVC_MODE_HTTP, SVC_MODE_TCP };
/* Only the algorithms HAProxy 2.6 can add servers to at runtime. */
enum svc_balance { BAL_ROUNDROBIN, BAL_LEASTCONN, BAL_FIRST, BAL_RANDOM };
enum http_reuse { REUSE_NEVER, REUSE_SAFE, REUSE_AGGRESSIVE, REUSE_ALWAYS };
enum check_type { CHECK_TCP, CHECK_HTTP, CHECK_NONE };

struct cfg_etcd {
	char **endpoints; /* URLs; none means "start a local etcd" (veltrix up) */
	size_t n_endpoints;
	char *prefix;     /* default "/veltrix" */
	int64_t dial_timeout_us;
	int64_t request_timeout_us;
	int64_t watch_stall_us; /* no event or progress notification for this long: resync */
	char *data_dir;         /* where `veltrix up` keeps a local etcd's data */
	struct {
		char *ca, *cert, *key;
	} tls;
	struct {
		char *user, *password_file;
	} auth;
};

struct cfg_haproxy {
	enum hap_mode mode;
	char *binary;         /* default "haproxy" (PATH) */
	char *state_dir;      /* managed: rendered config, sockets, state file, logs */
	char *runtime_socket; /* admin-level stats socket (managed: <state_dir>/runtime.sock) */
	char *master_socket;  /* master CLI (managed: <state_dir>/master.sock) */
	int64_t maxconn;      /* global maxconn */
	int nbthread;
	char *stats_bind;     /* optional "host:port" for HAProxy's stats page */
};

struct cfg_controller {
	int64_t max_batch_delay_us;
	int64_t resync_interval_us;
	double panic_threshold; /* fraction of a pool that may be removed at once, default 0.5 */
	char *metrics;          /* "host:port" for /metrics and /healthz, NULL = off */
	bool weight_feedback;   /* HAProxy stats feed back into weights */
	int64_t feedback_interval_us;
};

struct cfg_agent {
	int64_t ttl_us;         /* lease TTL, >= 2s */
	int64_t load_report_interval_us;
};

struct cfg_health {
	enum check_type type;
	char *path; /* http checks */
	int64_t interval_us;
	int64_t timeout_us;
	int rise;
	int fall;
};

struct cfg_timeouts {
	int64_t connect_us, client_us, server_us, queue_us;
};

struct cfg_service {
	char *name;
	char bind_host[NET_IP_MAX];
	uint16_t bind_port;
	enum svc_mode mode;
	enum svc_balance balance;
	struct cfg_health health;
	struct cfg_timeouts timeouts;
	int retries;
	int64_t drain_timeout_us;
	int64_t default_capacity;
	enum http_reuse http_reuse;
	struct cidr *allow; /* empty: any address */
	size_t n_allow;
	int64_t maxconn; /* frontend maxconn; 0 = HAProxy's default */
	int64_t backlog; /* listen backlog; 0 = HAProxy's default (maxconn) */
	struct {
		int64_t peak_rps;         /* 0 = not declared */
		int64_t peak_concurrency; /* 0 = not declared */
	} expect;
};

struct vx_config {
	char *path; /* file it was loaded from, or NULL for defaults */
	struct cfg_etcd etcd;
	struct cfg_haproxy haproxy;
	struct cfg_controller controller;
	struct cfg_agent agent;
	struct cfg_service *services;
	size_t n_services;
	struct cfg_positions *positions; /* private: source line/column per key path */
};

#endif
