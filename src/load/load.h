/* The load generator as a library: the face of src/load used by `veltrix load` and by the
 * scenario runner (in-process).
 *
 * A run sends HTTP/1.1 requests to one URL from `threads` threads (one libev loop each) over
 * `connections` connections, either in a closed loop (each connection sends its next request
 * as soon as the previous one is answered) or in an open loop (requests are due at a constant
 * arrival rate, or a rate that follows phases; a request that cannot be sent because every
 * connection is busy waits, and its latency is counted from when it was DUE, not from when it
 * was sent: the correction for coordinated omission). Both the corrected and the uncorrected
 * latency are kept, in log-linear histograms (load/hist.h).
 *
 *     struct load_run *run = load_start(&spec, &err);   // threads start sending now
 *     ...load_set_rate(run, 2000) / load_stop(run) from any thread, or from spec.on_second
 *     struct load_result *res = load_wait(run);         // calls spec.on_second each second
 *     load_run_free(run); ... load_result_free(res);
 *
 * load knows nothing of etcd, HAProxy or the controller: it works against any HTTP server. */
#ifndef VX_LOAD_LOAD_H
#define VX_LOAD_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "load/hist.h"

/* ---- load profile: phases of rate (requests per second) and duration ---- */

struct load_phase {
	double rps_from; /* rate at the start of the phase */
	double rps_to;   /* rate at its end (== rps_from for a step) */
	int64_t duration_us;
};

#define LOAD_MAX_PHASES 64
#define LOAD_MAX_RPS 10000000.0

/* Ramp grammar: comma-separated phases, each RATE:DURATION (a step at a constant rate) or
 * FROM..TO:DURATION (a linear ramp), e.g. "1000:10s,2000:10s" or "0..5000:30s,5000:1m".
 * Rates are requests per second (decimals allowed, 0 pauses); durations as in dur_parse.
 * Writes at most cap phases into out; returns how many, or -1 with err set. */
int load_ramp_parse(const char *s, struct load_phase *out, size_t cap, struct vxerr *err);
int64_t load_phases_duration(const struct load_phase *p, size_t n);
/* Requests due in [a_us, b_us) according to the phases (the integral of the rate). */
double load_phases_area(const struct load_phase *p, size_t n, int64_t a_us, int64_t b_us);

/* ---- the SLO grammar ---- */

enum load_slo_metric {
	LOAD_SLO_LATENCY, /* a percentile of the corrected latency: p50, p99, p99.9, max (= p100) */
	LOAD_SLO_MEAN,    /* mean corrected latency */
	LOAD_SLO_ERROR_RATE,
	LOAD_SLO_ERROR_COUNT,
	LOAD_SLO_RPS,     /* achieved responses per second */
};
enum load_slo_op { LOAD_SLO_LT, LOAD_SLO_LE, LOAD_SLO_GT, LOAD_SLO_GE };

struct load_slo_term {
	char text[48];   /* as written, for reports */
	enum load_slo_metric metric;
	double pct;      /* for LOAD_SLO_LATENCY */
	enum load_slo_op op;
	double limit;    /* microseconds, a fraction (0.001 for 0.1%), a count or a rate */
};

#define LOAD_SLO_MAX_TERMS 16

struct load_slo {
	struct load_slo_term terms[LOAD_SLO_MAX_TERMS];
	size_t n;
};

/* "p99<50ms,p99.9<=200ms,errors<0.1%,errors<10,rps>=1000,mean<5ms,max<1s". */
int load_slo_parse(const char *s, struct load_slo *out, struct vxerr *err);

/* ---- errors and counters ---- */

enum load_err_kind {
	LOAD_ERR_REFUSED,         /* connect: ECONNREFUSED */
	LOAD_ERR_CONNECT_TIMEOUT, /* --timeout passed while connecting */
	LOAD_ERR_RESET,           /* ECONNRESET / EPIPE while sending or reading */
	LOAD_ERR_CLOSED,          /* the server closed before a complete response */
	LOAD_ERR_READ_TIMEOUT,    /* --timeout passed after the request was sent */
	LOAD_ERR_BAD_RESPONSE,    /* not valid HTTP/1.x, or over the parser's limits */
	LOAD_ERR_NEVER_COMPLETED, /* still unanswered when the run ended (after the grace) */
	LOAD_ERR_NOT_SENT,        /* due in an open loop, never sent: every connection was busy */
	LOAD_ERR_PORTS,           /* EADDRNOTAVAIL: ephemeral ports exhausted (generator limit) */
	LOAD_ERR_FDS,             /* EMFILE / ENFILE: out of file descriptors (generator limit) */
	LOAD_ERR_OTHER,           /* any other socket error */
	LOAD_ERR_COUNT,
};

/* JSON key ("refused", "ports_exhausted", ...) and the words for reports. */
const char *load_err_key(enum load_err_kind k);
const char *load_err_text(enum load_err_kind k);

