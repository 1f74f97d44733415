/* The status report: merging the registry view with lease TTLs and data-plane rows, and the
 * text and JSON renderings (see reg_status.h; the JSON shape is in docs/registry.md). */
#include "registry/reg_status.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/texttab.h"

/* ---- the merged model ---- */

/* One service as the report shows it: what the registry, the configuration and the data plane
 * each know of it. */
struct st_svc {
	const char *name;
	bool configured;
	const struct reg_service *reg;    /* NULL: nothing registered */
	const struct reg_dp_backend *be;  /* NULL: no such backend, or no data plane */
	const struct reg_dp_server **dp;  /* per registered instance: its server, or NULL */
	const struct reg_dp_server **dp_only; /* servers the registry does not have */
	/* per dp_only server: the rejected key that names it, or NULL. HAProxy has a server of a
	 * key whose value is rejected when the controller kept the last valid value (fail static);
	 * one listing cannot know that value, but it can say why the key has no instance. */
	const struct reg_reject **dp_rejected;
	size_t n_dp_only;
};

struct st_model {
	const struct reg_status_input *in;
	bool dp_up; /* the data plane answered */
	struct st_svc *svcs;
	size_t n;
};

void reg_lease_hex(int64_t id, char out[17])
{
	snprintf(out, 17, "%016" PRIx64, (uint64_t)id);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static bool is_configured(const struct reg_status_input *in, const char *name)
{
	for (size_t i = 0; i < in->n_configured; i++)
		if (strcmp(in->configured[i], name) == 0)
			return true;
	return false;
}

static const struct reg_dp_backend *backend_find(const struct reg_status_input *in, const char *name)
{
	if (!in->dp_socket || in->dp_error)
		return NULL;
	for (size_t i = 0; i < in->n_backends; i++)
		if (strcmp(in->backends[i].name, name) == 0)
			return &in->backends[i];
	return NULL;
}

static bool has_rejects(const struct reg_view *v, const char *service)
{
	for (size_t i = 0; i < reg_view_n_rejected(v); i++)
		if (strcmp(reg_view_rejected_at(v, i)->service, service) == 0)
			return true;
	return false;
}

bool reg_status_known(const struct reg_status_input *in)
{
	if (!in->service)
		return true;
	return reg_view_find_service(in->view, in->service) || has_rejects(in->view, in->service) ||
	       is_configured(in, in->service) || backend_find(in, in->service);
}

/* The services of the report, sorted and distinct: registered or configured ones, or only the
 * selected one. Caller frees the array (not the names). */
static size_t service_names(const struct reg_status_input *in, const char ***out)
{
	size_t nv = reg_view_n_services(in->view), n = 0;
	const char **names = xcalloc(nv + in->n_configured + 1, sizeof(*names));
	if (in->service) {
		names[n++] = in->service;
		*out = names;
		return n;
	}
	for (size_t i = 0; i < nv; i++)
		names[n++] = reg_view_service_at(in->view, i)->name;
	for (size_t i = 0; i < in->n_configured; i++)
		names[n++] = in->configured[i];
	qsort(names, n, sizeof(*names), cmp_str);
	size_t w = 0;
	for (size_t i = 0; i < n; i++)
		if (w == 0 || strcmp(names[w - 1], names[i]) != 0)
			names[w++] = names[i];
	*out = names;
	return w;
}

static const struct reg_dp_server *server_find(const struct reg_dp_backend *be, const char *name)
{
	for (size_t i = 0; be && i < be->n; i++)
		if (strcmp(be->servers[i].name, name) == 0)
			return &be->servers[i];
	return NULL;
}

static const struct reg_reject *reject_find(const struct reg_view *v, const char *service, const char *instance)
{
	for (size_t i = 0; i < reg_view_n_rejected(v); i++) {
		const struct reg_reject *r = reg_view_rejected_at(v, i);
		if (strcmp(r->service, service) == 0 && strcmp(r->instance, instance) == 0)
			return r;
	}
	return NULL;
}

static void svc_fill(struct st_svc *s, const struct reg_status_input *in, const char *name)
{
	s->name = name;
	s->configured = is_configured(in, name);
	s->reg = reg_view_find_service(in->view, name);
	s->be = backend_find(in, name);
	size_t ni = s->reg ? s->reg->n_instances : 0;
	s->dp = xcalloc(ni + 1, sizeof(*s->dp));
	for (size_t i = 0; i < ni; i++)
		s->dp[i] = server_find(s->be, s->reg->instances[i]->name);
	s->dp_only = xcalloc((s->be ? s->be->n : 0) + 1, sizeof(*s->dp_only));
	s->dp_rejected = xcalloc((s->be ? s->be->n : 0) + 1, sizeof(*s->dp_rejected));
	for (size_t i = 0; s->be && i < s->be->n; i++) {
		const struct reg_dp_server *srv = &s->be->servers[i];
		if (reg_view_find(in->view, name, srv->name))
			continue;
		s->dp_rejected[s->n_dp_only] = reject_find(in->view, name, srv->name);
		s->dp_only[s->n_dp_only++] = srv;
	}
}

static void model_init(struct st_model *m, const struct reg_status_input *in)
{
	const char **names;
	memset(m, 0, sizeof(*m));
	m->in = in;
	m->dp_up = in->dp_socket && !in->dp_error;
	m->n = service_names(in, &names);
	m->svcs = xcalloc(m->n + 1, sizeof(*m->svcs));
	for (size_t i = 0; i < m->n; i++)
		svc_fill(&m->svcs[i], in, names[i]);
	free(names);
}

static void model_release(struct st_model *m)
{
	for (size_t i = 0; i < m->n; i++) {
		free(m->svcs[i].dp);
		free(m->svcs[i].dp_only);
		free(m->svcs[i].dp_rejected);
	}
	free(m->svcs);
	memset(m, 0, sizeof(*m));
}

static int cmp_ttl(const void *a, const void *b)
{
	return cmp_i64(&((const struct reg_lease_ttl *)a)->id, &((const struct reg_lease_ttl *)b)->id);
}

static int64_t ttl_of(const struct reg_status_input *in, int64_t lease)
{
	struct reg_lease_ttl key = { lease, 0 };
	const struct reg_lease_ttl *t = in->ttls ? bsearch(&key, in->ttls, in->n_ttls, sizeof(key), cmp_ttl) : NULL;
	return t ? t->ttl_s : REG_TTL_UNKNOWN;
}

static size_t n_instances(const struct st_model *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n; i++)
		n += m->svcs[i].reg ? m->svcs[i].reg->n_instances : 0;
	return n;
}

