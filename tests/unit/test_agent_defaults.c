/* Unit tests for the agent's pure defaults: the instance id from address and port, the
 * /proc/net/tcp{,6} listener scan (with hostile lines), and the advertised-address rule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/agent.h"
#include "common/alloc.h"
#include "common/net.h"
#include "registry/reg.h"
#include "fx.h"

static void test_instance_default(void **state)
{
	(void)state;
	static const struct {
		const char *address;
		uint16_t port;
		const char *id;
	} rows[] = {
		{ "10.0.0.5", 8080, "10.0.0.5:8080" },
		{ "127.0.0.1", 1, "127.0.0.1:1" },
		{ "2001:DB8::1", 443, "2001:0db8:0000:0000:0000:0000:0000:0001:443" },
		{ "::1", 80, "0000:0000:0000:0000:0000:0000:0000:0001:80" },
		{ "fe80::1:2", 65535, "fe80:0000:0000:0000:0000:0000:0001:0002:65535" },
		{ "::ffff:10.0.0.1", 9, "0000:0000:0000:0000:0000:ffff:0a00:0001:9" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		char id[REG_INSTANCE_MAX + 1];
		assert_int_equal(agent_instance_default(rows[i].address, rows[i].port, id, sizeof(id)), 0);
		assert_string_equal(id, rows[i].id);
		assert_true(reg_instance_name_valid(id, strlen(id)));
	}
	char id[REG_INSTANCE_MAX + 1] = "x";
	assert_int_equal(agent_instance_default("web.local", 80, id, sizeof(id)), -1);
	assert_int_equal(agent_instance_default("10.0.0.1:80", 80, id, sizeof(id)), -1);
	char small[8];
	assert_int_equal(agent_instance_default("10.0.0.5", 8080, small, sizeof(small)), -1);
}

/* A /proc/net/tcp line as the kernel prints it: each 32-bit word of the address as a
 * host-order integer. */
static char *proc_line(int family, const char *ip, uint16_t port, int st)
{
	unsigned char b[16];
	assert_int_equal(inet_pton(family, ip, b), 1);
	char hex[40] = "";
	for (int i = 0; i < (family == AF_INET ? 1 : 4); i++) {
		uint32_t w;
		memcpy(&w, b + 4 * i, 4);
		snprintf(hex + 8 * i, sizeof(hex) - 8 * (size_t)i, "%08X", w);
	}
	return xasprintf("   3: %s:%04X %s:0000 %02X 00000000:00000000 00:00000000 00000000  1000        0 4242 1 "
			 "0000000000000000 100 0 0 10 0",
			 hex, port, family == AF_INET ? "00000000" : "00000000000000000000000000000000", st);
}

static struct agent_listen scan_one(int family, const char *ip, uint16_t port, int st, uint16_t want_port)
{
	struct agent_listen l = { 0 };
	char *line = proc_line(family, ip, port, st);
	agent_listen_line(line, strlen(line), family == AF_INET6, want_port, &l);
	free(line);
	return l;
}

static void test_listen_line(void **state)
{
	(void)state;
	struct agent_listen l = scan_one(AF_INET, "127.0.0.1", 8080, 0x0A, 8080);
	assert_string_equal(l.loopback, "127.0.0.1");
	assert_false(l.any);
	l = scan_one(AF_INET, "0.0.0.0", 8080, 0x0A, 8080);
	assert_true(l.any);
	l = scan_one(AF_INET, "10.1.2.3", 8080, 0x0A, 8080);
	assert_string_equal(l.specific, "10.1.2.3");
	l = scan_one(AF_INET, "10.1.2.3", 8080, 0x01, 8080); /* established, not listening */
	assert_string_equal(l.specific, "");
	l = scan_one(AF_INET, "10.1.2.3", 8081, 0x0A, 8080); /* another port */
	assert_string_equal(l.specific, "");
	l = scan_one(AF_INET6, "::1", 443, 0x0A, 443);
	assert_string_equal(l.loopback, "::1");
	l = scan_one(AF_INET6, "::", 443, 0x0A, 443);
	assert_true(l.any);
	l = scan_one(AF_INET6, "::ffff:10.0.0.7", 443, 0x0A, 443);
	assert_string_equal(l.specific, "10.0.0.7");
	l = scan_one(AF_INET6, "2001:db8::5", 443, 0x0A, 443);
	assert_string_equal(l.specific, "2001:db8::5");
}

