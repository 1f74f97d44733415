/* The managed-mode config renderer (pure): struct vx_config + the servers HAProxy holds now ->
 * haproxy.cfg text.
 *
 * Why the current servers are rendered: a successful reload drops every dynamic server and a
 * state file cannot bring them back (FACTS 3.6), so the config itself must carry them, with
 * the same options `add server` uses (hap_server_args). After a reload they are config
 * servers; `del server` removes those too on 2.6.12 (verified, docs/haproxy.md), so the
 * controller manages them exactly like dynamic ones.
 *
 * Every value that reaches the text is whitelisted first (names, addresses, paths); a config
 * file is a text protocol too, where a newline or '#' in a value would change its meaning. */
#include "haproxy/hap.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/http1.h"
#include "common/net.h"
#include "common/strutil.h"
#include "haproxy/hap_int.h"

#define STATS_TIMEOUT "2m" /* idle CLI sessions; the controller's connection is long-lived */
#define DEFAULT_TIMEOUT_US (30 * INT64_C(1000000))

static const char *const balance_names[] = {
	[BAL_ROUNDROBIN] = "roundrobin", [BAL_LEASTCONN] = "leastconn", [BAL_FIRST] = "first",
	[BAL_RANDOM] = "random",
};
static const char *const reuse_names[] = {
	[REUSE_NEVER] = "never", [REUSE_SAFE] = "safe", [REUSE_AGGRESSIVE] = "aggressive",
	[REUSE_ALWAYS] = "always",
};

/* A file path that reads back as one config word. */
static bool file_path_ok(const char *p)
{
	if (!p || !*p || strlen(p) > 1024)
		return false;
	for (const char *c = p; *c; c++)
		if (*c <= 0x20 || *c >= 0x7f || strchr("#\"'\\;", *c))
			return false;
	return true;
}

/* Accumulates output; the first failed append sticks, so callers check once at the end. */
struct out {
	struct buf *b;
	bool full;
};

static void emit(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emit(struct out *o, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line) || buf_append(o->b, line, (size_t)n) != 0)
		o->full = true;
}

static void emit_timeout(struct out *o, const char *name, int64_t us)
{
	char ms[32];
	if (us <= 0)
		return; /* HAProxy's own default (or the defaults section) applies */
	hap_fmt_ms(ms, sizeof(ms), us);
	emit(o, "    timeout %s %s\n", name, ms);
}

static int render_global(struct out *o, const struct vx_config *cfg, const struct hap_render_opts *opts,
			 struct vxerr *err)
{
	const struct cfg_haproxy *h = &cfg->haproxy;
	if (!file_path_ok(h->runtime_socket))
		return vxerr_set(err, "haproxy.runtime_socket '%.80s' is missing or not a plain path",
				 h->runtime_socket ? h->runtime_socket : "");
	if (opts && opts->state_file && !file_path_ok(opts->state_file))
		return vxerr_set(err, "server state file '%.80s' is not a plain path", opts->state_file);
	bool named = cfg->path && file_path_ok(cfg->path) && !(opts && opts->structure_only);
	emit(o, "# Rendered by veltrix from %s. Do not edit: the next change overwrites it.\n",
	     named ? cfg->path : "its configuration");
	emit(o, "global\n");
	emit(o, "    stats socket %s mode 600 level admin expose-fd listeners\n", h->runtime_socket);
	emit(o, "    stats timeout %s\n", STATS_TIMEOUT);
	if (h->maxconn > 0)
		emit(o, "    maxconn %" PRId64 "\n", h->maxconn);
	if (h->nbthread > 0)
		emit(o, "    nbthread %d\n", h->nbthread);
	if (h->bufsize > 0)
		emit(o, "    tune.bufsize %" PRId64 "\n", h->bufsize);
	if (opts && opts->state_file)
		emit(o, "    server-state-file %s\n", opts->state_file);
	emit(o, "\ndefaults\n");
	emit_timeout(o, "connect", 5 * INT64_C(1000000));
	emit_timeout(o, "client", DEFAULT_TIMEOUT_US);
	emit_timeout(o, "server", DEFAULT_TIMEOUT_US);
	if (opts && opts->state_file)
		emit(o, "    load-server-state-from-file global\n");
	return 0;
}

static int render_bind(struct out *o, const struct cfg_service *s, struct vxerr *err)
{
	char host[NET_IP_MAX], hostport[NET_HOSTPORT_MAX];
	if (s->bind_port == 0)
		return vxerr_set(err, "service %s: bind port 0", s->name);
	if (!s->bind_host[0]) {
		snprintf(hostport, sizeof(hostport), ":%u", (unsigned)s->bind_port);
	} else {
		if (hap_addr_canon(s->bind_host, host, sizeof(host), err) != 0)
			return vxerr_prefix(err, "service %s: bind: ", s->name);
		net_hostport_format(host, s->bind_port, hostport, sizeof(hostport));
	}
	if (s->backlog > 0)
		emit(o, "    bind %s backlog %" PRId64 "\n", hostport, s->backlog);
	else
		emit(o, "    bind %s\n", hostport);
	return 0;
}

static int render_frontend(struct out *o, const struct cfg_service *s, struct vxerr *err)
{
	/* Not the service's own name: `show stat <name>` takes the first proxy so named, and a
	 * frontend declared before its backend would hide the backend's servers. '.' cannot occur
	 * in a service name, so "fe.<service>" never collides with a backend. */
	emit(o, "\nfrontend fe.%s\n", s->name);
	emit(o, "    mode %s\n", s->mode == SVC_MODE_HTTP ? "http" : "tcp");
	if (render_bind(o, s, err) != 0)
		return -1;
	if (s->maxconn > 0)
		emit(o, "    maxconn %" PRId64 "\n", s->maxconn);
	emit_timeout(o, "client", s->timeouts.client_us);
	emit(o, "    default_backend %s\n", s->name);
	return 0;
}

