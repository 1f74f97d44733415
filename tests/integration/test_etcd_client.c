/* The etcd client against a real single-member etcd: KV, txn, leases and keepalive streams,
 * watches (resume after kill -9, compaction while disconnected, stall), pagination at one
 * revision, failover and the errors a user sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_etcd_client.h"
#include "fx_proxy.h"
#include "registry/etcd.h"

static struct fx_etcd etcd; /* shared by the tests that need nothing special */

static int group_setup(void **state)
{
	(void)state;
	fx_etcd_start(&etcd);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	fx_etcd_free(&etcd);
	return 0;
}

static void put_str(struct etcd_client *c, const char *key, const char *value)
{
	struct etcd_put_req req = { .key = key, .value = value };
	struct vxerr err;
	struct etcd_resp r;
	int rc = etcd_put(c, &req, &r, &err);
	if (rc != 0)
		fail_msg("put %s: %s", key, err.msg);
	etcd_resp_release(&r);
}

static void test_put_range_delete(void **state)
{
	(void)state;
	struct etcd_client *c = fxc_client(etcd.url, NULL);
	struct vxerr err;
	struct etcd_resp r;
	struct etcd_put_req put = { .key = "/t1/a", .value = "A1" };
	assert_int_equal(etcd_put(c, &put, &r, &err), 0);
	int64_t rev1 = r.header.revision;
	assert_true(rev1 > 0);
	assert_int_equal(r.n_kvs, 0); /* a new key has no prev kv */
	etcd_resp_release(&r);

	put.value = "A2";
	put.prev_kv = true;
	assert_int_equal(etcd_put(c, &put, &r, &err), 0);
	assert_int_equal(r.n_kvs, 1);
	assert_string_equal(r.kvs[0].value, "A1");
	etcd_resp_release(&r);
	put_str(c, "/t1/b", "B");
	put_str(c, "/t10", "outside the prefix");

	struct etcd_range_req one = { .key = "/t1/a" };
	assert_int_equal(etcd_range(c, &one, &r, &err), 0);
	assert_int_equal(r.n_kvs, 1);
	assert_string_equal(r.kvs[0].key, "/t1/a");
	assert_string_equal(r.kvs[0].value, "A2");
	assert_int_equal(r.kvs[0].version, 2);
	assert_int_equal(r.kvs[0].create_revision, rev1);
	etcd_resp_release(&r);

	struct etcd_range_req pre = { .key = "/t1/", .prefix = true };
	assert_int_equal(etcd_range(c, &pre, &r, &err), 0);
	assert_int_equal(r.n_kvs, 2);
	assert_int_equal(r.count, 2);
	assert_string_equal(r.kvs[1].key, "/t1/b");
	etcd_resp_release(&r);

	/* the same prefix at the first revision: only the first version of a */
	pre.revision = rev1;
	assert_int_equal(etcd_range(c, &pre, &r, &err), 0);
	assert_int_equal(r.n_kvs, 1);
	assert_string_equal(r.kvs[0].value, "A1");
	etcd_resp_release(&r);

	struct etcd_range_req cnt = { .key = "/t1/", .prefix = true, .count_only = true };
	assert_int_equal(etcd_range(c, &cnt, &r, &err), 0);
	assert_int_equal(r.n_kvs, 0);
	assert_int_equal(r.count, 2);
	etcd_resp_release(&r);

	struct etcd_range_req missing = { .key = "/t1/nope" };
	assert_int_equal(etcd_range(c, &missing, &r, &err), 0);
	assert_int_equal(r.n_kvs, 0);
	assert_int_equal(r.count, 0);
	etcd_resp_release(&r);

	struct etcd_delete_req del = { .key = "/t1/", .prefix = true, .prev_kv = true };
	assert_int_equal(etcd_delete(c, &del, &r, &err), 0);
	assert_int_equal(r.count, 2);
	assert_int_equal(r.n_kvs, 2);
	etcd_resp_release(&r);
	assert_int_equal(etcd_range(c, &pre, &r, &err), 0); /* at rev1 history is still there */
	etcd_resp_release(&r);
	pre.revision = 0;
	assert_int_equal(etcd_range(c, &pre, &r, &err), 0);
	assert_int_equal(r.n_kvs, 0);
	etcd_resp_release(&r);
	etcd_client_free(c);
}

