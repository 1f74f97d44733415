/* Unit tests for the registry view (src/registry/reg.h): snapshots, watch batches (put, update,
 * delete, re-put, replays, rejected updates to valid keys, deletes of rejected keys, other
 * prefixes), the dirty set and new-rejection reports, revision tracking, allow-list policy,
 * and 10,000 instances over 100 services. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "registry/reg.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))
#define VAL(addr, port) "{\"address\":\"" addr "\",\"port\":" #port "}"

/* The view never writes through these pointers, so literals can stand in for etcd's data. */
static struct etcd_kv kv(const char *key, const char *value, int64_t rev)
{
	return (struct etcd_kv){ .key = (char *)(uintptr_t)key, .key_len = strlen(key),
				 .value = (char *)(uintptr_t)value, .value_len = value ? strlen(value) : 0,
				 .create_revision = rev, .mod_revision = rev, .version = 1 };
}

static struct etcd_event put(const char *key, const char *value, int64_t rev)
{
	return (struct etcd_event){ .type = ETCD_EVENT_PUT, .kv = kv(key, value, rev) };
}

static struct etcd_event del(const char *key, int64_t rev)
{
	return (struct etcd_event){ .type = ETCD_EVENT_DELETE, .kv = kv(key, NULL, rev) };
}

static struct reg_view *view(void)
{
	struct vxerr err;
	struct reg_view *v = reg_view_new(NULL, NULL, &err);
	assert_non_null(v);
	return v;
}

/* The dirty services as one comma-separated string, for compact assertions. */
static void dirty_str(const struct reg_view *v, char *out, size_t cap)
{
	struct reg_changes ch;
	reg_view_changes(v, &ch);
	out[0] = '\0';
	for (size_t i = 0; i < ch.n_services; i++) {
		size_t n = strlen(out);
		snprintf(out + n, cap - n, "%s%s", i ? "," : "", ch.services[i]);
	}
}

#define ASSERT_DIRTY(v, want)                                 \
	do {                                                  \
		char got_[256];                               \
		dirty_str((v), got_, sizeof(got_));           \
		assert_string_equal(got_, (want));            \
	} while (0)

static size_t n_fresh(const struct reg_view *v)
{
	struct reg_changes ch;
	reg_view_changes(v, &ch);
	return ch.n_rejects;
}

static void test_snapshot_basics(void **state)
{
	(void)state;
	struct reg_view *v = view();
	assert_int_equal(reg_view_revision(v), 0);
	assert_string_equal(reg_view_prefix(v), "/veltrix");
	struct etcd_kv kvs[] = {
		kv("/veltrix/services/web/b", VAL("10.0.0.2", 80), 5),
		kv("/veltrix/services/api/x", VAL("::1", 9000), 3),
		kv("/veltrix/services/web/a", VAL("10.0.0.1", 80), 4),
		kv("/veltrix/services/web/C", VAL("10.0.0.3", 80), 6),
		kv("/veltrix/config", "{}", 2),                       /* not ours */
		kv("/elsewhere/services/web/z", VAL("10.0.0.9", 80), 2), /* not ours */
	};
	kvs[0].lease = 77;
	reg_view_load_snapshot(v, kvs, N_ELEMS(kvs), 9);
	assert_int_equal(reg_view_revision(v), 9);
	assert_int_equal(reg_view_n_services(v), 2);
	assert_int_equal(reg_view_n_instances(v), 4);
	assert_int_equal(reg_view_n_rejected(v), 0);
	assert_string_equal(reg_view_service_at(v, 0)->name, "api");
	const struct reg_service *web = reg_view_service_at(v, 1);
	assert_string_equal(web->name, "web");
	assert_int_equal(web->n_instances, 3);
	assert_string_equal(web->instances[0]->name, "C"); /* byte order: upper case first */
	assert_string_equal(web->instances[1]->name, "a");
	assert_string_equal(web->instances[2]->name, "b");
	assert_null(reg_view_service_at(v, 2));
	const struct reg_instance *b = reg_view_find(v, "web", "b");
	assert_non_null(b);
	assert_string_equal(b->service, "web");
	assert_string_equal(b->address, "10.0.0.2");
	assert_int_equal(b->lease, 77);
	assert_int_equal(b->mod_revision, 5);
	assert_null(reg_view_find(v, "web", "z"));
	assert_null(reg_view_find(v, "nope", "a"));
	assert_null(reg_view_find_service(v, "nope"));
	ASSERT_DIRTY(v, "api,web");
	reg_view_clear_changes(v);
	ASSERT_DIRTY(v, "");
	reg_view_free(v);
	reg_view_free(NULL);
}

