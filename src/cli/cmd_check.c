/* `veltrix check`: validate a configuration file, then lint it against this machine. */
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "config/config.h"

enum { OPT_JSON = 256, OPT_SCHEMA };

const struct cli_opt cmd_check_opts[] = {
	{ 'c', "config", "FILE", "configuration file (default: $VELTRIX_CONFIG, else ./veltrix.yaml)" },
	{ OPT_JSON, "json", NULL, "print the findings as a JSON array (shape in docs/config.md)" },
	{ OPT_SCHEMA, "print-schema", NULL, "print the key and lint-rule tables of docs/config.md and exit" },
	{ 0, NULL, NULL, NULL },
};

static void print_text(const char *path, const struct cfg_diags *d, const char *verdict)
{
	char summary[96];
	cfg_diags_print(d, stdout);
	cfg_diags_summary(d, summary, sizeof(summary));
	printf("%s: %s (%s)\n", path, verdict, summary);
}

static void print_json(const char *path, const struct cfg_diags *d, const char *verdict)
{
	char summary[96];
	char *json = cfg_diags_to_json(d);
	printf("%s\n", json);
	free(json);
	cfg_diags_summary(d, summary, sizeof(summary));
	fprintf(stderr, "%s: %s (%s)\n", path, verdict, summary);
}

static int run_check(const char *flag_path, bool json)
{
	struct cfg_diags d;
	cfg_diags_init(&d, 0);
	const char *path = cfg_path_resolve(flag_path, NULL);
	struct vx_config *cfg = cfg_load(path, &d);
	if (cfg) {
		struct cfg_sysfacts facts;
		cfg_sysfacts_read(&facts);
		cfg_lint(cfg, &facts, &d);
	}
	cfg_diags_sort(&d);
	int rc = !cfg ? EXIT_USAGE : d.n_errors ? EXIT_FAILED : EXIT_OK;
	const char *verdict = rc == EXIT_USAGE ? "invalid configuration" : rc == EXIT_FAILED ? "lint failed" : "ok";
	if (json)
		print_json(path, &d, verdict);
	else
		print_text(path, &d, verdict);
	cfg_diags_release(&d);
	cfg_free(cfg);
	return rc;
}

int cmd_check(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	const char *arg, *path = NULL;
	bool json = false, schema = false;
	int c;
	cli_parser_init(&p, cmd, argc, argv);
	while ((c = cli_next(&p, &arg)) >= 0) {
		if (c == 'c')
			path = arg;
		else if (c == OPT_JSON)
			json = true;
		else if (c == OPT_SCHEMA)
			schema = true;
	}
	if (c == CLI_EXIT)
		return p.exit_code;
	if (p.optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s' (give the file with -c FILE)", argv[p.optind]);
	if (schema) {
		cfg_schema_markdown(stdout);
		return EXIT_OK;
	}
	return run_check(path, json);
}
