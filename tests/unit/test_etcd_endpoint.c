/* Endpoint URLs of the etcd client: what the built-in transport connects to (host, port, path
 * prefix, Host header), and a table of hostile or malformed URLs refused when the client is
 * made, each with a message naming the endpoint. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "registry/etcd_int.h"

static void expect_ep(const char *url, bool tls, const char *host, const char *port, const char *base,
		      const char *host_header)
{
	struct etcd_ep ep;
	struct vxerr err;
	if (etcd_ep_parse(url, &ep, &err) != 0)
		fail_msg("%s: %s", url, err.msg);
	assert_int_equal(ep.tls, tls);
	assert_string_equal(ep.host, host);
	assert_string_equal(ep.port, port);
	assert_string_equal(ep.base, base);
	assert_string_equal(ep.host_header, host_header);
	etcd_ep_release(&ep);
}

static void test_good_endpoints(void **state)
{
	(void)state;
	expect_ep("http://127.0.0.1:2379", false, "127.0.0.1", "2379", "", "127.0.0.1:2379");
	expect_ep("http://[::1]:2379", false, "::1", "2379", "", "[::1]:2379");
	expect_ep("http://localhost", false, "localhost", "80", "", "localhost");
	expect_ep("https://etcd.example.org", true, "etcd.example.org", "443", "", "etcd.example.org");
	expect_ep("http://[fe80::1]", false, "fe80::1", "80", "", "[fe80::1]");
	expect_ep("http://10.0.0.1:2379/prefix/gw", false, "10.0.0.1", "2379", "/prefix/gw", "10.0.0.1:2379");
}

static void test_bad_endpoints(void **state)
{
	(void)state;
	static const struct {
		const char *url;
		const char *why;
	} cases[] = {
		{ "127.0.0.1:2379", "must start with http:// or https://" },
		{ "ftp://127.0.0.1:21", "must start with http:// or https://" },
		{ "http://", "not a URL" },
		{ "http:///v3", "not a URL" },
		{ "http://a b:1", "not a URL" },
		{ "http://host:1\r\nX-Injected: 1", "not a URL" },
		{ "http://host\x7f:1", "not a URL" },
		{ "http://host:1?x=1", "a query or fragment" },
		{ "http://host:1#frag", "a query or fragment" },
		{ "http://host:1/base?x", "a query or fragment" },
		{ "http://h\xc3\xa9st:1", "not a URL" },
		{ "http://user:pw@host:1", "credentials in the URL are not supported" },
		{ "http://host:0", "port must be a number from 1 to 65535" },
		{ "http://host:65536", "port must be a number from 1 to 65535" },
		{ "http://host:-1", "port must be a number from 1 to 65535" },
		{ "http://host:", "port must be a number from 1 to 65535" },
		{ "http://host:2379x", "port must be a number from 1 to 65535" },
		{ "http://::1:2379", "an IPv6 address needs brackets" },
		{ "http://[::1:2379", "is not [ipv6]:port" },
		{ "http://[::1]x", "is not [ipv6]:port" },
		{ "http://:2379", "no host" },
		{ "http://[]:2379", "no host" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct etcd_ep ep;
		struct vxerr err;
		if (etcd_ep_parse(cases[i].url, &ep, &err) == 0)
			fail_msg("accepted: %s", cases[i].url);
		if (!strstr(err.msg, cases[i].why) || !strstr(err.msg, "etcd endpoint '"))
			fail_msg("%s: got '%s', want '%s'", cases[i].url, err.msg, cases[i].why);
	}
	char longhost[400];
	memset(longhost, 'a', sizeof(longhost));
	memcpy(longhost, "http://", 7);
	longhost[sizeof(longhost) - 1] = '\0';
	struct etcd_ep ep;
	struct vxerr err;
	assert_int_equal(etcd_ep_parse(longhost, &ep, &err), -1);
	assert_non_null(strstr(err.msg, "host too long"));
}

/* The client refuses a bad endpoint among good ones, naming it, and frees what it made. */
static void test_client_refuses_bad_endpoint(void **state)
{
	(void)state;
	const char *eps[] = { "http://127.0.0.1:2379", "http://[::1:2379" };
	struct etcd_opts o = { .endpoints = eps, .n_endpoints = 2 };
	struct vxerr err;
	assert_null(etcd_client_new(NULL, &o, &err));
	assert_non_null(strstr(err.msg, "etcd endpoint 'http://[::1:2379'"));
	/* trailing slashes are not a path prefix */
	const char *slash[] = { "http://127.0.0.1:2379///" };
	o.endpoints = slash;
	o.n_endpoints = 1;
	struct etcd_client *c = etcd_client_new(NULL, &o, &err);
	assert_non_null(c);
	etcd_client_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good_endpoints),
		cmocka_unit_test(test_bad_endpoints),
		cmocka_unit_test(test_client_refuses_bad_endpoint),
	};
	return cmocka_run_group_tests_name("etcd_endpoint", tests, NULL, NULL);
}
