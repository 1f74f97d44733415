/* The stack under test, on loopback in the run's directory.
 *
 * veltrix: a local etcd, `veltrix controller -c <dir>/veltrix.yaml` (managed mode: it renders
 *   haproxy.cfg and starts HAProxy in master-worker mode), and the registrations.
 * static: the same service rendered by the same renderer (hap_render) with the initial backends
 *   listed as fixed servers: equal weights, no maxconn, the algorithm of a hand-written file
 *   (roundrobin unless the scenario says otherwise). HAProxy is started by the runner.
 * Both sides get the same HAProxy settings (retries, redispatch, retry-on, timeouts, checks),
 * so the difference measured is who manages the server list and how. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "scenario/scn_int.h"

#define START_TIMEOUT_US (20 * USEC_PER_SEC)
#define HAP_TIMEOUT_US (10 * USEC_PER_SEC)

static const char *const balance_names[] = { "roundrobin", "leastconn", "first", "random" };
static const char *const reuse_names[] = { "never", "safe", "aggressive", "always" };

static void dur(char *out, size_t cap, int64_t us)
{
	dur_format(us, out, cap);
}

static int balance_of(const struct scn_rt *rt)
{
	if (rt->s->service.balance >= 0)
		return rt->s->service.balance;
	return rt->stack == SCN_STACK_STATIC ? BAL_ROUNDROBIN : BAL_LEASTCONN;
}

/* The configuration both stacks load (the static one only to render its haproxy.cfg). */
static void config_yaml(const struct scn_rt *rt, struct buf *b)
{
	const struct scn_service *v = &rt->s->service;
	char ci[32], ct[32], tc[32], ts[32], tq[32], tcl[32], dr[32], ttl[32];
	dur(ci, sizeof(ci), v->check_interval_us);
	dur(ct, sizeof(ct), v->check_timeout_us);
	dur(tc, sizeof(tc), v->connect_us);
	dur(ts, sizeof(ts), v->server_us);
	dur(tq, sizeof(tq), v->queue_us);
	dur(tcl, sizeof(tcl), v->client_us);
	dur(dr, sizeof(dr), v->drain_us > 0 ? v->drain_us : USEC_PER_SEC);
	dur(ttl, sizeof(ttl), v->lease_ttl_us);
	buf_printf(b, "# Written by `veltrix scenario` for one run.\netcd:\n");
	if (rt->stack == SCN_STACK_VELTRIX)
		buf_printf(b, "  endpoints: [%s]\n", rt->etcd.url);
	buf_printf(b, "  prefix: %s\n  dial_timeout: 500ms\n  request_timeout: 1s\n", SCN_PREFIX);
	buf_printf(b, "haproxy:\n  state_dir: %s/haproxy\n  nbthread: 1\n  maxconn: 4096\n", rt->work);
	buf_printf(b, "controller:\n  resync_interval: 5s\n  feedback_interval: 1s\n");
	buf_printf(b, "agent:\n  ttl: %s\n", ttl);
	buf_printf(b, "services:\n  - name: %s\n    bind: 127.0.0.1:%u\n", SCN_SERVICE, (unsigned)rt->front_port);
	buf_printf(b, "    balance: %s\n    http_reuse: %s\n    retries: %lld\n", balance_names[balance_of(rt)],
		   reuse_names[v->http_reuse], (long long)v->retries);
	buf_printf(b, "    health: {type: http, path: /healthz, interval: %s, timeout: %s, rise: %lld, fall: %lld}\n", ci, ct,
		   (long long)v->rise, (long long)v->fall);
	buf_printf(b, "    timeouts: {connect: %s, client: %s, server: %s, queue: %s}\n", tc, tcl, ts, tq);
	buf_printf(b, "    drain_timeout: %s\n    default_capacity: 100\n", dr);
}

static int write_file(const char *path, const char *text, size_t len, struct vxerr *err)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return vxerr_set(err, "cannot write %s", path);
	bool ok = fwrite(text, 1, len, f) == len;
	ok = fclose(f) == 0 && ok;
	return ok ? 0 : vxerr_set(err, "cannot write %s", path);
}

static int write_config(struct scn_rt *rt, const char *path, struct vxerr *err)
{
	struct buf b = BUF_INIT(64 * 1024);
	config_yaml(rt, &b);
	int rc = write_file(path, b.data, b.len, err);
	buf_release(&b);
	return rc;
}

/* ---- veltrix ---- */

int scn_controller_start(struct scn_rt *rt, struct vxerr *err)
{
	char yaml[300], log[300];
	snprintf(yaml, sizeof(yaml), "%s/veltrix.yaml", rt->work);
	snprintf(log, sizeof(log), "%s/controller.log", rt->work);
	const char *argv[] = { rt->opts->veltrix_bin, "controller", "-c", yaml, NULL };
	rt->controller = scn_spawn(&rt->procs, (char *const *)(uintptr_t)argv, log, "controller", err);
	return rt->controller > 0 ? 0 : -1;
}

