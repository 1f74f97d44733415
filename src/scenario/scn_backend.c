/* Backends: `veltrix testserver` processes (or `veltrix agent -- veltrix testserver ...`), each
 * on its own port, and their lifecycle as the director steps it:
 *
 *   DOWN --start--> STARTING --listening--> UP --stop--> [DRAINING] --> STOPPING --exited--> DOWN
 *   UP/STARTING --kill--> DOWN
 *
 * DRAINING exists in the Veltrix stack with direct registration: the instance is marked
 * `draining` in etcd and keeps serving for service.drain_timeout before its SIGTERM, as an agent
 * does. With an agent, SIGTERM goes to the agent, which drains by itself. In the static stack,
 * SIGTERM goes straight to the server: nothing tells HAProxy.
 * Direct registration stands in for the agent where the agent would act on the process: a
 * killed instance is deregistered at once (an agent revokes its lease when its service exits).
 * It does not health-check: a frozen instance stays registered and HAProxy's checks take it out. */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/httpc.h"
#include "common/net.h"
#include "common/parse.h"
#include "common/timeutil.h"
#include "scenario/scn_int.h"

#define START_TIMEOUT_US (10 * USEC_PER_SEC)
#define STOP_TIMEOUT_US (6 * USEC_PER_SEC)

static bool direct(const struct scn_rt *rt)
{
	return rt->stack == SCN_STACK_VELTRIX && rt->s->registration == SCN_REG_DIRECT;
}

static bool agent(const struct scn_rt *rt)
{
	return rt->stack == SCN_STACK_VELTRIX && rt->s->registration == SCN_REG_AGENT;
}

/* True when something accepts connections on 127.0.0.1:port (the test server listens). */
static bool port_open(uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(0x7f000001) };
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (!ok && errno == EINPROGRESS) {
		struct pollfd p = { fd, POLLOUT, 0 };
		int err = 0;
		socklen_t len = sizeof(err);
		ok = poll(&p, 1, 20) == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0;
	}
	close(fd);
	return ok;
}

pid_t scn_bk_server_pid(const struct scn_rt *rt, const struct scn_bk *b)
{
	if (b->pid <= 0 || !agent(rt))
		return b->pid;
	/* The agent's wrapped command is its child: /proc/<pid>/task/<pid>/children. */
	char path[64], text[64] = "";
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)b->pid, (int)b->pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	text[strcspn(text, " \n")] = '\0';
	int64_t pid;
	return parse_i64(text, 2, INT32_MAX, &pid) == 0 ? (pid_t)pid : 0;
}

struct argv_buf {
	char *v[48];
	char store[16][64];
	int n, ns;
};

static void arg(struct argv_buf *a, const char *s)
{
	if (a->n < 47)
		a->v[a->n++] = (char *)(uintptr_t)s;
	a->v[a->n] = NULL;
}

static void argi(struct argv_buf *a, long long v)
{
	if (a->ns >= 16)
		return;
	snprintf(a->store[a->ns], sizeof(a->store[0]), "%lld", v);
	arg(a, a->store[a->ns++]);
}

static void argd(struct argv_buf *a, int64_t us)
{
	if (a->ns >= 16)
		return;
	dur_format(us, a->store[a->ns], sizeof(a->store[0]));
	arg(a, a->store[a->ns++]);
}

static void testserver_args(const struct scn_rt *rt, const struct scn_bk *b, struct argv_buf *a)
{
	const struct scn_group *g = b->group;
	arg(a, rt->opts->veltrix_bin);
	arg(a, "testserver");
	arg(a, "--port");
	argi(a, b->port);
	arg(a, "--capacity");
	argi(a, b->def->capacity);
	arg(a, "--service-time");
	if (a->ns < 16) {
		ts_dist_format(&g->service, a->store[a->ns], sizeof(a->store[0]));
		arg(a, a->store[a->ns++]);
	}
	arg(a, "--overload");
	arg(a, g->overload == TS_OVERLOAD_REJECT ? "reject" : "queue");
	arg(a, "--fail-rate");
	if (a->ns < 16) {
		snprintf(a->store[a->ns], sizeof(a->store[0]), "%.6g", g->fail_rate);
		arg(a, a->store[a->ns++]);
	}
	arg(a, "--instance");
	arg(a, b->def->name);
	arg(a, "--threads");
	argi(a, g->threads);
	arg(a, "--drain-timeout");
	arg(a, "5s");
}

