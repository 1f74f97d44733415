/* `veltrix agent`: flags (and the service's health section of the configuration) -> struct
 * agent_opts, then the agent runs until it has drained; or `--once`: one check, printed. */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "cli/cli_common.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/timeutil.h"
#include "registry/reg.h"

enum {
	OPT_SERVICE = 256, OPT_PORT, OPT_ADDRESS, OPT_INSTANCE, OPT_CAPACITY, OPT_CHECK, OPT_INTERVAL, OPT_TIMEOUT,
	OPT_RISE, OPT_FALL, OPT_TTL, OPT_DRAIN_TIMEOUT, OPT_SHARED_LEASE, OPT_ETCD, OPT_ONCE,
};

const struct cli_opt cmd_agent_opts[] = {
	{ OPT_SERVICE, "service", "NAME", "service to register in ([a-z0-9][a-z0-9_-]{0,62}); required" },
	{ OPT_PORT, "port", "PORT", "the instance's port; required" },
	{ OPT_ADDRESS, "address", "IP", "address to advertise (default: where the service listens; the host's first "
	  "non-loopback address for a wildcard listener)" },
	{ OPT_INSTANCE, "instance", "ID", "instance id (default: ADDRESS:PORT; IPv6 fully expanded)" },
	{ OPT_CAPACITY, "capacity", "N", "concurrent requests it serves, 1..100000 (default: none written)" },
	{ OPT_CHECK, "check", "CHECK", "tcp | http:/PATH | exec:COMMAND (default: the service's health section, else tcp)" },
	{ OPT_INTERVAL, "interval", "DUR", "time between checks (default 1s, or services[].health.interval)" },
	{ OPT_TIMEOUT, "timeout", "DUR", "a check not done within this fails (default 500ms, or services[].health.timeout)" },
	{ OPT_RISE, "rise", "N", "passing checks in a row to go up (default 2, or services[].health.rise)" },
	{ OPT_FALL, "fall", "N", "failing checks in a row to go down (default 2, or services[].health.fall)" },
	{ OPT_TTL, "ttl", "DUR", "lease TTL, whole seconds >= 2s (default agent.ttl, 10s)" },
	{ OPT_DRAIN_TIMEOUT, "drain-timeout", "DUR", "time spent `draining` after SIGTERM (default "
	  "services[].drain_timeout, else 30s)" },
	{ OPT_SHARED_LEASE, "shared-lease", "DIR", "share one lease with the other agents of this host that name the "
	  "same directory (default agent.shared_lease, else a lease of its own)" },
	{ 'c', "config", "FILE", "configuration file (default: $VELTRIX_CONFIG, else ./veltrix.yaml when it exists)" },
	{ OPT_ETCD, "etcd", "URL[,URL...]", "etcd endpoints, overriding etcd.endpoints" },
	{ OPT_ONCE, "once", NULL, "run the check once, print the result, exit 0 (pass) or 1 (fail); no etcd needed" },
	{ 0, NULL, NULL, NULL },
};

struct flags {
	const char *v[OPT_ONCE - OPT_SERVICE]; /* the value of each option with an argument, by id */
	const char *config;
	bool once;
	char **command;
};

#define FLAG(f, id) ((f)->v[(id) - OPT_SERVICE])

static int dur_flag(const char *name, const char *text, int64_t *out, struct vxerr *err)
{
	char why[128];
	if (text && dur_parse(text, out, why, sizeof(why)) != 0)
		return vxerr_set(err, "--%s '%s': %s", name, text, why);
	return 0;
}

static int int_flag(const char *name, const char *text, int min, int max, int *out, struct vxerr *err)
{
	if (text && parse_int(text, min, max, out) != 0)
		return vxerr_set(err, "--%s '%s': expected a whole number in %d..%d", name, text, min, max);
	return 0;
}

