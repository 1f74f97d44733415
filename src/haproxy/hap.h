/* The HAProxy module's face: everything Veltrix says to and hears from HAProxy 2.6.
 *
 *  - names and values: whitelists every name, address and number passes before it can become
 *    part of a command (the Runtime API is a text protocol where ';', newline and space separate
 *    commands and words, ../../docs/haproxy.md "Safety");
 *  - command builders (pure) and reply classification;
 *  - the Runtime API client: prompt mode, pipelined batches, timeouts, reconnects;
 *  - reply parsers (pure, bounded): show servers state, show stat, show info, show backend and
 *    the master CLI's show proc; columns are found by header name, never by position;
 *  - the config renderer (pure): struct vx_config + current servers -> haproxy.cfg text;
 *  - process supervision: haproxy -c, start in master-worker mode, reload through the master
 *    socket with confirmation, stop; and the identity (pid, uptime) that reveals restarts.
 *
 * Conventions: ../../docs/internals.md (0/-1 with struct vxerr, outputs written on success). */
#ifndef VX_HAPROXY_HAP_H
#define VX_HAPROXY_HAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/net.h"
#include "config/config.h"

/* ------------------------------------------------------------------------------------------ */
/* Names and values                                                                            */

#define HAP_NAME_MAX 64        /* backend and server names */
#define HAP_WEIGHT_MAX 256     /* HAProxy's absolute weight range is 0..256 */
#define HAP_MAXCONN_MAX 1000000

/* [A-Za-z0-9._:-], 1..64 bytes, not starting with '-'. */
bool hap_name_valid(const char *s);
/* An IPv4 or IPv6 literal; writes its canonical text (net_ip_canon) into out[cap]. */
int hap_addr_canon(const char *ip, char *out, size_t cap, struct vxerr *err);
bool hap_weight_valid(int64_t w);
bool hap_maxconn_valid(int64_t m); /* 0 = no limit */

/* ------------------------------------------------------------------------------------------ */
/* Servers as Veltrix wants them                                                               */

enum hap_admin { HAP_ADMIN_READY, HAP_ADMIN_DRAIN, HAP_ADMIN_MAINT };

/* Health check options, passed explicitly on every `add server` because dynamic servers inherit
 * nothing from `default-server`. The check type comes from the backend (`option httpchk`). */
struct hap_check {
	bool enabled;
	int64_t inter_us;
	int64_t fastinter_us; /* pace while a state change is being confirmed */
	int64_t downinter_us; /* pace while the server is down */
	int rise;
	int fall;
};

/* The check options for a service's health section (CHECK_NONE: disabled). */
void hap_check_from_health(const struct cfg_health *h, struct hap_check *out);

struct hap_server {
	char name[HAP_NAME_MAX + 1];
	char addr[NET_IP_MAX]; /* IP literal; commands use its canonical form */
	uint16_t port;
	int weight;      /* 0..256 */
	int64_t maxconn; /* 0 = no limit */
	enum hap_admin admin;
	int64_t id;      /* HAProxy's server id (`id N`); 0: HAProxy chooses */
};

/* ------------------------------------------------------------------------------------------ */
/* Commands (pure)                                                                             */

#define HAP_CMD_MAX 512

enum hap_cmd_kind {
	HAP_CMD_ADD_SERVER,
	HAP_CMD_DEL_SERVER,
	HAP_CMD_SET, /* enable server/health, set weight/maxconn/state, shutdown sessions */
	HAP_CMD_SET_ADDR, /* answers with what changed, not an empty line */
	HAP_CMD_SHOW_SERVERS_STATE,
	HAP_CMD_SHOW_STAT,
	HAP_CMD_SHOW_INFO,
	HAP_CMD_SHOW_BACKEND,
};

/* One Runtime API command, without its newline. Builders write *out only on success and
 * refuse (with a message naming the value) anything outside the whitelists above. */
struct hap_cmd {
	enum hap_cmd_kind kind;
	char text[HAP_CMD_MAX];
};

/* `add server B/S ADDR:PORT weight W [maxconn M] [check inter .. fastinter .. downinter ..
 * rise R fall F] pool-max-conn -1 pool-purge-delay 5s`. Never `enabled` (HAProxy 2.6.12 bug
 * #2497): the server starts in maintenance; follow with enable health and enable server. */
