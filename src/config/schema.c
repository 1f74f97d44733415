/* The schema: one row per configuration key (path, type, default, bounds, doc), and the value
 * parsers that read a row's text into the typed structs. Defaults go through the same parsers
 * as the file, so a default can never disagree with its own bounds (a unit test loads them). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/parse.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "common/utf8.h"
#include "config/internal.h"

_Static_assert(sizeof(enum svc_mode) == sizeof(int) && sizeof(enum hap_mode) == sizeof(int) &&
		       sizeof(enum svc_balance) == sizeof(int) && sizeof(enum http_reuse) == sizeof(int) &&
		       sizeof(enum check_type) == sizeof(int),
	       "enum fields are stored as int");

#define STR_MAX 4096 /* longest string value: paths, URLs */
#define D_MS(x) ((int64_t)(x) * USEC_PER_MS)
#define D_S(x) ((int64_t)(x) * USEC_PER_SEC)
#define D_M(x) (D_S(x) * 60)
#define D_H(x) (D_M(x) * 60)

static const char *const hap_modes[] = { "managed", "attach", NULL };
static const char *const svc_modes[] = { "http", "tcp", NULL };
static const char *const balances[] = { "roundrobin", "leastconn", "first", "random", NULL };
static const char *const reuses[] = { "never", "safe", "aggressive", "always", NULL };
static const char *const check_types[] = { "tcp", "http", "none", NULL };

#define ROOT(f) .scope = CFG_SCOPE_ROOT, .off = offsetof(struct vx_config, f), \
		.size = sizeof(((struct vx_config *)0)->f)
#define SVC(f) .scope = CFG_SCOPE_SERVICE, .off = offsetof(struct cfg_service, f), \
		.size = sizeof(((struct cfg_service *)0)->f)
#define SECTION(p, d) { .path = p, .type = CFG_T_SECTION, .doc = d }

