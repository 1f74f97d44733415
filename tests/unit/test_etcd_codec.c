/* Unit tests for the etcd gateway codec: request encoding (range ends, int64 as strings),
 * decoding of the answers quoted in docs/etcd-client.md (absent fields = defaults), stream
 * framing, and a table of hostile inputs that must each be refused with a reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "registry/etcd_codec.h"

#define HDR "\"header\":{\"cluster_id\":\"15118495548433857066\",\"member_id\":\"13668033151171901709\"," \
	    "\"revision\":\"7\",\"raft_term\":\"2\"}"

static void test_prefix_end(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		size_t n;
		const char *out;
		size_t on;
	} rows[] = {
		{ "/svc/web/", 9, "/svc/web0", 9 },
		{ "a", 1, "b", 1 },
		{ "a\xff", 2, "b", 1 },
		{ "a\xff\xff", 3, "b", 1 },
		{ "\xff\xff", 2, "\0", 1 },
		{ "", 0, "\0", 1 },
		{ "\x01\xfe", 2, "\x01\xff", 2 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char out[16];
		size_t n = etcd_prefix_end(rows[i].in, rows[i].n, out);
		assert_int_equal(n, rows[i].on);
		assert_memory_equal(out, rows[i].out, n);
	}
}

static void test_encode_requests(void **state)
{
	(void)state;
	struct etcd_range_req r = { .key = "/svc/web/", .prefix = true, .limit = 10, .revision = 17, .keys_only = true };
	char *s = etcd_enc_range(&r);
	assert_string_equal(s, "{\"key\":\"L3N2Yy93ZWIv\",\"range_end\":\"L3N2Yy93ZWIw\",\"limit\":\"10\",\"revision\":\"17\","
			       "\"keys_only\":true}");
	free(s);
	struct etcd_range_req all = { .key = "", .prefix = true };
	s = etcd_enc_range(&all);
	assert_string_equal(s, "{\"key\":\"AA==\",\"range_end\":\"AA==\"}");
	free(s);
	/* binary keys: explicit length, NUL bytes kept */
	struct etcd_put_req p = { .key = "a\0b", .key_len = 3, .value = "", .lease = 4111120274874834713LL, .prev_kv = true };
	s = etcd_enc_put(&p);
	assert_string_equal(s, "{\"key\":\"YQBi\",\"value\":\"\",\"lease\":\"4111120274874834713\",\"prev_kv\":true}");
	free(s);
	struct etcd_compare cmp = { .target = ETCD_CMP_MOD, .result = ETCD_CMP_EQUAL, .key = "/k", .number = 14 };
	struct etcd_txn_op ops[2] = { { .type = ETCD_OP_PUT, .put = { .key = "/k", .value = "v" } },
				      { .type = ETCD_OP_DELETE, .del = { .key = "/d/", .prefix = true } } };
	struct etcd_txn_req t = { &cmp, 1, ops, 2, NULL, 0 };
	s = etcd_enc_txn(&t);
	assert_string_equal(s, "{\"compare\":[{\"key\":\"L2s=\",\"target\":\"MOD\",\"result\":\"EQUAL\",\"mod_revision\":\"14\"}],"
			       "\"success\":[{\"request_put\":{\"key\":\"L2s=\",\"value\":\"dg==\"}},"
			       "{\"request_delete_range\":{\"key\":\"L2Qv\",\"range_end\":\"L2Qw\"}}],\"failure\":[]}");
	free(s);
	struct etcd_watch_req w = { .key = "/svc/", .prefix = true, .prev_kv = true };
	s = etcd_enc_watch_create(&w, 17, true);
	assert_string_equal(s, "{\"create_request\":{\"key\":\"L3N2Yy8=\",\"range_end\":\"L3N2YzA=\",\"start_revision\":\"17\","
			       "\"prev_kv\":true,\"progress_notify\":true}}");
	free(s);
	s = etcd_enc_auth("app", "p\"w");
	assert_string_equal(s, "{\"name\":\"app\",\"password\":\"p\\\"w\"}");
	free(s);
}

