/* `veltrix status`, `register` and `deregister` as a user runs them, against a real etcd and a
 * real HAProxy (a backend named like the service, servers added through its runtime socket):
 * text and JSON with valid, lease-bound and rejected keys and the data-plane columns; HAProxy
 * or etcd unreachable; bad flags; a plain and a lease-bound registration (refreshed, lost and
 * re-granted, revoked on SIGTERM); refused values that write nothing; deregistration through
 * draining, --now, a missing key, and a key that changes during the drain wait. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/net.h"
#include "common/proc.h"
#include "common/timeutil.h"
#include "fx.h"
#include "fx_etcd_client.h"
#include "fx_haproxy.h"
#include "registry/etcd.h"
#include "registry/reg.h"
#include "registry/reg_status.h"

#define RUN_MS 20000

static struct fx_etcd etcd;
static struct fx_haproxy hap;
static char *dir, *cfg, *cfg_nohap;
static int port_a, port_b;

static char *config_text(const char *socket)
{
	return xasprintf("etcd:\n  endpoints: [%s]\n"
			 "haproxy:\n  mode: attach\n  runtime_socket: %s\n"
			 "services:\n  - name: web\n    bind: 127.0.0.1:%d\n    drain_timeout: 1s\n"
			 "    timeouts: {server: 1s}\n    allow: [127.0.0.0/8]\n"
			 "  - name: pg\n    bind: 127.0.0.1:%d\n    mode: tcp\n",
			 etcd.url, socket, net_free_port(), net_free_port());
}

static int setup(void **state)
{
	(void)state;
	fx_etcd_start(&etcd);
	int fe = net_free_port();
	char *body = xasprintf("frontend fe_web\n    bind 127.0.0.1:%d\n    default_backend web\n"
			       "backend web\n    balance roundrobin\n",
			       fe);
	fx_haproxy_start(&hap, body);
	free(body);
	port_a = net_free_port();
	port_b = net_free_port();
	dir = fx_tmpdir("status");
	cfg = fx_path(dir, "veltrix.yaml");
	cfg_nohap = fx_path(dir, "nohap.yaml");
	char *text = config_text(hap.runtime_sock), *missing = fx_path(dir, "missing.sock");
	fx_write_file(cfg, text);
	free(text);
	text = config_text(missing);
	fx_write_file(cfg_nohap, text);
	free(text);
	free(missing);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	fx_haproxy_stop(&hap);
	fx_etcd_free(&etcd);
	free(cfg);
	free(cfg_nohap);
	free(dir);
	return 0;
}

/* ---- helpers ---- */

static void etcdctl(const char *const args[], char **out)
{
	char *o = NULL;
	if (fx_etcdctl(&etcd, &o, args) != 0)
		fail_msg("etcdctl %s %s failed: %s", args[0], args[1] ? args[1] : "", o ? o : "");
	if (out)
		*out = o;
	else
		free(o);
}

static void put(const char *key, const char *value)
{
	const char *const args[] = { "put", key, value, NULL };
	etcdctl(args, NULL);
}

static void del(const char *key)
{
	const char *const args[] = { "del", key, NULL };
	etcdctl(args, NULL);
}

/* The current record of key (found false when absent); value copied into *value when asked. */
struct rec {
	bool found;
	int64_t lease, mod_revision, revision;
	char *value;
};

static struct rec get(const char *key)
{
	struct etcd_client *c = fxc_client(etcd.url, NULL);
	struct etcd_range_req req = { .key = key };
	struct etcd_resp r;
	struct vxerr err;
	if (etcd_range(c, &req, &r, &err) != 0)
		fail_msg("range %s: %s", key, err.msg);
	struct rec out = { .found = r.n_kvs > 0, .revision = r.header.revision };
	if (out.found) {
		out.lease = r.kvs[0].lease;
		out.mod_revision = r.kvs[0].mod_revision;
		out.value = xstrndup(r.kvs[0].value ? r.kvs[0].value : "", r.kvs[0].value_len);
	}
	etcd_resp_release(&r);
	etcd_client_free(c);
	return out;
}

