/* Faults on the scenario clock. Instant ones act and finish in the tick they fire; the others
 * (term, start, restart, rolling_deploy, scale_out) are small state machines the director steps
 * every tick, so the load, the sampling and other faults go on meanwhile. A restart is only
 * complete when HAProxy routes to the instance again (it shows UP): a careful deploy on either
 * stack waits for that before taking the next instance down. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/timeutil.h"
#include "scenario/scn_int.h"

#define FAULT_TIMEOUT_US (120 * USEC_PER_SEC)
#define BACK_TIMEOUT_US (30 * USEC_PER_SEC)

enum { ST_STOP, ST_WAIT_DOWN, ST_WAIT_UP, ST_WAIT_ROUTED, ST_PAUSE };

static void finish(struct scn_rt *rt, struct scn_fault_run *fr, bool ok, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void finish(struct scn_rt *rt, struct scn_fault_run *fr, bool ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(fr->res->detail, sizeof(fr->res->detail), fmt, ap);
	va_end(ap);
	fr->done = true;
	fr->res->ok = ok;
	fr->res->done_s = (double)scn_now_us(rt) / 1e6;
	scn_note(rt, "%.1fs %s%s%s: %s%s", fr->res->done_s, scn_action_name(fr->f->action), fr->f->target[0] ? " " : "",
		 fr->f->target, ok ? "" : "FAILED: ", fr->res->detail);
}

static struct scn_bk *find_bk(struct scn_rt *rt, const char *name)
{
	for (size_t i = 0; i < rt->n_bks; i++)
		if (strcmp(rt->bks[i].def->name, name) == 0)
			return &rt->bks[i];
	return NULL;
}

static bool running(const struct scn_bk *b)
{
	return b->state == BK_UP || b->state == BK_STARTING;
}

/* ---- instant faults ---- */

static void signal_fault(struct scn_rt *rt, struct scn_fault_run *fr, struct scn_bk *b)
{
	pid_t pid = scn_bk_server_pid(rt, b);
	if (!running(b) || pid <= 0)
		return finish(rt, fr, false, "%s is not running", b->def->name);
	switch (fr->f->action) {
	case SCN_KILL:
		scn_bk_kill(rt, b);
		return finish(rt, fr, true, "SIGKILL to %s (pid %d)", b->def->name, (int)pid);
	case SCN_FREEZE:
		kill(pid, SIGSTOP);
		b->frozen = true;
		return finish(rt, fr, true, "SIGSTOP to %s (pid %d)", b->def->name, (int)pid);
	default:
		kill(pid, SIGCONT);
		b->frozen = false;
		return finish(rt, fr, true, "SIGCONT to %s (pid %d)", b->def->name, (int)pid);
	}
}

static void set_fault(struct scn_rt *rt, struct scn_fault_run *fr, struct scn_bk *b)
{
	struct vxerr err;
	char dist[64];
	bool slow = fr->f->action == SCN_SLOW;
	if (!running(b))
		return finish(rt, fr, false, "%s is not running", b->def->name);
	if (scn_bk_set(b, slow ? &fr->f->service : NULL, slow ? -1 : fr->f->fail_rate, &err) != 0)
		return finish(rt, fr, false, "%s", err.msg);
	ts_dist_format(&fr->f->service, dist, sizeof(dist));
	if (slow)
		finish(rt, fr, true, "%s now takes %s per request", b->def->name, dist);
	else
		finish(rt, fr, true, "%s now fails %.3g%% of requests", b->def->name, fr->f->fail_rate * 100);
}

static void etcd_fault(struct scn_rt *rt, struct scn_fault_run *fr)
{
	struct vxerr err;
	enum scn_action a = fr->f->action;
	if (a == SCN_ETCD_START) {
		if (rt->etcd_up)
			return finish(rt, fr, false, "etcd is already running");
		if (etcd_local_restart(&rt->etcd, 15 * USEC_PER_SEC, &err) != 0)
			return finish(rt, fr, false, "%s", err.msg);
		rt->etcd_up = true;
		scn_procs_adopt(&rt->procs, rt->etcd.pid, "etcd");
		return finish(rt, fr, true, "etcd answers again (pid %d)", (int)rt->etcd.pid);
	}
	if (!rt->etcd_up)
		return finish(rt, fr, false, "etcd is not running");
	scn_procs_expect_exit(&rt->procs, rt->etcd.pid);
	if (a == SCN_ETCD_KILL)
		etcd_local_kill(&rt->etcd);
	else
		etcd_local_stop(&rt->etcd, 2 * USEC_PER_SEC);
	rt->etcd_up = false;
	finish(rt, fr, true, "etcd %s", a == SCN_ETCD_KILL ? "killed (SIGKILL)" : "stopped (SIGTERM)");
}