int hap_cmd_add_server(struct hap_cmd *out, const char *backend, const struct hap_server *srv,
		       const struct hap_check *chk, struct vxerr *err);
int hap_cmd_enable_server(struct hap_cmd *out, const char *backend, const char *server, struct vxerr *err);
int hap_cmd_enable_health(struct hap_cmd *out, const char *backend, const char *server, struct vxerr *err);
/* `set server b/s health down`: a server just enabled counts as up until its checks say otherwise;
 * this makes it earn `rise` passing checks first. */
int hap_cmd_set_health_down(struct hap_cmd *out, const char *backend, const char *server, struct vxerr *err);
int hap_cmd_set_weight(struct hap_cmd *out, const char *backend, const char *server, int weight,
		       struct vxerr *err);
int hap_cmd_set_maxconn(struct hap_cmd *out, const char *backend, const char *server, int64_t maxconn,
			struct vxerr *err);
int hap_cmd_set_state(struct hap_cmd *out, const char *backend, const char *server, enum hap_admin state,
		      struct vxerr *err);
/* `set server B/S addr IP port P`: an instance that moved keeps its name and its sessions. */
int hap_cmd_set_addr(struct hap_cmd *out, const char *backend, const char *server, const char *addr,
		     uint16_t port, struct vxerr *err);
int hap_cmd_shutdown_sessions(struct hap_cmd *out, const char *backend, const char *server,
			      struct vxerr *err);
/* Deletion needs the server in maintenance first; see hap_reply_classify for the retry. */
int hap_cmd_del_server(struct hap_cmd *out, const char *backend, const char *server, struct vxerr *err);
/* The delete recipe, three commands for one batch: `set server B/S state drain`, `... state
 * maint`, `del server B/S`; send it again while the del answers HAP_RETRY. Why drain first:
 * entering maintenance closes the server's idle pooled connections, and an idle connection
 * blocks `del server` just like a busy one. A request that ends after the server went into
 * maintenance leaves its connection idle in the pool until the purge timer, so a plain
 * maint + del loop can wait for seconds; re-entering maintenance from drain starts the purge at
 * once, and a retry some milliseconds later succeeds (verified on 2.6.12; `shutdown sessions`
 * does not purge idle connections). Neither state cuts a request in flight. */
int hap_cmd_delete_sequence(struct hap_cmd out[3], const char *backend, const char *server, struct vxerr *err);
/* backend NULL: every backend. */
int hap_cmd_show_servers_state(struct hap_cmd *out, const char *backend, struct vxerr *err);
/* `show stat [B 4 -1]`: the servers of B, or everything when backend is NULL. HAProxy looks the
 * name up among all proxies and takes the first: when a frontend declared earlier has the same
 * name (possible in a user's config), this lists nothing; use the backend's id instead. */
int hap_cmd_show_stat(struct hap_cmd *out, const char *backend, struct vxerr *err);
/* `show stat <id> 4 -1` by proxy id (be_id of show servers state): never ambiguous. */
int hap_cmd_show_stat_id(struct hap_cmd *out, int64_t backend_id, struct vxerr *err);
/* One server's row only (`show stat <backend id> 4 <server id>`): O(1) where the backend holds thousands. */
int hap_cmd_show_stat_server(struct hap_cmd *out, int64_t backend_id, int64_t server_id, struct vxerr *err);
void hap_cmd_show_info(struct hap_cmd *out);
void hap_cmd_show_backend(struct hap_cmd *out);

/* True when text is one command that cannot chain or hide another: printable ASCII only, and
 * none of ';' '#' '\\' quotes. The client refuses a batch holding anything else. */
bool hap_cmd_text_safe(const char *text);

enum hap_status {
	HAP_OK,
	HAP_ERR,
	HAP_RETRY,     /* del server: connections still attached; retry later */
	HAP_NOT_FOUND, /* no such backend or server (already gone, for a delete) */
};
enum hap_status hap_reply_classify(enum hap_cmd_kind kind, const char *reply, size_t len);
/* The reply's first non-empty line (for error messages), cut to fit out[cap]. */
void hap_reply_summary(const char *reply, size_t len, char *out, size_t cap);

