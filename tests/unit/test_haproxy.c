/* Unit tests for src/haproxy without processes: whitelists and command builders against a
 * hostile table, reply classification, prompt framing and the parsers on replies captured from
 * HAProxy 2.6.12 (tests/fixtures/haproxy/), truncated and garbage input, and the renderer. */
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
#include "fx.h"
#include "haproxy/hap.h"
#include "haproxy/hap_int.h"

static char *fixture(const char *name, size_t *len)
{
	const char *top = getenv("VX_TOP");
	char *path = xasprintf("%s/tests/fixtures/haproxy/%s", top && *top ? top : ".", name);
	char *text = fx_read_file(path);
	if (!text)
		fail_msg("cannot read %s", path);
	free(path);
	*len = strlen(text);
	return text;
}

static const char *const hostile_names[] = {
	"", "a;b", "a\nb", "a\rb", "a b", "a\tb", "a#b", "a\\b", "a\"b", "a'b", "-a", "a/b", "a\xc3\xb1",
	"a\x01", "a\x7f", "s;show info", "x\nshow version",
	"a1234567890123456789012345678901234567890123456789012345678901234", /* 65 bytes */
};
#define N_HOSTILE (sizeof(hostile_names) / sizeof(hostile_names[0]))

static void test_names(void **state)
{
	(void)state;
	static const char *const good[] = { "a", "web", "a.b-c_d:e", "S1", "10.0.0.1:8080", "x-",
					    "a123456789012345678901234567890123456789012345678901234567890123" }; /* 64 */
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(hap_name_valid(good[i]));
	for (size_t i = 0; i < N_HOSTILE; i++)
		assert_false(hap_name_valid(hostile_names[i]));
	assert_false(hap_name_valid(NULL));
	assert_true(hap_weight_valid(0) && hap_weight_valid(256));
	assert_false(hap_weight_valid(-1) || hap_weight_valid(257));
	assert_true(hap_maxconn_valid(0) && hap_maxconn_valid(HAP_MAXCONN_MAX));
	assert_false(hap_maxconn_valid(-1) || hap_maxconn_valid(HAP_MAXCONN_MAX + 1));
}

