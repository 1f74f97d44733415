/* The Runtime API client against a real HAProxy 2.6 (tests/support/fx_haproxy.h): pipelined
 * batches, traffic through an enabled server, weight/maxconn/state visible in show stat,
 * drain -> maint -> del with a request in flight, injection refused before the socket,
 * reconnect across a reload; and fakes for what HAProxy never does (a reply cut in half, a
 * peer that never answers). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/net.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_haproxy.h"
#include "haproxy/hap.h"

static struct fx_origin origin;
static struct fx_haproxy hap;
static int fe_port, fe_slow_port;

static int setup(void **state)
{
	(void)state;
	fx_origin_start(&origin, 2);
	fe_port = net_free_port();
	fe_slow_port = net_free_port();
	char *body = xasprintf("frontend fe_web\n    bind 127.0.0.1:%d\n    default_backend web\n"
			       "frontend fe_slow\n    bind 127.0.0.1:%d\n    default_backend slowbe\n"
			       "backend web\n    balance roundrobin\n    option httpchk GET /\n"
			       "    retries 3\n    option redispatch 1\n"
			       "backend slowbe\n    balance roundrobin\n    timeout server 10s\n"
			       "backend bulk\n    balance leastconn\n",
			       fe_port, fe_slow_port);
	fx_haproxy_start(&hap, body);
	free(body);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_haproxy_stop(&hap);
	fx_origin_stop(&origin);
	return 0;
}

static struct hap_rt *open_rt(void)
{
	struct vxerr err;
	struct hap_rt *rt = hap_rt_open(hap.runtime_sock, NULL, &err);
	if (!rt)
		fail_msg("%s", err.msg);
	return rt;
}

static void run_ok(struct hap_rt *rt, const struct hap_cmd *cmds, size_t n)
{
	struct hap_reply *r = xcalloc(n, sizeof(*r));
	struct vxerr err;
	if (hap_rt_batch(rt, cmds, n, r, &err) != 0)
		fail_msg("batch: %s", err.msg);
	for (size_t i = 0; i < n; i++) {
		if (hap_reply_classify(cmds[i].kind, r[i].text, r[i].len) != HAP_OK)
			fail_msg("'%s' -> '%s'", cmds[i].text, r[i].text);
	}
	hap_replies_release(r, n);
	free(r);
}

static void servers_state(struct hap_rt *rt, const char *backend, struct hap_servers_state *out)
{
	struct hap_cmd c;
	struct hap_reply r;
	assert_int_equal(hap_cmd_show_servers_state(&c, backend, NULL), 0);
	assert_int_equal(hap_rt_exec(rt, &c, &r, NULL), 0);
	struct vxerr err;
	if (hap_parse_servers_state(r.text, r.len, out, &err) != 0)
		fail_msg("%s", err.msg);
	hap_replies_release(&r, 1);
}

static void stats(struct hap_rt *rt, const char *backend, struct hap_stats *out)
{
	struct hap_cmd c;
	struct hap_reply r;
	assert_int_equal(hap_cmd_show_stat(&c, backend, NULL), 0);
	assert_int_equal(hap_rt_exec(rt, &c, &r, NULL), 0);
	struct vxerr err;
	if (hap_parse_stat(r.text, r.len, out, &err) != 0)
		fail_msg("%s", err.msg);
	hap_replies_release(&r, 1);
}

static struct hap_server server(const char *name, int port, int weight)
{
	struct hap_server s = { .port = (uint16_t)port, .weight = weight };
	snprintf(s.name, sizeof(s.name), "%s", name);
	strcpy(s.addr, "127.0.0.1");
	return s;
}

static void test_batch_100_adds(void **state)
{
	(void)state;
	struct hap_rt *rt = open_rt();
	enum { N = 100 };
	struct hap_cmd *cmds = xcalloc(N, sizeof(*cmds));
	for (int i = 0; i < N; i++) {
		char name[16];
		snprintf(name, sizeof(name), "b%03d", i);
		struct hap_server s = server(name, 20000 + i, 1 + i % 256);
		assert_int_equal(hap_cmd_add_server(&cmds[i], "bulk", &s, NULL, NULL), 0);
	}
	run_ok(rt, cmds, N);
	struct hap_servers_state ss;
	servers_state(rt, "bulk", &ss);
	assert_int_equal(ss.n, N);
	const struct hap_srv_state *r = hap_servers_state_find(&ss, "bulk", "b042");
	assert_non_null(r);
	assert_int_equal(r->port, 20042);
	assert_int_equal(r->uweight, 43);
	assert_int_equal(hap_admin_from_bits(r->admin_state), HAP_ADMIN_MAINT); /* added in maintenance */
	hap_servers_state_release(&ss);
	for (int i = 0; i < N; i++) { /* never enabled: deletable at once */
		char name[16];
		snprintf(name, sizeof(name), "b%03d", i);
		assert_int_equal(hap_cmd_del_server(&cmds[i], "bulk", name, NULL), 0);
	}
	run_ok(rt, cmds, N);
	servers_state(rt, "bulk", &ss);
	assert_int_equal(ss.n, 0);
	hap_servers_state_release(&ss);
	assert_int_equal(hap_rt_connections(rt), 1);
	free(cmds);
	hap_rt_close(rt);
}

