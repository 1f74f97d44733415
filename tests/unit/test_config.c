/* Unit tests for src/config: schema rows, defaults, the loader on good and hostile input,
 * positions, cross-field validation, diagnostics rendering, the lint rules with injected
 * machine facts, and docs/config.md covering every key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/http1.h"
#include "common/timeutil.h"
#include "common/utf8.h"
#include "config/config.h"
#include "fx.h"

static const char *top(void)
{
	const char *t = getenv("VX_TOP");
	return t && *t ? t : ".";
}

static struct vx_config *load(const char *yaml, struct cfg_diags *d)
{
	cfg_diags_init(d, 0);
	return cfg_load_buffer("t.yaml", yaml, strlen(yaml), d);
}

static const struct cfg_diag *find(const struct cfg_diags *d, const char *path)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->items[i].path && strcmp(d->items[i].path, path) == 0)
			return &d->items[i];
	return NULL;
}

/* Asserts a finding at path with this severity, position and a message or hint holding text. */
static void expect(const struct cfg_diags *d, const char *path, enum cfg_severity sev, int line, int col,
		   const char *text)
{
	const struct cfg_diag *g = find(d, path);
	if (!g)
		fail_msg("no finding for %s", path);
	assert_int_equal(g->severity, sev);
	if (line) {
		assert_int_equal(g->line, line);
		assert_int_equal(g->col, col);
	}
	if (text && !strstr(g->message, text) && !(g->hint && strstr(g->hint, text)))
		fail_msg("%s: \"%s\" not in \"%s\" / \"%s\"", path, text, g->message, g->hint ? g->hint : "");
}

static const char *minimal = "services:\n  - name: web\n    bind: 127.0.0.1:8080\n";

/* ---- schema and defaults ---- */

static void test_schema_rows_are_consistent(void **state)
{
	(void)state;
	for (size_t i = 0; i < cfg_schema_len; i++) {
		const struct cfg_key *r = &cfg_schema[i];
		assert_non_null(r->doc);
		assert_true(strlen(r->doc) > 10);
		for (size_t j = i + 1; j < cfg_schema_len; j++)
			assert_string_not_equal(r->path, cfg_schema[j].path);
		if (r->type == CFG_T_ENUM)
			assert_non_null(r->choices);
		if (r->type == CFG_T_INT || r->type == CFG_T_DUR || r->type == CFG_T_SIZE || r->type == CFG_T_PCT)
			assert_true(r->min <= r->max);
		if (r->type != CFG_T_SECTION && r->type != CFG_T_SERVICES)
			assert_int_equal(r->scope == CFG_SCOPE_SERVICE, strncmp(r->path, "services[].", 11) == 0);
		/* every key's parent is a section (or the services list) in the table */
		const char *dot = strrchr(r->path, '.');
		if (!dot)
			continue;
		char parent[128];
		snprintf(parent, sizeof(parent), "%.*s", (int)(dot - r->path), r->path);
		if (strcmp(parent, "services[]") == 0)
			continue;
		bool found = false;
		for (size_t j = 0; j < cfg_schema_len; j++)
			found |= strcmp(cfg_schema[j].path, parent) == 0 && cfg_schema[j].type == CFG_T_SECTION;
		if (!found)
			fail_msg("%s has no section row %s", r->path, parent);
	}
}

static void test_defaults(void **state)
{
	(void)state;
	struct vx_config *c = cfg_default(); /* aborts if any default fails its own row */
	assert_null(c->path);
	assert_int_equal(c->n_services, 0);
	assert_int_equal(c->etcd.n_endpoints, 0);
	assert_string_equal(c->etcd.prefix, "/veltrix");
	assert_int_equal(c->etcd.dial_timeout_us, 2 * USEC_PER_SEC);
	assert_null(c->etcd.tls.ca);
	assert_int_equal(c->haproxy.mode, HAP_MODE_MANAGED);
	assert_int_equal(c->haproxy.maxconn, 4096);
	assert_int_equal(c->haproxy.bufsize, 16384);
	/* relative paths become absolute at load (HAProxy reads "a/b.sock" as host:port) */
	char cwd[4096], want[4200];
	assert_non_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "%s/.veltrix/haproxy/runtime.sock", cwd);
	assert_string_equal(c->haproxy.runtime_socket, want);
	snprintf(want, sizeof(want), "%s/.veltrix/haproxy/master.sock", cwd);
	assert_string_equal(c->haproxy.master_socket, want);
	snprintf(want, sizeof(want), "%s/.veltrix/etcd", cwd);
	assert_string_equal(c->etcd.data_dir, want);
	assert_null(c->haproxy.stats_bind);
	assert_int_equal(c->controller.max_batch_delay_us, 500);
	assert_int_equal(c->controller.resync_interval_us, 30 * USEC_PER_SEC);
	assert_true(c->controller.panic_threshold > 0.499 && c->controller.panic_threshold < 0.501);
	assert_true(c->controller.weight_feedback);
	assert_int_equal(c->agent.ttl_us, 10 * USEC_PER_SEC);
	assert_false(cfg_key_given(c, "etcd.prefix"));
	cfg_free(c);
	cfg_free(NULL);
}