static void test_txn(void **state)
{
	(void)state;
	struct etcd_client *c = fxc_client(etcd.url, NULL);
	struct vxerr err;
	struct etcd_resp r;
	/* create-if-absent: a key is absent when its create revision is 0 */
	struct etcd_compare absent = { .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .key = "/t2/lock", .number = 0 };
	struct etcd_txn_op put = { .type = ETCD_OP_PUT, .put = { .key = "/t2/lock", .value = "node-1" } };
	struct etcd_txn_op get = { .type = ETCD_OP_RANGE, .range = { .key = "/t2/lock" } };
	struct etcd_txn_req txn = { &absent, 1, &put, 1, &get, 1 };
	assert_int_equal(etcd_txn(c, &txn, &r, &err), 0);
	assert_true(r.succeeded);
	assert_int_equal(r.n_ops, 1);
	int64_t created = r.header.revision;
	etcd_resp_release(&r);
	put.put.value = "node-2";
	assert_int_equal(etcd_txn(c, &txn, &r, &err), 0);
	assert_false(r.succeeded); /* etcd leaves "succeeded" out: absence is false */
	assert_int_equal(r.n_ops, 1);
	assert_int_equal(r.ops[0].n_kvs, 1);
	assert_string_equal(r.ops[0].kvs[0].value, "node-1");
	assert_int_equal(r.ops[0].kvs[0].mod_revision, created);
	etcd_resp_release(&r);

	/* compare-and-swap on the mod revision: a stale revision fails, the current one wins */
	struct etcd_compare cas = { .target = ETCD_CMP_MOD, .result = ETCD_CMP_EQUAL, .key = "/t2/lock", .number = created - 1 };
	struct etcd_txn_op swap = { .type = ETCD_OP_PUT, .put = { .key = "/t2/lock", .value = "node-3", .prev_kv = true } };
	struct etcd_txn_req t2 = { &cas, 1, &swap, 1, NULL, 0 };
	assert_int_equal(etcd_txn(c, &t2, &r, &err), 0);
	assert_false(r.succeeded);
	assert_int_equal(r.n_ops, 0);
	etcd_resp_release(&r);
	cas.number = created;
	assert_int_equal(etcd_txn(c, &t2, &r, &err), 0);
	assert_true(r.succeeded);
	assert_int_equal(r.ops[0].n_kvs, 1);
	assert_string_equal(r.ops[0].kvs[0].value, "node-1");
	etcd_resp_release(&r);

	/* compare on the value, delete inside the txn */
	struct etcd_compare val = { .target = ETCD_CMP_VALUE, .result = ETCD_CMP_EQUAL, .key = "/t2/lock", .value = "node-3" };
	struct etcd_txn_op del = { .type = ETCD_OP_DELETE, .del = { .key = "/t2/lock" } };
	struct etcd_txn_req t3 = { &val, 1, &del, 1, NULL, 0 };
	assert_int_equal(etcd_txn(c, &t3, &r, &err), 0);
	assert_true(r.succeeded);
	assert_int_equal(r.ops[0].count, 1);
	etcd_resp_release(&r);

	/* etcd refuses the same key twice in one txn: the error names the cause and the code */
	struct etcd_txn_op twice[2] = { put, put };
	struct etcd_txn_req t4 = { NULL, 0, twice, 2, NULL, 0 };
	assert_int_equal(etcd_txn(c, &t4, &r, &err), -1);
	assert_int_equal(r.code, ETCD_INVALID_ARGUMENT);
	assert_int_equal(r.http_status, 400);
	assert_non_null(strstr(err.msg, "duplicate key given in txn request"));
	assert_non_null(strstr(err.msg, etcd.url));
	etcd_resp_release(&r);
	etcd_client_free(c);
}

struct ka_log {
	int renewed;
	int64_t last_ttl;
	int lost;
	char lost_reason[512];
	int trouble;
};

static void ka_renewed(void *arg, int64_t ttl)
{
	struct ka_log *l = arg;
	l->renewed++;
	l->last_ttl = ttl;
}

static void ka_lost(void *arg, const char *reason)
{
	struct ka_log *l = arg;
	l->lost++;
	snprintf(l->lost_reason, sizeof(l->lost_reason), "%s", reason);
}

static void ka_trouble(void *arg, const char *detail)
{
	(void)detail;
	struct ka_log *l = arg;
	l->trouble++;
}