static void controller_fault(struct scn_rt *rt, struct scn_fault_run *fr)
{
	struct vxerr err;
	bool alive = rt->controller > 0 && !scn_procs_exited(&rt->procs, rt->controller);
	if (fr->f->action == SCN_CONTROLLER_KILL) {
		if (!alive)
			return finish(rt, fr, false, "the controller is not running");
		scn_procs_expect_exit(&rt->procs, rt->controller);
		kill(rt->controller, SIGKILL);
		return finish(rt, fr, true, "SIGKILL to the controller (pid %d); HAProxy keeps serving", (int)rt->controller);
	}
	if (alive)
		return finish(rt, fr, false, "the controller is already running");
	if (scn_controller_start(rt, &err) != 0)
		return finish(rt, fr, false, "%s", err.msg);
	finish(rt, fr, true, "controller started again (pid %d); it adopts the running HAProxy", (int)rt->controller);
}

static void reload_fault(struct scn_rt *rt, struct scn_fault_run *fr)
{
	struct vxerr err;
	if (scn_stack_reload(rt, &err) != 0)
		return finish(rt, fr, false, "%s", err.msg);
	finish(rt, fr, true, "HAProxy reloaded through its master socket");
}

/* ---- multi-step faults ---- */

static void add_member(struct scn_fault_run *fr, struct scn_rt *rt, const char *name)
{
	struct scn_bk *b = find_bk(rt, name);
	if (b && fr->n_members < SCN_MAX_BACKENDS)
		fr->members[fr->n_members++] = b->idx;
}

static void plan_members(struct scn_rt *rt, struct scn_fault_run *fr)
{
	const struct scn_fault *f = fr->f;
	fr->n_members = 0;
	if (f->target[0]) {
		add_member(fr, rt, f->target);
	} else if (f->action == SCN_ROLLING_DEPLOY && f->n_targets) {
		for (size_t i = 0; i < f->n_targets; i++)
			add_member(fr, rt, f->targets[i]);
	} else if (f->action == SCN_ROLLING_DEPLOY) {
		for (size_t i = 0; i < rt->n_bks; i++)
			if (rt->bks[i].def->initial)
				fr->members[fr->n_members++] = i;
	} else if (f->action == SCN_SCALE_OUT) { /* the group's instances no one started yet */
		for (size_t i = 0; i < rt->n_bks && fr->n_members < (size_t)f->count; i++) {
			const struct scn_bk *b = &rt->bks[i];
			if (!b->def->initial && b->state == BK_DOWN && b->pid == 0 &&
			    strcmp(rt->s->groups[b->def->group].name, f->group) == 0)
				fr->members[fr->n_members++] = i;
		}
	}
}

static bool wants_stop(enum scn_action a)
{
	return a == SCN_TERM || a == SCN_RESTART || a == SCN_ROLLING_DEPLOY;
}

static bool wants_start(enum scn_action a)
{
	return a != SCN_TERM;
}

static void member_begin(struct scn_rt *rt, struct scn_fault_run *fr)
{
	struct scn_bk *b = &rt->bks[fr->members[fr->k]];
	fr->deadline_us = time_mono_us() + BACK_TIMEOUT_US + rt->s->service.drain_us;
	if (wants_stop(fr->f->action)) {
		scn_bk_stop(rt, b);
		fr->step = ST_WAIT_DOWN;
	} else {
		scn_bk_start(rt, b);
		fr->step = ST_WAIT_UP;
	}
	if (b->failed)
		finish(rt, fr, false, "%s: %s", b->def->name, b->fail_why);
}

static bool routed(struct scn_rt *rt, const struct scn_bk *b)
{
	char status[32];
	if (rt->stack == SCN_STACK_STATIC && !b->def->initial)
		return true; /* a hand-written file does not list it: nothing will route to it */
	return scn_stack_server_status(rt, b->def->name, status, sizeof(status)) == 0 && strcmp(status, "UP") == 0;
}