static bool web_serves(void *arg)
{
	char **body = arg;
	char *url = xasprintf("http://127.0.0.1:%d/", fe_port);
	free(*body);
	*body = NULL;
	long st = fx_get(url, body);
	free(url);
	return st == 200;
}

static void test_enable_and_traffic(void **state)
{
	(void)state;
	struct hap_rt *rt = open_rt();
	struct hap_server s = server("o0", origin.ports[0], 10);
	struct hap_check chk = { true, 500000, 100000, 500000, 1, 2 };
	struct hap_cmd cmds[3];
	assert_int_equal(hap_cmd_add_server(&cmds[0], "web", &s, &chk, NULL), 0);
	assert_int_equal(hap_cmd_enable_health(&cmds[1], "web", "o0", NULL), 0);
	assert_int_equal(hap_cmd_enable_server(&cmds[2], "web", "o0", NULL), 0);
	run_ok(rt, cmds, 3);
	char *body = NULL;
	assert_true(fx_wait(web_serves, &body, 5000));
	assert_string_equal(body, "ok\n");
	free(body);
	struct hap_stats st;
	stats(rt, "web", &st);
	const struct hap_stat_row *r = hap_stats_find(&st, "web", "o0");
	assert_non_null(r);
	assert_true(r->stot >= 1);
	assert_string_equal(r->status, "UP");
	assert_int_equal(r->uweight, 10);
	hap_stats_release(&st);
	hap_rt_close(rt);
}

struct stat_want {
	struct hap_rt *rt;
	const char *status;
};

static bool status_is(void *arg)
{
	struct stat_want *w = arg;
	struct hap_stats st;
	stats(w->rt, "web", &st);
	const struct hap_stat_row *r = hap_stats_find(&st, "web", "o0");
	bool ok = r && strcmp(r->status, w->status) == 0;
	hap_stats_release(&st);
	return ok;
}

static void set_state(struct hap_rt *rt, enum hap_admin a, const char *want)
{
	struct hap_cmd c;
	assert_int_equal(hap_cmd_set_state(&c, "web", "o0", a, NULL), 0);
	run_ok(rt, &c, 1);
	struct stat_want w = { rt, want };
	assert_true(fx_wait(status_is, &w, 5000));
	struct hap_servers_state ss;
	servers_state(rt, "web", &ss);
	assert_int_equal(hap_admin_from_bits(hap_servers_state_find(&ss, "web", "o0")->admin_state), a);
	hap_servers_state_release(&ss);
}

static void test_weight_maxconn_state(void **state)
{
	(void)state;
	struct hap_rt *rt = open_rt();
	struct hap_cmd cmds[2];
	assert_int_equal(hap_cmd_set_weight(&cmds[0], "web", "o0", 42, NULL), 0);
	assert_int_equal(hap_cmd_set_maxconn(&cmds[1], "web", "o0", 7, NULL), 0);
	run_ok(rt, cmds, 2);
	struct hap_stats st;
	stats(rt, "web", &st);
	const struct hap_stat_row *r = hap_stats_find(&st, "web", "o0");
	assert_int_equal(r->uweight, 42);
	assert_int_equal(r->weight, 42);
	assert_int_equal(r->slim, 7);
	hap_stats_release(&st);
	set_state(rt, HAP_ADMIN_DRAIN, "DRAIN");
	set_state(rt, HAP_ADMIN_MAINT, "MAINT");
	set_state(rt, HAP_ADMIN_READY, "UP");
	/* errors come back classified, with HAProxy's text */
	struct hap_cmd c;
	struct hap_reply rep;
	assert_int_equal(hap_cmd_set_weight(&c, "web", "nope", 1, NULL), 0);
	assert_int_equal(hap_rt_exec(rt, &c, &rep, NULL), 0);
	assert_int_equal(hap_reply_classify(c.kind, rep.text, rep.len), HAP_NOT_FOUND);
	hap_replies_release(&rep, 1);
	assert_int_equal(hap_cmd_del_server(&c, "web", "o0", NULL), 0); /* not in maintenance */
	assert_int_equal(hap_rt_exec(rt, &c, &rep, NULL), 0);
	assert_int_equal(hap_reply_classify(c.kind, rep.text, rep.len), HAP_ERR);
	assert_non_null(strstr(rep.text, "maintenance"));
	hap_replies_release(&rep, 1);
	hap_rt_close(rt);
}

