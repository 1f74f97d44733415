/* `veltrix`: dispatches to a command from the table. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void print_version(void)
{
	printf("veltrix %s\n", VX_VERSION);
}

int cmd_version(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	cli_parser_init(&p, cmd, argc, argv);
	const char *arg;
	int c = cli_next(&p, &arg);
	if (c == CLI_EXIT)
		return p.exit_code;
	if (c != CLI_END || p.optind < argc)
		return cli_usage_error(cmd, "takes no arguments");
	print_version();
	return EXIT_OK;
}

static void print_overview(FILE *out)
{
	fprintf(out, "Usage: veltrix <command> [options]\n\n"
		     "Veltrix keeps HAProxy's server pools equal to what is registered in etcd,\n"
		     "healthy and able to take traffic, and tests configurations under load.\n\n"
		     "Commands:\n");
	for (const struct cli_command *c = cli_commands; c->name; c++)
		fprintf(out, "  %-12s %s\n", c->name, c->summary);
	fprintf(out, "\nRun 'veltrix help <command>' or 'veltrix <command> --help' for details.\n"
		     "Exit codes: 0 ok, 1 a check failed, 2 usage or configuration error,\n"
		     "3 the environment made the run invalid. Logs go to stderr (logfmt);\n"
		     "VELTRIX_LOG_LEVEL=debug|info|warn|error sets how much.\n");
}

int cmd_help(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	cli_parser_init(&p, cmd, argc, argv);
	const char *arg;
	int c = cli_next(&p, &arg);
	if (c == CLI_EXIT)
		return p.exit_code;
	if (c != CLI_END)
		return cli_usage_error(cmd, "unexpected option");
	if (p.optind >= argc) {
		print_overview(stdout);
		return EXIT_OK;
	}
	if (p.optind + 1 < argc)
		return cli_usage_error(cmd, "give one command name");
	const struct cli_command *target = cli_find(argv[p.optind]);
	if (!target) {
		fprintf(stderr, "veltrix: unknown command '%s'\n", argv[p.optind]);
		print_overview(stderr);
		return EXIT_USAGE;
	}
	cli_print_help(target);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		print_overview(stderr);
		return EXIT_USAGE;
	}
	const char *name = argv[1];
	if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0) {
		print_version();
		return EXIT_OK;
	}
	if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
		print_overview(stdout);
		return EXIT_OK;
	}
	const struct cli_command *cmd = cli_find(name);
	if (!cmd) {
		fprintf(stderr, "veltrix: unknown %s '%s'\n", name[0] == '-' ? "option" : "command", name);
		print_overview(stderr);
		return EXIT_USAGE;
	}
	return cmd->run(cmd, argc - 1, argv + 1);
}
