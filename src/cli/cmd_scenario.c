/* `veltrix scenario run|check FILE`: run a scenario file (or only validate it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/scn_cli.h"
#include "config/config.h"
#include "scenario/scenario.h"

enum { OPT_JSON = 256, OPT_HTML, OPT_STACK, OPT_TIME_SCALE, OPT_LOAD_SCALE, OPT_KEEP, OPT_QUIET };

const struct cli_opt cmd_scenario_opts[] = {
	{ OPT_JSON, "json", "FILE", "also write the report as JSON (shape in docs/scenarios.md); - for stdout" },
	{ OPT_HTML, "html", "FILE", "also write a self-contained HTML report with charts" },
	{ OPT_STACK, "stack", "veltrix|static", "run on this stack instead of the file's `stack`" },
	{ OPT_TIME_SCALE, "time-scale", "F", "multiply every duration and fault time by F (0.25: a short form)" },
	{ OPT_LOAD_SCALE, "load-scale", "F", "multiply every rate and capacity by F (the load keeps its share of capacity)" },
	{ OPT_KEEP, "keep", NULL, "keep the run's directory (configs, logs) and print where it is" },
	{ OPT_QUIET, "quiet", NULL, "no progress lines on stderr" },
	{ 0, NULL, NULL, NULL },
};

struct args {
	const char *verb, *file, *json, *html;
	double time_scale, load_scale;
	int stack; /* -1: the file's */
	bool keep, quiet;
};

static int take_opt(const struct cli_command *cmd, struct args *a, int c, const char *v)
{
	switch (c) {
	case OPT_JSON: a->json = v; return 0;
	case OPT_HTML: a->html = v; return 0;
	case OPT_KEEP: a->keep = true; return 0;
	case OPT_QUIET: a->quiet = true; return 0;
	case OPT_STACK:
		if (strcmp(v, "veltrix") != 0 && strcmp(v, "static") != 0)
			return cli_usage_error(cmd, "--stack must be veltrix or static");
		a->stack = strcmp(v, "static") == 0 ? SCN_STACK_STATIC : SCN_STACK_VELTRIX;
		return 0;
	case OPT_TIME_SCALE:
	case OPT_LOAD_SCALE:
		if (scn_cli_factor(v, c == OPT_TIME_SCALE ? &a->time_scale : &a->load_scale) != 0)
			return cli_usage_error(cmd, "--%s must be a number from 0.001 to 100", c == OPT_TIME_SCALE ? "time-scale" : "load-scale");
		return 0;
	}
	return cli_usage_error(cmd, "unexpected option");
}

/* Options may come before and after the operands: "run --json x FILE" or "run FILE --json x". */
static int parse(const struct cli_command *cmd, int argc, char **argv, struct args *a)
{
	struct cli_parser p;
	const char *v;
	int c, rc;
	for (;;) {
		cli_parser_init(&p, cmd, argc, argv);
		while ((c = cli_next(&p, &v)) >= 0)
			if ((rc = take_opt(cmd, a, c, v)) != 0)
				return rc;
		if (c == CLI_EXIT)
			return p.exit_code;
		if (p.optind >= argc)
			break;
		const char **slot = !a->verb ? &a->verb : !a->file ? &a->file : NULL;
		if (!slot)
			return cli_usage_error(cmd, "unexpected argument '%s'", argv[p.optind]);
		*slot = argv[p.optind];
		argc -= p.optind;
		argv += p.optind; /* the operand plays argv[0] for the next round */
	}
	if (!a->verb || (strcmp(a->verb, "run") != 0 && strcmp(a->verb, "check") != 0))
		return cli_usage_error(cmd, "say `run FILE` or `check FILE`");
	if (!a->file)
		return cli_usage_error(cmd, "give the scenario file");
	return 0;
}

static int write_reports(const struct cli_command *cmd, const struct args *a, const struct scn_result *r)
{
	int rc = 0;
	if (a->json) {
		char *json = scn_report_json(r);
		rc |= scn_cli_write(cmd->name, "JSON report", a->json, json, strlen(json));
		free(json);
	}
	if (a->html) {
		struct buf html = BUF_INIT(64u << 20);
		const struct scn_result *one[] = { r };
		if (scn_report_html(one, 1, r->scn->name, &html) != 0)
			fprintf(stderr, "veltrix scenario: the HTML report did not fit in 64 MiB\n"), rc = -1;
		else
			rc |= scn_cli_write(cmd->name, "HTML report", a->html, html.data, html.len);
		buf_release(&html);
	}
	return rc;
}

static int run(const struct cli_command *cmd, const struct args *a, struct scn *s)
{
	struct scn_run_opts o;
	struct vxerr err;
	scn_cli_opts(&o, a->quiet, NULL);
	o.stack = a->stack >= 0 ? (enum scn_stack)a->stack : s->stack;
	o.keep_work_dir = a->keep;
	scn_cli_signals();
	struct scn_result *r = scn_run(s, &o, &err);
	if (!r) {
		fprintf(stderr, "veltrix scenario: %s\n", err.msg);
		return EXIT_ENV;
	}
	struct buf text = BUF_INIT(16u << 20);
	scn_report_text(r, &text);
	bool json_stdout = a->json && strcmp(a->json, "-") == 0;
	fputs(text.data ? text.data : "", json_stdout ? stderr : stdout);
	buf_release(&text);
	int rc = scn_exit_code(r);
	if (write_reports(cmd, a, r) != 0 && rc == EXIT_OK)
		rc = EXIT_ENV;
	else if (a->html)
		fprintf(json_stdout ? stderr : stdout, "HTML report: %s\n", a->html);
	scn_result_free(r);
	return rc;
}

int cmd_scenario(const struct cli_command *cmd, int argc, char **argv)
{
	struct args a = { .time_scale = 1, .load_scale = 1, .stack = -1 };
	int rc = parse(cmd, argc, argv, &a);
	if (rc != 0)
		return rc;
	struct cfg_diags d;
	cfg_diags_init(&d, 0);
	struct scn *s = scn_load(a.file, &d);
	cfg_diags_sort(&d);
	cfg_diags_print(&d, stderr);
	if (!s) {
		char summary[96];
		cfg_diags_summary(&d, summary, sizeof(summary));
		fprintf(stderr, "%s: invalid scenario (%s)\n", a.file, summary);
		cfg_diags_release(&d);
		return EXIT_USAGE;
	}
	cfg_diags_release(&d);
	if (a.stack == SCN_STACK_STATIC && s->stack != SCN_STACK_STATIC && s->registration == SCN_REG_AGENT)
		s->registration = SCN_REG_DIRECT; /* a static stack has no registry: nothing to register with */
	if (strcmp(a.verb, "check") == 0) {
		printf("%s: ok (%zu backend%s, %zu phase%s, %zu fault%s, %.1fs of load)\n", a.file, s->n_backends,
		       s->n_backends == 1 ? "" : "s", s->n_phases, s->n_phases == 1 ? "" : "s", s->n_faults,
		       s->n_faults == 1 ? "" : "s", (double)scn_duration_us(s) / 1e6);
		scn_free(s);
		return EXIT_OK;
	}
	if (a.time_scale != 1 || a.load_scale != 1)
		scn_scale(s, a.time_scale, a.load_scale);
	rc = run(cmd, &a, s);
	scn_free(s);
	return rc;
}
