/* The etcd client's built-in HTTP/1.1 transport (http:// endpoints) and the on-demand loading
 * of libcurl (https:// endpoints).
 *
 * Against a scripted keep-alive server (tests/support/fx_kaserver.h): calls share one pooled
 * connection; a pooled connection closed by the server while idle, or dying as it is reused,
 * costs nothing (once more on a fresh connection), but a write that may have reached the
 * server is never sent to another endpoint; answers dribbled one byte at a time, chunked with
 * extensions and trailers, or running to EOF without a length; a reply that is not HTTP;
 * stream messages that each fit the bound though a read holds more. Against a real etcd: a
 * mix of calls over one connection (counted by a relay), and a running `veltrix agent` that
 * has not mapped libcurl. Finally, a missing libcurl is named with its package. */
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
#include "fx_agent.h"
#include "fx_etcd_client.h"
#include "fx_kaserver.h"
#include "fx_proxy.h"
#include "registry/etcd.h"
#include "registry/etcd_curl.h"

/* A range answer holding /k = v at revision 5. */
#define RANGE_BODY                                                                                                 \
	"{\"header\":{\"revision\":\"5\"},\"kvs\":[{\"key\":\"L2s=\",\"create_revision\":\"5\",\"mod_revision\":\"5\"," \
	"\"version\":\"1\",\"value\":\"dg==\"}],\"count\":\"1\"}"
#define PUT_BODY "{\"header\":{\"revision\":\"6\"}}"
#define HDR "\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"raft_term\":\"2\""

static struct fx_etcd etcd;

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

/* etcd_range of /k; returns 0 or the failure's code, with the message in err. */
static int range_k(struct etcd_client *c, struct vxerr *err)
{
	struct etcd_range_req req = { .key = "/k" };
	struct etcd_resp r;
	int rc = etcd_range(c, &req, &r, err);
	int code = r.code;
	if (rc == 0) {
		assert_int_equal(r.n_kvs, 1);
		assert_string_equal(r.kvs[0].key, "/k");
		assert_string_equal(r.kvs[0].value, "v");
		assert_int_equal(r.header.revision, 5);
	}
	etcd_resp_release(&r);
	return rc == 0 ? 0 : code;
}

static int put_k(struct etcd_client *c, struct vxerr *err)
{
	struct etcd_put_req req = { .key = "/k", .value = "v" };
	struct etcd_resp r;
	int rc = etcd_put(c, &req, &r, err);
	int code = r.code;
	etcd_resp_release(&r);
	return rc == 0 ? 0 : code;
}

static void test_calls_share_one_connection(void **state)
{
	(void)state;
	char *range = fx_ka_json(RANGE_BODY);
	struct fx_ka_step steps[] = { { .reply = range, .after = FX_KA_KEEP } };
	struct fx_kaserver *s = fx_kaserver_start(steps, 1);
	struct etcd_client *c = fxc_client(fx_kaserver_url(s), NULL);
	struct vxerr err;
	for (int i = 0; i < 10; i++)
		assert_int_equal(range_k(c, &err), 0);
	assert_int_equal(fx_kaserver_requests(s), 10);
	assert_int_equal(fx_kaserver_accepted(s), 1);
	assert_non_null(strstr(fx_kaserver_body(s, 9), "\"key\":\"L2s=\""));
	etcd_client_free(c);
	fx_kaserver_free(s);
	free(range);
}

static void test_pooled_connection_closed_while_idle(void **state)
{
	(void)state;
	char *range = fx_ka_json(RANGE_BODY), *put = fx_ka_json(PUT_BODY);
	struct fx_ka_step steps[] = {
		{ .reply = range, .after = FX_KA_IDLE_CLOSE, .idle_close_ms = 50 },
		{ .reply = put, .after = FX_KA_KEEP },
	};
	struct fx_kaserver *s = fx_kaserver_start(steps, 2);
	struct etcd_client *c = fxc_client(fx_kaserver_url(s), NULL);
	struct vxerr err;
	assert_int_equal(range_k(c, &err), 0);
	fxc_run_for(c, 300); /* the server closes the pooled connection meanwhile */
	assert_int_equal(put_k(c, &err), 0);
	assert_int_equal(fx_kaserver_requests(s), 2); /* the write went out once */
	assert_int_equal(fx_kaserver_accepted(s), 2);
	etcd_client_free(c);
	fx_kaserver_free(s);
	free(range);
	free(put);
}