static int64_t lease_ttl(int64_t id)
{
	struct etcd_client *c = fxc_client(etcd.url, NULL);
	struct etcd_resp r;
	struct vxerr err;
	if (etcd_lease_ttl(c, id, false, &r, &err) != 0)
		fail_msg("lease ttl: %s", err.msg);
	int64_t ttl = r.ttl;
	etcd_resp_release(&r);
	etcd_client_free(c);
	return ttl;
}

static void hap_cmd_ok(const char *cmd)
{
	char *r = fx_haproxy_cmd(hap.runtime_sock, cmd);
	if (!r || (strcmp(r, "\n") != 0 && !strstr(r, "New server registered.")))
		fail_msg("'%s' -> '%s'", cmd, r ? r : "(nothing)");
	free(r);
}

/* A veltrix command left running in the background. */
struct bg {
	pid_t pid;
	char *out_path, *err_path;
};

static void bg_start(struct bg *b, const char *const *args)
{
	static int seq;
	const char *argv[32] = { fx_veltrix_bin() };
	size_t n = 1;
	for (size_t i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char name[32];
	snprintf(name, sizeof(name), "bg%d.out", seq);
	b->out_path = fx_path(dir, name);
	snprintf(name, sizeof(name), "bg%d.err", seq++);
	b->err_path = fx_path(dir, name);
	struct proc_opts o = { .stdout_path = b->out_path, .stderr_path = b->err_path, .die_with_parent = true };
	struct vxerr err;
	b->pid = proc_spawn((char *const *)(uintptr_t)argv, &o, &err);
	if (b->pid < 0)
		fail_msg("%s", err.msg);
	fx_track(b->pid);
}

/* The exit status after at most timeout_ms (the test fails when it runs on). */
static int bg_wait(struct bg *b, int timeout_ms)
{
	int st;
	if (proc_wait(b->pid, timeout_ms, &st) != 0) {
		proc_stop(b->pid, 500);
		fail_msg("veltrix still running after %d ms", timeout_ms);
	}
	fx_untrack(b->pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *bg_out(const struct bg *b)
{
	return fx_read_file(b->out_path);
}

static void bg_free(struct bg *b)
{
	free(b->out_path);
	free(b->err_path);
}

struct key_wait {
	const char *key;
	const char *needle; /* in the value; NULL: present; "" : absent */
	int64_t not_lease;  /* present with a lease other than this */
};

static bool key_cond(void *arg)
{
	const struct key_wait *w = arg;
	struct rec r = get(w->key);
	bool ok = w->needle && !w->needle[0] ? !r.found
		  : !r.found			 ? false
		  : w->needle			 ? strstr(r.value, w->needle) != NULL
						 : r.lease != 0 && r.lease != w->not_lease;
	free(r.value);
	return ok;
}

static void wait_key(const char *key, const char *needle, int64_t not_lease, int ms)
{
	struct key_wait w = { key, needle, not_lease };
	if (!fx_wait(key_cond, &w, ms))
		fail_msg("%s: no '%s' within %d ms", key, needle ? needle : "(lease)", ms);
}

static json_t *status_json(const char *config, const char *service)
{
	struct fx_run r;
	if (service)
		fx_veltrix(&r, RUN_MS, "status", "-c", config, "--json", service, NULL);
	else
		fx_veltrix(&r, RUN_MS, "status", "-c", config, "--json", NULL);
	if (r.status != 0)
		fail_msg("status exit %d: %s", r.status, r.err);
	json_error_t je;
	json_t *j = json_loads(r.out, 0, &je);
	if (!j)
		fail_msg("status --json is not JSON (%s): %s", je.text, r.out);
	fx_run_free(&r);
	return j;
}

static const json_t *find_named(const json_t *arr, const char *name)
{
	const json_t *x;
	size_t i;
	json_array_foreach(arr, i, x)
		if (strcmp(json_string_value(json_object_get(x, "name")), name) == 0)
			return x;
	fail_msg("nothing named %s", name);
	return NULL;
}

static const char *jstr(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

/* The output line whose first word is word. */
static char *line_of(const char *text, const char *word)
{
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		const char *q = p + strspn(p, " ");
		if (strncmp(q, word, strlen(word)) == 0 && q[strlen(word)] == ' ')
			return xstrndup(p, n);
		p += n + (e != NULL);
	}
	fail_msg("no line for %s in:\n%s", word, text);
	return NULL;
}

/* ---- status ---- */

static void test_status_with_haproxy(void **state)
{
	(void)state;
	char *lease_hex = NULL;
	char *v1 = xasprintf("{\"address\":\"127.0.0.1\",\"port\":%d,\"capacity\":10,\"version\":\"2.0\"}", port_a);
	put("/veltrix/services/web/web-1", v1);
	free(v1);
	const char *const grant[] = { "lease", "grant", "30", NULL };
	etcdctl(grant, &lease_hex);
	char *hex = xstrndup(lease_hex + 6, strcspn(lease_hex + 6, " ")); /* "lease <hex> granted..." */
	char *lease_flag = xasprintf("--lease=%s", hex);
	const char *const leased[] = { "put", lease_flag, "/veltrix/services/web/web-2",
				       "{\"address\":\"127.0.0.2\",\"port\":8080,\"zone\":\"z1\"}", NULL };
	etcdctl(leased, NULL);
	put("/veltrix/services/web/web-9", "{\"address\":\"web-9.local\",\"port\":8080}");
	put("/veltrix/services/web/a;show info", "{\"address\":\"127.0.0.1\",\"port\":8080}");
	char *cmd = xasprintf("add server web/web-1 127.0.0.1:%d", port_a);
	hap_cmd_ok(cmd);
	free(cmd);
	hap_cmd_ok("enable server web/web-1");
	cmd = xasprintf("add server web/ghost 127.0.0.1:%d weight 7", port_b);
	hap_cmd_ok(cmd);
	free(cmd);
	/* web-9's latest value is rejected; a controller keeps serving its last valid one (D13) */
	cmd = xasprintf("add server web/web-9 127.0.0.1:%d", port_b);
	hap_cmd_ok(cmd);
	free(cmd);

	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "status", "-c", cfg, NULL);
	assert_int_equal(r.status, 0);
	char *want = xasprintf("haproxy: %s\n", hap.runtime_sock);
	assert_non_null(strstr(r.out, want));
	free(want);
	assert_non_null(strstr(r.out, "\nweb: 2 instances, configured, HAProxy backend with 3 servers\n"));
	assert_non_null(strstr(r.out, "\npg: 0 instances, configured, no HAProxy backend named pg\n"));
	char *l = line_of(r.out, "web-1");
	assert_non_null(strstr(l, " 127.0.0.1 "));
	assert_non_null(strstr(l, " 10 "));
	assert_non_null(strstr(l, " 2.0 "));
	assert_non_null(strstr(l, " no check ")); /* enabled, checks off: HAProxy's own word */
	free(l);
	l = line_of(r.out, "web-2");
	assert_non_null(strstr(l, " z1 "));
	assert_non_null(strstr(l, " absent"));
	free(l);
	l = line_of(r.out, "ghost");
	assert_non_null(strstr(l, " unregistered "));
	assert_non_null(strstr(l, " MAINT "));
	free(l);
	l = line_of(r.out, "web-9");
	assert_non_null(strstr(l, " rejected "));
	free(l);
	assert_non_null(strstr(r.out, "note: web-9: its registry value was rejected (bad_address"));
	assert_non_null(strstr(r.out, "rejected: 2 keys"));
	l = line_of(r.out, "/veltrix/services/web/web-9");
	assert_non_null(strstr(l, "bad_address"));
	free(l);
	l = line_of(r.out, "/veltrix/services/web/a;show\\x20info");
	assert_non_null(strstr(l, "bad_name"));
	free(l);
	fx_run_free(&r);

	json_t *j = status_json(cfg, NULL);
	assert_true(json_is_true(json_object_get(json_object_get(j, "haproxy"), "reachable")));
	const json_t *reg = json_object_get(j, "registry");
	assert_int_equal(json_integer_value(json_object_get(reg, "instances")), 2);
	assert_int_equal(json_integer_value(json_object_get(reg, "rejected")), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(reg, "endpoints"), 0)), etcd.url);
	const json_t *web = find_named(json_object_get(j, "services"), "web");
	const json_t *w1 = find_named(json_object_get(web, "instances"), "web-1");
	const json_t *h1 = json_object_get(w1, "haproxy");
	assert_true(json_is_true(json_object_get(h1, "present")));
	assert_string_equal(jstr(h1, "state"), "no check");
	assert_int_equal(json_integer_value(json_object_get(h1, "weight")), 1);
	assert_int_equal(json_integer_value(json_object_get(h1, "sessions")), 0);
	assert_int_equal(json_integer_value(json_object_get(h1, "queue")), 0);
	assert_true(json_is_null(json_object_get(w1, "lease")));
	const json_t *w2 = find_named(json_object_get(web, "instances"), "web-2");
	assert_string_equal(jstr(w2, "lease"), hex); /* as etcdctl prints it */
	json_int_t ttl = json_integer_value(json_object_get(w2, "lease_ttl_s"));
	assert_true(ttl >= 1 && ttl <= 30);
	assert_true(json_is_false(json_object_get(json_object_get(w2, "haproxy"), "present")));
	const json_t *ghost = find_named(json_object_get(web, "haproxy_only"), "ghost");
	assert_string_equal(jstr(ghost, "state"), "MAINT");
	assert_true(json_is_false(json_object_get(ghost, "update_rejected")));
	assert_true(json_is_true(json_object_get(find_named(json_object_get(web, "haproxy_only"), "web-9"), "update_rejected")));
	const json_t *rej = json_object_get(j, "rejected");
	assert_int_equal(json_array_size(rej), 2);
	assert_string_equal(jstr(json_array_get(rej, 0), "reason"), "bad_name");
	assert_string_equal(jstr(json_array_get(rej, 1), "reason"), "bad_address");
	json_decref(j);

	/* one service; an unknown one */
	j = status_json(cfg, "pg");
	assert_int_equal(json_array_size(json_object_get(j, "services")), 1);
	assert_int_equal(json_array_size(json_object_get(j, "rejected")), 0);
	json_decref(j);
	fx_veltrix(&r, RUN_MS, "status", "-c", cfg, "nope", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "no service 'nope'"));
	fx_run_free(&r);

	hap_cmd_ok("set server web/web-1 state maint");
	char *resp = fx_haproxy_cmd(hap.runtime_sock, "del server web/web-1");
	free(resp);
	resp = fx_haproxy_cmd(hap.runtime_sock, "del server web/ghost");
	free(resp);
	resp = fx_haproxy_cmd(hap.runtime_sock, "del server web/web-9");
	free(resp);
	del("/veltrix/services/web/web-1");
	del("/veltrix/services/web/web-9");
	del("/veltrix/services/web/a;show info");
	const char *const revoke[] = { "lease", "revoke", hex, NULL };
	etcdctl(revoke, NULL);
	free(lease_flag);
	free(hex);
	free(lease_hex);
}