static bool has_session(void *arg)
{
	struct hap_rt *rt = arg;
	struct hap_stats st;
	stats(rt, "slowbe", &st);
	const struct hap_stat_row *r = hap_stats_find(&st, "slowbe", "slow");
	bool ok = r && r->scur >= 1;
	hap_stats_release(&st);
	return ok;
}

static pid_t start_slow_request(const char *out_path)
{
	char *url = xasprintf("http://127.0.0.1:%d/", fe_slow_port);
	const char *argv[] = { "curl", "-s", "-m", "10", "-w", " %{http_code}", url, NULL };
	struct proc_opts o = { .stdout_path = out_path, .new_pgrp = true, .die_with_parent = true };
	struct vxerr err;
	pid_t pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	free(url);
	if (pid < 0)
		fail_msg("%s", err.msg);
	fx_track(pid);
	return pid;
}

/* The delete recipe, repeated while the del answers "still has connections". */
static int del_until_deleted(struct hap_rt *rt, int64_t timeout_us)
{
	struct hap_cmd seq[3];
	assert_int_equal(hap_cmd_delete_sequence(seq, "slowbe", "slow", NULL), 0);
	int retries = 0;
	int64_t deadline = time_mono_us() + timeout_us;
	for (;;) {
		struct hap_reply r[3];
		assert_int_equal(hap_rt_batch(rt, seq, 3, r, NULL), 0);
		assert_int_equal(hap_reply_classify(seq[0].kind, r[0].text, r[0].len), HAP_OK);
		assert_int_equal(hap_reply_classify(seq[1].kind, r[1].text, r[1].len), HAP_OK);
		enum hap_status s = hap_reply_classify(seq[2].kind, r[2].text, r[2].len);
		hap_replies_release(r, 3);
		if (s == HAP_OK)
			return retries;
		assert_int_equal(s, HAP_RETRY);
		assert_true(time_mono_us() < deadline);
		retries++;
		time_sleep_us(50000);
	}
}

static void test_drain_maint_del_in_flight(void **state)
{
	(void)state;
	struct hap_rt *rt = open_rt();
	struct hap_server s = server("slow", origin.slow_port, 10);
	struct hap_cmd cmds[2];
	assert_int_equal(hap_cmd_add_server(&cmds[0], "slowbe", &s, NULL, NULL), 0);
	assert_int_equal(hap_cmd_enable_server(&cmds[1], "slowbe", "slow", NULL), 0);
	run_ok(rt, cmds, 2);
	char *dir = fx_tmpdir("inflight"), *out = fx_path(dir, "curl.out");
	pid_t curl = start_slow_request(out);
	assert_true(fx_wait(has_session, rt, 3000));
	assert_int_equal(hap_cmd_set_state(&cmds[0], "slowbe", "slow", HAP_ADMIN_DRAIN, NULL), 0);
	assert_int_equal(hap_cmd_set_state(&cmds[1], "slowbe", "slow", HAP_ADMIN_MAINT, NULL), 0);
	run_ok(rt, cmds, 2);
	int retries = del_until_deleted(rt, 8000000);
	assert_true(retries >= 1); /* "still has connections" while the request was in flight */
	int status = -1;
	assert_int_equal(proc_wait(curl, 10000, &status), 0);
	fx_untrack(curl);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	char *text = fx_read_file(out);
	assert_string_equal(text, "ok\n 200"); /* the request in flight completed */
	free(text);
	struct hap_servers_state ss;
	servers_state(rt, "slowbe", &ss);
	assert_int_equal(ss.n, 0);
	hap_servers_state_release(&ss);
	free(out);
	free(dir);
	hap_rt_close(rt);
}

