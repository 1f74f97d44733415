/* The HTML report: one self-contained page (inline CSS and SVG; no scripts, fonts, images or
 * links), readable offline and safe to attach to a ticket. For each run: the verdict, the phases
 * with their assertions, the faults, and charts of throughput, failures, latency and each
 * backend's share of the traffic, with the faults marked and degraded seconds shaded. With two
 * runs (the demo) a comparison table and overlay charts come first. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/timeutil.h"
#include "scenario/chart.h"
#include "scenario/scenario.h"

static const char *const palette[] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
				       "#7f7f7f", "#bcbd22", "#17becf", "#d62728" };
#define PALETTE_N (sizeof(palette) / sizeof(palette[0]))

static const char css[] =
	"body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px auto;max-width:1100px;color:#222;padding:0 16px}"
	"h1{font-size:22px}h2{font-size:18px;margin-top:36px;border-bottom:1px solid #ddd;padding-bottom:4px}"
	"table{border-collapse:collapse;margin:8px 0 16px}th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}"
	"th{background:#f4f4f4}td.n{text-align:right;font-variant-numeric:tabular-nums}.ok{color:#1a7f37}.bad{color:#c62828;font-weight:600}"
	".note{color:#555;font-size:13px}svg{display:block;margin:8px 0 18px;max-width:100%;height:auto}"
	"svg .t{font-size:13px;font-weight:600;fill:#222}svg .l{font-size:11px;fill:#555}svg .g{stroke:#e6e6e6}"
	"svg .m{stroke:#c62828;stroke-dasharray:3 3}svg .ml{font-size:10px;fill:#c62828}svg .b{fill:#fde0e0}";

static const char *stack_title(const struct scn_result *r)
{
	return r->stack == SCN_STACK_STATIC ? "static HAProxy" : "Veltrix";
}

static void text(struct buf *out, const char *s)
{
	html_escape(out, s);
}

static void fmt_ms(char *out, size_t cap, int64_t us)
{
	if (us >= 10 * USEC_PER_SEC)
		snprintf(out, cap, "%.1f s", (double)us / 1e6);
	else
		snprintf(out, cap, "%.1f ms", (double)us / 1000.0);
}

/* ---- series from a run ---- */

struct series_set {
	size_t n;
	double *target, *good, *failed, *err_pct, *p50, *p99;
	double *share[SCN_MAX_BACKENDS];
};

static double share_of(const struct scn_second *s, size_t b, size_t nb)
{
	double sum = 0;
	for (size_t i = 0; i < nb; i++) {
		if (isnan(s->served[i]))
			return NAN;
		sum += s->served[i];
	}
	return sum > 0 ? 100.0 * s->served[b] / sum : NAN;
}

static void series_fill(const struct scn_result *r, struct series_set *ss)
{
	size_t n = (size_t)r->totals.seconds;
	ss->n = n;
	double **all[] = { &ss->target, &ss->good, &ss->failed, &ss->err_pct, &ss->p50, &ss->p99 };
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		*all[i] = xcalloc(n ? n : 1, sizeof(double));
	for (size_t b = 0; b < r->n_backends; b++)
		ss->share[b] = xcalloc(n ? n : 1, sizeof(double));
	for (size_t k = 0; k < n; k++) {
		const struct scn_second *s = &r->seconds[k];
		uint64_t fin = load_counts_finished(&s->counts), failed = load_counts_failed(&s->counts);
		ss->target[k] = scn_target_rps(r->scn, k);
		ss->good[k] = scn_second_good_rps(s);
		ss->failed[k] = scn_second_failed_rps(s);
		ss->err_pct[k] = fin ? 100.0 * (double)failed / (double)fin : NAN;
		ss->p50[k] = s->has_latency ? (double)s->latency.p50_us / 1000.0 : NAN;
		ss->p99[k] = s->has_latency ? (double)s->latency.p99_us / 1000.0 : NAN;
		for (size_t b = 0; b < r->n_backends; b++)
			ss->share[b][k] = share_of(s, b, r->n_backends);
	}
}

static void series_free(struct series_set *ss, size_t nb)
{
	free(ss->target);
	free(ss->good);
	free(ss->failed);
	free(ss->err_pct);
	free(ss->p50);
	free(ss->p99);
	for (size_t b = 0; b < nb; b++)
		free(ss->share[b]);
}

/* ---- marks and bands ---- */