static void test_status_haproxy_unreachable(void **state)
{
	(void)state;
	char *v = xasprintf("{\"address\":\"127.0.0.1\",\"port\":%d}", port_a);
	put("/veltrix/services/web/web-3", v);
	free(v);
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "status", "-c", cfg_nohap, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "haproxy: not reachable at "));
	assert_non_null(strstr(r.out, "missing.sock (No such file or directory); registry only\n"));
	char *l = line_of(r.out, "web-3");
	assert_null(strstr(l, "absent"));
	free(l);
	assert_null(strstr(r.out, "HWEIGHT"));
	fx_run_free(&r);
	json_t *j = status_json(cfg_nohap, "web");
	const json_t *hap_j = json_object_get(j, "haproxy");
	assert_true(json_is_false(json_object_get(hap_j, "reachable")));
	assert_non_null(jstr(hap_j, "error"));
	const json_t *web = find_named(json_object_get(j, "services"), "web");
	assert_true(json_is_null(json_object_get(find_named(json_object_get(web, "instances"), "web-3"), "haproxy")));
	assert_true(json_is_null(json_object_get(web, "haproxy_only")));
	json_decref(j);
	/* --no-haproxy does not even ask */
	fx_veltrix(&r, RUN_MS, "status", "-c", cfg, "--no-haproxy", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "haproxy: not asked"));
	fx_run_free(&r);
	del("/veltrix/services/web/web-3");
}

