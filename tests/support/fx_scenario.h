/* Fixtures for the scenario runner's tests: `veltrix scenario` / `veltrix demo` in the
 * background (to interrupt or kill it mid-run), the check that a run left no process behind
 * (the test process is a child subreaper, so every orphan of the run becomes its child), and an
 * HTML checker (tags balanced, nothing external). */
#ifndef VX_TESTS_FX_SCENARIO_H
#define VX_TESTS_FX_SCENARIO_H

#include <stdbool.h>
#include <sys/types.h>

struct fx_bg {
	pid_t pid;
	char *out_path, *err_path;
	int status; /* after fx_bg_wait: exit code, 128+signal, or -1 on timeout */
};

/* Makes this process a child subreaper: orphans of what it starts are re-parented to it. */
void fx_subreaper(void);
/* Starts the veltrix binary with args (NULL-terminated), output to temporary files. */
void fx_bg_start(struct fx_bg *b, const char *const *args);
/* Waits until stderr holds needle; false after timeout_ms (or when the process ended first). */
bool fx_bg_wait_err(struct fx_bg *b, const char *needle, int timeout_ms);
/* Waits for the process; its status in b->status. */
void fx_bg_wait(struct fx_bg *b, int timeout_ms);
char *fx_bg_out(const struct fx_bg *b);
char *fx_bg_err(const struct fx_bg *b);
void fx_bg_free(struct fx_bg *b);

/* Reaps every child of this (subreaper) process; true when none is left within timeout_ms.
 * Fills the first survivor's command line into who when there is one. */
bool fx_no_children(int timeout_ms, char *who, size_t cap);

/* NULL when html is well-formed (tags open and close in order, void elements aside) and
 * self-contained (no script, no external URL other than the SVG namespace, no @import or
 * url()); otherwise what is wrong. */
const char *fx_html_problem(const char *html);

#endif
