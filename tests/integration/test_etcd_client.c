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
	fxc_run_for(c, 300); /* let the watch be created before the changes */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_range_delete),
		cmocka_unit_test(test_txn),
		cmocka_unit_test(test_lease_keepalive_revoke),
		cmocka_unit_test(test_keepalive_on_revoked_lease),
		cmocka_unit_test(test_watch_round_trip),
	};
	return cmocka_run_group_tests_name("etcd_client", tests, group_setup, group_teardown);
}
