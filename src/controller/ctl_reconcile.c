/* The controller's data-plane side: read what HAProxy has, diff it against what the registry
 * wants, and send the operations pipelined on one Runtime API connection (DESIGN principles 1,
 * 5, 6). One round serves every dirty service at once in pipelined round trips:
 * `show servers state` per backend; `show stat` per backend only where fresh figures are needed
 * (CTL_STATS_MAX_AGE_US); then the operations, sent in chunks of CTL_BATCH_MAX commands as they
 * are planned, so that a cold start with thousands of servers never holds them all. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "controller/ctl_int.h"
#include "controller/desired.h"

#define RT_TIMEOUT_US (2 * USEC_PER_SEC)

/* One service being reconciled in this round. */
struct round_svc {
	struct ctl_service *s;
	struct hap_servers_state state;
	bool state_ok;
	bool need_stats; /* sessions or check results matter, or the cached figures are old */
	struct ctl_have *have;
	size_t n_have;
	struct ctl_want *want; /* sorted by name */
	size_t n_want;
	bool pending; /* something is still on its way out: look again soon */
};

/* What each command of the operations batch was for. */
struct cmd_origin {
	struct round_svc *rs;
	enum ctl_op_kind op;
	char server[CTL_NAME_MAX];
	bool last; /* the op's final command: its reply decides the op's fate */
};

struct batch {
	struct hap_cmd *cmds;
	struct cmd_origin *origin;
	size_t n, cap;
};

int ctl_rt_ensure(struct controller *c, struct vxerr *err)
{
	if (c->rt)
		return 0;
	struct hap_rt_opts o = { .timeout_us = RT_TIMEOUT_US };
	c->rt = hap_rt_open(c->runtime_socket, &o, err);
	return c->rt ? 0 : -1;
}

void ctl_rt_drop(struct controller *c)
{
	hap_rt_close(c->rt);
	c->rt = NULL;
}

/* ---- batches ---- */

static void batch_push(struct batch *b, const struct hap_cmd *cmd, struct round_svc *rs, enum ctl_op_kind op,
		       const char *server, bool last)
{
	if (b->n + 1 > b->cap) {
		size_t cap = b->cap;
		b->cmds = xgrow(b->cmds, sizeof(*b->cmds), &cap, b->n + 1);
		b->origin = xgrow(b->origin, sizeof(*b->origin), &b->cap, b->n + 1);
	}
	b->cmds[b->n] = *cmd;
	struct cmd_origin *o = &b->origin[b->n++];
	o->rs = rs;
	o->op = op;
	snprintf(o->server, sizeof(o->server), "%s", server);
	o->last = last;
}

static void batch_release(struct batch *b)
{
	free(b->cmds);
	free(b->origin);
	memset(b, 0, sizeof(*b));
}

/* Sends the batch in pipelined chunks; replies[i] answers cmds[i]. */
static int batch_send(struct controller *c, struct batch *b, struct hap_reply *replies, struct vxerr *err)
{
	for (size_t off = 0; off < b->n; off += CTL_BATCH_MAX) {
		size_t n = b->n - off < CTL_BATCH_MAX ? b->n - off : CTL_BATCH_MAX;
		if (hap_rt_batch(c->rt, b->cmds + off, n, replies + off, err) != 0)
			return -1;
	}
	return 0;
}

/* ---- reading HAProxy ---- */