struct load_counts {
	uint64_t sent;      /* requests whose first byte was written or connect started */
	uint64_t responses; /* complete responses, any status */
	uint64_t status[6]; /* [1]..[5]: 1xx..5xx; [0]: anything else */
	uint64_t errors[LOAD_ERR_COUNT];
	uint64_t bytes_in;
	uint64_t bytes_out;
};

void load_counts_add(struct load_counts *dst, const struct load_counts *src);
/* Failed requests: every error kind plus 5xx responses (4xx are reported, not failures). */
uint64_t load_counts_failed(const struct load_counts *c);
/* Requests that ended one way or another: responses plus every error kind. */
uint64_t load_counts_finished(const struct load_counts *c);

struct load_pcts {
	int64_t p50_us, p90_us, p99_us, p999_us, max_us, mean_us;
};
void load_pcts_of(const struct hist *h, struct load_pcts *out);

/* One second of the timeline. Responses count in the second they completed (those completed
 * during the final grace count in the last second). */
struct load_second {
	int64_t second;      /* 0-based, from the start of the run */
	double target_rps;   /* the rate asked for in that second; 0 in a closed loop */
	double rps;          /* responses completed in that second */
	struct load_counts counts;
	struct load_pcts latency; /* corrected latency of those responses */
};

/* ---- a run ---- */

struct load_spec {
	const char *url;      /* http://HOST[:PORT][/PATH]; HOST an IP literal or localhost */
	int connections;      /* >= threads */
	int threads;
	int64_t duration_us;  /* closed loop; ignored when phases are given */
	const struct load_phase *phases; /* open loop when nphases > 0 (copied) */
	size_t nphases;
	const char *method;   /* NULL: GET */
	const char *const *headers; /* "Name: value" lines (copied) */
	size_t nheaders;
	const char *body;     /* may be NULL */
	size_t body_len;
	int64_t timeout_us;   /* per request, from its send: connect + write + response */
	int64_t grace_us;     /* how long requests in flight at the end may finish; <0: default */
	bool no_keepalive;    /* a new connection per request, closed by the client */
	/* Called once per second, in order, from the thread in load_wait (may be NULL). */
	void (*on_second)(const struct load_second *sec, void *arg);
	void *arg;
};

struct load_result {
	bool open_loop;
	bool stopped_early;       /* load_stop ended it */
	int connections;
	int threads;
	int64_t duration_us;      /* the window the rate is measured over */
	int64_t elapsed_us;       /* wall time including the grace */
	uint64_t intended;        /* requests due in the window (open loop) */
	double intended_rps;      /* intended / window, 0 in a closed loop */
	double achieved_rps;      /* responses / window */
	struct load_counts counts;
	struct hist latency;      /* corrected: from the time each request was due */
	struct hist latency_uncorrected; /* from the time each request was sent */
	struct hist schedule_lag; /* sent - due, every request of an open loop */
	struct hist generator_lag; /* sent - due where a connection was free: the generator's own delay */
	bool generator_saturated; /* see load_result_valid */
	struct load_second *timeline;
	size_t nseconds;
};

/* Checks the spec, renders the request once, starts the threads. Returns NULL with err set on
 * a bad spec (bad URL, header, ...) or when threads cannot start. */
struct load_run *load_start(const struct load_spec *spec, struct vxerr *err);
/* From now on, send at rps in total (open loop only; 0 pauses). Any thread. */
void load_set_rate(struct load_run *run, double rps);
/* Ends the run early (requests in flight get the grace). Any thread, and async-signal-safe. */
void load_stop(struct load_run *run);
/* Blocks until the run ends, calling spec->on_second for each second; the caller owns the
 * result. Call once. */
struct load_result *load_wait(struct load_run *run);
/* Stops and joins the threads if load_wait was not called. NULL is a no-op. */
void load_run_free(struct load_run *run);
void load_result_free(struct load_result *r);

/* False when the generator itself could not deliver the load, so the run says nothing about
 * the server (exit code 3): it ran out of ephemeral ports or file descriptors, or, in an open
 * loop, more than 1% of the requests went out more than 10 ms late while a connection was
 * free (its own event loop was saturated). why (may be NULL) receives the reason. */
bool load_result_valid(const struct load_result *r, char *why, size_t cap);

struct load_slo_outcome {
	double value; /* in the term's unit */
	bool ok;
};
/* Evaluates every term (out[i] for terms[i], may be NULL); true when all pass. */
bool load_slo_check(const struct load_slo *slo, const struct load_result *r, struct load_slo_outcome *out);

/* The JSON document (docs/load.md lists every field); slo may be NULL. Caller frees. */
char *load_result_json(const struct load_result *r, const char *url, const struct load_slo *slo);
/* The human report, appended to out. */
void load_result_text(const struct load_result *r, const char *url, const struct load_slo *slo, struct buf *out);
/* One progress line for a second (no newline). */
void load_second_text(const struct load_second *s, char *out, size_t cap);

#endif
