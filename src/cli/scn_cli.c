/* Shared by cmd_scenario.c and cmd_demo.c (see scn_cli.h). */
#include "cli/scn_cli.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/parse.h"

static char self[PATH_MAX];

static void print_progress(void *arg, const char *line)
{
	const char *label = arg;
	if (label)
		fprintf(stderr, "[%s] %s\n", label, line);
	else
		fprintf(stderr, "%s\n", line);
}

void scn_cli_opts(struct scn_run_opts *o, bool quiet, const char *label)
{
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	self[n > 0 ? n : 0] = '\0';
	/* Rebuilt while running: the children exec this very binary through /proc/self/exe. */
	if (n > 0 && strstr(self, " (deleted)"))
		snprintf(self, sizeof(self), "/proc/self/exe");
	*o = (struct scn_run_opts){ .veltrix_bin = n > 0 ? self : NULL, .agent_available = cli_find("agent") != NULL };
	if (!quiet) {
		o->progress = print_progress;
		o->progress_arg = (void *)(uintptr_t)label;
	}
}

static void on_signal(int sig)
{
	(void)sig;
	scn_interrupt();
}

void scn_cli_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int scn_cli_write(const char *cmd, const char *what, const char *path, const char *text, size_t len)
{
	if (strcmp(path, "-") == 0) {
		fwrite(text, 1, len, stdout);
		return 0;
	}
	FILE *f = fopen(path, "w");
	bool ok = f && fwrite(text, 1, len, f) == len;
	if (f)
		ok = fclose(f) == 0 && ok;
	if (!ok)
		fprintf(stderr, "veltrix %s: cannot write the %s to %s: %s\n", cmd, what, path, strerror(errno));
	return ok ? 0 : -1;
}

int scn_cli_factor(const char *text, double *out)
{
	double v;
	if (parse_double(text, 0.001, 100, &v) != 0)
		return -1;
	*out = v;
	return 0;
}