/* Check defaults: the service's health section when the configuration names the service. */
static void check_defaults(const struct vx_config *cfg, const char *service, struct agent_opts *o)
{
	const struct cfg_service *svc = service ? cfg_service_find(cfg, service) : NULL;
	struct check_spec *c = &o->check;
	*c = (struct check_spec){ .kind = CHECK_KIND_TCP, .interval_us = USEC_PER_SEC, .timeout_us = 500 * USEC_PER_MS,
				  .rise = 2, .fall = 2 };
	o->drain_timeout_us = 30 * USEC_PER_SEC;
	if (!svc)
		return;
	if (svc->health.type == CHECK_HTTP) {
		c->kind = CHECK_KIND_HTTP;
		c->path = svc->health.path;
	}
	c->interval_us = svc->health.interval_us;
	c->timeout_us = svc->health.timeout_us;
	c->rise = svc->health.rise;
	c->fall = svc->health.fall;
	o->drain_timeout_us = svc->drain_timeout_us;
}

static int check_flags(const struct flags *f, struct check_spec *c, struct vxerr *err)
{
	if (FLAG(f, OPT_CHECK) && check_spec_parse(FLAG(f, OPT_CHECK), c, err) != 0)
		return vxerr_prefix(err, "--check: ");
	if (dur_flag("interval", FLAG(f, OPT_INTERVAL), &c->interval_us, err) != 0 ||
	    dur_flag("timeout", FLAG(f, OPT_TIMEOUT), &c->timeout_us, err) != 0 ||
	    int_flag("rise", FLAG(f, OPT_RISE), 1, 100, &c->rise, err) != 0 ||
	    int_flag("fall", FLAG(f, OPT_FALL), 1, 100, &c->fall, err) != 0)
		return -1;
	if (c->interval_us < 10 * USEC_PER_MS || c->timeout_us < USEC_PER_MS)
		return vxerr_set(err, "--interval must be at least 10ms and --timeout at least 1ms");
	if (c->timeout_us > c->interval_us)
		return vxerr_set(err, "--timeout must not exceed --interval (a check ends before the next is due)");
	return 0;
}

static int instance_flags(const struct flags *f, struct agent_opts *o, struct vxerr *err)
{
	int port = 0, capacity = 0;
	char canon[NET_IP_MAX];
	const char *svc = FLAG(f, OPT_SERVICE);
	if (!f->once && !svc)
		return vxerr_set(err, "--service NAME is required");
	if (svc && !reg_service_name_valid(svc, strlen(svc)))
		return vxerr_set(err, "--service '%s': must match [a-z0-9][a-z0-9_-]{0,62}", svc);
	if (!FLAG(f, OPT_PORT) && !(f->once && o->check.kind == CHECK_KIND_EXEC))
		return vxerr_set(err, "--port PORT is required");
	if (int_flag("port", FLAG(f, OPT_PORT), 1, 65535, &port, err) != 0 ||
	    int_flag("capacity", FLAG(f, OPT_CAPACITY), 1, REG_CAPACITY_MAX, &capacity, err) != 0)
		return -1;
	if (FLAG(f, OPT_ADDRESS) && net_ip_canon(FLAG(f, OPT_ADDRESS), canon, sizeof(canon)) < 0)
		return vxerr_set(err, "--address '%s': not an IPv4 or IPv6 literal", FLAG(f, OPT_ADDRESS));
	const char *inst = FLAG(f, OPT_INSTANCE);
	if (inst && !reg_instance_name_valid(inst, strlen(inst)))
		return vxerr_set(err, "--instance '%s': must match [A-Za-z0-9][A-Za-z0-9._:-]{0,63}", inst);
	o->service = svc;
	o->port = (uint16_t)port;
	o->capacity = capacity;
	o->address = FLAG(f, OPT_ADDRESS);
	o->instance = inst;
	return 0;
}

/* A configured TTL that is not whole seconds is rounded up (`veltrix check` warns about it);
 * a flag must be exact. */
static int ttl_flag(const struct flags *f, const struct vx_config *cfg, struct agent_opts *o, struct vxerr *err)
{
	o->ttl_us = (cfg->agent.ttl_us + USEC_PER_SEC - 1) / USEC_PER_SEC * USEC_PER_SEC;
	if (dur_flag("ttl", FLAG(f, OPT_TTL), &o->ttl_us, err) != 0)
		return -1;
	if (o->ttl_us < AGENT_TTL_MIN_US || o->ttl_us % USEC_PER_SEC != 0)
		return vxerr_set(err, "--ttl must be whole seconds, at least 2s (etcd lease TTLs are seconds)");
	return 0;
}

