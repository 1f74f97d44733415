/* The agent's lifecycle (see agent.h): checks decide up/down, signals start the drain, the
 * supervised service is started, forwarded signals and stopped last. The etcd side is in
 * agent_reg.c; both meet in agent_reg_sync. */
#include "agent/agent_int.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/proc.h"
#include "common/strutil.h"
#include "common/timeutil.h"

#define STOP_DEADLINE_US (5 * USEC_PER_SEC) /* revoking the lease at the end */

static const int handled_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2 };
#define N_SIGNALS (sizeof(handled_signals) / sizeof(handled_signals[0]))

/* ---- options ---- */

static int check_timings(const struct check_spec *c, struct vxerr *err)
{
	if (c->interval_us <= 0 || c->timeout_us <= 0)
		return vxerr_set(err, "check interval and timeout must be positive");
	if (c->timeout_us > c->interval_us)
		return vxerr_set(err, "check timeout must not exceed the interval (a check ends before the next is due)");
	if (c->rise < 1 || c->rise > 100 || c->fall < 1 || c->fall > 100)
		return vxerr_set(err, "rise and fall must be within 1..100");
	if (c->kind == CHECK_KIND_EXEC && (!c->command || !c->command[0]))
		return vxerr_set(err, "exec check without a command");
	return 0;
}

static int check_opts(const struct agent_opts *o, struct vxerr *err)
{
	if (!o->service || !reg_service_name_valid(o->service, strlen(o->service)))
		return vxerr_set(err, "service '%s' must match [a-z0-9][a-z0-9_-]{0,62}", o->service ? o->service : "");
	if (o->port == 0)
		return vxerr_set(err, "a port (1..65535) is required");
	if (o->instance && !reg_instance_name_valid(o->instance, strlen(o->instance)))
		return vxerr_set(err, "instance '%s' must match [A-Za-z0-9][A-Za-z0-9._:-]{0,63}", o->instance);
	if (o->capacity < 0 || o->capacity > REG_CAPACITY_MAX)
		return vxerr_set(err, "capacity %d outside 1..%d", (int)o->capacity, REG_CAPACITY_MAX);
	if (o->ttl_us < AGENT_TTL_MIN_US || o->ttl_us % USEC_PER_SEC != 0)
		return vxerr_set(err, "ttl must be whole seconds, at least 2s (etcd lease TTLs are seconds)");
	if (o->drain_timeout_us < 0 || o->load_report_interval_us <= 0)
		return vxerr_set(err, "drain timeout must not be negative, the load report interval must be positive");
	if (!o->etcd)
		return vxerr_set(err, "no etcd endpoints");
	return check_timings(&o->check, err);
}

/* Sets the address (and the instance id and key derived from it). */
static int set_address(struct agent *a, const char *address, const char *prefix, struct vxerr *err)
{
	char canon[NET_IP_MAX];
	if (net_ip_canon(address, canon, sizeof(canon)) < 0)
		return vxerr_set(err, "address '%s' is not an IPv4 or IPv6 literal", address);
	str_copy(a->check.address, sizeof(a->check.address), canon);
	if (!a->instance_given && agent_instance_default(canon, a->port, a->instance, sizeof(a->instance)) != 0)
		return vxerr_set(err, "cannot derive an instance id from %s", canon);
	return reg_key_build(prefix, a->service, a->instance, a->key, sizeof(a->key), err);
}

static char **copy_argv(char *const *argv)
{
	size_t n = 0;
	while (argv[n])
		n++;
	char **out = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		out[i] = xstrdup(argv[i]);
	return out;
}

static void copy_opts(struct agent *a, const struct agent_opts *o)
{
	str_copy(a->service, sizeof(a->service), o->service);
	a->instance_given = o->instance != NULL;
	if (o->instance)
		str_copy(a->instance, sizeof(a->instance), o->instance);
	a->port = o->port;
	a->capacity = o->capacity;
	a->check = o->check;
	a->check_path = xstrdup(o->check.path ? o->check.path : "/");
	a->check_command = xstrdup(o->check.command ? o->check.command : "");
	a->check.path = a->check_path;
	a->check.command = a->check_command;
	a->check.port = o->port;
	a->ttl_s = o->ttl_us / USEC_PER_SEC;
	a->drain_timeout_us = o->drain_timeout_us;
	a->load_report_interval_us = o->load_report_interval_us;
	str_copy(a->prefix, sizeof(a->prefix), o->prefix ? o->prefix : REG_DEFAULT_PREFIX);
	a->command = o->command && o->command[0] ? copy_argv(o->command) : NULL;
}

