/* Private to the scenario runner: the process table and its guardian, the registrar thread,
 * backends and their lifecycle, the stack, the backend sampler and the fault machines. One
 * thread (the director, the caller of scn_run) spawns and signals every process, so that
 * PR_SET_PDEATHSIG, which follows the spawning thread, always means "the runner died". */
#ifndef VX_SCENARIO_SCN_INT_H
#define VX_SCENARIO_SCN_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"
#include "haproxy/hap.h"
#include "registry/etcd_local.h"
#include "scenario/scenario.h"

#define SCN_SERVICE "scenario" /* the service (HAProxy backend) name both stacks use */
#define SCN_PREFIX "/veltrix"

/* ---- processes (scn_proc.c) ---- */

#define SCN_MAX_PROCS 128

struct scn_proc {
	pid_t pid;
	char role[48];      /* "backend app-2", "controller", "haproxy" */
	bool child;         /* ours to waitpid (else only signalled and watched) */
	bool expected_exit; /* a fault or the teardown stops it: its exit is no news */
	bool exited;
	int status;         /* wait status, when exited and a child */
};

struct scn_procs {
	struct scn_proc p[SCN_MAX_PROCS];
	size_t n;
	int guardian_fd; /* write end of the guardian's pipe, -1 when none */
	pid_t guardian;
};

/* Forks the guardian: a small process that outlives the runner and, when the runner dies
 * without saying goodbye (SIGKILL, a crash), SIGKILLs every process group it was told about
 * and removes work_dir (NULL: keep). Then makes the runner a child subreaper, so a process
 * orphaned by a fault (HAProxy after its controller is killed) becomes ours to reap. */
void scn_procs_init(struct scn_procs *t, const char *work_dir);
/* Spawns argv in its own process group, output appended to log, dying with the runner. */
pid_t scn_spawn(struct scn_procs *t, char *const argv[], const char *log, const char *role, struct vxerr *err);
/* Tracks a process we did not spawn (it leads its own group). */
void scn_procs_adopt(struct scn_procs *t, pid_t pid, const char *role);
struct scn_proc *scn_procs_find(struct scn_procs *t, pid_t pid);
void scn_procs_expect_exit(struct scn_procs *t, pid_t pid);
/* Signals pid's process group (and pid). */
void scn_procs_signal(struct scn_procs *t, pid_t pid, int sig);
bool scn_procs_exited(struct scn_procs *t, pid_t pid);
/* Reaps what exited; an exit nobody expected is written into why and returns -1. */
int scn_procs_reap(struct scn_procs *t, char *why, size_t cap);
/* SIGTERM to every group, up to grace_ms, then SIGKILL; reaps; tells the guardian goodbye. */
void scn_procs_stop_all(struct scn_procs *t, int grace_ms);

/* ---- registrar: direct registration in etcd (scn_reg.c) ---- */

struct scn_reg;

struct scn_reg *scn_reg_start(const char *etcd_url, int64_t ttl_s, struct vxerr *err);
/* Registers (or updates) instance idx under a lease of its own; state "up" or "draining". */
void scn_reg_put(struct scn_reg *r, size_t idx, const char *instance, uint16_t port, int64_t capacity,
		 const char *state);
/* Deregisters at once: revokes the lease (its key goes with it). */
void scn_reg_remove(struct scn_reg *r, size_t idx);
/* True when every request made for idx so far has been carried out (or failed for good). */
bool scn_reg_settled(struct scn_reg *r, size_t idx);
/* Registrations that failed and are being retried, with the last error, for reports. */
void scn_reg_last_error(struct scn_reg *r, char *out, size_t cap);
void scn_reg_stop(struct scn_reg *r);

/* ---- backends (scn_backend.c) ---- */

enum scn_bk_state { BK_DOWN, BK_STARTING, BK_UP, BK_DRAINING, BK_STOPPING };

struct scn_bk {
	const struct scn_backend *def;
	const struct scn_group *group;
	size_t idx;
	uint16_t port;
	pid_t pid;          /* the testserver, or the agent wrapping it */
	enum scn_bk_state state;
	int64_t deadline_us;
	bool frozen;
	bool failed;        /* the last start or stop did not go as planned */
	int attempts;       /* starts retried on another port (before the clock only) */
	char fail_why[96];
	struct ts_dist service; /* as now set */
	double fail_rate;
	/* sampling */
	uint64_t served, rejected; /* last counters read */
	bool have_counters;
};

