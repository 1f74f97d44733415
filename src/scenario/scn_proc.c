/* The runner's process table: every process a run starts or adopts, its process group, whether
 * its exit is expected, and the guardian that cleans up when the runner itself is killed.
 *
 * Why a guardian: children die with the runner through PR_SET_PDEATHSIG, but the Veltrix
 * stack's HAProxy is the controller's child and, by design, outlives the controller; only a
 * process that outlives the runner can stop it after a SIGKILL of the runner. The guardian
 * learns each process group over a pipe ("+pid", "-pid"), sees the pipe close when the runner
 * exits for any reason, and acts only when the runner did not first say "bye". */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/parse.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "scenario/scn_int.h"

#define GUARD_MAX 256

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

/* Reads "+pid", "-pid", "bye" lines until EOF. */
static bool guardian_read(int fd, pid_t *groups, size_t *n)
{
	char buf[4096], line[32];
	size_t ll = 0;
	ssize_t got;
	while ((got = read(fd, buf, sizeof(buf))) != 0) {
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			break;
		for (ssize_t i = 0; i < got; i++) {
			if (buf[i] != '\n') {
				if (ll + 1 < sizeof(line))
					line[ll++] = buf[i];
				continue;
			}
			line[ll] = '\0';
			ll = 0;
			int64_t pid;
			if (strcmp(line, "bye") == 0)
				return true;
			if ((line[0] == '+' || line[0] == '-') && parse_i64(line + 1, 2, INT32_MAX, &pid) == 0) {
				size_t k = 0;
				while (k < *n && groups[k] != (pid_t)pid)
					k++;
				if (line[0] == '+' && k == *n && *n < GUARD_MAX)
					groups[(*n)++] = (pid_t)pid;
				else if (line[0] == '-' && k < *n)
					groups[k] = groups[--*n];
			}
		}
	}
	return false;
}

static void guardian_main(int fd, const char *work_dir)
{
	pid_t groups[GUARD_MAX];
	size_t n = 0;
	signal(SIGINT, SIG_IGN); /* a terminal's Ctrl-C is the runner's to handle */
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_DFL);
	setpgid(0, 0);
	/* Hold none of the runner's files: a reader waiting for its stdout to close must not
	 * wait for us. */
	int null = open("/dev/null", O_RDWR);
	for (int i = 0; i < 3 && null >= 0; i++)
		dup2(null, i);
	for (int i = 3; i < 1024; i++)
		if (i != fd)
			close(i);
	if (guardian_read(fd, groups, &n))
		_exit(0);
	for (size_t i = 0; i < n; i++) {
		kill(-groups[i], SIGKILL);
		kill(groups[i], SIGKILL);
	}
	if (work_dir)
		nftw(work_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	_exit(0);
}

static void guardian_say(struct scn_procs *t, char sign, pid_t pid)
{
	char line[32];
	int n = sign ? snprintf(line, sizeof(line), "%c%d\n", sign, (int)pid) : snprintf(line, sizeof(line), "bye\n");
	if (t->guardian_fd >= 0 && n > 0)
		(void)!write(t->guardian_fd, line, (size_t)n);
}

void scn_procs_init(struct scn_procs *t, const char *work_dir)
{
	memset(t, 0, sizeof(*t));
	t->guardian_fd = -1;
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return;
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[1]);
		guardian_main(fds[0], work_dir);
	}
	close(fds[0]);
	if (pid < 0) {
		close(fds[1]);
		return;
	}
	t->guardian = pid;
	t->guardian_fd = fds[1];
}

static struct scn_proc *add(struct scn_procs *t, pid_t pid, const char *role, bool child)
{
	if (t->n >= SCN_MAX_PROCS) { /* never in practice: backends are capped far lower */
		kill(-pid, SIGKILL);
		kill(pid, SIGKILL);
		return NULL;
	}
	struct scn_proc *p = &t->p[t->n++];
	memset(p, 0, sizeof(*p));
	p->pid = pid;
	p->child = child;
	snprintf(p->role, sizeof(p->role), "%s", role);
	guardian_say(t, '+', pid);
	return p;
}

pid_t scn_spawn(struct scn_procs *t, char *const argv[], const char *log, const char *role, struct vxerr *err)
{
	struct proc_opts o = { .stdout_path = log, .stderr_path = log, .new_pgrp = true, .die_with_parent = true };
	pid_t pid = proc_spawn(argv, &o, err);
	if (pid < 0)
		return vxerr_prefix(err, "%s: ", role);
	add(t, pid, role, true);
	return pid;
}

