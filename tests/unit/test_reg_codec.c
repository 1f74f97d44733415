/* Unit tests for the registry key layout and instance codec (src/registry/reg.h): names, keys,
 * ranges, the hostile-input table (each rejected with its reason, valid neighbours unaffected),
 * encode/decode round trips, allow-lists, and the reason codes documented in docs/registry.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/alloc.h"
#include "fx.h"
#include "registry/reg.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define GOOD "{\"address\":\"10.0.0.1\",\"port\":8080}"

static int decode_str(const char *json, struct reg_instance *out, struct reg_fail *fail)
{
	return reg_value_decode(json, strlen(json), out, fail);
}

static void test_names(void **state)
{
	(void)state;
	static const char *good_svc[] = { "web", "a", "0", "web-api_2", "x23456789012345678901234567890123456789012345678901234567890123" };
	static const char *bad_svc[] = { "", "Web", "-web", "_web", "web;ls", "web\n", "we b", "wéb", "web.api",
					 "web/api", "x234567890123456789012345678901234567890123456789012345678901234" };
	for (size_t i = 0; i < N_ELEMS(good_svc); i++)
		assert_true(reg_service_name_valid(good_svc[i], strlen(good_svc[i])));
	for (size_t i = 0; i < N_ELEMS(bad_svc); i++)
		assert_false(reg_service_name_valid(bad_svc[i], strlen(bad_svc[i])));
	static const char *good_inst[] = { "a", "Web-1", "10.0.0.1:8080", "a.b_c-d:e", "host-2001:db8::1" };
	static const char *bad_inst[] = { "", ".a", "-a", ":a", "a;b", "a b", "a\nb", "a\rb", "a/b", "a#b",
					  "a\\b", "añ", "a\"b", "a'b", "a[b]" };
	for (size_t i = 0; i < N_ELEMS(good_inst); i++)
		assert_true(reg_instance_name_valid(good_inst[i], strlen(good_inst[i])));
	for (size_t i = 0; i < N_ELEMS(bad_inst); i++)
		assert_false(reg_instance_name_valid(bad_inst[i], strlen(bad_inst[i])));
	char longest[REG_INSTANCE_MAX + 2];
	memset(longest, 'a', sizeof(longest));
	assert_true(reg_instance_name_valid(longest, REG_INSTANCE_MAX));
	assert_false(reg_instance_name_valid(longest, REG_INSTANCE_MAX + 1));
	assert_false(reg_instance_name_valid("a\0b", 3)); /* NUL inside the length */
}

static void test_prefix(void **state)
{
	(void)state;
	struct vxerr err;
	assert_int_equal(reg_prefix_check("/veltrix", &err), 0);
	assert_int_equal(reg_prefix_check("/org/team-1/veltrix.v2", &err), 0);
	static const char *bad[] = { "", "/", "veltrix", "/veltrix/", "//veltrix", "/a//b", "/vel trix",
				     "/vel;trix", "/vél" };
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		err.msg[0] = '\0';
		assert_int_equal(reg_prefix_check(bad[i], &err), -1);
		assert_non_null(strstr(err.msg, "registry prefix"));
	}
	char big[REG_PREFIX_MAX + 3];
	memset(big, 'a', sizeof(big));
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(reg_prefix_check(big, &err), -1);
}

static void test_key_build_and_ranges(void **state)
{
	(void)state;
	char key[REG_KEY_MAX];
	struct vxerr err;
	assert_int_equal(reg_key_build("/veltrix", "web", "web-1", key, sizeof(key), &err), 0);
	assert_string_equal(key, "/veltrix/services/web/web-1");
	assert_int_equal(reg_key_build("/veltrix", "Web", "web-1", key, sizeof(key), &err), -1);
	assert_non_null(strstr(err.msg, "service name 'Web'"));
	assert_int_equal(reg_key_build("/veltrix", "web", "a;show info", key, sizeof(key), &err), -1);
	assert_non_null(strstr(err.msg, "instance name 'a;show info'"));
	assert_int_equal(reg_key_build("veltrix", "web", "a", key, sizeof(key), &err), -1);
	char small[10];
	assert_int_equal(reg_key_build("/veltrix", "web", "a", small, sizeof(small), &err), -1);

	struct reg_range r;
	assert_int_equal(reg_range_all("/veltrix", &r, &err), 0);
	assert_string_equal(r.key, "/veltrix/services/");
	assert_string_equal(r.range_end, "/veltrix/services0");
	assert_int_equal(reg_range_service("/veltrix", "web", &r, &err), 0);
	assert_string_equal(r.key, "/veltrix/services/web/");
	assert_string_equal(r.range_end, "/veltrix/services/web0");
	assert_int_equal(reg_range_service("/veltrix", "we b", &r, &err), -1);
	assert_int_equal(reg_range_all("/bad/", &r, &err), -1);
	/* every key built for the service lies in its range, and keys of "web2" do not */
	assert_int_equal(reg_range_service("/veltrix", "web", &r, &err), 0);
	assert_int_equal(reg_key_build("/veltrix", "web", "zzz", key, sizeof(key), &err), 0);
	assert_true(strcmp(key, r.key) >= 0 && strcmp(key, r.range_end) < 0);
	assert_int_equal(reg_key_build("/veltrix", "web2", "a", key, sizeof(key), &err), 0);
	assert_false(strcmp(key, r.key) >= 0 && strcmp(key, r.range_end) < 0);
}

