/* Instances from typed fields, and the draining rewrite (see reg_write.h). Both lean on
 * reg_value_decode, so the rules live in one place: the codec. */
#include "registry/reg_write.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/parse.h"
#include "registry/reg_int.h"

static int name_check(const char *what, const char *s, const char *rule,
		      bool (*valid)(const char *, size_t), char *out, size_t cap, struct reg_fail *fail)
{
	if (!s)
		return reg_fail_set(fail, REG_BAD_NAME, "%s name is required", what);
	if (!valid(s, strlen(s))) {
		char *shown = reg_key_display(s, strlen(s));
		reg_fail_set(fail, REG_BAD_NAME, "%s name must match %s, got '%s'", what, rule, shown);
		free(shown);
		return -1;
	}
	snprintf(out, cap, "%s", s);
	return 0;
}

static bool all_digits(const char *s)
{
	if (*s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

/* A number field: a JSON integer when the text is one (the codec then checks its range), the
 * text itself otherwise (the codec then says it has the wrong type). Integers too long for
 * int64 cannot become JSON integers here, so their range error is reported directly. */
static int put_number(json_t *o, const char *name, const char *text, enum reg_reason range_reason,
		      struct reg_fail *fail)
{
	int64_t x;
	if (!text)
		return 0;
	if (!all_digits(text)) {
		json_object_set_new(o, name, json_string(text));
		return 0;
	}
	if (parse_i64(text, INT64_MIN, INT64_MAX, &x) != 0)
		return reg_fail_set(fail, range_reason, "field \"%s\": out of range, got %.40s", name, text);
	json_object_set_new(o, name, json_integer(x));
	return 0;
}

static void put_text(json_t *o, const char *name, const char *text)
{
	if (text)
		json_object_set_new(o, name, json_string(text));
}

/* The JSON value the fields describe (text already checked to be UTF-8), or NULL with *fail. */
static char *fields_json(const struct reg_fields *f, struct reg_fail *fail)
{
	json_t *o = json_object();
	put_text(o, "address", f->address);
	int rc = put_number(o, "port", f->port, REG_BAD_PORT, fail);
	if (rc == 0)
		rc = put_number(o, "capacity", f->capacity, REG_BAD_CAPACITY, fail);
	put_text(o, "state", f->state);
	if (rc == 0)
		rc = put_number(o, "weight", f->weight, REG_BAD_WEIGHT, fail);
	put_text(o, "zone", f->zone);
	put_text(o, "version", f->version);
	if (f->n_tags) {
		json_t *tags = json_array();
		for (size_t i = 0; i < f->n_tags; i++)
			json_array_append_new(tags, json_string(f->tags[i]));
		json_object_set_new(o, "tags", tags);
	}
	char *s = rc == 0 ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	json_decref(o);
	if (rc == 0 && !s)
		reg_fail_set(fail, REG_BAD_JSON, "the fields cannot be written as JSON");
	return s;
}

/* jansson refuses to make a string of invalid UTF-8 (json_string returns NULL and the member
 * is silently missing), so check the text fields first and say which one is wrong. */
static int utf8_check(const struct reg_fields *f, struct reg_fail *fail)
{
	static const char *const names[] = { "address", "state", "zone", "version" };
	const char *vals[] = { f->address, f->state, f->zone, f->version };
	for (size_t i = 0; i < 4; i++) {
		json_t *s = vals[i] ? json_string(vals[i]) : NULL;
		if (vals[i] && !s)
			return reg_fail_set(fail, REG_BAD_JSON, "field \"%s\": not valid UTF-8 text", names[i]);
		json_decref(s);
	}
	for (size_t i = 0; i < f->n_tags; i++) {
		json_t *s = json_string(f->tags[i]);
		if (!s)
			return reg_fail_set(fail, REG_BAD_JSON, "field \"tags[%zu]\": not valid UTF-8 text", i);
		json_decref(s);
	}
	return 0;
}

int reg_fields_instance(const struct reg_fields *f, const struct cidr *allow, size_t n_allow,
			struct reg_instance *out, struct reg_fail *fail)
{
	struct reg_instance in = { 0 };
	char service[REG_SERVICE_MAX + 1], instance[REG_INSTANCE_MAX + 1];
	if (name_check("service", f->service, "[a-z0-9][a-z0-9_-]{0,62}", reg_service_name_valid, service,
		       sizeof(service), fail) != 0 ||
	    name_check("instance", f->instance, "[A-Za-z0-9][A-Za-z0-9._:-]{0,63}", reg_instance_name_valid,
		       instance, sizeof(instance), fail) != 0 ||
	    utf8_check(f, fail) != 0)
		return -1;
	char *json = fields_json(f, fail);
	if (!json)
		return -1;
	int rc = reg_value_decode(json, strlen(json), &in, fail);
	free(json);
	if (rc != 0)
		return -1;
	memcpy(in.service, service, sizeof(in.service));
	memcpy(in.name, instance, sizeof(in.name));
	if (reg_address_check(&in, allow, n_allow, fail) != 0) {
		reg_instance_release(&in);
		return -1;
	}
	*out = in;
	return 0;
}

int reg_value_set_state(const char *data, size_t len, enum reg_state st, char **out, size_t *out_len,
			struct reg_fail *fail)
{
	struct reg_instance check = { 0 };
	if (reg_value_decode(data, len, &check, fail) != 0)
		return -1;
	reg_instance_release(&check);
	json_t *root = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
	if (!root) /* cannot happen after a successful decode; kept so the path is safe */
		return reg_fail_set(fail, REG_BAD_JSON, "value is not valid JSON");
	json_object_set_new(root, "state", json_string(reg_state_name(st)));
	char *s = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s)
		return reg_fail_set(fail, REG_BAD_JSON, "value cannot be written back as JSON");
	if (reg_value_decode(s, strlen(s), &check, fail) != 0) {
		free(s);
		return -1;
	}
	reg_instance_release(&check);
	*out_len = strlen(s);
	*out = s;
	return 0;
}