static struct etcd_resp decode_ok(enum etcd_call_kind kind, const char *body)
{
	struct etcd_resp r;
	struct vxerr err = { "" };
	if (etcd_dec_resp(kind, body, strlen(body), &r, &err) != 0)
		fail_msg("decode %s: %s", body, err.msg);
	return r;
}

static void test_decode_answers(void **state)
{
	(void)state;
	struct etcd_resp r = decode_ok(ETCD_CALL_RANGE,
				       "{" HDR ",\"kvs\":[{\"key\":\"L3N2Yy93ZWIvYQ==\",\"create_revision\":\"4\",\"mod_revision\":\"6\","
				       "\"version\":\"2\",\"value\":\"QTI=\"},{\"key\":\"L3N2Yy93ZWIvYg==\",\"lease\":\"1000\"}],"
				       "\"count\":\"2\",\"more\":true}");
	assert_int_equal(r.header.revision, 7);
	assert_true(r.header.member_id == 13668033151171901709ULL); /* above INT64_MAX */
	assert_int_equal(r.n_kvs, 2);
	assert_string_equal(r.kvs[0].key, "/svc/web/a");
	assert_string_equal(r.kvs[0].value, "A2");
	assert_int_equal(r.kvs[0].value_len, 2);
	assert_int_equal(r.kvs[0].mod_revision, 6);
	assert_null(r.kvs[1].value); /* absent: empty */
	assert_int_equal(r.kvs[1].lease, 1000);
	assert_int_equal(r.count, 2);
	assert_true(r.more);
	etcd_resp_release(&r);

	r = decode_ok(ETCD_CALL_RANGE, "{" HDR "}"); /* a missing key: no kvs, no count */
	assert_int_equal(r.n_kvs, 0);
	assert_int_equal(r.count, 0);
	assert_false(r.more);
	etcd_resp_release(&r);

	r = decode_ok(ETCD_CALL_TXN, "{" HDR ",\"responses\":[{\"response_range\":{\"header\":{\"revision\":\"14\"},"
				     "\"kvs\":[{\"key\":\"L2xvY2svbGVhZGVy\",\"value\":\"bm9kZS0x\"}],\"count\":\"1\"}}]}");
	assert_false(r.succeeded); /* absent */
	assert_int_equal(r.n_ops, 1);
	assert_string_equal(r.ops[0].kvs[0].value, "node-1");
	etcd_resp_release(&r);
	r = decode_ok(ETCD_CALL_TXN, "{" HDR ",\"succeeded\":true,\"responses\":[{\"response_put\":{\"header\":{}}},"
				     "{\"response_delete_range\":{\"deleted\":\"1\"}},{\"response_future\":{}}]}");
	assert_true(r.succeeded);
	assert_int_equal(r.n_ops, 3);
	assert_int_equal(r.ops[1].count, 1);
	etcd_resp_release(&r);

	r = decode_ok(ETCD_CALL_GRANT, "{" HDR ",\"ID\":\"4111120274874834713\",\"TTL\":10}");
	assert_true(r.lease_id == 4111120274874834713LL);
	assert_int_equal(r.ttl, 10); /* a number works as well as a string */
	etcd_resp_release(&r);
	r = decode_ok(ETCD_CALL_TTL, "{" HDR ",\"ID\":\"1000\",\"TTL\":\"-1\",\"grantedTTL\":\"5\",\"keys\":[\"L3N2Yy93ZWIvbGVhc2Vk\"]}");
	assert_int_equal(r.ttl, -1);
	assert_int_equal(r.granted_ttl, 5);
	assert_int_equal(r.n_kvs, 1);
	assert_string_equal(r.kvs[0].key, "/svc/web/leased");
	etcd_resp_release(&r);
	r = decode_ok(ETCD_CALL_STATUS, "{" HDR ",\"version\":\"3.4.23\",\"dbSize\":\"20480\",\"leader\":\"13668033151171901709\","
					"\"raftIndex\":\"9\",\"unknownField\":[1,2,3]}");
	assert_true(r.leader == r.header.member_id);
	assert_string_equal(r.version, "3.4.23");
	assert_int_equal(r.db_size, 20480);
	etcd_resp_release(&r);

	char *tok = NULL;
	struct vxerr err;
	const char *auth = "{" HDR ",\"token\":\"NxCWQkpNwWCjIYBK.353\"}";
	assert_int_equal(etcd_dec_token(auth, strlen(auth), &tok, &err), 0);
	assert_string_equal(tok, "NxCWQkpNwWCjIYBK.353");
	free(tok);
	const char *evil = "{\"token\":\"abc\\r\\nX-Evil: 1\"}";
	assert_int_equal(etcd_dec_token(evil, strlen(evil), &tok, &err), -1); /* never a header injection */
}

