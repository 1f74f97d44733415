/* Unit tests for src/common: durations, numbers, base64, addresses, buffers, strings, logging. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "common/alloc.h"
#include "common/b64.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/log.h"
#include "common/net.h"
#include "common/parse.h"
#include "common/proc.h"
#include "common/strutil.h"
#include "common/timeutil.h"

static void test_dur_parse_valid(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int64_t us;
	} rows[] = {
		{ "250ms", 250000 }, { "2s", 2000000 }, { "1m", 60000000 }, { "1h", 3600000000LL },
		{ "1.5s", 1500000 }, { "1m30s", 90000000 }, { "500us", 500 }, { "0s", 0 },
		{ "0.001s", 1000 }, { "10ms", 10000 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		int64_t us = -1;
		char why[128];
		assert_int_equal(dur_parse(rows[i].in, &us, why, sizeof(why)), 0);
		assert_int_equal(us, rows[i].us);
	}
}

static void test_dur_parse_invalid(void **state)
{
	(void)state;
	static const char *bad[] = { "", "10", "ms", "1.s", "-1s", "1 s", "1sec", "5d", "1e3s",
				     "99999999999999999999s", "367d", "9000h", "s1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int64_t us = 42;
		char why[128] = "";
		assert_int_equal(dur_parse(bad[i], &us, why, sizeof(why)), -1);
		assert_int_equal(us, 42);
		assert_true(why[0] != '\0');
	}
}

static void test_dur_format(void **state)
{
	(void)state;
	char out[32];
	static const struct {
		int64_t us;
		const char *text;
	} rows[] = { { 250000, "250ms" }, { 2000000, "2s" }, { 1500000, "1.5s" }, { 90000000, "1m30s" },
		     { 3600000000LL, "1h" }, { 500, "500us" }, { 0, "0s" } };
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		dur_format(rows[i].us, out, sizeof(out));
		assert_string_equal(out, rows[i].text);
		int64_t back;
		char why[64];
		assert_int_equal(dur_parse(out, &back, why, sizeof(why)), 0);
		assert_int_equal(back, rows[i].us);
	}
}

static void test_parse_numbers(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(parse_i64("80", 1, 65535, &v), 0);
	assert_int_equal(v, 80);
	assert_int_equal(parse_i64("80abc", 1, 65535, &v), -1);
	assert_int_equal(parse_i64("0", 1, 65535, &v), -1);
	assert_int_equal(parse_i64("65536", 1, 65535, &v), -1);
	assert_int_equal(parse_i64(" 8", 1, 65535, &v), -1);
	assert_int_equal(parse_i64("+8", 1, 65535, &v), -1);
	assert_int_equal(parse_i64("", 1, 65535, &v), -1);
	assert_int_equal(parse_i64("99999999999999999999", 0, INT64_MAX, &v), -1);
	assert_int_equal(parse_i64_n("123xyz", 3, 0, 1000, &v), 0);
	assert_int_equal(v, 123);
	uint64_t sz;
	assert_int_equal(parse_size("16KiB", UINT64_MAX, &sz), 0);
	assert_int_equal(sz, 16384);
	assert_int_equal(parse_size("2MB", UINT64_MAX, &sz), 0);
	assert_int_equal(sz, 2000000);
	assert_int_equal(parse_size("2XB", UINT64_MAX, &sz), -1);
	assert_int_equal(parse_size("2GiB", 1024, &sz), -1);
	double f;
	assert_int_equal(parse_percent("50%", &f), 0);
	assert_true(f > 0.4999 && f < 0.5001);
	assert_int_equal(parse_percent("0.1%", &f), 0);
	assert_int_equal(parse_percent("50", &f), -1);
	assert_int_equal(parse_percent("101%", &f), -1);
	assert_int_equal(parse_percent("nan%", &f), -1);
}

static void test_b64_roundtrip(void **state)
{
	(void)state;
	static const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar", "/svc/web/a" };
	static const char *coded[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", "L3N2Yy93ZWIvYQ==" };
	for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
		char enc[64], dec[64];
		b64_encode(plain[i], strlen(plain[i]), enc, sizeof(enc));
		assert_string_equal(enc, coded[i]);
		long n = b64_decode(enc, strlen(enc), dec, sizeof(dec));
		assert_int_equal(n, (long)strlen(plain[i]));
		assert_memory_equal(dec, plain[i], (size_t)n);
	}
}

static void test_b64_rejects(void **state)
{
	(void)state;
	static const char *bad[] = { "L3N2Yy93ZWIvYQ", "Zg=", "Z===", "Zm9-", "Zm9_", "Zg==Zg==", "Zh==", "Zm9 " };
	char out[64];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(b64_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -1);
	/* output bound */
	assert_int_equal(b64_decode("Zm9vYmFy", 8, out, 5), -1);
}