static void agent_args(const struct scn_rt *rt, const struct scn_bk *b, struct argv_buf *a)
{
	arg(a, rt->opts->veltrix_bin);
	arg(a, "agent");
	arg(a, "--service");
	arg(a, SCN_SERVICE);
	arg(a, "--port");
	argi(a, b->port);
	arg(a, "--address");
	arg(a, "127.0.0.1");
	arg(a, "--instance");
	arg(a, b->def->name);
	arg(a, "--capacity");
	argi(a, b->def->capacity);
	arg(a, "--check");
	arg(a, "http:/healthz");
	arg(a, "--interval");
	arg(a, "500ms");
	arg(a, "--ttl");
	argd(a, rt->s->service.lease_ttl_us);
	arg(a, "--drain-timeout");
	argd(a, rt->s->service.drain_us);
	arg(a, "--etcd");
	arg(a, rt->etcd.url);
	arg(a, "--");
}

static void fail(struct scn_bk *b, const char *why)
{
	b->failed = true;
	snprintf(b->fail_why, sizeof(b->fail_why), "%.90s", why);
}

void scn_bk_start(struct scn_rt *rt, struct scn_bk *b)
{
	char log[320], role[64];
	struct argv_buf a = { .n = 0 };
	struct vxerr err;
	b->failed = false;
	if (b->state != BK_DOWN)
		return fail(b, "already running");
	if (b->pid > 0 && !scn_procs_exited(&rt->procs, b->pid)) { /* an agent whose server was killed */
		scn_procs_expect_exit(&rt->procs, b->pid);
		scn_procs_signal(&rt->procs, b->pid, SIGKILL);
	}
	if (agent(rt))
		agent_args(rt, b, &a);
	testserver_args(rt, b, &a);
	snprintf(log, sizeof(log), "%s/%s.log", rt->work, b->def->name);
	snprintf(role, sizeof(role), "backend %s", b->def->name);
	b->pid = scn_spawn(&rt->procs, a.v, log, role, &err);
	if (b->pid < 0) {
		b->pid = 0;
		return fail(b, err.msg);
	}
	b->service = b->group->service;
	b->fail_rate = b->group->fail_rate;
	b->frozen = false;
	b->have_counters = false;
	b->state = BK_STARTING;
	b->deadline_us = time_mono_us() + START_TIMEOUT_US;
}

static void send_term(struct scn_rt *rt, struct scn_bk *b)
{
	pid_t target = agent(rt) ? b->pid : scn_bk_server_pid(rt, b);
	scn_procs_signal(&rt->procs, target, SIGCONT);
	scn_procs_signal(&rt->procs, target, SIGTERM);
	b->state = BK_STOPPING;
	b->deadline_us = time_mono_us() + STOP_TIMEOUT_US + (agent(rt) ? rt->s->service.drain_us : 0);
}

void scn_bk_stop(struct scn_rt *rt, struct scn_bk *b)
{
	b->failed = false;
	if (b->state != BK_UP && b->state != BK_STARTING)
		return fail(b, "not running");
	scn_procs_expect_exit(&rt->procs, b->pid);
	if (b->frozen)
		scn_procs_signal(&rt->procs, scn_bk_server_pid(rt, b), SIGCONT);
	b->frozen = false;
	if (direct(rt) && b->state == BK_UP) {
		scn_reg_put(rt->reg, b->idx, b->def->name, b->port, b->def->capacity, "draining");
		b->state = BK_DRAINING;
		b->deadline_us = time_mono_us() + rt->s->service.drain_us;
		return;
	}
	send_term(rt, b);
}