static size_t n_registered_services(const struct st_model *m)
{
	size_t n = 0;
	for (size_t i = 0; i < m->n; i++)
		n += m->svcs[i].reg != NULL;
	return n;
}

/* Rejected keys in scope: all of them, or those of the selected service. (A listing of one
 * service's range holds only that service's keys, whose names may be the invalid part.) */
static bool reject_in_scope(const struct reg_status_input *in, const struct reg_reject *r)
{
	return !in->service || !r->service[0] || strcmp(r->service, in->service) == 0;
}

static size_t n_rejects(const struct reg_status_input *in)
{
	size_t n = 0;
	for (size_t i = 0; i < reg_view_n_rejected(in->view); i++)
		n += reject_in_scope(in, reg_view_rejected_at(in->view, i));
	return n;
}

size_t reg_status_lease_ids(const struct reg_view *v, const char *service, int64_t **ids)
{
	size_t n = 0, cap = 0;
	int64_t *out = NULL;
	for (size_t i = 0; i < reg_view_n_services(v); i++) {
		const struct reg_service *s = reg_view_service_at(v, i);
		if (service && strcmp(service, s->name) != 0)
			continue;
		for (size_t j = 0; j < s->n_instances; j++) {
			if (s->instances[j]->lease == 0)
				continue;
			out = xgrow(out, sizeof(*out), &cap, n + 1);
			out[n++] = s->instances[j]->lease;
		}
	}
	if (n)
		qsort(out, n, sizeof(*out), cmp_i64);
	size_t w = 0;
	for (size_t i = 0; i < n && w < REG_STATUS_LEASES_MAX; i++)
		if (w == 0 || out[w - 1] != out[i])
			out[w++] = out[i];
	*ids = out;
	return w;
}

/* ---- JSON ---- */

