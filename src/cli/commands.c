/* The command table: one row per `veltrix` command. */
#include <stddef.h>

#include "cli/cli.h"

static const struct cli_opt no_opts[] = { { 0, NULL, NULL, NULL } };

const struct cli_command cli_commands[] = {
	{ "help", "[COMMAND]", "show the commands, or one command's options", NULL, no_opts, cmd_help },
	{ "version", "", "print the version", NULL, no_opts, cmd_version },
	{ "check", "[-c FILE] [--json]", "validate a configuration and lint it against this machine",
	  "Reports every problem at once (FILE:LINE:COL: error|warning: KEY.PATH: what is wrong; what to\n"
	  "write instead), then lints against this machine: file descriptors, ephemeral ports and\n"
	  "TIME_WAIT, somaxconn, capacity, timeouts (docs/config.md).\n"
	  "Exit status: 0 clean (warnings allowed), 1 a lint error, 2 the file is invalid.",
	  cmd_check_opts, cmd_check },
	{ NULL, NULL, NULL, NULL, NULL, NULL },
};