static int read_states(struct controller *c, struct round_svc *rs, size_t n, struct vxerr *err)
{
	struct batch b = { 0 };
	for (size_t i = 0; i < n; i++) {
		struct hap_cmd cmd;
		if (hap_cmd_show_servers_state(&cmd, rs[i].s->name, err) != 0)
			goto fail;
		batch_push(&b, &cmd, &rs[i], CTL_OP_ADD, "", true);
	}
	struct hap_reply *replies = xcalloc(n ? n : 1, sizeof(*replies));
	int r = batch_send(c, &b, replies, err);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct vxerr perr;
		struct ctl_service *s = rs[i].s;
		rs[i].state_ok = hap_parse_servers_state(replies[i].text, replies[i].len, &rs[i].state, &perr) == 0;
		if (!rs[i].state_ok && !s->unreadable) /* once, not every round */
			log_warn("cannot read the backend, skipping the service", "service=%s error=%s", s->name,
				 log_q(perr.msg));
		if (rs[i].state_ok && s->unreadable)
			log_info("backend readable again", "service=%s", s->name);
		s->unreadable = !rs[i].state_ok;
		if (rs[i].state_ok && rs[i].state.n > 0)
			s->be_id = rs[i].state.rows[0].be_id;
	}
	hap_replies_release(replies, n);
	free(replies);
	batch_release(&b);
	return r;
fail:
	batch_release(&b);
	return -1;
}

static int read_stats(struct controller *c, struct round_svc *rs, size_t n, struct vxerr *err)
{
	struct batch b = { 0 };
	for (size_t i = 0; i < n; i++) {
		struct hap_cmd cmd;
		if (!rs[i].need_stats || !rs[i].state_ok || rs[i].state.n == 0 || rs[i].s->be_id < 0)
			continue;
		hap_cmd_show_stat_id(&cmd, rs[i].s->be_id, NULL);
		batch_push(&b, &cmd, &rs[i], CTL_OP_ADD, "", true);
	}
	struct hap_reply *replies = xcalloc(b.n ? b.n : 1, sizeof(*replies));
	int r = batch_send(c, &b, replies, err);
	int64_t now = time_mono_us();
	for (size_t i = 0; r == 0 && i < b.n; i++) {
		struct hap_stats stats = { 0 };
		if (hap_parse_stat(replies[i].text, replies[i].len, &stats, NULL) == 0)
			ctl_stats_store(b.origin[i].rs->s, &stats, now);
		else
			ctl_stats_release(b.origin[i].rs->s); /* build_have then sees no figures */
		hap_stats_release(&stats);
	}
	hap_replies_release(replies, b.n);
	free(replies);
	batch_release(&b);
	return r;
}

/* ---- desired and actual ---- */

static int adjust_weight(void *ud, const char *server, int base)
{
	struct ctl_service *s = ud;
	struct ctl_srv_mem *m = ctl_mem_get(s, server, false);
	return m ? ctl_feedback_weight(&m->fb, base) : base;
}

static bool owned(const struct controller *c, const struct ctl_service *s, const char *server)
{
	return c->cfg->haproxy.mode == HAP_MODE_MANAGED || ctl_owned_has(c->owned, s->name, server);
}

static int have_by_name(const void *a, const void *b)
{
	return strcmp(((const struct ctl_have *)a)->name, ((const struct ctl_have *)b)->name);
}

static bool have_present(const void *ud, const char *server)
{
	const struct round_svc *rs = ud;
	struct ctl_have key;
	if (rs->n_have == 0 || snprintf(key.name, sizeof(key.name), "%s", server) >= (int)sizeof(key.name))
		return false;
	return bsearch(&key, rs->have, rs->n_have, sizeof(*rs->have), have_by_name) != NULL;
}

/* What HAProxy has, sorted by name; attach mode forgets owned servers that are gone. */
static void build_have(struct controller *c, struct round_svc *rs)
{
	rs->have = xcalloc(rs->state.n ? rs->state.n : 1, sizeof(*rs->have));
	for (size_t i = 0; i < rs->state.n; i++) {
		const struct hap_srv_state *row = &rs->state.rows[i];
		struct ctl_have *h = &rs->have[rs->n_have];
		if (snprintf(h->name, sizeof(h->name), "%s", row->name) >= (int)sizeof(h->name))
			continue;
		snprintf(h->addr, sizeof(h->addr), "%s", row->addr);
		h->port = row->port > 0 && row->port <= 65535 ? (uint16_t)row->port : 0;
		h->admin = (enum ctl_admin)hap_admin_from_bits(row->admin_state);
		h->weight = (int)row->uweight;
		h->owned = owned(c, rs->s, row->name);
		const struct ctl_stat *st = ctl_stats_lookup(rs->s->stats, rs->s->n_stats, row->name);
		if (st) {
			h->sessions = st->sessions;
			h->maxconn = st->maxconn;
			h->check_down = st->check_down;
		}
		struct ctl_srv_mem *m = ctl_mem_get(rs->s, row->name, false);
		h->drain_started_us = m ? m->drain_started_us : 0;
		rs->n_have++;
	}
	qsort(rs->have, rs->n_have, sizeof(*rs->have), have_by_name);
	ctl_owned_prune(c->owned, rs->s->name, have_present, rs);
}

