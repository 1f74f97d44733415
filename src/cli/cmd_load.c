/* `veltrix load URL`: the HTTP/1.1 load generator (src/load) on the command line. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/timeutil.h"
#include "load/load.h"

enum { OPT_RAMP = 256, OPT_BODY, OPT_TIMEOUT, OPT_NO_KEEPALIVE, OPT_JSON, OPT_SLO, OPT_QUIET };
#define MAX_HEADERS 64
#define BODY_MAX (1u << 20)

const struct cli_opt cmd_load_opts[] = {
	{ 'c', "connections", "N", "connections to keep open (default 10)" },
	{ 't', "threads", "N", "threads, one event loop each (default 2, at most -c)" },
	{ 'd', "duration", "DURATION", "how long to run (default 10s; not with --ramp)" },
	{ 'R', "rate", "RPS", "open loop: requests per second in total, latency from the intended send time" },
	{ OPT_RAMP, "ramp", "PHASES", "open loop with phases: RATE:DUR or FROM..TO:DUR, comma-separated" },
	{ 'm', "method", "METHOD", "request method (default GET)" },
	{ 'H', "header", "'NAME: VALUE'", "add a request header (repeatable)" },
	{ OPT_BODY, "body", "TEXT|@FILE", "request body (Content-Length is set)" },
	{ OPT_TIMEOUT, "timeout", "DURATION", "per request, connect to last byte (default 2s)" },
	{ OPT_NO_KEEPALIVE, "no-keepalive", NULL, "a new connection per request, closed by the client" },
	{ OPT_JSON, "json", "FILE", "write the JSON result to FILE ('-': stdout, the text report then goes to stderr)" },
	{ OPT_SLO, "slo", "EXPR", "assert, e.g. 'p99<50ms,errors<0.1%,rps>=1000'; exit 1 when it fails" },
	{ OPT_QUIET, "quiet", NULL, "no per-second progress (it is shown only on a terminal anyway)" },
	{ 0, NULL, NULL, NULL },
};

struct load_cli {
	struct load_spec spec;
	struct load_phase phases[LOAD_MAX_PHASES];
	const char *headers[MAX_HEADERS];
	double rate;
	bool has_duration;
	bool has_ramp;
	const char *json_path;
	bool has_slo;
	struct load_slo slo;
	bool quiet;
	char *body;
};

static struct load_run *volatile current_run;

static void on_signal(int sig)
{
	(void)sig;
	struct load_run *run = current_run;
	if (run)
		load_stop(run);
}

static void on_second(const struct load_second *s, void *arg)
{
	(void)arg;
	char line[256];
	load_second_text(s, line, sizeof(line));
	fprintf(stderr, "%s\n", line);
}

static int parse_duration_opt(const struct cli_command *cmd, const char *name, const char *v, int64_t *out)
{
	char why[128];
	if (dur_parse(v, out, why, sizeof(why)) != 0 || *out <= 0)
		return cli_usage_error(cmd, "%s '%s': %s", name, v, *out <= 0 ? "must be longer than 0s" : why);
	return 0;
}

static int read_body(const struct cli_command *cmd, struct load_cli *lc, const char *v)
{
	if (v[0] != '@') {
		lc->spec.body = v;
		lc->spec.body_len = strlen(v);
		return 0;
	}
	FILE *f = fopen(v + 1, "rb");
	if (!f)
		return cli_usage_error(cmd, "--body: cannot open '%s'", v + 1);
	struct buf b = BUF_INIT(BODY_MAX);
	char chunk[8192];
	size_t n;
	int rc = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&b, chunk, n) != 0)
			rc = -1;
	fclose(f);
	if (rc != 0) {
		buf_release(&b);
		return cli_usage_error(cmd, "--body: '%s' is larger than %u bytes", v + 1, BODY_MAX);
	}
	free(lc->body);
	lc->body = buf_detach(&b, &lc->spec.body_len);
	lc->spec.body = lc->body;
	return 0;
}

static int parse_opt(const struct cli_command *cmd, struct load_cli *lc, int c, const char *v)
{
	struct vxerr err;
	switch (c) {
	case 'c':
		return parse_int(v, 1, 100000, &lc->spec.connections) == 0 ? 0 : cli_usage_error(cmd, "-c must be 1 to 100000");
	case 't':
		return parse_int(v, 1, 64, &lc->spec.threads) == 0 ? 0 : cli_usage_error(cmd, "-t must be 1 to 64");
	case 'd':
		lc->has_duration = true;
		return parse_duration_opt(cmd, "-d", v, &lc->spec.duration_us);
	case 'R':
		if (parse_double(v, 0.001, LOAD_MAX_RPS, &lc->rate) != 0)
			return cli_usage_error(cmd, "-R must be a rate from 0.001 to %.0f requests per second", LOAD_MAX_RPS);
		return 0;
	case OPT_RAMP: {
		int n = load_ramp_parse(v, lc->phases, LOAD_MAX_PHASES, &err);
		if (n < 0)
			return cli_usage_error(cmd, "--ramp: %s", err.msg);
		lc->spec.nphases = (size_t)n;
		lc->has_ramp = true;
		return 0;
	}
	case 'm':
		lc->spec.method = v;
		return 0;
	case 'H':
		if (lc->spec.nheaders >= MAX_HEADERS)
			return cli_usage_error(cmd, "more than %d headers", MAX_HEADERS);
		lc->headers[lc->spec.nheaders++] = v;
		return 0;
	case OPT_BODY:
		return read_body(cmd, lc, v);
	case OPT_TIMEOUT:
		return parse_duration_opt(cmd, "--timeout", v, &lc->spec.timeout_us);
	case OPT_NO_KEEPALIVE:
		lc->spec.no_keepalive = true;
		return 0;
	case OPT_JSON:
		lc->json_path = v;
		return 0;
	case OPT_SLO:
		if (load_slo_parse(v, &lc->slo, &err) != 0)
			return cli_usage_error(cmd, "--slo: %s", err.msg);
		lc->has_slo = true;
		return 0;
	case OPT_QUIET:
		lc->quiet = true;
		return 0;
	}
	return cli_usage_error(cmd, "unexpected option");
}

static int parse_args(const struct cli_command *cmd, struct load_cli *lc, int argc, char **argv, int *exit_code)
{
	struct cli_parser p;
	cli_parser_init(&p, cmd, argc, argv);
	const char *v;
	int c;
	while ((c = cli_next(&p, &v)) != CLI_END) {
		if (c == CLI_EXIT) {
			*exit_code = p.exit_code;
			return -1;
		}
		if ((*exit_code = parse_opt(cmd, lc, c, v)) != 0)
			return -1;
	}
	if (p.optind != argc - 1) {
		*exit_code = cli_usage_error(cmd, "give one URL, as in http://127.0.0.1:8080/");
		return -1;
	}
	lc->spec.url = argv[p.optind];
	return 0;
}

static int finish_spec(const struct cli_command *cmd, struct load_cli *lc)
{
	if (lc->has_ramp && (lc->rate > 0 || lc->has_duration))
		return cli_usage_error(cmd, "--ramp sets the rate and the duration: drop -R and -d");
	if (lc->rate > 0) {
		lc->phases[0] = (struct load_phase){ lc->rate, lc->rate, lc->spec.duration_us };
		lc->spec.nphases = 1;
	}
	if (lc->spec.threads > lc->spec.connections) {
		if (lc->spec.connections >= 1 && lc->spec.threads == 2)
			lc->spec.threads = lc->spec.connections; /* the default bends; an explicit -t does not */
		else
			return cli_usage_error(cmd, "-t %d is more than -c %d", lc->spec.threads, lc->spec.connections);
	}
	lc->spec.phases = lc->phases;
	lc->spec.headers = lc->headers;
	return 0;
}

