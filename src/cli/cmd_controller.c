/* `veltrix controller`: watch etcd and keep HAProxy's pools equal to the registry. */
#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_common.h"
#include "common/alloc.h"
#include "common/log.h"
#include "common/parse.h"
#include "controller/controller.h"

enum { OPT_ETCD = 256, OPT_FORCE_SYNC };

const struct cli_opt cmd_controller_opts[] = {
	{ 'c', "config", "FILE", "configuration file (default: $VELTRIX_CONFIG, else ./veltrix.yaml)" },
	{ OPT_ETCD, "etcd", "URL[,URL...]", "etcd endpoints, overriding etcd.endpoints" },
	{ OPT_FORCE_SYNC, "force-sync", NULL,
	  "tell the controller running with this configuration's haproxy.state_dir to apply the registry even "
	  "past the panic threshold, once; same as sending it SIGUSR1" },
	{ 0, NULL, NULL, NULL },
};

struct run {
	struct controller *ctl;
	struct cli_ctl_signals sigs;
};

static void on_stop(struct ev_loop *loop, void *ud, int signum)
{
	struct run *r = ud;
	log_info("stopping", "signal=%d haproxy=%s", signum, log_q("keeps serving"));
	ctl_stop(r->ctl);
	ev_break(loop, EVBREAK_ALL);
}

static int signal_running(const struct vx_config *cfg)
{
	pid_t pid = ctl_pidfile_holder(cfg);
	if (pid <= 0) {
		fprintf(stderr, "veltrix controller: no controller runs with haproxy.state_dir %s\n", cfg->haproxy.state_dir);
		return EXIT_FAILED;
	}
	if (kill(pid, SIGUSR1) != 0) {
		fprintf(stderr, "veltrix controller: cannot signal pid %d: %s\n", (int)pid, strerror(errno));
		return EXIT_FAILED;
	}
	printf("asked controller %d to sync past the panic threshold once\n", (int)pid);
	return EXIT_OK;
}

static int run_controller(struct vx_config *cfg, const char *cfg_path, const char *etcd_flag)
{
	struct cli_etcd etcd;
	struct vxerr err;
	if (cli_etcd_init(&etcd, cfg, etcd_flag, &err) != 0) {
		fprintf(stderr, "veltrix controller: %s\n", err.msg);
		cfg_free(cfg);
		return EXIT_USAGE;
	}
	log_set_component("controller");
	struct ev_loop *loop = EV_DEFAULT;
	struct ctl_opts o = { .cfg = cfg, .cfg_path = cfg_path, .etcd = &etcd.opts };
	struct run r = { 0 };
	/* The lock outlives cfg (which the controller takes and may replace on SIGHUP). */
	struct vx_config lock_cfg = { .haproxy.state_dir = xstrdup(cfg->haproxy.state_dir) };
	int lock = ctl_pidfile_acquire(cfg, &err);
	r.ctl = lock >= 0 ? ctl_new(loop, &o, &err) : NULL;
	if (!r.ctl) {
		log_error("controller failed to start", "error=%s", log_q(err.msg));
		if (lock < 0)
			cfg_free(cfg);
		ctl_pidfile_release(&lock_cfg, lock);
		free(lock_cfg.haproxy.state_dir);
		cli_etcd_release(&etcd);
		return EXIT_ENV;
	}
	cli_ctl_signals_start(&r.sigs, loop, r.ctl, on_stop, &r);
	ev_run(loop, 0);
	cli_ctl_signals_stop(&r.sigs, loop);
	ctl_free(r.ctl);
	ctl_pidfile_release(&lock_cfg, lock);
	free(lock_cfg.haproxy.state_dir);
	cli_etcd_release(&etcd);
	return EXIT_OK;
}

int cmd_controller(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	const char *arg, *path = NULL, *etcd = NULL;
	bool force = false;
	int c;
	cli_parser_init(&p, cmd, argc, argv);
	while ((c = cli_next(&p, &arg)) >= 0) {
		if (c == 'c')
			path = arg;
		else if (c == OPT_ETCD)
			etcd = arg;
		else if (c == OPT_FORCE_SYNC)
			force = true;
	}
	if (c == CLI_EXIT)
		return p.exit_code;
	if (p.optind < argc)
		return cli_usage_error(cmd, "unexpected argument '%s'", argv[p.optind]);
	struct vx_config *cfg = cli_load_config(path);
	if (!cfg)
		return EXIT_USAGE;
	if (force) {
		int rc = signal_running(cfg);
		cfg_free(cfg);
		return rc;
	}
	return run_controller(cfg, cfg->path, etcd);
}
