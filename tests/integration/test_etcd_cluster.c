/* The etcd client against a three-member cluster on loopback: the leader is killed (-9) in
 * the middle of a stream of writes; a watcher connected to the leader must end up with exactly
 * the writes, each once, in revision order, and agree with what the cluster holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_etcd_client.h"
#include "registry/etcd.h"

#define N_PUTS 150
#define KILL_AT 50

/* The member whose id is the leader's, asking every member. */
static int find_leader(struct fx_etcd *m, int n)
{
	char *eps = fx_etcd_endpoints(m, n);
	struct etcd_client *c = fxc_client(eps, NULL);
	int leader = -1;
	for (int i = 0; i < n && leader < 0; i++) {
		struct etcd_resp r;
		struct vxerr err;
		if (etcd_endpoint_status(c, (size_t)i, &r, &err) == 0 && r.leader != 0 && r.leader == r.header.member_id)
			leader = i;
		etcd_resp_release(&r);
	}
	etcd_client_free(c);
	free(eps);
	return leader;
}

/* Writes key i once: create-if-absent, so a retry after an unclear failure cannot write twice.
 * Gives up after 20 s. */
static void create_key(struct etcd_client *c, int i)
{
	char key[32], val[32];
	snprintf(key, sizeof(key), "/c/k%03d", i);
	snprintf(val, sizeof(val), "v%d", i);
	struct etcd_compare absent = { .target = ETCD_CMP_CREATE, .result = ETCD_CMP_EQUAL, .key = key };
	struct etcd_txn_op put = { .type = ETCD_OP_PUT, .put = { .key = key, .value = val } };
	struct etcd_txn_req txn = { &absent, 1, &put, 1, NULL, 0 };
	int64_t deadline = time_mono_us() + 20 * USEC_PER_SEC;
	for (;;) {
		struct etcd_resp r;
		struct vxerr err;
		int rc = etcd_txn(c, &txn, &r, &err);
		etcd_resp_release(&r);
		if (rc == 0)
			return; /* succeeded, or an earlier try already wrote it */
		if (time_mono_us() > deadline)
			fail_msg("put %s: %s", key, err.msg);
		fxc_run_for(c, 50);
	}
}

static void test_leader_killed_during_writes(void **state)
{
	(void)state;
	struct fx_etcd m[3] = { { 0 } };
	fx_etcd_cluster_start(m, 3);
	int leader = find_leader(m, 3);
	assert_true(leader >= 0);
	/* the watcher and the writer both start on the leader, the others follow */
	char *eps = xasprintf("%s,%s,%s", m[leader].url, m[(leader + 1) % 3].url, m[(leader + 2) % 3].url);
	struct etcd_client *w = fxc_client(eps, NULL);
	struct etcd_client *c = fxc_client_on(etcd_client_loop(w), eps, NULL);
	struct vxerr err;
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/c/", .prefix = true };
	fw.w = etcd_watch_start(w, &req, &cbs, &err);
	fxc_watch_ready(w, &fw);
	for (int i = 0; i < N_PUTS; i++) {
		if (i == KILL_AT)
			fx_etcd_kill(&m[leader]);
		create_key(c, i);
	}
	struct fxc_watch_wait ww = { &fw, N_PUTS };
	assert_true(fxc_run_until(w, fxc_has_events, &ww, 20000));
	fxc_run_for(w, 500); /* a duplicate would show up now */
	assert_false(fw.resynced);
	assert_true(fw.downs >= 1); /* its member died under it */
	assert_int_equal(fw.n, N_PUTS);
	char key[32];
	for (int i = 0; i < N_PUTS; i++) {
		snprintf(key, sizeof(key), "/c/k%03d", i);
		assert_string_equal(fw.ev[i].key, key);
		assert_int_equal(fw.ev[i].type, ETCD_EVENT_PUT);
		if (i > 0)
			assert_true(fw.ev[i].mod_revision > fw.ev[i - 1].mod_revision);
	}
	/* and the cluster agrees, key by key, revision by revision */
	struct etcd_resp all;
	assert_int_equal(etcd_list(c, "/c/", 0, 40, &all, &err), 0);
	assert_int_equal(all.n_kvs, N_PUTS);
	for (int i = 0; i < N_PUTS; i++) {
		assert_string_equal(all.kvs[i].key, fw.ev[i].key);
		assert_int_equal(all.kvs[i].mod_revision, fw.ev[i].mod_revision);
		assert_int_equal(all.kvs[i].version, 1);
	}
	etcd_resp_release(&all);
	fxc_watch_release(&fw);
	etcd_client_free(c);
	etcd_client_free(w);
	free(eps);
	for (int i = 0; i < 3; i++)
		fx_etcd_free(&m[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_leader_killed_during_writes),
	};
	return cmocka_run_group_tests_name("etcd_cluster", tests, NULL, NULL);
}