static void test_key_parse(void **state)
{
	(void)state;
	struct reg_key k;
	struct reg_fail fail;
	const char *key = "/veltrix/services/web/web-1";
	assert_int_equal(reg_key_parse("/veltrix", key, strlen(key), &k, &fail), REG_KEY_INSTANCE);
	assert_string_equal(k.service, "web");
	assert_string_equal(k.instance, "web-1");

	static const char *outside[] = { "/veltrix", "/veltrix/services", "/veltrix/leader",
					 "/veltrixx/services/web/a", "/other/services/web/a",
					 "veltrix/services/web/a", "/VELTRIX/services/web/a",
					 "/veltrix/Services/web/a", "" };
	for (size_t i = 0; i < N_ELEMS(outside); i++) {
		memset(&k, 0x5a, sizeof(k));
		assert_int_equal(reg_key_parse("/veltrix", outside[i], strlen(outside[i]), &k, &fail),
				 REG_KEY_OUTSIDE);
		assert_int_equal((unsigned char)k.service[0], 0x5a); /* untouched */
	}

	static const struct {
		const char *key;
		size_t len; /* 0: strlen */
		enum reg_reason reason;
	} bad[] = {
		{ "/veltrix/services/", 0, REG_BAD_KEY },
		{ "/veltrix/services/web", 0, REG_BAD_KEY },
		{ "/veltrix/services//a", 0, REG_BAD_KEY },
		{ "/veltrix/services/web/a/b", 0, REG_BAD_KEY },
		{ "/veltrix/services/web/", 0, REG_BAD_NAME },
		{ "/veltrix/services/web/a;show info", 0, REG_BAD_NAME },
		{ "/veltrix/services/web/a\nshow version", 0, REG_BAD_NAME },
		{ "/veltrix/services/web/a b", 0, REG_BAD_NAME },
		{ "/veltrix/services/web/a\0b", 25, REG_BAD_NAME },
		{ "/veltrix/services/we\0b/a", 24, REG_BAD_NAME },
		{ "/veltrix/services/web/añ", 0, REG_BAD_NAME },
		{ "/veltrix/services/Web/a", 0, REG_BAD_NAME },
		{ "/veltrix/services/web;x/a", 0, REG_BAD_NAME },
		{ "/veltrix/services/-web/a", 0, REG_BAD_NAME },
		{ "/veltrix/services/web/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 0,
		  REG_BAD_NAME }, /* 65 characters */
		{ "/veltrix/services/wwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwwww/a", 0,
		  REG_BAD_NAME }, /* 64 characters */
	};
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		size_t len = bad[i].len ? bad[i].len : strlen(bad[i].key);
		memset(&fail, 0, sizeof(fail));
		assert_int_equal(reg_key_parse("/veltrix", bad[i].key, len, &k, &fail), REG_KEY_INVALID);
		if (fail.reason != bad[i].reason)
			fail_msg("key #%zu: reason %s, want %s (%s)", i, reg_reason_name(fail.reason),
				 reg_reason_name(bad[i].reason), fail.err.msg);
		assert_non_null(strstr(fail.err.msg, "/veltrix/services/"));
		/* the message never carries the raw control characters */
		assert_null(strchr(fail.err.msg, '\n'));
	}
	memset(&fail, 0, sizeof(fail));
	reg_key_parse("/veltrix", "/veltrix/services/web/a\nb", 25, &k, &fail);
	assert_non_null(strstr(fail.err.msg, "a\\x0ab"));
}

static void test_key_display(void **state)
{
	(void)state;
	char *s = reg_key_display("a b\\c\n\xff", 7);
	assert_string_equal(s, "a\\x20b\\x5cc\\x0a\\xff");
	free(s);
	s = reg_key_display("x\0y", 3);
	assert_string_equal(s, "x\\x00y");
	free(s);
	s = reg_key_display("", 0);
	assert_string_equal(s, "");
	free(s);
}

