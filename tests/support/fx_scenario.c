/* Scenario test fixtures (see fx_scenario.h). */
#include "fx_scenario.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/parse.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "fx.h"

void fx_subreaper(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

void fx_bg_start(struct fx_bg *b, const char *const *args)
{
	const char *argv[64];
	int n = 0;
	char *dir = fx_tmpdir("bg");
	argv[n++] = fx_veltrix_bin();
	for (int i = 0; args[i] && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	b->out_path = fx_path(dir, "out");
	b->err_path = fx_path(dir, "err");
	free(dir);
	struct proc_opts o = { .stdout_path = b->out_path, .stderr_path = b->err_path, .new_pgrp = true, .die_with_parent = true };
	struct vxerr e;
	b->pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &e);
	if (b->pid < 0) {
		fprintf(stderr, "fixture: %s\n", e.msg);
		exit(99);
	}
	b->status = -1;
	fx_track(b->pid);
}

bool fx_bg_wait_err(struct fx_bg *b, const char *needle, int timeout_ms)
{
	int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
	while (time_mono_us() < deadline) {
		char *err = fx_read_file(b->err_path);
		bool found = err && strstr(err, needle);
		free(err);
		if (found)
			return true;
		if (!proc_alive(b->pid))
			return false;
		time_sleep_us(50000);
	}
	return false;
}

void fx_bg_wait(struct fx_bg *b, int timeout_ms)
{
	int st;
	if (proc_wait(b->pid, timeout_ms, &st) != 0) {
		proc_stop(b->pid, 1000);
		b->status = -1;
	} else {
		b->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	}
	fx_untrack(b->pid);
}

char *fx_bg_out(const struct fx_bg *b)
{
	return fx_read_file(b->out_path);
}

char *fx_bg_err(const struct fx_bg *b)
{
	return fx_read_file(b->err_path);
}

void fx_bg_free(struct fx_bg *b)
{
	free(b->out_path);
	free(b->err_path);
	b->out_path = b->err_path = NULL;
}

static void cmdline_of(pid_t pid, char *out, size_t cap)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(out, 1, cap - 1, f) : 0;
	if (f)
		fclose(f);
	for (size_t i = 0; i < n; i++)
		if (out[i] == '\0')
			out[i] = ' ';
	out[n] = '\0';
}

/* The parent pid and state from /proc/<pid>/stat ("pid (comm) S ppid ..."). */
static bool stat_of(const char *pid, char *state, int64_t *ppid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%s/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *close = strrchr(buf, ')');
	if (!close || close[1] != ' ' || !close[2] || close[3] != ' ')
		return false;
	*state = close[2];
	const char *num = close + 4;
	return parse_i64_n(num, strcspn(num, " "), 0, INT32_MAX, ppid) == 0;
}

/* The first child of ours still running (0 when none). */
static pid_t live_child(void)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;
	int64_t me = getpid(), ppid, pid;
	char state;
	while (d && !found && (e = readdir(d)) != NULL)
		if (parse_i64(e->d_name, 1, INT32_MAX, &pid) == 0 && stat_of(e->d_name, &state, &ppid) && ppid == me &&
		    state != 'Z')
			found = (pid_t)pid;
	if (d)
		closedir(d);
	return found;
}

bool fx_no_children(int timeout_ms, char *who, size_t cap)
{
	int64_t deadline = time_mono_us() + (int64_t)timeout_ms * 1000;
	for (;;) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		errno = 0;
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
			return true;
		if (time_mono_us() > deadline) {
			pid_t pid = live_child();
			cmdline_of(pid, who, cap);
			return pid == 0;
		}
		time_sleep_us(50000);
	}
}

static bool void_tag(const char *tag)
{
	static const char *const voids[] = { "meta", "br", "line", "rect", "polyline", "!DOCTYPE", NULL };
	for (int i = 0; voids[i]; i++)
		if (strcmp(voids[i], tag) == 0)
			return true;
	return false;
}

const char *fx_html_problem(const char *html)
{
	static char why[160];
	char stack[64][16];
	int depth = 0;
	for (const char *p = strchr(html, '<'); p; p = strchr(p + 1, '<')) {
		const char *end = strchr(p, '>');
		bool closing = p[1] == '/';
		const char *name = p + 1 + closing;
		size_t len = strcspn(name, " >/\n");
		if (!end || len == 0 || len >= sizeof(stack[0]))
			return "a tag that does not end, or has no name";
		char tag[16];
		memcpy(tag, name, len);
		tag[len] = '\0';
		if (closing) {
			if (depth == 0 || strcmp(stack[depth - 1], tag) != 0) {
				snprintf(why, sizeof(why), "</%s> closes <%s>", tag, depth ? stack[depth - 1] : "nothing");
				return why;
			}
			depth--;
		} else if (end[-1] != '/' && !void_tag(tag)) {
			if (depth == 64)
				return "nested too deep";
			snprintf(stack[depth++], sizeof(stack[0]), "%s", tag);
		}
	}
	if (depth != 0) {
		snprintf(why, sizeof(why), "<%s> is never closed", stack[depth - 1]);
		return why;
	}
	if (strstr(html, "<script") || strstr(html, "https://") || strstr(html, "@import") || strstr(html, "url("))
		return "a script or an external reference";
	for (const char *p = strstr(html, "http://"); p; p = strstr(p + 1, "http://"))
		if (strncmp(p, "http://www.w3.org/2000/svg", 26) != 0)
			return "an http:// reference other than the SVG namespace";
	return NULL;
}
