/* Managed mode: the controller renders haproxy.cfg from the Veltrix configuration, validates it
 * with `haproxy -c`, starts HAProxy in master-worker mode (or adopts the one a previous
 * controller started), and reloads it through the master socket only when a service itself
 * changes (DESIGN principle 5). Every rendering carries the servers HAProxy holds at that moment,
 * with their weights and states, so a reload loses nothing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "controller/ctl_int.h"

#define RENDER_MAX (64u << 20)
#define PROC_TIMEOUT_US (15 * USEC_PER_SEC)
#define ADOPT_TIMEOUT_US (2 * USEC_PER_SEC)
#define RESTART_BACKOFF_MAX_US (30 * USEC_PER_SEC)
#define RT_TIMEOUT_US (2 * USEC_PER_SEC)

static char *state_path(const struct controller *c, const char *name)
{
	return xasprintf("%s/%s", c->cfg->haproxy.state_dir, name);
}

static void pools_release(struct ctl_pools *p)
{
	free(p->pools);
	free(p->servers);
	memset(p, 0, sizeof(*p));
}

/* What the cache says HAProxy had: for a restart after a crash, so the new HAProxy serves at
 * once, and servers the panic threshold holds are not forgotten (issue 10 D3, D11). */
static void pools_from_cache(const struct controller *c, struct ctl_pools *out)
{
	size_t total = 0;
	for (size_t i = 0; i < c->n_svcs; i++)
		total += c->svcs[i].n_cache;
	out->servers = xcalloc(total ? total : 1, sizeof(*out->servers));
	out->pools = xcalloc(c->n_svcs ? c->n_svcs : 1, sizeof(*out->pools));
	size_t k = 0;
	for (size_t i = 0; i < c->n_svcs; i++) {
		const struct ctl_service *svc = &c->svcs[i];
		struct hap_pool *pool = &out->pools[out->n_pools++];
		pool->backend = svc->cfg->name;
		pool->servers = &out->servers[k];
		for (size_t j = 0; j < svc->n_cache; j++) {
			const struct ctl_have *h = &svc->cache[j];
			struct hap_server *s = &out->servers[k++];
			*s = (struct hap_server){ .port = h->port, .weight = h->weight, .maxconn = h->maxconn,
						  .admin = (enum hap_admin)h->admin };
			snprintf(s->name, sizeof(s->name), "%s", h->name);
			snprintf(s->addr, sizeof(s->addr), "%s", h->addr);
			pool->n++;
		}
	}
}

static int pools_read(struct hap_rt *rt, const struct vx_config *cfg, struct ctl_pools *out, struct vxerr *err)
{
	struct hap_cmd cmds[2];
	struct hap_reply replies[2] = { { 0 } };
	struct hap_servers_state st = { 0 };
	struct hap_stats stats = { 0 };
	int r = -1;
	hap_cmd_show_servers_state(&cmds[0], NULL, NULL);
	hap_cmd_show_stat(&cmds[1], NULL, NULL);
	if (hap_rt_batch(rt, cmds, 2, replies, err) != 0 ||
	    hap_parse_servers_state(replies[0].text, replies[0].len, &st, err) != 0 ||
	    hap_parse_stat(replies[1].text, replies[1].len, &stats, err) != 0)
		goto out;
	out->servers = xcalloc(st.n ? st.n : 1, sizeof(*out->servers));
	out->pools = xcalloc(cfg->n_services ? cfg->n_services : 1, sizeof(*out->pools));
	size_t k = 0;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const char *be = cfg->services[i].name;
		struct ctl_stat *figures;
		size_t n_figures = ctl_stats_extract(&stats, be, &figures);
		struct hap_pool *pool = &out->pools[out->n_pools++];
		pool->backend = be;
		pool->servers = &out->servers[k];
		for (size_t j = 0; j < st.n; j++) {
			const struct hap_srv_state *row = &st.rows[j];
			if (strcmp(row->backend, be) != 0)
				continue;
			struct hap_server *s = &out->servers[k++];
			snprintf(s->name, sizeof(s->name), "%s", row->name);
			snprintf(s->addr, sizeof(s->addr), "%s", row->addr);
			s->port = (uint16_t)(row->port > 0 && row->port <= 65535 ? row->port : 0);
			s->weight = (int)(row->uweight >= 0 ? row->uweight : 1);
			s->admin = hap_admin_from_bits(row->admin_state);
			const struct ctl_stat *f = ctl_stats_lookup(figures, n_figures, row->name);
			s->maxconn = f ? f->maxconn : 0;
			pool->n++;
		}
		free(figures);
	}
	r = 0;
