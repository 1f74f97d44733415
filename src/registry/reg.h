/* The registry model: the key layout, the instance codec and the view (docs/registry.md).
 *
 * This is the contract other languages write to, so it is strict: every key and value read
 * from etcd is validated here before anything else in Veltrix sees it; a value that fails is
 * rejected with a machine-readable reason (for metrics) and a message naming the key and field
 * (for people). Service and instance names become HAProxy backend and server names, which is
 * why their character sets are whitelists.
 *
 * Nothing here does I/O or depends on the etcd client: the view is fed `struct etcd_kv`
 * snapshots and `struct etcd_event` batches (registry/kv.h) by its caller. Not thread-safe. */
#ifndef VX_REGISTRY_REG_H
#define VX_REGISTRY_REG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/net.h"
#include "registry/kv.h"

#define REG_DEFAULT_PREFIX "/veltrix"
#define REG_PREFIX_MAX 128
#define REG_SERVICE_MAX 63  /* [a-z0-9][a-z0-9_-]{0,62} */
#define REG_INSTANCE_MAX 64 /* [A-Za-z0-9][A-Za-z0-9._:-]{0,63} */
/* <prefix>/services/<service>/<instance> and its NUL */
#define REG_KEY_MAX (REG_PREFIX_MAX + 10 + REG_SERVICE_MAX + 1 + REG_INSTANCE_MAX + 1)

#define REG_VALUE_MAX 16384 /* bytes; checked before parsing */
#define REG_JSON_DEPTH_MAX 16
#define REG_CAPACITY_MAX 100000
#define REG_WEIGHT_MAX 256
#define REG_ZONE_MAX 64
#define REG_VERSION_MAX 64
#define REG_TAGS_MAX 32
#define REG_TAG_MAX 64
#define REG_LOAD_FIELDS_MAX 16
#define REG_INFLIGHT_MAX INT64_C(1000000000)
#define REG_RPS_MAX 1e9
#define REG_LATENCY_MS_MAX 1e7

/* Why a key or value was rejected. Names (reg_reason_name) are stable: they label metrics
 * and appear in `veltrix status --json`. */
enum reg_reason {
	REG_OK = 0,
	REG_BAD_KEY,             /* under <prefix>/services/ but not <service>/<instance> */
	REG_BAD_NAME,            /* service or instance name outside its character set or length */
	REG_TOO_LARGE,           /* value longer than REG_VALUE_MAX */
	REG_BAD_JSON,            /* empty, not JSON, truncated, trailing data, NUL, duplicate keys */
	REG_TOO_DEEP,            /* nesting deeper than REG_JSON_DEPTH_MAX */
	REG_BAD_TYPE,            /* value not an object, or a known field of the wrong JSON type */
	REG_MISSING_FIELD,       /* address or port absent */
	REG_BAD_ADDRESS,         /* not a strict IPv4/IPv6 literal */
	REG_ADDRESS_NOT_ALLOWED, /* outside the service's allow-list */
	REG_BAD_PORT,
	REG_BAD_CAPACITY,
	REG_BAD_STATE,
	REG_BAD_WEIGHT,
	REG_BAD_ZONE,
	REG_BAD_VERSION,
	REG_BAD_TAGS,
	REG_BAD_LOAD,
	REG_REASON_COUNT
};

const char *reg_reason_name(enum reg_reason r);

/* A rejection: the reason and a message naming the key (when known) and the field. */
struct reg_fail {
	enum reg_reason reason;
	struct vxerr err;
};

/* ---- Key layout ---------------------------------------------------------------------- */

bool reg_service_name_valid(const char *s, size_t len);
bool reg_instance_name_valid(const char *s, size_t len);
/* A prefix is one or more "/segment" ([A-Za-z0-9._-]+), at most REG_PREFIX_MAX bytes. */
int reg_prefix_check(const char *prefix, struct vxerr *err);
/* Writes "<prefix>/services/<service>/<instance>" into out[cap] after checking all three. */
int reg_key_build(const char *prefix, const char *service, const char *instance, char *out,
		  size_t cap, struct vxerr *err);

struct reg_key {
	char service[REG_SERVICE_MAX + 1];
	char instance[REG_INSTANCE_MAX + 1];
};

