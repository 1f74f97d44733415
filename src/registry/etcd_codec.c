/* etcd gateway JSON: request encoders and strict response / stream-message decoders. */
#include "registry/etcd_codec.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/b64.h"
#include "common/parse.h"

/* ---------------------------------------------------------------- requests */

static size_t blen(const char *p, size_t n)
{
	return n || !p ? n : strlen(p);
}

static json_t *j_bytes(const char *p, size_t n)
{
	size_t cap = b64_encoded_size(n);
	char *enc = xmalloc(cap);
	b64_encode(p ? p : "", n, enc, cap);
	json_t *j = json_string(enc);
	free(enc);
	return j;
}

/* int64 as a JSON string: the gateway's own convention, exact beyond 2^53. */
static json_t *j_i64(int64_t v)
{
	char s[24];
	snprintf(s, sizeof(s), "%lld", (long long)v);
	return json_string(s);
}

static char *dump(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	if (!s)
		abort(); /* only fails on allocation failure */
	return s;
}

size_t etcd_prefix_end(const char *prefix, size_t prefix_len, char *out)
{
	size_t n = prefix_len;
	while (n > 0 && (unsigned char)prefix[n - 1] == 0xff)
		n--;
	if (n == 0) {
		out[0] = '\0';
		return 1;
	}
	memcpy(out, prefix, n);
	out[n - 1] = (char)((unsigned char)out[n - 1] + 1);
	return n;
}

/* key, and range_end for a prefix or an explicit end. An empty prefix means every key,
 * which etcd spells key "\0", range_end "\0". */
static void set_range(json_t *o, const char *key, size_t key_len, bool prefix, const char *end, size_t end_len)
{
	key_len = blen(key, key_len);
	if (prefix) {
		char *re = xmalloc(key_len ? key_len : 1);
		size_t rn = etcd_prefix_end(key, key_len, re);
		json_object_set_new(o, "key", key_len ? j_bytes(key, key_len) : j_bytes("", 1));
		json_object_set_new(o, "range_end", j_bytes(re, rn));
		free(re);
		return;
	}
	json_object_set_new(o, "key", j_bytes(key, key_len));
	if (end)
		json_object_set_new(o, "range_end", j_bytes(end, blen(end, end_len)));
}

static json_t *range_obj(const struct etcd_range_req *r)
{
	json_t *o = json_object();
	set_range(o, r->key, r->key_len, r->prefix, r->range_end, r->range_end_len);
	if (r->limit > 0)
		json_object_set_new(o, "limit", j_i64(r->limit));
	if (r->revision > 0)
		json_object_set_new(o, "revision", j_i64(r->revision));
	if (r->min_mod_revision > 0)
		json_object_set_new(o, "min_mod_revision", j_i64(r->min_mod_revision));
	if (r->keys_only)
		json_object_set_new(o, "keys_only", json_true());
	if (r->count_only)
		json_object_set_new(o, "count_only", json_true());
	return o;
}

static json_t *put_obj(const struct etcd_put_req *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "key", j_bytes(r->key, blen(r->key, r->key_len)));
	json_object_set_new(o, "value", j_bytes(r->value, blen(r->value, r->value_len)));
	if (r->lease)
		json_object_set_new(o, "lease", j_i64(r->lease));
	if (r->prev_kv)
		json_object_set_new(o, "prev_kv", json_true());
	return o;
}

static json_t *delete_obj(const struct etcd_delete_req *r)
{
	json_t *o = json_object();
	set_range(o, r->key, r->key_len, r->prefix, r->range_end, r->range_end_len);
	if (r->prev_kv)
		json_object_set_new(o, "prev_kv", json_true());
	return o;
}

char *etcd_enc_range(const struct etcd_range_req *req)
{
	return dump(range_obj(req));
}

char *etcd_enc_put(const struct etcd_put_req *req)
{
	return dump(put_obj(req));
}

char *etcd_enc_delete(const struct etcd_delete_req *req)
{
	return dump(delete_obj(req));
}

static const char *const cmp_targets[] = { "VERSION", "CREATE", "MOD", "VALUE", "LEASE" };
static const char *const cmp_results[] = { "EQUAL", "GREATER", "LESS", "NOT_EQUAL" };
static const char *const cmp_fields[] = { "version", "create_revision", "mod_revision", "value", "lease" };

