/* The scenario runner's face: scenario files (schema, loader with FILE:LINE:COL diagnostics),
 * running one (a local stack, backends, a load profile and a fault schedule on one clock,
 * assertions per phase), its reports (text, JSON, a self-contained HTML page) and the built-in
 * demo that runs one scenario against a static HAProxy configuration and against Veltrix.
 *
 *     struct scn *s = scn_load(path, &diags);           // NULL: diags say why (exit 2)
 *     scn_scale(s, 0.25, 1.0);                          // short forms for tests
 *     struct scn_result *r = scn_run(s, &opts, &err);   // NULL: could not even start
 *     scn_report_text(r, &out); ... scn_result_free(r); scn_free(s);
 *
 * A run starts every process itself (local etcd, `veltrix controller`, HAProxy, `veltrix
 * testserver` backends, optionally `veltrix agent`) on free loopback ports in a temporary
 * directory, and stops every one of them when it ends: normally, on failure, on SIGINT/SIGTERM
 * (scn_interrupt) and when a child dies first. docs/scenarios.md documents every key, fault,
 * assertion and the JSON shape. */
#ifndef VX_SCENARIO_SCENARIO_H
#define VX_SCENARIO_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "config/config.h"
#include "load/load.h"
#include "load/testserver.h"

#define SCN_NAME_MAX 32        /* group and instance names, with the NUL */
#define SCN_MAX_BACKENDS 32    /* instances, including those a scale_out adds */
#define SCN_MAX_PHASES 32
#define SCN_MAX_FAULTS 64
#define SCN_MAX_DURATION_US (3600 * INT64_C(1000000))
#define SCN_MAX_RATE 200000.0
#define SCN_MAX_FILE_BYTES (256 * 1024)

enum scn_stack { SCN_STACK_VELTRIX, SCN_STACK_STATIC };
enum scn_registration { SCN_REG_DIRECT, SCN_REG_AGENT };

enum scn_action {
	SCN_KILL,           /* SIGKILL a backend */
	SCN_TERM,           /* graceful stop: drain (Veltrix), then SIGTERM */
	SCN_FREEZE,         /* SIGSTOP */
	SCN_THAW,           /* SIGCONT */
	SCN_START,          /* start a stopped backend again on its port */
	SCN_RESTART,        /* term, then start */
	SCN_SLOW,           /* new service time */
	SCN_FAIL,           /* new failure rate (500s) */
	SCN_ROLLING_DEPLOY, /* restart each backend in turn */
	SCN_SCALE_OUT,      /* start N more backends */
	SCN_ETCD_STOP,      /* SIGTERM etcd (Veltrix stack) */
	SCN_ETCD_KILL,      /* SIGKILL etcd */
	SCN_ETCD_START,
	SCN_CONTROLLER_KILL, /* SIGKILL the controller; HAProxy keeps serving */
	SCN_CONTROLLER_START,
	SCN_HAPROXY_RELOAD,
	SCN_ACTION_COUNT,
};
const char *scn_action_name(enum scn_action a);
/* etcd_* and controller_*: there is no etcd or controller in a static stack. */
bool scn_action_veltrix_only(enum scn_action a);

/* One group of backends as written; its instances are "<name>-1" ... "<name>-<count>". */
struct scn_group {
	char name[SCN_NAME_MAX];
	int64_t count;
	int64_t caps[SCN_MAX_BACKENDS]; /* one per instance (a single value is repeated) */
	size_t n_caps;
	struct ts_dist service;
	int overload;                   /* enum ts_overload */
	double fail_rate;
	int64_t threads;
};

/* One backend instance, expanded from its group (or added by a scale_out fault). */
struct scn_backend {
	char name[SCN_NAME_MAX];
	size_t group;
	int64_t capacity;
	bool initial; /* running from the start (else a scale_out starts it) */
};

struct scn_rate {
	double from, to; /* requests per second; equal for a constant rate */
};

struct scn_phase {
	char *name;
	struct scn_rate rate;
	int64_t duration_us;
	char *assert_text; /* NULL: no assertion */
	struct load_slo slo;
};