static void test_decode_full(void **state)
{
	(void)state;
	const char *json = "{\"address\":\"2001:DB8:0:0::1\",\"port\":443,\"capacity\":250,"
			   "\"state\":\"draining\",\"weight\":0,\"zone\":\"eu-west-1a\",\"version\":\"1.4.2+g1a2b\","
			   "\"tags\":[\"canary\",\"gpu\"],\"load\":{\"inflight\":12,\"rps\":340.5,\"latency_ms\":4,"
			   "\"future\":[1,2]},\"owner\":{\"team\":\"x\",\"nested\":[[1]]},\"v2\":null}";
	struct reg_instance in;
	struct reg_fail fail;
	memset(&in, 0x5a, sizeof(in));
	assert_int_equal(decode_str(json, &in, &fail), 0);
	assert_string_equal(in.address, "2001:db8::1");
	assert_int_equal(in.family, AF_INET6);
	assert_int_equal(in.port, 443);
	assert_int_equal(in.capacity, 250);
	assert_int_equal(in.state, REG_STATE_DRAINING);
	assert_true(in.has_weight);
	assert_int_equal(in.weight, 0);
	assert_string_equal(in.zone, "eu-west-1a");
	assert_string_equal(in.version, "1.4.2+g1a2b");
	assert_int_equal(in.n_tags, 2);
	assert_string_equal(in.tags[1], "gpu");
	assert_true(in.has_load && in.load.has_inflight && in.load.has_rps && in.load.has_latency_ms);
	assert_int_equal(in.load.inflight, 12);
	assert_true(in.load.rps == 340.5 && in.load.latency_ms == 4.0);
	assert_string_equal(in.service, ""); /* key fields are the caller's */
	assert_false(in.update_rejected);
	reg_instance_release(&in);
	assert_null(in.tags);

	/* minimal value: defaults */
	assert_int_equal(decode_str(GOOD, &in, &fail), 0);
	assert_string_equal(in.address, "10.0.0.1");
	assert_int_equal(in.family, AF_INET);
	assert_int_equal(in.capacity, 0);
	assert_int_equal(in.state, REG_STATE_UP);
	assert_false(in.has_weight);
	assert_false(in.has_load);
	assert_string_equal(in.zone, "");
	reg_instance_release(&in);

	/* null or "" for an optional field means absent; brackets inside strings are not nesting */
	json = "{\"address\":\"::1\",\"port\":1,\"capacity\":null,\"state\":null,\"zone\":\"\","
	       "\"version\":\"\",\"tags\":[],\"load\":{\"rps\":null},\"note\":\"[[[[[[[[[[[[[[[[[[[[\\\"{{{{\"}";
	assert_int_equal(decode_str(json, &in, &fail), 0);
	assert_int_equal(in.capacity, 0);
	assert_int_equal(in.n_tags, 0);
	assert_true(in.has_load && !in.load.has_rps);
	reg_instance_release(&in);
	assert_int_equal(decode_str("{\"address\":\"10.0.0.1\",\"port\":65535,\"state\":\"down\"}", &in, &fail), 0);
	assert_int_equal(in.state, REG_STATE_DOWN);
	assert_int_equal(in.port, 65535);
	reg_instance_release(&in);
}

struct hostile {
	const char *json;
	enum reg_reason reason;
	const char *in_msg; /* a fragment the message must hold, or NULL */
};