static int write_json(const struct load_result *r, const struct load_cli *lc)
{
	char *doc = load_result_json(r, lc->spec.url, lc->has_slo ? &lc->slo : NULL);
	FILE *f = strcmp(lc->json_path, "-") == 0 ? stdout : fopen(lc->json_path, "w");
	int rc = 0;
	if (!f || fprintf(f, "%s\n", doc) < 0)
		rc = -1;
	if (f && f != stdout && fclose(f) != 0)
		rc = -1;
	if (rc != 0)
		log_error("cannot write the JSON result", "file=%s", log_q(lc->json_path));
	free(doc);
	return rc;
}

static int report(const struct load_result *r, const struct load_cli *lc)
{
	struct buf b = BUF_INIT(1u << 20);
	load_result_text(r, lc->spec.url, lc->has_slo ? &lc->slo : NULL, &b);
	bool json_stdout = lc->json_path && strcmp(lc->json_path, "-") == 0;
	fputs(b.data ? b.data : "", json_stdout ? stderr : stdout);
	buf_release(&b);
	bool json_ok = !lc->json_path || write_json(r, lc) == 0;
	char why[512];
	if (!load_result_valid(r, why, sizeof(why))) {
		log_error("the run is invalid", "reason=%s", log_q(why));
		return EXIT_ENV;
	}
	if (!json_ok)
		return EXIT_ENV;
	return lc->has_slo && !load_slo_check(&lc->slo, r, NULL) ? EXIT_FAILED : EXIT_OK;
}

static int run_load(struct load_cli *lc)
{
	struct vxerr err;
	if (!lc->quiet && isatty(STDERR_FILENO))
		lc->spec.on_second = on_second;
	struct load_run *run = load_start(&lc->spec, &err);
	if (!run) {
		log_error("cannot start the load", "error=%s", log_q(err.msg));
		return EXIT_USAGE;
	}
	current_run = run;
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	struct sigaction old_int, old_term;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	struct load_result *r = load_wait(run);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	current_run = NULL;
	int rc = report(r, lc);
	load_result_free(r);
	load_run_free(run);
	return rc;
}

int cmd_load(const struct cli_command *cmd, int argc, char **argv)
{
	struct load_cli lc = { .spec = { .connections = 10, .threads = 2, .duration_us = 10 * USEC_PER_SEC,
					 .timeout_us = 2 * USEC_PER_SEC, .grace_us = -1 } };
	int rc = EXIT_OK;
	if (parse_args(cmd, &lc, argc, argv, &rc) == 0 && (rc = finish_spec(cmd, &lc)) == 0)
		rc = run_load(&lc);
	free(lc.body);
	return rc;
}
