/* The SLO grammar and its evaluation against a result (pure). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/parse.h"
#include "common/strutil.h"
#include "common/timeutil.h"
#include "load/load.h"

static const char slo_help[] = "write METRIC OP VALUE terms separated by commas, as in "
			       "p99<50ms,errors<0.1%,rps>=1000 (metrics: pNN, pNN.N, max, mean, errors, rps; "
			       "ops: < <= > >=)";

/* The operator at s: its enum and length, or 0 when there is none. */
static size_t find_op(const char *s, size_t n, size_t *at, enum load_slo_op *op)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '<' && s[i] != '>')
			continue;
		bool eq = i + 1 < n && s[i + 1] == '=';
		*op = s[i] == '<' ? (eq ? LOAD_SLO_LE : LOAD_SLO_LT) : (eq ? LOAD_SLO_GE : LOAD_SLO_GT);
		*at = i;
		return eq ? 2 : 1;
	}
	return 0;
}

static int parse_metric(const char *m, struct load_slo_term *t)
{
	if (strcmp(m, "max") == 0) {
		t->metric = LOAD_SLO_LATENCY;
		t->pct = 100;
	} else if (strcmp(m, "mean") == 0) {
		t->metric = LOAD_SLO_MEAN;
	} else if (strcmp(m, "errors") == 0) {
		t->metric = LOAD_SLO_ERROR_COUNT; /* becomes a rate when the value has a '%' */
	} else if (strcmp(m, "rps") == 0) {
		t->metric = LOAD_SLO_RPS;
	} else if (m[0] == 'p' && parse_double(m + 1, 0, 100, &t->pct) == 0 && m[1] >= '0' && m[1] <= '9') {
		t->metric = LOAD_SLO_LATENCY;
	} else {
		return -1;
	}
	return 0;
}

static int parse_limit(const char *v, struct load_slo_term *t, struct vxerr *err)
{
	char why[128];
	int64_t us;
	if (t->metric == LOAD_SLO_LATENCY || t->metric == LOAD_SLO_MEAN) {
		if (dur_parse(v, &us, why, sizeof(why)) != 0)
			return vxerr_set(err, "'%s': %s (latency limits need a unit, as in 50ms)", t->text, why);
		t->limit = (double)us;
		return 0;
	}
	if (t->metric == LOAD_SLO_ERROR_COUNT && strchr(v, '%')) {
		t->metric = LOAD_SLO_ERROR_RATE;
		if (parse_percent(v, &t->limit) != 0)
			return vxerr_set(err, "'%s': '%s' is not a percentage from 0%% to 100%%", t->text, v);
		return 0;
	}
	if (parse_double(v, 0, 1e12, &t->limit) != 0)
		return vxerr_set(err, "'%s': '%s' is not a number", t->text, v);
	return 0;
}

static int parse_term(const char *s, size_t n, struct load_slo_term *t, struct vxerr *err)
{
	memset(t, 0, sizeof(*t));
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		n--;
	if (n == 0 || n >= sizeof(t->text))
		return vxerr_set(err, "slo term '%.*s' is empty or too long; %s", (int)n, s, slo_help);
	memcpy(t->text, s, n);
	size_t at, oplen = find_op(s, n, &at, &t->op);
	if (oplen == 0)
		return vxerr_set(err, "slo term '%s' has no operator; %s", t->text, slo_help);
	char metric[16];
	if (at == 0 || at >= sizeof(metric))
		return vxerr_set(err, "slo term '%s' has no metric; %s", t->text, slo_help);
	memcpy(metric, s, at);
	metric[at] = '\0';
	if (parse_metric(metric, t) != 0)
		return vxerr_set(err, "slo term '%s': unknown metric '%s'; %s", t->text, metric, slo_help);
	return parse_limit(t->text + at + oplen, t, err);
}

int load_slo_parse(const char *s, struct load_slo *out, struct vxerr *err)
{
	struct load_slo slo = { .n = 0 };
	const char *p = s;
	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (slo.n >= LOAD_SLO_MAX_TERMS)
			return vxerr_set(err, "slo has more than %d terms", LOAD_SLO_MAX_TERMS);
		if (parse_term(p, n, &slo.terms[slo.n], err) != 0)
			return -1;
		slo.n++;
		if (!comma)
			break;
		p = comma + 1;
	}
	*out = slo;
	return 0;
}

static double term_value(const struct load_slo_term *t, const struct load_result *r)
{
	uint64_t failed = load_counts_failed(&r->counts), finished = load_counts_finished(&r->counts);
	switch (t->metric) {
	case LOAD_SLO_LATENCY:
		return (double)hist_percentile(&r->latency, t->pct);
	case LOAD_SLO_MEAN:
		return (double)hist_mean(&r->latency);
	case LOAD_SLO_ERROR_RATE:
		return finished ? (double)failed / (double)finished : 0;
	case LOAD_SLO_ERROR_COUNT:
		return (double)failed;
	case LOAD_SLO_RPS:
		return r->achieved_rps;
	}
	return 0;
}

static bool compare(double v, enum load_slo_op op, double limit)
{
	switch (op) {
	case LOAD_SLO_LT:
		return v < limit;
	case LOAD_SLO_LE:
		return v <= limit;
	case LOAD_SLO_GT:
		return v > limit;
	case LOAD_SLO_GE:
		return v >= limit;
	}
	return false;
}

bool load_slo_check(const struct load_slo *slo, const struct load_result *r, struct load_slo_outcome *out)
{
	bool all = true;
	for (size_t i = 0; i < slo->n; i++) {
		const struct load_slo_term *t = &slo->terms[i];
		double v = term_value(t, r);
		/* A latency SLO cannot pass on a run that got no response at all. */
		bool ok = compare(v, t->op, t->limit) &&
			  !((t->metric == LOAD_SLO_LATENCY || t->metric == LOAD_SLO_MEAN) && r->latency.total == 0);
		if (out)
			out[i] = (struct load_slo_outcome){ .value = v, .ok = ok };
		all = all && ok;
	}
	return all;
}