static void test_injection_refused_before_socket(void **state)
{
	(void)state;
	struct hap_rt *rt = open_rt();
	struct hap_cmd c = { .text = "canary" };
	struct vxerr err;
	struct hap_server s = server("x;show info", origin.ports[0], 1);
	assert_int_equal(hap_cmd_add_server(&c, "bulk", &s, NULL, &err), -1);
	s = server("x", origin.ports[0], 1);
	strcpy(s.addr, "127.0.0.1\nadd server bulk/evil 127.0.0.1:1");
	assert_int_equal(hap_cmd_add_server(&c, "bulk", &s, NULL, &err), -1);
	assert_int_equal(hap_cmd_set_weight(&c, "bulk", "x\nshow version", 1, &err), -1);
	assert_string_equal(c.text, "canary");
	/* hand-made commands: the client refuses the whole batch, even its good first command */
	struct hap_cmd raw[2] = { { HAP_CMD_ADD_SERVER, "add server bulk/good 127.0.0.1:1" },
				  { HAP_CMD_ADD_SERVER, "add server bulk/y 127.0.0.1:1;add server bulk/evil 127.0.0.1:1" } };
	struct hap_reply r[2];
	assert_int_equal(hap_rt_batch(rt, raw, 2, r, &err), -1);
	assert_non_null(strstr(err.msg, "refused"));
	assert_null(r[0].text);
	assert_null(r[1].text);
	strcpy(raw[1].text, "add server bulk/z 127.0.0.1:1\nadd server bulk/evil 127.0.0.1:1");
	assert_int_equal(hap_rt_batch(rt, raw, 2, r, &err), -1);
	struct buf out = BUF_INIT(4096);
	assert_int_equal(hap_master_cmd(hap.master_sock, "show proc;reload", 1000000, &out, &err), -1);
	buf_release(&out);
	struct hap_servers_state ss;
	servers_state(rt, "bulk", &ss);
	assert_int_equal(ss.n, 0); /* neither good, y, z nor evil */
	hap_servers_state_release(&ss);
	assert_int_equal(hap_rt_connections(rt), 1);
	hap_rt_close(rt);
}

static void test_reply_bound(void **state)
{
	(void)state;
	struct hap_rt_opts o = { .timeout_us = 2000000, .max_reply = 200 };
	struct vxerr err;
	struct hap_rt *rt = hap_rt_open(hap.runtime_sock, &o, &err);
	assert_non_null(rt);
	struct hap_cmd c;
	struct hap_reply r;
	assert_int_equal(hap_cmd_show_stat(&c, NULL, NULL), 0);
	assert_int_equal(hap_rt_exec(rt, &c, &r, &err), -1);
	assert_non_null(strstr(err.msg, "larger than 200"));
	assert_int_equal(hap_cmd_set_weight(&c, "web", "o0", 10, NULL), 0);
	if (hap_rt_exec(rt, &c, &r, &err) != 0) /* a fresh connection */
		fail_msg("%s", err.msg);
	assert_int_equal(hap_reply_classify(c.kind, r.text, r.len), HAP_OK);
	hap_replies_release(&r, 1);
	assert_int_equal(hap_rt_connections(rt), 2);
	hap_rt_close(rt);
}

