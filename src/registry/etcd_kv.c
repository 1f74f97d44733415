/* KV calls (range, put, delete, txn, compact) and listing a prefix at one revision. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "registry/etcd_int.h"

#define LIST_DEFAULT_PAGE 1000
#define LIST_MAX_RESTARTS 3

static int check_key(const char *key, const char *what, struct vxerr *err)
{
	if (!key)
		return vxerr_set(err, "etcd %s: no key given", what);
	return 0;
}

int etcd_range_async(struct etcd_client *c, const struct etcd_range_req *req, etcd_resp_cb cb, void *arg,
		     struct vxerr *err)
{
	if (check_key(req->key, "range", err) != 0)
		return -1;
	if (req->limit < 0 || req->revision < 0)
		return vxerr_set(err, "etcd range: negative limit or revision");
	etcd_call_submit(c, ETCD_CALL_RANGE, "range", "/v3/kv/range", etcd_enc_range(req), true, -1, cb, arg);
	return 0;
}

int etcd_put_async(struct etcd_client *c, const struct etcd_put_req *req, etcd_resp_cb cb, void *arg,
		   struct vxerr *err)
{
	if (check_key(req->key, "put", err) != 0)
		return -1;
	etcd_call_submit(c, ETCD_CALL_PUT, "put", "/v3/kv/put", etcd_enc_put(req), false, -1, cb, arg);
	return 0;
}

int etcd_delete_async(struct etcd_client *c, const struct etcd_delete_req *req, etcd_resp_cb cb, void *arg,
		      struct vxerr *err)
{
	if (check_key(req->key, "delete", err) != 0)
		return -1;
	etcd_call_submit(c, ETCD_CALL_DELETE, "delete", "/v3/kv/deleterange", etcd_enc_delete(req), false, -1,
				cb, arg);
	return 0;
}

static int check_ops(const struct etcd_txn_op *ops, size_t n, struct vxerr *err)
{
	for (size_t i = 0; i < n; i++) {
		const struct etcd_txn_op *op = &ops[i];
		const char *key = op->type == ETCD_OP_PUT ? op->put.key : op->type == ETCD_OP_DELETE ? op->del.key
												    : op->range.key;
		if (check_key(key, "txn", err) != 0)
			return -1;
	}
	return 0;
}

int etcd_txn_async(struct etcd_client *c, const struct etcd_txn_req *req, etcd_resp_cb cb, void *arg,
		   struct vxerr *err)
{
	for (size_t i = 0; i < req->n_compare; i++)
		if (check_key(req->compare[i].key, "txn compare", err) != 0)
			return -1;
	if (check_ops(req->success, req->n_success, err) != 0 || check_ops(req->failure, req->n_failure, err) != 0)
		return -1;
	etcd_call_submit(c, ETCD_CALL_TXN, "txn", "/v3/kv/txn", etcd_enc_txn(req), false, -1, cb, arg);
	return 0;
}

int etcd_compact_async(struct etcd_client *c, int64_t revision, etcd_resp_cb cb, void *arg, struct vxerr *err)
{
	if (revision <= 0)
		return vxerr_set(err, "etcd compact: revision must be positive");
	etcd_call_submit(c, ETCD_CALL_COMPACT, "compact", "/v3/kv/compaction", etcd_enc_compact(revision), true,
				-1, cb, arg);
	return 0;
}

int etcd_range(struct etcd_client *c, const struct etcd_range_req *req, struct etcd_resp *out, struct vxerr *err)
{
	struct etcd_sync s = { 0 };
	return etcd_sync_run(c, &s, etcd_range_async(c, req, etcd_sync_cb, &s, err), out, err);
}

int etcd_put(struct etcd_client *c, const struct etcd_put_req *req, struct etcd_resp *out, struct vxerr *err)
{
	struct etcd_sync s = { 0 };
	return etcd_sync_run(c, &s, etcd_put_async(c, req, etcd_sync_cb, &s, err), out, err);
}

int etcd_delete(struct etcd_client *c, const struct etcd_delete_req *req, struct etcd_resp *out, struct vxerr *err)
{
	struct etcd_sync s = { 0 };
	return etcd_sync_run(c, &s, etcd_delete_async(c, req, etcd_sync_cb, &s, err), out, err);
}

int etcd_txn(struct etcd_client *c, const struct etcd_txn_req *req, struct etcd_resp *out, struct vxerr *err)
{
	struct etcd_sync s = { 0 };
	return etcd_sync_run(c, &s, etcd_txn_async(c, req, etcd_sync_cb, &s, err), out, err);
}

int etcd_compact(struct etcd_client *c, int64_t revision, struct etcd_resp *out, struct vxerr *err)
{
	struct etcd_sync s = { 0 };
	return etcd_sync_run(c, &s, etcd_compact_async(c, revision, etcd_sync_cb, &s, err), out, err);
}

/* ---------------------------------------------------------------- list at one revision */

