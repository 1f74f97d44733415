/* Unit tests for common/http1: responses and requests fed whole, split at every byte,
 * pipelined, chunked with trailers, and hostile or oversized. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/http1.h"

/* Feeds input to a response or request parser the way a connection does: bytes arrive in
 * pieces of `step` (0: all at once), unconsumed bytes stay at the front. The transcript lists
 * each message as "status/method,keepalive,body" and ends with "ERR <status>" on an error. */
struct transcript {
	struct buf out;
	struct buf body;
};

static void record_done(struct transcript *t, const char *what, bool keep)
{
	buf_printf(&t->out, "[%s ka=%d body=%zu:%s]", what, keep, t->body.len, t->body.data ? t->body.data : "");
	buf_reset(&t->body);
}

static char *run_parser(bool response, const char *in, size_t n, size_t step, const struct http1_limits *lim, bool eof)
{
	struct http1_resp rp;
	struct http1_req rq;
	struct http1_header hdrs[8];
	http1_resp_init(&rp, lim, hdrs, 8);
	http1_req_init(&rq, lim, hdrs, 8);
	struct transcript t = { BUF_INIT(1 << 20), BUF_INIT(1 << 20) };
	char *acc = malloc(n + 1);
	size_t have = 0, fed = 0;
	char what[64] = "";
	bool keep = false, failed = false;
	while (fed < n && !failed) {
		size_t k = step == 0 || n - fed < step ? n - fed : step;
		memcpy(acc + have, in + fed, k);
		have += k;
		fed += k;
		for (;;) {
			size_t used = 0;
			struct http1_span body = { NULL, 0 };
			enum http1_ev ev = response ? http1_resp_feed(&rp, acc, have, &used, &body)
						    : http1_req_feed(&rq, acc, have, &used, &body);
			if (ev == HTTP1_BODY)
				buf_append(&t.body, body.p, body.len);
			assert_true(used <= have);
			if (ev == HTTP1_HEAD) { /* the pointers are valid until the bytes move */
				if (response)
					snprintf(what, sizeof(what), "%d", rp.status);
				else
					snprintf(what, sizeof(what), "%.*s %.*s", (int)rq.method_len, rq.method,
						 (int)rq.target_len, rq.target);
				keep = response ? rp.m.keep_alive : rq.m.keep_alive;
			}
			memmove(acc, acc + used, have - used);
			have -= used;
			if (ev == HTTP1_AGAIN)
				break;
			if (ev == HTTP1_ERROR) {
				buf_printf(&t.out, "ERR %d", response ? rp.m.error_status : rq.m.error_status);
				failed = true;
				break;
			}
			if (ev == HTTP1_DONE)
				record_done(&t, what, keep);
		}
	}
	if (eof && response && !failed) {
		enum http1_ev ev = http1_resp_eof(&rp);
		if (ev == HTTP1_DONE)
			record_done(&t, what, keep);
		else if (ev == HTTP1_ERROR)
			buf_printf(&t.out, "ERR %d", rp.m.error_status);
	}
	free(acc);
	buf_release(&t.body);
	return buf_detach(&t.out, NULL);
}

/* Whole, then byte by byte, then in 7-byte pieces: the transcript must not change. */
static void expect_all_splits(bool response, const char *in, const char *want, bool eof)
{
	size_t steps[] = { 0, 1, 2, 7 };
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		char *got = run_parser(response, in, strlen(in), steps[i], NULL, eof);
		if (strcmp(got, want) != 0)
			fail_msg("step %zu: got %s\nwant %s", steps[i], got, want);
		free(got);
	}
}