static void test_minimal_service_gets_defaults(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct vx_config *c = load(minimal, &d);
	assert_non_null(c);
	assert_int_equal(d.n_errors + d.n_warnings, 0);
	assert_int_equal(c->n_services, 1);
	const struct cfg_service *s = cfg_service_find(c, "web");
	assert_non_null(s);
	assert_null(cfg_service_find(c, "api"));
	assert_string_equal(s->bind_host, "127.0.0.1");
	assert_int_equal(s->bind_port, 8080);
	assert_int_equal(s->mode, SVC_MODE_HTTP);
	assert_int_equal(s->balance, BAL_LEASTCONN);
	assert_int_equal(s->http_reuse, REUSE_SAFE);
	assert_int_equal(s->health.type, CHECK_TCP);
	assert_int_equal(s->health.interval_us, 2 * USEC_PER_SEC);
	assert_int_equal(s->health.timeout_us, USEC_PER_SEC);
	assert_int_equal(s->health.rise, 2);
	assert_int_equal(s->health.fall, 3);
	assert_int_equal(s->retries, 3);
	assert_true(s->redispatch);
	assert_int_equal(s->default_capacity, 100);
	assert_int_equal(s->n_allow, 0);
	assert_int_equal(s->expect.peak_rps, 0);
	assert_string_equal(c->path, "t.yaml");
	cfg_free(c);
	cfg_diags_release(&d);
}

static void test_example_file_is_valid(void **state)
{
	(void)state;
	char *path = xasprintf("%s/examples/veltrix.yaml", top());
	struct cfg_diags d;
	cfg_diags_init(&d, 0);
	struct vx_config *c = cfg_load(path, &d);
	assert_non_null(c);
	assert_int_equal(d.n_errors + d.n_warnings, 0);
	assert_int_equal(c->n_services, 2);
	assert_int_equal(c->etcd.n_endpoints, 1);
	assert_string_equal(c->etcd.endpoints[0], "http://127.0.0.1:2379");
	const struct cfg_service *web = cfg_service_find(c, "web"), *pg = cfg_service_find(c, "pg");
	assert_non_null(web);
	assert_non_null(pg);
	assert_int_equal(web->health.type, CHECK_HTTP);
	assert_string_equal(web->health.path, "/health");
	assert_int_equal(web->n_allow, 2);
	assert_true(cidr_contains(&web->allow[0], "10.0.200.1"));
	assert_false(cidr_contains(&web->allow[0], "10.1.0.1"));
	assert_int_equal(pg->mode, SVC_MODE_TCP);
	assert_int_equal(pg->timeouts.client_us, 3600 * USEC_PER_SEC);
	assert_string_equal(c->haproxy.stats_bind, "127.0.0.1:8404");
	cfg_free(c);
	cfg_diags_release(&d);
	free(path);
}

static void test_value_forms(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct vx_config *c = load("haproxy: {bufsize: 64KiB, maxconn: \"2000\"}\n"
				   "controller: {panic_threshold: 12.5%, weight_feedback: False}\n"
				   "etcd: {endpoints: [\"https://[::1]:2379\", http://etcd-1.internal, http://10.0.0.1:2379/]}\n"
				   "services:\n"
				   "  - {name: a, bind: \"*:80\"}\n"
				   "  - {name: b, bind: \"[::1]:8080\", health: {interval: 1m30s, timeout: 1.5s}}\n"
				   "  - {name: c, bind: \":9000\", allow: [\"fd00::/8\", 192.168.0.0/16]}\n",
				   &d);
	assert_non_null(c);
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(c->haproxy.bufsize, 65536);
	assert_int_equal(c->haproxy.maxconn, 2000);
	assert_true(c->controller.panic_threshold > 0.1249 && c->controller.panic_threshold < 0.1251);
	assert_false(c->controller.weight_feedback);
	assert_int_equal(c->etcd.n_endpoints, 3);
	assert_string_equal(c->services[0].bind_host, "");
	assert_int_equal(c->services[0].bind_port, 80);
	assert_string_equal(c->services[1].bind_host, "::1");
	assert_int_equal(c->services[1].health.interval_us, 90 * USEC_PER_SEC);
	assert_int_equal(c->services[1].health.timeout_us, 1500 * USEC_PER_MS);
	assert_string_equal(c->services[2].bind_host, "");
	assert_true(cidr_contains(&c->services[2].allow[0], "fd12::1"));
	cfg_free(c);
	cfg_diags_release(&d);
}

/* ---- validation ---- */

static void test_every_problem_in_one_run(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct vx_config *c = load("etcd:\n"
				   "  endpoint: []\n"                 /* 2: unknown key */
				   "haproxy:\n"
				   "  maxconn: many\n"                /* 4: wrong type */
				   "services:\n"
				   "  - name: web\n"
				   "    bind: 127.0.0.1:8080\n"
				   "    balance: source\n"            /* 8: unsupported balance */
				   "    health: {interval: 1s, timeout: 1s}\n" /* 9: timeout not shorter */
				   "    allow: [10.0.0.0/40]\n"       /* 10: bad CIDR */
				   "    drain_timeout: 10\n"          /* 11: bad duration */
				   "  - name: web\n"                  /* 12: duplicate name */
				   "    bind: 127.0.0.1:8080\n"       /* 13: same address */
				   "    retries: 1000\n",             /* 14: out of range */
				   &d);
	assert_null(c);
	assert_int_equal(d.n_errors, 9);
	assert_int_equal(d.n_warnings, 0);
	expect(&d, "etcd.endpoint", CFG_SEV_ERROR, 2, 3, "did you mean `endpoints`?");
	expect(&d, "haproxy.maxconn", CFG_SEV_ERROR, 4, 12, "expected an integer");
	expect(&d, "services[0].balance", CFG_SEV_ERROR, 8, 14, "dynamic algorithm");
	expect(&d, "services[0].health.timeout", CFG_SEV_ERROR, 9, 37, "not shorter than the interval");
	expect(&d, "services[0].allow[0]", CFG_SEV_ERROR, 10, 13, "prefix length");
	expect(&d, "services[0].drain_timeout", CFG_SEV_ERROR, 11, 20, "bad duration");
	expect(&d, "services[1].name", CFG_SEV_ERROR, 12, 11, "line 6");
	expect(&d, "services[1].bind", CFG_SEV_ERROR, 13, 11, "services[0].bind");
	expect(&d, "services[1].retries", CFG_SEV_ERROR, 14, 14, "0 to 100");
	cfg_diags_release(&d);
}