static void test_events_put_update_delete(void **state)
{
	(void)state;
	struct reg_view *v = view();
	reg_view_load_snapshot(v, NULL, 0, 10);
	reg_view_clear_changes(v);

	struct etcd_event b1[] = { put("/veltrix/services/web/a", VAL("10.0.0.1", 80), 11) };
	assert_int_equal(reg_view_apply(v, b1, 1, 11), 1);
	ASSERT_DIRTY(v, "web");
	assert_int_equal(reg_view_revision(v), 11);
	reg_view_clear_changes(v);

	/* an identical rewrite (new revision, same content) changes nothing to reconcile */
	struct etcd_event b2[] = { put("/veltrix/services/web/a", VAL("10.0.0.1", 80), 12) };
	assert_int_equal(reg_view_apply(v, b2, 1, 12), 1);
	ASSERT_DIRTY(v, "");
	assert_int_equal(reg_view_find(v, "web", "a")->mod_revision, 12);

	/* an update, and a txn of two puts sharing one revision */
	struct etcd_event b3[] = { put("/veltrix/services/web/a", VAL("10.0.0.1", 81), 13),
				   put("/veltrix/services/db/m", VAL("10.0.1.1", 5432), 14),
				   put("/veltrix/services/db/n", VAL("10.0.1.2", 5432), 14) };
	assert_int_equal(reg_view_apply(v, b3, 3, 14), 3);
	ASSERT_DIRTY(v, "db,web");
	assert_int_equal(reg_view_find(v, "web", "a")->port, 81);
	assert_int_equal(reg_view_n_instances(v), 3);
	reg_view_clear_changes(v);

	/* deleting the last instance removes the service, which is still reported dirty */
	struct etcd_event b4[] = { del("/veltrix/services/web/a", 15),
				   del("/veltrix/services/web/never-existed", 15) };
	assert_int_equal(reg_view_apply(v, b4, 2, 15), 2);
	ASSERT_DIRTY(v, "web");
	assert_null(reg_view_find_service(v, "web"));
	assert_int_equal(reg_view_n_services(v), 1);
	reg_view_clear_changes(v);

	/* re-put after delete */
	struct etcd_event b5[] = { put("/veltrix/services/web/a", VAL("10.0.0.7", 80), 16) };
	reg_view_apply(v, b5, 1, 16);
	assert_string_equal(reg_view_find(v, "web", "a")->address, "10.0.0.7");
	ASSERT_DIRTY(v, "web");
	reg_view_free(v);
}

/* A watch catching up gets its history in responses of at most 1,000 revisions, each with the
 * member's current revision in its header: the first must not make the view skip the second
 * (it did: the fleet benchmark lost every change of the second response after a leader kill). */
static void test_catch_up_in_two_responses(void **state)
{
	(void)state;
	struct reg_view *v = view();
	reg_view_load_snapshot(v, NULL, 0, 10);
	struct etcd_event first[] = { put("/veltrix/services/web/a", VAL("10.0.0.1", 80), 11) };
	assert_int_equal(reg_view_apply(v, first, 1, 13), 1); /* 13: the header, ahead of its events */
	assert_int_equal(reg_view_revision(v), 11);
	struct etcd_event second[] = { put("/veltrix/services/web/b", VAL("10.0.0.2", 80), 12),
				       del("/veltrix/services/web/a", 13) };
	assert_int_equal(reg_view_apply(v, second, 2, 13), 2);
	assert_null(reg_view_find(v, "web", "a"));
	assert_non_null(reg_view_find(v, "web", "b"));
	assert_int_equal(reg_view_revision(v), 13);
	reg_view_free(v);
}