static int want_by_name(const void *a, const void *b)
{
	return strcmp(((const struct ctl_want *)a)->name, ((const struct ctl_want *)b)->name);
}

static const struct ctl_want *want_find(const struct round_svc *rs, const char *name)
{
	struct ctl_want key;
	if (rs->n_want == 0 || snprintf(key.name, sizeof(key.name), "%s", name) >= (int)sizeof(key.name))
		return NULL;
	return bsearch(&key, rs->want, rs->n_want, sizeof(*rs->want), want_by_name);
}

static bool stats_needed(const struct controller *c, const struct round_svc *rs, int64_t now)
{
	const struct ctl_service *s = rs->s;
	if (s->stats_at_us == 0 || now - s->stats_at_us >= CTL_STATS_MAX_AGE_US)
		return true;
	for (size_t i = 0; i < rs->state.n; i++) {
		const struct hap_srv_state *row = &rs->state.rows[i];
		if (!ctl_stats_lookup(s->stats, s->n_stats, row->name))
			return true; /* new since the last read: its maxconn is unknown */
		const struct ctl_want *w = want_find(rs, row->name);
		if ((!w || w->state == CTL_REG_DRAINING) && owned(c, s, row->name))
			return true; /* on its way out: sessions and HAProxy's verdict decide */
	}
	return false;
}

/* The desired servers, and whether this round needs fresh statistics for them. */
static void prepare_service(struct controller *c, struct round_svc *rs, int64_t now)
{
	struct ctl_service *s = rs->s;
	rs->n_want = ctl_desired(reg_view_find_service(c->view, s->name), s->cfg->default_capacity, adjust_weight, s,
				 &rs->want);
	qsort(rs->want, rs->n_want, sizeof(*rs->want), want_by_name);
	rs->need_stats = rs->state_ok && stats_needed(c, rs, now);
}

/* Starts the drain clock of servers on their way out that are no longer ready (a controller
 * that restarted mid-drain starts it afresh), and stops it for servers wanted again. */
static void drain_clocks(struct round_svc *rs, int64_t now)
{
	for (size_t i = 0; i < rs->n_have; i++) {
		struct ctl_have *h = &rs->have[i];
		const struct ctl_want *w = want_find(rs, h->name);
		bool leaving = !w || w->state == CTL_REG_DRAINING;
		if (!h->owned)
			continue;
		if (leaving)
			rs->pending = true;
		struct ctl_srv_mem *m = ctl_mem_get(rs->s, h->name, leaving && h->admin != CTL_ADMIN_READY);
		if (!m)
			continue;
		if (!leaving)
			m->drain_started_us = 0;
		else if (h->admin != CTL_ADMIN_READY && m->drain_started_us == 0)
			m->drain_started_us = h->drain_started_us = now;
	}
}

/* ---- operations -> commands ---- */