/* ------------------------------------------------------------------------------------------ */
/* Runtime API client (blocking, with timeouts)                                                */

struct hap_rt_opts {
	int64_t timeout_us; /* connect, and each wait for progress; default 5 s */
	size_t max_reply;   /* bytes per reply; default 16 MiB */
};

struct hap_reply {
	char *text; /* NUL-terminated, without the prompt; NULL when no reply arrived */
	size_t len;
};

struct hap_rt;

/* Connects to the admin socket at path and enters prompt mode. Retries a refused or missing
 * socket (HAProxy reloading) until the timeout. opts may be NULL.
 * Before each batch the client asks `show info` and reconnects when the worker behind the
 * connection is soft-stopping after a reload: commands always reach the current worker. */
struct hap_rt *hap_rt_open(const char *path, const struct hap_rt_opts *opts, struct vxerr *err);
void hap_rt_close(struct hap_rt *rt);
/* The bound on each wait for progress from now on (a probe opens with a short one). */
void hap_rt_set_timeout(struct hap_rt *rt, int64_t timeout_us);
/* Sends the n commands in one pipelined stream and reads one reply per command, in order.
 * Every reply slot is written (text NULL when none came): release them with
 * hap_replies_release(replies, n) whatever the result. Returns 0 when all n replies arrived.
 * A connection found closed before any reply (idle timeout, reload) is reopened and the
 * batch sent once more; a connection lost mid-batch is an error (replies so far are kept).
 * Nothing is sent when a command fails hap_cmd_text_safe. */
int hap_rt_batch(struct hap_rt *rt, const struct hap_cmd *cmds, size_t n, struct hap_reply *replies,
		 struct vxerr *err);
/* One command; *reply is written on success (release with hap_replies_release(reply, 1)). */
int hap_rt_exec(struct hap_rt *rt, const struct hap_cmd *cmd, struct hap_reply *reply, struct vxerr *err);
void hap_replies_release(struct hap_reply *replies, size_t n);
/* Connections opened so far (1 after open; grows with each reconnect). */
unsigned hap_rt_connections(const struct hap_rt *rt);
/* The pid of the worker that answered the last batch (a new pid: HAProxy reloaded or
 * restarted, every dynamic server is gone, time for a full reconcile). */
int64_t hap_rt_pid(const struct hap_rt *rt);

/* One command on a non-prompt socket (the master CLI): connect (retrying while refused, as
 * during a re-exec), write cmd, read to EOF into out (bounded by out->max). */
int hap_master_cmd(const char *path, const char *cmd, int64_t timeout_us, struct buf *out, struct vxerr *err);

/* ------------------------------------------------------------------------------------------ */
/* Reply parsers (pure, bounded)                                                               */

#define HAP_REPLY_PARSE_MAX (64u << 20) /* larger replies are refused */

/* srv_admin_state bits and srv_op_state values (FACTS 3.5). */
enum {
	HAP_SRV_FMAINT = 0x01, HAP_SRV_IMAINT = 0x02, HAP_SRV_CMAINT = 0x04, HAP_SRV_FDRAIN = 0x08,
	HAP_SRV_IDRAIN = 0x10, HAP_SRV_RMAINT = 0x20, HAP_SRV_HMAINT = 0x40,
};
enum { HAP_OP_STOPPED = 0, HAP_OP_STARTING = 1, HAP_OP_RUNNING = 2, HAP_OP_STOPPING = 3 };

/* One row of `show servers state`. Strings point into the parse's own copy. Numbers a header
 * does not carry read -1. */
struct hap_srv_state {
	const char *backend;
	const char *name;
	const char *addr; /* "-" when unresolved */
	int64_t be_id, srv_id;
	int64_t op_state, admin_state;
	int64_t uweight, iweight;
	int64_t since_change_s;
	int64_t check_status, check_result, check_health, check_state;
	int64_t port;
};

struct hap_servers_state {
	struct hap_srv_state *rows;
	size_t n;
	char *text; /* private: the copy the rows point into */
};

/* Needs the version line "1", the "# ..." header (be_name, srv_name, srv_addr, srv_op_state,
 * srv_admin_state, srv_uweight are required) and rows with as many fields as the header. */