/* The server takes the request on a reused connection, then closes (or resets) it without a
 * word: the client goes once more over a fresh connection. */
static void reused_connection_dies(enum fx_ka_after how)
{
	char *range = fx_ka_json(RANGE_BODY), *put = fx_ka_json(PUT_BODY);
	struct fx_ka_step steps[] = {
		{ .reply = range, .after = FX_KA_KEEP },
		{ .reply = "", .after = how },
		{ .reply = put, .after = FX_KA_KEEP },
	};
	struct fx_kaserver *s = fx_kaserver_start(steps, 3);
	struct etcd_client *c = fxc_client(fx_kaserver_url(s), NULL);
	struct vxerr err;
	assert_int_equal(range_k(c, &err), 0);
	assert_int_equal(put_k(c, &err), 0);
	assert_int_equal(fx_kaserver_requests(s), 3);
	assert_int_equal(fx_kaserver_accepted(s), 2);
	etcd_client_free(c);
	fx_kaserver_free(s);
	free(range);
	free(put);
}

static void test_reused_connection_closed_on_request(void **state)
{
	(void)state;
	reused_connection_dies(FX_KA_CLOSE);
	reused_connection_dies(FX_KA_RESET);
}

static void test_write_that_may_have_landed_stays_on_its_endpoint(void **state)
{
	(void)state;
	char *range = fx_ka_json(RANGE_BODY), *put = fx_ka_json(PUT_BODY);
	/* A: answers once, then takes the put, closes without answering and stops listening */
	struct fx_ka_step a_steps[] = {
		{ .reply = range, .after = FX_KA_KEEP },
		{ .reply = "", .after = FX_KA_CLOSE, .stop_listening = true },
	};
	struct fx_ka_step b_steps[] = { { .reply = range, .after = FX_KA_KEEP } };
	struct fx_kaserver *a = fx_kaserver_start(a_steps, 2), *b = fx_kaserver_start(b_steps, 1);
	char *eps = xasprintf("%s,%s", fx_kaserver_url(a), fx_kaserver_url(b));
	struct etcd_client *c = fxc_client(eps, NULL);
	struct vxerr err;
	assert_int_equal(range_k(c, &err), 0);
	assert_int_equal(put_k(c, &err), ETCD_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "connection refused"));
	assert_int_equal(fx_kaserver_requests(a), 2);
	assert_int_equal(fx_kaserver_requests(b), 0); /* never applied twice */
	/* a read is retried anywhere */
	assert_int_equal(range_k(c, &err), 0);
	assert_int_equal(fx_kaserver_requests(b), 1);
	etcd_client_free(c);
	fx_kaserver_free(a);
	fx_kaserver_free(b);
	free(eps);
	free(range);
	free(put);
}

static void test_slow_dribbled_answer(void **state)
{
	(void)state;
	char *range = fx_ka_json(RANGE_BODY);
	struct fx_ka_step steps[] = { { .reply = range, .dribble_us = 1000, .after = FX_KA_KEEP } };
	struct fx_kaserver *s = fx_kaserver_start(steps, 1);
	struct etcd_client *c = fxc_client(fx_kaserver_url(s), NULL);
	struct vxerr err;
	assert_int_equal(range_k(c, &err), 0);
	assert_int_equal(range_k(c, &err), 0);
	assert_int_equal(fx_kaserver_accepted(s), 1);
	etcd_client_free(c);
	/* the request timeout bounds the whole answer, however lively the dribble */
	struct etcd_opts o = { .request_timeout_us = 150 * USEC_PER_MS };
	c = fxc_client(fx_kaserver_url(s), &o);
	int64_t t0 = time_mono_us();
	assert_int_equal(range_k(c, &err), ETCD_DEADLINE_EXCEEDED);
	assert_non_null(strstr(err.msg, "no answer within 150ms"));
	assert_true(time_mono_us() - t0 < 3 * USEC_PER_SEC); /* two attempts, not the dribble's end */
	etcd_client_free(c);
	fx_kaserver_free(s);
	free(range);
}