const struct cfg_key cfg_schema[] = {
	SECTION("etcd", "the registry: where instances announce themselves"),
	{ .path = "etcd.endpoints", .type = CFG_T_URLS, ROOT(etcd.endpoints),
	  .off2 = offsetof(struct vx_config, etcd.n_endpoints), .def_doc = "[] (local etcd)",
	  .doc = "etcd client URLs (`http://host:port` or `https://...`); empty or absent: `veltrix up` starts a local etcd" },
	{ .path = "etcd.prefix", .type = CFG_T_STR, .def = "/veltrix", ROOT(etcd.prefix),
	  .doc = "key prefix of the registry; instances live under `<prefix>/services/<service>/<instance>`" },
	{ .path = "etcd.dial_timeout", .type = CFG_T_DUR, .def = "2s", .min = D_MS(10), .max = D_M(1),
	  ROOT(etcd.dial_timeout_us), .doc = "how long to wait for a connection to one endpoint before trying the next" },
	{ .path = "etcd.request_timeout", .type = CFG_T_DUR, .def = "2s", .min = D_MS(10), .max = D_M(5),
	  ROOT(etcd.request_timeout_us), .doc = "deadline of one range, put, txn or lease request (not of a watch)" },
	{ .path = "etcd.watch_stall_timeout", .type = CFG_T_DUR, .def = "1m", .min = D_S(1), .max = D_H(1),
	  ROOT(etcd.watch_stall_us),
	  .doc = "a watch silent this long (no event, no progress notification) counts as stalled: full re-list, new watch" },
	{ .path = "etcd.data_dir", .type = CFG_T_STR, .def = ".veltrix/etcd", ROOT(etcd.data_dir),
	  .doc = "data directory of the local etcd that `veltrix up` starts when no endpoints are set" },
	SECTION("etcd.tls", "client TLS for `https://` endpoints"),
	{ .path = "etcd.tls.ca", .type = CFG_T_STR, ROOT(etcd.tls.ca),
	  .doc = "PEM file of the CA that signed the etcd server certificates; absent: the system CAs" },
	{ .path = "etcd.tls.cert", .type = CFG_T_STR, ROOT(etcd.tls.cert),
	  .doc = "PEM client certificate for mutual TLS; needs `etcd.tls.key`" },
	{ .path = "etcd.tls.key", .type = CFG_T_STR, ROOT(etcd.tls.key), .doc = "PEM private key of `etcd.tls.cert`" },
	SECTION("etcd.auth", "etcd user authentication"),
	{ .path = "etcd.auth.user", .type = CFG_T_STR, ROOT(etcd.auth.user),
	  .doc = "etcd user name; needs `etcd.auth.password_file`" },
	{ .path = "etcd.auth.password_file", .type = CFG_T_STR, ROOT(etcd.auth.password_file),
	  .doc = "file whose first line is the password, so that no secret is written in this file" },

	SECTION("haproxy", "the data plane"),
	{ .path = "haproxy.mode", .type = CFG_T_ENUM, .def = "managed", .choices = hap_modes, ROOT(haproxy.mode),
	  .why = "managed: veltrix renders the configuration and runs HAProxy; attach: you run HAProxy and give its runtime socket",
	  .doc = "`managed`: veltrix runs HAProxy; `attach`: veltrix drives an HAProxy you run, through `runtime_socket`"
		 "; restart only (SIGHUP keeps the running value)" },
	{ .path = "haproxy.binary", .type = CFG_T_STR, .def = "haproxy", ROOT(haproxy.binary),
	  .doc = "HAProxy executable (managed mode), searched in PATH" },
	{ .path = "haproxy.state_dir", .type = CFG_T_STR, .def = ".veltrix/haproxy", ROOT(haproxy.state_dir),
	  .doc = "managed mode: where the rendered configuration, sockets, server state file and logs go"
		 "; restart only (SIGHUP keeps the running value)" },
	{ .path = "haproxy.runtime_socket", .type = CFG_T_STR, ROOT(haproxy.runtime_socket),
	  .def_doc = "`<state_dir>/runtime.sock` (managed)",
	  .doc = "unix socket of HAProxy's Runtime API at admin level; required in attach mode"
		 "; restart only (SIGHUP keeps the running value)" },
	{ .path = "haproxy.master_socket", .type = CFG_T_STR, ROOT(haproxy.master_socket),
	  .def_doc = "`<state_dir>/master.sock` (managed)",
	  .doc = "unix socket of HAProxy's master CLI (reloads, `show proc`); optional in attach mode"
		 "; restart only (SIGHUP keeps the running value)" },
	{ .path = "haproxy.maxconn", .type = CFG_T_INT, .def = "4096", .min = 1, .max = 2000000, ROOT(haproxy.maxconn),
	  .doc = "global maxconn: connections HAProxy holds at once; each proxied one costs two file descriptors" },
	{ .path = "haproxy.nbthread", .type = CFG_T_INT, .def = "0", .min = 0, .max = 256, ROOT(haproxy.nbthread),
	  .doc = "HAProxy worker threads; 0: one per CPU (HAProxy's default)" },
	{ .path = "haproxy.bufsize", .type = CFG_T_SIZE, .def = "16KiB", .min = 4096, .max = 1048576,
	  ROOT(haproxy.bufsize), .doc = "`tune.bufsize`: larger header blocks than about this get a 400 or 502" },
	{ .path = "haproxy.stats", .type = CFG_T_HOSTPORT, ROOT(haproxy.stats_bind), .def_doc = "off",
	  .doc = "`host:port` of HAProxy's stats page; absent: no stats page" },

	SECTION("controller", "keeps HAProxy's pools equal to the registry"),
	{ .path = "controller.max_batch_delay", .type = CFG_T_DUR, .def = "500us", .min = 0, .max = D_S(1),
	  ROOT(controller.max_batch_delay_us),
	  .doc = "how long a registry change may wait for others to join its batch of HAProxy commands" },
	{ .path = "controller.resync_interval", .type = CFG_T_DUR, .def = "30s", .min = D_S(1), .max = D_H(24),
	  ROOT(controller.resync_interval_us),
	  .doc = "full comparison of HAProxy's state with the desired state, even without events" },
	{ .path = "controller.panic_threshold", .type = CFG_T_PCT, .def = "50%", .min = 1, .max = 100,
	  ROOT(controller.panic_threshold),
	  .doc = "largest share of a pool removed at once unless HAProxy's checks agree the servers are down" },
	{ .path = "controller.metrics", .type = CFG_T_HOSTPORT, ROOT(controller.metrics), .def_doc = "off",
	  .doc = "`host:port` serving `/metrics` (Prometheus text) and `/healthz`; absent: off" },
	{ .path = "controller.weight_feedback", .type = CFG_T_BOOL, .def = "true", ROOT(controller.weight_feedback),
	  .doc = "lower the weight of servers whose queue or response time grows, from HAProxy's stats" },
	{ .path = "controller.feedback_interval", .type = CFG_T_DUR, .def = "2s", .min = D_MS(100), .max = D_M(1),
	  ROOT(controller.feedback_interval_us), .doc = "how often HAProxy's stats are read for weight feedback" },

	SECTION("agent", "runs beside each instance: checks, registration, drain"),
	{ .path = "agent.ttl", .type = CFG_T_DUR, .def = "10s", .min = D_S(2), .max = D_H(1), ROOT(agent.ttl_us),
	  .doc = "lease TTL of a registration (whole seconds): an agent silent this long is removed" },
	{ .path = "agent.shared_lease", .type = CFG_T_STR, ROOT(agent.shared_lease), .def_doc = "off",
	  .doc = "a directory shared by the agents of one host: they bind their keys to one lease, kept "
		 "alive by one of them (docs/registry.md); absent: a lease per agent" },
	{ .path = "agent.load_report_interval", .type = CFG_T_DUR, .def = "10s", .min = D_S(5), .max = D_H(1),
	  ROOT(agent.load_report_interval_us),
	  .doc = "at most one load report per interval: etcd is a registry, not a metrics bus" },

	{ .path = "services", .type = CFG_T_SERVICES,
	  .doc = "the services to load balance: one HAProxy frontend and backend each" },
	{ .path = "services[].name", .type = CFG_T_STR, SVC(name), .flags = CFG_F_REQUIRED,
	  .doc = "`[a-z0-9][a-z0-9_-]{0,62}`: the registry key part and the HAProxy backend name" },
	{ .path = "services[].bind", .type = CFG_T_LISTEN, SVC(bind_host), .off2 = offsetof(struct cfg_service, bind_port),
	  .flags = CFG_F_REQUIRED, .doc = "where clients connect: `ip:port`, `[ipv6]:port`, or `*:port` for every address" },
	{ .path = "services[].mode", .type = CFG_T_ENUM, .def = "http", .choices = svc_modes, SVC(mode),
	  .why = "http: HAProxy parses requests; tcp: it forwards bytes", .doc = "`http` or `tcp`" },
	{ .path = "services[].balance", .type = CFG_T_ENUM, .def = "leastconn", .choices = balances, SVC(balance),
	  .why = "HAProxy adds servers at runtime only to backends with a dynamic algorithm; the others "
		 "(static-rr, source, uri, hdr, ...) would need a reload for every instance that comes or goes",
	  .doc = "`roundrobin`, `leastconn`, `first` or `random`: the algorithms HAProxy can add servers to at runtime" },
	SECTION("services[].health", "HAProxy's own check of each instance"),
	{ .path = "services[].health.type", .type = CFG_T_ENUM, .def = "tcp", .choices = check_types,
	  SVC(health.type), .why = "tcp: connect; http: GET path; none: no check",
	  .doc = "`tcp` (connect), `http` (`GET <path>`, 2xx/3xx pass) or `none`" },
	{ .path = "services[].health.path", .type = CFG_T_STR, .def = "/", SVC(health.path),
	  .doc = "path of `http` checks" },
	{ .path = "services[].health.interval", .type = CFG_T_DUR, .def = "2s", .min = D_MS(100), .max = D_H(1),
	  SVC(health.interval_us), .doc = "time between two checks of one server" },
	{ .path = "services[].health.timeout", .type = CFG_T_DUR, .def = "1s", .min = D_MS(10), .max = D_M(1),
	  SVC(health.timeout_us), .doc = "a check not answered within this fails; shorter than `interval`" },
	{ .path = "services[].health.rise", .type = CFG_T_INT, .def = "2", .min = 1, .max = 100, SVC(health.rise),
	  .doc = "passing checks in a row that bring a server up" },
	{ .path = "services[].health.fall", .type = CFG_T_INT, .def = "3", .min = 1, .max = 100, SVC(health.fall),
	  .doc = "failing checks in a row that take a server down" },
	SECTION("services[].timeouts", "HAProxy timeouts of the service"),
	{ .path = "services[].timeouts.connect", .type = CFG_T_DUR, .def = "5s", .min = D_MS(1), .max = D_H(1),
	  SVC(timeouts.connect_us), .doc = "`timeout connect`: to establish a connection to a server" },
	{ .path = "services[].timeouts.client", .type = CFG_T_DUR, .def = "30s", .min = D_MS(1), .max = D_H(24),
	  SVC(timeouts.client_us), .doc = "`timeout client`: inactivity allowed on the client side" },
	{ .path = "services[].timeouts.server", .type = CFG_T_DUR, .def = "30s", .min = D_MS(1), .max = D_H(24),
	  SVC(timeouts.server_us), .doc = "`timeout server`: inactivity allowed on the server side (the slowest answer)" },
	{ .path = "services[].timeouts.queue", .type = CFG_T_DUR, .def = "5s", .min = D_MS(1), .max = D_H(1),
	  SVC(timeouts.queue_us), .doc = "`timeout queue`: wait for a free server slot before answering 503" },
	{ .path = "services[].retries", .type = CFG_T_INT, .def = "3", .min = 0, .max = 100, SVC(retries),
	  .doc = "connection attempts retried after a failure (HAProxy `retries`)" },
	{ .path = "services[].redispatch", .type = CFG_T_BOOL, .def = "true", SVC(redispatch),
	  .doc = "make the last retry on another server (`option redispatch`): hides a crashed server" },
	{ .path = "services[].drain_timeout", .type = CFG_T_DUR, .def = "30s", .min = 0, .max = D_H(24),
	  SVC(drain_timeout_us), .doc = "a draining server is removed when its sessions reach 0 or after this long" },
	{ .path = "services[].default_capacity", .type = CFG_T_INT, .def = "100", .min = 1, .max = 100000,
	  SVC(default_capacity), .doc = "concurrent requests an instance can serve when it does not report `capacity`" },
	{ .path = "services[].http_reuse", .type = CFG_T_ENUM, .def = "safe", .choices = reuses, SVC(http_reuse),
	  .why = "as HAProxy's http-reuse", .doc = "HAProxy `http-reuse`: `never`, `safe`, `aggressive` or `always`" },
	{ .path = "services[].allow", .type = CFG_T_CIDRS, SVC(allow), .off2 = offsetof(struct cfg_service, n_allow),
	  .def_doc = "[] (any)", .doc = "CIDRs that registered addresses must fall in; other registrations are rejected. `::ffff:a.b.c.d` is matched as `a.b.c.d` (and `::ffff:10.0.0.0/104` as `10.0.0.0/8`)" },
	{ .path = "services[].maxconn", .type = CFG_T_INT, .def = "0", .min = 0, .max = 2000000, SVC(maxconn),
	  .def_doc = "0 (the global maxconn)", .doc = "frontend maxconn; 0: HAProxy's default, the global maxconn" },
	{ .path = "services[].backlog", .type = CFG_T_INT, .def = "0", .min = 0, .max = 2000000, SVC(backlog),
	  .def_doc = "0 (the frontend maxconn)", .doc = "listen backlog; 0: HAProxy's default, the frontend maxconn" },
	SECTION("services[].expect", "the load you expect (optional); enables the capacity lint"),
	{ .path = "services[].expect.peak_rps", .type = CFG_T_INT, .def = "0", .min = 0, .max = 100000000,
	  SVC(expect.peak_rps), .doc = "peak requests per second (tcp: new connections per second); 0: not declared" },
	{ .path = "services[].expect.peak_concurrency", .type = CFG_T_INT, .def = "0", .min = 0, .max = 100000000,
	  SVC(expect.peak_concurrency), .doc = "peak requests in flight at once; 0: not declared" },
	{ .path = "services[].expect.servers", .type = CFG_T_INT, .def = "0", .min = 0, .max = 100000,
	  SVC(expect.servers), .doc = "backend servers you plan to run at peak; 0: not declared" },
};

