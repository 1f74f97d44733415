/* Agent health checks against real sockets and commands: tcp, http, exec; rise/fall; a hanging
 * command is killed at its timeout while another timer on the same loop keeps its schedule. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/check.h"
#include "common/alloc.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "fx.h"

struct observed {
	int results, passes, changes;
	enum check_state last_state;
	char last_detail[160];
	int stop_after;
	struct ev_loop *loop;
};

static void on_result(void *ud, enum check_state st, bool changed, const struct check_result *res)
{
	struct observed *o = ud;
	o->results++;
	o->passes += res->pass;
	o->changes += changed;
	o->last_state = st;
	snprintf(o->last_detail, sizeof(o->last_detail), "%s", res->detail);
	if (o->results >= o->stop_after)
		ev_break(o->loop, EVBREAK_ALL);
}

static void on_guard(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void run_checks(struct check_spec *spec, struct observed *o, int n, double guard_s)
{
	struct ev_loop *loop = EV_DEFAULT;
	o->loop = loop;
	o->stop_after = n;
	struct checker *c = checker_new(loop, spec, on_result, o);
	ev_timer guard;
	ev_timer_init(&guard, on_guard, guard_s, 0);
	ev_timer_start(loop, &guard);
	checker_start(c);
	ev_run(loop, 0);
	ev_timer_stop(loop, &guard);
	checker_free(c);
}

static struct check_spec base_spec(enum check_kind kind, uint16_t port)
{
	struct check_spec s = { .kind = kind, .port = port, .interval_us = 50000, .timeout_us = 500000, .rise = 2, .fall = 2 };
	snprintf(s.address, sizeof(s.address), "127.0.0.1");
	return s;
}

static void test_tcp_up_and_refused(void **state)
{
	(void)state;
	struct vxerr err;
	int lfd = net_listen_tcp("127.0.0.1", 0, 16, &err);
	assert_true(lfd >= 0);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(lfd, (struct sockaddr *)&ss, &len);
	uint16_t port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	struct check_spec spec = base_spec(CHECK_KIND_TCP, port);
	struct observed o = { 0 };
	run_checks(&spec, &o, 3, 5);
	assert_int_equal(o.results, 3);
	assert_int_equal(o.passes, 3);
	assert_int_equal(o.last_state, CHECK_STATE_UP);
	assert_int_equal(o.changes, 1);
	close(lfd);
	struct observed o2 = { 0 };
	run_checks(&spec, &o2, 2, 5);
	assert_int_equal(o2.passes, 0);
	assert_int_equal(o2.last_state, CHECK_STATE_DOWN);
	assert_non_null(strstr(o2.last_detail, "refused"));
}

/* A tiny HTTP responder on the same loop: answers every request with `reply`. */
struct responder {
	ev_io w;
	const char *reply;
};

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	(void)loop;
	(void)revents;
	struct responder *r = (struct responder *)w;
	int fd = accept(w->fd, NULL, NULL);
	if (fd < 0)
		return;
	char buf[1024];
	time_sleep_us(2000);
	(void)!read(fd, buf, sizeof(buf));
	(void)!write(fd, r->reply, strlen(r->reply));
	close(fd);
}

