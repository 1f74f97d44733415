/* `veltrix up`: the whole stack in the foreground for development and demos — a local etcd when
 * none is configured, HAProxy (managed) and the controller — stopped together by Ctrl-C or
 * SIGTERM, and also when one of them dies on its own. */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "controller/controller.h"
#include "registry/etcd_local.h"

#define ETCD_START_TIMEOUT_US (20 * USEC_PER_SEC)

const struct cli_opt cmd_up_opts[] = {
	{ 'c', "config", "FILE", "configuration file (default: $VELTRIX_CONFIG, else ./veltrix.yaml)" },
	{ 0, NULL, NULL, NULL },
};

struct up {
	struct controller *ctl;
	struct etcd_local etcd; /* pid 0 when etcd is external */
	struct cli_ctl_signals sigs;
	ev_timer watchdog;
	int exit_code;
};

static void stop(struct ev_loop *loop, struct up *u, int code)
{
	u->exit_code = code;
	ev_timer_stop(loop, &u->watchdog);
	ev_break(loop, EVBREAK_ALL);
}

static void on_stop(struct ev_loop *loop, void *ud, int signum)
{
	log_info("stopping the stack", "signal=%d", signum);
	stop(loop, ud, EXIT_OK);
}

/* A part that died on its own takes the rest down: a half stack would only mislead. */
static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)revents;
	struct up *u = w->data;
	if (u->etcd.log_path && !etcd_local_running(&u->etcd)) {
		log_error("etcd exited, stopping the stack", "log=%s", log_q(u->etcd.log_path));
		stop(loop, u, EXIT_ENV);
	} else if (!ctl_haproxy_alive(u->ctl)) {
		log_error("HAProxy exited, stopping the stack", "hint=%s", log_q("see haproxy.log in haproxy.state_dir"));
		stop(loop, u, EXIT_ENV);
	}
}

static void print_banner(const struct vx_config *cfg, const char *etcd_url, const struct controller *ctl)
{
	printf("veltrix up: the stack is running (Ctrl-C stops everything)\n");
	printf("  etcd              %s%s\n", etcd_url, cfg->etcd.n_endpoints ? "" : "  (local, data in etcd.data_dir)");
	printf("  HAProxy runtime   %s\n", ctl_runtime_socket(ctl));
	if (cfg->haproxy.stats_bind)
		printf("  HAProxy stats     http://%s/\n", cfg->haproxy.stats_bind);
	if (cfg->controller.metrics)
		printf("  controller        http://%s/metrics  http://%s/healthz\n", cfg->controller.metrics,
		       cfg->controller.metrics);
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		printf("  service %-9s %s:%u (%s, registry key %s/services/%s/<instance>)\n", s->name,
		       s->bind_host[0] ? s->bind_host : "*", (unsigned)s->bind_port, s->mode == SVC_MODE_HTTP ? "http" : "tcp",
		       cfg->etcd.prefix, s->name);
	}
	if (cfg->n_services == 0) {
		printf("\nNo services are configured: add one under `services:` (docs/config.md) and send SIGHUP.\n");
		return;
	}
	const struct cfg_service *s = &cfg->services[0];
	printf("\nRegister an instance of %s, for example a test backend with an agent beside it:\n", s->name);
	printf("  veltrix agent --etcd %s --service %s --port 9001 --capacity 50 -- veltrix testserver --port 9001\n",
	       etcd_url, s->name);
	printf("or without an agent:\n");
	printf("  veltrix register --etcd %s --service %s --instance i1 --address 127.0.0.1 --port 9001\n", etcd_url,
	       s->name);
	printf("then: curl http://%s:%u/   and   veltrix status --etcd %s\n", s->bind_host[0] ? s->bind_host : "127.0.0.1",
	       (unsigned)s->bind_port, etcd_url);
	fflush(stdout);
}

static int start_etcd(struct up *u, const struct vx_config *cfg)
{
	struct vxerr err;
	if (cfg->etcd.n_endpoints)
		return 0;
	log_info("starting a local etcd", "data_dir=%s", log_q(cfg->etcd.data_dir));
	if (etcd_local_start(&u->etcd, cfg->etcd.data_dir, NULL, 0, true, ETCD_START_TIMEOUT_US, &err) != 0) {
		log_error("cannot start etcd", "error=%s", log_q(err.msg));
		return -1;
	}
	return 0;
}

static void run_loop(struct ev_loop *loop, struct up *u)
{
	cli_ctl_signals_start(&u->sigs, loop, u->ctl, on_stop, u);
	ev_timer_init(&u->watchdog, on_watchdog, 1, 1);
	u->watchdog.data = u;
	ev_timer_start(loop, &u->watchdog);
	ev_run(loop, 0);
	cli_ctl_signals_stop(&u->sigs, loop);
}

static int run_up(struct vx_config *cfg)
{
	struct up u = { .exit_code = EXIT_OK };
	struct cli_etcd etcd = { 0 };
	struct vxerr err;
	int rc = EXIT_ENV;
	log_set_component("up");
	if (cfg->haproxy.mode != HAP_MODE_MANAGED) {
		fprintf(stderr, "veltrix up: haproxy.mode is attach; up runs HAProxy itself, so it needs mode managed\n");
		cfg_free(cfg);
		return EXIT_USAGE;
	}
	if (start_etcd(&u, cfg) != 0) {
		cfg_free(cfg);
		goto out;
	}
	if (cli_etcd_init(&etcd, cfg, cfg->etcd.n_endpoints ? NULL : u.etcd.url, &err) != 0) {
		fprintf(stderr, "veltrix up: %s\n", err.msg);
		cfg_free(cfg);
		goto out;
	}
	struct ctl_opts o = { .cfg = cfg, .cfg_path = cfg->path, .etcd = &etcd.opts, .stop_haproxy_on_exit = true };
	u.ctl = ctl_new(EV_DEFAULT, &o, &err);
	if (!u.ctl) {
		log_error("controller failed to start", "error=%s", log_q(err.msg));
		goto out;
	}
	print_banner(cfg, etcd.endpoints[0], u.ctl);
	run_loop(EV_DEFAULT, &u);
	rc = u.exit_code;
out:
	ctl_free(u.ctl);
	etcd_local_release(&u.etcd);
	cli_etcd_release(&etcd);
	log_info("stack stopped", "exit=%d", rc);
	return rc;
}

int cmd_up(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	const char *arg, *path = NULL;
	int c;
	cli_parser_init(&p, cmd, argc, argv);
	while ((c = cli_next(&p, &arg)) >= 0)
		if (c == 'c')
			path = arg;
	if (c == CLI_EXIT)
		return p.exit_code;
	if (p.optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[p.optind]);
	struct vx_config *cfg = cli_load_config(path);
	if (!cfg)
		return EXIT_USAGE;
	return run_up(cfg);
}
