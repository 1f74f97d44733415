/* Shared setup of the registry commands (see cli_reg.h). */
#include "cli/cli_reg.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

int cli_reg_open(struct cli_reg *r, const char *cmd, const char *cfg_path, const char *etcd_flag,
		 struct ev_loop *loop)
{
	struct vxerr err;
	memset(r, 0, sizeof(*r));
	r->cmd = cmd;
	r->cfg = cli_load_config(cfg_path);
	if (!r->cfg)
		return -1;
	r->prefix = r->cfg->etcd.prefix;
	if (cli_etcd_init(&r->etcd, r->cfg, etcd_flag, &err) != 0) {
		fprintf(stderr, "veltrix %s: %s\n", cmd, err.msg);
		goto fail;
	}
	r->client = etcd_client_new(loop, &r->etcd.opts, &err);
	if (!r->client) {
		fprintf(stderr, "veltrix %s: %s\n", cmd, err.msg);
		goto fail;
	}
	return 0;
fail:
	cli_reg_close(r);
	return -1;
}

void cli_reg_close(struct cli_reg *r)
{
	etcd_client_free(r->client);
	if (r->cfg)
		cli_etcd_release(&r->etcd);
	cfg_free(r->cfg);
	memset(r, 0, sizeof(*r));
}

int cli_reg_etcd_error(const struct cli_reg *r, const char *what, const char *err)
{
	char eps[1024];
	bool named = true; /* the client's message may already name every endpoint it tried */
	for (size_t i = 0; i < r->etcd.n_endpoints; i++)
		named = named && strstr(err, r->etcd.endpoints[i]);
	cli_etcd_describe(&r->etcd, eps, sizeof(eps));
	if (named)
		fprintf(stderr, "veltrix %s: %s: %s\n", r->cmd, what, err);
	else
		fprintf(stderr, "veltrix %s: %s (etcd at %s): %s\n", r->cmd, what, eps, err);
	return EXIT_USAGE;
}

const struct cidr *cli_reg_allow(const struct cli_reg *r, const char *service, size_t *n)
{
	const struct cfg_service *s = cfg_service_find(r->cfg, service);
	*n = s ? s->n_allow : 0;
	return s ? s->allow : NULL;
}
