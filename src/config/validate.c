/* Cross-field validation of a loaded configuration: what no single row can check (duplicate
 * names and addresses, a timeout against an interval, keys that only work in pairs). Pure:
 * reads the config, writes findings. Values that were rejected while loading are skipped, so
 * a rule never compares against the default that stayed in their place. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/alloc.h"
#include "common/http1.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "config/internal.h"

void cfg_report(const struct vx_config *cfg, struct cfg_diags *d, enum cfg_severity sev, const char *rule,
		const char *path, const char *hint, const char *fmt, ...)
{
	int line = 0, col = 0;
	cfg_key_pos(cfg, path, &line, &col);
	va_list ap;
	va_start(ap, fmt);
	cfg_diags_vadd(d, sev, cfg->path, line, col, path, rule, hint, fmt, ap);
	va_end(ap);
}

/* Path of a key of service i: "services[2].health.timeout". */
static const char *svc_path(char *out, size_t cap, size_t i, const char *key)
{
	snprintf(out, cap, "services[%zu].%s", i, key);
	return out;
}

/* ---- etcd, haproxy, agent ---- */

static bool prefix_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '/' || c == '_' ||
	       c == '.' || c == '-';
}

static void check_prefix(const struct vx_config *cfg, struct cfg_diags *d)
{
	const char *p = cfg->etcd.prefix;
	size_t len = strlen(p);
	if (cfg_path_bad(cfg, "etcd.prefix"))
		return;
	if (p[0] != '/' || len < 2 || p[len - 1] == '/' || strstr(p, "//") || !str_all_in(p, len, 128, prefix_char))
		cfg_report(cfg, d, CFG_SEV_ERROR, NULL, "etcd.prefix",
			   "write an absolute key path without a trailing slash, such as /veltrix (letters, digits, / _ . -)",
			   "bad registry prefix \"%s\"", p);
}

/* Keys that only work together: both or neither. */
static void check_pair(const struct vx_config *cfg, struct cfg_diags *d, const char *a, const void *va,
		       const char *b, const void *vb)
{
	if ((va == NULL) == (vb == NULL))
		return;
	const char *given = va ? a : b, *missing = va ? b : a;
	if (cfg_path_bad(cfg, missing))
		return;
	char hint[128];
	snprintf(hint, sizeof(hint), "add %s too, or remove %s", missing, given);
	cfg_report(cfg, d, CFG_SEV_ERROR, NULL, given, hint, "%s needs %s", given, missing);
}

static void check_etcd(const struct vx_config *cfg, struct cfg_diags *d)
{
	const struct cfg_etcd *e = &cfg->etcd;
	check_prefix(cfg, d);
	check_pair(cfg, d, "etcd.tls.cert", e->tls.cert, "etcd.tls.key", e->tls.key);
	check_pair(cfg, d, "etcd.auth.user", e->auth.user, "etcd.auth.password_file", e->auth.password_file);
	bool tls = e->tls.ca || e->tls.cert || e->tls.key, https = false;
	for (size_t i = 0; i < e->n_endpoints; i++)
		https |= str_starts_with(e->endpoints[i], "https://");
	if (tls && !https && e->n_endpoints > 0)
		cfg_report(cfg, d, CFG_SEV_WARNING, NULL, "etcd.tls", "use https:// endpoints, or remove etcd.tls",
			   "TLS settings are used only with https:// endpoints, and none is https://");
}

static void check_haproxy(const struct vx_config *cfg, struct cfg_diags *d)
{
	if (cfg->haproxy.mode == HAP_MODE_ATTACH && !cfg->haproxy.runtime_socket &&
	    !cfg_path_bad(cfg, "haproxy.runtime_socket"))
		cfg_report(cfg, d, CFG_SEV_ERROR, NULL, "haproxy.mode",
			   "add haproxy.runtime_socket: the path of your HAProxy's `stats socket ... level admin`",
			   "attach mode needs the runtime socket of the HAProxy to drive");
}

static void check_agent(const struct vx_config *cfg, struct cfg_diags *d)
{
	int64_t ttl = cfg->agent.ttl_us;
	if (ttl % USEC_PER_SEC == 0 || cfg_path_bad(cfg, "agent.ttl"))
		return;
	char hint[64];
	snprintf(hint, sizeof(hint), "write whole seconds, such as %llds", (long long)(ttl / USEC_PER_SEC + 1));
	cfg_report(cfg, d, CFG_SEV_ERROR, NULL, "agent.ttl", hint, "etcd lease TTLs are whole seconds");
}

