/* A run as text (for people) and as JSON (for machines; shape in docs/scenarios.md). */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/timeutil.h"
#include "scenario/scn_report_int.h"

static const char *stack_name(const struct scn_result *r)
{
	return r->stack == SCN_STACK_STATIC ? "static" : "veltrix";
}

static const char *verdict_name(enum scn_verdict v)
{
	return v == SCN_VERDICT_PASS ? "pass" : v == SCN_VERDICT_FAIL ? "fail" : "invalid";
}

static void fmt_ms(char *out, size_t cap, int64_t us)
{
	if (us >= 10 * USEC_PER_SEC)
		snprintf(out, cap, "%.1fs", (double)us / 1e6);
	else
		snprintf(out, cap, "%.1fms", (double)us / 1000.0);
}

/* A measured value in the unit of its term. */
static void fmt_term_value(char *out, size_t cap, const struct load_slo_term *t, double v)
{
	switch (t->metric) {
	case LOAD_SLO_LATENCY:
	case LOAD_SLO_MEAN:
		fmt_ms(out, cap, (int64_t)v);
		break;
	case LOAD_SLO_ERROR_RATE:
		snprintf(out, cap, "%.3g%%", v * 100);
		break;
	case LOAD_SLO_RPS:
		snprintf(out, cap, "%.0f/s", v);
		break;
	default:
		snprintf(out, cap, "%.0f", v);
	}
}

static void assertions_text(struct buf *out, const struct load_slo *slo, const struct load_slo_outcome *oc)
{
	char v[32];
	if (slo->n == 0) {
		buf_puts(out, "-");
		return;
	}
	for (size_t i = 0; i < slo->n; i++) {
		fmt_term_value(v, sizeof(v), &slo->terms[i], oc[i].value);
		buf_printf(out, "%s%s %s (%s)", i ? ", " : "", slo->terms[i].text, oc[i].ok ? "ok" : "FAILED", v);
	}
}

/* What the failures were: "5xx answers 12, read timeout 1". */
static void failures_text(struct buf *out, const struct load_counts *c)
{
	const char *sep = "";
	buf_puts(out, "               failed: ");
	if (c->status[5]) {
		buf_printf(out, "5xx answers %llu", (unsigned long long)c->status[5]);
		sep = ", ";
	}
	for (int k = 0; k < LOAD_ERR_COUNT; k++)
		if (c->errors[k]) {
			buf_printf(out, "%s%s %llu", sep, load_err_text((enum load_err_kind)k), (unsigned long long)c->errors[k]);
			sep = ", ";
		}
	buf_putc(out, '\n');
}

static void phases_text(const struct scn_result *r, struct buf *out)
{
	char p50[16], p99[16], rate[32];
	buf_printf(out, "\n  %-12s %-13s %-13s %8s %9s %9s %-17s %s\n", "phase", "time", "target/s", "got/s", "p50", "p99",
		   "failed", "assertions");
	for (size_t i = 0; i < r->n_phases; i++) {
		const struct scn_phase_result *p = &r->phases[i];
		const struct load_result *l = p->load;
		if (p->phase->rate.from == p->phase->rate.to)
			snprintf(rate, sizeof(rate), "%.0f", p->phase->rate.from);
		else
			snprintf(rate, sizeof(rate), "%.0f..%.0f", p->phase->rate.from, p->phase->rate.to);
		buf_printf(out, "  %-12.12s %5.1f-%5.1fs  %-13s ", p->phase->name, p->start_s, p->end_s, rate);
		if (!l) {
			buf_puts(out, "(did not run)\n");
			continue;
		}
		uint64_t failed = load_counts_failed(&l->counts), fin = load_counts_finished(&l->counts);
		fmt_ms(p50, sizeof(p50), hist_percentile(&l->latency, 50));
		fmt_ms(p99, sizeof(p99), hist_percentile(&l->latency, 99));
		char f[40];
		snprintf(f, sizeof(f), "%llu (%.2f%%)", (unsigned long long)failed, fin ? 100.0 * (double)failed / (double)fin : 0.0);
		buf_printf(out, "%8.0f %9s %9s %-17s ", l->achieved_rps, p50, p99, f);
		assertions_text(out, &p->phase->slo, p->outcomes);
		buf_putc(out, '\n');
		if (failed)
			failures_text(out, &l->counts);
	}
}

static void faults_text(const struct scn_result *r, struct buf *out)
{
	if (r->n_faults == 0)
		return;
	buf_puts(out, "\n  faults\n");
	for (size_t i = 0; i < r->n_faults; i++) {
		const struct scn_fault_result *f = &r->faults[i];
		char what[64];
		snprintf(what, sizeof(what), "%s%s%s", scn_action_name(f->fault->action), f->fault->target[0] ? " " : "",
			 f->fault->target);
		if (f->started_s < 0)
			buf_printf(out, "  %6.1fs  %-24s not started (the run ended first)\n", (double)f->fault->at_us / 1e6, what);
		else if (f->done_s < 0)
			buf_printf(out, "  %6.1fs  %-24s not finished when the load ended\n", f->started_s, what);
		else
			buf_printf(out, "  %6.1fs  %-24s %-6s %s (done at %.1fs)\n", f->started_s, what, f->ok ? "ok" : "FAILED",
				   f->detail, f->done_s);
	}
}