static void test_addr_canon(void **state)
{
	(void)state;
	char out[NET_IP_MAX];
	assert_int_equal(hap_addr_canon("::0:1", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "::1");
	assert_int_equal(hap_addr_canon("10.1.2.3", out, sizeof(out), NULL), 0);
	assert_string_equal(out, "10.1.2.3");
	static const char *const bad[] = { "", "localhost", "127.0.0.1;show info", "127.0.0.1\n", "1.2.3.4/8",
					   "1.2.3.4:80", "[::1]", "::1 x", "fe80::1%eth0", "1.2.3" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vxerr err = { "" };
		strcpy(out, "untouched");
		assert_int_equal(hap_addr_canon(bad[i], out, sizeof(out), &err), -1);
		assert_string_equal(out, "untouched");
		assert_non_null(strstr(err.msg, "not an IP literal"));
	}
}

static struct hap_server good_server(void)
{
	struct hap_server s = { .port = 8080, .weight = 10, .maxconn = 100 };
	strcpy(s.name, "i-1");
	strcpy(s.addr, "10.0.0.1");
	return s;
}

static const struct hap_check checks_on = { true, 2000000, 500000, 2000000, 2, 3 };

static void test_add_server_text(void **state)
{
	(void)state;
	struct hap_cmd c;
	struct hap_server s = good_server();
	assert_int_equal(hap_cmd_add_server(&c, "web", &s, &checks_on, NULL), 0);
	assert_int_equal(c.kind, HAP_CMD_ADD_SERVER);
	assert_string_equal(c.text, "add server web/i-1 10.0.0.1:8080 weight 10 maxconn 100 check inter 2000ms "
				    "fastinter 500ms downinter 2000ms rise 2 fall 3 pool-max-conn -1 pool-purge-delay 5s");
	/* no checks, no maxconn, IPv6 bracketed and canonical; never the `enabled` keyword */
	strcpy(s.addr, "0:0::1");
	s.maxconn = 0;
	s.admin = HAP_ADMIN_MAINT;
	assert_int_equal(hap_cmd_add_server(&c, "web", &s, NULL, NULL), 0);
	assert_string_equal(c.text, "add server web/i-1 [::1]:8080 weight 10 pool-max-conn -1 pool-purge-delay 5s");
	assert_null(strstr(c.text, "enabled"));
	assert_null(strstr(c.text, "disabled"));
}

static void test_other_builders_text(void **state)
{
	(void)state;
	struct hap_cmd c;
	assert_int_equal(hap_cmd_enable_server(&c, "web", "s1", NULL), 0);
	assert_string_equal(c.text, "enable server web/s1");
	assert_int_equal(hap_cmd_enable_health(&c, "web", "s1", NULL), 0);
	assert_string_equal(c.text, "enable health web/s1");
	assert_int_equal(hap_cmd_set_weight(&c, "web", "s1", 256, NULL), 0);
	assert_string_equal(c.text, "set server web/s1 weight 256");
	assert_int_equal(hap_cmd_set_maxconn(&c, "web", "s1", 40, NULL), 0);
	assert_string_equal(c.text, "set maxconn server web/s1 40");
	assert_int_equal(hap_cmd_set_state(&c, "web", "s1", HAP_ADMIN_DRAIN, NULL), 0);
	assert_string_equal(c.text, "set server web/s1 state drain");
	assert_int_equal(hap_cmd_set_state(&c, "web", "s1", HAP_ADMIN_MAINT, NULL), 0);
	assert_string_equal(c.text, "set server web/s1 state maint");
	assert_int_equal(hap_cmd_set_state(&c, "web", "s1", HAP_ADMIN_READY, NULL), 0);
	assert_string_equal(c.text, "set server web/s1 state ready");
	assert_int_equal(hap_cmd_shutdown_sessions(&c, "web", "s1", NULL), 0);
	assert_string_equal(c.text, "shutdown sessions server web/s1");
	assert_int_equal(hap_cmd_del_server(&c, "web", "s1", NULL), 0);
	assert_string_equal(c.text, "del server web/s1");
	assert_int_equal(c.kind, HAP_CMD_DEL_SERVER);
	assert_int_equal(hap_cmd_show_servers_state(&c, "web", NULL), 0);
	assert_string_equal(c.text, "show servers state web");
	assert_int_equal(hap_cmd_show_servers_state(&c, NULL, NULL), 0);
	assert_string_equal(c.text, "show servers state");
	assert_int_equal(hap_cmd_show_stat(&c, "web", NULL), 0);
	assert_string_equal(c.text, "show stat web 4 -1");
	assert_int_equal(hap_cmd_show_stat_id(&c, 3, NULL), 0);
	assert_string_equal(c.text, "show stat 3 4 -1");
	c.text[0] = 'X';
	assert_int_equal(hap_cmd_show_stat_id(&c, 0, NULL), -1);
	assert_int_equal(hap_cmd_show_stat_id(&c, INT64_C(1) << 40, NULL), -1);
	assert_int_equal(c.text[0], 'X');
	struct hap_cmd seq[3];
	assert_int_equal(hap_cmd_delete_sequence(seq, "web", "s1", NULL), 0);
	assert_string_equal(seq[0].text, "set server web/s1 state drain");
	assert_string_equal(seq[1].text, "set server web/s1 state maint");
	assert_string_equal(seq[2].text, "del server web/s1");
	assert_int_equal(seq[2].kind, HAP_CMD_DEL_SERVER);
	strcpy(seq[0].text, "canary");
	assert_int_equal(hap_cmd_delete_sequence(seq, "web", "s1;x", NULL), -1);
	assert_string_equal(seq[0].text, "canary");
	hap_cmd_show_info(&c);
	assert_string_equal(c.text, "show info");
	hap_cmd_show_backend(&c);
	assert_string_equal(c.text, "show backend");
}

/* Every builder refuses every hostile name, in either position, and leaves *out untouched. */
static void assert_refused(int rc, const struct hap_cmd *c, const struct vxerr *err)
{
	assert_int_equal(rc, -1);
	assert_string_equal(c->text, "canary");
	assert_true(err->msg[0] != '\0');
}

static void hostile_target(const char *be, const char *srv)
{
	struct hap_cmd c = { .text = "canary" };
	struct vxerr err = { "" };
	struct hap_server s = good_server();
	assert_refused(hap_cmd_enable_server(&c, be, srv, &err), &c, &err);
	assert_refused(hap_cmd_enable_health(&c, be, srv, &err), &c, &err);
	assert_refused(hap_cmd_set_weight(&c, be, srv, 1, &err), &c, &err);
	assert_refused(hap_cmd_set_maxconn(&c, be, srv, 1, &err), &c, &err);
	assert_refused(hap_cmd_set_state(&c, be, srv, HAP_ADMIN_MAINT, &err), &c, &err);
	assert_refused(hap_cmd_shutdown_sessions(&c, be, srv, &err), &c, &err);
	assert_refused(hap_cmd_del_server(&c, be, srv, &err), &c, &err);
	strcpy(s.name, "");
	if (srv)
		strncat(s.name, srv, sizeof(s.name) - 1);
	if (!hap_name_valid(s.name) || !hap_name_valid(be))
		assert_refused(hap_cmd_add_server(&c, be, &s, &checks_on, &err), &c, &err);
}

static void test_builders_hostile_names(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_HOSTILE; i++) {
		hostile_target(hostile_names[i], "s1");
		hostile_target("web", hostile_names[i]);
		struct hap_cmd c = { .text = "canary" };
		struct vxerr err = { "" };
		assert_refused(hap_cmd_show_servers_state(&c, hostile_names[i], &err), &c, &err);
		assert_refused(hap_cmd_show_stat(&c, hostile_names[i], &err), &c, &err);
	}
	hostile_target(NULL, "s1");
	hostile_target("web", NULL);
}

static void test_builders_hostile_values(void **state)
{
	(void)state;
	static const char *const bad_addr[] = { "127.0.0.1;show info", "127.0.0.1\nshow info", "localhost",
						"::1 x", "", "1.2.3.4 weight 1", "unix@/run/x.sock" };
	struct hap_cmd c = { .text = "canary" };
	struct vxerr err = { "" };
	for (size_t i = 0; i < sizeof(bad_addr) / sizeof(bad_addr[0]); i++) {
		struct hap_server s = good_server();
		strcpy(s.addr, bad_addr[i]);
		assert_refused(hap_cmd_add_server(&c, "web", &s, NULL, &err), &c, &err);
	}
	struct hap_server s = good_server();
	s.port = 0;
	assert_refused(hap_cmd_add_server(&c, "web", &s, NULL, &err), &c, &err);
	s = good_server();
	s.weight = 257;
	assert_refused(hap_cmd_add_server(&c, "web", &s, NULL, &err), &c, &err);
	s.weight = -1;
	assert_refused(hap_cmd_add_server(&c, "web", &s, NULL, &err), &c, &err);
	s = good_server();
	s.maxconn = -5;
	assert_refused(hap_cmd_add_server(&c, "web", &s, NULL, &err), &c, &err);
	s = good_server();
	struct hap_check bad_chk = checks_on;
	bad_chk.rise = 0;
	assert_refused(hap_cmd_add_server(&c, "web", &s, &bad_chk, &err), &c, &err);
	bad_chk = checks_on;
	bad_chk.inter_us = 0;
	assert_refused(hap_cmd_add_server(&c, "web", &s, &bad_chk, &err), &c, &err);
	assert_refused(hap_cmd_set_weight(&c, "web", "s1", 300, &err), &c, &err);
	assert_refused(hap_cmd_set_maxconn(&c, "web", "s1", HAP_MAXCONN_MAX + 1, &err), &c, &err);
	assert_refused(hap_cmd_set_state(&c, "web", "s1", (enum hap_admin)7, &err), &c, &err);
	assert_non_null(strstr(err.msg, "s1"));
}