/* ---- one service ---- */

static void check_health(const struct vx_config *cfg, size_t i, struct cfg_diags *d)
{
	const struct cfg_health *h = &cfg->services[i].health;
	char p[96], q[96], hint[160], a[32], b[32];
	if (!cfg_path_bad(cfg, svc_path(p, sizeof(p), i, "health.timeout")) &&
	    !cfg_path_bad(cfg, svc_path(q, sizeof(q), i, "health.interval")) && h->timeout_us >= h->interval_us) {
		dur_format(h->timeout_us, a, sizeof(a));
		dur_format(h->interval_us, b, sizeof(b));
		char half[32];
		dur_format(h->interval_us / 2, half, sizeof(half));
		snprintf(hint, sizeof(hint), "a check must end before the next starts: use for example timeout: %s", half);
		cfg_report(cfg, d, CFG_SEV_ERROR, NULL, p, hint, "health timeout %s is not shorter than the interval %s", a, b);
	}
	svc_path(p, sizeof(p), i, "health.path");
	if (h->type == CHECK_HTTP && !cfg_path_bad(cfg, p) &&
	    !http1_check_path_valid(h->path))
		cfg_report(cfg, d, CFG_SEV_ERROR, NULL, p,
			   "write a path such as /health of at most " VX_STR(HTTP1_CHECK_PATH_MAX)
			   " bytes, without spaces (%20), quotes, #, \\ or ;",
			   "bad http check path \"%s\"", h->path);
	if (h->type != CHECK_HTTP && cfg_key_given(cfg, p))
		cfg_report(cfg, d, CFG_SEV_WARNING, NULL, p, "set health.type: http, or remove health.path",
			   "health.path is used only by http checks; it is ignored");
}

static bool cidr_has_host_bits(const struct cidr *c)
{
	int bytes = c->family == AF_INET ? 4 : 16;
	for (int b = 0; b < bytes; b++) {
		int keep = c->prefix - b * 8;
		uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));
		if (c->addr[b] & (uint8_t)~mask)
			return true;
	}
	return false;
}

static void check_allow(const struct vx_config *cfg, size_t i, struct cfg_diags *d)
{
	const struct cfg_service *s = &cfg->services[i];
	char list[64];
	snprintf(list, sizeof(list), "services[%zu].allow", i);
	if (cfg_path_bad(cfg, list))
		return; /* a rejected item shifted the indexes: positions would point at the wrong line */
	for (size_t k = 0; k < s->n_allow; k++) {
		if (!cidr_has_host_bits(&s->allow[k]))
			continue;
		char p[96];
		snprintf(p, sizeof(p), "services[%zu].allow[%zu]", i, k);
		cfg_report(cfg, d, CFG_SEV_WARNING, NULL, p, "write the network address, with the host bits zero",
			   "address has bits set beyond the /%d prefix; they are ignored", s->allow[k].prefix);
	}
}

static void check_service(const struct vx_config *cfg, size_t i, struct cfg_diags *d)
{
	const struct cfg_service *s = &cfg->services[i];
	char p[96];
	svc_path(p, sizeof(p), i, "name");
	if (s->name && !cfg_path_bad(cfg, p) && !cfg_service_name_valid(s->name))
		cfg_report(cfg, d, CFG_SEV_ERROR, NULL, p,
			   "use 1 to 63 lowercase letters, digits, '_' or '-', starting with a letter or digit (such as web-api)",
			   "bad service name \"%s\": it becomes an HAProxy backend name and a registry key", s->name);
	check_health(cfg, i, d);
	check_allow(cfg, i, d);
	svc_path(p, sizeof(p), i, "http_reuse");
	if (s->mode == SVC_MODE_TCP && cfg_key_given(cfg, p))
		cfg_report(cfg, d, CFG_SEV_WARNING, NULL, p, "remove it, or use mode: http",
			   "http_reuse has no effect in mode tcp: every client connection gets its own server connection");
}

/* ---- across services ---- */

static int by_name(const void *a, const void *b, void *arg)
{
	const struct vx_config *cfg = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = strcmp(cfg->services[x].name, cfg->services[y].name);
	return c ? c : (x > y) - (x < y);
}

