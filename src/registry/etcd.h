/* The etcd v3 client: KV, leases and watches over etcd 3.4's HTTP/JSON gateway.
 *
 * One client is driven by one libev loop (a built-in HTTP/1.1 transport for http:// endpoints,
 * libcurl loaded on demand for https://), so a single thread holds watch streams, lease
 * keepalive streams and ordinary requests at once. Every fact about the gateway this relies
 * on is in ../../docs/etcd-client.md.
 *
 * Calling conventions
 * - Asynchronous calls (`*_async`) return -1 with err set and start nothing, or return 0 and
 *   later invoke their callback exactly once, never from inside the call itself.
 * - Synchronous wrappers run the client's loop until their one call completes; they are meant
 *   for one-shot commands. They return 0, or -1 with err set. Their `struct etcd_resp *out`
 *   is always reset: on failure only out->code and out->http_status are meaningful (that is
 *   how a caller tells a missing lease, ETCD_NOT_FOUND, from an unreachable cluster,
 *   ETCD_UNAVAILABLE). Release it with etcd_resp_release() in both cases.
 * - Callbacks may start calls, and may free watches and keepalives (even their own), but must
 *   not free the client. A client and everything it made belong to the thread running its loop.
 *
 * Endpoints and retries: a request goes first to the endpoint that last answered, then to
 * the next ones; reads are retried on any failure, writes only when nothing was sent (so a
 * put is never applied twice by the client). Two rounds over the endpoints at most, with a
 * jittered pause between them. Streams reconnect forever, with bounded jittered backoff.
 * Keys and values are bytes: `key_len` 0 means strlen(key). */
#ifndef VX_REGISTRY_ETCD_H
#define VX_REGISTRY_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "registry/kv.h"

struct ev_loop;
struct etcd_client;
struct etcd_watch;
struct etcd_keepalive;

/* gRPC status codes, as the gateway reports them in `code`. Failures the client sees itself
 * map onto the same codes: unreachable -> UNAVAILABLE, timed out -> DEADLINE_EXCEEDED,
 * response too large -> RESOURCE_EXHAUSTED, malformed response -> INTERNAL. */
enum etcd_code {
	ETCD_OK = 0,
	ETCD_CANCELLED = 1,
	ETCD_UNKNOWN = 2,
	ETCD_INVALID_ARGUMENT = 3,
	ETCD_DEADLINE_EXCEEDED = 4,
	ETCD_NOT_FOUND = 5,
	ETCD_ALREADY_EXISTS = 6,
	ETCD_PERMISSION_DENIED = 7,
	ETCD_RESOURCE_EXHAUSTED = 8,
	ETCD_FAILED_PRECONDITION = 9,
	ETCD_ABORTED = 10,
	ETCD_OUT_OF_RANGE = 11,
	ETCD_UNIMPLEMENTED = 12,
	ETCD_INTERNAL = 13,
	ETCD_UNAVAILABLE = 14,
	ETCD_DATA_LOSS = 15,
	ETCD_UNAUTHENTICATED = 16,
};
/* "NotFound", "Unavailable", ... ("code 42" style text for unknown values). */
const char *etcd_code_name(int code);

/* Client options. Zero fields take the documented defaults; strings are copied. */
struct etcd_opts {
	const char *const *endpoints; /* "http://host:port" or "https://host:port" */
	size_t n_endpoints;
	int64_t dial_timeout_us;     /* TCP + TLS connect, default 2 s */
	int64_t request_timeout_us;  /* one attempt of one unary request, default 5 s */
	size_t max_response_bytes;   /* one response or one stream message, default 32 MiB */
	const char *tls_ca;          /* PEM CA bundle to verify the server (https) */
	const char *tls_cert;        /* client certificate for mTLS (needs tls_key) */
	const char *tls_key;
	const char *user;            /* username/password auth; the caller reads the password file */
	const char *password;
	int64_t watch_stall_us;      /* stall detection window, default 30 s (see etcd_watch_start) */
	bool progress_notify;        /* also ask etcd for its own progress notifications */
	int64_t backoff_min_us;      /* stream reconnect backoff, default 50 ms ... */
	int64_t backoff_max_us;      /* ... doubling up to 2 s, each wait jittered to [b/2, b] */
};

