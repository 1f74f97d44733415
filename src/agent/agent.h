/* The agent: runs beside one service instance, checks it, registers it in etcd under a lease
 * while it is healthy, keeps the lease alive, re-registers after a lease loss, and drains on
 * SIGTERM/SIGINT (docs/agent.md). Optionally it supervises the service as a child process.
 *
 * The agent never talks to HAProxy; it only writes its own key, following the registry
 * contract (docs/registry.md): the key is bound to the agent's lease, written only on a change,
 * and never taken from another process's lease.
 *
 * Also here: the pure rules for the defaults (instance id, advertised address), exposed so that
 * they can be tested and fuzzed on their own. */
#ifndef VX_AGENT_AGENT_H
#define VX_AGENT_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/check.h"
#include "common/err.h"
#include "common/net.h"
#include "registry/etcd.h"

struct ev_loop;
struct agent;

#define AGENT_TTL_MIN_US (2 * INT64_C(1000000))
/* After the drain, the supervised service gets this long to exit after SIGTERM, then SIGKILL. */
#define AGENT_STOP_GRACE_US (10 * INT64_C(1000000))

struct agent_opts {
	const char *service;  /* required; registry service name */
	const char *instance; /* NULL: agent_instance_default(address, port) */
	const char *address;  /* NULL: agent_address_default(port), re-derived until a listener shows */
	uint16_t port;        /* required */
	int32_t capacity;     /* 0: not reported (the service's default_capacity applies) */
	struct check_spec check; /* kind, path/command, timings; its address and port are ignored */
	int64_t ttl_us;       /* whole seconds, >= AGENT_TTL_MIN_US */
	int64_t drain_timeout_us;
	int64_t load_report_interval_us; /* at most one load report (load.latency_ms) per interval */
	const char *prefix;   /* NULL: REG_DEFAULT_PREFIX */
	const char *shared_lease; /* a directory: share one lease with the host's other agents (NULL: own) */
	const struct etcd_opts *etcd;
	char *const *command; /* NULL, or the argv of the service to supervise */
};

/* Checks the options and prepares the agent; nothing starts until agent_run. loop must be
 * libev's default loop (checks and the supervised command use child watchers). Returns NULL
 * with err set when an option is invalid (a usage error) or the etcd client cannot be made. */
struct agent *agent_new(struct ev_loop *loop, const struct agent_opts *opts, struct vxerr *err);
/* Runs until the agent is done and returns the process exit code: 0 after a drain (or after a
 * lease revoke when the service exits), the supervised service's own status when there is one
 * (128+N when it died of signal N), 2 when the service could not be started. Handles SIGTERM
 * and SIGINT (drain; a second one skips the wait; a third exits at once) and forwards SIGHUP,
 * SIGUSR1 and SIGUSR2 to a supervised service. Logs as logfmt (component=agent). */
int agent_run(struct agent *a);
void agent_free(struct agent *a);

/* Runs one check (no hysteresis) on libev's default loop and waits for its result. */
void agent_check_once(const struct check_spec *spec, struct check_result *out);

/* ---- Defaults (pure) --------------------------------------------------------------------- */

/* The shared lease file (--shared-lease DIR/lease): "<16 lowercase hex digits> <ttl seconds>",
 * an optional newline, nothing else; at most AGENT_SHARE_FILE_MAX bytes. Written by another agent
 * of the host, so parsed strictly: 0 with *lease (non-zero) and *ttl_s (1..86400), or -1. */
#define AGENT_SHARE_FILE_MAX 64
int agent_share_parse(const char *text, size_t len, int64_t *lease, int64_t *ttl_s);
/* The same text (with its newline) into out; returns its length, or -1 when cap is too small. */
int agent_share_format(int64_t lease, int64_t ttl_s, char *out, size_t cap);

/* The instance id derived from an address (canonical literal) and port, valid for the registry
 * rule [A-Za-z0-9][A-Za-z0-9._:-]{0,63}: "10.0.0.5:8080" for IPv4; for IPv6 the address fully
 * expanded (eight groups of four hex digits, so it starts with a digit or letter and the port
 * after the eighth group is unambiguous): "2001:0db8:0000:0000:0000:0000:0000:0001:8080".
 * Returns 0, or -1 when address is not an IP literal or out is too small. */
int agent_instance_default(const char *address, uint16_t port, char *out, size_t cap);

/* What the listening sockets on one port tell about where the service is reachable. */
struct agent_listen {
	bool any;                    /* some listener binds the wildcard (0.0.0.0 or ::) */
	char loopback[NET_IP_MAX];   /* the first loopback address bound, or "" */
	char specific[NET_IP_MAX];   /* the first other address bound, or "" */
};
/* Feeds one line of /proc/net/tcp (v6 false) or /proc/net/tcp6 (v6 true): a socket in state
 * LISTEN on `port` is added to *l. Other lines (the header, other states and ports, malformed or
 * overlong lines) are ignored. Never reads past len. */
void agent_listen_line(const char *line, size_t len, bool v6, uint16_t port, struct agent_listen *l);
/* agent_listen_line over every line of text[0..len). */
void agent_listen_scan(const char *text, size_t len, bool v6, uint16_t port, struct agent_listen *l);
/* Reads /proc/net/tcp and /proc/net/tcp6 (under proc_root, normally "/proc"). Returns true
 * when a listener on port was found. */
bool agent_listen_read(const char *proc_root, uint16_t port, struct agent_listen *l);

/* The address to advertise: a specific non-loopback address the service binds; else the
 * loopback address it binds when it binds only loopback; else first_nonloopback (the host's
 * first usable address, "" when it has none); else 127.0.0.1. */
void agent_address_pick(const struct agent_listen *l, const char *first_nonloopback, char *out, size_t cap);
/* The host's first usable non-loopback address: interfaces that are up, IPv4 before IPv6,
 * skipping link-local addresses (169.254/16, fe80::/10: they need a zone, which the registry
 * refuses). "" when there is none. */
void agent_first_address(char *out, size_t cap);
/* agent_listen_read + agent_first_address + agent_address_pick. Returns true when a listener
 * decided it (the answer is final), false when it is the fallback for a port nobody listens on
 * yet. */
bool agent_address_default(uint16_t port, char *out, size_t cap);

#endif
