/* HAProxy as a managed process, for real: a rendered config accepted by `haproxy -c`, start in
 * master-worker mode, a reload through the master socket that keeps the rendered servers
 * (weights, drain), deletion of a server that came from the config file, a failed reload
 * detected while the old worker keeps serving, adopting a running master, and stop. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_haproxy.h"
#include "haproxy/hap.h"

static struct fx_origin origin;
static char *dir, *cfg_path, *runtime_sock, *master_sock, *log_path, *state_path;
static int web_port, raw_port, stats_port;
static char stats_bind[32];
static struct cfg_service svcs[2];
static struct vx_config cfg;
static struct hap_proc proc;

static struct cfg_service service(const char *name, enum svc_mode mode, enum check_type check, int port)
{
	struct cfg_service s = {
		.name = (char *)(uintptr_t)name, .bind_port = (uint16_t)port, .mode = mode, .balance = BAL_ROUNDROBIN,
		.health = { .type = check, .path = (char *)(uintptr_t)"/", .interval_us = 500000,
			    .timeout_us = 500000, .rise = 1, .fall = 2 },
		.timeouts = { 2000000, 10000000, 10000000, 2000000 }, .retries = 3, .http_reuse = REUSE_SAFE,
	};
	strcpy(s.bind_host, "127.0.0.1");
	return s;
}

static int setup(void **state)
{
	(void)state;
	fx_origin_start(&origin, 2);
	dir = fx_tmpdir("happroc");
	cfg_path = fx_path(dir, "haproxy.cfg");
	runtime_sock = fx_path(dir, "runtime.sock");
	master_sock = fx_path(dir, "master.sock");
	log_path = fx_path(dir, "haproxy.log");
	state_path = fx_path(dir, "server-state");
	web_port = net_free_port();
	raw_port = net_free_port();
	stats_port = net_free_port();
	snprintf(stats_bind, sizeof(stats_bind), "127.0.0.1:%d", stats_port);
	svcs[0] = service("web", SVC_MODE_HTTP, CHECK_HTTP, web_port);
	svcs[1] = service("raw", SVC_MODE_TCP, CHECK_TCP, raw_port);
	svcs[1].balance = BAL_LEASTCONN;
	cfg.haproxy.runtime_socket = runtime_sock;
	cfg.haproxy.maxconn = 2000;
	cfg.haproxy.nbthread = 1;
	cfg.haproxy.stats_bind = stats_bind;
	cfg.services = svcs;
	cfg.n_services = 2;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hap_proc_stop(&proc, 3000000);
	hap_proc_release(&proc);
	fx_origin_stop(&origin);
	free(dir);
	free(cfg_path);
	free(runtime_sock);
	free(master_sock);
	free(log_path);
	free(state_path);
	return 0;
}

static struct hap_server server(const char *name, const char *addr, int port, int weight, enum hap_admin a)
{
	struct hap_server s = { .port = (uint16_t)port, .weight = weight, .maxconn = 100, .admin = a };
	snprintf(s.name, sizeof(s.name), "%s", name);
	snprintf(s.addr, sizeof(s.addr), "%s", addr);
	return s;
}

static void write_rendered(const struct hap_pool *pools, size_t n)
{
	struct buf out = BUF_INIT(1u << 20);
	struct hap_render_opts o = { .state_file = state_path, .pools = pools, .n_pools = n };
	struct vxerr err;
	if (hap_render(&cfg, &o, &out, &err) != 0)
		fail_msg("%s", err.msg);
	fx_write_file(cfg_path, out.data);
	buf_release(&out);
}

static struct hap_proc_opts proc_opts(void)
{
	struct hap_proc_opts o = { .cfg_path = cfg_path, .master_socket = master_sock, .runtime_socket = runtime_sock,
				   .log_path = log_path, .state_file = state_path, .timeout_us = 10000000,
				   .die_with_parent = true };
	return o;
}

static struct hap_rt *open_rt(void)
{
	struct vxerr err;
	struct hap_rt *rt = hap_rt_open(runtime_sock, NULL, &err);
	if (!rt)
		fail_msg("%s", err.msg);
	return rt;
}

static void run_ok(struct hap_rt *rt, const struct hap_cmd *cmds, size_t n)
{
	struct hap_reply r[8];
	struct vxerr err;
	assert_true(n <= 8);
	if (hap_rt_batch(rt, cmds, n, r, &err) != 0)
		fail_msg("%s", err.msg);
	for (size_t i = 0; i < n; i++)
		if (hap_reply_classify(cmds[i].kind, r[i].text, r[i].len) != HAP_OK)
			fail_msg("'%s' -> '%s'", cmds[i].text, r[i].text);
	hap_replies_release(r, n);
}

static void servers_state(struct hap_rt *rt, struct hap_servers_state *out)
{
	struct hap_cmd c;
	struct hap_reply r;
	assert_int_equal(hap_cmd_show_servers_state(&c, "web", NULL), 0);
	assert_int_equal(hap_rt_exec(rt, &c, &r, NULL), 0);
	assert_int_equal(hap_parse_servers_state(r.text, r.len, out, NULL), 0);
	hap_replies_release(&r, 1);
}

/* What HAProxy holds now, as a pool to render (the controller does the same from its state). */
static size_t current_pool(struct hap_rt *rt, struct hap_server *out, size_t cap)
{
	struct hap_servers_state ss;
	servers_state(rt, &ss);
	size_t n = 0;
	for (size_t i = 0; i < ss.n && n < cap; i++, n++)
		out[n] = server(ss.rows[i].name, ss.rows[i].addr, (int)ss.rows[i].port, (int)ss.rows[i].uweight,
				hap_admin_from_bits(ss.rows[i].admin_state));
	hap_servers_state_release(&ss);
	return n;
}