static void test_listen_hostile_lines(void **state)
{
	(void)state;
	static const char *bad[] = {
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode",
		"",
		"   0:",
		"   0: 0100007F:1F90",
		"   0: 0100007F:1F90 00000000:0000",
		"   0 0100007F:1F90 00000000:0000 0A",
		"   0: 0100007G:1F90 00000000:0000 0A",
		"   0: 0100007F1F90 00000000:0000 0A",
		"   0: 0100007F:1F9 00000000:0000 0A",
		"   0: 0100007F:1F90 00000000:0000 0A0A0A0A0A",
		"   0: 0100007F:1F90 00000000:0000 -A",
		"   0: 000000000100007F:1F90 00000000:0000 0A",
		"\t0:\t0100007F:1F90\t00000000:0000\t0B",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct agent_listen l = { 0 };
		agent_listen_line(bad[i], strlen(bad[i]), false, 0x1F90, &l);
		assert_false(l.any);
		assert_string_equal(l.loopback, "");
		assert_string_equal(l.specific, "");
	}
	/* a v4 line read as v6 (and the reverse) is malformed, never misread */
	char *v4 = proc_line(AF_INET, "127.0.0.1", 80, 0x0A);
	struct agent_listen l = { 0 };
	agent_listen_line(v4, strlen(v4), true, 80, &l);
	assert_string_equal(l.loopback, "");
	free(v4);
	/* a line cut short in the middle of a token: the length is respected */
	char *cut = proc_line(AF_INET, "127.0.0.1", 80, 0x0A);
	agent_listen_line(cut, 10, false, 80, &l);
	assert_string_equal(l.loopback, "");
	free(cut);
}

static void test_listen_scan_and_read(void **state)
{
	(void)state;
	char *a = proc_line(AF_INET, "127.0.0.2", 9000, 0x0A), *b = proc_line(AF_INET, "0.0.0.0", 9000, 0x0A);
	char *c = proc_line(AF_INET6, "2001:db8::9", 9000, 0x0A);
	char *v4 = xasprintf("  sl  local_address rem_address   st\n%s\n%s\n", a, b);
	struct agent_listen l = { 0 };
	agent_listen_scan(v4, strlen(v4), false, 9000, &l);
	assert_string_equal(l.loopback, "127.0.0.2");
	assert_true(l.any);
	/* the same through files laid out like /proc */
	char *root = fx_tmpdir("proc"), *net = fx_path(root, "net");
	assert_int_equal(mkdir(net, 0755), 0);
	char *tcp = fx_path(net, "tcp"), *tcp6 = fx_path(net, "tcp6");
	fx_write_file(tcp, v4);
	char *v6 = xasprintf("header\n%s\n", c);
	fx_write_file(tcp6, v6);
	assert_true(agent_listen_read(root, 9000, &l));
	assert_string_equal(l.specific, "2001:db8::9");
	assert_false(agent_listen_read(root, 9001, &l));
	free(a);
	free(b);
	free(c);
	free(v4);
	free(v6);
	free(tcp);
	free(tcp6);
	free(net);
	free(root);
}

static void test_listen_read_real_socket(void **state)
{
	(void)state;
	struct vxerr err;
	int fd = net_listen_tcp("127.0.0.1", 0, 4, &err);
	assert_true(fd >= 0);
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	getsockname(fd, (struct sockaddr *)&sa, &len);
	uint16_t port = ntohs(sa.sin_port);
	struct agent_listen l;
	assert_true(agent_listen_read("/proc", port, &l));
	assert_string_equal(l.loopback, "127.0.0.1");
	char out[NET_IP_MAX];
	assert_true(agent_address_default(port, out, sizeof(out)));
	assert_string_equal(out, "127.0.0.1"); /* it binds loopback: advertise loopback */
	close(fd);
	assert_false(agent_address_default(port, out, sizeof(out)));
}

