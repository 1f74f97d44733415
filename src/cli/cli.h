/* The `veltrix` command table and the option parser every command shares.
 *
 * A command is one row: name, synopsis, summary, description, option rows, handler. The same
 * rows produce `veltrix help`, `veltrix help <command>`, `<command> --help` and the parser, so
 * help can never drift from what is accepted. Handlers return the process exit code. */
#ifndef VX_CLI_CLI_H
#define VX_CLI_CLI_H

#include <stdbool.h>

/* Exit codes (../docs/internals.md): */
enum {
	EXIT_OK = 0,
	EXIT_FAILED = 1, /* the thing checked failed: an SLO, a lint */
	EXIT_USAGE = 2,  /* usage or configuration error */
	EXIT_ENV = 3,    /* the environment made the run invalid */
};

struct cli_opt {
	int id;           /* short option letter, or a value >= 256 for long-only options */
	const char *name; /* long name, without "--" */
	const char *arg;  /* argument placeholder ("FILE"), or NULL for a flag */
	const char *help;
};

struct cli_command {
	const char *name;
	const char *synopsis; /* after "veltrix <name> ", e.g. "[-c FILE] [--json]" */
	const char *summary;  /* one line for `veltrix help` */
	const char *description;
	const struct cli_opt *opts; /* terminated by a row with name NULL */
	int (*run)(const struct cli_command *cmd, int argc, char **argv);
};

extern const struct cli_command cli_commands[];
const struct cli_command *cli_find(const char *name);
void cli_print_help(const struct cli_command *cmd);

enum { CLI_END = -1, CLI_EXIT = -2 };

struct cli_parser {
	const struct cli_command *cmd;
	int argc;
	char **argv;
	int exit_code; /* valid after CLI_EXIT */
	int optind;    /* after CLI_END: index of the first operand */
};

void cli_parser_init(struct cli_parser *p, const struct cli_command *cmd, int argc, char **argv);
/* The next option's id (its argument, if any, in *arg); CLI_END when options are over;
 * CLI_EXIT when --help was printed (exit 0) or the usage was wrong (message printed, exit 2). */
int cli_next(struct cli_parser *p, const char **arg);
/* Prints "veltrix <cmd>: <message>" and a hint to stderr; returns EXIT_USAGE. */
int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Handlers, one file each under src/cli/. */
int cmd_help(const struct cli_command *cmd, int argc, char **argv);
int cmd_version(const struct cli_command *cmd, int argc, char **argv);
int cmd_check(const struct cli_command *cmd, int argc, char **argv);
int cmd_controller(const struct cli_command *cmd, int argc, char **argv);
int cmd_up(const struct cli_command *cmd, int argc, char **argv);
extern const struct cli_opt cmd_up_opts[];
extern const struct cli_opt cmd_controller_opts[];
extern const struct cli_opt cmd_check_opts[];
int cmd_load(const struct cli_command *cmd, int argc, char **argv);
extern const struct cli_opt cmd_load_opts[];
int cmd_agent(const struct cli_command *cmd, int argc, char **argv);
extern const struct cli_opt cmd_agent_opts[];
int cmd_testserver(const struct cli_command *cmd, int argc, char **argv);
extern const struct cli_opt cmd_testserver_opts[];
int cmd_status(const struct cli_command *cmd, int argc, char **argv);
extern const struct cli_opt cmd_status_opts[];
int cmd_register(const struct cli_command *cmd, int argc, char **argv);
extern const struct cli_opt cmd_register_opts[];
int cmd_deregister(const struct cli_command *cmd, int argc, char **argv);
extern const struct cli_opt cmd_deregister_opts[];
int cmd_scenario(const struct cli_command *cmd, int argc, char **argv);
extern const struct cli_opt cmd_scenario_opts[];
int cmd_demo(const struct cli_command *cmd, int argc, char **argv);
extern const struct cli_opt cmd_demo_opts[];

#endif