static void test_text_safe(void **state)
{
	(void)state;
	assert_true(hap_cmd_text_safe("show stat web 4 -1"));
	static const char *const bad[] = { "", "a;b", "a\nb", "a\rb", "a#b", "a\\b", "a\"b", "a'b", "a\tb",
					   "a\xc3\xb1", "a\x7f" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_false(hap_cmd_text_safe(bad[i]));
	char longcmd[HAP_CMD_MAX + 10];
	memset(longcmd, 'a', sizeof(longcmd) - 1);
	longcmd[sizeof(longcmd) - 1] = '\0';
	assert_false(hap_cmd_text_safe(longcmd));
}

static void test_classify(void **state)
{
	(void)state;
	static const struct {
		enum hap_cmd_kind kind;
		const char *reply;
		enum hap_status want;
	} rows[] = {
		{ HAP_CMD_ADD_SERVER, "New server registered.\n\n", HAP_OK },
		{ HAP_CMD_ADD_SERVER, "Already exists a server with the same name in backend.\n\n", HAP_ERR },
		{ HAP_CMD_ADD_SERVER, "'cookie' option is not accepted for dynamic server\n\n", HAP_ERR },
		{ HAP_CMD_ADD_SERVER, "Backend must use a dynamic load balancing to support dynamic servers.\n", HAP_ERR },
		{ HAP_CMD_ADD_SERVER, "No such backend.\n", HAP_NOT_FOUND },
		{ HAP_CMD_ADD_SERVER, "", HAP_ERR },
		{ HAP_CMD_DEL_SERVER, "Server deleted.\n", HAP_OK },
		{ HAP_CMD_DEL_SERVER, "Server still has connections attached to it, cannot remove it.\n", HAP_RETRY },
		{ HAP_CMD_DEL_SERVER, "Only servers in maintenance mode can be deleted.\n", HAP_ERR },
		{ HAP_CMD_DEL_SERVER, "No such server.\n", HAP_NOT_FOUND },
		{ HAP_CMD_DEL_SERVER, "No such backend.\n", HAP_NOT_FOUND },
		{ HAP_CMD_SET, "\n", HAP_OK },
		{ HAP_CMD_SET, "", HAP_OK },
		{ HAP_CMD_SET, "No such server.\n\n", HAP_NOT_FOUND },
		{ HAP_CMD_SET, "Absolute weight can only be between 0 and 256 inclusive.\n\n", HAP_ERR },
		{ HAP_CMD_SET, "Permission denied\n\n", HAP_ERR },
		{ HAP_CMD_SET, "Health check was not configured on this server, cannot enable.\n\n", HAP_ERR },
		{ HAP_CMD_SHOW_SERVERS_STATE, "1\n# be_id be_name\n\n", HAP_OK },
		{ HAP_CMD_SHOW_SERVERS_STATE, "Can't find backend.\n\n", HAP_NOT_FOUND },
		{ HAP_CMD_SHOW_STAT, "# pxname,svname,\n", HAP_OK },
		{ HAP_CMD_SHOW_STAT, "No such proxy.\n\n", HAP_NOT_FOUND },
		{ HAP_CMD_SHOW_INFO, "Name: HAProxy\nVersion: 2.6\n", HAP_OK },
		{ HAP_CMD_SHOW_INFO, "Unknown command\n", HAP_ERR },
		{ HAP_CMD_SHOW_BACKEND, "# name\nweb\n\n", HAP_OK },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(hap_reply_classify(rows[i].kind, rows[i].reply, strlen(rows[i].reply)), rows[i].want);
	assert_int_equal(hap_reply_classify(HAP_CMD_SET, NULL, 0), HAP_ERR);
	char sum[32];
	hap_reply_summary("\n\nNo such server.\nmore\n", 23, sum, sizeof(sum));
	assert_string_equal(sum, "No such server.");
	hap_reply_summary("\n", 1, sum, sizeof(sum));
	assert_string_equal(sum, "(empty reply)");
	hap_reply_summary("a\x01z very long line that does not fit", 37, sum, 8);
	assert_string_equal(sum, "a?z ver");
}

static void test_prompt_split_captured(void **state)
{
	(void)state;
	size_t len;
	char *raw = fixture("prompt_session.bin", &len);
	static const char *const want[] = {
		"\n", "2.6.12-1+deb12u4\n\n", "\n", "No such server.\n\n",
		"Already exists a server with the same name in backend.\n\n",
		"'cookie' option is not accepted for dynamic server\n\n",
		"Only servers in maintenance mode can be deleted.\n",
		"Absolute weight can only be between 0 and 256 inclusive.\n\n",
	};
	size_t pos = 0, n;
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		size_t used = hap_prompt_split(raw + pos, len - pos, &n);
		assert_true(used > 0);
		assert_int_equal(n, strlen(want[i]));
		assert_memory_equal(raw + pos, want[i], n);
		pos += used;
	}
	/* then show servers state, add, del; the session ends with a prompt after quit */
	size_t used = hap_prompt_split(raw + pos, len - pos, &n);
	struct hap_servers_state ss;
	assert_int_equal(hap_parse_servers_state(raw + pos, n, &ss, NULL), 0);
	assert_int_equal(ss.n, 7);
	hap_servers_state_release(&ss);
	pos += used;
	used = hap_prompt_split(raw + pos, len - pos, &n);
	assert_int_equal(hap_reply_classify(HAP_CMD_ADD_SERVER, raw + pos, n), HAP_OK);
	pos += used;
	used = hap_prompt_split(raw + pos, len - pos, &n);
	assert_int_equal(hap_reply_classify(HAP_CMD_DEL_SERVER, raw + pos, n), HAP_OK);
	/* incomplete input is never a reply */
	assert_int_equal(hap_prompt_split("abc\n>", 5, &n), 0);
	assert_int_equal(hap_prompt_split("", 0, &n), 0);
	assert_int_equal(hap_prompt_split("> ", 2, &n), 2);
	assert_int_equal(n, 0);
	free(raw);
}

/* The runtime client scans a growing reply from where the last scan stopped: fed the captured
 * session in pieces of every size from 1 to 64 bytes, it finds exactly the replies a scan of
 * the whole buffer finds. */
static void test_prompt_split_incremental(void **state)
{
	(void)state;
	size_t len;
	char *raw = fixture("prompt_session.bin", &len);
	for (size_t step = 1; step <= 64; step++) {
		size_t pos = 0, have = 0, from = 0;
		while (pos < len) {
			size_t n, whole_n, used;
			have = have + step < len ? have + step : len;
			used = hap_prompt_split_from(raw + pos, have - pos, from, &n);
			if (used == 0) {
				from = have - pos > 0 ? have - pos - 1 : 0;
				if (have == len)
					break;
				continue;
			}
			size_t whole = hap_prompt_split(raw + pos, len - pos, &whole_n);
			assert_int_equal(used, whole);
			assert_int_equal(n, whole_n);
			pos += used;
			from = 0;
		}
		assert_int_equal(hap_prompt_split(raw + pos, len - pos, &(size_t){ 0 }), 0);
	}
	free(raw);
}

static void test_parse_servers_state(void **state)
{
	(void)state;
	size_t len;
	char *text = fixture("servers_state.txt", &len);
	struct hap_servers_state s;
	assert_int_equal(hap_parse_servers_state(text, len, &s, NULL), 0);
	assert_int_equal(s.n, 7);
	const struct hap_srv_state *r = hap_servers_state_find(&s, "web", "s3");
	assert_non_null(r);
	assert_string_equal(r->addr, "127.0.0.1");
	assert_int_equal(r->admin_state, 8);
	assert_int_equal(hap_admin_from_bits(r->admin_state), HAP_ADMIN_DRAIN);
	assert_int_equal(r->uweight, 9);
	assert_int_equal(r->port, 28181);
	r = hap_servers_state_find(&s, "web", "dyn6");
	assert_non_null(r);
	assert_string_equal(r->addr, "::1");
	assert_int_equal(hap_admin_from_bits(r->admin_state), HAP_ADMIN_MAINT);
	assert_int_equal(r->op_state, HAP_OP_STOPPED);
	r = hap_servers_state_find(&s, "web", "s2");
	assert_int_equal(hap_admin_from_bits(r->admin_state), HAP_ADMIN_MAINT); /* CMAINT: config `disabled` */
	assert_null(hap_servers_state_find(&s, "web", "nope"));
	assert_null(hap_servers_state_find(&s, "other", "s1"));
	hap_servers_state_release(&s);
	hap_servers_state_release(&s); /* released twice is harmless */
	free(text);
}

static void test_parse_servers_state_by_name(void **state)
{
	(void)state;
	/* columns in another order, an unknown one, and only the required ones */
	const char *text = "1\n# srv_name future_col srv_admin_state be_name srv_uweight srv_addr srv_op_state\n"
			   "a x 1 web 5 ::1 0\nb y 0 api 7 10.0.0.2 2\n\n";
	struct hap_servers_state s;
	assert_int_equal(hap_parse_servers_state(text, strlen(text), &s, NULL), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.rows[1].backend, "api");
	assert_string_equal(s.rows[1].name, "b");
	assert_int_equal(s.rows[1].uweight, 7);
	assert_int_equal(s.rows[1].port, -1);
	hap_servers_state_release(&s);
	/* empty backend: header only */
	const char *empty = "1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n";
	assert_int_equal(hap_parse_servers_state(empty, strlen(empty), &s, NULL), 0);
	assert_int_equal(s.n, 0);
	hap_servers_state_release(&s);
}

static void expect_state_error(const char *text, const char *msg_part)
{
	struct hap_servers_state s = { (void *)1, 42, NULL };
	struct vxerr err = { "" };
	assert_int_equal(hap_parse_servers_state(text, strlen(text), &s, &err), -1);
	assert_int_equal(s.n, 42); /* untouched */
	if (!strstr(err.msg, msg_part))
		fail_msg("'%s' lacks '%s'", err.msg, msg_part);
}

static void test_parse_servers_state_hostile(void **state)
{
	(void)state;
	const char *hdr = "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_uweight\n";
	char buf[512];
	expect_state_error("", "version");
	expect_state_error("2\n# be_name\n", "version");
	expect_state_error("Can't find backend.\n", "version");
	expect_state_error("1\nbe_name srv_name\n", "header");
	expect_state_error("1\n# be_name srv_name srv_addr\n", "srv_op_state");
	snprintf(buf, sizeof(buf), "%sweb s1 1.2.3.4 2 0\n", hdr);
	expect_state_error(buf, "5 fields");
	snprintf(buf, sizeof(buf), "%sweb s1 1.2.3.4 2 0 9 extra\n", hdr);
	expect_state_error(buf, "7 fields");
	snprintf(buf, sizeof(buf), "%sweb s1 1.2.3.4 2 0 ten\n", hdr);
	expect_state_error(buf, "srv_uweight");
	snprintf(buf, sizeof(buf), "%sweb s1 1.2.3.4 2 99999999999999999999 1\n", hdr);
	expect_state_error(buf, "srv_admin_state");
	struct hap_servers_state s;
	struct vxerr err;
	assert_int_equal(hap_parse_servers_state("1\n\0x", 4, &s, &err), -1);
	assert_non_null(strstr(err.msg, "NUL"));
	assert_int_equal(hap_parse_servers_state("1\n", (size_t)HAP_REPLY_PARSE_MAX + 1, &s, &err), -1);
	assert_int_equal(hap_parse_servers_state(NULL, 0, &s, &err), -1);
}

/* Every prefix of a captured reply either parses or fails cleanly (ASan watches). */
static void truncations(const char *name, int (*parse)(const char *, size_t, void *), void (*release)(void *))
{
	size_t len;
	char *text = fixture(name, &len);
	union {
		struct hap_servers_state ss;
		struct hap_stats st;
		struct hap_info in;
		struct hap_proc_list pl;
		struct hap_backends be;
	} out;
	for (size_t n = 0; n <= len; n++) {
		char *cut = xmalloc(n ? n : 1); /* exact size: a read past the cut trips ASan */
		memcpy(cut, text, n);
		if (parse(cut, n, &out) == 0 && release)
			release(&out);
		free(cut);
	}
	free(text);
}

static int p_state(const char *t, size_t n, void *o) { return hap_parse_servers_state(t, n, o, NULL); }
static void r_state(void *o) { hap_servers_state_release(o); }
static int p_stat(const char *t, size_t n, void *o) { return hap_parse_stat(t, n, o, NULL); }
static void r_stat(void *o) { hap_stats_release(o); }
static int p_info(const char *t, size_t n, void *o) { return hap_parse_info(t, n, o, NULL); }
static int p_proc(const char *t, size_t n, void *o) { return hap_parse_proc(t, n, o, NULL); }
static int p_back(const char *t, size_t n, void *o) { return hap_parse_backends(t, n, o, NULL); }
static void r_back(void *o) { hap_backends_release(o); }

static void test_parsers_truncated(void **state)
{
	(void)state;
	truncations("servers_state.txt", p_state, r_state);
	truncations("show_stat_all.csv", p_stat, r_stat);
	truncations("show_info.txt", p_info, NULL);
	truncations("show_proc_old_workers.txt", p_proc, NULL);
	truncations("show_backend.txt", p_back, r_back);
}

static void test_parse_stat(void **state)
{
	(void)state;
	size_t len;
	char *text = fixture("show_stat_all.csv", &len);
	struct hap_stats s;
	assert_int_equal(hap_parse_stat(text, len, &s, NULL), 0);
	assert_int_equal(s.n, 9);
	const struct hap_stat_row *r = hap_stats_find(&s, "web", "s1");
	assert_non_null(r);
	assert_int_equal(r->type, HAP_STAT_SERVER);
	assert_string_equal(r->status, "UP");
	assert_int_equal(r->weight, 3);
	assert_int_equal(r->uweight, 3);
	assert_int_equal(r->slim, 50);
	assert_string_equal(r->check_status, "L7OK");
	assert_int_equal(r->check_code, 200);
	assert_string_equal(r->addr, "127.0.0.1:28181");
	assert_int_equal(r->hrsp_5xx, 0);
	assert_true(r->stot >= 1);
	assert_string_equal(hap_stats_find(&s, "web", "s3")->status, "DRAIN");
	assert_string_equal(hap_stats_find(&s, "web", "dead")->status, "DOWN");
	assert_string_equal(hap_stats_find(&s, "web", "dyn1")->status, "UP"); /* "UP 0/3" */
	assert_string_equal(hap_stats_find(&s, "web", "dyn6")->status, "MAINT");
	assert_string_equal(hap_stats_find(&s, "web", "dyn7")->status, "no check");
	assert_int_equal(hap_stats_find(&s, "web", "dyn7")->slim, -1); /* empty: no limit */
	r = hap_stats_find(&s, "fe", "FRONTEND");
	assert_int_equal(r->type, HAP_STAT_FRONTEND);
	assert_string_equal(r->status, "OPEN");
	assert_int_equal(hap_stats_find(&s, "web", "BACKEND")->type, HAP_STAT_BACKEND);
	hap_stats_release(&s);
	free(text);
}

static void test_parse_stat_by_name_and_quotes(void **state)
{
	(void)state;
	const char *text = "# svname,status,pxname,check_status,new_col,scur,\n"
			   "s1,\"UP 1/3\",web,\"* L4OK\",\"a,\"\"b\"\"\",7,\n"
			   "s2,DOWN,web,,,,\n";
	struct hap_stats s;
	assert_int_equal(hap_parse_stat(text, strlen(text), &s, NULL), 0);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.rows[0].pxname, "web");
	assert_string_equal(s.rows[0].status, "UP");
	assert_string_equal(s.rows[0].check_status, "L4OK");
	assert_int_equal(s.rows[0].scur, 7);
	assert_int_equal(s.rows[0].weight, -1); /* no such column */
	assert_int_equal(s.rows[1].scur, -1);
	assert_string_equal(s.rows[1].addr, "");
	hap_stats_release(&s);
	static const char *const bad[] = {
		"", "pxname,svname,status\n", "# pxname,svname\n", "# pxname,svname,status\nweb,s1\n",
		"# pxname,svname,status,scur\nweb,s1,UP,x\n", "# pxname,svname,status\nweb,\"s1,UP\n",
		"No such proxy.\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vxerr err = { "" };
		assert_int_equal(hap_parse_stat(bad[i], strlen(bad[i]), &s, &err), -1);
		assert_true(err.msg[0] != '\0');
	}
	/* more columns than the parser keeps room for */
	struct buf b = BUF_INIT(1u << 20);
	buf_puts(&b, "# pxname,svname,status");
	for (int i = 0; i < 600; i++)
		buf_printf(&b, ",c%d", i);
	buf_puts(&b, "\n");
	assert_int_equal(hap_parse_stat(b.data, b.len, &s, NULL), -1);
	buf_release(&b);
}