static void test_unknown_keys_suggest(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct vx_config *c = load("servces: []\n"
				   "haproxy: {max_conn: 1}\n"
				   "services:\n"
				   "  - name: web\n"
				   "    bind: 127.0.0.1:8080\n"
				   "    interval: 2s\n"
				   "    maxconn: 10\n"
				   "    peak_rps: 10\n"
				   "    zzz: 1\n"
				   "    health.interval: 2s\n",
				   &d);
	assert_null(c);
	expect(&d, "servces", CFG_SEV_ERROR, 1, 1, "did you mean `services`?");
	expect(&d, "haproxy.max_conn", CFG_SEV_ERROR, 2, 11, "did you mean `maxconn`?");
	expect(&d, "services[0].interval", CFG_SEV_ERROR, 6, 5, "did you mean `health.interval`?");
	expect(&d, "services[0].peak_rps", CFG_SEV_ERROR, 8, 5, "`expect.peak_rps`");
	expect(&d, "services[0].zzz", CFG_SEV_ERROR, 9, 5, "valid keys here: name, bind");
	/* a dotted key is not a path: it is an unknown key */
	expect(&d, "services[0].health.interval", CFG_SEV_ERROR, 10, 5, "unknown key");
	assert_int_equal(d.n_errors, 6);
	cfg_diags_release(&d);
}

static void test_rejected_values_do_not_cascade(void **state)
{
	(void)state;
	struct cfg_diags d;
	/* a bad interval must not be compared (as its default) with the timeout */
	struct vx_config *c = load("services:\n  - name: web\n    bind: 127.0.0.1:8080\n"
				   "    health: {interval: soon, timeout: 3s}\n",
				   &d);
	assert_null(c);
	assert_int_equal(d.n_errors, 1);
	expect(&d, "services[0].health.interval", CFG_SEV_ERROR, 4, 24, "bad duration");
	cfg_diags_release(&d);
}

static void test_pairs_and_warnings(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct vx_config *c = load("etcd: {endpoints: [http://127.0.0.1:2379], tls: {ca: /ca.pem}}\n"
				   "services:\n"
				   "  - {name: db, bind: 127.0.0.1:5432, mode: tcp, http_reuse: never,\n"
				   "     health: {path: /x}, allow: [10.1.2.3/16]}\n",
				   &d);
	assert_non_null(c); /* warnings only */
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(d.n_warnings, 4);
	expect(&d, "etcd.tls", CFG_SEV_WARNING, 0, 0, "https://");
	expect(&d, "services[0].http_reuse", CFG_SEV_WARNING, 3, 61, "no effect in mode tcp");
	expect(&d, "services[0].health.path", CFG_SEV_WARNING, 4, 21, "ignored");
	expect(&d, "services[0].allow[0]", CFG_SEV_WARNING, 4, 34, "/16");
	cfg_free(c);
	cfg_diags_release(&d);

	c = load("haproxy: {mode: attach}\nagent: {ttl: 2500ms}\nservices: []\n", &d);
	assert_null(c);
	expect(&d, "haproxy.mode", CFG_SEV_ERROR, 1, 17, "runtime socket");
	expect(&d, "agent.ttl", CFG_SEV_ERROR, 2, 14, "whole seconds");
	expect(&d, "services", CFG_SEV_WARNING, 0, 0, "no services");
	cfg_diags_release(&d);

	c = load("haproxy: {mode: attach, runtime_socket: /run/haproxy.sock}\n", &d);
	assert_non_null(c);
	assert_string_equal(c->haproxy.runtime_socket, "/run/haproxy.sock");
	assert_null(c->haproxy.master_socket);
	cfg_free(c);
	cfg_diags_release(&d);
}

static void test_positions(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct vx_config *c = load("services:\n  - name: web\n    bind: 127.0.0.1:8080\n"
				   "    health:\n      interval: 5s\n",
				   &d);
	assert_non_null(c);
	int line = 0, col = 0;
	assert_true(cfg_key_pos(c, "services[0].health.interval", &line, &col));
	assert_int_equal(line, 5);
	assert_int_equal(col, 17);
	/* not written: falls back to the nearest enclosing key that was */
	assert_true(cfg_key_pos(c, "services[0].health.timeout", &line, &col));
	assert_int_equal(line, 5);
	assert_true(cfg_key_pos(c, "services[0].expect.peak_rps", &line, &col));
	assert_int_equal(line, 2);
	assert_int_equal(col, 5);
	assert_false(cfg_key_pos(c, "etcd.prefix", &line, &col));
	assert_true(cfg_key_given(c, "services[0].bind"));
	assert_false(cfg_key_given(c, "services[0].mode"));
	cfg_free(c);
	cfg_diags_release(&d);
}

