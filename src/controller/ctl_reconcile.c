/* The controller's data-plane side: diff what the registry wants against what HAProxy has, and
 * send the operations pipelined on one Runtime API connection (DESIGN principles 1, 5, 6). One
 * round serves every dirty service at once in pipelined round trips. What HAProxy has comes from
 * each service's cache (ctl_int.h): a full read (`show servers state` + `show stat` of the
 * backend) only where the cache may be wrong, else one `show stat` row per server on its way out
 * (its sessions decide); so a change costs round trips for the changed servers, not the pool.
 * Operations go in chunks of CTL_BATCH_MAX commands as they are planned (a cold start with
 * thousands of servers never holds them all), and their replies update the cache. */
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "controller/ctl_int.h"
#include "controller/desired.h"

#define RT_TIMEOUT_US (2 * USEC_PER_SEC)
#define RT_PROBE_US (100 * 1000)           /* a probe of an HAProxy that stopped answering */
#define RT_BACKOFF_MIN_US (50 * 1000)
#define RT_BACKOFF_MAX_US (1000 * 1000)
#define RT_UNRESPONSIVE_US (1000 * 1000)  /* /healthz says so after this long */

/* One service being reconciled in this round. */
struct round_svc {
	struct ctl_service *s;
	bool full; /* the cache may be wrong: read the whole backend */
	struct hap_servers_state state;
	bool state_ok;
	struct ctl_want *want; /* sorted by name */
	size_t n_want;
	bool pending; /* something is still on its way out: look again soon */
	bool again;   /* a drained server was idle right after: plan once more in this round */
};

/* What each command of the operations batch was for. */
struct cmd_origin {
	struct round_svc *rs;
	struct ctl_op op; /* what the command is part of: the cache takes it when it went through */
	int64_t id;       /* an add's server id */
	bool last;        /* the op's final command: its reply decides the op's fate */
	bool probe;       /* `show stat` of op.name's row, read right after its drain */
};

struct batch {
	struct hap_cmd *cmds;
	struct cmd_origin *origin;
	size_t n, cap;
};

static void rt_up(struct controller *c)
{
	c->rt_down_since_us = 0;
	c->rt_down_logged = false;
}

int ctl_rt_ensure(struct controller *c, struct vxerr *err)
{
	if (c->rt)
		return 0;
	bool probing = c->rt_down_since_us != 0;
	int64_t now = time_mono_us();
	if (probing && now < c->rt_next_probe_us)
		return vxerr_set(err, "HAProxy's runtime API has not answered for %lld ms (next probe in %lld ms)",
				 (long long)((now - c->rt_down_since_us) / 1000),
				 (long long)((c->rt_next_probe_us - now) / 1000));
	struct hap_rt_opts o = { .timeout_us = probing ? RT_PROBE_US : RT_TIMEOUT_US };
	c->rt = hap_rt_open(c->runtime_socket, &o, err);
	if (!c->rt) {
		ctl_rt_failed(c);
		return -1;
	}
	if (probing) {
		log_info("HAProxy's runtime API answers again", "socket=%s down_ms=%lld", log_q(c->runtime_socket),
			 (long long)((time_mono_us() - c->rt_down_since_us) / 1000));
		hap_rt_set_timeout(c->rt, RT_TIMEOUT_US);
		rt_up(c);
	}
	return 0;
}

void ctl_rt_drop(struct controller *c)
{
	hap_rt_close(c->rt);
	c->rt = NULL;
	rt_up(c);
}

void ctl_rt_failed(struct controller *c)
{
	if (!c->rt && c->rt_down_since_us)
		return; /* refused between probes, or the probe already counted */
	hap_rt_close(c->rt);
	c->rt = NULL;
	int64_t now = time_mono_us();
	if (!c->rt_down_since_us) {
		c->rt_down_since_us = now;
		c->rt_backoff_us = RT_BACKOFF_MIN_US;
	} else if (c->rt_backoff_us < RT_BACKOFF_MAX_US) {
		c->rt_backoff_us *= 2;
		if (c->rt_backoff_us > RT_BACKOFF_MAX_US)
			c->rt_backoff_us = RT_BACKOFF_MAX_US;
	}
	c->rt_next_probe_us = now + c->rt_backoff_us;
}