const size_t cfg_schema_len = sizeof(cfg_schema) / sizeof(cfg_schema[0]);

const char *cfg_type_name(enum cfg_type t)
{
	static const char *const names[] = {
		[CFG_T_SECTION] = "section", [CFG_T_SERVICES] = "list of services", [CFG_T_STR] = "string",
		[CFG_T_INT] = "integer", [CFG_T_DUR] = "duration", [CFG_T_SIZE] = "size", [CFG_T_PCT] = "percent",
		[CFG_T_BOOL] = "bool", [CFG_T_ENUM] = "enum", [CFG_T_HOSTPORT] = "host:port",
		[CFG_T_LISTEN] = "ip:port", [CFG_T_URLS] = "list of URLs", [CFG_T_CIDRS] = "list of CIDRs",
	};
	return names[t];
}

const char *cfg_type_phrase(enum cfg_type t)
{
	static const char *const phrases[] = {
		[CFG_T_SECTION] = "a mapping of keys", [CFG_T_SERVICES] = "a list of services",
		[CFG_T_STR] = "a string", [CFG_T_INT] = "an integer", [CFG_T_DUR] = "a duration such as 2s",
		[CFG_T_SIZE] = "a size such as 16KiB", [CFG_T_PCT] = "a percentage such as 50%",
		[CFG_T_BOOL] = "true or false", [CFG_T_ENUM] = "one of the listed words",
		[CFG_T_HOSTPORT] = "host:port", [CFG_T_LISTEN] = "ip:port",
		[CFG_T_URLS] = "a list of URLs", [CFG_T_CIDRS] = "a list of CIDRs",
	};
	return phrases[t];
}

