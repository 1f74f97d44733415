/* Child processes: start with redirected output, wait with a timeout, stop politely then firmly.
 * Used by `veltrix up`, the scenario runner, the agent's supervised command and the tests. */
#ifndef VX_COMMON_PROC_H
#define VX_COMMON_PROC_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"

struct proc_opts {
	const char *cwd;         /* NULL: inherit */
	const char *stdin_path;  /* NULL: /dev/null */
	const char *stdout_path; /* NULL: inherit; output is appended */
	const char *stderr_path; /* NULL: inherit; output is appended */
	bool new_pgrp;           /* own process group, so a stop can reach its children */
	bool die_with_parent;    /* SIGKILL when the spawning thread exits (PR_SET_PDEATHSIG) */
	char *const *env;        /* NULL: inherit */
};

/* Starts argv[0] (searched in PATH). Returns the pid, or -1 with err set (also when exec
 * fails: the child reports that through a close-on-exec pipe before this returns). */
pid_t proc_spawn(char *const argv[], const struct proc_opts *opts, struct vxerr *err);
/* Waits up to timeout_ms (-1: forever) for pid; 0 and *status on exit, -1 on timeout. */
int proc_wait(pid_t pid, int timeout_ms, int *status);
/* SIGTERM (to the group when it leads one), up to grace_ms, then SIGKILL; reaps the child.
 * Returns its wait status. */
int proc_stop(pid_t pid, int grace_ms);
/* True while pid runs. A child of ours that has exited is reaped here (its status is lost). */
bool proc_alive(pid_t pid);

#endif
