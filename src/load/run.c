/* A load run: checks the spec, starts the workers, merges their per-second counts into the
 * timeline (a ring of a few open seconds, so memory does not grow with the run's length beyond
 * one small record per second), delivers the seconds to the caller's thread, and assembles the
 * result. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/timeutil.h"
#include "load/load_int.h"

#define MAX_THREADS 64
#define MAX_CONNECTIONS 100000
#define DEFAULT_GRACE_US USEC_PER_SEC

static int check_spec(const struct load_spec *s, struct vxerr *err)
{
	if (s->threads < 1 || s->threads > MAX_THREADS)
		return vxerr_set(err, "threads must be 1 to %d", MAX_THREADS);
	if (s->connections < s->threads || s->connections > MAX_CONNECTIONS)
		return vxerr_set(err, "connections must be at least the number of threads (%d) and at most %d",
				 s->threads, MAX_CONNECTIONS);
	if (s->nphases > LOAD_MAX_PHASES)
		return vxerr_set(err, "more than %d load phases", LOAD_MAX_PHASES);
	if (s->nphases == 0 && s->duration_us <= 0)
		return vxerr_set(err, "duration must be longer than 0s");
	for (size_t i = 0; i < s->nphases; i++)
		if (s->phases[i].duration_us <= 0 || !(s->phases[i].rps_from >= 0) || !(s->phases[i].rps_to >= 0) ||
		    s->phases[i].rps_from > LOAD_MAX_RPS || s->phases[i].rps_to > LOAD_MAX_RPS)
			return vxerr_set(err, "load phase %zu: rate must be 0 to %.0f and duration above 0s", i + 1,
					 LOAD_MAX_RPS);
	if (s->timeout_us <= 0)
		return vxerr_set(err, "timeout must be longer than 0s");
	if (s->body_len > 0 && !s->body)
		return vxerr_set(err, "body length without a body");
	return 0;
}

static struct load_run *run_new(const struct load_spec *spec, struct vxerr *err)
{
	struct load_target target;
	char *req;
	size_t req_len;
	if (check_spec(spec, err) != 0 || load_url_parse(spec->url, &target, err) != 0 ||
	    load_request_render(spec, &target, &req, &req_len, err) != 0)
		return NULL;
	struct load_run *run = xcalloc(1, sizeof(*run));
	run->spec = *spec;
	run->spec.url = NULL; /* not kept: the caller's string */
	run->spec.headers = NULL;
	run->spec.body = NULL;
	run->spec.method = NULL;
	if (run->spec.grace_us < 0)
		run->spec.grace_us = spec->timeout_us < DEFAULT_GRACE_US ? spec->timeout_us : DEFAULT_GRACE_US;
	run->target = target;
	run->request = req;
	run->request_len = req_len;
	run->head_request = spec->method && strcmp(spec->method, "HEAD") == 0;
	if (spec->nphases) {
		run->phases = xcalloc(spec->nphases, sizeof(*run->phases));
		memcpy(run->phases, spec->phases, spec->nphases * sizeof(*run->phases));
	}
	run->spec.phases = run->phases;
	run->window_us = spec->nphases ? load_phases_duration(run->phases, spec->nphases) : spec->duration_us;
	run->nseconds = (run->window_us + USEC_PER_SEC - 1) / USEC_PER_SEC;
	atomic_init(&run->stop, false);
	atomic_init(&run->stop_at_us, -1);
	atomic_init(&run->rate_milli, -1);
	pthread_mutex_init(&run->mu, NULL);
	pthread_cond_init(&run->cv, NULL);
	for (int i = 0; i < LOAD_RING; i++)
		run->ring[i].second = -1;
	return run;
}

struct load_run *load_start(const struct load_spec *spec, struct vxerr *err)
{
	struct load_run *run = run_new(spec, err);
	if (!run)
		return NULL;
	run->nworkers = spec->threads;
	run->workers = xcalloc((size_t)run->nworkers, sizeof(*run->workers));
	for (int i = 0; i < run->nworkers; i++) {
		int n = spec->connections / spec->threads + (i < spec->connections % spec->threads ? 1 : 0);
		run->workers[i] = load_worker_new(run, i, n);
	}
	run->running = run->nworkers;
	run->t0_us = time_mono_us();
	for (int i = 0; i < run->nworkers; i++) {
		if (load_worker_start(run->workers[i], err) != 0) {
			load_run_free(run);
			return NULL;
		}
	}
	return run;
}

void load_set_rate(struct load_run *run, double rps)
{
	if (!(rps >= 0))
		rps = 0;
	if (rps > LOAD_MAX_RPS)
		rps = LOAD_MAX_RPS;
	atomic_store(&run->rate_milli, (long long)llround(rps * 1000.0));
	for (int i = 0; i < run->nworkers; i++)
		load_worker_wake(run->workers[i]);
}

void load_stop(struct load_run *run)
{
	long long none = -1;
	atomic_compare_exchange_strong(&run->stop_at_us, &none, (long long)(time_mono_us() - run->t0_us));
	atomic_store(&run->stop, true);
	for (int i = 0; i < run->nworkers; i++)
		load_worker_wake(run->workers[i]);
}

static double target_rps(struct load_run *run, int64_t second)
{
	if (run->spec.nphases == 0)
		return 0;
	long long milli = atomic_load(&run->rate_milli);
	if (milli >= 0)
		return (double)milli / 1000.0;
	int64_t a = second * USEC_PER_SEC, b = a + USEC_PER_SEC;
	if (b > run->window_us)
		b = run->window_us;
	return b > a ? load_phases_area(run->phases, run->spec.nphases, a, b) * 1e6 / (double)(b - a) : 0;
}