void scn_report_totals_line(const struct scn_result *r, struct buf *out)
{
	const struct scn_totals *t = &r->totals;
	char p99[16], p99slo[16];
	fmt_ms(p99, sizeof(p99), t->latency.p99_us);
	fmt_ms(p99slo, sizeof(p99slo), r->scn->slo.p99_us);
	buf_printf(out, "\n  whole run: %llu requests, %llu failed (%.2f%%), p99 %s, sustained %.0f req/s, %lld of %lld seconds degraded\n",
		   (unsigned long long)t->requests, (unsigned long long)t->failed, t->error_rate * 100, p99,
		   t->sustained_rps, (long long)t->degraded_s, (long long)t->seconds);
	buf_printf(out, "  (failed: errors of any kind and 5xx answers; degraded: a second with more than %.3g%% failed or a p99 above %s;\n"
			"   sustained: the best good-answer rate held %llds in a row without a degraded second)\n",
		   r->scn->slo.error_rate * 100, p99slo, (long long)(r->scn->slo.sustain_us / USEC_PER_SEC));
}

static size_t count_terms(const struct scn_result *r)
{
	size_t n = r->scn->assert_slo.n;
	for (size_t i = 0; i < r->scn->n_phases; i++)
		n += r->scn->phases[i].slo.n;
	return n;
}

void scn_report_text(const struct scn_result *r, struct buf *out)
{
	const struct scn *s = r->scn;
	buf_printf(out, "scenario %s (%s) on the %s stack", s->name, s->file, stack_name(r));
	if (r->stack == SCN_STACK_VELTRIX)
		buf_printf(out, ", %s registration", s->registration == SCN_REG_AGENT ? "agent" : "direct");
	buf_printf(out, ": %zu backend%s, %zu phase%s, %zu fault%s, %.1fs\n", s->n_backends, s->n_backends == 1 ? "" : "s",
		   s->n_phases, s->n_phases == 1 ? "" : "s", s->n_faults, s->n_faults == 1 ? "" : "s", r->elapsed_s);
	if (s->description)
		buf_printf(out, "  %s\n", s->description);
	phases_text(r, out);
	faults_text(r, out);
	scn_report_totals_line(r, out);
	if (s->assert_slo.n) {
		buf_puts(out, "  whole-run assertions: ");
		assertions_text(out, &s->assert_slo, r->overall);
		buf_putc(out, '\n');
	}
	if (r->verdict == SCN_VERDICT_INVALID)
		buf_printf(out, "\nverdict: INVALID: %s\n", r->invalid_reason);
	else if (r->verdict == SCN_VERDICT_FAIL)
		buf_puts(out, "\nverdict: FAIL: an assertion did not hold\n");
	else
		buf_printf(out, "\nverdict: PASS%s\n", count_terms(r) ? ": every assertion held" : " (the scenario asserts nothing)");
	if (r->work_dir_kept)
		buf_printf(out, "logs and configuration kept in %s\n", r->work_dir);
}

/* ---- JSON ---- */

static json_t *pcts_json(const struct load_pcts *p)
{
	return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "p50_us", (json_int_t)p->p50_us, "p90_us", (json_int_t)p->p90_us,
			 "p99_us", (json_int_t)p->p99_us, "p999_us", (json_int_t)p->p999_us, "max_us", (json_int_t)p->max_us,
			 "mean_us", (json_int_t)p->mean_us);
}

static json_t *errors_json(const struct load_counts *c)
{
	json_t *o = json_object();
	for (int k = 0; k < LOAD_ERR_COUNT; k++)
		if (c->errors[k])
			json_object_set_new(o, load_err_key((enum load_err_kind)k), json_integer((json_int_t)c->errors[k]));
	if (c->status[5])
		json_object_set_new(o, "http_5xx", json_integer((json_int_t)c->status[5]));
	return o;
}

static json_t *assertions_json(const struct load_slo *slo, const struct load_slo_outcome *oc)
{
	json_t *a = json_array();
	for (size_t i = 0; i < slo->n; i++)
		json_array_append_new(a, json_pack("{s:s,s:f,s:b}", "term", slo->terms[i].text, "value", oc[i].value, "ok", oc[i].ok));
	return a;
}

static json_t *phase_json(const struct scn_phase_result *p)
{
	const struct load_result *l = p->load;
	json_t *o = json_pack("{s:s,s:f,s:f,s:f,s:f,s:b,s:o}", "name", p->phase->name, "start_s", p->start_s, "end_s", p->end_s,
			      "target_rps_from", p->phase->rate.from, "target_rps_to", p->phase->rate.to, "ok", p->ok,
			      "assertions", assertions_json(&p->phase->slo, p->outcomes));
	if (!l)
		return o;
	struct load_pcts pc;
	load_pcts_of(&l->latency, &pc);
	uint64_t fin = load_counts_finished(&l->counts), failed = load_counts_failed(&l->counts);
	json_object_set_new(o, "achieved_rps", json_real(l->achieved_rps));
	json_object_set_new(o, "requests", json_integer((json_int_t)fin));
	json_object_set_new(o, "failed", json_integer((json_int_t)failed));
	json_object_set_new(o, "error_rate", json_real(fin ? (double)failed / (double)fin : 0));
	json_object_set_new(o, "latency", pcts_json(&pc));
	json_object_set_new(o, "errors", errors_json(&l->counts));
	return o;
}