static void test_chunked_with_extensions_and_trailers(void **state)
{
	(void)state;
	const char *body = RANGE_BODY;
	size_t n = strlen(body), half = n / 2;
	char *range = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
				"Trailer: Grpc-Trailer-Content-Type\r\n\r\n"
				"%zx;name=value;other\r\n%.*s\r\n%zX ; quoted=\"a b\"\r\n%s\r\n"
				"0;last\r\nGrpc-Trailer-Content-Type: application/grpc\r\nX-Other:  y \r\n\r\n",
				half, (int)half, body, n - half, body + half);
	/* etcd's unary errors: chunked, with a trailer */
	const char *e = "{\"error\":\"etcdserver: requested lease not found\",\"message\":\"etcdserver: requested lease "
			"not found\",\"code\":5}";
	char *notfound = xasprintf("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
				   "Trailer: Grpc-Trailer-Content-Type\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n%s\r\n"
				   "0\r\nGrpc-Trailer-Content-Type: application/grpc\r\n\r\n", strlen(e), e);
	struct fx_ka_step steps[] = {
		{ .reply = range, .after = FX_KA_KEEP },
		{ .reply = notfound, .after = FX_KA_KEEP },
		{ .reply = range, .after = FX_KA_KEEP },
	};
	struct fx_kaserver *s = fx_kaserver_start(steps, 3);
	struct etcd_client *c = fxc_client(fx_kaserver_url(s), NULL);
	struct vxerr err;
	struct etcd_resp r;
	assert_int_equal(range_k(c, &err), 0);
	assert_int_equal(etcd_lease_revoke(c, 42, &r, &err), -1);
	assert_int_equal(r.code, ETCD_NOT_FOUND);
	assert_int_equal(r.http_status, 404);
	assert_non_null(strstr(err.msg, "lease revoke: etcdserver: requested lease not found (NotFound)"));
	etcd_resp_release(&r);
	assert_int_equal(range_k(c, &err), 0);
	assert_int_equal(fx_kaserver_accepted(s), 1); /* each answer ended exactly where it should */
	etcd_client_free(c);
	fx_kaserver_free(s);
	free(range);
	free(notfound);
}

static void test_answer_without_length_runs_to_eof(void **state)
{
	(void)state;
	const char *range = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n" RANGE_BODY;
	struct fx_ka_step steps[] = { { .reply = range, .after = FX_KA_CLOSE } };
	struct fx_kaserver *s = fx_kaserver_start(steps, 1);
	struct etcd_client *c = fxc_client(fx_kaserver_url(s), NULL);
	struct vxerr err;
	assert_int_equal(range_k(c, &err), 0);
	assert_int_equal(range_k(c, &err), 0);
	assert_int_equal(fx_kaserver_accepted(s), 2); /* such a connection cannot carry another answer */
	assert_int_equal(fx_kaserver_requests(s), 2);
	etcd_client_free(c);
	fx_kaserver_free(s);
}

static void test_not_http(void **state)
{
	(void)state;
	struct fx_ka_step steps[] = { { .reply = "SSH-2.0-OpenSSH_9.2p1\r\n", .after = FX_KA_CLOSE } };
	struct fx_kaserver *s = fx_kaserver_start(steps, 1);
	struct etcd_client *c = fxc_client(fx_kaserver_url(s), NULL);
	struct vxerr err;
	assert_int_equal(range_k(c, &err), ETCD_UNAVAILABLE);
	assert_non_null(strstr(err.msg, "not an HTTP answer: it starts with \"SSH-2.0-OpenSSH_\""));
	assert_int_equal(fx_kaserver_requests(s), 2); /* a read is retried once */
	etcd_client_free(c);
	fx_kaserver_free(s);
}

static char *chunk(const char *s)
{
	return xasprintf("%zx\r\n%s\r\n", strlen(s), s);
}

static char *event_msg(int rev, const char *value_b64)
{
	return xasprintf("{\"result\":{" HDR ",\"revision\":\"%d\"},\"events\":[{\"kv\":{\"key\":\"L2svYQ==\","
			 "\"mod_revision\":\"%d\",\"value\":\"%s\"}}]}}\n",
			 rev, rev, value_b64);
}

