/* The scenario loader: file -> bounded text -> YAML tree (config/yaml.h) -> struct scn, walking
 * the tree with the schema rows (scn_schema.c). Like the configuration loader, every problem
 * becomes a finding with its position and key path and the walk goes on, so one run reports
 * everything; cross-field checks follow in scn_check.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/parse.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "scenario/scn_load_int.h"

#define KEY_MAX 32
#define STR_MAX 1024
#define QUOTE_MAX 48

/* ---- findings and positions ---- */

static void quote(char *out, size_t cap, const char *s)
{
	size_t len = strlen(s);
	snprintf(out, cap, "\"%.*s%s\"", (int)(len > QUOTE_MAX ? QUOTE_MAX : len), s, len > QUOTE_MAX ? "..." : "");
}

static void mark_bad(struct scn_loader *L, const char *path)
{
	if (!path || !*path)
		return;
	L->bad = xgrow(L->bad, sizeof(*L->bad), &L->cap_bad, L->n_bad + 1);
	L->bad[L->n_bad++] = xstrdup(path);
}

bool scn_path_bad(const struct scn_loader *L, const char *path)
{
	size_t n = strlen(path);
	for (size_t i = 0; i < L->n_bad; i++)
		if (strncmp(L->bad[i], path, n) == 0 && (L->bad[i][n] == '\0' || L->bad[i][n] == '.' || L->bad[i][n] == '['))
			return true;
	return false;
}

void scn_lerr(struct scn_loader *L, const struct ynode *at, const char *path, const char *hint, const char *fmt, ...)
{
	va_list ap;
	mark_bad(L, path);
	va_start(ap, fmt);
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_diags_add(L->d, CFG_SEV_ERROR, L->file, at ? at->line : 0, at ? at->col : 0, path && *path ? path : NULL,
		      NULL, hint, "%s", msg);
}

static void pos_add(struct scn_loader *L, const char *path, const struct ynode *at)
{
	L->pos = xgrow(L->pos, sizeof(*L->pos), &L->cap_pos, L->n_pos + 1);
	L->pos[L->n_pos++] = (struct scn_pos){ xstrdup(path), at->line, at->col };
}

static const struct scn_pos *pos_near(const struct scn_loader *L, const char *path)
{
	char tmp[128];
	if (str_copy(tmp, sizeof(tmp), path) != 0)
		return NULL;
	for (;;) {
		for (size_t i = 0; i < L->n_pos; i++)
			if (strcmp(L->pos[i].path, tmp) == 0)
				return &L->pos[i];
		char *dot = strrchr(tmp, '.'), *br = strrchr(tmp, '[');
		char *cut = dot > br ? dot : br;
		if (!cut)
			return NULL;
		*cut = '\0';
	}
}

void scn_perr(struct scn_loader *L, const char *path, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char msg[512];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	const struct scn_pos *p = pos_near(L, path);
	cfg_diags_add(L->d, CFG_SEV_ERROR, L->file, p ? p->line : 0, p ? p->col : 0, path, NULL, hint, "%s", msg);
}

/* ---- scalar values ---- */

static bool printable(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 20 || s[0] < 'a' || s[0] > 'z')
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

static int set_int(const struct scn_row *row, const char *text, int64_t *out, char *why, size_t wl, char *hint,
		   size_t hl)
{
	char q[QUOTE_MAX + 8];
	quote(q, sizeof(q), text);
	int64_t v;
	if (parse_i64(text, INT64_MIN, INT64_MAX, &v) != 0) {
		snprintf(why, wl, "expected an integer, found %s", q);
		snprintf(hint, hl, "write a whole number such as 10 (no units or separators)");
		return -1;
	}
	if (v < row->min || v > row->max) {
		snprintf(why, wl, "%lld is out of range", (long long)v);
		snprintf(hint, hl, "write %lld to %lld", (long long)row->min, (long long)row->max);
		return -1;
	}
	*out = v;
	return 0;
}

