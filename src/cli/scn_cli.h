/* What `veltrix scenario` and `veltrix demo` share on the command line: run options for this
 * binary, progress lines on stderr, Ctrl-C handling and writing the report files. */
#ifndef VX_CLI_SCN_CLI_H
#define VX_CLI_SCN_CLI_H

#include <stdbool.h>

#include "common/buf.h"
#include "scenario/scenario.h"

/* Fills o for running scenarios from this binary (its path, whether `veltrix agent` exists,
 * progress printed to stderr unless quiet, prefixed with label when not NULL). */
void scn_cli_opts(struct scn_run_opts *o, bool quiet, const char *label);
/* SIGINT and SIGTERM end the current run cleanly (scn_interrupt). */
void scn_cli_signals(void);
/* Writes text to path ("-": stdout); prints why on failure and returns -1. */
int scn_cli_write(const char *cmd, const char *what, const char *path, const char *text, size_t len);
/* Parses a positive scale factor ("0.25"); -1 when it is not one. */
int scn_cli_factor(const char *text, double *out);

#endif