static void test_replays_and_revisions(void **state)
{
	(void)state;
	struct reg_view *v = view();
	struct etcd_kv snap[] = { kv("/veltrix/services/web/a", VAL("10.0.0.1", 80), 20) };
	reg_view_load_snapshot(v, snap, 1, 25);
	reg_view_clear_changes(v);
	/* events at or below the snapshot revision are replays: ignored */
	struct etcd_event old[] = { del("/veltrix/services/web/a", 21),
				    put("/veltrix/services/web/b", VAL("10.0.0.2", 80), 25) };
	assert_int_equal(reg_view_apply(v, old, 2, 25), 0);
	assert_non_null(reg_view_find(v, "web", "a"));
	assert_null(reg_view_find(v, "web", "b"));
	ASSERT_DIRTY(v, "");
	/* a batch that straddles: the old half ignored, the new half applied */
	struct etcd_event mixed[] = { del("/veltrix/services/web/a", 24),
				      put("/veltrix/services/web/c", VAL("10.0.0.3", 80), 26) };
	assert_int_equal(reg_view_apply(v, mixed, 2, 26), 1);
	assert_non_null(reg_view_find(v, "web", "a"));
	assert_non_null(reg_view_find(v, "web", "c"));
	/* the same batch again (a resumed watch replaying it) changes nothing */
	reg_view_clear_changes(v);
	assert_int_equal(reg_view_apply(v, mixed, 2, 26), 0);
	ASSERT_DIRTY(v, "");
	/* progress notifications move the revision; a lower header never moves it back */
	assert_int_equal(reg_view_apply(v, NULL, 0, 40), 0);
	assert_int_equal(reg_view_revision(v), 40);
	assert_int_equal(reg_view_apply(v, NULL, 0, 30), 0);
	assert_int_equal(reg_view_revision(v), 40);
	/* an event newer than the header still moves the revision to the event's */
	struct etcd_event ahead[] = { put("/veltrix/services/web/d", VAL("10.0.0.4", 80), 45) };
	reg_view_apply(v, ahead, 1, 41);
	assert_int_equal(reg_view_revision(v), 45);
	reg_view_free(v);
}