#define V(rest) "{\"address\":\"10.0.0.1\",\"port\":8080," rest "}"
static const struct hostile hostile[] = {
	{ "not json", REG_BAD_JSON, "not valid JSON" },
	{ "{\"address\":\"10.0.0.1\",\"port\":80", REG_BAD_JSON, NULL },
	{ "{\"address\":\"10.0.0.1\",\"po", REG_BAD_JSON, NULL },
	{ GOOD " x", REG_BAD_JSON, NULL },
	{ GOOD "{}", REG_BAD_JSON, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":80,\"port\":81}", REG_BAD_JSON, "duplicate" },
	{ "{\"address\":\"10.0.0.1\",\"port\":80,\"x\":\"\xff\xfe\"}", REG_BAD_JSON, NULL },
	{ "{\"address\":\"10.0.0.1\\u0000\",\"port\":80}", REG_BAD_JSON, NULL },
	{ "{'address':'10.0.0.1','port':80}", REG_BAD_JSON, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":80,}", REG_BAD_JSON, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":99999999999999999999}", REG_BAD_JSON, NULL },
	{ "[]", REG_BAD_TYPE, "JSON object" },
	{ "\"10.0.0.1:80\"", REG_BAD_TYPE, "JSON object" },
	{ "42", REG_BAD_TYPE, NULL },
	{ "null", REG_BAD_TYPE, NULL },
	{ "{\"port\":80}", REG_MISSING_FIELD, "\"address\" is required" },
	{ "{\"address\":\"10.0.0.1\"}", REG_MISSING_FIELD, "\"port\" is required" },
	{ "{}", REG_MISSING_FIELD, NULL },
	/* addresses */
	{ "{\"address\":\"999.1.1.1\",\"port\":80}", REG_BAD_ADDRESS, "999.1.1.1" },
	{ "{\"address\":\"01.02.03.04\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"fe80::1%eth0\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"localhost\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"backend.example.com\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"10.0.0.1:80\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"[::1]\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\" 10.0.0.1\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"10.0.0.1\\n\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"10.0.0.1;show info\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"1.2.3\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"0x0a.0.0.1\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"1:2:3:4:5:6:7:8:9\",\"port\":80}", REG_BAD_ADDRESS, NULL },
	{ "{\"address\":\"0.0.0.0\",\"port\":80}", REG_BAD_ADDRESS, "unspecified" },
	{ "{\"address\":\"::\",\"port\":80}", REG_BAD_ADDRESS, "unspecified" },
	{ "{\"address\":\"0:0::0\",\"port\":80}", REG_BAD_ADDRESS, ":: is the unspecified" },
	{ "{\"address\":\"255.255.255.255\",\"port\":80}", REG_BAD_ADDRESS, "broadcast" },
	{ "{\"address\":\"239.1.2.3\",\"port\":80}", REG_BAD_ADDRESS, "multicast" },
	{ "{\"address\":\"ff02::1\",\"port\":80}", REG_BAD_ADDRESS, "multicast" },
	{ "{\"address\":167772161,\"port\":80}", REG_BAD_TYPE, "\"address\": must be a string" },
	{ "{\"address\":null,\"port\":80}", REG_BAD_TYPE, NULL },
	/* ports */
	{ "{\"address\":\"10.0.0.1\",\"port\":0}", REG_BAD_PORT, "from 1 to 65535, got 0" },
	{ "{\"address\":\"10.0.0.1\",\"port\":65536}", REG_BAD_PORT, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":-80}", REG_BAD_PORT, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":80abc}", REG_BAD_JSON, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":\"80abc\"}", REG_BAD_TYPE, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":\"80\"}", REG_BAD_TYPE, "must be an integer, got string" },
	{ "{\"address\":\"10.0.0.1\",\"port\":80.5}", REG_BAD_TYPE, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":80.0}", REG_BAD_TYPE, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":8e1}", REG_BAD_TYPE, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":true}", REG_BAD_TYPE, "got boolean" },
	{ "{\"address\":\"10.0.0.1\",\"port\":null}", REG_BAD_TYPE, NULL },
	{ "{\"address\":\"10.0.0.1\",\"port\":[80]}", REG_BAD_TYPE, NULL },
	/* capacity, weight, state */
	{ V("\"capacity\":0"), REG_BAD_CAPACITY, "\"capacity\"" },
	{ V("\"capacity\":100001"), REG_BAD_CAPACITY, NULL },
	{ V("\"capacity\":-1"), REG_BAD_CAPACITY, NULL },
	{ V("\"capacity\":9223372036854775807"), REG_BAD_CAPACITY, NULL },
	{ V("\"capacity\":\"100\""), REG_BAD_TYPE, NULL },
	{ V("\"capacity\":1.5"), REG_BAD_TYPE, NULL },
	{ V("\"weight\":257"), REG_BAD_WEIGHT, NULL },
	{ V("\"weight\":-1"), REG_BAD_WEIGHT, NULL },
	{ V("\"weight\":false"), REG_BAD_TYPE, NULL },
	{ V("\"state\":\"UP\""), REG_BAD_STATE, "up, draining or down" },
	{ V("\"state\":\"maint\""), REG_BAD_STATE, NULL },
	{ V("\"state\":\"\""), REG_BAD_STATE, NULL },
	{ V("\"state\":\"up \""), REG_BAD_STATE, NULL },
	{ V("\"state\":1"), REG_BAD_TYPE, NULL },
	/* zone, version, tags */
	{ V("\"zone\":\"eu west\""), REG_BAD_ZONE, NULL },
	{ V("\"zone\":\"z\\u00f6ne\""), REG_BAD_ZONE, NULL },
	{ V("\"zone\":\"12345678901234567890123456789012345678901234567890123456789012345\""), REG_BAD_ZONE, NULL },
	{ V("\"zone\":5"), REG_BAD_TYPE, NULL },
	{ V("\"version\":\"1.0\\u0007\""), REG_BAD_VERSION, NULL },
	{ V("\"version\":\"1.0\\nlevel=error\""), REG_BAD_VERSION, NULL },
	{ V("\"version\":[\"1\"]"), REG_BAD_TYPE, NULL },
	{ V("\"tags\":\"canary\""), REG_BAD_TYPE, NULL },
	{ V("\"tags\":[1]"), REG_BAD_TYPE, "tags[0]" },
	{ V("\"tags\":[\"a\",\"\"]"), REG_BAD_TAGS, "tags[1]" },
	{ V("\"tags\":[\"a b\"]"), REG_BAD_TAGS, NULL },
	{ V("\"tags\":[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\",\"11\",\"12\",\"13\",\"14\","
	    "\"15\",\"16\",\"17\",\"18\",\"19\",\"20\",\"21\",\"22\",\"23\",\"24\",\"25\",\"26\",\"27\",\"28\","
	    "\"29\",\"30\",\"31\",\"32\",\"33\"]"), REG_BAD_TAGS, "at most 32" },
	/* load */
	{ V("\"load\":[]"), REG_BAD_TYPE, NULL },
	{ V("\"load\":{\"inflight\":-1}"), REG_BAD_LOAD, "load.inflight" },
	{ V("\"load\":{\"inflight\":1.5}"), REG_BAD_TYPE, NULL },
	{ V("\"load\":{\"rps\":\"x\"}"), REG_BAD_TYPE, NULL },
	{ V("\"load\":{\"rps\":-0.5}"), REG_BAD_LOAD, NULL },
	{ V("\"load\":{\"latency_ms\":1e300}"), REG_BAD_LOAD, NULL },
	{ V("\"load\":{\"a\":1,\"b\":1,\"c\":1,\"d\":1,\"e\":1,\"f\":1,\"g\":1,\"h\":1,\"i\":1,\"j\":1,\"k\":1,"
	    "\"l\":1,\"m\":1,\"n\":1,\"o\":1,\"p\":1,\"q\":1}"), REG_BAD_LOAD, "at most 16" },
	/* nesting within the cap passes jansson only when it is not too deep */
	{ V("\"x\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]"), REG_TOO_DEEP, NULL },
};