bool ctl_rt_unresponsive(const struct controller *c)
{
	return c->rt_down_since_us != 0 && time_mono_us() - c->rt_down_since_us >= RT_UNRESPONSIVE_US;
}

/* ---- batches ---- */

static void batch_push(struct batch *b, const struct hap_cmd *cmd, struct round_svc *rs, const struct ctl_op *op,
		       bool last)
{
	if (b->n + 1 > b->cap) {
		size_t cap = b->cap;
		b->cmds = xgrow(b->cmds, sizeof(*b->cmds), &cap, b->n + 1);
		b->origin = xgrow(b->origin, sizeof(*b->origin), &b->cap, b->n + 1);
	}
	b->cmds[b->n] = *cmd;
	struct cmd_origin *o = &b->origin[b->n++];
	o->rs = rs;
	if (op)
		o->op = *op;
	else
		memset(&o->op, 0, sizeof(o->op));
	o->id = 0;
	o->probe = false;
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

/* ---- the cache ---- */

static int have_by_name(const void *a, const void *b)
{
	return strcmp(((const struct ctl_have *)a)->name, ((const struct ctl_have *)b)->name);
}

static size_t cache_lower_bound(const struct ctl_service *s, const char *name)
{
	return ctl_name_lower_bound(s->cache, s->n_cache, sizeof(*s->cache), name);
}

static struct ctl_have *cache_find(struct ctl_service *s, const char *name)
{
	size_t i = cache_lower_bound(s, name);
	return i < s->n_cache && strcmp(s->cache[i].name, name) == 0 ? &s->cache[i] : NULL;
}

static bool cache_present(const void *ud, const char *server)
{
	return cache_find((struct ctl_service *)(uintptr_t)ud, server) != NULL;
}

static void cache_insert(struct ctl_service *s, const struct ctl_have *h)
{
	size_t i = cache_lower_bound(s, h->name);
	if (i < s->n_cache && strcmp(s->cache[i].name, h->name) == 0) {
		s->cache[i] = *h;
		return;
	}
	s->cache = xgrow(s->cache, sizeof(*s->cache), &s->cap_cache, s->n_cache + 1);
	memmove(&s->cache[i + 1], &s->cache[i], (s->n_cache - i) * sizeof(*s->cache));
	s->cache[i] = *h;
	s->n_cache++;
}

static void cache_remove(struct ctl_service *s, const char *name)
{
	struct ctl_have *h = cache_find(s, name);
	if (!h)
		return;
	size_t i = (size_t)(h - s->cache);
	memmove(&s->cache[i], &s->cache[i + 1], (s->n_cache - i - 1) * sizeof(*s->cache));
	s->n_cache--;
}

static void take_stat(struct ctl_have *h, const struct ctl_stat *st)
{
	h->sessions = st->sessions;
	h->maxconn = st->maxconn;
	h->check_down = st->check_down;
}

void ctl_cache_take_stats(struct ctl_service *s)
{
	for (size_t i = 0; i < s->n_cache; i++) {
		const struct ctl_stat *st = ctl_stats_lookup(s->stats, s->n_stats, s->cache[i].name);
		if (st)
			take_stat(&s->cache[i], st);
	}
}

static bool owned(const struct controller *c, const struct ctl_service *s, const char *server)
{
	return c->cfg->haproxy.mode == HAP_MODE_MANAGED || ctl_owned_has(c->owned, s->name, server);
}

/* The cache from a full read; attach mode forgets owned servers that are gone. */
static void cache_rebuild(struct controller *c, struct round_svc *rs)
{
	struct ctl_service *s = rs->s;
	int64_t max_id = 0;
	s->n_cache = 0;
	s->cache = xgrow(s->cache, sizeof(*s->cache), &s->cap_cache, rs->state.n ? rs->state.n : 1);
	for (size_t i = 0; i < rs->state.n; i++) {
		const struct hap_srv_state *row = &rs->state.rows[i];
		struct ctl_have *h = &s->cache[s->n_cache];
		memset(h, 0, sizeof(*h));
		if (snprintf(h->name, sizeof(h->name), "%s", row->name) >= (int)sizeof(h->name))
			continue;
		snprintf(h->addr, sizeof(h->addr), "%s", row->addr);
		h->port = row->port > 0 && row->port <= 65535 ? (uint16_t)row->port : 0;
		h->admin = (enum ctl_admin)hap_admin_from_bits(row->admin_state);
		h->weight = (int)row->uweight;
		h->owned = owned(c, s, row->name);
		h->id = row->srv_id;
		max_id = row->srv_id > max_id ? row->srv_id : max_id;
		s->n_cache++;
	}
	qsort(s->cache, s->n_cache, sizeof(*s->cache), have_by_name);
	ctl_cache_take_stats(s);
	/* Ids of servers Veltrix adds climb above every id in use; HAProxy fills gaps below. */
	if (s->next_id <= max_id)
		s->next_id = max_id + 1;
	s->cache_valid = true;
	ctl_owned_prune(c->owned, s->name, cache_present, s);
}

/* What the operation did to HAProxy, now that it went through. */
static void cache_apply(struct ctl_service *s, const struct ctl_op *op, int64_t id)
{
	struct ctl_have *h = cache_find(s, op->name);
	if (op->kind == CTL_OP_ADD) {
		struct ctl_have n = { .port = op->port, .admin = CTL_ADMIN_READY, .weight = op->weight,
				      .maxconn = op->maxconn, .owned = true, .id = id };
		memcpy(n.name, op->name, sizeof(n.name));
		memcpy(n.addr, op->addr, sizeof(n.addr));
		cache_insert(s, &n);
		return;
	}
	if (op->kind == CTL_OP_DEL) {
		cache_remove(s, op->name);
		return;
	}
	if (!h)
		return;
	switch (op->kind) {
	case CTL_OP_SET_ADDR: memcpy(h->addr, op->addr, sizeof(h->addr)); h->port = op->port; break;
	case CTL_OP_SET_WEIGHT: h->weight = op->weight; break;
	case CTL_OP_SET_MAXCONN: h->maxconn = op->maxconn; break;
	case CTL_OP_READY: h->admin = CTL_ADMIN_READY; break;
	case CTL_OP_DRAIN: h->admin = CTL_ADMIN_DRAIN; break;
	case CTL_OP_MAINT: h->admin = CTL_ADMIN_MAINT; break;
	default: break;
	}
}

/* ---- reading HAProxy ---- */

static int read_states(struct controller *c, struct round_svc *rs, size_t n, struct vxerr *err)
{
	struct batch b = { 0 };
	for (size_t i = 0; i < n; i++) {
		struct hap_cmd cmd;
		if (!rs[i].full || rs[i].s->cache_valid)
			continue;
		if (hap_cmd_show_servers_state(&cmd, rs[i].s->name, err) != 0)
			goto fail;
		batch_push(&b, &cmd, &rs[i], NULL, true);
	}
	struct hap_reply *replies = xcalloc(b.n ? b.n : 1, sizeof(*replies));
	int r = batch_send(c, &b, replies, err);
	for (size_t i = 0; r == 0 && i < b.n; i++) {
		struct vxerr perr;
		struct round_svc *x = b.origin[i].rs;
		struct ctl_service *s = x->s;
		hap_servers_state_release(&x->state);
		x->state_ok = hap_parse_servers_state(replies[i].text, replies[i].len, &x->state, &perr) == 0;
		if (!x->state_ok && !s->unreadable) /* once, not every round */
			log_warn("cannot read the backend, skipping the service", "service=%s error=%s", s->name,
				 log_q(perr.msg));
		if (x->state_ok && s->unreadable)
			log_info("backend readable again", "service=%s", s->name);
		s->unreadable = !x->state_ok;
		if (x->state_ok && x->state.n > 0)
			s->be_id = x->state.rows[0].be_id;
	}
	hap_replies_release(replies, b.n);
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
		if (!rs[i].full || rs[i].s->cache_valid || !rs[i].state_ok || rs[i].state.n == 0 || rs[i].s->be_id < 0)
			continue;
		hap_cmd_show_stat_id(&cmd, rs[i].s->be_id, NULL);
		batch_push(&b, &cmd, &rs[i], NULL, true);
	}
	struct hap_reply *replies = xcalloc(b.n ? b.n : 1, sizeof(*replies));
	int r = batch_send(c, &b, replies, err);
	int64_t now = time_mono_us();
	for (size_t i = 0; r == 0 && i < b.n; i++) {
		struct hap_stats stats = { 0 };
		if (hap_parse_stat(replies[i].text, replies[i].len, &stats, NULL) == 0)
			ctl_stats_store(b.origin[i].rs->s, &stats, now);
		else
			ctl_stats_release(b.origin[i].rs->s); /* the cache then has no figures */
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

static void prepare_service(struct controller *c, struct round_svc *rs)
{
	struct ctl_service *s = rs->s;
	rs->n_want = ctl_desired(reg_view_find_service(c->view, s->name), s->cfg->default_capacity, adjust_weight, s,
				 &rs->want);
	for (size_t i = 1; i < rs->n_want; i++) /* the view keeps instances sorted: no sort then */
		if (want_by_name(&rs->want[i - 1], &rs->want[i]) > 0) {
			qsort(rs->want, rs->n_want, sizeof(*rs->want), want_by_name);
			break;
		}
}

/* On its way out and no longer taking new traffic: its sessions decide when it goes. */
static bool leaving_not_ready(const struct round_svc *rs, const struct ctl_have *h)
{
	const struct ctl_want *w = want_find(rs, h->name);
	return h->owned && h->admin != CTL_ADMIN_READY && (!w || w->state == CTL_REG_DRAINING);
}

/* One server's `show stat` row into its cache entry; false when the row is not its. */
static bool take_probe(const struct cmd_origin *o, const struct hap_reply *reply)
{
	struct ctl_service *s = o->rs->s;
	struct hap_stats stats = { 0 };
	struct ctl_stat *rows = NULL;
	struct ctl_have *h = cache_find(s, o->op.name);
	size_t got = 0;
	if (hap_parse_stat(reply->text, reply->len, &stats, NULL) == 0)
		got = ctl_stats_extract(&stats, s->name, &rows);
	bool ok = h && got == 1 && strcmp(rows[0].name, h->name) == 0;
	if (ok)
		take_stat(h, &rows[0]);
	free(rows);
	hap_stats_release(&stats);
	return ok;
}

static void needs_full(struct round_svc *rs)
{
	rs->full = true;
	rs->state_ok = false;
	rs->s->cache_valid = false;
}

/* A round that trusts the cache reads one `show stat` row per server on its way out; a server
 * whose id is not known sends the service to a full read. */
static int read_leaving(struct controller *c, struct round_svc *rs, size_t n, struct vxerr *err)
{
	struct batch b = { 0 };
	for (size_t i = 0; i < n; i++) {
		struct ctl_service *s = rs[i].s;
		for (size_t k = 0; !rs[i].full && k < s->n_cache; k++) {
			struct hap_cmd cmd;
			struct ctl_have *h = &s->cache[k];
			if (!leaving_not_ready(&rs[i], h))
				continue;
			if (hap_cmd_show_stat_server(&cmd, s->be_id, h->id, NULL) != 0) {
				needs_full(&rs[i]);
				break;
			}
			struct ctl_op op = { .kind = CTL_OP_DRAIN }; /* only the name counts: whose row */
			memcpy(op.name, h->name, sizeof(op.name));
			batch_push(&b, &cmd, &rs[i], &op, true);
		}
	}
	struct hap_reply *replies = xcalloc(b.n ? b.n : 1, sizeof(*replies));
	int r = batch_send(c, &b, replies, err);
	for (size_t i = 0; r == 0 && i < b.n; i++)
		if (!take_probe(&b.origin[i], &replies[i]))
			needs_full(b.origin[i].rs); /* gone, or the id is someone else's now */
	hap_replies_release(replies, b.n);
	free(replies);
	batch_release(&b);
	return r;
}

/* Starts the drain clock of servers on their way out that are no longer ready (a controller
 * that restarted mid-drain starts it afresh), and stops it for servers wanted again. */
static void drain_clocks(struct round_svc *rs, int64_t now)
{
	struct ctl_service *s = rs->s;
	for (size_t i = 0; i < s->n_cache; i++) {
		struct ctl_have *h = &s->cache[i];
		const struct ctl_want *w = want_find(rs, h->name);
		bool leaving = !w || w->state == CTL_REG_DRAINING;
		if (!h->owned)
			continue;
		if (leaving)
			rs->pending = true;
		struct ctl_srv_mem *m = ctl_mem_get(s, h->name, leaving && h->admin != CTL_ADMIN_READY);
		if (!m)
			continue;
		if (!leaving)
			m->drain_started_us = 0;
		else if (h->admin != CTL_ADMIN_READY && m->drain_started_us == 0)
			m->drain_started_us = now;
		h->drain_started_us = m->drain_started_us;
	}
}

/* ---- operations -> commands ---- */

/* A server HAProxy would send traffic to now: ready, not failing its checks, some weight. */
static bool has_usable_server(const struct ctl_service *s)
{
	for (size_t i = 0; i < s->n_cache; i++)
		if (s->cache[i].admin == CTL_ADMIN_READY && !s->cache[i].check_down && s->cache[i].weight > 0)
			return true;
	return false;
}

/* add (in maintenance), enable health, enable, and, when the backend has a usable server, health
 * down: HAProxy counts a server up the moment it is enabled, so a dead new instance would take
 * traffic (and leastconn would prefer it) until its checks failed. In a backend with nothing
 * usable the new server starts up, as HAProxy has it: holding it down could only refuse traffic
 * (a cold start, or a restart of HAProxy, would wait `rise` checks for every server). Enabling
 * resets the health to up, so the health command comes after it. */
static int push_add(struct batch *b, struct round_svc *rs, const struct ctl_op *op, struct vxerr *err)
{
	struct ctl_service *s = rs->s;
	struct hap_server srv = { .port = op->port, .weight = op->weight, .maxconn = op->maxconn, .id = s->next_id };
	struct hap_check chk;
	struct hap_cmd cmd;
	snprintf(srv.name, sizeof(srv.name), "%s", op->name);
	snprintf(srv.addr, sizeof(srv.addr), "%s", op->addr);
	hap_check_from_health(&s->cfg->health, &chk);
	if (hap_cmd_add_server(&cmd, s->name, &srv, &chk, err) != 0)
		return -1;
	if (s->next_id > 0)
		s->next_id++;
	batch_push(b, &cmd, rs, op, false);
	if (chk.enabled) {
		hap_cmd_enable_health(&cmd, s->name, op->name, NULL);
		batch_push(b, &cmd, rs, op, false);
	}
	bool hold = chk.enabled && has_usable_server(s);
	hap_cmd_enable_server(&cmd, s->name, op->name, NULL);
	batch_push(b, &cmd, rs, op, !hold);
	if (hold) {
		hap_cmd_set_health_down(&cmd, s->name, op->name, NULL);
		batch_push(b, &cmd, rs, op, true);
	}
	b->origin[b->n - 1].id = srv.id;
	return 0;
}

static int push_op(struct batch *b, struct round_svc *rs, const struct ctl_op *op, struct vxerr *err)
{
	const char *be = rs->s->name, *srv = op->name;
	struct hap_cmd cmd, seq[3];
	int r;
	switch (op->kind) {
	case CTL_OP_ADD:
		return push_add(b, rs, op, err);
	case CTL_OP_DEL:
		if (hap_cmd_delete_sequence(seq, be, srv, err) != 0)
			return -1;
		for (int i = 0; i < 3; i++)
			batch_push(b, &seq[i], rs, op, i == 2);
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
	if (r != 0)
		return r;
	batch_push(b, &cmd, rs, op, true);
	/* Its sessions right after the drain: when none, it goes in this very round. */
	const struct ctl_have *h = op->kind == CTL_OP_DRAIN ? cache_find(rs->s, op->name) : NULL;
	if (h && hap_cmd_show_stat_server(&cmd, rs->s->be_id, h->id, NULL) == 0) {
		batch_push(b, &cmd, rs, op, false);
		b->origin[b->n - 1].probe = true;
	}
	return 0;
}

static int flush(struct controller *c, struct batch *b, struct vxerr *err);

/* Diffs one service against its cache and queues its operations; -1 when a chunk could not be
 * sent. */
static int plan_service(struct controller *c, struct round_svc *rs, struct batch *b, int64_t now,
			struct vxerr *err)
{
	struct ctl_service *s = rs->s;
	int r = 0;
	drain_clocks(rs, now);
	struct ctl_diff_params p = { .now_us = now, .drain_timeout_us = s->cfg->drain_timeout_us,
				     .panic_threshold = c->cfg->controller.panic_threshold, .force = c->force };
	struct ctl_diff_result d;
	ctl_diff(rs->want, rs->n_want, s->cache, s->n_cache, &p, &d);
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
		if (push_op(b, rs, &d.ops[i], &perr) != 0)
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
	const struct ctl_op *op = &o->op;
	const char *labels[] = { ctl_op_kind_name(op->kind) };
	if (st == HAP_RETRY) {
		o->rs->pending = true;
		return;
	}
	if (st != HAP_OK && !(op->kind == CTL_OP_DEL && st == HAP_NOT_FOUND)) {
		s->cache_valid = false; /* HAProxy said no: what it has is for a full read to tell */
		return;
	}
	metric_add(c->m.ops_total, 1, labels);
	cache_apply(s, op, o->id);
	if (op->kind == CTL_OP_DRAIN) {
		ctl_mem_get(s, op->name, true)->drain_started_us = time_mono_us();
	} else if (op->kind == CTL_OP_DEL) {
		c->membership_changed = true;
		ctl_mem_forget(s, op->name);
		ctl_owned_set(c->owned, s->name, op->name, false);
		log_info("server removed", "service=%s server=%s", s->name, log_q(op->name));
	} else if (op->kind == CTL_OP_ADD || op->kind == CTL_OP_SET_ADDR) {
		c->membership_changed = true;
		if (op->kind == CTL_OP_SET_ADDR)
			return;
		ctl_owned_set(c->owned, s->name, op->name, true);
		log_info("server added", "service=%s server=%s", s->name, log_q(op->name));
	}
	if (op->kind == CTL_OP_ADD || op->kind == CTL_OP_SET_WEIGHT)
		ctl_mem_get(s, op->name, true)->fb.applied = op->weight;
}

static void take_replies(struct controller *c, const struct batch *b, const struct hap_reply *replies)
{
	bool failed_op = false;
	for (size_t i = 0; i < b->n; i++) {
		const struct cmd_origin *o = &b->origin[i];
		if (o->probe) {
			const struct ctl_have *h = cache_find(o->rs->s, o->op.name);
			if (take_probe(o, &replies[i]) && h && h->admin == CTL_ADMIN_DRAIN && h->sessions == 0)
				o->rs->again = true;
			continue;
		}
		enum hap_status st = hap_reply_classify(b->cmds[i].kind, replies[i].text, replies[i].len);
		if (st == HAP_ERR || (st == HAP_NOT_FOUND && o->op.kind != CTL_OP_DEL)) {
			char why[160];
			hap_reply_summary(replies[i].text, replies[i].len, why, sizeof(why));
			const char *labels[] = { ctl_op_kind_name(o->op.kind) };
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
		free(rs[i].want);
	}
	free(rs);
}

/* Forgets servers HAProxy no longer has (deleted by someone else, or lost in a restart). */
static void prune_memory(struct ctl_service *s)
{
	size_t kept = 0;
	for (size_t i = 0; i < s->n_mem; i++)
		if (cache_find(s, s->mem[i].name))
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
		if (rs[i].state_ok && rs[i].full)
			prune_memory(s);
		if (s->panic)
			s->cache_valid = false; /* held servers: HAProxy's own checks decide, read them */
		if (rs[i].pending || s->panic || (rs[i].state_ok && !s->cache_valid)) {
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
		struct ctl_service *s = &c->svcs[i];
		if (!s->dirty)
			continue;
		s->dirty = false;
		if (c->force)
			s->cache_valid = false;
		rs[n].s = s;
		rs[n].full = !s->cache_valid;
		rs[n].state_ok = !rs[n].full;
		n++;
	}
	*out = rs;
	return n;
}

static void retry_later(struct controller *c, struct round_svc *rs, size_t n, const char *what, const char *why)
{
	ctl_rt_failed(c);
	if (!c->rt_down_logged) /* once per outage: while down, every round fails at once */
		log_warn("cannot reach HAProxy's runtime API, will retry", "step=%s socket=%s error=%s", what,
			 log_q(c->runtime_socket), log_q(why));
	c->rt_down_logged = true;
	for (size_t i = 0; i < n; i++) {
		rs[i].s->dirty = true;
		rs[i].s->cache_valid = false;
	}
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

/* The whole backend for services whose cache may be wrong (or whose leaving servers could not
 * be read alone). */
static int read_full(struct controller *c, struct round_svc *rs, size_t n, struct vxerr *err)
{
	if (read_states(c, rs, n, err) != 0 || read_stats(c, rs, n, err) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (rs[i].full && !rs[i].s->cache_valid && rs[i].state_ok)
			cache_rebuild(c, &rs[i]);
	return 0;
}

/* Services that read_leaving sent to a full read. */
static bool any_full(const struct round_svc *rs, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (rs[i].full && !rs[i].s->cache_valid && !rs[i].state_ok)
			return true;
	return false;
}

/* Plans and sends the operations of every readable service (only_again: of those whose drained
 * servers turned out idle in the first pass). */
static int plan_all(struct controller *c, struct round_svc *rs, size_t n, struct batch *ops, int64_t start,
		    bool only_again, struct vxerr *err)
{
	int r = 0;
	for (size_t i = 0; i < n && r == 0; i++) {
		if (!rs[i].state_ok || !rs[i].s->cache_valid || (only_again && !rs[i].again))
			continue;
		rs[i].again = false;
		r = plan_service(c, &rs[i], ops, start, err);
	}
	return r == 0 ? flush(c, ops, err) : r;
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
	for (size_t i = 0; i < n; i++)
		prepare_service(c, &rs[i]);
	if (ctl_rt_ensure(c, &err) != 0 || read_full(c, rs, n, &err) != 0 || read_leaving(c, rs, n, &err) != 0 ||
	    (any_full(rs, n) && read_full(c, rs, n, &err) != 0)) {
		retry_later(c, rs, n, "read", err.msg);
		goto out;
	}
	int r = plan_all(c, rs, n, &ops, start, false, &err);
	if (r == 0)
		r = plan_all(c, rs, n, &ops, start, true, &err); /* what the drains' probes let go */
	if (r != 0)
		retry_later(c, rs, n, "apply", err.msg);
	finish_round(c, rs, n, start, r == 0);
out:
	batch_release(&ops);
	round_release(rs, n);
}
