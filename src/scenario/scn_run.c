/* One run of a scenario: the director (the caller's thread) starts the stack and the backends,
 * waits until HAProxy routes to them, then starts the clock. A load thread runs the phases one
 * after the other, each as its own load run (so each phase has exact latency histograms for its
 * assertions), placed on the scenario clock; the director fires the faults at their times,
 * steps backends and faults, samples the backends each second and watches every process. Any
 * way the run ends, everything is torn down before scn_run returns. */
#include <errno.h>
#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "scenario/scn_int.h"

#define READY_TIMEOUT_US (30 * USEC_PER_SEC)
#define TICK_MS 50
#define WORK_MAX 80 /* unix socket paths under it must stay below 108 bytes */

static volatile sig_atomic_t interrupted;

void scn_interrupt(void)
{
	interrupted = 1;
}

bool scn_interrupted(void)
{
	return interrupted != 0;
}

int64_t scn_now_us(const struct scn_rt *rt)
{
	return time_mono_us() - rt->t0_us;
}

void scn_note(struct scn_rt *rt, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	if (!rt->opts->progress)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	rt->opts->progress(rt->opts->progress_arg, line);
}

static void invalid(struct scn_rt *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void invalid(struct scn_rt *rt, const char *fmt, ...)
{
	pthread_mutex_lock(&rt->mu);
	if (rt->res->verdict != SCN_VERDICT_INVALID) { /* the first reason is the one that counts */
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(rt->res->invalid_reason, sizeof(rt->res->invalid_reason), fmt, ap);
		va_end(ap);
		rt->res->verdict = SCN_VERDICT_INVALID;
	}
	pthread_mutex_unlock(&rt->mu);
}

/* ---- the load thread ---- */

struct phase_ctx {
	struct scn_rt *rt;
	const struct scn_phase *phase;
	double offset_s;
	double window_s; /* the run's length: its last record may cover less than a second */
};

static void merge_latency(struct scn_second *dst, const struct load_second *src)
{
	if (src->counts.responses == 0)
		return;
	if (!dst->has_latency) {
		dst->latency = src->latency;
		dst->has_latency = true;
		return;
	}
	/* Two phases share this second (a boundary inside it): upper percentiles take the worse
	 * one, the median and mean are weighted by responses. Phase assertions use exact
	 * histograms; only the per-second timeline is approximated here. */
	double a = (double)(dst->counts.responses - src->counts.responses), b = (double)src->counts.responses;
	struct load_pcts *d = &dst->latency;
	const struct load_pcts *s = &src->latency;
	d->p50_us = (int64_t)((d->p50_us * a + s->p50_us * b) / (a + b));
	d->mean_us = (int64_t)((d->mean_us * a + s->mean_us * b) / (a + b));
	d->p90_us = d->p90_us > s->p90_us ? d->p90_us : s->p90_us;
	d->p99_us = d->p99_us > s->p99_us ? d->p99_us : s->p99_us;
	d->p999_us = d->p999_us > s->p999_us ? d->p999_us : s->p999_us;
	d->max_us = d->max_us > s->max_us ? d->max_us : s->max_us;
}

static void progress_line(struct phase_ctx *c, size_t g, const struct load_second *sec)
{
	uint64_t failed = load_counts_failed(&sec->counts), fin = load_counts_finished(&sec->counts);
	scn_note(c->rt, "%3zus  %-12.12s target %6.0f/s  got %6.0f/s  p50 %6.1fms  p99 %7.1fms  failed %llu (%.2f%%)", g,
		 c->phase->name, sec->target_rps, sec->rps, (double)sec->latency.p50_us / 1000.0,
		 (double)sec->latency.p99_us / 1000.0, (unsigned long long)failed, fin ? 100.0 * (double)failed / (double)fin : 0.0);
}

static void on_second(const struct load_second *sec, void *arg)
{
	struct phase_ctx *c = arg;
	struct scn_rt *rt = c->rt;
	long g = lround(c->offset_s + (double)sec->second);
	if (g < 0)
		g = 0;
	pthread_mutex_lock(&rt->mu);
	if ((size_t)g < rt->res->n_seconds) {
		struct scn_second *d = &rt->res->seconds[g];
		load_counts_add(&d->counts, &sec->counts);
		d->covered_s += fmin(1.0, c->window_s - (double)sec->second);
		merge_latency(d, sec);
	}
	pthread_mutex_unlock(&rt->mu);
	progress_line(c, (size_t)g, sec);
}

static struct load_result *run_phase(struct scn_rt *rt, size_t k, int64_t start_us, int64_t end_us)
{
	const struct scn_phase *ph = &rt->s->phases[k];
	int64_t now = scn_now_us(rt);
	double frac = ph->duration_us > 0 ? (double)(now - start_us) / (double)ph->duration_us : 0;
	struct load_phase lp = { ph->rate.from + (ph->rate.to - ph->rate.from) * (frac > 0 ? frac : 0), ph->rate.to,
				 end_us - now };
	char url[300];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", (unsigned)rt->front_port, rt->s->load.path);
	struct phase_ctx ctx = { rt, ph, (double)now / 1e6, (double)lp.duration_us / 1e6 };
	struct load_spec spec = { .url = url, .connections = (int)rt->s->load.connections,
				  .threads = (int)rt->s->load.threads, .phases = &lp, .nphases = 1,
				  .timeout_us = rt->s->load.timeout_us, .grace_us = rt->s->load.timeout_us,
				  .on_second = on_second, .arg = &ctx };
	struct vxerr err;
	struct load_run *run = load_start(&spec, &err);
	if (!run) {
		invalid(rt, "phase %s: the load generator could not start: %s", ph->name, err.msg);
		return NULL;
	}
	pthread_mutex_lock(&rt->mu);
	rt->current_run = run;
	bool stop = rt->abort_load;
	pthread_mutex_unlock(&rt->mu);
	if (stop)
		load_stop(run);
	struct load_result *r = load_wait(run);
	pthread_mutex_lock(&rt->mu);
	rt->current_run = NULL;
	pthread_mutex_unlock(&rt->mu);
	load_run_free(run);
	return r;
}

static void *load_main(void *arg)
{
	struct scn_rt *rt = arg;
	int64_t start = 0;
	for (size_t k = 0; k < rt->s->n_phases; k++) {
		const struct scn_phase *ph = &rt->s->phases[k];
		int64_t end = start + ph->duration_us;
		struct scn_phase_result *pr = &rt->res->phases[k];
		pthread_mutex_lock(&rt->mu);
		bool stop = rt->abort_load;
		pthread_mutex_unlock(&rt->mu);
		if (stop)
			break;
		int64_t now = scn_now_us(rt);
		if (now < start)
			time_sleep_us(start - now);
		pr->phase = ph;
		pr->start_s = (double)scn_now_us(rt) / 1e6;
		if (end - scn_now_us(rt) >= 20 * USEC_PER_MS) {
			scn_note(rt, "%.1fs phase %s: %.0f..%.0f req/s for %.1fs", pr->start_s, ph->name, ph->rate.from,
				 ph->rate.to, (double)ph->duration_us / 1e6);
			struct load_result *r = run_phase(rt, k, start, end);
			pthread_mutex_lock(&rt->mu);
			pr->load = r;
			pthread_mutex_unlock(&rt->mu);
			if (!r)
				break;
		}
		pr->end_s = (double)scn_now_us(rt) / 1e6;
		rt->res->n_phases = k + 1;
		start = end;
	}
	pthread_mutex_lock(&rt->mu);
	rt->load_done = true;
	pthread_mutex_unlock(&rt->mu);
	return NULL;
}

static void stop_load(struct scn_rt *rt)
{
	pthread_mutex_lock(&rt->mu);
	rt->abort_load = true;
	if (rt->current_run)
		load_stop(rt->current_run);
	pthread_mutex_unlock(&rt->mu);
}

/* ---- the director ---- */

static bool load_finished(struct scn_rt *rt)
{
	pthread_mutex_lock(&rt->mu);
	bool done = rt->load_done;
	pthread_mutex_unlock(&rt->mu);
	return done;
}

static void fire_faults(struct scn_rt *rt, int64_t now)
{
	while (rt->next_fault < rt->s->n_faults && rt->s->faults[rt->next_fault].at_us <= now) {
		struct scn_fault_run *fr = &rt->faults[rt->next_fault++];
		scn_note(rt, "%.1fs fault %s%s%s", (double)now / 1e6, scn_action_name(fr->f->action),
			 fr->f->target[0] ? " " : "", fr->f->target);
		scn_fault_begin(rt, fr);
	}
	for (size_t i = 0; i < rt->next_fault; i++)
		scn_fault_step(rt, &rt->faults[i]);
}

static void sample_due(struct scn_rt *rt, int64_t now)
{
	while ((int64_t)rt->sampled_upto * USEC_PER_SEC <= now && rt->sampled_upto < rt->res->n_seconds + 1)
		scn_sampler_begin(rt->sampler, rt, rt->sampled_upto++);
}

static void direct(struct scn_rt *rt)
{
	char why[256];
	for (;;) {
		int64_t now = scn_now_us(rt);
		if (scn_interrupted()) {
			invalid(rt, "interrupted");
			break;
		}
		if (scn_procs_reap(&rt->procs, why, sizeof(why)) != 0) {
			invalid(rt, "%s at %.1fs: the stack broke, so the run says nothing (logs in %s)", why,
				(double)now / 1e6, rt->work);
			break;
		}
		fire_faults(rt, now);
		for (size_t i = 0; i < rt->n_bks; i++)
			scn_bk_step(rt, &rt->bks[i]);
		sample_due(rt, now);
		if (load_finished(rt))
			break;
		scn_sampler_poll(rt->sampler, rt, TICK_MS);
	}
	stop_load(rt);
	pthread_join(rt->load_thread, NULL);
	rt->load_started = false;
	/* Close the last second's backend counts. */
	sample_due(rt, scn_now_us(rt) + USEC_PER_SEC);
	for (int i = 0; i < 15; i++)
		scn_sampler_poll(rt->sampler, rt, TICK_MS);
}

/* ---- setup and teardown ---- */

static int make_work_dir(struct scn_rt *rt, struct vxerr *err)
{
	const char *tmp = getenv("TMPDIR");
	if (rt->opts->work_dir) {
		if (strlen(rt->opts->work_dir) > WORK_MAX)
			return vxerr_set(err, "work directory path longer than %d bytes (unix sockets go under it)", WORK_MAX);
		snprintf(rt->work, sizeof(rt->work), "%s", rt->opts->work_dir);
		if (mkdir(rt->work, 0700) != 0 && errno != EEXIST)
			return vxerr_set(err, "cannot create %s: %s", rt->work, strerror(errno));
		return 0;
	}
	if (!tmp || !*tmp || strlen(tmp) > WORK_MAX - 30)
		tmp = "/tmp";
	snprintf(rt->work, sizeof(rt->work), "%s/veltrix-scenario-XXXXXX", tmp);
	if (!mkdtemp(rt->work))
		return vxerr_set(err, "cannot create a directory under %s: %s", tmp, strerror(errno));
	return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static int init_backends(struct scn_rt *rt, struct vxerr *err)
{
	for (size_t i = 0; i < rt->s->n_backends; i++) {
		struct scn_bk *b = &rt->bks[rt->n_bks++];
		memset(b, 0, sizeof(*b));
		b->def = &rt->s->backends[i];
		b->group = &rt->s->groups[b->def->group];
		b->idx = i;
		b->service = b->group->service;
		b->fail_rate = b->group->fail_rate;
		int port;
		do
			port = net_free_port();
		while (port > 0 && port == rt->front_port);
		if (port <= 0)
			return vxerr_set(err, "no free loopback port for %s", b->def->name);
		b->port = (uint16_t)port;
	}
	return 0;
}

static int start_backends(struct scn_rt *rt, struct vxerr *err)
{
	for (size_t i = 0; i < rt->n_bks; i++) {
		if (!rt->bks[i].def->initial)
			continue;
		scn_bk_start(rt, &rt->bks[i]);
		if (rt->bks[i].failed)
			return vxerr_set(err, "backend %s: %s", rt->bks[i].def->name, rt->bks[i].fail_why);
	}
	return 0;
}

/* Backends first: once each listens its port is certain, and the static stack's haproxy.cfg
 * (which lists them) can be written. */
static int wait_listening(struct scn_rt *rt, struct vxerr *err)
{
	int64_t deadline = time_mono_us() + 15 * USEC_PER_SEC;
	for (;;) {
		size_t up = 0, want = 0;
		for (size_t i = 0; i < rt->n_bks; i++) {
			struct scn_bk *b = &rt->bks[i];
			if (!b->def->initial)
				continue;
			want++;
			scn_bk_step(rt, b);
			if (b->failed)
				return vxerr_set(err, "backend %s: %s (%s/%s.log)", b->def->name, b->fail_why, rt->work, b->def->name);
			up += b->state == BK_UP;
		}
		if (up == want)
			return 0;
		if (time_mono_us() > deadline || scn_interrupted())
			return vxerr_set(err, "the backends did not all listen within 15s (logs in %s)", rt->work);
		time_sleep_us(20000);
	}
}

static void register_backends(struct scn_rt *rt)
{
	for (size_t i = 0; i < rt->n_bks && rt->reg; i++)
		if (rt->bks[i].state == BK_UP)
			scn_reg_put(rt->reg, i, rt->bks[i].def->name, rt->bks[i].port, rt->bks[i].def->capacity, "up");
}

static int prepare(struct scn_rt *rt, struct vxerr *err)
{
	/* The stack first: agents need etcd before they can register their backends. */
	if (init_backends(rt, err) != 0 || scn_stack_start(rt, err) != 0 || start_backends(rt, err) != 0 ||
	    wait_listening(rt, err) != 0)
		return -1;
	register_backends(rt);
	scn_note(rt, "%s stack up in %s; waiting for HAProxy to route to %zu backends",
		 rt->stack == SCN_STACK_STATIC ? "static" : "veltrix", rt->work, rt->n_bks);
	return scn_stack_wait_ready(rt, READY_TIMEOUT_US, err);
}

static void start_clock(struct scn_rt *rt)
{
	rt->t0_us = time_mono_us();
	for (size_t i = 0; i < rt->s->n_faults; i++) {
		rt->faults[i].f = &rt->s->faults[i];
		rt->faults[i].res = &rt->res->faults[i];
		rt->res->faults[i].fault = &rt->s->faults[i];
		rt->res->faults[i].started_s = rt->res->faults[i].done_s = -1;
	}
	rt->res->n_faults = rt->s->n_faults;
	if (pthread_create(&rt->load_thread, NULL, load_main, rt) != 0) {
		invalid(rt, "cannot start the load thread");
		return;
	}
	rt->load_started = true;
	direct(rt);
}

static struct scn_result *result_new(const struct scn *s)
{
	struct scn_result *r = xcalloc(1, sizeof(*r));
	r->scn = s;
	r->n_seconds = (size_t)((scn_duration_us(s) + USEC_PER_SEC - 1) / USEC_PER_SEC) + 1;
	r->seconds = xcalloc(r->n_seconds, sizeof(*r->seconds));
	r->n_backends = s->n_backends;
	for (size_t i = 0; i < r->n_seconds; i++)
		for (size_t b = 0; b < SCN_MAX_BACKENDS; b++)
			r->seconds[i].served[b] = r->seconds[i].rejected[b] = NAN;
	return r;
}

/* The load generator's own limits (veltrix load's rule, docs/load.md): running out of ports or
 * descriptors in any phase; saturation (more than 1% of the requests sent over 10 ms late while a
 * connection was free) over the whole run, since a phase of a second or two would otherwise
 * turn one start-up hiccup into a verdict. */
static void check_generator(struct scn_result *r)
{
	char why[200];
	struct hist *lag = xcalloc(1, sizeof(*lag));
	uint64_t sent = 0;
	for (size_t i = 0; i < r->n_phases && r->verdict != SCN_VERDICT_INVALID; i++) {
		const struct load_result *l = r->phases[i].load;
		if (!l)
			continue;
		hist_merge(lag, &l->generator_lag);
		sent += l->counts.sent;
		if ((l->counts.errors[LOAD_ERR_PORTS] || l->counts.errors[LOAD_ERR_FDS]) && !load_result_valid(l, why, sizeof(why))) {
			r->verdict = SCN_VERDICT_INVALID;
			snprintf(r->invalid_reason, sizeof(r->invalid_reason), "phase %s: %s", r->phases[i].phase->name, why);
		}
	}
	uint64_t late = hist_count_above(lag, 10 * USEC_PER_MS);
	if (r->verdict != SCN_VERDICT_INVALID && late * 100 > sent) {
		r->verdict = SCN_VERDICT_INVALID;
		snprintf(r->invalid_reason, sizeof(r->invalid_reason),
			 "the load generator was saturated: %.1f%% of the requests left more than 10ms late while a connection "
			 "was free (the machine is too busy for this load; lower the rates, or --load-scale)",
			 sent ? 100.0 * (double)late / (double)sent : 0.0);
	}
	free(lag);
}

static void judge(struct scn_result *r)
{
	check_generator(r);
	scn_totals_compute(r, &r->totals);
	bool ok = true;
	for (size_t i = 0; i < r->n_phases; i++) {
		struct scn_phase_result *p = &r->phases[i];
		p->ok = !p->load || load_slo_check(&p->phase->slo, p->load, p->outcomes);
		ok &= p->ok;
	}
	r->overall_ok = scn_overall_check(r, r->overall);
	ok &= r->overall_ok;
	if (r->verdict != SCN_VERDICT_INVALID)
		r->verdict = ok ? SCN_VERDICT_PASS : SCN_VERDICT_FAIL;
}

struct scn_result *scn_run(const struct scn *s, const struct scn_run_opts *opts, struct vxerr *err)
{
	if (!opts->veltrix_bin)
		return vxerr_set(err, "the veltrix binary is not known"), NULL;
	struct scn_rt *rt = xcalloc(1, sizeof(*rt));
	struct scn_result *res = result_new(s);
	int64_t began = time_mono_us();
	rt->s = s;
	rt->opts = opts;
	rt->res = res;
	rt->stack = opts->stack;
	res->stack = opts->stack;
	pthread_mutex_init(&rt->mu, NULL);
	res->verdict = SCN_VERDICT_PASS;
	if (rt->stack == SCN_STACK_VELTRIX && s->registration == SCN_REG_AGENT && !opts->agent_available) {
		invalid(rt, "registration: agent needs `veltrix agent`, which this build does not have");
		goto done;
	}
	if (make_work_dir(rt, err) != 0) {
		invalid(rt, "%s", err->msg);
		goto done;
	}
	snprintf(res->work_dir, sizeof(res->work_dir), "%s", rt->work);
	scn_procs_init(&rt->procs, opts->keep_work_dir ? NULL : rt->work);
	rt->sampler = scn_sampler_new();
	if (prepare(rt, err) == 0)
		start_clock(rt);
	else if (scn_interrupted())
		invalid(rt, "interrupted");
	else
		invalid(rt, "the stack did not start: %s", err->msg);
	scn_stack_stop(rt);
	scn_sampler_free(rt->sampler);
	res->work_dir_kept = opts->keep_work_dir || (res->verdict == SCN_VERDICT_INVALID && !scn_interrupted());
	if (!res->work_dir_kept)
		nftw(rt->work, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
done:
	res->elapsed_s = (double)(time_mono_us() - began) / 1e6;
	judge(res);
	pthread_mutex_destroy(&rt->mu);
	free(rt);
	return res;
}

void scn_result_free(struct scn_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < SCN_MAX_PHASES; i++)
		load_result_free(r->phases[i].load);
	free(r->seconds);
	free(r);
}

int scn_exit_code(const struct scn_result *r)
{
	return r->verdict == SCN_VERDICT_PASS ? 0 : r->verdict == SCN_VERDICT_FAIL ? 1 : 3;
}
