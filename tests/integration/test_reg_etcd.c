/* The registration recipes of docs/registry.md against a real etcd: keys written with etcdctl
 * (plain and lease-bound) and with curl-style gateway calls (base64) are read back with a plain
 * HTTP range and fed to the view, which must see exactly the documented instances. (The path
 * through Veltrix's own etcd client is tested with that client.) */
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
#include "common/b64.h"
#include "common/parse.h"
#include "fx.h"
#include "registry/reg.h"

static char *b64(const char *s)
{
	size_t cap = b64_encoded_size(strlen(s));
	char *out = xmalloc(cap);
	b64_encode(s, strlen(s), out, cap);
	return out;
}

/* int64 fields come as JSON strings from the gateway, absent when zero. */
static int64_t i64_field(const json_t *o, const char *name)
{
	const json_t *v = json_object_get(o, name);
	int64_t x = 0;
	if (json_is_string(v))
		assert_int_equal(parse_i64(json_string_value(v), INT64_MIN, INT64_MAX, &x), 0);
	return x;
}

static char *b64_field(const json_t *o, const char *name, size_t *len)
{
	const char *s = json_string_value(json_object_get(o, name));
	size_t n = s ? strlen(s) : 0;
	char *out = xmalloc(n + 1);
	long got = s ? b64_decode(s, n, out, n + 1) : 0;
	assert_true(got >= 0);
	out[got] = '\0';
	*len = (size_t)got;
	return out;
}

struct snap {
	struct etcd_kv *kvs;
	size_t n;
	int64_t revision;
};

static void snap_free(struct snap *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->kvs[i].key);
		free(s->kvs[i].value);
	}
	free(s->kvs);
}

/* Range over the whole registry with one POST to the gateway, decoded into etcd_kv records. */
static void range_all(const struct fx_etcd *e, struct snap *out)
{
	struct reg_range r;
	assert_int_equal(reg_range_all(REG_DEFAULT_PREFIX, &r, NULL), 0);
	char *k = b64(r.key), *end = b64(r.range_end);
	char *url = xasprintf("%s/v3/kv/range", e->url);
	char *body = xasprintf("{\"key\":\"%s\",\"range_end\":\"%s\"}", k, end);
	char *resp = NULL;
	assert_int_equal(fx_http("POST", url, body, &resp), 200);
	json_t *root = json_loads(resp, 0, NULL);
	assert_non_null(root);
	out->revision = i64_field(json_object_get(root, "header"), "revision");
	const json_t *kvs = json_object_get(root, "kvs");
	out->n = json_array_size(kvs);
	out->kvs = xcalloc(out->n + 1, sizeof(*out->kvs));
	for (size_t i = 0; i < out->n; i++) {
		const json_t *o = json_array_get(kvs, i);
		struct etcd_kv *kv = &out->kvs[i];
		kv->key = b64_field(o, "key", &kv->key_len);
		kv->value = b64_field(o, "value", &kv->value_len);
		kv->create_revision = i64_field(o, "create_revision");
		kv->mod_revision = i64_field(o, "mod_revision");
		kv->version = i64_field(o, "version");
		kv->lease = i64_field(o, "lease");
	}
	json_decref(root);
	free(resp);
	free(body);
	free(url);
	free(k);
	free(end);
}

static void etcdctl_ok(const struct fx_etcd *e, const char *const args[])
{
	char *out = NULL;
	assert_int_equal(fx_etcdctl(e, &out, args), 0);
	free(out);
}

/* `etcdctl lease grant 30` prints "lease 694d7d3a1b2c3d4e granted with TTL(30s)". */
static char *lease_grant(const struct fx_etcd *e)
{
	char *out = NULL;
	const char *const grant[] = { "lease", "grant", "30", NULL };
	assert_int_equal(fx_etcdctl(e, &out, grant), 0);
	assert_true(strncmp(out, "lease ", 6) == 0);
	char *id = xstrndup(out + 6, strcspn(out + 6, " "));
	free(out);
	return id;
}

/* The curl recipe: grant a lease, then put base64 key and value bound to it. */
static int64_t curl_register(const struct fx_etcd *e, const char *key, const char *value)
{
	char *url = xasprintf("%s/v3/lease/grant", e->url), *resp = NULL;
	assert_int_equal(fx_http("POST", url, "{\"TTL\":30}", &resp), 200);
	json_t *g = json_loads(resp, 0, NULL);
	int64_t id = i64_field(g, "ID");
	assert_true(id != 0);
	json_decref(g);
	free(resp);
	free(url);
	char *k = b64(key), *v = b64(value);
	char *body = xasprintf("{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"%lld\"}", k, v, (long long)id);
	url = xasprintf("%s/v3/kv/put", e->url);
	assert_int_equal(fx_http("POST", url, body, NULL), 200);
	free(url);
	free(body);
	free(k);
	free(v);
	return id;
}