void scn_bk_kill(struct scn_rt *rt, struct scn_bk *b)
{
	b->failed = false;
	if (b->state == BK_DOWN)
		return fail(b, "not running");
	pid_t server = scn_bk_server_pid(rt, b);
	scn_procs_expect_exit(&rt->procs, b->pid);
	if (server > 0)
		kill(server, SIGKILL); /* only the server: in agent mode the agent sees its instance die */
	if (direct(rt)) /* what an agent does when its service exits: revoke the lease at once */
		scn_reg_remove(rt->reg, b->idx);
	b->frozen = false;
	b->state = BK_DOWN;
}

/* Before the clock starts, a backend that exits at once most likely lost its port to another
 * process between net_free_port and its bind: it gets another port (up to 3 times). */
static bool retry_on_new_port(struct scn_rt *rt, struct scn_bk *b)
{
	int port = net_free_port();
	if (rt->t0_us != 0 || b->attempts >= 3 || port <= 0)
		return false;
	b->attempts++;
	b->port = (uint16_t)port;
	b->state = BK_DOWN;
	scn_bk_start(rt, b);
	return true;
}

static void step_starting(struct scn_rt *rt, struct scn_bk *b)
{
	if (scn_procs_exited(&rt->procs, b->pid)) {
		b->state = BK_DOWN;
		if (retry_on_new_port(rt, b))
			return;
		return fail(b, "exited while starting (see its log)");
	}
	if (port_open(b->port)) {
		b->state = BK_UP;
		if (direct(rt))
			scn_reg_put(rt->reg, b->idx, b->def->name, b->port, b->def->capacity, "up");
		return;
	}
	if (time_mono_us() > b->deadline_us) {
		scn_procs_expect_exit(&rt->procs, b->pid);
		scn_procs_signal(&rt->procs, b->pid, SIGKILL);
		b->state = BK_DOWN;
		fail(b, "did not listen within 10s");
	}
}

static void step_stopping(struct scn_rt *rt, struct scn_bk *b)
{
	if (scn_procs_exited(&rt->procs, b->pid)) {
		b->state = BK_DOWN;
		if (direct(rt))
			scn_reg_remove(rt->reg, b->idx);
		return;
	}
	if (time_mono_us() > b->deadline_us) {
		scn_procs_signal(&rt->procs, b->pid, SIGKILL);
		fail(b, "did not stop within its drain timeout: killed");
		b->deadline_us = INT64_MAX;
	}
}

void scn_bk_step(struct scn_rt *rt, struct scn_bk *b)
{
	switch (b->state) {
	case BK_STARTING:
		step_starting(rt, b);
		break;
	case BK_DRAINING:
		if (time_mono_us() >= b->deadline_us)
			send_term(rt, b);
		break;
	case BK_STOPPING:
		step_stopping(rt, b);
		break;
	default:
		break;
	}
}

int scn_bk_set(struct scn_bk *b, const struct ts_dist *service, double fail_rate, struct vxerr *err)
{
	char target[256], dist[64] = "", rate[32] = "";
	if (service)
		ts_dist_format(service, dist, sizeof(dist));
	if (fail_rate >= 0)
		snprintf(rate, sizeof(rate), "%.6g", fail_rate);
	snprintf(target, sizeof(target), "/_testserver/set?%s%s%s%s%s", service ? "service_time=" : "", dist,
		 service && fail_rate >= 0 ? "&" : "", fail_rate >= 0 ? "fail_rate=" : "", rate);
	struct vxerr why;
	int status = httpc_request(b->port, "POST", target, USEC_PER_SEC, NULL, &why);
	if (status != 200)
		return vxerr_set(err, "%s: %s", b->def->name, status < 0 ? why.msg : "the test server refused the change");
	if (service)
		b->service = *service;
	if (fail_rate >= 0)
		b->fail_rate = fail_rate;
	return 0;
}
