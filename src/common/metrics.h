/* A small Prometheus metrics registry: counters, gauges and histograms with label values,
 * rendered in the text exposition format (version 0.0.4). Single-threaded: a daemon's loop owns
 * it. Families are registered once at start; series are created on first use and kept until
 * metrics_forget. */
#ifndef VX_COMMON_METRICS_H
#define VX_COMMON_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"

enum metric_type { METRIC_COUNTER, METRIC_GAUGE, METRIC_HISTOGRAM };

struct metrics;
struct metric_family;

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);

/* label_names: up to 4 comma-separated names ("service,kind"), or NULL/"" for none.
 * buckets: histogram upper bounds, ascending (seconds, by Prometheus convention). */
struct metric_family *metrics_counter(struct metrics *m, const char *name, const char *help, const char *label_names);
struct metric_family *metrics_gauge(struct metrics *m, const char *name, const char *help, const char *label_names);
struct metric_family *metrics_histogram(struct metrics *m, const char *name, const char *help,
					const char *label_names, const double *buckets, size_t n_buckets);

/* Label values in the order of the names, as many as there are names (ignored when none). */
void metric_add(struct metric_family *f, double v, const char *const *labels);
void metric_set(struct metric_family *f, double v, const char *const *labels);
void metric_observe(struct metric_family *f, double v, const char *const *labels);
/* Drops every series, in every family with that label, whose label has that value: what
 * described something that is gone (a service removed from the configuration). */
void metrics_forget(struct metrics *m, const char *label, const char *value);
/* Current value of a counter or gauge series (0 when the series does not exist). */
double metric_value(struct metric_family *f, const char *const *labels);

/* Appends the exposition text; returns -1 if the buffer's maximum was reached. */
int metrics_render(const struct metrics *m, struct buf *out);

#endif
