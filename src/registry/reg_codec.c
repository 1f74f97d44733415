/* The instance codec: strict decode of a registry value (JSON) and its encoder.
 *
 * Values come from anyone who can write to etcd, in any language, so decoding trusts nothing:
 * size and nesting are checked before jansson sees the bytes, every known field has a type and
 * a range, and names of the reason codes are part of the contract (docs/registry.md). */
#include "registry/reg.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/alloc.h"
#include "registry/reg_int.h"

static const char *const reason_names[REG_REASON_COUNT] = {
	[REG_OK] = "ok",
	[REG_BAD_KEY] = "bad_key",
	[REG_BAD_NAME] = "bad_name",
	[REG_TOO_LARGE] = "too_large",
	[REG_BAD_JSON] = "bad_json",
	[REG_TOO_DEEP] = "too_deep",
	[REG_BAD_TYPE] = "bad_type",
	[REG_MISSING_FIELD] = "missing_field",
	[REG_BAD_ADDRESS] = "bad_address",
	[REG_ADDRESS_NOT_ALLOWED] = "address_not_allowed",
	[REG_BAD_PORT] = "bad_port",
	[REG_BAD_CAPACITY] = "bad_capacity",
	[REG_BAD_STATE] = "bad_state",
	[REG_BAD_WEIGHT] = "bad_weight",
	[REG_BAD_ZONE] = "bad_zone",
	[REG_BAD_VERSION] = "bad_version",
	[REG_BAD_TAGS] = "bad_tags",
	[REG_BAD_LOAD] = "bad_load",
};

static const char *const state_names[] = { "up", "draining", "down" };

const char *reg_reason_name(enum reg_reason r)
{
	return (unsigned)r < REG_REASON_COUNT ? reason_names[r] : "unknown";
}

const char *reg_state_name(enum reg_state s)
{
	return (unsigned)s < 3 ? state_names[s] : "unknown";
}

/* ---- Instance lifetime ---- */

void reg_instance_release(struct reg_instance *in)
{
	for (size_t i = 0; i < in->n_tags; i++)
		free(in->tags[i]);
	free(in->tags);
	memset(in, 0, sizeof(*in));
}

void reg_instance_copy(struct reg_instance *dst, const struct reg_instance *src)
{
	*dst = *src;
	dst->tags = NULL;
	if (src->n_tags == 0)
		return;
	dst->tags = xcalloc(src->n_tags, sizeof(char *));
	for (size_t i = 0; i < src->n_tags; i++)
		dst->tags[i] = xstrdup(src->tags[i]);
}

static bool load_same(const struct reg_load *a, const struct reg_load *b)
{
	return a->has_inflight == b->has_inflight && a->has_rps == b->has_rps &&
	       a->has_latency_ms == b->has_latency_ms &&
	       (!a->has_inflight || a->inflight == b->inflight) && (!a->has_rps || a->rps == b->rps) &&
	       (!a->has_latency_ms || a->latency_ms == b->latency_ms);
}

static bool tags_same(const struct reg_instance *a, const struct reg_instance *b)
{
	if (a->n_tags != b->n_tags)
		return false;
	for (size_t i = 0; i < a->n_tags; i++)
		if (strcmp(a->tags[i], b->tags[i]) != 0)
			return false;
	return true;
}

bool reg_instance_same(const struct reg_instance *a, const struct reg_instance *b)
{
	return strcmp(a->address, b->address) == 0 && a->port == b->port &&
	       a->capacity == b->capacity && a->state == b->state &&
	       a->has_weight == b->has_weight && (!a->has_weight || a->weight == b->weight) &&
	       strcmp(a->zone, b->zone) == 0 && strcmp(a->version, b->version) == 0 &&
	       tags_same(a, b) && a->has_load == b->has_load &&
	       (!a->has_load || load_same(&a->load, &b->load)) && a->lease == b->lease;
}

/* ---- Decoding helpers ---- */

/* Before jansson runs: no NUL bytes, and nesting (outside strings) within the cap, so a value
 * of 10,000 '[' costs one linear pass instead of a deep recursion. */