/* Three 600-byte messages in one chunk and one read, with a 1000-byte bound: each fits. */
static void test_stream_messages_fit_one_at_a_time(void **state)
{
	(void)state;
	char value[401];
	memset(value, 'Q', 400); /* "QQQQ" is valid padded base64 */
	value[400] = '\0';
	char *m1 = event_msg(11, value), *m2 = event_msg(12, value), *m3 = event_msg(13, value);
	char *all = xasprintf("{\"result\":{" HDR ",\"revision\":\"10\"},\"created\":true}}\n%s%s%s", m1, m2, m3);
	char *c1 = chunk(all);
	char *reply = xasprintf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n%s",
				c1);
	struct fx_ka_step steps[] = { { .reply = reply, .after = FX_KA_KEEP } };
	struct fx_kaserver *s = fx_kaserver_start(steps, 1);
	struct etcd_opts o = { .max_response_bytes = 1000 };
	struct etcd_client *c = fxc_client(fx_kaserver_url(s), &o);
	struct vxerr err;
	struct fxc_watch fw = { 0 };
	struct etcd_watch_cbs cbs;
	fxc_watch_cbs(&fw, &cbs);
	struct etcd_watch_req req = { .key = "/k/", .prefix = true, .start_revision = 11 };
	fw.w = etcd_watch_start(c, &req, &cbs, &err);
	assert_non_null(fw.w);
	struct fxc_watch_wait ww = { &fw, 3 };
	assert_true(fxc_run_until(c, fxc_has_events, &ww, 5000));
	assert_int_equal(fw.n, 3);
	assert_int_equal(fw.ev[2].mod_revision, 13);
	assert_int_equal(strlen(fw.ev[0].value), 300);
	assert_false(fw.resynced);
	assert_int_equal(fw.downs, 0);
	fxc_watch_release(&fw);
	etcd_client_free(c);
	fx_kaserver_free(s);
	free(m1);
	free(m2);
	free(m3);
	free(all);
	free(c1);
	free(reply);
}

/* A mix of unary calls against a real etcd, one after the other, over one connection. */
static void test_real_etcd_calls_share_one_connection(void **state)
{
	(void)state;
	struct fx_proxy *px = fx_proxy_start(etcd.client_port);
	struct etcd_client *c = fxc_client(fx_proxy_url(px), NULL);
	struct vxerr err;
	struct etcd_resp r;
	assert_int_equal(etcd_lease_grant(c, 30, 0, &r, &err), 0);
	int64_t lease = r.lease_id;
	etcd_resp_release(&r);
	for (int i = 0; i < 5; i++) {
		char key[32];
		snprintf(key, sizeof(key), "/lite/%d", i);
		struct etcd_put_req put = { .key = key, .value = "x", .lease = lease };
		assert_int_equal(etcd_put(c, &put, &r, &err), 0);
		etcd_resp_release(&r);
	}
	struct etcd_range_req get = { .key = "/lite/", .prefix = true };
	assert_int_equal(etcd_range(c, &get, &r, &err), 0);
	assert_int_equal(r.n_kvs, 5);
	etcd_resp_release(&r);
	assert_int_equal(etcd_lease_ttl(c, lease, true, &r, &err), 0);
	assert_int_equal(r.n_kvs, 5);
	etcd_resp_release(&r);
	assert_int_equal(etcd_lease_revoke(c, lease, &r, &err), 0);
	etcd_resp_release(&r);
	assert_int_equal(etcd_range(c, &get, &r, &err), 0);
	assert_int_equal(r.n_kvs, 0);
	etcd_resp_release(&r);
	assert_int_equal(fx_proxy_accepted(px), 1);
	etcd_client_free(c);
	fx_proxy_free(px);
}

/* A host name is looked up off the loop (getaddrinfo_a): "localhost" (from /etc/hosts, no DNS
 * traffic) reaches the real etcd, over each fresh connection, whatever address family comes
 * first. (No test looks up a name that needs a DNS server: this machine's is off limits.) */
static void test_host_name_endpoint(void **state)
{
	(void)state;
	char url[64];
	snprintf(url, sizeof(url), "http://localhost:%d", etcd.client_port);
	struct etcd_client *c = fxc_client(url, NULL);
	struct vxerr err;
	struct etcd_resp r;
	struct etcd_put_req put = { .key = "/named/k", .value = "v" };
	assert_int_equal(etcd_put(c, &put, &r, &err), 0);
	etcd_resp_release(&r);
	struct etcd_range_req get = { .key = "/named/k" };
	assert_int_equal(etcd_range(c, &get, &r, &err), 0);
	assert_int_equal(r.n_kvs, 1);
	etcd_resp_release(&r);
	etcd_client_free(c);
}