static int build_opts(const struct flags *f, const struct vx_config *cfg, struct agent_opts *o, struct vxerr *err)
{
	memset(o, 0, sizeof(*o));
	check_defaults(cfg, FLAG(f, OPT_SERVICE), o);
	if (check_flags(f, &o->check, err) != 0 || instance_flags(f, o, err) != 0 || ttl_flag(f, cfg, o, err) != 0 ||
	    dur_flag("drain-timeout", FLAG(f, OPT_DRAIN_TIMEOUT), &o->drain_timeout_us, err) != 0)
		return -1;
	o->load_report_interval_us = cfg->agent.load_report_interval_us;
	o->shared_lease = FLAG(f, OPT_SHARED_LEASE) ? FLAG(f, OPT_SHARED_LEASE) : cfg->agent.shared_lease;
	o->prefix = cfg->etcd.prefix;
	o->command = f->command;
	return 0;
}

static int run_once(struct agent_opts *o)
{
	struct check_spec spec = o->check;
	spec.port = o->port;
	if (o->address)
		net_ip_canon(o->address, spec.address, sizeof(spec.address));
	else
		agent_address_default(o->port, spec.address, sizeof(spec.address));
	struct check_result res;
	agent_check_once(&spec, &res);
	char took[32];
	dur_format(res.duration_us, took, sizeof(took));
	printf("%s: %s (%s)\n", res.pass ? "pass" : "fail", res.detail, took);
	return res.pass ? EXIT_OK : EXIT_FAILED;
}

static int run_agent(const struct cli_command *cmd, struct agent_opts *o, const struct vx_config *cfg,
		     const char *etcd_flag)
{
	struct cli_etcd etcd;
	struct vxerr err;
	if (cli_etcd_init(&etcd, cfg, etcd_flag, &err) != 0)
		return cli_usage_error(cmd, "%s", err.msg);
	o->etcd = &etcd.opts;
	log_set_component("agent");
	struct agent *a = agent_new(EV_DEFAULT, o, &err);
	int rc;
	if (!a) {
		rc = cli_usage_error(cmd, "%s", err.msg);
	} else {
		rc = agent_run(a);
		agent_free(a);
	}
	cli_etcd_release(&etcd);
	return rc;
}

static int parse(const struct cli_command *cmd, int argc, char **argv, struct flags *f)
{
	struct cli_parser p;
	const char *arg;
	int c;
	cli_parser_init(&p, cmd, argc, argv);
	while ((c = cli_next(&p, &arg)) >= 0) {
		if (c == 'c')
			f->config = arg;
		else if (c == OPT_ONCE)
			f->once = true;
		else
			FLAG(f, c) = arg;
	}
	if (c == CLI_EXIT)
		return p.exit_code;
	bool dashdash = p.optind > 1 && strcmp(argv[p.optind - 1], "--") == 0;
	if (p.optind < argc && !dashdash)
		return cli_usage_error(cmd, "unexpected argument '%s' (a command to supervise goes after --)", argv[p.optind]);
	if (dashdash && p.optind == argc)
		return cli_usage_error(cmd, "'--' must be followed by the command to supervise");
	if (dashdash && f->once)
		return cli_usage_error(cmd, "--once runs only the check, not a command");
	f->command = dashdash ? argv + p.optind : NULL;
	return -1;
}

int cmd_agent(const struct cli_command *cmd, int argc, char **argv)
{
	struct flags f = { 0 };
	int rc = parse(cmd, argc, argv, &f);
	if (rc >= 0)
		return rc;
	struct vx_config *cfg = cli_load_config(f.config);
	if (!cfg)
		return EXIT_USAGE;
	struct agent_opts o;
	struct vxerr err;
	if (build_opts(&f, cfg, &o, &err) != 0)
		rc = cli_usage_error(cmd, "%s", err.msg);
	else if (f.once)
		rc = run_once(&o);
	else
		rc = run_agent(cmd, &o, cfg, FLAG(&f, OPT_ETCD));
	cfg_free(cfg);
	return rc;
}