static void test_address_pick(void **state)
{
	(void)state;
	char out[NET_IP_MAX];
	struct agent_listen none = { 0 }, any = { .any = true }, lo = { .loopback = "127.0.0.1" };
	struct agent_listen lo_any = { .any = true, .loopback = "127.0.0.1" }, spec = { .specific = "10.9.8.7", .any = true };
	agent_address_pick(&none, "192.0.2.10", out, sizeof(out));
	assert_string_equal(out, "192.0.2.10");
	agent_address_pick(&none, "", out, sizeof(out));
	assert_string_equal(out, "127.0.0.1");
	agent_address_pick(&any, "192.0.2.10", out, sizeof(out));
	assert_string_equal(out, "192.0.2.10");
	agent_address_pick(&lo, "192.0.2.10", out, sizeof(out));
	assert_string_equal(out, "127.0.0.1");
	agent_address_pick(&lo_any, "192.0.2.10", out, sizeof(out));
	assert_string_equal(out, "192.0.2.10");
	agent_address_pick(&spec, "192.0.2.10", out, sizeof(out));
	assert_string_equal(out, "10.9.8.7");
}

static void test_first_address(void **state)
{
	(void)state;
	char out[NET_IP_MAX], canon[NET_IP_MAX];
	agent_first_address(out, sizeof(out));
	if (out[0]) {
		assert_true(net_ip_canon(out, canon, sizeof(canon)) > 0);
		assert_string_equal(out, canon);
		assert_false(strncmp(out, "127.", 4) == 0 || strcmp(out, "::1") == 0 || strncmp(out, "fe80:", 5) == 0);
	}
}

/* The shared lease file, written by another agent of the host: exactly what agent_share_format
 * writes, nothing near it. */
static void test_share_file(void **state)
{
	(void)state;
	char text[AGENT_SHARE_FILE_MAX];
	int64_t lease = 0, ttl = 0;
	int n = agent_share_format(0x694d8a1b2c3d4e5f, 10, text, sizeof(text));
	assert_string_equal(text, "694d8a1b2c3d4e5f 10\n");
	assert_int_equal(agent_share_parse(text, (size_t)n, &lease, &ttl), 0);
	assert_true(lease == 0x694d8a1b2c3d4e5f && ttl == 10);
	assert_int_equal(agent_share_parse("0000000000000001 86400", 22, &lease, &ttl), 0);
	assert_true(lease == 1 && ttl == 86400);
	static const char *const hostile[] = {
		"", "\n", "694d8a1b2c3d4e5f", "694d8a1b2c3d4e5f ", "694d8a1b2c3d4e5f 0", "694d8a1b2c3d4e5f 86401",
		"694D8A1B2C3D4E5F 10", "694d8a1b2c3d4e5 10", "694d8a1b2c3d4e5f0 10", "694d8a1b2c3d4e5f  10",
		"694d8a1b2c3d4e5f 10\n\n", "694d8a1b2c3d4e5f 10 x", "694d8a1b2c3d4e5f -1", "0000000000000000 10",
		"ffffffffffffffff 10", "694d8a1b2c3d4e5f 0000010", "694d8a1b2c3d4e5f 1e3", "g94d8a1b2c3d4e5f 10",
		"694d8a1b2c3d4e5f 03\n",
	};
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		lease = ttl = 7;
		if (agent_share_parse(hostile[i], strlen(hostile[i]), &lease, &ttl) == 0)
			fail_msg("accepted '%s'", hostile[i]);
		assert_true(lease == 7 && ttl == 7); /* outputs written only on success */
	}
	assert_int_equal(agent_share_parse("694d8a1b2c3d4e5f 10\0", 20, &lease, &ttl), -1); /* a NUL */
	assert_int_equal(agent_share_format(1, 10, text, 10), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_instance_default),
		cmocka_unit_test(test_listen_line),
		cmocka_unit_test(test_listen_hostile_lines),
		cmocka_unit_test(test_listen_scan_and_read),
		cmocka_unit_test(test_listen_read_real_socket),
		cmocka_unit_test(test_address_pick),
		cmocka_unit_test(test_first_address),
		cmocka_unit_test(test_share_file),
	};
	return cmocka_run_group_tests_name("agent_unit", tests, NULL, NULL);
}
