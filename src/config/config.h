/* The Veltrix configuration: one YAML file, sections etcd, haproxy, controller, agent, services.
 *
 * This header is the face of src/config: the typed structs every component reads, the loader,
 * the diagnostics list it reports into, the schema rows, and the lint that checks a loaded
 * configuration against the machine. The schema (key path, type, default, bounds, doc) is a
 * table in schema.c; parsing, defaults, docs/config.md and "did you mean" all come from its
 * rows. All durations are microseconds (int64_t, _us).
 * A loaded config is immutable; components keep pointers into it while it lives. */
#ifndef VX_CONFIG_CONFIG_H
#define VX_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

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
		char *ca, *cert, *key; /* NULL when not set */
	} tls;
	struct {
		char *user, *password_file; /* NULL when not set */
	} auth;
};

struct cfg_haproxy {
	enum hap_mode mode;
	char *binary;         /* default "haproxy" (PATH) */
	char *state_dir;      /* managed: rendered config, sockets, state file, logs */
	char *runtime_socket; /* admin-level stats socket (managed default: <state_dir>/runtime.sock) */
	char *master_socket;  /* master CLI (managed default: <state_dir>/master.sock; attach: may be NULL) */
	int64_t maxconn;      /* global maxconn */
	int nbthread;         /* 0: HAProxy's default (one per CPU) */
	int64_t bufsize;      /* tune.bufsize in bytes */
	char *stats_bind;     /* optional "host:port" for HAProxy's stats page, NULL = off */
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
	char *shared_lease;     /* a directory: one lease for the host's agents; NULL: one each */
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
	char bind_host[NET_IP_MAX]; /* canonical IP literal, or "" for all addresses */
	uint16_t bind_port;
	enum svc_mode mode;
	enum svc_balance balance;
	struct cfg_health health;
	struct cfg_timeouts timeouts;
	int retries;
	bool redispatch; /* retry the last attempt on another server */
	int64_t drain_timeout_us;
	int64_t default_capacity;
	enum http_reuse http_reuse;
	struct cidr *allow; /* empty: any address */
	size_t n_allow;
	int64_t maxconn; /* frontend maxconn; 0 = HAProxy's default (the global maxconn) */
	int64_t backlog; /* listen backlog; 0 = HAProxy's default (the frontend maxconn) */
	struct {
		int64_t peak_rps;         /* 0 = not declared */
		int64_t peak_concurrency; /* 0 = not declared */
		int64_t servers;          /* backend servers you plan to run; 0 = not declared */
	} expect;
};

struct cfg_positions;

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

/* ---- Diagnostics ------------------------------------------------------------------------
 * One finding: `FILE:LINE:COL: error|warning: KEY.PATH: message; hint`. line/col are 1-based,
 * 0 when the finding has no place in the file (a missing file, a default value). */
enum cfg_severity { CFG_SEV_ERROR, CFG_SEV_WARNING };

struct cfg_diag {
	enum cfg_severity severity;
	char *file;    /* may be NULL */
	int line, col;
	char *path;    /* key path such as "services[0].health.timeout", or NULL */
	char *message; /* what is wrong */
	char *hint;    /* what to write instead, or NULL */
	const char *rule; /* lint rule id (static), or NULL for validation findings */
};

#define CFG_DIAGS_CAP 50

/* A capped list: after `cap` findings the rest are only counted (n_omitted), but every
 * finding counts toward n_errors / n_warnings. */
struct cfg_diags {
	struct cfg_diag *items;
	size_t n, alloc;
	size_t cap;
	size_t n_omitted;
	size_t n_errors, n_warnings;
};

/* cap 0 means CFG_DIAGS_CAP. */
void cfg_diags_init(struct cfg_diags *d, size_t cap);
void cfg_diags_release(struct cfg_diags *d);
/* Adds a finding; file, path and hint may be NULL; the strings are copied. */
void cfg_diags_add(struct cfg_diags *d, enum cfg_severity sev, const char *file, int line, int col,
		   const char *path, const char *rule, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 9, 10)));
/* Orders the findings by line and column (stable), so output reads top to bottom. */
void cfg_diags_sort(struct cfg_diags *d);
/* One line per finding, then "... N more findings not shown" when capped. */
void cfg_diags_print(const struct cfg_diags *d, FILE *out);
/* "2 errors, 1 warning" into out. */
void cfg_diags_summary(const struct cfg_diags *d, char *out, size_t cap);
/* The findings as a JSON array (shape documented in docs/config.md); caller frees. */
char *cfg_diags_to_json(const struct cfg_diags *d);

/* ---- Loading ---------------------------------------------------------------------------- */
#define CFG_MAX_FILE_BYTES (1024 * 1024) /* larger files are refused before parsing */
#define CFG_MAX_DEPTH 16                 /* YAML nesting levels */
#define CFG_MAX_NODES 100000             /* YAML values in one file */

/* Loads and validates a file. Every problem found goes into d (errors and warnings); returns
 * the config when there was no error (warnings allowed), NULL otherwise. d must be initialised. */