static void test_decode_hostile_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_ELEMS(hostile); i++) {
		struct reg_instance in;
		struct reg_fail fail = { 0 };
		memset(&in, 0x5a, sizeof(in));
		int rc = decode_str(hostile[i].json, &in, &fail);
		if (rc != -1 || fail.reason != hostile[i].reason)
			fail_msg("row %zu %s: rc %d reason %s, want %s (%s)", i, hostile[i].json, rc,
				 reg_reason_name(fail.reason), reg_reason_name(hostile[i].reason),
				 fail.err.msg);
		assert_int_equal((unsigned char)in.address[0], 0x5a); /* output untouched */
		assert_true(fail.err.msg[0] != '\0');
		assert_null(strchr(fail.err.msg, '\n'));
		if (hostile[i].in_msg && !strstr(fail.err.msg, hostile[i].in_msg))
			fail_msg("row %zu: message '%s' lacks '%s'", i, fail.err.msg, hostile[i].in_msg);
	}
}

static char *deep_array(size_t depth)
{
	char *s = xmalloc(2 * depth + 1);
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	s[2 * depth] = '\0';
	return s;
}

static void test_decode_sizes_nesting_nul(void **state)
{
	(void)state;
	struct reg_instance in;
	struct reg_fail fail;
	/* 10,000 '[' : rejected by the pre-scan, never reaching jansson's recursion */
	char *deep = deep_array(10000);
	assert_int_equal(reg_value_decode(deep, 10000, &in, &fail), -1); /* the '[' half only */
	assert_int_equal(fail.reason, REG_TOO_DEEP);
	free(deep);
	/* a 1 MB value: too_large, whatever it holds */
	size_t big = 1u << 20;
	char *mb = xmalloc(big);
	memset(mb, ' ', big);
	memcpy(mb, GOOD, strlen(GOOD));
	assert_int_equal(reg_value_decode(mb, big, &in, &fail), -1);
	assert_int_equal(fail.reason, REG_TOO_LARGE);
	assert_non_null(strstr(fail.err.msg, "1048576 bytes"));
	/* exactly the cap is fine; one byte more is not */
	assert_int_equal(reg_value_decode(mb, REG_VALUE_MAX, &in, &fail), 0);
	reg_instance_release(&in);
	assert_int_equal(reg_value_decode(mb, REG_VALUE_MAX + 1, &in, &fail), -1);
	assert_int_equal(fail.reason, REG_TOO_LARGE);
	free(mb);
	/* NUL bytes: after the object, or inside it */
	char withnul[64];
	size_t n = strlen(GOOD);
	memcpy(withnul, GOOD, n + 1);
	assert_int_equal(reg_value_decode(withnul, n + 1, &in, &fail), -1);
	assert_int_equal(fail.reason, REG_BAD_JSON);
	assert_non_null(strstr(fail.err.msg, "NUL"));
	withnul[5] = '\0';
	assert_int_equal(reg_value_decode(withnul, n, &in, &fail), -1);
	assert_int_equal(fail.reason, REG_BAD_JSON);
	/* empty and missing values */
	assert_int_equal(reg_value_decode("", 0, &in, &fail), -1);
	assert_int_equal(fail.reason, REG_BAD_JSON);
	assert_int_equal(reg_value_decode(NULL, 0, &in, &fail), -1);
	assert_int_equal(fail.reason, REG_BAD_JSON);
	assert_int_equal(reg_value_decode(GOOD, strlen(GOOD), &in, NULL), 0); /* fail may be NULL */
	reg_instance_release(&in);
	assert_int_equal(reg_value_decode("[", 1, &in, NULL), -1);
}