static void test_decode_errors(void **state)
{
	(void)state;
	char msg[128];
	int code;
	const char *e = "{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested lease not found\",\"code\":5}";
	etcd_dec_error(e, strlen(e), 404, &code, msg, sizeof(msg));
	assert_int_equal(code, ETCD_NOT_FOUND);
	assert_string_equal(msg, "etcdserver: requested lease not found");
	etcd_dec_error("404 page not found\n", 19, 404, &code, msg, sizeof(msg));
	assert_int_equal(code, ETCD_NOT_FOUND);
	assert_string_equal(msg, "404 page not found");
	etcd_dec_error("", 0, 503, &code, msg, sizeof(msg));
	assert_int_equal(code, ETCD_UNAVAILABLE);
	assert_string_equal(msg, "HTTP 503");
	etcd_dec_error("{\"code\":99,\"error\":\"x\\u0001y\"}", 30, 400, &code, msg, sizeof(msg));
	assert_int_equal(code, ETCD_INVALID_ARGUMENT); /* out-of-range code: from the status */
	assert_string_equal(msg, "x?y");               /* control bytes never reach a log */
	etcd_dec_error("\x01\x02junk", 6, 418, &code, msg, sizeof(msg));
	assert_int_equal(code, ETCD_UNKNOWN);
	assert_string_equal(msg, "??junk");
}

static struct etcd_watch_msg watch_ok(const char *line)
{
	struct etcd_watch_msg m;
	struct vxerr err = { "" };
	if (etcd_dec_watch_msg(line, strlen(line), &m, &err) != 0)
		fail_msg("decode %s: %s", line, err.msg);
	return m;
}