static bool agent_registered(void *arg)
{
	return fx_agent_log_count(arg, "msg=registered") > 0;
}

/* The point of the built-in transport: a process that talks plain HTTP never maps libcurl. */
static void test_agent_does_not_map_libcurl(void **state)
{
	(void)state;
	char port[16];
	snprintf(port, sizeof(port), "%d", etcd.client_port); /* something that passes a tcp check */
	const char *argv[] = { "--service", "lite", "--port", port, "--address", "127.0.0.1", "--check", "tcp",
			       "--interval", "100ms", "--timeout", "100ms", "--ttl", "3s", "--drain-timeout", "0s", "--etcd", etcd.url, NULL };
	struct fx_agent a;
	fx_agent_start(&a, argv);
	if (!fx_wait(agent_registered, &a, 10000)) {
		fx_agent_dump(&a);
		fail_msg("the agent did not register");
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)a.pid);
	char *maps = fx_read_file(path);
	assert_non_null(strstr(maps, "libev")); /* the maps were read */
	assert_null(strstr(maps, "libcurl"));
	free(maps);
	fx_agent_free(&a);
}

static void test_libcurl_loader(void **state)
{
	(void)state;
	struct etcd_curl_api api;
	struct vxerr err;
	assert_int_equal(etcd_curl_load_from("libvx-no-such-curl.so.4", &api, &err), -1);
	assert_non_null(strstr(err.msg, "cannot load libvx-no-such-curl.so.4 (install the libcurl4 package)"));
	assert_int_equal(etcd_curl_load_from("libm.so.6", &api, &err), -1);
	assert_non_null(strstr(err.msg, "libm.so.6 has no curl_global_init"));
	assert_int_equal(etcd_curl_load_from(ETCD_CURL_SONAME, &api, &err), 0);
	assert_non_null(api.easy_strerror);
	assert_string_equal(api.easy_strerror(CURLE_OK), "No error");
}

/* Runs first in its process (the table is loaded once): https needs libcurl, http does not. */
static void test_missing_libcurl_named(void **state)
{
	(void)state;
	setenv("VX_TEST_LIBCURL", "libvx-no-such-curl.so.4", 1);
	const char *https[] = { "https://127.0.0.1:1" };
	struct etcd_opts o = { .endpoints = https, .n_endpoints = 1 };
	struct vxerr err;
	assert_null(etcd_client_new(NULL, &o, &err));
	assert_non_null(strstr(err.msg, "etcd: https endpoints need libcurl: cannot load libvx-no-such-curl.so.4 "
					"(install the libcurl4 package)"));
	/* plain http does not care */
	struct etcd_client *c = fxc_client(etcd.url, NULL);
	struct etcd_range_req get = { .key = "/nothing" };
	struct etcd_resp r;
	assert_int_equal(etcd_range(c, &get, &r, &err), 0);
	etcd_resp_release(&r);
	etcd_client_free(c);
	unsetenv("VX_TEST_LIBCURL");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_libcurl_named),
		cmocka_unit_test(test_calls_share_one_connection),
		cmocka_unit_test(test_pooled_connection_closed_while_idle),
		cmocka_unit_test(test_reused_connection_closed_on_request),
		cmocka_unit_test(test_write_that_may_have_landed_stays_on_its_endpoint),
		cmocka_unit_test(test_slow_dribbled_answer),
		cmocka_unit_test(test_chunked_with_extensions_and_trailers),
		cmocka_unit_test(test_answer_without_length_runs_to_eof),
		cmocka_unit_test(test_not_http),
		cmocka_unit_test(test_stream_messages_fit_one_at_a_time),
		cmocka_unit_test(test_real_etcd_calls_share_one_connection),
		cmocka_unit_test(test_host_name_endpoint),
		cmocka_unit_test(test_agent_does_not_map_libcurl),
		cmocka_unit_test(test_libcurl_loader),
	};
	return cmocka_run_group_tests_name("etcd_http", tests, group_setup, group_teardown);
}