static int json_prescan(const char *p, size_t n, struct reg_fail *fail)
{
	bool in_str = false, esc = false;
	int depth = 0;
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c == '\0')
			return reg_fail_set(fail, REG_BAD_JSON, "value holds a NUL byte at offset %zu", i);
		if (in_str) {
			if (esc)
				esc = false;
			else if (c == '\\')
				esc = true;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if ((c == '[' || c == '{') && ++depth > REG_JSON_DEPTH_MAX) {
			return reg_fail_set(fail, REG_TOO_DEEP, "value nests deeper than %d levels",
					    REG_JSON_DEPTH_MAX);
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return 0;
}

static const char *type_name(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "object";
	case JSON_ARRAY: return "array";
	case JSON_STRING: return "string";
	case JSON_INTEGER: return "integer";
	case JSON_REAL: return "number with a fraction or exponent";
	case JSON_TRUE:
	case JSON_FALSE: return "boolean";
	case JSON_NULL: return "null";
	}
	return "unknown";
}

/* The offending value, compact and cut, for messages. */
static void show(const json_t *v, char *out, size_t cap)
{
	char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
	size_t n = s ? strlen(s) : 0;
	if (n < cap && n <= 40)
		snprintf(out, cap, "%s", s ? s : "?");
	else
		snprintf(out, cap, "%.40s...", s);
	free(s);
}

static int want_type(struct reg_fail *fail, const char *field, const char *want, const json_t *v)
{
	return reg_fail_set(fail, REG_BAD_TYPE, "field \"%s\": must be %s, got %s", field, want,
			    type_name(v));
}

static int int_in(const json_t *v, const char *field, int64_t min, int64_t max,
		  enum reg_reason r, int64_t *out, struct reg_fail *fail)
{
	if (!json_is_integer(v))
		return want_type(fail, field, "an integer", v);
	json_int_t x = json_integer_value(v);
	if (x < min || x > max)
		return reg_fail_set(fail, r, "field \"%s\": must be an integer from %lld to %lld, got %lld",
				    field, (long long)min, (long long)max, (long long)x);
	*out = x;
	return 0;
}

static int num_in(const json_t *v, const char *field, double max, double *out,
		  struct reg_fail *fail)
{
	if (!json_is_number(v))
		return want_type(fail, field, "a number", v);
	double x = json_number_value(v);
	if (!(x >= 0 && x <= max))
		return reg_fail_set(fail, REG_BAD_LOAD, "field \"%s\": must be a number from 0 to %g, got %g",
				    field, max, x);
	*out = x;
	return 0;
}

/* Bounded printable ASCII without spaces: zone, version and tags end up in logs, metrics
 * labels and status tables. */