static void test_rejected_update_keeps_last_good(void **state)
{
	(void)state;
	struct reg_view *v = view();
	const char *key = "/veltrix/services/web/a";
	struct etcd_kv snap[] = { kv(key, VAL("10.0.0.1", 80), 5), kv("/veltrix/services/web/b", VAL("10.0.0.2", 80), 5) };
	reg_view_load_snapshot(v, snap, 2, 5);
	reg_view_clear_changes(v);

	struct etcd_event bad[] = { put(key, "{\"address\":\"10.0.0.1\",\"port\":\"80\"}", 6) };
	assert_int_equal(reg_view_apply(v, bad, 1, 6), 1);
	const struct reg_instance *a = reg_view_find(v, "web", "a");
	assert_non_null(a);
	assert_true(a->update_rejected);
	assert_int_equal(a->port, 80);
	assert_int_equal(a->mod_revision, 5); /* the revision of the value in use */
	ASSERT_DIRTY(v, "");                  /* nothing to reconcile */
	assert_int_equal(reg_view_n_rejected(v), 1);
	const struct reg_reject *r = reg_view_rejected_at(v, 0);
	assert_string_equal(r->key, key);
	assert_int_equal(r->reason, REG_BAD_TYPE);
	assert_int_equal(r->mod_revision, 6);
	assert_non_null(strstr(r->message, "/veltrix/services/web/a: field \"port\""));
	assert_int_equal(n_fresh(v), 1);
	struct reg_changes ch;
	reg_view_changes(v, &ch);
	assert_string_equal(ch.rejects[0].key, key);
	assert_int_equal(ch.rejects[0].reason, REG_BAD_TYPE);
	reg_view_clear_changes(v);

	/* the same bad value again: still rejected, not reported again */
	struct etcd_event again[] = { put(key, "{\"address\":\"10.0.0.1\",\"port\":\"80\"}", 7) };
	reg_view_apply(v, again, 1, 7);
	assert_int_equal(n_fresh(v), 0);
	assert_int_equal(reg_view_rejected_at(v, 0)->mod_revision, 7);
	/* a different bad value is reported */
	struct etcd_event other[] = { put(key, "{\"address\":\"10.0.0.1\",\"port\":0}", 8) };
	reg_view_apply(v, other, 1, 8);
	assert_int_equal(n_fresh(v), 1);
	assert_int_equal(reg_view_rejected_at(v, 0)->reason, REG_BAD_PORT);
	/* two rejections of one key between clears are reported once, with the latest reason */
	struct etcd_event third[] = { put(key, "{\"address\":\"nope\",\"port\":80}", 9) };
	reg_view_apply(v, third, 1, 9);
	reg_view_changes(v, &ch);
	assert_int_equal(ch.n_rejects, 1);
	assert_int_equal(ch.rejects[0].reason, REG_BAD_ADDRESS);
	reg_view_clear_changes(v);

	/* a valid value heals it: the reject goes, the flag clears, the service is dirty */
	struct etcd_event fix[] = { put(key, VAL("10.0.0.9", 80), 10) };
	reg_view_apply(v, fix, 1, 10);
	a = reg_view_find(v, "web", "a");
	assert_false(a->update_rejected);
	assert_string_equal(a->address, "10.0.0.9");
	assert_int_equal(reg_view_n_rejected(v), 0);
	ASSERT_DIRTY(v, "web");
	reg_view_clear_changes(v);

	/* rejected again, then deleted: both the kept instance and the reject go */
	struct etcd_event bad2[] = { put(key, "garbage", 11), del(key, 12) };
	reg_view_apply(v, bad2, 2, 12);
	assert_null(reg_view_find(v, "web", "a"));
	assert_int_equal(reg_view_n_rejected(v), 0);
	assert_int_equal(n_fresh(v), 1); /* the short-lived bad value is still reported once */
	ASSERT_DIRTY(v, "web");
	assert_non_null(reg_view_find(v, "web", "b")); /* the neighbour never moved */
	reg_view_free(v);
}