/* ---- hostile input ---- */

static void expect_refused(const char *data, size_t len, const char *text)
{
	struct cfg_diags d;
	cfg_diags_init(&d, 0);
	struct vx_config *c = cfg_load_buffer("h.yaml", data, len, &d);
	assert_null(c);
	assert_true(d.n_errors >= 1);
	bool seen = false;
	for (size_t i = 0; i < d.n; i++)
		seen |= strstr(d.items[i].message, text) != NULL;
	if (!seen)
		fail_msg("no finding with \"%s\" (first: %s)", text, d.n ? d.items[0].message : "-");
	cfg_diags_release(&d);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	char *s = xmalloc(hl + ul * n + tl + 1), *p = s;
	memcpy(p, head, hl);
	p += hl;
	for (size_t i = 0; i < n; i++, p += ul)
		memcpy(p, unit, ul);
	memcpy(p, tail, tl + 1);
	return s;
}

static void test_hostile_inputs(void **state)
{
	(void)state;
	expect_refused("", 0, "empty");
	expect_refused("# nothing\n\n   \n", 15, "empty");
	expect_refused("a: 1\0b: 2\n", 10, "not a text file");
	expect_refused("etcd: {prefix: /v\xff\xfe}\n", 21, "not valid UTF-8");
	expect_refused("etcd: {prefix: \xed\xa0\x80}\n", 20, "not valid UTF-8"); /* a UTF-16 surrogate */
	expect_refused("42\n", 3, "top level must be a mapping");
	expect_refused("etcd: {prefix: \"/a\\nb\"}\n", 24, "control character");
	/* issue 10 D15: a NUL escape must not truncate a value to what precedes it */
	expect_refused("etcd: {prefix: \"/a\\u0000zzz\"}\n", 30, "NUL character");
	expect_refused("services:\n  - {name: \"web\\0zzz\", bind: 127.0.0.1:1}\n", 52, "NUL character");
	expect_refused("services:\n  - {name: \"web\\x00\", bind: 127.0.0.1:1}\n", 51, "NUL character");
	expect_refused("services:\n  - {name: web, bind: 127.0.0.1:1}\n---\nx: 1\n", 51, "more than one YAML document");
	expect_refused("? [a]\n: 1\n", 10, "mapping key must be a plain string");

	/* billion laughs: refused at the first alias, nothing is expanded */
	const char *lol = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
			  "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
			  "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n";
	expect_refused(lol, strlen(lol), "aliases");

	char *deep = repeat("", "[", 100000, "");
	expect_refused(deep, strlen(deep), "nesting deeper");
	free(deep);
	char *deep_block = xmalloc(200 * 202 + 1), *p = deep_block;
	for (int i = 0; i < 200; i++)
		p += sprintf(p, "%*sk%d:\n", i, "", i);
	expect_refused(deep_block, strlen(deep_block), "nesting deeper");
	free(deep_block);

	char *wide = repeat("etcd: {endpoints: [", "x,", 150000, "x]}\n");
	expect_refused(wide, strlen(wide), "YAML values in one file");
	free(wide);

	char *longkey = repeat("", "k", 5000, ": 1\n");
	expect_refused(longkey, strlen(longkey), "unknown key");
	free(longkey);

	char *longval = repeat("etcd: {prefix: /", "a", 10000, "}\n");
	expect_refused(longval, strlen(longval), "string longer than");
	free(longval);

	size_t big = CFG_MAX_FILE_BYTES + 1;
	char *huge = xcalloc(1, big);
	memset(huge, '#', big);
	expect_refused(huge, big, "larger than the limit");
	free(huge);
}

/* issue 10 D14: `veltrix check` and the haproxy.cfg renderer apply one rule to health.path, so
 * a configuration check accepts is never refused by the controller. Every ASCII byte inside a
 * path, written as a YAML escape. */
static void test_health_path_one_rule(void **state)
{
	(void)state;
	for (int c = 1; c < 0x7f; c++) {
		char yaml[160], path[8];
		snprintf(yaml, sizeof(yaml),
			 "services:\n  - {name: web, bind: 127.0.0.1:1, health: {type: http, path: \"/a\\x%02xb\"}}\n", c);
		snprintf(path, sizeof(path), "/a%cb", c);
		struct cfg_diags d;
		cfg_diags_init(&d, 0);
		struct vx_config *cfg = cfg_load_buffer("p.yaml", yaml, strlen(yaml), &d);
		if ((cfg != NULL) != http1_check_path_valid(path))
			fail_msg("byte 0x%02x: check says %s, the renderer's rule says %s", c, cfg ? "valid" : "invalid",
				 http1_check_path_valid(path) ? "valid" : "invalid");
		if (strchr("#\"'\\; ", c))
			assert_null(cfg);
		cfg_free(cfg);
		cfg_diags_release(&d);
	}
	char *longpath = repeat("services:\n  - {name: web, bind: 127.0.0.1:1, health: {type: http, path: /", "a",
				HTTP1_CHECK_PATH_MAX, "}}\n");
	expect_refused(longpath, strlen(longpath), "bad http check path");
	free(longpath);
}