static void test_decode_watch_messages(void **state)
{
	(void)state;
	struct etcd_watch_msg m = watch_ok("{\"result\":{" HDR ",\"created\":true}}");
	assert_true(m.created);
	assert_int_equal(m.watch_id, 0);
	assert_int_equal(m.header.revision, 7);
	etcd_watch_msg_release(&m);
	m = watch_ok("{\"result\":{" HDR ",\"events\":[{\"kv\":{\"key\":\"L3N2Yy93ZWIvYw==\",\"create_revision\":\"17\","
		     "\"mod_revision\":\"18\",\"version\":\"2\",\"value\":\"QzI=\"},\"prev_kv\":{\"key\":\"L3N2Yy93ZWIvYw==\","
		     "\"value\":\"QzE=\"}},{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3N2Yy93ZWIvYw==\",\"mod_revision\":\"19\"}},"
		     "{\"type\":1,\"kv\":{\"key\":\"YQ==\"}},{\"type\":\"PUT\",\"kv\":{\"key\":\"Yg==\"}}]}}");
	assert_int_equal(m.n_events, 4);
	assert_int_equal(m.events[0].type, ETCD_EVENT_PUT); /* no "type": PUT */
	assert_true(m.events[0].has_prev);
	assert_string_equal(m.events[0].prev_kv.value, "C1");
	assert_int_equal(m.events[1].type, ETCD_EVENT_DELETE);
	assert_null(m.events[1].kv.value);
	assert_false(m.events[1].has_prev);
	assert_int_equal(m.events[2].type, ETCD_EVENT_DELETE);
	assert_int_equal(m.events[3].type, ETCD_EVENT_PUT);
	etcd_watch_msg_release(&m);
	m = watch_ok("{\"result\":{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"raft_term\":\"2\"},\"canceled\":true,"
		     "\"compact_revision\":\"20\"}}");
	assert_true(m.canceled);
	assert_int_equal(m.compact_revision, 20);
	assert_int_equal(m.header.revision, 0);
	etcd_watch_msg_release(&m);
	m = watch_ok("{\"result\":{" HDR ",\"watch_id\":\"-1\",\"created\":true,\"canceled\":true,"
		     "\"cancel_reason\":\"rpc error: code = InvalidArgument desc = etcdserver: user name is empty\"}}");
	assert_int_equal(m.watch_id, -1);
	assert_non_null(strstr(m.cancel_reason, "user name is empty"));
	etcd_watch_msg_release(&m);
	m = watch_ok("{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"transport is closing\","
		     "\"http_status\":\"Service Unavailable\"}}");
	assert_true(m.is_error);
	assert_int_equal(m.error_code, ETCD_UNAVAILABLE);
	assert_string_equal(m.error_msg, "transport is closing");
	etcd_watch_msg_release(&m);

	struct etcd_keepalive_msg k;
	struct vxerr err;
	const char *ka = "{\"result\":{" HDR ",\"ID\":\"1000\"}}"; /* revoked: no TTL */
	assert_int_equal(etcd_dec_keepalive_msg(ka, strlen(ka), &k, &err), 0);
	assert_int_equal(k.id, 1000);
	assert_int_equal(k.ttl, 0);
	etcd_keepalive_msg_release(&k);
	ka = "{\"result\":{" HDR ",\"ID\":\"1000\",\"TTL\":\"5\"}}";
	assert_int_equal(etcd_dec_keepalive_msg(ka, strlen(ka), &k, &err), 0);
	assert_int_equal(k.ttl, 5);
	etcd_keepalive_msg_release(&k);
}

