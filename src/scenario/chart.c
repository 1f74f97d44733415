/* Inline SVG line charts. */
#include "scenario/chart.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>

#define W 760
#define H 240
#define ML 64 /* margins: left for y ticks, bottom for x ticks, top for the title */
#define MR 16
#define MT 28
#define MB 36

int html_escape(struct buf *out, const char *s)
{
	int r = 0;
	for (; s && *s && !r; s++) {
		switch (*s) {
		case '&': r = buf_puts(out, "&amp;"); break;
		case '<': r = buf_puts(out, "&lt;"); break;
		case '>': r = buf_puts(out, "&gt;"); break;
		case '"': r = buf_puts(out, "&quot;"); break;
		default: r = buf_putc(out, *s);
		}
	}
	return r;
}

struct scale {
	double x_max, y_min, y_max;
	bool log_y;
};

static double px_x(const struct scale *s, double t)
{
	return ML + (W - ML - MR) * (s->x_max > 0 ? t / s->x_max : 0);
}

static double px_y(const struct scale *s, double v)
{
	double lo = s->log_y ? log10(s->y_min) : s->y_min, hi = s->log_y ? log10(s->y_max) : s->y_max;
	double x = s->log_y ? log10(v > s->y_min ? v : s->y_min) : v;
	double f = hi > lo ? (x - lo) / (hi - lo) : 0;
	return MT + (H - MT - MB) * (1 - f);
}

static struct scale compute_scale(const struct chart *c)
{
	struct scale s = { 1, c->log_y ? 1e300 : 0, 0, c->log_y };
	for (size_t i = 0; i < c->n_series; i++) {
		const struct chart_series *se = &c->series[i];
		if ((double)se->n > s.x_max)
			s.x_max = (double)se->n;
		for (size_t k = 0; k < se->n; k++) {
			double v = se->values[k];
			if (isnan(v) || (s.log_y && v <= 0))
				continue;
			if (v > s.y_max)
				s.y_max = v;
			if (s.log_y && v < s.y_min)
				s.y_min = v;
		}
	}
	if (s.log_y) {
		if (s.y_min > s.y_max)
			s.y_min = 0.1, s.y_max = 1;
		s.y_min = pow(10, floor(log10(s.y_min)));
		s.y_max = pow(10, ceil(log10(s.y_max * 1.0001)));
	} else {
		s.y_max = s.y_max > 0 ? s.y_max * 1.1 : 1;
	}
	return s;
}

static int axes(struct buf *out, const struct chart *c, const struct scale *s)
{
	int r = buf_printf(out, "<text x=\"%d\" y=\"18\" class=\"t\">", ML) | html_escape(out, c->title);
	r |= buf_puts(out, "</text>");
	r |= buf_printf(out, "<text x=\"4\" y=\"%d\" class=\"l\">", MT - 6) | html_escape(out, c->y_label);
	r |= buf_puts(out, "</text>");
	for (int i = 0; i <= 4; i++) {
		double v = s->log_y ? s->y_min * pow(s->y_max / s->y_min, i / 4.0) : s->y_max * i / 4.0;
		double y = px_y(s, v);
		r |= buf_printf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"g\"/>", ML, W - MR, y, y);
		r |= buf_printf(out, "<text x=\"%d\" y=\"%.1f\" class=\"l\" text-anchor=\"end\">%.3g</text>", ML - 4, y + 4, v);
	}
	for (int i = 0; i <= 6; i++) {
		double t = s->x_max * i / 6.0, x = px_x(s, t);
		r |= buf_printf(out, "<text x=\"%.1f\" y=\"%d\" class=\"l\" text-anchor=\"middle\">%.0fs</text>", x, H - MB + 16, t);
	}
	return r;
}

static int marks(struct buf *out, const struct chart *c, const struct scale *s)
{
	int r = 0;
	for (size_t i = 0; i < c->n_marks && !r; i++) {
		double x = px_x(s, c->marks[i].t_s);
		r |= buf_printf(out, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\" class=\"m\"/>", x, x, MT, H - MB);
		r |= buf_printf(out, "<text x=\"%.1f\" y=\"%d\" class=\"ml\" transform=\"rotate(-90 %.1f %d)\">", x + 3,
				MT + 4, x + 3, MT + 4);
		r |= html_escape(out, c->marks[i].label) | buf_puts(out, "</text>");
	}
	return r;
}

static int polyline(struct buf *out, const struct chart_series *se, const struct scale *s)
{
	int r = 0;
	bool open = false;
	for (size_t k = 0; k < se->n && !r; k++) {
		double v = se->values[k];
		if (isnan(v) || (s->log_y && v <= 0)) {
			if (open)
				r |= buf_puts(out, "\"/>");
			open = false;
			continue;
		}
		if (!open) {
			r |= buf_printf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"",
					se->color, se->dashed ? " stroke-dasharray=\"5 3\"" : "");
			open = true;
		}
		r |= buf_printf(out, "%.1f,%.1f ", px_x(s, (double)k + 0.5), px_y(s, v));
	}
	if (open)
		r |= buf_puts(out, "\"/>");
	return r;
}

static int legend(struct buf *out, const struct chart *c)
{
	int r = 0, x = ML;
	for (size_t i = 0; i < c->n_series && !r; i++) {
		r |= buf_printf(out, "<rect x=\"%d\" y=\"%d\" width=\"10\" height=\"10\" fill=\"%s\"/>", x, H - 14,
				c->series[i].color);
		r |= buf_printf(out, "<text x=\"%d\" y=\"%d\" class=\"l\">", x + 14, H - 5) | html_escape(out, c->series[i].name);
		r |= buf_puts(out, "</text>");
		x += 24 + 7 * (int)snprintf(NULL, 0, "%s", c->series[i].name);
	}
	return r;
}

int chart_svg(struct buf *out, const struct chart *c)
{
	struct scale s = compute_scale(c);
	int r = buf_printf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" role=\"img\">",
			   W, H, W, H);
	r |= axes(out, c, &s) | marks(out, c, &s);
	for (size_t i = 0; i < c->n_series && !r; i++)
		r |= polyline(out, &c->series[i], &s);
	r |= legend(out, c);
	return r | buf_puts(out, "</svg>\n");
}