static int push_add(struct controller *c, struct batch *b, struct round_svc *rs, const struct ctl_op *op,
		    struct vxerr *err)
{
	struct hap_server srv = { .port = op->port, .weight = op->weight, .maxconn = op->maxconn };
	struct hap_check chk;
	struct hap_cmd cmd;
	snprintf(srv.name, sizeof(srv.name), "%s", op->name);
	snprintf(srv.addr, sizeof(srv.addr), "%s", op->addr);
	hap_check_from_health(&rs->s->cfg->health, &chk);
	if (hap_cmd_add_server(&cmd, rs->s->name, &srv, &chk, err) != 0)
		return -1;
	batch_push(b, &cmd, rs, CTL_OP_ADD, op->name, false);
	if (chk.enabled) {
		hap_cmd_enable_health(&cmd, rs->s->name, op->name, NULL);
		batch_push(b, &cmd, rs, CTL_OP_ADD, op->name, false);
	}
	hap_cmd_enable_server(&cmd, rs->s->name, op->name, NULL);
	batch_push(b, &cmd, rs, CTL_OP_ADD, op->name, true);
	(void)c;
	return 0;
}

static int push_op(struct controller *c, struct batch *b, struct round_svc *rs, const struct ctl_op *op,
		   struct vxerr *err)
{
	const char *be = rs->s->name, *srv = op->name;
	struct hap_cmd cmd, seq[3];
	int r;
	switch (op->kind) {
	case CTL_OP_ADD:
		return push_add(c, b, rs, op, err);
	case CTL_OP_DEL:
		if (hap_cmd_delete_sequence(seq, be, srv, err) != 0)
			return -1;
		for (int i = 0; i < 3; i++)
			batch_push(b, &seq[i], rs, op->kind, srv, i == 2);
		return 0;
	case CTL_OP_SET_ADDR: r = hap_cmd_set_addr(&cmd, be, srv, op->addr, op->port, err); break;
	case CTL_OP_SET_WEIGHT: r = hap_cmd_set_weight(&cmd, be, srv, op->weight, err); break;
	case CTL_OP_SET_MAXCONN: r = hap_cmd_set_maxconn(&cmd, be, srv, op->maxconn, err); break;
	case CTL_OP_READY: r = hap_cmd_set_state(&cmd, be, srv, HAP_ADMIN_READY, err); break;
	case CTL_OP_DRAIN: r = hap_cmd_set_state(&cmd, be, srv, HAP_ADMIN_DRAIN, err); break;
	case CTL_OP_MAINT: r = hap_cmd_set_state(&cmd, be, srv, HAP_ADMIN_MAINT, err); break;
	case CTL_OP_SHUTDOWN: r = hap_cmd_shutdown_sessions(&cmd, be, srv, err); break;
	default: return vxerr_set(err, "unknown operation %d", (int)op->kind);
	}
	if (r == 0)
		batch_push(b, &cmd, rs, op->kind, srv, true);
	return r;
}

/* Operations that change what `show stat` reports for the server (maxconn, state, presence). */
static bool outdates_stats(enum ctl_op_kind kind)
{
	return kind != CTL_OP_SET_WEIGHT && kind != CTL_OP_SET_ADDR;
}

static int flush(struct controller *c, struct batch *b, struct vxerr *err);

/* Diffs one service and queues its operations; returns -1 when a chunk could not be sent. */
static int plan_service(struct controller *c, struct round_svc *rs, struct batch *b, int64_t now,
			struct vxerr *err)
{
	struct ctl_service *s = rs->s;
	int r = 0;
	build_have(c, rs);
	drain_clocks(rs, now);
	struct ctl_diff_params p = { .now_us = now, .drain_timeout_us = s->cfg->drain_timeout_us,
				     .panic_threshold = c->cfg->controller.panic_threshold, .force = c->force };
	struct ctl_diff_result d;
	ctl_diff(rs->want, rs->n_want, rs->have, rs->n_have, &p, &d);
	if (d.panic && d.held_back != s->held_back)
		log_warn("panic threshold: keeping servers whose keys vanished", "service=%s kept=%zu threshold=%.0f%% "
			 "hint=%s", s->name, d.held_back, 100 * p.panic_threshold,
			 log_q("they stay until the registry recovers, HAProxy's checks see them down, or an operator "
			       "confirms with SIGUSR1 (veltrix controller --force-sync)"));
	if (d.conflicts && d.conflicts != s->conflicts) /* once per change, not per round */
		log_warn("instance names taken by servers Veltrix does not own", "service=%s count=%zu", s->name,
			 d.conflicts);
	s->held_back = d.held_back;
	s->conflicts = d.conflicts;
	s->panic = d.panic;
	for (size_t i = 0; i < d.n_ops && r == 0; i++) {
		struct vxerr perr;
		if (outdates_stats(d.ops[i].kind))
			s->stats_at_us = 0;
		if (push_op(c, b, rs, &d.ops[i], &perr) != 0)
			log_error("operation refused before sending", "service=%s server=%s op=%s error=%s", s->name,
				  log_q(d.ops[i].name), ctl_op_kind_name(d.ops[i].kind), log_q(perr.msg));
		else if (b->n >= CTL_BATCH_MAX) /* whole operations only: replies are judged per op */
			r = flush(c, b, err);
	}
	ctl_diff_result_release(&d);
	return r;
}