static void test_etcd_unreachable_and_bad_flags(void **state)
{
	(void)state;
	char *a = xasprintf("http://127.0.0.1:%d", net_free_port()), *b = xasprintf("http://127.0.0.1:%d", net_free_port());
	char *both = xasprintf("%s,%s", a, b);
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "status", "--etcd", both, NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, a));
	assert_non_null(strstr(r.err, b));
	assert_non_null(strstr(r.err, "cannot read the registry"));
	assert_string_equal(r.out, "");
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "register", "--etcd", both, "--service", "web", "--instance", "w", "--address", "127.0.0.1",
		   "--port", "80", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, a));
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "deregister", "--etcd", both, "--service", "web", "--instance", "w", NULL);
	assert_int_equal(r.status, 2);
	assert_non_null(strstr(r.err, b));
	fx_run_free(&r);

	static const char *const bad[][8] = {
		{ "status", "--bogus" },
		{ "status", "--etcd" },
		{ "status", "web", "pg" },
		{ "status", "Bad;name" },
		{ "status", "--etcd", "ftp://x" },
		{ "register", "--service", "web", "--instance", "w", "--address", "127.0.0.1" },
		{ "register", "--service", "web", "--instance", "w", "--address", "127.0.0.1", "--port" },
		{ "deregister", "--service", "web" },
		{ "deregister", "--service", "web", "--instance", "w", "--now", "--drain-wait", "1s" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *argv[12] = { fx_veltrix_bin() };
		size_t n = 1;
		for (size_t k = 0; k < 8 && bad[i][k]; k++)
			argv[n++] = bad[i][k];
		argv[n] = NULL;
		fx_run(&r, RUN_MS, argv);
		if (r.status != 2)
			fail_msg("row %zu (%s %s): exit %d", i, bad[i][0], bad[i][1], r.status);
		assert_true(r.err[0] != '\0');
		fx_run_free(&r);
	}
	free(a);
	free(b);
	free(both);
}