out:
	hap_replies_release(replies, 2);
	hap_servers_state_release(&st);
	hap_stats_release(&stats);
	return r;
}

static int render(const struct vx_config *cfg, const char *state_file, const struct ctl_pools *p, struct buf *out,
		  struct vxerr *err)
{
	struct hap_render_opts o = { .state_file = state_file, .pools = p ? p->pools : NULL,
				     .n_pools = p ? p->n_pools : 0 };
	buf_init(out, RENDER_MAX);
	return hap_render(cfg, &o, out, err);
}

static int render_structure(const struct vx_config *cfg, struct buf *out)
{
	struct hap_render_opts o = { .structure_only = true };
	buf_init(out, RENDER_MAX);
	return hap_render(cfg, &o, out, NULL);
}

/* The rendering without servers (and without the source file's name): what decides whether a
 * reload is needed. */
static char *skeleton(const struct vx_config *cfg)
{
	struct buf b;
	if (render_structure(cfg, &b) != 0) {
		buf_release(&b);
		return NULL;
	}
	return buf_detach(&b, NULL);
}

/* True when the HAProxy we adopted was started from this configuration's structure. */
static bool skeleton_matches(struct controller *c)
{
	char *path = state_path(c, "haproxy.skeleton"), *want = skeleton(c->cfg);
	char *have = fs_read_file(path, RENDER_MAX, NULL, NULL);
	bool same = have && want && strcmp(have, want) == 0;
	free(path);
	free(want);
	free(have);
	return same;
}

bool ctl_services_structurally_equal(const struct vx_config *a, const struct vx_config *b)
{
	struct buf ra, rb;
	bool same = render_structure(a, &ra) == 0 && render_structure(b, &rb) == 0 &&
		    ra.len == rb.len && memcmp(ra.data, rb.data, ra.len) == 0;
	buf_release(&ra);
	buf_release(&rb);
	return same;
}

/* The servers to carry over: a refresh and a reload read them from the running HAProxy, on a
 * connection of their own (this runs on the worker thread); a restart takes what the loop
 * snapshotted from its cache (nothing at the first start). */
static int carried_pools(struct controller *c, const struct ctl_job *j, struct ctl_pools *p, struct vxerr *err)
{
	if (j->kind == CTL_JOB_RESTART) {
		*p = c->restart_carry;
		memset(&c->restart_carry, 0, sizeof(c->restart_carry));
		return 0;
	}
	struct hap_rt_opts o = { .timeout_us = RT_TIMEOUT_US };
	struct hap_rt *rt = hap_rt_open(c->runtime_socket, &o, err);
	int r = rt ? pools_read(rt, j->cfg, p, err) : -1;
	hap_rt_close(rt);
	if (r != 0)
		vxerr_prefix(err, "reading the servers to carry over: ");
	return r;
}

static bool binds_at(const struct vx_config *cfg, const struct cfg_service *s)
{
	for (size_t i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].bind_port == s->bind_port && strcmp(cfg->services[i].bind_host, s->bind_host) == 0)
			return true;
	return false;
}

/* A reload whose new listener cannot bind fails inside HAProxy only after its old worker has
 * stopped accepting for about 2 s (the new process pauses it, retries, then gives up): the
 * addresses the running configuration does not have yet are tried here first, so that such a
 * reload is refused with the reason and traffic never pauses. c->cfg is what runs; the loop
 * does not replace it while a job is out. */
static int new_binds_free(const struct controller *c, const struct vx_config *next, struct vxerr *err)
{
	for (size_t i = 0; i < next->n_services; i++) {
		const struct cfg_service *s = &next->services[i];
		if (!binds_at(c->cfg, s) && net_bind_probe(s->bind_host, s->bind_port, err) != 0) {
			vxerr_prefix(err, "service '%s': ", s->name);
			return -1;
		}
	}
	return 0;
}