const struct cfg_key *cfg_schema_find(const char *path)
{
	for (size_t i = 0; i < cfg_schema_len; i++)
		if (strcmp(cfg_schema[i].path, path) == 0)
			return &cfg_schema[i];
	return NULL;
}

void cfg_quote(char *out, size_t cap, const char *s)
{
	size_t len = strlen(s), keep = 0;
	while (keep < len && keep < CFG_QUOTE_MAX) {
		size_t n = utf8_seq_len(s + keep, len - keep);
		if (n == 0 || keep + n > CFG_QUOTE_MAX)
			break;
		keep += n;
	}
	snprintf(out, cap, "\"%.*s%s\"", (int)keep, s, keep < len ? "..." : "");
}

/* ---- formatting values for hints and docs ---- */

static void format_size(int64_t v, char *out, size_t cap)
{
	if (v % (1024 * 1024) == 0)
		snprintf(out, cap, "%lldMiB", (long long)(v / (1024 * 1024)));
	else if (v % 1024 == 0)
		snprintf(out, cap, "%lldKiB", (long long)(v / 1024));
	else
		snprintf(out, cap, "%lld", (long long)v);
}

static void format_num(const struct cfg_key *row, int64_t v, char *out, size_t cap)
{
	if (row->type == CFG_T_DUR)
		dur_format(v, out, cap);
	else if (row->type == CFG_T_SIZE)
		format_size(v, out, cap);
	else if (row->type == CFG_T_PCT)
		snprintf(out, cap, "%lld%%", (long long)v);
	else
		snprintf(out, cap, "%lld", (long long)v);
}