static bool ka_renewed_3(void *arg)
{
	return ((struct ka_log *)arg)->renewed >= 3;
}

static bool ka_is_lost(void *arg)
{
	return ((struct ka_log *)arg)->lost > 0;
}

static void test_lease_keepalive_revoke(void **state)
{
	(void)state;
	struct etcd_client *c = fxc_client(etcd.url, NULL);
	struct vxerr err;
	struct etcd_resp r;
	assert_int_equal(etcd_lease_grant(c, 2, 0, &r, &err), 0);
	int64_t id = r.lease_id;
	assert_true(id != 0);
	assert_int_equal(r.ttl, 2);
	etcd_resp_release(&r);
	struct etcd_put_req put = { .key = "/t3/leased", .value = "v", .lease = id };
	assert_int_equal(etcd_put(c, &put, NULL, &err), 0);

	/* one stream renews every TTL/3; over more than a TTL the key must survive */
	struct ka_log log = { 0 };
	struct etcd_keepalive_cbs cbs = { ka_renewed, ka_lost, ka_trouble, &log };
	struct etcd_keepalive *ka = etcd_keepalive_start(c, id, 2, &cbs, &err);
	assert_non_null(ka);
	assert_true(fxc_run_until(c, ka_renewed_3, &log, 5000));
	fxc_run_for(c, 2500);
	assert_int_equal(log.lost, 0);
	assert_true(log.renewed >= 5);
	assert_int_equal(log.last_ttl, 2);

	assert_int_equal(etcd_lease_ttl(c, id, true, &r, &err), 0);
	assert_int_equal(r.lease_id, id);
	assert_int_equal(r.granted_ttl, 2);
	assert_true(r.ttl >= 1);
	assert_int_equal(r.n_kvs, 1);
	assert_string_equal(r.kvs[0].key, "/t3/leased");
	etcd_resp_release(&r);

	/* revoked: the next keepalive answer has no TTL, which is "lost" */
	assert_int_equal(etcd_lease_revoke(c, id, NULL, &err), 0);
	assert_true(fxc_run_until(c, ka_is_lost, &log, 3000));
	assert_non_null(strstr(log.lost_reason, "expired or was revoked"));
	fxc_run_for(c, 800);
	assert_int_equal(log.lost, 1); /* once */
	etcd_keepalive_free(ka);
	struct etcd_range_req get = { .key = "/t3/leased" };
	assert_int_equal(etcd_range(c, &get, &r, &err), 0);
	assert_int_equal(r.n_kvs, 0); /* the revoke deleted the attached key */
	etcd_resp_release(&r);
	assert_int_equal(etcd_lease_ttl(c, id, false, &r, &err), 0);
	assert_int_equal(r.ttl, -1);
	etcd_resp_release(&r);

	/* codes a caller branches on */
	assert_int_equal(etcd_lease_revoke(c, id, &r, &err), -1);
	assert_int_equal(r.code, ETCD_NOT_FOUND);
	assert_non_null(strstr(err.msg, "lease not found"));
	etcd_resp_release(&r);
	assert_int_equal(etcd_put(c, &put, &r, &err), -1);
	assert_int_equal(r.code, ETCD_NOT_FOUND);
	etcd_resp_release(&r);
	assert_int_equal(etcd_lease_grant(c, 5, 4242, &r, &err), 0);
	assert_int_equal(r.lease_id, 4242);
	etcd_resp_release(&r);
	assert_int_equal(etcd_lease_grant(c, 5, 4242, &r, &err), -1);
	assert_int_equal(r.code, ETCD_FAILED_PRECONDITION);
	assert_non_null(strstr(err.msg, "lease already exists"));
	etcd_resp_release(&r);
	assert_int_equal(etcd_lease_revoke(c, 4242, NULL, &err), 0);
	etcd_client_free(c);
}

static void test_keepalive_on_revoked_lease(void **state)
{
	(void)state;
	struct etcd_client *c = fxc_client(etcd.url, NULL);
	struct vxerr err;
	struct etcd_resp r;
	assert_int_equal(etcd_lease_grant(c, 30, 0, &r, &err), 0);
	int64_t id = r.lease_id;
	etcd_resp_release(&r);
	assert_int_equal(etcd_lease_revoke(c, id, NULL, &err), 0);
	struct ka_log log = { 0 };
	struct etcd_keepalive_cbs cbs = { ka_renewed, ka_lost, ka_trouble, &log };
	struct etcd_keepalive *ka = etcd_keepalive_start(c, id, 30, &cbs, &err);
	assert_true(fxc_run_until(c, ka_is_lost, &log, 3000));
	assert_int_equal(log.renewed, 0);
	assert_non_null(strstr(log.lost_reason, "expired or was revoked"));
	etcd_keepalive_free(ka);
	etcd_client_free(c);
}