void scn_procs_adopt(struct scn_procs *t, pid_t pid, const char *role)
{
	if (pid > 0 && !scn_procs_find(t, pid))
		add(t, pid, role, false);
}

struct scn_proc *scn_procs_find(struct scn_procs *t, pid_t pid)
{
	for (size_t i = t->n; i-- > 0;)
		if (t->p[i].pid == pid)
			return &t->p[i];
	return NULL;
}

void scn_procs_expect_exit(struct scn_procs *t, pid_t pid)
{
	struct scn_proc *p = scn_procs_find(t, pid);
	if (p)
		p->expected_exit = true;
}

void scn_procs_signal(struct scn_procs *t, pid_t pid, int sig)
{
	struct scn_proc *p = scn_procs_find(t, pid);
	if (pid <= 0 || (p && p->exited))
		return;
	kill(-pid, sig);
	kill(pid, sig);
}

/* One look at p: reaped (our child, or one a fault orphaned onto us) or gone. */
static void check_one(struct scn_procs *t, struct scn_proc *p)
{
	int *st = &p->status;
	pid_t r = waitpid(p->pid, st, WNOHANG);
	if (r == p->pid) {
		p->child = true;
	} else if (r == 0 || kill(p->pid, 0) == 0) {
		return;
	}
	p->exited = true;
	guardian_say(t, '-', p->pid);
}

bool scn_procs_exited(struct scn_procs *t, pid_t pid)
{
	struct scn_proc *p = scn_procs_find(t, pid);
	if (!p)
		return true;
	if (!p->exited)
		check_one(t, p);
	return p->exited;
}

static void describe_status(const struct scn_proc *p, char *out, size_t cap)
{
	if (!p->child)
		snprintf(out, cap, "%s (pid %d) exited", p->role, (int)p->pid);
	else if (WIFSIGNALED(p->status))
		snprintf(out, cap, "%s (pid %d) was killed by signal %d", p->role, (int)p->pid, WTERMSIG(p->status));
	else
		snprintf(out, cap, "%s (pid %d) exited with status %d", p->role, (int)p->pid, WEXITSTATUS(p->status));
}

int scn_procs_reap(struct scn_procs *t, char *why, size_t cap)
{
	int rc = 0;
	for (size_t i = 0; i < t->n; i++) {
		struct scn_proc *p = &t->p[i];
		if (p->exited)
			continue;
		check_one(t, p);
		if (p->exited && !p->expected_exit && rc == 0) {
			describe_status(p, why, cap);
			rc = -1;
		}
	}
	/* Orphans we never tracked (an old HAProxy worker re-parented to us): reap, do not wait. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	return rc;
}

static bool any_alive(struct scn_procs *t)
{
	bool alive = false;
	for (size_t i = 0; i < t->n; i++)
		if (!t->p[i].exited) {
			check_one(t, &t->p[i]);
			alive |= !t->p[i].exited;
		}
	return alive;
}

void scn_procs_stop_all(struct scn_procs *t, int grace_ms)
{
	bool was_alive[SCN_MAX_PROCS];
	for (size_t i = 0; i < t->n; i++) {
		t->p[i].expected_exit = true;
		was_alive[i] = !t->p[i].exited;
		if (!t->p[i].exited) {
			scn_procs_signal(t, t->p[i].pid, SIGCONT); /* a frozen process cannot act on SIGTERM */
			scn_procs_signal(t, t->p[i].pid, SIGTERM);
		}
	}
	int64_t deadline = time_mono_us() + (int64_t)grace_ms * 1000;
	while (any_alive(t) && time_mono_us() < deadline)
		time_sleep_us(10000);
	for (size_t i = 0; i < t->n; i++)
		if (!t->p[i].exited)
			scn_procs_signal(t, t->p[i].pid, SIGKILL);
	deadline = time_mono_us() + 5 * USEC_PER_SEC;
	while (any_alive(t) && time_mono_us() < deadline)
		time_sleep_us(5000);
	/* Group members that outlived their leader (HAProxy workers) go with their group; only
	 * groups whose leader we just saw alive, so a recycled pid is never hit. */
	for (size_t i = 0; i < t->n; i++)
		if (was_alive[i])
			kill(-t->p[i].pid, SIGKILL);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	guardian_say(t, 0, 0);
	if (t->guardian_fd >= 0)
		close(t->guardian_fd);
	t->guardian_fd = -1;
	if (t->guardian > 0)
		proc_wait(t->guardian, 2000, NULL);
	t->guardian = 0;
}