static void check_duplicate_names(const struct vx_config *cfg, struct cfg_diags *d)
{
	size_t *idx = xcalloc(cfg->n_services, sizeof(*idx)), n = 0;
	for (size_t i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].name)
			idx[n++] = i;
	qsort_r(idx, n, sizeof(*idx), by_name, (void *)(uintptr_t)cfg);
	for (size_t k = 1, first = 0; k < n; k++) {
		if (strcmp(cfg->services[idx[k]].name, cfg->services[idx[first]].name) != 0) {
			first = k;
			continue;
		}
		char p[96], q[96], hint[192];
		int line = 0, col = 0;
		cfg_key_pos(cfg, svc_path(q, sizeof(q), idx[first], "name"), &line, &col);
		snprintf(hint, sizeof(hint), "give each service its own name; %s is on line %d", q, line);
		cfg_report(cfg, d, CFG_SEV_ERROR, NULL, svc_path(p, sizeof(p), idx[k], "name"), hint,
			   "duplicate service name \"%s\"", cfg->services[idx[k]].name);
	}
	free(idx);
}

/* Everything that listens on this machine: the services, the stats page, the metrics. */
struct listener {
	char host[256]; /* "" = every address */
	uint16_t port;
	size_t order; /* position in the file's order: the later one is reported */
	char path[96];
};

static bool wildcard(const char *h)
{
	return !*h || !strcmp(h, "*") || !strcmp(h, "0.0.0.0") || !strcmp(h, "::");
}

static void add_hostport(const struct vx_config *cfg, const char *path, const char *text, struct listener *l,
			 size_t *n)
{
	if (!text || cfg_path_bad(cfg, path))
		return;
	struct listener *x = &l[*n];
	if (net_hostport_parse(text, x->host, sizeof(x->host), &x->port, NULL) != 0)
		return;
	snprintf(x->path, sizeof(x->path), "%s", path);
	x->order = cfg->n_services + *n;
	(*n)++;
}

static size_t collect_listeners(const struct vx_config *cfg, struct listener *l)
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_services; i++) {
		char p[96];
		svc_path(p, sizeof(p), i, "bind");
		if (cfg->services[i].bind_port == 0 || cfg_path_bad(cfg, p))
			continue;
		snprintf(l[n].host, sizeof(l[n].host), "%s", cfg->services[i].bind_host);
		l[n].port = cfg->services[i].bind_port;
		snprintf(l[n].path, sizeof(l[n].path), "%s", p);
		l[n].order = i;
		n++;
	}
	add_hostport(cfg, "haproxy.stats", cfg->haproxy.stats_bind, l, &n);
	add_hostport(cfg, "controller.metrics", cfg->controller.metrics, l, &n);
	return n;
}

static int by_port(const void *a, const void *b)
{
	const struct listener *x = a, *y = b;
	return (x->port > y->port) - (x->port < y->port);
}

static void check_duplicate_binds(const struct vx_config *cfg, struct cfg_diags *d)
{
	struct listener *l = xcalloc(cfg->n_services + 2, sizeof(*l));
	size_t n = collect_listeners(cfg, l);
	qsort(l, n, sizeof(*l), by_port); /* then compare within each port only */
	for (size_t a = 0; a < n; a++) {
		for (size_t b = a + 1; b < n && l[b].port == l[a].port; b++) {
			if (strcmp(l[a].host, l[b].host) != 0 && !wildcard(l[a].host) && !wildcard(l[b].host))
				continue;
			const struct listener *first = l[a].order < l[b].order ? &l[a] : &l[b];
			const struct listener *second = first == &l[a] ? &l[b] : &l[a];
			char hint[160];
			snprintf(hint, sizeof(hint), "give each its own port; %s listens there too", first->path);
			cfg_report(cfg, d, CFG_SEV_ERROR, NULL, second->path, hint, "address %s:%u is already used by %s",
				   wildcard(second->host) ? "*" : second->host, second->port, first->path);
		}
	}
	free(l);
}

void cfg_validate(const struct vx_config *cfg, struct cfg_diags *d)
{
	check_etcd(cfg, d);
	check_haproxy(cfg, d);
	check_agent(cfg, d);
	if (cfg->n_services == 0)
		cfg_report(cfg, d, CFG_SEV_WARNING, NULL, "services",
			   "add a `services:` list; see examples/veltrix.yaml", "no services are configured: nothing to load balance");
	for (size_t i = 0; i < cfg->n_services; i++)
		check_service(cfg, i, d);
	check_duplicate_names(cfg, d);
	check_duplicate_binds(cfg, d);
}