struct etcd_header {
	uint64_t cluster_id;
	uint64_t member_id;
	int64_t revision;
	int64_t raft_term;
};

/* The result of one unary call. Which fields are filled depends on the call (noted at each);
 * absent fields in etcd's answer are their zero defaults, as proto3 says. */
struct etcd_resp {
	enum etcd_code code; /* ETCD_OK, or why the call failed */
	long http_status;    /* 0 when no HTTP answer arrived */
	char *error;         /* async callbacks: the failure message, NULL on success */
	struct etcd_header header;
	struct etcd_kv *kvs; /* range: the kvs; put: the prev kv (0 or 1); delete: the prev kvs;
			      * lease time-to-live: the attached keys (key only) */
	size_t n_kvs;
	int64_t count;       /* range: count; delete: number deleted */
	bool more;           /* range: more keys past the limit */
	bool succeeded;      /* txn: the compares held (absent in etcd's answer = false) */
	struct etcd_resp *ops; /* txn: one response per request that ran */
	size_t n_ops;
	int64_t lease_id;    /* lease grant / time-to-live */
	int64_t ttl;         /* lease grant / time-to-live (-1: expired or unknown lease) */
	int64_t granted_ttl; /* lease time-to-live */
	uint64_t leader;     /* endpoint status: the leader's member id */
	char *version;       /* endpoint status: the server version */
	int64_t db_size;     /* endpoint status */
};
void etcd_resp_release(struct etcd_resp *r);
/* Moves src into dst (dst is overwritten, src left empty), e.g. to keep it past a callback. */
void etcd_resp_move(struct etcd_resp *dst, struct etcd_resp *src);

/* Called once per async call; resp is released after the callback unless moved out. */
typedef void (*etcd_resp_cb)(void *arg, struct etcd_resp *resp);

/* loop NULL: the client makes a private loop (for the synchronous wrappers). */
struct etcd_client *etcd_client_new(struct ev_loop *loop, const struct etcd_opts *opts, struct vxerr *err);
/* Drops pending calls without calling their callbacks and closes every stream; watches and
 * keepalives still alive must then only be freed. Must not be called from a callback. */
void etcd_client_free(struct etcd_client *c);
struct ev_loop *etcd_client_loop(struct etcd_client *c);

/* ---- KV ---- */

/* Selects one key, every key starting with key (prefix), or [key, range_end). */
struct etcd_range_req {
	const char *key;
	size_t key_len;
	bool prefix;
	const char *range_end; /* when not prefix; NULL: the single key */
	size_t range_end_len;
	int64_t limit;     /* 0: no limit */
	int64_t revision;  /* 0: the current revision */
	int64_t min_mod_revision; /* 0: no filter; else only keys modified at or after it */
	bool keys_only;
	bool count_only;
};
struct etcd_put_req {
	const char *key;
	size_t key_len;
	const char *value;
	size_t value_len; /* 0 means strlen(value) when value is not NULL */
	int64_t lease;    /* 0: none */
	bool prev_kv;
};
struct etcd_delete_req {
	const char *key;
	size_t key_len;
	bool prefix;
	const char *range_end;
	size_t range_end_len;
	bool prev_kv;
};

enum etcd_cmp_target { ETCD_CMP_VERSION, ETCD_CMP_CREATE, ETCD_CMP_MOD, ETCD_CMP_VALUE, ETCD_CMP_LEASE };
enum etcd_cmp_result { ETCD_CMP_EQUAL, ETCD_CMP_GREATER, ETCD_CMP_LESS, ETCD_CMP_NOT_EQUAL };
struct etcd_compare {
	enum etcd_cmp_target target;
	enum etcd_cmp_result result;
	const char *key;
	size_t key_len;
	int64_t number;    /* version, create/mod revision or lease, per target */
	const char *value; /* ETCD_CMP_VALUE */
	size_t value_len;
};
enum etcd_op_type { ETCD_OP_RANGE, ETCD_OP_PUT, ETCD_OP_DELETE };
struct etcd_txn_op {
	enum etcd_op_type type;
	struct etcd_range_req range;
	struct etcd_put_req put;
	struct etcd_delete_req del;
};
struct etcd_txn_req {
	const struct etcd_compare *compare;
	size_t n_compare;
	const struct etcd_txn_op *success;
	size_t n_success;
	const struct etcd_txn_op *failure;
	size_t n_failure;
};