static void join_choices(const char *const *choices, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (size_t i = 0; choices[i] && n < cap; i++)
		n += (size_t)snprintf(out + n, cap - n, "%s%s", i ? ", " : "", choices[i]);
}

void cfg_row_format_bounds(const struct cfg_key *row, char *out, size_t cap)
{
	char lo[32], hi[32];
	out[0] = '\0';
	switch (row->type) {
	case CFG_T_INT:
	case CFG_T_DUR:
	case CFG_T_SIZE:
	case CFG_T_PCT:
		format_num(row, row->min, lo, sizeof(lo));
		format_num(row, row->max, hi, sizeof(hi));
		snprintf(out, cap, "%s to %s", lo, hi);
		break;
	case CFG_T_ENUM:
		join_choices(row->choices, out, cap);
		break;
	default:
		break;
	}
}

/* ---- storing ---- */

static void *field(const struct cfg_key *row, void *base)
{
	return (char *)base + row->off;
}

static void store_int(const struct cfg_key *row, void *base, int64_t v)
{
	if (row->size == sizeof(int)) {
		int x = (int)v;
		memcpy(field(row, base), &x, sizeof(x));
	} else {
		memcpy(field(row, base), &v, sizeof(v));
	}
}

static void store_str(const struct cfg_key *row, void *base, const char *text)
{
	char **p = field(row, base);
	free(*p);
	*p = xstrdup(text);
}

/* ---- parsers: each returns 0, or -1 with why and hint filled ---- */

struct verdict {
	char *why, *hint;
	size_t whylen, hintlen;
};

__attribute__((format(printf, 3, 4))) static int reject(struct verdict *v, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v->why, v->whylen, fmt, ap);
	va_end(ap);
	snprintf(v->hint, v->hintlen, "%s", hint ? hint : "");
	return -1;
}

