/* The test backend behind `veltrix testserver`: an HTTP/1.1 keep-alive server with a set
 * capacity (requests served at once), a service time drawn from a distribution, an overload
 * policy (queue: latency grows; reject: 503) and a failure rate (500s). The scenario runner
 * and the demo use it as their backends, and the load generator's benchmark as its target, so
 * it must not be the bottleneck: several threads, each with its own libev loop and its own
 * SO_REUSEPORT listener, share the capacity through atomics.
 *
 * Endpoints: GET /healthz (200, never counted against capacity); GET /_testserver/stats (JSON);
 * POST /_testserver/set?service_time=D&fail_rate=X&capacity=N (change at runtime); the two
 * /_testserver endpoints answer loopback clients only (403 otherwise). Every other request is
 * work. Responses carry X-Served-By when an instance name is set.
 *
 * The names here are ts_ (test server), a part of src/load; it uses only src/common. */
#ifndef VX_LOAD_TESTSERVER_H
#define VX_LOAD_TESTSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

enum ts_dist_kind { TS_DIST_FIXED, TS_DIST_EXP, TS_DIST_UNIFORM };

/* "5ms" (fixed), "exp:5ms" (exponential with that mean), "uniform:2ms-8ms". */
struct ts_dist {
	enum ts_dist_kind kind;
	int64_t a_us; /* fixed value, mean, or lower bound */
	int64_t b_us; /* upper bound (uniform) */
};

#define TS_DIST_MAX_US (3600 * INT64_C(1000000))

int ts_dist_parse(const char *s, struct ts_dist *out, struct vxerr *err);
void ts_dist_format(const struct ts_dist *d, char *out, size_t cap);
/* One service time; rng is the caller's xorshift state (never 0). */
int64_t ts_dist_sample(const struct ts_dist *d, uint64_t *rng);
/* A uniform double in [0, 1) from the same generator. */
double ts_rand01(uint64_t *rng);

enum ts_overload { TS_OVERLOAD_QUEUE, TS_OVERLOAD_REJECT };

struct ts_opts {
	const char *bind;       /* IP literal or localhost; NULL: 127.0.0.1 */
	uint16_t port;          /* 0: any free port (see ts_server_port) */
	int capacity;           /* requests served at once */
	struct ts_dist service;
	enum ts_overload overload;
	double fail_rate;       /* fraction of work requests answered 500, 0..1 */
	const char *instance;   /* X-Served-By; NULL or "" for none; [A-Za-z0-9._:-] */
	int threads;            /* event loops, each with its own listener */
	int max_conns;          /* per server; more are accepted and closed at once */
	int64_t drain_timeout_us; /* on stop, how long in-flight requests may take */
};

struct ts_stats {
	uint64_t served;   /* work requests answered (200 or 500) */
	uint64_t failed;   /* of which 500 (fail rate) */
	uint64_t rejected; /* 503 (overload reject) */
	int64_t in_flight; /* being served now */
	int64_t queued;    /* waiting for capacity now */
	uint64_t healthz;
	int64_t connections;
};

struct ts_server;

/* Validates the options and binds the listeners (so the port is known and taken on return). */
struct ts_server *ts_server_new(const struct ts_opts *o, struct vxerr *err);
uint16_t ts_server_port(const struct ts_server *s);
/* Serves until ts_server_stop, then drains: no new connections or requests, requests in flight
 * and queued are answered (with Connection: close), up to drain_timeout. Returns 0, or -1 when
 * the threads could not start or the drain timed out. */
int ts_server_run(struct ts_server *s, struct vxerr *err);
/* Any thread, and async-signal-safe. */
void ts_server_stop(struct ts_server *s);
void ts_server_stats(struct ts_server *s, struct ts_stats *out);
/* Runtime changes; service NULL, fail_rate < 0 or capacity <= 0 leave that setting alone. */
void ts_server_set(struct ts_server *s, const struct ts_dist *service, double fail_rate, int capacity);
void ts_server_free(struct ts_server *s);

#endif
