/* The lint: rules that check a valid configuration against this machine and against itself,
 * for the failures that only show under load. One table row per rule (id, severity, summary,
 * the arithmetic for the docs, a function). Pure: machine facts come in as a struct. */
#include <stdio.h>
#include <string.h>

#include "common/timeutil.h"
#include "config/internal.h"

#define FD_RESERVE 10 /* logs, pollers, the master's socketpair, a reload's spare */

static void svc_path(char *out, size_t cap, size_t i, const char *key)
{
	snprintf(out, cap, "services[%zu].%s", i, key);
}

/* A frontend without its own maxconn gets the global one (HAProxy >= 2.2). */
static int64_t fe_maxconn(const struct vx_config *cfg, const struct cfg_service *s)
{
	return s->maxconn ? s->maxconn : cfg->haproxy.maxconn;
}

/* ---- fd-limit ---- */

struct fd_budget {
	int64_t listeners, checks, needed;
};

static struct fd_budget fd_budget(const struct vx_config *cfg)
{
	struct fd_budget b = { .listeners = (int64_t)cfg->n_services };
	b.listeners += (cfg->haproxy.stats_bind != NULL) + (cfg->haproxy.runtime_socket != NULL) +
		       (cfg->haproxy.master_socket != NULL);
	for (size_t i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].health.type != CHECK_NONE)
			b.checks += cfg->services[i].expect.servers;
	b.needed = 2 * cfg->haproxy.maxconn + b.listeners + b.checks + FD_RESERVE;
	return b;
}

static void rule_fd_limit(const struct cfg_lint_rule *r, const struct vx_config *cfg, const struct cfg_sysfacts *f,
			  struct cfg_diags *d)
{
	struct fd_budget b = fd_budget(cfg);
	int64_t maxconn = cfg->haproxy.maxconn;
	if (f->nofile_hard < 0 || b.needed <= f->nofile_soft)
		return;
	char hint[320];
	if (b.needed > f->nofile_hard) {
		int64_t fit = (f->nofile_hard - b.listeners - b.checks - FD_RESERVE) / 2;
		snprintf(hint, sizeof(hint),
			 "lower haproxy.maxconn to at most %lld, or raise the hard limit (LimitNOFILE=%lld in the "
			 "systemd unit, or nofile in /etc/security/limits.conf)",
			 (long long)(fit > 0 ? fit : 1), (long long)b.needed);
		cfg_report(cfg, d, r->severity, r->id, "haproxy.maxconn", hint,
			   "HAProxy needs about %lld file descriptors (2 x maxconn %lld + %lld listeners + %lld checks + "
			   "%d reserve) but the hard limit RLIMIT_NOFILE is %lld: under full load accept() and connect() "
			   "fail with EMFILE",
			   (long long)b.needed, (long long)maxconn, (long long)b.listeners, (long long)b.checks,
			   FD_RESERVE, (long long)f->nofile_hard);
		return;
	}
	snprintf(hint, sizeof(hint), "run `ulimit -n %lld` before starting, or set LimitNOFILE=%lld in the systemd unit",
		 (long long)b.needed, (long long)b.needed);
	cfg_report(cfg, d, CFG_SEV_WARNING, r->id, "haproxy.maxconn", hint,
		   "HAProxy needs about %lld file descriptors (2 x maxconn %lld + %lld listeners + %lld checks + %d "
		   "reserve), above the soft limit %lld; HAProxy raises its own soft limit up to the hard limit %lld, "
		   "but an HAProxy started under this limit by other means may not",
		   (long long)b.needed, (long long)maxconn, (long long)b.listeners, (long long)b.checks, FD_RESERVE,
		   (long long)f->nofile_soft, (long long)f->nofile_hard);
}

/* ---- ephemeral-ports ---- */

static bool reuses_connections(const struct cfg_service *s)
{
	return s->mode == SVC_MODE_HTTP && s->http_reuse != REUSE_NEVER;
}