struct scn_fault {
	int64_t at_us;
	enum scn_action action;
	char target[SCN_NAME_MAX];        /* "" when the action takes none */
	char (*targets)[SCN_NAME_MAX];    /* rolling_deploy; none: every initial backend */
	size_t n_targets;
	struct ts_dist service;           /* slow */
	double fail_rate;                 /* fail */
	int64_t count;                    /* scale_out */
	char group[SCN_NAME_MAX];         /* scale_out: the group to clone ("" = the first) */
	int64_t capacity;                 /* scale_out: 0 = the group's first capacity */
	int64_t interval_us;              /* rolling_deploy: pause between two backends */
	int line;                         /* where it was written, for reports */
};

/* HAProxy settings both stacks render (a subset of the configuration's services[] keys). */
struct scn_service {
	int balance; /* enum svc_balance; -1: leastconn for Veltrix, roundrobin for static */
	int http_reuse;
	int64_t retries;  /* both stacks also render `option redispatch 1` and `retry-on conn-failure empty-response` */
	int64_t check_interval_us, check_timeout_us;
	int64_t rise, fall;
	int64_t connect_us, server_us, queue_us, client_us;
	int64_t drain_us;   /* Veltrix: draining lasts this long before a term's SIGTERM */
	int64_t lease_ttl_us;
};

struct scn {
	char *file;
	char *name;
	char *description;
	enum scn_stack stack;
	enum scn_registration registration;
	struct scn_service service;
	struct scn_group *groups;
	size_t n_groups;
	struct scn_backend backends[SCN_MAX_BACKENDS];
	size_t n_backends;
	struct {
		int64_t connections, threads, timeout_us;
		char *path;
	} load;
	struct scn_phase *phases;
	size_t n_phases;
	struct scn_fault *faults;
	size_t n_faults;
	struct {
		int64_t p99_us;     /* a second is degraded above this p99 ... */
		double error_rate;  /* ... or above this share of failed requests */
		int64_t sustain_us; /* "sustained throughput" holds this long */
	} slo;
	char *assert_text; /* whole-run assertion, NULL: none */
	struct load_slo assert_slo;
};

/* ---- loading (scn_load.c, scn_schema.c) ---- */

/* Loads and checks a scenario file; every problem goes into d (FILE:LINE:COL: error: key.path:
 * message; hint). Returns NULL when there was an error. */
struct scn *scn_load(const char *path, struct cfg_diags *d);
struct scn *scn_load_buffer(const char *name, const char *data, size_t len, struct cfg_diags *d);
void scn_free(struct scn *s);
/* Multiplies every phase duration, fault time and pause by time_scale, every rate and capacity
 * by load_scale (capacities stay >= 1), so a short form keeps the scenario's shape. */
void scn_scale(struct scn *s, double time_scale, double load_scale);
int64_t scn_duration_us(const struct scn *s);

/* The schema rows, for docs and the test that checks every key is documented. */
struct scn_key_doc {
	const char *path; /* "load.phases[].rate" */
	const char *type; /* "duration", "integer", ... */
	const char *def;  /* as written in YAML; NULL: none */
	const char *doc;
};
size_t scn_schema_count(void);
void scn_schema_doc(size_t i, struct scn_key_doc *out);

/* ---- running (scn_run.c and friends) ---- */

struct scn_run_opts {
	const char *veltrix_bin; /* this binary: controller, testserver and agent are its commands */
	bool agent_available;    /* `veltrix agent` exists in this build */
	const char *work_dir;    /* NULL: a fresh directory under $TMPDIR */
	bool keep_work_dir;      /* keep logs and configs after the run */
	/* What happens as it happens (a fault fired, a phase began, one line per second of load);
	 * NULL: nothing. The library never prints: the command decides where lines go. */
	void (*progress)(void *arg, const char *line);
	void *progress_arg;
	enum scn_stack stack;    /* the stack to run: normally s->stack (--stack overrides it) */
};

enum scn_verdict { SCN_VERDICT_PASS, SCN_VERDICT_FAIL, SCN_VERDICT_INVALID };

/* One second of the whole run on the scenario clock. */
struct scn_second {
	double target_rps;
	struct load_counts counts;
	double covered_s; /* how much of this second the load covered (phases meet inside seconds) */
	struct load_pcts latency;
	bool has_latency;
	double served[SCN_MAX_BACKENDS];   /* answered by each backend that second; NaN: unknown */
	double rejected[SCN_MAX_BACKENDS]; /* 503s by overload */
};