static int check_bounds(const struct cfg_key *row, int64_t x, struct verdict *v)
{
	if (x >= row->min && x <= row->max)
		return 0;
	char got[32], range[80];
	format_num(row, x, got, sizeof(got));
	cfg_row_format_bounds(row, range, sizeof(range));
	char hint[128];
	snprintf(hint, sizeof(hint), "use a value from %s", range);
	return reject(v, hint, "%s is out of range", got);
}

static int parse_str(const char *text, struct verdict *v)
{
	size_t len = strlen(text);
	if (len == 0)
		return reject(v, "write a value, or remove the key to use the default", "empty string");
	if (len > STR_MAX)
		return reject(v, "shorten it", "string longer than %d bytes", STR_MAX);
	for (const char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			return reject(v, "write it on one line, without control characters",
				      "control character (such as a newline or tab) in the value");
	return 0;
}

static int parse_int_row(const struct cfg_key *row, const char *text, int64_t *out, struct verdict *v)
{
	char q[CFG_QUOTE_MAX + 8];
	cfg_quote(q, sizeof(q), text);
	if (parse_i64(text, INT64_MIN, INT64_MAX, out) != 0)
		return reject(v, "write a whole number such as 100 (no units, signs or separators)",
			      "expected an integer, found %s", q);
	return check_bounds(row, *out, v);
}

static int parse_dur_row(const struct cfg_key *row, const char *text, int64_t *out, struct verdict *v)
{
	char q[CFG_QUOTE_MAX + 8], why[128];
	cfg_quote(q, sizeof(q), text);
	if (dur_parse(text, out, why, sizeof(why)) != 0)
		return reject(v, "write a number with a unit: 250ms, 2s, 1m30s (units us, ms, s, m, h)",
			      "bad duration %s: %s", q, why);
	return check_bounds(row, *out, v);
}

static int parse_size_row(const struct cfg_key *row, const char *text, int64_t *out, struct verdict *v)
{
	char q[CFG_QUOTE_MAX + 8];
	cfg_quote(q, sizeof(q), text);
	uint64_t n;
	if (parse_size(text, INT64_MAX, &n) != 0)
		return reject(v, "write a size such as 16KiB, 1MiB or 65536 (units B, kB, KiB, MB, MiB, GB, GiB)",
			      "bad size %s", q);
	*out = (int64_t)n;
	return check_bounds(row, *out, v);
}

static int parse_pct_row(const struct cfg_key *row, const char *text, double *out, struct verdict *v)
{
	char q[CFG_QUOTE_MAX + 8];
	cfg_quote(q, sizeof(q), text);
	if (parse_percent(text, out) != 0)
		return reject(v, "write a percentage from 0% to 100%, such as 50%", "bad percentage %s", q);
	double pct = *out * 100.0;
	if (pct >= (double)row->min && pct <= (double)row->max)
		return 0;
	char range[80], hint[128];
	cfg_row_format_bounds(row, range, sizeof(range));
	snprintf(hint, sizeof(hint), "use a value from %s", range);
	return reject(v, hint, "%s is out of range", text);
}

static int parse_bool_text(const char *text, bool *out, struct verdict *v)
{
	static const char *const yes[] = { "true", "True", "TRUE" }, *const no[] = { "false", "False", "FALSE" };
	for (size_t i = 0; i < 3; i++) {
		if (!strcmp(text, yes[i]) || !strcmp(text, no[i])) {
			*out = !strcmp(text, yes[i]);
			return 0;
		}
	}
	char q[CFG_QUOTE_MAX + 8];
	cfg_quote(q, sizeof(q), text);
	return reject(v, "write true or false (yes, no, on and off are plain strings in YAML 1.2)",
		      "expected true or false, found %s", q);
}

static const char *closest_choice(const char *const *choices, const char *text)
{
	const char *best = NULL;
	int best_d = 3;
	for (size_t i = 0; choices[i]; i++) {
		int dist = str_edit_distance(text, choices[i]);
		if (dist < best_d) {
			best_d = dist;
			best = choices[i];
		}
	}
	return best;
}

static int parse_enum_row(const struct cfg_key *row, const char *text, int64_t *out, struct verdict *v)
{
	for (size_t i = 0; row->choices[i]; i++) {
		if (strcmp(text, row->choices[i]) == 0) {
			*out = (int64_t)i;
			return 0;
		}
	}
	char q[CFG_QUOTE_MAX + 8], list[160], hint[512];
	cfg_quote(q, sizeof(q), text);
	join_choices(row->choices, list, sizeof(list));
	const char *near = closest_choice(row->choices, text);
	int n = snprintf(hint, sizeof(hint), "use one of %s", list);
	if (near && n > 0 && (size_t)n < sizeof(hint))
		n += snprintf(hint + n, sizeof(hint) - (size_t)n, " (did you mean %s?)", near);
	if (row->why && n > 0 && (size_t)n < sizeof(hint))
		snprintf(hint + n, sizeof(hint) - (size_t)n, "; %s", row->why);
	return reject(v, hint, "unsupported value %s", q);
}

static bool host_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

/* A host in host:port: an IP literal, a DNS name, or empty / "*" for every address. */
static bool host_ok(const char *host)
{
	char canon[NET_IP_MAX];
	if (!*host || !strcmp(host, "*") || net_ip_canon(host, canon, sizeof(canon)) > 0)
		return true;
	return str_all_in(host, strlen(host), 253, host_char) && host[0] != '-' && host[0] != '.';
}

static int parse_hostport_text(const char *text, char *host, size_t hostcap, uint16_t *port, struct verdict *v)
{
	struct vxerr err;
	char q[CFG_QUOTE_MAX + 8];
	cfg_quote(q, sizeof(q), text);
	if (net_hostport_parse(text, host, hostcap, port, &err) != 0)
		return reject(v, "write host:port such as 127.0.0.1:8080, [::1]:8080 or *:8080", "bad address: %s",
			      err.msg);
	if (!host_ok(host))
		return reject(v, "write an IP address, a host name, or * for every address", "bad host in %s", q);
	return 0;
}

static int parse_listen(const struct cfg_key *row, const char *text, void *base, struct verdict *v)
{
	char host[256], canon[NET_IP_MAX] = "";
	uint16_t port;
	if (parse_hostport_text(text, host, sizeof(host), &port, v) != 0)
		return -1;
	if (host[0] && strcmp(host, "*") != 0 && net_ip_canon(host, canon, sizeof(canon)) < 0)
		return reject(v, "write an IP address such as 127.0.0.1 or ::1, or * for every address",
			      "a service binds to an IP address, not a host name");
	memcpy(field(row, base), canon, sizeof(canon));
	memcpy((char *)base + row->off2, &port, sizeof(port));
	return 0;
}

static int parse_scalar(const struct cfg_key *row, const char *text, void *base, struct verdict *v)
{
	int64_t i = 0;
	double d = 0;
	bool b = false;
	char host[256];
	uint16_t port;
	switch (row->type) {
	case CFG_T_STR:
		if (parse_str(text, v) != 0)
			return -1;
		store_str(row, base, text);
		return 0;
	case CFG_T_HOSTPORT:
		if (parse_str(text, v) != 0 || parse_hostport_text(text, host, sizeof(host), &port, v) != 0)
			return -1;
		store_str(row, base, text);
		return 0;
	case CFG_T_LISTEN:
		return parse_listen(row, text, base, v);
	case CFG_T_INT:
		if (parse_int_row(row, text, &i, v) != 0)
			return -1;
		break;
	case CFG_T_DUR:
		if (parse_dur_row(row, text, &i, v) != 0)
			return -1;
		break;
	case CFG_T_SIZE:
		if (parse_size_row(row, text, &i, v) != 0)
			return -1;
		break;
	case CFG_T_ENUM:
		if (parse_enum_row(row, text, &i, v) != 0)
			return -1;
		break;
	case CFG_T_PCT:
		if (parse_pct_row(row, text, &d, v) != 0)
			return -1;
		memcpy(field(row, base), &d, sizeof(d));
		return 0;
	case CFG_T_BOOL:
		if (parse_bool_text(text, &b, v) != 0)
			return -1;
		memcpy(field(row, base), &b, sizeof(b));
		return 0;
	default:
		return reject(v, NULL, "expected %s", cfg_type_phrase(row->type));
	}
	store_int(row, base, i);
	return 0;
}

int cfg_value_set(const struct cfg_key *row, const char *text, void *base, char *why, size_t whylen,
		  char *hint, size_t hintlen)
{
	struct verdict v = { why, hint, whylen, hintlen };
	return parse_scalar(row, text, base, &v);
}

/* ---- lists ---- */

/* http(s)://host[:port][/]: etcd's gateway takes no path, and a path here is almost always
 * a copy-paste of an API URL. */
static int parse_url(const char *text, struct verdict *v)
{
	char q[CFG_QUOTE_MAX + 8], hostport[300], host[256];
	cfg_quote(q, sizeof(q), text);
	const char *rest = str_starts_with(text, "http://") ? text + 7
			   : str_starts_with(text, "https://") ? text + 8 : NULL;
	if (!rest)
		return reject(v, "write http://host:port or https://host:port, such as http://127.0.0.1:2379",
			      "%s is not an http:// or https:// URL", q);
	size_t n = strcspn(rest, "/");
	if (n >= sizeof(hostport) || (rest[n] && strcmp(rest + n, "/") != 0))
		return reject(v, "give only the scheme, host and port, such as http://10.0.0.5:2379",
			      "URL %s has a path; etcd endpoints have none", q);
	memcpy(hostport, rest, n);
	hostport[n] = '\0';
	uint16_t port;
	bool has_port = strrchr(hostport, ':') && (hostport[0] != '[' || strstr(hostport, "]:"));
	if (has_port)
		return parse_hostport_text(hostport, host, sizeof(host), &port, v);
	if (!hostport[0] || !host_ok(hostport))
		return reject(v, "write http://host:port, such as http://127.0.0.1:2379", "bad host in URL %s", q);
	return 0;
}

int cfg_list_append(const struct cfg_key *row, const char *text, void *base, char *why, size_t whylen,
		    char *hint, size_t hintlen)
{
	struct verdict v = { why, hint, whylen, hintlen };
	size_t *count = (size_t *)((char *)base + row->off2);
	if (parse_str(text, &v) != 0)
		return -1;
	if (row->type == CFG_T_URLS) {
		if (parse_url(text, &v) != 0)
			return -1;
		char ***arr = field(row, base);
		*arr = xrealloc(*arr, (*count + 1) * sizeof(**arr));
		(*arr)[(*count)++] = xstrdup(text);
		return 0;
	}
	struct cidr c;
	struct vxerr err;
	if (cidr_parse(text, &c, &err) != 0)
		return reject(&v, "write an address and prefix length, such as 10.0.0.0/8 or fd00::/64",
			      "bad CIDR: %s", err.msg);
	struct cidr **arr = field(row, base);
	*arr = xrealloc(*arr, (*count + 1) * sizeof(**arr));
	(*arr)[(*count)++] = c;
	return 0;
}

/* ---- defaults and release ---- */

void cfg_defaults_apply(enum cfg_scope scope, void *base)
{
	char why[256], hint[512];
	for (size_t i = 0; i < cfg_schema_len; i++) {
		const struct cfg_key *row = &cfg_schema[i];
		if (row->scope != scope || !row->def || row->type == CFG_T_SECTION || row->type == CFG_T_SERVICES)
			continue;
		if (cfg_value_set(row, row->def, base, why, sizeof(why), hint, sizeof(hint)) != 0)
			abort(); /* a default that fails its own row: test_config catches this first */
	}
}

void cfg_values_release(enum cfg_scope scope, void *base)
{
	for (size_t i = 0; i < cfg_schema_len; i++) {
		const struct cfg_key *row = &cfg_schema[i];
		if (row->scope != scope)
			continue;
		if (row->type == CFG_T_STR || row->type == CFG_T_HOSTPORT) {
			char **p = field(row, base);
			free(*p);
			*p = NULL;
		} else if (row->type == CFG_T_URLS) {
			char ***arr = field(row, base);
			size_t *count = (size_t *)((char *)base + row->off2);
			for (size_t k = 0; k < *count; k++)
				free((*arr)[k]);
			free(*arr);
			*arr = NULL;
			*count = 0;
		} else if (row->type == CFG_T_CIDRS) {
			struct cidr **arr = field(row, base);
			free(*arr);
			*arr = NULL;
			*(size_t *)((char *)base + row->off2) = 0;
		}
	}
}

static bool name_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

bool cfg_service_name_valid(const char *s)
{
	size_t len = strlen(s);
	return str_all_in(s, len, 63, name_char) && s[0] != '_' && s[0] != '-';
}