static json_t *fault_json(const struct scn_fault_result *f)
{
	return json_pack("{s:f,s:s,s:s,s:f,s:f,s:b,s:s}", "at_s", (double)f->fault->at_us / 1e6, "action",
			 scn_action_name(f->fault->action), "target", f->fault->target, "started_s", f->started_s, "done_s",
			 f->done_s, "ok", f->ok, "detail", f->detail);
}

static json_t *num_or_null(double v)
{
	return isnan(v) ? json_null() : json_real(v);
}

static json_t *second_json(const struct scn_result *r, size_t k)
{
	const struct scn_second *s = &r->seconds[k];
	uint64_t fin = load_counts_finished(&s->counts), failed = load_counts_failed(&s->counts);
	json_t *served = json_object(), *rejected = json_object();
	for (size_t b = 0; b < r->n_backends; b++) {
		json_object_set_new(served, r->scn->backends[b].name, num_or_null(s->served[b]));
		json_object_set_new(rejected, r->scn->backends[b].name, num_or_null(s->rejected[b]));
	}
	return json_pack("{s:I,s:f,s:f,s:f,s:I,s:I,s:I,s:f,s:o,s:b,s:o,s:o}", "t", (json_int_t)k, "target_rps",
			 scn_target_rps(r->scn, k), "good_rps", scn_second_good_rps(s), "covered_s", s->covered_s,
			 "responses", (json_int_t)s->counts.responses, "requests", (json_int_t)fin,
			 "failed", (json_int_t)failed, "error_rate", fin ? (double)failed / (double)fin : 0.0, "latency",
			 s->has_latency ? pcts_json(&s->latency) : json_null(), "degraded", scn_second_degraded(r->scn, s),
			 "served", served, "rejected", rejected);
}

json_t *scn_report_json_object(const struct scn_result *r)
{
	const struct scn *s = r->scn;
	const struct scn_totals *t = &r->totals;
	json_t *phases = json_array(), *faults = json_array(), *timeline = json_array(), *backends = json_array();
	for (size_t i = 0; i < r->n_phases; i++)
		json_array_append_new(phases, phase_json(&r->phases[i]));
	for (size_t i = 0; i < r->n_faults; i++)
		json_array_append_new(faults, fault_json(&r->faults[i]));
	for (size_t k = 0; k < (size_t)t->seconds; k++)
		json_array_append_new(timeline, second_json(r, k));
	for (size_t b = 0; b < s->n_backends; b++)
		json_array_append_new(backends, json_pack("{s:s,s:s,s:I,s:b}", "name", s->backends[b].name, "group",
							  s->groups[s->backends[b].group].name, "capacity",
							  (json_int_t)s->backends[b].capacity, "initial", s->backends[b].initial));
	json_t *totals = json_pack("{s:I,s:I,s:f,s:o,s:f,s:f,s:I,s:I}", "requests", (json_int_t)t->requests, "failed",
				   (json_int_t)t->failed, "error_rate", t->error_rate, "latency", pcts_json(&t->latency),
				   "achieved_rps", t->achieved_rps, "sustained_rps", t->sustained_rps, "degraded_seconds",
				   (json_int_t)t->degraded_s, "seconds", (json_int_t)t->seconds);
	json_t *slo = json_pack("{s:I,s:f,s:I}", "p99_us", (json_int_t)s->slo.p99_us, "error_rate", s->slo.error_rate,
				"sustain_s", (json_int_t)(s->slo.sustain_us / USEC_PER_SEC));
	return json_pack("{s:i,s:{s:s,s:s,s:s,s:s},s:s,s:i,s:s?,s:f,s:s?,s:o,s:o,s:o,s:o,s:o,s:o,s:o}", "version", 1,
			 "scenario", "name", s->name, "file", s->file, "stack", stack_name(r), "registration",
			 s->registration == SCN_REG_AGENT ? "agent" : "direct", "verdict", verdict_name(r->verdict),
			 "exit_code", scn_exit_code(r), "invalid_reason",
			 r->verdict == SCN_VERDICT_INVALID ? r->invalid_reason : NULL, "elapsed_s", r->elapsed_s, "work_dir",
			 r->work_dir_kept ? r->work_dir : NULL, "slo", slo, "totals", totals, "assertions",
			 assertions_json(&s->assert_slo, r->overall), "phases", phases, "faults", faults, "backends", backends,
			 "timeline", timeline);
}

char *scn_report_json(const struct scn_result *r)
{
	json_t *o = scn_report_json_object(r);
	char *text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}