static void test_file_errors(void **state)
{
	(void)state;
	char *dir = fx_tmpdir("cfg");
	struct cfg_diags d;
	struct {
		const char *name;
		const char *text;
	} cases[] = { { "missing.yaml", "cannot open" }, { ".", "is a directory" }, { "fifo", "not a regular file" },
		      { "big.yaml", "larger than the limit" }, { "bin.yaml", "not a text file" } };
	char *fifo = fx_path(dir, "fifo"), *bigp = fx_path(dir, "big.yaml"), *bin = fx_path(dir, "bin.yaml");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	int fd = open(bigp, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 100 * 1024 * 1024), 0); /* 100 MB, sparse: refused before reading */
	close(fd);
	fx_write_file(bin, "\x7f" "ELF\x02\x01\x01");
	fd = open(bin, O_WRONLY | O_APPEND);
	assert_int_equal(write(fd, "\0\0\0\0", 4), 4);
	close(fd);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *path = fx_path(dir, cases[i].name);
		cfg_diags_init(&d, 0);
		assert_null(cfg_load(path, &d));
		assert_int_equal(d.n_errors, 1);
		if (!strstr(d.items[0].message, cases[i].text))
			fail_msg("%s: %s", cases[i].name, d.items[0].message);
		assert_string_equal(d.items[0].file, path);
		cfg_diags_release(&d);
		free(path);
	}
	cfg_diags_init(&d, 0);
	assert_null(cfg_load("/dev/zero", &d));
	assert_non_null(strstr(d.items[0].message, "not a regular file"));
	cfg_diags_release(&d);
	free(fifo);
	free(bigp);
	free(bin);
	free(dir);
}

/* ---- diagnostics ---- */

static void test_diag_cap_and_render(void **state)
{
	(void)state;
	struct buf_s {
		char *p;
		size_t n;
	} text = { 0 };
	char *yaml = xstrdup("");
	for (int i = 0; i < 200; i++) {
		char *next = xasprintf("%sbogus%d: 1\n", yaml, i);
		free(yaml);
		yaml = next;
	}
	struct cfg_diags d;
	struct vx_config *c = load(yaml, &d);
	assert_null(c);
	assert_int_equal(d.n, CFG_DIAGS_CAP);
	assert_int_equal(d.n_errors, 200);
	assert_int_equal(d.n_omitted, 150);
	FILE *f = open_memstream(&text.p, &text.n);
	cfg_diags_print(&d, f);
	fclose(f);
	assert_non_null(strstr(text.p, "t.yaml:1:1: error: bogus0: unknown key \"bogus0\"; valid keys here: etcd,"));
	assert_non_null(strstr(text.p, "... 150 more findings not shown"));
	char sum[64];
	cfg_diags_summary(&d, sum, sizeof(sum));
	assert_string_equal(sum, "200 errors, 0 warnings");
	char *js = cfg_diags_to_json(&d);
	json_error_t jerr;
	json_t *arr = json_loads(js, 0, &jerr);
	assert_non_null(arr);
	assert_int_equal(json_array_size(arr), CFG_DIAGS_CAP + 1);
	json_t *first = json_array_get(arr, 0);
	assert_string_equal(json_string_value(json_object_get(first, "severity")), "error");
	assert_string_equal(json_string_value(json_object_get(first, "file")), "t.yaml");
	assert_int_equal(json_integer_value(json_object_get(first, "line")), 1);
	assert_int_equal(json_integer_value(json_object_get(first, "column")), 1);
	assert_string_equal(json_string_value(json_object_get(first, "path")), "bogus0");
	assert_true(json_is_null(json_object_get(first, "rule")));
	assert_int_equal(json_integer_value(json_object_get(json_array_get(arr, CFG_DIAGS_CAP), "omitted")), 150);
	json_decref(arr);
	free(js);
	free(text.p);
	free(yaml);
	cfg_diags_release(&d);
}

static void test_diag_sanitizes_and_sorts(void **state)
{
	(void)state;
	struct cfg_diags d;
	cfg_diags_init(&d, 0);
	cfg_diags_add(&d, CFG_SEV_WARNING, "f", 9, 1, "b", NULL, NULL, "later");
	cfg_diags_add(&d, CFG_SEV_ERROR, "f", 2, 5, "a\x1b[31m", "r1", "fix", "bad \xe2\x82 \n value");
	cfg_diags_add(&d, CFG_SEV_ERROR, NULL, 0, 0, NULL, NULL, NULL, "file-level");
	cfg_diags_sort(&d);
	char *out = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&out, &n);
	cfg_diags_print(&d, f);
	fclose(f);
	assert_string_equal(out, "error: file-level\n"
				 "f:2:5: error: a?[31m: bad ?? ? value; fix [r1]\n"
				 "f:9:1: warning: b: later\n");
	char *js = cfg_diags_to_json(&d); /* valid UTF-8 even from broken input */
	json_t *arr = json_loads(js, 0, NULL);
	assert_non_null(arr);
	json_decref(arr);
	free(js);
	free(out);
	cfg_diags_release(&d);
}

/* ---- lint ---- */

static const struct cfg_sysfacts this_vm = {
	.port_lo = 32768, .port_hi = 60999, .somaxconn = 4096, .nofile_soft = 20000, .nofile_hard = 20000,
	.fin_timeout_s = 60, .tw_reuse = 2,
};