/* The controller starts HAProxy; the master's pid comes from its master socket. */
static int adopt_haproxy(struct scn_rt *rt, struct vxerr *err)
{
	int64_t deadline = time_mono_us() + START_TIMEOUT_US;
	struct hap_proc_list l;
	while (hap_proc_show(rt->master_sock, 200000, &l, NULL) != 0 || hap_proc_current_worker(&l) == 0) {
		if (scn_procs_exited(&rt->procs, rt->controller))
			return vxerr_set(err, "the controller exited before HAProxy ran; see %s/controller.log", rt->work);
		if (time_mono_us() > deadline)
			return vxerr_set(err, "HAProxy did not start within 20s; see %s/controller.log", rt->work);
		time_sleep_us(50000);
	}
	rt->haproxy_master = (pid_t)l.master_pid;
	scn_procs_adopt(&rt->procs, rt->haproxy_master, "haproxy");
	return 0;
}

static int start_veltrix(struct scn_rt *rt, struct vxerr *err)
{
	char dir[300];
	snprintf(dir, sizeof(dir), "%s/etcd", rt->work);
	if (etcd_local_start(&rt->etcd, dir, NULL, 0, true, START_TIMEOUT_US, err) != 0)
		return vxerr_prefix(err, "local etcd: ");
	rt->etcd_up = true;
	scn_procs_adopt(&rt->procs, rt->etcd.pid, "etcd");
	snprintf(rt->cfg_path, sizeof(rt->cfg_path), "%s/veltrix.yaml", rt->work);
	if (write_config(rt, rt->cfg_path, err) != 0 || scn_controller_start(rt, err) != 0 || adopt_haproxy(rt, err) != 0)
		return -1;
	if (rt->s->registration == SCN_REG_DIRECT) {
		rt->reg = scn_reg_start(rt->etcd.url, rt->s->service.lease_ttl_us / USEC_PER_SEC, err);
		if (!rt->reg)
			return -1;
	}
	return 0;
}

/* ---- static ---- */

static int render_static(struct scn_rt *rt, const char *path, struct vxerr *err)
{
	struct cfg_diags d;
	struct buf yaml = BUF_INIT(64 * 1024), out = BUF_INIT(1024 * 1024);
	struct hap_server servers[SCN_MAX_BACKENDS];
	size_t n = 0;
	int rc = -1;
	cfg_diags_init(&d, 0);
	config_yaml(rt, &yaml);
	struct vx_config *cfg = cfg_load_buffer("static.yaml", yaml.data, yaml.len, &d);
	if (!cfg) {
		vxerr_set(err, "static configuration: %s", d.n ? d.items[0].message : "invalid");
		goto out;
	}
	for (size_t i = 0; i < rt->n_bks; i++) {
		if (!rt->bks[i].def->initial)
			continue;
		struct hap_server *sv = &servers[n++];
		memset(sv, 0, sizeof(*sv));
		snprintf(sv->name, sizeof(sv->name), "%s", rt->bks[i].def->name);
		snprintf(sv->addr, sizeof(sv->addr), "127.0.0.1");
		sv->port = rt->bks[i].port;
		sv->weight = 1;
		sv->admin = HAP_ADMIN_READY;
	}
	struct hap_pool pool = { SCN_SERVICE, servers, n };
	struct hap_render_opts ro = { .pools = &pool, .n_pools = 1 };
	if (hap_render(cfg, &ro, &out, err) != 0 || write_file(path, out.data, out.len, err) != 0)
		goto out;
	rc = 0;
out:
	cfg_free(cfg);
	cfg_diags_release(&d);
	buf_release(&yaml);
	buf_release(&out);
	return rc;
}

static int start_static(struct scn_rt *rt, struct vxerr *err)
{
	char log[300];
	snprintf(rt->cfg_path, sizeof(rt->cfg_path), "%s/haproxy/haproxy.cfg", rt->work);
	snprintf(log, sizeof(log), "%s/haproxy/haproxy.log", rt->work);
	if (render_static(rt, rt->cfg_path, err) != 0)
		return -1;
	struct hap_proc_opts o = { .cfg_path = rt->cfg_path, .master_socket = rt->master_sock,
				   .runtime_socket = rt->runtime_sock, .log_path = log, .timeout_us = HAP_TIMEOUT_US,
				   .die_with_parent = true };
	if (hap_proc_start(&rt->hap, &o, err) != 0)
		return vxerr_prefix(err, "static haproxy: ");
	rt->haproxy_master = rt->hap.master_pid;
	scn_procs_adopt(&rt->procs, rt->haproxy_master, "haproxy");
	return 0;
}

int scn_stack_start(struct scn_rt *rt, struct vxerr *err)
{
	char dir[220];
	snprintf(dir, sizeof(dir), "%s/haproxy", rt->work);
	if (mkdir(dir, 0700) != 0)
		return vxerr_set(err, "cannot create %s", dir);
	snprintf(rt->master_sock, sizeof(rt->master_sock), "%s/master.sock", dir);
	snprintf(rt->runtime_sock, sizeof(rt->runtime_sock), "%s/runtime.sock", dir);
	int port = net_free_port();
	if (port <= 0)
		return vxerr_set(err, "no free loopback port for the frontend");
	rt->front_port = (uint16_t)port;
	return rt->stack == SCN_STACK_VELTRIX ? start_veltrix(rt, err) : start_static(rt, err);
}