struct agent *agent_new(struct ev_loop *loop, const struct agent_opts *o, struct vxerr *err)
{
	if (check_opts(o, err) != 0)
		return NULL;
	struct agent *a = xcalloc(1, sizeof(*a));
	a->loop = loop;
	a->share_lock_fd = a->share_member_fd = a->share_orphan_fd = -1;
	copy_opts(a, o);
	char address[NET_IP_MAX];
	a->address_given = a->address_final = o->address != NULL;
	if (o->address)
		str_copy(address, sizeof(address), o->address);
	else
		a->address_final = agent_address_default(o->port, address, sizeof(address));
	char *probe = NULL;
	if (set_address(a, address, a->prefix, err) != 0 || !(probe = agent_value(a, err)) ||
	    agent_reg_init(a, o, err) != 0) {
		free(probe);
		agent_free(a);
		return NULL;
	}
	free(probe);
	return a;
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	checker_free(a->checker);
	agent_reg_release(a);
	for (size_t i = 0; a->command && a->command[i]; i++)
		free(a->command[i]);
	free(a->command);
	free(a->check_path);
	free(a->check_command);
	free(a);
}

/* ---- the end ---- */

static int status_code(int st)
{
	return WIFEXITED(st) ? WEXITSTATUS(st) : WIFSIGNALED(st) ? 128 + WTERMSIG(st) : 1;
}

static void finish(struct agent *a)
{
	a->phase = AGENT_DONE;
	if (a->child > 0 && a->child_exited)
		a->exit_code = status_code(a->child_status);
	ev_break(a->loop, EVBREAK_ALL);
}

void agent_stopped(struct agent *a)
{
	if (a->stop_done)
		return;
	a->stop_done = true;
	ev_timer_stop(a->loop, &a->stop_timer);
	if (a->child > 0 && !a->child_exited) {
		char grace[32];
		dur_format(AGENT_STOP_GRACE_US, grace, sizeof(grace));
		log_info("stopping the service", "pid=%d signal=SIGTERM grace=%s", (int)a->child, grace);
		kill(-a->child, SIGTERM);
		ev_timer_start(a->loop, &a->grace_timer);
		return;
	}
	finish(a);
}

static void begin_stopping(struct agent *a)
{
	if (a->phase >= AGENT_STOPPING)
		return;
	a->phase = AGENT_STOPPING;
	if (a->checker)
		checker_stop(a->checker);
	ev_timer_stop(a->loop, &a->drain_timer);
	ev_timer_stop(a->loop, &a->load_timer);
	ev_timer_stop(a->loop, &a->retry);
	a->backoff_us = 0;
	ev_timer_start(a->loop, &a->stop_timer);
	agent_reg_sync(a);
}

static void start_drain(struct agent *a, int signum)
{
	char dur[32];
	if (a->phase != AGENT_RUNNING) {
		log_info("already stopping", "signal=%s", log_q(strsignal(signum)));
		return;
	}
	a->phase = AGENT_DRAINING;
	if (a->checker)
		checker_stop(a->checker);
	ev_timer_stop(a->loop, &a->load_timer);
	if (!a->written && !a->inflight) {
		log_info("stopping: not registered, nothing to drain", "signal=%s", log_q(strsignal(signum)));
		begin_stopping(a);
		return;
	}
	dur_format(a->drain_timeout_us, dur, sizeof(dur));
	log_info("draining", "signal=%s key=%s drain_timeout=%s", log_q(strsignal(signum)), a->key, dur);
	ev_timer_stop(a->loop, &a->retry); /* write `draining` now, not after a backoff */
	a->backoff_us = 0;
	agent_reg_sync(a);
	ev_timer_set(&a->drain_timer, (double)a->drain_timeout_us / 1e6, 0);
	ev_timer_start(a->loop, &a->drain_timer);
}

/* ---- watchers ---- */

static void on_drain_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct agent *a = w->data;
	log_info("drain time is over", "key=%s", a->key);
	begin_stopping(a);
}

static void on_stop_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	agent_reg_give_up(w->data);
}

static void on_grace_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct agent *a = w->data;
	log_warn("the service did not exit after SIGTERM: killing it", "pid=%d signal=SIGKILL", (int)a->child);
	kill(-a->child, SIGKILL);
}

