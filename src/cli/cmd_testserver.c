/* `veltrix testserver`: the HTTP test backend (src/load/testserver.h) on the command line. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/timeutil.h"
#include "load/testserver.h"

enum { OPT_PORT = 256, OPT_CAPACITY, OPT_SERVICE, OPT_OVERLOAD, OPT_FAIL, OPT_BIND, OPT_INSTANCE, OPT_THREADS,
       OPT_MAX_CONNS, OPT_DRAIN };

const struct cli_opt cmd_testserver_opts[] = {
	{ OPT_PORT, "port", "PORT", "TCP port (0: any free port, printed at start)" },
	{ OPT_BIND, "bind", "IP", "address to listen on (default 127.0.0.1)" },
	{ OPT_CAPACITY, "capacity", "N", "requests served at once (default 100)" },
	{ OPT_SERVICE, "service-time", "DIST", "per request: 5ms, exp:5ms (mean) or uniform:2ms-8ms (default 0s)" },
	{ OPT_OVERLOAD, "overload", "queue|reject", "beyond capacity: wait in a queue (default) or answer 503" },
	{ OPT_FAIL, "fail-rate", "X", "fraction of requests answered 500, 0..1 or a percentage (default 0)" },
	{ OPT_INSTANCE, "instance", "NAME", "sent back in the X-Served-By header (default: ADDRESS:PORT)" },
	{ OPT_THREADS, "threads", "N", "event loops, each with its own SO_REUSEPORT listener (default 1)" },
	{ OPT_MAX_CONNS, "max-conns", "N", "connections at once; more are closed at once (default 10000)" },
	{ OPT_DRAIN, "drain-timeout", "DURATION", "on SIGTERM, how long in-flight requests may take (default 30s)" },
	{ 0, NULL, NULL, NULL },
};

static struct ts_server *volatile current;

static void on_signal(int sig)
{
	(void)sig;
	struct ts_server *s = current;
	if (s)
		ts_server_stop(s);
}

static int parse_opt(const struct cli_command *cmd, struct ts_opts *o, int c, const char *v, bool *has_port)
{
	struct vxerr err;
	char why[128];
	int port;
	switch (c) {
	case OPT_PORT:
		if (parse_int(v, 0, 65535, &port) != 0)
			return cli_usage_error(cmd, "--port must be 0 to 65535");
		o->port = (uint16_t)port;
		*has_port = true;
		return 0;
	case OPT_BIND:
		o->bind = v;
		return 0;
	case OPT_CAPACITY:
		return parse_int(v, 1, 1000000, &o->capacity) == 0 ? 0 : cli_usage_error(cmd, "--capacity must be 1 to 1000000");
	case OPT_SERVICE:
		return ts_dist_parse(v, &o->service, &err) == 0 ? 0 : cli_usage_error(cmd, "--service-time: %s", err.msg);
	case OPT_OVERLOAD:
		if (strcmp(v, "queue") != 0 && strcmp(v, "reject") != 0)
			return cli_usage_error(cmd, "--overload must be queue or reject");
		o->overload = strcmp(v, "reject") == 0 ? TS_OVERLOAD_REJECT : TS_OVERLOAD_QUEUE;
		return 0;
	case OPT_FAIL:
		if ((strchr(v, '%') ? parse_percent(v, &o->fail_rate) : parse_double(v, 0, 1, &o->fail_rate)) != 0)
			return cli_usage_error(cmd, "--fail-rate must be a fraction from 0 to 1, or a percentage");
		return 0;
	case OPT_INSTANCE:
		o->instance = v;
		return 0;
	case OPT_THREADS:
		return parse_int(v, 1, 64, &o->threads) == 0 ? 0 : cli_usage_error(cmd, "--threads must be 1 to 64");
	case OPT_MAX_CONNS:
		return parse_int(v, 1, 1000000, &o->max_conns) == 0 ? 0 : cli_usage_error(cmd, "--max-conns must be 1 to 1000000");
	case OPT_DRAIN:
		if (dur_parse(v, &o->drain_timeout_us, why, sizeof(why)) != 0)
			return cli_usage_error(cmd, "--drain-timeout: %s", why);
		return 0;
	}
	return cli_usage_error(cmd, "unexpected option");
}

static int serve(struct ts_opts *o)
{
	struct vxerr err;
	struct ts_server *s = ts_server_new(o, &err);
	if (!s) {
		log_error("cannot start the test server", "error=%s", log_q(err.msg));
		return EXIT_ENV;
	}
	char dist[64];
	ts_dist_format(&o->service, dist, sizeof(dist));
	log_info("listening", "bind=%s port=%u capacity=%d service_time=%s overload=%s fail_rate=%g instance=%s",
		 log_q(o->bind ? o->bind : "127.0.0.1"), (unsigned)ts_server_port(s), o->capacity, log_q(dist),
		 o->overload == TS_OVERLOAD_REJECT ? "reject" : "queue", o->fail_rate, log_q(o->instance ? o->instance : ""));
	current = s;
	struct sigaction sa = { .sa_handler = on_signal };
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	int rc = ts_server_run(s, &err);
	struct ts_stats st;
	ts_server_stats(s, &st);
	current = NULL;
	if (rc != 0)
		log_error("stopped", "error=%s", log_q(err.msg));
	else
		log_info("stopped", "served=%llu failed=%llu rejected=%llu", (unsigned long long)st.served,
			 (unsigned long long)st.failed, (unsigned long long)st.rejected);
	ts_server_free(s);
	return rc == 0 ? EXIT_OK : EXIT_ENV;
}

int cmd_testserver(const struct cli_command *cmd, int argc, char **argv)
{
	struct ts_opts o = { .capacity = 100, .service = { TS_DIST_FIXED, 0, 0 }, .threads = 1, .max_conns = 10000,
			     .drain_timeout_us = 30 * USEC_PER_SEC };
	bool has_port = false;
	struct cli_parser p;
	cli_parser_init(&p, cmd, argc, argv);
	const char *v;
	int c, rc;
	while ((c = cli_next(&p, &v)) != CLI_END) {
		if (c == CLI_EXIT)
			return p.exit_code;
		if ((rc = parse_opt(cmd, &o, c, v, &has_port)) != 0)
			return rc;
	}
	if (p.optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[p.optind]);
	if (!has_port)
		return cli_usage_error(cmd, "--port is required");
	log_set_component("testserver");
	return serve(&o);
}
