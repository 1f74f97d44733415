/* The diagnostics list: capped collection, ordering, and text and JSON rendering. */
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/utf8.h"
#include "config/internal.h"

#define DIAG_TEXT_MAX 1024

void cfg_diags_init(struct cfg_diags *d, size_t cap)
{
	memset(d, 0, sizeof(*d));
	d->cap = cap ? cap : CFG_DIAGS_CAP;
}

void cfg_diags_release(struct cfg_diags *d)
{
	for (size_t i = 0; i < d->n; i++) {
		free(d->items[i].file);
		free(d->items[i].path);
		free(d->items[i].message);
		free(d->items[i].hint);
	}
	free(d->items);
	cfg_diags_init(d, d->cap);
}

/* Findings quote what the user wrote, which may hold control characters or (after a message
 * was cut short) half a UTF-8 sequence: a terminal must not interpret them, a message must
 * stay on one line, and JSON needs valid UTF-8. Such bytes become '?'. */
static char *clean_dup(const char *s)
{
	if (!s)
		return NULL;
	size_t len = strlen(s);
	char *out = xstrdup(s);
	for (size_t i = 0; i < len;) {
		size_t n = utf8_seq_len(out + i, len - i);
		if (n == 0 || (n == 1 && ((unsigned char)out[i] < 0x20 || out[i] == 0x7f))) {
			out[i++] = '?';
			continue;
		}
		i += n;
	}
	return out;
}

void cfg_diags_vadd(struct cfg_diags *d, enum cfg_severity sev, const char *file, int line, int col,
		    const char *path, const char *rule, const char *hint, const char *fmt, va_list ap)
{
	if (sev == CFG_SEV_ERROR)
		d->n_errors++;
	else
		d->n_warnings++;
	if (d->n >= d->cap) {
		d->n_omitted++;
		return;
	}
	char msg[DIAG_TEXT_MAX];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	d->items = xgrow(d->items, sizeof(*d->items), &d->alloc, d->n + 1);
	d->items[d->n++] = (struct cfg_diag){
		.severity = sev, .file = clean_dup(file), .line = line, .col = col, .path = clean_dup(path),
		.message = clean_dup(msg), .hint = clean_dup(hint), .rule = rule,
	};
}

void cfg_diags_add(struct cfg_diags *d, enum cfg_severity sev, const char *file, int line, int col,
		   const char *path, const char *rule, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	cfg_diags_vadd(d, sev, file, line, col, path, rule, hint, fmt, ap);
	va_end(ap);
}

static bool diag_before(const struct cfg_diag *a, const struct cfg_diag *b)
{
	return a->line < b->line || (a->line == b->line && a->col < b->col);
}

void cfg_diags_sort(struct cfg_diags *d)
{
	/* insertion sort: stable, and n is at most the cap */
	for (size_t i = 1; i < d->n; i++) {
		struct cfg_diag cur = d->items[i];
		size_t j = i;
		for (; j > 0 && diag_before(&cur, &d->items[j - 1]); j--)
			d->items[j] = d->items[j - 1];
		d->items[j] = cur;
	}
}

static const char *sev_name(enum cfg_severity s)
{
	return s == CFG_SEV_ERROR ? "error" : "warning";
}

static void print_one(const struct cfg_diag *g, FILE *out)
{
	if (g->file && g->line > 0)
		fprintf(out, "%s:%d:%d: ", g->file, g->line, g->col);
	else if (g->file)
		fprintf(out, "%s: ", g->file);
	fprintf(out, "%s: ", sev_name(g->severity));
	if (g->path)
		fprintf(out, "%s: ", g->path);
	fputs(g->message, out);
	if (g->hint)
		fprintf(out, "; %s", g->hint);
	if (g->rule)
		fprintf(out, " [%s]", g->rule);
	fputc('\n', out);
}

void cfg_diags_print(const struct cfg_diags *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++)
		print_one(&d->items[i], out);
	if (d->n_omitted)
		fprintf(out, "... %zu more finding%s not shown (at most %zu are listed)\n", d->n_omitted,
			d->n_omitted == 1 ? "" : "s", d->cap);
}

void cfg_diags_summary(const struct cfg_diags *d, char *out, size_t cap)
{
	snprintf(out, cap, "%zu error%s, %zu warning%s", d->n_errors, d->n_errors == 1 ? "" : "s",
		 d->n_warnings, d->n_warnings == 1 ? "" : "s");
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *diag_json(const struct cfg_diag *g)
{
	json_t *o = json_object();
	json_object_set_new(o, "severity", json_string(sev_name(g->severity)));
	json_object_set_new(o, "file", str_or_null(g->file));
	json_object_set_new(o, "line", json_integer(g->line));
	json_object_set_new(o, "column", json_integer(g->col));
	json_object_set_new(o, "path", str_or_null(g->path));
	json_object_set_new(o, "message", json_string(g->message));
	json_object_set_new(o, "hint", str_or_null(g->hint));
	json_object_set_new(o, "rule", str_or_null(g->rule));
	return o;
}

char *cfg_diags_to_json(const struct cfg_diags *d)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < d->n; i++)
		json_array_append_new(arr, diag_json(&d->items[i]));
	if (d->n_omitted) {
		json_t *o = json_object();
		json_object_set_new(o, "omitted", json_integer((json_int_t)d->n_omitted));
		json_array_append_new(arr, o);
	}
	char *s = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(arr);
	if (!s)
		abort(); /* only on allocation failure: same policy as xmalloc */
	char *out = xstrdup(s);
	free(s);
	return out;
}