static void test_watch_round_trip(void **state)
{
	(void)state;
	struct etcd_client *c = fxc_client(etcd.url, NULL);
	struct vxerr err;
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/t4/", .prefix = true, .prev_kv = true };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	assert_non_null(fw.w);
	fxc_watch_ready(c, &fw);
	put_str(c, "/t4/a", "1");
	put_str(c, "/t4/a", "2");
	put_str(c, "/t40", "not in the prefix");
	struct etcd_delete_req del = { .key = "/t4/a" };
	assert_int_equal(etcd_delete(c, &del, NULL, &err), 0);
	struct etcd_txn_op two[2] = { { .type = ETCD_OP_PUT, .put = { .key = "/t4/x", .value = "X" } },
				      { .type = ETCD_OP_PUT, .put = { .key = "/t4/y", .value = "Y" } } };
	struct etcd_txn_req txn = { NULL, 0, two, 2, NULL, 0 };
	struct etcd_resp r;
	assert_int_equal(etcd_txn(c, &txn, &r, &err), 0);
	int64_t txn_rev = r.header.revision;
	etcd_resp_release(&r);
	struct fxc_watch_wait ww = { &fw, 5 };
	assert_true(fxc_run_until(c, fxc_has_events, &ww, 5000));
	assert_false(fw.resynced);
	assert_int_equal(fw.n, 5);
	assert_string_equal(fw.ev[0].key, "/t4/a");
	assert_string_equal(fw.ev[0].value, "1");
	assert_false(fw.ev[0].has_prev);
	assert_string_equal(fw.ev[1].value, "2");
	assert_true(fw.ev[1].has_prev);
	assert_string_equal(fw.ev[1].prev_value, "1");
	assert_int_equal(fw.ev[2].type, ETCD_EVENT_DELETE);
	assert_null(fw.ev[2].value);
	assert_true(fw.ev[2].has_prev);
	assert_string_equal(fw.ev[3].key, "/t4/x");
	assert_string_equal(fw.ev[4].key, "/t4/y");
	assert_int_equal(fw.ev[3].mod_revision, txn_rev);
	assert_int_equal(fw.ev[4].mod_revision, txn_rev);
	assert_int_equal(fw.batches - fw.progress, 4); /* the txn is one batch */
	for (size_t i = 1; i < fw.n; i++)
		assert_true(fw.ev[i].mod_revision >= fw.ev[i - 1].mod_revision);
	assert_int_equal(etcd_watch_delivered(fw.w), txn_rev);
	fxc_watch_release(&fw);
	etcd_client_free(c);
}

/* ---- pagination at one revision, with writes landing between the pages ---- */

struct churn {
	struct etcd_client *c;
	int n;
	int done;
	ev_timer t;
};

static void churn_done(void *arg, struct etcd_resp *r)
{
	struct churn *ch = arg;
	assert_int_equal(r->code, ETCD_OK);
	ch->done++;
}

static void churn_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)loop;
	(void)revents;
	struct churn *ch = t->data;
	char key[32], val[32];
	snprintf(key, sizeof(key), "/t8/k%03d", (ch->n * 7) % 300); /* rewrites and new keys */
	snprintf(val, sizeof(val), "churn-%d", ch->n);
	struct etcd_put_req put = { .key = key, .value = val };
	struct vxerr err;
	if (ch->n % 5 == 4) {
		struct etcd_delete_req del = { .key = key };
		assert_int_equal(etcd_delete_async(ch->c, &del, churn_done, ch, &err), 0);
	} else {
		assert_int_equal(etcd_put_async(ch->c, &put, churn_done, ch, &err), 0);
	}
	ch->n++;
}

