/* Internals of src/load shared by its files (not part of the face in load.h): the open-loop
 * schedule, the target and the rendered request, and the worker/run structures. */
#ifndef VX_LOAD_INT_H
#define VX_LOAD_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/err.h"
#include "load/load.h"

/* ---- schedule (pure) ----
 * The intended send times of one worker: the k-th request is due when the integral of the
 * rate (times this worker's share) reaches k, so a ramp is followed exactly and no rounding
 * accumulates. t_us is the due time of the next request, in microseconds from the start. */
struct load_sched {
	const struct load_phase *phases;
	size_t nphases;
	double share;       /* this worker's fraction of the total rate */
	size_t phase;       /* phase holding t_us */
	double t_us;
	double end_us;      /* nothing is due at or after this */
	double override_rps; /* < 0: follow the phases; >= 0: a constant total rate */
	bool done;
};

void load_sched_init(struct load_sched *s, const struct load_phase *phases, size_t n, double share, double offset_us);
/* Moves t_us to the next due time; false when the schedule is over. */
bool load_sched_advance(struct load_sched *s);
/* Switches to a constant total rate from now_us on (0 pauses until the next call). */
void load_sched_set_rate(struct load_sched *s, double rps, double now_us);
/* The total rate the schedule follows at t_us. */
double load_sched_rate_at(const struct load_sched *s, double t_us);

/* ---- target and request (pure) ---- */
#define LOAD_URL_MAX 2048
#define LOAD_REQ_MAX (1u << 20)

struct load_target {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char authority[300]; /* Host header: as written in the URL */
	char path[LOAD_URL_MAX];
};

int load_url_parse(const char *url, struct load_target *out, struct vxerr *err);
/* Renders the request once: method, path, Host, User-Agent, the -H headers, Content-Length
 * and body. Checks the method and headers. Caller frees *out. */
int load_request_render(const struct load_spec *spec, const struct load_target *t, char **out, size_t *len,
			struct vxerr *err);

/* ---- run ---- */
struct worker;

struct sec_slot {
	int64_t second; /* -1 when free */
	int contributions;
	struct load_counts counts;
	struct hist lat;
};

#define LOAD_RING 4

struct load_run {
	struct load_spec spec;       /* copied; the pointers below own the copies */
	struct load_phase *phases;
	struct load_target target;
	char *request;
	size_t request_len;
	bool head_request;
	int nworkers;
	struct worker **workers;
	int64_t t0_us;               /* monotonic start */
	int64_t window_us;           /* scheduled length */
	int64_t nseconds;            /* seconds in the window (rounded up) */
	atomic_bool stop;
	atomic_llong stop_at_us;     /* relative time of the stop, or -1 */
	atomic_llong rate_milli;     /* load_set_rate, in 1/1000 req/s; -1: none */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct sec_slot ring[LOAD_RING];
	struct load_second *timeline;
	size_t ntimeline, captimeline;
	int running;                 /* workers not finished */
	bool waited, joined;
};

/* worker.c */
struct worker *load_worker_new(struct load_run *run, int id, int nconns);
void load_worker_free(struct worker *w);
int load_worker_start(struct worker *w, struct vxerr *err);
void load_worker_join(struct worker *w);
void load_worker_wake(struct worker *w);
/* Adds the worker's totals and histograms into r. */
void load_worker_collect(const struct worker *w, struct load_result *r);

/* run.c: a worker hands in its counts for one second (under the run's lock). */
void load_run_publish(struct load_run *run, int64_t second, const struct load_counts *c, const struct hist *lat);
void load_run_worker_done(struct load_run *run);

#endif
