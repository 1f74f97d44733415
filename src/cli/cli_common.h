/* What several commands share: loading the configuration with its diagnostics printed, and
 * building etcd client options from the configuration and the --etcd flag. The cli is the one
 * place where config (YAML) and the registry client (which knows nothing of config) meet. */
#ifndef VX_CLI_COMMON_H
#define VX_CLI_COMMON_H

#include <ev.h>

#include "config/config.h"
#include "controller/controller.h"
#include "registry/etcd.h"

/* Loads -c FILE (or $VELTRIX_CONFIG, or ./veltrix.yaml, or defaults when that is absent),
 * printing findings to stderr. Returns the config, or NULL after printing why. */
struct vx_config *cli_load_config(const char *flag_path);

/* etcd options with storage for what they point to. */
struct cli_etcd {
	struct etcd_opts opts;
	char **endpoints;
	size_t n_endpoints;
	char *password;
};

/* Endpoints from flag ("url1,url2", overrides the config) or cfg->etcd.endpoints; the password
 * from etcd.auth.password_file. Returns 0, or -1 with err set (no endpoint, unreadable file). */
int cli_etcd_init(struct cli_etcd *e, const struct vx_config *cfg, const char *flag, struct vxerr *err);
void cli_etcd_release(struct cli_etcd *e);
/* "http://a:2379, http://b:2379" for messages, into out[cap]. */
void cli_etcd_describe(const struct cli_etcd *e, char *out, size_t cap);

/* The signals a running controller answers, for `veltrix controller` and `veltrix up`:
 * SIGHUP re-reads the configuration, SIGUSR1 forces one sync past the panic threshold,
 * SIGTERM and SIGINT call on_stop (which ends the loop). */
struct cli_ctl_signals {
	ev_signal w[4];
	struct controller *ctl;
	void (*on_stop)(struct ev_loop *loop, void *ud, int signum);
	void *ud;
};
void cli_ctl_signals_start(struct cli_ctl_signals *s, struct ev_loop *loop, struct controller *ctl,
			   void (*on_stop)(struct ev_loop *loop, void *ud, int signum), void *ud);
void cli_ctl_signals_stop(struct cli_ctl_signals *s, struct ev_loop *loop);

#endif