static uint16_t start_responder(struct responder *r, const char *reply)
{
	struct vxerr err;
	int lfd = net_listen_tcp("127.0.0.1", 0, 16, &err);
	assert_true(lfd >= 0);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	getsockname(lfd, (struct sockaddr *)&ss, &len);
	r->reply = reply;
	ev_io_init(&r->w, on_accept, lfd, EV_READ);
	ev_io_start(EV_DEFAULT, &r->w);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void stop_responder(struct responder *r)
{
	ev_io_stop(EV_DEFAULT, &r->w);
	close(r->w.fd);
}

static void test_http_status_classes(void **state)
{
	(void)state;
	static const struct {
		const char *reply;
		bool pass;
		const char *detail;
	} rows[] = {
		{ "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true, ": 200" },
		{ "HTTP/1.0 302 Found\r\n\r\n", true, ": 302" },
		{ "HTTP/1.1 503 Service Unavailable\r\n\r\n", false, ": 503" },
		{ "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", true, ": 204" },
		{ "SSH-2.0-OpenSSH\r\n\r\n", false, "bad reply: malformed status line" },
		{ "SSH-2.0-OpenSSH\r\n", false, "closed before the end of the reply head" },
		{ "HTTP/1.1 200 OK\r\nX: y\r\n", false, "closed before the end of the reply head" },
		{ "HTTP/1.1 2000 OK\r\n\r\n", false, "bad reply: malformed status line" },
		{ "", false, "closed before a status line" },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct responder r;
		uint16_t port = start_responder(&r, rows[i].reply);
		struct check_spec spec = base_spec(CHECK_KIND_HTTP, port);
		spec.path = "/healthz";
		struct observed o = { 0 };
		run_checks(&spec, &o, 1, 5);
		stop_responder(&r);
		assert_int_equal(o.results, 1);
		assert_int_equal(o.passes, rows[i].pass);
		if (!strstr(o.last_detail, rows[i].detail))
			fail_msg("row %zu: detail '%s' lacks '%s'", i, o.last_detail, rows[i].detail);
		assert_non_null(strstr(o.last_detail, "/healthz"));
	}
	/* a reply head past the bound fails the check instead of growing a buffer */
	char *big = xasprintf("HTTP/1.1 200 OK\r\nX-Big: %06000d\r\n\r\n", 0);
	struct responder r;
	uint16_t port = start_responder(&r, big);
	struct check_spec spec = base_spec(CHECK_KIND_HTTP, port);
	struct observed o = { 0 };
	run_checks(&spec, &o, 1, 5);
	stop_responder(&r);
	assert_int_equal(o.passes, 0);
	assert_non_null(strstr(o.last_detail, "bad reply: header section too large"));
	free(big);
}

static void test_exec_pass_fail(void **state)
{
	(void)state;
	struct check_spec spec = base_spec(CHECK_KIND_EXEC, 0);
	spec.command = "exit 0";
	struct observed o = { 0 };
	run_checks(&spec, &o, 2, 5);
	assert_int_equal(o.passes, 2);
	assert_int_equal(o.last_state, CHECK_STATE_UP);
	spec.command = "exit 3";
	struct observed o2 = { 0 };
	run_checks(&spec, &o2, 2, 5);
	assert_int_equal(o2.passes, 0);
	assert_non_null(strstr(o2.last_detail, "exit 3"));
}

struct ticker {
	ev_timer w;
	int fired;
	int64_t worst_late_us;
	int64_t expect_us;
};

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct ticker *t = (struct ticker *)w;
	int64_t now = time_mono_us();
	if (t->expect_us && now - t->expect_us > t->worst_late_us)
		t->worst_late_us = now - t->expect_us;
	t->expect_us = now + 20000;
	t->fired++;
}

static void test_hanging_command_killed_loop_keeps_going(void **state)
{
	(void)state;
	struct check_spec spec = base_spec(CHECK_KIND_EXEC, 0);
	spec.command = "sleep 30";
	spec.timeout_us = 300000;
	struct ticker t = { 0 };
	ev_timer_init(&t.w, on_tick, 0.02, 0.02);
	ev_timer_start(EV_DEFAULT, &t.w);
	int64_t start = time_mono_us();
	struct observed o = { 0 };
	run_checks(&spec, &o, 2, 10);
	ev_timer_stop(EV_DEFAULT, &t.w);
	int64_t took = time_mono_us() - start;
	assert_int_equal(o.results, 2);
	assert_int_equal(o.passes, 0);
	assert_int_equal(o.last_state, CHECK_STATE_DOWN);
	assert_non_null(strstr(o.last_detail, "killed"));
	assert_true(took < 5 * USEC_PER_SEC); /* two timeouts, not two sleeps */
	assert_true(t.fired >= 10);             /* the other timer kept running through both */
	assert_true(t.worst_late_us < 250000);
}

static void test_spec_parse(void **state)
{
	(void)state;
	struct check_spec s = { 0 };
	struct vxerr err;
	assert_int_equal(check_spec_parse("tcp", &s, &err), 0);
	assert_int_equal(s.kind, CHECK_KIND_TCP);
	assert_int_equal(check_spec_parse("http:/healthz", &s, &err), 0);
	assert_string_equal(s.path, "/healthz");
	assert_int_equal(check_spec_parse("http", &s, &err), 0);
	assert_string_equal(s.path, "/");
	assert_int_equal(check_spec_parse("exec:test -f /tmp/ready", &s, &err), 0);
	assert_string_equal(s.command, "test -f /tmp/ready");
	assert_int_equal(check_spec_parse("http:healthz", &s, &err), -1);
	assert_int_equal(check_spec_parse("http:/a b", &s, &err), -1);
	assert_int_equal(check_spec_parse("exec:", &s, &err), -1);
	assert_int_equal(check_spec_parse("udp", &s, &err), -1);
	assert_non_null(strstr(err.msg, "use tcp, http:/PATH or exec:COMMAND"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_spec_parse),
		cmocka_unit_test(test_tcp_up_and_refused),
		cmocka_unit_test(test_http_status_classes),
		cmocka_unit_test(test_exec_pass_fail),
		cmocka_unit_test(test_hanging_command_killed_loop_keeps_going),
	};
	return cmocka_run_group_tests_name("agent_check", tests, NULL, NULL);
}