static void port_finding(const struct cfg_lint_rule *r, const struct vx_config *cfg, const struct cfg_sysfacts *f,
			 size_t i, struct cfg_diags *d)
{
	const struct cfg_service *s = &cfg->services[i];
	int64_t ports = f->port_hi - f->port_lo + 1;
	int64_t per_dest = ports / CFG_TIME_WAIT_S;
	int64_t needed = (s->expect.peak_rps * CFG_TIME_WAIT_S + ports - 1) / ports;
	if (needed <= 1 || (s->expect.servers && s->expect.servers >= needed))
		return;
	char p[96], hint[512], planned[64] = "", rate[32];
	svc_path(p, sizeof(p), i, "expect.peak_rps");
	if (per_dest >= 1)
		snprintf(rate, sizeof(rate), "%lld", (long long)per_dest);
	else
		snprintf(rate, sizeof(rate), "%.2f", (double)ports / CFG_TIME_WAIT_S);
	if (s->expect.servers)
		snprintf(planned, sizeof(planned), " (expect.servers plans %lld)", (long long)s->expect.servers);
	const char *fix = s->mode == SVC_MODE_TCP
				  ? "mode tcp cannot reuse server connections: widen net.ipv4.ip_local_port_range or run more servers"
				  : "or set http_reuse: safe (the default) so HAProxy reuses idle server connections, or widen "
				    "net.ipv4.ip_local_port_range";
	snprintf(hint, sizeof(hint), "this load needs at least %lld backend servers (%lld / %s per server)%s; %s",
		 (long long)needed, (long long)s->expect.peak_rps, rate, planned, fix);
	cfg_report(cfg, d, r->severity, r->id, p, hint,
		   "%lld new server connections/s without connection reuse (%s): each backend server (one destination "
		   "ip:port) gets %lld ephemeral ports (net.ipv4.ip_local_port_range %lld-%lld), each held %d s in "
		   "TIME_WAIT (fixed in Linux; tcp_fin_timeout does not change it), so %lld / %d = %s new "
		   "connections/s per server, after which connect() fails with EADDRNOTAVAIL (HAProxy: \"Failed to "
		   "reserve virtual port\")%s",
		   (long long)s->expect.peak_rps, s->mode == SVC_MODE_TCP ? "mode tcp" : "http_reuse: never",
		   (long long)ports, (long long)f->port_lo, (long long)f->port_hi, CFG_TIME_WAIT_S, (long long)ports,
		   CFG_TIME_WAIT_S, rate,
		   f->tw_reuse == 1 ? "; tcp_tw_reuse=1 may reuse ports after 1 s when both ends use TCP timestamps, "
				      "but do not plan on it" : "");
}

static void rule_ephemeral_ports(const struct cfg_lint_rule *r, const struct vx_config *cfg,
				 const struct cfg_sysfacts *f, struct cfg_diags *d)
{
	if (f->port_lo < 0 || f->port_hi < f->port_lo)
		return;
	for (size_t i = 0; i < cfg->n_services; i++)
		if (cfg->services[i].expect.peak_rps > 0 && !reuses_connections(&cfg->services[i]))
			port_finding(r, cfg, f, i, d);
}

/* ---- listen-backlog ---- */

static void rule_listen_backlog(const struct cfg_lint_rule *r, const struct vx_config *cfg,
				const struct cfg_sysfacts *f, struct cfg_diags *d)
{
	if (f->somaxconn < 0)
		return;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		int64_t backlog = s->backlog ? s->backlog : fe_maxconn(cfg, s);
		if (backlog <= f->somaxconn)
			continue;
		char p[96], hint[256];
		svc_path(p, sizeof(p), i, "backlog");
		snprintf(hint, sizeof(hint), "raise it (sysctl -w net.core.somaxconn=%lld), or set backlog: %lld",
			 (long long)backlog, (long long)f->somaxconn);
		cfg_report(cfg, d, r->severity, r->id, p, hint,
			   "listen backlog %lld%s is above net.core.somaxconn %lld: the kernel silently caps it, and "
			   "bursts of new connections beyond %lld are dropped (clients retry their SYN after 1 s, then 3 s)",
			   (long long)backlog, s->backlog ? "" : " (HAProxy's default: the frontend maxconn)",
			   (long long)f->somaxconn, (long long)f->somaxconn);
	}
}

/* ---- concurrency-maxconn ---- */

static void rule_concurrency_maxconn(const struct cfg_lint_rule *r, const struct vx_config *cfg,
				     const struct cfg_sysfacts *f, struct cfg_diags *d)
{
	(void)f;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		int64_t limit = cfg->haproxy.maxconn;
		bool global = true;
		if (s->maxconn && s->maxconn < limit) {
			limit = s->maxconn;
			global = false;
		}
		if (!s->expect.peak_concurrency || s->expect.peak_concurrency <= limit)
			continue;
		char p[96], hint[256];
		svc_path(p, sizeof(p), i, "expect.peak_concurrency");
		snprintf(hint, sizeof(hint), "raise %s to at least %lld (each connection costs HAProxy two descriptors)",
			 global ? "haproxy.maxconn" : "the service's maxconn", (long long)s->expect.peak_concurrency);
		cfg_report(cfg, d, r->severity, r->id, p, hint,
			   "%lld requests in flight need at least as many client connections, but %s is %lld: the "
			   "connections beyond it wait in the listen backlog, then are refused",
			   (long long)s->expect.peak_concurrency, global ? "haproxy.maxconn" : "the service's maxconn",
			   (long long)limit);
	}
}

/* ---- concurrency-capacity ---- */