struct scn_phase_result {
	const struct scn_phase *phase;
	double start_s, end_s;
	struct load_result *load; /* NULL when the phase never ran */
	struct load_slo_outcome outcomes[LOAD_SLO_MAX_TERMS];
	bool ok;
};

struct scn_fault_result {
	const struct scn_fault *fault;
	double started_s, done_s; /* -1 when it never started / finished */
	bool ok;
	char detail[160];
};

struct scn_totals {
	uint64_t requests, failed;
	double error_rate;
	struct load_pcts latency;
	double achieved_rps;
	double sustained_rps;  /* highest good-response rate held over slo.sustain healthy seconds */
	int64_t degraded_s;    /* seconds with errors above slo.error_rate or p99 above slo.p99 */
	int64_t seconds;
};

struct scn_result {
	const struct scn *scn;
	enum scn_stack stack;
	enum scn_verdict verdict;
	char invalid_reason[256];
	char work_dir[256];
	bool work_dir_kept;
	double elapsed_s;
	struct scn_phase_result phases[SCN_MAX_PHASES];
	size_t n_phases;
	struct scn_fault_result faults[SCN_MAX_FAULTS];
	size_t n_faults;
	struct scn_second *seconds;
	size_t n_seconds;
	size_t n_backends;            /* backends that existed at some point (scn->backends) */
	struct scn_totals totals;
	struct load_slo_outcome overall[LOAD_SLO_MAX_TERMS];
	bool overall_ok;
};

/* Runs the scenario. Returns NULL (err set) only on bad options; a stack that could not start
 * or a run made invalid by the environment is a result with verdict SCN_VERDICT_INVALID. */
struct scn_result *scn_run(const struct scn *s, const struct scn_run_opts *opts, struct vxerr *err);
/* From a signal handler: ends the current run as soon as possible (it tears down and reports
 * SCN_INVALID, "interrupted"). */
void scn_interrupt(void);
bool scn_interrupted(void);
void scn_result_free(struct scn_result *r);
/* 0 pass, 1 an assertion failed, 3 invalid (exit codes of docs/internals.md). */
int scn_exit_code(const struct scn_result *r);

/* ---- analysis (scn_stats.c, pure) ---- */

/* Totals, degraded seconds and sustained throughput from the seconds and phase results. */
void scn_totals_compute(const struct scn_result *r, struct scn_totals *out);
bool scn_second_degraded(const struct scn *s, const struct scn_second *sec);
/* Good answers (not 5xx) and failed requests per second of load in that second. */
double scn_second_good_rps(const struct scn_second *sec);
double scn_second_failed_rps(const struct scn_second *sec);
/* The whole-run assertion (scn->assert_slo) against every phase together; true when it holds
 * (or there is none). out[i] for each term. */
bool scn_overall_check(const struct scn_result *r, struct load_slo_outcome *out);
/* Requests per second the scenario asks for during second k of its clock. */
double scn_target_rps(const struct scn *s, size_t k);

/* ---- reports (scn_report.c, scn_html.c) ---- */

void scn_report_text(const struct scn_result *r, struct buf *out);
/* The JSON document (docs/scenarios.md); caller frees. */
char *scn_report_json(const struct scn_result *r);
/* One self-contained HTML page: inline SVG, no scripts, no external references. results[]
 * holds one run, or the demo's two (a comparison table comes first then). */
int scn_report_html(const struct scn_result *const *results, size_t n, const char *title, struct buf *out);

/* ---- the demo (scn_demo.c) ---- */

/* The built-in scenario `veltrix demo` runs (YAML text embedded in the binary). */
extern const char scn_demo_yaml[];
/* The side-by-side table of two runs of the same scenario (static, then Veltrix). */
void scn_demo_table(const struct scn_result *stat, const struct scn_result *velt, struct buf *out);
/* {"demo":{...},"static":<run>,"veltrix":<run>}; caller frees. */
char *scn_demo_json(const struct scn_result *stat, const struct scn_result *velt);

#endif