static json_t *compare_obj(const struct etcd_compare *c)
{
	json_t *o = json_object();
	unsigned t = (unsigned)c->target <= ETCD_CMP_LEASE ? (unsigned)c->target : ETCD_CMP_VERSION;
	unsigned r = (unsigned)c->result <= ETCD_CMP_NOT_EQUAL ? (unsigned)c->result : ETCD_CMP_EQUAL;
	json_object_set_new(o, "key", j_bytes(c->key, blen(c->key, c->key_len)));
	json_object_set_new(o, "target", json_string(cmp_targets[t]));
	json_object_set_new(o, "result", json_string(cmp_results[r]));
	if (t == ETCD_CMP_VALUE)
		json_object_set_new(o, cmp_fields[t], j_bytes(c->value, blen(c->value, c->value_len)));
	else
		json_object_set_new(o, cmp_fields[t], j_i64(c->number));
	return o;
}

static json_t *ops_array(const struct etcd_txn_op *ops, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *o = json_object();
		if (ops[i].type == ETCD_OP_PUT)
			json_object_set_new(o, "request_put", put_obj(&ops[i].put));
		else if (ops[i].type == ETCD_OP_DELETE)
			json_object_set_new(o, "request_delete_range", delete_obj(&ops[i].del));
		else
			json_object_set_new(o, "request_range", range_obj(&ops[i].range));
		json_array_append_new(a, o);
	}
	return a;
}

char *etcd_enc_txn(const struct etcd_txn_req *req)
{
	json_t *o = json_object();
	json_t *cmp = json_array();
	for (size_t i = 0; i < req->n_compare; i++)
		json_array_append_new(cmp, compare_obj(&req->compare[i]));
	json_object_set_new(o, "compare", cmp);
	json_object_set_new(o, "success", ops_array(req->success, req->n_success));
	json_object_set_new(o, "failure", ops_array(req->failure, req->n_failure));
	return dump(o);
}

char *etcd_enc_compact(int64_t revision)
{
	return dump(json_pack("{s:o}", "revision", j_i64(revision)));
}

char *etcd_enc_grant(int64_t ttl_s, int64_t id)
{
	json_t *o = json_pack("{s:o}", "TTL", j_i64(ttl_s));
	if (id)
		json_object_set_new(o, "ID", j_i64(id));
	return dump(o);
}

char *etcd_enc_lease_id(int64_t id)
{
	return dump(json_pack("{s:o}", "ID", j_i64(id)));
}

char *etcd_enc_ttl(int64_t id, bool keys)
{
	return dump(json_pack("{s:o,s:b}", "ID", j_i64(id), "keys", keys));
}

char *etcd_enc_auth(const char *user, const char *password)
{
	return dump(json_pack("{s:s,s:s}", "name", user, "password", password));
}

char *etcd_enc_watch_create(const struct etcd_watch_req *req, int64_t start_revision, bool progress_notify)
{
	json_t *o = json_object();
	set_range(o, req->key, req->key_len, req->prefix, NULL, 0);
	if (start_revision > 0)
		json_object_set_new(o, "start_revision", j_i64(start_revision));
	if (req->prev_kv)
		json_object_set_new(o, "prev_kv", json_true());
	if (progress_notify)
		json_object_set_new(o, "progress_notify", json_true());
	return dump(json_pack("{s:o}", "create_request", o));
}

/* ---------------------------------------------------------------- decoding helpers */

int etcd_json_object(const char *p, size_t n, json_t **out, struct vxerr *err)
{
	json_error_t je;
	json_t *j = json_loadb(p, n, JSON_REJECT_DUPLICATES, &je);
	if (!j)
		return vxerr_set(err, "malformed JSON at byte %d: %s", je.position, je.text);
	if (!json_is_object(j)) {
		json_decref(j);
		return vxerr_set(err, "expected a JSON object");
	}
	*out = j;
	return 0;
}

/* An int64 field: a decimal string (the gateway's form) or an integer; absent = 0. */
static int get_i64(const json_t *o, const char *name, int64_t min, int64_t max, int64_t *out, struct vxerr *err)
{
	json_t *v = json_object_get(o, name);
	int64_t x = 0;
	if (!v) {
		x = 0;
	} else if (json_is_string(v)) {
		if (parse_i64_n(json_string_value(v), json_string_length(v), min, max, &x) != 0)
			return vxerr_set(err, "field %s: not an integer in range", name);
	} else if (json_is_integer(v)) {
		x = json_integer_value(v);
	} else {
		return vxerr_set(err, "field %s: expected an integer", name);
	}
	if (x < min || x > max)
		return vxerr_set(err, "field %s: %lld out of range", name, (long long)x);
	*out = x;
	return 0;
}