/* ---- replies ---- */

static void op_done(struct controller *c, const struct cmd_origin *o, enum hap_status st)
{
	struct ctl_service *s = o->rs->s;
	const char *labels[] = { ctl_op_kind_name(o->op) };
	if (st == HAP_RETRY) {
		o->rs->pending = true;
		return;
	}
	if (st != HAP_OK && !(o->op == CTL_OP_DEL && st == HAP_NOT_FOUND))
		return;
	metric_add(c->m.ops_total, 1, labels);
	if (o->op == CTL_OP_DRAIN) {
		ctl_mem_get(s, o->server, true)->drain_started_us = time_mono_us();
	} else if (o->op == CTL_OP_DEL) {
		c->membership_changed = true;
		ctl_mem_forget(s, o->server);
		ctl_owned_set(c->owned, s->name, o->server, false);
		log_info("server removed", "service=%s server=%s", s->name, log_q(o->server));
	} else if (o->op == CTL_OP_ADD || o->op == CTL_OP_SET_ADDR) {
		c->membership_changed = true;
		if (o->op == CTL_OP_SET_ADDR)
			return;
		ctl_owned_set(c->owned, s->name, o->server, true);
		log_info("server added", "service=%s server=%s", s->name, log_q(o->server));
	}
	if (o->op == CTL_OP_ADD || o->op == CTL_OP_SET_WEIGHT) {
		const struct ctl_want *w = want_find(o->rs, o->server);
		if (w)
			ctl_mem_get(s, o->server, true)->fb.applied = w->weight;
	}
}

static void take_replies(struct controller *c, const struct batch *b, const struct hap_reply *replies)
{
	bool failed_op = false;
	for (size_t i = 0; i < b->n; i++) {
		const struct cmd_origin *o = &b->origin[i];
		enum hap_status st = hap_reply_classify(b->cmds[i].kind, replies[i].text, replies[i].len);
		if (st == HAP_ERR || (st == HAP_NOT_FOUND && o->op != CTL_OP_DEL)) {
			char why[160];
			hap_reply_summary(replies[i].text, replies[i].len, why, sizeof(why));
			const char *labels[] = { ctl_op_kind_name(o->op) };
			metric_add(c->m.op_errors_total, 1, labels);
			log_warn("runtime API refused a command", "service=%s command=%s reply=%s", o->rs->s->name,
				 log_q(b->cmds[i].text), log_q(why));
			o->rs->pending = true;
			failed_op = true;
		}
		if (o->last)
			op_done(c, o, failed_op ? HAP_ERR : st);
		if (o->last)
			failed_op = false;
	}
}

/* ---- one round ---- */

static void round_release(struct round_svc *rs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		hap_servers_state_release(&rs[i].state);
		free(rs[i].have);
		free(rs[i].want);
	}
	free(rs);
}

/* Forgets servers HAProxy no longer has (deleted by someone else, or lost in a restart). */
static void prune_memory(struct round_svc *rs)
{
	struct ctl_service *s = rs->s;
	for (size_t i = 0; i < s->n_mem; i++)
		s->mem[i].seen = false;
	for (size_t k = 0; k < rs->n_have; k++) {
		struct ctl_srv_mem *m = ctl_mem_get(s, rs->have[k].name, false);
		if (m)
			m->seen = true;
	}
	size_t kept = 0;
	for (size_t i = 0; i < s->n_mem; i++)
		if (s->mem[i].seen)
			s->mem[kept++] = s->mem[i]; /* order, and so the sort, is kept */
	s->n_mem = kept;
}