static void lint(const char *yaml, const struct cfg_sysfacts *f, struct cfg_diags *d)
{
	struct vx_config *c = load(yaml, d);
	if (!c)
		fail_msg("config does not load: %s", d->n ? d->items[0].message : "?");
	cfg_lint(c, f, d);
	cfg_free(c);
}

static void test_lint_ephemeral_ports(void **state)
{
	(void)state;
	struct cfg_diags d;
#define PORTS_YAML(extra) "services:\n  - name: web\n    bind: 127.0.0.1:8080\n    http_reuse: never\n" \
			  "    expect: {peak_rps: 20000" extra "}\n"
	char *yaml = xstrdup(PORTS_YAML(""));
	lint(yaml, &this_vm, &d);
	assert_int_equal(d.n_errors, 1);
	expect(&d, "services[0].expect.peak_rps", CFG_SEV_ERROR, 5, 24,
	       "gets 28232 ephemeral ports (net.ipv4.ip_local_port_range 32768-60999)");
	expect(&d, "services[0].expect.peak_rps", CFG_SEV_ERROR, 0, 0, "28232 / 60 = 470 new connections/s");
	expect(&d, "services[0].expect.peak_rps", CFG_SEV_ERROR, 0, 0, "at least 43 backend servers");
	expect(&d, "services[0].expect.peak_rps", CFG_SEV_ERROR, 0, 0, "EADDRNOTAVAIL");
	assert_string_equal(find(&d, "services[0].expect.peak_rps")->rule, "ephemeral-ports");
	cfg_diags_release(&d);
	free(yaml);

	yaml = xstrdup(PORTS_YAML(", servers: 43")); /* enough servers: fine */
	lint(yaml, &this_vm, &d);
	assert_int_equal(d.n_errors + d.n_warnings, 0);
	cfg_diags_release(&d);
	free(yaml);

	yaml = xstrdup(PORTS_YAML(", servers: 42"));
	lint(yaml, &this_vm, &d);
	expect(&d, "services[0].expect.peak_rps", CFG_SEV_ERROR, 0, 0, "expect.servers plans 42");
	cfg_diags_release(&d);
	free(yaml);

	/* reuse on: no finding; a load one server takes: no finding */
	lint("services: [{name: web, bind: 127.0.0.1:1, expect: {peak_rps: 20000}}]\n", &this_vm, &d);
	assert_int_equal(d.n_errors + d.n_warnings, 0);
	cfg_diags_release(&d);
	lint("services: [{name: web, bind: 127.0.0.1:1, mode: tcp, expect: {peak_rps: 470}}]\n", &this_vm, &d);
	assert_int_equal(d.n_errors + d.n_warnings, 0);
	cfg_diags_release(&d);
	lint("services: [{name: web, bind: 127.0.0.1:1, mode: tcp, expect: {peak_rps: 471}}]\n", &this_vm, &d);
	expect(&d, "services[0].expect.peak_rps", CFG_SEV_ERROR, 0, 0, "at least 2 backend servers");
	expect(&d, "services[0].expect.peak_rps", CFG_SEV_ERROR, 0, 0, "mode tcp cannot reuse");
	cfg_diags_release(&d);

	/* a tiny range (as in FACTS.md's namespace experiment), and unknown facts */
	struct cfg_sysfacts tiny = this_vm;
	tiny.port_lo = 40000;
	tiny.port_hi = 40009;
	lint("services: [{name: web, bind: 127.0.0.1:1, mode: tcp, expect: {peak_rps: 1}}]\n", &tiny, &d);
	expect(&d, "services[0].expect.peak_rps", CFG_SEV_ERROR, 0, 0, "10 / 60 = 0.17 new connections/s");
	expect(&d, "services[0].expect.peak_rps", CFG_SEV_ERROR, 0, 0, "at least 6 backend servers");
	cfg_diags_release(&d);
	struct cfg_sysfacts unknown = { -1, -1, -1, -1, -1, -1, -1 };
	lint("services: [{name: web, bind: 127.0.0.1:1, mode: tcp, expect: {peak_rps: 99999}}]\n", &unknown, &d);
	assert_int_equal(d.n_errors + d.n_warnings, 0);
	cfg_diags_release(&d);
}

static void test_lint_fd_limit(void **state)
{
	(void)state;
	struct cfg_diags d;
	lint("haproxy: {maxconn: 9000}\nservices: [{name: web, bind: 127.0.0.1:1, backlog: 100}]\n", &this_vm, &d);
	assert_int_equal(d.n_errors + d.n_warnings, 0); /* 18000 + 3 listeners + 10 <= 20000 */
	cfg_diags_release(&d);
	lint("haproxy: {maxconn: 12000}\nservices: [{name: web, bind: 127.0.0.1:1, backlog: 100}]\n", &this_vm, &d);
	assert_int_equal(d.n_errors, 1);
	/* 1 service + runtime + master sockets = 3 listeners; (20000 - 3 - 0 - 10) / 2 = 9993 */
	expect(&d, "haproxy.maxconn", CFG_SEV_ERROR, 1, 20, "about 24013 file descriptors");
	expect(&d, "haproxy.maxconn", CFG_SEV_ERROR, 0, 0, "at most 9993");
	cfg_diags_release(&d);
	struct cfg_sysfacts low_soft = this_vm;
	low_soft.nofile_soft = 1024;
	low_soft.nofile_hard = 524288;
	lint("services: [{name: web, bind: 127.0.0.1:1, health: {type: tcp}, expect: {servers: 20}}]\n", &low_soft, &d);
	assert_int_equal(d.n_errors, 0);
	/* 2 x 4096 + 3 listeners + 20 checks + 10 = 8225 */
	expect(&d, "haproxy.maxconn", CFG_SEV_WARNING, 0, 0, "about 8225 file descriptors");
	expect(&d, "haproxy.maxconn", CFG_SEV_WARNING, 0, 0, "ulimit -n 8225");
	cfg_diags_release(&d);
}