int ctl_managed_prepare(struct controller *c, struct ctl_job *j)
{
	struct ctl_pools p = { 0 };
	struct buf text;
	char *state_file = state_path(c, "haproxy.state");
	int r = -1;
	j->candidate = state_path(c, "haproxy.cfg.new");
	buf_init(&text, RENDER_MAX);
	if ((j->kind == CTL_JOB_RELOAD && new_binds_free(c, j->cfg, &j->err) != 0) ||
	    carried_pools(c, j, &p, &j->err) != 0 || render(j->cfg, state_file, &p, &text, &j->err) != 0 ||
	    fs_write_atomic(j->candidate, text.data, text.len, &j->err) != 0)
		goto out;
	j->skeleton = skeleton(j->cfg);
	r = j->skeleton ? 0 : vxerr_set(&j->err, "cannot render the configuration without servers");
out:
	pools_release(&p);
	buf_release(&text);
	free(state_file);
	return r;
}

/* A reload that fails leaves the old worker running the old configuration: the files of a
 * reload are installed with the previous ones kept beside them (".prev"), so that a failure
 * can put them back and what is on disk always describes what runs (issue 10 D8). */
static void keep_previous(const char *path)
{
	char *prev = xasprintf("%s.prev", path);
	if (rename(path, prev) != 0 && errno != ENOENT)
		log_warn("cannot keep the previous file", "path=%s error=%s", log_q(path), log_q(strerror(errno)));
	free(prev);
}

static void previous_back(struct controller *c, const char *name, bool restore)
{
	char *path = state_path(c, name), *prev = xasprintf("%s.prev", path);
	if (!restore)
		unlink(prev);
	else if (rename(prev, path) != 0 && errno != ENOENT)
		log_warn("cannot restore the previous file", "path=%s error=%s", log_q(path), log_q(strerror(errno)));
	free(prev);
	free(path);
}

/* After a reload: the kept files are dropped (it worked) or put back (it failed). */
static void reload_files_settle(struct controller *c, bool failed)
{
	previous_back(c, "haproxy.cfg", failed);
	previous_back(c, "haproxy.skeleton", failed);
}

int ctl_managed_install(struct controller *c, struct ctl_job *j)
{
	char *cfg_path = state_path(c, "haproxy.cfg"), *skel_path = state_path(c, "haproxy.skeleton");
	int r = -1;
	if (j->kind == CTL_JOB_RELOAD) {
		keep_previous(cfg_path);
		keep_previous(skel_path);
	}
	if (rename(j->candidate, cfg_path) != 0)
		vxerr_set(&j->err, "cannot install %s: %s", cfg_path, strerror(errno));
	else
		r = fs_write_atomic(skel_path, j->skeleton, strlen(j->skeleton), &j->err);
	if (r != 0 && j->kind == CTL_JOB_RELOAD)
		reload_files_settle(c, true);
	free(cfg_path);
	free(skel_path);
	return r;
}

static void proc_opts(struct controller *c, struct hap_proc_opts *o, char **paths)
{
	paths[0] = state_path(c, "haproxy.cfg");
	paths[1] = state_path(c, "haproxy.log");
	paths[2] = state_path(c, "haproxy.state");
	*o = (struct hap_proc_opts){
		.binary = c->cfg->haproxy.binary, .cfg_path = paths[0], .master_socket = c->cfg->haproxy.master_socket,
		.runtime_socket = c->cfg->haproxy.runtime_socket, .log_path = paths[1], .state_file = paths[2],
		.timeout_us = PROC_TIMEOUT_US, .die_with_parent = c->stop_haproxy_on_exit,
	};
}

int ctl_managed_apply(struct controller *c, struct ctl_job *j)
{
	if (j->kind == CTL_JOB_RELOAD)
		return hap_proc_reload_to(&c->proc, j->cfg->haproxy.runtime_socket, &j->err);
	if (j->kind != CTL_JOB_RESTART)
		return 0;
	struct hap_proc_opts o;
	char *paths[3] = { 0 };
	proc_opts(c, &o, paths);
	int r = hap_proc_start(&c->proc, &o, &j->err);
	for (int i = 0; i < 3; i++)
		free(paths[i]);
	return r;
}

static void job_release(struct ctl_job *j)
{
	free(j->candidate);
	free(j->skeleton);
	j->candidate = j->skeleton = NULL;
}