/* Closes one second of the timeline (under the lock). */
static void finalize(struct load_run *run, struct sec_slot *s)
{
	struct load_second rec = { .second = s->second, .counts = s->counts };
	int64_t a = s->second * USEC_PER_SEC, b = a + USEC_PER_SEC;
	if (b > run->window_us && run->window_us > a)
		b = run->window_us;
	rec.rps = (double)s->counts.responses * 1e6 / (double)(b - a);
	rec.target_rps = target_rps(run, s->second);
	load_pcts_of(&s->lat, &rec.latency);
	run->timeline = xgrow(run->timeline, sizeof(*run->timeline), &run->captimeline, run->ntimeline + 1);
	run->timeline[run->ntimeline++] = rec;
	s->second = -1;
	s->contributions = 0;
	memset(&s->counts, 0, sizeof(s->counts));
	hist_init(&s->lat);
}

void load_run_publish(struct load_run *run, int64_t second, const struct load_counts *c, const struct hist *lat)
{
	pthread_mutex_lock(&run->mu);
	struct sec_slot *s = &run->ring[second % LOAD_RING];
	if (s->second != -1 && s->second != second)
		finalize(run, s); /* a worker fell LOAD_RING seconds behind: close it as it is */
	s->second = second;
	load_counts_add(&s->counts, c);
	hist_merge(&s->lat, lat);
	if (++s->contributions == run->nworkers)
		finalize(run, s);
	pthread_cond_broadcast(&run->cv);
	pthread_mutex_unlock(&run->mu);
}

void load_run_worker_done(struct load_run *run)
{
	pthread_mutex_lock(&run->mu);
	run->running--;
	pthread_cond_broadcast(&run->cv);
	pthread_mutex_unlock(&run->mu);
}

/* After the workers ended: the seconds some worker never reached (it stopped earlier). */
static void flush_ring(struct load_run *run)
{
	for (;;) {
		struct sec_slot *oldest = NULL;
		for (int i = 0; i < LOAD_RING; i++)
			if (run->ring[i].second >= 0 && (!oldest || run->ring[i].second < oldest->second))
				oldest = &run->ring[i];
		if (!oldest)
			return;
		finalize(run, oldest);
	}
}

static void deliver(struct load_run *run, size_t *delivered)
{
	pthread_mutex_lock(&run->mu);
	for (;;) {
		while (*delivered == run->ntimeline && run->running > 0)
			pthread_cond_wait(&run->cv, &run->mu);
		if (*delivered == run->ntimeline) {
			flush_ring(run);
			if (*delivered == run->ntimeline)
				break;
		}
		struct load_second rec = run->timeline[(*delivered)++];
		pthread_mutex_unlock(&run->mu);
		if (run->spec.on_second)
			run->spec.on_second(&rec, run->spec.arg);
		pthread_mutex_lock(&run->mu);
	}
	pthread_mutex_unlock(&run->mu);
}

static int by_second(const void *a, const void *b)
{
	const struct load_second *x = a, *y = b;
	return (x->second > y->second) - (x->second < y->second);
}

static void join_all(struct load_run *run)
{
	if (run->joined)
		return;
	for (int i = 0; i < run->nworkers; i++)
		if (run->workers[i])
			load_worker_join(run->workers[i]);
	run->joined = true;
}

static struct load_result *assemble(struct load_run *run)
{
	struct load_result *r = xcalloc(1, sizeof(*r)); /* zeroed histograms are empty ones */
	r->open_loop = run->spec.nphases > 0;
	r->connections = run->spec.connections;
	r->threads = run->nworkers;
	r->elapsed_us = time_mono_us() - run->t0_us;
	long long stop_at = atomic_load(&run->stop_at_us);
	r->stopped_early = stop_at >= 0 && stop_at < run->window_us;
	r->duration_us = r->stopped_early ? (stop_at > 0 ? stop_at : 1) : run->window_us;
	for (int i = 0; i < run->nworkers; i++)
		load_worker_collect(run->workers[i], r);
	double secs = (double)r->duration_us / 1e6;
	r->achieved_rps = (double)r->counts.responses / secs;
	r->intended_rps = r->open_loop ? (double)r->intended / secs : 0;
	qsort(run->timeline, run->ntimeline, sizeof(*run->timeline), by_second);
	r->timeline = run->timeline;
	r->nseconds = run->ntimeline;
	run->timeline = NULL;
	run->ntimeline = run->captimeline = 0;
	r->generator_saturated = r->open_loop && hist_count_above(&r->generator_lag, 10 * USEC_PER_MS) * 100 > r->counts.sent;
	return r;
}

struct load_result *load_wait(struct load_run *run)
{
	size_t delivered = 0;
	run->waited = true;
	deliver(run, &delivered);
	join_all(run);
	return assemble(run);
}

void load_run_free(struct load_run *run)
{
	if (!run)
		return;
	if (!run->waited && run->workers) {
		load_stop(run);
		join_all(run);
	}
	for (int i = 0; run->workers && i < run->nworkers; i++)
		load_worker_free(run->workers[i]);
	free(run->workers);
	free(run->phases);
	free(run->request);
	free(run->timeline);
	pthread_mutex_destroy(&run->mu);
	pthread_cond_destroy(&run->cv);
	free(run);
}

void load_result_free(struct load_result *r)
{
	if (!r)
		return;
	free(r->timeline);
	free(r);
}