static json_t *j_str(const char *s)
{
	return s && s[0] ? json_string(s) : json_null();
}

static json_t *j_num(int64_t v)
{
	return v >= 0 ? json_integer(v) : json_null();
}

static json_t *j_lease(int64_t lease)
{
	char hex[17];
	if (!lease)
		return json_null();
	reg_lease_hex(lease, hex);
	return json_string(hex);
}

static json_t *j_load(const struct reg_instance *in)
{
	if (!in->has_load)
		return json_null();
	const struct reg_load *l = &in->load;
	json_t *o = json_object();
	json_object_set_new(o, "inflight", l->has_inflight ? json_integer(l->inflight) : json_null());
	json_object_set_new(o, "rps", l->has_rps ? json_real(l->rps) : json_null());
	json_object_set_new(o, "latency_ms", l->has_latency_ms ? json_real(l->latency_ms) : json_null());
	return o;
}

static json_t *j_tags(const struct reg_instance *in)
{
	json_t *a = json_array();
	for (size_t i = 0; i < in->n_tags; i++)
		json_array_append_new(a, json_string(in->tags[i]));
	return a;
}

/* The data-plane columns shared by registered instances and servers only HAProxy has. */
static void j_dp_columns(json_t *o, const struct reg_dp_server *dp)
{
	json_object_set_new(o, "state", j_str(dp ? dp->state : NULL));
	json_object_set_new(o, "weight", j_num(dp ? dp->weight : -1));
	json_object_set_new(o, "sessions", j_num(dp ? dp->sessions : -1));
	json_object_set_new(o, "queue", j_num(dp ? dp->queue : -1));
	json_object_set_new(o, "rtime_ms", j_num(dp ? dp->rtime_ms : -1));
	json_object_set_new(o, "check", j_str(dp ? dp->check : NULL));
}

static json_t *j_instance_dp(const struct st_model *m, const struct reg_dp_server *dp)
{
	if (!m->dp_up)
		return json_null();
	json_t *o = json_object();
	json_object_set_new(o, "present", json_boolean(dp != NULL));
	j_dp_columns(o, dp);
	return o;
}

static json_t *j_instance(const struct st_model *m, const struct reg_instance *in,
			  const struct reg_dp_server *dp)
{
	char key[REG_KEY_MAX];
	const char *prefix = reg_view_prefix(m->in->view);
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(in->name));
	if (reg_key_build(prefix, in->service, in->name, key, sizeof(key), NULL) == 0)
		json_object_set_new(o, "key", json_string(key));
	else
		json_object_set_new(o, "key", json_null());
	json_object_set_new(o, "address", json_string(in->address));
	json_object_set_new(o, "port", json_integer(in->port));
	json_object_set_new(o, "capacity", in->capacity ? json_integer(in->capacity) : json_null());
	json_object_set_new(o, "state", json_string(reg_state_name(in->state)));
	json_object_set_new(o, "weight", in->has_weight ? json_integer(in->weight) : json_null());
	json_object_set_new(o, "zone", j_str(in->zone));
	json_object_set_new(o, "version", j_str(in->version));
	json_object_set_new(o, "tags", j_tags(in));
	json_object_set_new(o, "load", j_load(in));
	json_object_set_new(o, "lease", j_lease(in->lease));
	json_object_set_new(o, "lease_ttl_s", j_num(in->lease ? ttl_of(m->in, in->lease) : -1));
	json_object_set_new(o, "create_revision", json_integer(in->create_revision));
	json_object_set_new(o, "mod_revision", json_integer(in->mod_revision));
	json_object_set_new(o, "update_rejected", json_boolean(in->update_rejected));
	json_object_set_new(o, "haproxy", j_instance_dp(m, dp));
	return o;
}

