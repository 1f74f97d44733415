/* Line charts as inline SVG, for the self-contained HTML reports of scenarios and the demo:
 * no scripts, no fonts, no external references. Pure: data in, markup appended to a buffer. */
#ifndef VX_SCENARIO_CHART_H
#define VX_SCENARIO_CHART_H

#include <stddef.h>

#include "common/buf.h"

struct chart_series {
	const char *name;
	const char *color;    /* CSS color, e.g. "#d62728" */
	const double *values; /* one per second from t = 0; NaN leaves a gap */
	size_t n;
	int dashed;
};

struct chart_mark {
	double t_s;        /* seconds from the start */
	const char *label; /* "kill backend-2" */
};

/* A shaded stretch of the time axis (seconds of degraded service). */
struct chart_band {
	double t0_s, t1_s;
};

struct chart {
	const char *title;
	const char *y_label; /* "requests/s", "ms" */
	const struct chart_series *series;
	size_t n_series;
	const struct chart_mark *marks;
	size_t n_marks;
	int log_y; /* logarithmic y axis (latencies) */
	const struct chart_band *bands; /* drawn under everything, light red; may be NULL */
	size_t n_bands;
	double y_max; /* > 0: the top of a linear axis (100 for percentages); 0: from the data */
};

/* Appends one <svg> element. Text is escaped; colors must be plain CSS color tokens ("#d62728",
 * "red"): anything else is replaced by gray. Returns -1 when the buffer is full. */
int chart_svg(struct buf *out, const struct chart *c);
/* Appends s with &, <, >, " escaped for HTML text and attributes. */
int html_escape(struct buf *out, const char *s);

#endif