static void test_lint_backlog_and_concurrency(void **state)
{
	(void)state;
	struct cfg_diags d;
	struct cfg_sysfacts old_kernel = this_vm;
	old_kernel.somaxconn = 128;
	lint("services:\n  - {name: a, bind: 127.0.0.1:1}\n  - {name: b, bind: 127.0.0.1:2, backlog: 128}\n",
	     &old_kernel, &d);
	assert_int_equal(d.n_warnings, 1);
	expect(&d, "services[0].backlog", CFG_SEV_WARNING, 2, 5, "listen backlog 4096 (HAProxy's default");
	cfg_diags_release(&d);

	lint("services:\n  - {name: a, bind: 127.0.0.1:1, expect: {peak_concurrency: 5000}}\n"
	     "  - {name: b, bind: 127.0.0.1:2, maxconn: 1000, expect: {peak_concurrency: 1001}}\n"
	     "  - {name: c, bind: 127.0.0.1:3, maxconn: 1000, expect: {peak_concurrency: 1000}}\n",
	     &this_vm, &d);
	assert_int_equal(d.n_errors, 2);
	expect(&d, "services[0].expect.peak_concurrency", CFG_SEV_ERROR, 2, 61, "haproxy.maxconn is 4096");
	expect(&d, "services[1].expect.peak_concurrency", CFG_SEV_ERROR, 0, 0, "the service's maxconn is 1000");
	cfg_diags_release(&d);

	lint("services:\n  - {name: a, bind: 127.0.0.1:1, expect: {peak_concurrency: 1500, servers: 10}}\n"
	     "  - {name: b, bind: 127.0.0.1:2, expect: {peak_concurrency: 1000, servers: 10}}\n",
	     &this_vm, &d);
	assert_int_equal(d.n_errors, 1);
	expect(&d, "services[0].expect.peak_concurrency", CFG_SEV_ERROR, 0, 0, "10 x default_capacity 100 = 1000");
	expect(&d, "services[0].expect.peak_concurrency", CFG_SEV_ERROR, 0, 0, "plan at least 15 servers");
	cfg_diags_release(&d);
}

static void test_lint_budgets_and_timeouts(void **state)
{
	(void)state;
	struct cfg_diags d;
	lint("haproxy: {maxconn: 1500}\n"
	     "etcd: {request_timeout: 5s}\n"
	     "services:\n  - {name: a, bind: 127.0.0.1:1, maxconn: 1000, drain_timeout: 10s}\n"
	     "  - {name: b, bind: 127.0.0.1:2, maxconn: 1000}\n",
	     &this_vm, &d);
	assert_int_equal(d.n_errors, 0);
	assert_int_equal(d.n_warnings, 3);
	expect(&d, "haproxy.maxconn", CFG_SEV_WARNING, 1, 20, "add up to 2000");
	expect(&d, "services[0].drain_timeout", CFG_SEV_WARNING, 4, 64, "shorter than timeouts.server 30s");
	expect(&d, "etcd.request_timeout", CFG_SEV_WARNING, 2, 25, "at most 3333ms");
	assert_string_equal(find(&d, "etcd.request_timeout")->rule, "lease-timeout");
	cfg_diags_release(&d);
}

static void test_lint_rules_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < cfg_lint_rules_len; i++) {
		assert_non_null(cfg_lint_rules[i].run);
		assert_true(strlen(cfg_lint_rules[i].doc) > 80);
		for (size_t j = i + 1; j < cfg_lint_rules_len; j++)
			assert_string_not_equal(cfg_lint_rules[i].id, cfg_lint_rules[j].id);
	}
	/* defaults are clean on this machine's facts */
	struct cfg_diags d;
	lint(minimal, &this_vm, &d);
	assert_int_equal(d.n_errors + d.n_warnings, 0);
	cfg_diags_release(&d);
}

static void test_sysfacts(void **state)
{
	(void)state;
	char *dir = fx_tmpdir("proc");
	const char *dirs[] = { "sys", "sys/net", "sys/net/ipv4", "sys/net/core" };
	for (size_t i = 0; i < 4; i++) {
		char *p = fx_path(dir, dirs[i]);
		assert_int_equal(mkdir(p, 0700), 0);
		free(p);
	}
	const char *files[][2] = { { "sys/net/ipv4/ip_local_port_range", "1024\t65535\n" },
				   { "sys/net/core/somaxconn", "128\n" },
				   { "sys/net/ipv4/tcp_fin_timeout", "garbage\n" } };
	for (size_t i = 0; i < 3; i++) {
		char *p = fx_path(dir, files[i][0]);
		fx_write_file(p, files[i][1]);
		free(p);
	}
	struct cfg_sysfacts f;
	cfg_sysfacts_read_from(&f, dir);
	assert_int_equal(f.port_lo, 1024);
	assert_int_equal(f.port_hi, 65535);
	assert_int_equal(f.somaxconn, 128);
	assert_int_equal(f.fin_timeout_s, -1); /* unparsable */
	assert_int_equal(f.tw_reuse, -1);      /* missing */
	assert_true(f.nofile_soft > 0);
	cfg_sysfacts_read(&f); /* the real machine */
	assert_true(f.port_lo > 0 && f.port_hi >= f.port_lo);
	assert_true(f.somaxconn > 0);
	free(dir);
}