static void test_documented_recipes_produce_valid_instances(void **state)
{
	(void)state;
	struct fx_etcd e = { 0 };
	fx_etcd_start(&e);
	const char *const plain[] = { "put", "/veltrix/services/web/web-1",
				      "{\"address\":\"10.0.0.5\",\"port\":8080,\"capacity\":100}", NULL };
	etcdctl_ok(&e, plain);
	char *lease_hex = lease_grant(&e);
	char *lease_opt = xasprintf("--lease=%s", lease_hex);
	const char *const leased[] = { "put", lease_opt, "/veltrix/services/web/web-2",
				       "{\"address\":\"10.0.0.6\",\"port\":8080,\"state\":\"up\"}", NULL };
	etcdctl_ok(&e, leased);
	int64_t curl_lease = curl_register(&e, "/veltrix/services/api/api-1",
					   "{\"address\":\"fd00::7\",\"port\":9000,\"zone\":\"z1\",\"tags\":[\"canary\"]}");
	const char *const bad[] = { "put", "/veltrix/services/web/web-9",
				    "{\"address\":\"web-9.local\",\"port\":8080}", NULL };
	etcdctl_ok(&e, bad);
	const char *const other[] = { "put", "/veltrix/leader", "node-1", NULL };
	etcdctl_ok(&e, other);

	struct snap s;
	range_all(&e, &s);
	assert_int_equal(s.n, 4); /* /veltrix/leader is outside the range */
	struct reg_view *v = reg_view_new(NULL, NULL, NULL);
	reg_view_load_snapshot(v, s.kvs, s.n, s.revision);
	assert_int_equal(reg_view_revision(v), s.revision);
	assert_int_equal(reg_view_n_instances(v), 3);
	const struct reg_instance *w1 = reg_view_find(v, "web", "web-1");
	assert_non_null(w1);
	assert_string_equal(w1->address, "10.0.0.5");
	assert_int_equal(w1->port, 8080);
	assert_int_equal(w1->capacity, 100);
	assert_int_equal(w1->lease, 0);
	const struct reg_instance *w2 = reg_view_find(v, "web", "web-2");
	assert_non_null(w2);
	char hex[32];
	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)w2->lease);
	assert_string_equal(hex, lease_hex); /* etcdctl prints lease IDs in hex, the gateway in decimal */
	const struct reg_instance *a1 = reg_view_find(v, "api", "api-1");
	assert_non_null(a1);
	assert_string_equal(a1->address, "fd00::7");
	assert_int_equal(a1->lease, curl_lease);
	assert_string_equal(a1->tags[0], "canary");
	assert_int_equal(reg_view_n_rejected(v), 1);
	assert_string_equal(reg_view_rejected_at(v, 0)->key, "/veltrix/services/web/web-9");
	assert_int_equal(reg_view_rejected_at(v, 0)->reason, REG_BAD_ADDRESS);
	snap_free(&s);
	reg_view_clear_changes(v);

	/* state down keeps the key; a deregistration deletes it; a fixed value heals the reject */
	const char *const down[] = { "put", "/veltrix/services/web/web-1",
				     "{\"address\":\"10.0.0.5\",\"port\":8080,\"capacity\":100,\"state\":\"down\"}", NULL };
	etcdctl_ok(&e, down);
	const char *const dereg[] = { "del", "/veltrix/services/web/web-2", NULL };
	etcdctl_ok(&e, dereg);
	const char *const fixed[] = { "put", "/veltrix/services/web/web-9",
				      "{\"address\":\"10.0.0.9\",\"port\":8080}", NULL };
	etcdctl_ok(&e, fixed);
	range_all(&e, &s);
	reg_view_load_snapshot(v, s.kvs, s.n, s.revision);
	struct reg_changes ch;
	reg_view_changes(v, &ch);
	assert_int_equal(ch.n_services, 1);
	assert_string_equal(ch.services[0], "web");
	assert_int_equal(reg_view_find(v, "web", "web-1")->state, REG_STATE_DOWN);
	assert_null(reg_view_find(v, "web", "web-2"));
	assert_non_null(reg_view_find(v, "web", "web-9"));
	assert_int_equal(reg_view_n_rejected(v), 0);
	assert_non_null(reg_view_find(v, "api", "api-1"));
	snap_free(&s);

	/* what the encoder writes is what etcdctl users write: it reads back the same */
	struct reg_instance in = { .port = 7000, .capacity = 12 };
	strcpy(in.address, "10.1.1.1");
	char *json = NULL;
	size_t len;
	assert_int_equal(reg_value_encode(&in, &json, &len, NULL), 0);
	const char *const enc[] = { "put", "/veltrix/services/enc/e-1", json, NULL };
	etcdctl_ok(&e, enc);
	range_all(&e, &s);
	reg_view_load_snapshot(v, s.kvs, s.n, s.revision);
	const struct reg_instance *e1 = reg_view_find(v, "enc", "e-1");
	assert_non_null(e1);
	strcpy(in.service, "enc");
	assert_true(reg_instance_same(&in, e1));
	snap_free(&s);
	free(json);
	reg_view_free(v);
	free(lease_opt);
	free(lease_hex);
	fx_etcd_free(&e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_documented_recipes_produce_valid_instances),
	};
	return cmocka_run_group_tests_name("reg_etcd", tests, NULL, NULL);
}