/* ---- register ---- */

static void test_register_plain(void **state)
{
	(void)state;
	char port[8];
	snprintf(port, sizeof(port), "%d", port_a);
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "register", "--etcd", etcd.url, "--service", "web", "--instance", "web-5", "--address",
		   "127.0.0.1", "--port", port, "--capacity", "40", "--state", "down", "--weight", "12", "--zone", "z2",
		   "--version", "3.1", "--tag", "a", "--tag", "b", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "registered /veltrix/services/web/web-5 = {"));
	fx_run_free(&r);
	struct rec k = get("/veltrix/services/web/web-5");
	assert_true(k.found);
	assert_int_equal(k.lease, 0);
	struct reg_instance in;
	struct reg_fail fail;
	assert_int_equal(reg_value_decode(k.value, strlen(k.value), &in, &fail), 0);
	assert_string_equal(in.address, "127.0.0.1");
	assert_int_equal(in.port, port_a);
	assert_int_equal(in.capacity, 40);
	assert_int_equal(in.state, REG_STATE_DOWN);
	assert_int_equal(in.weight, 12);
	assert_string_equal(in.zone, "z2");
	assert_string_equal(in.version, "3.1");
	assert_int_equal(in.n_tags, 2);
	reg_instance_release(&in);
	free(k.value);
	/* a second registration replaces the value and says so */
	fx_veltrix(&r, RUN_MS, "register", "-c", cfg, "--service", "web", "--instance", "web-5", "--address", "::1",
		   "--port", port, NULL);
	assert_int_equal(r.status, 2); /* ::1 is outside web's allow-list (127.0.0.0/8) */
	assert_non_null(strstr(r.err, "address_not_allowed"));
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "register", "-c", cfg, "--service", "web", "--instance", "web-5", "--address",
		   "127.0.0.9", "--port", port, NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "replacing the previous value"));
	fx_run_free(&r);
	del("/veltrix/services/web/web-5");
}