/* The steps of a job one after the other, before the loop runs (start, adoption). */
static int run_now(struct controller *c, struct ctl_job *j)
{
	int r = ctl_managed_prepare(c, j);
	if (r == 0 && (r = hap_config_check(c->cfg->haproxy.binary, j->candidate, PROC_TIMEOUT_US, NULL, &j->err)) != 0)
		vxerr_prefix(&j->err, "rendered configuration %s rejected by haproxy -c: ", j->candidate);
	if (r == 0)
		r = ctl_managed_install(c, j);
	if (r == 0)
		r = ctl_managed_apply(c, j);
	return r;
}

static void reloaded(struct controller *c, const struct vx_config *cfg)
{
	metric_add(c->m.reloads_total, 1, NULL);
	log_info("HAProxy reloaded", "worker_pid=%lld services=%zu", (long long)c->proc.worker_pid, cfg->n_services);
	ctl_rt_drop(c);
	if (strcmp(c->runtime_socket, c->proc.opts.runtime_socket) != 0) { /* moved by an adoption's reload */
		free(c->runtime_socket);
		c->runtime_socket = xstrdup(c->proc.opts.runtime_socket);
	}
	ctl_mark_all_dirty(c);
}

/* An adopted HAProxy serves its runtime API where it was started, which a changed
 * configuration may no longer name (issue 10 D7): its servers are read there, and the reload
 * moves it to the configured path. */
static bool runtime_socket_moved(struct controller *c)
{
	const char *served = c->proc.opts.runtime_socket;
	if (strcmp(served, c->cfg->haproxy.runtime_socket) == 0)
		return false;
	log_warn("the running HAProxy serves its runtime API on another path, reloading it onto the configured one",
		 "served=%s configured=%s", log_q(served), log_q(c->cfg->haproxy.runtime_socket));
	free(c->runtime_socket);
	c->runtime_socket = xstrdup(served);
	return true;
}

int ctl_managed_start(struct controller *c, struct vxerr *err)
{
	struct hap_proc_opts o;
	char *paths[3] = { 0 };
	struct ctl_job j = { .kind = CTL_JOB_RESTART, .cfg = c->cfg };
	int r = -1;
	if (fs_mkdir_p(c->cfg->haproxy.state_dir, err) != 0)
		return -1;
	proc_opts(c, &o, paths);
	struct vxerr adopt_err;
	struct stat st;
	struct hap_proc_opts adopt = o;
	adopt.timeout_us = ADOPT_TIMEOUT_US;
	/* A master socket left behind means a previous controller's HAProxy may still serve. */
	if (stat(o.master_socket, &st) == 0 && hap_proc_adopt(&c->proc, &adopt, &adopt_err) == 0) {
		log_info("adopted the running HAProxy", "master_pid=%d worker_pid=%lld", (int)c->proc.master_pid,
			 (long long)c->proc.worker_pid);
		c->managed_running = true;
		c->proc.opts.timeout_us = PROC_TIMEOUT_US; /* the short timeout was for finding it */
		bool moved = runtime_socket_moved(c);
		/* It may run an older rendering: bring it to this configuration, keeping its servers.
		 * When the structure is the same, no reload: a reload closes idle client connections. */
		if (!moved && skeleton_matches(c)) {
			r = 0;
			goto out;
		}
		j.kind = CTL_JOB_RELOAD;
		if ((r = run_now(c, &j)) == 0)
			reloaded(c, c->cfg);
		reload_files_settle(c, r != 0);
		goto out;
	}
	if ((r = run_now(c, &j)) != 0)
		goto out;
	c->managed_running = true;
	log_info("HAProxy started", "master_pid=%d worker_pid=%lld config=%s", (int)c->proc.master_pid,
		 (long long)c->proc.worker_pid, log_q(paths[0]));
out:
	if (r != 0)
		*err = j.err;
	job_release(&j);
	for (int i = 0; i < 3; i++)
		free(paths[i]);
	return r;
}

void ctl_managed_refresh_config(struct controller *c)
{
	int64_t now = time_mono_us();
	/* A refresh of thousands of servers costs a core for a good part of a second (mostly
	 * `haproxy -c`): it may take a tenth of the time at most. */
	int64_t gap = 10 * c->refresh_took_us > CTL_CONFIG_REFRESH_US ? 10 * c->refresh_took_us : CTL_CONFIG_REFRESH_US;
	if (!c->managed_running || !c->membership_changed || now - c->config_written_us < gap)
		return;
	if (!ctl_job_start(c, CTL_JOB_REFRESH, NULL))
		return; /* a job runs: the next tick */
	c->config_written_us = now;
	c->membership_changed = false;
}

