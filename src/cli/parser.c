/* Option parsing and help text from a command's option rows (getopt_long underneath). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

#define MAX_OPTS 64

static const struct cli_opt help_opt = { 'h', "help", NULL, "show this help and exit" };

const struct cli_command *cli_find(const char *name)
{
	for (const struct cli_command *c = cli_commands; c->name; c++)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

static void print_opt(FILE *out, const struct cli_opt *o)
{
	char left[64];
	int n;
	if (o->id < 256)
		n = snprintf(left, sizeof(left), "-%c, --%s", o->id, o->name);
	else
		n = snprintf(left, sizeof(left), "    --%s", o->name);
	if (o->arg && n > 0 && (size_t)n < sizeof(left))
		snprintf(left + n, sizeof(left) - (size_t)n, " %s", o->arg);
	if (strlen(left) > 24)
		fprintf(out, "  %s\n  %-24s  %s\n", left, "", o->help);
	else
		fprintf(out, "  %-24s  %s\n", left, o->help);
}

static void print_usage_to(FILE *out, const struct cli_command *cmd)
{
	fprintf(out, "Usage: veltrix %s%s%s\n", cmd->name, cmd->synopsis[0] ? " " : "", cmd->synopsis);
}

void cli_print_help(const struct cli_command *cmd)
{
	print_usage_to(stdout, cmd);
	printf("\n%s\n", cmd->summary);
	if (cmd->description && cmd->description[0])
		printf("\n%s\n", cmd->description);
	printf("\nOptions:\n");
	for (const struct cli_opt *o = cmd->opts; o && o->name; o++)
		print_opt(stdout, o);
	print_opt(stdout, &help_opt);
}

int cli_usage_error(const struct cli_command *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "veltrix %s: ", cmd->name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	print_usage_to(stderr, cmd);
	fprintf(stderr, "Try 'veltrix %s --help' for more.\n", cmd->name);
	return EXIT_USAGE;
}

void cli_parser_init(struct cli_parser *p, const struct cli_command *cmd, int argc, char **argv)
{
	p->cmd = cmd;
	p->argc = argc;
	p->argv = argv;
	p->exit_code = EXIT_OK;
	p->optind = 1;
	optind = 0; /* 0 makes glibc's getopt reinitialise */
	opterr = 0;
}

static int build_tables(const struct cli_command *cmd, struct option *longs, char *shorts)
{
	size_t n = 0, s = 0;
	const struct cli_opt *all[MAX_OPTS];
	for (const struct cli_opt *o = cmd->opts; o && o->name && n < MAX_OPTS - 2; o++)
		all[n++] = o;
	all[n++] = &help_opt;
	shorts[s++] = '+'; /* stop at the first operand: "scenario run FILE --x" keeps order */
	shorts[s++] = ':';
	for (size_t i = 0; i < n; i++) {
		longs[i] = (struct option){ all[i]->name, all[i]->arg ? required_argument : no_argument, NULL, all[i]->id };
		if (all[i]->id < 256) {
			shorts[s++] = (char)all[i]->id;
			if (all[i]->arg)
				shorts[s++] = ':';
		}
	}
	longs[n] = (struct option){ 0 };
	shorts[s] = '\0';
	return (int)n;
}

int cli_next(struct cli_parser *p, const char **arg)
{
	struct option longs[MAX_OPTS + 1];
	char shorts[MAX_OPTS * 2 + 3];
	build_tables(p->cmd, longs, shorts);
	int prev = optind ? optind : 1;
	int c = getopt_long(p->argc, p->argv, shorts, longs, NULL);
	*arg = optarg;
	if (c == -1) {
		p->optind = optind;
		return CLI_END;
	}
	if (c == 'h') {
		cli_print_help(p->cmd);
		p->exit_code = EXIT_OK;
		return CLI_EXIT;
	}
	if (c == '?' || c == ':') {
		const char *word = prev < p->argc ? p->argv[prev] : "?";
		if (c == ':')
			p->exit_code = cli_usage_error(p->cmd, "option '%s' needs a value", word);
		else
			p->exit_code = cli_usage_error(p->cmd, "unknown option '%s'", word);
		return CLI_EXIT;
	}
	return c;
}
