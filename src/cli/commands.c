/* The command table: one row per `veltrix` command. */
#include <stddef.h>

#include "cli/cli.h"

static const struct cli_opt no_opts[] = { { 0, NULL, NULL, NULL } };

const struct cli_command cli_commands[] = {
	{ "help", "[COMMAND]", "show the commands, or one command's options", NULL, no_opts, cmd_help },
	{ "version", "", "print the version", NULL, no_opts, cmd_version },
	{ NULL, NULL, NULL, NULL, NULL, NULL },
};