static bool graph_text(const char *s, size_t len, size_t max)
{
	if (len > max)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static int text_in(const json_t *v, const char *field, size_t max, enum reg_reason r, char *out,
		   struct reg_fail *fail)
{
	if (!json_is_string(v))
		return want_type(fail, field, "a string", v);
	const char *s = json_string_value(v);
	size_t len = json_string_length(v);
	if (!graph_text(s, len, max)) {
		char got[64];
		show(v, got, sizeof(got));
		return reg_fail_set(fail, r,
				    "field \"%s\": must be at most %zu printable ASCII characters without spaces, got %s",
				    field, max, got);
	}
	memcpy(out, s, len + 1);
	return 0;
}

/* ---- Field decoders: one per known field ---- */

/* Literals that parse but can never be an instance's address: the unspecified address (what an
 * agent advertises when it reports its bind address by mistake; connecting to it reaches the
 * proxy host itself), broadcast and multicast. */
static const char *unusable(const char *canon, int family)
{
	unsigned char b[16];
	if (inet_pton(family, canon, b) != 1)
		return "not an address";
	if (strcmp(canon, "0.0.0.0") == 0 || strcmp(canon, "::") == 0)
		return "the unspecified address (register the address clients can reach)";
	if (strcmp(canon, "255.255.255.255") == 0)
		return "the broadcast address";
	if ((family == AF_INET && b[0] >= 224 && b[0] <= 239) || (family == AF_INET6 && b[0] == 0xff))
		return "a multicast address";
	return NULL;
}

static int f_address(const json_t *v, struct reg_instance *in, struct reg_fail *fail)
{
	if (!json_is_string(v))
		return want_type(fail, "address", "a string", v);
	const char *s = json_string_value(v);
	int family = -1;
	if (strlen(s) == json_string_length(v))
		family = net_ip_canon(s, in->address, sizeof(in->address));
	if (family < 0) {
		char got[64];
		show(v, got, sizeof(got));
		return reg_fail_set(fail, REG_BAD_ADDRESS,
				    "field \"address\": must be an IPv4 or IPv6 literal (no names, zones or leading zeros), got %s",
				    got);
	}
	const char *why = unusable(in->address, family);
	if (why)
		return reg_fail_set(fail, REG_BAD_ADDRESS, "field \"address\": %s is %s", in->address, why);
	in->family = family;
	return 0;
}

static int f_port(const json_t *v, struct reg_instance *in, struct reg_fail *fail)
{
	int64_t x = 0;
	if (int_in(v, "port", 1, 65535, REG_BAD_PORT, &x, fail) != 0)
		return -1;
	in->port = (uint16_t)x;
	return 0;
}

static int f_capacity(const json_t *v, struct reg_instance *in, struct reg_fail *fail)
{
	int64_t x = 0;
	if (int_in(v, "capacity", 1, REG_CAPACITY_MAX, REG_BAD_CAPACITY, &x, fail) != 0)
		return -1;
	in->capacity = (int32_t)x;
	return 0;
}

static int f_weight(const json_t *v, struct reg_instance *in, struct reg_fail *fail)
{
	int64_t x = 0;
	if (int_in(v, "weight", 0, REG_WEIGHT_MAX, REG_BAD_WEIGHT, &x, fail) != 0)
		return -1;
	in->weight = (int32_t)x;
	in->has_weight = true;
	return 0;
}

static int f_state(const json_t *v, struct reg_instance *in, struct reg_fail *fail)
{
	if (!json_is_string(v))
		return want_type(fail, "state", "a string", v);
	for (int i = 0; i < 3; i++) {
		if (strcmp(json_string_value(v), state_names[i]) == 0 &&
		    json_string_length(v) == strlen(state_names[i])) {
			in->state = (enum reg_state)i;
			return 0;
		}
	}
	char got[64];
	show(v, got, sizeof(got));
	return reg_fail_set(fail, REG_BAD_STATE, "field \"state\": must be up, draining or down, got %s",
			    got);
}

static int f_zone(const json_t *v, struct reg_instance *in, struct reg_fail *fail)
{
	return text_in(v, "zone", REG_ZONE_MAX, REG_BAD_ZONE, in->zone, fail);
}

static int f_version(const json_t *v, struct reg_instance *in, struct reg_fail *fail)
{
	return text_in(v, "version", REG_VERSION_MAX, REG_BAD_VERSION, in->version, fail);
}

static int f_tags(const json_t *v, struct reg_instance *in, struct reg_fail *fail)
{
	if (!json_is_array(v))
		return want_type(fail, "tags", "an array of strings", v);
	size_t n = json_array_size(v);
	if (n > REG_TAGS_MAX)
		return reg_fail_set(fail, REG_BAD_TAGS, "field \"tags\": at most %d tags, got %zu",
				    REG_TAGS_MAX, n);
	char tag[REG_TAG_MAX + 1], field[32];
	for (size_t i = 0; i < n; i++) {
		const json_t *t = json_array_get(v, i);
		snprintf(field, sizeof(field), "tags[%zu]", i);
		if (text_in(t, field, REG_TAG_MAX, REG_BAD_TAGS, tag, fail) != 0)
			return -1;
		if (!tag[0])
			return reg_fail_set(fail, REG_BAD_TAGS, "field \"%s\": must not be empty", field);
	}
	in->tags = n ? xcalloc(n, sizeof(char *)) : NULL;
	for (size_t i = 0; i < n; i++)
		in->tags[i] = xstrdup(json_string_value(json_array_get(v, i)));
	in->n_tags = n;
	return 0;
}

static int f_load(const json_t *v, struct reg_instance *in, struct reg_fail *fail)
{
	if (!json_is_object(v))
		return want_type(fail, "load", "an object", v);
	if (json_object_size(v) > REG_LOAD_FIELDS_MAX)
		return reg_fail_set(fail, REG_BAD_LOAD, "field \"load\": at most %d members, got %zu",
				    REG_LOAD_FIELDS_MAX, json_object_size(v));
	struct reg_load l = { 0 };
	const json_t *x;
	if ((x = json_object_get(v, "inflight")) && !json_is_null(x)) {
		if (int_in(x, "load.inflight", 0, REG_INFLIGHT_MAX, REG_BAD_LOAD, &l.inflight, fail))
			return -1;
		l.has_inflight = true;
	}
	if ((x = json_object_get(v, "rps")) && !json_is_null(x)) {
		if (num_in(x, "load.rps", REG_RPS_MAX, &l.rps, fail) != 0)
			return -1;
		l.has_rps = true;
	}
	if ((x = json_object_get(v, "latency_ms")) && !json_is_null(x)) {
		if (num_in(x, "load.latency_ms", REG_LATENCY_MS_MAX, &l.latency_ms, fail) != 0)
			return -1;
		l.has_latency_ms = true;
	}
	in->load = l;
	in->has_load = true;
	return 0;
}

static const struct field {
	const char *name;
	bool required;
	int (*decode)(const json_t *v, struct reg_instance *in, struct reg_fail *fail);
} fields[] = {
	{ "address", true, f_address }, { "port", true, f_port },
	{ "capacity", false, f_capacity }, { "state", false, f_state },
	{ "weight", false, f_weight },     { "zone", false, f_zone },
	{ "version", false, f_version },   { "tags", false, f_tags },
	{ "load", false, f_load },
};

/* Walks the known fields (so unknown ones are ignored by construction). */
static int decode_object(const json_t *root, struct reg_instance *in, struct reg_fail *fail)
{
	if (!json_is_object(root))
		return reg_fail_set(fail, REG_BAD_TYPE, "value must be a JSON object, got %s",
				    type_name(root));
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		const json_t *v = json_object_get(root, fields[i].name);
		if (!v && fields[i].required)
			return reg_fail_set(fail, REG_MISSING_FIELD, "field \"%s\" is required",
					    fields[i].name);
		if (!v || (json_is_null(v) && !fields[i].required))
			continue;
		if (fields[i].decode(v, in, fail) != 0)
			return -1;
	}
	return 0;
}