static void test_parse_info(void **state)
{
	(void)state;
	size_t len;
	char *text = fixture("show_info.txt", &len);
	struct hap_info in;
	assert_int_equal(hap_parse_info(text, len, &in, NULL), 0);
	assert_int_equal(in.pid, 6630);
	assert_int_equal(in.uptime_sec, 8);
	assert_string_equal(in.version, "2.6.12-1+deb12u4");
	assert_string_equal(in.name, "HAProxy");
	assert_int_equal(in.nbthread, 2);
	assert_int_equal(in.stopping, 0);
	free(text);
	struct vxerr err;
	const char *no_pid = "Name: HAProxy\nVersion: 2.6\nUptime_sec: 3\n";
	assert_int_equal(hap_parse_info(no_pid, strlen(no_pid), &in, &err), -1);
	const char *bad_pid = "Name: HAProxy\nVersion: 2.6\nPid: 12x\nUptime_sec: 3\n";
	assert_int_equal(hap_parse_info(bad_pid, strlen(bad_pid), &in, &err), -1);
	assert_non_null(strstr(err.msg, "Pid"));
	const char *ok = "garbage line\nPid: 5\nUptime_sec: 0\nVersion: x\n";
	assert_int_equal(hap_parse_info(ok, strlen(ok), &in, NULL), 0);
	assert_int_equal(in.maxconn, -1);
}