static void test_list_pinned_revision(void **state)
{
	(void)state;
	struct etcd_client *c = fxc_client(etcd.url, NULL);
	struct vxerr err;
	char key[32], val[32];
	for (int i = 0; i < 250; i++) {
		snprintf(key, sizeof(key), "/t8/k%03d", i);
		snprintf(val, sizeof(val), "v%d", i);
		put_str(c, key, val);
	}
	/* a second client on the same loop keeps writing while the listing pages */
	struct churn ch = { .c = fxc_client_on(etcd_client_loop(c), etcd.url, NULL) };
	ev_timer_init(&ch.t, churn_tick, 0.001, 0.001);
	ch.t.data = &ch;
	ev_timer_start(etcd_client_loop(c), &ch.t);
	struct etcd_resp list;
	assert_int_equal(etcd_list(c, "/t8/", 0, 10, &list, &err), 0);
	ev_timer_stop(etcd_client_loop(c), &ch.t);
	while (ch.done < ch.n)
		ev_run(etcd_client_loop(c), EVRUN_ONCE);
	assert_true(ch.n >= 5); /* writes really landed between the 25 pages */
	int64_t rev = list.header.revision;

	/* the listing equals one unpaged read at its revision: no mixed, no partial read */
	struct etcd_resp one;
	struct etcd_range_req all = { .key = "/t8/", .prefix = true, .revision = rev };
	assert_int_equal(etcd_range(c, &all, &one, &err), 0);
	assert_true(list.n_kvs >= 200); /* the churn deletes a few */
	assert_int_equal(list.n_kvs, one.n_kvs);
	for (size_t i = 0; i < one.n_kvs; i++) {
		assert_string_equal(list.kvs[i].key, one.kvs[i].key);
		assert_string_equal(list.kvs[i].value, one.kvs[i].value);
		assert_int_equal(list.kvs[i].mod_revision, one.kvs[i].mod_revision);
		assert_true(list.kvs[i].mod_revision <= rev);
	}
	struct etcd_range_req now = { .key = "/t8/", .prefix = true, .count_only = true };
	struct etcd_resp cur;
	assert_int_equal(etcd_range(c, &now, &cur, &err), 0);
	assert_true(cur.header.revision > rev);
	etcd_resp_release(&cur);
	etcd_resp_release(&one);
	etcd_resp_release(&list);

	/* an empty prefix lists every key; a prefix with nothing under it lists nothing */
	assert_int_equal(etcd_list(c, "", 0, 100, &list, &err), 0);
	struct etcd_range_req every = { .key = "", .prefix = true, .count_only = true, .revision = list.header.revision };
	assert_int_equal(etcd_range(c, &every, &cur, &err), 0);
	assert_true(list.n_kvs >= 200);
	assert_int_equal(list.n_kvs, cur.count);
	etcd_resp_release(&cur);
	etcd_resp_release(&list);
	assert_int_equal(etcd_list(c, "/nothing-here/", 0, 0, &list, &err), 0);
	assert_int_equal(list.n_kvs, 0);
	assert_true(list.header.revision > 0);
	etcd_resp_release(&list);
	etcd_client_free(ch.c);
	etcd_client_free(c);
}

/* ---- watch resume across kill -9 and a clean stop ---- */

/* keys <prefix>kNN */
static void put_range(struct etcd_client *c, const char *prefix, int from, int to)
{
	char key[64];
	for (int i = from; i < to; i++) {
		snprintf(key, sizeof(key), "%sk%02d", prefix, i);
		put_str(c, key, key);
	}
}

static void assert_exact_keys(const struct fxc_watch *fw, const char *prefix, int n)
{
	char key[64];
	assert_int_equal(fw->n, (size_t)n);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%sk%02d", prefix, i);
		assert_string_equal(fw->ev[i].key, key);
		if (i > 0)
			assert_true(fw->ev[i].mod_revision > fw->ev[i - 1].mod_revision);
	}
}