static int render_checks(struct out *o, const struct cfg_service *s, struct vxerr *err)
{
	if (s->health.type == CHECK_NONE)
		return 0;
	emit_timeout(o, "check", s->health.timeout_us);
	if (s->health.type != CHECK_HTTP)
		return 0;
	if (!http1_check_path_valid(s->health.path))
		return vxerr_set(err, "service %s: health check path '%.80s' is not a plain absolute path", s->name,
				 s->health.path ? s->health.path : "");
	/* Dynamic servers use the backend's check type: this line makes their `check` HTTP. */
	emit(o, "    option httpchk GET %s\n", s->health.path);
	return 0;
}

static void render_retries(struct out *o, const struct cfg_service *s)
{
	emit(o, "    retries %d\n", s->retries);
	/* Only failures where the server cannot have acted on the request: the connection
	 * failed, or it closed with nothing sent back (typically a reused idle connection the
	 * server had just closed). No response-timeout or 5xx: a POST must not run twice. */
	if (s->mode == SVC_MODE_HTTP)
		emit(o, "    retry-on conn-failure empty-response\n");
	emit(o, "    option redispatch 1\n");
}

static const struct hap_pool *find_pool(const struct hap_render_opts *opts, const char *backend)
{
	for (size_t i = 0; opts && i < opts->n_pools; i++)
		if (opts->pools[i].backend && strcmp(opts->pools[i].backend, backend) == 0)
			return &opts->pools[i];
	return NULL;
}

static int render_servers(struct out *o, const struct cfg_service *s, const struct hap_pool *pool,
			  struct vxerr *err)
{
	struct hap_check chk;
	hap_check_from_health(&s->health, &chk);
	char args[HAP_CMD_MAX];
	for (size_t i = 0; pool && i < pool->n; i++) {
		if (hap_server_args(args, sizeof(args), &pool->servers[i], &chk, true, err) != 0)
			return vxerr_prefix(err, "service %s: ", s->name);
		emit(o, "    server %s %s\n", pool->servers[i].name, args);
	}
	return 0;
}

static int render_backend(struct out *o, const struct cfg_service *s, const struct hap_render_opts *opts,
			  struct vxerr *err)
{
	if ((unsigned)s->balance > BAL_RANDOM || (unsigned)s->http_reuse > REUSE_ALWAYS)
		return vxerr_set(err, "service %s: unknown balance or http-reuse value", s->name);
	if (s->retries < 0 || s->retries > 100)
		return vxerr_set(err, "service %s: retries %d is outside 0..100", s->name, s->retries);
	emit(o, "\nbackend %s\n", s->name);
	emit(o, "    mode %s\n", s->mode == SVC_MODE_HTTP ? "http" : "tcp");
	emit(o, "    balance %s\n", balance_names[s->balance]);
	emit_timeout(o, "connect", s->timeouts.connect_us);
	emit_timeout(o, "server", s->timeouts.server_us);
	emit_timeout(o, "queue", s->timeouts.queue_us);
	render_retries(o, s);
	if (s->mode == SVC_MODE_HTTP)
		emit(o, "    http-reuse %s\n", reuse_names[s->http_reuse]);
	if (render_checks(o, s, err) != 0)
		return -1;
	return render_servers(o, s, find_pool(opts, s->name), err);
}

static int render_stats(struct out *o, const char *bind, struct vxerr *err)
{
	char host[NET_IP_MAX], canon[NET_IP_MAX], hostport[NET_HOSTPORT_MAX];
	uint16_t port;
	if (net_hostport_parse(bind, host, sizeof(host), &port, err) != 0 ||
	    hap_addr_canon(host, canon, sizeof(canon), err) != 0)
		return vxerr_prefix(err, "haproxy.stats_bind: ");
	net_hostport_format(canon, port, hostport, sizeof(hostport));
	/* '.' cannot occur in a service name, so this frontend never collides with one. */
	emit(o, "\nfrontend veltrix.stats\n    mode http\n    bind %s\n", hostport);
	emit(o, "    timeout client 30s\n    stats enable\n    stats uri /\n    stats refresh 5s\n");
	emit(o, "    http-request use-service prometheus-exporter if { path /metrics }\n");
	return 0;
}

static int render_service(struct out *o, const struct cfg_service *s, const struct hap_render_opts *opts,
			  struct vxerr *err)
{
	if (!hap_name_valid(s->name))
		return vxerr_set(err, "service name '%.80s' cannot be an haproxy proxy name", s->name ? s->name : "");
	if (render_frontend(o, s, err) != 0)
		return -1;
	return render_backend(o, s, opts, err);
}

int hap_render(const struct vx_config *cfg, const struct hap_render_opts *opts, struct buf *out,
	       struct vxerr *err)
{
	struct out o = { out, false };
	size_t start = out->len;
	if (render_global(&o, cfg, opts, err) != 0)
		goto fail;
	for (size_t i = 0; i < cfg->n_services; i++)
		if (render_service(&o, &cfg->services[i], opts, err) != 0)
			goto fail;
	if (cfg->haproxy.stats_bind && render_stats(&o, cfg->haproxy.stats_bind, err) != 0)
		goto fail;
	if (o.full) {
		vxerr_set(err, "rendered haproxy config larger than %zu bytes", out->max);
		goto fail;
	}
	return 0;
fail:
	out->len = start; /* nothing half-rendered stays behind */
	if (out->data)
		out->data[start] = '\0';
	return -1;
}