static int64_t stot_after_traffic(struct hap_rt *rt, const char *srv, int requests)
{
	char *url = xasprintf("http://127.0.0.1:%d/", web_port);
	for (int i = 0; i < requests; i++) {
		char *body = NULL;
		assert_int_equal(fx_get(url, &body), 200);
		assert_string_equal(body, "ok\n");
		free(body);
	}
	free(url);
	struct hap_cmd c;
	struct hap_reply r;
	struct hap_stats st;
	assert_int_equal(hap_cmd_show_stat(&c, "web", NULL), 0);
	assert_int_equal(hap_rt_exec(rt, &c, &r, NULL), 0);
	assert_int_equal(hap_parse_stat(r.text, r.len, &st, NULL), 0);
	const struct hap_stat_row *row = hap_stats_find(&st, "web", srv);
	int64_t stot = row ? row->stot : -1;
	hap_stats_release(&st);
	hap_replies_release(&r, 1);
	return stot;
}

/* The delete recipe, again while HAProxy still holds connections to the server. */
static void delete_server(struct hap_rt *rt, const char *name)
{
	struct hap_cmd seq[3];
	assert_int_equal(hap_cmd_delete_sequence(seq, "web", name, NULL), 0);
	for (int attempt = 0;; attempt++) {
		struct hap_reply r[3];
		assert_int_equal(hap_rt_batch(rt, seq, 3, r, NULL), 0);
		enum hap_status st = hap_reply_classify(seq[2].kind, r[2].text, r[2].len);
		if (getenv("VX_DEBUG"))
			fprintf(stderr, "delete %s attempt %d: %s", name, attempt, r[2].text);
		hap_replies_release(r, 3);
		if (st == HAP_OK)
			return;
		assert_int_equal(st, HAP_RETRY);
		assert_true(attempt < 100);
		time_sleep_us(50000);
	}
}

struct up_wait {
	struct hap_rt *rt;
	const char *srv;
};

static bool server_up(void *arg)
{
	struct up_wait *w = arg;
	struct hap_cmd c;
	struct hap_reply r;
	struct hap_stats st;
	assert_int_equal(hap_cmd_show_stat(&c, "web", NULL), 0);
	assert_int_equal(hap_rt_exec(w->rt, &c, &r, NULL), 0);
	assert_int_equal(hap_parse_stat(r.text, r.len, &st, NULL), 0);
	const struct hap_stat_row *row = hap_stats_find(&st, "web", w->srv);
	bool up = row && strcmp(row->status, "UP") == 0;
	if (getenv("VX_DEBUG") && row)
		fprintf(stderr, "%s %s %s\n", w->srv, row->status, row->check_status);
	hap_stats_release(&st);
	hap_replies_release(&r, 1);
	return up;
}

static void test_render_accepted_by_haproxy(void **state)
{
	(void)state;
	struct hap_server web[4] = {
		server("a", "127.0.0.1", origin.ports[0], 10, HAP_ADMIN_READY),
		server("b", "127.0.0.1", origin.ports[1], 0, HAP_ADMIN_READY),
		server("c", "::1", origin.ports[1], 256, HAP_ADMIN_DRAIN),
		server("d.e:f-g_h", "127.0.0.2", 1, 1, HAP_ADMIN_MAINT),
	};
	struct hap_server raw[1] = { server("r1", "127.0.0.1", origin.ports[0], 5, HAP_ADMIN_READY) };
	struct hap_pool pools[2] = { { "web", web, 4 }, { "raw", raw, 1 } };
	write_rendered(pools, 2);
	struct buf out = BUF_INIT(1u << 20);
	struct vxerr err;
	if (hap_config_check(NULL, cfg_path, 10000000, &out, &err) != 0)
		fail_msg("%s\n%s", err.msg, fx_read_file(cfg_path));
	assert_non_null(strstr(out.data, "Configuration file is valid"));
	buf_release(&out);
	char *text = fx_read_file(cfg_path);
	char *bad = xasprintf("%s\nbackend broken\n    bogus_directive 1\n", text);
	fx_write_file(cfg_path, bad);
	assert_int_equal(hap_config_check(NULL, cfg_path, 10000000, NULL, &err), -1);
	assert_non_null(strstr(err.msg, "bogus_directive"));
	assert_non_null(strstr(err.msg, cfg_path));
	free(bad);
	free(text);
}

