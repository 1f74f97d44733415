/* The registry view: service -> valid instances, plus rejected keys, at one revision.
 *
 * Built from a snapshot, then moved forward by watch batches. Everything is kept in sorted
 * arrays of pointers (binary search to find, memmove to insert): registries hold thousands of
 * keys, not millions, and etcd hands snapshots over in key order, so inserts land at the end.
 * The view also records what changed (services to reconcile, keys newly rejected) until the
 * caller clears it, so a controller reconciles only dirty services and logs each rejection once. */
#include "registry/reg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "registry/reg_int.h"

/* A rejected key; `fresh` is 1 + its index in the pending list of new rejections, or 0. */
struct rej {
	struct reg_reject pub;
	size_t fresh;
};

struct pol {
	char *service;
	struct cidr *cidrs;
	size_t n;
};

struct reg_view {
	char prefix[REG_PREFIX_MAX + 1];
	struct pol *policy; /* sorted by service */
	size_t n_policy;
	int64_t revision;
	struct reg_service **svcs; /* sorted by name */
	size_t n_svcs, cap_svcs;
	size_t n_instances;
	struct rej **rejs; /* sorted by displayed key */
	size_t n_rejs, cap_rejs;
	char **dirty; /* sorted */
	size_t n_dirty, cap_dirty;
	struct reg_reject *fresh; /* copies, in the order seen */
	size_t n_fresh, cap_fresh;
};

/* ---- Sorted pointer arrays ---- */

typedef int (*cmp_fn)(const void *elem, const char *key);

