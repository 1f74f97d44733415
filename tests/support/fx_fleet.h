/* The fleet: a 3-member etcd cluster and several `veltrix controller`s, each with the HAProxy it
 * manages, on loopback; a population of instances over many services; churn (adds, deletes,
 * weight changes) written on schedule by an independent client (libcurl to etcd's JSON
 * gateway); the etcd leader killed -9 mid-run and restarted; one poller per HAProxy that
 * timestamps when each change is visible in `show servers state`; at the end each HAProxy is
 * compared with etcd. Shared by bench/bench_fleet.c (figures) and tests/integration/
 * test_fleet.c (asserts).
 *
 * Visibility, per HAProxy: an add or a weight change is visible when the server is there,
 * ready, with the change's weight and the instance's port; a delete when the server is gone or
 * no longer ready (the controller drains first, then deletes once idle: from the drain on it
 * gets no new traffic). A change is timed from the moment its first write attempt is sent.
 * To keep that unambiguous, an instance gets its next change only once every HAProxy showed its
 * previous one (the churn stays open loop: each change goes to a random instance with no
 * change in flight, out of thousands).
 *
 * Every process is tracked by the fx fixtures: stopped at exit, on a signal, or by the reaper
 * when the calling process dies otherwise. Setup errors fail the program (fx_die). Call
 * fx_fleet_run from the main thread: etcd members are spawned with PR_SET_PDEATHSIG, which
 * fires when the spawning thread exits. */
#ifndef VX_TESTS_FX_FLEET_H
#define VX_TESTS_FX_FLEET_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define FX_FLEET_MAX_CTL 8
#define FX_FLEET_MAX_MEMBERS 5

struct fx_fleet_opts {
	int members;          /* etcd cluster size (3) */
	int controllers;      /* controllers, each with its own HAProxy (4) */
	int services;         /* backends f000, f001, ... */
	int instances;        /* present at the start; each service has 50% spare names for adds */
	int rate;             /* changes per second */
	int seconds;          /* churn duration */
	int writers;          /* writer threads sharing the schedule */
	int kill_at_ms;       /* leader kill -9 this long after the churn starts; < 0: no kill */
	int restart_after_ms; /* the killed member restarts this long after the kill */
	int window_ms;        /* changes sent within +- this of the kill form the "kill window" */
	int poll_pause_us;    /* a poller's pause between two rounds */
	int settle_ms;        /* bound on waiting for the last changes, then for convergence */
	int stall_ms;         /* ... and each wait ends earlier after this long without progress */
	bool count_requests;  /* controllers reach each member through a counting relay */
	bool quiet;           /* no progress lines on stderr */
};

enum fx_fleet_kind { FX_FLEET_ADD, FX_FLEET_DEL, FX_FLEET_WEIGHT };

struct fx_fleet_change {
	int slot;             /* instance i<slot> of service f<slot / slots per service> */
	int kind;             /* enum fx_fleet_kind */
	int weight;           /* add, weight change: the weight written */
	int attempts;         /* write attempts (1 when the first one succeeded) */
	bool failed;          /* no attempt succeeded within 20 s */
	int64_t due_us;       /* on the schedule */
	int64_t sent_us;      /* first attempt sent */
	int64_t acked_us;     /* etcd answered 200 */
	int64_t seen_us[FX_FLEET_MAX_CTL]; /* first seen in HAProxy c; 0: never, -1: not looked for */
	int n_seen;
};

/* One HAProxy compared with etcd at the end, after up to settle_ms for convergence (less when
 * nothing improves for stall_ms). */
struct fx_fleet_final {
	int servers;   /* fleet servers in HAProxy */
	int lost;      /* a key whose server is missing, not ready or at an older weight; a ready
			* server whose key is gone (its delete not applied) */
	int dup;       /* a server twice or under a foreign name, in the wrong backend, on a port
			* not its own, or at a weight never written for it */
	int lingering; /* a deleted key whose server is still draining or in maintenance */
};

struct fx_fleet_ctl {
	struct fx_fleet_final final;
	/* from its /metrics, over the churn and the wait for the last changes (-1: no answer) */
	double resyncs;           /* veltrix_watch_resyncs_total, all reasons */
	double apply_mean_ms;     /* veltrix_registry_apply_seconds: change received -> HAProxy ack */
	double reconciles;        /* veltrix_reconcile_seconds_count */
	double reconcile_mean_ms;
	long requests;      /* HTTP requests to etcd over the churn (-1: not counted) */
	double cpu_pct;     /* of one core, over the churn */
	double hap_cpu_pct; /* its HAProxy worker, the same way (-1: unknown) */
	int64_t polls;
};

struct fx_fleet_report {
	struct fx_fleet_opts o;
	struct fx_fleet_change *ch;
	int64_t n_ch;         /* planned = rate * seconds */
	int64_t start_us;     /* churn start (schedule origin) */
	int64_t end_us;       /* last change sent */
	int64_t converge_us;  /* cold start: controllers started -> all HAProxys equal etcd */
	int leader;           /* member killed (-1: none) */
	int new_leader;       /* member elected after (-1: not seen) */
	int64_t kill_us, elected_us, restart_us, healthy_us;
	long adds, dels, weights;
	long retries, failed;
	long slot_waits;      /* changes that waited for an instance with no change in flight */
	int64_t max_lag_us;   /* worst sent - due */
	int64_t settled_us;   /* every change seen everywhere (0: not within the wait) */
	bool converged;       /* every HAProxy equal to etcd at the end */
	int64_t final_us;     /* the final comparison */
	int etcd_keys;        /* at the end */
	int model_mismatch;   /* keys where etcd disagrees with what was written (should be 0) */
	double etcd_cpu_pct[FX_FLEET_MAX_MEMBERS];
	double harness_cpu_pct; /* this process: writers, pollers, relays */
	double window_s;      /* churn duration as run */
	struct fx_fleet_ctl ctl[FX_FLEET_MAX_CTL];
};

/* Which changes count: all, those sent within +-window_ms of the kill, or the others (steady
 * state: the run without the kill's election and retries). */
enum fx_fleet_span { FX_FLEET_ALL, FX_FLEET_KILL, FX_FLEET_STEADY };

/* Latency of changes (seen - sent), ms: one controller (ctl >= 0) or fleet-wide (ctl < 0:
 * the last of all controllers to see it), over a span. unseen: changes (not failed) a
 * controller never saw; over_2s: latency above 2 s. */
struct fx_fleet_stats {
	int64_t n, unseen, over_2s;
	double p50, p99, max;
};

/* Fills in the defaults (3 members, 4 controllers, 100 services, 10,000 instances, 1,000/s,
 * 20 s, 64 writers, kill at the middle, restart after 3 s, window 2 s, 250 us, settle up to
 * 120 s with a 10 s stall bound). */
void fx_fleet_defaults(struct fx_fleet_opts *o);
/* The whole run; everything it started is stopped when it returns. */
void fx_fleet_run(const struct fx_fleet_opts *o, struct fx_fleet_report *r);
void fx_fleet_stats(const struct fx_fleet_report *r, int ctl, enum fx_fleet_span span, struct fx_fleet_stats *out);
/* The figures as text, and as one JSON object (caller frees). */
void fx_fleet_print(const struct fx_fleet_report *r, FILE *f);
char *fx_fleet_json(const struct fx_fleet_report *r);
void fx_fleet_report_release(struct fx_fleet_report *r);

#endif