static void test_watch_resumes_after_kill_and_stop(void **state)
{
	(void)state;
	struct fx_etcd e = { 0 };
	fx_etcd_start(&e);
	struct etcd_client *c = fxc_client(e.url, NULL);
	struct vxerr err;
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/t6/", .prefix = true };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	fxc_watch_ready(c, &fw);
	put_range(c, "/t6/", 0, 10);
	struct fxc_watch_wait ww = { &fw, 10 };
	assert_true(fxc_run_until(c, fxc_has_events, &ww, 5000));

	fx_etcd_kill(&e);
	struct fxc_watch_wait down = { &fw, 1 };
	assert_true(fxc_run_until(c, fxc_has_downs, &down, 5000));
	fx_etcd_restart(&e);
	put_range(c, "/t6/", 10, 20); /* most land before the watch is back */
	ww.n = 20;
	assert_true(fxc_run_until(c, fxc_has_events, &ww, 10000));

	/* a clean stop: etcd's last message ("transport is closing") has no newline */
	fx_etcd_stop(&e);
	down.n = 2;
	assert_true(fxc_run_until(c, fxc_has_downs, &down, 5000));
	fx_etcd_restart(&e);
	put_range(c, "/t6/", 20, 30);
	ww.n = 30;
	assert_true(fxc_run_until(c, fxc_has_events, &ww, 10000));
	fxc_run_for(c, 300); /* nothing more may trickle in */
	assert_false(fw.resynced);
	assert_exact_keys(&fw, "/t6/", 30);
	assert_int_equal(fw.ups, 2);
	assert_non_null(strstr(fw.last_down, e.url));
	assert_int_equal(etcd_watch_delivered(fw.w), fw.ev[29].mod_revision);
	fxc_watch_release(&fw);
	etcd_client_free(c);
	fx_etcd_free(&e);
}

/* ---- compaction while the watch is disconnected ---- */

static void test_watch_compacted_while_disconnected(void **state)
{
	(void)state;
	struct fx_proxy *px = fx_proxy_start(etcd.client_port);
	struct etcd_client *direct = fxc_client(etcd.url, NULL);
	struct etcd_client *c = fxc_client(fx_proxy_url(px), NULL);
	struct vxerr err;
	struct fxc_watch fw = { .free_on_resync = true };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/t5/", .prefix = true };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	fxc_watch_ready(c, &fw);
	put_str(direct, "/t5/a", "1");
	struct fxc_watch_wait ww = { &fw, 1 };
	assert_true(fxc_run_until(c, fxc_has_events, &ww, 5000));

	fx_proxy_refuse(px, true);
	fx_proxy_cut(px);
	struct fxc_watch_wait down = { &fw, 1 };
	assert_true(fxc_run_until(c, fxc_has_downs, &down, 5000));
	put_str(direct, "/t5/a", "2");
	put_str(direct, "/t5/b", "3");
	struct etcd_resp r;
	struct etcd_range_req any = { .key = "/t5/a" };
	assert_int_equal(etcd_range(direct, &any, &r, &err), 0);
	assert_int_equal(etcd_compact(direct, r.header.revision, NULL, &err), 0);
	etcd_resp_release(&r);
	fx_proxy_refuse(px, false);
	assert_true(fxc_run_until(c, fxc_has_resync, &ww, 8000));
	assert_int_equal(fw.resync_reason, ETCD_RESYNC_COMPACTED);
	assert_non_null(strstr(fw.resync_detail, "compacted"));
	assert_int_equal(fw.n, 1); /* nothing half-delivered */
	assert_null(fw.w);          /* freed from inside its own resync callback */
	fxc_watch_release(&fw);
	etcd_client_free(c);
	etcd_client_free(direct);
	fx_proxy_free(px);
}

/* ---- a watch that goes silent while its keys change: stalled; a wedged member: moved ---- */

static void test_watch_stall_and_wedged_member(void **state)
{
	(void)state;
	struct fx_proxy *px = fx_proxy_start(etcd.client_port);
	struct etcd_client *direct = fxc_client(etcd.url, NULL);
	struct etcd_opts o = { .watch_stall_us = 1000 * USEC_PER_MS, .request_timeout_us = 700 * USEC_PER_MS };
	struct etcd_client *c = fxc_client(fx_proxy_url(px), &o);
	struct vxerr err;
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/t7/", .prefix = true };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	fxc_watch_ready(c, &fw);
	fxc_run_for(c, 2500); /* idle for 2.5 stall windows: probes find nothing, no resync */
	assert_false(fw.resynced);
	assert_int_equal(fw.downs, 0);

	/* a wedged member (the proxy holds every byte): the probe times out, the watch moves and,
	 * once the member answers again, resumes with the change it missed */
	fx_proxy_blackhole(px, true);
	put_str(direct, "/t7/during-wedge", "w");
	struct fxc_watch_wait down = { &fw, 1 };
	assert_true(fxc_run_until(c, fxc_has_downs, &down, 8000));
	assert_false(fw.resynced);
	fx_proxy_blackhole(px, false);
	fx_proxy_cut(px); /* drop the connections the blackhole left behind */
	struct fxc_watch_wait ww = { &fw, 1 };
	assert_true(fxc_run_until(c, fxc_has_events, &ww, 6000));
	assert_string_equal(fw.ev[0].key, "/t7/during-wedge");

	/* the stream freezes but the member answers: the probe sees the change -> stalled */
	fxc_run_for(c, 200);
	fx_proxy_freeze_existing(px);
	put_str(direct, "/t7/unseen", "u");
	assert_true(fxc_run_until(c, fxc_has_resync, &ww, 6000));
	assert_int_equal(fw.resync_reason, ETCD_RESYNC_STALLED);
	assert_int_equal(fw.n, 1);
	assert_non_null(strstr(fw.resync_detail, "delivered nothing past"));
	fxc_watch_release(&fw);
	etcd_client_free(c);
	etcd_client_free(direct);
	fx_proxy_free(px);
}