static void describe_status(int st, char *out, size_t cap)
{
	if (WIFEXITED(st))
		snprintf(out, cap, "exit %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(out, cap, "killed by %s", strsignal(WTERMSIG(st)));
	else
		snprintf(out, cap, "status %d", st);
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
	(void)revents;
	struct agent *a = w->data;
	char how[64];
	ev_child_stop(loop, w);
	ev_timer_stop(loop, &a->grace_timer);
	a->child_exited = true;
	a->child_status = w->rstatus;
	describe_status(w->rstatus, how, sizeof(how));
	if (a->phase == AGENT_RUNNING)
		log_warn("the service exited on its own: deregistering", "pid=%d status=%s", (int)a->child, log_q(how));
	else
		log_info("the service exited", "pid=%d status=%s", (int)a->child, log_q(how));
	if (a->phase < AGENT_STOPPING)
		begin_stopping(a); /* nothing left to drain */
	else if (a->stop_done)
		finish(a);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)loop;
	(void)revents;
	struct agent *a = w->data;
	int sig = w->signum;
	if (sig != SIGTERM && sig != SIGINT) {
		if (a->child > 0 && !a->child_exited)
			kill(-a->child, sig);
		log_info(a->child > 0 ? "signal forwarded to the service" : "signal ignored", "signal=%s", log_q(strsignal(sig)));
		return;
	}
	a->signals++;
	if (a->signals == 1) {
		start_drain(a, sig);
	} else if (a->signals == 2) {
		log_info("second signal: skipping the drain wait", "signal=%s", log_q(strsignal(sig)));
		begin_stopping(a);
	} else {
		log_warn("third signal: exiting now", "signal=%s", log_q(strsignal(sig)));
		if (a->child > 0 && !a->child_exited)
			kill(-a->child, SIGKILL);
		a->exit_code = 128 + sig;
		a->phase = AGENT_DONE;
		ev_break(a->loop, EVBREAK_ALL);
	}
}

/* ---- checks ---- */

static void maybe_readdress(struct agent *a)
{
	char address[NET_IP_MAX];
	struct vxerr err;
	if (a->address_final || a->risen)
		return;
	a->address_final = agent_address_default(a->port, address, sizeof(address));
	if (strcmp(address, a->check.address) == 0)
		return;
	if (set_address(a, address, a->prefix, &err) != 0) {
		log_error("cannot use the derived address", "address=%s error=%s", address, log_q(err.msg));
		return;
	}
	checker_set_address(a->checker, a->check.address);
	log_info("address derived from the service's listener", "address=%s instance=%s key=%s", a->check.address,
		 a->instance, a->key);
}

static void note_latency(struct agent *a, const struct check_result *res)
{
	if (res->pass && a->check.kind == CHECK_KIND_HTTP) {
		a->lat_sum_ms += (double)res->duration_us / 1e3;
		a->lat_n++;
	}
}

static void on_check(void *ud, enum check_state state, bool changed, const struct check_result *res)
{
	struct agent *a = ud;
	if (a->phase != AGENT_RUNNING)
		return;
	maybe_readdress(a);
	note_latency(a, res);
	if (!a->any_result || res->pass != a->last_pass)
		log_info(res->pass ? "check passing" : "check failing", "detail=%s", log_q(res->detail));
	a->any_result = true;
	a->last_pass = res->pass;
	if (!changed)
		return;
	log_info(state == CHECK_STATE_UP ? "instance up" : "instance down", "from=%s to=%s cause=%s rise=%d fall=%d",
		 check_state_name(a->health), check_state_name(state), log_q(res->detail), a->check.rise, a->check.fall);
	a->health = state;
	if (state == CHECK_STATE_UP)
		a->risen = true;
	agent_reg_sync(a);
}

/* Reports load.latency_ms (the mean time of passing http checks over the interval) when it
 * moved by a quarter and at least 1 ms since the last report: etcd is not a metrics bus. */
static void on_load_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	struct agent *a = w->data;
	if (a->lat_n == 0)
		return;
	double now = (double)(int64_t)(a->lat_sum_ms / a->lat_n * 10 + 0.5) / 10;
	a->lat_sum_ms = 0;
	a->lat_n = 0;
	double moved = now > a->latency_ms ? now - a->latency_ms : a->latency_ms - now;
	if (a->has_latency && (moved < 1.0 || moved < a->latency_ms / 4))
		return;
	a->has_latency = true;
	a->latency_ms = now;
	agent_reg_sync(a);
}

/* ---- run ---- */