static void rule_concurrency_capacity(const struct cfg_lint_rule *r, const struct vx_config *cfg,
				      const struct cfg_sysfacts *f, struct cfg_diags *d)
{
	(void)f;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		int64_t capacity = s->expect.servers * s->default_capacity;
		if (!s->expect.servers || !s->expect.peak_concurrency || s->expect.peak_concurrency <= capacity)
			continue;
		int64_t need = (s->expect.peak_concurrency + s->default_capacity - 1) / s->default_capacity;
		char p[96], hint[256], q[32];
		svc_path(p, sizeof(p), i, "expect.peak_concurrency");
		dur_format(s->timeouts.queue_us, q, sizeof(q));
		snprintf(hint, sizeof(hint),
			 "plan at least %lld servers (%lld / %lld), or raise default_capacity if instances take more",
			 (long long)need, (long long)s->expect.peak_concurrency, (long long)s->default_capacity);
		cfg_report(cfg, d, r->severity, r->id, p, hint,
			   "%lld requests in flight exceed the capacity of the planned servers, %lld x default_capacity "
			   "%lld = %lld: the rest waits in HAProxy's queue for up to timeouts.queue (%s), then gets a 503",
			   (long long)s->expect.peak_concurrency, (long long)s->expect.servers,
			   (long long)s->default_capacity, (long long)capacity, q);
	}
}

/* ---- maxconn-sum ---- */

static void rule_maxconn_sum(const struct cfg_lint_rule *r, const struct vx_config *cfg,
			     const struct cfg_sysfacts *f, struct cfg_diags *d)
{
	(void)f;
	int64_t sum = 0;
	size_t n = 0;
	for (size_t i = 0; i < cfg->n_services; i++) {
		sum += cfg->services[i].maxconn;
		n += cfg->services[i].maxconn > 0;
	}
	if (n < 2 || sum <= cfg->haproxy.maxconn)
		return;
	char hint[160];
	snprintf(hint, sizeof(hint), "raise haproxy.maxconn to %lld, or lower the services' maxconn", (long long)sum);
	cfg_report(cfg, d, r->severity, r->id, "haproxy.maxconn", hint,
		   "the services' maxconn add up to %lld, above haproxy.maxconn %lld: the global limit is reached "
		   "first, and then every service stalls at once",
		   (long long)sum, (long long)cfg->haproxy.maxconn);
}

/* ---- drain-timeout ---- */

static void rule_drain_timeout(const struct cfg_lint_rule *r, const struct vx_config *cfg,
			       const struct cfg_sysfacts *f, struct cfg_diags *d)
{
	(void)f;
	for (size_t i = 0; i < cfg->n_services; i++) {
		const struct cfg_service *s = &cfg->services[i];
		if (s->drain_timeout_us >= s->timeouts.server_us)
			continue;
		char p[96], hint[128], a[32], b[32];
		svc_path(p, sizeof(p), i, "drain_timeout");
		dur_format(s->drain_timeout_us, a, sizeof(a));
		dur_format(s->timeouts.server_us, b, sizeof(b));
		snprintf(hint, sizeof(hint), "set drain_timeout to at least %s", b);
		cfg_report(cfg, d, r->severity, r->id, p, hint,
			   "drain_timeout %s is shorter than timeouts.server %s: a draining server can be removed while "
			   "a request that HAProxy still allows is running on it",
			   a, b);
	}
}

/* ---- lease-timeout ---- */

static void rule_lease_timeout(const struct cfg_lint_rule *r, const struct vx_config *cfg,
			       const struct cfg_sysfacts *f, struct cfg_diags *d)
{
	(void)f;
	int64_t renew = cfg->agent.ttl_us / 3;
	if (cfg->etcd.request_timeout_us <= renew)
		return;
	char a[32], b[32], c[32], hint[160];
	dur_format(cfg->etcd.request_timeout_us, a, sizeof(a));
	dur_format(cfg->agent.ttl_us, b, sizeof(b));
	dur_format(renew / USEC_PER_MS * USEC_PER_MS, c, sizeof(c));
	snprintf(hint, sizeof(hint), "keep etcd.request_timeout at most %s (agent.ttl / 3), or raise agent.ttl", c);
	cfg_report(cfg, d, r->severity, r->id, "etcd.request_timeout", hint,
		   "etcd.request_timeout %s is more than a third of agent.ttl %s: an agent renews its lease about every "
		   "ttl/3, so one hung renewal and its retry outlast the lease, and a healthy instance drops out of "
		   "the registry",
		   a, b);
}