int etcd_range_async(struct etcd_client *c, const struct etcd_range_req *req, etcd_resp_cb cb, void *arg,
		     struct vxerr *err);
int etcd_put_async(struct etcd_client *c, const struct etcd_put_req *req, etcd_resp_cb cb, void *arg,
		   struct vxerr *err);
int etcd_delete_async(struct etcd_client *c, const struct etcd_delete_req *req, etcd_resp_cb cb, void *arg,
		      struct vxerr *err);
int etcd_txn_async(struct etcd_client *c, const struct etcd_txn_req *req, etcd_resp_cb cb, void *arg,
		   struct vxerr *err);
int etcd_compact_async(struct etcd_client *c, int64_t revision, etcd_resp_cb cb, void *arg, struct vxerr *err);

int etcd_range(struct etcd_client *c, const struct etcd_range_req *req, struct etcd_resp *out, struct vxerr *err);
int etcd_put(struct etcd_client *c, const struct etcd_put_req *req, struct etcd_resp *out, struct vxerr *err);
int etcd_delete(struct etcd_client *c, const struct etcd_delete_req *req, struct etcd_resp *out, struct vxerr *err);
int etcd_txn(struct etcd_client *c, const struct etcd_txn_req *req, struct etcd_resp *out, struct vxerr *err);
int etcd_compact(struct etcd_client *c, int64_t revision, struct etcd_resp *out, struct vxerr *err);

/* Everything under a prefix at ONE revision: pages of page_limit keys (0: 1000), the first at
 * the current revision R, every later page pinned to R. When R is compacted between pages
 * the listing restarts (at most 3 times); a partial or mixed read is never returned. A page
 * whose answer is over max_response_bytes (large values) is asked again half as long, down to
 * one key; one key over the bound fails the listing with ETCD_RESOURCE_EXHAUSTED. On success out->kvs holds all kvs in key order, out->header.revision is R. */
int etcd_list_async(struct etcd_client *c, const char *prefix, size_t prefix_len, int64_t page_limit,
		    etcd_resp_cb cb, void *arg, struct vxerr *err);
int etcd_list(struct etcd_client *c, const char *prefix, size_t prefix_len, int64_t page_limit,
	      struct etcd_resp *out, struct vxerr *err);

/* The range_end selecting every key that starts with prefix: drop trailing 0xff bytes,
 * increment the last byte; "\0" (length 1) means "to the end of the keyspace". out must hold
 * max(prefix_len, 1) bytes. Returns the length written. */
size_t etcd_prefix_end(const char *prefix, size_t prefix_len, char *out);

/* ---- leases ---- */

/* ttl_s > 0; id 0 lets etcd choose. Fills lease_id and ttl. */
int etcd_lease_grant_async(struct etcd_client *c, int64_t ttl_s, int64_t id, etcd_resp_cb cb, void *arg,
			   struct vxerr *err);
int etcd_lease_revoke_async(struct etcd_client *c, int64_t id, etcd_resp_cb cb, void *arg, struct vxerr *err);
/* Fills lease_id, ttl (-1 when the lease is gone), granted_ttl, and kvs (keys) when keys. */
int etcd_lease_ttl_async(struct etcd_client *c, int64_t id, bool keys, etcd_resp_cb cb, void *arg,
			 struct vxerr *err);
int etcd_lease_grant(struct etcd_client *c, int64_t ttl_s, int64_t id, struct etcd_resp *out, struct vxerr *err);
int etcd_lease_revoke(struct etcd_client *c, int64_t id, struct etcd_resp *out, struct vxerr *err);
int etcd_lease_ttl(struct etcd_client *c, int64_t id, bool keys, struct etcd_resp *out, struct vxerr *err);