static void test_start_failure_reported(void **state)
{
	(void)state;
	fx_write_file(cfg_path, "global\n    stats socket /nonexistent-dir/x.sock level admin\nbogus_section\n");
	struct hap_proc_opts o = proc_opts();
	struct hap_proc p;
	struct vxerr err;
	assert_int_equal(hap_proc_start(&p, &o, &err), -1);
	assert_non_null(strstr(err.msg, "exited while starting"));
	assert_non_null(strstr(err.msg, "bogus_section"));
}

static void test_start_reload_keeps_servers(void **state)
{
	(void)state;
	struct hap_server web[1] = { server("o0", "127.0.0.1", origin.ports[0], 10, HAP_ADMIN_READY) };
	struct hap_pool pool = { "web", web, 1 };
	write_rendered(&pool, 1);
	struct hap_proc_opts o = proc_opts();
	struct vxerr err;
	if (hap_proc_start(&proc, &o, &err) != 0)
		fail_msg("%s", err.msg);
	assert_true(hap_proc_running(&proc));
	assert_true(proc.worker_pid > 0);
	int64_t first_worker = proc.worker_pid;
	struct hap_rt *rt = open_rt();
	assert_int_equal(hap_rt_pid(rt), first_worker);
	/* a dynamic server, as the controller adds them, and a weight change on the config one */
	struct hap_server o1 = server("o1", "127.0.0.1", origin.ports[1], 20, HAP_ADMIN_READY);
	struct hap_check chk;
	hap_check_from_health(&svcs[0].health, &chk);
	struct hap_cmd cmds[4];
	assert_int_equal(hap_cmd_add_server(&cmds[0], "web", &o1, &chk, NULL), 0);
	assert_int_equal(hap_cmd_enable_health(&cmds[1], "web", "o1", NULL), 0);
	assert_int_equal(hap_cmd_enable_server(&cmds[2], "web", "o1", NULL), 0);
	assert_int_equal(hap_cmd_set_weight(&cmds[3], "web", "o0", 5, NULL), 0);
	run_ok(rt, cmds, 4);
	struct up_wait w = { rt, "o1" }; /* a checked server takes traffic once its check passed */
	assert_true(fx_wait(server_up, &w, 5000));
	assert_true(stot_after_traffic(rt, "o1", 10) >= 1);
	/* re-render with what HAProxy holds now, reload, and nothing is lost */
	struct hap_server now[8];
	pool = (struct hap_pool){ "web", now, current_pool(rt, now, 8) };
	assert_int_equal(pool.n, 2);
	write_rendered(&pool, 1);
	assert_int_equal(hap_config_check(NULL, cfg_path, 10000000, NULL, &err), 0);
	if (hap_proc_reload(&proc, &err) != 0)
		fail_msg("%s", err.msg);
	assert_true(proc.worker_pid > 0 && proc.worker_pid != first_worker);
	struct hap_servers_state ss;
	servers_state(rt, &ss); /* the client moves to the new worker by itself */
	assert_int_equal(hap_rt_pid(rt), proc.worker_pid);
	assert_int_equal(ss.n, 2);
	assert_int_equal(hap_servers_state_find(&ss, "web", "o0")->uweight, 5);
	assert_int_equal(hap_servers_state_find(&ss, "web", "o1")->uweight, 20);
	hap_servers_state_release(&ss);
	assert_true(fx_wait(server_up, &w, 5000));
	assert_true(stot_after_traffic(rt, "o1", 10) >= 1);
	/* Verified here: `del server` accepts a server that came from the config file. */
	delete_server(rt, "o1");
	servers_state(rt, &ss);
	assert_int_equal(ss.n, 1);
	assert_null(hap_servers_state_find(&ss, "web", "o1"));
	hap_servers_state_release(&ss);
	hap_rt_close(rt);
}