/* cluster_id and member_id are uint64 and use the whole range. */
static int get_u64(const json_t *o, const char *name, uint64_t *out, struct vxerr *err)
{
	json_t *v = json_object_get(o, name);
	if (!v) {
		*out = 0;
		return 0;
	}
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	const char *s = json_is_string(v) ? json_string_value(v) : NULL;
	size_t n = s ? json_string_length(v) : 0;
	if (!s || n == 0 || n > 20)
		return vxerr_set(err, "field %s: expected an unsigned integer", name);
	uint64_t x = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)s[i]) || x > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			return vxerr_set(err, "field %s: expected an unsigned integer", name);
		x = x * 10 + (uint64_t)(s[i] - '0');
	}
	*out = x;
	return 0;
}

static int get_bool(const json_t *o, const char *name, bool *out, struct vxerr *err)
{
	json_t *v = json_object_get(o, name);
	if (v && !json_is_boolean(v))
		return vxerr_set(err, "field %s: expected a boolean", name);
	*out = v && json_is_true(v);
	return 0;
}

/* A string field copied to the heap; absent = NULL. */
static int get_str(const json_t *o, const char *name, char **out, struct vxerr *err)
{
	json_t *v = json_object_get(o, name);
	if (v && !json_is_string(v))
		return vxerr_set(err, "field %s: expected a string", name);
	*out = v ? xstrndup(json_string_value(v), json_string_length(v)) : NULL;
	return 0;
}

/* An object field; absent = NULL (not an error). */
static int get_obj(const json_t *o, const char *name, json_t **out, struct vxerr *err)
{
	json_t *v = json_object_get(o, name);
	*out = NULL;
	if (v && !json_is_object(v))
		return vxerr_set(err, "field %s: expected an object", name);
	*out = v;
	return 0;
}

static int get_arr(const json_t *o, const char *name, json_t **out, struct vxerr *err)
{
	json_t *v = json_object_get(o, name);
	*out = NULL;
	if (v && !json_is_array(v))
		return vxerr_set(err, "field %s: expected an array", name);
	*out = v;
	return 0;
}

/* A base64 JSON string decoded into a NUL-terminated heap copy. */
static int bytes_of(const json_t *v, const char *name, char **out, size_t *len, struct vxerr *err)
{
	if (!json_is_string(v))
		return vxerr_set(err, "field %s: expected a base64 string", name);
	size_t n = json_string_length(v);
	size_t cap = n / 4 * 3 + 1;
	char *p = xmalloc(cap);
	long got = b64_decode(json_string_value(v), n, p, cap);
	if (got < 0) {
		free(p);
		return vxerr_set(err, "field %s: invalid base64", name);
	}
	p[got] = '\0';
	*out = p;
	*len = (size_t)got;
	return 0;
}

/* A bytes field; absent = NULL. */
static int get_bytes(const json_t *o, const char *name, char **out, size_t *len, struct vxerr *err)
{
	json_t *v = json_object_get(o, name);
	*out = NULL;
	*len = 0;
	return v ? bytes_of(v, name, out, len, err) : 0;
}

static int dec_header(const json_t *o, struct etcd_header *h, struct vxerr *err)
{
	json_t *hd;
	memset(h, 0, sizeof(*h));
	if (get_obj(o, "header", &hd, err) != 0)
		return -1;
	if (!hd)
		return 0;
	if (get_u64(hd, "cluster_id", &h->cluster_id, err) != 0 || get_u64(hd, "member_id", &h->member_id, err) != 0 ||
	    get_i64(hd, "revision", 0, INT64_MAX, &h->revision, err) != 0 ||
	    get_i64(hd, "raft_term", 0, INT64_MAX, &h->raft_term, err) != 0)
		return vxerr_prefix(err, "header: ");
	return 0;
}

