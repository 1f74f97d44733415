/* `veltrix status`: the registry at one revision, lease TTLs, and HAProxy's view of each
 * server when its runtime socket answers; text or JSON (docs/registry.md). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cli_reg.h"
#include "common/alloc.h"
#include "common/timeutil.h"
#include "haproxy/hap.h"
#include "registry/reg.h"
#include "registry/reg_status.h"

enum { OPT_ETCD = 256, OPT_JSON, OPT_NO_HAPROXY };

const struct cli_opt cmd_status_opts[] = {
	{ 'c', "config", "FILE", "configuration file (default: $VELTRIX_CONFIG, else ./veltrix.yaml; none needed with --etcd)" },
	{ OPT_ETCD, "etcd", "URL[,URL...]", "etcd endpoints, overriding etcd.endpoints" },
	{ OPT_JSON, "json", NULL, "print one JSON object (shape in docs/registry.md)" },
	{ OPT_NO_HAPROXY, "no-haproxy", NULL, "do not ask HAProxy's runtime socket (registry columns only)" },
	{ 0, NULL, NULL, NULL },
};

#define DP_TIMEOUT_US (2 * USEC_PER_SEC)

/* HAProxy's side: `show stat` parsed, and the rows regrouped per backend. */
struct dp {
	const char *socket; /* NULL: not asked */
	char error[VXERR_MAX];
	struct hap_stats stats;
	struct reg_dp_backend *backends;
	size_t n_backends;
	struct reg_dp_server *servers;
};

/* The weight shown is the one HAProxy holds for the server (uweight): the effective `weight`
 * column reads 1 for a server in maintenance, which says nothing; the state says whether it
 * gets traffic. */
static struct reg_dp_server dp_server(const struct hap_stat_row *r)
{
	return (struct reg_dp_server){
		.name = r->svname, .addr = r->addr && r->addr[0] ? r->addr : NULL, .state = r->status,
		.check = r->check_status, .weight = r->uweight >= 0 ? r->uweight : r->weight, .sessions = r->scur,
		.queue = r->qcur,
		.rtime_ms = r->rtime,
	};
}

/* One backend per BACKEND row (a frontend may carry the same name), with its servers. */
static void dp_group(struct dp *d)
{
	size_t nb = 0, ns = 0;
	d->backends = xcalloc(d->stats.n + 1, sizeof(*d->backends));
	d->servers = xcalloc(d->stats.n + 1, sizeof(*d->servers));
	for (size_t i = 0; i < d->stats.n; i++) {
		const struct hap_stat_row *b = &d->stats.rows[i];
		if (b->type != HAP_STAT_BACKEND)
			continue;
		struct reg_dp_backend *be = &d->backends[nb++];
		*be = (struct reg_dp_backend){ b->pxname, &d->servers[ns], 0 };
		for (size_t j = 0; j < d->stats.n; j++) {
			const struct hap_stat_row *s = &d->stats.rows[j];
			if (s->type == HAP_STAT_SERVER && strcmp(s->pxname, b->pxname) == 0)
				d->servers[ns + be->n++] = dp_server(s);
		}
		ns += be->n;
	}
	d->n_backends = nb;
}