struct decor {
	struct chart_mark marks[SCN_MAX_FAULTS];
	char labels[SCN_MAX_FAULTS][64];
	size_t n_marks;
	struct chart_band *bands;
	size_t n_bands;
};

static void decor_fill(const struct scn_result *r, struct decor *d)
{
	d->n_marks = 0;
	for (size_t i = 0; i < r->n_faults; i++) {
		const struct scn_fault_result *f = &r->faults[i];
		double t = f->started_s >= 0 ? f->started_s : (double)f->fault->at_us / 1e6;
		snprintf(d->labels[i], sizeof(d->labels[i]), "%s%s%s", scn_action_name(f->fault->action),
			 f->fault->target[0] ? " " : "", f->fault->target);
		d->marks[d->n_marks++] = (struct chart_mark){ t, d->labels[i] };
	}
	size_t n = (size_t)r->totals.seconds;
	d->bands = xcalloc(n ? n : 1, sizeof(*d->bands));
	d->n_bands = 0;
	for (size_t k = 0; k < n; k++) {
		if (!scn_second_degraded(r->scn, &r->seconds[k]))
			continue;
		if (d->n_bands && d->bands[d->n_bands - 1].t1_s == (double)k)
			d->bands[d->n_bands - 1].t1_s = (double)k + 1;
		else
			d->bands[d->n_bands++] = (struct chart_band){ (double)k, (double)k + 1 };
	}
}

static int draw(struct buf *out, const char *title, const char *y, const struct chart_series *se, size_t n,
		const struct decor *d, int log_y, double y_max)
{
	struct chart c = { .title = title, .y_label = y, .series = se, .n_series = n, .marks = d->marks,
			   .n_marks = d->n_marks, .log_y = log_y, .bands = d->bands, .n_bands = d->n_bands, .y_max = y_max };
	return chart_svg(out, &c);
}

static int run_charts(struct buf *out, const struct scn_result *r)
{
	struct series_set ss = { 0 };
	struct decor d;
	series_fill(r, &ss);
	decor_fill(r, &d);
	size_t n = ss.n;
	struct chart_series thr[] = { { "target", "#999999", ss.target, n, 1 }, { "good answers", "#1f77b4", ss.good, n, 0 },
				      { "failed", "#d62728", ss.failed, n, 0 } };
	struct chart_series err[] = { { "failed requests (%)", "#d62728", ss.err_pct, n, 0 } };
	struct chart_series lat[] = { { "p50", "#2ca02c", ss.p50, n, 0 }, { "p99", "#ff7f0e", ss.p99, n, 0 } };
	struct chart_series share[SCN_MAX_BACKENDS];
	for (size_t b = 0; b < r->n_backends; b++)
		share[b] = (struct chart_series){ r->scn->backends[b].name, palette[b % PALETTE_N], ss.share[b], n, 0 };
	int rc = draw(out, "Throughput (requests per second; shaded: degraded seconds)", "req/s", thr, 3, &d, 0, 0);
	rc |= draw(out, "Failed requests (% of requests finished in each second)", "%", err, 1, &d, 0, 0);
	rc |= draw(out, "Latency, corrected for coordinated omission (log scale)", "ms", lat, 2, &d, 1, 0);
	rc |= draw(out, "Each backend's share of the requests it answered (% per second)", "%", share, r->n_backends, &d, 0, 100);
	series_free(&ss, r->n_backends);
	free(d.bands);
	return rc;
}

/* ---- tables ---- */

static void assertion_cells(struct buf *out, const struct load_slo *slo, const struct load_slo_outcome *oc)
{
	buf_puts(out, "<td>");
	if (slo->n == 0)
		buf_puts(out, "&ndash;");
	for (size_t i = 0; i < slo->n; i++) {
		buf_printf(out, "%s<span class=\"%s\">", i ? "<br>" : "", oc[i].ok ? "ok" : "bad");
		text(out, slo->terms[i].text);
		buf_puts(out, oc[i].ok ? " held" : " FAILED");
		buf_puts(out, "</span>");
	}
	buf_puts(out, "</td>");
}