void etcd_kv_release(struct etcd_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void etcd_event_release(struct etcd_event *ev)
{
	if (!ev)
		return;
	etcd_kv_release(&ev->kv);
	etcd_kv_release(&ev->prev_kv);
}

static int dec_kv(const json_t *o, struct etcd_kv *kv, bool need_key, struct vxerr *err)
{
	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(o))
		return vxerr_set(err, "kv: expected an object");
	if (get_bytes(o, "key", &kv->key, &kv->key_len, err) != 0 ||
	    get_bytes(o, "value", &kv->value, &kv->value_len, err) != 0 ||
	    get_i64(o, "create_revision", 0, INT64_MAX, &kv->create_revision, err) != 0 ||
	    get_i64(o, "mod_revision", 0, INT64_MAX, &kv->mod_revision, err) != 0 ||
	    get_i64(o, "version", 0, INT64_MAX, &kv->version, err) != 0 ||
	    get_i64(o, "lease", INT64_MIN, INT64_MAX, &kv->lease, err) != 0)
		goto fail;
	if (need_key && !kv->key) {
		vxerr_set(err, "kv without a key");
		goto fail;
	}
	if (!kv->key)
		kv->key = xstrdup("");
	return 0;
fail:
	etcd_kv_release(kv);
	return vxerr_prefix(err, "kv: ");
}

static void kvs_free(struct etcd_kv *kvs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		etcd_kv_release(&kvs[i]);
	free(kvs);
}

static int dec_kvs(const json_t *o, const char *name, struct etcd_kv **out, size_t *n_out, struct vxerr *err)
{
	json_t *a;
	*out = NULL;
	*n_out = 0;
	if (get_arr(o, name, &a, err) != 0)
		return -1;
	size_t n = a ? json_array_size(a) : 0;
	if (n == 0)
		return 0;
	struct etcd_kv *kvs = xcalloc(n, sizeof(*kvs));
	for (size_t i = 0; i < n; i++) {
		if (dec_kv(json_array_get(a, i), &kvs[i], true, err) != 0) {
			kvs_free(kvs, i);
			return vxerr_prefix(err, "%s[%zu]: ", name, i);
		}
	}
	*out = kvs;
	*n_out = n;
	return 0;
}

/* ---------------------------------------------------------------- unary answers */

static int code_of_http(long st)
{
	switch (st) {
	case 400: return ETCD_INVALID_ARGUMENT;
	case 401: return ETCD_UNAUTHENTICATED;
	case 403: return ETCD_PERMISSION_DENIED;
	case 404: return ETCD_NOT_FOUND;
	case 405: return ETCD_UNIMPLEMENTED;
	case 409: return ETCD_ABORTED;
	case 412: return ETCD_FAILED_PRECONDITION;
	case 413: return ETCD_RESOURCE_EXHAUSTED;
	case 429: return ETCD_RESOURCE_EXHAUSTED;
	case 499: return ETCD_CANCELLED;
	case 501: return ETCD_UNIMPLEMENTED;
	case 503: return ETCD_UNAVAILABLE;
	case 504: return ETCD_DEADLINE_EXCEEDED;
	default: return st >= 500 ? ETCD_INTERNAL : ETCD_UNKNOWN;
	}
}

/* Copies up to cap-1 printable bytes of the first line of a text body. */
static void text_line(const char *p, size_t n, char *msg, size_t cap)
{
	size_t o = 0;
	while (n > 0 && isspace((unsigned char)*p)) {
		p++;
		n--;
	}
	for (size_t i = 0; i < n && o + 1 < cap && p[i] != '\n' && p[i] != '\r'; i++)
		msg[o++] = isprint((unsigned char)p[i]) ? p[i] : '?';
	msg[o] = '\0';
}

void etcd_dec_error(const char *body, size_t n, long http_status, int *code, char *msg, size_t cap)
{
	json_t *o = NULL;
	int c = code_of_http(http_status);
	msg[0] = '\0';
	if (n > 0 && etcd_json_object(body, n, &o, NULL) == 0) {
		json_t *e = json_object_get(o, "error");
		json_t *m = json_object_get(o, "message");
		json_t *jc = json_object_get(o, "code");
		const char *text = json_is_string(m) ? json_string_value(m) : json_is_string(e) ? json_string_value(e) : "";
		text_line(text, strlen(text), msg, cap);
		if (json_is_integer(jc) && json_integer_value(jc) > 0 && json_integer_value(jc) <= 16)
			c = (int)json_integer_value(jc);
		json_decref(o);
	} else if (n > 0) {
		text_line(body, n, msg, cap);
	}
	if (!msg[0])
		snprintf(msg, cap, "HTTP %ld", http_status);
	*code = c;
}