int reg_value_decode(const char *data, size_t len, struct reg_instance *out,
		     struct reg_fail *fail)
{
	if (len > REG_VALUE_MAX)
		return reg_fail_set(fail, REG_TOO_LARGE, "value is %zu bytes, more than the %d allowed",
				    len, REG_VALUE_MAX);
	if (!data || len == 0)
		return reg_fail_set(fail, REG_BAD_JSON, "value is empty");
	if (json_prescan(data, len, fail) != 0)
		return -1;
	json_error_t je;
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
	if (!root)
		return reg_fail_set(fail, REG_BAD_JSON, "value is not valid JSON: %s at byte %d",
				    je.text, je.position);
	struct reg_instance tmp = { 0 };
	int rc = decode_object(root, &tmp, fail);
	json_decref(root);
	if (rc != 0) {
		reg_instance_release(&tmp);
		return -1;
	}
	*out = tmp;
	return 0;
}

int reg_address_check(const struct reg_instance *in, const struct cidr *allow, size_t n,
		      struct reg_fail *fail)
{
	for (size_t i = 0; i < n; i++)
		if (cidr_contains(&allow[i], in->address))
			return 0;
	if (n == 0)
		return 0;
	return reg_fail_set(fail, REG_ADDRESS_NOT_ALLOWED,
			    "field \"address\": %s is outside the allow-list of service '%s'",
			    in->address, in->service);
}

