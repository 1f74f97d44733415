/* Two periodic looks at HAProxy: its identity (a new pid or a smaller uptime means it restarted
 * or reloaded and may have lost servers: reconcile everything), and its statistics, which feed
 * back into weights so traffic shifts away from servers that are overwhelmed (DESIGN
 * principle 7). */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "controller/ctl_int.h"

bool ctl_check_ident(struct controller *c)
{
	struct hap_ident now;
	struct vxerr err;
	if (c->stopping)
		return false;
	if (ctl_rt_ensure(c, &err) != 0 || hap_rt_ident(c->rt, &now, &err) != 0) {
		ctl_rt_failed(c);
		return false;
	}
	if (c->have_ident && hap_ident_changed(&c->ident, &now)) {
		log_warn("HAProxy restarted or reloaded, reconciling every service", "old_pid=%lld pid=%lld uptime_s=%lld",
			 (long long)c->ident.pid, (long long)now.pid, (long long)now.uptime_sec);
		ctl_mark_all_dirty(c);
		ctl_schedule_reconcile(c);
	}
	c->ident = now;
	c->have_ident = true;
	return true;
}

/* be_id may be stale after a reload renumbered the backends: only this backend's rows count. */
static bool sampled(const struct ctl_service *s, const struct hap_stat_row *r)
{
	return r->type == HAP_STAT_SERVER && strcmp(r->pxname, s->name) == 0 && strcmp(r->status, "UP") == 0;
}

static void sample_service(struct ctl_service *s, const struct hap_stats *stats)
{
	size_t n = 0;
	/* Create every memory first: creating one moves the others, pointers taken after stay. */
	for (size_t i = 0; i < stats->n; i++)
		if (sampled(s, &stats->rows[i]))
			ctl_mem_get(s, stats->rows[i].svname, true);
	struct ctl_sample *samples = xcalloc(stats->n ? stats->n : 1, sizeof(*samples));
	struct ctl_feedback *fb = xcalloc(stats->n ? stats->n : 1, sizeof(*fb));
	struct ctl_srv_mem **mem = xcalloc(stats->n ? stats->n : 1, sizeof(*mem));
	for (size_t i = 0; i < stats->n; i++) {
		const struct hap_stat_row *r = &stats->rows[i];
		if (!sampled(s, r))
			continue;
		samples[n] = (struct ctl_sample){
			.requests = r->stot > 0 ? (uint64_t)r->stot : 0,
			.errors = (uint64_t)(r->econ > 0 ? r->econ : 0) + (uint64_t)(r->eresp > 0 ? r->eresp : 0) +
				  (uint64_t)(r->hrsp_5xx > 0 ? r->hrsp_5xx : 0),
			.rtime_ms = r->rtime > 0 ? (int)r->rtime : 0,
			.queue = r->qcur > 0 ? (int)r->qcur : 0,
		};
		mem[n] = ctl_mem_get(s, r->svname, false);
		fb[n] = mem[n]->fb;
		n++;
	}
	ctl_feedback_update(fb, samples, n);
	for (size_t i = 0; i < n; i++)
		mem[i]->fb = fb[i];
	free(samples);
	free(fb);
	free(mem);
}

/* One backend's statistics; false when HAProxy did not answer. */
static bool feedback_service(struct controller *c, struct ctl_service *s)
{
	struct vxerr err;
	struct hap_cmd cmd;
	struct hap_reply reply = { 0 };
	struct hap_stats stats = { 0 };
	if (s->be_id < 0)
		return true;
	if (ctl_rt_ensure(c, &err) != 0)
		return false;
	hap_cmd_show_stat_id(&cmd, s->be_id, NULL);
	if (hap_rt_exec(c->rt, &cmd, &reply, &err) != 0) {
		ctl_rt_failed(c);
		return false;
	}
	if (hap_parse_stat(reply.text, reply.len, &stats, NULL) == 0) {
		sample_service(s, &stats);
		ctl_stats_store(s, &stats, time_mono_us());
		ctl_cache_take_stats(s); /* fresh sessions and check verdicts for the reconcile */
	}
	hap_stats_release(&stats);
	hap_replies_release(&reply, 1);
	s->dirty = true;
	return true;
}

/* One backend per loop iteration, when nothing else is pending: a fleet of thousands of servers
 * costs its registry changes one backend's read at most, not every backend's. */
static void on_feedback_step(struct ev_loop *loop, ev_idle *w, int revents)
{
	(void)revents;
	struct controller *c = w->data;
	if (c->stopping || c->feedback_next >= c->n_svcs || !feedback_service(c, &c->svcs[c->feedback_next++])) {
		ev_idle_stop(loop, w);
		ctl_schedule_reconcile(c);
	}
}

void ctl_feedback_setup(struct controller *c)
{
	ev_idle_init(&c->feedback_step, on_feedback_step);
	c->feedback_step.data = c;
}

void ctl_feedback_tick(struct controller *c)
{
	if (!c->have_snapshot || c->stopping || ev_is_active(&c->feedback_step))
		return;
	c->feedback_next = 0;
	ev_idle_start(c->loop, &c->feedback_step);
}
