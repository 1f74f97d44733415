/* `veltrix demo`: the built-in scenario on a static HAProxy configuration, then on Veltrix,
 * one after the other (they would compete for CPU side by side), and the table of both. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/scn_cli.h"
#include "config/config.h"
#include "scenario/scenario.h"

enum { OPT_QUICK = 256, OPT_HTML, OPT_JSON, OPT_KEEP, OPT_QUIET };

const struct cli_opt cmd_demo_opts[] = {
	{ OPT_QUICK, "quick", NULL, "a short form: a fifth of the time and 40% of the load and capacity (seconds, not minutes)" },
	{ OPT_HTML, "html", "FILE", "where the HTML report goes (default: $TMPDIR/veltrix-demo.html)" },
	{ OPT_JSON, "json", "FILE", "also write both runs as JSON; - for stdout" },
	{ OPT_KEEP, "keep", NULL, "keep each run's directory (configs, logs)" },
	{ OPT_QUIET, "quiet", NULL, "no progress lines on stderr" },
	{ 0, NULL, NULL, NULL },
};

struct demo_args {
	bool quick, keep, quiet;
	const char *html, *json;
};

static struct scn_result *run_one(const struct demo_args *a, enum scn_stack stack)
{
	struct cfg_diags d;
	struct vxerr err;
	cfg_diags_init(&d, 0);
	struct scn *s = scn_load_buffer("demo", scn_demo_yaml, strlen(scn_demo_yaml), &d);
	if (!s) { /* the embedded scenario is tested; this is a build gone wrong */
		cfg_diags_print(&d, stderr);
		cfg_diags_release(&d);
		return NULL;
	}
	cfg_diags_release(&d);
	if (a->quick)
		scn_scale(s, 0.2, 0.4);
	struct scn_run_opts o;
	const char *label = stack == SCN_STACK_STATIC ? "static" : "veltrix";
	scn_cli_opts(&o, a->quiet, label);
	o.stack = stack;
	o.keep_work_dir = a->keep;
	if (!a->quiet)
		fprintf(stderr, "[%s] running the demo scenario on the %s stack\n", label,
			stack == SCN_STACK_STATIC ? "static HAProxy" : "Veltrix");
	struct scn_result *r = scn_run(s, &o, &err);
	if (!r) {
		fprintf(stderr, "veltrix demo: %s\n", err.msg);
		scn_free(s);
	}
	return r; /* r->scn points into s: freed with the result in finish() */
}

static void free_run(struct scn_result *r)
{
	if (!r)
		return;
	struct scn *s = (struct scn *)(uintptr_t)r->scn;
	scn_result_free(r);
	scn_free(s);
}

static int reports(const struct demo_args *a, const struct scn_result *st, const struct scn_result *ve)
{
	char def[300];
	const char *tmp = getenv("TMPDIR");
	const char *html = a->html;
	if (!html) {
		snprintf(def, sizeof(def), "%s/veltrix-demo.html", tmp && *tmp ? tmp : "/tmp");
		html = def;
	}
	struct buf page = BUF_INIT(64u << 20);
	const struct scn_result *both[] = { st, ve };
	int rc = 0;
	if (scn_report_html(both, 2, "veltrix demo: static HAProxy vs Veltrix", &page) != 0 ||
	    scn_cli_write("demo", "HTML report", html, page.data, page.len) != 0)
		rc = -1;
	else
		printf("\nHTML report (charts of both runs): %s\n", html);
	buf_release(&page);
	if (a->json) {
		char *json = scn_demo_json(st, ve);
		rc |= scn_cli_write("demo", "JSON report", a->json, json, strlen(json));
		free(json);
	}
	return rc;
}

static int finish(const struct demo_args *a, struct scn_result *st, struct scn_result *ve)
{
	int rc = EXIT_OK;
	const struct scn_result *bad = st->verdict == SCN_VERDICT_INVALID ? st : ve->verdict == SCN_VERDICT_INVALID ? ve : NULL;
	if (bad) {
		fprintf(stderr, "veltrix demo: the %s run is invalid: %s\n", bad == st ? "static" : "Veltrix", bad->invalid_reason);
		if (bad->work_dir_kept)
			fprintf(stderr, "its logs are in %s\n", bad->work_dir);
		rc = EXIT_ENV;
	}
	struct buf table = BUF_INIT(1u << 20);
	printf("veltrix demo%s: the same scenario on a static HAProxy configuration and on Veltrix\n",
	       a->quick ? " --quick" : "");
	scn_demo_table(st, ve, &table);
	fputs(table.data ? table.data : "", stdout);
	buf_release(&table);
	if (reports(a, st, ve) != 0 && rc == EXIT_OK)
		rc = EXIT_ENV;
	if (rc == EXIT_OK && ve->verdict == SCN_VERDICT_FAIL) {
		/* The static run is expected to miss the SLO; Veltrix missing it is news. */
		fprintf(stderr, "veltrix demo: Veltrix missed the demo's SLO (errors<1%%, p99<100ms) on this machine\n");
		rc = EXIT_FAILED;
	}
	return rc;
}

int cmd_demo(const struct cli_command *cmd, int argc, char **argv)
{
	struct demo_args a = { 0 };
	struct cli_parser p;
	const char *v;
	int c;
	cli_parser_init(&p, cmd, argc, argv);
	while ((c = cli_next(&p, &v)) >= 0) {
		if (c == OPT_QUICK)
			a.quick = true;
		else if (c == OPT_HTML)
			a.html = v;
		else if (c == OPT_JSON)
			a.json = v;
		else if (c == OPT_KEEP)
			a.keep = true;
		else if (c == OPT_QUIET)
			a.quiet = true;
	}
	if (c == CLI_EXIT)
		return p.exit_code;
	if (p.optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[p.optind]);
	scn_cli_signals();
	struct scn_result *st = run_one(&a, SCN_STACK_STATIC), *ve = NULL;
	if (st && !scn_interrupted() && st->verdict != SCN_VERDICT_INVALID)
		ve = run_one(&a, SCN_STACK_VELTRIX);
	int rc = EXIT_ENV;
	if (st && ve)
		rc = finish(&a, st, ve);
	else if (st && st->verdict == SCN_VERDICT_INVALID)
		fprintf(stderr, "veltrix demo: the static run is invalid: %s\n", st->invalid_reason);
	free_run(st);
	free_run(ve);
	return rc;
}