static void test_utf8_check(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		size_t bad_at;
	} rows[] = {
		{ "plain", 5 }, { "caf\xc3\xa9", 5 }, { "\xe2\x82\xac", 3 }, { "\xf0\x9f\x98\x80", 4 },
		{ "a\xc0\x80", 1 },         /* overlong NUL */
		{ "\xe0\x80\x80", 0 },     /* overlong */
		{ "\xed\xa0\x80", 0 },     /* surrogate */
		{ "\xf4\x90\x80\x80", 0 }, /* above U+10FFFF */
		{ "ab\xe2\x82", 2 },        /* cut short */
		{ "\xff", 0 },               { "x\x80", 1 },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		assert_int_equal(utf8_check(rows[i].s, strlen(rows[i].s)), rows[i].bad_at);
	assert_int_equal(utf8_seq_len("\xc3\xa9", 1), 0); /* not enough bytes available */
}

/* ---- docs and paths ---- */

static void test_docs_cover_every_key(void **state)
{
	(void)state;
	char *path = xasprintf("%s/docs/config.md", top());
	char *doc = fx_read_file(path);
	assert_non_null(doc);
	for (size_t i = 0; i < cfg_schema_len; i++) {
		char *needle = xasprintf("`%s`", cfg_schema[i].path);
		if (!strstr(doc, needle))
			fail_msg("docs/config.md does not document %s", cfg_schema[i].path);
		free(needle);
	}
	for (size_t i = 0; i < cfg_lint_rules_len; i++) {
		char *needle = xasprintf("`%s`", cfg_lint_rules[i].id);
		if (!strstr(doc, needle))
			fail_msg("docs/config.md does not document lint rule %s", cfg_lint_rules[i].id);
		free(needle);
	}
	free(doc);
	free(path);
}

static void test_path_resolution(void **state)
{
	(void)state;
	bool explicit_path = true;
	unsetenv("VELTRIX_CONFIG");
	assert_string_equal(cfg_path_resolve(NULL, &explicit_path), "veltrix.yaml");
	assert_false(explicit_path);
	assert_string_equal(cfg_path_resolve("x.yaml", &explicit_path), "x.yaml");
	assert_true(explicit_path);
	setenv("VELTRIX_CONFIG", "/etc/veltrix.yaml", 1);
	assert_string_equal(cfg_path_resolve(NULL, &explicit_path), "/etc/veltrix.yaml");
	assert_true(explicit_path);
	assert_string_equal(cfg_path_resolve("x.yaml", NULL), "x.yaml");
	setenv("VELTRIX_CONFIG", "", 1);
	assert_string_equal(cfg_path_resolve(NULL, NULL), "veltrix.yaml");

	/* no file named anywhere and no ./veltrix.yaml: the defaults */
	char *dir = fx_tmpdir("cwd"), *old = getcwd(NULL, 0);
	assert_int_equal(chdir(dir), 0);
	struct cfg_diags d;
	cfg_diags_init(&d, 0);
	struct vx_config *c = cfg_load_resolved(NULL, &d);
	assert_non_null(c);
	assert_null(c->path);
	cfg_free(c);
	fx_write_file("veltrix.yaml", minimal);
	c = cfg_load_resolved(NULL, &d);
	assert_non_null(c);
	assert_int_equal(c->n_services, 1);
	cfg_free(c);
	assert_null(cfg_load_resolved("nope.yaml", &d)); /* named explicitly: must exist */
	assert_int_equal(d.n_errors, 1);
	cfg_diags_release(&d);
	assert_int_equal(chdir(old), 0);
	unsetenv("VELTRIX_CONFIG");
	free(old);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_schema_rows_are_consistent),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_minimal_service_gets_defaults),
		cmocka_unit_test(test_example_file_is_valid),
		cmocka_unit_test(test_value_forms),
		cmocka_unit_test(test_every_problem_in_one_run),
		cmocka_unit_test(test_unknown_keys_suggest),
		cmocka_unit_test(test_rejected_values_do_not_cascade),
		cmocka_unit_test(test_pairs_and_warnings),
		cmocka_unit_test(test_positions),
		cmocka_unit_test(test_hostile_inputs),
		cmocka_unit_test(test_health_path_one_rule),
		cmocka_unit_test(test_file_errors),
		cmocka_unit_test(test_diag_cap_and_render),
		cmocka_unit_test(test_diag_sanitizes_and_sorts),
		cmocka_unit_test(test_lint_ephemeral_ports),
		cmocka_unit_test(test_lint_fd_limit),
		cmocka_unit_test(test_lint_backlog_and_concurrency),
		cmocka_unit_test(test_lint_budgets_and_timeouts),
		cmocka_unit_test(test_lint_rules_table),
		cmocka_unit_test(test_sysfacts),
		cmocka_unit_test(test_utf8_check),
		cmocka_unit_test(test_docs_cover_every_key),
		cmocka_unit_test(test_path_resolution),
	};
	return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
