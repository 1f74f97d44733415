/* Unit tests for the status report (src/registry/reg_status.h: merging the view with lease TTLs
 * and data-plane rows, the JSON shape of docs/registry.md, the text tables), the hand-written
 * registry values (src/registry/reg_write.h: fields validated exactly like the codec, hostile
 * inputs; the draining rewrite that keeps unknown members) and aligned text tables
 * (src/common/texttab.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/texttab.h"
#include "registry/reg.h"
#include "registry/reg_status.h"
#include "registry/reg_write.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define LEASE_A INT64_C(0x09cea21bf9359a09)
#define LEASE_B INT64_C(77)

static struct etcd_kv kv(const char *key, const char *value, int64_t rev, int64_t lease)
{
	return (struct etcd_kv){ .key = (char *)(uintptr_t)key, .key_len = strlen(key),
				 .value = (char *)(uintptr_t)value, .value_len = strlen(value),
				 .create_revision = rev, .mod_revision = rev, .version = 1, .lease = lease };
}

/* A registry with valid, lease-bound, draining, rejected (bad address, hostile name) keys. */
static struct reg_view *sample_view(void)
{
	struct etcd_kv kvs[] = {
		kv("/veltrix/services/api/api-1", "{\"address\":\"::1\",\"port\":9000}", 5, LEASE_B),
		kv("/veltrix/services/web/a;show info", "{\"address\":\"10.0.0.8\",\"port\":80}", 6, 0),
		kv("/veltrix/services/web/web-1",
		   "{\"address\":\"10.0.0.5\",\"port\":8080,\"capacity\":100,\"zone\":\"eu-1a\",\"version\":\"1.4.2\","
		   "\"tags\":[\"canary\"],\"load\":{\"inflight\":3,\"rps\":120.5},\"x-unknown\":[1,2]}",
		   7, LEASE_A),
		kv("/veltrix/services/web/web-2", "{\"address\":\"10.0.0.6\",\"port\":8080,\"state\":\"draining\",\"weight\":0}", 8, 0),
		kv("/veltrix/services/web/web-9", "{\"address\":\"web-9.local\",\"port\":8080}", 9, 0),
	};
	struct vxerr err;
	struct reg_view *v = reg_view_new(NULL, NULL, &err);
	assert_non_null(v);
	reg_view_load_snapshot(v, kvs, N_ELEMS(kvs), 12);
	return v;
}

static const struct reg_dp_server web_servers[] = {
	{ "ghost", "10.0.0.99:8080", "UP", "L7OK", 1, 4, 0, 9 },
	{ "web-1", "10.0.0.5:8080", "UP", "L7OK", 10, 2, 1, 3 },
	/* web-9's value is rejected in this listing; a controller still serves its last valid one */
	{ "web-9", "10.0.0.9:8080", "UP", "L7OK", 1, 0, 0, 2 },
};
static const struct reg_dp_backend backends[] = {
	{ "other", NULL, 0 },
	{ "web", web_servers, N_ELEMS(web_servers) },
};
static const struct reg_lease_ttl ttls[] = { { LEASE_B, REG_TTL_GONE }, { LEASE_A, 7 } };
static const char *const configured[] = { "web", "pg" };
static const char *const endpoints[] = { "http://127.0.0.1:2379" };

static struct reg_status_input input(const struct reg_view *v, bool dp_up)
{
	return (struct reg_status_input){
		.view = v, .endpoints = endpoints, .n_endpoints = 1, .configured = configured, .n_configured = 2,
		.ttls = ttls, .n_ttls = N_ELEMS(ttls), .dp_socket = "/run/hap.sock",
		.dp_error = dp_up ? NULL : "connection refused", .backends = dp_up ? backends : NULL,
		.n_backends = dp_up ? N_ELEMS(backends) : 0,
	};
}

static json_t *parse(const char *s)
{
	json_error_t je;
	json_t *j = json_loads(s, 0, &je);
	if (!j)
		fail_msg("not JSON: %s: %s", je.text, s);
	return j;
}