struct vx_config *cfg_load(const char *path, struct cfg_diags *d);
/* Same, from memory; name is used in diagnostics. data need not be NUL-terminated. */
struct vx_config *cfg_load_buffer(const char *name, const char *data, size_t len, struct cfg_diags *d);
/* No file: no services, every default set. Never fails. */
struct vx_config *cfg_default(void);
void cfg_free(struct vx_config *cfg);

const struct cfg_service *cfg_service_find(const struct vx_config *cfg, const char *name);
/* Where a key path ("services[1].bind") was written; falls back to the nearest enclosing
 * key that was written ("services[1]", then "services"). false when none was. */
bool cfg_key_pos(const struct vx_config *cfg, const char *path, int *line, int *col);
/* True when the key path itself was written in the file (not defaulted). */
bool cfg_key_given(const struct vx_config *cfg, const char *path);

/* Which file a command should read: flag_path (-c FILE) when given, else $VELTRIX_CONFIG
 * when set and not empty, else "./veltrix.yaml". *explicit_out (may be NULL) is false only
 * for the last case, so a command that can run on flags alone may use cfg_default() when that
 * implicit file does not exist. The result is flag_path, the environment string or a literal. */
const char *cfg_path_resolve(const char *flag_path, bool *explicit_out);
/* cfg_path_resolve + cfg_load; when the file was not named explicitly and does not exist,
 * returns cfg_default() without a finding. */
struct vx_config *cfg_load_resolved(const char *flag_path, struct cfg_diags *d);

/* ---- Schema rows ------------------------------------------------------------------------ */
enum cfg_type {
	CFG_T_SECTION,  /* a mapping of further keys */
	CFG_T_SERVICES, /* a list of service mappings */
	CFG_T_STR,
	CFG_T_INT,
	CFG_T_DUR,      /* "250ms", "2s", "1m" */
	CFG_T_SIZE,     /* "16KiB", "1MiB" */
	CFG_T_PCT,      /* "50%" */
	CFG_T_BOOL,
	CFG_T_ENUM,
	CFG_T_HOSTPORT, /* "host:port", kept as text */
	CFG_T_LISTEN,   /* "ip:port" / "*:port" a service binds */
	CFG_T_URLS,     /* list of http(s) URLs */
	CFG_T_CIDRS,    /* list of CIDRs */
};

enum cfg_scope { CFG_SCOPE_ROOT, CFG_SCOPE_SERVICE };

enum { CFG_F_REQUIRED = 1 };

struct cfg_key {
	const char *path;  /* "etcd.endpoints", "services[].health.interval" */
	enum cfg_type type;
	const char *def;   /* default as written in YAML, NULL = unset / empty */
	const char *def_doc; /* how the default reads in docs when it is derived, or NULL */
	int64_t min, max;  /* int: value; dur: us; size: bytes; pct: whole percent */
	const char *const *choices; /* enum: NULL-terminated names, index = enum value */
	const char *why;   /* enum: why only these values (shown when another is written) */
	enum cfg_scope scope;
	size_t off, size, off2; /* where the value lives; off2: list counts, listen port */
	unsigned flags;
	const char *doc;   /* one line */
};

extern const struct cfg_key cfg_schema[];
extern const size_t cfg_schema_len;
const char *cfg_type_name(enum cfg_type t);

/* Markdown tables of every key and every lint rule (the generated part of docs/config.md). */
void cfg_schema_markdown(FILE *out);

/* ---- Lint against the machine --------------------------------------------------------------
 * Facts about this machine that decide whether a configuration survives load. Read from /proc
 * and getrlimit by cfg_sysfacts_read; tests fill them in by hand. A value < 0 means unknown,
 * and rules that need it stay silent. */
struct cfg_sysfacts {
	int64_t port_lo, port_hi; /* net.ipv4.ip_local_port_range */
	int64_t somaxconn;        /* net.core.somaxconn */
	int64_t nofile_soft, nofile_hard; /* RLIMIT_NOFILE */
	int64_t fin_timeout_s;    /* net.ipv4.tcp_fin_timeout (FIN-WAIT-2, not TIME_WAIT) */
	int64_t tw_reuse;         /* net.ipv4.tcp_tw_reuse: 0 off, 1 all, 2 loopback only */
};

#define CFG_TIME_WAIT_S 60 /* TCP_TIMEWAIT_LEN: fixed in the Linux kernel, not a sysctl */

void cfg_sysfacts_read(struct cfg_sysfacts *f);
/* Reads the /proc/sys facts from a directory laid out like /proc (tests point it at a temp
 * dir); RLIMIT_NOFILE always comes from getrlimit. */
void cfg_sysfacts_read_from(struct cfg_sysfacts *f, const char *proc_root);

struct cfg_lint_rule {
	const char *id;
	enum cfg_severity severity; /* the worst it reports */
	const char *summary;
	const char *doc; /* the arithmetic and the fix, for docs/config.md */
	void (*run)(const struct cfg_lint_rule *rule, const struct vx_config *cfg,
		    const struct cfg_sysfacts *f, struct cfg_diags *d);
};

extern const struct cfg_lint_rule cfg_lint_rules[];
extern const size_t cfg_lint_rules_len;

/* Runs every rule; findings go into d. */
void cfg_lint(const struct vx_config *cfg, const struct cfg_sysfacts *f, struct cfg_diags *d);

#endif