static void phase_table(struct buf *out, const struct scn_result *r)
{
	buf_puts(out, "<table><tr><th>phase</th><th>time</th><th>target req/s</th><th>achieved req/s</th><th>p50</th>"
		      "<th>p99</th><th>failed</th><th>assertions</th></tr>");
	for (size_t i = 0; i < r->n_phases; i++) {
		const struct scn_phase_result *p = &r->phases[i];
		char p50[24] = "&ndash;", p99[24] = "&ndash;";
		uint64_t failed = 0, fin = 0;
		double got = 0;
		if (p->load) {
			fmt_ms(p50, sizeof(p50), hist_percentile(&p->load->latency, 50));
			fmt_ms(p99, sizeof(p99), hist_percentile(&p->load->latency, 99));
			failed = load_counts_failed(&p->load->counts);
			fin = load_counts_finished(&p->load->counts);
			got = p->load->achieved_rps;
		}
		buf_puts(out, "<tr><td>");
		text(out, p->phase->name);
		buf_printf(out, "</td><td class=\"n\">%.1f&ndash;%.1f s</td><td class=\"n\">%.0f", p->start_s, p->end_s,
			   p->phase->rate.from);
		if (p->phase->rate.to != p->phase->rate.from)
			buf_printf(out, "&ndash;%.0f", p->phase->rate.to);
		buf_printf(out, "</td><td class=\"n\">%.0f</td><td class=\"n\">%s</td><td class=\"n\">%s</td>"
				"<td class=\"n\">%llu (%.2f%%)</td>",
			   got, p50, p99, (unsigned long long)failed, fin ? 100.0 * (double)failed / (double)fin : 0.0);
		assertion_cells(out, &p->phase->slo, p->outcomes);
		buf_puts(out, "</tr>");
	}
	buf_puts(out, "</table>");
}

static void fault_table(struct buf *out, const struct scn_result *r)
{
	if (r->n_faults == 0)
		return;
	buf_puts(out, "<table><tr><th>at</th><th>fault</th><th>outcome</th></tr>");
	for (size_t i = 0; i < r->n_faults; i++) {
		const struct scn_fault_result *f = &r->faults[i];
		buf_printf(out, "<tr><td class=\"n\">%.1f s</td><td>", f->started_s >= 0 ? f->started_s : (double)f->fault->at_us / 1e6);
		text(out, scn_action_name(f->fault->action));
		buf_puts(out, " ");
		text(out, f->fault->target);
		buf_printf(out, "</td><td class=\"%s\">", f->ok ? "ok" : "bad");
		text(out, f->started_s < 0 ? "not started: the run ended first" : f->done_s < 0 ? "not finished when the load ended" : f->detail);
		buf_puts(out, "</td></tr>");
	}
	buf_puts(out, "</table>");
}

static void totals_para(struct buf *out, const struct scn_result *r)
{
	const struct scn_totals *t = &r->totals;
	char p99[24], slo[24];
	fmt_ms(p99, sizeof(p99), t->latency.p99_us);
	fmt_ms(slo, sizeof(slo), r->scn->slo.p99_us);
	buf_printf(out, "<p>Whole run: %llu requests, %llu failed (%.2f%%), p99 %s, sustained %.0f req/s, %lld of %lld seconds degraded.</p>",
		   (unsigned long long)t->requests, (unsigned long long)t->failed, t->error_rate * 100, p99, t->sustained_rps,
		   (long long)t->degraded_s, (long long)t->seconds);
	buf_printf(out, "<p class=\"note\">Failed: errors of any kind and 5xx answers. Degraded second: more than %.3g%% failed "
			"or a p99 above %s. Sustained: the best rate of good answers held %lld s in a row without a degraded second.</p>",
		   r->scn->slo.error_rate * 100, slo, (long long)(r->scn->slo.sustain_us / USEC_PER_SEC));
}

static int run_section(struct buf *out, const struct scn_result *r)
{
	const char *v = r->verdict == SCN_VERDICT_PASS ? "pass" : r->verdict == SCN_VERDICT_FAIL ? "fail" : "invalid";
	buf_puts(out, "<h2>");
	text(out, stack_title(r));
	buf_puts(out, ": ");
	text(out, r->scn->name);
	buf_printf(out, " &mdash; <span class=\"%s\">%s</span></h2>", r->verdict == SCN_VERDICT_PASS ? "ok" : "bad", v);
	if (r->verdict == SCN_VERDICT_INVALID) {
		buf_puts(out, "<p class=\"bad\">The run is invalid: ");
		text(out, r->invalid_reason);
		buf_puts(out, "</p>");
	}
	phase_table(out, r);
	fault_table(out, r);
	totals_para(out, r);
	return run_charts(out, r);
}