/* obj has exactly the comma-separated keys. */
static void assert_keys(const json_t *obj, const char *keys)
{
	assert_true(json_is_object(obj));
	char *list = xstrdup(keys);
	size_t n = 0;
	for (char *k = list, *end; k && *k; k = end ? end + 1 : NULL, n++) {
		end = strchr(k, ',');
		if (end)
			*end = '\0';
		if (!json_object_get(obj, k))
			fail_msg("missing key '%s'", k);
	}
	assert_int_equal(json_object_size(obj), n);
	free(list);
}

#define INSTANCE_KEYS                                                                                   \
	"name,key,address,port,capacity,state,weight,zone,version,tags,load,lease,lease_ttl_s,"       \
	"create_revision,mod_revision,update_rejected,haproxy"
#define DP_KEYS "present,state,weight,sessions,queue,rtime_ms,check"

static const json_t *service(const json_t *root, const char *name)
{
	const json_t *svcs = json_object_get(root, "services"), *s;
	size_t i;
	json_array_foreach(svcs, i, s)
		if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
			return s;
	fail_msg("no service %s", name);
	return NULL;
}

static const json_t *instance(const json_t *svc, const char *name)
{
	const json_t *in;
	size_t i;
	json_array_foreach(json_object_get(svc, "instances"), i, in)
		if (strcmp(json_string_value(json_object_get(in, "name")), name) == 0)
			return in;
	fail_msg("no instance %s", name);
	return NULL;
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static json_int_t num(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static void test_json_shape_with_dataplane(void **state)
{
	(void)state;
	struct reg_view *v = sample_view();
	struct reg_status_input in = input(v, true);
	char *s = reg_status_json(&in);
	json_t *root = parse(s);
	assert_keys(root, "registry,haproxy,services,rejected");
	const json_t *reg = json_object_get(root, "registry");
	assert_keys(reg, "endpoints,prefix,revision,services,instances,rejected");
	assert_string_equal(str(reg, "prefix"), "/veltrix");
	assert_int_equal(num(reg, "revision"), 12);
	assert_int_equal(num(reg, "services"), 2);
	assert_int_equal(num(reg, "instances"), 3);
	assert_int_equal(num(reg, "rejected"), 2);
	assert_string_equal(json_string_value(json_array_get(json_object_get(reg, "endpoints"), 0)), endpoints[0]);
	const json_t *hap = json_object_get(root, "haproxy");
	assert_keys(hap, "socket,reachable,error");
	assert_true(json_is_true(json_object_get(hap, "reachable")));
	assert_true(json_is_null(json_object_get(hap, "error")));

	/* services: registered or configured, sorted; "other" is only a backend */
	const json_t *svcs = json_object_get(root, "services");
	assert_int_equal(json_array_size(svcs), 3);
	assert_string_equal(str(json_array_get(svcs, 0), "name"), "api");
	assert_string_equal(str(json_array_get(svcs, 1), "name"), "pg");
	assert_string_equal(str(json_array_get(svcs, 2), "name"), "web");
	const json_t *web = service(root, "web");
	assert_keys(web, "name,configured,instances,haproxy_backend,haproxy_only");
	assert_true(json_is_true(json_object_get(web, "configured")));
	assert_true(json_is_true(json_object_get(web, "haproxy_backend")));
	assert_int_equal(json_array_size(json_object_get(web, "instances")), 2);

	const json_t *w1 = instance(web, "web-1");
	assert_keys(w1, INSTANCE_KEYS);
	assert_string_equal(str(w1, "key"), "/veltrix/services/web/web-1");
	assert_string_equal(str(w1, "address"), "10.0.0.5");
	assert_int_equal(num(w1, "port"), 8080);
	assert_int_equal(num(w1, "capacity"), 100);
	assert_string_equal(str(w1, "state"), "up");
	assert_true(json_is_null(json_object_get(w1, "weight")));
	assert_string_equal(str(w1, "zone"), "eu-1a");
	assert_string_equal(str(w1, "version"), "1.4.2");
	assert_string_equal(json_string_value(json_array_get(json_object_get(w1, "tags"), 0)), "canary");
	const json_t *load = json_object_get(w1, "load");
	assert_keys(load, "inflight,rps,latency_ms");
	assert_int_equal(num(load, "inflight"), 3);
	assert_true(json_real_value(json_object_get(load, "rps")) == 120.5);
	assert_true(json_is_null(json_object_get(load, "latency_ms")));
	assert_string_equal(str(w1, "lease"), "09cea21bf9359a09");
	assert_int_equal(num(w1, "lease_ttl_s"), 7);
	assert_int_equal(num(w1, "create_revision"), 7);
	assert_int_equal(num(w1, "mod_revision"), 7);
	assert_true(json_is_false(json_object_get(w1, "update_rejected")));
	const json_t *h1 = json_object_get(w1, "haproxy");
	assert_keys(h1, DP_KEYS);
	assert_true(json_is_true(json_object_get(h1, "present")));
	assert_string_equal(str(h1, "state"), "UP");
	assert_int_equal(num(h1, "weight"), 10);
	assert_int_equal(num(h1, "sessions"), 2);
	assert_int_equal(num(h1, "queue"), 1);
	assert_int_equal(num(h1, "rtime_ms"), 3);
	assert_string_equal(str(h1, "check"), "L7OK");

	/* registered but not in HAProxy; a weight override of 0 is a value, not "not set" */
	const json_t *w2 = instance(web, "web-2");
	assert_int_equal(num(w2, "weight"), 0);
	assert_string_equal(str(w2, "state"), "draining");
	assert_true(json_is_null(json_object_get(w2, "capacity")));
	assert_true(json_is_null(json_object_get(w2, "lease")));
	assert_true(json_is_null(json_object_get(w2, "lease_ttl_s")));
	assert_true(json_is_null(json_object_get(w2, "load")));
	const json_t *h2 = json_object_get(w2, "haproxy");
	assert_keys(h2, DP_KEYS);
	assert_true(json_is_false(json_object_get(h2, "present")));
	assert_true(json_is_null(json_object_get(h2, "state")));

	/* in HAProxy but not in the registry */
	const json_t *only = json_object_get(web, "haproxy_only");
	assert_int_equal(json_array_size(only), 2);
	assert_keys(json_array_get(only, 0), "name,address,update_rejected,state,weight,sessions,queue,rtime_ms,check");
	assert_string_equal(str(json_array_get(only, 0), "name"), "ghost");
	assert_true(json_is_false(json_object_get(json_array_get(only, 0), "update_rejected")));
	assert_string_equal(str(json_array_get(only, 1), "name"), "web-9");
	assert_true(json_is_true(json_object_get(json_array_get(only, 1), "update_rejected")));
	assert_string_equal(str(json_array_get(only, 0), "address"), "10.0.0.99:8080");
	assert_int_equal(num(json_array_get(only, 0), "sessions"), 4);

	/* a lease etcd no longer knows; a service with no backend; a configured empty service */
	const json_t *api = service(root, "api");
	assert_true(json_is_false(json_object_get(api, "configured")));
	assert_true(json_is_false(json_object_get(api, "haproxy_backend")));
	assert_true(json_is_null(json_object_get(instance(api, "api-1"), "lease_ttl_s")));
	assert_string_equal(str(instance(api, "api-1"), "lease"), "000000000000004d");
	const json_t *pg = service(root, "pg");
	assert_true(json_is_true(json_object_get(pg, "configured")));
	assert_int_equal(json_array_size(json_object_get(pg, "instances")), 0);

	/* rejected keys sorted by key, each with its reason */
	const json_t *rej = json_object_get(root, "rejected");
	assert_int_equal(json_array_size(rej), 2);
	const json_t *r0 = json_array_get(rej, 0), *r1 = json_array_get(rej, 1);
	assert_keys(r0, "key,service,reason,message,mod_revision,lease");
	assert_string_equal(str(r0, "key"), "/veltrix/services/web/a;show\\x20info");
	assert_string_equal(str(r0, "reason"), "bad_name");
	assert_true(json_is_null(json_object_get(r0, "service")));
	assert_string_equal(str(r1, "key"), "/veltrix/services/web/web-9");
	assert_string_equal(str(r1, "reason"), "bad_address");
	assert_string_equal(str(r1, "service"), "web");
	assert_non_null(strstr(str(r1, "message"), "web-9.local"));
	assert_int_equal(num(r1, "mod_revision"), 9);
	json_decref(root);
	free(s);
	reg_view_free(v);
}

static void test_json_dataplane_unreachable(void **state)
{
	(void)state;
	struct reg_view *v = sample_view();
	struct reg_status_input in = input(v, false);
	char *s = reg_status_json(&in);
	json_t *root = parse(s);
	const json_t *hap = json_object_get(root, "haproxy");
	assert_true(json_is_false(json_object_get(hap, "reachable")));
	assert_string_equal(str(hap, "error"), "connection refused");
	assert_string_equal(str(hap, "socket"), "/run/hap.sock");
	const json_t *web = service(root, "web");
	assert_true(json_is_null(json_object_get(web, "haproxy_backend")));
	assert_true(json_is_null(json_object_get(web, "haproxy_only")));
	assert_true(json_is_null(json_object_get(instance(web, "web-1"), "haproxy")));
	json_decref(root);
	free(s);
	in.dp_socket = NULL; /* not asked at all */
	s = reg_status_json(&in);
	root = parse(s);
	assert_true(json_is_null(json_object_get(json_object_get(root, "haproxy"), "socket")));
	assert_true(json_is_null(json_object_get(json_object_get(root, "haproxy"), "error")));
	json_decref(root);
	free(s);
	reg_view_free(v);
}

static void test_one_service(void **state)
{
	(void)state;
	struct reg_view *v = sample_view();
	struct reg_status_input in = input(v, true);
	in.service = "web";
	assert_true(reg_status_known(&in));
	char *s = reg_status_json(&in);
	json_t *root = parse(s);
	assert_int_equal(json_array_size(json_object_get(root, "services")), 1);
	assert_int_equal(num(json_object_get(root, "registry"), "instances"), 2);
	assert_int_equal(json_array_size(json_object_get(root, "rejected")), 2);
	json_decref(root);
	free(s);
	in.service = "pg"; /* configured, nothing registered */
	assert_true(reg_status_known(&in));
	in.service = "other"; /* only a backend */
	assert_true(reg_status_known(&in));
	in.service = "nope";
	assert_false(reg_status_known(&in));
	in.dp_error = "down"; /* without HAProxy, "other" is unknown too */
	in.service = "other";
	assert_false(reg_status_known(&in));
	reg_view_free(v);
}

static char *text_of(const struct reg_status_input *in)
{
	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);
	assert_non_null(f);
	assert_int_equal(reg_status_text(in, f), 0);
	fclose(f);
	return mem;
}

/* The line of text that starts (after indentation) with word. */
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

/* line holds exactly these space-separated words. */
static void assert_words(const char *line, const char *const *words, size_t n)
{
	size_t i = 0;
	for (const char *p = line + strspn(line, " "); *p; p += strspn(p, " "), i++) {
		size_t w = strcspn(p, " ");
		if (i >= n)
			fail_msg("extra word '%.*s' in '%s'", (int)w, p, line);
		if (strlen(words[i]) != w || strncmp(p, words[i], w) != 0)
			fail_msg("word %zu is '%.*s', want '%s' in '%s'", i, (int)w, p, words[i], line);
		p += w;
	}
	assert_int_equal(i, n);
}

static void test_text_tables(void **state)
{
	(void)state;
	struct reg_view *v = sample_view();
	struct reg_status_input in = input(v, true);
	char *t = text_of(&in);
	assert_non_null(strstr(t, "registry: http://127.0.0.1:2379, prefix /veltrix, revision 12: 2 services, 3 instances, 2 rejected\n"));
	assert_non_null(strstr(t, "haproxy: /run/hap.sock\n"));
	assert_non_null(strstr(t, "\nweb: 2 instances, configured, HAProxy backend with 3 servers\n"));
	assert_non_null(strstr(t, "\napi: 1 instance, not in the configuration, no HAProxy backend named api\n"));
	assert_non_null(strstr(t, "\npg: 0 instances, configured, no HAProxy backend named pg\n  (no instances)\n"));
	char *l;
	static const char *const head[] = { "INSTANCE", "ADDRESS", "PORT", "CAPACITY", "STATE", "WEIGHT", "TTL",
					    "VERSION", "ZONE", "HAPROXY", "HWEIGHT", "SESSIONS", "QUEUE", "RTIME", "CHECK" };
	l = line_of(t, "INSTANCE");
	assert_words(l, head, N_ELEMS(head));
	free(l);
	static const char *const w1[] = { "web-1", "10.0.0.5", "8080", "100", "up", "-", "7s", "1.4.2", "eu-1a",
					  "UP", "10", "2", "1", "3ms", "L7OK" };
	l = line_of(t, "web-1");
	assert_words(l, w1, N_ELEMS(w1));
	free(l);
	static const char *const w2[] = { "web-2", "10.0.0.6", "8080", "-", "draining", "0", "-", "-", "-", "absent",
					  "-", "-", "-", "-", "-" };
	l = line_of(t, "web-2");
	assert_words(l, w2, N_ELEMS(w2));
	free(l);
	static const char *const gh[] = { "ghost", "10.0.0.99:8080", "-", "-", "unregistered", "-", "-", "-", "-",
					  "UP", "1", "4", "0", "9ms", "L7OK" };
	l = line_of(t, "ghost");
	assert_words(l, gh, N_ELEMS(gh));
	free(l);
	static const char *const a1[] = { "api-1", "::1", "9000", "-", "up", "-", "expired", "-", "-",
					  "absent", "-", "-", "-", "-", "-" };
	static const char *const w9[] = { "web-9", "10.0.0.9:8080", "-", "-", "rejected", "-", "-", "-", "-",
					  "UP", "1", "0", "0", "2ms", "L7OK" };
	l = line_of(t, "web-9");
	assert_words(l, w9, N_ELEMS(w9));
	free(l);
	l = line_of(t, "api-1");
	assert_words(l, a1, N_ELEMS(a1));
	free(l);
	assert_non_null(strstr(t, "note: web-2: registered but not in HAProxy's backend web"));
	assert_non_null(strstr(t, "note: ghost: in HAProxy's backend web but not in the registry"));
	assert_non_null(strstr(t, "note: web-9: its registry value was rejected (bad_address, see rejected keys)"));
	assert_null(strstr(t, "note: web-9: in HAProxy's backend"));
	assert_non_null(strstr(t, "rejected: 2 keys"));
	l = line_of(t, "/veltrix/services/web/web-9");
	assert_non_null(strstr(l, "bad_address  9 "));
	assert_null(strstr(l, "web-9: field")); /* the key is not repeated in the message */
	free(l);
	assert_null(strstr(t, " \n")); /* no trailing spaces */
	free(t);

	/* HAProxy down: one line says so, and the tables have only the registry's columns */
	in = input(v, false);
	t = text_of(&in);
	assert_non_null(strstr(t, "haproxy: not reachable at /run/hap.sock (connection refused); registry only\n"));
	assert_null(strstr(t, "HWEIGHT"));
	assert_null(strstr(t, "ghost"));
	free(t);
	reg_view_free(v);
}

static void test_update_rejected_and_empty(void **state)
{
	(void)state;
	struct vxerr err;
	struct reg_view *v = reg_view_new(NULL, NULL, &err);
	struct reg_status_input in = input(v, false);
	in.n_configured = 0;
	char *t = text_of(&in);
	assert_non_null(strstr(t, "no instances registered under /veltrix/services/"));
	free(t);
	struct etcd_kv good = kv("/veltrix/services/web/web-3", "{\"address\":\"10.0.0.7\",\"port\":80}", 3, 0);
	struct etcd_kv bad = kv("/veltrix/services/web/web-3", "{\"address\":\"10.0.0.7\",\"port\":\"80\"}", 4, 0);
	reg_view_load_snapshot(v, &good, 1, 3);
	reg_view_load_snapshot(v, &bad, 1, 4);
	char *s = reg_status_json(&in);
	json_t *root = parse(s);
	const json_t *w3 = instance(service(root, "web"), "web-3");
	assert_true(json_is_true(json_object_get(w3, "update_rejected")));
	assert_int_equal(num(w3, "mod_revision"), 3);
	assert_string_equal(str(json_array_get(json_object_get(root, "rejected"), 0), "reason"), "bad_type");
	json_decref(root);
	free(s);
	t = text_of(&in);
	assert_non_null(strstr(t, "note: web-3: a later write was rejected"));
	free(t);
	reg_view_free(v);
}

static void test_lease_ids(void **state)
{
	(void)state;
	struct reg_view *v = sample_view();
	int64_t *ids = NULL;
	size_t n = reg_status_lease_ids(v, NULL, &ids);
	assert_int_equal(n, 2);
	assert_true(ids[0] == LEASE_B && ids[1] == LEASE_A); /* sorted, distinct */
	free(ids);
	n = reg_status_lease_ids(v, "web", &ids);
	assert_int_equal(n, 1);
	assert_true(ids[0] == LEASE_A);
	free(ids);
	n = reg_status_lease_ids(v, "nope", &ids);
	assert_int_equal(n, 0);
	free(ids);
	char hex[17];
	reg_lease_hex(LEASE_A, hex);
	assert_string_equal(hex, "09cea21bf9359a09");
	reg_lease_hex(-1, hex);
	assert_string_equal(hex, "ffffffffffffffff");
	reg_view_free(v);
}

/* ---- reg_write ---- */

static struct reg_fields fields(void)
{
	return (struct reg_fields){ .service = "web", .instance = "web-1", .address = "10.0.0.5", .port = "8080" };
}

static void test_fields_valid(void **state)
{
	(void)state;
	static const char *const tags[] = { "canary", "blue" };
	struct reg_fields f = fields();
	f.address = "2001:DB8:0::1";
	f.capacity = "250";
	f.state = "draining";
	f.weight = "0";
	f.zone = "eu-1a";
	f.version = "1.4.2";
	f.tags = tags;
	f.n_tags = 2;
	struct reg_instance in;
	struct reg_fail fail;
	assert_int_equal(reg_fields_instance(&f, NULL, 0, &in, &fail), 0);
	assert_string_equal(in.service, "web");
	assert_string_equal(in.name, "web-1");
	assert_string_equal(in.address, "2001:db8::1"); /* canonical, like the codec stores it */
	assert_int_equal(in.port, 8080);
	assert_int_equal(in.capacity, 250);
	assert_int_equal(in.state, REG_STATE_DRAINING);
	assert_true(in.has_weight);
	assert_int_equal(in.weight, 0);
	assert_string_equal(in.zone, "eu-1a");
	assert_int_equal(in.n_tags, 2);
	assert_string_equal(in.tags[1], "blue");
	/* what register writes decodes back to the same instance */
	char *json;
	size_t len;
	struct vxerr err;
	assert_int_equal(reg_value_encode(&in, &json, &len, &err), 0);
	struct reg_instance back;
	assert_int_equal(reg_value_decode(json, len, &back, &fail), 0);
	assert_true(reg_instance_same(&in, &back));
	free(json);
	reg_instance_release(&back);
	reg_instance_release(&in);

	/* optional fields left out: the codec's defaults */
	f = fields();
	assert_int_equal(reg_fields_instance(&f, NULL, 0, &in, &fail), 0);
	assert_int_equal(in.capacity, 0);
	assert_int_equal(in.state, REG_STATE_UP);
	assert_false(in.has_weight);
	reg_instance_release(&in);
}

static void test_fields_hostile(void **state)
{
	(void)state;
	static const char *const many_tags[33] = {
		"t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t",
		"t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t", "t",
	};
	static const char *const empty_tag[] = { "" };
	struct cidr allow;
	assert_int_equal(cidr_parse("10.0.0.0/8", &allow, NULL), 0);
	static const struct {
		const char *field, *value;
		enum reg_reason want;
	} rows[] = {
		{ "instance", "a;b", REG_BAD_NAME },
		{ "instance", "a b", REG_BAD_NAME },
		{ "instance", "a\nshow info", REG_BAD_NAME },
		{ "instance", "", REG_BAD_NAME },
		{ "instance", "caf\xc3\xa9", REG_BAD_NAME },
		{ "instance", "x1234567890123456789012345678901234567890123456789012345678901234", REG_BAD_NAME },
		{ "service", "Web", REG_BAD_NAME },
		{ "service", "web/x", REG_BAD_NAME },
		{ "service", NULL, REG_BAD_NAME },
		{ "address", "01.02.03.04", REG_BAD_ADDRESS },
		{ "address", "999.1.1.1", REG_BAD_ADDRESS },
		{ "address", "fe80::1%eth0", REG_BAD_ADDRESS },
		{ "address", "web.local", REG_BAD_ADDRESS },
		{ "address", "0.0.0.0", REG_BAD_ADDRESS },
		{ "address", "10.0.0.5:80", REG_BAD_ADDRESS },
		{ "address", "192.168.1.1", REG_ADDRESS_NOT_ALLOWED },
		{ "address", NULL, REG_MISSING_FIELD },
		{ "port", "0", REG_BAD_PORT },
		{ "port", "65536", REG_BAD_PORT },
		{ "port", "-1", REG_BAD_PORT },
		{ "port", "99999999999999999999999", REG_BAD_PORT },
		{ "port", "80abc", REG_BAD_TYPE },
		{ "port", "8e1", REG_BAD_TYPE },
		{ "port", "+80", REG_BAD_TYPE },
		{ "port", NULL, REG_MISSING_FIELD },
		{ "capacity", "0", REG_BAD_CAPACITY },
		{ "capacity", "100001", REG_BAD_CAPACITY },
		{ "state", "UP", REG_BAD_STATE },
		{ "state", "gone", REG_BAD_STATE },
		{ "weight", "257", REG_BAD_WEIGHT },
		{ "zone", "eu 1", REG_BAD_ZONE },
		{ "zone", "eu\x1b[31m", REG_BAD_ZONE },
		{ "zone", "\xff\xfe", REG_BAD_JSON },
		{ "version", "1.0\n", REG_BAD_VERSION },
		{ "tags", "33", REG_BAD_TAGS },
		{ "tags", "empty", REG_BAD_TAGS },
	};
	for (size_t i = 0; i < N_ELEMS(rows); i++) {
		struct reg_fields f = fields();
		const char **slot = strcmp(rows[i].field, "instance") == 0 ? &f.instance
				    : strcmp(rows[i].field, "service") == 0  ? &f.service
				    : strcmp(rows[i].field, "address") == 0  ? &f.address
				    : strcmp(rows[i].field, "port") == 0     ? &f.port
				    : strcmp(rows[i].field, "capacity") == 0 ? &f.capacity
				    : strcmp(rows[i].field, "state") == 0    ? &f.state
				    : strcmp(rows[i].field, "weight") == 0   ? &f.weight
				    : strcmp(rows[i].field, "zone") == 0     ? &f.zone
				    : strcmp(rows[i].field, "version") == 0  ? &f.version
									     : NULL;
		if (slot)
			*slot = rows[i].value;
		else if (strcmp(rows[i].value, "33") == 0)
			f.tags = many_tags, f.n_tags = 33;
		else
			f.tags = empty_tag, f.n_tags = 1;
		struct reg_instance in = { 0 };
		struct reg_fail fail = { 0 };
		int rc = reg_fields_instance(&f, &allow, 1, &in, &fail);
		if (rc != -1 || fail.reason != rows[i].want)
			fail_msg("row %zu (%s=%s): rc %d reason %s, want %s (%s)", i, rows[i].field,
				 rows[i].value ? rows[i].value : "NULL", rc, reg_reason_name(fail.reason),
				 reg_reason_name(rows[i].want), fail.err.msg);
		assert_true(fail.err.msg[0] != '\0');
		for (const char *p = fail.err.msg; *p; p++) /* messages never carry raw control bytes */
			assert_true((unsigned char)*p >= 0x20);
		assert_int_equal(in.port, 0); /* *out untouched */
	}
}

static void test_set_state_keeps_members(void **state)
{
	(void)state;
	struct reg_fail fail;
	char *out = NULL;
	size_t len = 0;
	const char *v = "{\"address\":\"10.0.0.5\",\"port\":80,\"x-owner\":{\"team\":\"a\",\"n\":[1,2.5,null]},\"state\":\"up\","
			"\"load\":{\"rps\":0.1}}";
	assert_int_equal(reg_value_set_state(v, strlen(v), REG_STATE_DRAINING, &out, &len, &fail), 0);
	assert_string_equal(out, "{\"address\":\"10.0.0.5\",\"port\":80,\"x-owner\":{\"team\":\"a\",\"n\":[1,2.5,null]},"
				 "\"state\":\"draining\",\"load\":{\"rps\":0.10000000000000001}}");
	assert_int_equal(len, strlen(out));
	free(out);
	const char *nostate = "{\"port\":80,\"address\":\"::1\"}";
	assert_int_equal(reg_value_set_state(nostate, strlen(nostate), REG_STATE_DRAINING, &out, &len, &fail), 0);
	assert_string_equal(out, "{\"port\":80,\"address\":\"::1\",\"state\":\"draining\"}");
	free(out);

	static const struct {
		const char *value;
		enum reg_reason want;
	} bad[] = {
		{ "", REG_BAD_JSON },
		{ "{\"address\":\"10.0.0.5\"", REG_BAD_JSON },
		{ "{\"address\":\"10.0.0.5\",\"port\":80,\"port\":81}", REG_BAD_JSON },
		{ "[1]", REG_BAD_TYPE },
		{ "{\"address\":\"10.0.0.5\",\"port\":\"80\"}", REG_BAD_TYPE },
		{ "{\"address\":\"web.local\",\"port\":80}", REG_BAD_ADDRESS },
	};
	for (size_t i = 0; i < N_ELEMS(bad); i++) {
		out = NULL;
		assert_int_equal(reg_value_set_state(bad[i].value, strlen(bad[i].value), REG_STATE_DRAINING, &out, &len, &fail), -1);
		assert_int_equal(fail.reason, bad[i].want);
		assert_null(out);
	}
	/* a value just under the cap that the added member would push over it */
	size_t n = REG_VALUE_MAX - 4;
	char *big = xmalloc(n + 1);
	int head = snprintf(big, n + 1, "{\"address\":\"10.0.0.5\",\"port\":80,\"pad\":\"");
	memset(big + head, 'x', n - (size_t)head - 2);
	memcpy(big + n - 2, "\"}", 3);
	struct reg_instance tmp;
	assert_int_equal(reg_value_decode(big, n, &tmp, &fail), 0);
	reg_instance_release(&tmp);
	assert_int_equal(reg_value_set_state(big, n, REG_STATE_DRAINING, &out, &len, &fail), -1);
	assert_int_equal(fail.reason, REG_TOO_LARGE);
	free(big);
}

/* ---- texttab ---- */

static void test_texttab(void **state)
{
	(void)state;
	struct texttab t;
	texttab_init(&t, 3);
	const char *r0[] = { "NAME", "STATE", "NOTE" };
	const char *r1[] = { "a-long-name", NULL, "" };
	const char *r2[] = { "b", "\x1b[31mred\n", "x" };
	texttab_row(&t, r0);
	texttab_row(&t, r1);
	texttab_row(&t, r2);
	char *mem = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&mem, &len);
	texttab_print(&t, "  ", f);
	fclose(f);
	assert_string_equal(mem, "  NAME         STATE      NOTE\n"
				 "  a-long-name  -\n"
				 "  b            ?[31mred?  x\n");
	free(mem);
	texttab_release(&t);
	texttab_release(&t); /* a released table is zeroed */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_shape_with_dataplane),
		cmocka_unit_test(test_json_dataplane_unreachable),
		cmocka_unit_test(test_one_service),
		cmocka_unit_test(test_text_tables),
		cmocka_unit_test(test_update_rejected_and_empty),
		cmocka_unit_test(test_lease_ids),
		cmocka_unit_test(test_fields_valid),
		cmocka_unit_test(test_fields_hostile),
		cmocka_unit_test(test_set_state_keeps_members),
		cmocka_unit_test(test_texttab),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
