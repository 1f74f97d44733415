/* Prometheus text format registry (see metrics.h). */
#include "common/metrics.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#define MAX_LABELS 4

struct series {
	char *labels[MAX_LABELS];
	double value;       /* counter, gauge; histogram: sum */
	uint64_t count;     /* histogram */
	uint64_t *buckets;  /* histogram: cumulative counts per bucket */
};

struct metric_family {
	char *name, *help;
	enum metric_type type;
	char *label_names[MAX_LABELS];
	size_t n_labels;
	double *bounds;
	size_t n_bounds;
	struct series *series;
	size_t n_series, cap_series;
	struct metric_family *next;
};

struct metrics {
	struct metric_family *head, *tail;
};

struct metrics *metrics_new(void)
{
	return xcalloc(1, sizeof(struct metrics));
}

static void series_release(const struct metric_family *f, struct series *s)
{
	for (size_t k = 0; k < f->n_labels; k++)
		free(s->labels[k]);
	free(s->buckets);
}

static void family_free(struct metric_family *f)
{
	for (size_t i = 0; i < f->n_series; i++)
		series_release(f, &f->series[i]);
	for (size_t k = 0; k < f->n_labels; k++)
		free(f->label_names[k]);
	free(f->series);
	free(f->bounds);
	free(f->name);
	free(f->help);
	free(f);
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	for (struct metric_family *f = m->head, *next; f; f = next) {
		next = f->next;
		family_free(f);
	}
	free(m);
}

static struct metric_family *family_new(struct metrics *m, const char *name, const char *help,
					enum metric_type type, const char *label_names)
{
	struct metric_family *f = xcalloc(1, sizeof(*f));
	f->name = xstrdup(name);
	f->help = xstrdup(help);
	f->type = type;
	for (const char *p = label_names; p && *p && f->n_labels < MAX_LABELS;) {
		size_t n = strcspn(p, ",");
		f->label_names[f->n_labels++] = xstrndup(p, n);
		p += n + (p[n] == ',');
	}
	if (m->tail)
		m->tail->next = f;
	else
		m->head = f;
	m->tail = f;
	return f;
}

struct metric_family *metrics_counter(struct metrics *m, const char *name, const char *help, const char *label_names)
{
	return family_new(m, name, help, METRIC_COUNTER, label_names);
}

struct metric_family *metrics_gauge(struct metrics *m, const char *name, const char *help, const char *label_names)
{
	return family_new(m, name, help, METRIC_GAUGE, label_names);
}

struct metric_family *metrics_histogram(struct metrics *m, const char *name, const char *help,
					const char *label_names, const double *buckets, size_t n_buckets)
{
	struct metric_family *f = family_new(m, name, help, METRIC_HISTOGRAM, label_names);
	f->bounds = xmalloc(sizeof(double) * (n_buckets ? n_buckets : 1));
	memcpy(f->bounds, buckets, sizeof(double) * n_buckets);
	f->n_bounds = n_buckets;
	return f;
}

static bool same_labels(const struct metric_family *f, const struct series *s, const char *const *labels)
{
	for (size_t k = 0; k < f->n_labels; k++)
		if (strcmp(s->labels[k], labels[k] ? labels[k] : "") != 0)
			return false;
	return true;
}

static struct series *series_get(struct metric_family *f, const char *const *labels, bool create)
{
	for (size_t i = 0; i < f->n_series; i++)
		if (same_labels(f, &f->series[i], labels))
			return &f->series[i];
	if (!create)
		return NULL;
	f->series = xgrow(f->series, sizeof(*f->series), &f->cap_series, f->n_series + 1);
	struct series *s = &f->series[f->n_series++];
	memset(s, 0, sizeof(*s));
	for (size_t k = 0; k < f->n_labels; k++)
		s->labels[k] = xstrdup(labels[k] ? labels[k] : "");
	if (f->type == METRIC_HISTOGRAM)
		s->buckets = xcalloc(f->n_bounds ? f->n_bounds : 1, sizeof(uint64_t));
	return s;
}

void metric_add(struct metric_family *f, double v, const char *const *labels)
{
	series_get(f, labels, true)->value += v;
}

void metric_set(struct metric_family *f, double v, const char *const *labels)
{
	series_get(f, labels, true)->value = v;
}