static int set_dur(const struct scn_row *row, const char *text, int64_t *out, char *why, size_t wl, char *hint,
		   size_t hl)
{
	char q[QUOTE_MAX + 8], w[128], lo[32], hi[32];
	quote(q, sizeof(q), text);
	int64_t v;
	if (dur_parse(text, &v, w, sizeof(w)) != 0) {
		snprintf(why, wl, "%s is not a duration: %s", q, w);
		snprintf(hint, hl, "write a number with a unit: 250ms, 2s, 1m30s (units us, ms, s, m, h)");
		return -1;
	}
	if (v < row->min || v > row->max) {
		dur_format(row->min, lo, sizeof(lo));
		dur_format(row->max, hi, sizeof(hi));
		snprintf(why, wl, "%s is out of range", q);
		snprintf(hint, hl, "write %s to %s", lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int set_frac(const char *text, double *out, char *why, size_t wl, char *hint, size_t hl)
{
	char q[QUOTE_MAX + 8];
	quote(q, sizeof(q), text);
	double v;
	int r = strchr(text, '%') ? parse_percent(text, &v) : parse_double(text, 0, 1, &v);
	if (r != 0 || !(v >= 0 && v <= 1)) {
		snprintf(why, wl, "%s is not a fraction from 0 to 1", q);
		snprintf(hint, hl, "write 0.01 or 1%% (0 to 100%%)");
		return -1;
	}
	*out = v;
	return 0;
}

static int set_enum(const struct scn_row *row, const char *text, int *out, char *why, size_t wl, char *hint,
		    size_t hl)
{
	char q[QUOTE_MAX + 8];
	int best = -1, best_d = 255;
	for (int i = 0; row->choices[i]; i++) {
		if (strcmp(row->choices[i], text) == 0) {
			*out = i;
			return 0;
		}
		int d = str_edit_distance(text, row->choices[i]);
		if (d < best_d)
			best_d = d, best = i;
	}
	quote(q, sizeof(q), text);
	snprintf(why, wl, "unknown value %s", q);
	if (best >= 0 && best_d <= 2) {
		snprintf(hint, hl, "did you mean `%s`?", row->choices[best]);
		return -1;
	}
	size_t n = (size_t)snprintf(hint, hl, "write one of: ");
	for (int i = 0; row->choices[i] && n < hl; i++)
		n += (size_t)snprintf(hint + n, hl - n, "%s%s", i ? ", " : "", row->choices[i]);
	return -1;
}

static int set_rate(const char *text, struct scn_rate *out, char *why, size_t wl, char *hint, size_t hl)
{
	char a[64], q[QUOTE_MAX + 8];
	struct scn_rate r;
	const char *dots = strstr(text, "..");
	quote(q, sizeof(q), text);
	snprintf(hint, hl, "write requests per second: 500, or a ramp 500..3000 (0 to %.0f)", SCN_MAX_RATE);
	if (dots && (size_t)(dots - text) < sizeof(a)) {
		memcpy(a, text, (size_t)(dots - text));
		a[dots - text] = '\0';
		if (parse_double(a, 0, SCN_MAX_RATE, &r.from) == 0 && parse_double(dots + 2, 0, SCN_MAX_RATE, &r.to) == 0) {
			*out = r;
			return 0;
		}
	} else if (!dots && parse_double(text, 0, SCN_MAX_RATE, &r.from) == 0) {
		r.to = r.from;
		*out = r;
		return 0;
	}
	snprintf(why, wl, "%s is not a rate", q);
	return -1;
}

/* "p99 < 100ms, errors<1%" -> load_slo; spaces are dropped first. */
static int set_slo(const char *text, struct load_slo *out, char *why, size_t wl, char *hint, size_t hl)
{
	char compact[512];
	size_t n = 0;
	for (const char *p = text; *p && n + 1 < sizeof(compact); p++)
		if (*p != ' ' && *p != '\t')
			compact[n++] = *p;
	compact[n] = '\0';
	struct vxerr err;
	if (load_slo_parse(compact, out, &err) != 0) {
		snprintf(why, wl, "%s", err.msg);
		snprintf(hint, hl, "write terms such as `p99<100ms, errors<0.1%%, rps>=900` (docs/scenarios.md, Assertions)");
		return -1;
	}
	return 0;
}

static int set_dist(const char *text, struct ts_dist *out, char *why, size_t wl, char *hint, size_t hl)
{
	struct vxerr err;
	if (ts_dist_parse(text, out, &err) != 0) {
		snprintf(why, wl, "%s", err.msg);
		snprintf(hint, hl, "write 20ms, exp:20ms (mean) or uniform:10ms-30ms");
		return -1;
	}
	return 0;
}

static int set_string(const struct scn_row *row, const char *text, char **out, char *why, size_t wl, char *hint,
		      size_t hl)
{
	if (strlen(text) > STR_MAX || !printable(text)) {
		snprintf(why, wl, "text too long or holding control characters");
		snprintf(hint, hl, "write at most %d printable characters", STR_MAX);
		return -1;
	}
	if (row->type == SCN_V_PATH && (text[0] != '/' || strpbrk(text, " #\"'\\"))) {
		snprintf(why, wl, "not an absolute path without spaces");
		snprintf(hint, hl, "write a path such as / or /api/items");
		return -1;
	}
	free(*out);
	*out = xstrdup(text);
	return 0;
}

static int set_name(const struct scn_row *row, const char *text, char *out, char *why, size_t wl, char *hint,
		    size_t hl)
{
	char q[QUOTE_MAX + 8];
	quote(q, sizeof(q), text);
	if (row->type == SCN_V_NAME && !name_ok(text)) {
		snprintf(why, wl, "%s is not a valid group name", q);
		snprintf(hint, hl, "write a lowercase letter then up to 19 of [a-z0-9_-], such as `web`");
		return -1;
	}
	if (strlen(text) >= SCN_NAME_MAX || !printable(text)) {
		snprintf(why, wl, "%s is not an instance name", q);
		snprintf(hint, hl, "write an instance such as `web-2` (a group name, a dash, its number)");
		return -1;
	}
	snprintf(out, SCN_NAME_MAX, "%s", text);
	return 0;
}

int scn_value_set(const struct scn_row *row, const char *text, void *base, char *why, size_t whylen, char *hint,
		  size_t hintlen)
{
	char *field = (char *)base + row->off;
	switch (row->type) {
	case SCN_V_STR:
	case SCN_V_PATH:
		return set_string(row, text, (char **)(void *)field, why, whylen, hint, hintlen);
	case SCN_V_NAME:
	case SCN_V_INSTANCE:
		return set_name(row, text, field, why, whylen, hint, hintlen);
	case SCN_V_INT:
		return set_int(row, text, (int64_t *)(void *)field, why, whylen, hint, hintlen);
	case SCN_V_DUR:
		return set_dur(row, text, (int64_t *)(void *)field, why, whylen, hint, hintlen);
	case SCN_V_FRAC:
		return set_frac(text, (double *)(void *)field, why, whylen, hint, hintlen);
	case SCN_V_ENUM:
		return set_enum(row, text, (int *)(void *)field, why, whylen, hint, hintlen);
	case SCN_V_BOOL:
		if (strcmp(text, "true") != 0 && strcmp(text, "false") != 0) {
			snprintf(why, whylen, "expected true or false");
			snprintf(hint, hintlen, "write true or false");
			return -1;
		}
		*(bool *)(void *)field = strcmp(text, "true") == 0;
		return 0;
	case SCN_V_RATE:
		return set_rate(text, (struct scn_rate *)(void *)field, why, whylen, hint, hintlen);
	case SCN_V_SLO:
		return set_slo(text, (struct load_slo *)(void *)field, why, whylen, hint, hintlen);
	case SCN_V_DIST:
		return set_dist(text, (struct ts_dist *)(void *)field, why, whylen, hint, hintlen);
	case SCN_V_CAPS: {
		struct scn_group *g = base;
		if (set_int(row, text, &g->caps[0], why, whylen, hint, hintlen) != 0)
			return -1;
		g->n_caps = 1;
		return 0;
	}
	default:
		snprintf(why, whylen, "expected %s", scn_type_name(row->type));
		snprintf(hint, hintlen, "see docs/scenarios.md");
		return -1;
	}
}

static void defaults_apply(enum scn_scope scope, void *base)
{
	char why[256], hint[256];
	for (size_t i = 0; i < scn_rows_len; i++)
		if (scn_rows[i].scope == scope && scn_rows[i].def && scn_rows[i].type != SCN_V_SECTION &&
		    scn_rows[i].type != SCN_V_LIST)
			if (scn_value_set(&scn_rows[i], scn_rows[i].def, base, why, sizeof(why), hint, sizeof(hint)) != 0)
				abort(); /* a default that fails its own row: caught by the unit tests */
}

/* ---- the walk ---- */

static const char *leaf(const char *path)
{
	const char *dot = strrchr(path, '.');
	return dot ? dot + 1 : path;
}

static bool row_under(const struct scn_row *row, const char *spath)
{
	size_t n = strlen(spath);
	if (n == 0)
		return strchr(row->path, '.') == NULL;
	return strncmp(row->path, spath, n) == 0 && row->path[n] == '.' && !strchr(row->path + n + 1, '.');
}

static void unknown_key(struct scn_loader *L, const struct ynode *k, const char *spath, const char *ipath)
{
	char q[QUOTE_MAX + 8], hint[512];
	const struct scn_row *best = NULL, *elsewhere = NULL;
	int best_d = 255;
	for (size_t i = 0; i < scn_rows_len; i++) {
		if (!row_under(&scn_rows[i], spath)) {
			if (strcmp(leaf(scn_rows[i].path), k->text) == 0 && !elsewhere)
				elsewhere = &scn_rows[i];
			continue;
		}
		int d = str_edit_distance(k->text, leaf(scn_rows[i].path));
		if (d < best_d)
			best_d = d, best = &scn_rows[i];
	}
	quote(q, sizeof(q), k->text);
	if (best && best_d <= 2 && (size_t)best_d < strlen(k->text)) {
		snprintf(hint, sizeof(hint), "did you mean `%s`?", leaf(best->path));
	} else if (elsewhere) {
		snprintf(hint, sizeof(hint), "`%s` belongs at `%s`", k->text, elsewhere->path);
	} else {
		size_t n = (size_t)snprintf(hint, sizeof(hint), "valid keys here: ");
		bool first = true;
		for (size_t i = 0; i < scn_rows_len && n < sizeof(hint); i++)
			if (row_under(&scn_rows[i], spath)) {
				n += (size_t)snprintf(hint + n, sizeof(hint) - n, "%s%s", first ? "" : ", ", leaf(scn_rows[i].path));
				first = false;
			}
	}
	scn_lerr(L, k, ipath, hint, "unknown key %s", q);
}

static const char *kind_phrase(enum ykind k)
{
	static const char *const names[] = { [Y_NULL] = "an empty value", [Y_SCALAR] = "a single value",
					     [Y_SEQ] = "a list", [Y_MAP] = "a mapping" };
	return names[k];
}

static void load_map(struct scn_loader *L, const struct ynode *map, const char *spath, const char *ipath, void *base);

static void *list_item(struct scn_loader *L, enum scn_scope scope, size_t n, size_t i)
{
	struct scn *s = L->s;
	switch (scope) {
	case SCN_SCOPE_GROUP:
		if (!s->groups)
			s->groups = xcalloc(n, sizeof(*s->groups)), s->n_groups = n;
		return &s->groups[i];
	case SCN_SCOPE_PHASE:
		if (!s->phases)
			s->phases = xcalloc(n, sizeof(*s->phases)), s->n_phases = n;
		return &s->phases[i];
	case SCN_SCOPE_FAULT:
		if (!s->faults)
			s->faults = xcalloc(n, sizeof(*s->faults)), s->n_faults = n;
		return &s->faults[i];
	default:
		return s;
	}
}

static size_t list_limit(enum scn_scope scope)
{
	return scope == SCN_SCOPE_GROUP ? SCN_MAX_BACKENDS : scope == SCN_SCOPE_PHASE ? SCN_MAX_PHASES : SCN_MAX_FAULTS;
}

static void load_list(struct scn_loader *L, const struct scn_row *row, const struct ynode *seq, const char *ipath)
{
	size_t limit = list_limit(row->list_scope);
	if (seq->n == 0) {
		scn_lerr(L, seq, ipath, "write at least one `- ...` item", "the list is empty");
		return;
	}
	if (seq->n > limit) {
		scn_lerr(L, seq, ipath, "split the scenario into several files", "more than %zu items", limit);
		return;
	}
	for (size_t i = 0; i < seq->n; i++) {
		const struct ynode *item = seq->kids[i];
		char *ip = xasprintf("%s[%zu]", ipath, i);
		void *base = list_item(L, row->list_scope, seq->n, i);
		defaults_apply(row->list_scope, base);
		pos_add(L, ip, item);
		char *sp = xasprintf("%s[]", row->path);
		if (item->kind == Y_MAP)
			load_map(L, item, sp, ip, base);
		else
			scn_lerr(L, item, ip, "write each item as a mapping (`- key: value`)", "expected a mapping, found %s",
				 kind_phrase(item->kind));
		free(sp);
		free(ip);
	}
}

/* A scalar, or a list of scalars joined with commas (assert: [p99<1s, errors<1%]). */
static char *scalar_text(const struct ynode *v)
{
	if (v->kind == Y_SCALAR)
		return xstrdup(v->text);
	struct buf b = BUF_INIT(4096);
	for (size_t i = 0; i < v->n; i++) {
		if (v->kids[i]->kind != Y_SCALAR || (i && buf_putc(&b, ',') != 0) || buf_puts(&b, v->kids[i]->text) != 0) {
			buf_release(&b);
			return NULL;
		}
	}
	size_t len;
	char *out = buf_detach(&b, &len);
	return out ? out : xstrdup("");
}

static void keep_assert_text(struct scn_loader *L, const struct scn_row *row, void *base, const char *text)
{
	char **slot = row->scope == SCN_SCOPE_PHASE ? &((struct scn_phase *)base)->assert_text : &L->s->assert_text;
	free(*slot);
	*slot = xstrdup(text);
}

static void load_caps(struct scn_loader *L, const struct scn_row *row, const struct ynode *seq, const char *ipath,
		      struct scn_group *g)
{
	char why[256], hint[256];
	if (seq->n == 0 || seq->n > SCN_MAX_BACKENDS) {
		scn_lerr(L, seq, ipath, "write one capacity per instance", "expected 1 to %d capacities", SCN_MAX_BACKENDS);
		return;
	}
	for (size_t i = 0; i < seq->n; i++) {
		const struct ynode *it = seq->kids[i];
		int64_t v;
		if (it->kind != Y_SCALAR || set_int(row, it->text, &v, why, sizeof(why), hint, sizeof(hint)) != 0) {
			scn_lerr(L, it, ipath, it->kind == Y_SCALAR ? hint : "write a number",
				 "%s", it->kind == Y_SCALAR ? why : "expected an integer");
			return;
		}
		g->caps[i] = v;
	}
	g->n_caps = seq->n;
}

static void load_instances(struct scn_loader *L, const struct ynode *seq, const char *ipath, struct scn_fault *f)
{
	if (seq->n == 0 || seq->n > SCN_MAX_BACKENDS) {
		scn_lerr(L, seq, ipath, "list the instances, such as [web-1, web-2]", "expected 1 to %d instances",
			 SCN_MAX_BACKENDS);
		return;
	}
	free(f->targets);
	f->targets = xcalloc(seq->n, sizeof(*f->targets));
	f->n_targets = seq->n;
	for (size_t i = 0; i < seq->n; i++) {
		char *ip = xasprintf("%s[%zu]", ipath, i);
		pos_add(L, ip, seq->kids[i]);
		if (seq->kids[i]->kind != Y_SCALAR || strlen(seq->kids[i]->text) >= SCN_NAME_MAX)
			scn_lerr(L, seq->kids[i], ip, "write an instance such as `web-2`", "not an instance name");
		else
			snprintf(f->targets[i], SCN_NAME_MAX, "%s", seq->kids[i]->text);
		free(ip);
	}
}

static void load_scalar(struct scn_loader *L, const struct scn_row *row, const struct ynode *v, const char *ipath,
			void *base)
{
	char why[512], hint[512];
	if (row->type == SCN_V_SLO && v->kind == Y_SEQ) {
		char *text = scalar_text(v);
		if (!text) {
			scn_lerr(L, v, ipath, "write each assertion as a single value", "expected a list of assertions");
			return;
		}
		if (scn_value_set(row, text, base, why, sizeof(why), hint, sizeof(hint)) != 0)
			scn_lerr(L, v, ipath, hint, "%s", why);
		else
			keep_assert_text(L, row, base, text);
		free(text);
		return;
	}
	if (scn_value_set(row, v->text, base, why, sizeof(why), hint, sizeof(hint)) != 0)
		scn_lerr(L, v, ipath, hint, "%s", why);
	else if (row->type == SCN_V_SLO)
		keep_assert_text(L, row, base, v->text);
	if (row->type == SCN_V_INT && strcmp(row->path, "backends[].count") == 0) {
		size_t gi = (size_t)((struct scn_group *)base - L->s->groups);
		if (gi < SCN_MAX_BACKENDS)
			L->count_given[gi] = true;
	}
}

static bool wants_seq(const struct scn_row *row)
{
	return row->type == SCN_V_LIST || row->type == SCN_V_INSTANCES;
}

static void load_value(struct scn_loader *L, const struct scn_row *row, const struct ynode *v, const char *ipath,
		       void *base)
{
	bool seq_ok = wants_seq(row) || row->type == SCN_V_CAPS || row->type == SCN_V_SLO;
	pos_add(L, ipath, v);
	if (v->kind == Y_NULL) {
		if (row->type != SCN_V_SECTION)
			scn_lerr(L, v, ipath, row->def ? "write a value, or remove the key to use the default" : "write a value",
				 "missing value");
	} else if (row->type == SCN_V_SECTION && v->kind == Y_MAP) {
		load_map(L, v, row->path, ipath, base);
	} else if (row->type == SCN_V_LIST && v->kind == Y_SEQ) {
		load_list(L, row, v, ipath);
	} else if (row->type == SCN_V_INSTANCES && v->kind == Y_SEQ) {
		load_instances(L, v, ipath, base);
	} else if (row->type == SCN_V_CAPS && v->kind == Y_SEQ) {
		load_caps(L, row, v, ipath, base);
	} else if (v->kind == Y_SCALAR && !wants_seq(row) && row->type != SCN_V_SECTION) {
		load_scalar(L, row, v, ipath, base);
	} else if (v->kind == Y_SEQ && row->type == SCN_V_SLO) {
		load_scalar(L, row, v, ipath, base);
	} else {
		const char *want = row->type == SCN_V_SECTION ? "a mapping" : wants_seq(row) ? "a list" :
				   seq_ok ? "a value or a list" : "a single value";
		scn_lerr(L, v, ipath,
			 row->type == SCN_V_SECTION ? "write its keys indented below it" :
			 wants_seq(row)	       ? "write one `- item` per line, or [a, b]" :
						 "write a single value on the same line as the key",
			 "expected %s, found %s", want, kind_phrase(v->kind));
	}
}

static bool key_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

static char *join(const char *a, const char *b)
{
	return *a ? xasprintf("%s.%s", a, b) : xstrdup(b);
}

static void note_fault_key(struct scn_loader *L, const struct scn_row *row, void *base)
{
	if (row->scope != SCN_SCOPE_FAULT)
		return;
	size_t fi = (size_t)((struct scn_fault *)base - L->s->faults);
	if (fi < SCN_MAX_FAULTS)
		L->fault_keys[fi] |= scn_fault_key_bit(leaf(row->path));
}

static void load_map(struct scn_loader *L, const struct ynode *map, const char *spath, const char *ipath, void *base)
{
	int *seen = xcalloc(scn_rows_len, sizeof(*seen));
	for (size_t i = 0; i + 1 < map->n; i += 2) {
		const struct ynode *k = map->kids[i], *v = map->kids[i + 1];
		char *sp = join(spath, k->text), *ip = join(ipath, k->text);
		const struct scn_row *row = str_all_in(k->text, k->len, KEY_MAX, key_char) ? scn_row_find(sp) : NULL;
		if (!row) {
			unknown_key(L, k, spath, ip);
		} else if (seen[row - scn_rows]) {
			char hint[64];
			snprintf(hint, sizeof(hint), "keep only one; the first is on line %d", seen[row - scn_rows]);
			scn_lerr(L, k, ip, hint, "duplicate key `%s`", k->text);
		} else {
			seen[row - scn_rows] = k->line > 0 ? k->line : 1;
			note_fault_key(L, row, base);
			load_value(L, row, v, ip, base);
		}
		free(sp);
		free(ip);
	}
	for (size_t i = 0; i < scn_rows_len; i++) {
		if (!(scn_rows[i].flags & SCN_F_REQUIRED) || seen[i] || !row_under(&scn_rows[i], spath))
			continue;
		char *ip = join(ipath, leaf(scn_rows[i].path));
		char hint[96];
		snprintf(hint, sizeof(hint), "add `%s:` (%s)", leaf(scn_rows[i].path), scn_type_name(scn_rows[i].type));
		scn_lerr(L, map, ip, hint, "missing required key `%s`", leaf(scn_rows[i].path));
		free(ip);
	}
	free(seen);
}

/* ---- scenarios ---- */

void scn_free(struct scn *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_phases; i++) {
		free(s->phases[i].name);
		free(s->phases[i].assert_text);
	}
	for (size_t i = 0; i < s->n_faults; i++)
		free(s->faults[i].targets);
	free(s->phases);
	free(s->faults);
	free(s->groups);
	free(s->load.path);
	free(s->assert_text);
	free(s->name);
	free(s->description);
	free(s->file);
	free(s);
}

static void loader_release(struct scn_loader *L)
{
	for (size_t i = 0; i < L->n_pos; i++)
		free(L->pos[i].path);
	free(L->pos);
	for (size_t i = 0; i < L->n_bad; i++)
		free(L->bad[i]);
	free(L->bad);
}

/* Returns true when the walk happened (so the cross-field checks can run). */
static bool load_root(struct scn_loader *L, const struct ynode *root)
{
	if (!root) {
		scn_lerr(L, NULL, NULL, "start from examples/scenarios/crash.yaml", "the scenario is empty");
		return false;
	}
	if (root->kind != Y_MAP) {
		scn_lerr(L, root, NULL, "write keys such as `backends:`, `load:` and `faults:` at the top",
			 "the top level must be a mapping, found %s", kind_phrase(root->kind));
		return false;
	}
	load_map(L, root, "", "", L->s);
	return true;
}

static char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *b = slash ? slash + 1 : path;
	size_t n = strcspn(b, ".");
	return xstrndup(b, n ? n : strlen(b));
}

struct scn *scn_load_buffer(const char *name, const char *data, size_t len, struct cfg_diags *d)
{
	size_t errors = d->n_errors;
	struct scn *s = xcalloc(1, sizeof(*s));
	struct scn_loader L = { .file = name, .d = d, .s = s };
	struct ynode *root = NULL;
	s->file = xstrdup(name);
	s->service.balance = -1;
	defaults_apply(SCN_SCOPE_ROOT, s);
	if (len > SCN_MAX_FILE_BYTES)
		scn_lerr(&L, NULL, NULL, "a scenario is a few kilobytes; check that this is the right file",
			 "%zu bytes is larger than the limit of %d bytes", len, SCN_MAX_FILE_BYTES);
	else if (yaml_parse(name, data ? data : "", data ? len : 0, &root, d) == 0 && load_root(&L, root))
		scn_check(&L); /* also after findings: one run reports every problem */
	ynode_free(root);
	if (!s->name)
		s->name = base_name(name);
	loader_release(&L);
	if (d->n_errors != errors) {
		scn_free(s);
		return NULL;
	}
	return s;
}

struct scn *scn_load(const char *path, struct cfg_diags *d)
{
	size_t len = 0;
	char *data = yaml_read_file(path, SCN_MAX_FILE_BYTES, "a scenario", NULL, &len, d);
	if (!data)
		return NULL;
	struct scn *s = scn_load_buffer(path, data, len, d);
	free(data);
	return s;
}

int64_t scn_duration_us(const struct scn *s)
{
	int64_t t = 0;
	for (size_t i = 0; i < s->n_phases; i++)
		t += s->phases[i].duration_us;
	return t;
}

static int64_t scale_us(int64_t us, double f)
{
	return (int64_t)llround((double)us * f);
}

/* Throughput assertions follow the load; latency and error-rate ones stay as written. */
static void scale_slo(struct load_slo *slo, double load_scale)
{
	for (size_t i = 0; i < slo->n; i++)
		if (slo->terms[i].metric == LOAD_SLO_RPS)
			slo->terms[i].limit *= load_scale;
}

void scn_scale(struct scn *s, double time_scale, double load_scale)
{
	scale_slo(&s->assert_slo, load_scale);
	for (size_t i = 0; i < s->n_phases; i++) {
		struct scn_phase *p = &s->phases[i];
		scale_slo(&p->slo, load_scale);
		p->duration_us = scale_us(p->duration_us, time_scale);
		if (p->duration_us < 100 * USEC_PER_MS)
			p->duration_us = 100 * USEC_PER_MS;
		p->rate.from *= load_scale;
		p->rate.to *= load_scale;
	}
	for (size_t i = 0; i < s->n_faults; i++) {
		s->faults[i].at_us = scale_us(s->faults[i].at_us, time_scale);
		s->faults[i].interval_us = scale_us(s->faults[i].interval_us, time_scale);
		if (s->faults[i].capacity > 0)
			s->faults[i].capacity = llround(fmax(1, (double)s->faults[i].capacity * load_scale));
	}
	for (size_t i = 0; i < s->n_backends; i++)
		s->backends[i].capacity = llround(fmax(1, (double)s->backends[i].capacity * load_scale));
	for (size_t i = 0; i < s->n_groups; i++)
		for (size_t k = 0; k < s->groups[i].n_caps; k++)
			s->groups[i].caps[k] = llround(fmax(1, (double)s->groups[i].caps[k] * load_scale));
	s->slo.sustain_us = scale_us(s->slo.sustain_us, time_scale);
	if (s->slo.sustain_us < USEC_PER_SEC)
		s->slo.sustain_us = USEC_PER_SEC;
	s->service.drain_us = scale_us(s->service.drain_us, time_scale);
}
