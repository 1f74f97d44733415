/* fork/exec with redirections, and bounded waits. */
#include "common/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/timeutil.h"

static void redirect(const char *path, int target, int flags)
{
	if (!path)
		return;
	int fd = open(path, flags, 0644);
	if (fd < 0)
		_exit(126);
	dup2(fd, target);
	close(fd);
}

static void close_other_fds(int keep)
{
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = 3; fd < max; fd++)
		if (fd != keep)
			close(fd);
}

static void child_exec(char *const argv[], const struct proc_opts *o, int report_fd, pid_t parent)
{
	if (o->new_pgrp)
		setpgid(0, 0);
	if (o->die_with_parent) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	redirect(o->stdin_path ? o->stdin_path : "/dev/null", 0, O_RDONLY);
	redirect(o->stdout_path, 1, O_WRONLY | O_CREAT | O_APPEND);
	redirect(o->stderr_path, 2, O_WRONLY | O_CREAT | O_APPEND);
	if (o->cwd && chdir(o->cwd) != 0) {
		int e = errno;
		(void)!write(report_fd, &e, sizeof(e));
		_exit(127);
	}
	close_other_fds(report_fd);
	if (o->env)
		execvpe(argv[0], argv, o->env);
	else
		execvp(argv[0], argv);
	int e = errno;
	(void)!write(report_fd, &e, sizeof(e));
	_exit(127);
}

pid_t proc_spawn(char *const argv[], const struct proc_opts *opts, struct vxerr *err)
{
	static const struct proc_opts defaults = { 0 };
	const struct proc_opts *o = opts ? opts : &defaults;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) != 0)
		return vxerr_set(err, "pipe: %s", strerror(errno));
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(pfd[0]);
		close(pfd[1]);
		return vxerr_set(err, "fork: %s", strerror(e));
	}
	if (pid == 0) {
		close(pfd[0]);
		child_exec(argv, o, pfd[1], parent);
	}
	close(pfd[1]);
	int child_errno = 0;
	ssize_t n;
	do
		n = read(pfd[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(pfd[0]);
	if (n == (ssize_t)sizeof(child_errno)) {
		waitpid(pid, NULL, 0);
		return vxerr_set(err, "cannot start %s: %s", argv[0], strerror(child_errno));
	}
	return pid;
}

int proc_wait(pid_t pid, int timeout_ms, int *status)
{
	int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
	int64_t nap = 1000;
	for (;;) {
		int st;
		pid_t r = waitpid(pid, &st, timeout_ms < 0 ? 0 : WNOHANG);
		if (r == pid) {
			if (status)
				*status = st;
			return 0;
		}
		if (r < 0 && errno != EINTR)
			return -1;
		if (timeout_ms >= 0 && time_mono_us() >= deadline)
			return -1;
		time_sleep_us(nap);
		if (nap < 20000)
			nap *= 2;
	}
}

int proc_stop(pid_t pid, int grace_ms)
{
	int status = 0;
	pid_t target = getpgid(pid) == pid ? -pid : pid;
	kill(target, SIGTERM);
	kill(pid, SIGCONT);
	if (proc_wait(pid, grace_ms, &status) == 0) {
		if (target < 0)
			kill(target, SIGKILL);
		return status;
	}
	kill(target, SIGKILL);
	proc_wait(pid, -1, &status);
	return status;
}

bool proc_alive(pid_t pid)
{
	if (pid <= 0)
		return false;
	if (kill(pid, 0) != 0)
		return false;
	int st;
	/* Reaps a zombie child of ours (its status is then lost); a non-child answers ECHILD. */
	return waitpid(pid, &st, WNOHANG) != pid;
}