static int dp_stat(struct dp *d, struct vxerr *err)
{
	struct stat st;
	if (stat(d->socket, &st) != 0)
		return vxerr_set(err, "%s", strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return vxerr_set(err, "not a unix socket");
	struct hap_rt_opts o = { .timeout_us = DP_TIMEOUT_US };
	struct hap_rt *rt = hap_rt_open(d->socket, &o, err);
	if (!rt)
		return -1;
	struct hap_cmd cmd;
	struct hap_reply reply = { 0 };
	int rc = hap_cmd_show_stat(&cmd, NULL, err);
	if (rc == 0)
		rc = hap_rt_exec(rt, &cmd, &reply, err);
	if (rc == 0)
		rc = hap_parse_stat(reply.text, reply.len, &d->stats, err);
	hap_replies_release(&reply, 1);
	hap_rt_close(rt);
	return rc;
}

static void dp_fetch(struct dp *d, const char *socket)
{
	struct vxerr err;
	memset(d, 0, sizeof(*d));
	d->socket = socket;
	if (!socket)
		return;
	if (dp_stat(d, &err) != 0)
		snprintf(d->error, sizeof(d->error), "%s", err.msg);
	else
		dp_group(d);
}

static void dp_release(struct dp *d)
{
	hap_stats_release(&d->stats);
	free(d->backends);
	free(d->servers);
}

/* The allow-lists of the configured services, and their names. */
struct policy {
	struct reg_allow *allow;
	const char **names;
	size_t n;
};

static void policy_init(struct policy *p, const struct vx_config *cfg)
{
	p->n = cfg->n_services;
	p->allow = xcalloc(p->n + 1, sizeof(*p->allow));
	p->names = xcalloc(p->n + 1, sizeof(*p->names));
	for (size_t i = 0; i < p->n; i++) {
		const struct cfg_service *s = &cfg->services[i];
		p->allow[i] = (struct reg_allow){ s->name, s->allow, s->n_allow };
		p->names[i] = s->name;
	}
}

static void policy_release(struct policy *p)
{
	free(p->allow);
	free(p->names);
}

struct status_args {
	const char *cfg_path, *etcd, *service;
	bool json, no_haproxy;
};

/* Reads the registry (one listing at one revision) into a new view; *view on success. */
static int load_view(struct cli_reg *r, const struct status_args *a, const struct policy *p,
		     struct reg_view **view)
{
	struct vxerr err;
	struct reg_range range;
	struct reg_policy pol = { p->allow, p->n };
	struct reg_view *v = reg_view_new(r->prefix, &pol, &err);
	if (!v || (a->service ? reg_range_service(r->prefix, a->service, &range, &err)
			      : reg_range_all(r->prefix, &range, &err)) != 0) {
		fprintf(stderr, "veltrix status: %s\n", err.msg);
		reg_view_free(v);
		return -1;
	}
	struct etcd_resp resp;
	if (etcd_list(r->client, range.key, strlen(range.key), 0, &resp, &err) != 0) {
		etcd_resp_release(&resp);
		reg_view_free(v);
		cli_reg_etcd_error(r, "cannot read the registry", err.msg);
		return -1;
	}
	reg_view_load_snapshot(v, resp.kvs, resp.n_kvs, resp.header.revision);
	etcd_resp_release(&resp);
	*view = v;
	return 0;
}

static int report(struct cli_reg *r, const struct status_args *a, const struct policy *p,
		  struct reg_view *v)
{
	int64_t *ids = NULL;
	size_t n_ids = reg_status_lease_ids(v, a->service, &ids);
	struct reg_lease_ttl *ttls = reg_status_fetch_ttls(r->client, ids, n_ids);
	struct dp d;
	dp_fetch(&d, a->no_haproxy ? NULL : r->cfg->haproxy.runtime_socket);
	struct reg_status_input in = {
		.view = v, .endpoints = (const char *const *)r->etcd.endpoints, .n_endpoints = r->etcd.n_endpoints,
		.service = a->service, .configured = p->names, .n_configured = p->n, .ttls = ttls, .n_ttls = n_ids,
		.dp_socket = d.socket, .dp_error = d.error[0] ? d.error : NULL, .backends = d.backends,
		.n_backends = d.n_backends,
	};
	int rc = EXIT_OK;
	if (!reg_status_known(&in)) {
		fprintf(stderr, "veltrix status: no service '%s': nothing under %s/services/%s/, not in the "
				"configuration%s\n",
			a->service, r->prefix, a->service, in.dp_socket && !in.dp_error ? ", no HAProxy backend" : "");
		rc = EXIT_FAILED;
	} else if (a->json) {
		char *s = reg_status_json(&in);
		fputs(s, stdout);
		free(s);
	} else if (reg_status_text(&in, stdout) != 0) {
		rc = EXIT_FAILED;
	}
	dp_release(&d);
	free(ttls);
	free(ids);
	return rc;
}

static int run_status(const struct status_args *a)
{
	struct cli_reg r;
	struct policy p;
	struct reg_view *v = NULL;
	if (cli_reg_open(&r, "status", a->cfg_path, a->etcd, NULL) != 0)
		return EXIT_USAGE;
	policy_init(&p, r.cfg);
	int rc = load_view(&r, a, &p, &v) == 0 ? report(&r, a, &p, v) : EXIT_USAGE;
	reg_view_free(v);
	policy_release(&p);
	cli_reg_close(&r);
	return rc;
}

int cmd_status(const struct cli_command *cmd, int argc, char **argv)
{
	struct cli_parser p;
	struct status_args a = { 0 };
	const char *arg;
	int c;
	cli_parser_init(&p, cmd, argc, argv);
	while ((c = cli_next(&p, &arg)) >= 0) {
		if (c == 'c')
			a.cfg_path = arg;
		else if (c == OPT_ETCD)
			a.etcd = arg;
		else if (c == OPT_JSON)
			a.json = true;
		else if (c == OPT_NO_HAPROXY)
			a.no_haproxy = true;
	}
	if (c == CLI_EXIT)
		return p.exit_code;
	if (p.optind + 1 < argc)
		return cli_usage_error(cmd, "give at most one SERVICE (got '%s' and '%s')", argv[p.optind],
				       argv[p.optind + 1]);
	a.service = p.optind < argc ? argv[p.optind] : NULL;
	if (a.service && !reg_service_name_valid(a.service, strlen(a.service)))
		return cli_usage_error(cmd, "'%s' is not a service name ([a-z0-9][a-z0-9_-]{0,62})", a.service);
	return run_status(&a);
}