int hap_parse_servers_state(const char *text, size_t len, struct hap_servers_state *out, struct vxerr *err);
void hap_servers_state_release(struct hap_servers_state *s);
const struct hap_srv_state *hap_servers_state_find(const struct hap_servers_state *s, const char *backend,
						   const char *server);
/* The admin state as Veltrix sees it: maintenance of any origin wins over drain. */
enum hap_admin hap_admin_from_bits(int64_t admin_state);

enum hap_stat_type { HAP_STAT_FRONTEND = 0, HAP_STAT_BACKEND = 1, HAP_STAT_SERVER = 2, HAP_STAT_LISTENER = 3 };

/* One row of `show stat` CSV. Strings point into the parse's own copy; numbers that are empty
 * or whose column is absent read -1. */
struct hap_stat_row {
	const char *pxname;
	const char *svname;
	const char *status;       /* first word: UP, DOWN, MAINT, DRAIN, "no", OPEN, ... */
	const char *check_status; /* without the "* " in-progress mark; "" when none */
	const char *addr;
	int64_t type; /* enum hap_stat_type */
	int64_t qcur, scur, smax, slim, stot;
	int64_t econ, eresp, wretr, wredis;
	int64_t weight, uweight, act;
	int64_t chkfail, lastchg, check_code;
	int64_t hrsp_2xx, hrsp_5xx;
	int64_t qtime, ctime, rtime, ttime; /* ms, averaged over the last 1024 requests */
};

struct hap_stats {
	struct hap_stat_row *rows;
	size_t n;
	char *text; /* private */
};

int hap_parse_stat(const char *text, size_t len, struct hap_stats *out, struct vxerr *err);
void hap_stats_release(struct hap_stats *s);
const struct hap_stat_row *hap_stats_find(const struct hap_stats *s, const char *pxname, const char *svname);

struct hap_info {
	char name[32];
	char version[64];
	int64_t pid;
	int64_t uptime_sec;
	int64_t nbthread, maxconn, ulimit_n, curr_conns, cum_conns, stopping; /* -1 when absent */
};
/* `show info`: Pid, Uptime_sec and Version are required. */
int hap_parse_info(const char *text, size_t len, struct hap_info *out, struct vxerr *err);

#define HAP_PROC_MAX 64

struct hap_proc_entry {
	int64_t pid;
	int64_t reloads; /* for a worker: how many reloads ago it was started */
	bool old;        /* listed under "# old workers": soft-stopping */
};

/* The master CLI's `show proc`. */
struct hap_proc_list {
	int64_t master_pid;
	int64_t master_reloads;
	int64_t failed; /* failed reloads since the last successful one ([failed: N]) */
	size_t n;
	struct hap_proc_entry workers[HAP_PROC_MAX]; /* extras beyond HAP_PROC_MAX are dropped */
};
int hap_parse_proc(const char *text, size_t len, struct hap_proc_list *out, struct vxerr *err);
/* The current (not old) worker with the fewest reloads, or 0 when there is none. */
int64_t hap_proc_current_worker(const struct hap_proc_list *l);

/* `show cli sockets`: the path of the first unix socket at admin level (the runtime API a
 * worker serves), copied into path[cap]; an error when there is none or it does not fit. */
int hap_parse_cli_sockets(const char *text, size_t len, char *path, size_t cap, struct vxerr *err);

/* `show backend`: the backend names. */
struct hap_backends {
	char **names;
	size_t n;
};
int hap_parse_backends(const char *text, size_t len, struct hap_backends *out, struct vxerr *err);
void hap_backends_release(struct hap_backends *b);

/* ------------------------------------------------------------------------------------------ */
/* Config renderer (pure)                                                                      */

/* The servers HAProxy holds now for one backend, so that a reload loses none of them. */
struct hap_pool {
	const char *backend;
	const struct hap_server *servers;
	size_t n;
};

struct hap_render_opts {
	const char *state_file; /* NULL: none; else server-state-file + load-server-state-from-file */
	const struct hap_pool *pools;
	size_t n_pools; /* pools of backends that are not services are left out (service removed) */
	bool structure_only; /* the header does not name the source file: the same configuration
				under another file name has the same structure (issue 10 D16) */
};