/* ---- the demo's comparison ---- */

static void compare_row(struct buf *out, const char *label, const char *a, const char *b)
{
	buf_puts(out, "<tr><th>");
	text(out, label);
	buf_puts(out, "</th><td class=\"n\">");
	text(out, a);
	buf_puts(out, "</td><td class=\"n\">");
	text(out, b);
	buf_puts(out, "</td></tr>");
}

static void compare_table(struct buf *out, const struct scn_result *a, const struct scn_result *b)
{
	char x[64], y[64];
	buf_puts(out, "<table><tr><th></th><th>");
	text(out, stack_title(a));
	buf_puts(out, "</th><th>");
	text(out, stack_title(b));
	buf_puts(out, "</th></tr>");
	snprintf(x, sizeof(x), "%llu (%.2f%%)", (unsigned long long)a->totals.failed, a->totals.error_rate * 100);
	snprintf(y, sizeof(y), "%llu (%.2f%%)", (unsigned long long)b->totals.failed, b->totals.error_rate * 100);
	compare_row(out, "failed requests", x, y);
	fmt_ms(x, sizeof(x), a->totals.latency.p99_us);
	fmt_ms(y, sizeof(y), b->totals.latency.p99_us);
	compare_row(out, "p99 latency", x, y);
	snprintf(x, sizeof(x), "%.0f req/s", a->totals.sustained_rps);
	snprintf(y, sizeof(y), "%.0f req/s", b->totals.sustained_rps);
	compare_row(out, "sustained throughput", x, y);
	snprintf(x, sizeof(x), "%lld of %lld s", (long long)a->totals.degraded_s, (long long)a->totals.seconds);
	snprintf(y, sizeof(y), "%lld of %lld s", (long long)b->totals.degraded_s, (long long)b->totals.seconds);
	compare_row(out, "degraded service", x, y);
	buf_puts(out, "</table>");
}

static int overlay(struct buf *out, const struct scn_result *a, const struct scn_result *b)
{
	struct series_set sa = { 0 }, sb = { 0 };
	struct decor d;
	series_fill(a, &sa);
	series_fill(b, &sb);
	decor_fill(b, &d);
	d.n_bands = 0; /* the bands differ per run: shown in each run's own charts */
	struct chart_series good[] = { { "target", "#999999", sa.target, sa.n, 1 }, { "static HAProxy", "#d62728", sa.good, sa.n, 0 },
				       { "Veltrix", "#1f77b4", sb.good, sb.n, 0 } };
	struct chart_series err[] = { { "static HAProxy", "#d62728", sa.err_pct, sa.n, 0 }, { "Veltrix", "#1f77b4", sb.err_pct, sb.n, 0 } };
	struct chart_series p99[] = { { "static HAProxy", "#d62728", sa.p99, sa.n, 0 }, { "Veltrix", "#1f77b4", sb.p99, sb.n, 0 } };
	int rc = draw(out, "Good answers per second: static HAProxy vs Veltrix", "req/s", good, 3, &d, 0, 0);
	rc |= draw(out, "Failed requests (% per second)", "%", err, 2, &d, 0, 0);
	rc |= draw(out, "p99 latency per second (log scale)", "ms", p99, 2, &d, 1, 0);
	series_free(&sa, a->n_backends);
	series_free(&sb, b->n_backends);
	free(d.bands);
	return rc;
}

int scn_report_html(const struct scn_result *const *results, size_t n, const char *title, struct buf *out)
{
	size_t start = out->len;
	int rc = buf_printf(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>");
	text(out, title);
	buf_printf(out, "</title><style>%s</style></head><body><h1>", css);
	text(out, title);
	buf_puts(out, "</h1>");
	if (n > 0 && results[0]->scn->description) {
		buf_puts(out, "<p>");
		text(out, results[0]->scn->description);
		buf_puts(out, "</p>");
	}
	if (n == 2) {
		compare_table(out, results[0], results[1]);
		rc |= overlay(out, results[0], results[1]);
	}
	for (size_t i = 0; i < n; i++)
		rc |= run_section(out, results[i]);
	rc |= buf_puts(out, "</body></html>\n");
	if (rc != 0 || out->len >= out->max) {
		out->len = start;
		if (out->data)
			out->data[start] = '\0';
		return -1;
	}
	return 0;
}
