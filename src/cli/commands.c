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
	{ "controller", "[-c FILE] [--etcd URL[,URL...]] [--force-sync]",
	  "keep HAProxy's server pools equal to the registry (one per HAProxy)",
	  "Watches etcd and reconciles HAProxy through its Runtime API, without reloads for membership.\n"
	  "haproxy.mode managed: renders haproxy.cfg, starts HAProxy (or adopts the running one) and\n"
	  "reloads it only when services change. attach: manages only the servers it added to your\n"
	  "HAProxy. etcd unreachable: the last known pools stay (fail static).\n"
	  "Signals: SIGHUP re-reads the configuration, SIGUSR1 applies the registry once past the\n"
	  "panic threshold, SIGTERM/SIGINT stop the controller (HAProxy keeps serving).\n"
	  "Metrics: GET /metrics and /healthz on controller.metrics (docs/controller.md).",
	  cmd_controller_opts, cmd_controller },
	{ NULL, NULL, NULL, NULL, NULL, NULL },
};