struct scn_rt; /* the run, below */

void scn_bk_start(struct scn_rt *rt, struct scn_bk *b);
void scn_bk_stop(struct scn_rt *rt, struct scn_bk *b);
void scn_bk_kill(struct scn_rt *rt, struct scn_bk *b);
void scn_bk_step(struct scn_rt *rt, struct scn_bk *b);
/* POST /_testserver/set; returns 0 or -1 with err. service NULL / fail_rate < 0: unchanged. */
int scn_bk_set(struct scn_bk *b, const struct ts_dist *service, double fail_rate, struct vxerr *err);
/* The testserver's pid (in agent mode, the agent's child), or 0. */
pid_t scn_bk_server_pid(const struct scn_rt *rt, const struct scn_bk *b);

/* ---- sampler of the backends' own counters (scn_sample.c) ---- */

struct scn_sampler;
struct scn_sampler *scn_sampler_new(void);
void scn_sampler_free(struct scn_sampler *s);
/* Asks every running backend for /_testserver/stats; answers land in second `sec`. */
void scn_sampler_begin(struct scn_sampler *s, struct scn_rt *rt, size_t sec);
/* Drives the transfers for up to timeout_ms (also the director's tick wait). */
void scn_sampler_poll(struct scn_sampler *s, struct scn_rt *rt, int timeout_ms);

/* ---- the stack (scn_stack.c) ---- */

int scn_stack_start(struct scn_rt *rt, struct vxerr *err);
/* Waits until HAProxy routes to every running backend (UP in `show stat`). */
int scn_stack_wait_ready(struct scn_rt *rt, int64_t timeout_us, struct vxerr *err);
int scn_stack_reload(struct scn_rt *rt, struct vxerr *err);
/* The first word of a server's status in `show stat` ("UP", "DOWN", "MAINT", ...), through a
 * runtime connection the run keeps. -1 when HAProxy does not list the server or cannot say. */
int scn_stack_server_status(struct scn_rt *rt, const char *server, char *out, size_t cap);
int scn_controller_start(struct scn_rt *rt, struct vxerr *err);
void scn_stack_stop(struct scn_rt *rt);

/* ---- faults (scn_fault.c) ---- */

struct scn_fault_run {
	const struct scn_fault *f;
	struct scn_fault_result *res;
	bool started, done;
	int step;            /* position in a multi-step fault */
	size_t k;            /* rolling_deploy: current target */
	int64_t wait_until;  /* a pause */
	int64_t deadline_us;
	size_t members[SCN_MAX_BACKENDS]; /* the backends it acts on */
	size_t n_members;
};

void scn_fault_begin(struct scn_rt *rt, struct scn_fault_run *fr);
void scn_fault_step(struct scn_rt *rt, struct scn_fault_run *fr);

/* ---- the run (scn_run.c) ---- */

struct scn_rt {
	const struct scn *s;
	const struct scn_run_opts *opts;
	struct scn_result *res;
	enum scn_stack stack;
	char work[200];
	struct scn_procs procs;
	/* stack */
	struct etcd_local etcd;
	bool etcd_up, etcd_expected_down;
	pid_t controller;
	pid_t haproxy_master;
	struct hap_proc hap; /* static stack: ours; Veltrix: adopted for reloads */
	char cfg_path[300], master_sock[300], runtime_sock[300];
	uint16_t front_port;
	struct hap_rt *hrt; /* kept for server status queries */
	struct scn_reg *reg;
	/* backends */
	struct scn_bk bks[SCN_MAX_BACKENDS];
	size_t n_bks;
	/* clock */
	int64_t t0_us;
	/* the load thread */
	pthread_t load_thread;
	bool load_started;
	pthread_mutex_t mu; /* guards the seconds and phase results */
	struct load_run *volatile current_run;
	volatile bool load_done;
	volatile bool abort_load;
	/* faults */
	struct scn_fault_run faults[SCN_MAX_FAULTS];
	size_t next_fault;
	struct scn_sampler *sampler;
	size_t sampled_upto;
};

int64_t scn_now_us(const struct scn_rt *rt); /* on the scenario clock */
/* Adds to the run's log of what happened (stderr when progress is on). */
void scn_note(struct scn_rt *rt, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