/* Each hostile input is refused with a reason and leaves nothing allocated (ASan checks). */
static void test_hostile_inputs(void **state)
{
	(void)state;
	static const char *const bad_kv[] = {
		"{\"kvs\":[{\"key\":\"L3N2Yy93ZWIvYQ\"}]}",         /* unpadded base64 */
		"{\"kvs\":[{\"key\":\"-_8=\"}]}",                   /* URL-safe alphabet */
		"{\"kvs\":[{\"key\":\"YQ==\",\"value\":7}]}",       /* wrong type */
		"{\"kvs\":[{\"value\":\"YQ==\"}]}",                 /* no key */
		"{\"kvs\":[{\"key\":\"YQ==\"},{\"key\":\"Yg==\",\"mod_revision\":\"12x\"}]}",
		"{\"kvs\":[{\"key\":\"YQ==\",\"version\":\"-1\"}]}",
		"{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":\"99999999999999999999\"}]}",
		"{\"kvs\":[{\"key\":\"YQ==\",\"mod_revision\":1.5}]}",
		"{\"kvs\":{\"key\":\"YQ==\"}}",
		"{\"kvs\":[\"YQ==\"]}",
		"{\"header\":[]}",
		"{\"header\":{\"member_id\":\"18446744073709551616\"}}", /* 2^64 */
		"{\"header\":{\"member_id\":\"-1\"}}",
		"{\"count\":true}",
		"{\"more\":\"yes\"}",
		"{\"header\":{}} trailing",
		"{\"kvs\":[{\"key\":\"YQ==\"}]",
		"{\"a\":1,\"a\":2}",
		"[]",
		"\"string\"",
		"",
		"{\"key\":\"\\u0000\"}",
		"{\"k\":\"\xff\xfe\"}",
	};
	for (size_t i = 0; i < sizeof(bad_kv) / sizeof(bad_kv[0]); i++) {
		struct etcd_resp r = { .count = 42 };
		struct vxerr err = { "" };
		if (etcd_dec_resp(ETCD_CALL_RANGE, bad_kv[i], strlen(bad_kv[i]), &r, &err) != -1)
			fail_msg("accepted: %s", bad_kv[i]);
		assert_int_equal(r.count, 42); /* untouched */
		assert_true(err.msg[0] != '\0');
	}
	/* deep nesting is refused by the parser's depth limit, not by the stack */
	size_t depth = 100000;
	char *deep = xmalloc(2 * depth + 16);
	size_t o = 0;
	o += (size_t)sprintf(deep, "{\"x\":");
	for (size_t i = 0; i < depth; i++)
		deep[o++] = '[';
	for (size_t i = 0; i < depth; i++)
		deep[o++] = ']';
	deep[o++] = '}';
	struct etcd_resp r;
	struct vxerr err;
	assert_int_equal(etcd_dec_resp(ETCD_CALL_RANGE, deep, o, &r, &err), -1);
	free(deep);

	static const char *const bad_watch[] = {
		"{}",
		"{\"result\":[]}",
		"{\"result\":{\"events\":[{\"type\":\"EXPLODE\",\"kv\":{\"key\":\"YQ==\"}}]}}",
		"{\"result\":{\"events\":[{\"type\":2,\"kv\":{\"key\":\"YQ==\"}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\"}},{\"prev_kv\":{}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQ==\"},\"prev_kv\":{\"key\":\"***\"}}]}}",
		"{\"result\":{\"cancel_reason\":5}}",
		"{\"result\":{\"watch_id\":\"-2\"}}",
		"{\"error\":\"transport is closing\"}",
		"{\"error\":{\"grpc_code\":99}}",
	};
	for (size_t i = 0; i < sizeof(bad_watch) / sizeof(bad_watch[0]); i++) {
		struct etcd_watch_msg m;
		if (etcd_dec_watch_msg(bad_watch[i], strlen(bad_watch[i]), &m, &err) != -1)
			fail_msg("accepted: %s", bad_watch[i]);
		assert_non_null(strstr(err.msg, "watch message: "));
	}
	struct etcd_keepalive_msg k;
	const char *ka = "{\"result\":{\"TTL\":\"-3\"}}";
	assert_int_equal(etcd_dec_keepalive_msg(ka, strlen(ka), &k, &err), -1);
}

static void test_next_line(void **state)
{
	(void)state;
	struct buf b = BUF_INIT(1024);
	const char *line;
	size_t len, used;
	buf_puts(&b, "\n\r\n{\"a\":1}\r\n{\"b\":2}\n{\"c\"");
	assert_int_equal(etcd_next_line(&b, false, &line, &len, &used), 1);
	assert_int_equal(len, 7);
	assert_memory_equal(line, "{\"a\":1}", 7);
	buf_consume(&b, used);
	assert_int_equal(etcd_next_line(&b, false, &line, &len, &used), 1);
	assert_memory_equal(line, "{\"b\":2}", 7);
	buf_consume(&b, used);
	assert_int_equal(etcd_next_line(&b, false, &line, &len, &used), 0); /* incomplete */
	assert_int_equal(used, 0);
	assert_int_equal(etcd_next_line(&b, true, &line, &len, &used), 1); /* the last, without newline */
	assert_int_equal(len, 4);
	buf_consume(&b, used);
	assert_int_equal(b.len, 0);
	buf_puts(&b, "\n\n  \n");
	assert_int_equal(etcd_next_line(&b, false, &line, &len, &used), 0);
	assert_int_equal(used, 5); /* blank lines can be dropped */
	buf_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_prefix_end),
		cmocka_unit_test(test_encode_requests),
		cmocka_unit_test(test_decode_answers),
		cmocka_unit_test(test_decode_errors),
		cmocka_unit_test(test_decode_watch_messages),
		cmocka_unit_test(test_hostile_inputs),
		cmocka_unit_test(test_next_line),
	};
	return cmocka_run_group_tests_name("etcd_codec", tests, NULL, NULL);
}