const struct cfg_lint_rule cfg_lint_rules[] = {
	{ "fd-limit", CFG_SEV_ERROR, "file-descriptor limit versus haproxy.maxconn",
	  "needed = 2 x haproxy.maxconn (a client and a server socket per proxied connection) + listeners "
	  "(services, stats page, runtime and master sockets) + health checks (expect.servers per checked "
	  "service) + 10 reserve. Error when needed > the hard RLIMIT_NOFILE (HAProxy cannot raise its limit "
	  "that far: accept() and connect() fail with EMFILE under load); warning when it is only above the "
	  "soft limit (HAProxy raises its soft limit up to the hard one). Fix: lower haproxy.maxconn to "
	  "(hard - listeners - checks - 10) / 2, or raise LimitNOFILE.",
	  rule_fd_limit },
	{ "ephemeral-ports", CFG_SEV_ERROR, "ephemeral ports and TIME_WAIT versus expect.peak_rps without connection reuse",
	  "Applies to services with expect.peak_rps whose server connections are not reused (`mode: tcp`, or "
	  "`http_reuse: never`): every request (tcp: every connection) opens a server connection from an "
	  "ephemeral port toward ONE destination ip:port, and the closing side keeps that port in TIME_WAIT "
	  "for 60 s (TCP_TIMEWAIT_LEN, fixed in Linux; net.ipv4.tcp_fin_timeout is the FIN-WAIT-2 timeout and "
	  "does not shorten it; tcp_tw_reuse=2, the default, helps only loopback destinations). One server "
	  "therefore sustains ports / 60 new connections per second, where ports = hi - lo + 1 of "
	  "net.ipv4.ip_local_port_range: 28232 / 60 = 470/s with 32768-60999. Beyond that connect() fails "
	  "with EADDRNOTAVAIL (HAProxy logs \"Failed to reserve virtual port\"). Servers needed = "
	  "ceil(peak_rps x 60 / ports): 20000 rps needs 43. Error when that is more than one server and "
	  "expect.servers is not declared or is smaller. Fix: http_reuse safe (the default), aggressive or "
	  "always; more servers; a wider port range.",
	  rule_ephemeral_ports },
	{ "listen-backlog", CFG_SEV_WARNING, "net.core.somaxconn versus the listen backlog",
	  "backlog = services[].backlog, or HAProxy's default, the frontend maxconn (services[].maxconn, else "
	  "haproxy.maxconn). The kernel silently caps listen() backlogs at net.core.somaxconn; a burst of new "
	  "connections beyond it is dropped and clients retry their SYN after 1 s, then 3 s. Warning when "
	  "backlog > somaxconn. Fix: raise net.core.somaxconn, or set backlog to fit.",
	  rule_listen_backlog },
	{ "concurrency-maxconn", CFG_SEV_ERROR, "expect.peak_concurrency versus maxconn",
	  "Each request in flight holds at least one client connection, so expect.peak_concurrency must fit "
	  "in min(services[].maxconn, haproxy.maxconn). Beyond it, connections wait in the listen backlog, "
	  "then are refused. Error when peak_concurrency > that limit. Fix: raise the maxconn that binds.",
	  rule_concurrency_maxconn },
	{ "concurrency-capacity", CFG_SEV_ERROR, "expect.peak_concurrency versus the planned capacity",
	  "capacity = expect.servers x default_capacity. Requests above it wait in HAProxy's queue for up to "
	  "timeouts.queue and then get a 503. Error when peak_concurrency > capacity (checked only when "
	  "expect.servers is declared). Fix: servers = ceil(peak_concurrency / default_capacity).",
	  rule_concurrency_capacity },
	{ "maxconn-sum", CFG_SEV_WARNING, "services' maxconn versus haproxy.maxconn",
	  "When two or more services set maxconn and their sum exceeds haproxy.maxconn, the global limit is "
	  "reached first and every service stalls together. Fix: haproxy.maxconn >= the sum.",
	  rule_maxconn_sum },
	{ "drain-timeout", CFG_SEV_WARNING, "drain_timeout versus timeouts.server",
	  "A draining server is removed when its sessions reach 0 or after drain_timeout. HAProxy lets a "
	  "request run up to timeouts.server of inactivity, so a shorter drain_timeout can cut requests that "
	  "were allowed. Warning when drain_timeout < timeouts.server.",
	  rule_drain_timeout },
	{ "lease-timeout", CFG_SEV_WARNING, "etcd.request_timeout versus agent.ttl",
	  "An agent renews its lease about every ttl / 3. When one renewal can hang for request_timeout > "
	  "ttl / 3, a hung renewal and its retry outlast the lease and a healthy instance drops out of the "
	  "registry. Warning when request_timeout > ttl / 3.",
	  rule_lease_timeout },
};

const size_t cfg_lint_rules_len = sizeof(cfg_lint_rules) / sizeof(cfg_lint_rules[0]);

void cfg_lint(const struct vx_config *cfg, const struct cfg_sysfacts *f, struct cfg_diags *d)
{
	for (size_t i = 0; i < cfg_lint_rules_len; i++)
		cfg_lint_rules[i].run(&cfg_lint_rules[i], cfg, f, d);
}