/* A lease kept alive: one keepalive every TTL/3 (each a short POST on a kept-alive connection:
 * etcd 3.4's gateway cannot stream replies to an open upload), each reply parsed as it
 * arrives. `renewed` reports every renewal (the TTL etcd granted).
 * `lost` is called once, then the keepalive is inert (free it): the lease expired or was
 * revoked (a reply without TTL, or NotFound), or no renewal arrived for a whole TTL.
 * `trouble` (optional) reports connection problems while the client keeps retrying, on the
 * next endpoint with backoff, as long as the lease may still be alive. */
struct etcd_keepalive_cbs {
	void (*renewed)(void *arg, int64_t ttl_s);
	void (*lost)(void *arg, const char *reason);
	void (*trouble)(void *arg, const char *detail);
	void *arg;
};
/* ttl_s: the lease's TTL as granted (used until the first reply tells it). */
struct etcd_keepalive *etcd_keepalive_start(struct etcd_client *c, int64_t lease_id, int64_t ttl_s,
					    const struct etcd_keepalive_cbs *cbs, struct vxerr *err);
/* Stops keeping the lease alive (the lease itself is left to expire). NULL is a no-op. */
void etcd_keepalive_free(struct etcd_keepalive *ka);

/* ---- watch ---- */

struct etcd_watch_req {
	const char *key;
	size_t key_len;
	bool prefix;
	int64_t start_revision; /* 0: from now */
	bool prev_kv;
};

/* One watch response. Events are in revision order and valid only during the callback.
 * delivered_revision: every change up to it has now been delivered (a resume point);
 * a progress notification is a batch without events that only advances it. */
struct etcd_watch_batch {
	int64_t revision; /* the header revision etcd sent */
	int64_t delivered_revision;
	const struct etcd_event *events;
	size_t n_events;
};

enum etcd_resync_reason {
	ETCD_RESYNC_COMPACTED, /* the revision to resume from was compacted */
	ETCD_RESYNC_CANCELED,  /* etcd cancelled the watch (auth, permissions, ...) */
	ETCD_RESYNC_STALLED,   /* a watched key changed but the stream stayed silent */
	ETCD_RESYNC_BACKWARDS, /* a revision went backwards */
	ETCD_RESYNC_BROKEN,    /* a message could not be decoded or was too large */
};
const char *etcd_resync_reason_name(enum etcd_resync_reason r);

/* Stalls: after watch_stall_us/2 without a message the client asks the watch's own member
 * for watched keys modified after the delivered revision; one that is still undelivered
 * watch_stall_us/2 later means the stream stalled (resync); a member that does not answer
 * counts as a lost connection (reconnect elsewhere and resume).
 *
 * `events` gets every batch. `resync` is called once when the watch cannot continue without
 * a full re-list; the watch is then inert (free it, list, and watch again from the listed
 * revision + 1). `connection` (optional) reports a lost (up false, why) or re-established
 * (up true) stream; while down, the client reconnects and resumes from delivered_revision + 1
 * by itself, so no event is lost or repeated. */
struct etcd_watch_cbs {
	void (*events)(void *arg, const struct etcd_watch_batch *batch);
	void (*resync)(void *arg, enum etcd_resync_reason reason, const char *detail);
	void (*connection)(void *arg, bool up, const char *detail);
	void *arg;
};
struct etcd_watch *etcd_watch_start(struct etcd_client *c, const struct etcd_watch_req *req,
				    const struct etcd_watch_cbs *cbs, struct vxerr *err);
/* Every change up to this revision has been delivered (0 before the first message). */
int64_t etcd_watch_delivered(const struct etcd_watch *w);
/* NULL is a no-op; safe inside the watch's own callbacks. */
void etcd_watch_free(struct etcd_watch *w);

/* ---- maintenance ---- */

/* Status of one endpoint (by index into opts.endpoints), without failover: fills header
 * (member_id), leader, version, db_size. */
int etcd_endpoint_status(struct etcd_client *c, size_t endpoint, struct etcd_resp *out, struct vxerr *err);

#endif
