/* Inline SVG line charts. */
#include "scenario/chart.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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

/* The smallest of 1, 2, 2.5, 5 times a power of ten that is at least v: round tick steps. */
static double nice_step(double v)
{
	static const double m[] = { 1, 2, 2.5, 5, 10 };
	double p = pow(10, floor(log10(v)));
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
		if (m[i] * p >= v * 0.999)
			return m[i] * p;
	return 10 * p;
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
	if (!s.log_y && c->y_max > 0) {
		s.y_max = c->y_max;
		return s;
	}
	if (s.log_y) {
		if (s.y_min > s.y_max)
			s.y_min = 0.1, s.y_max = 1;
		s.y_min = pow(10, floor(log10(s.y_min)));
		s.y_max = pow(10, ceil(log10(s.y_max * 1.0001)));
	} else {
		s.y_max = 4 * nice_step(s.y_max > 0 ? s.y_max * 1.05 / 4 : 0.25);
	}
	return s;
}

/* Tick labels people read: 2500 -> "2.5k", 0.25 -> "0.25", never "1e+03". */
static void fmt_tick(char *out, size_t cap, double v)
{
	if (v >= 1e6)
		snprintf(out, cap, "%.3gM", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, cap, "%.3gk", v / 1e3);
	else if (v >= 1 || v == 0)
		snprintf(out, cap, "%.0f", v);
	else
		snprintf(out, cap, "%.2g", v);
}

/* A color goes into an attribute as it is: only [#a-zA-Z0-9] passes. */
static const char *safe_color(const char *c)
{
	size_t n = c ? strlen(c) : 0;
	if (n == 0 || n > 24 || strspn(c, "#abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") != n)
		return "#888";
	return c;
}

static int bands(struct buf *out, const struct chart *c, const struct scale *s)
{
	int r = 0;
	for (size_t i = 0; i < c->n_bands && !r; i++) {
		double x0 = px_x(s, c->bands[i].t0_s), x1 = px_x(s, c->bands[i].t1_s);
		if (x1 > x0)
			r |= buf_printf(out, "<rect x=\"%.1f\" y=\"%d\" width=\"%.1f\" height=\"%d\" class=\"b\"/>", x0, MT,
					x1 - x0, H - MT - MB);
	}
	return r;
}

/* Linear: five even steps. Log: each power of ten, with 2x and 5x when there are few. */
static size_t y_ticks(const struct scale *s, double *out, size_t cap)
{
	size_t n = 0;
	if (!s->log_y) {
		for (int i = 0; i <= 4; i++)
			out[n++] = s->y_max * i / 4.0;
		return n;
	}
	bool fine = s->y_max / s->y_min <= 100.5;
	for (double d = s->y_min; d <= s->y_max * 1.001 && n + 3 <= cap; d *= 10) {
		out[n++] = d;
		if (fine && d * 2 < s->y_max)
			out[n++] = d * 2;
		if (fine && d * 5 < s->y_max)
			out[n++] = d * 5;
	}
	return n;
}

static int axes(struct buf *out, const struct chart *c, const struct scale *s)
{
	char tick[32];
	int r = buf_printf(out, "<text x=\"%d\" y=\"18\" class=\"t\">", ML) | html_escape(out, c->title);
	r |= buf_puts(out, "</text>");
	r |= buf_printf(out, "<text x=\"4\" y=\"%d\" class=\"l\">", MT - 6) | html_escape(out, c->y_label);
	r |= buf_puts(out, "</text>");
	double ticks[40];
	size_t n = y_ticks(s, ticks, sizeof(ticks) / sizeof(ticks[0]));
	for (size_t i = 0; i < n; i++) {
		double y = px_y(s, ticks[i]);
		r |= buf_printf(out, "<line x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\" class=\"g\"/>", ML, W - MR, y, y);
		fmt_tick(tick, sizeof(tick), ticks[i]);
		r |= buf_printf(out, "<text x=\"%d\" y=\"%.1f\" class=\"l\" text-anchor=\"end\">%s</text>", ML - 4, y + 4, tick);
	}
	double step = nice_step(s->x_max / 6.0);
	if (step < 1)
		step = 1;
	for (double t = 0; t <= s->x_max + 1e-9; t += step) {
		double x = px_x(s, t);
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
		r |= buf_printf(out, "<text x=\"%.1f\" y=\"%d\" class=\"ml\" transform=\"rotate(90 %.1f %d)\">", x + 3,
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
					safe_color(se->color), se->dashed ? " stroke-dasharray=\"5 3\"" : "");
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
				safe_color(c->series[i].color));
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
	r |= bands(out, c, &s) | axes(out, c, &s) | marks(out, c, &s);
	for (size_t i = 0; i < c->n_series && !r; i++)
		r |= polyline(out, &c->series[i], &s);
	r |= legend(out, c);
	return r | buf_puts(out, "</svg>\n");
}