static void test_parse_proc(void **state)
{
	(void)state;
	size_t len;
	struct hap_proc_list l;
	char *text = fixture("show_proc.txt", &len);
	assert_int_equal(hap_parse_proc(text, len, &l, NULL), 0);
	assert_int_equal(l.master_pid, 6355);
	assert_int_equal(l.master_reloads, 6);
	assert_int_equal(l.failed, 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(hap_proc_current_worker(&l), 6630);
	free(text);
	text = fixture("show_proc_old_workers.txt", &len);
	assert_int_equal(hap_parse_proc(text, len, &l, NULL), 0);
	assert_int_equal(l.n, 2);
	assert_true(l.workers[1].old);
	assert_int_equal(l.workers[1].pid, 6584);
	assert_int_equal(hap_proc_current_worker(&l), 6630);
	free(text);
	text = fixture("show_proc_failed.txt", &len);
	assert_int_equal(hap_parse_proc(text, len, &l, NULL), 0);
	assert_int_equal(l.failed, 1);
	assert_int_equal(l.master_reloads, 3);
	assert_int_equal(hap_proc_current_worker(&l), 6480);
	free(text);
	static const char *const bad[] = { "", "# workers\n12 worker 0\n", "x master 1 [failed: 0]\n",
					   "1 master 1 [failed: z]\n", "1 master 1\n# workers\n2 worker\n",
					   "1 master 1\n# workers\n2 program 0\n", "3 worker 0\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hap_parse_proc(bad[i], strlen(bad[i]), &l, NULL), -1);
	/* more workers than the list holds: the extras are dropped */
	struct buf b = BUF_INIT(1u << 20);
	buf_puts(&b, "1 master 100 [failed: 0] 0d 2.6\n# workers\n5 worker 0 0d 2.6\n# old workers\n");
	for (int i = 0; i < 100; i++)
		buf_printf(&b, "%d worker %d 0d 2.6\n", 100 + i, i + 1);
	assert_int_equal(hap_parse_proc(b.data, b.len, &l, NULL), 0);
	assert_int_equal(l.n, HAP_PROC_MAX);
	assert_int_equal(hap_proc_current_worker(&l), 5);
	buf_release(&b);
}

static void test_parse_backends(void **state)
{
	(void)state;
	size_t len;
	char *text = fixture("show_backend.txt", &len);
	struct hap_backends b;
	assert_int_equal(hap_parse_backends(text, len, &b, NULL), 0);
	assert_int_equal(b.n, 1);
	assert_string_equal(b.names[0], "web");
	hap_backends_release(&b);
	free(text);
	assert_int_equal(hap_parse_backends("web\n", 4, &b, NULL), -1);
}

/* As HAProxy 2.6.12 answers `@!<worker> show cli sockets` on the master CLI. */
static void test_parse_cli_sockets(void **state)
{
	(void)state;
	static const char captured[] = "# socket lvl processes\nipv4@127.0.0.1:9999 operator all\n"
				       "unix@/tmp/x/user.sock user all\nunix@/tmp/x/runtime.sock admin all\n"
				       "sockpair@4 admin all\n\n";
	char path[32];
	struct vxerr err;
	assert_int_equal(hap_parse_cli_sockets(captured, strlen(captured), path, sizeof(path), NULL), 0);
	assert_string_equal(path, "/tmp/x/runtime.sock");
	static const char by_name[] = "# lvl socket\nadmin unix@/r.sock\n";
	assert_int_equal(hap_parse_cli_sockets(by_name, strlen(by_name), path, sizeof(path), NULL), 0);
	assert_string_equal(path, "/r.sock");
	static const char none[] = "# socket lvl processes\nsockpair@4 admin all\n";
	assert_int_equal(hap_parse_cli_sockets(none, strlen(none), path, sizeof(path), &err), -1);
	assert_non_null(strstr(err.msg, "no unix socket at admin level"));
	assert_int_equal(hap_parse_cli_sockets(captured, strlen(captured), path, 8, &err), -1);
	assert_non_null(strstr(err.msg, "too long"));
	static const char short_row[] = "# socket lvl processes\nunix@/r.sock\n";
	assert_int_equal(hap_parse_cli_sockets(short_row, strlen(short_row), path, sizeof(path), NULL), -1);
	static const char no_header[] = "unix@/r.sock admin all\n";
	assert_int_equal(hap_parse_cli_sockets(no_header, strlen(no_header), path, sizeof(path), NULL), -1);
	assert_int_equal(hap_parse_cli_sockets(NULL, 0, path, sizeof(path), NULL), -1);
}

static void test_check_from_health(void **state)
{
	(void)state;
	struct cfg_health h = { .type = CHECK_HTTP, .path = (char *)(uintptr_t)"/h", .interval_us = 2000000, .rise = 2, .fall = 3 };
	struct hap_check c;
	hap_check_from_health(&h, &c);
	assert_true(c.enabled);
	assert_int_equal(c.inter_us, 2000000);
	assert_int_equal(c.fastinter_us, 500000);
	assert_int_equal(c.downinter_us, 500000);
	assert_int_equal(c.rise, 2);
	assert_int_equal(c.fall, 3);
	h.interval_us = 200000; /* fastinter floors at 100ms but never exceeds inter */
	hap_check_from_health(&h, &c);
	assert_int_equal(c.fastinter_us, 100000);
	h.interval_us = 50000;
	hap_check_from_health(&h, &c);
	assert_int_equal(c.fastinter_us, 50000);
	h.type = CHECK_NONE;
	hap_check_from_health(&h, &c);
	assert_false(c.enabled);
}

static void test_ident_and_admin(void **state)
{
	(void)state;
	struct hap_ident a = { 100, 50 }, same = { 100, 51 }, reload = { 101, 0 }, restart = { 100, 3 };
	assert_false(hap_ident_changed(&a, &same));
	assert_true(hap_ident_changed(&a, &reload));
	assert_true(hap_ident_changed(&a, &restart));
	assert_int_equal(hap_admin_from_bits(0), HAP_ADMIN_READY);
	assert_int_equal(hap_admin_from_bits(HAP_SRV_FDRAIN), HAP_ADMIN_DRAIN);
	assert_int_equal(hap_admin_from_bits(HAP_SRV_IDRAIN), HAP_ADMIN_DRAIN);
	assert_int_equal(hap_admin_from_bits(HAP_SRV_FDRAIN | HAP_SRV_FMAINT), HAP_ADMIN_MAINT);
	assert_int_equal(hap_admin_from_bits(HAP_SRV_RMAINT), HAP_ADMIN_MAINT);
	assert_int_equal(hap_admin_from_bits(-1), HAP_ADMIN_READY);
}

/* ---- renderer ---- */

static struct cfg_service svc(const char *name, enum svc_mode mode, enum check_type check, uint16_t port)
{
	struct cfg_service s = {
		.name = (char *)(uintptr_t)name, .bind_port = port, .mode = mode, .balance = BAL_LEASTCONN,
		.health = { .type = check, .path = (char *)(uintptr_t)"/healthz", .interval_us = 1000000,
			    .timeout_us = 500000, .rise = 2, .fall = 3 },
		.timeouts = { 2000000, 30000000, 30000000, 5000000 }, .retries = 3, .http_reuse = REUSE_SAFE,
	};
	strcpy(s.bind_host, "127.0.0.1");
	return s;
}

static void render_config(struct vx_config *cfg, struct cfg_service *svcs, size_t n)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->haproxy.runtime_socket = (char *)(uintptr_t)"/run/vx/runtime.sock";
	cfg->haproxy.maxconn = 8000;
	cfg->haproxy.nbthread = 2;
	cfg->haproxy.bufsize = 32768;
	cfg->services = svcs;
	cfg->n_services = n;
}

static void assert_has(const char *text, const char *part)
{
	if (!strstr(text, part))
		fail_msg("rendered config lacks '%s':\n%s", part, text);
}

static void test_render_directives(void **state)
{
	(void)state;
	struct cfg_service svcs[2] = { svc("web", SVC_MODE_HTTP, CHECK_HTTP, 8080),
				       svc("db", SVC_MODE_TCP, CHECK_TCP, 5432) };
	svcs[1].balance = BAL_FIRST;
	struct vx_config cfg;
	render_config(&cfg, svcs, 2);
	struct hap_server web[3] = { good_server(), good_server(), good_server() };
	strcpy(web[1].name, "i-2");
	web[1].admin = HAP_ADMIN_DRAIN;
	strcpy(web[2].name, "i-3");
	strcpy(web[2].addr, "::1");
	web[2].admin = HAP_ADMIN_MAINT;
	struct hap_pool pools[2] = { { "web", web, 3 }, { "gone", web, 1 } };
	struct hap_render_opts opts = { .state_file = "/run/vx/state", .pools = pools, .n_pools = 2 };
	struct buf out = BUF_INIT(1u << 20);
	assert_int_equal(hap_render(&cfg, &opts, &out, NULL), 0);
	const char *t = out.data;
	assert_has(t, "\nglobal\n    stats socket /run/vx/runtime.sock mode 600 level admin expose-fd listeners\n");
	assert_has(t, "    maxconn 8000\n");
	assert_has(t, "    nbthread 2\n");
	assert_has(t, "    tune.bufsize 32768\n");
	assert_has(t, "    server-state-file /run/vx/state\n");
	assert_has(t, "    load-server-state-from-file global\n");
	assert_has(t, "\nfrontend fe.web\n    mode http\n    bind 127.0.0.1:8080\n");
	assert_has(t, "    default_backend web\n");
	assert_has(t, "\nbackend web\n    mode http\n    balance leastconn\n");
	assert_has(t, "    timeout connect 2000ms\n");
	assert_has(t, "    timeout queue 5000ms\n");
	assert_has(t, "    timeout check 500ms\n");
	assert_has(t, "    retries 3\n    retry-on conn-failure empty-response\n    option redispatch 1\n");
	assert_has(t, "    http-reuse safe\n");
	assert_has(t, "    option httpchk GET /healthz\n");
	assert_has(t, "    server i-1 10.0.0.1:8080 weight 10 maxconn 100 check inter 1000ms fastinter 250ms "
		      "downinter 250ms rise 2 fall 3 pool-max-conn -1 pool-purge-delay 5s\n");
	assert_has(t, "    server i-2 10.0.0.1:8080 weight 0 maxconn 100 check"); /* drain */
	assert_has(t, "    server i-3 [::1]:8080 weight 10 maxconn 100 disabled check");
	assert_has(t, "\nbackend db\n    mode tcp\n    balance first\n");
	assert_null(strstr(t, "gone"));
	assert_null(strstr(t, " enabled"));
	/* tcp service: no http-only directives, a plain tcp check */
	const char *db = strstr(t, "\nbackend db\n");
	assert_null(strstr(db, "retry-on"));
	assert_null(strstr(db, "http-reuse"));
	assert_null(strstr(db, "httpchk"));
	buf_release(&out);
}

static void test_render_refuses(void **state)
{
	(void)state;
	struct cfg_service s = svc("web", SVC_MODE_HTTP, CHECK_HTTP, 8080);
	struct vx_config cfg;
	render_config(&cfg, &s, 1);
	struct buf out = BUF_INIT(1u << 20);
	buf_puts(&out, "keep");
	struct vxerr err;
	s.health.path = (char *)(uintptr_t)"/x\nbogus";
	assert_int_equal(hap_render(&cfg, NULL, &out, &err), -1);
	assert_non_null(strstr(err.msg, "path"));
	assert_string_equal(out.data, "keep"); /* nothing half-rendered */
	s = svc("web;x", SVC_MODE_HTTP, CHECK_HTTP, 8080);
	assert_int_equal(hap_render(&cfg, NULL, &out, &err), -1);
	s = svc("web", SVC_MODE_HTTP, CHECK_HTTP, 8080);
	strcpy(s.bind_host, "localhost");
	assert_int_equal(hap_render(&cfg, NULL, &out, &err), -1);
	s = svc("web", SVC_MODE_HTTP, CHECK_HTTP, 8080);
	cfg.haproxy.runtime_socket = (char *)(uintptr_t)"/run/a b.sock";
	assert_int_equal(hap_render(&cfg, NULL, &out, &err), -1);
	render_config(&cfg, &s, 1);
	struct hap_server bad = good_server();
	strcpy(bad.addr, "1.2.3.4\nserver x");
	struct hap_pool pool = { "web", &bad, 1 };
	struct hap_render_opts opts = { .pools = &pool, .n_pools = 1 };
	assert_int_equal(hap_render(&cfg, &opts, &out, &err), -1);
	assert_non_null(strstr(err.msg, "web"));
	struct hap_render_opts bad_state = { .state_file = "/tmp/x\n" };
	assert_int_equal(hap_render(&cfg, &bad_state, &out, &err), -1);
	/* a bounded output buffer */
	struct buf small = BUF_INIT(100);
	assert_int_equal(hap_render(&cfg, NULL, &small, &err), -1);
	assert_non_null(strstr(err.msg, "larger"));
	assert_int_equal(small.len, 0);
	buf_release(&small);
	assert_string_equal(out.data, "keep");
	buf_release(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_addr_canon),
		cmocka_unit_test(test_add_server_text),
		cmocka_unit_test(test_other_builders_text),
		cmocka_unit_test(test_builders_hostile_names),
		cmocka_unit_test(test_builders_hostile_values),
		cmocka_unit_test(test_text_safe),
		cmocka_unit_test(test_classify),
		cmocka_unit_test(test_prompt_split_captured),
		cmocka_unit_test(test_prompt_split_incremental),
		cmocka_unit_test(test_parse_servers_state),
		cmocka_unit_test(test_parse_servers_state_by_name),
		cmocka_unit_test(test_parse_servers_state_hostile),
		cmocka_unit_test(test_parsers_truncated),
		cmocka_unit_test(test_parse_stat),
		cmocka_unit_test(test_parse_stat_by_name_and_quotes),
		cmocka_unit_test(test_parse_info),
		cmocka_unit_test(test_parse_proc),
		cmocka_unit_test(test_parse_backends),
		cmocka_unit_test(test_parse_cli_sockets),
		cmocka_unit_test(test_check_from_health),
		cmocka_unit_test(test_ident_and_admin),
		cmocka_unit_test(test_render_directives),
		cmocka_unit_test(test_render_refuses),
	};
	return cmocka_run_group_tests_name("haproxy", tests, NULL, NULL);
}