enum reg_key_kind {
	REG_KEY_OUTSIDE,  /* not under <prefix>/services/: not ours, ignored */
	REG_KEY_INSTANCE, /* a valid instance key: *out is written */
	REG_KEY_INVALID,  /* under <prefix>/services/ but malformed: *fail says why */
};
/* Classifies key[0..len) (raw bytes; may hold NUL). The prefix must match exactly. */
enum reg_key_kind reg_key_parse(const char *prefix, const char *key, size_t len,
				struct reg_key *out, struct reg_fail *fail);

/* A key range for etcd: [key, range_end), both printable strings. */
struct reg_range {
	char key[REG_KEY_MAX];
	char range_end[REG_KEY_MAX];
};
/* Every instance of every service: <prefix>/services/ */
int reg_range_all(const char *prefix, struct reg_range *out, struct vxerr *err);
/* Every instance of one service: <prefix>/services/<service>/ */
int reg_range_service(const char *prefix, const char *service, struct reg_range *out,
		      struct vxerr *err);

/* Printable rendering of a raw key for messages and status: bytes outside 0x21..0x7e and the
 * backslash become \xNN, so distinct keys stay distinct. Caller frees. */
char *reg_key_display(const char *key, size_t len);

/* ---- Instance codec ------------------------------------------------------------------- */

enum reg_state { REG_STATE_UP = 0, REG_STATE_DRAINING, REG_STATE_DOWN };
const char *reg_state_name(enum reg_state s);

/* Recent figures an agent reports (at most about every 10 s); each may be absent. */
struct reg_load {
	bool has_inflight, has_rps, has_latency_ms;
	int64_t inflight;  /* requests in progress, 0..REG_INFLIGHT_MAX */
	double rps;        /* requests per second, 0..REG_RPS_MAX */
	double latency_ms; /* recent mean or p50 service time, 0..REG_LATENCY_MS_MAX */
};

/* One registered instance. A zeroed struct is "state up, nothing optional set". */
struct reg_instance {
	char service[REG_SERVICE_MAX + 1]; /* from the key */
	char name[REG_INSTANCE_MAX + 1];   /* from the key */
	char address[NET_IP_MAX];          /* canonical literal (inet_ntop form) */
	int family;                        /* AF_INET or AF_INET6 */
	uint16_t port;
	int32_t capacity; /* 0 = not set: the service's default applies */
	enum reg_state state;
	bool has_weight;
	int32_t weight;                  /* 0..256, an operator's override */
	char zone[REG_ZONE_MAX + 1];     /* "" = not set */
	char version[REG_VERSION_MAX + 1]; /* "" = not set */
	char **tags;                     /* owned; n_tags entries */
	size_t n_tags;
	bool has_load;
	struct reg_load load;
	/* From etcd (not part of the value) */
	int64_t create_revision;
	int64_t mod_revision;
	int64_t lease; /* 0 = not lease-bound */
	/* Set by the view when a later write to this key was rejected: this is the last valid
	 * value, kept on purpose (fail static; see docs/registry.md). */
	bool update_rejected;
};

/* Frees what in owns (the tags) and leaves it zeroed; a zeroed struct is a no-op. */
void reg_instance_release(struct reg_instance *in);
/* Deep copy of src into *dst (which holds nothing that needs releasing). */
void reg_instance_copy(struct reg_instance *dst, const struct reg_instance *src);
/* True when the two describe the same registration: every value field and the lease; the
 * revisions and the update_rejected flag are not compared. */
bool reg_instance_same(const struct reg_instance *a, const struct reg_instance *b);

/* Strict decode of a value (raw bytes, may hold NUL) into the value fields of *out (address,
 * port, capacity, state, weight, zone, version, tags, load); other fields of *out are zeroed.
 * The size cap is checked before parsing. Unknown fields are ignored, and null or "" for an
 * optional field means absent. Returns 0, or -1 with *fail (which names only the field; the
 * caller adds the key). */
int reg_value_decode(const char *data, size_t len, struct reg_instance *out,
		     struct reg_fail *fail);
/* Checks in->address against allow[0..n) (n == 0: any address is allowed). */
int reg_address_check(const struct reg_instance *in, const struct cidr *allow, size_t n,
		      struct reg_fail *fail);
