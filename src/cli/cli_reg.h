/* What `veltrix status`, `register` and `deregister` share: the configuration, an etcd client
 * (from --etcd or etcd.endpoints) and the registry prefix, set up in one call; and the one
 * error line that names the endpoints tried. */
#ifndef VX_CLI_REG_H
#define VX_CLI_REG_H

#include "cli/cli_common.h"
#include "registry/etcd.h"

struct cli_reg {
	const char *cmd; /* "status", for messages */
	struct vx_config *cfg;
	struct cli_etcd etcd;
	struct etcd_client *client;
	const char *prefix; /* etcd.prefix */
};

/* Loads the configuration (-c FILE or the default search) and makes a client on loop (NULL: a
 * private loop). Prints why and returns -1 on failure (exit code 2). */
int cli_reg_open(struct cli_reg *r, const char *cmd, const char *cfg_path, const char *etcd_flag,
		 struct ev_loop *loop);
void cli_reg_close(struct cli_reg *r);

/* Prints "veltrix <cmd>: <what> (etcd at <urls>): <err>" to stderr (the endpoints left out when
 * err already names each) and returns EXIT_USAGE, the exit code for an unreachable or refusing
 * etcd. */
int cli_reg_etcd_error(const struct cli_reg *r, const char *what, const char *err);

/* The allow-list of a configured service (NULL and 0 when it is not configured). */
const struct cidr *cli_reg_allow(const struct cli_reg *r, const char *service, size_t *n);

#endif