static void test_rejected_keys_lifecycle(void **state)
{
	(void)state;
	struct reg_view *v = view();
	reg_view_load_snapshot(v, NULL, 0, 1);
	struct etcd_event b[] = {
		put("/veltrix/services/web/x y", VAL("10.0.0.1", 80), 2), /* bad name */
		put("/veltrix/services/web", VAL("10.0.0.1", 80), 2),     /* bad key */
		put("/veltrix/services/web/new", "{\"address\":\"10.0.0.1\",\"port\":80,\"capacity\":0}", 3),
		put("/veltrix/services/web/empty", NULL, 3), /* etcd sends no value for "" */
		put("/veltrix/other/thing", "garbage", 3),    /* not ours: ignored, not rejected */
		put("/veltrixx/services/web/a", "garbage", 3),
	};
	assert_int_equal(reg_view_apply(v, b, N_ELEMS(b), 3), 4);
	assert_int_equal(reg_view_n_instances(v), 0);
	assert_int_equal(reg_view_n_services(v), 0);
	assert_int_equal(reg_view_n_rejected(v), 4);
	/* sorted by key */
	assert_string_equal(reg_view_rejected_at(v, 0)->key, "/veltrix/services/web");
	assert_int_equal(reg_view_rejected_at(v, 0)->reason, REG_BAD_KEY);
	assert_string_equal(reg_view_rejected_at(v, 0)->service, "");
	assert_string_equal(reg_view_rejected_at(v, 1)->key, "/veltrix/services/web/empty");
	assert_int_equal(reg_view_rejected_at(v, 1)->reason, REG_BAD_JSON);
	assert_string_equal(reg_view_rejected_at(v, 1)->service, "web");
	assert_int_equal(reg_view_rejected_at(v, 2)->reason, REG_BAD_CAPACITY);
	assert_string_equal(reg_view_rejected_at(v, 3)->key, "/veltrix/services/web/x\\x20y");
	assert_int_equal(reg_view_rejected_at(v, 3)->reason, REG_BAD_NAME);
	assert_null(reg_view_rejected_at(v, 4));
	assert_int_equal(n_fresh(v), 4);
	ASSERT_DIRTY(v, "");
	reg_view_clear_changes(v);
	/* deletes of rejected keys remove them; a valid put to a rejected key replaces it */
	struct etcd_event c[] = { del("/veltrix/services/web/x y", 4), del("/veltrix/services/web", 4),
				  put("/veltrix/services/web/new", VAL("10.0.0.5", 80), 5) };
	assert_int_equal(reg_view_apply(v, c, N_ELEMS(c), 5), 3);
	assert_int_equal(reg_view_n_rejected(v), 1);
	assert_string_equal(reg_view_rejected_at(v, 0)->key, "/veltrix/services/web/empty");
	assert_non_null(reg_view_find(v, "web", "new"));
	assert_false(reg_view_find(v, "web", "new")->update_rejected);
	ASSERT_DIRTY(v, "web");
	assert_int_equal(n_fresh(v), 0);
	/* changes survive until cleared, across several batches */
	struct etcd_event d[] = { put("/veltrix/services/api/a", VAL("10.0.0.6", 80), 6) };
	reg_view_apply(v, d, 1, 6);
	ASSERT_DIRTY(v, "api,web");
	reg_view_free(v); /* with changes pending: no leak */
}

static void test_snapshot_is_a_diff(void **state)
{
	(void)state;
	struct reg_view *v = view();
	struct etcd_kv s1[] = {
		kv("/veltrix/services/web/a", VAL("10.0.0.1", 80), 2),
		kv("/veltrix/services/web/b", VAL("10.0.0.2", 80), 3),
		kv("/veltrix/services/api/a", VAL("10.0.1.1", 80), 4),
		kv("/veltrix/services/db/a", VAL("10.0.2.1", 80), 5),
		kv("/veltrix/services/db/bad", "nope", 6),
	};
	reg_view_load_snapshot(v, s1, N_ELEMS(s1), 6);
	assert_int_equal(n_fresh(v), 1);
	reg_view_clear_changes(v);
	/* the same snapshot again (a resync with nothing missed): nothing dirty, nothing new */
	reg_view_load_snapshot(v, s1, N_ELEMS(s1), 6);
	ASSERT_DIRTY(v, "");
	assert_int_equal(n_fresh(v), 0);
	assert_int_equal(reg_view_n_instances(v), 4);
	assert_int_equal(reg_view_n_rejected(v), 1);
	/* missed events: web/b changed, api/a deleted, web/a now rejected, db/bad deleted,
	 * db unchanged */
	struct etcd_kv s2[] = {
		kv("/veltrix/services/web/a", "{\"address\":\"10.0.0.1\"}", 7),
		kv("/veltrix/services/web/b", VAL("10.0.0.2", 81), 8),
		kv("/veltrix/services/db/a", VAL("10.0.2.1", 80), 5),
	};
	reg_view_load_snapshot(v, s2, N_ELEMS(s2), 9);
	ASSERT_DIRTY(v, "api,web");
	assert_int_equal(reg_view_revision(v), 9);
	assert_null(reg_view_find_service(v, "api"));
	assert_int_equal(reg_view_find(v, "web", "b")->port, 81);
	const struct reg_instance *a = reg_view_find(v, "web", "a");
	assert_non_null(a); /* last good value kept, as the event path would have */
	assert_true(a->update_rejected);
	assert_int_equal(reg_view_n_rejected(v), 1);
	assert_string_equal(reg_view_rejected_at(v, 0)->key, "/veltrix/services/web/a");
	assert_int_equal(reg_view_rejected_at(v, 0)->reason, REG_MISSING_FIELD);
	assert_int_equal(n_fresh(v), 1);
	reg_view_clear_changes(v);
	/* a fresh view (cold start) has no last good value: the key is only rejected */
	struct reg_view *cold = view();
	reg_view_load_snapshot(cold, s2, N_ELEMS(s2), 9);
	assert_null(reg_view_find(cold, "web", "a"));
	assert_int_equal(reg_view_n_instances(cold), 2);
	reg_view_free(cold);
	/* an empty snapshot empties the view and marks every service that was there */
	reg_view_load_snapshot(v, NULL, 0, 12);
	ASSERT_DIRTY(v, "db,web");
	assert_int_equal(reg_view_n_instances(v), 0);
	assert_int_equal(reg_view_n_services(v), 0);
	assert_int_equal(reg_view_n_rejected(v), 0);
	reg_view_free(v);
}