static void test_register_refused_writes_nothing(void **state)
{
	(void)state;
	static const struct {
		const char *instance, *address, *port, *reason;
	} rows[] = {
		{ "a;b", "127.0.0.1", "80", "bad_name" },
		{ "a b", "127.0.0.1", "80", "bad_name" },
		{ "w", "01.02.03.04", "80", "bad_address" },
		{ "w", "web.local", "80", "bad_address" },
		{ "w", "127.0.0.1", "0", "bad_port" },
		{ "w", "127.0.0.1", "65536", "bad_port" },
		{ "w", "127.0.0.1", "80abc", "bad_type" },
	};
	struct rec before = get("/veltrix/services/web/w");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct fx_run r;
		fx_veltrix(&r, RUN_MS, "register", "--etcd", etcd.url, "--service", "web", "--instance", rows[i].instance,
			   "--address", rows[i].address, "--port", rows[i].port, NULL);
		if (r.status != 2 || !strstr(r.err, rows[i].reason))
			fail_msg("row %zu: exit %d, stderr %s", i, r.status, r.err);
		assert_non_null(strstr(r.err, "refused"));
		assert_string_equal(r.out, "");
		fx_run_free(&r);
	}
	struct rec after = get("/veltrix/services/web/w");
	assert_false(after.found);
	assert_int_equal(after.revision, before.revision); /* nothing at all was written */
	free(before.value);
	free(after.value);
}

static void test_register_ttl(void **state)
{
	(void)state;
	const char *key = "/veltrix/services/web/web-t";
	char port[8];
	snprintf(port, sizeof(port), "%d", port_a);
	struct bg b;
	const char *const args[] = { "register", "--etcd", etcd.url, "--service", "web", "--instance", "web-t",
				     "--address", "127.0.0.1", "--port", port, "--ttl", "3s", NULL };
	bg_start(&b, args);
	wait_key(key, NULL, 0, 10000);
	struct rec k = get(key);
	int64_t first = k.lease;
	free(k.value);
	assert_true(first != 0);
	/* four seconds later, past its 3 s TTL, the lease is still alive: it is being renewed */
	time_sleep_us(4 * USEC_PER_SEC);
	k = get(key);
	assert_true(k.found);
	assert_true(k.lease == first);
	free(k.value);
	int64_t ttl = lease_ttl(first);
	assert_true(ttl >= 1 && ttl <= 3);

	/* the lease lost (revoked behind its back): a new lease, the key written again */
	char hex[17];
	reg_lease_hex(first, hex);
	const char *const revoke[] = { "lease", "revoke", hex, NULL };
	etcdctl(revoke, NULL);
	wait_key(key, NULL, first, 10000);
	k = get(key);
	int64_t second = k.lease;
	free(k.value);

	/* SIGTERM: the lease is revoked, the key is gone at once, exit 0 */
	kill(b.pid, SIGTERM);
	assert_int_equal(bg_wait(&b, 10000), 0);
	k = get(key);
	assert_false(k.found);
	assert_true(lease_ttl(second) == -1);
	char *out = bg_out(&b);
	reg_lease_hex(second, hex);
	char *want = xasprintf("revoked lease %s: %s is gone", hex, key);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "keeping lease alive (TTL 3s)"));
	char *err = fx_read_file(b.err_path);
	assert_non_null(strstr(err, "lease lost; registering again"));
	assert_non_null(strstr(err, "registered again"));
	free(err);
	free(want);
	free(out);
	bg_free(&b);
}

/* ---- deregister ---- */