/* ---- a keepalive that cannot get through: lost once the TTL has passed ---- */

static void test_keepalive_blocked_reports_lost(void **state)
{
	(void)state;
	struct fx_proxy *px = fx_proxy_start(etcd.client_port);
	struct etcd_client *direct = fxc_client(etcd.url, NULL);
	struct etcd_client *c = fxc_client(fx_proxy_url(px), NULL);
	struct vxerr err;
	struct etcd_resp r;
	assert_int_equal(etcd_lease_grant(c, 2, 0, &r, &err), 0);
	int64_t id = r.lease_id;
	etcd_resp_release(&r);
	struct etcd_put_req put = { .key = "/t9/leased", .value = "v", .lease = id };
	assert_int_equal(etcd_put(c, &put, NULL, &err), 0);
	struct ka_log log = { 0 };
	struct etcd_keepalive_cbs cbs = { ka_renewed, ka_lost, ka_trouble, &log };
	struct etcd_keepalive *ka = etcd_keepalive_start(c, id, 2, &cbs, &err);
	assert_true(fxc_run_until(c, ka_renewed_3, &log, 5000));

	fx_proxy_blackhole(px, true);
	int64_t t0 = time_mono_us();
	assert_true(fxc_run_until(c, ka_is_lost, &log, 6000));
	int64_t waited = time_mono_us() - t0;
	assert_true(log.trouble >= 1);
	assert_non_null(strstr(log.lost_reason, "not renewed for 2s"));
	/* "lost" only once the lease has certainly expired: never before a whole TTL */
	assert_true(waited >= 1300 * USEC_PER_MS);
	/* and it really has: etcd deleted the key with the lease */
	time_sleep_us(300 * USEC_PER_MS);
	assert_int_equal(etcd_lease_ttl(direct, id, false, &r, &err), 0);
	assert_int_equal(r.ttl, -1);
	etcd_resp_release(&r);
	etcd_keepalive_free(ka);
	etcd_client_free(c);
	etcd_client_free(direct);
	fx_proxy_free(px);
}

/* ---- endpoints ---- */

static void test_unreachable_and_failover(void **state)
{
	(void)state;
	char *dead1 = xasprintf("http://127.0.0.1:%d", net_free_port());
	char *dead2 = xasprintf("http://127.0.0.1:%d", net_free_port());
	char *both_dead = xasprintf("%s,%s", dead1, dead2);
	struct etcd_client *c = fxc_client(both_dead, NULL);
	struct vxerr err;
	struct etcd_resp r;
	struct etcd_put_req put = { .key = "/t10/a", .value = "v" };
	assert_int_equal(etcd_put(c, &put, &r, &err), -1);
	assert_int_equal(r.code, ETCD_UNAVAILABLE);
	etcd_resp_release(&r);
	char *want = xasprintf("etcd unreachable: tried %s (connection refused), %s (connection refused)", dead1, dead2);
	assert_string_equal(err.msg, want);
	free(want);
	etcd_client_free(c);

	/* the first endpoint is dead: requests and a watch go to the second */
	char *one_dead = xasprintf("%s,%s", dead1, etcd.url);
	c = fxc_client(one_dead, NULL);
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/t10/", .prefix = true };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	fxc_watch_ready(c, &fw);
	assert_int_equal(etcd_put(c, &put, NULL, &err), 0);
	struct fxc_watch_wait ww = { &fw, 1 };
	assert_true(fxc_run_until(c, fxc_has_events, &ww, 5000));
	assert_int_equal(fw.n, 1);
	assert_non_null(strstr(fw.last_down, dead1));
	fxc_watch_release(&fw);
	etcd_client_free(c);
	free(one_dead);
	free(both_dead);
	free(dead1);
	free(dead2);

	/* options are checked before anything starts */
	const char *bad[] = { "127.0.0.1:2379" };
	struct etcd_opts o = { .endpoints = bad, .n_endpoints = 1 };
	assert_null(etcd_client_new(NULL, &o, &err));
	assert_non_null(strstr(err.msg, "must start with http:// or https://"));
	o.n_endpoints = 0;
	assert_null(etcd_client_new(NULL, &o, &err));
}