/* Compact JSON of the value fields of in; decodes back to the same instance. Fails (and
 * writes nothing) when in holds something reg_value_decode would reject. *out: caller frees. */
int reg_value_encode(const struct reg_instance *in, char **out, size_t *len, struct vxerr *err);

/* ---- Policy ----------------------------------------------------------------------------- */

/* The address allow-list of one service (from the configuration; registry does not include
 * config.h). Services without an entry, and entries with n_cidrs == 0, allow any address. */
struct reg_allow {
	const char *service;
	const struct cidr *cidrs;
	size_t n_cidrs;
};
struct reg_policy {
	const struct reg_allow *allow;
	size_t n_allow;
};

/* ---- View ----------------------------------------------------------------------------- */

/* A service and its valid instances, sorted by instance name. Read only for callers. */
struct reg_service {
	char name[REG_SERVICE_MAX + 1];
	struct reg_instance **instances;
	size_t n_instances;
	size_t cap;
};

/* A key whose current value is rejected. Read only for callers. */
struct reg_reject {
	char *key;     /* reg_key_display form */
	char service[REG_SERVICE_MAX + 1]; /* "" when the key itself is invalid */
	char instance[REG_INSTANCE_MAX + 1]; /* "" when the key itself is invalid */
	enum reg_reason reason;
	char *message; /* names the key and the field */
	int64_t mod_revision;
	int64_t lease;
};

/* What changed since the last reg_view_clear_changes. */
struct reg_changes {
	const char *const *services; /* sorted names of services whose instances changed,
					including services that no longer exist */
	size_t n_services;
	const struct reg_reject *rejects; /* keys newly rejected, or rejected for a new reason,
					     in the order seen: log each once */
	size_t n_rejects;
};

struct reg_view;

/* prefix: NULL for REG_DEFAULT_PREFIX. policy may be NULL (allow any address); it is
 * copied. To change the policy, make a new view and load a fresh snapshot. */
struct reg_view *reg_view_new(const char *prefix, const struct reg_policy *policy,
			      struct vxerr *err);
void reg_view_free(struct reg_view *v);

/* Replaces the contents with a snapshot of every key under the prefix taken at `revision`.
 * Works as the difference to the current contents: unchanged instances stay (not dirty),
 * a key that held a valid instance and now holds a rejected value keeps its last valid
 * instance (flagged update_rejected), everything not in the snapshot goes. */
void reg_view_load_snapshot(struct reg_view *v, const struct etcd_kv *kvs, size_t n,
			    int64_t revision);
/* Applies a watch batch, in order. Events with mod_revision <= the view's revision at the
 * start of the call are replays and ignored, so a batch must hold whole revisions (etcd
 * never splits one across watch responses unless asked to fragment). The view's revision
 * becomes the highest of its own and the events'; `delivered` counts only for a batch without
 * events (a progress notification: everything up to it was delivered). Never the header
 * revision of a batch with events: a watch catching up gets at most 1,000 revisions per
 * response, each with the member's current revision in its header, and taking that would
 * skip the next response's events. Returns the number of events that were not ignored. */
size_t reg_view_apply(struct reg_view *v, const struct etcd_event *events, size_t n,
		      int64_t delivered);

int64_t reg_view_revision(const struct reg_view *v);
const char *reg_view_prefix(const struct reg_view *v);
size_t reg_view_n_instances(const struct reg_view *v);

size_t reg_view_n_services(const struct reg_view *v);
/* Services sorted by name; i < reg_view_n_services. */
const struct reg_service *reg_view_service_at(const struct reg_view *v, size_t i);
const struct reg_service *reg_view_find_service(const struct reg_view *v, const char *name);
const struct reg_instance *reg_view_find(const struct reg_view *v, const char *service,
					 const char *instance);

/* Rejected keys sorted by key; i < reg_view_n_rejected. */
size_t reg_view_n_rejected(const struct reg_view *v);
const struct reg_reject *reg_view_rejected_at(const struct reg_view *v, size_t i);

/* The pointers stay valid until the next call that changes the view. */
void reg_view_changes(const struct reg_view *v, struct reg_changes *out);
void reg_view_clear_changes(struct reg_view *v);

#endif