static int dec_range(const json_t *o, struct etcd_resp *r, struct vxerr *err)
{
	if (dec_kvs(o, "kvs", &r->kvs, &r->n_kvs, err) != 0)
		return -1;
	if (get_i64(o, "count", 0, INT64_MAX, &r->count, err) != 0 || get_bool(o, "more", &r->more, err) != 0)
		return -1;
	return 0;
}

static int dec_put(const json_t *o, struct etcd_resp *r, struct vxerr *err)
{
	json_t *p;
	if (get_obj(o, "prev_kv", &p, err) != 0)
		return -1;
	if (!p)
		return 0;
	r->kvs = xcalloc(1, sizeof(*r->kvs));
	r->n_kvs = 1;
	if (dec_kv(p, &r->kvs[0], true, err) != 0)
		return vxerr_prefix(err, "prev_kv: ");
	return 0;
}

static int dec_delete(const json_t *o, struct etcd_resp *r, struct vxerr *err)
{
	if (get_i64(o, "deleted", 0, INT64_MAX, &r->count, err) != 0)
		return -1;
	return dec_kvs(o, "prev_kvs", &r->kvs, &r->n_kvs, err);
}

static int dec_body(enum etcd_call_kind kind, const json_t *o, struct etcd_resp *r, struct vxerr *err);

/* One entry of a txn's responses: {"response_put":{...}} and the like. */
static int dec_txn_op(const json_t *item, struct etcd_resp *r, struct vxerr *err)
{
	static const struct {
		const char *name;
		enum etcd_call_kind kind;
	} kinds[] = { { "response_range", ETCD_CALL_RANGE },
		      { "response_put", ETCD_CALL_PUT },
		      { "response_delete_range", ETCD_CALL_DELETE },
		      { "response_txn", ETCD_CALL_TXN } };
	if (!json_is_object(item))
		return vxerr_set(err, "expected an object");
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		json_t *sub;
		if (get_obj(item, kinds[i].name, &sub, err) != 0)
			return -1;
		if (sub)
			return dec_body(kinds[i].kind, sub, r, err);
	}
	return 0; /* an answer type this client never asks for: kept empty */
}

static int dec_txn(const json_t *o, struct etcd_resp *r, struct vxerr *err)
{
	json_t *a;
	if (get_bool(o, "succeeded", &r->succeeded, err) != 0 || get_arr(o, "responses", &a, err) != 0)
		return -1;
	size_t n = a ? json_array_size(a) : 0;
	if (n == 0)
		return 0;
	r->ops = xcalloc(n, sizeof(*r->ops));
	r->n_ops = n;
	for (size_t i = 0; i < n; i++)
		if (dec_txn_op(json_array_get(a, i), &r->ops[i], err) != 0)
			return vxerr_prefix(err, "responses[%zu]: ", i);
	return 0;
}

static int dec_lease(const json_t *o, struct etcd_resp *r, struct vxerr *err)
{
	if (get_i64(o, "ID", INT64_MIN, INT64_MAX, &r->lease_id, err) != 0 ||
	    get_i64(o, "TTL", -1, INT64_MAX, &r->ttl, err) != 0 ||
	    get_i64(o, "grantedTTL", 0, INT64_MAX, &r->granted_ttl, err) != 0)
		return -1;
	return 0;
}

static int dec_ttl(const json_t *o, struct etcd_resp *r, struct vxerr *err)
{
	json_t *a;
	if (dec_lease(o, r, err) != 0 || get_arr(o, "keys", &a, err) != 0)
		return -1;
	size_t n = a ? json_array_size(a) : 0;
	if (n == 0)
		return 0;
	r->kvs = xcalloc(n, sizeof(*r->kvs));
	r->n_kvs = n;
	for (size_t i = 0; i < n; i++)
		if (bytes_of(json_array_get(a, i), "keys", &r->kvs[i].key, &r->kvs[i].key_len, err) != 0)
			return vxerr_prefix(err, "keys[%zu]: ", i);
	return 0;
}

static int dec_status(const json_t *o, struct etcd_resp *r, struct vxerr *err)
{
	if (get_u64(o, "leader", &r->leader, err) != 0 || get_str(o, "version", &r->version, err) != 0 ||
	    get_i64(o, "dbSize", 0, INT64_MAX, &r->db_size, err) != 0)
		return -1;
	return 0;
}