static void test_response_size_bound(void **state)
{
	(void)state;
	struct etcd_opts o = { .max_response_bytes = 2000 };
	struct etcd_client *c = fxc_client(etcd.url, &o);
	struct vxerr err;
	char key[32], val[128];
	memset(val, 'x', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	struct etcd_resp r;
	struct etcd_put_req first = { .key = "/t11/first", .value = "1" };
	assert_int_equal(etcd_put(c, &first, &r, &err), 0);
	int64_t from = r.header.revision;
	etcd_resp_release(&r);
	for (int i = 0; i < 29; i++) {
		snprintf(key, sizeof(key), "/t11/%02d", i);
		put_str(c, key, val);
	}
	struct etcd_range_req all = { .key = "/t11/", .prefix = true };
	assert_int_equal(etcd_range(c, &all, &r, &err), -1);
	assert_int_equal(r.code, ETCD_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "answer larger than 2000 bytes"));
	etcd_resp_release(&r);
	/* paged, the same keys fit */
	assert_int_equal(etcd_list(c, "/t11/", 0, 5, &r, &err), 0);
	assert_int_equal(r.n_kvs, 30);
	etcd_resp_release(&r);
	/* issue 10 D2: pages too large for the bound are halved until they fit */
	assert_int_equal(etcd_list(c, "/t11/", 0, 1000, &r, &err), 0);
	assert_int_equal(r.n_kvs, 30);
	for (size_t i = 1; i < r.n_kvs; i++)
		assert_true(strcmp(r.kvs[i - 1].key, r.kvs[i].key) < 0);
	etcd_resp_release(&r);
	/* one key alone over the bound: named as such, not as an unreachable etcd */
	char big[2100];
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	put_str(c, "/t12/big", big);
	assert_int_equal(etcd_list(c, "/t12/", 0, 1000, &r, &err), -1);
	assert_int_equal(r.code, ETCD_RESOURCE_EXHAUSTED);
	if (!strstr(err.msg, "larger than 2000 bytes") || strstr(err.msg, "unreachable"))
		fail_msg("%s", err.msg);
	etcd_resp_release(&r);
	/* a watch message over the bound is a broken stream, reported, never dropped */
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/t11/", .prefix = true, .start_revision = from };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	struct fxc_watch_wait ww = { &fw, 1 };
	assert_true(fxc_run_until(c, fxc_has_resync, &ww, 5000));
	assert_int_equal(fw.resync_reason, ETCD_RESYNC_BROKEN);
	assert_non_null(strstr(fw.resync_detail, "larger than 2000 bytes"));
	fxc_watch_release(&fw);
	etcd_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_range_delete),
		cmocka_unit_test(test_txn),
		cmocka_unit_test(test_lease_keepalive_revoke),
		cmocka_unit_test(test_keepalive_on_revoked_lease),
		cmocka_unit_test(test_watch_round_trip),
		cmocka_unit_test(test_list_pinned_revision),
		cmocka_unit_test(test_watch_resumes_after_kill_and_stop),
		cmocka_unit_test(test_watch_compacted_while_disconnected),
		cmocka_unit_test(test_watch_stall_and_wedged_member),
		cmocka_unit_test(test_keepalive_blocked_reports_lost),
		cmocka_unit_test(test_unreachable_and_failover),
		cmocka_unit_test(test_response_size_bound),
	};
	return cmocka_run_group_tests_name("etcd_client", tests, group_setup, group_teardown);
}