static void roundtrip(const struct reg_instance *in)
{
	char *json = NULL;
	size_t len = 0;
	struct vxerr err;
	if (reg_value_encode(in, &json, &len, &err) != 0)
		fail_msg("encode: %s", err.msg);
	assert_int_equal(len, strlen(json));
	assert_null(strchr(json, ' ')); /* compact */
	struct reg_instance back;
	struct reg_fail fail;
	if (reg_value_decode(json, len, &back, &fail) != 0)
		fail_msg("decode of %s: %s", json, fail.err.msg);
	back.lease = in->lease;
	assert_true(reg_instance_same(in, &back));
	reg_instance_release(&back);
	free(json);
}

static void test_encode_roundtrip(void **state)
{
	(void)state;
	struct reg_instance a = { 0 };
	strcpy(a.address, "10.0.0.1");
	a.port = 8080;
	roundtrip(&a);
	char *json = NULL;
	size_t len;
	assert_int_equal(reg_value_encode(&a, &json, &len, NULL), 0);
	assert_string_equal(json, "{\"address\":\"10.0.0.1\",\"port\":8080,\"state\":\"up\"}");
	free(json);

	char *tags[] = { (char *)(uintptr_t) "canary", (char *)(uintptr_t) "x:y" };
	struct reg_instance b = { .port = 65535, .capacity = 100000, .state = REG_STATE_DRAINING,
				  .has_weight = true, .weight = 0, .tags = tags, .n_tags = 2,
				  .has_load = true, .lease = 42,
				  .load = { .has_inflight = true, .inflight = 7, .has_rps = true, .rps = 0.1,
					    .has_latency_ms = true, .latency_ms = 1234.5678 } };
	strcpy(b.address, "2001:db8::5");
	strcpy(b.zone, "eu-1a");
	strcpy(b.version, "v1.2.3-rc.1");
	roundtrip(&b);
	b.state = REG_STATE_DOWN;
	b.weight = 256;
	b.load.has_rps = false;
	roundtrip(&b);
	b.has_load = false;
	b.n_tags = 0;
	roundtrip(&b);
	struct reg_instance c;
	reg_instance_copy(&c, &b);
	assert_true(reg_instance_same(&b, &c));
	reg_instance_release(&c);
	b.n_tags = 2;
	reg_instance_copy(&c, &b);
	assert_true(c.tags != b.tags && reg_instance_same(&b, &c));
	strcpy(c.tags[0], "other");
	assert_false(reg_instance_same(&b, &c));
	reg_instance_release(&c);
}

/* A figure that 15 significant digits would change is written with 17, so it reads back
 * exactly; one that 15 digits keep stays short. */
static void test_encode_keeps_every_digit(void **state)
{
	(void)state;
	struct reg_instance in = { .port = 443, .has_load = true,
				   .load = { .has_rps = true, .rps = 340.2222222222222222 } };
	strcpy(in.address, "2001:db8::1");
	char *json = NULL;
	size_t len = 0;
	assert_int_equal(reg_value_encode(&in, &json, &len, NULL), 0);
	assert_non_null(strstr(json, "\"rps\":340.22222222222223"));
	free(json);
	in.load.rps = 0.3;
	assert_int_equal(reg_value_encode(&in, &json, &len, NULL), 0);
	assert_non_null(strstr(json, "\"rps\":0.3}"));
	free(json);
	roundtrip(&in);
}