static int dec_body(enum etcd_call_kind kind, const json_t *o, struct etcd_resp *r, struct vxerr *err)
{
	if (dec_header(o, &r->header, err) != 0)
		return -1;
	switch (kind) {
	case ETCD_CALL_RANGE: return dec_range(o, r, err);
	case ETCD_CALL_PUT: return dec_put(o, r, err);
	case ETCD_CALL_DELETE: return dec_delete(o, r, err);
	case ETCD_CALL_TXN: return dec_txn(o, r, err);
	case ETCD_CALL_GRANT: return dec_lease(o, r, err);
	case ETCD_CALL_TTL: return dec_ttl(o, r, err);
	case ETCD_CALL_STATUS: return dec_status(o, r, err);
	case ETCD_CALL_COMPACT:
	case ETCD_CALL_REVOKE:
	case ETCD_CALL_AUTH:
		return 0;
	}
	return 0;
}

int etcd_dec_resp(enum etcd_call_kind kind, const char *body, size_t n, struct etcd_resp *out, struct vxerr *err)
{
	json_t *o;
	struct etcd_resp r = { 0 };
	if (etcd_json_object(body, n, &o, err) != 0)
		return -1;
	int rc = dec_body(kind, o, &r, err);
	json_decref(o);
	if (rc != 0) {
		etcd_resp_release(&r);
		return -1;
	}
	*out = r;
	return 0;
}

int etcd_dec_token(const char *body, size_t n, char **token, struct vxerr *err)
{
	json_t *o;
	char *t = NULL;
	if (etcd_json_object(body, n, &o, err) != 0)
		return -1;
	int rc = get_str(o, "token", &t, err);
	json_decref(o);
	if (rc != 0)
		return -1;
	if (!t || !*t || strpbrk(t, "\r\n")) {
		free(t);
		return vxerr_set(err, "authenticate answer holds no usable token");
	}
	*token = t;
	return 0;
}

/* ---------------------------------------------------------------- stream messages */

/* {"error":{"grpc_code":14,"http_code":503,"message":"transport is closing",...}} */
static int dec_stream_error(const json_t *e, int *code, char **msg, struct vxerr *err)
{
	int64_t c;
	if (!json_is_object(e))
		return vxerr_set(err, "field error: expected an object");
	if (get_i64(e, "grpc_code", 0, 16, &c, err) != 0 || get_str(e, "message", msg, err) != 0)
		return vxerr_prefix(err, "error: ");
	*code = (int)c;
	if (!*msg)
		*msg = xstrdup("stream error");
	return 0;
}

/* Splits {"result":R} / {"error":E}: returns the object R, or NULL after filling the error. */
static int stream_envelope(json_t *o, json_t **result, bool *is_error, int *code, char **msg, struct vxerr *err)
{
	json_t *e = json_object_get(o, "error");
	*result = NULL;
	*is_error = false;
	if (e) {
		*is_error = true;
		return dec_stream_error(e, code, msg, err);
	}
	if (get_obj(o, "result", result, err) != 0)
		return -1;
	if (!*result)
		return vxerr_set(err, "message has neither result nor error");
	return 0;
}

static int dec_event_type(const json_t *o, enum etcd_event_type *t, struct vxerr *err)
{
	json_t *v = json_object_get(o, "type");
	if (!v || (json_is_integer(v) && json_integer_value(v) == 0) ||
	    (json_is_string(v) && strcmp(json_string_value(v), "PUT") == 0)) {
		*t = ETCD_EVENT_PUT;
		return 0;
	}
	if ((json_is_integer(v) && json_integer_value(v) == 1) ||
	    (json_is_string(v) && strcmp(json_string_value(v), "DELETE") == 0)) {
		*t = ETCD_EVENT_DELETE;
		return 0;
	}
	return vxerr_set(err, "field type: unknown event type");
}

static int dec_event(const json_t *o, struct etcd_event *ev, struct vxerr *err)
{
	json_t *kv, *prev;
	memset(ev, 0, sizeof(*ev));
	if (!json_is_object(o))
		return vxerr_set(err, "expected an object");
	if (dec_event_type(o, &ev->type, err) != 0 || get_obj(o, "kv", &kv, err) != 0 ||
	    get_obj(o, "prev_kv", &prev, err) != 0)
		return -1;
	if (!kv)
		return vxerr_set(err, "event without kv");
	if (dec_kv(kv, &ev->kv, true, err) != 0)
		return -1;
	if (prev) {
		if (dec_kv(prev, &ev->prev_kv, true, err) != 0) {
			etcd_kv_release(&ev->kv);
			return vxerr_prefix(err, "prev_kv: ");
		}
		ev->has_prev = true;
	}
	return 0;
}

