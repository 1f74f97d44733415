/* What a run's numbers add up to (pure: no I/O), with the definitions the reports print:
 *   failed requests   every error kind of the load generator plus 5xx responses;
 *   degraded second   a second whose share of failed requests is above slo.errors, or whose
 *                     p99 latency is above slo.p99;
 *   sustained rate    the highest rate of good (non-failed) responses held for slo.sustain
 *                     consecutive seconds, none of them degraded: throughput within the SLO. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"

#include "common/timeutil.h"
#include "scenario/scenario.h"

/* A record covers at most a second; a second split between two phases has two records. */
static double per_second(const struct scn_second *sec, double n)
{
	return sec->covered_s > 0.05 ? n / fmin(1.0, sec->covered_s) : 0;
}

double scn_second_good_rps(const struct scn_second *sec)
{
	return per_second(sec, (double)(sec->counts.responses - sec->counts.status[5]));
}

double scn_second_failed_rps(const struct scn_second *sec)
{
	return per_second(sec, (double)load_counts_failed(&sec->counts));
}

bool scn_second_degraded(const struct scn *s, const struct scn_second *sec)
{
	uint64_t fin = load_counts_finished(&sec->counts), failed = load_counts_failed(&sec->counts);
	if (fin > 0 && (double)failed > s->slo.error_rate * (double)fin)
		return true;
	return sec->has_latency && sec->latency.p99_us > s->slo.p99_us;
}

static double sustained(const struct scn *s, const struct scn_second *secs, size_t n)
{
	size_t w = (size_t)(s->slo.sustain_us / USEC_PER_SEC);
	double best = 0;
	if (w == 0)
		w = 1;
	for (size_t i = 0; i + w <= n; i++) {
		double low = INFINITY;
		for (size_t k = i; k < i + w && low > 0; k++)
			low = scn_second_degraded(s, &secs[k]) ? 0 : fmin(low, scn_second_good_rps(&secs[k]));
		if (low > best && isfinite(low))
			best = low;
	}
	return best;
}

/* The phases together, as one load result. */
static void combine(const struct scn_result *r, struct load_result *all)
{
	memset(all, 0, sizeof(*all));
	for (size_t i = 0; i < r->n_phases; i++) {
		const struct load_result *p = r->phases[i].load;
		if (!p)
			continue;
		load_counts_add(&all->counts, &p->counts);
		hist_merge(&all->latency, &p->latency);
		hist_merge(&all->latency_uncorrected, &p->latency_uncorrected);
		all->duration_us += p->duration_us;
		all->intended += p->intended;
	}
	double secs = (double)all->duration_us / 1e6;
	all->achieved_rps = secs > 0 ? (double)all->counts.responses / secs : 0;
	all->intended_rps = secs > 0 ? (double)all->intended / secs : 0;
	all->open_loop = true;
}

void scn_totals_compute(const struct scn_result *r, struct scn_totals *out)
{
	struct load_result *all = xcalloc(1, sizeof(*all)); /* 100 KiB of histograms */
	combine(r, all);
	memset(out, 0, sizeof(*out));
	out->requests = load_counts_finished(&all->counts);
	out->failed = load_counts_failed(&all->counts);
	out->error_rate = out->requests ? (double)out->failed / (double)out->requests : 0;
	load_pcts_of(&all->latency, &out->latency);
	out->achieved_rps = all->achieved_rps;
	size_t n = r->n_seconds;
	while (n > 0 && load_counts_finished(&r->seconds[n - 1].counts) == 0)
		n--; /* the slot after the end */
	out->seconds = (int64_t)n;
	for (size_t i = 0; i < n; i++)
		out->degraded_s += scn_second_degraded(r->scn, &r->seconds[i]);
	out->sustained_rps = sustained(r->scn, r->seconds, n);
	free(all);
}

bool scn_overall_check(const struct scn_result *r, struct load_slo_outcome *out)
{
	if (r->scn->assert_slo.n == 0)
		return true;
	struct load_result *all = xcalloc(1, sizeof(*all));
	combine(r, all);
	bool ok = load_slo_check(&r->scn->assert_slo, all, out);
	free(all);
	return ok;
}

double scn_target_rps(const struct scn *s, size_t k)
{
	struct load_phase ph[SCN_MAX_PHASES];
	for (size_t i = 0; i < s->n_phases && i < SCN_MAX_PHASES; i++)
		ph[i] = (struct load_phase){ s->phases[i].rate.from, s->phases[i].rate.to, s->phases[i].duration_us };
	int64_t a = (int64_t)k * USEC_PER_SEC, b = a + USEC_PER_SEC, end = scn_duration_us(s);
	if (b > end)
		b = end;
	return b > a ? load_phases_area(ph, s->n_phases, a, b) * 1e6 / (double)(b - a) : 0;
}