static void test_prefix_and_policy(void **state)
{
	(void)state;
	struct vxerr err;
	assert_null(reg_view_new("no-slash", NULL, &err));
	assert_non_null(strstr(err.msg, "registry prefix"));
	struct cidr c[2];
	assert_int_equal(cidr_parse("10.0.0.0/8", &c[0], NULL), 0);
	assert_int_equal(cidr_parse("::1", &c[1], NULL), 0);
	struct reg_allow bad_allow[] = { { .service = "Bad Name", .cidrs = c, .n_cidrs = 1 } };
	struct reg_policy bad = { bad_allow, 1 };
	assert_null(reg_view_new(NULL, &bad, &err));
	assert_non_null(strstr(err.msg, "Bad Name"));
	struct reg_allow dup_allow[] = { { "web", c, 1 }, { "web", c, 2 } };
	struct reg_policy dup = { dup_allow, 2 };
	assert_null(reg_view_new(NULL, &dup, &err));
	assert_non_null(strstr(err.msg, "two allow-lists"));

	struct reg_allow allow[] = { { "web", c, 2 }, { "open", NULL, 0 } };
	struct reg_policy pol = { allow, 2 };
	struct reg_view *v = reg_view_new("/team/vx", &pol, &err);
	assert_non_null(v);
	memset(c, 0, sizeof(c)); /* the view copied the policy */
	struct etcd_kv kvs[] = {
		kv("/team/vx/services/web/in", VAL("10.9.9.9", 80), 2),
		kv("/team/vx/services/web/v6", VAL("::1", 80), 2),
		kv("/team/vx/services/web/out", VAL("192.168.1.1", 80), 2),
		kv("/team/vx/services/open/any", VAL("192.168.1.1", 80), 2),
		kv("/team/vx/services/unlisted/any", VAL("203.0.113.5", 80), 2),
		kv("/veltrix/services/web/x", VAL("10.0.0.1", 80), 2), /* another prefix: ignored */
	};
	reg_view_load_snapshot(v, kvs, N_ELEMS(kvs), 3);
	assert_int_equal(reg_view_n_instances(v), 4);
	assert_null(reg_view_find(v, "web", "out"));
	assert_non_null(reg_view_find(v, "web", "v6"));
	assert_non_null(reg_view_find(v, "open", "any"));
	assert_non_null(reg_view_find(v, "unlisted", "any"));
	assert_int_equal(reg_view_n_rejected(v), 1);
	const struct reg_reject *r = reg_view_rejected_at(v, 0);
	assert_int_equal(r->reason, REG_ADDRESS_NOT_ALLOWED);
	assert_non_null(strstr(r->message, "/team/vx/services/web/out: field \"address\": 192.168.1.1"));
	reg_view_free(v);
}