static int dec_events(const json_t *o, struct etcd_watch_msg *m, struct vxerr *err)
{
	json_t *a;
	if (get_arr(o, "events", &a, err) != 0)
		return -1;
	size_t n = a ? json_array_size(a) : 0;
	if (n == 0)
		return 0;
	m->events = xcalloc(n, sizeof(*m->events));
	for (size_t i = 0; i < n; i++) {
		if (dec_event(json_array_get(a, i), &m->events[i], err) != 0)
			return vxerr_prefix(err, "events[%zu]: ", i);
		m->n_events = i + 1;
	}
	return 0;
}

static int dec_watch_result(const json_t *r, struct etcd_watch_msg *m, struct vxerr *err)
{
	if (dec_header(r, &m->header, err) != 0 || get_i64(r, "watch_id", -1, INT64_MAX, &m->watch_id, err) != 0 ||
	    get_bool(r, "created", &m->created, err) != 0 || get_bool(r, "canceled", &m->canceled, err) != 0 ||
	    get_bool(r, "fragment", &m->fragment, err) != 0 ||
	    get_i64(r, "compact_revision", 0, INT64_MAX, &m->compact_revision, err) != 0 ||
	    get_str(r, "cancel_reason", &m->cancel_reason, err) != 0)
		return -1;
	return dec_events(r, m, err);
}

void etcd_watch_msg_release(struct etcd_watch_msg *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_events; i++)
		etcd_event_release(&m->events[i]);
	free(m->events);
	free(m->error_msg);
	free(m->cancel_reason);
	memset(m, 0, sizeof(*m));
}

int etcd_dec_watch_msg(const char *line, size_t n, struct etcd_watch_msg *out, struct vxerr *err)
{
	json_t *o, *r;
	struct etcd_watch_msg m = { 0 };
	if (etcd_json_object(line, n, &o, err) != 0)
		return -1;
	int rc = stream_envelope(o, &r, &m.is_error, &m.error_code, &m.error_msg, err);
	if (rc == 0 && r)
		rc = dec_watch_result(r, &m, err);
	json_decref(o);
	if (rc != 0) {
		etcd_watch_msg_release(&m);
		return vxerr_prefix(err, "watch message: ");
	}
	*out = m;
	return 0;
}

void etcd_keepalive_msg_release(struct etcd_keepalive_msg *m)
{
	if (!m)
		return;
	free(m->error_msg);
	memset(m, 0, sizeof(*m));
}

int etcd_dec_keepalive_msg(const char *line, size_t n, struct etcd_keepalive_msg *out, struct vxerr *err)
{
	json_t *o, *r;
	struct etcd_keepalive_msg m = { 0 };
	if (etcd_json_object(line, n, &o, err) != 0)
		return -1;
	int rc = stream_envelope(o, &r, &m.is_error, &m.error_code, &m.error_msg, err);
	if (rc == 0 && r) {
		rc = dec_header(r, &m.header, err);
		if (rc == 0)
			rc = get_i64(r, "ID", INT64_MIN, INT64_MAX, &m.id, err);
		if (rc == 0)
			rc = get_i64(r, "TTL", 0, INT64_MAX, &m.ttl, err);
	}
	json_decref(o);
	if (rc != 0) {
		etcd_keepalive_msg_release(&m);
		return vxerr_prefix(err, "keepalive message: ");
	}
	*out = m;
	return 0;
}

int etcd_next_line(const struct buf *in, bool eof, const char **line, size_t *len, size_t *used)
{
	size_t off = 0;
	while (off < in->len) {
		const char *p = in->data + off;
		const char *nl = memchr(p, '\n', in->len - off);
		size_t n = nl ? (size_t)(nl - p) : in->len - off;
		if (!nl && !eof)
			break;
		size_t next = off + n + (nl ? 1 : 0);
		size_t k = n;
		while (k > 0 && (p[k - 1] == '\r' || p[k - 1] == ' ' || p[k - 1] == '\t'))
			k--;
		if (k > 0) {
			*line = p;
			*len = k;
			*used = next;
			return 1;
		}
		off = next;
	}
	*used = off; /* blank lines that can be dropped */
	return 0;
}