static void test_drain_survives_reload_with_state_file(void **state)
{
	(void)state;
	struct hap_rt *rt = open_rt();
	struct hap_cmd c;
	assert_int_equal(hap_cmd_set_state(&c, "web", "o0", HAP_ADMIN_DRAIN, NULL), 0);
	run_ok(rt, &c, 1);
	struct hap_server now[8];
	struct hap_pool pool = { "web", now, current_pool(rt, now, 8) };
	assert_int_equal(now[0].admin, HAP_ADMIN_DRAIN);
	write_rendered(&pool, 1);
	struct vxerr err;
	if (hap_proc_reload(&proc, &err) != 0)
		fail_msg("%s", err.msg);
	struct hap_servers_state ss;
	servers_state(rt, &ss);
	const struct hap_srv_state *o0 = hap_servers_state_find(&ss, "web", "o0");
	assert_non_null(o0);
	/* The config says weight 0 (drained even without a state file); the saved state brings
	 * back the drain itself. HAProxy applies a saved weight only when the config's initial
	 * weight is unchanged, so the weight stays 0 until the controller sets it again. */
	assert_int_equal(hap_admin_from_bits(o0->admin_state), HAP_ADMIN_DRAIN);
	assert_int_equal(o0->uweight, 0);
	hap_servers_state_release(&ss);
	struct hap_cmd back[2];
	assert_int_equal(hap_cmd_set_weight(&back[0], "web", "o0", 5, NULL), 0);
	assert_int_equal(hap_cmd_set_state(&back[1], "web", "o0", HAP_ADMIN_READY, NULL), 0);
	run_ok(rt, back, 2);
	hap_rt_close(rt);
}

static void test_failed_reload_detected(void **state)
{
	(void)state;
	struct hap_rt *rt = open_rt();
	struct hap_server o2 = server("o2", "127.0.0.1", origin.ports[1], 7, HAP_ADMIN_READY);
	struct hap_cmd cmds[2];
	assert_int_equal(hap_cmd_add_server(&cmds[0], "web", &o2, NULL, NULL), 0);
	assert_int_equal(hap_cmd_enable_server(&cmds[1], "web", "o2", NULL), 0);
	run_ok(rt, cmds, 2);
	char *good = fx_read_file(cfg_path);
	char *bad = xasprintf("%s\nbackend broken\n    bogus_directive 1\n", good);
	fx_write_file(cfg_path, bad);
	int64_t worker = proc.worker_pid;
	struct vxerr err;
	assert_int_equal(hap_proc_reload(&proc, &err), -1);
	assert_non_null(strstr(err.msg, "reload failed"));
	assert_non_null(strstr(err.msg, "bogus_directive"));
	assert_int_equal(proc.worker_pid, worker);
	struct hap_proc_list l;
	assert_int_equal(hap_proc_show(master_sock, 2000000, &l, NULL), 0);
	assert_true(l.failed >= 1);
	assert_int_equal(hap_proc_current_worker(&l), worker);
	/* the old worker still serves, with its dynamic server */
	assert_true(stot_after_traffic(rt, "o2", 6) >= 1);
	assert_int_equal(hap_rt_pid(rt), worker);
	/* the next good reload clears the failure */
	fx_write_file(cfg_path, good);
	if (hap_proc_reload(&proc, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(hap_proc_show(master_sock, 2000000, &l, NULL), 0);
	assert_int_equal(l.failed, 0);
	free(good);
	free(bad);
	hap_rt_close(rt);
}

static void test_adopt(void **state)
{
	(void)state;
	struct hap_proc_opts o = proc_opts();
	struct hap_proc a;
	struct vxerr err;
	if (hap_proc_adopt(&a, &o, &err) != 0)
		fail_msg("%s", err.msg);
	assert_int_equal(a.master_pid, proc.master_pid);
	assert_int_equal(a.worker_pid, proc.worker_pid);
	assert_false(a.child);
	assert_true(hap_proc_running(&a));
	hap_proc_release(&a);
}

static void test_stop(void **state)
{
	(void)state;
	hap_proc_stop(&proc, 5000000);
	assert_false(hap_proc_running(&proc));
	struct hap_proc_list l;
	assert_int_equal(hap_proc_show(master_sock, 300000, &l, NULL), -1);
	struct hap_rt_opts ro = { .timeout_us = 300000 };
	assert_null(hap_rt_open(runtime_sock, &ro, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_accepted_by_haproxy),
		cmocka_unit_test(test_start_failure_reported),
		cmocka_unit_test(test_start_reload_keeps_servers),
		cmocka_unit_test(test_drain_survives_reload_with_state_file),
		cmocka_unit_test(test_failed_reload_detected),
		cmocka_unit_test(test_adopt),
		cmocka_unit_test(test_stop),
	};
	return cmocka_run_group_tests_name("hap_proc", tests, setup, teardown);
}