/* 10,000 instances over 100 services, loaded in a shuffled order, then 10,000 watch events. */
static void test_ten_thousand(void **state)
{
	(void)state;
	enum { NS = 100, NI = 100, N = NS * NI };
	struct etcd_kv *kvs = xcalloc(N, sizeof(*kvs));
	char **keys = xcalloc(N, sizeof(char *)), **vals = xcalloc(N, sizeof(char *));
	for (int i = 0; i < N; i++) {
		keys[i] = xasprintf("/veltrix/services/svc-%03d/inst-%05d", i % NS, i);
		vals[i] = xasprintf("{\"address\":\"10.%d.%d.%d\",\"port\":%d,\"capacity\":%d,"
				    "\"zone\":\"z%d\",\"tags\":[\"t\"],\"load\":{\"rps\":%d.5}}",
				    i >> 16, (i >> 8) & 255, i & 255, 1024 + i % 60000, 1 + i % 1000, i % 3, i);
		kvs[i] = kv(keys[i], vals[i], 100 + i);
	}
	srand(7);
	for (int i = N - 1; i > 0; i--) {
		int j = rand() % (i + 1);
		struct etcd_kv t = kvs[i];
		kvs[i] = kvs[j];
		kvs[j] = t;
	}
	struct reg_view *v = view();
	reg_view_load_snapshot(v, kvs, N, 100 + N);
	assert_int_equal(reg_view_n_instances(v), N);
	assert_int_equal(reg_view_n_services(v), NS);
	assert_int_equal(reg_view_n_rejected(v), 0);
	struct reg_changes ch;
	reg_view_changes(v, &ch);
	assert_int_equal(ch.n_services, NS);
	for (size_t s = 0; s < reg_view_n_services(v); s++) {
		const struct reg_service *svc = reg_view_service_at(v, s);
		assert_int_equal(svc->n_instances, NI);
		for (size_t i = 1; i < svc->n_instances; i++)
			assert_true(strcmp(svc->instances[i - 1]->name, svc->instances[i]->name) < 0);
	}
	char svc[32], inst[32];
	for (int i = 0; i < N; i++) {
		snprintf(svc, sizeof(svc), "svc-%03d", i % NS);
		snprintf(inst, sizeof(inst), "inst-%05d", i);
		const struct reg_instance *in = reg_view_find(v, svc, inst);
		assert_non_null(in);
		assert_int_equal(in->port, 1024 + i % 60000);
	}
	reg_view_clear_changes(v);
	/* every instance deleted in one batch, in key order, except one service re-put */
	struct etcd_event *ev = xcalloc(N, sizeof(*ev));
	for (int i = 0; i < N; i++)
		ev[i] = i % NS == 42 ? put(keys[i], VAL("10.0.0.1", 80), 200 + N + i)
				     : del(keys[i], 200 + N + i);
	assert_int_equal(reg_view_apply(v, ev, N, 200 + 2 * N), N);
	assert_int_equal(reg_view_n_instances(v), NI);
	assert_int_equal(reg_view_n_services(v), 1);
	reg_view_changes(v, &ch);
	assert_int_equal(ch.n_services, NS);
	assert_int_equal(reg_view_revision(v), 200 + 2 * N - 1); /* the last event's, not the header's */
	reg_view_free(v);
	for (int i = 0; i < N; i++) {
		free(keys[i]);
		free(vals[i]);
	}
	free(keys);
	free(vals);
	free(kvs);
	free(ev);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_snapshot_basics),
		cmocka_unit_test(test_events_put_update_delete),
		cmocka_unit_test(test_catch_up_in_two_responses),
		cmocka_unit_test(test_replays_and_revisions),
		cmocka_unit_test(test_rejected_update_keeps_last_good),
		cmocka_unit_test(test_rejected_keys_lifecycle),
		cmocka_unit_test(test_snapshot_is_a_diff),
		cmocka_unit_test(test_prefix_and_policy),
		cmocka_unit_test(test_ten_thousand),
	};
	return cmocka_run_group_tests_name("reg_view", tests, NULL, NULL);
}
