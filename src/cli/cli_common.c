/* Configuration and etcd options for commands (see cli_common.h). */
#include "cli/cli_common.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"

#define PASSWORD_MAX 4096
#define ENDPOINTS_MAX 16

struct vx_config *cli_load_config(const char *flag_path)
{
	struct cfg_diags d;
	cfg_diags_init(&d, 0);
	struct vx_config *cfg = cfg_load_resolved(flag_path, &d);
	cfg_diags_sort(&d);
	cfg_diags_print(&d, stderr);
	if (!cfg)
		fprintf(stderr, "veltrix: invalid configuration %s (run 'veltrix check' for details)\n",
			cfg_path_resolve(flag_path, NULL));
	cfg_diags_release(&d);
	return cfg;
}

static int split_endpoints(struct cli_etcd *e, const char *list, struct vxerr *err)
{
	for (const char *p = list; *p;) {
		size_t n = strcspn(p, ",");
		if (n > 0) {
			if (e->n_endpoints == ENDPOINTS_MAX)
				return vxerr_set(err, "--etcd: at most %d endpoints", ENDPOINTS_MAX);
			char *url = xstrndup(p, n);
			if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
				vxerr_set(err, "--etcd: '%s' is not an http:// or https:// URL", url);
				free(url);
				return -1;
			}
			e->endpoints = xrealloc(e->endpoints, sizeof(char *) * (e->n_endpoints + 1));
			e->endpoints[e->n_endpoints++] = url;
		}
		p += n + (p[n] == ',');
	}
	return 0;
}

static int read_password(struct cli_etcd *e, const char *path, struct vxerr *err)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return vxerr_set(err, "etcd.auth.password_file %s: %s", path, strerror(errno));
	struct buf b = BUF_INIT(PASSWORD_MAX);
	char chunk[512];
	size_t n;
	int r = 0;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		if (buf_append(&b, chunk, n) != 0)
			r = vxerr_set(err, "etcd.auth.password_file %s: longer than %d bytes", path, PASSWORD_MAX);
	fclose(f);
	while (b.len && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == '\r'))
		b.data[--b.len] = '\0';
	e->password = buf_detach(&b, NULL);
	return r;
}

int cli_etcd_init(struct cli_etcd *e, const struct vx_config *cfg, const char *flag, struct vxerr *err)
{
	memset(e, 0, sizeof(*e));
	if (flag && split_endpoints(e, flag, err) != 0)
		goto fail;
	for (size_t i = 0; !flag && i < cfg->etcd.n_endpoints; i++) {
		e->endpoints = xrealloc(e->endpoints, sizeof(char *) * (e->n_endpoints + 1));
		e->endpoints[e->n_endpoints++] = xstrdup(cfg->etcd.endpoints[i]);
	}
	if (e->n_endpoints == 0) {
		vxerr_set(err, "no etcd endpoint: give --etcd URL[,URL...] or set etcd.endpoints in the configuration");
		goto fail;
	}
	if (cfg->etcd.auth.user && read_password(e, cfg->etcd.auth.password_file, err) != 0)
		goto fail;
	e->opts = (struct etcd_opts){
		.endpoints = (const char *const *)e->endpoints, .n_endpoints = e->n_endpoints,
		.dial_timeout_us = cfg->etcd.dial_timeout_us, .request_timeout_us = cfg->etcd.request_timeout_us,
		.tls_ca = cfg->etcd.tls.ca, .tls_cert = cfg->etcd.tls.cert, .tls_key = cfg->etcd.tls.key,
		.user = cfg->etcd.auth.user, .password = e->password, .watch_stall_us = cfg->etcd.watch_stall_us,
	};
	return 0;
fail:
	cli_etcd_release(e);
	return -1;
}

void cli_etcd_release(struct cli_etcd *e)
{
	for (size_t i = 0; i < e->n_endpoints; i++)
		free(e->endpoints[i]);
	free(e->endpoints);
	if (e->password)
		memset(e->password, 0, strlen(e->password));
	free(e->password);
	memset(e, 0, sizeof(*e));
}

void cli_etcd_describe(const struct cli_etcd *e, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; i < e->n_endpoints && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", e->endpoints[i]);
}

static void on_ctl_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)revents;
	struct cli_ctl_signals *s = w->data;
	if (w->signum == SIGHUP)
		ctl_reload_config(s->ctl);
	else if (w->signum == SIGUSR1)
		ctl_force_sync(s->ctl);
	else
		s->on_stop(loop, s->ud, w->signum);
}

void cli_ctl_signals_start(struct cli_ctl_signals *s, struct ev_loop *loop, struct controller *ctl,
			   void (*on_stop)(struct ev_loop *loop, void *ud, int signum), void *ud)
{
	static const int signums[] = { SIGHUP, SIGUSR1, SIGTERM, SIGINT };
	s->ctl = ctl;
	s->on_stop = on_stop;
	s->ud = ud;
	for (int i = 0; i < 4; i++) {
		ev_signal_init(&s->w[i], on_ctl_signal, signums[i]);
		s->w[i].data = s;
		ev_signal_start(loop, &s->w[i]);
	}
}

void cli_ctl_signals_stop(struct cli_ctl_signals *s, struct ev_loop *loop)
{
	for (int i = 0; i < 4; i++)
		ev_signal_stop(loop, &s->w[i]);
}
