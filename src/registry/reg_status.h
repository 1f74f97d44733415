/* The report `veltrix status` prints: the registry at one revision, the time left on each
 * lease, and, when a data plane answered, every server as the proxy sees it, merged per service
 * and rendered as aligned text for people or as the JSON documented in docs/registry.md
 * ("veltrix status --json").
 *
 * Gathering is the caller's job (a reg_view loaded from one etcd listing, the lease TTLs from
 * reg_status_fetch_ttls, the data-plane rows from HAProxy); merging and rendering here are pure.
 * The data-plane columns arrive as plain values, so this module still knows nothing of HAProxy
 * (registry and haproxy never include each other). */
#ifndef VX_REGISTRY_REG_STATUS_H
#define VX_REGISTRY_REG_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "registry/reg.h"

struct etcd_client;

/* Distinct leases whose TTL status looks up; instances past this many show an unknown TTL. */
#define REG_STATUS_LEASES_MAX 10000
/* Lease lookups in flight at once. */
#define REG_STATUS_TTL_WINDOW 32

enum { REG_TTL_GONE = -1, REG_TTL_UNKNOWN = -2 };

struct reg_lease_ttl {
	int64_t id;
	int64_t ttl_s; /* seconds left, REG_TTL_GONE (expired or revoked) or REG_TTL_UNKNOWN */
};

/* One server as the data plane reports it. Strings are borrowed for the report's lifetime. */
struct reg_dp_server {
	const char *name;
	const char *addr;  /* "10.0.0.5:8080" as the proxy shows it; NULL when unknown */
	const char *state; /* UP, DOWN, MAINT, DRAIN, NOLB, "no check", ... */
	const char *check; /* last health check status (L4OK, L7STS, ...); NULL or "" when none */
	int64_t weight, sessions, queue, rtime_ms; /* -1 when unknown */
};

/* A backend the data plane has (whatever its servers). */
struct reg_dp_backend {
	const char *name;
	const struct reg_dp_server *servers;
	size_t n;
};

struct reg_status_input {
	const struct reg_view *view; /* the registry at one revision */
	const char *const *endpoints; /* the etcd endpoints it came from */
	size_t n_endpoints;
	const char *service; /* report only this service, or NULL for all */
	const char *const *configured; /* service names in the configuration */
	size_t n_configured;
	const struct reg_lease_ttl *ttls; /* sorted by id; leases not listed show an unknown TTL */
	size_t n_ttls;
	const char *dp_socket; /* the runtime socket that was asked; NULL when none was */
	const char *dp_error;  /* why it did not answer; NULL when it answered */
	const struct reg_dp_backend *backends; /* what it answered */
	size_t n_backends;
};

/* The distinct leases of the instances in the report (only `service`'s when not NULL), sorted,
 * at most REG_STATUS_LEASES_MAX. *ids: caller frees (NULL when none). */
size_t reg_status_lease_ids(const struct reg_view *v, const char *service, int64_t **ids);

/* Looks up the TTL of each lease, REG_STATUS_TTL_WINDOW at a time, on c's loop (run here until
 * every lookup ended). A lease etcd no longer knows reads REG_TTL_GONE; once a lookup fails
 * because etcd is unreachable or slow, the rest are not asked and read REG_TTL_UNKNOWN, so one
 * outage costs one window of timeouts, not one per lease. Returns n results (caller frees) in
 * the order of ids. Must not be called from a callback of c. */
struct reg_lease_ttl *reg_status_fetch_ttls(struct etcd_client *c, const int64_t *ids, size_t n);

/* True when in->service names something: instances or rejected keys in the view, a configured
 * service, or a data-plane backend. */
bool reg_status_known(const struct reg_status_input *in);

/* The report as JSON (two-space indent, newline at the end). Caller frees. */
char *reg_status_json(const struct reg_status_input *in);
/* The report as text: a summary line for the registry and one for the data plane, one table
 * per service, then the rejected keys. -1 when writing to out failed. */
int reg_status_text(const struct reg_status_input *in, FILE *out);

/* "09cea21bf9359a09": a lease id as etcdctl prints it, into out[17]. */
void reg_lease_hex(int64_t id, char out[17]);

#endif