static void test_ip_canon(void **state)
{
	(void)state;
	char out[NET_IP_MAX];
	assert_int_equal(net_ip_canon("127.0.0.1", out, sizeof(out)), AF_INET);
	assert_string_equal(out, "127.0.0.1");
	assert_int_equal(net_ip_canon("0:0:0:0:0:0:0:1", out, sizeof(out)), AF_INET6);
	assert_string_equal(out, "::1");
	static const char *bad[] = { "999.1.1.1", "01.02.03.04", "fe80::1%eth0", "localhost", "1.2.3",
				     "1.2.3.4 ", "", "::1;", "[::1]" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(net_ip_canon(bad[i], out, sizeof(out)), -1);
}

static void test_hostport(void **state)
{
	(void)state;
	char host[NET_IP_MAX];
	uint16_t port;
	struct vxerr err;
	assert_int_equal(net_hostport_parse("127.0.0.1:8080", host, sizeof(host), &port, &err), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 8080);
	assert_int_equal(net_hostport_parse("[::1]:80", host, sizeof(host), &port, &err), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(net_hostport_parse(":80", host, sizeof(host), &port, &err), 0);
	assert_string_equal(host, "");
	assert_int_equal(net_hostport_parse("127.0.0.1", host, sizeof(host), &port, &err), -1);
	assert_non_null(strstr(err.msg, "no port"));
	assert_int_equal(net_hostport_parse("::1:80", host, sizeof(host), &port, &err), -1);
	assert_int_equal(net_hostport_parse("h:0", host, sizeof(host), &port, &err), -1);
	assert_int_equal(net_hostport_parse("h:65536", host, sizeof(host), &port, &err), -1);
	char out[NET_HOSTPORT_MAX];
	net_hostport_format("::1", 80, out, sizeof(out));
	assert_string_equal(out, "[::1]:80");
}

static void test_cidr(void **state)
{
	(void)state;
	struct cidr c;
	struct vxerr err;
	assert_int_equal(cidr_parse("10.0.0.0/8", &c, &err), 0);
	assert_true(cidr_contains(&c, "10.1.2.3"));
	assert_false(cidr_contains(&c, "11.0.0.1"));
	assert_false(cidr_contains(&c, "::1"));
	assert_int_equal(cidr_parse("192.168.1.0/25", &c, &err), 0);
	assert_true(cidr_contains(&c, "192.168.1.127"));
	assert_false(cidr_contains(&c, "192.168.1.128"));
	assert_int_equal(cidr_parse("::1", &c, &err), 0);
	assert_true(cidr_contains(&c, "::1"));
	assert_int_equal(cidr_parse("0.0.0.0/0", &c, &err), 0);
	assert_true(cidr_contains(&c, "8.8.8.8"));
	assert_int_equal(cidr_parse("10.0.0.0/33", &c, &err), -1);
	assert_int_equal(cidr_parse("10.0.0/8", &c, &err), -1);
	assert_int_equal(cidr_parse("/8", &c, &err), -1);
	assert_int_equal(cidr_parse("10.0.0.0/x", &c, &err), -1);
}

/* issue 10 D10: an IPv4-mapped IPv6 address is its IPv4 address, in ranges and addresses. */
static void test_cidr_v4_mapped(void **state)
{
	(void)state;
	struct cidr c;
	struct vxerr err;
	assert_int_equal(cidr_parse("::/0", &c, &err), 0);
	assert_true(cidr_contains(&c, "2001:db8::1"));
	assert_false(cidr_contains(&c, "::ffff:127.0.0.2"));
	assert_false(cidr_contains(&c, "127.0.0.2"));
	assert_int_equal(cidr_parse("127.0.0.1/32", &c, &err), 0);
	assert_true(cidr_contains(&c, "::ffff:127.0.0.1"));
	assert_false(cidr_contains(&c, "::ffff:127.0.0.2"));
	assert_int_equal(cidr_parse("::ffff:10.0.0.0/104", &c, &err), 0);
	assert_int_equal(c.family, AF_INET);
	assert_int_equal(c.prefix, 8);
	assert_true(cidr_contains(&c, "10.9.9.9"));
	assert_true(cidr_contains(&c, "::ffff:10.1.2.3"));
	assert_false(cidr_contains(&c, "11.0.0.1"));
	assert_int_equal(cidr_parse("::ffff:0:0/80", &c, &err), 0);
	assert_int_equal(c.family, AF_INET6);
	assert_false(cidr_contains(&c, "::ffff:10.1.2.3"));
}

static void test_buf_bounded(void **state)
{
	(void)state;
	struct buf b = BUF_INIT(10);
	assert_int_equal(buf_puts(&b, "hello"), 0);
	assert_int_equal(buf_printf(&b, "%d", 12345), 0);
	assert_int_equal(b.len, 10);
	assert_int_equal(buf_putc(&b, 'x'), -1);
	assert_string_equal(b.data, "hello12345");
	buf_consume(&b, 5);
	assert_string_equal(b.data, "12345");
	assert_int_equal(buf_printf(&b, "%300s", "x"), -1);
	assert_int_equal(b.len, 5);
	size_t n;
	char *s = buf_detach(&b, &n);
	assert_int_equal(n, 5);
	free(s);
	assert_null(b.data);
	struct buf big = BUF_INIT(1 << 20);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(buf_printf(&big, "%0500d", i), 0);
	assert_int_equal(big.len, 500000);
	buf_release(&big);
}

static void test_strings(void **state)
{
	(void)state;
	assert_int_equal(str_edit_distance("endpoints", "endpoint"), 1);
	assert_int_equal(str_edit_distance("balance", "balanse"), 1);
	assert_int_equal(str_edit_distance("", "abc"), 3);
	char small[4];
	assert_int_equal(str_copy(small, sizeof(small), "abcdef"), -1);
	assert_string_equal(small, "abc");
	assert_true(str_starts_with("services", "serv"));
	assert_true(str_ends_with("file.yaml", ".yaml"));
}

static void test_log_quote(void **state)
{
	(void)state;
	assert_string_equal(log_q("plain"), "plain");
	assert_string_equal(log_q("two words"), "\"two words\"");
	assert_string_equal(log_q("a\"b\nc"), "\"a\\\"b\\nc\"");
	assert_string_equal(log_q(""), "\"\"");
	char big[1000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_true(strlen(log_q(big)) < 256);
	char *path = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&path, &len);
	log_set_output(f);
	log_set_component("test");
	log_info("lease lost", "key=%s ttl=%d", log_q("/veltrix/services/web/a b"), 0);
	log_set_output(NULL);
	fclose(f);
	assert_non_null(strstr(path, "level=info component=test msg=\"lease lost\" key=\"/veltrix/services/web/a b\" ttl=0\n"));
	assert_true(strncmp(path, "ts=20", 5) == 0);
	free(path);
}

static void test_err_prefix(void **state)
{
	(void)state;
	struct vxerr err;
	assert_int_equal(vxerr_set(&err, "bad %s", "thing"), -1);
	assert_int_equal(vxerr_prefix(&err, "loading %s: ", "x.yaml"), -1);
	assert_string_equal(err.msg, "loading x.yaml: bad thing");
	assert_int_equal(vxerr_set(NULL, "ignored"), -1);
}

static void test_proc_spawn(void **state)
{
	(void)state;
	struct vxerr err;
	char *const ok_argv[] = { (char *)(uintptr_t) "sh", (char *)(uintptr_t) "-c", (char *)(uintptr_t) "exit 7", NULL };
	pid_t pid = proc_spawn(ok_argv, NULL, &err);
	assert_true(pid > 0);
	int st;
	assert_int_equal(proc_wait(pid, 5000, &st), 0);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 7);
	char *const missing[] = { (char *)(uintptr_t) "/nonexistent/veltrix-test", NULL };
	assert_int_equal(proc_spawn(missing, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "No such file"));
	char *const sleeper[] = { (char *)(uintptr_t) "sleep", (char *)(uintptr_t) "30", NULL };
	struct proc_opts o = { .new_pgrp = true };
	pid = proc_spawn(sleeper, &o, &err);
	assert_true(pid > 0);
	assert_int_equal(proc_wait(pid, 50, &st), -1);
	st = proc_stop(pid, 2000);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dur_parse_valid), cmocka_unit_test(test_dur_parse_invalid),
		cmocka_unit_test(test_dur_format),      cmocka_unit_test(test_parse_numbers),
		cmocka_unit_test(test_b64_roundtrip),   cmocka_unit_test(test_b64_rejects),
		cmocka_unit_test(test_ip_canon),        cmocka_unit_test(test_hostport),
		cmocka_unit_test(test_cidr),
		cmocka_unit_test(test_cidr_v4_mapped),            cmocka_unit_test(test_buf_bounded),
		cmocka_unit_test(test_strings),         cmocka_unit_test(test_log_quote),
		cmocka_unit_test(test_err_prefix),      cmocka_unit_test(test_proc_spawn),
	};
	return cmocka_run_group_tests_name("common", tests, NULL, NULL);
}