/* ---- readiness, reload, stop ---- */

static int count_up(struct scn_rt *rt, struct hap_rt *h, char *missing, size_t cap)
{
	struct hap_cmd cmd;
	struct hap_reply reply = { 0 };
	struct hap_stats st = { 0 };
	int n_missing = 0;
	hap_cmd_show_stat(&cmd, SCN_SERVICE, NULL);
	if (hap_rt_exec(h, &cmd, &reply, NULL) != 0 || hap_parse_stat(reply.text, reply.len, &st, NULL) != 0) {
		hap_replies_release(&reply, 1);
		return -1;
	}
	missing[0] = '\0';
	for (size_t i = 0; i < rt->n_bks; i++) {
		if (!rt->bks[i].def->initial)
			continue;
		const struct hap_stat_row *row = hap_stats_find(&st, SCN_SERVICE, rt->bks[i].def->name);
		if (rt->bks[i].state != BK_UP || !row || strcmp(row->status, "UP") != 0) {
			size_t l = strlen(missing);
			snprintf(missing + l, cap - l, "%s%s", l ? ", " : "", rt->bks[i].def->name);
			n_missing++;
		}
	}
	hap_stats_release(&st);
	hap_replies_release(&reply, 1);
	return n_missing;
}

int scn_stack_wait_ready(struct scn_rt *rt, int64_t timeout_us, struct vxerr *err)
{
	struct hap_rt_opts ro = { .timeout_us = 2 * USEC_PER_SEC };
	int64_t deadline = time_mono_us() + timeout_us;
	struct hap_rt *h = hap_rt_open(rt->runtime_sock, &ro, err);
	char missing[512] = "";
	int rc = -1;
	if (!h)
		return vxerr_prefix(err, "haproxy runtime socket: ");
	while (time_mono_us() < deadline && !scn_interrupted()) {
		for (size_t i = 0; i < rt->n_bks; i++)
			scn_bk_step(rt, &rt->bks[i]);
		if (count_up(rt, h, missing, sizeof(missing)) == 0) {
			rc = 0;
			break;
		}
		time_sleep_us(50000);
	}
	if (rc != 0)
		vxerr_set(err, "HAProxy did not route to every backend within %llds (not up: %s); logs in %s",
			  (long long)(timeout_us / USEC_PER_SEC), missing[0] ? missing : "?", rt->work);
	hap_rt_close(h);
	return rc;
}

int scn_stack_reload(struct scn_rt *rt, struct vxerr *err)
{
	if (rt->stack == SCN_STACK_STATIC)
		return hap_proc_reload(&rt->hap, err);
	struct hap_proc p = { 0 };
	char cfg[300];
	snprintf(cfg, sizeof(cfg), "%s/haproxy/haproxy.cfg", rt->work);
	struct hap_proc_opts o = { .cfg_path = cfg, .master_socket = rt->master_sock, .runtime_socket = rt->runtime_sock,
				   .timeout_us = HAP_TIMEOUT_US };
	int rc = hap_proc_adopt(&p, &o, err) == 0 ? hap_proc_reload(&p, err) : -1;
	hap_proc_release(&p);
	return rc;
}

int scn_stack_server_status(struct scn_rt *rt, const char *server, char *out, size_t cap)
{
	struct hap_rt_opts ro = { .timeout_us = 500000 };
	struct hap_cmd cmd;
	struct hap_reply reply = { 0 };
	struct hap_stats st = { 0 };
	int rc = -1;
	if (!rt->hrt)
		rt->hrt = hap_rt_open(rt->runtime_sock, &ro, NULL);
	hap_cmd_show_stat(&cmd, SCN_SERVICE, NULL);
	if (!rt->hrt || hap_rt_exec(rt->hrt, &cmd, &reply, NULL) != 0) {
		hap_rt_close(rt->hrt);
		rt->hrt = NULL;
		goto out;
	}
	if (hap_parse_stat(reply.text, reply.len, &st, NULL) != 0)
		goto out;
	const struct hap_stat_row *row = hap_stats_find(&st, SCN_SERVICE, server);
	if (row) {
		snprintf(out, cap, "%s", row->status);
		rc = 0;
	}
out:
	hap_stats_release(&st);
	hap_replies_release(&reply, 1);
	return rc;
}

void scn_stack_stop(struct scn_rt *rt)
{
	hap_rt_close(rt->hrt);
	rt->hrt = NULL;
	scn_reg_stop(rt->reg);
	rt->reg = NULL;
	scn_procs_stop_all(&rt->procs, 3000);
	rt->etcd.pid = 0; /* stopped above with every other process */
	etcd_local_release(&rt->etcd);
	rt->hap.master_pid = 0;
	hap_proc_release(&rt->hap);
}