static json_t *j_dp_only(const struct st_svc *s)
{
	json_t *a = json_array();
	for (size_t i = 0; i < s->n_dp_only; i++) {
		json_t *o = json_object();
		json_object_set_new(o, "name", json_string(s->dp_only[i]->name));
		json_object_set_new(o, "address", j_str(s->dp_only[i]->addr));
		json_object_set_new(o, "update_rejected", json_boolean(s->dp_rejected[i] != NULL));
		j_dp_columns(o, s->dp_only[i]);
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *j_service(const struct st_model *m, const struct st_svc *s)
{
	json_t *o = json_object(), *insts = json_array();
	json_object_set_new(o, "name", json_string(s->name));
	json_object_set_new(o, "configured", json_boolean(s->configured));
	for (size_t i = 0; s->reg && i < s->reg->n_instances; i++)
		json_array_append_new(insts, j_instance(m, s->reg->instances[i], s->dp[i]));
	json_object_set_new(o, "instances", insts);
	json_object_set_new(o, "haproxy_backend", m->dp_up ? json_boolean(s->be != NULL) : json_null());
	json_object_set_new(o, "haproxy_only", m->dp_up ? j_dp_only(s) : json_null());
	return o;
}

static json_t *j_rejected(const struct reg_status_input *in)
{
	json_t *a = json_array();
	for (size_t i = 0; i < reg_view_n_rejected(in->view); i++) {
		const struct reg_reject *r = reg_view_rejected_at(in->view, i);
		if (!reject_in_scope(in, r))
			continue;
		json_t *o = json_object();
		json_object_set_new(o, "key", json_string(r->key));
		json_object_set_new(o, "service", j_str(r->service));
		json_object_set_new(o, "reason", json_string(reg_reason_name(r->reason)));
		json_object_set_new(o, "message", json_string(r->message));
		json_object_set_new(o, "mod_revision", json_integer(r->mod_revision));
		json_object_set_new(o, "lease", j_lease(r->lease));
		json_array_append_new(a, o);
	}
	return a;
}

static json_t *j_registry(const struct st_model *m)
{
	const struct reg_status_input *in = m->in;
	json_t *o = json_object(), *eps = json_array();
	for (size_t i = 0; i < in->n_endpoints; i++)
		json_array_append_new(eps, json_string(in->endpoints[i]));
	json_object_set_new(o, "endpoints", eps);
	json_object_set_new(o, "prefix", json_string(reg_view_prefix(in->view)));
	json_object_set_new(o, "revision", json_integer(reg_view_revision(in->view)));
	json_object_set_new(o, "services", json_integer((json_int_t)n_registered_services(m)));
	json_object_set_new(o, "instances", json_integer((json_int_t)n_instances(m)));
	json_object_set_new(o, "rejected", json_integer((json_int_t)n_rejects(in)));
	return o;
}

static json_t *j_dataplane(const struct st_model *m)
{
	json_t *o = json_object();
	json_object_set_new(o, "socket", j_str(m->in->dp_socket));
	json_object_set_new(o, "reachable", json_boolean(m->dp_up));
	json_object_set_new(o, "error", j_str(m->in->dp_socket ? m->in->dp_error : NULL));
	return o;
}

char *reg_status_json(const struct reg_status_input *in)
{
	struct st_model m;
	model_init(&m, in);
	json_t *root = json_object(), *svcs = json_array();
	json_object_set_new(root, "registry", j_registry(&m));
	json_object_set_new(root, "haproxy", j_dataplane(&m));
	for (size_t i = 0; i < m.n; i++)
		json_array_append_new(svcs, j_service(&m, &m.svcs[i]));
	json_object_set_new(root, "services", svcs);
	json_object_set_new(root, "rejected", j_rejected(in));
	char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
	json_decref(root);
	char *out = xasprintf("%s\n", s ? s : "{}");
	free(s);
	model_release(&m);
	return out;
}

/* ---- text ---- */

enum { C_NAME, C_ADDR, C_PORT, C_CAP, C_STATE, C_WEIGHT, C_TTL, C_VERSION, C_ZONE,
       C_HSTATE, C_HWEIGHT, C_SESS, C_QUEUE, C_RTIME, C_CHECK, C_COUNT };

static const char *const col_names[C_COUNT] = {
	"INSTANCE", "ADDRESS", "PORT", "CAPACITY", "STATE", "WEIGHT", "TTL", "VERSION", "ZONE",
	"HAPROXY", "HWEIGHT", "SESSIONS", "QUEUE", "RTIME", "CHECK",
};

/* Cell text storage for one row. */
struct row_text {
	const char *cell[C_COUNT];
	char port[8], cap[16], weight[16], ttl[24], hweight[24], sess[24], queue[24], rtime[24];
};

static const char *num_cell(char *out, size_t cap, int64_t v, const char *suffix)
{
	if (v < 0)
		return NULL;
	snprintf(out, cap, "%" PRId64 "%s", v, suffix);
	return out;
}

static const char *ttl_cell(const struct reg_status_input *in, const struct reg_instance *inst, char *out,
			    size_t cap)
{
	if (!inst->lease)
		return "-";
	int64_t ttl = ttl_of(in, inst->lease);
	if (ttl == REG_TTL_GONE)
		return "expired";
	if (ttl < 0)
		return "?";
	snprintf(out, cap, "%" PRId64 "s", ttl);
	return out;
}

static void dp_cells(struct row_text *t, const struct reg_dp_server *dp)
{
	t->cell[C_HSTATE] = dp ? dp->state : "absent";
	if (!dp)
		return;
	t->cell[C_HWEIGHT] = num_cell(t->hweight, sizeof(t->hweight), dp->weight, "");
	t->cell[C_SESS] = num_cell(t->sess, sizeof(t->sess), dp->sessions, "");
	t->cell[C_QUEUE] = num_cell(t->queue, sizeof(t->queue), dp->queue, "");
	t->cell[C_RTIME] = num_cell(t->rtime, sizeof(t->rtime), dp->rtime_ms, "ms");
	t->cell[C_CHECK] = dp->check && dp->check[0] ? dp->check : NULL;
}

static void instance_cells(struct row_text *t, const struct st_model *m, const struct reg_instance *in,
			   const struct reg_dp_server *dp)
{
	memset(t, 0, sizeof(*t));
	t->cell[C_NAME] = in->name;
	t->cell[C_ADDR] = in->address;
	t->cell[C_PORT] = num_cell(t->port, sizeof(t->port), in->port, "");
	t->cell[C_CAP] = in->capacity ? num_cell(t->cap, sizeof(t->cap), in->capacity, "") : NULL;
	t->cell[C_STATE] = reg_state_name(in->state);
	t->cell[C_WEIGHT] = in->has_weight ? num_cell(t->weight, sizeof(t->weight), in->weight, "") : NULL;
	t->cell[C_TTL] = ttl_cell(m->in, in, t->ttl, sizeof(t->ttl));
	t->cell[C_VERSION] = in->version[0] ? in->version : NULL;
	t->cell[C_ZONE] = in->zone[0] ? in->zone : NULL;
	if (m->dp_up)
		dp_cells(t, dp);
}

static void dp_only_cells(struct row_text *t, const struct reg_dp_server *dp, bool update_rejected)
{
	memset(t, 0, sizeof(*t));
	t->cell[C_NAME] = dp->name;
	t->cell[C_ADDR] = dp->addr;
	t->cell[C_STATE] = update_rejected ? "rejected" : "unregistered";
	dp_cells(t, dp);
}

static void svc_heading(const struct st_model *m, const struct st_svc *s, FILE *out)
{
	size_t n = s->reg ? s->reg->n_instances : 0;
	fprintf(out, "\n%s: %zu instance%s, %s", s->name, n, n == 1 ? "" : "s",
		   s->configured ? "configured" : "not in the configuration");
	if (m->dp_up && s->be)
		fprintf(out, ", HAProxy backend with %zu server%s", s->be->n, s->be->n == 1 ? "" : "s");
	else if (m->dp_up)
		fprintf(out, ", no HAProxy backend named %s", s->name);
	fputc('\n', out);
}

/* Lines after a service's table for what the columns cannot say. */
static void svc_notes(const struct st_model *m, const struct st_svc *s, FILE *out)
{
	for (size_t i = 0; s->reg && i < s->reg->n_instances; i++) {
		const struct reg_instance *in = s->reg->instances[i];
		if (in->update_rejected)
			fprintf(out, "  note: %s: a later write was rejected (see rejected keys); this is its last valid value, still in use\n",
				   in->name);
		if (m->dp_up && s->be && !s->dp[i])
			fprintf(out, "  note: %s: registered but not in HAProxy's backend %s\n", in->name, s->name);
	}
	for (size_t i = 0; i < s->n_dp_only; i++)
		if (s->dp_rejected[i])
			fprintf(out, "  note: %s: its registry value was rejected (%s, see rejected keys); HAProxy still has the server, as a controller keeps the last valid value\n",
				   s->dp_only[i]->name, reg_reason_name(s->dp_rejected[i]->reason));
		else
			fprintf(out, "  note: %s: in HAProxy's backend %s but not in the registry\n", s->dp_only[i]->name,
				   s->name);
}

static void svc_text(const struct st_model *m, const struct st_svc *s, FILE *out)
{
	size_t ncols = m->dp_up ? C_COUNT : C_HSTATE;
	struct texttab t;
	struct row_text rt;
	svc_heading(m, s, out);
	if ((!s->reg || s->reg->n_instances == 0) && s->n_dp_only == 0) {
		fputs("  (no instances)\n", out);
		return;
	}
	texttab_init(&t, ncols);
	texttab_row(&t, col_names);
	for (size_t i = 0; s->reg && i < s->reg->n_instances; i++) {
		instance_cells(&rt, m, s->reg->instances[i], s->dp[i]);
		texttab_row(&t, rt.cell);
	}
	for (size_t i = 0; i < s->n_dp_only; i++) {
		dp_only_cells(&rt, s->dp_only[i], s->dp_rejected[i] != NULL);
		texttab_row(&t, rt.cell);
	}
	texttab_print(&t, "  ", out);
	texttab_release(&t);
	svc_notes(m, s, out);
}

/* The message without the key it starts with (the key has its own column). */
static const char *msg_without_key(const struct reg_reject *r)
{
	size_t n = strlen(r->key);
	if (strncmp(r->message, r->key, n) == 0 && strncmp(r->message + n, ": ", 2) == 0)
		return r->message + n + 2;
	return r->message;
}

static void rejects_text(const struct reg_status_input *in, FILE *out)
{
	size_t n = n_rejects(in);
	if (n == 0)
		return;
	static const char *const head[] = { "KEY", "REASON", "REVISION", "MESSAGE" };
	struct texttab t;
	texttab_init(&t, 4);
	texttab_row(&t, head);
	for (size_t i = 0; i < reg_view_n_rejected(in->view); i++) {
		const struct reg_reject *r = reg_view_rejected_at(in->view, i);
		char rev[24];
		if (!reject_in_scope(in, r))
			continue;
		snprintf(rev, sizeof(rev), "%" PRId64, r->mod_revision);
		const char *cells[] = { r->key, reg_reason_name(r->reason), rev, msg_without_key(r) };
		texttab_row(&t, cells);
	}
	fprintf(out, "\nrejected: %zu key%s (never applied; fix or delete them)\n", n, n == 1 ? "" : "s");
	texttab_print(&t, "  ", out);
	texttab_release(&t);
}

static void summary_text(const struct st_model *m, FILE *out)
{
	const struct reg_status_input *in = m->in;
	fprintf(out, "registry: %s, prefix %s, revision %" PRId64 ": ",
		   in->n_endpoints ? in->endpoints[0] : "-", reg_view_prefix(in->view), reg_view_revision(in->view));
	size_t ns = n_registered_services(m), ni = n_instances(m), nr = n_rejects(in);
	fprintf(out, "%zu service%s, %zu instance%s, %zu rejected\n", ns, ns == 1 ? "" : "s", ni,
		   ni == 1 ? "" : "s", nr);
	if (!in->dp_socket)
		fputs("haproxy: not asked (registry only)\n", out);
	else if (in->dp_error)
		fprintf(out, "haproxy: not reachable at %s (%s); registry only\n", in->dp_socket, in->dp_error);
	else
		fprintf(out, "haproxy: %s\n", in->dp_socket);
}

int reg_status_text(const struct reg_status_input *in, FILE *out)
{
	struct st_model m;
	model_init(&m, in);
	summary_text(&m, out);
	if (m.n == 0)
		fprintf(out, "\nno instances registered under %s/services/\n", reg_view_prefix(in->view));
	for (size_t i = 0; i < m.n; i++)
		svc_text(&m, &m.svcs[i], out);
	rejects_text(in, out);
	model_release(&m);
	return ferror(out) ? -1 : 0;
}