static void test_check_path_rule(void **state)
{
	(void)state;
	assert_true(http1_check_path_valid("/healthz?full=1") && http1_check_path_valid("/%20"));
	const char *bad[] = { "healthz", "", "/a b", "/a#b", "/a\nb", "/\"", "/'", "/a\\b", "/a;b", "/\x7f", "/\xc3\xa9" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (http1_check_path_valid(bad[i]))
			fail_msg("'%s' accepted", bad[i]);
	assert_false(http1_check_path_valid(NULL));
	char p[HTTP1_CHECK_PATH_MAX + 2];
	memset(p, 'a', sizeof(p));
	p[0] = '/';
	p[HTTP1_CHECK_PATH_MAX] = '\0';
	assert_true(http1_check_path_valid(p));
	p[HTTP1_CHECK_PATH_MAX] = 'a';
	p[HTTP1_CHECK_PATH_MAX + 1] = '\0';
	assert_false(http1_check_path_valid(p));
}

static void test_resp_content_length(void **state)
{
	(void)state;
	struct http1_resp r;
	struct http1_header h[4];
	http1_resp_init(&r, NULL, h, 4);
	const char *in = "HTTP/1.1 201 Created\r\nContent-Length: 5\r\nX-A:  spaced value \t\r\n\r\nhello";
	size_t used;
	struct http1_span body;
	assert_int_equal(http1_resp_feed(&r, in, strlen(in), &used, &body), HTTP1_HEAD);
	assert_int_equal(r.status, 201);
	assert_int_equal(r.reason_len, 7);
	assert_memory_equal(r.reason, "Created", 7);
	assert_int_equal(r.m.content_length, 5);
	assert_true(r.m.keep_alive);
	size_t len;
	const char *v = http1_header_get(&r.m, "x-a", &len);
	assert_non_null(v);
	assert_int_equal(len, 12);
	assert_memory_equal(v, "spaced value", 12);
	assert_null(http1_header_get(&r.m, "x-b", &len));
	assert_int_equal(http1_resp_feed(&r, in + used, strlen(in) - used, &used, &body), HTTP1_BODY);
	assert_int_equal(body.len, 5);
	assert_memory_equal(body.p, "hello", 5);
	assert_int_equal(http1_resp_feed(&r, "", 0, &used, &body), HTTP1_DONE);
	assert_false(http1_resp_started(&r));
}

static void test_resp_split_pipelined(void **state)
{
	(void)state;
	const char *in = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"
			 "HTTP/1.1 100 Continue\r\n\r\n"
			 "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
			 "4;ext=1\r\nWiki\r\n5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nX-Trailer: yes\r\n\r\n"
			 "HTTP/1.1 204 No Content\r\n\r\n"
			 "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"
			 "HTTP/1.1 404 Not Found\nContent-Length: 2\n\nno"
			 "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
	expect_all_splits(true, in,
			  "[200 ka=1 body=3:abc][200 ka=1 body=23:Wikipedia in\r\n\r\nchunks.][204 ka=1 body=0:]"
			  "[304 ka=1 body=0:][404 ka=1 body=2:no][200 ka=0 body=0:]",
			  false);
}

static void test_resp_to_eof_and_keepalive(void **state)
{
	(void)state;
	expect_all_splits(true, "HTTP/1.0 200 OK\r\n\r\nall of it", "[200 ka=0 body=9:all of it]", true);
	expect_all_splits(true, "HTTP/1.1 200 OK\r\n\r\nuntil close", "[200 ka=0 body=11:until close]", true);
	expect_all_splits(true, "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 1\r\n\r\nx",
			  "[200 ka=1 body=1:x]", false);
	expect_all_splits(true, "HTTP/1.1 200 OK\r\nConnection: foo, close\r\nContent-Length: 1\r\n\r\nx",
			  "[200 ka=0 body=1:x]", false);
	/* eof in the middle of a sized or chunked body is a truncation */
	expect_all_splits(true, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "ERR 502", true);
	expect_all_splits(true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", "ERR 502", true);
	expect_all_splits(true, "HTTP/1.1 200 O", "ERR 502", true);
	/* eof before anything: nothing started, nothing lost */
	struct http1_resp r;
	http1_resp_init(&r, NULL, NULL, 0);
	assert_int_equal(http1_resp_eof(&r), HTTP1_AGAIN);
}

static void test_resp_head_request(void **state)
{
	(void)state;
	struct http1_resp r;
	http1_resp_init(&r, NULL, NULL, 0);
	r.head_request = true;
	const char *in = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
	size_t used;
	struct http1_span body;
	assert_int_equal(http1_resp_feed(&r, in, strlen(in), &used, &body), HTTP1_HEAD);
	assert_int_equal(used, strlen(in));
	assert_int_equal(http1_resp_feed(&r, in + used, 0, &used, &body), HTTP1_DONE);
}

static void test_resp_garbage(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int status;
	} rows[] = {
		{ "HTTP/2 200 OK\r\n\r\n", 502 },
		{ "HTTP/1.1 20 OK\r\n\r\n", 502 },
		{ "HTTP/1.1 099 Low\r\n\r\n", 502 },
		{ "HTTP/1.1 200OK\r\n\r\n", 502 },
		{ "garbage\r\n\r\n", 502 },
		{ "\r\n", 502 },
		{ "HTTP/1.1 200 OK\r\nNoColon\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nA: b\r\n folded\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nA: b\rc\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nA: nul\001\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 501 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n", 400 },
		{ "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n", 400 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char want[16];
		snprintf(want, sizeof(want), "ERR %d", rows[i].status);
		for (size_t step = 0; step <= 1; step++) {
			char *got = run_parser(true, rows[i].in, strlen(rows[i].in), step, NULL, false);
			if (strcmp(got, want) != 0)
				fail_msg("row %zu step %zu: got '%s' want '%s'", i, step, got, want);
			free(got);
		}
	}
}

static char *repeat(const char *unit, size_t times, const char *prefix, const char *suffix)
{
	struct buf b = BUF_INIT(16u << 20);
	buf_puts(&b, prefix);
	for (size_t i = 0; i < times; i++)
		buf_puts(&b, unit);
	buf_puts(&b, suffix);
	return buf_detach(&b, NULL);
}

static void expect_error(bool response, const char *in, const struct http1_limits *lim, int status)
{
	char want[16];
	snprintf(want, sizeof(want), "ERR %d", status);
	for (size_t step = 0; step <= 1; step++) {
		char *got = run_parser(response, in, strlen(in), step ? 997 : 0, lim, false);
		if (strcmp(got, want) != 0)
			fail_msg("got '%.60s' want '%s'", got, want);
		free(got);
	}
}

static void test_limits(void **state)
{
	(void)state;
	struct http1_limits lim = { .max_head = 1024, .max_headers = 10, .max_chunk_line = 32, .max_body = 4096 };
	char *big_head = repeat("X-Filler: 0123456789abcdef0123456789\r\n", 40, "HTTP/1.1 200 OK\r\n", "\r\n");
	expect_error(true, big_head, &lim, 431);
	char *no_end = repeat("a", 5000, "HTTP/1.1 200 OK\r\nX: ", ""); /* never a blank line */
	expect_error(true, no_end, &lim, 431);
	char *many = repeat("A: b\r\n", 11, "HTTP/1.1 200 OK\r\n", "\r\n");
	expect_error(true, many, &lim, 431);
	expect_error(true, "HTTP/1.1 200 OK\r\nContent-Length: 4097\r\n\r\n", &lim, 413);
	char *body = repeat("y", 1024, "", "\r\n");
	struct buf b = BUF_INIT(1 << 20);
	buf_puts(&b, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 5; i++) { /* 5 KiB > 4 KiB */
		buf_puts(&b, "400\r\n");
		buf_puts(&b, body);
	}
	expect_error(true, b.data, &lim, 413);
	expect_error(true, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
		     &lim, 400);
	char *eof_body = repeat("z", 5000, "HTTP/1.0 200 OK\r\n\r\n", "");
	expect_error(true, eof_body, &lim, 413);
	char *big_req = repeat("H: 0123456789012345678901234567890123456789\r\n", 30, "GET / HTTP/1.1\r\n", "\r\n");
	expect_error(false, big_req, &lim, 431);
	expect_error(false, "POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n", &lim, 413);
	buf_release(&b);
	free(big_head);
	free(no_end);
	free(many);
	free(body);
	free(eof_body);
	free(big_req);
}

static void test_req_pipelined_split(void **state)
{
	(void)state;
	const char *in = "\r\nGET /a?x=1 HTTP/1.1\r\nHost: h\r\n\r\n"
			 "POST /b HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"
			 "\r\nPUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
			 "GET /d HTTP/1.0\r\n\r\n"
			 "GET /e HTTP/1.1\r\nConnection: close\r\n\r\n";
	expect_all_splits(false, in,
			  "[GET /a?x=1 ka=1 body=0:][POST /b ka=1 body=4:body][PUT /c ka=1 body=3:abc]"
			  "[GET /d ka=0 body=0:][GET /e ka=0 body=0:]",
			  false);
}

static void test_req_garbage(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int status;
	} rows[] = {
		{ "GET\r\n\r\n", 400 },
		{ "GET / \r\n\r\n", 400 },
		{ "GET  / HTTP/1.1\r\n\r\n", 400 },
		{ "GET / HTTP/2.0\r\n\r\n", 400 },
		{ "G(T / HTTP/1.1\r\n\r\n", 400 },
		{ "GET /\001 HTTP/1.1\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
		{ "GET / HTTP/1.1\r\nTransfer-Encoding: compress\r\n\r\n", 501 },
		{ "GET / HTTP/1.1\r\n: empty\r\n\r\n", 400 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char want[16];
		snprintf(want, sizeof(want), "ERR %d", rows[i].status);
		char *got = run_parser(false, rows[i].in, strlen(rows[i].in), 1, NULL, false);
		if (strcmp(got, want) != 0)
			fail_msg("row %zu: got '%s' want '%s'", i, got, want);
		free(got);
	}
}

/* Deterministic random bytes and random mutations of valid messages: the parser must stay in
 * bounds (ASan checks) and end every stream in an event, never loop. */
static void test_random_inputs(void **state)
{
	(void)state;
	uint64_t x = 88172645463325252ull;
	const char *seed = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\n\r\n";
	char in[256];
	for (int round = 0; round < 3000; round++) {
		size_t n = strlen(seed);
		memcpy(in, seed, n);
		for (int k = 0; k < 1 + round % 4; k++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			in[x % n] = (char)(x >> 32);
		}
		char *a = run_parser(true, in, n, 0, NULL, true);
		char *b = run_parser(true, in, n, 1, NULL, true);
		assert_string_equal(a, b);
		char *c = run_parser(false, in, n, 3, NULL, false);
		free(a);
		free(b);
		free(c);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_path_rule),
		cmocka_unit_test(test_resp_content_length),
		cmocka_unit_test(test_resp_split_pipelined),
		cmocka_unit_test(test_resp_to_eof_and_keepalive),
		cmocka_unit_test(test_resp_head_request),
		cmocka_unit_test(test_resp_garbage),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_req_pipelined_split),
		cmocka_unit_test(test_req_garbage),
		cmocka_unit_test(test_random_inputs),
	};
	return cmocka_run_group_tests_name("http1", tests, NULL, NULL);
}