/* applied: every operation of the round reached HAProxy (else it is all retried). */
static void finish_round(struct controller *c, struct round_svc *rs, size_t n, int64_t start, bool applied)
{
	int64_t now = time_mono_us();
	bool followup = false;
	for (size_t i = 0; i < n; i++) {
		struct ctl_service *s = rs[i].s;
		if (applied && s->dirty_since_us) {
			metric_observe(c->m.apply_seconds, (double)(now - s->dirty_since_us) / 1e6, NULL);
			s->dirty_since_us = 0;
		}
		if (rs[i].state_ok)
			prune_memory(&rs[i]);
		if (rs[i].pending || s->panic) {
			s->dirty = true;
			followup = true;
		}
	}
	metric_observe(c->m.reconcile_seconds, (double)(now - start) / 1e6, NULL);
	if (applied)
		c->force = false; /* the operator's confirmation holds until a round went through */
	if (c->owned && ctl_owned_save(c->owned, NULL) != 0)
		log_warn("cannot save the list of servers this controller added", "state_dir=%s",
			 log_q(c->cfg->haproxy.state_dir));
	if (followup)
		ctl_schedule_followup(c);
}

static size_t collect_dirty(struct controller *c, struct round_svc **out)
{
	struct round_svc *rs = xcalloc(c->n_svcs ? c->n_svcs : 1, sizeof(*rs));
	size_t n = 0;
	for (size_t i = 0; i < c->n_svcs; i++) {
		if (!c->svcs[i].dirty)
			continue;
		c->svcs[i].dirty = false;
		rs[n++].s = &c->svcs[i];
	}
	*out = rs;
	return n;
}

static void retry_later(struct controller *c, struct round_svc *rs, size_t n, const char *what, const char *why)
{
	log_warn("cannot reach HAProxy's runtime API, will retry", "step=%s socket=%s error=%s", what,
		 log_q(c->runtime_socket), log_q(why));
	ctl_rt_drop(c);
	for (size_t i = 0; i < n; i++)
		rs[i].s->dirty = true;
	ctl_schedule_followup(c);
}

/* Sends the queued operations and judges their replies. */
static int flush(struct controller *c, struct batch *b, struct vxerr *err)
{
	struct hap_reply *replies = xcalloc(b->n ? b->n : 1, sizeof(*replies));
	int r = batch_send(c, b, replies, err);
	if (r == 0)
		take_replies(c, b, replies);
	hap_replies_release(replies, b->n);
	free(replies);
	batch_release(b);
	return r;
}

void ctl_reconcile_dirty(struct controller *c)
{
	if (!c->have_snapshot || c->stopping)
		return; /* fail static: never act on HAProxy without a registry view */
	struct round_svc *rs;
	size_t n = collect_dirty(c, &rs);
	int64_t start = time_mono_us();
	c->last_reconcile_start_us = start;
	struct vxerr err;
	struct batch ops = { 0 };
	if (n == 0)
		goto out;
	if (ctl_rt_ensure(c, &err) != 0 || read_states(c, rs, n, &err) != 0) {
		retry_later(c, rs, n, "read", err.msg);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		prepare_service(c, &rs[i], start);
	if (read_stats(c, rs, n, &err) != 0) {
		retry_later(c, rs, n, "read", err.msg);
		goto out;
	}
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++)
		if (rs[i].state_ok)
			r = plan_service(c, &rs[i], &ops, start, &err);
	if (r == 0)
		r = flush(c, &ops, &err);
	if (r != 0)
		retry_later(c, rs, n, "apply", err.msg);
	finish_round(c, rs, n, start, r == 0);
out:
	batch_release(&ops);
	round_release(rs, n);
}
