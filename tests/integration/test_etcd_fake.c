/* The etcd client against a scripted fake server, for what a real etcd does not produce on
 * demand: an answer cut in half, an oversize answer, malformed JSON, an error-shaped 200, a
 * text error page, a watch message without its newline before EOF, revisions going backwards.
 * (The real-etcd tests in test_etcd_client.c cover the same paths where etcd can.) */
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
#include "fx_fake.h"
#include "registry/etcd.h"

#define HEAD_CHUNKED "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
#define HDR "\"header\":{\"cluster_id\":\"14841639068965178418\",\"member_id\":\"10276657743932975437\",\"raft_term\":\"2\""

/* one HTTP chunk holding s */
static char *chunk(const char *s)
{
	return xasprintf("%zx\r\n%s\r\n", strlen(s), s);
}

static int range_fails(const char *url, const struct etcd_opts *o, struct vxerr *err)
{
	struct etcd_client *c = fxc_client(url, o);
	struct etcd_range_req req = { .key = "/k" };
	struct etcd_resp r;
	int rc = etcd_range(c, &req, &r, err);
	int code = r.code;
	etcd_resp_release(&r);
	etcd_client_free(c);
	return rc == 0 ? -1 : code;
}

static void test_answer_cut_in_half(void **state)
{
	(void)state;
	const char *script[] = { "HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n{\"header\":{\"revision\":\"5\"},\"kvs\":[" };
	struct fx_fake *f = fx_fake_start(script, 1);
	struct vxerr err;
	assert_int_equal(range_fails(fx_fake_url(f), NULL, &err), ETCD_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "etcd unreachable: tried "));
	assert_non_null(strstr(err.msg, fx_fake_url(f)));
	assert_non_null(strstr(err.msg, "connection lost mid-answer"));
	assert_int_equal(fx_fake_requests(f), 2); /* a read is retried once */
	fx_fake_free(f);
}

static void test_oversize_answer(void **state)
{
	(void)state;
	char *big = xmalloc(100001);
	memset(big, 'a', 100000);
	big[100000] = '\0';
	char *resp = xasprintf("HTTP/1.1 200 OK\r\nContent-Length: 100012\r\n\r\n{\"x\":\"%s\"}", big);
	const char *script[] = { resp };
	struct fx_fake *f = fx_fake_start(script, 1);
	struct etcd_opts o = { .max_response_bytes = 10000 };
	struct vxerr err;
	assert_int_equal(range_fails(fx_fake_url(f), &o, &err), ETCD_RESOURCE_EXHAUSTED);
	assert_non_null(strstr(err.msg, "answer larger than 10000 bytes"));
	assert_int_equal(fx_fake_requests(f), 1); /* the same answer again would not fit either */
	fx_fake_free(f);
	free(resp);
	free(big);
}

static char *answer(const char *status, const char *body)
{
	return xasprintf("HTTP/1.1 %s\r\nContent-Length: %zu\r\n\r\n%s", status, strlen(body), body);
}

static void test_malformed_and_error_shaped_answers(void **state)
{
	(void)state;
	char *script[] = {
		answer("200 OK", "{\"header\":{]"),
		answer("200 OK", "{\"header\":{\"revision\":\"-5\"}}    "),
		answer("200 OK", "{\"error\":\"etcdserver: boom\",\"message\":\"boom\",\"code\":9}"),
		answer("500 Internal Server Error", "something broke\r\nmore"),
		answer("200 OK", "{\"header\":{},\"kvs\":[{\"key\":\"L2s\",\"v\":1}]}"),
	};
	struct fx_fake *f = fx_fake_start((const char *const *)script, 5);
	struct vxerr err;
	assert_int_equal(range_fails(fx_fake_url(f), NULL, &err), ETCD_INTERNAL);
	assert_non_null(strstr(err.msg, "malformed answer: malformed JSON"));
	assert_int_equal(range_fails(fx_fake_url(f), NULL, &err), ETCD_INTERNAL);
	assert_non_null(strstr(err.msg, "header: field revision"));
	assert_int_equal(range_fails(fx_fake_url(f), NULL, &err), ETCD_FAILED_PRECONDITION);
	assert_non_null(strstr(err.msg, ": range: boom (FailedPrecondition)"));
	assert_int_equal(range_fails(fx_fake_url(f), NULL, &err), ETCD_INTERNAL);
	assert_non_null(strstr(err.msg, "something broke (Internal)"));
	assert_int_equal(range_fails(fx_fake_url(f), NULL, &err), ETCD_INTERNAL);
	assert_non_null(strstr(err.msg, "invalid base64")); /* unpadded: etcd never sends it */
	fx_fake_free(f);
	for (size_t i = 0; i < 5; i++)
		free(script[i]);
}