static void test_deregister_drains_then_deletes(void **state)
{
	(void)state;
	const char *key = "/veltrix/services/web/web-d";
	char *lease_out = NULL;
	const char *const grant[] = { "lease", "grant", "60", NULL };
	etcdctl(grant, &lease_out);
	char *hex = xstrndup(lease_out + 6, strcspn(lease_out + 6, " "));
	char *flag = xasprintf("--lease=%s", hex);
	const char *const leased[] = { "put", flag, key, "{\"address\":\"127.0.0.1\",\"port\":81,\"x-team\":{\"a\":1}}", NULL };
	etcdctl(leased, NULL);
	struct rec k = get(key);
	int64_t lease = k.lease;
	free(k.value);

	struct bg b;
	const char *const args[] = { "deregister", "-c", cfg, "--service", "web", "--instance", "web-d", NULL };
	bg_start(&b, args);
	wait_key(key, "\"state\":\"draining\"", 0, 10000);
	k = get(key);
	assert_true(k.lease == lease); /* same lease */
	assert_non_null(strstr(k.value, "\"x-team\":{\"a\":1}")); /* unknown members kept */
	free(k.value);
	assert_int_equal(bg_wait(&b, 10000), 0);
	k = get(key);
	assert_false(k.found);
	char *out = bg_out(&b);
	assert_non_null(strstr(out, "state draining"));
	assert_non_null(strstr(out, "waiting 1s (drain_timeout of service web)"));
	assert_non_null(strstr(out, "deleted /veltrix/services/web/web-d"));
	free(out);
	bg_free(&b);
	const char *const revoke[] = { "lease", "revoke", hex, NULL };
	etcdctl(revoke, NULL);
	free(flag);
	free(hex);
	free(lease_out);
}

static void test_deregister_now_missing_changed(void **state)
{
	(void)state;
	const char *key = "/veltrix/services/web/web-n";
	put(key, "{\"address\":\"127.0.0.1\",\"port\":82}");
	struct fx_run r;
	fx_veltrix(&r, RUN_MS, "deregister", "--etcd", etcd.url, "--service", "web", "--instance", "web-n", "--now", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "deleted /veltrix/services/web/web-n"));
	fx_run_free(&r);
	assert_false(get(key).found);
	fx_veltrix(&r, RUN_MS, "deregister", "--etcd", etcd.url, "--service", "web", "--instance", "web-n", "--now", NULL);
	assert_int_equal(r.status, 1);
	assert_non_null(strstr(r.err, "no such instance"));
	fx_run_free(&r);
	fx_veltrix(&r, RUN_MS, "deregister", "--etcd", etcd.url, "--service", "web", "--instance", "web-n", NULL);
	assert_int_equal(r.status, 1);
	fx_run_free(&r);

	/* a rejected value: nothing to drain, deleted at once */
	put(key, "{\"address\":\"127.0.0.1\",\"port\":\"82\"}");
	fx_veltrix(&r, RUN_MS, "deregister", "--etcd", etcd.url, "--service", "web", "--instance", "web-n",
		   "--drain-wait", "30s", NULL);
	assert_int_equal(r.status, 0);
	assert_non_null(strstr(r.out, "rejected (bad_type)"));
	fx_run_free(&r);
	assert_false(get(key).found);

	/* written again during the drain wait: not deleted, exit 1 */
	put(key, "{\"address\":\"127.0.0.1\",\"port\":82}");
	struct bg b;
	const char *const args[] = { "deregister", "--etcd", etcd.url, "--service", "web", "--instance", "web-n",
				     "--drain-wait", "2s", NULL };
	bg_start(&b, args);
	wait_key(key, "draining", 0, 10000);
	put(key, "{\"address\":\"127.0.0.1\",\"port\":82,\"state\":\"up\"}");
	assert_int_equal(bg_wait(&b, 10000), 1);
	struct rec k = get(key);
	assert_true(k.found);
	assert_non_null(strstr(k.value, "\"up\""));
	free(k.value);
	char *err = fx_read_file(b.err_path);
	assert_non_null(strstr(err, "changed meanwhile"));
	free(err);
	bg_free(&b);
	del(key);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status_with_haproxy),
		cmocka_unit_test(test_status_haproxy_unreachable),
		cmocka_unit_test(test_etcd_unreachable_and_bad_flags),
		cmocka_unit_test(test_register_plain),
		cmocka_unit_test(test_register_refused_writes_nothing),
		cmocka_unit_test(test_register_ttl),
		cmocka_unit_test(test_deregister_drains_then_deletes),
		cmocka_unit_test(test_deregister_now_missing_changed),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