struct list_state {
	struct etcd_client *c;
	char *prefix;
	size_t prefix_len;
	char *end; /* the prefix's range_end */
	size_t end_len;
	int64_t page;
	int restarts;
	struct etcd_header header; /* of the first page: its revision pins the others */
	struct etcd_kv *kvs;
	size_t n_kvs;
	size_t cap_kvs;
	etcd_resp_cb cb;
	void *arg;
};

static void list_page(struct list_state *st);

static void list_drop_kvs(struct list_state *st)
{
	for (size_t i = 0; i < st->n_kvs; i++)
		etcd_kv_release(&st->kvs[i]);
	st->n_kvs = 0;
}

static void list_finish(struct list_state *st, struct etcd_resp *r)
{
	st->cb(st->arg, r);
	etcd_resp_release(r);
	list_drop_kvs(st);
	free(st->kvs);
	free(st->prefix);
	free(st->end);
	free(st);
}

/* Moves a page's kvs into the listing. */
static void list_take(struct list_state *st, struct etcd_resp *r)
{
	if (r->n_kvs == 0)
		return;
	st->kvs = xgrow(st->kvs, sizeof(*st->kvs), &st->cap_kvs, st->n_kvs + r->n_kvs);
	memcpy(st->kvs + st->n_kvs, r->kvs, r->n_kvs * sizeof(*r->kvs));
	st->n_kvs += r->n_kvs;
	free(r->kvs);
	r->kvs = NULL;
	r->n_kvs = 0;
}

static void list_done(struct list_state *st)
{
	struct etcd_resp r = { .http_status = 200, .header = st->header, .kvs = st->kvs, .n_kvs = st->n_kvs };
	r.count = (int64_t)st->n_kvs;
	st->kvs = NULL;
	st->n_kvs = st->cap_kvs = 0;
	list_finish(st, &r);
}

static void on_list_page(void *arg, struct etcd_resp *r)
{
	struct list_state *st = arg;
	bool pinned = st->header.revision > 0;
	if (r->code == ETCD_OUT_OF_RANGE && pinned && st->restarts < LIST_MAX_RESTARTS) {
		/* the pinned revision was compacted under us: start over at a new one */
		st->restarts++;
		list_drop_kvs(st);
		memset(&st->header, 0, sizeof(st->header));
		list_page(st);
		return;
	}
	if (r->code == ETCD_RESOURCE_EXHAUSTED && st->page > 1) {
		/* a page of large values over the client's answer bound (issue 10 D2): the same page
		 * again, half as long, down to one key */
		st->page /= 2;
		list_page(st);
		return;
	}
	if (r->code != ETCD_OK) {
		struct etcd_resp fail = { 0 };
		etcd_resp_move(&fail, r);
		list_finish(st, &fail);
		return;
	}
	if (!pinned)
		st->header = r->header;
	bool more = r->more && r->n_kvs > 0;
	list_take(st, r);
	if (more)
		list_page(st);
	else
		list_done(st);
}

static void list_page(struct list_state *st)
{
	struct etcd_range_req req = { .limit = st->page, .revision = st->header.revision };
	char *from = NULL;
	if (st->n_kvs == 0) {
		req.key = st->prefix_len ? st->prefix : "";
		req.key_len = st->prefix_len;
		req.prefix = true;
	} else {
		/* the smallest key after the last one listed: that key followed by a NUL byte */
		const struct etcd_kv *last = &st->kvs[st->n_kvs - 1];
		from = xmalloc(last->key_len + 1);
		memcpy(from, last->key, last->key_len);
		from[last->key_len] = '\0';
		req.key = from;
		req.key_len = last->key_len + 1;
		req.range_end = st->end;
		req.range_end_len = st->end_len;
	}
	etcd_call_submit(st->c, ETCD_CALL_RANGE, "range", "/v3/kv/range", etcd_enc_range(&req), true, -1, on_list_page,
			 st);
	free(from);
}

int etcd_list_async(struct etcd_client *c, const char *prefix, size_t prefix_len, int64_t page_limit,
		    etcd_resp_cb cb, void *arg, struct vxerr *err)
{
	if (!prefix || page_limit < 0)
		return vxerr_set(err, "etcd list: no prefix or a negative page size");
	if (prefix_len == 0)
		prefix_len = strlen(prefix);
	struct list_state *st = xcalloc(1, sizeof(*st));
	st->c = c;
	st->prefix = xmalloc(prefix_len + 1);
	memcpy(st->prefix, prefix, prefix_len);
	st->prefix[prefix_len] = '\0';
	st->prefix_len = prefix_len;
	st->end = xmalloc(prefix_len ? prefix_len : 1);
	st->end_len = etcd_prefix_end(prefix, prefix_len, st->end);
	st->page = page_limit ? page_limit : LIST_DEFAULT_PAGE;
	st->cb = cb;
	st->arg = arg;
	list_page(st);
	return 0;
}

int etcd_list(struct etcd_client *c, const char *prefix, size_t prefix_len, int64_t page_limit,
	      struct etcd_resp *out, struct vxerr *err)
{
	struct etcd_sync s = { 0 };
	return etcd_sync_run(c, &s, etcd_list_async(c, prefix, prefix_len, page_limit, etcd_sync_cb, &s, err), out,
			     err);
}