static void test_encode_refuses_invalid(void **state)
{
	(void)state;
	static const struct {
		const char *addr;
		int port, capacity, weight;
		const char *zone;
		double rps;
		const char *msg;
	} rows[] = {
		{ "10.0.0.1", 0, 0, -1, "", 0, "bad_port" },
		{ "10.0.0.1", 80, 100001, -1, "", 0, "bad_capacity" },
		{ "10.0.0.1", 80, 0, 257, "", 0, "bad_weight" },
		{ "10.0.0.1", 80, 0, -1, "a zone", 0, "bad_zone" },
		{ "10.0.0.1", 80, 0, -1, "", -1, "bad_load" },
		{ "10.0.0.1", 80, 0, -1, "", NAN, "finite" },
		{ "2001:DB8::1", 80, 0, -1, "", 0, "canonical" },
		{ "example.com", 80, 0, -1, "", 0, "canonical" },
		{ "", 80, 0, -1, "", 0, "canonical" },
	};
	for (size_t i = 0; i < N_ELEMS(rows); i++) {
		struct reg_instance in = { .port = (uint16_t)rows[i].port, .capacity = rows[i].capacity,
					   .has_weight = rows[i].weight >= 0, .weight = rows[i].weight,
					   .has_load = true, .load = { .has_rps = true, .rps = rows[i].rps } };
		strcpy(in.address, rows[i].addr);
		strcpy(in.zone, rows[i].zone);
		char *out = (char *)(uintptr_t) "untouched";
		size_t len = 99;
		struct vxerr err = { "" };
		assert_int_equal(reg_value_encode(&in, &out, &len, &err), -1);
		assert_string_equal(out, "untouched");
		assert_int_equal(len, 99);
		if (!strstr(err.msg, rows[i].msg))
			fail_msg("row %zu: '%s' lacks '%s'", i, err.msg, rows[i].msg);
	}
}

static void test_address_allow_list(void **state)
{
	(void)state;
	struct cidr allow[2];
	struct vxerr err;
	assert_int_equal(cidr_parse("10.1.0.0/16", &allow[0], &err), 0);
	assert_int_equal(cidr_parse("fd00::/8", &allow[1], &err), 0);
	struct reg_instance in = { .service = "web", .port = 80 };
	struct reg_fail fail;
	strcpy(in.address, "10.1.2.3");
	assert_int_equal(reg_address_check(&in, allow, 2, &fail), 0);
	strcpy(in.address, "fd12::1");
	assert_int_equal(reg_address_check(&in, allow, 2, &fail), 0);
	strcpy(in.address, "10.2.0.1");
	assert_int_equal(reg_address_check(&in, allow, 2, &fail), -1);
	assert_int_equal(fail.reason, REG_ADDRESS_NOT_ALLOWED);
	assert_non_null(strstr(fail.err.msg, "10.2.0.1 is outside the allow-list of service 'web'"));
	/* a mapped v4 is matched as the v4 address it is (issue 10 D10) */
	strcpy(in.address, "::ffff:10.1.2.3");
	assert_int_equal(reg_address_check(&in, allow, 2, &fail), 0);
	strcpy(in.address, "::ffff:10.2.0.1");
	assert_int_equal(reg_address_check(&in, allow, 2, &fail), -1);
	assert_int_equal(reg_address_check(&in, allow, 0, &fail), 0); /* empty list: any */
	assert_int_equal(cidr_parse("127.0.0.1/32", &allow[0], &err), 0);
	assert_int_equal(cidr_parse("::/0", &allow[1], &err), 0);
	strcpy(in.address, "::ffff:127.0.0.2");
	assert_int_equal(reg_address_check(&in, allow, 2, &fail), -1);
	assert_int_equal(fail.reason, REG_ADDRESS_NOT_ALLOWED);
	strcpy(in.address, "127.0.0.2");
	assert_int_equal(reg_address_check(&in, allow, 2, &fail), -1);
	strcpy(in.address, "::ffff:127.0.0.1");
	assert_int_equal(reg_address_check(&in, allow, 2, &fail), 0);
}

/* The hostile values as one snapshot, each next to a valid neighbour: the view holds exactly
 * the neighbours, and every hostile key is rejected with its own reason. */