void metric_observe(struct metric_family *f, double v, const char *const *labels)
{
	struct series *s = series_get(f, labels, true);
	s->value += v;
	s->count++;
	for (size_t i = 0; i < f->n_bounds; i++)
		if (v <= f->bounds[i])
			s->buckets[i]++;
}

double metric_value(struct metric_family *f, const char *const *labels)
{
	struct series *s = series_get(f, labels, false);
	return s ? s->value : 0;
}

/* Label values are escaped as the format requires: backslash, quote, newline. */
static int label_index(const struct metric_family *f, const char *label)
{
	for (size_t k = 0; k < f->n_labels; k++)
		if (strcmp(f->label_names[k], label) == 0)
			return (int)k;
	return -1;
}

void metrics_forget(struct metrics *m, const char *label, const char *value)
{
	for (struct metric_family *f = m->head; f; f = f->next) {
		int k = label_index(f, label);
		if (k < 0)
			continue;
		size_t kept = 0;
		for (size_t i = 0; i < f->n_series; i++) {
			if (strcmp(f->series[i].labels[k], value) == 0)
				series_release(f, &f->series[i]);
			else
				f->series[kept++] = f->series[i];
		}
		f->n_series = kept;
	}
}

static int put_label_value(struct buf *out, const char *v)
{
	for (; *v; v++) {
		int r = *v == '\\' ? buf_puts(out, "\\\\") : *v == '"' ? buf_puts(out, "\\\"")
			: *v == '\n' ? buf_puts(out, "\\n") : buf_putc(out, *v);
		if (r)
			return -1;
	}
	return 0;
}

static int put_labels(struct buf *out, const struct metric_family *f, const struct series *s, const char *le)
{
	if (f->n_labels == 0 && !le)
		return 0;
	int r = buf_putc(out, '{');
	for (size_t k = 0; k < f->n_labels && !r; k++) {
		r |= buf_printf(out, "%s%s=\"", k ? "," : "", f->label_names[k]);
		r |= put_label_value(out, s->labels[k]);
		r |= buf_putc(out, '"');
	}
	if (le && !r)
		r |= buf_printf(out, "%sle=\"%s\"", f->n_labels ? "," : "", le);
	return r | buf_putc(out, '}');
}

static int put_number(struct buf *out, double v)
{
	if (isinf(v))
		return buf_puts(out, v > 0 ? "+Inf" : "-Inf");
	return buf_printf(out, "%.17g", v);
}

static int render_histogram(struct buf *out, const struct metric_family *f, const struct series *s)
{
	int r = 0;
	char le[32];
	for (size_t i = 0; i < f->n_bounds && !r; i++) {
		snprintf(le, sizeof(le), "%g", f->bounds[i]);
		r |= buf_printf(out, "%s_bucket", f->name) | put_labels(out, f, s, le);
		r |= buf_printf(out, " %llu\n", (unsigned long long)s->buckets[i]);
	}
	r |= buf_printf(out, "%s_bucket", f->name) | put_labels(out, f, s, "+Inf");
	r |= buf_printf(out, " %llu\n", (unsigned long long)s->count);
	r |= buf_printf(out, "%s_sum", f->name) | put_labels(out, f, s, NULL) | buf_putc(out, ' ');
	r |= put_number(out, s->value) | buf_putc(out, '\n');
	r |= buf_printf(out, "%s_count", f->name) | put_labels(out, f, s, NULL);
	return r | buf_printf(out, " %llu\n", (unsigned long long)s->count);
}

int metrics_render(const struct metrics *m, struct buf *out)
{
	static const char *const type_names[] = { "counter", "gauge", "histogram" };
	int r = 0;
	for (const struct metric_family *f = m->head; f && !r; f = f->next) {
		r |= buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, type_names[f->type]);
		for (size_t i = 0; i < f->n_series && !r; i++) {
			const struct series *s = &f->series[i];
			if (f->type == METRIC_HISTOGRAM) {
				r |= render_histogram(out, f, s);
				continue;
			}
			r |= buf_puts(out, f->name) | put_labels(out, f, s, NULL) | buf_putc(out, ' ');
			r |= put_number(out, s->value) | buf_putc(out, '\n');
		}
	}
	return r ? -1 : 0;
}