static int start_command(struct agent *a)
{
	/* Its own group, so a terminal's ^C reaches only us (we drain first); and it dies with us, so
	 * an agent killed -9 never leaves a service running unregistered and unsupervised. */
	struct proc_opts po = { .new_pgrp = true, .die_with_parent = true };
	struct vxerr err;
	a->child = proc_spawn(a->command, &po, &err);
	if (a->child < 0) {
		log_error("cannot start the service", "command=%s error=%s", log_q(a->command[0]), log_q(err.msg));
		a->child = 0;
		return -1;
	}
	ev_child_init(&a->child_w, on_child, a->child, 0);
	a->child_w.data = a;
	ev_child_start(a->loop, &a->child_w);
	return 0;
}

static void init_watchers(struct agent *a)
{
	for (size_t i = 0; i < N_SIGNALS; i++) {
		ev_signal_init(&a->sig[i], on_signal, handled_signals[i]);
		a->sig[i].data = a;
		ev_signal_start(a->loop, &a->sig[i]);
	}
	ev_init(&a->drain_timer, on_drain_timer);
	ev_timer_init(&a->stop_timer, on_stop_timer, (double)STOP_DEADLINE_US / 1e6, 0);
	ev_timer_init(&a->grace_timer, on_grace_timer, (double)AGENT_STOP_GRACE_US / 1e6, 0);
	double li = (double)a->load_report_interval_us / 1e6;
	ev_timer_init(&a->load_timer, on_load_timer, li, li);
	a->drain_timer.data = a->stop_timer.data = a->grace_timer.data = a->load_timer.data = a;
}

static void stop_watchers(struct agent *a)
{
	for (size_t i = 0; i < N_SIGNALS; i++)
		ev_signal_stop(a->loop, &a->sig[i]);
	ev_timer_stop(a->loop, &a->drain_timer);
	ev_timer_stop(a->loop, &a->stop_timer);
	ev_timer_stop(a->loop, &a->grace_timer);
	ev_timer_stop(a->loop, &a->load_timer);
	ev_child_stop(a->loop, &a->child_w);
	if (a->checker)
		checker_stop(a->checker);
}

static void log_start(const struct agent *a)
{
	char iv[32], to[32], dt[32];
	dur_format(a->check.interval_us, iv, sizeof(iv));
	dur_format(a->check.timeout_us, to, sizeof(to));
	dur_format(a->drain_timeout_us, dt, sizeof(dt));
	const char *kind = a->check.kind == CHECK_KIND_TCP ? "tcp" : a->check.kind == CHECK_KIND_HTTP ? "http" : "exec";
	const char *what = a->check.kind == CHECK_KIND_HTTP ? a->check.path
			 : a->check.kind == CHECK_KIND_EXEC ? a->check.command : "";
	log_info("agent started", "key=%s address=%s port=%u check=%s target=%s interval=%s timeout=%s rise=%d fall=%d "
		 "ttl=%llds drain_timeout=%s service_pid=%d", a->key, a->check.address, (unsigned)a->port, kind, log_q(what),
		 iv, to, a->check.rise, a->check.fall, (long long)a->ttl_s, dt, (int)a->child);
}

int agent_run(struct agent *a)
{
	srandom((unsigned)(time_mono_ns() ^ (int64_t)getpid() << 16));
	init_watchers(a);
	if (a->command && start_command(a) != 0) {
		stop_watchers(a);
		return 2;
	}
	a->checker = checker_new(a->loop, &a->check, on_check, a);
	log_start(a);
	checker_start(a->checker);
	if (a->check.kind == CHECK_KIND_HTTP)
		ev_timer_start(a->loop, &a->load_timer);
	ev_run(a->loop, 0);
	stop_watchers(a);
	return a->exit_code;
}

/* ---- one check ---- */

struct once {
	struct check_result res;
	struct ev_loop *loop;
};

static void on_once(void *ud, enum check_state state, bool changed, const struct check_result *res)
{
	(void)state;
	(void)changed;
	struct once *o = ud;
	o->res = *res;
	ev_break(o->loop, EVBREAK_ALL);
}

void agent_check_once(const struct check_spec *spec, struct check_result *out)
{
	struct once o = { .loop = EV_DEFAULT };
	struct check_spec s = *spec;
	s.rise = s.fall = 1;
	struct checker *c = checker_new(o.loop, &s, on_once, &o);
	checker_start(c);
	ev_run(o.loop, 0);
	checker_free(c);
	*out = o.res;
}