static void test_hostile_snapshot_neighbours(void **state)
{
	(void)state;
	size_t nh = N_ELEMS(hostile);
	struct etcd_kv *kvs = xcalloc(2 * nh + 2, sizeof(*kvs));
	char **keys = xcalloc(2 * nh + 2, sizeof(char *));
	size_t n = 0;
	for (size_t i = 0; i < nh; i++) {
		keys[n] = xasprintf("/veltrix/services/web/bad-%03zu", i);
		kvs[n] = (struct etcd_kv){ .key = keys[n], .key_len = strlen(keys[n]),
					   .value = (char *)(uintptr_t)hostile[i].json,
					   .value_len = strlen(hostile[i].json), .mod_revision = 10 };
		n++;
		keys[n] = xasprintf("/veltrix/services/web/good-%03zu", i);
		kvs[n] = (struct etcd_kv){ .key = keys[n], .key_len = strlen(keys[n]),
					   .value = (char *)(uintptr_t)GOOD, .value_len = strlen(GOOD),
					   .mod_revision = 10 };
		n++;
	}
	/* a bad name and a value outside the allow-list, too */
	keys[n] = xstrdup("/veltrix/services/web/a;show info");
	kvs[n] = (struct etcd_kv){ .key = keys[n], .key_len = strlen(keys[n]),
				   .value = (char *)(uintptr_t)GOOD, .value_len = strlen(GOOD) };
	n++;
	keys[n] = xstrdup("/veltrix/services/api/outside");
	kvs[n] = (struct etcd_kv){ .key = keys[n], .key_len = strlen(keys[n]),
				   .value = (char *)(uintptr_t)GOOD, .value_len = strlen(GOOD) };
	n++;
	struct cidr c;
	assert_int_equal(cidr_parse("192.168.0.0/16", &c, NULL), 0);
	struct reg_allow allow = { .service = "api", .cidrs = &c, .n_cidrs = 1 };
	struct reg_policy pol = { .allow = &allow, .n_allow = 1 };
	struct reg_view *v = reg_view_new(NULL, &pol, NULL);
	assert_non_null(v);
	reg_view_load_snapshot(v, kvs, n, 11);
	assert_int_equal(reg_view_n_instances(v), nh);
	assert_int_equal(reg_view_n_services(v), 1);
	const struct reg_service *s = reg_view_find_service(v, "web");
	for (size_t i = 0; i < s->n_instances; i++)
		assert_true(strncmp(s->instances[i]->name, "good-", 5) == 0);
	assert_int_equal(reg_view_n_rejected(v), nh + 2);
	struct reg_changes ch;
	reg_view_changes(v, &ch);
	assert_int_equal(ch.n_rejects, nh + 2);
	for (size_t i = 0; i < reg_view_n_rejected(v); i++) {
		const struct reg_reject *r = reg_view_rejected_at(v, i);
		size_t row;
		char *end;
		const char *p = strstr(r->key, "/bad-");
		if (!p)
			continue;
		row = strtoul(p + 5, &end, 10);
		assert_int_equal(r->reason, hostile[row].reason);
		assert_true(strncmp(r->message, r->key, strlen(r->key)) == 0); /* names the key */
		assert_string_equal(r->service, "web");
	}
	bool saw_name = false, saw_allow = false;
	for (size_t i = 0; i < reg_view_n_rejected(v); i++) {
		const struct reg_reject *r = reg_view_rejected_at(v, i);
		saw_name |= r->reason == REG_BAD_NAME && strcmp(r->key, "/veltrix/services/web/a;show\\x20info") == 0;
		saw_allow |= r->reason == REG_ADDRESS_NOT_ALLOWED && strcmp(r->service, "api") == 0;
	}
	assert_true(saw_name && saw_allow);
	reg_view_free(v);
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
	free(kvs);
}

static void test_reason_names_documented(void **state)
{
	(void)state;
	const char *top = getenv("VX_TOP");
	char *path = fx_path(top ? top : ".", "docs/registry.md");
	char *doc = fx_read_file(path);
	assert_non_null(doc);
	for (int r = REG_BAD_KEY; r < REG_REASON_COUNT; r++) {
		const char *name = reg_reason_name((enum reg_reason)r);
		assert_string_not_equal(name, "unknown");
		char *tick = xasprintf("`%s`", name);
		if (!strstr(doc, tick))
			fail_msg("docs/registry.md does not document reason %s", name);
		free(tick);
		for (int q = r + 1; q < REG_REASON_COUNT; q++)
			assert_string_not_equal(name, reg_reason_name((enum reg_reason)q));
	}
	assert_string_equal(reg_reason_name(REG_REASON_COUNT), "unknown");
	assert_string_equal(reg_state_name(REG_STATE_DRAINING), "draining");
	free(doc);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_key_build_and_ranges),
		cmocka_unit_test(test_key_parse),
		cmocka_unit_test(test_key_display),
		cmocka_unit_test(test_decode_full),
		cmocka_unit_test(test_decode_hostile_table),
		cmocka_unit_test(test_decode_sizes_nesting_nul),
		cmocka_unit_test(test_encode_roundtrip),
		cmocka_unit_test(test_encode_keeps_every_digit),
		cmocka_unit_test(test_encode_refuses_invalid),
		cmocka_unit_test(test_address_allow_list),
		cmocka_unit_test(test_hostile_snapshot_neighbours),
		cmocka_unit_test(test_reason_names_documented),
	};
	return cmocka_run_group_tests_name("reg_codec", tests, NULL, NULL);
}