static void test_watch_last_message_without_newline_and_backwards(void **state)
{
	(void)state;
	/* connection 1: created, an event at 10 with no newline, then a clean end of stream */
	char *c1 = chunk("{\"result\":{" HDR ",\"revision\":\"9\"},\"created\":true}}\n");
	char *c2 = chunk("{\"result\":{" HDR ",\"revision\":\"10\"},\"events\":[{\"kv\":{\"key\":\"L2svYQ==\","
			 "\"create_revision\":\"10\",\"mod_revision\":\"10\",\"version\":\"1\",\"value\":\"MQ==\"}}]}}");
	/* connection 2: resumes at 11, gets 11, then a message going back to 9 */
	char *c3 = chunk("{\"result\":{" HDR ",\"revision\":\"11\"},\"created\":true}}\n");
	char *c4 = chunk("{\"result\":{" HDR ",\"revision\":\"11\"},\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"L2svYQ==\","
			 "\"mod_revision\":\"11\"}}]}}\n");
	char *c5 = chunk("{\"result\":{" HDR ",\"revision\":\"12\"},\"events\":[{\"kv\":{\"key\":\"L2svYg==\","
			 "\"mod_revision\":\"9\"}}]}}\n");
	char *s1 = xasprintf(HEAD_CHUNKED "%s%s0\r\n\r\n", c1, c2);
	char *s2 = xasprintf(HEAD_CHUNKED "%s%s%s" FX_HOLD, c3, c4, c5);
	const char *script[] = { s1, s2 };
	struct fx_fake *f = fx_fake_start(script, 2);
	struct etcd_client *c = fxc_client(fx_fake_url(f), NULL);
	struct vxerr err;
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/k/", .prefix = true, .start_revision = 10 };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	struct fxc_watch_wait ww = { &fw, 99 };
	assert_true(fxc_run_until(c, fxc_has_resync, &ww, 5000));
	assert_int_equal(fw.n, 2);
	assert_string_equal(fw.ev[0].key, "/k/a");
	assert_string_equal(fw.ev[0].value, "1");
	assert_int_equal(fw.ev[1].type, ETCD_EVENT_DELETE);
	assert_int_equal(fw.ev[1].mod_revision, 11);
	assert_int_equal(fw.downs, 1);
	assert_non_null(strstr(fw.last_down, "the server ended the stream"));
	assert_int_equal(fw.resync_reason, ETCD_RESYNC_BACKWARDS);
	assert_non_null(strstr(fw.resync_detail, "event at revision 9 after revision 11"));
	/* the first request starts at 10, the reconnect right after the last delivered event */
	assert_non_null(strstr(fx_fake_request_body(f, 0), "\"start_revision\":\"10\""));
	assert_non_null(strstr(fx_fake_request_body(f, 1), "\"start_revision\":\"11\""));
	fxc_watch_release(&fw);
	etcd_client_free(c);
	fx_fake_free(f);
	free(s1);
	free(s2);
	free(c1);
	free(c2);
	free(c3);
	free(c4);
	free(c5);
}

static void test_watch_shutdown_error_then_cancel(void **state)
{
	(void)state;
	/* etcd shutting down: an {"error":...} message without newline; then a member that
	 * cancels the watch for lack of permission: resync, not retry */
	char *e1 = chunk("{\"result\":{" HDR ",\"revision\":\"3\"},\"created\":true}}\n");
	char *e2 = chunk("{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":\"transport is closing\","
			 "\"http_status\":\"Service Unavailable\"}}");
	char *e3 = chunk("{\"result\":{" HDR ",\"revision\":\"3\"},\"watch_id\":\"-1\",\"created\":true,\"canceled\":true,"
			 "\"cancel_reason\":\"rpc error: code = PermissionDenied desc = etcdserver: permission denied\"}}\n");
	char *s1 = xasprintf(HEAD_CHUNKED "%s%s0\r\n\r\n", e1, e2);
	char *s2 = xasprintf(HEAD_CHUNKED "%s" FX_HOLD, e3);
	const char *script[] = { s1, s2 };
	struct fx_fake *f = fx_fake_start(script, 2);
	struct etcd_client *c = fxc_client(fx_fake_url(f), NULL);
	struct vxerr err;
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/k/", .prefix = true };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	struct fxc_watch_wait ww = { &fw, 99 };
	assert_true(fxc_run_until(c, fxc_has_resync, &ww, 5000));
	assert_int_equal(fw.downs, 1);
	assert_non_null(strstr(fw.last_down, "transport is closing"));
	assert_int_equal(fw.resync_reason, ETCD_RESYNC_CANCELED);
	assert_non_null(strstr(fw.resync_detail, "permission denied"));
	/* "from now" was created at 3, so the reconnect resumed at 4 */
	assert_non_null(strstr(fx_fake_request_body(f, 1), "\"start_revision\":\"4\""));
	fxc_watch_release(&fw);
	etcd_client_free(c);
	fx_fake_free(f);
	free(s1);
	free(s2);
	free(e1);
	free(e2);
	free(e3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_answer_cut_in_half),
		cmocka_unit_test(test_oversize_answer),
		cmocka_unit_test(test_malformed_and_error_shaped_answers),
		cmocka_unit_test(test_watch_last_message_without_newline_and_backwards),
		cmocka_unit_test(test_watch_shutdown_error_then_cancel),
	};
	return cmocka_run_group_tests_name("etcd_fake", tests, NULL, NULL);
}