static void test_master_show_proc(void **state)
{
	(void)state;
	struct hap_proc_list l;
	struct vxerr err;
	if (hap_proc_show(hap.master_sock, 2000000, &l, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(l.master_pid, hap.pid);
	assert_int_equal(l.failed, 0);
	assert_true(hap_proc_current_worker(&l) > 0);
}

struct ident_wait {
	struct hap_rt *rt;
	struct hap_ident before;
};

static bool ident_changed(void *arg)
{
	struct ident_wait *w = arg;
	struct hap_ident now;
	return hap_rt_ident(w->rt, &now, NULL) == 0 && hap_ident_changed(&w->before, &now) &&
	       hap_rt_pid(w->rt) == now.pid;
}

/* Last: the reload drops every dynamic server. */
static void test_survives_reload(void **state)
{
	(void)state;
	struct hap_rt *rt = open_rt();
	struct ident_wait w = { rt, { 0, 0 } };
	struct vxerr err;
	assert_int_equal(hap_rt_ident(rt, &w.before, &err), 0);
	struct buf out = BUF_INIT(4096);
	assert_int_equal(hap_master_cmd(hap.master_sock, "reload", 5000000, &out, &err), 0);
	assert_int_equal(out.len, 0); /* 2.6 answers a reload with nothing */
	buf_release(&out);
	assert_true(fx_wait(ident_changed, &w, 10000));
	assert_true(hap_rt_connections(rt) >= 2);
	struct hap_servers_state ss;
	servers_state(rt, "web", &ss);
	assert_int_equal(ss.n, 0); /* FACTS 3.6: dynamic servers are gone after a reload */
	hap_servers_state_release(&ss);
	hap_rt_close(rt);
}

/* ---- fakes: what a real HAProxy does not do on demand ---- */

struct fake {
	char path[108];
	int listen_fd;
	int mode; /* 0: answer the prompt, then half a reply and close; 1: never answer */
	pthread_t thread;
};

/* Mode 0 answers the prompt and `show info`, then cuts its reply to anything else in half. */
static void fake_serve(int fd)
{
	static const char info[] = "Name: HAProxy\nVersion: 2.6.12\nPid: 4242\nUptime_sec: 1\nStopping: 0\n\n> ";
	char in[512];
	ssize_t n;
	/* Commands may come pipelined, several lines in one read: answer each line in turn. */
	while ((n = read(fd, in, sizeof(in) - 1)) > 0) {
		in[n] = '\0';
		for (char *line = in; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != '\0')) {
			if (strncmp(line, "prompt", 6) == 0) {
				(void)!write(fd, "\n> ", 3);
			} else if (strncmp(line, "show info", 9) == 0) {
				(void)!write(fd, info, sizeof(info) - 1);
			} else {
				(void)!write(fd, "1\n# be_id be_na", 15);
				return;
			}
		}
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	int fd = accept(f->listen_fd, NULL, NULL);
	if (fd < 0)
		return NULL;
	if (f->mode == 0) {
		fake_serve(fd);
	} else {
		char in[256];
		(void)!read(fd, in, sizeof(in));
		time_sleep_us(1500000);
	}
	close(fd);
	return NULL;
}

static void fake_start(struct fake *f, int mode)
{
	char *dir = fx_tmpdir("fake");
	snprintf(f->path, sizeof(f->path), "%s/fake.sock", dir);
	free(dir);
	f->mode = mode;
	f->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	strcpy(sa.sun_path, f->path);
	assert_int_equal(bind(f->listen_fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->listen_fd, 4), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	close(f->listen_fd);
}

static void test_fake_reply_cut_in_half(void **state)
{
	(void)state;
	struct fake f;
	fake_start(&f, 0);
	struct vxerr err;
	struct hap_rt_opts o = { .timeout_us = 2000000 };
	struct hap_rt *rt = hap_rt_open(f.path, &o, &err);
	assert_non_null(rt);
	assert_int_equal(hap_rt_pid(rt), 4242);
	struct hap_cmd c;
	struct hap_reply r;
	assert_int_equal(hap_cmd_show_servers_state(&c, NULL, NULL), 0);
	assert_int_equal(hap_rt_exec(rt, &c, &r, &err), -1);
	assert_non_null(strstr(err.msg, "closed after 0 of 1"));
	hap_rt_close(rt);
	fake_stop(&f);
}

static void test_fake_never_answers(void **state)
{
	(void)state;
	struct fake f;
	fake_start(&f, 1);
	struct vxerr err;
	struct hap_rt_opts o = { .timeout_us = 300000 };
	assert_null(hap_rt_open(f.path, &o, &err));
	assert_non_null(strstr(err.msg, "no answer within 300 ms")); /* the timeout, not the hang-up */
	fake_stop(&f);
	assert_null(hap_rt_open("/nonexistent/veltrix.sock", &o, &err));
	assert_non_null(strstr(err.msg, "/nonexistent/veltrix.sock"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_batch_100_adds),
		cmocka_unit_test(test_enable_and_traffic),
		cmocka_unit_test(test_weight_maxconn_state),
		cmocka_unit_test(test_drain_maint_del_in_flight),
		cmocka_unit_test(test_injection_refused_before_socket),
		cmocka_unit_test(test_reply_bound),
		cmocka_unit_test(test_master_show_proc),
		cmocka_unit_test(test_survives_reload),
		cmocka_unit_test(test_fake_reply_cut_in_half),
		cmocka_unit_test(test_fake_never_answers),
	};
	return cmocka_run_group_tests_name("hap_runtime", tests, setup, teardown);
}