static void member_step(struct scn_rt *rt, struct scn_fault_run *fr)
{
	struct scn_bk *b = &rt->bks[fr->members[fr->k]];
	if (b->failed)
		return finish(rt, fr, false, "%s: %s", b->def->name, b->fail_why);
	if (time_mono_us() > fr->deadline_us)
		return finish(rt, fr, false, "%s: not done within %llds", b->def->name,
			      (long long)((BACK_TIMEOUT_US + rt->s->service.drain_us) / USEC_PER_SEC));
	if (fr->step == ST_WAIT_DOWN && b->state == BK_DOWN) {
		if (!wants_start(fr->f->action))
			return finish(rt, fr, true, "%s drained and stopped", b->def->name);
		scn_bk_start(rt, b);
		fr->step = ST_WAIT_UP;
	} else if (fr->step == ST_WAIT_UP && b->state == BK_UP && scn_reg_settled(rt->reg, b->idx)) {
		fr->step = ST_WAIT_ROUTED;
	} else if (fr->step == ST_WAIT_ROUTED && routed(rt, b)) {
		fr->step = ST_PAUSE;
		fr->wait_until = time_mono_us() + fr->f->interval_us;
	} else if (fr->step == ST_PAUSE && time_mono_us() >= fr->wait_until) {
		if (++fr->k >= fr->n_members)
			return finish(rt, fr, true, "%zu instance%s %s", fr->n_members, fr->n_members == 1 ? "" : "s",
				      fr->f->action == SCN_SCALE_OUT ? "started and routed" : "back and routed");
		if (fr->f->action == SCN_SCALE_OUT)
			fr->step = ST_WAIT_UP; /* already started, with the others */
		else
			member_begin(rt, fr);
	}
}

/* A scale-out starts all its instances at once, then waits for each in turn. */
static void scale_out_begin(struct scn_rt *rt, struct scn_fault_run *fr)
{
	for (size_t i = 0; i < fr->n_members; i++) {
		struct scn_bk *b = &rt->bks[fr->members[i]];
		scn_bk_start(rt, b);
		if (b->failed)
			return finish(rt, fr, false, "%s: %s", b->def->name, b->fail_why);
	}
	fr->deadline_us = time_mono_us() + BACK_TIMEOUT_US;
	fr->step = ST_WAIT_UP;
}

static void multi_begin(struct scn_rt *rt, struct scn_fault_run *fr)
{
	plan_members(rt, fr);
	if (fr->n_members == 0)
		return finish(rt, fr, false, "no instance to act on");
	fr->k = 0;
	if (fr->f->action == SCN_SCALE_OUT)
		scale_out_begin(rt, fr);
	else
		member_begin(rt, fr);
}

void scn_fault_begin(struct scn_rt *rt, struct scn_fault_run *fr)
{
	const struct scn_fault *f = fr->f;
	fr->started = true;
	fr->res->started_s = (double)scn_now_us(rt) / 1e6;
	if (rt->stack == SCN_STACK_STATIC && scn_action_veltrix_only(f->action))
		return finish(rt, fr, true, "skipped: a static stack has no etcd and no controller");
	struct scn_bk *b = f->target[0] ? find_bk(rt, f->target) : NULL;
	switch (f->action) {
	case SCN_KILL:
	case SCN_FREEZE:
	case SCN_THAW:
		return b ? signal_fault(rt, fr, b) : finish(rt, fr, false, "no such backend");
	case SCN_SLOW:
	case SCN_FAIL:
		return b ? set_fault(rt, fr, b) : finish(rt, fr, false, "no such backend");
	case SCN_ETCD_STOP:
	case SCN_ETCD_KILL:
	case SCN_ETCD_START:
		return etcd_fault(rt, fr);
	case SCN_CONTROLLER_KILL:
	case SCN_CONTROLLER_START:
		return controller_fault(rt, fr);
	case SCN_HAPROXY_RELOAD:
		return reload_fault(rt, fr);
	default:
		return multi_begin(rt, fr);
	}
}

void scn_fault_step(struct scn_rt *rt, struct scn_fault_run *fr)
{
	if (fr->started && !fr->done)
		member_step(rt, fr);
}
