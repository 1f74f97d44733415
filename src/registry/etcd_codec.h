/* Encoding of etcd gateway requests and strict, bounded decoding of its answers and stream
 * messages. Pure (no I/O), so the unit tests and the fuzz target drive it directly.
 *
 * Gateway rules it follows (../../docs/etcd-client.md): int64 travel as JSON strings (numbers
 * are accepted too), absent fields are proto3 defaults (a PUT event has no `type`, a failed
 * txn no `succeeded`), bytes are standard padded base64, unknown fields are ignored, wrong
 * types are errors. */
#ifndef VX_REGISTRY_ETCD_CODEC_H
#define VX_REGISTRY_ETCD_CODEC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "registry/etcd.h"

/* What a unary body is decoded as. */
enum etcd_call_kind {
	ETCD_CALL_RANGE,
	ETCD_CALL_PUT,
	ETCD_CALL_DELETE,
	ETCD_CALL_TXN,
	ETCD_CALL_COMPACT,
	ETCD_CALL_GRANT,
	ETCD_CALL_REVOKE,
	ETCD_CALL_TTL,
	ETCD_CALL_AUTH,
	ETCD_CALL_STATUS,
};

/* ---- requests (each returns a heap JSON text, compact, caller frees) ---- */
char *etcd_enc_range(const struct etcd_range_req *req);
char *etcd_enc_put(const struct etcd_put_req *req);
char *etcd_enc_delete(const struct etcd_delete_req *req);
char *etcd_enc_txn(const struct etcd_txn_req *req);
char *etcd_enc_compact(int64_t revision);
char *etcd_enc_grant(int64_t ttl_s, int64_t id);
char *etcd_enc_lease_id(int64_t id); /* revoke and keepalive: {"ID":"<id>"} */
char *etcd_enc_ttl(int64_t id, bool keys);
char *etcd_enc_auth(const char *user, const char *password);
/* The create_request that opens a watch; start_revision 0 = from now. */
char *etcd_enc_watch_create(const struct etcd_watch_req *req, int64_t start_revision, bool progress_notify);

/* ---- decoding ---- */

/* Parses a JSON object of at most n bytes (no trailing garbage). */
int etcd_json_object(const char *p, size_t n, json_t **out, struct vxerr *err);

/* The failure carried by a non-200 answer (or a 200 whose body holds `code`): gRPC code and a
 * printable message (JSON `error`/`message`, else the first line of a text body, else the
 * HTTP status). A code the HTTP status implies is used when the body has none. */
void etcd_dec_error(const char *body, size_t n, long http_status, int *code, char *msg, size_t cap);

/* A unary success body into out (kind selects the fields); out written only on success. */
int etcd_dec_resp(enum etcd_call_kind kind, const char *body, size_t n, struct etcd_resp *out,
		  struct vxerr *err);
/* The token of an authenticate answer (heap string). */
int etcd_dec_token(const char *body, size_t n, char **token, struct vxerr *err);

/* One message of a watch stream: {"result":{...}} or {"error":{...}}. */
struct etcd_watch_msg {
	bool is_error;
	int error_code;
	char *error_msg;
	struct etcd_header header;
	int64_t watch_id;
	bool created;
	bool canceled;
	bool fragment;
	int64_t compact_revision;
	char *cancel_reason;
	struct etcd_event *events;
	size_t n_events;
};
int etcd_dec_watch_msg(const char *line, size_t n, struct etcd_watch_msg *out, struct vxerr *err);
void etcd_watch_msg_release(struct etcd_watch_msg *m);

/* One message of a keepalive stream. ttl 0 means the lease is gone. */
struct etcd_keepalive_msg {
	bool is_error;
	int error_code;
	char *error_msg;
	struct etcd_header header;
	int64_t id;
	int64_t ttl;
};
int etcd_dec_keepalive_msg(const char *line, size_t n, struct etcd_keepalive_msg *out, struct vxerr *err);
void etcd_keepalive_msg_release(struct etcd_keepalive_msg *m);

void etcd_kv_release(struct etcd_kv *kv);
void etcd_event_release(struct etcd_event *ev);

/* Newline-delimited framing of a stream body (after the transport has removed the chunking). Finds the
 * next complete message in `in` (without its '\n'; blank lines are skipped). At eof, a final
 * message without a newline counts too. Returns 1 with *line and *len set, or 0 when no complete
 * message is buffered; either way *used is the number of bytes the caller may drop. */
int etcd_next_line(const struct buf *in, bool eof, const char **line, size_t *len, size_t *used);

#endif