/* Index of the first element not less than key; *found when it equals key. */
static size_t lower_bound(void *const *arr, size_t n, const char *key, cmp_fn cmp, bool *found)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cmp(arr[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < n && cmp(arr[lo], key) == 0;
	return lo;
}

static void *ptr_insert(void *arr, size_t *n, size_t *cap, size_t at, void *p)
{
	void **a = xgrow(arr, sizeof(void *), cap, *n + 1);
	memmove(a + at + 1, a + at, (*n - at) * sizeof(void *));
	a[at] = p;
	(*n)++;
	return a;
}

static void ptr_remove(void *arr, size_t *n, size_t at)
{
	void **a = arr;
	memmove(a + at, a + at + 1, (*n - at - 1) * sizeof(void *));
	(*n)--;
}

static int cmp_svc(const void *e, const char *key)
{
	return strcmp(((const struct reg_service *)e)->name, key);
}

static int cmp_inst(const void *e, const char *key)
{
	return strcmp(((const struct reg_instance *)e)->name, key);
}

static int cmp_rej(const void *e, const char *key)
{
	return strcmp(((const struct rej *)e)->pub.key, key);
}

static int cmp_str(const void *e, const char *key)
{
	return strcmp(e, key);
}

/* ---- Policy ---- */

static int pol_cmp(const void *a, const void *b)
{
	return strcmp(((const struct pol *)a)->service, ((const struct pol *)b)->service);
}

static int policy_copy(struct reg_view *v, const struct reg_policy *p, struct vxerr *err)
{
	if (!p || p->n_allow == 0)
		return 0;
	v->policy = xcalloc(p->n_allow, sizeof(*v->policy));
	for (size_t i = 0; i < p->n_allow; i++) {
		const struct reg_allow *a = &p->allow[i];
		if (!a->service || !reg_service_name_valid(a->service, strlen(a->service)))
			return vxerr_set(err, "allow-list for invalid service name '%s'",
					 a->service ? a->service : "(null)");
		struct pol *d = &v->policy[v->n_policy++];
		d->service = xstrdup(a->service);
		d->n = a->n_cidrs;
		d->cidrs = xcalloc(a->n_cidrs, sizeof(struct cidr));
		if (a->n_cidrs)
			memcpy(d->cidrs, a->cidrs, a->n_cidrs * sizeof(struct cidr));
	}
	qsort(v->policy, v->n_policy, sizeof(*v->policy), pol_cmp);
	for (size_t i = 1; i < v->n_policy; i++)
		if (strcmp(v->policy[i - 1].service, v->policy[i].service) == 0)
			return vxerr_set(err, "two allow-lists for service '%s'", v->policy[i].service);
	return 0;
}

static const struct pol *policy_find(const struct reg_view *v, const char *service)
{
	struct pol key = { .service = (char *)(uintptr_t)service };
	return v->n_policy ? bsearch(&key, v->policy, v->n_policy, sizeof(key), pol_cmp) : NULL;
}

/* ---- Lifetime ---- */

struct reg_view *reg_view_new(const char *prefix, const struct reg_policy *policy,
			      struct vxerr *err)
{
	if (!prefix)
		prefix = REG_DEFAULT_PREFIX;
	if (reg_prefix_check(prefix, err) != 0)
		return NULL;
	struct reg_view *v = xcalloc(1, sizeof(*v));
	memcpy(v->prefix, prefix, strlen(prefix) + 1);
	if (policy_copy(v, policy, err) != 0) {
		reg_view_free(v);
		return NULL;
	}
	return v;
}

static void reject_free_strings(struct reg_reject *r)
{
	free(r->key);
	free(r->message);
}

static void svc_free(struct reg_service *s)
{
	for (size_t i = 0; i < s->n_instances; i++) {
		reg_instance_release(s->instances[i]);
		free(s->instances[i]);
	}
	free(s->instances);
	free(s);
}

void reg_view_clear_changes(struct reg_view *v)
{
	for (size_t i = 0; i < v->n_dirty; i++)
		free(v->dirty[i]);
	v->n_dirty = 0;
	for (size_t i = 0; i < v->n_fresh; i++)
		reject_free_strings(&v->fresh[i]);
	v->n_fresh = 0;
	for (size_t i = 0; i < v->n_rejs; i++)
		v->rejs[i]->fresh = 0;
}

void reg_view_free(struct reg_view *v)
{
	if (!v)
		return;
	reg_view_clear_changes(v);
	for (size_t i = 0; i < v->n_svcs; i++)
		svc_free(v->svcs[i]);
	for (size_t i = 0; i < v->n_rejs; i++) {
		reject_free_strings(&v->rejs[i]->pub);
		free(v->rejs[i]);
	}
	for (size_t i = 0; i < v->n_policy; i++) {
		free(v->policy[i].service);
		free(v->policy[i].cidrs);
	}
	free(v->policy);
	free(v->svcs);
	free(v->rejs);
	free(v->dirty);
	free(v->fresh);
	free(v);
}

/* ---- Changes ---- */

static void mark_dirty(struct reg_view *v, const char *service)
{
	bool found;
	size_t at = lower_bound((void *const *)v->dirty, v->n_dirty, service, cmp_str, &found);
	if (!found)
		v->dirty = ptr_insert(v->dirty, &v->n_dirty, &v->cap_dirty, at, xstrdup(service));
}

static void note_fresh(struct reg_view *v, struct rej *r)
{
	struct reg_reject *f;
	if (r->fresh) {
		f = &v->fresh[r->fresh - 1];
		reject_free_strings(f);
	} else {
		v->fresh = xgrow(v->fresh, sizeof(*v->fresh), &v->cap_fresh, v->n_fresh + 1);
		f = &v->fresh[v->n_fresh++];
		r->fresh = v->n_fresh;
	}
	*f = r->pub;
	f->key = xstrdup(r->pub.key);
	f->message = xstrdup(r->pub.message);
}

/* ---- Services and instances ---- */

static struct reg_service *svc_find(const struct reg_view *v, const char *name, size_t *at)
{
	bool found;
	*at = lower_bound((void *const *)v->svcs, v->n_svcs, name, cmp_svc, &found);
	return found ? v->svcs[*at] : NULL;
}

static struct reg_instance *inst_find(const struct reg_service *s, const char *name, size_t *at)
{
	bool found;
	*at = lower_bound((void *const *)s->instances, s->n_instances, name, cmp_inst, &found);
	return found ? s->instances[*at] : NULL;
}

/* Takes ownership of *in (moved, not copied). */
static void instance_put(struct reg_view *v, struct reg_instance *in)
{
	size_t at;
	struct reg_service *s = svc_find(v, in->service, &at);
	if (!s) {
		s = xcalloc(1, sizeof(*s));
		memcpy(s->name, in->service, sizeof(s->name));
		v->svcs = ptr_insert(v->svcs, &v->n_svcs, &v->cap_svcs, at, s);
	}
	struct reg_instance *old = inst_find(s, in->name, &at);
	if (!old) {
		struct reg_instance *p = xmalloc(sizeof(*p));
		*p = *in;
		s->instances = ptr_insert(s->instances, &s->n_instances, &s->cap, at, p);
		v->n_instances++;
		mark_dirty(v, in->service);
		return;
	}
	bool changed = !reg_instance_same(old, in);
	reg_instance_release(old);
	*old = *in;
	if (changed)
		mark_dirty(v, in->service);
}

static void svc_remove_at(struct reg_view *v, size_t at)
{
	svc_free(v->svcs[at]);
	ptr_remove(v->svcs, &v->n_svcs, at);
}

static void instance_delete(struct reg_view *v, const struct reg_key *k)
{
	size_t sat, iat;
	struct reg_service *s = svc_find(v, k->service, &sat);
	struct reg_instance *in = s ? inst_find(s, k->instance, &iat) : NULL;
	if (!in)
		return;
	reg_instance_release(in);
	free(in);
	ptr_remove(s->instances, &s->n_instances, iat);
	v->n_instances--;
	mark_dirty(v, k->service);
	if (s->n_instances == 0)
		svc_remove_at(v, sat);
}

/* ---- Rejections ---- */

static void reject_remove(struct reg_view *v, const char *shown)
{
	bool found;
	size_t at = lower_bound((void *const *)v->rejs, v->n_rejs, shown, cmp_rej, &found);
	if (!found)
		return;
	reject_free_strings(&v->rejs[at]->pub);
	free(v->rejs[at]);
	ptr_remove(v->rejs, &v->n_rejs, at);
}

/* Finds or adds the record for `shown`; *fresh says whether this is news worth reporting
 * (a new key, or a new reason or message for a known one). */
static struct rej *reject_upsert(struct reg_view *v, const char *shown, const struct reg_fail *fail,
				 bool *fresh)
{
	bool found;
	size_t at = lower_bound((void *const *)v->rejs, v->n_rejs, shown, cmp_rej, &found);
	if (found) {
		struct rej *r = v->rejs[at];
		*fresh = r->pub.reason != fail->reason || strcmp(r->pub.message, fail->err.msg) != 0;
		free(r->pub.message);
		return r;
	}
	struct rej *r = xcalloc(1, sizeof(*r));
	r->pub.key = xstrdup(shown);
	v->rejs = ptr_insert(v->rejs, &v->n_rejs, &v->cap_rejs, at, r);
	*fresh = true;
	return r;
}

/* Records that the value at `shown` is rejected. A valid instance the key held before stays
 * as it was (fail static), flagged so status can say its update was refused. */
static void reject_put(struct reg_view *v, const char *shown, const struct reg_key *k,
		       const struct reg_fail *fail, const struct etcd_kv *kv)
{
	bool fresh;
	struct rej *r = reject_upsert(v, shown, fail, &fresh);
	r->pub.message = xstrdup(fail->err.msg);
	r->pub.reason = fail->reason;
	r->pub.mod_revision = kv->mod_revision;
	r->pub.lease = kv->lease;
	snprintf(r->pub.service, sizeof(r->pub.service), "%s", k ? k->service : "");
	snprintf(r->pub.instance, sizeof(r->pub.instance), "%s", k ? k->instance : "");
	if (fresh)
		note_fresh(v, r);
	size_t sat, iat;
	struct reg_service *s = k ? svc_find(v, k->service, &sat) : NULL;
	struct reg_instance *kept = s ? inst_find(s, k->instance, &iat) : NULL;
	if (kept)
		kept->update_rejected = true;
}

/* ---- Applying keys ---- */

static int decode_kv(const struct reg_view *v, const struct reg_key *k, const struct etcd_kv *kv,
		     struct reg_instance *out, struct reg_fail *fail)
{
	struct reg_instance in;
	if (reg_value_decode(kv->value, kv->value_len, &in, fail) != 0)
		return -1;
	memcpy(in.service, k->service, sizeof(in.service));
	memcpy(in.name, k->instance, sizeof(in.name));
	const struct pol *p = policy_find(v, k->service);
	if (p && reg_address_check(&in, p->cidrs, p->n, fail) != 0) {
		reg_instance_release(&in);
		return -1;
	}
	in.create_revision = kv->create_revision;
	in.mod_revision = kv->mod_revision;
	in.lease = kv->lease;
	*out = in;
	return 0;
}

static void apply_put(struct reg_view *v, const char *shown, const struct reg_key *k,
		      const struct etcd_kv *kv)
{
	struct reg_instance in;
	struct reg_fail fail;
	if (decode_kv(v, k, kv, &in, &fail) != 0) {
		vxerr_prefix(&fail.err, "%s: ", shown);
		reject_put(v, shown, k, &fail, kv);
		return;
	}
	instance_put(v, &in);
	if (v->n_rejs)
		reject_remove(v, shown);
}

/* Applies one key; returns its displayed form (caller frees), or NULL when it is not ours. */
static char *apply_kv(struct reg_view *v, const struct etcd_kv *kv, bool is_delete)
{
	struct reg_key k;
	struct reg_fail fail;
	enum reg_key_kind kind = reg_key_parse(v->prefix, kv->key, kv->key_len, &k, &fail);
	if (kind == REG_KEY_OUTSIDE)
		return NULL;
	char *shown = reg_key_display(kv->key, kv->key_len);
	if (is_delete) {
		if (kind == REG_KEY_INSTANCE)
			instance_delete(v, &k);
		reject_remove(v, shown);
	} else if (kind == REG_KEY_INVALID) {
		reject_put(v, shown, NULL, &fail, kv);
	} else {
		apply_put(v, shown, &k, kv);
	}
	return shown;
}

size_t reg_view_apply(struct reg_view *v, const struct etcd_event *events, size_t n,
		      int64_t delivered)
{
	int64_t start = v->revision, top = n == 0 && delivered > start ? delivered : start;
	size_t applied = 0;
	for (size_t i = 0; i < n; i++) {
		const struct etcd_kv *kv = &events[i].kv;
		if (kv->mod_revision <= start)
			continue;
		char *shown = apply_kv(v, kv, events[i].type == ETCD_EVENT_DELETE);
		applied += shown != NULL;
		free(shown);
		if (kv->mod_revision > top)
			top = kv->mod_revision;
	}
	v->revision = top;
	return applied;
}

/* ---- Snapshots ---- */

static int cmp_strp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool in_keys(char *const *keys, size_t n, const char *key)
{
	return n && bsearch(&key, keys, n, sizeof(char *), cmp_strp) != NULL;
}

/* Drops the instances of s whose keys are not in keys[] (filtering in place: O(n)). */
static void svc_prune(struct reg_view *v, struct reg_service *s, char *const *keys, size_t nk)
{
	size_t keep = 0;
	char key[REG_KEY_MAX];
	for (size_t i = 0; i < s->n_instances; i++) {
		struct reg_instance *in = s->instances[i];
		snprintf(key, sizeof(key), "%s/services/%s/%s", v->prefix, s->name, in->name);
		if (in_keys(keys, nk, key)) {
			s->instances[keep++] = in;
			continue;
		}
		reg_instance_release(in);
		free(in);
		v->n_instances--;
		mark_dirty(v, s->name);
	}
	s->n_instances = keep;
}

static void prune(struct reg_view *v, char *const *keys, size_t nk)
{
	size_t keep = 0;
	for (size_t i = 0; i < v->n_svcs; i++) {
		svc_prune(v, v->svcs[i], keys, nk);
		if (v->svcs[i]->n_instances)
			v->svcs[keep++] = v->svcs[i];
		else
			svc_free(v->svcs[i]);
	}
	v->n_svcs = keep;
	keep = 0;
	for (size_t i = 0; i < v->n_rejs; i++) {
		if (in_keys(keys, nk, v->rejs[i]->pub.key)) {
			v->rejs[keep++] = v->rejs[i];
			continue;
		}
		reject_free_strings(&v->rejs[i]->pub);
		free(v->rejs[i]);
	}
	v->n_rejs = keep;
}

void reg_view_load_snapshot(struct reg_view *v, const struct etcd_kv *kvs, size_t n,
			    int64_t revision)
{
	char **keys = xcalloc(n, sizeof(char *));
	size_t nk = 0;
	for (size_t i = 0; i < n; i++) {
		char *shown = apply_kv(v, &kvs[i], false);
		if (shown)
			keys[nk++] = shown;
	}
	qsort(keys, nk, sizeof(char *), cmp_strp);
	prune(v, keys, nk);
	for (size_t i = 0; i < nk; i++)
		free(keys[i]);
	free(keys);
	v->revision = revision;
}

/* ---- Reading ---- */

int64_t reg_view_revision(const struct reg_view *v)
{
	return v->revision;
}

const char *reg_view_prefix(const struct reg_view *v)
{
	return v->prefix;
}

size_t reg_view_n_instances(const struct reg_view *v)
{
	return v->n_instances;
}

size_t reg_view_n_services(const struct reg_view *v)
{
	return v->n_svcs;
}

const struct reg_service *reg_view_service_at(const struct reg_view *v, size_t i)
{
	return i < v->n_svcs ? v->svcs[i] : NULL;
}

const struct reg_service *reg_view_find_service(const struct reg_view *v, const char *name)
{
	size_t at;
	return svc_find(v, name, &at);
}

const struct reg_instance *reg_view_find(const struct reg_view *v, const char *service,
					 const char *instance)
{
	size_t at;
	const struct reg_service *s = svc_find(v, service, &at);
	return s ? inst_find(s, instance, &at) : NULL;
}

size_t reg_view_n_rejected(const struct reg_view *v)
{
	return v->n_rejs;
}

const struct reg_reject *reg_view_rejected_at(const struct reg_view *v, size_t i)
{
	return i < v->n_rejs ? &v->rejs[i]->pub : NULL;
}

void reg_view_changes(const struct reg_view *v, struct reg_changes *out)
{
	out->services = (const char *const *)v->dirty;
	out->n_services = v->n_dirty;
	out->rejects = v->fresh;
	out->n_rejects = v->n_fresh;
}