/* ---- Encoding ---- */

static json_t *load_json(const struct reg_load *l)
{
	json_t *o = json_object();
	if (l->has_inflight)
		json_object_set_new(o, "inflight", json_integer(l->inflight));
	if (l->has_rps)
		json_object_set_new(o, "rps", json_real(l->rps));
	if (l->has_latency_ms)
		json_object_set_new(o, "latency_ms", json_real(l->latency_ms));
	return o;
}

static json_t *value_json(const struct reg_instance *in)
{
	json_t *o = json_object();
	json_object_set_new(o, "address", json_string(in->address));
	json_object_set_new(o, "port", json_integer(in->port));
	if (in->capacity)
		json_object_set_new(o, "capacity", json_integer(in->capacity));
	json_object_set_new(o, "state", json_string(reg_state_name(in->state)));
	if (in->has_weight)
		json_object_set_new(o, "weight", json_integer(in->weight));
	if (in->zone[0])
		json_object_set_new(o, "zone", json_string(in->zone));
	if (in->version[0])
		json_object_set_new(o, "version", json_string(in->version));
	if (in->n_tags) {
		json_t *a = json_array();
		for (size_t i = 0; i < in->n_tags; i++)
			json_array_append_new(a, json_string(in->tags[i]));
		json_object_set_new(o, "tags", a);
	}
	if (in->has_load)
		json_object_set_new(o, "load", load_json(&in->load));
	return o;
}

/* What decode cannot see after encoding: a non-canonical address would come back different,
 * a non-finite figure cannot be written as JSON at all. */
static int encodable(const struct reg_instance *in, struct vxerr *err)
{
	char canon[NET_IP_MAX];
	if (net_ip_canon(in->address, canon, sizeof(canon)) < 0 || strcmp(canon, in->address) != 0)
		return vxerr_set(err, "address '%s' is not a canonical IP literal", in->address);
	if (in->state > REG_STATE_DOWN)
		return vxerr_set(err, "state %d is not up, draining or down", (int)in->state);
	const struct reg_load *l = &in->load;
	if (in->has_load && ((l->has_rps && !isfinite(l->rps)) ||
			     (l->has_latency_ms && !isfinite(l->latency_ms))))
		return vxerr_set(err, "load figures must be finite numbers");
	return 0;
}

/* Dumps the value at the given number of significant digits and decodes it back: 0 when
 * the text reads back as the same instance. */
static int encode_at(const struct reg_instance *in, json_t *o, int digits, char **out,
		     struct vxerr *err)
{
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(digits));
	struct reg_instance back = { 0 };
	struct reg_fail fail;
	int rc = -1;
	if (!s)
		vxerr_set(err, "cannot encode instance value");
	else if (reg_value_decode(s, strlen(s), &back, &fail) != 0)
		vxerr_set(err, "instance value would be rejected (%s): %s",
			  reg_reason_name(fail.reason), fail.err.msg);
	else
		rc = 0;
	back.lease = in->lease; /* not part of the value */
	if (rc == 0 && !reg_instance_same(&back, in))
		rc = vxerr_set(err, "instance value does not survive encoding");
	reg_instance_release(&back);
	if (rc == 0)
		*out = s;
	else
		free(s);
	return rc;
}

int reg_value_encode(const struct reg_instance *in, char **out, size_t *len, struct vxerr *err)
{
	if (encodable(in, err) != 0)
		return -1;
	json_t *o = value_json(in);
	/* 15 significant digits first: a figure like 0.3 reads "0.3", not "0.29999999999999999";
	 * 17 when 15 would change it (17 always reads back as the same double). */
	char *s = NULL;
	int rc = encode_at(in, o, 15, &s, NULL);
	if (rc != 0)
		rc = encode_at(in, o, 17, &s, err);
	json_decref(o);
	if (rc == 0) {
		*len = strlen(s);
		*out = s;
	}
	return rc;
}