/* An adopted master is not our child: when it dies, its zombie may linger under a parent that
 * does not reap (kill(pid, 0) still succeeds then). */
static bool is_zombie(pid_t pid)
{
	char path[64], text[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true; /* no such process */
	size_t n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	const char *paren = strrchr(text, ')');
	return paren && paren[1] == ' ' && paren[2] == 'Z';
}

static bool haproxy_exited(struct controller *c)
{
	return !hap_proc_running(&c->proc) || is_zombie(c->proc.master_pid);
}

void ctl_managed_supervise(struct controller *c)
{
	if (c->stopping || ctl_job_busy(c) || time_mono_us() < c->hap_restart_at_us)
		return;
	if (c->managed_running) {
		if (!haproxy_exited(c))
			return; /* running but not answering: a reload, or HAProxy's own trouble */
		log_error("HAProxy is gone, starting it again", "master_pid=%d", (int)c->proc.master_pid);
		hap_proc_release(&c->proc);
		c->managed_running = false;
	}
	ctl_rt_drop(c);
	/* The dead process took its servers along: the new one starts with every server the cache
	 * knew, and the reconcile that follows corrects what changed meanwhile. */
	pools_release(&c->restart_carry);
	pools_from_cache(c, &c->restart_carry);
	if (!ctl_job_start(c, CTL_JOB_RESTART, NULL))
		pools_release(&c->restart_carry);
}

static void restart_done(struct controller *c, const struct ctl_job *j)
{
	if (j->rc != 0) {
		int64_t wait = (int64_t)USEC_PER_SEC << (c->hap_restart_failures < 5 ? c->hap_restart_failures : 5);
		c->hap_restart_failures++;
		c->hap_restart_at_us = time_mono_us() + (wait < RESTART_BACKOFF_MAX_US ? wait : RESTART_BACKOFF_MAX_US);
		log_error("cannot start HAProxy, will retry", "attempt=%d error=%s", c->hap_restart_failures,
			  log_q(j->err.msg));
		return;
	}
	c->managed_running = true;
	c->hap_restart_failures = 0;
	metric_add(c->m.restarts_total, 1, NULL);
	log_info("HAProxy started again", "master_pid=%d worker_pid=%lld", (int)c->proc.master_pid,
		 (long long)c->proc.worker_pid);
	ctl_mark_all_dirty(c);
	ctl_schedule_reconcile(c);
}

static void reload_done(struct controller *c, struct ctl_job *j)
{
	reload_files_settle(c, j->rc != 0);
	if (j->rc != 0) {
		log_error("HAProxy reload failed, keeping the running configuration", "error=%s", log_q(j->err.msg));
		cfg_free(j->next);
	} else {
		reloaded(c, j->next);
		ctl_config_swap(c, j->next);
	}
	j->next = NULL;
}

void ctl_managed_done(struct controller *c, struct ctl_job *j)
{
	if (j->kind == CTL_JOB_REFRESH)
		c->refresh_took_us = time_mono_us() - c->config_written_us;
	if (j->kind == CTL_JOB_REFRESH && j->rc != 0) {
		log_warn("cannot refresh haproxy.cfg with the current servers", "error=%s", log_q(j->err.msg));
		c->membership_changed = true; /* tried again at the next tick after the interval */
	} else if (j->kind == CTL_JOB_RELOAD) {
		reload_done(c, j);
	} else if (j->kind == CTL_JOB_RESTART) {
		restart_done(c, j);
	}
	job_release(j);
	if (c->reload_pending && !c->stopping) {
		c->reload_pending = false;
		ctl_reload_config(c);
	}
}

void ctl_managed_discard(struct controller *c, struct ctl_job *j)
{
	(void)c;
	if (j->candidate)
		unlink(j->candidate);
	cfg_free(j->next);
	j->next = NULL;
	job_release(j);
}

void ctl_managed_stop(struct controller *c)
{
	pools_release(&c->restart_carry); /* a restart the stop cut short */
	if (!c->managed_running)
		return;
	if (c->stop_haproxy_on_exit) {
		hap_proc_stop(&c->proc, 5 * USEC_PER_SEC);
		log_info("HAProxy stopped", "state_dir=%s", log_q(c->cfg->haproxy.state_dir));
	}
	hap_proc_release(&c->proc);
	c->managed_running = false;
}