/* Appends the whole haproxy.cfg for cfg (global, defaults, and per service a backend named
 * after it and a frontend named "fe.<service>") to out. Servers render with the options `add server` uses, their weight,
 * and `disabled` for maintenance; a draining server renders with weight 0 (there is no drain
 * keyword in a config file; with a state file the drain itself comes back). */
int hap_render(const struct vx_config *cfg, const struct hap_render_opts *opts, struct buf *out,
	       struct vxerr *err);

/* ------------------------------------------------------------------------------------------ */
/* Process supervision                                                                         */

/* Runs `haproxy -c -f cfg_path`. On failure err holds the first [ALERT] lines; output (may be
 * NULL) receives everything HAProxy printed. binary NULL: "haproxy". */
int hap_config_check(const char *binary, const char *cfg_path, int64_t timeout_us, struct buf *output,
		     struct vxerr *err);
/* The same in two halves, for a caller that must not wait (an event loop): start the check with
 * its output going to out_path (returns the pid, -1 with err set), then, from its wait status,
 * the verdict (0, or err quoting the [ALERT] lines; output as above). */
pid_t hap_config_check_spawn(const char *binary, const char *cfg_path, const char *out_path, struct vxerr *err);
int hap_config_check_verdict(int status, const char *cfg_path, const char *out_path, struct buf *output,
			     struct vxerr *err);

struct hap_proc_opts {
	const char *binary;         /* NULL: "haproxy" from PATH */
	const char *cfg_path;
	const char *master_socket;  /* -S <path>,mode,600 */
	const char *runtime_socket; /* the config's admin stats socket, probed for readiness */
	const char *log_path;       /* the master's stdout and stderr (appended); NULL: /dev/null */
	const char *state_file;     /* when set, `show servers state` is saved here before a reload */
	int64_t timeout_us;         /* start and reload confirmation; default 10 s */
	bool die_with_parent;       /* tests; a controller leaves HAProxy serving if it dies */
};

struct hap_proc {
	pid_t master_pid;
	int64_t worker_pid; /* current worker, updated by start, adopt and reload */
	bool child;         /* started by us (else adopted) */
	struct hap_proc_opts opts; /* deep copy */
};

/* Starts `haproxy -W -S <master_socket>,mode,600 -f <cfg_path>` in the foreground as a child
 * and waits until the runtime socket answers `show info`. */
int hap_proc_start(struct hap_proc *p, const struct hap_proc_opts *opts, struct vxerr *err);
/* Takes over a running master found through its master socket (a restarted controller).
 * p->opts.runtime_socket becomes the socket its worker actually serves (asked through the
 * master), which differs from opts->runtime_socket when the configuration moved it since. */
int hap_proc_adopt(struct hap_proc *p, const struct hap_proc_opts *opts, struct vxerr *err);
/* Saves the server state (when configured), sends `reload`, and confirms it: a new current
 * worker and an unchanged [failed: N]. A failed reload (the old worker keeps serving) is an
 * error quoting HAProxy's [ALERT] lines from the log when there is one. */
int hap_proc_reload(struct hap_proc *p, struct vxerr *err);
/* The same for a configuration that names another runtime socket: the new worker is awaited
 * there, and p->opts.runtime_socket becomes it when the reload worked (NULL: the same one). */
int hap_proc_reload_to(struct hap_proc *p, const char *runtime_socket, struct vxerr *err);
/* SIGTERM to the master, SIGKILL after grace_us. No-op when not running. */
void hap_proc_stop(struct hap_proc *p, int64_t grace_us);
bool hap_proc_running(struct hap_proc *p);
void hap_proc_release(struct hap_proc *p);
/* `show proc` through the master socket. */
int hap_proc_show(const char *master_socket, int64_t timeout_us, struct hap_proc_list *out, struct vxerr *err);

/* Who answers on a runtime socket: a changed pid or a smaller uptime means HAProxy restarted
 * or reloaded, and every dynamic server is gone (FACTS 3.6): time for a full reconcile. */
struct hap_ident {
	int64_t pid;
	int64_t uptime_sec;
};
int hap_rt_ident(struct hap_rt *rt, struct hap_ident *out, struct vxerr *err);
bool hap_ident_changed(const struct hap_ident *before, const struct hap_ident *now);

#endif
